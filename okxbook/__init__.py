"""okxbook: OKX v5 L2 order books that are never silently wrong.

``Books().apply(frame)`` applies one raw OKX WebSocket frame (``books``, ``books-l2-tbt``,
``books50-l2-tbt``, ``books5``, ``bbo-tbt``, ``books-rpi``/``books-elp``) and returns the ``Book`` it
updated or an ``Event`` for acks, errors, notices and pong.
"""

from . import _compat
from ._book import CHANNELS, DEPTH_DTYPE, NO_ASK, NO_BID, Book
from ._books import Books
from ._checksum import okx_checksum
from .capture._series import TopSeries
from .errors import (
    BookError,
    CaptureFormatError,
    ChecksumError,
    EndpointError,
    FrameError,
    MissingSnapshotError,
    OkxbookError,
    RecorderError,
    RestError,
    SequenceError,
    SubscriptionError,
    TransportError,
    UnknownChannelError,
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
    "CHANNELS",
    "DEPTH_DTYPE",
    "NO_ASK",
    "NO_BID",
    "PONG",
    "Book",
    "BookError",
    "Books",
    "CaptureFormatError",
    "ChannelConnCount",
    "ChecksumError",
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
    "SubscribeAck",
    "SubscriptionError",
    "TopSeries",
    "TransportError",
    "UnknownChannelError",
    "UnsubscribeAck",
    "okx_checksum",
]
