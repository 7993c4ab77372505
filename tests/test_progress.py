"""okxbook.progress: silent unless on a terminal (or forced), throttled, and its ETA arithmetic."""

from __future__ import annotations

import gzip
import io
import shutil

import pytest

from okxbook.capture.progress import Progress, track_frames


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.t


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_stream_is_not_a_terminal():
    out = io.StringIO()  # a pipe or file: isatty() is False
    with Progress(total_bytes=100, stream=out, every=1, interval=0) as p:
        for i in range(1, 50):
            p.update(i, i)
    assert not p.enabled and out.getvalue() == ""


def test_silent_on_captured_stderr_by_default(capsys):
    with Progress(total_bytes=100, every=1, interval=0) as p:  # stderr is pytest's capture
        p.update(10, 10)
    assert capsys.readouterr().err == ""


def test_draws_a_tqdm_bar_on_a_terminal_and_when_forced():
    tty = TTY()
    clock = FakeClock()
    with Progress(total_bytes=4096, stream=tty, every=1, interval=0, clock=clock) as p:
        clock.t = 2.0
        p.update(5000, 1024)
        p.finish(8000, 4096)  # what track_frames does at its end
    text = tty.getvalue()
    # tqdm's bar: label, percentage, bytes done/total; our frames count and rate beside it
    assert (
        "replay:  25%|" in text and "1.00k/4.00k" in text and "5,000 frames, 2.5k frames/s" in text
    )
    last = text.rsplit("\r", 1)[-1]
    assert "replay: 100%|" in last and "8,000 frames" in last  # ends complete
    assert text.endswith("\n")
    forced = io.StringIO()
    with Progress(stream=forced, enabled=True, every=1, interval=0, clock=clock) as p:
        p.update(7)
    assert "replay: 7 frames" in forced.getvalue() and "%" not in forced.getvalue()  # no total


def test_tqdm_is_called_only_every_n_frames():
    out = TTY()
    p = Progress(stream=out, every=100, interval=0)
    calls = []
    real = p._bar.update
    p._bar.update = lambda n: (calls.append(n), real(n))
    for i in range(1, 1000):
        p.update(i)
    assert len(calls) == 9 and p._bar.n == 900  # at 100, 200, ..., 900
    p.close()
    assert p._bar.n == 900 and not p.enabled
    p.update(5000)  # after close: nothing
    assert len(calls) == 10  # the close's own final update (of 0) only


def test_in_jupyter_the_bar_is_tqdm_auto_without_a_terminal(monkeypatch):
    import okxbook.capture.progress as progress

    made = []

    class FakeBar:
        n = 0

        def __init__(self, **kw):
            made.append(kw)

        def update(self, n):
            self.n += n

        def set_postfix_str(self, *a, **k):
            pass

        def refresh(self):
            pass

        def close(self):
            made.append("closed")

    monkeypatch.setattr(progress, "_in_notebook", lambda: True)
    monkeypatch.setattr(progress, "_bar_class", lambda notebook: FakeBar if notebook else None)
    with Progress(total_bytes=10, every=1) as p:  # stderr is no terminal here: Jupyter draws
        p.update(3, 5)
    assert p._bar.n == 5 and made[0]["file"] is None and made[-1] == "closed"
    assert progress._bar_class.__name__  # the real one picks tqdm.auto in a kernel:
    monkeypatch.undo()
    from tqdm.auto import tqdm as auto_tqdm

    assert progress._bar_class(True) is auto_tqdm


@pytest.mark.parametrize("compress", [False, True])
def test_track_frames_reports_on_disk_bytes_a_buffer_at_a_time_and_ends_exact(
    tmp_path, compress, synthetic_10x5k
):
    stream = synthetic_10x5k
    path = tmp_path / ("f.jsonl.gz" if compress else "f.jsonl")
    if compress:
        with open(stream.path, "rb") as src, gzip.open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        shutil.copy(stream.path, path)
    size = path.stat().st_size
    seen: list[int] = []

    class Recorder(Progress):
        def add_bytes(self, n: int) -> None:
            seen.append((seen[-1] if seen else 0) + n)

    p = Recorder(total_bytes=2 * size, enabled=False)
    frames = list(track_frames([path, path], p))
    assert [f.frame for f in frames] == stream.frames * 2  # passed through untouched
    assert seen == sorted(seen) and seen[-1] == 2 * size
    assert size in seen  # exact at the file boundary
    # batched: one report per 64 KiB read from disk, not one per frame
    assert len(seen) <= 2 * (size // 65536 + 2) < len(frames) / 10


def test_replay_with_a_bar_shows_bytes_to_100_percent_and_the_frames_at_the_end(
    tmp_path, synthetic_10x5k, monkeypatch
):
    import sys

    from okxbook.capture.replay import replay

    err = TTY()
    monkeypatch.setattr(sys, "stderr", err)
    report = replay([synthetic_10x5k.path], progress=True)
    last = err.getvalue().rstrip("\n").rsplit("\r", 1)[-1]
    assert report.frames == synthetic_10x5k.n_frames
    assert "replay: 100%|" in last and f"{report.frames:,} frames" in last


def test_an_interrupted_replay_says_so_on_its_last_line():
    out, clock = TTY(), FakeClock()
    with (
        pytest.raises(KeyboardInterrupt),
        Progress(total_bytes=100, stream=out, clock=clock, every=1, interval=0) as bar,
    ):
        bar.update(10, 40)
        clock.t = 12.0
        raise KeyboardInterrupt
    last = out.getvalue().rstrip("\n").rsplit("\r", 1)[-1]
    assert "40%" in last and "10 frames" in last and "interrupted after 12.0s" in last
    assert "100%" not in last and bar.ended == "interrupted"
    out = TTY()
    with Progress(total_bytes=100, stream=out, clock=FakeClock(), every=1) as bar:
        bar.update(5, 100)
    assert "interrupted" not in out.getvalue() and "100%" in out.getvalue()
