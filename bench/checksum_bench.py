"""Cost of verifying OKX's legacy checksum per update frame (bench/BENCHMARKS.md, "CRC32 by carry-less
multiplication").

    python bench/checksum_bench.py              # µs per frame and ratio to orjson.loads
    python bench/checksum_bench.py --rounds 15
    valgrind --tool=callgrind --toggle-collect='*Books_*apply*' \\
        python bench/checksum_bench.py --once crc       # instructions: zero | crc | crc-zlib

Frames: one 400-level ``books`` snapshot, then update frames of ``frames.checksum_stream`` with
``checksum: 0`` (nothing verified, OKX since 2026-06-23) or the legacy CRC32 (verified every
frame). ``crc`` verifies with the CRC-32 by carry-less multiplication where the CPU has it,
``crc-zlib`` forces the zlib path. Timed: ``Books.apply`` plus the top-of-book read, and
``orjson.loads`` of the same frames, each the least of 3 passes, in CPU time of this process
(``time.process_time``: a loaded machine's waits are not counted); the ratio is taken within a
round and the median of the rounds is shown.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import orjson
from frames import checksum_stream

import okxbook
from okxbook import _checksum

MODES = ("zero", "crc", "crc-zlib")


def stream(mode: str, updates: int) -> tuple[list[bytes], list[bytes]]:
    return checksum_stream(1, updates, "zero" if mode == "zero" else "crc")


def apply_all(mode: str, snaps: list[bytes], ups: list[bytes]) -> float:
    """Seconds of CPU for applying ``ups`` (and reading the top) after ``snaps``."""
    _checksum._use_portable(mode == "crc-zlib")
    books = okxbook.Books(verify_checksum=mode != "zero")
    for s in snaps:
        books.apply(s)
    apply = books.apply
    t = time.process_time()
    for u in ups:
        book = apply(u)
        book.best_bid_px, book.best_ask_px
    return time.process_time() - t


def loads_all(ups: list[bytes]) -> float:
    loads = orjson.loads
    t = time.process_time()
    for u in ups:
        loads(u)
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--updates", type=int, default=5000)
    ap.add_argument("--once", choices=MODES, help="apply the stream once (for callgrind)")
    args = ap.parse_args()
    if args.once:
        snaps, ups = stream(args.once, 2000)
        apply_all(args.once, snaps, ups)
        return
    data = {m: stream(m, args.updates) for m in MODES}
    us: dict[str, list[float]] = {m: [] for m in MODES}
    ref: dict[str, list[float]] = {m: [] for m in MODES}
    ratio: dict[str, list[float]] = {m: [] for m in MODES}
    gc.disable()
    for _ in range(args.rounds):
        for m in MODES:
            snaps, ups = data[m]
            a = min(apply_all(m, snaps, ups) for _ in range(3)) / len(ups) * 1e6
            o = min(loads_all(ups) for _ in range(3)) / len(ups) * 1e6
            us[m].append(a)
            ref[m].append(o)
            ratio[m].append(a / o)
    _checksum._use_portable(False)
    print(f"CRC-32 by carry-less multiplication on this CPU: {_checksum._accelerated()}")
    print("| update frame | okxbook µs | orjson.loads µs | ratio |")
    print("|---|---:|---:|---:|")
    for m in MODES:
        print(
            f"| {m} | {statistics.median(us[m]):.2f} | {statistics.median(ref[m]):.2f} "
            f"| {statistics.median(ratio[m]):.3f} |"
        )


if __name__ == "__main__":
    main()
