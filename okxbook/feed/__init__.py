"""The live feeder: asyncio OKX WebSocket client keeping many books correct through every fault.

``Feed`` is the API; ``sync`` holds the sync rules (no I/O); ``connection`` owns sockets; ``transport`` adapts websockets and
picows; ``ratelimit``, ``auth`` and ``rest`` hold OKX's limits, login and REST snapshots."""

from .auth import Credentials
from .deltas import BookDeltas, DeltaOverflow, DeltaStream
from .feed import (
    DEMO_URL,
    PROD_REST_URL,
    PROD_URL,
    BookStatus,
    CallbackHandle,
    Feed,
    Subscription,
    SubscriptionError,
)
from .latency import SbeLatency
from .tops import Top, TopStream

__all__ = [
    "DEMO_URL",
    "PROD_REST_URL",
    "PROD_URL",
    "BookDeltas",
    "BookStatus",
    "CallbackHandle",
    "Credentials",
    "DeltaOverflow",
    "DeltaStream",
    "Feed",
    "SbeLatency",
    "Subscription",
    "SubscriptionError",
    "Top",
    "TopStream",
]
