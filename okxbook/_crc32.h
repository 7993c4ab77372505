/* CRC-32 of zlib (ISO-HDLC: reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF):
 * okxbook_crc32(value, p, n) == zlib.crc32(p[:n], value) for every input.
 *
 * Two paths, chosen once at import (okxbook_crc32_select):
 *   - x86 / x86-64 with PCLMULQDQ and SSE4.1: folding by carry-less multiplication, after
 *     V. Gopal, E. Ozturk, J. Guilford, G. Wolrich, W. Feghali, M. Dixon, D. Karakoyunlu,
 *     "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ Instruction", Intel, 2009.
 *     Four 128-bit accumulators fold 64 bytes a step, then one folds 16 bytes a step, the last
 *     1..15 bytes are folded with one byte shuffle, and a Barrett reduction gives the 32 bits.
 *     The function carries __attribute__((target("pclmul,sse4.1"))): the extension is built with
 *     no -m flag and still loads and runs on any x86-64 (it then takes the zlib path).
 *   - everywhere else, and for inputs shorter than 16 bytes: the system zlib's crc32().
 *
 * Why hand-written: the system zlib (1.2.13 on Debian 12) computes CRC-32 with tables, about 3.7
 * instructions a byte; its PCLMUL code exists only in zlib-ng / Chromium's zlib / Intel ISA-L,
 * none of which is a C library one can link from a PyPI build. The code below is ~80 lines.
 *
 * Notation (the paper's, for a bit-reflected CRC). A 16-byte block loaded little-endian into an
 * XMM register holds the polynomial whose coefficient of x^(127-k) is register bit k (the first
 * message bit is the highest power). The low 64-bit half H is then the high-degree part, the high
 * half L the low-degree part: X = H x^64 + L. For a 64-bit operand, bit j is the coefficient of
 * x^(63-j) ("rev64"), and PCLMULQDQ of two rev64 operands A, B gives the 128-bit register of
 * x * A * B (the product's 127 bits sit one place off, the well-known extra factor x).
 *
 *   fold by D bits:  X x^D = H x^(64+D) + L x^D
 *                    == clmul(H, rev64(x^(63+D) mod P)) ^ clmul(L, rev64(x^(D-1) mod P))
 *   final:           CRC = X x^32 mod P, by 128 -> 96 -> 64 bits (x^95, x^63 mod P), then
 *                    Barrett with mu = floor(x^64 / P) and P itself in 33-bit reflected form.
 *
 * The constants below are those expressions; tests/test_crc32.py recomputes every one of them
 * from the polynomial (okxbook._checksum._clmul_constants() returns these values), e.g.
 *
 *     P = 1 << 32 | 0x04C11DB7                      # x^32 + ... + 1, normal form
 *     def xmod(e):                                  # x^e mod P
 *         r = 1
 *         for _ in range(e):
 *             r <<= 1
 *             if r >> 32: r ^= P
 *         return r
 *     rev64 = lambda poly: int(f"{poly:064b}"[::-1], 2)
 *     FOLD4 = rev64(xmod(575)), rev64(xmod(511))    # D = 512
 *     FOLD1 = rev64(xmod(191)), rev64(xmod(127))    # D = 128
 *     X95, X63 = rev64(xmod(95)), rev64(xmod(63))
 *     def div(a, b):                                # floor(a / b) of polynomials
 *         q = 0
 *         while a.bit_length() >= b.bit_length():
 *             s = a.bit_length() - b.bit_length()
 *             q, a = q ^ 1 << s, a ^ b << s
 *         return q
 *     MU, POLY = rev64(div(1 << 64, P)) >> 31, rev64(P) >> 31
 */
