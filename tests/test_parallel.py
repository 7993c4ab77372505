"""okxbook.parallel: each file's Parquet output, from a process pool and from a Dask LocalCluster,
equals the same file replayed serially in this process; failures and name clashes are reported."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from conftest import CF_BOOKS_0513, CF_L2TBT_0228, NAUTILUS_DIR

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from okxbook.capture.export import replay_series, to_pandas
from okxbook.capture.parallel import (
    FileResult,
    format_results,
    out_name,
    replay_file,
    replay_many,
)

REAL_INPUTS = {  # name in tmp -> source: two real captures and an update without its snapshot
    "okx-l2tbt-2022-02-27.cryptofeed": CF_L2TBT_0228,
    "okx-books-2022-05-13.cryptofeed.gz": CF_BOOKS_0513,
    "rpi-update-alone.json": NAUTILUS_DIR / "ws_books_rpi_update.json",
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, synthetic_10x5k) -> list[Path]:
    """A plain and a gzip copy of the generated bench-like stream, then the real captures."""
    bench = synthetic_10x5k.path
    sources = {"bench-10x5k.jsonl": bench, "bench-10x5k.jsonl.gz": bench, **REAL_INPUTS}
    d = tmp_path_factory.mktemp("captures")
    paths = []
    for name, src in sources.items():
        dst = d / name
        if name.endswith(".gz"):
            with open(src, "rb") as f, gzip.open(dst, "wb") as g:
                shutil.copyfileobj(f, g)
        else:
            shutil.copy(src, dst)
        paths.append(dst)
    return paths


@pytest.fixture(scope="module")
def serial(inputs) -> dict[str, tuple]:
    """Each file replayed on its own in this process: the reference."""
    out = {}
    for p in inputs:
        series, report = replay_series(p)
        out[str(p)] = (to_pandas(series), report)
    return out


def check_against_serial(results: list[FileResult], inputs: list[Path], serial, out_dir: Path):
    assert [r.path for r in results] == [str(p) for p in inputs]  # input order kept
    for r in results:
        df, report = serial[r.path]
        assert r.out_path == str(out_dir / out_name(r.path))
        pd.testing.assert_frame_equal(pd.read_parquet(r.out_path), df)
        assert (r.frames, r.rows, r.books) == (report.frames, len(df), len(report.books))
        assert (r.checksum_mismatches, r.seq_gaps) == (0, 0)
        # an update alone (no snapshot before it in its file) is "no book", never OK
        assert r.ok == (Path(r.path).name != "rpi-update-alone.json") == report.ok
        assert r.error is None and r.bytes == Path(r.path).stat().st_size


def check_known_counts(results: list[FileResult], bench_frames: int) -> None:
    by_name = {Path(r.path).name: r for r in results}
    assert by_name["bench-10x5k.jsonl.gz"].rows == by_name["bench-10x5k.jsonl"].rows == bench_frames
    assert by_name["okx-l2tbt-2022-02-27.cryptofeed"].rows == 3679
    # each file has its own Books: an update with no snapshot before it in *its* file makes no row
    assert by_name["rpi-update-alone.json"].rows == 0


def test_process_pool_outputs_equal_serial_replay_file_by_file(
    inputs, serial, tmp_path, synthetic_10x5k
):
    results = replay_many(inputs, tmp_path / "out", workers=2)
    check_against_serial(results, inputs, serial, tmp_path / "out")
    check_known_counts(results, synthetic_10x5k.n_frames)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        out_name(p) for p in inputs
    )  # no temp files left


def test_dask_local_cluster_outputs_equal_serial_replay(inputs, serial, tmp_path, synthetic_10x5k):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            # one worker process (its start is most of this test's time), two tasks at once
            n_workers=1,
            threads_per_worker=2,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        results = replay_many(inputs, tmp_path / "a", dask_address=client)
        check_against_serial(results, inputs, serial, tmp_path / "a")
        check_known_counts(results, synthetic_10x5k.n_frames)
        # by scheduler address, as `okxbook replay --dask tcp://...` gives it
        by_address = replay_many(inputs[:2], tmp_path / "b", dask_address=cluster.scheduler_address)
        check_against_serial(by_address, inputs[:2], serial, tmp_path / "b")


def test_unreadable_file_is_reported_and_the_others_finish(inputs, tmp_path, synthetic_10x5k):
    bad = tmp_path / "not-a-capture.txt"
    bad.write_bytes(b"hello\n")
    missing = tmp_path / "missing.jsonl"
    results = replay_many([inputs[0], bad, missing], tmp_path / "out", workers=2)
    assert [r.ok for r in results] == [True, False, False]
    assert "CaptureFormatError" in results[1].error and results[1].out_path is None
    assert "FileNotFoundError" in results[2].error
    assert [p.name for p in (tmp_path / "out").iterdir()] == [out_name(inputs[0])]
    table = format_results(results)
    assert "missing.jsonl" in table and "FileNotFoundError" in table
    n = synthetic_10x5k.n_frames
    assert table.endswith(f"3 files, {n} frames, {n} rows: 2 with problems")


def test_same_stem_in_two_directories_is_refused_before_any_work(inputs, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        shutil.copy(inputs[0], tmp_path / d / "day.jsonl")
    with pytest.raises(ValueError, match="would both be written"):
        replay_many([tmp_path / "a/day.jsonl", tmp_path / "b/day.jsonl"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_out_name_drops_only_the_last_suffix():
    assert out_name("/x/BTC-USDT-2026-11-25.jsonl.gz") == "BTC-USDT-2026-11-25.jsonl.parquet"
    assert out_name("x.jsonl") == "x.parquet"


def test_replay_file_in_process_equals_serial(inputs, serial, tmp_path):
    r = replay_file(inputs[2], tmp_path / "one.parquet")
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "one.parquet"), serial[str(inputs[2])][0]
    )
    assert r.ok and r.rows == 3679 and r.books == 10
    alone = replay_file(inputs[4], tmp_path / "alone.parquet")
    assert not alone.ok and alone.problems == ("no book",) and alone.before_snapshot == 1


def test_no_paths_no_work(tmp_path):
    assert replay_many([], tmp_path / "out") == []


# -- a recording's hourly files each replay on their own (issue 9, item 1)

HOUR_NS = 3_600 * 10**9


def _split_recording(tmp_path: Path, *, carry: bool = True) -> list[Path]:
    """The bundled real capture written by the recorder's file writer with receive times moved so
    that an hour boundary falls in the middle: two hourly files."""
    from okxbook.capture import iter_frames
    from okxbook.capture.recorder import write_capture
    from okxbook.capture.replay import sample_capture

    frames = [c.frame for c in iter_frames(sample_capture())]
    start = 1_795_597_200 * 10**9 - (len(frames) // 2) * 10_000_000  # an hour boundary mid-way
    stamped = [(start + i * 10_000_000, f) for i, f in enumerate(frames)]
    files = write_capture(tmp_path / "rec", stamped, compression="gzip", carry=carry)
    assert len(files) == 2
    return files


def _book_state(books) -> dict:
    return {
        (b.channel, b.inst_id): (b.status, b.seq_id, b.bid_levels(), b.ask_levels())
        for b in books
        if b.frames or b.snapshots
    }


def _rows(df):
    out = df.copy()
    out["book"] = out["book"].astype(str)
    return out.reset_index(drop=True)


def test_each_hourly_file_replays_alone_to_the_books_of_one_stream(tmp_path):
    from okxbook._books import Books
    from okxbook.capture import iter_frames
    from okxbook.capture.replay import replay_frames

    first, second = _split_recording(tmp_path)
    whole, whole_report = replay_frames(c for p in (first, second) for c in iter_frames(p))
    alone, alone_report = replay_frames(iter_frames(second), Books())
    assert alone_report.before_snapshot == 0 and alone_report.carried == 3
    assert whole_report.carried == 0 and whole_report.carried_skipped == 3
    assert _book_state(alone) == _book_state(whole)
    assert whole_report.ok and alone_report.ok


def test_serial_and_parallel_replay_of_a_split_recording_give_the_same_rows(tmp_path):
    files = _split_recording(tmp_path)
    serial_series, serial_report = replay_series(files)
    results = replay_many(files, tmp_path / "out", workers=2)
    assert [r.ok for r in results] == [True, True]
    parallel = pd.concat([pd.read_parquet(r.out_path) for r in results], ignore_index=True)
    pd.testing.assert_frame_equal(_rows(parallel), _rows(to_pandas(serial_series)))
    assert sum(r.rows for r in results) == len(serial_series) > 0


def test_a_file_whose_updates_come_before_any_snapshot_is_not_ok(tmp_path):
    from okxbook.cli import main

    files = _split_recording(tmp_path, carry=False)  # as head/tail would cut a capture
    results = replay_many(files, tmp_path / "out", workers=2)
    assert [r.ok for r in results] == [True, False]
    assert "no book" in results[1].problems and results[1].rows == 0
    assert "no book" in format_results(results)
    code = main(["replay", "--workers", "2", "--out-dir", str(tmp_path / "o2"), *map(str, files)])
    assert code != 0
