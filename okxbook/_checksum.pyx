# cython: language_level=3
"""OKX's legacy order-book checksum (docs/protocol.md §3).

Top 25 bids and asks after the update, interleaved bid then ask as ``px:sz``, joined with ':', a side
with fewer levels simply contributing fewer entries; CRC32 (zlib) read as a signed int32. The input is
the price and size strings exactly as received, which every ``Level`` keeps inline, so building the
text is 50 short memcpy's and one crc32 call. OKX has sent ``checksum: 0`` ("absent") since
2026-06-23; real values exist in older captures.
"""

from libc.stdint cimport int32_t, uint32_t
from libc.string cimport memcpy
from libc.stdlib cimport calloc, free

from okxbook._level cimport Level, Side, side_at, LEVEL_TEXT_CAP

cdef extern from "zlib.h" nogil:
    unsigned long crc32(unsigned long crc, const unsigned char* buf, unsigned int length)


cdef inline char* put_level(char* w, const Level* lv) noexcept nogil:
    # A constant-size copy compiles to a few vector moves; the bytes past "px:sz:" are overwritten
    # by the next level (the buffer has LEVEL_TEXT_CAP bytes of slack).
    memcpy(w, lv.text, LEVEL_TEXT_CAP)
    return w + lv.px_len + lv.sz_len + 2


cdef int32_t book_checksum(const Side* bids, const Side* asks, char* buf) noexcept nogil:
    """Checksum of the two sides (best level at the end of each array); ``buf`` holds
    ``CHECKSUM_BUF_SIZE`` bytes."""
    cdef Py_ssize_t nb = bids.n if bids.n < CHECKSUM_DEPTH else CHECKSUM_DEPTH
    cdef Py_ssize_t na = asks.n if asks.n < CHECKSUM_DEPTH else CHECKSUM_DEPTH
    cdef Py_ssize_t i, top = nb if nb > na else na
    cdef char* w = buf
    for i in range(top):
        if i < nb:
            w = put_level(w, side_at(bids, bids.n - 1 - i))
        if i < na:
            w = put_level(w, side_at(asks, asks.n - 1 - i))
    cdef unsigned int length = <unsigned int>(w - buf - 1) if w > buf else 0
    return <int32_t><uint32_t>crc32(0, <const unsigned char*>buf, length)


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
