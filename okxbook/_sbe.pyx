# cython: language_level=3
"""SBE decoder: one binary OKX frame (``/ws/v5/public-sbe``, REST ``books-sbe``) -> ``Scratch``.

OKX's Simple Binary Encoding schema 1 (docs/protocol.md §11): a little-endian 8-byte header
(blockLength, templateId, schemaId, version), the root block, then repeating groups, each with a
4-byte header (blockLength, numInGroup). Every length is honoured as sent: a root or level entry
longer than the fields okxbook reads (a later schema version) is skipped over, and bytes after the
last group (OKX pads frames) are ignored. Every read is bounds-checked; on any problem the decoder
returns -1 with a static reason and the byte offset, and ``Books`` raises ``FrameError`` before
any book is touched.

It is a second producer of the scanner's ``Scratch`` (okxbook/_wire.pxd), so ``Book.apply_scratch``
applies SBE frames with every rule of the JSON path. Values are ``mantissa * 10**exponent``: a
level's integers are the mantissas at ``-exponent`` decimals (a positive exponent multiplies the
mantissa, checked for int64 overflow), and its text is that value printed as OKX prints JSON
(no exponent, no trailing zeros), so ``best_bid`` and friends give the same strings.

Hand-written (no SBE code generator): OKX's schema is seven fixed messages, a generated Python
codec would be far slower than the 0.25 µs budget, and no generator targets Cython.
"""

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t, INT64_MAX
from libc.string cimport memchr, memcpy
from libc.stdlib cimport realloc, free
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize

from okxbook._level cimport Level
from okxbook._wire cimport (Scratch, Item, scratch_reset, KIND_BOOK, KIND_OTHER,
                            ACTION_SNAPSHOT, ACTION_UPDATE)

from okxbook import okx
from okxbook.errors import FrameError

# ---------------------------------------------------------------- the schema's facts (okxbook.okx)

cdef int SCHEMA_ID = okx.SBE_SCHEMA_ID
cdef Py_ssize_t HEADER = okx.SBE_HEADER_BYTES
cdef Py_ssize_t GROUP_HEADER = okx.SBE_GROUP_HEADER_BYTES
cdef Py_ssize_t LEVEL_BLOCK = okx.SBE_LEVEL_BLOCK
cdef int MAX_EXP = okx.SBE_MAX_EXPONENT
cdef int T_BBO = okx.SbeTemplate.BBO_TBT
cdef int T_L2 = okx.SbeTemplate.BOOKS_L2_TBT
cdef int T_EXP = okx.SbeTemplate.BOOKS_L2_TBT_EXPONENT
cdef int T_ELP = okx.SbeTemplate.BOOKS_L2_TBT_ELP
cdef int T_ELP_EXP = okx.SbeTemplate.BOOKS_L2_TBT_ELP_EXPONENT
cdef int T_TRADES = okx.SbeTemplate.TRADES
cdef int T_SNAP = okx.SbeTemplate.SNAPSHOT_DEPTH

cdef enum:
    N_TEMPLATES = 7

cdef int TEMPLATE_ID[N_TEMPLATES]
cdef Py_ssize_t ROOT_MIN[N_TEMPLATES]
cdef const char* CHANNEL[N_TEMPLATES]
cdef Py_ssize_t CHANNEL_LEN[N_TEMPLATES]
_CHANNEL_NAMES = []      # owns the bytes CHANNEL points into

cdef int _i = 0
for _tpl, _root in okx.SBE_ROOT_BLOCK.items():
    _name = okx.SBE_TEMPLATE_CHANNEL[_tpl].encode()
    _CHANNEL_NAMES.append(_name)
    TEMPLATE_ID[_i] = _tpl
    ROOT_MIN[_i] = _root
    CHANNEL[_i] = PyBytes_AS_STRING(_name)
    CHANNEL_LEN[_i] = PyBytes_GET_SIZE(_name)
    _i += 1
if _i != N_TEMPLATES:
    raise ImportError("okxbook.okx.SBE_ROOT_BLOCK does not list the 7 templates _sbe decodes")

cdef int64_t[19] POW10
POW10[0] = 1
for _i in range(1, 19):
    POW10[_i] = POW10[_i - 1] * 10

# ---------------------------------------------------------------- little-endian reads

cdef inline uint16_t u16(const uint8_t* p) noexcept nogil:
    return <uint16_t>(p[0] | (<uint16_t>p[1] << 8))

cdef inline int64_t i64(const uint8_t* p) noexcept nogil:
    return <int64_t>(<uint64_t>p[0] | (<uint64_t>p[1] << 8) | (<uint64_t>p[2] << 16)
                     | (<uint64_t>p[3] << 24) | (<uint64_t>p[4] << 32) | (<uint64_t>p[5] << 40)
                     | (<uint64_t>p[6] << 48) | (<uint64_t>p[7] << 56))

