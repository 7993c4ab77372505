"""seqId/prevSeqId sequencing (protocol doc §4): the doc example chain, gaps, missing snapshots,
heartbeats, resets, int64 values, frames without seqId, image channels."""

from __future__ import annotations

import math

import pytest

from okxbook import Books, FrameError, MissingSnapshotError, SequenceError, UnknownChannelError

CH, INST = "books", "BTC-USDT"


def levels(book):
    return ([l[:2] for l in book.bid_levels()], [l[:2] for l in book.ask_levels()])


def test_doc_example_chain(mkframe):
    """(-1→10) snapshot, (10→15) update, (15→15) no change, (15→3) reset, (3→5)."""
    books = Books()
    book = books.apply(
        mkframe(
            CH,
            INST,
            [("100", "1"), ("99", "2")],
            [("101", "3")],
            action="snapshot",
            prevSeqId=-1,
            seqId=10,
            ts="1000",
        )
    )
    assert (book.seq_id, book.prev_seq_id, book.status) == (10, -1, "live")
    assert levels(book) == ([("100", "1"), ("99", "2")], [("101", "3")])

    book = books.apply(
        mkframe(
            CH,
            INST,
            [("100", "0")],
            [("101", "4"), ("102", "1")],
            action="update",
            prevSeqId=10,
            seqId=15,
            ts="1001",
        )
    )
    assert (book.seq_id, book.prev_seq_id) == (15, 10)
    assert levels(book) == ([("99", "2")], [("101", "4"), ("102", "1")])

    book = books.apply(
        mkframe(CH, INST, [], [], action="update", prevSeqId=15, seqId=15, ts="1002")
    )
    assert book.seq_id == 15 and book.is_valid and book.ts_ms == 1002
    assert levels(book) == ([("99", "2")], [("101", "4"), ("102", "1")])

    book = books.apply(
        mkframe(CH, INST, [("98", "5")], [], action="update", prevSeqId=15, seqId=3, ts="1003")
    )
    assert (book.seq_id, book.prev_seq_id, book.is_valid) == (3, 15, True)
    assert levels(book) == ([("99", "2"), ("98", "5")], [("101", "4"), ("102", "1")])

    book = books.apply(
        mkframe(CH, INST, [], [("101", "0")], action="update", prevSeqId=3, seqId=5, ts="1004")
    )
    assert (book.seq_id, book.prev_seq_id, book.ts_ms) == (5, 3, 1004)
    assert levels(book) == ([("99", "2"), ("98", "5")], [("102", "1")])
    s = book.stats()
    assert s["frames"] == 5 and s["snapshots"] == 1 and s["snapshots"] + s["updates"] == 5
    assert (s["heartbeats"], s["seq_resets"], s["seq_gaps"]) == (1, 1, 0)
    assert s["dropped_while_invalid"] == 0 and s["checksum_absent"] == 5


def test_gap_raises_invalidates_drops_quietly_and_snapshot_restores(mkframe, state):
    books = Books()
    books.apply(
        mkframe(
            CH, "ETH-USDT", [("10", "1")], [("11", "1")], action="snapshot", prevSeqId=-1, seqId=7
        )
    )
    other = state(books)[(CH, "ETH-USDT")]
    book = books.apply(
        mkframe(CH, INST, [("100", "1")], [("101", "1")], action="snapshot", prevSeqId=-1, seqId=10)
    )
    with pytest.raises(SequenceError) as ei:
        books.apply(
            mkframe(CH, INST, [("100.5", "1")], [], action="update", prevSeqId=12, seqId=15)
        )
    e = ei.value
    assert (e.channel, e.inst_id, e.seq_id, e.prev_seq_id, e.last_seq_id) == (CH, INST, 15, 12, 10)
    assert "12" in str(e) and "10" in str(e) and not isinstance(e, FrameError)
    assert book.status == "invalid" and not book.is_valid and "gap" in book.invalid_reason
    assert levels(book) == ([], []) and book.n_bids == 0 and math.isnan(book.mid)
    assert book.best_bid is None and book.best_bid_ticks is not None
    assert book.stats()["seq_gaps"] == 1
    # Further updates: no exception, nothing applied, counted.
    for prev, seq in ((15, 20), (20, 25)):
        assert (
            books.apply(
                mkframe(CH, INST, [("100", "9")], [], action="update", prevSeqId=prev, seqId=seq)
            )
            is book
        )
        assert book.top_changed is False
    assert book.stats()["dropped_while_invalid"] == 2 and levels(book) == ([], [])
    assert book.status == "invalid"
    # Another book was never touched.
    assert state(books)[(CH, "ETH-USDT")] == other
    # A snapshot restores the book; the chain continues from it.
    book = books.apply(
        mkframe(CH, INST, [("99", "2")], [("102", "3")], action="snapshot", prevSeqId=-1, seqId=30)
    )
    assert book.is_valid and book.invalid_reason is None and book.seq_id == 30
    book = books.apply(
        mkframe(CH, INST, [("99", "0")], [], action="update", prevSeqId=30, seqId=31)
    )
    assert levels(book) == ([], [("102", "3")]) and book.seq_id == 31 and book.is_valid


