"""The real feeder's connection handling against the local exchange (protocol doc §6): reconnect
with backoff after an abrupt drop, the text ping keep-alive (reconnect without pong, stay up with
pong, no 4004 idle close while pinging), the 64008 service-upgrade switch-over, spreading
subscriptions over connections, and login for the VIP channels without leaking the secret."""

from __future__ import annotations

import asyncio
import logging

import pytest
from feed_helpers import (
    FAST,
    assert_matches_exchange,
    caught_up,
    current_conn,
    harness,
    initial_snapshot,
    requests,
    run,
    settle,
    step_until,
    sub_counts,
    wait_for,
)

from okxbook import okx
from okxbook.feed import Credentials, Feed, SubscriptionError
from okxbook.testing import LocalExchange

BTC = ("books", "BTC-USDT")
ETH = ("books", "ETH-USDT")
SOL = ("books", "SOL-USDT")
KEYS = [BTC, ETH, SOL]


def test_reconnects_with_backoff_after_abrupt_drop_and_resubscribes_everything():
    async def main():
        async with harness(KEYS, reconnect_delay=(0.01, 0.05)) as h:
            ex, feed = h.ex, h.feed
            await ex.step(5)
            await settle(feed, ex)
            old = ex.connections[0]
            mark = h.obs.mark()
            await ex.drop(old)  # TCP abort, no close frame
            await ex.step(3)  # pushes lost while disconnected
            await wait_for(
                lambda: ex.connections and ex.connections[0] != old, 3, "a new connection"
            )
            await settle(feed, ex)
            await ex.step(10)
            await settle(feed, ex)
            assert ex.connections_opened == 2
            new = ex.connections[0]
            for key in KEYS:
                assert len(requests(ex, new, "subscribe", key)) == 1
                assert h.obs.states(key, mark) == ["resyncing", "live"]
            assert feed.stats["disconnects"] == 1 and feed.stats["connects"] == 2
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


def test_sends_text_ping_after_silence_and_reconnects_without_pong():
    async def main():
        async with harness(
            KEYS, exchange=dict(idle_timeout=None), ping_after=0.2, pong_timeout=0.2
        ) as h:
            ex, feed = h.ex, h.feed
            await ex.step(3)
            await settle(feed, ex)
            old = ex.connections[0]
            mark = h.obs.mark()
            ex.silence(old, pong=False)
            await wait_for(
                lambda: ex.connections and ex.connections[0] != old,
                3,
                "a reconnect after the unanswered ping",
            )
            assert "ping" in ex.conn(old).received
            assert ex.conn(old).closed
            assert not [s for s in ex.sent(old) if s.kind == "pong"]
            assert feed.stats["pong_timeouts"] == 1
            await settle(feed, ex)
            await ex.step(5)
            await settle(feed, ex)
            for key in KEYS:
                assert h.obs.states(key, mark) == ["resyncing", "live"]
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


def test_stays_connected_while_silent_if_pongs_come_back_and_pings_prevent_4004_idle_close():
    async def main():
        # The exchange closes a connection idle for 0.5 s with 4004 (§6); the feeder pings after
        # 0.2 s of silence, so the pings and pongs are the data that keeps it open.
        async with harness(
            KEYS, exchange=dict(idle_timeout=0.5), ping_after=0.2, pong_timeout=0.2
        ) as h:
            ex, feed = h.ex, h.feed
            await settle(feed, ex)
            conn = ex.connections[0]
            mark = h.obs.mark()
            ex.silence(conn, pong=True)
            await asyncio.sleep(1.3)
            info = ex.conn(conn)
            assert not info.closed and info.close_code is None
            assert ex.connections_opened == 1
            pings = info.received.count("ping")
            assert 3 <= pings <= 8, pings
            assert len([s for s in ex.sent(conn) if s.kind == "pong"]) == pings
            assert feed.stats["pong_timeouts"] == 0
            ex.unsilence(conn)
            await ex.step(5)
            await settle(feed, ex)
            h.obs.assert_untouched(KEYS, mark)
            assert_matches_exchange(feed, ex)

    run(main)


