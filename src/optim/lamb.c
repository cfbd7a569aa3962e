/* Lamb (timm): a global gradient-norm clip (grads divided by max(|g|/max_grad_norm, 1)
 * over all groups), an Adam direction u, L2 or decoupled decay, and, when decay is on
 * (or always_adapt), the layer-wise trust ratio |p| / |u| (LAMBC clips it at 1). Runs as
 * up to four passes: the grad norms, the moments (and the norms of p and u), the
 * cautious mask when asked, and the update. Norms are summed in double.
 * Large Batch Optimization for Deep Learning, https://arxiv.org/abs/1904.00962 */
#include "optim_internal.h"
#include "quant.h"

#include <string.h>

/* The rows every Lamb signature shares (timm's, mmpretrain's, APEX's) */
#define LAMB_HEAD                                                                        \
    OW__KEY_NUM("lr", "0.001", "learning rate"),                                         \
        OW__KEY_BOOL("bias_correction", "true", "Adam bias correction"),                 \
        OW__KEY_BETAS("[0.9, 0.999]"),                                                   \
    {                                                                                    \
        .name = "eps", .type = OW_T_FLOAT, .def = "1e-06", .min = 0, .max = INFINITY,    \
        .flags = OW_KEY_RANGE, .doc = "added to the denominator"                         \
    }
#define LAMB_WD(d)                                                                       \
    OW__KEY_NUM("weight_decay", d, "weight decay (turns the trust ratio on)")
#define LAMB_AVERAGING                                                                   \
    OW__KEY_BOOL("grad_averaging", "true", "scale the gradient by 1-beta1 in the mean")
#define LAMB_MAX_NORM                                                                    \
    {                                                                                    \
        .name = "max_grad_norm", .type = OW_T_NUMBER, .def = "1.0", .min = 0,            \
        .max = INFINITY, .flags = OW_KEY_RANGE | OW_KEY_NULLABLE,                        \
        .doc = "global gradient-norm clip (optimizer-level; null: none)"                 \
    }
#define LAMB_KEYS(clip, caution, decoupled, corrected)                                   \
    LAMB_HEAD, LAMB_WD("0.0"), LAMB_AVERAGING, LAMB_MAX_NORM,                            \
        OW__KEY_BOOL("trust_clip", clip, "LAMBC: clip the trust ratio at 1"),            \
        OW__KEY_BOOL("always_adapt", "false", "trust ratio without weight decay too"),   \
        OW__KEY_BOOL("caution", caution, "cautious update"),                             \
        OW__KEY_BOOL("decoupled_decay", decoupled, "decay p -= lr*wd*p instead of L2"),  \
        OW__KEY_BOOL("corrected_weight_decay", corrected,                                \
                     "decoupled decay scaled by lr**2/max_lr"),                          \
        OW__KEY_STATE_DTYPE, OW__KEY_STOCHASTIC_ROUNDING,                                \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key lamb_keys[] = {LAMB_KEYS("false", "false", "false", "false")};
static const ow_key lambc_keys[] = {LAMB_KEYS("true", "false", "false", "false")};
static const ow_key lambw_keys[] = {LAMB_KEYS("false", "false", "true", "false")};
static const ow_key lambcw_keys[] = {LAMB_KEYS("true", "false", "true", "false")};
static const ow_key lambcd_keys[] = {LAMB_KEYS("false", "false", "true", "true")};
static const ow_key clamb_keys[] = {LAMB_KEYS("false", "true", "false", "false")};
static const ow_key clambw_keys[] = {LAMB_KEYS("false", "true", "true", "false")};
/* APEX FusedLAMB's signature (timm 'fusedlamb'): timm's Lamb derives from it; the
 * decay added to the update is APEX's adam_w_mode, use_nvlamb is always_adapt */
static const ow_key fusedlamb_keys[] = {
    LAMB_HEAD,
    LAMB_WD("0.01"),
    OW__KEY_BOOL("amsgrad", "false", "not supported by APEX: refused when true"),
    OW__KEY_BOOL("adam_w_mode", "true", "decay added to the update (false: refused)"),
    LAMB_AVERAGING,
    OW__KEY_PERF("set_grad_none"),
    LAMB_MAX_NORM,
    OW__KEY_BOOL("use_nvlamb", "false", "trust ratio without weight decay too"),
    {0},
};