# A negative prevSeqId (other than -1) is a FrameError, not a gap: tests/test_book_holes.py.
@pytest.mark.parametrize("prev", [9, 11, 0, 15])
def test_any_prev_other_than_last_is_a_gap(mkframe, prev):
    books = Books()
    books.apply(mkframe(CH, INST, [("1", "1")], [], action="snapshot", prevSeqId=-1, seqId=10))
    with pytest.raises(SequenceError) as ei:
        books.apply(mkframe(CH, INST, [("2", "1")], [], action="update", prevSeqId=prev, seqId=20))
    assert ei.value.prev_seq_id == prev and ei.value.last_seq_id == 10


def test_replayed_update_is_a_gap(mkframe):
    """The same update twice (e.g. two connections merged naively) breaks the chain."""
    books = Books()
    books.apply(mkframe(CH, INST, [("1", "1")], [], action="snapshot", prevSeqId=-1, seqId=10))
    upd = mkframe(CH, INST, [("2", "1")], [], action="update", prevSeqId=10, seqId=15)
    books.apply(upd)
    with pytest.raises(SequenceError):
        books.apply(upd)


def test_update_before_any_snapshot_creates_no_book(mkframe):
    books = Books()
    with pytest.raises(MissingSnapshotError) as ei:
        books.apply(mkframe(CH, INST, [("1", "1")], [], action="update", prevSeqId=4, seqId=5))
    e = ei.value
    assert isinstance(e, FrameError) and (e.channel, e.inst_id, e.seq_id) == (CH, INST, 5)
    assert books.get(CH, INST) is None and (CH, INST) not in books and len(books) == 0


def test_update_for_a_registered_empty_book_raises_and_keeps_it_empty(mkframe):
    books = Books()
    book = books.book(CH, INST)
    assert book.status == "empty" and book.seq_id == -1 and len(books) == 1
    with pytest.raises(MissingSnapshotError):
        books.apply(mkframe(CH, INST, [("1", "1")], [], action="update", prevSeqId=4, seqId=5))
    assert book.status == "empty" and book.stats()["frames"] == 0 and book.bid_levels() == []
    assert (
        books.apply(mkframe(CH, INST, [("1", "1")], [], action="snapshot", prevSeqId=-1, seqId=6))
        is book
    )
    assert book.is_valid


def test_heartbeat_changes_nothing_but_counters_and_ts(mkframe, state):
    books = Books()
    books.apply(
        mkframe(
            CH,
            INST,
            [("100", "1")],
            [("101", "1")],
            action="snapshot",
            prevSeqId=-1,
            seqId=10,
            ts="1000",
        )
    )
    book = books.apply(
        mkframe(CH, INST, [("100", "2")], [], action="update", prevSeqId=10, seqId=15, ts="1001")
    )
    before = state(books)[(CH, INST)]
    book = books.apply(
        mkframe(CH, INST, [], [], action="update", prevSeqId=15, seqId=15, ts="1060")
    )
    after = state(books)[(CH, INST)]
    assert after["stats"]["heartbeats"] == before["stats"]["heartbeats"] + 1
    assert after["stats"]["frames"] == before["stats"]["frames"] + 1
    assert after["ts_ms"] == 1060 and after["top_changed"] is False
    for k in (
        "bid_levels",
        "ask_levels",
        "bids",
        "asks",
        "seq_id",
        "status",
        "crossed",
        "top",
        "px_decimals",
        "sz_decimals",
    ):
        assert after[k] == before[k], k
    # prev_seq_id reports the last frame's prevSeqId (15 here), which equals the unchanged seqId.
    assert after["prev_seq_id"] == 15 and after["seq_id"] == 15
    # The chain continues from the unchanged seqId.
    books.apply(mkframe(CH, INST, [], [("101", "0")], action="update", prevSeqId=15, seqId=16))
    assert book.ask_levels() == []


