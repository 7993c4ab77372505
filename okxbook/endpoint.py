"""What an OKX-like endpoint on this machine says, shared by ``okxbook serve`` and the local exchange.

Both servers answer the same request protocol (``docs/protocol.md`` §2, §6): this module parses a
client's request and builds the OKX events and REST bodies they answer with, in OKX's words, so the
two cannot drift apart. It also binds WebSocket + REST on one port (:class:`LoopbackEndpoint`),
over TLS if asked (:class:`ServerTls`: ``wss://`` and ``https://``, as OKX serves, with a
certificate made on the fly by ``trustme`` or one given as files). It imports nothing of okxbook
but :mod:`okxbook.okx`; it does no book work.
"""

from __future__ import annotations

import os
import ssl
import tempfile
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Self

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from okxbook import okx

__all__ = [
    "PONG",
    "WS_PATH",
    "LoopbackEndpoint",
    "Req",
    "ServerTls",
    "ack",
    "error_event",
    "invalid_args",
    "invalid_op",
    "invalid_request",
    "is_ping",
    "json_response",
    "login_failed",
    "login_ok",
    "parse_request",
    "please_log_in",
    "rest_error",
    "subscribe_refusal",
    "tls_option",
    "with_id",
    "wrong_channel",
]

WS_PATH: Final = okx.WS_PUBLIC_PATH


#: The answer to a client's text ``ping`` (§6).
PONG: Final = b"pong"


def is_ping(message: str | bytes) -> bool:
    """A client's keep-alive: the text ``ping`` (§6), whether the server read it as str or bytes."""
    return message == "ping" or message == b"ping"


