"""okxbook.capture: reading the real captures in tests/data and synthetic edge cases; tardis line format."""

from __future__ import annotations

import gzip
import json
import sys
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import FRAMES_DIR
from hypothesis import given
from hypothesis import strategies as st

from okxbook.capture import (
    CapturedFrame,
    CaptureFormatError,
    CaptureWarning,
    format_tardis_line,
    iter_frames,
    parse_tardis_timestamp,
)

FRAMES = FRAMES_DIR

CF_TBT = "bmoscon_cryptofeed/2022-02-28_books-l2-tbt_ed5b535/OKX.ws.1.0"
CF_BOOKS = "bmoscon_cryptofeed/2022-05-13_books_3079107/OKX.ws.1.0"
CF_OKCOIN = "bmoscon_cryptofeed/2023-05-27_OKCOIN_not_OKX_books_ad7a2b7/OKCOIN.ws.1.0"
NAUTILUS = [
    "nautechsystems_nautilus_trader/ws_books_rpi_snapshot.json",
    "nautechsystems_nautilus_trader/ws_books_rpi_update.json",
]
JSONL = [
    "ccxt_ccxt/okx_books5_2026-08-12_extracted.jsonl",
    "thrasher-corp_gocryptotrader/okcoin_v5_books_BTC-USD_2023-07-10.jsonl",
    "thrasher-corp_gocryptotrader/okx_books5_2023-09-28_instId-relabeled.jsonl",
    "thrasher-corp_gocryptotrader/okx_books_snapshot_2022-08-06_instId-relabeled.jsonl",
]
# Book-frame counts from tests/data/okx-frames/README.md (snapshots + updates).
README_BOOK_FRAMES = {CF_TBT: 3679, CF_BOOKS: 290, CF_OKCOIN: 6}


def is_book_frame(frame: bytes) -> bool:
    msg = json.loads(frame)
    return (
        isinstance(msg, dict)
        and "data" in msg
        and msg.get("arg", {}).get("channel", "").startswith(("books", "bbo"))
    )


def cryptofeed_frame_lines(path: Path) -> list[tuple[str, bytes, int]]:
    """Independent scan of a cryptofeed recording: (timestamp text, frame, line_no) per received frame."""
    out = []
    for line_no, line in enumerate(path.read_bytes().split(b"\n"), 1):
        if line[:1].isdigit():
            ts, frame = line.split(b": ", 1)
            out.append((ts.decode(), frame, line_no))
    return out


def read_all(path: Path, **kw: bool) -> list[CapturedFrame]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaptureWarning)  # the real files are whole: no warning
        return list(iter_frames(path, **kw))


# --- real captures (tests/data) -------------------------------------------------------------------


@pytest.mark.parametrize("rel", [CF_TBT, CF_BOOKS, CF_OKCOIN])
def test_cryptofeed_recording_yields_every_received_frame_with_exact_time(rel: str) -> None:
    path = FRAMES / rel
    expected = cryptofeed_frame_lines(path)
    got = read_all(path)
    assert [(f.frame, f.line_no) for f in got] == [(e[1], e[2]) for e in expected]
    # Exact decimal conversion, checked with Decimal rather than the module's own arithmetic.
    assert [f.recv_ns for f in got] == [int(Decimal(e[0]) * 10**9) for e in expected]
    assert sum(map(is_book_frame, (f.frame for f in got))) == README_BOOK_FRAMES[rel]


def test_cryptofeed_time_converts_from_digits_not_float() -> None:
    got = {f.line_no: f.recv_ns for f in read_all(FRAMES / CF_TBT)}
    lines = (FRAMES / CF_TBT).read_bytes().split(b"\n")
    line_no = next(i for i, line in enumerate(lines, 1) if line.startswith(b"1646003667.8790731: "))
    assert got[line_no] == 1646003667879073100
    assert int(1646003667.8790731 * 1e9) != 1646003667879073100  # why we do not go through float


def test_cryptofeed_blank_line_is_a_disconnect_only_when_asked() -> None:
    path = FRAMES / CF_OKCOIN
    plain = read_all(path)
    with_dc = read_all(path, disconnects=True)
    assert [f for f in with_dc if f.frame] == plain
    assert [f for f in with_dc if not f.frame] == [CapturedFrame(None, b"", 76)]


