/* RAdam family: torch.optim.RAdam (rectified when rho_t > 5, L2 decay) and timm's
 * RAdamLegacy (rectified when N_sma >= 5, decoupled decay p -= lr*wd*p), each taking
 * the plain momentum step while the variance is not yet tractable. timm's 'radamw' is
 * torch's with decoupled_weight_decay (torch 2.1's key: p *= 1 - lr*wd first), stepped
 * with torch 1.13's rounding like 'radam'.
 * https://pytorch.org/docs/1.13/generated/torch.optim.RAdam.html */
#include "optim_internal.h"

#define RADAM_KEYS(wd)                                                                   \
    OW__KEY_NUM("lr", "0.001", "learning rate"), OW__KEY_BETAS("[0.9, 0.999]"),          \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-08",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the denominator for numerical stability"},                     \
        OW__KEY_NUM("weight_decay", wd, "weight decay")
static const ow_key radam_keys[] = {RADAM_KEYS("0"), OW__KEY_FOREACH, {0}};
static const ow_key timm_radam_keys[] = {RADAM_KEYS("0.0"), OW__KEY_FOREACH, {0}};
static const ow_key radamlegacy_keys[] = {RADAM_KEYS("0.0"), {0}};
/* timm 'radamw': torch.optim.RAdam(decoupled_weight_decay=True), a key torch 2.1 added */
static const ow_key radamw_keys[] = {
    RADAM_KEYS("0.0"),
    OW__KEY_FOREACH,
    OW__KEY_BOOL("decoupled_weight_decay", "true",
                 "decay p *= 1 - lr*wd before the step instead of L2"),
    {0}};

enum { K_LR, K_BETAS, K_EPS, K_WD, K_FOREACH, K_DECOUPLED };
static const char *const radam_params[] = {[K_LR] = "lr",
                                           [K_BETAS] = "betas",
                                           [K_EPS] = "eps",
                                           [K_WD] = "weight_decay",
                                           [K_FOREACH] = "foreach",
                                           [K_DECOUPLED] = "decoupled_weight_decay",
                                           NULL};

typedef struct radam_ctx {
    float l2, keep, keep_coef, b1, omb1, b2, omb2, bc1, lr, sqrt_bc2, rect, eps, nss;
    float ss_rect, ss_plain; /* foreach: the two addcdiv step sizes */
    bool has_l2, has_decay, rectified, legacy, foreach;
} radam_ctx;

typedef struct legacy_buffer {
    double step[10], sma[10], size[10];
} legacy_buffer;

enum { S_STEP, S_EXP_AVG, S_EXP_AVG_SQ };
static const ow_slot radam_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_F32),
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    {0},
};
static const ow_slot legacy_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    {0},
};

static void prepare_common(ow_prepare_args *a, radam_ctx *c, double *t)
{
    const ow_hparam *hp = a->hp;
    *t = a->scalars[S_STEP] += 1;
    c->b1 = ow__f(hp[K_BETAS].v[0]);
    c->omb1 = ow__f(1 - hp[K_BETAS].v[0]);
    c->b2 = ow__f(hp[K_BETAS].v[1]);
    c->omb2 = ow__f(1 - hp[K_BETAS].v[1]);
    c->eps = ow__f(hp[K_EPS].v[0]);
}

