"""Tests of okxbook.serve: a capture re-served to plain websockets clients whose books must come out
checksum-clean and equal to an offline replay, late subscribers included; pacing; the OKX request
protocol; REST; looping; the ``serve`` subcommand."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from conftest import CF_BOOKS_0513, NAUTILUS_DIR
from websockets.asyncio.client import ClientConnection, connect

import okxbook
from okxbook import okx
from okxbook.capture.recorder import write_capture
from okxbook.capture.replay import replay
from okxbook.capture.serve import CaptureServer, serve_capture, snapshot_frame
from okxbook.cli.serve import register_cli
from okxbook.errors import ChecksumError, MissingSnapshotError, SequenceError, UnknownChannelError
from okxbook.events import SubscribeAck, UnsubscribeAck

REPO = Path(__file__).resolve().parents[1]
CAPTURE = CF_BOOKS_0513
INSTS = ["BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT"]
T0 = 1_795_597_201_000_000_000  # 2026-11-25T09:00:01Z


def run(coro, timeout: float = 15.0):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


class Client:
    """A plain websockets client feeding everything it receives into okxbook.Books."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.books = okxbook.Books()
        self.checksum_errors = 0
        self.seq_errors = 0
        self.missing_snapshot = 0
        self.other = 0
        self.events: list[object] = []
        self.first_frame: dict[tuple[str, str], bytes] = {}
        self.frames: list[tuple[float, bytes]] = []
        self._pongs = 0
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> Client:
        return cls(await connect(url, compression=None))

    async def _read(self) -> None:
        async for msg in self.ws:
            data = msg.encode() if isinstance(msg, str) else msg
            self.frames.append((time.monotonic(), data))
            self._changed.set()
            if data == b"pong":
                self._pongs += 1
                continue
            try:
                result = self.books.apply(data)
            except ChecksumError:
                self.checksum_errors += 1
                continue
            except SequenceError:
                self.seq_errors += 1
                continue
            except MissingSnapshotError:
                self.missing_snapshot += 1
                continue
            except UnknownChannelError:
                self.other += 1
                continue
            if isinstance(result, okxbook.Book):
                self.first_frame.setdefault((result.channel, result.inst_id), data)
            else:
                self.events.append(result)

    async def until(self, pred, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                self._changed.clear()
                await self._changed.wait()

    async def request(self, op: str, keys, req_id: str | None = None) -> None:
        msg: dict[str, object] = {"op": op, "args": [{"channel": c, "instId": i} for c, i in keys]}
        if req_id is not None:
            msg["id"] = req_id
        n = len(self.events)
        await self.ws.send(json.dumps(msg))
        await self.until(lambda: len(self.events) >= n + len(keys))

    async def sync(self) -> None:
        """Ping and wait for the pong: the server answers in order, so everything sent before
        has arrived."""
        n = self._pongs
        await self.ws.send("ping")
        await self.until(lambda: self._pongs > n)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


def levels(book):
    return book.bid_levels(), book.ask_levels()


# ---------------------------------------------------------------------------- the real capture


def test_real_capture_served_at_max_speed_gives_clean_books_for_on_time_and_late_subscribers():
    report = replay([CAPTURE])
    assert report.ok

    async def main():
        async with CaptureServer(CAPTURE, speed=None, wait_for_subscriber=True) as srv:
            a = await Client.open(srv.ws_url)
            b = await Client.open(srv.ws_url)
            await a.request("subscribe", [("books", i) for i in INSTS[:2]], "on1")
            await srv.wait_played(200)
            srv.pause()
            paused_at = srv.frames_played
            for inst in INSTS:  # every book already had its captured snapshot played
                assert srv.books.book("books", inst).snapshots == 1
            await a.request("subscribe", [("books", INSTS[2])], "late1")  # same connection
            await b.request("subscribe", [("books", i) for i in INSTS], "late2")
            srv.resume()
            await srv.wait_done()
            await a.sync()
            await b.sync()
            async with httpx.AsyncClient() as http:
                rest = (
                    await http.get(
                        f"{srv.rest_url}/api/v5/market/books",
                        params={"instId": "BTC-USDT", "sz": "5"},
                    )
                ).json()
            server_books = {i: levels(srv.books.book("books", i)) for i in INSTS}
            total = srv.frames_played
            await a.close()
            await b.close()
            return a, b, paused_at, total, rest, server_books

    a, b, paused_at, total, rest, server_books = run(main())
    assert 0 < paused_at < total == 410
    for client in (a, b):
        assert client.checksum_errors == 0
        assert client.seq_errors == 0
        assert client.missing_snapshot == 0
        assert client.other == 0  # trades/tickers were not subscribed, so not sent
        assert [type(e) for e in client.events].count(SubscribeAck) == 3
    for inst in INSTS:
        expected = report.books[f"books/{inst}"]
        for client in (a, b):
            book = client.books.book("books", inst)
            assert book.is_valid
            assert list(book.best_bid) == expected["best_bid"]
            assert list(book.best_ask) == expected["best_ask"]
            assert book.checksum_mismatch == 0 and book.checksum_ok == book.frames
            assert book.updates > 0  # captured updates followed the (synthesized) snapshot
        # The late subscriber's book ends equal to the on-time one, level for level.
        assert levels(b.books.book("books", inst)) == levels(a.books.book("books", inst))
        assert levels(a.books.book("books", inst)) == server_books[inst]
    # Late starts were synthesized snapshots carrying a real (verified) checksum.
    for client, inst in [(a, INSTS[2])] + [(b, i) for i in INSTS]:
        first = json.loads(client.first_frame[("books", inst)])
        assert first["action"] == "snapshot"
        assert first["data"][0]["checksum"] != 0
        assert "seqId" not in first["data"][0]  # the 2022 capture has none: none invented
    on_time = json.loads(a.first_frame[("books", INSTS[0])])
    assert on_time["action"] == "snapshot" and len(on_time["data"][0]["bids"]) > 0
    # REST serves the same final state.
    top = a.books.book("books", "BTC-USDT")
    assert rest["code"] == "0"
    assert [lv[:2] for lv in rest["data"][0]["bids"]] == [[p, s] for p, s, _ in top.bid_levels(5)]
    assert [lv[:2] for lv in rest["data"][0]["asks"]] == [[p, s] for p, s, _ in top.ask_levels(5)]


# ---------------------------------------------------------------------------- synthetic captures


def book_frame(
    action: str,
    seq: int,
    prev: int,
    bids,
    asks,
    checksum: int = 0,
    inst: str = "BTC-USDT",
    channel: str = "books",
) -> bytes:
    item = {
        "asks": [[p, s, "0", "1"] for p, s in asks],
        "bids": [[p, s, "0", "1"] for p, s in bids],
        "ts": str(1_700_000_000_000 + seq),
        "checksum": checksum,
        "prevSeqId": prev,
        "seqId": seq,
    }
    return json.dumps(
        {"arg": {"channel": channel, "instId": inst}, "action": action, "data": [item]},
        separators=(",", ":"),
    ).encode()


def small_capture(tmp_path: Path, gap_s: float = 0.2) -> Path:
    frames = [
        book_frame("snapshot", 10, -1, [("100.1", "2"), ("100", "1")], [("100.5", "3")]),
        book_frame("update", 15, 10, [("100.1", "0")], [("100.4", "1")]),
        book_frame("update", 22, 15, [("100.2", "5")], []),
    ]
    (path,) = write_capture(
        tmp_path, [(T0 + int(i * gap_s * 1e9), f) for i, f in enumerate(frames)], compression="gzip"
    )
    return path


@pytest.mark.parametrize("speed, expected", [(1.0, 0.4), (4.0, 0.1)])
def test_speed_paces_frames_by_recorded_receive_times(tmp_path, speed, expected):
    path = small_capture(tmp_path)

    async def main():
        async with CaptureServer(path, speed=speed, wait_for_subscriber=True) as srv:
            c = await Client.open(srv.ws_url)
            t_sub = time.monotonic()
            await c.request("subscribe", [("books", "BTC-USDT")])
            await srv.wait_done()
            await c.sync()
            await c.close()
            return c, t_sub

    c, t_sub = run(main())
    times = [t for t, f in c.frames if f.startswith(b'{"arg"')]
    assert len(times) == 3
    assert times[0] - t_sub < 0.2
    elapsed = times[-1] - times[0]
    assert expected * 0.85 <= elapsed <= expected + 0.3, elapsed
    assert c.books.book("books", "BTC-USDT").best_bid == ("100.2", "5")
    assert c.seq_errors == 0


def test_frames_without_timestamps_are_spaced_by_the_untimed_interval(tmp_path):
    path = tmp_path / "cap.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                book_frame("snapshot", 10, -1, [("1", "1")], [("2", "1")]),
                book_frame("update", 11, 10, [("1", "2")], []),
                book_frame("update", 12, 11, [("1", "3")], []),
            ]
        )
        + b"\n"
    )

    async def main():
        async with CaptureServer(
            path, speed=1.0, untimed_interval=0.1, wait_for_subscriber=True
        ) as srv:
            c = await Client.open(srv.ws_url)
            await c.request("subscribe", [("books", "BTC-USDT")])
            await srv.wait_done()
            await c.sync()
            await c.close()
            return c

    c = run(main())
    times = [t for t, f in c.frames if f.startswith(b'{"arg"')]
    assert 0.17 <= times[-1] - times[0] <= 0.6


