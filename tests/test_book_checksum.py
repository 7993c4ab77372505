"""The legacy OKX checksum (protocol doc §3): doc examples, absent/zero, mismatch handling, raw strings,
unsigned form, verification off."""

from __future__ import annotations

import math
import zlib

import pytest
from conftest import EXAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

import okxbook
from okxbook import Books, ChecksumError, FrameError, okx_checksum

CH, INST = "books", "BTC-USDT"

# Doc example 1: 2 bids, 2 asks; example 2: 1 bid, 3 asks (doc §3).
DOC1_BIDS = [("3366.1", "7"), ("3366", "6")]
DOC1_ASKS = [("3366.8", "9"), ("3368", "8")]
DOC1 = -1881014294
DOC2_BIDS = [("3366.1", "7")]
DOC2_ASKS = [("3366.8", "9"), ("3368", "8"), ("3372", "8")]
DOC2 = 831078360


def signed_crc(text: str) -> int:
    v = zlib.crc32(text.encode())
    return v - 2**32 if v >= 2**31 else v


def test_doc_example_strings_have_the_documented_crc():
    # Proves the reference values themselves, straight from zlib.
    assert signed_crc("3366.1:7:3366.8:9:3366:6:3368:8") == DOC1
    assert signed_crc("3366.1:7:3366.8:9:3368:8:3372:8") == DOC2


def test_okx_checksum_matches_doc_examples(ref_cs):
    assert okx_checksum(DOC1_BIDS, DOC1_ASKS) == DOC1
    assert okx_checksum(DOC2_BIDS, DOC2_ASKS) == DOC2
    assert ref_cs(DOC1_BIDS, DOC1_ASKS) == DOC1 and ref_cs(DOC2_BIDS, DOC2_ASKS) == DOC2
    # 4-field levels as they arrive on the wire: only px and sz count.
    assert (
        okx_checksum([b + ("0", "3") for b in DOC1_BIDS], [a + ("0", "1") for a in DOC1_ASKS])
        == DOC1
    )


def test_okx_checksum_empty_and_one_sided():
    assert okx_checksum([], []) == signed_crc("")
    assert okx_checksum([], DOC2_ASKS) == signed_crc("3366.8:9:3368:8:3372:8")
    assert okx_checksum(DOC1_BIDS, []) == signed_crc("3366.1:7:3366:6")


level_str = st.from_regex(r"\A[0-9]{1,6}(\.[0-9]{1,6})?\Z")


@settings(max_examples=EXAMPLES, deadline=None)  # 200 (40 with OKXBOOK_QUICK_SEARCH)
@given(
    st.lists(st.tuples(level_str, level_str), max_size=30),
    st.lists(st.tuples(level_str, level_str), max_size=30),
)
def test_okx_checksum_equals_reference_on_random_levels(ref_cs, bids, asks):
    assert okx_checksum(bids, asks) == ref_cs(bids, asks)


def test_book_verifies_doc_example_1_snapshot(mkframe):
    books = Books()
    book = books.apply(
        mkframe(
            CH, INST, DOC1_BIDS, DOC1_ASKS, action="snapshot", checksum=DOC1, seqId=10, prevSeqId=-1
        )
    )
    assert book.is_valid and book.checksum == DOC1
    assert book.stats()["checksum_ok"] == 1 and book.stats()["checksum_mismatch"] == 0


def test_book_verifies_doc_example_2_after_an_update(mkframe):
    books = Books()
    books.apply(
        mkframe(
            CH, INST, DOC1_BIDS, DOC1_ASKS, action="snapshot", checksum=DOC1, seqId=10, prevSeqId=-1
        )
    )
    # delete bid 3366, add ask 3372 -> the 1 bid / 3 asks book of example 2
    book = books.apply(
        mkframe(
            CH,
            INST,
            [("3366", "0")],
            [("3372", "8")],
            action="update",
            checksum=DOC2,
            seqId=11,
            prevSeqId=10,
        )
    )
    assert book.is_valid and book.checksum == DOC2
    assert [l[:2] for l in book.bid_levels()] == DOC2_BIDS
    assert [l[:2] for l in book.ask_levels()] == DOC2_ASKS
    assert book.stats()["checksum_ok"] == 2


