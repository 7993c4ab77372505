"""The exchange side of OKX's binary (SBE) feed for tests: the message encoders and the JSON ->
SBE converter. They live in ``okxbook.endpoint_sbe`` (shared with ``capture.serve``, which may
not import ``testing``); this module is their home under ``okxbook.testing``."""

from okxbook.endpoint_sbe import (
    SbeConverter,
    SbeLevel,
    SbeSide,
    bbo_message,
    exponent_message,
    l2_message,
    mantissa,
    snapshot_message,
    trade_message,
    truncate,
)

__all__ = [
    "SbeConverter",
    "SbeLevel",
    "SbeSide",
    "bbo_message",
    "exponent_message",
    "l2_message",
    "mantissa",
    "snapshot_message",
    "trade_message",
    "truncate",
]
