"""The book queries of ``okxbook._query`` equal a plain computation over the levels: on random
books (hypothesis; the reference is the dict of levels the frame was made from, in Python ints) and
on every book state of the real captures (the reference is numpy over ``Book.bids()``/``asks()``)."""

from __future__ import annotations

import json
import math
import random
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import CF_BOOKS_0513, CF_L2TBT_0228
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import okxbook as q
from okxbook import ASK, BID, NO_ASK, NO_BID, Book, BookError, Books, SequenceError, TopSeries
from okxbook.capture import iter_frames

CAPTURES = [CF_BOOKS_0513, CF_L2TBT_0228]


# ---------------------------------------------------------------- an independent reference


class Ref:
    """A book as two dicts price ticks -> size lots, and every query written the obvious way."""

    def __init__(self, bids: dict[int, int], asks: dict[int, int], pd: int, sd: int) -> None:
        self.side = {BID: sorted(bids.items(), reverse=True), ASK: sorted(asks.items())}
        self.pd, self.sd = pd, sd

    def fill_lots(self, side: int, want: int) -> tuple[int, int, int]:
        notional = filled = 0
        worst = -(2**63) if side == BID else 2**63 - 1
        for px, sz in self.side[side]:
            if filled == want:
                break
            take = min(sz, want - filled)
            notional += px * take
            filled += take
            worst = px
        return notional, worst, filled

    def within_ticks(self, side: int, limit: int) -> int:
        return sum(
            sz for px, sz in self.side[side] if (px >= limit if side == BID else px <= limit)
        )

    def within_px(self, side: int, px: float) -> int:
        div = 10**self.pd
        return sum(
            sz for p, sz in self.side[side] if (p / div >= px if side == BID else p / div <= px)
        )

    def within_bps_lots(self, side: int, bps: int) -> int:
        if not self.side[BID] or not self.side[ASK]:
            return 0
        mid2 = self.side[BID][0][0] + self.side[ASK][0][0]
        rhs = mid2 * (10000 - side * bps)
        return sum(
            sz
            for p, sz in self.side[side]
            if (p * 20000 >= rhs if side == BID else p * 20000 <= rhs)
        )

    def cum(self, side: int, n: int) -> int:
        return sum(sz for _, sz in self.side[side][:n])


def fmt(v: int, dec: int) -> str:
    s = str(v).rjust(dec + 1, "0")
    return f"{s[:-dec]}.{s[-dec:]}" if dec else s


def snapshot(inst: str, bids: dict[int, int], asks: dict[int, int], pd: int, sd: int) -> bytes:
    def rows(levels: dict[int, int], reverse: bool) -> list[list[str]]:
        return [
            [fmt(p, pd), fmt(s, sd), "0", "3"] for p, s in sorted(levels.items(), reverse=reverse)
        ]

    item = {"bids": rows(bids, True), "asks": rows(asks, False), "ts": "1700000000000",
            "seqId": 7, "prevSeqId": -1, "checksum": 0}  # fmt: skip
    msg = {"arg": {"channel": "books", "instId": inst}, "action": "snapshot", "data": [item]}
    return json.dumps(msg).encode()


@st.composite
def books(draw: st.DrawFn) -> tuple[Book, Ref]:
    pd = draw(st.integers(0, 6))
    sd = draw(st.integers(0, 8))
    mid = draw(st.integers(1000, 10**9))
    n_b = draw(st.integers(0, 40))
    n_a = draw(st.integers(0, 40))
    gaps = st.lists(st.integers(1, 50), min_size=0, max_size=40)
    sizes = st.integers(1, 10**12)
    bids: dict[int, int] = {}
    px = mid
    for gap in draw(gaps)[:n_b]:
        px -= gap
        if px > 0:
            bids[px] = draw(sizes)
    asks: dict[int, int] = {}
    px = mid
    for gap in draw(gaps)[:n_a]:
        px += gap
        asks[px] = draw(sizes)
    book = Books().apply(snapshot("R-T", bids, asks, pd, sd))
    assert isinstance(book, Book)
    if bids or asks:  # an empty book has learnt no decimals
        assert (book.px_decimals, book.sz_decimals) == (pd, sd)
    return book, Ref(bids, asks, book.px_decimals, book.sz_decimals)


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(books(), st.sampled_from([BID, ASK]), st.integers(0, 10**14))
def test_fill_equals_walking_the_levels(br, side, want):
    book, ref = br
    notional, worst, filled = ref.fill_lots(side, want)
    assert q.fill_lots(book, side, want) == (notional, worst, filled)
    vwap, worst_px, filled_qty = q.fill(book, side, want / 10**ref.sd)
    if filled == 0:
        assert math.isnan(vwap) and math.isnan(worst_px) and filled_qty == 0.0
    else:
        assert vwap == pytest.approx(notional / filled / 10**ref.pd, rel=1e-12)
        assert worst_px == worst / 10**ref.pd
        assert filled_qty == pytest.approx(filled / 10**ref.sd, rel=1e-12)


