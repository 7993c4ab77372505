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


TBT_CAPTURE = (
    Path(__file__).parent / "data/okx-frames/bmoscon_cryptofeed/2022-02-28_books-l2-tbt_ed5b535"
    "/OKX.ws.1.0"
)


def test_serve_of_a_capture_without_seq_ids_feeds_sbe_clients():
    """`okxbook serve` of a 2022 books-l2-tbt capture (no seqIds) to `--sbe` clients: the books
    went live (they were refused as 'negative prevSeqId' and books-sbe answered HTTP 500)."""
    import asyncio

    from okxbook import okx
    from okxbook.capture.serve import CaptureServer
    from okxbook.feed import Feed
    from okxbook.feed.auth import Credentials

    key = ("books-l2-tbt", "ELON-USDT")

    async def main():
        async with CaptureServer(TBT_CAPTURE, speed=None, loop_forever=True) as srv:
            url = srv.ws_url.replace(okx.WS_PUBLIC_PATH, okx.SBE_WS_PATH)
            creds = Credentials("k", "s", "p")
            async with Feed(
                [key], encoding="sbe", url=url, rest_url=srv.rest_url, credentials=creds
            ) as feed:
                await feed.wait_live(timeout=10)
                assert feed.status(*key).state == "live"
                assert srv.sbe.rest_requests and srv.sbe.rest_requests[0][1] is None

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_closed_feed_refuses_streams_and_subscriptions_instead_of_waiting_forever():
    import asyncio

    import pytest

    from okxbook.feed import Feed
    from okxbook.testing import LocalExchange

    async def main():
        async with LocalExchange(interval=0.01) as ex:
            async with Feed(["BTC-USDT"], url=ex.ws_url, rest_url=ex.rest_url) as feed:
                await feed.wait_live(timeout=10)
        for make in (feed.deltas, feed.tops):
            with pytest.raises(RuntimeError, match="the feed is closed"):
                make()
        with pytest.raises(RuntimeError, match="the feed is closed"):
            await feed.subscribe(["ETH-USDT"])
        assert ("books", "ETH-USDT") not in feed.subs

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_refused_publisher_leaves_no_segment_behind():
    import pytest

    from okxbook.errors import ShareError
    from okxbook.share import Publisher, SharedBooks

    name = f"nu-refused-{__import__('os').getpid()}"
    for levels in (0, -1):
        with pytest.raises(ValueError, match="levels must be >= 1"):
            Publisher(name, [("books", "BTC-USDT")], levels=levels)
    with pytest.raises(ShareError, match="no shared book segment"):
        SharedBooks(name)
    with Publisher(name, [("books", "BTC-USDT")], levels=5) as pub:
        assert pub.levels == 5


def test_zmq_subscriber_with_nothing_publishing_says_so_when_it_times_out():
    import asyncio
    import socket

    import pytest

    pytest.importorskip("zmq")
    from okxbook.publish.zmq import zmq_subscriber

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main():
        sub = zmq_subscriber(f"tcp://127.0.0.1:{port}")
        sub.start()
        try:
            with pytest.raises(TimeoutError, match=r"0 messages applied.*publisher running"):
                await sub.wait_for(lambda: sub.status(("books", "BTC-USDT")) == "live", 0.3)
            assert sub.status(("books", "BTC-USDT")) == "unknown"
        finally:
            await sub.close()

    asyncio.run(main())


