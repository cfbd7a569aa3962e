/* qstep.c -- a float32 element kernel over quantized slots (quant.h's ow__q_run): per
 * block of 256, every quantized slot is decoded into float32, the kernel steps it as it
 * steps float32 state, and the block is encoded back. Apart from the codecs (quant.c),
 * so that it calls their SIMD clones instead of inlining a baseline copy. */
#include "quant.h"

#include <string.h>

static const ow__qtab *qtab(ow__qkind k)
{
    return k == OW__Q_I8S ? &ow__qtab_signed : &ow__qtab_unsigned;
}

static bool is_q8(ow__qkind k)
{
    return k == OW__Q_I8S || k == OW__Q_I8U;
}

/* One block [o, o + m) of every slot: decode, step, encode (the codecs run their
 * SIMD clones: a call per block costs little next to 256 elements). */
static void step_block(const ow__qrange *r, size_t o, size_t m, float (*tmp)[OW__QBLOCK],
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
            if (ref) {
                ow__q8_decode_ref(qtab(q->kind), c, am, t, m);
                memcpy(orig[nq], t, m * sizeof(float));
            } else {
                ow__q8_decode_copy(qtab(q->kind), c, am, t, orig[nq], m);
            }
        } else if (ref) {
            const uint16_t *h = (const uint16_t *)q->data + o;
            for (size_t i = 0; i < m; i++)
                t[i] = ow__bf16_to_f32(h[i]);
        } else {
            ow__bf16_decode((const uint16_t *)q->data + o, m, t);
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
            uint8_t *c = (uint8_t *)q->data + o;
            if (!ref)
                ow__q8_reencode(qtab(q->kind), t, orig[nq], m, c,
                                &q->absmax[o / OW__QBLOCK]);
            else if (memcmp(orig[nq], t, m * sizeof(float)) != 0)
                q->absmax[o / OW__QBLOCK] = ow__q8_encode_ref(qtab(q->kind), t, m, c);
        } else {
            uint16_t *h = (uint16_t *)q->data + o;
            /* slots draw apart; the block's first gradient makes the bits fresh at
             * each step even where the key has no step count (Lion, SGD) */
            uint64_t key = ow__bf16_block_key(r->key, nq, r->a->g[o]);
            if (ref && q->kind == OW__Q_BF16)
                for (size_t i = 0; i < m; i++)
                    h[i] = ow__f32_to_bf16(t[i]);
            else if (ref)
                for (size_t i = 0; i < m; i++)
                    h[i] = ow__f32_to_bf16_sr(t[i], ow__sr_bits(key, r->index + o + i));
            else if (q->kind == OW__Q_BF16)
                ow__bf16_encode(t, m, h);
            else
                ow__bf16_encode_sr(t, m, h, key, r->index + o);
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

bool ow__q_run(const ow__qrange *r)
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
