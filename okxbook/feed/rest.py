"""REST order-book snapshots for the seeded start (docs/protocol.md §4, §8):
``GET /api/v5/market/books?instId=&sz=`` (or the channel's own route, ``/market/books-rpi`` for
``books-rpi``: levels ``[px, total, nonRpi, count]``) with httpx, paced by the per-IP limit, turned into a
snapshot frame so it enters the book through the same ``Books.apply`` as everything else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from okxbook import okx
from okxbook.errors import RestError

from .ratelimit import REST_PER_IP, SlidingWindow

__all__ = ["RestError", "RestSnapshot", "fetch_books"]


@dataclass(frozen=True)
class RestSnapshot:
    inst_id: str
    seq_id: int
    ts_ms: int
    asks: list[list[str]]
    bids: list[list[str]]

    def as_frame(self, channel: str, seq_id: int) -> bytes:
        """A WebSocket snapshot frame with these levels and the given ``seqId`` (the splice point:
        the ``prevSeqId`` of the first update kept), checksum absent. REST strings may differ from
        WS strings ("67856.0"): the book matches levels by value, so that is harmless."""
        return orjson.dumps(
            {
                "arg": {"channel": channel, "instId": self.inst_id},
                "action": "snapshot",
                "data": [
                    {
                        "asks": self.asks,
                        "bids": self.bids,
                        "ts": str(self.ts_ms),
                        "checksum": 0,
                        "prevSeqId": -1,
                        "seqId": seq_id,
                    }
                ],
            }
        )


async def fetch_books(
    client: httpx.AsyncClient,
    rest_url: str,
    inst_id: str,
    sz: int = 400,
    *,
    path: str = okx.REST_BOOKS_PATH,
) -> RestSnapshot:
    """One REST book snapshot from ``path`` (a channel's ``okx.CHANNELS[...].rest_path``: the
    books-rpi book must come from ``/market/books-rpi``, whose levels keep the non-RPI size, not
    from ``/market/books``, the non-RPI book; §8)."""
    window: SlidingWindow | None = REST_PER_IP.get(path)
    if window is None:
        raise ValueError(f"no REST book route {path!r}")
    await window.acquire()
    url = f"{rest_url.rstrip('/')}{path}"
    try:
        resp = await client.get(url, params={"instId": inst_id, "sz": str(sz)})
    except httpx.HTTPError as exc:
        raise RestError(f"GET {url} {inst_id}: {exc}") from exc
    if resp.status_code != 200:
        raise RestError(f"GET {url} {inst_id}: HTTP {resp.status_code} {resp.text[:200]}")
    where = f"GET {url} {inst_id}"
    try:
        body: Any = orjson.loads(resp.content)
    except orjson.JSONDecodeError as exc:
        raise RestError(f"{where}: body is not JSON ({exc})") from exc
    # Every shape check is explicit: a body of [] or null or a row that is not an object must be
    # a RestError the seed retries, never an AttributeError that ends the seed (issue 14 item 6).
    if not isinstance(body, dict):
        raise RestError(f"{where}: body is a {type(body).__name__}, not an object")
    if str(body.get("code")) != "0":
        raise RestError(f"{where}: code {body.get('code')} {str(body.get('msg'))[:200]}")
    data = body.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise RestError(f"{where}: no book in 'data' ({str(data)[:100]})")
    row = data[0]
    asks, bids = row.get("asks"), row.get("bids")
    if not isinstance(asks, list) or not isinstance(bids, list):
        raise RestError(f"{where}: asks/bids are not lists")
    try:
        seq_id, ts_ms = int(row["seqId"]), int(row["ts"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RestError(f"{where}: bad seqId/ts ({exc!r})") from exc
    if seq_id < 0:  # §4: seqIds are >= 0
        raise RestError(f"{where}: negative seqId {seq_id}")
    return RestSnapshot(inst_id, seq_id, ts_ms, asks, bids)
