"""Deltas to other processes and hosts, independent of the messaging library.

A ``DeltaPublisher`` sends each book's delta frames (``okxbook.DeltaRecorder`` rows) and periodic
snapshots through a ``MessageSink``; a ``DeltaSubscriber`` reads them from a ``MessageSource``,
rebuilds each book (``okxbook.DeltaBook``) and verifies the chain. ZeroMQ implements the two
protocols in ``okxbook.publish.zmq``; Redis Streams or NATS need only another pair.

One message = a topic (``b"channel/instId"``, so subscribers filter by prefix) and three parts:

- a header: ``b"OKXD"``, format version (1), kind (0 deltas, 1 snapshot), and the publisher's
  message number for that book (1, 2, 3 ...), packed little-endian (``HEADER``);
- the ``FRAME_DTYPE`` row, raw;
- the ``DELTA_DTYPE`` rows, raw (numpy reads them back without a copy).

The subscriber accepts a book's deltas only on an unbroken chain: its message number follows the
last one, and an update's ``prevSeqId`` is the seqId it holds. Anything else is a gap: the book is
marked ``"resyncing"``, its deltas are dropped, and a snapshot is requested (when the source can) or
waited for (the publisher sends one per book every ``snapshot_every`` seconds). Hand-written: the
framing is ours (numpy rows), the transport is the library's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from okxbook._book import Book
from okxbook._deltas import DELTA_DTYPE, FRAME_DTYPE, DeltaRecorder
from okxbook.deltas import DeltaBook
from okxbook.errors import DeltaError
from okxbook.feed.deltas import BookDeltas
from okxbook.feed.feed import Feed

__all__ = [
    "HEADER",
    "DeltaPublisher",
    "DeltaSubscriber",
    "Message",
    "MessageSink",
    "MessageSource",
    "decode",
    "encode",
    "topic_of",
]

log = logging.getLogger("okxbook.publish")

Key = tuple[str, str]

#: magic, version, kind, message number of the book
HEADER = struct.Struct("<4sBBQ")
MAGIC = b"OKXD"
VERSION = 1
KIND_DELTAS = 0
KIND_SNAPSHOT = 1


def topic_of(channel: str, inst_id: str) -> bytes:
    return f"{channel}/{inst_id}".encode()


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded message."""

    channel: str
    inst_id: str
    kind: int
    number: int
    frame: np.void
    rows: npt.NDArray[np.void]

    @property
    def key(self) -> Key:
        return (self.channel, self.inst_id)


def encode(
    channel: str, inst_id: str, kind: int, number: int, frame: np.void, rows: npt.NDArray[np.void]
) -> tuple[bytes, list[bytes]]:
    """``(topic, parts)`` of one message."""
    return topic_of(channel, inst_id), [
        HEADER.pack(MAGIC, VERSION, kind, number),
        frame.tobytes(),
        np.ascontiguousarray(rows).tobytes(),
    ]


def decode(topic: bytes, parts: Sequence[bytes]) -> Message:
    """The message, or ``ValueError`` (a ``DeltaError``) for anything that is not one of ours."""
    try:
        channel, _, inst_id = topic.decode().partition("/")
        if len(parts) != 3 or len(parts[0]) != HEADER.size or not inst_id:
            raise ValueError("not an okxbook delta message")
        magic, version, kind, number = HEADER.unpack(parts[0])
        if magic != MAGIC or version != VERSION or kind not in (KIND_DELTAS, KIND_SNAPSHOT):
            raise ValueError("not an okxbook delta message (version 1)")
        if len(parts[1]) != FRAME_DTYPE.itemsize or len(parts[2]) % DELTA_DTYPE.itemsize:
            raise ValueError("truncated delta message")
        frame = np.frombuffer(parts[1], dtype=FRAME_DTYPE)[0]
        rows = np.frombuffer(parts[2], dtype=DELTA_DTYPE)
        if int(frame["n_rows"]) != len(rows):
            raise ValueError("row count does not match the frame")
    except (ValueError, UnicodeDecodeError, struct.error) as exc:
        raise DeltaError(f"bad delta message: {exc}") from None
    return Message(channel, inst_id, kind, number, frame, rows)


