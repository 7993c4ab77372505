"""Holes of issue 14 that lived in the core: each test failed before its fix.

Negative seqIds (item 1), ``copy_from`` of empty sides (item 11), non-UTF-8 names and non-frame
objects (item 9), int64 overflow in derived values (item 7)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from okxbook import Books, FrameError, SequenceError

CH, INST = "books", "BTC-USDT"


def snapshot(mkframe, seq_id: int = 100, inst: str = INST) -> bytes:
    return mkframe(
        CH, inst, [("100", "1")], [("101", "1")], action="snapshot", prevSeqId=-1, seqId=seq_id
    )


# ------------------------------------------------------------------ item 1: negative seqIds


def test_negative_seq_id_cannot_switch_off_the_gap_check(mkframe, state):
    """The issue's reproducer: an update ``seqId -5`` used to be stored, and the next update was
    then applied whatever its prevSeqId (a real gap, unseen, book live and wrong)."""
    books = Books()
    books.apply(snapshot(mkframe))
    before = state(books)
    with pytest.raises(FrameError, match="negative seqId"):
        books.apply(mkframe(CH, INST, [("99", "1")], [], action="update", prevSeqId=100, seqId=-5))
    assert state(books) == before
    with pytest.raises(SequenceError):
        books.apply(mkframe(CH, INST, [], [], action="update", prevSeqId=400, seqId=500))
    assert books[CH, INST].status == "invalid"


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("snapshot", {"prevSeqId": -1, "seqId": -1}),
        ("snapshot", {"prevSeqId": -1, "seqId": -2}),
        ("snapshot", {"prevSeqId": -7, "seqId": 5}),
        ("update", {"prevSeqId": 100, "seqId": -1}),
        ("update", {"prevSeqId": -2, "seqId": 101}),
        ("update", {"prevSeqId": -(2**63) + 1, "seqId": 101}),
    ],
    ids=["snap-seq-1", "snap-seq-2", "snap-prev-7", "upd-seq-1", "upd-prev-2", "upd-prev-min"],
)
def test_negative_seq_ids_are_frame_errors(mkframe, state, action, fields):
    books = Books()
    books.apply(snapshot(mkframe))
    before = state(books)
    with pytest.raises(FrameError, match="negative"):
        books.apply(mkframe(CH, INST, [("99", "1")], [], action=action, **fields))
    assert state(books) == before
    # The chain still holds: the next in-sequence update applies.
    book = books.apply(
        mkframe(CH, INST, [], [("102", "1")], action="update", prevSeqId=100, seqId=101)
    )
    assert book.is_valid and book.seq_id == 101


def test_snapshot_without_seq_id_then_chain_starts_at_the_first_update_with_one(mkframe):
    """ "No seqId yet" is a state of its own, not a seqId value: after a snapshot without seqId the
    first update is taken as is, and from then on the chain is checked."""
    books = Books()
    books.apply(mkframe(CH, INST, [("100", "1")], [("101", "1")], action="snapshot"))
    book = books.apply(mkframe(CH, INST, [], [], action="update", prevSeqId=0, seqId=0))
    assert book.is_valid and book.seq_id == 0
    with pytest.raises(SequenceError):
        books.apply(mkframe(CH, INST, [], [], action="update", prevSeqId=5, seqId=6))


def test_seq_id_zero_is_data_not_no_seq_id(mkframe):
    books = Books()
    books.apply(snapshot(mkframe, seq_id=0))
    with pytest.raises(SequenceError):
        books.apply(mkframe(CH, INST, [], [], action="update", prevSeqId=7, seqId=8))


# ------------------------------------------------------------------ item 11: copy_from, empty sides


def _levels(book):
    return (book.bid_levels(), book.ask_levels(), book.bids().tobytes(), book.asks().tobytes())


@pytest.mark.parametrize(
    ("src_bids", "src_asks", "dst_bids", "dst_asks"),
    [
        ([], [], [], []),  # neither book ever allocated a level array
        ([], [], [("100", "1")], [("101", "2")]),
        ([("100", "1")], [], [], []),
        ([], [("101", "2")], [("99", "3")], []),
    ],
    ids=["empty-into-fresh", "empty-into-full", "bids-only", "asks-only"],
)
def test_copy_from_with_empty_sides(mkframe, src_bids, src_asks, dst_bids, dst_asks):
    """An empty side has no level array at all (NULL): copying it used to call memcpy with NULL
    pointers (undefined behaviour; a build with -fsanitize=undefined aborts here before the fix)."""
    src_books, dst_books = Books(), Books()
    src = src_books.book(CH, INST)
    dst = dst_books.book(CH, INST)
    if src_bids or src_asks:
        src = src_books.apply(
            mkframe(CH, INST, src_bids, src_asks, action="snapshot", prevSeqId=-1, seqId=7)
        )
    if dst_bids or dst_asks:
        dst = dst_books.apply(
            mkframe(CH, INST, dst_bids, dst_asks, action="snapshot", prevSeqId=-1, seqId=3)
        )
    dst.copy_from(src)
    assert _levels(dst) == _levels(src)
    assert (dst.status, dst.seq_id) == (src.status, src.seq_id)
    # The copy is a book of its own that goes on from where the source was.
    if src.is_valid:
        dst.copy_from(src)
        book = dst_books.apply(
            mkframe(CH, INST, [("98", "1")], [], action="update", prevSeqId=7, seqId=8)
        )
        assert book is dst and ("98", "1", 1) in dst.bid_levels() and src.seq_id == 7


# ------------------------------------------------------------------ item 9: names and non-frames


def _with_inst(mkframe, inst: bytes) -> bytes:
    return snapshot(mkframe, inst="@INST@").replace(b"@INST@", inst)


@pytest.mark.parametrize(
    "inst",
    [
        b"BTC-\xff",
        b"BTC-\xfe",
        b"BTC-\x80USDT",  # a stray continuation byte
        b"BTC-\xc0\xafUSDT",  # overlong "/"
        b"BTC-\xe0\x80\xafUSDT",  # overlong, 3 bytes
        b"BTC-\xed\xa0\x80USDT",  # a UTF-16 surrogate
        b"BTC-\xf4\x90\x80\x80USDT",  # past U+10FFFF
        b"BTC-\xe2\x82USDT",  # a 3-byte sequence cut short
        b"BTC-\xf5\x80\x80\x80",
    ],
    ids=["ff", "fe", "cont", "overlong2", "overlong3", "surrogate", "past-max", "short", "f5"],
)
def test_an_inst_id_that_is_not_utf8_is_a_frame_error(mkframe, state, inst):
    books = Books()
    books.apply(snapshot(mkframe))
    before = state(books)
    frame = _with_inst(mkframe, inst)
    with pytest.raises(FrameError, match="UTF-8") as ei:
        books.apply(frame)
    assert frame[ei.value.offset :].startswith(inst[4:5])
    assert state(books) == before and len(books) == 1


def test_a_channel_that_is_not_utf8_is_a_frame_error(mkframe):
    books = Books()
    frame = snapshot(mkframe).replace(b'"channel":"books"', b'"channel":"books\xff"')
    with pytest.raises(FrameError, match="UTF-8"):
        books.apply(frame)
    assert len(books) == 0


def test_two_bad_inst_ids_no_longer_become_one_book(mkframe):
    """Both used to decode to "BTC-\ufffd": the second frame went into the first one's book."""
    books = Books()
    for inst in (b"BTC-\xff", b"BTC-\xfe"):
        with pytest.raises(FrameError):
            books.apply(_with_inst(mkframe, inst))
    assert len(books) == 0 and books.get(CH, "BTC-\ufffd") is None


