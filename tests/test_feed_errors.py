"""The real feeder against bad input and refusals from the local exchange: malformed frames (the
process and the connection survive; a frame naming a subscribed book resyncs that book alone) and
error events (a refused subscription fails alone with a ``SubscriptionError``; retryable codes are
retried). Protocol references (§n): docs/protocol.md."""

from __future__ import annotations

import asyncio

import pytest
from feed_helpers import (
    FAST,
    Observer,
    ValidityWatch,
    assert_matches_exchange,
    harness,
    run,
    settle,
    sub_counts,
    wait_for,
)

from okxbook.feed import Feed, SubscriptionError
from okxbook.testing import LocalExchange

BTC = ("books", "BTC-USDT")
ETH = ("books", "ETH-USDT")
SOL = ("books", "SOL-USDT")
KEYS = [BTC, ETH, SOL]

# Frames that name no subscribed book: ignored, nothing resyncs, the connection stays.
HARMLESS = {
    "not_json": b"hello, not json",
    "json_array": b"[1,2,3]",
    "json_scalar": b"42",
    "empty_object": b"{}",
    "empty": b"",
    "invalid_utf8": b'{"arg":{"channel":"books","instId":"\xff\xfe"}}',
    "unsubscribed_inst_bad_price": (
        b'{"arg":{"channel":"books","instId":"DOGE-USDT"},"action":"update","data":[{"asks":'
        b'[["x1","1","0","1"]],"bids":[],"ts":"1","checksum":0,"prevSeqId":1,"seqId":2}]}'
    ),
    "unknown_channel": (b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"px":"1"}]}'),
    "event_without_fields": b'{"event":"nonsense"}',
    "truncated_event": b'{"event":"subscribe","arg":{"chan',
    "error_event_for_no_request": b'{"event":"error","code":"60012","msg":"Invalid request"}',
}


def test_garbage_frames_naming_no_subscribed_book_are_ignored_and_the_connection_survives():
    async def main():
        async with harness(KEYS) as h:
            ex, feed = h.ex, h.feed
            await ex.step(3)
            await settle(feed, ex)
            conn = ex.connections[0]
            mark = h.obs.mark()
            with ValidityWatch(feed, KEYS) as watch:
                for payload in HARMLESS.values():
                    await ex.send_malformed(conn, payload)
                    await ex.step(1)
                await ex.send_malformed(conn, b"\x00\x01binary garbage", text=False)
                await ex.step(2)
                await settle(feed, ex)
            assert watch.invalid_seen == []
            h.obs.assert_untouched(KEYS, mark)
            assert ex.connections == [conn] and ex.connections_opened == 1
            for key in KEYS:
                assert sub_counts(ex, key) == (1, 0)
            assert feed.stats["resyncs"] == 0
            assert feed.stats["bad_frames"] >= 4
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


def _bad(inst: str, body: str) -> bytes:
    return (
        f'{{"arg":{{"channel":"books","instId":"{inst}"}},"action":"update","data":[{body}]}}'
    ).encode()


NAMING_BTC = {
    "truncated_json": b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"upd',
    "bad_price": _bad(
        "BTC-USDT",
        '{"asks":[["43x50.1","1","0","1"]],"bids":[],"ts":"1",'
        '"checksum":0,"prevSeqId":1,"seqId":2}',
    ),
    "asks_not_a_list": _bad(
        "BTC-USDT", '{"asks":"oops","bids":[],"ts":"1","checksum":0,"prevSeqId":1,"seqId":2}'
    ),
    "seqid_is_a_string": _bad(
        "BTC-USDT", '{"asks":[],"bids":[],"ts":"1","checksum":0,"prevSeqId":"x","seqId":"y"}'
    ),
    "level_too_short": _bad(
        "BTC-USDT", '{"asks":[["43250.1"]],"bids":[],"ts":"1","checksum":0,"prevSeqId":1,"seqId":2}'
    ),
}


@pytest.mark.parametrize("payload", list(NAMING_BTC.values()), ids=list(NAMING_BTC))
def test_malformed_frame_naming_a_subscribed_book_invalidates_and_resyncs_only_that_book(payload):
    async def main():
        async with harness(KEYS) as h:
            ex, feed = h.ex, h.feed
            await ex.step(3)
            await settle(feed, ex)
            conn = ex.connections[0]
            others = [ETH, SOL]
            before = {k: sub_counts(ex, k) for k in KEYS}
            mark = h.obs.mark()
            with ValidityWatch(feed, others) as watch:
                await ex.send_malformed(conn, payload, channel=BTC[0], inst_id=BTC[1])
                await wait_for(
                    lambda: "resyncing" in h.obs.states(BTC, mark),
                    2,
                    "BTC resyncing after the malformed frame",
                )
                await ex.step(2)
                await settle(feed, ex)
                await ex.step(5)
                await settle(feed, ex)
            assert watch.invalid_seen == []
            h.obs.assert_resynced(BTC, mark)
            reason = [e.reason for e in h.obs.events[mark:] if e.kind == "status"][0]
            assert "malformed" in reason, reason
            h.obs.assert_untouched(others, mark)
            assert sub_counts(ex, BTC) == (before[BTC][0] + 1, before[BTC][1] + 1)
            for k in others:
                assert sub_counts(ex, k) == before[k]
            assert ex.connections == [conn]
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


