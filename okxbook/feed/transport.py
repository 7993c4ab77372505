"""WebSocket transports behind one small interface, so the feeder's book path is the same for both.

A transport delivers every text frame, as ``bytes``, to an ``on_frame`` callback called directly
from its receive path (no queue in between: the book is updated in the same tick the frame is
read), sends text, and reports when the connection has ended and with which close code.

- ``websockets`` (default): websockets' asyncio client with its data frames taken straight from
  its protocol's ``data_received`` (``_frame_connection``), as bytes with no UTF-8 decode: no
  ``recv()`` task, future or await per frame. Control-frame pings are off: OKX's keep-alive is
  the text ``ping``.
- ``picows`` (optional extra ``okxbook[picows]``): a Cython client whose listener callback is the
  receive path. Given the ``Connection`` (``conn=``), the listener is ``feed._receive.Receiver``,
  which hands picows' frame buffer to ``Books.apply_raw`` and does a live book's bookkeeping in C
  (no ``bytes``, no Python frame per message but the consumer's callbacks); without it (or when
  okxbook was built without picows) a Python listener calls ``on_frame`` with ``bytes``.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any, Protocol

from okxbook.errors import TransportError

log = logging.getLogger("okxbook.feed")

__all__ = ["TRANSPORTS", "Transport", "TransportError", "connect_transport"]

OnFrame = Callable[[bytes], None]
TRANSPORTS = ("websockets", "picows")


class Transport(Protocol):
    close_code: int | None

    async def send(self, text: str) -> None: ...
    async def close(self, code: int = 1000) -> None: ...
    async def wait_closed(self) -> int | None: ...
    def abort(self) -> None: ...


def _frame_connection() -> type[Any]:
    """websockets' asyncio ``ClientConnection`` with its data frames handed to ``on_frame`` from
    ``data_received`` (every frame of one socket read, in order, as ``bytes``, no UTF-8 decode),
    instead of queued in its ``Assembler`` for a ``recv()`` task: no future, no task switch and
    no await per frame. Control frames (ping, pong, close) keep websockets' own handling. Frames
    that arrive before the transport is wired (``on_frame`` unset) wait in a list."""
    global _FrameConnection
    if _FrameConnection is not None:
        return _FrameConnection
    from websockets.asyncio.client import ClientConnection
    from websockets.frames import Opcode

    text, binary, cont = Opcode.TEXT, Opcode.BINARY, Opcode.CONT

    class FrameConnection(ClientConnection):
        on_frame: OnFrame | None = None
        early: list[bytes] | None = None
        parts: list[bytes] | None = None

        def process_event(self, event: Any) -> None:
            if self.response is None:  # the handshake's answer
                super().process_event(event)
                return
            op = event.opcode
            if op is text or op is binary:
                if not event.fin:
                    self.parts = [bytes(event.data)]
                    return
                data = event.data
            elif op is cont:
                assert self.parts is not None, "websockets checks the fragment sequence"
                self.parts.append(bytes(event.data))
                if not event.fin:
                    return
                data, self.parts = b"".join(self.parts), None
            else:
                super().process_event(event)
                return
            if type(data) is not bytes:
                data = bytes(data)
            on_frame = self.on_frame
            if on_frame is not None:
                on_frame(data)
            elif self.early is None:
                self.early = [data]
            else:
                self.early.append(data)

        def wire(self, on_frame: OnFrame) -> None:
            early, self.early = self.early or [], None
            self.on_frame = on_frame
            for data in early:
                on_frame(data)

    _FrameConnection = FrameConnection
    return FrameConnection


_FrameConnection: type[Any] | None = None


class WebsocketsTransport:
    """``ws`` is a ``_frame_connection()`` connection: its frames reach ``on_frame`` from its
    protocol's ``data_received``."""

    def __init__(self, ws: Any, on_frame: OnFrame) -> None:
        self._ws = ws
        self.close_code: int | None = None
        ws.wire(on_frame)

    async def send(self, text: str) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self._ws.send(text)
        except ConnectionClosed as exc:  # not an OSError: say what it means to the caller
            raise ConnectionError(f"connection closed: {exc}") from exc

    async def close(self, code: int = 1000) -> None:
        await self._ws.close(code)
        await self.wait_closed()

    async def wait_closed(self) -> int | None:
        await self._ws.wait_closed()
        self.close_code = self._ws.close_code if self._ws.close_code is not None else 1006
        return self.close_code

    def abort(self) -> None:
        self._ws.transport.abort()


def _c_receiver() -> Any:
    """``feed._receive.Receiver`` if it was built against the picows installed now, else None (then
    picows' Python listener is used, frames as bytes). Another picows could lay out ``WSListener``
    differently, which Cython's size check does not always catch: only the same version is used."""
    try:
        from ._receive import PICOWS_BUILT_WITH, Receiver
    except (ImportError, ValueError):  # built without picows, or another picows' type sizes
        return None  # (Cython refuses those with ValueError)
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("picows")
    except PackageNotFoundError:
        return None
    if installed != PICOWS_BUILT_WITH:
        if not _warned:
            _warned.append(installed)
            log.warning(
                "picows %s is installed but okxbook was built with picows %s: using picows' "
                "Python listener (reinstall okxbook to get its C receive path)",
                installed,
                PICOWS_BUILT_WITH,
            )
        return None
    return Receiver


_warned: list[str] = []


