/* qcodec_x86.c -- the state codecs in AVX2 (quant.h's ow__q8x_*, ow__bf16x_*): the same
 * bits as quant.c's plain loops, eight elements a step. The compiler's own vectorization
 * of those loops emulates the table loads (map[c] and the bucket table) one element at a
 * time through a vector; here decode loads map[c] straight into lanes and encode
 * gathers the bucket table (measured on Zen 3: the faster of the two for each), the
 * bucket index, the midpoint test and the packing to bytes staying in registers. Built
 * for any x86-64 compiler that takes target attributes; the block loop calls it only
 * where the CPU has AVX2 (an AVX-512 machine runs it too). */
#include "quant.h"

#if OW__Q8X

#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2")))

bool ow__q8x_available(void)
{
    return __builtin_cpu_supports("avx2");
}

/* ---- decode ------------------------------------------------------------------------ */

/* map[c] of four codes, the bytes of w from bit 0 on: scalar loads into lanes (on
 * AMD's Zen 3 twice as fast as a gather, which is microcoded). */
static inline __attribute__((always_inline)) AVX2 __m128 map4(const float *map,
                                                              uint32_t w)
{
    __m128 v = _mm_load_ss(map + (w & 0xff));
    v = _mm_insert_ps(v, _mm_load_ss(map + (w >> 8 & 0xff)), 0x10);
    v = _mm_insert_ps(v, _mm_load_ss(map + (w >> 16 & 0xff)), 0x20);
    return _mm_insert_ps(v, _mm_load_ss(map + (w >> 24)), 0x30);
}

AVX2 void ow__q8x_decode(const ow__qtab *q, const uint8_t *codes, float absmax,
                         float *out, float *copy, size_t n)
{
    const __m256 a = _mm256_set1_ps(absmax);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, codes + i, 8);
        __m256 v =
            _mm256_set_m128(map4(q->map, (uint32_t)(w >> 32)), map4(q->map, (uint32_t)w));
        v = _mm256_mul_ps(v, a);
        _mm256_storeu_ps(out + i, v);
        if (copy)
            _mm256_storeu_ps(copy + i, v);
    }
    for (; i < n; i++) {
        out[i] = q->map[codes[i]] * absmax;
        if (copy)
            copy[i] = out[i];
    }
}

/* ---- encode ------------------------------------------------------------------------ */

/* ow__q8_code of eight values y, as int32 lanes. */
static inline __attribute__((always_inline)) AVX2 __m256i code8(const ow__qtab *q,
                                                                __m256 y)
{
    const __m256i u = _mm256_castps_si256(y);
    __m256i k =
        _mm256_srli_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), OW__QSHIFT);
    k = _mm256_sub_epi32(k, _mm256_set1_epi32((int32_t)OW__QLUT_K0));
    k = _mm256_max_epi32(k, _mm256_setzero_si256());
    k = _mm256_min_epi32(k, _mm256_set1_epi32(OW__QLUT_NB - 1));
    k = _mm256_add_epi32(
        k, _mm256_and_si256(_mm256_srai_epi32(u, 31), _mm256_set1_epi32(OW__QLUT_NB)));
    const __m256i e = _mm256_i32gather_epi32(q->lut, k, 4);
    const __m256i low = _mm256_set1_epi32(0xff);
    __m256 mid = _mm256_castsi256_ps(_mm256_andnot_si256(low, e));
    __m256i ge = _mm256_castps_si256(_mm256_cmp_ps(y, mid, _CMP_GE_OQ));
    return _mm256_sub_epi32(_mm256_and_si256(e, low), ge); /* ge is -1 where true */
}

/* Bytes of four vectors of codes (0..255) in order: the packs work per 128-bit lane,
 * the permute puts the dwords back in sequence. */
static inline __attribute__((always_inline)) AVX2 __m256i pack32(__m256i a, __m256i b,
                                                                 __m256i c, __m256i d)
{
    __m256i p = _mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, d));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* The absmax's bits (ow__q8_absmax) and whether x differs from orig (NULL: differs). */
static inline __attribute__((always_inline)) AVX2 uint32_t absmax_bits(const float *x,
                                                                       const float *orig,
                                                                       size_t n,
                                                                       bool *changed)
{
    const __m256i abs = _mm256_set1_epi32(0x7fffffff);
    __m256i m = _mm256_setzero_si256(), d = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
        m = _mm256_max_epu32(m, _mm256_and_si256(v, abs));
        if (orig)
            d = _mm256_or_si256(
                d, _mm256_xor_si256(v, _mm256_loadu_si256((const __m256i *)(orig + i))));
    }
    __m128i h = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 0xb1));
    uint32_t mb = (uint32_t)_mm_cvtsi128_si32(h);
    bool diff = !orig || !_mm256_testz_si256(d, d);
    for (; i < n; i++) {
        uint32_t a = ow__f32_bits(x[i]) & 0x7fffffffu;
        mb = a > mb ? a : mb;
        diff |= orig && ow__f32_bits(x[i]) != ow__f32_bits(orig[i]);
    }
    *changed = diff;
    return mb;
}

