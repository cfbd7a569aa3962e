/* quant.c -- the codecs of quantized optimizer state (8-bit block-wise, bfloat16) and
 * the block loop that runs a float32 kernel over them; see quant.h. Fast loops have no
 * per-element branch (the compiler vectorizes them in each OW_SIMD clone); the _ref
 * twins are plain. */
#include "quant.h"

#include "qmap_table.h"

#include <string.h>

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
    for (size_t i = 0; i < n; i++)
        out[i] = q->map[c[i]] * absmax;
}

static inline __attribute__((always_inline)) float encode8(const ow__qtab *restrict q,
                                                           const float *restrict x,
                                                           size_t n, uint8_t *restrict c)
{
    float absmax = ow__q8_absmax(x, n), s = ow__q8_scale(absmax);
    for (size_t i = 0; i < n; i++)
        c[i] = ow__q8_code(q, x[i] * s);
    return absmax;
}

OW_SIMD void ow__q8_decode(const ow__qtab *q, const uint8_t *codes, float absmax,
                           float *out, size_t n)
{
    decode8(q, codes, absmax, out, n);
}

void ow__q8_decode_ref(const ow__qtab *q, const uint8_t *codes, float absmax, float *out,
                       size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = q->map[codes[i]] * absmax;
}

OW_SIMD float ow__q8_encode(const ow__qtab *q, const float *x, size_t n, uint8_t *codes)
{
    return encode8(q, x, n, codes);
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

OW_SIMD void ow__q8_quantize(const ow__qtab *q, const float *x, size_t n, uint8_t *codes,
                             float *absmax)
{
    for (size_t b = 0; b * OW__QBLOCK < n; b++) {
        size_t o = b * OW__QBLOCK, m = n - o < OW__QBLOCK ? n - o : OW__QBLOCK;
        absmax[b] = encode8(q, x + o, m, codes + o);
    }
}

OW_SIMD void ow__q8_dequantize(const ow__qtab *q, const uint8_t *codes,
                               const float *absmax, size_t n, float *out)
{
    for (size_t b = 0; b * OW__QBLOCK < n; b++) {
        size_t o = b * OW__QBLOCK, m = n - o < OW__QBLOCK ? n - o : OW__QBLOCK;
        decode8(q, codes + o, absmax[b], out + o, m);
    }
}

/* ---- bfloat16 and float16 ------------------------------------------------------------
 */

OW_SIMD void ow__bf16_encode(const float *restrict x, size_t n, uint16_t *restrict out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = ow__f32_to_bf16(x[i]);
}

OW_SIMD void ow__bf16_encode_sr(const float *restrict x, size_t n, uint16_t *restrict out,
                                uint64_t key, uint64_t index)
{
    for (size_t i = 0; i < n; i++)
        out[i] = ow__f32_to_bf16_sr(x[i], ow__sr_bits(key, index + i));
}

OW_SIMD void ow__bf16_decode(const uint16_t *restrict in, size_t n, float *restrict out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = ow__bf16_to_f32(in[i]);
}

OW_SIMD void ow__f16_decode(const uint16_t *restrict in, size_t n, float *restrict out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = ow__f16_to_f32(in[i]);
}

/* ---- a float32 kernel over quantized slots ------------------------------------------
 */

static const ow__qtab *qtab(ow__qkind k)
{
    return k == OW__Q_I8S ? &ow__qtab_signed : &ow__qtab_unsigned;
}

static bool is_q8(ow__qkind k)
{
    return k == OW__Q_I8S || k == OW__Q_I8U;
}

/* One block [o, o + m) of every slot: decode, step, encode. */
static inline __attribute__((always_inline)) void
step_block(const ow__qrange *r, size_t o, size_t m, float (*tmp)[OW__QBLOCK],
           float (*orig)[OW__QBLOCK], bool ref)
{
    float *s[OW__MAX_SLOTS];
    size_t nq = 0;
    for (size_t k = 0; k < r->nslots; k++) {
        const ow__qslot *q = &r->slot[k];
        s[k] = NULL;
        if (!q->data)
            continue;
        if (q->kind == OW__Q_F32) {
            s[k] = (float *)q->data + o;
            continue;
        }
        float *t = tmp[nq];
        if (is_q8(q->kind)) {
            const uint8_t *c = (const uint8_t *)q->data + o;
            float am = q->absmax[o / OW__QBLOCK];
            if (ref)
                ow__q8_decode_ref(qtab(q->kind), c, am, t, m);
            else
                decode8(qtab(q->kind), c, am, t, m);
            memcpy(orig[nq], t, m * sizeof(float));
        } else {
            const uint16_t *h = (const uint16_t *)q->data + o;
            for (size_t i = 0; i < m; i++)
                t[i] = ow__bf16_to_f32(h[i]);
        }
        s[k] = t;
        nq++;
    }
    ow_kernel_args b = *r->a;
    b.n = m;
    b.p = r->a->p + o;
    b.g = r->a->g + o;
    b.s = s;
    r->fn(&b);
    nq = 0;
    for (size_t k = 0; k < r->nslots; k++) {
        const ow__qslot *q = &r->slot[k];
        if (!q->data || q->kind == OW__Q_F32)
            continue;
        float *t = tmp[nq];
        if (is_q8(q->kind)) {
            /* unchanged (a pass that only reads the slot): re-encoding would move the
             * absmax of a block whose largest element is negative */
            if (memcmp(orig[nq], t, m * sizeof(float)) != 0) {
                uint8_t *c = (uint8_t *)q->data + o;
                q->absmax[o / OW__QBLOCK] =
                    ref ? ow__q8_encode_ref(qtab(q->kind), t, m, c)
                        : encode8(qtab(q->kind), t, m, c);
            }
        } else {
            uint16_t *h = (uint16_t *)q->data + o;
            if (q->kind == OW__Q_BF16)
                for (size_t i = 0; i < m; i++)
                    h[i] = ow__f32_to_bf16(t[i]);
            else
                for (size_t i = 0; i < m; i++)
                    h[i] =
                        ow__f32_to_bf16_sr(t[i], ow__sr_bits(r->key, r->index + o + i));
        }
        nq++;
    }
}

static size_t quantized(const ow__qrange *r)
{
    size_t nq = 0;
    for (size_t k = 0; k < r->nslots; k++)
        nq += r->slot[k].data && r->slot[k].kind != OW__Q_F32;
    return nq;
}

OW_SIMD bool ow__q_run(const ow__qrange *r)
{
    _Alignas(64) float tmp[OW__QMAX_SLOTS][OW__QBLOCK];
    _Alignas(64) float orig[OW__QMAX_SLOTS][OW__QBLOCK];
    if (quantized(r) > OW__QMAX_SLOTS || r->nslots > OW__MAX_SLOTS)
        return false;
    for (size_t o = 0; o < r->a->n; o += OW__QBLOCK)
        step_block(r, o, r->a->n - o < OW__QBLOCK ? r->a->n - o : OW__QBLOCK, tmp, orig,
                   false);
    return true;
}

bool ow__q_ref(const ow__qrange *r)
{
    float tmp[OW__QMAX_SLOTS][OW__QBLOCK], orig[OW__QMAX_SLOTS][OW__QBLOCK];
    if (quantized(r) > OW__QMAX_SLOTS || r->nslots > OW__MAX_SLOTS)
        return false;
    for (size_t o = 0; o < r->a->n; o += OW__QBLOCK)
        step_block(r, o, r->a->n - o < OW__QBLOCK ? r->a->n - o : OW__QBLOCK, tmp, orig,
                   true);
    return true;
}
