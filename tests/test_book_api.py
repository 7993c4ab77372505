"""The public Book/Books API: crossed books, top_changed, depth arrays, books-rpi, event frames, input
types, instrument decimals, the Books container."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

import okxbook
from okxbook import (
    DEPTH_DTYPE,
    NO_ASK,
    NO_BID,
    Books,
    ChannelConnCount,
    ErrorEvent,
    LoginAck,
    MissingSnapshotError,
    Notice,
    OtherEvent,
    SubscribeAck,
    UnsubscribeAck,
)

CH, INST = "books", "BTC-USDT"


def snap(mkframe, bids, asks, seq=1, channel=CH, inst=INST):
    return mkframe(channel, inst, bids, asks, action="snapshot", prevSeqId=-1, seqId=seq)


def upd(mkframe, bids, asks, prev, seq, channel=CH, inst=INST):
    return mkframe(channel, inst, bids, asks, action="update", prevSeqId=prev, seqId=seq)


# ------------------------------------------------------------------ crossed


def test_crossed_book_is_legitimate_and_flagged(mkframe):
    books = Books()
    book = books.apply(snap(mkframe, [("101", "1"), ("99", "1")], [("100", "2"), ("102", "1")]))
    assert book.is_valid and book.crossed is True
    assert book.spread == -1.0 and book.mid == 100.5
    assert book.best_bid_ticks > book.best_ask_ticks
    # Touching (bid == ask) counts as crossed.
    book = books.apply(upd(mkframe, [("101", "0"), ("100", "1")], [], 1, 2))
    assert book.crossed is True and book.spread == 0.0
    # Uncrossed.
    book = books.apply(upd(mkframe, [("100", "0")], [], 2, 3))
    assert book.crossed is False and book.spread == 1.0 and book.is_valid
    # One empty side is never crossed.
    book = books.apply(upd(mkframe, [("99", "0")], [], 3, 4))
    assert book.crossed is False and math.isnan(book.spread) and math.isnan(book.mid)


def test_crossed_image_push(mkframe):
    book = Books().apply(mkframe("bbo-tbt", INST, [("64000.1", "1")], [("64000", "1")], seqId=9))
    assert book.crossed is True and book.is_valid


# ------------------------------------------------------------------ top_changed


def test_top_changed_follows_the_best_levels(mkframe):
    books = Books()
    book = books.apply(
        snap(mkframe, [("100", "1"), ("99", "1")], [("101", "1"), ("102", "1")], seq=10)
    )
    assert book.top_changed is True  # empty -> something
    steps = [
        (([("98", "5")], []), False),  # new deep bid
        (([], [("102", "7")]), False),  # deep ask size
        (([("99", "0")], []), False),  # delete a deep bid
        (([("100", "2")], []), True),  # best bid size
        (([], [("100.5", "1")]), True),  # better ask
        (([("100", "0")], []), True),  # best bid deleted
        (([("97", "0")], []), False),  # delete of a missing price
        (([], []), False),  # empty update
        (([("98.0", "5")], []), False),  # same value, new string, rescale
        (([("98", "5")], [("100.50", "1")]), False),  # same values re-sent
    ]
    seq = 10
    for (bids, asks), changed in steps:
        book = books.apply(upd(mkframe, bids, asks, seq, seq + 1))
        seq += 1
        assert book.top_changed is changed, (bids, asks)
    book = books.apply(upd(mkframe, [], [], seq, seq))  # heartbeat
    assert book.top_changed is False


@pytest.mark.parametrize(
    "frames",
    [
        # bbo-tbt: sizes 0.5/0.7 then 5/7; each push learns its own scale, so the lots are 5/7 both times
        [
            ("bbo-tbt", [("100", "0.5")], [("101", "0.7")]),
            ("bbo-tbt", [("100", "5")], [("101", "7")]),
        ],
        # books: a new snapshot whose best bid 100.5 has the integer value the old best 10.05 had
        [
            ("books", [("10.05", "1")], [("20.01", "1")]),
            ("books", [("100.5", "1")], [("200.1", "1")]),
        ],
    ],
    ids=["bbo-tbt-sizes", "books-snapshot-prices"],
)
def test_top_changed_when_a_snapshot_changes_the_decimal_scale(mkframe, frames):
    books = Books()
    for i, (channel, bids, asks) in enumerate(frames):
        action = "snapshot" if channel == "books" else None
        book = books.apply(
            mkframe(channel, INST, bids, asks, action=action, prevSeqId=-1, seqId=i + 1)
        )
    assert (book.best_bid_px, book.best_ask_px) != (10.05, 20.01)
    assert book.top_changed is True


# ------------------------------------------------------------------ depth arrays


def test_bids_and_asks_arrays(mkframe):
    books = Books()
    bids = [("100.5", "1.25", "0", "3"), ("100", "2", "0", "1"), ("99.75", "0.5", "0", "7")]
    asks = [("101", "3", "0", "2"), ("101.25", "0.125", "0", "1")]
    book = books.apply(snap(mkframe, bids, asks))
    assert DEPTH_DTYPE.names == (
        "px",
        "sz",
        "cum_sz",
        "px_ticks",
        "sz_lots",
        "orders",
        "extra_lots",
    )
    assert [DEPTH_DTYPE[n] for n in DEPTH_DTYPE.names] == [np.dtype("f8")] * 3 + [
        np.dtype("i8")
    ] * 4
    assert (book.px_decimals, book.sz_decimals) == (2, 3)
    b = book.bids()
    assert b.dtype == DEPTH_DTYPE and b.shape == (3,)
    assert b["px"].tolist() == [100.5, 100.0, 99.75]
    assert b["sz"].tolist() == [1.25, 2.0, 0.5]
    assert b["cum_sz"].tolist() == [1.25, 3.25, 3.75]
    assert b["px_ticks"].tolist() == [10050, 10000, 9975]
    assert b["sz_lots"].tolist() == [1250, 2000, 500]
    assert b["orders"].tolist() == [3, 1, 7]
    a = book.asks()
    assert a["px"].tolist() == [101.0, 101.25] and a["cum_sz"].tolist() == [3.0, 3.125]
    assert a["px_ticks"].tolist() == [10100, 10125] and a["sz_lots"].tolist() == [3000, 125]
    assert book.bids(2)["px"].tolist() == [100.5, 100.0] and len(book.asks(0)) == 0
    assert len(book.bids(10)) == 3
    with pytest.raises(ValueError):
        book.bids(-1)
    assert book.bid_levels(2) == [("100.5", "1.25", 3), ("100", "2", 1)]
    assert book.ask_levels() == [("101", "3", 2), ("101.25", "0.125", 1)]
    assert book.best_bid == ("100.5", "1.25") and book.best_ask == ("101", "3")
    assert book.top() == (100.5, 1.25, 101.0, 3.0)
    assert (book.best_bid_ticks, book.best_ask_ticks) == (10050, 10100)
    # The arrays are the caller's: they do not move with the book.
    books.apply(upd(mkframe, [("100.5", "0")], [], 1, 2))
    assert b["px"].tolist() == [100.5, 100.0, 99.75]
    assert book.bids()["px"].tolist() == [100.0, 99.75]


def test_empty_and_invalid_books_answer_empty(mkframe):
    books = Books()
    book = books.book(CH, INST)
    for bk in (book,):
        assert bk.bids().dtype == DEPTH_DTYPE and len(bk.bids()) == 0 and len(bk.asks()) == 0
        assert bk.best_bid is None and bk.best_ask is None
        assert all(math.isnan(x) for x in bk.top())
        assert (bk.best_bid_ticks, bk.best_ask_ticks) == (NO_BID, NO_ASK)
        assert (bk.n_bids, bk.n_asks) == (0, 0) and bk.status == "empty" and not bk.is_valid
    assert NO_BID == -(2**63) and NO_ASK == 2**63 - 1
    books.apply(snap(mkframe, [("1", "1")], [("2", "1")]))
    book.invalidate("test")
    assert len(book.bids()) == 0 and math.isnan(book.best_ask_px) and book.best_ask_ticks == NO_ASK


def test_rescale_keeps_exact_values(mkframe):
    """A frame with more decimals rescales the book; earlier levels keep their exact value and text."""
    books = Books()
    book = books.apply(snap(mkframe, [("100", "1")], [("101", "2")]))
    assert (book.px_decimals, book.sz_decimals) == (0, 0) and book.best_bid_ticks == 100
    book = books.apply(upd(mkframe, [("99.123456", "0.00000001")], [], 1, 2))
    assert (book.px_decimals, book.sz_decimals) == (6, 8)
    assert book.bids()["px_ticks"].tolist() == [100_000_000, 99_123_456]
    assert book.bids()["sz_lots"].tolist() == [100_000_000, 1]
    assert book.bid_levels() == [("100", "1", 1), ("99.123456", "0.00000001", 1)]
    assert book.ask_levels() == [("101", "2", 1)] and book.best_ask_ticks == 101_000_000


# ------------------------------------------------------------------ books-rpi


def test_books_rpi_third_field_is_kept_as_a_size(mkframe):
    """books-rpi levels are [px, totalQty, nonRpiQty, count]: nonRpiQty is kept, at the sizes'
    decimal scale, as ``extra_lots`` of the depth arrays."""
    books = Books()
    book = books.apply(
        mkframe(
            "books-rpi",
            "OMI-USD",
            [("0.0001469", "13417297", "1000.1234", "2")],
            [("0.0001617", "12325166", "1000", "2")],
            action="snapshot",
            prevSeqId=-1,
            seqId=1082831226,
        )
    )
    assert book.is_valid and book.depth == 400 and not book.is_image
    assert book.sz_decimals == 4
    assert book.bids()["sz_lots"].tolist() == [134172970000]
    assert book.bid_levels() == [("0.0001469", "13417297", 2)]
    assert book.bids()["orders"].tolist() == [2]
    assert book.bids()["extra_lots"].tolist() == [10001234]  # "1000.1234" at 4 decimals
    assert book.asks()["extra_lots"].tolist() == [10000000]  # "1000"
    book = books.apply(
        mkframe(
            "books-rpi",
            "OMI-USD",
            [],
            [("0.0001617", "0", "0", "0"), ("0.0001625", "12324367.786", "1000", "2")],
            action="update",
            prevSeqId=1082831226,
            seqId=1082831230,
        )
    )
    assert book.ask_levels() == [("0.0001625", "12324367.786", 2)] and book.seq_id == 1082831230
    assert book.asks()["extra_lots"].tolist() == [10000000]


# ------------------------------------------------------------------ events

EVENTS = [
    (
        b'{"id":"b1","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}',
        SubscribeAck(conn_id="a4d3ae55", channel="books", inst_id="BTC-USDT", id="b1"),
    ),
    (
        b'{"event":"subscribe","arg":{"channel":"bbo-tbt","instId":"ETH-USDT"}}',
        SubscribeAck(conn_id=None, channel="bbo-tbt", inst_id="ETH-USDT", id=None),
    ),
    (
        b'{"id":"u7","event":"unsubscribe","arg":{"channel":"books5","instId":"BTC-USDT"},"connId":"c1"}',
        UnsubscribeAck(conn_id="c1", channel="books5", inst_id="BTC-USDT", id="u7"),
    ),
    (
        b'{"id":"b1","event":"error","code":"60012","msg":"Invalid request: {\\"op\\": \\"subscribe\\"}","connId":"a4d3ae55"}',
        ErrorEvent(
            conn_id="a4d3ae55", code="60012", msg='Invalid request: {"op": "subscribe"}', id="b1"
        ),
    ),
    (
        b'{"event":"error","code":"64003","msg":"Your trading fee tier doesn\'t meet the requirement","connId":"x"}',
        ErrorEvent(
            conn_id="x", code="64003", msg="Your trading fee tier doesn't meet the requirement"
        ),
    ),
    (
        b'{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a4d3ae55"}',
        Notice(
            conn_id="a4d3ae55",
            code="64008",
            msg="The connection will soon be closed for a service upgrade. Please reconnect.",
        ),
    ),
    (
        b'{"event":"login","code":"0","msg":"","connId":"a4d3ae55"}',
        LoginAck(conn_id="a4d3ae55", code="0", msg=""),
    ),
    (
        b'{"event":"channel-conn-count","channel":"orders","connCount":"2","connId":"abcd1234"}',
        ChannelConnCount(conn_id="abcd1234", channel="orders", conn_count=2, is_error=False),
    ),
    (
        b'{"event":"channel-conn-count-error","channel":"orders","connCount":"30","connId":"abcd1234"}',
        ChannelConnCount(conn_id="abcd1234", channel="orders", conn_count=30, is_error=True),
    ),
]


@pytest.mark.parametrize("frame,expected", EVENTS, ids=[e[1].__class__.__name__ for e in EVENTS])
def test_event_frames_come_back_as_events(frame, expected, mkframe, state):
    books = Books()
    books.apply(snap(mkframe, [("1", "1")], [("2", "1")]))
    before = state(books)
    for form in (frame, frame.decode(), bytearray(frame), memoryview(frame)):
        out = books.apply(form)
        assert out == expected and type(out) is type(expected)
        assert isinstance(out, okxbook.Event)
    assert books.events == 4 and state(books) == before


def test_unknown_event_and_pong(state):
    books = Books()
    out = books.apply(b'{"event":"something-new","x":1,"connId":"q"}')
    assert isinstance(out, OtherEvent) and out.event == "something-new"
    assert out.raw == {"event": "something-new", "x": 1, "connId": "q"} and out.conn_id == "q"
    for form in (b"pong", "pong", bytearray(b"pong"), memoryview(b"pong"), b"pong\n"):
        assert books.apply(form) is okxbook.PONG
    assert len(books) == 0


# ------------------------------------------------------------------ input types


def test_str_bytearray_and_memoryview_behave_like_bytes(mkframe, state):
    frames = [
        snap(mkframe, [("100.5", "1"), ("100", "2")], [("101", "1")], seq=5),
        upd(mkframe, [("100.5", "0"), ("99", "3")], [("101.5", "2")], 5, 9),
        mkframe("books5", "ETH-USDT", [("3000", "1")], [("3001", "2")], seqId=77),
        upd(mkframe, [], [], 9, 9),
        b'{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}}',
    ]
    results = {}
    for name, conv in [
        ("bytes", bytes),
        ("str", bytes.decode),
        ("bytearray", bytearray),
        ("memoryview", memoryview),
        ("memoryview-slice", lambda f: memoryview(b"xx" + f + b"yy")[2:-2]),
    ]:
        books = Books()
        outs = [books.apply(conv(f)) for f in frames]
        assert [type(o).__name__ for o in outs] == ["Book", "Book", "Book", "Book", "SubscribeAck"]
        results[name] = state(books)
    for name, st_ in results.items():
        assert st_ == results["bytes"], name
    assert results["bytes"][(CH, INST)]["bid_levels"] == [("100", "2", 1), ("99", "3", 1)]


def test_str_with_non_ascii_text(mkframe):
    books = Books()
    out = books.apply('{"event":"error","code":"60012","msg":"Ungültige Anfrage"}')
    assert isinstance(out, ErrorEvent) and out.msg == "Ungültige Anfrage"
    text = snap(mkframe, [("1", "1")], [], inst="XBC-USDT").decode().replace("XBC", "ÄBC")
    book = books.apply(text)
    assert book.inst_id == "ÄBC-USDT" and books.get(CH, "ÄBC-USDT") is book
    assert books.apply(text.encode()) is book  # the same UTF-8 bytes
    # An escaped instId is refused rather than decoded (values are read verbatim).
    with pytest.raises(okxbook.FrameError, match="instId"):
        books.apply(snap(mkframe, [("1", "1")], [], inst="ÄBC-USDT"))


# ------------------------------------------------------------------ instrument decimals


def test_set_instrument_sets_the_starting_decimals(mkframe):
    books = Books()
    books.set_instrument(INST, "0.1", "0.00000001")
    books.set_instrument("ETH-USDT-SWAP", "0.01", "1")
    book = books.apply(snap(mkframe, [("64000", "2")], [("64001", "1")]))
    assert (book.px_decimals, book.sz_decimals) == (1, 8)
    assert book.best_bid_ticks == 640000 and book.bids()["sz_lots"].tolist() == [200_000_000]
    assert book.best_bid == ("64000", "2")  # text as received
    # More decimals than tickSz still rescale up ...
    book = books.apply(upd(mkframe, [("63999.95", "1")], [], 1, 2))
    assert book.px_decimals == 2 and book.bids()["px_ticks"].tolist() == [6400000, 6399995]
    # ... and a new snapshot never goes below the instrument's decimals.
    book = books.apply(snap(mkframe, [("64000", "2")], [], seq=10))
    assert (book.px_decimals, book.sz_decimals) == (1, 8)
    # Books registered after set_instrument get it too; other instruments learn from the strings.
    eth = books.book("books5", "ETH-USDT-SWAP")
    assert (eth.px_decimals, eth.sz_decimals) == (2, 0)
    other = books.apply(snap(mkframe, [("5", "1")], [], inst="SOL-USDT"))
    assert (other.px_decimals, other.sz_decimals) == (0, 0)


@pytest.mark.parametrize(
    "tick,dec",
    [("1", 0), ("0.1", 1), ("0.01", 2), ("0.0001", 4), ("0.5", 1), ("0.00000001", 8), ("10", 0)],
)
def test_tick_size_decimals(mkframe, tick, dec):
    books = Books()
    books.set_instrument(INST, tick, "1")
    book = books.apply(snap(mkframe, [("100", "1")], []))
    assert book.px_decimals == dec
    assert book.best_bid_ticks == int(Decimal("100").scaleb(dec))


# ------------------------------------------------------------------ the Books container


def test_books_container(mkframe):
    books = Books()
    a = books.apply(snap(mkframe, [("1", "1")], [], inst="A"))
    b = books.apply(snap(mkframe, [("2", "1")], [], inst="B"))
    c = books.apply(mkframe("books5", "A", [("3", "1")], [], seqId=1))
    assert len(books) == 3 and set(books) == {a, b, c}
    assert books.get(CH, "A") is a and books[CH, "B"] is b and books["books5", "A"] is c
    assert (CH, "A") in books and ("books5", "B") not in books and books.get("books5", "B") is None
    with pytest.raises(KeyError):
        books["books5", "B"]
    assert books.apply(upd(mkframe, [("1", "2")], [], 1, 2, inst="A")) is a
    assert books.book(CH, "A") is a
    new = books.book("bbo-tbt", "A")
    assert new.status == "empty" and len(books) == 4 and books.get("bbo-tbt", "A") is new
    books.remove(CH, "A")
    assert books.get(CH, "A") is None and len(books) == 3
    with pytest.raises(MissingSnapshotError):  # forgotten: needs a snapshot again
        books.apply(upd(mkframe, [("1", "3")], [], 2, 3, inst="A"))
    fresh = books.apply(snap(mkframe, [("9", "1")], [], inst="A"))
    assert fresh is not a and fresh.bid_levels() == [("9", "1", 1)]
    assert a.bid_levels() == [("1", "2", 1)]  # the old object is left as it was
    books.remove("books", "never-there")  # no error
    assert {k: v for k, v in okxbook.CHANNELS.items()} == {
        "books": (400, False),
        "books-l2-tbt": (400, False),
        "books50-l2-tbt": (50, False),
        "books-rpi": (400, False),
        "books-elp": (400, False),
        "books5": (5, True),
        "bbo-tbt": (1, True),
    }
    for ch, (depth, image) in okxbook.CHANNELS.items():
        bk = books.book(ch, "Z")
        assert (bk.channel, bk.inst_id, bk.depth, bk.is_image) == (ch, "Z", depth, image)


def test_every_public_error_has_one_base_and_keeps_its_builtin_kind():
    """Issue 8: one base for every okxbook error, each also the built-in kind callers catch."""
    import okxbook
    from okxbook.capture import CaptureFormatError as FromCapture
    from okxbook.capture.recorder import RecorderError as FromRecorder
    from okxbook.feed import SubscriptionError as FromFeed
    from okxbook.feed.rest import RestError as FromRest
    from okxbook.feed.transport import TransportError as FromTransport

    kinds = {
        okxbook.FrameError: ValueError,
        okxbook.ChecksumError: Exception,
        okxbook.SequenceError: Exception,
        okxbook.SubscriptionError: Exception,
        okxbook.RestError: Exception,
        okxbook.TransportError: ConnectionError,
        okxbook.CaptureFormatError: ValueError,
        okxbook.RecorderError: OSError,
    }
    for error, builtin in kinds.items():
        assert issubclass(error, okxbook.OkxbookError) and issubclass(error, builtin), error
    # The old homes name the same classes.
    assert FromCapture is okxbook.CaptureFormatError and FromRecorder is okxbook.RecorderError
    assert FromFeed is okxbook.SubscriptionError and FromRest is okxbook.RestError
    assert FromTransport is okxbook.TransportError
    assert str(okxbook.CaptureFormatError("a.gz", 3, "cut")) == "a.gz:3: cut"


def test_interleaved_books_each_get_their_own_frames():
    """Frames of 150 books interleaved at random reach the right book: the book cache in
    ``Books._find`` (64 entries) sees collisions, names alike in their first or last 8 bytes, short
    names and several channels per instrument; a removed book is not found again."""
    import random

    from okxbook.testing import SyntheticBook

    names = [f"AAAAAAAA-{i}" for i in range(20)] + [f"{i}-USDT-SWAP-ZZZZZZZZ" for i in range(20)]
    names += ["A", "B-C", "BTC-USDT", "BTC-USDT-SWAP", "BTC-USD-SWAP", "ETH-USDT-261225"]
    names += [f"X{i}" for i in range(9)]
    keys = [(ch, inst) for inst in names for ch in ("books", "books5", "bbo-tbt")][:150]
    rng = random.Random(7)
    sources = {k: SyntheticBook(k[1], k[0], seed=f"cache/{k}", depth=20) for k in keys}
    shared, alone = Books(), {k: Books() for k in keys}
    for k, src in sources.items():
        frame = src.snapshot_frame()
        assert shared.apply(frame) is shared.get(*k)
        alone[k].apply(frame)
    removed = set(rng.sample(keys, 12))
    old = {k: shared.get(*k) for k in removed}
    for step in range(6_000):
        if step == 3_000:
            for k in removed:
                shared.remove(*k)
        k = rng.choice(keys)
        frame = sources[k].next_update_frame()
        alone[k].apply(frame)
        if step >= 3_000 and k in removed and k[0] == "books":
            with pytest.raises(MissingSnapshotError):  # forgotten, not found in the cache
                shared.apply(frame)
            continue
        book = shared.apply(frame)
        assert (book.channel, book.inst_id) == k
        if step >= 3_000 and k in removed:  # an image push makes a new book
            assert book is not old[k] and book is shared.get(*k)
    for k in keys:
        got = shared.get(*k)
        if got is None:
            continue
        want = alone[k].get(*k)
        assert got.bid_levels() == want.bid_levels() and got.ask_levels() == want.ask_levels(), k
        assert got.seq_id == want.seq_id
