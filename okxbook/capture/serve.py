"""Re-serve a capture as a live OKX public endpoint, paced by its recorded receive times.

This module owns the playback clock, the per-book state kept while playing (with ``okxbook.Books``,
so a late subscriber can be started with a synthesized snapshot) and a small OKX-shaped WebSocket +
REST server on top of ``websockets.asyncio.server.serve``. Reading files is ``okxbook.capture``'s
job; the book rules are the core's. ``okxbook.testing.exchange.LocalExchange`` is not reused: its
capture mode replays each connection from the start of the capture, unpaced, and its books are
synthetic, so a subscriber joining mid-capture could not get a correct start; what both say to
clients (request parsing, OKX's events and error texts, the one-port bind) is ``okxbook.endpoint``.

What a client sees (``docs/protocol.md`` §2, §6): text ``ping`` -> ``pong``;
``subscribe``/``unsubscribe`` -> acks (``id`` echoed); ``login`` -> success for any credentials (a
replay has nothing to protect), but ``*-l2-tbt`` needs one, and on ``/ws/v5/public-sbe`` every
channel needs the header login (else 60011, as OKX); a subscribe to a
``(channel, instId)`` the capture never pushes -> 60018 naming it; malformed requests -> the OKX
error events 60012/60013/60019, an ``id`` OKX refuses -> 60033 (§0b). After subscribing to ``(channel, instId)`` a connection gets
that book's captured frames, untouched and in capture order, from that moment on. For a delta
channel whose book is already live, the first is a snapshot of the current state synthesized from
``Book.bid_levels``/``ask_levels`` (the strings as received): ``prevSeqId`` -1, the book's
``seqId`` and ``ts``, and a CRC32 checksum (``okx_checksum``) when the capture carries non-zero
checksums, else 0. Image channels (books5, bbo-tbt) and other channels simply get their next
frames. The synthesized snapshot carries the published depth (400 for ``books``), as OKX's own
does, and the third level field as the book kept it (``extra_lots``: books-rpi's nonRpiQty, the
deprecated "0" elsewhere). REST ``GET /api/v5/market/books?instId=&sz=`` answers from the same
state of a plain delta book (third field "0"; never from books-rpi, whose sizes include RPI
orders), ``GET /api/v5/market/books-rpi`` from the books-rpi book (``[px, total, nonRpi, count]``).

Pacing: frame *i* goes out ``(recv_ns[i] - recv_ns[0]) / speed`` after the first (``speed=None``:
as fast as the clients read); frames without a receive time are spaced ``untimed_interval``
(scaled by speed). Capture events (the recorder's own acks, pongs) and disconnect markers are not
replayed. Every connection has its own send queue; the player waits while any subscriber's queue
is over ``max_queue`` frames, so a slow client slows playback rather than growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from okxbook import endpoint, okx
from okxbook._book import Book
from okxbook._books import Books
from okxbook._checksum import okx_checksum
from okxbook.endpoint import LoopbackEndpoint, ServerTls
from okxbook.endpoint_sbe import SbeSide
from okxbook.errors import BookError, UnknownChannelError

from .files import CapturedFrame, CaptureFormatError, iter_frames

__all__ = ["CaptureServer", "serve_capture", "snapshot_frame"]

log = logging.getLogger(__name__)

BookKey = tuple[str, str]
# REST books answers from the deepest delta book the capture has for the instId (§8: books, 400
# levels). Never from books-rpi/books-elp: their sizes include RPI orders /books does not show.
_REST_SOURCES = ("books-l2-tbt", "books", "books50-l2-tbt")
# REST books-rpi answers from the RPI book (books-elp is its pre-2026-10-31 name, §0).
_REST_RPI_SOURCES = ("books-rpi", "books-elp")
# The arg of a push, where OKX puts it: first (fast path of the capture scan).
_ARG_PREFIX = re.compile(rb'\{"arg":\{"channel":"([^"\\]+)","instId":"([^"\\]+)"')
# Below this the player does not sleep (the event loop's timer granularity is about 1 ms); it
# still yields every _YIELD_EVERY frames so connections and their writers run.
_MIN_SLEEP = 0.0005
_YIELD_EVERY = 64


def snapshot_frame(book: Book) -> bytes:
    """An OKX ``books``-style snapshot frame of ``book``'s current state (module docstring)."""
    bids = book.bid_levels()
    asks = book.ask_levels()
    scale = book.sz_decimals
    item: dict[str, Any] = {
        "asks": [
            [px, sz, _lots_text(extra, scale), str(n)]
            for (px, sz, n), extra in zip(asks, book.asks()["extra_lots"].tolist())
        ],
        "bids": [
            [px, sz, _lots_text(extra, scale), str(n)]
            for (px, sz, n), extra in zip(bids, book.bids()["extra_lots"].tolist())
        ],
        "ts": str(book.ts_ms),
        # §0/§3: captures from before 2026-06-23 carry real CRC32s; later ones 0. Keep the style.
        "checksum": okx_checksum(bids, asks) if book.checksum != 0 else 0,
    }
    if book.seq_id >= 0:  # 2022-era captures have no seqId at all: invent none
        item["prevSeqId"] = -1
        item["seqId"] = book.seq_id
    return orjson.dumps(
        {
            "arg": {"channel": book.channel, "instId": book.inst_id},
            "action": "snapshot",
            "data": [item],
        }
    )


