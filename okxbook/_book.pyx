# cython: language_level=3
"""One OKX price-level book (one channel, one instId): applies scanned frames, keeps the seqId chain
and the checksum, and answers top-of-book and depth questions.

Rules (docs/protocol.md §2, §4, §5):
- a snapshot (``action: snapshot``, or ``prevSeqId: -1``) replaces the book; image channels
  (``books5``, ``bbo-tbt``) replace it on every push;
- an update deletes a level on size "0" (a delete of a price we do not hold is counted, not an
  error: real ``books`` captures have hundreds), replaces an existing price, inserts a new one;
- ``prevSeqId == last seqId`` applies; an empty update with ``seqId == prevSeqId`` is a heartbeat;
  ``seqId < prevSeqId`` (with ``prevSeqId == last``) is the documented reset after maintenance;
  anything else is a gap: the book goes invalid and ``SequenceError`` is raised;
- a non-zero checksum that does not match goes invalid and raises ``ChecksumError``.
Invalid books are emptied and stay so until their next snapshot: they never answer with stale data.

Exact arithmetic: prices and sizes are int64 at one decimal scale per book, learnt from the strings
(the most decimals seen) or from instrument metadata; a frame that would need more decimals rescales
the book first. Everything that can fail is checked before the book is touched.
"""

from libc.stdint cimport int32_t, int64_t, uint64_t, INT64_MAX
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy
from libc.math cimport NAN

import numpy as np

from okxbook._level cimport (Level, Side, side_at, side_best, side_place, side_set, side_delete,
                             wide_t)
from okxbook._wire cimport (Scratch, Item, ACTION_NONE, ACTION_SNAPSHOT, ACTION_UPDATE)
from okxbook._checksum cimport book_checksum
from okxbook._deltas cimport (DeltaBuf, DeltaRecorder, delta_row, delta_level, delta_begin,
                              delta_end, delta_delete, DELTA_CLEAR, DELTA_INSERT, DELTA_UPDATE,
                              DELTA_TRIM, DELTA_RESCALE, DELTA_INVALID, DELTA_BOTH_SIDES)

from okxbook.errors import (ChecksumError, FrameError, MissingSnapshotError, SequenceError,
                            UnknownChannelError)

from okxbook import okx

# channel -> (published depth, image channel), from the one table of OKX facts (okxbook.okx).
CHANNELS = {name: (c.depth, c.image) for name, c in okx.CHANNELS.items()}

#: ``best_bid_ticks`` / ``best_ask_ticks`` of an empty side.
NO_BID = -(2 ** 63)
NO_ASK = 2 ** 63 - 1

#: One row of ``Book.bids()`` / ``Book.asks()``.
DEPTH_DTYPE = np.dtype([("px", "f8"), ("sz", "f8"), ("cum_sz", "f8"), ("px_ticks", "i8"),
                        ("sz_lots", "i8"), ("orders", "i8"), ("extra_lots", "i8")])

cdef int64_t[19] POW10
cdef int64_t[19] FITS           # FITS[k]: the largest magnitude that can be scaled by 10**k in int64
cdef int _k
POW10[0] = 1
for _k in range(1, 19):
    POW10[_k] = POW10[_k - 1] * 10
for _k in range(19):
    FITS[_k] = INT64_MAX // POW10[_k]

_STATUS = ("empty", "live", "invalid")


cdef inline int fits_scaled(int64_t v, int k) noexcept nogil:
    """-FITS[k] <= v <= FITS[k] in one unsigned compare (v + FITS[k] in 0 .. 2 FITS[k])."""
    return <uint64_t>v + <uint64_t>FITS[k] <= 2 * <uint64_t>FITS[k]


cdef inline bint scale_fits(int64_t v, int64_t f) noexcept nogil:
    cdef int64_t lim = INT64_MAX // f
    return -lim <= v <= lim


