"""Research exports: replay captures into the tables and files researchers and backtesters load.

:func:`export` is the one entry point (``okxbook replay FILE... --export PATH --format F``), with F
one of :data:`FORMATS`:

=============  ============================================================================
series         one row per book frame: top of book and depth bands (below; ``TopSeries``)
snapshots      wide top-N table ``bid_px_0..N-1`` ... per frame or per interval (``snapshots``)
deltas         long table, one row per level change, exact (``deltatable``)
tardis         tardis.dev ``incremental_book_L2`` CSV (``tardis_writer``; replay reads it too)
hftbacktest    hftbacktest event array ``.npz`` for one book (``hft``)
nautilus       nautilus_trader ``OrderBookDelta`` Parquet catalog directory (``nautilus``)
=============  ============================================================================

Every format takes the same selection (``books``: ``channel/instId`` keys, ``start``/``end``: the
time window; ``selection``) and is written while the replay runs, in bounded memory (one chunk of
``deltastream.DeltaStream.batch_rows`` level changes at a time; hftbacktest spools its events to
disk, see ``hft``). The delta-based formats start every book with a whole book (``deltastream``).

Owns the conversion of a ``TopSeries`` (one row per book frame, recorded in C during replay) into
tables, and the one-call ``export_replay`` that writes a Parquet file. It adds no replay loop of its
own: frames go through ``replay.replay`` (the same ``Books.apply`` path as live data), reading
files is ``capture``'s job, and the per-frame row is written by ``TopSeries.observe``. Every column
is converted whole (numpy / pyarrow), never row by row, so a day of frames costs a few copies.

Table layout (``to_arrow``, ``to_pandas``, the Parquet file), one row per book frame, in replay order:

======================  ==========================  ===========================================
column                  type                        meaning
======================  ==========================  ===========================================
book                    dictionary<int32, string>   ``"channel/instId"``; pandas: categorical
recv_ns                 int64                       receive time, ns since the epoch; 0: none
recv_time               timestamp[ns, UTC]          the same; null (NaT) when the capture has none
ts_ms                   int64                       exchange ``ts`` of the frame, ms; 0: none
exchange_time           timestamp[ns, UTC]          the same; null (NaT) when absent
seq_id                  int64                       ``seqId``; -1 when the channel sends none
bid_ticks, ask_ticks    int64                       best prices, exact: a tick is
                                                    ``10**-px_decimals`` of the quote currency
px_decimals             int8                        the tick scale: one per book for the whole
                                                    export (the most decimals the book used)
bid_px ... ask_sz       float64                     best bid/ask price and size; NaN: empty side
spread, mid             float64                     from the exact ticks; NaN if a side is empty
valid                   bool                        book live after the frame (False: it failed
                                                    a checksum or seqId check and was emptied)
crossed, top_changed    bool                        as ``Book.crossed`` / ``Book.top_changed``
bid_depth_<b>bps, ...   float64                     size resting within ``b`` bps of the mid,
                                                    per side, among the published depth
======================  ==========================  ===========================================

The Parquet file is one file per export with ``book`` stored as a dictionary column (so the
instrument names cost a few bytes per row group, not per row, and read back as a pandas
categorical), zstd-compressed, with the bands, the okxbook version and the replay report as JSON in
the schema metadata under ``okxbook``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._series import TopSeries
from .replay import ReplayReport, replay
from .selection import Selection, parse_interval
from .tables import METADATA_KEY

if TYPE_CHECKING:  # pandas and pyarrow are the optional ``research`` extra: imported on use
    import pandas
    import pyarrow

__all__ = [
    "FORMATS",
    "METADATA_KEY",
    "ExportResult",
    "depth_columns",
    "export",
    "export_replay",
    "read_metadata",
    "replay_series",
    "to_arrow",
    "to_pandas",
    "write_parquet",
]


PathLike = str | os.PathLike[str]


def _as_path_list(paths: PathLike | Iterable[PathLike]) -> list[PathLike]:
    # A lone str is itself iterable (by character): take it as one file, the common slip.
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return list(paths)


def replay_series(
    paths: PathLike | Iterable[PathLike],
    *,
    bps: Iterable[float] = (5, 10, 25),
    only_top_changes: bool = False,
    verify_checksum: bool = True,
    progress: bool | None = False,
    select: Selection | None = None,
) -> tuple[TopSeries, ReplayReport]:
    """Replay ``paths`` as one stream (in order, as ``replay.replay`` does) and record a row per
    book frame into a new ``TopSeries(bps, only_top_changes)``.

    ``progress``: a progress line on stderr (``None``: only when stderr is a terminal; see
    ``okxbook.progress``). Off by default so library calls stay quiet.
    """
    series = TopSeries(bps=bps, only_top_changes=only_top_changes)
    report = replay(
        _as_path_list(paths), verify_checksum, series=series, progress=progress, select=select
    )
    return series, report


def _band_label(b: float) -> str:
    # Must match TopSeries.columns(): 2.5 -> "2_5", 10.0 -> "10".
    return f"{b:g}".replace(".", "_")


def depth_columns(series_or_bps: TopSeries | Iterable[float]) -> list[tuple[str, str]]:
    """``[(bid column, ask column), ...]`` for each band, narrowest first."""
    bps = series_or_bps.bps if isinstance(series_or_bps, TopSeries) else sorted(series_or_bps)
    return [(f"bid_depth_{_band_label(b)}bps", f"ask_depth_{_band_label(b)}bps") for b in bps]


def to_arrow(series: TopSeries, *, metadata: dict[str, Any] | None = None) -> pyarrow.Table:
    """The series as a ``pyarrow.Table`` (layout in the module docstring). ``metadata`` is merged
    into the JSON stored under the ``okxbook`` schema metadata key."""
    import pyarrow as pa

    from okxbook import __version__

    cols = series.columns()
    names = series.book_names
    # int32 codes into the names: exactly Arrow's dictionary layout, so no per-row string is made.
    book = pa.DictionaryArray.from_arrays(
        pa.array(cols["book"], type=pa.int32()), pa.array(names, type=pa.string())
    )
    utc_ns = pa.timestamp("ns", tz="UTC")
    recv_ns = cols["recv_ns"]
    ts_ms = cols["ts_ms"]
    # 0 is what replay records when a capture format has no receive time (JSON lines), and what a
    # book holds before any frame carried ``ts``: a null, not 1970-01-01.
    recv_time = pa.array(recv_ns, type=utc_ns, mask=recv_ns == 0)
    exchange_time = pa.array(ts_ms * 1_000_000, type=utc_ns, mask=ts_ms == 0)
    arrays: dict[str, Any] = {
        "book": book,
        "recv_ns": recv_ns,
        "recv_time": recv_time,
        "ts_ms": ts_ms,
        "exchange_time": exchange_time,
    }
    bid_ticks, ask_ticks, px_decimals = _one_scale(cols["book"], cols)
    arrays["seq_id"] = cols["seq_id"]
    arrays["bid_ticks"] = bid_ticks
    arrays["ask_ticks"] = ask_ticks
    arrays["px_decimals"] = px_decimals
    for name in (
        "bid_px",
        "bid_sz",
        "ask_px",
        "ask_sz",
        "spread",
        "mid",
        "valid",
        "crossed",
        "top_changed",
    ):
        arrays[name] = cols[name]
    for bid_col, ask_col in depth_columns(series):
        arrays[bid_col] = cols[bid_col]
        arrays[ask_col] = cols[ask_col]
    meta: dict[str, Any] = {
        "version": __version__,
        "bps": list(series.bps),
        "only_top_changes": bool(series.only_top_changes),
        "book_names": names,
    }
    if metadata:
        meta.update(metadata)
    table = pa.table({k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in arrays.items()})
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})


def _one_scale(book: Any, cols: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Ticks at one decimal scale per book for the whole series: a book that learnt a decimal
    mid-series (``2.20`` then ``2.201``) would otherwise switch from 220 to 2201 ticks at the
    same scale column; each row is raised to the most decimals its book used (exact integer
    multiplication; a value that would not fit int64 is refused, never wrapped)."""
    import numpy as np

    dec = cols["px_decimals"].astype(np.int64)
    bid, ask = cols["bid_ticks"], cols["ask_ticks"]
    if not len(dec):
        return bid, ask, cols["px_decimals"]
    most = np.zeros(int(book.max()) + 1, dtype=np.int64)
    np.maximum.at(most, book, dec)
    target = most[book]
    factor = 10 ** (target - dec)
    if (factor != 1).any():
        limit = np.iinfo(np.int64).max // factor
        if (np.abs(bid) > limit).any() or (np.abs(ask) > limit).any():
            raise OverflowError("prices do not fit int64 at one scale per book")
        bid, ask = bid * factor, ask * factor
    return bid, ask, target.astype(np.int8)


