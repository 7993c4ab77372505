"""Latency you can see: for every book and every connection of a ``Feed``, how long each frame took
from the exchange to the consumer, as windowed histograms, and the clock offset to the exchange.

Stages, per frame (all in ns of this host's ``time.time_ns()`` clock):

- ``network``: receive − exchange ``ts`` (the push's ``ts`` field, ms). It holds the one-way delay
  *plus the offset between the clocks*, so it can be negative; see ``clock_offset``.
- ``apply``: book updated − receive (parse, apply, verify, the feed's bookkeeping).
- ``callback``: consumers done − book updated (``on_top`` callbacks and ``tops()`` streams, for
  the frames that changed the top of book).
- ``total``: consumers done − exchange ``ts`` (for the same frames as ``callback``).

On the SBE feed (``Feed(encoding="sbe")``) each frame carries two more clocks, the matching
engine's ``tsUs`` and the gateway's send ``outTime`` (µs), and two more stages split ``network``:

- ``engine_to_gateway``: ``outTime`` − ``tsUs`` (both the exchange's clocks: no offset in it).
- ``gateway_to_receive``: receive − ``outTime`` (wire and local stack, clock offset included).

``Feed.sbe_latency(channel, inst)`` (deprecated) is the last frame's three clocks (``SbeLatency``).

Clock offset: recv − ts = delay + (our clock − the exchange's). The delay is never negative, so
the minimum of recv − ts over the window is an upper bound on our clock's lead over the exchange's
and equals it when the fastest frame of the window had no delay; ``network − clock_offset`` is
then the delay above the window's fastest frame. OKX's ``ts`` has 1 ms resolution.

Why hand-written: the histogram is a fixed log-bucket counter (8 buckets per power of two, at most
12.5% relative error, values from −2**63 to 2**63 ns) with a two-generation window, recorded in C
(``okxbook.feed._hist``) because it runs on every frame: about 0.2 µs a frame for both stages.
``hdrh`` (HdrHistogram for Python) records in Python (microseconds a value), has no window and no
negative values.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ._hist import BookLatency, LogHistogram

__all__ = ["SBE_STAGES", "STAGES", "FeedLatency", "LogHistogram", "SbeLatency", "latency_line"]

#: The stages of one frame's way through the feed, in order.
STAGES = ("network", "apply", "callback", "total")
#: The SBE feed's split of ``network`` (engine -> gateway -> this host), reported beside STAGES.
SBE_STAGES = ("engine_to_gateway", "gateway_to_receive")


class SbeLatency(NamedTuple):
    """One SBE frame's clocks: ``ts_us`` matching engine (tsUs), ``out_us`` gateway send
    (outTime), ``recv_ns`` this process's receive time (``Feed.sbe_latency``: the last frame)."""

    ts_us: int
    out_us: int
    recv_ns: int

    @property
    def engine_to_gateway_us(self) -> int:
        return self.out_us - self.ts_us

    @property
    def gateway_to_receive_us(self) -> float:
        """Wire and local stack (clock offset included: the two clocks are not synchronised)."""
        return self.recv_ns / 1000 - self.out_us


class _SbeBook:
    """One SBE book's two extra stages and its last frame's clocks."""

    __slots__ = ("engine_to_gateway", "gateway_to_receive", "last")

    def __init__(self, window: float) -> None:
        self.engine_to_gateway = LogHistogram(window)
        self.gateway_to_receive = LogHistogram(window)
        self.last: SbeLatency | None = None


class FeedLatency:
    """The latency of one feed's books: ``applied`` for each book frame and ``delivered`` after
    the consumers of a top-of-book change ran (the feed's hub does both in C, see ``book``)."""

    def __init__(self, window: float = 10.0) -> None:
        if not window > 0:
            raise ValueError("latency_window must be > 0 seconds")
        self.window = window
        self._books: dict[tuple[str, str], BookLatency] = {}
        self._sbe: dict[tuple[str, str], _SbeBook] = {}

    def book(self, key: tuple[str, str], conn: str) -> BookLatency:
        """The stages of ``key``'s book as received on connection ``conn``; a book that moved
        connection (64008) starts afresh. The feed's hub (``_hub.FeedHub``) keeps the one it
        gets on the subscription and records into it from C."""
        b = self._books.get(key)
        if b is None or b.conn != conn:
            b = self._books[key] = BookLatency(conn, self.window)
        return b

    def applied(self, key: tuple[str, str], conn: str, ts_ms: int, recv_ns: int) -> None:
        self.book(key, conn).applied(ts_ms, recv_ns)

    def sbe_applied(self, key: tuple[str, str], ts_us: int, out_us: int, recv_ns: int) -> None:
        """The SBE clocks of the frame ``applied`` was just called for (a Python call a frame,
        on the SBE feed only)."""
        s = self._sbe.get(key)
        if s is None:
            s = self._sbe[key] = _SbeBook(self.window)
        s.last = SbeLatency(ts_us, out_us, recv_ns)
        if ts_us > 0 and out_us > 0:
            s.engine_to_gateway.record((out_us - ts_us) * 1000)
            s.gateway_to_receive.record(recv_ns - out_us * 1000)

    def sbe_last(self, key: tuple[str, str]) -> SbeLatency | None:
        s = self._sbe.get(key)
        return None if s is None else s.last

    def delivered(self, key: tuple[str, str]) -> None:
        b = self._books.get(key)
        if b is not None:
            b.delivered()

    def report(self) -> dict[str, Any]:
        """``{"window_s", "unit": "us", "clock_offset_ms", "books": {"channel:instId": {...}},
        "connections": {name: {...}}}``; each entry has one summary per stage (``n``, ``min``,
        ``p50``, ``p90``, ``p99``, ``max`` in µs; on the SBE feed also the ``SBE_STAGES``) and its
        own ``clock_offset_ms`` (min of recv − ts over the window: our clock's lead over the
        exchange's plus the fastest delay; None before any frame)."""
        conns: dict[str, dict[str, LogHistogram]] = {}
        books: dict[str, Any] = {}
        for key, b in self._books.items():
            hist = {s: getattr(b, s) for s in STAGES}
            sbe = self._sbe.get(key)
            if sbe is not None:
                hist |= {s: getattr(sbe, s) for s in SBE_STAGES}
            books[f"{key[0]}:{key[1]}"] = self._entry(hist) | {"connection": b.conn}
            merged = conns.setdefault(b.conn, {})
            for s, h in hist.items():
                merged.setdefault(s, LogHistogram(self.window)).merge(h)
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
        out: dict[str, Any] = {s: h.summary() for s, h in hist.items()}
        net_min = out["network"]["min"]
        out["clock_offset_ms"] = None if net_min is None else net_min / 1e3
        return out


def latency_line(report: dict[str, Any]) -> str:
    """One line for a person: every book together (the connections' merged histograms), µs."""
    parts = []
    conns = report.get("connections", {})
    for stage in (*STAGES, *SBE_STAGES):
        merged = [c[stage] for c in conns.values() if stage in c and c[stage]["n"]]
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
