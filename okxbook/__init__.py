"""okxbook: OKX v5 L2 order books that are never silently wrong.

``Books().apply(frame)`` applies one raw OKX WebSocket frame (``books``, ``books-l2-tbt``,
``books50-l2-tbt``, ``books5``, ``bbo-tbt``, ``books-rpi``/``books-elp``) and returns the ``Book`` it
updated or an ``Event`` for acks, errors, notices and pong.
"""

from . import _compat
from ._book import CHANNELS, DEPTH_DTYPE, NO_ASK, NO_BID, Book
from ._books import Books
from ._checksum import okx_checksum
from ._deltas import DELTA_DTYPE, FRAME_DTYPE, DeltaRecorder
from ._query import (
    ASK,
    BID,
    TopLevels,
    cum_depth,
    cum_depth_lots,
    fill,
    fill_lots,
    imbalance,
    imbalance_lots,
    qty_within,
    qty_within_bps,
    qty_within_bps_lots,
    qty_within_ticks,
    size_at,
    size_at_lots,
    top_levels,
)
from .capture._series import TopSeries
from .deltas import DeltaBook
from .errors import (
    BookError,
    CaptureFormatError,
    ChecksumError,
    DeltaError,
    EndpointError,
    FrameError,
    MissingSnapshotError,
    OkxbookError,
    RecorderError,
    RestError,
    SequenceError,
    ShareError,
    SubscriptionError,
    TransportError,
    UnknownChannelError,
    UnknownInstrumentError,
)
from .events import (
    PONG,
    ChannelConnCount,
    ErrorEvent,
    Event,
    LoginAck,
    Notice,
    OtherEvent,
    Pong,
    SubscribeAck,
    UnsubscribeAck,
)

_compat.install()

__version__ = "0.1.0"

__all__ = [
    "ASK",
    "BID",
    "CHANNELS",
    "DELTA_DTYPE",
    "DEPTH_DTYPE",
    "FRAME_DTYPE",
    "NO_ASK",
    "NO_BID",
    "PONG",
    "Book",
    "BookError",
    "Books",
    "CaptureFormatError",
    "ChannelConnCount",
    "ChecksumError",
    "DeltaBook",
    "DeltaError",
    "DeltaRecorder",
    "EndpointError",
    "ErrorEvent",
    "Event",
    "FrameError",
    "LoginAck",
    "MissingSnapshotError",
    "Notice",
    "OkxbookError",
    "OtherEvent",
    "Pong",
    "RecorderError",
    "RestError",
    "SequenceError",
    "ShareError",
    "SubscribeAck",
    "SubscriptionError",
    "TopLevels",
    "TopSeries",
    "TransportError",
    "UnknownChannelError",
    "UnknownInstrumentError",
    "UnsubscribeAck",
    "cum_depth",
    "cum_depth_lots",
    "fill",
    "fill_lots",
    "imbalance",
    "imbalance_lots",
    "okx_checksum",
    "qty_within",
    "qty_within_bps",
    "qty_within_bps_lots",
    "qty_within_ticks",
    "size_at",
    "size_at_lots",
    "top_levels",
]
