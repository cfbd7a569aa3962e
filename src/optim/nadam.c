/* NAdam family: torch.optim.NAdam (momentum schedule mu_t = b1*(1 - 0.5*0.96^(t*psi)),
 * mu_product a float32 0-d tensor) and timm's NAdamLegacy (the same schedule with a
 * Python-float m_schedule). Both take two addcdiv steps, on the gradient and on the
 * first moment. https://pytorch.org/docs/1.13/generated/torch.optim.NAdam.html */
#include "optim_internal.h"

#include <string.h>

#define NADAM_KEYS(wd, decay_key)                                                        \
    OW__KEY_NUM("lr", "0.002", "learning rate"), OW__KEY_BETAS("[0.9, 0.999]"),          \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-08",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the denominator for numerical stability"},                     \
        OW__KEY_NUM("weight_decay", wd, "L2 penalty"),                                   \
        OW__KEY_NUM(decay_key, "0.004", "momentum schedule decay")
static const ow_key nadam_keys[] = {
    NADAM_KEYS("0", "momentum_decay"), OW__KEY_FOREACH, {0}};
static const ow_key timm_nadam_keys[] = {
    NADAM_KEYS("0.0", "momentum_decay"), OW__KEY_FOREACH, {0}};
static const ow_key nadamlegacy_keys[] = {NADAM_KEYS("0.0", "schedule_decay"), {0}};

enum { K_LR, K_BETAS, K_EPS, K_WD, K_DECAY, K_FOREACH };
static const char *const nadam_params[] = {[K_LR] = "lr",
                                           [K_BETAS] = "betas",
                                           [K_EPS] = "eps",
                                           [K_WD] = "weight_decay",
                                           [K_DECAY] = "momentum_decay",
                                           [K_FOREACH] = "foreach",
                                           NULL};
static const char *const legacy_params[] = {
    [K_LR] = "lr",           [K_BETAS] = "betas",          [K_EPS] = "eps",
    [K_WD] = "weight_decay", [K_DECAY] = "schedule_decay", NULL};

typedef struct nadam_ctx {
    float l2, b1, omb1, b2, omb2, bc2, eps, c_grad, c_avg;
    bool has_l2, sqrt_first; /* legacy, foreach: sqrt(v)/sqrt(bc2), not sqrt(v/bc2) */
} nadam_ctx;

enum { S_STEP, S_MU, S_EXP_AVG, S_EXP_AVG_SQ };
static const ow_slot nadam_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_F32),
    [S_MU] = {.name = "mu_product",
              .flags = OW_SLOT_SCALAR,
              .dtype = OW_DTYPE_F32,
              .init = 1},
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    {0},
};
static const ow_slot legacy_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_MU] = {.name = "m_schedule",
              .flags = OW_SLOT_SCALAR,
              .dtype = OW_DTYPE_F64,
              .init = 1},
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    {0},
};

static void prepare(ow_prepare_args *a, bool legacy)
{
    nadam_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double lr = a->lr, b1 = hp[K_BETAS].v[0], b2 = hp[K_BETAS].v[1],
           psi = hp[K_DECAY].v[0];
    double t = a->scalars[S_STEP] += 1;
    /* mu_t and mu_{t+1} */
    double mu = b1 * (1. - 0.5 * pow(0.96, t * psi));
    double mu_next = b1 * (1. - 0.5 * pow(0.96, (t + 1) * psi));
    double prod, prod_next;
    /* torch's foreach=True path (_multi_tensor_nadam) differs from the single-tensor
     * one: sqrt(v) / sqrt(bc2), and the next product mu_product.item() * mu_next in
     * Python floats (mu counted once) */
    bool foreach = !legacy && ow__hp_true(&hp[K_FOREACH]);
    if (legacy) { /* m_schedule is a Python float */
        prod = a->scalars[S_MU] * mu;
        prod_next = a->scalars[S_MU] * mu * mu_next;
    } else if (foreach) {
        prod = (float)((float)a->scalars[S_MU] * (float)mu);
        prod_next = prod * mu_next;
    } else {
        /* mu_product *= mu on a float32 tensor, then .item(); torch 1.13 then takes
         * mu_product * mu * mu_next for the next product (mu counted twice), a
         * float32 tensor too: rounded after each product */
        prod = (float)((float)a->scalars[S_MU] * (float)mu);
        prod_next = (float)((float)(prod * (float)mu) * (float)mu_next);
    }
    a->scalars[S_MU] = prod;
    c->has_l2 = hp[K_WD].v[0] != 0;
    c->l2 = ow__f(hp[K_WD].v[0]);
    c->b1 = ow__f(b1);
    c->omb1 = ow__f(1. - b1);
    c->b2 = ow__f(b2);
    c->omb2 = ow__f(1. - b2);
    c->sqrt_first = legacy || foreach;
    c->bc2 = ow__f(c->sqrt_first ? sqrt(1 - pow(b2, t)) : 1 - pow(b2, t));
    c->eps = ow__f(hp[K_EPS].v[0]);
    c->c_grad = ow__f(-lr * (1. - mu) / (1. - prod));
    c->c_avg = ow__f(-lr * mu_next / (1. - prod_next));
}

