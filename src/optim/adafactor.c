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
    double min_dim;
} adafactor_ctx;

enum { S_STEP, S_ROW, S_COL, S_EXP_AVG_SQ, S_RMS };
static const ow_slot slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
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
    c->min_dim = hp[K_MIN_DIM].v[0];
}

/* What one tensor's passes share; each pass is a function over a range of its work
 * (units, row blocks, rows or elements) run by ow__parallel_range. */
typedef struct pass {
    const adafactor_ctx *c;
    const ow_tensor_args *t;
    const float *x; /* sum of squares: the array, its length, one double per unit */
    size_t n;
    double *part, *rowsq;
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

/* A factored tensor seen as [A, C, R, B] (C, R the factored dims). */
typedef struct dims {
    size_t A, C, R, B, nb;
} dims;

static dims dims_of(int ndim, const int64_t *shape, int col)
{
    dims d = {.A = 1, .B = 1, .C = (size_t)shape[col], .R = (size_t)shape[col + 1]};
    for (int k = 0; k < col; k++)
        d.A *= (size_t)shape[k];
    for (int k = col + 2; k < ndim; k++)
        d.B *= (size_t)shape[k];
    d.nb = d.C < ROW_BLOCKS ? d.C : ROW_BLOCKS;
    return d;
}

/* Where the scratch goes: a factored tensor keeps the column factors and row means of
 * every slice (floats), then per-row sums of u*u and the block column sums (doubles);
 * an unfactored one keeps the update u, then the unit sums. The update of a factored
 * tensor is never stored: the sums pass and the apply pass both compute it from g. */
typedef struct layout {
    size_t cf, rmean, u, dbl; /* offsets in floats; dbl: where the doubles start */
    size_t bytes;
} layout;

static layout layout_of(int ndim, const int64_t *shape, int col)
{
    size_t n = 1;
    for (int k = 0; k < ndim; k++)
        n *= (size_t)shape[k];
    size_t units = (n + OW__UNIT - 1) / OW__UNIT + 1;
    layout l = {0};
    if (col < 0) {
        l.dbl = (n + 1) & ~(size_t)1;
        l.bytes = l.dbl * sizeof(float) + units * sizeof(double);
        return l;
    }
    dims d = dims_of(ndim, shape, col);
    l.rmean = d.A * d.R * d.B;
    l.dbl = (l.rmean + d.A * d.B + 1) & ~(size_t)1;
    size_t dbls = d.A * d.C + d.nb * d.R * d.B + (d.B == 1 ? d.nb * d.R : 0);
    l.bytes = l.dbl * sizeof(float) + (dbls > units ? dbls : units) * sizeof(double);
    return l;
}

static size_t scratch_bytes(const ow_hparam *hp, int ndim, const int64_t *shape)
{
    return layout_of(ndim, shape, factored_col(ndim, shape, hp[K_MIN_DIM].v[0])).bytes;
}

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
        double *restrict t2 = q->part + (q->nb + blk) * R; /* B == 1 only */
        if (B == 1)
            memset(t2, 0, R * sizeof *t2);
        for (size_t i = C * blk / q->nb; i < C * (blk + 1) / q->nb; i++) {
            if (B == 1) { /* contiguous rows, read once for both the row and the rms */
                const float *restrict gi = g + (a * C + i) * R;
                double *restrict ac = acc, s = 0;
#pragma omp simd reduction(+ : s)
                for (size_t j = 0; j < R; j++) {
                    float x = gi[j] * gi[j] + eps;
                    s += x;
                    ac[j] += x;
                }
                float *r = &row[a * C + i];
                *r = fmaf(q->omb2, (float)(s / (double)R), *r * q->b2);
                /* sum of u*u = rmean * sum_j (1/col_j) * sum_i g_ij^2 / row_i: the
                 * per-column part, while the row is in cache */
                const double inv = 1.0 / (double)*r;
#pragma omp simd
                for (size_t j = 0; j < R; j++)
                    t2[j] += (double)gi[j] * gi[j] * inv;
                continue;
            }
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
}

/* Row r = a*C + i of the update: u = rsqrt(row / mean_C(row)) * rsqrt(col) * g. */
static inline float row_factor(const pass *q, size_t r, size_t b)
{
    size_t a = r / q->C;
    return 1.0f / sqrtf(q->t->s[S_ROW][r * q->B + b] / q->rmean[a * q->B + b]);
}

/* sum of u*u per row, rows [lo, hi) of all slices (A*C rows), into rowsq */
OW_SIMD static void factored_sumsq(const void *arg, size_t lo, size_t hi)
{
    const pass *q = arg;
    const size_t B = q->B, R = q->R, RB = R * B;
    const float *g = q->t->g;
    for (size_t r = lo; r < hi; r++) {
        const float *cf = q->cf + (r / q->C) * RB;
        double s = 0;
        if (B == 1) { /* contiguous rows (2-D weights): a loop the compiler vectorizes */
            const float rf = row_factor(q, r, 0);
            const float *restrict gr = g + r * R, *restrict cr = cf;
#pragma omp simd reduction(+ : s)
            for (size_t j = 0; j < R; j++) {
                float u = (rf * cr[j]) * gr[j];
                s += (double)u * u;
            }
            q->rowsq[r] = s;
            continue;
        }
        for (size_t b = 0; b < B; b++) {
            float rf = row_factor(q, r, b);
            const float *gr = g + r * RB + b;
#pragma omp simd reduction(+ : s)
            for (size_t j = 0; j < R; j++) {
                float u = (rf * cf[j * B + b]) * gr[j * B];
                s += (double)u * u;
            }
        }
        q->rowsq[r] = s;
    }
}

/* update.div_(clip divisor).mul_(lr_t); p.add_(p, alpha=-wd*lr_t); p.add_(-update) */
static inline __attribute__((always_inline)) float apply_one(const pass *q, float p,
                                                             float u)
{
    return q->c->wd != 0 ? fmaf(q->decay, p, p) + -((u / q->div) * q->lrf)
                         : p + -((u / q->div) * q->lrf);
}

/* the factored update, recomputed from g, applied to rows [lo, hi) */
OW_SIMD static void factored_apply(const void *arg, size_t lo, size_t hi)
{
    const pass *q = arg;
    const size_t B = q->B, R = q->R, RB = R * B;
    const float *g = q->t->g;
    float *p = q->t->p;
    const bool wd = q->c->wd != 0;
    for (size_t r = lo; r < hi; r++) {
        const float *cf = q->cf + (r / q->C) * RB;
        if (B == 1) { /* contiguous rows, the decay test out of the loop */
            const float rf = row_factor(q, r, 0), div = q->div, lrf = q->lrf,
                        decay = q->decay;
            const float *restrict gr = g + r * R, *restrict cr = cf;
            float *restrict pr = p + r * R;
            if (wd) {
#pragma omp simd
                for (size_t j = 0; j < R; j++)
                    pr[j] = fmaf(decay, pr[j], pr[j]) +
                            -((((rf * cr[j]) * gr[j]) / div) * lrf);
            } else {
#pragma omp simd
                for (size_t j = 0; j < R; j++)
                    pr[j] = pr[j] + -((((rf * cr[j]) * gr[j]) / div) * lrf);
            }
            continue;
        }
        for (size_t b = 0; b < B; b++) {
            float rf = row_factor(q, r, b);
            size_t base = r * RB + b;
#pragma omp simd
            for (size_t j = 0; j < R; j++) {
                float u = (rf * cf[j * B + b]) * g[base + j * B];
                p[base + j * B] = apply_one(q, p[base + j * B], u);
            }
        }
    }
}

/* The factored second moment: row/col = b2*row/col + (1-b2)*mean over R/C of g*g + eps
 * per slice, then the column factors and row means of every slice, and the sum of u*u
 * (returned). */
static double factored(pass *q, int col, float *scratch, const layout *l)
{
    const ow_tensor_args *t = q->t;
    dims d = dims_of(t->ndim, t->shape, col);
    const size_t RB = d.R * d.B;
    float *cl = t->s[S_COL];
    q->B = d.B, q->C = d.C, q->R = d.R, q->nb = d.nb;
    q->cf = scratch + l->cf;
    q->rmean = scratch + l->rmean;
    q->rowsq = (double *)(void *)(scratch + l->dbl);
    q->part = q->rowsq + d.A * d.C;
    double sumsq = 0;
    for (size_t a = 0; a < d.A; a++) {
        q->a = a;
        ow__parallel_range(factored_sums, q, q->nb, t->threads);
        for (size_t k = 0; k < RB; k++) {
            double s = 0;
            for (size_t blk = 0; blk < q->nb; blk++)
                s += q->part[blk * RB + k];
            float *v = &cl[a * RB + k];
            *v = fmaf(q->omb2, (float)(s / (double)d.C), *v * q->b2);
            /* c_factor = exp_avg_sq_col.rsqrt() (1/sqrt, two roundings as torch's) */
            q->cf[a * RB + k] = 1.0f / sqrtf(*v);
        }
        for (size_t b = 0; b < d.B; b++) {
            double s = 0;
            for (size_t i = 0; i < d.C; i++)
                s += t->s[S_ROW][(a * d.C + i) * d.B + b];
            q->rmean[a * d.B + b] = (float)(s / (double)d.C); /* .mean(dim=col) */
        }
        if (d.B == 1) { /* the sum of u*u from the sums pass's column parts */
            double s = 0;
            for (size_t j = 0; j < d.R; j++) {
                double tj = 0;
                for (size_t blk = 0; blk < q->nb; blk++)
                    tj += q->part[(q->nb + blk) * d.R + j];
                s += tj / (double)cl[a * RB + j];
            }
            sumsq += (double)q->rmean[a] * s;
        }
    }
    if (d.B == 1)
        return sumsq;
    ow__parallel_range(factored_sumsq, q, d.A * d.C, t->threads);
    double s = 0;
    for (size_t r = 0; r < d.A * d.C; r++)
        s += q->rowsq[r];
    return s;
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

OW_SIMD static void plain_apply(const void *arg, size_t lo, size_t hi)
{
    const pass *q = arg;
    float *restrict p = q->t->p;
    const float *restrict u = q->u;
#pragma omp simd
    for (size_t i = lo; i < hi; i++)
        p[i] = apply_one(q, p[i], u[i]);
}

/* timm's Adafactor.step for one tensor. Every pass runs on t->threads threads and sums
 * in a fixed order. */
static void step_tensor(const ow_tensor_args *t)
{
    const adafactor_ctx *c = t->ctx;
    size_t n = t->numel;
    float *scratch = t->scratch;
    int col = factored_col(t->ndim, t->shape, c->min_dim);
    layout l = layout_of(t->ndim, t->shape, col);
    double *part = (double *)(void *)(scratch + l.dbl);
    pass q = {.c = c,
              .t = t,
              .u = scratch + l.u,
              .b2 = ow__f(c->beta2t),
              .omb2 = ow__f(1.0 - c->beta2t)};
    float rms_p = rms(t->p, n, t->threads, part);
    t->scalars[S_RMS] = rms_p;
    double lr_t = c->lr;
    if (c->relative) {
        double min_step = c->warmup ? 1e-6 * c->step : 1e-2;
        lr_t = fmin(min_step, 1.0 / sqrt(c->step));
        if (c->scale_parameter)
            lr_t *= fmax(c->eps_scale, rms_p);
    }
    double sumsq;
    if (col >= 0) {
        sumsq = factored(&q, col, scratch, &l);
    } else {
        ow__parallel_range(plain_update, &q, n, t->threads);
        sumsq = sum_squares(q.u, n, t->threads, part);
    }
    /* update.div_((rms(update) / clip_threshold).clamp_(min=1.0)) */
    q.div = (float)sqrt(sumsq) / (float)sqrt((double)n) / ow__f(c->clip);
    if (q.div < 1.0f)
        q.div = 1.0f;
    q.lrf = ow__f(lr_t);
    q.decay = ow__f(-c->wd * lr_t);
    if (col >= 0)
        ow__parallel_range(factored_apply, &q, q.C * (n / (q.C * q.R * q.B)), t->threads);
    else
        ow__parallel_range(plain_apply, &q, n, t->threads);
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
