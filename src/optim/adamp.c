/* AdamP and SGDP (timm's adamp.py / sgdp.py, from clovaai/AdamP): Adam or SGD whose
 * update, on tensors of 2+ dims whose gradient is nearly orthogonal to the weight (max
 * |cosine| below delta/sqrt(dim), per output channel first, then over the whole
 * layer), loses its radial part and gets weight decay times wd_ratio. caution: the
 * spherical cautious mask on projected tensors, the standard one elsewhere. One
 * per-tensor step; the row sums of the projection are taken in double (torch: float32
 * in its reduction order). Slowing Down the Weight Norm Increase in Momentum-based
 * Optimizers, https://arxiv.org/abs/2006.08217 */
#include "optim_internal.h"

#include <string.h>

#define K_CAUTION(d)                                                                     \
    OW__KEY_BOOL("caution", d, "cautious update (spherical when projected)")
#define K_PROJ(wd_ratio)                                                                 \
    {.name = "eps",                                                                      \
     .type = OW_T_FLOAT,                                                                 \
     .def = "1e-08",                                                                     \
     .min = 0,                                                                           \
     .max = INFINITY,                                                                    \
     .flags = OW_KEY_RANGE,                                                              \
     .doc = "denominator term; cosine and norm floor"},                                  \
        OW__KEY_ANYNUM("delta", "0.1", "projection threshold on |cosine| * sqrt(dim)"),  \
        OW__KEY_NUM("wd_ratio", wd_ratio, "weight decay factor on projected tensors")

#define ADAMP_KEYS(caution)                                                              \
    OW__KEY_NUM("lr", "0.001", "learning rate"), OW__KEY_BETAS("[0.9, 0.999]"),          \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-08",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "denominator term; cosine and norm floor"},                              \
        OW__KEY_NUM("weight_decay", "0.0", "decoupled weight decay"),                    \
        OW__KEY_ANYNUM("delta", "0.1", "projection threshold on |cosine| * sqrt(dim)"),  \
        OW__KEY_NUM("wd_ratio", "0.01", "weight decay factor on projected tensors"),     \
        OW__KEY_BOOL("nesterov", "true", "Nesterov numerator"), K_CAUTION(caution),      \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key adamp_keys[] = {ADAMP_KEYS("false")};
static const ow_key cadamp_keys[] = {ADAMP_KEYS("true")};

#define SGDP_KEYS(caution)                                                               \
    {.name = "lr",                                                                       \
     .type = OW_T_NUMBER,                                                                \
     .min = 0,                                                                           \
     .max = INFINITY,                                                                    \
     .flags = OW_KEY_RANGE | OW_KEY_REQUIRED,                                            \
     .doc = "learning rate"},                                                            \
        OW__KEY_NUM("momentum", "0.9", "momentum factor"),                               \
        OW__KEY_NUM("dampening", "0", "dampening of the gradient in the buffer"),        \
        OW__KEY_NUM("weight_decay", "0.0", "decoupled weight decay (/ (1 - momentum))"), \
        OW__KEY_BOOL("nesterov", "true", "Nesterov momentum"), K_PROJ("0.1"),            \
        K_CAUTION(caution),                                                              \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key sgdp_keys[] = {SGDP_KEYS("false")};
static const ow_key csgdp_keys[] = {SGDP_KEYS("true")};

/* ---- AdamP ------------------------------------------------------------------------ */

enum { A_LR, A_BETAS, A_EPS, A_WD, A_DELTA, A_WD_RATIO, A_NESTEROV, A_CAUTION, A_NP };
static const char *const adamp_params[A_NP + 1] = {
    [A_LR] = "lr",
    [A_BETAS] = "betas",
    [A_EPS] = "eps",
    [A_WD] = "weight_decay",
    [A_DELTA] = "delta",
    [A_WD_RATIO] = "wd_ratio",
    [A_NESTEROV] = "nesterov",
    [A_CAUTION] = "caution",
};

enum { S_STEP, S_EXP_AVG, S_EXP_AVG_SQ };
static const ow_slot adamp_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    {0},
};

/* What both optimizers hand their per-tensor step. */
typedef struct proj_ctx {
    double lr, wd, delta, wd_ratio, eps;
    double b1, b2, step;        /* AdamP */
    double momentum, dampening; /* SGDP */
    bool nesterov, caution, sgd;
} proj_ctx;

static void adamp_prepare(ow_prepare_args *a)
{
    proj_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    memset(c, 0, sizeof *c);
    c->lr = a->lr;
    c->b1 = hp[A_BETAS].v[0];
    c->b2 = hp[A_BETAS].v[1];
    c->eps = hp[A_EPS].v[0];
    c->wd = hp[A_WD].v[0];
    c->delta = hp[A_DELTA].v[0];
    c->wd_ratio = hp[A_WD_RATIO].v[0];
    c->nesterov = ow__hp_true(&hp[A_NESTEROV]);
    c->caution = ow__hp_true(&hp[A_CAUTION]);
    c->step = a->scalars[S_STEP] += 1;
}

