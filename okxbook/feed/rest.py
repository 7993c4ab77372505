"""REST order-book snapshots for the seeded start (docs/protocol.md §4, §8):
``GET /api/v5/market/books?instId=&sz=`` with httpx, paced by the per-IP limit, turned into a
snapshot frame so it enters the book through the same ``Books.apply`` as everything else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from .ratelimit import REST_BOOKS_PER_IP

__all__ = ["RestError", "RestSnapshot", "fetch_books"]


class RestError(Exception):
    """The REST snapshot could not be had (HTTP error, OKX error code, unusable body)."""


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
    client: httpx.AsyncClient, rest_url: str, inst_id: str, sz: int = 400
) -> RestSnapshot:
    await REST_BOOKS_PER_IP.acquire()
    url = f"{rest_url.rstrip('/')}/api/v5/market/books"
    try:
        resp = await client.get(url, params={"instId": inst_id, "sz": str(sz)})
    except httpx.HTTPError as exc:
        raise RestError(f"GET {url} {inst_id}: {exc}") from exc
    if resp.status_code != 200:
        raise RestError(f"GET {url} {inst_id}: HTTP {resp.status_code} {resp.text[:200]}")
    try:
        body: Any = orjson.loads(resp.content)
        if str(body.get("code")) != "0":
            raise RestError(f"GET {url} {inst_id}: code {body.get('code')} {body.get('msg')}")
        row = body["data"][0]
        return RestSnapshot(inst_id, int(row["seqId"]), int(row["ts"]), row["asks"], row["bids"])
    except RestError:
        raise
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise RestError(f"GET {url} {inst_id}: unusable body ({exc})") from exc
