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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import applied_median, machine_line, median, orjson_pass

import okxbook
from okxbook.testing import SyntheticBook, synthetic_stream
from okxbook.testing.sbe import SbeConverter

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


def main() -> None:
    print(machine_line("decode + apply + top per frame"))
    print(
        "| stream | JSON µs/frame | SBE µs/frame | SBE/JSON | orjson.loads µs | bytes JSON → SBE |"
    )
    print("|---|---|---|---|---|---|")
    js, ju, ss, su, codes = l2_streams()
    j = applied_median(lambda: books_with({}, js), ju)
    s = applied_median(lambda: books_with(codes, ss), su)
    oj = median(lambda: orjson_pass(ju))
    size = f"{sum(map(len, ju)) / len(ju):.0f} → {sum(map(len, su)) / len(su):.0f}"
    print(
        f"| books-l2-tbt update, 10x5k | {j:.3f} | **{s:.3f}** | {s / j:.2f} | {oj:.3f} | {size} |"
    )
    bj, bs, bcodes = bbo_streams()
    j = applied_median(lambda: books_with({}, bj[:1]), bj[1:])
    s = applied_median(lambda: books_with(bcodes, bs[:1]), bs[1:])
    oj = median(lambda: orjson_pass(bj[1:]))
    size = f"{sum(map(len, bj)) / len(bj):.0f} → {sum(map(len, bs)) / len(bs):.0f}"
    print(f"| bbo-tbt push, 5k | {j:.3f} | **{s:.3f}** | {s / j:.2f} | {oj:.3f} | {size} |")


if __name__ == "__main__":
    main()