#ifndef OKXBOOK_CRC32_H
#define OKXBOOK_CRC32_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#define OKXBOOK_CRC_FOLD4_H 0x653d982200000000ULL /* rev64(x^575 mod P) */
#define OKXBOOK_CRC_FOLD4_L 0xcad38e8f00000000ULL /* rev64(x^511 mod P) */
#define OKXBOOK_CRC_FOLD1_H 0x65673b4600000000ULL /* rev64(x^191 mod P) */
#define OKXBOOK_CRC_FOLD1_L 0x9ba54c6f00000000ULL /* rev64(x^127 mod P) */
#define OKXBOOK_CRC_X95 0xccaa009e00000000ULL     /* rev64(x^95 mod P) */
#define OKXBOOK_CRC_X63 0xb8bc676500000000ULL     /* rev64(x^63 mod P) */
#define OKXBOOK_CRC_MU 0x1f7011641ULL             /* rev64(floor(x^64 / P)) >> 31 */
#define OKXBOOK_CRC_POLY 0x1db710641ULL           /* rev64(P) >> 31 */

static const unsigned long long okxbook_crc_constants[8] = {
    OKXBOOK_CRC_FOLD4_H, OKXBOOK_CRC_FOLD4_L, OKXBOOK_CRC_FOLD1_H, OKXBOOK_CRC_FOLD1_L,
    OKXBOOK_CRC_X95,     OKXBOOK_CRC_X63,     OKXBOOK_CRC_MU,      OKXBOOK_CRC_POLY,
};

