"""Per-frame latency distribution of ``Books.apply`` (p50/p99/max of every frame timed alone), to
go with bench/per_frame.py (the README's table, with the ratios and the peers).

    python bench/report.py            # prints a Markdown table

Method (after bmoscon/orderbook perf/performance_test.py): GC off while timing; the median of
several whole-stream passes gives µs per frame; a separate pass times every frame alone for
p50/p99/max; the timer resolution, Python version and machine are printed with the figures.
"""

from __future__ import annotations

import gc
import platform
import statistics
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frames import load_stream, source

import okxbook

PASSES = 9


def _books(snapshots):
    books = okxbook.Books()
    for frame in snapshots:
        books.apply(frame)
    return books


def per_frame_pass(snapshots, updates) -> float:
    books = _books(snapshots)
    apply = books.apply
    gc.disable()
    t0 = time.perf_counter_ns()
    for frame in updates:
        book = apply(frame)
        book.best_bid_px, book.best_ask_px
    dt = time.perf_counter_ns() - t0
    gc.enable()
    return dt / len(updates) / 1000


def per_frame_latencies(snapshots, updates) -> list[float]:
    books = _books(snapshots)
    apply = books.apply
    clock = time.perf_counter_ns
    out = []
    gc.disable()
    for frame in updates:
        t0 = clock()
        book = apply(frame)
        book.best_bid_px, book.best_ask_px
        out.append((clock() - t0) / 1000)
    gc.enable()
    return out


def orjson_pass(frames) -> float:
    loads = orjson.loads
    gc.disable()
    t0 = time.perf_counter_ns()
    for frame in frames:
        loads(frame)
    dt = time.perf_counter_ns() - t0
    gc.enable()
    return dt / len(frames) / 1000


def snapshot_pass(frame, n=200) -> float:
    gc.disable()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        okxbook.Books().apply(frame)
    dt = time.perf_counter_ns() - t0
    gc.enable()
    return dt / n / 1000


def main() -> None:
    print(
        f"Python {platform.python_version()} on {platform.machine()} "
        f"({platform.processor() or platform.platform()}), "
        f"timer resolution {time.get_clock_info('perf_counter').resolution * 1e9:.0f} ns, "
        f"median of {PASSES} passes, GC off; streams: {source()}\n"
    )
    print("| input | okxbook µs/frame (median) | p50 | p99 | max | orjson.loads µs/frame |")
    print("|---|---|---|---|---|---|")
    for name in ("1x5k", "10x5k"):
        snapshots, updates = load_stream(name)
        ours = statistics.median(per_frame_pass(snapshots, updates) for _ in range(PASSES))
        lat = sorted(per_frame_latencies(snapshots, updates))
        oj = statistics.median(orjson_pass(updates) for _ in range(PASSES))
        p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
        print(
            f"| update frame, {name} | **{ours:.2f}** | {p50:.2f} | {p99:.2f} | {lat[-1]:.1f} | "
            f"{oj:.2f} |"
        )
    snapshots, _ = load_stream("1x5k")
    snap = statistics.median(snapshot_pass(snapshots[0]) for _ in range(PASSES))
    oj = statistics.median(orjson_pass([snapshots[0]] * 200) for _ in range(PASSES))
    print(f"| 400-level snapshot | **{snap:.1f}** | | | | {oj:.1f} |")


if __name__ == "__main__":
    main()