def with_id(req_id: Any, event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with the request id first, only when one was given, as OKX echoes it (§2)."""
    return {"id": req_id, **event} if req_id is not None else event


def error_event(code: okx.Code | str, msg: str, req_id: Any = None) -> dict[str, Any]:
    """An OKX error event; it carries no ``arg`` (§6)."""
    return with_id(req_id, {"event": "error", "code": str(code), "msg": msg})


def _text(raw: str | bytes) -> str:
    return raw if isinstance(raw, str) else raw.decode("utf-8", "replace")


def invalid_request(raw: str | bytes, req_id: Any = None) -> dict[str, Any]:
    """60012: the request is not an OKX request object; OKX quotes it back (§6)."""
    return error_event(okx.Code.INVALID_REQUEST, f"Invalid request: {_text(raw)}", req_id)


def _json_text(value: Any) -> str:
    """``value`` as the client sent it (JSON), never a Python repr."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # cannot happen for parsed JSON; never a traceback for bad input
        return str(value)


def invalid_args(arg: Any, req_id: Any = None) -> dict[str, Any]:
    """60013: one ``args`` entry is not a ``{"channel", "instId"}`` object; quoted as JSON."""
    return error_event(okx.Code.INVALID_ARGS, f"Invalid args : {_json_text(arg)}", req_id)


def invalid_op(op: Any, req_id: Any = None) -> dict[str, Any]:
    """60019: ``op`` is not subscribe/unsubscribe/login; a string as is, anything else as JSON."""
    text = op if isinstance(op, str) else _json_text(op)
    return error_event(okx.Code.INVALID_OP, f"Invalid OP: {text}", req_id)


def wrong_channel(channel: str, inst_id: str, req_id: Any = None) -> dict[str, Any]:
    """60018: no such channel, or no such instId on it, named as OKX names it (§6)."""
    return error_event(
        okx.Code.WRONG_CHANNEL,
        f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist. Please use the correct "
        "URL, channel and parameters referring to API document.",
        req_id,
    )


def please_log_in(req_id: Any = None) -> dict[str, Any]:
    """60011: a login channel (``*-l2-tbt``, §1) subscribed before logging in."""
    return error_event(okx.Code.PLEASE_LOG_IN, "Please log in", req_id)


def subscribe_refusal(
    channel: str,
    inst_id: str,
    *,
    known: bool,
    logged_in: bool,
    sbe: bool = False,
    req_id: Any = None,
) -> dict[str, Any] | None:
    """The error OKX answers a subscribe to ``(channel, inst_id)`` with, or None to accept it:
    60018 for a channel or instId that does not exist (``known``: the server has it), then 60011
    for a login channel (``*-l2-tbt``, §1), or any channel on the SBE feed (``sbe``: the
    connection is on ``/ws/v5/public-sbe``, where every channel needs the header login, §11), on
    a connection that has not logged in. The one rule of both servers (``okxbook serve`` and the
    local exchange)."""
    if not known or channel not in okx.CHANNELS:
        return wrong_channel(channel, inst_id, req_id)
    if (sbe or channel in okx.LOGIN_CHANNELS) and not logged_in:
        # OKX's 64003 is for a login below VIP4 on books-l2-tbt, a tier neither server models.
        return please_log_in(req_id)
    return None


def ack(op: str, arg: dict[str, Any], req_id: Any = None) -> dict[str, Any]:
    """The ack of one ``subscribe``/``unsubscribe`` arg: ``{"event": op, "arg": arg}`` (§6)."""
    return with_id(req_id, {"event": op, "arg": arg})


def login_ok(req_id: Any = None) -> dict[str, Any]:
    """A successful login (§7)."""
    return with_id(req_id, {"event": "login", "code": "0", "msg": ""})


def login_failed(req_id: Any = None) -> dict[str, Any]:
    """60009: the login was refused (§7)."""
    return error_event(okx.Code.LOGIN_FAILED, "Login failed.", req_id)


@dataclass(frozen=True, slots=True)
class Req:
    """A parsed client request: ``op``, its ``id`` (None if absent) and its raw ``args``."""

    op: Any
    req_id: str | None
    args: Any


def parse_request(
    message: str | bytes, *, bad_id_code: okx.Code = okx.Code.INVALID_REQUEST_ID
) -> Req | dict[str, Any]:
    """The request in ``message``, or the error event answering it: 60012 for what is not a JSON
    object, ``bad_id_code`` (OKX sent 60033, §0b) for an ``id`` OKX refuses
    (``okx.valid_request_id``), echoing the id."""
    try:
        req = orjson.loads(message)
    except ValueError:
        req = None
    if not isinstance(req, dict):
        return invalid_request(message)
    req_id = req.get("id")
    if req_id is not None and not (isinstance(req_id, str) and okx.valid_request_id(req_id)):
        return error_event(bad_id_code, f"Invalid request: {_text(message)}", req_id)
    return Req(req.get("op"), req_id, req.get("args"))


def rest_error(code: str, msg: str) -> dict[str, Any]:
    """A REST error body: ``code`` and ``msg``, no data (§8)."""
    return {"code": code, "msg": msg, "data": []}


def json_response(connection: ServerConnection, status: int, body: dict[str, Any]) -> Response:
    response = connection.respond(status, orjson.dumps(body).decode())
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class ServerTls:
    """The TLS side of a local endpoint: the server's ``context`` and ``ca_file``, the PEM file a
    client must trust (``Feed(..., ca_file=...)``, ``SSL_CERT_FILE=...`` for other clients).

    ``ServerTls()`` makes a throw-away CA and a certificate for ``localhost``, ``127.0.0.1`` and
    ``::1`` (and ``host``), with ``trustme`` (``pip install 'okxbook[tls]'``), its CA written to a
    temporary file; ``ServerTls(cert=, key=)`` serves a certificate you have (``ca_file`` is then
    ``cert``, right for a self-signed one; pass the CA's file to clients otherwise).
    """

    def __init__(
        self, *, cert: str | None = None, key: str | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if cert is not None:
            self.context.load_cert_chain(cert, key)  # OSError/SSLError for a bad file
            self.ca_file = cert
            return
        if key is not None:
            raise ValueError("a key without a certificate: give both cert and key")
        try:
            import trustme
        except ImportError as exc:
            raise ImportError(
                "a self-signed certificate needs the trustme package: pip install 'okxbook[tls]'"
                " (or give a certificate and key)"
            ) from exc
        ca = trustme.CA(organization_name="okxbook local endpoint")
        names = ["localhost", "127.0.0.1", "::1"]
        if host and host not in names and host not in ("0.0.0.0", "::"):
            names.append(host)
        ca.issue_cert(*names).configure_cert(self.context)
        fd, self.ca_file = tempfile.mkstemp(prefix="okxbook-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as f:
            f.write(ca.cert_pem.bytes())
        weakref.finalize(self, _unlink, self.ca_file)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this endpoint (and checks its name, as for OKX)."""
        return ssl.create_default_context(cafile=self.ca_file)


class LoopbackEndpoint:
    """What an OKX-like endpoint on this machine shares: its URLs (WebSocket and REST on one
    port, ``wss://``/``https://`` when ``tls`` is set) and ``async with`` around
    ``start()``/``stop()``."""

    host: str
    port: int
    tls: ServerTls | None = None
    """TLS, if served; its ``ca_file`` is what clients must trust."""

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
            ssl=self.tls.context if self.tls is not None else None,
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
        scheme = "wss" if self.tls is not None else "ws"
        return f"{scheme}://{self.host}:{self.port}{WS_PATH}"

    @property
    def rest_url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"


def tls_option(tls: bool | ServerTls | None, host: str) -> ServerTls | None:
    """The ``tls`` argument of a server: True makes a self-signed certificate for ``host``."""
    if tls is True:
        return ServerTls(host=host)
    return tls or None
