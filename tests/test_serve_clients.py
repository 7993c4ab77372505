"""``okxbook serve`` against a real third-party OKX client over wss:// (issue 9): python-okx (OKX's
own SDK, ``pip install python-okx``), which accepts only TLS endpoints and checks certificates,
is pointed at a ``CaptureServer(tls=True)`` playing a real capture, trusting the server's CA
through ``SSL_CERT_FILE`` as any OpenSSL client does. The books it receives, kept by a plain dict
model here with every checksum verified, must end equal to okxbook's own replay of the capture."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
from conftest import CF_BOOKS_0513

from okxbook import Books, UnknownChannelError
from okxbook.capture.files import iter_frames
from okxbook.capture.serve import CaptureServer
from okxbook.testing import okx_checksum

pytest.importorskip("trustme")
ws_public = pytest.importorskip(
    "okx.websocket.WsPublicAsync", reason="python-okx is part of the test extra"
)

INSTS = ["BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP"]


class DictBook:
    """What a client keeps: levels by price, replaced on snapshot, changed on update (§3)."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, list[str]] = {}
        self.asks: dict[Decimal, list[str]] = {}
        self.checked = 0

    def apply(self, msg: dict[str, Any]) -> None:
        item = msg["data"][0]
        if msg["action"] == "snapshot":
            self.bids.clear()
            self.asks.clear()
        for side, rows in ((self.bids, item["bids"]), (self.asks, item["asks"])):
            for row in rows:
                if Decimal(row[1]) == 0:
                    side.pop(Decimal(row[0]), None)
                else:
                    side[Decimal(row[0])] = row
        if item.get("checksum"):
            assert okx_checksum(self.levels("bids"), self.levels("asks")) == item["checksum"]
            self.checked += 1

    def levels(self, name: str) -> list[list[str]]:
        side = self.bids if name == "bids" else self.asks
        return [side[p] for p in sorted(side, reverse=name == "bids")]


def okxbook_replay() -> Books:
    books = Books()
    for captured in iter_frames(CF_BOOKS_0513):
        try:
            books.apply(captured.frame)  # this capture replays clean: a BookError fails the test
        except UnknownChannelError:
            pass  # its tickers and trades
    return books


def test_python_okx_over_wss_ends_on_the_books_of_okxbooks_own_replay(monkeypatch):
    expected = okxbook_replay()
    last_ts = {i: expected.book("books", i).ts_ms for i in INSTS}
    received: dict[str, DictBook] = {i: DictBook() for i in INSTS}
    newest_ts: dict[str, int] = dict.fromkeys(INSTS, -1)
    acks: list[dict[str, Any]] = []

    def on_message(raw: str) -> None:
        msg = json.loads(raw)
        if "event" in msg:
            acks.append(msg)
        elif msg.get("arg", {}).get("channel") == "books":
            inst = msg["arg"]["instId"]
            received[inst].apply(msg)
            newest_ts[inst] = int(msg["data"][0]["ts"])

    async def main() -> None:
        async with CaptureServer(
            [CF_BOOKS_0513], speed=None, tls=True, wait_for_subscriber=True
        ) as srv:
            # python-okx builds ssl.create_default_context(): it trusts SSL_CERT_FILE.
            monkeypatch.setenv("SSL_CERT_FILE", srv.tls.ca_file)
            client = ws_public.WsPublicAsync(url=srv.ws_url)
            await client.start()
            assert client.websocket is not None, "python-okx could not connect over wss"
            try:
                await client.subscribe(
                    [{"channel": "books", "instId": i} for i in INSTS], on_message
                )
                await srv.wait_done()
                for _ in range(500):  # the last frames are on their way to the client
                    if all(newest_ts[i] >= last_ts[i] for i in INSTS):
                        break
                    await asyncio.sleep(0.01)
            finally:
                await client.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert [a["event"] for a in acks] == ["subscribe"] * 3
    for inst in INSTS:
        book, mine = expected.book("books", inst), received[inst]
        assert newest_ts[inst] == book.ts_ms, inst
        assert mine.checked > 50, inst  # the client verified the checksum on every push
        assert [tuple(r) for r in mine.levels("bids")] == [
            (p, s, "0", str(n)) for p, s, n in book.bid_levels()
        ], inst
        assert [tuple(r) for r in mine.levels("asks")] == [
            (p, s, "0", str(n)) for p, s, n in book.ask_levels()
        ], inst


def test_python_okx_refuses_the_server_without_its_ca(monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)

    async def main() -> None:
        async with CaptureServer([CF_BOOKS_0513], speed=None, tls=True) as srv:
            client = ws_public.WsPublicAsync(url=srv.ws_url)
            await client.connect()  # python-okx logs the error and leaves no socket
            assert client.websocket is None

    asyncio.run(asyncio.wait_for(main(), 30))