def test_late_subscriber_to_a_seq_id_book_gets_a_snapshot_at_the_current_seq_id(tmp_path):
    path = small_capture(tmp_path, gap_s=0.0)

    async def main():
        async with CaptureServer(path, speed=None) as srv:
            await srv.wait_done()
            c = await Client.open(srv.ws_url)
            await c.request("subscribe", [("books", "BTC-USDT")])
            await c.until(lambda: ("books", "BTC-USDT") in c.first_frame)
            await c.close()
            return c, srv.books.book("books", "BTC-USDT")

    c, server_book = run(main())
    snap = json.loads(c.first_frame[("books", "BTC-USDT")])
    item = snap["data"][0]
    assert snap["action"] == "snapshot"
    assert (item["prevSeqId"], item["seqId"], item["ts"]) == (-1, 22, str(1_700_000_000_022))
    assert item["checksum"] == 0  # the capture's checksums were 0: so is ours
    assert item["bids"] == [["100.2", "5", "0", "1"], ["100", "1", "0", "1"]]
    assert item["asks"] == [["100.4", "1", "0", "1"], ["100.5", "3", "0", "1"]]
    assert levels(c.books.book("books", "BTC-USDT")) == levels(server_book)


def test_snapshot_frame_carries_a_checksum_when_the_capture_did():
    books = okxbook.Books()
    bids, asks = [("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")]
    books.apply(book_frame("snapshot", 1, -1, bids, asks, checksum=831078360))  # §3 doc example
    snap = json.loads(snapshot_frame(books.book("books", "BTC-USDT")))
    assert snap["data"][0]["checksum"] == 831078360
    assert okxbook.Books().apply(snapshot_frame(books.book("books", "BTC-USDT"))).checksum_ok == 1


