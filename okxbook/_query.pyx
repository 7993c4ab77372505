# cython: language_level=3
"""Book queries a quoting engine calls on every tick: price to fill a quantity, quantity within a
price or a band around the mid, size at a price, cumulative depth, imbalance, and a consistent copy
of the top N levels.

Each query is one C call that walks the book through the fast readers of ``okxbook/_book.pxd``
(``book_bid_level`` ...) and makes no Python object per level: the answer is a float, an int or a
small tuple. Sums are exact: sizes add up in lots and notionals in ticks x lots, in 128-bit
integers (``wide_t``), and only the final answer becomes a float. The ``*_lots``/``*_ticks``
variants return those exact integers (prices in units of ``10**-px_decimals``, sizes in units of
``10**-sz_decimals``).

``side`` names the side of the book walked: ``BID`` (+1, you sell into the bids) or ``ASK`` (-1,
you buy from the asks). Queries see the published levels only (at most ``book.depth``), and an
empty or invalid book (invalid books are emptied) answers as an empty one: 0, or NaN where the
answer is a price or a ratio.

Cost (k = levels walked, n = levels on the side): ``fill`` O(k levels consumed);
``qty_within*`` O(k levels inside the limit); ``size_at*`` O(log n) (binary search);
``cum_depth*``/``imbalance*`` O(min(N, n)); ``top_levels`` O(N) plus two numpy allocations.
bench/query_bench.py measures them.
"""

from libc.stdint cimport int64_t, uint64_t, INT64_MAX, INT64_MIN
from libc.math cimport NAN, isfinite, llround
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE

import numpy as np

from okxbook._level cimport Level, wide_t
from okxbook._book cimport (Book, book_n_bids, book_n_asks, book_px_div, book_sz_div,
                            book_best_bid_ticks, book_best_ask_ticks, book_seq_id, book_state)

from okxbook._book import DEPTH_DTYPE as _DEPTH_DTYPE

#: ``side`` of a query: walk the bids (a sell fills there) or the asks (a buy fills there).
BID = 1
ASK = -1

cdef extern from *:
    """
    static inline long long okxbook_wide_hi(okxbook_wide_t v) { return (long long)(v >> 64); }
    static inline unsigned long long okxbook_wide_lo(okxbook_wide_t v) {
        return (unsigned long long)v;
    }
    """
    int64_t wide_hi "okxbook_wide_hi"(wide_t v) noexcept nogil
    uint64_t wide_lo "okxbook_wide_lo"(wide_t v) noexcept nogil


if _DEPTH_DTYPE.itemsize != sizeof(DepthRow):
    raise ImportError("okxbook._query: DepthRow does not match okxbook._book.DEPTH_DTYPE")


cdef object wide_int(wide_t v):
    """A 128-bit sum as a Python int (Cython only knows it as a long long)."""
    cdef int64_t hi = wide_hi(v)
    cdef bint low_half = wide_lo(v) <= <uint64_t>INT64_MAX
    if (hi == 0 and low_half) or (hi == -1 and not low_half):
        return <int64_t>v
    return (<object>hi << 64) | <object>wide_lo(v)


cdef inline int check_side(Book book, int side) except -1:
    if book is None:
        raise TypeError("book must be a Book, not None")
    if side != 1 and side != -1:
        raise ValueError(f"side must be BID (1) or ASK (-1), not {side}")
    return 0


cdef inline Py_ssize_t n_levels(Book book, int side) noexcept:
    return book_n_bids(book) if side > 0 else book_n_asks(book)


cdef inline int64_t lots_of(double qty, double sz_div) except? -1:
    """A float quantity in lots (nearest lot); past int64, int64's largest."""
    if not qty >= 0:
        raise ValueError(f"quantity must be >= 0, not {qty}")
    cdef double lots = qty * sz_div
    if not isfinite(lots) or lots >= 9.2e18:
        return INT64_MAX
    return llround(lots)


cdef inline Py_ssize_t walk_lots(Book book, int side, int64_t want, wide_t* notional,
                                 wide_t* filled, int64_t* worst) noexcept:
    """Consume ``want`` lots best first: the notional (ticks x lots) and lots filled, the price of
    the last level touched; returns the levels touched."""
    cdef Py_ssize_t i = 0, n = n_levels(book, side)
    cdef const Level* lv
    cdef int64_t take
    cdef wide_t left = want
    notional[0] = 0
    filled[0] = 0
    worst[0] = INT64_MIN if side > 0 else INT64_MAX
    while i < n and left > 0:
        lv = level(book, side, i)
        take = lv.sz if lv.sz < left else <int64_t>left
        notional[0] += <wide_t>lv.px * take
        filled[0] += take
        left -= take
        worst[0] = lv.px
        i += 1
    return i


