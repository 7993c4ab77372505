"""okxbook.progress: silent unless on a terminal (or forced), throttled, and its ETA arithmetic."""

from __future__ import annotations

import gzip
import io
import shutil

import pytest

from okxbook.capture.progress import Progress, eta_seconds, format_duration, track_frames


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


def test_draws_on_a_terminal_and_when_forced():
    tty = TTY()
    clock = FakeClock()
    with Progress(total_bytes=1000, stream=tty, every=1, interval=0, clock=clock) as p:
        clock.t = 2.0
        p.update(5000, 250)
    text = tty.getvalue()
    assert text.startswith("\rreplay: 5,000 frames  2.5k frames/s  0.0/0.0 MiB 25%  ETA 0:06\x1b[K")
    assert text.endswith("in 0:02\x1b[K\n")  # final state, then the line is ended
    forced = io.StringIO()
    with Progress(stream=forced, enabled=True, every=1, interval=0, clock=clock) as p:
        p.update(7)
    assert "replay: 7 frames" in forced.getvalue()
    assert "ETA" not in forced.getvalue()  # no total: no ETA


def test_clock_read_only_every_n_frames_and_redraws_throttled():
    out, clock = io.StringIO(), FakeClock()
    p = Progress(stream=out, enabled=True, every=100, interval=0.25, clock=clock)
    reads0 = clock.reads
    for i in range(1, 1000):
        p.update(i)
    assert clock.reads - reads0 == 9  # at 100, 200, ..., 900
    assert out.getvalue().count("\r") == 1  # same instant: one redraw only
    clock.t = 0.3
    p.update(1100)
    assert out.getvalue().count("\r") == 2


@pytest.mark.parametrize(
    "elapsed, done, total, expected",
    [
        (10.0, 25, 100, 30.0),  # a quarter in 10 s: three quarters left take 30 s
        (4.0, 100, 100, 0.0),
        (4.0, 0, 100, None),  # nothing read: no rate yet
        (4.0, 50, None, None),  # total unknown
        (0.0, 50, 100, None),
        (5.0, 120, 100, 0.0),  # an overshooting estimate never goes negative
    ],
)
def test_eta_is_elapsed_times_remaining_over_done(elapsed, done, total, expected):
    assert eta_seconds(elapsed, done, total) == expected


def test_format_duration():
    assert format_duration(0) == "0:00"
    assert format_duration(75.4) == "1:15"
    assert format_duration(3725) == "1:02:05"


@pytest.mark.parametrize("compress", [False, True])
def test_track_frames_reports_on_disk_bytes_and_ends_exact(tmp_path, compress, synthetic_10x5k):
    stream = synthetic_10x5k
    path = tmp_path / ("f.jsonl.gz" if compress else "f.jsonl")
    if compress:
        with open(stream.path, "rb") as src, gzip.open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        shutil.copy(stream.path, path)
    per_file = stream.n_frames
    last_inside = (per_file - 1) // 1000 * 1000  # the last report (every=1000) before the boundary
    size = path.stat().st_size
    seen: list[tuple[int, int | None]] = []

    class Recorder(Progress):
        def update(self, frames: int, bytes_done: int | None = None) -> None:
            seen.append((frames, bytes_done))

    p = Recorder(total_bytes=2 * size, enabled=False)
    n = sum(1 for _ in track_frames([path, path], p, every=1000))
    assert n == 2 * per_file
    assert seen[-1] == (n, 2 * size) and (p.frames, p.bytes_done) == (n, 2 * size)
    assert (per_file, size) in seen  # exact at the file boundary
    inside = [b for f, b in seen if f < per_file]
    assert inside == sorted(inside) and 0 < inside[0] < inside[-1] <= size
    # the in-file estimate tracks the true share of the file within a few percent
    assert inside[-1] == pytest.approx(last_inside / per_file * size, rel=0.05)


def test_an_interrupted_replay_says_so_on_its_last_line():
    out, clock = TTY(), FakeClock()
    with pytest.raises(KeyboardInterrupt), Progress(stream=out, clock=clock, every=1) as bar:
        bar.update(10)
        clock.t = 12.0
        raise KeyboardInterrupt
    last = out.getvalue().rsplit("\r", 1)[-1]
    assert "10 frames" in last and "interrupted after 0:12" in last and " in 0:12" not in last
    out = TTY()
    with Progress(stream=out, clock=FakeClock(), every=1) as bar:
        bar.update(5)
    assert "interrupted" not in out.getvalue() and " in 0:00" in out.getvalue()