static void prepare_torch(ow_prepare_args *a)
{
    prepare(a, false);
}

static void prepare_legacy(ow_prepare_args *a)
{
    prepare(a, true);
}

/* g (+ wd*p); m, v as Adam; denom = sqrt(v / bc2) + eps; p += c_grad*g/denom, then
 * p += c_avg*m/denom. */
OW_SIMD static void nadam_run(const ow_kernel_args *a)
{
    const nadam_ctx *c = a->ctx;
    size_t n = a->n;
    float *restrict p = a->p, *restrict m = a->s[S_EXP_AVG],
                    *restrict v = a->s[S_EXP_AVG_SQ];
    const float *restrict g = a->g;
    const float l2 = c->has_l2 ? c->l2 : 0.0f, b1 = c->b1, omb1 = c->omb1, b2 = c->b2,
                omb2 = c->omb2, bc2 = c->bc2, eps = c->eps, cg = c->c_grad, ca = c->c_avg;
    const bool has_l2 = c->has_l2, sqrt_first = c->sqrt_first;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = has_l2 ? fmaf(l2, p[i], g[i]) : g[i];
        float mi = fmaf(omb1, gi, m[i] * b1);
        float vi = fmaf(omb2 * gi, gi, v[i] * b2);
        m[i] = mi;
        v[i] = vi;
        float denom = (sqrt_first ? sqrtf(vi) / bc2 : sqrtf(vi / bc2)) + eps;
        float pi = p[i] + (cg * gi) / denom;
        p[i] = pi + (ca * mi) / denom;
    }
}

static void nadam_ref(const ow_kernel_args *a)
{
    const nadam_ctx *c = a->ctx;
    for (size_t i = 0; i < a->n; i++) {
        float g = a->g[i];
        if (c->has_l2)
            g = fmaf(c->l2, a->p[i], g);                        /* grad.add(param, wd) */
        float m = fmaf(c->omb1, g, a->s[S_EXP_AVG][i] * c->b1); /* mul_(b1).add_(g) */
        float v = fmaf(c->omb2 * g, g, a->s[S_EXP_AVG_SQ][i] * c->b2); /* addcmul_ */
        a->s[S_EXP_AVG][i] = m;
        a->s[S_EXP_AVG_SQ][i] = v;
        float denom = c->sqrt_first ? sqrtf(v) / c->bc2  /* v.sqrt() / sqrt(bc2) */
                                    : sqrtf(v / c->bc2); /* v.div(bc2).sqrt() */
        denom = denom + c->eps;                          /* .add_(eps) */
        a->p[i] = a->p[i] + (c->c_grad * g) / denom;     /* addcdiv_(grad, denom) */
        a->p[i] = a->p[i] + (c->c_avg * m) / denom;      /* addcdiv_(exp_avg, denom) */
    }
}

static const ow_pass nadam_passes[] = {{.run = nadam_run, .ref = nadam_ref}, {0}};

static const ow_optimizer_ops nadam_ops = {.abi_version = OW_ABI_VERSION,
                                           .slots = nadam_slots,
                                           .params = nadam_params,
                                           .ctx_size = sizeof(nadam_ctx),
                                           .prepare = prepare_torch,
                                           .passes = nadam_passes};
static const ow_pass legacy_passes[] = {{.run = nadam_run, .ref = nadam_ref}, {0}};

static const ow_optimizer_ops legacy_ops = {.abi_version = OW_ABI_VERSION,
                                            .slots = legacy_slots,
                                            .params = legacy_params,
                                            .ctx_size = sizeof(nadam_ctx),
                                            .prepare = prepare_legacy,
                                            .passes = legacy_passes};

OW__OPTIMIZER_ENTRY(
    ow__optimizer_nadam, "NAdam", "mmengine", nadam_keys, nadam_ops,
    "torch.optim.NAdam: Adam with Nesterov momentum and a momentum schedule");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_nadam, "nadam", "timm", timm_nadam_keys, nadam_ops,
                    "timm 'nadam': torch.optim.NAdam");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_nadamlegacy, "nadamlegacy", "timm",
                    nadamlegacy_keys, legacy_ops,
                    "timm NAdamLegacy (Dozat's NAdam, Python-float momentum schedule)");
