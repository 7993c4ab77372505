"""``okxbook serve``: argument parsing, signals and messages around :mod:`okxbook.capture.serve`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import signal
import ssl
import sys
from typing import Any

from okxbook.capture.files import CaptureFormatError, iter_frames
from okxbook.capture.serve import CaptureServer
from okxbook.endpoint import ServerTls
from okxbook.okx import REST_BOOKS_PATH

from .values import UsageError, capture_paths, port


def _speed(text: str) -> float | None:
    if text.lower() in ("max", "inf"):
        return None
    try:
        value = float(text.rstrip("xX"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'max', not {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be > 0 (or 'max' for no pacing), not {text!r}")
    return value


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to an ``argparse`` subparsers object; returns its parser.

    The subcommand's ``func(args) -> int`` runs the server until Ctrl-C/SIGTERM (exit 0), or
    exits 2 if a file cannot be read.
    """
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="re-serve capture files as a live OKX WebSocket endpoint",
        description="Play capture files (one stream, in order) to OKX clients on a local "
        "WebSocket (and REST books) endpoint, paced by their recorded receive times. Clients "
        "that subscribe late get a snapshot of the book's current state first.",
    )
    p.add_argument(
        "files",
        nargs="+",
        help="capture files (cryptofeed, JSON lines, tardis; plain, .gz or .zst), in order; "
        "a directory: the recording in it",
    )
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="X",
        help="playback speed: 1 = as recorded, 10 = ten times faster, max = no pacing (default: 1)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=port, default=0, help="port (default: any free port)")
    p.add_argument("--loop", action="store_true", help="start over at the end of the capture")
    p.add_argument(
        "--wait",
        action="store_true",
        help="start playing at the first subscription rather than at once",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="serve wss:// and https:// with a self-signed certificate made now (its CA file, "
        "printed at start, is what clients trust; needs okxbook[tls])",
    )
    p.add_argument("--cert", metavar="PEM", help="serve TLS with this certificate (implies --tls)")
    p.add_argument("--key", metavar="PEM", help="the private key of --cert (if not inside it)")
    p.set_defaults(func=_cmd_serve)
    return p


def _tls(args: argparse.Namespace) -> ServerTls | None:
    """The TLS of ``--tls``/``--cert``/``--key``; ValueError with a one-line reason."""
    if args.key and not args.cert:
        raise ValueError("--key needs --cert")
    if args.cert:
        try:
            return ServerTls(cert=args.cert, key=args.key, host=args.host)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"--cert/--key: cannot load {args.cert}: {exc}") from None
    if args.tls:
        return ServerTls(host=args.host)  # ImportError (trustme missing): the CLI's pip line
    return None


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        args.tls_files = _tls(args)
    except ValueError as exc:
        print(f"okxbook serve: {exc}", file=sys.stderr)
        return 2
    try:
        args.files = capture_paths(args.files)  # a directory: the recording in it, as replay
    except UsageError as exc:
        print(f"okxbook serve: {exc}", file=sys.stderr)
        return 2
    for path in args.files:
        try:
            # Fail now on a missing or unreadable file, or on an SBE recording: serve finds each
            # frame's book by its JSON arg, so binary frames would be refused as unknown books.
            head = list(itertools.islice(iter_frames(path), 50))
        except (OSError, CaptureFormatError, ImportError) as exc:
            print(f"okxbook serve: {exc}", file=sys.stderr)
            return 2
        if any(0 in c.frame[:8] for c in head if c.frame):
            print(
                f"okxbook serve: {path}: an SBE (binary) recording; serve plays JSON captures "
                "(to JSON and SBE clients alike)",
                file=sys.stderr,
            )
            return 2
    try:
        return asyncio.run(_serve_until_signal(args))
    except KeyboardInterrupt:
        return 0


async def _serve_until_signal(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    server = CaptureServer(
        args.files,
        speed=args.speed,
        host=args.host,
        port=args.port,
        loop_forever=args.loop,
        wait_for_subscriber=args.wait,
        tls=args.tls_files or False,
    )
    try:
        await server.start()
    except OSError as exc:
        print(f"okxbook serve: {exc}", file=sys.stderr)
        return 2
    speed = "max" if args.speed is None else f"{args.speed:g}x"
    print(server.ws_url, flush=True)
    print(
        f"serving {len(args.files)} file(s) at {speed}; REST {server.rest_url}"
        f"{REST_BOOKS_PATH}; Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    if server.tls is not None:
        print(
            f"TLS: clients trust the CA file {server.tls.ca_file}",
            file=sys.stderr,
            flush=True,
        )

    async def report_end() -> None:
        with contextlib.suppress(Exception):
            await server.wait_done()
        if server.error is not None:
            print(f"okxbook serve: playback stopped: {server.error}", file=sys.stderr, flush=True)
        else:
            print(
                f"end of capture ({server.frames_played} frames); still serving the final "
                "state, Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )

    ender = asyncio.create_task(report_end())
    try:
        await stop.wait()
    finally:
        ender.cancel()
        await server.stop()
    return 2 if server.error is not None else 0
