"""Tests of okxbook.testing: the synthetic OKX book streams and the local OKX-like exchange.

These pin the server itself with a plain websockets client and httpx, and check every book it sends
with an independent replay (Decimal-keyed book, own CRC32) written here, so they need nothing from
the okxbook core. Protocol references (§n) are to docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import importlib
import json
import sys
import time
import types
import zlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError


def _import_testing() -> types.ModuleType:
    # okxbook/__init__ imports the compiled core; okxbook.testing must not need it, so if the core
    # is not built, load the subpackage under a bare namespace package of the same name.
    try:
        return importlib.import_module("okxbook.testing")
    except ImportError:
        for name in [m for m in sys.modules if m == "okxbook" or m.startswith("okxbook.")]:
            del sys.modules[name]
        pkg = types.ModuleType("okxbook")
        pkg.__path__ = [str(Path(__file__).resolve().parents[1] / "okxbook")]
        sys.modules["okxbook"] = pkg
        return importlib.import_module("okxbook.testing")


testing = _import_testing()
SyntheticBook = testing.SyntheticBook
LocalExchange = testing.LocalExchange
okx_checksum = testing.okx_checksum

BTC = "BTC-USDT"
ETH = "ETH-USDT"


# ---------------------------------------------------------------------------- independent client


def crc(bids: list[list[str]], asks: list[list[str]]) -> int:
    """§3 checksum, written independently of synthetic.okx_checksum."""
    parts = []
    for b, a in zip(bids[:25] + [None] * 25, asks[:25] + [None] * 25):
        if b is not None:
            parts += [b[0], b[1]]
        if a is not None:
            parts += [a[0], a[1]]
        if b is None and a is None:
            break
    v = zlib.crc32(":".join(parts).encode())
    return v - 2**32 if v & 0x80000000 else v


class Replay:
    """A minimal client book: the §2 merge rules and §4 seq rule, checked on every frame."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, list[str]] = {}
        self.asks: dict[Decimal, list[str]] = {}
        self.seq: int | None = None
        self.checksums_verified = 0

    def sides(self) -> tuple[list[list[str]], list[list[str]]]:
        return (
            [self.bids[p] for p in sorted(self.bids, reverse=True)],
            [self.asks[p] for p in sorted(self.asks)],
        )

    def apply(self, frame: bytes | str, *, check_seq: bool = True) -> dict[str, Any]:
        msg = json.loads(frame)
        d: dict[str, Any] = msg["data"][0]
        if "action" not in msg:  # image channel: the whole book each push
            self.bids = {Decimal(r[0]): r for r in d["bids"]}
            self.asks = {Decimal(r[0]): r for r in d["asks"]}
            self.seq = d["seqId"]
            return d
        if msg["action"] == "snapshot":
            assert d["prevSeqId"] == -1
            self.bids, self.asks = {}, {}
        elif check_seq:
            assert d["prevSeqId"] == self.seq, (d["prevSeqId"], self.seq)
        for book, rows in ((self.bids, d["bids"]), (self.asks, d["asks"])):
            for r in rows:
                if r[1] == "0":
                    del book[Decimal(r[0])]
                else:
                    book[Decimal(r[0])] = r
        self.seq = d["seqId"]
        if d.get("checksum"):
            assert d["checksum"] == crc(*self.sides())
            self.checksums_verified += 1
        if self.bids and self.asks:
            assert max(self.bids) < min(self.asks), "crossed book"
        return d


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


async def send(
    ws: ClientConnection, op: str, *args: tuple[str, str], req_id: str | None = None
) -> None:
    req: dict[str, Any] = {"op": op, "args": [{"channel": c, "instId": i} for c, i in args]}
    if req_id is not None:
        req["id"] = req_id
    await ws.send(json.dumps(req))


async def recv(ws: ClientConnection, timeout: float = 2.0) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return msg


async def recv_raw(ws: ClientConnection, timeout: float = 2.0) -> str:
    msg = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(msg, str), "OKX pushes text frames"
    return msg


async def nothing_within(ws: ClientConnection, seconds: float = 0.1) -> bool:
    try:
        await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    return False


