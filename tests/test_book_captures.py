"""Every real capture in tests/data/okx-frames replays with zero checksum mismatches and zero sequence gaps,
and ends (and passes through) exactly the book a plain dict model computes from the same frames.

The reference model below is written from the protocol doc alone (json.loads, Decimal keys, delete on
size 0, replace or insert), and is itself checked against every checksum in the captures with zlib."""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from conftest import FRAMES_DIR

import okxbook
from okxbook import Book, Books, UnknownChannelError
from okxbook.capture import iter_frames

DEPTH = {
    "books": 400,
    "books-l2-tbt": 400,
    "books50-l2-tbt": 50,
    "books-rpi": 400,
    "books-elp": 400,
    "books5": 5,
    "bbo-tbt": 1,
}
IMAGE = {"books5", "bbo-tbt"}
NAUTILUS = "nautechsystems_nautilus_trader"


def capture_streams() -> list[tuple[str, list[Path]]]:
    """One stream per file; the nautilus rpi update is replayed after its snapshot as one stream."""
    if not FRAMES_DIR.is_dir():
        return []
    out = []
    for p in sorted(FRAMES_DIR.rglob("*")):
        if not p.is_file() or p.suffix in (".txt", ".md"):
            continue
        rel = str(p.relative_to(FRAMES_DIR))
        if p.name == "ws_books_rpi_update.json":
            continue
        if p.name == "ws_books_rpi_snapshot.json":
            out.append(
                (
                    f"{NAUTILUS}/ws_books_rpi_snapshot+update",
                    [p, p.with_name("ws_books_rpi_update.json")],
                )
            )
        else:
            out.append((rel, [p]))
    return out


STREAMS = capture_streams()


def decimals(s: str) -> int:
    return len(s.partition(".")[2])


@dataclass
class RefBook:
    """Reference book for one (channel, instId), plus the counters the engine should report."""

    channel: str
    bids: dict = field(default_factory=dict)  # Decimal px -> (px_str, sz_str, orders)
    asks: dict = field(default_factory=dict)
    seq_id: int = -1
    ts_ms: int = 0
    px_dec: int = 0
    sz_dec: int = 0
    frames: int = 0
    snapshots: int = 0
    updates: int = 0
    heartbeats: int = 0
    seq_resets: int = 0
    checksum_nonzero: int = 0
    checksum_absent: int = 0
    missing_deletes: int = 0
    max_side: int = 0

    def top(self, side: str, n: int | None = None):
        d = self.bids if side == "bids" else self.asks
        keys = sorted(d, reverse=(side == "bids"))
        return [d[k] for k in keys[:n]]

    def top_values(self):
        """Best bid and ask as values (px, sz), for top_changed."""
        b, a = self.best()
        return (
            (b, Decimal(self.bids[b][1])) if b is not None else None,
            (a, Decimal(self.asks[a][1])) if a is not None else None,
        )

    def best(self):
        b = max(self.bids) if self.bids else None
        a = min(self.asks) if self.asks else None
        return b, a


def ref_apply(refs: dict, msg: dict) -> tuple[str, str] | None:
    """Apply one decoded push; returns its (channel, instId) or None for non-book frames."""
    if not isinstance(msg, dict) or "event" in msg:
        return None
    channel, inst = msg["arg"]["channel"], msg["arg"]["instId"]
    if channel not in DEPTH:
        return None
    ref = refs.setdefault((channel, inst), RefBook(channel))
    action = msg.get("action")
    ref.frames += 1
    levels = [l for item in msg["data"] for l in item["bids"] + item["asks"]]
    frame_px_dec = max((decimals(l[0]) for l in levels), default=0)
    frame_sz_dec = max((max(decimals(l[1]), decimals(l[2])) for l in levels), default=0)
    for item in msg["data"]:
        reset = channel in IMAGE or action == "snapshot" or item.get("prevSeqId") == -1
        if reset:
            ref.bids.clear()
            ref.asks.clear()
            ref.snapshots += 1
            ref.px_dec, ref.sz_dec = frame_px_dec, frame_sz_dec
            if "seqId" not in item:
                ref.seq_id = -1
        else:
            ref.updates += 1
            ref.px_dec, ref.sz_dec = max(ref.px_dec, frame_px_dec), max(ref.sz_dec, frame_sz_dec)
            if "seqId" in item and item.get("prevSeqId") == ref.seq_id >= 0:
                if item["seqId"] == item["prevSeqId"] and not item["bids"] and not item["asks"]:
                    ref.heartbeats += 1
                elif item["seqId"] < item["prevSeqId"]:
                    ref.seq_resets += 1
        for name in ("bids", "asks"):
            side = ref.bids if name == "bids" else ref.asks
            for px, sz, _third, orders in item[name]:
                key = Decimal(px)
                if Decimal(sz) == 0:
                    if side.pop(key, None) is None and not reset:
                        ref.missing_deletes += 1
                else:
                    side[key] = (px, sz, int(orders))
        ref.max_side = max(ref.max_side, len(ref.bids), len(ref.asks))
        if "seqId" in item:
            ref.seq_id = item["seqId"]
        if "ts" in item:
            ref.ts_ms = int(item["ts"])
        if item.get("checksum", 0) != 0:
            ref.checksum_nonzero += 1
        else:
            ref.checksum_absent += 1
    return channel, inst