/* mmpretrain's Lamb: timm's before caution and decoupled decay, weight_decay 0.01 */
static const ow_key mmpretrain_keys[] = {
    LAMB_HEAD,
    LAMB_WD("0.01"),
    LAMB_AVERAGING,
    LAMB_MAX_NORM,
    OW__KEY_BOOL("trust_clip", "false", "LAMBC: clip the trust ratio at 1"),
    OW__KEY_BOOL("always_adapt", "false", "trust ratio without weight decay too"),
    OW__KEY_STATE_DTYPE,
    OW__KEY_STOCHASTIC_ROUNDING,
    {0},
};

enum {
    K_LR,
    K_BIAS,
    K_BETAS,
    K_EPS,
    K_WD,
    K_AVERAGING,
    K_MAX_NORM,
    K_CLIP,
    K_ALWAYS,
    K_CAUTION,
    K_DECOUPLED,
    K_CORRECTED,
    K_NVLAMB,
    K_ADAMW_MODE,
    K_AMSGRAD,
    K_STATE_DTYPE,
    K_SR
};
/* mmpretrain's Lamb lacks the last three: they read as false there */
static const char *const lamb_params[] = {[K_LR] = "lr",
                                          [K_BIAS] = "bias_correction",
                                          [K_BETAS] = "betas",
                                          [K_EPS] = "eps",
                                          [K_WD] = "weight_decay",
                                          [K_AVERAGING] = "grad_averaging",
                                          [K_MAX_NORM] = "max_grad_norm",
                                          [K_CLIP] = "trust_clip",
                                          [K_ALWAYS] = "always_adapt",
                                          [K_CAUTION] = "caution",
                                          [K_DECOUPLED] = "decoupled_decay",
                                          [K_CORRECTED] = "corrected_weight_decay",
                                          [K_NVLAMB] = "use_nvlamb",
                                          [K_ADAMW_MODE] = "adam_w_mode",
                                          [K_AMSGRAD] = "amsgrad",
                                          [K_STATE_DTYPE] = "state_dtype",
                                          [K_SR] = "stochastic_rounding",
                                          NULL};
enum { T_MASK, T_CLIP, T_TRUST };               /* tensor values */
enum { P_GNORM, P_MOMENTS, P_MASKED, P_APPLY }; /* passes */

typedef struct lamb_ctx {
    float b1, beta3, b2, omb2, bc1, bc2s, eps, l2, decay, nlr, max_norm;
    bool clip_grads, adapt, trust_clip, caution, has_l2, has_decay;
    ow__qstep q; /* state_dtype */
} lamb_ctx;

enum {
    S_STEP,
    S_EXP_AVG,
    S_EXP_AVG_SQ,
    S_STATE1,
    S_STATE2,
    S_ABSMAX1,
    S_ABSMAX2,
    S_QMAP1,
    S_QMAP2,
    S_N
};
static const ow_slot slots[] = {
    /* timm keeps the step in the param group; optwrap keeps it per parameter */
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_F32),
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    /* state_dtype int8: bitsandbytes' names */
    [S_STATE1] = {.name = "state1"},
    [S_STATE2] = {.name = "state2"},
    [S_ABSMAX1] = {.name = "absmax1"},
    [S_ABSMAX2] = {.name = "absmax2"},
    [S_QMAP1] = {.name = "qmap1"},
    [S_QMAP2] = {.name = "qmap2"},
    {0},
};
static const ow__qplan lamb_qplan = {
    .m = {{S_EXP_AVG, S_STATE1, S_ABSMAX1, S_QMAP1, true},
          {S_EXP_AVG_SQ, S_STATE2, S_ABSMAX2, S_QMAP2, false}},
    .n = 2};

static ow__qmode qmode(const ow_hparam *hp)
{
    return ow__qmode_of(&hp[K_STATE_DTYPE], &hp[K_SR]);
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    if (slot == S_STEP)
        return 0;
    return ow__qplan_shape(&lamb_qplan, qmode(hp), slot, ndim, shape, out);
}

static ow_dtype slot_dtype(const ow_hparam *hp, int slot, size_t numel)
{
    return ow__qplan_dtype(&lamb_qplan, qmode(hp), slot, numel);
}

static bool check(const ow_hparam *hp, char *msg, size_t n)
{
    return ow__qmode_check(&hp[K_STATE_DTYPE], &hp[K_SR], msg, n);
}

