# cython: language_level=3
from libc.stdint cimport int64_t, int32_t
from okxbook._book cimport Book

ctypedef struct TopRow:
    int64_t recv_ns
    int64_t ts_ms
    int64_t seq_id
    int64_t bid_ticks
    int64_t ask_ticks
    double bid_px
    double bid_sz
    double ask_px
    double ask_sz
    double spread       # from exact ticks: no float subtraction noise
    double mid
    int32_t book        # index into TopSeries.book_names
    int32_t flags       # FLAG_* bits

cdef enum:
    FLAG_VALID = 1
    FLAG_CROSSED = 2
    FLAG_TOP_CHANGED = 4
    PX_DEC_SHIFT = 8    # flags bits 8..15: the book's px_decimals when the row was taken

cdef class TopSeries:
    cdef TopRow* _rows
    cdef double* _depth         # n_rows x (2 * n_bps): bid sizes then ask sizes within each bps
    cdef Py_ssize_t _n
    cdef Py_ssize_t _cap
    cdef int _n_bps
    cdef double _bps[16]
    cdef readonly tuple bps
    cdef readonly bint only_top_changes
    cdef dict _book_index       # Book -> index
    cdef list _book_names
    cdef int _grow(self) except -1
    cdef void _band(self, Book book, bint bids, double mid, double sz_div, double direction,
                    double* out) noexcept
    cpdef void observe(self, Book book, int64_t recv_ns) except *