def ref_top_checksum(ref: RefBook) -> int:
    bids, asks = ref.top("bids", 25), ref.top("asks", 25)
    parts = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i][:2]
        if i < len(asks):
            parts += asks[i][:2]
    return zlib.crc32(":".join(parts).encode())


def frames_of(paths):
    for p in paths:
        for cf in iter_frames(p):
            yield cf.frame


def decode(frame: bytes):
    if frame.strip() == b"pong":
        return "pong"
    return json.loads(frame)


def test_the_expected_captures_are_there():
    names = {name for name, _ in STREAMS}
    assert len(STREAMS) == 8, names
    assert f"{NAUTILUS}/ws_books_rpi_snapshot+update" in names


@pytest.mark.parametrize("name,paths", STREAMS, ids=[n for n, _ in STREAMS])
def test_reference_model_reproduces_every_capture_checksum(name, paths):
    """The reference is right: after each frame with a checksum, zlib.crc32 over the model's top 25
    equals it (compared unsigned, so the model does not share the engine's signed conversion)."""
    refs: dict = {}
    checked = 0
    for frame in frames_of(paths):
        msg = decode(frame)
        key = ref_apply(refs, msg)
        if key is None:
            continue
        cs = msg["data"][-1].get("checksum", 0)
        if cs:
            assert ref_top_checksum(refs[key]) == cs & 0xFFFFFFFF, (key, cs)
            checked += 1
    with_checksums = {"bmoscon_cryptofeed", "thrasher-corp_gocryptotrader"}
    if name.split("/")[0] in with_checksums and "books5" not in name:
        assert checked > 0


@pytest.mark.parametrize("name,paths", STREAMS, ids=[n for n, _ in STREAMS])
def test_capture_replays_clean_and_matches_the_reference(name, paths):
    books = Books(verify_checksum=True)
    refs: dict = {}
    n_events = n_unknown = 0
    for frame in frames_of(paths):
        msg = decode(frame)
        try:
            out = books.apply(frame)
        except UnknownChannelError as e:
            n_unknown += 1
            assert isinstance(msg, dict) and msg["arg"]["channel"] not in DEPTH
            assert e.channel == msg["arg"]["channel"]
            continue
        if msg == "pong":
            n_events += 1
            assert out is okxbook.PONG
            continue
        if "event" in msg:
            n_events += 1
            assert isinstance(out, okxbook.Event)
            if msg["event"] == "subscribe":
                assert isinstance(out, okxbook.SubscribeAck)
                assert (out.channel, out.inst_id) == (
                    msg["arg"]["channel"],
                    msg["arg"].get("instId"),
                )
            continue
        key0 = (msg["arg"]["channel"], msg["arg"]["instId"])
        top_before = refs[key0].top_values() if key0 in refs else (None, None)
        key = ref_apply(refs, msg)
        assert isinstance(out, Book) and (out.channel, out.inst_id) == key
        ref = refs[key]
        assert out.top_changed == (top_before != ref.top_values())
        # Top of book after every frame: raw strings, floats, flags.
        b, a = ref.best()
        assert out.best_bid == (ref.bids[b][:2] if b is not None else None)
        assert out.best_ask == (ref.asks[a][:2] if a is not None else None)
        assert out.crossed == (b is not None and a is not None and b >= a)
        assert out.is_valid
    assert len(refs) > 0
    assert books.events == n_events
    assert {(bk.channel, bk.inst_id) for bk in books} == set(refs)
    for (channel, inst), ref in refs.items():
        book = books[channel, inst]
        s = book.stats()
        # Zero mismatches, zero gaps, nothing dropped.
        assert s["checksum_mismatch"] == 0 and s["seq_gaps"] == 0
        assert s["dropped_while_invalid"] == 0 and book.status == "live"
        # Counters against independent counts of the same frames.
        assert s["checksum_ok"] == ref.checksum_nonzero
        assert s["checksum_absent"] == ref.checksum_absent
        assert (s["frames"], s["snapshots"], s["updates"]) == (
            ref.frames,
            ref.snapshots,
            ref.updates,
        )
        assert (s["heartbeats"], s["seq_resets"]) == (ref.heartbeats, ref.seq_resets)
        assert s["missing_deletes"] == ref.missing_deletes
        assert ref.max_side <= (DEPTH[channel] if channel in IMAGE else 2 * DEPTH[channel])
        assert s["trimmed_levels"] == 0
        assert (book.seq_id, book.ts_ms) == (ref.seq_id, ref.ts_ms)
        assert (book.px_decimals, book.sz_decimals) == (ref.px_dec, ref.sz_dec)
        check_final_book(book, ref)


