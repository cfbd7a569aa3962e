/* ADOPT (timm): the first step only fills v = g*g; later steps normalise the gradient
 * by the previous second moment, clip it at (step-1)**clip_exp, and move m towards it
 * (lerp) before v is updated: p -= lr * m. L2 or decoupled (corrected) decay, caution
 * and maximize as flags. timm's single-tensor path (its default, foreach=False; the
 * foreach one needs torch 2 and rounds its clip value in float32). timm registers the
 * names without betas (create_optimizer_v2 drops them): betas (0.9, 0.9999), not a
 * key.
 * ADOPT: Modified Adam Can Converge with Any beta2, https://arxiv.org/abs/2411.02853 */
#include "optim_internal.h"

#define ADOPT_KEYS(decoupled, corrected, caution)                                        \
    OW__KEY_NUM("lr", "0.001", "learning rate"),                                         \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-06",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "lower bound of sqrt(v) in the normalisation"},                          \
        OW__KEY_NUM("weight_decay", "0.0", "weight decay"),                              \
        {.name = "clip_exp",                                                             \
         .type = OW_T_NUMBER,                                                            \
         .def = "0.333",                                                                 \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "clip the normalised gradient at (step-1)**clip_exp (null: no clip)"},   \
        OW__KEY_BOOL("decoupled", decoupled, "decay p -= lr*wd*p instead of L2"),        \
        OW__KEY_BOOL("corrected_weight_decay", corrected,                                \
                     "decoupled decay scaled by lr**2/max_lr"),                          \
        OW__KEY_BOOL("caution", caution, "cautious update"),                             \
        OW__KEY_BOOL("maximize", "false",                                                \
                     "maximize the objective instead of minimizing"),                    \
        OW__KEY_PERF("foreach"), OW__KEY_PERF("capturable"),                             \
        OW__KEY_PERF("differentiable"),                                                  \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key adopt_keys[] = {ADOPT_KEYS("false", "false", "false")};
static const ow_key adoptw_keys[] = {ADOPT_KEYS("true", "false", "false")};
static const ow_key adoptc_keys[] = {ADOPT_KEYS("true", "true", "false")};
static const ow_key cadopt_keys[] = {ADOPT_KEYS("false", "false", "true")};
static const ow_key cadoptw_keys[] = {ADOPT_KEYS("true", "false", "true")};
static const ow_key cadoptc_keys[] = {ADOPT_KEYS("true", "true", "true")};

enum {
    P_LR,
    P_EPS,
    P_WD,
    P_CLIP_EXP,
    P_DECOUPLED,
    P_CORRECTED,
    P_CAUTION,
    P_MAXIMIZE,
    NP
};
static const char *const adopt_params[NP + 1] = {[P_LR] = "lr",
                                                 [P_EPS] = "eps",
                                                 [P_WD] = "weight_decay",
                                                 [P_CLIP_EXP] = "clip_exp",
                                                 [P_DECOUPLED] = "decoupled",
                                                 [P_CORRECTED] = "corrected_weight_decay",
                                                 [P_CAUTION] = "caution",
                                                 [P_MAXIMIZE] = "maximize"};

typedef struct adopt_ctx {
    float sign, l2, decay, eps, clip, omb1, b2, omb2, nlr;
    bool first, has_l2, has_decay, has_clip, caution;
} adopt_ctx;

enum { S_STEP, S_EXP_AVG, S_EXP_AVG_SQ };
static const ow_slot adopt_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_F32),
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    {0},
};

enum { PASS_STEP, PASS_COUNT, PASS_APPLY };

