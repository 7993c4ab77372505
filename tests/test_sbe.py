"""The SBE decoder through ``Books.apply``: every template, the schema's length rules (root and
entry blockLength honoured, trailing padding), exact values from mantissa and exponent, the book
rules shared with JSON (seq chain, heartbeat, reset, gap), and typed refusals that change nothing.
Frames come from okxbook.testing.sbe, the independent pure-Python encoder."""

from __future__ import annotations

import struct

import pytest

import okxbook
from okxbook import _sbe, okx
from okxbook.testing.sbe import (
    bbo_message,
    exponent_message,
    l2_message,
    snapshot_message,
    trade_message,
    truncate,
)

BTC = 7001
ASKS = [(431005, 150000000, 3), (431010, 1, 1)]
BIDS = [(431000, 2500000, 2), (430990, 40000000000, 12)]


@pytest.fixture
def books() -> okxbook.Books:
    b = okxbook.Books()
    b.set_inst_id_code(BTC, "BTC-USDT")
    return b


def seeded(books: okxbook.Books, seq: int = 100) -> okxbook.Book:
    book = books.apply(snapshot_message(BTC, seq, -1, -8, ASKS, BIDS, ts_us=1_700_000_000_123_456))
    assert isinstance(book, okxbook.Book)
    return book


def test_rest_snapshot_gives_exact_values_strings_and_clock(books):
    book = seeded(books)
    assert (book.channel, book.inst_id, book.status, book.seq_id) == (
        "books-l2-tbt",
        "BTC-USDT",
        "live",
        100,
    )
    assert book.ask_levels() == [("43100.5", "1.5", 3), ("43101", "0.00000001", 1)]
    assert book.bid_levels() == [("43100", "0.025", 2), ("43099", "400", 12)]
    assert (book.px_decimals, book.sz_decimals) == (1, 8)
    assert book.best_bid_ticks == 431000 and book.bids()["sz_lots"].tolist() == [
        2500000,
        40000000000,
    ]
    assert book.ts_ms == 1_700_000_000_123
    assert books.last_ts_us == 1_700_000_000_123_456 and books.last_out_us == 0


def test_update_heartbeat_reset_and_gap_follow_the_json_rules(books):
    book = seeded(books)
    frame = l2_message(BTC, 130, 100, -1, -8, [(431005, 0, 0)], [(431002, 7, 1)], ts_us=5, out_us=9)
    assert books.apply(frame) is book
    assert book.best_ask == ("43101", "0.00000001") and book.best_bid == ("43100.2", "0.00000007")
    assert (books.last_ts_us, books.last_out_us) == (5, 9)
    books.apply(l2_message(BTC, 130, 130, -1, -8))
    assert book.stats()["heartbeats"] == 1 and book.seq_id == 130
    books.apply(l2_message(BTC, 3, 130, -1, -8, [], [(431001, 1, 1)]))
    assert book.stats()["seq_resets"] == 1 and book.seq_id == 3
    with pytest.raises(okxbook.SequenceError) as err:
        books.apply(l2_message(BTC, 9, 5, -1, -8, [], [(431001, 2, 1)]))
    assert (err.value.prev_seq_id, err.value.last_seq_id) == (5, 3)
    assert book.status == "invalid" and book.n_bids == 0
    # it waits for the next REST snapshot, then is live again
    books.apply(l2_message(BTC, 10, 9, -1, -8, [], [(431001, 2, 1)]))
    assert book.stats()["dropped_while_invalid"] == 1
    seeded(books, 50)
    assert book.status == "live" and book.seq_id == 50


def test_update_before_any_snapshot_is_refused_and_registers_no_book(books):
    with pytest.raises(okxbook.MissingSnapshotError):
        books.apply(l2_message(BTC, 2, 1, -1, -8, [], [(1, 1, 1)]))
    assert len(books) == 0


def test_exponent_update_rescales_exactly_in_both_directions(books):
    book = seeded(books)
    before = [(float(p), float(s)) for p, s, _ in book.bid_levels()]
    # 1002: two more price decimals; the chain goes on through it
    books.apply(exponent_message(BTC, 101, 100, -3, -8))
    assert book.px_decimals == 3 and book.best_bid_ticks == 43100000 and book.seq_id == 101
    assert [(float(p), float(s)) for p, s, _ in book.bid_levels()] == before
    books.apply(l2_message(BTC, 102, 101, -3, -8, [], [(43100001, 1, 1)]))
    assert book.best_bid == ("43100.001", "0.00000001")
    # back to one decimal: mantissas at -1 land on the book's finer scale exactly
    books.apply(exponent_message(BTC, 103, 102, -1, -8))
    books.apply(l2_message(BTC, 104, 103, -1, -8, [], [(431001, 3, 1), (431000, 0, 0)]))
    assert book.px_decimals == 3
    assert book.bids()["px_ticks"].tolist() == [43100100, 43100001, 43099000]
    assert book.bid_levels()[0] == ("43100.1", "0.00000003", 1)
    # a positive exponent multiplies the mantissa
    books.apply(l2_message(BTC, 105, 104, 2, 1, [], [(431, 4, 1)]))
    assert ("43100", "40", 1) in book.bid_levels()