def test_checksum_zero_and_absent_count_as_absent_and_never_fail(mkframe):
    books = Books()
    book = books.apply(
        mkframe(
            CH, INST, DOC1_BIDS, DOC1_ASKS, action="snapshot", checksum=0, seqId=1, prevSeqId=-1
        )
    )
    book = books.apply(mkframe(CH, INST, [("1", "1")], [], action="update", seqId=2, prevSeqId=1))
    book = books.apply(
        mkframe(CH, INST, [("2", "1")], [], action="update", checksum=0, seqId=3, prevSeqId=2)
    )
    st_ = book.stats()
    assert book.is_valid
    assert (st_["checksum_absent"], st_["checksum_ok"], st_["checksum_mismatch"]) == (3, 0, 0)
    assert book.checksum == 0


def test_wrong_checksum_raises_marks_only_that_book_invalid_and_recovers(mkframe, ref_cs, state):
    books = Books()
    books.apply(
        mkframe(
            CH,
            "ETH-USDT",
            [("10", "1")],
            [("11", "2")],
            action="snapshot",
            checksum=ref_cs([("10", "1")], [("11", "2")]),
            seqId=5,
            prevSeqId=-1,
        )
    )
    book = books.apply(
        mkframe(
            CH, INST, DOC1_BIDS, DOC1_ASKS, action="snapshot", checksum=DOC1, seqId=10, prevSeqId=-1
        )
    )
    other_before = state(books)[(CH, "ETH-USDT")]
    with pytest.raises(ChecksumError) as ei:
        books.apply(
            mkframe(
                CH,
                INST,
                [("3366.2", "1")],
                [],
                action="update",
                checksum=12345,
                seqId=11,
                prevSeqId=10,
            )
        )
    err = ei.value
    expected_computed = ref_cs([("3366.2", "1")] + DOC1_BIDS, DOC1_ASKS)
    assert (err.channel, err.inst_id, err.seq_id) == (CH, INST, 11)
    assert err.expected == 12345 and err.computed == expected_computed
    assert "12345" in str(err) and str(expected_computed) in str(err)
    assert isinstance(err, okxbook.BookError) and not isinstance(err, FrameError)
    assert book.status == "invalid" and not book.is_valid and "checksum" in book.invalid_reason
    assert book.bid_levels() == [] and book.ask_levels() == [] and math.isnan(book.best_bid_px)
    assert book.stats()["checksum_mismatch"] == 1
    assert state(books)[(CH, "ETH-USDT")] == other_before
    assert books[(CH, "ETH-USDT")].is_valid
    # Later updates are dropped quietly until the next snapshot.
    assert (
        books.apply(mkframe(CH, INST, [("1", "1")], [], action="update", seqId=12, prevSeqId=11))
        is book
    )
    assert book.status == "invalid" and book.stats()["dropped_while_invalid"] == 1
    book = books.apply(
        mkframe(
            CH, INST, DOC2_BIDS, DOC2_ASKS, action="snapshot", checksum=DOC2, seqId=20, prevSeqId=-1
        )
    )
    assert book.is_valid and book.invalid_reason is None and book.seq_id == 20
    assert [l[:2] for l in book.ask_levels()] == DOC2_ASKS
    assert book.stats()["checksum_ok"] == 2