cpdef tuple fill(Book book, int side, double qty):
    """Fill ``qty`` (base units) against ``side``: ``(vwap, worst_px, filled_qty)``.

    ``worst_px`` is the price of the last level touched. A book too thin for ``qty`` fills what it
    holds: ``filled_qty < qty`` and vwap/worst over what was there (check ``filled_qty``). An empty
    side (or ``qty == 0``) gives ``(nan, nan, 0.0)``. ``qty`` is rounded to the nearest lot.
    """
    check_side(book, side)
    cdef double px_div = book_px_div(book), sz_div = book_sz_div(book)
    cdef wide_t notional, filled
    cdef int64_t worst
    walk_lots(book, side, lots_of(qty, sz_div), &notional, &filled, &worst)
    if filled == 0:
        return (NAN, NAN, 0.0)
    return (<double>notional / <double>filled / px_div, worst / px_div, <double>filled / sz_div)


cpdef tuple fill_lots(Book book, int side, int64_t qty_lots):
    """Exact ``fill``: ``(notional, worst_ticks, filled_lots)`` with ``notional`` the sum of
    ticks x lots taken (vwap in ticks is ``notional / filled_lots``). ``worst_ticks`` is
    ``NO_BID``/``NO_ASK`` when nothing filled."""
    check_side(book, side)
    if qty_lots < 0:
        raise ValueError(f"quantity must be >= 0, not {qty_lots}")
    cdef wide_t notional, filled
    cdef int64_t worst
    walk_lots(book, side, qty_lots, &notional, &filled, &worst)
    return (wide_int(notional), worst, wide_int(filled))


cdef inline wide_t lots_while(Book book, int side, int64_t limit_ticks) noexcept:
    """Lots on the levels at ``limit_ticks`` or better (bids >= limit, asks <= limit)."""
    cdef Py_ssize_t i, n = n_levels(book, side)
    cdef const Level* lv
    cdef wide_t total = 0
    for i in range(n):
        lv = level(book, side, i)
        if (lv.px < limit_ticks) if side > 0 else (lv.px > limit_ticks):
            break
        total += lv.sz
    return total


cpdef double qty_within(Book book, int side, double px) except? -1:
    """Quantity resting at ``px`` or better: bids priced >= px, asks <= px (prices compared as
    ``ticks / 10**px_decimals``, as ``Book.bids()['px']`` shows them)."""
    check_side(book, side)
    cdef double px_div = book_px_div(book)
    cdef Py_ssize_t i, n = n_levels(book, side)
    cdef const Level* lv
    cdef wide_t total = 0
    for i in range(n):
        lv = level(book, side, i)
        if (lv.px / px_div < px) if side > 0 else (lv.px / px_div > px):
            break
        total += lv.sz
    return <double>total / book_sz_div(book)


cpdef object qty_within_ticks(Book book, int side, int64_t px_ticks):
    """Exact ``qty_within``: lots at ``px_ticks`` or better."""
    check_side(book, side)
    return wide_int(lots_while(book, side, px_ticks))


cpdef double qty_within_bps(Book book, int side, double bps) except? -1:
    """Quantity within ``bps`` basis points of the mid: bids priced >= mid * (1 - bps/1e4), asks
    <= mid * (1 + bps/1e4); the bands of ``TopSeries`` (``bid_depth_<bps>bps``). 0.0 without a
    mid (a side empty)."""
    check_side(book, side)
    if not bps >= 0:
        raise ValueError(f"bps must be >= 0, not {bps}")
    if book_n_bids(book) == 0 or book_n_asks(book) == 0:
        return 0.0
    cdef double mid = <double>(<wide_t>book_best_bid_ticks(book) + book_best_ask_ticks(book)) / 2.0
    cdef double limit = mid * (1.0 - side * bps / 1e4)
    cdef Py_ssize_t i, n = n_levels(book, side)
    cdef const Level* lv
    cdef wide_t total = 0
    for i in range(n):
        lv = level(book, side, i)
        if (lv.px - limit) * -side > 0:
            break
        total += lv.sz
    return <double>total / book_sz_div(book)


cpdef object qty_within_bps_lots(Book book, int side, int64_t bps):
    """Exact ``qty_within_bps`` for whole bps: a bid is inside when
    ``px * 20000 >= (bid + ask) * (10000 - bps)`` (asks: ``<=`` with ``10000 + bps``), in 128-bit
    integers; 0 without a mid."""
    check_side(book, side)
    if bps < 0 or bps > 10_000_000:
        raise ValueError(f"bps must be within 0..10000000, not {bps}")
    if book_n_bids(book) == 0 or book_n_asks(book) == 0:
        return 0
    cdef wide_t mid2 = <wide_t>book_best_bid_ticks(book) + book_best_ask_ticks(book)
    cdef wide_t rhs = mid2 * (10000 - side * bps)
    cdef Py_ssize_t i, n = n_levels(book, side)
    cdef const Level* lv
    cdef wide_t total = 0
    for i in range(n):
        lv = level(book, side, i)
        if ((<wide_t>lv.px * 20000 < rhs) if side > 0 else (<wide_t>lv.px * 20000 > rhs)):
            break
        total += lv.sz
    return wide_int(total)


