# cython: language_level=3
"""``DeltaRecorder``: what every applied frame changed in a book, as numpy rows (no Python object per
level).

Attach one with ``Book.record_deltas(rec)`` or ``Books.record_deltas(rec)``; every frame a book
applies then writes one ``FRAME_DTYPE`` row (seqId, prevSeqId, exchange ts, receive ns, decimals,
snapshot flag, status after) and one ``DELTA_DTYPE`` row per level change:

- ``CLEAR`` then one ``INSERT`` per level: a snapshot (or an image push, or ``copy_from``);
- ``INSERT`` / ``UPDATE`` / ``DELETE``: an update's levels (``prev_sz_lots`` the size before; a
  delete of a price the book did not hold changed nothing and writes nothing);
- ``TRIM``: a full side dropped its deepest level to take a better one;
- ``RESCALE`` (first row of an update frame that brought more decimals than the book had): every
  price was multiplied by ``px_ticks`` and every size by ``sz_lots``; each row also carries the
  book's ``px_decimals``/``sz_decimals``, so a flat array of rows is self-describing;
- ``INVALID``: the book lost integrity (a ``SequenceError`` or ``ChecksumError`` frame, or
  ``invalidate()``) and was emptied: nothing valid until the next snapshot.

A rejected frame (``FrameError``) writes nothing; frames dropped while a book waits for its snapshot
write nothing. Hand-written because the rows are filled inside the book's C loops; numpy owns the
memory (the buffer is a numpy array grown by doubling), so a view never dangles.

Single mode (default): the buffer holds the last frame only (reused, no allocation per frame);
every ``apply`` of a book frame empties it first, so after a frame dropped while its book waits for
a snapshot, or rejected, it holds nothing.
Received strings (``text=True``): each row also keeps the price and size strings exactly as the
frame sent them (``"16500.5"``, ``"0.0100"``; a delete's ``"0"``), in a side buffer of 44 bytes per
row filled by the same C writers (off, the default, it costs one NULL test per row). ``rows()`` then
has the fields of ``DELTA_TEXT_DTYPE``: ``DELTA_DTYPE``'s, then ``px_len``, ``sz_len`` and ``text``
(``text[:px_len]`` the price, ``text[px_len + 1:px_len + 1 + sz_len]`` the size; both lengths 0 on
rows that carry no received level: clear, rescale, invalid, trim, and levels of a snapshot written by
``Book.snapshot_deltas()`` keep the strings the book holds, as received).

Batch mode (``batch=True``): frames append until ``clear()``/``take()``; ``rows["frame"]`` indexes
``frames()``, so a replay collects millions of changes at replay speed.
"""

from libc.stdint cimport int32_t
from libc.string cimport memcpy

import numpy as np

#: One level change; see the module docstring for ``action``.
DELTA_DTYPE = np.dtype([("frame", "<i4"), ("side", "i1"), ("action", "u1"),
                        ("px_decimals", "u1"), ("sz_decimals", "u1"), ("px_ticks", "<i8"),
                        ("sz_lots", "<i8"), ("prev_sz_lots", "<i8"), ("orders", "<i8"),
                        ("extra_lots", "<i8")])

#: One applied frame: its rows are ``rows[first_row:first_row + n_rows]``.
FRAME_DTYPE = np.dtype([("book", "<i4"), ("n_rows", "<i4"), ("first_row", "<i8"),
                        ("seq_id", "<i8"), ("prev_seq_id", "<i8"), ("ts_ms", "<i8"),
                        ("recv_ns", "<i8"), ("px_decimals", "u1"), ("sz_decimals", "u1"),
                        ("is_snapshot", "u1"), ("status", "u1")])

#: ``TextRow``: the received strings of one row (``text=True``).
TEXT_DTYPE = np.dtype([("px_len", "u1"), ("sz_len", "u1"), ("text", f"S{LEVEL_TEXT_CAP - 1}")])

#: ``rows()`` of a ``text=True`` recorder: a delta row and its received strings.
DELTA_TEXT_DTYPE = np.dtype(DELTA_DTYPE.descr + TEXT_DTYPE.descr)

assert DELTA_DTYPE.itemsize == sizeof(DeltaRow)
assert TEXT_DTYPE.itemsize == sizeof(TextRow)
assert FRAME_DTYPE.itemsize == sizeof(FrameRow)

CLEAR = DELTA_CLEAR
INSERT = DELTA_INSERT
UPDATE = DELTA_UPDATE
DELETE = DELTA_DELETE
TRIM = DELTA_TRIM
RESCALE = DELTA_RESCALE
INVALID = DELTA_INVALID

#: ``ACTION_NAMES[row["action"]]``
ACTION_NAMES = ("clear", "insert", "update", "delete", "trim", "rescale", "invalid")
#: ``STATUS_NAMES[frame["status"]]`` (as ``Book.status``)
STATUS_NAMES = ("empty", "live", "invalid")


