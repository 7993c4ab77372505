# cython: language_level=3
"""Price levels and book sides: the per-level primitives, all ``cdef inline`` so every extension
that cimports them gets them inlined (a cdef call across modules goes through a pointer).

A side is a sorted array of ``Level`` with the *best level at the end* (index ``n - 1``): OKX
updates cluster at the top of the book, so inserting or deleting there moves few bytes. Bids are
stored ascending in price, asks descending; ``sign`` turns both into one ascending key.
"""

from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memmove


cdef extern from *:
    """
    /* 128-bit integer (GCC, Clang): sums and differences of int64 ticks or lots cannot wrap. */
    typedef __int128 okxbook_wide_t;
    """
    # Exact sums of int64 values for derived figures (mid, spread, cumulative sizes): 400 levels
    # of 10**17 lots pass 2**63, 2**64 levels cannot pass 2**127.
    ctypedef long long wide_t "okxbook_wide_t"


# A level keeps its price and size strings exactly as received, stored pre-joined as "px:sz:" (the
# checksum's own text for that level, so building the checksum input is one fixed-size copy per
# level). Both strings together fit LEVEL_TEXT_CAP - 2 bytes: far more than any OKX price and size.
cdef enum:
    LEVEL_TEXT_CAP = 43
    MAX_DECIMALS = 18

ctypedef struct Level:
    int64_t px          # price in units of 10**-px_decimals (the book's scale once applied)
    int64_t sz          # size in units of 10**-sz_decimals
    int64_t extra       # third field (books-rpi non-RPI size) in size units; "0" elsewhere
    int64_t orders      # fourth field: number of orders
    uint8_t px_len      # text[0:px_len] is the price string
    uint8_t sz_len      # text[px_len + 1:px_len + 1 + sz_len] is the size string
    uint8_t px_dec      # decimals as printed (scratch only: the book stores one scale)
    uint8_t sz_dec
    uint8_t extra_dec
    char text[LEVEL_TEXT_CAP]

ctypedef struct Side:
    Level* lv
    Py_ssize_t n        # levels held
    Py_ssize_t cap      # levels allocated
    Py_ssize_t limit    # most levels kept; past it the deepest is dropped
    int64_t sign        # +1 bids, -1 asks


cdef inline Py_ssize_t side_search(const Side* s, int64_t px, bint* found) noexcept nogil:
    """Index of the first level whose key is >= px's key; ``found`` if that level is px."""
    cdef int64_t key = px * s.sign
    cdef Py_ssize_t lo = 0, hi = s.n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if s.lv[mid].px * s.sign < key:
            lo = mid + 1
        else:
            hi = mid
    found[0] = lo < s.n and s.lv[lo].px == px
    return lo


cdef inline int side_set(Side* s, const Level* src, int64_t* prev_sz,
                         int64_t* dropped_px) noexcept nogil:
    """Insert or replace ``src``. Returns 0 replaced (``prev_sz`` = the size it had), 1 inserted,
    2 inserted after dropping the deepest level (its price in ``dropped_px``, its size in
    ``prev_sz``), -1 not kept (deeper than everything on a full side). Capacity must be reserved.
    The out-values are what a delta consumer needs (the size before, the level that left); they
    cost nothing when unread."""
    cdef bint found
    cdef Py_ssize_t i = side_search(s, src.px, &found)
    if found:
        prev_sz[0] = s.lv[i].sz
        s.lv[i] = src[0]
        return 0
    if s.n < s.limit:
        memmove(&s.lv[i + 1], &s.lv[i], <size_t>(s.n - i) * sizeof(Level))
        s.lv[i] = src[0]
        s.n += 1
        return 1
    if i == 0:
        return -1
    dropped_px[0] = s.lv[0].px
    prev_sz[0] = s.lv[0].sz
    memmove(&s.lv[0], &s.lv[1], <size_t>(i - 1) * sizeof(Level))
    s.lv[i - 1] = src[0]
    return 2


cdef inline bint side_delete(Side* s, int64_t px, int64_t* prev_sz) noexcept nogil:
    """Remove the level at ``px`` (its size goes to ``prev_sz``); False if there was none (normal
    on OKX ``books``)."""
    cdef bint found
    cdef Py_ssize_t i = side_search(s, px, &found)
    if not found:
        return False
    prev_sz[0] = s.lv[i].sz
    memmove(&s.lv[i], &s.lv[i + 1], <size_t>(s.n - i - 1) * sizeof(Level))
    s.n -= 1
    return True
