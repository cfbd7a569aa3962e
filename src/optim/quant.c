/* quant.c -- the codecs of quantized optimizer state (8-bit block-wise, bfloat16) and
 * what the block loop (qstep.c) calls; see quant.h. Fast loops have no
 * per-element branch (the compiler vectorizes them in each OW_SIMD clone); the _ref
 * twins are plain. */
#include "quant.h"

#include "qmap_table.h"

#include <string.h>

/* The codecs: SIMD clones (the block loop, in qstep.c, calls the clone the CPU has). */
#define OW__CODEC OW_SIMD

uint64_t ow__sr_key(uint64_t seed, uint64_t step, uint64_t tensor)
{
    /* splitmix64 over the three words in turn */
    uint64_t x = seed, w[3] = {step, tensor, 0};
    for (int k = 0; k < 3; k++) {
        x += 0x9e3779b97f4a7c15ull + w[k];
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        x ^= x >> 31;
    }
    return x;
}

/* ---- 8-bit blocks ------------------------------------------------------------------ */

static inline __attribute__((always_inline)) void decode8(const ow__qtab *restrict q,
                                                          const uint8_t *restrict c,
                                                          float absmax,
                                                          float *restrict out, size_t n)
{
    const float *restrict map = q->map;
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        out[i] = map[c[i]] * absmax;
}

static inline __attribute__((always_inline)) float encode8(const ow__qtab *restrict q,
                                                           const float *restrict x,
                                                           size_t n, uint8_t *restrict c)
{
    float absmax = ow__q8_absmax(x, n), s = ow__q8_scale(absmax);
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        c[i] = ow__q8_code(q, x[i] * s);
    return absmax;
}

OW__CODEC static void decode_simd(const ow__qtab *q, const uint8_t *codes, float absmax,
                                  float *out, size_t n)
{
    decode8(q, codes, absmax, out, n);
}

OW__CODEC static float encode_simd(const ow__qtab *q, const float *x, size_t n,
                                   uint8_t *codes)
{
    return encode8(q, x, n, codes);
}

static bool have_x(void)
{
#if OW__Q8X
    return ow__q8x_available();
#else
    return false;
#endif
}

void ow__q8_decode_copy(const ow__qtab *q, const uint8_t *codes, float absmax, float *out,
                        float *copy, size_t n)
{
#if OW__Q8X
    if (have_x()) {
        ow__q8x_decode(q, codes, absmax, out, copy, n);
        return;
    }
#endif
    decode_simd(q, codes, absmax, out, n);
    if (copy)
        memcpy(copy, out, n * sizeof *out);
}

bool ow__q8_reencode(const ow__qtab *q, const float *x, const float *copy, size_t n,
                     uint8_t *codes, float *absmax)
{
#if OW__Q8X
    if (have_x())
        return ow__q8x_encode(q, x, copy, n, codes, absmax);
#endif
    if (copy && memcmp(copy, x, n * sizeof *x) == 0)
        return false;
    *absmax = encode_simd(q, x, n, codes);
    return true;
}

void ow__q8_decode(const ow__qtab *q, const uint8_t *codes, float absmax, float *out,
                   size_t n)
{
    ow__q8_decode_copy(q, codes, absmax, out, NULL, n);
}

void ow__q8_decode_ref(const ow__qtab *q, const uint8_t *codes, float absmax, float *out,
                       size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = q->map[codes[i]] * absmax;
}

float ow__q8_encode(const ow__qtab *q, const float *x, size_t n, uint8_t *codes)
{
    float absmax = 0;
    ow__q8_reencode(q, x, NULL, n, codes, &absmax);
    return absmax;
}

float ow__q8_encode_ref(const ow__qtab *q, const float *x, size_t n, uint8_t *codes)
{
    float absmax = 0;
    for (size_t i = 0; i < n; i++)
        absmax = fmaxf(absmax, fabsf(x[i]));
    float s = ow__q8_scale(absmax);
    for (size_t i = 0; i < n; i++)
        codes[i] = ow__q8_code_ref(q, x[i] * s);
    return absmax;
}

void ow__q8_quantize(const ow__qtab *q, const float *x, size_t n, uint8_t *codes,
                     float *absmax)
{
    for (size_t b = 0; b * OW__QBLOCK < n; b++) {
        size_t o = b * OW__QBLOCK, m = n - o < OW__QBLOCK ? n - o : OW__QBLOCK;
        absmax[b] = ow__q8_encode(q, x + o, m, codes + o);
    }
}

void ow__q8_dequantize(const ow__qtab *q, const uint8_t *codes, const float *absmax,
                       size_t n, float *out)
{
    for (size_t b = 0; b * OW__QBLOCK < n; b++) {
        size_t o = b * OW__QBLOCK, m = n - o < OW__QBLOCK ? n - o : OW__QBLOCK;
        ow__q8_decode(q, codes + o, absmax[b], out + o, m);
    }
}

/* ---- bfloat16 and float16 ------------------------------------------------------------
 */

static inline __attribute__((always_inline)) void
bf16_decode(const uint16_t *restrict in, size_t n, float *restrict out)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        out[i] = ow__bf16_to_f32(in[i]);
}

static inline __attribute__((always_inline)) void
bf16_encode(const float *restrict x, size_t n, uint16_t *restrict out)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        out[i] = ow__f32_to_bf16(x[i]);
}

static inline __attribute__((always_inline)) void
bf16_encode_sr(const float *restrict x, size_t n, uint16_t *restrict out, uint64_t key,
               uint64_t index)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        out[i] = ow__f32_to_bf16_sr(x[i], ow__sr_bits(key, index + i));
}

OW__CODEC static void bf16_encode_simd(const float *restrict x, size_t n,
                                       uint16_t *restrict out)
{
    bf16_encode(x, n, out);
}

OW__CODEC static void bf16_encode_sr_simd(const float *restrict x, size_t n,
                                          uint16_t *restrict out, uint64_t key,
                                          uint64_t index)
{
    bf16_encode_sr(x, n, out, key, index);
}

void ow__bf16_encode(const float *x, size_t n, uint16_t *out)
{
#if OW__Q8X
    if (have_x()) {
        ow__bf16x_encode(x, n, out);
        return;
    }
#endif
    bf16_encode_simd(x, n, out);
}

void ow__bf16_encode_sr(const float *x, size_t n, uint16_t *out, uint64_t key,
                        uint64_t index)
{
#if OW__Q8X
    if (have_x()) {
        ow__bf16x_encode_sr(x, n, out, key, index);
        return;
    }
#endif
    bf16_encode_sr_simd(x, n, out, key, index);
}

/* static, called by the exported name (see f16_decode) */
OW__CODEC static void bf16_decode_simd(const uint16_t *restrict in, size_t n,
                                       float *restrict out)
{
    bf16_decode(in, n, out);
}

void ow__bf16_decode(const uint16_t *restrict in, size_t n, float *restrict out)
{
    bf16_decode_simd(in, n, out);
}

/* static, called by the exported name: clang emits a target_clones dispatcher only
 * where the function is called */
OW__CODEC static void f16_decode(const uint16_t *restrict in, size_t n,
                                 float *restrict out)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        out[i] = ow__f16_to_f32(in[i]);
}

void ow__f16_decode(const uint16_t *restrict in, size_t n, float *restrict out)
{
    f16_decode(in, n, out);
}
