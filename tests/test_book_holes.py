"""Holes of issue 14 that lived in the core: each test failed before its fix.

Negative seqIds (item 1), ``copy_from`` of empty sides (item 11), non-UTF-8 names and non-frame
objects (item 9), int64 overflow in derived values (item 7)."""

from __future__ import annotations

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
