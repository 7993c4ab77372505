"""Subscriptions added and removed while the feed runs (issue 9): ``feed.subscribe(...)`` returns
once OKX acked (or raises the refusal), and the new book syncs to the exchange's; ``unsubscribe``
returns once acked and the book is invalidated and gone; the other books never notice."""

from __future__ import annotations

import asyncio

import pytest
from feed_helpers import (
    FAST,
    assert_matches_exchange,
    harness,
    requests,
    run,
    settle,
    step_until,
    sub_counts,
)

from okxbook import SubscriptionError
from okxbook.feed import Feed
from okxbook.feed.sync import State
from okxbook.testing import LocalExchange

BTC = ("books", "BTC-USDT")
ETH = ("books", "ETH-USDT")
SOL = ("books", "SOL-USDT")


def _conn_state(feed, key):
    return next(c.states[key].state for c in feed.connections if key in c.states)


def test_a_subscription_added_while_running_is_acked_then_syncs_to_the_exchange_book():
    async def main():
        async with harness([BTC]) as h:
            ex, feed = h.ex, h.feed
            await ex.step(2)
            await feed.subscribe(["ETH-USDT"])
            # returned on the ack: the server has it, the feed is past "subscribing"
            assert ex.subscribers(*ETH) and _conn_state(feed, ETH) is not State.SUBSCRIBING
            assert feed.keys == [BTC, ETH] and len(feed.connections) == 1
            await feed.wait_live(ETH, timeout=5.0)
            await ex.step(5)
            await settle(feed, ex)
            assert_matches_exchange(feed, ex, [BTC, ETH])
            await feed.subscribe([ETH, "BTC-USDT"])  # already there: nothing sent
            assert sub_counts(ex, ETH) == (1, 0) and sub_counts(ex, BTC) == (1, 0)

    run(main)


def test_a_refused_new_subscription_raises_and_the_others_carry_on():
    async def main():
        async with harness([BTC]) as h:
            ex, feed = h.ex, h.feed
            ex.fail_subscription(*SOL, code="60018", msg="doesn't exist")
            with pytest.raises(SubscriptionError) as err:
                await feed.subscribe([SOL])
            assert (err.value.inst_id, err.value.code) == ("SOL-USDT", "60018")
            assert feed.status(*SOL).state == "invalid"
            await ex.step(3)
            await settle(feed, ex, [BTC])
            assert_matches_exchange(feed, ex, [BTC])

    run(main)


def test_unsubscribe_returns_on_the_ack_and_invalidates_and_removes_the_book():
    async def main():
        async with harness([BTC, ETH]) as h:
            ex, feed = h.ex, h.feed
            await ex.step(2)
            await settle(feed, ex)
            held = feed.book(*ETH)
            assert held.is_valid
            seen = []
            feed.on_status(lambda ch, inst, st: seen.append((inst, st.state, st.reason)))
            stream = feed.tops(ETH)
            await feed.unsubscribe(["ETH-USDT"])
            conn = ex.connections[0]
            assert requests(ex, conn, "unsubscribe", ETH)  # sent, and acked before returning
            assert not ex.subscribers(*ETH)
            assert not held.is_valid and "unsubscribed" in (held.invalid_reason or "")
            assert ("ETH-USDT", "invalid", "unsubscribed") in seen
            top = await asyncio.wait_for(stream.__anext__(), 1.0)
            assert top.inst_id == "ETH-USDT" and top.status == "invalid"
            with pytest.raises(KeyError):
                feed.book(*ETH)
            with pytest.raises(KeyError):
                feed.status(*ETH)
            assert feed.keys == [BTC] and ETH not in feed.connections[0].books
            with pytest.raises(KeyError):
                await feed.unsubscribe([ETH])
            await ex.step(3)
            await settle(feed, ex)
            assert_matches_exchange(feed, ex, [BTC])
            # and it can come back
            await feed.subscribe([ETH])
            await feed.wait_live(ETH, timeout=5.0)
            await ex.step(2)
            await settle(feed, ex)
            assert_matches_exchange(feed, ex, [BTC, ETH], per_connection=False)

    run(main)


def test_a_full_connection_makes_a_new_one_for_the_new_subscription():
    async def main():
        async with harness([BTC], max_per_connection=1) as h:
            ex, feed = h.ex, h.feed
            await feed.subscribe([ETH])
            assert len(feed.connections) == 2 and len(ex.connections) == 2
            assert ex.subscribers(*ETH) != ex.subscribers(*BTC)
            await feed.wait_live(ETH, timeout=5.0)
            await ex.step(3)
            await settle(feed, ex)
            assert_matches_exchange(feed, ex)

    run(main)


def test_a_subscription_added_before_start_is_carried_from_the_start():
    async def main():
        async with LocalExchange(auto=False) as ex:
            feed = Feed([BTC], url=ex.ws_url, rest_url=ex.rest_url, **FAST)
            await feed.subscribe([ETH])  # not started: only added
            assert feed.keys == [BTC, ETH] and ex.connections == []
            async with feed:
                await feed.wait_live(timeout=5.0)
                assert len(ex.connections) == 1

    run(main)


def test_added_while_disconnected_it_is_subscribed_on_the_reconnect():
    async def main():
        async with harness([BTC]) as h:
            ex, feed = h.ex, h.feed
            await ex.drop()
            pending = asyncio.ensure_future(feed.subscribe([ETH]))
            await step_until(ex, pending.done, what="subscribe acked after the reconnect")
            await pending
            await feed.wait_live(timeout=5.0)

    run(main)


def test_login_channels_without_credentials_are_refused_at_once():
    feed = Feed([BTC], credentials=None)
    feed.credentials = None
    with pytest.raises(ValueError, match="login"):
        asyncio.run(feed.subscribe([("books-l2-tbt", "BTC-USDT")]))
    with pytest.raises(TypeError, match="not a string"):
        asyncio.run(feed.subscribe("ETH-USDT"))
