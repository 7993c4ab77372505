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
``lot_size(10**-sz_decimals)`` (stored in the result and printed by the CLI).

Memory: the events are streamed to disk as they are made (a raw file of 64-byte rows beside the
output, one replay chunk at a time), then compressed into the npz (the zip holding ``data.npy``
that ``numpy.savez_compressed`` writes, written here a step of ``CHUNK`` events at a time from a
memory map of the raw file), so the peak is a replay chunk and a step, whatever the export's length, when both timelines are already in order
(``exch_ts`` and ``local_ts`` never go back: the normal case for one book, whose exchange ``ts`` and
receive times only grow). When a timestamp goes back, the order correction needs the whole order:
then about 50 bytes per event are held (the two sort keys, their argsorts and the merged index),
against 64 per event for the events themselves, which stay on disk. The disk needs room for the raw
file and the npz (both removed or renamed when the export ends).
"""

from __future__ import annotations

import itertools
import os
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from numpy.lib import format as _npy_format

from okxbook._deltas import CLEAR, DELETE, INSERT, INVALID, TRIM, UPDATE

from ._series import merge_event_order
from .deltastream import DeltaChunk, replay_deltas
from .replay import ReplayReport
from .selection import Selection

__all__ = [
    "CHUNK",
    "EVENT_DTYPE",
    "HftExport",
    "events_of",
    "export_hftbacktest",
    "leading_books",
    "one_book_or_refuse",
]

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
#: Events compressed into the npz per step (4 MiB of rows).
CHUNK = 1 << 16


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


@dataclass
class HftExport:
    """What ``export_hftbacktest`` wrote: the book, its scale and the events (``events`` in the
    file, ``made`` before the order correction; ``in_order``: no timestamp went back, so the file
    was written in bounded memory)."""

    book: str | None = None
    px_decimals: int = 0
    sz_decimals: int = 0
    events: int = 0
    local_shift_ns: int = 0
    made: int = 0
    in_order: bool = True
    spool: BinaryIO | None = None
    _min_latency: int = 0
    _last_exch: int = -(2**63)
    _last_local: int = -(2**63)

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
        events = events_of(chunk)
        if not len(events):
            return
        exch, local = events["exch_ts"], events["local_ts"]
        latency = int((local - exch).min())
        self._min_latency = latency if not self.made else min(self._min_latency, latency)
        if self.in_order:
            self.in_order = bool(
                exch[0] >= self._last_exch
                and local[0] >= self._last_local
                and (np.diff(exch) >= 0).all()
                and (np.diff(local) >= 0).all()
            )
        self._last_exch, self._last_local = int(exch[-1]), int(local[-1])
        self.made += len(events)
        if self.spool is None:
            raise RuntimeError("HftExport.add needs a spool file")
        self.spool.write(events.tobytes())

    def write(self, spool_path: str, out_path: str) -> None:
        """Write the npz at ``out_path`` from the raw events in ``spool_path`` (module docstring)."""
        n = self.made
        raw: npt.NDArray[np.void] = (
            np.memmap(spool_path, dtype=EVENT_DTYPE, mode="r", shape=(n,))
            if n
            else np.zeros(0, EVENT_DTYPE)
        )
        self.local_shift_ns = -self._min_latency if self._min_latency < 0 else 0
        index = flags = None
        if not self.in_order:
            index, flags = _order(raw, self.local_shift_ns)
        total = n if index is None else len(index)
        tmp = out_path + ".tmp.npz"
        both = np.uint64(EXCH_EVENT | LOCAL_EVENT)
        try:
            # What numpy.savez_compressed writes (a zip holding data.npy), chunk by chunk: its
            # own writer buffers 16 MiB steps of its choosing; this keeps the step CHUNK.
            with (
                zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf,
                zf.open("data.npy", "w", force_zip64=True) as fh,
            ):
                npy: Any = _npy_format  # untyped in numpy's stubs
                header = {"descr": npy.dtype_to_descr(EVENT_DTYPE), "fortran_order": False}
                npy.write_array_header_1_0(fh, {**header, "shape": (total,)})
                for k in range(0, total, CHUNK):
                    if index is None or flags is None:
                        part = np.array(raw[k : k + CHUNK])
                        part["ev"] |= both
                    else:
                        part = raw[index[k : k + CHUNK]]
                        f = flags[k : k + CHUNK]
                        side = np.where(f & 1, EXCH_EVENT, 0) | np.where(f & 2, LOCAL_EVENT, 0)
                        part["ev"] |= side.astype(np.uint64)
                    part["local_ts"] += self.local_shift_ns
                    fh.write(part.tobytes())
            os.replace(tmp, out_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.events = total


def _order(
    raw: npt.NDArray[np.void], shift: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """hftbacktest's event-order merge for events whose timestamps go back (module docstring)."""
    exch = np.ascontiguousarray(raw["exch_ts"])
    local = np.ascontiguousarray(raw["local_ts"]) + shift
    by_exch = np.argsort(exch, kind="stable")
    by_local = np.argsort(local, kind="stable")
    index, flags = merge_event_order(exch, local, by_exch, by_local)
    return index, flags