class MessageSink(Protocol):
    """Where a publisher sends (one implementation per messaging library)."""

    def send(self, topic: bytes, parts: list[bytes]) -> None:
        """Send one message without blocking (a slow or absent reader may lose it)."""

    def requests(self) -> AsyncIterator[bytes]:
        """An async iterator of snapshot requests (topics), or one that never yields."""
        ...

    def close(self) -> None: ...


class MessageSource(Protocol):
    """Where a subscriber reads from."""

    async def recv(self) -> tuple[bytes, list[bytes]]: ...

    def request_snapshot(self, topic: bytes) -> None:
        """Ask the publisher for a snapshot of one book (a no-op if the library cannot)."""

    def close(self) -> None: ...


class DeltaPublisher:
    """Publishes delta frames and snapshots of books through ``sink``.

    Feed it from a live ``Feed`` (``attach``: every frame's deltas, a snapshot of each book every
    ``snapshot_every`` seconds and on request) or from any ``Books`` with a batch
    ``DeltaRecorder`` (``publish_recorded`` after applying frames, e.g. a replay).
    """

    def __init__(self, sink: MessageSink, *, snapshot_every: float = 5.0) -> None:
        if not snapshot_every > 0:
            raise ValueError("snapshot_every must be a positive number of seconds")
        self.sink = sink
        self.snapshot_every = snapshot_every
        self._numbers: dict[Key, int] = {}
        self._books: dict[Key, Book] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._handle: Any = None
        self.sent = 0
        self.snapshots = 0

    def _send(self, key: Key, kind: int, frame: np.void, rows: npt.NDArray[np.void]) -> None:
        number = self._numbers.get(key, 0) + 1
        self._numbers[key] = number
        topic, parts = encode(key[0], key[1], kind, number, frame, rows)
        self.sink.send(topic, parts)
        self.sent += 1

    def publish(self, deltas: BookDeltas) -> None:
        """Send one frame's deltas (an ``on_deltas`` callback)."""
        kind = KIND_SNAPSHOT if deltas.is_snapshot else KIND_DELTAS
        self._send(deltas.key, kind, deltas.frame, deltas.rows)

    def publish_recorded(self, recorder: DeltaRecorder) -> int:
        """Send every frame ``recorder`` holds (then clear it); returns how many."""
        frames, rows = recorder.frames(copy=False), recorder.rows(copy=False)
        names = recorder.books
        for frame in frames:
            first = int(frame["first_row"])
            kind = KIND_SNAPSHOT if frame["is_snapshot"] else KIND_DELTAS
            key = names[int(frame["book"])]
            self._send(key, kind, frame, rows[first : first + int(frame["n_rows"])])
        recorder.clear()
        return len(frames)

    def snapshot(self, book: Book) -> None:
        """Send the whole book (every level it keeps) as a snapshot message."""
        frames, rows = book.snapshot_deltas()
        self._books[(book.channel, book.inst_id)] = book
        self._send((book.channel, book.inst_id), KIND_SNAPSHOT, frames[0], rows)
        self.snapshots += 1

    def track(self, books: Iterable[Book]) -> None:
        """Books whose snapshots ``run`` sends periodically and on request."""
        for book in books:
            self._books[(book.channel, book.inst_id)] = book

    def attach(self, feed: Feed) -> None:
        """Publish ``feed``'s deltas from now on (starting with a snapshot of each live book) and
        start the snapshot/request tasks (``close`` stops them)."""
        self.track(feed.book(*key) for key in feed.keys)
        self._handle = feed.on_deltas(self.publish, snapshot=True)
        self.start()

    def start(self) -> None:
        """Start the periodic snapshots and the request handler in the running loop."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._periodic()), loop.create_task(self._answer())]

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.snapshot_every)
            for book in list(self._books.values()):
                self.snapshot(book)

    async def _answer(self) -> None:
        async for topic in self.sink.requests():
            channel, _, inst_id = bytes(topic).decode("utf-8", "replace").partition("/")
            book = self._books.get((channel, inst_id))
            if book is not None:
                self.snapshot(book)

    async def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.sink.close()


class DeltaSubscriber:
    """Rebuilds the published books from ``source``; ``books[key]`` is a ``DeltaBook`` (check
    ``status(key)``: ``"live"`` only on a verified chain since a snapshot).

    ``await run()`` (or ``start()``/``close()``) reads until closed; ``on_update(key)`` is called
    after every message applied.
    """

    def __init__(
        self,
        source: MessageSource,
        *,
        books: Iterable[Key] | None = None,
        on_update: Callable[[Key], None] | None = None,
        request_after: float = 0.5,
    ) -> None:
        self.source = source
        self.wanted = set(books) if books is not None else None
        self.on_update = on_update
        self.request_after = request_after
        self.books: dict[Key, DeltaBook] = {}
        self._numbers: dict[Key, int] = {}
        self._synced: dict[Key, bool] = {}
        self._requested: dict[Key, float] = {}
        self.gaps = 0
        self.dropped = 0
        self.applied = 0
        self.bad_messages = 0
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def status(self, key: Key) -> str:
        """``"live"``, ``"invalid"`` (the publisher's book is), ``"resyncing"`` (a gap: waiting for
        a snapshot) or ``"unknown"`` (nothing yet)."""
        if key not in self.books:
            return "unknown"
        if not self._synced.get(key):
            return "resyncing"
        return self.books[key].status

    def _gap(self, key: Key, why: str) -> None:
        if self._synced.get(key, False):
            self.gaps += 1
            log.warning("delta gap on %s/%s: %s; waiting for a snapshot", key[0], key[1], why)
        self._synced[key] = False
        now = time.monotonic()
        if now - self._requested.get(key, -1e9) >= self.request_after:
            self._requested[key] = now
            self.source.request_snapshot(topic_of(*key))

    def handle(self, msg: Message) -> None:
        """Apply one message (exposed for tests and for sources read elsewhere)."""
        key = msg.key
        if self.wanted is not None and key not in self.wanted:
            return
        db = self.books.get(key)
        if db is None:
            db = self.books[key] = DeltaBook(*key)
        last = self._numbers.get(key)
        self._numbers[key] = msg.number
        frame, synced = msg.frame, self._synced.get(key, False)
        if msg.kind == KIND_SNAPSHOT or frame["is_snapshot"]:
            db.apply(frame, msg.rows)  # starts with CLEAR (or INVALID): replaces the book
            self._synced[key] = True
        elif not synced:
            self.dropped += 1
            self._gap(key, "no snapshot yet")
            return
        elif last is None or msg.number != last + 1:
            self.dropped += 1
            self._gap(key, f"message {msg.number} after {last}")
            return
        elif (
            db.status == "live"
            and int(frame["status"]) == 1
            and int(frame["prev_seq_id"]) != db.seq_id
        ):
            self.dropped += 1
            self._gap(key, f"prevSeqId {int(frame['prev_seq_id'])} after seqId {db.seq_id}")
            return
        else:
            try:
                db.apply(frame, msg.rows)
            except DeltaError as exc:
                self.dropped += 1
                self._gap(key, str(exc))
                return
        self.applied += 1
        self._changed.set()
        if self.on_update is not None:
            self.on_update(key)

    async def run(self) -> None:
        """Read and apply messages until cancelled."""
        while True:
            topic, parts = await self.source.recv()
            try:
                msg = decode(topic, parts)
            except DeltaError:
                self.bad_messages += 1
                continue
            self.handle(msg)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until ``predicate()`` holds after some message (or raise ``TimeoutError`` saying
        what arrived meanwhile: with nothing publishing, ``0 messages applied``)."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"wait_for: not true after {timeout:g} s; {self.applied} messages applied, "
                f"{self.dropped} dropped, {self.bad_messages} malformed, {self.gaps} gaps"
                + ("" if self.applied else " (is the publisher running and reachable?)")
            ) from None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.source.close()
