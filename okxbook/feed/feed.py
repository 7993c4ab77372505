"""``Feed``: the asyncio API that keeps many OKX books live and correct.

It owns the consumer side: which books exist, their status (syncing, live, resyncing, invalid and
why), the conflating top-of-book streams and callbacks, subscription errors, and how instruments are
spread over connections. Everything that touches a socket is in ``connection``; everything that
touches a level is in the Cython core.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import ssl
import time
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from okxbook import okx
from okxbook._book import CHANNELS, Book
from okxbook._books import Books
from okxbook.errors import EndpointError, SubscriptionError
from okxbook.events import Event

from ._hub import FeedHub
from .auth import Credentials
from .connection import (
    BOOK_PING_AFTER,
    BOOK_PONG_TIMEOUT,
    CONNECT_FAILED,
    Connection,
    ConnectionSettings,
    Key,
)
from .deltas import BookDeltas, DeltaHub, DeltaStream
from .latency import FeedLatency, SbeLatency
from .sbe import check_sbe_options, refresh_inst_id_codes
from .sync import Position, ResyncPacing, successor_ready
from .tops import Top, TopStream, top_of
from .transport import TRANSPORTS

__all__ = [
    "DEMO_URL",
    "PROD_REST_URL",
    "PROD_URL",
    "BookStatus",
    "CallbackHandle",
    "Feed",
    "SbeLatency",
    "SubscriptionError",
]

log = logging.getLogger("okxbook.feed")

# Port 8443 was retired on 2026-10-31 (docs/protocol.md §0b).
PROD_URL = okx.PROD_WS_URL
DEMO_URL = okx.DEMO_WS_URL
PROD_REST_URL = okx.PROD_REST_URL


#: How many unclaimed events ``Feed.events`` keeps (the oldest go first; issue 14 item 10).
EVENTS_KEPT = 1000


@dataclass(frozen=True, slots=True)
class BookStatus:
    state: str  # "syncing" | "live" | "stale" | "resyncing" | "invalid"
    reason: str | None
    since: float  # time.time() of the change


class Subscription:
    """One (channel, instId) the feed keeps: its public status and resync pacing."""

    __slots__ = ("error", "key", "live_event", "pacing", "status", "was_live")

    def __init__(self, key: tuple[str, str]) -> None:
        self.key = key
        self.status = BookStatus("syncing", "subscribing", time.time())
        self.was_live = False
        self.error: SubscriptionError | None = None
        self.live_event = asyncio.Event()
        self.pacing = ResyncPacing()  # shared by every connection that carries this book

    @property
    def resyncs(self) -> int:
        return self.pacing.resyncs

    def next_resync_delay(self, bounds: tuple[float, float]) -> float:
        return self.pacing.next_delay(bounds)


def _normalise(
    subscriptions: Iterable[str | tuple[str, str]], channel: str
) -> list[tuple[str, str]]:
    if isinstance(subscriptions, (str, bytes)):
        # A bare string is iterable: "BTC-USDT" would silently become 8 one-letter instIds.
        raise TypeError(
            f"subscriptions must be a list of instIds or (channel, instId) pairs, not a string: "
            f"write Feed([{subscriptions!r}])"
        )
    keys: list[tuple[str, str]] = []
    for item in subscriptions:
        key = (channel, item) if isinstance(item, str) else (str(item[0]), str(item[1]))
        if key[0] not in CHANNELS:
            raise ValueError(f"okxbook keeps no book for channel {key[0]!r}")
        if key not in keys:
            keys.append(key)
    if not keys:
        raise ValueError("no subscriptions: give Feed at least one instId or (channel, instId)")
    return keys


class CallbackHandle:
    """What ``Feed.on_top``/``Feed.on_status`` return: ``handle.remove()`` (or
    ``feed.remove_callback(handle)``) stops further calls. Removing twice is harmless."""

    __slots__ = ("_callback", "_registry")

    def __init__(self, registry: list[Any], callback: Callable[..., None]) -> None:
        self._registry = registry
        self._callback = callback

    def remove(self) -> None:
        if self._callback in self._registry:
            self._registry.remove(self._callback)

    @property
    def active(self) -> bool:
        return self._callback in self._registry


def _check_sync(callback: Any, name: str) -> None:
    """A coroutine function called from the receive path would return a coroutine that is never
    awaited: the callback would silently never run. Refuse it at registration."""
    if not callable(callback):
        raise TypeError(f"{name} needs a callable, not {type(callback).__name__}")
    # An instance whose __call__ is ``async def`` is a coroutine function too, in effect.
    call = type(callback).__call__ if not inspect.isroutine(callback) else None
    if inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(call):
        raise TypeError(
            f"{name} callbacks are called synchronously from the receive path; "
            "use feed.tops() (async for top in feed.tops(): ...) for async consumers"
        )


class Feed:
    """Live OKX books for many instruments.

    ``subscriptions``: instIds (with ``channel``) and/or ``(channel, instId)`` pairs.
    ``url``/``rest_url``: production by default; ``demo=True`` for demo trading; any
    OKX-compatible endpoint (e.g. ``okxbook.testing.LocalExchange``). ``transport``:
    ``"websockets"`` or ``"picows"``. ``resync``: ``"resubscribe"`` (default) or ``"rest"``.
    ``subscribe_timeout``/``login_timeout``: seconds to an ack (and book data) before a retry.
    ``ssl_context`` or ``ca_file`` (a PEM file): whom ``wss://``/``https://`` trust instead of
    the system's CAs, e.g. ``ca_file=ex.tls.ca_file`` for a ``LocalExchange(tls=True)``.
    ``stale_after``: seconds without a frame after which a live book's status is ``"stale"``
    (off by default: a quiet OKX book may legitimately send only a heartbeat a minute).
    ``latency_window``: seconds of history behind ``latency()`` (it covers 1x to 2x this).
    ``ping_after``/``pong_timeout``: the keep-alive. A connection that has received nothing for
    ``ping_after`` s (default 3) sends a text ``ping``; no ``pong`` within ``pong_timeout`` s
    (default 2) is the verdict "dead": that connection's books go ``resyncing`` at once and it
    reconnects. So a silent connection's books leave ``live`` within about 5 s, not the 30 s of
    OKX's 25 s ping; a quiet connection that answers its pings stays live.

        async with Feed(["BTC-USDT", "ETH-USDT-SWAP"]) as feed:
            await feed.wait_live()
            async for top in feed.tops():
                print(top.inst_id, top.bid, top.ask)
    """

    def __init__(
        self,
        subscriptions: Iterable[str | tuple[str, str]],
        *,
        channel: str = "books",
        url: str | None = None,
        rest_url: str | None = None,
        demo: bool = False,
        transport: str = "websockets",
        credentials: Credentials | None = None,
        max_per_connection: int = 25,
        resync: str = "resubscribe",
        verify_checksum: bool = True,
        recorder: Any = None,
        ping_after: float = BOOK_PING_AFTER,
        pong_timeout: float = BOOK_PONG_TIMEOUT,
        reconnect_delay: tuple[float, float] = (1.0, 60.0),
        resync_delay: tuple[float, float] = (1.0, 60.0),
        subscribe_timeout: float = 10.0,
        login_timeout: float = 10.0,
        stale_after: float | None = None,
        latency_window: float = 10.0,
        encoding: str = "json",
        ssl_context: ssl.SSLContext | None = None,
        ca_file: str | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}")
        if resync not in ("resubscribe", "rest"):
            raise ValueError("resync must be 'resubscribe' or 'rest'")
        # 0, negative or NaN would ping in a busy loop or judge every connection dead at once.
        for name, value in (("ping_after", ping_after), ("pong_timeout", pong_timeout)):
            if not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if ssl_context is not None and ca_file is not None:
            raise ValueError("give ssl_context or ca_file, not both")
        if ca_file is not None:
            ssl_context = ssl.create_default_context(cafile=ca_file)  # OSError if unreadable
        self.ssl_context = ssl_context
        self.keys = _normalise(subscriptions, channel)
        self.encoding = encoding
        sbe = check_sbe_options(encoding, self.keys, demo)
        self.url = url or (okx.PROD_SBE_WS_URL if sbe else DEMO_URL if demo else PROD_URL)
        self.rest_url = rest_url or PROD_REST_URL
        self.demo = demo
        self.transport_kind = transport
        self.credentials = credentials if credentials is not None else Credentials.from_env()
        if sbe and self.credentials is None:
            raise ValueError(
                "the SBE feed needs login: pass credentials or set OKX_API_KEY, OKX_SECRET_KEY "
                "and OKX_PASSPHRASE"
            )
        if any(k[0] in okx.LOGIN_CHANNELS for k in self.keys) and self.credentials is None:
            raise ValueError(
                "books-l2-tbt/books50-l2-tbt need login: pass credentials or set "
                "OKX_API_KEY, OKX_SECRET_KEY and OKX_PASSPHRASE"
            )
        self.max_per_connection = max_per_connection
        self.resync_mode = resync
        self.recorder = recorder
        self.ping_after = ping_after
        self.pong_timeout = pong_timeout
        self.reconnect_delay = reconnect_delay
        self.resync_delay = resync_delay
        self.verify_checksum = verify_checksum
        self.subs = {key: Subscription(key) for key in self.keys}
        # One Books per connection: a frame can only touch the books of the connection it came
        # on, so a misrouted frame never invalidates a book another connection keeps live (issue
        # 14 item 2). Consumers can hold the books from the start.
        self.groups = self._groups()
        self._books_of: dict[Key, Books] = {}
        self._group_books: list[Books] = []
        for group in self.groups:
            books = Books(verify_checksum=verify_checksum)
            self._group_books.append(books)
            for key in group:
                books.book(*key)
                self._books_of[key] = books
        self.connections: list[Connection] = []
        self.closing = False
        self.errors: list[SubscriptionError] = []
        # Unclaimed events (errors without id, unknown notices): the newest EVENTS_KEPT only.
        self.events: deque[Event] = deque(maxlen=EVENTS_KEPT)
        self.stats: Counter[str] = Counter()
        self.http: httpx.AsyncClient | None = None
        self._latency = FeedLatency(latency_window)
        # Every applied frame's consumers (feed/_hub.pyx, in C): these lists are the hub's own.
        self._hub = FeedHub(self._latency)
        self._hub.sbe = sbe
        self._streams: list[TopStream] = self._hub.streams
        self._top_callbacks: list[Callable[[Book, int], None]] = self._hub.top_callbacks
        self._book_callbacks: list[Callable[[Book, int], None]] = self._hub.book_callbacks
        self._depth_callbacks: list[Callable[[Book, int], None]] = self._hub.depth_callbacks
        self._status_callbacks: list[Callable[[str, str, BookStatus], None]] = []
        self._successors: dict[Connection, Connection] = {}
        self._listener = _Listener(self)
        self._deltas = DeltaHub(self, on_activate=self._deltas_activated)
        self._hub.deltas = self._deltas
        self._settings = ConnectionSettings(
            url=self.url,
            rest_url=self.rest_url,
            transport=transport,
            credentials=self.credentials,
            resync_mode=resync,
            ping_after=ping_after,
            pong_timeout=pong_timeout,
            reconnect_delay=reconnect_delay,
            resync_delay=resync_delay,
            subscribe_timeout=subscribe_timeout,
            login_timeout=login_timeout,
            stale_after=stale_after,
            recorder=recorder,
            stats=self.stats,
            sbe=sbe,
            ssl_context=ssl_context,
        )
        self._code_refresh: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.transport_kind == "picows":
            # A missing optional transport must fail here, not hang in a connection task that
            # dies unread (issue 9 item 3).
            try:
                importlib.import_module("picows")
            except ImportError as exc:
                raise ImportError(
                    "transport='picows' needs the picows package: pip install 'okxbook[picows]'"
                ) from exc
        self.http = httpx.AsyncClient(
            timeout=10.0, verify=self.ssl_context if self.ssl_context is not None else True
        )
        self._settings.http = self.http
        if self._settings.sbe:
            # SBE frames name instruments by instIdCode: the map first, then kept fresh.
            await refresh_inst_id_codes(self._settings, self._group_books)
            self._code_refresh = asyncio.get_running_loop().create_task(
                refresh_inst_id_codes(self._settings, self._group_books, forever=True)
            )
        for i, (group, books) in enumerate(zip(self.groups, self._group_books)):
            conn = Connection(
                self._listener,
                self._settings,
                f"okx-conn-{i}",
                {k: self.subs[k].pacing for k in group},
                books,
            )
            self.connections.append(conn)
            conn.start()

    # ------------------------------------------------------------------ changing subscriptions

    def _refuse_closed(self, what: str) -> None:
        """A closed feed receives nothing more: a stream or subscription asked of it would wait
        forever or do nothing, so it is refused at once."""
        if self.closing:
            raise RuntimeError(f"feed.{what}: the feed is closed (start a new Feed)")

    async def subscribe(
        self,
        subscriptions: Iterable[str | tuple[str, str]],
        *,
        channel: str = "books",
        timeout: float | None = None,
    ) -> None:
        """Add subscriptions while the feed runs (as in ``Feed(...)``: instIds with ``channel``
        and/or ``(channel, instId)`` pairs; ones already there are left alone). Each goes on a
        connection with room (or a new one), as at start. Returns once OKX has acked every new
        one (their books then sync as usual: ``wait_live``); raises the ``SubscriptionError`` of
        one OKX refused (the others stay), ``TimeoutError`` after ``timeout`` seconds. Before
        ``start()`` it only adds them; ``RuntimeError`` once the feed is closed."""
        self._refuse_closed("subscribe()")
        keys = [k for k in dict.fromkeys(_normalise(subscriptions, channel)) if k not in self.subs]
        if any(k[0] in okx.LOGIN_CHANNELS for k in keys) and self.credentials is None:
            raise ValueError("books-l2-tbt/books50-l2-tbt need login: the feed has no credentials")
        added = []
        for key in keys:
            sub = self.subs[key] = Subscription(key)
            self.keys.append(key)
            i = self._place(key)
            if self.http is not None and not self.closing:
                added.append((sub, await self._carry(i, key, sub)))
        if added:
            await asyncio.wait_for(self._acked(added), timeout)

    async def _acked(self, added: list[tuple[Subscription, Any]]) -> None:
        for sub, cs in added:
            await cs.acked.wait()
            if sub.error is not None:
                raise sub.error

    def _place(self, key: Key) -> int:
        """The index of the group (connection) ``key`` joins, as ``_groups`` spreads them."""
        for i, group in enumerate(self.groups):
            if i < len(self.connections) and self.connections[i].retired:
                continue  # gave up (EndpointError) or closed: never joined
            if len(group) < self.max_per_connection and not any(
                k[1] == key[1] and okx.l2_tbt_conflict(k[0], key[0]) for k in group
            ):
                break
        else:
            self.groups.append([])
            self._group_books.append(Books(verify_checksum=self.verify_checksum))
            i = len(self.groups) - 1
        self.groups[i].append(key)
        books = self._books_of[key] = self._group_books[i]
        books.book(*key)
        return i

    async def _carry(self, i: int, key: Key, sub: Subscription) -> Any:
        """Have connection ``i`` (opened now if new) carry ``key``; returns its ConnSub."""
        if i == len(self.connections):
            conn = Connection(
                self._listener, self._settings, f"okx-conn-{i}", {}, self._group_books[i]
            )
            self.connections.append(conn)
            conn.start()
        conn = self.connections[i]
        successor = self._successors.get(conn)
        if successor is not None:  # a 64008 switch is under way: the successor carries it too
            await successor.add(key, sub.pacing)
        return await conn.add(key, sub.pacing)

    async def unsubscribe(
        self,
        subscriptions: Iterable[str | tuple[str, str]],
        *,
        channel: str = "books",
    ) -> None:
        """Remove subscriptions while the feed runs. Each book is invalidated ("unsubscribed")
        and removed: ``book()``/``status()`` no longer know it, its status callbacks and
        ``tops()`` streams see it go ``invalid``. Returns once OKX has acked each unsubscribe;
        raises the ``SubscriptionError`` of one refused or unanswered (the book is gone all
        the same). ``KeyError`` for one that is not subscribed."""
        keys = list(dict.fromkeys(_normalise(subscriptions, channel)))
        for key in keys:
            if key not in self.subs:
                raise KeyError(key)
        error: SubscriptionError | None = None
        for key in keys:
            i = next(n for n, group in enumerate(self.groups) if key in group)
            book = self.book(*key)
            try:
                if i < len(self.connections):
                    conn = self.connections[i]
                    successor = self._successors.get(conn)
                    if successor is not None:
                        with contextlib.suppress(SubscriptionError):
                            await successor.remove(key)
                    await conn.remove(key)
            except SubscriptionError as exc:
                error = error or exc
            finally:
                # The book consumers hold (the connection has let go of it already).
                book.invalidate("unsubscribed")
                self._set_status(self.subs[key], "invalid", "unsubscribed", book)
                del self.subs[key]
                self.keys.remove(key)
                self.groups[i].remove(key)
                books = self._books_of.pop(key)
                if key in books:  # (a status callback's feed.book() may have asked for it)
                    books.remove(*key)
        if error is not None:
            raise error

    def _groups(self) -> list[list[tuple[str, str]]]:
        """Spread subscriptions over connections: at most ``max_per_connection`` each, and
        ``books-l2-tbt`` never beside ``books``/``books50-l2-tbt`` of the same instId (64004)."""
        groups: list[list[tuple[str, str]]] = []
        for key in self.keys:
            for group in groups:
                if len(group) < self.max_per_connection and not any(
                    k[1] == key[1] and okx.l2_tbt_conflict(k[0], key[0]) for k in group
                ):
                    group.append(key)
                    break
            else:
                groups.append([key])
        return groups

    async def close(self) -> None:
        self.closing = True
        if self._code_refresh is not None:
            self._code_refresh.cancel()
        for conn in [*self.connections, *self._successors.values()]:
            await conn.stop()
        for stream in list(self._streams):
            stream.close()
        self._deltas.close()
        if self.http is not None:
            await self.http.aclose()

    async def __aenter__(self) -> Feed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ reading

    def book(self, channel: str, inst_id: str) -> Book:
        """The book for one subscription (always the same object). Check ``status`` or
        ``book.is_valid`` before trusting it: an invalid book is empty."""
        if (channel, inst_id) not in self.subs:
            raise KeyError((channel, inst_id))
        return self._books_of[(channel, inst_id)].book(channel, inst_id)

    def sbe_latency(self, channel: str, inst_id: str) -> SbeLatency | None:
        """Deprecated (``DeprecationWarning``; to be removed): ``latency()`` has the same stages
        for every frame (``engine_to_gateway``, ``gateway_to_receive``). The SBE clocks of one
        book's last applied frame, or None before any SBE frame (and on the JSON feed)."""
        warnings.warn(
            "Feed.sbe_latency() is deprecated: feed.latency()['books'][f'{channel}:{inst_id}'] "
            "has the engine_to_gateway and gateway_to_receive stages of every frame",
            DeprecationWarning,
            stacklevel=2,
        )
        if (channel, inst_id) not in self.subs:
            raise KeyError((channel, inst_id))
        return self._latency.sbe_last((channel, inst_id))

    def status(self, channel: str, inst_id: str) -> BookStatus:
        return self.subs[(channel, inst_id)].status

    def statuses(self) -> dict[tuple[str, str], BookStatus]:
        return {key: sub.status for key, sub in self.subs.items()}

    def top(self, channel: str, inst_id: str) -> Top:
        sub = self.subs[(channel, inst_id)]
        return top_of(self.book(channel, inst_id), sub.status.state, time.time_ns())

    def tops(self, *keys: tuple[str, str] | str) -> TopStream:
        """A conflating stream of top-of-book readings for the given subscriptions (instIds or
        (channel, instId) pairs; all if none given). ``RuntimeError`` once the feed is closed
        (the stream would wait forever)."""
        self._refuse_closed("tops()")
        wanted = None
        if keys:
            wanted = [k if isinstance(k, tuple) else (self.keys[0][0], k) for k in keys]
            for k in wanted:
                if k not in self.subs:
                    raise KeyError(k)

        def state_of(key: Key) -> str:  # "invalid" once unsubscribed
            sub = self.subs.get(key)
            return sub.status.state if sub is not None else "invalid"

        stream = TopStream(wanted, state_of, on_close=self._stream_closed)
        self._streams.append(stream)
        return stream

    def _stream_closed(self, stream: TopStream) -> None:
        """``stream.close()`` removes it: closed streams cost nothing (issue 14 item 10)."""
        if stream in self._streams:
            self._streams.remove(stream)

    def on_top(self, callback: Callable[[Book, int], None]) -> CallbackHandle:
        """``callback(book, recv_ns)`` on every top-of-book change, called synchronously from the
        receive path: it must be a plain (not ``async``) function and quick. A coroutine function
        raises ``TypeError`` here: use ``tops()`` for async or slow consumers. Returns a handle:
        ``handle.remove()`` (or ``remove_callback(handle)``) stops further calls."""
        _check_sync(callback, "on_top")
        self._top_callbacks.append(callback)
        return CallbackHandle(self._top_callbacks, callback)

    def on_book(self, callback: Callable[[Book, int], None]) -> CallbackHandle:
        """``callback(book, recv_ns)`` after *every* frame the receive path applies to a book,
        also one that changed no level (an update that only moves seqId/ts, a heartbeat) and
        while the book is not live (check ``feed.status``): for mirrors that must carry every
        seqId, such as the shared-memory publisher. Synchronous, like ``on_top``; frames
        applied while seeding a book are not reported (its status turning live is). Costs
        nothing beyond the calls. Returns a handle whose ``remove()`` stops the calls."""
        _check_sync(callback, "on_book")
        self._book_callbacks.append(callback)
        return CallbackHandle(self._book_callbacks, callback)

    def on_depth(self, callback: Callable[[Book, int], None]) -> CallbackHandle:
        """``callback(book, recv_ns)`` after every applied frame that changed at least one level
        of a book (not only its top): the ``on_book`` frames that have delta rows. Registering
        one turns delta recording on (about +1 µs a frame, see README "Deltas"). Returns a
        handle whose ``remove()`` stops the calls."""
        _check_sync(callback, "on_depth")
        self._deltas.activate()
        self._depth_callbacks.append(callback)
        return CallbackHandle(self._depth_callbacks, callback)

    def latency(self) -> dict[str, Any]:
        """Per book and per connection, p50/p90/p99/max (µs) over the last ``latency_window``
        to twice that many seconds of each stage: exchange ts -> receive (``network``, with the
        clock offset in it), receive -> applied (``apply``), applied -> callbacks done
        (``callback``), exchange ts -> callbacks done (``total``); and ``clock_offset_ms``, the
        minimum of receive - ts (see ``okxbook.feed.latency``)."""
        return self._latency.report()

    def on_status(self, callback: Callable[[str, str, BookStatus], None]) -> CallbackHandle:
        """``callback(channel, inst_id, status)`` on every status change, called synchronously
        (a coroutine function raises ``TypeError``: use ``tops()``, whose readings carry the
        status, for async consumers). Returns a handle whose ``remove()`` stops further calls."""
        _check_sync(callback, "on_status")
        self._status_callbacks.append(callback)
        return CallbackHandle(self._status_callbacks, callback)

    def deltas(self, *keys: tuple[str, str] | str, maxsize: int = 10_000) -> DeltaStream:
        """A stream of every frame's level changes (``BookDeltas``) for the given subscriptions
        (all if none given), starting with a snapshot of each book that has one. At most
        ``maxsize`` frames wait; a book whose frames do not fit yields a ``DeltaOverflow`` (the
        seqIds it lost) and then a fresh snapshot: never a silent hole (``okxbook.feed.deltas``).
        ``RuntimeError`` once the feed is closed."""
        self._refuse_closed("deltas()")
        return self._deltas.stream(self._wanted(keys), maxsize)

    def on_deltas(
        self, callback: Callable[[BookDeltas], None], *, snapshot: bool = True
    ) -> CallbackHandle:
        """``callback(deltas)`` with every frame's changes (``BookDeltas``), synchronously from
        the receive path; ``deltas.rows`` is valid during the call only. With ``snapshot`` it is
        first called with a snapshot of each book that has one."""
        _check_sync(callback, "on_deltas")
        self._deltas.add_callback(callback, snapshot)
        return CallbackHandle(self._deltas._callbacks, callback)

    def _wanted(self, keys: tuple[tuple[str, str] | str, ...]) -> list[tuple[str, str]] | None:
        if not keys:
            return None
        wanted = [k if isinstance(k, tuple) else (self.keys[0][0], k) for k in keys]
        for k in wanted:
            if k not in self.subs:
                raise KeyError(k)
        return wanted

    def remove_callback(self, handle: CallbackHandle) -> None:
        """Stop the calls of a callback registered with ``on_top``/``on_status``/``on_book``/
        ``on_depth``/``on_deltas``."""
        handle.remove()

    async def wait_live(self, *keys: tuple[str, str], timeout: float | None = None) -> None:
        """Wait until the given (default: all) subscriptions are live. Raises the
        ``SubscriptionError`` of one that OKX refused."""
        subs = [self.subs[k] for k in keys] if keys else list(self.subs.values())

        async def one(sub: Subscription) -> None:
            while sub.status.state != "live":
                if sub.error is not None:
                    raise sub.error
                sub.live_event.clear()
                await sub.live_event.wait()

        await asyncio.wait_for(asyncio.gather(*(one(s) for s in subs)), timeout)

    # ------------------------------------------------------------------ reports from connections

    def _publish(self, key: Key, book: Book, recv_ns: int) -> None:
        """A top change the receive path did not report itself (the 64008 switch)."""
        self._hub.top(key, book, recv_ns)

    def _deltas_activated(self) -> None:
        """A delta consumer arrived: the hub drains the recorders after every frame from now on."""
        self._hub.deltas_active = True

    def _set_status(
        self, sub: Subscription, state: str, reason: str | None, book: Book | None = None
    ) -> None:
        if sub.status.state == state and sub.status.reason == reason:
            return
        self._deltas.drain()  # an invalidate before this change reaches delta consumers first
        sub.status = BookStatus(state, reason, time.time())
        if state == "live":
            sub.was_live = True
        sub.live_event.set()
        book = book if book is not None else self.book(*sub.key)
        recv_ns = time.time_ns()
        for stream in self._streams:
            if stream.wants(sub.key):
                stream.push(sub.key, book, recv_ns)
        for on_status in self._status_callbacks:
            try:
                on_status(sub.key[0], sub.key[1], sub.status)
            except Exception:
                log.exception("on_status callback failed")
        if state != "live":
            for on_top in self._top_callbacks:
                try:
                    on_top(book, recv_ns)
                except Exception:
                    log.exception("on_top callback failed")

    def _subscription_failed(self, sub: Subscription, code: str, msg: str) -> None:
        error = (
            EndpointError(sub.key[0], sub.key[1], self.url, msg)
            if code == CONNECT_FAILED
            else SubscriptionError(sub.key[0], sub.key[1], code, msg)
        )
        sub.error = error
        self.errors.append(error)
        # An endpoint that cannot work is said once (not once per book) and at INFO: wait_live
        # raises it and feed.errors has it, so its caller reports it (the CLI: one line).
        if not isinstance(error, EndpointError):
            log.error("%s", error)
        elif not any(isinstance(e, EndpointError) for e in self.errors[:-1]):
            log.info("%s", error)
        self.book(*sub.key).invalidate(str(error))
        self._set_status(sub, "invalid", f"{code} {msg}")

    def _event(self, event: Event) -> None:
        """An event no subscription claims (an error without id, an unknown notice ...)."""
        self.events.append(event)

    # ------------------------------------------------------------------ 64008: service upgrade

    def _upgrade_notice(self, old: Connection) -> None:
        """§6: OKX closes this connection in about 60 s. Open a successor with the same
        subscriptions syncing into books of its own; once every one of them is live and has caught
        up with the book consumers read, hand the state over and retire the old connection."""
        if old in self._successors or self.closing:
            return
        self.stats["upgrade_notices"] += 1
        log.warning("%s: 64008 service upgrade notice; opening a successor", old.name)
        pacing = old.pacing()
        successor = Connection(
            self._listener,
            self._settings,
            f"{old.name}-next",
            {k: pacing[k] for k in old.live_keys()},
            Books(verify_checksum=self.verify_checksum),
            staging=True,
        )
        self._successors[old] = successor
        successor.start()

    def _successor_progress(self, successor: Connection) -> None:
        old = next((o for o, s in self._successors.items() if s is successor), None)
        if old is None:
            return
        triples = []
        for key in successor.subscriptions():
            staged, main = successor.books.book(*key), self.book(*key)
            triples.append(
                (
                    successor.state(key),
                    Position(staged.is_valid, staged.ts_ms, staged.seq_id),
                    Position(main.is_valid, main.ts_ms, main.seq_id),
                )
            )
        if not successor_ready(triples):
            return  # still behind: consumers keep reading the old connection's books
        # Every staged book is live and caught up: switch in this very tick.
        keys = successor.subscriptions()
        for key in keys:
            self.book(*key).copy_from(successor.books.book(*key))
        self._deltas.drain()
        staged_frames = successor.take_staged_frames()
        if self.recorder is not None:
            # The recording continues with the successor's stream from its own snapshots, behind
            # a disconnect marker: a replay resets each book to exactly what consumers now hold.
            self.recorder.mark_disconnect(time.time_ns())
            for recv_ns, frame in staged_frames:
                self.recorder.record(recv_ns, frame)
        del self._successors[old]
        old.retire()
        successor.adopt(old.books)
        recv_ns = time.time_ns()
        for key in keys:
            sub = self.subs[key]
            self._set_status(sub, "live", None)
            self._publish(key, self.book(*key), recv_ns)
        self.connections[self.connections.index(old)] = successor
        self.stats["upgrade_switches"] += 1
        log.warning("%s: switched to %s", old.name, successor.name)
        asyncio.get_running_loop().create_task(old.stop())

    def _disconnected(self, conn: Connection) -> None:
        if conn in self._successors:
            # Closed for the upgrade before the successor caught up: it takes over alone.
            conn.retire()


class _Listener:
    """The ``ConnectionListener`` a feed gives its connections (kept off ``Feed``'s public API)."""

    __slots__ = ("feed",)

    def __init__(self, feed: Feed) -> None:
        self.feed = feed

    @property
    def hub(self) -> FeedHub:
        return self.feed._hub

    def book_status(self, key: Key, state: str, reason: str | None) -> None:
        self.feed._set_status(self.feed.subs[key], state, reason)

    def subscription_refused(self, key: Key, code: str, msg: str) -> None:
        self.feed._subscription_failed(self.feed.subs[key], code, msg)

    def unclaimed_event(self, event: Event) -> None:
        self.feed._event(event)

    def upgrade_notice(self, conn: Connection) -> None:
        self.feed._upgrade_notice(conn)

    def successor_progress(self, conn: Connection) -> None:
        self.feed._successor_progress(conn)

    def disconnected(self, conn: Connection) -> None:
        self.feed._disconnected(conn)
