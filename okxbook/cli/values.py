"""Argument types for the command line: each names what it wants, argparse adds the flag and exits 2.

One home for them, so ``okxbook serve`` and the other subcommands refuse a bad value alike; also
``UsageError`` and ``capture_paths`` (a directory stands for its recording), which ``serve`` shares
with the other commands without importing ``okxbook.cli`` (a cycle).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable


class UsageError(Exception):
    """Something the user can fix (a missing extra, an unusable path): one line, exit 2."""


def capture_paths(paths: list[str]) -> list[str]:
    """``-`` is stdin; a directory stands for the recording in it (its capture files, in name
    order, which is time order for ``okxbook record``'s names); hidden files are left out."""
    out: list[str] = []
    for path in paths:
        if path != "-" and os.path.isdir(path):
            names = sorted(
                n
                for n in os.listdir(path)
                if not n.startswith(".") and os.path.isfile(os.path.join(path, n))
            )
            if not names:
                raise UsageError(f"{path} is a directory with no capture files in it")
            out.extend(os.path.join(path, n) for n in names)
        else:
            out.append(path)
    return out


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def inst_id(text: str) -> str:
    """An OKX instId as typed: not empty, no spaces, quotes or slashes (OKX's are like BTC-USDT,
    BTC-USD-SWAP, BTC-USD-250627-100000-C); anything else would wait 30 s for a book that cannot
    exist."""
    if not text or any(c.isspace() or c in '"/\\' for c in text):
        raise argparse.ArgumentTypeError(f"not an instrument id (e.g. BTC-USDT): {text!r}")
    return text


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535 (0: any free port), not {value}")
    return value


def bps_list(text: str) -> list[float]:
    try:
        values = [positive_float(x) for x in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be basis points > 0 separated by commas (e.g. 5,10,25), not {text!r}"
        ) from None
    return values


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError("must not be empty")
        scheme, sep, rest = text.partition("://")
        if not sep or scheme.lower() not in schemes or not rest:
            raise argparse.ArgumentTypeError(
                f"must be a {' or '.join(s + '://' for s in schemes)} URL, not {text!r}"
            )
        return text

    return check


ws_url = _url(("ws", "wss"))
http_url = _url(("http", "https"))
