"""``Feed(..., encoding="sbe")`` against the local exchange's binary side: header login, the
instIdCode map from REST, the binary REST seed spliced onto buffered updates (the SBE feed has no
WebSocket snapshot), and recovery through gaps, resets, heartbeats, exponent updates, truncated
frames and reconnects. Each book is compared by exact value with the exchange's own book."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from feed_helpers import FAST, run, settle, step_until, wait_for

import okxbook
from okxbook import okx
from okxbook.capture import iter_frames
from okxbook.capture.files import format_tardis_line
from okxbook.feed import Feed
from okxbook.feed.auth import Credentials
from okxbook.feed.latency import latency_line
from okxbook.testing import LocalExchange

L2 = ("books-l2-tbt", "BTC-USDT")
BBO = ("bbo-tbt", "ETH-USDT")
CREDS = {"key": "k-123456789", "secret": "s-123456789", "passphrase": "p-123456789"}


def creds() -> Credentials:
    return Credentials(CREDS["key"], CREDS["secret"], CREDS["passphrase"])


def values(levels):
    return [(Decimal(px), Decimal(sz), int(n)) for px, sz, n in levels]


def assert_same_as_exchange(feed: Feed, ex: LocalExchange, key) -> None:
    book = feed.book(*key)
    bids, asks = ex.book(*key).levels()
    assert values(book.bid_levels()) == values(bids)
    assert values(book.ask_levels()) == values(asks)
    assert book.seq_id == ex.book(*key).seq_id


def sbe_feed(ex: LocalExchange, keys, **kw) -> Feed:
    url = ex.ws_url.replace(okx.WS_PUBLIC_PATH, okx.SBE_WS_PATH)
    return Feed(
        keys, url=url, rest_url=ex.rest_url, credentials=creds(), encoding="sbe", **FAST, **kw
    )


def exchange(**kw) -> LocalExchange:
    return LocalExchange(auto=False, credentials=CREDS, checksum="zero", **kw)


def test_sbe_feed_seeds_from_binary_rest_and_follows_the_stream():
    async def main():
        async with exchange() as ex, sbe_feed(ex, [L2, BBO]) as feed:
            await step_until(ex, lambda: feed.status(*L2).state == "live", what="l2 live")
            await feed.wait_live(timeout=5.0)
            await ex.step(40)
            await settle(feed, ex)
            for key in (L2, BBO):
                assert_same_as_exchange(feed, ex, key)
            # the seed came from books-sbe, by instIdCode, and no WebSocket snapshot was sent
            code = ex.sbe.codes["BTC-USDT"]
            assert any(c == code and seq is not None for c, seq in ex.sbe.rest_requests)
            sent = [s for c in ex.all_connections for s in ex.conn(c).sent]
            assert all(s.data[:1] != b"{" for s in sent if s.kind not in ("event", "pong"))
            assert feed.stats["rest_seeds"] >= 1
            with pytest.deprecated_call():  # latency() has the same stages, of every frame
                lat = feed.sbe_latency(*L2)
            assert lat is not None and lat.engine_to_gateway_us == 180
            assert lat.recv_ns > 0
            # the same split, as histograms of every frame, in the latency report
            entry = feed.latency()["books"]["books-l2-tbt:BTC-USDT"]
            e2g, g2r = entry["engine_to_gateway"], entry["gateway_to_receive"]
            assert e2g["n"] == g2r["n"] == entry["network"]["n"] > 10
            assert e2g["min"] == e2g["max"] == 180.0  # the exchange's fixed outTime - tsUs
            assert g2r["max"] >= lat.gateway_to_receive_us * 0.875  # log buckets: <= 12.5%
            conn = next(iter(feed.latency()["connections"].values()))
            assert conn["engine_to_gateway"]["n"] >= e2g["n"]
            assert "engine_to_gateway 180us" in latency_line(feed.latency())

    run(main)


def test_sbe_feed_resyncs_through_gaps_truncation_and_keeps_through_resets_and_exponents():
    async def main():
        async with exchange() as ex, sbe_feed(ex, [L2], resync="rest") as feed:
            await step_until(ex, lambda: feed.status(*L2).state == "live", what="live")
            await ex.step(5)
            await settle(feed, ex)
            book = feed.book(*L2)
            # an exponent update (1002) and a maintenance reset: no resync, same book
            ex.sbe.exponent_update(*L2)
            ex.reset_seq(*L2)
            ex.heartbeat(*L2)
            await ex.step(6)
            await settle(feed, ex)
            assert_same_as_exchange(feed, ex, L2)
            assert book.px_decimals == 2 and book.stats()["seq_resets"] == 1
            assert feed.stats["resyncs"] == 0
            # a gap: resync from REST, then equal again
            ex.inject_gap(*L2)
            await step_until(ex, lambda: feed.stats["resyncs"] == 1, what="gap seen")
            await step_until(ex, lambda: feed.status(*L2).state == "live", what="live again")
            await ex.step(3)
            await settle(feed, ex)
            assert_same_as_exchange(feed, ex, L2)
            # a truncated binary frame: rejected whole, the book resyncs
            # (it still names its instrument: the book resyncs at once, not at the next gap)
            ex.sbe.truncate_next(*L2, keep=37)
            await step_until(ex, lambda: feed.stats["resyncs"] == 2, what="cut frame seen")
            assert feed.stats["bad_frames"] == 1
            await step_until(ex, lambda: feed.status(*L2).state == "live", what="live after cut")
            await ex.step(3)
            await settle(feed, ex)
            assert_same_as_exchange(feed, ex, L2)

    run(main)


def test_sbe_feed_reconnects_and_records_a_capture_that_replays_alone(tmp_path):
    path = tmp_path / "sbe.tardis"
    frames: list[tuple[int, bytes]] = []

    class Keep:
        def record(self, recv_ns: int, frame: bytes) -> None:
            frames.append((recv_ns, frame))

        def mark_disconnect(self, ns: int) -> None:
            pass

    async def main():
        async with exchange() as ex, sbe_feed(ex, [L2, BBO], recorder=Keep()) as feed:
            await step_until(ex, lambda: feed.status(*L2).state == "live", what="live")
            await ex.step(5)
            await ex.drop()
            await wait_for(lambda: feed.status(*L2).state != "live", what="drop seen")
            await step_until(ex, lambda: feed.status(*L2).state == "live", what="live again")
            await ex.step(5)
            await settle(feed, ex)
            assert_same_as_exchange(feed, ex, L2)
            assert feed.stats["connects"] == 2
            return values(feed.book(*L2).bid_levels()), feed.book(*L2).seq_id

    bids, seq = run(main)
    # the recorder's line format (capture.files): binary frames as "sbe:<base64>"
    path.write_bytes(b"".join(format_tardis_line(ns, f) for ns, f in frames))
    books = okxbook.Books()
    for captured in iter_frames(path):
        try:
            books.apply(captured.frame)
        except okxbook.MissingSnapshotError:
            pass  # updates buffered before the REST seed was spliced (recorded again after it)
    assert any(f[:1] not in (b"{", b"p") for _, f in frames)  # binary frames were recorded
    assert (values(books["books-l2-tbt", "BTC-USDT"].bid_levels()), books[L2].seq_id) == (bids, seq)


def test_sbe_options_are_checked_up_front():
    with pytest.raises(ValueError, match="SBE feed carries"):
        Feed([("books", "BTC-USDT")], encoding="sbe", credentials=creds())
    with pytest.raises(ValueError, match="encoding"):
        Feed([L2], encoding="xml", credentials=creds())
    with pytest.raises(ValueError, match="demo"):
        Feed([BBO], encoding="sbe", credentials=creds(), demo=True)


def test_sbe_without_header_login_is_refused_with_60011():
    async def main():
        async with exchange() as ex:
            url = ex.ws_url.replace(okx.WS_PUBLIC_PATH, okx.SBE_WS_PATH)
            bad = Credentials(CREDS["key"], "wrong-secret-123", CREDS["passphrase"])
            feed = Feed(
                [L2], url=url, rest_url=ex.rest_url, credentials=bad, encoding="sbe", **FAST
            )
            async with feed:
                await wait_for(lambda: feed.status(*L2).state == "invalid", what="refused")
                assert feed.errors and feed.errors[0].code == "60011"
                await asyncio.sleep(0)

    run(main)


def test_watch_sbe_json_lines_carry_the_exchange_tops_and_the_sbe_latency_stages():
    root = Path(__file__).resolve().parents[1]

    async def main():
        async with LocalExchange(auto=True, interval=0.01, credentials=CREDS) as ex:
            url = ex.ws_url.replace(okx.WS_PUBLIC_PATH, okx.SBE_WS_PATH)
            env = {
                **os.environ,
                "OKX_API_KEY": CREDS["key"],
                "OKX_SECRET_KEY": CREDS["secret"],
                "OKX_PASSPHRASE": CREDS["passphrase"],
            }
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "okxbook",
                "watch",
                "--sbe",
                "--channel",
                "bbo-tbt",
                "--url",
                url,
                "--rest-url",
                ex.rest_url,
                "--json",
                "--latency",
                "0.5",
                "--duration",
                "1.5",
                "BTC-USDT",
                cwd=root,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 20)
            return ex, proc.returncode, out, err

    ex, code, out, err = run(main)
    assert code == 0, err.decode()
    lines = [json.loads(ln) for ln in out.decode().splitlines()]
    reports = [ln["latency"] for ln in lines if "latency" in ln]
    assert len(reports) >= 2  # every 0.5 s and at the end
    entry = reports[-1]["books"]["bbo-tbt:BTC-USDT"]
    assert entry["engine_to_gateway"]["n"] == entry["network"]["n"] > 10
    assert entry["engine_to_gateway"]["p50"] == 180.0  # the local exchange's outTime - tsUs
    assert entry["gateway_to_receive"]["n"] == entry["network"]["n"]
    live = [ln for ln in lines if ln.get("status") == "live"]
    assert len(live) > 10
    sent = {}
    for s in ex.book("bbo-tbt", "BTC-USDT")._history:  # the exchange's published states
        bid = next(iter(s.bids.values()))
        ask = next(iter(s.asks.values()))
        sent[s.seq_id] = (bid[:2], ask[:2])
    for ln in live[-5:]:  # recent lines: still in the exchange's kept history
        bid, ask = sent[ln["seqId"]]
        assert Decimal(ln["bid"][0]) == Decimal(bid[0]) and Decimal(ln["ask"][1]) == Decimal(ask[1])


def test_serve_plays_a_json_capture_to_an_sbe_feed_that_ends_on_the_same_book(tmp_path):
    from okxbook.capture.serve import CaptureServer
    from okxbook.testing import SyntheticBook

    book = SyntheticBook("BTC-USDT", "books-l2-tbt", seed=5, checksum="zero")
    frames = [book.snapshot_frame()] + [book.next_update_frame() for _ in range(300)]
    path = tmp_path / "l2.jsonl"
    path.write_bytes(b"\n".join(frames) + b"\n")

    async def main():
        async with CaptureServer(
            path, speed=1.0, untimed_interval=0.005, wait_for_subscriber=True
        ) as srv:
            url = srv.ws_url.replace(okx.WS_PUBLIC_PATH, okx.SBE_WS_PATH)
            feed = Feed([L2], url=url, rest_url=srv.rest_url, credentials=creds(), encoding="sbe")
            async with feed:
                await srv.wait_done()
                await wait_for(lambda: feed.book(*L2).seq_id == book.seq_id, what="caught up")
                assert feed.status(*L2).state == "live" and feed.stats["rest_seeds"] >= 1
                bids, asks = book.levels()
                assert values(feed.book(*L2).bid_levels()) == values(bids)
                assert values(feed.book(*L2).ask_levels()) == values(asks)

    run(main)


def test_recorder_keeps_sbe_frames_and_each_hourly_file_replays_alone(tmp_path):
    from okxbook.capture.recorder import Recorder
    from okxbook.events import inst_id_code_frame
    from okxbook.testing import SyntheticBook
    from okxbook.testing.sbe import SbeConverter

    book = SyntheticBook("BTC-USDT", "books-l2-tbt", seed=8, checksum="absent")
    conv = SbeConverter()
    json_frames = [book.snapshot_frame()] + [book.next_update_frame() for _ in range(60)]
    sbe = [f for g in conv.convert_all(json_frames) for f in g]
    t0 = 1_764_658_800_000_000_000 - 30 * 10**9  # 30 s before an hour starts

    async def main():
        rec = Recorder(tmp_path / "cap", compression="none", flush_interval=0.02)
        await rec.start()
        rec.record(t0, inst_id_code_frame("BTC-USDT", conv.codes["BTC-USDT"]))
        for i, f in enumerate(sbe):
            rec.record(t0 + i * 10**9, f)  # one a second: the second half in the next hour
        await rec.close()
        return rec

    rec = asyncio.run(main())
    assert len(rec.files) == 2
    read = [c.frame for p in rec.files for c in iter_frames(p) if c.frame[:1] != b"{"]
    assert read == sbe  # byte for byte
    for p in rec.files:  # each file applies on its own (the second from its carried snapshot)
        books = okxbook.Books()
        for c in iter_frames(p):
            books.apply(c.frame)  # no UnknownInstrumentError, no MissingSnapshotError
        assert books[L2].status == "live"
    # and the second one ends on the exchange's book
    assert books[L2].seq_id == book.seq_id
    assert values(books[L2].bid_levels()) == values(book.levels()[0])


def test_bbo_tbt_on_sbe_also_needs_the_header_login():
    async def main():
        async with exchange() as ex:
            url = ex.ws_url.replace(okx.WS_PUBLIC_PATH, okx.SBE_WS_PATH)
            bad = Credentials(CREDS["key"], "wrong-secret-123", CREDS["passphrase"])
            feed = Feed(
                [BBO], url=url, rest_url=ex.rest_url, credentials=bad, encoding="sbe", **FAST
            )
            async with feed:
                await wait_for(lambda: feed.status(*BBO).state == "invalid", what="refused")
                assert feed.errors[0].code == okx.Code.PLEASE_LOG_IN

    run(main)
