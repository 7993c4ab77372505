"""What the loopback feeder benches share (``feed_bench.py``, ``receive_bench.py``): a minimal
OKX-like picows server in another process (acks each subscribe and sends that book's snapshot,
answers the text ``ping``), the ``Feed`` pointed at it, and the run of one client against one
server process.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import struct
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from okxbook.feed import Feed


def ws_frame(payload: bytes) -> bytes:
    """A server-to-client (unmasked) text frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + struct.pack("!H", n) + payload
    return bytes((0x81, 127)) + struct.pack("!Q", n) + payload


async def serve_books(snapshots: dict[str, bytes]) -> tuple[Any, dict[str, Any]]:
    """Start the server on a free port: ``(server, state)``, ``state["transport"]`` the picows
    transport of the last client connected, ``state["subscribed"]`` the instIds it subscribed."""
    from picows import WSListener, WSMsgType, ws_create_server

    state: dict[str, Any] = {"transport": None, "subscribed": set()}

    class Listener(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: Any) -> None:
            state["transport"] = transport

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()
                return
            if frame.msg_type != WSMsgType.TEXT:
                return
            text = frame.get_payload_as_bytes()
            if text == b"ping":
                transport.send(WSMsgType.TEXT, b"pong")
                return
            req = orjson.loads(text)
            for arg in req.get("args", []):
                ack = {"id": req.get("id"), "event": req["op"], "arg": arg, "connId": "bench"}
                transport.send(WSMsgType.TEXT, orjson.dumps(ack))
                if req["op"] == "subscribe":
                    transport.send(WSMsgType.TEXT, snapshots[arg["instId"]])
                    state["subscribed"].add(arg["instId"])

    server = await ws_create_server(lambda _: Listener(), "127.0.0.1", 0)
    return server, state


def bench_feed(port: int, insts: list[str], transport: str) -> Feed:
    """The feed under test: every instrument on one connection to the loopback server."""
    return Feed(
        insts,
        url=f"ws://127.0.0.1:{port}",
        rest_url="http://127.0.0.1:1",
        transport=transport,
        max_per_connection=1000,
    )


def against_server(
    server_main: Callable[..., None],
    server_args: tuple[Any, ...],
    client: Callable[[int, Any, Any], Coroutine[Any, Any, dict[str, Any]]],
    port_timeout: float = 300.0,
) -> dict[str, Any]:
    """Run ``server_main(port_q, go_q, done_q, *server_args)`` in a spawned process, then
    ``client(port, go_q, done_q)`` here; the client's result."""
    ctx = mp.get_context("spawn")
    port_q, go_q, done_q = ctx.Queue(), ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=server_main, args=(port_q, go_q, done_q, *server_args))
    proc.start()
    try:
        port = port_q.get(timeout=port_timeout)
        return asyncio.run(client(port, go_q, done_q))
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
