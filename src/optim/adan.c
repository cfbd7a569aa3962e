/* Adan (timm): Nesterov momentum from the gradient difference. m = b1*m + (1-b1)*g;
 * d = b2*d + (1-b2)*(g - g_prev); n = b3*n + (1-b3)*(g + b2*(g - g_prev))**2;
 * p -= lr/bc1 * m/denom + lr*b2/bc2 * d/denom, with the decay p *= 1 - lr*wd first
 * (no_prox) or p /= 1 + lr*wd after. timm's single- and multi-tensor paths round alike;
 * caution runs the single one (no _foreach_maximum_.Scalar in torch 1.13).
 * Adan: Adaptive Nesterov Momentum Algorithm, https://arxiv.org/abs/2208.06677 */
#include "optim_internal.h"

#define ADAN_KEYS(no_prox, caution)                                                      \
    OW__KEY_NUM("lr", "0.001", "learning rate"),                                         \
        {.name = "betas",                                                                \
         .type = OW_T_NUMLIST,                                                           \
         .def = "[0.98, 0.92, 0.99]",                                                    \
         .min = 0,                                                                       \
         .max = 1,                                                                       \
         .len = 3,                                                                       \
         .flags = OW_KEY_RANGE | OW_KEY_MAX_OPEN,                                        \
         .doc =                                                                          \
             "decay rates of the gradient, gradient-difference and squared averages"},   \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-08",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the denominator"},                                             \
        OW__KEY_NUM("weight_decay", "0.0", "weight decay"),                              \
        OW__KEY_BOOL("no_prox", no_prox,                                                 \
                     "decay p *= 1 - lr*wd before the step instead of p /= 1 + lr*wd "   \
                     "after"),                                                           \
        OW__KEY_BOOL("caution", caution, "cautious update"), OW__KEY_FOREACH,            \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key adan_keys[] = {ADAN_KEYS("false", "false")};
static const ow_key adanw_keys[] = {ADAN_KEYS("true", "false")};
static const ow_key cadan_keys[] = {ADAN_KEYS("false", "true")};
static const ow_key cadanw_keys[] = {ADAN_KEYS("true", "true")};

enum { P_LR, P_BETAS, P_EPS, P_WD, P_NO_PROX, P_CAUTION, NP };
static const char *const adan_params[NP + 1] = {
    [P_LR] = "lr",           [P_BETAS] = "betas",     [P_EPS] = "eps",
    [P_WD] = "weight_decay", [P_NO_PROX] = "no_prox", [P_CAUTION] = "caution"};

typedef struct adan_ctx {
    float b1, omb1, b2, omb2, b3, omb3, bc3s, eps, nss, nssd, keep, div;
    bool first, caution;
} adan_ctx;

enum { S_EXP_AVG, S_EXP_AVG_SQ, S_EXP_AVG_DIFF, S_NEG_PRE_GRAD, S_STEP };
static const ow_slot adan_slots[] = {
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    [S_EXP_AVG_DIFF] = {.name = "exp_avg_diff"},
    [S_NEG_PRE_GRAD] = {.name = "neg_pre_grad"},
    /* timm keeps the step in the param group; optwrap keeps it per parameter */
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    {0},
};

enum { PASS_STEP, PASS_COUNT, PASS_APPLY };

static void prepare(ow_prepare_args *a)
{
    adan_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double lr = a->lr, wd = hp[P_WD].v[0];
    double b1 = hp[P_BETAS].v[0], b2 = hp[P_BETAS].v[1], b3 = hp[P_BETAS].v[2];
    double step = a->scalars[S_STEP] += 1;
    c->b1 = ow__f(b1);
    c->omb1 = ow__f(1 - b1);
    c->b2 = ow__f(b2);
    c->omb2 = ow__f(1 - b2);
    c->b3 = ow__f(b3);
    c->omb3 = ow__f(1 - b3);
    c->bc3s = ow__f(sqrt(1 - pow(b3, step)));
    c->eps = ow__f(hp[P_EPS].v[0]);
    c->nss = ow__f(-(lr / (1 - pow(b1, step))));
    c->nssd = ow__f(-(lr * b2 / (1 - pow(b2, step))));
    bool no_prox = ow__hp_true(&hp[P_NO_PROX]);
    c->keep = no_prox ? ow__f(1 - lr * wd) : 1.0f; /* x*1 and x/1 are exact */
    c->div = no_prox ? 1.0f : ow__f(1 + lr * wd);
    c->first = step == 1; /* neg_pre_grad = -grad: the difference is 0 */
    c->caution = ow__hp_true(&hp[P_CAUTION]);
    a->passes = c->caution ? 1u << PASS_COUNT | 1u << PASS_APPLY : 1u << PASS_STEP;
}

/* The moments of one element (in place) and its denominator. */
static inline __attribute__((always_inline)) float
moments(const adan_ctx *c, float g, float *m, float *d, float *v, float *neg)
{
    float nd = c->first ? 0.0f : *neg + g;   /* neg_pre_grads.add_(grads) */
    *m = fmaf(c->omb1, g, *m * c->b1);       /* exp_avg.mul_(b1).add_(g, 1-b1) */
    *d = fmaf(c->omb2, nd, *d * c->b2);      /* exp_avg_diff.mul_(b2).add_(nd, 1-b2) */
    nd = nd * c->b2 + g;                     /* nd.mul_(b2).add_(g) */
    *v = fmaf(c->omb3 * nd, nd, *v * c->b3); /* .addcmul_(nd, nd, 1-b3) */
    *neg = 0.0f - g;                         /* zero_().add_(g, alpha=-1) */
    return sqrtf(*v) / c->bc3s + c->eps;     /* (n.sqrt() / bc3_sqrt).add_(eps) */
}

