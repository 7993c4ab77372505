"""``okxbook publish NAME INST...`` (and ``watch --publish NAME``): a feeder whose books other
processes on the host read from shared memory (``okxbook.share.SharedBooks(NAME)``).

Owns the command's run (its arguments are in ``okxbook.cli``): the segment is created before the
feed starts (a name in use by a live publisher is one line and exit 2) and removed when the
command ends, however it ends short of SIGKILL (Ctrl-C, SIGTERM, --duration, an error)."""

from __future__ import annotations

import argparse
from typing import TextIO

from okxbook.share.feeder import publishing

from .feeding import book_keys, make_feed

__all__ = ["publish"]


def publish(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """``okxbook publish NAME INST...``: the books of ``args`` (``okxbook.cli``'s options) kept
    live in the shared-memory segment ``args.name`` with ``args.levels`` levels a side."""
    import asyncio

    from .watch import _run

    name = args.name
    feed = make_feed(args)
    keys = book_keys(args)

    async def main() -> int:
        async with publishing(feed, keys, name, args.levels) as fp:

            def status() -> str:
                live = sum(feed.status(*k).state == "live" for k in keys)
                return (
                    f"publish: {name}: books live {live}/{len(keys)}, "
                    f"{fp.published} updates published"
                )

            return await _run(
                feed,
                keys,
                as_json=False,
                duration=args.duration,
                out=out,
                connect_timeout=args.connect_timeout,
                name="publish",
                status=status,
            )

    return asyncio.run(main())
