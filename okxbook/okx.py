"""Facts about OKX v5 market data, in one place: channels, endpoints, limits and error codes.

Every other module takes what it knows about OKX from here (the core's channel table, the feeder's
login and REST rules, the local exchange and ``serve``), so a change at OKX is one edit. Nothing
here does I/O or imports the rest of okxbook. Each fact names its section of ``docs/protocol.md``,
which in turn links the OKX documentation it comes from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final

__all__ = [
    "BOOKS_CHANNELS",
    "CHANNELS",
    "CHECKSUM_LEVELS",
    "CONNECTS_PER_SECOND",
    "DEMO_REST_HEADER",
    "DEMO_WS_URL",
    "IDLE_CLOSE_S",
    "INSTRUMENTS_PATH",
    "LOGIN_CHANNELS",
    "LOGIN_PATH",
    "MAX_REQUEST_BYTES",
    "MAX_REST_DEPTH",
    "NOTICE_64008_MSG",
    "PING_AFTER_S",
    "PROD_REST_URL",
    "PROD_SBE_WS_URL",
    "PROD_WS_URL",
    "PUSH_ORDER",
    "REQUESTS_PER_HOUR",
    "REST_BOOKS_PATH",
    "REST_BOOKS_RPI_PATH",
    "REST_BOOKS_SBE_PATH",
    "REST_LIMITS",
    "SBE_CHANNELS",
    "SBE_CONTENT_TYPE",
    "SBE_GROUP_HEADER_BYTES",
    "SBE_HEADER_BYTES",
    "SBE_LEVEL_BLOCK",
    "SBE_LOGIN_HEADERS",
    "SBE_MAX_EXPONENT",
    "SBE_PING_S",
    "SBE_REST_MIN_INTERVAL_S",
    "SBE_ROOT_BLOCK",
    "SBE_SCHEMA_ID",
    "SBE_SCHEMA_VERSION",
    "SBE_SOURCE_NORMAL",
    "SBE_TEMPLATE_CHANNEL",
    "SBE_WS_PATH",
    "WS_PUBLIC_PATH",
    "Channel",
    "Code",
    "SbeTemplate",
    "channel",
    "inst_type",
    "l2_tbt_conflict",
    "valid_request_id",
]

# --------------------------------------------------------------------------- endpoints (§6, §8)

#: Production public WebSocket (port 8443 retired on 2026-10-31, §0b).
PROD_WS_URL: Final = "wss://ws.okx.com/ws/v5/public"
#: Demo trading public WebSocket (§6).
DEMO_WS_URL: Final = "wss://wspap.okx.com/ws/v5/public"
#: REST base for production and demo; demo adds :data:`DEMO_REST_HEADER` (§6).
PROD_REST_URL: Final = "https://openapi.okx.com"
DEMO_REST_HEADER: Final = ("x-simulated-trading", "1")
WS_PUBLIC_PATH: Final = "/ws/v5/public"
#: The binary (SBE) public feed (§0b, §11).
SBE_WS_PATH: Final = "/ws/v5/public-sbe"
PROD_SBE_WS_URL: Final = "wss://ws.okx.com/ws/v5/public-sbe"
#: ``GET`` order book: ``instId``, ``sz`` (default 1, at most :data:`MAX_REST_DEPTH`) (§8).
REST_BOOKS_PATH: Final = "/api/v5/market/books"
#: ``GET`` RPI order book: levels ``[px, totalQty, nonRpiQty, count]`` (§8).
REST_BOOKS_RPI_PATH: Final = "/api/v5/market/books-rpi"
#: ``GET`` binary snapshot: ``instIdCode``, ``source`` (:data:`SBE_SOURCE_NORMAL`); the body is
#: one ``SbeTemplate.SNAPSHOT_DEPTH`` message (``application/sbe``), JSON on error (§11).
REST_BOOKS_SBE_PATH: Final = "/api/v5/market/books-sbe"
#: ``GET`` instruments: ``tickSz``, ``lotSz`` (§8).
INSTRUMENTS_PATH: Final = "/api/v5/public/instruments"
MAX_REST_DEPTH: Final = 400
#: The path signed at login: ``timestamp + "GET" + LOGIN_PATH`` (§7).
LOGIN_PATH: Final = "/users/self/verify"

# --------------------------------------------------------------------------- channels (§1)


@dataclass(frozen=True, slots=True)
class Channel:
    """One order-book channel of ``/ws/v5/public``.

    ``depth`` is the published depth; ``image`` channels push their whole window each time (no
    ``action``, no ``prevSeqId``); ``login`` channels need a logged-in connection (and VIP4, else
    64003); ``rest_path`` is the REST route whose answer can seed the book (None: resubscribe).
    """

    name: str
    depth: int
    image: bool
    login: bool
    rest_path: str | None
    push_ms: int


CHANNELS: Final[dict[str, Channel]] = {
    c.name: c
    for c in (
        Channel("books", 400, image=False, login=False, rest_path=REST_BOOKS_PATH, push_ms=100),
        Channel("books5", 5, image=True, login=False, rest_path=None, push_ms=100),
        Channel("bbo-tbt", 1, image=True, login=False, rest_path=None, push_ms=10),
        Channel(
            "books-l2-tbt", 400, image=False, login=True, rest_path=REST_BOOKS_PATH, push_ms=10
        ),
        Channel(
            "books50-l2-tbt", 50, image=False, login=True, rest_path=REST_BOOKS_PATH, push_ms=10
        ),
        Channel(
            "books-rpi", 400, image=False, login=False, rest_path=REST_BOOKS_RPI_PATH, push_ms=100
        ),
        # The pre-2026-10-31 name of books-rpi (§0); same shape, no REST route of its own.
        Channel("books-elp", 400, image=False, login=False, rest_path=None, push_ms=100),
    )
}

#: The snapshot-then-deltas channels (``action``, ``prevSeqId``, ``seqId`` chain).
BOOKS_CHANNELS: Final = frozenset(name for name, c in CHANNELS.items() if not c.image)
#: Channels that need login on the public connection (§1, §7).
LOGIN_CHANNELS: Final = frozenset(name for name, c in CHANNELS.items() if c.login)
#: The fixed push order per connection and instrument (§0b).
PUSH_ORDER: Final = (
    "bbo-tbt",
    "books-l2-tbt",
    "books50-l2-tbt",
    "books",
    "books-elp",
    "books-rpi",
    "books5",
)
#: The checksum covers the top 25 levels of each side (§3).
CHECKSUM_LEVELS: Final = 25

_L2_TBT_CLASH: Final = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})


def channel(name: str) -> Channel:
    """The :class:`Channel` called ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return CHANNELS[name]
    except KeyError:
        raise KeyError(
            f"not an OKX book channel: {name!r} (known: {', '.join(CHANNELS)})"
        ) from None


