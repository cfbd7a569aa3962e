/* LaProp (timm): the gradient is normalised by the second moment before the momentum:
 * v = b2*v + (1-b2)*g*g; m = b1*m + lr*(1-b1) * g / (sqrt(v/bc2) + eps); p -= m/bc1,
 * where bc1 and bc2 are running averages of lr and 1 (exp_avg_lr_1/_2, so lr changes
 * are corrected for), then the decoupled decay p -= lr*wd*p (corrected: lr**2/max_lr).
 * Caution as a flag. LaProp: Separating Momentum and Adaptivity in Adam,
 * https://arxiv.org/abs/2002.04839 */
#include "optim_internal.h"

#define LAPROP_KEYS(caution, corrected)                                                  \
    OW__KEY_NUM("lr", "0.0004", "learning rate"), OW__KEY_BETAS("[0.9, 0.999]"),         \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-15",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the denominator"},                                             \
        OW__KEY_NUM("weight_decay", "0.0", "decoupled weight decay"),                    \
        OW__KEY_BOOL("caution", caution, "cautious update"),                             \
        OW__KEY_BOOL("corrected_weight_decay", corrected,                                \
                     "decay scaled by lr**2/max_lr"),                                    \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key laprop_keys[] = {LAPROP_KEYS("false", "false")};
static const ow_key claprop_keys[] = {LAPROP_KEYS("true", "false")};
static const ow_key lapropc_keys[] = {LAPROP_KEYS("false", "true")};

enum { P_LR, P_BETAS, P_EPS, P_WD, P_CAUTION, P_CORRECTED, NP };
static const char *const laprop_params[NP + 1] = {
    [P_LR] = "lr",           [P_BETAS] = "betas",
    [P_EPS] = "eps",         [P_WD] = "weight_decay",
    [P_CAUTION] = "caution", [P_CORRECTED] = "corrected_weight_decay"};

typedef struct laprop_ctx {
    float b1, lr_omb1, b2, omb2, bc2, eps, nss, decay;
    bool has_decay, caution;
} laprop_ctx;

enum { S_STEP, S_EXP_AVG, S_EXP_AVG_LR_1, S_EXP_AVG_LR_2, S_EXP_AVG_SQ };
static const ow_slot laprop_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_F32),
    [S_EXP_AVG] = {.name = "exp_avg"},
    /* a Python float (lr is one) and a float32 0-d tensor */
    [S_EXP_AVG_LR_1] = {.name = "exp_avg_lr_1",
                        .flags = OW_SLOT_SCALAR,
                        .dtype = OW_DTYPE_F64},
    [S_EXP_AVG_LR_2] = {.name = "exp_avg_lr_2",
                        .flags = OW_SLOT_SCALAR,
                        .dtype = OW_DTYPE_F32},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    {0},
};

enum { PASS_STEP, PASS_COUNT, PASS_APPLY };

static void prepare(ow_prepare_args *a)
{
    laprop_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double lr = a->lr, wd = hp[P_WD].v[0], b1 = hp[P_BETAS].v[0], b2 = hp[P_BETAS].v[1];
    double *s = a->scalars;
    s[S_STEP] += 1;
    double lr1 = s[S_EXP_AVG_LR_1] = s[S_EXP_AVG_LR_1] * b1 + (1 - b1) * lr;
    /* float32 tensor ops: lr2 * b2, then + (1 - b2) */
    float lr2 = (float)s[S_EXP_AVG_LR_2] * ow__f(b2) + ow__f(1 - b2);
    s[S_EXP_AVG_LR_2] = lr2;
    double bc1 = lr != 0 ? lr1 / lr : 1.0;
    c->b1 = ow__f(b1);
    c->lr_omb1 = ow__f(lr * (1 - b1));
    c->b2 = ow__f(b2);
    c->omb2 = ow__f(1 - b2);
    c->bc2 = lr2;
    c->eps = ow__f(hp[P_EPS].v[0]);
    c->nss = ow__f(-(1 / bc1));
    c->has_decay = wd != 0;
    c->decay = ow__f(
        -ow__wd_scale(lr, ow__hp_true(&hp[P_CORRECTED]), a->defaults[P_LR].v[0]) * wd);
    c->caution = ow__hp_true(&hp[P_CAUTION]);
    a->passes = c->caution ? 1u << PASS_COUNT | 1u << PASS_APPLY : 1u << PASS_STEP;
}

