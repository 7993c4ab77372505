"""The side storage (okxbook/_level.pxd): a slot pool ordered by a window of compact keys that slides
inside buffers twice its size, moving the shorter part on every insert and delete. Long runs of
changes at chosen depths (the touch, the middle, the tail, past it, on a full side) make the window
slide to both ends and come back to the middle; after every frame the book must equal a sorted model
kept here, level by level, strings included, and the fast readers must agree with it."""

from __future__ import annotations

import random

import pytest

from okxbook import Books

CH = "books50-l2-tbt"  # depth 50: a side keeps at most 100 levels, so a full side is quick to make


def _frame(mkframe, bids, asks, action, prev, seq):
    return mkframe(CH, "S-T", bids, asks, action=action, prevSeqId=prev, seqId=seq, checksum=0)


def _levels(model, best_first_key):
    return [(px, sz) for px, sz in sorted(model.items(), key=best_first_key)]


@pytest.mark.parametrize("where", ["touch", "middle", "tail", "past_tail", "random"])
def test_inserts_and_deletes_at_any_depth_keep_the_book_exact(mkframe, where):
    rng = random.Random(where)
    bids = {1000 - 2 * i: f"{i + 1}.5" for i in range(60)}  # 60 levels: room for 40 more
    asks = {3001 + 2 * i: f"{i + 1}.25" for i in range(60)}
    books = Books()
    book = books.apply(
        _frame(
            mkframe,
            [[str(p), s] for p, s in sorted(bids.items(), reverse=True)],
            [[str(p), s] for p, s in sorted(asks.items())],
            "snapshot",
            -1,
            1,
        )
    )
    seq = 1
    applied = 0
    for step in range(600):
        changes_b, changes_a = [], []
        for side, model, changes, sign in ((0, bids, changes_b, -1), (1, asks, changes_a, 1)):
            held = sorted(model, key=lambda p, s=sign: p * s)  # best first
            n = len(held)
            depth = {
                "touch": 0,
                "middle": n // 2,
                "tail": n - 1,
                "past_tail": n,
                "random": rng.randrange(n + 1),
            }[where]
            if step % 3 == 2 and n > 10:  # delete one near `depth`
                px = held[min(depth, n - 1)]
                del model[px]
                changes.append([str(px), "0"])
            else:  # a new level one tick on the better side of the one at `depth`
                ref = held[min(depth, n - 1)]
                better = 1 if side == 0 else -1
                px = ref + better if depth < n else ref - better
                if (
                    px in model
                    or (side == 0 and px >= min(asks))
                    or (side == 1 and px <= max(bids))
                ):
                    continue
                model[px] = f"{step}.{side + 1}"
                changes.append([str(px), model[px]])
        applied += len(changes_b) + len(changes_a)
        book = books.apply(_frame(mkframe, changes_b, changes_a, "update", seq, seq + 1))
        seq += 1
        # A full side (100 levels) drops its deepest for a better level: so does the model.
        for model, worst in ((bids, min), (asks, max)):
            while len(model) > 100:
                del model[worst(model)]
        want_b = _levels(bids, lambda kv: -kv[0])
        want_a = _levels(asks, lambda kv: kv[0])
        got_b = [(int(px), sz) for px, sz, _ in book.bid_levels(1000)]
        got_a = [(int(px), sz) for px, sz, _ in book.ask_levels(1000)]
        assert got_b == want_b[:50] and got_a == want_a[:50], step
        assert book.best_bid_ticks == want_b[0][0] and book.best_ask_ticks == want_a[0][0]
    assert book.is_valid and applied > 250


