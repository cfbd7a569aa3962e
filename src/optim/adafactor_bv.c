/* AdafactorBigVision (timm's adafactor_bv.py, after google-research/big_vision): a
 * second moment factored over the two largest dims (row and column means of g^2 + eps,
 * when the second largest is at least min_dim_size_to_factor), beta2 = min(cap,
 * 1 - step^-decay_rate), optional RMS clipping, momentum kept in bfloat16 (a bf16 slot)
 * or float32, optional caution, decay scaled by lr (or not: unscaled_wd; corrected:
 * lr^2/max_lr). timm's quirk is kept: the row factor's mean runs over dim dc-1 when
 * dc > dr, which for a 2-D tensor taller than wide is the size-1 dim (row factor 1).
 * Means are summed in double (torch: float32 in its own order). */
#include "optim_internal.h"

#include "matmul.h"

#include <string.h>

#define ABV_KEYS(caution, corrected)                                                     \
    OW__KEY_NUM("lr", "1.0", "learning rate"),                                           \
        {.name = "min_dim_size_to_factor",                                               \
         .type = OW_T_INT,                                                               \
         .def = "16",                                                                    \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "factor when the second largest dim is at least this"},                  \
        OW__KEY_ANYNUM("decay_rate", "0.8", "beta2 = 1 - step^-decay_rate"),             \
        OW__KEY_ANYNUM("decay_offset", "0",                                              \
                       "stored by timm but never read by its step: no effect"),          \
        OW__KEY_ANYNUM("beta2_cap", "0.999", "upper bound of beta2"),                    \
        {.name = "momentum",                                                             \
         .type = OW_T_NUMBER,                                                            \
         .def = "0.9",                                                                   \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "momentum of the update (null: none)"},                                  \
        {.name = "momentum_dtype",                                                       \
         .type = OW_T_STRING,                                                            \
         .def = "bfloat16",                                                              \
         .doc = "storage of the momentum: bfloat16 or float32"},                         \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "null",                                                                  \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "added to g^2 (null: 1e-30)"},                                           \
        OW__KEY_NUM("weight_decay", "0.0", "decoupled weight decay"),                    \
        {.name = "clipping_threshold",                                                   \
         .type = OW_T_NUMBER,                                                            \
         .def = "null",                                                                  \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "clip the update's RMS at this (null: no clipping)"},                    \
        OW__KEY_BOOL("unscaled_wd", "false", "decay not scaled by lr"),                  \
        OW__KEY_BOOL("caution", caution, "cautious update"),                             \
        OW__KEY_BOOL("corrected_weight_decay", corrected,                                \
                     "decay scaled by lr^2/max_lr (unscaled: lr/max_lr)"),               \
        {.name = "foreach",                                                              \
         .type = OW_T_BOOL,                                                              \
         .def = "false",                                                                 \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "true is refused: timm's multi-tensor path is not implemented"},         \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key abv_keys[] = {ABV_KEYS("false", "false")};
static const ow_key abvc_keys[] = {ABV_KEYS("false", "true")};
static const ow_key cabv_keys[] = {ABV_KEYS("true", "false")};
static const ow_key cabvc_keys[] = {ABV_KEYS("true", "true")};

enum {
    P_LR,
    P_MIN_DIM,
    P_DECAY_RATE,
    P_DECAY_OFFSET,
    P_BETA2_CAP,
    P_MOMENTUM,
    P_MOMENTUM_DTYPE,
    P_EPS,
    P_WD,
    P_CLIP,
    P_UNSCALED_WD,
    P_CAUTION,
    P_CORRECTED,
    P_FOREACH,
    NP
};
static const char *const abv_params[NP + 1] = {
    [P_LR] = "lr",
    [P_MIN_DIM] = "min_dim_size_to_factor",
    [P_DECAY_RATE] = "decay_rate",
    [P_DECAY_OFFSET] = "decay_offset",
    [P_BETA2_CAP] = "beta2_cap",
    [P_MOMENTUM] = "momentum",
    [P_MOMENTUM_DTYPE] = "momentum_dtype",
    [P_EPS] = "eps",
    [P_WD] = "weight_decay",
    [P_CLIP] = "clipping_threshold",
    [P_UNSCALED_WD] = "unscaled_wd",
    [P_CAUTION] = "caution",
    [P_CORRECTED] = "corrected_weight_decay",
    [P_FOREACH] = "foreach",
};

