"""Latency you can see: for every book and every connection of a ``Feed``, how long each frame took
from the exchange to the consumer, as windowed histograms, and the clock offset to the exchange.

Stages, per frame (all in ns of this host's ``time.time_ns()`` clock):

- ``network``: receive − exchange ``ts`` (the push's ``ts`` field, ms). It holds the one-way delay
  *plus the offset between the clocks*, so it can be negative; see ``clock_offset``.
- ``apply``: book updated − receive (parse, apply, verify, the feed's bookkeeping).
- ``callback``: consumers done − book updated (``on_top`` callbacks and ``tops()`` streams, for
  the frames that changed the top of book).
- ``total``: consumers done − exchange ``ts`` (for the same frames as ``callback``).

Clock offset: recv − ts = delay + (our clock − the exchange's). The delay is never negative, so
the minimum of recv − ts over the window is an upper bound on our clock's lead over the exchange's
and equals it when the fastest frame of the window had no delay; ``network − clock_offset`` is
then the delay above the window's fastest frame. OKX's ``ts`` has 1 ms resolution.

Why hand-written: the histogram is a fixed log-bucket counter (8 buckets per power of two, at most
12.5% relative error, values from −2**63 to 2**63 ns) with a two-generation window; recording is
one ``int.bit_length`` and one list increment. ``hdrh`` (HdrHistogram for Python) records in Python
too, has no window and no negative values, and would be a dependency for forty lines.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["STAGES", "FeedLatency", "LogHistogram", "latency_line"]

#: The stages of one frame's way through the feed, in order.
STAGES = ("network", "apply", "callback", "total")

SUB = 8  # buckets per power of two
_HALF = (63 - 2) * SUB + SUB  # buckets for each sign: magnitudes up to 2**63


def _mag(v: int) -> int:
    """Bucket of a magnitude >= 0: exact below SUB, then SUB buckets per power of two."""
    if v < SUB:
        return v
    b = v.bit_length() - 1
    return (b - 2) * SUB + (v >> (b - 3)) - SUB


def _upper(m: int) -> int:
    """The largest magnitude in bucket ``m`` (what a percentile reports: never under the truth)."""
    if m < SUB:
        return m
    b, sub = m // SUB + 2, m % SUB
    return ((SUB + sub + 1) << (b - 3)) - 1


class LogHistogram:
    """Counts of int values in log buckets over a sliding window of ``window`` s to 2x that: two
    generations, the older one dropped when the newer is ``window`` old. Exact count, min, max."""

    __slots__ = ("_gens", "_started", "window_ns")

    def __init__(self, window: float = 10.0) -> None:
        self.window_ns = int(window * 1e9)
        self._gens: list[list[Any]] = [self._empty(), self._empty()]
        self._started = time.monotonic_ns()

    @staticmethod
    def _empty() -> list[Any]:
        # [counts, n, min, max]
        return [[0] * (2 * _HALF), 0, None, None]

    def _rotate(self, now: int) -> None:
        if now - self._started >= self.window_ns:
            self._gens = [self._gens[1], self._empty()]
            self._started = now

    def record(self, v: int, now_mono_ns: int | None = None) -> None:
        now = time.monotonic_ns() if now_mono_ns is None else now_mono_ns
        if now - self._started >= self.window_ns:
            self._rotate(now)
        g = self._gens[1]
        g[0][_HALF + _mag(v) if v >= 0 else _HALF - 1 - _mag(-v)] += 1
        g[1] += 1
        if g[2] is None or v < g[2]:
            g[2] = v
        if g[3] is None or v > g[3]:
            g[3] = v

    def merge(self, other: LogHistogram) -> None:
        """Add ``other``'s counts (a connection's histogram is the sum of its books')."""
        for mine, theirs in zip(self._gens, other._gens, strict=True):
            counts = mine[0]
            for i, c in enumerate(theirs[0]):
                if c:
                    counts[i] += c
            mine[1] += theirs[1]
            for k, pick in ((2, min), (3, max)):
                if theirs[k] is not None:
                    mine[k] = theirs[k] if mine[k] is None else pick(mine[k], theirs[k])

    @property
    def count(self) -> int:
        return int(self._gens[0][1] + self._gens[1][1])

    def summary(self, scale: float = 1e-3) -> dict[str, float | int | None]:
        """``{"n", "min", "p50", "p90", "p99", "max"}`` over the window, in ns x ``scale`` (µs by
        default); percentiles are bucket upper bounds (at most 12.5% over), min/max exact."""
        n = self.count
        out: dict[str, float | int | None] = {"n": n}
        if not n:
            out.update(min=None, p50=None, p90=None, p99=None, max=None)
            return out
        counts = [a + b for a, b in zip(self._gens[0][0], self._gens[1][0], strict=True)]
        lo = min(g[2] for g in self._gens if g[2] is not None)
        hi = max(g[3] for g in self._gens if g[3] is not None)
        out["min"] = lo * scale
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            rank = max(1, int(q * n + 0.999999))
            seen = 0
            for i, c in enumerate(counts):
                seen += c
                if seen >= rank:
                    v = _upper(i - _HALF) if i >= _HALF else -_upper(_HALF - 1 - i)
                    out[name] = min(max(v, lo), hi) * scale
                    break
        out["max"] = hi * scale
        return out


