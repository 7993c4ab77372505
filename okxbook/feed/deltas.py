"""Deltas for the feed's consumers: every applied frame's level changes (``okxbook.DeltaRecorder``
rows) as callbacks and as bounded async streams that never leave a silent hole; and which books
the last drain changed, for the feed's depth-change hook (``Feed.on_depth``, run by the feed).

The feed's books record nothing until a consumer asks (``Feed.on_deltas``, ``Feed.deltas``,
``Feed.on_depth``): then each connection's ``Books`` gets a batch recorder, and the hub drains it
after every frame a connection applies and before every status change (so an ``invalidate`` on a
disconnect reaches consumers as its ``INVALID`` row before the status says so).

Overflow policy of ``DeltaStream`` (``maxsize`` frames): a consumer that keeps up gets every
frame's rows, in order. When the buffer is full, the frames of a book that do not fit are dropped
and counted; as soon as there is room the stream yields, for that book, a ``DeltaOverflow`` naming
the seqId it last delivered and the range it dropped, followed by a snapshot (``is_snapshot``) of
the book as it is then, which covers every dropped frame. Other books are not affected until they
too find the buffer full. Hand-written because no library offers this delivery contract.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from okxbook._book import Book
from okxbook._books import Books
from okxbook._deltas import STATUS_NAMES, DeltaRecorder

__all__ = ["BookDeltas", "DeltaHub", "DeltaOverflow", "DeltaStream"]

log = logging.getLogger("okxbook.feed")

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class BookDeltas:
    """One frame's changes to one book: ``frame`` (a ``FRAME_DTYPE`` row) and ``rows``
    (``DELTA_DTYPE``). In an ``on_deltas`` callback ``rows`` is a view valid during the call only
    (copy it to keep it); a stream's items own their rows."""

    channel: str
    inst_id: str
    frame: np.void
    rows: npt.NDArray[np.void]

    @property
    def key(self) -> Key:
        return (self.channel, self.inst_id)

    @property
    def seq_id(self) -> int:
        return int(self.frame["seq_id"])

    @property
    def prev_seq_id(self) -> int:
        return int(self.frame["prev_seq_id"])

    @property
    def ts_ms(self) -> int:
        return int(self.frame["ts_ms"])

    @property
    def recv_ns(self) -> int:
        return int(self.frame["recv_ns"])

    @property
    def is_snapshot(self) -> bool:
        return bool(self.frame["is_snapshot"])

    @property
    def status(self) -> str:
        """The book's status after the frame: ``"live"``, ``"invalid"`` or ``"empty"``."""
        return STATUS_NAMES[int(self.frame["status"])]


@dataclass(frozen=True, slots=True)
class DeltaOverflow:
    """A stream dropped the deltas of ``frames`` frames of one book: those after seqId
    ``after_seq_id`` (the last one delivered for it), up to and including ``last_seq_id``. The next
    item for this book is a snapshot (``BookDeltas.is_snapshot``) that covers them."""

    channel: str
    inst_id: str
    after_seq_id: int
    first_seq_id: int
    last_seq_id: int
    frames: int

    @property
    def key(self) -> Key:
        return (self.channel, self.inst_id)


DeltaItem = BookDeltas | DeltaOverflow


class DeltaStream:
    """``async for item in feed.deltas(...)``: ``BookDeltas`` for every frame, in order, or a
    ``DeltaOverflow`` then a snapshot where the consumer fell ``maxsize`` frames behind."""

    def __init__(
        self,
        keys: Iterable[Key] | None,
        maxsize: int,
        snapshot_of: Callable[[Key], BookDeltas | None],
        on_close: Callable[[DeltaStream], None] | None = None,
    ) -> None:
        if maxsize < 2:
            raise ValueError("maxsize must be at least 2 (an overflow notice and its snapshot)")
        self.maxsize = maxsize
        self._keys = set(keys) if keys is not None else None
        self._snapshot_of = snapshot_of
        self._on_close = on_close
        self._queue: deque[DeltaItem] = deque()
        # key -> [after_seq_id, first_seq_id, last_seq_id, frames] of the frames dropped
        self._lost: dict[Key, list[int]] = {}
        self._last_seq: dict[Key, int] = {}
        self._event = asyncio.Event()
        self._closed = False
        self.delivered = 0
        self.dropped = 0
        self.overflows = 0

    def wants(self, key: Key) -> bool:
        return self._keys is None or key in self._keys

    def push(self, item: BookDeltas) -> None:
        """Queue one frame's deltas (the feed calls this; ``item`` must own its rows)."""
        if self._closed:
            return
        key = item.key
        lost = self._lost.get(key)
        if lost is None and len(self._queue) < self.maxsize:
            self._queue.append(item)
            self._last_seq[key] = item.seq_id
            self._event.set()
            return
        if lost is None:
            self._lost[key] = [self._last_seq.get(key, -1), item.seq_id, item.seq_id, 1]
        else:
            lost[2] = item.seq_id
            lost[3] += 1
        self.dropped += 1
        self._resume()

    def _resume(self) -> None:
        """Turn pending losses into (overflow notice, snapshot) pairs while there is room."""
        for key in list(self._lost):
            if len(self._queue) + 2 > self.maxsize:
                return
            after, first, last, frames = self._lost.pop(key)
            snap = self._snapshot_of(key)
            self._queue.append(DeltaOverflow(key[0], key[1], after, first, last, frames))
            self.overflows += 1
            if snap is not None:
                self._queue.append(snap)
                self._last_seq[key] = snap.seq_id
            self._event.set()

    def close(self) -> None:
        """End the stream (a consumer may close it; the feed's close ends every one)."""
        self._closed = True
        self._event.set()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close(self)

    def __aiter__(self) -> DeltaStream:
        return self

    async def __anext__(self) -> DeltaItem:
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            if self._closed:
                raise StopAsyncIteration
            self._event.clear()
            await self._event.wait()

    def get_nowait(self) -> DeltaItem | None:
        """The next item if one is ready, else None."""
        if not self._queue and self._lost:
            self._resume()
        if not self._queue:
            return None
        self.delivered += 1
        item = self._queue.popleft()
        if self._lost and len(self._queue) + 2 <= self.maxsize:
            self._resume()
        return item

    def __len__(self) -> int:
        return len(self._queue)


