# cython: language_level=3
from libc.stdint cimport int64_t
from okxbook._wire cimport Scratch
from okxbook._book cimport Book
from okxbook._deltas cimport DeltaRecorder
from okxbook._checksum cimport CHECKSUM_BUF_SIZE

cdef class Books:
    cdef Scratch _s
    cdef dict _books           # b"channel\0instId" -> Book
    cdef bytes _last_key
    cdef Book _last
    cdef Book _new             # made by _find for this frame, not registered yet
    cdef dict _decimals        # instId -> (px decimals, sz decimals) from instrument metadata
    cdef readonly bint verify_checksum
    cdef DeltaRecorder _recorder   # attached to every book, including ones made later
    cdef readonly int64_t frames
    cdef readonly int64_t events
    cdef char _buf[CHECKSUM_BUF_SIZE]

    cpdef object apply(self, object frame)
    cdef object apply_raw(self, const char* buf, Py_ssize_t n, object frame)
    cdef object _span(self, const char* p, Py_ssize_t n)
    cdef Book _find(self, Scratch* s)
    cdef Book _create(self, Scratch* s, bytes key)
    cdef Book _new_book(self, str channel, str inst_id)