class PicowsTransport:
    def __init__(self, on_frame: OnFrame, conn: Any = None) -> None:
        self._on_frame = on_frame
        self._conn = conn
        self._ws: Any = None  # picows.WSTransport once connected
        self.close_code: int | None = None
        self._fragments: list[bytes] = []

    def make_listener(self) -> Any:
        receiver = _c_receiver()
        if receiver is not None:
            self.listener: Any = receiver(self, self._conn, self._on_frame)
            return self.listener
        from picows import WSListener, WSMsgType

        owner = self

        class Listener(WSListener):
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                kind = frame.msg_type
                if kind == WSMsgType.TEXT or kind == WSMsgType.BINARY:
                    if frame.fin:
                        owner._on_frame(frame.get_payload_as_bytes())
                    else:
                        owner._fragments = [frame.get_payload_as_bytes()]
                elif kind == WSMsgType.CONTINUATION:
                    owner._fragments.append(frame.get_payload_as_bytes())
                    if frame.fin:
                        data, owner._fragments = b"".join(owner._fragments), []
                        owner._on_frame(data)
                elif kind == WSMsgType.CLOSE:
                    owner.close_code = frame.get_close_code()
                    transport.send_close(frame.get_close_code())
                    transport.disconnect()

        return Listener()

    async def send(self, text: str) -> None:
        from picows import WSMsgType

        if self._ws.is_disconnected:
            raise ConnectionError("connection closed")
        self._ws.send(WSMsgType.TEXT, text.encode())

    async def close(self, code: int = 1000) -> None:
        if not self._ws.is_disconnected:  # a property in picows 2.x
            self._ws.send_close(code)
            self._ws.disconnect()
        await self._ws.wait_disconnected()

    async def wait_closed(self) -> int | None:
        try:
            await self._ws.wait_disconnected()
        except Exception:  # a local failure already ended the connection; report it as abnormal
            pass
        if self.close_code is None:
            self.close_code = 1006
        return self.close_code

    def abort(self) -> None:
        self._ws.underlying_transport.abort()


def _diagnose(url: str, exc: BaseException) -> TransportError:
    """A failed connect as a ``TransportError`` whose text says what is wrong, never empty, and
    whether retrying can help (``permanent``): a 4xx answer to the handshake (but 408/429), a TLS
    failure, and the two ws/wss mismatches cannot mend by themselves."""
    from websockets.exceptions import InvalidMessage, InvalidStatus

    secure = url.startswith("wss:")
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        why = f"HTTP {status} {exc.response.reason_phrase}".rstrip()
        if 400 <= status < 500 and status not in (408, 429):
            return TransportError(
                f"{url}: {why}: the server refused the WebSocket handshake (is the URL right?)",
                permanent=True,
            )
        return TransportError(f"{url}: {why}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TransportError(
            f"{url}: TLS: certificate verify failed: {exc.verify_message or exc}: the server's "
            "certificate is not trusted "
            "(ca_file= or ssl_context= for a private CA)",
            permanent=True,
        )
    if isinstance(exc, ssl.SSLError):
        return TransportError(
            f"{url}: TLS handshake failed ({exc.reason or exc}): is it a plain ws:// server?",
            permanent=True,
        )
    if secure and isinstance(exc, ConnectionResetError | EOFError):
        return TransportError(
            f"{url}: connection reset in the TLS handshake: is it a plain ws:// server? "
            "(then use ws://)",
            permanent=True,
        )
    if not secure and isinstance(exc, InvalidMessage):
        return TransportError(
            f"{url}: {exc}: is it a TLS (wss://) server? (then use wss://)", permanent=True
        )
    return TransportError(f"{url}: {exc or type(exc).__name__}")


async def connect_transport(
    kind: str,
    url: str,
    on_frame: OnFrame,
    *,
    open_timeout: float = 10.0,
    headers: dict[str, str] | None = None,
    ws_ping: tuple[float, float] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    conn: Any = None,
) -> Transport:
    """Open a connection with the named transport; raises ``TransportError`` if it fails.
    ``headers`` go into the HTTP upgrade request (the SBE feed's login); ``ws_ping`` =
    ``(interval, timeout)`` turns on WebSocket-level pings (websockets only; the SBE feed refuses
    the text ping), a missing pong closing the connection. ``ssl_context`` (``wss://`` only): whom
    to trust instead of the system's CAs. ``conn``: the ``Connection`` whose frames these are,
    for picows' C receive path (see the module's docstring)."""
    tls = ssl_context if url.startswith("wss:") else None
    if kind == "websockets":
        from websockets.asyncio.client import connect

        # ssl only for wss:// and only when given (websockets refuses ssl=None with wss://).
        extra: dict[str, Any] = {"ssl": tls} if tls is not None else {}
        try:
            client = await connect(
                url,
                **extra,
                open_timeout=open_timeout,
                additional_headers=headers,
                ping_interval=ws_ping[0] if ws_ping else None,
                ping_timeout=ws_ping[1] if ws_ping else None,
                compression=None,
                max_size=2**24,
                close_timeout=2.0,
                create_connection=_frame_connection(),
            )
        except Exception as exc:  # refused, DNS, TLS, handshake, timeout
            raise _diagnose(url, exc) from exc
        return WebsocketsTransport(client, on_frame)
    if kind == "picows":
        try:
            from picows import ws_connect
        except ImportError as exc:
            raise ImportError(
                "transport='picows' needs the picows package: pip install 'okxbook[picows]'"
            ) from exc
        picows_transport = PicowsTransport(on_frame, conn)
        try:
            ws, _ = await ws_connect(
                picows_transport.make_listener,
                url,
                websocket_handshake_timeout=open_timeout,
                extra_headers=headers,
                max_frame_size=2**24,
                ssl_context=tls,
            )
        except Exception as exc:
            raise _diagnose(url, exc) from exc
        picows_transport._ws = ws
        return picows_transport
    raise ValueError(f"transport must be one of {TRANSPORTS}, not {kind!r}")