def sign(secret: str, ts: str) -> str:
    mac = hmac.new(secret.encode(), (ts + "GET" + "/users/self/verify").encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


async def subscribed(ws: ClientConnection, channel: str, inst_id: str = BTC) -> Replay:
    """Subscribe to one book, take its ack, and replay the snapshot that follows."""
    await send(ws, "subscribe", (channel, inst_id))
    await recv(ws)
    client = Replay()
    client.apply(await recv_raw(ws))
    return client


async def follow(ex: Any, ws: ClientConnection, client: Replay, n: int) -> None:
    """Push ``n`` frames of every book and replay them (chain and checksum checked)."""
    await ex.step(n)
    for _ in range(n):
        client.apply(await recv_raw(ws))


@contextlib.asynccontextmanager
async def with_clients(
    **options: Any,
) -> AsyncIterator[tuple[Any, ClientConnection, httpx.AsyncClient]]:
    """A ``LocalExchange(auto=False, **options)``, a WebSocket client on it and a REST client."""
    async with (
        LocalExchange(auto=False, **options) as ex,
        connect(ex.ws_url) as ws,
        httpx.AsyncClient() as http,
    ):
        yield ex, ws, http


def assert_rest_is_replayed(snap: dict[str, Any], client: Replay) -> None:
    """A REST snapshot is the client's replayed book at the same seqId."""
    assert snap["seqId"] == client.seq
    bids, asks = client.sides()
    assert snap["bids"] == bids and snap["asks"] == asks


# ---------------------------------------------------------------------------- synthetic streams


def test_checksum_matches_okx_doc_examples() -> None:
    assert (
        okx_checksum([["3366.1", "7"], ["3366", "6"]], [["3366.8", "9"], ["3368", "8"]])
        == -1881014294
    )
    # 1 bid, 3 asks: the short side is skipped, not padded (§3)
    asks = [["3366.8", "9"], ["3368", "8"], ["3372", "8"]]
    assert okx_checksum([["3366.1", "7"]], asks) == 831078360
    assert crc([["3366.1", "7"]], asks) == 831078360


@pytest.mark.parametrize("channel", ["books", "books50-l2-tbt", "books-rpi", "books5", "bbo-tbt"])
def test_synthetic_stream_replays_to_published_window(channel: str) -> None:
    book = SyntheticBook(BTC, channel, seed=7)
    client = Replay()
    client.apply(book.snapshot_frame())
    for _ in range(300):
        prev = client.seq
        d = client.apply(book.next_update_frame())
        assert 1 <= d["seqId"] - prev <= 60
        bids, asks = client.sides()
        # every frame leaves exactly `depth` levels a side, levels pushed out got explicit deletes
        assert len(bids) == len(asks) == book.depth
    bids, asks = book.levels()
    got_b, got_a = client.sides()
    assert [(r[0], r[1], r[3]) for r in got_b] == bids
    assert [(r[0], r[1], r[3]) for r in got_a] == asks
    if channel in ("books", "books50-l2-tbt"):
        assert client.checksums_verified == 301  # the snapshot carries one too


def test_synthetic_prints_prices_and_sizes_like_okx() -> None:
    book = SyntheticBook(BTC, seed=1, tick_sz="0.1", lot_sz="0.00000001")
    frames = [book.snapshot_frame()] + [book.next_update_frame() for _ in range(50)]
    first = frames[0].decode()
    assert first.startswith('{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot"')
    assert ", " not in first and ": " not in first  # compact JSON
    d = json.loads(frames[1])["data"][0]
    assert list(d) == ["asks", "bids", "ts", "checksum", "prevSeqId", "seqId"]  # OKX key order
    assert isinstance(d["ts"], str) and d["ts"].isdigit()
    for f in frames:
        for side in ("asks", "bids"):
            for px, sz, third, count in json.loads(f)["data"][0][side]:
                for text in (px, sz):
                    assert "e" not in text.lower() and not text.startswith("-")
                    if "." in text:
                        assert not text.endswith("0") and not text.endswith(".")
                assert Decimal(px) % Decimal("0.1") == 0
                assert third == "0" and count.isdigit()
                if sz == "0":
                    assert count == "0"


def test_synthetic_is_deterministic_for_a_seed() -> None:
    def stream(seed: int) -> list[bytes]:
        b = SyntheticBook(ETH, seed=seed)
        return [b.snapshot_frame()] + [b.next_update_frame() for _ in range(20)]

    assert stream(3) == stream(3)
    assert stream(3) != stream(4)


def test_synthetic_checksum_modes() -> None:
    zero = json.loads(SyntheticBook(BTC, checksum="zero").next_update_frame())["data"][0]
    assert zero["checksum"] == 0
    absent = json.loads(SyntheticBook(BTC, checksum="absent").next_update_frame())["data"][0]
    assert "checksum" not in absent and absent["prevSeqId"] < absent["seqId"]
    # books-rpi: [px, total, nonRpi, count], no checksum, seqId before prevSeqId as captured
    rpi = SyntheticBook(BTC, "books-rpi")
    d = json.loads(rpi.snapshot_frame())["data"][0]
    assert list(d) == ["asks", "bids", "ts", "seqId", "prevSeqId"]
    assert all(Decimal(r[2]) <= Decimal(r[1]) for r in d["bids"] + d["asks"])
    # corrupted: non-zero and wrong, whatever the mode
    for mode in ("crc", "zero", "absent"):
        b = SyntheticBook(BTC, checksum=mode)
        d = json.loads(b.next_update_frame(corrupt_checksum=True))["data"][0]
        assert d["checksum"] not in (0, b.checksum())


def test_image_channels_have_no_action_nor_prev_seq_id() -> None:
    b5 = json.loads(SyntheticBook(BTC, "books5").next_update_frame())
    assert "action" not in b5 and list(b5["data"][0]) == ["asks", "bids", "instId", "ts", "seqId"]
    assert len(b5["data"][0]["asks"]) == len(b5["data"][0]["bids"]) == 5
    bbo = json.loads(SyntheticBook(BTC, "bbo-tbt").next_update_frame())
    assert list(bbo["data"][0]) == ["asks", "bids", "ts", "seqId"]


def test_heartbeat_and_reset_frames_have_documented_shapes() -> None:
    book = SyntheticBook(BTC)
    client = Replay()
    client.apply(book.snapshot_frame())
    before = book.levels()
    hb = client.apply(book.heartbeat_frame())
    assert hb["asks"] == hb["bids"] == [] and hb["prevSeqId"] == hb["seqId"]
    assert book.levels() == before
    last = client.seq
    reset = client.apply(book.reset_frame())
    # §4: seqId restarts lower, prevSeqId still equals the last seqId sent
    assert reset["prevSeqId"] == last and reset["seqId"] < last
    after = client.apply(book.next_update_frame())
    assert after["prevSeqId"] == reset["seqId"]


def test_rest_snapshot_form_and_lag() -> None:
    book = SyntheticBook(BTC)
    seq0 = book.seq_id
    book.next_update_frame()
    snap = book.rest_snapshot(400)
    assert snap["seqId"] == book.seq_id and len(snap["bids"]) == 400
    assert [tuple(r[i] for i in (0, 1, 3)) for r in snap["bids"]] == book.levels()[0]
    assert book.rest_snapshot(5, lag=1)["seqId"] == seq0
    padded = book.rest_snapshot(400, pad=True)
    assert all("." in r[0] for r in padded["bids"])


# ---------------------------------------------------------------------------- exchange: protocol


def test_subscribe_ack_then_snapshot_then_chained_updates() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            await send(ws, "subscribe", ("books", BTC), req_id="b1")
            ack = await recv(ws)
            assert list(ack) == ["id", "event", "arg", "connId"]
            assert ack["id"] == "b1" and ack["event"] == "subscribe"
            assert ack["arg"] == {"channel": "books", "instId": BTC}
            assert ack["connId"] == ex.connections[0]
            client = Replay()
            snap = client.apply(await recv_raw(ws))
            assert snap["prevSeqId"] == -1 and len(snap["bids"]) == 400
            await ex.step(50)
            for _ in range(50):
                client.apply(await recv_raw(ws))  # asserts the chain and the checksum
            assert client.checksums_verified == 51  # snapshot + 50 updates
            assert client.seq == ex.book("books", BTC).seq_id

    run(main())


def test_ack_omits_id_when_request_has_none_and_rejects_bad_ids() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            await send(ws, "subscribe", ("books5", BTC))
            ack = await recv(ws)
            assert "id" not in ack and ack["event"] == "subscribe"
            await recv(ws)  # books5 image
            await send(ws, "subscribe", ("books", ETH), req_id="has-hyphen")
            err = await recv(ws)
            assert err["event"] == "error" and err["code"] == "60013"
            await send(ws, "subscribe", ("books", ETH), req_id="x" * 33)
            assert (await recv(ws))["code"] == "60013"
            assert await nothing_within(ws)

    run(main())


def test_sends_pong_for_text_ping() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            await ws.send("ping")
            assert await recv_raw(ws) == "pong"
            assert [s.kind for s in ex.sent(ex.connections[0])] == ["pong"]

    run(main())


def test_unknown_channel_and_bad_op_get_error_events() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            await send(ws, "subscribe", ("tickerz", BTC), req_id="e1")
            err = await recv(ws)
            assert err["event"] == "error" and err["code"] == "60018" and "arg" not in err
            assert err["id"] == "e1" and err["connId"] == ex.connections[0]
            await ws.send('{"op":"subscrib","args":[]}')
            assert (await recv(ws))["code"] == "60019"
            await ws.send("{not json")
            assert (await recv(ws))["code"] == "60012"

    run(main())


def test_failed_subscription_gets_error_event_then_next_one_succeeds() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            ex.fail_subscription("books", BTC, code="64003", msg="fee tier")
            await send(ws, "subscribe", ("books", BTC), req_id="s1")
            err = await recv(ws)
            assert err == {
                "id": "s1",
                "event": "error",
                "code": "64003",
                "msg": "fee tier",
                "connId": ex.connections[0],
            }
            assert await nothing_within(ws)  # no snapshot after an error
            await send(ws, "subscribe", ("books", BTC))
            assert (await recv(ws))["event"] == "subscribe"
            assert json.loads(await recv_raw(ws))["action"] == "snapshot"

    run(main())


def test_unsubscribe_acks_and_stops_pushes() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            await send(ws, "subscribe", ("books", BTC), ("books", ETH))
            for _ in range(4):
                await recv(ws)
            await send(ws, "unsubscribe", ("books", BTC), req_id="u1")
            ack = await recv(ws)
            assert ack["event"] == "unsubscribe" and ack["arg"] == {
                "channel": "books",
                "instId": BTC,
            }
            await ex.step(3)
            for _ in range(3):
                assert (await recv(ws))["arg"]["instId"] == ETH
            assert await nothing_within(ws)
            info = ex.conn(ex.connections[0])
            assert (info.subscribe_requests, info.unsubscribe_requests) == (1, 1)
            assert list(info.subscriptions) == [("books", ETH)]

    run(main())


def test_two_connections_see_identical_seq_ids() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as a:
            await send(a, "subscribe", ("books", BTC))
            await recv(a)
            await recv(a)
            await ex.step(5)
            async with connect(ex.ws_url) as b:
                await send(b, "subscribe", ("books", BTC))
                await recv(b)
                snap_b = (await recv(b))["data"][0]
                await ex.step(10)
                seq_a = [(await recv(a))["data"][0]["seqId"] for _ in range(15)]
                seq_b = [(await recv(b))["data"][0]["seqId"] for _ in range(10)]
                # b joined mid-stream: its snapshot sits at a's 5th seqId, then the same chain
                assert snap_b["seqId"] == seq_a[4]
                assert seq_b == seq_a[5:]
                # both replays of what the server recorded end on the same book
                books = []
                for conn_id in ex.connections:
                    r = Replay()
                    for s in ex.sent(conn_id, "books", BTC, kinds={"snapshot", "update"}):
                        r.apply(s.data)
                    books.append(r.sides())
                assert books[0] == books[1]
                assert len(ex.sent_frames("books", BTC)) == 2 + 15  # two snapshots + 15 updates

    run(main())


def test_books_for_an_inst_are_deterministic_across_exchanges() -> None:
    async def first_frames(seed: int) -> list[str]:
        async with LocalExchange(auto=False, seed=seed) as ex, connect(ex.ws_url) as ws:
            await send(ws, "subscribe", ("books", BTC))
            await recv(ws)
            await ex.step(3)
            return [await recv_raw(ws) for _ in range(4)]

    async def main() -> None:
        assert await first_frames(1) == await first_frames(1)
        assert await first_frames(1) != await first_frames(2)

    run(main())


def test_image_channels_push_whole_book_without_prev_seq_id() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            await send(ws, "subscribe", ("bbo-tbt", BTC), ("books5", BTC))
            kinds = [(await recv(ws)).get("event") for _ in range(4)]
            assert kinds.count("subscribe") == 2
            await ex.step(2)
            # §0b push order per instrument: bbo-tbt before books5
            msgs = [await recv(ws) for _ in range(4)]
            assert [m["arg"]["channel"] for m in msgs] == ["bbo-tbt", "books5"] * 2
            for m in msgs:
                d = m["data"][0]
                assert "action" not in m and "prevSeqId" not in d
                assert len(d["bids"]) == (1 if m["arg"]["channel"] == "bbo-tbt" else 5)

    run(main())


# ---------------------------------------------------------------------------- exchange: faults


def test_inject_gap_breaks_the_chain_once() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            client = await subscribed(ws, "books")
            ex.inject_gap("books", BTC)
            await ex.step(2)
            gapped = json.loads(await recv_raw(ws))["data"][0]
            assert gapped["prevSeqId"] != client.seq
            skipped = json.loads(ex.skipped_frames("books", BTC)[0])["data"][0]
            assert skipped["prevSeqId"] == client.seq and gapped["prevSeqId"] == skipped["seqId"]
            nxt = json.loads(await recv_raw(ws))["data"][0]
            assert nxt["prevSeqId"] == gapped["seqId"]

    run(main())


def test_fault_frames_have_documented_shapes() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False, checksum="zero") as ex, connect(ex.ws_url) as ws:
            client = await subscribed(ws, "books")
            ex.heartbeat("books", BTC)
            ex.reset_seq("books", BTC)
            ex.corrupt_checksum("books", BTC)
            sent = await ex.step(4)
            assert [s.kind for s in sent] == ["heartbeat", "reset", "update", "update"]
            last = client.seq
            hb = client.apply(await recv_raw(ws))
            assert hb["asks"] == hb["bids"] == [] and hb["prevSeqId"] == hb["seqId"] == last
            reset = client.apply(await recv_raw(ws))
            assert reset["prevSeqId"] == last and reset["seqId"] < last
            bad = json.loads(await recv_raw(ws))["data"][0]
            assert bad["checksum"] != 0  # zero mode, yet a wrong non-zero checksum
            ok = json.loads(await recv_raw(ws))["data"][0]
            assert ok["checksum"] == 0 and ok["prevSeqId"] == bad["seqId"]

    run(main())