class FeedBooks(Protocol):
    """What the hub reads of its ``Feed`` (a protocol, so this module does not import feed.py)."""

    @property
    def subs(self) -> Mapping[Key, Any]: ...
    @property
    def _group_books(self) -> Sequence[Books]: ...
    @property
    def _books_of(self) -> Mapping[Key, Books]: ...

    def book(self, channel: str, inst_id: str) -> Book: ...


class DeltaHub:
    """The feed's delta dispatcher (one per ``Feed``; see the module docstring)."""

    def __init__(self, feed: FeedBooks, on_activate: Callable[[], None] | None = None) -> None:
        self.feed = feed
        self.active = False
        self._on_activate = on_activate  # the feed's hub drains after every frame from then on
        self._streams: list[DeltaStream] = []
        self._callbacks: list[Callable[[BookDeltas], None]] = []
        self._changed: set[Key] = set()  # books with rows in the last drain (Feed.on_depth)
        self._last_recv: dict[Key, int] = {}

    # -------------------------------------------------------------- consumers

    def activate(self) -> None:
        """Record deltas from now on (every connection's books, also later ones)."""
        if self.active:
            return
        self.active = True
        for books in self.feed._group_books:
            if books.recorder is None:
                books.record_deltas(DeltaRecorder(batch=True))
        if self._on_activate is not None:
            self._on_activate()

    def snapshot_of(self, key: Key) -> BookDeltas | None:
        """The book's current state as one snapshot item (every level it keeps)."""
        if key not in self.feed.subs:
            return None
        frames, rows = self.feed.book(*key).snapshot_deltas()
        frame = frames[0]
        frame["recv_ns"] = self._last_recv.get(key, 0)
        return BookDeltas(key[0], key[1], frame, rows)

    def stream(self, keys: list[Key] | None, maxsize: int) -> DeltaStream:
        self.activate()
        self.drain()
        stream = DeltaStream(keys, maxsize, self.snapshot_of, on_close=self._closed)
        for key in keys if keys is not None else list(self.feed.subs):
            if self.feed.book(*key).status != "empty":
                snap = self.snapshot_of(key)
                if snap is not None:
                    stream.push(snap)
        self._streams.append(stream)
        return stream

    def _closed(self, stream: DeltaStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)

    def add_callback(self, callback: Callable[[BookDeltas], None], snapshot: bool) -> None:
        self.activate()
        self.drain()
        self._callbacks.append(callback)
        if snapshot:
            for key in self.feed.subs:
                if self.feed.book(*key).status != "empty":
                    snap = self.snapshot_of(key)
                    if snap is not None:
                        self._call(callback, snap)

    def changed(self, key: Key) -> bool:
        """Whether the last drain delivered level changes of ``key``'s book (the connection
        drains right after each frame it applies, before the feed's ``on_book``/``on_depth``)."""
        return key in self._changed

    def close(self) -> None:
        for stream in list(self._streams):
            stream.close()

    # -------------------------------------------------------------- the receive path

    @staticmethod
    def _call(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("delta callback failed")

    def drain(self, recv_ns: int | None = None) -> None:
        """Deliver every frame the feed's books recorded since the last drain."""
        if not self.active:
            return
        self._changed.clear()
        for books in self.feed._group_books:
            rec = books.recorder
            if rec is not None and rec.n_frames:
                self._drain_one(books, rec, recv_ns)

    def _drain_one(self, books: Books, rec: DeltaRecorder, recv_ns: int | None) -> None:
        frames, rows = rec.frames(copy=False), rec.rows(copy=False)
        names = rec.books
        subs = self.feed.subs
        books_of = self.feed._books_of
        now = recv_ns if recv_ns is not None else time.time_ns()
        try:
            for i in range(len(frames)):
                frame = frames[i]
                if frame["recv_ns"] == 0:
                    frame["recv_ns"] = now
                key = names[int(frame["book"])]
                if key not in subs or books_of.get(key) is not books:
                    continue  # a stray book of that connection (misrouted frames)
                self._last_recv[key] = int(frame["recv_ns"])
                first = int(frame["first_row"])
                mine = rows[first : first + int(frame["n_rows"])]
                if self._callbacks:
                    view = BookDeltas(key[0], key[1], frame, mine)
                    for callback in self._callbacks:
                        self._call(callback, view)
                wanted = [s for s in self._streams if s.wants(key)]
                if wanted:
                    item = BookDeltas(key[0], key[1], frame.copy(), mine.copy())
                    for stream in wanted:
                        stream.push(item)
                if len(mine):
                    self._changed.add(key)
        finally:
            rec.clear()
