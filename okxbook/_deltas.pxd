# cython: language_level=3
"""Declarations of the delta recorder (``_deltas.pyx``): the row layouts and the inline writers
``Book`` calls from its two level loops when (and only when) a recorder is attached.

A book's ``_rec`` pointer is NULL unless ``record_deltas`` attached a recorder: the hot path then
pays one predictable test per level and writes nothing. With a recorder, ``Book`` reserves room for
the worst case of a frame before it touches a level (``DeltaRecorder.reserve``, which can raise), so
the writers below never allocate and never fail.
"""

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t
from libc.string cimport memcpy
from okxbook._level cimport Level, LEVEL_TEXT_CAP

cdef enum DeltaAction:
    DELTA_CLEAR = 0     # the book was emptied: first row of a snapshot (inserts follow)
    DELTA_INSERT = 1    # a new price level
    DELTA_UPDATE = 2    # an existing price got a new size (prev_sz_lots: the size it had)
    DELTA_DELETE = 3    # a level left on size "0" (prev_sz_lots: the size it had)
    DELTA_TRIM = 4      # the deepest level left because a full side took a better one
    DELTA_RESCALE = 5   # every price was multiplied by px_ticks, every size by sz_lots
    DELTA_INVALID = 6   # the book lost integrity and was emptied (gap, checksum, invalidate())

cdef enum:
    DELTA_BOTH_SIDES = 0

# One row of DELTA_DTYPE (keep the two in the same order: _deltas.pyx checks the itemsize).
ctypedef packed struct DeltaRow:
    int32_t frame       # index of the frame row (FRAME_DTYPE) this change belongs to
    int8_t side         # +1 bid, -1 ask, 0 both (CLEAR, RESCALE, INVALID)
    uint8_t action      # DeltaAction
    uint8_t px_decimals  # the book's scale when the row was written
    uint8_t sz_decimals
    int64_t px_ticks    # price in units of 10**-px_decimals (RESCALE: the price factor)
    int64_t sz_lots     # new size (0 on DELETE/TRIM; RESCALE: the size factor)
    int64_t prev_sz_lots  # size before (0 on INSERT)
    int64_t orders
    int64_t extra_lots

# One row of FRAME_DTYPE: one applied frame (or one invalidate() outside a frame).
ctypedef packed struct FrameRow:
    int32_t book        # index into DeltaRecorder.books
    int32_t n_rows
    int64_t first_row   # rows[first_row:first_row + n_rows] are this frame's
    int64_t seq_id      # -1 when the frame had none
    int64_t prev_seq_id  # the first item's prevSeqId; -1 for a snapshot or when absent
    int64_t ts_ms       # exchange timestamp
    int64_t recv_ns     # DeltaRecorder.recv_ns when the frame was applied
    uint8_t px_decimals  # the book's scale after the frame
    uint8_t sz_decimals
    uint8_t is_snapshot
    uint8_t status      # book status after the frame: 0 empty, 1 live, 2 invalid

# The received strings of one row (only with ``DeltaRecorder(text=True)``): text[0:px_len] is the
# price as received, text[px_len + 1:px_len + 1 + sz_len] the size; both 0 on rows with no level
# (clear, rescale, invalid, trim). Stored beside DeltaRow (same index), so DELTA_DTYPE is unchanged.
ctypedef packed struct TextRow:
    uint8_t px_len
    uint8_t sz_len
    char text[LEVEL_TEXT_CAP - 1]

ctypedef struct DeltaBuf:
    DeltaRow* rows
    TextRow* text       # NULL unless the recorder keeps the received strings
    Py_ssize_t n_rows
    Py_ssize_t cap_rows
    FrameRow* frames
    Py_ssize_t n_frames
    Py_ssize_t cap_frames
    int64_t recv_ns
    int64_t recorded    # frame rows written since the recorder was made
    bint batch          # keep appending across frames (else each frame starts from row 0)
    int32_t cur         # frame row being written, -1 outside a frame
    uint8_t px_dec      # the recording book's scale, stamped on every row
    uint8_t sz_dec