def test_image_channel_subscribers_get_the_next_images(tmp_path):
    frames = [
        json.dumps(
            {
                "arg": {"channel": "books5", "instId": "X"},
                "data": [
                    {
                        "asks": [[str(101 + i), "1", "0", "1"]],
                        "bids": [[str(100 + i), "1", "0", "1"]],
                        "instId": "X",
                        "ts": str(1_700_000_000_000 + i),
                        "seqId": i,
                    }
                ],
            }
        ).encode()
        for i in range(4)
    ]
    (path,) = write_capture(tmp_path, [(T0 + i * 10**6, f) for i, f in enumerate(frames)])

    async def main():
        async with CaptureServer(path, speed=None, wait_for_subscriber=True) as srv:
            c = await Client.open(srv.ws_url)
            await c.request("subscribe", [("books5", "X")])
            await srv.wait_done()
            await c.sync()
            await c.close()
            return c

    c = run(main())
    got = [f for _, f in c.frames if f.startswith(b'{"arg"')]
    assert got == frames  # the captured images themselves, nothing synthesized


# ---------------------------------------------------------------------------- protocol


def test_answers_ping_subscribe_unsubscribe_login_and_bad_requests(tmp_path):
    path = small_capture(tmp_path, gap_s=0.0)

    async def main():
        async with CaptureServer(path, speed=None, wait_for_subscriber=True) as srv:
            c = await Client.open(srv.ws_url)
            await c.sync()  # ping -> pong
            await c.request("subscribe", [("books", "BTC-USDT")], "abc1")
            await c.ws.send("not json")
            await c.ws.send(json.dumps({"op": "frobnicate", "args": []}))
            await c.ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "books"}]}))
            await c.ws.send(json.dumps({"op": "login", "id": "l1", "args": [{"apiKey": "k"}]}))
            await c.sync()
            await srv.wait_done()
            await c.request("unsubscribe", [("books", "BTC-USDT")], "u1")
            await c.close()
            return c

    c = run(main())
    raw = [json.loads(f) for _, f in c.frames if f.startswith(b'{"') and b'"event"' in f]
    assert raw[0] == {
        "id": "abc1",
        "event": "subscribe",
        "arg": {"channel": "books", "instId": "BTC-USDT"},
        "connId": raw[0]["connId"],
    }
    codes = [(e.get("event"), e.get("code")) for e in raw[1:]]
    assert codes == [
        ("error", "60012"),
        ("error", "60019"),
        ("error", "60013"),
        ("login", "0"),
        ("unsubscribe", None),
    ]
    assert raw[4]["id"] == "l1" and raw[5]["id"] == "u1"
    assert isinstance(c.events[-1], UnsubscribeAck)


