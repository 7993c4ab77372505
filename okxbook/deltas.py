"""``DeltaBook``: a book rebuilt from delta rows on the consumer side (a ZeroMQ subscriber, a test,
a process that only sees the deltas), checking as it goes that every row fits the book it has.

It is deliberately a plain dict per side (price ticks -> size, orders, extra): the consumer of a
delta stream has no frames to feed a ``Book`` with, and a dict applies a row in one step. It is not
a second order-book engine: it has no wire format, sequence or checksum logic of its own, it only
follows the rows ``okxbook.DeltaRecorder`` wrote (see ``okxbook._deltas`` for their meaning).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._deltas import (
    ACTION_NAMES,
    CLEAR,
    DELETE,
    DELTA_DTYPE,
    DELTA_TEXT_DTYPE,
    FRAME_DTYPE,
    INSERT,
    INVALID,
    RESCALE,
    STATUS_NAMES,
    TRIM,
    UPDATE,
    DeltaRecorder,
)
from .errors import DeltaError

# The row layouts and action codes live in the extension (okxbook._deltas); this is their public home.
__all__ = [
    "ACTION_NAMES",
    "CLEAR",
    "DELETE",
    "DELTA_DTYPE",
    "DELTA_TEXT_DTYPE",
    "FRAME_DTYPE",
    "INSERT",
    "INVALID",
    "LEVEL_DTYPE",
    "RESCALE",
    "STATUS_NAMES",
    "TRIM",
    "UPDATE",
    "DeltaBook",
    "DeltaRecorder",
]

#: One row of ``DeltaBook.bids()`` / ``asks()``.
LEVEL_DTYPE = np.dtype(
    [("px_ticks", "<i8"), ("sz_lots", "<i8"), ("orders", "<i8"), ("extra_lots", "<i8")]
)


class DeltaBook:
    """One book rebuilt from its frames' delta rows.

    ``apply(frame, rows)`` takes one ``FRAME_DTYPE`` row and its ``DELTA_DTYPE`` rows. With
    ``check`` (default) a row that does not fit the book held (an update or delete whose
    ``prev_sz_lots`` is not the size held, an insert of a price already there) raises
    ``DeltaError``: the stream lost or reordered something.
    """

    def __init__(self, channel: str = "", inst_id: str = "", *, check: bool = True) -> None:
        self.channel = channel
        self.inst_id = inst_id
        self.check = check
        self.bid: dict[int, tuple[int, int, int]] = {}
        self.ask: dict[int, tuple[int, int, int]] = {}
        self.px_decimals = 0
        self.sz_decimals = 0
        self.seq_id = -1
        self.prev_seq_id = -1
        self.ts_ms = 0
        self.recv_ns = 0
        self.status = "empty"
        self.frames = 0

    def clear(self, status: str = "empty") -> None:
        self.bid.clear()
        self.ask.clear()
        self.status = status

    def _fail(self, what: str) -> None:
        raise DeltaError(f"delta does not fit the book: {what}", self.channel, self.inst_id)

    def apply(self, frame: Any, rows: npt.NDArray[np.void]) -> None:
        """Apply one frame's rows (``rows`` may be the frame's slice of a larger array)."""
        for _frame, side, action, _pxd, _szd, px, sz, prev, orders, extra in rows.tolist():
            book = self.bid if side > 0 else self.ask
            if action == INSERT or action == UPDATE:
                if self.check:
                    held = book.get(px)
                    if action == INSERT and held is not None:
                        self._fail(f"insert of a price held ({px})")
                    if action == UPDATE and (held is None or held[0] != prev):
                        self._fail(f"update of {px} from {prev}, held {held}")
                book[px] = (sz, orders, extra)
            elif action == DELETE or action == TRIM:
                held = book.pop(px, None)
                if self.check and (held is None or held[0] != prev):
                    self._fail(f"delete of {px} of size {prev}, held {held}")
            elif action == CLEAR:
                self.clear("live")
            elif action == RESCALE:
                fp, fs = px, sz
                self.bid = {k * fp: (s * fs, o, e * fs) for k, (s, o, e) in self.bid.items()}
                self.ask = {k * fp: (s * fs, o, e * fs) for k, (s, o, e) in self.ask.items()}
            elif action == INVALID:
                self.clear("invalid")
            else:
                self._fail(f"unknown action {action}")
        self.seq_id = int(frame["seq_id"])
        self.prev_seq_id = int(frame["prev_seq_id"])
        self.ts_ms = int(frame["ts_ms"])
        self.recv_ns = int(frame["recv_ns"])
        self.px_decimals = int(frame["px_decimals"])
        self.sz_decimals = int(frame["sz_decimals"])
        self.status = STATUS_NAMES[int(frame["status"])]
        self.frames += 1

    def _side(
        self, book: dict[int, tuple[int, int, int]], best_high: bool, n: int | None
    ) -> npt.NDArray[np.void]:
        keys = sorted(book, reverse=best_high)[:n]
        out: npt.NDArray[np.void] = np.empty(len(keys), dtype=LEVEL_DTYPE)
        out["px_ticks"] = keys
        vals = [book[k] for k in keys]
        out["sz_lots"] = [v[0] for v in vals]
        out["orders"] = [v[1] for v in vals]
        out["extra_lots"] = [v[2] for v in vals]
        return out

    def bids(self, n: int | None = None) -> npt.NDArray[np.void]:
        """Top ``n`` bids (all by default), best first, as ``LEVEL_DTYPE``."""
        return self._side(self.bid, True, n)

    def asks(self, n: int | None = None) -> npt.NDArray[np.void]:
        return self._side(self.ask, False, n)

    def __repr__(self) -> str:
        return (
            f"<DeltaBook {self.channel}/{self.inst_id} {self.status} seqId={self.seq_id} "
            f"{len(self.bid)} bids {len(self.ask)} asks>"
        )
