"""Property tests: random OKX streams give exactly the book of a simple dict model written here
(Decimal price -> (px_str, sz_str, orders)), level by level and string by string, with checksums
computed by the test (zlib over the model's top 25) in the frames so verification runs throughout."""

from __future__ import annotations

import json
import math
import random
import zlib
from decimal import Decimal

import numpy as np
import pytest
from conftest import EXAMPLES
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import okxbook
from okxbook import Books

DEPTH = {
    "books": 400,
    "books-l2-tbt": 400,
    "books50-l2-tbt": 50,
    "books-rpi": 400,
    "books-elp": 400,
    "books5": 5,
    "bbo-tbt": 1,
}
INST = "BTC-USDT"
SETTINGS = settings(
    max_examples=EXAMPLES,  # 200 (40 with OKXBOOK_QUICK_SEARCH: conftest.py)
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------ the model


def decimals(s: str) -> int:
    return len(s.partition(".")[2])


class Model:
    def __init__(self, channel: str):
        self.channel = channel
        self.depth = DEPTH[channel]
        self.bids: dict[Decimal, tuple[str, str, int]] = {}
        self.asks: dict[Decimal, tuple[str, str, int]] = {}
        self.px_dec = self.sz_dec = 0
        self.counts = dict(
            frames=0,
            snapshots=0,
            updates=0,
            heartbeats=0,
            seq_resets=0,
            checksum_ok=0,
            checksum_absent=0,
            missing_deletes=0,
        )

    def side(self, name):
        return self.bids if name == "bids" else self.asks

    def top(self, name, n=None):
        d = self.side(name)
        return [d[k] for k in sorted(d, reverse=(name == "bids"))[:n]]

    def top_values(self):
        out = []
        for name in ("bids", "asks"):
            t = self.top(name, 1)
            out.append((Decimal(t[0][0]), Decimal(t[0][1])) if t else None)
        return tuple(out)

    def checksum(self) -> int:
        b, a = self.top("bids", 25), self.top("asks", 25)
        parts = []
        for i in range(25):
            if i < len(b):
                parts += b[i][:2]
            if i < len(a):
                parts += a[i][:2]
        v = zlib.crc32(":".join(parts).encode())
        return v - 2**32 if v >= 2**31 else v

    def count_checksum(self, value: int) -> None:
        """0 (an empty book's CRC32 too) and absent both count as absent."""
        self.counts["checksum_ok" if value else "checksum_absent"] += 1

    def apply(self, bids, asks, reset: bool):
        levels = bids + asks
        fpx = max((decimals(l[0]) for l in levels), default=0)
        fsz = max((max(decimals(l[1]), decimals(l[2])) for l in levels), default=0)
        self.counts["frames"] += 1
        if reset:
            self.bids.clear()
            self.asks.clear()
            self.px_dec, self.sz_dec = fpx, fsz
            self.counts["snapshots"] += 1
        else:
            self.px_dec, self.sz_dec = max(self.px_dec, fpx), max(self.sz_dec, fsz)
            self.counts["updates"] += 1
        for name, lv in (("bids", bids), ("asks", asks)):
            side = self.side(name)
            for px, sz, _third, orders in lv:
                k = Decimal(px)
                if Decimal(sz) == 0:
                    if side.pop(k, None) is None and not reset:
                        self.counts["missing_deletes"] += 1
                else:
                    side[k] = (px, sz, int(orders))


def frame(channel, bids, asks, action=None, **fields) -> bytes:
    item = {"asks": asks, "bids": bids, "ts": "1700000000000"}
    item.update(fields)
    msg = {"arg": {"channel": channel, "instId": INST}}
    if action:
        msg["action"] = action
    msg["data"] = [item]
    return json.dumps(msg).encode()


def check_book(book, model: Model, *, counters: bool = False):
    depth = model.depth
    assert book.is_valid and book.status == "live"
    assert (book.px_decimals, book.sz_decimals) == (model.px_dec, model.sz_dec)
    for name in ("bids", "asks"):
        want = model.top(name, depth)
        got = book.bid_levels() if name == "bids" else book.ask_levels()
        assert got == want, name
        assert (book.n_bids if name == "bids" else book.n_asks) == min(len(model.side(name)), depth)
        rows = book.bids() if name == "bids" else book.asks()
        assert rows.dtype == okxbook.DEPTH_DTYPE and len(rows) == len(want)
        px = [Decimal(p) for p, _s, _o in want]
        sz = [Decimal(s) for _p, s, _o in want]
        assert rows["px_ticks"].tolist() == [int(p.scaleb(model.px_dec)) for p in px]
        assert rows["sz_lots"].tolist() == [int(s.scaleb(model.sz_dec)) for s in sz]
        assert rows["px"].tolist() == [float(p) for p in px]
        assert rows["sz"].tolist() == [float(s) for s in sz]
        assert rows["orders"].tolist() == [o for _p, _s, o in want]
        running = np.cumsum(np.array([int(s.scaleb(model.sz_dec)) for s in sz], dtype=object))
        assert np.cumsum(rows["sz_lots"]).tolist() == list(running)
        assert np.allclose(
            rows["cum_sz"],
            [float(Decimal(int(r)).scaleb(-model.sz_dec)) for r in running],
            rtol=1e-12,
            atol=0,
        )
        assert len(book.bids(3) if name == "bids" else book.asks(3)) == min(3, len(want))
    tb, ta = model.top("bids", 1), model.top("asks", 1)
    assert book.best_bid == (tb[0][:2] if tb else None)
    assert book.best_ask == (ta[0][:2] if ta else None)
    top = book.top()
    exp = [
        float(Decimal(tb[0][0])) if tb else math.nan,
        float(Decimal(tb[0][1])) if tb else math.nan,
        float(Decimal(ta[0][0])) if ta else math.nan,
        float(Decimal(ta[0][1])) if ta else math.nan,
    ]
    for g, e in zip(top, exp):
        assert (math.isnan(g) and math.isnan(e)) or g == e
    assert book.best_bid_ticks == (
        int(Decimal(tb[0][0]).scaleb(model.px_dec)) if tb else okxbook.NO_BID
    )
    assert book.best_ask_ticks == (
        int(Decimal(ta[0][0]).scaleb(model.px_dec)) if ta else okxbook.NO_ASK
    )
    assert book.crossed == bool(tb and ta and Decimal(tb[0][0]) >= Decimal(ta[0][0]))
    if counters:
        s = book.stats()
        for k, v in model.counts.items():
            assert s[k] == v, k
        assert s["checksum_mismatch"] == 0 and s["seq_gaps"] == 0 and s["trimmed_levels"] == 0


# ------------------------------------------------------------------ drawing prices and sizes
# Hypothesis draws the shape of each stream (channel, lengths, operations); the many level values come
# from a random.Random seeded by Hypothesis, which keeps 200 examples of deep books fast.


def gen_value(rnd: random.Random, lo: int, hi: int) -> Decimal:
    """A value with 0..8 decimals; small mantissas now and then so prices collide and books cross."""
    mant = rnd.randint(lo, hi) if rnd.random() < 0.7 else rnd.randint(max(lo, -20), min(hi, 20))
    return Decimal(mant).scaleb(-rnd.choice([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8]))


def render(rnd: random.Random, v: Decimal) -> str:
    """A string OKX could send for v: its plain form, sometimes with trailing zeros ("100.50")."""
    s = format(v, "f")
    extra = rnd.choice([0, 0, 0, 1, 2])
    if extra and decimals(s) + extra <= 10:
        s = s + ("0" * extra if "." in s else "." + "0" * extra)
    return s


def gen_level(rnd: random.Random, px: Decimal, rpi: bool):
    sz = render(rnd, gen_value(rnd, 1, 10**5))
    third = render(rnd, gen_value(rnd, 0, 10**4)) if rpi and rnd.random() < 0.5 else "0"
    return [render(rnd, px), sz, third, str(rnd.randint(0, 500))]


def gen_delete(rnd: random.Random, px: Decimal):
    return [render(rnd, px), rnd.choice(["0", "0.0", "0.000", "0.00000000"]), "0", "0"]


def gen_new_price(rnd: random.Random, existing, neg: bool) -> Decimal:
    while True:
        v = gen_value(rnd, -(10**5) if neg else 0, 10**5)
        if v not in existing:
            return v


def gen_snapshot_side(rnd: random.Random, n: int, neg: bool, rpi: bool, bids: bool, shuffle: bool):
    prices: set[Decimal] = set()
    while len(prices) < n:
        prices.add(gen_new_price(rnd, prices, neg))
    levels = [gen_level(rnd, p, rpi) for p in sorted(prices, reverse=bids)]
    if shuffle:  # not best-first: the engine's other load path
        rnd.shuffle(levels)
    return levels


def draw_update_side(data, rnd: random.Random, side: dict, limit: int, neg: bool, rpi: bool):
    """Inserts, modifies (maybe re-printed price), deletes (maybe of missing prices); the side stays
    within the engine's stored limit (2 x depth) so the model and the engine must agree exactly."""
    pending = dict(side)
    out = []
    ops = data.draw(
        st.lists(st.sampled_from(["insert", "modify", "delete", "delete-missing"]), max_size=8)
    )
    for op in ops:
        if op in ("modify", "delete") and not pending:
            op = "insert"
        if op == "insert" and len(pending) >= limit:
            op = "delete"
        if op == "insert":
            px = gen_new_price(rnd, pending, neg)
            out.append(gen_level(rnd, px, rpi))
            pending[px] = True
        elif op == "modify":
            px = rnd.choice(sorted(pending))
            out.append(gen_level(rnd, px, rpi))
        elif op == "delete":
            px = rnd.choice(sorted(pending))
            out.append(gen_delete(rnd, px))
            del pending[px]
        else:
            out.append(gen_delete(rnd, gen_new_price(rnd, pending, neg)))
    return out


# ------------------------------------------------------------------ delta channels


@SETTINGS
@given(
    data=st.data(),
    channel=st.sampled_from(["books", "books-l2-tbt", "books-rpi", "books-elp", "books50-l2-tbt"]),
    neg=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_delta_stream_matches_dict_model(data, channel, neg, seed):
    rnd = random.Random(seed)
    depth = DEPTH[channel]
    limit = 2 * depth
    rpi = channel in ("books-rpi", "books-elp")
    max_snap = limit if depth == 50 else 40
    books = Books()
    model = Model(channel)
    seq = data.draw(st.integers(0, 4 * 10**11))

    def send(bids, asks, action, reset, **fields):
        before = model.top_values()
        scale = (model.px_dec, model.sz_dec)
        model.apply(bids, asks, reset)
        cs_mode = data.draw(st.sampled_from(["ok", "ok", "zero", "absent"]))
        if cs_mode == "ok":
            fields["checksum"] = model.checksum()
        elif cs_mode == "zero":
            fields["checksum"] = 0
        model.count_checksum(fields.get("checksum", 0))
        book = books.apply(frame(channel, bids, asks, action, **fields))
        assert book.seq_id == fields["seqId"]
        if not reset and scale != (model.px_dec, model.sz_dec):
            event("update rescaled the book")
        if max(len(model.bids), len(model.asks)) > model.depth:
            event("a side deeper than the published depth")
        if book.crossed:
            event("crossed")
        if not reset or scale == (model.px_dec, model.sz_dec):
            assert book.top_changed == (before != model.top_values())
        check_book(book, model)
        return book

    def snapshot():
        nonlocal seq
        seq = data.draw(st.integers(0, 4 * 10**11))
        n_b = data.draw(st.integers(0, max_snap))
        n_a = data.draw(st.integers(0, max_snap))
        shuffle = data.draw(st.integers(0, 9)) == 0
        return send(
            gen_snapshot_side(rnd, n_b, neg, rpi, True, shuffle),
            gen_snapshot_side(rnd, n_a, neg, rpi, False, shuffle),
            "snapshot",
            True,
            prevSeqId=-1,
            seqId=seq,
        )

    book = snapshot()
    for _ in range(data.draw(st.integers(1, 25))):
        kind = data.draw(st.sampled_from(["update"] * 8 + ["heartbeat", "reset", "snapshot"]))
        if kind == "snapshot":
            book = snapshot()
            continue
        if kind == "heartbeat":
            book = send([], [], "update", False, prevSeqId=seq, seqId=seq)
            model.counts["heartbeats"] += 1
            continue
        bids = draw_update_side(data, rnd, model.bids, limit, neg, rpi)
        asks = draw_update_side(data, rnd, model.asks, limit, neg, rpi)
        prev = seq
        if kind == "reset" and seq > 0:
            seq = data.draw(st.integers(0, seq - 1))
            model.counts["seq_resets"] += 1
        else:
            seq += data.draw(st.integers(1, 100))
        book = send(bids, asks, "update", False, prevSeqId=prev, seqId=seq)
    check_book(book, model, counters=True)


# ------------------------------------------------------------------ books50: an OKX-like top-50 window


@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_books50_window_stream_shows_the_servers_top_50(data, seed):
    """The server holds a deep book (up to 150 levels a side) and publishes its top-50 window the way
    OKX does: levels entering the window are sent, levels leaving it are explicitly deleted. The
    engine must show exactly the server's top 50, never more."""
    channel, depth = "books50-l2-tbt", 50
    server = {"bids": {}, "asks": {}}
    rnd = random.Random(seed)

    def new_level(side_name):
        side = server[side_name]
        px = gen_new_price(rnd, side, False)
        side[px] = (
            render(rnd, px),
            render(rnd, gen_value(rnd, 1, 10**5)),
            "0",
            str(rnd.randint(1, 99)),
        )

    def window(side_name):
        side = server[side_name]
        keys = sorted(side, reverse=(side_name == "bids"))[:depth]
        return {k: side[k] for k in keys}

    for name in ("bids", "asks"):
        for _ in range(data.draw(st.integers(0, 150))):
            new_level(name)
    books = Books()
    model = Model(channel)
    view = {n: window(n) for n in ("bids", "asks")}
    snap = {n: [list(v) for v in view[n].values()] for n in ("bids", "asks")}
    model.apply(snap["bids"], snap["asks"], True)
    model.count_checksum(model.checksum())
    seq = 1000
    book = books.apply(
        frame(
            channel,
            snap["bids"],
            snap["asks"],
            "snapshot",
            prevSeqId=-1,
            seqId=seq,
            checksum=model.checksum(),
        )
    )
    check_book(book, model)
    for _ in range(data.draw(st.integers(1, 15))):
        # Server-side changes anywhere in its deep book.
        for name in ("bids", "asks"):
            side = server[name]
            for op in data.draw(
                st.lists(st.sampled_from(["insert", "modify", "delete"]), max_size=12)
            ):
                if op != "insert" and side:
                    # mostly near the top, where the window is
                    keys = sorted(side, reverse=(name == "bids"))
                    px = keys[min(int(rnd.expovariate(1 / 30)), len(keys) - 1)]
                    if op == "delete":
                        del side[px]
                    else:
                        side[px] = (
                            render(rnd, px),
                            render(rnd, gen_value(rnd, 1, 10**5)),
                            "0",
                            str(rnd.randint(1, 99)),
                        )
                elif len(side) < 150:
                    new_level(name)
        # What OKX pushes: the diff of the published window.
        msg = {}
        for name in ("bids", "asks"):
            new = window(name)
            old = view[name]
            diff = [[old[k][0], "0", "0", "0"] for k in old if k not in new]
            diff += [list(v) for k, v in new.items() if old.get(k) != v]
            rnd.shuffle(diff)
            msg[name] = diff
            view[name] = new
        model.apply(msg["bids"], msg["asks"], False)
        model.count_checksum(model.checksum())
        book = books.apply(
            frame(
                channel,
                msg["bids"],
                msg["asks"],
                "update",
                prevSeqId=seq,
                seqId=seq + 7,
                checksum=model.checksum(),
            )
        )
        seq += 7
        check_book(book, model)
        for name in ("bids", "asks"):
            assert len(model.side(name)) <= depth
            want = [tuple(v[:2]) for v in window(name).values()]
            got = [l[:2] for l in (book.bid_levels() if name == "bids" else book.ask_levels())]
            assert got == want
    check_book(book, model, counters=True)


# ------------------------------------------------------------------ image channels


@SETTINGS
@given(
    data=st.data(), channel=st.sampled_from(["books5", "bbo-tbt"]), seed=st.integers(0, 2**32 - 1)
)
def test_random_image_pushes_each_replace_the_book(data, channel, seed):
    rnd = random.Random(seed)
    depth = DEPTH[channel]
    books = Books()
    model = Model(channel)
    seq = data.draw(st.integers(0, 10**12))
    for _ in range(data.draw(st.integers(1, 12))):
        n_b = data.draw(st.integers(0, depth))
        n_a = data.draw(st.integers(0, depth))
        shuffle = data.draw(st.booleans())
        bids = gen_snapshot_side(rnd, n_b, False, False, True, shuffle)
        asks = gen_snapshot_side(rnd, n_a, False, False, False, shuffle)
        before, scale = model.top_values(), (model.px_dec, model.sz_dec)
        model.apply(bids, asks, True)
        seq += data.draw(st.integers(0, 50))
        book = books.apply(frame(channel, bids, asks, seqId=seq))
        assert book.seq_id == seq
        if scale == (model.px_dec, model.sz_dec):
            assert book.top_changed == (before != model.top_values())
        check_book(book, model)
    model.counts["checksum_absent"] = model.counts["frames"]
    check_book(book, model, counters=True)


# ------------------------------------------------------------------ the stored tail (2 x depth)


def _bids(prices):
    return [[str(p), "1", "0", "1"] for p in prices]


def test_books50_keeps_twice_its_depth_and_publishes_only_its_depth():
    ch = "books50-l2-tbt"
    books = Books()
    prices = list(range(10_000, 10_000 - 130, -1))  # 130 bids, best first
    book = books.apply(frame(ch, _bids(prices), [], "snapshot", prevSeqId=-1, seqId=1))
    assert book.depth == 50 and book.n_bids == 50 and len(book.bids()) == 50
    assert len(book.bids(1000)) == 50 and len(book.bid_levels(1000)) == 50
    assert [int(l[0]) for l in book.bid_levels()] == prices[:50]
    assert book.stats()["trimmed_levels"] == 30
    # Delete the best 60 explicitly: levels 61..100 were kept and come into view; 101..130 were not.
    book = books.apply(
        frame(
            ch, [[str(p), "0", "0", "0"] for p in prices[:60]], [], "update", prevSeqId=1, seqId=2
        )
    )
    assert [int(l[0]) for l in book.bid_levels()] == prices[60:100]
    assert book.n_bids == 40 and book.stats()["missing_deletes"] == 0


def test_full_side_drops_its_deepest_level_for_a_better_one():
    ch = "books50-l2-tbt"
    books = Books()
    prices = list(range(1000, 900, -1))  # exactly 100 = 2 x depth
    book = books.apply(frame(ch, _bids(prices), [], "snapshot", prevSeqId=-1, seqId=1))
    assert book.stats()["trimmed_levels"] == 0
    # Deeper than everything held: not kept.
    book = books.apply(frame(ch, _bids([5]), [], "update", prevSeqId=1, seqId=2))
    assert book.stats()["trimmed_levels"] == 1
    # Inside the held range (a new price between two levels): kept, the deepest (901) dropped.
    book = books.apply(frame(ch, [["950.5", "1", "0", "1"]], [], "update", prevSeqId=2, seqId=3))
    assert book.stats()["trimmed_levels"] == 2
    book = books.apply(
        frame(
            ch, [[str(p), "0", "0", "0"] for p in prices[:50]], [], "update", prevSeqId=3, seqId=4
        )
    )
    # Held now: 950.5, then 950..902 (901 was dropped for 950.5; 5 was never kept).
    assert [l[0] for l in book.bid_levels()] == ["950.5"] + [str(p) for p in range(950, 901, -1)]
    assert book.n_bids == 50


@pytest.mark.parametrize("channel,n,depth_kept", [("books5", 7, 5), ("books50-l2-tbt", 130, 100)])
def test_unsorted_snapshot_keeps_the_best_levels(channel, n, depth_kept):
    levels = _bids(range(1000, 1000 + n))  # worst first
    book = Books().apply(
        frame(
            channel, levels, [], "snapshot" if channel != "books5" else None, prevSeqId=-1, seqId=1
        )
    )
    shown = min(depth_kept, DEPTH[channel])
    assert [int(l[0]) for l in book.bid_levels()] == list(
        range(1000 + n - 1, 1000 + n - 1 - shown, -1)
    )


@pytest.mark.parametrize("channel,n,trimmed", [("books5", 7, 2), ("books50-l2-tbt", 130, 30)])
def test_trimmed_levels_is_the_same_for_sorted_and_unsorted_snapshots(channel, n, trimmed):
    levels = _bids(range(1000, 1000 + n))  # worst first
    action = "snapshot" if channel != "books5" else None
    sorted_book = Books().apply(frame(channel, levels[::-1], [], action, prevSeqId=-1, seqId=1))
    assert sorted_book.stats()["trimmed_levels"] == trimmed
    book = Books().apply(frame(channel, levels, [], action, prevSeqId=-1, seqId=1))
    assert book.stats()["trimmed_levels"] == trimmed
