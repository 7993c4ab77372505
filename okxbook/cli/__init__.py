"""The ``okxbook`` command line: argument parsing and output only; the work is done elsewhere."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from okxbook.capture.files import CaptureFormatError
from okxbook.capture.replay import format_report, replay, sample_capture


def _cmd_replay(args: argparse.Namespace) -> int:
    paths = args.files or [sample_capture()]
    verify = not args.no_checksum
    try:
        if args.workers is not None or args.dask is not None or args.out_dir is not None:
            return _replay_parallel(args, paths, verify)
        if args.export:
            from okxbook.capture.export import export_replay

            report = export_replay(paths, args.export, verify_checksum=verify, progress=None)
        else:
            report = replay(paths, verify_checksum=verify, progress=None)
    except (OSError, CaptureFormatError, ValueError) as exc:
        print(f"okxbook replay: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(format_report(report))
    return 0 if report.ok else 1


def _replay_parallel(args: argparse.Namespace, paths: list[str], verify: bool) -> int:
    from okxbook.capture.parallel import format_results, replay_many

    if args.out_dir is None:
        print(
            "okxbook replay: --workers/--dask need --out-dir for the per-file Parquet",
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
    )
    if args.json:
        print(json.dumps([r.as_dict() for r in results]))
    else:
        print(format_results(results))
    return 0 if all(r.ok for r in results) else 1


def _cmd_plot(args: argparse.Namespace) -> int:
    from okxbook.capture.plot import plot_books

    try:
        drawn = plot_books(args.files, args.out, book=args.book, depth_bps=args.bps)
    except (OSError, CaptureFormatError, ValueError) as exc:
        print(f"okxbook plot: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({drawn})")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from .watch import record

    return record(
        args.inst_ids,
        args.out,
        channel=args.channel,
        url=args.url,
        rest_url=args.rest_url,
        demo=args.demo,
        transport=args.transport,
        compression=args.compression,
        duration=args.duration,
        connect_timeout=args.connect_timeout,
    )


def _cmd_watch(args: argparse.Namespace) -> int:
    from .watch import watch

    return watch(
        args.inst_ids,
        channel=args.channel,
        url=args.url,
        rest_url=args.rest_url,
        demo=args.demo,
        transport=args.transport,
        as_json=args.json,
        duration=args.duration,
        connect_timeout=args.connect_timeout,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from .watch import demo

    return demo(as_json=args.json, transport=args.transport)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="okxbook", description="OKX v5 L2 order books.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "replay",
        help="replay captured frames and report every book",
        description="Replay capture files (cryptofeed recorder lines, JSON lines, "
        "tardis raw lines, a pretty-printed JSON frame; plain, .gz or .zst) as one "
        "stream through the same path as live data. Exit 1 if a checksum "
        "mismatched, a sequence gap was found or a frame was malformed.",
    )
    p.add_argument("files", nargs="*", help="capture files, in order (default: the bundled sample)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--no-checksum", action="store_true", help="do not verify checksums")
    p.add_argument(
        "--one-stream",
        action="store_true",
        help="files form one stream (the default; accepted for clarity)",
    )
    p.add_argument(
        "--export",
        metavar="OUT.parquet",
        default=None,
        help="also write the per-frame top-of-book/depth series as Parquet",
    )
    p.add_argument(
        "--workers",
        type=int,
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
        type=lambda v: [float(x) for x in v.split(",")],
        default=None,
        help="depth bands in basis points, e.g. 5,10,25",
    )
    p.set_defaults(func=_cmd_plot)

    from .serve import register_cli

    register_cli(sub)

    p = sub.add_parser(
        "watch",
        help="live top of book of OKX instruments",
        description="Keep live OKX books and show their top of book (a table on a "
        "terminal; with --json one JSON object per top-of-book change).",
    )
    p.add_argument("inst_ids", nargs="+", metavar="INST", help="instrument ids, e.g. BTC-USDT")
    _connection_options(p)
    p.add_argument("--json", action="store_true", help="one JSON line per top-of-book change")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=_cmd_watch)

    p = sub.add_parser(
        "record",
        help="watch and record every raw frame (tardis lines)",
        description="Keep live books like watch and write every raw frame the "
        "feeder receives, with its receive time, to hourly compressed files.",
    )
    p.add_argument("inst_ids", nargs="+", metavar="INST")
    p.add_argument("--out", required=True, help="directory for the capture files")
    _connection_options(p)
    p.add_argument("--compression", choices=("auto", "zstd", "gzip", "none"), default="auto")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
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
    p.add_argument("--url", default=None, help="WebSocket URL (default: OKX production)")
    p.add_argument("--rest-url", default=None, help="REST base URL (default: OKX production)")
    p.add_argument("--demo", action="store_true", help="OKX demo trading endpoints")
    p.add_argument("--transport", choices=("websockets", "picows"), default="websockets")
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="exit 1 if no book went live within S seconds (default: 30)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. piped into head: not an error of ours
        return 0


if __name__ == "__main__":
    sys.exit(main())