def test_corrupted_checksum_fails_independent_verification() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            client = await subscribed(ws, "books")
            ex.corrupt_checksum("books", BTC)
            await ex.step()
            with pytest.raises(AssertionError):
                client.apply(await recv_raw(ws))

    run(main())


def test_idle_connection_closed_with_4004() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False, idle_timeout=0.3) as ex, connect(ex.ws_url) as ws:
            t0 = time.monotonic()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3)
            assert ws.close_code == 4004 and 0.25 < time.monotonic() - t0 < 2
            await ex.wait_closed(ex.all_connections[0])

    run(main())


def test_text_ping_keeps_a_silenced_connection_open() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False, idle_timeout=0.3) as ex, connect(ex.ws_url) as ws:
            await send(ws, "subscribe", ("books", BTC))
            await recv(ws)
            await recv(ws)
            ex.silence()
            await ex.step(3)
            assert await nothing_within(ws, 0.15)  # silenced: pushes are lost
            for _ in range(4):
                await ws.send("ping")
                assert await recv_raw(ws) == "pong"
                await asyncio.sleep(0.15)
            assert ex.connections  # still open after > idle_timeout thanks to ping/pong
            ex.silence(pong=False)
            await ws.send("ping")
            assert await nothing_within(ws, 0.1)  # a half-dead link: no pong
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3)
            assert ws.close_code == 4004

    run(main())