@pytest.mark.parametrize("rel", JSONL)
def test_jsonl_capture_yields_each_line_as_is(rel: str) -> None:
    path = FRAMES / rel
    lines = [line for line in path.read_bytes().split(b"\n") if line.strip()]
    got = read_all(path)
    assert [f.frame for f in got] == lines
    assert all(f.recv_ns is None for f in got)
    assert [f.line_no for f in got] == list(range(1, len(lines) + 1))
    assert all(is_book_frame(f.frame) for f in got)


@pytest.mark.parametrize("rel", NAUTILUS)
def test_pretty_printed_document_is_one_frame(rel: str) -> None:
    path = FRAMES / rel
    assert path.read_bytes().split(b"\n", 1)[0].strip() == b"{"
    assert read_all(path) == [CapturedFrame(None, path.read_bytes().strip(), 1)]


@pytest.mark.parametrize("rel", [CF_TBT, CF_OKCOIN, JSONL[1], NAUTILUS[0]])
def test_gzip_and_plain_read_identically(rel: str, tmp_path: Path) -> None:
    path = FRAMES / rel
    gz = tmp_path / "capture.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert read_all(gz, disconnects=True) == read_all(path, disconnects=True)


def test_zstd_and_plain_read_identically(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    path = FRAMES / CF_BOOKS
    zst = tmp_path / "capture.zst"
    data = path.read_bytes()
    half = data.index(b"\n", len(data) // 2) + 1
    # Two zstd frames, as a recorder appending after a restart would leave.
    c = zstandard.ZstdCompressor()
    zst.write_bytes(c.compress(data[:half]) + c.compress(data[half:]))
    assert read_all(zst) == read_all(path)


# --- synthetic files ---------------------------------------------------------------------------------


def write(tmp_path: Path, data: bytes, name: str = "capture.txt") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


FRAME_A = b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[]}'
FRAME_B = b'{"arg":{"channel":"books","instId":"ETH-USDT"},"action":"update","data":[]}'


def test_half_written_last_line_warns_and_is_skipped(tmp_path: Path) -> None:
    p = write(tmp_path, b"1.5: " + FRAME_A + b"\n2.25: " + FRAME_B + b"\n3.0: " + FRAME_A[:30])
    with pytest.warns(CaptureWarning, match=r"capture\.txt:3: skipping half-written last line"):
        got = list(iter_frames(p))
    assert got == [
        CapturedFrame(1_500_000_000, FRAME_A, 1),
        CapturedFrame(2_250_000_000, FRAME_B, 2),
    ]


def test_half_written_last_line_ending_in_brace_is_caught_by_json_parse(tmp_path: Path) -> None:
    p = write(tmp_path, FRAME_A + b'\n{"arg":{"channel":"books"}')
    with pytest.warns(CaptureWarning, match=":2:"):
        assert [f.frame for f in iter_frames(p)] == [FRAME_A]


@pytest.mark.parametrize("last", [FRAME_B, b"pong", b"2026-11-25T08:06:01.1234567Z " + FRAME_B])
def test_complete_last_line_without_newline_is_kept(tmp_path: Path, last: bytes) -> None:
    p = write(tmp_path, FRAME_A + b"\n" + last)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = list(iter_frames(p))
    assert [f.frame for f in got] == [FRAME_A, last.split(b" ")[-1]]


def test_garbage_in_the_middle_raises_with_line_number(tmp_path: Path) -> None:
    p = write(tmp_path, FRAME_A + b"\n\n" + FRAME_B + b"\nhello world\n" + FRAME_A + b"\n")
    frames = iter_frames(p)
    assert next(frames).frame == FRAME_A
    assert next(frames).frame == FRAME_B
    with pytest.raises(CaptureFormatError) as exc_info:
        next(frames)
    err = exc_info.value
    assert isinstance(err, ValueError)
    assert (err.path, err.line_no) == (str(p), 4)
    assert str(err).startswith(f"{p}:4: ")


@pytest.mark.parametrize(
    "bad_line",
    [
        FRAME_A[:40],  # truncated frame followed by more lines
        b"1646003667.8790731: " + FRAME_A[:-2],  # ends in "["
        b"1646003667.8790731 " + FRAME_A,  # no ": "
        b"1646003667.879_0731: " + FRAME_A,  # int() would accept the "_"
        b"1646003667.8790731: b'x\\x9c\\xad'",  # cryptofeed's bytes repr of an OKEx v3 deflated frame
        b"2026-11-25T08:06:01.1234567 " + FRAME_A,  # no Z
        b"2026-13-25T08:06:01.1234567Z " + FRAME_A,  # month 13
        b"2026-11-25T08:06:60.1234567Z " + FRAME_A,  # second 60
        b"2026-11-25T08:06:01.1234567890Z " + FRAME_A,  # 10 fractional digits
        b"wss://ws.okx.com:8443/ws/v5/public <=> 1646003666.6408682",
    ],
)
def test_bad_lines_raise(tmp_path: Path, bad_line: bytes) -> None:
    p = write(tmp_path, FRAME_A + b"\n" + bad_line + b"\n" + FRAME_B + b"\n")
    with pytest.raises(CaptureFormatError, match=":2: "):
        list(iter_frames(p))


def test_cryptofeed_bookkeeping_lines_are_skipped(tmp_path: Path) -> None:
    url = b"wss://ws.okx.com:8443/ws/v5/public"
    p = write(
        tmp_path,
        b"configuration: {'exchanges': {}}\n"
        + url
        + b" <-> 1646003666.6408682\n"
        + url
        + b' <- 1646003667.399285: {"op":"subscribe","args":[]}\n'
        + b'https://www.okx.com/api/v5/public/instruments -> 1646003666.1: {"code":"0"}\n'
        + b"1646003667: "
        + FRAME_A
        + b"\n"
        + b"1646003667.5: pong\n",
    )
    assert list(iter_frames(p)) == [
        CapturedFrame(1646003667_000000000, FRAME_A, 5),
        CapturedFrame(1646003667_500000000, b"pong", 6),
    ]


def test_plain_lines_ping_pong_crlf_and_whitespace_lines(tmp_path: Path) -> None:
    p = write(tmp_path, b"pong\r\n  \n[1,2]\r\nping\n" + FRAME_A + b"\n")
    assert list(iter_frames(p)) == [
        CapturedFrame(None, b"pong", 1),
        CapturedFrame(None, b"[1,2]", 3),
        CapturedFrame(None, b"ping", 4),
        CapturedFrame(None, FRAME_A, 5),
    ]


def test_tardis_lines_read_with_exact_time(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        b"2026-11-25T08:06:01.1234567Z " + FRAME_A + b"\n"
        b"\n"
        b"2026-11-25T08:06:01Z " + FRAME_B + b"\n"
        b"1970-01-01T00:00:00.000000001Z pong\n"
        b"2024-02-29T23:59:59.9Z " + FRAME_A + b"\n",
    )
    base = int(datetime(2026, 11, 25, 8, 6, 1, tzinfo=UTC).timestamp()) * 10**9
    leap = int(datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC).timestamp()) * 10**9
    assert list(iter_frames(p, disconnects=True)) == [
        CapturedFrame(base + 123_456_700, FRAME_A, 1),
        CapturedFrame(None, b"", 2),
        CapturedFrame(base, FRAME_B, 3),
        CapturedFrame(1, b"pong", 4),
        CapturedFrame(leap + 900_000_000, FRAME_A, 5),
    ]