static inline __attribute__((always_inline)) void moments(const laprop_ctx *c, float g,
                                                          float *m, float *v)
{
    float vi = *v = fmaf(c->omb2 * g, g, *v * c->b2); /* v.mul_(b2).addcmul_(g, g) */
    float denom = sqrtf(vi / c->bc2) + c->eps;        /* v.div(bc2).sqrt_().add_(eps) */
    *m = fmaf(c->lr_omb1, g / denom,
              *m * c->b1); /* m.mul_(b1); add_(g/denom, lr*(1-b1)) */
}

static inline __attribute__((always_inline)) float apply(const laprop_ctx *c, float p,
                                                         float m)
{
    p = fmaf(c->nss, m, p); /* p.add_(exp_avg, alpha=-step_size) */
    return c->has_decay ? fmaf(c->decay, p, p) : p;
}

/* The fast loop: the same operations with the constants in registers and the decay
 * switch a compile-time constant (a branch in the loop stops vectorisation). */
static inline __attribute__((always_inline)) void step_loop(const ow_kernel_args *a,
                                                            bool has_decay)
{
    const laprop_ctx *c = a->ctx;
    float *restrict p = a->p, *restrict m = a->s[S_EXP_AVG],
                    *restrict v = a->s[S_EXP_AVG_SQ];
    const float *restrict g = a->g;
    const float b1 = c->b1, lr_omb1 = c->lr_omb1, b2 = c->b2, omb2 = c->omb2,
                bc2 = c->bc2, eps = c->eps, nss = c->nss, decay = c->decay;
    size_t n = a->n;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float vi = fmaf(omb2 * gi, gi, v[i] * b2);
        float denom = sqrtf(vi / bc2) + eps;
        float mi = fmaf(lr_omb1, gi / denom, m[i] * b1);
        v[i] = vi;
        m[i] = mi;
        float pi = fmaf(nss, mi, p[i]);
        p[i] = has_decay ? fmaf(decay, pi, pi) : pi;
    }
}

OW_SIMD static void laprop_step_run(const ow_kernel_args *a)
{
    const laprop_ctx *c = a->ctx;
    if (c->has_decay)
        step_loop(a, true);
    else
        step_loop(a, false);
}

static void step_ref(const ow_kernel_args *a)
{
    const laprop_ctx *c = a->ctx;
    for (size_t i = 0; i < a->n; i++) {
        moments(c, a->g[i], &a->s[S_EXP_AVG][i], &a->s[S_EXP_AVG_SQ][i]);
        a->p[i] = apply(c, a->p[i], a->s[S_EXP_AVG][i]);
    }
}

/* caution, pass 1: the moments move and (exp_avg * grad > 0) is counted */
static void count_ref(const ow_kernel_args *a)
{
    const laprop_ctx *c = a->ctx;
    double cnt = 0;
    for (size_t i = 0; i < a->n; i++) {
        float *m = &a->s[S_EXP_AVG][i];
        moments(c, a->g[i], m, &a->s[S_EXP_AVG_SQ][i]);
        cnt += *m * a->g[i] > 0;
    }
    a->sums[0] += cnt;
}

static void apply_ref(const ow_kernel_args *a)
{
    const laprop_ctx *c = a->ctx;
    const float scale = (float)a->t[0];
    for (size_t i = 0; i < a->n; i++) {
        float m = a->s[S_EXP_AVG][i];
        a->p[i] = apply(c, a->p[i], m * (m * a->g[i] > 0 ? scale : 0.0f));
    }
}

static const ow_pass laprop_passes[] = {
    [PASS_STEP] = {.run = laprop_step_run, .ref = step_ref},
    [PASS_COUNT] = {.run = count_ref,
                    .ref = count_ref,
                    .nsums = 1,
                    .finish = ow__caution_finish},
    [PASS_APPLY] = {.run = apply_ref, .ref = apply_ref},
    {0},
};

static const ow_optimizer_ops laprop_ops = {.abi_version = OW_ABI_VERSION,
                                            .slots = laprop_slots,
                                            .params = laprop_params,
                                            .ctx_size = sizeof(laprop_ctx),
                                            .prepare = prepare,
                                            .passes = laprop_passes};

OW__OPTIMIZER_ENTRY(ow__optimizer_timm_laprop, "laprop", "timm", laprop_keys, laprop_ops,
                    "timm LaProp: momentum of the normalised gradient");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_claprop, "claprop", "timm", claprop_keys,
                    laprop_ops, "timm LaProp, cautious");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_lapropc, "lapropc", "timm", lapropc_keys,
                    laprop_ops, "timm LaProp, corrected decay (lr**2/max_lr)");