enum { S_STEP, S_ROW, S_COL, S_SQ, S_EXP_AVG };
static const ow_slot abv_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_F64),
    [S_ROW] = {.name = "exp_avg_sq_r"},
    [S_COL] = {.name = "exp_avg_sq_c"},
    [S_SQ] = {.name = "exp_avg_sq"},
    [S_EXP_AVG] = {.name = "exp_avg", .dtype = OW_DTYPE_BF16},
    {0},
};

static bool has_momentum(const ow_hparam *hp)
{
    return !hp[P_MOMENTUM].absent && !hp[P_MOMENTUM].is_null;
}

static bool bf16_momentum(const ow_hparam *hp)
{
    return !strcmp(hp[P_MOMENTUM_DTYPE].s, "bfloat16");
}

static bool check(const ow_hparam *hp, char *msg, size_t n)
{
    const char *md = hp[P_MOMENTUM_DTYPE].s;
    if (!md || (strcmp(md, "bfloat16") && strcmp(md, "float32"))) {
        snprintf(msg, n, "momentum_dtype must be 'bfloat16' or 'float32'%s",
                 md && !strcmp(md, "float16") ? " (float16 momentum is not supported)"
                                              : "");
        return false;
    }
    if (ow__hp_true(&hp[P_FOREACH])) {
        snprintf(msg, n,
                 "foreach: true is refused: timm's multi-tensor AdafactorBigVision "
                 "is not implemented (it asserts)");
        return false;
    }
    return true;
}

/* The largest dim dr and the second largest dc of timm's _factored_dims (sorted by
 * (size, index): on ties the later index counts as larger). */
static void two_largest(int ndim, const int64_t *shape, int *dc, int *dr)
{
    int big = 0, second = -1;
    for (int i = 1; i < ndim; i++)
        if (shape[i] >= shape[big])
            big = i;
    for (int i = 0; i < ndim; i++)
        if (i != big && (second < 0 || shape[i] >= shape[second]))
            second = i;
    *dc = second;
    *dr = big;
}

/* Factored when 2+ dims and the second largest is at least min_dim_size_to_factor. */
static bool factored(const ow_hparam *hp, int ndim, const int64_t *shape)
{
    if (ndim < 2)
        return false;
    int dc, dr;
    two_largest(ndim, shape, &dc, &dr);
    return (double)shape[dc] >= hp[P_MIN_DIM].v[0];
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    bool f = factored(hp, ndim, shape);
    bool has = slot == S_STEP                   ? true
               : slot == S_ROW || slot == S_COL ? f
               : slot == S_SQ                   ? !f
                                                : has_momentum(hp);
    if (!has)
        return -1;
    if (slot == S_STEP)
        return 0;
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    int dc, dr;
    if (slot == S_ROW || slot == S_COL) {
        two_largest(ndim, shape, &dc, &dr);
        out[slot == S_ROW ? dr : dc] = 1;
    }
    return ndim;
}

static ow_dtype slot_dtype(const ow_hparam *hp, int slot, size_t numel)
{
    (void)numel;
    return slot == S_EXP_AVG && bf16_momentum(hp) ? OW_DTYPE_BF16 : OW_DTYPE_F32;
}

typedef struct abv_ctx {
    double lr, max_lr, wd, momentum, clip, eps, beta2;
    bool corrected, unscaled, caution, has_momentum, bf16, clipping;
} abv_ctx;