def test_pretty_printed_document_that_is_not_one_json_value_raises(tmp_path: Path) -> None:
    p = write(tmp_path, b'{\n  "a": 1\n}\n{\n  "b": 2\n}\n')
    with pytest.raises(CaptureFormatError, match=r":1: .*not one JSON document"):
        list(iter_frames(p))


def test_truncated_gzip_stream_warns_and_keeps_what_was_read(tmp_path: Path) -> None:
    data = b"".join(b"%d.5: %s\n" % (1646003667 + i, FRAME_A) for i in range(20000))
    p = write(tmp_path, gzip.compress(data)[:-2000], "capture.gz")
    with pytest.warns(CaptureWarning, match="ends abruptly"):
        got = list(iter_frames(p))
    assert 0 < len(got) < 20000
    assert [f.line_no for f in got] == list(range(1, len(got) + 1))
    assert all(f.frame == FRAME_A for f in got)


def test_zstd_without_zstandard_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = write(tmp_path, b"\x28\xb5\x2f\xfd" + b"\0" * 16, "capture.zst")
    monkeypatch.setitem(sys.modules, "zstandard", None)  # makes "import zstandard" fail
    with pytest.raises(ImportError, match="zstandard"):
        list(iter_frames(p))


def test_empty_file_yields_nothing(tmp_path: Path) -> None:
    assert list(iter_frames(write(tmp_path, b""))) == []


