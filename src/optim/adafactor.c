/* Adafactor (timm): the second moment of a matrix-like tensor factored into row and
 * column means (of its two leading dims for nD convs, else its two last dims, when both
 * exceed min_dim_size_to_factor), relative step sizes when lr is null, update clipping
 * by its RMS. timm's factory registers adafactor without betas and drops them, so its
 * first moment (and the caution applied to it, cadafactor) never runs: optwrap has
 * neither, and refuses betas. Steps one tensor at a time, each pass threaded; means
 * and norms are summed in double in a fixed order.
 * Adafactor: Adaptive Learning Rates with Sublinear Memory Cost,
 * https://arxiv.org/abs/1804.04235 */
#include "optim_internal.h"

#include <stdlib.h>
#include <string.h>

#define ADAFACTOR_KEYS(caution)                                                          \
    {.name = "lr",                                                                       \
     .type = OW_T_NUMBER,                                                                \
     .def = "null",                                                                      \
     .min = 0,                                                                           \
     .max = INFINITY,                                                                    \
     .flags = OW_KEY_RANGE | OW_KEY_NULLABLE,                                            \
     .doc = "learning rate; null: relative step"},                                       \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-30",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the squared gradient"},                                        \
        OW__KEY_NUM("eps_scale", "0.001", "lower bound of the parameter scale"),         \
        OW__KEY_NUM("clip_threshold", "1.0", "threshold of the update's RMS"),           \
        OW__KEY_ANYNUM("decay_rate", "-0.8", "beta2_t = 1 - t**decay_rate"),             \
        OW__KEY_NUM("weight_decay", "0.0", "decoupled weight decay, scaled by lr_t"),    \
        OW__KEY_BOOL("scale_parameter", "true", "scale the relative step by RMS(p)"),    \
        OW__KEY_BOOL("warmup_init", "false", "relative step warm-up"),                   \
        {.name = "min_dim_size_to_factor",                                               \
         .type = OW_T_INT,                                                               \
         .def = "16",                                                                    \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "factor dims larger than this"},                                         \
        OW__KEY_BOOL("caution", caution,                                                 \
                     "accepted: timm applies it to the first moment, never run"),        \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key adafactor_keys[] = {ADAFACTOR_KEYS("false")};
static const ow_key cadafactor_keys[] = {ADAFACTOR_KEYS("true")};

enum {
    K_LR,
    K_EPS,
    K_EPS_SCALE,
    K_CLIP,
    K_DECAY,
    K_WD,
    K_SCALE,
    K_WARMUP,
    K_MIN_DIM,
    K_CAUTION
};
static const char *const adafactor_params[] = {[K_LR] = "lr",
                                               [K_EPS] = "eps",
                                               [K_EPS_SCALE] = "eps_scale",
                                               [K_CLIP] = "clip_threshold",
                                               [K_DECAY] = "decay_rate",
                                               [K_WD] = "weight_decay",
                                               [K_SCALE] = "scale_parameter",
                                               [K_WARMUP] = "warmup_init",
                                               [K_MIN_DIM] = "min_dim_size_to_factor",
                                               [K_CAUTION] = "caution",
                                               NULL};

typedef struct adafactor_ctx {
    double lr, eps_scale, clip, beta2t, wd;
    double step;
    float eps;
    bool relative, scale_parameter, warmup;
    int min_dim;
} adafactor_ctx;

enum { S_STEP, S_ROW, S_COL, S_EXP_AVG_SQ, S_RMS };
static const ow_slot slots[] = {
    [S_STEP] = {.name = "step", .flags = OW_SLOT_SCALAR, .dtype = OW_DTYPE_I64},
    [S_ROW] = {.name = "exp_avg_sq_row"},
    [S_COL] = {.name = "exp_avg_sq_col"},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    [S_RMS] = {.name = "RMS", .flags = OW_SLOT_SCALAR, .dtype = OW_DTYPE_F32},
    {0},
};