static int adamp_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                       int64_t *out)
{
    (void)hp;
    if (slot == S_STEP)
        return 0;
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    return ndim;
}

/* ---- the projection (timm's adamp.projection) ---------------------------------- */

/* mask = (x * y > 0); x *= mask / max(mean(mask), 1e-3) */
static void caution_mask(float *x, const float *y, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += x[i] * y[i] > 0;
    float s = (float)ow__caution_scale((double)count, n);
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] * (x[i] * y[i] > 0 ? s : 0.0f);
}

/* x -= pn * rowsum(pn * x) over rows of `cols` */
static void remove_radial(float *x, const float *pn, size_t n, size_t cols, float *out)
{
    for (size_t r = 0; r < n; r += cols) {
        double s = 0;
        for (size_t i = r; i < r + cols; i++)
            s += (double)(pn[i] * x[i]);
        float sf = (float)s;
        for (size_t i = r; i < r + cols; i++)
            out[i] = x[i] - pn[i] * sf;
    }
}

/* Projects d (the update) for parameter p and gradient g; returns the weight decay
 * factor (wd_ratio when projected, else 1). pn: scratch of n floats. */
static double project(const float *p, const float *g, float *d, size_t n, size_t rows,
                      const proj_ctx *c, float *pn)
{
    const float eps = ow__f(c->eps);
    for (int view = 0; view < 2; view++) {
        size_t nr = view == 0 ? rows : 1, cols = n / nr;
        /* |cosine_similarity(g, p, dim=1, eps)|: w12 / sqrt(max(w1*w2, eps^2)) */
        float cmax = 0;
        for (size_t r = 0; r < n; r += cols) {
            double w12 = 0, w1 = 0, w2 = 0;
            for (size_t i = r; i < r + cols; i++) {
                w12 += (double)g[i] * p[i];
                w1 += (double)g[i] * g[i];
                w2 += (double)p[i] * p[i];
            }
            float cs = fabsf((float)(w12 / sqrt(fmax(w1 * w2, c->eps * c->eps))));
            cmax = cs > cmax ? cs : cmax;
        }
        if (!(cmax < ow__f(c->delta / sqrt((double)cols))))
            continue;
        for (size_t r = 0; r < n; r += cols) { /* p / (|p_row| + eps) */
            double ss = 0;
            for (size_t i = r; i < r + cols; i++)
                ss += (double)p[i] * p[i];
            float den = (float)sqrt(ss) + eps;
            for (size_t i = r; i < r + cols; i++)
                pn[i] = p[i] / den;
        }
        remove_radial(d, pn, n, cols, d);
        if (c->caution) { /* spherical: the mask against the tangential gradient */
            float *perp = pn + n;
            remove_radial((float *)g, pn, n, cols, perp); /* g - radial (g unchanged) */
            caution_mask(d, perp, n);
            remove_radial(d, pn, n, cols, d);
        }
        return c->wd_ratio;
    }
    if (c->caution)
        caution_mask(d, g, n);
    return 1.0;
}

static size_t proj_scratch(const ow_hparam *hp, int ndim, const int64_t *shape)
{
    (void)hp;
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)shape[d];
    return 3 * n * sizeof(float); /* update, p_n, tangential gradient */
}

static void adamp_step(const ow_tensor_args *a)
{
    const proj_ctx *c = a->ctx;
    size_t n = a->numel;
    float *p = a->p, *m = a->s[S_EXP_AVG], *v = a->s[S_EXP_AVG_SQ];
    const float *g = a->g;
    float *d = a->scratch, *pn = d + n;
    const float b1 = ow__f(c->b1), omb1 = ow__f(1 - c->b1), b2 = ow__f(c->b2),
                omb2 = ow__f(1 - c->b2), bc2s = ow__f(sqrt(1 - pow(c->b2, c->step))),
                eps = ow__f(c->eps);
    for (size_t i = 0; i < n; i++) {
        m[i] = fmaf(omb1, g[i], m[i] * b1);        /* exp_avg.mul_(b1).add_(g, 1-b1) */
        v[i] = fmaf(omb2 * g[i], g[i], v[i] * b2); /* .mul_(b2).addcmul_(g, g, 1-b2) */
        float denom = sqrtf(v[i]) / bc2s + eps;
        float num = c->nesterov ? b1 * m[i] + omb1 * g[i] : m[i];
        d[i] = num / denom;
    }
    double wd = 1.0;
    if (a->ndim > 1)
        wd = project(p, g, d, n, (size_t)a->shape[0], c, pn);
    else if (c->caution)
        caution_mask(d, g, n);
    if (c->wd > 0) {
        float keep = ow__f(1. - c->lr * c->wd * wd);
        for (size_t i = 0; i < n; i++)
            p[i] = p[i] * keep;
    }
    const float ss = ow__f(-(c->lr / (1 - pow(c->b1, c->step))));
    for (size_t i = 0; i < n; i++)
        p[i] = fmaf(ss, d[i], p[i]); /* p.add_(perturb, alpha=-step_size) */
}

