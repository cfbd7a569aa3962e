/* Adahessian (timm's adahessian.py, after davda54/ada-hessian): Adam with the squared
 * Hutchinson estimate z * (H z) of the Hessian diagonal in place of g^2, a Hessian
 * power on the denominator, decoupled decay, and the estimate refreshed every
 * update_each steps. The host supplies H z for the engine's Rademacher z
 * (ow_optimizer_set_hvp, OW_NEEDS_HVP). For 4-D weights, avg_conv_kernel replaces the
 * estimate by its mean absolute value over each kernel (kh x kw, summed in double).
 * Bit-exact with hessian_power 1 (torch's pow by 0.5 is sqrt); other powers go through
 * powf where torch's vectorized pow is Sleef's (both within an ulp or so).
 * ADAHESSIAN, https://arxiv.org/abs/2006.00719 */
#include "optim_internal.h"

#include <string.h>

static const ow_key adahessian_keys[] = {
    OW__KEY_NUM("lr", "0.1", "learning rate"),
    OW__KEY_BETAS("[0.9, 0.999]"),
    {.name = "eps",
     .type = OW_T_FLOAT,
     .def = "1e-08",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "added to the denominator"},
    OW__KEY_NUM("weight_decay", "0.0", "decoupled weight decay p *= 1 - lr*wd"),
    {.name = "hessian_power",
     .type = OW_T_NUMBER,
     .def = "1.0",
     .min = 0,
     .max = 1,
     .flags = OW_KEY_RANGE,
     .doc = "exponent k of the Hessian term: denominator v^(k/2)"},
    {.name = "update_each",
     .type = OW_T_INT,
     .def = "1",
     .min = 1,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "constructor argument: refresh the Hessian estimate every this many steps"},
    {.name = "n_samples",
     .type = OW_T_INT,
     .def = "1",
     .min = 1,
     .max = 1,
     .flags = OW_KEY_RANGE,
     .doc = "constructor argument: z samples per estimate (only 1: one H z per step)"},
    OW__KEY_BOOL("avg_conv_kernel", "false",
                 "constructor argument: 4-D weights average |estimate| per kernel"),
    {0},
};

enum { P_LR, P_BETAS, P_EPS, P_WD, P_POWER, P_UPDATE_EACH, P_AVG_CONV, NP };
static const char *const adahessian_params[NP + 2] = {
    [P_LR] = "lr",
    [P_BETAS] = "betas",
    [P_EPS] = "eps",
    [P_WD] = "weight_decay",
    [P_POWER] = "hessian_power",
    [P_UPDATE_EACH] = "update_each",
    [P_AVG_CONV] = "avg_conv_kernel",
    [NP] = "n_samples", /* range-checked to 1 by its key row */
};

enum { S_HSTEP, S_STEP, S_EXP_AVG, S_EXP_HESS, S_HESS };
static const ow_slot adahessian_slots[] = {
    [S_HSTEP] = OW__SLOT_COUNTER("hessian step", OW_DTYPE_I64),
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_HESS] = {.name = "exp_hessian_diag_sq"},
    [S_HESS] = {.name = "hess"}, /* timm's p.hess: kept between refreshes */
    {0},
};

typedef struct ah_ctx {
    double lr, wd, b1, b2, power, eps;
    bool avg_conv;
} ah_ctx;

static void prepare(ow_prepare_args *a)
{
    ah_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    c->lr = a->lr;
    c->wd = hp[P_WD].v[0];
    c->b1 = hp[P_BETAS].v[0];
    c->b2 = hp[P_BETAS].v[1];
    c->power = hp[P_POWER].v[0];
    c->eps = hp[P_EPS].v[0];
    c->avg_conv = ow__hp_true(&hp[P_AVG_CONV]);
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    (void)hp;
    if (slot == S_HSTEP || slot == S_STEP)
        return 0;
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    return ndim;
}

/* torch's pow_(x, e) on float32: the exponents its CPU kernel special-cases, else powf */
static inline float tpow(float x, float e)
{
    if (e == 0.5f)
        return sqrtf(x);
    if (e == 0.0f)
        return 1.0f;
    if (e == 1.0f)
        return x;
    return powf(x, e);
}

static void step(const ow_tensor_args *a)
{
    const ah_ctx *c = a->ctx;
    size_t n = a->numel;
    float *p = a->p, *m = a->s[S_EXP_AVG], *v = a->s[S_EXP_HESS], *h = a->s[S_HESS];
    const float *g = a->g;
    if (a->hvp) /* a refresh step (wants_hvp): p.hess = z * (H z), n_samples 1 */
        for (size_t i = 0; i < n; i++)
            h[i] = a->hvp[i] * a->z[i];
    a->scalars[S_HSTEP] += 1;
    if (c->avg_conv && a->ndim == 4) { /* |hess|.mean(dim=[2, 3]) per kernel */
        size_t k = (size_t)(a->shape[2] * a->shape[3]);
        for (size_t r = 0; r < n; r += k) {
            double s = 0;
            for (size_t i = r; i < r + k; i++)
                s += fabsf(h[i]);
            float mean = (float)(s / (double)k);
            for (size_t i = r; i < r + k; i++)
                h[i] = mean;
        }
    }
    double t = a->scalars[S_STEP] += 1;
    const float keep = ow__f(1 - c->lr * c->wd), b1 = ow__f(c->b1),
                omb1 = ow__f(1 - c->b1), b2 = ow__f(c->b2), omb2 = ow__f(1 - c->b2),
                bc2 = ow__f(1 - pow(c->b2, t)), e = ow__f(c->power / 2),
                eps = ow__f(c->eps), nss = ow__f(-(c->lr / (1 - pow(c->b1, t))));
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] * keep;                        /* p.mul_(1 - lr*wd) */
        float mi = m[i] = fmaf(omb1, g[i], m[i] * b1); /* .mul_(b1).add_(g, 1-b1) */
        float vi = v[i] = fmaf(omb2 * h[i], h[i], v[i] * b2); /* .addcmul_(h, h, 1-b2) */
        float denom = tpow(vi / bc2, e) + eps; /* (v / bc2).pow_(k/2).add_(eps) */
        p[i] = pi + (nss * mi) / denom;        /* p.addcdiv_(m, denom, -ss) */
    }
}

/* set_hessian: the estimate is refreshed where 'hessian step' % update_each == 0 */
static bool wants_hvp(const ow_hparam *hp, const double *scalars)
{
    return fmod(scalars[S_HSTEP], hp[P_UPDATE_EACH].v[0]) == 0;
}

static const ow_optimizer_ops adahessian_ops = {
    .abi_version = OW_ABI_VERSION,
    .slots = adahessian_slots,
    .params = adahessian_params,
    .ctx_size = sizeof(ah_ctx),
    .prepare = prepare,
    .slot_shape = slot_shape,
    .tensor_step = step,
    .needs = OW_NEEDS_HVP,
    .wants_hvp = wants_hvp,
};

OW__OPTIMIZER_ENTRY(
    ow__optimizer_timm_adahessian, "adahessian", "timm", adahessian_keys, adahessian_ops,
    "timm Adahessian: Adam on the Hutchinson Hessian diagonal (host H z)");