def to_pandas(series: TopSeries) -> pandas.DataFrame:
    """The series as a DataFrame: ``book`` categorical (``"channel/instId"``), ``recv_time`` and
    ``exchange_time`` as ``datetime64[ns, UTC]`` next to the raw ``recv_ns``/``ts_ms`` ints.

    Built through ``to_arrow`` so that a frame read back from ``write_parquet``'s file is equal to
    this one, dtypes included."""
    return _arrow_to_pandas(to_arrow(series))


def _arrow_to_pandas(table: pyarrow.Table) -> pandas.DataFrame:
    # Arrow's own conversion keeps ns timestamps with their tz and dictionaries as categoricals.
    return table.to_pandas()


def write_parquet(
    series: TopSeries, path: PathLike, *, metadata: dict[str, Any] | None = None
) -> None:
    """Write the series to one Parquet file at ``path`` (layout in the module docstring).

    Written to ``<path>.tmp`` and renamed, so a crash never leaves a truncated file under the
    final name for a batch job to take as finished."""
    import pyarrow.parquet as pq

    table = to_arrow(series, metadata=metadata)
    path = os.fspath(path)
    tmp = path + ".tmp"
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_metadata(path: PathLike) -> dict[str, Any]:
    """The ``okxbook`` JSON stored in an exported Parquet file's schema (bands, version, report)."""
    import pyarrow.parquet as pq

    # A streamed export writes it into the file footer at close; write_parquet into the schema.
    raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
    if raw is None:
        raw = (pq.ParquetFile(path).metadata.metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def export_replay(
    paths: PathLike | Iterable[PathLike],
    out_path: PathLike,
    *,
    bps: Iterable[float] = (5, 10, 25),
    only_top_changes: bool = False,
    verify_checksum: bool = True,
    progress: bool | None = False,
    select: Selection | None = None,
) -> ReplayReport:
    """Replay ``paths`` as one stream and write every book frame's row to the Parquet file
    ``out_path`` (one file; ``book`` is a dictionary column). Returns the replay report, which is
    also stored in the file's metadata (``read_metadata(out_path)["report"]``)."""
    path_list = _as_path_list(paths)
    series, report = replay_series(
        path_list,
        bps=bps,
        only_top_changes=only_top_changes,
        verify_checksum=verify_checksum,
        progress=progress,
        select=select,
    )
    write_parquet(
        series,
        out_path,
        metadata={"sources": [os.fspath(p) for p in path_list], "report": report.as_dict()},
    )
    return report


#: The ``--format`` values of ``okxbook replay --export``.
FORMATS = ("series", "snapshots", "deltas", "tardis", "hftbacktest", "nautilus")


@dataclass
class ExportResult:
    """What :func:`export` wrote: ``rows`` (table rows, CSV lines or events), ``paths`` (the files
    written) and format details (hftbacktest: ``tick_size``, ``lot_size``, ``book``)."""

    format: str
    report: ReplayReport
    rows: int
    paths: list[str]
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the CLI."""
        what = {"tardis": "lines", "hftbacktest": "events"}.get(self.format, "rows")
        where = self.paths[0] if len(self.paths) == 1 else f"{len(self.paths)} files"
        extra = "".join(f", {k} {v}" for k, v in self.details.items())
        return f"wrote {where} ({self.format}: {self.rows} {what}{extra})"


def export(
    paths: PathLike | Iterable[PathLike],
    out_path: PathLike,
    format: str = "series",
    *,
    books: Iterable[str] | None = None,
    start: int | str | None = None,
    end: int | str | None = None,
    levels: int = 10,
    every: int | str | None = None,
    exact: bool = False,
    bps: Iterable[float] = (5, 10, 25),
    verify_checksum: bool = True,
    progress: bool | None = False,
) -> ExportResult:
    """Replay ``paths`` as one stream and write ``format`` (:data:`FORMATS`) to ``out_path`` (a
    file; for ``nautilus`` the catalog directory). ``books``: ``"channel/instId"`` keys to keep
    (default all; hftbacktest needs exactly one book in the result); ``start``/``end``: the time
    window, ns or ISO text (``selection.parse_time``); ``levels``/``every``/``exact``: the
    snapshots table's depth, interval (ns or ``"100ms"``) and integer columns; ``bps``: the series'
    depth bands."""
    if format not in FORMATS:
        raise ValueError(f"format {format!r}: expected one of {', '.join(FORMATS)}")
    path_list = [os.fspath(p) for p in _as_path_list(paths)]
    out = os.fspath(out_path)
    select = Selection.of(books, start, end)
    common: dict[str, Any] = {
        "select": select,
        "verify_checksum": verify_checksum,
        "progress": progress,
    }
    if format == "series":
        report = export_replay(path_list, out, bps=bps, **common)
        return ExportResult(format, report, _parquet_rows(out), [out])
    if format == "snapshots":
        from .snapshots import export_snapshots

        every_ns = parse_interval(every) if isinstance(every, str) else int(every or 0)
        report = export_snapshots(
            path_list, out, levels=levels, every_ns=every_ns, exact=exact, **common
        )
        return ExportResult(format, report, read_metadata(out).get("rows", 0), [out])
    if format == "deltas":
        from .deltatable import export_deltas

        report = export_deltas(path_list, out, **common)
        return ExportResult(format, report, read_metadata(out)["rows"], [out])
    if format == "tardis":
        from .deltastream import replay_deltas
        from .tardis_writer import TardisWriter

        writer = TardisWriter(out)
        try:
            report, _ = replay_deltas(path_list, writer.write, **common)
        except BaseException:
            writer.abort()
            raise
        writer.close()
        return ExportResult(format, report, writer.lines, [out])
    if format == "hftbacktest":
        from .hft import export_hftbacktest

        report, hft = export_hftbacktest(path_list, out, **common)
        details = {
            "book": hft.book,
            "tick_size": f"{hft.tick_size:g}",
            "lot_size": f"{hft.lot_size:g}",
        }
        return ExportResult(format, report, hft.events, [out], details)
    from .nautilus import export_nautilus

    report, files = export_nautilus(path_list, out, **common)
    return ExportResult(format, report, sum(_parquet_rows(f) for f in files), files)


def _parquet_rows(path: str) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)