/* timm's _get_options: the dims (col, row) to factor, or -1 */
static int factored_col(int ndim, const int64_t *shape, double min)
{
    if (ndim > 2 && shape[0] > min && shape[1] > min)
        return 0; /* nD convs: the leading out/in channels */
    if (ndim >= 2 && shape[ndim - 2] > min && shape[ndim - 1] > min)
        return ndim - 2;
    return -1;
}

static int remove_dim(int ndim, const int64_t *shape, int dim, int64_t *out)
{
    for (int d = 0, k = 0; d < ndim; d++)
        if (d != dim)
            out[k++] = shape[d];
    return ndim - 1;
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    int col = factored_col(ndim, shape, hp[K_MIN_DIM].v[0]);
    switch (slot) {
    case S_STEP:
    case S_RMS: return 0;
    case S_ROW: return col < 0 ? -1 : remove_dim(ndim, shape, col + 1, out);
    case S_COL: return col < 0 ? -1 : remove_dim(ndim, shape, col, out);
    default:
        if (col >= 0)
            return -1;
    }
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    return ndim;
}

static void prepare(ow_prepare_args *a)
{
    adafactor_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    c->step = a->scalars[S_STEP] += 1;
    /* relative_step = not lr is decided once, from the constructor's lr (the defaults):
     * a group's own lr does not turn it off, timm overwrites it every step */
    c->relative = !(a->defaults[K_LR].v[0] > 0);
    c->lr = a->lr;
    c->eps = ow__f(hp[K_EPS].v[0]);
    c->eps_scale = hp[K_EPS_SCALE].v[0];
    c->clip = hp[K_CLIP].v[0];
    c->beta2t = 1.0 - pow(c->step, hp[K_DECAY].v[0]);
    c->wd = hp[K_WD].v[0];
    c->scale_parameter = ow__hp_true(&hp[K_SCALE]);
    c->warmup = ow__hp_true(&hp[K_WARMUP]);
    c->min_dim = (int)hp[K_MIN_DIM].v[0];
}

/* What one tensor's passes share; each pass is a function over a range of its work
 * (units, row blocks, rows or elements) run by ow__parallel_range. */
typedef struct pass {
    const adafactor_ctx *c;
    const ow_tensor_args *t;
    const float *x; /* sum of squares: the array, its length, one double per unit */
    size_t n;
    double *part;
    size_t a, B, C, R, nb; /* factored: [A, C, R, B], slice a, nb row blocks */
    float *u, *cf, *rmean;
    float b2, omb2, div, lrf, decay;
} pass;

OW_SIMD static void squares_units(const void *arg, size_t lo, size_t hi)
{
    const pass *q = arg;
    for (size_t k = lo; k < hi; k++) {
        const float *x = q->x + k * OW__UNIT;
        size_t m = (k + 1) * OW__UNIT > q->n ? q->n - k * OW__UNIT : OW__UNIT;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t i = 0; i < m; i++)
            s += (double)x[i] * x[i];
        q->part[k] = s;
    }
}

/* Sum of squares in double over fixed units of OW__UNIT elements, the units added in
 * order: the same value whatever the thread count. part: one double per unit. */
static double sum_squares(const float *x, size_t n, int threads, double *part)
{
    size_t units = (n + OW__UNIT - 1) / OW__UNIT;
    pass q = {.x = x, .n = n, .part = part};
    ow__parallel_range(squares_units, &q, units, threads);
    double s = 0;
    for (size_t k = 0; k < units; k++)
        s += part[k];
    return s;
}

/* tensor.norm(2) / (numel ** 0.5), in float32 */
static float rms(const float *x, size_t n, int threads, double *part)
{
    return (float)sqrt(sum_squares(x, n, threads, part)) / (float)sqrt((double)n);
}

/* Rows of the factored dim C are summed in this many fixed blocks (fewer when C is
 * smaller): each block's column sums are kept apart and added in block order, so the
 * sums do not depend on the thread count. */
#define ROW_BLOCKS 8

/* One streaming read of g: the row means into exp_avg_sq_row, and each block's column
 * sums into part (nb*R*B doubles). */
