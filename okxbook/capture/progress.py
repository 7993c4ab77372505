"""A progress line on stderr for long replays: frames, rate, and an ETA when the byte total is known.

Owns the one-line terminal display and nothing else, plus ``track_frames``, a pass-through over
capture files that feeds it. It draws only when its stream is a terminal (piped or redirected
output, CI logs and Jupyter stay clean) unless forced, redraws a few times a second at most, and
costs one integer comparison per ``update`` call in between: the clock is read only every ``every``
frames. No dependency: ``\\r`` and an ANSI erase-to-end-of-line.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TextIO

from .files import CapturedFrame, iter_frames

__all__ = ["Progress", "eta_seconds", "format_duration", "track_frames"]


def eta_seconds(elapsed: float, bytes_done: int | None, total_bytes: int | None) -> float | None:
    """Seconds left at the average rate so far: ``elapsed * (total - done) / done``; None when the
    total is unknown or nothing is done yet (no rate to extrapolate)."""
    if not total_bytes or not bytes_done or elapsed <= 0:
        return None
    return max(0.0, elapsed * (total_bytes - bytes_done) / bytes_done)


def format_duration(seconds: float) -> str:
    """``75.4`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``."""
    s = int(seconds + 0.5)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _si(x: float) -> str:
    for unit in ("", "k", "M", "G"):
        if abs(x) < 1000:
            return f"{x:.0f}{unit}" if not unit else f"{x:.1f}{unit}"
        x /= 1000
    return f"{x:.1f}T"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


class Progress:
    """``with Progress(total_bytes=n) as p: p.update(frames, bytes_done)``.

    ``enabled``: None draws only if ``stream`` (default stderr) is a terminal; True/False force it.
    ``every``: frames between clock reads (``update`` is a counter compare in between);
    ``interval``: minimum seconds between redraws. The last state is drawn on exit, with a newline.
    """

    def __init__(
        self,
        total_bytes: int | None = None,
        *,
        enabled: bool | None = None,
        stream: TextIO | None = None,
        label: str = "replay",
        unit: str = "frames",
        every: int = 4096,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError):  # closed or file-like without isatty
                enabled = False
        self.enabled: bool = bool(enabled)
        self.total_bytes = total_bytes
        self.label = label
        self.unit = unit
        self.every = max(1, every)
        self.interval = interval
        self._clock = clock
        self._start = clock()
        self._next_check = self.every  # frame count at which the clock is read next
        self._last_draw = float("-inf")
        self.frames = 0
        self.bytes_done: int | None = None
        self._ended: str | None = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An honest last line: a replay stopped by Ctrl-C or an error says so, not "in 0:12".
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close(ended="interrupted")
        else:
            self.close(ended="stopped by an error")

    def update(self, frames: int, bytes_done: int | None = None) -> None:
        """Report the running totals (not increments). Cheap: redraws at most every ``interval``
        seconds, and looks at the clock only when ``every`` more frames have passed."""
        if frames < self._next_check or not self.enabled:
            return
        self._next_check = frames + self.every
        self.frames = frames
        self.bytes_done = bytes_done
        now = self._clock()
        if now - self._last_draw >= self.interval:
            self._last_draw = now
            self._draw(now, final=False)

    def close(self, ended: str | None = None) -> None:
        """Draw the final state and end the line (if enabled); later updates draw nothing.
        ``ended``: why the work stopped before its end (``"interrupted"``), shown instead of
        the total time."""
        if self.enabled:
            self._ended = ended
            self._draw(self._clock(), final=True)
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def finish(self, frames: int, bytes_done: int | None = None) -> None:
        """Record the final totals without drawing (``close`` draws them)."""
        self.frames = frames
        self.bytes_done = bytes_done

    def line(self, now: float | None = None, final: bool = False) -> str:
        """The text of the progress line at time ``now``."""
        now = self._clock() if now is None else now
        elapsed = now - self._start
        parts = [f"{self.label}: {self.frames:,} {self.unit}"]
        if elapsed > 0:
            parts.append(f"{_si(self.frames / elapsed)} {self.unit}/s")
        if self.bytes_done is not None:
            if self.total_bytes:
                pct = 100.0 * min(self.bytes_done, self.total_bytes) / self.total_bytes
                parts.append(f"{_mib(self.bytes_done)}/{_mib(self.total_bytes)} MiB {pct:.0f}%")
            else:
                parts.append(f"{_mib(self.bytes_done)} MiB")
        if final and self._ended:
            parts.append(f"{self._ended} after {format_duration(elapsed)}")
        elif final:
            parts.append(f"in {format_duration(elapsed)}")
        else:
            eta = eta_seconds(elapsed, self.bytes_done, self.total_bytes)
            if eta is not None:
                parts.append(f"ETA {format_duration(eta)}")
        return "  ".join(parts)

    def _draw(self, now: float, final: bool) -> None:
        # \r back to column 0, ESC[K erases what a longer previous line left behind.
        self.stream.write("\r" + self.line(now, final) + "\x1b[K")
        self.stream.flush()


# ---------------------------------------------------------------------------------------------------
# Feeding it from capture files


def _uncompressed_size(path: str, size: int) -> int | None:
    """Best guess of the decompressed length, to turn bytes of frames read into a fraction of the
    file: the size itself for plain files; gzip's ISIZE trailer (RFC 1952 §2.3.1: the length mod
    2**32 of the *last* member) when it is plausible; a zstd frame's declared content size; else
    None (progress then advances file by file)."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
        if magic[:2] == b"\x1f\x8b":
            if size < 18:
                return None
            fh.seek(-4, os.SEEK_END)
            isize = struct.unpack("<I", fh.read(4))[0]
            # Smaller than the compressed file: a >4 GiB file wrapped, or a short last member of a
            # multi-member file. Either way it says nothing about the whole.
            return isize if isize >= size else None
        if magic == b"\x28\xb5\x2f\xfd":
            try:
                import zstandard
            except ImportError:
                return None
            fh.seek(0)
            try:
                n = zstandard.frame_content_size(fh.read(18))
            except zstandard.ZstdError:
                return None
            return n if n > 0 else None  # -1: not declared (streaming writers)
    return size


def track_frames(
    paths: Iterable[str | os.PathLike[str]],
    progress: Progress,
    every: int = 1024,
    on_problem: Callable[[str], None] | None = None,
    on_path: Callable[[str], None] | None = None,
) -> Iterator[CapturedFrame]:
    """``iter_frames`` over ``paths`` in order, reporting to ``progress`` every ``every`` frames.

    Bytes are on-disk bytes (what ``total_bytes`` should count: ``sum(os.path.getsize(p))``): exact
    at each file boundary, and inside a file the share of decompressed frame bytes read so far
    applied to its on-disk size (an estimate: line prefixes and skipped lines are not counted)."""
    frames = 0
    done_before = 0  # on-disk bytes of the files already finished
    update = progress.update
    for given in paths:
        path = os.fspath(given)
        if on_path is not None:
            on_path(path)
        size = os.path.getsize(path)
        full = _uncompressed_size(path, size)
        scale = size / full if full else 0.0
        read = 0  # decompressed bytes of frames (+ newline) yielded from this file
        countdown = every
        for captured in iter_frames(path, on_problem=on_problem):
            yield captured
            frames += 1
            read += len(captured.frame) + 1
            countdown -= 1
            if not countdown:
                countdown = every
                update(frames, done_before + min(size, int(read * scale)))
        done_before += size
        update(frames, done_before)
    progress.finish(frames, done_before)
