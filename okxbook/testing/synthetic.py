"""Deterministic synthetic OKX v5 order-book streams.

This module owns the *exchange side* of one instrument's book: a seeded random walk over a true
book deeper than the published window, and the OKX wire frames that publish that window (snapshot,
update, keep-alive, seqId reset, image pushes, the REST snapshot form). It knows nothing about
sockets (that is `okxbook.testing.exchange`) nor about the client-side book (the okxbook core).

Frames are compact JSON bytes with keys in OKX's order, as OKX pushes them. Protocol references
below (§n) are to `docs/protocol.md`.

Everything is a pure function of the constructor arguments: the same seed gives the same frames, so
a test can replay what the server sent and know what the client's book must be.
"""

from __future__ import annotations

import random
import zlib
from bisect import insort
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal

import orjson

from okxbook import okx

__all__ = [
    "CHANNEL_DEPTH",
    "DELTA_CHANNELS",
    "IMAGE_CHANNELS",
    "ChecksumMode",
    "Level",
    "SyntheticBook",
    "okx_checksum",
    "synthetic_stream",
]

ChecksumMode = Literal["crc", "zero", "absent"]
Level = tuple[str, str, str]
"""One published level as printed: ``(px, sz, count)``. For ``books-rpi`` ``sz`` is the total."""

# Published depth per channel and the two kinds of channel, from okxbook's table of OKX facts (§1).
CHANNEL_DEPTH: Final[dict[str, int]] = {name: c.depth for name, c in okx.CHANNELS.items()}
# Snapshot-then-deltas channels carry `action` and `prevSeqId`; image channels push the whole
# window each time with neither (§1, §2).
DELTA_CHANNELS: Final[frozenset[str]] = okx.BOOKS_CHANNELS
IMAGE_CHANNELS: Final[frozenset[str]] = frozenset(okx.CHANNELS) - okx.BOOKS_CHANNELS

_BID: Final = 0
_ASK: Final = 1
_CHECKSUM_LEVELS: Final = 25  # §3: top 25 of each side


