"""Raw OKX frame captures on disk: read them back as frames, and format the lines a recorder writes.

This module owns the *file* side of capture and replay and nothing else: it turns capture files into
``CapturedFrame(recv_ns, frame, line_no)`` tuples whose ``frame`` is the raw frame bytes exactly as
stored (no JSON decode, no re-serialisation), and it formats/parses the tardis.dev-style line a
recorder writes. It does not parse frames into book events, verify checksums or talk to a socket;
replay hands these bytes to the same parse -> apply path as live data, so checksums verify on replay
too (one parse path for live and stored data). Pure Python; of okxbook it imports only the errors and ``tardis`` (its CSV reader).

Line formats, recognised per line by one or two byte checks (no regex):

* cryptofeed recorder (``cryptofeed/raw_data_collection.py``, ``AsyncFileCallback``):
  ``<unix time float>: <frame>``; its ``<url> <-> <time>`` connect lines, ``<url> <- <time>: <sent>``
  lines (what the client sent), ``<url> -> <time>: <body>`` lines (REST responses, not WebSocket
  frames) and ``configuration: ...`` header lines are skipped.
* JSON lines: a line starting with ``{`` or ``[`` is one frame; the text frames ``ping``/``pong`` too.
* tardis.dev raw lines (``tardis-dev/tardis-python``: ``tardis_client.py``):
  ``2026-11-25T08:06:01.1234567Z <frame>``, UTC, 0..9 fractional digits (tardis writes 7).
* tardis.dev ``incremental_book_L2`` CSV (its header line first): each run of level lines becomes
  one synthesised OKX push (``tardis``; no checksum or seqId there, so nothing to verify).
* A whole file that is one pretty-printed JSON document (nautilus_trader's ``test_data`` fixtures) is
  one frame; recognised when the first non-blank line is not a complete frame (e.g. just ``{``).

* Binary (SBE) frames: the frame is stored as ``sbe:`` and its standard base64 (RFC 4648, with
  padding), e.g. ``2026-11-25T08:06:01.1234567Z sbe:6QMqAAEA...``; read back byte for byte.
  :func:`format_tardis_line` writes this form for any frame that is not JSON text or ping/pong.

Blank lines are disconnect markers in both recorders; they are skipped unless asked for.

Carried snapshots: each file ``okxbook record`` writes after its first opens with one snapshot frame
per live book, made by the recorder from the books as they stood at the end of the previous file,
so every file replays on its own. Such a frame is an ordinary tardis line whose frame starts with
``{"okxbook":"carry",`` (:data:`CARRY_PREFIX`; OKX never sends an ``okxbook`` key, and readers that
do not know the mark see a plain ``action: snapshot`` push). Replay applies a carried snapshot only
to a book it does not hold yet, and records no series row for it. Files may be
plain, gzip (also multi-member) or zstd (needs the optional ``zstandard`` package); compression is
recognised from the magic bytes, not the file name.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import io
import json
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Final, NamedTuple

from okxbook.errors import CaptureFormatError

from .tardis import HEADER as TARDIS_CSV_HEADER
from .tardis import iter_csv_frames

__all__ = [
    "CARRY_PREFIX",
    "SBE_PREFIX",
    "CaptureFormatError",
    "CaptureWarning",
    "CapturedFrame",
    "format_tardis_line",
    "is_tardis_csv",
    "iter_frames",
    "parse_tardis_timestamp",
]


class CapturedFrame(NamedTuple):
    """One frame read from a capture file."""

    recv_ns: int | None
    """Receive time, integer ns since the Unix epoch (UTC); None when the format records none."""
    frame: bytes
    """The frame exactly as stored in the file; ``b""`` marks a disconnect (``disconnects=True``)."""
    line_no: int
    """1-based line number in the (decompressed) file, for error messages and bisecting."""


#: How a carried snapshot frame (module docstring) starts; OKX frames never do.
CARRY_PREFIX: Final = b'{"okxbook":"carry",'


class CaptureWarning(UserWarning):
    """Data was dropped while reading a capture (half-written last line, truncated gzip stream)."""


class _BadLine(Exception):
    """Internal: the line cannot be read; carries the reason for CaptureFormatError."""


# ---------------------------------------------------------------------------------------------------
# Timestamps

_NS_PER_S = 1_000_000_000
# _FRAC_SCALE[n]: multiplier turning an n-digit decimal fraction of a second into ns.
_FRAC_SCALE: tuple[int, ...] = tuple(10 ** (9 - n) for n in range(10))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()


def _unix_seconds_to_ns(ts: bytes) -> int:
    """``b"1646003667.8790731"`` -> 1646003667879073100, exactly, from the decimal digits.

    cryptofeed writes ``f"{time.time()}"``, i.e. the shortest repr of a double; going back through
    float would turn .8790731 into .87907314...; the digits are the recorded value, so we keep them.
    """
    dot = ts.find(b".")
    if dot < 0:
        if not ts.isdigit():  # isdigit rejects the "+", "_" and blanks that int() would accept
            raise _BadLine(f"bad unix timestamp {ts[:40]!r}")
        return int(ts) * _NS_PER_S
    whole = ts[:dot]
    frac = ts[dot + 1 :]
    if not (whole.isdigit() and frac.isdigit() and len(frac) <= 9):
        raise _BadLine(f"bad unix timestamp {ts[:40]!r}")
    return int(whole) * _NS_PER_S + int(frac) * _FRAC_SCALE[len(frac)]


@functools.lru_cache(maxsize=1024)
def _second_epoch_s(prefix: bytes) -> int:
    """``b"2026-11-25T08:06:01"`` -> Unix seconds (UTC), validated.

    Cached because consecutive lines share their second: the per-line work is then a slice, a
    cache hit and one int() of the fraction instead of a datetime parse.
    """
    if not (
        len(prefix) == 19
        and prefix[0:4].isdigit()
        and prefix[5:7].isdigit()
        and prefix[8:10].isdigit()
        and prefix[11:13].isdigit()
        and prefix[14:16].isdigit()
        and prefix[17:19].isdigit()
        and prefix[4] == 0x2D  # "-"
        and prefix[7] == 0x2D
        and prefix[10] == 0x54  # "T"
        and prefix[13] == 0x3A  # ":"
        and prefix[16] == 0x3A
    ):
        raise ValueError(f"bad tardis timestamp {prefix!r}")
    # datetime() checks the ranges (month, day incl. leap years, hour, minute, second <= 59; tardis
    # never writes a leap second).
    d = datetime(
        int(prefix[0:4]),
        int(prefix[5:7]),
        int(prefix[8:10]),
        int(prefix[11:13]),
        int(prefix[14:16]),
        int(prefix[17:19]),
    )
    return (d.toordinal() - _EPOCH_ORDINAL) * 86_400 + d.hour * 3_600 + d.minute * 60 + d.second


def parse_tardis_timestamp(ts: bytes) -> int:
    """Parse a tardis.dev raw-line timestamp such as ``b"2026-11-25T08:06:01.1234567Z"`` to Unix ns.

    UTC, 0..9 fractional digits, exact (no float). Inverse of the timestamp in
    :func:`format_tardis_line`. Raises ValueError on anything else.
    """
    if type(ts) is not bytes:
        ts = bytes(ts)  # bytearray/memoryview slices are unhashable for the per-second cache
    if ts[-1:] != b"Z":
        raise ValueError(f"bad tardis timestamp (no final 'Z'): {ts[:40]!r}")
    ns = _second_epoch_s(ts[:19]) * _NS_PER_S
    if len(ts) == 20:
        return ns
    frac = ts[20:-1]
    if ts[19] != 0x2E or len(frac) > 9 or not frac.isdigit():  # "."
        raise ValueError(f"bad tardis timestamp {ts[:40]!r}")
    return ns + int(frac) * _FRAC_SCALE[len(frac)]


@functools.lru_cache(maxsize=64)
def _minute_prefix(minute: int) -> bytes:
    """Unix minute -> ``b"2026-11-25T08:06:"``, cached: a recorder writes many lines per minute."""
    try:
        d = _EPOCH + timedelta(minutes=minute)
    except OverflowError:
        raise ValueError(f"timestamp outside years 1..9999 (minute {minute})") from None
    return b"%04d-%02d-%02dT%02d:%02d:" % (d.year, d.month, d.day, d.hour, d.minute)


def format_tardis_line(recv_ns: int, frame: bytes) -> bytes:
    """One capture line: ``b"2026-11-25T08:06:01.1234567Z <frame>\\n"``.

    Receive time first, then the raw frame untouched (style point 12). The time is UTC with 7
    fractional digits as tardis.dev writes it, so ``recv_ns`` is truncated (floored) to 100 ns.
    The frame must not contain a newline (it would split the line) and must not be empty (an empty
    frame would read back as a half-written line).
    """
    if not frame:
        raise ValueError("empty frame")
    if frame[:1] not in _OPENERS and frame not in _TEXT_FRAMES:
        frame = SBE_PREFIX + base64.b64encode(frame)  # binary: base64 keeps it one line
    elif b"\n" in frame or b"\r" in frame:
        raise ValueError("frame contains a line break; it cannot be stored as one capture line")
    sec, sub_ns = divmod(recv_ns, _NS_PER_S)
    minute, s = divmod(sec, 60)
    return b"%s%02d.%07dZ %s\n" % (_minute_prefix(minute), s, sub_ns // 100, frame)


# ---------------------------------------------------------------------------------------------------
# Reading

_LBRACE, _LBRACKET, _RBRACE, _RBRACKET = 0x7B, 0x5B, 0x7D, 0x5D
_OPENERS = (b"{", b"[")  # one-byte bytes objects are interned, so these tests are identity checks
_CLOSERS = (b"}", b"]")
_TEXT_FRAMES = (b"ping", b"pong")  # OKX's text keep-alive frames (docs: "ping"/"pong")
#: A binary (SBE) frame is stored as this prefix and its base64.
SBE_PREFIX: Final = b"sbe:"
# Longest "<unix time>: " prefix we look for: 10 integer + 1 + 9 fraction digits, with room to spare.
# Bounding the search keeps a line without the separator from being scanned end to end.
_CF_TS_MAX = 32
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_READ_BUFFER = 1 << 16
_ZSTD_READ = 1 << 18  # compressed bytes per zstd decode step (~1 MiB of lines)
# tuple.__new__ skips the NamedTuple's Python-level __new__: half the cost per frame (~70 ns saved).
_new_frame = tuple.__new__


def _check_frame(frame: bytes) -> bytes:
    """Slow path of the completeness check (the fast path is inlined in _parse_line).

    A JSON frame starts with ``{``/``[`` and ends with ``}``/``]``; else it must be one of OKX's text
    frames. Trailing blanks are tolerated (and dropped). Anything else is not a frame we can replay
    (e.g. the ``b'...'`` Python bytes reprs cryptofeed wrote for OKEx v3's deflated frames).
    """
    if frame in _TEXT_FRAMES:
        return frame
    if frame[:4] == SBE_PREFIX:
        try:
            return base64.b64decode(frame[4:].rstrip(), validate=True)
        except binascii.Error as e:
            raise _BadLine(f"binary frame is not valid base64 ({e}): {frame[:60]!r}") from None
    if frame[:1] not in _OPENERS:
        raise _BadLine(f"frame is neither JSON nor ping/pong: {frame[:60]!r}")
    stripped = frame.rstrip()
    if stripped[-1:] in _CLOSERS:
        return stripped
    raise _BadLine(f"not a complete frame (does not end with '}}' or ']'): {frame[:60]!r}")


def _parse_line(body: bytes) -> tuple[int | None, bytes] | None:
    """Classify one non-blank line (without its line break) by its first byte.

    Returns ``(recv_ns, frame)``, or None for a line that holds no received frame (cryptofeed
    connect/sent/REST/header lines). Raises _BadLine for anything else.
    """
    c = body[0]
    recv_ns: int | None
    if c == _LBRACE or c == _LBRACKET:
        recv_ns = None
        frame = body
    elif 0x30 <= c <= 0x39:  # a digit: a timestamp comes first
        if (
            len(body) > 21 and body[4] == 0x2D
        ):  # "2026-": tardis ISO time; cryptofeed has a digit there
            z = body.find(b"Z ", 19, 31)
            if z < 0:
                raise _BadLine(f"timestamped line without 'Z ' after an ISO time: {body[:60]!r}")
            try:
                frac = body[20:27]
                if z == 27 and body[19] == 0x2E and frac.isdigit():
                    # The 7 digits tardis writes: parse_tardis_timestamp inlined (~150 ns a line).
                    recv_ns = _second_epoch_s(body[:19]) * _NS_PER_S + int(frac) * 100
                else:
                    recv_ns = parse_tardis_timestamp(body[: z + 1])
            except ValueError as e:
                raise _BadLine(str(e)) from None
            frame = body[z + 2 :]
        else:
            sep = body.find(b": ", 0, _CF_TS_MAX)
            if sep < 0:
                raise _BadLine(
                    f"line starts with a digit but has no '<unix time>: ' prefix: {body[:60]!r}"
                )
            recv_ns = _unix_seconds_to_ns(body[:sep])
            frame = body[sep + 2 :]
    elif body in _TEXT_FRAMES:
        return None, body
    else:
        _check_bookkeeping_line(body)
        return None
    # Cheap completeness check; the JSON parse is left to the consumer (it parses every frame anyway).
    if frame[-1:] in _CLOSERS and frame[:1] in _OPENERS:
        return recv_ns, frame
    return recv_ns, _check_frame(frame)


def _check_bookkeeping_line(body: bytes) -> None:
    """Pass cryptofeed's lines that carry no received WebSocket frame; raise for anything else.

    ``<url> <-> <time>`` (connect), ``<url> <- <time>: <sent>`` (what the client sent),
    ``<url> -> <time>: <REST body>`` and the ``configuration: ...`` header
    (cryptofeed/raw_data_collection.py, AsyncFileCallback.__call__ and set_header).
    """
    sp = body.find(b" ")
    if sp > 0 and b"://" in body[:sp]:
        arrow = body[sp + 1 : sp + 5]
        if arrow == b"<-> " or arrow[:3] == b"<- " or arrow[:3] == b"-> ":
            return
    if body.startswith(b"configuration: "):
        return
    raise _BadLine(f"unrecognised line: {body[:60]!r}")


class _Read1(io.RawIOBase):
    """A raw stream over ``GzipFile.read1``: each fill returns what one decode step produced."""

    def __init__(self, gz: gzip.GzipFile) -> None:
        self._gz = gz

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._gz.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _ZstdFrames(io.RawIOBase):
    """Decodes concatenated zstd frames; raises EOFError (as gzip does) if the input ends inside
    a frame, so ``iter_frames`` reports the file as truncated instead of ending quietly."""

    def __init__(self, raw: BinaryIO, zstandard: Any) -> None:
        self._raw = raw
        self._new = zstandard.ZstdDecompressor().decompressobj
        self._obj: Any = None  # the frame being decoded, None between frames
        self._pending = b""  # decoded; self._pending[self._at:] not yet returned
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._at >= len(self._pending):
            chunk = self._raw.read(_ZSTD_READ)
            if not chunk:
                if self._obj is not None:
                    raise EOFError("zstd stream ends inside a frame")
                return 0
            out = []
            while chunk:
                if self._obj is None:
                    self._obj = self._new()
                out.append(self._obj.decompress(chunk))
                if self._obj.eof:
                    chunk = self._obj.unused_data
                    self._obj = None
                else:
                    chunk = b""
            self._pending, self._at = b"".join(out), 0
        # An offset into the decoded bytes, not a slice: a large frame is not copied per read.
        n = min(len(buffer), len(self._pending) - self._at)
        buffer[:n] = memoryview(self._pending)[self._at : self._at + n]
        self._at += n
        return n


class _CountingFileIO(io.FileIO):
    """A file that reports the on-disk bytes it reads (``iter_frames``' ``on_read``): one call
    per buffer refill (64 KiB), not per frame, so a progress bar costs nothing per frame."""

    def __init__(self, path: str, on_read: Callable[[int], None]) -> None:
        super().__init__(path, "rb")
        self._on_read = on_read

    def readinto(self, buffer: Any) -> int | None:
        n = super().readinto(buffer)
        if n:
            self._on_read(n)
        return n


def _open_binary(
    path: str, stack: ExitStack, on_read: Callable[[int], None] | None = None
) -> BinaryIO:
    """Open ``path`` for buffered binary line reading, decompressing by magic bytes."""
    # "-" is stdin (a pipe: peek works on a BufferedReader over it, seek is never needed).
    if path == "-":
        source = io.FileIO(0, "rb", closefd=False)
    else:
        source = io.FileIO(path, "rb") if on_read is None else _CountingFileIO(path, on_read)
    raw = stack.enter_context(io.BufferedReader(source, buffer_size=_READ_BUFFER))
    magic = raw.peek(4)[:4]
    if magic[:2] == _GZIP_MAGIC:
        gz = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
        # Our own BufferedReader on top: its readline() runs in C, whereas iterating a GzipFile
        # goes through GzipFile.readline (Python) once per line. It pulls through read1() so that
        # a member cut short by a crash costs only that member: a plain read() that fails
        # half-way would discard what it had already decoded from the complete members before.
        return io.BufferedReader(_Read1(gz), buffer_size=_READ_BUFFER)
    if magic == _ZSTD_MAGIC:
        try:
            import zstandard
        except ImportError:
            raise ImportError(
                f"{path} is zstd-compressed; reading it needs the 'zstandard' package (pip install zstandard)"
            ) from None
        # Frame by frame (the recorder writes one zstd frame a second), so that a last frame cut by
        # a crash is seen as such: zstandard's stream_reader stops at it silently.
        return io.BufferedReader(_ZstdFrames(raw, zstandard), buffer_size=_READ_BUFFER)
    return raw


def _warn(message: str) -> None:
    warnings.warn(message, CaptureWarning, stacklevel=4)


def is_tardis_csv(path: str | os.PathLike[str]) -> bool:
    """Whether the capture at ``path`` (plain or compressed) is a tardis.dev incremental_book_L2
    CSV (its first line is the header); False for stdin and for what cannot be read."""
    path = os.fspath(path)
    if path == "-":
        return False
    try:
        with ExitStack() as stack:
            return _open_binary(path, stack).readline().rstrip(b"\r\n") == TARDIS_CSV_HEADER
    except (OSError, EOFError, ImportError):
        return False


def iter_frames(
    path: str | os.PathLike[str],
    *,
    disconnects: bool = False,
    on_problem: Callable[[str], None] | None = None,
    on_read: Callable[[int], None] | None = None,
) -> Iterator[CapturedFrame]:
    """Yield the received frames of a capture file, in file order.

    ``path`` may be plain, gzip or zstd (by magic bytes); ``"-"`` reads stdin. Each line is recognised on its own (module
    docstring). Blank lines (recorder disconnects) are skipped, or yielded as
    ``CapturedFrame(None, b"", line_no)`` when ``disconnects`` is true.

    A half-written last line (no final newline and not a complete JSON value, as a crash leaves it)
    and a gzip stream cut short are skipped with a :class:`CaptureWarning`. Any other line that is
    not a known format or not a complete frame raises :class:`CaptureFormatError` with its line
    number: in the middle of a file it means damage or a wrong file, and skipping it silently would
    turn into a checksum failure far from the cause.

    ``on_problem(message)``, when given, is called instead of the warning (``message`` starts with
    ``<path>:<line>:``): replay uses it to report the file as truncated. ``on_read(n)`` is told
    of every ``n`` bytes read from the file on disk (compressed or not), a buffer at a time: what
    a progress bar counts.
    """
    path = os.fspath(path)
    problem = on_problem if on_problem is not None else _warn
    with ExitStack() as stack:
        fh = _open_binary(path, stack, on_read)
        line_no = 0
        first = True  # before the first non-blank line: look for a pretty-printed document
        try:
            for line in fh:
                line_no += 1
                if line[-1] != 0x0A:  # no "\n": the last line, possibly cut by a crash
                    last = _read_unterminated_last_line(path, line, line_no, problem)
                    if last is not None:
                        yield last
                    return
                body = line[:-1]
                if body[-1:] == b"\r":
                    body = body[:-1]
                if not body or body.isspace():
                    if disconnects:
                        yield _new_frame(CapturedFrame, (None, b"", line_no))
                    continue
                if first:
                    first = False
                    if body == TARDIS_CSV_HEADER:  # a tardis.dev incremental_book_L2 CSV
                        for recv_ns, frame, at in iter_csv_frames(path, fh, line_no, problem):
                            yield _new_frame(CapturedFrame, (recv_ns, frame, at))
                        return
                    c = body[0]
                    stripped = body.rstrip()
                    if (c == _LBRACE or c == _LBRACKET) and stripped[-1] not in (
                        _RBRACE,
                        _RBRACKET,
                    ):
                        yield _read_document(path, fh, line, line_no)
                        return
                try:
                    parsed = _parse_line(body)
                except _BadLine as e:
                    raise CaptureFormatError(path, line_no, str(e)) from None
                if parsed is not None:
                    yield _new_frame(CapturedFrame, (parsed[0], parsed[1], line_no))
        except EOFError:
            # gzip raises EOFError when the stream ends before its end-of-stream marker: the
            # recorder died mid-write. What was read is good; the rest is gone.
            problem(
                f"{path}:{line_no}: compressed stream ends abruptly after this line; "
                "the rest is lost (truncated)"
            )


def _read_unterminated_last_line(
    path: str, line: bytes, line_no: int, problem: Callable[[str], None]
) -> CapturedFrame | None:
    """The last line has no newline: keep it if it is a complete frame, else warn and drop it.

    Only here do we pay for a real JSON parse: ending in ``}`` is not proof of completeness when the
    writer stopped mid-line (``{"a":{"b":1}`` ends in ``}`` too).
    """
    body = line.rstrip(b"\r")
    if not body or body.isspace():
        return None
    try:
        parsed = _parse_line(body)
        if parsed is None:
            return None
        frame = parsed[1]
        if frame not in _TEXT_FRAMES:
            json.loads(frame)
    except (_BadLine, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        problem(
            f"{path}:{line_no}: skipping half-written last line (no final newline, {e}): "
            f"{line[:60]!r}"
        )
        return None
    return CapturedFrame(parsed[0], frame, line_no)


def _read_document(path: str, fh: BinaryIO, first_line: bytes, line_no: int) -> CapturedFrame:
    """The first line opens a multi-line JSON value: the rest of the file must complete it.

    The file is read once (the frame has to be in memory anyway) and parsed once to make sure it is
    one document rather than damaged JSON lines.
    """
    doc = (first_line + fh.read()).strip()
    try:
        json.loads(doc)
    except ValueError as e:
        raise CaptureFormatError(
            path,
            line_no,
            f"first line is not a complete frame and the file is not one JSON document ({e})",
        ) from None
    return CapturedFrame(None, doc, line_no)