cdef inline int32_t i32(const uint8_t* p) noexcept nogil:
    return <int32_t>(<uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)
                     | (<uint32_t>p[3] << 24))

cdef inline int i8(const uint8_t* p) noexcept nogil:
    return <int8_t>p[0]

# ---------------------------------------------------------------- decoding

ctypedef struct Scale:
    int px_dec          # decimals of a price integer (-exponent, or 0)
    int sz_dec
    int64_t px_mul      # 10**exponent for a positive exponent, else 1
    int64_t sz_mul

ctypedef struct Cur:
    const uint8_t* start
    const uint8_t* end
    Scratch* s


cdef inline int fail(Cur* c, const uint8_t* at, const char* why) noexcept nogil:
    if c.s.error == NULL:
        c.s.error = why
        c.s.error_offset = at - c.start
    return -1


cdef inline bint fits(int64_t v, int64_t f) noexcept nogil:
    cdef int64_t lim = INT64_MAX // f
    return -lim <= v <= lim


cdef int set_scale(Cur* c, Scale* sc, int px_exp, int sz_exp, const uint8_t* at) noexcept nogil:
    if not (-MAX_EXP <= px_exp <= MAX_EXP and -MAX_EXP <= sz_exp <= MAX_EXP):
        return fail(c, at, "exponent outside -18..18")
    sc.px_dec = -px_exp if px_exp < 0 else 0
    sc.px_mul = POW10[px_exp] if px_exp > 0 else 1
    sc.sz_dec = -sz_exp if sz_exp < 0 else 0
    sc.sz_mul = POW10[sz_exp] if sz_exp > 0 else 1
    c.s.max_px_dec = sc.px_dec
    c.s.max_sz_dec = sc.sz_dec
    return 0


cdef const char* PAIRS = (b"00010203040506070809101112131415161718192021222324252627282930313233"
                          b"34353637383940414243444546474849505152535455565758596061626364656667"
                          b"6869707172737475767778798081828384858687888990919293949596979899")


cdef int format_decimal(char* out, int64_t v, int dec) noexcept nogil:
    """``v * 10**-dec`` printed as OKX prints JSON numbers: no exponent, no trailing fractional
    zeros, "0." before a pure fraction. At most 21 bytes (sign, 19 digits, point). Written from
    the end, the integer part two digits at a time."""
    cdef char buf[24]
    cdef char* end = buf + 24
    cdef char* p = end
    cdef uint64_t u = (<uint64_t>(-(v + 1)) + 1) if v < 0 else <uint64_t>v
    cdef int _i
    cdef size_t n
    if u == 0:
        dec = 0
    while dec > 0 and u % 10 == 0:
        u //= 10
        dec -= 1
    for _i in range(dec):
        p -= 1
        p[0] = <char>(c'0' + u % 10)
        u //= 10
    if dec > 0:
        p -= 1
        p[0] = c'.'
    while u >= 100:
        p -= 2
        memcpy(p, PAIRS + 2 * (u % 100), 2)
        u //= 100
    if u >= 10:
        p -= 2
        memcpy(p, PAIRS + 2 * u, 2)
    else:
        p -= 1
        p[0] = <char>(c'0' + u)
    if v < 0:
        p -= 1
        p[0] = c'-'
    n = <size_t>(end - p)
    memcpy(out, p, n)
    return <int>n


cdef inline int fill_level(Cur* c, Level* lv, int64_t px_m, int64_t sz_m, int64_t orders,
                           const Scale* sc, const uint8_t* at) noexcept nogil:
    cdef int n1, n2
    if sz_m < 0:
        return fail(c, at, "negative size")
    if orders < 0:
        return fail(c, at, "negative order count")
    if sc.px_mul != 1 and not fits(px_m, sc.px_mul):
        return fail(c, at, "price does not fit int64")
    if sc.sz_mul != 1 and not fits(sz_m, sc.sz_mul):
        return fail(c, at, "size does not fit int64")
    lv.px = px_m * sc.px_mul
    lv.sz = sz_m * sc.sz_mul
    lv.extra = 0
    lv.orders = orders
    lv.px_dec = <uint8_t>sc.px_dec
    lv.sz_dec = <uint8_t>sc.sz_dec
    lv.extra_dec = 0
    # At most 21 + 1 + 20 + 1 = 43 = LEVEL_TEXT_CAP bytes (a size is never negative).
    n1 = format_decimal(lv.text, lv.px, sc.px_dec)
    lv.text[n1] = c':'
    n2 = format_decimal(lv.text + n1 + 1, lv.sz, sc.sz_dec)
    lv.text[n1 + 1 + n2] = c':'
    lv.px_len = <uint8_t>n1
    lv.sz_len = <uint8_t>n2
    return 0


