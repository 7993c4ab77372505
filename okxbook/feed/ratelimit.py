"""Request budgets OKX enforces (docs/protocol.md §6, §8): sliding windows that
say "now" or "wait this long", so reconnects and resync storms are paced, never amplified.

- new connections: 3 per second per IP (one window shared by every feed in the process);
- subscribe + unsubscribe + login: 480 per connection per hour;
- REST ``/market/books``: 40 per 2 s per IP; ``/market/books-rpi``: 20 per 2 s per IP.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from okxbook import okx

__all__ = [
    "CONNECTS_PER_IP",
    "REST_BOOKS_PER_IP",
    "REST_PER_IP",
    "SlidingWindow",
    "requests_per_connection",
]


class SlidingWindow:
    """At most ``limit`` acquisitions in any ``window`` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        if limit < 1 or window <= 0:
            raise ValueError("limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._times: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()

    def remaining(self) -> int:
        self._expire(self._clock())
        return self.limit - len(self._times)

    def delay(self) -> float:
        """Seconds until one more acquisition fits (0 if it fits now)."""
        now = self._clock()
        self._expire(now)
        if len(self._times) < self.limit:
            return 0.0
        return self._times[0] + self.window - now

    def try_acquire(self) -> bool:
        if self.delay() > 0:
            return False
        self._times.append(self._clock())
        return True

    async def acquire(self) -> None:
        """Wait until an acquisition fits, then take it."""
        while (wait := self.delay()) > 0:
            await asyncio.sleep(wait)
        self._times.append(self._clock())


#: OKX counts new connections per IP: one window for the whole process.
CONNECTS_PER_IP = SlidingWindow(3, 1.0)
#: One per-IP window per REST book route (``okx.REST_LIMITS``: ``/market/books`` 40 per 2 s,
#: ``/market/books-rpi`` 20 per 2 s; docs/protocol.md §8).
REST_PER_IP = {
    path: SlidingWindow(*okx.REST_LIMITS[path])
    for path in (okx.REST_BOOKS_PATH, okx.REST_BOOKS_RPI_PATH)
}
#: ``GET /api/v5/market/books``: 40 requests per 2 s per IP.
REST_BOOKS_PER_IP = REST_PER_IP[okx.REST_BOOKS_PATH]


def requests_per_connection() -> SlidingWindow:
    """A fresh budget of 480 subscribe/unsubscribe/login requests per hour for one connection."""
    return SlidingWindow(480, 3600.0)