cdef bint side_scales(Side* side, int64_t fp, int64_t fs, bint apply) noexcept nogil:
    """Whether every level fits int64 once prices are multiplied by fp and sizes by fs; with
    ``apply``, multiply them (rare: only when a frame brings more decimals than the book had)."""
    cdef Py_ssize_t j
    cdef Level* lv
    for j in range(side.n):
        lv = side_at(side, j)
        if apply:
            lv.px *= fp
            lv.sz *= fs
            lv.extra *= fs
            side.key[j] *= fp
        elif not (scale_fits(lv.px, fp) and scale_fits(lv.sz, fs) and scale_fits(lv.extra, fs)):
            return False
    return True


cdef int reserve(Side* side, Py_ssize_t want) except -1:
    """Grow the pool and the key and slot buffers so ``want`` levels fit (bounded by the side's
    limit). The window is copied to the middle of the new buffers; the new slots are free, after
    the ones already there."""
    if want > side.limit:
        want = side.limit
    if want <= side.cap:
        return 0
    cdef Py_ssize_t cap = side.cap * 2 if side.cap else 64
    while cap < want:
        cap *= 2
    if cap > side.limit:
        cap = side.limit
    cdef Level* pool = <Level*>realloc(side.pool, <size_t>cap * sizeof(Level))
    if pool == NULL:
        raise MemoryError()
    side.pool = pool
    cdef int64_t* key_buf = <int64_t*>malloc(<size_t>(2 * cap) * sizeof(int64_t))
    cdef int32_t* slot_buf = <int32_t*>malloc(<size_t>(2 * cap) * sizeof(int32_t))
    if key_buf == NULL or slot_buf == NULL:
        free(key_buf)
        free(slot_buf)
        raise MemoryError()
    cdef Py_ssize_t off = cap >> 1, j
    if side.n:
        memcpy(&key_buf[off], side.key, <size_t>side.n * sizeof(int64_t))
    if side.cap:
        memcpy(&slot_buf[off], side.slot, <size_t>side.cap * sizeof(int32_t))
    for j in range(side.cap, cap):
        slot_buf[off + j] = <int32_t>j
    free(side.key_buf)
    free(side.slot_buf)
    side.key_buf = key_buf
    side.slot_buf = slot_buf
    side.off = off
    side.key = &key_buf[off]
    side.slot = &slot_buf[off]
    side.cap = cap
    return 0


cdef void side_copy(Side* dst, const Side* src) noexcept nogil:
    """Make ``dst`` hold ``src``'s levels, compacted into slots ``0 .. n - 1`` (capacity for them
    reserved); the other slots are free, in order."""
    cdef Py_ssize_t j
    if dst == src:
        return
    for j in range(src.n):
        dst.pool[j] = side_at(src, j)[0]
        dst.key[j] = src.key[j]
    for j in range(dst.cap):
        dst.slot[j] = <int32_t>j
    dst.n = src.n


cdef inline bint same_value(int64_t a, int a_dec, int64_t b, int b_dec) noexcept nogil:
    """a * 10**-a_dec == b * 10**-b_dec, exactly."""
    cdef int64_t f
    if a_dec == b_dec:
        return a == b
    if a_dec < b_dec:
        f = POW10[b_dec - a_dec]
        return scale_fits(a, f) and a * f == b
    f = POW10[a_dec - b_dec]
    return scale_fits(b, f) and b * f == a


cdef inline bint same_top(const Side* s, int64_t px, int px_dec, int now_px_dec, int64_t sz,
                          int sz_dec, int now_sz_dec) noexcept nogil:
    """Whether the side's best level is (px, sz) given at (px_dec, sz_dec); sz -1 = was empty."""
    if s.n == 0:
        return sz == -1
    if sz == -1:
        return False
    return (same_value(px, px_dec, side_best(s).px, now_px_dec)
            and same_value(sz, sz_dec, side_best(s).sz, now_sz_dec))


cdef inline void _record_set(DeltaBuf* rec, int side, int r, const Level* lv, int64_t prev_sz,
                             int64_t dropped_px) noexcept nogil:
    """The rows of one ``side_set`` result (see ``_level.side_set``)."""
    if r == 0:
        delta_level(rec, side, DELTA_UPDATE, lv, prev_sz)
    elif r == 1:
        delta_level(rec, side, DELTA_INSERT, lv, 0)
    elif r == 2:
        delta_row(rec, side, DELTA_TRIM, dropped_px, 0, prev_sz, 0, 0)
        delta_level(rec, side, DELTA_INSERT, lv, 0)


