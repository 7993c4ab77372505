"""The feeder's sync rules with no I/O: subscription states, resync pacing, the REST splice rule and
the 64008 switchover decision. No asyncio, no sockets, no clocks of its own (a clock is injected),
so every rule is unit-tested by calling it (tests/test_feed_sync_machine.py).

    IDLE --subscribe--> SUBSCRIBING --ack--> SYNCING --snapshot--> LIVE
                                               \\--update first--> SEEDING --splice--> LIVE
    LIVE/SYNCING/SEEDING --gap/checksum/malformed--> RESYNCING --due--> SUBSCRIBING | SEEDING
    any but FAILED --disconnect--> IDLE;   SUBSCRIBING --refused--> FAILED

``connection`` carries out what these say (sockets, tasks, sleeps). Sources: docs/protocol.md §4
(sequencing, REST seed), §6 (64008).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import orjson

__all__ = [
    "SEED_BUFFER_LIMIT",
    "Buffered",
    "Position",
    "ResyncPacing",
    "Splice",
    "SplicePlan",
    "State",
    "buffered_update",
    "current_numbering",
    "plan_splice",
    "public_state",
    "successor_ready",
    "transition",
]


class State(StrEnum):
    """One subscription's state on one connection. A ``StrEnum``: it compares equal to its name."""

    IDLE = "idle"  # not subscribed on this socket (before connect, after a drop)
    SUBSCRIBING = "subscribing"  # subscribe sent, no ack yet
    SYNCING = "syncing"  # acked, waiting for the WS snapshot
    SEEDING = "seeding"  # no WS snapshot came: updates buffered while REST seeds (§4)
    LIVE = "live"
    RESYNCING = "resyncing"  # book lost its chain: waiting out the backoff, then resubscribe/seed
    FAILED = "failed"  # refused by OKX for good: never retried


# event -> {from state: to state}; anything not listed leaves the state alone.
_TRANSITIONS: dict[str, dict[State, State]] = {
    "subscribe": {s: State.SUBSCRIBING for s in State if s is not State.FAILED},
    "ack": {State.SUBSCRIBING: State.SYNCING},
    "snapshot": {
        State.SUBSCRIBING: State.LIVE,
        State.SYNCING: State.LIVE,
        State.SEEDING: State.LIVE,
    },
    "update_first": {State.SYNCING: State.SEEDING},
    "integrity": {
        State.LIVE: State.RESYNCING,
        State.SYNCING: State.RESYNCING,
        State.SEEDING: State.RESYNCING,
        State.SUBSCRIBING: State.RESYNCING,
    },
    "malformed": {
        State.LIVE: State.RESYNCING,
        State.SYNCING: State.RESYNCING,
        State.SEEDING: State.RESYNCING,
    },
    "retryable": {s: State.RESYNCING for s in State if s is not State.FAILED},
    "seed": {State.RESYNCING: State.SEEDING},
    "refused": dict.fromkeys(State, State.FAILED),
    "disconnect": {s: State.IDLE for s in State if s is not State.FAILED},
}


def transition(state: State, event: str) -> State:
    """The state after ``event`` (one of ``_TRANSITIONS``' keys); unchanged where it does not
    apply (e.g. a snapshot for a subscription that is RESYNCING or FAILED)."""
    try:
        table = _TRANSITIONS[event]
    except KeyError:
        raise ValueError(f"unknown sync event {event!r}") from None
    return table.get(state, state)


def public_state(state: State, was_live: bool) -> str:
    """The ``BookStatus.state`` a consumer sees for a connection-side state."""
    if state is State.LIVE:
        return "live"
    if state is State.FAILED:
        return "invalid"
    if state is State.RESYNCING or was_live:
        return "resyncing"
    return "syncing"


# --------------------------------------------------------------------------- resync pacing