def test_checksum_is_built_from_the_strings_received(mkframe, ref_cs):
    a = [("67857", "1")]
    with_zero, plain = [("67856.0", "2")], [("67856", "2")]
    assert okx_checksum(with_zero, a) != okx_checksum(plain, a)
    assert okx_checksum(with_zero, a) == signed_crc("67856.0:2:67857:1")
    assert okx_checksum(plain, a) == signed_crc("67856:2:67857:1")

    books = Books()
    with pytest.raises(ChecksumError):
        books.apply(
            mkframe(
                CH,
                INST,
                with_zero,
                a,
                action="snapshot",
                checksum=ref_cs(plain, a),
                seqId=1,
                prevSeqId=-1,
            )
        )
    book = books.apply(
        mkframe(
            CH,
            INST,
            with_zero,
            a,
            action="snapshot",
            checksum=ref_cs(with_zero, a),
            seqId=1,
            prevSeqId=-1,
        )
    )
    assert book.best_bid == ("67856.0", "2")
    assert book.best_bid_ticks == 678560 and book.px_decimals == 1
    # Same value re-sent as "67856": the level now carries the new string.
    book = books.apply(
        mkframe(
            CH,
            INST,
            [("67856", "2")],
            [],
            action="update",
            checksum=ref_cs(plain, a),
            seqId=2,
            prevSeqId=1,
        )
    )
    assert book.is_valid and book.best_bid == ("67856", "2") and book.n_bids == 1
    # ... so a checksum over the old strings now fails.
    with pytest.raises(ChecksumError):
        books.apply(
            mkframe(
                CH,
                INST,
                [],
                [("67857", "1")],
                action="update",
                checksum=ref_cs(with_zero, a),
                seqId=3,
                prevSeqId=2,
            )
        )


def test_size_strings_matter_too(mkframe, ref_cs):
    books = Books()
    bids, asks = [("100", "1.50")], [("101", "2")]
    with pytest.raises(ChecksumError):
        books.apply(
            mkframe(
                CH,
                INST,
                bids,
                asks,
                action="snapshot",
                checksum=ref_cs([("100", "1.5")], asks),
                seqId=1,
                prevSeqId=-1,
            )
        )
    book = books.apply(
        mkframe(
            CH,
            INST,
            bids,
            asks,
            action="snapshot",
            checksum=ref_cs(bids, asks),
            seqId=1,
            prevSeqId=-1,
        )
    )
    assert book.best_bid == ("100", "1.50")


def test_unsigned_checksum_is_the_same_value(mkframe):
    books = Books()
    book = books.apply(
        mkframe(
            CH,
            INST,
            DOC1_BIDS,
            DOC1_ASKS,
            action="snapshot",
            checksum=DOC1 + 2**32,
            seqId=1,
            prevSeqId=-1,
        )
    )
    assert book.is_valid and book.checksum == DOC1 and book.stats()["checksum_ok"] == 1
    with pytest.raises(ChecksumError) as ei:
        books.apply(
            mkframe(
                CH,
                INST,
                [("1", "1")],
                [],
                action="update",
                checksum=DOC1 + 2**32,
                seqId=2,
                prevSeqId=1,
            )
        )
    assert ei.value.expected == DOC1


@pytest.mark.parametrize("value", [2**32, -(2**31) - 1, 2**40])
def test_checksum_outside_32_bits_is_a_frame_error(mkframe, value, state):
    books = Books()
    books.apply(mkframe(CH, INST, DOC1_BIDS, DOC1_ASKS, action="snapshot", seqId=1, prevSeqId=-1))
    before = state(books)
    with pytest.raises(FrameError, match="checksum"):
        books.apply(
            mkframe(
                CH, INST, [("1", "1")], [], action="update", checksum=value, seqId=2, prevSeqId=1
            )
        )
    assert state(books) == before


def test_checksum_covers_top_25_only(mkframe, ref_cs):
    bids = [(str(1000 - i), str(i + 1)) for i in range(30)]
    asks = [(str(2000 + i), str(i + 1)) for i in range(30)]
    books = Books()
    book = books.apply(
        mkframe(
            CH,
            INST,
            bids,
            asks,
            action="snapshot",
            checksum=ref_cs(bids, asks),
            seqId=1,
            prevSeqId=-1,
        )
    )
    assert book.is_valid
    # Changing level 28 leaves the checksum of the top 25 unchanged.
    book = books.apply(
        mkframe(
            CH,
            INST,
            [("972", "99")],
            [],
            action="update",
            checksum=ref_cs(bids, asks),
            seqId=2,
            prevSeqId=1,
        )
    )
    assert book.is_valid and book.stats()["checksum_ok"] == 2
    # A checksum over 26 levels is not OKX's.
    v = zlib.crc32(":".join(x for i in range(26) for x in (*bids[i], *asks[i])).encode())
    with pytest.raises(ChecksumError):
        books.apply(
            mkframe(
                CH,
                INST,
                [],
                [],
                action="update",
                checksum=v - 2**32 if v >= 2**31 else v,
                seqId=3,
                prevSeqId=2,
            )
        )