def test_notice_64008_then_close() -> None:
    async def main() -> None:
        async with (
            LocalExchange(auto=False, notice_close_delay=0.2) as ex,
            connect(ex.ws_url) as ws,
        ):
            await ws.send("ping")
            await recv_raw(ws)
            await ex.notice_64008()
            notice = await recv(ws)
            assert notice == {
                "event": "notice",
                "code": "64008",
                "msg": "The connection will soon be closed for a service upgrade. Please reconnect.",
                "connId": ex.all_connections[0],
            }
            t0 = time.monotonic()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3)
            assert time.monotonic() - t0 > 0.1 and ws.close_code == 1001

    run(main())


def test_drop_closes_without_close_frame() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            await ws.send("ping")
            await recv_raw(ws)
            await ex.drop()
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), 3)
            assert ws.close_code == 1006 and ex.connections == []
            assert ex.conn(ex.all_connections[0]).close_code == 1006

    run(main())


def test_send_malformed_delivers_payload_verbatim() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            await ws.send("ping")
            await recv_raw(ws)
            await ex.send_malformed(payload=b'{"arg":{"channel":"books"')
            await ex.send_malformed(payload=b'{"arg":{"channel":"books","instId":"X"},"data":5}')
            assert await recv_raw(ws) == '{"arg":{"channel":"books"'
            assert json.loads(await recv_raw(ws))["data"] == 5
            assert [s.kind for s in ex.sent(ex.connections[0])] == [
                "pong",
                "malformed",
                "malformed",
            ]

    run(main())