static void prepare_torch(ow_prepare_args *a)
{
    radam_ctx *c = a->ctx;
    double t, b1 = a->hp[K_BETAS].v[0], b2 = a->hp[K_BETAS].v[1], lr = a->lr;
    prepare_common(a, c, &t);
    double wd = a->hp[K_WD].v[0];
    bool decoupled = ow__hp_true(&a->hp[K_DECOUPLED]); /* absent: false */
    c->has_l2 = wd != 0 && !decoupled;
    c->l2 = ow__f(wd);
    c->keep =
        decoupled ? ow__f(1 - lr * wd) : 1.0f; /* param.mul_(1 - lr*wd); x*1 exact */
    double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    double rho_inf = 2 / (1 - b2) - 1;
    double rho_t = rho_inf - 2 * t * pow(b2, t) / bc2;
    c->bc1 = ow__f(bc1);
    c->lr = ow__f(lr);
    c->rectified = rho_t > 5.;
    c->sqrt_bc2 = ow__f(sqrt(bc2));
    double rect = sqrt((rho_t - 4) * (rho_t - 2) * rho_inf /
                       ((rho_inf - 4) * (rho_inf - 2) * rho_t));
    c->rect = ow__f(rect);
    /* foreach=True (_multi_tensor_radam) rounds differently and has no eps: p +=
     * -(lr*rect/bc1)*m / (sqrt(v)/sqrt(bc2)), then p += -(lr*unrect/bc1)*m / 1, with
     * rect 0 or unrect 0 for the branch not taken */
    c->foreach = ow__hp_true(&a->hp[K_FOREACH]);
    c->ss_rect = ow__f((lr * (c->rectified ? rect : 0) / bc1) * -1);
    c->ss_plain = ow__f((lr * (c->rectified ? 0 : 1.) / bc1) * -1);
}

static void prepare_legacy(ow_prepare_args *a)
{
    radam_ctx *c = a->ctx;
    double t, b1 = a->hp[K_BETAS].v[0], b2 = a->hp[K_BETAS].v[1], lr = a->lr;
    prepare_common(a, c, &t);
    c->legacy = true;
    c->keep = 1.0f;
    /* timm 1.0 caches [step, N_sma, step_size] in a `buffer` list that torch's
     * setdefault shares between all groups: the first group to reach a step sets the
     * step size (its lr included) that every group then uses at that step */
    legacy_buffer *buf = a->shared;
    int slot = (int)fmod(t, 10);
    double sma, step_size;
    if (buf->step[slot] == t) {
        sma = buf->sma[slot];
        step_size = buf->size[slot];
    } else {
        double b2t = pow(b2, t);
        double sma_max = 2 / (1 - b2) - 1;
        sma = sma_max - 2 * t * b2t / (1 - b2t);
        if (sma >= 5)
            step_size = lr *
                        sqrt((1 - b2t) * (sma - 4) / (sma_max - 4) * (sma - 2) / sma *
                             sma_max / (sma_max - 2)) /
                        (1 - pow(b1, t));
        else
            step_size = lr / (1 - pow(b1, t));
        buf->step[slot] = t;
        buf->sma[slot] = sma;
        buf->size[slot] = step_size;
    }
    c->rectified = sma >= 5;
    double wd = a->hp[K_WD].v[0];
    c->has_decay = wd != 0;
    c->keep_coef = ow__f(-wd * lr); /* p_fp32.add_(p_fp32, alpha=-wd*lr) */
    c->nss = ow__f(-step_size);
}

/* torch: m/bc1 * lr * (sqrt(bc2) / (sqrt(v)+eps)) * rect, or m/bc1 * lr; legacy: the
 * Adam step with its own step size, or the momentum step. */
OW_SIMD static void radam_run(const ow_kernel_args *a)
{
    const radam_ctx *c = a->ctx;
    size_t n = a->n;
    float *restrict p = a->p, *restrict m = a->s[S_EXP_AVG],
                    *restrict v = a->s[S_EXP_AVG_SQ];
    const float *restrict g = a->g;
    const float l2 = c->l2, b1 = c->b1, omb1 = c->omb1, b2 = c->b2, omb2 = c->omb2,
                bc1 = c->bc1, lr = c->lr, sb = c->sqrt_bc2, rect = c->rect, eps = c->eps,
                kc = c->keep_coef, keep = c->keep, nss = c->nss, ssr = c->ss_rect,
                ssp = c->ss_plain;
    const bool has_l2 = c->has_l2, rectified = c->rectified, legacy = c->legacy,
               decay = c->has_decay, foreach = c->foreach;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = has_l2 ? fmaf(l2, p[i], g[i]) : g[i];
        float vi = fmaf(omb2 * gi, gi, v[i] * b2);
        float mi = fmaf(omb1, gi, m[i] * b1);
        m[i] = mi;
        v[i] = vi;
        if (legacy) {
            float pi = decay ? fmaf(kc, p[i], p[i]) : p[i];
            p[i] = rectified ? pi + (nss * mi) / (sqrtf(vi) + eps) : fmaf(nss, mi, pi);
        } else if (foreach) {
            float pi = p[i] * keep + (ssr * mi) / (sqrtf(vi) / sb);
            p[i] = pi + (ssp * mi) / 1.0f;
        } else {
            float u = (mi / bc1) * lr;
            if (rectified)
                u = (u * ((1.0f / (sqrtf(vi) + eps)) * sb)) * rect;
            p[i] = p[i] * keep - u;
        }
    }
}

