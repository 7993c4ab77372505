"""Streamed table files for the exports: Parquet written one row group at a time, and the small
column helpers they share (book dictionary column, ns timestamps, exact decimal text).

Owns the file side of the exports: an export hands over a batch of columns every few hundred
thousand rows and the batch is written and dropped, so memory stays bounded by one batch however
long the capture. A file is written to ``<path>.tmp`` and renamed when complete: a crash never
leaves a truncated file under the final name. pyarrow does the Parquet work.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pyarrow

__all__ = ["METADATA_KEY", "ParquetStream", "book_column", "decimal_text", "utc_ns"]

PathLike = str | os.PathLike[str]

#: Schema (or, for a streamed file, footer) metadata key holding an export's JSON description.
METADATA_KEY = b"okxbook"


def book_column(codes: npt.NDArray[Any], names: list[str]) -> pyarrow.DictionaryArray:
    """``"channel/instId"`` as a dictionary column over int32 codes (no string per row)."""
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32, copy=False), type=pa.int32()),
        pa.array(names, type=pa.string()),
    )


def utc_ns(values: npt.NDArray[np.int64]) -> pyarrow.Array:
    """ns since the epoch as ``timestamp[ns, UTC]``; 0 (no time recorded) is null."""
    import pyarrow as pa

    return pa.array(values, type=pa.timestamp("ns", tz="UTC"), mask=values == 0)


def decimal_text(values: npt.NDArray[np.int64], decimals: npt.NDArray[Any]) -> pyarrow.Array:
    """The exact decimal text of integers at their decimals (``165005``, 1 -> ``"16500.5"``),
    computed whole-column in Arrow (no Python string per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = np.asarray(values, dtype=np.int64)
    dec = np.asarray(decimals, dtype=np.int64)
    neg = values < 0
    mag = np.abs(values)
    pieces: list[pyarrow.Array] = []
    order = np.argsort(dec, kind="stable")
    uniq, starts = np.unique(dec[order], return_index=True)
    bounds = [*starts.tolist(), len(values)]
    for k, d in enumerate(uniq.tolist()):
        idx = order[bounds[k] : bounds[k + 1]]
        scale = 10 ** int(d)
        whole = pc.cast(pa.array(mag[idx] // scale), pa.string())
        if d:
            frac = pc.utf8_lpad(pc.cast(pa.array(mag[idx] % scale), pa.string()), int(d), "0")
            text = pc.binary_join_element_wise(whole, frac, ".")
        else:
            text = whole
        sign = pa.array(np.where(neg[idx], "-", ""))
        pieces.append(pc.binary_join_element_wise(sign, text, ""))
    if not pieces:
        return pa.array([], type=pa.string())
    joined = pa.concat_arrays(pieces)
    # Back to the input order: the inverse of the grouping permutation.
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.arange(len(values))
    return joined.take(pa.array(inverse))


class ParquetStream:
    """A Parquet file written batch by batch (one row group per ``write``), zstd-compressed, with
    JSON ``metadata`` under the ``okxbook`` schema key. Use as a context manager: the file gets
    its final name only when the block ends without an error."""

    def __init__(self, path: PathLike, metadata: dict[str, Any] | None = None) -> None:
        self.path = os.fspath(path)
        self.tmp = self.path + ".tmp"
        self.metadata = dict(metadata or {})
        self.rows = 0
        self._writer: Any = None
        self._schema: Any = None

    def write(self, table: pyarrow.Table) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:
            # No okxbook metadata in the schema yet: it is added once, in the footer, at close
            # (the replay report is known only then).
            self._schema = table.schema.remove_metadata()
            self._writer = pq.ParquetWriter(self.tmp, self._schema, compression="zstd")
        if table.num_rows:
            self._writer.write_table(table.cast(self._schema))
            self.rows += table.num_rows

    def close(self, final_metadata: dict[str, Any] | None = None, empty: Any = None) -> None:
        """Finish the file; ``empty`` (a table with the right columns, no rows) is written if no
        batch came, so the file always has its schema."""
        if self._writer is None:
            if empty is None:
                raise ValueError("nothing was written and no empty table was given")
            self.write(empty)
        self.metadata["rows"] = self.rows
        self.metadata.update(final_metadata or {})
        self._writer.add_key_value_metadata({METADATA_KEY.decode(): json.dumps(self.metadata)})
        self._writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)

    def __enter__(self) -> ParquetStream:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abort()