static void prepare(ow_prepare_args *a)
{
    lamb_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double t = a->scalars[S_STEP] += 1, b1 = hp[K_BETAS].v[0], b2 = hp[K_BETAS].v[1];
    double wd = hp[K_WD].v[0];
    bool bias = ow__hp_true(&hp[K_BIAS]);
    c->b1 = ow__f(b1);
    c->beta3 = ow__f(ow__hp_true(&hp[K_AVERAGING]) ? 1 - b1 : 1.0);
    c->b2 = ow__f(b2);
    c->omb2 = ow__f(1 - b2);
    c->bc1 = ow__f(bias ? 1 - pow(b1, t) : 1.0);
    c->bc2s = ow__f(sqrt(bias ? 1 - pow(b2, t) : 1.0));
    c->eps = ow__f(hp[K_EPS].v[0]);
    /* the clip uses the optimizer-level max_grad_norm (self.defaults) */
    c->clip_grads = !a->defaults[K_MAX_NORM].is_null;
    c->max_norm = ow__f(a->defaults[K_MAX_NORM].v[0]);
    bool decoupled = ow__hp_true(&hp[K_DECOUPLED]);
    c->has_l2 = wd != 0 && !decoupled;
    c->l2 = ow__f(wd);
    c->has_decay = wd != 0 && decoupled;
    c->decay = ow__f(
        -ow__wd_scale(a->lr, ow__hp_true(&hp[K_CORRECTED]), a->defaults[K_LR].v[0]) * wd);
    c->adapt = wd != 0 || ow__hp_true(&hp[K_ALWAYS]) || ow__hp_true(&hp[K_NVLAMB]);
    c->trust_clip = ow__hp_true(&hp[K_CLIP]);
    c->caution = ow__hp_true(&hp[K_CAUTION]);
    c->nlr = ow__f(-a->lr);
    c->q = (ow__qstep){.mode = qmode(hp), .key = ow__sr_key(0, (uint64_t)t, 0)};
    a->passes = (c->clip_grads ? 1u << P_GNORM : 0) | 1u << P_MOMENTS |
                (c->caution ? 1u << P_MASKED : 0) | (c->adapt ? 1u << P_APPLY : 0);
}

/* ---- pass 0: the global gradient norm ------------------------------------------------
 */

OW_SIMD static void gnorm_run(const ow_kernel_args *a)
{
    const float *restrict g = a->g;
    size_t n = a->n;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * g[i];
    a->sums[0] += s;
}

static void gnorm_ref(const ow_kernel_args *a)
{
    for (size_t i = 0; i < a->n; i++)
        a->sums[0] += (double)a->g[i] * a->g[i];
}

/* (global_norm / max_grad_norm).clamp_(min=1.0), over every tensor of every group */
static void gnorm_finish(const ow_finish_args *f)
{
    const lamb_ctx *c = f->ctx;
    float clip = (float)sqrt(f->totals[0]) / c->max_norm;
    f->t[T_CLIP] = clip < 1.0f ? 1.0f : clip;
}

/* ---- the update, element by element
 * ---------------------------------------------------- */

typedef enum { MOVE, COUNT, NORMS, APPLY } what;

/* The constants of one pass, loaded once. Switched-off features take neutral values
 * (clip 1, decay 0, mask 1) so that the loop has no branches; x/1, x*1 and fma(0,p,x)
 * are exact. */
typedef struct lamb_pass {
    float clip, b1, beta3, b2, omb2, bc1, bc2s, eps, l2, decay, nlr, agree, disagree,
        trust;
    float rclip, rbc1, rbc2s; /* fast kernels: their reciprocals */
} lamb_pass;

static inline lamb_pass pass_of(const ow_kernel_args *a)
{
    const lamb_ctx *c = a->ctx;
    return (lamb_pass){.clip = c->clip_grads ? (float)a->t[T_CLIP] : 1.0f,
                       .b1 = c->b1,
                       .beta3 = c->beta3,
                       .b2 = c->b2,
                       .omb2 = c->omb2,
                       .bc1 = c->bc1,
                       .bc2s = c->bc2s,
                       .eps = c->eps,
                       .l2 = c->has_l2 ? c->l2 : 0.0f,
                       .decay = c->has_decay ? c->decay : 0.0f,
                       .nlr = c->nlr,
                       .agree = c->caution ? (float)a->t[T_MASK] : 1.0f,
                       .disagree = c->caution ? 0.0f : 1.0f,
                       .trust = (float)a->t[T_TRUST],
                       .rclip = 1.0f / (c->clip_grads ? (float)a->t[T_CLIP] : 1.0f),
                       .rbc1 = 1.0f / c->bc1,
                       .rbc2s = 1.0f / c->bc2s};
}