def test_unsubscribed_books_are_not_sent_and_rest_errors(tmp_path):
    path = small_capture(tmp_path, gap_s=0.0)

    async def main():
        async with CaptureServer(path, speed=None, wait_for_subscriber=True) as srv:
            c = await Client.open(srv.ws_url)
            await c.request("subscribe", [("books", "ETH-USDT")])
            await srv.wait_done()
            await c.sync()
            async with httpx.AsyncClient() as http:
                missing = (
                    await http.get(
                        f"{srv.rest_url}/api/v5/market/books", params={"instId": "ETH-USDT"}
                    )
                ).json()
                ok = (
                    await http.get(
                        f"{srv.rest_url}/api/v5/market/books", params={"instId": "BTC-USDT"}
                    )
                ).json()
            await c.close()
            return c, missing, ok

    c, missing, ok = run(main())
    assert not [f for _, f in c.frames if f.startswith(b'{"arg"')]
    assert missing["code"] == "51001"
    assert ok["data"][0]["bids"] == [["100.2", "5", "0", "1"]] and ok["data"][0]["seqId"] == 22


def test_loop_forever_starts_over_and_clients_stay_consistent(tmp_path):
    path = small_capture(tmp_path, gap_s=0.0)

    async def main():
        srv = await serve_capture(path, speed=None, loop_forever=True, wait_for_subscriber=True)
        try:
            c = await Client.open(srv.ws_url)
            await c.request("subscribe", [("books", "BTC-USDT")])
            await srv.wait_played(3 * 5)
            passes = srv.passes
            await c.sync()
            await c.close()
            return c, passes
        finally:
            await srv.stop()

    c, passes = run(main())
    assert passes >= 4
    assert c.seq_errors == 0 and c.checksum_errors == 0
    assert c.books.book("books", "BTC-USDT").snapshots >= 4


# ---------------------------------------------------------------------------- command line


def test_register_cli_parses_the_serve_subcommand():
    parser = argparse.ArgumentParser(prog="okxbook")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", "a.gz", "b.gz", "--speed", "max", "--port", "9000"])
    assert (args.files, args.speed, args.port, args.loop) == (["a.gz", "b.gz"], None, 9000, False)
    assert parser.parse_args(["serve", "a", "--speed", "10"]).speed == 10.0
    assert parser.parse_args(["serve", "a"]).speed == 1.0
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "a", "--speed", "fast"])


