"""``okxbook serve`` and ``okxbook.testing.LocalExchange`` answer a client's requests alike, as OKX
does (issue 9): both take their refusals from ``okxbook.endpoint``. Here both serve the same
real ``books-l2-tbt`` capture and get the same requests; their answers must be the same, and
OKX's (docs/protocol.md §6: 60011 "Please log in" for a login channel before login)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from conftest import CF_L2TBT_0228
from websockets.asyncio.client import connect

from okxbook.capture.files import iter_frames
from okxbook.capture.serve import CaptureServer
from okxbook.testing import LocalExchange

TBT = {"channel": "books-l2-tbt", "instId": "ZEN-USDT"}


def _server(kind: str) -> Any:
    if kind == "serve":
        return CaptureServer([CF_L2TBT_0228], speed=None, wait_for_subscriber=True)
    frames = [f.frame for f in iter_frames(CF_L2TBT_0228) if f.frame.startswith(b'{"arg"')]
    return LocalExchange(auto=False, capture=frames, idle_timeout=None)


async def _answers(kind: str, requests: list[Any]) -> list[Any]:
    out = []
    async with _server(kind) as srv, connect(srv.ws_url) as ws:
        for req in requests:
            await ws.send(req if isinstance(req, str | bytes) else json.dumps(req))
            raw = await asyncio.wait_for(ws.recv(), 2.0)
            answer = raw if raw == "pong" else json.loads(raw)
            if isinstance(answer, dict):
                answer.pop("connId", None)  # each server numbers its connections its own way
            out.append(answer)
    return out


REQUESTS = [
    "ping",
    {"id": "n1", "op": "subscribe", "args": [TBT]},
    {"op": "subscribe", "args": [TBT]},
    {"id": "n3", "op": "subscribe", "args": [{"channel": "books-l2-tbt", "instId": "NOPE-USDT"}]},
    {"id": "n4", "op": "subscribe", "args": [{"channel": "bookz", "instId": "ZEN-USDT"}]},
    {"id": "n5", "op": "subscribe", "args": ["books"]},
    {"id": "n6", "op": "nope", "args": [TBT]},
    {"id": "n7", "op": "unsubscribe", "args": [TBT]},
    b"ping",
]


def test_both_servers_answer_the_same_requests_with_the_same_okx_events():
    serve = asyncio.run(_answers("serve", REQUESTS))
    local = asyncio.run(_answers("local", REQUESTS))
    assert serve == local
    assert serve[0] == "pong"
    assert serve[1] == {"id": "n1", "event": "error", "code": "60011", "msg": "Please log in"}
    assert serve[2] == {"event": "error", "code": "60011", "msg": "Please log in"}
    assert [a["code"] for a in serve[3:7]] == ["60018", "60018", "60013", "60019"]
    assert serve[7] == {"id": "n7", "event": "unsubscribe", "arg": TBT}
    assert serve[8] == "pong"  # a ping sent as a binary frame is answered too
    assert "NOPE-USDT" in serve[3]["msg"] and "bookz" in serve[4]["msg"]