def test_reconnects_after_the_exchange_closes_an_idle_connection_with_4004():
    async def main():
        # Counterpart of the test above: with pings far off, OKX's idle rule does fire.
        async with harness([BTC], exchange=dict(idle_timeout=0.3), ping_after=30.0) as h:
            ex, feed = h.ex, h.feed
            old = ex.connections[0]
            mark = h.obs.mark()
            assert await ex.wait_closed(old, 2.0) == 4004
            await wait_for(lambda: ex.connections and ex.connections[0] != old, 3, "reconnect")
            await settle(feed, ex)
            await ex.step(3)
            await settle(feed, ex)
            assert h.obs.states(BTC, mark) == ["resyncing", "live"]
            assert_matches_exchange(feed, ex)

    run(main)


def test_64008_notice_switches_to_a_new_connection_with_no_gap_seen_by_consumers():
    async def main():
        async with harness(KEYS) as h:
            ex, feed = h.ex, h.feed
            await ex.step(3)
            await settle(feed, ex)
            old = ex.connections[0]
            held = {k: feed.book(*k) for k in KEYS}  # consumers hold these objects
            mark = h.obs.mark()
            stop = asyncio.Event()

            async def pusher():  # pushes keep coming through the switch
                while not stop.is_set():
                    await ex.step(1)
                    await asyncio.sleep(0.004)

            task = asyncio.create_task(pusher())
            await asyncio.sleep(0.05)
            await ex.notice_64008(old, close_after=3.0)
            # the feeder closes the old connection itself, long before the exchange would
            code = await ex.wait_closed(old, 2.0)
            await asyncio.sleep(0.1)
            stop.set()
            await task
            await settle(feed, ex)
            assert code == 1000, code
            assert ex.connections_opened == 2
            new = [c for c in ex.all_connections if c != old][0]
            assert ex.connections == [new]
            for key in KEYS:
                assert len(requests(ex, new, "subscribe", key)) == 1
                assert h.obs.states(key, mark) == [], h.obs.states(key, mark)
                seqs = [e.seq for e in h.obs.tops(key)]
                assert all(e.state == "live" for e in h.obs.tops(key, mark))
                assert seqs == sorted(seqs), f"{key}: seqIds went backwards: {seqs}"
                assert len(h.obs.tops(key, mark)) > 5
            assert feed.stats["upgrade_switches"] == 1
            assert all(feed.book(*k) is held[k] for k in KEYS)
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


def test_spreads_five_instruments_over_three_connections_with_max_per_connection_2():
    keys = [("books", f"{c}-USDT") for c in ("BTC", "ETH", "SOL", "XRP", "ADA")]

    async def main():
        async with harness(keys, max_per_connection=2) as h:
            ex, feed = h.ex, h.feed
            assert ex.connections_opened == 3 and len(feed.connections) == 3
            assert sorted(len(ex.conn(c).subscriptions) for c in ex.connections) == [1, 2, 2]
            for key in keys:
                assert len(ex.subscribers(*key)) == 1
            await ex.step(10)
            await settle(feed, ex)
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


SECRET = "S3cr3tKeyValue0123456789abcdef"
PASSPHRASE = "Pa55phraseValue!"
EX_CREDS = {"key": "apikey-123", "secret": SECRET, "passphrase": PASSPHRASE}


