"""A local OKX-like exchange: WebSocket `/ws/v5/public` and REST `/api/v5/market/books` (and
`/api/v5/market/books-rpi`, from the books-rpi book) on 127.0.0.1.

This module owns the socket side of the test exchange: the subscribe/unsubscribe/login protocol,
fanning one exchange-side book per ``(channel, instId)`` out to every subscribed connection, the
REST snapshot endpoints, fault injection and per-connection accounting. What it says to clients
(request parsing, OKX's events and error texts, the one-port bind) is ``okxbook.endpoint``, shared
with ``okxbook serve``. Book contents and frame
bytes come from `okxbook.testing.synthetic.SyntheticBook` (or from a given capture); this module
never builds a book frame itself.

Protocol references (§n) are to `docs/protocol.md`. The server is
``websockets.asyncio.server.serve``; REST shares its port through the ``process_request`` hook, so
one ``127.0.0.1:0`` bind serves both, as nautilus_trader's and websockets' own test servers do.

Determinism: with ``auto=False`` nothing is pushed unless a test calls `LocalExchange.step`, and
books are seeded from ``seed`` + channel + instId, so two runs send the same bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from okxbook import endpoint, okx
from okxbook.endpoint import LoopbackEndpoint, ServerTls
from okxbook.endpoint_sbe import SbeSide
from okxbook.testing.synthetic import ChecksumMode, SyntheticBook

__all__ = [
    "LOGIN_CHANNELS",
    "REST_BOOKS_PATH",
    "WS_PATH",
    "ConnInfo",
    "LocalExchange",
    "LoopbackEndpoint",
    "RestRequest",
    "Sent",
]

log = logging.getLogger(__name__)

# Kept as names of this module for existing imports; the facts are okx.py's.
WS_PATH: Final = endpoint.WS_PATH
REST_BOOKS_PATH: Final = okx.REST_BOOKS_PATH
# §1: these need login (and VIP4, which a local exchange grants to anyone logged in).
LOGIN_CHANNELS: Final = okx.LOGIN_CHANNELS
# §0b push order per connection+instrument; a tick pushes in this order.
_PUSH_ORDER: Final = {c: i for i, c in enumerate(okx.PUSH_ORDER)}
# REST books serves the deepest delta book already running for the instId, else starts a `books`
# one; never an RPI-shaped book (books-rpi, books-elp): its sizes include RPI orders (§8).
_REST_SOURCES: Final = ("books", "books-l2-tbt", "books50-l2-tbt")
# REST books-rpi serves the books-rpi book (started on demand).
_REST_RPI_CHANNEL: Final = "books-rpi"
NOTICE_64008_MSG: Final = okx.NOTICE_64008_MSG
DEFAULT_MALFORMED: Final = b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"upd'

BookKey = tuple[str, str]


class Sent(NamedTuple):
    """One frame the exchange sent, as recorded for a test to replay.

    ``kind`` is one of ``"event"`` (subscribe/unsubscribe/login acks, errors, notices),
    ``"snapshot"``, ``"update"``, ``"heartbeat"``, ``"reset"`` (delta channels), ``"image"``
    (books5 / bbo-tbt), ``"capture"`` (replayed capture frame), ``"pong"`` or ``"malformed"``.
    ``channel``/``inst_id`` name the book the frame belongs to (``None`` for connection-level
    frames such as pong, login or a notice). ``data`` is the exact payload sent.
    """

    kind: str
    channel: str | None
    inst_id: str | None
    data: bytes


class RestRequest(NamedTuple):
    """One REST books request and what it served (``seq_id`` is None if it was refused)."""

    inst_id: str | None
    sz: int | None
    seq_id: int | None
    lagged: bool


@dataclass(eq=False)
class ConnInfo:
    """Everything the exchange knows about one WebSocket connection (live or closed)."""

    conn_id: str
    remote: Any
    opened_at: float
    ws: ServerConnection = field(repr=False)
    subscriptions: dict[BookKey, None] = field(default_factory=dict)
    """Current subscriptions, in subscription order (a dict used as an ordered set)."""
    logged_in: bool = False
    sbe: bool = False  # on /ws/v5/public-sbe: book frames go out binary (testing/sbe_exchange.py)
    subscribe_requests: int = 0
    unsubscribe_requests: int = 0
    login_requests: int = 0
    closed: bool = False
    close_code: int | None = None
    silenced: bool = False
    pong_when_silenced: bool = True
    sent: list[Sent] = field(default_factory=list, repr=False)
    received: list[str | bytes] = field(default_factory=list, repr=False)
    last_recv: float = 0.0
    last_sent: float = 0.0
    # monotonic times of subscribe/unsubscribe/login requests, for the 480/h rule (§6)
    request_times: deque[float] = field(default_factory=deque, repr=False)
    capture_cursor: int = 0
    _closed_event: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def requests(self) -> int:
        """subscribe + unsubscribe + login requests made so far (what OKX counts, §6)."""
        return self.subscribe_requests + self.unsubscribe_requests + self.login_requests


class _Feed:
    """One exchange-side book and its subscribers: seqIds are per book, shared by every
    connection, as on OKX (§4: 'seqId is per instId and identical on every connection')."""

    __slots__ = ("book", "faults", "key", "log", "skipped", "subscribers")

    def __init__(self, key: BookKey, book: SyntheticBook) -> None:
        self.key = key
        self.book = book
        self.subscribers: list[ConnInfo] = []
        self.faults: deque[str] = deque()
        self.log: list[Sent] = []
        self.skipped: list[bytes] = []

    def next_frame(self) -> tuple[str, bytes]:
        """The next pushed frame, consuming one queued fault if any."""
        book = self.book
        fault = self.faults.popleft() if self.faults else None
        if book.is_image:
            # Images carry no prevSeqId nor checksum: a gap is only a seqId jump, and there is
            # no reset or checksum to show, so those faults push a normal image.
            if fault == "gap":
                self.skipped.append(book.next_update_frame())
            if fault == "heartbeat":
                return "image", book.heartbeat_frame()
            return "image", book.next_update_frame()
        if fault == "gap":
            # A lost frame: the book moves on, the next update chains on a seqId nobody saw.
            self.skipped.append(book.next_update_frame())
            return "update", book.next_update_frame()
        if fault == "corrupt":
            return "update", book.next_update_frame(corrupt_checksum=True)
        if fault == "reset":
            return "reset", book.reset_frame()
        if fault == "heartbeat":
            return "heartbeat", book.heartbeat_frame()
        return "update", book.next_update_frame()


class LocalExchange(LoopbackEndpoint):
    """An OKX-like public WebSocket + REST server on ``127.0.0.1`` (random free port by default).

    Use ``async with LocalExchange(...) as ex:`` or ``await ex.start()`` / ``await ex.stop()``.
    Then connect to `ws_url` and GET ``f"{rest_url}/api/v5/market/books?instId=..&sz=.."``.

    Books are created on demand per ``(channel, instId)`` by ``book_factory`` (default: a
    `SyntheticBook` seeded from ``seed``, channel and instId, with ``checksum`` and
    ``book_options``), or given up front in ``books``. With ``capture`` (raw frames), no synthetic
    book is used: each connection is replayed the capture's frames for what it subscribed.

    ``auto=True`` pushes one frame per subscribed book every ``interval`` seconds;
    ``auto=False`` pushes only on `step` (preferred in tests: no timing). Faults on a book are
    queued and shape its next pushed frame; faults on connections act immediately.

    ``tls=True`` serves ``wss://``/``https://`` with a certificate made on the fly (or give an
    ``okxbook.endpoint.ServerTls``); clients trust ``ex.tls.ca_file`` (``Feed(..., ca_file=)``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | str = 0,
        checksum: ChecksumMode = "crc",
        interval: float = 0.1,
        auto: bool = True,
        no_snapshot: bool = False,
        idle_timeout: float | None = 30.0,
        notice_close_delay: float = 1.0,
        credentials: dict[str, str] | None = None,
        login_max_skew: float | None = 30.0,
        enforce_request_limit: bool = False,
        request_limit: int = 480,
        connect_limit: int | None = None,
        books: Iterable[SyntheticBook] = (),
        book_factory: Callable[[str, str], SyntheticBook] | None = None,
        book_options: dict[str, Any] | None = None,
        capture: Sequence[bytes | str] | None = None,
        capture_batch: int = 1,
        rest_pad: bool = False,
        sbe_codes: dict[str, int] | None = None,
        tls: bool | ServerTls = False,
    ) -> None:
        self.host = host
        self.tls = endpoint.tls_option(tls, host)
        self.port = port
        self.seed = seed
        self.checksum: ChecksumMode = checksum
        self.interval = interval
        self.auto = auto
        self.no_snapshot = no_snapshot
        """After subscribe, send no snapshot on delta channels: clients must seed from REST (§4)."""
        self.idle_timeout = idle_timeout
        self.notice_close_delay = notice_close_delay
        self.credentials = dict(credentials) if credentials else None
        self.login_max_skew = login_max_skew
        self.enforce_request_limit = enforce_request_limit
        self.request_limit = request_limit
        self.connect_limit = connect_limit
        self.rest_pad = rest_pad
        self.sbe = SbeSide(sbe_codes)
        """The SBE feed's side (codes, faults: ``truncate_next``, ``exponent_update``)."""
        self._book_factory = book_factory
        self._book_options = dict(book_options or {})
        self._feeds: dict[BookKey, _Feed] = {}
        for book in books:
            self._feeds[(book.channel, book.inst_id)] = _Feed((book.channel, book.inst_id), book)
        self._capture: list[tuple[BookKey, bytes]] | None = (
            _parse_capture(capture) if capture is not None else None
        )
        self._capture_keys: frozenset[BookKey] | None = (
            frozenset(key for key, _ in self._capture) if self._capture is not None else None
        )
        self.capture_batch = capture_batch

        self._conns: dict[str, ConnInfo] = {}
        self._fail_subs: dict[BookKey, deque[tuple[str, str]]] = {}
        self._rest_lag: dict[str, list[int | None]] = {}  # inst -> [frames, remaining requests]
        self.rest_requests: list[RestRequest] = []
        self._connects: dict[str, dict[int, int]] = {}
        self._conn_rng = random.Random(f"{seed}/connId")
        self._lock = asyncio.Lock()
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> LocalExchange:
        """Bind and start serving (and pushing, if ``auto``)."""
        if self._server is not None:
            return self
        self._server = await self._bind(self._handler, self._process_request)
        if self.auto:
            self._ticker = asyncio.create_task(self._run_ticker())
        return self

    async def stop(self) -> None:
        """Stop pushing, close every connection (1001) and unbind."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        """For a CLI: start, then run until cancelled."""
        await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.stop()

    # ------------------------------------------------------------------ books
    def book(self, channel: str, inst_id: str) -> SyntheticBook:
        """The exchange-side book for ``(channel, instId)``, created on demand."""
        return self._feed(channel, inst_id).book

    def _feed(self, channel: str, inst_id: str) -> _Feed:
        key = (channel, inst_id)
        feed = self._feeds.get(key)
        if feed is None:
            if self._book_factory is not None:
                book = self._book_factory(channel, inst_id)
            else:
                opts = {"seed": self.seed, "checksum": self.checksum, **self._book_options}
                book = SyntheticBook(inst_id, channel, **opts)
            feed = self._feeds[key] = _Feed(key, book)
        return feed

    # ------------------------------------------------------------------ pushing
    async def step(
        self, n: int = 1, *, channel: str | None = None, inst_id: str | None = None
    ) -> list[Sent]:
        """Push ``n`` rounds now: each round, one frame per subscribed book (optionally only the
        given channel/instId), or in capture mode up to ``capture_batch`` frames per connection.
        Returns the frames pushed (one entry per book frame, not per connection)."""
        out: list[Sent] = []
        for _ in range(n):
            out.extend(await self._tick(channel, inst_id))
        return out

    async def _run_ticker(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._tick(None, None)
            except Exception:  # a push failure must not kill the exchange; it is logged
                log.exception("push tick failed")

    async def _tick(self, channel: str | None, inst_id: str | None) -> list[Sent]:
        async with self._lock:
            if self._capture is not None:
                return await self._tick_capture(channel, inst_id)
            out: list[Sent] = []
            feeds = [
                f
                for f in self._feeds.values()
                if f.subscribers
                and (channel is None or f.key[0] == channel)
                and (inst_id is None or f.key[1] == inst_id)
            ]
            feeds.sort(key=lambda f: (f.key[1], _PUSH_ORDER.get(f.key[0], 99)))
            for feed in feeds:
                kind, frame = feed.next_frame()
                sent = Sent(kind, feed.key[0], feed.key[1], frame)
                feed.log.append(sent)
                out.append(sent)
                for conn in list(feed.subscribers):
                    await self._send(conn, sent)
            return out

    async def _tick_capture(self, channel: str | None, inst_id: str | None) -> list[Sent]:
        assert self._capture is not None
        out: list[Sent] = []
        for conn in list(self._conns.values()):
            if conn.closed or not conn.subscriptions:
                continue
            budget = self.capture_batch
            while budget and conn.capture_cursor < len(self._capture):
                key, frame = self._capture[conn.capture_cursor]
                conn.capture_cursor += 1
                if key not in conn.subscriptions:
                    continue
                if (channel is not None and key[0] != channel) or (
                    inst_id is not None and key[1] != inst_id
                ):
                    continue
                sent = Sent("capture", key[0], key[1], frame)
                out.append(sent)
                await self._send(conn, sent)
                budget -= 1
        return out

    async def _send(self, conn: ConnInfo, sent: Sent, *, force: bool = False) -> bool:
        if conn.closed or (conn.silenced and not force):
            return False
        if conn.sbe and sent.kind not in ("event", "pong", "raw"):
            return await self._send_sbe(conn, sent)
        try:
            # OKX pushes text frames; bytes with text=True go out as text without a decode.
            await conn.ws.send(sent.data, text=True)
        except ConnectionClosed:
            return False
        conn.sent.append(sent)
        conn.last_sent = time.monotonic()
        return True

    async def _send_sbe(self, conn: ConnInfo, sent: Sent) -> bool:
        for frame in self.sbe.frames_for(sent.channel, sent.inst_id, sent.data):
            try:
                await conn.ws.send(frame)
            except ConnectionClosed:
                return False
            conn.sent.append(sent._replace(data=frame))
        conn.last_sent = time.monotonic()
        return True

    async def _send_event(
        self, conn: ConnInfo, event: dict[str, Any], key: BookKey | None = None
    ) -> None:
        event["connId"] = conn.conn_id
        data = orjson.dumps(event)
        channel, inst_id = key if key is not None else (None, None)
        await self._send(conn, Sent("event", channel, inst_id, data))

    # ------------------------------------------------------------------ connection handling
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        sbe_rest = self.sbe.process_request(
            connection, url.path, parse_qs(url.query), self._sbe_rest_book
        )
        if sbe_rest is not None:
            return sbe_rest
        if url.path == okx.REST_BOOKS_PATH:
            return self._rest_books(connection, parse_qs(url.query), rpi=False)
        if url.path == okx.REST_BOOKS_RPI_PATH:
            return self._rest_books(connection, parse_qs(url.query), rpi=True)
        if url.path not in (WS_PATH, okx.SBE_WS_PATH):
            return connection.respond(404, "Not Found\n")
        # §6: connects are limited to 3/s per IP; count them, refuse only if asked to.
        ip = str(connection.remote_address[0]) if connection.remote_address else "?"
        per_sec = self._connects.setdefault(ip, {})
        second = int(time.time())
        per_sec[second] = per_sec.get(second, 0) + 1
        if self.connect_limit is not None and per_sec[second] > self.connect_limit:
            return connection.respond(429, "Too Many Requests\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        now = time.monotonic()
        conn_id = f"{self._conn_rng.getrandbits(32):08x}"
        while conn_id in self._conns:
            conn_id = f"{self._conn_rng.getrandbits(32):08x}"
        conn = ConnInfo(conn_id, ws.remote_address, now, ws, last_recv=now, last_sent=now)
        if ws.request is not None and urlsplit(ws.request.path).path == okx.SBE_WS_PATH:
            conn.sbe = True
            conn.logged_in = self.sbe.header_login(
                ws.request.headers, self.credentials, self.login_max_skew
            )
        self._conns[conn_id] = conn
        watcher = (
            asyncio.create_task(self._idle_watch(conn)) if self.idle_timeout is not None else None
        )
        try:
            async for message in ws:
                conn.last_recv = time.monotonic()
                conn.received.append(message)
                await self._on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            if watcher is not None:
                watcher.cancel()
            conn.closed = True
            conn.close_code = ws.close_code
            for key in conn.subscriptions:
                feed = self._feeds.get(key)
                if feed is not None and conn in feed.subscribers:
                    feed.subscribers.remove(conn)
            conn._closed_event.set()

    async def _idle_watch(self, conn: ConnInfo) -> None:
        # §6: OKX drops a connection after 30 s without data (close 4004). Data either way keeps it
        # alive: a subscribed feed, or the client's text ping and our pong.
        assert self.idle_timeout is not None
        while not conn.closed:
            deadline = max(conn.last_recv, conn.last_sent) + self.idle_timeout
            delay = deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            await conn.ws.close(4004, f"No data received in {self.idle_timeout:g}s.")
            return

    async def _on_message(self, conn: ConnInfo, message: str | bytes) -> None:
        if endpoint.is_ping(message) and conn.sbe:
            await self._send_event(conn, self.sbe.ping_refused())
            return
        if endpoint.is_ping(message):
            if not conn.silenced or conn.pong_when_silenced:
                await self._send(conn, Sent("pong", None, None, endpoint.PONG), force=True)
            return
        # This exchange's refused-id code predates the 60033 OKX was seen sending (§0b); its
        # clients' tests pin 60013, so it stays, with OKX's text and the id echoed.
        parsed = endpoint.parse_request(message, bad_id_code=okx.Code.INVALID_ARGS)
        if not isinstance(parsed, endpoint.Req):
            await self._send_event(conn, parsed)
            return
        req_id, op = parsed.req_id, parsed.op
        if op == "subscribe":
            conn.subscribe_requests += 1
        elif op == "unsubscribe":
            conn.unsubscribe_requests += 1
        elif op == "login":
            conn.login_requests += 1
        else:
            await self._send_event(conn, endpoint.invalid_op(op, req_id))
            return
        if self._over_request_limit(conn):
            await self._send_event(
                conn,
                endpoint.with_id(
                    req_id, {"event": "error", "code": "60014", "msg": "Requests too frequent."}
                ),
            )
            return
        async with self._lock:
            if op == "login":
                await self._login(conn, req_id, parsed.args)
            else:
                await self._subscription(conn, op, req_id, parsed.args, message)

    def _over_request_limit(self, conn: ConnInfo) -> bool:
        now = time.monotonic()
        times = conn.request_times
        times.append(now)
        while times and times[0] <= now - 3600.0:
            times.popleft()
        return self.enforce_request_limit and len(times) > self.request_limit

    async def _login(self, conn: ConnInfo, req_id: str | None, args: Any) -> None:
        ok = False
        if (
            self.credentials
            and isinstance(args, list)
            and len(args) == 1
            and isinstance(args[0], dict)
        ):
            a = args[0]
            ts = str(a.get("timestamp", ""))
            # §7: sign = base64(HMAC-SHA256(secret, timestamp + "GET" + "/users/self/verify")).
            expected = base64.b64encode(
                hmac.new(
                    self.credentials["secret"].encode(),
                    (ts + "GET" + "/users/self/verify").encode(),
                    hashlib.sha256,
                ).digest()
            ).decode()
            fresh = True
            if self.login_max_skew is not None:
                try:
                    fresh = abs(time.time() - float(ts)) <= self.login_max_skew
                except ValueError:
                    fresh = False
            ok = (
                fresh
                and a.get("apiKey") == self.credentials.get("key")
                and a.get("passphrase") == self.credentials.get("passphrase")
                and hmac.compare_digest(str(a.get("sign", "")), expected)
            )
        if ok:
            conn.logged_in = True
            await self._send_event(conn, endpoint.login_ok(req_id))
        else:
            await self._send_event(conn, endpoint.login_failed(req_id))

    async def _subscription(
        self, conn: ConnInfo, op: str, req_id: str | None, args: Any, raw: str | bytes
    ) -> None:
        if not isinstance(args, list) or not args:
            await self._send_event(conn, endpoint.invalid_request(raw, req_id))
            return
        for arg in args:
            channel = arg.get("channel") if isinstance(arg, dict) else None
            inst_id = arg.get("instId") if isinstance(arg, dict) else None
            if not isinstance(channel, str) or not isinstance(inst_id, str) or not inst_id:
                await self._send_event(conn, endpoint.invalid_args(arg, req_id))
                continue
            # §6: an unknown channel, or (capture mode: its instruments are fixed) an instId the
            # capture does not have, is refused with 60018 naming it (subscribe and unsubscribe).
            key = (channel, inst_id)
            known = self._capture_keys is None or key in self._capture_keys
            if channel not in okx.CHANNELS or not known:
                await self._send_event(conn, endpoint.wrong_channel(channel, inst_id, req_id), key)
                continue
            if op == "subscribe":
                await self._subscribe_one(conn, req_id, arg, key)
            else:
                await self._unsubscribe_one(conn, req_id, arg, key)

    async def _subscribe_one(
        self, conn: ConnInfo, req_id: str | None, arg: dict[str, Any], key: BookKey
    ) -> None:
        channel, inst_id = key
        failures = self._fail_subs.get(key)
        if failures:
            code, msg = failures.popleft()
            # OKX error events carry no arg (§6).
            await self._send_event(
                conn, endpoint.with_id(req_id, {"event": "error", "code": code, "msg": msg}), key
            )
            return
        # 60018, or OKX's 60011 "Please log in" without a login, as serve (one rule).
        refusal = endpoint.subscribe_refusal(
            channel, inst_id, known=True, logged_in=conn.logged_in, sbe=conn.sbe, req_id=req_id
        )
        if refusal is not None:
            await self._send_event(conn, refusal, key)
            return
        conflict = _l2_tbt_conflict(key, conn.subscriptions)
        if conflict:
            await self._send_event(
                conn,
                endpoint.with_id(
                    req_id,
                    {
                        "event": "error",
                        "code": "64004",
                        "msg": f"You can't subscribe to {channel} and {conflict} of the same "
                        f"instId {inst_id} on one connection",
                    },
                ),
                key,
            )
            return
        await self._send_event(conn, endpoint.ack("subscribe", arg, req_id), key)
        conn.subscriptions[key] = None
        if self._capture is not None:
            return
        feed = self._feed(channel, inst_id)
        if conn not in feed.subscribers:
            feed.subscribers.append(conn)
        if feed.book.is_image or not self.no_snapshot:
            kind = "image" if feed.book.is_image else "snapshot"
            sent = Sent(kind, channel, inst_id, feed.book.snapshot_frame())
            feed.log.append(sent)
            await self._send(conn, sent)

    async def _unsubscribe_one(
        self, conn: ConnInfo, req_id: str | None, arg: dict[str, Any], key: BookKey
    ) -> None:
        conn.subscriptions.pop(key, None)
        feed = self._feeds.get(key)
        if feed is not None and conn in feed.subscribers:
            feed.subscribers.remove(conn)
        await self._send_event(conn, endpoint.ack("unsubscribe", arg, req_id), key)

    # ------------------------------------------------------------------ REST
    def _rest_books(
        self, connection: ServerConnection, query: dict[str, list[str]], *, rpi: bool
    ) -> Response:
        """``/market/books`` or, with ``rpi``, ``/market/books-rpi`` from the books-rpi book,
        levels ``[px, total, nonRpi, count]`` (§8)."""
        inst_id = (query.get("instId") or [""])[0]
        sz_text = (query.get("sz") or ["1"])[0]
        if not inst_id:
            self.rest_requests.append(RestRequest(None, None, None, False))
            return endpoint.json_response(
                connection,
                400,
                {"code": "50014", "msg": "Parameter instId can not be empty", "data": []},
            )
        try:
            sz = int(sz_text)
        except ValueError:
            sz = -1
        if not 1 <= sz <= okx.MAX_REST_DEPTH:  # §8: default 1
            self.rest_requests.append(RestRequest(inst_id, None, None, False))
            return endpoint.json_response(
                connection, 400, {"code": "51000", "msg": "Parameter sz error", "data": []}
            )
        feed = self._rest_feed(inst_id, rpi)
        if feed is None:
            self.rest_requests.append(RestRequest(inst_id, sz, None, False))
            return endpoint.json_response(
                connection,
                400,
                {"code": "51001", "msg": "Instrument ID does not exist", "data": []},
            )
        lag = 0
        lag_state = self._rest_lag.get(inst_id)
        if lag_state is not None:
            frames, remaining = lag_state
            lag = int(frames or 0)
            if remaining is not None:
                lag_state[1] = remaining - 1
                if remaining - 1 <= 0:
                    del self._rest_lag[inst_id]
        snap = feed.book.rest_snapshot(sz, lag=lag, pad=self.rest_pad)
        self.rest_requests.append(RestRequest(inst_id, sz, snap["seqId"], lag > 0))
        return endpoint.json_response(connection, 200, {"code": "0", "msg": "", "data": [snap]})

    def _rest_feed(self, inst_id: str, rpi: bool) -> _Feed | None:
        if self._capture is not None:
            return None
        if rpi:
            return self._feed(_REST_RPI_CHANNEL, inst_id)
        for channel in _REST_SOURCES:
            feed = self._feeds.get((channel, inst_id))
            if feed is not None:
                return feed
        return self._feed("books", inst_id)

    def _sbe_rest_book(self, inst_id: str) -> SyntheticBook | None:
        feed = self._rest_feed(inst_id, False)
        return feed.book if feed is not None else None

    def rest_lag(self, inst_id: str, frames: int = 1, *, requests: int | None = None) -> None:
        """Make REST serve ``inst_id``'s book as it was ``frames`` publishes ago (an older seqId),
        for the next ``requests`` requests (``None``: until cleared with ``frames=0``)."""
        if frames <= 0:
            self._rest_lag.pop(inst_id, None)
        else:
            self._rest_lag[inst_id] = [frames, requests]

    # ------------------------------------------------------------------ faults: books
    def _queue(self, channel: str, inst_id: str, fault: str) -> None:
        if self._capture is not None:
            raise RuntimeError("book faults need synthetic books, not a capture")
        self._feed(channel, inst_id).faults.append(fault)

    def inject_gap(self, channel: str, inst_id: str) -> None:
        """The book's next push skips a frame: its prevSeqId is a seqId nobody was sent."""
        self._queue(channel, inst_id, "gap")

    def corrupt_checksum(self, channel: str, inst_id: str) -> None:
        """The book's next update carries a wrong, non-zero checksum (in any checksum mode)."""
        self._queue(channel, inst_id, "corrupt")

    def reset_seq(self, channel: str, inst_id: str) -> None:
        """The book's next update is a maintenance seqId reset: seqId < prevSeqId == last (§4)."""
        self._queue(channel, inst_id, "reset")

    def heartbeat(self, channel: str, inst_id: str) -> None:
        """The book's next push is the keep-alive: empty sides, prevSeqId == seqId (§4)."""
        self._queue(channel, inst_id, "heartbeat")

    def fail_subscription(
        self,
        channel: str,
        inst_id: str,
        code: str = "64003",
        msg: str = "Your trading fee tier doesn't meet the requirement to access this channel",
        *,
        times: int = 1,
    ) -> None:
        """The next ``times`` subscribes to ``(channel, instId)`` get an error event, not an ack."""
        self._fail_subs.setdefault((channel, inst_id), deque()).extend([(code, msg)] * times)

    # ------------------------------------------------------------------ faults: connections
    def _targets(self, conn: str | None) -> list[ConnInfo]:
        if conn is None:
            return [c for c in self._conns.values() if not c.closed]
        return [self._conns[conn]]

    async def drop(self, conn: str | None = None) -> None:
        """Abort the TCP connection(s) with no close frame (the client sees 1006)."""
        targets = self._targets(conn)
        for c in targets:
            c.ws.transport.abort()
        for c in targets:
            await c._closed_event.wait()

    def silence(self, conn: str | None = None, *, pong: bool = True) -> None:
        """Stop sending anything to the connection(s); with ``pong=False`` text pings go
        unanswered too. Pushes are lost for them (the book moves on), so resuming shows a gap.
        Without traffic either way the idle rule closes them with 4004."""
        for c in self._targets(conn):
            c.silenced = True
            c.pong_when_silenced = pong

    def unsilence(self, conn: str | None = None) -> None:
        for c in self._targets(conn):
            c.silenced = False

    async def notice_64008(
        self, conn: str | None = None, *, close_after: float | None = None, close_code: int = 1001
    ) -> None:
        """Send the service-upgrade notice (§6), then close after ``close_after`` seconds
        (default ``notice_close_delay``)."""
        delay = self.notice_close_delay if close_after is None else close_after
        for c in self._targets(conn):
            await self._send_event(c, {"event": "notice", "code": "64008", "msg": NOTICE_64008_MSG})
            task = asyncio.create_task(self._close_later(c, delay, close_code))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _close_later(self, conn: ConnInfo, delay: float, code: int) -> None:
        await asyncio.sleep(delay)
        await conn.ws.close(code, "service upgrade")

    async def close(self, conn: str | None = None, code: int = 1000, reason: str = "") -> None:
        """Close the connection(s) cleanly with a close frame."""
        for c in self._targets(conn):
            await c.ws.close(code, reason)

    async def send_malformed(
        self,
        conn: str | None = None,
        payload: bytes = DEFAULT_MALFORMED,
        *,
        text: bool = True,
        channel: str | None = None,
        inst_id: str | None = None,
    ) -> None:
        """Send ``payload`` as is (truncated JSON, not JSON, wrong types...) as a text frame, or a
        binary frame with ``text=False``."""
        for c in self._targets(conn):
            if c.closed or c.silenced:
                continue
            try:
                await c.ws.send(payload, text=text)
            except ConnectionClosed:
                continue
            c.sent.append(Sent("malformed", channel, inst_id, payload))
            c.last_sent = time.monotonic()

    async def send_raw(
        self,
        conn: str | None,
        payload: bytes,
        *,
        channel: str | None = None,
        inst_id: str | None = None,
    ) -> None:
        """Send any payload as a text frame, recorded as kind ``"event"`` (e.g. a custom event)."""
        for c in self._targets(conn):
            await self._send(c, Sent("event", channel, inst_id, payload))

    # ------------------------------------------------------------------ accounting
    @property
    def connections(self) -> list[str]:
        """Ids of the live connections, oldest first."""
        return [c.conn_id for c in self._conns.values() if not c.closed]

    @property
    def all_connections(self) -> list[str]:
        """Ids of every connection ever opened, oldest first."""
        return list(self._conns)

    @property
    def connections_opened(self) -> int:
        return len(self._conns)

    def conn(self, conn_id: str) -> ConnInfo:
        return self._conns[conn_id]

    def sent(
        self,
        conn_id: str,
        channel: str | None = None,
        inst_id: str | None = None,
        *,
        kinds: Iterable[str] | None = None,
    ) -> list[Sent]:
        """Frames sent to one connection in order, optionally only one book's or some kinds."""
        wanted = set(kinds) if kinds is not None else None
        return [
            s
            for s in self._conns[conn_id].sent
            if (channel is None or s.channel == channel)
            and (inst_id is None or s.inst_id == inst_id)
            and (wanted is None or s.kind in wanted)
        ]

    def sent_frames(self, channel: str, inst_id: str) -> list[Sent]:
        """Every frame generated for one book and pushed (per-connection snapshots included, each
        once), in order. Frames swallowed by `inject_gap` are in `skipped_frames`."""
        feed = self._feeds.get((channel, inst_id))
        return list(feed.log) if feed else []

    def skipped_frames(self, channel: str, inst_id: str) -> list[bytes]:
        feed = self._feeds.get((channel, inst_id))
        return list(feed.skipped) if feed else []

    def subscribers(self, channel: str, inst_id: str) -> list[str]:
        feed = self._feeds.get((channel, inst_id))
        if feed is not None:
            return [c.conn_id for c in feed.subscribers]
        return [
            c.conn_id
            for c in self._conns.values()
            if not c.closed and (channel, inst_id) in c.subscriptions
        ]

    def connects_per_second(self, ip: str = "127.0.0.1") -> dict[int, int]:
        """WebSocket connection attempts per wall-clock second from ``ip`` (§6: limit 3/s)."""
        return dict(self._connects.get(ip, {}))

    # ------------------------------------------------------------------ waiting (for tests)
    async def wait_connections(self, count: int, timeout: float = 5.0) -> list[str]:
        """Wait until at least ``count`` connections are live; returns their ids."""
        await self._wait(lambda: len(self.connections) >= count, timeout)
        return self.connections

    async def wait_subscribed(
        self, channel: str, inst_id: str, count: int = 1, timeout: float = 5.0
    ) -> list[str]:
        """Wait until ``count`` connections are subscribed to ``(channel, instId)``."""
        await self._wait(lambda: len(self.subscribers(channel, inst_id)) >= count, timeout)
        return self.subscribers(channel, inst_id)

    async def wait_closed(self, conn_id: str, timeout: float = 5.0) -> int | None:
        """Wait until the connection is closed; returns its close code."""
        conn = self._conns[conn_id]
        await asyncio.wait_for(conn._closed_event.wait(), timeout)
        return conn.close_code

    @staticmethod
    async def _wait(pred: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                await asyncio.sleep(0.002)


def _l2_tbt_conflict(key: BookKey, subs: dict[BookKey, None]) -> str | None:
    # §1: books-l2-tbt can't share a connection with books/books50-l2-tbt for one instId (64004).
    channel, inst_id = key
    if channel == "books-l2-tbt":
        clash: tuple[str, ...] = ("books", "books50-l2-tbt")
    elif channel in ("books", "books50-l2-tbt"):
        clash = ("books-l2-tbt",)
    else:
        return None
    for other in clash:
        if (other, inst_id) in subs:
            return other
    return None


def _parse_capture(frames: Sequence[bytes | str]) -> list[tuple[BookKey, bytes]]:
    """Keep the data frames of a capture (those with arg.channel/arg.instId and data), in order."""
    out: list[tuple[BookKey, bytes]] = []
    for raw in frames:
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        try:
            msg = orjson.loads(data)
        except ValueError:
            continue
        if not isinstance(msg, dict) or "data" not in msg or "event" in msg:
            continue
        arg = msg.get("arg")
        if (
            isinstance(arg, dict)
            and isinstance(arg.get("channel"), str)
            and isinstance(arg.get("instId"), str)
        ):
            out.append(((arg["channel"], arg["instId"]), data))
    return out
