"""The Feed API at its edges (issue 9): inputs that would silently do the wrong thing are refused
at once, callbacks can be removed, connection trouble is visible in the status, and books-rpi
books are REST-seeded from their own route. Protocol references (§n): docs/protocol.md."""

from __future__ import annotations

import asyncio
import errno
import re
import socket
from decimal import Decimal
from fractions import Fraction

import pytest
from feed_helpers import harness, run, settle, step_until, sub_counts

from okxbook import okx
from okxbook.feed import CallbackHandle, Feed
from okxbook.testing import LocalExchange

BTC = ("books", "BTC-USDT")
ETH = ("books", "ETH-USDT")


# ----------------------------------------------------------------------------- subscriptions


@pytest.mark.parametrize("subs", ["BTC-USDT", b"BTC-USDT"])
def test_a_string_instead_of_a_list_of_subscriptions_is_a_type_error_naming_the_fix(subs):
    with pytest.raises(TypeError, match=r"not a string.*Feed\(\[") as err:
        Feed(subs)
    assert "list" in str(err.value)


@pytest.mark.parametrize("subs", [[], (), iter([])])
def test_no_subscriptions_is_a_value_error(subs):
    with pytest.raises(ValueError, match="no subscriptions"):
        Feed(subs)


def test_a_list_of_one_string_is_one_subscription():
    assert Feed(["BTC-USDT"]).keys == [BTC]


# ----------------------------------------------------------------------------- callbacks


async def _async_top(book, recv_ns):  # pragma: no cover - never called
    pass


async def _async_status(channel, inst_id, status):  # pragma: no cover - never called
    pass


class _AsyncCallable:
    async def __call__(self, *args):  # pragma: no cover - never called
        pass


@pytest.mark.parametrize("register", ["on_top", "on_status"])
@pytest.mark.parametrize("callback", [_async_top, _async_status, _AsyncCallable()])
def test_a_coroutine_callback_is_refused_at_registration_pointing_to_tops(register, callback):
    feed = Feed([BTC])
    with pytest.raises(TypeError, match=r"feed\.tops\(\)"):
        getattr(feed, register)(callback)
    assert feed._top_callbacks == [] and feed._status_callbacks == []


@pytest.mark.parametrize("register", ["on_top", "on_status"])
def test_a_non_callable_callback_is_refused(register):
    with pytest.raises(TypeError, match="callable"):
        getattr(Feed([BTC]), register)("print")


@pytest.mark.parametrize("how", ["handle", "feed"])
def test_a_removed_callback_is_called_no_more(how):
    async def main():
        async with harness([BTC, ETH]) as h:
            ex, feed = h.ex, h.feed
            kept_tops, gone_tops, kept_status, gone_status = [], [], [], []
            feed.on_top(lambda book, ns: kept_tops.append(book.inst_id))
            top_handle = feed.on_top(lambda book, ns: gone_tops.append(book.inst_id))
            feed.on_status(lambda c, i, s: kept_status.append(s.state))
            status_handle = feed.on_status(lambda c, i, s: gone_status.append(s.state))
            assert isinstance(top_handle, CallbackHandle) and top_handle.active
            await ex.step(3)
            await settle(feed, ex)
            assert gone_tops, "the callback ran while registered"
            for handle in (top_handle, status_handle):
                if how == "handle":
                    handle.remove()
                else:
                    feed.remove_callback(handle)
                assert not handle.active
            top_handle.remove()  # twice is harmless
            n_tops, n_status = len(gone_tops), len(gone_status)
            kept_before, kept_status_before = len(kept_tops), len(kept_status)
            await ex.step(5)
            await settle(feed, ex)
            # A status change: drop the connection, the books leave live and come back.
            await ex.drop(ex.connections[0])
            await feed.wait_live(timeout=5.0)
            await ex.step(2)
            await settle(feed, ex)
            assert len(kept_tops) > kept_before and len(kept_status) > kept_status_before
            assert len(gone_tops) == n_tops and len(gone_status) == n_status

    run(main)


# ----------------------------------------------------------------------------- connection trouble


