# cython: language_level=3
"""``Books``: every book of a session, and the single entry point that turns one raw WebSocket frame
into an updated book. Benchmarks, replay and the feeder all go through ``Books.apply``.

It owns the frame scratch space, finds the book a frame is for, creates books on their first
snapshot, and hands non-book frames (acks, errors, notices, pong) back as events.

Finding the book: the dict is keyed by ``b"channel\0instId"``, and reaching it costs a new bytes
object and its SipHash every frame (about 500 instructions, 5 % of an update under callgrind). A
run of frames for one instrument is matched against the last book; interleaved instruments are
matched in a small direct-mapped cache (``BOOK_CACHE`` entries, by a cheap hash of the name's
bytes) filled from the dict, so a session of a few dozen books reaches the dict only on a miss.
The cache holds only books the dict holds and is emptied when a book is removed.
"""

from libc.stdint cimport uint64_t
from libc.string cimport memcmp, memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_Check
from cpython.buffer cimport (PyObject_CheckBuffer, PyObject_GetBuffer, PyBuffer_Release,
                             PyBUF_C_CONTIGUOUS, PyBUF_FORMAT)

from okxbook._wire cimport (Scratch, scan_frame, scratch_free, KIND_BOOK, KIND_PONG, KIND_OTHER,
                            ACTION_SNAPSHOT)
from okxbook._book cimport Book
from okxbook._deltas cimport DeltaRecorder
from okxbook._sbe cimport is_sbe, sbe_decode

from okxbook._book import CHANNELS
from okxbook.errors import (FrameError, MissingSnapshotError, UnknownChannelError,
                            UnknownInstrumentError)
from okxbook.events import INST_ID_CODE_EVENT as _INST_ID_CODE_EVENT
from okxbook.events import PONG, OtherEvent, parse_event

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL


cdef enum:
    BOOK_CACHE = 64            # entries of the book cache (a power of two)


cdef inline uint64_t word_at(const char* p, Py_ssize_t n) noexcept nogil:
    """Up to 8 bytes at ``p`` as one word (``n`` readable), zero-padded."""
    cdef uint64_t w = 0
    if n <= 0:
        return 0
    if n >= 8:
        memcpy(&w, p, 8)
    else:
        memcpy(&w, p, <size_t>n)
    return w


cdef inline Py_ssize_t cache_slot(const Scratch* s) noexcept nogil:
    """The book cache entry of the frame's (channel, instId): a hash of both lengths and of the
    first and last 8 bytes of each (instIds differ in their first bytes, channels in their
    lengths and ends); a collision only means a dict lookup."""
    cdef Py_ssize_t ni = s.inst_len, nc = s.channel_len
    cdef uint64_t h = <uint64_t>(ni * 131 + nc) * 0x9E3779B97F4A7C15ULL
    h ^= word_at(s.inst, ni) * 0xC2B2AE3D27D4EB4FULL
    h ^= (word_at(s.inst + ni - 8, 8) if ni > 8 else 0) * 0x165667B19E3779F9ULL
    h ^= word_at(s.channel + nc - 8, 8) if nc > 8 else word_at(s.channel, nc)
    h ^= h >> 29
    h *= 0xBF58476D1CE4E5B9ULL
    return <Py_ssize_t>(h >> 58)       # the top 6 bits: 0 .. BOOK_CACHE - 1


cdef inline bint key_matches(bytes key, const Scratch* s) noexcept:
    """``key`` (``b"channel\0instId"``) names the frame's book."""
    cdef const char* k = PyBytes_AS_STRING(key)
    return (PyBytes_GET_SIZE(key) == s.channel_len + 1 + s.inst_len
            and memcmp(k, s.channel, <size_t>s.channel_len) == 0 and k[s.channel_len] == 0
            and memcmp(k + s.channel_len + 1, s.inst, <size_t>s.inst_len) == 0)


cdef bint is_byte_format(const char* f) noexcept:
    """A struct-module format of one byte per item: "B", "b", "c" (optionally with a byte-order
    prefix), or none at all (plain bytes)."""
    if f == NULL or f[0] == 0:
        return True
    if f[0] == c'@' or f[0] == c'=' or f[0] == c'<' or f[0] == c'>' or f[0] == c'!':
        f += 1
    return (f[0] == c'B' or f[0] == c'b' or f[0] == c'c') and f[1] == 0


