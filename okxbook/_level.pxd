# cython: language_level=3
"""Price levels and book sides: the per-level primitives, all ``cdef inline`` so every extension
that cimports them gets them inlined (a cdef call across modules goes through a pointer).

A side keeps its levels (80 bytes each) in a *slot pool* that never moves them, and the order in two
compact arrays: ``key`` (the price times ``sign``, 8 bytes) and ``slot`` (where that level sits in
the pool, 4 bytes), sorted ascending in key with the *best level at the end* (index ``n - 1``).
Bids have sign +1, asks -1, so both sides sort the same way. ``side_at(s, i)`` is one indexed load,
so the readers of ``_book.pxd`` stay O(1).

An insert or delete moves 12 bytes per level, and only on the *shorter* side of the change: the
window ``key[0 .. cap - 1]`` / ``slot[0 .. cap - 1]`` sits inside buffers twice as long, so it can
slide one entry either way (``key`` and ``slot`` are pointers into the buffers, ``off`` entries in).
A change at the touch or past the tail moves almost nothing, one in the middle of a 400-level side
at most 200 keys (2.4 KB, in L1), so the cost of a change depends little on its depth
(bench/per_frame.py measures it). When the window reaches a buffer's end it is moved back to the
middle (rare: once per ``cap / 2`` one-sided slides).

``slot`` (the window) is always a permutation of ``0 .. cap - 1``: entries ``0 .. n - 1`` are the
live levels in order, entries ``n .. cap - 1`` the free pool slots. Taking a free slot is reading
``slot[n]``, freeing one is writing it back there; no separate free list, and setting ``n = 0``
empties a side.

Why hand-written: the primitives run inside the per-level loop of the hot path with no Python
object and no call; no library offers a sorted array of 8-byte keys over a stable pool with the
out-values a delta consumer needs (``prev_sz``, ``dropped_px``).
"""

from libc.stdint cimport int64_t, int32_t, uint8_t
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
    Level* pool         # cap levels; a level stays in its slot while it lives
    int64_t* key        # key[i] = pool[slot[i]].px * sign, ascending: best at i = n - 1
    int32_t* slot       # permutation of 0 .. cap - 1: the n live levels in order, then free slots
    int64_t* key_buf    # 2 * cap entries: key = key_buf + off
    int32_t* slot_buf   # 2 * cap entries: slot = slot_buf + off
    Py_ssize_t off      # where the window starts in both buffers (0 .. cap)
    Py_ssize_t n        # levels held
    Py_ssize_t cap      # levels allocated (the pool and the window hold cap entries)
    Py_ssize_t limit    # most levels kept; past it the deepest is dropped
    int64_t sign        # +1 bids, -1 asks


cdef inline Level* side_at(const Side* s, Py_ssize_t i) noexcept nogil:
    """The ``i``-th level in key order (``n - 1`` is the best); ``i`` must be in ``0 .. n - 1``."""
    return &s.pool[s.slot[i]]


cdef inline Level* side_best(const Side* s) noexcept nogil:
    """The best level; the side must not be empty."""
    return &s.pool[s.slot[s.n - 1]]


cdef extern from *:
    """
    /* How many of the 32 keys at a are below k: a search near the touch (see side_search). With
       AVX2 (chosen when the library loads, so the build needs no -m flags and runs on any x86-64)
       it is 8 independent compares of 4 keys; elsewhere side_search halves instead. */
    static int okxbook_has_avx2 = 0;
    #if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    #include <immintrin.h>
    __attribute__((target("avx2,popcnt")))
    static Py_ssize_t okxbook_below32(const int64_t* a, int64_t k) {
        __m256i kv = _mm256_set1_epi64x(k);
        int c = 0, j;
        for (j = 0; j < 32; j += 4) {
            __m256i v = _mm256_loadu_si256((const __m256i*)(a + j));
            c += __builtin_popcount(
                _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(kv, v))));
        }
        return c;
    }
    /* The first key >= k in a[0 .. n - 1] when it lies below the 32 best (a[n - 32] > k, so
       n >= 32), for AVX2 CPUs. The keys every 32 places down from the touch (at most 16: a
       400-level side has 12) are compared with k all at once (independent loads, where each
       step of a halving search waits for the previous one), which names the block of 32 that
       holds the answer; below32 places it in that block. Keys deeper than 16 blocks, and the
       part of a side under its last whole block, are found by halving. */
    static Py_ssize_t okxbook_search_blocks(const int64_t* a, Py_ssize_t n, int64_t k) {
        Py_ssize_t blocks = n / 32, b, top, base, lo = 0, half, m;
        int c = 0;
        if (blocks > 16) blocks = 16;
        for (b = 1; b <= blocks; b++)
            c += a[n - 32 * b] > k;
        top = n - 32 * c;                 /* a[top] > k; a[top - 32] <= k if that is a pivot */
        base = top - 32;
        if (c < blocks)
            return base + okxbook_below32(a + base, k);
        for (m = top + 1; m > 1; m -= half) {   /* in a[0 .. top], and a[top] > k */
            half = m >> 1;
            lo = a[lo + half - 1] < k ? lo + half : lo;
        }
        return lo;
    }
    __attribute__((constructor)) static void okxbook_pick_search(void) {
        __builtin_cpu_init();
        okxbook_has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
    }
    #else
    static Py_ssize_t okxbook_below32(const int64_t* a, int64_t k) { (void)a; (void)k; return 0; }
    static Py_ssize_t okxbook_search_blocks(const int64_t* a, Py_ssize_t n, int64_t k) {
        (void)a; (void)n; (void)k; return 0;
    }
    #endif
    """
    bint has_avx2 "okxbook_has_avx2"
    Py_ssize_t below32 "okxbook_below32" (const int64_t* a, int64_t k) noexcept nogil
    Py_ssize_t search_blocks "okxbook_search_blocks" (const int64_t* a, Py_ssize_t n,
                                                      int64_t k) noexcept nogil