class ResyncPacing:
    """Per-subscription resync backoff: 0 for a first resync; doubling (``bounds[0]`` ..
    ``bounds[1]``) while resyncs keep coming within ``quiet`` seconds of each other, so a resync
    storm is paced, not amplified (480 requests/hour per connection, §6)."""

    __slots__ = ("_clock", "_delay", "_last", "quiet", "resyncs")

    def __init__(self, quiet: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet
        self.resyncs = 0
        self._clock = clock
        self._last: float | None = None
        self._delay = 0.0

    def next_delay(self, bounds: tuple[float, float]) -> float:
        now = self._clock()
        if self._last is None or now - self._last > self.quiet:
            self._delay = 0.0
        elif self._delay == 0.0:
            self._delay = bounds[0]
        else:
            self._delay = min(bounds[1], self._delay * 2)
        self._last = now
        self.resyncs += 1
        return self._delay


# --------------------------------------------------------------------------- REST splice (§4)

#: How many updates a REST seed may buffer; beyond it the seed starts over with a resync (REST
#: unreachable for far too long: an unbounded buffer would be a memory leak, issue 14 item 10).
SEED_BUFFER_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Buffered:
    """One update buffered during a REST seed."""

    prev: int
    seq: int
    raw: bytes


def buffered_update(raw: bytes) -> Buffered | None:
    """The (prevSeqId, seqId) of an update frame, or None if it has none (cold path only: the
    few frames that arrive before a REST seed is spliced)."""
    try:
        item = orjson.loads(raw)["data"][0]
        prev, seq = int(item["prevSeqId"]), int(item["seqId"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if prev < -1 or seq < 0:  # §4: seqIds are >= 0 (-1 only as a snapshot's prevSeqId)
        return None
    return Buffered(prev, seq, raw)


def current_numbering(buffer: Sequence[Buffered]) -> list[Buffered]:
    """The buffered updates from the last seqId reset on (§4: after maintenance ``seqId <
    prevSeqId``; what came before belongs to the old numbering)."""
    out: list[Buffered] = []
    for b in buffer:
        if b.seq < b.prev and out:
            out.clear()
        out.append(b)
    return out


@dataclass(frozen=True, slots=True)
class Splice:
    """Splice: the REST snapshot enters the book as a snapshot frame whose ``seqId`` is
    ``snapshot_seq`` (the ``prevSeqId`` of the first update kept), then ``updates`` in order."""

    snapshot_seq: int
    updates: tuple[bytes, ...]


class SplicePlan(StrEnum):
    WAIT = "wait"  # no update follows the snapshot yet: wait a little for one
    REFETCH = "refetch"  # the snapshot is older than the buffer (or of an older numbering)


def plan_splice(buffer: Sequence[Buffered], snap_seq: int, waited_out: bool) -> Splice | SplicePlan:
    """The §4 REST-seed rule, in one place. Drop buffered updates with ``seqId <= snap.seqId``;
    the first one kept must satisfy ``prevSeqId <= snap.seqId < seqId``, else the snapshot is
    older than the buffer: fetch again. An update chained exactly onto the snapshot (also a
    maintenance reset, whose new seqId is lower) splices at once. A snapshot no update follows
    is exactly current if the last buffered update ends on it; otherwise wait for one, and once
    ``waited_out``, fetch again."""
    buffered = current_numbering(buffer)
    exact = next((i for i, b in enumerate(buffered) if b.prev == snap_seq), None)
    if exact is not None:
        kept = buffered[exact:]
    else:
        kept = [b for b in buffered if b.seq > snap_seq]
    if kept:
        if kept[0].prev <= snap_seq:
            return Splice(kept[0].prev, tuple(b.raw for b in kept))
        return SplicePlan.REFETCH
    if buffered and buffered[-1].seq == snap_seq:
        return Splice(snap_seq, ())
    return SplicePlan.REFETCH if waited_out else SplicePlan.WAIT


# --------------------------------------------------------------------------- 64008 switchover (§6)


@dataclass(frozen=True, slots=True)
class Position:
    """Where one book is: whether it is valid, and its (exchange ts, seqId)."""

    valid: bool
    ts_ms: int
    seq_id: int


def successor_ready(books: Iterable[tuple[State, Position, Position]]) -> bool:
    """Whether a 64008 successor may take over: every one of its subscriptions is LIVE with a
    valid book that has caught up with the book consumers read (``(state, staged, main)`` per
    subscription). The exchange time is compared first: after a maintenance reset a seqId alone
    would make an older book look newer. A main book that is no longer valid (its connection
    already closed) is caught up with by any valid staged book."""
    for state, staged, main in books:
        if state is not State.LIVE or not staged.valid:
            return False
        if main.valid and (staged.ts_ms, staged.seq_id) < (main.ts_ms, main.seq_id):
            return False
    return True
