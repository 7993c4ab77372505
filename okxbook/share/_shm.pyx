# cython: language_level=3
"""The shared-memory book segment: its layout, the one writer and the readers, over a buffer that
``okxbook.share.segment`` maps (``multiprocessing.shared_memory``).

Layout (native byte order, every part 64-byte aligned)::

    header   magic "OKXBSHM1", version, slot count, levels per side, slot size, generation,
             writer pid, heartbeat interval / dead-after (ns); on its own cache line the
             heartbeat (writer's CLOCK_REALTIME ns) and the closed flag
    slot[i]  seqlock counter (own cache line); seqId, prevSeqId, exchange ts, recv ns, publish ns,
             updates, status, decimals, level counts, channel, instId; then ``levels`` bids and
             ``levels`` asks of (px ticks, sz lots, orders, extra lots), best first

Concurrency: one writer, any number of readers, no lock. Each slot is a seqlock (Boehm, "Can
seqlocks get along with programming language memory models?", MSPC 2012): the writer makes the
counter odd, fences (release), writes the slot, then stores the counter even with release order;
a reader loads the counter (acquire), copies, fences (acquire) and loads it again: an odd or
changed counter means the copy may be torn and is retried. The writer never waits; a reader retries
at most ``SPIN_LIMIT`` times, then asks whether the writer is alive (a writer killed in the middle
of a write leaves the counter odd forever: the reader says "dead" instead of spinning).

Why Cython with GCC's ``__atomic`` builtins (through ``cdef extern``) and not Python: the
ordering above needs compiler and CPU fences (on x86 only the compiler reorders plain stores, on
ARM the CPU does too), which Python and numpy cannot express; and the copy is a loop over levels
that must cost nanoseconds. The level data themselves are copied with plain loads and stores, as
the Linux kernel's seqlock readers do: a torn copy is always detected by the counter check.

Liveness: the writer stores the time into ``heartbeat`` on every publish and on its own timer
(``beat``). A reader calls the writer dead when the segment says closed, when the heartbeat is
older than ``dead_after``, or when the writer's pid no longer exists (checked at most once a
millisecond, so a SIGKILL is seen within about a millisecond of the process being reaped; a reader
in another PID namespace, e.g. another container sharing /dev/shm, passes ``check_pid=False`` and
relies on the heartbeat alone).
"""

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t, INT64_MIN, INT64_MAX
from libc.string cimport memcpy, memset, strncpy

cdef extern from "<string.h>":
    size_t strnlen(const char* s, size_t maxlen) noexcept nogil
from libc.math cimport NAN
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE

import numpy as np

from okxbook._book cimport (Book, DepthRow, book_n_bids, book_n_asks, book_seq_id,
                            book_is_live)
from okxbook._query cimport copy_exact, scale_rows

from okxbook._book import DEPTH_DTYPE as _DEPTH_DTYPE


#: Layout version in the header; a reader refuses any other.
VERSION = 1
#: Slot status codes, in the order of their numbers; a reader adds "dead" (writer gone or closed).
STATUSES = ("syncing", "live", "stale", "resyncing", "invalid")
DEAD = "dead"
cdef int STATUS_LIVE = 1
cdef int N_STATUSES = 5
# Reader retries of one read before it looks at the writer's liveness (a publish is about a
# microsecond; a counter still odd after this many tries is a writer stopped mid-write or slow).
cdef int SPIN_LIMIT = 2000
cdef int64_t PID_CHECK_NS = 1_000_000

HEADER_SIZE = sizeof(shm_header)
SLOT_HEAD_SIZE = sizeof(shm_slot)
LEVEL_SIZE = sizeof(shm_level)


def slot_size(int levels) -> int:
    """Bytes of one slot holding ``levels`` a side (a multiple of 64)."""
    cdef size_t n = sizeof(shm_slot) + 2 * <size_t>levels * sizeof(shm_level)
    return <Py_ssize_t>((n + 63) & ~<size_t>63)


