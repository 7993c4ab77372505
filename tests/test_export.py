"""okxbook.export: the exported table against values computed independently here, from the frames
themselves (JSON-decoded in the test) and from ``Book.bids()``/``asks()`` replayed to a prefix."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

from conftest import CF_BOOKS_0513, CF_L2TBT_0228, NAUTILUS_DIR

import okxbook
from okxbook.capture import iter_frames
from okxbook.capture.export import (
    depth_columns,
    export_replay,
    read_metadata,
    replay_series,
    to_arrow,
    to_pandas,
    write_parquet,
)
from okxbook.capture.replay import replay, replay_frames

L2_TBT = CF_L2TBT_0228
BOOKS_0513 = CF_BOOKS_0513
RPI_DIR = NAUTILUS_DIR


def need(*paths: Path) -> None:
    """The captures are part of the repository (tests/data): a missing one is a failure."""
    for p in paths:
        assert p.exists(), f"{p} is missing from tests/data"


def book_frame_names(path: Path, n_frames: int | None = None) -> list[str]:
    """``"channel/instId"`` of every book push among the first ``n_frames`` frames, decoded with
    json here (not by okxbook's scanner). Every book in these captures starts with a snapshot, so
    each push makes one row."""
    names = []
    for captured in itertools.islice(iter_frames(path), n_frames):
        if captured.frame[:1] != b"{":
            continue
        msg = json.loads(captured.frame)
        arg = msg.get("arg") or {}
        if "data" in msg and arg.get("channel") in okxbook.CHANNELS:
            names.append(f"{arg['channel']}/{arg['instId']}")
    return names


@pytest.fixture(scope="module")
def l2_tbt():
    need(L2_TBT)
    series, report = replay_series([L2_TBT])
    return series, report, to_pandas(series)


def test_one_row_per_book_frame_in_frame_order(l2_tbt):
    _, _, df = l2_tbt
    names = book_frame_names(L2_TBT)
    assert len(names) == 3679 == len(df)  # README: 3679 book frames in this capture
    assert df["book"].astype(str).tolist() == names


def test_dtypes_book_categorical_and_utc_times(l2_tbt):
    _, _, df = l2_tbt
    assert isinstance(df["book"].dtype, pd.CategoricalDtype)
    assert str(df["recv_time"].dtype) == "datetime64[ns, UTC]"
    assert str(df["exchange_time"].dtype) == "datetime64[ns, UTC]"
    assert (df["recv_time"].astype("int64") == df["recv_ns"]).all()
    assert (df["exchange_time"].astype("int64") == df["ts_ms"] * 1_000_000).all()
    # the recorder's first line is "... <-> 1646003666.6408682", i.e. 2022-02-27 23:14:26 UTC
    first, end = df["recv_time"].iloc[0], df["recv_time"].iloc[-1]
    assert pd.Timestamp("2022-02-27 23:14:26", tz="UTC") < first < end
    assert end - first < pd.Timedelta(minutes=30)
    lag = (df["recv_time"] - df["exchange_time"]).dt.total_seconds()
    assert lag.abs().median() < 1  # a snapshot of a quiet book may carry an older ts


def test_final_row_per_book_equals_replay_report_best_levels(l2_tbt):
    _, _, df = l2_tbt
    report = replay([L2_TBT])
    last = df.groupby("book", observed=True).tail(1).set_index("book")
    assert set(last.index.astype(str)) == set(report.books)
    for name, b in report.books.items():
        row = last.loc[name]
        assert row["valid"] == (b["status"] == "live")
        for side in ("bid", "ask"):
            best = b[f"best_{side}"]  # (px, sz) strings as received, None: empty side
            got = (row[f"{side}_px"], row[f"{side}_sz"])
            if best is None:
                assert np.isnan(got).all() and row[f"{side}_ticks"] == 0
            else:
                assert got == (float(best[0]), float(best[1]))
        if b["best_bid"] and b["best_ask"]:
            spread = float(b["best_ask"][0]) - float(b["best_bid"][0])
            assert row["spread"] == pytest.approx(spread, rel=1e-9)
        else:
            assert np.isnan(row["spread"]) and np.isnan(row["mid"])
    assert last["bid_px"].isna().sum() == 2  # two option books end with no bids


def bands_from_book(book: okxbook.Book, bps: tuple[float, ...]) -> list[tuple[float, float]]:
    """Size within b bps of the mid per side, from the depth arrays, in exact ticks and lots."""
    bids, asks = book.bids(), book.asks()
    mid_ticks = (bids["px_ticks"][0] + asks["px_ticks"][0]) / 2
    lots = 10.0**book.sz_decimals
    out = []
    for b in bps:
        bid = bids["sz_lots"][bids["px_ticks"] >= mid_ticks * (1 - b / 1e4)].sum() / lots
        ask = asks["sz_lots"][asks["px_ticks"] <= mid_ticks * (1 + b / 1e4)].sum() / lots
        out.append((bid, ask))
    return out


@pytest.mark.parametrize("n_frames", [400, 1700, 3100])
def test_depth_bands_equal_numpy_sums_over_book_depth_at_a_prefix(l2_tbt, n_frames):
    _, _, df = l2_tbt
    bps = (5.0, 10.0, 25.0)
    # The book state after the first n_frames frames of the file ...
    books, _ = replay_frames(itertools.islice(iter_frames(L2_TBT), n_frames))
    # ... is the last row of each book among the rows those frames made.
    n_rows = len(book_frame_names(L2_TBT, n_frames))
    last = df.iloc[:n_rows].groupby("book", observed=True).tail(1).set_index("book")
    checked = 0
    for book in books:
        name = f"{book.channel}/{book.inst_id}"
        if name not in last.index or not (book.n_bids and book.n_asks):
            continue
        row = last.loc[name]
        assert row["bid_ticks"] == book.best_bid_ticks and row["ask_ticks"] == book.best_ask_ticks
        assert row["mid"] == pytest.approx(book.mid, rel=1e-15)
        for (bid_col, ask_col), (bid, ask) in zip(depth_columns(bps), bands_from_book(book, bps)):
            assert row[bid_col] == pytest.approx(bid, rel=1e-12, abs=1e-12), (name, bid_col)
            assert row[ask_col] == pytest.approx(ask, rel=1e-12, abs=1e-12), (name, ask_col)
        checked += 1
    assert checked >= 5


def test_custom_bands_are_named_and_nested(l2_tbt):
    need(BOOKS_0513)
    series, _ = replay_series(BOOKS_0513, bps=(50, 2.5))
    df = to_pandas(series)
    assert depth_columns(series) == [
        ("bid_depth_2_5bps", "ask_depth_2_5bps"),
        ("bid_depth_50bps", "ask_depth_50bps"),
    ]
    both = df[df["valid"]]
    assert (both["bid_depth_2_5bps"] <= both["bid_depth_50bps"]).all()
    assert (both["ask_depth_2_5bps"] <= both["ask_depth_50bps"]).all()


def test_parquet_round_trips_to_the_same_dataframe(tmp_path, l2_tbt):
    series, report, df = l2_tbt
    out = tmp_path / "l2.parquet"
    assert export_replay([L2_TBT], out).as_dict() == report.as_dict()
    back = pd.read_parquet(out)
    pd.testing.assert_frame_equal(back, df)
    meta = read_metadata(out)
    assert meta["bps"] == [5.0, 10.0, 25.0]
    assert meta["report"]["frames"] == report.frames and meta["report"]["ok"] is True
    assert meta["sources"] == [str(L2_TBT)]
    # the book column is stored as a dictionary, not a string per row
    import pyarrow.parquet as pq

    assert pa.types.is_dictionary(pq.read_schema(out).field("book").type)


def test_write_parquet_leaves_no_temp_file(tmp_path, l2_tbt):
    series, _, _ = l2_tbt
    write_parquet(series, tmp_path / "a.parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["a.parquet"]


def test_capture_without_receive_times_gives_null_recv_time(synthetic_10x5k):
    stream = synthetic_10x5k
    series, report = replay_series(stream.path)
    table = to_arrow(series)
    assert table.num_rows == report.frames == stream.n_frames
    assert table.column("recv_time").null_count == table.num_rows
    assert (table.column("recv_ns").to_numpy() == 0).all()
    assert (table.column("seq_id").to_numpy() > 0).all()
    assert len(series.book_names) == stream.instruments


def test_files_given_together_are_one_stream():
    need(RPI_DIR)
    snap, upd = RPI_DIR / "ws_books_rpi_snapshot.json", RPI_DIR / "ws_books_rpi_update.json"
    alone, report = replay_series(upd)
    assert len(alone) == 0 and report.before_snapshot == 1
    df = to_pandas(replay_series([snap, upd])[0])
    assert len(df) == 2 and df["valid"].all()
    assert df["seq_id"].iloc[1] > df["seq_id"].iloc[0] > 0


def test_empty_series_exports_an_empty_table_with_the_full_schema(tmp_path):
    series = okxbook.TopSeries()
    df = to_pandas(series)
    assert len(df) == 0 and "bid_depth_25bps" in df.columns
    write_parquet(series, tmp_path / "e.parquet")
    assert len(pd.read_parquet(tmp_path / "e.parquet")) == 0


# ---------------------------------------------------------------------------------------------------
# okxbook.plot (its tests live here: it draws what export produces)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_plot_writes_a_png_of_the_busiest_book(tmp_path, l2_tbt):
    pytest.importorskip("matplotlib")
    from okxbook.capture.plot import plot_books

    out = tmp_path / "l2.png"
    drawn = plot_books([L2_TBT], out)
    busiest = max(replay([L2_TBT]).books.items(), key=lambda kv: kv[1]["frames"])[0]
    assert drawn == busiest == "books-l2-tbt/ELON-USDT"
    assert png_size(out) == (1320, 990)  # 12 x 9 in at 110 dpi
    assert 50_000 < out.stat().st_size < 2_000_000  # three panels of real data, not blank


def test_plot_from_exported_parquet_and_a_chosen_book_and_band(tmp_path):
    pytest.importorskip("matplotlib")
    need(BOOKS_0513)
    from okxbook.capture.plot import plot_books

    export_replay(BOOKS_0513, tmp_path / "b.parquet")
    out = tmp_path / "b.png"
    assert (
        plot_books(tmp_path / "b.parquet", out, book="books/BTC-USDT", depth_bps=[10])
        == "books/BTC-USDT"
    )
    assert out.stat().st_size > 20_000
    with pytest.raises(ValueError, match="books/UNI-USD-SWAP"):  # the message lists the books
        plot_books(tmp_path / "b.parquet", out, book="books/NOPE")
    with pytest.raises(ValueError, match="not in the data"):
        plot_books(tmp_path / "b.parquet", out, depth_bps=[7])


def test_ticks_have_one_scale_per_book_for_the_whole_series(tmp_path):
    """A book that learns a decimal mid-series (2.20 then 2.201) keeps one tick scale in the
    export: ``bid_ticks / 10**px_decimals`` is the price on every row (issue 9, item 2)."""
    frames = [
        b'{"arg":{"channel":"books","instId":"X-USDT"},"action":"snapshot","data":[{"asks":'
        b'[["2.25","1","0","1"]],"bids":[["2.2","1","0","1"]],"ts":"1","checksum":0}]}',
        b'{"arg":{"channel":"books","instId":"X-USDT"},"action":"update","data":[{"asks":[],'
        b'"bids":[["2.201","1","0","1"]],"ts":"2","checksum":0}]}',
        b'{"arg":{"channel":"books","instId":"Y-USDT"},"action":"snapshot","data":[{"asks":'
        b'[["105","1","0","1"]],"bids":[["100","1","0","1"]],"ts":"1","checksum":0}]}',
    ]
    path = tmp_path / "learns.jsonl"
    path.write_bytes(b"\n".join(frames) + b"\n")
    series, _ = replay_series(path)
    df = to_pandas(series)
    x = df[df["book"] == "books/X-USDT"]
    assert x["px_decimals"].tolist() == [3, 3]
    assert x["bid_ticks"].tolist() == [2200, 2201] and x["ask_ticks"].tolist() == [2250, 2250]
    y = df[df["book"] == "books/Y-USDT"]
    assert y["px_decimals"].tolist() == [0] and y["bid_ticks"].tolist() == [100]
    scale = 10.0 ** df["px_decimals"]
    assert (df["bid_ticks"] / scale == df["bid_px"]).all()
    assert (df["ask_ticks"] / scale == df["ask_px"]).all()
    write_parquet(series, tmp_path / "x.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "x.parquet"), df)
