"""``okxbook record`` end to end: a subprocess records from the local exchange, is stopped with
SIGINT or SIGTERM, and what it wrote is exactly what the exchange sent on that connection, and
replays to the same books as an independent replay of those frames."""

from __future__ import annotations

import asyncio
import signal
import sys
from decimal import Decimal

import orjson
import pytest

import okxbook
from okxbook.capture import iter_frames
from okxbook.capture.replay import replay
from okxbook.testing import LocalExchange

INSTS = ["BTC-USDT", "ETH-USDT"]


def reference_tops(frames: list[bytes]) -> dict[str, tuple[list[str], list[str]]]:
    """Best bid/ask strings per book from a plain dict model of the frames."""
    books: dict[str, dict[str, dict[Decimal, tuple[str, str]]]] = {}
    for raw in frames:
        msg = orjson.loads(raw)
        if "data" not in msg:
            continue
        key = f"{msg['arg']['channel']}/{msg['arg']['instId']}"
        if msg.get("action") == "snapshot":
            books[key] = {"bids": {}, "asks": {}}
        for item in msg["data"]:
            for side in ("bids", "asks"):
                for px, sz, *_ in item[side]:
                    if Decimal(sz) == 0:
                        books[key][side].pop(Decimal(px), None)
                    else:
                        books[key][side][Decimal(px)] = (px, sz)
    return {
        key: (list(b["bids"][max(b["bids"])]), list(b["asks"][min(b["asks"])]))
        for key, b in books.items()
    }


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_record_stops_cleanly_on_signal_with_every_received_frame_on_disk(tmp_path, sig):
    async def main() -> tuple[int, list[bytes], bytes]:
        async with LocalExchange(auto=False) as ex:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "okxbook",
                "record",
                *INSTS,
                "--url",
                ex.ws_url,
                "--rest-url",
                ex.rest_url,
                "--out",
                str(tmp_path),
                "--compression",
                "gzip",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            for inst in INSTS:
                await ex.wait_subscribed("books", inst, timeout=20)
            await ex.step(60)
            (conn,) = ex.connections
            await asyncio.sleep(0.5)  # let the client read what was pushed
            proc.send_signal(sig)
            _, err = await asyncio.wait_for(proc.communicate(), 20)
            sent = [s.data for s in ex.sent(conn) if s.kind in ("snapshot", "update")]
            return proc.returncode, sent, err

    code, sent, err = asyncio.run(main())
    assert code == 0, err.decode()
    files = sorted(tmp_path.iterdir())
    assert files and all(f.name.endswith(".tardis.gz") for f in files)
    recorded = [c.frame for f in files for c in iter_frames(f)]
    book_frames = [f for f in recorded if b'"data"' in f]
    assert book_frames == sent  # every frame, byte for byte, in order
    assert len(sent) == 2 + 60 * len(INSTS)
    report = replay(files)
    assert report.ok
    expected = reference_tops(sent)
    assert {k: (b["best_bid"], b["best_ask"]) for k, b in report.books.items()} == expected


