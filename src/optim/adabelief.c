/* AdaBelief (timm): Adam whose second moment tracks the variance of the gradient
 * around its mean, (g - m)^2, with eps added to it in place every step; decoupled decay
 * by default, and the rectified (RAdam-like) update for radabelief.
 * https://arxiv.org/abs/2010.07468 */
#include "optim_internal.h"

#include <string.h>

#define ADABELIEF_KEYS(rectify)                                                          \
    OW__KEY_NUM("lr", "0.001", "learning rate"), OW__KEY_BETAS("[0.9, 0.999]"),          \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-16",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the variance and the denominator"},                            \
        OW__KEY_NUM("weight_decay", "0.0", "weight decay"),                              \
        OW__KEY_BOOL("amsgrad", "false", "maximum of past variances"),                   \
        OW__KEY_BOOL("degenerated_to_sgd", "true",                                       \
                     "SGD steps while the variance is untractable"),                     \
        OW__KEY_BOOL("decoupled_decay", "true", "decay p *= 1 - lr*wd instead of L2"),   \
        OW__KEY_BOOL("rectify", rectify, "RAdam-style rectified update"),                \
        OW__KEY_BOOL("fixed_decay", "false", "decoupled decay without the lr"),          \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key adabelief_keys[] = {ADABELIEF_KEYS("false")};
static const ow_key radabelief_keys[] = {ADABELIEF_KEYS("true")};

enum {
    K_LR,
    K_BETAS,
    K_EPS,
    K_WD,
    K_AMSGRAD,
    K_DEGENERATED,
    K_DECOUPLED,
    K_RECTIFY,
    K_FIXED
};
static const char *const adabelief_params[] = {[K_LR] = "lr",
                                               [K_BETAS] = "betas",
                                               [K_EPS] = "eps",
                                               [K_WD] = "weight_decay",
                                               [K_AMSGRAD] = "amsgrad",
                                               [K_DEGENERATED] = "degenerated_to_sgd",
                                               [K_DECOUPLED] = "decoupled_decay",
                                               [K_RECTIFY] = "rectify",
                                               [K_FIXED] = "fixed_decay",
                                               NULL};

typedef struct adabelief_ctx {
    float l2, keep, b1, omb1, b2, omb2, eps, bc2s, nss;
    bool has_l2, amsgrad, rectify, adaptive, sgd;
} adabelief_ctx;

/* timm 1.0 keeps [step, N_sma, step_size] in a buffer shared by all groups */
typedef struct buffer {
    double step[10], sma[10], size[10];
} buffer;

enum { S_STEP, S_EXP_AVG, S_EXP_AVG_VAR, S_MAX_EXP_AVG_VAR };
static const ow_slot slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_AVG_VAR] = {.name = "exp_avg_var"},
    [S_MAX_EXP_AVG_VAR] = {.name = "max_exp_avg_var"},
    {0},
};

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    if (slot == S_STEP)
        return 0;
    if (slot == S_MAX_EXP_AVG_VAR && !ow__hp_true(&hp[K_AMSGRAD]))
        return -1;
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    return ndim;
}

