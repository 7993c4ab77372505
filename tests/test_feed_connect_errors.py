"""A URL that cannot work fails at once, with its reason (issue 9): a 4xx answer to the WebSocket
handshake, an untrusted certificate, wss:// to a plain ws server and ws:// to a TLS one. The feed
raises ``EndpointError`` from ``wait_live`` within a second, with a non-empty reason in the
status; what may pass (429, a refused connection) is retried and says so; and the CLI prints one
line and exits 1."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from feed_helpers import FAST, exchange_in_a_thread

from okxbook import EndpointError, OkxbookError, SubscriptionError
from okxbook.cli import main
from okxbook.feed import Feed
from okxbook.testing import LocalExchange

BTC = ("books", "BTC-USDT")


def _plain(url: str) -> str:
    return url.replace("wss://", "ws://")


def _secure(url: str) -> str:
    return url.replace("ws://", "wss://")


CASES = {
    # name: (exchange options, url from the exchange, words the reason must have)
    "404": ({}, lambda ex: ex.ws_url.replace("/ws/v5/public", "/ws/v5/nope"), "HTTP 404"),
    "untrusted": ({"tls": True}, lambda ex: ex.ws_url, "certificate verify failed"),
    "wss-to-ws": ({}, lambda ex: _secure(ex.ws_url), "plain ws://"),
    "ws-to-wss": ({"tls": True}, lambda ex: _plain(ex.ws_url), "wss://"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_endpoint_that_cannot_work_fails_wait_live_at_once_with_the_reason(case):
    options, url_of, words = CASES[case]
    if options.get("tls"):
        pytest.importorskip("trustme")

    async def main_():
        async with LocalExchange(auto=False, **options) as ex:
            url = url_of(ex)
            started = time.monotonic()
            async with Feed([BTC, ("books", "ETH-USDT")], url=url, **FAST) as feed:
                with pytest.raises(EndpointError) as err:
                    await feed.wait_live(timeout=5.0)
                assert time.monotonic() - started < 2.0
                assert isinstance(err.value, SubscriptionError | OkxbookError)
                assert err.value.code == "connect" and err.value.url == url
                assert words in str(err.value) and str(err.value).startswith(
                    f"cannot connect to {url}: "
                )
                status = feed.status(*BTC)
                assert status.state == "invalid" and words in (status.reason or "")
                assert len(feed.errors) == 2  # both books, one connection, one reason
                await asyncio.sleep(0.1)
                assert feed.stats["connects"] == 0 and ex.connections == []

    asyncio.run(asyncio.wait_for(main_(), 20))


def test_a_429_handshake_is_retried_and_says_so():
    async def main_():
        async with LocalExchange(auto=False, connect_limit=0) as ex:
            async with Feed([BTC], url=ex.ws_url, **FAST) as feed:
                for _ in range(300):
                    if "HTTP 429" in (feed.status(*BTC).reason or ""):
                        break
                    await asyncio.sleep(0.01)
                reason = feed.status(*BTC).reason or ""
                assert reason.startswith("connecting: retry") and "HTTP 429" in reason
                assert feed.errors == []
                ex.connect_limit = None  # the server recovers: so does the feed
                await feed.wait_live(timeout=5.0)

    asyncio.run(asyncio.wait_for(main_(), 20))


@pytest.mark.parametrize("case", ["404", "wss-to-ws"])
def test_watch_prints_one_line_and_exits_1_at_once(case, capsys):
    options, url_of, words = CASES[case]
    # Under PYTHONASYNCIODEBUG (.ci/run) asyncio itself warns of any step over 0.1 s, which a
    # loaded CI machine can take: that diagnostic is asyncio's, not the CLI's one line.
    asyncio_log = logging.getLogger("asyncio")
    level = asyncio_log.level
    asyncio_log.setLevel(logging.ERROR)
    try:
        _watch_fails_in_one_line(options, url_of, words, capsys)
    finally:
        asyncio_log.setLevel(level)


def _watch_fails_in_one_line(options, url_of, words, capsys):
    with exchange_in_a_thread(auto=False, **options) as ex:
        capsys.readouterr()  # what the exchange's start logged is not the CLI's output
        started = time.monotonic()
        code = main(["watch", "BTC-USDT", "ETH-USDT", "--url", url_of(ex), "--duration", "20"])
        took = time.monotonic() - started
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert took < 5.0
    assert len(err) == 1, err
    assert err[0].startswith("okxbook watch: cannot connect to ") and words in err[0]
