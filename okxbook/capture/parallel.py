"""Replay many capture files in parallel, one task per file, each exported to its own file.

Owns the fan-out: a local process pool by default, or a Dask distributed cluster. A task is
``replay_file``: one file replayed alone (its own ``Books``, so unlike ``replay.replay`` files are
*not* one stream; every file ``okxbook record`` writes opens with the books carried over from the
file before, see ``recorder``, so a recording's hourly files each replay alone to the books of
one stream; a file whose updates come before any snapshot is reported ``no book``, not ok), its
rows exported by ``export`` in the chosen format to ``<out_dir>/<file stem>.<suffix>``
(``nautilus``: every file into the one catalog ``out_dir``, a file per book and time range), and a
small ``FileResult`` sent back. The delta-based formats open each book of each file with a whole
book (``deltastream``), so every output file stands on its own and the outputs of consecutive
files, applied in order, give the books of the one stream. Tables never travel back to
the caller: on a cluster, ``out_dir`` must be a path every worker can write (a shared filesystem).
Replaying, exporting and reading files are the other modules' jobs.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .export import export, replay_series, write_parquet
from .files import CaptureFormatError
from .selection import Selection

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["FileResult", "format_results", "out_name", "replay_file", "replay_many"]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class FileResult:
    """What one task did. ``ok``: the replay of the file alone did what was asked
    (``ReplayReport.ok``: read to the end, no checksum mismatch, sequence gap or malformed frame,
    and every update after its book's snapshot: a file that starts mid-stream is ``no book``);
    ``problems`` says why not; ``error`` names an unreadable file (then nothing is written and
    ``out_path`` is None)."""

    path: str  # the capture file
    out_path: str | None  # the Parquet file written
    frames: int  # frames read
    rows: int  # book frames recorded (rows in the Parquet file)
    books: int
    checksum_mismatches: int
    seq_gaps: int
    bad_frames: int
    ok: bool
    seconds: float  # wall time of the task on its worker
    bytes: int = 0  # on-disk size of the capture file
    error: str | None = None
    problems: tuple[str, ...] = ()  # ReplayReport.problems: "no book", "truncated", ...
    before_snapshot: int = 0  # updates that came before their book's snapshot
    in_window: int | None = None  # book frames inside --from/--to (None: no window given)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The output suffix of each export format.
SUFFIX = {
    "series": ".parquet",
    "snapshots": ".parquet",
    "deltas": ".parquet",
    "tardis": ".csv.gz",
    "hftbacktest": ".npz",
}


def out_name(path: PathLike, format: str = "series") -> str:
    """Output file name for a capture: ``<stem>.parquet`` (``BTC-USDT-2026-11-25.jsonl.gz`` ->
    ``BTC-USDT-2026-11-25.jsonl.parquet``; only the last suffix goes, so ``x.jsonl`` and
    ``x.jsonl.gz`` do not collide); ``.csv.gz`` for tardis, ``.npz`` for hftbacktest."""
    return Path(path).stem + SUFFIX[format]


def replay_file(
    path: PathLike,
    out_path: PathLike,
    *,
    bps: Iterable[float] = (5, 10, 25),
    only_top_changes: bool = False,
    verify_checksum: bool = True,
    format: str = "series",
    select: Selection | None = None,
    levels: int = 10,
    every: int | str | None = None,
    exact: bool = False,
) -> FileResult:
    """Replay one file on its own and write its rows to ``out_path`` in ``format``; the unit of
    work of ``replay_many`` (module level so a process pool or Dask can ship it by reference)."""
    start = time.perf_counter()
    path, out_path = os.fspath(path), os.fspath(out_path)
    try:
        size = os.path.getsize(path)
        if format == "series" and (select is None or select.everything):
            series, report = replay_series(
                path, bps=bps, only_top_changes=only_top_changes, verify_checksum=verify_checksum
            )
            write_parquet(
                series, out_path, metadata={"sources": [path], "report": report.as_dict()}
            )
            rows = len(series)
        else:
            sel = select or Selection()
            result = export(
                [path],
                out_path,
                format,
                books=sel.books,
                start=sel.start_ns,
                end=sel.end_ns,
                levels=levels,
                every=every,
                exact=exact,
                bps=bps,
                verify_checksum=verify_checksum,
            )
            report, rows = result.report, result.rows
    except (OSError, CaptureFormatError, ValueError) as exc:
        # An unreadable or foreign file in a batch of hundreds: say which and why, and let the
        # other tasks finish; the caller sees ok=False (the CLI exits non-zero).
        return FileResult(
            path,
            None,
            0,
            0,
            0,
            0,
            0,
            0,
            False,
            time.perf_counter() - start,
            error=f"{type(exc).__name__}: {exc}",
        )
    problems = report.problems
    if "nothing in window" in problems:
        # One file of many may lie outside the window: the caller judges the whole run
        # (``nothing_in_window``).
        problems.remove("nothing in window")
    if report.before_snapshot and "no book" not in problems:
        # Alone, a file must start with its books: updates before them are rows a replay of the
        # files as one stream would have had.
        problems.append("no book")
    return FileResult(
        path,
        out_path,
        report.frames,
        rows,
        len(report.books),
        report.checksum_mismatches,
        report.seq_gaps,
        report.bad_frames,
        not problems,
        time.perf_counter() - start,
        bytes=size,
        problems=tuple(problems),
        before_snapshot=report.before_snapshot,
        in_window=report.in_window if report.windowed else None,
    )


def nothing_in_window(results: Sequence[FileResult]) -> bool:
    """A ``--from``/``--to`` window was given and no book frame of any file fell inside it."""
    counts = [r.in_window for r in results if r.in_window is not None]
    return bool(counts) and not any(counts)


def _plan(
    paths: Iterable[PathLike], out_dir: PathLike, format: str = "series"
) -> list[tuple[str, str]]:
    """Absolute (input, output) pairs; absolute because a Dask worker's cwd is not ours. Two inputs
    with the same stem (``a/OKX.ws.1.0``, ``b/OKX.ws.1.0``) would overwrite one output: refused
    before any work starts. ``nautilus``: every output is the catalog ``out_dir``."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    if format == "nautilus":
        return [(os.path.abspath(os.fspath(p)), out_dir) for p in paths]
    plan = [
        (os.path.abspath(os.fspath(p)), os.path.join(out_dir, out_name(p, format))) for p in paths
    ]
    seen: dict[str, str] = {}
    for src, dst in plan:
        if dst in seen:
            raise ValueError(
                f"{seen[dst]} and {src} would both be written to {dst}; "
                "rename one or replay them into different directories"
            )
        seen[dst] = src
    return plan


def _largest_first(plan: list[tuple[str, str]]) -> list[int]:
    # Longest tasks first (LPT): a big file started last would leave the other workers idle
    # at the end. Missing files sort last and fail fast in their task.
    def size(i: int) -> int:
        try:
            return os.path.getsize(plan[i][0])
        except OSError:
            return -1

    return sorted(range(len(plan)), key=size, reverse=True)


def replay_many(
    paths: Sequence[PathLike],
    out_dir: PathLike,
    *,
    workers: int | None = None,
    dask_address: str | Client | None = None,
    bps: Iterable[float] = (5, 10, 25),
    only_top_changes: bool = False,
    verify_checksum: bool = True,
    progress: bool | None = False,
    format: str = "series",
    select: Selection | None = None,
    levels: int = 10,
    every: int | str | None = None,
    exact: bool = False,
) -> list[FileResult]:
    """Replay each of ``paths`` independently (one task per file) and write
    ``<out_dir>/<stem>.<suffix>`` for each in ``format`` (``export.FORMATS``; ``select``,
    ``levels``, ``every``, ``exact`` as there); return their ``FileResult`` in the order of
    ``paths``.

    Runs on a local ``ProcessPoolExecutor`` with ``workers`` processes (default: the CPU count),
    or, when ``dask_address`` is given, on a Dask distributed cluster: a ``"tcp://host:port"``
    scheduler address (a client is opened and closed here) or an existing ``distributed.Client``
    (left open); ``workers`` is then ignored (the cluster has its own). ``progress``: a line on
    stderr advanced as files finish (None: only on a terminal).
    """
    plan = _plan(paths, out_dir, format)
    if not plan:
        return []
    os.makedirs(os.path.abspath(os.fspath(out_dir)), exist_ok=True)
    kwargs: dict[str, Any] = {
        "bps": tuple(float(b) for b in bps),
        "only_top_changes": only_top_changes,
        "verify_checksum": verify_checksum,
        "format": format,
        "select": select,
        "levels": levels,
        "every": every,
        "exact": exact,
    }
    order = _largest_first(plan)
    results: list[FileResult | None] = [None] * len(plan)

    from .progress import Progress

    total = sum(os.path.getsize(s) for s, _ in plan if os.path.exists(s))
    with Progress(total_bytes=total, enabled=progress, every=1, label="replay") as bar:
        done_frames = done_bytes = 0

        def collect(i: int, result: FileResult) -> None:
            nonlocal done_frames, done_bytes
            results[i] = result
            done_frames += result.frames
            done_bytes += result.bytes
            bar.update(done_frames, done_bytes)

        if dask_address is not None:
            _run_dask(dask_address, plan, order, kwargs, collect)
        else:
            n = min(workers or os.cpu_count() or 1, len(plan))
            ctx = _pool_context()
            with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
                futures = {pool.submit(replay_file, *plan[i], **kwargs): i for i in order}
                for fut in as_completed(futures):
                    collect(futures[fut], fut.result())
        bar.finish(done_frames, done_bytes)
    return [r for r in results if r is not None]


def _pool_context() -> multiprocessing.context.BaseContext:
    # forkserver, not fork: the caller may have threads (a Dask client, an event loop) and forking
    # a threaded process can deadlock; spawn would work too but starts slower. Preloading the
    # replay and Parquet modules in the fork server saves each worker ~0.4 s of imports; pandas
    # too, as pyarrow imports it on the first table it builds (the preload list is process-wide;
    # it only adds imports to the server when that starts).
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["okxbook.parallel", "pyarrow.parquet", "pandas"])
    return ctx


