"""Helpers for the tests/test_feed_*.py files: drive the real feeder (``okxbook.feed.Feed``) against
``okxbook.testing.LocalExchange`` and judge it with an independent reference.

The reference never touches ``okxbook.Books``: it is a plain dict book (Decimal price keys, wire
strings kept) replayed from the JSON frames the exchange recorded as sent, with the protocol rules
written here from docs/protocol.md §2 (snapshot resets, size "0" deletes, else set;
image channels replace) and §4 (prevSeqId must equal the last seqId, else the book is unknown until
the next snapshot; a reset has seqId < prevSeqId == last). Two flavours:

- ``conn_reference``: what one connection's frames say each book must be (what a client on that
  socket can know);
- ``truth``: the exchange-side history of one book (the frames it generated, gap-swallowed frames
  put back into the chain), with the top of book at every seqId, to judge every reading a consumer
  was shown and the REST-seeded books.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from okxbook.feed import Feed
from okxbook.testing import (
    LocalExchange,
    okx_checksum,  # exchange side, independent of the core
)
from okxbook.testing.synthetic import SyntheticBook

IMAGE_CHANNELS = frozenset({"books5", "bbo-tbt"})
BOOK_KINDS = frozenset({"snapshot", "update", "heartbeat", "reset", "image", "capture"})
Key = tuple[str, str]

# Fast settings for every feed under test: no test waits on production-sized backoffs.
FAST = dict(reconnect_delay=(0.01, 0.05), resync_delay=(0.02, 0.2))


# ----------------------------------------------------------------------------- reference book


class RefBook:
    """One (channel, instId) book as a plain dict model of what was sent."""

    def __init__(self, channel: str, inst_id: str, verify_checksum: bool = True) -> None:
        self.channel = channel
        self.verify_checksum = verify_checksum
        self.inst_id = inst_id
        self.bids: dict[Decimal, tuple[str, str, str]] = {}
        self.asks: dict[Decimal, tuple[str, str, str]] = {}
        self.seq: int | None = None
        self.ts: str | None = None
        self.valid = False
        self.reason: str | None = "no snapshot yet"

    # -- reading
    def bid_levels(self) -> list[tuple[str, str, int]]:
        return [(p, s, int(c)) for _, (p, s, c) in sorted(self.bids.items(), reverse=True)]

    def ask_levels(self) -> list[tuple[str, str, int]]:
        return [(p, s, int(c)) for _, (p, s, c) in sorted(self.asks.items())]

    def top(self) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
        b = max(self.bids) if self.bids else None
        a = min(self.asks) if self.asks else None
        return (
            self.bids[b][:2] if b is not None else None,
            self.asks[a][:2] if a is not None else None,
        )

    # -- writing
    def _set(self, side: dict[Decimal, tuple[str, str, str]], rows: list[list[str]]) -> None:
        for row in rows:
            px, sz, count = row[0], row[1], row[3]
            if Decimal(sz) == 0:
                side.pop(Decimal(px), None)
            else:
                side[Decimal(px)] = (px, sz, count)

    def _replace(self, item: dict[str, Any]) -> None:
        self.bids.clear()
        self.asks.clear()
        self._set(self.bids, item.get("bids", []))
        self._set(self.asks, item.get("asks", []))

    def apply(self, msg: dict[str, Any]) -> None:
        """Apply one decoded push (one data item: OKX book channels send exactly one)."""
        item = msg["data"][0]
        seq = int(item["seqId"]) if "seqId" in item else None
        if self.channel in IMAGE_CHANNELS or "action" not in msg:
            self._replace(item)
            self.seq, self.ts, self.valid, self.reason = seq, item.get("ts"), True, None
            return
        prev = int(item["prevSeqId"])
        if msg["action"] == "snapshot" or prev == -1:
            self._replace(item)
            self.valid, self.reason = True, None
        elif not self.valid:
            return  # unknown until the next snapshot
        elif prev != self.seq:
            self.valid, self.reason = False, f"gap: prevSeqId {prev} after seqId {self.seq}"
            return
        else:
            self._set(self.bids, item.get("bids", []))
            self._set(self.asks, item.get("asks", []))
        self.seq, self.ts = seq, item.get("ts")
        checksum = item.get("checksum")
        if checksum and self.verify_checksum:  # §3: only a non-zero checksum is checked
            if okx_checksum(self.bid_levels_raw(), self.ask_levels_raw()) != checksum:
                self.valid, self.reason = False, "checksum mismatch"

    def bid_levels_raw(self) -> list[tuple[str, str, str]]:
        return [v for _, v in sorted(self.bids.items(), reverse=True)]

    def ask_levels_raw(self) -> list[tuple[str, str, str]]:
        return [v for _, v in sorted(self.asks.items())]

    def __repr__(self) -> str:
        return (
            f"RefBook({self.channel}/{self.inst_id} seq={self.seq} valid={self.valid} "
            f"{len(self.bids)}x{len(self.asks)})"
        )


def _decode(data: bytes) -> dict[str, Any] | None:
    try:
        msg = json.loads(data)
    except ValueError:
        return None
    if not isinstance(msg, dict) or "event" in msg or not isinstance(msg.get("arg"), dict):
        return None
    data_items = msg.get("data")
    if not isinstance(data_items, list) or len(data_items) != 1:
        return None
    return msg


def replay(frames: Iterable[Any]) -> dict[Key, RefBook]:
    """Replay frames (``Sent`` records or raw bytes) in order into one RefBook per book."""
    books: dict[Key, RefBook] = {}
    for f in frames:
        if hasattr(f, "kind"):
            if f.kind not in BOOK_KINDS:
                continue
            data = f.data
        else:
            data = f
        msg = _decode(data)
        if msg is None:
            continue
        key = (msg["arg"]["channel"], msg["arg"]["instId"])
        book = books.get(key)
        if book is None:
            book = books[key] = RefBook(*key)
        book.apply(msg)
    return books


def conn_reference(ex: LocalExchange, conn_id: str) -> dict[Key, RefBook]:
    """What the frames sent on one connection say every book on it must be."""
    return replay(ex.sent(conn_id))


def current_conn(ex: LocalExchange, key: Key) -> str:
    """The one live connection subscribed to ``key``."""
    subs = ex.subscribers(*key)
    assert len(subs) == 1, f"{key} subscribed on {subs}"
    return subs[0]


def reference_book(ex: LocalExchange, key: Key) -> RefBook:
    return conn_reference(ex, current_conn(ex, key))[key]


def sent_seq_ids(ex: LocalExchange, key: Key) -> set[int]:
    """Every seqId the server sent for ``key`` on any connection."""
    out: set[int] = set()
    for conn_id in ex.all_connections:
        for s in ex.sent(conn_id, *key):
            if s.kind in BOOK_KINDS:
                msg = _decode(s.data)
                if msg is not None and "seqId" in msg["data"][0]:
                    out.add(int(msg["data"][0]["seqId"]))
    return out


@dataclass
class Truth:
    """The exchange-side history of one book."""

    book: RefBook
    tops: dict[int, set[tuple[Any, Any]]] = field(default_factory=dict)  # seqId -> tops
    ts: dict[int, set[str]] = field(default_factory=dict)

    def _record(self) -> None:
        assert self.book.seq is not None
        bid, ask = self.book.top()
        self.tops.setdefault(self.book.seq, set()).add((bid, ask))
        self.ts.setdefault(self.book.seq, set()).add(self.book.ts or "")


def initial_snapshot(ex: LocalExchange, channel: str, inst_id: str) -> bytes:
    """The snapshot the exchange's book had before its first push (books are a pure function of
    seed, channel and instId): the starting point when it sent none (``no_snapshot``)."""
    return SyntheticBook(inst_id, channel, seed=ex.seed, checksum=ex.checksum).snapshot_frame()


def truth(ex: LocalExchange, key: Key, *, initial: bytes | None = None) -> Truth:
    """Replay every frame generated for ``key`` (per-connection snapshots included), putting the
    frames ``inject_gap`` swallowed back where they chain, into the exchange's own history."""
    channel, inst_id = key
    log = [s.data for s in ex.sent_frames(channel, inst_id)]
    skipped: dict[int, list[dict[str, Any]]] = {}
    for raw in ex.skipped_frames(channel, inst_id):
        msg = json.loads(raw)
        if "prevSeqId" in msg["data"][0]:
            skipped.setdefault(int(msg["data"][0]["prevSeqId"]), []).append(msg)
    t = Truth(RefBook(channel, inst_id, verify_checksum=False))  # corrupted checksums only lie
    if initial is not None:
        t.book.apply(json.loads(initial))
        t._record()
    for raw in log:
        msg = json.loads(raw)
        item = msg["data"][0]
        if "action" in msg and msg["action"] != "snapshot" and t.book.valid:
            while int(item["prevSeqId"]) != t.book.seq and skipped.get(t.book.seq):
                t.book.apply(skipped[t.book.seq].pop(0))
                t._record()
        if msg.get("action") == "snapshot" and t.book.valid:
            # A per-connection snapshot is the current state: it must agree with the chain.
            before = (t.book.bid_levels(), t.book.ask_levels(), t.book.seq)
            t.book.apply(msg)
            assert before == (t.book.bid_levels(), t.book.ask_levels(), t.book.seq), (
                f"{key}: snapshot disagrees with the replayed chain (helper bug?)"
            )
        else:
            t.book.apply(msg)
        assert t.book.valid, f"{key}: truth chain broken at {item.get('seqId')}: {t.book.reason}"
        t._record()
    return t


