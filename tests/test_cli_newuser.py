"""Commands tried as a new user would, with bad input (issue 9): each asks for something that cannot
be done and must say so (one line, non-zero exit, no traceback) instead of looking like success."""

from __future__ import annotations

import json
from pathlib import Path

from okxbook.cli import main

CAPTURE = (
    Path(__file__).parent / "data/okx-frames/bmoscon_cryptofeed/2022-05-13_books_3079107/OKX.ws.1.0"
)


def test_replay_window_after_the_capture_is_not_ok(capsys):
    code = main(["replay", "--json", str(CAPTURE), "--from", "2030-01-01"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and not report["ok"] and report["in_window"] == 0
    assert report["problems"] == ["nothing in window"]


def test_replay_window_inside_the_capture_is_ok(capsys):
    code = main(["replay", "--json", str(CAPTURE), "--from", "2022-05-13", "--to", "2022-05-14"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] and report["in_window"] == 290


def test_export_of_an_empty_window_fails(tmp_path, capsys):
    out = tmp_path / "x.csv.gz"
    args = ["replay", str(CAPTURE), "--from", "2030-01-01", "--export", str(out)]
    assert main([*args, "--format", "tardis"]) == 1
    assert "nothing in window" in capsys.readouterr().out


def test_parallel_replay_of_an_empty_window_fails(tmp_path, capsys):
    args = ["replay", str(CAPTURE), "--workers", "1", "--out-dir", str(tmp_path / "d")]
    assert main([*args, "--from", "2030-01-01"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "okxbook replay: no book frame falls inside --from/--to"
    assert main([*args, "--from", "2000-01-01"]) == 0
