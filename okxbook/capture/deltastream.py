"""The level changes of a replay, in chunks, for the delta-based exports (delta table, tardis CSV,
hftbacktest, nautilus).

Owns the cut between the core's ``DeltaRecorder`` (one ``DELTA_DTYPE`` row per level change and one
``FRAME_DTYPE`` row per frame, written in C from Book's two level loops) and the writers: it
attaches a batch recorder to the replay's ``Books``, keeps the frames replay hands over
(``observe``: the selected books, inside the time window) and passes a :class:`DeltaChunk` to the
writer every ``batch_rows`` rows, so memory stays bounded whatever the capture's length. No Python
object is made per level: chunks are numpy arrays, filtered and renumbered whole.

Every book's first kept frame opens with the book as it then stands (``Book.snapshot_deltas``: a
clear and an insert per level, marked a snapshot) unless that frame is itself a snapshot, so an
export that starts at ``--from``, or of a recording file that opens with carried books, always
starts from a whole book; a consumer applying the rows in order holds okxbook's books.

``text=True`` records the received price and size strings with the rows (``DeltaRecorder(text=True)``:
the rows are then ``DELTA_TEXT_DTYPE``); the delta table asks for them, the other formats do not.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from okxbook._book import Book
from okxbook._books import Books
from okxbook._deltas import DELTA_DTYPE, FRAME_DTYPE, DeltaRecorder

from .replay import ReplayReport, replay
from .selection import Selection

__all__ = ["DeltaChunk", "DeltaStream", "replay_deltas"]

PathLike = str | os.PathLike[str]


class DeltaChunk(NamedTuple):
    """Kept frames and their rows: ``rows["frame"]`` indexes ``frames``; ``frames["book"]``
    indexes ``books`` (``(channel, instId)``); ``first_frame`` is the number of frames kept before
    this chunk (so ``first_frame + rows["frame"]`` numbers frames across the export)."""

    frames: npt.NDArray[np.void]
    rows: npt.NDArray[np.void]
    books: list[tuple[str, str]]
    first_frame: int


def _select(
    frames: npt.NDArray[np.void], rows: npt.NDArray[np.void], keep: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.void], npt.NDArray[np.void]]:
    """The frames where ``keep`` and their rows, renumbered."""
    new_index = np.cumsum(keep) - 1
    kept_rows = rows[keep[rows["frame"]]] if len(rows) else rows
    kept_rows["frame"] = new_index[kept_rows["frame"]]
    kept = frames[keep]
    return kept, kept_rows


def _concat(
    parts: list[tuple[npt.NDArray[np.void], npt.NDArray[np.void]]],
) -> tuple[npt.NDArray[np.void], npt.NDArray[np.void]]:
    n_frames = 0
    for f, r in parts:
        r["frame"] += n_frames
        n_frames += len(f)
    frames = np.concatenate([f for f, _ in parts]) if parts else np.empty(0, FRAME_DTYPE)
    rows = np.concatenate([r for _, r in parts]) if parts else np.empty(0, DELTA_DTYPE)
    # first_row/n_rows from the rows themselves: the single source of truth after renumbering.
    if len(frames):
        frames["n_rows"] = np.bincount(rows["frame"], minlength=len(frames)) if len(rows) else 0
        frames["first_row"] = np.cumsum(frames["n_rows"]) - frames["n_rows"]
    return frames, rows


class DeltaStream:
    """A ``FrameSink`` for ``replay``: records the level changes of ``books`` and gives them to
    ``on_chunk`` in chunks of about ``batch_rows`` rows. Call ``finish()`` after the replay."""

    def __init__(
        self,
        books: Books,
        on_chunk: Callable[[DeltaChunk], None],
        *,
        batch_rows: int = 500_000,
        text: bool = False,
    ) -> None:
        self.text = text
        self.recorder = DeltaRecorder(
            batch=True, capacity=min(batch_rows, 1 << 20) + 1024, text=text
        )
        books.record_deltas(self.recorder)
        self.on_chunk = on_chunk
        self.batch_rows = batch_rows
        self.frames_out = 0
        self.rows_out = 0
        self._base = 0  # export-wide number of the recorder's frame 0
        self._keep: list[int] = []
        self._starts: dict[int, tuple[npt.NDArray[np.void], npt.NDArray[np.void]]] = {}
        self._started: set[Book] = set()

    def observe(self, book: Book, recv_ns: int, /) -> None:
        rec = self.recorder
        g = rec.recorded - 1
        if book not in self._started:
            if not book.is_valid:
                return  # nothing a consumer could start from: wait for the book's snapshot
            self._started.add(book)
            last = rec.frames(copy=False)[-1]
            if not last["is_snapshot"]:
                frames, rows = book.snapshot_deltas(text=self.text)
                frames["book"] = last["book"]
                frames["recv_ns"] = last["recv_ns"]
                frames["prev_seq_id"] = last["prev_seq_id"]
                self._starts[g] = (frames, rows)
        self._keep.append(g)
        if rec.n_rows >= self.batch_rows:
            self.flush()

    def skip(self) -> None:
        """A frame outside the time window was applied: its rows are not kept, but they fill the
        recorder until the next flush (a long stretch before ``--from`` must not pile up)."""
        if self.recorder.n_rows >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        rec = self.recorder
        books = rec.books
        frames, rows = rec.take()
        base, self._base = self._base, self._base + len(frames)
        keep_idx = np.asarray(self._keep, dtype=np.int64) - base
        self._keep = []
        keep = np.zeros(len(frames), dtype=bool)
        keep[keep_idx] = True
        starts = sorted(g - base for g in self._starts)
        parts = []
        prev = 0
        for j in starts:
            mask = keep.copy()
            mask[:prev] = False
            mask[j:] = False
            parts.append(_select(frames, rows, mask))
            parts.append(self._starts.pop(j + base))
            prev = j + 1
        if prev:
            keep[:prev] = False
        parts.append(_select(frames, rows, keep))
        out_frames, out_rows = _concat(parts)
        if len(out_frames):
            self.on_chunk(DeltaChunk(out_frames, out_rows, books, self.frames_out))
        self.frames_out += len(out_frames)
        self.rows_out += len(out_rows)

    def finish(self) -> None:
        self.flush()


def replay_deltas(
    paths: Iterable[PathLike],
    on_chunk: Callable[[DeltaChunk], None],
    *,
    select: Selection | None = None,
    verify_checksum: bool = True,
    progress: bool | None = False,
    batch_rows: int = 500_000,
    text: bool = False,
) -> tuple[ReplayReport, DeltaStream]:
    """Replay ``paths`` as one stream, handing the kept level changes to ``on_chunk``
    (``text``: with the received strings, ``DELTA_TEXT_DTYPE`` rows)."""
    books = Books(verify_checksum=verify_checksum)
    stream = DeltaStream(books, on_chunk, batch_rows=batch_rows, text=text)
    report = replay(
        [os.fspath(p) for p in paths],
        verify_checksum,
        series=stream,
        progress=progress,
        select=select,
        books=books,
    )
    stream.finish()
    return report, stream
