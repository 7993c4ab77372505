# cython: language_level=3
"""C-level entry points of okxbook._query for Cython users (``from okxbook._query cimport ...``):
the same functions Python calls, without the Python call."""

from libc.stdint cimport int64_t
from okxbook._level cimport Level, wide_t
from okxbook._book cimport Book, DepthRow, book_bid_level, book_ask_level

cpdef tuple fill(Book book, int side, double qty)
cpdef tuple fill_lots(Book book, int side, int64_t qty_lots)
cpdef double qty_within(Book book, int side, double px) except? -1
cpdef object qty_within_ticks(Book book, int side, int64_t px_ticks)
cpdef double qty_within_bps(Book book, int side, double bps) except? -1
cpdef object qty_within_bps_lots(Book book, int side, int64_t bps)
cpdef double size_at(Book book, int side, double px) except? -1
cpdef int64_t size_at_lots(Book book, int side, int64_t px_ticks) except? -1
cpdef double cum_depth(Book book, int side, Py_ssize_t n) except? -1
cpdef object cum_depth_lots(Book book, int side, Py_ssize_t n)
cpdef double imbalance(Book book, Py_ssize_t n) except? -2
cpdef tuple imbalance_lots(Book book, Py_ssize_t n)
cpdef TopLevels top_levels(Book book, Py_ssize_t n)

cdef class TopLevels:
    cdef readonly object bids
    cdef readonly object asks
    cdef readonly str channel
    cdef readonly str inst_id
    cdef readonly int64_t seq_id
    cdef readonly int64_t ts_ms
    cdef readonly int px_decimals
    cdef readonly int sz_decimals
    cdef readonly str status


# The copy of a book's levels into ``DEPTH_DTYPE`` rows, shared by ``top_levels`` here and the
# shared-memory segment (``okxbook.share._shm``: its writer copies a book's exact levels, its
# readers scale them): one implementation, inlined into each caller.

cdef inline const Level* level(Book book, int side, Py_ssize_t i) noexcept:
    """The ``i``-th visible level of ``side`` (1: bids, -1: asks), best first."""
    return book_bid_level(book, i) if side > 0 else book_ask_level(book, i)


cdef inline void copy_exact(Book book, int side, Py_ssize_t m, int64_t* out,
                            Py_ssize_t stride) noexcept:
    """The best ``m`` levels of ``side`` (at most the visible ones), exact: level ``j``'s price
    ticks, size lots, orders and extra lots into ``out[j * stride + 0 .. 3]``. ``stride`` 7 with
    ``out = &rows[0].px_ticks`` fills ``DepthRow`` rows; 4 fills packed ``(px, sz, orders,
    extra)`` int64 quadruples."""
    cdef const Level* lv
    cdef Py_ssize_t j
    for j in range(m):
        lv = level(book, side, j)
        out[0] = lv.px
        out[1] = lv.sz
        out[2] = lv.orders
        out[3] = lv.extra
        out += stride


cdef inline void scale_rows(DepthRow* rows, Py_ssize_t m, double px_div, double sz_div) noexcept:
    """``px``, ``sz`` and ``cum_sz`` (the running size from the best row) of ``m`` rows whose
    exact fields are set, at the given decimal scale (``10**decimals``)."""
    cdef Py_ssize_t j
    cdef wide_t cum = 0             # 400 levels of 10**17 lots pass int64
    for j in range(m):
        cum += rows[j].sz_lots
        rows[j].px = rows[j].px_ticks / px_div
        rows[j].sz = rows[j].sz_lots / sz_div
        rows[j].cum_sz = <double>cum / sz_div
