"""The ``okxbook`` command line: argument parsing and output only; the work is done elsewhere.

Errors a person can act on, from one handler in :func:`main`: a bad value names its flag (argparse,
exit 2); a missing optional extra is found before any work starts and prints the pip command
(exit 2); Ctrl-C prints one line (exit 130); an unreadable file prints ``okxbook <command>: <why>``
(exit 2); nothing a user typed ends in a traceback (``--log-level debug`` shows one for an
unexpected error). Logging goes to stderr as timestamped, levelled lines (``--log-level``,
``--quiet``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from okxbook import okx
from okxbook.capture.files import CaptureFormatError
from okxbook.capture.replay import format_report, replay, sample_capture
from okxbook.errors import RestError

from .values import (
    UsageError,
    bps_list,
    capture_paths,
    http_url,
    inst_id,
    positive_float,
    positive_int,
    ws_url,
)

log = logging.getLogger("okxbook.cli")

#: Optional modules and the extra that installs them (pyproject.toml).
EXTRAS = {
    "pyarrow": "research",
    "pandas": "research",
    "matplotlib": "research",
    "distributed": "research",
    "zstandard": "zstd",
    "picows": "picows",
}


def need(module: str, why: str) -> None:
    """Fail now, before any work, if the optional ``module`` cannot be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        extra = EXTRAS.get(module)
        hint = f"pip install 'okxbook[{extra}]'" if extra else f"pip install {module}"
        raise UsageError(f"{why} needs {module}, which is not installed: {hint}") from None


def writable_output(path: str, flag: str) -> None:
    """Check now that ``path`` can be written (its directory exists and is writable, and it is
    not a directory), so a long replay does not end in an error."""
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path}: is a directory; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{flag} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {path}: directory {parent} is not writable")


