/* MADGRAD (timm): dual averaging with a cube-root denominator. lamb = (lr+eps)*sqrt(k);
 * sum_sq += lamb*g*g; s += lamb*g; z = x0 - s / (sum_sq**(1/3) + eps); p = momentum*p
 * + (1-momentum)*z (x0 is the first parameter value; without momentum p = z, x0 then
 * recomputed from p, s and sum_sq). L2 or decoupled decay. Steps tensor by tensor:
 * torch computes x**(1/3) with SLEEF's powf_u10 on whole vectors of 16 and in double on
 * the tail, both reproduced: bit-exact against torch on one thread (with more, torch
 * cuts tensors over 32768 elements among them, each part with its own tail). MADGRAD:
 * https://arxiv.org/abs/2101.11075 */
#include "optim_internal.h"

#include <string.h>

#define MADGRAD_KEYS(decoupled)                                                          \
    OW__KEY_NUM("lr", "0.01", "learning rate"),                                          \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-06",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the denominator (and to lr in the step weight)"},              \
        {.name = "momentum",                                                             \
         .type = OW_T_NUMBER,                                                            \
         .def = "0.9",                                                                   \
         .min = 0,                                                                       \
         .max = 1,                                                                       \
         .flags = OW_KEY_RANGE | OW_KEY_MAX_OPEN,                                        \
         .doc = "momentum (p averages the dual-averaging iterate)"},                     \
        OW__KEY_NUM("weight_decay", "0.0", "weight decay"),                              \
        OW__KEY_BOOL("decoupled_decay", decoupled,                                       \
                     "decay p *= 1 - lr*wd instead of L2"),                              \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key madgrad_keys[] = {MADGRAD_KEYS("false")};
static const ow_key madgradw_keys[] = {MADGRAD_KEYS("true")};

enum { P_LR, P_EPS, P_MOMENTUM, P_WD, P_DECOUPLED, NP };
static const char *const madgrad_params[NP + 1] = {[P_LR] = "lr",
                                                   [P_EPS] = "eps",
                                                   [P_MOMENTUM] = "momentum",
                                                   [P_WD] = "weight_decay",
                                                   [P_DECOUPLED] = "decoupled_decay"};

typedef struct madgrad_ctx {
    float lamb, eps, l2, keep, mom, ck;
    bool has_l2, has_momentum;
} madgrad_ctx;

enum { S_STEP, S_GRAD_SUM_SQ, S_S, S_X0 };
static const ow_slot madgrad_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_GRAD_SUM_SQ] = {.name = "grad_sum_sq"},
    [S_S] = {.name = "s"},
    [S_X0] = {.name = "x0", .flags = OW_SLOT_FROM_PARAM}, /* torch.clone(p) */
    {0},
};

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    if (slot == S_STEP)
        return 0;
    if (slot == S_X0 && hp[P_MOMENTUM].v[0] == 0)
        return -1;
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    return ndim;
}

static void prepare(ow_prepare_args *a)
{
    madgrad_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double eps = hp[P_EPS].v[0], wd = hp[P_WD].v[0], momentum = hp[P_MOMENTUM].v[0];
    double step = a->scalars[S_STEP] += 1, ck = 1 - momentum;
    c->lamb = ow__f((a->lr + eps) * sqrt(step)); /* lr = group['lr'] + eps */
    c->eps = ow__f(eps);
    bool decoupled = ow__hp_true(&hp[P_DECOUPLED]);
    c->has_l2 = wd != 0 && !decoupled;
    c->l2 = ow__f(wd);
    c->keep = wd != 0 && decoupled ? ow__f(1.0 - a->lr * wd) : 1.0f;
    c->has_momentum = momentum != 0;
    c->mom = ow__f(1 - ck);
    c->ck = ow__f(ck);
}

/* ---- x ** (1/3) as torch computes it -------------------------------------------------
 * Whole vectors: SLEEF's powf_u10, exp(y * log(x)) in double-float (pairs of floats)
 * arithmetic with fused multiply-adds (its AVX2 build); the scalar tail: std::pow in
 * double. Written from the algorithm for x > 0 (MADGRAD's sums are >= 0). */