# ---------------------------------------------------------------------------- exchange: REST


def test_rest_snapshot_matches_ws_book_at_its_seq_id() -> None:
    async def main() -> None:
        async with with_clients() as (ex, ws, http):
            client = await subscribed(ws, "books")
            await follow(ex, ws, client, 5)
            r = await http.get(
                f"{ex.rest_url}/api/v5/market/books", params={"instId": BTC, "sz": 400}
            )
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            body = r.json()
            assert body["code"] == "0" and body["msg"] == ""
            snap = body["data"][0]
            assert list(snap) == ["asks", "bids", "ts", "seqId"]
            assert_rest_is_replayed(snap, client)
            # sz defaults to 1 and is capped at 400 (§8)
            one = (
                await http.get(f"{ex.rest_url}/api/v5/market/books", params={"instId": BTC})
            ).json()
            assert len(one["data"][0]["bids"]) == len(one["data"][0]["asks"]) == 1
            r = await http.get(
                f"{ex.rest_url}/api/v5/market/books", params={"instId": BTC, "sz": 401}
            )
            assert r.status_code == 400 and r.json()["code"] == "51000"

    run(main())


def test_rest_lag_serves_an_older_seq_id_then_catches_up() -> None:
    async def main() -> None:
        async with with_clients() as (ex, ws, http):
            await send(ws, "subscribe", ("books", BTC))
            await recv(ws)
            seqs = [(await recv(ws))["data"][0]["seqId"]]
            await ex.step(4)
            seqs += [(await recv(ws))["data"][0]["seqId"] for _ in range(4)]
            ex.rest_lag(BTC, frames=3, requests=1)
            url = f"{ex.rest_url}/api/v5/market/books?instId={BTC}&sz=5"
            assert (await http.get(url)).json()["data"][0]["seqId"] == seqs[-4]
            assert (await http.get(url)).json()["data"][0]["seqId"] == seqs[-1]
            assert [r.lagged for r in ex.rest_requests] == [True, False]

    run(main())