def test_l2_tbt_and_books_of_one_instid_never_share_a_connection_and_login_precedes_subscribe(
    caplog,
):
    caplog.set_level(logging.DEBUG)
    creds = Credentials("apikey-123", SECRET, PASSPHRASE)
    keys = [
        ("books", "BTC-USDT"),
        ("books-l2-tbt", "BTC-USDT"),
        ("books50-l2-tbt", "ETH-USDT"),
        ("books", "ETH-USDT"),
        ("books", "SOL-USDT"),
    ]

    async def main():
        async with harness(
            keys, exchange=dict(credentials=EX_CREDS), credentials=creds, max_per_connection=2
        ) as h:
            ex, feed = h.ex, h.feed
            await ex.step(5)
            await settle(feed, ex)
            assert_matches_exchange(feed, ex)
            conn_of = {k: current_conn(ex, k) for k in keys}
            assert conn_of[("books", "BTC-USDT")] != conn_of[("books-l2-tbt", "BTC-USDT")]
            for c in ex.connections:
                subs = ex.conn(c).subscriptions
                assert len(subs) <= 2
                vip = [k for k in subs if k[0] in ("books-l2-tbt", "books50-l2-tbt")]
                reqs = requests(ex, c)
                if vip:
                    assert ex.conn(c).logged_in
                    assert reqs[0]["op"] == "login", reqs
                    assert [r["op"] for r in reqs[1:]] == ["subscribe"] * len(subs)
                else:
                    assert ex.conn(c).login_requests == 0
                for raw in ex.conn(c).received:  # the secret is never sent
                    assert SECRET not in str(raw)
            assert not any(
                s.kind == "event" and b"64004" in s.data
                for c in ex.all_connections
                for s in ex.sent(c)
            )
            return feed

    feed = run(main)
    assert SECRET not in repr(feed.credentials) and PASSPHRASE not in repr(feed.credentials)
    assert SECRET not in str(feed.credentials)
    assert caplog.records, "expected some feeder logging at DEBUG"
    assert SECRET not in caplog.text and PASSPHRASE not in caplog.text


def test_failed_login_fails_only_the_vip_subscription_and_leaks_no_secret(caplog):
    caplog.set_level(logging.DEBUG)
    wrong = Credentials("apikey-123", SECRET + "x", PASSPHRASE + "x")
    keys = [("books-l2-tbt", "BTC-USDT"), ("books", "ETH-USDT")]

    async def main():
        async with harness(
            keys, exchange=dict(credentials=EX_CREDS), credentials=wrong, wait_live=False
        ) as h:
            feed = h.feed
            with pytest.raises(SubscriptionError) as info:
                await feed.wait_live(timeout=5)
            await feed.wait_live(("books", "ETH-USDT"), timeout=5)
            assert feed.status("books-l2-tbt", "BTC-USDT").state == "invalid"
            return info.value, feed

    err, feed = run(main)
    assert (err.channel, err.inst_id, err.code) == ("books-l2-tbt", "BTC-USDT", "60009")
    texts = [str(err), repr(err), *map(str, feed.errors), caplog.text]
    for text in texts:
        assert SECRET not in text and PASSPHRASE not in text
        assert (SECRET + "x") not in text and (PASSPHRASE + "x") not in text


def test_vip_channels_without_credentials_are_refused_up_front(monkeypatch):
    for name in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="login"):
        Feed([("books-l2-tbt", "BTC-USDT")], url="ws://127.0.0.1:1/ws/v5/public")


def test_drop_of_one_connection_resyncs_only_the_books_it_carried():
    keys = [("books", f"{c}-USDT") for c in ("BTC", "ETH", "SOL", "XRP")]

    async def main():
        async with harness(keys, max_per_connection=2) as h:
            ex, feed = h.ex, h.feed
            await ex.step(2)
            await settle(feed, ex)
            victim = current_conn(ex, keys[0])
            hit = [k for k in keys if current_conn(ex, k) == victim]
            spared = [k for k in keys if k not in hit]
            spared_conn = current_conn(ex, spared[0])
            assert len(hit) == 2
            mark = h.obs.mark()
            await ex.drop(victim)
            await ex.step(2)
            await wait_for(
                lambda: len(ex.connections) == 2 and victim not in ex.connections,
                3,
                "the dropped connection replaced",
            )
            await settle(feed, ex)
            await ex.step(3)
            await settle(feed, ex)
            assert ex.connections_opened == 3 and spared_conn in ex.connections
            for k in hit:
                assert h.obs.states(k, mark) == ["resyncing", "live"]
            h.obs.assert_untouched(spared, mark)
            for k in spared:
                assert sub_counts(ex, k) == (1, 0)
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


