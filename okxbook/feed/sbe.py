"""What the feeder does differently on OKX's binary feed (``/ws/v5/public-sbe``, docs/protocol.md
§11): the login travels in the HTTP upgrade headers, instruments are named by ``instIdCode``
(from ``GET /api/v5/public/instruments``, refreshed), a book is seeded from the binary REST
snapshot ``GET /api/v5/market/books-sbe`` (the feed has no WebSocket snapshot) with the same
buffer-and-splice rule as the JSON REST seed (``sync.plan_splice``), and the text ``ping`` is
refused (the server pings, at the WebSocket level).

Decoding is the core's (``Books.apply`` takes the binary frames); this module only handles the
cold path: headers, the two REST calls, and reading (prevSeqId, seqId) of a buffered update.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

import httpx
import orjson

from okxbook import _sbe, okx
from okxbook.errors import FrameError, RestError

from .auth import Credentials, sign
from .ratelimit import SlidingWindow
from .sync import Buffered

__all__ = [
    "CODES_REFRESH_S",
    "buffered_sbe_update",
    "check_sbe_options",
    "fetch_books_sbe",
    "fetch_inst_id_codes",
    "is_sbe_url",
    "login_headers",
    "refresh_inst_id_codes",
    "seed_frame",
]

log = logging.getLogger("okxbook.feed")

#: How often the instIdCode map is fetched again (a relisted instrument gets a new code).
CODES_REFRESH_S = 600.0


def check_sbe_options(encoding: str, keys: Iterable[tuple[str, str]], demo: bool) -> bool:
    """Whether a Feed is on the SBE feed; ``ValueError`` for what that feed cannot carry."""
    if encoding not in ("json", "sbe"):
        raise ValueError(f"encoding must be 'json' or 'sbe', not {encoding!r}")
    if encoding == "json":
        return False
    if demo:
        raise ValueError("OKX documents no demo-trading SBE feed: use encoding='json' with demo")
    bad = sorted({k[0] for k in keys} - okx.SBE_CHANNELS)
    if bad:
        raise ValueError(
            f"the SBE feed carries {sorted(okx.SBE_CHANNELS)} only, not {', '.join(bad)}"
        )
    return True


async def refresh_inst_id_codes(settings: Any, books: Iterable[Any], forever: bool = False) -> None:
    """Fetch instId -> instIdCode for every subscribed instId into ``settings.inst_codes`` and
    each ``Books``; with ``forever``, again every :data:`CODES_REFRESH_S` (a failed refresh is
    logged and retried at the next period; a relisted instrument's old code is forgotten)."""
    groups = list(books)
    inst_ids = sorted({key[1] for b in groups for key in ((bk.channel, bk.inst_id) for bk in b)})
    while True:
        if forever:
            await asyncio.sleep(CODES_REFRESH_S)
        try:
            codes = await fetch_inst_id_codes(settings.http, settings.rest_url, inst_ids)
        except RestError as exc:
            if not forever:
                raise
            log.warning("instIdCode refresh failed: %s", exc)
            continue
        for inst, code in codes.items():
            old = settings.inst_codes.get(inst)
            for b in groups:
                if old is not None and old != code:
                    b.forget_inst_id_code(old)
                b.set_inst_id_code(code, inst)
            settings.inst_codes[inst] = code
        if not forever:
            return


# One window per route, per IP (OKX counts books-sbe per IP *and* instIdCode: this is stricter).
_BOOKS_SBE_PER_IP = SlidingWindow(*okx.REST_LIMITS[okx.REST_BOOKS_SBE_PATH])
_INSTRUMENTS_PER_IP = SlidingWindow(*okx.REST_LIMITS[okx.INSTRUMENTS_PATH])


def is_sbe_url(url: str) -> bool:
    """Whether ``url`` is the binary feed's path (``.../ws/v5/public-sbe``)."""
    return url.split("?", 1)[0].rstrip("/").endswith(okx.SBE_WS_PATH)


def login_headers(credentials: Credentials, now: float | None = None) -> dict[str, str]:
    """The HTTP upgrade headers that log an SBE connection in (signed as ``op: login`` is)."""
    ts = str(int(time.time() if now is None else now))
    key, signature, stamp, phrase = okx.SBE_LOGIN_HEADERS
    return {
        key: credentials.api_key,
        signature: sign(credentials.secret_key, ts),
        stamp: ts,
        phrase: credentials.passphrase,
    }


def buffered_sbe_update(raw: bytes) -> Buffered | None:
    """(prevSeqId, seqId) of a binary update (1001 or 1002) for the REST splice, else None."""
    try:
        template, _code, seq, prev, _ts, _out = _sbe.peek(raw)
    except FrameError:
        return None
    if template not in (okx.SbeTemplate.BOOKS_L2_TBT, okx.SbeTemplate.BOOKS_L2_TBT_EXPONENT):
        return None
    return Buffered(prev, seq, raw)


async def fetch_inst_id_codes(
    client: httpx.AsyncClient, rest_url: str, inst_ids: Iterable[str]
) -> dict[str, int]:
    """instId -> instIdCode for ``inst_ids``, one ``GET /api/v5/public/instruments`` per instType
    and instId (OKX wants the instType). Raises ``RestError`` if one is missing from the answer."""
    out: dict[str, int] = {}
    url = f"{rest_url.rstrip('/')}{okx.INSTRUMENTS_PATH}"
    for inst_id in dict.fromkeys(inst_ids):
        await _INSTRUMENTS_PER_IP.acquire()
        params = {"instType": okx.inst_type(inst_id), "instId": inst_id}
        where = f"GET {url} {inst_id}"
        try:
            resp = await client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise RestError(f"{where}: {exc}") from exc
        body = _json_body(resp, where)
        for row in body.get("data") or ():
            if isinstance(row, dict) and row.get("instId") == inst_id:
                try:
                    out[inst_id] = int(row["instIdCode"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise RestError(f"{where}: no usable instIdCode ({exc!r})") from exc
                break
        else:
            raise RestError(f"{where}: instrument not in the answer")
    return out


async def fetch_books_sbe(client: httpx.AsyncClient, rest_url: str, code: int) -> bytes:
    """The binary REST snapshot of one instrument: one ``SnapshotDepthResponseEvent`` message,
    checked whole by the decoder. OKX answers errors in JSON: a ``RestError`` with its code."""
    await _BOOKS_SBE_PER_IP.acquire()
    url = f"{rest_url.rstrip('/')}{okx.REST_BOOKS_SBE_PATH}"
    where = f"GET {url} instIdCode={code}"
    params = {"instIdCode": str(code), "source": str(okx.SBE_SOURCE_NORMAL)}
    try:
        resp = await client.get(url, params=params)
    except httpx.HTTPError as exc:
        raise RestError(f"{where}: {exc}") from exc
    kind = resp.headers.get("content-type", "").split(";", 1)[0].strip()
    if resp.status_code != 200 or kind != okx.SBE_CONTENT_TYPE:
        body = _json_body(resp, where)  # raises with OKX's code
        raise RestError(f"{where}: {kind or 'no content type'} answer: {str(body)[:200]}")
    frame = resp.content
    try:
        template, got, *_ = _sbe.peek(frame)
    except FrameError as exc:
        raise RestError(f"{where}: unusable SBE body ({exc.reason})") from exc
    if template != okx.SbeTemplate.SNAPSHOT_DEPTH or got != code:
        raise RestError(f"{where}: templateId {template} instIdCode {got} is not its snapshot")
    return frame


def seed_frame(snapshot: bytes, seq_id: int | None = None) -> tuple[int, bytes]:
    """The binary REST snapshot's seqId, and the snapshot as it enters the book: with ``seqId``
    set to ``seq_id`` (the splice point, ``sync.plan_splice``) when given."""
    seq = _sbe.peek(snapshot)[2]
    return seq, snapshot if seq_id is None else _sbe.with_seq_id(snapshot, seq_id)


def _json_body(resp: httpx.Response, where: str) -> dict[str, Any]:
    try:
        body: Any = orjson.loads(resp.content)
    except orjson.JSONDecodeError as exc:
        raise RestError(f"{where}: HTTP {resp.status_code}, body is not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise RestError(f"{where}: body is a {type(body).__name__}, not an object")
    if resp.status_code != 200 or str(body.get("code")) != "0":
        raise RestError(
            f"{where}: HTTP {resp.status_code} code {body.get('code')} {str(body.get('msg'))[:200]}"
        )
    return body
