# cython: language_level=3
from libc.stdint cimport int64_t
from okxbook._level cimport Side
from okxbook._wire cimport Scratch

cdef enum BookState:
    STATE_EMPTY = 0      # no snapshot yet
    STATE_LIVE = 1
    STATE_INVALID = 2    # integrity lost (gap, checksum, feeder said so): wait for a snapshot

cdef class Book:
    cdef Side _bids
    cdef Side _asks
    cdef readonly str channel
    cdef readonly str inst_id
    cdef readonly int depth              # levels published to consumers (the channel's depth)
    cdef readonly bint is_image          # books5 / bbo-tbt: every push is the whole book
    cdef readonly int px_decimals        # prices are integers in units of 10**-px_decimals
    cdef readonly int sz_decimals
    cdef int _min_px_decimals            # from instrument metadata, when given
    cdef int _min_sz_decimals
    cdef double _px_div
    cdef double _sz_div
    cdef readonly int64_t seq_id         # -1 while _has_seq is False (OKX seqIds are >= 0)
    cdef readonly int64_t prev_seq_id
    cdef bint _has_seq                   # the chain's last seqId is known: its own flag, no value
    cdef readonly int64_t ts_ms          # exchange timestamp of the last frame applied
    cdef readonly int checksum           # checksum field of the last frame (0: absent)
    cdef int _state
    cdef readonly object invalid_reason
    cdef readonly bint crossed           # best bid >= best ask after the last frame
    cdef readonly bint top_changed       # best bid or ask (price or size) changed in the last frame
    # counters
    cdef readonly int64_t frames
    cdef readonly int64_t snapshots
    cdef readonly int64_t updates
    cdef readonly int64_t heartbeats
    cdef readonly int64_t seq_resets
    cdef readonly int64_t seq_gaps
    cdef readonly int64_t checksum_ok
    cdef readonly int64_t checksum_mismatch
    cdef readonly int64_t checksum_absent
    cdef readonly int64_t missing_deletes
    cdef readonly int64_t trimmed_levels
    cdef readonly int64_t dropped_while_invalid

    cdef int apply_scratch(self, Scratch* s, bint verify, char* buf) except -1
    cdef int _prepare(self, Scratch* s, bint resets) except -1
    cdef int _apply_item(self, Scratch* s, int index, bint verify, char* buf) except -1
    cdef void _load_side(self, Side* side, Scratch* s, Py_ssize_t off, Py_ssize_t n) noexcept nogil
    cdef void _merge_side(self, Side* side, Scratch* s, Py_ssize_t off, Py_ssize_t n) noexcept nogil
    cdef void _set_scale(self, int px_dec, int sz_dec) noexcept
    cdef void _clear(self) noexcept
    cdef object _depth(self, Side* side, object n)
    cdef list _levels(self, Side* side, object n)
    cpdef void invalidate(self, str reason)
    cpdef void copy_from(self, Book other) except *
