/* state_convert.c -- a staged state saved under one `state_dtype` put into the layout
 * of another (issue #12): every moment is decoded into float32 with quant.c's codecs
 * and encoded the way the optimizer stores it. A slot kept in the same dtype keeps its
 * bytes. Under int8 a moment lives in bitsandbytes' slots "state<k>" (codes, or float32
 * below 4096 elements), "absmax<k>" and "qmap<k>"; the other layouts keep it under the
 * reference's name (exp_avg); the moments pair up in slot order. */
#include "../util/safetensors.h"
#include "quant.h"

#include <string.h>

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* absmax<k> and qmap<k> hold the blocks and the map of a code slot state<k> */
static bool is_aux(const ow_optimizer *opt, size_t k)
{
    const char *n = opt->ops->slots[k].name;
    return starts(n, "absmax") || starts(n, "qmap");
}

/* The slot named prefix + the suffix of code slot k's name after "state"; -1: none. */
static long aux_of(const ow_optimizer *opt, size_t k, const char *prefix)
{
    const char *n = opt->ops->slots[k].name;
    if (!starts(n, "state"))
        return -1;
    char want[64];
    snprintf(want, sizeof want, "%s%s", prefix, n + 5);
    for (size_t j = 0; j < opt->nslots; j++)
        if (!strcmp(opt->ops->slots[j].name, want))
            return (long)j;
    return -1;
}

/* One layout of a tensor's slots: shape (-1 absent) and dtype under hp. */
typedef struct layout {
    int nd[OW__MAX_SLOTS];
    size_t numel[OW__MAX_SLOTS];
    ow_dtype dt[OW__MAX_SLOTS];
} layout;

static void layout_of(const ow_optimizer *opt, const ow__tensor *t, const ow_hparam *hp,
                      layout *l)
{
    for (size_t k = 0; k < opt->nslots; k++) {
        int64_t shape[OW_MAX_DIMS];
        l->nd[k] = opt->ops->slots[k].flags & OW_SLOT_SCALAR
                       ? -1 /* scalars stay as they are */
                       : ow__slot_shape_hp(opt, hp, t, k, shape);
        l->numel[k] = 1;
        for (int d = 0; d < l->nd[k]; d++)
            l->numel[k] *= (size_t)shape[d];
        l->dt[k] = ow__slot_dtype_hp(opt, hp, k, t->numel);
    }
}

/* Which map the optimizer encodes code slot `code` with under hp: its pass kernels copy
 * the map into the slot's qmap<k> when they start a tensor (qplan.c), so a call over
 * no elements with scratch storage shows it. NULL where no pass does (a per-tensor
 * step, such as AdEMAMix's). */
static const ow__qtab *encoder_map(const ow_optimizer *opt, const ow_hparam *hp,
                                   const layout *l, size_t code)
{
    long qk = aux_of(opt, code, "qmap");
    if (qk < 0 || !opt->ops->passes || !opt->ops->prepare)
        return NULL;
    _Alignas(64) unsigned char ctx[OW_MAX_CTX] = {0};
    double shared[OW_MAX_CTX / sizeof(double)] = {0}, scalars[OW__MAX_SLOTS] = {0};
    double sums[OW_MAX_SUMS] = {0}, tv[OW_MAX_TENSOR_SCALARS] = {0};
    /* every slot the layout has gets 256 floats: the kernels write only maps here */
    static const float one = 0;
    float scratch[OW__MAX_SLOTS][256] = {{0}}, *qmap = scratch[qk];
    ow_hparam view[OW_MAX_PARAMS];
    ow__params_view(opt->pmap, opt->np, hp, view);
    ow_prepare_args pa = {.hp = view,
                          .defaults = opt->pdefaults,
                          .lr = opt->lr_key >= 0 ? ow__hp_num(&hp[opt->lr_key], 0) : 0,
                          .scalars = scalars,
                          .ctx = ctx,
                          .passes = ~0u,
                          .shared = shared};
    opt->ops->prepare(&pa);
    float *s[OW__MAX_SLOTS] = {0};
    void *full[OW__MAX_SLOTS] = {0};
    for (size_t k = 0; k < opt->nslots; k++)
        full[k] = l->nd[k] < 0 ? NULL : scratch[k];
    ow_kernel_args a = {.n = 0,
                        .p = scratch[0],
                        .g = &one,
                        .s = s,
                        .ctx = ctx,
                        .t = tv,
                        .sums = sums,
                        .full = full};
    for (const ow_pass *p = opt->ops->passes; p->run; p++)
        p->run(&a);
    return !memcmp(qmap, ow__qtab_signed.map, sizeof scratch[0])     ? &ow__qtab_signed
           : !memcmp(qmap, ow__qtab_unsigned.map, sizeof scratch[0]) ? &ow__qtab_unsigned
                                                                     : NULL;
}

