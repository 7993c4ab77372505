# cython: language_level=3
from libc.stdint cimport int64_t
from okxbook._wire cimport Scratch
from okxbook._book cimport Book
from okxbook._deltas cimport DeltaRecorder
from okxbook._checksum cimport CHECKSUM_BUF_SIZE
from okxbook._sbe cimport SbeInfo

cdef class Books:
    cdef Scratch _s
    cdef dict _books           # b"channel\0instId" -> Book
    cdef bytes _last_key
    cdef Book _last
    cdef list _cache           # BOOK_CACHE entries: (key, Book) or None, see _find
    cdef Book _new             # made by _find for this frame, not registered yet
    cdef dict _decimals        # instId -> (px decimals, sz decimals) from instrument metadata
    cdef readonly bint verify_checksum
    cdef DeltaRecorder _recorder   # attached to every book, including ones made later
    cdef readonly int64_t frames
    cdef readonly int64_t events
    cdef char _buf[CHECKSUM_BUF_SIZE]
    # SBE (docs/protocol.md §9): instruments come as instIdCode; the last lookup is cached
    cdef SbeInfo _sbe
    cdef dict _inst_codes      # instIdCode -> instId as bytes
    cdef int64_t _last_code
    cdef bytes _last_code_inst
    cdef readonly int64_t last_ts_us     # tsUs of the last SBE frame applied (matching engine)
    cdef readonly int64_t last_out_us    # its outTime (gateway send), 0 for a REST snapshot

    cpdef object apply(self, object frame)
    cdef object apply_raw(self, const char* buf, Py_ssize_t n, object frame)
    cdef int _sbe_inst(self, Scratch* s) except -1
    cdef object _learn_code(self, dict raw)
    cdef object _span(self, const char* p, Py_ssize_t n)
    cdef Book _find(self, Scratch* s)
    cdef Book _create(self, Scratch* s, bytes key)
    cdef Book _new_book(self, str channel, str inst_id)
