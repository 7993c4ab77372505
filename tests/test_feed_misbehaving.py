"""The real feeder against small misbehaving servers built here with the ``websockets`` server API
(not the OKX-like LocalExchange): a server that answers only ``pong``, one that answers subscribe
with garbage, one that never answers login. The feeder must say what is wrong and keep retrying,
never sit in "syncing" forever (issue 14 item 5). Protocol references (§n): docs/protocol.md."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from feed_helpers import FAST, run, wait_for
from websockets.asyncio.server import serve

from okxbook.feed import Credentials, Feed

BTC = ("books", "BTC-USDT")


class Server:
    """Answers text ``ping`` with ``pong``; every other request is recorded and answered by
    ``reply(request) -> list[str]``."""

    def __init__(self, reply) -> None:
        self.reply = reply
        self.received: list[str] = []
        self.url = ""

    async def _handler(self, ws) -> None:
        with contextlib.suppress(Exception):
            async for message in ws:
                if message == "ping":
                    await ws.send("pong")
                    continue
                self.received.append(message)
                for answer in self.reply(message):
                    await ws.send(answer)

    def ops(self, op: str) -> list[dict]:
        out = []
        for raw in self.received:
            with contextlib.suppress(ValueError):
                req = json.loads(raw)
                if isinstance(req, dict) and req.get("op") == op:
                    out.append(req)
        return out

    @contextlib.asynccontextmanager
    async def running(self):
        async with serve(self._handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}/ws/v5/public"
            yield self


REPLIES = {
    "pong_only": lambda request: [],
    "garbage": lambda request: ["}{ garbage", '{"event":"subscribe"'],
    "ack_then_silence": lambda request: [
        json.dumps({"event": "subscribe", "arg": json.loads(request)["args"][0]})
    ],
}


@pytest.mark.parametrize("kind", list(REPLIES))
def test_a_subscribe_with_no_usable_answer_times_out_retries_and_says_why(kind):
    async def main():
        async with Server(REPLIES[kind]).running() as srv:
            feed = Feed(
                [BTC], url=srv.url, rest_url="http://127.0.0.1:1", subscribe_timeout=0.2, **FAST
            )
            async with feed:
                await wait_for(lambda: len(srv.ops("subscribe")) >= 3, 5, "subscribe retries")
                status = feed.status(*BTC)
                assert status.state in ("syncing", "resyncing"), status
                assert "within 0.2s" in (status.reason or ""), status
                want = "no book data" if kind == "ack_then_silence" else "no answer to subscribe"
                assert want in (status.reason or ""), status
                assert not feed.book(*BTC).is_valid
                assert feed.stats["subscribe_timeouts"] >= 2
                assert len(srv.ops("unsubscribe")) >= 2  # each retry is unsubscribe + subscribe

    run(main)


def test_a_login_with_no_answer_times_out_and_the_status_says_so():
    creds = Credentials("apikey-123", "secret-value-xyz", "passphrase-xyz")

    async def main():
        async with Server(lambda request: []).running() as srv:
            feed = Feed(
                [("books-l2-tbt", "BTC-USDT")],
                url=srv.url,
                rest_url="http://127.0.0.1:1",
                credentials=creds,
                login_timeout=0.2,
                **FAST,
            )
            async with feed:
                await wait_for(lambda: len(srv.ops("login")) >= 2, 5, "login retried")
                status = feed.status("books-l2-tbt", "BTC-USDT")
                assert status.state == "syncing"
                assert "no answer to login within 0.2s" in (status.reason or ""), status
                assert srv.ops("subscribe") == []  # never subscribed without login
                assert feed.stats["login_timeouts"] >= 1

    run(main)


SECRET = "S3cr3tKeyValue0123456789abcdef"
PASSPHRASE = "Pa55phraseValue!"
API_KEY = "apikey-0123456789"


def test_credentials_echoed_in_an_error_event_are_redacted_everywhere(caplog, tmp_path):
    """Issue 14 item 3: OKX error events echo the offending request. A server answering login
    with ``{"event":"error","code":"60012","msg":"Invalid request: <the login request>"}`` must
    leave no apiKey, passphrase or sign in logs, feed.events, SubscriptionError, status or the
    recording."""
    import logging

    caplog.set_level(logging.DEBUG)
    creds = Credentials(API_KEY, SECRET, PASSPHRASE)
    signs: list[str] = []

    def echo(request: str) -> list[str]:
        req = json.loads(request)
        if req.get("op") == "login":
            signs.append(req["args"][0]["sign"])
        msg = f"Invalid request: {request}"
        return [json.dumps({"event": "error", "code": "60012", "msg": msg, "connId": "c1"})]

    from okxbook.capture import iter_frames
    from okxbook.capture.recorder import Recorder

    async def main():
        recorder = Recorder(tmp_path / "rec", compression="gzip", flush_interval=0.05)
        await recorder.start()
        async with Server(echo).running() as srv:
            feed = Feed(
                [("books-l2-tbt", "BTC-USDT")],
                url=srv.url,
                rest_url="http://127.0.0.1:1",
                credentials=creds,
                recorder=recorder,
                **FAST,
            )
            async with feed:
                await wait_for(lambda: feed.errors, 5, "the login refused")
        await recorder.close()
        return feed

    feed = run(main)
    recorded = [
        f.frame.decode() for path in sorted((tmp_path / "rec").iterdir()) for f in iter_frames(path)
    ]
    assert any("60012" in frame for frame in recorded), recorded  # the echo was recorded ...
    for frame in recorded:
        if "60012" in frame:
            assert json.loads(frame)["code"] == "60012"  # redaction keeps the frame valid JSON
    assert signs
    status = feed.status("books-l2-tbt", "BTC-USDT")
    assert status.state == "invalid"
    texts = [
        caplog.text,
        repr(feed.events),
        *(str(e) for e in feed.errors),
        *(repr(e) for e in feed.errors),
        *(e.msg for e in feed.errors),
        str(status),
        *recorded,  # ... with the credentials redacted
    ]
    assert "60012" in str(feed.errors[0])
    assert "***" in (status.reason or ""), status
    for text in texts:
        for secret in (API_KEY, PASSPHRASE, SECRET, *signs):
            assert secret not in text, (secret, text[:300])


def test_picows_missing_makes_feed_start_raise_instead_of_hanging(monkeypatch):
    """Issue 9 item 3: the ImportError used to die unread in a connection task."""
    import sys

    monkeypatch.setitem(sys.modules, "picows", None)  # import picows -> ImportError

    async def main():
        feed = Feed([BTC], url="ws://127.0.0.1:1/ws/v5/public", transport="picows", **FAST)
        with pytest.raises(ImportError, match=r"pip install 'okxbook\[picows\]'"):
            await feed.start()
        assert feed.connections == []
        await feed.close()

    run(main)


def test_unclaimed_events_are_bounded_and_keep_the_newest():
    from okxbook.feed.feed import EVENTS_KEPT

    n = EVENTS_KEPT + 50

    def flood(request: str) -> list[str]:
        if json.loads(request).get("op") != "subscribe":
            return []
        return [json.dumps({"event": "error", "code": "60012", "msg": f"e{i}"}) for i in range(n)]

    async def main():
        async with Server(flood).running() as srv:
            async with Feed([BTC], url=srv.url, rest_url="http://127.0.0.1:1", **FAST) as feed:
                await wait_for(
                    lambda: feed.events and feed.events[-1].msg == f"e{n - 1}", 5, "the flood"
                )
                assert len(feed.events) == EVENTS_KEPT
                assert feed.events[0].msg == f"e{n - EVENTS_KEPT}"

    run(main)


def test_a_closed_tops_stream_is_released_by_the_feed():
    import gc
    import weakref

    async def main():
        feed = Feed([BTC], url="ws://127.0.0.1:1/ws/v5/public", **FAST)
        stream = feed.tops()
        ref = weakref.ref(stream)
        stream.close()
        assert [t async for t in stream] == []  # a closed stream ends
        del stream
        gc.collect()
        assert ref() is None, "the feed still holds a closed stream"

    run(main)


def test_frames_pushed_before_an_unanswered_login_never_fill_the_book():
    """Issue 9 item 7: a server that never acks login but pushes a book anyway: feed.book() must
    not hold it while the status says syncing."""
    from okxbook.testing.synthetic import SyntheticBook

    key = ("books-l2-tbt", "BTC-USDT")
    snapshot = SyntheticBook(key[1], key[0]).snapshot_frame().decode()
    creds = Credentials(API_KEY, SECRET, PASSPHRASE)

    def push(request: str) -> list[str]:
        return [snapshot] if json.loads(request).get("op") == "login" else []

    async def main():
        async with Server(push).running() as srv:
            feed = Feed(
                [key],
                url=srv.url,
                rest_url="http://127.0.0.1:1",
                credentials=creds,
                login_timeout=0.3,
                **FAST,
            )
            async with feed:
                await wait_for(lambda: feed.book(*key).frames >= 1, 5, "the pushed snapshot")
                await asyncio.sleep(0.05)
                assert feed.status(*key).state == "syncing"
                assert not feed.book(*key).is_valid
                assert feed.book(*key).best_bid is None

    run(main)