def test_exponent_that_overflows_the_book_is_rejected_whole(books):
    book = seeded(books)
    before = book.bids().tobytes()
    with pytest.raises(okxbook.FrameError):
        books.apply(l2_message(BTC, 101, 100, -18, -8, [], [(1, 1, 1)]))
    assert book.bids().tobytes() == before and book.seq_id == 100


def test_bbo_tbt_is_an_image_and_an_empty_side_is_size_zero(books):
    books.set_inst_id_code(42, "ETH-USDT")
    book = books.apply(bbo_message(42, 9, -2, -4, (228101, 15, 2), (228100, 30000, 7)))
    assert (book.channel, book.best_ask, book.best_bid) == (
        "bbo-tbt",
        ("2281.01", "0.0015"),
        ("2281", "3"),
    )
    books.apply(bbo_message(42, 10, -2, -4, None, (228099, 1, 1)))
    assert book.best_ask is None and book.best_bid == ("2280.99", "0.0001") and book.seq_id == 10


def test_lengths_are_honoured_forward_compatible_and_padded(books):
    layout = {"root_extra": 13, "entry_extra": 6, "pad": 31, "version": 1}
    book = books.apply(snapshot_message(BTC, 1, -1, -8, ASKS, BIDS, **layout))
    assert book.ask_levels() == [("43100.5", "1.5", 3), ("43101", "0.00000001", 1)]
    books.apply(l2_message(BTC, 2, 1, -1, -8, [], [(431003, 5, 4)], **layout))
    assert book.bid_levels()[0] == ("43100.3", "0.00000005", 4)
    books.apply(exponent_message(BTC, 3, 2, -2, -8, root_extra=3, pad=8))
    assert book.seq_id == 3 and book.px_decimals == 2


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\x2a\x00\xe9", "not a JSON object"),  # under 8 bytes: not taken for binary
        (struct.pack("<HHHH", 42, 1001, 2, 0) + bytes(42), "unknown SBE schemaId"),
        (struct.pack("<HHHH", 42, 1999, 1, 0) + bytes(42), "unknown SBE templateId"),
        (struct.pack("<HHHH", 41, 1001, 1, 0) + bytes(41), "blockLength shorter"),
        (truncate(l2_message(BTC, 2, 1, -1, -8), 40), "truncated SBE root block"),
        (truncate(l2_message(BTC, 2, 1, -1, -8), 52), "truncated group header"),
        (truncate(l2_message(BTC, 2, 1, -1, -8, [(1, 1, 1)]), 60), "truncated group"),
        (l2_message(BTC, 2, 1, -1, -8, [(1, -1, 1)]), "negative size"),
        (l2_message(BTC, 2, 1, -1, -8, [(1, 1, -1)]), "negative order count"),
        (l2_message(BTC, 2, 1, -19, -8), "exponent outside"),
        (l2_message(BTC, 2, -1, -1, -8), "negative prevSeqId"),
        (l2_message(BTC, -2, 1, -1, -8), "negative seqId"),
        (l2_message(BTC, 2, 1, 18, 0, [(10, 1, 1)]), "price does not fit int64"),
    ],
)
def test_malformed_frames_are_typed_errors_that_change_nothing(books, frame, reason):
    book = seeded(books, 1)
    before = (book.bids().tobytes(), book.asks().tobytes(), book.stats(), books.frames)
    with pytest.raises(okxbook.FrameError) as err:
        books.apply(frame)
    assert reason in err.value.reason
    assert (book.bids().tobytes(), book.asks().tobytes(), book.stats()) == before[:3]


def test_group_entry_shorter_than_a_level_is_refused(books):
    frame = bytearray(l2_message(BTC, 2, 1, -1, -8, [(1, 1, 1)]))
    struct.pack_into("<H", frame, 8 + 42, 19)
    with pytest.raises(okxbook.FrameError, match="shorter than a level"):
        books.apply(bytes(frame))


