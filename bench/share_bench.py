"""Shared-memory books (okxbook.share): writer cost per update, reader cost per top-of-book read
and per 25-level copy, and reader-to-writer lag across processes.

    python bench/share_bench.py            # Markdown table

Method: books from ``okxbook.testing.SyntheticBook`` (``books``, 400 levels a side); GC off while
timing; each figure is the median of 7 passes of 20,000 calls (ns per call), shown beside
``orjson.loads`` of one update frame timed in the same run. Lag: a writer process publishes a
frame every 200 µs for 2 s; this process spins on the slot and, for each new seqId it sees, takes
its clock minus the writer's publish time stored in the slot (both CLOCK_REALTIME, one host).
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from okxbook import DEPTH_DTYPE, Books
from okxbook.share import Publisher, SharedBooks
from okxbook.testing import SyntheticBook

KEY = ("books", "BENCH-USDT")
CALLS = 20_000
PASSES = 7


def book_and_frame():
    gen = SyntheticBook(KEY[1], KEY[0], seed=1)
    books = Books()
    book = books.apply(gen.snapshot_frame())
    frame = gen.next_update_frame()
    books.apply(frame)
    return book, frame


def per_call(fn, calls: int = CALLS) -> float:
    times = []
    gc.disable()
    try:
        for _ in range(PASSES):
            t0 = time.perf_counter_ns()
            for _ in range(calls):
                fn()
            times.append((time.perf_counter_ns() - t0) / calls)
    finally:
        gc.enable()
    return statistics.median(times)


def writer_main(name: str, ready, seconds: float, pace_s: float) -> None:
    """Publish two prepared states of a book alternately, one every ``pace_s`` (busy wait)."""
    gen = SyntheticBook(KEY[1], KEY[0], seed=2)
    books = Books()
    states = []
    book = books.apply(gen.snapshot_frame())
    for _ in range(2):
        book = books.apply(gen.next_update_frame())
        copy = type(book)(*KEY)
        copy.copy_from(book)
        states.append(copy)
    with Publisher(name, [KEY], levels=400) as pub:
        pub.publish(states[0], "live", time.time_ns())
        ready.set()
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            i ^= 1
            pub.publish(states[i], "live", time.time_ns())
            t = time.perf_counter() + pace_s
            while time.perf_counter() < t:
                pass
        time.sleep(0.2)


def lag(seconds: float = 2.0, pace_s: float = 0.0002) -> dict[str, float]:
    name = f"okxbook-bench-{uuid.uuid4().hex[:8]}"
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=writer_main, args=(name, ready, seconds, pace_s))
    proc.start()
    ready.wait(60)
    shared = SharedBooks(name)
    book = shared.book(*KEY)
    lags = []
    last = book.seq_id
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seq = book.top_ticks()[1]
        if seq != last:
            now = time.time_ns()
            info = book.info()
            if info["seq_id"] == seq:
                lags.append(now - info["published_ns"])
            last = seq
    shared.close()
    proc.join(30)
    lags.sort()
    return {
        "n": len(lags),
        "p50": lags[len(lags) // 2] / 1e3,
        "p99": lags[int(len(lags) * 0.99)] / 1e3,
        "max": lags[-1] / 1e3,
    }


def main() -> None:
    book, frame = book_and_frame()
    base = per_call(lambda: orjson.loads(frame))
    rows = [("orjson.loads(one update frame), the baseline", base)]
    for levels in (25, 400):
        name = f"okxbook-bench-{uuid.uuid4().hex[:8]}"
        with Publisher(name, [KEY], levels=levels) as pub:
            rows.append(
                (
                    f"writer: publish one update ({levels} levels a side)",
                    per_call(lambda pub=pub: pub.publish(book, "live", 1)),
                )
            )
            if levels == 400:
                with SharedBooks(name) as shared:
                    sb = shared.book(*KEY)
                    bids = np.empty(25, DEPTH_DTYPE)
                    asks = np.empty(25, DEPTH_DTYPE)
                    rows += [
                        ("reader: top() (floats)", per_call(sb.top)),
                        ("reader: top_ticks() (exact ints)", per_call(sb.top_ticks)),
                        ("reader: levels(25) (new arrays)", per_call(lambda sb=sb: sb.levels(25))),
                        (
                            "reader: levels_into(25 + 25) (your arrays)",
                            per_call(lambda sb=sb: sb.levels_into(bids, asks)),
                        ),
                    ]
    lg = lag()
    print(f"Python {platform.python_version()}, {platform.machine()}, {platform.processor()}")
    print(f"timer resolution {time.get_clock_info('perf_counter').resolution * 1e9:.0f} ns\n")
    print("| operation | ns per call | × orjson.loads |")
    print("|---|---:|---:|")
    for what, ns in rows:
        print(f"| {what} | {ns:,.0f} | {ns / base:.2f} |")
    print(
        f"\nreader-to-writer lag over {lg['n']} updates (writer every 200 µs, reader spinning in "
        f"another process): p50 {lg['p50']:.1f} µs, p99 {lg['p99']:.1f} µs, max {lg['max']:.1f} µs"
    )


if __name__ == "__main__":
    main()
