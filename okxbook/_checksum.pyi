"""Type stubs for okxbook._checksum (Cython)."""

from collections.abc import Iterable, Sequence
from typing import Any

# Levels best first; only the first two fields (px, sz strings) are used.
def okx_checksum(bids: Iterable[Sequence[Any]], asks: Iterable[Sequence[Any]]) -> int: ...
