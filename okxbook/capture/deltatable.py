"""The long delta table: one row per level change of a replay, streamed to Parquet.

Owns the table's layout; the rows come from ``deltastream`` (the core's ``DeltaRecorder``), one row
group per chunk, so a month of ``books-l2-tbt`` is written in bounded memory. Prices and sizes are
exact integers with their decimals (``px_ticks / 10**px_decimals`` is the price) and the strings
received (``price``/``size``: the frame's own text, e.g. ``"16500.5"`` and ``"0.0100"``, kept by the
core's ``DeltaRecorder(text=True)`` as the frame is applied; a delete's size is its ``"0"``; the
opening image of a book keeps the strings the book holds, as they were received). A trimmed level
has no string of its own: its price is printed at the book's decimals. Readable as is by pandas,
Polars, DuckDB and Spark.

======================  ==========================  ===========================================
column                  type                        meaning
======================  ==========================  ===========================================
book                    dictionary<int32, string>   ``"channel/instId"``
frame                   int64                       the frame's number in the export (rows of
                                                    one frame share it)
recv_ns, recv_time      int64, timestamp[ns, UTC]   receive time (0 / null: none recorded)
ts_ms, exchange_time    int64, timestamp[ns, UTC]   the frame's exchange ``ts``
seq_id, prev_seq_id     int64                       ``seqId``, ``prevSeqId`` (-1: none)
is_snapshot             bool                        the frame is a snapshot (a whole book,
                                                    opened by a ``clear`` row)
side                    int8                        +1 bid, -1 ask, 0 both (clear, invalid)
action                  dictionary<int8, string>    clear, insert, update, delete, trim (left
                                                    past the depth limit), rescale (the book's
                                                    decimals grew: ``px_ticks``/``sz_lots`` hold
                                                    the factors), invalid (book emptied)
px_ticks, px_decimals   int64, int8                 the price, exact
sz_lots, sz_decimals    int64, int8                 the new size (0 on delete/trim), exact
prev_sz_lots            int64                       the size before (0 on insert)
orders                  int64                       the level's order count
extra_lots              int64                       books-rpi's third field (non-RPI size)
price, size             string                      as received (null on clear/rescale/invalid)
extra                   string                      extra_lots printed at sz_decimals (the third
                                                    field's own string is not kept)
======================  ==========================  ===========================================
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from okxbook._deltas import ACTION_NAMES, CLEAR, INVALID, RESCALE

from .deltastream import DeltaChunk, replay_deltas
from .replay import ReplayReport
from .selection import Selection
from .tables import ParquetStream, book_column, decimal_text, utc_ns

if TYPE_CHECKING:
    import pyarrow

__all__ = ["delta_table", "export_deltas"]

PathLike = str | os.PathLike[str]


def _received(rows: Any, start: Any, length: Any) -> pyarrow.Array:
    """``text[start:start + length]`` of each ``DELTA_TEXT_DTYPE`` row as one Arrow string array,
    gathered whole in numpy (no Python string per row)."""
    import pyarrow as pa

    n = len(rows)
    width = rows.dtype["text"].itemsize
    offset = rows.dtype.fields["text"][1]
    raw = np.ascontiguousarray(rows).view(np.uint8).reshape(n, rows.dtype.itemsize)
    text = raw[:, offset : offset + width]
    col = np.arange(width)[None, :]
    start = start.astype(np.int64)[:, None]
    data = text[(col >= start) & (col < start + length.astype(np.int64)[:, None])]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(length, out=offsets[1:])
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data.tobytes()))


def delta_table(chunk: DeltaChunk) -> pyarrow.Table:
    """One chunk of level changes as the table of the module docstring."""
    import pyarrow as pa

    frames, rows = chunk.frames, chunk.rows
    f = frames[rows["frame"]]
    names = [f"{c}/{i}" for c, i in chunk.books]
    action = rows["action"]
    # Rows that carry no level (clear, invalid) or factors (rescale) have no price text.
    no_level = (action == CLEAR) | (action == INVALID) | (action == RESCALE)
    px_dec = rows["px_decimals"].astype(np.int8)
    sz_dec = rows["sz_decimals"].astype(np.int8)
    recv_ns = f["recv_ns"]
    ts_ms = f["ts_ms"]
    price = decimal_text(rows["px_ticks"], px_dec)
    size = decimal_text(rows["sz_lots"], sz_dec)
    if "text" in (rows.dtype.names or ()):
        # The received strings where the row has them (a trimmed level has none: printed).
        got = pa.array(rows["px_len"] > 0)
        price = pa.compute.if_else(got, _received(rows, rows["px_len"] * 0, rows["px_len"]), price)
        size = pa.compute.if_else(
            got, _received(rows, rows["px_len"].astype(np.int64) + 1, rows["sz_len"]), size
        )
    extra = decimal_text(rows["extra_lots"], sz_dec)
    mask = pa.array(no_level)
    null = pa.nulls(len(rows), pa.string())
    return pa.table(
        {
            "book": book_column(f["book"], names),
            "frame": pa.array(chunk.first_frame + rows["frame"].astype(np.int64)),
            "recv_ns": pa.array(recv_ns),
            "recv_time": utc_ns(recv_ns),
            "ts_ms": pa.array(ts_ms),
            "exchange_time": utc_ns(ts_ms * 1_000_000),
            "seq_id": pa.array(f["seq_id"]),
            "prev_seq_id": pa.array(f["prev_seq_id"]),
            "is_snapshot": pa.array(f["is_snapshot"].astype(bool)),
            "side": pa.array(rows["side"]),
            "action": pa.DictionaryArray.from_arrays(
                pa.array(action.astype(np.int8)), pa.array(list(ACTION_NAMES))
            ),
            "px_ticks": pa.array(rows["px_ticks"]),
            "px_decimals": pa.array(px_dec),
            "sz_lots": pa.array(rows["sz_lots"]),
            "sz_decimals": pa.array(sz_dec),
            "prev_sz_lots": pa.array(rows["prev_sz_lots"]),
            "orders": pa.array(rows["orders"]),
            "extra_lots": pa.array(rows["extra_lots"]),
            "price": pa.compute.if_else(mask, null, price),
            "size": pa.compute.if_else(mask, null, size),
            "extra": pa.compute.if_else(mask, null, extra),
        }
    )


def _empty() -> Any:
    from okxbook._deltas import DELTA_DTYPE, FRAME_DTYPE

    return delta_table(DeltaChunk(np.empty(0, FRAME_DTYPE), np.empty(0, DELTA_DTYPE), [], 0))


def export_deltas(
    paths: Iterable[PathLike],
    out_path: PathLike,
    *,
    select: Selection | None = None,
    verify_checksum: bool = True,
    progress: bool | None = False,
    batch_rows: int = 500_000,
) -> ReplayReport:
    """Replay ``paths`` as one stream and write every kept level change to the Parquet file
    ``out_path`` (one row group per ``batch_rows`` rows). Returns the replay report (also in the
    file's metadata, ``export.read_metadata``)."""
    import pyarrow.compute  # noqa: F401  (pa.compute in delta_table)

    names = [os.fspath(p) for p in paths]
    stream = ParquetStream(out_path, {"format": "deltas", "sources": names})
    with stream:
        report, deltas = replay_deltas(
            names,
            lambda chunk: stream.write(delta_table(chunk)),
            select=select,
            verify_checksum=verify_checksum,
            progress=progress,
            batch_rows=batch_rows,
            text=True,
        )
        stream.close(
            {"report": report.as_dict(), "frames": deltas.frames_out, "rows": deltas.rows_out},
            empty=_empty(),
        )
    return report
