# cython: language_level=3
"""``TopSeries``: a per-frame time series of top of book and near-touch depth, for research exports.

Replay calls ``observe(book, recv_ns)`` after each applied frame; the row (receive time, exchange
time, seqId, best bid/ask in exact ticks and as floats, flags, and the size resting within N basis
points of the mid on each side) is written into C buffers, so a months-long replay builds no Python
object per frame. ``columns()`` hands the result over as numpy arrays (ready for pandas/pyarrow).
"""

from libc.stdint cimport int64_t, int32_t, uint8_t
from libc.stdlib cimport realloc, free
from libc.string cimport memcpy
from libc.math cimport NAN

import numpy as np

from okxbook._level cimport Level, wide_t
from okxbook._book cimport (Book, book_is_live, book_seq_id, book_n_bids, book_n_asks,
                            book_best_bid_ticks, book_best_ask_ticks, book_best_bid_lots,
                            book_best_ask_lots, book_px_div, book_sz_div, book_bid_level,
                            book_ask_level)


cdef void* grown(void* block, Py_ssize_t count, size_t size) except NULL:
    """``block`` reallocated to ``count`` items of ``size`` bytes (MemoryError if it cannot be);
    the row buffers of both series grow through here."""
    cdef void* out = realloc(block, <size_t>count * size)
    if out == NULL:
        raise MemoryError()
    return out


cdef object copied(const void* data, object shape, object dtype):
    """A new numpy array of ``shape`` and ``dtype`` holding a copy of the C buffer ``data``."""
    out = np.empty(shape, dtype=dtype)
    cdef unsigned char[::1] dst = out.reshape(-1).view(np.uint8)
    if dst.shape[0]:
        memcpy(&dst[0], data, <size_t>dst.shape[0])
    return out


cdef inline void put_best(bint has, int64_t ticks, int64_t lots, double px_div, double sz_div,
                          int64_t* out_ticks, double* out_px, double* out_sz) noexcept:
    """One side's best level into a row: exact ticks and float price and size, or 0 ticks and
    NaN for an empty side."""
    if has:
        out_ticks[0] = ticks
        out_px[0] = ticks / px_div
        out_sz[0] = lots / sz_div
    else:
        out_ticks[0] = 0
        out_px[0] = out_sz[0] = NAN


cdef class _BookRows:
    """What both series share: the rows held (``len``) and the ``book`` column's index, each book
    numbered the first time it is seen and named ``"channel/instId"`` (``book_names``)."""

    def __cinit__(self):
        self._n = self._cap = 0
        self._book_index = {}
        self._book_names = []

    def __len__(self):
        return self._n

    @property
    def book_names(self) -> list:
        """``"channel/instId"`` of each book index used in the ``book`` column."""
        return list(self._book_names)

    cdef int32_t _book(self, Book book) except -1:
        found = self._book_index.get(book)
        if found is not None:
            return <int32_t>found
        i = len(self._book_names)
        self._book_index[book] = i
        self._book_names.append(f"{book.channel}/{book.inst_id}")
        return <int32_t>i


