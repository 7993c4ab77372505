"""nautilus_trader ``OrderBookDelta`` data in its Parquet catalog layout, written from a replay
without nautilus_trader installed (it is the optional ``nautilus`` extra only for reading back).

Owns the translation of delta rows (``deltastream``) into nautilus's OrderBookDelta Arrow schema
as its current wheels write it (``NAUTILUS_ARROW_SCHEMA[OrderBookDelta]``, high-precision mode):

======================  ==========================  ===========================================
column                  type                        meaning
======================  ==========================  ===========================================
action                  uint8                       1 add (insert), 2 update, 3 delete (also a
                                                    level trimmed past the depth limit), 4 clear
                                                    (a snapshot's first row, a book emptied)
side                    uint8                       1 buy (bid), 2 sell (ask), 0 none (clear)
price, size             fixed_size_binary[16]       little-endian int128 of value * 10**16
                                                    (nautilus ``FIXED_PRECISION`` 16), exact
order_id                uint64                      0 (an L2 book: one order per level)
flags                   uint8                       ``F_SNAPSHOT`` (32) on snapshot rows,
                                                    ``F_LAST`` (128) on each frame's last row
sequence                uint64                      the frame's OKX ``seqId`` (0 when none)
ts_event, ts_init       uint64                      exchange ``ts`` and receive time, ns
======================  ==========================  ===========================================

with the schema metadata ``instrument_id`` (``<instId>.OKX``), ``price_precision`` and
``size_precision`` (the book's decimals when it first appears), one file per book under
``<catalog>/data/order_book_deltas/<instrument_id>/<first ts_init>_<last ts_init>.parquet``, the
name pattern nautilus's ``ParquetDataCatalog`` reads (``catalog.order_book_deltas(...)``).
Streamed, one row group per chunk. A book whose decimals grow mid-export (a ``rescale`` row: OKX
sent a price or size with more decimals than before) is refused with a ``ValueError`` naming it,
since the file's one ``price_precision``/``size_precision`` would be wrong for the later rows. The int128 scaling is done whole-column in numpy (64x64-bit
products split into 32-bit halves): there is no int128 dtype to do it with.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from okxbook._deltas import CLEAR, DELETE, INSERT, INVALID, TRIM, UPDATE

from .deltastream import DeltaChunk, replay_deltas
from .replay import ReplayReport
from .selection import Selection

__all__ = ["FIXED_PRECISION", "NautilusCatalogWriter", "export_nautilus", "fixed_raw"]

PathLike = str | os.PathLike[str]

#: nautilus_trader's high-precision fixed scale: raw = value * 10**16.
FIXED_PRECISION = 16
F_LAST = 128
F_SNAPSHOT = 32
_ACTION = np.zeros(8, dtype=np.uint8)
_ACTION[INSERT], _ACTION[UPDATE], _ACTION[DELETE], _ACTION[TRIM] = 1, 2, 3, 3
_ACTION[CLEAR] = _ACTION[INVALID] = 4
_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


def fixed_raw(values: npt.NDArray[np.int64], decimals: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """Non-negative integers at their decimals as nautilus raw values (value * 10**16), as
    little-endian int128 bytes, shape (n, 16)."""
    a = np.asarray(values, dtype=np.int64)
    if (a < 0).any():
        raise ValueError("negative price or size")
    d = np.asarray(decimals, dtype=np.int64)
    if (d > FIXED_PRECISION).any():
        raise ValueError(f"more than {FIXED_PRECISION} decimals do not fit nautilus's raw values")
    a = a.astype(np.uint64)
    m = (10 ** (FIXED_PRECISION - d)).astype(np.uint64)
    a0, a1 = a & _MASK32, a >> _S32
    m0, m1 = m & _MASK32, m >> _S32
    p00, p01, p10, p11 = a0 * m0, a0 * m1, a1 * m0, a1 * m1
    mid = (p00 >> _S32) + (p01 & _MASK32) + (p10 & _MASK32)
    lo = (p00 & _MASK32) | (mid << _S32)
    hi = p11 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)
    out = np.empty((len(a), 2), dtype="<u8")
    out[:, 0], out[:, 1] = lo, hi
    return out.view(np.uint8).reshape(len(a), 16)


def _fixed_array(raw: npt.NDArray[np.uint8]) -> Any:
    import pyarrow as pa

    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), len(raw), [None, pa.py_buffer(np.ascontiguousarray(raw).tobytes())]
    )


def _stamp(ns: int) -> str:
    """nautilus's file-name time: ``2022-05-13T16-27-05-381000000Z``."""
    s, frac = divmod(int(ns), 1_000_000_000)
    t = np.datetime64(s, "s").astype(str)  # "2022-05-13T16:27:05"
    return f"{t.replace(':', '-')}-{frac:09d}Z"


