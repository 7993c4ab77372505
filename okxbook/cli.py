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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
