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
import contextlib
import dataclasses
import itertools
import logging
import random
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson

from okxbook import okx
from okxbook._book import Book
from okxbook._books import Books
from okxbook.errors import (
    ChecksumError,
    FrameError,
    MissingSnapshotError,
    SequenceError,
    SubscriptionError,
    UnknownChannelError,
)
from okxbook.events import (
    ErrorEvent,
    Event,
    LoginAck,
    Notice,
    Pong,
    SubscribeAck,
    UnsubscribeAck,
    inst_id_code_frame,
)

from ._hub import FeedHub, LinkCore, SubCore
from .auth import Credentials, login_request, redact
from .ratelimit import CONNECTS_PER_IP, requests_per_connection
from .rest import RestError, fetch_books
from .sbe import buffered_sbe_update, fetch_books_sbe, login_headers, seed_frame
from .sync import (
    SEED_BUFFER_LIMIT,
    Buffered,
    ResyncPacing,
    Splice,
    SplicePlan,
    State,
    buffered_update,
    plan_splice,
    public_state,
    transition,
)
from .transport import Transport, TransportError, connect_transport

log = logging.getLogger("okxbook.feed")

# How long a REST snapshot may wait for a buffered update that follows it before it is refetched.
SEED_WAIT = 2.0
# The keep-alive of a connection carrying book channels (every Feed connection does), issue 14
# item 4: OKX's 25 s ping (docs/protocol.md §6) would keep a dead socket's books live for up to
# 30 s. A busy book pushes every 100 ms and even a quiet one sends a heartbeat, and the server
# answers a ping at once (pings are no requests in the 480/hour budget), so pinging after a short
# silence is cheap and safe and a dead connection is known within about 5 s.
BOOK_PING_AFTER = 3.0
BOOK_PONG_TIMEOUT = 2.0
assert BOOK_PING_AFTER + BOOK_PONG_TIMEOUT < okx.PING_AFTER_S
_ids = itertools.count(1)
# The code a subscription fails with when its endpoint cannot work (Feed raises EndpointError).
CONNECT_FAILED = "connect"


def _cause(exc: BaseException) -> str:
    """What went wrong in a failed connect, never empty: the underlying error's text (the
    TransportError's own text repeats the URL), else its type (``TimeoutError()`` has no text)."""
    cause = exc.__cause__ or exc
    return str(cause) or type(cause).__name__


Key = tuple[str, str]


class ConnectionListener(Protocol):
    """What a connection reports to its owner (the ``Feed``). Called from the receive path:
    each must be quick and must not raise. Every applied frame goes to ``hub`` (the feed's
    consumers, ``_hub.FeedHub``), which the picows C receive path calls too."""

    @property
    def hub(self) -> FeedHub: ...

    def book_status(self, key: Key, state: str, reason: str | None) -> None: ...
    def subscription_refused(self, key: Key, code: str, msg: str) -> None: ...
    def unclaimed_event(self, event: Event) -> None: ...
    def upgrade_notice(self, conn: Connection) -> None: ...
    def successor_progress(self, conn: Connection) -> None: ...
    def disconnected(self, conn: Connection) -> None: ...


@dataclass
class ConnectionSettings:
    """What every connection of one feed shares (set by the ``Feed`` at start)."""

    url: str
    rest_url: str
    transport: str
    credentials: Credentials | None
    resync_mode: str
    ping_after: float
    pong_timeout: float
    reconnect_delay: tuple[float, float]
    resync_delay: tuple[float, float]
    subscribe_timeout: float = 10.0
    login_timeout: float = 10.0
    stale_after: float | None = None
    http: httpx.AsyncClient | None = None
    recorder: Any = None
    stats: Counter[str] | None = None
    # The binary feed (feed/sbe.py): header login, instId -> instIdCode, binary REST seed.
    sbe: bool = False
    inst_codes: dict[str, int] = dataclasses.field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None  # wss:// trust (Feed's ssl_context/ca_file)


class LoginUnanswered(ConnectionError):
    """No login answer came (timeout or drop): reconnect and log in again."""


