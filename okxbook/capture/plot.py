"""A one-look PNG of one book over a replay: prices, spread and near-touch depth against UTC time.

Owns the figure only. The numbers come from ``export`` (a ``TopSeries`` replayed from captures, or
a DataFrame / Parquet file it wrote); nothing here replays or computes book state. Drawn with
matplotlib's object API on an Agg canvas, never through ``pyplot``: no global backend switch, no
window, safe in a server or a worker process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ._series import TopSeries

if TYPE_CHECKING:
    import pandas

__all__ = ["load_frame", "plot_books"]

PathLike = str | os.PathLike[str]
Source = Union[PathLike, Iterable[PathLike], TopSeries, "pandas.DataFrame"]

_PARQUET_MAGIC = b"PAR1"


def _is_parquet(path: PathLike) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == _PARQUET_MAGIC


def load_frame(source: Source, *, bps: Iterable[float] | None = None) -> pandas.DataFrame:
    """The export DataFrame for ``source``: a DataFrame is used as is, a ``TopSeries`` converted,
    Parquet files written by ``export``/``parallel`` read and concatenated, and capture files
    replayed as one stream (with bands ``bps``, default the export's)."""
    import pandas as pd

    from .export import replay_series, to_pandas

    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, TopSeries):
        return to_pandas(source)
    paths: list[PathLike] = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not paths:
        raise ValueError("no input files")
    if all(_is_parquet(p) for p in paths):
        frames = [pd.read_parquet(p) for p in paths]
        if len(frames) == 1:
            return frames[0]
        # Each file has its own categories (its own books): concat as text, categorical again.
        both = pd.concat([f.astype({"book": str}) for f in frames], ignore_index=True)
        return both.astype({"book": "category"})
    kwargs: dict[str, Any] = {} if bps is None else {"bps": tuple(bps)}
    series, _ = replay_series(paths, **kwargs)
    return to_pandas(series)


def _bands(df: pandas.DataFrame) -> list[float]:
    out = []
    for col in df.columns:
        if col.startswith("bid_depth_") and col.endswith("bps"):
            out.append(float(col[len("bid_depth_") : -3].replace("_", ".")))
    return sorted(out)


def _label(b: float) -> str:
    return f"{b:g}".replace(".", "_")


def _time_axis(df: pandas.DataFrame) -> tuple[np.ndarray[Any, Any], str, bool]:
    """x values and their label: receive time if the capture has it, else exchange time, else the
    row number (synthetic JSON-lines streams carry neither)."""
    for col, what in (("recv_time", "receive time"), ("exchange_time", "exchange time")):
        t = df[col]
        if t.notna().all():
            # matplotlib's date axis takes naive datetime64; these are UTC instants.
            return t.dt.tz_convert(None).to_numpy(), f"{what} (UTC)", True
    return np.arange(len(df)), "frame (no timestamps in the capture)", False


def _legend_above(ax: Any, ncols: int, handles: list[Any] | None = None) -> None:
    # Above the panel, right-aligned: a legend inside would cover the data wherever it is put.
    kw: dict[str, Any] = {} if handles is None else {"handles": handles}
    ax.legend(
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncols=ncols,
        fontsize="small",
        frameon=False,
        borderaxespad=0.2,
        **kw,
    )