def segment_size(int n_slots, int levels) -> int:
    """Bytes of a segment with ``n_slots`` books of ``levels`` a side."""
    return sizeof(shm_header) + n_slots * slot_size(levels)


cdef inline shm_slot* slot_at(unsigned char* base, Py_ssize_t i) noexcept nogil:
    cdef shm_header* h = <shm_header*>base
    return <shm_slot*>(base + sizeof(shm_header) + <size_t>i * h.slot_size)


cdef inline shm_level* bids_of(shm_slot* s) noexcept nogil:
    return <shm_level*>(<unsigned char*>s + sizeof(shm_slot))


cdef inline shm_level* asks_of(shm_slot* s, uint32_t levels) noexcept nogil:
    return bids_of(s) + levels


cdef class ShmWriter:
    """Lays out a segment in ``buf`` (zeroed, writable) and publishes books into its slots.

    ``keys``: the ``(channel, instId)`` of each slot, in order. Only this object writes the
    segment; ``publish`` and ``set_status`` never wait for anything."""

    cdef unsigned char[::1] _buf
    cdef unsigned char* _base
    cdef shm_header* _h
    cdef readonly int n_slots
    cdef readonly int levels
    cdef readonly uint64_t generation

    def __init__(self, unsigned char[::1] buf not None, keys, int levels, int64_t pid,
                 uint64_t generation, double heartbeat_interval=0.1, double dead_after=1.0):
        keys = list(keys)
        if levels < 1:
            raise ValueError("levels must be >= 1")
        if buf.shape[0] < segment_size(len(keys), levels):
            raise ValueError("buffer too small for the segment")
        self._buf = buf
        self._base = &buf[0]
        self._h = <shm_header*>self._base
        self.n_slots = len(keys)
        self.levels = levels
        self.generation = generation
        memset(self._base, 0, segment_size(len(keys), levels))
        cdef shm_header* h = self._h
        h.version = VERSION
        h.header_size = sizeof(shm_header)
        h.n_slots = self.n_slots
        h.levels = levels
        h.slot_size = slot_size(levels)
        h.generation = generation
        h.writer_pid = pid
        h.created_ns = now_ns()
        h.heartbeat_interval_ns = <int64_t>(heartbeat_interval * 1e9)
        h.dead_after_ns = <int64_t>(dead_after * 1e9)
        h.heartbeat_ns = now_ns()
        cdef shm_slot* s
        cdef bytes ch, inst
        for i, (channel, inst_id) in enumerate(keys):
            s = slot_at(self._base, i)
            ch = channel.encode()
            inst = inst_id.encode()
            if len(ch) >= 32 or len(inst) >= 64:
                raise ValueError(f"key too long for a slot: {channel} {inst_id}")
            strncpy(s.channel, ch, 32)
            strncpy(s.inst_id, inst, 64)
            s.seq_id = -1
            s.prev_seq_id = -1
        # The magic last, with release order: a reader that sees it sees the whole layout.
        store_release(&h.magic, SHM_MAGIC)

    cpdef void publish(self, Py_ssize_t slot, Book book, int status, int64_t recv_ns) except *:
        """Copy ``book`` (its best ``levels`` a side, seqId, ts) into ``slot`` with ``status``
        (an index into ``STATUSES``; "live" is stored only for a valid book)."""
        if self._base == NULL:
            raise ValueError("the writer is closed")
        if slot < 0 or slot >= self.n_slots:
            raise IndexError("slot out of range")
        if book is None:
            raise TypeError("book must be a Book")
        if status < 0 or status >= N_STATUSES:
            raise ValueError("unknown status")
        cdef shm_slot* s = slot_at(self._base, slot)
        cdef uint32_t levels = self._h.levels
        cdef Py_ssize_t nb = book_n_bids(book), na = book_n_asks(book)
        cdef int64_t t = now_ns()
        if nb > levels:
            nb = levels
        if na > levels:
            na = levels
        if status == STATUS_LIVE and not book_is_live(book):
            status = 4
        cdef uint64_t seq = s.seq
        store_relaxed(&s.seq, seq + 1)
        fence_release()     # the odd counter is visible before any byte of the slot changes
        copy_exact(book, 1, nb, &bids_of(s)[0].px, 4)
        copy_exact(book, -1, na, &asks_of(s, levels)[0].px, 4)
        s.n_bids = <int32_t>nb
        s.n_asks = <int32_t>na
        s.seq_id = book_seq_id(book)
        s.prev_seq_id = book.prev_seq_id
        s.ts_ms = book.ts_ms
        s.recv_ns = recv_ns
        s.published_ns = t
        s.updates += 1
        s.status = status
        s.px_decimals = book.px_decimals
        s.sz_decimals = book.sz_decimals
        s.depth = book.depth
        store_release(&s.seq, seq + 2)
        store_relaxed(&self._h.heartbeat_ns, <uint64_t>t)

    cpdef void set_status(self, Py_ssize_t slot, int status) except *:
        """Change only the status of ``slot`` (e.g. the feed took the book out of live)."""
        if self._base == NULL:
            raise ValueError("the writer is closed")
        if slot < 0 or slot >= self.n_slots:
            raise IndexError("slot out of range")
        if status < 0 or status >= N_STATUSES:
            raise ValueError("unknown status")
        cdef shm_slot* s = slot_at(self._base, slot)
        cdef uint64_t seq = s.seq
        store_relaxed(&s.seq, seq + 1)
        fence_release()
        s.status = status
        store_release(&s.seq, seq + 2)

    def beat(self):
        """The heartbeat: readers call the writer dead once it is older than ``dead_after``."""
        if self._base == NULL:
            raise ValueError("the writer is closed")
        store_relaxed(&self._h.beats, self._h.beats + 1)
        store_release(&self._h.heartbeat_ns, <uint64_t>now_ns())

    def close(self):
        """Say the writer is gone (readers answer "dead" from now on) and release the buffer."""
        if self._base != NULL:
            store_release(&self._h.closed, 1)
            self._base = NULL
            self._h = NULL
            self._buf = None


