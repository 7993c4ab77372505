"""tardis.dev ``incremental_book_L2`` CSV: read it as replay input, and (``write_tardis``) write it.

The format (docs.tardis.dev, "incremental_book_L2"): one CSV line per price level change,
``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount``; ``timestamp`` is the
exchange time and ``local_timestamp`` the receive time, both in µs since the epoch; ``side`` is
``bid``/``ask``; ``amount`` 0 removes the level; a run of ``is_snapshot=true`` lines is a whole
book (the previous one is dropped). Plain or gzip (``.csv.gz``, as tardis serves it).

Reading: :func:`iter_csv_frames` turns each run of lines with the same symbol, local timestamp and
snapshot flag into one OKX push (``{"arg":{"channel":"books","instId":...},"action":...,"data":
[{"asks":..., "bids":..., "ts":...}]}``) with the received price and amount text, so the books are
built by the one core path (``Books.apply``) like any capture. ``files.iter_frames`` hands a file
to it when its first line is the CSV header: ``okxbook replay FILE.csv.gz`` just works. tardis keeps
neither OKX's ``checksum`` nor its ``seqId``: such a replay rebuilds the books but cannot verify
them (every frame counts as ``checksum_absent``, and no sequence gap can be seen).

Writing (``tardis_writer.TardisWriter``, from ``deltastream`` chunks) is whole-column in Arrow: one line per
level change, exact decimal text, the exchange id tardis uses for the instrument. The reader is
hand-written because it is a small line format and pyarrow's CSV reader would not keep the number
text as received (nor group lines into frames).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import BinaryIO, Final

from okxbook.errors import CaptureFormatError

__all__ = [
    "HEADER",
    "NOTE_UNVERIFIED",
    "iter_csv_frames",
    "tardis_exchange",
]

#: The header line of an ``incremental_book_L2`` file.
HEADER: Final = b"exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
#: What replay says of a tardis CSV input.
NOTE_UNVERIFIED: Final = (
    "tardis incremental_book_L2 CSV has no OKX checksum or seqId: the books are rebuilt "
    "but not verified"
)
#: The channel the synthesised frames are filed under (a full-depth incremental book).
CHANNEL: Final = "books"


def tardis_exchange(inst_id: str) -> str:
    """tardis.dev's exchange id for an OKX instrument: ``okex`` (spot, margin), ``okex-swap``,
    ``okex-futures`` (a dated contract) or ``okex-options``."""
    parts = inst_id.split("-")
    if parts[-1] == "SWAP":
        return "okex-swap"
    if len(parts) == 5 and parts[-1] in ("C", "P"):
        return "okex-options"
    if len(parts) == 3 and parts[-1].isdigit():
        return "okex-futures"
    return "okex"


def _number(text: bytes, path: str, line_no: int) -> bytes:
    """The number as received, or written out plainly if tardis printed it with an exponent."""
    if text.replace(b".", b"", 1).isdigit():
        return text
    try:
        value = Decimal(text.decode("ascii"))
    except (InvalidOperation, UnicodeDecodeError):
        raise CaptureFormatError(path, line_no, f"bad number {text[:40]!r}") from None
    if not value.is_finite() or value < 0:
        raise CaptureFormatError(path, line_no, f"bad number {text[:40]!r}")
    return format(value, "f").encode()


def _frame(inst: bytes, snapshot: bool, ts_us: int, bids: list[bytes], asks: list[bytes]) -> bytes:
    return b"".join(
        (
            b'{"arg":{"channel":"',
            CHANNEL.encode(),
            b'","instId":"',
            inst,
            b'"},"action":"',
            b"snapshot" if snapshot else b"update",
            b'","data":[{"asks":[',
            b",".join(asks),
            b'],"bids":[',
            b",".join(bids),
            b'],"ts":"',
            str(ts_us // 1000).encode(),
            b'"}]}',
        )
    )


def iter_csv_frames(
    path: str, lines: BinaryIO, line_no: int, problem: Callable[[str], None]
) -> Iterator[tuple[int | None, bytes, int]]:
    """``(recv_ns, frame, line_no)`` for the lines after the header (read at ``line_no``) of an
    ``incremental_book_L2`` file; ``problem`` is told of a half-written last line. A line that is
    not of the format raises ``CaptureFormatError`` with its number."""
    key: tuple[bytes, bytes, bool] | None = None
    bids: list[bytes] = []
    asks: list[bytes] = []
    ts_us = 0
    first_line = line_no
    for line in lines:
        line_no += 1
        if line[-1:] != b"\n":
            problem(f"{path}:{line_no}: skipping half-written last line: {line[:60]!r}")
            break
        body = line.rstrip(b"\r\n")
        if not body:
            continue
        fields = body.split(b",")
        if len(fields) != 8:
            raise CaptureFormatError(
                path, line_no, f"expected 8 incremental_book_L2 fields: {body[:60]!r}"
            )
        _exchange, symbol, ts, local, snap, side, price, amount = fields
        if not (ts.isdigit() and local.isdigit()) or snap not in (b"true", b"false"):
            raise CaptureFormatError(path, line_no, f"bad incremental_book_L2 line: {body[:60]!r}")
        this = (symbol, local, snap == b"true")
        if this != key:
            if key is not None:
                yield int(key[1]) * 1000, _frame(key[0], key[2], ts_us, bids, asks), first_line
            key, bids, asks, first_line = this, [], [], line_no
        ts_us = int(ts)
        level = b'["%s","%s","0","0"]' % (
            _number(price, path, line_no),
            _number(amount, path, line_no),
        )
        if side == b"bid":
            bids.append(level)
        elif side == b"ask":
            asks.append(level)
        else:
            raise CaptureFormatError(path, line_no, f"side {side[:10]!r}: expected bid or ask")
    if key is not None:
        yield int(key[1]) * 1000, _frame(key[0], key[2], ts_us, bids, asks), first_line
