"""ZeroMQ (pyzmq) transport for okxbook's delta publisher and subscriber (``okxbook.publish.base``).

The publisher binds a PUB socket (deltas and snapshots, topic ``channel/instId``) and, optionally,
a PULL socket where subscribers ask for a snapshot after a gap; a subscriber connects a SUB socket
(subscribed to the books it wants, by topic prefix) and a PUSH socket for its requests. PUB never
blocks the publisher: a subscriber that cannot keep up loses messages (ZeroMQ's high-water mark),
which its chain check turns into a gap and a snapshot request.

    pub = zmq_publisher("tcp://*:5556", requests="tcp://*:5557")
    pub.attach(feed)                               # inside the feed's event loop
    ...
    sub = zmq_subscriber("tcp://host:5556", requests="tcp://host:5557")
    sub.start()
    sub.books["books", "BTC-USDT"].bids(5)

Needs the ``zmq`` extra: ``pip install 'okxbook[zmq]'``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import zmq
import zmq.asyncio

from .base import DeltaPublisher, DeltaSubscriber, topic_of

__all__ = ["ZmqSink", "ZmqSource", "zmq_publisher", "zmq_subscriber"]


class ZmqSink:
    """A ``MessageSink`` on a PUB socket (and a PULL socket for snapshot requests)."""

    def __init__(
        self,
        endpoint: str,
        *,
        requests: str | None = None,
        context: zmq.asyncio.Context | None = None,
        sndhwm: int = 100_000,
    ) -> None:
        self.context = context or zmq.asyncio.Context.instance()
        self.pub = self.context.socket(zmq.PUB)
        self.pub.setsockopt(zmq.SNDHWM, sndhwm)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.bind(endpoint)
        self.endpoint = self.pub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.pull: zmq.asyncio.Socket | None = None
        self.requests_endpoint: str | None = None
        if requests is not None:
            self.pull = self.context.socket(zmq.PULL)
            self.pull.setsockopt(zmq.LINGER, 0)
            self.pull.bind(requests)
            self.requests_endpoint = self.pull.getsockopt_string(zmq.LAST_ENDPOINT)

    def send(self, topic: bytes, parts: list[bytes]) -> None:
        try:
            # Non-blocking: at the high-water mark PUB drops (the subscriber sees a gap).
            self.pub.send_multipart([topic, *parts], flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass

    async def requests(self) -> AsyncIterator[bytes]:
        if self.pull is None:
            await asyncio.Event().wait()  # no request socket: never yields
            return
        while True:
            yield await self.pull.recv()

    def close(self) -> None:
        self.pub.close()
        if self.pull is not None:
            self.pull.close()


class ZmqSource:
    """A ``MessageSource`` on a SUB socket (and a PUSH socket for snapshot requests)."""

    def __init__(
        self,
        endpoint: str,
        *,
        requests: str | None = None,
        books: Iterable[tuple[str, str]] | None = None,
        context: zmq.asyncio.Context | None = None,
        rcvhwm: int = 100_000,
    ) -> None:
        self.context = context or zmq.asyncio.Context.instance()
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, rcvhwm)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.connect(endpoint)
        if books is None:
            self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        else:
            for channel, inst_id in books:
                # "books/BTC-USDT" would also match "books/BTC-USDT-SWAP" as a prefix: the
                # subscriber ignores books it did not ask for.
                self.sub.setsockopt(zmq.SUBSCRIBE, topic_of(channel, inst_id))
        self.push: zmq.asyncio.Socket | None = None
        if requests is not None:
            self.push = self.context.socket(zmq.PUSH)
            self.push.setsockopt(zmq.LINGER, 0)
            self.push.setsockopt(zmq.SNDHWM, 100)
            self.push.connect(requests)

    async def recv(self) -> tuple[bytes, list[bytes]]:
        while True:
            parts = await self.sub.recv_multipart()
            if parts:
                return parts[0], parts[1:]

    def request_snapshot(self, topic: bytes) -> None:
        if self.push is None:
            return
        try:
            self.push.send(topic, flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # the publisher is away: its periodic snapshot will come

    def close(self) -> None:
        self.sub.close()
        if self.push is not None:
            self.push.close()


def zmq_publisher(
    endpoint: str, *, requests: str | None = None, snapshot_every: float = 5.0
) -> DeltaPublisher:
    """A ``DeltaPublisher`` on ZeroMQ: PUB bound at ``endpoint``, requests PULL at ``requests``."""
    return DeltaPublisher(ZmqSink(endpoint, requests=requests), snapshot_every=snapshot_every)


def zmq_subscriber(
    endpoint: str,
    *,
    requests: str | None = None,
    books: Iterable[tuple[str, str]] | None = None,
) -> DeltaSubscriber:
    """A ``DeltaSubscriber`` on ZeroMQ (``books``: only these, else all)."""
    wanted = list(books) if books is not None else None
    source = ZmqSource(endpoint, requests=requests, books=wanted)
    return DeltaSubscriber(source, books=wanted)
