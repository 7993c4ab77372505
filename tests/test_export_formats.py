"""The exports of ``okxbook replay --export PATH --format F`` (``okxbook.capture.export.export``),
each read back by its real consumer (pandas, Polars, DuckDB, hftbacktest, okxbook's own tardis
reader) and the books rebuilt from it compared with the books a plain replay of the same frames
ends with (and, for the per-frame tables, with frames decoded by ``json`` here)."""

from __future__ import annotations

import gzip
import itertools
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from conftest import CF_BOOKS_0513, CF_L2TBT_0228, NAUTILUS_DIR
from test_book_captures import STREAMS

import okxbook
from okxbook._books import Books
from okxbook.capture import iter_frames
from okxbook.capture.export import FORMATS, export, read_metadata
from okxbook.capture.parallel import replay_many
from okxbook.capture.replay import replay_frames
from okxbook.capture.selection import Selection, parse_interval, parse_time
from okxbook.cli import main
from okxbook.errors import CaptureFormatError

BOOKS_0513 = CF_BOOKS_0513  # books, 3 instruments, checksums and seqIds
L2_TBT = CF_L2TBT_0228  # books-l2-tbt, 10 instruments, many decimals


def final_books(path: Path, n_frames: int | None = None) -> Books:
    books, _ = replay_frames(itertools.islice(iter_frames(path), n_frames), Books())
    return books


def ticks(book, side: str, n: int | None = None) -> list[tuple[int, int]]:
    levels = book.bids(n) if side == "bid" else book.asks(n)
    return list(zip(levels["px_ticks"].tolist(), levels["sz_lots"].tolist()))


def is_book_push(frame: bytes) -> bool:
    if frame[:1] != b"{":
        return False
    msg = json.loads(frame)
    return "data" in msg and msg.get("arg", {}).get("channel") in okxbook.CHANNELS


def book_pushes(path: Path) -> dict[str, int]:
    """Book frames per ``channel/instId``, decoded with json (every book here starts with its
    snapshot, so each push is one applied frame)."""
    out: dict[str, int] = {}
    for captured in iter_frames(path):
        if captured.frame[:1] != b"{":
            continue
        msg = json.loads(captured.frame)
        if "data" in msg and msg.get("arg", {}).get("channel") in okxbook.CHANNELS:
            key = f"{msg['arg']['channel']}/{msg['arg']['instId']}"
            out[key] = out.get(key, 0) + 1
    return out


def rebuild_from_delta_table(df) -> dict[str, dict[str, dict[int, int]]]:
    """Books from the long delta table's rows alone, at one scale per book (rescale rows
    multiply what is held)."""
    books: dict[str, dict[str, dict[int, int]]] = {}
    for row in df.itertuples(index=False):
        book = books.setdefault(str(row.book), {"bid": {}, "ask": {}})
        side = book["bid"] if row.side > 0 else book["ask"]
        if row.action in ("clear", "invalid"):
            book["bid"].clear()
            book["ask"].clear()
        elif row.action == "rescale":
            for s in ("bid", "ask"):
                book[s] = {px * row.px_ticks: sz * row.sz_lots for px, sz in book[s].items()}
        elif row.action in ("insert", "update"):
            side[row.px_ticks] = row.sz_lots
        else:  # delete, trim
            del side[row.px_ticks]
    return books


@pytest.fixture(scope="module")
def deltas_0513(tmp_path_factory):
    out = tmp_path_factory.mktemp("deltas") / "d.parquet"
    result = export([BOOKS_0513], out, "deltas")
    assert result.report.ok
    return out, result


def test_delta_table_rebuilds_the_books_in_pandas(deltas_0513):
    out, result = deltas_0513
    df = pd.read_parquet(out)
    assert len(df) == result.rows == read_metadata(out)["rows"] > 0
    rebuilt = rebuild_from_delta_table(df)
    books = final_books(BOOKS_0513)
    assert len(rebuilt) == len(books) == 3
    for book in books:
        mine = rebuilt[f"{book.channel}/{book.inst_id}"]
        assert sorted(mine["bid"].items(), reverse=True) == ticks(book, "bid")
        assert sorted(mine["ask"].items()) == ticks(book, "ask")
    # One frame number per book push (decoded by json here), each book's first frame a snapshot
    # opened by a clear row.
    frames = df.groupby("book", observed=True)["frame"].nunique().to_dict()
    assert frames == book_pushes(BOOKS_0513)
    firsts = df.groupby("book", observed=True).head(1)
    assert (firsts["action"] == "clear").all() and firsts["is_snapshot"].all()
    # Exact integers and their received text agree; seqId chains link frame to frame.
    lv = df[df["action"].isin(["insert", "update"])]
    for px, d, text in zip(lv["px_ticks"][:200], lv["px_decimals"][:200], lv["price"][:200]):
        assert Decimal(text) == Decimal(int(px)).scaleb(-int(d))
    per_frame = df.drop_duplicates("frame")
    for _, g in per_frame[~per_frame["is_snapshot"]].groupby("book", observed=True):
        assert (g["prev_seq_id"].to_numpy()[1:] == g["seq_id"].to_numpy()[:-1]).all()


