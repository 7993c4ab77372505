# cython: language_level=3
# C-level access to shared-memory books (``okxbook.share._shm``) for Cython code: a strategy
# compiled against this file reads a published book's top with no Python object and no lock.
#
#     # cython: language_level=3
#     from okxbook.share._shm cimport SharedBook, ShmTop
#
#     def spread_ticks(SharedBook book):
#         cdef ShmTop t
#         if book.read_top(&t) != 1:       # 1 = "live"; -1 = the writer is gone
#             return None
#         return t.ask_ticks - t.bid_ticks
#
# ``SharedBook`` objects come from ``okxbook.share.SharedBooks(name).book(...)``. ``read_top`` is one
# seqlock copy (never torn); prices are ``ticks / 10**px_decimals``, sizes ``lots /
# 10**sz_decimals``. ``okxbook.share.SharedBook.levels_into`` is the fast path for depth (it is one C
# loop already). The segment layout and the memory-order helpers below are the module's own: only
# ``ShmTop``, ``SharedBook.read_top`` and the ``readonly`` attributes are stable API.

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from okxbook._book cimport DepthRow    # one DEPTH_DTYPE row

cdef extern from *:
    """
    #include <stdint.h>
    #include <time.h>
    #include <signal.h>
    #include <errno.h>
    #include <sys/types.h>

    #define OKXBOOK_SHM_MAGIC 0x314d485342584b4fULL   /* "OKXBSHM1" little-endian */

    typedef struct { int64_t px, sz, orders, extra; } okxbook_shm_level;

    typedef struct {
        uint64_t magic;
        uint32_t version, header_size;
        uint32_t n_slots, levels;
        uint64_t slot_size;
        uint64_t generation;
        int64_t writer_pid;
        int64_t created_ns;
        int64_t heartbeat_interval_ns;
        int64_t dead_after_ns;
        char _pad0[128 - 64];
        uint64_t heartbeat_ns;      /* cache line 2: what the writer updates */
        uint64_t closed;
        uint64_t beats;
        char _pad1[128 - 24];
    } okxbook_shm_header;

    typedef struct {
        uint64_t seq;               /* the seqlock counter: odd while the writer writes */
        char _pad0[56];
        int64_t seq_id, prev_seq_id, ts_ms, recv_ns, published_ns, updates;
        int32_t status, px_decimals, sz_decimals, n_bids, n_asks, depth;
        char channel[32];
        char inst_id[64];
        char _pad1[64 - 24];
    } okxbook_shm_slot;

    static inline uint64_t okxbook_load_acquire(const uint64_t* p) {
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
    }
    static inline uint64_t okxbook_load_relaxed(const uint64_t* p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
    }
    static inline void okxbook_store_release(uint64_t* p, uint64_t v) {
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
    }
    static inline void okxbook_store_relaxed(uint64_t* p, uint64_t v) {
        __atomic_store_n(p, v, __ATOMIC_RELAXED);
    }
    static inline void okxbook_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
    static inline void okxbook_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
    static inline void okxbook_cpu_relax(void) {
    #if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
    #elif defined(__aarch64__)
        __asm__ __volatile__("yield");
    #endif
    }
    static inline int64_t okxbook_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    }
    /* 1: the process exists (or is not ours to signal), 0: it is gone. */
    static inline int okxbook_pid_alive(int64_t pid) {
        if (pid <= 0) return 0;
        if (kill((pid_t)pid, 0) == 0) return 1;
        return errno == EPERM;
    }
    """
    uint64_t SHM_MAGIC "OKXBOOK_SHM_MAGIC"

    ctypedef struct shm_level "okxbook_shm_level":
        int64_t px
        int64_t sz
        int64_t orders
        int64_t extra

    ctypedef struct shm_header "okxbook_shm_header":
        uint64_t magic
        uint32_t version
        uint32_t header_size
        uint32_t n_slots
        uint32_t levels
        uint64_t slot_size
        uint64_t generation
        int64_t writer_pid
        int64_t created_ns
        int64_t heartbeat_interval_ns
        int64_t dead_after_ns
        uint64_t heartbeat_ns
        uint64_t closed
        uint64_t beats

    ctypedef struct shm_slot "okxbook_shm_slot":
        uint64_t seq
        int64_t seq_id
        int64_t prev_seq_id
        int64_t ts_ms
        int64_t recv_ns
        int64_t published_ns
        int64_t updates
        int32_t status
        int32_t px_decimals
        int32_t sz_decimals
        int32_t n_bids
        int32_t n_asks
        int32_t depth
        char channel[32]
        char inst_id[64]

    uint64_t load_acquire "okxbook_load_acquire"(const uint64_t* p) noexcept nogil
    uint64_t load_relaxed "okxbook_load_relaxed"(const uint64_t* p) noexcept nogil
    void store_release "okxbook_store_release"(uint64_t* p, uint64_t v) noexcept nogil
    void store_relaxed "okxbook_store_relaxed"(uint64_t* p, uint64_t v) noexcept nogil
    void fence_acquire "okxbook_fence_acquire"() noexcept nogil
    void fence_release "okxbook_fence_release"() noexcept nogil
    void cpu_relax "okxbook_cpu_relax"() noexcept nogil
    int64_t now_ns "okxbook_now_ns"() noexcept nogil
    int pid_alive "okxbook_pid_alive"(int64_t pid) noexcept nogil


cdef struct ShmTop:
    int status          # index into STATUSES (1 = live), or -1: writer gone / segment closed
    int64_t seq_id
    int64_t ts_ms       # exchange ts of the book's last frame
    int64_t recv_ns     # when the feeder received it
    int64_t bid_ticks   # NO_BID (INT64_MIN) on an empty side
    int64_t bid_lots
    int64_t ask_ticks   # NO_ASK (INT64_MAX) on an empty side
    int64_t ask_lots
    int32_t n_bids
    int32_t n_asks
    int32_t px_decimals
    int32_t sz_decimals


cdef class ShmReader:
    cdef unsigned char[::1] _buf
    cdef unsigned char* _base
    cdef shm_header* _h
    cdef int64_t _pid_checked_ns
    cdef bint _pid_gone
    cdef bint _check_pid
    cdef readonly int n_slots
    cdef readonly int levels
    cdef readonly uint64_t generation
    cdef readonly int64_t writer_pid

    cdef bint _writer_alive(self) noexcept


cdef class SharedBook:
    cdef ShmReader _reader
    cdef shm_slot* _slot
    cdef readonly str channel
    cdef readonly str inst_id
    cdef readonly int64_t retries    # copies retried because the writer was writing

    cdef int read_top(self, ShmTop* out) noexcept
    cdef int _check(self) except -1
    cdef bint _begin(self, uint64_t* seq, int* spins) noexcept
    cdef bint _end(self, uint64_t seq, int* spins) noexcept
    cdef str _status(self, int code)
    cdef tuple _copy(self, DepthRow* rb, Py_ssize_t cap_b, DepthRow* ra, Py_ssize_t cap_a)