@FAST
@given(books(), st.sampled_from([BID, ASK]), st.integers(-60, 60), st.integers(0, 3000))
def test_quantities_within_a_price_a_band_and_at_a_price(br, side, offset, bps):
    book, ref = br
    levels = ref.side[side]
    anchor = levels[min(len(levels) - 1, abs(offset) % 7)][0] if levels else 10**6
    limit = anchor + offset
    assert q.qty_within_ticks(book, side, limit) == ref.within_ticks(side, limit)
    px = limit / 10**ref.pd
    assert q.qty_within(book, side, px) == ref.within_px(side, px) / 10**ref.sd
    assert q.qty_within_bps_lots(book, side, bps) == ref.within_bps_lots(side, bps)
    # The float band agrees with the exact one except for a level sitting on the boundary.
    want = ref.within_bps_lots(side, bps) / 10**ref.sd
    assert q.qty_within_bps(book, side, float(bps)) in (
        pytest.approx(want),
        pytest.approx(ref.within_bps_lots(side, bps + 1) / 10**ref.sd),
        pytest.approx(ref.within_bps_lots(side, max(0, bps - 1)) / 10**ref.sd),
    )
    held = dict(levels)
    for p in [limit, anchor, *list(held)[:3]]:
        assert q.size_at_lots(book, side, p) == held.get(p, 0)
        assert q.size_at(book, side, p / 10**ref.pd) == held.get(p, 0) / 10**ref.sd
    assert q.size_at_lots(book, -side, anchor) == dict(ref.side[-side]).get(anchor, 0)


@FAST
@given(books(), st.integers(0, 50))
def test_cumulative_depth_imbalance_and_the_top_copy(br, n):
    book, ref = br
    for side in (BID, ASK):
        assert q.cum_depth_lots(book, side, n) == ref.cum(side, n)
        assert q.cum_depth(book, side, n) == ref.cum(side, n) / 10**ref.sd
    b, a = ref.cum(BID, n), ref.cum(ASK, n)
    assert q.imbalance_lots(book, n) == (b, a)
    imb = q.imbalance(book, n)
    assert math.isnan(imb) if a + b == 0 else imb == pytest.approx((b - a) / (b + a))
    top = q.top_levels(book, n)
    assert top.seq_id == 7 and top.status == "live" and top.inst_id == "R-T"
    for arr, side in ((top.bids, BID), (top.asks, ASK)):
        want = ref.side[side][:n]
        assert arr["px_ticks"].tolist() == [p for p, _ in want]
        assert arr["sz_lots"].tolist() == [s for _, s in want]
        assert (arr["orders"] == 3).all()


# ---------------------------------------------------------------- real captures, against numpy


def np_fill(levels: np.ndarray, want: int, empty: int) -> tuple[int, int, int]:
    lots = levels["sz_lots"].astype(object)  # Python ints: the notional passes int64
    cum = np.cumsum(lots)
    take = np.minimum(lots, np.maximum(0, want - (cum - lots)))
    used = take > 0
    notional = int((levels["px_ticks"].astype(object) * take).sum())
    worst = int(levels["px_ticks"][used][-1]) if used.any() else empty
    return notional, worst, int(take.sum())


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.parent.name)
def test_queries_equal_numpy_on_every_state_of_a_real_capture(path: Path):
    rng = random.Random(11)
    books = Books()
    checked = 0
    for cf in iter_frames(path):
        try:
            book = books.apply(cf.frame)
        except BookError:
            continue
        if not isinstance(book, Book) or not book.is_valid:
            continue
        bids, asks = book.bids(), book.asks()
        for side, lv in ((BID, bids), (ASK, asks)):
            if not len(lv):
                continue
            want = rng.randrange(0, int(lv["sz_lots"].sum()) * 2 + 1)
            assert q.fill_lots(book, side, want) == np_fill(
                lv, want, NO_BID if side > 0 else NO_ASK
            )
            k = rng.randrange(len(lv))
            limit = int(lv["px_ticks"][k])
            assert q.qty_within_ticks(book, side, limit) == int(lv["sz_lots"][: k + 1].sum())
            assert q.size_at_lots(book, side, limit) == int(lv["sz_lots"][k])
            assert q.size_at(book, side, float(lv["px"][k])) == float(lv["sz"][k])
            n = rng.randrange(1, 30)
            assert q.cum_depth_lots(book, side, n) == int(lv["sz_lots"][:n].sum())
            assert q.cum_depth(book, side, n) == pytest.approx(float(lv["cum_sz"][:n][-1]))
        n = rng.randrange(1, 30)
        b, a = int(bids["sz_lots"][:n].sum()), int(asks["sz_lots"][:n].sum())
        assert q.imbalance_lots(book, n) == (b, a)
        top = q.top_levels(book, 25)
        assert np.array_equal(top.bids, bids[:25]) and np.array_equal(top.asks, asks[:25])
        assert top.seq_id == book.seq_id and top.ts_ms == book.ts_ms
        checked += 1
    assert checked > 200


