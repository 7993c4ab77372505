"""Errors a person can act on (issue 9): bad values name their flag, a missing optional extra
prints the pip command before any work, Ctrl-C is one line and exit 130, replay problems name the
file and line, and no bad input ends in a traceback."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from okxbook.capture.replay import sample_capture
from okxbook.cli import main


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "okxbook", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["serve", "x.jsonl", "--port", "99999"], "--port"),
        (["replay", "--workers", "-1", "--out-dir", "d"], "--workers"),
        (["watch", "BTC-USDT", "--duration", "nan"], "--duration"),
        (["serve", "x.jsonl", "--speed", "0"], "--speed"),
        (["plot", "x.jsonl", "--out", "p.png", "--bps", "abc"], "--bps"),
        (["watch", "BTC-USDT", "--url", ""], "--url"),
        (["record", "BTC-USDT", "--out", "d", "--url", "http://example.com"], "--url"),
    ],
)
def test_bad_values_name_the_flag_and_exit_2(args, flag):
    proc = run(*args)
    assert proc.returncode == 2
    assert flag in proc.stderr and "Traceback" not in proc.stderr


def test_version():
    proc = run("--version")
    assert proc.returncode == 0
    from okxbook import __version__

    assert proc.stdout.strip() == f"okxbook {__version__}"


def block(monkeypatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError


@pytest.mark.parametrize(
    ("module", "args", "pip"),
    [
        ("pyarrow", ["replay", "--export", "{tmp}/x.parquet"], "okxbook[research]"),
        ("matplotlib", ["plot", "{sample}", "--out", "{tmp}/p.png"], "okxbook[research]"),
        ("zstandard", ["record", "BTC-USDT", "--out", "{tmp}/r", "--compression", "zstd"], "zstd"),
        ("picows", ["watch", "BTC-USDT", "--transport", "picows"], "okxbook[picows]"),
    ],
)
def test_a_missing_extra_prints_the_pip_command_before_any_work(
    module, args, pip, monkeypatch, tmp_path, capsys
):
    block(monkeypatch, module)
    args = [a.format(tmp=tmp_path, sample=sample_capture()) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"needs {module}" in err and "pip install" in err and pip in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing was started or written


def test_export_checks_its_output_path_before_replaying(tmp_path, capsys):
    assert main(["replay", "--export", str(tmp_path / "no/such/dir/x.parquet")]) == 2
    captured = capsys.readouterr()
    assert "--export" in captured.err and "does not exist" in captured.err
    assert captured.out == ""  # no replay report


def test_replay_errors_name_the_file_and_line(tmp_path, capsys):
    lines = gzip.decompress(Path(sample_capture()).read_bytes()).splitlines(keepends=True)
    # corrupt one book update's checksum: the replay names this file and that line
    i = next(n for n, line in enumerate(lines) if b'"update"' in line)
    bad = (
        lines[i]
        .replace(b'"checksum": ', b'"checksum": 1', 1)
        .replace(b'"checksum":', b'"checksum":1', 1)
    )
    assert bad != lines[i]
    lines[i] = bad
    corrupt = tmp_path / "corrupt.ws"
    corrupt.write_bytes(b"".join(lines))
    assert main(["replay", "--json", str(corrupt)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert any(e.startswith(f"{corrupt}:{i + 1}: ") for e in report["errors"])


def test_a_cut_last_line_is_an_okxbook_message_not_a_python_warning(tmp_path):
    data = gzip.decompress(Path(sample_capture()).read_bytes())
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(data[: len(data) - 40])
    proc = run("replay", str(cut))
    assert proc.returncode == 1
    assert "Warning" not in proc.stderr and "warn" not in proc.stderr.lower()
    assert f"{cut}:" in proc.stdout and "half-written last line" in proc.stdout


def test_dash_reads_stdin_and_a_directory_reads_the_recording_in_it(tmp_path):
    data = gzip.decompress(Path(sample_capture()).read_bytes())
    from_stdin = run("replay", "--json", "-", stdin=data)
    assert from_stdin.returncode == 0, from_stdin.stderr
    whole = json.loads(run("replay", "--json", sample_capture()).stdout)
    assert json.loads(from_stdin.stdout)["books"] == whole["books"]
    (tmp_path / "rec").mkdir()
    half = len(data.splitlines()) // 2
    lines = data.splitlines(keepends=True)
    (tmp_path / "rec" / "a-1.jsonl").write_bytes(b"".join(lines[:half]))
    (tmp_path / "rec" / "a-2.jsonl").write_bytes(b"".join(lines[half:]))
    from_dir = run("replay", "--json", str(tmp_path / "rec"))
    assert from_dir.returncode == 0, from_dir.stderr
    assert json.loads(from_dir.stdout)["books"] == whole["books"]
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run("replay", str(empty))
    assert proc.returncode == 2 and "no capture files" in proc.stderr


def test_missing_file_is_one_line_exit_2(tmp_path):
    proc = run("replay", str(tmp_path / "nope.jsonl"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nope.jsonl" in proc.stderr


def test_ctrl_c_prints_one_line_and_exits_130():
    proc = subprocess.Popen(
        [sys.executable, "-m", "okxbook", "replay", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # replay waits on stdin: interrupt it there
    time.sleep(2.0)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip() == "okxbook replay: interrupted"


def test_log_level_and_quiet(capsys):
    port_args = ["--url", "ws://127.0.0.1:9/ws", "--duration", "1"]
    main(["watch", "BTC-USDT", *port_args, "--log-level", "info"])
    loud = capsys.readouterr().err
    main(["watch", "BTC-USDT", *port_args, "--quiet"])
    quiet = capsys.readouterr().err
    assert " WARNING okxbook.feed" in loud or " INFO okxbook" in loud
    assert "WARNING" not in quiet and "INFO" not in quiet


def test_files_given_out_of_time_order_are_warned_about(tmp_path, capsys):
    from okxbook.capture import iter_frames
    from okxbook.capture.recorder import write_capture

    frames = [c.frame for c in iter_frames(sample_capture())]
    start = 1_795_597_200 * 10**9 - (len(frames) // 2) * 10_000_000
    first, second = write_capture(
        tmp_path, [(start + i * 10_000_000, f) for i, f in enumerate(frames)], compression="gzip"
    )
    assert main(["replay", "--json", str(first), str(second)]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []
    main(["replay", "--json", str(second), str(first)])
    (warning,) = json.loads(capsys.readouterr().out)["warnings"]
    assert str(second.name) in warning or str(first) in warning
    assert "out of time order" in warning