cdef class DeltaRecorder:
    """Collects the deltas of the books it is attached to (see the module docstring)."""

    def __cinit__(self):
        self.buf.rows = NULL
        self.buf.frames = NULL
        self.buf.text = NULL
        self.buf.n_rows = self.buf.cap_rows = 0
        self.buf.n_frames = self.buf.cap_frames = 0
        self.buf.recv_ns = 0
        self.buf.recorded = 0
        self.buf.cur = -1

    def __init__(self, bint batch=False, Py_ssize_t capacity=1024, bint text=False):
        self.buf.batch = batch
        self._books = []
        self._book_ids = {}
        self._rows_arr = np.empty(0, dtype=DELTA_DTYPE)
        self._frames_arr = np.empty(0, dtype=FRAME_DTYPE)
        self._text_arr = np.zeros(0, dtype=TEXT_DTYPE) if text else None
        self._grow(capacity if capacity > 16 else 16, 16)

    cdef int _grow(self, Py_ssize_t rows, Py_ssize_t frames) except -1:
        cdef Py_ssize_t cap
        if rows > self.buf.cap_rows:
            cap = self.buf.cap_rows * 2 if self.buf.cap_rows else 1024
            while cap < rows:
                cap *= 2
            grown = np.empty(cap, dtype=DELTA_DTYPE)
            if self.buf.n_rows:
                memcpy(<void*><size_t>grown.ctypes.data, self.buf.rows,
                       <size_t>self.buf.n_rows * sizeof(DeltaRow))
            if self._text_arr is not None:
                text = np.zeros(cap, dtype=TEXT_DTYPE)  # no stale memory past a string
                if self.buf.n_rows:
                    memcpy(<void*><size_t>text.ctypes.data, self.buf.text,
                           <size_t>self.buf.n_rows * sizeof(TextRow))
                self._text_arr = text
                self.buf.text = <TextRow*><size_t>text.ctypes.data
            self._rows_arr = grown
            self.buf.rows = <DeltaRow*><size_t>grown.ctypes.data
            self.buf.cap_rows = cap
        if frames > self.buf.cap_frames:
            cap = self.buf.cap_frames * 2 if self.buf.cap_frames else 64
            while cap < frames:
                cap *= 2
            grown = np.empty(cap, dtype=FRAME_DTYPE)
            if self.buf.n_frames:
                memcpy(<void*><size_t>grown.ctypes.data, self.buf.frames,
                       <size_t>self.buf.n_frames * sizeof(FrameRow))
            self._frames_arr = grown
            self.buf.frames = <FrameRow*><size_t>grown.ctypes.data
            self.buf.cap_frames = cap
        return 0

    cdef int reserve(self, Py_ssize_t rows) except -1:
        """Room for one more frame of up to ``rows`` rows (called before a frame touches a level:
        the only place recording can fail, and then the frame is rejected untouched)."""
        if self.buf.batch:
            rows += self.buf.n_rows
        if rows > self.buf.cap_rows or self.buf.n_frames + 1 > self.buf.cap_frames:
            self._grow(rows, self.buf.n_frames + 1)
        return 0

    cdef int32_t book_index(self, str channel, str inst_id) except -1:
        key = (channel, inst_id)
        index = self._book_ids.get(key)
        if index is None:
            index = len(self._books)
            self._books.append(key)
            self._book_ids[key] = index
        return index

    @property
    def batch(self) -> bool:
        """Whether frames append (``True``) or each replaces the last."""
        return self.buf.batch

    @property
    def text(self) -> bool:
        """Whether rows keep the received strings (``DELTA_TEXT_DTYPE``)."""
        return self._text_arr is not None

    @property
    def recv_ns(self) -> int:
        """Receive time stamped on the next frames' rows (set it before ``apply``; 0 if unknown)."""
        return self.buf.recv_ns

    @recv_ns.setter
    def recv_ns(self, long long value):
        self.buf.recv_ns = value

    @property
    def books(self) -> list:
        """``(channel, instId)`` of each book index used in ``frames()["book"]``."""
        return list(self._books)

    @property
    def recorded(self) -> int:
        """Frames recorded since the recorder was made (``clear`` does not reset it): a caller
        that compares it before and after ``apply`` knows whether that call wrote a frame."""
        return self.buf.recorded

    @property
    def n_rows(self) -> int:
        return self.buf.n_rows

    @property
    def n_frames(self) -> int:
        return self.buf.n_frames

    def rows(self, bint copy=True):
        """The delta rows held (single mode: the last frame's). ``copy=False`` returns a view of
        the buffer: no allocation, but the next frame overwrites it. With ``text=True`` the rows
        are ``DELTA_TEXT_DTYPE`` (always a new array; ``copy=False`` gives ``DELTA_DTYPE``)."""
        cdef Py_ssize_t n = self.buf.n_rows
        view = self._rows_arr[:n]
        if self._text_arr is None or not copy:
            return view.copy() if copy else view
        out = np.empty(n, dtype=DELTA_TEXT_DTYPE)
        raw = out.view(np.uint8).reshape(n, DELTA_TEXT_DTYPE.itemsize)
        raw[:, :DELTA_DTYPE.itemsize] = view.view(np.uint8).reshape(n, DELTA_DTYPE.itemsize)
        raw[:, DELTA_DTYPE.itemsize:] = self._text_arr[:n].view(np.uint8).reshape(
            n, TEXT_DTYPE.itemsize)
        return out

    def frames(self, bint copy=True):
        """The frame rows held (single mode: at most one)."""
        view = self._frames_arr[:self.buf.n_frames]
        return view.copy() if copy else view

    def take(self):
        """``(frames, rows)`` copies of everything held, then ``clear()``: how a batch consumer
        drains the buffer in chunks."""
        out = (self.frames(), self.rows())
        self.clear()
        return out

    def clear(self):
        """Forget the rows and frames held (the book indexes stay)."""
        self.buf.n_rows = 0
        self.buf.n_frames = 0

    def __repr__(self):
        mode = "batch" if self.buf.batch else "single"
        return (f"<DeltaRecorder {mode} {self.buf.n_frames} frames {self.buf.n_rows} rows "
                f"{len(self._books)} books>")
