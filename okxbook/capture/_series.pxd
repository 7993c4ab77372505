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
    SZ_DEC_SHIFT = 16   # TopLevels flags bits 16..23: its sz_decimals

cdef class _BookRows:
    cdef Py_ssize_t _n          # rows held
    cdef Py_ssize_t _cap        # rows allocated
    cdef dict _book_index       # Book -> index
    cdef list _book_names       # "channel/instId" by index
    cdef int32_t _book(self, Book book) except -1


cdef class TopSeries(_BookRows):
    cdef TopRow* _rows
    cdef double* _depth         # n_rows x (2 * n_bps): bid sizes then ask sizes within each bps
    cdef int _n_bps
    cdef double _bps[16]
    cdef readonly tuple bps
    cdef readonly bint only_top_changes
    cdef int _grow(self) except -1
    cdef void _band(self, Book book, bint bids, double mid, double sz_div, double direction,
                    double* out) noexcept
    cpdef void observe(self, Book book, int64_t recv_ns) except *


ctypedef struct LevelsRow:
    int64_t time_ns     # the frame's time (recv_ns, else ts_ms * 10**6) or the interval end
    int64_t recv_ns
    int64_t ts_ms
    int64_t seq_id
    int32_t book        # index into TopLevels.book_names
    int32_t flags       # FLAG_VALID | px_decimals << 8 | sz_decimals << 16


cdef class TopLevels(_BookRows):
    cdef LevelsRow* _rows
    cdef int64_t* _lv           # n_rows x (4 * n_levels): bid px, bid sz, ask px, ask sz
    cdef readonly int n_levels
    cdef readonly int64_t every_ns
    cdef int64_t _next          # the next interval end to emit (every_ns > 0); 0: none yet
    cdef Py_ssize_t _batch      # call _on_full once this many rows are held (0: never)
    cdef object _on_full
    cdef LevelsRow* _last       # per book: its state after its last frame (every_ns > 0)
    cdef int64_t* _last_lv
    cdef Py_ssize_t _n_books
    cdef Py_ssize_t _n_filled   # books whose _last row is written (indexes are given in order)
    cdef Py_ssize_t _cap_books
    cdef int _grow(self) except -1
    cdef int _grow_books(self) except -1
    cdef int32_t _index(self, Book book) except -1
    cdef void _fill(self, Book book, int64_t time_ns, int64_t recv_ns, LevelsRow* row,
                    int64_t* lv) noexcept
    cpdef void observe(self, Book book, int64_t recv_ns) except *