def test_demo_on_an_80_column_terminal_fits_and_shows_no_latency_from_2022():
    """On a terminal the demo's latency line read `network 143718558970.9ms` (now minus the
    capture's 2022 ts) and wrapped over four lines of an 80-column screen."""
    import io
    import re

    from okxbook.cli.watch import demo

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    assert demo(out=out) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()).replace("\r", "\n")
    assert "latency p50/p99/max" in text and "apply " in text
    assert "network" not in text and "clock offset" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_sbe_without_its_channel_or_login_names_the_flag_and_the_variables(capsys, monkeypatch):
    for name in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    for cmd in (["watch"], ["record", "--out", "unused"], ["publish", "nu-sbe"]):
        assert main([*cmd, "BTC-USDT", "--sbe"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith(
            "--sbe carries bbo-tbt and books-l2-tbt only, not books: add "
            "--channel books-l2-tbt (or bbo-tbt)"
        ), err
    monkeypatch.setenv("OKX_API_KEY", "k")
    assert main(["watch", "BTC-USDT", "--sbe", "--channel", "bbo-tbt"]) == 2
    assert capsys.readouterr().err.strip() == (
        "okxbook watch: --sbe needs an OKX login: set OKX_SECRET_KEY, OKX_PASSPHRASE"
    )
    assert not Path("unused").exists()


def test_an_empty_or_spaced_instid_is_refused_at_once(capsys):
    """`okxbook watch ''` waited 30 s for 'books/' to go live against the real exchange."""
    import time

    import pytest

    for cmd in (["watch"], ["record", "--out", "unused"], ["publish", "nu-inst"]):
        for bad in ("", "BTC USDT"):
            started = time.monotonic()
            with pytest.raises(SystemExit) as exc:
                main([*cmd, bad])
            assert exc.value.code == 2 and time.monotonic() - started < 2
            err = capsys.readouterr().err.strip().splitlines()[-1]
            assert err.endswith(f"argument INST: not an instrument id (e.g. BTC-USDT): {bad!r}")


def test_replay_book_selection_of_an_sbe_recording_takes_its_binary_frames(tmp_path, capsys):
    """`replay --book` matched frames by their JSON `arg`: on an SBE recording (binary frames,
    instruments by instIdCode) it took none and said `no book`."""
    import base64

    from okxbook.events import inst_id_code_frame
    from okxbook.testing import synthetic_stream
    from okxbook.testing.sbe import SbeConverter

    conv = SbeConverter()
    insts = ["BTC-USDT", "ETH-USDT"]
    lines = [inst_id_code_frame(i, conv.code_of(i)) for i in insts]
    for frame in synthetic_stream(insts, 60, channel="books-l2-tbt"):
        lines += [b"sbe:" + base64.b64encode(f) for f in conv.convert(frame)]
    path = tmp_path / "rec.tardis"
    path.write_bytes(
        b"".join(
            b"2026-11-25T08:06:%02d.0000000Z " % (n // 100) + ln + b"\n"
            for n, ln in enumerate(lines)
        )
    )
    assert main(["replay", "--json", str(path)]) == 0
    whole = json.loads(capsys.readouterr().out)["books"]
    assert main(["replay", "--json", str(path), "--book", "books-l2-tbt/ETH-USDT"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert list(one["books"]) == ["books-l2-tbt/ETH-USDT"] and one["filtered"] > 0
    assert one["books"]["books-l2-tbt/ETH-USDT"] == whole["books-l2-tbt/ETH-USDT"]


def test_watch_trusts_the_ca_file_serve_tls_prints(tmp_path, capsys):
    """`okxbook serve --tls` prints a CA file to trust, but watch/record/publish had no way to
    trust it (the error said `ca_file=`, a Python argument): `--ca-file` does it."""
    import asyncio
    import threading

    import pytest

    pytest.importorskip("trustme")
    from okxbook.capture.serve import CaptureServer

    junk = tmp_path / "junk.pem"
    junk.write_text("junk\n")
    assert main(["watch", "BTC-USDT", "--ca-file", str(junk)]) == 2
    assert "--ca-file" in capsys.readouterr().err.strip()
    assert main(["watch", "BTC-USDT", "--ca-file", str(tmp_path / "none.pem")]) == 2
    assert "not a readable file" in capsys.readouterr().err

    ready, done = threading.Event(), threading.Event()
    box = {}

    def serve() -> None:
        async def run() -> None:
            async with CaptureServer(CAPTURE, loop_forever=True, tls=True) as srv:
                box["srv"] = srv
                ready.set()
                while not done.is_set():
                    await asyncio.sleep(0.05)

        asyncio.run(run())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(15)
    srv = box["srv"]
    try:
        args = ["watch", "BTC-USDT", "--url", srv.ws_url, "--rest-url", srv.rest_url]
        code = main([*args, "--ca-file", srv.tls.ca_file, "--duration", "2"])
        assert code == 0, capsys.readouterr().err
    finally:
        done.set()
        thread.join(10)


def test_serve_takes_a_recording_directory_like_replay(tmp_path, capsys):
    """`okxbook serve DIR` said `[Errno 21] Is a directory` where `replay DIR` reads the
    recording in it."""
    import shutil
    import signal
    import subprocess
    import sys

    assert main(["serve", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"okxbook serve: {tmp_path} is a directory with no capture files in it"
    )
    shutil.copy(CAPTURE, tmp_path / "okx-2022-05-13T08.tardis")
    proc = subprocess.Popen(
        [sys.executable, "-m", "okxbook", "serve", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("ws://127.0.0.1:"), proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_serve_of_an_sbe_recording_says_it_plays_json_captures(tmp_path, capsys):
    """It started, then refused every subscribe with 60018 (it finds books by their JSON arg)."""
    import base64

    from okxbook.testing import synthetic_stream
    from okxbook.testing.sbe import SbeConverter

    conv = SbeConverter()
    frames = [
        f
        for fr in synthetic_stream(["BTC-USDT"], 5, channel="books-l2-tbt")
        for f in conv.convert(fr)
    ]
    path = tmp_path / "rec.tardis"
    path.write_bytes(
        b"".join(b"2026-11-25T08:06:01.0000000Z sbe:" + base64.b64encode(f) + b"\n" for f in frames)
    )
    assert main(["serve", str(path), "--port", "0"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"okxbook serve: {path}: an SBE (binary) recording; serve plays JSON captures "
        "(to JSON and SBE clients alike)"
    )
