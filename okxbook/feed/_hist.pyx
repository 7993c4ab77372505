# cython: language_level=3
"""The recording half of ``okxbook.feed.latency``: fixed log-bucket histograms with a
two-generation window, and each book's per-frame stage clock, in C because they run on every frame
of the receive path (the feed's hub, ``feed/_hub.pyx``, records both stages with C calls and no
Python object; about 0.1 µs a frame where a pure-Python recorder cost microseconds).

Buckets: exact below 8, then 8 per power of two (at most 12.5% wide), for magnitudes up to 2**63,
mirrored for negative values (receive − exchange ts is negative when our clock lags OKX's).
"""

from libc.stdint cimport int64_t, uint64_t, INT64_MAX, INT64_MIN
from libc.string cimport memcpy, memset


cdef extern from *:
    """
    #include <time.h>
    static inline long long okxbook_hist_realtime(void) {
        struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
        return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    }
    static inline long long okxbook_hist_monotonic(void) {
        struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    }
    static inline int okxbook_hist_log2(unsigned long long v) { return 63 - __builtin_clzll(v); }
    """
    int64_t realtime_ns "okxbook_hist_realtime"() noexcept nogil
    int64_t monotonic_ns "okxbook_hist_monotonic"() noexcept nogil
    int log2_floor "okxbook_hist_log2"(uint64_t v) noexcept nogil


cdef inline int mag(uint64_t v) noexcept nogil:
    if v < SUB:
        return <int>v
    cdef int b = log2_floor(v)
    return (b - 2) * SUB + <int>(v >> (b - 3)) - SUB


cdef inline uint64_t upper(int m) noexcept nogil:
    """The largest magnitude in bucket ``m``."""
    if m < SUB:
        return <uint64_t>m
    cdef int b = m // SUB + 2, sub = m % SUB
    return ((<uint64_t>(SUB + sub + 1)) << (b - 3)) - 1


cdef inline void gen_clear(Gen* g) noexcept nogil:
    memset(g.counts, 0, sizeof(g.counts))
    g.n = 0
    g.lo = INT64_MAX
    g.hi = INT64_MIN


cdef class LogHistogram:
    """Counts of int values (ns) in log buckets over the last ``window`` s to twice that: a newer
    and an older generation, the older dropped when the newer is ``window`` old. Exact count,
    min and max; percentiles are bucket upper bounds clamped to [min, max]."""

    def __init__(self, double window=10.0):
        if not window > 0:
            raise ValueError("window must be > 0 seconds")
        self.window_ns = <int64_t>(window * 1e9)
        gen_clear(&self._g[0])
        gen_clear(&self._g[1])
        self._started = monotonic_ns()

    cdef void add(self, int64_t v, int64_t now) noexcept:
        if now - self._started >= self.window_ns:
            memcpy(&self._g[0], &self._g[1], sizeof(Gen))
            gen_clear(&self._g[1])
            self._started = now
        cdef Gen* g = &self._g[1]
        if v >= 0:
            g.counts[HALF + mag(<uint64_t>v)] += 1
        else:
            g.counts[HALF - 1 - mag(<uint64_t>0 - <uint64_t>v)] += 1
        g.n += 1
        if v < g.lo:
            g.lo = v
        if v > g.hi:
            g.hi = v

    def record(self, int64_t v, now_mono_ns=None):
        """Count ``v``; ``now_mono_ns`` (``time.monotonic_ns()``) places it in the window."""
        self.add(v, monotonic_ns() if now_mono_ns is None else <int64_t>now_mono_ns)

    def merge(self, LogHistogram other not None):
        """Add ``other``'s counts, generation by generation (a connection = its books)."""
        cdef int k, i
        for k in range(2):
            for i in range(NB):
                self._g[k].counts[i] += other._g[k].counts[i]
            self._g[k].n += other._g[k].n
            if other._g[k].lo < self._g[k].lo:
                self._g[k].lo = other._g[k].lo
            if other._g[k].hi > self._g[k].hi:
                self._g[k].hi = other._g[k].hi

    @property
    def count(self) -> int:
        return self._g[0].n + self._g[1].n

    def summary(self, double scale=1e-3):
        """``{"n", "min", "p50", "p90", "p99", "max"}`` over the window, in ns x ``scale`` (µs
        by default); None when empty."""
        cdef int64_t n = self._g[0].n + self._g[1].n
        if n == 0:
            return {"n": 0, "min": None, "p50": None, "p90": None, "p99": None, "max": None}
        cdef int64_t lo = min(self._g[0].lo, self._g[1].lo)
        cdef int64_t hi = max(self._g[0].hi, self._g[1].hi)
        out = {"n": n, "min": lo * scale}
        cdef int64_t rank, seen, v
        cdef int i
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            rank = <int64_t>(q * n + 0.999999)
            if rank < 1:
                rank = 1
            seen = 0
            for i in range(NB):
                seen += self._g[0].counts[i] + self._g[1].counts[i]
                if seen >= rank:
                    if i >= HALF:
                        v = <int64_t>upper(i - HALF) if upper(i - HALF) <= <uint64_t>INT64_MAX \
                            else INT64_MAX
                    else:
                        v = -<int64_t>upper(HALF - 1 - i) if upper(HALF - 1 - i) <= \
                            <uint64_t>INT64_MAX else INT64_MIN
                    v = lo if v < lo else (hi if v > hi else v)
                    out[name] = v * scale
                    break
        out["max"] = hi * scale
        return out


cdef class BookLatency:
    """One book's stages, recorded by the feed: ``applied(ts_ms, recv_ns)`` when a frame was
    applied (network = recv − ts, apply = now − recv), ``delivered()`` once its consumers ran
    (callback = now − applied, total = now − ts). The feed's hub (``okxbook.feed._hub``) calls
    the C methods ``record_applied``/``record_delivered`` behind them, with no Python call."""

    def __init__(self, str conn not None, double window=10.0):
        self.conn = conn
        self.network = LogHistogram(window)
        self.apply = LogHistogram(window)
        self.callback = LogHistogram(window)
        self.total = LogHistogram(window)

    def applied(self, int64_t ts_ms, int64_t recv_ns):
        self.record_applied(ts_ms, recv_ns)

    def delivered(self):
        self.record_delivered()

    cdef void record_applied(self, int64_t ts_ms, int64_t recv_ns) noexcept:
        cdef int64_t now = realtime_ns(), mono = monotonic_ns()
        self._applied_ns = now
        self._ts_ms = ts_ms
        if ts_ms > 0:
            self.network.add(recv_ns - ts_ms * 1_000_000, mono)
        self.apply.add(now - recv_ns, mono)

    cdef void record_delivered(self) noexcept:
        if not self._applied_ns:
            return
        cdef int64_t now = realtime_ns(), mono = monotonic_ns()
        self.callback.add(now - self._applied_ns, mono)
        if self._ts_ms > 0:
            self.total.add(now - self._ts_ms * 1_000_000, mono)
        self._applied_ns = 0        # one delivery per applied frame