static void radam_ref(const ow_kernel_args *a)
{
    const radam_ctx *c = a->ctx;
    for (size_t i = 0; i < a->n; i++) {
        float g = a->g[i];
        if (c->has_l2)
            g = fmaf(c->l2, a->p[i], g); /* grad.add(param, wd) */
        float v = fmaf(c->omb2 * g, g, a->s[S_EXP_AVG_SQ][i] * c->b2);
        float m = fmaf(c->omb1, g, a->s[S_EXP_AVG][i] * c->b1);
        a->s[S_EXP_AVG][i] = m;
        a->s[S_EXP_AVG_SQ][i] = v;
        if (c->legacy) {
            if (c->has_decay)
                a->p[i] = fmaf(c->keep_coef, a->p[i], a->p[i]);
            if (c->rectified) {
                float denom = sqrtf(v) + c->eps;          /* sqrt().add_(eps) */
                a->p[i] = a->p[i] + (c->nss * m) / denom; /* addcdiv_ */
            } else {
                a->p[i] = fmaf(c->nss, m, a->p[i]); /* add_(m, -step_size) */
            }
            continue;
        }
        a->p[i] = a->p[i] * c->keep; /* decoupled_weight_decay */
        if (c->foreach) {
            float denom = sqrtf(v) / c->sqrt_bc2; /* _foreach_div(sqrt(v), sqrt(bc2)) */
            a->p[i] = a->p[i] + (c->ss_rect * m) / denom; /* _foreach_addcdiv_ */
            a->p[i] = a->p[i] + (c->ss_plain * m) / 1.0f; /* denom = ones_like */
            continue;
        }
        float corrected = m / c->bc1; /* exp_avg / bc1 */
        float upd = corrected * c->lr;
        if (c->rectified) {
            float adaptive = (1.0f / (sqrtf(v) + c->eps)) * c->sqrt_bc2; /* s / tensor */
            upd = (upd * adaptive) * c->rect;
        }
        a->p[i] = fmaf(-1.0f, upd, a->p[i]); /* add_(x, alpha=-1) */
    }
}

static const ow_pass radam_passes[] = {{.run = radam_run, .ref = radam_ref}, {0}};

static const ow_optimizer_ops radam_ops = {.abi_version = OW_ABI_VERSION,
                                           .slots = radam_slots,
                                           .params = radam_params,
                                           .ctx_size = sizeof(radam_ctx),
                                           .prepare = prepare_torch,
                                           .passes = radam_passes};
static const ow_pass legacy_passes[] = {{.run = radam_run, .ref = radam_ref}, {0}};

static const ow_optimizer_ops legacy_ops = {.abi_version = OW_ABI_VERSION,
                                            .slots = legacy_slots,
                                            .params = radam_params,
                                            .ctx_size = sizeof(radam_ctx),
                                            .prepare = prepare_legacy,
                                            .passes = legacy_passes};

OW__OPTIMIZER_ENTRY(ow__optimizer_radam, "RAdam", "mmengine", radam_keys, radam_ops,
                    "torch.optim.RAdam: Adam with variance rectification");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_radam, "radam", "timm", timm_radam_keys, radam_ops,
                    "timm 'radam': torch.optim.RAdam");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_radamw, "radamw", "timm", radamw_keys, radam_ops,
                    "timm 'radamw': torch.optim.RAdam, decoupled weight decay");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_radamlegacy, "radamlegacy", "timm",
                    radamlegacy_keys, legacy_ops,
                    "timm RAdamLegacy: rectified when N_sma >= 5, decoupled decay");
