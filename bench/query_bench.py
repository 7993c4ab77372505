"""Cost of the book queries (okxbook._query) on a 400-level ``books`` book, each beside
``orjson.loads`` of one update frame timed in the same run.

    python bench/query_bench.py            # Markdown table

Method: a book from ``okxbook.testing.SyntheticBook`` (400 levels a side, sizes of a few thousand
quote units a level); GC off; median of 7 passes of 20,000 calls; ns per call, Python call
included (a Cython caller that cimports okxbook._query saves that).
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from share_bench import book_and_frame, per_call

import okxbook as ob


def main() -> None:
    book, frame = book_and_frame()
    base = per_call(lambda: orjson.loads(frame))
    depth10 = float(book.bids(10)["cum_sz"][-1])
    far = float(book.bids(50)["px"][-1])
    px = float(book.asks(3)["px"][-1])
    rows = [
        ("orjson.loads(one update frame), the baseline", base),
        ("fill(book, ASK, qty of 10 levels)", per_call(lambda: ob.fill(book, ob.ASK, depth10))),
        ("fill_lots (exact)", per_call(lambda: ob.fill_lots(book, ob.BID, 10**9))),
        ("qty_within(book, BID, px 50 levels down)", per_call(lambda: ob.qty_within(book, 1, far))),
        ("qty_within_bps(book, BID, 10)", per_call(lambda: ob.qty_within_bps(book, 1, 10.0))),
        ("qty_within_bps_lots (exact)", per_call(lambda: ob.qty_within_bps_lots(book, 1, 10))),
        ("size_at(book, ASK, px) (binary search)", per_call(lambda: ob.size_at(book, -1, px))),
        ("cum_depth(book, BID, 25)", per_call(lambda: ob.cum_depth(book, 1, 25))),
        ("imbalance(book, 10)", per_call(lambda: ob.imbalance(book, 10))),
        (
            "top_levels(book, 25) (a copy for another thread)",
            per_call(lambda: ob.top_levels(book, 25)),
        ),
        ("for scale: book.bids(25)", per_call(lambda: book.bids(25))),
    ]
    print(f"Python {platform.python_version()}, {platform.machine()}")
    print(f"timer resolution {time.get_clock_info('perf_counter').resolution * 1e9:.0f} ns\n")
    print("| query | ns per call | × orjson.loads |")
    print("|---|---:|---:|")
    for what, ns in rows:
        print(f"| {what} | {ns:,.0f} | {ns / base:.2f} |")


if __name__ == "__main__":
    main()