def received_levels(paths: list[Path]) -> dict[str, list[tuple[int, list[tuple[int, str, str]]]]]:
    """``book -> [(ts, [(side, price, size), ...]), ...]``: each push's levels as it sent them
    (decoded by json here), in order."""
    out: dict[str, list[tuple[int, list[tuple[int, str, str]]]]] = {}
    for p in paths:
        for cf in iter_frames(p):
            if not is_book_push(cf.frame):
                continue
            doc = json.loads(cf.frame)
            book = f"{doc['arg']['channel']}/{doc['arg']['instId']}"
            for item in doc["data"]:
                levels = [(1, lv[0], lv[1]) for lv in item.get("bids", [])]
                levels += [(-1, lv[0], lv[1]) for lv in item.get("asks", [])]
                out.setdefault(book, []).append((int(item.get("ts", 0)), levels))
    return out


def is_subsequence(part: list, whole: list) -> bool:
    it = iter(whole)
    return all(any(x == y for y in it) for x in part)


@pytest.mark.parametrize(
    ("name", "paths"),
    [s for s in STREAMS if "books" in s[0] and "books5" not in s[0]],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_delta_table_strings_are_the_strings_each_frame_sent(tmp_path, name, paths):
    out = tmp_path / "d.parquet"
    export(paths, out, "deltas")
    df = pd.read_parquet(out)
    sent = received_levels(paths)
    levels = df[df["action"].isin(["insert", "update", "delete"])]
    assert len(levels) and levels["price"].notna().all() and levels["size"].notna().all()
    # Every string is the exact value of its integer at the row's decimals ...
    for col, dec, text in (
        ("px_ticks", "px_decimals", "price"),
        ("sz_lots", "sz_decimals", "size"),
    ):
        for v, d, t in zip(levels[col], levels[dec], levels[text]):
            assert Decimal(t) == Decimal(int(v)).scaleb(-int(d)), (name, t, v, d)
    # ... and each frame's rows are its push's levels, strings as sent and in the order sent (a
    # level that changed nothing, e.g. a delete of a price the book did not hold, has no row).
    checked = 0
    for book, g in levels.groupby("book", observed=True):
        pushes = sent[book]
        i = 0
        for _, rows in g.groupby("frame", sort=True):
            mine = list(zip(rows["side"].tolist(), rows["price"].tolist(), rows["size"].tolist()))
            ts = int(rows["ts_ms"].iloc[0])
            while i < len(pushes) and not (
                pushes[i][0] == ts and is_subsequence(mine, pushes[i][1])
            ):
                i += 1
            assert i < len(pushes), (name, book, ts, mine[:3])
            checked += len(mine)
            i += 1
    assert checked == len(levels)


def test_delta_table_reads_the_same_in_polars_and_duckdb(deltas_0513):
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    out, _ = deltas_0513
    df = pd.read_parquet(out)
    want = df.groupby(["book", "action"], observed=True).size()
    want = {(str(b), str(a)): int(n) for (b, a), n in want.items() if n}
    got_pl = pl.read_parquet(out).group_by(["book", "action"]).len().rows()
    assert {(str(b), str(a)): n for b, a, n in got_pl} == want
    got_db = duckdb.sql(f"select book, action, count(*) from '{out}' group by all").fetchall()
    assert {(b, a): n for b, a, n in got_db} == want
    total = duckdb.sql(f"select sum(sz_lots) from '{out}' where action = 'insert'").fetchall()[0]
    assert total[0] == int(df.loc[df["action"] == "insert", "sz_lots"].sum())


def test_delta_table_from_a_time_window_opens_each_book_with_a_whole_book(tmp_path):
    times = [c.recv_ns for c in iter_frames(L2_TBT)]
    start, end = times[len(times) // 2], times[3 * len(times) // 4]
    out = tmp_path / "w.parquet"
    result = export([L2_TBT], out, "deltas", start=start, end=end)
    df = pd.read_parquet(out)
    assert result.rows == len(df) > 0
    assert (df["recv_ns"] >= start).all() and (df["recv_ns"] < end).all()
    firsts = df.groupby("book", observed=True).head(1)
    assert (firsts["action"] == "clear").all() and firsts["is_snapshot"].all()
    # Rebuilt from the window alone: the books as they stood at the window's end.
    n_before_end = sum(1 for t in times if t < end)
    books = final_books(L2_TBT, n_before_end)
    rebuilt = rebuild_from_delta_table(df)
    assert rebuilt
    for key, mine in rebuilt.items():
        channel, inst = key.split("/")
        book = books.get(channel, inst)
        assert sorted(mine["bid"].items(), reverse=True) == ticks(book, "bid")
        assert sorted(mine["ask"].items()) == ticks(book, "ask")


def test_book_selection_keeps_only_that_book_in_every_table(tmp_path):
    key = "books/BTC-USDT"
    for fmt in ("series", "snapshots", "deltas"):
        out = tmp_path / f"{fmt}.parquet"
        result = export([BOOKS_0513], out, fmt, books=[key])
        assert set(pd.read_parquet(out)["book"].astype(str)) == {key}
        assert list(result.report.books) == [key]
        assert result.report.filtered > 0


def test_snapshots_per_frame_equal_the_books_after_each_frame(tmp_path):
    out = tmp_path / "s.parquet"
    result = export([BOOKS_0513], out, "snapshots", levels=5, exact=True)
    df = pd.read_parquet(out)
    assert len(df) == result.rows == sum(book_pushes(BOOKS_0513).values())
    # The row of the k-th frame equals the book replayed to that frame (checked at a few).
    rows_per_prefix = np.cumsum([is_book_push(f.frame) for f in iter_frames(BOOKS_0513)])
    flags = [is_book_push(f.frame) for f in iter_frames(BOOKS_0513)]
    for k in [i + 1 for i in np.flatnonzero(flags)[[len(df) // 3, len(df) // 2, -1]]]:
        row = df.iloc[rows_per_prefix[k - 1] - 1]
        channel, inst = str(row["book"]).split("/")
        book = final_books(BOOKS_0513, k).get(channel, inst)
        for side in ("bid", "ask"):
            want = ticks(book, side, 5)
            got = [(row[f"{side}_px_ticks_{i}"], row[f"{side}_sz_lots_{i}"]) for i in range(5)]
            assert [(int(p), int(s)) for p, s in got[: len(want)]] == want
            assert float(row[f"{side}_px_0"]) == pytest.approx(want[0][0] / 10**book.px_decimals)


def test_snapshots_every_interval_hold_the_book_as_it_stood_then(tmp_path):
    out = tmp_path / "s.parquet"
    export([L2_TBT], out, "snapshots", levels=3, every="100ms")
    df = pd.read_parquet(out)
    times = df["time"].astype("int64").to_numpy()
    assert (np.diff(times) >= 0).all() and (times % parse_interval("100ms") == 0).all()
    frames = list(iter_frames(L2_TBT))
    for t in np.unique(times)[[1, len(np.unique(times)) // 2, -1]]:
        k = sum(1 for f in frames if f.recv_ns <= t)
        books = final_books(L2_TBT, k)
        for _, row in df[times == t].iterrows():
            book = books.get(*str(row["book"]).split("/"))
            want = [p / 10**book.px_decimals for p, _ in ticks(book, "bid", 3)]
            got = [row[f"bid_px_{i}"] for i in range(3)]
            assert got[: len(want)] == pytest.approx(want)
            assert all(np.isnan(got[len(want) :]))


def test_tardis_csv_round_trips_through_okxbook_replay(tmp_path):
    out = tmp_path / "okx.csv.gz"
    result = export([BOOKS_0513], out, "tardis")
    with gzip.open(out, "rt") as fh:
        lines = fh.read().splitlines()
    assert lines[0] == "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
    assert len(lines) - 1 == result.rows
    first = lines[1].split(",")
    assert first[0] == "okex-futures" and first[4] == "true" and first[5] in ("bid", "ask")
    rebuilt, report = replay_frames(iter_frames(out), Books())
    assert report.ok and report.checksum_mismatches == 0
    for book in final_books(BOOKS_0513):
        other = rebuilt.get("books", book.inst_id)
        assert ticks(other, "bid") == ticks(book, "bid")
        assert ticks(other, "ask") == ticks(book, "ask")
        assert other.checksum_absent == other.frames > 0  # tardis keeps no checksum


def test_tardis_csv_input_says_it_cannot_be_verified_and_rejects_damage(tmp_path, capsys):
    path = tmp_path / "t.csv"
    head = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
    body = (
        "okex,BTC-USDT,1652400000100000,1652400000123456,true,ask,30000.1,0.5\n"
        "okex,BTC-USDT,1652400000100000,1652400000123456,true,bid,29999.9,1e-05\n"
        "okex,BTC-USDT,1652400000200000,1652400000223456,false,ask,30000.0,3\n"
    )
    path.write_text(head + body)
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no OKX checksum or seqId" in out and "29999.9 x 0.00001" in out
    path.write_text(head + body + "okex,BTC-USDT,1,2,maybe,ask,1,1\n")
    with pytest.raises(CaptureFormatError, match=":5:"):
        list(iter_frames(path))
    assert main(["replay", str(path)]) == 2
    assert "bad incremental_book_L2 line" in capsys.readouterr().err


def test_hftbacktest_replays_the_npz_to_okxbooks_books(tmp_path):
    hbt_mod = pytest.importorskip("hftbacktest")
    from hftbacktest.data import validate_event_order

    out = tmp_path / "btc.npz"
    key = "books/BTC-USDT"
    result = export([BOOKS_0513], out, "hftbacktest", books=[key])
    data = np.load(out)["data"]
    assert data.dtype == hbt_mod.event_dtype and data.dtype.itemsize == 64
    assert len(data) == result.rows
    validate_event_order(data)
    frames = [f for f in iter_frames(BOOKS_0513) if b'"instId":"BTC-USDT"' in f.frame]
    checkpoints = [frames[len(frames) // 3].recv_ns, frames[2 * len(frames) // 3].recv_ns]
    asset = (
        hbt_mod.BacktestAsset()
        .data([str(out)])
        .linear_asset(1.0)
        .constant_order_latency(0, 0)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(float(result.details["tick_size"]))
        .lot_size(float(result.details["lot_size"]))
    )
    hbt = hbt_mod.HashMapMarketDepthBacktest([asset])
    try:
        assert hbt.elapse(1) == 0  # the clock starts at the first event (it is int64 max before)
        for t in [*checkpoints, None]:
            if t is None:
                while hbt.elapse(10**12) == 0:
                    pass
                book = final_books(BOOKS_0513).get("books", "BTC-USDT")
            else:
                assert hbt.elapse(t - hbt.current_timestamp) == 0
                k = sum(1 for f in iter_frames(BOOKS_0513) if f.recv_ns <= t)
                book = final_books(BOOKS_0513, k).get("books", "BTC-USDT")
            depth = hbt.depth(0)
            scale = 10**book.px_decimals
            bids, asks = ticks(book, "bid", 5), ticks(book, "ask", 5)
            assert depth.best_bid_tick == bids[0][0] and depth.best_ask_tick == asks[0][0]
            for px, sz in bids:
                assert depth.bid_qty_at_tick(px) == pytest.approx(sz / 10**book.sz_decimals)
            for px, sz in asks:
                assert depth.ask_qty_at_tick(px) == pytest.approx(sz / 10**book.sz_decimals)
            assert depth.best_bid == pytest.approx(bids[0][0] / scale)
    finally:
        hbt.close()


def test_hftbacktest_needs_one_book(tmp_path, capsys):
    out = tmp_path / "all.npz"
    assert main(["replay", str(BOOKS_0513), "--export", str(out), "--format", "hftbacktest"]) == 2
    assert "one book" in capsys.readouterr().err and not out.exists()


def test_every_format_from_the_command_line(tmp_path, capsys):
    for fmt in FORMATS:
        out = tmp_path / {"tardis": "x.csv.gz", "hftbacktest": "x.npz", "nautilus": "cat"}.get(
            fmt, f"{fmt}.parquet"
        )
        argv = ["replay", str(BOOKS_0513), "--export", str(out), "--format", fmt]
        argv += ["--book", "books/BTC-USDT", "--from", "2022-05-13T16:27:08Z"]
        assert main(argv) == 0, fmt
        assert out.exists()
        assert f"({fmt}: " in capsys.readouterr().out
    for bad in (["--format", "deltas"], ["--from", "yesterday"], ["--book", "BTC-USDT"]):
        assert main(["replay", str(BOOKS_0513), *bad]) == 2
        assert capsys.readouterr().err.count("\n") == 1


def test_selection_parsing():
    assert parse_time("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert parse_time("1970-01-01 02:00+02:00") == 0
    assert parse_time("1652459225000000000") == 1652459225000000000
    assert parse_interval("100ms") == 100_000_000 and parse_interval("1.5s") == 1_500_000_000
    with pytest.raises(ValueError):
        parse_interval("0s")
    with pytest.raises(ValueError):
        Selection.of(start="2022-05-13T10:00Z", end="2022-05-13T09:00Z")
    sel = Selection.of(["books/BTC-USDT"])
    assert sel.takes(b'{"arg":{"channel":"books","instId":"BTC-USDT"},"data":[]}')
    assert not sel.takes(b'{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"data":[]}')
    assert not sel.takes(b'{"arg":{"channel":"books5","instId":"BTC-USDT"},"data":[]}')


def _split_recording(tmp_path: Path) -> list[Path]:
    """The bundled capture written by the recorder as two hourly files (the second opens with
    the books carried over)."""
    from okxbook.capture.recorder import write_capture
    from okxbook.capture.replay import sample_capture

    frames = [c.frame for c in iter_frames(sample_capture())]
    start = 1_795_597_200 * 10**9 - (len(frames) // 2) * 10_000_000
    stamped = [(start + i * 10_000_000, f) for i, f in enumerate(frames)]
    files = write_capture(tmp_path / "rec", stamped, compression="gzip", carry=True)
    assert len(files) == 2
    return files


@pytest.mark.parametrize("fmt", ["deltas", "tardis"])
def test_parallel_export_of_a_split_recording_stands_file_by_file(tmp_path, fmt):
    files = _split_recording(tmp_path)
    results = replay_many(files, tmp_path / "out", workers=2, format=fmt)
    assert [r.ok for r in results] == [True, True] and all(r.rows for r in results)
    whole = final_books(files[0])
    whole, _ = replay_frames(itertools.chain(*(iter_frames(f) for f in files)), Books())
    if fmt == "deltas":
        # The second file's table alone, and both applied in order, give the whole stream's books.
        second = pd.read_parquet(results[1].out_path)
        both = pd.concat([pd.read_parquet(r.out_path) for r in results], ignore_index=True)
        for df in (second, both):
            rebuilt = rebuild_from_delta_table(df)
            for book in whole:
                mine = rebuilt[f"{book.channel}/{book.inst_id}"]
                assert sorted(mine["bid"].items(), reverse=True) == ticks(book, "bid")
    else:
        rebuilt, report = replay_frames(iter_frames(results[1].out_path), Books())
        assert report.ok
        for book in whole:
            assert ticks(rebuilt.get("books", book.inst_id), "ask") == ticks(book, "ask")


def test_books_rpi_third_field_reaches_the_delta_table(tmp_path):
    paths = [NAUTILUS_DIR / "ws_books_rpi_snapshot.json"]
    out = tmp_path / "rpi.parquet"
    export(paths, out, "deltas")
    df = pd.read_parquet(out)
    doc = json.loads(paths[0].read_text())
    levels = doc["data"][0]["bids"] + doc["data"][0]["asks"]
    inserts = df[df["action"] == "insert"]
    assert sorted(inserts["extra"].map(float)) == sorted(float(lv[2]) for lv in levels)
    assert sorted(inserts["orders"]) == sorted(int(lv[3]) for lv in levels)


def test_streamed_row_groups_hold_the_same_rows_as_one_batch(tmp_path):
    from okxbook.capture.deltatable import export_deltas
    from okxbook.capture.snapshots import export_snapshots

    small, big = tmp_path / "small.parquet", tmp_path / "big.parquet"
    export_deltas([L2_TBT], small, batch_rows=1_000)
    export_deltas([L2_TBT], big, batch_rows=10_000_000)
    assert pq.ParquetFile(small).metadata.num_row_groups > 5
    assert pq.ParquetFile(big).metadata.num_row_groups == 1
    pd.testing.assert_frame_equal(pd.read_parquet(small), pd.read_parquet(big))
    export_snapshots([L2_TBT], small, levels=3, batch_rows=500)
    export_snapshots([L2_TBT], big, levels=3)
    assert pq.ParquetFile(small).metadata.num_row_groups > 5
    pd.testing.assert_frame_equal(pd.read_parquet(small), pd.read_parquet(big))


def test_frames_before_the_window_do_not_pile_up_in_the_recorder(monkeypatch):
    from okxbook.capture import deltastream

    held: list[int] = []
    original = deltastream.DeltaStream.flush

    def flush(self):
        held.append(self.recorder.n_rows)
        original(self)

    monkeypatch.setattr(deltastream.DeltaStream, "flush", flush)
    last = max(c.recv_ns for c in iter_frames(L2_TBT))
    chunks = []
    report, stream = deltastream.replay_deltas(
        [L2_TBT], chunks.append, batch_rows=200, select=Selection.of(start=last)
    )
    assert report.outside_window > 3000 and len(held) > 10
    assert max(held) <= 200 + 801  # a batch plus the largest frame (a 400-level snapshot)
    assert stream.frames_out == 1  # the last frame, opened as a whole book