# --- tardis line format ------------------------------------------------------------------------------

NS_MIN = (
    int((datetime(1, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 10**9
)
NS_MAX = (
    int(
        (
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
        ).total_seconds()
    )
    * 10**9
    + 999_999_999
)


def test_format_tardis_line_example() -> None:
    ns = parse_tardis_timestamp(b"2026-11-25T08:06:01.1234567Z")
    assert ns == 1795593961_123456700
    assert (
        format_tardis_line(ns + 99, FRAME_A) == b"2026-11-25T08:06:01.1234567Z " + FRAME_A + b"\n"
    )
    assert format_tardis_line(0, b"pong") == b"1970-01-01T00:00:00.0000000Z pong\n"
    assert format_tardis_line(-1, b"pong") == b"1969-12-31T23:59:59.9999999Z pong\n"


@given(st.integers(min_value=NS_MIN, max_value=NS_MAX))
def test_tardis_timestamp_round_trip(ns: int) -> None:
    line = format_tardis_line(ns, FRAME_A)
    assert len(line) == 28 + 1 + len(FRAME_A) + 1
    assert (
        parse_tardis_timestamp(line[:28]) == ns - ns % 100
    )  # floored to 100 ns, tardis' resolution
    d = datetime(1970, 1, 1, tzinfo=UTC) + (ns // 1000) * (datetime.resolution)
    assert line[:19] == d.strftime("%Y-%m-%dT%H:%M:%S").encode().rjust(19, b"0")


@given(st.integers(min_value=NS_MIN, max_value=NS_MAX), st.integers(min_value=0, max_value=9))
def test_tardis_timestamp_parses_0_to_9_fraction_digits(ns: int, digits: int) -> None:
    ts = format_tardis_line(ns, b"pong")[:27]  # without "Z"
    head, frac = ts[:19], (ts[20:] + b"00")[:digits]
    text = head + (b"." + frac if digits else b"") + b"Z"
    want = (ns // 10**9) * 10**9 + (int(frac) * 10 ** (9 - digits) if digits else 0)
    assert parse_tardis_timestamp(text) == want


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"Z",
        b"2026-11-25T08:06:01.1234567",
        b"2026-11-25 08:06:01.1234567Z",
        b"2026-02-30T08:06:01Z",
        b"2026-11-25T24:00:00Z",
        b"2026-11-25T08:06:01.Z",
        b"2026-11-25T08:06:01.12a4567Z",
        b"+026-11-25T08:06:01Z",
    ],
)
def test_parse_tardis_timestamp_rejects(text: bytes) -> None:
    with pytest.raises(ValueError):
        parse_tardis_timestamp(text)


@pytest.mark.parametrize("frame", [b"", b'{"a":\n1}', b'{"a":1}\r'])
def test_format_tardis_line_rejects_frames_that_would_not_read_back(frame: bytes) -> None:
    with pytest.raises(ValueError):
        format_tardis_line(0, frame)


def test_formatted_lines_read_back(tmp_path: Path) -> None:
    stamps = [1795593961_123456700 + i * 987_654_321 for i in range(300)]
    data = b"".join(
        format_tardis_line(ns, FRAME_A if i % 2 else FRAME_B) for i, ns in enumerate(stamps)
    )
    p = write(tmp_path, gzip.compress(data), "capture.gz")
    got = list(iter_frames(p))
    assert [f.recv_ns for f in got] == [ns - ns % 100 for ns in stamps]
    assert [f.frame for f in got] == [FRAME_A if i % 2 else FRAME_B for i in range(300)]