static void prepare(ow_prepare_args *a)
{
    abv_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double step = a->scalars[S_STEP] += 1;
    memset(c, 0, sizeof *c);
    c->lr = a->lr;
    c->max_lr = a->defaults[P_LR].v[0];
    c->wd = hp[P_WD].v[0];
    c->has_momentum = has_momentum(hp);
    c->momentum = c->has_momentum ? hp[P_MOMENTUM].v[0] : 0;
    c->bf16 = bf16_momentum(hp);
    c->clipping = !hp[P_CLIP].is_null && !hp[P_CLIP].absent;
    c->clip = c->clipping ? hp[P_CLIP].v[0] : 0;
    c->eps = hp[P_EPS].is_null || hp[P_EPS].absent ? 1e-30 : hp[P_EPS].v[0];
    c->beta2 = fmin(hp[P_BETA2_CAP].v[0], 1.0 - pow(step, -hp[P_DECAY_RATE].v[0]));
    c->corrected = ow__hp_true(&hp[P_CORRECTED]);
    c->unscaled = ow__hp_true(&hp[P_UNSCALED_WD]);
    c->caution = ow__hp_true(&hp[P_CAUTION]);
}

static inline float lerp(float self, float end, float w)
{
    return fabsf(w) < 0.5f ? fmaf(w, end - self, self)
                           : fmaf(-(end - self), 1.0f - w, end);
}

/* Index into a tensor of shape `shape` with dim `d` collapsed to 1, for flat index i
 * of the full tensor. */
static size_t collapsed(size_t i, int ndim, const int64_t *shape, int d)
{
    size_t out = 0, mul = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        size_t idx = i % (size_t)shape[k];
        i /= (size_t)shape[k];
        if (k != d) {
            out += idx * mul;
            mul *= (size_t)shape[k];
        }
    }
    return out;
}

/* mean over dim d (keepdim) of x (shape), into out (shape with d = 1), summed in
 * double, scaled as torch's mean: sum * (1/N) in float */
static void mean_dim(const float *x, size_t n, int ndim, const int64_t *shape, int d,
                     float *out, double *acc)
{
    size_t m = n / (size_t)shape[d];
    for (size_t j = 0; j < m; j++)
        acc[j] = 0;
    for (size_t i = 0; i < n; i++)
        acc[collapsed(i, ndim, shape, d)] += x[i];
    for (size_t j = 0; j < m; j++)
        out[j] = (float)(acc[j] / (double)shape[d]);
}

static size_t scratch_bytes(const ow_hparam *hp, int ndim, const int64_t *shape)
{
    (void)hp;
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)shape[d];
    return n * (2 * sizeof(float) + sizeof(double)) + 64;
}

