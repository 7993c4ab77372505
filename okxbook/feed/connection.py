"""One OKX WebSocket connection and the subscriptions it carries: the thin I/O boundary.

It owns the socket (through a transport), the reconnect loop with backoff, the text ``ping``
keep-alive, the request budget of its connection, and the per-instrument sync state machine:

    subscribing --ack--> syncing --snapshot--> live --gap/checksum/disconnect--> resyncing --> ...
                            \\--update first--> seeding (REST) --splice--> live

Frames go straight from the transport into ``Books.apply``; it parses nothing itself except, on the
cold path of a REST-seeded start, the seqIds of the few frames it buffered. What consumers see
(status, tops) is the ``Feed``'s job: a connection reports to it.
Sources: docs/protocol.md §4 (sequencing, REST seed), §6 (limits, ping, 64008).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from typing import TYPE_CHECKING, Any

import orjson

from okxbook._book import Book
from okxbook._books import Books
from okxbook.errors import (
    ChecksumError,
    FrameError,
    MissingSnapshotError,
    SequenceError,
    UnknownChannelError,
)
from okxbook.events import ErrorEvent, LoginAck, Notice, Pong, SubscribeAck

from .auth import login_request
from .ratelimit import CONNECTS_PER_IP, requests_per_connection
from .rest import RestError, fetch_books
from .transport import Transport, TransportError, connect_transport

if TYPE_CHECKING:
    from .feed import Feed, Subscription

log = logging.getLogger("okxbook.feed")

# Error codes after which a subscription is retried later rather than failed (§6).
RETRYABLE_CODES = {"60014", "64007"}
LOGIN_TIMEOUT = 10.0
# How long a REST snapshot may wait for a buffered update that follows it before it is refetched.
SEED_WAIT = 2.0
_ids = itertools.count(1)


class ConnSub:
    """The sync state of one subscription on one connection."""

    __slots__ = ("buffer", "req_id", "resync_task", "seeding", "state", "sub")

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.state = "idle"  # idle|subscribing|syncing|seeding|live|failed
        self.req_id: str | None = None
        self.buffer: list[bytes] = []
        self.seeding: asyncio.Task[None] | None = None
        self.resync_task: asyncio.Task[None] | None = None


class Connection:
    def __init__(
        self, feed: Feed, name: str, subs: list[Subscription], books: Books, staging: bool = False
    ) -> None:
        self.feed = feed
        self.name = name
        self.books = books
        self.staging = staging  # a 64008 successor syncing its own books
        self.states: dict[tuple[str, str], ConnSub] = {s.key: ConnSub(s) for s in subs}
        self.by_book: dict[Book, ConnSub] = {}
        self._bind_books()
        self.transport: Transport | None = None
        self.budget = requests_per_connection()
        self.last_rx = time.monotonic()
        self.retired = False
        # A 64008 successor keeps what it receives while staging, so that the recording can take
        # it over at the switch (see Feed._successor_progress).
        self.staged_frames: list[tuple[int, bytes]] = []
        self.pending_ids: dict[str, ConnSub] = {}
        self._login_ack: asyncio.Future[LoginAck | ErrorEvent] | None = None
        self._task: asyncio.Task[None] | None = None
        self._attempt = 0
        self._debug = log.isEnabledFor(logging.DEBUG)

    def _bind_books(self) -> None:
        self.by_book = {self.books.book(*key): cs for key, cs in self.states.items()}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self.retired = True
        for cs in self.states.values():
            for task in (cs.seeding, cs.resync_task):
                if task is not None:
                    task.cancel()
        if self.transport is not None:
            try:
                await asyncio.wait_for(self.transport.close(), 2.0)
            except (TimeoutError, Exception):
                self.transport.abort()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    def _backoff(self) -> float:
        first, cap = self.feed.reconnect_delay
        delay = min(cap, first * (2**self._attempt))
        self._attempt += 1
        return float(delay * random.uniform(0.5, 1.0))  # jitter: reconnects do not synchronise

    async def _run(self) -> None:
        feed = self.feed
        while not self.retired and not feed.closing:
            await CONNECTS_PER_IP.acquire()
            try:
                self.transport = await connect_transport(
                    feed.transport_kind, feed.url, self._on_frame
                )
            except TransportError as exc:
                delay = self._backoff()
                log.warning("%s: connect failed (%s); retrying in %.2fs", self.name, exc, delay)
                await asyncio.sleep(delay)
                continue
            feed.stats["connects"] += 1
            self.budget = requests_per_connection()  # OKX counts requests per connection
            self.last_rx = time.monotonic()
            keepalive = asyncio.get_running_loop().create_task(self._keepalive())
            try:
                await self._login_if_needed()
                for cs in self.states.values():
                    if cs.state != "failed":
                        await self._subscribe(cs)
                code = await self.transport.wait_closed()
            except (ConnectionError, OSError) as exc:  # the socket died while we were sending
                code = 1006
                log.debug("%s: send failed: %s", self.name, exc)
            except Exception:  # a bug must not end this connection's reconnect loop
                log.exception("%s: unexpected error; reconnecting", self.name)
                code = 1011
                if self.transport is not None:
                    self.transport.abort()
            finally:
                keepalive.cancel()
            self._on_disconnect(code)
            if self in feed._successors:
                # Closed for the upgrade before the successor caught up: it takes over alone.
                self.retired = True
            if self.retired or feed.closing:
                break
            delay = self._backoff()
            log.warning("%s: disconnected (code %s); reconnecting in %.2fs", self.name, code, delay)
            await asyncio.sleep(delay)

    async def _keepalive(self) -> None:
        """§6: send the text ``ping`` after ``ping_after`` s without data; no reply within
        ``pong_timeout`` means the connection is dead."""
        feed = self.feed
        while True:
            idle = time.monotonic() - self.last_rx
            if idle < feed.ping_after:
                await asyncio.sleep(feed.ping_after - idle)
                continue
            sent_at = time.monotonic()
            try:
                await self._send_text("ping")
            except Exception:
                return
            await asyncio.sleep(feed.pong_timeout)
            if self.last_rx < sent_at and self.transport is not None:
                log.warning(
                    "%s: no pong within %.1fs; dropping the connection",
                    self.name,
                    feed.pong_timeout,
                )
                feed.stats["pong_timeouts"] += 1
                self.transport.abort()
                return

    async def _send_text(self, text: str) -> None:
        if self.transport is None:
            raise ConnectionError("not connected")
        await self.transport.send(text)

    async def _request(self, payload: dict[str, Any]) -> None:
        """Send one subscribe/unsubscribe/login request within the 480/hour budget (§6)."""
        wait = self.budget.delay()
        if wait > 0:
            log.warning("%s: request budget spent; waiting %.0fs", self.name, wait)
        await self.budget.acquire()
        self.feed.stats["requests"] += 1
        await self._send_text(orjson.dumps(payload).decode())

    async def _login_if_needed(self) -> None:
        """Log in before subscribing the VIP channels (§7); if it fails, those subscriptions fail
        with the login error and the others go ahead."""
        needs = any(key[0] in ("books-l2-tbt", "books50-l2-tbt") for key in self.states)
        creds = self.feed.credentials
        if not needs or creds is None:
            return
        self._login_ack = asyncio.get_running_loop().create_future()
        await self._request(login_request(creds))
        assert self.transport is not None
        closed: asyncio.Future[Any] = asyncio.ensure_future(self.transport.wait_closed())
        waiting: set[asyncio.Future[Any]] = {self._login_ack, closed}
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=LOGIN_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            closed.cancel()
        if self._login_ack not in done:
            # The socket died, or no answer came: not a refusal. Reconnect and log in again.
            raise ConnectionError(
                "connection lost during login" if closed in done else "login timed out"
            )
        ack = self._login_ack.result()
        if isinstance(ack, LoginAck) and ack.code == "0":
            return
        reason = f"login failed: {ack.code} {ack.msg}"
        for cs in self.states.values():
            if cs.sub.key[0] in ("books-l2-tbt", "books50-l2-tbt"):
                self._fail(cs, ack.code, reason)

    async def _subscribe(self, cs: ConnSub) -> None:
        req_id = f"s{next(_ids)}"
        cs.req_id = req_id
        cs.state = "subscribing"
        cs.buffer.clear()
        self.pending_ids[req_id] = cs
        channel, inst_id = cs.sub.key
        await self._request(
            {"id": req_id, "op": "subscribe", "args": [{"channel": channel, "instId": inst_id}]}
        )

    async def _unsubscribe(self, cs: ConnSub) -> None:
        channel, inst_id = cs.sub.key
        await self._request(
            {
                "id": f"u{next(_ids)}",
                "op": "unsubscribe",
                "args": [{"channel": channel, "instId": inst_id}],
            }
        )

    def _on_disconnect(self, code: int | None) -> None:
        self.transport = None
        if self.retired:  # replaced (64008) or stopped: its books now belong to another
            return
        self.feed.stats["disconnects"] += 1
        if self.feed.recorder is not None and not self.staging:
            self.feed.recorder.mark_disconnect(time.time_ns())
        for cs in self.states.values():
            for task in (cs.seeding, cs.resync_task):
                if task is not None:
                    task.cancel()
            cs.seeding = cs.resync_task = None
            cs.buffer.clear()
            if cs.state == "failed":
                continue
            cs.state = "idle"
            book = self.books.book(*cs.sub.key)
            if book.status != "empty":
                book.invalidate(f"connection lost (close code {code})")
            if not self.staging:
                self.feed._set_status(
                    cs.sub,
                    "resyncing" if cs.sub.was_live else "syncing",
                    f"connection lost (close code {code})",
                )

    # ------------------------------------------------------------------ the receive path

    def _on_frame(self, frame: bytes) -> None:
        """Called by the transport for every frame. Never raises, never awaits."""
        if self.retired:
            return
        recv_ns = time.time_ns()
        self.last_rx = time.monotonic()
        feed = self.feed
        if feed.recorder is not None:
            self._record(recv_ns, frame)
        try:
            result = self.books.apply(frame)
        except (SequenceError, ChecksumError) as exc:
            self._integrity_lost(exc)
            return
        except MissingSnapshotError as exc:
            self._unsynced_frame(self._state_of(exc.channel, exc.inst_id), frame)
            return
        except UnknownChannelError:
            return
        except FrameError as exc:
            self._bad_frame(exc, frame)
            return
        except Exception:  # a bug must not kill the connection's receive path
            log.exception("%s: unexpected error applying a frame", self.name)
            return
        if type(result) is Book:
            cs = self.by_book.get(result)
            if cs is None:
                return
            if cs.state == "live":
                if result.top_changed and not self.staging:
                    feed._publish(cs.sub, result, recv_ns)
            elif result.is_valid and cs.state in ("syncing", "subscribing", "seeding"):
                self._went_live(cs, recv_ns)
            elif cs.state in ("syncing", "seeding"):
                self._unsynced_frame(cs, frame)
            if self.staging:
                feed._successor_progress(self)
        else:
            self._on_event(result)

    def _record(self, recv_ns: int, frame: bytes) -> None:
        if self.staging:
            self.staged_frames.append((recv_ns, frame))
        else:
            self.feed.recorder.record(recv_ns, frame)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, Pong):
            return
        if isinstance(event, SubscribeAck):
            cs = self.pending_ids.pop(event.id, None) if event.id else None
            if cs is None:
                cs = self._state_of(event.channel, event.inst_id)
            if cs is not None and cs.state == "subscribing":
                cs.state = "syncing"
            return
        if isinstance(event, ErrorEvent):
            cs = self.pending_ids.pop(event.id, None) if event.id else None
            if cs is None:
                cs = self._state_of(event.channel, event.inst_id)
            if (
                self._login_ack is not None
                and not self._login_ack.done()
                and (
                    cs is None
                    and event.code in ("60009", "60024", "60004", "60005", "60006", "60007")
                )
            ):
                self._login_ack.set_result(event)
                return
            if cs is None:
                log.warning("%s: error event %s %s", self.name, event.code, event.msg)
                self.feed._event(event)
                return
            if event.code in RETRYABLE_CODES:
                log.warning(
                    "%s: %s/%s: %s %s; retrying", self.name, *cs.sub.key, event.code, event.msg
                )
                self._schedule_resync(cs, "rejected: retrying")
            else:
                self._fail(cs, event.code, event.msg)
            return
        if isinstance(event, LoginAck):
            if self._login_ack is not None and not self._login_ack.done():
                self._login_ack.set_result(event)
            return
        if isinstance(event, Notice):
            if event.code == "64008" and not self.staging:
                self.feed._upgrade_notice(self)
            else:
                log.warning("%s: notice %s %s", self.name, event.code, event.msg)
            return
        self.feed._event(event)

    def _went_live(self, cs: ConnSub, recv_ns: int) -> None:
        seeding = cs.seeding
        if seeding is not None and seeding is not asyncio.current_task():
            seeding.cancel()  # a WS snapshot came after all: an older REST splice must not
            cs.seeding = None
        cs.buffer.clear()
        cs.state = "live"
        self._attempt = 0
        if not self.staging:
            self.feed._set_status(cs.sub, "live", None)
            self.feed._publish(cs.sub, self.books.book(*cs.sub.key), recv_ns)

    def _fail(self, cs: ConnSub, code: str, msg: str) -> None:
        cs.state = "failed"
        self.feed._subscription_failed(cs.sub, code, msg)

    def _state_of(self, channel: str | None, inst_id: str | None) -> ConnSub | None:
        if channel is None or inst_id is None:
            return None
        return self.states.get((channel, inst_id))

    def _integrity_lost(self, exc: SequenceError | ChecksumError) -> None:
        cs = self._state_of(exc.channel, exc.inst_id)
        if cs is None:
            return
        self.feed.stats["integrity_errors"] += 1
        log.warning("%s: %s; resyncing %s/%s", self.name, exc, exc.channel, exc.inst_id)
        self._schedule_resync(cs, str(exc))

    def _bad_frame(self, exc: FrameError, frame: bytes) -> None:
        """A malformed frame: if it names one of our books, that book may have lost data."""
        self.feed.stats["bad_frames"] += 1
        log.warning("%s: rejected frame (%s): %.200r", self.name, exc, frame)
        cs = self._state_of(exc.channel, exc.inst_id)
        if cs is not None and cs.state in ("live", "syncing", "seeding"):
            self.books.book(*cs.sub.key).invalidate(f"malformed frame: {exc.reason}")
            self._schedule_resync(cs, f"malformed frame: {exc.reason}")

    # ------------------------------------------------------------------ resync and seeding

    def _schedule_resync(self, cs: ConnSub, reason: str) -> None:
        if cs.resync_task is not None and not cs.resync_task.done():
            return
        book = self.books.book(*cs.sub.key)
        if book.is_valid:
            book.invalidate(reason)
        if cs.seeding is not None:
            cs.seeding.cancel()
            cs.seeding = None
        cs.buffer.clear()
        cs.state = "resyncing"
        if not self.staging:
            self.feed._set_status(cs.sub, "resyncing", reason)
        cs.resync_task = asyncio.get_running_loop().create_task(self._resync(cs))

    async def _resync(self, cs: ConnSub) -> None:
        """Resync one instrument without touching the socket or other books: wait out its own
        backoff (a book that keeps breaking is resynced ever more slowly), then either re-seed
        from REST (no WS requests) or unsubscribe + subscribe (2 of the 480 requests/hour)."""
        sub = cs.sub
        delay = sub.next_resync_delay(self.feed.resync_delay)
        self.feed.stats["resyncs"] += 1
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            if self.feed.resync_mode == "rest" and sub.key[0] in (
                "books",
                "books-l2-tbt",
                "books50-l2-tbt",
            ):
                cs.state = "seeding"
                cs.buffer.clear()
                cs.seeding = asyncio.get_running_loop().create_task(self._seed(cs))
            else:
                await self._unsubscribe(cs)
                await self._subscribe(cs)
        except (ConnectionError, OSError):
            pass  # the reconnect loop resubscribes everything
        finally:
            cs.resync_task = None

    def _unsynced_frame(self, cs: ConnSub | None, frame: bytes) -> None:
        """An update for a book with no snapshot yet. Before the subscribe ack it is in flight from
        an earlier subscription: dropped. After it, OKX sent no WS snapshot: seed from REST (§4)."""
        if cs is None:
            return
        if cs.state == "syncing":
            cs.state = "seeding"
            cs.buffer = [frame]
            self.feed.stats["rest_seeds"] += 1
            cs.seeding = asyncio.get_running_loop().create_task(self._seed(cs))
        elif cs.state == "seeding":
            cs.buffer.append(frame)
            if len(cs.buffer) > 100_000:  # REST unreachable for far too long: start over
                cs.buffer.clear()
                self._schedule_resync(cs, "REST seed buffer overflow")

    async def _seed(self, cs: ConnSub) -> None:
        """The REST-seeded start (§4): fetch ``/market/books``, drop buffered updates with
        ``seqId <= snap.seqId``, require ``prevSeqId <= snap.seqId < seqId`` for the first one
        kept (else the snapshot is older than the buffer: fetch again), then splice. A seqId
        reset (maintenance) in the buffer starts a new numbering: what came before it is dropped
        and a snapshot that no update follows in time is fetched again."""
        channel, inst_id = cs.sub.key
        depth = 50 if channel == "books50-l2-tbt" else 400
        feed = self.feed
        assert feed.http is not None, "the feed is started"
        attempt = 0
        try:
            while True:
                try:
                    snap = await fetch_books(feed.http, feed.rest_url, inst_id, depth)
                except RestError as exc:
                    attempt += 1
                    log.warning("%s: REST snapshot for %s failed: %s", self.name, inst_id, exc)
                    await asyncio.sleep(min(10.0, 0.2 * 2**attempt))
                    continue
                deadline = time.monotonic() + SEED_WAIT
                while True:
                    buffered = self._buffered_seqs(cs)
                    # An update chained exactly onto the snapshot (also a maintenance reset,
                    # whose new seqId is lower) splices at once; else the §4 rule.
                    exact = next(
                        (i for i, (prev, _, _) in enumerate(buffered) if prev == snap.seq_id), None
                    )
                    if exact is not None:
                        kept = [(prev, raw) for prev, _, raw in buffered[exact:]]
                    else:
                        kept = [(prev, raw) for prev, seq, raw in buffered if seq > snap.seq_id]
                    if kept or (buffered and buffered[-1][1] == snap.seq_id):
                        break  # an update follows the snapshot, or it is exactly current
                    if time.monotonic() > deadline:
                        break  # updates of another numbering only: fetch again
                    await asyncio.sleep(0.01)
                if kept and kept[0][0] <= snap.seq_id:
                    self._splice(cs, snap.as_frame(channel, kept[0][0]), [raw for _, raw in kept])
                    return
                if not kept and buffered and buffered[-1][1] == snap.seq_id:
                    self._splice(cs, snap.as_frame(channel, snap.seq_id), [])
                    return
                attempt += 1
                feed.stats["rest_refetches"] += 1
                await asyncio.sleep(min(1.0, 0.05 * attempt))
        finally:
            if cs.seeding is asyncio.current_task():
                cs.seeding = None

    @staticmethod
    def _buffered_seqs(cs: ConnSub) -> list[tuple[int, int, bytes]]:
        """(prevSeqId, seqId, frame) of the buffered updates, from the last seqId reset on (the
        frames before a reset belong to the old numbering and are dropped from the buffer)."""
        out: list[tuple[int, int, bytes]] = []
        for raw in cs.buffer:
            try:
                item = orjson.loads(raw)["data"][0]
                prev, seq = int(item["prevSeqId"]), int(item["seqId"])
            except (ValueError, KeyError, IndexError, TypeError):
                continue
            if seq < prev and out:
                out.clear()
            out.append((prev, seq, raw))
        if out and len(out) < len(cs.buffer):
            cs.buffer[:] = [raw for _, _, raw in out]
        return out

    def _splice(self, cs: ConnSub, snapshot: bytes, updates: list[bytes]) -> None:
        recv_ns = time.time_ns()
        cs.buffer.clear()
        if self.feed.recorder is not None:
            # The REST snapshot never came through the socket: record it (as the snapshot frame
            # it was turned into) and the updates spliced onto it again, so that a replay of the
            # recording seeds this book exactly as the feeder did.
            for frame in (snapshot, *updates):
                self._record(recv_ns, frame)
        try:
            self.books.apply(snapshot)
            for raw in updates:
                self.books.apply(raw)
        except (SequenceError, ChecksumError, FrameError) as exc:
            self._schedule_resync(cs, f"REST splice failed: {exc}")
            return
        self._went_live(cs, recv_ns)