cdef class TopSeries(_BookRows):
    """Records one row per observed frame. ``bps``: depth bands in basis points of the mid (at most
    16); ``only_top_changes``: skip frames that left the best bid and ask unchanged."""

    def __cinit__(self):
        self._rows = NULL
        self._depth = NULL

    def __init__(self, bps=(5, 10, 25), bint only_top_changes=False):
        values = tuple(float(b) for b in bps)
        if len(values) > 16 or any(b <= 0 for b in values):
            raise ValueError("bps: at most 16 positive values")
        self.bps = tuple(sorted(values))
        self._n_bps = len(self.bps)
        for i, b in enumerate(self.bps):
            self._bps[i] = b
        self.only_top_changes = only_top_changes

    def __dealloc__(self):
        free(self._rows)
        free(self._depth)

    cdef int _grow(self) except -1:
        cdef Py_ssize_t cap = self._cap * 2 if self._cap else 4096
        cdef Py_ssize_t width = 2 * self._n_bps if self._n_bps else 1
        self._rows = <TopRow*>grown(self._rows, cap, sizeof(TopRow))
        self._depth = <double*>grown(self._depth, cap * width, sizeof(double))
        self._cap = cap
        return 0

    cpdef void observe(self, Book book, int64_t recv_ns) except *:
        """Append the book's state after the frame it just applied."""
        if self.only_top_changes and not book.top_changed:
            return
        if self._n == self._cap:
            self._grow()
        cdef int32_t index = self._book(book)
        cdef TopRow* row = &self._rows[self._n]
        cdef double px_div = book_px_div(book), sz_div = book_sz_div(book)
        cdef bint has_bid = book_n_bids(book) > 0, has_ask = book_n_asks(book) > 0
        row.recv_ns = recv_ns
        row.ts_ms = book.ts_ms
        row.seq_id = book_seq_id(book)
        row.book = index
        row.flags = ((FLAG_VALID if book_is_live(book) else 0)
                     | (FLAG_CROSSED if book.crossed else 0)
                     | (FLAG_TOP_CHANGED if book.top_changed else 0)
                     | (book.px_decimals << PX_DEC_SHIFT))
        put_best(has_bid, book_best_bid_ticks(book), book_best_bid_lots(book), px_div, sz_div,
                 &row.bid_ticks, &row.bid_px, &row.bid_sz)
        put_best(has_ask, book_best_ask_ticks(book), book_best_ask_lots(book), px_div, sz_div,
                 &row.ask_ticks, &row.ask_px, &row.ask_sz)
        cdef double* depth = &self._depth[self._n * 2 * self._n_bps]
        cdef double mid
        if has_bid and has_ask:
            # In 128 bits: the sum or difference of two int64 prices can pass int64.
            mid = <double>(<wide_t>row.bid_ticks + row.ask_ticks) / 2.0
            row.spread = <double>(<wide_t>row.ask_ticks - row.bid_ticks) / px_div
            row.mid = mid / px_div
            self._band(book, True, mid, sz_div, -1.0, depth)
            self._band(book, False, mid, sz_div, 1.0, depth + self._n_bps)
        else:
            row.spread = row.mid = NAN
            for i in range(2 * self._n_bps):
                depth[i] = NAN
        self._n += 1

    cdef void _band(self, Book book, bint bids, double mid, double sz_div, double direction,
                    double* out) noexcept:
        """Size resting within each band: levels with price inside mid * (1 ± bps/1e4), among the
        published levels (walked once, best first, bands sorted ascending)."""
        cdef Py_ssize_t j, top = book_n_bids(book) if bids else book_n_asks(book)
        cdef int k = 0
        cdef int64_t px
        cdef wide_t cum = 0             # 400 levels of 10**17 lots pass int64
        cdef const Level* lv
        cdef double limit = mid * (1.0 + direction * self._bps[0] / 1e4)
        for j in range(top):
            lv = book_bid_level(book, j) if bids else book_ask_level(book, j)
            px = lv.px
            while k < self._n_bps and (px - limit) * direction > 0:
                out[k] = <double>cum / sz_div
                k += 1
                if k < self._n_bps:
                    limit = mid * (1.0 + direction * self._bps[k] / 1e4)
            if k == self._n_bps:
                return
            cum += lv.sz
        while k < self._n_bps:
            out[k] = <double>cum / sz_div
            k += 1

    def columns(self) -> dict:
        """The series as numpy columns: ``book`` (int32 index into ``book_names``), ``recv_ns``,
        ``ts_ms``, ``seq_id``, ``bid_ticks``, ``ask_ticks``, ``bid_px``, ``bid_sz``, ``ask_px``,
        ``ask_sz``, ``spread``, ``mid``, ``valid``, ``crossed``, ``top_changed``, ``px_decimals``
        (the scale of that row's ticks), and
        ``bid_depth_<bps>bps`` / ``ask_depth_<bps>bps`` per band. Copies: the series may grow on."""
        dtype = np.dtype([("recv_ns", "i8"), ("ts_ms", "i8"), ("seq_id", "i8"),
                          ("bid_ticks", "i8"), ("ask_ticks", "i8"), ("bid_px", "f8"),
                          ("bid_sz", "f8"), ("ask_px", "f8"), ("ask_sz", "f8"), ("spread", "f8"),
                          ("mid", "f8"), ("book", "i4"),
                          ("flags", "i4")])
        assert dtype.itemsize == sizeof(TopRow)
        raw = copied(self._rows, self._n, dtype)
        cols = {name: raw[name].copy() for name in dtype.names if name != "flags"}
        flags = raw["flags"]
        cols["valid"] = (flags & FLAG_VALID) != 0
        cols["crossed"] = (flags & FLAG_CROSSED) != 0
        cols["top_changed"] = (flags & FLAG_TOP_CHANGED) != 0
        # The book's decimal scale when the row was taken: ``bid_ticks / 10**px_decimals`` is the
        # price. A book can learn a decimal mid-series (export.to_arrow puts one scale per book).
        cols["px_decimals"] = ((flags >> PX_DEC_SHIFT) & 0xFF).astype("i1")
        depth = copied(self._depth, (self._n, 2 * self._n_bps), "f8")
        for k, b in enumerate(self.bps):
            label = f"{b:g}".replace(".", "_")
            cols[f"bid_depth_{label}bps"] = depth[:, k].copy()
            cols[f"ask_depth_{label}bps"] = depth[:, self._n_bps + k].copy()
        return cols