def _lots_text(lots: int, decimals: int) -> str:
    """An integer in units of 10**-decimals as OKX prints it ("1000", "0.5"): the third level
    field (books-rpi non-RPI size; "0" on other channels)."""
    if decimals == 0 or lots == 0:
        return str(lots)
    whole, frac = divmod(lots, 10**decimals)
    frac_text = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{whole}.{frac_text}" if frac_text else str(whole)


def _frame_key(frame: bytes) -> BookKey | None:
    """(channel, instId) of a push the core does not classify (cold path: rare frames only)."""
    try:
        msg = orjson.loads(frame)
    except ValueError:
        return None
    arg = msg.get("arg") if isinstance(msg, dict) and "data" in msg else None
    if isinstance(arg, dict):
        channel, inst_id = arg.get("channel"), arg.get("instId")
        if isinstance(channel, str) and isinstance(inst_id, str):
            return channel, inst_id
    return None


class _Conn:
    """One client connection: its subscriptions and its ordered send queue.

    Everything a connection is sent goes through ``queue``, appended synchronously, so an ack, a
    synthesized snapshot and the next played frame can never overtake one another.
    """

    __slots__ = (
        "closed",
        "conn_id",
        "logged_in",
        "max_queue",
        "queue",
        "room",
        "sbe",
        "sent",
        "subs",
        "wake",
        "ws",
    )

    def __init__(self, conn_id: str, ws: ServerConnection, max_queue: int) -> None:
        self.conn_id = conn_id
        self.ws = ws
        self.subs: set[BookKey] = set()
        self.queue: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.closed = False
        self.logged_in = False
        self.sbe: SbeSide | None = None  # on /ws/v5/public-sbe: book frames go out binary
        self.sent = 0
        self.max_queue = max_queue

    def push(self, data: bytes) -> None:
        if self.closed:
            return
        self.queue.append(data)
        self.wake.set()
        if len(self.queue) > self.max_queue:
            self.room.clear()

    def push_book(self, frame: bytes) -> None:
        """A captured book frame: as is, or on the SBE feed as its binary frames (§11)."""
        if self.sbe is None:
            self.push(frame)
            return
        channel, inst_id = _frame_key(frame) or (None, None)
        for data in self.sbe.frames_for(channel, inst_id, frame):
            self.push(data)

    def event(self, event: dict[str, Any], req_id: Any = None) -> None:
        body = endpoint.with_id(req_id, dict(event))
        body["connId"] = self.conn_id
        self.push(orjson.dumps(body))

    async def run_writer(self) -> None:
        queue = self.queue
        low = self.max_queue // 2
        try:
            while True:
                while not queue:
                    self.room.set()
                    self.wake.clear()
                    await self.wake.wait()
                data = queue.popleft()
                if len(queue) <= low:
                    self.room.set()
                # OKX pushes text frames; bytes with text=True go out without a decode. SBE
                # frames (a NUL in their header, which no text frame has) go out binary.
                await self.ws.send(data, text=b"\0" not in data[:8])
                self.sent += 1
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            queue.clear()
            self.room.set()


