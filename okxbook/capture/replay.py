"""Replay captured frames through the same ``Books.apply`` path as live data, and summarise.

Owns the replay loop and its report; reading files is ``capture``'s job, applying frames is the
core's. Files given together are one stream, in order (a snapshot in one file continues in the next),
so a day split into hourly files, or a snapshot and its update in two files, replay as recorded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from okxbook._book import Book
from okxbook._books import Books
from okxbook.errors import (
    ChecksumError,
    FrameError,
    MissingSnapshotError,
    SequenceError,
    UnknownChannelError,
)

from ._series import TopSeries
from .files import CapturedFrame, iter_frames

__all__ = ["ReplayReport", "format_report", "replay", "replay_frames", "sample_capture"]

#: Counters reported per book, in this order.
BOOK_FIELDS = (
    "frames",
    "snapshots",
    "updates",
    "checksum_ok",
    "checksum_mismatch",
    "checksum_absent",
    "seq_gaps",
    "seq_resets",
    "heartbeats",
    "missing_deletes",
    "dropped_while_invalid",
)


def sample_capture() -> str:
    """Path of the bundled real capture (OKX ``books``, 3 instruments, 2022-05-13; see
    ``okxbook/data/NOTICE-cryptofeed.txt``)."""
    return str(resources.files("okxbook") / "data" / "okx-books-2022-05-13.cryptofeed.gz")


@dataclass
class ReplayReport:
    """What a replay saw. ``ok`` is False if any checksum mismatched, any sequence gap was found or
    any frame was malformed."""

    books: dict[str, dict[str, Any]] = field(default_factory=dict)
    frames: int = 0
    events: int = 0
    other_channels: int = 0  # pushes of non-book channels (trades, tickers ...)
    before_snapshot: int = 0  # updates for a book with no snapshot yet (capture began mid-stream)
    bad_frames: int = 0
    errors: list[str] = field(default_factory=list)  # the first few problems, for the reader

    @property
    def checksum_mismatches(self) -> int:
        return sum(b["checksum_mismatch"] for b in self.books.values())

    @property
    def seq_gaps(self) -> int:
        return sum(b["seq_gaps"] for b in self.books.values())

    @property
    def ok(self) -> bool:
        return self.checksum_mismatches == 0 and self.seq_gaps == 0 and self.bad_frames == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "books": self.books,
            "frames": self.frames,
            "events": self.events,
            "other_channels": self.other_channels,
            "before_snapshot": self.before_snapshot,
            "bad_frames": self.bad_frames,
            "checksum_mismatch": self.checksum_mismatches,
            "seq_gaps": self.seq_gaps,
            "ok": self.ok,
            "errors": self.errors,
        }


def _book_summary(book: Book) -> dict[str, Any]:
    stats = book.stats()
    out: dict[str, Any] = {name: stats[name] for name in BOOK_FIELDS}
    out["status"] = book.status
    out["seq_id"] = book.seq_id if book.seq_id >= 0 else None
    out["best_bid"] = list(book.best_bid) if book.best_bid is not None else None
    out["best_ask"] = list(book.best_ask) if book.best_ask is not None else None
    return out


def replay_frames(
    frames: Iterable[CapturedFrame],
    books: Books | None = None,
    series: TopSeries | None = None,
    max_errors: int = 20,
) -> tuple[Books, ReplayReport]:
    """Apply every frame; integrity and input errors are counted (the books record them too) and
    replay carries on, as a live feeder would after a resync. With ``series``, every book frame
    (including one that invalidated its book) adds a row to it."""
    books = books if books is not None else Books()
    report = ReplayReport()
    apply = books.apply
    observe = series.observe if series is not None else None
    for captured in frames:
        if not captured.frame:
            continue
        report.frames += 1
        try:
            result = apply(captured.frame)
        except UnknownChannelError:
            report.other_channels += 1
            continue
        except MissingSnapshotError:
            report.before_snapshot += 1
            continue
        except (ChecksumError, SequenceError) as exc:
            if len(report.errors) < max_errors:
                report.errors.append(f"line {captured.line_no}: {exc}")
            book = books.get(exc.channel or "", exc.inst_id or "")
            if observe is not None and book is not None:
                observe(book, captured.recv_ns or 0)
            continue
        except FrameError as exc:
            report.bad_frames += 1
            if len(report.errors) < max_errors:
                report.errors.append(f"line {captured.line_no}: {exc}")
            continue
        if not isinstance(result, Book):
            report.events += 1
        elif observe is not None:
            observe(result, captured.recv_ns or 0)
    for book in books:
        if book.frames or book.snapshots:
            report.books[f"{book.channel}/{book.inst_id}"] = _book_summary(book)
    return books, report


def _chain(paths: Iterable[str | os.PathLike[str]]) -> Iterator[CapturedFrame]:
    for path in paths:
        yield from iter_frames(path)


def replay(
    paths: Iterable[str | os.PathLike[str]],
    verify_checksum: bool = True,
    *,
    series: TopSeries | None = None,
    progress: bool | None = False,
) -> ReplayReport:
    """Replay capture files as one stream and return the report; with ``series``, fill it.
    ``progress``: a progress line on stderr (``None``: only when stderr is a terminal)."""
    paths = [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    books = Books(verify_checksum=verify_checksum)
    if progress is False:
        return replay_frames(_chain(paths), books, series=series)[1]
    from .progress import Progress, track_frames

    try:
        total: int | None = sum(os.path.getsize(p) for p in paths)
    except OSError:
        total = None  # replay names the missing file; the bar just has no ETA
    with Progress(total_bytes=total, enabled=progress) as bar:
        frames = track_frames(paths, bar) if bar.enabled else _chain(paths)
        return replay_frames(frames, books, series=series)[1]


def format_report(report: ReplayReport) -> str:
    """The human-readable table ``okxbook replay`` prints."""
    lines = []
    head = (
        "book",
        "frames",
        "snap",
        "upd",
        "cs_ok",
        "cs_bad",
        "cs_abs",
        "gaps",
        "resets",
        "hb",
        "del_missing",
        "best bid",
        "best ask",
    )
    rows = []
    for key, b in sorted(report.books.items()):
        bid = f"{b['best_bid'][0]} x {b['best_bid'][1]}" if b["best_bid"] else "-"
        ask = f"{b['best_ask'][0]} x {b['best_ask'][1]}" if b["best_ask"] else "-"
        rows.append(
            (
                key,
                b["frames"],
                b["snapshots"],
                b["updates"],
                b["checksum_ok"],
                b["checksum_mismatch"],
                b["checksum_absent"],
                b["seq_gaps"],
                b["seq_resets"],
                b["heartbeats"],
                b["missing_deletes"],
                bid,
                ask,
            )
        )
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        lines.append(
            "  ".join(
                str(v).ljust(w) if i in (0, 11, 12) else str(v).rjust(w)
                for i, (v, w) in enumerate(zip(r, widths))
            ).rstrip()
        )
    lines.append("")
    lines.append(
        f"{report.frames} frames: {report.events} events, {report.other_channels} "
        f"other channels, {report.before_snapshot} before a snapshot, "
        f"{report.bad_frames} malformed; checksum mismatches {report.checksum_mismatches}, "
        f"sequence gaps {report.seq_gaps}: {'OK' if report.ok else 'PROBLEMS'}"
    )
    lines.extend(f"  {e}" for e in report.errors)
    return "\n".join(lines)
