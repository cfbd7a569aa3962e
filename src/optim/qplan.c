/* qplan.c -- the `state_dtype` key of optimizers with element-wise moments (issue #12):
 * which slots hold a moment under each mode, their shapes and dtypes, and the pass
 * wrapper that hands a float32 kernel its moments wherever they are stored. */
#include "quant.h"

#include <string.h>

static const char *const mode_names[] = {"float32", "bfloat16", "int8"};

ow__qmode ow__qmode_of(const ow_hparam *state_dtype, const ow_hparam *sr)
{
    const char *s = state_dtype && !state_dtype->absent ? state_dtype->s : NULL;
    if (s && strcmp(s, "bfloat16") == 0)
        return sr && !sr->absent && ow__hp_true(sr) ? OW__QM_BF16_SR : OW__QM_BF16;
    if (s && strcmp(s, "int8") == 0)
        return OW__QM_I8;
    return OW__QM_F32;
}

bool ow__qmode_check(const ow_hparam *state_dtype, const ow_hparam *sr, char *msg,
                     size_t n)
{
    const char *s = state_dtype && !state_dtype->absent ? state_dtype->s : NULL;
    if (s) {
        bool known = false;
        for (size_t k = 0; k < OW__ARRAY_LEN(mode_names); k++)
            known |= strcmp(s, mode_names[k]) == 0;
        if (!known) {
            snprintf(msg, n, "state_dtype '%.64s' is not one of float32, bfloat16, int8",
                     s);
            return false;
        }
    }
    if (sr && !sr->absent && ow__hp_true(sr) && !(s && strcmp(s, "bfloat16") == 0)) {
        snprintf(msg, n, "stochastic_rounding needs state_dtype: bfloat16");
        return false;
    }
    return true;
}

static size_t numel_of(int ndim, const int64_t *shape)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)shape[d];
    return n;
}

int ow__qplan_shape(const ow__qplan *p, ow__qmode mode, int slot, int ndim,
                    const int64_t *shape, int64_t *out)
{
    size_t numel = numel_of(ndim, shape);
    for (int k = 0; k < p->n; k++) {
        const ow__qmoment *m = &p->m[k];
        bool i8 = mode == OW__QM_I8 && m->code >= 0;
        if (slot == m->slot && i8)
            return -1; /* stored in its code slot */
        if (slot == m->code && !i8)
            return -1;
        if ((slot == m->absmax || slot == m->qmap) && (!i8 || numel < OW__Q8_MIN))
            return -1;
        if (slot == m->absmax) {
            out[0] = (int64_t)((numel + OW__QBLOCK - 1) / OW__QBLOCK);
            return 1;
        }
        if (slot == m->qmap) {
            out[0] = 256;
            return 1;
        }
    }
    memcpy(out, shape, (size_t)ndim * sizeof *out); /* a moment, or not the plan's */
    return ndim;
}

ow_dtype ow__qplan_dtype(const ow__qplan *p, ow__qmode mode, int slot, size_t numel)
{
    for (int k = 0; k < p->n; k++) {
        const ow__qmoment *m = &p->m[k];
        if (slot == m->slot && (mode == OW__QM_BF16 || mode == OW__QM_BF16_SR))
            return OW_DTYPE_BF16;
        if (slot == m->code && numel >= OW__Q8_MIN)
            return OW_DTYPE_U8;
    }
    return OW_DTYPE_F32;
}

void ow__qplan_pass(const ow__qplan *p, const ow__qstep *q, size_t nslots,
                    const ow_kernel_args *a, ow_kernel_fn fn, bool ref)
{
    ow__qplan_pass_bf16(p, q, nslots, a, fn, NULL, ref);
}

void ow__qplan_pass_bf16(const ow__qplan *p, const ow__qstep *q, size_t nslots,
                         const ow_kernel_args *a, ow_kernel_fn fn, ow__bf16_fn fused,
                         bool ref)
{
    /* bf16 moments are bf16 at every range of every size (never gathered) */
    if (fused && !ref && a->full &&
        (q->mode == OW__QM_BF16 || q->mode == OW__QM_BF16_SR)) {
        fused(a, q->mode == OW__QM_BF16_SR);
        return;
    }
    if (q->mode == OW__QM_F32 || nslots > OW__MAX_SLOTS) {
        fn(a);
        return;
    }
    float *s[OW__MAX_SLOTS];
    ow__qslot qs[OW__MAX_SLOTS];
    bool coded = false;
    for (size_t k = 0; k < nslots; k++) {
        s[k] = a->s[k];
        qs[k] = (ow__qslot){.kind = OW__Q_F32, .data = a->s[k]};
    }
    for (int k = 0; k < p->n; k++) {
        const ow__qmoment *m = &p->m[k];
        bool i8 = q->mode == OW__QM_I8 && m->code >= 0;
        int st = i8 ? m->code : m->slot;
        ow__qslot *d = &qs[m->slot];
        if (a->s[st]) { /* float32 at this range: a small tensor's state1 */
            s[m->slot] = a->s[st];
            *d = (ow__qslot){.kind = OW__Q_F32, .data = a->s[st]};
        } else if (a->full && a->full[st]) {
            coded = true;
            if (i8) {
                *d = (ow__qslot){.kind = m->is_signed ? OW__Q_I8S : OW__Q_I8U,
                                 .data = (uint8_t *)a->full[st] + a->off,
                                 .absmax =
                                     (float *)a->full[m->absmax] + a->off / OW__QBLOCK};
                if (a->off == 0) /* one range per tensor writes the (constant) map */
                    memcpy(a->full[m->qmap],
                           (m->is_signed ? &ow__qtab_signed : &ow__qtab_unsigned)->map,
                           sizeof ow__qtab_signed.map);
            } else {
                *d = (ow__qslot){.kind = q->mode == OW__QM_BF16_SR ? OW__Q_BF16_SR
                                                                   : OW__Q_BF16,
                                 .data = (uint16_t *)a->full[st] + a->off};
            }
        } else {
            s[m->slot] = NULL;
            *d = (ow__qslot){.kind = OW__Q_F32, .data = NULL};
        }
    }
    if (!coded) {
        ow_kernel_args b = *a;
        b.s = s;
        fn(&b);
        return;
    }
    ow__qrange r = {
        .a = a, .fn = fn, .slot = qs, .nslots = nslots, .key = q->key, .index = a->off};
    if (ref)
        ow__q_ref(&r);
    else
        ow__q_run(&r);
}