cdef int reserve_levels(Cur* c, Py_ssize_t more) noexcept nogil:
    cdef Scratch* s = c.s
    cdef Py_ssize_t cap
    cdef Level* grown
    if s.n_levels + more <= s.cap_levels:
        return 0
    cap = s.cap_levels * 2 if s.cap_levels else 1024
    while cap < s.n_levels + more:
        cap *= 2
    grown = <Level*>realloc(s.levels, <size_t>cap * sizeof(Level))
    if grown == NULL:
        s.out_of_memory = True
        return fail(c, c.start, "out of memory")
    s.levels = grown
    s.cap_levels = cap
    return 0


cdef int read_group(Cur* c, const uint8_t** pp, Py_ssize_t* off, Py_ssize_t* count,
                    const Scale* sc) noexcept nogil:
    """One asks/bids group at ``pp[0]``: its header, then ``numInGroup`` entries of the header's
    ``blockLength`` each (at least a level's 20 bytes; the rest of an entry is skipped)."""
    cdef const uint8_t* p = pp[0]
    cdef Py_ssize_t bl, num, _j
    cdef Scratch* s = c.s
    if c.end - p < GROUP_HEADER:
        return fail(c, p, "truncated group header")
    bl = u16(p)
    num = u16(p + 2)
    if bl < LEVEL_BLOCK:
        return fail(c, p, "group blockLength shorter than a level")
    p += GROUP_HEADER
    if num * bl > c.end - p:
        return fail(c, p, "truncated group")
    if reserve_levels(c, num) < 0:
        return -1
    off[0] = s.n_levels
    for _j in range(num):
        if fill_level(c, &s.levels[s.n_levels], i64(p), i64(p + 8), i32(p + 16), sc, p) < 0:
            return -1
        s.n_levels += 1
        p += bl
    count[0] = num
    pp[0] = p
    return 0


cdef inline int template_index(int tpl) noexcept nogil:
    cdef int _i
    for i in range(N_TEMPLATES):
        if TEMPLATE_ID[i] == tpl:
            return i
    return -1


cdef bint is_sbe(const char* buf, Py_ssize_t n) noexcept nogil:
    """Whether a frame is binary: at least a header's 8 bytes, with a NUL among them. Every OKX
    SBE header has one (a blockLength or schemaId below 256), and JSON text never does (a raw
    control character is invalid JSON), so a garbled frame still goes to the decoder that rejects
    it; anything shorter is left to the JSON scanner (which rejects it too)."""
    return n >= HEADER and memchr(buf, 0, <size_t>HEADER) != NULL