# ----------------------------------------------------------------------------- comparisons


def assert_book_equals(book: Any, ref: RefBook, *, what: str = "") -> None:
    """The feeder's book equals the reference level by level, strings and order counts included."""
    label = f"{ref.channel}/{ref.inst_id}{' ' + what if what else ''}"
    assert ref.valid, f"{label}: reference is not valid ({ref.reason})"
    assert book.is_valid, f"{label}: feeder book invalid ({book.invalid_reason})"
    assert book.seq_id == ref.seq, f"{label}: seqId {book.seq_id} != reference {ref.seq}"
    got_b, want_b = book.bid_levels(), ref.bid_levels()
    got_a, want_a = book.ask_levels(), ref.ask_levels()
    assert len(got_b) == len(want_b), f"{label}: {len(got_b)} bids != {len(want_b)}"
    assert len(got_a) == len(want_a), f"{label}: {len(got_a)} asks != {len(want_a)}"
    for i, (g, w) in enumerate(zip(got_b, want_b)):
        assert tuple(g) == w, f"{label}: bid level {i}: {g} != {w}"
    for i, (g, w) in enumerate(zip(got_a, want_a)):
        assert tuple(g) == w, f"{label}: ask level {i}: {g} != {w}"


def assert_matches_exchange(
    feed: Feed,
    ex: LocalExchange,
    keys: Iterable[Key] | None = None,
    *,
    initial: dict[Key, bytes] | None = None,
    per_connection: bool = True,
) -> None:
    """Every given (default: all) book of the feed is live and equal to what the frames on its
    connection say (``per_connection``) and to the exchange's own history."""
    for key in keys if keys is not None else feed.keys:
        assert feed.status(*key).state == "live", f"{key}: {feed.status(*key)}"
        book = feed.book(*key)
        if per_connection:
            assert_book_equals(book, reference_book(ex, key), what="(connection replay)")
        t = truth(ex, key, initial=(initial or {}).get(key))
        assert_book_equals(book, t.book, what="(exchange history)")
        # and the helper agrees with the exchange's own published state
        bids, asks = ex.book(*key).levels()
        assert t.book.bid_levels() == [(p, s, int(c)) for p, s, c in bids]
        assert t.book.ask_levels() == [(p, s, int(c)) for p, s, c in asks]


