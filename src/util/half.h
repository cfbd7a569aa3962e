/* half.h -- float16 and bfloat16 to and from float32, inline so that element loops
 * (AMP master weights, bf16 optimizer state, half gradients) vectorize them. Rounding
 * is to nearest even; nan stays nan (quiet), inf stays inf. */
#ifndef OW_UTIL_HALF_H
#define OW_UTIL_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t ow__f32_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static inline float ow__bits_f32(uint32_t x)
{
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* IEEE binary16 from float32, rounded to nearest even (subnormals and overflow to inf
 * included). */
static inline uint16_t ow__f32_to_f16(float f)
{
    uint32_t x = ow__f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
    if (exp == 0xff) /* inf, or a quiet nan keeping the top payload bits */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 0x1f)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) { /* a subnormal half: man * 2^(exp - 126) units of 2^-24 */
        if (e < -10)
            return (uint16_t)sign;
        man |= 0x800000u;
        unsigned shift = (unsigned)(14 - e);
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1),
                 mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (h & 1)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) /* a carry may reach inf: right */
        h++;
    return (uint16_t)h;
}

static inline float ow__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu,
             man = h & 0x3ffu;
    if (exp == 0) {
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return ow__bits_f32(sign | (exp == 0x1f ? 0x7f800000u | (man << 13)
                                            : ((exp + 112) << 23) | (man << 13)));
}

/* bfloat16: the top half of a float32, rounded to nearest even; a nan keeps its sign
 * and top payload and is made quiet. No branch: vectorizes. */
static inline uint16_t ow__f32_to_bf16(float f)
{
    uint32_t x = ow__f32_bits(f);
    uint32_t rne = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16, nan = (x >> 16) | 0x40u;
    return (uint16_t)(f != f ? nan : rne); /* one float compare in a vector */
}

/* bfloat16 rounded stochastically: up with probability (dropped bits) / 2^16, given 16
 * uniform random bits r (the low 16 bits of r are used). Unbiased: E[result] = f. */
static inline uint16_t ow__f32_to_bf16_sr(float f, uint32_t r)
{
    uint32_t x = ow__f32_bits(f);
    uint32_t up = (x + (r & 0xffffu)) >> 16, nan = (x >> 16) | 0x40u;
    return (uint16_t)(f != f ? nan : up);
}

static inline float ow__bf16_to_f32(uint16_t h)
{
    return ow__bits_f32((uint32_t)h << 16);
}

#endif /* OW_UTIL_HALF_H */
