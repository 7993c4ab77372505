"""The real feeder's REST paths against the local exchange (protocol doc §4 REST-seed procedure):
a start with no WS snapshot seeded from ``GET /api/v5/market/books``, a REST snapshot older than the
buffered updates (fetched again), and ``resync="rest"`` (a gap repaired with no WS requests).

With no WS snapshot, what a connection saw cannot rebuild the book, so the reference is the
exchange's whole history replayed from its initial state (feed_helpers.truth)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import orjson
import pytest
from feed_helpers import (
    FAST,
    Observer,
    ValidityWatch,
    assert_matches_exchange,
    harness,
    initial_snapshot,
    run,
    settle,
    step_until,
    sub_counts,
    truth,
    wait_for,
)
from websockets.asyncio.client import connect

from okxbook.feed import Feed
from okxbook.testing import LocalExchange

BTC = ("books", "BTC-USDT")
ETH = ("books", "ETH-USDT")
SOL = ("books", "SOL-USDT")
KEYS = [BTC, ETH, SOL]


def _initial(ex, keys):
    return {k: initial_snapshot(ex, *k) for k in keys}


def test_no_ws_snapshot_seeds_every_book_from_rest_and_splices_buffered_updates():
    async def main():
        async with harness(KEYS, exchange=dict(no_snapshot=True), wait_live=False) as h:
            ex, feed = h.ex, h.feed
            await step_until(
                ex,
                lambda: all(feed.status(*k).state == "live" for k in KEYS),
                what="REST-seeded books live",
            )
            await ex.step(5)
            await settle(feed, ex)
            assert not any(s.kind == "snapshot" for c in ex.all_connections for s in ex.sent(c))
            init = _initial(ex, KEYS)
            assert_matches_exchange(feed, ex, initial=init, per_connection=False)
            assert h.obs.check_no_stale(ex, initial=init) > 0
            assert sorted(r.inst_id for r in ex.rest_requests) == sorted(k[1] for k in KEYS)
            assert all(r.sz == 400 and not r.lagged for r in ex.rest_requests)
            assert feed.stats["rest_seeds"] == 3
            for key in KEYS:
                assert sub_counts(ex, key) == (1, 0)
                assert h.obs.states(key) == ["live"]

    run(main)


async def _warm_up(ex, key, rounds):
    """Give the exchange book some history (another client subscribed), so REST can lag."""
    async with connect(ex.ws_url) as ws:
        await ws.send(
            orjson.dumps(
                {"op": "subscribe", "args": [{"channel": key[0], "instId": key[1]}]}
            ).decode()
        )
        await ex.wait_subscribed(*key)
        await ex.step(rounds)


def test_rest_snapshot_older_than_the_first_buffered_update_is_fetched_again():
    async def main():
        async with LocalExchange(auto=False, no_snapshot=True) as ex:
            # The lagged answer must predate the first update the feed buffers whenever REST
            # answers: the rounds step_until pushes while the request is in flight move both
            # the book and the lagged state on. A lag of 4 publishes was overtaken under CI load
            # (5 rounds in flight: the old snapshot spliced validly and no refetch was needed);
            # 60 leaves 0.6 s of rounds.
            await _warm_up(ex, BTC, 70)
            ex.rest_lag("BTC-USDT", frames=60, requests=1)
            feed = Feed([BTC, ETH], url=ex.ws_url, rest_url=ex.rest_url, **FAST)
            obs = Observer(feed)
            async with feed:
                await step_until(
                    ex,
                    lambda: all(feed.status(*k).state == "live" for k in feed.keys),
                    what="books live",
                )
                await ex.step(5)
                await settle(feed, ex)
                btc = [r for r in ex.rest_requests if r.inst_id == "BTC-USDT"]
                assert len(btc) > 1 and btc[0].lagged and not btc[-1].lagged, btc
                assert btc[0].seq_id < btc[-1].seq_id
                assert feed.stats["rest_refetches"] >= 1
                assert len([r for r in ex.rest_requests if r.inst_id == "ETH-USDT"]) == 1
                init = _initial(ex, [BTC, ETH])
                assert_matches_exchange(feed, ex, initial=init, per_connection=False)
                obs.check_no_stale(ex, initial=init)
                assert obs.states(BTC) == ["live"]

    run(main)


def test_rest_resync_mode_repairs_a_gap_without_unsubscribe_or_subscribe():
    async def main():
        async with harness(KEYS, resync="rest") as h:
            ex, feed = h.ex, h.feed
            await ex.step(5)
            await settle(feed, ex)
            before = {k: sub_counts(ex, k) for k in KEYS}
            conn = ex.connections[0]
            requests_before = ex.conn(conn).requests
            mark = h.obs.mark()
            with ValidityWatch(feed, [ETH, SOL]) as watch:
                ex.inject_gap(*BTC)
                await ex.step(1)
                await step_until(
                    ex,
                    lambda: (
                        feed.status(*BTC).state == "live" and "resyncing" in h.obs.states(BTC, mark)
                    ),
                    what="BTC re-seeded from REST",
                )
                await ex.step(5)
                await settle(feed, ex)
            assert ex.conn(conn).requests == requests_before  # no WS request at all
            for key in KEYS:
                assert sub_counts(ex, key) == before[key]
            assert [r.inst_id for r in ex.rest_requests] == ["BTC-USDT"]
            h.obs.assert_resynced(BTC, mark)
            h.obs.assert_untouched([ETH, SOL], mark)
            assert watch.invalid_seen == []
            assert ex.connections == [conn]
            # the connection's frames have a hole here, so judge against the exchange's history
            assert_matches_exchange(feed, ex, per_connection=False)
            h.obs.check_no_stale(ex)

    run(main)


def test_gap_on_a_rest_seeded_connection_resubscribes_and_seeds_from_rest_again():
    async def main():
        async with harness(KEYS, exchange=dict(no_snapshot=True), wait_live=False) as h:
            ex, feed = h.ex, h.feed
            await step_until(ex, lambda: all(feed.status(*k).state == "live" for k in KEYS))
            await ex.step(3)
            await settle(feed, ex)
            mark = h.obs.mark()
            n_rest = len(ex.rest_requests)
            ex.inject_gap(*ETH)
            await ex.step(1)
            await step_until(
                ex,
                lambda: (
                    feed.status(*ETH).state == "live" and "resyncing" in h.obs.states(ETH, mark)
                ),
            )
            await ex.step(3)
            await settle(feed, ex)
            assert sub_counts(ex, ETH) == (2, 1)
            assert [r.inst_id for r in ex.rest_requests[n_rest:]] == ["ETH-USDT"]
            h.obs.assert_resynced(ETH, mark)
            h.obs.assert_untouched([BTC, SOL], mark)
            init = _initial(ex, KEYS)
            assert_matches_exchange(feed, ex, initial=init, per_connection=False)
            h.obs.check_no_stale(ex, initial=init)

    run(main)


def test_rest_strings_with_trailing_zeros_are_matched_by_value_not_by_string():
    """§0b: REST may print "43250.0" where the WS prints "43250". Levels seeded from REST must be
    replaced and deleted by WS updates for the same price: no duplicate, no crossed book."""

    async def main():
        async with harness(
            [BTC], exchange=dict(no_snapshot=True, rest_pad=True, checksum="zero"), wait_live=False
        ) as h:
            ex, feed = h.ex, h.feed
            await step_until(ex, lambda: feed.status(*BTC).state == "live")
            book = feed.book(*BTC)
            padded = [lv for lv in book.bid_levels() + book.ask_levels() if lv[0].endswith(".0")]
            assert padded, "the REST seed should have brought padded prices"
            await ex.step(150)
            await settle(feed, ex)
            t = truth(ex, BTC, initial=initial_snapshot(ex, *BTC))

            def by_value(levels):
                return [(Decimal(p), s, c) for p, s, c in levels]

            assert by_value(book.bid_levels()) == by_value(t.book.bid_levels())
            assert by_value(book.ask_levels()) == by_value(t.book.ask_levels())
            assert not book.crossed and book.seq_id == t.book.seq

    run(main)


def test_seq_reset_while_rest_seeding_still_brings_the_book_live(monkeypatch):
    """§4: the REST snapshot (seqId S) is answered, but before the feeder reads it the stream has
    moved on through a maintenance reset (prevSeqId S, seqId r < S) and more updates. The book
    must still go live and be right (it once stayed in "seeding" forever; now a snapshot no
    update of the current numbering follows is fetched again)."""
    from okxbook.feed import connection

    real_fetch = connection.fetch_books
    fetched = asyncio.Event()
    release = asyncio.Event()

    async def held_fetch(*args, **kwargs):
        snap = await real_fetch(*args, **kwargs)
        if not fetched.is_set():  # hold the first answer until told
            fetched.set()
            await release.wait()
        return snap

    monkeypatch.setattr(connection, "fetch_books", held_fetch)

    async def main():
        async with harness([BTC], exchange=dict(no_snapshot=True), wait_live=False) as h:
            ex, feed = h.ex, h.feed
            await ex.wait_subscribed(*BTC)
            await wait_for(lambda: feed.connections[0].states[BTC].state == "syncing", 2)
            await ex.step(1)  # first update: seeding starts
            await asyncio.wait_for(fetched.wait(), 2)
            snap_seq = ex.rest_requests[0].seq_id
            ex.reset_seq(*BTC)
            await ex.step(3)  # the reset and two updates after it
            cs = feed.connections[0].states[BTC]
            await wait_for(lambda: len(cs.buffer) == 4, 2, lambda: f"buffer {len(cs.buffer)}")
            assert ex.book(*BTC).seq_id < snap_seq
            release.set()
            await step_until(
                ex,
                lambda: feed.status(*BTC).state == "live",
                timeout=getattr(connection, "SEED_WAIT", 2.0) + 2.0,
                pause=0.05,
                what="BTC live after a reset during the REST seed",
            )
            await ex.step(3)
            await settle(feed, ex)
            init = {BTC: initial_snapshot(ex, *BTC)}
            assert_matches_exchange(feed, ex, initial=init, per_connection=False)
            h.obs.check_no_stale(ex, initial=init)
            assert h.obs.states(BTC) == ["live"]

    run(main)


BAD_BODIES = {
    "empty_list": b"[]",
    "null": b"null",
    "number": b"42",
    "string": b'"ok"',
    "not_json": b"{'code': 0",
    "no_data": b'{"code":"0","msg":""}',
    "data_null": b'{"code":"0","data":null}',
    "data_empty": b'{"code":"0","data":[]}',
    "row_not_object": b'{"code":"0","data":[[1,2]]}',
    "asks_not_list": b'{"code":"0","data":[{"asks":"x","bids":[],"ts":"1","seqId":"5"}]}',
    "no_seqid": b'{"code":"0","data":[{"asks":[],"bids":[],"ts":"1"}]}',
    "negative_seqid": b'{"code":"0","data":[{"asks":[],"bids":[],"ts":"1","seqId":-3}]}',
    "error_code": b'{"code":"50011","msg":"Too Many Requests","data":[]}',
}


@pytest.mark.parametrize("body", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
def test_unusable_rest_body_is_a_rest_error(body):
    import httpx

    from okxbook.feed.rest import RestError, fetch_books

    async def main():
        transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(RestError):
                await fetch_books(client, "http://rest.invalid", "BTC-USDT")

    asyncio.run(main())


def test_a_rest_answer_that_is_not_an_object_is_retried_until_the_book_is_live(monkeypatch):
    """Issue 14 item 6: ``[]`` and ``null`` from /market/books used to raise AttributeError in the
    seed task, which died: the book stayed "syncing" forever. Now they are RestErrors, retried."""
    import httpx

    from okxbook.feed import feed as feed_module

    answers = [b"[]", b"null"]
    real_client = httpx.AsyncClient

    class Flaky(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request):
            if answers:
                return httpx.Response(200, content=answers.pop(0))
            return await self.inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self.inner.aclose()

    monkeypatch.setattr(
        feed_module.httpx, "AsyncClient", lambda **kw: real_client(transport=Flaky(), **kw)
    )

    async def main():
        async with harness([BTC], exchange=dict(no_snapshot=True), wait_live=False) as h:
            ex, feed = h.ex, h.feed
            await step_until(
                ex, lambda: feed.status(*BTC).state == "live", timeout=8, what="BTC live"
            )
            assert answers == []
            await ex.step(3)
            await settle(feed, ex)
            init = _initial(ex, [BTC])
            assert_matches_exchange(feed, ex, initial=init, per_connection=False)

    run(main)
