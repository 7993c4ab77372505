"""The ``okxbook`` command line: argument parsing and output only; the work is done elsewhere."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .capture import CaptureFormatError
from .replay import format_report, replay, sample_capture


def _cmd_replay(args: argparse.Namespace) -> int:
    paths = args.files or [sample_capture()]
    try:
        report = replay(paths, verify_checksum=not args.no_checksum)
    except (OSError, CaptureFormatError) as exc:
        print(f"okxbook replay: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(format_report(report))
    return 0 if report.ok else 1


def _cmd_watch(args: argparse.Namespace) -> int:
    from .watch import watch
    return watch(args.inst_ids, channel=args.channel, url=args.url, rest_url=args.rest_url,
                 demo=args.demo, transport=args.transport, as_json=args.json,
                 duration=args.duration)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .watch import demo
    return demo(as_json=args.json, transport=args.transport)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="okxbook", description="OKX v5 L2 order books.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("replay", help="replay captured frames and report every book",
                       description="Replay capture files (cryptofeed recorder lines, JSON lines, "
                       "tardis raw lines, a pretty-printed JSON frame; plain, .gz or .zst) as one "
                       "stream through the same path as live data. Exit 1 if a checksum "
                       "mismatched, a sequence gap was found or a frame was malformed.")
    p.add_argument("files", nargs="*", help="capture files, in order (default: the bundled sample)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--no-checksum", action="store_true", help="do not verify checksums")
    p.add_argument("--one-stream", action="store_true",
                   help="files form one stream (always the case; accepted for clarity)")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("watch", help="live top of book of OKX instruments",
                       description="Keep live OKX books and show their top of book (a table on a "
                       "terminal; with --json one JSON object per top-of-book change).")
    p.add_argument("inst_ids", nargs="+", metavar="INST", help="instrument ids, e.g. BTC-USDT")
    _connection_options(p)
    p.add_argument("--json", action="store_true", help="one JSON line per top-of-book change")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=_cmd_watch)

    p = sub.add_parser("demo", help="watch against a built-in local exchange (no network, no keys)",
                       description="Start a local OKX-like exchange serving the bundled capture "
                       "and watch it through the live feeder.")
    p.add_argument("--json", action="store_true", help="one JSON line per top-of-book change")
    p.add_argument("--transport", choices=("websockets", "picows"), default="websockets")
    p.set_defaults(func=_cmd_demo)
    return parser


def _connection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", default="books",
                   choices=("books", "books-l2-tbt", "books50-l2-tbt", "books5", "bbo-tbt",
                            "books-rpi"), help="book channel (default: books)")
    p.add_argument("--url", default=None, help="WebSocket URL (default: OKX production)")
    p.add_argument("--rest-url", default=None, help="REST base URL (default: OKX production)")
    p.add_argument("--demo", action="store_true", help="OKX demo trading endpoints")
    p.add_argument("--transport", choices=("websockets", "picows"), default="websockets")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:          # e.g. piped into head: not an error of ours
        return 0


if __name__ == "__main__":
    sys.exit(main())