def _si(v: float) -> str:
    """Axis label for a size: 2,500 -> "2.5k", 1e10 -> "10G"; sizes span 1e-3 (BTC) to 1e10."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:.4g}{unit}"
    return f"{v:.4g}"


def plot_books(
    source: Source,
    out_png: PathLike,
    *,
    book: str | None = None,
    depth_bps: Iterable[float] | None = None,
    title: str | None = None,
    width_in: float = 12.0,
    dpi: int = 110,
) -> str:
    """Plot one book and save it as a PNG at ``out_png``; returns the ``"channel/instId"`` drawn.

    ``source``: capture files (replayed as one stream), exported Parquet files, a ``TopSeries`` or
    an export DataFrame. ``book``: ``"channel/instId"``, default the book with the most frames.
    ``depth_bps``: which bands to draw (default all in the data; for captures also the bands
    recorded). Panels share the time axis: best bid/ask and mid; spread in bps of the mid; size
    resting within each band, asks up and bids down. Rows where the book was invalid (after a
    failed checksum or seqId check) are left as gaps.
    """
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    want = None if depth_bps is None else sorted(float(b) for b in depth_bps)
    df = load_frame(source, bps=want)
    names = df["book"].astype(str)
    if len(df) == 0:
        raise ValueError("no book frames to plot")
    counts = names.value_counts()
    if book is None:
        book = str(counts.index[0])
    elif book not in counts.index:
        raise ValueError(f"no book {book!r}; books: {', '.join(sorted(counts.index))}")
    rows = df[(names == book).to_numpy()]
    bands = _bands(rows)
    if want is not None:
        missing = [b for b in want if b not in bands]
        if missing:
            raise ValueError(f"bands {missing} not in the data (it has {bands})")
        bands = want

    x, xlabel, is_time = _time_axis(rows)
    valid = (
        rows["valid"].to_numpy()
        & rows["bid_ticks"].to_numpy().astype(bool)
        & rows["ask_ticks"].to_numpy().astype(bool)
    )

    def col(name: str) -> np.ndarray[Any, Any]:
        v = rows[name].to_numpy(dtype="f8", copy=True)
        v[~valid] = np.nan
        return v

    bid, ask, mid = col("bid_px"), col("ask_px"), col("mid")
    spread_bps = col("spread") / mid * 1e4

    fig = Figure(figsize=(width_in, width_in * 0.75), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax_px, ax_spread, ax_depth = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3, 2.4]}
    )
    step = {"drawstyle": "steps-post"}  # a book state holds until the next frame

    ax_px.plot(x, ask, color="#c0392b", lw=0.8, label="best ask", **step)
    ax_px.plot(x, bid, color="#1e8449", lw=0.8, label="best bid", **step)
    ax_px.plot(x, mid, color="#222222", lw=0.6, alpha=0.6, label="mid", **step)
    ax_px.set_ylabel("price")
    # Prices such as 0.00000074 or 43250.1: plain numbers, no "+4.325e4" offset to decode.
    fmt = ScalarFormatter(useOffset=False)
    fmt.set_powerlimits((-4, 6))
    ax_px.yaxis.set_major_formatter(fmt)
    _legend_above(ax_px, ncols=3)

    ax_spread.plot(x, spread_bps, color="#6c3483", lw=0.8, **step)
    ax_spread.set_ylabel("spread\n(bps of mid)")
    if np.isfinite(spread_bps).any():
        med = np.nanmedian(spread_bps)
        ax_spread.axhline(med, color="#6c3483", lw=0.7, ls=":", label=f"median {med:.3g} bps")
        ax_spread.set_ylim(bottom=0)
        _legend_above(ax_spread, ncols=1)

    # Widest band first so the narrower ones are drawn on top of it, darker.
    handles: dict[tuple[str, float], Any] = {}
    shades = np.linspace(0.35, 0.9, len(bands)) if len(bands) > 1 else [0.6] * len(bands)
    for b, alpha in zip(reversed(bands), shades):
        lab = _label(b)
        ask_d, bid_d = col(f"ask_depth_{lab}bps"), col(f"bid_depth_{lab}bps")
        handles["ask", b] = ax_depth.fill_between(
            x, 0, ask_d, step="post", color="#c0392b", alpha=alpha, lw=0, label=f"asks ≤ {b:g} bps"
        )
        handles["bid", b] = ax_depth.fill_between(
            x, 0, -bid_d, step="post", color="#1e8449", alpha=alpha, lw=0, label=f"bids ≤ {b:g} bps"
        )
    ax_depth.axhline(0, color="black", lw=0.5)
    ax_depth.set_ylabel("size within band of mid\n(asks up, bids down)")
    # Sizes are magnitudes on both sides: label the bid half without its minus sign.
    ax_depth.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _si(abs(v))))
    if bands:
        # Columns by band (narrowest first), asks over bids: the legend reads like the panel.
        order = [handles[side, b] for b in bands for side in ("ask", "bid")]
        _legend_above(ax_depth, ncols=len(bands), handles=order)

    for ax in (ax_px, ax_spread, ax_depth):
        ax.grid(True, lw=0.4, alpha=0.5)
    ax_depth.set_xlabel(xlabel)
    if is_time:
        locator = AutoDateLocator()
        ax_depth.xaxis.set_major_locator(locator)
        ax_depth.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax_depth.set_xlim(x[0], x[-1])

    if title is None:
        n_invalid = int((~rows["valid"].to_numpy()).sum())
        span = ""
        if is_time:
            t0, t1 = (np.datetime_as_string(v, unit="s").replace("T", " ") for v in (x[0], x[-1]))
            span = f", {t0} to {t1[11:] if t0[:10] == t1[:10] else t1} UTC"
        title = f"{book}: {len(rows):,} frames{span}"
        if n_invalid:
            title += f" ({n_invalid:,} while invalid, not drawn)"
    fig.suptitle(title)
    # Agg refuses a single path of too many vertices (OverflowError) unless told to draw it in
    # chunks; a day of one busy book is millions of steps.
    with rc_context({"agg.path.chunksize": 20_000}):
        fig.savefig(os.fspath(out_png), format="png")
    return book
