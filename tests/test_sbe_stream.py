"""JSON and SBE give the same books: a JSON stream (a real books-l2-tbt capture, synthetic streams
with heartbeats, resets, exponent updates and gaps) converted to SBE by okxbook.testing.sbe and
applied through ``Books.apply`` holds the same levels, by exact value, as the JSON path after every
frame; and mutated SBE frames (fuzzing as tests/test_book_fuzz.py does for JSON) only ever raise
documented errors, a ``FrameError`` changing nothing."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from conftest import CF_L2TBT_0228
from test_book_fuzz import check, mutate

import okxbook
from okxbook.capture import iter_frames
from okxbook.testing import SyntheticBook, synthetic_stream
from okxbook.testing.sbe import SbeConverter, truncate


def levels(book: okxbook.Book | None) -> tuple:
    if book is None:
        return ()
    return tuple(
        tuple((Decimal(px), Decimal(sz), n) for px, sz, n in side)
        for side in (book.bid_levels(), book.ask_levels())
    )


def replay_both(frames: list[bytes], conv: SbeConverter, *, sbe_channel: str = "books-l2-tbt"):
    """Apply each JSON frame and its SBE frames side by side; yield after every JSON frame the
    outcome of each path and the two books."""
    js, sb = okxbook.Books(), okxbook.Books()
    converted = conv.convert_all(frames)
    for code_inst, code in conv.codes.items():
        sb.set_inst_id_code(code, code_inst)
    for frame, sbe_frames in zip(frames, converted, strict=True):
        try:
            result = js.apply(frame)
            js_out = "ok" if isinstance(result, okxbook.Book) else "event"
        except okxbook.OkxbookError as exc:
            js_out, result = type(exc).__name__, None
        sbe_out = "event" if not sbe_frames else "ok"
        for f in sbe_frames:
            try:
                sb.apply(f)
            except okxbook.OkxbookError as exc:
                sbe_out = type(exc).__name__
        if isinstance(result, okxbook.Book):
            yield js_out, sbe_out, result, sb.get(sbe_channel, result.inst_id)
        else:
            yield js_out, sbe_out, None, None


def test_real_l2_tbt_capture_converted_to_sbe_gives_the_same_book_after_every_frame():
    frames = [c.frame for c in iter_frames(CF_L2TBT_0228)]
    conv = SbeConverter(heartbeat_every=7)
    compared = 0
    for js_out, sbe_out, jb, sbook in replay_both(frames, conv):
        if jb is None:
            continue
        assert js_out == sbe_out == "ok"
        assert levels(jb) == levels(sbook), f"{jb.inst_id} differs after {jb.frames} frames"
        assert sbook.seq_id >= 0 and sbook.status == "live"
        compared += 1
    assert compared > 3000


def test_real_capture_conversion_uses_exponent_updates_and_heartbeats():
    frames = [c.frame for c in iter_frames(CF_L2TBT_0228)]
    kinds: dict[int, int] = {}
    for group in SbeConverter(heartbeat_every=7).convert_all(frames):
        for f in group:
            kinds[int.from_bytes(f[2:4], "little")] = (
                kinds.get(int.from_bytes(f[2:4], "little"), 0) + 1
            )
    assert kinds.get(1006, 0) >= 10 and kinds.get(1001, 0) > 3000
    assert kinds.get(1002, 0) > 0  # sizes printed with more decimals than before occur live


def synthetic_with_faults(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    books = [
        SyntheticBook("BTC-USDT", "books-l2-tbt", seed=seed, checksum="zero"),
        SyntheticBook("ETH-USDT", "books-l2-tbt", seed=seed, checksum="absent"),
    ]
    frames = [b.snapshot_frame() for b in books]
    for i in range(1000):
        b = rng.choice(books)
        if i % 97 == 50:
            frames.append(b.heartbeat_frame())
        elif i % 331 == 200:
            frames.append(b.reset_frame())
        elif i % 401 == 300:
            b.next_update_frame()  # lost: the next frame is a gap
            frames.append(b.next_update_frame())
            frames.append(b.snapshot_frame())  # and the book is seeded again
        else:
            frames.append(b.next_update_frame())
    return frames


@pytest.mark.parametrize("seed", [1, 2])
def test_synthetic_stream_with_heartbeats_resets_and_gaps_matches_at_every_seqid(seed):
    frames = synthetic_with_faults(seed)
    outcomes: dict[str, int] = {}
    for js_out, sbe_out, jb, sbook in replay_both(frames, SbeConverter()):
        assert js_out == sbe_out
        outcomes[js_out] = outcomes.get(js_out, 0) + 1
        if jb is not None:
            assert levels(jb) == levels(sbook)
            assert (jb.seq_id, jb.status) == (sbook.seq_id, sbook.status)
            st_j, st_s = jb.stats(), sbook.stats()
            for key in ("heartbeats", "seq_resets", "seq_gaps", "missing_deletes"):
                assert st_j[key] == st_s[key], key
    assert outcomes.get("SequenceError", 0) >= 2 and outcomes["ok"] > 900


def test_bbo_tbt_stream_matches_json():
    b = SyntheticBook("SOL-USDT", "bbo-tbt", seed=4)
    frames = [b.snapshot_frame()] + [b.next_update_frame() for _ in range(300)]
    n = 0
    for js_out, sbe_out, jb, sbook in replay_both(frames, SbeConverter(), sbe_channel="bbo-tbt"):
        assert js_out == sbe_out == "ok"
        assert levels(jb) == levels(sbook) and jb.best_bid == sbook.best_bid
        n += 1
    assert n == 301


def sbe_stream(n_updates: int) -> tuple[list[bytes], dict[str, int]]:
    conv = SbeConverter(heartbeat_every=11)
    frames = synthetic_stream(3, n_updates, seed=99, channel="books-l2-tbt")
    out = [f for group in conv.convert_all(frames) for f in group]
    return out, conv.codes


def flip(frame: bytes, rng: random.Random) -> bytes:
    """1 to 3 bytes set to random values: binary faults the JSON mutator rarely makes."""
    data = bytearray(frame)
    for _ in range(rng.randint(1, 3)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def test_mutated_sbe_frames_only_raise_documented_errors_and_never_corrupt_a_book():
    frames, codes = sbe_stream(400)
    snapshot = next(f for f in frames if f[2:4] == (1006).to_bytes(2, "little"))
    update = next(
        f for f in frames if f[2:4] == (1001).to_bytes(2, "little") and f[8:16] == snapshot[8:16]
    )
    rng = random.Random(20261202)
    outcomes: dict[str, int] = {}
    for trial in range(1500):
        books = okxbook.Books()
        for inst, code in codes.items():
            books.set_inst_id_code(code, inst)
        books.apply(snapshot)
        base = snapshot if trial % 5 == 0 else update
        kind = trial % 3
        if kind == 0:
            mutated = truncate(base, rng.randrange(len(base)))
        elif kind == 1:
            mutated = mutate(base, rng)
        else:
            mutated = flip(base, rng)
        outcome = check(books, mutated)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("frame_error", 0) > 500
    assert outcomes.get("SequenceError", 0) > 10
    assert outcomes.get("applied", 0) > 50


def test_every_truncation_of_every_frame_kind_is_rejected_whole():
    frames, codes = sbe_stream(30)
    books = okxbook.Books()
    for inst, code in codes.items():
        books.set_inst_id_code(code, inst)
    for frame in frames:
        before = [(b.inst_id, b.bids().tobytes(), b.asks().tobytes(), b.seq_id) for b in books]
        # the converter pads nothing, so every shorter prefix cuts a field, a group or its header
        for keep in range(len(frame)):
            with pytest.raises(okxbook.FrameError):
                books.apply(frame[:keep])
        assert [
            (b.inst_id, b.bids().tobytes(), b.asks().tobytes(), b.seq_id) for b in books
        ] == before
        books.apply(frame)
