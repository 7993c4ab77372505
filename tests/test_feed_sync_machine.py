"""okxbook.feed.sync called directly (no sockets, no event loop): every state transition, the
resync pacing, the §4 REST splice rule and the 64008 switchover decision (docs/protocol.md §4,
§6). And the feed's modules form no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import orjson
import pytest

from okxbook.feed.sync import (
    Buffered,
    Position,
    ResyncPacing,
    Splice,
    SplicePlan,
    State,
    buffered_update,
    current_numbering,
    plan_splice,
    public_state,
    successor_ready,
    transition,
)

S = State


@pytest.mark.parametrize(
    "state,event,after",
    [
        (S.IDLE, "subscribe", S.SUBSCRIBING),
        (S.RESYNCING, "subscribe", S.SUBSCRIBING),
        (S.LIVE, "subscribe", S.SUBSCRIBING),
        (S.FAILED, "subscribe", S.FAILED),  # a refused subscription is never retried
        (S.SUBSCRIBING, "ack", S.SYNCING),
        (S.LIVE, "ack", S.LIVE),  # a late duplicate ack changes nothing
        (S.SYNCING, "snapshot", S.LIVE),
        (S.SUBSCRIBING, "snapshot", S.LIVE),
        (S.SEEDING, "snapshot", S.LIVE),
        (S.RESYNCING, "snapshot", S.RESYNCING),  # in flight from before the resync
        (S.FAILED, "snapshot", S.FAILED),
        (S.IDLE, "snapshot", S.IDLE),
        (S.SYNCING, "update_first", S.SEEDING),
        (S.SUBSCRIBING, "update_first", S.SUBSCRIBING),  # before the ack: an older stream's
        (S.LIVE, "integrity", S.RESYNCING),
        (S.SEEDING, "integrity", S.RESYNCING),
        (S.FAILED, "integrity", S.FAILED),
        (S.LIVE, "malformed", S.RESYNCING),
        (S.IDLE, "malformed", S.IDLE),
        (S.SUBSCRIBING, "retryable", S.RESYNCING),
        (S.FAILED, "retryable", S.FAILED),
        (S.RESYNCING, "seed", S.SEEDING),
        (S.LIVE, "seed", S.LIVE),
        (S.SUBSCRIBING, "refused", S.FAILED),
        (S.LIVE, "disconnect", S.IDLE),
        (S.SEEDING, "disconnect", S.IDLE),
        (S.FAILED, "disconnect", S.FAILED),
    ],
)
def test_transition(state, event, after):
    assert transition(state, event) is after


def test_unknown_event_is_an_error_not_a_silent_no_op():
    with pytest.raises(ValueError, match="nope"):
        transition(S.LIVE, "nope")


def test_states_compare_equal_to_their_names():
    assert S.SYNCING == "syncing" and str(S.LIVE) == "live"


@pytest.mark.parametrize(
    "state,was_live,public",
    [
        (S.LIVE, True, "live"),
        (S.FAILED, False, "invalid"),
        (S.RESYNCING, False, "resyncing"),
        (S.IDLE, True, "resyncing"),
        (S.IDLE, False, "syncing"),
        (S.SUBSCRIBING, False, "syncing"),
        (S.SEEDING, False, "syncing"),
    ],
)
def test_public_state(state, was_live, public):
    assert public_state(state, was_live) == public


def test_resync_pacing_doubles_within_quiet_period_and_resets_after_it():
    now = [1000.0]
    p = ResyncPacing(quiet=60.0, clock=lambda: now[0])
    delays = []
    for _ in range(6):
        delays.append(p.next_delay((0.5, 3.0)))
        now[0] += 1.0
    assert delays == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]
    now[0] += 61.0
    assert p.next_delay((0.5, 3.0)) == 0.0
    assert p.resyncs == 7


def _upd(prev: int, seq: int) -> Buffered:
    return Buffered(prev, seq, f"{prev}->{seq}".encode())


def test_splice_drops_updates_the_snapshot_already_contains():
    buf = [_upd(10, 12), _upd(12, 15), _upd(15, 20)]
    plan = plan_splice(buf, 13, waited_out=False)
    # prevSeqId 12 <= 13 < 15: the first kept one; the snapshot enters at seqId 12
    assert plan == Splice(12, (b"12->15", b"15->20"))


def test_splice_onto_an_update_chained_exactly_to_the_snapshot():
    assert plan_splice([_upd(10, 12), _upd(12, 15)], 12, False) == Splice(12, (b"12->15",))


def test_snapshot_older_than_the_buffer_is_fetched_again():
    assert plan_splice([_upd(20, 25), _upd(25, 30)], 15, False) is SplicePlan.REFETCH


def test_snapshot_exactly_current_splices_with_no_update():
    assert plan_splice([_upd(10, 12), _upd(12, 15)], 15, False) == Splice(15, ())


def test_snapshot_with_no_following_update_waits_then_refetches():
    assert plan_splice([], 15, False) is SplicePlan.WAIT
    assert plan_splice([], 15, True) is SplicePlan.REFETCH


def test_reset_in_the_buffer_drops_the_old_numbering():
    buf = [_upd(10, 12), _upd(12, 15), _upd(15, 3), _upd(3, 5)]  # 15 -> 3: maintenance reset
    assert current_numbering(buf) == buf[2:]
    # a snapshot of the old numbering (seqId 12) no current update follows: wait, then refetch
    assert plan_splice(buf, 12, False) is SplicePlan.WAIT
    assert plan_splice(buf, 12, True) is SplicePlan.REFETCH
    # a snapshot taken right before the reset chains onto it exactly
    assert plan_splice(buf, 15, False) == Splice(15, (b"15->3", b"3->5"))
    # one after it splices by the normal rule
    assert plan_splice(buf, 3, False) == Splice(3, (b"3->5",))


def test_buffered_update_reads_seqids_and_refuses_what_has_none():
    frame = orjson.dumps({"arg": {}, "data": [{"prevSeqId": 4, "seqId": 9}]})
    assert buffered_update(frame) == Buffered(4, 9, frame)
    assert buffered_update(b"not json") is None
    assert buffered_update(b'{"data":[{"seqId":1}]}') is None
    assert buffered_update(b'{"data":[{"prevSeqId":4,"seqId":-5}]}') is None  # §4: >= 0


def _pos(valid=True, ts=100, seq=50):
    return Position(valid, ts, seq)


def test_successor_ready_only_when_every_book_is_live_valid_and_caught_up():
    assert successor_ready([(S.LIVE, _pos(), _pos())])
    assert successor_ready([(S.LIVE, _pos(ts=101, seq=1), _pos())])  # newer despite lower seqId
    assert not successor_ready([(S.LIVE, _pos(seq=49), _pos())])  # behind
    assert not successor_ready([(S.SYNCING, _pos(), _pos())])
    assert not successor_ready([(S.LIVE, _pos(valid=False), _pos())])
    assert not successor_ready([(S.LIVE, _pos(), _pos()), (S.SEEDING, _pos(), _pos())])
    # the old connection is gone (its book invalid): any valid live staged book takes over
    assert successor_ready([(S.LIVE, _pos(ts=1, seq=1), _pos(valid=False))])


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            out.add(node.module)
    return out


def test_feed_modules_have_no_import_cycle_and_sync_does_no_io():
    root = Path(__file__).resolve().parents[1] / "okxbook" / "feed"
    graph = {p.stem: _imports(p) for p in root.glob("*.py")}
    assert "feed" not in graph["connection"]  # not even under TYPE_CHECKING

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for dep in graph.get(start, ()):
            if dep == target or (dep not in seen and reaches(dep, target, seen | {dep})):
                return True
        return False

    cycles = [m for m in graph if reaches(m, m, set())]
    assert cycles == []
    tree = ast.parse((root / "sync.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"asyncio", "socket", "httpx", "websockets", "picows"}, imported