typedef struct dfl {
    float x, y;
} dfl;

static dfl df_add2_ff(float x, float y)
{
    float s = x + y, v = s - x;
    return (dfl){s, (x - (s - v)) + (y - v)};
}
static dfl df_add_dd(dfl x, dfl y) /* |x| >= |y| */
{
    float s = x.x + y.x;
    return (dfl){s, (((x.x - s) + y.x) + x.y) + y.y};
}
static dfl df_add2_dd(dfl x, dfl y)
{
    float s = x.x + y.x, v = s - x.x;
    return (dfl){s, ((x.x - (s - v)) + (y.x - v)) + (x.y + y.y)};
}
static dfl df_add2_df(dfl x, float y)
{
    float s = x.x + y, v = s - x.x;
    return (dfl){s, ((x.x - (s - v)) + (y - v)) + x.y};
}
static dfl df_mul_dd(dfl x, dfl y)
{
    float s = x.x * y.x;
    return (dfl){s, fmaf(x.x, y.y, fmaf(x.y, y.x, fmaf(x.x, y.x, -s)))};
}
static dfl df_mul_df(dfl x, float y)
{
    float s = x.x * y;
    return (dfl){s, fmaf(x.y, y, fmaf(x.x, y, -s))};
}
static dfl df_squ(dfl x)
{
    float s = x.x * x.x;
    return (dfl){s, fmaf(x.x + x.x, x.y, fmaf(x.x, x.x, -s))};
}
static dfl df_div(dfl n, dfl d)
{
    float t = 1.0f / d.x, s = n.x * t, u = fmaf(t, n.x, -s);
    float v = fmaf(-d.y, t, fmaf(-d.x, t, 1.0f));
    return (dfl){s, fmaf(s, v, fmaf(n.y, t, u))};
}

