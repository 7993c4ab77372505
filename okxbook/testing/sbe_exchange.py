"""The binary (SBE) side of ``LocalExchange``: what ``/ws/v5/public-sbe`` and the two REST routes
the SBE feed needs (``/api/v5/market/books-sbe``, ``/api/v5/public/instruments``) answer.

The exchange keeps generating its JSON frames; this converts each book frame once (whatever the
number of SBE connections) with ``okxbook.testing.sbe.SbeConverter``, so a JSON and an SBE client
of the same exchange see the same books. As on OKX (docs/protocol.md §11): no WebSocket snapshot
(a snapshot frame is not sent: clients seed from REST), login by the HTTP upgrade headers, the
text ``ping`` refused with 60012. Faults on top of the JSON ones: ``truncate_next`` cuts the next
binary frame of a book, ``exponent_update`` makes the next update go one price decimal finer
(announced by a 1002 message).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from okxbook import endpoint, okx
from okxbook.testing.sbe import SbeConverter, truncate
from okxbook.testing.synthetic import SyntheticBook

__all__ = ["SbeSide"]

_CACHE: Final = 256  # JSON frames whose conversion is kept (a push goes to every connection)
_T: Final = okx.SbeTemplate


class SbeSide:
    """One exchange's SBE conversion state and routes. ``codes``: instId -> instIdCode (new
    instIds get codes from 10001 up)."""

    def __init__(self, codes: Mapping[str, int] | None = None) -> None:
        self.converter = SbeConverter(dict(codes or {}))
        self._cache: OrderedDict[int, tuple[bytes, list[bytes]]] = OrderedDict()
        self._truncate: dict[tuple[str, str], int] = {}
        self.rest_requests: list[tuple[int | None, int | None]] = []  # (instIdCode, seqId)

    @property
    def codes(self) -> dict[str, int]:
        return self.converter.codes

    # ------------------------------------------------------------------ WebSocket
    def frames_for(self, channel: str | None, inst_id: str | None, data: bytes) -> list[bytes]:
        """The binary frames one pushed JSON book frame becomes on an SBE connection."""
        hit = self._cache.get(id(data))
        if hit is None or hit[0] is not data:
            frames = [
                f
                for f in self.converter.convert(data)
                if int.from_bytes(f[2:4], "little") != _T.SNAPSHOT_DEPTH
            ]
            key = (channel or "", inst_id or "")
            cut = self._truncate.pop(key, None)
            if cut is not None and frames:
                frames[-1] = truncate(frames[-1], cut)
            hit = (data, frames)
            self._cache[id(data)] = hit
            while len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        return hit[1]

    def truncate_next(self, channel: str, inst_id: str, keep: int = 30) -> None:
        """The book's next binary frame is cut to ``keep`` bytes (a fault the client must reject
        whole, then resync)."""
        self._truncate[(channel, inst_id)] = keep

    def exponent_update(self, channel: str, inst_id: str) -> None:
        """The book's next update uses one more price decimal, after a 1002 announcing it."""
        self.converter.finer_price(inst_id, channel)

    @staticmethod
    def header_login(
        headers: Headers, credentials: dict[str, str] | None, max_skew: float | None
    ) -> bool:
        """Whether the HTTP upgrade headers log the connection in (§11: the §7 signature)."""
        if not credentials:
            return False
        key_h, sign_h, ts_h, phrase_h = okx.SBE_LOGIN_HEADERS
        ts = headers.get(ts_h, "")
        expected = base64.b64encode(
            hmac.new(
                credentials["secret"].encode(),
                (ts + "GET" + okx.LOGIN_PATH).encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        try:
            fresh = max_skew is None or abs(time.time() - float(ts)) <= max_skew
        except ValueError:
            fresh = False
        return (
            fresh
            and headers.get(key_h) == credentials.get("key")
            and headers.get(phrase_h) == credentials.get("passphrase")
            and hmac.compare_digest(headers.get(sign_h, ""), expected)
        )

    @staticmethod
    def ping_refused() -> dict[str, Any]:
        return {"event": "error", "code": okx.Code.INVALID_REQUEST, "msg": "Invalid request: ping"}

    # ------------------------------------------------------------------ REST
    def process_request(
        self,
        connection: ServerConnection,
        path: str,
        query: dict[str, list[str]],
        book_of: Callable[[str], SyntheticBook | None],
    ) -> Response | None:
        """Answer the SBE feed's REST routes; None for any other path."""
        if path == okx.INSTRUMENTS_PATH:
            return self._instruments(connection, query)
        if path != okx.REST_BOOKS_SBE_PATH:
            return None
        try:
            code: int | None = int((query.get("instIdCode") or [""])[0])
        except ValueError:
            code = None
        inst_id = next((i for i, c in self.codes.items() if c == code), None)
        book = book_of(inst_id) if inst_id is not None else None
        if book is None:
            self.rest_requests.append((code, None))
            return endpoint.json_response(
                connection, 400, {"code": "51001", "msg": "Instrument ID does not exist"}
            )
        assert inst_id is not None
        snap = book.rest_snapshot(okx.MAX_REST_DEPTH)
        frame = self.converter.snapshot(inst_id, book.channel, snap)
        self.rest_requests.append((code, int(snap["seqId"])))
        response = connection.respond(200, "")
        del response.headers["Content-Type"]
        del response.headers["Content-Length"]
        response.headers["Content-Type"] = okx.SBE_CONTENT_TYPE
        response.headers["Content-Length"] = str(len(frame))
        return Response(response.status_code, response.reason_phrase, response.headers, frame)

    def _instruments(self, connection: ServerConnection, query: dict[str, list[str]]) -> Response:
        inst_id = (query.get("instId") or [""])[0]
        inst_type = (query.get("instType") or [""])[0]
        if not inst_type:
            return endpoint.json_response(
                connection, 400, {"code": "50014", "msg": "Parameter instType can not be empty"}
            )
        rows = []
        if inst_id and okx.inst_type(inst_id) == inst_type:
            rows.append(
                {
                    "instId": inst_id,
                    "instType": inst_type,
                    "instIdCode": self.converter.code_of(inst_id),
                }
            )
        body = {"code": "0", "msg": "", "data": rows}
        response = connection.respond(200, orjson.dumps(body).decode())
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response
