# cython: language_level=3
"""Declarations of the SBE decoder (``_sbe.pyx``): one binary OKX frame -> the same ``Scratch`` the
JSON scanner fills, plus what only SBE carries (instIdCode, the two microsecond clocks)."""

from libc.stdint cimport int64_t
from okxbook._wire cimport Scratch

ctypedef struct SbeInfo:
    int template_id
    int64_t inst_id_code
    bint has_code        # instIdCode was read (also for a frame rejected after it)
    int64_t ts_us        # tsUs: matching engine time, µs
    int64_t out_us       # outTime: gateway send time, µs (0 where the template has none)
    int px_exponent
    int sz_exponent

cdef bint is_sbe(const char* buf, Py_ssize_t n) noexcept nogil
cdef int sbe_decode(Scratch* s, SbeInfo* info, const char* buf, Py_ssize_t n) noexcept nogil
