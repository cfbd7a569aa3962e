/* Adafactor (timm): the second moment of a matrix-like tensor factored into row and
 * column means (of its two leading dims for nD convs, else its two last dims, when both
 * exceed min_dim_size_to_factor), relative step sizes when lr is null, update clipping
 * by its RMS, optional first moment (betas) with caution. Steps one tensor at a time;
 * means and norms are summed in double.
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
        {.name = "betas",                                                                \
         .type = OW_T_NUMLIST,                                                           \
         .def = "null",                                                                  \
         .min = 0,                                                                       \
         .max = 1,                                                                       \
         .flags = OW_KEY_RANGE | OW_KEY_NULLABLE,                                        \
         .doc = "[beta1, ...]: first moment; null: none"},                               \
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
        OW__KEY_BOOL("caution", caution, "cautious update (with betas)"),                \
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
    K_BETAS,
    K_WD,
    K_SCALE,
    K_WARMUP,
    K_MIN_DIM,
    K_CAUTION
};

typedef struct adafactor_ctx {
    double lr, eps_scale, clip, beta2t, beta1, wd;
    double step;
    float eps;
    bool relative, scale_parameter, warmup, has_beta1, caution;
    int min_dim;
} adafactor_ctx;

enum { S_STEP, S_EXP_AVG, S_ROW, S_COL, S_EXP_AVG_SQ, S_RMS };
static const ow_slot slots[] = {
    [S_STEP] = {.name = "step", .flags = OW_SLOT_SCALAR, .dtype = OW_DTYPE_I64},
    [S_EXP_AVG] = {.name = "exp_avg"},
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
    case S_EXP_AVG:
        if (hp[K_BETAS].is_null || hp[K_BETAS].n == 0)
            return -1;
        break;
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
    c->has_beta1 = !hp[K_BETAS].is_null && hp[K_BETAS].n > 0;
    c->beta1 = hp[K_BETAS].v[0];
    c->wd = hp[K_WD].v[0];
    c->scale_parameter = ow__hp_true(&hp[K_SCALE]);
    c->warmup = ow__hp_true(&hp[K_WARMUP]);
    c->min_dim = (int)hp[K_MIN_DIM].v[0];
    c->caution = ow__hp_true(&hp[K_CAUTION]);
}

static double sum_squares(const float *x, size_t n)
{
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

/* tensor.norm(2) / (numel ** 0.5), in float32 */
static float rms(const float *x, size_t n)
{
    return (float)sqrt(sum_squares(x, n)) / (float)sqrt((double)n);
}

/* The factored second moment of a tensor seen as [A, C, R, B] (C, R the factored dims):
 * row/col = b2*row/col + (1-b2)*mean over R/C of g*g + eps, then
 * u = rsqrt(row / mean_C(row)) * rsqrt(col) * g. tmp holds 2*numel floats. */
static void factored(const adafactor_ctx *c, const ow_tensor_args *t, int col, float *u,
                     float *tmp)
{
    size_t A = 1, B = 1, C = (size_t)t->shape[col], R = (size_t)t->shape[col + 1];
    for (int d = 0; d < col; d++)
        A *= (size_t)t->shape[d];
    for (int d = col + 2; d < t->ndim; d++)
        B *= (size_t)t->shape[d];
    const float b2 = ow__f(c->beta2t), omb2 = ow__f(1.0 - c->beta2t), eps = c->eps;
    float *row = t->s[S_ROW], *cl = t->s[S_COL];
    const float *g = t->g;
    for (size_t a = 0; a < A; a++) {
        /* one streaming read of g: row sums, and column sums accumulated in tmp */
        double *colacc = (double *)tmp;
        memset(colacc, 0, R * B * sizeof *colacc);
        for (size_t i = 0; i < C; i++)
            for (size_t b = 0; b < B; b++) {
                const float *gi = g + (a * C + i) * R * B + b;
                double s = 0;
#pragma omp simd reduction(+ : s)
                for (size_t j = 0; j < R; j++) {
                    float x = gi[j * B] * gi[j * B] + eps; /* grad ** 2 + eps */
                    s += x;
                    colacc[j * B + b] += x;
                }
                /* exp_avg_sq_row.mul_(b2t).add_(update.mean(dim=row), alpha=1-b2t) */
                float *r = &row[(a * C + i) * B + b];
                *r = fmaf(omb2, (float)(s / (double)R), *r * b2);
            }
        float *cf = tmp + 2 * R * B, *rmean = cf + R * B;
        for (size_t k = 0; k < R * B; k++) {
            float *q = &cl[a * R * B + k];
            *q = fmaf(omb2, (float)(colacc[k] / (double)C), *q * b2);
        }
        /* c_factor = exp_avg_sq_col.rsqrt(): 1/sqrt, two roundings as torch's rsqrt */
        for (size_t k = 0; k < R * B; k++)
            cf[k] = 1.0f / sqrtf(cl[a * R * B + k]);
        for (size_t b = 0; b < B; b++) {
            double s = 0;
            for (size_t i = 0; i < C; i++)
                s += row[(a * C + i) * B + b];
            rmean[b] = (float)(s / (double)C); /* exp_avg_sq_row.mean(dim=col) */
        }
#pragma omp parallel for num_threads(t->threads) if (t->threads > 1)
        for (size_t i = 0; i < C; i++)
            for (size_t b = 0; b < B; b++) {
                float rf = 1.0f / sqrtf(row[(a * C + i) * B + b] / rmean[b]);
                size_t base = (a * C + i) * R * B + b;
#pragma omp simd
                for (size_t j = 0; j < R; j++)
                    u[base + j * B] = (rf * cf[j * B + b]) * g[base + j * B];
            }
    }
}

