"""The wide top-N snapshot table: ``bid_px_0..N-1``, ``bid_sz_…``, ``ask_px_…``, ``ask_sz_…`` per
book frame or per interval (``every``), streamed to Parquet.

Owns the table's layout and its Parquet file; the rows are taken in C by ``_series.TopLevels``
(through the fast readers of ``_book.pxd``) during the one replay loop, and handed over every
``batch_rows`` rows as numpy blocks, so memory is bounded by one row group.

======================  ==========================  ===========================================
column                  type                        meaning
======================  ==========================  ===========================================
book                    dictionary<int32, string>   ``"channel/instId"``
time                    timestamp[ns, UTC]          the frame's time (receive, else exchange),
                                                    or with ``every`` the interval's end
recv_time               timestamp[ns, UTC]          receive time of the book's last frame
exchange_time           timestamp[ns, UTC]          its exchange ``ts``
seq_id                  int64                       its ``seqId`` (-1: none)
valid                   bool                        the book was live
px_decimals, sz_dec...  int8                        the scale of the ``exact`` columns
bid_px_<i>, bid_sz_<i>  float64                     level ``i`` (0 best); NaN: no such level
ask_px_<i>, ask_sz_<i>  float64
(``exact``) bid_px_ticks_<i> ...  int64             the same as exact integers (null: none)
======================  ==========================  ===========================================

With ``every``, a book's row at an interval end is the book after its last frame at or before that
time: rows come in time order, one per book seen so far at each interval end up to the last
frame.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._series import TopLevels
from .replay import ReplayReport, replay
from .selection import Selection
from .tables import ParquetStream, book_column, utc_ns

if TYPE_CHECKING:
    import pyarrow

__all__ = ["export_snapshots", "snapshots_table"]

PathLike = str | os.PathLike[str]


def snapshots_table(
    cols: dict[str, Any], names: list[str], n_levels: int, *, exact: bool = False
) -> pyarrow.Table:
    """``TopLevels.take()``'s columns as the table of the module docstring."""
    import pyarrow as pa

    out: dict[str, Any] = {
        "book": book_column(cols["book"], names),
        "time": utc_ns(cols["time_ns"]),
        "recv_time": utc_ns(cols["recv_ns"]),
        "exchange_time": utc_ns(cols["ts_ms"] * 1_000_000),
        "seq_id": pa.array(cols["seq_id"]),
        "valid": pa.array(cols["valid"]),
        "px_decimals": pa.array(cols["px_decimals"]),
        "sz_decimals": pa.array(cols["sz_decimals"]),
    }
    px_div = 10.0 ** cols["px_decimals"].astype(np.float64)[:, None]
    sz_div = 10.0 ** cols["sz_decimals"].astype(np.float64)[:, None]
    for side in ("bid", "ask"):
        px, sz = cols[f"{side}_px"], cols[f"{side}_sz"]
        absent = sz == 0
        fpx = np.where(absent, np.nan, px / px_div)
        fsz = np.where(absent, np.nan, sz / sz_div)
        for i in range(n_levels):
            out[f"{side}_px_{i}"] = pa.array(fpx[:, i])
        for i in range(n_levels):
            out[f"{side}_sz_{i}"] = pa.array(fsz[:, i])
    if exact:
        for side in ("bid", "ask"):
            px, sz = cols[f"{side}_px"], cols[f"{side}_sz"]
            absent = sz == 0
            for i in range(n_levels):
                out[f"{side}_px_ticks_{i}"] = pa.array(px[:, i], mask=absent[:, i])
            for i in range(n_levels):
                out[f"{side}_sz_lots_{i}"] = pa.array(sz[:, i], mask=absent[:, i])
    return pa.table(out)


def export_snapshots(
    paths: Iterable[PathLike],
    out_path: PathLike,
    *,
    levels: int = 10,
    every_ns: int = 0,
    exact: bool = False,
    select: Selection | None = None,
    verify_checksum: bool = True,
    progress: bool | None = False,
    batch_rows: int = 100_000,
) -> ReplayReport:
    """Replay ``paths`` as one stream and write the wide top-``levels`` table to the Parquet file
    ``out_path``, one row group per ``batch_rows`` rows. Returns the replay report (also in the
    file's metadata, ``export.read_metadata``)."""
    names = [os.fspath(p) for p in paths]
    stream = ParquetStream(
        out_path,
        {"format": "snapshots", "levels": levels, "every_ns": every_ns, "sources": names},
    )

    def flush(top: TopLevels) -> None:
        stream.write(snapshots_table(top.take(), top.book_names, levels, exact=exact))

    top = TopLevels(levels, every_ns, batch_rows, flush)
    with stream:
        report = replay(names, verify_checksum, series=top, progress=progress, select=select)
        flush(top)
        stream.close({"report": report.as_dict()})
    return report
