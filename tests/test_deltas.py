"""Delta rows (okxbook._deltas): applying every frame's rows to an empty dict book rebuilds the
engine's book exactly, after every frame, on every real capture and on generated streams that trim,
rescale, reset, break the chain, fail checksums and carry rejected frames.

The dict book is ``okxbook.DeltaBook`` with ``check=True``: every update and delete must name the
size the dict holds, so a wrong ``prev_sz_lots`` fails too. The engine's book is read through its
own public readers (``bids()``/``asks()`` for the visible depth, ``snapshot_deltas()`` for every
level it keeps past the depth)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from test_book_captures import STREAMS, frames_of

from okxbook import (
    DELTA_DTYPE,
    FRAME_DTYPE,
    Book,
    Books,
    ChecksumError,
    DeltaBook,
    DeltaError,
    DeltaRecorder,
    FrameError,
    OkxbookError,
    SequenceError,
)
from okxbook._deltas import CLEAR, DELETE, INSERT, INVALID, RESCALE, TRIM, UPDATE
from okxbook.testing import synthetic_stream


def visible(book: Book) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    cols = ["px_ticks", "sz_lots", "orders", "extra_lots"]
    return (
        [tuple(r) for r in book.bids()[cols].tolist()],
        [tuple(r) for r in book.asks()[cols].tolist()],
    )


def rebuilt(db: DeltaBook, depth: int) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    return (
        [tuple(r) for r in db.bids(depth).tolist()],
        [tuple(r) for r in db.asks(depth).tolist()],
    )


def held(book: Book) -> tuple[dict[int, tuple[int, int, int]], dict[int, tuple[int, int, int]]]:
    """Every level the engine keeps (also past ``depth``), from its snapshot rows."""
    _frames, rows = book.snapshot_deltas()
    out: tuple[dict, dict] = ({}, {})
    for r in rows[rows["action"] == INSERT].tolist():
        out[0 if r[1] > 0 else 1][r[5]] = (r[6], r[8], r[9])
    return out


def check_same(book: Book, db: DeltaBook, *, full: bool = False) -> None:
    assert rebuilt(db, book.depth) == visible(book)
    assert (db.px_decimals, db.sz_decimals) == (book.px_decimals, book.sz_decimals)
    assert db.status == book.status
    if book.is_valid:
        assert db.seq_id == book.seq_id and db.ts_ms == book.ts_ms
    if full:
        assert (db.bid, db.ask) == held(book)


def replay(frames: list[bytes], *, full_every: int = 0) -> tuple[Books, dict, int, int]:
    """Apply ``frames`` with a single-mode recorder, rebuilding each book from its rows after every
    frame; returns the books, the rebuilt books, and the counts of frames and rows recorded."""
    books = Books()
    rec = DeltaRecorder()
    books.record_deltas(rec)
    dbs: dict[tuple[str, str], DeltaBook] = {}
    n_frames = n_rows = 0
    for i, frame in enumerate(frames):
        before = rec.recorded
        try:
            out = books.apply(frame)
        except FrameError:
            # Rejected whole: nothing recorded.
            assert rec.recorded == before
            continue
        except (SequenceError, ChecksumError) as exc:
            out = books[exc.channel, exc.inst_id]
            f = rec.frames(copy=False)
            assert f[0]["status"] == 2
            assert rec.rows()["action"][-1] == INVALID
        except OkxbookError:
            continue
        if not isinstance(out, Book):
            continue
        f, rows = rec.frames(), rec.rows()
        if len(f) == 0:  # dropped while waiting for a snapshot
            assert rec.recorded == before and not out.is_valid
            continue
        assert rec.recorded == before + 1
        assert len(f) == 1 and f[0]["n_rows"] == len(rows) and (rows["frame"] == 0).all()
        key = rec.books[f[0]["book"]]
        assert key == (out.channel, out.inst_id)
        db = dbs.setdefault(key, DeltaBook(*key))
        db.apply(f[0], rows)
        n_frames += 1
        n_rows += len(rows)
        check_same(out, db, full=bool(full_every) and i % full_every == 0)
    for key, db in dbs.items():
        check_same(books[key], db, full=True)
    return books, dbs, n_frames, n_rows


@pytest.mark.parametrize("name,paths", STREAMS, ids=[n for n, _ in STREAMS])
def test_deltas_rebuild_every_capture_after_every_frame(name, paths):
    frames = list(frames_of(paths))
    books, dbs, n_frames, n_rows = replay(frames, full_every=7)
    assert dbs and n_frames > 0 and n_rows > 0
    assert {(b.channel, b.inst_id) for b in books if b.frames} == set(dbs)


def test_deltas_rebuild_a_synthetic_multi_book_stream():
    frames = synthetic_stream(["BTC-USDT", "ETH-USDT", "SOL-USDT"], 1500, seed=3)
    _books, dbs, n_frames, _rows = replay(frames, full_every=50)
    assert len(dbs) == 3 and n_frames == len(frames)


# ------------------------------------------------------------------ an adversarial stream


def _num(units: int, dec: int) -> str:
    s = str(abs(units)).rjust(dec + 1, "0")
    return ("-" if units < 0 else "") + (s[:-dec] + "." + s[-dec:] if dec else s)


class Adversary:
    """``books50-l2-tbt`` frames (keeps 100 levels a side) that exercise every delta action: full
    sides that trim, prices and sizes with more decimals mid-stream (rescale), unordered and
    duplicate snapshot levels, deletes of absent prices, heartbeats, seqId resets, gaps, bad
    checksums and frames the engine rejects."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seq = 100
        self.inst = "ADV-USDT"

    def frame(self, action: str, bids, asks, prev: int, seq: int, checksum: int = 0) -> bytes:
        msg = {
            "arg": {"channel": "books50-l2-tbt", "instId": self.inst},
            "action": action,
            "data": [
                {
                    "asks": asks,
                    "bids": bids,
                    "ts": str(1_700_000_000_000 + seq),
                    "checksum": checksum,
                    "prevSeqId": prev,
                    "seqId": seq,
                }
            ],
        }
        return json.dumps(msg).encode()

    def level(self, side: int, zero: bool = False, cap: int = 3) -> list[str]:
        rng = self.rng
        dec = min(cap, rng.choice((0, 0, 0, 1, 1, 2, 3)))
        # Bids below 10000, asks above: ticks at 10**-3, printed with `dec` decimals.
        off = rng.randrange(1, 400) * 10 ** (3 - dec)
        px = (10_000_000 - off) if side > 0 else (10_000_000 + off)
        sz = "0" if zero else _num(rng.randrange(1, 10**5), min(cap + 1, rng.choice((0, 1, 2, 4))))
        return [_num(px // 10 ** (3 - dec), dec), sz, "0", str(rng.randrange(0, 9))]

    def side(self, side: int, n: int, **kw) -> list[list[str]]:
        return [self.level(side, **kw) for _ in range(n)]

    def snapshot(self, ordered: bool = True) -> bytes:
        # Often fewer decimals than the updates bring: the book must rescale.
        cap = self.rng.choice((0, 1, 3))
        bids = self.side(1, self.rng.randrange(0, 140), cap=cap)
        asks = self.side(-1, 120, cap=cap)
        if ordered:
            bids = list({float(b[0]): b for b in bids}.values())
            asks = list({float(a[0]): a for a in asks}.values())
            bids.sort(key=lambda b: -float(b[0]))
            asks.sort(key=lambda a: float(a[0]))
        self.seq += 1
        return self.frame("snapshot", bids, asks, -1, self.seq)

    def update(self) -> bytes:
        rng = self.rng
        bids = self.side(1, rng.randrange(0, 12)) + self.side(1, rng.randrange(0, 6), zero=True)
        asks = self.side(-1, rng.randrange(0, 12)) + self.side(-1, rng.randrange(0, 6), zero=True)
        prev, self.seq = self.seq, self.seq + rng.randrange(1, 4)
        return self.frame("update", bids, asks, prev, self.seq)

    def stream(self, n: int) -> list[bytes]:
        rng = self.rng
        out = [self.snapshot()]
        for _ in range(n):
            r = rng.random()
            if r < 0.02:
                out.append(self.snapshot(ordered=rng.random() < 0.5))
            elif r < 0.03:  # gap
                prev, self.seq = self.seq + 5, self.seq + 6
                out.append(self.frame("update", self.side(1, 2), [], prev, self.seq))
                if rng.random() < 0.7:
                    out.append(self.snapshot())
            elif r < 0.04:  # wrong checksum
                prev, self.seq = self.seq, self.seq + 1
                out.append(self.frame("update", self.side(1, 1), [], prev, self.seq, 12345))
                if rng.random() < 0.7:  # resync soon, so most of the stream is live
                    out.append(self.snapshot())
            elif r < 0.05:  # heartbeat
                out.append(self.frame("update", [], [], self.seq, self.seq))
            elif r < 0.06:  # seqId reset after maintenance
                prev, self.seq = self.seq, rng.randrange(1, 50)
                out.append(self.frame("update", self.side(-1, 3), [], prev, self.seq))
            elif r < 0.07:  # rejected: does not fit int64 at 18 decimals
                bad = [["1." + "1" * 18, "9" * 18, "0", "1"]]
                out.append(self.frame("update", bad, [], self.seq, self.seq + 1))
            else:
                out.append(self.update())
        return out


@pytest.mark.parametrize("seed", range(4))
def test_deltas_rebuild_through_trims_rescales_resets_gaps_and_rejects(seed):
    frames = Adversary(seed).stream(900)
    books, dbs, _n, _rows = replay(frames, full_every=3)
    book = books["books50-l2-tbt", "ADV-USDT"]
    s = book.stats()
    # The stream really did what it is for.
    assert s["trimmed_levels"] > 0 and s["seq_gaps"] > 0 and s["checksum_mismatch"] > 0
    assert s["seq_resets"] > 0 and s["heartbeats"] > 0 and s["missing_deletes"] > 0


def test_each_action_appears_with_its_meaning():
    adv = Adversary(11)
    books = Books()
    rec = DeltaRecorder(batch=True)
    books.record_deltas(rec)
    for frame in adv.stream(600):
        try:
            books.apply(frame)
        except OkxbookError:
            pass
    frames, rows = rec.take()
    seen = set(rows["action"].tolist())
    assert {CLEAR, INSERT, UPDATE, DELETE, TRIM, RESCALE, INVALID} <= seen
    resc = rows[rows["action"] == RESCALE]
    # A rescale names the factors, and the rows after it carry the new decimals.
    for r in resc:
        fr = frames[r["frame"]]
        assert r["px_ticks"] >= 1 and r["sz_lots"] >= 1 and r["px_ticks"] * r["sz_lots"] > 1
        assert (r["px_decimals"], r["sz_decimals"]) == (fr["px_decimals"], fr["sz_decimals"])
    snaps = frames[frames["is_snapshot"] == 1]
    assert len(snaps) > 0
    assert (rows[snaps["first_row"]]["action"] == CLEAR).all()
    assert rec.n_rows == 0 and rec.n_frames == 0


def test_batch_mode_collects_many_frames_with_a_frame_index():
    frames = synthetic_stream(["BTC-USDT", "ETH-USDT"], 800, seed=5)
    books = Books()
    rec = DeltaRecorder(batch=True, capacity=16)  # grows many times
    books.record_deltas(rec)
    for i, frame in enumerate(frames):
        rec.recv_ns = 1_000 + i
        books.apply(frame)
    f, rows = rec.frames(), rec.rows()
    assert f.dtype == FRAME_DTYPE and rows.dtype == DELTA_DTYPE
    assert len(f) == len(frames) and f["recv_ns"].tolist() == [1_000 + i for i in range(len(f))]
    assert f["first_row"].tolist() == np.concatenate([[0], np.cumsum(f["n_rows"])[:-1]]).tolist()
    assert (np.repeat(np.arange(len(f)), f["n_rows"]) == rows["frame"]).all()
    dbs = {key: DeltaBook(*key) for key in rec.books}
    for fr in f:
        a = int(fr["first_row"])
        dbs[rec.books[fr["book"]]].apply(fr, rows[a : a + fr["n_rows"]])
    for key, db in dbs.items():
        check_same(books[key], db, full=True)
    # Chained seqIds per book, as a consumer verifies them.
    for b in range(len(rec.books)):
        mine = f[f["book"] == b]
        assert (mine["prev_seq_id"][1:] == mine["seq_id"][:-1]).all()


def test_no_recorder_no_rows_and_detaching_stops():
    frames = synthetic_stream(["BTC-USDT"], 20, seed=1)
    books = Books()
    rec = DeltaRecorder(batch=True)
    for f in frames[:5]:
        books.apply(f)
    assert rec.n_frames == 0 and books.recorder is None
    books.record_deltas(rec)  # attaches to existing books too
    for f in frames[5:10]:
        books.apply(f)
    assert rec.n_frames == 5 and books["books", "BTC-USDT"].recorder is rec
    books.record_deltas(None)
    for f in frames[10:]:
        books.apply(f)
    assert rec.n_frames == 5


def test_copy_from_and_invalidate_are_recorded():
    frames = synthetic_stream(["BTC-USDT"], 30, seed=2)
    src, dst = Books(), Book("books", "BTC-USDT")
    for f in frames:
        src.apply(f)
    rec = DeltaRecorder(batch=True)
    dst.record_deltas(rec)
    db = DeltaBook("books", "BTC-USDT")
    dst.copy_from(src["books", "BTC-USDT"])
    dst.invalidate("disconnected")
    f, rows = rec.take()
    assert len(f) == 2 and f[0]["is_snapshot"] == 1 and f[1]["status"] == 2
    db.apply(f[0], rows[: f[0]["n_rows"]])
    check_same(src["books", "BTC-USDT"], db, full=True)
    db.apply(f[1], rows[f[0]["n_rows"] :])
    assert db.status == "invalid" and not db.bid and not db.ask


def test_delta_book_rejects_a_stream_with_a_hole():
    frames = synthetic_stream(["BTC-USDT"], 60, seed=4)
    books = Books()
    rec = DeltaRecorder(batch=True)
    books.record_deltas(rec)
    for f in frames:
        books.apply(f)
    f, rows = rec.take()
    db = DeltaBook()
    with pytest.raises(DeltaError):
        for i, fr in enumerate(f):
            if i == 10:  # lose one frame's rows
                continue
            a = int(fr["first_row"])
            db.apply(fr, rows[a : a + fr["n_rows"]])


def test_rejected_first_frame_records_nothing():
    rec = DeltaRecorder()
    books = Books()
    books.record_deltas(rec)
    with pytest.raises(FrameError):
        books.apply(
            b'{"arg":{"channel":"books","instId":"X"},"action":"snapshot","data":[{"bids":'
            b'[["100000000000","1","0","1"],["0.00000001","1","0","1"]],"asks":[]}]}'
        )
    assert rec.n_frames == 0 and rec.n_rows == 0