def test_seq_ids_are_int64(mkframe):
    books = Books()
    a = 340_123_456_789
    book = books.apply(
        mkframe(
            "books-l2-tbt",
            "BTC-USDT-SWAP",
            [("1", "1")],
            [],
            action="snapshot",
            prevSeqId=-1,
            seqId=a,
        )
    )
    assert book.seq_id == a
    book = books.apply(
        mkframe(
            "books-l2-tbt",
            "BTC-USDT-SWAP",
            [("2", "1")],
            [],
            action="update",
            prevSeqId=a,
            seqId=a + 93,
        )
    )
    assert (book.seq_id, book.prev_seq_id) == (a + 93, a)
    with pytest.raises(SequenceError) as ei:
        books.apply(
            mkframe(
                "books-l2-tbt",
                "BTC-USDT-SWAP",
                [],
                [],
                action="update",
                prevSeqId=a + 94,
                seqId=a + 100,
            )
        )
    assert (ei.value.prev_seq_id, ei.value.last_seq_id) == (a + 94, a + 93)
    # The int64 range end to end; one past it is a FrameError.
    top = 2**63 - 1
    book = books.apply(
        mkframe(CH, INST, [("1", "1")], [], action="snapshot", prevSeqId=-1, seqId=top - 1)
    )
    book = books.apply(mkframe(CH, INST, [], [], action="update", prevSeqId=top - 1, seqId=top))
    assert book.seq_id == top
    with pytest.raises(FrameError, match="int64"):
        books.apply(mkframe(CH, INST, [], [], action="update", prevSeqId=top, seqId=2**63))
    assert book.seq_id == top and book.is_valid


def test_frames_without_seqid_apply_without_chain_checks(mkframe):
    """2022-era captures: no seqId/prevSeqId anywhere."""
    books = Books()
    book = books.apply(mkframe(CH, INST, [("100", "1")], [("101", "1")], action="snapshot"))
    assert book.seq_id == -1 and book.prev_seq_id == -1 and book.is_valid
    for i in range(3):
        book = books.apply(mkframe(CH, INST, [(str(99 - i), "1")], [], action="update"))
    assert book.is_valid and book.seq_id == -1 and book.n_bids == 4
    assert book.stats()["seq_gaps"] == 0 and book.stats()["updates"] == 3


def test_snapshot_after_seqid_book_without_seqid_clears_seqid(mkframe):
    books = Books()
    books.apply(mkframe(CH, INST, [("1", "1")], [], action="snapshot", prevSeqId=-1, seqId=10))
    book = books.apply(mkframe(CH, INST, [("2", "1")], [], action="snapshot"))
    assert book.seq_id == -1 and book.bid_levels() == [("2", "1", 1)]


def test_new_snapshot_resets_the_chain(mkframe):
    books = Books()
    books.apply(
        mkframe(CH, INST, [("1", "1")], [("5", "1")], action="snapshot", prevSeqId=-1, seqId=10)
    )
    book = books.apply(
        mkframe(CH, INST, [("2", "1")], [], action="snapshot", prevSeqId=-1, seqId=3)
    )
    assert book.seq_id == 3 and levels(book) == ([("2", "1")], [])
    assert book.stats()["snapshots"] == 2 and book.stats()["seq_gaps"] == 0
    book = books.apply(mkframe(CH, INST, [("2", "0")], [], action="update", prevSeqId=3, seqId=4))
    assert levels(book) == ([], [])


def test_prev_seq_id_minus_one_resets_even_if_labelled_update(mkframe):
    books = Books()
    books.apply(
        mkframe(CH, INST, [("1", "1")], [("5", "1")], action="snapshot", prevSeqId=-1, seqId=10)
    )
    book = books.apply(mkframe(CH, INST, [("2", "1")], [], action="update", prevSeqId=-1, seqId=50))
    assert levels(book) == ([("2", "1")], []) and book.seq_id == 50 and book.is_valid


@pytest.mark.parametrize("channel,depth", [("books5", 5), ("bbo-tbt", 1)])
def test_image_channels_replace_the_book_on_every_push(mkframe, channel, depth):
    books = Books()
    bids1 = [(str(100 - i), str(i + 1)) for i in range(depth)]
    asks1 = [(str(101 + i), str(i + 1)) for i in range(depth)]
    book = books.apply(mkframe(channel, INST, bids1, asks1, seqId=1000))
    assert book.is_image and book.depth == depth
    assert levels(book) == (bids1, asks1) and book.seq_id == 1000
    # Second push: different prices; nothing of the first push may survive.
    bids2 = [(str(90 - i), "7") for i in range(depth)]
    asks2 = [(str(95 + i), "8") for i in range(depth)]
    book = books.apply(mkframe(channel, INST, bids2, asks2, seqId=1007))
    assert levels(book) == (bids2, asks2) and book.seq_id == 1007
    # A push with one side empty empties that side.
    book = books.apply(mkframe(channel, INST, [], asks2[:1], seqId=1010))
    assert levels(book) == ([], asks2[:1])
    # Re-sent identical image (the ~60 s keep-alive of image channels): same book, no seq check.
    book = books.apply(mkframe(channel, INST, [], asks2[:1], seqId=1010))
    assert levels(book) == ([], asks2[:1]) and book.top_changed is False
    s = book.stats()
    assert s["snapshots"] == 4 and s["updates"] == 0 and s["seq_gaps"] == 0


