"""Replay captured frames through the same ``Books.apply`` path as live data, and summarise.

Owns the replay loop and its report; reading files is ``capture``'s job, applying frames is the
core's. Files given together are one stream, in order (a snapshot in one file continues in the next),
so a day split into hourly files, or a snapshot and its update in two files, replay as recorded.

Carried snapshots (``files.CARRY_PREFIX``: the recorder opens each file after its first with the
books as they stood) are applied only to a book replay does not hold live yet, i.e. when a file is
replayed on its own, and add no series row; in one stream they are skipped, so a recording replays
to the same books and rows whole or file by file.

A report is ``ok`` only if the run did what was asked (``ReplayReport.problems`` is empty): no
checksum mismatch, sequence gap or malformed frame, not ``truncated`` (a half-written last line or a
compressed stream cut short), and ``no book`` is not set (every update came after its book's
snapshot, and at least one book was made; an empty file makes none), and, when a ``--from``/``--to``
window was given, at least one book frame fell inside it (a window that selects nothing is
``nothing in window``, not an empty success).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol

import orjson

from okxbook import okx
from okxbook._book import Book
from okxbook._books import Books
from okxbook.errors import (
    ChecksumError,
    FrameError,
    MissingSnapshotError,
    SequenceError,
    UnknownChannelError,
)
from okxbook.events import INST_ID_CODE_EVENT

from .files import CARRY_PREFIX, CapturedFrame, is_tardis_csv, iter_frames
from .selection import Selection
from .tardis import NOTE_UNVERIFIED

__all__ = [
    "FrameSink",
    "ReplayReport",
    "format_report",
    "replay",
    "replay_frames",
    "sample_capture",
]


class FrameSink(Protocol):
    """What replay hands each book frame to: ``TopSeries``, ``TopLevels``, the delta exports."""

    def observe(self, book: Book, recv_ns: int, /) -> None: ...


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
    """What a replay saw. ``ok`` is False when ``problems`` names anything (module docstring)."""

    books: dict[str, dict[str, Any]] = field(default_factory=dict)
    frames: int = 0
    events: int = 0
    other_channels: int = 0  # pushes of non-book channels (trades, tickers ...)
    before_snapshot: int = 0  # updates for a book with no snapshot yet (capture began mid-stream)
    bad_frames: int = 0
    carried: int = 0  # carried snapshots applied (a file replayed without the one before it)
    carried_skipped: int = 0  # carried snapshots of books already live (one stream)
    filtered: int = 0  # frames of books left out by a --book selection (not applied)
    outside_window: int = 0  # book frames applied but outside --from/--to (not exported)
    in_window: int = 0  # book frames inside --from/--to (counted only when a window is given)
    windowed: bool = False  # a --from/--to window was given
    truncated: bool = False  # a half-written last line or a compressed stream cut short
    errors: list[str] = field(default_factory=list)  # the first few problems, for the reader
    warnings: list[str] = field(default_factory=list)  # e.g. files given out of time order
    max_errors: int = 20

    def note(self, message: str) -> None:
        """Keep ``message`` among the first ``max_errors`` problems."""
        if len(self.errors) < self.max_errors:
            self.errors.append(message)

    def note_truncated(self, message: str) -> None:
        """``iter_frames``'s ``on_problem``: data at the end of a file was lost."""
        self.truncated = True
        self.note(message)

    @property
    def checksum_mismatches(self) -> int:
        return sum(b["checksum_mismatch"] for b in self.books.values())

    @property
    def seq_gaps(self) -> int:
        return sum(b["seq_gaps"] for b in self.books.values())

    unbooked: list[str] = field(default_factory=list)  # books whose updates never found a snapshot

    @property
    def no_book(self) -> bool:
        """No book was made at all, or some book's updates never found a snapshot (a capture that
        starts mid-stream: updates before a snapshot that then comes are counted in
        ``before_snapshot`` only, as a REST-seeded recording legitimately has them)."""
        return bool(self.unbooked) or not self.books

    @property
    def problems(self) -> list[str]:
        """Why the replay is not ``ok``, in words (empty when it is)."""
        out = []
        if self.checksum_mismatches:
            out.append("checksum mismatch")
        if self.seq_gaps:
            out.append("sequence gap")
        if self.bad_frames:
            out.append("malformed frame")
        if self.truncated:
            out.append("truncated")
        if self.no_book:
            out.append("no book")
        elif self.windowed and not self.in_window:
            out.append("nothing in window")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems

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
            "carried": self.carried,
            "filtered": self.filtered,
            "outside_window": self.outside_window,
            "in_window": self.in_window,
            "truncated": self.truncated,
            "no_book": self.no_book,
            "unbooked": self.unbooked,
            "problems": self.problems,
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
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
    series: FrameSink | None = None,
    max_errors: int = 20,
    *,
    report: ReplayReport | None = None,
    where: Callable[[], str] | None = None,
    select: Selection | None = None,
) -> tuple[Books, ReplayReport]:
    """Apply every frame; integrity and input errors are counted (the books record them too) and
    replay carries on, as a live feeder would after a resync. With ``series`` (any
    :class:`FrameSink`), every book frame (including one that invalidated its book) is handed to
    it. ``select``: only some books (the others are not applied) and a time window (frames
    outside it are applied but not handed over; see ``selection``). ``where()`` names the file
    being read, for the error lines (``<file>:<line>: <error>``)."""
    books = books if books is not None else Books()
    if report is None:
        report = ReplayReport(max_errors=max_errors)
    apply = books.apply
    observe = series.observe if series is not None else None
    select = select if select is not None and not select.everything else None
    takes = select.takes if select is not None and select.books else None
    start = select.start_ns if select is not None else None
    end = select.end_ns if select is not None else None
    if start is not None or end is not None:
        skip = getattr(series, "skip", None)  # a delta sink drains what it does not keep
        report.windowed = True  # the window is counted even with nothing to hand frames to
        observe = _windowed(observe, start, end, report, skip)

    unbooked: dict[str, str] = {}  # book key -> where its first update without a snapshot was
    recorder = books.recorder  # a DeltaRecorder files each frame under its receive time

    def at(line_no: int) -> str:
        return f"{where()}:{line_no}" if where is not None else f"line {line_no}"

    for captured in frames:
        frame = captured.frame
        if not frame:
            continue
        if takes is not None and not takes(frame) and not _takes_binary(books, frame, select):
            report.filtered += 1
            continue
        if end is not None and captured.recv_ns is not None and captured.recv_ns >= end:
            break  # receive times only grow: nothing after this is in the window
        if frame.startswith(CARRY_PREFIX):
            _carried(books, captured, report, at)
            continue
        report.frames += 1
        if recorder is not None:
            recorder.recv_ns = captured.recv_ns or 0
        try:
            result = apply(frame)
        except UnknownChannelError:
            report.other_channels += 1
            continue
        except MissingSnapshotError as exc:
            key = f"{exc.channel}/{exc.inst_id}"
            if key not in unbooked:
                unbooked[key] = f"{at(captured.line_no)}: {exc}: no book"
            report.before_snapshot += 1
            continue
        except (ChecksumError, SequenceError) as exc:
            report.note(f"{at(captured.line_no)}: {exc}")
            book = books.get(exc.channel or "", exc.inst_id or "")
            if observe is not None and book is not None:
                observe(book, captured.recv_ns or 0)
            continue
        except FrameError as exc:
            report.bad_frames += 1
            report.note(f"{at(captured.line_no)}: {exc}")
            continue
        if not isinstance(result, Book):
            report.events += 1
        elif observe is not None:
            observe(result, captured.recv_ns or 0)
    for book in books:
        if book.frames or book.snapshots:
            report.books[f"{book.channel}/{book.inst_id}"] = _book_summary(book)
    for key, first in unbooked.items():
        if key not in report.books:
            report.unbooked.append(key)
            report.note(first)
    return books, report


