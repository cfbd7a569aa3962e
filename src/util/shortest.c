/* shortest.c -- the shortest decimal digits that read back to a double, without printf
 * or strtod: v is scaled by a 128-bit power of ten into 17 integer digits and a 64-bit
 * fraction, and the precision is the smallest whose rounded digits lie within half an
 * ulp of v. Values the fixed-point error cannot decide go to the printf search.
 *
 * Glossary: S = |v| * 10^k, scaled so that 10^16 <= S < 10^17; N, F = S's integer part
 * and its fraction in units of 2^-64; H = half the gap between v and its neighbours, in
 * S's units; j = digits dropped from N (precision 17 - j). */
#include "shortest.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pow10_table.h"

int ow__shortest_digits_ref(double v, char digits[18], int *exp10)
{
    char tmp[40];
    int prec;
    for (prec = 1; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    if (prec == 17)
        snprintf(tmp, sizeof tmp, "%.16e", v);
    /* tmp is [-]d[.ddd]e[+-]XX */
    const char *p = tmp + (tmp[0] == '-');
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    digits[nd] = '\0';
    *exp10 = (int)strtol(p + 1, NULL, 10);
    return nd;
}

#ifdef __SIZEOF_INT128__
__extension__ typedef unsigned __int128 u128;

static const uint64_t pow10_u64[18] = {1u,
                                       10u,
                                       100u,
                                       1000u,
                                       10000u,
                                       100000u,
                                       1000000u,
                                       10000000u,
                                       100000000u,
                                       1000000000u,
                                       10000000000u,
                                       100000000000u,
                                       1000000000000u,
                                       10000000000000u,
                                       100000000000000u,
                                       1000000000000000u,
                                       10000000000000000u,
                                       100000000000000000u};

/* S = m * 2^q * 10^k in units of 2^-64 (rounded down, less than 2 units low) and
 * H = 2^(q-1) * 10^k likewise; false when k is outside the table. */
static int scale(uint64_t m, int q, int k, u128 *s, u128 *h)
{
    if (k < OW__POW10_MIN || k > OW__POW10_MAX)
        return 0;
    const uint64_t hi = ow__pow10[k - OW__POW10_MIN].hi;
    const uint64_t lo = ow__pow10[k - OW__POW10_MIN].lo;
    const int sh = -(q + ow__pow10[k - OW__POW10_MIN].e + 64);
    if (sh < 57 || sh > 126) /* S not near [10^16, 10^17) */
        return 0;
    /* m * T as c * 2^64 + p0 (192 bits), then shifted right by sh */
    const u128 a = (u128)m * lo;
    const u128 c = (u128)m * hi + (a >> 64);
    const uint64_t p0 = (uint64_t)a;
    *s = sh >= 64 ? c >> (sh - 64) : (c << (64 - sh)) | (p0 >> sh);
    *h = (((u128)hi << 64) | lo) >> (sh + 1);
    return 1;
}

/* The digits, or 0 when v is subnormal, a power of two (its lower gap is half its
 * upper one) or too close to call. */
static int fast_digits(double v, char digits[18], int *exp10)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    const uint64_t frac = bits & ((UINT64_C(1) << 52) - 1);
    const int be = (int)((bits >> 52) & 0x7ff);
    if (be == 0 || be == 0x7ff || frac == 0)
        return 0;
    const uint64_t m = frac | (UINT64_C(1) << 52);
    const int q = be - 1075;
    /* v is in [2^e2, 2^(e2+1)): its decimal exponent is floor(e2 log10 2) or one more */
    const int e2 = q + 52;
    int e10 = e2 >= 0 ? (e2 * 78913) >> 18 : -((-e2 * 78913 + (1 << 18) - 1) >> 18);
    u128 s, h;
    uint64_t n;
    for (int tries = 0;; tries++) {
        if (tries == 3 || !scale(m, q, 16 - e10, &s, &h))
            return 0;
        n = (uint64_t)(s >> 64);
        if (n >= pow10_u64[17])
            e10++;
        else if (n < pow10_u64[16])
            e10--;
        else
            break;
    }
    const uint64_t f = (uint64_t)s;
    /* Drop j = 0, 1, ... digits while N rounded to 10^j stays within H of S: that
     * distance only grows with j, so the last j that does gives the shortest digits. */
    uint64_t t = n; /* N / 10^j */
    uint64_t r = 0; /* N mod 10^j */
    int best = -1, best_up = 0;
    uint64_t best_t = 0;
    for (int j = 0; j <= 16; j++) {
        if (j > 0) {
            t /= 10;
            r = n - t * pow10_u64[j];
        }
        const u128 rem = ((u128)r << 64) | f; /* S mod 10^j, less than 2 units low */
        const u128 unit = (u128)pow10_u64[j] << 64;
        const u128 half = unit >> 1;
        u128 lo, hi; /* the distance from S to N rounded to 10^j lies in [lo, hi] */
        int up;
        if (rem + 2 <= half) { /* round down */
            up = 0;
            lo = rem;
            hi = rem + 2;
        } else if (rem > half) { /* round up */
            up = 1;
            lo = unit - rem > 2 ? unit - rem - 2 : 0;
            hi = unit - rem;
        } else { /* a tie, or too near one to tell the direction */
            up = -1;
            lo = half - 2;
            hi = half;
        }
        const int ok = hi < h ? 1 : lo >= h + 2 ? 0 : -1;
        if (ok < 0 || (ok && up < 0))
            return 0; /* too near the edge of v's interval, or a tie that reads back */
        if (!ok)
            break;
        best = j;
        best_up = up;
        best_t = t;
    }
    if (best < 0)
        return 0;
    uint64_t dv = best_t + (uint64_t)best_up;
    int nd = 17 - best;
    if (dv == pow10_u64[nd]) { /* 9.99... rounded up to 10 */
        dv = 1;
        nd = 1;
        e10++;
    }
    while (nd > 1 && dv % 10 == 0) {
        dv /= 10;
        nd--;
    }
    /* in chunks of 8 digits, whose 32-bit divisions are cheaper */
    for (int end = nd; end > 0; end -= 8) {
        uint32_t c = (uint32_t)(dv % 100000000u);
        dv /= 100000000u;
        for (int i = end - 1; i >= 0 && i >= end - 8; i--) {
            digits[i] = (char)('0' + c % 10);
            c /= 10;
        }
    }
    digits[nd] = '\0';
    *exp10 = e10;
    return nd;
}
#else
static int fast_digits(double v, char digits[18], int *exp10)
{
    (void)v, (void)digits, (void)exp10;
    return 0;
}
#endif