def test_copy_from_keeps_order_after_the_window_slid(mkframe):
    books = Books()
    book = books.apply(
        _frame(
            mkframe, [[str(1000 - i), "1"] for i in range(80)], [["2000", "1"]], "snapshot", -1, 1
        )
    )
    # Delete from the tail and insert at the tail, many times: the window slides down and back.
    seq = 1
    for k in range(300):
        px = 1000 - 79 - (k % 2)
        sz = "0" if k % 2 == 0 else "2"
        book = books.apply(_frame(mkframe, [[str(px), sz]], [], "update", seq, seq + 1))
        seq += 1
    other = Books().book(CH, "S-T")
    other.copy_from(book)
    assert other.bid_levels(1000) == book.bid_levels(1000)
    assert [int(p) for p, _, _ in other.bid_levels(1000)] == sorted(
        (int(p) for p, _, _ in book.bid_levels(1000)), reverse=True
    )


def test_changes_at_every_depth_of_a_side_of_up_to_800_levels(mkframe):
    """A ``books`` side keeps up to 800 levels (twice its depth): sizes changed, levels inserted
    between others and deleted at random depths while the side grows past 512 levels (the deepest
    a change is placed by block, okxbook/_level.pxd ``search_blocks``) and shrinks back; the held
    levels under the visible 400 are checked as they come up when the best ones are deleted."""
    rng = random.Random(11)
    bids = {1_000_000 - 4 * i: "1" for i in range(400)}
    asks = {2_000_000 + 4 * i: "1" for i in range(400)}

    def frame(b, a, action, prev, seq):
        return mkframe("books", "D-EEP", b, a, action=action, prevSeqId=prev, seqId=seq, checksum=0)

    def check(book):
        want_b = sorted(bids.items(), reverse=True)[:400]
        want_a = sorted(asks.items())[:400]
        assert [(int(p), s) for p, s, _ in book.bid_levels(400)] == want_b
        assert [(int(p), s) for p, s, _ in book.ask_levels(400)] == want_a

    books = Books()
    snap = frame(
        [[str(p), s] for p, s in sorted(bids.items(), reverse=True)],
        [[str(p), s] for p, s in sorted(asks.items())],
        "snapshot",
        -1,
        1,
    )
    book = books.apply(snap)
    seq = 1
    for step in range(700):
        growing = step < 400
        changes = ([], [])
        for side, model, sign in ((0, bids, -1), (1, asks, 1)):
            held = sorted(model, key=lambda p, s=sign: p * s)  # best first
            ops = ["grow"] if growing else []
            ops += [rng.choice(["size", "between", "delete"]) for _ in range(4)]
            for op in ops:
                if op == "grow":  # one level past the tail
                    px = held[-1] + 4 * sign
                else:
                    ref = held[rng.randrange(len(held))]
                    px = {"size": ref, "between": ref + sign, "delete": ref}[op]
                if any(px == c[0] for c in changes[side]) or (op == "between" and px in model):
                    continue
                sz = "0" if op == "delete" else f"{step}.{side}{len(changes[side])}"
                changes[side].append((px, sz))
        for side, model in ((0, bids), (1, asks)):
            for px, sz in changes[side]:
                if sz == "0":
                    model.pop(px, None)
                else:
                    model[px] = sz
        for model, worst in ((bids, min), (asks, max)):
            while len(model) > 800:
                del model[worst(model)]
        book = books.apply(
            frame(
                [[str(p), s] for p, s in changes[0]],
                [[str(p), s] for p, s in changes[1]],
                "update",
                seq,
                seq + 1,
            )
        )
        seq += 1
        if step % 25 == 0:
            check(book)
        if step == 399:
            assert len(bids) > 600 and len(asks) > 600  # past 512: the deepest keys by halving
    # Delete from the best down: every held level reaches the visible 400 and is checked.
    while len(bids) > 50:
        top_b = sorted(bids, reverse=True)[:40]
        top_a = sorted(asks)[:40]
        for p in top_b:
            del bids[p]
        for p in top_a:
            del asks[p]
        book = books.apply(
            frame(
                [[str(p), "0"] for p in top_b],
                [[str(p), "0"] for p in top_a],
                "update",
                seq,
                seq + 1,
            )
        )
        seq += 1
        check(book)
    assert book.is_valid
