# cython: language_level=3
"""Frame scanner: one raw OKX text frame -> ``Scratch``, with no Python object per level.

A strict JSON reader specialised to OKX's push shapes (docs/protocol.md §2): it
walks the top-level object, reads ``arg.channel``/``arg.instId``, ``action`` and each ``data`` item's
``asks``/``bids``/``ts``/``checksum``/``seqId``/``prevSeqId``, and skips any other key. Every read is
bounds-checked; on any problem it returns -1 with a static reason and the byte offset, and the caller
raises ``FrameError`` before any book is touched. Prices and sizes are parsed straight from their
strings into integers at the decimals they were printed with; the strings themselves are copied
verbatim into the level (the checksum is defined on them). It owns no book logic.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t, INT64_MAX, INT32_MIN, INT32_MAX, UINT32_MAX
from libc.string cimport memcpy, memcmp
from libc.stdlib cimport realloc, free

from okxbook._level cimport Level, LEVEL_TEXT_CAP, MAX_DECIMALS

ctypedef struct Cur:
    const char* p
    const char* end
    const char* start
    Scratch* s


cdef inline int fail(Cur* c, const char* why) noexcept nogil:
    if c.s.error == NULL:
        c.s.error = why
        c.s.error_offset = c.p - c.start
    return -1


cdef inline void skip_ws(Cur* c) noexcept nogil:
    while c.p < c.end and (c.p[0] == c' ' or c.p[0] == c'\n' or c.p[0] == c'\r' or c.p[0] == c'\t'):
        c.p += 1


cdef inline bint is_digit(char ch) noexcept nogil:
    return c'0' <= ch <= c'9'


cdef inline int expect(Cur* c, char ch, const char* why) noexcept nogil:
    skip_ws(c)
    if c.p >= c.end:
        return fail(c, "truncated frame")
    if c.p[0] != ch:
        return fail(c, why)
    c.p += 1
    return 0


cdef inline int next_or_close(Cur* c, char close, const char* why) noexcept nogil:
    """After a member: 1 if a ',' follows (more members), 0 if ``close`` ends the container."""
    skip_ws(c)
    if c.p >= c.end:
        return fail(c, "truncated frame")
    if c.p[0] == c',':
        c.p += 1
        return 1
    if c.p[0] == close:
        c.p += 1
        return 0
    return fail(c, why)


cdef inline bint cont(unsigned char b) noexcept nogil:
    return (b & 0xC0) == 0x80


cdef inline Py_ssize_t utf8_length(const unsigned char* p, Py_ssize_t avail) noexcept nogil:
    """Length of the well-formed UTF-8 sequence at ``p`` (lead byte >= 0x80): 2-4, -1 if it is
    ill-formed (stray continuation, overlong form, surrogate, past U+10FFFF; Unicode 15 Table 3-7),
    0 if the buffer ends inside an otherwise valid sequence."""
    cdef unsigned char b0 = p[0]
    cdef unsigned char lo = 0x80, hi = 0xBF
    cdef Py_ssize_t k, i
    if 0xC2 <= b0 <= 0xDF:
        k = 2
    elif 0xE0 <= b0 <= 0xEF:
        k = 3
        if b0 == 0xE0:
            lo = 0xA0
        elif b0 == 0xED:
            hi = 0x9F
    elif 0xF0 <= b0 <= 0xF4:
        k = 4
        if b0 == 0xF0:
            lo = 0x90
        elif b0 == 0xF4:
            hi = 0x8F
    else:
        return -1
    if avail < 2:
        return 0
    if not (lo <= p[1] <= hi):
        return -1
    for i in range(2, k):
        if i >= avail:
            return 0
        if not cont(p[i]):
            return -1
    return k


cdef inline int hex4(const char* p) noexcept nogil:
    """The 4 hex digits at ``p`` as a number, -1 if they are not hex digits."""
    cdef int v = 0, i
    cdef char ch
    for i in range(4):
        ch = p[i]
        if c'0' <= ch <= c'9':
            v = v * 16 + (ch - c'0')
        elif c'a' <= ch <= c'f':
            v = v * 16 + (ch - c'a' + 10)
        elif c'A' <= ch <= c'F':
            v = v * 16 + (ch - c'A' + 10)
        else:
            return -1
    return v


cdef inline Py_ssize_t escape_length(const char* p, const char* end) noexcept nogil:
    """Length of the JSON escape at ``p`` (a backslash; RFC 8259 §7): 2, 6 or 12 (a surrogate
    pair), -1 if it is not one (an unknown letter, short hex, a lone surrogate), 0 if the buffer
    ends inside it."""
    cdef int u, lo
    if end - p < 2:
        return 0
    cdef char e = p[1]
    if (e == c'"' or e == c'\\' or e == c'/' or e == c'b' or e == c'f' or e == c'n'
            or e == c'r' or e == c't'):
        return 2
    if e != c'u':
        return -1
    if end - p < 6:
        return 0
    u = hex4(p + 2)
    if u < 0 or 0xDC00 <= u <= 0xDFFF:
        return -1
    if not (0xD800 <= u <= 0xDBFF):
        return 6
    if end - p < 12:
        return 0
    if p[6] != c'\\' or p[7] != c'u':
        return -1
    lo = hex4(p + 8)
    return 12 if 0xDC00 <= lo <= 0xDFFF else -1


cdef int read_string(Cur* c, const char** out, Py_ssize_t* n) noexcept nogil:
    """Reads a JSON string; returns 1 if it holds a backslash escape (left undecoded), 0 if not."""
    skip_ws(c)
    if c.p >= c.end:
        return fail(c, "truncated frame")
    if c.p[0] != c'"':
        return fail(c, "expected a string")
    cdef const char* q = c.p + 1
    cdef int escaped = 0
    cdef Py_ssize_t k
    while q < c.end:
        if c.end - q >= 8:                  # skip plain bytes eight at a time
            k = plain8(q)
            q += k
            if k == 8:
                continue
        if q[0] == c'"':
            out[0] = c.p + 1
            n[0] = q - c.p - 1
            c.p = q + 1
            return escaped
        if q[0] == c'\\':
            escaped = 1
            k = escape_length(q, c.end)
            if k <= 0:
                c.p = q
                return fail(c, "truncated frame" if k == 0 else "invalid escape in a string")
            q += k
            continue
        if <unsigned char>q[0] < 0x20:
            c.p = q
            return fail(c, "control character in a string")
        if <unsigned char>q[0] >= 0x80:
            # JSON text is UTF-8 (RFC 8259 §8.1): a name that is not would decode to replacement
            # characters, and two different instIds would become one.
            k = utf8_length(<const unsigned char*>q, c.end - q)
            if k <= 0:
                c.p = q
                return fail(c, "truncated frame" if k == 0 else "invalid UTF-8 in a string")
            q += k
            continue
        q += 1
    c.p = c.end
    return fail(c, "truncated frame")


cdef inline int read_key(Cur* c, const char** out, Py_ssize_t* n) noexcept nogil:
    """A member name the scanner compares: an escape would have to be decoded to mean what it
    means in JSON ("s\\u0065qId" is "seqId"), so a name with any escape is rejected instead."""
    cdef const char* at = c.p
    cdef int r = read_string(c, out, n)
    if r == 1:
        c.p = at
        skip_ws(c)
        return fail(c, "escape in a member name")
    return r


cdef int read_plain_string(Cur* c, const char** out, Py_ssize_t* n, const char* what) noexcept nogil:
    """A string okxbook uses as a value (channel, instId, a number): escapes are not allowed."""
    cdef int r = read_string(c, out, n)
    if r == 1:
        return fail(c, what)
    return r


cdef inline int skip_number(Cur* c) noexcept nogil:
    """A JSON number (RFC 8259 §6): ``-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?``. One whose
    magnitude reaches 1e308 is rejected too (as a double it would be, or nearly be, infinite;
    strict parsers refuse it), decided from its digit count and exponent, without converting."""
    cdef Py_ssize_t int_digits = 0, lead_zeros = 0
    cdef int64_t exp = 0
    cdef bint exp_neg = False, seen_nonzero = False
    if c.p < c.end and c.p[0] == c'-':
        c.p += 1
    if c.p >= c.end:
        return fail(c, "truncated frame")
    if c.p[0] == c'0':
        c.p += 1
        if c.p < c.end and is_digit(c.p[0]):
            return fail(c, "leading zero in a number")
    elif is_digit(c.p[0]):
        while c.p < c.end and is_digit(c.p[0]):
            int_digits += 1
            c.p += 1
    else:
        return fail(c, "malformed number")
    if c.p < c.end and c.p[0] == c'.':
        c.p += 1
        if c.p >= c.end:
            return fail(c, "truncated frame")
        if not is_digit(c.p[0]):
            return fail(c, "malformed number")
        while c.p < c.end and is_digit(c.p[0]):
            if int_digits == 0 and not seen_nonzero:
                if c.p[0] == c'0':
                    lead_zeros += 1
                else:
                    seen_nonzero = True
            c.p += 1
    if c.p < c.end and (c.p[0] == c'e' or c.p[0] == c'E'):
        c.p += 1
        if c.p < c.end and (c.p[0] == c'+' or c.p[0] == c'-'):
            exp_neg = c.p[0] == c'-'
            c.p += 1
        if c.p >= c.end:
            return fail(c, "truncated frame")
        if not is_digit(c.p[0]):
            return fail(c, "malformed number")
        while c.p < c.end and is_digit(c.p[0]):
            if exp < 100000:
                exp = exp * 10 + (c.p[0] - c'0')
            c.p += 1
    # Decimal exponent of the leading digit: int_digits - 1 (or -1 - lead_zeros) plus exp.
    if (int_digits > 0 or seen_nonzero) and not exp_neg:
        if (int_digits - 1 if int_digits > 0 else -1 - lead_zeros) + exp >= 308:
            return fail(c, "number out of double range")
    return 0


cdef inline int skip_literal(Cur* c, const char* lit, Py_ssize_t n) noexcept nogil:
    if c.end - c.p < n:
        if memcmp(c.p, lit, <size_t>(c.end - c.p)) == 0:
            c.p = c.end
            return fail(c, "truncated frame")
        return fail(c, "expected a value")
    if memcmp(c.p, lit, <size_t>n) != 0:
        return fail(c, "expected a value")
    c.p += n
    return 0


cdef int skip_value(Cur* c) noexcept nogil:
    """Skips any JSON value, validating it as a strict parser would (RFC 8259: structure, numbers,
    literals, strings and their escapes, UTF-8) without building anything; nesting is bounded."""
    cdef char stack[64]
    cdef int depth = 0
    cdef const char* s
    cdef Py_ssize_t n
    cdef char ch
    while True:
        # A value is expected here.
        skip_ws(c)
        if c.p >= c.end:
            return fail(c, "truncated frame")
        ch = c.p[0]
        if ch == c'{' or ch == c'[':
            if depth == 64:
                return fail(c, "nesting too deep")
            stack[depth] = c'}' if ch == c'{' else c']'
            depth += 1
            c.p += 1
            skip_ws(c)
            if c.p < c.end and c.p[0] == stack[depth - 1]:
                c.p += 1
                depth -= 1
            elif ch == c'{':
                if read_string(c, &s, &n) < 0 or expect(c, c':', "expected ':'") < 0:
                    return -1
                continue
            else:
                continue
        elif ch == c'"':
            if read_string(c, &s, &n) < 0:
                return -1
        elif ch == c'-' or is_digit(ch):
            if skip_number(c) < 0:
                return -1
        elif ch == c't':
            if skip_literal(c, "true", 4) < 0:
                return -1
        elif ch == c'f':
            if skip_literal(c, "false", 5) < 0:
                return -1
        elif ch == c'n':
            if skip_literal(c, "null", 4) < 0:
                return -1
        else:
            return fail(c, "expected a value")
        # A value ended: close containers, or go on to the next member or element.
        while True:
            if depth == 0:
                return 0
            skip_ws(c)
            if c.p >= c.end:
                return fail(c, "truncated frame")
            ch = c.p[0]
            if ch == stack[depth - 1]:
                c.p += 1
                depth -= 1
                continue
            if ch != c',':
                return fail(c, "expected ',' or a closing bracket")
            c.p += 1
            if stack[depth - 1] == c'}':
                if read_string(c, &s, &n) < 0 or expect(c, c':', "expected ':'") < 0:
                    return -1
            break


cdef int read_int(Cur* c, int64_t* out) noexcept nogil:
    """A JSON integer (seqId, prevSeqId, checksum): no fraction, no exponent, fits int64. The digits
    are read through a local pointer (``c.p`` is stored once, not once a digit)."""
    cdef bint neg = False
    cdef int64_t v = 0
    cdef unsigned int d
    skip_ws(c)
    cdef const char* p = c.p
    cdef const char* end = c.end
    if p < end and p[0] == c'-':
        neg = True
        p += 1
    if p >= end:
        c.p = p
        return fail(c, "truncated frame")
    if not is_digit(p[0]):
        c.p = p
        return fail(c, "expected an integer")
    if p[0] == c'0' and p + 1 < end and is_digit(p[1]):
        c.p = p
        return fail(c, "leading zero in an integer")
    cdef const char* stop = p + 18 if end - p > 18 else end
    cdef uint64_t chunk
    cdef int k
    if end - p >= 8:
        # OKX's seqIds have 10-11 digits: 8-byte steps instead of a loop over the bytes, each
        # where 8 bytes are readable (the seqId closing a frame, "15493262034}]}", has 14 after
        # it); the loops below take whatever digits follow, as before.
        k = digits8(p, &chunk)
        v = <int64_t>chunk
        p += k
        if k == 8 and end - p >= 8:
            k = digits8(p, &chunk)
            v = v * <int64_t>POW10_8[k] + <int64_t>chunk
            p += k
    while p < stop:                     # 18 digits cannot pass int64
        d = <unsigned char>p[0] - 48
        if d > 9:
            break
        v = v * 10 + d
        p += 1
    while p < end and is_digit(p[0]):
        d = <unsigned char>p[0] - 48
        if v > (INT64_MAX - <int64_t>d) // 10:
            c.p = p
            return fail(c, "integer does not fit int64")
        v = v * 10 + d
        p += 1
    c.p = p
    if p < end and (p[0] == c'.' or p[0] == c'e' or p[0] == c'E'):
        return fail(c, "expected an integer")
    out[0] = -v if neg else v
    return 0


cdef inline int parse_decimal(const char* p, Py_ssize_t n, bint allow_neg, int64_t* mant,
                              uint8_t* dec) noexcept nogil:
    """``-?[0-9]+(\\.[0-9]+)?`` -> integer mantissa and decimals. 0 ok, 1 malformed, 2 too large."""
    cdef Py_ssize_t i = 0
    cdef bint neg = False
    cdef int64_t v = 0
    cdef int d = -1, digit
    if n == 0:
        return 1
    if p[0] == c'-':
        if not allow_neg:
            return 1
        neg = True
        i = 1
    if i >= n or not is_digit(p[i]):
        return 1
    while i < n:
        if is_digit(p[i]):
            digit = p[i] - c'0'
            if v > (INT64_MAX - digit) // 10:
                return 2
            v = v * 10 + digit
            if d >= 0:
                d += 1
        elif p[i] == c'.' and d < 0:
            d = 0
        else:
            return 1
        i += 1
    if d == 0:
        return 1
    if d > MAX_DECIMALS:
        return 2
    mant[0] = -v if neg else v
    dec[0] = <uint8_t>(d if d > 0 else 0)
    return 0


cdef inline int read_number_field(Cur* c, const char** s, Py_ssize_t* n, bint allow_neg,
                                  int64_t* mant, uint8_t* dec, const char* malformed,
                                  const char* too_large) noexcept nogil:
    cdef const char* at = c.p
    if read_plain_string(c, s, n, malformed) < 0:
        return -1
    cdef int r = parse_decimal(s[0], n[0], allow_neg, mant, dec)
    if r != 0:
        c.p = at
        return fail(c, malformed if r == 1 else too_large)
    return 0


cdef inline void track_decimals(Scratch* s, const Level* lv) noexcept nogil:
    if lv.px_dec > s.max_px_dec:
        s.max_px_dec = lv.px_dec
    if lv.sz_dec > s.max_sz_dec:
        s.max_sz_dec = lv.sz_dec
    if lv.extra_dec > s.max_sz_dec:
        s.max_sz_dec = lv.extra_dec


cdef int reserve_level(Cur* c) noexcept nogil:
    cdef Scratch* s = c.s
    cdef Py_ssize_t cap
    cdef Level* grown
    if s.n_levels < s.cap_levels:
        return 0
    cap = s.cap_levels * 2 if s.cap_levels else 1024
    grown = <Level*>realloc(s.levels, <size_t>cap * sizeof(Level))
    if grown == NULL:
        s.out_of_memory = True
        return fail(c, "out of memory")
    s.levels = grown
    s.cap_levels = cap
    return 0


cdef int read_level(Cur* c) noexcept nogil:
    """``["px","sz","third","orders"]`` into the next scratch level."""
    cdef const char* s
    cdef Py_ssize_t n
    cdef uint8_t orders_dec
    if reserve_level(c) < 0 or expect(c, c'[', "a level must be an array") < 0:
        return -1
    cdef Level* lv = &c.s.levels[c.s.n_levels]
    if read_number_field(c, &s, &n, True, &lv.px, &lv.px_dec, "malformed price",
                         "price too long or too precise") < 0:
        return -1
    if n > LEVEL_TEXT_CAP - 3:
        return fail(c, "price string too long")
    memcpy(lv.text, s, <size_t>n)
    lv.px_len = <uint8_t>n
    lv.text[n] = c':'
    if expect(c, c',', "a level needs 4 fields") < 0:
        return -1
    if read_number_field(c, &s, &n, False, &lv.sz, &lv.sz_dec, "malformed size",
                         "size too long or too precise") < 0:
        return -1
    if lv.px_len + n + 2 > LEVEL_TEXT_CAP:
        return fail(c, "price and size strings too long")
    memcpy(lv.text + lv.px_len + 1, s, <size_t>n)
    lv.sz_len = <uint8_t>n
    lv.text[lv.px_len + 1 + n] = c':'
    if expect(c, c',', "a level needs 4 fields") < 0:
        return -1
    if read_number_field(c, &s, &n, False, &lv.extra, &lv.extra_dec, "malformed third field",
                         "third field too long or too precise") < 0:
        return -1
    if expect(c, c',', "a level needs 4 fields") < 0:
        return -1
    if read_number_field(c, &s, &n, False, &lv.orders, &orders_dec, "malformed order count",
                         "order count too large") < 0:
        return -1
    if orders_dec != 0:
        return fail(c, "malformed order count")
    if expect(c, c']', "a level has 4 fields") < 0:
        return -1
    track_decimals(c.s, lv)
    c.s.n_levels += 1
    return 0


cdef extern from *:
    """
    /* The common case of an OKX number string, 8 bytes at a time (SWAR): find how many of the next
       8 bytes are ASCII digits, and their value, without a loop over the bytes. */
    static const uint64_t okxbook_pow10_8[9] = {1, 10, 100, 1000, 10000, 100000, 1000000,
                                                10000000, 100000000};

    static inline int okxbook_digits8(const char* p, uint64_t* val) {
        uint64_t v, x, nd;
        int k;
        memcpy(&v, p, 8);
        x = v ^ 0x3030303030303030ULL;                 /* a digit byte becomes 0..9 */
        /* A byte is not a digit if its high nibble is set now, or adding 6 carries into it; a
           carry out of a non-digit byte can only mark bytes after it, never an earlier one. */
        nd = (x | (x + 0x0606060606060606ULL)) & 0xF0F0F0F0F0F0F0F0ULL;
        k = nd ? (__builtin_ctzll(nd) >> 3) : 8;
        if (k == 0) { *val = 0; return 0; }
        if (k < 8) x <<= 8 * (8 - k);                 /* leading zeros in front of k digits */
        x = (x * 10) + (x >> 8);
        /* pairs, then quads, then all eight (simdjson's parse_eight_digits_unrolled) */
        x = (((x & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32)))
             + (((x >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >> 32;
        *val = (uint32_t)x;
        return k;
    }

    /* How many of the 8 bytes at p are plain string bytes: not a quote, not a backslash, not a
       control character, not part of a UTF-8 sequence. Each test below flags its first matching byte
       exactly (a borrow can only mark bytes after a true match), so the lowest flag is right. */
    static inline int okxbook_plain8(const char* p) {
        const uint64_t ones = 0x0101010101010101ULL;
        uint64_t v, quote, bslash, m;
        memcpy(&v, p, 8);
        quote = v ^ (ones * '"');
        bslash = v ^ (ones * 0x5C);      /* backslash */
        m = ((quote - ones) & ~quote) | ((bslash - ones) & ~bslash) | ((v - ones * 0x20) & ~v) | v;
        m &= 0x8080808080808080ULL;
        return m ? (__builtin_ctzll(m) >> 3) : 8;
    }

    /* p is just past the opening quote, with at least 32 bytes readable: -?[0-9]+([.][0-9]+)?"
       with at most 18 digits in all (so it cannot pass int64). Returns the byte after the closing
       quote, or NULL for anything else: the caller then reads the level the careful way. */
    static inline const char* okxbook_fast_number(const char* p, int allow_neg, int64_t* mant,
                                                  uint8_t* dec) {
        uint64_t v, chunk;
        int k, total, d = 0, neg = 0;
        if (*p == '-') {
            if (!allow_neg) return NULL;
            neg = 1;
            p++;
        }
        if ((unsigned char)(p[0] - '0') < 10 && (unsigned char)(p[1] - '0') >= 10) {
            v = (uint64_t)(p[0] - '0');                  /* one digit ("0.0148"): no SWAR step */
            k = 1;
        } else {
            k = okxbook_digits8(p, &v);
            if (k == 0) return NULL;
        }
        total = k;
        p += k;
        while (k == 8 && (unsigned char)(*p - '0') < 10) {   /* more digits than one word */
            k = okxbook_digits8(p, &chunk);
            total += k;
            if (total > 18) return NULL;
            v = v * okxbook_pow10_8[k] + chunk;
            p += k;
        }
        if (*p == '.' && (unsigned char)(p[1] - '0') < 10 && (unsigned char)(p[2] - '0') >= 10) {
            if (total >= 18) return NULL;               /* one decimal ("43255.2") */
            v = v * 10 + (uint64_t)(p[1] - '0');
            d = 1;
            p += 2;
        } else if (*p == '.') {
            p++;
            k = 8;
            while (k == 8 && (d == 0 || (unsigned char)(*p - '0') < 10)) {
                k = okxbook_digits8(p, &chunk);
                total += k;
                d += k;
                if (total > 18) return NULL;
                v = v * okxbook_pow10_8[k] + chunk;
                p += k;
            }
            if (d == 0) return NULL;
        }
        if (*p != '"') return NULL;
        *mant = neg ? -(int64_t)v : (int64_t)v;
        *dec = (uint8_t)d;
        return p + 1;
    }
    """
    const char* fast_number "okxbook_fast_number" (const char* p, bint allow_neg, int64_t* mant,
                                                   uint8_t* dec) noexcept nogil
    int digits8 "okxbook_digits8" (const char* p, uint64_t* val) noexcept nogil
    const uint64_t POW10_8 "okxbook_pow10_8"[9]
    int plain8 "okxbook_plain8" (const char* p) noexcept nogil


cdef inline const char* fast_count(const char* p, int64_t* out) noexcept nogil:
    """The order count: ``[0-9]{1,18}"`` at ``p`` (32 bytes readable), byte by byte (it is short);
    NULL for anything else."""
    cdef const char* q = p
    cdef int64_t v = 0
    cdef unsigned int d = <unsigned char>q[0] - 48
    cdef unsigned int d1 = <unsigned char>q[1] - 48
    if d < 10:                              # one or two digits: most levels have few orders
        if q[1] == c'"':
            out[0] = d
            return q + 2
        if d1 < 10 and q[2] == c'"':
            out[0] = d * 10 + d1
            return q + 3
    while d < 10 and q - p < 18:
        v = v * 10 + d
        q += 1
        d = <unsigned char>q[0] - 48
    if q == p or q[0] != c'"':
        return NULL
    out[0] = v
    return q + 1


cdef inline int fast_level(Cur* c) noexcept nogil:
    """``["px","sz","third","orders"]`` written compactly, as OKX does, in one pass into the next
    scratch level (``reserve_level`` done). 0 done (``c.p`` past the ``]``), 1 not this shape:
    nothing consumed, the caller uses ``read_level``."""
    cdef const char* p = c.p
    cdef const char* end = c.end
    cdef const char* px
    cdef const char* sz
    cdef Py_ssize_t px_len, sz_len
    cdef Level* lv = &c.s.levels[c.s.n_levels]
    # A number may read 32 bytes from its start (18 digits, a sign and a dot, then 8 bytes more).
    if end - p < 34 or p[0] != c'[' or p[1] != c'"':
        return 1
    px = p + 2
    p = fast_number(px, True, &lv.px, &lv.px_dec)
    if p == NULL or end - p < 34 or p[0] != c',' or p[1] != c'"':
        return 1
    px_len = p - 1 - px
    sz = p + 2
    p = fast_number(sz, False, &lv.sz, &lv.sz_dec)
    if p == NULL or end - p < 34 or p[0] != c',' or p[1] != c'"':
        return 1
    sz_len = p - 1 - sz
    if p[2] == c'0' and p[3] == c'"':        # the third field is "0" outside books-rpi
        lv.extra = 0
        lv.extra_dec = 0
        p += 4
    else:
        p = fast_number(p + 2, False, &lv.extra, &lv.extra_dec)
        if p == NULL:
            return 1
    if end - p < 34 or p[0] != c',' or p[1] != c'"':
        return 1
    p = fast_count(p + 2, &lv.orders)
    if p == NULL or p >= end or p[0] != c']':
        return 1
    # "px:sz:" (at most 20 + 19 + 2 bytes: fits LEVEL_TEXT_CAP). Fixed-size copies compile to a
    # few vector moves (the source bytes are readable: checked above); what they copy past each
    # string is overwritten next or lies past the text in use.
    memcpy(lv.text, px, 24)
    lv.text[px_len] = c':'
    if px_len + 1 + 16 <= LEVEL_TEXT_CAP and sz_len <= 16:
        memcpy(lv.text + px_len + 1, sz, 16)
    else:
        memcpy(lv.text + px_len + 1, sz, <size_t>sz_len)
    lv.text[px_len + 1 + sz_len] = c':'
    lv.px_len = <uint8_t>px_len
    lv.sz_len = <uint8_t>sz_len
    track_decimals(c.s, lv)
    c.s.n_levels += 1
    c.p = p + 1
    return 0


cdef int read_levels(Cur* c, Py_ssize_t* off, Py_ssize_t* count) noexcept nogil:
    cdef int more
    if expect(c, c'[', "asks/bids must be an array") < 0:
        return -1
    off[0] = c.s.n_levels
    skip_ws(c)
    if c.p < c.end and c.p[0] == c']':
        c.p += 1
        count[0] = 0
        return 0
    while True:
        if reserve_level(c) < 0:
            return -1
        if fast_level(c) != 0 and read_level(c) < 0:
            return -1
        # The common "],[" between two levels without a call.
        if c.end - c.p >= 2 and c.p[0] == c',' and c.p[1] == c'[':
            c.p += 1
            continue
        more = next_or_close(c, c']', "expected ',' or ']' after a level")
        if more < 0:
            return -1
        if more == 0:
            break
    count[0] = c.s.n_levels - off[0]
    return 0


cdef inline bint key_is(const char* k, Py_ssize_t n, const char* lit, Py_ssize_t lit_n) noexcept nogil:
    return n == lit_n and memcmp(k, lit, <size_t>n) == 0


cdef int read_ts(Cur* c, int64_t* out) noexcept nogil:
    """``ts`` is a string of milliseconds on OKX; a bare integer is accepted too."""
    cdef const char* s
    cdef Py_ssize_t n, i
    cdef int64_t v = 0
    cdef uint64_t chunk, chunk2
    skip_ws(c)
    if c.p < c.end and c.p[0] != c'"':
        return read_int(c, out)
    cdef const char* at = c.p
    if read_plain_string(c, &s, &n, "malformed ts") < 0:
        return -1
    if n == 0 or n > 18:
        c.p = at
        return fail(c, "malformed ts")
    if n == 13 and c.end - s >= 16:
        # Milliseconds since 1970 have 13 digits until the year 2286: two 8-byte steps (the
        # string's closing quote ends the second).
        if digits8(s, &chunk) == 8 and digits8(s + 8, &chunk2) == 5:
            out[0] = <int64_t>(chunk * 100000 + chunk2)
            return 0
        c.p = at
        return fail(c, "malformed ts")
    for i in range(n):
        if not is_digit(s[i]):
            c.p = at
            return fail(c, "malformed ts")
        v = v * 10 + (s[i] - c'0')
    out[0] = v
    return 0


cdef inline int member_name(Cur* c, const char** k, Py_ssize_t* kn) noexcept nogil:
    """A member name and the ':' after it. OKX writes ``"name":`` with no space and plain bytes:
    that case is read eight bytes at a time; anything else (spaces, escapes, non-ASCII, a long
    name) goes through ``read_key``, which accepts and rejects as it always did."""
    cdef const char* p = c.p
    cdef int j, j2
    if c.end - p >= 24 and p[0] == c'"':
        j = plain8(p + 1)
        if j < 8:
            if p[1 + j] == c'"' and p[2 + j] == c':':
                k[0] = p + 1
                kn[0] = j
                c.p = p + 3 + j
                return 0
        else:
            j2 = plain8(p + 9)
            if j2 < 8 and p[9 + j2] == c'"' and p[10 + j2] == c':':
                k[0] = p + 1
                kn[0] = 8 + j2
                c.p = p + 11 + j2
                return 0
    if read_key(c, k, kn) < 0 or expect(c, c':', "expected ':'") < 0:
        return -1
    return 0


cdef enum ItemKey:
    ITEM_OTHER = 0      # a member okxbook does not read (skipped, validated)
    ITEM_ASKS
    ITEM_BIDS
    ITEM_TS
    ITEM_CHECKSUM
    ITEM_SEQ
    ITEM_PREV
    ITEM_INST           # books5 and bbo-tbt repeat the instId in the item: skipped like OTHER


cdef extern from *:
    """
    /* A data item's member names as written, quote to colon, by ItemKey, zero-padded to 16 bytes
       (okxbook_item_name_at compares two words); both readers of an item name them from here. */
    static const char okxbook_item_names[8][16] = {"", "\\"asks\\":", "\\"bids\\":", "\\"ts\\":",
        "\\"checksum\\":", "\\"seqId\\":", "\\"prevSeqId\\":", "\\"instId\\":"};
    static const int okxbook_item_name_len[8] = {0, 7, 7, 5, 11, 8, 12, 9};
    #define OKXBOOK_MASK_LO(n) ((n) >= 8 ? ~0ULL : (1ULL << (8 * (n))) - 1)
    #define OKXBOOK_MASK_HI(n) ((n) <= 8 ? 0ULL : (n) >= 16 ? ~0ULL : (1ULL << (8 * ((n) - 8))) - 1)
    #define OKXBOOK_MASKS(n) {OKXBOOK_MASK_LO(n), OKXBOOK_MASK_HI(n)}
    static const uint64_t okxbook_item_name_mask[8][2] = {OKXBOOK_MASKS(0), OKXBOOK_MASKS(7),
        OKXBOOK_MASKS(7), OKXBOOK_MASKS(5), OKXBOOK_MASKS(11), OKXBOOK_MASKS(8), OKXBOOK_MASKS(12),
        OKXBOOK_MASKS(9)};

    /* By a name's first letter, the one item member it can be (no two start alike). */
    static const unsigned char okxbook_item_by_letter[256] = {['a'] = 1, ['b'] = 2, ['t'] = 3,
        ['c'] = 4, ['s'] = 5, ['p'] = 6, ['i'] = 7};

    /* The item member key's name is at p (16 bytes readable): two word compares. */
    static inline int okxbook_item_name_at(const char* p, int key) {
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, p, 8);
        memcpy(&a1, p + 8, 8);
        memcpy(&b0, okxbook_item_names[key], 8);
        memcpy(&b1, okxbook_item_names[key] + 8, 8);
        return (((a0 ^ b0) & okxbook_item_name_mask[key][0])
                | ((a1 ^ b1) & okxbook_item_name_mask[key][1])) == 0;
    }
    """
    const char ITEM_NAMES "okxbook_item_names"[8][16]
    const int ITEM_NAME_LEN "okxbook_item_name_len"[8]
    bint item_name_at "okxbook_item_name_at" (const char* p, int key) noexcept nogil
    const unsigned char ITEM_BY_LETTER "okxbook_item_by_letter"[256]


cdef inline int item_by_letter(char first) noexcept nogil:
    """The one item member a name starting with ``first`` can be (no two start alike)."""
    return ITEM_BY_LETTER[<unsigned char>first]


cdef inline int item_key(const char* k, Py_ssize_t kn) noexcept nogil:
    """The member named ``k[0:kn]`` (without its quotes)."""
    cdef int key = item_by_letter(k[0]) if kn > 0 else ITEM_OTHER
    if (key != ITEM_OTHER and kn == ITEM_NAME_LEN[key] - 3
            and memcmp(k, &ITEM_NAMES[key][1], <size_t>kn) == 0):
        return key
    return ITEM_OTHER


cdef inline void item_reset(Item* it) noexcept nogil:
    it.has_bids = it.has_asks = it.has_ts = it.has_seq = it.has_prev = it.has_checksum = False
    it.n_bids = it.n_asks = it.bids_off = it.asks_off = 0
    it.ts = it.seq = it.prev = it.checksum = 0


cdef int item_member(Cur* c, Item* it, int key) noexcept nogil:
    """The value of one member of a data item (``c.p`` just past its ':'): what each name means and
    what it may hold, for both readers of an item (``read_item`` and ``scan_okx_layout``)."""
    cdef const char* at
    if key == ITEM_ASKS:
        if it.has_asks:
            return fail(c, "duplicate asks")
        if read_levels(c, &it.asks_off, &it.n_asks) < 0:
            return -1
        it.has_asks = True
    elif key == ITEM_BIDS:
        if it.has_bids:
            return fail(c, "duplicate bids")
        if read_levels(c, &it.bids_off, &it.n_bids) < 0:
            return -1
        it.has_bids = True
    elif key == ITEM_TS:
        if it.has_ts:
            return fail(c, "duplicate ts")
        if read_ts(c, &it.ts) < 0:
            return -1
        it.has_ts = True
    elif key == ITEM_CHECKSUM:
        if it.has_checksum:
            return fail(c, "duplicate checksum")
        if read_int(c, &it.checksum) < 0:
            return -1
        # Signed int32 on the wire; some recorders stored the unsigned form.
        if it.checksum < INT32_MIN or it.checksum > UINT32_MAX:
            return fail(c, "checksum out of 32-bit range")
        if it.checksum > INT32_MAX:
            it.checksum -= <int64_t>UINT32_MAX + 1
        it.has_checksum = True
    elif key == ITEM_SEQ:
        if it.has_seq:
            return fail(c, "duplicate seqId")
        skip_ws(c)
        at = c.p
        if read_int(c, &it.seq) < 0:
            return -1
        # OKX seqIds are >= 0 (docs/protocol.md §4); a negative one would be taken for "no
        # seqId yet" or slip past the chain check.
        if it.seq < 0:
            c.p = at
            return fail(c, "negative seqId")
        it.has_seq = True
    elif key == ITEM_PREV:
        if it.has_prev:
            return fail(c, "duplicate prevSeqId")
        skip_ws(c)
        at = c.p
        if read_int(c, &it.prev) < 0:
            return -1
        # -1 is the snapshot's prevSeqId (docs/protocol.md §4); any other negative is not OKX.
        if it.prev < -1:
            c.p = at
            return fail(c, "negative prevSeqId")
        it.has_prev = True
    elif skip_value(c) < 0:
        return -1
    return 0


cdef int read_item(Cur* c) noexcept nogil:
    cdef Scratch* s = c.s
    cdef const char* k
    cdef Py_ssize_t kn
    cdef int more
    if s.n_items == MAX_ITEMS:
        return fail(c, "too many data items")
    cdef Item* it = &s.items[s.n_items]
    item_reset(it)
    if expect(c, c'{', "a data item must be an object") < 0:
        return -1
    skip_ws(c)
    if c.p < c.end and c.p[0] == c'}':
        return fail(c, "empty data item")
    while True:
        if member_name(c, &k, &kn) < 0:
            return -1
        if item_member(c, it, item_key(k, kn)) < 0:
            return -1
        more = next_or_close(c, c'}', "expected ',' or '}' in a data item")
        if more < 0:
            return -1
        if more == 0:
            break
    if not (it.has_asks and it.has_bids):
        return fail(c, "data item without asks and bids")
    s.n_items += 1
    return 0


cdef int read_data(Cur* c) noexcept nogil:
    cdef int more
    if expect(c, c'[', "data must be an array") < 0:
        return -1
    skip_ws(c)
    if c.p < c.end and c.p[0] == c']':
        return fail(c, "empty data")
    while True:
        if read_item(c) < 0:
            return -1
        more = next_or_close(c, c']', "expected ',' or ']' in data")
        if more < 0:
            return -1
        if more == 0:
            return 0


cdef int read_arg(Cur* c) noexcept nogil:
    cdef Scratch* s = c.s
    cdef const char* k
    cdef Py_ssize_t kn
    cdef int more
    if expect(c, c'{', "arg must be an object") < 0:
        return -1
    skip_ws(c)
    if c.p < c.end and c.p[0] == c'}':
        c.p += 1
        return 0
    while True:
        if member_name(c, &k, &kn) < 0:
            return -1
        if key_is(k, kn, "channel", 7):
            if s.channel != NULL:
                return fail(c, "duplicate channel")
            if read_plain_string(c, &s.channel, &s.channel_len, "malformed channel") < 0:
                return -1
        elif key_is(k, kn, "instId", 6):
            if s.inst != NULL:
                return fail(c, "duplicate instId")
            if read_plain_string(c, &s.inst, &s.inst_len, "malformed instId") < 0:
                return -1
        elif skip_value(c) < 0:
            return -1
        more = next_or_close(c, c'}', "expected ',' or '}' in arg")
        if more < 0:
            return -1
        if more == 0:
            return 0


cdef inline bint is_pong(const char* p, const char* end) noexcept nogil:
    while end > p and ((end - 1)[0] == c' ' or (end - 1)[0] == c'\n'
                       or (end - 1)[0] == c'\r' or (end - 1)[0] == c'\t'):
        end -= 1
    return end - p == 4 and memcmp(p, "pong", 4) == 0


cdef inline bint is_book_channel(const char* p, Py_ssize_t n) noexcept nogil:
    """Order-book channels are ``books*`` and ``bbo-tbt``; other pushes (trades, tickers, candles)
    are recognised but their data is skipped unparsed. ``Book`` holds the authoritative list."""
    return ((n >= 5 and memcmp(p, "books", 5) == 0) or (n == 7 and memcmp(p, "bbo-tbt", 7) == 0))


cdef inline bint lit(const char* p, const char* end, const char* text, size_t n) noexcept nogil:
    """``text`` (``n`` bytes, a constant: the compare compiles to a few word loads) is at ``p``."""
    return <size_t>(end - p) >= n and memcmp(p, text, n) == 0


cdef inline const char* plain_run(const char* p, const char* end) noexcept nogil:
    """``p`` is just past a string's opening quote: its closing quote if every byte before it is
    plain (printable ASCII, no backslash: what ``read_plain_string`` accepts and needs nothing
    decoded), else NULL."""
    cdef int k
    cdef unsigned char b
    while end - p >= 8:
        k = plain8(p)
        if k < 8:
            return p + k if p[k] == c'"' else NULL
        p += 8
    while p < end:
        b = <unsigned char>p[0]
        if b == c'"':
            return p
        if b < 0x20 or b >= 0x80 or b == c'\\':
            return NULL
        p += 1
    return NULL


cdef inline const char* plain_string(const char* p, const char* end, const char** out,
                                     Py_ssize_t* n) noexcept nogil:
    """A plain string's content at ``p`` (past the opening quote): the byte after its closing
    quote, or NULL."""
    cdef const char* q = plain_run(p, end)
    if q == NULL:
        return NULL
    out[0] = p
    n[0] = q - p
    return q + 1


cdef int scan_okx_layout(Scratch* s, const char* buf, Py_ssize_t n) noexcept nogil:
    """A book push exactly as OKX writes it: no whitespace, members in OKX's order
    (``{"arg":{"channel":..,"instId":..},"action":..,"data":[{..}]}``, docs/protocol.md §2), one
    data item whose members may come in any order. The structure is matched as fixed byte strings
    instead of read member by member; the values go through the same readers as in ``scan_frame``
    (``item_member``). Returns 0 when the frame was read (``s`` complete), 1 when it is laid out
    any other way or anything in it is wrong: the caller then scans it from the start the general
    way, which accepts exactly what this accepts and gives the reason for a rejection."""
    cdef Cur c
    cdef const char* p = buf
    cdef const char* end = buf + n
    cdef Item* it = &s.items[0]
    cdef int key
    c.end = end
    c.start = buf
    c.s = s
    if not lit(p, end, '{"arg":{"channel":"', 19):
        return 1
    p = plain_string(p + 19, end, &s.channel, &s.channel_len)
    if p == NULL or not lit(p, end, ',"instId":"', 11):
        return 1
    p = plain_string(p + 11, end, &s.inst, &s.inst_len)
    if p == NULL or not lit(p, end, '},', 2) or not is_book_channel(s.channel, s.channel_len):
        return 1
    p += 2
    if lit(p, end, '"action":"update",', 18):
        s.action = ACTION_UPDATE
        p += 18
    elif lit(p, end, '"action":"snapshot",', 20):
        s.action = ACTION_SNAPSHOT
        p += 20
    if not lit(p, end, '"data":[{', 9):
        return 1
    s.has_arg = True
    item_reset(it)
    c.p = p + 9
    while True:
        p = c.p
        if end - p < 16:
            return 1
        key = item_by_letter(p[1]) if p[0] == c'"' else ITEM_OTHER
        if key == ITEM_OTHER or not item_name_at(p, key):
            return 1
        c.p = p + ITEM_NAME_LEN[key]
        if item_member(&c, it, key) != 0:
            return 1
        p = c.p
        if p < end and p[0] == c',':
            c.p = p + 1
            continue
        if end - p == 3 and memcmp(p, "}]}", 3) == 0:
            break
        return 1
    if not (it.has_asks and it.has_bids):
        return 1
    s.n_items = 1
    s.has_data = True
    s.kind = KIND_BOOK
    return 0


cdef void scratch_reset(Scratch* s) noexcept nogil:
    """Empty the scratch for the next frame (both producers start here)."""
    s.kind = 0
    s.action = ACTION_NONE
    s.channel = s.inst = NULL
    s.channel_len = s.inst_len = 0
    s.has_arg = s.has_data = False
    s.n_items = 0
    s.n_levels = 0
    s.max_px_dec = s.max_sz_dec = 0
    s.error = NULL
    s.error_offset = 0
    s.out_of_memory = False


cdef int scan_frame(Scratch* s, const char* buf, Py_ssize_t n) noexcept nogil:
    cdef Cur c
    cdef const char* k
    cdef const char* v
    cdef Py_ssize_t kn, vn
    cdef bint is_event = False, has_action = False
    cdef const char* data_at = NULL
    cdef int more
    c.p = buf
    c.end = buf + n
    c.start = buf
    c.s = s
    scratch_reset(s)
    if scan_okx_layout(s, buf, n) == 0:
        return 0
    if s.out_of_memory:
        return -1
    scratch_reset(s)
    skip_ws(&c)
    if is_pong(c.p, c.end):
        s.kind = KIND_PONG
        return 0
    if c.p >= c.end:
        return fail(&c, "empty frame")
    if c.p[0] != c'{':
        return fail(&c, "not a JSON object")
    c.p += 1
    skip_ws(&c)
    if c.p < c.end and c.p[0] == c'}':
        return fail(&c, "empty object")
    while True:
        if member_name(&c, &k, &kn) < 0:
            return -1
        if key_is(k, kn, "arg", 3):
            if s.has_arg:
                return fail(&c, "duplicate arg")
            if read_arg(&c) < 0:
                return -1
            s.has_arg = True
        elif key_is(k, kn, "data", 4):
            if s.has_data:
                return fail(&c, "duplicate data")
            if s.channel != NULL:             # OKX sends arg first: read data in place
                if not is_book_channel(s.channel, s.channel_len):
                    if skip_value(&c) < 0:
                        return -1
                elif read_data(&c) < 0:
                    return -1
            else:          # its shape depends on the channel: read it once arg is known
                skip_ws(&c)
                data_at = c.p
                if skip_value(&c) < 0:
                    return -1
            s.has_data = True
        elif key_is(k, kn, "action", 6):
            if has_action:
                return fail(&c, "duplicate action")
            if read_plain_string(&c, &v, &vn, "malformed action") < 0:
                return -1
            if key_is(v, vn, "snapshot", 8):
                s.action = ACTION_SNAPSHOT
            elif key_is(v, vn, "update", 6):
                s.action = ACTION_UPDATE
            else:
                return fail(&c, "unknown action")
            has_action = True
        elif key_is(k, kn, "event", 5):
            if skip_value(&c) < 0:
                return -1
            is_event = True
        elif skip_value(&c) < 0:
            return -1
        more = next_or_close(&c, c'}', "expected ',' or '}'")
        if more < 0:
            return -1
        if more == 0:
            break
    skip_ws(&c)
    if c.p != c.end:
        return fail(&c, "data after the end of the frame")
    if is_event:
        s.kind = KIND_EVENT
        return 0
    c.p = buf
    if not s.has_arg:
        return fail(&c, "no arg")
    if s.channel == NULL:
        return fail(&c, "arg without channel")
    if s.inst == NULL:
        return fail(&c, "arg without instId")
    if not s.has_data:
        return fail(&c, "no data")
    if not is_book_channel(s.channel, s.channel_len):
        s.kind = KIND_OTHER
        return 0
    if data_at != NULL:
        c.p = data_at
        if read_data(&c) < 0:
            return -1
    s.kind = KIND_BOOK
    return 0


cdef void scratch_free(Scratch* s) noexcept nogil:
    free(s.levels)
    s.levels = NULL
    s.cap_levels = 0
    s.n_levels = 0
