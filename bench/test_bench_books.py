"""pytest-benchmark: raw frame bytes -> updated book (parse + apply + checksum verified + top of
book read), beside ``orjson.loads`` of the same frames in the same run. No I/O.

    pytest bench/ --benchmark-columns=median,mean,stddev,rounds

One benchmark round applies a whole stream (5,000 updates); ``extra_info`` carries µs per frame.
"""

from __future__ import annotations

import orjson
import pytest
from frames import load_stream

import okxbook


@pytest.fixture(scope="module", params=["1x5k", "10x5k"])
def stream(request):
    return request.param, *load_stream(request.param)


def _fresh_books(snapshots):
    books = okxbook.Books()
    for frame in snapshots:
        books.apply(frame)
    return books


def test_updates_okxbook(benchmark, stream):
    _name, snapshots, updates = stream

    def run(books):
        apply = books.apply
        for frame in updates:
            book = apply(frame)
            book.best_bid_px, book.best_ask_px  # the top-of-book read a consumer makes

    benchmark.pedantic(run, setup=lambda: ((_fresh_books(snapshots),), {}), rounds=15)
    benchmark.extra_info["us_per_frame"] = benchmark.stats.stats.median / len(updates) * 1e6
    final = _fresh_books(snapshots)
    run(final)
    assert all(b.is_valid for b in final)
    assert sum(b.checksum_ok for b in final) == len(snapshots) + len(updates)


def test_updates_orjson_loads(benchmark, stream):
    _name, _snapshots, updates = stream
    loads = orjson.loads

    def run():
        for frame in updates:
            loads(frame)

    benchmark.pedantic(run, rounds=15)
    benchmark.extra_info["us_per_frame"] = benchmark.stats.stats.median / len(updates) * 1e6


def test_snapshot_okxbook(benchmark):
    snapshots, _ = load_stream("1x5k")
    frame = snapshots[0]

    def run():
        okxbook.Books().apply(frame)

    benchmark.pedantic(run, rounds=200, iterations=5)
    benchmark.extra_info["us_per_frame"] = benchmark.stats.stats.median * 1e6


def test_snapshot_orjson_loads(benchmark):
    snapshots, _ = load_stream("1x5k")
    frame = snapshots[0]
    benchmark.pedantic(orjson.loads, args=(frame,), rounds=200, iterations=5)
    benchmark.extra_info["us_per_frame"] = benchmark.stats.stats.median * 1e6