cdef extern from *:
    """
    /* Shift the n entries of a key window and of its slot window one place: up (a[1 .. n] =
       a[0 .. n - 1]) or down (a[0 .. n - 1] = a[1 .. n]). Most changes on OKX land at or next to
       the touch, where n is a handful: those move in a loop here (the empty asm keeps GCC from
       turning the loop back into two memmove calls, whose call and size dispatch cost more than
       the move itself, about 55 instructions a call under callgrind); longer runs use memmove. */
    #define OKXBOOK_SHORT_SHIFT 8
    static inline void okxbook_shift_up(int64_t* k, int32_t* s, size_t n) {
        if (n <= OKXBOOK_SHORT_SHIFT) {
            while (n) {
                n--;
                k[n + 1] = k[n];
                s[n + 1] = s[n];
                __asm__("" ::: "memory");
            }
            return;
        }
        memmove(k + 1, k, n * sizeof(int64_t));
        memmove(s + 1, s, n * sizeof(int32_t));
    }
    static inline void okxbook_shift_down(int64_t* k, int32_t* s, size_t n) {
        size_t j;
        if (n <= OKXBOOK_SHORT_SHIFT) {
            for (j = 0; j < n; j++) {
                k[j] = k[j + 1];
                s[j] = s[j + 1];
                __asm__("" ::: "memory");
            }
            return;
        }
        memmove(k, k + 1, n * sizeof(int64_t));
        memmove(s, s + 1, n * sizeof(int32_t));
    }
    """
    void shift_up "okxbook_shift_up" (int64_t* k, int32_t* s, size_t n) noexcept nogil
    void shift_down "okxbook_shift_down" (int64_t* k, int32_t* s, size_t n) noexcept nogil


cdef inline Py_ssize_t side_search(const Side* s, int64_t px, bint* found) noexcept nogil:
    """Index of the first level whose key is >= px's key; ``found`` if that level is px.

    Most changes on OKX are at or next to the touch. After a look at the best level, a key among
    the 32 best is placed by counting the keys below it (``below32``: compares that run side by
    side), where each step of a halving search waits for the load of the step before (about 7
    cycles a step, 9 steps on a 400-level side; perf showed that wait as a fifth of
    ``Books.apply``). A deeper key is placed the same way within its block of 32, found first
    by comparing it with every 32nd key at once (``search_blocks``: perf showed the halving it
    replaces as a third of the merge's cycles on a stream with changes down the book). Short
    sides and CPUs without AVX2 get the branch-free halving (``log2(n)`` steps at any depth)."""
    cdef int64_t k = px * s.sign
    cdef const int64_t* a = s.key
    cdef Py_ssize_t n = s.n, half, lo = 0
    if n == 0:
        found[0] = False
        return 0
    if a[n - 1] <= k:                  # past the best, or the best itself: no search
        found[0] = a[n - 1] == k
        return n - found[0]
    if n >= 32:
        if a[n - 32] > k:
            if has_avx2:
                lo = search_blocks(a, n, k)
                found[0] = a[lo] == k
                return lo
            n -= 31                    # the first key >= k is in a[0 .. n - 32]
        elif has_avx2:
            lo = n - 32 + below32(&a[n - 32], k)
            found[0] = a[lo] == k      # a[n - 1] > k: lo < n
            return lo
    while n > 1:
        half = n >> 1
        lo = lo + half if a[lo + half - 1] < k else lo
        n -= half
    # a[lo] is the first key >= k (one exists: the best key is >= k).
    found[0] = a[lo] == k
    return lo


