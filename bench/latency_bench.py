"""End-to-end latency as ``Feed.latency()`` reports it: a feed against ``okxbook.testing.
LocalExchange`` in another process, every frame stamped with the exchange's clock (``ts_clock``),
for each stage exchange ts -> receive -> applied -> callbacks done, and the clock offset estimate.

    python bench/latency_bench.py [SECONDS] [INSTRUMENTS] [--sbe]   # default 5 s, 10 instruments

With ``--sbe`` the feed runs on the binary feed (``books-l2-tbt`` from the exchange's SBE endpoint)
and the report adds the SBE split of ``network``: ``engine_to_gateway`` (outTime - tsUs, fixed by
the local exchange) and ``gateway_to_receive`` (receive - outTime).

The exchange pushes one ``books`` update per instrument every 5 ms (400 levels, CRC32). One host,
one clock: the offset estimate (min of receive - ts) should be about 0 (OKX's ts is whole ms, so
it lies in [0, 1) ms plus the fastest delay); the ``network`` stage is then loopback + the
exchange's own send path.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from okxbook import okx
from okxbook.feed import Feed
from okxbook.feed.auth import Credentials
from okxbook.feed.latency import SBE_STAGES, STAGES
from okxbook.testing import LocalExchange


def now_ms() -> int:
    return time.time_ns() // 1_000_000


CREDS = {"key": "bench", "secret": "bench-secret", "passphrase": "bench-pass"}


def exchange_main(port_q, stop_ev) -> None:
    async def main() -> None:
        async with LocalExchange(
            auto=True,
            interval=0.005,
            checksum="crc",
            book_options={"ts_clock": now_ms},
            credentials=CREDS,
        ) as ex:
            port_q.put((ex.ws_url, ex.rest_url))
            while not stop_ev.is_set():
                await asyncio.sleep(0.05)

    asyncio.run(main())


async def run(seconds: float, n_inst: int, ws: str, rest: str, sbe: bool) -> dict:
    insts = [f"L{i}-USDT" for i in range(n_inst)]
    if sbe:
        feed = Feed(
            [("books-l2-tbt", inst) for inst in insts],
            encoding="sbe",
            url=ws.replace(okx.WS_PUBLIC_PATH, okx.SBE_WS_PATH),
            rest_url=rest,
            credentials=Credentials(CREDS["key"], CREDS["secret"], CREDS["passphrase"]),
            latency_window=seconds,
        )
    else:
        feed = Feed(insts, url=ws, rest_url=rest, latency_window=seconds)
    feed.on_top(lambda book, recv_ns: None)  # a consumer, so the callback stage is measured
    async with feed:
        await feed.wait_live(timeout=30)
        await asyncio.sleep(seconds)
        return feed.latency()


def main() -> None:
    sbe = "--sbe" in sys.argv[1:]
    args = [a for a in sys.argv[1:] if a != "--sbe"]
    seconds = float(args[0]) if args else 5.0
    n_inst = int(args[1]) if len(args) > 1 else 10
    ctx = mp.get_context("spawn")
    port_q, stop_ev = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=exchange_main, args=(port_q, stop_ev))
    proc.start()
    try:
        ws, rest = port_q.get(timeout=60)
        rep = asyncio.run(run(seconds, n_inst, ws, rest, sbe))
    finally:
        stop_ev.set()
        proc.join(30)
    feed_name = "SBE books-l2-tbt" if sbe else "JSON books"
    print(f"Python {platform.python_version()}, {platform.machine()}; {feed_name}, "
          f"{n_inst} instruments, {seconds:g} s, window {rep['window_s']:g} s")  # fmt: skip
    print(f"clock offset estimate (min receive - ts): {rep['clock_offset_ms']:.3f} ms\n")
    print("| connection | stage | frames | p50 µs | p90 µs | p99 µs | max µs |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, entry in rep["connections"].items():
        for stage in (*STAGES, *SBE_STAGES):
            s = entry.get(stage)
            if s is not None and s["n"]:
                print(
                    f"| {name} | {stage} | {s['n']} | {s['p50']:,.0f} | {s['p90']:,.0f} | "
                    f"{s['p99']:,.0f} | {s['max']:,.0f} |"
                )


if __name__ == "__main__":
    main()
