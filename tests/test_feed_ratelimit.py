"""Request pacing (protocol doc §6: 480 subscribe/unsubscribe/login per connection per hour,
3 connects per second per IP): ``SlidingWindow`` with an injected clock, the per-instrument resync
backoff under a gap storm against the real feeder, and a reconnect storm."""

from __future__ import annotations

import asyncio
import time
import types

import pytest
from feed_helpers import (
    ValidityWatch,
    assert_matches_exchange,
    harness,
    run,
    settle,
    sub_counts,
    wait_for,
)

from okxbook.feed import ratelimit
from okxbook.feed.ratelimit import SlidingWindow

BTC = ("books", "BTC-USDT")
ETH = ("books", "ETH-USDT")
SOL = ("books", "SOL-USDT")
KEYS = [BTC, ETH, SOL]


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# ----------------------------------------------------------------------------- SlidingWindow


def test_sliding_window_allows_limit_acquisitions_then_refuses():
    clock = Clock()
    w = SlidingWindow(3, 1.0, clock=clock)
    assert w.remaining() == 3 and w.delay() == 0.0
    assert [w.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert w.remaining() == 0


def test_sliding_window_delay_is_the_time_until_the_oldest_expires():
    clock = Clock()
    w = SlidingWindow(2, 10.0, clock=clock)
    w.try_acquire()
    clock.t += 3.0
    w.try_acquire()
    assert w.delay() == pytest.approx(7.0)
    clock.t += 6.5
    assert w.delay() == pytest.approx(0.5)
    assert not w.try_acquire()


def test_sliding_window_expiry_frees_slots_exactly_at_the_window_edge():
    clock = Clock()
    w = SlidingWindow(2, 1.0, clock=clock)
    assert w.try_acquire() and w.try_acquire()
    clock.t += 0.999
    assert w.remaining() == 0 and not w.try_acquire()
    clock.t += 0.001  # exactly one window after: expired
    assert w.remaining() == 2 and w.delay() == 0.0
    assert w.try_acquire()
    assert w.remaining() == 1


def test_sliding_window_never_allows_more_than_limit_in_any_window():
    clock = Clock()
    w = SlidingWindow(5, 2.0, clock=clock)
    granted = []
    for i in range(400):
        clock.t = 1000.0 + i * 0.037
        if w.try_acquire():
            granted.append(clock.t)
    assert len(granted) > 20
    for i, t in enumerate(granted):
        assert len([g for g in granted[i:] if g < t + 2.0]) <= 5


def test_sliding_window_acquire_waits_out_the_delay(monkeypatch):
    clock = Clock()
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        clock.t += seconds

    monkeypatch.setattr(ratelimit, "asyncio", types.SimpleNamespace(sleep=fake_sleep))
    w = SlidingWindow(2, 1.0, clock=clock)

    async def main():
        await w.acquire()
        clock.t += 0.25
        await w.acquire()
        await w.acquire()  # must wait until the first expires
        return clock.t

    t = asyncio.run(main())
    assert slept == [pytest.approx(0.75)]
    assert t == pytest.approx(1001.0)


@pytest.mark.parametrize("limit,window", [(0, 1.0), (1, 0.0), (-1, 1.0)])
def test_sliding_window_rejects_nonsense(limit, window):
    with pytest.raises(ValueError):
        SlidingWindow(limit, window)


def test_okx_limits_are_the_documented_ones():
    assert (ratelimit.CONNECTS_PER_IP.limit, ratelimit.CONNECTS_PER_IP.window) == (3, 1.0)
    budget = ratelimit.requests_per_connection()
    assert (budget.limit, budget.window) == (480, 3600.0)
    assert (ratelimit.REST_BOOKS_PER_IP.limit, ratelimit.REST_BOOKS_PER_IP.window) == (40, 2.0)


# ----------------------------------------------------------------------------- against the feeder


def test_gap_storm_on_one_instrument_is_paced_by_its_resync_backoff():
    """Ten gaps on BTC, each injected as soon as it is live again. With resync_delay=(0.05, 0.4)
    the resyncs wait 0, .05, .1, .2, .4, .4 ... s: at most 5 subscribes fit in the first second,
    and the ten take at least 2.75 s. The exchange enforces a request limit it never reaches."""
    delays = [0.0, 0.05, 0.1, 0.2, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4]

    async def main():
        async with harness(
            KEYS,
            resync_delay=(0.05, 0.4),
            exchange=dict(enforce_request_limit=True, request_limit=30),
        ) as h:
            ex, feed = h.ex, h.feed
            await ex.step(2)
            await settle(feed, ex)
            conn = ex.connections[0]
            before = sub_counts(ex, BTC)
            sub_times: list[float] = []
            seen_subs = before[0]
            gaps = 0
            t0 = time.monotonic()
            with ValidityWatch(feed, [ETH, SOL]) as watch:
                while gaps < 10 or feed.status(*BTC).state != "live":
                    if time.monotonic() - t0 > 8:
                        raise AssertionError(f"storm did not finish: {gaps} gaps")
                    if feed.status(*BTC).state == "live" and gaps < 10:
                        ex.inject_gap(*BTC)
                        gaps += 1
                    await ex.step(1)
                    await asyncio.sleep(0.004)
                    n = sub_counts(ex, BTC)[0]
                    sub_times += [time.monotonic() - t0] * (n - seen_subs)
                    seen_subs = n
                await settle(feed, ex)
            elapsed = time.monotonic() - t0
            subs, unsubs = sub_counts(ex, BTC)
            assert (subs - before[0], unsubs - before[1]) == (10, 10)
            assert len([t for t in sub_times if t < 1.0]) <= 5, sub_times
            assert elapsed >= sum(delays) * 0.95, (elapsed, sub_times)
            # gaps between consecutive resubscribes grow with the backoff
            spacing = [b - a for a, b in zip(sub_times, sub_times[1:])]
            assert all(s >= d * 0.9 for s, d in zip(spacing, delays[1:])), (spacing, delays)
            assert sub_counts(ex, ETH) == (1, 0) and sub_counts(ex, SOL) == (1, 0)
            assert watch.invalid_seen == []
            assert not any(b"60014" in s.data for s in ex.sent(conn) if s.kind == "event")
            assert ex.conn(conn).requests <= 30
            assert feed.subs[BTC].resyncs == 10
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


def test_burst_of_gap_frames_while_resyncing_costs_one_resubscribe():
    """Several broken frames in a row before the resync even starts: one resync, not one each."""

    async def main():
        async with harness(KEYS) as h:
            ex, feed = h.ex, h.feed
            await ex.step(2)
            await settle(feed, ex)
            mark = h.obs.mark()
            for _ in range(10):
                ex.inject_gap(*BTC)
            await ex.step(10, inst_id="BTC-USDT")  # all pushed in one go
            await settle(feed, ex)
            assert sub_counts(ex, BTC) == (2, 1)
            assert h.obs.states(BTC, mark).count("resyncing") == 1
            await ex.step(3)
            await settle(feed, ex)
            assert_matches_exchange(feed, ex)

    run(main)


def test_reconnect_storm_never_exceeds_three_connects_per_second():
    async def main():
        async with harness([BTC], reconnect_delay=(0.001, 0.002)) as h:
            ex, feed = h.ex, h.feed
            for _ in range(6):
                old = ex.connections[0]
                await ex.drop(old)
                await wait_for(
                    lambda: ex.connections and ex.connections[0] != old,
                    4,
                    lambda: (
                        f"reconnect (feed stats {dict(feed.stats)}, exchange "
                        f"{ex.connections_opened} opened, {ex.connects_per_second()}, "
                        f"{[(c.name, c.transport, c._task) for c in feed.connections]})"
                    ),
                )
            await settle(feed, ex)
            assert ex.connections_opened == 7
            per_second = ex.connects_per_second()
            assert max(per_second.values()) <= 3, per_second
            await ex.step(3)
            await settle(feed, ex)
            assert_matches_exchange(feed, ex)

    run(main, timeout=20)