/* p with the decay and both addcdiv steps. */
static inline __attribute__((always_inline)) float apply(const adan_ctx *c, float p,
                                                         float m, float d, float denom)
{
    p = p * c->keep;
    p = p + (c->nss * m) / denom;  /* addcdiv_(m, denom, -step_size) */
    p = p + (c->nssd * d) / denom; /* addcdiv_(d, denom, -step_size_diff) */
    return p / c->div;
}

static inline __attribute__((always_inline)) void step_body(const ow_kernel_args *a)
{
    const adan_ctx *c = a->ctx;
    float *restrict p = a->p, *restrict m = a->s[S_EXP_AVG],
                    *restrict v = a->s[S_EXP_AVG_SQ], *restrict d = a->s[S_EXP_AVG_DIFF],
                    *restrict neg = a->s[S_NEG_PRE_GRAD];
    const float *restrict g = a->g;
    for (size_t i = 0; i < a->n; i++) {
        float denom = moments(c, g[i], &m[i], &d[i], &v[i], &neg[i]);
        p[i] = apply(c, p[i], m[i], d[i], denom);
    }
}

/* The fast loop: the same operations with the constants in registers (first: the
 * gradient difference is 0). */
static inline __attribute__((always_inline)) void step_loop(const ow_kernel_args *a,
                                                            bool first)
{
    const adan_ctx *c = a->ctx;
    float *restrict p = a->p, *restrict m = a->s[S_EXP_AVG],
                    *restrict v = a->s[S_EXP_AVG_SQ], *restrict d = a->s[S_EXP_AVG_DIFF],
                    *restrict neg = a->s[S_NEG_PRE_GRAD];
    const float *restrict g = a->g;
    const float b1 = c->b1, omb1 = c->omb1, b2 = c->b2, omb2 = c->omb2, b3 = c->b3,
                omb3 = c->omb3, bc3s = c->bc3s, eps = c->eps, nss = c->nss,
                nssd = c->nssd, keep = c->keep, div = c->div;
    size_t n = a->n;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float nd = first ? 0.0f : neg[i] + gi;
        float mi = fmaf(omb1, gi, m[i] * b1);
        float di = fmaf(omb2, nd, d[i] * b2);
        nd = nd * b2 + gi;
        float vi = fmaf(omb3 * nd, nd, v[i] * b3);
        m[i] = mi;
        d[i] = di;
        v[i] = vi;
        neg[i] = 0.0f - gi;
        float denom = sqrtf(vi) / bc3s + eps;
        float pi = p[i] * keep;
        pi = pi + (nss * mi) / denom;
        pi = pi + (nssd * di) / denom;
        p[i] = pi / div;
    }
}

OW_SIMD static void adan_step_run(const ow_kernel_args *a)
{
    const adan_ctx *c = a->ctx;
    if (c->first)
        step_loop(a, true);
    else
        step_loop(a, false);
}

static void step_ref(const ow_kernel_args *a)
{
    step_body(a);
}

/* caution, pass 1: the moments move and (exp_avg * grad > 0) is counted */
static void count_ref(const ow_kernel_args *a)
{
    const adan_ctx *c = a->ctx;
    double cnt = 0;
    for (size_t i = 0; i < a->n; i++) {
        float *m = &a->s[S_EXP_AVG][i];
        moments(c, a->g[i], m, &a->s[S_EXP_AVG_DIFF][i], &a->s[S_EXP_AVG_SQ][i],
                &a->s[S_NEG_PRE_GRAD][i]);
        cnt += *m * a->g[i] > 0;
    }
    a->sums[0] += cnt;
}

/* caution, pass 2: exp_avg * mask / mean(mask) in the first addcdiv */
static void apply_ref(const ow_kernel_args *a)
{
    const adan_ctx *c = a->ctx;
    const float scale = (float)a->t[0];
    for (size_t i = 0; i < a->n; i++) {
        float m = a->s[S_EXP_AVG][i], g = a->g[i];
        float denom = sqrtf(a->s[S_EXP_AVG_SQ][i]) / c->bc3s + c->eps;
        m = m * (m * g > 0 ? scale : 0.0f);
        a->p[i] = apply(c, a->p[i], m, a->s[S_EXP_AVG_DIFF][i], denom);
    }
}

static const ow_pass adan_passes[] = {
    [PASS_STEP] = {.run = adan_step_run, .ref = step_ref},
    [PASS_COUNT] = {.run = count_ref,
                    .ref = count_ref,
                    .nsums = 1,
                    .finish = ow__caution_finish},
    [PASS_APPLY] = {.run = apply_ref, .ref = apply_ref},
    {0},
};

static const ow_optimizer_ops adan_ops = {.abi_version = OW_ABI_VERSION,
                                          .slots = adan_slots,
                                          .params = adan_params,
                                          .ctx_size = sizeof(adan_ctx),
                                          .prepare = prepare,
                                          .passes = adan_passes};

OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adan, "adan", "timm", adan_keys, adan_ops,
                    "timm Adan: Nesterov momentum from gradient differences");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adanw, "adanw", "timm", adanw_keys, adan_ops,
                    "timm Adan, decoupled decay (no_prox)");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_cadan, "cadan", "timm", cadan_keys, adan_ops,
                    "timm Adan, cautious");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_cadanw, "cadanw", "timm", cadanw_keys, adan_ops,
                    "timm Adan, cautious, decoupled decay (no_prox)");
