"""Shared helpers for the tests/test_book_*.py files: the shared-data location, a frame builder, an
independent reference checksum and a full snapshot of every book's observable state."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from okxbook.testing import okx_checksum as testing_okx_checksum

SHARED = Path(__file__).resolve().parents[2] / "shared"
FRAMES_DIR = SHARED / "okx-frames"


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


def book_state(book) -> dict[str, Any]:
    """Everything a consumer can observe about one book."""
    return {
        "bid_levels": book.bid_levels(),
        "ask_levels": book.ask_levels(),
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
        "top": tuple(_nan_safe(x) for x in book.top()),
        "stats": book.stats(),
    }


def books_state(books) -> dict[tuple[str, str], dict[str, Any]]:
    return {(b.channel, b.inst_id): book_state(b) for b in books}


@pytest.fixture(scope="session")
def frames_dir() -> Path:
    if not FRAMES_DIR.is_dir():
        pytest.skip(f"{FRAMES_DIR} not present")
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