def l2_tbt_conflict(a: str, b: str) -> bool:
    """Whether one connection can't carry channels ``a`` and ``b`` for the same instId: OKX
    refuses ``books-l2-tbt`` beside ``books`` or ``books50-l2-tbt`` with 64004 (§1)."""
    return a != b and a in _L2_TBT_CLASH and b in _L2_TBT_CLASH and "books-l2-tbt" in (a, b)


# --------------------------------------------------------------------------- limits (§6, §8)

#: New connections per second per IP.
CONNECTS_PER_SECOND: Final = 3
#: subscribe + unsubscribe + login requests per connection per hour.
REQUESTS_PER_HOUR: Final = 480
#: One request's channel list must stay under 64 KB (else close 1009).
MAX_REQUEST_BYTES: Final = 64 * 1024
#: The server closes a connection after 30 s without data (close 4004) ...
IDLE_CLOSE_S: Final = 30.0
#: ... so a client sends the text ``ping`` after this much silence and expects ``pong``.
PING_AFTER_S: Final = 25.0
#: REST route -> (requests, per seconds) per IP.
REST_LIMITS: Final[dict[str, tuple[int, float]]] = {
    REST_BOOKS_PATH: (40, 2.0),
    REST_BOOKS_RPI_PATH: (20, 2.0),
    INSTRUMENTS_PATH: (20, 2.0),
    # Per IP *and* instIdCode (§11).
    REST_BOOKS_SBE_PATH: (10, 10.0),
}

_REQUEST_ID = re.compile(r"[A-Za-z0-9]{1,32}")


def valid_request_id(request_id: str) -> bool:
    """A request ``id`` is 1 to 32 ASCII letters and digits (a hyphen was refused with 60033, §0b)."""
    return _REQUEST_ID.fullmatch(request_id) is not None


# --------------------------------------------------------------------------- SBE binary feed (§11)

SBE_CONTENT_TYPE: Final = "application/sbe"
SBE_SOURCE_NORMAL: Final = 0
#: OKX refreshes the binary snapshot about every 500 ms: asking faster returns the same one.
SBE_REST_MIN_INTERVAL_S: Final = 0.5
#: ``okx_sbe_1_0.xml``: ``messageSchema id="1" version="0"``, little-endian.
SBE_SCHEMA_ID: Final = 1
SBE_SCHEMA_VERSION: Final = 0
#: messageHeader: blockLength, templateId, schemaId, version (uint16 each).
SBE_HEADER_BYTES: Final = 8
#: groupSize16Encoding: blockLength, numInGroup (uint16 each).
SBE_GROUP_HEADER_BYTES: Final = 4
#: One level of a group: pxMantissa i64, szMantissa i64, ordCount i32.
SBE_LEVEL_BLOCK: Final = 20
#: value = mantissa * 10**exponent; okxbook keeps at most 18 decimals (int64), so |exponent| <= 18.
SBE_MAX_EXPONENT: Final = 18
#: The server pings every 20 s (WebSocket ping frames); the text ``ping`` is refused (60012).
SBE_PING_S: Final = 20.0
#: Login travels in the HTTP upgrade request as these headers (signature as for ``op: login``).
SBE_LOGIN_HEADERS: Final = (
    "OK-ACCESS-KEY",
    "OK-ACCESS-SIGN",
    "OK-ACCESS-TIMESTAMP",
    "OK-ACCESS-PASSPHRASE",
)


