# cython: language_level=3
from libc.stdint cimport int64_t, INT64_MIN, INT64_MAX
from okxbook._level cimport Level, Side, side_at, side_best
from okxbook._wire cimport Scratch
from okxbook._deltas cimport DeltaBuf, DeltaRecorder

cdef enum BookState:
    STATE_EMPTY = 0      # no snapshot yet
    STATE_LIVE = 1
    STATE_INVALID = 2    # integrity lost (gap, checksum, feeder said so): wait for a snapshot

# One DEPTH_DTYPE row (``Book.bids()``; checked against the dtype at import by each module that
# fills rows: _query, share._shm).
cdef packed struct DepthRow:
    double px
    double sz
    double cum_sz
    int64_t px_ticks
    int64_t sz_lots
    int64_t orders
    int64_t extra_lots


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
    # delta recording (okxbook._deltas): _rec is NULL unless a recorder is attached
    cdef DeltaBuf* _rec
    cdef DeltaRecorder _recorder
    cdef int _rec_book

    cdef int apply_scratch(self, Scratch* s, bint verify, char* buf) except -1
    cdef int _prepare(self, Scratch* s, bint resets) except -1
    cdef int _apply_item(self, Scratch* s, int index, bint verify, char* buf) except -1
    cdef void _load_side(self, Side* side, Scratch* s, Py_ssize_t off, Py_ssize_t n) noexcept nogil
    cdef void _merge_side(self, Side* side, Scratch* s, Py_ssize_t off, Py_ssize_t n) noexcept nogil
    cdef void _set_scale(self, int px_dec, int sz_dec) noexcept
    cdef void _clear(self) noexcept
    cdef object _depth(self, Side* side, object n)
    cdef list _levels(self, Side* side, object n)
    cdef int _write_image(self, DeltaRecorder rec, int book_index) except -1
    cpdef void invalidate(self, str reason)
    cpdef void copy_from(self, Book other) except *


# ---------------------------------------------------------------- fast readers for Cython users
# ``from okxbook._book cimport Book, book_best_bid_ticks, ...``: inlined into the caller (no call,
# no Python object), reading the book as it is after the frame it last applied. Ticks are in units
# of 10**-px_decimals, lots in units of 10**-sz_decimals (divide by book_px_div/book_sz_div for
# floats). Use these instead of Book's private fields: the fields may change, these will not.

cdef inline bint book_is_live(Book book) noexcept:
    """A snapshot and every frame since applied cleanly (``Book.is_valid``)."""
    return book._state == STATE_LIVE

cdef inline int book_state(Book book) noexcept:
    """``STATE_EMPTY``, ``STATE_LIVE`` or ``STATE_INVALID``."""
    return book._state

cdef inline bint book_has_seq_id(Book book) noexcept:
    """Whether the chain's last seqId is known (``book_seq_id`` is -1 otherwise)."""
    return book._has_seq

cdef inline int64_t book_seq_id(Book book) noexcept:
    return book.seq_id if book._has_seq else -1

cdef inline Py_ssize_t book_n_bids(Book book) noexcept:
    """Bid levels visible to consumers (at most ``depth``), as ``Book.n_bids``."""
    return book._bids.n if book._bids.n < book.depth else book.depth

cdef inline Py_ssize_t book_n_asks(Book book) noexcept:
    return book._asks.n if book._asks.n < book.depth else book.depth

cdef inline int64_t book_best_bid_ticks(Book book) noexcept:
    """Best bid price in ticks; INT64_MIN (``NO_BID``) when there is none."""
    return side_best(&book._bids).px if book._bids.n else INT64_MIN

cdef inline int64_t book_best_ask_ticks(Book book) noexcept:
    """Best ask price in ticks; INT64_MAX (``NO_ASK``) when there is none."""
    return side_best(&book._asks).px if book._asks.n else INT64_MAX

cdef inline int64_t book_best_bid_lots(Book book) noexcept:
    """Size at the best bid in lots; 0 when there is none."""
    return side_best(&book._bids).sz if book._bids.n else 0

cdef inline int64_t book_best_ask_lots(Book book) noexcept:
    return side_best(&book._asks).sz if book._asks.n else 0

cdef inline double book_px_div(Book book) noexcept:
    """10**px_decimals as a double: ticks / book_px_div(book) is the price."""
    return book._px_div

cdef inline double book_sz_div(Book book) noexcept:
    return book._sz_div

cdef inline const Level* book_bid_level(Book book, Py_ssize_t i) noexcept:
    """The ``i``-th visible bid, best first (0 = best); NULL past ``book_n_bids``. Valid until the
    book applies its next frame."""
    if i < 0 or i >= book_n_bids(book):
        return NULL
    return side_at(&book._bids, book._bids.n - 1 - i)

cdef inline const Level* book_ask_level(Book book, Py_ssize_t i) noexcept:
    if i < 0 or i >= book_n_asks(book):
        return NULL
    return side_at(&book._asks, book._asks.n - 1 - i)