def check_final_book(book: Book, ref: RefBook) -> None:
    depth = DEPTH[ref.channel]
    for name in ("bids", "asks"):
        want = ref.top(name, depth)
        got = book.bid_levels() if name == "bids" else book.ask_levels()
        assert got == want, name
        rows = book.bids() if name == "bids" else book.asks()
        assert rows.dtype == okxbook.DEPTH_DTYPE and len(rows) == len(want)
        sizes = [Decimal(sz) for _px, sz, _o in want]
        assert rows["px"].tolist() == [float(Decimal(px)) for px, _sz, _o in want]
        assert rows["sz"].tolist() == [float(x) for x in sizes]
        assert rows["px_ticks"].tolist() == [
            int(Decimal(px).scaleb(book.px_decimals)) for px, _s, _o in want
        ]
        assert rows["sz_lots"].tolist() == [int(x.scaleb(book.sz_decimals)) for x in sizes]
        assert rows["orders"].tolist() == [o for _px, _sz, o in want]
        running = [sum(sizes[: i + 1]) for i in range(len(sizes))]
        assert np.allclose(rows["cum_sz"], [float(x) for x in running], rtol=1e-12, atol=0)
    n_b, n_a = len(ref.bids), len(ref.asks)
    assert (book.n_bids, book.n_asks) == (min(n_b, depth), min(n_a, depth))
    b, a = ref.best()
    if b is not None:
        assert book.best_bid_px == float(b) and book.best_bid_sz == float(Decimal(ref.bids[b][1]))
        assert book.best_bid_ticks == int(b.scaleb(book.px_decimals))
    else:
        assert math.isnan(book.best_bid_px) and book.best_bid_ticks == okxbook.NO_BID
    if a is not None:
        assert book.best_ask_px == float(a) and book.best_ask_sz == float(Decimal(ref.asks[a][1]))
        assert book.best_ask_ticks == int(a.scaleb(book.px_decimals))
    else:
        assert math.isnan(book.best_ask_px) and book.best_ask_ticks == okxbook.NO_ASK
    if a is not None and b is not None:
        assert book.spread == pytest.approx(float(a - b), rel=1e-12, abs=1e-15)
        assert book.mid == pytest.approx(float((a + b) / 2), rel=1e-12)
    else:
        assert math.isnan(book.spread) and math.isnan(book.mid)


def test_every_capture_checksum_verifies_through_the_engine_frame_by_frame():
    """Frame-level: each book frame with a checksum leaves checksum_ok one higher (none is skipped)."""
    path = FRAMES_DIR / "bmoscon_cryptofeed/2022-02-28_books-l2-tbt_ed5b535/OKX.ws.1.0"
    books = Books()
    n = 0
    for frame in frames_of([path]):
        msg = decode(frame)
        if not (
            isinstance(msg, dict)
            and msg.get("arg", {}).get("channel") == "books-l2-tbt"
            and "data" in msg
        ):
            continue
        key = ("books-l2-tbt", msg["arg"]["instId"])
        before = books.get(*key).stats()["checksum_ok"] if books.get(*key) else 0
        book = books.apply(frame)
        assert book.stats()["checksum_ok"] == before + 1
        assert book.checksum == msg["data"][0]["checksum"] != 0
        n += 1
    assert n == 3679  # tests/data/okx-frames/README.md
