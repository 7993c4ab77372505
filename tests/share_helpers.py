"""Processes for tests/test_share.py (top-level functions, so that ``spawn`` can start them).

A writer replays a deterministic synthetic stream into a ``Publisher``; the test process knows
every state of that stream (it generates the same frames) and checks what a reader saw."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np

from okxbook import Book, Books
from okxbook.share import DEAD, Publisher, SharedBooks
from okxbook.testing import SyntheticBook

KEY = ("books", "S-HM")
LEVELS = 25


def frames(n: int, seed: int = 5) -> list[bytes]:
    gen = SyntheticBook(KEY[1], KEY[0], seed=seed, checksum="zero")
    return [gen.snapshot_frame()] + [gen.next_update_frame() for _ in range(n)]


def state(book: Book) -> bytes:
    """The best LEVELS a side as bytes (prices, sizes, orders): what a reader must see."""
    b, a = book.bids(LEVELS), book.asks(LEVELS)
    cols = ("px_ticks", "sz_lots", "orders")
    return b"".join(np.ascontiguousarray(x[c]).tobytes() for x in (b, a) for c in cols)


def shared_state(bids: np.ndarray, asks: np.ndarray) -> bytes:
    cols = ("px_ticks", "sz_lots", "orders")
    return b"".join(np.ascontiguousarray(x[c]).tobytes() for x in (bids, asks) for c in cols)


def states_of(stream: list[bytes]) -> dict[int, bytes]:
    books = Books()
    out = {}
    for f in stream:
        book = books.apply(f)
        out[book.seq_id] = state(book)
    return out


def read_until(name: str, last_seq: int, ready: Any, out: Any, seed: int) -> None:
    """Reader process: sample the book at random moments until the writer's last seqId (or the
    writer's death); send back (status, seq_id, state) samples and the retry count."""
    rng = random.Random(seed)
    deadline = time.monotonic() + 60
    while True:
        try:
            shared = SharedBooks(name)
            break
        except OSError:
            if time.monotonic() > deadline:
                out.put(("error", "segment never appeared"))
                return
            time.sleep(0.001)
    book = shared.book(*KEY)
    ready.set()
    samples = []
    bids = np.empty(LEVELS, dtype=book.levels(0)[4].dtype)
    asks = np.empty_like(bids)
    while time.monotonic() < deadline:
        status, seq_id, _ts, _recv, nb, na = book.levels_into(bids, asks)
        samples.append((status, seq_id, shared_state(bids[:nb], asks[:na])))
        top = book.top_ticks()
        samples.append((top[0], top[1], None))
        if seq_id == last_seq or status == DEAD:
            break
        spin = rng.random()  # random moments: mostly back to back, sometimes a pause
        if spin < 0.05:
            time.sleep(rng.random() * 0.0002)
        elif spin < 0.5:
            for _ in range(rng.randrange(200)):
                pass
    out.put(("samples", samples, book.retries))
    shared.close()


def write_forever(name: str, ready: Any) -> None:
    """Writer process for the kill tests: publish a synthetic stream in a loop until killed."""
    stream = frames(400, seed=9)
    with Publisher(name, [KEY], levels=LEVELS, heartbeat_interval=0.02, dead_after=0.3) as pub:
        ready.set()
        last_beat = time.monotonic()
        while True:
            books = Books()
            for f in stream:
                book = books.apply(f)
                pub.publish(book, "live", time.time_ns())
                now = time.monotonic()
                if now - last_beat > 0.02:
                    pub.beat()
                    last_beat = now
                time.sleep(0.0001)


def publish_and_exit(name: str, close: bool) -> None:
    """Writer process that publishes one book and exits (cleanly closing, or not)."""
    pub = Publisher(name, [KEY], levels=LEVELS)
    books = Books()
    for f in frames(10):
        pub.publish(books.apply(f), "live", time.time_ns())
    if close:
        pub.close()
    # else: the interpreter's exit (atexit) must remove the segment


def two_books() -> list[Book]:
    """Two states of one book, different at every level (and in seqId)."""
    stream = frames(300, seed=13)
    books, out = Books(), []
    for i, f in enumerate(stream):
        book = books.apply(f)
        if i in (100, 300):
            copy = Book(*KEY)
            copy.copy_from(book)
            out.append(copy)
    return out


def alternate(name: str, ready: Any, seconds: float) -> None:
    """Writer process: publish two different books alternately, back to back."""
    a, b = two_books()
    with Publisher(name, [KEY], levels=LEVELS) as pub:
        pub.publish(a, "live", 1)
        ready.set()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(1000):
                pub.publish(a, "live", 1)
                pub.publish(b, "live", 2)