@pytest.mark.parametrize("inst", ["BTC-€", "币安-USDT", "X-\U0001f600"])
def test_a_non_ascii_utf8_inst_id_is_kept_and_found(mkframe, inst):
    books = Books()
    book = books.apply(_with_inst(mkframe, inst.encode()))
    assert book.inst_id == inst and books[CH, inst] is book


def _not_frames():
    from array import array

    import numpy as np

    released = memoryview(b'{"event":"x"}')
    released.release()
    return {
        "int": (5, TypeError),
        "none": (None, TypeError),
        "float": (1.5, TypeError),
        "list": ([b"x"], TypeError),
        "object": (object(), TypeError),
        "int-array": (memoryview(array("i", [1, 2])), FrameError),
        "double-array": (array("d", [1.0]), FrameError),
        "2d": (memoryview(np.zeros((2, 3), dtype="u1")), FrameError),
        "strided": (memoryview(b'{"event":"x"}')[::2], FrameError),
        "released": (released, FrameError),
    }


@pytest.mark.parametrize("case", list(_not_frames()))
def test_apply_of_a_non_frame_is_a_frame_error_or_a_type_error(mkframe, state, case):
    obj, exc = _not_frames()[case]
    books = Books()
    books.apply(snapshot(mkframe))
    before = state(books)
    with pytest.raises(exc) as ei:
        books.apply(obj)
    assert type(ei.value) in (FrameError, TypeError), type(ei.value)
    assert state(books) == before


