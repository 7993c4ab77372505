"""pytest-benchmark: the same books-l2-tbt / bbo-tbt streams as JSON and as SBE (bench/sbe_bench.py
builds them), decode + apply + top of book per frame, beside ``orjson.loads`` in the same run.

    pytest bench/test_bench_sbe.py --benchmark-columns=median,rounds
"""

from __future__ import annotations

import orjson
import pytest
from sbe_bench import bbo_streams, books_with, l2_streams


@pytest.fixture(scope="module")
def l2():
    return l2_streams()


@pytest.fixture(scope="module")
def bbo():
    return bbo_streams()


def _run(books, frames):
    apply = books.apply
    for frame in frames:
        book = apply(frame)
        book.best_bid_px, book.best_ask_px


@pytest.mark.parametrize("encoding", ["json", "sbe"])
def test_l2_tbt_updates(benchmark, l2, encoding):
    js, ju, ss, su, codes = l2
    seeds, frames, m = (js, ju, {}) if encoding == "json" else (ss, su, codes)
    benchmark.pedantic(_run, setup=lambda: ((books_with(m, seeds), frames), {}), rounds=9)
    benchmark.extra_info["us_per_frame"] = benchmark.stats.stats.median / len(frames) * 1e6
    final = books_with(m, seeds)
    _run(final, frames)
    assert all(b.is_valid for b in final)


@pytest.mark.parametrize("encoding", ["json", "sbe"])
def test_bbo_tbt_pushes(benchmark, bbo, encoding):
    bj, bs, codes = bbo
    frames, m = (bj, {}) if encoding == "json" else (bs, codes)
    benchmark.pedantic(_run, setup=lambda: ((books_with(m, frames[:1]), frames[1:]), {}), rounds=9)
    benchmark.extra_info["us_per_frame"] = benchmark.stats.stats.median / (len(frames) - 1) * 1e6


def test_l2_tbt_orjson_loads(benchmark, l2):
    updates = l2[1]
    benchmark.pedantic(lambda: [orjson.loads(f) for f in updates], rounds=9)
    benchmark.extra_info["us_per_frame"] = benchmark.stats.stats.median / len(updates) * 1e6
