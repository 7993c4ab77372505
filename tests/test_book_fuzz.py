"""Seeded mutation fuzzing of parse + apply (after websockets' fuzzing/fuzz_websocket_parser.py):
arbitrary bytes either apply, or raise one of okxbook's documented errors. A ``FrameError`` leaves
every book exactly as it was; a ``SequenceError``/``ChecksumError`` leaves that book invalid (and
empty) and the others untouched. Nothing else may escape, and the process never crashes."""

from __future__ import annotations

import random

from bad_frames import mutate
from conftest import CF_BOOKS_0513 as REAL
from conftest import books_state

import okxbook
from okxbook import BookError, ChecksumError, FrameError, SequenceError
from okxbook.capture import iter_frames


def check(books: okxbook.Books, frame: bytes, before: dict | None = None) -> str:
    """Apply ``frame``; ``before``: the books' state, if the caller knows it already."""
    before = books_state(books) if before is None else before
    names_before = {(b.channel, b.inst_id) for b in books}
    try:
        books.apply(frame)
    except FrameError:
        assert books_state(books) == before, f"FrameError changed a book: {frame[:200]!r}"
        return "frame_error"
    except (SequenceError, ChecksumError) as exc:
        book = books[exc.channel, exc.inst_id]
        assert not book.is_valid and book.n_bids == 0 and book.n_asks == 0
        key = (exc.channel, exc.inst_id)
        others = {k: v for k, v in books_state(books).items() if k != key}
        assert others == {k: v for k, v in before.items() if k != key}
        return type(exc).__name__
    except BookError as exc:
        raise AssertionError(
            f"a BookError that is neither FrameError nor an integrity error: {type(exc)}"
        ) from exc
    assert {(b.channel, b.inst_id) for b in books} >= names_before
    return "applied"


def inst_of(frame: bytes) -> bytes:
    start = frame.index(b'"instId":"') + 10
    return frame[start : frame.index(b'"', start)]


def test_mutated_synthetic_frames_only_raise_documented_errors_and_never_corrupt_a_book(
    synthetic_10x5k,
):
    lines = synthetic_10x5k.frames
    snapshots = [f for f in lines if b'"snapshot"' in f]
    updates = [f for f in lines if b'"update"' in f]
    rng = random.Random(20261125)
    outcomes: dict[str, int] = {}
    start = okxbook.Books()
    for snap in snapshots[:3]:
        start.apply(snap)
    start_state = books_state(start)  # every trial starts from these same three books
    next_update = {
        inst_of(s): next(u for u in updates if inst_of(u) == inst_of(s)) for s in snapshots[:3]
    }
    for trial in range(1500):
        books = okxbook.Books()
        for snap in snapshots[:3]:
            books.apply(snap)
        # the mutated frame is a snapshot, or the update that would come next for its book
        base = (
            rng.choice(snapshots[:3])
            if trial % 5 == 0
            else next_update[inst_of(snapshots[trial % 3])]
        )
        outcome = check(books, mutate(base, rng), start_state)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # the mutator is effective: all three kinds of outcome happen
    assert outcomes.get("frame_error", 0) > 300
    assert outcomes.get("ChecksumError", 0) + outcomes.get("SequenceError", 0) > 20
    assert outcomes.get("applied", 0) > 0


def test_mutated_real_capture_frames_keep_replaying_with_documented_errors_only():
    """Every real frame (books, trades, tickers, events) mutated three ways, between the real
    frames of the capture, so mutations also hit live books mid-stream."""
    rng = random.Random(7)
    books = okxbook.Books()
    outcomes: dict[str, int] = {}
    for captured in iter_frames(REAL):
        for _ in range(3):
            outcome = check(books, mutate(captured.frame, rng))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        try:
            books.apply(captured.frame)  # the real stream goes on
        except (okxbook.UnknownChannelError, okxbook.MissingSnapshotError):
            pass
    assert outcomes.get("frame_error", 0) > 500 and outcomes.get("ChecksumError", 0) > 0
