# cython: language_level=3
"""OKX's legacy order-book checksum (docs/protocol.md §3), and the CRC-32 it is made of.

Top 25 bids and asks after the update, interleaved bid then ask as ``px:sz``, joined with ':', a side
with fewer levels simply contributing fewer entries; CRC32 (zlib) read as a signed int32. The input is
the price and size strings exactly as received, which every ``Level`` keeps inline, so building the
text is 50 short fixed-size copies and one CRC-32 over about 1 KB. OKX has sent ``checksum: 0``
("absent") since 2026-06-23; real values exist in older captures.

The CRC-32 is okxbook/_crc32.h: folding by carry-less multiplication (PCLMULQDQ, Intel 2009; the
header cites the paper and derives its constants) where the CPU has it, chosen once at import, else
the system zlib's ``crc32``. Why hand-written: the system zlib computes CRC-32 with tables (about
3.7 instructions a byte, 3,700 for a 400-level book's text), and the libraries with a PCLMUL path
(zlib-ng, Intel ISA-L, Chromium's zlib) are not C libraries a PyPI build can link. ``crc32`` below
gives both paths to tests, which check them against ``zlib.crc32``.
"""

from libc.stdint cimport int32_t, uint32_t
from libc.string cimport memcpy
from libc.stdlib cimport calloc, free

from okxbook._level cimport Level, Side, side_at, LEVEL_TEXT_CAP

cdef extern from "_crc32.h" nogil:
    uint32_t okxbook_crc32(uint32_t crc, const unsigned char* p, size_t n)
    int okxbook_crc32_select(int portable)
    int okxbook_crc32_clmul_supported()
    const unsigned long long okxbook_crc_constants[8]


okxbook_crc32_select(0)


cdef inline char* put_level(char* w, const Level* lv) noexcept nogil:
    # A constant-size copy compiles to three vector moves (a 32-byte copy plus a length test costs
    # the same); the bytes past "px:sz:" are overwritten by the next level (the buffer has
    # LEVEL_TEXT_CAP bytes of slack).
    memcpy(w, lv.text, LEVEL_TEXT_CAP)
    return w + lv.px_len + lv.sz_len + 2


cdef int32_t book_checksum(const Side* bids, const Side* asks, char* buf) noexcept nogil:
    """Checksum of the two sides (best level at the end of each array); ``buf`` holds
    ``CHECKSUM_BUF_SIZE`` bytes."""
    # Local copies of the two headers: the text is written through a char*, which may alias
    # anything, so reading pool/slot through the pointers would reload them for every level.
    cdef Side b = bids[0], a = asks[0]
    cdef Py_ssize_t nb = b.n if b.n < CHECKSUM_DEPTH else CHECKSUM_DEPTH
    cdef Py_ssize_t na = a.n if a.n < CHECKSUM_DEPTH else CHECKSUM_DEPTH
    cdef Py_ssize_t i, both = nb if nb < na else na
    cdef Py_ssize_t tb = b.n - 1, ta = a.n - 1
    cdef char* w = buf
    # Pairs while both sides have levels, then the rest of the longer side: no test per level.
    for i in range(both):
        w = put_level(w, side_at(&b, tb - i))
        w = put_level(w, side_at(&a, ta - i))
    for i in range(both, nb):
        w = put_level(w, side_at(&b, tb - i))
    for i in range(both, na):
        w = put_level(w, side_at(&a, ta - i))
    cdef size_t length = <size_t>(w - buf - 1) if w > buf else 0
    return <int32_t>okxbook_crc32(0, <const unsigned char*>buf, length)


def crc32(const unsigned char[::1] data not None, value=0) -> int:
    """CRC-32 of ``data`` (any contiguous bytes-like object) continuing from ``value``, unsigned:
    the same result as ``zlib.crc32(data, value)``, by the path the checksum uses (carry-less
    multiplication where the CPU has it)."""
    cdef uint32_t v = <uint32_t>(value & 0xFFFFFFFF)
    cdef size_t n = data.shape[0]
    if n == 0:
        return v
    with nogil:
        v = okxbook_crc32(v, &data[0], n)
    return v


def _use_portable(bint portable) -> bool:
    """Tests: ``True`` forces the zlib path, ``False`` returns to the fastest this CPU has. Returns
    whether the carry-less multiplication path is now in use."""
    return bool(okxbook_crc32_select(portable))


def _accelerated() -> bool:
    """Whether this CPU has PCLMULQDQ and SSE4.1 (and this build the code for them)."""
    return bool(okxbook_crc32_clmul_supported())


def _clmul_constants() -> tuple:
    """The folding and reduction constants compiled in (okxbook/_crc32.h): FOLD4_H, FOLD4_L, FOLD1_H,
    FOLD1_L, X95, X63, MU, POLY. tests/test_crc32.py recomputes them from the polynomial."""
    return tuple(okxbook_crc_constants[i] for i in range(8))


cdef int fill_side(Side* side, list levels) except -1:
    cdef Py_ssize_t m = min(len(levels), CHECKSUM_DEPTH), j
    cdef bytes px, sz, text
    cdef Level* lv
    side.pool = <Level*>calloc(m if m else 1, sizeof(Level))
    side.slot = <int32_t*>calloc(m if m else 1, sizeof(int32_t))
    if side.pool == NULL or side.slot == NULL:
        raise MemoryError()
    for j in range(m):
        side.slot[j] = <int32_t>j
    side.n = side.cap = m
    for j in range(m):
        px = str(levels[j][0]).encode()
        sz = str(levels[j][1]).encode()
        if len(px) + len(sz) + 2 > LEVEL_TEXT_CAP:
            raise ValueError(f"level {levels[j]!r}: strings longer than {LEVEL_TEXT_CAP - 2} bytes")
        lv = &side.pool[m - 1 - j]        # best level at the end, as in a book
        text = px + b":" + sz + b":"
        memcpy(lv.text, <const char*>text, len(text))
        lv.px_len = len(px)
        lv.sz_len = len(sz)
    return 0


def okx_checksum(bids, asks) -> int:
    """Checksum of levels given best first as ``(px, sz, ...)`` string sequences, e.g. the
    ``bids``/``asks`` of a snapshot; the same code that verifies books in flight."""
    cdef Side b, a
    cdef char buf[CHECKSUM_BUF_SIZE]
    b.pool = a.pool = NULL
    b.slot = a.slot = NULL
    b.key = a.key = b.key_buf = a.key_buf = NULL
    b.slot_buf = a.slot_buf = NULL
    try:
        fill_side(&b, list(bids))
        fill_side(&a, list(asks))
        return book_checksum(&b, &a, buf)
    finally:
        free(b.pool)
        free(a.pool)
        free(b.slot)
        free(a.slot)