def _closed_port() -> int:
    """A local port nothing listens on (bound, then closed: connects are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_shows_in_the_status_reason_while_it_backs_off():
    async def main():
        port = _closed_port()
        feed = Feed(
            [BTC, ETH],
            url=f"ws://127.0.0.1:{port}/ws/v5/public",
            rest_url=f"http://127.0.0.1:{port}",
            reconnect_delay=(0.05, 0.1),
        )
        reasons: list[str | None] = []
        feed.on_status(lambda c, i, s: reasons.append(s.reason))
        async with feed:
            for _ in range(500):
                if all(
                    (feed.status(*k).reason or "").startswith("connecting: retry 2 ")
                    for k in (BTC, ETH)
                ):
                    break
                await asyncio.sleep(0.01)
            for key in (BTC, ETH):
                status = feed.status(*key)
                assert status.state == "syncing"
                assert re.fullmatch(r"connecting: retry 2 in [0-9.e-]+ s: .+", status.reason)
                # The refusal itself is named, not only "connect failed".
                assert f"[Errno {errno.ECONNREFUSED}]" in status.reason
        assert all(r for r in reasons), "the reason is never empty"

    run(main)


def test_once_connected_the_reason_no_longer_says_connecting():
    async def main():
        port = _closed_port()
        feed = Feed(
            [BTC],
            url=f"ws://127.0.0.1:{port}/ws/v5/public",
            rest_url=f"http://127.0.0.1:{port}",
            reconnect_delay=(0.05, 0.1),
        )
        async with feed:
            for _ in range(500):
                if (feed.status(*BTC).reason or "").startswith("connecting"):
                    break
                await asyncio.sleep(0.01)
            assert feed.status(*BTC).reason.startswith("connecting: retry 1 ")
            async with LocalExchange(auto=False, port=port) as ex:
                await feed.wait_live(timeout=5.0)
                assert feed.status(*BTC).reason is None
                assert ex.subscribers(*BTC)

    run(main)


# ----------------------------------------------------------------------------- books-rpi REST seed

RPI = ("books-rpi", "BTC-USDT")


def _third_field_ratios(levels) -> list[tuple[float, Fraction]]:
    """(px, nonRpi / total) per level of a ``Book.bids()``/``asks()`` array: unit-free, so it
    compares with the exchange's strings without knowing the book's size scale."""
    return [
        (float(r["px"]), Fraction(int(r["extra_lots"]), int(r["sz_lots"])))
        for r in levels
        if int(r["sz_lots"])
    ]


def _rest_ratios(rows) -> list[tuple[float, Fraction]]:
    return [
        (float(r[0]), Fraction(Decimal(r[2])) / Fraction(Decimal(r[1])))
        for r in rows
        if Decimal(r[1])
    ]


def test_a_rest_seeded_books_rpi_book_comes_from_books_rpi_and_keeps_the_non_rpi_size():
    """§8: ``/market/books`` is the non-RPI book; a books-rpi book seeded from it would lose
    (or never get) its third field. No WS snapshot, so the book must be REST-seeded."""

    async def main():
        async with harness([RPI], exchange=dict(no_snapshot=True), wait_live=False) as h:
            ex, feed = h.ex, h.feed
            await step_until(
                ex, lambda: feed.status(*RPI).state == "live", what="books-rpi REST-seeded"
            )
            await settle(feed, ex)
            assert feed.stats["rest_seeds"] == 1
            assert ex.rest_requests and all(r.seq_id is not None for r in ex.rest_requests)
            book = feed.book(*RPI)
            truth = ex.book(*RPI).rest_snapshot(okx.CHANNELS["books-rpi"].depth)
            got_bids, got_asks = _third_field_ratios(book.bids()), _third_field_ratios(book.asks())
            want_bids, want_asks = _rest_ratios(truth["bids"]), _rest_ratios(truth["asks"])
            assert got_bids == want_bids and got_asks == want_asks
            # The test can fail: some level's non-RPI size is neither 0 nor the total.
            assert any(0 < ratio < 1 for _, ratio in got_bids + got_asks)

    run(main)


def test_a_channel_with_no_rest_route_resyncs_by_resubscribing_never_from_market_books():
    """books-elp (books-rpi's old name) has no REST route (``rest_path`` None): with no WS
    snapshot the feed resubscribes; it never seeds it from ``/market/books``, the non-RPI book."""
    elp = ("books-elp", "BTC-USDT")
    assert okx.CHANNELS["books-elp"].rest_path is None

    async def main():
        async with harness([elp], exchange=dict(no_snapshot=True), wait_live=False) as h:
            ex, feed = h.ex, h.feed
            await step_until(ex, lambda: sub_counts(ex, elp)[0] >= 3, what="resubscribed")
            assert ex.rest_requests == [] and feed.stats["rest_seeds"] == 0
            status = feed.status(*elp)
            assert status.state != "live" and status.reason
            assert sub_counts(ex, elp)[1] >= 2  # each retry unsubscribes first

    run(main)