static void prepare(ow_prepare_args *a)
{
    adopt_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    /* timm registers adopt without betas: its factory drops them, Adopt's own stay */
    const double b1 = 0.9, b2 = 0.9999;
    double lr = a->lr, wd = hp[P_WD].v[0];
    double step = a->scalars[S_STEP] += 1;
    bool decoupled = ow__hp_true(&hp[P_DECOUPLED]);
    c->sign = ow__hp_true(&hp[P_MAXIMIZE]) ? -1.0f : 1.0f;
    c->has_l2 = wd != 0 && !decoupled;
    c->l2 = ow__f(wd);
    c->has_decay = wd != 0 && decoupled;
    /* param.add_(param, alpha=-wd_scale * wd) */
    c->decay = ow__f(
        -ow__wd_scale(lr, ow__hp_true(&hp[P_CORRECTED]), a->defaults[P_LR].v[0]) * wd);
    c->eps = ow__f(hp[P_EPS].v[0]);
    c->has_clip = !hp[P_CLIP_EXP].is_null;
    c->clip = c->has_clip ? ow__f(pow(step - 1, hp[P_CLIP_EXP].v[0])) : 0.0f;
    c->omb1 = ow__f(1 - b1);
    c->b2 = ow__f(b2);
    c->omb2 = ow__f(1 - b2);
    c->nlr = ow__f(-lr);
    c->first = step == 1;
    c->caution = ow__hp_true(&hp[P_CAUTION]) && !c->first;
    a->passes = c->caution ? 1u << PASS_COUNT | 1u << PASS_APPLY : 1u << PASS_STEP;
}

/* torch's clamp: std::max / std::min, NaN passes through (and the loops vectorise) */
static inline float clamp_min(float x, float lo)
{
    return x < lo ? lo : x;
}
static inline float clamp_max(float x, float hi)
{
    return hi < x ? hi : x;
}

/* The gradient as the step sees it: maximize, then L2 decay. */
static inline __attribute__((always_inline)) float grad_of(const adopt_ctx *c, float g,
                                                           float p)
{
    g = g * c->sign;
    return c->has_l2 ? fmaf(c->l2, p, g) : g; /* grad.add(param, alpha=wd) */
}

/* m.lerp_(clamp(g / max(sqrt(v), eps), -clip, clip), 1 - b1); then v moves. */
static inline __attribute__((always_inline)) void moments(const adopt_ctx *c, float g,
                                                          float *m, float *v)
{
    if (c->first) {
        *v = fmaf(g, g, *v); /* exp_avg_sq.addcmul_(grad, grad) */
        return;
    }
    float denom = clamp_min(sqrtf(*v), c->eps); /* torch.clamp(v.sqrt(), eps) */
    float ng = g / denom;
    if (c->has_clip) /* normed_grad.clamp_(-clip, clip) */
        ng = clamp_max(clamp_min(ng, -c->clip), c->clip);
    /* exp_avg.lerp_(ng, 1-b1): weight 0.1 < 0.5, torch's self + w*(end-self) */
    *m = fmaf(c->omb1, ng - *m, *m);
    *v = fmaf(c->omb2 * g, g, *v * c->b2); /* v.mul_(b2).addcmul_(g, g, 1-b2) */
}

static inline __attribute__((always_inline)) float apply(const adopt_ctx *c, float p,
                                                         float m)
{
    if (c->has_decay)
        p = fmaf(c->decay, p, p);
    return fmaf(c->nlr, m, p); /* param.add_(exp_avg, alpha=-lr) */
}

static void step_ref(const ow_kernel_args *a)
{
    const adopt_ctx *c = a->ctx;
    for (size_t i = 0; i < a->n; i++) {
        float *m = &a->s[S_EXP_AVG][i];
        moments(c, grad_of(c, a->g[i], a->p[i]), m, &a->s[S_EXP_AVG_SQ][i]);
        if (!c->first)
            a->p[i] = apply(c, a->p[i], *m);
    }
}

/* The fast loop: the same operations with the constants in registers and the
 * switches compile-time constants (a branch in the loop stops vectorisation). */