static void abv_step(const ow_tensor_args *a)
{
    const abv_ctx *c = a->ctx;
    size_t n = a->numel;
    int nd = a->ndim;
    const int64_t *sh = a->shape;
    float *p = a->p, *u = a->scratch, *tmp = u + n;
    double *acc = (double *)(void *)(tmp + n + (n & 1));
    const float *g = a->g;
    const float eps = ow__f(c->eps), w = ow__f(1 - c->beta2);
    for (size_t i = 0; i < n; i++)
        tmp[i] = g[i] * g[i] + eps; /* torch.square(grad) + eps */
    int dc = 0, dr = 0;
    if (a->s[S_ROW]) {
        float *r = a->s[S_ROW], *col = a->s[S_COL];
        int64_t rshape[OW_MAX_DIMS];
        memcpy(rshape, sh, (size_t)nd * sizeof *rshape);
        two_largest(nd, sh, &dc, &dr);
        rshape[dr] = 1;
        size_t nr = n / (size_t)sh[dr], ncl = n / (size_t)sh[dc];
        float *mean = u; /* scratch for the means */
        mean_dim(tmp, n, nd, sh, dr, mean, acc);
        for (size_t j = 0; j < nr; j++)
            r[j] = lerp(r[j], mean[j], w);
        mean_dim(tmp, n, nd, sh, dc, mean, acc);
        for (size_t j = 0; j < ncl; j++)
            col[j] = lerp(col[j], mean[j], w);
        /* row_col_mean = r.mean(dim=dc-1 if dc > dr else dc, keepdim) */
        int rd = dc > dr ? dc - 1 : dc;
        float *rcm = tmp; /* g^2 is no longer needed */
        mean_dim(r, nr, nd, rshape, rd, rcm, acc);
        for (size_t i = 0; i < n; i++) {
            size_t ri = collapsed(i, nd, sh, dr), ci = collapsed(i, nd, sh, dc);
            size_t mi = collapsed(ri, nd, rshape, rd);
            float rf = 1.0f / sqrtf(r[ri] / rcm[mi]); /* (r / row_col_mean).rsqrt() */
            float cf = 1.0f / sqrtf(col[ci]);
            u[i] = g[i] * rf * cf;
        }
    } else {
        float *v = a->s[S_SQ];
        for (size_t i = 0; i < n; i++) {
            v[i] = lerp(v[i], tmp[i], w);
            u[i] = g[i] * (1.0f / sqrtf(v[i]));
        }
    }
    if (c->clipping) { /* update /= clamp(|u| / (sqrt(numel) / clip), max=1) */
        double ss = 0;
        for (size_t i = 0; i < n; i++)
            ss += (double)u[i] * u[i];
        float den = (float)sqrt(ss) / ow__f(pow((double)n, 0.5) / c->clip);
        den = den > 1.0f ? 1.0f : den;
        for (size_t i = 0; i < n; i++)
            u[i] = u[i] / den;
    }
    if (c->has_momentum) {
        const float mw = ow__f(1 - c->momentum);
        if (c->bf16) {
            uint16_t *m = (uint16_t *)(void *)a->s[S_EXP_AVG];
            for (size_t i = 0; i < n; i++) { /* exp_avg.lerp_(u.to(bf16)); u = exp_avg */
                m[i] = ow__bf16(lerp(ow__bf16_f(m[i]), ow__bf16_round(u[i]), mw));
                u[i] = ow__bf16_f(m[i]);
            }
        } else {
            float *m = a->s[S_EXP_AVG];
            for (size_t i = 0; i < n; i++)
                u[i] = m[i] = lerp(m[i], u[i], mw);
        }
        if (c->caution) {
            size_t count = 0;
            for (size_t i = 0; i < n; i++)
                count += u[i] * g[i] > 0;
            float s = (float)ow__caution_scale((double)count, n);
            for (size_t i = 0; i < n; i++)
                u[i] = u[i] * (u[i] * g[i] > 0 ? s : 0.0f);
        }
    }
    const float lr = ow__f(c->lr);
    if (c->wd != 0) {
        double scale = c->unscaled ? (c->corrected ? c->lr / c->max_lr : 1.0)
                                   : (c->corrected ? c->lr * c->lr / c->max_lr : c->lr);
        const float keep = ow__f(1. - scale * c->wd);
        for (size_t i = 0; i < n; i++)
            p[i] = p[i] * keep;
    }
    for (size_t i = 0; i < n; i++)
        p[i] = p[i] - u[i] * lr; /* update.mul_(lr); param.add_(update, alpha=-1) */
}

static const ow_optimizer_ops abv_ops = {
    .abi_version = OW_ABI_VERSION,
    .slots = abv_slots,
    .params = abv_params,
    .ctx_size = sizeof(abv_ctx),
    .check = check,
    .prepare = prepare,
    .slot_shape = slot_shape,
    .tensor_step = abv_step,
    .scratch_bytes = scratch_bytes,
    .slot_dtype = slot_dtype,
};

OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adafactorbv, "adafactorbv", "timm", abv_keys,
                    abv_ops, "timm AdafactorBigVision: factored moments, bf16 momentum");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adafactorbvc, "adafactorbvc", "timm", abvc_keys,
                    abv_ops, "timm AdafactorBigVision, corrected weight decay");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_cadafactorbv, "cadafactorbv", "timm", cabv_keys,
                    abv_ops, "timm AdafactorBigVision, cautious");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_cadafactorbvc, "cadafactorbvc", "timm", cabvc_keys,
                    abv_ops, "timm AdafactorBigVision, cautious, corrected weight decay");