cdef inline int64_t frame_time_ns(Book book, int64_t recv_ns) noexcept:
    """The time a frame is filed under: its receive time, else its exchange ``ts``."""
    return recv_ns if recv_ns else book.ts_ms * 1_000_000


cdef class TopLevels(_BookRows):
    """The top ``n_levels`` of each side, one row per observed frame or, with ``every_ns``, one row
    per book at each multiple of ``every_ns`` (the book as it stood then: after its last frame at
    or before that time), the wide table of ``export.write_snapshots``.

    Rows are kept in C buffers (no Python object per row or level) until ``take()`` hands them
    over as numpy columns and empties the buffers; ``on_full(self)`` is called once ``batch_rows``
    rows are held, so a writer bounds memory by taking them there. Prices and sizes are kept exact
    (ticks and lots at the row's decimals)."""

    def __cinit__(self):
        self._rows = NULL
        self._lv = NULL
        self._last = NULL
        self._last_lv = NULL
        self._n_books = self._cap_books = self._n_filled = 0
        self._next = 0

    def __init__(self, int n_levels=10, int64_t every_ns=0, Py_ssize_t batch_rows=0,
                 on_full=None):
        if n_levels < 1 or n_levels > 400:
            raise ValueError("n_levels: 1 to 400")
        if every_ns < 0:
            raise ValueError("every_ns: 0 (every frame) or a positive interval")
        self.n_levels = n_levels
        self.every_ns = every_ns
        self._batch = batch_rows if on_full is not None else 0
        self._on_full = on_full

    def __dealloc__(self):
        free(self._rows)
        free(self._lv)
        free(self._last)
        free(self._last_lv)

    cdef int _grow(self) except -1:
        cdef Py_ssize_t cap = self._cap * 2 if self._cap else 1024
        self._rows = <LevelsRow*>grown(self._rows, cap, sizeof(LevelsRow))
        self._lv = <int64_t*>grown(self._lv, cap * 4 * self.n_levels, sizeof(int64_t))
        self._cap = cap
        return 0

    cdef int _grow_books(self) except -1:
        cdef Py_ssize_t cap = self._cap_books * 2 if self._cap_books else 8
        self._last = <LevelsRow*>grown(self._last, cap, sizeof(LevelsRow))
        self._last_lv = <int64_t*>grown(self._last_lv, cap * 4 * self.n_levels, sizeof(int64_t))
        self._cap_books = cap
        return 0

    cdef int32_t _index(self, Book book) except -1:
        """The book's index, with room for its last row (``every_ns``) once it is new."""
        cdef int32_t i = self._book(book)
        if i == self._n_books:
            if self._n_books == self._cap_books:
                self._grow_books()
            self._n_books += 1
        return i

    cdef void _fill(self, Book book, int64_t time_ns, int64_t recv_ns, LevelsRow* row,
                    int64_t* lv) noexcept:
        """The book's top levels into ``lv`` (absent levels: price and size 0)."""
        cdef int n = self.n_levels, i
        cdef Py_ssize_t nb = book_n_bids(book), na = book_n_asks(book)
        cdef const Level* level
        row.time_ns = time_ns
        row.recv_ns = recv_ns
        row.ts_ms = book.ts_ms
        row.seq_id = book_seq_id(book)
        row.flags = ((FLAG_VALID if book_is_live(book) else 0)
                     | ((book.px_decimals & 0xFF) << PX_DEC_SHIFT)
                     | ((book.sz_decimals & 0xFF) << SZ_DEC_SHIFT))
        for i in range(n):
            if i < nb:
                level = book_bid_level(book, i)
                lv[i] = level.px
                lv[n + i] = level.sz
            else:
                lv[i] = lv[n + i] = 0
            if i < na:
                level = book_ask_level(book, i)
                lv[2 * n + i] = level.px
                lv[3 * n + i] = level.sz
            else:
                lv[2 * n + i] = lv[3 * n + i] = 0

    cpdef void observe(self, Book book, int64_t recv_ns) except *:
        """Record the book after the frame it just applied (received at ``recv_ns``, 0: unknown)."""
        cdef int32_t index = self._index(book)
        cdef int64_t t = frame_time_ns(book, recv_ns)
        cdef Py_ssize_t width = 4 * self.n_levels, j
        cdef LevelsRow* row
        if self.every_ns == 0:
            if self._n == self._cap:
                self._grow()
            row = &self._rows[self._n]
            self._fill(book, t, recv_ns, row, &self._lv[self._n * width])
            row.book = index
            self._n += 1
            if self._batch and self._n >= self._batch:
                self._on_full(self)
            return
        if self._next == 0:
            # The first interval end at or after the first frame (floor division toward -inf).
            self._next = ((t + self.every_ns - 1) // self.every_ns) * self.every_ns
        # Frames come in time order: the first one past an interval end closes it, and every book
        # seen so far is written as it stood after its last frame up to that end.
        while t > self._next:
            for j in range(self._n_filled):
                if self._n == self._cap:
                    self._grow()
                self._rows[self._n] = self._last[j]
                self._rows[self._n].time_ns = self._next
                memcpy(&self._lv[self._n * width], &self._last_lv[j * width],
                       <size_t>width * sizeof(int64_t))
                self._n += 1
            self._next += self.every_ns
        row = &self._last[index]
        self._fill(book, t, recv_ns, row, &self._last_lv[index * width])
        row.book = index
        if index >= self._n_filled:
            self._n_filled = index + 1
        if self._batch and self._n >= self._batch:
            self._on_full(self)

    def take(self) -> dict:
        """The rows recorded since the last ``take`` as numpy columns (then forgotten): ``book``
        (int32 index into ``book_names``), ``time_ns``, ``recv_ns``, ``ts_ms``, ``seq_id``,
        ``valid``, ``px_decimals``, ``sz_decimals`` and the int64 ``bid_px``, ``bid_sz``,
        ``ask_px``, ``ask_sz`` blocks of shape (rows, n_levels), in ticks and lots (0: no level)."""
        dtype = np.dtype([("time_ns", "i8"), ("recv_ns", "i8"), ("ts_ms", "i8"),
                          ("seq_id", "i8"), ("book", "i4"), ("flags", "i4")])
        assert dtype.itemsize == sizeof(LevelsRow)
        raw = copied(self._rows, self._n, dtype)
        lv = copied(self._lv, (self._n, 4 * self.n_levels), np.int64)
        self._n = 0
        names = ("book", "time_ns", "recv_ns", "ts_ms", "seq_id")
        cols = {name: raw[name].copy() for name in names}
        flags = raw["flags"]
        cols["valid"] = (flags & FLAG_VALID) != 0
        cols["px_decimals"] = ((flags >> PX_DEC_SHIFT) & 0xFF).astype("i1")
        cols["sz_decimals"] = ((flags >> SZ_DEC_SHIFT) & 0xFF).astype("i1")
        k = self.n_levels
        cols["bid_px"] = lv[:, 0:k]
        cols["bid_sz"] = lv[:, k:2 * k]
        cols["ask_px"] = lv[:, 2 * k:3 * k]
        cols["ask_sz"] = lv[:, 3 * k:4 * k]
        return cols


def merge_event_order(const int64_t[::1] exch_ts not None, const int64_t[::1] local_ts not None,
                      const int64_t[::1] by_exch not None, const int64_t[::1] by_local not None):
    """hftbacktest's event-order correction (``correct_event_order``), for ``export``'s npz: the
    events merged so that the exchange-side ones (flag 1) come in ``exch_ts`` order and the
    local-side ones (flag 2) in ``local_ts`` order; an event that is next in both orders at once is
    written once with both flags (3), else it is written twice, once for each side. ``by_exch`` and
    ``by_local`` are the stable argsorts. Returns ``(index, flags)``: the output's rows are
    ``events[index]`` with those side flags."""
    cdef Py_ssize_t n = exch_ts.shape[0], i = 0, j = 0, k = 0
    if local_ts.shape[0] != n or by_exch.shape[0] != n or by_local.shape[0] != n:
        raise ValueError("arrays of different lengths")
    index = np.empty(2 * n, dtype=np.int64)
    flags = np.empty(2 * n, dtype=np.uint8)
    cdef int64_t[::1] out = index
    cdef uint8_t[::1] side = flags
    cdef int64_t e, lo
    with nogil:
        while i < n or j < n:
            if i < n and j < n:
                e = by_exch[i]
                lo = by_local[j]
                if exch_ts[e] == exch_ts[lo] and local_ts[e] == local_ts[lo]:
                    out[k] = e
                    side[k] = 3
                    i += 1
                    j += 1
                elif exch_ts[e] < exch_ts[lo] or (
                        exch_ts[e] == exch_ts[lo] and local_ts[e] < local_ts[lo]):
                    out[k] = e
                    side[k] = 1
                    i += 1
                else:
                    out[k] = lo
                    side[k] = 2
                    j += 1
            elif j < n:
                out[k] = by_local[j]
                side[k] = 2
                j += 1
            else:
                out[k] = by_exch[i]
                side[k] = 1
                i += 1
            k += 1
    return index[:k], flags[:k]