def test_logs_in_again_before_resubscribing_after_reconnect_and_on_the_64008_successor():
    creds = Credentials("apikey-123", SECRET, PASSPHRASE)
    keys = [("books-l2-tbt", "BTC-USDT"), ("books", "ETH-USDT")]

    async def main():
        async with harness(keys, exchange=dict(credentials=EX_CREDS), credentials=creds) as h:
            ex, feed = h.ex, h.feed
            await ex.step(2)
            await settle(feed, ex)
            first = ex.connections[0]
            await ex.drop(first)
            await wait_for(lambda: ex.connections and ex.connections[0] != first, 3, "reconnect")
            await settle(feed, ex)
            second = ex.connections[0]
            mark = h.obs.mark()
            await ex.notice_64008(second, close_after=3.0)
            await ex.wait_closed(second, 2.0)
            await ex.step(2)
            await settle(feed, ex)
            third = ex.connections[0]
            for conn in (first, second, third):
                ops = [r["op"] for r in requests(ex, conn)]
                assert ops == ["login", "subscribe", "subscribe"], (conn, ops)
                assert ex.conn(conn).logged_in
            h.obs.assert_untouched(keys, mark)
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


@pytest.mark.parametrize(
    "transport",
    [
        "websockets",
        "picows",
    ],
)
def test_closing_the_feed_completes_the_websocket_closing_handshake(transport):
    async def main():
        async with harness([BTC, ETH], transport=transport) as h:
            ex, feed = h.ex, h.feed
            conn = ex.connections[0]
            await feed.close()
            code = await ex.wait_closed(conn, 3.0)
            assert code == 1000, code

    run(main)