# ----------------------------------------------------------------------------- observing the feed


@dataclass
class Obs:
    kind: str  # "top" | "status"
    key: Key
    state: str
    seq: int | None = None
    bid: Any = None
    ask: Any = None
    valid: bool | None = None
    reason: str | None = None
    t: float = 0.0


class Observer:
    """Registers ``on_top`` and ``on_status`` on a feed and records every call (cheaply, in the
    receive path); ``check_*`` judge the record afterwards against what the exchange sent."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.events: list[Obs] = []
        feed.on_top(self._on_top)
        feed.on_status(self._on_status)

    def _on_top(self, book: Any, recv_ns: int) -> None:
        key = (book.channel, book.inst_id)
        state = self.feed.status(*key).state
        self.events.append(
            Obs(
                "top",
                key,
                state,
                book.seq_id,
                book.best_bid,
                book.best_ask,
                book.is_valid,
                t=time.monotonic(),
            )
        )

    def _on_status(self, channel: str, inst_id: str, status: Any) -> None:
        book = self.feed.book(channel, inst_id)
        self.events.append(
            Obs(
                "status",
                (channel, inst_id),
                status.state,
                book.seq_id,
                valid=book.is_valid,
                reason=status.reason,
                t=time.monotonic(),
            )
        )

    def mark(self) -> int:
        return len(self.events)

    def states(self, key: Key, since: int = 0) -> list[str]:
        return [e.state for e in self.events[since:] if e.kind == "status" and e.key == key]

    def tops(self, key: Key, since: int = 0) -> list[Obs]:
        return [e for e in self.events[since:] if e.kind == "top" and e.key == key]

    def live_tops(self, key: Key, since: int = 0) -> list[Obs]:
        return [e for e in self.tops(key, since) if e.state == "live"]

    def check_no_stale(
        self,
        ex: LocalExchange,
        keys: Iterable[Key] | None = None,
        *,
        initial: dict[Key, bytes] | None = None,
    ) -> int:
        """Every reading shown while "live" was of a valid book, at a seqId the server sent for
        that book, with the top of book the exchange had at that seqId. Returns how many."""
        checked = 0
        for key in keys if keys is not None else self.feed.keys:
            seqs = sent_seq_ids(ex, key)
            t = truth(ex, key, initial=(initial or {}).get(key))
            for e in self.live_tops(key):
                assert e.valid, f"{key}: reported live while the book was invalid: {e}"
                assert e.seq in seqs, f"{key}: live at seqId {e.seq} never sent: {e}"
                assert (e.bid, e.ask) in t.tops.get(e.seq, ()), (
                    f"{key}: live top {e.bid}/{e.ask} at seqId {e.seq} is not the exchange's "
                    f"{t.tops.get(e.seq)}"
                )
                checked += 1
            for e in self.events:
                if e.kind == "status" and e.key == key and e.state == "live":
                    assert e.valid, f"{key}: status live with an invalid book: {e}"
        return checked

    def assert_resynced(self, key: Key, since: int) -> None:
        """After a fault (index ``since``): the first status change is "resyncing", the last
        "live", and nothing was shown live in between from an invalid book."""
        states = self.states(key, since)
        assert states, f"{key}: no status change after the fault"
        assert states[0] == "resyncing", f"{key}: {states}"
        assert states[-1] == "live", f"{key}: {states}"

    def assert_untouched(self, keys: Iterable[Key], since: int) -> None:
        """No status change and no non-live reading for these keys since ``since``."""
        for key in keys:
            assert self.states(key, since) == [], f"{key}: {self.states(key, since)}"
            bad = [e for e in self.tops(key, since) if e.state != "live" or not e.valid]
            assert not bad, f"{key}: {bad}"


class ValidityWatch:
    """Samples ``book.is_valid`` of some books every millisecond in a background task."""

    def __init__(self, feed: Feed, keys: Iterable[Key]) -> None:
        self.books = {k: feed.book(*k) for k in keys}
        self.invalid_seen: list[Key] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            for k, b in self.books.items():
                if not b.is_valid:
                    self.invalid_seen.append(k)
            await asyncio.sleep(0.001)

    def __enter__(self) -> ValidityWatch:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


# ----------------------------------------------------------------------------- waiting


async def wait_for(
    pred: Callable[[], bool],
    timeout: float = 5.0,
    what: str | Callable[[], str] = "",
    interval: float = 0.003,
) -> None:
    """Poll ``pred`` until true; ``what`` (or a callable giving it) describes it on timeout."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {text or pred}")
        await asyncio.sleep(interval)


