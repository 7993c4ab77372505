# cython: language_level=3
"""``TopSeries``: a per-frame time series of top of book and near-touch depth, for research exports.

Replay calls ``observe(book, recv_ns)`` after each applied frame; the row (receive time, exchange
time, seqId, best bid/ask in exact ticks and as floats, flags, and the size resting within N basis
points of the mid on each side) is written into C buffers, so a months-long replay builds no Python
object per frame. ``columns()`` hands the result over as numpy arrays (ready for pandas/pyarrow).
"""

from libc.stdint cimport int64_t, int32_t
from libc.stdlib cimport realloc, free
from libc.string cimport memcpy
from libc.math cimport NAN

import numpy as np

from okxbook._level cimport Side
from okxbook._book cimport Book, STATE_LIVE


cdef class TopSeries:
    """Records one row per observed frame. ``bps``: depth bands in basis points of the mid (at most
    16); ``only_top_changes``: skip frames that left the best bid and ask unchanged."""

    def __cinit__(self):
        self._rows = NULL
        self._depth = NULL
        self._n = 0
        self._cap = 0

    def __init__(self, bps=(5, 10, 25), bint only_top_changes=False):
        values = tuple(float(b) for b in bps)
        if len(values) > 16 or any(b <= 0 for b in values):
            raise ValueError("bps: at most 16 positive values")
        self.bps = tuple(sorted(values))
        self._n_bps = len(self.bps)
        for i, b in enumerate(self.bps):
            self._bps[i] = b
        self.only_top_changes = only_top_changes
        self._book_index = {}
        self._book_names = []

    def __dealloc__(self):
        free(self._rows)
        free(self._depth)

    def __len__(self):
        return self._n

    @property
    def book_names(self) -> list:
        """``"channel/instId"`` of each book index used in the ``book`` column."""
        return list(self._book_names)

    cdef int _grow(self) except -1:
        cdef Py_ssize_t cap = self._cap * 2 if self._cap else 4096
        cdef TopRow* rows = <TopRow*>realloc(self._rows, <size_t>cap * sizeof(TopRow))
        if rows == NULL:
            raise MemoryError()
        self._rows = rows
        cdef Py_ssize_t width = 2 * self._n_bps if self._n_bps else 1
        cdef double* depth = <double*>realloc(self._depth, <size_t>(cap * width) * sizeof(double))
        if depth == NULL:
            raise MemoryError()
        self._depth = depth
        self._cap = cap
        return 0

    cpdef void observe(self, Book book, int64_t recv_ns) except *:
        """Append the book's state after the frame it just applied."""
        if self.only_top_changes and not book.top_changed:
            return
        if self._n == self._cap:
            self._grow()
        index = self._book_index.get(book)
        if index is None:
            index = len(self._book_names)
            self._book_index[book] = index
            self._book_names.append(f"{book.channel}/{book.inst_id}")
        cdef TopRow* row = &self._rows[self._n]
        cdef Side* bids = &book._bids
        cdef Side* asks = &book._asks
        cdef double px_div = book._px_div, sz_div = book._sz_div
        row.recv_ns = recv_ns
        row.ts_ms = book.ts_ms
        row.seq_id = book.seq_id
        row.book = <int32_t>index
        row.flags = ((FLAG_VALID if book._state == STATE_LIVE else 0)
                     | (FLAG_CROSSED if book.crossed else 0)
                     | (FLAG_TOP_CHANGED if book.top_changed else 0))
        if bids.n:
            row.bid_ticks = bids.lv[bids.n - 1].px
            row.bid_px = row.bid_ticks / px_div
            row.bid_sz = bids.lv[bids.n - 1].sz / sz_div
        else:
            row.bid_ticks = 0
            row.bid_px = row.bid_sz = NAN
        if asks.n:
            row.ask_ticks = asks.lv[asks.n - 1].px
            row.ask_px = row.ask_ticks / px_div
            row.ask_sz = asks.lv[asks.n - 1].sz / sz_div
        else:
            row.ask_ticks = 0
            row.ask_px = row.ask_sz = NAN
        cdef double* depth = &self._depth[self._n * 2 * self._n_bps]
        cdef double mid
        if bids.n and asks.n:
            mid = (row.bid_ticks + row.ask_ticks) / 2.0
            row.spread = (row.ask_ticks - row.bid_ticks) / px_div
            row.mid = mid / px_div
            self._band(bids, book.depth, mid, sz_div, -1.0, depth)
            self._band(asks, book.depth, mid, sz_div, 1.0, depth + self._n_bps)
        else:
            row.spread = row.mid = NAN
            for i in range(2 * self._n_bps):
                depth[i] = NAN
        self._n += 1

    cdef void _band(self, Side* side, int depth, double mid, double sz_div, double direction,
                    double* out) noexcept:
        """Size resting within each band: levels with price inside mid * (1 ± bps/1e4), among the
        published ``depth`` levels (walked once, bands sorted ascending)."""
        cdef Py_ssize_t j, top = side.n if side.n < depth else depth
        cdef int k = 0
        cdef int64_t cum = 0, px
        cdef double limit = mid * (1.0 + direction * self._bps[0] / 1e4)
        for j in range(top):
            px = side.lv[side.n - 1 - j].px
            while k < self._n_bps and (px - limit) * direction > 0:
                out[k] = cum / sz_div
                k += 1
                if k < self._n_bps:
                    limit = mid * (1.0 + direction * self._bps[k] / 1e4)
            if k == self._n_bps:
                return
            cum += side.lv[side.n - 1 - j].sz
        while k < self._n_bps:
            out[k] = cum / sz_div
            k += 1

    def columns(self) -> dict:
        """The series as numpy columns: ``book`` (int32 index into ``book_names``), ``recv_ns``,
        ``ts_ms``, ``seq_id``, ``bid_ticks``, ``ask_ticks``, ``bid_px``, ``bid_sz``, ``ask_px``,
        ``ask_sz``, ``spread``, ``mid``, ``valid``, ``crossed``, ``top_changed``, and
        ``bid_depth_<bps>bps`` / ``ask_depth_<bps>bps`` per band. Copies: the series may grow on."""
        dtype = np.dtype([("recv_ns", "i8"), ("ts_ms", "i8"), ("seq_id", "i8"),
                          ("bid_ticks", "i8"), ("ask_ticks", "i8"), ("bid_px", "f8"),
                          ("bid_sz", "f8"), ("ask_px", "f8"), ("ask_sz", "f8"), ("spread", "f8"),
                          ("mid", "f8"), ("book", "i4"),
                          ("flags", "i4")])
        assert dtype.itemsize == sizeof(TopRow)
        raw = np.empty(self._n, dtype=dtype)
        cdef unsigned char[::1] dst = raw.view(np.uint8)
        if self._n:
            memcpy(&dst[0], self._rows, <size_t>self._n * sizeof(TopRow))
        cols = {name: raw[name].copy() for name in dtype.names if name != "flags"}
        flags = raw["flags"]
        cols["valid"] = (flags & FLAG_VALID) != 0
        cols["crossed"] = (flags & FLAG_CROSSED) != 0
        cols["top_changed"] = (flags & FLAG_TOP_CHANGED) != 0
        width = 2 * self._n_bps
        depth = np.empty((self._n, width), dtype="f8")
        cdef double[:, ::1] dview = depth
        if self._n and width:
            memcpy(&dview[0, 0], self._depth, <size_t>(self._n * width) * sizeof(double))
        for k, b in enumerate(self.bps):
            label = f"{b:g}".replace(".", "_")
            cols[f"bid_depth_{label}bps"] = depth[:, k].copy()
            cols[f"ask_depth_{label}bps"] = depth[:, self._n_bps + k].copy()
        return cols