OW_SIMD static void factored_sums(const void *arg, size_t lo, size_t hi)
{
    const pass *q = arg;
    const size_t B = q->B, C = q->C, R = q->R, a = q->a;
    const float *g = q->t->g, eps = q->c->eps;
    float *row = q->t->s[S_ROW];
    for (size_t blk = lo; blk < hi; blk++) {
        double *acc = q->part + blk * R * B;
        memset(acc, 0, R * B * sizeof *acc);
        for (size_t i = C * blk / q->nb; i < C * (blk + 1) / q->nb; i++)
            for (size_t b = 0; b < B; b++) {
                const float *gi = g + (a * C + i) * R * B + b;
                double s = 0;
#pragma omp simd reduction(+ : s)
                for (size_t j = 0; j < R; j++) {
                    float x = gi[j * B] * gi[j * B] + eps; /* grad ** 2 + eps */
                    s += x;
                    acc[j * B + b] += x;
                }
                /* exp_avg_sq_row.mul_(b2t).add_(update.mean(dim=row), alpha=1-b2t) */
                float *r = &row[(a * C + i) * B + b];
                *r = fmaf(q->omb2, (float)(s / (double)R), *r * q->b2);
            }
    }
}

/* u = rsqrt(row / mean_C(row)) * rsqrt(col) * g, rows [lo, hi) of slice a */
OW_SIMD static void factored_update(const void *arg, size_t lo, size_t hi)
{
    const pass *q = arg;
    const size_t B = q->B, C = q->C, R = q->R, a = q->a;
    const float *row = q->t->s[S_ROW], *g = q->t->g;
    for (size_t i = lo; i < hi; i++)
        for (size_t b = 0; b < B; b++) {
            float rf = 1.0f / sqrtf(row[(a * C + i) * B + b] / q->rmean[b]);
            size_t base = (a * C + i) * R * B + b;
#pragma omp simd
            for (size_t j = 0; j < R; j++)
                q->u[base + j * B] = (rf * q->cf[j * B + b]) * g[base + j * B];
        }
}

/* The factored second moment of a tensor seen as [A, C, R, B] (C, R the factored dims):
 * row/col = b2*row/col + (1-b2)*mean over R/C of g*g + eps, then the update u. tmp
 * holds 2*numel floats. */
static void factored(pass *q, int col, float *tmp)
{
    const ow_tensor_args *t = q->t;
    size_t A = 1, B = 1, C = (size_t)t->shape[col], R = (size_t)t->shape[col + 1];
    for (int d = 0; d < col; d++)
        A *= (size_t)t->shape[d];
    for (int d = col + 2; d < t->ndim; d++)
        B *= (size_t)t->shape[d];
    const size_t RB = R * B;
    float *cl = t->s[S_COL];
    q->B = B, q->C = C, q->R = R;
    q->nb = C < ROW_BLOCKS ? C : ROW_BLOCKS; /* nb*RB doubles fit in tmp: nb <= C */
    q->part = (double *)tmp;
    for (size_t a = 0; a < A; a++) {
        q->a = a;
        ow__parallel_range(factored_sums, q, q->nb, t->threads);
        for (size_t k = 0; k < RB; k++) {
            double s = 0;
            for (size_t blk = 0; blk < q->nb; blk++)
                s += q->part[blk * RB + k];
            float *v = &cl[a * RB + k];
            *v = fmaf(q->omb2, (float)(s / (double)C), *v * q->b2);
        }
        /* the block sums are spent: c_factor = exp_avg_sq_col.rsqrt() (1/sqrt, two
         * roundings as torch's rsqrt) and the row means take their place */
        q->cf = tmp, q->rmean = tmp + RB;
        for (size_t k = 0; k < RB; k++)
            q->cf[k] = 1.0f / sqrtf(cl[a * RB + k]);
        for (size_t b = 0; b < B; b++) {
            double s = 0;
            for (size_t i = 0; i < C; i++)
                s += t->s[S_ROW][(a * C + i) * B + b];
            q->rmean[b] = (float)(s / (double)C); /* exp_avg_sq_row.mean(dim=col) */
        }
        ow__parallel_range(factored_update, q, C, t->threads);
    }
}

