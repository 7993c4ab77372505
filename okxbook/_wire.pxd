# cython: language_level=3
"""Declarations of the frame scanner (``_wire.pyx``): what one raw frame was, with its levels parsed
into a scratch array. Owned by ``Books``; filled once per frame, then applied by ``Book``."""

from libc.stdint cimport int64_t, int32_t
from okxbook._level cimport Level

cdef enum FrameKind:
    KIND_BOOK = 1       # a push with arg + data
    KIND_EVENT = 2      # {"event": ...}: decoded on the cold path
    KIND_PONG = 3       # the text frame "pong"
    KIND_OTHER = 4      # a push for a channel that is not an order book (trades, tickers ...)

cdef enum Action:
    ACTION_NONE = 0     # image channels (books5, bbo-tbt) have no action
    ACTION_SNAPSHOT = 1
    ACTION_UPDATE = 2

cdef enum:
    MAX_ITEMS = 8       # OKX sends one item per books push; more is accepted up to this

ctypedef struct Item:
    Py_ssize_t bids_off
    Py_ssize_t n_bids
    Py_ssize_t asks_off
    Py_ssize_t n_asks
    int64_t ts
    int64_t seq
    int64_t prev
    int64_t checksum
    bint has_bids
    bint has_asks
    bint has_ts
    bint has_seq
    bint has_prev
    bint has_checksum

ctypedef struct Scratch:
    int kind
    int action
    const char* channel
    Py_ssize_t channel_len
    const char* inst
    Py_ssize_t inst_len
    bint has_arg
    bint has_data
    int n_items
    Item items[MAX_ITEMS]
    Level* levels
    Py_ssize_t n_levels
    Py_ssize_t cap_levels
    int max_px_dec      # most decimals of any price in the frame
    int max_sz_dec      # most decimals of any size (or third field)
    const char* error   # static reason when scan_frame fails
    bint out_of_memory  # ... because the level array could not grow
    Py_ssize_t error_offset

cdef int scan_frame(Scratch* s, const char* buf, Py_ssize_t n) noexcept nogil
cdef void scratch_reset(Scratch* s) noexcept nogil
cdef void scratch_free(Scratch* s) noexcept nogil
