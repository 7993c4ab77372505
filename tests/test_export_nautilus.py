"""``--format nautilus``: the catalog okxbook writes, loaded by the real nautilus_trader's
``ParquetDataCatalog`` and replayed into its ``OrderBook``, equals okxbook's books (at the end and
at a point mid-way). nautilus_trader needs CPython >= 3.12: ``nox -s tests-3.12`` (run by .ci/run)
installs it; elsewhere this file is skipped with that reason."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

pytest.importorskip("pyarrow")
pytest.importorskip(
    "nautilus_trader",
    reason="nautilus_trader needs CPython >= 3.12; `nox -s tests-3.12` runs this file",
)

from conftest import CF_BOOKS_0513
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from okxbook._books import Books
from okxbook.capture import iter_frames
from okxbook.capture.export import export
from okxbook.capture.replay import replay_frames


def okx_levels(book, side: str) -> list[tuple[Decimal, Decimal]]:
    levels = book.bids() if side == "bid" else book.asks()
    return [
        (Decimal(int(p)).scaleb(-book.px_decimals), Decimal(int(s)).scaleb(-book.sz_decimals))
        for p, s in zip(levels["px_ticks"], levels["sz_lots"])
    ]


def nautilus_levels(book: OrderBook, side: str) -> list[tuple[Decimal, Decimal]]:
    levels = book.bids() if side == "bid" else book.asks()
    return [(level.price.as_decimal(), Decimal(str(level.size()))) for level in levels]


def test_nautilus_catalog_rebuilds_okxbooks_books(tmp_path):
    catalog_dir = tmp_path / "catalog"
    result = export([CF_BOOKS_0513], catalog_dir, "nautilus")
    assert result.report.ok and len(result.paths) == 3
    frames = list(iter_frames(CF_BOOKS_0513))
    mid = frames[len(frames) // 2].recv_ns
    okx_end, _ = replay_frames(iter(frames), Books())
    okx_mid, _ = replay_frames(itertools.takewhile(lambda f: f.recv_ns <= mid, frames), Books())
    catalog = ParquetDataCatalog(str(catalog_dir))
    total = 0
    for okx in okx_end:
        iid = InstrumentId.from_str(f"{okx.inst_id}.OKX")
        deltas = catalog.order_book_deltas(instrument_ids=[str(iid)])
        total += len(deltas)
        assert deltas[-1].sequence == max(okx.seq_id, 0)  # 0: the capture has no seqId
        book = OrderBook(iid, BookType.L2_MBP)
        checked_mid = False
        for d in deltas:
            if not checked_mid and d.ts_init > mid:
                other = okx_mid.get(okx.channel, okx.inst_id)
                assert nautilus_levels(book, "bid") == okx_levels(other, "bid")
                assert nautilus_levels(book, "ask") == okx_levels(other, "ask")
                checked_mid = True
            book.apply_delta(d)
        assert checked_mid or deltas[-1].ts_init <= mid
        assert nautilus_levels(book, "bid") == okx_levels(okx, "bid")
        assert nautilus_levels(book, "ask") == okx_levels(okx, "ask")
        assert book.best_bid_price().as_decimal() == Decimal(okx.best_bid[0])
    assert total == result.rows