/* Slot k of the file's layout as float32 (new buffer). */
static int decode(const ow_optimizer *opt, const ow__tensor *t, const layout *l,
                  float *const *slot, size_t k, float **out, const char *where,
                  ow_error *err)
{
    size_t m = l->numel[k];
    float *f = ow__malloc((m ? m : 1) * sizeof *f);
    if (!f)
        return ow__nomem(err);
    *out = f;
    if (l->dt[k] == OW_DTYPE_F32)
        memcpy(f, slot[k], m * sizeof *f);
    else if (l->dt[k] == OW_DTYPE_BF16)
        ow__bf16_decode((const uint16_t *)slot[k], m, f);
    else {
        long ak = aux_of(opt, k, "absmax"), qk = aux_of(opt, k, "qmap");
        const float *map = qk >= 0 ? slot[qk] : NULL;
        const ow__qtab *q =
            !map ? NULL
            : !memcmp(map, ow__qtab_signed.map, sizeof ow__qtab_signed.map)
                ? &ow__qtab_signed
            : !memcmp(map, ow__qtab_unsigned.map, sizeof ow__qtab_signed.map)
                ? &ow__qtab_unsigned
                : NULL;
        if (!q || ak < 0)
            return ow__st_error(err, where,
                                "'state.%zu.%s': its qmap is not bitsandbytes' dynamic "
                                "map, so it cannot be converted",
                                (size_t)(t - opt->t), opt->ops->slots[k].name);
        size_t n = t->numel, nb = (n + OW__QBLOCK - 1) / OW__QBLOCK;
        for (size_t part = 0; n && part < m / n; part++) /* AdEMAMix: [2, *shape] */
            ow__q8_dequantize(q, (const uint8_t *)slot[k] + part * n,
                              slot[ak] + part * nb, n, f + part * n);
    }
    return OW_OK;
}

/* f (float32, the moment) into slot k of the optimizer's layout: *out a new buffer,
 * and under int8 its absmax<k> and qmap<k>. */
static int encode(const ow_optimizer *opt, const ow__tensor *t, const ow_hparam *hp,
                  const layout *l, const float *f, size_t k, float **out,
                  const char *where, ow_error *err)
{
    size_t m = l->numel[k];
    void *d = ow__malloc((m ? m : 1) * ow__dtype_size(l->dt[k]));
    if (!d)
        return ow__nomem(err);
    out[k] = d;
    if (l->dt[k] == OW_DTYPE_F32) {
        memcpy(d, f, m * sizeof *f);
        return OW_OK;
    }
    if (l->dt[k] == OW_DTYPE_BF16) { /* nearest even, whatever stochastic_rounding */
        ow__bf16_encode(f, m, d);
        return OW_OK;
    }
    long ak = aux_of(opt, k, "absmax"), qk = aux_of(opt, k, "qmap");
    const ow__qtab *q = encoder_map(opt, hp, l, k);
    if (!q || ak < 0 || qk < 0)
        return ow__st_error(
            err, where,
            "%s cannot convert the state of parameter %zu into int8 (it converts "
            "between float32 and bfloat16 only)",
            opt->entry->name, (size_t)(t - opt->t));
    size_t n = t->numel, nb = (n + OW__QBLOCK - 1) / OW__QBLOCK;
    if (!(out[ak] = ow__malloc((l->numel[ak] ? l->numel[ak] : 1) * sizeof(float))) ||
        !(out[qk] = ow__malloc(256 * sizeof(float))))
        return ow__nomem(err);
    for (size_t part = 0; n && part < m / n; part++)
        ow__q8_quantize(q, f + part * n, n, (uint8_t *)d + part * n, out[ak] + part * nb);
    memcpy(out[qk], q->map, sizeof q->map);
    return OW_OK;
}

int ow__state_convert(const ow_optimizer *opt, const ow__tensor *t, const ow_hparam *from,
                      const ow_hparam *to, float **slot, size_t *slot_numel,
                      bool *present, const char *where, ow_error *err)
{
    layout lf, lt;
    layout_of(opt, t, from, &lf);
    layout_of(opt, t, to, &lt);
    size_t a[OW__MAX_SLOTS], b[OW__MAX_SLOTS], na = 0, nb = 0, src[OW__MAX_SLOTS];
    for (size_t k = 0; k < opt->nslots; k++) {
        src[k] = k;
        if (!is_aux(opt, k) && lf.nd[k] >= 0 && lt.nd[k] >= 0 &&
            lf.numel[k] != lt.numel[k])
            na = OW__MAX_SLOTS + 1; /* no pairing fits */
        if (is_aux(opt, k) || (lf.nd[k] < 0) == (lt.nd[k] < 0))
            continue;
        if (lf.nd[k] >= 0)
            a[na++] = k; /* a moment the file keeps elsewhere ... */
        else
            b[nb++] = k; /* ... where the optimizer keeps it, in the same order */
    }
    bool fits = na == nb;
    for (size_t j = 0; fits && j < nb; j++) {
        src[b[j]] = a[j];
        fits = lf.numel[a[j]] == lt.numel[b[j]];
    }
    if (!fits)
        return ow__st_error(err, where,
                            "%s cannot convert the state of parameter %zu between these "
                            "state_dtype settings",
                            opt->entry->name, (size_t)(t - opt->t));
    float *out[OW__MAX_SLOTS] = {0};
    int rc = OW_OK;
    for (size_t k = 0; k < opt->nslots && !rc; k++) {
        size_t s = src[k];
        if (is_aux(opt, k) || lt.nd[k] < 0)
            continue;
        if (lt.dt[k] == lf.dt[s]) { /* the same bytes */
            if (!(out[k] = ow__malloc((lt.numel[k] ? lt.numel[k] : 1) *
                                      ow__dtype_size(lt.dt[k]))))
                rc = ow__nomem(err);
            else
                memcpy(out[k], slot[s], lt.numel[k] * ow__dtype_size(lt.dt[k]));
            continue;
        }
        float *f = NULL;
        rc = decode(opt, t, &lf, slot, s, &f, where, err);
        if (!rc)
            rc = encode(opt, t, to, &lt, f, k, out, where, err);
        ow_free(f);
    }
    for (size_t k = 0; k < opt->nslots; k++) {
        if (rc) {
            ow_free(out[k]);
            continue;
        }
        if (opt->ops->slots[k].flags & OW_SLOT_SCALAR)
            continue;
        ow_free(slot[k]);
        slot[k] = out[k];
        slot_numel[k] = out[k] ? lt.numel[k] : 0;
        present[k] = out[k] != NULL;
    }
    return rc;
}
