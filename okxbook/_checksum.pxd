# cython: language_level=3
from libc.stdint cimport int32_t
from okxbook._level cimport Side, LEVEL_STR_CAP

cdef enum:
    CHECKSUM_DEPTH = 25
    # 25 bids + 25 asks, each "px:sz:" at most
    CHECKSUM_BUF_SIZE = 2 * CHECKSUM_DEPTH * (2 * LEVEL_STR_CAP + 2)

cdef int32_t book_checksum(const Side* bids, const Side* asks, char* buf) noexcept nogil
