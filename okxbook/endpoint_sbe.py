"""The exchange side of OKX's binary feed (shared by ``testing.LocalExchange`` and ``capture.serve``,
like ``okxbook.endpoint``): SBE messages built from plain values; a converter that turns a JSON
capture (or a synthetic stream) into the SBE frames OKX would have sent for it; and ``SbeSide``,
what ``/ws/v5/public-sbe`` and the SBE feed's REST routes answer.

Pure Python (``struct``), written from the schema (docs/protocol.md §11) and independent of the
Cython decoder it checks (this layer may not import the core). What the converter emits, per JSON
book frame:

- ``books-l2-tbt`` (or any snapshot-then-deltas channel, renamed) snapshot -> a REST
  ``SnapshotDepthResponseEvent`` (1006): the SBE feed has no WebSocket snapshot, a client seeds
  from ``GET /api/v5/market/books-sbe``;
- an update -> ``BooksL2TbtChannelEvent`` (1001), preceded by a
  ``BooksL2TbtExponentUpdateEvent`` (1002) when its values need more decimals than the
  instrument's exponents gave so far (the exponent never shrinks: a price of ``0.5`` under
  exponent -2 is mantissa 50). The 1002 repeats the last seqId (``prevSeqId == seqId``), so it
  neither extends nor breaks the chain;
- ``bbo-tbt`` -> ``BboTbtChannelEvent`` (1000); an empty side is size 0.

A capture without seqIds (OKX before 2022-09) gets a synthetic chain, +1 per update.
Heartbeats, resets and gaps of the JSON stream carry over as they are; ``heartbeat_every``
adds heartbeats (1001, no levels, ``prevSeqId == seqId``) and ``truncate``/``garble`` make
faulty frames.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from okxbook import endpoint, okx

__all__ = [
    "RestBook",
    "SbeConverter",
    "SbeLevel",
    "SbeSide",
    "bbo_message",
    "exponent_message",
    "l2_message",
    "mantissa",
    "snapshot_message",
    "trade_message",
    "truncate",
]

SbeLevel = tuple[int, int, int]
"""One level as SBE sends it: ``(pxMantissa, szMantissa, ordCount)``."""

T: Final = okx.SbeTemplate
_HEADER: Final = struct.Struct("<HHHH")
_GROUP: Final = struct.Struct("<HH")
_LEVEL: Final = struct.Struct("<qqi")
# Root blocks of schema 1 version 0, field by field in schema order.
_BBO: Final = struct.Struct("<qqqqqqqqiibb")
_L2: Final = struct.Struct("<qqqqqbb")
_SNAP: Final = struct.Struct("<qqqbb")
_TRADE: Final = struct.Struct("<qqqqqqqhbbbb")


def _message(
    template: int,
    root: bytes,
    groups: Sequence[Sequence[SbeLevel]] = (),
    *,
    root_extra: int = 0,
    entry_extra: int = 0,
    pad: int = 0,
    version: int = okx.SBE_SCHEMA_VERSION,
) -> bytes:
    """Header + root + groups. ``root_extra``/``entry_extra`` append unknown bytes to the root
    and to each group entry (a later schema version), ``pad`` trailing bytes (as OKX does)."""
    out = [_HEADER.pack(len(root) + root_extra, template, okx.SBE_SCHEMA_ID, version), root]
    out.append(b"\xee" * root_extra)
    for levels in groups:
        out.append(_GROUP.pack(okx.SBE_LEVEL_BLOCK + entry_extra, len(levels)))
        for level in levels:
            out.append(_LEVEL.pack(*level))
            out.append(b"\xee" * entry_extra)
    out.append(b"\0" * pad)
    return b"".join(out)


def l2_message(
    code: int,
    seq_id: int,
    prev_seq_id: int,
    px_exp: int,
    sz_exp: int,
    asks: Sequence[SbeLevel] = (),
    bids: Sequence[SbeLevel] = (),
    *,
    ts_us: int = 0,
    out_us: int = 0,
    **layout: int,
) -> bytes:
    """A ``BooksL2TbtChannelEvent`` (1001): an update (or, without levels and with ``prev_seq_id
    == seq_id``, a heartbeat)."""
    root = _L2.pack(code, ts_us, out_us, seq_id, prev_seq_id, px_exp, sz_exp)
    return _message(T.BOOKS_L2_TBT, root, (asks, bids), **layout)


def exponent_message(
    code: int,
    seq_id: int,
    prev_seq_id: int,
    px_exp: int,
    sz_exp: int,
    *,
    ts_us: int = 0,
    out_us: int = 0,
    **layout: int,
) -> bytes:
    """A ``BooksL2TbtExponentUpdateEvent`` (1002): the exponents from here on."""
    root = _L2.pack(code, ts_us, out_us, seq_id, prev_seq_id, px_exp, sz_exp)
    return _message(T.BOOKS_L2_TBT_EXPONENT, root, (), **layout)


def snapshot_message(
    code: int,
    seq_id: int,
    px_exp: int,
    sz_exp: int,
    asks: Sequence[SbeLevel] = (),
    bids: Sequence[SbeLevel] = (),
    *,
    ts_us: int = 0,
    **layout: int,
) -> bytes:
    """A ``SnapshotDepthResponseEvent`` (1006), the body of ``GET books-sbe``."""
    root = _SNAP.pack(code, ts_us, seq_id, px_exp, sz_exp)
    return _message(T.SNAPSHOT_DEPTH, root, (asks, bids), **layout)


def bbo_message(
    code: int,
    seq_id: int,
    px_exp: int,
    sz_exp: int,
    ask: SbeLevel | None,
    bid: SbeLevel | None,
    *,
    ts_us: int = 0,
    out_us: int = 0,
    **layout: int,
) -> bytes:
    """A ``BboTbtChannelEvent`` (1000); a missing side is sent as zeros."""
    a = ask or (0, 0, 0)
    b = bid or (0, 0, 0)
    root = _BBO.pack(
        code, ts_us, out_us, seq_id, a[0], a[1], b[0], b[1], a[2], b[2], px_exp, sz_exp
    )
    return _message(T.BBO_TBT, root, (), **layout)


def trade_message(
    code: int, seq_id: int, px: int, sz: int, trade_id: int, side: int, px_exp: int, sz_exp: int
) -> bytes:
    """A ``TradesChannelEvent`` (1005), for the decoder's refusal (okxbook keeps no trades)."""
    root = _TRADE.pack(code, 0, 0, seq_id, px, sz, trade_id, 1, side, px_exp, sz_exp, 0)
    return _message(T.TRADES, root)