/* One element: the clipped gradient, the moments (moved in pass 1 only; later passes
 * recompute the direction from them, cheaper than storing it), the direction
 * u = (m/bc1) / (sqrt(v)/sqrt(bc2) + eps), masked (caution) and decayed when `final`.
 * The reference's norms are float32 sums in torch's order, which optwrap does not
 * reproduce (Lamb is held to a relative error): the fast kernels multiply by
 * reciprocals where the reference divides (one rounding apart; three divisions per
 * element were most of the step), the _ref kernels divide as torch does. */
static inline __attribute__((always_inline)) float
element(const lamb_pass *k, bool moments, bool final, bool fast, bool caution, float g,
        float p, float *m, float *v, float *gc, float *pd)
{
    float gi = fast ? g * k->rclip : g / k->clip; /* grad.div_(clip_global_norm) */
    float mi = *m, vi = *v;
    if (moments) {
        mi = fmaf(k->beta3, gi, mi * k->b1); /* exp_avg.mul_(b1).add_(g, alpha=b3) */
        vi = fmaf(k->omb2 * gi, gi, vi * k->b2);
        *m = mi;
        *v = vi;
    }
    float u = fast ? (mi * k->rbc1) / fmaf(sqrtf(vi), k->rbc2s, k->eps)
                   : (mi / k->bc1) / (sqrtf(vi) / k->bc2s + k->eps);
    *gc = gi;
    if (!final)
        return u;
    if (caution) /* mask / mean(mask); a constant, so that g is unread without it */
        u = u * (u * gi > 0 ? k->agree : k->disagree);
    *pd = fmaf(k->decay, p, p); /* p.add_(p, alpha=-lr*wd) */
    return fmaf(k->l2, p, u);   /* update.add_(p, alpha=wd) */
}

/* element with the moments of i kept as st says (quant.h): read, and stored when this
 * pass moves them (the other passes only read them: the block loop's re-encoding keeps
 * their bits) */
static inline __attribute__((always_inline)) float
element_at(const lamb_pass *k, bool moments, bool final, bool fast, bool caution,
           ow__store st, float g, float p, void *m, void *v, size_t i, uint64_t km,
           uint64_t kv, size_t idx, float *gc, float *pd)
{
    float mi = OW__MOMENT_LOAD(st, m, i), vi = OW__MOMENT_LOAD(st, v, i);
    float u = element(k, moments, final, fast, caution, g, p, &mi, &vi, gc, pd);
    if (moments) {
        OW__MOMENT_STORE(st, m, i, mi, km, idx);
        OW__MOMENT_STORE(st, v, i, vi, kv, idx);
    }
    return u;
}

/* bf16 moments block by block for the stochastic keys, the sums added per block as the
 * block loop adds them */
static inline __attribute__((always_inline)) void
body(const ow_kernel_args *a, bool moments, what w, bool fast, bool caution, ow__store st)
{
    const lamb_pass k = pass_of(a);
    const lamb_ctx *c = a->ctx;
    float *restrict p = a->p;
    void *restrict m = ow__moment(a, S_EXP_AVG, st), *restrict v =
                                                         ow__moment(a, S_EXP_AVG_SQ, st);
    const float *restrict g = a->g;
    size_t n = a->n, block = st == OW__STORE_F32 ? n : OW__QBLOCK;
    for (size_t o = 0; o < n; o += block) {
        size_t e = n - o < block ? n : o + block;
        uint64_t km = ow__bf16_block_key(c->q.key, 0, g[o]),
                 kv = ow__bf16_block_key(c->q.key, 1, g[o]);
        if (w == COUNT) { /* (update * grad > 0) */
            double cnt = 0;
#pragma omp simd reduction(+ : cnt)
            for (size_t i = o; i < e; i++) {
                float gi, pd;
                float u = element_at(&k, moments, false, fast, caution, st, g[i], p[i], m,
                                     v, i, km, kv, a->off + i, &gi, &pd);
                cnt += u * gi > 0;
            }
            a->sums[0] += cnt;
        } else if (w == NORMS) {
            double pp = 0, uu = 0;
#pragma omp simd reduction(+ : pp, uu)
            for (size_t i = o; i < e; i++) {
                float gi, pd;
                float u = element_at(&k, moments, true, fast, caution, st, g[i], p[i], m,
                                     v, i, km, kv, a->off + i, &gi, &pd);
                pp += (double)pd * pd;
                uu += (double)u * u;
            }
            a->sums[1] += pp;
            a->sums[2] += uu;
        } else {
#pragma omp simd
            for (size_t i = o; i < e; i++) {
                float gi, pd;
                float u = element_at(&k, moments, true, fast, caution, st, g[i], p[i], m,
                                     v, i, km, kv, a->off + i, &gi, &pd);
                p[i] = fmaf(k.nlr, w == APPLY ? u * k.trust : u, pd); /* p.add_(u, -lr) */
            }
        }
    }
}

