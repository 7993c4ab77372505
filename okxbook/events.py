"""Non-book frames handed back by ``Books.apply``: acks, errors, notices, login, pong.

These are rare (a handful per connection), so they are decoded with orjson on the cold path and
turned into small frozen dataclasses. The hot path never builds them.
Shapes: docs/protocol.md §2, §6, §7.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .errors import FrameError

__all__ = [
    "INST_ID_CODE_EVENT",
    "PONG",
    "ChannelConnCount",
    "ErrorEvent",
    "Event",
    "LoginAck",
    "Notice",
    "OtherEvent",
    "Pong",
    "SubscribeAck",
    "UnsubscribeAck",
    "inst_id_code_frame",
    "parse_event",
]

#: okxbook's own event (OKX never sends it): "instIdCode N is instId X", for SBE frames, which
#: name instruments by code. ``Books.apply`` learns the mapping from it; the feeder records one
#: per instrument, so a recording of SBE frames replays on its own.
INST_ID_CODE_EVENT = "okxbook-instIdCode"


def inst_id_code_frame(inst_id: str, code: int) -> bytes:
    """The :data:`INST_ID_CODE_EVENT` frame mapping ``code`` to ``inst_id``."""
    return orjson.dumps({"event": INST_ID_CODE_EVENT, "instId": inst_id, "instIdCode": code})


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every non-book frame. ``conn_id`` is OKX's connection id, when the frame has one."""

    conn_id: str | None = None


@dataclass(frozen=True, slots=True)
class Pong(Event):
    """OKX's text ``pong``, the answer to our text ``ping`` keep-alive."""


PONG = Pong()


@dataclass(frozen=True, slots=True)
class SubscribeAck(Event):
    channel: str = ""
    inst_id: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class UnsubscribeAck(Event):
    channel: str = ""
    inst_id: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorEvent(Event):
    """``{"event":"error","code":..,"msg":..}``. OKX error events carry no ``arg``; ``channel`` and
    ``inst_id`` are filled in when the frame has one anyway (or the feeder matches it by ``id``)."""

    code: str = ""
    msg: str = ""
    id: str | None = None
    channel: str | None = None
    inst_id: str | None = None


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """``{"event":"notice","code":"64008",..}``: the connection closes soon for a service upgrade."""

    code: str = ""
    msg: str = ""


@dataclass(frozen=True, slots=True)
class LoginAck(Event):
    code: str = "0"
    msg: str = ""


@dataclass(frozen=True, slots=True)
class ChannelConnCount(Event):
    """Private-channel connection count report (``channel-conn-count``/``-error``)."""

    channel: str = ""
    conn_count: int = 0
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class OtherEvent(Event):
    """An ``event`` frame okxbook has no specific type for; ``raw`` is the decoded JSON object."""

    event: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def _arg(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    arg = obj.get("arg")
    if isinstance(arg, dict):
        ch, inst = arg.get("channel"), arg.get("instId")
        return (ch if isinstance(ch, str) else None, inst if isinstance(inst, str) else None)
    return None, None


def parse_event(frame: bytes | str) -> Event:
    """Decode one ``event`` frame. Raises ``FrameError`` if it is not a JSON object with an event."""
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        raise FrameError("event frame without a string 'event'")
    kind: str = obj["event"]
    conn_id = obj.get("connId")
    conn_id = conn_id if isinstance(conn_id, str) else None
    req_id = obj.get("id")
    req_id = str(req_id) if req_id is not None else None
    channel, inst_id = _arg(obj)
    code = str(obj.get("code", ""))
    msg = str(obj.get("msg", ""))
    if kind == "subscribe":
        return SubscribeAck(conn_id, channel or "", inst_id, req_id)
    if kind == "unsubscribe":
        return UnsubscribeAck(conn_id, channel or "", inst_id, req_id)
    if kind == "error":
        return ErrorEvent(conn_id, code, msg, req_id, channel, inst_id)
    if kind == "notice":
        return Notice(conn_id, code, msg)
    if kind == "login":
        return LoginAck(conn_id, code or "0", msg)
    if kind in ("channel-conn-count", "channel-conn-count-error"):
        try:
            count = int(obj.get("connCount", 0))
        except (TypeError, ValueError):
            count = 0
        return ChannelConnCount(
            conn_id, str(obj.get("channel", "")), count, kind.endswith("-error")
        )
    return OtherEvent(conn_id, kind, obj)