/* zlib's crc32 takes an unsigned int length: longer inputs go in pieces. */
static uint32_t okxbook_crc32_zlib(uint32_t crc, const unsigned char *p, size_t n)
{
    while (n > 0x40000000u) {
        crc = (uint32_t)crc32(crc, p, 0x40000000u);
        p += 0x40000000u;
        n -= 0x40000000u;
    }
    return (uint32_t)crc32(crc, p, (unsigned int)n);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* pshufb controls: 16 + r gives "bytes r..15 down to 0..15-r", r gives "bytes 0..r-1 up to
 * 16-r..15"; 0x80 makes a zero byte (and marks the lanes _mm_blendv_epi8 takes). */
static const unsigned char okxbook_crc_shuffle[48] = {
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
};

#define OKXBOOK_CRC_FOLD(x, k) \
    _mm_xor_si128(_mm_clmulepi64_si128((x), (k), 0x00), _mm_clmulepi64_si128((x), (k), 0x11))

__attribute__((target("pclmul,sse4.1")))
static uint32_t okxbook_crc32_clmul(uint32_t crc, const unsigned char *p, size_t n)
{
    __m128i x, x1, x2, x3, t, l16, cl, cr;
    const __m128i k1 = _mm_set_epi64x((long long)OKXBOOK_CRC_FOLD1_L, (long long)OKXBOOK_CRC_FOLD1_H);
    const __m128i kr = _mm_set_epi64x((long long)OKXBOOK_CRC_X63, (long long)OKXBOOK_CRC_X95);
    const __m128i kb = _mm_set_epi64x((long long)OKXBOOK_CRC_POLY, (long long)OKXBOOK_CRC_MU);
    if (n < 16)
        return okxbook_crc32_zlib(crc, p, n);
    /* The running CRC (inverted, as zlib keeps it) is XORed into the first 32 message bits. */
    x = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)~crc));
    p += 16;
    n -= 16;
    if (n >= 48) {
        const __m128i k4 = _mm_set_epi64x((long long)OKXBOOK_CRC_FOLD4_L,
                                          (long long)OKXBOOK_CRC_FOLD4_H);
        x1 = _mm_loadu_si128((const __m128i *)p);
        x2 = _mm_loadu_si128((const __m128i *)(p + 16));
        x3 = _mm_loadu_si128((const __m128i *)(p + 32));
        p += 48;
        n -= 48;
        while (n >= 64) {
            x = _mm_xor_si128(OKXBOOK_CRC_FOLD(x, k4), _mm_loadu_si128((const __m128i *)p));
            x1 = _mm_xor_si128(OKXBOOK_CRC_FOLD(x1, k4), _mm_loadu_si128((const __m128i *)(p + 16)));
            x2 = _mm_xor_si128(OKXBOOK_CRC_FOLD(x2, k4), _mm_loadu_si128((const __m128i *)(p + 32)));
            x3 = _mm_xor_si128(OKXBOOK_CRC_FOLD(x3, k4), _mm_loadu_si128((const __m128i *)(p + 48)));
            p += 64;
            n -= 64;
        }
        x = _mm_xor_si128(OKXBOOK_CRC_FOLD(x, k1), x1);
        x = _mm_xor_si128(OKXBOOK_CRC_FOLD(x, k1), x2);
        x = _mm_xor_si128(OKXBOOK_CRC_FOLD(x, k1), x3);
    }
    while (n >= 16) {
        x = _mm_xor_si128(OKXBOOK_CRC_FOLD(x, k1), _mm_loadu_si128((const __m128i *)p));
        p += 16;
        n -= 16;
    }
    if (n) {
        /* r = n bytes left (1..15) after X: the 16 + r bytes are the block (0..0, X[0..r-1])
         * followed by the block (X[r..15], tail); the latter is the last 16 bytes of the input
         * (loaded in bounds: the input had >= 16) with its first 16 - r lanes from X. */
        cl = _mm_loadu_si128((const __m128i *)(okxbook_crc_shuffle + n));
        cr = _mm_loadu_si128((const __m128i *)(okxbook_crc_shuffle + 16 + n));
        l16 = _mm_loadu_si128((const __m128i *)(p + n - 16));
        t = _mm_blendv_epi8(l16, _mm_shuffle_epi8(x, cr), cl);
        x = _mm_xor_si128(OKXBOOK_CRC_FOLD(_mm_shuffle_epi8(x, cl), k1), t);
    }
    /* X x^32 = H x^96 + L x^32: 96 bits (junk in bits 0..31 from the shift, masked next). */
    x = _mm_xor_si128(_mm_clmulepi64_si128(x, kr, 0x00), _mm_srli_si128(x, 4));
    /* The x^64..x^95 part (bits 32..63) times x^64 mod P, plus the rest: R, 64 bits, high half. */
    t = _mm_blend_epi16(x, _mm_setzero_si128(), 0x03);
    x = _mm_xor_si128(_mm_clmulepi64_si128(t, kr, 0x10), x);
    /* Barrett: T = R div x^32 (to bits 32..63 of the high half), Q = (T mu) div x^32 lands in the
     * low half as a rev64 operand, and R + Q P mod x^32 is dword 3 of R ^ dword 2 of Q P. */
    t = _mm_clmulepi64_si128(_mm_slli_epi64(x, 32), kb, 0x01);
    t = _mm_clmulepi64_si128(t, kb, 0x10);
    return ~((uint32_t)_mm_extract_epi32(x, 3) ^ (uint32_t)_mm_extract_epi32(t, 2));
}

static int okxbook_crc32_clmul_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}
#else
static uint32_t okxbook_crc32_clmul(uint32_t crc, const unsigned char *p, size_t n)
{
    return okxbook_crc32_zlib(crc, p, n);
}

static int okxbook_crc32_clmul_supported(void) { return 0; }
#endif

/* 1: the carry-less multiplication path is in use. Set by okxbook_crc32_select. */
static int okxbook_crc32_accel = 0;

/* Use the accelerated path if this CPU has it and `portable` is 0; returns whether it is used. */
static int okxbook_crc32_select(int portable)
{
    okxbook_crc32_accel = !portable && okxbook_crc32_clmul_supported();
    return okxbook_crc32_accel;
}

static inline uint32_t okxbook_crc32(uint32_t crc, const unsigned char *p, size_t n)
{
    return okxbook_crc32_accel ? okxbook_crc32_clmul(crc, p, n) : okxbook_crc32_zlib(crc, p, n);
}

#endif