static inline __attribute__((always_inline)) void
step_loop(const ow_kernel_args *a, bool has_l2, bool has_decay, bool has_clip)
{
    const adopt_ctx *c = a->ctx;
    float *restrict p = a->p, *restrict m = a->s[S_EXP_AVG],
                    *restrict v = a->s[S_EXP_AVG_SQ];
    const float *restrict g = a->g;
    const float sg = c->sign, l2 = c->l2, decay = c->decay, eps = c->eps, clip = c->clip,
                omb1 = c->omb1, b2 = c->b2, omb2 = c->omb2, nlr = c->nlr;
    size_t n = a->n;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * sg, pi = p[i], mi = m[i], vi = v[i];
        if (has_l2)
            gi = fmaf(l2, pi, gi);
        float ng = gi / clamp_min(sqrtf(vi), eps);
        if (has_clip)
            ng = clamp_max(clamp_min(ng, -clip), clip);
        mi = fmaf(omb1, ng - mi, mi);
        m[i] = mi;
        v[i] = fmaf(omb2 * gi, gi, vi * b2);
        if (has_decay)
            pi = fmaf(decay, pi, pi);
        p[i] = fmaf(nlr, mi, pi);
    }
}

OW_SIMD static void adopt_step_run(const ow_kernel_args *a)
{
    const adopt_ctx *c = a->ctx;
    if (c->first) { /* exp_avg_sq.addcmul_(grad, grad) only */
        step_ref(a);
        return;
    }
    unsigned key =
        (unsigned)c->has_l2 | (unsigned)c->has_decay << 1 | (unsigned)c->has_clip << 2;
    switch (key) {
    case 4: step_loop(a, false, false, true); break;
    case 5: step_loop(a, true, false, true); break;
    case 6: step_loop(a, false, true, true); break;
    default: step_loop(a, c->has_l2, c->has_decay, c->has_clip); break;
    }
}

/* caution, pass 1: the moments move and (exp_avg * grad > 0) is counted */
static void count_ref(const ow_kernel_args *a)
{
    const adopt_ctx *c = a->ctx;
    double cnt = 0;
    for (size_t i = 0; i < a->n; i++) {
        float g = grad_of(c, a->g[i], a->p[i]), *m = &a->s[S_EXP_AVG][i];
        moments(c, g, m, &a->s[S_EXP_AVG_SQ][i]);
        cnt += *m * g > 0;
    }
    a->sums[0] += cnt;
}

static void apply_ref(const ow_kernel_args *a)
{
    const adopt_ctx *c = a->ctx;
    const float scale = (float)a->t[0];
    for (size_t i = 0; i < a->n; i++) {
        float g = grad_of(c, a->g[i], a->p[i]), m = a->s[S_EXP_AVG][i];
        a->p[i] = apply(c, a->p[i], m * (m * g > 0 ? scale : 0.0f));
    }
}

static const ow_pass adopt_passes[] = {
    [PASS_STEP] = {.run = adopt_step_run, .ref = step_ref},
    [PASS_COUNT] = {.run = count_ref,
                    .ref = count_ref,
                    .nsums = 1,
                    .finish = ow__caution_finish},
    [PASS_APPLY] = {.run = apply_ref, .ref = apply_ref},
    {0},
};

static const ow_optimizer_ops adopt_ops = {.abi_version = OW_ABI_VERSION,
                                           .slots = adopt_slots,
                                           .params = adopt_params,
                                           .ctx_size = sizeof(adopt_ctx),
                                           .prepare = prepare,
                                           .passes = adopt_passes};

#define ENTRY(var, nm, keys_, sum)                                                       \
    OW__OPTIMIZER_ENTRY(var, nm, "timm", keys_, adopt_ops, sum)
ENTRY(ow__optimizer_timm_adopt, "adopt", adopt_keys,
      "timm Adopt: gradient normalised by the previous second moment, then momentum");
ENTRY(ow__optimizer_timm_adoptw, "adoptw", adoptw_keys, "timm Adopt, decoupled decay");
ENTRY(ow__optimizer_timm_adoptc, "adoptc", adoptc_keys,
      "timm Adopt, decoupled corrected decay (lr**2/max_lr)");
ENTRY(ow__optimizer_timm_cadopt, "cadopt", cadopt_keys, "timm Adopt, cautious");
ENTRY(ow__optimizer_timm_cadoptw, "cadoptw", cadoptw_keys,
      "timm Adopt, cautious, decoupled decay");
ENTRY(ow__optimizer_timm_cadoptc, "cadoptc", cadoptc_keys,
      "timm Adopt, cautious, decoupled corrected decay");