def caught_up(feed: Feed, ex: LocalExchange, keys: Iterable[Key] | None = None) -> bool:
    """Every book live and at the exchange's current seqId."""
    for key in keys if keys is not None else feed.keys:
        if feed.status(*key).state != "live" or not feed.book(*key).is_valid:
            return False
        if feed.book(*key).seq_id != ex.book(*key).seq_id:
            return False
    return True


async def settle(
    feed: Feed, ex: LocalExchange, keys: Iterable[Key] | None = None, timeout: float = 5.0
) -> None:
    """Wait for a quiescent point: every book live at the exchange's seqId, then a few ticks."""
    keys = list(keys) if keys is not None else list(feed.keys)
    await wait_for(
        lambda: caught_up(feed, ex, keys),
        timeout,
        f"books caught up: { {k: (feed.status(*k).state, feed.book(*k).seq_id, ex.book(*k).seq_id) for k in keys} }",
    )
    for _ in range(3):
        await asyncio.sleep(0)


async def step_until(
    ex: LocalExchange,
    pred: Callable[[], bool],
    timeout: float = 5.0,
    what: str = "",
    pause: float = 0.01,
    **step_kw: Any,
) -> int:
    """Push one round at a time until ``pred()``; returns the rounds pushed."""
    deadline = time.monotonic() + timeout
    rounds = 0
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s stepping until {what or pred}")
        await ex.step(1, **step_kw)
        rounds += 1
        await asyncio.sleep(pause)
    return rounds


