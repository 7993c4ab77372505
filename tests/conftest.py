"""Shared helpers for the tests: the test-data location (``tests/data``, inside the repository), the
generated synthetic streams, a frame builder, an independent reference checksum and a full snapshot
of every book's observable state."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from okxbook.testing import okx_checksum as testing_okx_checksum
from okxbook.testing import synthetic_stream

# How far the long searches go (Hypothesis examples, the soak's storm). The full run (.ci/run on
# 3.11, and any run by hand) searches as far as it always did; OKXBOOK_QUICK_SEARCH=1 (noxfile.py's
# 3.12/3.13 sessions) runs every test, each search shorter: it explores the same C core built
# from the same source, so what differs between interpreters (the C API, asyncio) is exercised
# by the shorter search as well (noxfile.py says why).
QUICK_SEARCH = os.environ.get("OKXBOOK_QUICK_SEARCH", "") not in ("", "0")
#: Examples of the long Hypothesis searches (the core against its models).
EXAMPLES = 40 if QUICK_SEARCH else 200

# The one place tests find their data: real frames from public repositories, with their licences
# (tests/data/NOTICE.md). They are part of the repository, so a missing file is a failure, not a skip.
DATA = Path(__file__).resolve().parent / "data"
FRAMES_DIR = DATA / "okx-frames"
CF_BOOKS_0513 = FRAMES_DIR / "bmoscon_cryptofeed/2022-05-13_books_3079107/OKX.ws.1.0"
CF_L2TBT_0228 = FRAMES_DIR / "bmoscon_cryptofeed/2022-02-28_books-l2-tbt_ed5b535/OKX.ws.1.0"
NAUTILUS_DIR = FRAMES_DIR / "nautechsystems_nautilus_trader"


@dataclass(frozen=True)
class StreamFile:
    """A generated synthetic ``books`` stream written one frame per line. The counts come from
    the generator's arguments, not from reading the file back with okxbook."""

    path: Path
    frames: list[bytes]
    instruments: int
    snapshots: int
    updates: int

    @property
    def n_frames(self) -> int:
        return self.snapshots + self.updates


@pytest.fixture(scope="session")
def synthetic_10x5k(tmp_path_factory) -> StreamFile:
    """10 instruments, 400 levels a side: 10 snapshots, then 5,000 updates spread over them at
    random, CRC32 checksums and seqId chains (the composition of the benchmark streams)."""
    n_inst, n_updates = 10, 5_000
    frames = synthetic_stream(n_inst, n_updates, seed=20261201)
    path = tmp_path_factory.mktemp("streams") / "synthetic_10x5k.jsonl"
    path.write_bytes(b"\n".join(frames) + b"\n")
    return StreamFile(path, frames, n_inst, n_inst, n_updates)


def make_frame(
    channel: str, inst_id: str, bids=(), asks=(), action: str | None = None, **fields: Any
) -> bytes:
    """One OKX push as bytes. Levels are ``(px, sz)`` or ``(px, sz, third, orders)`` strings;
    ``fields`` go into the data item (``seqId``, ``prevSeqId``, ``checksum``, ``ts``)."""

    def lv(level):
        level = list(level)
        return level if len(level) == 4 else level + ["0", "1"]

    item: dict[str, Any] = {"asks": [lv(a) for a in asks], "bids": [lv(b) for b in bids]}
    item.setdefault("ts", "1597026383085")
    item.update(fields)
    msg: dict[str, Any] = {"arg": {"channel": channel, "instId": inst_id}}
    if action is not None:
        msg["action"] = action
    msg["data"] = [item]
    return json.dumps(msg, separators=(",", ":")).encode()


# The reference checksum is the exchange side's (okxbook.testing, pure Python and zlib, written
# from protocol doc §3 and checked against the doc's examples in test_exchange.py): independent
# of the Cython core under test.
ref_checksum = testing_okx_checksum


def _nan_safe(x: float):
    return "nan" if isinstance(x, float) and math.isnan(x) else x


def book_numbers(book) -> dict[str, Any]:
    """A book's levels (as the numeric ``DEPTH_DTYPE`` bytes), sequence, state and counters: what
    changes whenever the book changes, cheaply enough to take after each of thousands of mutants
    (the strings are ``book_state``'s)."""
    return {
        "bids": book.bids().tobytes(),
        "asks": book.asks().tobytes(),
        "seq_id": book.seq_id,
        "prev_seq_id": book.prev_seq_id,
        "ts_ms": book.ts_ms,
        "checksum": book.checksum,
        "status": book.status,
        "invalid_reason": book.invalid_reason,
        "px_decimals": book.px_decimals,
        "sz_decimals": book.sz_decimals,
        "crossed": book.crossed,
        "top_changed": book.top_changed,
        "stats": book.stats(),
    }


def book_state(book) -> dict[str, Any]:
    """Everything a consumer can observe about one book."""
    return {
        **book_numbers(book),
        "bid_levels": book.bid_levels(),
        "ask_levels": book.ask_levels(),
        "top": tuple(_nan_safe(x) for x in book.top()),
    }


def books_state(books) -> dict[tuple[str, str], dict[str, Any]]:
    return {(b.channel, b.inst_id): book_state(b) for b in books}


def books_numbers(books) -> dict[tuple[str, str], dict[str, Any]]:
    return {(b.channel, b.inst_id): book_numbers(b) for b in books}


@pytest.fixture(scope="session")
def frames_dir() -> Path:
    assert FRAMES_DIR.is_dir(), f"{FRAMES_DIR} is part of the repository"
    return FRAMES_DIR


@pytest.fixture(scope="session")
def mkframe():
    return make_frame


@pytest.fixture(scope="session")
def ref_cs():
    return ref_checksum


@pytest.fixture(scope="session")
def state():
    return books_state