/* pass 1: moments, then the mask count (caution), the norms (trust ratio) or the step;
 * pass 2 (caution): the masked direction's norms, or the step; pass 3: the step with
 * the trust ratio. The _ref twins run the same body without SIMD (sums in order). */
static inline __attribute__((always_inline)) void moments(const ow_kernel_args *a,
                                                          bool fast, ow__store st)
{
    const lamb_ctx *c = a->ctx;
    if (c->caution) /* the direction is not final here: no mask yet */
        body(a, true, COUNT, fast, false, st);
    else if (c->adapt)
        body(a, true, NORMS, fast, false, st);
    else
        body(a, true, MOVE, fast, false, st);
}
static inline __attribute__((always_inline)) void masked(const ow_kernel_args *a,
                                                         bool fast, ow__store st)
{
    const lamb_ctx *c = a->ctx;
    if (c->adapt) /* this pass runs with caution only */
        body(a, false, NORMS, fast, true, st);
    else
        body(a, false, MOVE, fast, true, st);
}
static inline __attribute__((always_inline)) void apply(const ow_kernel_args *a,
                                                        ow__store st)
{
    if (((const lamb_ctx *)a->ctx)->caution)
        body(a, false, APPLY, true, true, st);
    else
        body(a, false, APPLY, true, false, st);
}
OW_SIMD static void moments_run(const ow_kernel_args *a)
{
    moments(a, true, OW__STORE_F32);
}
OW_SIMD static void lamb_moments_bf16(const ow_kernel_args *a, bool sr)
{
    if (sr)
        moments(a, true, OW__STORE_BF16_SR);
    else
        moments(a, true, OW__STORE_BF16);
}
static void moments_ref(const ow_kernel_args *a)
{
    moments(a, false, OW__STORE_F32);
}
OW_SIMD static void masked_run(const ow_kernel_args *a)
{
    masked(a, true, OW__STORE_F32);
}
OW_SIMD static void lamb_masked_bf16(const ow_kernel_args *a, bool sr)
{
    (void)sr;
    masked(a, true, OW__STORE_BF16);
}
static void masked_ref(const ow_kernel_args *a)
{
    masked(a, false, OW__STORE_F32);
}
OW_SIMD static void apply_run(const ow_kernel_args *a)
{
    apply(a, OW__STORE_F32);
}
OW_SIMD static void lamb_apply_bf16(const ow_kernel_args *a, bool sr)
{
    (void)sr;
    apply(a, OW__STORE_BF16);
}
static void apply_ref(const ow_kernel_args *a)
{
    body(a, false, APPLY, false, ((const lamb_ctx *)a->ctx)->caution, OW__STORE_F32);
}

static void trust_of(const lamb_ctx *c, const ow_finish_args *f)
{
    float w = (float)sqrt(f->sums[1]), u = (float)sqrt(f->sums[2]);
    float ratio = w / u;
    if (!(w > 0) || !(u > 0))
        ratio = 1.0f;
    if (c->trust_clip && ratio > 1.0f)
        ratio = 1.0f;
    f->t[T_TRUST] = ratio;
}

static void moments_finish(const ow_finish_args *f)
{
    const lamb_ctx *c = f->ctx;
    if (c->caution)
        f->t[T_MASK] = ow__caution_scale(f->sums[0], f->numel);
    else if (c->adapt)
        trust_of(c, f);
}