def _can_create(directory: str, flag: str) -> None:
    """Create and remove a file in ``directory`` now: permission bits do not tell everything (a
    read-only mount, root on /proc), and an export must not fail after its replay."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".okxbook-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"{flag} {directory}: cannot write there ({exc.strerror})") from None


def _selection_or_usage(args: argparse.Namespace) -> Any:
    from okxbook.capture.selection import Selection

    try:
        return Selection.of(args.book, args.start, args.end)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _export_needs(fmt: str) -> None:
    if fmt in ("series", "snapshots", "deltas", "tardis", "nautilus"):
        need("pyarrow", f"--format {fmt}")


def _cmd_replay(args: argparse.Namespace) -> int:
    paths = capture_paths(args.files) if args.files else [sample_capture()]
    verify = not args.no_checksum
    parallel = args.workers is not None or args.dask is not None or args.out_dir is not None
    select = _selection_or_usage(args)
    if parallel and "-" in paths:
        raise UsageError("--workers/--dask replay files, not stdin ('-')")
    if args.format is not None and not (args.export or parallel):
        raise UsageError("--format says what --export writes: give --export PATH")
    fmt = args.format or "series"
    if args.export or parallel:
        _export_needs(fmt)
    if args.dask is not None:
        need("distributed", "--dask")
    if args.every is not None:
        from okxbook.capture.selection import parse_interval

        try:
            parse_interval(args.every)
        except ValueError as exc:
            raise UsageError(f"--every: {exc}") from None
    if args.export and fmt == "nautilus" and os.path.isdir(args.export):
        if not os.access(args.export, os.W_OK):
            raise UsageError(f"--export {args.export}: directory is not writable")
        _can_create(args.export, "--export")
    elif args.export:
        writable_output(args.export, "--export")
        _can_create(os.path.dirname(os.path.abspath(args.export)), "--export")
    if args.export and fmt == "hftbacktest":
        from okxbook.capture.hft import one_book_or_refuse

        try:
            one_book_or_refuse(paths, select)
        except (OSError, CaptureFormatError, ValueError) as exc:
            raise UsageError(_why(exc)) from None
    result = None
    try:
        if parallel:
            return _replay_parallel(args, paths, verify, fmt, select)
        if args.export:
            from okxbook.capture.export import export

            result = export(
                paths,
                args.export,
                fmt,
                books=select.books,
                start=select.start_ns,
                end=select.end_ns,
                levels=args.levels,
                every=args.every,
                exact=args.exact,
                verify_checksum=verify,
                progress=None,
            )
            report = result.report
        else:
            report = replay(paths, verify_checksum=verify, progress=None, select=select)
    except (OSError, CaptureFormatError, ValueError) as exc:
        print(f"okxbook replay: {_why(exc)}", file=sys.stderr)
        return 2
    if args.json:
        out = report.as_dict()
        if result is not None:
            out["export"] = {"format": fmt, "rows": result.rows, "paths": result.paths}
            out["export"].update(result.details)
        print(json.dumps(out))
        for warning in report.warnings:  # the table shows them; beside JSON they go to stderr
            print(f"okxbook replay: warning: {warning}", file=sys.stderr)
    else:
        print(format_report(report))
        if result is not None:
            print(result.describe())
    return 0 if report.ok else 1


def _replay_parallel(
    args: argparse.Namespace, paths: list[str], verify: bool, fmt: str, select: Any
) -> int:
    from okxbook.capture.parallel import format_results, nothing_in_window, replay_many

    if args.out_dir is None:
        print(
            "okxbook replay: --workers/--dask need --out-dir for the per-file exports",
            file=sys.stderr,
        )
        return 2
    results = replay_many(
        paths,
        args.out_dir,
        workers=args.workers,
        dask_address=args.dask,
        verify_checksum=verify,
        progress=None,
        format=fmt,
        select=select,
        levels=args.levels,
        every=args.every,
        exact=args.exact,
    )
    if args.json:
        print(json.dumps([r.as_dict() for r in results]))
    else:
        print(format_results(results))
    if nothing_in_window(results):
        print("okxbook replay: no book frame falls inside --from/--to", file=sys.stderr)
        return 1
    return 0 if all(r.ok for r in results) else 1


def _cmd_plot(args: argparse.Namespace) -> int:
    need("matplotlib", "okxbook plot")
    need("pandas", "okxbook plot")
    writable_output(args.out, "--out")
    files = capture_paths(args.files)
    from okxbook.capture.plot import plot_books

    try:
        drawn = plot_books(files, args.out, book=args.book, depth_bps=args.bps)
    except (OSError, CaptureFormatError, ValueError) as exc:
        print(f"okxbook plot: {_why(exc)}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({drawn})")
    return 0


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _live_needs(args: argparse.Namespace) -> None:
    if args.transport == "picows":
        need("picows", "--transport picows")
    ca_file = getattr(args, "ca_file", None)
    if ca_file is not None and not (os.path.isfile(ca_file) and os.access(ca_file, os.R_OK)):
        raise UsageError(f"--ca-file {ca_file}: not a readable file")
    if ca_file is not None:
        import ssl

        try:
            ssl.create_default_context(cafile=ca_file)
        except ssl.SSLError as exc:
            raise UsageError(f"--ca-file {ca_file}: not a PEM CA certificate ({exc})") from None
    if getattr(args, "sbe", False):
        if args.channel not in okx.SBE_CHANNELS:
            raise UsageError(
                f"--sbe carries {' and '.join(sorted(okx.SBE_CHANNELS))} only, not "
                f"{args.channel}: add --channel books-l2-tbt (or bbo-tbt)"
            )
    login = "--sbe" if getattr(args, "sbe", False) else None
    if login is None and getattr(args, "channel", None) in okx.LOGIN_CHANNELS:
        login = f"--channel {args.channel}"
    names = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
    missing = [n for n in names if not os.environ.get(n)]
    if login is not None and missing:
        # The command has no credential flags (they would show in `ps`): the environment it is.
        raise UsageError(f"{login} needs an OKX login: set {', '.join(missing)}")


def _cmd_record(args: argparse.Namespace) -> int:
    _live_needs(args)
    if args.compression == "zstd":
        need("zstandard", "--compression zstd")
    from .watch import record

    return record(args)


def _cmd_watch(args: argparse.Namespace) -> int:
    _live_needs(args)
    from .watch import watch

    return watch(args)


def _cmd_publish(args: argparse.Namespace) -> int:
    _live_needs(args)
    from .publish import publish

    return publish(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    _live_needs(args)
    from .watch import demo

    return demo(as_json=args.json, transport=args.transport)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="okxbook", description="OKX v5 L2 order books.")
    parser.add_argument("--version", action="version", version=f"okxbook {_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="warning",
        help="log lines on stderr from this level up (default: warning)",
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", help="only errors on stderr (--log-level error)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    original_add = sub.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        # Every subcommand takes the logging options, after its name (okxbook replay -q ...).
        kwargs.setdefault("parents", []).append(common)
        return original_add(name, **kwargs)

    sub.add_parser = add_parser  # type: ignore[method-assign]
    p = sub.add_parser(
        "replay",
        help="replay captured frames and report every book",
        description="Replay capture files (cryptofeed recorder lines, JSON lines, "
        "tardis raw lines, a pretty-printed JSON frame; plain, .gz or .zst) as one "
        "stream through the same path as live data. Exit 1 if a checksum "
        "mismatched, a sequence gap was found or a frame was malformed.",
    )
    p.add_argument(
        "files",
        nargs="*",
        help="capture files, in order; '-' reads stdin, a directory the recording in it "
        "(default: the bundled sample)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--no-checksum", action="store_true", help="do not verify checksums")
    p.add_argument(
        "--one-stream",
        action="store_true",
        help="files form one stream (the default; accepted for clarity)",
    )
    p.add_argument(
        "--export",
        metavar="PATH",
        default=None,
        help="also write the replay as --format (default: the per-frame top-of-book/depth "
        "series as Parquet)",
    )
    p.add_argument(
        "--format",
        choices=("series", "snapshots", "deltas", "tardis", "hftbacktest", "nautilus"),
        default=None,
        help="what --export writes: series (Parquet, a row per frame), snapshots (Parquet, top "
        "--levels per frame or --every), deltas (Parquet, a row per level change), tardis "
        "(incremental_book_L2 CSV, .csv.gz), hftbacktest (.npz, one book), nautilus "
        "(OrderBookDelta catalog directory)",
    )
    p.add_argument(
        "--book",
        action="append",
        default=None,
        metavar="CHANNEL/INST",
        help="only this book, e.g. books/BTC-USDT (repeatable; the others are not applied)",
    )
    p.add_argument(
        "--from",
        dest="start",
        default=None,
        metavar="TIME",
        help="export frames from this time on (ISO date/time, UTC if no zone, or ns); "
        "earlier frames still build the books",
    )
    p.add_argument(
        "--to",
        dest="end",
        default=None,
        metavar="TIME",
        help="export frames before this time (ISO date/time or ns)",
    )
    p.add_argument(
        "--levels",
        type=positive_int,
        default=10,
        help="--format snapshots: levels per side (default 10)",
    )
    p.add_argument(
        "--every",
        default=None,
        metavar="INTERVAL",
        help="--format snapshots: one row per book every INTERVAL (e.g. 100ms, 1s) "
        "instead of per frame",
    )
    p.add_argument(
        "--exact",
        action="store_true",
        help="--format snapshots: also the integer ticks/lots columns",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="replay files in parallel, each on its own (local process pool)",
    )
    p.add_argument(
        "--dask",
        metavar="tcp://HOST:PORT",
        default=None,
        help="replay files in parallel on an existing Dask distributed cluster",
    )
    p.add_argument(
        "--out-dir", default=None, help="with --workers/--dask: where each file's Parquet goes"
    )
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser(
        "plot",
        help="draw mid, spread and near-touch depth of a book over time",
        description="Replay captures (or read an exported Parquet) and draw one "
        "book's mid, spread and depth bands over time as a PNG.",
    )
    p.add_argument("files", nargs="+", help="capture files or an exported .parquet")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--book", default=None, help="channel/instId (default: the busiest book)")
    p.add_argument(
        "--bps",
        type=bps_list,
        default=None,
        help="depth bands in basis points, e.g. 5,10,25",
    )
    p.set_defaults(func=_cmd_plot)

    from .serve import register_cli

    register_cli(sub)
    p = sub.add_parser(
        "publish",
        help="keep live books in shared memory for other processes",
        description="Keep live OKX books and publish them into the shared-memory segment NAME: "
        "any process on this host reads them with okxbook.share.SharedBooks(NAME). The segment "
        "is removed when the command ends.",
    )
    p.add_argument("name", metavar="NAME", help="segment name, e.g. okx")
    p.add_argument(
        "inst_ids", nargs="+", metavar="INST", type=inst_id, help="instrument ids, e.g. BTC-USDT"
    )
    _connection_options(p)
    p.add_argument(
        "--levels",
        type=positive_int,
        default=400,
        help="levels a side kept per book (default: 400, all of a books book)",
    )
    p.add_argument(
        "--duration", type=positive_float, default=None, help="stop after this many seconds"
    )
    p.set_defaults(func=_cmd_publish)

    p = sub.add_parser(
        "watch",
        help="live top of book of OKX instruments",
        description="Keep live OKX books and show their top of book (a table on a "
        "terminal; with --json one JSON object per top-of-book change).",
    )
    p.add_argument(
        "inst_ids", nargs="+", metavar="INST", type=inst_id, help="instrument ids, e.g. BTC-USDT"
    )
    _connection_options(p)
    p.add_argument("--json", action="store_true", help="one JSON line per top-of-book change")
    p.add_argument(
        "--duration", type=positive_float, default=None, help="stop after this many seconds"
    )
    p.add_argument(
        "--publish",
        metavar="NAME",
        default=None,
        help="also publish the books into shared memory NAME (see okxbook publish)",
    )
    p.add_argument(
        "--latency",
        type=positive_float,
        default=None,
        metavar="S",
        help='with --json, a {"latency": ...} line every S seconds and at the end',
    )
    p.set_defaults(func=_cmd_watch)

    p = sub.add_parser(
        "record",
        help="watch and record every raw frame (tardis lines)",
        description="Keep live books like watch and write every raw frame the "
        "feeder receives, with its receive time, to hourly compressed files.",
    )
    p.add_argument("inst_ids", nargs="+", metavar="INST", type=inst_id)
    p.add_argument("--out", required=True, help="directory for the capture files")
    _connection_options(p)
    p.add_argument("--compression", choices=("auto", "zstd", "gzip", "none"), default="auto")
    p.add_argument(
        "--duration", type=positive_float, default=None, help="stop after this many seconds"
    )
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser(
        "demo",
        help="watch against a built-in local exchange (no network, no keys)",
        description="Start a local OKX-like exchange serving the bundled capture "
        "and watch it through the live feeder.",
    )
    p.add_argument("--json", action="store_true", help="one JSON line per top-of-book change")
    p.add_argument("--transport", choices=("websockets", "picows"), default="websockets")
    p.set_defaults(func=_cmd_demo)
    return parser


def _connection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--channel",
        default="books",
        choices=("books", "books-l2-tbt", "books50-l2-tbt", "books5", "bbo-tbt", "books-rpi"),
        help="book channel (default: books)",
    )
    p.add_argument(
        "--url", type=ws_url, default=None, help="WebSocket URL (default: OKX production)"
    )
    p.add_argument(
        "--rest-url", type=http_url, default=None, help="REST base URL (default: OKX production)"
    )
    p.add_argument("--demo", action="store_true", help="OKX demo trading endpoints")
    p.add_argument("--transport", choices=("websockets", "picows"), default="websockets")
    p.add_argument(
        "--sbe",
        action="store_true",
        help="OKX's binary feed (/ws/v5/public-sbe; bbo-tbt or books-l2-tbt, needs the OKX_* "
        "credentials)",
    )
    p.add_argument(
        "--ca-file",
        metavar="PEM",
        default=None,
        help="trust this CA for wss:// and https:// (e.g. the file `okxbook serve --tls` prints)",
    )
    p.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=30.0,
        metavar="S",
        help="exit 1 if no book went live within S seconds (default: 30)",
    )


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("okxbook")
    except Exception:  # not installed as a distribution (a source tree on sys.path)
        from okxbook import __version__

        return __version__


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a record comes, not as it was at setup (a program
    that runs ``main()`` again with stderr redirected never writes to a closed stream)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _configure_logging(args: argparse.Namespace) -> None:
    level = (
        logging.ERROR
        if getattr(args, "quiet", False)
        else getattr(logging, str(getattr(args, "log_level", "warning")).upper(), logging.WARNING)
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_okxbook_cli", False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setLevel(level)  # the root may be lower (an earlier run, an embedding program)
    handler._okxbook_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    root.addHandler(handler)
    logging.getLogger("okxbook").setLevel(level)
    root.setLevel(min(root.level or logging.WARNING, level))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code (0 done, 1 the run found problems or did not do what was
    asked, 2 a usage error, 3 recording stopped on a write failure, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    name = f"okxbook {args.command}"
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. piped into head: not an error of ours
        return 0
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional module needed by a file found on the way
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except (OSError, CaptureFormatError, ValueError, TypeError) as exc:
        log.debug("details", exc_info=True)
        print(f"{name}: {_why(exc)}", file=sys.stderr)
        return 2
    except RestError as exc:  # e.g. the SBE feed's instIdCode lookup at start
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug of ours: still one line (the traceback with --log-level debug)
        log.debug("unexpected error", exc_info=True)
        print(f"{name}: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