cdef class DeltaRecorder:
    cdef DeltaBuf buf
    cdef object _rows_arr       # numpy arrays owning the memory buf.rows / buf.frames point into
    cdef object _frames_arr
    cdef object _text_arr       # TextRow array (text=True), or None
    cdef list _books            # (channel, instId) by book index
    cdef dict _book_ids
    cdef int _grow(self, Py_ssize_t rows, Py_ssize_t frames) except -1
    cdef int reserve(self, Py_ssize_t rows) except -1
    cdef int32_t book_index(self, str channel, str inst_id) except -1


cdef inline void delta_row(DeltaBuf* b, int side, int action, int64_t px, int64_t sz,
                           int64_t prev_sz, int64_t orders, int64_t extra) noexcept nogil:
    """Append one row (room reserved by the caller)."""
    cdef DeltaRow* r = &b.rows[b.n_rows]
    b.n_rows += 1
    r.frame = b.cur
    r.side = <int8_t>side
    r.action = <uint8_t>action
    r.px_decimals = b.px_dec
    r.sz_decimals = b.sz_dec
    r.px_ticks = px
    r.sz_lots = sz
    r.prev_sz_lots = prev_sz
    r.orders = orders
    r.extra_lots = extra
    if b.text != NULL:
        b.text[b.n_rows - 1].px_len = 0
        b.text[b.n_rows - 1].sz_len = 0


cdef inline void _delta_text(DeltaBuf* b, const Level* lv, bint with_size) noexcept nogil:
    """The received strings of the row just written (``b.text`` not NULL)."""
    cdef TextRow* t = &b.text[b.n_rows - 1]
    cdef Py_ssize_t n = lv.px_len + 1 + lv.sz_len
    if n > LEVEL_TEXT_CAP - 1:
        n = LEVEL_TEXT_CAP - 1
    t.px_len = lv.px_len
    t.sz_len = lv.sz_len if with_size else 0
    memcpy(t.text, lv.text, <size_t>n)


cdef inline void delta_level(DeltaBuf* b, int side, int action, const Level* lv,
                             int64_t prev_sz) noexcept nogil:
    delta_row(b, side, action, lv.px, lv.sz, prev_sz, lv.orders, lv.extra)
    if b.text != NULL:
        _delta_text(b, lv, True)


cdef inline void delta_delete(DeltaBuf* b, int side, const Level* lv, int64_t prev_sz) noexcept nogil:
    """A level left on size "0" (``lv`` the received level: its strings are kept with text=True)."""
    delta_row(b, side, DELTA_DELETE, lv.px, 0, prev_sz, 0, 0)
    if b.text != NULL:
        _delta_text(b, lv, True)


cdef inline void delta_begin(DeltaBuf* b, int32_t book, int px_dec, int sz_dec) noexcept nogil:
    """Open a frame row (room reserved by the caller); outside batch mode the buffer restarts."""
    if not b.batch:
        b.n_rows = 0
        b.n_frames = 0
    b.cur = <int32_t>b.n_frames
    cdef FrameRow* f = &b.frames[b.n_frames]
    b.n_frames += 1
    b.recorded += 1
    f.book = book
    f.first_row = b.n_rows
    f.n_rows = 0
    f.seq_id = -1
    f.prev_seq_id = -1
    f.ts_ms = 0
    f.recv_ns = b.recv_ns
    f.is_snapshot = 0
    f.status = 0
    b.px_dec = <uint8_t>px_dec
    b.sz_dec = <uint8_t>sz_dec


cdef inline void delta_end(DeltaBuf* b, int64_t seq_id, int64_t prev_seq_id, int64_t ts_ms,
                           int px_dec, int sz_dec, bint is_snapshot, int status) noexcept nogil:
    cdef FrameRow* f = &b.frames[b.cur]
    f.n_rows = <int32_t>(b.n_rows - f.first_row)
    f.seq_id = seq_id
    f.prev_seq_id = prev_seq_id
    f.ts_ms = ts_ms
    f.px_decimals = <uint8_t>px_dec
    f.sz_decimals = <uint8_t>sz_dec
    f.is_snapshot = is_snapshot
    f.status = <uint8_t>status
    b.cur = -1