cdef class ShmReader:
    """Reads a segment laid out by ``ShmWriter`` (``buf`` is the mapped segment; attributes in
    ``_shm.pxd``)."""

    def __init__(self, unsigned char[::1] buf not None, bint check_pid=True):
        if <size_t>buf.shape[0] < sizeof(shm_header):
            raise ValueError("not an okxbook segment (too small)")
        self._buf = buf
        self._base = &self._buf[0]
        self._h = <shm_header*>self._base
        if load_acquire(&self._h.magic) != SHM_MAGIC:
            raise ValueError("not an okxbook segment (no magic: not one, or not laid out yet)")
        if self._h.version != VERSION or self._h.header_size != sizeof(shm_header):
            raise ValueError(f"okxbook segment layout {self._h.version}, this reader reads "
                             f"{VERSION}")
        if buf.shape[0] < segment_size(self._h.n_slots, self._h.levels):
            raise ValueError("okxbook segment shorter than its header says")
        self.n_slots = self._h.n_slots
        self.levels = self._h.levels
        self.generation = self._h.generation
        self.writer_pid = self._h.writer_pid
        self._check_pid = check_pid

    def keys(self):
        """The ``(channel, instId)`` of each slot, in slot order."""
        cdef shm_slot* s
        out = []
        for i in range(self.n_slots):
            s = slot_at(self._base, i)
            out.append((s.channel[:strnlen(s.channel, 32)].decode(),
                        s.inst_id[:strnlen(s.inst_id, 64)].decode()))
        return out

    cdef bint _writer_alive(self) noexcept:
        cdef int64_t now = now_ns()
        cdef shm_header* h = self._h
        if load_acquire(&h.closed):
            return False
        if now - <int64_t>load_acquire(&h.heartbeat_ns) > h.dead_after_ns:
            return False
        if self._check_pid and not self._pid_gone and now - self._pid_checked_ns > PID_CHECK_NS:
            self._pid_checked_ns = now
            self._pid_gone = not pid_alive(h.writer_pid)
        return not self._pid_gone

    def writer_alive(self) -> bool:
        """The writer has not closed, its heartbeat is recent and its process exists."""
        return self._writer_alive()

    def heartbeat_age(self) -> float:
        """Seconds since the writer's last publish or heartbeat."""
        return (now_ns() - <int64_t>load_acquire(&self._h.heartbeat_ns)) / 1e9

    def book(self, Py_ssize_t slot):
        """The reader of one slot."""
        if slot < 0 or slot >= self.n_slots:
            raise IndexError("slot out of range")
        cdef SharedBook b = SharedBook.__new__(SharedBook)
        b._reader = self
        b._slot = slot_at(self._base, slot)
        b.channel, b.inst_id = self.keys()[slot]
        return b

    def close(self):
        self._base = NULL
        self._h = NULL
        self._buf = None


