"""Per-frame latency distribution of ``Books.apply`` (p50/p99/max of every frame timed alone), to
go with bench/per_frame.py (the README's table, with the ratios and the peers).

    python bench/report.py            # prints a Markdown table

Method (after bmoscon/orderbook perf/performance_test.py): GC off while timing; the median of
several whole-stream passes gives µs per frame; a separate pass times every frame alone for
p50/p99/max; the timer resolution, Python version and machine are printed with the figures.
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import applied_median, machine_line, median, orjson_pass
from frames import load_stream, source

import okxbook


def _books(snapshots):
    books = okxbook.Books()
    for frame in snapshots:
        books.apply(frame)
    return books


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


def snapshot_pass(frame, n=200) -> float:
    gc.disable()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        okxbook.Books().apply(frame)
    dt = time.perf_counter_ns() - t0
    gc.enable()
    return dt / n / 1000


def main() -> None:
    print(machine_line(f"streams: {source()}"))
    print("| input | okxbook µs/frame (median) | p50 | p99 | max | orjson.loads µs/frame |")
    print("|---|---|---|---|---|---|")
    for name in ("1x5k", "10x5k"):
        snapshots, updates = load_stream(name)
        ours = applied_median(lambda: _books(snapshots), updates)
        lat = sorted(per_frame_latencies(snapshots, updates))
        oj = median(lambda: orjson_pass(updates))
        p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
        print(
            f"| update frame, {name} | **{ours:.2f}** | {p50:.2f} | {p99:.2f} | {lat[-1]:.1f} | "
            f"{oj:.2f} |"
        )
    snapshots, _ = load_stream("1x5k")
    snap = median(lambda: snapshot_pass(snapshots[0]))
    oj = median(lambda: orjson_pass([snapshots[0]] * 200))
    print(f"| 400-level snapshot | **{snap:.1f}** | | | | {oj:.1f} |")


if __name__ == "__main__":
    main()