def test_no_snapshot_mode_client_seeds_from_rest() -> None:
    async def main() -> None:
        async with with_clients(no_snapshot=True) as (ex, ws, http):
            market = ex.book("books", BTC)
            for _ in range(20):  # the market moved before we came: REST history predates us
                market.next_update_frame()
            await send(ws, "subscribe", ("books", BTC))
            assert (await recv(ws))["event"] == "subscribe"
            assert await nothing_within(ws)  # no WS snapshot
            await ex.step(3)
            buffered = [await recv_raw(ws) for _ in range(3)]
            first_prev = json.loads(buffered[0])["data"][0]["prevSeqId"]
            assert json.loads(buffered[0])["action"] == "update"
            # §4 REST-seed: refetch while the snapshot is older than the first delta's prevSeqId
            ex.rest_lag(BTC, frames=10, requests=1)
            url = f"{ex.rest_url}/api/v5/market/books?instId={BTC}&sz=400"
            snap = (await http.get(url)).json()["data"][0]
            assert snap["seqId"] < first_prev
            snap = (await http.get(url)).json()["data"][0]
            assert snap["seqId"] >= first_prev
            client = Replay()
            client.bids = {Decimal(r[0]): r for r in snap["bids"]}
            client.asks = {Decimal(r[0]): r for r in snap["asks"]}
            client.seq = snap["seqId"]
            for frame in buffered:
                if json.loads(frame)["data"][0]["seqId"] > snap["seqId"]:
                    client.apply(frame)
            assert client.sides() == tuple(ex.book("books", BTC).rows())

    run(main())