static void step_tensor(const ow_tensor_args *t)
{
    const adafactor_ctx *c = t->ctx;
    size_t n = t->numel;
    float *p = t->p, *u = t->scratch; /* the update; scratch holds 3*numel floats */
    const float *g = t->g;
    float rms_p = rms(p, n);
    t->scalars[S_RMS] = rms_p;
    double lr_t = c->lr;
    if (c->relative) {
        double min_step = c->warmup ? 1e-6 * c->step : 1e-2;
        lr_t = fmin(min_step, 1.0 / sqrt(c->step));
        if (c->scale_parameter)
            lr_t *= fmax(c->eps_scale, rms_p);
    }
    int col = factored_col(t->ndim, t->shape, c->min_dim);
    if (col >= 0) {
        factored(c, t, col, u, t->scratch + n);
    } else {
        float *v = t->s[S_EXP_AVG_SQ];
        const float b2 = ow__f(c->beta2t), omb2 = ow__f(1.0 - c->beta2t), eps = c->eps;
#pragma omp parallel for simd num_threads(t->threads) if (t->threads > 1)
        for (size_t i = 0; i < n; i++) {
            v[i] = fmaf(omb2, g[i] * g[i] + eps, v[i] * b2);
            u[i] = (1.0f / sqrtf(v[i])) * g[i]; /* exp_avg_sq.rsqrt().mul_(grad) */
        }
    }
    /* update.div_((rms(update) / clip_threshold).clamp_(min=1.0)); update.mul_(lr_t) */
    float div = rms(u, n) / ow__f(c->clip);
    if (div < 1.0f)
        div = 1.0f;
    const float lrf = ow__f(lr_t), decay = ow__f(-c->wd * lr_t);
    const bool has_decay = c->wd != 0;
    if (c->has_beta1) {
        float *m = t->s[S_EXP_AVG];
        const float b1 = ow__f(c->beta1), omb1 = ow__f(1 - c->beta1);
        double cnt = 0;
        for (size_t i = 0; i < n; i++) {
            m[i] = fmaf(omb1, (u[i] / div) * lrf, m[i] * b1);
            cnt += m[i] * g[i] > 0;
        }
        float scale = c->caution ? (float)ow__caution_scale(cnt, n) : 1.0f;
        for (size_t i = 0; i < n; i++) {
            float ui = c->caution ? m[i] * (m[i] * g[i] > 0 ? scale : 0.0f) : m[i];
            float pi = has_decay ? fmaf(decay, p[i], p[i]) : p[i];
            p[i] = pi + -ui;
        }
        return;
    }
#pragma omp parallel for simd num_threads(t->threads) if (t->threads > 1)
    for (size_t i = 0; i < n; i++) {
        float ui = (u[i] / div) * lrf;
        float pi = has_decay ? fmaf(decay, p[i], p[i]) : p[i]; /* p.add_(p, -wd*lr_t) */
        p[i] = pi + -ui;                                       /* p.add_(-update) */
    }
}

static const ow_optimizer_ops adafactor_ops = {.abi_version = OW_ABI_VERSION,
                                               .slots = slots,
                                               .ctx_size = sizeof(adafactor_ctx),
                                               .prepare = prepare,
                                               .slot_shape = slot_shape,
                                               .tensor_step = step_tensor,
                                               .tolerance = 1e-5};

OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adafactor, "adafactor", "timm", adafactor_keys,
                    adafactor_ops,
                    "timm Adafactor: factored second moment, relative steps");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_cadafactor, "cadafactor", "timm", cadafactor_keys,
                    adafactor_ops, "timm Adafactor, cautious");
