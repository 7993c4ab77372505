"""SBE beside JSON on the same stream: decode + apply + top of book per frame, from Python.

    python bench/sbe_bench.py          # prints a Markdown table

The streams are the benchmark's synthetic ones on ``books-l2-tbt`` (10 instruments, 400 levels,
5,000 updates) and a ``bbo-tbt`` stream (5,000 pushes), converted to the SBE frames OKX would send
by ``okxbook.testing.sbe.SbeConverter`` (the JSON snapshots become REST ``books-sbe`` snapshots).
Both paths go through ``Books.apply`` and read the top (``best_bid_px``, ``best_ask_px``) after
each frame; ``orjson.loads`` of the JSON frames is timed in the same run as the yardstick.
Targets (issue 13): books-l2-tbt update <= 0.25 µs, bbo-tbt <= 0.15 µs.
"""

from __future__ import annotations

import gc
import platform
import statistics
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import okxbook
from okxbook.testing import SyntheticBook, synthetic_stream
from okxbook.testing.sbe import SbeConverter

PASSES = 9
SEED = 20261201


def l2_streams() -> tuple[list[bytes], list[bytes], list[bytes], list[bytes], dict[str, int]]:
    frames = synthetic_stream(10, 5_000, seed=SEED, channel="books-l2-tbt")
    conv = SbeConverter()
    groups = conv.convert_all(frames)
    json_snaps = [f for f in frames if b'"snapshot"' in f]
    json_updates = [f for f in frames if b'"update"' in f]
    sbe = [f for g in groups for f in g]
    sbe_snaps = [f for f in sbe if f[2:4] == (1006).to_bytes(2, "little")]
    sbe_updates = [f for f in sbe if f[2:4] != (1006).to_bytes(2, "little")]
    return json_snaps, json_updates, sbe_snaps, sbe_updates, conv.codes


def bbo_streams() -> tuple[list[bytes], list[bytes], dict[str, int]]:
    book = SyntheticBook("BTC-USDT", "bbo-tbt", seed=SEED)
    frames = [book.snapshot_frame()] + [book.next_update_frame() for _ in range(5_000)]
    conv = SbeConverter()
    return frames, [f for g in conv.convert_all(frames) for f in g], conv.codes


def books_with(codes: dict[str, int], seeds: list[bytes]) -> okxbook.Books:
    books = okxbook.Books()
    for inst, code in codes.items():
        books.set_inst_id_code(code, inst)
    for frame in seeds:
        books.apply(frame)
    return books


def apply_pass(books: okxbook.Books, frames: list[bytes]) -> float:
    apply = books.apply
    gc.disable()
    t0 = time.perf_counter_ns()
    for frame in frames:
        book = apply(frame)
        book.best_bid_px, book.best_ask_px
    dt = time.perf_counter_ns() - t0
    gc.enable()
    return dt / len(frames) / 1000


def orjson_pass(frames: list[bytes]) -> float:
    loads = orjson.loads
    gc.disable()
    t0 = time.perf_counter_ns()
    for frame in frames:
        loads(frame)
    dt = time.perf_counter_ns() - t0
    gc.enable()
    return dt / len(frames) / 1000


def timed(make_books, frames: list[bytes]) -> float:
    return statistics.median(apply_pass(make_books(), frames) for _ in range(PASSES))


def main() -> None:
    print(
        f"Python {platform.python_version()} on {platform.machine()}, median of {PASSES} passes, "
        "GC off; decode + apply + top per frame\n"
    )
    print(
        "| stream | JSON µs/frame | SBE µs/frame | SBE/JSON | orjson.loads µs | bytes JSON → SBE |"
    )
    print("|---|---|---|---|---|---|")
    js, ju, ss, su, codes = l2_streams()
    j = timed(lambda: books_with({}, js), ju)
    s = timed(lambda: books_with(codes, ss), su)
    oj = statistics.median(orjson_pass(ju) for _ in range(PASSES))
    size = f"{sum(map(len, ju)) / len(ju):.0f} → {sum(map(len, su)) / len(su):.0f}"
    print(
        f"| books-l2-tbt update, 10x5k | {j:.3f} | **{s:.3f}** | {s / j:.2f} | {oj:.3f} | {size} |"
    )
    bj, bs, bcodes = bbo_streams()
    j = timed(lambda: books_with({}, bj[:1]), bj[1:])
    s = timed(lambda: books_with(bcodes, bs[:1]), bs[1:])
    oj = statistics.median(orjson_pass(bj[1:]) for _ in range(PASSES))
    size = f"{sum(map(len, bj)) / len(bj):.0f} → {sum(map(len, bs)) / len(bs):.0f}"
    print(f"| bbo-tbt push, 5k | {j:.3f} | **{s:.3f}** | {s / j:.2f} | {oj:.3f} | {size} |")


if __name__ == "__main__":
    main()