# ---------------------------------------------------------------------------- exchange: login, limits


def test_l2_tbt_requires_login_with_valid_hmac_sign() -> None:
    creds = {"key": "k1", "secret": "s3cret", "passphrase": "pp"}

    async def main() -> None:
        async with LocalExchange(auto=False, credentials=creds) as ex, connect(ex.ws_url) as ws:
            await send(ws, "subscribe", ("books-l2-tbt", BTC))
            err = await recv(ws)
            # OKX (and okxbook serve): 60011 "Please log in", not the fee-tier 64003.
            assert err == {
                "event": "error",
                "code": "60011",
                "msg": "Please log in",
                "connId": ex.connections[0],
            }
            ts = str(int(time.time()))
            bad = {"apiKey": "k1", "passphrase": "pp", "timestamp": ts, "sign": sign("wrong", ts)}
            await ws.send(json.dumps({"op": "login", "args": [bad]}))
            assert await recv(ws) == {
                "event": "error",
                "code": "60009",
                "msg": "Login failed.",
                "connId": ex.connections[0],
            }
            good = dict(bad, sign=sign("s3cret", ts))
            await ws.send(json.dumps({"op": "login", "args": [good]}))
            assert await recv(ws) == {
                "event": "login",
                "code": "0",
                "msg": "",
                "connId": ex.connections[0],
            }
            await send(ws, "subscribe", ("books50-l2-tbt", BTC))
            assert (await recv(ws))["event"] == "subscribe"
            snap = json.loads(await recv_raw(ws))
            assert snap["action"] == "snapshot" and len(snap["data"][0]["bids"]) == 50
            # §1: books-l2-tbt and books50-l2-tbt of one instId can't share a connection
            await send(ws, "subscribe", ("books-l2-tbt", BTC))
            assert (await recv(ws))["code"] == "64004"
            assert ex.conn(ex.connections[0]).login_requests == 2

    run(main())


def test_request_limit_answers_60014_when_enforced() -> None:
    async def main() -> None:
        async with (
            LocalExchange(auto=False, enforce_request_limit=True, request_limit=2) as ex,
            connect(ex.ws_url) as ws,
        ):
            await send(ws, "subscribe", ("books5", BTC))
            await recv(ws)
            await recv(ws)
            await send(ws, "unsubscribe", ("books5", BTC))
            assert (await recv(ws))["event"] == "unsubscribe"
            await send(ws, "subscribe", ("books5", BTC))
            assert (await recv(ws))["code"] == "60014"
            assert ex.conn(ex.connections[0]).requests == 3

    run(main())


def test_connection_accounting() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex:
            async with connect(ex.ws_url), connect(ex.ws_url):
                ids = await ex.wait_connections(2)
                assert len(set(ids)) == 2 and all(len(i) == 8 for i in ids)
            for conn_id in ids:
                await ex.wait_closed(conn_id)
            assert ex.connections == [] and ex.connections_opened == 2
            assert sum(ex.connects_per_second("127.0.0.1").values()) == 2

    run(main())


# ---------------------------------------------------------------------------- exchange: modes


def test_auto_mode_pushes_periodically() -> None:
    async def main() -> None:
        async with LocalExchange(interval=0.01) as ex, connect(ex.ws_url) as ws:
            await send(ws, "subscribe", ("books", BTC))
            await recv(ws)
            client = Replay()
            for _ in range(20):
                client.apply(await recv_raw(ws))
            assert client.checksums_verified == 20

    run(main())