# ----------------------------------------------------------------------------- requests


def requests(
    ex: LocalExchange, conn_id: str, op: str | None = None, key: Key | None = None
) -> list[dict[str, Any]]:
    """The JSON requests a connection received (text pings left out), optionally one op/book."""
    out = []
    for raw in ex.conn(conn_id).received:
        if raw == "ping":
            continue
        try:
            req = json.loads(raw)
        except ValueError:
            continue
        if op is not None and req.get("op") != op:
            continue
        if key is not None and not any(
            isinstance(a, dict) and (a.get("channel"), a.get("instId")) == key
            for a in req.get("args") or ()
        ):
            continue
        out.append(req)
    return out


def sub_counts(ex: LocalExchange, key: Key) -> tuple[int, int]:
    """(subscribe, unsubscribe) requests for ``key`` over every connection ever opened."""
    subs = sum(len(requests(ex, c, "subscribe", key)) for c in ex.all_connections)
    unsubs = sum(len(requests(ex, c, "unsubscribe", key)) for c in ex.all_connections)
    return subs, unsubs


# ----------------------------------------------------------------------------- harness


@dataclass
class Harness:
    ex: LocalExchange
    feed: Feed
    obs: Observer


@contextlib.asynccontextmanager
async def harness(
    subscriptions: Iterable[Any],
    *,
    exchange: dict[str, Any] | None = None,
    wait_live: bool = True,
    **feed_kw: Any,
):
    """A LocalExchange (``auto=False`` unless told) and a started Feed on it with an Observer."""
    ex_kw = {"auto": False, **(exchange or {})}
    async with LocalExchange(**ex_kw) as ex:
        kw = {**FAST, **feed_kw}
        feed = Feed(list(subscriptions), url=ex.ws_url, rest_url=ex.rest_url, **kw)
        obs = Observer(feed)
        async with feed:
            if wait_live:
                await feed.wait_live(timeout=5.0)
            yield Harness(ex, feed, obs)


def run(main: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """``asyncio.run`` with an overall deadline (pytest-asyncio is not installed)."""

    async def guarded() -> Any:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(guarded())


@contextlib.contextmanager
def exchange_in_a_thread(**options):
    """A LocalExchange on its own event loop in a thread, for a CLI run in this one."""
    ready = threading.Event()
    box = {}

    def serve():
        async def run():
            async with LocalExchange(**options) as ex:
                box["ex"], box["stop"] = ex, asyncio.Event()
                box["loop"] = asyncio.get_running_loop()
                ready.set()
                await box["stop"].wait()

        asyncio.run(run())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield box["ex"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)
