# cython: language_level=3
from libc.stdint cimport int32_t
from okxbook._level cimport Side, LEVEL_TEXT_CAP

cdef enum:
    CHECKSUM_DEPTH = 25
    # 25 bids + 25 asks of "px:sz:" each; every copy moves a whole LEVEL_TEXT_CAP
    CHECKSUM_BUF_SIZE = (2 * CHECKSUM_DEPTH + 1) * LEVEL_TEXT_CAP

cdef int32_t book_checksum(const Side* bids, const Side* asks, char* buf) noexcept nogil