static float f_of_bits(int32_t i)
{
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}
static int32_t bits_of_f(float f)
{
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

/* log(d) for d > 0 as a double-float */
static dfl sleef_logk(float d)
{
    bool tiny = d < 1.17549435e-38f; /* FLT_MIN: scale subnormals by 2**64 */
    if (tiny)
        d = d * 18446744073709551616.0f;
    int32_t e = ((bits_of_f(d * (1.0f / 0.75f)) >> 23) & 0xff) - 0x7f;
    float m = f_of_bits((int32_t)((uint32_t)bits_of_f(d) - ((uint32_t)e << 23)));
    if (tiny)
        e -= 64;
    dfl x = df_div(df_add2_ff(-1, m), df_add2_ff(1, m)), x2 = df_squ(x);
    float t = 0.240320354700088500976562f;
    t = fmaf(t, x2.x, 0.285112679004669189453125f);
    t = fmaf(t, x2.x, 0.400007992982864379882812f);
    dfl c = {0.66666662693023681640625f, 3.69183861259614332084311e-09f};
    dfl s =
        df_mul_df((dfl){0.69314718246459960938f, -1.904654323148236017e-09f}, (float)e);
    s = df_add_dd(s, (dfl){x.x * 2, x.y * 2});
    return df_add_dd(s, df_mul_dd(df_mul_dd(x2, x), df_add2_dd(df_mul_df(x2, t), c)));
}

/* exp of a double-float */
static float sleef_expk(dfl d)
{
    float u = (d.x + d.y) * 1.442695040888963407359924681001892137426645954152985934f;
    int q = (int)rintf(u);
    dfl s = df_add2_df(d, (float)q * -0.693145751953125f);
    s = df_add2_df(s, (float)q * -1.428606765330187045e-06f);
    float sx = s.x + s.y; /* normalise */
    s = (dfl){sx, (s.x - sx) + s.y};
    u = 0.00136324646882712841033936f;
    u = fmaf(u, s.x, 0.00836596917361021041870117f);
    u = fmaf(u, s.x, 0.0416710823774337768554688f);
    u = fmaf(u, s.x, 0.166665524244308471679688f);
    u = fmaf(u, s.x, 0.499999850988388061523438f);
    dfl t = df_add_dd(s, df_mul_df(df_squ(s), u));
    float tx = 1 + t.x; /* 1 + t */
    t = (dfl){tx, ((1 - tx) + t.x) + t.y};
    u = (t.x + t.y) * ldexpf(1.0f, q >> 1) * ldexpf(1.0f, q - (q >> 1));
    return d.x < -104 ? 0.0f : u;
}

static float cbrt_vec(float x)
{
    if (!(x > 0) || isinf(x))
        return x == 0 ? 0.0f : powf(x, (float)(1.0 / 3.0));
    return sleef_expk(df_mul_df(sleef_logk(x), (float)(1.0 / 3.0)));
}

static float cbrt_tail(float x)
{
    return (float)pow((double)x, 1.0 / 3.0);
}

/* ---- the step -------------------------------------------------------------------- */

typedef struct madgrad_job {
    const madgrad_ctx *c;
    float *p, *gss, *s, *x0;
    const float *g;
    size_t nvec; /* elements torch's vectorised loop covers: whole pairs of 8 floats */
} madgrad_job;

static void update_range(const void *arg, size_t lo, size_t hi)
{
    const madgrad_job *j = arg;
    const madgrad_ctx *c = j->c;
    for (size_t i = lo; i < hi; i++) {
        float g = j->g[i], pi = j->p[i] * c->keep; /* p.mul_(1 - lr*wd) */
        if (c->has_l2)
            g = fmaf(c->l2, pi, g); /* grad.add_(p, alpha=wd) */
        bool vec = i < j->nvec;
        float x0;
        if (c->has_momentum) {
            x0 = j->x0[i];
        } else { /* x0 = p.addcdiv(s, grad_sum_sq.pow(1/3).add_(eps), value=1) */
            float rms = (vec ? cbrt_vec(j->gss[i]) : cbrt_tail(j->gss[i])) + c->eps;
            x0 = pi + j->s[i] / rms;
        }
        float v = j->gss[i] = fmaf(c->lamb * g, g, j->gss[i]); /* addcmul_(g, g, lamb) */
        float rms = (vec ? cbrt_vec(v) : cbrt_tail(v)) + c->eps;
        float si = j->s[i] = fmaf(c->lamb, g, j->s[i]); /* s.add_(grad, alpha=lamb) */
        float z = x0 + (-1.0f * si) / rms;              /* x0.addcdiv(s, rms, value=-1) */
        j->p[i] = c->has_momentum ? fmaf(c->ck, z, pi * c->mom) : z; /* p*(1-ck) + ck*z */
    }
}

static void step_tensor(const ow_tensor_args *a)
{
    const madgrad_ctx *c = a->ctx;
    size_t n = a->numel;
    madgrad_job j = {.c = c,
                     .p = a->p,
                     .gss = a->s[S_GRAD_SUM_SQ],
                     .s = a->s[S_S],
                     .x0 = a->s[S_X0],
                     .g = a->g,
                     .nvec = n - n % 16};
    ow__parallel_range(update_range, &j, n, a->ref ? 1 : a->threads);
}

static const ow_optimizer_ops madgrad_ops = {.abi_version = OW_ABI_VERSION,
                                             .slots = madgrad_slots,
                                             .params = madgrad_params,
                                             .ctx_size = sizeof(madgrad_ctx),
                                             .prepare = prepare,
                                             .slot_shape = slot_shape,
                                             .tensor_step = step_tensor};

OW__OPTIMIZER_ENTRY(ow__optimizer_timm_madgrad, "madgrad", "timm", madgrad_keys,
                    madgrad_ops,
                    "timm MADGRAD: momentumized dual averaging, cube-root "
                    "denominator");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_madgradw, "madgradw", "timm", madgradw_keys,
                    madgrad_ops, "timm MADGRAD, decoupled weight decay");
