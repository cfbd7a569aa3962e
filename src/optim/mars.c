/* MARS (timm): variance-reduced momentum on 2-D+ weights (and 1-D ones with
 * optimize_1d): c = g + gamma*b1/(1-b1) * (g - g_prev), scaled to norm 1 when its norm
 * exceeds 1, then an AdamW (mars_type adamw) or Lion (sign) update of m = EMA(c) with
 * the L2-style decay p*wd in the update; other 1-D tensors take plain AdamW with
 * betas_1d and lr*lr_1d_factor. Caution as a flag. Steps tensor by tensor: the norm of c
 * is summed in torch's order (8 fused lanes, then the tail), so it is bit-exact.
 * MARS: Unleashing the Power of Variance Reduction, https://arxiv.org/abs/2411.10438 */
#include "optim_internal.h"

#include <string.h>

#define MARS_KEYS(caution)                                                               \
    OW__KEY_NUM("lr", "0.003", "learning rate"), OW__KEY_BETAS("[0.9, 0.99]"),           \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-08",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the denominator"},                                             \
        OW__KEY_NUM("weight_decay", "0.0", "weight decay (p*wd added to the update)"),   \
        {.name = "mars_type",                                                            \
         .type = OW_T_STRING,                                                            \
         .def = "adamw",                                                                 \
         .doc = "adamw or lion: the update made of the variance-reduced momentum"},      \
        OW__KEY_ANYNUM("gamma", "0.025", "weight of the gradient difference"),           \
        OW__KEY_BOOL("optimize_1d", "false", "MARS on 1-D tensors too (else AdamW)"),    \
        OW__KEY_ANYNUM("lr_1d_factor", "1.0", "lr factor of the 1-D AdamW"),             \
        {.name = "betas_1d",                                                             \
         .type = OW_T_NUMLIST,                                                           \
         .def = "null",                                                                  \
         .min = 0,                                                                       \
         .max = 1,                                                                       \
         .len = 2,                                                                       \
         .flags = OW_KEY_RANGE | OW_KEY_MAX_OPEN | OW_KEY_NULLABLE,                      \
         .doc = "betas of the 1-D AdamW (null: betas, as timm)"},                        \
        OW__KEY_BOOL("caution", caution, "cautious update"),                             \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key mars_keys[] = {MARS_KEYS("false")};
static const ow_key cmars_keys[] = {MARS_KEYS("true")};

enum {
    P_LR,
    P_BETAS,
    P_EPS,
    P_WD,
    P_TYPE,
    P_GAMMA,
    P_OPT_1D,
    P_LR_1D,
    P_BETAS_1D,
    P_CAUTION,
    NP
};
static const char *const mars_params[NP + 1] = {[P_LR] = "lr",
                                                [P_BETAS] = "betas",
                                                [P_EPS] = "eps",
                                                [P_WD] = "weight_decay",
                                                [P_TYPE] = "mars_type",
                                                [P_GAMMA] = "gamma",
                                                [P_OPT_1D] = "optimize_1d",
                                                [P_LR_1D] = "lr_1d_factor",
                                                [P_BETAS_1D] = "betas_1d",
                                                [P_CAUTION] = "caution"};

/* The constants of one kind of update (MARS, or the 1-D AdamW). */
typedef struct mars_rule {
    float b1, omb1, b2, omb2, bc1, bc2s, nlr;
} mars_rule;

typedef struct mars_ctx {
    mars_rule mars, adamw;
    float gscale, eps, wd;
    bool first, lion, optimize_1d, caution;
} mars_ctx;

enum { S_STEP, S_EXP_AVG, S_LAST_GRAD, S_EXP_AVG_SQ };
static const ow_slot mars_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_LAST_GRAD] = {.name = "last_grad"},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    {0},
};

static bool check(const ow_hparam *hp, char *msg, size_t n)
{
    const char *t = hp[P_TYPE].s;
    if (t && (!strcmp(t, "adamw") || !strcmp(t, "lion")))
        return true;
    snprintf(msg, n, "mars_type must be adamw or lion (MARS type not supported)");
    return false;
}

static mars_rule rule_of(const double *betas, double step, double lr)
{
    double b1 = betas[0], b2 = betas[1];
    return (mars_rule){.b1 = ow__f(b1),
                       .omb1 = ow__f(1 - b1),
                       .b2 = ow__f(b2),
                       .omb2 = ow__f(1 - b2),
                       .bc1 = ow__f(1 - pow(b1, step)),
                       .bc2s = ow__f(sqrt(1 - pow(b2, step))),
                       .nlr = ow__f(-lr)};
}

static void prepare(ow_prepare_args *a)
{
    mars_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double step = a->scalars[S_STEP] += 1, b1 = hp[P_BETAS].v[0];
    const double *b1d = hp[P_BETAS_1D].is_null ? hp[P_BETAS].v : hp[P_BETAS_1D].v;
    c->mars = rule_of(hp[P_BETAS].v, step, a->lr);
    c->adamw = rule_of(b1d, step, a->lr * hp[P_LR_1D].v[0]);
    c->gscale = ow__f(hp[P_GAMMA].v[0] * (b1 / (1. - b1)));
    c->eps = ow__f(hp[P_EPS].v[0]);
    c->wd = ow__f(hp[P_WD].v[0]);
    c->first = step == 1;
    c->lion = hp[P_TYPE].s && !strcmp(hp[P_TYPE].s, "lion");
    c->optimize_1d = ow__hp_true(&hp[P_OPT_1D]);
    c->caution = ow__hp_true(&hp[P_CAUTION]);
}