def truncate(frame: bytes, keep: int) -> bytes:
    """The first ``keep`` bytes of a frame (a fault a decoder must reject whole)."""
    return frame[:keep]


def _decimals(text: str) -> int:
    frac = text.partition(".")[2]
    return len(frac.rstrip("0"))


def mantissa(text: str, exp: int) -> int:
    """The mantissa of a decimal string at exponent ``exp`` (``exp`` <= -decimals): exact."""
    neg = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    frac = frac.rstrip("0")
    scale = -exp
    if scale < len(frac):
        raise ValueError(f"{text!r} needs more than {scale} decimals")
    value = int((whole or "0") + frac.ljust(scale, "0")) if scale > 0 else int(whole or "0")
    return -value if neg else value


@dataclass
class _Inst:
    code: int
    px_exp: int = 0
    sz_exp: int = 0
    seq: int = -1
    finer: bool = False


@dataclass
class SbeConverter:
    """JSON book frames -> SBE frames, instrument by instrument (see the module docstring).

    ``codes`` maps instId -> instIdCode (filled from ``first_code`` upwards for new instIds);
    ``out_delay_us`` is outTime - tsUs; ``heartbeat_every`` inserts a heartbeat after every n-th
    update of an instrument. ``convert`` returns the SBE frames for one JSON frame (none for a
    non-book frame: acks, pongs, other channels).
    """

    codes: dict[str, int] = field(default_factory=dict)
    first_code: int = 10_001
    out_delay_us: int = 180
    heartbeat_every: int = 0
    _insts: dict[str, _Inst] = field(default_factory=dict, repr=False)
    _updates: int = 0

    def code_of(self, inst_id: str) -> int:
        code = self.codes.get(inst_id)
        if code is None:
            code = max(self.codes.values(), default=self.first_code - 1) + 1
            self.codes[inst_id] = code
        return code

    def convert(self, frame: bytes | str) -> list[bytes]:
        try:
            msg = orjson.loads(frame)
            channel = msg["arg"]["channel"]
            inst_id = msg["arg"]["instId"]
            items = msg["data"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return []
        if channel not in okx.CHANNELS or channel == "books5":  # no SBE form of books5
            return []
        out: list[bytes] = []
        for item in items:
            out.extend(self._item(channel, inst_id, msg.get("action"), item))
        return out

    def convert_all(self, frames: Iterable[bytes | str]) -> list[list[bytes]]:
        """``convert`` of every frame, one list per JSON frame (aligned with the input)."""
        return [self.convert(f) for f in frames]

    def snapshot(self, inst_id: str, channel: str, item: dict[str, Any]) -> bytes:
        """A REST snapshot (the ``data`` item of ``GET /market/books``) as the 1006 message, at the
        instrument's current exponents (finer if its levels need it); the stream's state (seqId)
        is not touched."""
        st = self._state(inst_id, channel)
        rows = [list(map(str, lv)) for lv in item.get("asks", []) + item.get("bids", [])]
        st.px_exp = min(st.px_exp, -max((_decimals(r[0]) for r in rows), default=0))
        st.sz_exp = min(st.sz_exp, -max((_decimals(r[1]) for r in rows), default=0))

        def lv(level: list[Any]) -> SbeLevel:
            level = list(map(str, level))
            orders = int(level[3]) if len(level) > 3 else 0
            return (mantissa(level[0], st.px_exp), mantissa(level[1], st.sz_exp), orders)

        return snapshot_message(
            st.code,
            int(item["seqId"]) if "seqId" in item else max(st.seq, 0),
            st.px_exp,
            st.sz_exp,
            [lv(a) for a in item.get("asks", [])],
            [lv(b) for b in item.get("bids", [])],
            ts_us=int(item.get("ts", 0)) * 1000,
        )

    def finer_price(self, inst_id: str, channel: str) -> None:
        """The next update of this book announces (1002) and uses one more price decimal."""
        self._state(inst_id, channel).finer = True

    # ------------------------------------------------------------------ internals
    def _state(self, inst_id: str, channel: str) -> _Inst:
        st = self._insts.get(inst_id + "\0" + channel)
        if st is None:
            st = self._insts[inst_id + "\0" + channel] = _Inst(self.code_of(inst_id))
        return st

    def _item(self, channel: str, inst_id: str, action: Any, item: dict[str, Any]) -> list[bytes]:
        st = self._state(inst_id, channel)
        asks = [list(map(str, lv)) for lv in item.get("asks", [])]
        bids = [list(map(str, lv)) for lv in item.get("bids", [])]
        ts_us = int(item.get("ts", 0)) * 1000
        out_us = ts_us + self.out_delay_us
        need_px = max((_decimals(lv[0]) for lv in asks + bids), default=0)
        need_sz = max((_decimals(lv[1]) for lv in asks + bids), default=0)
        image = okx.CHANNELS[channel].image
        snapshot = action == "snapshot" or str(item.get("prevSeqId")) == "-1"
        out: list[bytes] = []
        if snapshot and not image:
            # A fresh book: its exponents are what this snapshot needs (or what it had, if more).
            st.px_exp = min(st.px_exp, -need_px)
            st.sz_exp = min(st.sz_exp, -need_sz)
        elif need_px > -st.px_exp or need_sz > -st.sz_exp or (st.finer and not image):
            if st.finer and not image:
                st.finer = False
                st.px_exp -= 1
            st.px_exp = min(st.px_exp, -need_px)
            st.sz_exp = min(st.sz_exp, -need_sz)
            if not image and st.seq >= 0:
                out.append(
                    exponent_message(
                        st.code, st.seq, st.seq, st.px_exp, st.sz_exp, ts_us=ts_us, out_us=out_us
                    )
                )

        def lv(level: list[str]) -> SbeLevel:
            orders = int(level[3]) if len(level) > 3 else 0
            return (mantissa(level[0], st.px_exp), mantissa(level[1], st.sz_exp), orders)

        if "seqId" in item:
            seq = int(item["seqId"])
        elif snapshot or image or st.seq >= 0:
            seq = st.seq + 1
        else:
            # An update of a book this converter has not seen (a client joined a seqId-less
            # capture mid-stream): the synthetic chain starts at 0, the REST snapshot's seqId.
            seq = 1
        if image:
            ask = lv(asks[0]) if asks else None
            bid = lv(bids[0]) if bids else None
            out.append(
                bbo_message(
                    st.code, seq, st.px_exp, st.sz_exp, ask, bid, ts_us=ts_us, out_us=out_us
                )
            )
        elif snapshot:
            out.append(
                snapshot_message(
                    st.code,
                    seq,
                    st.px_exp,
                    st.sz_exp,
                    [lv(a) for a in asks],
                    [lv(b) for b in bids],
                    ts_us=ts_us,
                )
            )
        else:
            prev = int(item["prevSeqId"]) if "prevSeqId" in item else max(st.seq, 0)
            out.append(
                l2_message(
                    st.code,
                    seq,
                    prev,
                    st.px_exp,
                    st.sz_exp,
                    [lv(a) for a in asks],
                    [lv(b) for b in bids],
                    ts_us=ts_us,
                    out_us=out_us,
                )
            )
            self._updates += 1
            if self.heartbeat_every and self._updates % self.heartbeat_every == 0:
                out.append(
                    l2_message(st.code, seq, seq, st.px_exp, st.sz_exp, ts_us=ts_us, out_us=out_us)
                )
        st.seq = seq
        return out


# --------------------------------------------------------------------------- serving SBE


class RestBook(Protocol):
    """What ``SbeSide`` needs of a server's book for ``GET books-sbe``."""

    @property
    def channel(self) -> str: ...

    def rest_snapshot(self, sz: int = 1) -> dict[str, Any]: ...


_CACHE: Final = 256  # JSON frames whose conversion is kept (a push goes to every connection)


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
                if int.from_bytes(f[2:4], "little") != T.SNAPSHOT_DEPTH
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
        book_of: Callable[[str], RestBook | None],
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
        # A capture without seqIds: the snapshot carries the converter's synthetic seqId.
        self.rest_requests.append((code, int(snap["seqId"]) if "seqId" in snap else None))
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
