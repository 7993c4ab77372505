"""Feeding a live ``Feed`` into a shared-memory ``Publisher``: every applied frame is published
with the feed's status for the book, every status change is published at once, and a heartbeat
task keeps readers sure the writer is alive while the books are quiet.

The work per frame is one C copy (``ShmWriter.publish``: the best ``levels`` a side); this module
only routes the feed's callbacks to it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from okxbook._book import Book
from okxbook.feed import BookStatus, CallbackHandle, Feed

from .segment import DEFAULT_LEVELS, STATUSES, Publisher

__all__ = ["FeedPublisher", "publishing"]


class FeedPublisher:
    """Publishes ``feed``'s books through ``publisher`` until ``close()``.

    Call ``start()`` inside the running loop (it starts the heartbeat task); the feed's own
    ``start()`` may come before or after."""

    def __init__(self, feed: Feed, publisher: Publisher) -> None:
        self.feed = feed
        self.publisher = publisher
        self.published = 0
        self._status: dict[tuple[str, str], str] = {}
        for key in publisher.keys:
            state = feed.status(*key).state
            self._status[key] = state if state in STATUSES else "resyncing"
            publisher.publish(feed.book(*key), self._status[key], 0)
        self._handles: list[CallbackHandle] = [
            feed.on_book(self._on_book),
            feed.on_status(self._on_status),
        ]
        self._beat: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._beat is None:
            self._beat = asyncio.get_running_loop().create_task(self._heartbeat())

    def _on_book(self, book: Book, recv_ns: int) -> None:
        state = self._status.get((book.channel, book.inst_id))
        if state is None:  # a book of the feed this publisher does not carry
            return
        self.publisher.publish(book, state, recv_ns)
        self.published += 1

    def _on_status(self, channel: str, inst_id: str, status: BookStatus) -> None:
        key = (channel, inst_id)
        if key not in self._status:
            return
        state = status.state if status.state in STATUSES else "resyncing"
        self._status[key] = state
        # The whole book with its new status: a book going live is readable at once.
        self.publisher.publish(self.feed.book(channel, inst_id), state, 0)

    async def _heartbeat(self) -> None:
        while True:
            self.publisher.beat()
            await asyncio.sleep(self.publisher.heartbeat_interval)

    async def close(self) -> None:
        """Stop publishing (the publisher stays open: close it to remove the segment)."""
        for handle in self._handles:
            handle.remove()
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat
            self._beat = None


@contextlib.asynccontextmanager
async def publishing(
    feed: Feed, keys: list[tuple[str, str]], name: str, levels: int = DEFAULT_LEVELS
) -> AsyncIterator[FeedPublisher]:
    """Publish ``feed``'s ``keys`` under ``name`` for the duration of the block (inside the
    running loop); the segment is removed at its end."""
    with Publisher(name, keys, levels=levels) as publisher:
        fp = FeedPublisher(feed, publisher)
        fp.start()
        try:
            yield fp
        finally:
            await fp.close()
