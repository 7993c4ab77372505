"""``okxbook publish NAME INST...`` (and ``watch --publish NAME``): a feeder whose books other
processes on the host read from shared memory (``okxbook.share.SharedBooks(NAME)``).

Owns the command's arguments and its life: the segment is created before the feed starts (a name
in use by a live publisher is one line and exit 2) and removed when the command ends, however it
ends short of SIGKILL (Ctrl-C, SIGTERM, --duration, an error)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TextIO

from okxbook.feed import Feed
from okxbook.share import DEFAULT_LEVELS, Publisher
from okxbook.share.feeder import FeedPublisher

from .values import positive_float, positive_int

__all__ = ["publishing", "register_cli"]


@contextlib.asynccontextmanager
async def publishing(
    feed: Feed, keys: list[tuple[str, str]], name: str, levels: int = DEFAULT_LEVELS
) -> AsyncIterator[FeedPublisher]:
    """Publish ``feed``'s ``keys`` under ``name`` for the duration of the block."""
    with Publisher(name, keys, levels=levels) as publisher:
        fp = FeedPublisher(feed, publisher)
        fp.start()
        try:
            yield fp
        finally:
            await fp.close()


def publish(
    name: str,
    inst_ids: list[str],
    *,
    levels: int = DEFAULT_LEVELS,
    channel: str = "books",
    url: str | None = None,
    rest_url: str | None = None,
    demo: bool = False,
    transport: str = "websockets",
    duration: float | None = None,
    connect_timeout: float | None = None,
    out: TextIO | None = None,
) -> int:
    import asyncio

    from .watch import _run

    feed = Feed(
        inst_ids, channel=channel, url=url, rest_url=rest_url, demo=demo, transport=transport
    )
    keys = [(channel, i) for i in inst_ids]

    async def main() -> int:
        async with publishing(feed, keys, name, levels) as fp:

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
                duration=duration,
                out=out,
                connect_timeout=connect_timeout,
                name="publish",
                status=status,
            )

    return asyncio.run(main())


def _cmd_publish(args: argparse.Namespace) -> int:
    from . import _live_needs, _live_options

    _live_needs(args)
    return publish(args.name, args.inst_ids, levels=args.levels, **_live_options(args))


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``publish`` subcommand; returns its parser."""
    from . import _connection_options

    p: argparse.ArgumentParser = subparsers.add_parser(
        "publish",
        help="keep live books in shared memory for other processes",
        description="Keep live OKX books and publish them into the shared-memory segment NAME: "
        "any process on this host reads them with okxbook.share.SharedBooks(NAME). The segment "
        "is removed when the command ends.",
    )
    p.add_argument("name", metavar="NAME", help="segment name, e.g. okx")
    p.add_argument("inst_ids", nargs="+", metavar="INST", help="instrument ids, e.g. BTC-USDT")
    _connection_options(p)
    p.add_argument(
        "--levels",
        type=positive_int,
        default=DEFAULT_LEVELS,
        help=f"levels a side kept per book (default: {DEFAULT_LEVELS})",
    )
    p.add_argument(
        "--duration", type=positive_float, default=None, help="stop after this many seconds"
    )
    p.set_defaults(func=_cmd_publish)
    return p
