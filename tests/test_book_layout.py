"""The scanner reads a push laid out exactly as OKX writes it by matching its structure as fixed byte
strings (``_wire.scan_okx_layout``), and any other frame member by member (``scan_frame``'s general
reader). The two must be indistinguishable: for every frame, the same books afterwards, or the same
error with the same reason at the same byte.

A frame is sent to the general reader by a leading space (the fixed strings start at byte 0), so
each frame below is applied twice, as is and with the space, to books in the same state."""

from __future__ import annotations

import random

from bad_frames import mutate
from conftest import CF_BOOKS_0513, FRAMES_DIR, books_state

import okxbook
from okxbook import BookError, FrameError
from okxbook.capture import iter_frames
from okxbook.testing import SyntheticBook


def outcome(books: okxbook.Books, frame: bytes, shift: int) -> tuple:
    try:
        books.apply(frame)
    except FrameError as exc:
        offset = max(exc.offset - shift, 0) if exc.offset >= 0 else -1
        return ("FrameError", type(exc).__name__, exc.reason, offset)
    except BookError as exc:
        return (type(exc).__name__, str(exc))
    return ("applied", books_state(books))


def assert_same(
    frames: list[bytes], prefix: tuple[bytes, ...] | list[bytes] = ()
) -> dict[str, int]:
    """Applies ``frames`` in order to two sets of books (one gets every frame with a leading
    space), after ``prefix`` (applied to both as is); after each frame both outcomes must be
    equal. Returns how often each outcome came."""
    fixed, general = okxbook.Books(), okxbook.Books()
    for frame in prefix:
        for books in (fixed, general):
            try:
                books.apply(frame)
            except BookError:
                pass
    seen: dict[str, int] = {}
    for frame in frames:
        a = outcome(fixed, frame, 0)
        b = outcome(general, b" " + frame, 1)
        assert a == b, f"readers disagree on {frame[:160]!r}: {a[:3]} vs {b[:3]}"
        seen[a[0]] = seen.get(a[0], 0) + 1
    return seen


def book_frames(channel: str, n: int, seed: int, **kw: object) -> list[bytes]:
    book = SyntheticBook("BTC-USDT", channel, seed=seed, **kw)  # type: ignore[arg-type]
    return [book.snapshot_frame(), *(book.next_update_frame() for _ in range(n))]


def test_real_captures_read_the_same_both_ways():
    seen: dict[str, int] = {}
    paths = [CF_BOOKS_0513, *sorted(FRAMES_DIR.glob("thrasher-corp_gocryptotrader/*.jsonl"))]
    paths += sorted(FRAMES_DIR.glob("ccxt_ccxt/*.jsonl"))
    for path in paths:
        frames = [captured.frame for captured in iter_frames(path)]
        for k, v in assert_same(frames).items():
            seen[k] = seen.get(k, 0) + v
    assert seen["applied"] > 300


def test_synthetic_channels_read_the_same_both_ways():
    for channel, kw in [
        ("books", {"checksum": "crc"}),
        ("books", {"checksum": "zero"}),
        ("books-l2-tbt", {}),
        ("books50-l2-tbt", {}),
        ("books5", {}),
        ("bbo-tbt", {}),
    ]:
        seen = assert_same(book_frames(channel, 150, 3, **kw))
        assert seen == {"applied": 151}, (channel, seen)


def test_mutated_frames_are_refused_or_applied_the_same_both_ways():
    rng = random.Random(20261202)
    base = book_frames("books", 60, 11, checksum="crc")
    seen: dict[str, int] = {}
    for trial in range(1200):
        # a fresh pair of books at the same snapshot, then one mutated frame (a snapshot or the
        # next update)
        k = rng.randrange(1, len(base)) if trial % 4 else 0
        for key, v in assert_same([mutate(base[k], rng)], prefix=base[:k]).items():
            seen[key] = seen.get(key, 0) + v
    assert seen.get("FrameError", 0) > 300
    assert seen.get("applied", 0) > 30
    assert seen.get("ChecksumError", 0) + seen.get("SequenceError", 0) > 10


def test_edits_that_leave_the_layout_are_read_the_same():
    snap, update = book_frames("books", 1, 5, checksum="zero")
    edits = [
        (b'"ts":"', b'"ts":"1","ts":"'),  # a duplicate member
        (b'"checksum":0', b'"checksum":0,"checksum":0'),
        (b'"seqId":', b'"seqId":-'),  # negative seqId
        (b'"prevSeqId":', b'"prevSeqId":-2,"x":'),
        (b'"seqId":', b'"extra":{"a":[1,2]},"seqId":'),  # a member the scanner skips
        (b'"instId":"BTC-USDT"', b'"instId":"BTC\\u002dUSDT"'),  # an escape
        (b'"instId":"BTC-USDT"', b'"instId":"BTC-US\xc3\xa9"'),  # non-ASCII, valid UTF-8
        (b'"instId":"BTC-USDT"', b'"instId":"BTC-US\xff"'),  # invalid UTF-8
        (b'"instId":"BTC-USDT"', b'"instId":""'),
        (b'"channel":"books"', b'"channel":"trades"'),
        (b'"action":"update",', b""),
        (b'"action":"update"', b'"action":"upd"'),
        (b"}]}", b"},{}]}"),  # a second (empty) item
        (b"}]}", b"}]} "),  # trailing whitespace
        (b"}]}", b"}]}x"),
        (b'"asks":', b'"asks" :'),
        (b'"bids":[', b'"bids":[ '),
    ]
    for old, new in edits:
        assert old in update, old
        assert_same([snap, update.replace(old, new, 1)])
        assert_same([snap.replace(old, new, 1), update])