cdef class Book:
    """A price-level book for one ``(channel, instId)``. Usually made and fed by ``Books``."""

    def __cinit__(self):
        self._bids.pool = self._asks.pool = NULL
        self._bids.key = self._asks.key = self._bids.key_buf = self._asks.key_buf = NULL
        self._bids.slot = self._asks.slot = self._bids.slot_buf = self._asks.slot_buf = NULL
        self._bids.off = self._asks.off = 0
        self._bids.n = self._asks.n = self._bids.cap = self._asks.cap = 0
        self._bids.sign = 1
        self._asks.sign = -1
        self._rec = NULL

    def __init__(self, str channel not None, str inst_id not None, int px_decimals=0,
                 int sz_decimals=0):
        spec = CHANNELS.get(channel)
        if spec is None:
            raise UnknownChannelError(f"okxbook keeps no book for channel {channel!r}",
                                      channel=channel, inst_id=inst_id)
        self.channel = channel
        self.inst_id = inst_id
        self.depth, self.is_image = spec
        # Keep what OKX sends past the published depth, up to twice it, so a level that comes back
        # into view is not lost; beyond that the deepest is dropped (memory stays bounded).
        self._bids.limit = self._asks.limit = self.depth if self.is_image else 2 * self.depth
        if not (0 <= px_decimals <= 18 and 0 <= sz_decimals <= 18):
            raise ValueError("decimals must be within 0..18")
        self._min_px_decimals = px_decimals
        self._min_sz_decimals = sz_decimals
        self._set_scale(px_decimals, sz_decimals)
        self.seq_id = -1
        self.prev_seq_id = -1
        self._has_seq = False
        self._state = STATE_EMPTY
        self.invalid_reason = None

    def __dealloc__(self):
        free(self._bids.pool)
        free(self._asks.pool)
        free(self._bids.key_buf)
        free(self._asks.key_buf)
        free(self._bids.slot_buf)
        free(self._asks.slot_buf)

    # ---------------------------------------------------------------- applying frames (hot path)

    cdef void _set_scale(self, int px_dec, int sz_dec) noexcept:
        self.px_decimals = px_dec
        self.sz_decimals = sz_dec
        self._px_div = <double>POW10[px_dec]
        self._sz_div = <double>POW10[sz_dec]

    cdef void _clear(self) noexcept:
        self._bids.n = 0
        self._asks.n = 0

    def record_deltas(self, DeltaRecorder recorder):
        """Write what every frame changes into ``recorder`` (``okxbook.DeltaRecorder``) from now
        on; None stops recording (the default: then recording costs nothing)."""
        if recorder is None:
            self._rec = NULL
            self._recorder = None
            return
        self._rec_book = recorder.book_index(self.channel, self.inst_id)
        self._recorder = recorder
        self._rec = &recorder.buf

    @property
    def recorder(self):
        """The ``DeltaRecorder`` attached by ``record_deltas``, or None."""
        return self._recorder

    def snapshot_deltas(self, bint text=False):
        """The whole book (every level held, also those kept past ``depth``) as one snapshot frame
        of deltas: ``(frames, rows)`` as ``DeltaRecorder.take()`` gives them (CLEAR + INSERTs; an
        invalid book gives an INVALID row). What a publisher of periodic snapshots sends."""
        rec = DeltaRecorder(text=text)
        self._write_image(rec, rec.book_index(self.channel, self.inst_id))
        return rec.take()

    cdef int _write_image(self, DeltaRecorder rec, int book_index) except -1:
        """Write the whole book into ``rec`` as a snapshot frame (CLEAR + INSERTs)."""
        cdef Py_ssize_t j
        cdef DeltaBuf* b = &rec.buf
        rec.reserve(self._bids.n + self._asks.n + 1)
        delta_begin(b, book_index, self.px_decimals, self.sz_decimals)
        if self._state == STATE_INVALID:
            delta_row(b, DELTA_BOTH_SIDES, DELTA_INVALID, 0, 0, 0, 0, 0)
        else:
            delta_row(b, DELTA_BOTH_SIDES, DELTA_CLEAR, 0, 0, 0, 0, 0)
        for j in range(self._bids.n):
            delta_level(b, 1, DELTA_INSERT, side_at(&self._bids, j), 0)
        for j in range(self._asks.n):
            delta_level(b, -1, DELTA_INSERT, side_at(&self._asks, j), 0)
        delta_end(b, self.seq_id if self._has_seq else -1, -1, self.ts_ms,
                  self.px_decimals, self.sz_decimals, True, self._state)
        return 0

    cpdef void invalidate(self, str reason):
        """Mark the book unusable until its next snapshot (the feeder does this when it loses data
        it cannot see in the frames, e.g. on a disconnect)."""
        self._state = STATE_INVALID
        self.invalid_reason = reason
        self._clear()
        self.crossed = False
        if self._rec == NULL:
            return
        if self._rec.cur >= 0:          # inside a frame: room was reserved with it
            delta_row(self._rec, DELTA_BOTH_SIDES, DELTA_INVALID, 0, 0, 0, 0, 0)
            return
        try:
            self._recorder.reserve(1)
        except MemoryError:
            return
        delta_begin(self._rec, self._rec_book, self.px_decimals, self.sz_decimals)
        delta_row(self._rec, DELTA_BOTH_SIDES, DELTA_INVALID, 0, 0, 0, 0, 0)
        delta_end(self._rec, self.seq_id if self._has_seq else -1, self.prev_seq_id, self.ts_ms,
                  self.px_decimals, self.sz_decimals, False, STATE_INVALID)

    cpdef void copy_from(self, Book other) except *:
        """Take ``other``'s levels, scale, sequence and state (same channel and instId): a feeder
        that synced a book on a second connection hands it over without a gap, and consumers keep
        holding this object. Counters are this book's own and are kept."""
        if other is None or other.channel != self.channel or other.inst_id != self.inst_id:
            raise ValueError("copy_from needs a book of the same channel and instId")
        reserve(&self._bids, other._bids.n)
        reserve(&self._asks, other._asks.n)
        side_copy(&self._bids, &other._bids)
        side_copy(&self._asks, &other._asks)
        self._set_scale(other.px_decimals, other.sz_decimals)
        self.seq_id = other.seq_id
        self._has_seq = other._has_seq
        self.prev_seq_id = other.prev_seq_id
        self.ts_ms = other.ts_ms
        self.checksum = other.checksum
        self._state = other._state
        self.invalid_reason = other.invalid_reason
        self.crossed = other.crossed
        self.top_changed = True
        if self._rec != NULL:
            self._write_image(self._recorder, self._rec_book)

    cdef int _prepare(self, Scratch* s, bint resets) except -1:
        """Everything that can reject the frame, before anything changes: the decimal scale (and
        whether the book can be rescaled to it), converting the scanned levels to that scale, and
        the memory the merge may need."""
        cdef int px_dec = s.max_px_dec, sz_dec = s.max_sz_dec, i
        cdef Py_ssize_t j, n_b = 0, n_a = 0
        cdef int64_t fp, fs
        cdef Level* lv
        if px_dec < self._min_px_decimals:
            px_dec = self._min_px_decimals
        if sz_dec < self._min_sz_decimals:
            sz_dec = self._min_sz_decimals
        if not resets:
            if px_dec < self.px_decimals:
                px_dec = self.px_decimals
            if sz_dec < self.sz_decimals:
                sz_dec = self.sz_decimals
            if px_dec > self.px_decimals or sz_dec > self.sz_decimals:
                fp = POW10[px_dec - self.px_decimals]
                fs = POW10[sz_dec - self.sz_decimals]
                if not (side_scales(&self._bids, fp, fs, False)
                        and side_scales(&self._asks, fp, fs, False)):
                    raise FrameError("more decimals than the book can hold in int64",
                                     channel=self.channel, inst_id=self.inst_id)
        # Scanned levels to the book's scale in one pass (the scratch is not the book: a frame
        # rejected half-way leaves it for the next scan to overwrite). Without a branch per level:
        # whether a level is already at the book's decimals is as good as random ("43250" beside
        # "43251.6", a size of "0"), so a skip test mispredicts often, most with instruments of
        # different shapes interleaved; a multiply by 10**0 costs less.
        cdef int fit = 1, dp, ds, de
        for j in range(s.n_levels):
            lv = &s.levels[j]
            dp = px_dec - lv.px_dec
            ds = sz_dec - lv.sz_dec
            de = sz_dec - lv.extra_dec
            fit &= fits_scaled(lv.px, dp) & fits_scaled(lv.sz, ds) & fits_scaled(lv.extra, de)
            # Unsigned: a product that does not fit wraps (the frame is rejected below).
            lv.px = <int64_t>(<uint64_t>lv.px * <uint64_t>POW10[dp])
            lv.sz = <int64_t>(<uint64_t>lv.sz * <uint64_t>POW10[ds])
            lv.extra = <int64_t>(<uint64_t>lv.extra * <uint64_t>POW10[de])
        if not fit:
            raise FrameError("value does not fit int64 at the book's decimals",
                             channel=self.channel, inst_id=self.inst_id)
        for i in range(s.n_items):
            n_b += s.items[i].n_bids
            n_a += s.items[i].n_asks
        reserve(&self._bids, n_b if resets else self._bids.n + n_b)
        reserve(&self._asks, n_a if resets else self._asks.n + n_a)
        if self._rec != NULL:
            # Worst case: two rows per level (TRIM + INSERT), a CLEAR per item, RESCALE, INVALID.
            self._recorder.reserve(2 * s.n_levels + s.n_items + 2)
        # Nothing below can fail.
        if not resets and (px_dec > self.px_decimals or sz_dec > self.sz_decimals):
            fp = POW10[px_dec - self.px_decimals]
            fs = POW10[sz_dec - self.sz_decimals]
            side_scales(&self._bids, fp, fs, True)
            side_scales(&self._asks, fp, fs, True)
        self._set_scale(px_dec, sz_dec)
        return 0

    cdef int apply_scratch(self, Scratch* s, bint verify, char* buf) except -1:
        """Apply one scanned frame for this book. Raises FrameError (book untouched),
        SequenceError or ChecksumError (book invalid afterwards)."""
        cdef Item* first = &s.items[0]
        cdef bint resets = (s.action == ACTION_SNAPSHOT or self.is_image
                            or (first.has_prev and first.prev == -1))
        cdef int i
        if self._rec != NULL and not self._rec.batch:
            self._rec.n_rows = self._rec.n_frames = 0   # rows() describes this frame, or nothing
        if self.is_image:
            if s.action == ACTION_UPDATE:
                raise FrameError(f"{self.channel} pushes whole images; an update is not one",
                                 channel=self.channel, inst_id=self.inst_id)
        elif s.action == ACTION_NONE:
            raise FrameError("book push without action", channel=self.channel,
                             inst_id=self.inst_id)
        if not resets and self._state != STATE_LIVE:
            if self._state == STATE_EMPTY:
                raise MissingSnapshotError("update before any snapshot", channel=self.channel,
                                           inst_id=self.inst_id,
                                           seq_id=first.seq if first.has_seq else None)
            # Already reported when it went invalid; wait quietly for the snapshot.
            self.frames += 1
            self.dropped_while_invalid += 1
            self.top_changed = False
            return 0
        # The top before the frame, with the decimals it is expressed in: a snapshot may change
        # the book's scale, and the comparison below must be by value.
        cdef int old_px_dec = self.px_decimals, old_sz_dec = self.sz_decimals
        cdef int64_t bid_px = 0, bid_sz = -1, ask_px = 0, ask_sz = -1
        if self._bids.n:
            bid_px = side_best(&self._bids).px
            bid_sz = side_best(&self._bids).sz
        if self._asks.n:
            ask_px = side_best(&self._asks).px
            ask_sz = side_best(&self._asks).sz
        self._prepare(s, resets)
        self.frames += 1
        cdef Item* last = &s.items[s.n_items - 1]
        if self._rec != NULL:
            delta_begin(self._rec, self._rec_book, self.px_decimals, self.sz_decimals)
            if not resets and (self.px_decimals != old_px_dec or self.sz_decimals != old_sz_dec):
                delta_row(self._rec, DELTA_BOTH_SIDES, DELTA_RESCALE,
                          POW10[self.px_decimals - old_px_dec],
                          POW10[self.sz_decimals - old_sz_dec], 0, 0, 0)
        try:
            for i in range(s.n_items):
                self._apply_item(s, i, verify, buf)
        finally:
            if self._rec != NULL:
                delta_end(self._rec, last.seq if last.has_seq else -1,
                          first.prev if first.has_prev else -1,
                          last.ts if last.has_ts else self.ts_ms,
                          self.px_decimals, self.sz_decimals, resets, self._state)
            self.top_changed = not (
                same_top(&self._bids, bid_px, old_px_dec, self.px_decimals, bid_sz, old_sz_dec,
                         self.sz_decimals)
                and same_top(&self._asks, ask_px, old_px_dec, self.px_decimals, ask_sz,
                             old_sz_dec, self.sz_decimals))
            self.crossed = (self._bids.n > 0 and self._asks.n > 0 and
                            side_best(&self._bids).px >= side_best(&self._asks).px)
        return 0

    cdef int _apply_item(self, Scratch* s, int index, bint verify, char* buf) except -1:
        cdef Item* it = &s.items[index]
        cdef bint resets = (s.action == ACTION_SNAPSHOT or self.is_image
                            or (it.has_prev and it.prev == -1))
        cdef int computed
        if resets:
            self.snapshots += 1
            if self._rec != NULL:
                delta_row(self._rec, DELTA_BOTH_SIDES, DELTA_CLEAR, 0, 0, 0, 0, 0)
            self._load_side(&self._bids, s, it.bids_off, it.n_bids)
            self._load_side(&self._asks, s, it.asks_off, it.n_asks)
            self._state = STATE_LIVE
            self.invalid_reason = None
            if not it.has_seq:
                self.seq_id = -1
                self._has_seq = False
        else:
            if self._state != STATE_LIVE:     # an earlier item of this frame broke the chain
                self.dropped_while_invalid += 1
                return 0
            if it.has_prev and self._has_seq:
                if it.prev != self.seq_id:
                    self.seq_gaps += 1
                    last = self.seq_id
                    self.invalidate(f"sequence gap: prevSeqId {it.prev} after seqId {last}")
                    raise SequenceError(self.channel, self.inst_id,
                                        it.seq if it.has_seq else None, it.prev, last)
                if it.has_seq and it.seq == it.prev and it.n_bids == 0 and it.n_asks == 0:
                    self.heartbeats += 1
                elif it.has_seq and it.seq < it.prev:
                    self.seq_resets += 1
            self.updates += 1
            self._merge_side(&self._bids, s, it.bids_off, it.n_bids)
            self._merge_side(&self._asks, s, it.asks_off, it.n_asks)
        if it.has_seq:
            self.seq_id = it.seq
            self._has_seq = True
        if it.has_prev:
            self.prev_seq_id = it.prev
        if it.has_ts:
            self.ts_ms = it.ts
        self.checksum = <int>it.checksum if it.has_checksum else 0
        if not it.has_checksum or it.checksum == 0:
            self.checksum_absent += 1
        elif verify:
            computed = book_checksum(&self._bids, &self._asks, buf)
            if computed != it.checksum:
                self.checksum_mismatch += 1
                self.invalidate(f"checksum mismatch: frame {it.checksum}, book {computed}")
                raise ChecksumError(self.channel, self.inst_id, it.seq if it.has_seq else None,
                                    <int>it.checksum, computed)
            self.checksum_ok += 1
        return 0

    cdef void _load_side(self, Side* side, Scratch* s, Py_ssize_t off, Py_ssize_t n) noexcept nogil:
        """Replace a side with levels given best first. OKX sends them sorted, so they are copied
        in reverse; anything else (unsorted, duplicate or zero-size levels) goes level by level."""
        cdef Level* src = &s.levels[off]
        cdef Py_ssize_t j, m = n if n < side.limit else side.limit
        cdef bint ordered = True
        for j in range(n):
            if src[j].sz == 0 or (j > 0 and src[j].px * side.sign >= src[j - 1].px * side.sign):
                ordered = False
                break
        cdef DeltaBuf* rec = self._rec
        side.n = 0
        if ordered:
            for j in range(m):
                side_place(side, m - 1 - j, &src[j])
            side.n = m
            self.trimmed_levels += n - m
            if rec != NULL:
                for j in range(m):
                    delta_level(rec, <int>side.sign, DELTA_INSERT, &src[j], 0)
            return
        cdef int r
        cdef int64_t prev_sz = 0, dropped_px = 0
        for j in range(n):
            if src[j].sz != 0:
                r = side_set(side, &src[j], &prev_sz, &dropped_px)
                if r == 2 or r == -1:       # the deepest level was dropped, or this one
                    self.trimmed_levels += 1
                if rec != NULL:
                    _record_set(rec, <int>side.sign, r, &src[j], prev_sz, dropped_px)

    cdef void _merge_side(self, Side* side, Scratch* s, Py_ssize_t off, Py_ssize_t n) noexcept nogil:
        cdef Level* src = &s.levels[off]
        cdef Py_ssize_t j
        cdef int r
        cdef int64_t prev_sz = 0, dropped_px = 0
        cdef DeltaBuf* rec = self._rec
        for j in range(n):
            if src[j].sz == 0:
                if not side_delete(side, src[j].px, &prev_sz):
                    self.missing_deletes += 1
                elif rec != NULL:
                    delta_delete(rec, <int>side.sign, &src[j], prev_sz)
            else:
                r = side_set(side, &src[j], &prev_sz, &dropped_px)
                if r == 2 or r == -1:
                    self.trimmed_levels += 1
                if rec != NULL:
                    _record_set(rec, <int>side.sign, r, &src[j], prev_sz, dropped_px)

    # ---------------------------------------------------------------- reading the book

    @property
    def is_valid(self) -> bool:
        """True when the book holds a snapshot and every frame since applied cleanly."""
        return self._state == STATE_LIVE

    @property
    def status(self) -> str:
        """``"empty"`` (no snapshot yet), ``"live"`` or ``"invalid"`` (see ``invalid_reason``)."""
        return _STATUS[self._state]

    @property
    def n_bids(self) -> int:
        """Bid levels visible to consumers (at most ``depth``)."""
        return self._bids.n if self._bids.n < self.depth else self.depth

    @property
    def n_asks(self) -> int:
        return self._asks.n if self._asks.n < self.depth else self.depth

    @property
    def best_bid_px(self) -> float:
        """Best bid price as a float; NaN when there is none or the book is not valid."""
        if self._bids.n == 0:
            return NAN
        return side_best(&self._bids).px / self._px_div

    @property
    def best_bid_sz(self) -> float:
        if self._bids.n == 0:
            return NAN
        return side_best(&self._bids).sz / self._sz_div

    @property
    def best_ask_px(self) -> float:
        if self._asks.n == 0:
            return NAN
        return side_best(&self._asks).px / self._px_div

    @property
    def best_ask_sz(self) -> float:
        if self._asks.n == 0:
            return NAN
        return side_best(&self._asks).sz / self._sz_div

    @property
    def best_bid_ticks(self) -> int:
        """Best bid in units of 10**-px_decimals (exact); ``NO_BID`` when there is none."""
        return side_best(&self._bids).px if self._bids.n else NO_BID

    @property
    def best_ask_ticks(self) -> int:
        return side_best(&self._asks).px if self._asks.n else NO_ASK

    @property
    def spread(self) -> float:
        """Best ask minus best bid (negative when crossed); NaN when a side is empty."""
        if self._bids.n == 0 or self._asks.n == 0:
            return NAN
        # In 128 bits: the difference of two int64 prices can pass int64 (a negative bid).
        return (<double>(<wide_t>side_best(&self._asks).px
                         - side_best(&self._bids).px) / self._px_div)

    @property
    def mid(self) -> float:
        if self._bids.n == 0 or self._asks.n == 0:
            return NAN
        return (<double>(<wide_t>side_best(&self._asks).px
                         + side_best(&self._bids).px) / (2.0 * self._px_div))

    @property
    def best_bid(self):
        """``(px, sz)`` of the best bid as the strings OKX sent, or None."""
        if self._bids.n == 0:
            return None
        return _strings(side_best(&self._bids))

    @property
    def best_ask(self):
        if self._asks.n == 0:
            return None
        return _strings(side_best(&self._asks))

    def top(self):
        """``(bid_px, bid_sz, ask_px, ask_sz)`` as floats, NaN for an empty side."""
        return (self.best_bid_px, self.best_bid_sz, self.best_ask_px, self.best_ask_sz)

    def bids(self, n=None):
        """Top ``n`` bids (default and at most ``depth``), best first, as a ``DEPTH_DTYPE`` array:
        ``px``/``sz`` floats, ``cum_sz`` the running total from the best level, ``px_ticks`` and
        ``sz_lots`` exact integers (``px = px_ticks / 10**px_decimals``), ``orders``, and
        ``extra_lots`` the level's third field in size units (books-rpi: the non-RPI size; the
        deprecated "0" elsewhere). A new array,
        owned by the caller: it does not change as the book moves on."""
        return self._depth(&self._bids, n)

    def asks(self, n=None):
        """Top ``n`` asks, best (lowest) first; see ``bids``."""
        return self._depth(&self._asks, n)

    cdef object _depth(self, Side* side, object n):
        cdef Py_ssize_t m = side.n if side.n < self.depth else self.depth, j
        if n is not None:
            if n < 0:
                raise ValueError("n must be >= 0")
            if n < m:
                m = n
        out = np.empty(m, dtype=DEPTH_DTYPE)
        if m == 0:
            return out
        cdef DepthRow[::1] rows = out
        cdef wide_t cum_lots = 0          # 400 levels of 10**17 lots pass int64
        cdef Level* lv
        for j in range(m):
            lv = side_at(side, side.n - 1 - j)
            cum_lots += lv.sz
            rows[j].px = lv.px / self._px_div
            rows[j].sz = lv.sz / self._sz_div
            rows[j].cum_sz = <double>cum_lots / self._sz_div
            rows[j].px_ticks = lv.px
            rows[j].sz_lots = lv.sz
            rows[j].orders = lv.orders
            rows[j].extra_lots = lv.extra
        return out

    def bid_levels(self, n=None):
        """Top ``n`` bids as ``(px, sz, orders)`` with px and sz the strings OKX sent."""
        return self._levels(&self._bids, n)

    def ask_levels(self, n=None):
        return self._levels(&self._asks, n)

    cdef list _levels(self, Side* side, object n):
        cdef Py_ssize_t m = side.n if side.n < self.depth else self.depth, j
        cdef Level* lv
        if n is not None:
            if n < 0:
                raise ValueError("n must be >= 0")
            if n < m:
                m = n
        out = []
        for j in range(m):
            lv = side_at(side, side.n - 1 - j)
            out.append(_strings(lv) + (lv.orders,))
        return out

    def stats(self) -> dict:
        """Counters since the book was made, as a plain dict."""
        return {
            "frames": self.frames, "snapshots": self.snapshots, "updates": self.updates,
            "heartbeats": self.heartbeats, "seq_resets": self.seq_resets,
            "seq_gaps": self.seq_gaps, "checksum_ok": self.checksum_ok,
            "checksum_mismatch": self.checksum_mismatch, "checksum_absent": self.checksum_absent,
            "missing_deletes": self.missing_deletes, "trimmed_levels": self.trimmed_levels,
            "dropped_while_invalid": self.dropped_while_invalid,
        }

    def __repr__(self):
        return (f"<Book {self.channel}/{self.inst_id} {self.status} seqId={self.seq_id} "
                f"bid={self.best_bid} ask={self.best_ask}>")


cdef tuple _strings(Level* lv):
    return (lv.text[:lv.px_len].decode("ascii"),
            lv.text[lv.px_len + 1:lv.px_len + 1 + lv.sz_len].decode("ascii"))
