"""okxbook.testing: a local OKX-like exchange and deterministic synthetic book streams.

Owns test infrastructure shipped with the package: `synthetic` generates the exchange side of OKX v5
order books (frames, checksums, seqId chains, the REST snapshot) and `exchange` serves them over a
real WebSocket + REST server on 127.0.0.1 with fault injection and accounting. Pure Python; it
imports nothing from the okxbook core, so it can check the core independently.
"""

from okxbook.testing.exchange import (
    LOGIN_CHANNELS,
    REST_BOOKS_PATH,
    WS_PATH,
    ConnInfo,
    LocalExchange,
    RestRequest,
    Sent,
)
from okxbook.testing.synthetic import (
    CHANNEL_DEPTH,
    DELTA_CHANNELS,
    IMAGE_CHANNELS,
    ChecksumMode,
    Level,
    SyntheticBook,
    okx_checksum,
    synthetic_stream,
)

__all__ = [
    "CHANNEL_DEPTH",
    "DELTA_CHANNELS",
    "IMAGE_CHANNELS",
    "LOGIN_CHANNELS",
    "REST_BOOKS_PATH",
    "WS_PATH",
    "ChecksumMode",
    "ConnInfo",
    "Level",
    "LocalExchange",
    "RestRequest",
    "Sent",
    "SyntheticBook",
    "okx_checksum",
    "synthetic_stream",
]
