"""``okxbook publish NAME INST...`` (and ``watch --publish NAME``): a feeder whose books other
processes on the host read from shared memory (``okxbook.share.SharedBooks(NAME)``).

Owns the command's run (its arguments are in ``okxbook.cli``): the segment is created before the
feed starts (a name in use by a live publisher is one line and exit 2) and removed when the
command ends, however it ends short of SIGKILL (Ctrl-C, SIGTERM, --duration, an error)."""

from __future__ import annotations

from typing import TextIO

from okxbook.feed import Feed
from okxbook.share import DEFAULT_LEVELS
from okxbook.share.feeder import publishing

__all__ = ["publish"]


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
    encoding: str = "json",
    out: TextIO | None = None,
    ca_file: str | None = None,
) -> int:
    import asyncio

    from .watch import _run

    feed = Feed(
        inst_ids,
        channel=channel,
        url=url,
        rest_url=rest_url,
        demo=demo,
        transport=transport,
        encoding=encoding,
        ca_file=ca_file,
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
