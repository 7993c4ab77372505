"""The ZeroMQ delta publisher and subscriber (okxbook.publish): the subscriber ends on exactly the
publisher's books (every level kept, seqId, status) through forced gaps (messages dropped between
them), by requesting a snapshot or by waiting for the periodic one; the chain check catches every
dropped message; bad messages are counted, never applied."""

from __future__ import annotations

import asyncio

import pytest
from feed_helpers import harness, run, settle

from okxbook import Book, Books, DeltaError, DeltaRecorder
from okxbook.publish.base import HEADER, DeltaPublisher, DeltaSubscriber, decode, encode
from okxbook.publish.zmq import ZmqSink, ZmqSource
from okxbook.testing import synthetic_stream

LOCAL = "tcp://127.0.0.1:*"


def held(book: Book) -> tuple[dict, dict]:
    _frames, rows = book.snapshot_deltas()
    out: tuple[dict, dict] = ({}, {})
    for r in rows[rows["action"] == 1].tolist():
        out[0 if r[1] > 0 else 1][r[5]] = (r[6], r[8], r[9])
    return out


class LossySink:
    """A ZmqSink that drops the messages ``drop(topic, number)`` names (a forced gap)."""

    def __init__(self, sink: ZmqSink, drop) -> None:
        self.sink, self.drop, self.dropped = sink, drop, 0

    def send(self, topic, parts):
        _magic, _version, _kind, number = HEADER.unpack(parts[0])
        if self.drop(topic, number):
            self.dropped += 1
            return
        self.sink.send(topic, parts)

    def requests(self):
        return self.sink.requests()

    def close(self):
        self.sink.close()


def same(sub: DeltaSubscriber, books) -> bool:
    for book in books:
        key = (book.channel, book.inst_id)
        if sub.status(key) != "live":
            return False
        db = sub.books[key]
        if db.seq_id != book.seq_id or (db.bid, db.ask) != held(book):
            return False
    return True


@pytest.mark.parametrize("with_requests", [True, False], ids=["request", "periodic"])
def test_subscriber_ends_on_the_publisher_books_through_forced_gaps(with_requests):
    async def main():
        sink = ZmqSink(LOCAL, requests=LOCAL if with_requests else None)
        # Drop a run of BTC messages and a single ETH one, well after the start.
        lossy = LossySink(
            sink,
            lambda topic, n: (
                (topic == b"books/BTC-USDT" and 150 <= n < 156)
                or (topic == b"books/ETH-USDT" and n == 200)
            ),
        )
        publisher = DeltaPublisher(lossy, snapshot_every=0.3 if not with_requests else 30.0)
        source = ZmqSource(sink.endpoint, requests=sink.requests_endpoint)
        subscriber = DeltaSubscriber(source)
        subscriber.start()
        books = Books()
        rec = DeltaRecorder(batch=True)
        books.record_deltas(rec)
        frames = synthetic_stream(["BTC-USDT", "ETH-USDT", "SOL-USDT"], 1200, seed=7)
        for frame in frames[:3]:
            books.apply(frame)
        rec.clear()
        publisher.track(books)
        publisher.start()
        # ZeroMQ's slow joiner: snapshots until the subscriber has every book.
        while not all(subscriber.status((b.channel, b.inst_id)) == "live" for b in books):
            for b in books:
                publisher.snapshot(b)
            await asyncio.sleep(0.02)
        for i, frame in enumerate(frames[3:]):
            books.apply(frame)
            publisher.publish_recorded(rec)
            if i % 25 == 0:
                await asyncio.sleep(0.001)
        await subscriber.wait_for(lambda: same(subscriber, books), timeout=10.0)
        assert lossy.dropped == 7
        assert subscriber.gaps == 2 and subscriber.dropped >= 2
        assert subscriber.bad_messages == 0
        await subscriber.close()
        await publisher.close()

    run(main)


def test_feed_attached_publisher_reaches_a_subscriber_through_a_gap():
    async def main():
        async with harness([("books", "BTC-USDT"), ("books", "ETH-USDT")]) as h:
            ex, feed = h.ex, h.feed
            sink = ZmqSink(LOCAL, requests=LOCAL)
            lossy = LossySink(sink, lambda topic, n: topic == b"books/ETH-USDT" and n == 30)
            publisher = DeltaPublisher(lossy, snapshot_every=30.0)
            subscriber = DeltaSubscriber(ZmqSource(sink.endpoint, requests=sink.requests_endpoint))
            subscriber.start()
            await asyncio.sleep(0.2)  # let SUB connect before the first snapshots
            publisher.attach(feed)
            feed_books = [feed.book(*k) for k in feed.keys]
            await subscriber.wait_for(
                lambda: all(subscriber.status(k) == "live" for k in feed.keys), 5.0
            )
            sink.pub.send_multipart([b"books/BTC-USDT", b"not a header", b"", b""])
            for _ in range(6):
                await ex.step(10)
                await settle(feed, ex)
            ex.inject_gap("books", "BTC-USDT")  # and one at the exchange: the feed resyncs
            await ex.step(10)
            await settle(feed, ex)
            await subscriber.wait_for(lambda: same(subscriber, feed_books), timeout=5.0)
            assert lossy.dropped == 1 and subscriber.gaps >= 1
            assert subscriber.bad_messages == 1
            await subscriber.close()
            await publisher.close()

    run(main)


def test_messages_round_trip_and_bad_ones_are_refused():
    books = Books()
    rec = DeltaRecorder()
    books.record_deltas(rec)
    for frame in synthetic_stream(["BTC-USDT"], 3, seed=1):
        books.apply(frame)
    f, rows = rec.frames(), rec.rows()
    topic, parts = encode("books", "BTC-USDT", 0, 7, f[0], rows)
    msg = decode(topic, parts)
    assert msg.key == ("books", "BTC-USDT") and msg.number == 7
    assert msg.frame.tobytes() == f[0].tobytes() and (msg.rows == rows).all()
    for bad in (
        [parts[0]],
        [b"XXXX" + parts[0][4:], parts[1], parts[2]],
        [parts[0], parts[1][:-1], parts[2]],
        [parts[0], parts[1], parts[2][:-3]],
        [parts[0], parts[1], parts[2] + parts[2]],
    ):
        with pytest.raises(DeltaError):
            decode(topic, bad)
    with pytest.raises(DeltaError):
        decode(b"no-slash", parts)
