"""The timing both Markdown reports share (bench/report.py, bench/sbe_bench.py): one pass of
``Books.apply`` plus a top-of-book read per frame, one of ``orjson.loads`` (the yardstick), the
median over ``PASSES`` passes, and the line that says where the figures were taken.

Method (after bmoscon/orderbook perf/performance_test.py): GC off while timing, ``perf_counter_ns``
around the whole pass, µs per frame; hand-written because it is a dozen lines that must call
nothing but the code under test inside the timed loop (pytest-benchmark's runner adds its own
frames and calibration: bench/test_bench_*.py use it for the per-round statistics).
"""

from __future__ import annotations

import gc
import platform
import statistics
import time
from collections.abc import Callable

import orjson

import okxbook

PASSES = 9


def apply_pass(books: okxbook.Books, frames: list[bytes]) -> float:
    """µs per frame of ``books.apply`` and the top of book it leaves, over ``frames``."""
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
    """µs per frame of ``orjson.loads`` over ``frames``, timed like ``apply_pass``."""
    loads = orjson.loads
    gc.disable()
    t0 = time.perf_counter_ns()
    for frame in frames:
        loads(frame)
    dt = time.perf_counter_ns() - t0
    gc.enable()
    return dt / len(frames) / 1000


def median(one_pass: Callable[[], float], passes: int = PASSES) -> float:
    """The median of ``passes`` calls of ``one_pass`` (each a fresh timed pass)."""
    return statistics.median(one_pass() for _ in range(passes))


def applied_median(make_books: Callable[[], okxbook.Books], frames: list[bytes]) -> float:
    """``apply_pass`` over ``frames``, each pass on fresh books from ``make_books``: the median."""
    return median(lambda: apply_pass(make_books(), frames))


def machine_line(what: str) -> str:
    """Python, machine, timer resolution and method, then ``what`` (the streams, the work)."""
    return (
        f"Python {platform.python_version()} on {platform.machine()} "
        f"({platform.processor() or platform.platform()}), "
        f"timer resolution {time.get_clock_info('perf_counter').resolution * 1e9:.0f} ns, "
        f"median of {PASSES} passes, GC off; {what}\n"
    )
