# cython: language_level=3
"""The feed's per-frame dispatch in C (issue 10, "Live feeder"): what happens after a frame was
applied to a book, for every receive path (picows' C listener ``feed._receive`` and the Python
``Connection._on_frame`` of both transports call the same methods here).

- ``FeedHub`` (one per ``Feed``) holds the consumers: the ``on_top``/``on_book``/``on_depth``
  callback lists, the ``tops()`` streams, the delta hub (``feed.deltas.DeltaHub``, drained only
  once a delta consumer turned it on) and the latency histograms (``feed._hist.BookLatency``,
  recorded by C calls). A frame nobody consumes makes no Python call here; with one ``on_top``
  callback a top-changing frame makes exactly one, the callback's.
- ``LinkCore`` and ``SubCore`` are the C halves of ``Connection`` and its ``ConnSub`` (Python
  subclasses): the fields the receive path reads and writes per frame (a socket's retired/gone/
  staging flags, its books, a subscription's state, staleness, last receive time and latency
  slot), so the C path reads them as struct fields while the Python layer uses them as
  attributes. The decisions (state machine, resync, status) stay in ``connection.py``.

Hand-written because the dispatch is the feed's own (its callbacks, streams and histograms); in
Python it cost a few Python calls per frame, several times the apply itself.
"""

import logging

from okxbook._book cimport Book

log = logging.getLogger("okxbook.feed")


cdef class LinkCore:
    """The receive path's fields of a ``Connection`` (see the module docstring)."""


cdef class SubCore:
    """The receive path's fields of a ``ConnSub``; ``latency`` is its book's ``BookLatency`` once
    a frame was applied (the feed's ``FeedLatency`` owns it)."""


cdef inline int _call_all(list callbacks, object book, object recv_ns, str what) except -1:
    for callback in callbacks:
        try:
            callback(book, recv_ns)
        except Exception:
            log.exception(what)
    return 0


cdef class FeedHub:
    """One feed's consumers, called after each applied frame (see the module docstring).
    ``latency`` is the feed's ``FeedLatency``; ``deltas`` its ``DeltaHub``, drained after each
    frame once ``deltas_active``; ``sbe`` adds the SBE clocks of each frame to the latency."""

    def __init__(self, latency not None):
        self.top_callbacks = []
        self.book_callbacks = []
        self.depth_callbacks = []
        self.streams = []
        self.latency = latency
        self.deltas = None
        self.deltas_active = False
        self.sbe = False

    cpdef deltas_ready(self, long long recv_ns):
        """A connection applied a frame (or failed to): hand the recorded deltas to their
        consumers, if any."""
        if self.deltas_active:
            self.deltas.drain(recv_ns)

    cpdef applied(self, LinkCore conn, SubCore cs, Book book, long long recv_ns):
        """A frame ``conn`` applied to the book of ``cs`` (not staging): its latency, then the
        ``on_book`` callbacks, then the ``on_depth`` ones if it changed a level."""
        cdef BookLatency lat = cs.latency
        if lat is None or (lat.conn is not conn.name and lat.conn != conn.name):
            lat = self.latency.book(cs.key, conn.name)
            cs.latency = lat
        lat.record_applied(book.ts_ms, recv_ns)
        if self.sbe:
            books = conn.books
            self.latency.sbe_applied(cs.key, books.last_ts_us, books.last_out_us, recv_ns)
        if self.book_callbacks:
            _call_all(self.book_callbacks, book, recv_ns, "on_book callback failed")
        if self.depth_callbacks and self.deltas.changed(cs.key):
            _call_all(self.depth_callbacks, book, recv_ns, "on_depth callback failed")

    cpdef top(self, object key, Book book, long long recv_ns, SubCore cs=None):
        """The top of ``key``'s book changed (or it went live): the ``tops()`` streams, the
        ``on_top`` callbacks, then the latency's callback/total stages."""
        if self.streams:
            for stream in self.streams:
                if stream.wants(key):
                    stream.push(key, book, recv_ns)
        if self.top_callbacks:
            _call_all(self.top_callbacks, book, recv_ns, "on_top callback failed")
        if cs is not None and cs.latency is not None:
            cs.latency.record_delivered()
        else:
            self.latency.delivered(key)

    cdef int live_frame(self, LinkCore conn, SubCore cs, Book book, long long recv_ns) except -1:
        """What ``Connection._applied`` does for a frame of a live book, from C."""
        self.applied(conn, cs, book, recv_ns)
        if book.top_changed:
            self.top(cs.key, book, recv_ns, cs)
        return 0
