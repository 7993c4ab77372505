"""The command line's exit codes tell the truth (issue 9, item 6): a replay that read nothing, read
updates with no book, or lost the end of a file, and a watch/record that never got a live book,
exit non-zero and say why."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from okxbook.capture.replay import sample_capture
from okxbook.cli import main

UPDATE = (
    b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":'
    b'[["30000.1","1","0","1"]],"bids":[],"ts":"1","checksum":0,"seqId":2,"prevSeqId":1}]}\n'
)


def replay_json(capsys, *paths: Path) -> tuple[int, dict]:
    code = main(["replay", "--json", *map(str, paths)])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_replay_of_an_empty_file_fails_with_no_book(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    code, report = replay_json(capsys, empty)
    assert code != 0 and not report["ok"] and report["no_book"]
    assert "no book" in report["problems"]


def test_replay_of_updates_only_fails_with_no_book(tmp_path, capsys):
    updates = tmp_path / "updates.jsonl"
    updates.write_bytes(UPDATE * 3)
    code, report = replay_json(capsys, updates)
    assert code != 0 and not report["ok"] and report["no_book"]
    assert report["unbooked"] == ["books/BTC-USDT"] and report["before_snapshot"] == 3
    assert any("updates.jsonl:1:" in e for e in report["errors"])


def test_replay_of_a_gzip_cut_in_half_fails_as_truncated(tmp_path, capsys):
    data = Path(sample_capture()).read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(data[: len(data) // 2])
    code, report = replay_json(capsys, cut)
    assert code != 0 and not report["ok"] and report["truncated"]
    assert "truncated" in report["problems"]
    assert any(e.startswith(f"{cut}:") for e in report["errors"])
    # the table says it too
    assert main(["replay", str(cut)]) != 0
    assert "truncated" in capsys.readouterr().out


def test_replay_of_the_whole_sample_is_ok(capsys):
    code, report = replay_json(capsys, Path(sample_capture()))
    assert code == 0 and report["ok"] and report["problems"] == []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", ["watch", "record"])
def test_watch_and_record_against_a_dead_endpoint_exit_non_zero(command, tmp_path, capsys):
    port = closed_port()
    args = [command, "BTC-USDT", "--url", f"ws://127.0.0.1:{port}/ws/v5/public"]
    args += ["--rest-url", f"http://127.0.0.1:{port}", "--duration", "1.5"]
    if command == "record":
        args += ["--out", str(tmp_path / "rec")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "books/BTC-USDT never went live" in err


def test_watch_gives_up_when_nothing_goes_live(capsys):
    port = closed_port()
    code = main(["watch", "BTC-USDT", "--url", f"ws://127.0.0.1:{port}", "--connect-timeout", "1"])
    assert code == 1
    assert "no book went live within 1 s" in capsys.readouterr().err


def test_replay_of_a_zstd_capture_whose_last_frame_was_cut_fails_as_truncated(tmp_path, capsys):
    zstandard = pytest.importorskip("zstandard")
    import gzip

    lines = gzip.decompress(Path(sample_capture()).read_bytes()).splitlines(keepends=True)
    cctx = zstandard.ZstdCompressor()
    # two members, as the recorder writes one a second; a crash cut the last one
    data = cctx.compress(b"".join(lines[:300])) + cctx.compress(b"".join(lines[300:]))
    cut = tmp_path / "cut.tardis.zst"
    cut.write_bytes(data[:-10])
    code, report = replay_json(capsys, cut)
    assert code != 0 and report["truncated"] and "truncated" in report["problems"]
    whole = tmp_path / "whole.tardis.zst"
    whole.write_bytes(data)
    code, report = replay_json(capsys, whole)
    _, reference = replay_json(capsys, Path(sample_capture()))
    assert code == 0 and report["ok"] and report["books"] == reference["books"]
