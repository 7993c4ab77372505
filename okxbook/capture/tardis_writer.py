"""tardis.dev ``incremental_book_L2`` CSV written from a replay's level changes (``deltastream``
chunks); the format and its reader are in ``tardis``.

Owns the writing: one line per level change, whole-column in Arrow (exact decimal text, the
exchange id tardis uses for the instrument, the ``is_snapshot`` runs), streamed chunk by chunk to
one CSV, gzip when the name ends in ``.gz``.
"""

from __future__ import annotations

import gzip
import os
from typing import Any

from .tardis import HEADER, tardis_exchange

__all__ = ["TardisWriter", "tardis_table"]


def tardis_table(chunk: Any) -> Any:
    """A ``deltastream.DeltaChunk`` as incremental_book_L2 columns (a ``pyarrow.Table``): one line
    per level change; a delete, or a level trimmed past the depth limit, is amount 0; the clear that
    opens a snapshot is the ``is_snapshot`` run itself; rescale and invalid rows have no line (the
    next snapshot replaces the book)."""
    import numpy as np
    import pyarrow as pa

    from okxbook._deltas import DELETE, INSERT, TRIM, UPDATE

    from .tables import decimal_text

    frames, rows = chunk.frames, chunk.rows
    action = rows["action"]
    rows = rows[(action == INSERT) | (action == UPDATE) | (action == DELETE) | (action == TRIM)]
    f = frames[rows["frame"]]
    insts = [inst for _, inst in chunk.books]
    exchanges = [tardis_exchange(inst) for inst in insts]
    book = f["book"].astype(np.int32)
    ts_us = f["ts_ms"] * 1000
    local_us = np.where(f["recv_ns"] != 0, f["recv_ns"] // 1000, ts_us)

    def text(codes: Any, names: list[str]) -> Any:  # dictionary-decoded in Arrow, not per row
        return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(names)).cast(pa.string())

    return pa.table(
        {
            "exchange": text(book, exchanges),
            "symbol": text(book, insts),
            "timestamp": pa.array(ts_us),
            "local_timestamp": pa.array(local_us),
            "is_snapshot": pa.array(f["is_snapshot"].astype(bool)),
            "side": text((rows["side"] > 0).astype(np.int8), ["ask", "bid"]),
            "price": decimal_text(rows["px_ticks"], rows["px_decimals"]),
            "amount": decimal_text(rows["sz_lots"], rows["sz_decimals"]),
        }
    )


class TardisWriter:
    """Writes ``tardis_table`` chunks to one CSV (gzip when the name ends in ``.gz``), through
    ``<path>.tmp`` renamed at ``close``."""

    def __init__(self, path: str) -> None:
        import pyarrow as pa

        self.path = path
        self.tmp = path + ".tmp"
        self.lines = 0
        # gzip level 5: about the size of level 9 for these lines, at a fraction of the time.
        self._sink: Any = (
            gzip.open(self.tmp, "wb", compresslevel=5)  # noqa: SIM115 (closed in close)
            if path.endswith(".gz")
            else pa.OSFile(self.tmp, "wb")
        )
        self._sink.write(HEADER + b"\n")
        self._writer: Any = None

    def write(self, chunk: Any) -> None:
        import pyarrow.csv as pcsv

        table = tardis_table(chunk)
        if not table.num_rows:
            return
        if self._writer is None:
            options = pcsv.WriteOptions(include_header=False, quoting_style="none")
            self._writer = pcsv.CSVWriter(self._sink, table.schema, write_options=options)
        self._writer.write_table(table)
        self.lines += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._sink.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._sink.close()
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