cdef int sbe_decode(Scratch* s, SbeInfo* info, const char* buf, Py_ssize_t n) noexcept nogil:
    """Decode one SBE frame into ``s`` (one item) and ``info``; -1 with ``s.error`` on failure."""
    cdef Cur c
    cdef const uint8_t* p = <const uint8_t*>buf
    cdef const uint8_t* r
    cdef const uint8_t* g
    cdef Py_ssize_t bl
    cdef int tpl, idx
    cdef Scale sc
    cdef Item* it = &s.items[0]
    cdef Level* lv
    c.start = p
    c.end = p + n
    c.s = s
    scratch_reset(s)
    info.template_id = 0
    info.inst_id_code = 0
    info.has_code = False
    info.ts_us = info.out_us = 0
    info.px_exponent = info.sz_exponent = 0
    if n < HEADER:
        return fail(&c, c.end, "truncated SBE header")
    bl = u16(p)
    tpl = u16(p + 2)
    info.template_id = tpl
    if u16(p + 4) != SCHEMA_ID:
        return fail(&c, p + 4, "unknown SBE schemaId")
    idx = template_index(tpl)
    if idx < 0:
        return fail(&c, p + 2, "unknown SBE templateId")
    s.channel = CHANNEL[idx]
    s.channel_len = CHANNEL_LEN[idx]
    if n >= HEADER + 8:      # every message starts with instIdCode: name it in any error below
        info.inst_id_code = i64(p + HEADER)
        info.has_code = True
    if bl < ROOT_MIN[idx]:
        return fail(&c, p, "SBE blockLength shorter than the message's fields")
    if n - HEADER < bl:
        return fail(&c, c.end, "truncated SBE root block")
    r = p + HEADER
    g = r + bl                       # the groups start where the header's blockLength says
    info.inst_id_code = i64(r)
    info.ts_us = i64(r + 8)
    it.bids_off = it.asks_off = 0
    it.n_bids = it.n_asks = 0
    it.ts = info.ts_us // 1000 if info.ts_us >= 0 else -((-info.ts_us + 999) // 1000)
    it.has_ts = True
    it.checksum = 0
    it.has_checksum = False
    it.has_bids = it.has_asks = True
    it.prev = -1
    it.has_prev = False
    s.kind = KIND_BOOK
    if tpl == T_SNAP:
        it.seq = i64(r + 16)
        info.px_exponent = i8(r + 24)
        info.sz_exponent = i8(r + 25)
        s.action = ACTION_SNAPSHOT
    elif tpl == T_TRADES:
        info.out_us = i64(r + 16)
        it.seq = i64(r + 24)
        info.px_exponent = i8(r + 59)
        info.sz_exponent = i8(r + 60)
        s.kind = KIND_OTHER
    else:
        info.out_us = i64(r + 16)
        it.seq = i64(r + 24)
        if tpl == T_BBO:
            info.px_exponent = i8(r + 72)
            info.sz_exponent = i8(r + 73)
        else:
            it.prev = i64(r + 32)
            it.has_prev = True
            info.px_exponent = i8(r + 40)
            info.sz_exponent = i8(r + 41)
            s.action = ACTION_UPDATE
            if tpl == T_ELP or tpl == T_ELP_EXP:
                s.kind = KIND_OTHER
    it.has_seq = True
    if it.seq < 0:
        return fail(&c, r, "negative seqId")
    if it.has_prev and it.prev < 0:
        # -1 marks a snapshot on the JSON feed; the SBE feed has none (seed from REST instead).
        return fail(&c, r, "negative prevSeqId")
    if set_scale(&c, &sc, info.px_exponent, info.sz_exponent, r) < 0:
        return -1
    if tpl == T_BBO:
        # A side with size 0 has no best level (an empty image of that side).
        if reserve_levels(&c, 2) < 0:
            return -1
        it.asks_off = 0
        if i64(r + 40) != 0:
            if fill_level(&c, &s.levels[0], i64(r + 32), i64(r + 40), i32(r + 64), &sc, r) < 0:
                return -1
            s.n_levels = 1
            it.n_asks = 1
        it.bids_off = s.n_levels
        if i64(r + 56) != 0:
            lv = &s.levels[s.n_levels]
            if fill_level(&c, lv, i64(r + 48), i64(r + 56), i32(r + 68), &sc, r) < 0:
                return -1
            s.n_levels += 1
            it.n_bids = 1
    elif tpl == T_L2 or tpl == T_ELP or tpl == T_SNAP:
        if read_group(&c, &g, &it.asks_off, &it.n_asks, &sc) < 0:
            return -1
        if read_group(&c, &g, &it.bids_off, &it.n_bids, &sc) < 0:
            return -1
    s.n_items = 1
    s.has_arg = s.has_data = True
    return 0


# ---------------------------------------------------------------- cold-path helpers for Python


def is_sbe_frame(frame: bytes) -> bool:
    """Whether ``Books.apply`` would take ``frame`` for a binary (SBE) frame."""
    return is_sbe(PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame))


def peek(bytes frame not None):
    """``(templateId, instIdCode, seqId, prevSeqId, tsUs, outTime)`` of one SBE frame (prevSeqId
    -1 where the template has none, outTime 0 likewise), after decoding it whole; raises
    ``FrameError`` for a frame ``Books.apply`` would reject as malformed. For the feeder's cold
    path (buffering updates while a REST seed is in flight), not per frame."""
    cdef Scratch s
    cdef SbeInfo info
    cdef int rc
    s.levels = NULL
    s.cap_levels = 0
    s.n_levels = 0
    try:
        rc = sbe_decode(&s, &info, PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame))
        if rc < 0:
            if s.out_of_memory:
                raise MemoryError()
            raise FrameError(s.error.decode("ascii"), s.error_offset)
        return (info.template_id, info.inst_id_code, s.items[0].seq,
                s.items[0].prev if s.items[0].has_prev else -1, info.ts_us, info.out_us)
    finally:
        free(s.levels)


def with_seq_id(bytes frame not None, long long seq_id):
    """A copy of a REST snapshot message (``SnapshotDepthResponseEvent``) with its ``seqId`` set
    to ``seq_id``: the REST splice (§4) enters the snapshot at the ``prevSeqId`` of the first
    buffered update it keeps. ``FrameError`` if ``frame`` is not such a message."""
    info = peek(frame)
    if info[0] != T_SNAP:
        raise FrameError(f"templateId {info[0]} is not a REST snapshot ({T_SNAP})")
    cdef bytes out = PyBytes_FromStringAndSize(PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame))
    cdef char* w = PyBytes_AS_STRING(out)
    cdef uint64_t v = <uint64_t>seq_id
    cdef int k
    for k in range(8):
        w[HEADER + 16 + k] = <char>((v >> (8 * k)) & 0xFF)
    return out
