"""The ``cdef inline`` top-of-book readers of ``okxbook/_book.pxd`` (issue 8): ``TopSeries`` reads
books only through them, and what it records equals what ``Book``'s public API says."""

from __future__ import annotations

import math
import re
from pathlib import Path

import okxbook
from okxbook import BookError, Books, SequenceError, TopSeries
from okxbook.capture import iter_frames

PKG = Path(okxbook.__file__).parent
CAPTURE = PKG / "data" / "okx-books-2022-05-13.cryptofeed.gz"
READERS = [
    "book_is_live",
    "book_state",
    "book_has_seq_id",
    "book_seq_id",
    "book_n_bids",
    "book_n_asks",
    "book_best_bid_ticks",
    "book_best_ask_ticks",
    "book_best_bid_lots",
    "book_best_ask_lots",
    "book_px_div",
    "book_sz_div",
    "book_bid_level",
    "book_ask_level",
]


def test_the_readers_are_declared_inline_in_the_pxd():
    pxd = (PKG / "_book.pxd").read_text()
    for name in READERS:
        assert re.search(rf"^cdef inline [^(]+\b{name}\(Book book", pxd, re.M), name


def test_top_series_reads_no_private_field_of_book():
    source = (PKG / "capture" / "_series.pyx").read_text()
    assert not re.findall(r"\bbook\._\w+", source)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_top_series_rows_equal_the_public_api_over_a_real_capture(mkframe):
    books = Books()
    series = TopSeries(bps=(5, 10000))
    seen = []
    for cf in iter_frames(CAPTURE):
        try:
            book = books.apply(cf.frame)
        except BookError:
            continue
        if not isinstance(book, okxbook.Book):
            continue
        series.observe(book, len(seen))
        seen.append(
            (
                book.best_bid_ticks if book.n_bids else 0,
                book.best_ask_ticks if book.n_asks else 0,
                book.best_bid_sz,
                book.best_ask_sz,
                book.mid,
                book.spread,
                book.seq_id,
                book.is_valid,
                float(book.bids()["sz"].sum()),
            )
        )
    # One invalid book too: its row says so and carries no prices.
    book = books.apply(
        mkframe(
            "books", "X-Y", [("1", "1")], [("2", "1")], action="snapshot", prevSeqId=-1, seqId=5
        )
    )
    try:
        books.apply(mkframe("books", "X-Y", [], [], action="update", prevSeqId=9, seqId=10))
    except SequenceError:
        pass
    series.observe(book, len(seen))
    seen.append((0, 0, math.nan, math.nan, math.nan, math.nan, 5, False, 0.0))
    cols = series.columns()
    assert len(seen) > 250 and len(cols["bid_ticks"]) == len(seen)
    for i, want in enumerate(seen):
        bid_t, ask_t, bid_sz, ask_sz, mid, spread, seq, valid, bid_total = want
        assert (cols["bid_ticks"][i], cols["ask_ticks"][i]) == (bid_t, ask_t)
        assert _same(cols["bid_sz"][i], bid_sz) and _same(cols["ask_sz"][i], ask_sz)
        assert _same(cols["mid"][i], mid) and _same(cols["spread"][i], spread)
        assert cols["seq_id"][i] == seq and bool(cols["valid"][i]) == valid
        if valid:  # a 10000 bp band holds every published bid
            assert math.isclose(cols["bid_depth_10000bps"][i], bid_total, rel_tol=1e-12)