AVX2 bool ow__q8x_encode(const ow__qtab *q, const float *x, const float *orig, size_t n,
                         uint8_t *codes, float *absmax)
{
    bool changed;
    float am = ow__bits_f32(absmax_bits(x, orig, n, &changed));
    if (!changed)
        return false;
    const float s = ow__q8_scale(am);
    const __m256 sv = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i c0 = code8(q, _mm256_mul_ps(_mm256_loadu_ps(x + i), sv));
        __m256i c1 = code8(q, _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), sv));
        __m256i c2 = code8(q, _mm256_mul_ps(_mm256_loadu_ps(x + i + 16), sv));
        __m256i c3 = code8(q, _mm256_mul_ps(_mm256_loadu_ps(x + i + 24), sv));
        _mm256_storeu_si256((__m256i *)(codes + i), pack32(c0, c1, c2, c3));
    }
    for (; i < n; i++)
        codes[i] = ow__q8_code(q, x[i] * s);
    *absmax = am;
    return true;
}

/* ---- bfloat16 ---------------------------------------------------------------------- */

/* ow__f32_to_bf16 (r: NULL) or ow__f32_to_bf16_sr (r: the random bits) of eight values,
 * as int32 lanes of 0..0xffff. */
static inline __attribute__((always_inline)) AVX2 __m256i bf16_8(__m256i x, __m256i r,
                                                                 bool sr)
{
    const __m256i one = _mm256_set1_epi32(1);
    __m256i up = sr ? _mm256_add_epi32(x, _mm256_and_si256(r, _mm256_set1_epi32(0xffff)))
                    : _mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)),
                                       _mm256_and_si256(_mm256_srli_epi32(x, 16), one));
    __m256i nan = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
    __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff)),
                                       _mm256_set1_epi32(0x7f800000));
    return _mm256_blendv_epi8(_mm256_srli_epi32(up, 16), nan, isnan);
}

static inline __attribute__((always_inline)) AVX2 __m256i mix8(__m256i x)
{
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb352d));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int32_t)0x846ca68bu));
    return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
}

/* Sixteen int32 lanes of 0..0xffff to sixteen uint16 in order. */
static inline __attribute__((always_inline)) AVX2 void store16(uint16_t *out, __m256i a,
                                                               __m256i b)
{
    __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
    _mm256_storeu_si256((__m256i *)out, p);
}

AVX2 void ow__bf16x_encode(const float *x, size_t n, uint16_t *out)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = bf16_8(_mm256_loadu_si256((const __m256i *)(x + i)),
                           _mm256_setzero_si256(), false);
        __m256i b = bf16_8(_mm256_loadu_si256((const __m256i *)(x + i + 8)),
                           _mm256_setzero_si256(), false);
        store16(out + i, a, b);
    }
    for (; i < n; i++)
        out[i] = ow__f32_to_bf16(x[i]);
}

/* ow__sr_bits(key, index + i) for eight i from i0, where index + i0 .. + 7 share their
 * top 32 bits. */
static inline __attribute__((always_inline)) AVX2 __m256i sr_bits8(uint64_t key,
                                                                   uint64_t at)
{
    __m256i lo = _mm256_add_epi32(_mm256_set1_epi32((int32_t)(uint32_t)at),
                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i h = mix8(_mm256_xor_si256(lo, _mm256_set1_epi32((int32_t)(uint32_t)key)));
    uint32_t add = (uint32_t)(key >> 32) + (uint32_t)(at >> 32) * 0x9e3779b9u;
    return mix8(_mm256_add_epi32(h, _mm256_set1_epi32((int32_t)add)));
}

AVX2 void ow__bf16x_encode_sr(const float *x, size_t n, uint16_t *out, uint64_t key,
                              uint64_t index)
{
    size_t i = 0;
    /* vectors only while the element index keeps its top 32 bits */
    size_t same = (index >> 32) == ((index + n) >> 32) ? n : 0;
    for (; i + 16 <= same; i += 16) {
        __m256i a = bf16_8(_mm256_loadu_si256((const __m256i *)(x + i)),
                           sr_bits8(key, index + i), true);
        __m256i b = bf16_8(_mm256_loadu_si256((const __m256i *)(x + i + 8)),
                           sr_bits8(key, index + i + 8), true);
        store16(out + i, a, b);
    }
    for (; i < n; i++)
        out[i] = ow__f32_to_bf16_sr(x[i], ow__sr_bits(key, index + i));
}

#endif /* OW__Q8X */
