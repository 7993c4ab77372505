"""``DeltaRecorder(text=True)``: every row keeps the price and size strings its frame sent, through
buffer growth, single and batch mode and ``Book.snapshot_deltas(text=True)``; off, rows are the
plain ``DELTA_DTYPE``."""

from __future__ import annotations

import json

from conftest import CF_L2TBT_0228

from okxbook import DELTA_DTYPE, Books, DeltaRecorder
from okxbook._deltas import DELETE, DELTA_TEXT_DTYPE, INSERT, UPDATE
from okxbook.capture import iter_frames


def strings(rows) -> list[tuple[int, str, str]]:
    out = []
    for r in rows:
        if r["px_len"]:
            t = r["text"].decode()
            px, sz = t[: r["px_len"]], t[r["px_len"] + 1 : r["px_len"] + 1 + r["sz_len"]]
            out.append((int(r["side"]), px, sz))
    return out


def test_rows_keep_the_strings_sent_in_single_and_batch_mode():
    frames = [c.frame for c in iter_frames(CF_L2TBT_0228)]
    single, batch = DeltaRecorder(text=True), DeltaRecorder(batch=True, capacity=16, text=True)
    books, books_b = Books(), Books()
    books.record_deltas(single)
    books_b.record_deltas(batch)
    seen = 0
    for frame in frames:
        try:
            books.apply(frame)
            books_b.apply(frame)
        except Exception:
            continue
        rows = single.rows()
        assert rows.dtype == DELTA_TEXT_DTYPE
        if not len(rows) or b'"data"' not in frame:
            continue
        item = json.loads(frame)["data"][0]
        sent = [(1, p, s) for p, s, *_ in item.get("bids", [])]
        sent += [(-1, p, s) for p, s, *_ in item.get("asks", [])]
        mine = strings(rows)
        it = iter(sent)
        assert all(any(x == y for y in it) for x in mine)  # in order, as sent
        levels = rows[(rows["action"] == INSERT) | (rows["action"] == UPDATE)]
        deletes = rows[rows["action"] == DELETE]
        assert len(mine) == len(levels) + len(deletes)
        assert all(s == "0" for _, _, s in strings(deletes))
        seen += len(mine)
    assert seen > 10_000
    # Batch mode grew its buffers from 16 rows many times; the strings moved with the rows.
    all_rows = batch.rows()
    assert batch.n_rows == len(all_rows) > 10_000 and len(strings(all_rows)) >= seen


def test_snapshot_deltas_with_text_and_recorders_without_it():
    books = Books()
    for c in iter_frames(CF_L2TBT_0228):
        try:
            books.apply(c.frame)
        except Exception:
            pass
    book = max(books, key=lambda b: b.n_bids)
    _, rows = book.snapshot_deltas(text=True)
    got = strings(rows)
    assert sorted((px, sz) for side, px, sz in got if side == 1) == sorted(
        (px, sz) for px, sz, _ in book.bid_levels(book.n_bids)
    )
    assert book.snapshot_deltas()[1].dtype == DELTA_DTYPE
    assert DeltaRecorder().rows().dtype == DELTA_DTYPE and not DeltaRecorder().text