class ConnSub(SubCore):
    """The sync state of one subscription on one connection (states: ``sync.State``); the
    fields the receive path touches per frame (``key``, ``state``, ``stale``, ``last_rx``) are
    its C half's, ``SubCore``."""

    __slots__ = (
        "acked",
        "buffer",
        "deadline",
        "pacing",
        "req_id",
        "resync_task",
        "seeding",
        "was_live",
    )
    key: Key
    state: State

    def __init__(self, key: Key, pacing: ResyncPacing) -> None:
        self.key = key
        self.pacing = pacing
        self.state = State.IDLE
        self.was_live = False
        self.req_id: str | None = None
        self.buffer: list[Buffered] = []
        self.seeding: asyncio.Task[None] | None = None
        self.resync_task: asyncio.Task[None] | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.last_rx = 0.0  # time.monotonic() of this book's last frame
        self.stale = False
        # Set once the server has answered the first subscribe: acked (or sent the book), or
        # refused it for good; what Feed.subscribe waits for.
        self.acked = asyncio.Event()


class Connection(LinkCore):
    """One socket and its subscriptions; the fields the receive path reads per frame
    (``retired``, ``_gone``, ``staging``, ``last_rx``, ``books``, ``by_book``, ``hub``) are its
    C half's, ``LinkCore``."""

    def __init__(
        self,
        listener: ConnectionListener,
        settings: ConnectionSettings,
        name: str,
        subs: dict[Key, ResyncPacing],
        books: Books,
        staging: bool = False,
    ) -> None:
        self.listener = listener
        self.hub = listener.hub
        self.settings = settings
        # Frames the picows C path may apply without this Python layer: not recorded, not SBE.
        self.plain = settings.recorder is None and not settings.sbe
        self.stats: Counter[str] = settings.stats if settings.stats is not None else Counter()
        self.name = name
        self.books = books
        self.staging = staging  # a 64008 successor syncing its own books
        self.states: dict[Key, ConnSub] = {k: ConnSub(k, p) for k, p in subs.items()}
        self.by_book: dict[Book, ConnSub] = {}
        self._bind_books()
        self.transport: Transport | None = None
        self.budget = requests_per_connection()
        self.last_rx = time.monotonic()
        self.retired = False
        # A 64008 successor keeps what it receives while staging, so that the recording can take
        # it over at the switch (see Feed's successor_progress).
        self.staged_frames: list[tuple[int, bytes]] = []
        self.pending_ids: dict[str, ConnSub] = {}
        self._login_ack: asyncio.Future[LoginAck | ErrorEvent] | None = None
        self._task: asyncio.Task[None] | None = None
        self._attempt = 0
        self._pongs: set[asyncio.Task[None]] = set()
        # This socket's loss is already handled (books out of live, recorder told): set by a
        # dead-connection verdict before the socket has closed, reset on each connect.
        self._gone = False
        # The books' status reason was set by a failed connect: say "subscribing" once connected.
        self._connect_trouble = False
        self._connected_once = False
        # Logged in (if needed) on the current socket: a subscription added now is sent at once.
        self._ready = False
        self._unsub_waiters: dict[str, asyncio.Future[Event]] = {}

    def _bind_books(self) -> None:
        self.by_book = {self.books.book(*key): cs for key, cs in self.states.items()}

    # ------------------------------------------------------------------ what the Feed may ask

    def state(self, key: Key) -> State:
        return self.states[key].state

    def subscriptions(self) -> list[Key]:
        return list(self.states)

    def live_keys(self) -> list[Key]:
        """The subscriptions a 64008 successor must carry (all but the refused ones)."""
        return [k for k, cs in self.states.items() if cs.state is not State.FAILED]

    def pacing(self) -> dict[Key, ResyncPacing]:
        return {k: cs.pacing for k, cs in self.states.items()}

    def take_staged_frames(self) -> list[tuple[int, bytes]]:
        frames, self.staged_frames = self.staged_frames, []
        return frames

    def adopt(self, books: Books) -> None:
        """End staging (64008 switch): from now on this connection feeds ``books``."""
        self.books = books
        self.staging = False
        self._bind_books()

    def retire(self) -> None:
        """Stop reconnecting and stop touching books (replaced by a successor)."""
        self.retired = True

    async def add(self, key: Key, pacing: ResyncPacing) -> ConnSub:
        """Carry one more subscription (``Feed.subscribe``): subscribed at once if this socket is
        up and logged in, else with the others at the next connect. Its ``acked`` tells when
        the server answered."""
        cs = self.states.get(key)
        if cs is not None:
            return cs
        cs = self.states[key] = ConnSub(key, pacing)
        self.by_book[self.books.book(*key)] = cs
        if self._ready and self.transport is not None and not self.retired:
            try:
                await self._subscribe(cs)
            except (ConnectionError, OSError):  # the socket is going: the reconnect subscribes it
                log.debug("%s: %s/%s: subscribe on a closing socket", self.name, *key)
        return cs

    async def remove(self, key: Key) -> None:
        """Stop carrying ``key`` (``Feed.unsubscribe``): it leaves this connection at once (its
        frames still in flight are strays), then, if it was subscribed on the live socket, an
        ``unsubscribe`` waits for OKX's answer: ``SubscriptionError`` if refused or unanswered."""
        cs = self.states.pop(key)
        for task in (cs.seeding, cs.resync_task):
            if task is not None:
                task.cancel()
        if cs.deadline is not None:
            cs.deadline.cancel()
        for req_id in [r for r, c in self.pending_ids.items() if c is cs]:
            del self.pending_ids[req_id]
        book = self.books.get(*key)
        if book is not None:
            self.by_book.pop(book, None)
        subscribed = cs.state not in (State.IDLE, State.FAILED)
        try:
            if subscribed and self._ready and self.transport is not None and not self.retired:
                # A socket lost meanwhile took the subscription with it: nothing to undo.
                with contextlib.suppress(ConnectionError, OSError):
                    await self._unsubscribe_and_wait(cs)
        finally:
            if key in self.books:
                self.books.remove(*key)

    async def _unsubscribe_and_wait(self, cs: ConnSub) -> None:
        channel, inst_id = cs.key
        req_id = f"u{next(_ids)}"
        answer: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._unsub_waiters[req_id] = answer
        timeout = self.settings.subscribe_timeout
        try:
            await self._request(
                {
                    "id": req_id,
                    "op": "unsubscribe",
                    "args": [{"channel": channel, "instId": inst_id}],
                }
            )
            event = await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            raise SubscriptionError(
                channel, inst_id, "timeout", f"no answer to unsubscribe within {timeout:g}s"
            ) from None
        finally:
            self._unsub_waiters.pop(req_id, None)
        if isinstance(event, ErrorEvent):
            raise SubscriptionError(channel, inst_id, event.code, event.msg)

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
        first, cap = self.settings.reconnect_delay
        delay = min(cap, first * (2**self._attempt))
        self._attempt += 1
        return float(delay * random.uniform(0.5, 1.0))  # jitter: reconnects do not synchronise

    async def _run(self) -> None:
        settings = self.settings
        while not self.retired:
            await CONNECTS_PER_IP.acquire()
            try:
                creds = settings.credentials
                self.transport = await connect_transport(
                    settings.transport,
                    settings.url,
                    self._on_frame,
                    headers=login_headers(creds) if settings.sbe and creds else None,
                    ws_ping=(settings.ping_after, settings.pong_timeout) if settings.sbe else None,
                    ssl_context=settings.ssl_context,
                    conn=self,
                )
            except TransportError as exc:
                if exc.permanent and not self._connected_once:
                    # Issue 9: a URL that cannot work (4xx handshake, TLS failure, ws/wss
                    # mismatch) fails at once with its reason, rather than retrying forever.
                    # Once connected, the same errors are retried: the endpoint did work.
                    reason = str(exc).removeprefix(f"{settings.url}: ")
                    log.debug("%s: cannot connect: %s", self.name, exc)  # the Feed reports it
                    for cs in self.states.values():
                        if cs.state is not State.FAILED:
                            self._fail(cs, CONNECT_FAILED, reason)
                    self.retired = True
                    return
                delay = self._backoff()
                log.warning("%s: connect failed (%s); retrying in %.2fs", self.name, exc, delay)
                # Issue 9 item 4: the books' status says what is happening (refused, DNS, TLS
                # ...), not a stale "subscribing", while the reconnect loop backs off.
                self._connect_trouble = True
                reason = f"connecting: retry {self._attempt} in {delay:.2g} s: {_cause(exc)}"
                for cs in self.states.values():
                    if cs.state is not State.FAILED:
                        self._status(cs, reason)
                await asyncio.sleep(delay)
                continue
            if self._connect_trouble:
                self._connect_trouble = False
                for cs in self.states.values():
                    if cs.state is not State.FAILED:
                        self._status(cs, "connected; subscribing")
            self.stats["connects"] += 1
            self._connected_once = True
            self._gone = False
            self.budget = requests_per_connection()  # OKX counts requests per connection
            self.last_rx = time.monotonic()
            if settings.sbe and settings.recorder is not None:  # the recording replays alone
                for inst, inst_code in settings.inst_codes.items():
                    self._record(time.time_ns(), inst_id_code_frame(inst, inst_code))
            keepalive = asyncio.get_running_loop().create_task(self._keepalive())
            stale_watch = (
                asyncio.get_running_loop().create_task(self._stale_watch())
                if settings.stale_after
                else None
            )
            why: str | None = None
            try:
                await self._login_if_needed()
                self._ready = True
                for cs in list(self.states.values()):  # add() may add to it meanwhile
                    if cs.state is not State.FAILED:
                        await self._subscribe(cs)
                code = await self.transport.wait_closed()
            except LoginUnanswered as exc:
                code, why = 1006, str(exc)
                if self.transport is not None:
                    self.transport.abort()
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
                if stale_watch is not None:
                    stale_watch.cancel()
            self._ready = False
            self._on_disconnect(code, why)
            self.listener.disconnected(self)  # may retire us (closed for a 64008 upgrade)
            if self.retired:
                break
            delay = self._backoff()
            log.warning("%s: disconnected (code %s); reconnecting in %.2fs", self.name, code, delay)
            await asyncio.sleep(delay)

    async def _keepalive(self) -> None:
        """§6: send the text ``ping`` after ``ping_after`` s without data; no reply within
        ``pong_timeout`` means the connection is dead. While a ping waits for its pong nothing
        changes; the verdict takes this connection's books out of live at once (issue 14 item 4),
        then drops the socket so the reconnect loop starts over."""
        settings = self.settings
        if settings.sbe:  # the text ping is refused there (60012): the transport pings
            return
        while True:
            idle = time.monotonic() - self.last_rx
            if idle < settings.ping_after:
                await asyncio.sleep(settings.ping_after - idle)
                continue
            sent_at = time.monotonic()
            try:
                await self._send_text("ping")
            except Exception:
                return
            await asyncio.sleep(settings.pong_timeout)
            transport = self.transport
            if self.last_rx < sent_at and transport is not None:
                reason = f"no pong within {settings.pong_timeout:g}s of a ping; reconnecting"
                log.warning("%s: %s", self.name, reason)
                self.stats["pong_timeouts"] += 1
                self._on_disconnect(1006, reason)
                transport.abort()
                return

    async def _stale_watch(self) -> None:
        """Issue 14 item 4: a live book that has had no frame for ``stale_after`` s is reported
        ``stale`` (status, tops, callbacks) until its next frame: a silent connection is known
        within a moment, not after the 30 s ping verdict (§6)."""
        limit = self.settings.stale_after
        assert limit
        while True:
            await asyncio.sleep(limit / 4)
            now = time.monotonic()
            for cs in self.states.values():
                if cs.state is State.LIVE and not cs.stale and now - cs.last_rx > limit:
                    cs.stale = True
                    self.stats["stale"] += 1
                    if not self.staging:
                        self.listener.book_status(
                            cs.key, "stale", f"no frame for {now - cs.last_rx:.1f}s"
                        )

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
        self.stats["requests"] += 1
        await self._send_text(orjson.dumps(payload).decode())

    async def _login_if_needed(self) -> None:
        """Log in before subscribing the login channels (§7); if it fails, those subscriptions
        fail with the login error and the others go ahead."""
        needs = any(key[0] in okx.LOGIN_CHANNELS for key in self.states)
        creds = self.settings.credentials
        if not needs or creds is None or self.settings.sbe:  # SBE: logged in by the headers
            return
        self._login_ack = asyncio.get_running_loop().create_future()
        await self._request(login_request(creds))
        assert self.transport is not None
        closed: asyncio.Future[Any] = asyncio.ensure_future(self.transport.wait_closed())
        waiting: set[asyncio.Future[Any]] = {self._login_ack, closed}
        try:
            done, _ = await asyncio.wait(
                waiting,
                timeout=self.settings.login_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            closed.cancel()
        if self._login_ack not in done:
            # The socket died, or no answer came: not a refusal. Reconnect and log in again,
            # and say so in the status of the subscriptions waiting for it (issue 14 item 5).
            if closed in done:
                reason = "connection lost during login; reconnecting"
            else:
                self.stats["login_timeouts"] += 1
                reason = f"no answer to login within {self.settings.login_timeout:g}s; reconnecting"
            for cs in self.states.values():
                if cs.key[0] in okx.LOGIN_CHANNELS and cs.state is not State.FAILED:
                    self._status(cs, reason)
            raise LoginUnanswered(reason)
        ack = self._login_ack.result()
        if isinstance(ack, LoginAck) and ack.code == "0":
            return
        reason = f"login failed: {ack.code} {ack.msg}"
        for cs in self.states.values():
            if cs.key[0] in okx.LOGIN_CHANNELS:
                self._fail(cs, ack.code, reason)

    async def _subscribe(self, cs: ConnSub) -> None:
        req_id = f"s{next(_ids)}"
        cs.req_id = req_id
        cs.state = transition(cs.state, "subscribe")
        cs.buffer.clear()
        self.pending_ids[req_id] = cs
        channel, inst_id = cs.key
        await self._request(
            {"id": req_id, "op": "subscribe", "args": [{"channel": channel, "instId": inst_id}]}
        )
        self._arm_deadline(cs, req_id)

    def _arm_deadline(self, cs: ConnSub, req_id: str) -> None:
        """A subscribe must be acked and followed by data in time: a server that answers only
        pong, or answers with garbage, must not leave a book "syncing" forever (issue 14 item 5)."""
        if cs.deadline is not None:
            cs.deadline.cancel()
        cs.deadline = asyncio.get_running_loop().call_later(
            self.settings.subscribe_timeout, self._deadline_passed, cs, req_id
        )

    def _deadline_passed(self, cs: ConnSub, req_id: str) -> None:
        cs.deadline = None
        if self.retired or self.transport is None or cs.req_id != req_id:
            return
        timeout = self.settings.subscribe_timeout
        if cs.state is State.SUBSCRIBING:
            reason = f"no answer to subscribe within {timeout:g}s; retrying"
        elif cs.state is State.SYNCING:
            reason = f"subscribed, but no book data within {timeout:g}s; retrying"
        else:
            return
        self.stats["subscribe_timeouts"] += 1
        log.warning("%s: %s/%s: %s", self.name, *cs.key, reason)
        self._schedule_resync(cs, reason, resubscribe=True)

    async def _unsubscribe(self, cs: ConnSub) -> None:
        channel, inst_id = cs.key
        await self._request(
            {
                "id": f"u{next(_ids)}",
                "op": "unsubscribe",
                "args": [{"channel": channel, "instId": inst_id}],
            }
        )

    def _status(self, cs: ConnSub, reason: str | None) -> None:
        if not self.staging:
            self.listener.book_status(cs.key, public_state(cs.state, cs.was_live), reason)

    def _on_disconnect(self, code: int | None, why: str | None = None) -> None:
        """The socket is lost (or judged dead: then called before it has closed, and again
        when it has, which only resets what was started since)."""
        self.transport = None
        if self.retired:  # replaced (64008) or stopped: its books now belong to another
            return
        first = not self._gone
        self._gone = True
        if first:
            self.stats["disconnects"] += 1
            recorder = self.settings.recorder
            if recorder is not None and not self.staging:
                recorder.mark_disconnect(time.time_ns())
        reason = why or f"connection lost (close code {code})"
        for cs in self.states.values():
            for task in (cs.seeding, cs.resync_task):
                if task is not None:
                    task.cancel()
            cs.seeding = cs.resync_task = None
            if cs.deadline is not None:
                cs.deadline.cancel()
                cs.deadline = None
            cs.buffer.clear()
            cs.stale = False
            if cs.state is State.FAILED:
                continue
            cs.state = transition(cs.state, "disconnect")
            if not first:
                continue  # already out of live, with the verdict's reason
            book = self.books.book(*cs.key)
            if book.status != "empty":
                book.invalidate(reason)
            self._status(cs, reason)

    # ------------------------------------------------------------------ the receive path

    def _on_frame(self, frame: bytes) -> None:
        """Called by the transport for every frame. Never raises, never awaits."""
        if self.retired or self._gone:  # a socket judged dead: what it still delivers is late
            return
        recv_ns = time.time_ns()
        self.last_rx = time.monotonic()
        if self.settings.recorder is not None:
            if frame.startswith(b'{"event"'):  # an error may echo our login request
                frame = self._redact(frame.decode("utf-8", "replace")).encode()
            self._record(recv_ns, frame)
        try:
            result = self.books.apply(frame)
        except Exception as exc:
            self._apply_failed(exc, frame)
            self.hub.deltas_ready(recv_ns)  # delta consumers (feed/deltas.py)
            return
        self.hub.deltas_ready(recv_ns)
        self._applied(result, frame, recv_ns)

    def _apply_failed(self, exc: Exception, frame: bytes) -> None:
        """A frame ``Books.apply`` rejected (or a bug in it): what it means for its book."""
        if isinstance(exc, SequenceError | ChecksumError):
            self._integrity_lost(exc)
        elif isinstance(exc, MissingSnapshotError):
            cs = self._state_of(exc.channel, exc.inst_id)
            if cs is None:
                self._stray(exc.channel, exc.inst_id)
            else:
                self._unsynced_frame(cs, frame)
        elif isinstance(exc, UnknownChannelError):
            return
        elif isinstance(exc, FrameError):
            if frame == b"ping":
                # Some guides have the server ping: answer it (issue 14 item 12; §6 has the
                # client ping, which _keepalive does), never count it as a malformed frame.
                self._answer_ping()
                return
            self._bad_frame(exc, frame)
        else:  # a bug must not kill the connection's receive path
            log.error("%s: unexpected error applying a frame", self.name, exc_info=exc)

    def _applied(self, result: Any, frame: bytes, recv_ns: int) -> None:
        """What an applied frame (a ``Book``, or an event) means for its subscription. The picows
        receive path (feed/_receive.pyx) does the live-book case itself and calls this for the
        rest."""
        if type(result) is Book:
            cs = self.by_book.get(result)
            if cs is None:
                self._stray(result.channel, result.inst_id)
                return
            cs.last_rx = self.last_rx
            if not self.staging:  # latency, feed.on_book/on_depth
                self.hub.applied(self, cs, result, recv_ns)
            if cs.stale:
                cs.stale = False
                self._status(cs, None)
            if cs.state is State.LIVE:
                if result.top_changed and not self.staging:
                    self.hub.top(cs.key, result, recv_ns, cs)
            elif result.is_valid and cs.state in (
                State.SYNCING,
                State.SUBSCRIBING,
                State.SEEDING,
            ):
                self._went_live(cs, recv_ns)
            elif cs.state in (State.SYNCING, State.SEEDING):
                self._unsynced_frame(cs, frame)
            elif cs.state in (State.IDLE, State.FAILED) and result.is_valid:
                # Pushed before we subscribed (e.g. a login channel whose login was never
                # acked) or after a refusal: the book must not hold it (issue 9 item 7).
                result.invalidate(f"frame for a subscription that is {cs.state}")
            if self.staging:
                self.listener.successor_progress(self)
        else:
            self._on_event(result)

    def _answer_ping(self) -> None:
        self.stats["server_pings"] += 1

        async def pong() -> None:
            try:
                await self._send_text("pong")
            except (ConnectionError, OSError):
                pass  # the reconnect loop sees the drop

        task = asyncio.get_running_loop().create_task(pong())
        self._pongs.add(task)
        task.add_done_callback(self._pongs.discard)

    def _record(self, recv_ns: int, frame: bytes) -> None:
        if self.staging:
            self.staged_frames.append((recv_ns, frame))
        else:
            self.settings.recorder.record(recv_ns, frame)

    def _redact(self, text: str) -> str:
        return redact(text, self.settings.credentials)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, Pong):
            return
        if isinstance(event, ErrorEvent | LoginAck | Notice) and event.msg:
            # The msg of an error may echo our login request: redact it before it is logged,
            # kept in feed.events, a SubscriptionError or a status (issue 14 item 3).
            event = dataclasses.replace(event, msg=self._redact(event.msg))
        if isinstance(event, SubscribeAck):
            cs = self.pending_ids.pop(event.id, None) if event.id else None
            if cs is None:
                cs = self._state_of(event.channel, event.inst_id)
            if cs is not None:
                cs.state = transition(cs.state, "ack")
                cs.acked.set()
            return
        if isinstance(event, UnsubscribeAck | ErrorEvent) and event.id in self._unsub_waiters:
            waiter = self._unsub_waiters.pop(event.id or "")
            if not waiter.done():
                waiter.set_result(event)
            return
        if isinstance(event, ErrorEvent):
            cs = self.pending_ids.pop(event.id, None) if event.id else None
            if cs is None:
                cs = self._state_of(event.channel, event.inst_id)
            code = okx.Code.lookup(event.code)
            if self._login_ack is not None and not self._login_ack.done() and cs is None:
                # An error claimed by no subscription while the login waits is its answer.
                self._login_ack.set_result(event)
                return
            if cs is None:
                log.warning("%s: error event %s %s", self.name, event.code, event.msg)
                self.listener.unclaimed_event(event)
                return
            if code is not None and code.retryable:
                log.warning("%s: %s/%s: %s %s; retrying", self.name, *cs.key, event.code, event.msg)
                self._schedule_resync(cs, "rejected: retrying")
            else:
                self._fail(cs, event.code, event.msg)
            return
        if isinstance(event, LoginAck):
            if self._login_ack is not None and not self._login_ack.done():
                self._login_ack.set_result(event)
            return
        if isinstance(event, Notice):
            if event.code == okx.Code.SERVICE_UPGRADE and not self.staging:
                self.listener.upgrade_notice(self)
            else:
                log.warning("%s: notice %s %s", self.name, event.code, event.msg)
            return
        self.listener.unclaimed_event(event)

    def _went_live(self, cs: ConnSub, recv_ns: int) -> None:
        seeding = cs.seeding
        if seeding is not None and seeding is not asyncio.current_task():
            seeding.cancel()  # a WS snapshot came after all: an older REST splice must not
            cs.seeding = None
        cs.buffer.clear()
        cs.state = transition(cs.state, "snapshot")
        cs.acked.set()
        cs.was_live = True
        cs.last_rx = time.monotonic()
        cs.stale = False
        self._attempt = 0
        if not self.staging:
            self._status(cs, None)
            self.hub.top(cs.key, self.books.book(*cs.key), recv_ns, cs)

    def _fail(self, cs: ConnSub, code: str, msg: str) -> None:
        cs.state = transition(cs.state, "refused")
        cs.acked.set()
        self.listener.subscription_refused(cs.key, code, msg)

    def _state_of(self, channel: str | None, inst_id: str | None) -> ConnSub | None:
        if channel is None or inst_id is None:
            return None
        return self.states.get((channel, inst_id))

    def _stray(self, channel: str | None, inst_id: str | None) -> None:
        """A frame for a book this connection did not subscribe (misrouted, or in flight from an
        old subscription): it touched only this connection's own ``Books``, never the book
        another connection keeps (issue 14 item 2); forget the stray book so stray instIds cannot
        grow memory without bound (item 10)."""
        self.stats["stray_frames"] += 1
        if channel is not None and inst_id is not None and (channel, inst_id) in self.books:
            self.books.remove(channel, inst_id)

    def _integrity_lost(self, exc: SequenceError | ChecksumError) -> None:
        cs = self._state_of(exc.channel, exc.inst_id)
        if cs is None:
            self._stray(exc.channel, exc.inst_id)
            return
        self.stats["integrity_errors"] += 1
        log.warning("%s: %s; resyncing %s/%s", self.name, exc, exc.channel, exc.inst_id)
        self._schedule_resync(cs, str(exc))

    def _bad_frame(self, exc: FrameError, frame: bytes) -> None:
        """A malformed frame: if it names one of our books, that book may have lost data."""
        self.stats["bad_frames"] += 1
        log.warning(
            "%s: rejected frame (%s): %.200r",
            self.name,
            self._redact(str(exc)),
            self._redact(frame.decode("utf-8", "replace")),
        )
        cs = self._state_of(exc.channel, exc.inst_id)
        if cs is not None and cs.state in (State.LIVE, State.SYNCING, State.SEEDING):
            self.books.book(*cs.key).invalidate(f"malformed frame: {exc.reason}")
            self._schedule_resync(cs, f"malformed frame: {exc.reason}")

    # ------------------------------------------------------------------ resync and seeding

    def _schedule_resync(self, cs: ConnSub, reason: str, resubscribe: bool = False) -> None:
        if cs.resync_task is not None and not cs.resync_task.done():
            return
        book = self.books.book(*cs.key)
        if book.is_valid:
            book.invalidate(reason)
        if cs.seeding is not None:
            cs.seeding.cancel()
            cs.seeding = None
        cs.buffer.clear()
        cs.stale = False
        cs.state = transition(cs.state, "retryable")
        self._status(cs, reason)
        cs.resync_task = asyncio.get_running_loop().create_task(self._resync(cs, resubscribe))

    async def _resync(self, cs: ConnSub, resubscribe: bool = False) -> None:
        """Resync one instrument without touching the socket or other books: wait out its own
        backoff (a book that keeps breaking is resynced ever more slowly), then either re-seed
        from REST (no WS requests) or unsubscribe + subscribe (2 of the 480 requests/hour)."""
        delay = cs.pacing.next_delay(self.settings.resync_delay)
        self.stats["resyncs"] += 1
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            if (
                not resubscribe
                and self.settings.resync_mode == "rest"
                and okx.CHANNELS[cs.key[0]].rest_path is not None
            ):
                cs.state = transition(cs.state, "seed")
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
        if cs.state is State.SYNCING:
            if okx.CHANNELS[cs.key[0]].rest_path is None:
                # No REST route can seed this channel (books-elp; docs/protocol.md §8): only a
                # new subscription can bring the snapshot.
                self._schedule_resync(
                    cs, f"no snapshot and no REST route for {cs.key[0]}: resubscribing", True
                )
                return
            cs.state = transition(cs.state, "update_first")
            cs.buffer.clear()
            self._buffer(cs, frame)
            self.stats["rest_seeds"] += 1
            cs.seeding = asyncio.get_running_loop().create_task(self._seed(cs))
        elif cs.state is State.SEEDING:
            self._buffer(cs, frame)
            if len(cs.buffer) > SEED_BUFFER_LIMIT:  # REST unreachable for far too long
                cs.buffer.clear()
                self._schedule_resync(cs, "REST seed buffer overflow")

    def _buffer(self, cs: ConnSub, frame: bytes) -> None:
        update = buffered_sbe_update(frame) if self.settings.sbe else buffered_update(frame)
        if update is not None:
            cs.buffer.append(update)

    async def _seed(self, cs: ConnSub) -> None:
        """The REST-seeded start (§4): fetch the channel's REST book (``/market/books``, or
        ``/market/books-rpi`` for books-rpi, §8) and splice it with the buffered
        updates as ``sync.plan_splice`` says (or fetch again)."""
        channel, inst_id = cs.key
        depth = okx.CHANNELS[channel].depth
        path = okx.CHANNELS[channel].rest_path
        assert path is not None, "only channels with a REST route are seeded"
        settings = self.settings
        assert settings.http is not None, "the feed is started"
        attempt = 0
        try:
            while True:
                try:
                    if settings.sbe:
                        code = settings.inst_codes[inst_id]
                        snap: Any = await fetch_books_sbe(settings.http, settings.rest_url, code)
                    else:
                        snap = await fetch_books(
                            settings.http, settings.rest_url, inst_id, depth, path=path
                        )
                except RestError as exc:
                    attempt += 1
                    log.warning("%s: REST snapshot for %s failed: %s", self.name, inst_id, exc)
                    await asyncio.sleep(min(10.0, 0.2 * 2**attempt))
                    continue
                deadline = time.monotonic() + SEED_WAIT
                while True:
                    snap_seq = seed_frame(snap)[0] if settings.sbe else snap.seq_id
                    plan = plan_splice(cs.buffer, snap_seq, time.monotonic() > deadline)
                    if plan is not SplicePlan.WAIT:
                        break
                    await asyncio.sleep(0.01)
                if isinstance(plan, Splice):
                    frame = (
                        seed_frame(snap, plan.snapshot_seq)[1]
                        if settings.sbe
                        else snap.as_frame(channel, plan.snapshot_seq)
                    )
                    self._splice(cs, frame, plan.updates)
                    return
                attempt += 1
                self.stats["rest_refetches"] += 1
                await asyncio.sleep(min(1.0, 0.05 * attempt))
        finally:
            if cs.seeding is asyncio.current_task():
                cs.seeding = None

    def _splice(self, cs: ConnSub, snapshot: bytes, updates: tuple[bytes, ...]) -> None:
        recv_ns = time.time_ns()
        cs.buffer.clear()
        if self.settings.recorder is not None:
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
        finally:
            self.hub.deltas_ready(recv_ns)
        self._went_live(cs, recv_ns)
