"""The CRC-32 under OKX's checksum (okxbook/_crc32.h): the carry-less multiplication path and the
zlib path both give zlib.crc32's result for every length, alignment and starting value, their
constants are what the polynomial says, and real captures verify through either path."""

from __future__ import annotations

import platform
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import EXAMPLES, FRAMES_DIR
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okxbook import Books, ChecksumError, _checksum
from okxbook.capture import iter_frames

CAPTURE = FRAMES_DIR / "bmoscon_cryptofeed/2022-02-28_books-l2-tbt_ed5b535/OKX.ws.1.0"
CAPTURE_CHECKSUMS = 3679  # books-l2-tbt frames with a checksum (tests/data/okx-frames/README.md)
# The path fixture switches a module-wide setting once per test; every example runs on that path.
ON_BOTH_PATHS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(params=["pclmul", "zlib"])
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test once on each path; the fast one is the default again afterwards."""
    accelerated = _checksum._use_portable(request.param == "zlib")
    assert accelerated == (request.param == "pclmul" and _checksum._accelerated())
    try:
        yield request.param
    finally:
        _checksum._use_portable(False)


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    m = re.search(r"^flags\s*:(.*)$", text, re.M)
    return set(m.group(1).split()) if m else set()


def test_the_fast_path_is_in_use_where_the_cpu_has_it():
    # On x86 with PCLMULQDQ and SSE4.1 the build must select it (it needs no compiler flag), so the
    # "pclmul" runs below really exercise it here.
    if platform.machine() in ("x86_64", "AMD64", "i686") and {"pclmulqdq", "sse4_1"} <= cpu_flags():
        assert _checksum._accelerated()
    assert _checksum._use_portable(False) == _checksum._accelerated()
    assert _checksum._use_portable(True) is False
    assert _checksum._use_portable(False) == _checksum._accelerated()


# --- the constants, recomputed from the polynomial (the derivation in okxbook/_crc32.h) ---------

P = 1 << 32 | 0x04C11DB7  # x^32 + x^26 + ... + 1: zlib's polynomial (0xEDB88320 bit-reflected)


def xmod(e: int) -> int:
    """x^e mod P."""
    r = 1
    for _ in range(e):
        r <<= 1
        if r >> 32:
            r ^= P
    return r


def pdiv(a: int, b: int) -> int:
    """floor(a / b) for polynomials over GF(2)."""
    q = 0
    while a.bit_length() >= b.bit_length():
        s = a.bit_length() - b.bit_length()
        q, a = q ^ 1 << s, a ^ b << s
    return q


def rev64(poly: int) -> int:
    """The 64-bit PCLMULQDQ operand whose bit j is the coefficient of x^(63 - j)."""
    return int(f"{poly:064b}"[::-1], 2)


def test_reflected_polynomial_is_zlibs():
    assert int(f"{P & 0xFFFFFFFF:032b}"[::-1], 2) == 0xEDB88320


def test_constants_are_derived_from_the_polynomial():
    expected = (
        rev64(xmod(512 + 63)),  # fold 4 x 128 bits: the high-degree (low) qword, x^(64+D-1)
        rev64(xmod(512 - 1)),  # ... the low-degree (high) qword, x^(D-1)
        rev64(xmod(128 + 63)),  # fold 1 x 128 bits
        rev64(xmod(128 - 1)),
        rev64(xmod(95)),  # 128 -> 96 bits, times x^32
        rev64(xmod(63)),  # 96 -> 64 bits
        rev64(pdiv(1 << 64, P)) >> 31,  # Barrett mu = floor(x^64 / P), 33-bit reflected
        rev64(P) >> 31,  # P, 33-bit reflected
    )
    assert _checksum._clmul_constants() == expected
    assert expected[-1] == 0x1DB710641  # the reflected P with its x^32 term, as Intel prints it


# --- results against zlib ------------------------------------------------------------------------


def test_check_value_and_empty(path):
    # The CRC-32 "check" value of the catalogue (ISO-HDLC).
    assert _checksum.crc32(b"123456789") == 0xCBF43926
    assert _checksum.crc32(b"") == 0
    assert _checksum.crc32(b"", 0xDEADBEEF) == 0xDEADBEEF


def test_every_length_and_alignment(path):
    # Lengths 0..300 cover each branch (< 16 bytes, 16..63 one accumulator, >= 64 four, every tail
    # 1..15); offsets 0..15 into one buffer put the input at every alignment mod 16.
    buf = bytes((i * 167 + 13) & 0xFF for i in range(340))
    view = memoryview(buf)
    for n in range(301):
        for off in range(16):
            piece = view[off : off + n]
            value = (n * 2654435761 + off) & 0xFFFFFFFF
            assert _checksum.crc32(piece, value) == zlib.crc32(piece, value), (n, off)
            assert _checksum.crc32(piece) == zlib.crc32(piece), (n, off)


@ON_BOTH_PATHS
@given(data=st.binary(max_size=5000), value=st.integers(0, 2**32 - 1))
def test_random_bytes_match_zlib(path, data, value):
    assert _checksum.crc32(data, value) == zlib.crc32(data, value)


@ON_BOTH_PATHS
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=4))
def test_chained_value_continues_the_crc(path, data, cuts):
    # crc32(b, crc32(a)) == crc32(a + b), as with zlib: the "value" argument carries the state.
    bounds = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    v = 0
    for lo, hi in zip(bounds, bounds[1:]):
        v = _checksum.crc32(data[lo:hi], v)
    assert v == zlib.crc32(data)


def test_value_is_taken_bitwise_like_zlib(path):
    for value in (-1, -(2**31), 2**32, 2**32 + 7, 2**40 + 12345):
        assert _checksum.crc32(b"okx books", value) == zlib.crc32(b"okx books", value)


def test_any_contiguous_buffer_and_not_others():
    data = bytes(range(200))
    assert _checksum.crc32(bytearray(data)) == _checksum.crc32(memoryview(data)) == zlib.crc32(data)
    with pytest.raises(TypeError):
        _checksum.crc32("text")  # type: ignore[arg-type]
    with pytest.raises(BufferError):
        _checksum.crc32(memoryview(data)[::2])  # not contiguous (zlib.crc32 refuses it too)
    with pytest.raises(TypeError):
        _checksum.crc32(b"x", 1.5)  # type: ignore[arg-type]


# --- the book checksum through both paths -----------------------------------------------------------


def test_doc_examples_on_both_paths(path):
    # docs/protocol.md §3: the documented values come out of either path.
    assert (
        _checksum.okx_checksum([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")])
        == -1881014294
    )
    assert (
        _checksum.okx_checksum([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")])
        == 831078360
    )


def book_frames() -> Iterator[bytes]:
    """The capture's books-l2-tbt data frames (it also holds trades, tickers and events)."""
    for cf in iter_frames(CAPTURE):
        if cf.frame.startswith(b'{"arg":{"channel":"books-l2-tbt"') and b'"data"' in cf.frame:
            yield cf.frame


def test_real_capture_verifies_on_both_paths(path):
    books = Books()
    for frame in book_frames():
        books.apply(frame)
    stats = [b.stats() for b in books if b.channel == "books-l2-tbt"]
    assert sum(s["checksum_ok"] for s in stats) == CAPTURE_CHECKSUMS
    assert sum(s["checksum_mismatch"] for s in stats) == 0


def test_real_capture_with_one_wrong_checksum_is_rejected_on_both_paths(path):
    # The 100th checksummed frame with its checksum off by one: rejected, the book goes invalid.
    books = Books()
    seen = 0
    for frame in book_frames():
        m = re.search(rb'"checksum":(-?\d+)', frame)
        if m:
            seen += 1
            if seen == 100:
                bad = frame[: m.start(1)] + str(int(m.group(1)) + 1).encode() + frame[m.end(1) :]
                with pytest.raises(ChecksumError) as err:
                    books.apply(bad)
                assert err.value.expected == int(m.group(1)) + 1
                assert err.value.computed == int(m.group(1))
                break
        books.apply(frame)
    assert seen == 100
