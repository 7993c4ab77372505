"""Bad input to ``okxbook replay --export`` for every format: one line naming the problem, exit 2,
no traceback, and nothing replayed (the checks run before the replay starts, so a month-long
replay never ends in a usage error)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import CF_L2TBT_0228

import okxbook.capture.deltastream
import okxbook.capture.export
import okxbook.cli
from okxbook.capture.export import FORMATS
from okxbook.cli import main

L2_TBT = str(CF_L2TBT_0228)  # books-l2-tbt, 10 books


@pytest.fixture
def no_replay(monkeypatch):
    def replay(*args, **kwargs):
        raise AssertionError("the replay started")

    for module in (okxbook.cli, okxbook.capture.export, okxbook.capture.deltastream):
        monkeypatch.setattr(module, "replay", replay)


def out_for(fmt: str, tmp_path) -> str:
    return str(
        tmp_path
        / {"tardis": "o.csv.gz", "hftbacktest": "o.npz", "nautilus": "cat"}.get(fmt, "o.parquet")
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--levels", "0"], "--levels"),
        (["--levels", "-1"], "--levels"),
        (["--every", "garbage"], "--every"),
        (["--every", "0ms"], "--every"),
        (["--book", "BTC-USDT"], "channel/instId"),
        (["--from", "yesterday"], "time"),
    ],
)
def test_bad_values_are_refused_before_the_replay(fmt, extra, says, tmp_path, capsys, no_replay):
    with pytest.raises(SystemExit) as exc:  # argparse's own errors exit 2 too
        code = main(["replay", L2_TBT, "--export", out_for(fmt, tmp_path), "--format", fmt, *extra])
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert says in err[-1] and "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("where", ["/proc/okxbook/out", "/proc/out", "missing-dir/out"])
def test_an_unwritable_export_path_is_refused_before_the_replay(
    fmt, where, tmp_path, capsys, no_replay, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert main(["replay", L2_TBT, "--export", where, "--format", fmt]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--export" in err


@pytest.mark.parametrize(
    ("books", "says"),
    [
        ([], "this capture has books-l2-tbt/"),
        (["--book", "books-l2-tbt/ZEN-USDT", "--book", "books-l2-tbt/ELON-USDT"], "2 times"),
    ],
)
def test_hftbacktest_with_several_books_is_refused_before_the_replay(
    books, says, tmp_path, capsys, no_replay
):
    assert (
        main(
            [
                "replay",
                L2_TBT,
                "--export",
                out_for("hftbacktest", tmp_path),
                "--format",
                "hftbacktest",
                *books,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and says in err and "one book" in err
    assert not list(tmp_path.iterdir())


def test_unknown_format_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "okxbook",
            "replay",
            L2_TBT,
            "--export",
            str(tmp_path / "o"),
            "--format",
            "csv",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "--format" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())