def test_refused_subscription_raises_subscription_error_naming_channel_instid_and_code():
    async def main():
        async with LocalExchange(auto=False) as ex:
            ex.fail_subscription("books", "ETH-USDT", code="64003")
            feed = Feed(KEYS, url=ex.ws_url, rest_url=ex.rest_url, **FAST)
            obs = Observer(feed)
            async with feed:
                with pytest.raises(SubscriptionError) as info:
                    await feed.wait_live(timeout=5)
                err = info.value
                assert (err.channel, err.inst_id, err.code) == ("books", "ETH-USDT", "64003")
                assert "64003" in str(err) and "ETH-USDT" in str(err)
                assert feed.status(*ETH).state == "invalid"
                assert "64003" in (feed.status(*ETH).reason or "")
                assert not feed.book(*ETH).is_valid
                assert feed.errors == [err]
                await feed.wait_live(BTC, SOL, timeout=5)
                await ex.step(5)
                await settle(feed, ex, [BTC, SOL])
                assert_matches_exchange(feed, ex, [BTC, SOL])
                assert feed.status(*ETH).state == "invalid"  # not retried
                assert sub_counts(ex, ETH) == (1, 0)
                assert obs.states(ETH) == ["invalid"]
                obs.check_no_stale(ex, [BTC, SOL])

    run(main)


def test_retryable_error_code_60014_is_retried_until_the_book_is_live():
    async def main():
        async with LocalExchange(auto=False) as ex:
            ex.fail_subscription("books", "SOL-USDT", code="60014", msg="Requests too frequent.")
            feed = Feed(KEYS, url=ex.ws_url, rest_url=ex.rest_url, **FAST)
            obs = Observer(feed)
            async with feed:
                await feed.wait_live(timeout=5)
                assert feed.errors == []
                assert sub_counts(ex, SOL)[0] == 2
                await ex.step(3)
                await settle(feed, ex)
                assert_matches_exchange(feed, ex)
                assert obs.states(SOL)[-1] == "live" and "invalid" not in obs.states(SOL)

    run(main)


def test_error_event_after_subscribe_touches_no_book():
    async def main():
        async with harness(KEYS) as h:
            ex, feed = h.ex, h.feed
            await settle(feed, ex)
            mark = h.obs.mark()
            await ex.send_raw(
                ex.connections[0], b'{"event":"error","code":"60012","msg":"Invalid request: x"}'
            )
            await asyncio.sleep(0.02)
            await ex.step(2)
            await settle(feed, ex)
            h.obs.assert_untouched(KEYS, mark)
            assert feed.errors == []
            assert any(getattr(e, "code", None) == "60012" for e in feed.events)
            assert_matches_exchange(feed, ex)

    run(main)


def _update(inst: str, prev: int, seq: int) -> bytes:
    return _bad(
        inst, f'{{"asks":[],"bids":[],"ts":"1","checksum":0,"prevSeqId":{prev},"seqId":{seq}}}'
    )


def test_misrouted_frame_on_another_connection_never_touches_the_book_its_owner_keeps_live():
    """Issue 14 item 2: a gap frame for ETH arriving on the connection that carries only BTC used
    to invalidate the one shared ETH book while ETH's own connection never heard of it: ETH stayed
    "live" over an empty book forever. Frames now touch only their connection's books."""

    async def main():
        async with harness([BTC, ETH], max_per_connection=1) as h:
            ex, feed = h.ex, h.feed
            await ex.step(3)
            await settle(feed, ex)
            btc_conn = ex.subscribers(*BTC)[0]
            assert ex.subscribers(*ETH) != [btc_conn]
            mark = h.obs.mark()
            with ValidityWatch(feed, [BTC, ETH]) as watch:
                seq = ex.book(*ETH).seq_id
                await ex.send_raw(btc_conn, _update("ETH-USDT", seq + 1000, seq + 1001))
                await ex.send_raw(btc_conn, _update("DOGE-USDT", 5, 6))  # nobody's instId
                await asyncio.sleep(0.02)
                await ex.step(3)
                await settle(feed, ex)
            assert watch.invalid_seen == []
            h.obs.assert_untouched([BTC, ETH], mark)
            assert feed.book(*ETH).is_valid and feed.status(*ETH).state == "live"
            assert feed.stats["resyncs"] == 0
            for conn in feed.connections:  # no book is kept for a stray instId
                assert ("books", "DOGE-USDT") not in conn.books
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)