def test_byte_buffers_of_every_kind_apply(mkframe):
    from array import array

    import numpy as np

    frame = snapshot(mkframe)
    for obj in (
        bytearray(frame),
        memoryview(frame),
        memoryview(bytearray(frame)),
        np.frombuffer(frame, dtype="u1"),
        array("b", frame),
        memoryview(frame).cast("c"),
    ):
        books = Books()
        assert books.apply(obj) is books[CH, INST]
    for empty in (bytearray(), memoryview(b""), np.zeros(0, dtype="u1")):
        with pytest.raises(FrameError, match="empty frame"):
            Books().apply(empty)


# ------------------------------------------------------------------ item 7: no int64 overflow


BIG_SZ = "1000000000.00000000"  # 10**9 at 8 decimals: 10**17 lots; 400 of them pass 2**63


def _deep_book(mkframe):
    bids = [(f"{1000 - i}.0", BIG_SZ) for i in range(400)]
    asks = [(f"{1001 + i}.0", BIG_SZ) for i in range(400)]
    books = Books()
    book = books.apply(mkframe("books", INST, bids, asks, action="snapshot", prevSeqId=-1, seqId=1))
    assert book.n_bids == 400 and book.n_asks == 400 and book.sz_decimals == 8
    return book


def test_cum_sz_of_400_levels_of_1e9_does_not_wrap(mkframe):
    book = _deep_book(mkframe)
    for side in (book.bids(), book.asks()):
        assert side["sz"][0] == 1e9
        assert side["cum_sz"][-1] == pytest.approx(400e9, rel=1e-12)
        assert (side["cum_sz"][1:] > side["cum_sz"][:-1]).all()  # a running total only grows


def test_top_series_bands_of_400_levels_of_1e9_do_not_wrap(mkframe):
    from okxbook import TopSeries

    book = _deep_book(mkframe)
    series = TopSeries(bps=(1, 10000))
    series.observe(book, 0)
    cols = series.columns()
    assert cols["bid_depth_10000bps"][0] == pytest.approx(400e9, rel=1e-12)
    assert cols["ask_depth_10000bps"][0] == pytest.approx(400e9, rel=1e-12)
    assert cols["bid_depth_1bps"][0] == 0.0  # 1 bp of ~1000.5 holds no level


@pytest.mark.parametrize(
    ("bid", "ask"),
    [
        ("92233720368547758.00", "92233720368547758.07"),  # bid + ask passes 2**63 ticks
        ("-92233720368547758.00", "92233720368547758.00"),  # ask - bid passes 2**63 ticks
    ],
    ids=["mid", "spread"],
)
def test_mid_and_spread_do_not_wrap(mkframe, bid, ask):
    from okxbook import TopSeries

    books = Books()
    book = books.apply(
        mkframe(CH, INST, [(bid, "1")], [(ask, "1")], action="snapshot", prevSeqId=-1, seqId=1)
    )
    want_mid = float((Fraction(bid) + Fraction(ask)) / 2)  # exact, rounded once
    want_spread = float(Fraction(ask) - Fraction(bid))
    assert book.mid == pytest.approx(want_mid, rel=1e-12, abs=1e-9)
    assert book.spread == pytest.approx(want_spread, rel=1e-12)
    series = TopSeries()
    series.observe(book, 0)
    cols = series.columns()
    assert cols["mid"][0] == pytest.approx(want_mid, rel=1e-12, abs=1e-9)
    assert cols["spread"][0] == pytest.approx(want_spread, rel=1e-12)