class SbeTemplate(IntEnum):
    """``templateId`` of each message of schema 1 (``okx_sbe_1_0.xml``)."""

    BBO_TBT = 1000  # BboTbtChannelEvent
    BOOKS_L2_TBT = 1001  # BooksL2TbtChannelEvent
    BOOKS_L2_TBT_EXPONENT = 1002  # BooksL2TbtExponentUpdateEvent
    BOOKS_L2_TBT_ELP = 1003  # BooksL2TbtElpChannelEvent
    BOOKS_L2_TBT_ELP_EXPONENT = 1004  # BooksL2TbtElpExponentUpdateEvent
    TRADES = 1005  # TradesChannelEvent
    SNAPSHOT_DEPTH = 1006  # SnapshotDepthResponseEvent (REST books-sbe)


#: The fixed part (root block) of each message in schema version 0: what a frame's header
#: ``blockLength`` must at least say (a later version may say more, and the extra is skipped).
SBE_ROOT_BLOCK: Final[dict[int, int]] = {
    SbeTemplate.BBO_TBT: 74,
    SbeTemplate.BOOKS_L2_TBT: 42,
    SbeTemplate.BOOKS_L2_TBT_EXPONENT: 42,
    SbeTemplate.BOOKS_L2_TBT_ELP: 42,
    SbeTemplate.BOOKS_L2_TBT_ELP_EXPONENT: 42,
    SbeTemplate.TRADES: 62,
    SbeTemplate.SNAPSHOT_DEPTH: 26,
}
#: The channel each template belongs to (the book key is channel + the instId of ``instIdCode``).
SBE_TEMPLATE_CHANNEL: Final[dict[int, str]] = {
    SbeTemplate.BBO_TBT: "bbo-tbt",
    SbeTemplate.BOOKS_L2_TBT: "books-l2-tbt",
    SbeTemplate.BOOKS_L2_TBT_EXPONENT: "books-l2-tbt",
    SbeTemplate.BOOKS_L2_TBT_ELP: "books-l2-tbt-elp",
    SbeTemplate.BOOKS_L2_TBT_ELP_EXPONENT: "books-l2-tbt-elp",
    SbeTemplate.TRADES: "trades",
    SbeTemplate.SNAPSHOT_DEPTH: "books-l2-tbt",
}
#: The book channels served on :data:`SBE_WS_PATH`; both need login (``books-l2-tbt`` VIP4).
SBE_CHANNELS: Final = frozenset({"bbo-tbt", "books-l2-tbt"})


def inst_type(inst_id: str) -> str:
    """The ``instType`` OKX's instrument routes want, from the instId's shape (§8): ``BTC-USDT``
    SPOT, ``BTC-USDT-SWAP`` SWAP, ``BTC-USD-261225`` FUTURES, ``BTC-USD-261225-90000-C`` OPTION."""
    parts = inst_id.split("-")
    if len(parts) == 3 and parts[2] == "SWAP":
        return "SWAP"
    if len(parts) == 3 and parts[2].isdigit():
        return "FUTURES"
    if len(parts) == 5 and parts[4] in ("C", "P"):
        return "OPTION"
    return "SPOT"


# --------------------------------------------------------------------------- error codes (§6, §7)


class Code(StrEnum):
    """OKX WebSocket error and notice codes, as the strings OKX sends in ``code``."""

    TIMESTAMP = "60004"
    API_KEY = "60005"
    EXPIRED = "60006"
    SIGN = "60007"
    LOGIN_FAILED = "60009"
    PLEASE_LOG_IN = "60011"
    INVALID_REQUEST = "60012"
    INVALID_ARGS = "60013"
    TOO_FREQUENT = "60014"
    WRONG_CHANNEL = "60018"
    INVALID_OP = "60019"
    PASSPHRASE = "60024"
    INVALID_REQUEST_ID = "60033"
    WRONG_URL_BUSINESS = "64001"
    WRONG_URL_PUBLIC = "64002"
    FEE_TIER = "64003"
    L2_TBT_CONFLICT = "64004"
    INTERNAL = "64007"
    SERVICE_UPGRADE = "64008"

    @property
    def login_refused(self) -> bool:
        """The server refused the credentials: retrying with the same ones cannot help."""
        return self in _LOGIN_REFUSED

    @property
    def retryable(self) -> bool:
        """A refusal worth retrying later (rate or transient server trouble)."""
        return self in _RETRYABLE

    @classmethod
    def lookup(cls, code: str) -> Code | None:
        """The :class:`Code` for ``code``, or None for a code okxbook does not know."""
        try:
            return cls(code)
        except ValueError:
            return None


_LOGIN_REFUSED: Final = frozenset(
    {Code.TIMESTAMP, Code.API_KEY, Code.EXPIRED, Code.SIGN, Code.LOGIN_FAILED, Code.PASSPHRASE}
)
_RETRYABLE: Final = frozenset({Code.TOO_FREQUENT, Code.INTERNAL})

#: The text of the 64008 notice (§6).
NOTICE_64008_MSG: Final = (
    "The connection will soon be closed for a service upgrade. Please reconnect."
)