def test_image_channel_keeps_only_its_depth(mkframe):
    books = Books()
    bids = [(str(100 - i), "1") for i in range(8)]
    asks = [(str(101 + i), "1") for i in range(8)]
    book = books.apply(mkframe("books5", INST, bids, asks, seqId=1))
    assert levels(book) == (bids[:5], asks[:5]) and book.n_bids == 5 and len(book.bids()) == 5
    book = books.apply(mkframe("bbo-tbt", INST, bids, asks, seqId=1))
    assert levels(book) == (bids[:1], asks[:1])


def test_image_channel_rejects_update_action(mkframe):
    books = Books()
    books.apply(mkframe("books5", INST, [("1", "1")], [], seqId=1))
    with pytest.raises(FrameError, match="image"):
        books.apply(mkframe("books5", INST, [("2", "1")], [], action="update", seqId=2))
    assert books["books5", INST].bid_levels() == [("1", "1", 1)]


def test_delta_channel_push_without_action_is_rejected(mkframe):
    books = Books()
    with pytest.raises(FrameError, match="action"):
        books.apply(mkframe(CH, INST, [("1", "1")], [], prevSeqId=-1, seqId=1))
    book = books.get(CH, INST)  # (that the rejected frame leaves no book is in test_book_bad_input)
    assert book is None or (book.status == "empty" and book.bid_levels() == [])


def test_public_invalidate_waits_for_snapshot(mkframe):
    books = Books()
    book = books.apply(
        mkframe(CH, INST, [("1", "1")], [], action="snapshot", prevSeqId=-1, seqId=1)
    )
    book.invalidate("disconnected")
    assert (
        book.status == "invalid"
        and book.invalid_reason == "disconnected"
        and book.bid_levels() == []
    )
    books.apply(mkframe(CH, INST, [("2", "1")], [], action="update", prevSeqId=1, seqId=2))
    assert book.bid_levels() == [] and book.stats()["dropped_while_invalid"] == 1
    books.apply(mkframe(CH, INST, [("3", "1")], [], action="snapshot", prevSeqId=-1, seqId=9))
    assert book.is_valid and book.bid_levels() == [("3", "1", 1)]


def test_unknown_channel_book_cannot_be_registered():
    with pytest.raises(UnknownChannelError):
        Books().book("trades", INST)


def _multi(items, action="update"):
    import json

    return json.dumps(
        {"arg": {"channel": CH, "instId": INST}, "action": action, "data": items}
    ).encode()


def test_frame_with_several_items_applies_them_in_order(mkframe):
    books = Books()
    books.apply(
        mkframe(CH, INST, [("100", "1")], [("101", "1")], action="snapshot", prevSeqId=-1, seqId=10)
    )
    book = books.apply(
        _multi(
            [
                {
                    "asks": [],
                    "bids": [["99", "2", "0", "1"]],
                    "prevSeqId": 10,
                    "seqId": 11,
                    "ts": "5",
                },
                {
                    "asks": [["101", "0", "0", "0"]],
                    "bids": [["99", "3", "0", "1"]],
                    "prevSeqId": 11,
                    "seqId": 12,
                    "ts": "6",
                },
            ]
        )
    )
    assert (
        levels(book) == ([("100", "1"), ("99", "3")], []) and book.seq_id == 12 and book.ts_ms == 6
    )
    assert book.stats()["updates"] == 2
    # The second item breaks the chain: the first was applied, then the book goes invalid.
    with pytest.raises(SequenceError) as ei:
        books.apply(
            _multi(
                [
                    {"asks": [], "bids": [["98", "1", "0", "1"]], "prevSeqId": 12, "seqId": 13},
                    {"asks": [], "bids": [["97", "1", "0", "1"]], "prevSeqId": 14, "seqId": 15},
                ]
            )
        )
    assert (ei.value.prev_seq_id, ei.value.last_seq_id, ei.value.seq_id) == (14, 13, 15)
    assert book.status == "invalid" and levels(book) == ([], [])


def test_zero_size_levels_in_a_snapshot_are_not_kept(mkframe):
    books = Books()
    book = books.apply(
        mkframe(
            CH,
            INST,
            [("100", "1"), ("99.5", "0"), ("99", "2")],
            [("101", "0.000"), ("102", "1")],
            action="snapshot",
            prevSeqId=-1,
            seqId=1,
        )
    )
    assert levels(book) == ([("100", "1"), ("99", "2")], [("102", "1")])
    assert book.stats()["missing_deletes"] == 0