def test_unknown_instidcode_is_typed_and_a_relisted_code_maps_anew(books):
    with pytest.raises(okxbook.UnknownInstrumentError) as err:
        books.apply(snapshot_message(999, 1, -1, -8, ASKS, BIDS))
    assert err.value.code == 999 and len(books) == 0
    assert isinstance(err.value, okxbook.FrameError)
    books.set_inst_id_code(999, "BTC-USDT-SWAP")
    assert books.apply(snapshot_message(999, 1, -1, -8, ASKS, BIDS)).inst_id == "BTC-USDT-SWAP"
    books.forget_inst_id_code(999)
    assert books.inst_id_of(999) is None and books.inst_id_of(BTC) == "BTC-USDT"
    with pytest.raises(okxbook.UnknownInstrumentError):
        books.apply(l2_message(999, 2, 1, -1, -8))


def test_trades_and_elp_are_refused_as_channels_without_books(books):
    with pytest.raises(okxbook.UnknownChannelError) as err:
        books.apply(trade_message(BTC, 5, 431000, 1, 77, 1, -1, -8))
    assert err.value.channel == "trades" and err.value.inst_id == "BTC-USDT"
    elp = bytearray(l2_message(BTC, 2, 1, -1, -8))
    struct.pack_into("<H", elp, 2, okx.SbeTemplate.BOOKS_L2_TBT_ELP)
    with pytest.raises(okxbook.UnknownChannelError, match="books-l2-tbt-elp"):
        books.apply(bytes(elp))
    # an unknown code on a channel without books is still that refusal, not a lookup error
    with pytest.raises(okxbook.UnknownChannelError):
        books.apply(trade_message(123456, 5, 1, 1, 1, 0, -1, -8))


def test_json_and_sbe_share_one_books_and_any_bytes_buffer(books):
    seeded(books)
    frame = l2_message(BTC, 101, 100, -1, -8, [], [(431001, 1, 1)])
    assert books.apply(memoryview(bytearray(frame))).seq_id == 101
    books.apply(b"pong")
    assert books.apply(b'{"event":"subscribe","arg":{"channel":"bbo-tbt"}}') is not None
    assert _sbe.is_sbe_frame(frame) and not _sbe.is_sbe_frame(b'{"arg":{}}')


def test_peek_and_with_seq_id_for_the_feeders_cold_path():
    snap = snapshot_message(BTC, 100, -1, -8, ASKS, BIDS, ts_us=77)
    assert _sbe.peek(snap) == (1006, BTC, 100, -1, 77, 0)
    assert _sbe.peek(l2_message(BTC, 9, 8, -1, -8, ts_us=1, out_us=2)) == (1001, BTC, 9, 8, 1, 2)
    moved = _sbe.with_seq_id(snap, 95)
    assert _sbe.peek(moved)[2] == 95 and len(moved) == len(snap)
    with pytest.raises(okxbook.FrameError):
        _sbe.with_seq_id(l2_message(BTC, 9, 8, -1, -8), 1)
    with pytest.raises(okxbook.FrameError):
        _sbe.peek(truncate(snap, 20))


def test_extreme_values_print_within_the_level_text():
    b = okxbook.Books()
    b.set_inst_id_code(1, "X-Y")
    lo, hi = -(2**63) + 1, 2**63 - 1  # the book keeps |v| < 2**63
    book = b.apply(snapshot_message(1, 1, -18, -18, [(hi, hi, 2**31 - 1)], [(lo, 1, 0)]))
    assert book.best_ask == ("9.223372036854775807", "9.223372036854775807")
    assert book.best_bid == ("-9.223372036854775807", "0.000000000000000001")


def _canonical(m: int, dec: int) -> str:
    """Independent reference: Decimal, printed without exponent or trailing zeros."""
    from decimal import Decimal

    text = format(Decimal(m).scaleb(-dec), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def test_level_strings_are_the_canonical_decimal_of_mantissa_and_exponent():
    import random

    rng = random.Random(13)
    b = okxbook.Books()
    b.set_inst_id_code(1, "X-Y")
    for seq in range(2000):
        pe, se = -rng.randrange(0, 19), -rng.randrange(0, 19)
        px = rng.choice([0, 1, 10, 100, rng.randrange(-(10**18), 10**18), rng.randrange(10**6)])
        sz = rng.choice([1, 10, 1000, rng.randrange(1, 10**18), rng.randrange(1, 10**5)])
        book = b.apply(snapshot_message(1, seq, pe, se, [], [(px, sz, 1)]))
        assert book.best_bid == (_canonical(px, -pe), _canonical(sz, -se)), (px, pe, sz, se)