def test_the_bps_band_is_top_series_band_on_a_real_capture():
    """One definition of "within N bps of the mid": the query's equals ``TopSeries``' band."""
    books = Books()
    series = TopSeries(bps=(5, 25))
    got = []
    for cf in iter_frames(CAPTURES[0]):
        try:
            book = books.apply(cf.frame)
        except BookError:
            continue
        if isinstance(book, Book) and book.is_valid:
            series.observe(book, 0)
            got.append(
                [q.qty_within_bps(book, side, bps) for side in (BID, ASK) for bps in (5.0, 25.0)]
            )
    cols = series.columns()
    want = np.column_stack(
        [cols[f"{s}_depth_{b}bps"] for s in ("bid", "ask") for b in (5, 25)]
    ).tolist()
    assert len(got) > 200 and got == want


# ---------------------------------------------------------------- edges


def test_an_empty_or_invalid_book_answers_as_empty_and_bad_arguments_raise(mkframe):
    books = Books()
    book = books.apply(
        mkframe("books", "E-F", [("10", "1")], [("11", "2")], action="snapshot", seqId=5,
                prevSeqId=-1)
    )  # fmt: skip
    assert q.fill(book, ASK, 1.0) == (11.0, 11.0, 1.0)
    with pytest.raises(SequenceError):
        books.apply(mkframe("books", "E-F", [], [], action="update", prevSeqId=9, seqId=10))
    assert not book.is_valid
    vwap, worst, filled = q.fill(book, BID, 1.0)
    assert math.isnan(vwap) and math.isnan(worst) and filled == 0.0
    assert q.fill_lots(book, ASK, 5) == (0, 2**63 - 1, 0)
    assert q.qty_within_bps(book, BID, 10.0) == 0.0 and q.qty_within_bps_lots(book, ASK, 10) == 0
    assert math.isnan(q.imbalance(book, 5)) and q.top_levels(book, 5).status == "invalid"
    assert len(q.top_levels(book, 5).bids) == 0
    for bad in (0, 2, -2):
        with pytest.raises(ValueError, match="side"):
            q.cum_depth(book, bad, 3)
    with pytest.raises(ValueError, match="quantity"):
        q.fill(book, BID, -1.0)
    with pytest.raises(ValueError, match="quantity"):
        q.fill(book, BID, math.nan)
    with pytest.raises(ValueError, match="n must"):
        q.top_levels(book, -1)
    with pytest.raises(TypeError):
        q.fill(None, BID, 1.0)  # type: ignore[arg-type]


def test_a_huge_quantity_fills_the_whole_side_in_exact_integers(mkframe):
    big = "92233720368"  # 10 levels of ~9.2e10 lots x ~9.2e10 ticks pass int64 in the notional
    bids = [(str(92233720368 - i), big) for i in range(10)]
    book = Books().apply(
        mkframe("books", "B-G", bids, [], action="snapshot", seqId=1, prevSeqId=-1)
    )
    want = sum((92233720368 - i) * 92233720368 for i in range(10))
    assert want > 2**63
    assert q.fill_lots(book, BID, 2**63 - 1) == (want, 92233720368 - 9, 10 * 92233720368)
    assert q.cum_depth_lots(book, BID, 400) == 10 * 92233720368
    assert q.fill(book, BID, math.inf)[2] == 10 * 92233720368.0


def test_top_levels_is_one_consistent_copy_while_another_thread_applies_frames():
    """A thread copying the top while the main thread applies a fast stream only ever sees
    bids/asks/seqId of one frame: each copy equals the book state recorded at that seqId."""
    from okxbook.testing import SyntheticBook

    gen = SyntheticBook("C-D", "books", seed=3, checksum="zero")
    books = Books()
    book = books.apply(gen.snapshot_frame())
    states: dict[int, tuple[list[int], list[int]]] = {}
    copies = []
    stop = threading.Event()

    def copier() -> None:
        while not stop.is_set():
            copies.append(q.top_levels(book, 10))

    def record() -> None:
        states[book.seq_id] = (
            book.bids(10)["px_ticks"].tolist() + book.bids(10)["sz_lots"].tolist(),
            book.asks(10)["px_ticks"].tolist() + book.asks(10)["sz_lots"].tolist(),
        )

    record()
    frames = [gen.next_update_frame() for _ in range(1500)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    t = threading.Thread(target=copier)
    t.start()
    try:
        for frame in frames:
            books.apply(frame)
            record()
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    assert len(copies) > 10
    for c in copies:
        bids = c.bids["px_ticks"].tolist() + c.bids["sz_lots"].tolist()
        asks = c.asks["px_ticks"].tolist() + c.asks["sz_lots"].tolist()
        assert states[c.seq_id] == (bids, asks)