async def _push_until(ex, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await ex.step(1)
        await asyncio.sleep(0.004)


def test_64008_with_the_old_connection_closed_at_once_hands_over_to_the_successor_alone():
    """The exchange closes right after the notice, before the successor is live: consumers see
    resyncing then live, and the old connection is not reconnected beside the successor."""

    async def main():
        async with harness(KEYS) as h:
            ex, feed = h.ex, h.feed
            await ex.step(2)
            await settle(feed, ex)
            old = ex.connections[0]
            mark = h.obs.mark()
            stop = asyncio.Event()
            task = asyncio.create_task(_push_until(ex, stop))
            await ex.notice_64008(old, close_after=0.0)
            assert await ex.wait_closed(old, 2.0) == 1001
            await wait_for(
                lambda: all(feed.status(*k).state == "live" for k in KEYS), 3, "the successor live"
            )
            await asyncio.sleep(0.1)
            stop.set()
            await task
            await settle(feed, ex)
            assert ex.connections_opened == 2 and len(ex.connections) == 1
            new = ex.connections[0]
            for key in KEYS:
                assert sub_counts(ex, key) == (2, 0)
                assert len(requests(ex, new, "subscribe", key)) == 1
                states = h.obs.states(key, mark)
                assert states in ([], ["resyncing", "live"]), states
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


def test_64008_successor_seeds_from_rest_and_a_later_drop_of_it_reconnects():
    async def main():
        async with harness(KEYS, exchange=dict(no_snapshot=True), wait_live=False) as h:
            ex, feed = h.ex, h.feed
            await step_until(ex, lambda: all(feed.status(*k).state == "live" for k in KEYS))
            old = ex.connections[0]
            mark = h.obs.mark()
            stop = asyncio.Event()
            task = asyncio.create_task(_push_until(ex, stop))
            await ex.notice_64008(old, close_after=3.0)
            assert await ex.wait_closed(old, 3.0) == 1000
            for key in KEYS:
                assert h.obs.states(key, mark) == []
            successor = ex.connections[0]
            mark = h.obs.mark()
            await ex.drop(successor)
            await wait_for(
                lambda: ex.connections and ex.connections[0] != successor,
                3,
                "reconnect of the successor",
            )
            await asyncio.sleep(0.2)
            stop.set()
            await task
            await step_until(ex, lambda: caught_up(feed, ex))
            assert ex.connections_opened == 3
            assert feed.stats["rest_seeds"] == 3 * len(KEYS)
            for key in KEYS:
                assert h.obs.states(key, mark) == ["resyncing", "live"]
                seqs = [e.seq for e in h.obs.live_tops(key)]
                assert seqs == sorted(seqs)
            init = {k: initial_snapshot(ex, *k) for k in KEYS}
            assert_matches_exchange(feed, ex, initial=init, per_connection=False)
            h.obs.check_no_stale(ex, initial=init)

    run(main)


def _abort_first(ex: LocalExchange, when) -> list[str]:
    """Make the exchange abort (TCP, no close frame) the first connection for which
    ``when(conn, message)`` is true, as it receives that message; returns the aborted ids."""
    original = ex._on_message
    aborted: list[str] = []

    async def on_message(conn, message):
        if not aborted and when(conn, message):
            aborted.append(conn.conn_id)
            conn.ws.transport.abort()
            return
        await original(conn, message)

    ex._on_message = on_message
    return aborted


def test_a_reconnect_whose_socket_dies_before_it_subscribes_keeps_reconnecting():
    """Regression: the socket of a fresh reconnect dies at once, so the feeder's subscribe goes to
    a closed socket. That used to raise websockets' ConnectionClosedError out of the connection's
    run loop, which ended it: no more reconnects, books "resyncing" forever."""

    async def main():
        ex = LocalExchange(auto=False)
        original = ex._handler
        handled = []

        async def handler(ws):  # abort the 2nd connection on arrival
            handled.append(ws)
            if len(handled) == 2:
                ws.transport.abort()
            await original(ws)

        ex._handler = handler  # bound by serve() in start()
        async with ex:
            feed = Feed(KEYS, url=ex.ws_url, rest_url=ex.rest_url, **FAST)
            async with feed:
                await feed.wait_live(timeout=5)
                first = ex.connections[0]
                await ex.drop(first)
                await wait_for(
                    lambda: len(handled) >= 3 and len(ex.connections) == 1,
                    3,
                    lambda: f"a third connection ({len(handled)} so far)",
                )
                await settle(feed, ex)
                await ex.step(3)
                await settle(feed, ex)
                assert ex.connections_opened == 3
                assert all(c._task is not None and not c._task.done() for c in feed.connections)
                assert_matches_exchange(feed, ex)

    run(main)


def test_a_drop_during_login_reconnects_and_logs_in_again():
    creds = Credentials("apikey-123", SECRET, PASSPHRASE)
    keys = [("books-l2-tbt", "BTC-USDT"), ("books", "ETH-USDT")]

    async def main():
        async with LocalExchange(auto=False, credentials=EX_CREDS) as ex:
            aborted = _abort_first(ex, lambda conn, msg: '"op":"login"' in str(msg))
            feed = Feed(keys, url=ex.ws_url, rest_url=ex.rest_url, credentials=creds, **FAST)
            async with feed:
                await feed.wait_live(timeout=3)
                assert len(aborted) == 1 and ex.connections_opened == 2
                new = ex.connections[0]
                assert [r["op"] for r in requests(ex, new)] == ["login", "subscribe", "subscribe"]
                assert feed.errors == []
                await ex.step(2)
                await settle(feed, ex)
                assert_matches_exchange(feed, ex)

    run(main, timeout=20)


def test_a_text_ping_from_the_server_is_answered_with_pong_not_counted_as_malformed():
    """Issue 14 item 12: a server-sent text ``ping`` was rejected as a malformed frame."""

    async def main():
        async with harness(KEYS) as h:
            ex, feed = h.ex, h.feed
            await settle(feed, ex)
            conn = ex.connections[0]
            mark = h.obs.mark()
            await ex.send_raw(conn, b"ping")
            await wait_for(lambda: "pong" in ex.conn(conn).received, 2, "the feeder's pong")
            assert feed.stats["bad_frames"] == 0
            assert "ping" not in ex.conn(conn).received  # answered, not mistaken for silence
            await ex.step(2)
            await settle(feed, ex)
            h.obs.assert_untouched(KEYS, mark)
            assert ex.connections == [conn]
            assert_matches_exchange(feed, ex)

    run(main)


# Issue 14 item 4: with the feed's defaults (no ping_after/pong_timeout given), a silent book
# connection is judged within a few seconds, not after the 25 s ping + 5 s pong of §6. The bound is
# generous (the defaults add up to 5 s); the old defaults needed 30 s.
VERDICT_BOUND = 10.0


def test_a_silent_book_connection_is_judged_dead_fast_by_default():
    async def main():
        async with harness(KEYS, exchange=dict(idle_timeout=None)) as h:
            ex, feed = h.ex, h.feed
            assert feed.ping_after + feed.pong_timeout < okx.PING_AFTER_S
            await ex.step(3)
            await settle(feed, ex)
            assert all(feed.status(*key).state == "live" for key in KEYS)
            old = ex.connections[0]
            mark = h.obs.mark()
            ex.silence(old, pong=False)
            await wait_for(
                lambda: all(feed.status(*key).state != "live" for key in KEYS),
                VERDICT_BOUND,
                "the silent connection's books to leave live",
            )
            assert "ping" in ex.conn(old).received
            assert feed.stats["pong_timeouts"] == 1
            for key in KEYS:
                # The verdict itself took the book out of live, saying why.
                first = [e for e in h.obs.events[mark:] if e.kind == "status" and e.key == key][0]
                assert first.state == "resyncing" and first.valid is False
                assert "pong" in (first.reason or ""), first
            # ... and it reconnects as before, the books coming back right.
            await wait_for(lambda: ex.connections and ex.connections[0] != old, 5, "reconnect")
            await settle(feed, ex, timeout=8.0)
            await ex.step(3)
            await settle(feed, ex)
            for key in KEYS:
                assert h.obs.states(key, mark) == ["resyncing", "live"]
            assert_matches_exchange(feed, ex)
            h.obs.check_no_stale(ex)

    run(main)


def test_a_quiet_book_connection_that_answers_pong_stays_live_with_the_fast_defaults():
    async def main():
        async with harness(KEYS, exchange=dict(idle_timeout=None)) as h:
            ex, feed = h.ex, h.feed
            await ex.step(3)
            await settle(feed, ex)
            conn = ex.connections[0]
            mark = h.obs.mark()
            ex.silence(conn, pong=True)  # no book frames, but pongs come back
            # Long enough for at least one ping + pong round with the defaults (5 s in all).
            await wait_for(
                lambda: ex.conn(conn).received.count("ping") >= 2,
                VERDICT_BOUND + 5,
                "two pings on the quiet connection",
            )
            info = ex.conn(conn)
            assert not info.closed and ex.connections_opened == 1
            assert feed.stats["pong_timeouts"] == 0
            assert all(feed.status(*key).state == "live" for key in KEYS)
            ex.unsilence(conn)
            await ex.step(3)
            await settle(feed, ex)
            h.obs.assert_untouched(KEYS, mark)
            assert_matches_exchange(feed, ex)

    run(main)


@pytest.mark.parametrize(
    "kw",
    [
        dict(ping_after=0),
        dict(ping_after=-1.0),
        dict(pong_timeout=0),
        dict(ping_after=float("nan")),
    ],
)
def test_keepalive_settings_that_would_flood_or_never_judge_are_rejected(kw):
    with pytest.raises(ValueError, match=r"ping_after|pong_timeout"):
        Feed([BTC], **kw)