def test_serve_command_exits_2_on_a_missing_file(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="okxbook")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", str(tmp_path / "nope.gz")])
    assert args.func(args) == 2
    assert "nope.gz" in capsys.readouterr().err


CLI_CHILD = textwrap.dedent("""
    import argparse, sys
    from okxbook.cli.serve import register_cli
    parser = argparse.ArgumentParser(prog="okxbook")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(sys.argv[1:])
    sys.exit(args.func(args))
""")


def test_serve_command_prints_the_url_serves_and_stops_on_sigint(tmp_path):
    path = small_capture(tmp_path, gap_s=0.0)
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI_CHILD, "serve", str(path), "--speed", "max", "--wait"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/ws/v5/public")

        async def client():
            c = await Client.open(url)
            await c.request("subscribe", [("books", "BTC-USDT")])
            await c.until(
                lambda: (
                    c.books.get("books", "BTC-USDT") is not None
                    and c.books.book("books", "BTC-USDT").seq_id == 22
                )
            )
            await c.close()

        run(client())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # the pipes are ours to close (else ResourceWarning, an error here)
        proc.stderr.close()


# ---------------------------------------------------------------------------- round trip


def test_feed_recording_a_served_capture_replays_to_the_same_books(tmp_path):
    """capture -> serve -> live Feed with a Recorder -> files -> replay: same books as the source."""
    feed_mod = pytest.importorskip("okxbook.feed")
    from okxbook.capture.recorder import Recorder

    report = replay([CAPTURE])

    def final(feed) -> bool:
        return all(
            feed.book("books", i).best_bid is not None
            and list(feed.book("books", i).best_bid) == report.books[f"books/{i}"]["best_bid"]
            for i in INSTS
        )

    async def main():
        async with CaptureServer(CAPTURE, speed=None, wait_for_subscriber=True) as srv:
            rec = Recorder(tmp_path, compression="zstd", flush_interval=0.05)
            await rec.start()
            async with feed_mod.Feed(
                [("books", i) for i in INSTS], url=srv.ws_url, rest_url=srv.rest_url, recorder=rec
            ) as feed:
                await srv.wait_done()
                async with asyncio.timeout(5):
                    while not final(feed):
                        await asyncio.sleep(0.01)
            await rec.close()
            return rec

    rec = run(main())
    assert rec.error is None and rec.frames_dropped == 0
    again = replay(rec.files)
    assert again.ok
    for inst in INSTS:
        mine, source = again.books[f"books/{inst}"], report.books[f"books/{inst}"]
        assert (mine["best_bid"], mine["best_ask"]) == (source["best_bid"], source["best_ask"])


def test_synthesized_books_rpi_snapshot_keeps_the_non_rpi_size_of_every_level():
    """A late subscriber to a re-served books-rpi capture gets each level's third field
    (nonRpiQty) as captured, not the "0" of other channels."""
    path = NAUTILUS_DIR / "ws_books_rpi_snapshot.json"
    original = json.loads(path.read_bytes())["data"][0]
    books = okxbook.Books()
    book = books.apply(path.read_bytes())
    item = json.loads(snapshot_frame(book))["data"][0]
    for side in ("asks", "bids"):
        assert [(px, sz, third) for px, sz, third, _ in item[side]] == [
            (px, sz, third) for px, sz, third, _ in original[side]
        ]