class _BookLatency:
    __slots__ = ("applied_ns", "conn", "hist", "ts_ms")

    def __init__(self, conn: str, window: float) -> None:
        self.conn = conn
        self.hist = {s: LogHistogram(window) for s in STAGES}
        self.applied_ns = 0
        self.ts_ms = 0


class FeedLatency:
    """The latency of one feed's books; the feed calls ``applied`` for each book frame and
    ``delivered`` after the consumers of a top-of-book change ran."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._books: dict[tuple[str, str], _BookLatency] = {}

    def applied(self, key: tuple[str, str], conn: str, ts_ms: int, recv_ns: int) -> None:
        now = time.time_ns()
        mono = time.monotonic_ns()
        b = self._books.get(key)
        if b is None or b.conn != conn:
            b = self._books[key] = _BookLatency(conn, self.window)
        b.applied_ns = now
        b.ts_ms = ts_ms
        if ts_ms > 0:
            b.hist["network"].record(recv_ns - ts_ms * 1_000_000, mono)
        b.hist["apply"].record(now - recv_ns, mono)

    def delivered(self, key: tuple[str, str]) -> None:
        b = self._books.get(key)
        if b is None or not b.applied_ns:
            return
        now = time.time_ns()
        mono = time.monotonic_ns()
        b.hist["callback"].record(now - b.applied_ns, mono)
        if b.ts_ms > 0:
            b.hist["total"].record(now - b.ts_ms * 1_000_000, mono)
        b.applied_ns = 0  # one delivery per applied frame

    def report(self) -> dict[str, Any]:
        """``{"window_s", "unit": "us", "clock_offset_ms", "books": {"channel:instId": {...}},
        "connections": {name: {...}}}``; each entry has one summary per stage (``n``, ``min``,
        ``p50``, ``p90``, ``p99``, ``max`` in µs) and its own ``clock_offset_ms`` (min of
        recv − ts over the window: our clock's lead over the exchange's plus the fastest delay;
        None before any frame)."""
        conns: dict[str, dict[str, LogHistogram]] = {}
        books: dict[str, Any] = {}
        for (channel, inst_id), b in self._books.items():
            books[f"{channel}:{inst_id}"] = self._entry(b.hist) | {"connection": b.conn}
            merged = conns.setdefault(b.conn, {s: LogHistogram(self.window) for s in STAGES})
            for s in STAGES:
                merged[s].merge(b.hist[s])
        connections = {name: self._entry(h) for name, h in conns.items()}
        offsets = [c["clock_offset_ms"] for c in connections.values()]
        known = [o for o in offsets if o is not None]
        return {
            "window_s": self.window,
            "unit": "us",
            "clock_offset_ms": min(known) if known else None,
            "books": books,
            "connections": connections,
        }

    @staticmethod
    def _entry(hist: dict[str, LogHistogram]) -> dict[str, Any]:
        out: dict[str, Any] = {s: hist[s].summary() for s in STAGES}
        net_min = out["network"]["min"]
        out["clock_offset_ms"] = None if net_min is None else net_min / 1e3
        return out


def latency_line(report: dict[str, Any]) -> str:
    """One line for a person: every book together (the connections' merged histograms), µs."""
    parts = []
    conns = report.get("connections", {})
    for stage in STAGES:
        merged = [c[stage] for c in conns.values() if c[stage]["n"]]
        if not merged:
            continue
        p50 = max(m["p50"] for m in merged)
        p99 = max(m["p99"] for m in merged)
        top = max(m["max"] for m in merged)
        parts.append(f"{stage} {_us(p50)}/{_us(p99)}/{_us(top)}")
    if not parts:
        return "latency: no frames yet"
    offset = report.get("clock_offset_ms")
    tail = f"; clock offset <= {offset:.1f} ms (min recv-ts)" if offset is not None else ""
    return f"latency p50/p99/max over {report['window_s']:g}s: " + ", ".join(parts) + tail


def _us(v: float) -> str:
    return f"{v / 1e3:.1f}ms" if abs(v) >= 1e4 else f"{v:.0f}us"