static void prepare(ow_prepare_args *a)
{
    adabelief_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double lr = a->lr, wd = hp[K_WD].v[0], b1 = hp[K_BETAS].v[0], b2 = hp[K_BETAS].v[1];
    double t = a->scalars[S_STEP] += 1;
    c->keep = 1.0f;
    if (ow__hp_true(&hp[K_DECOUPLED]))
        c->keep = ow__f(ow__hp_true(&hp[K_FIXED]) ? 1.0 - wd : 1.0 - lr * wd);
    else if (wd != 0) {
        c->has_l2 = true;
        c->l2 = ow__f(wd);
    }
    c->b1 = ow__f(b1);
    c->omb1 = ow__f(1 - b1);
    c->b2 = ow__f(b2);
    c->omb2 = ow__f(1 - b2);
    c->eps = ow__f(hp[K_EPS].v[0]);
    c->amsgrad = ow__hp_true(&hp[K_AMSGRAD]);
    double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    c->bc2s = ow__f(sqrt(bc2));
    c->rectify = ow__hp_true(&hp[K_RECTIFY]);
    if (!c->rectify) {
        c->nss = ow__f(-(lr / bc1));
        return;
    }
    buffer *buf = a->shared;
    int slot = (int)fmod(t, 10);
    double sma, step_size;
    if (buf->step[slot] == t) {
        sma = buf->sma[slot];
        step_size = buf->size[slot];
    } else {
        double b2t = pow(b2, t), sma_max = 2 / (1 - b2) - 1;
        sma = sma_max - 2 * t * b2t / (1 - b2t);
        if (sma >= 5)
            step_size = sqrt((1 - b2t) * (sma - 4) / (sma_max - 4) * (sma - 2) / sma *
                             sma_max / (sma_max - 2)) /
                        (1 - pow(b1, t));
        else if (ow__hp_true(&hp[K_DEGENERATED]))
            step_size = 1.0 / (1 - pow(b1, t));
        else
            step_size = -1;
        buf->step[slot] = t;
        buf->sma[slot] = sma;
        buf->size[slot] = step_size;
    }
    c->adaptive = sma >= 5;
    c->sgd = !c->adaptive && step_size > 0;
    c->nss = ow__f(-step_size * lr);
}

/* One element, as timm's op sequence: decay; m = b1*m + (1-b1)*g; r = g - m;
 * s = b2*s + (1-b2)*r*r; s += eps (in place); then the Adam, rectified or SGD step. */
static inline __attribute__((always_inline)) void body(const ow_kernel_args *a)
{
    const adabelief_ctx *c = a->ctx;
    size_t n = a->n;
    float *restrict p = a->p, *restrict m = a->s[S_EXP_AVG],
                    *restrict s = a->s[S_EXP_AVG_VAR],
                    *restrict smax = a->s[S_MAX_EXP_AVG_VAR];
    const float *restrict g = a->g;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] * c->keep;
        float gi = c->has_l2 ? fmaf(c->l2, p[i], g[i]) : g[i];
        float mi = fmaf(c->omb1, gi, m[i] * c->b1);
        float r = gi - mi;
        float si = fmaf(c->omb2 * r, r, s[i] * c->b2) + c->eps;
        m[i] = mi;
        s[i] = si;
        float v = si;
        if (c->amsgrad)
            v = smax[i] = fmaxf(smax[i], si);
        if (!c->rectify)
            p[i] = pi + (c->nss * mi) / (sqrtf(v) / c->bc2s + c->eps);
        else if (c->adaptive)
            p[i] = pi + (c->nss * mi) / (sqrtf(si) + c->eps);
        else if (c->sgd)
            p[i] = fmaf(c->nss, mi, pi);
        else
            p[i] = pi;
    }
}

OW_SIMD static void adabelief_run(const ow_kernel_args *a)
{
    body(a);
}

static void adabelief_ref(const ow_kernel_args *a)
{
    body(a);
}

static const ow_pass adabelief_passes[] = {{.run = adabelief_run, .ref = adabelief_ref},
                                           {0}};

static const ow_optimizer_ops adabelief_ops = {.abi_version = OW_ABI_VERSION,
                                               .slots = slots,
                                               .params = adabelief_params,
                                               .ctx_size = sizeof(adabelief_ctx),
                                               .prepare = prepare,
                                               .slot_shape = slot_shape,
                                               .passes = adabelief_passes};

OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adabelief, "adabelief", "timm", adabelief_keys,
                    adabelief_ops, "timm AdaBelief: Adam on the belief (g - m)^2");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_radabelief, "radabelief", "timm", radabelief_keys,
                    adabelief_ops, "timm AdaBelief, rectified");
