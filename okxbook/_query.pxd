# cython: language_level=3
"""C-level entry points of okxbook._query for Cython users (``from okxbook._query cimport ...``):
the same functions Python calls, without the Python call."""

from libc.stdint cimport int64_t
from okxbook._book cimport Book

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
