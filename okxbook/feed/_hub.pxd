# cython: language_level=3
from okxbook._book cimport Book
from okxbook.feed._hist cimport BookLatency


cdef class LinkCore:
    cdef public bint retired
    cdef public bint _gone
    cdef public bint staging
    cdef public bint plain
    cdef public double last_rx
    cdef public object books
    cdef public dict by_book
    cdef public str name
    cdef public FeedHub hub


cdef class SubCore:
    cdef public object key
    cdef public object state
    cdef public bint stale
    cdef public double last_rx
    cdef public BookLatency latency


cdef class FeedHub:
    cdef readonly list top_callbacks
    cdef readonly list book_callbacks
    cdef readonly list depth_callbacks
    cdef readonly list streams
    cdef readonly object latency
    cdef public object deltas
    cdef public bint deltas_active
    cdef public bint sbe

    cpdef deltas_ready(self, long long recv_ns)
    cpdef applied(self, LinkCore conn, SubCore cs, Book book, long long recv_ns)
    cpdef top(self, object key, Book book, long long recv_ns, SubCore cs=*)
    cdef int live_frame(self, LinkCore conn, SubCore cs, Book book, long long recv_ns) except -1