/* Unfactored: exp_avg_sq = b2*v + (1-b2)*(g*g + eps); u = rsqrt(v) * g */
OW_SIMD static void plain_update(const void *arg, size_t lo, size_t hi)
{
    const pass *q = arg;
    float *restrict v = q->t->s[S_EXP_AVG_SQ], *restrict u = q->u;
    const float *restrict g = q->t->g;
    const float b2 = q->b2, omb2 = q->omb2, eps = q->c->eps;
#pragma omp simd
    for (size_t i = lo; i < hi; i++) {
        v[i] = fmaf(omb2, g[i] * g[i] + eps, v[i] * b2);
        u[i] = (1.0f / sqrtf(v[i])) * g[i]; /* exp_avg_sq.rsqrt().mul_(grad) */
    }
}

/* update.div_(clip divisor).mul_(lr_t); p.add_(p, alpha=-wd*lr_t); p.add_(-update) */
OW_SIMD static void apply_update(const void *arg, size_t lo, size_t hi)
{
    const pass *q = arg;
    float *restrict p = q->t->p;
    const float *restrict u = q->u;
    const float div = q->div, lrf = q->lrf, decay = q->decay;
    if (q->c->wd != 0) {
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            p[i] = fmaf(decay, p[i], p[i]) + -((u[i] / div) * lrf);
    } else {
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            p[i] = p[i] + -((u[i] / div) * lrf);
    }
}

/* Scratch: the update u, then 2*numel floats of working space from an 8-byte boundary
 * (double sums). */
static size_t scratch_bytes(const ow_hparam *hp, int ndim, const int64_t *shape)
{
    (void)hp;
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)shape[d];
    return (3 * n + 2) * sizeof(float);
}

/* timm's Adafactor.step for one tensor. Every pass runs on t->threads threads and sums
 * in a fixed order. */
static void step_tensor(const ow_tensor_args *t)
{
    const adafactor_ctx *c = t->ctx;
    size_t n = t->numel;
    float *scratch = t->scratch;
    float *tmp = scratch + n + (n & 1); /* 8-byte aligned for the double sums */
    pass q = {.c = c,
              .t = t,
              .u = scratch,
              .b2 = ow__f(c->beta2t),
              .omb2 = ow__f(1.0 - c->beta2t)};
    float rms_p = rms(t->p, n, t->threads, (double *)tmp);
    t->scalars[S_RMS] = rms_p;
    double lr_t = c->lr;
    if (c->relative) {
        double min_step = c->warmup ? 1e-6 * c->step : 1e-2;
        lr_t = fmin(min_step, 1.0 / sqrt(c->step));
        if (c->scale_parameter)
            lr_t *= fmax(c->eps_scale, rms_p);
    }
    int col = factored_col(t->ndim, t->shape, c->min_dim);
    if (col >= 0)
        factored(&q, col, tmp);
    else
        ow__parallel_range(plain_update, &q, n, t->threads);
    /* update.div_((rms(update) / clip_threshold).clamp_(min=1.0)) */
    q.div = rms(q.u, n, t->threads, (double *)tmp) / ow__f(c->clip);
    if (q.div < 1.0f)
        q.div = 1.0f;
    q.lrf = ow__f(lr_t);
    q.decay = ow__f(-c->wd * lr_t);
    ow__parallel_range(apply_update, &q, n, t->threads);
}

static const ow_optimizer_ops adafactor_ops = {.abi_version = OW_ABI_VERSION,
                                               .slots = slots,
                                               .params = adafactor_params,
                                               .ctx_size = sizeof(adafactor_ctx),
                                               .prepare = prepare,
                                               .slot_shape = slot_shape,
                                               .tensor_step = step_tensor,
                                               .scratch_bytes = scratch_bytes};

OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adafactor, "adafactor", "timm", adafactor_keys,
                    adafactor_ops,
                    "timm Adafactor: factored second moment, relative steps");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_cadafactor, "cadafactor", "timm", cadafactor_keys,
                    adafactor_ops, "timm Adafactor, cautious");