def test_capture_replays_subscribed_frames_in_order(synthetic_10x5k) -> None:
    with synthetic_10x5k.path.open("rb") as f:
        frames = [next(f).rstrip(b"\n") for _ in range(200)]
    insts = [json.loads(f)["arg"]["instId"] for f in frames]
    wanted = {insts[0], insts[1]}
    expected = [f.decode() for f, i in zip(frames, insts) if i in wanted]

    async def main() -> None:
        async with LocalExchange(auto=False, capture=frames) as ex, connect(ex.ws_url) as ws:
            await send(ws, "subscribe", *[("books", i) for i in sorted(wanted)])
            await recv(ws)
            await recv(ws)
            await ex.step(len(expected) + 5)
            got = [await recv_raw(ws) for _ in range(len(expected))]
            assert got == expected
            assert await nothing_within(ws)
            # the capture's checksums still verify after transport
            replays = {i: Replay() for i in wanted}
            for g in got:
                replays[json.loads(g)["arg"]["instId"]].apply(g)

    run(main())


# ---------------------------------------------------------------------------- exchange: like OKX


def test_capture_mode_refuses_books_the_capture_lacks_with_60018(synthetic_10x5k) -> None:
    with synthetic_10x5k.path.open("rb") as f:
        frames = [next(f).rstrip(b"\n") for _ in range(50)]
    inst = json.loads(frames[0])["arg"]["instId"]

    async def main() -> None:
        async with LocalExchange(auto=False, capture=frames) as ex, connect(ex.ws_url) as ws:
            await send(ws, "subscribe", ("books", "NOPE-USDT"), req_id="e1")
            err = await recv(ws)
            assert err["event"] == "error" and err["code"] == "60018" and err["id"] == "e1"
            assert "channel:books,instId:NOPE-USDT doesn't exist" in err["msg"]
            await send(ws, "subscribe", ("books", inst))
            assert (await recv(ws))["event"] == "subscribe"
            assert ex.subscribers("books", "NOPE-USDT") == []

    run(main())


def test_rest_books_rpi_answers_from_the_rpi_book_with_non_rpi_sizes() -> None:
    async def main() -> None:
        async with with_clients() as (ex, ws, http):
            client = await subscribed(ws, "books-rpi")
            await follow(ex, ws, client, 3)
            body = (
                await http.get(
                    f"{ex.rest_url}/api/v5/market/books-rpi", params={"instId": BTC, "sz": 400}
                )
            ).json()
            assert body["code"] == "0"
            snap = body["data"][0]
            assert_rest_is_replayed(snap, client)
            # nonRpi differs from the total somewhere: the third field is not faked
            assert any(r[2] != r[1] for r in snap["bids"] + snap["asks"])

    run(main())


def test_rest_books_never_answers_from_an_rpi_shaped_book() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, httpx.AsyncClient() as http:
            elp = ex.book("books-elp", BTC)
            body = (
                await http.get(
                    f"{ex.rest_url}/api/v5/market/books", params={"instId": BTC, "sz": 400}
                )
            ).json()
            assert body["code"] == "0"
            plain = ex.book("books", BTC)
            assert body["data"][0] == plain.rest_snapshot(400)
            assert body["data"][0]["bids"] != elp.rest_snapshot(400)["bids"]

    run(main())


def test_refused_request_id_and_bad_args_are_answered_in_okx_words() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            await send(ws, "subscribe", ("books", ETH), req_id="has-hyphen")
            err = await recv(ws)
            assert err["id"] == "has-hyphen"
            assert err["msg"].startswith("Invalid request: {") and "'" not in err["msg"]
            await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "books"}]}))
            err = await recv(ws)
            assert err["code"] == "60013" and err["msg"] == 'Invalid args : {"channel":"books"}'

    run(main())


def test_an_op_that_is_not_a_string_is_quoted_as_json() -> None:
    async def main() -> None:
        async with LocalExchange(auto=False) as ex, connect(ex.ws_url) as ws:
            await ws.send(json.dumps({"op": {"x": [1, None]}, "args": []}))
            err = await recv(ws)
            assert err["code"] == "60019" and err["msg"] == 'Invalid OP: {"x":[1,null]}'
            await ws.send(json.dumps({"args": []}))
            assert (await recv(ws))["msg"] == "Invalid OP: null"

    run(main())
