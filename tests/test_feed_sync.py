"""The real feeder (okxbook.feed.Feed) against the local exchange: initial sync, per-instrument
resync after a seq gap or a bad checksum, and what must NOT resync (a maintenance seqId reset, the
keep-alive). Every book is judged against an independent dict replay of what the server sent
(tests/feed_helpers.py); every reading shown live is checked against the exchange's history.
Protocol references (§n): docs/protocol.md."""

from __future__ import annotations

import asyncio

import pytest
from feed_helpers import (
    ValidityWatch,
    assert_book_equals,
    assert_matches_exchange,
    current_conn,
    harness,
    reference_book,
    run,
    settle,
    sub_counts,
    wait_for,
)

BTC = ("books", "BTC-USDT")
ETH = ("books", "ETH-USDT")
SOL = ("books", "SOL-USDT")
KEYS = [BTC, ETH, SOL]
TRANSPORTS = ["websockets", "picows"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_initial_sync_makes_every_book_live_and_equal_to_the_server_replay(transport):
    async def main():
        async with harness(KEYS, transport=transport) as h:
            assert {k: h.feed.status(*k).state for k in KEYS} == dict.fromkeys(KEYS, "live")
            assert h.ex.connections_opened == 1
            await h.ex.step(30)
            await settle(h.feed, h.ex)
            assert_matches_exchange(h.feed, h.ex)
            assert h.obs.check_no_stale(h.ex) > 30
            for key in KEYS:  # one subscribe each, nothing else
                assert sub_counts(h.ex, key) == (1, 0)
                assert h.obs.states(key) == ["live"]
            assert h.feed.stats["resyncs"] == 0

    run(main)


def test_image_channels_books5_and_bbo_tbt_replace_the_book_on_every_push():
    keys = [("books5", "BTC-USDT"), ("bbo-tbt", "ETH-USDT"), BTC]

    async def main():
        async with harness(keys) as h:
            await h.ex.step(25)
            await settle(h.feed, h.ex)
            assert_matches_exchange(h.feed, h.ex)
            assert len(h.feed.book("books5", "BTC-USDT").bid_levels()) == 5
            assert len(h.feed.book("bbo-tbt", "ETH-USDT").ask_levels()) == 1
            h.obs.check_no_stale(h.ex)

    run(main)


def test_gap_on_an_image_channel_needs_no_resync():
    """books5/bbo-tbt push the whole window each time (no prevSeqId): a lost push is healed by the
    next one; nothing is resubscribed."""
    keys = [("books5", "BTC-USDT"), ("bbo-tbt", "ETH-USDT")]

    async def main():
        async with harness(keys) as h:
            await h.ex.step(3)
            await settle(h.feed, h.ex)
            mark = h.obs.mark()
            for key in keys:
                h.ex.inject_gap(*key)
            await h.ex.step(3)
            await settle(h.feed, h.ex)
            h.obs.assert_untouched(keys, mark)
            for key in keys:
                assert sub_counts(h.ex, key) == (1, 0)
            assert_matches_exchange(h.feed, h.ex)
            h.obs.check_no_stale(h.ex)

    run(main)


def test_tops_stream_yields_readings_and_conflates_for_a_slow_consumer():
    async def main():
        async with harness(KEYS) as h:
            stream = h.feed.tops()
            first = []
            while (top := stream.get_nowait()) is not None:
                first.append(top)
            # opened after the books went live: push until each key's top of book has moved
            for _ in range(50):
                await h.ex.step(1)
                await settle(h.feed, h.ex)
                while (top := stream.get_nowait()) is not None:
                    first.append(top)
                if {(t.channel, t.inst_id) for t in first} == set(KEYS):
                    break
            assert {(t.channel, t.inst_id) for t in first} == set(KEYS)
            assert all(t.status == "live" and t.bid and t.ask for t in first)

            btc_only = h.feed.tops(BTC)
            read_one = asyncio.Event()
            resume = asyncio.Event()
            got = []

            async def slow_consumer():
                async for top in btc_only:
                    got.append(top)
                    if len(got) == 1:
                        read_one.set()
                        await resume.wait()  # asleep while 100 updates arrive
                    else:
                        return

            task = asyncio.create_task(slow_consumer())
            await h.ex.step(1, inst_id="BTC-USDT")
            await asyncio.wait_for(read_one.wait(), 5)
            mark = h.obs.mark()
            await h.ex.step(100, inst_id="BTC-USDT")
            await settle(h.feed, h.ex)
            changes = len(h.obs.tops(BTC, mark))  # on_top sees every top-of-book change
            assert changes > 10
            resume.set()
            await asyncio.wait_for(task, 5)
            latest = got[1]
            assert latest.skipped == changes - 1, (latest.skipped, changes)
            book = h.feed.book(*BTC)
            ref = reference_book(h.ex, BTC)
            assert latest.seq_id == book.seq_id == ref.seq == h.ex.book(*BTC).seq_id
            assert (latest.bid, latest.ask) == (book.best_bid, book.best_ask) == ref.top()
            assert latest.status == "live"
            assert latest.bid_px == float(latest.bid[0]) and latest.ask_sz == float(latest.ask[1])
            assert btc_only.get_nowait() is None  # one reading, not a queue of 100

    run(main)


async def _one_instrument_fault(h, fault, key=BTC):
    """Inject ``fault`` on ``key`` while pushes keep coming; return the accounting before it."""
    ex, feed = h.ex, h.feed
    await ex.step(5)
    await settle(feed, ex)
    conn = current_conn(ex, key)
    others = [k for k in feed.keys if k != key]
    before = {k: sub_counts(ex, k) for k in feed.keys}
    opened = ex.connections_opened
    mark = h.obs.mark()
    with ValidityWatch(feed, others) as watch:
        fault(*key)
        await ex.step(1)  # the faulty frame
        await ex.step(3)  # more, while the resync is in flight
        await settle(feed, ex)
        await ex.step(10)
        await settle(feed, ex)
    return conn, others, before, opened, mark, watch


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_seq_gap_resyncs_only_that_instrument_on_the_same_socket(transport):
    async def main():
        async with harness(KEYS, transport=transport) as h:
            conn, others, before, opened, mark, watch = await _one_instrument_fault(
                h, h.ex.inject_gap
            )
            ex = h.ex
            assert ex.connections_opened == opened and ex.connections == [conn]
            assert sub_counts(ex, BTC) == (before[BTC][0] + 1, before[BTC][1] + 1)
            for k in others:
                assert sub_counts(ex, k) == before[k]
            h.obs.assert_resynced(BTC, mark)
            h.obs.assert_untouched(others, mark)
            assert watch.invalid_seen == []
            assert_matches_exchange(h.feed, ex)
            h.obs.check_no_stale(ex)
            assert h.feed.book(*BTC).seq_gaps == 1

    run(main)


def test_checksum_mismatch_resyncs_only_that_instrument_on_the_same_socket():
    async def main():
        async with harness(KEYS) as h:
            conn, others, before, opened, mark, watch = await _one_instrument_fault(
                h, h.ex.corrupt_checksum, key=ETH
            )
            ex = h.ex
            assert ex.connections_opened == opened and ex.connections == [conn]
            assert sub_counts(ex, ETH) == (before[ETH][0] + 1, before[ETH][1] + 1)
            for k in others:
                assert sub_counts(ex, k) == before[k]
            h.obs.assert_resynced(ETH, mark)
            reasons = [e.reason for e in h.obs.events[mark:] if e.kind == "status" and e.key == ETH]
            assert "checksum" in (reasons[0] or ""), reasons
            h.obs.assert_untouched(others, mark)
            assert watch.invalid_seen == []
            assert_matches_exchange(h.feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


def test_seq_reset_after_maintenance_and_heartbeat_cause_no_resync():
    async def main():
        async with harness(KEYS) as h:
            ex, feed = h.ex, h.feed
            await ex.step(5)
            await settle(feed, ex)
            mark = h.obs.mark()
            with ValidityWatch(feed, KEYS) as watch:
                ex.reset_seq(*BTC)
                ex.heartbeat(*ETH)
                ex.heartbeat(*SOL)
                seq_before = feed.book(*BTC).seq_id
                await ex.step(1)
                await settle(feed, ex)
                assert feed.book(*BTC).seq_id < seq_before  # §4: 15 -> 3 is fine
                await ex.step(5)
                ex.heartbeat(*BTC)
                ex.reset_seq(*SOL)
                await ex.step(1)
                await ex.step(5)
                await settle(feed, ex)
            assert watch.invalid_seen == []
            h.obs.assert_untouched(KEYS, mark)
            for key in KEYS:
                assert sub_counts(ex, key) == (1, 0)
            assert feed.stats["resyncs"] == 0 and feed.stats["integrity_errors"] == 0
            assert feed.book(*BTC).seq_resets == 1 and feed.book(*SOL).seq_resets == 1
            assert feed.book(*ETH).heartbeats == 1 and feed.book(*BTC).heartbeats == 1
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


def test_tops_stream_shows_no_prices_while_resyncing_and_ends_when_the_feed_closes():
    async def main():
        async with harness(KEYS) as h:
            ex, feed = h.ex, h.feed
            await settle(feed, ex)
            readings = []
            stream = feed.tops(BTC)

            async def consumer():
                async for top in stream:
                    readings.append(top)

            task = asyncio.create_task(consumer())
            ex.inject_gap(*BTC)
            await ex.step(1)
            await asyncio.sleep(0.01)
            await settle(feed, ex)
            await ex.step(3)
            await settle(feed, ex)
            await asyncio.sleep(0.01)
            ref_top = reference_book(ex, BTC).top()
            await feed.close()
            await asyncio.wait_for(task, 2)  # the stream ended with the feed
            assert readings, "no readings"
            assert any(t.status == "resyncing" for t in readings)
            for t in readings:
                assert (t.channel, t.inst_id) == BTC
                if t.status != "live":
                    assert t.bid is None and t.ask is None and t.bid_px != t.bid_px  # NaN
            assert readings[-1].status == "live"
            assert (readings[-1].bid, readings[-1].ask) == ref_top

    run(main)


def test_a_live_book_with_no_frame_for_stale_after_is_reported_stale_until_the_next_frame():
    """Issue 14 item 4: a silent connection kept its books "live" until the 30 s ping verdict."""

    async def main():
        async with harness(KEYS, stale_after=0.3, ping_after=30.0) as h:
            ex, feed = h.ex, h.feed
            await ex.step(2)
            await settle(feed, ex)
            mark = h.obs.mark()
            stream = feed.tops(BTC)
            while stream.get_nowait() is not None:
                pass
            # no pushes: every book goes stale, with a reason saying for how long
            await wait_for(lambda: all(feed.status(*k).state == "stale" for k in KEYS), 3)
            assert "no frame for" in (feed.status(*BTC).reason or "")
            assert all(feed.book(*k).is_valid for k in KEYS)  # stale, not wrong
            top = stream.get_nowait()
            assert top is not None and top.status == "stale" and top.bid is None
            await ex.step(1)
            await wait_for(lambda: all(feed.status(*k).state == "live" for k in KEYS), 3)
            for key in KEYS:
                assert h.obs.states(key, mark)[:2] == ["stale", "live"], h.obs.states(key, mark)
            for key in KEYS:  # (not settle: the books may go stale again meanwhile)
                assert_book_equals(feed.book(*key), reference_book(ex, key))
            assert sub_counts(ex, BTC) == (1, 0)  # staleness alone resubscribes nothing

    run(main)
