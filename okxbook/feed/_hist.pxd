# cython: language_level=3
from libc.stdint cimport int64_t

cdef enum:
    SUB = 8                         # buckets per power of two
    HALF = (63 - 2) * SUB + SUB     # buckets for each sign
    NB = 2 * HALF


cdef struct Gen:
    int64_t counts[NB]
    int64_t n
    int64_t lo
    int64_t hi


cdef class LogHistogram:
    cdef Gen _g[2]                  # [0] older, [1] newer
    cdef int64_t _started
    cdef readonly int64_t window_ns

    cdef void add(self, int64_t v, int64_t now) noexcept


cdef class BookLatency:
    cdef readonly str conn
    cdef readonly LogHistogram network
    cdef readonly LogHistogram apply
    cdef readonly LogHistogram callback
    cdef readonly LogHistogram total
    cdef int64_t _applied_ns
    cdef int64_t _ts_ms

    cdef void record_applied(self, int64_t ts_ms, int64_t recv_ns) noexcept
    cdef void record_delivered(self) noexcept
