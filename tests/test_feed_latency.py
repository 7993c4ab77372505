"""Latency you can see (okxbook.feed.latency): the log histogram's percentiles bound numpy's, the
window forgets, and a Feed against LocalExchange reports every stage per book and per connection
with the clock offset equal to the minimum of receive - ts it was given."""

from __future__ import annotations

import asyncio
import random
import time

import numpy as np
import pytest
from feed_helpers import harness, run

from okxbook.feed.latency import STAGES, FeedLatency, LogHistogram, latency_line


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_are_within_one_bucket_above_numpys_and_min_max_exact(seed):
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(10, 2)) - (5000 if seed == 3 else 0) for _ in range(5000)]
    h = LogHistogram(window=60)
    for v in values:
        h.record(v)
    s = h.summary(scale=1.0)
    assert s["n"] == len(values) and s["min"] == min(values) and s["max"] == max(values)
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        true = float(np.percentile(values, q, method="inverted_cdf"))
        got = s[name]
        assert got is not None
        # A bucket spans at most 1/8 of its magnitude: the report is within that of the truth.
        assert abs(got - true) <= abs(true) / 8 + 1, (name, got, true)


def test_the_window_drops_values_older_than_two_windows():
    h = LogHistogram(window=1.0)
    t0 = time.monotonic_ns()
    h.record(1_000_000, t0)
    h.record(5, t0 + 500_000_000)
    assert h.summary(1.0)["max"] == 1_000_000
    h.record(7, t0 + 1_200_000_000)  # rotation: the first second is now the older generation
    assert h.count == 3
    h.record(9, t0 + 2_300_000_000)  # the first second is gone
    s = h.summary(1.0)
    assert s["max"] == 9 and s["min"] == 7 and s["n"] == 2


def test_merging_books_gives_the_connections_histogram():
    lat = FeedLatency(window=60)
    now_ms = time.time_ns() // 1_000_000
    for i in range(100):
        key = ("books", "A" if i % 2 else "B")
        lat.applied(key, "conn-1", now_ms - 5, time.time_ns() - 1000)
        lat.delivered(key)
    rep = lat.report()
    assert set(rep["books"]) == {"books:A", "books:B"}
    conn = rep["connections"]["conn-1"]
    assert all(conn[s]["n"] == 100 for s in STAGES)
    assert rep["books"]["books:A"]["network"]["n"] == 50
    assert conn["apply"]["min"] >= 1.0  # recv was 1 µs before applied, at least
    assert rep["clock_offset_ms"] is not None and rep["clock_offset_ms"] >= 4.0
    assert "network" in latency_line(rep) and "clock offset" in latency_line(rep)


def test_a_feed_reports_each_stage_per_book_and_connection_against_local_exchange():
    seen: list[tuple[int, int]] = []

    async def main():
        clock = {"ts_clock": lambda: time.time_ns() // 1_000_000}
        async with harness(
            ["BTC-USDT", "ETH-USDT"], exchange={"book_options": clock}, latency_window=30.0
        ) as h:
            h.feed.on_book(lambda book, recv_ns: seen.append((book.ts_ms, recv_ns)))
            for _ in range(60):
                await h.ex.step()
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.1)
            return h.feed.latency(), {c.name for c in h.feed.connections}

    rep, names = run(main)
    assert set(rep["books"]) == {"books:BTC-USDT", "books:ETH-USDT"}
    assert set(rep["connections"]) <= names
    for entry in rep["books"].values():
        assert entry["network"]["n"] > 30 and entry["apply"]["n"] > 30
        assert entry["callback"]["n"] > 0 and entry["total"]["n"] == entry["callback"]["n"]
        assert 0 <= entry["apply"]["p50"] <= entry["apply"]["p99"] <= entry["apply"]["max"]
        assert "engine_to_gateway" not in entry  # the SBE split exists on the SBE feed only
    # The offset estimate is exactly the smallest receive - ts of the frames the feed applied.
    want = min(recv - ts * 1_000_000 for ts, recv in seen) / 1e6
    assert rep["clock_offset_ms"] == pytest.approx(want, abs=1e-6)
    assert -1.0 <= rep["clock_offset_ms"] < 1000.0  # one host, one clock