def test_rest_books_never_answers_from_a_books_rpi_book_and_bad_request_ids_are_refused(tmp_path):
    """docs/protocol.md §8: /api/v5/market/books is the non-RPI book; a capture holding only a
    books-rpi book has none to give (not the RPI book with its third fields forced to "0").
    §0b: a request id that is not 1-32 letters/digits is refused (60033, as OKX did for a hyphen),
    not acked."""
    frames = [
        book_frame("snapshot", 10, -1, [("100", "2")], [("101", "3")], channel="books-rpi"),
    ]
    (path,) = write_capture(tmp_path, [(T0, f) for f in frames], compression="gzip")

    async def main():
        async with CaptureServer(path, speed=None) as srv:
            await srv.wait_done()
            c = await Client.open(srv.ws_url)
            await c.ws.send(
                json.dumps(
                    {
                        "op": "subscribe",
                        "id": "bad-id",
                        "args": [{"channel": "books-rpi", "instId": "BTC-USDT"}],
                    }
                )
            )
            await c.sync()
            async with httpx.AsyncClient() as http:
                rest = (
                    await http.get(
                        f"{srv.rest_url}/api/v5/market/books", params={"instId": "BTC-USDT"}
                    )
                ).json()
            await c.close()
            return c, rest

    c, rest = run(main())
    assert rest["code"] == "51001"
    events = [json.loads(f) for _, f in c.frames if f.startswith(b'{"') and b'"event"' in f]
    assert [(e["event"], e.get("code")) for e in events] == [("error", "60033")]


# ---------------------------------------------------------------------------- OKX's refusals


def _errors(c: Client) -> list[dict]:
    return [json.loads(f) for _, f in c.frames if f.startswith(b'{"') and b'"event":"error"' in f]


def rpi_capture(tmp_path: Path) -> Path:
    """A books-rpi book (third field nonRpiQty differs from the total) and a books book."""
    rpi = {
        "arg": {"channel": "books-rpi", "instId": "ETH-USDT"},
        "action": "snapshot",
        "data": [
            {
                "asks": [["2001", "7", "3", "2"]],
                "bids": [["2000", "5", "1", "3"], ["1999", "4", "4", "1"]],
                "ts": "1700000000000",
                "prevSeqId": -1,
                "seqId": 40,
            }
        ],
    }
    frames = [
        json.dumps(rpi, separators=(",", ":")).encode(),
        book_frame("snapshot", 10, -1, [("100.1", "2")], [("100.5", "3")]),
    ]
    (path,) = write_capture(
        tmp_path, [(T0 + i, f) for i, f in enumerate(frames)], compression="gzip"
    )
    return path


def test_subscribe_to_a_book_the_capture_lacks_gets_60018_naming_it(tmp_path):
    path = small_capture(tmp_path, gap_s=0.0)

    async def main():
        async with CaptureServer(path, speed=None, wait_for_subscriber=True) as srv:
            c = await Client.open(srv.ws_url)
            await c.request("subscribe", [("books", "ETH-USDT")], "e1")
            await c.request("subscribe", [("nonsense", "BTC-USDT")], "e2")
            await c.request("subscribe", [("books", "BTC-USDT")], "ok")
            await srv.wait_done()
            await c.sync()
            await c.close()
            return c

    c = run(main())
    errors = _errors(c)
    assert [(e["id"], e["code"]) for e in errors] == [("e1", "60018"), ("e2", "60018")]
    assert "channel:books,instId:ETH-USDT doesn't exist" in errors[0]["msg"]
    assert "channel:nonsense,instId:BTC-USDT doesn't exist" in errors[1]["msg"]
    acks = [e for e in c.events if isinstance(e, SubscribeAck)]
    assert [(a.channel, a.inst_id) for a in acks] == [("books", "BTC-USDT")]
    # The refused subscribes started playback; the good one still ends on the right book.
    assert c.books.book("books", "BTC-USDT").bid_levels(1) == [("100.2", "5", 1)]
    assert not [k for k in c.first_frame if k != ("books", "BTC-USDT")]


def l2_capture(tmp_path: Path) -> Path:
    frames = [
        book_frame("snapshot", 10, -1, [("100.1", "2")], [("100.5", "3")], channel=ch)
        for ch in ("books-l2-tbt", "books50-l2-tbt")
    ]
    (path,) = write_capture(
        tmp_path, [(T0 + i, f) for i, f in enumerate(frames)], compression="gzip"
    )
    return path