static void masked_finish(const ow_finish_args *f)
{
    const lamb_ctx *c = f->ctx;
    if (c->adapt)
        trust_of(c, f);
}

/* APEX FusedLAMB's modes timm's Lamb has no twin for */
static bool lamb_check(const ow_hparam *hp, char *msg, size_t n)
{
    if (ow__hp_true(&hp[K_AMSGRAD]))
        snprintf(msg, n,
                 "FusedLAMB does not support the AMSGrad variant (APEX refuses it)");
    else if (!hp[K_ADAMW_MODE].absent && !ow__hp_true(&hp[K_ADAMW_MODE]))
        snprintf(msg, n,
                 "adam_w_mode: false (L2 decay inside the moments) is not "
                 "implemented: timm's Lamb adds the decay to the update");
    else
        return check(hp, msg, n);
    return false;
}

/* the passes that read the moments, over them wherever state_dtype stores them */
OW__QPASS_BF16(lamb_qplan, lamb_ctx, S_N, moments_run, lamb_moments_bf16)
OW__QPASS(lamb_qplan, lamb_ctx, S_N, moments_ref, true)
OW__QPASS_BF16(lamb_qplan, lamb_ctx, S_N, masked_run, lamb_masked_bf16)
OW__QPASS(lamb_qplan, lamb_ctx, S_N, masked_ref, true)
OW__QPASS_BF16(lamb_qplan, lamb_ctx, S_N, apply_run, lamb_apply_bf16)
OW__QPASS(lamb_qplan, lamb_ctx, S_N, apply_ref, true)

static const ow_pass lamb_passes[] = {
    [P_GNORM] = {.run = gnorm_run, .ref = gnorm_ref, .nsums = 1, .finish = gnorm_finish},
    [P_MOMENTS] = {.run = moments_run_qfalse,
                   .ref = moments_ref_qtrue,
                   .nsums = 3,
                   .finish = moments_finish},
    [P_MASKED] = {.run = masked_run_qfalse,
                  .ref = masked_ref_qtrue,
                  .nsums = 3,
                  .finish = masked_finish},
    [P_APPLY] = {.run = apply_run_qfalse, .ref = apply_ref_qtrue},
    {0}};

static const ow_optimizer_ops lamb_ops = {.abi_version = OW_ABI_VERSION,
                                          .slots = slots,
                                          .params = lamb_params,
                                          .ctx_size = sizeof(lamb_ctx),
                                          .check = lamb_check,
                                          .prepare = prepare,
                                          .slot_shape = slot_shape,
                                          .passes = lamb_passes,
                                          .slot_dtype = slot_dtype};

#define ENTRY(var, nm, keys_, sum)                                                       \
    OW__OPTIMIZER_ENTRY(var, nm, "timm", keys_, lamb_ops, sum)

ENTRY(ow__optimizer_timm_lamb, "lamb", lamb_keys,
      "timm Lamb: Adam direction, layer-wise trust ratio");
ENTRY(ow__optimizer_timm_lambc, "lambc", lambc_keys,
      "timm Lamb, trust ratio clipped at 1");
ENTRY(ow__optimizer_timm_lambw, "lambw", lambw_keys, "timm Lamb, decoupled weight decay");
ENTRY(ow__optimizer_timm_lambcw, "lambcw", lambcw_keys,
      "timm Lamb, clipped trust, decoupled decay");
ENTRY(ow__optimizer_timm_lambcd, "lambcd", lambcd_keys,
      "timm Lamb, decoupled corrected decay");
ENTRY(ow__optimizer_timm_clamb, "clamb", clamb_keys, "timm Lamb, cautious");
ENTRY(ow__optimizer_timm_clambw, "clambw", clambw_keys,
      "timm Lamb, cautious, decoupled decay");
OW__OPTIMIZER_ENTRY(ow__optimizer_mmpretrain_lamb, "Lamb", "mmpretrain", mmpretrain_keys,
                    lamb_ops, "mmpretrain Lamb (timm's Lamb, weight_decay 0.01)");
OW__OPTIMIZER_ENTRY(
    ow__optimizer_timm_fusedlamb, "fusedlamb", "timm", fusedlamb_keys, lamb_ops,
    "timm 'fusedlamb' (APEX FusedLAMB, GPU-only there): timm Lamb's update");