cpdef int64_t size_at_lots(Book book, int side, int64_t px_ticks) except? -1:
    """Lots resting at exactly ``px_ticks`` on ``side`` (0 if no level there). O(log n)."""
    check_side(book, side)
    cdef Py_ssize_t lo = 0, hi = n_levels(book, side), mid
    cdef wide_t key = <wide_t>px_ticks * -side   # ascending along best-first order
    while lo < hi:
        mid = (lo + hi) >> 1
        if <wide_t>level(book, side, mid).px * -side < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < n_levels(book, side) and level(book, side, lo).px == px_ticks:
        return level(book, side, lo).sz
    return 0


cpdef double size_at(Book book, int side, double px) except? -1:
    """Quantity at price ``px`` (rounded to the nearest tick) on ``side``; 0.0 if none."""
    check_side(book, side)
    cdef double ticks = px * book_px_div(book)
    if not isfinite(ticks) or not -9.2e18 < ticks < 9.2e18:
        return 0.0
    return size_at_lots(book, side, llround(ticks)) / book_sz_div(book)


cdef inline wide_t top_lots(Book book, int side, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i, m = n_levels(book, side)
    cdef wide_t total = 0
    if n < m:
        m = n
    for i in range(m):
        total += level(book, side, i).sz
    return total


cpdef double cum_depth(Book book, int side, Py_ssize_t n) except? -1:
    """Quantity on the best ``n`` levels of ``side`` (all of them if it has fewer)."""
    check_side(book, side)
    if n < 0:
        raise ValueError("n must be >= 0")
    return <double>top_lots(book, side, n) / book_sz_div(book)


cpdef object cum_depth_lots(Book book, int side, Py_ssize_t n):
    """Exact ``cum_depth``: lots on the best ``n`` levels."""
    check_side(book, side)
    if n < 0:
        raise ValueError("n must be >= 0")
    return wide_int(top_lots(book, side, n))


cpdef double imbalance(Book book, Py_ssize_t n) except? -2:
    """``(B - A) / (B + A)`` with B, A the quantity on the best ``n`` bids and asks: +1 all bids,
    -1 all asks; NaN when both are empty."""
    check_side(book, 1)
    if n < 0:
        raise ValueError("n must be >= 0")
    cdef wide_t b = top_lots(book, 1, n), a = top_lots(book, -1, n)
    if a + b == 0:
        return NAN
    return <double>(b - a) / <double>(b + a)


cpdef tuple imbalance_lots(Book book, Py_ssize_t n):
    """Exact ``imbalance``: ``(bid_lots, ask_lots)`` on the best ``n`` levels of each side."""
    check_side(book, 1)
    if n < 0:
        raise ValueError("n must be >= 0")
    return (wide_int(top_lots(book, 1, n)), wide_int(top_lots(book, -1, n)))


cdef class TopLevels:
    """A copy of a book's best ``n`` levels a side, with the seqId and exchange ts they belong to.

    ``bids``/``asks`` are ``DEPTH_DTYPE`` arrays (best first) owned by this object: nothing
    refers to the book, so it can go to another thread or be kept. ``status`` is the book's
    (``empty``/``live``/``invalid``) when copied."""

    def __init__(self, *args, **kwargs):
        raise TypeError("TopLevels comes from okxbook.top_levels(book, n)")


_STATUS = ("empty", "live", "invalid")


cdef void copy_side(Book book, int side, Py_ssize_t m, DepthRow* rows) noexcept:
    copy_exact(book, side, m, &rows[0].px_ticks, sizeof(DepthRow) // sizeof(int64_t))
    scale_rows(rows, m, book_px_div(book), book_sz_div(book))


cpdef TopLevels top_levels(Book book, Py_ssize_t n):
    """Copy the best ``n`` levels of both sides and the book's seqId/ts in one step (both
    arrays are views of one allocation, owned by the copy).

    The arrays are allocated first and then filled by one C loop that calls nothing in Python, so
    no other thread (they apply frames holding the GIL) can change the book half-way: bids, asks
    and ``seq_id`` always belong to the same frame."""
    check_side(book, 1)
    if n < 0:
        raise ValueError("n must be >= 0")
    cdef Py_ssize_t cap = n if n < book.depth else book.depth
    both = np.empty(2 * cap, dtype=_DEPTH_DTYPE)     # one allocation for both sides
    cdef Py_buffer view
    PyObject_GetBuffer(both, &view, PyBUF_SIMPLE | PyBUF_WRITABLE)
    cdef DepthRow* rows = <DepthRow*>view.buf        # valid while ``both`` lives
    PyBuffer_Release(&view)
    cdef TopLevels out = TopLevels.__new__(TopLevels)
    # From here to the end of the copy: C only (no allocation, no Python call).
    cdef Py_ssize_t nb = book_n_bids(book), na = book_n_asks(book)
    nb = nb if nb < cap else cap
    na = na if na < cap else cap
    copy_side(book, 1, nb, rows)
    copy_side(book, -1, na, rows + cap)
    out.seq_id = book_seq_id(book)
    out.ts_ms = book.ts_ms
    out.px_decimals = book.px_decimals
    out.sz_decimals = book.sz_decimals
    cdef int state = book_state(book)
    # The copy is complete: Python objects may be made again.
    out.status = _STATUS[state]
    out.channel = book.channel
    out.inst_id = book.inst_id
    out.bids = both[:nb]
    out.asks = both[cap:cap + na]
    return out