int ow__shortest_digits(double v, char digits[18], int *exp10)
{
    int nd = fast_digits(v, digits, exp10);
    return nd ? nd : ow__shortest_digits_ref(v, digits, exp10);
}

int ow__format_shortest_g(double v, char *buf)
{
    if (v == 0 || v - v != 0) /* zero, infinite or nan: "-0", "inf", "-nan" */
        return snprintf(buf, 32, "%.17g", v);
    char digits[18];
    int x;
    const int nd = ow__shortest_digits(v, digits, &x);
    int o = 0;
    if (v < 0)
        buf[o++] = '-';
    if (x < -4 || x >= nd) { /* d[.ddd]e[+-]XX */
        buf[o++] = digits[0];
        if (nd > 1) {
            buf[o++] = '.';
            memcpy(buf + o, digits + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        buf[o++] = 'e';
        buf[o++] = x < 0 ? '-' : '+';
        int ax = abs(x);
        if (ax >= 100)
            buf[o++] = (char)('0' + ax / 100);
        buf[o++] = (char)('0' + ax / 10 % 10);
        buf[o++] = (char)('0' + ax % 10);
    } else if (x < 0) { /* 0.000ddd */
        buf[o++] = '0';
        buf[o++] = '.';
        for (int i = -1; i > x; i--)
            buf[o++] = '0';
        memcpy(buf + o, digits, (size_t)nd);
        o += nd;
    } else { /* ddd.ddd */
        memcpy(buf + o, digits, (size_t)x + 1);
        o += x + 1;
        if (nd > x + 1) {
            buf[o++] = '.';
            memcpy(buf + o, digits + x + 1, (size_t)(nd - x - 1));
            o += nd - x - 1;
        }
    }
    buf[o] = '\0';
    return o;
}