def test_record_fails_at_start_on_an_unwritable_directory(tmp_path):
    target = tmp_path / "file"
    target.write_text("not a directory")

    async def main() -> tuple[int, bytes]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "okxbook",
            "record",
            "BTC-USDT",
            "--url",
            "ws://127.0.0.1:9",
            "--out",
            str(target / "sub"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        return proc.returncode, err

    code, err = asyncio.run(main())
    assert code == 2
    assert b"okxbook record" in err


def test_a_recording_across_a_64008_switchover_replays_to_the_books_the_feeder_had(tmp_path):
    """The successor's frames (synced on its own books while staging) enter the recording at the
    switch behind a disconnect marker, so the replay has no gap and ends on the feeder's books."""
    from okxbook.capture.recorder import Recorder
    from okxbook.feed import Feed

    async def main() -> dict[str, tuple[list, list, int]]:
        async with LocalExchange(auto=False) as ex:
            recorder = Recorder(tmp_path, compression="gzip", flush_interval=0.05)
            await recorder.start()
            feed = Feed(INSTS, url=ex.ws_url, rest_url=ex.rest_url, recorder=recorder)
            async with feed:
                await feed.wait_live(timeout=10)
                await ex.step(20)
                (old,) = ex.connections
                await ex.notice_64008(close_after=5.0)
                # The old connection falls behind (its pushes are lost): at the switch the
                # successor is ahead, the case where the recording would otherwise show a gap.
                ex.silence(old, pong=True)
                for _ in range(400):  # keep the market moving until the switch
                    await ex.step(1)
                    await asyncio.sleep(0.005)
                    if feed.stats["upgrade_switches"]:
                        break
                assert feed.stats["upgrade_switches"] == 1
                await ex.step(20)
                await asyncio.sleep(0.3)
                books = {
                    f"books/{i}": (
                        feed.book("books", i).bid_levels(),
                        feed.book("books", i).ask_levels(),
                        feed.book("books", i).seq_id,
                    )
                    for i in INSTS
                }
                assert all(feed.status("books", i).state == "live" for i in INSTS)
            await recorder.close()
            return books

    live = asyncio.run(main())
    files = sorted(tmp_path.iterdir())
    assert any(c.frame == b"" for f in files for c in iter_frames(f, disconnects=True))
    books = okxbook.Books()
    report = replay(files)
    assert report.ok and report.seq_gaps == 0
    for captured in (c for f in files for c in iter_frames(f)):
        try:
            books.apply(captured.frame)
        except okxbook.UnknownChannelError:
            pass
    for key, (bids, asks, seq_id) in live.items():
        book = books.get(*key.split("/"))
        assert book is not None and book.is_valid
        assert (book.bid_levels(), book.ask_levels(), book.seq_id) == (bids, asks, seq_id)


def test_a_recording_of_rest_seeded_books_replays_to_the_books_the_feeder_had(tmp_path):
    """With no WebSocket snapshot the feeder seeds from REST; the recording carries that snapshot
    (as a snapshot frame) and the updates spliced onto it, so a replay rebuilds the same books."""
    from okxbook.capture.recorder import Recorder
    from okxbook.feed import Feed

    async def main() -> dict[str, tuple[list, list, int]]:
        async with LocalExchange(auto=False, no_snapshot=True) as ex:
            recorder = Recorder(tmp_path, compression="gzip", flush_interval=0.05)
            await recorder.start()
            async with Feed(INSTS, url=ex.ws_url, rest_url=ex.rest_url, recorder=recorder) as feed:
                for inst in INSTS:
                    await ex.wait_subscribed("books", inst, timeout=10)
                for _ in range(200):
                    await ex.step(1)
                    await asyncio.sleep(0.005)
                    if all(feed.status("books", i).state == "live" for i in INSTS):
                        break
                await ex.step(20)
                await asyncio.sleep(0.3)
                assert feed.stats["rest_seeds"] == len(INSTS)
                books = {
                    i: (
                        feed.book("books", i).bid_levels(),
                        feed.book("books", i).ask_levels(),
                        feed.book("books", i).seq_id,
                    )
                    for i in INSTS
                }
            await recorder.close()
            return books

    live = asyncio.run(main())
    files = sorted(tmp_path.iterdir())
    report = replay(files)
    assert report.ok and report.seq_gaps == 0
    books = okxbook.Books()
    for captured in (c for f in files for c in iter_frames(f)):
        try:
            books.apply(captured.frame)
        except (okxbook.UnknownChannelError, okxbook.MissingSnapshotError):
            pass  # the updates that came before the REST snapshot was fetched
    for inst, (bids, asks, seq_id) in live.items():
        book = books["books", inst]
        assert book.is_valid
        assert (book.bid_levels(), book.ask_levels(), book.seq_id) == (bids, asks, seq_id)