def test_verify_checksum_false_never_raises(mkframe):
    books = Books(verify_checksum=False)
    assert books.verify_checksum is False
    book = books.apply(
        mkframe(
            CH, INST, DOC1_BIDS, DOC1_ASKS, action="snapshot", checksum=42, seqId=1, prevSeqId=-1
        )
    )
    book = books.apply(
        mkframe(CH, INST, [("3366.5", "1")], [], action="update", checksum=43, seqId=2, prevSeqId=1)
    )
    assert book.is_valid and book.best_bid == ("3366.5", "1")
    assert book.stats()["checksum_mismatch"] == 0 and book.checksum == 43


def test_checksum_of_a_deep_book_with_long_strings(mkframe, ref_cs):
    """A 900-level-a-side snapshot (more than the scratch's first allocation, more than the 800 a
    `books` book stores) with long zero-padded strings: the top 25 verify, strings survive intact."""
    bids = [(f"{100000 - i:010d}.{i:09d}", f"{i + 1:011d}.0000") for i in range(900)]
    asks = [(f"{200000 + i:010d}.{i:09d}", f"0.{i + 1:08d}") for i in range(900)]
    books = Books()
    book = books.apply(
        mkframe(
            CH,
            INST,
            bids,
            asks,
            action="snapshot",
            checksum=ref_cs(bids, asks),
            seqId=1,
            prevSeqId=-1,
        )
    )
    assert book.is_valid and book.stats()["checksum_ok"] == 1
    assert book.n_bids == book.n_asks == 400 and book.stats()["trimmed_levels"] == 200
    assert [l[:2] for l in book.bid_levels()] == bids[:400]
    assert [l[:2] for l in book.ask_levels()] == asks[:400]
    # Delete the best 30 of each side: the checksum now covers levels 31..55.
    book = books.apply(
        mkframe(
            CH,
            INST,
            [(p, "0") for p, _ in bids[:30]],
            [(p, "0") for p, _ in asks[:30]],
            action="update",
            checksum=ref_cs(bids[30:], asks[30:]),
            seqId=2,
            prevSeqId=1,
        )
    )
    assert book.is_valid and book.best_bid == bids[30]


@settings(max_examples=EXAMPLES, deadline=None)  # 200 (40 with OKXBOOK_QUICK_SEARCH)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 40), st.integers(1, 10**6), st.integers(0, 40), st.integers(1, 10**6)
        ),
        min_size=1,
        max_size=30,
    )
)
def test_whatever_is_accepted_is_checksummed_from_its_exact_text(mkframe, ref_cs, rows):
    """Zero-padded strings of many lengths: the engine either refuses the frame (too long) or keeps
    the exact text, and then the checksum over that text verifies."""
    bids, seen = [], set()
    for px_pad, px, sz_pad, sz in rows:
        if px in seen:
            continue
        seen.add(px)
        bids.append(("0" * px_pad + str(px), "0" * sz_pad + str(sz)))
    bids.sort(key=lambda l: -int(l[0]))
    books = Books()
    try:
        book = books.apply(
            mkframe(
                CH,
                INST,
                bids,
                [],
                action="snapshot",
                checksum=ref_cs(bids, []),
                seqId=1,
                prevSeqId=-1,
            )
        )
    except FrameError as e:
        assert "too long" in e.reason and len(books) <= 1
        assert max(len(p) + len(s) for p, s in bids) > 20
        return
    assert book.is_valid and [l[:2] for l in book.bid_levels()] == bids