/* c_t of one element: (grad - last_grad).mul_(gscale).add_(grad), or the gradient on
 * the first step */
static inline float c_of(const mars_ctx *c, float g, float last)
{
    return c->first ? g : (g - last) * c->gscale + g;
}

/* torch.norm of a float32 vector on CPU (AVX2): 8 lanes of fused multiply-adds over
 * the whole vectors, their sum in lane order, then the tail: a block of 4 squares
 * added in order (vectorised, unfused), the rest fused. */
static float torch_norm_c(const mars_ctx *c, const float *g, const float *last, size_t n)
{
    float lane[8] = {0};
    size_t d = 0;
    for (; d + 8 <= n; d += 8)
        for (int j = 0; j < 8; j++) {
            float x = c_of(c, g[d + j], last[d + j]);
            lane[j] = fmaf(x, x, lane[j]);
        }
    float s = lane[0];
    for (int j = 1; j < 8; j++)
        s = s + lane[j];
    for (; d + 4 <= n; d += 4)
        for (int j = 0; j < 4; j++) {
            float x = c_of(c, g[d + j], last[d + j]);
            s = s + x * x;
        }
    for (; d < n; d++) {
        float x = c_of(c, g[d], last[d]);
        s = fmaf(x, x, s);
    }
    return sqrtf(s);
}

/* One tensor's step, cut into element ranges for ow__parallel_range. */
typedef struct mars_job {
    const mars_ctx *c;
    const mars_rule *r;
    float *p, *m, *v, *last;
    const float *g;
    float norm, scale;
    bool mars, clip;
} mars_job;

/* exp_avg (and exp_avg_sq) move with c_t, clipped to norm 1 */
static void moments_range(const void *arg, size_t lo, size_t hi)
{
    const mars_job *j = arg;
    const mars_ctx *c = j->c;
    const mars_rule *r = j->r;
    for (size_t i = lo; i < hi; i++) {
        float ct = j->mars ? c_of(c, j->g[i], j->last[i]) : j->g[i];
        if (j->clip)
            ct = ct / j->norm;                        /* c_t / c_t_norm */
        j->m[i] = fmaf(r->omb1, ct, j->m[i] * r->b1); /* exp_avg.mul_(b1).add_(c, 1-b1) */
        if (!j->mars || !c->lion)
            j->v[i] = fmaf(r->omb2 * ct, ct, j->v[i] * r->b2); /* .addcmul_(c, c, 1-b2) */
    }
}

/* p -= lr * (p*wd + update); last_grad = grad */
static void apply_range(const void *arg, size_t lo, size_t hi)
{
    const mars_job *j = arg;
    const mars_ctx *c = j->c;
    const mars_rule *r = j->r;
    for (size_t i = lo; i < hi; i++) {
        float mi = j->m[i], u;
        if (c->caution) /* exp_avg * mask / mean(mask) */
            mi = mi * (mi * j->g[i] > 0 ? j->scale : 0.0f);
        if (j->mars && c->lion) {
            u = (float)((mi > 0) - (mi < 0)); /* exp_avg.sign() */
        } else {
            float denom = sqrtf(j->v[i]) / r->bc2s + c->eps;
            u = (mi / r->bc1) / denom; /* (exp_avg / bc1).div_(denom) */
        }
        u = j->p[i] * c->wd + u;            /* p * weight_decay + ... */
        j->p[i] = fmaf(r->nlr, u, j->p[i]); /* p.add_(update, alpha=-lr) */
        j->last[i] = j->g[i];               /* state['last_grad'] = grad */
    }
}

static void step_tensor(const ow_tensor_args *a)
{
    const mars_ctx *c = a->ctx;
    size_t n = a->numel;
    int threads = a->ref ? 1 : a->threads;
    bool mars = c->optimize_1d || a->ndim >= 2;
    mars_job j = {.c = c,
                  .r = mars ? &c->mars : &c->adamw,
                  .p = a->p,
                  .m = a->s[S_EXP_AVG],
                  .v = a->s[S_EXP_AVG_SQ],
                  .last = a->s[S_LAST_GRAD],
                  .g = a->g,
                  .norm = 1.0f,
                  .scale = 1.0f,
                  .mars = mars};
    if (mars && !c->first)
        j.norm = torch_norm_c(c, j.g, j.last, n);
    j.clip = j.norm > 1.0f; /* if c_t_norm > 1. */
    ow__parallel_range(moments_range, &j, n, threads);
    if (c->caution) { /* (exp_avg * grad > 0), counted in order */
        double cnt = 0;
        for (size_t i = 0; i < n; i++)
            cnt += j.m[i] * j.g[i] > 0;
        j.scale = (float)ow__caution_scale(cnt, n);
    }
    ow__parallel_range(apply_range, &j, n, threads);
}

static const ow_optimizer_ops mars_ops = {.abi_version = OW_ABI_VERSION,
                                          .slots = mars_slots,
                                          .params = mars_params,
                                          .ctx_size = sizeof(mars_ctx),
                                          .check = check,
                                          .prepare = prepare,
                                          .tensor_step = step_tensor};

OW__OPTIMIZER_ENTRY(ow__optimizer_timm_mars, "mars", "timm", mars_keys, mars_ops,
                    "timm Mars: variance-reduced momentum (AdamW or Lion update)");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_cmars, "cmars", "timm", cmars_keys, mars_ops,
                    "timm Mars, cautious");
