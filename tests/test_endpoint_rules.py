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

from okxbook import endpoint, okx
from okxbook.capture.files import iter_frames
from okxbook.capture.serve import CaptureServer
from okxbook.testing import LocalExchange, SyntheticBook

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


def test_both_servers_refuse_an_sbe_subscribe_without_the_header_login_with_60011(tmp_path):
    """§11: on ``/ws/v5/public-sbe`` every channel needs the header login, ``bbo-tbt`` too (it
    needs none on JSON). One rule, ``endpoint.subscribe_refusal(sbe=True)``: ``okxbook serve``
    accepted this subscribe before it shared the rule with the local exchange."""
    book = SyntheticBook("BTC-USDT", "bbo-tbt", seed=3)
    frames = [book.snapshot_frame()] + [book.next_update_frame() for _ in range(5)]
    path = tmp_path / "bbo.jsonl"
    path.write_bytes(b"\n".join(frames) + b"\n")
    bbo = {"channel": "bbo-tbt", "instId": "BTC-USDT"}

    async def answer(srv: Any) -> Any:
        async with srv, connect(srv.ws_url.replace(okx.WS_PUBLIC_PATH, okx.SBE_WS_PATH)) as ws:
            await ws.send(json.dumps({"id": "s1", "op": "subscribe", "args": [bbo]}))
            got = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
            got.pop("connId", None)
            return got

    serve = asyncio.run(answer(CaptureServer([path], speed=None, wait_for_subscriber=True)))
    local = asyncio.run(answer(LocalExchange(auto=False, capture=frames, idle_timeout=None)))
    assert serve == local == {"id": "s1", "event": "error", "code": "60011", "msg": "Please log in"}
    # The rule itself: on JSON bbo-tbt needs no login; an unknown book is 60018 first.
    assert endpoint.subscribe_refusal("bbo-tbt", "BTC-USDT", known=True, logged_in=False) is None
    assert endpoint.subscribe_refusal("bbo-tbt", "X", known=True, logged_in=True, sbe=True) is None
    unknown = endpoint.subscribe_refusal("bbo-tbt", "X", known=False, logged_in=False, sbe=True)
    assert unknown is not None and unknown["code"] == "60018"