_CODE_EVENT = f'"{INST_ID_CODE_EVENT}"'.encode()


def _takes_binary(books: Books, frame: bytes, select: Selection | None) -> bool:
    """Whether a binary (SBE) frame is of a selected book: it names its book by templateId and
    instIdCode (mapped by the recording's ``okxbook-instIdCode`` lines), not by ``arg`` bytes."""
    head = okx.SBE_HEADER_BYTES
    if select is None:
        return False
    if frame.startswith(b"{") and _CODE_EVENT in frame[:64]:
        return True  # the instIdCode map itself: needed to name the binary frames that follow
    if len(frame) < head + 8 or 0 not in frame[:8]:
        return False
    channel = okx.SBE_TEMPLATE_CHANNEL.get(int.from_bytes(frame[2:4], "little"))
    inst = books.inst_id_of(int.from_bytes(frame[head : head + 8], "little", signed=True))
    return channel is not None and inst is not None and f"{channel}/{inst}" in select.books


def _windowed(
    observe: Callable[[Book, int], None] | None,
    start: int | None,
    end: int | None,
    report: ReplayReport,
    skip: Callable[[], None] | None = None,
) -> Callable[[Book, int], None]:
    """``observe`` for the frames whose time (receive time, else exchange ``ts``) is in
    ``[start, end)``; ``skip()`` for the others."""
    lo = start if start is not None else -(2**63)
    hi = end if end is not None else 2**63

    def windowed(book: Book, recv_ns: int) -> None:
        t = recv_ns or book.ts_ms * 1_000_000
        if lo <= t < hi:
            report.in_window += 1
            if observe is not None:
                observe(book, recv_ns)
        else:
            report.outside_window += 1
            if skip is not None:
                skip()

    return windowed