_CHANNEL = re.compile(rb'"channel"\s*:\s*"([^"]+)"')
_INST = re.compile(rb'"instId"\s*:\s*"([^"]+)"')


def leading_books(paths: Iterable[PathLike], frames: int = 5_000) -> set[str]:
    """The order books (``channel/instId``) of the first ``frames`` pushes of each file: a
    recording subscribes its books at the start, so an export that would hold several books is
    refused before its replay runs (the check during the replay stays, for a book that appears
    later). Stdin (``-``) is not read ahead."""
    from okxbook.okx import CHANNELS

    from .files import iter_frames

    out: set[str] = set()
    for p in paths:
        if os.fspath(p) == "-":
            continue
        for cf in itertools.islice(iter_frames(p), frames):
            if b'"data"' not in cf.frame:
                continue
            channel, inst = _CHANNEL.search(cf.frame), _INST.search(cf.frame)
            if channel and inst and channel.group(1).decode() in CHANNELS:
                out.add(f"{channel.group(1).decode()}/{inst.group(1).decode()}")
    return out


def one_book_or_refuse(paths: Iterable[PathLike], select: Selection | None) -> None:
    """Raise ValueError (one line) when the export would hold more than one book."""
    chosen = sorted(select.books) if select is not None else []
    if len(chosen) > 1:
        raise ValueError(
            f"an hftbacktest file holds one book; --book was given {len(chosen)} times "
            f"({', '.join(chosen)})"
        )
    if chosen:
        return
    books = leading_books(paths)
    if len(books) > 1:
        raise ValueError(
            "an hftbacktest file holds one book; choose one with --book channel/instId "
            f"(this capture has {', '.join(sorted(books))})"
        )


def export_hftbacktest(
    paths: Iterable[PathLike],
    out_path: PathLike,
    *,
    select: Selection | None = None,
    verify_checksum: bool = True,
    progress: bool | None = False,
    batch_rows: int = 500_000,
) -> tuple[ReplayReport, HftExport]:
    """Replay ``paths`` as one stream and write one book's events to ``out_path`` (``.npz``),
    streamed through a raw file on disk (module docstring: memory)."""
    paths = [os.fspath(p) for p in paths]
    one_book_or_refuse(paths, select)
    path = os.fspath(out_path)
    spool_path = path + ".tmp.events"
    result = HftExport()
    try:
        with open(spool_path, "wb") as spool:
            result.spool = spool
            report, _ = replay_deltas(
                paths,
                result.add,
                select=select,
                verify_checksum=verify_checksum,
                progress=progress,
                batch_rows=batch_rows,
            )
        result.spool = None
        result.write(spool_path, path)
    finally:
        result.spool = None
        if os.path.exists(spool_path):
            os.unlink(spool_path)
    return report, result