def test_l2_tbt_channels_need_a_login_first(tmp_path):
    path = l2_capture(tmp_path)

    async def main():
        async with CaptureServer(path, speed=None, wait_for_subscriber=True) as srv:
            c = await Client.open(srv.ws_url)
            await c.request("subscribe", [("books-l2-tbt", "BTC-USDT")], "n1")
            await c.request("subscribe", [("books50-l2-tbt", "BTC-USDT")], "n2")
            await c.ws.send(json.dumps({"op": "login", "id": "l1", "args": [{"apiKey": "k"}]}))
            await c.sync()
            await c.request("subscribe", [("books-l2-tbt", "BTC-USDT")], "y1")
            await srv.wait_done()
            await c.sync()
            await c.close()
            return c

    c = run(main())
    errors = _errors(c)
    assert [(e["id"], e["code"]) for e in errors] == [("n1", "60011"), ("n2", "60011")]
    assert "log in" in errors[0]["msg"].lower()
    acks = [e for e in c.events if isinstance(e, SubscribeAck)]
    assert [(a.channel, a.inst_id) for a in acks] == [("books-l2-tbt", "BTC-USDT")]
    assert ("books-l2-tbt", "BTC-USDT") in c.first_frame
    assert ("books50-l2-tbt", "BTC-USDT") not in c.first_frame


def test_rest_books_rpi_answers_from_the_rpi_book_and_books_never_does(tmp_path):
    path = rpi_capture(tmp_path)

    async def main():
        async with CaptureServer(path, speed=None) as srv:
            await srv.wait_done()
            async with httpx.AsyncClient() as http:
                base = srv.rest_url
                rpi = (
                    await http.get(
                        f"{base}/api/v5/market/books-rpi", params={"instId": "ETH-USDT", "sz": "5"}
                    )
                ).json()
                plain = (
                    await http.get(f"{base}/api/v5/market/books", params={"instId": "ETH-USDT"})
                ).json()
                rpi_of_plain = (
                    await http.get(f"{base}/api/v5/market/books-rpi", params={"instId": "BTC-USDT"})
                ).json()
            return rpi, plain, rpi_of_plain

    rpi, plain, rpi_of_plain = run(main())
    assert rpi["code"] == "0"
    assert rpi["data"][0]["bids"] == [["2000", "5", "1", "3"], ["1999", "4", "4", "1"]]
    assert rpi["data"][0]["asks"] == [["2001", "7", "3", "2"]]
    assert rpi["data"][0]["seqId"] == 40
    assert plain["code"] == "51001" and plain["data"] == []
    assert rpi_of_plain["code"] == "51001"


@pytest.mark.parametrize("bad_id", ["a-b", "x" * 33, "", 7])
def test_request_ids_okx_rejects_get_an_error_with_the_id_echoed(tmp_path, bad_id):
    """OKX refused a hyphenated id with 60033 (okx.Code.INVALID_REQUEST_ID, docs §0b)."""
    path = small_capture(tmp_path, gap_s=0.0)

    async def main():
        async with CaptureServer(path, speed=None, wait_for_subscriber=True) as srv:
            c = await Client.open(srv.ws_url)
            req = {
                "op": "subscribe",
                "id": bad_id,
                "args": [{"channel": "books", "instId": "BTC-USDT"}],
            }
            await c.ws.send(json.dumps(req))
            await c.sync()
            await c.close()
            return c, srv.connections

    c, _ = run(main())
    errors = _errors(c)
    assert [e["code"] for e in errors] == [okx.Code.INVALID_REQUEST_ID]
    assert errors[0]["id"] == bad_id
    assert errors[0]["msg"].startswith("Invalid request: ")
    assert not [e for e in c.events if isinstance(e, SubscribeAck)]


def test_error_texts_are_okx_json_not_python_reprs(tmp_path):
    path = small_capture(tmp_path, gap_s=0.0)

    async def main():
        async with CaptureServer(path, speed=None, wait_for_subscriber=True) as srv:
            c = await Client.open(srv.ws_url)
            await c.ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "books"}]}))
            await c.sync()
            await c.close()
            return c

    (error,) = _errors(run(main()))
    assert error["code"] == "60013"
    assert error["msg"] == 'Invalid args : {"channel":"books"}'