def _carried(
    books: Books, captured: CapturedFrame, report: ReplayReport, at: Callable[[int], str]
) -> None:
    """A carried snapshot: the book as the recorder held it when it opened this file. Applied only
    if replay holds no live book for it (this file replayed on its own)."""
    try:
        arg = orjson.loads(captured.frame)["arg"]
        book = books.get(arg["channel"], arg["instId"])
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        report.bad_frames += 1
        report.note(f"{at(captured.line_no)}: malformed carried snapshot ({exc})")
        return
    if book is not None and book.is_valid:
        report.carried_skipped += 1
        return
    try:
        books.apply(captured.frame)
    except (FrameError, ChecksumError, SequenceError, UnknownChannelError) as exc:
        report.bad_frames += 1
        report.note(f"{at(captured.line_no)}: carried snapshot rejected: {exc}")
        return
    report.carried += 1


class _Chain:
    """``iter_frames`` over several files in order; ``path`` is the file being read."""

    def __init__(
        self, paths: list[str], on_problem: Callable[[str], None], report: ReplayReport
    ) -> None:
        self.on_read: Callable[[int], None] | None = None  # bytes read from disk (progress)
        self.paths = paths
        self.path = paths[0] if paths else "-"
        self.on_problem = on_problem
        self.report = report
        self._prev: tuple[str, int] | None = None

    def set_path(self, path: str) -> None:
        self.path = path

    def get_path(self) -> str:
        return self.path

    def __iter__(self) -> Iterator[CapturedFrame]:
        for path in self.paths:
            self.path = path
            frames = iter_frames(path, on_problem=self.on_problem, on_read=self.on_read)
            first = next(frames, None)
            if first is None:
                continue
            self.started(path, first.recv_ns)
            if is_tardis_csv(path):
                self.report.warnings.append(f"{path}: {NOTE_UNVERIFIED}")
            yield first
            yield from frames

    def started(self, path: str, recv_ns: int | None) -> None:
        """Each file's first receive time against the one before: files given together are one
        stream in the order given, so a file that starts earlier than the one before it was
        most likely given out of order (``*`` sorts ``..T10`` before ``..T9`` in some names)."""
        if recv_ns is None:
            return
        prev = self._prev
        if prev is not None and recv_ns < prev[1]:
            self.report.warnings.append(
                f"{path}: starts before {prev[0]} does (receive times); files given out of time "
                "order? They are replayed in the order given"
            )
        self._prev = (path, recv_ns)


def replay(
    paths: Iterable[str | os.PathLike[str]],
    verify_checksum: bool = True,
    *,
    series: FrameSink | None = None,
    progress: bool | None = False,
    select: Selection | None = None,
    books: Books | None = None,
) -> ReplayReport:
    """Replay capture files as one stream and return the report; with ``series``, fill it.
    ``progress``: a progress line on stderr (``None``: only when stderr is a terminal);
    ``select``: books and time window (``selection.Selection``); ``books``: replay into these
    (e.g. with a delta recorder attached) instead of new ones."""
    names: list[str] = [
        os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)
    ]
    if books is None:
        books = Books(verify_checksum=verify_checksum)
    report = ReplayReport()
    chain = _Chain(names, report.note_truncated, report)
    if progress is False or "-" in names:  # stdin has no size to show progress against
        return replay_frames(
            chain, books, series=series, report=report, where=chain.get_path, select=select
        )[1]
    from .progress import Progress

    try:
        total: int | None = sum(os.path.getsize(p) for p in names)
    except OSError:
        total = None  # replay names the missing file; the bar just has no ETA
    with Progress(total_bytes=total, enabled=progress) as bar:
        if bar.enabled:  # told the bytes read, a buffer at a time: nothing per frame
            chain.on_read = bar.add_bytes
        report = replay_frames(
            chain, books, series=series, report=report, where=chain.get_path, select=select
        )[1]
        bar.finish(report.frames, total)
        return report


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
        f"sequence gaps {report.seq_gaps}: "
        + ("OK" if report.ok else "PROBLEMS: " + ", ".join(report.problems))
    )
    lines.extend(f"  {e}" for e in report.errors)
    lines.extend(f"  warning: {w}" for w in report.warnings)
    return "\n".join(lines)
