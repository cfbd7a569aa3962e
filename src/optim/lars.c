/* LARS / LARC (timm Lars): SGD whose gradient (plus L2 decay) is scaled per tensor by
 * the trust ratio tc*|p| / (|g| + wd*|p| + eps) when weight decay is on (or
 * always_adapt); LARC clips ratio/lr at 1. Norms are summed in double, so the ratio can
 * differ from torch's float32 reduction in the last place.
 * Large Batch Training of Convolutional Networks, https://arxiv.org/abs/1708.03888 */
#include "optim_internal.h"

#include <string.h>

#define LARS_KEYS(nesterov, clip)                                                        \
    OW__KEY_NUM("lr", "1.0", "learning rate"),                                           \
        OW__KEY_NUM("momentum", "0.9", "momentum factor"),                               \
        OW__KEY_ANYNUM("dampening", "0", "dampening for momentum"),                      \
        OW__KEY_NUM("weight_decay", "0.0", "L2 penalty (turns the adaptation on)"),      \
        OW__KEY_BOOL("nesterov", nesterov, "Nesterov momentum"),                         \
        OW__KEY_NUM("trust_coeff", "0.001", "trust coefficient"),                        \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-08",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the ratio's denominator"},                                     \
        OW__KEY_BOOL("trust_clip", clip, "LARC: clip ratio/lr at 1"),                    \
        OW__KEY_BOOL("always_adapt", "false", "adapt without weight decay too"),         \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key lars_keys[] = {LARS_KEYS("false", "false")};
static const ow_key larc_keys[] = {LARS_KEYS("false", "true")};
static const ow_key nlars_keys[] = {LARS_KEYS("true", "false")};
static const ow_key nlarc_keys[] = {LARS_KEYS("true", "true")};

enum { K_LR, K_MOMENTUM, K_DAMPENING, K_WD, K_NESTEROV, K_TC, K_EPS, K_CLIP, K_ALWAYS };

typedef struct lars_ctx {
    float wd, tc, eps, lr, momentum, damp1, nlr;
    bool adapt, clip, has_momentum, first, nesterov;
} lars_ctx;

enum { S_BUF, S_STEP };
static const ow_slot slots[] = {
    [S_BUF] = {.name = "momentum_buffer"},
    /* not timm's: whether the buffer exists yet */
    [S_STEP] = {.name = "step", .flags = OW_SLOT_SCALAR, .dtype = OW_DTYPE_I64},
    {0},
};

static bool check(const ow_hparam *hp, char *msg, size_t n)
{
    if (ow__hp_true(&hp[K_NESTEROV]) &&
        (hp[K_MOMENTUM].v[0] <= 0 || hp[K_DAMPENING].v[0] != 0)) {
        snprintf(msg, n, "Nesterov momentum requires a momentum and zero dampening");
        return false;
    }
    return true;
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    if (slot == S_STEP)
        return 0;
    if (hp[K_MOMENTUM].v[0] == 0)
        return -1;
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    return ndim;
}

static void prepare(ow_prepare_args *a)
{
    lars_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double wd = hp[K_WD].v[0];
    c->adapt = wd != 0 || ow__hp_true(&hp[K_ALWAYS]);
    c->wd = ow__f(wd);
    c->tc = ow__f(hp[K_TC].v[0]);
    c->eps = ow__f(hp[K_EPS].v[0]);
    c->lr = ow__f(a->lr);
    c->nlr = ow__f(-a->lr);
    c->clip = ow__hp_true(&hp[K_CLIP]);
    c->has_momentum = hp[K_MOMENTUM].v[0] != 0;
    c->momentum = ow__f(hp[K_MOMENTUM].v[0]);
    c->damp1 = ow__f(1. - hp[K_DAMPENING].v[0]);
    c->nesterov = ow__hp_true(&hp[K_NESTEROV]);
    c->first = a->scalars[S_STEP] == 0;
    a->scalars[S_STEP] += 1;
    a->passes = c->adapt ? 3u : 2u;
}

/* pass 0: |p|^2 and |g|^2 */
OW_SIMD static void norms_run(const ow_kernel_args *a)
{
    size_t n = a->n;
    const float *restrict p = a->p, *restrict g = a->g;
    double pp = 0, gg = 0;
#pragma omp simd reduction(+ : pp, gg)
    for (size_t i = 0; i < n; i++) {
        pp += (double)p[i] * p[i];
        gg += (double)g[i] * g[i];
    }
    a->sums[0] += pp;
    a->sums[1] += gg;
}

static void norms_ref(const ow_kernel_args *a)
{
    for (size_t i = 0; i < a->n; i++) {
        a->sums[0] += (double)a->p[i] * a->p[i];
        a->sums[1] += (double)a->g[i] * a->g[i];
    }
}

/* The trust ratio in float32, as the reference computes it on 0-d tensors. */
static void trust_finish(const ow_finish_args *f)
{
    const lars_ctx *c = f->ctx;
    float w = (float)sqrt(f->sums[0]), gn = (float)sqrt(f->sums[1]);
    float ratio = (c->tc * w) / (gn + w * c->wd + c->eps);
    if (!(w > 0) || !(gn > 0))
        ratio = 1.0f;
    if (c->clip) {
        ratio = ratio / c->lr;
        if (ratio > 1.0f)
            ratio = 1.0f;
    }
    f->t[0] = ratio;
}

/* pass 1: d = (g + wd*p) * ratio; momentum; p -= lr*d */
static inline __attribute__((always_inline)) void step_body(const ow_kernel_args *a)
{
    const lars_ctx *c = a->ctx;
    size_t n = a->n;
    float *restrict p = a->p, *restrict buf = a->s[S_BUF];
    const float *restrict g = a->g;
    const float ratio = (float)a->t[0];
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float d = c->adapt ? fmaf(c->wd, p[i], g[i]) * ratio : g[i];
        if (c->has_momentum) {
            float b = c->first ? d : fmaf(c->damp1, d, buf[i] * c->momentum);
            buf[i] = b;
            d = c->nesterov ? fmaf(c->momentum, b, d) : b;
        }
        p[i] = fmaf(c->nlr, d, p[i]);
    }
}

OW_SIMD static void step_run(const ow_kernel_args *a)
{
    step_body(a);
}

static void step_ref(const ow_kernel_args *a)
{
    step_body(a);
}

static const ow_optimizer_ops lars_ops = {
    .abi_version = OW_ABI_VERSION,
    .slots = slots,
    .ctx_size = sizeof(lars_ctx),
    .check = check,
    .prepare = prepare,
    .slot_shape = slot_shape,
    .passes = {{.run = norms_run, .ref = norms_ref, .nsums = 2, .finish = trust_finish},
               {.run = step_run, .ref = step_ref}},
    .tolerance = 1e-5};

#define ENTRY(var, nm, keys_, sum)                                                       \
    OW__OPTIMIZER_ENTRY(var, nm, "timm", keys_, lars_ops, sum)

ENTRY(ow__optimizer_timm_lars, "lars", lars_keys,
      "timm Lars: SGD with a layer-wise trust ratio");
ENTRY(ow__optimizer_timm_larc, "larc", larc_keys,
      "timm Lars with LARC clipping (ratio/lr <= 1)");
ENTRY(ow__optimizer_timm_nlars, "nlars", nlars_keys, "timm Lars, Nesterov momentum");
ENTRY(ow__optimizer_timm_nlarc, "nlarc", nlarc_keys,
      "timm Lars, Nesterov, LARC clipping");
