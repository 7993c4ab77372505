"""Deltas through the live feeder (okxbook.feed.deltas) against LocalExchange: a callback consumer
and a stream consumer rebuild every book exactly (every level kept, seqId, status) through gaps,
corrupt checksums and a dropped connection; a slow stream is told exactly which seqIds it lost and
then gets a snapshot, never a silent hole; the depth hook fires on changes below the top."""

from __future__ import annotations

import asyncio

import pytest
from feed_helpers import harness, run, settle, wait_for

from okxbook import Book, DeltaBook
from okxbook.feed import BookDeltas, DeltaOverflow

BTC = ("books", "BTC-USDT")
ETH = ("books", "ETH-USDT")


def held(book: Book) -> tuple[dict, dict]:
    _frames, rows = book.snapshot_deltas()
    out: tuple[dict, dict] = ({}, {})
    for r in rows[rows["action"] == 1].tolist():
        out[0 if r[1] > 0 else 1][r[5]] = (r[6], r[8], r[9])
    return out


class Follower:
    """Rebuilds each book from BookDeltas and checks the chain: every update frame of a live book
    follows the seqId it holds (a hole would break it)."""

    def __init__(self) -> None:
        self.books: dict[tuple[str, str], DeltaBook] = {}
        self.frames = 0
        self.snapshots = 0
        self.overflows: list[DeltaOverflow] = []

    def apply(self, item: BookDeltas | DeltaOverflow) -> None:
        if isinstance(item, DeltaOverflow):
            db = self.books[item.key]
            assert item.after_seq_id == db.seq_id  # exactly where it lost some
            assert item.frames >= 1 and item.first_seq_id <= item.last_seq_id
            self.overflows.append(item)
            db.status = "overflow"  # the next item for it must be a snapshot
            return
        db = self.books.setdefault(item.key, DeltaBook(*item.key))
        if db.status == "overflow":
            assert item.is_snapshot, "after an overflow notice comes a snapshot"
        elif not item.is_snapshot and db.status == "live" and item.status == "live":
            assert item.prev_seq_id == db.seq_id, (item.key, item.prev_seq_id, db.seq_id)
        db.apply(item.frame, item.rows)
        self.frames += 1
        self.snapshots += item.is_snapshot

    def check(self, feed) -> None:
        for key in feed.keys:
            book, db = feed.book(*key), self.books[key]
            assert (db.bid, db.ask) == held(book)
            assert db.seq_id == book.seq_id and db.status == book.status == "live"


def test_callback_and_stream_consumers_rebuild_the_books_through_faults():
    async def main():
        async with harness([BTC, ETH]) as h:
            ex, feed = h.ex, h.feed
            await ex.step(3)
            await settle(feed, ex)
            cb, streamed = Follower(), Follower()
            feed.on_deltas(cb.apply)  # starts with a snapshot of each book
            stream = feed.deltas()
            assert cb.snapshots == 2
            await ex.step(20)
            ex.inject_gap(*BTC)
            await ex.step(10)
            ex.corrupt_checksum(*ETH)
            await ex.step(10)
            await settle(feed, ex)
            opened = ex.connections_opened
            await ex.drop(ex.connections[0])
            # The feed may not have seen the abort yet (its books still read live): wait for its
            # new connection first, or wait_live returns at once and the check races the resync.
            await wait_for(lambda: ex.connections_opened > opened, what="the feed reconnects")
            await feed.wait_live(timeout=5.0)
            await ex.step(15)
            await settle(feed, ex)
            while (item := stream.get_nowait()) is not None:
                streamed.apply(item)
            for f in (cb, streamed):
                f.check(feed)
                assert f.frames > 40 and not f.overflows and f.snapshots >= 4
            assert stream.dropped == 0 and feed.book(*BTC).seq_gaps >= 1

    run(main)


def test_a_slow_stream_is_told_exactly_what_it_lost_then_gets_a_snapshot():
    async def main():
        async with harness([BTC, ETH]) as h:
            ex, feed = h.ex, h.feed
            stream = feed.deltas(maxsize=8)
            slow = Follower()
            await ex.step(2)
            await settle(feed, ex)
            for _ in range(3):  # a consumer that reads a little, now and then
                for _ in range(3):
                    item = stream.get_nowait()
                    if item is not None:
                        slow.apply(item)
                await ex.step(12)
                await settle(feed, ex)
            assert stream.dropped > 0 and len(stream) <= 8
            while (item := stream.get_nowait()) is not None:
                slow.apply(item)
            slow.check(feed)
            assert slow.overflows and stream.overflows == len(slow.overflows)
            assert sum(o.frames for o in slow.overflows) == stream.dropped
            # Then it keeps up again: every frame, no new overflow.
            n = len(slow.overflows)
            for _ in range(5):
                await ex.step(1)
                await settle(feed, ex)
                async with asyncio.timeout(2):
                    while len(stream):
                        slow.apply(await anext(stream))
            slow.check(feed)
            assert len(slow.overflows) == n

    run(main)


def test_depth_hook_fires_on_every_level_change_not_only_the_top():
    async def main():
        async with harness([BTC]) as h:
            ex, feed = h.ex, h.feed
            depth_calls, top_calls, frames = [], [], []
            feed.on_depth(lambda book, ns: depth_calls.append(book.seq_id))
            feed.on_top(lambda book, ns: top_calls.append(book.seq_id))
            feed.on_deltas(lambda d: frames.append(len(d.rows)), snapshot=False)
            await ex.step(40)
            await settle(feed, ex)
            assert len(depth_calls) == sum(1 for n in frames if n) > len(top_calls)

    run(main)


def test_on_book_sees_every_applied_frame_and_on_depth_only_those_that_changed_a_level():
    async def main():
        async with harness([BTC]) as h:
            ex, feed = h.ex, h.feed
            await feed.wait_live(timeout=5)
            book_calls, depth_calls, frames = [], [], []
            feed.on_book(lambda book, ns: book_calls.append(book.seq_id))
            feed.on_depth(lambda book, ns: depth_calls.append(book.seq_id))
            feed.on_deltas(lambda d: frames.append((d.seq_id, len(d.rows))), snapshot=False)
            await ex.step(10)
            for _ in range(3):  # seqId == prevSeqId, no level: on_book only
                ex.heartbeat(*BTC)
            await ex.step(10)
            await settle(feed, ex)
            assert book_calls == [seq for seq, _ in frames]
            assert depth_calls == [seq for seq, n in frames if n]
            assert len(book_calls) - len(depth_calls) >= 3

    run(main)


def test_a_coroutine_delta_callback_is_refused():
    from okxbook.feed import Feed

    async def cb(d):  # pragma: no cover - never called
        pass

    feed = Feed([BTC])
    for register in (feed.on_deltas, feed.on_depth):
        with pytest.raises(TypeError):
            register(cb)
    with pytest.raises(ValueError):
        feed.deltas(maxsize=1)
    with pytest.raises(KeyError):
        feed.deltas("NOPE-USDT")