cdef inline void side_place(Side* s, Py_ssize_t i, const Level* src) noexcept nogil:
    """Overwrite position ``i`` (``0 .. cap - 1``) with ``src`` in its current slot: how a whole
    side is loaded in order (the caller sets ``n`` afterwards)."""
    s.key[i] = src.px * s.sign
    s.pool[s.slot[i]] = src[0]


cdef inline void side_recentre(Side* s) noexcept nogil:
    """Move the window back to the middle of its buffers (it slid to one end)."""
    cdef Py_ssize_t off = s.cap >> 1
    memmove(&s.key_buf[off], s.key, <size_t>s.n * sizeof(int64_t))
    memmove(&s.slot_buf[off], s.slot, <size_t>s.cap * sizeof(int32_t))
    s.off = off
    s.key = &s.key_buf[off]
    s.slot = &s.slot_buf[off]


cdef inline void side_insert_at(Side* s, Py_ssize_t i, const Level* src) noexcept nogil:
    """Insert ``src`` at index ``i`` (``n < cap``), moving the shorter part of the window."""
    cdef int32_t free_slot = s.slot[s.n]
    if i >= s.n - i:
        # Fewer levels above (better than) i: they move up one.
        shift_up(&s.key[i], &s.slot[i], <size_t>(s.n - i))
    else:
        # Fewer below: they move down one, and the window with them; the free slot that would
        # fall off the window's end takes the place of the one just used.
        if s.off == 0:
            side_recentre(s)
        s.slot[s.n] = s.slot[s.cap - 1]
        s.key -= 1
        s.slot -= 1
        s.off -= 1
        shift_down(s.key, s.slot, <size_t>i)
    s.key[i] = src.px * s.sign
    s.slot[i] = free_slot
    s.pool[free_slot] = src[0]
    s.n += 1


cdef inline void side_remove_at(Side* s, Py_ssize_t i) noexcept nogil:
    """Remove index ``i``, moving the shorter part of the window; its slot becomes free."""
    cdef int32_t freed = s.slot[i]
    if i >= s.n - 1 - i:
        shift_down(&s.key[i], &s.slot[i], <size_t>(s.n - i - 1))
        s.slot[s.n - 1] = freed
    else:
        # The levels below i move up one and the window with them; the freed slot joins the free
        # ones at the window's new end.
        if s.off == s.cap:
            side_recentre(s)
        shift_up(s.key, s.slot, <size_t>i)
        s.slot[s.cap] = freed
        s.key += 1
        s.slot += 1
        s.off += 1
    s.n -= 1


cdef inline int side_set(Side* s, const Level* src, int64_t* prev_sz,
                         int64_t* dropped_px) noexcept nogil:
    """Insert or replace ``src``. Returns 0 replaced (``prev_sz`` = the size it had), 1 inserted,
    2 inserted after dropping the deepest level (its price in ``dropped_px``, its size in
    ``prev_sz``), -1 not kept (deeper than everything on a full side). Capacity must be reserved.
    The out-values are what a delta consumer needs (the size before, the level that left); they
    cost nothing when unread."""
    cdef bint found
    cdef Py_ssize_t i = side_search(s, src.px, &found)
    cdef Level* lv
    if found:
        lv = &s.pool[s.slot[i]]
        prev_sz[0] = lv.sz
        lv[0] = src[0]
        return 0
    if s.n < s.limit:
        side_insert_at(s, i, src)
        return 1
    if i == 0:
        return -1
    # Full: the deepest level (index 0) leaves, then src goes in where it belongs (one lower).
    dropped_px[0] = s.pool[s.slot[0]].px
    prev_sz[0] = s.pool[s.slot[0]].sz
    side_remove_at(s, 0)
    side_insert_at(s, i - 1, src)
    return 2


cdef inline bint side_delete(Side* s, int64_t px, int64_t* prev_sz) noexcept nogil:
    """Remove the level at ``px`` (its size goes to ``prev_sz``); False if there was none (normal
    on OKX ``books``)."""
    cdef bint found
    cdef Py_ssize_t i = side_search(s, px, &found)
    if not found:
        return False
    prev_sz[0] = s.pool[s.slot[i]].sz
    side_remove_at(s, i)
    return True