class CaptureServer(LoopbackEndpoint):
    """Plays capture files to OKX clients on ``127.0.0.1`` (module docstring).

    ``async with CaptureServer(paths) as srv:`` (or ``await srv.start()`` / ``await srv.stop()``),
    then connect to ``srv.ws_url``. ``await srv.wait_done()`` returns once the capture has been
    played and handed to every subscriber's socket. ``pause()``/``resume()`` hold the clock;
    ``wait_for_subscriber`` starts playback at the first subscription instead of at ``start()``.
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        speed: float | None = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        loop_forever: bool = False,
        wait_for_subscriber: bool = False,
        untimed_interval: float = 0.01,
        max_queue: int = 4096,
        tls: bool | ServerTls = False,
    ) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths: list[str] = [os.fspath(p) for p in paths]
        if not self.paths:
            raise ValueError("no capture files given")
        if speed is not None and not speed > 0:
            raise ValueError("speed must be > 0, or None for as fast as possible")
        self.speed = speed
        self.host = host
        self.port = port
        self.tls = endpoint.tls_option(tls, host)
        self.loop_forever = loop_forever
        self.wait_for_subscriber = wait_for_subscriber
        self.untimed_interval = untimed_interval
        self.max_queue = max_queue
        self.frames_played = 0
        """Capture frames played so far (all passes), whether or not anyone was subscribed."""
        self.passes = 0
        """Complete passes over the capture."""
        self.book_errors = 0
        """Frames the server-side books rejected (capture gaps, checksum mismatches, ...)."""
        self.error: BaseException | None = None
        """Why playback stopped early (an unreadable capture), else None."""
        self.books = Books()
        """The captured books as played so far (replaced at each pass)."""
        self.sbe = SbeSide()
        """What SBE clients (``/ws/v5/public-sbe``) get: the captured frames converted."""
        self.keys: frozenset[BookKey] | None = None
        """Every ``(channel, instId)`` the capture pushes (read at ``start()``; None if the capture
        could not be read, and then playback reports why)."""
        self._subscribers: dict[BookKey, list[_Conn]] = {}
        self._conns: dict[str, _Conn] = {}
        self._conn_ids = itertools.count(1)
        self._server: Server | None = None
        self._player: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = asyncio.Event()
        self._running.set()
        self._subscribed = asyncio.Event()
        self._done = asyncio.Event()
        self._played_waiters: list[tuple[int, asyncio.Future[None]]] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> CaptureServer:
        """Bind, start serving and start the playback clock."""
        if self._server is not None:
            return self
        # Read once which books the capture has, so a subscribe to any other gets OKX's 60018
        # (§6) at once rather than an ack and silence; in a thread: large captures take a while.
        self.keys = await asyncio.to_thread(self._scan_keys)
        self._server = await self._bind(self._handler, self._process_request)
        self._player = asyncio.create_task(self._play(), name="okxbook-serve-player")
        return self

    async def stop(self) -> None:
        """Stop playing, close every connection (1001) and unbind."""
        if self._player is not None:
            self._player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._player
            self._player = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        self._done.set()

    @property
    def connections(self) -> int:
        return sum(1 for c in self._conns.values() if not c.closed)

    # ------------------------------------------------------------------ playback control
    def pause(self) -> None:
        """Hold playback after the current frame; the schedule resumes where it stopped."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    async def wait_done(self) -> None:
        """Wait until the capture was played (never, with ``loop_forever``, unless stopped) and
        every subscriber's queue was handed to its socket. Re-raises a playback failure."""
        await self._done.wait()
        for conn in list(self._conns.values()):
            while conn.queue and not conn.closed:
                await asyncio.sleep(0.001)
        if self.error is not None:
            raise self.error

    async def wait_played(self, n: int) -> None:
        """Wait until at least ``n`` frames were played (or playback ended)."""
        if self.frames_played >= n or self._done.is_set():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._played_waiters.append((n, fut))
        await fut

    def _wake_played_waiters(self, final: bool = False) -> None:
        keep = []
        for n, fut in self._played_waiters:
            if final or self.frames_played >= n:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((n, fut))
        self._played_waiters = keep

    # ------------------------------------------------------------------ the player
    def _frames(self) -> Iterator[CapturedFrame]:
        for path in self.paths:  # one stream, as replay does (a day split into hourly files)
            yield from iter_frames(path)

    def _scan_keys(self) -> frozenset[BookKey] | None:
        keys: set[BookKey] = set()
        try:
            for captured in self._frames():
                frame = captured.frame
                m = _ARG_PREFIX.match(frame)
                if m is not None:
                    keys.add((m[1].decode(), m[2].decode()))
                elif frame:
                    key = _frame_key(frame)
                    if key is not None:
                        keys.add(key)
        except (OSError, CaptureFormatError):
            return None  # the player meets the same error and reports it (self.error)
        return frozenset(keys)

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self.wait_for_subscriber:
                await self._subscribed.wait()
            while True:
                played = await self._play_once(loop)
                self.passes += 1
                if not self.loop_forever:
                    break
                # Let connections run between passes; an empty capture must not spin.
                await asyncio.sleep(0 if played else 1.0)
        except (OSError, CaptureFormatError) as exc:
            self.error = exc
            log.error("playback stopped: %s", exc)
        finally:
            self._done.set()
            self._wake_played_waiters(final=True)

    async def _play_once(self, loop: asyncio.AbstractEventLoop) -> int:
        # A new pass starts from empty books: the capture's first snapshots rebuild them, and
        # subscribers get those snapshots (prevSeqId -1 resets their books too).
        self.books = Books()
        speed = self.speed
        target = loop.time()  # when the current frame is due, on the loop clock
        prev_ns: int | None = None
        since_yield = played = 0
        for captured in self._frames():
            frame = captured.frame
            if not frame:
                continue  # a disconnect marker of the recorder
            if not self._running.is_set():
                paused_at = loop.time()
                await self._running.wait()
                target += loop.time() - paused_at
            if speed is not None:
                recv_ns = captured.recv_ns
                if recv_ns is None:
                    target += self.untimed_interval / speed
                else:
                    if prev_ns is not None and recv_ns > prev_ns:
                        target += (recv_ns - prev_ns) / 1e9 / speed
                    prev_ns = recv_ns
                delay = target - loop.time()
                if delay > _MIN_SLEEP:
                    await asyncio.sleep(delay)
                    since_yield = 0
            for conn in self._dispatch(frame):
                if not conn.room.is_set():
                    await conn.room.wait()  # backpressure: this client is far behind
            self.frames_played += 1
            if self._played_waiters:
                self._wake_played_waiters()
            played += 1
            since_yield += 1
            if since_yield >= _YIELD_EVERY:
                since_yield = 0
                await asyncio.sleep(0)
        return played

    def _dispatch(self, frame: bytes) -> list[_Conn]:
        """Apply the frame to the server's books and queue it to its subscribers; returns them."""
        key: BookKey | None
        try:
            result = self.books.apply(frame)
        except BookError as exc:
            # Unknown channel (trades ...), update before snapshot, gap or checksum error in the
            # capture: the frame still goes out as captured; the client judges it as OKX's.
            if not isinstance(exc, UnknownChannelError):  # trades, tickers: no book, no error
                self.book_errors += 1
            if exc.channel is not None and exc.inst_id is not None:
                key = (exc.channel, exc.inst_id)
            else:
                key = _frame_key(frame)
        else:
            if not isinstance(result, Book):
                return []  # the recorder's own acks, pongs, errors: not replayed
            key = (result.channel, result.inst_id)
        if key is None:
            return []
        subs = self._subscribers.get(key)
        if not subs:
            return []
        for conn in subs:
            conn.push_book(frame)
        return subs

    # ------------------------------------------------------------------ connections
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        sbe_rest = self.sbe.process_request(
            connection, url.path, parse_qs(url.query), self._sbe_rest_book
        )
        if sbe_rest is not None:
            return sbe_rest
        if url.path == okx.REST_BOOKS_PATH:
            return self._rest_books(connection, parse_qs(url.query), _REST_SOURCES)
        if url.path == okx.REST_BOOKS_RPI_PATH:
            return self._rest_books(connection, parse_qs(url.query), _REST_RPI_SOURCES)
        if url.path not in (endpoint.WS_PATH, okx.SBE_WS_PATH):
            return connection.respond(404, "Not Found\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        conn = _Conn(f"{next(self._conn_ids):08x}", ws, self.max_queue)
        if ws.request is not None and urlsplit(ws.request.path).path == okx.SBE_WS_PATH:
            conn.sbe = self.sbe
            # Any credentials, as for op login below; the SBE feed has them in the headers.
            conn.logged_in = okx.SBE_LOGIN_HEADERS[0] in ws.request.headers
        self._conns[conn.conn_id] = conn
        writer = asyncio.create_task(conn.run_writer())
        self._tasks.add(writer)
        writer.add_done_callback(self._tasks.discard)
        try:
            async for message in ws:
                self._on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            for key in conn.subs:
                subs = self._subscribers.get(key)
                if subs and conn in subs:
                    subs.remove(conn)
            conn.subs.clear()
            writer.cancel()
            conn.closed = True
            conn.room.set()
            del self._conns[conn.conn_id]

    def _on_message(self, conn: _Conn, message: str | bytes) -> None:
        """Answer one client request. Synchronous on purpose: a subscription's snapshot and its
        registration happen between two played frames, so nothing is missed or sent twice."""
        if endpoint.is_ping(message):
            conn.push(endpoint.PONG)
            return
        req = endpoint.parse_request(message)
        if not isinstance(req, endpoint.Req):
            conn.event(req)
            return
        req_id, op, args = req.req_id, req.op, req.args
        if op == "login":
            # Any credentials: a replay has nothing to protect, but *-l2-tbt needs a login (§7).
            conn.logged_in = True
            conn.event(endpoint.login_ok(), req_id)
            return
        if op not in ("subscribe", "unsubscribe"):
            conn.event(endpoint.invalid_op(op), req_id)
            return
        if not isinstance(args, list) or not args:
            conn.event(endpoint.invalid_request(message), req_id)
            return
        for arg in args:
            channel = arg.get("channel") if isinstance(arg, dict) else None
            inst_id = arg.get("instId") if isinstance(arg, dict) else None
            if not isinstance(channel, str) or not isinstance(inst_id, str) or not inst_id:
                conn.event(endpoint.invalid_args(arg), req_id)
                continue
            key = (channel, inst_id)
            if op == "subscribe":
                self._subscribe(conn, key, req_id)
            else:
                if key in conn.subs:
                    conn.subs.discard(key)
                    self._subscribers[key].remove(conn)
                conn.event(endpoint.ack(op, {"channel": channel, "instId": inst_id}), req_id)

    def _subscribe(self, conn: _Conn, key: BookKey, req_id: Any) -> None:
        channel, inst_id = key
        # A refused subscribe still starts a wait_for_subscriber playback: the client is there.
        self._subscribed.set()
        refusal = endpoint.subscribe_refusal(
            channel,
            inst_id,
            known=self.keys is None or key in self.keys,
            logged_in=conn.logged_in,
            sbe=conn.sbe is not None,
        )
        if refusal is not None:
            conn.event(refusal, req_id)
            return
        conn.event(endpoint.ack("subscribe", {"channel": channel, "instId": inst_id}), req_id)
        if key in conn.subs:
            return  # OKX acks a repeated subscribe and sends nothing new
        conn.subs.add(key)
        self._subscribers.setdefault(key, []).append(conn)
        book = self.books.get(channel, inst_id)
        # A live delta book: start the client from its current state. An invalid book (the
        # capture had a gap) or no book yet: the capture's next snapshot will start the client.
        if book is not None and not book.is_image and book.is_valid and book.snapshots:
            if conn.sbe is None:  # the SBE feed has no snapshot: its clients seed from REST
                conn.push(snapshot_frame(book))
        self._subscribed.set()

    # ------------------------------------------------------------------ REST
    def _sbe_rest_book(self, inst_id: str) -> _RestBook | None:
        for channel in _REST_SOURCES:
            book = self.books.get(channel, inst_id)
            if book is not None and book.is_valid and book.snapshots:
                return _RestBook(book)
        return None

    def _rest_books(
        self,
        connection: ServerConnection,
        query: dict[str, list[str]],
        sources: tuple[str, ...],
    ) -> Response:
        """``/market/books`` (``sources`` = the plain delta channels: third field "0") or
        ``/market/books-rpi`` (the RPI book: ``[px, total, nonRpi, count]``), §8."""
        inst_id = (query.get("instId") or [""])[0]
        try:
            sz = int((query.get("sz") or ["1"])[0])
        except ValueError:
            sz = -1
        if not inst_id:
            return endpoint.json_response(
                connection, 400, endpoint.rest_error("50014", "Parameter instId can not be empty")
            )
        if not 1 <= sz <= okx.MAX_REST_DEPTH:  # §8: default 1
            return endpoint.json_response(
                connection, 400, endpoint.rest_error("51000", "Parameter sz error")
            )
        for channel in sources:
            book = self.books.get(channel, inst_id)
            if book is not None and book.is_valid and book.snapshots:
                break
        else:
            return endpoint.json_response(
                connection, 400, endpoint.rest_error("51001", "Instrument ID does not exist")
            )
        rpi = sources is _REST_RPI_SOURCES
        scale = book.sz_decimals

        def side(levels: list[tuple[str, str, int]], extra: list[int]) -> list[list[str]]:
            return [
                [px, s, _lots_text(x, scale) if rpi else "0", str(n)]
                for (px, s, n), x in zip(levels, extra)
            ]

        data: dict[str, Any] = {
            "asks": side(book.ask_levels(sz), book.asks(sz)["extra_lots"].tolist()),
            "bids": side(book.bid_levels(sz), book.bids(sz)["extra_lots"].tolist()),
            "ts": str(book.ts_ms),
        }
        if book.seq_id >= 0:
            data["seqId"] = book.seq_id
        return endpoint.json_response(connection, 200, {"code": "0", "msg": "", "data": [data]})


class _RestBook:
    """A played book as ``endpoint_sbe.SbeSide`` reads it for ``GET books-sbe``."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self.channel = book.channel

    def rest_snapshot(self, sz: int = 1) -> dict[str, Any]:
        b = self.book
        data: dict[str, Any] = {
            "asks": [[px, s, "0", str(n)] for px, s, n in b.ask_levels(sz)],
            "bids": [[px, s, "0", str(n)] for px, s, n in b.bid_levels(sz)],
            "ts": str(b.ts_ms),
        }
        if b.seq_id >= 0:
            data["seqId"] = b.seq_id
        return data


async def serve_capture(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    speed: float | None = 1.0,
    host: str = "127.0.0.1",
    port: int = 0,
    loop_forever: bool = False,
    **options: Any,
) -> CaptureServer:
    """Start serving ``paths`` (one stream, in order) and return the running server.

    ``speed`` divides the recorded gaps (10 = ten times faster; None = as fast as clients read).
    ``options`` go to :class:`CaptureServer` (``wait_for_subscriber``, ``untimed_interval``,
    ``max_queue``)."""
    return await CaptureServer(
        paths, speed=speed, host=host, port=port, loop_forever=loop_forever, **options
    ).start()
