"""A progress bar for long replays, drawn by tqdm: bytes with percentage, rate and ETA when the total
is known, the frames count beside them; a widget in Jupyter (``tqdm.auto``).

Owns choosing where and whether to draw, and ``track_frames``, a pass-through over capture files
that feeds it in batches: the bytes read, once per 64 KiB file read, and no code per frame
(``yield from``). It draws only on a terminal or in a Jupyter kernel (piped or redirected output
and CI logs stay clean) unless forced. ``update(frames, bytes)`` (parallel replay: per file) is
one integer comparison until ``every`` more frames have passed; tqdm redraws at most every
``interval`` s. On Ctrl-C or an error the bar stops where it was and says ``interrupted`` (or
``stopped by an error``); in Jupyter an unfinished bar turns red.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TextIO

from .files import CapturedFrame, iter_frames

__all__ = ["Progress", "track_frames"]


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (where tqdm.auto draws a widget)."""
    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _bar_class(notebook: bool) -> Any:
    if notebook:
        from tqdm.auto import tqdm as auto_tqdm  # the widget, or text if ipywidgets is missing

        return auto_tqdm
    from tqdm import tqdm

    return tqdm


def _si(x: float) -> str:
    for unit in ("", "k", "M", "G"):
        if abs(x) < 1000:
            return f"{x:.0f}{unit}" if not unit else f"{x:.1f}{unit}"
        x /= 1000
    return f"{x:.1f}T"


class Progress:
    """``with Progress(total_bytes=n) as p: p.update(frames, bytes_done)``.

    ``enabled``: None draws only if ``stream`` (default stderr) is a terminal or this runs in a
    Jupyter kernel; True/False force it. ``every``: frames between calls into tqdm (``update``
    is a counter compare in between); ``interval``: minimum seconds between redraws. The last
    state is drawn on exit: complete, or ``interrupted`` where a Ctrl-C stopped it.
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
        notebook = stream is None and _in_notebook()
        if enabled is None:
            try:
                enabled = notebook or self.stream.isatty()
            except (AttributeError, ValueError):  # closed or file-like without isatty
                enabled = False
        self.enabled: bool = bool(enabled)
        self.total_bytes = total_bytes
        self.unit = unit
        self.every = max(1, every)
        self._clock = clock
        self._start = clock()
        self._next_check = self.every  # frame count at which tqdm is told next
        self.frames = 0
        self.bytes_done: int | None = None
        self.ended: str | None = None
        """Why the work stopped before its end (``"interrupted"``), once closed; else None."""
        self._bar: Any = None
        if self.enabled:
            by_bytes = bool(total_bytes)
            self._bar = _bar_class(notebook)(
                total=total_bytes if by_bytes else None,
                desc=label,
                unit="B" if by_bytes else f" {unit}",
                unit_scale=by_bytes,
                unit_divisor=1024,
                file=None if notebook else self.stream,
                mininterval=interval,
                miniters=1,
                dynamic_ncols=True,
                leave=True,
            )
            self._by_bytes = by_bytes

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An honest last state: a replay stopped by Ctrl-C or an error says so, not "100%".
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close(ended="interrupted")
        else:
            self.close(ended="stopped by an error")

    def update(self, frames: int, bytes_done: int | None = None) -> None:
        """Report the running totals (not increments). Cheap: tqdm hears of it only when
        ``every`` more frames have passed."""
        if frames < self._next_check or not self.enabled:
            return
        self._next_check = frames + self.every
        self._show(frames, bytes_done)

    def add_bytes(self, n: int) -> None:
        """``n`` more bytes read, no frame count (``iter_frames``' ``on_read``: once per buffer
        read); the frames are given at the end (``finish``)."""
        if self.enabled:
            self._show(self.frames, (self.bytes_done or 0) + n)

    def _show(self, frames: int, bytes_done: int | None) -> None:
        self.frames = frames
        if bytes_done is not None:
            self.bytes_done = bytes_done
        bar = self._bar
        if self._by_bytes:
            done = min(self.bytes_done or 0, self.total_bytes or 0)
            if frames:
                elapsed = self._clock() - self._start
                rate = f", {_si(frames / elapsed)} {self.unit}/s" if elapsed > 0 else ""
                bar.set_postfix_str(f"{frames:,} {self.unit}{rate}", refresh=False)
            bar.update(done - bar.n)
        else:
            bar.update(frames - bar.n)

    def close(self, ended: str | None = None) -> None:
        """Draw the final state and end the bar (if enabled); later updates draw nothing.
        ``ended``: why the work stopped before its end (``"interrupted"``), said on the bar,
        which then stays where the work stopped."""
        self.ended = ended
        if not self.enabled:
            return
        self.enabled = False
        bar = self._bar
        if ended is None:
            self._show(self.frames, self.bytes_done)
        else:
            elapsed = self._clock() - self._start
            done = f"{self.frames:,} {self.unit}, " if self._by_bytes and self.frames else ""
            bar.set_postfix_str(f"{done}{ended} after {elapsed:.1f}s", refresh=False)
            bar.refresh()
        bar.close()

    def finish(self, frames: int, bytes_done: int | None = None) -> None:
        """Record the final totals without drawing (``close`` draws them)."""
        self.frames = frames
        self.bytes_done = bytes_done


# ---------------------------------------------------------------------------------------------------
# Feeding it from capture files


def track_frames(
    paths: Iterable[str | os.PathLike[str]],
    progress: Progress,
    on_problem: Callable[[str], None] | None = None,
    on_path: Callable[[str], None] | None = None,
) -> Iterator[CapturedFrame]:
    """``iter_frames`` over ``paths`` in order, telling ``progress`` the on-disk bytes read.

    The bytes come from the file reads (``iter_frames``' ``on_read``, a call per 64 KiB buffer),
    exact for plain and compressed files alike (``total_bytes`` should be
    ``sum(os.path.getsize(p))``); the frames pass through with ``yield from``, no Python code
    per frame. The frames count is the caller's to give at the end (``progress.finish``)."""
    for given in paths:
        path = os.fspath(given)
        if on_path is not None:
            on_path(path)
        yield from iter_frames(path, on_problem=on_problem, on_read=progress.add_bytes)
