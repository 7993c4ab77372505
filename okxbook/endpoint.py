"""The OKX endpoint protocol, once, for both local endpoints (``okxbook serve`` and
``okxbook.testing.LocalExchange``).

What is shared: binding WebSocket and REST on one port with OKX-like server options, the URLs,
decoding and validating a client's request (text JSON object, ``id`` rule, ``op``, ``args``) into
either a :class:`WsRequest` or the OKX error event to answer with, the id echo of events, and the
REST ``/api/v5/market/books`` query rules and JSON responses. What each server does with a valid
request (which books it has, what it pushes) stays in that server.

Layering: this module imports only ``okxbook.okx`` and third-party libraries (not the core, not
``okxbook.testing``), so ``capture/`` and ``testing/`` may both import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Self

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from okxbook import okx

__all__ = [
    "NO_INSTRUMENT",
    "REST_BOOKS_PATH",
    "REST_SOURCES",
    "WS_PATH",
    "LoopbackEndpoint",
    "WsRequest",
    "arg_key",
    "books_query",
    "check_sub_args",
    "decode_request",
    "error_event",
    "json_response",
    "with_id",
]

WS_PATH: Final = okx.WS_PUBLIC_PATH
REST_BOOKS_PATH: Final = okx.REST_BOOKS_PATH
#: The ``op`` values a public endpoint answers (§2); others are 60019.
OPS: Final = frozenset({"subscribe", "unsubscribe", "login"})

BookKey = tuple[str, str]

#: The one rule for which book ``GET /api/v5/market/books`` answers from: the first of these
#: channels the endpoint has a live book of for the instId (§8: the 400-level non-RPI book). Never
#: books-rpi: its third level field is the non-RPI size, which /market/books does not carry.
REST_SOURCES: Final = ("books", "books-l2-tbt", "books-elp", "books50-l2-tbt")


@dataclass(frozen=True, slots=True)
class WsRequest:
    """A decoded client request whose ``id`` and ``op`` are valid (``args`` not yet checked)."""

    op: str
    id: str | None
    args: Any
    text: str
    """The request as received (for OKX's ``Invalid request: ...`` texts)."""


def with_id(req_id: str | None, event: dict[str, Any]) -> dict[str, Any]:
    """OKX echoes the request id first, and only when one was given (§2)."""
    return {"id": req_id, **event} if req_id is not None else event


def error_event(code: okx.Code | str, msg: str, req_id: str | None = None) -> dict[str, Any]:
    """An OKX error event (§6): ``{"id"?, "event": "error", "code", "msg"}``; no ``arg``."""
    return with_id(req_id, {"event": "error", "code": str(code), "msg": msg})


def decode_request(message: str | bytes) -> WsRequest | dict[str, Any]:
    """The request in ``message`` (not the text ``ping``: each server answers that itself), or
    the error event OKX answers it with: 60012 not a JSON object, 60013 a bad ``id`` (§0b),
    60019 an unknown ``op``."""
    text = message if isinstance(message, str) else message.decode("utf-8", "replace")
    try:
        req = orjson.loads(message)
    except ValueError:
        req = None
    if not isinstance(req, dict):
        return error_event(okx.Code.INVALID_REQUEST, f"Invalid request: {text}")
    req_id = req.get("id")
    if req_id is not None and not (isinstance(req_id, str) and okx.valid_request_id(req_id)):
        # §0b: id is 1 to 32 ASCII letters and digits.
        return error_event(okx.Code.INVALID_ARGS, f"Invalid args : id {req_id!r}")
    op = req.get("op")
    if op not in OPS:
        return error_event(okx.Code.INVALID_OP, f"Invalid OP: {op}", req_id)
    return WsRequest(op, req_id, req.get("args"), text)


def check_sub_args(request: WsRequest) -> dict[str, Any] | None:
    """The 60012 event for a (un)subscribe whose ``args`` is not a non-empty list, else None."""
    if not isinstance(request.args, list) or not request.args:
        return error_event(okx.Code.INVALID_REQUEST, f"Invalid request: {request.text}", request.id)
    return None


def arg_key(arg: Any, req_id: str | None) -> BookKey | dict[str, Any]:
    """``(channel, instId)`` of one subscription argument, or its 60013 event."""
    channel = arg.get("channel") if isinstance(arg, dict) else None
    inst_id = arg.get("instId") if isinstance(arg, dict) else None
    if not isinstance(channel, str) or not isinstance(inst_id, str) or not inst_id:
        return error_event(okx.Code.INVALID_ARGS, f"Invalid args : {arg}", req_id)
    return channel, inst_id


def books_query(query: dict[str, list[str]]) -> tuple[str, int] | tuple[int, dict[str, Any]]:
    """``(instId, sz)`` of a REST books query, or ``(status, body)`` of its refusal (§8: instId
    required, ``sz`` default 1, at most 400)."""
    inst_id = (query.get("instId") or [""])[0]
    if not inst_id:
        return 400, {"code": "50014", "msg": "Parameter instId can not be empty", "data": []}
    try:
        sz = int((query.get("sz") or ["1"])[0])
    except ValueError:
        sz = -1
    if not 1 <= sz <= okx.MAX_REST_DEPTH:
        return 400, {"code": "51000", "msg": "Parameter sz error", "data": []}
    return inst_id, sz


#: The REST answer for an instId the endpoint has no book for.
NO_INSTRUMENT: Final = {"code": "51001", "msg": "Instrument ID does not exist", "data": []}


def json_response(connection: ServerConnection, status: int, body: dict[str, Any]) -> Response:
    """A REST answer with OKX's content type."""
    response = connection.respond(status, orjson.dumps(body).decode())
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


class LoopbackEndpoint:
    """What an OKX-like endpoint on this machine shares: its URLs (WebSocket and REST on one
    port) and ``async with`` around ``start()``/``stop()``."""

    host: str
    port: int

    async def _bind(
        self,
        handler: Callable[[ServerConnection], Awaitable[None]],
        process_request: Callable[[ServerConnection, Request], Response | None],
    ) -> Server:
        """Serve WebSocket and REST on one port, as OKX's endpoints behave, and learn the port."""
        server = await serve(
            handler,
            self.host,
            self.port,
            process_request=process_request,
            # OKX keeps the connection alive with its own text ping/pong (§6), not control pings.
            ping_interval=None,
            compression=None,
            # §6: a request over 64 KB closes the connection with 1009.
            max_size=okx.MAX_REQUEST_BYTES,
        )
        self.port = next(iter(server.sockets)).getsockname()[1]
        return server

    async def start(self) -> Self:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{WS_PATH}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"