static const ow_optimizer_ops adamp_ops = {
    .abi_version = OW_ABI_VERSION,
    .slots = adamp_slots,
    .params = adamp_params,
    .ctx_size = sizeof(proj_ctx),
    .prepare = adamp_prepare,
    .slot_shape = adamp_shape,
    .tensor_step = adamp_step,
    .scratch_bytes = proj_scratch,
};

/* ---- SGDP ----------------------------------------------------------------------- */

enum {
    G_LR,
    G_MOMENTUM,
    G_DAMPENING,
    G_WD,
    G_NESTEROV,
    G_EPS,
    G_DELTA,
    G_WD_RATIO,
    G_CAUTION,
    G_NP
};
static const char *const sgdp_params[G_NP + 1] = {
    [G_LR] = "lr",           [G_MOMENTUM] = "momentum", [G_DAMPENING] = "dampening",
    [G_WD] = "weight_decay", [G_NESTEROV] = "nesterov", [G_EPS] = "eps",
    [G_DELTA] = "delta",     [G_WD_RATIO] = "wd_ratio", [G_CAUTION] = "caution",
};

static const ow_slot sgdp_slots[] = {{.name = "momentum"}, {0}};

static void sgdp_prepare(ow_prepare_args *a)
{
    proj_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    memset(c, 0, sizeof *c);
    c->lr = a->lr;
    c->momentum = hp[G_MOMENTUM].v[0];
    c->dampening = hp[G_DAMPENING].v[0];
    c->wd = hp[G_WD].v[0];
    c->nesterov = ow__hp_true(&hp[G_NESTEROV]);
    c->eps = hp[G_EPS].v[0];
    c->delta = hp[G_DELTA].v[0];
    c->wd_ratio = hp[G_WD_RATIO].v[0];
    c->caution = ow__hp_true(&hp[G_CAUTION]);
    c->sgd = true;
}

static int sgdp_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    (void)hp;
    (void)slot;
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    return ndim;
}

static void sgdp_step(const ow_tensor_args *a)
{
    const proj_ctx *c = a->ctx;
    size_t n = a->numel;
    float *p = a->p, *buf = a->s[0];
    const float *g = a->g;
    float *d = a->scratch, *pn = d + n;
    const float mom = ow__f(c->momentum), omd = ow__f(1. - c->dampening);
    for (size_t i = 0; i < n; i++) {
        buf[i] = fmaf(omd, g[i], buf[i] * mom); /* buf.mul_(m).add_(g, alpha=1-damp) */
        d[i] = c->nesterov ? g[i] + mom * buf[i] : buf[i];
    }
    double wd = 1.0;
    if (a->ndim > 1)
        wd = project(p, g, d, n, (size_t)a->shape[0], c, pn);
    else if (c->caution)
        caution_mask(d, g, n);
    if (c->wd != 0) {
        float keep = ow__f(1. - c->lr * c->wd * wd / (1 - c->momentum));
        for (size_t i = 0; i < n; i++)
            p[i] = p[i] * keep;
    }
    const float nlr = ow__f(-c->lr);
    for (size_t i = 0; i < n; i++)
        p[i] = fmaf(nlr, d[i], p[i]); /* p.add_(d_p, alpha=-lr) */
}

static const ow_optimizer_ops sgdp_ops = {
    .abi_version = OW_ABI_VERSION,
    .slots = sgdp_slots,
    .params = sgdp_params,
    .ctx_size = sizeof(proj_ctx),
    .prepare = sgdp_prepare,
    .slot_shape = sgdp_shape,
    .tensor_step = sgdp_step,
    .scratch_bytes = proj_scratch,
};

OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adamp, "adamp", "timm", adamp_keys, adamp_ops,
                    "timm AdamP: Adam with the radial part of the update projected out");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_cadamp, "cadamp", "timm", cadamp_keys, adamp_ops,
                    "timm AdamP, cautious (spherical mask where projected)");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_sgdp, "sgdp", "timm", sgdp_keys, sgdp_ops,
                    "timm SGDP: SGD with the radial part of the update projected out");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_csgdp, "csgdp", "timm", csgdp_keys, sgdp_ops,
                    "timm SGDP, cautious (spherical mask where projected)");