if _DEPTH_DTYPE.itemsize != sizeof(DepthRow):
    raise ImportError("okxbook.share._shm: DepthRow does not match DEPTH_DTYPE")

cdef double[19] POW10F
cdef int _k
POW10F[0] = 1.0
for _k in range(1, 19):
    POW10F[_k] = POW10F[_k - 1] * 10.0


cdef class SharedBook:
    """One published book, read from another process. Every read is one seqlock copy: what it
    returns belongs to one publish of the writer (never torn). ``status`` is the writer's status
    for the book, or "dead" when the writer is gone: never trade on anything but "live".
    Cython code reads it without Python objects through ``read_top`` (see ``_shm.pxd``)."""

    def __init__(self, *args, **kwargs):
        raise TypeError("SharedBook comes from SharedBooks.book(channel, inst_id)")

    cdef int _check(self) except -1:
        if self._reader._base == NULL:
            raise ValueError("the shared segment is closed")
        return 0

    cdef bint _begin(self, uint64_t* seq, int* spins) noexcept:
        """Wait (briefly) for an even counter; False when the writer is gone while odd."""
        while True:
            seq[0] = load_acquire(&self._slot.seq)
            if not seq[0] & 1:
                return True
            spins[0] += 1
            if spins[0] % SPIN_LIMIT == 0 and not self._reader._writer_alive():
                return False
            cpu_relax()

    cdef bint _end(self, uint64_t seq, int* spins) noexcept:
        fence_acquire()
        if load_relaxed(&self._slot.seq) == seq:
            return True
        spins[0] += 1
        self.retries += 1
        return False

    cdef str _status(self, int code):
        if not self._reader._writer_alive():
            return DEAD
        return STATUSES[code] if 0 <= code < N_STATUSES else DEAD

    cdef int read_top(self, ShmTop* out) noexcept:
        """C-level ``top_ticks()`` with the book's exchange ts, receive time and decimals, from
        one publish, into ``out``; returns the status code (``out.status``: an index into
        ``STATUSES``, or -1 when the writer is gone or the segment closed: then, if no publish
        could be read, seqId -1 and both sides empty). No Python object."""
        cdef uint64_t seq
        cdef int spins = 0
        cdef shm_level b, a
        cdef shm_slot* s = self._slot
        if self._reader._base == NULL:
            return dead_top(out)
        while True:
            if not self._begin(&seq, &spins):
                return dead_top(out)
            out.status = s.status
            out.seq_id = s.seq_id
            out.ts_ms = s.ts_ms
            out.recv_ns = s.recv_ns
            out.px_decimals = s.px_decimals
            out.sz_decimals = s.sz_decimals
            out.n_bids = s.n_bids
            out.n_asks = s.n_asks
            b = bids_of(s)[0]
            a = asks_of(s, self._reader._h.levels)[0]
            if self._end(seq, &spins):
                break
        out.bid_ticks = b.px if out.n_bids else INT64_MIN
        out.bid_lots = b.sz if out.n_bids else 0
        out.ask_ticks = a.px if out.n_asks else INT64_MAX
        out.ask_lots = a.sz if out.n_asks else 0
        if not self._reader._writer_alive() or not 0 <= out.status < N_STATUSES:
            out.status = -1
        return out.status

    def top(self):
        """``(status, seq_id, bid_px, bid_sz, ask_px, ask_sz)`` from one publish; prices and
        sizes NaN on an empty side. O(1)."""
        self._check()
        cdef ShmTop t
        self.read_top(&t)
        if not 0 <= t.px_decimals <= 18 or not 0 <= t.sz_decimals <= 18:
            return (DEAD, -1, NAN, NAN, NAN, NAN)
        cdef double px_div = POW10F[t.px_decimals], sz_div = POW10F[t.sz_decimals]
        return (STATUSES[t.status] if t.status >= 0 else DEAD, t.seq_id,
                t.bid_ticks / px_div if t.n_bids else NAN,
                t.bid_lots / sz_div if t.n_bids else NAN,
                t.ask_ticks / px_div if t.n_asks else NAN,
                t.ask_lots / sz_div if t.n_asks else NAN)

    def top_ticks(self):
        """``(status, seq_id, bid_ticks, bid_lots, ask_ticks, ask_lots)``: exact, with
        ``NO_BID``/``NO_ASK`` and 0 lots on an empty side. O(1)."""
        self._check()
        cdef ShmTop t
        self.read_top(&t)
        return (STATUSES[t.status] if t.status >= 0 else DEAD, t.seq_id,
                t.bid_ticks, t.bid_lots, t.ask_ticks, t.ask_lots)

    def info(self):
        """``dict``: status, seq_id, prev_seq_id, ts_ms (exchange), recv_ns, published_ns,
        updates, px_decimals, sz_decimals, n_bids, n_asks, from one publish."""
        self._check()
        cdef uint64_t seq
        cdef int spins = 0
        cdef shm_slot copy
        while True:
            if not self._begin(&seq, &spins):
                return {"status": DEAD}
            memcpy(&copy, self._slot, sizeof(shm_slot))
            if self._end(seq, &spins):
                break
        return {"status": self._status(copy.status), "seq_id": copy.seq_id,
                "prev_seq_id": copy.prev_seq_id, "ts_ms": copy.ts_ms, "recv_ns": copy.recv_ns,
                "published_ns": copy.published_ns, "updates": copy.updates,
                "px_decimals": copy.px_decimals, "sz_decimals": copy.sz_decimals,
                "n_bids": copy.n_bids, "n_asks": copy.n_asks}

    @property
    def status(self) -> str:
        return self.info()["status"]

    @property
    def seq_id(self) -> int:
        return self.top_ticks()[1]

    def levels(self, Py_ssize_t n=25):
        """``(status, seq_id, ts_ms, recv_ns, bids, asks)`` from one publish: the best ``n``
        levels a side as ``DEPTH_DTYPE`` arrays (best first; copies the caller owns). O(n).
        ``levels_into`` does the same into arrays you keep (no allocation)."""
        self._check()
        if n < 0:
            raise ValueError("n must be >= 0")
        if n > self._reader._h.levels:
            n = self._reader._h.levels
        both = np.empty(2 * n, dtype=_DEPTH_DTYPE)   # one allocation for both sides
        cdef DepthRow* rows = <DepthRow*>rows_of(both, 2 * n)
        status, seq_id, ts_ms, recv_ns, nb, na = self._copy(rows, n, rows + n, n)
        return (status, seq_id, ts_ms, recv_ns, both[:nb], both[n:n + na])

    def levels_into(self, bids, asks):
        """Copy the best ``len(bids)`` bids and ``len(asks)`` asks into those ``DEPTH_DTYPE``
        arrays (C-contiguous, writable) from one publish; returns ``(status, seq_id, ts_ms,
        recv_ns, n_bids, n_asks)``: rows past ``n_bids``/``n_asks`` are left as they were."""
        self._check()
        cdef Py_ssize_t nb = len(bids), na = len(asks)
        cdef DepthRow* rb = <DepthRow*>rows_of(bids, nb)
        cdef DepthRow* ra = <DepthRow*>rows_of(asks, na)
        return self._copy(rb, nb, ra, na)

    cdef tuple _copy(self, DepthRow* rb, Py_ssize_t cap_b, DepthRow* ra, Py_ssize_t cap_a):
        cdef uint32_t cap = self._reader._h.levels
        cdef shm_slot* s = self._slot
        cdef uint64_t seq
        cdef int spins = 0, status = 0, pd = 0, sd = 0
        cdef int64_t seq_id = -1, ts_ms = 0, recv_ns = 0
        cdef Py_ssize_t nb = 0, na = 0
        if cap_b > cap:
            cap_b = cap
        if cap_a > cap:
            cap_a = cap
        while True:
            if not self._begin(&seq, &spins):
                return (DEAD, -1, 0, 0, 0, 0)
            status = s.status
            seq_id = s.seq_id
            ts_ms = s.ts_ms
            recv_ns = s.recv_ns
            pd = s.px_decimals
            sd = s.sz_decimals
            nb = s.n_bids       # a torn read may show any value: clamp, the check below retries
            na = s.n_asks
            nb = 0 if nb < 0 else (cap_b if nb > cap_b else nb)
            na = 0 if na < 0 else (cap_a if na > cap_a else na)
            copy_levels(bids_of(s), nb, rb)
            copy_levels(asks_of(s, cap), na, ra)
            if self._end(seq, &spins):
                break
        if not 0 <= pd <= 18 or not 0 <= sd <= 18:
            return (DEAD, -1, 0, 0, 0, 0)
        scale_rows(rb, nb, POW10F[pd], POW10F[sd])
        scale_rows(ra, na, POW10F[pd], POW10F[sd])
        return (self._status(status), seq_id, ts_ms, recv_ns, nb, na)