def _run_dask(
    address: str | Client,
    plan: list[tuple[str, str]],
    order: list[int],
    kwargs: dict[str, Any],
    collect: Any,
) -> None:
    from distributed import Client
    from distributed import as_completed as dask_completed

    client = address if isinstance(address, Client) else Client(address)
    try:
        # pure=False: a re-run must replay again (the files may have changed), not reuse results.
        futures = client.map(
            replay_file,
            [plan[i][0] for i in order],
            [plan[i][1] for i in order],
            pure=False,
            **kwargs,
        )
        index = {fut.key: i for fut, i in zip(futures, order)}
        for fut in dask_completed(futures):
            collect(index[fut.key], fut.result())
    finally:
        if client is not address:
            client.close()


def format_results(results: Sequence[FileResult]) -> str:
    """The table ``okxbook replay --workers`` prints: one line per file, then the totals."""
    head = ("file", "frames", "rows", "books", "cs_bad", "gaps", "bad", "s", "result")
    rows = [
        (
            os.path.basename(r.path),
            r.frames,
            r.rows,
            r.books,
            r.checksum_mismatches,
            r.seq_gaps,
            r.bad_frames,
            f"{r.seconds:.2f}",
            "OK" if r.ok else (r.error or ", ".join(r.problems) or "PROBLEMS"),
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head) - 1)]
    lines = [
        "  ".join(
            [
                str(v).ljust(w) if i == 0 else str(v).rjust(w)
                for i, (v, w) in enumerate(zip(row[:-1], widths))
            ]
            + [str(row[-1])]
        )
        for row in [head, *rows]
    ]
    bad = sum(not r.ok for r in results)
    frames = sum(r.frames for r in results)
    lines.append("")
    lines.append(
        f"{len(results)} files, {frames} frames, {sum(r.rows for r in results)} rows: "
        + ("OK" if not bad else f"{bad} with problems")
    )
    return "\n".join(lines)