cdef int decimals_of(str value) except -1:
    """Decimals of an OKX increment such as tickSz "0.01" -> 2, "1" -> 0, "0.50" -> 1."""
    return len(value.strip().partition(".")[2].rstrip("0"))


cdef class Books:
    """All books of a session, keyed by ``(channel, instId)``.

    ``verify_checksum`` checks every non-zero ``checksum`` (on by default; OKX has sent 0 since
    2026-06-23, which always counts as absent). ``apply(frame)`` takes one raw frame as ``bytes``,
    ``str``, ``bytearray`` or ``memoryview`` and returns the ``Book`` it updated, or an ``Event``.
    A frame is JSON text or one of OKX's binary SBE frames (docs/protocol.md §11; told apart by
    the header's NUL bytes), whose instruments come by instIdCode (``set_inst_id_code``).
    """

    def __cinit__(self):
        self._s.levels = NULL
        self._s.cap_levels = 0
        self._s.n_levels = 0

    def __init__(self, bint verify_checksum=True):
        self._books = {}
        self._decimals = {}
        self.verify_checksum = verify_checksum
        self._last_key = None
        self._last = None
        self._cache = [None] * BOOK_CACHE
        self._inst_codes = {}
        self._last_code_inst = None

    def __dealloc__(self):
        scratch_free(&self._s)

    # ---------------------------------------------------------------- the entry point

    cpdef object apply(self, object frame):
        """Apply one raw frame. Returns the ``Book`` it touched, or an ``Event`` for a non-book
        frame. Raises ``FrameError`` (no book changed), ``SequenceError`` or ``ChecksumError``
        (that book is invalid until its next snapshot). A frame is ``bytes``, ``str`` or any
        contiguous buffer of bytes (``bytearray``, ``memoryview``, a uint8 array); a buffer of
        anything else (wider items, several dimensions, gaps, released) is a ``FrameError``, and an
        object that is no buffer at all (``None``, an int, a list ...) a ``TypeError``."""
        cdef const char* buf
        cdef Py_ssize_t n
        cdef Py_buffer view
        if type(frame) is bytes:
            return self.apply_raw(PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame), frame)
        if PyUnicode_Check(frame):
            try:
                buf = PyUnicode_AsUTF8AndSize(frame, &n)
            except UnicodeEncodeError as exc:
                raise FrameError(f"text frame is not encodable as UTF-8 ({exc.reason})",
                                 exc.start) from None
            return self.apply_raw(buf, n, frame)
        if not PyObject_CheckBuffer(frame):
            raise TypeError("Books.apply takes a frame as bytes, str or a bytes buffer, not "
                            f"{type(frame).__name__}")
        try:
            PyObject_GetBuffer(frame, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
        except (BufferError, ValueError, TypeError) as exc:
            raise FrameError(f"frame buffer not readable as bytes ({exc})") from None
        try:
            if view.itemsize != 1 or view.ndim > 1 or not is_byte_format(view.format):
                raise FrameError("frame buffer is not a flat array of bytes (format "
                                 f"{(view.format or b'B').decode('ascii', 'replace')!r}, "
                                 f"{view.ndim} dimensions)")
            return self.apply_raw(<const char*>view.buf, view.len, frame)
        finally:
            PyBuffer_Release(&view)

    cdef object apply_raw(self, const char* buf, Py_ssize_t n, object frame):
        """``apply`` for Cython callers holding a pointer (e.g. a picows frame); ``frame`` is only
        used to decode event frames and may be None, in which case the bytes are copied."""
        cdef Scratch* s = &self._s
        cdef Book book
        self.frames += 1
        if is_sbe(buf, n):
            if sbe_decode(s, &self._sbe, buf, n) < 0:
                if s.out_of_memory:
                    raise MemoryError()
                # Name the book when the code was read: it may have lost this frame's data.
                inst = self._inst_codes.get(self._sbe.inst_id_code) if self._sbe.has_code else None
                raise FrameError(s.error.decode("ascii"), s.error_offset,
                                 channel=self._span(s.channel, s.channel_len),
                                 inst_id=inst.decode() if inst is not None else None)
            self._sbe_inst(s)
        elif scan_frame(s, buf, n) < 0:
            if s.out_of_memory:
                raise MemoryError()
            raise FrameError(s.error.decode("ascii"), s.error_offset,
                             channel=self._span(s.channel, s.channel_len),
                             inst_id=self._span(s.inst, s.inst_len))
        if s.kind == KIND_BOOK:
            book = self._find(s)
            if book is not self._new:
                book.apply_scratch(s, self.verify_checksum, self._buf)
                return book
            # A book seen for the first time is registered only once its first frame was not
            # rejected: a FrameError must leave Books exactly as it was.
            self._new = None
            try:
                book.apply_scratch(s, self.verify_checksum, self._buf)
            except FrameError:
                self._last_key = None
                self._last = None
                raise
            finally:
                if self._last is book:
                    self._books[self._last_key] = book
            return book
        if s.kind == KIND_OTHER:
            channel = self._span(s.channel, s.channel_len)
            raise UnknownChannelError(f"okxbook keeps no book for channel {channel!r}",
                                      channel=channel, inst_id=self._span(s.inst, s.inst_len))
        self.events += 1
        if s.kind == KIND_PONG:
            return PONG
        if frame is None or not isinstance(frame, (bytes, str)):
            frame = PyBytes_FromStringAndSize(buf, n)
        event = parse_event(frame)
        if type(event) is OtherEvent and event.event == _INST_ID_CODE_EVENT:
            self._learn_code(event.raw)
        return event

    cdef object _learn_code(self, dict raw):
        inst, code = raw.get("instId"), raw.get("instIdCode")
        if not isinstance(inst, str) or type(code) is not int or not -2**63 <= code < 2**63:
            raise FrameError("okxbook-instIdCode event needs a string instId and an int64 code")
        self.set_inst_id_code(code, inst)

    cdef int _sbe_inst(self, Scratch* s) except -1:
        """Point the scratch's instId at the instrument of the frame's instIdCode."""
        cdef int64_t code = self._sbe.inst_id_code
        if self._last_code_inst is None or code != self._last_code:
            inst = self._inst_codes.get(code)
            if inst is None:
                channel = self._span(s.channel, s.channel_len)
                if s.kind != KIND_BOOK:
                    raise UnknownChannelError(f"okxbook keeps no book for channel {channel!r}",
                                              channel=channel)
                raise UnknownInstrumentError(code, channel)
            self._last_code = code
            self._last_code_inst = inst
        s.inst = PyBytes_AS_STRING(self._last_code_inst)
        s.inst_len = PyBytes_GET_SIZE(self._last_code_inst)
        self.last_ts_us = self._sbe.ts_us
        self.last_out_us = self._sbe.out_us
        return 0

    cdef object _span(self, const char* p, Py_ssize_t n):
        return p[:n].decode("utf-8", "replace") if p != NULL else None

    cdef Book _find(self, Scratch* s):
        cdef Py_ssize_t klen = s.channel_len + 1 + s.inst_len
        cdef Py_ssize_t slot
        cdef tuple entry
        if self._last_key is not None and key_matches(self._last_key, s):
            return self._last
        slot = cache_slot(s)
        entry = <tuple>self._cache[slot]
        if entry is not None and key_matches(<bytes>entry[0], s):
            self._last_key = <bytes>entry[0]
            self._last = <Book>entry[1]
            return self._last
        key = PyBytes_FromStringAndSize(NULL, klen)
        cdef char* w = PyBytes_AS_STRING(key)
        memcpy(w, s.channel, <size_t>s.channel_len)
        w[s.channel_len] = 0
        memcpy(w + s.channel_len + 1, s.inst, <size_t>s.inst_len)
        book = self._books.get(key)
        if book is None:
            book = self._create(s, key)
            self._new = book
        else:
            self._cache[slot] = (key, book)
        self._last_key = key
        self._last = book
        return book

    cdef Book _create(self, Scratch* s, bytes key):
        channel = self._span(s.channel, s.channel_len)
        inst_id = self._span(s.inst, s.inst_len)
        spec = CHANNELS.get(channel)
        cdef bint resets = (s.action == ACTION_SNAPSHOT or (spec is not None and spec[1])
                            or (s.items[0].has_prev and s.items[0].prev == -1))
        book = self._new_book(channel, inst_id)   # raises UnknownChannelError
        if not resets:
            raise MissingSnapshotError("update before any snapshot", channel=channel,
                                       inst_id=inst_id,
                                       seq_id=s.items[0].seq if s.items[0].has_seq else None)
        return book

    cdef Book _new_book(self, str channel, str inst_id):
        px_dec, sz_dec = self._decimals.get(inst_id, (0, 0))
        book = Book(channel, inst_id, px_dec, sz_dec)
        if self._recorder is not None:
            book.record_deltas(self._recorder)
        return book

    def record_deltas(self, DeltaRecorder recorder):
        """Record the deltas of every book, now and created later, into ``recorder`` (None
        stops); see ``okxbook.DeltaRecorder``."""
        self._recorder = recorder
        for book in self._books.values():
            book.record_deltas(recorder)

    @property
    def recorder(self):
        """The ``DeltaRecorder`` attached by ``record_deltas``, or None."""
        return self._recorder

    # ---------------------------------------------------------------- managing books

    def set_instrument(self, str inst_id not None, str tick_sz not None, str lot_sz not None):
        """Give an instrument's ``tickSz``/``lotSz`` (from ``GET /api/v5/public/instruments``) so
        its books use at least those decimals from the start, instead of learning them."""
        self._decimals[inst_id] = (decimals_of(tick_sz), decimals_of(lot_sz))

    def set_inst_id_code(self, code, str inst_id not None):
        """Map an ``instIdCode`` (``GET /api/v5/public/instruments``) to its instId: SBE frames name
        instruments only by code. A relisted instrument gets a new code: call again (the old code
        keeps its mapping until ``forget_inst_id_code``). An SBE frame with a code never given is
        an ``UnknownInstrumentError`` (no book changes)."""
        cdef int64_t c = code
        self._inst_codes[c] = inst_id.encode()
        self._last_code_inst = None

    def forget_inst_id_code(self, code):
        """Drop an ``instIdCode`` mapping (an instrument delisted or relisted under a new code)."""
        cdef int64_t c = code
        self._inst_codes.pop(c, None)
        self._last_code_inst = None

    def inst_id_codes(self):
        """Every instIdCode mapping, ``{code: instId}`` (a copy)."""
        return {code: inst.decode() for code, inst in self._inst_codes.items()}

    def inst_id_of(self, code):
        """The instId mapped to ``code``, or None."""
        cdef int64_t c = code
        inst = self._inst_codes.get(c)
        return None if inst is None else inst.decode()

    def book(self, str channel not None, str inst_id not None) -> Book:
        """The book for ``(channel, inst_id)``, created empty if there is none yet (a feeder
        registers the books it subscribes to this way, so their status can be read at once)."""
        key = channel.encode() + b"\0" + inst_id.encode()
        book = self._books.get(key)
        if book is None:
            book = self._new_book(channel, inst_id)
            self._books[key] = book
        return book

    def get(self, str channel not None, str inst_id not None):
        """The book for ``(channel, inst_id)``, or None."""
        return self._books.get(channel.encode() + b"\0" + inst_id.encode())

    def __getitem__(self, key):
        channel, inst_id = key
        book = self.get(channel, inst_id)
        if book is None:
            raise KeyError(key)
        return book

    def __contains__(self, key):
        channel, inst_id = key
        return self.get(channel, inst_id) is not None

    def remove(self, str channel not None, str inst_id not None):
        """Forget a book (e.g. after unsubscribing)."""
        self._books.pop(channel.encode() + b"\0" + inst_id.encode(), None)
        self._last_key = None
        self._last = None
        self._cache = [None] * BOOK_CACHE

    def __iter__(self):
        return iter(list(self._books.values()))

    def __len__(self):
        return len(self._books)

    def __repr__(self):
        return f"<Books {len(self._books)} books, {self.frames} frames>"