cdef inline int dead_top(ShmTop* out) noexcept:
    """``out`` as ``read_top`` leaves it when no publish could be read: status -1, seqId -1,
    both sides empty (``NO_BID``/``NO_ASK``, 0 lots)."""
    out.status = -1
    out.seq_id = -1
    out.ts_ms = out.recv_ns = 0
    out.n_bids = out.n_asks = 0
    out.px_decimals = out.sz_decimals = 0
    out.bid_ticks = INT64_MIN
    out.ask_ticks = INT64_MAX
    out.bid_lots = out.ask_lots = 0
    return -1


cdef void* rows_of(object arr, Py_ssize_t n) except? NULL:
    """The data of a C-contiguous, writable ``DEPTH_DTYPE`` array of ``n`` rows (the pointer
    stays valid while ``arr`` lives)."""
    if arr.dtype != _DEPTH_DTYPE:
        raise TypeError("levels arrays must have dtype okxbook.DEPTH_DTYPE")
    cdef Py_buffer view
    PyObject_GetBuffer(arr, &view, PyBUF_SIMPLE | PyBUF_WRITABLE)  # raises unless contiguous
    cdef void* p = view.buf
    cdef Py_ssize_t size = view.len
    PyBuffer_Release(&view)
    if size != n * <Py_ssize_t>sizeof(DepthRow):
        raise ValueError("levels array size does not match its length")
    return p


cdef inline void copy_levels(const shm_level* src, Py_ssize_t n, DepthRow* out) noexcept:
    cdef Py_ssize_t j
    for j in range(n):
        out[j].px_ticks = src[j].px
        out[j].sz_lots = src[j].sz
        out[j].orders = src[j].orders
        out[j].extra_lots = src[j].extra