def okx_checksum(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> int:
    """OKX's legacy book checksum (§3): signed CRC32 of the top 25 levels, bid then ask interleaved.

    ``bids``/``asks`` are best-first rows whose first two items are the price and size strings
    exactly as printed on the wire; a shorter side is skipped, not padded.
    """
    parts: list[str] = []
    for i in range(_CHECKSUM_LEVELS):
        if i < len(bids):
            parts.append(bids[i][0])
            parts.append(bids[i][1])
        if i < len(asks):
            parts.append(asks[i][0])
            parts.append(asks[i][1])
    value = zlib.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def _decimals(step: str) -> tuple[int, int]:
    """``"0.01"`` -> (units=1, decimals=2): a tick or lot as an integer at a decimal scale."""
    if "e" in step.lower() or step.startswith("-"):
        raise ValueError(f"step must be a plain positive decimal string, got {step!r}")
    whole, _, frac = step.partition(".")
    frac = frac.rstrip("0")
    units = int((whole + frac) or "0")
    if units <= 0:
        raise ValueError(f"step must be positive, got {step!r}")
    return units, len(frac)


def _fmt(value: int, decimals: int) -> str:
    """Print an integer at a decimal scale the way OKX does: no exponent, no trailing zeros."""
    if decimals == 0:
        return str(value)
    digits = str(value).rjust(decimals + 1, "0")
    whole, frac = digits[:-decimals], digits[-decimals:].rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def _fmt_padded(value: int, decimals: int) -> str:
    """Print with at least one decimal (``"67856.0"``), as OKX REST examples do (§0b)."""
    text = _fmt(value, decimals)
    return text if "." in text else text + ".0"


class _Published:
    """One published state of the window: what a client's book holds after a frame.

    ``bids``/``asks`` map a side key to the wire row and are ordered best first; they are built
    fresh on every publish and never mutated, so keeping references in the history is free.
    """

    __slots__ = ("asks", "bids", "seq_id", "ts")

    def __init__(
        self, seq_id: int, ts: str, bids: dict[int, list[str]], asks: dict[int, list[str]]
    ) -> None:
        self.seq_id = seq_id
        self.ts = ts
        self.bids = bids
        self.asks = asks


class SyntheticBook:
    """One instrument's exchange-side book for one channel, publishing a ``depth``-level window.

    The true book holds ``depth + max(20, depth // 4)`` levels a side (more never hurts) so that
    when a side's top gains levels its tail leaves the window, which is published as an explicit
    delete (size ``"0"``), as in the bench streams (§5 leaves the live behaviour UNCERTAIN).
    The book is never crossed.

    Frame methods return compact JSON ``bytes``; each publishing call advances the state:

    - ``snapshot_frame()``: the current window (no state change). ``prevSeqId`` is -1.
    - ``next_update_frame()``: a random batch of changes (modify / insert / delete), published as
      an update chained on the last seqId. Image channels (``books5``, ``bbo-tbt``) publish the
      whole window instead (no ``action``, no ``prevSeqId``), only once it changed.
    - ``heartbeat_frame()``: the keep-alive, empty sides and ``prevSeqId == seqId`` (§4); image
      channels re-send the image.
    - ``reset_frame()``: an update whose seqId restarts lower after maintenance (§4).

    ``ts_clock`` (e.g. ``lambda: time.time_ns() // 1_000_000``) stamps each frame's ``ts`` with
    the time it is made, instead of a seeded walk from ``ts_start_ms``.

    ``checksum`` is ``"crc"`` (legacy real CRC32, §3), ``"zero"`` (field always 0, live since
    2026-06-23, §0) or ``"absent"`` (no key). ``books-rpi`` and image channels never carry one.
    """

    def __init__(
        self,
        inst_id: str = "BTC-USDT",
        channel: str = "books",
        *,
        seed: int | str = 0,
        depth: int | None = None,
        checksum: ChecksumMode = "crc",
        tick_sz: str | None = None,
        lot_sz: str = "0.00000001",
        mid_px: str | None = None,
        seq_start: int | None = None,
        ts_start_ms: int = 1_700_018_034_000,
        changes: tuple[int, int] = (1, 24),
        history: int = 256,
        ts_clock: Callable[[], int] | None = None,
    ) -> None:
        if channel not in CHANNEL_DEPTH:
            raise ValueError(f"unknown book channel {channel!r}")
        if checksum not in ("crc", "zero", "absent"):
            raise ValueError(f"checksum must be 'crc', 'zero' or 'absent', got {checksum!r}")
        self.inst_id: Final = inst_id
        self.channel: Final = channel
        self.depth: Final = depth if depth is not None else CHANNEL_DEPTH[channel]
        if self.depth < 1:
            raise ValueError("depth must be >= 1")
        self.is_image: Final = channel in IMAGE_CHANNELS
        self.is_rpi: Final = channel == "books-rpi"
        # books-rpi is documented without a checksum (§1); image channels never had one.
        self.checksum_mode: ChecksumMode = "absent" if self.is_rpi or self.is_image else checksum
        self._changes = changes
        # A str seed goes through SHA-512 in random.seed(): stable across processes, unlike hash().
        self._rng = random.Random(f"{seed}/{channel}/{inst_id}")
        rng = self._rng

        if mid_px is None:
            base = inst_id.split("-", 1)[0]
            # Plausible levels for the two names tests reach for first; anything else is random.
            mid_px = {"BTC": "43250", "ETH": "2281.38"}.get(base) or str(rng.randrange(20, 60_000))
        mid_f = float(mid_px)
        if tick_sz is None:
            # About six significant digits, like OKX's spot ticks (43250 -> 0.1, 2281 -> 0.01).
            exp = len(str(int(mid_f))) - 6 if mid_f >= 1 else -6
            tick_sz = "1" + "0" * exp if exp >= 0 else "0." + "0" * (-exp - 1) + "1"
        self.tick_sz: Final = tick_sz
        self.lot_sz: Final = lot_sz
        self._tick_units, self._px_dec = _decimals(tick_sz)
        self._lot_units, self._sz_dec = _decimals(lot_sz)
        tick_value = self._tick_units / 10**self._px_dec
        lot_value = self._lot_units / 10**self._sz_dec
        self._mid_ticks = max(self.depth * 8 + 100, int(mid_f / tick_value))
        # Typical resting size worth ~5,000 quote units, in lots.
        self._typical_lots = max(1.0, 5_000.0 / max(mid_f, 1e-9) / lot_value)

        self._target = self.depth + max(20, self.depth // 4)
        # Per side: sorted keys (bids stored as -ticks so ascending order is best first) and
        # key -> [sz_lots, count, non_rpi_lots].
        self._keys: list[list[int]] = [[], []]
        self._lv: list[dict[int, list[int]]] = [{}, {}]
        # key -> wire row, rebuilt only when that level is set, so publishing is a dict copy.
        self._rows: list[dict[int, list[str]]] = [{}, {}]
        self._seed_book()

        self._seq = seq_start if seq_start is not None else rng.randrange(10**10, 3 * 10**10)
        self._ts = ts_start_ms
        # ts_clock: stamp each frame with the time it is made (ms), as a live exchange does, so
        # that exchange-ts latency (okxbook.feed.latency) means something against this book.
        self._ts_clock = ts_clock
        if ts_clock is not None:
            self._ts = ts_clock()
        self._history: deque[_Published] = deque(maxlen=max(1, history))
        self._pub = self._publish_state()
        self._history.append(self._pub)
        self.frames_generated = 0

    # ------------------------------------------------------------------ state
    @property
    def seq_id(self) -> int:
        """seqId of the last published state (what the next update's prevSeqId will be)."""
        return self._pub.seq_id

    @property
    def ts(self) -> str:
        return self._pub.ts

    def levels(self) -> tuple[list[Level], list[Level]]:
        """The published book, ``(bids, asks)`` best first, as ``(px, sz, count)`` strings."""
        return (
            [(r[0], r[1], r[3]) for r in self._pub.bids.values()],
            [(r[0], r[1], r[3]) for r in self._pub.asks.values()],
        )

    def rows(self) -> tuple[list[list[str]], list[list[str]]]:
        """The published book as wire rows ``[px, sz, "0" | nonRpi, count]``, best first."""
        return (
            [list(r) for r in self._pub.bids.values()],
            [list(r) for r in self._pub.asks.values()],
        )

    def checksum(self) -> int:
        """The legacy CRC32 (§3) of the published book, whatever the checksum mode."""
        return okx_checksum(list(self._pub.bids.values()), list(self._pub.asks.values()))

    def rest_snapshot(self, sz: int = 1, *, lag: int = 0, pad: bool = False) -> dict[str, Any]:
        """The REST ``GET /api/v5/market/books`` data item for the top ``sz`` levels (§8).

        ``lag`` serves the state ``lag`` publishes ago (clamped to the kept history), to mimic
        REST's cache lagging the stream. ``pad`` prints prices with a trailing ``.0`` when they
        are whole, as OKX REST examples do (§0b: match by value, never by raw string).
        """
        lag = max(0, min(lag, len(self._history) - 1))
        state = self._history[-1 - lag]

        def side(rows: dict[int, list[str]]) -> list[list[str]]:
            out: list[list[str]] = []
            for key, r in rows.items():
                if len(out) >= sz:
                    break
                px = _fmt_padded(abs(key) * self._tick_units, self._px_dec) if pad else r[0]
                out.append([px, r[1], r[2], r[3]])  # r[2]: nonRpiQty on books-rpi, else "0"
            return out

        return {
            "asks": side(state.asks),
            "bids": side(state.bids),
            "ts": state.ts,
            "seqId": state.seq_id,
        }

    # ------------------------------------------------------------------ frames
    def snapshot_frame(self) -> bytes:
        """The current window as a snapshot (delta channels) or image push; no state change."""
        bids = list(self._pub.bids.values())
        asks = list(self._pub.asks.values())
        if self.is_image:
            return self._image_frame()
        return self._delta_frame("snapshot", asks, bids, -1, self._pub.seq_id)

    def next_update_frame(self, *, corrupt_checksum: bool = False) -> bytes:
        """Mutate the book and publish the change (see the class docstring)."""
        prev = self._pub
        asks, bids = self._mutate_and_diff(prev)
        self._advance(self._next_seq(prev.seq_id))
        if self.is_image:
            return self._image_frame()
        return self._delta_frame(
            "update", asks, bids, prev.seq_id, self._pub.seq_id, corrupt=corrupt_checksum
        )

    def heartbeat_frame(self) -> bytes:
        """The keep-alive after ~60 s without change (§4): same seqId, nothing to apply."""
        if self.is_image:
            self.frames_generated += 1
            return self._image_frame()
        seq = self._pub.seq_id
        self._ts += self._rng.randint(1, 250)
        if self._ts_clock is not None:
            self._ts = self._ts_clock()
        self.frames_generated += 1
        return self._delta_frame("update", [], [], seq, seq, ts=str(self._ts))

    def reset_frame(self, seq_id: int | None = None) -> bytes:
        """An update after maintenance: seqId restarts below prevSeqId, prevSeqId is still the
        last seqId sent (§4, the doc's 15 -> 3 example). It carries a normal batch of changes."""
        prev = self._pub
        if self.is_image:
            raise ValueError("image channels have no prevSeqId, so no seqId reset to show")
        if seq_id is None:
            seq_id = self._rng.randrange(1, max(2, min(prev.seq_id, 1000)))
        if not 0 <= seq_id < prev.seq_id:
            raise ValueError(f"reset seqId {seq_id} must be in [0, {prev.seq_id})")
        asks, bids = self._mutate_and_diff(prev)
        self._advance(seq_id)
        return self._delta_frame("update", asks, bids, prev.seq_id, seq_id)

    # ------------------------------------------------------------------ internals
    def _next_seq(self, seq: int) -> int:
        # Steps are not +1: 7-93 observed live (§4); the bench streams use 1..60.
        return seq + self._rng.randint(1, 60)

    def _advance(self, seq_id: int) -> None:
        self._seq = seq_id
        self._ts += self._rng.randint(1, 250)
        if self._ts_clock is not None:
            self._ts = self._ts_clock()
        self._pub = self._publish_state()
        self._history.append(self._pub)
        self.frames_generated += 1

    def _make_row(self, side: int, key: int) -> None:
        sz, count, non_rpi = self._lv[side][key]
        px = _fmt(abs(key) * self._tick_units, self._px_dec)
        third = _fmt(non_rpi * self._lot_units, self._sz_dec) if self.is_rpi else "0"
        self._rows[side][key] = [px, _fmt(sz * self._lot_units, self._sz_dec), third, str(count)]

    def _publish_state(self) -> _Published:
        d = self.depth
        rb, ra = self._rows
        bids = {k: rb[k] for k in self._keys[_BID][:d]}
        asks = {k: ra[k] for k in self._keys[_ASK][:d]}
        return _Published(self._seq, str(self._ts), bids, asks)

    def _diff(self, old: dict[int, list[str]], side: int) -> list[list[str]]:
        """Rows that turn the old window into the new one, best first; leavers become deletes."""
        new_keys = self._keys[side][: self.depth]
        new_set = set(new_keys)
        rows = self._rows[side]
        changed: list[tuple[int, list[str]]] = []
        for key in new_keys:
            row = rows[key]
            if old.get(key) != row:
                changed.append((key, row))
        for key, row in old.items():
            if key not in new_set:
                changed.append((key, [row[0], "0", "0", "0"]))
        changed.sort(key=lambda kv: kv[0])
        return [row for _, row in changed]

    def _mutate_and_diff(self, prev: _Published) -> tuple[list[list[str]], list[list[str]]]:
        # Image channels push only when the window changed; delta channels never send an empty
        # update except the keep-alive. Loop until the published window moved.
        lo, hi = self._changes
        for _ in range(1000):
            for _ in range(self._rng.randint(lo, hi)):
                self._mutate_one()
            self._refill()
            asks = self._diff(prev.asks, _ASK)
            bids = self._diff(prev.bids, _BID)
            if asks or bids:
                return asks, bids
        raise RuntimeError("synthetic book failed to change its window")  # pragma: no cover

    def _rand_size(self) -> tuple[int, int]:
        rng = self._rng
        r = rng.random()
        if r < 0.02:  # dust, as in the bench streams
            return rng.randint(1, 999), rng.randint(1, 3)
        lots = int(self._typical_lots * rng.lognormvariate(-1.0, 1.2)) + 1
        if r < 0.07:  # round sizes ("1", "0.5") to keep short strings in the mix
            scale = 10 ** max(0, len(str(lots)) - 2)
            lots = max(scale, lots // scale * scale)
        return lots, rng.choice((1, 1, 1, 2, 2, 3, 4, 5, 6, 8, 10, 13, 20))

    def _set_level(self, side: int, key: int) -> None:
        lots, count = self._rand_size()
        roll = self._rng.random()
        non_rpi = lots if roll < 0.7 else (0 if roll < 0.85 else self._rng.randint(0, lots))
        if key not in self._lv[side]:
            insort(self._keys[side], key)
        self._lv[side][key] = [lots, count, non_rpi]
        self._make_row(side, key)

    def _seed_book(self) -> None:
        rng = self._rng
        best_bid = self._mid_ticks
        best_ask = best_bid + rng.choice((1, 1, 1, 2))
        for side, start in ((_BID, -best_bid), (_ASK, best_ask)):
            key = start
            for _ in range(self._target):
                self._set_level(side, key)
                key += self._gap()

    def _gap(self) -> int:
        # Mean ~2.75 ticks between levels, as in the bench snapshot.
        return self._rng.choice((1, 1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7))

    def _pick_index(self, n: int) -> int:
        # Change depth mix of the bench streams: 10% top, 21% at 1-4, 46% at 5-24, 23% deeper.
        rng = self._rng
        r = rng.random()
        if r < 0.10:
            i = 0
        elif r < 0.31:
            i = rng.randint(1, 4)
        elif r < 0.77:
            i = rng.randint(5, 24)
        else:
            i = rng.randint(25, max(25, self.depth + 5))
        if i >= n or (self.depth < 25 and rng.random() < 0.5):
            # Small windows (books5, bbo-tbt) would barely move with the 400-level mix.
            i = rng.randint(0, min(n - 1, self.depth))
        return i

    def _mutate_one(self) -> None:
        rng = self._rng
        side = _BID if rng.random() < 0.5 else _ASK
        keys = self._keys[side]
        i = self._pick_index(len(keys))
        r = rng.random()
        if r < 0.44:
            key = keys[i]
            old = self._lv[side][key]
            self._set_level(side, key)
            if self._lv[side][key][:2] == old[:2]:
                self._lv[side][key][0] = old[0] + 1
                self._make_row(side, key)
        elif r < 0.72:
            self._insert_near(side, i)
        elif len(keys) > 2:
            key = keys.pop(i)
            del self._lv[side][key]
            del self._rows[side][key]

    def _insert_near(self, side: int, i: int) -> None:
        keys = self._keys[side]
        if i == 0:
            # Improve the top only inside the spread, so the book never crosses.
            best_bid = -self._keys[_BID][0]
            best_ask = self._keys[_ASK][0]
            if best_ask - best_bid < 2:
                i = 1
            else:
                px = self._rng.randint(best_bid + 1, best_ask - 1)
                self._set_level(side, -px if side == _BID else px)
                return
        # Otherwise, a free price between level i-1 and level i (or past the last level).
        for j in range(i, len(keys) + 1):
            lo = keys[j - 1]
            hi = keys[j] if j < len(keys) else lo + 8
            if side == _BID:
                hi = min(hi, 0)  # a bid key is -ticks: stay above price 0
            if hi - lo >= 2:
                self._set_level(side, self._rng.randint(lo + 1, hi - 1))
                return

    def _refill(self) -> None:
        for side in (_BID, _ASK):
            keys = self._keys[side]
            while len(keys) < self._target:
                key = keys[-1] + self._gap()
                if side == _BID and key >= 0:  # never below price 0 (a tick of 1 is the floor)
                    break
                self._set_level(side, key)
            # Trim only past the target, which is deeper than the window: invisible to clients.
            while len(keys) > self._target + 50:
                key = keys.pop()
                del self._lv[side][key]
                del self._rows[side][key]

    # ------------------------------------------------------------------ encoding
    def _delta_frame(
        self,
        action: str,
        asks: list[list[str]],
        bids: list[list[str]],
        prev_seq: int,
        seq: int,
        *,
        corrupt: bool = False,
        ts: str | None = None,
    ) -> bytes:
        data: dict[str, Any] = {"asks": asks, "bids": bids, "ts": ts or self._pub.ts}
        if self.is_rpi:
            # The books-rpi capture (nautilus_trader ws_books_rpi_*.json) orders seqId first.
            data["seqId"] = seq
            data["prevSeqId"] = prev_seq
        else:
            mode = self.checksum_mode
            if corrupt:
                true = self.checksum()
                wrong = true ^ 0x5A5A5A5A
                data["checksum"] = wrong if wrong != 0 else 1
            elif mode == "crc":
                data["checksum"] = self.checksum()
            elif mode == "zero":
                data["checksum"] = 0
            data["prevSeqId"] = prev_seq
            data["seqId"] = seq
        frame = {
            "arg": {"channel": self.channel, "instId": self.inst_id},
            "action": action,
            "data": [data],
        }
        return orjson.dumps(frame)

    def _image_frame(self) -> bytes:
        data: dict[str, Any] = {
            "asks": list(self._pub.asks.values()),
            "bids": list(self._pub.bids.values()),
        }
        if self.channel == "books5":  # §2: books5 repeats instId inside data, bbo-tbt does not
            data["instId"] = self.inst_id
        data["ts"] = self._pub.ts
        data["seqId"] = self._pub.seq_id
        return orjson.dumps(
            {"arg": {"channel": self.channel, "instId": self.inst_id}, "data": [data]}
        )


def synthetic_stream(
    instruments: Sequence[str] | int = ("BTC-USDT",),
    updates: int = 5_000,
    seed: int | str = 0,
    *,
    channel: str = "books",
) -> list[bytes]:
    """A deterministic multi-instrument ``books`` stream, one frame per item, as the benchmarks and
    the file-level tests use it: every instrument's snapshot first, then ``updates`` update frames
    spread over the instruments at random (seeded), each chained on its book's last seqId and
    carrying the legacy CRC32 checksum (§3, §4). Each side holds ``CHANNEL_DEPTH[channel]`` levels
    (400 for ``books``) after every frame, and no book is ever crossed.

    ``instruments`` is a list of instIds or a count (``n`` picks ``n`` liquid-looking names). The
    same arguments always give the same bytes.
    """
    if isinstance(instruments, int):
        if instruments < 1:
            raise ValueError("need at least one instrument")
        names = [*_STREAM_NAMES, *(f"SYN{i}-USDT" for i in range(len(_STREAM_NAMES), instruments))]
        instruments = names[:instruments]
    insts = list(instruments)
    if not insts or len(set(insts)) != len(insts):
        raise ValueError(f"instruments must be distinct and non-empty, got {insts!r}")
    if updates < 0:
        raise ValueError("updates must be >= 0")
    books = [SyntheticBook(inst, channel, seed=f"{seed}/stream") for inst in insts]
    frames = [book.snapshot_frame() for book in books]
    rng = random.Random(f"{seed}/stream/order/{len(insts)}")
    frames.extend(rng.choice(books).next_update_frame() for _ in range(updates))
    return frames


# Names of the shared benchmark streams' instruments, so a generated stream reads alike.
_STREAM_NAMES: Final = (
    "BTC-USDT",
    "ETH-USDT",
    "SOL-USDT",
    "XRP-USDT",
    "DOGE-USDT",
    "ADA-USDT",
    "LTC-USDT",
    "OKB-USDT",
    "BTC-USDT-SWAP",
    "ETH-USDT-SWAP",
)
