/* Adamax: torch.optim.Adamax, Adam with an exponentially weighted infinity norm in place
 * of the second moment. https://pytorch.org/docs/1.13/generated/torch.optim.Adamax.html
 */
#include "optim_internal.h"

#define ADAMAX_KEYS(wd)                                                                  \
    OW__KEY_NUM("lr", "0.002", "learning rate"), OW__KEY_BETAS("[0.9, 0.999]"),          \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-08",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the infinity norm"},                                           \
        OW__KEY_NUM("weight_decay", wd, "L2 penalty"), OW__KEY_FOREACH,                  \
        OW__KEY_BOOL("maximize", "false",                                                \
                     "maximize the objective instead of minimizing"),                    \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key adamax_keys[] = {ADAMAX_KEYS("0")};
static const ow_key timm_adamax_keys[] = {ADAMAX_KEYS("0.0")};

enum { K_LR, K_BETAS, K_EPS, K_WD, K_FOREACH, K_MAXIMIZE };
static const char *const adamax_params[] = {[K_LR] = "lr",
                                            [K_BETAS] = "betas",
                                            [K_EPS] = "eps",
                                            [K_WD] = "weight_decay",
                                            [K_FOREACH] = "foreach",
                                            [K_MAXIMIZE] = "maximize",
                                            NULL};

typedef struct adamax_ctx {
    float sign, l2, b1, omb1, b2, eps, nclr;
    bool has_l2;
} adamax_ctx;

enum { S_STEP, S_EXP_AVG, S_EXP_INF };
static const ow_slot adamax_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_F32),
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_INF] = {.name = "exp_inf"},
    {0},
};

static void prepare(ow_prepare_args *a)
{
    adamax_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double t = a->scalars[S_STEP] += 1, b1 = hp[K_BETAS].v[0];
    c->sign = ow__hp_true(&hp[K_MAXIMIZE]) ? -1.0f : 1.0f;
    c->has_l2 = hp[K_WD].v[0] != 0;
    c->l2 = ow__f(hp[K_WD].v[0]);
    c->b1 = ow__f(b1);
    c->omb1 = ow__f(1 - b1);
    c->b2 = ow__f(hp[K_BETAS].v[1]);
    c->eps = ow__f(hp[K_EPS].v[0]);
    c->nclr = ow__f(-(a->lr / (1 - pow(b1, t)))); /* clr = lr / bias_correction */
}

/* m = b1*m + (1-b1)*g; u = max(b2*u, |g| + eps); p += -clr * m / u */
OW_SIMD static void adamax_run(const ow_kernel_args *a)
{
    const adamax_ctx *c = a->ctx;
    size_t n = a->n;
    float *restrict p = a->p, *restrict m = a->s[S_EXP_AVG],
                    *restrict u = a->s[S_EXP_INF];
    const float *restrict g = a->g;
    const float sg = c->sign, l2 = c->l2, b1 = c->b1, omb1 = c->omb1, b2 = c->b2,
                eps = c->eps, nclr = c->nclr;
    const bool has_l2 = c->has_l2;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * sg;
        if (has_l2)
            gi = fmaf(l2, p[i], gi);
        float mi = fmaf(omb1, gi, m[i] * b1);
        float ui = fmaxf(u[i] * b2, fabsf(gi) + eps);
        m[i] = mi;
        u[i] = ui;
        p[i] = p[i] + (nclr * mi) / ui;
    }
}

static void adamax_ref(const ow_kernel_args *a)
{
    const adamax_ctx *c = a->ctx;
    for (size_t i = 0; i < a->n; i++) {
        float g = c->sign < 0 ? -a->g[i] : a->g[i];
        if (c->has_l2)
            g = fmaf(c->l2, a->p[i], g); /* grad.add(param, wd) */
        float m = fmaf(c->omb1, g, a->s[S_EXP_AVG][i] * c->b1);
        float decayed = a->s[S_EXP_INF][i] * c->b2;  /* exp_inf.mul_(b2) */
        float bound = fabsf(g) + c->eps;             /* grad.abs().add_(eps) */
        float u = decayed > bound ? decayed : bound; /* amax over the two */
        a->s[S_EXP_AVG][i] = m;
        a->s[S_EXP_INF][i] = u;
        a->p[i] = a->p[i] + (c->nclr * m) / u; /* addcdiv_(m, u, -clr) */
    }
}

static const ow_pass adamax_passes[] = {{.run = adamax_run, .ref = adamax_ref}, {0}};

static const ow_optimizer_ops adamax_ops = {.abi_version = OW_ABI_VERSION,
                                            .slots = adamax_slots,
                                            .params = adamax_params,
                                            .ctx_size = sizeof(adamax_ctx),
                                            .prepare = prepare,
                                            .passes = adamax_passes};

#define ENTRY(var, nm, scp, keys_, sum)                                                  \
    OW__OPTIMIZER_ENTRY(var, nm, scp, keys_, adamax_ops, sum)

ENTRY(ow__optimizer_adamax, "Adamax", "mmengine", adamax_keys,
      "torch.optim.Adamax: Adam with the infinity norm");
ENTRY(ow__optimizer_timm_adamax, "adamax", "timm", timm_adamax_keys,
      "timm 'adamax': torch.optim.Adamax");
