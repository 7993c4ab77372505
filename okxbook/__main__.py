"""``python -m okxbook`` is the ``okxbook`` command."""

import sys

from .cli import main

sys.exit(main())