class NautilusCatalogWriter:
    """Writes chunks into ``<catalog>/data/order_book_deltas/<instrument_id>/`` (one file per book)."""

    def __init__(self, catalog: PathLike) -> None:
        self.catalog = os.fspath(catalog)
        self.rows = 0
        self._files: dict[int, dict[str, Any]] = {}  # book index -> writer state
        self._ids: dict[str, str] = {}  # instrument id -> book key (one book per instrument)

    def write(self, chunk: DeltaChunk) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        frames, rows = chunk.frames, chunk.rows
        keep = np.isin(rows["action"], (INSERT, UPDATE, DELETE, TRIM, CLEAR, INVALID))
        rows = rows[keep]
        f = frames[rows["frame"]]
        # The last row of each frame carries F_LAST (the end of one event group in nautilus).
        last = np.ones(len(rows), dtype=bool)
        last[:-1] = rows["frame"][1:] != rows["frame"][:-1]
        for b in np.unique(f["book"]).tolist():
            sel = f["book"] == b
            r, fr = rows[sel], f[sel]
            state = self._files.get(b)
            if state is None:
                state = self._open(
                    chunk.books[b], int(fr["px_decimals"][0]), int(fr["sz_decimals"][0])
                )
                self._files[b] = state
            self._same_scale(state, chunk.books[b], frames[frames["book"] == b], r)
            action = _ACTION[r["action"]]
            clear = action == 4
            side = np.where(clear, 0, np.where(r["side"] > 0, 1, 2)).astype(np.uint8)
            px = np.where(clear, 0, r["px_ticks"])
            sz = np.where(clear, 0, r["sz_lots"])
            ts_event = (fr["ts_ms"] * 1_000_000).astype(np.uint64)
            ts_init = np.where(fr["recv_ns"] != 0, fr["recv_ns"], fr["ts_ms"] * 1_000_000)
            flags = np.where(fr["is_snapshot"] != 0, F_SNAPSHOT, 0) | np.where(last[sel], F_LAST, 0)
            table = pa.table(
                {
                    "action": pa.array(action, pa.uint8()),
                    "side": pa.array(side, pa.uint8()),
                    "price": _fixed_array(fixed_raw(px, r["px_decimals"])),
                    "size": _fixed_array(fixed_raw(sz, r["sz_decimals"])),
                    "order_id": pa.array(np.zeros(len(r), np.uint64)),
                    "flags": pa.array(flags.astype(np.uint8), pa.uint8()),
                    "sequence": pa.array(np.maximum(fr["seq_id"], 0).astype(np.uint64)),
                    "ts_event": pa.array(ts_event),
                    "ts_init": pa.array(ts_init.astype(np.uint64)),
                },
                schema=state["schema"],
            )
            if state["writer"] is None:
                state["writer"] = pq.ParquetWriter(state["tmp"], state["schema"])
            state["writer"].write_table(table)
            state["first"] = min(state["first"], int(ts_init.min()))
            state["last"] = max(state["last"], int(ts_init.max()))
            self.rows += len(r)

    @staticmethod
    def _same_scale(state: dict[str, Any], book: tuple[str, str], frames: Any, rows: Any) -> None:
        """Refuse a book whose decimals changed since its file was opened (a RESCALE: OKX sent a
        price or size with more decimals than before): the file's one ``price_precision`` and
        ``size_precision`` would be wrong for the later rows. Loud, never a file read wrong."""
        want = (state["px_dec"], state["sz_dec"])
        for arr in (frames, rows):
            bad = (arr["px_decimals"] != want[0]) | (arr["sz_decimals"] != want[1])
            if bad.any():
                k = int(np.argmax(bad))
                got = (int(arr["px_decimals"][k]), int(arr["sz_decimals"][k]))
                raise ValueError(
                    f"{book[0]}/{book[1]} changed decimals mid-export (price/size {want[0]}/"
                    f"{want[1]} -> {got[0]}/{got[1]}): a nautilus file holds one precision; "
                    "export the time before and after the change separately (--to / --from)"
                )

    def _open(self, book: tuple[str, str], px_dec: int, sz_dec: int) -> dict[str, Any]:
        import pyarrow as pa

        channel, inst = book
        instrument_id = f"{inst}.OKX"
        key = f"{channel}/{inst}"
        if self._ids.setdefault(instrument_id, key) != key:
            raise ValueError(
                f"{self._ids[instrument_id]} and {key} are both {instrument_id} in nautilus: "
                "choose one with --book"
            )
        folder = os.path.join(self.catalog, "data", "order_book_deltas", instrument_id)
        os.makedirs(folder, exist_ok=True)
        fixed = pa.binary(16)
        schema = pa.schema(
            [
                pa.field("action", pa.uint8(), nullable=False),
                pa.field("side", pa.uint8(), nullable=False),
                pa.field("price", fixed, nullable=False),
                pa.field("size", fixed, nullable=False),
                pa.field("order_id", pa.uint64(), nullable=False),
                pa.field("flags", pa.uint8(), nullable=False),
                pa.field("sequence", pa.uint64(), nullable=False),
                pa.field("ts_event", pa.uint64(), nullable=False),
                pa.field("ts_init", pa.uint64(), nullable=False),
            ],
            metadata={
                "instrument_id": instrument_id,
                "price_precision": str(px_dec),
                "size_precision": str(sz_dec),
            },
        )
        return {
            "px_dec": px_dec,
            "sz_dec": sz_dec,
            "schema": schema,
            "folder": folder,
            # Unique per process and book: parallel exports of several files share a catalog.
            "tmp": os.path.join(folder, f".okxbook-{os.getpid()}-{id(schema)}.parquet.tmp"),
            "writer": None,
            "first": 2**63,
            "last": 0,
        }

    def close(self) -> list[str]:
        """Finish every file; returns their paths."""
        out = []
        for state in self._files.values():
            if state["writer"] is None:
                continue
            state["writer"].close()
            name = f"{_stamp(state['first'])}_{_stamp(state['last'])}.parquet"
            path = os.path.join(state["folder"], name)
            os.replace(state["tmp"], path)
            out.append(path)
        return out

    def abort(self) -> None:
        for state in self._files.values():
            if state["writer"] is not None:
                state["writer"].close()
            if os.path.exists(state["tmp"]):
                os.unlink(state["tmp"])


def export_nautilus(
    paths: Iterable[PathLike],
    catalog: PathLike,
    *,
    select: Selection | None = None,
    verify_checksum: bool = True,
    progress: bool | None = False,
) -> tuple[ReplayReport, list[str]]:
    """Replay ``paths`` as one stream into the nautilus catalog directory ``catalog``; returns the
    report and the files written."""
    writer = NautilusCatalogWriter(catalog)
    try:
        report, _ = replay_deltas(
            paths, writer.write, select=select, verify_checksum=verify_checksum, progress=progress
        )
    except BaseException:
        writer.abort()
        raise
    return report, writer.close()
