"""The live commands' feed from their command line, for ``watch``, ``record`` and ``publish``.

``make_feed(args)`` is the one place the connection options (``--channel``, ``--url``,
``--rest-url``, ``--demo``, ``--transport``, ``--sbe``, ``--ca-file``: ``okxbook.cli``'s
``_connection_options``) become a ``Feed``, so a new option reaches every live command at once.
"""

from __future__ import annotations

import argparse
from typing import Any

from okxbook.feed import Feed

__all__ = ["book_keys", "make_feed"]


def make_feed(args: argparse.Namespace, *, recorder: Any = None) -> Feed:
    """The ``Feed`` of ``args.inst_ids`` on ``args.channel`` as the options ask (``recorder``:
    what ``okxbook record`` writes every raw frame to)."""
    return Feed(
        args.inst_ids,
        channel=args.channel,
        url=args.url,
        rest_url=args.rest_url,
        demo=args.demo,
        transport=args.transport,
        recorder=recorder,
        encoding="sbe" if args.sbe else "json",
        ca_file=args.ca_file,
    )


def book_keys(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The ``(channel, instId)`` of each book the command follows, in the order given."""
    return [(args.channel, i) for i in args.inst_ids]
