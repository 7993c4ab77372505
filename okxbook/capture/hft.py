"""hftbacktest event arrays (``.npz``) from a replay, so OKX books can be backtested in hftbacktest.

Owns the translation of delta rows (``deltastream``) into hftbacktest's 64-byte event rows
(``ev`` u8, ``exch_ts`` i8, ``local_ts`` i8, ``px`` f8, ``qty`` f8, ``order_id`` u8, ``ival`` i8,
``fval`` f8; ``hftbacktest.types.event_dtype``), for one book per file:

* a snapshot (its clear row) and a book emptied for lost integrity are ``DEPTH_CLEAR_EVENT`` with
  no side (hftbacktest clears both sides), then each level of the snapshot is
  ``DEPTH_SNAPSHOT_EVENT`` with ``BUY_EVENT``/``SELL_EVENT``;
* an insert or update is ``DEPTH_EVENT`` with the new size, a delete or a level trimmed past the
  depth limit ``DEPTH_EVENT`` with size 0;
* ``exch_ts`` is the frame's exchange ``ts`` and ``local_ts`` its receive time, in ns (a capture
  without receive times uses ``exch_ts``);
* then hftbacktest's own corrections, done here the same way: ``local_ts`` shifted when the feed
  latency ``local_ts - exch_ts`` is negative (clock skew: by the most negative one), and the event
  order corrected (``_series.merge_event_order``): each event carries ``EXCH_EVENT`` and/or
  ``LOCAL_EVENT`` so that both timelines are in order, as its ``validate_event_order`` checks.

The file is ``numpy.savez_compressed(path, data=events)``, what ``BacktestAsset().data([path])``
loads; prices and sizes are floats there, so give the asset ``tick_size(10**-px_decimals)`` and
``lot_size(10**-sz_decimals)`` (stored in the result and printed by the CLI). The events of the
export are held in memory until the file is written (64 bytes per level change): export a day at a
time (``--from``/``--to``) for long captures.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from okxbook._deltas import CLEAR, DELETE, INSERT, INVALID, TRIM, UPDATE

from ._series import merge_event_order
from .deltastream import DeltaChunk, replay_deltas
from .replay import ReplayReport
from .selection import Selection

__all__ = ["EVENT_DTYPE", "HftExport", "events_of", "export_hftbacktest"]

PathLike = str | os.PathLike[str]

#: hftbacktest's ``event_dtype`` (64 bytes, aligned), and its flags (``hftbacktest.types``).
EVENT_DTYPE = np.dtype(
    [
        ("ev", "<u8"),
        ("exch_ts", "<i8"),
        ("local_ts", "<i8"),
        ("px", "<f8"),
        ("qty", "<f8"),
        ("order_id", "<u8"),
        ("ival", "<i8"),
        ("fval", "<f8"),
    ],
    align=True,
)
DEPTH_EVENT = 1
DEPTH_CLEAR_EVENT = 3
DEPTH_SNAPSHOT_EVENT = 4
EXCH_EVENT = 1 << 31
LOCAL_EVENT = 1 << 30
BUY_EVENT = 1 << 29
SELL_EVENT = 1 << 28


def events_of(chunk: DeltaChunk) -> npt.NDArray[np.void]:
    """One chunk's rows as hftbacktest events, before the timestamp and order corrections."""
    frames, rows = chunk.frames, chunk.rows
    action = rows["action"]
    keep = (
        (action == CLEAR)
        | (action == INVALID)
        | (action == INSERT)
        | (action == UPDATE)
        | (action == DELETE)
        | (action == TRIM)
    )
    rows = rows[keep]
    action = rows["action"]
    f = frames[rows["frame"]]
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    clear = (action == CLEAR) | (action == INVALID)
    side = np.where(rows["side"] > 0, BUY_EVENT, SELL_EVENT).astype(np.uint64)
    kind = np.where(f["is_snapshot"] != 0, DEPTH_SNAPSHOT_EVENT, DEPTH_EVENT).astype(np.uint64)
    out["ev"] = np.where(clear, np.uint64(DEPTH_CLEAR_EVENT), kind | side)
    out["exch_ts"] = f["ts_ms"] * 1_000_000
    out["local_ts"] = np.where(f["recv_ns"] != 0, f["recv_ns"], out["exch_ts"])
    px_div = 10.0 ** rows["px_decimals"].astype(np.float64)
    sz_div = 10.0 ** rows["sz_decimals"].astype(np.float64)
    out["px"] = np.where(clear, 0.0, rows["px_ticks"] / px_div)
    out["qty"] = np.where(clear, 0.0, rows["sz_lots"] / sz_div)
    return out


def correct(events: npt.NDArray[np.void]) -> tuple[npt.NDArray[np.void], int]:
    """hftbacktest's two corrections (module docstring); returns the events and the ns added to
    every ``local_ts`` (0 when no latency was negative)."""
    shift = 0
    if len(events):
        latency = int((events["local_ts"] - events["exch_ts"]).min())
        if latency < 0:
            shift = -latency
            events["local_ts"] += shift
    by_exch = np.argsort(events["exch_ts"], kind="stable")
    by_local = np.argsort(events["local_ts"], kind="stable")
    index, flags = merge_event_order(
        np.ascontiguousarray(events["exch_ts"]),
        np.ascontiguousarray(events["local_ts"]),
        by_exch,
        by_local,
    )
    out = events[index]
    side_flags = np.where(flags & 1, EXCH_EVENT, 0) | np.where(flags & 2, LOCAL_EVENT, 0)
    out["ev"] |= side_flags.astype(np.uint64)
    return out, shift


@dataclass
class HftExport:
    """What ``export_hftbacktest`` wrote: the book, its scale and the events."""

    book: str | None = None
    px_decimals: int = 0
    sz_decimals: int = 0
    events: int = 0
    local_shift_ns: int = 0
    parts: list[npt.NDArray[np.void]] = field(default_factory=list)

    @property
    def tick_size(self) -> float:
        return 10.0**-self.px_decimals

    @property
    def lot_size(self) -> float:
        return 10.0**-self.sz_decimals

    def add(self, chunk: DeltaChunk) -> None:
        books = {f"{c}/{i}" for c, i in (chunk.books[b] for b in np.unique(chunk.frames["book"]))}
        if self.book is not None:
            books.add(self.book)
        if len(books) > 1:
            raise ValueError(
                "an hftbacktest file holds one book; choose one with --book channel/instId "
                f"(this capture has {', '.join(sorted(books))})"
            )
        if books:
            self.book = books.pop()
        if len(chunk.frames):
            self.px_decimals = max(self.px_decimals, int(chunk.frames["px_decimals"].max()))
            self.sz_decimals = max(self.sz_decimals, int(chunk.frames["sz_decimals"].max()))
        self.parts.append(events_of(chunk))


def export_hftbacktest(
    paths: Iterable[PathLike],
    out_path: PathLike,
    *,
    select: Selection | None = None,
    verify_checksum: bool = True,
    progress: bool | None = False,
) -> tuple[ReplayReport, HftExport]:
    """Replay ``paths`` as one stream and write one book's events to ``out_path`` (``.npz``)."""
    result = HftExport()
    report, _ = replay_deltas(
        paths, result.add, select=select, verify_checksum=verify_checksum, progress=progress
    )
    events = np.concatenate(result.parts) if result.parts else np.zeros(0, EVENT_DTYPE)
    result.parts = []
    events, result.local_shift_ns = correct(events)
    result.events = len(events)
    path = os.fspath(out_path)
    tmp = path + ".tmp.npz"  # savez adds .npz to a name without it
    try:
        np.savez_compressed(tmp, data=events)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return report, result
