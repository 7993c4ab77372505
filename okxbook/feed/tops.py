"""What consumers read: ``Top`` (a top-of-book reading) and ``TopStream``, a conflating async
stream of them.

The receive loop only marks an instrument as changed (O(1), no allocation when it is already
marked); the ``Top`` is built from the book when the consumer asks for it. So a slow consumer
always gets the latest top of book, never a growing queue, and ``skipped`` tells it how many
changes were folded into the one it got. The receive loop never waits on a consumer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from okxbook._book import Book

__all__ = ["Top", "TopStream", "top_of"]


@dataclass(frozen=True, slots=True)
class Top:
    channel: str
    inst_id: str
    status: str  # "syncing" | "live" | "resyncing" | "invalid"
    seq_id: int | None
    ts_ms: int  # exchange time of the frame (ms)
    recv_ns: int  # local receive time of the frame (time.time_ns())
    bid: tuple[str, str] | None  # (px, sz) as OKX sent them
    ask: tuple[str, str] | None
    bid_px: float  # NaN when absent
    bid_sz: float
    ask_px: float
    ask_sz: float
    skipped: int = 0  # changes conflated into this reading

    @property
    def age_ms(self) -> float:
        """How old the data is now, from the exchange's timestamp."""
        return time.time_ns() / 1e6 - self.ts_ms

    @property
    def exchange_to_recv_ms(self) -> float:
        return self.recv_ns / 1e6 - self.ts_ms

    def as_json(self) -> dict[str, Any]:
        """The ``okxbook watch --json`` line."""
        return {
            "channel": self.channel,
            "instId": self.inst_id,
            "seqId": self.seq_id,
            "ts": self.ts_ms,
            "bid": list(self.bid) if self.bid else None,
            "ask": list(self.ask) if self.ask else None,
            "status": self.status,
        }


def top_of(book: Book, status: str, recv_ns: int, skipped: int = 0) -> Top:
    live = status == "live"
    return Top(
        book.channel,
        book.inst_id,
        status,
        book.seq_id if book.seq_id >= 0 else None,
        book.ts_ms,
        recv_ns,
        book.best_bid if live else None,
        book.best_ask if live else None,
        book.best_bid_px if live else float("nan"),
        book.best_bid_sz if live else float("nan"),
        book.best_ask_px if live else float("nan"),
        book.best_ask_sz if live else float("nan"),
        skipped,
    )


class TopStream:
    """``async for top in feed.tops(...)``: the latest top of book of each instrument that changed
    since it was last read, oldest change first. Status changes come through too."""

    def __init__(
        self,
        keys: Iterable[tuple[str, str]] | None,
        status_of: Callable[[tuple[str, str]], str],
        on_close: Callable[[TopStream], None] | None = None,
    ) -> None:
        self._on_close = on_close
        self._keys = set(keys) if keys is not None else None
        self._status_of = status_of
        # key -> [book, recv_ns, skipped]; dict order = order of first change since last read
        self._pending: dict[tuple[str, str], list[Any]] = {}
        self._event = asyncio.Event()
        self._closed = False
        self.delivered = 0
        self.skipped = 0

    def wants(self, key: tuple[str, str]) -> bool:
        return self._keys is None or key in self._keys

    def push(self, key: tuple[str, str], book: Book, recv_ns: int) -> None:
        slot = self._pending.get(key)
        if slot is None:
            self._pending[key] = [book, recv_ns, 0]
            self._event.set()
        else:
            slot[1] = recv_ns
            slot[2] += 1

    def close(self) -> None:
        """End the stream (a consumer may close it; the feed's close ends every one)."""
        self._closed = True
        self._event.set()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close(self)

    def __aiter__(self) -> TopStream:
        return self

    async def __anext__(self) -> Top:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            self._event.clear()
            await self._event.wait()
        key = next(iter(self._pending))
        book, recv_ns, skipped = self._pending.pop(key)
        self.delivered += 1
        self.skipped += skipped
        return top_of(book, self._status_of(key), recv_ns, skipped)

    def get_nowait(self) -> Top | None:
        """The next reading if one is pending, else None."""
        if not self._pending:
            return None
        key = next(iter(self._pending))
        book, recv_ns, skipped = self._pending.pop(key)
        self.delivered += 1
        self.skipped += skipped
        return top_of(book, self._status_of(key), recv_ns, skipped)
