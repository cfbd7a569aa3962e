/* Adam family: torch.optim.Adam (L2 decay in the gradient) and AdamW (decoupled decay),
 * timm's AdamWLegacy and NAdamW (Nesterov numerator), composer's DecoupledAdamW (decay
 * scaled by lr/initial_lr), with amsgrad, maximize, caution and corrected decay as flags
 * on one kernel. timm's foreach (multi-tensor) path rounds differently from the
 * single-tensor one; both are reproduced. Schemas in each class's `defaults` order,
 * then state_dtype and stochastic_rounding (moments in bf16 or 8 bits, quant.h).
 * https://pytorch.org/docs/1.13/generated/torch.optim.AdamW.html */
#include "optim_internal.h"
#include "quant.h"

#include <string.h>

/* ---- schemas ------------------------------------------------------------------------
 */

#define ADAM_HEAD(lr, betas, wd)                                                         \
    OW__KEY_NUM("lr", lr, "learning rate"), OW__KEY_BETAS(betas),                        \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-08",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the denominator for numerical stability"},                     \
        OW__KEY_NUM("weight_decay", wd, "weight decay")
#define K_AMSGRAD                                                                        \
    OW__KEY_BOOL("amsgrad", "false", "AMSGrad: maximum of past squared gradients")
#define K_MAXIMIZE                                                                       \
    OW__KEY_BOOL("maximize", "false", "maximize the objective instead of minimizing")
#define K_CAUTION(d)                                                                     \
    OW__KEY_BOOL("caution", d,                                                           \
                 "cautious update (mask where update and gradient disagree)")
#define K_CORRECTED(d)                                                                   \
    OW__KEY_BOOL("corrected_weight_decay", d, "decay scaled by lr**2/max_lr")

/* issue #12's keys, after the reference's */
#define ADAM_Q OW__KEY_STATE_DTYPE, OW__KEY_STOCHASTIC_ROUNDING

/* torch 1.13's keys in the order of its defaults dict (param_groups show them so),
 * implementation switches included (they change nothing on the CPU); the variants
 * below index amsgrad and maximize. wd: torch's default, or timm's factory's 0.0. */
#define TORCH_ADAM_KEYS(wd) TORCH_ADAM_KEYS_Q(wd, ADAM_Q)
#define TORCH_ADAM_KEYS_Q(wd, q)                                                         \
    ADAM_HEAD("0.001", "[0.9, 0.999]", wd), K_AMSGRAD, K_MAXIMIZE, OW__KEY_FOREACH,      \
        OW__KEY_PERF("capturable"), OW__KEY_PERF("differentiable"),                      \
        OW__KEY_PERF("fused"), q,                                                        \
    {                                                                                    \
        0                                                                                \
    }
#define TORCH_ADAMW_KEYS(wd) TORCH_ADAMW_KEYS_Q(wd, ADAM_Q)
#define TORCH_ADAMW_KEYS_Q(wd, q)                                                        \
    ADAM_HEAD("0.001", "[0.9, 0.999]", wd), K_AMSGRAD, OW__KEY_FOREACH, K_MAXIMIZE,      \
        OW__KEY_PERF("capturable"), q,                                                   \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key adam_keys[] = {TORCH_ADAM_KEYS("0")};
static const ow_key adamw_keys[] = {TORCH_ADAMW_KEYS("0.01")};
static const ow_key timm_adam_keys[] = {TORCH_ADAM_KEYS("0.0")};
static const ow_key timm_adamw_keys[] = {TORCH_ADAMW_KEYS("0.0")};
/* timm's bnb names: int8 state by default for the 8-bit ones */
#define ADAM_Q8 OW__KEY_STATE_DTYPE_DEF("int8"), OW__KEY_STOCHASTIC_ROUNDING
static const ow_key timm_bnbadamw8bit_keys[] = {TORCH_ADAMW_KEYS_Q("0.0", ADAM_Q8)};
#define LEGACY_KEYS(caution, corrected)                                                  \
    ADAM_HEAD("0.001", "[0.9, 0.999]", "0.0"), K_AMSGRAD, K_CAUTION(caution),            \
        K_CORRECTED(corrected), OW__KEY_FOREACH, K_MAXIMIZE, OW__KEY_PERF("capturable"), \
        ADAM_Q,                                                                          \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key adamwlegacy_keys[] = {LEGACY_KEYS("false", "false")};
static const ow_key adamc_keys[] = {LEGACY_KEYS("false", "true")};
static const ow_key cadamw_keys[] = {LEGACY_KEYS("true", "false")};
static const ow_key cadamc_keys[] = {LEGACY_KEYS("true", "true")};
#define NADAMW_KEYS(caution, corrected)                                                  \
    ADAM_HEAD("0.001", "[0.9, 0.999]", "0.0"), K_CAUTION(caution),                       \
        K_CORRECTED(corrected), OW__KEY_FOREACH, K_MAXIMIZE, OW__KEY_PERF("capturable"), \
        ADAM_Q,                                                                          \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key nadamw_keys[] = {NADAMW_KEYS("false", "false")};
static const ow_key nadamc_keys[] = {NADAMW_KEYS("false", "true")};
static const ow_key cnadamw_keys[] = {NADAMW_KEYS("true", "false")};
static const ow_key cnadamc_keys[] = {NADAMW_KEYS("true", "true")};
/* APEX FusedAdam's signature (timm 'fusedadam' / 'fusedadamw'): the same update as
 * torch's Adam / AdamW on the CPU; amsgrad is refused as APEX refuses it */
#define FUSED_ADAM_KEYS(adamw)                                                           \
    OW__KEY_NUM("lr", "0.001", "learning rate"),                                         \
        OW__KEY_BOOL("bias_correction", "true", "divide the moments by 1 - beta**t"),    \
        OW__KEY_BETAS("[0.9, 0.999]"),                                                   \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-08",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the denominator for numerical stability"},                     \
        OW__KEY_BOOL("adam_w_mode", adamw, "decoupled decay (AdamW) instead of L2"),     \
        OW__KEY_NUM("weight_decay", "0.0", "weight decay"),                              \
        OW__KEY_BOOL("amsgrad", "false", "not supported by APEX: refused when true"),    \
        OW__KEY_PERF("set_grad_none"), OW__KEY_PERF("capturable"),                       \
        OW__KEY_PERF("master_weights"),                                                  \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key fusedadam_keys[] = {FUSED_ADAM_KEYS("false")};
static const ow_key fusedadamw_keys[] = {FUSED_ADAM_KEYS("true")};

static const ow_key composer_adamw_keys[] = {ADAM_HEAD("0.001", "[0.9, 0.95]", "1e-05"),
                                             K_AMSGRAD,
                                             OW__KEY_FOREACH,
                                             K_MAXIMIZE,
                                             OW__KEY_PERF("capturable"),
                                             ADAM_Q,
                                             {0}};

/* ---- per-step constants -------------------------------------------------------------
 */

/* The hyperparameters the hooks read (absent in an entry without the key). */
enum {
    P_LR,
    P_BETAS,
    P_EPS,
    P_WD,
    P_AMSGRAD,
    P_CAUTION,
    P_CORRECTED,
    P_MAXIMIZE,
    P_FOREACH,
    P_BIAS,
    P_ADAMW_MODE,
    P_STATE_DTYPE,
    P_SR
};
static const char *const adam_params[] = {[P_LR] = "lr",
                                          [P_BETAS] = "betas",
                                          [P_EPS] = "eps",
                                          [P_WD] = "weight_decay",
                                          [P_AMSGRAD] = "amsgrad",
                                          [P_CAUTION] = "caution",
                                          [P_CORRECTED] = "corrected_weight_decay",
                                          [P_MAXIMIZE] = "maximize",
                                          [P_FOREACH] = "foreach",
                                          [P_BIAS] = "bias_correction",
                                          [P_ADAMW_MODE] = "adam_w_mode",
                                          [P_STATE_DTYPE] = "state_dtype",
                                          [P_SR] = "stochastic_rounding",
                                          NULL};
enum { WD_L2, WD_DECOUPLED, WD_COMPOSER };

/* How one entry runs the shared kernel. */
typedef struct adam_variant {
    int wd_mode;
    bool read_foreach; /* foreach: false selects the single-tensor path (timm legacy) */
    bool ignore_maximize; /* composer's step does not read it */
    bool multi;    /* timm's foreach path (taken unless caution or foreach: false) */
    bool nesterov; /* NAdamW's look-ahead numerator */
    bool pow_half; /* bias_correction2 ** 0.5 instead of math.sqrt */
} adam_variant;

typedef struct adam_ctx {
    float sign, l2, keep, b1, omb1, b2, omb2, bc2s, eps, nss;
    bool has_l2, amsgrad, multi, nesterov, caution;
    ow__qstep q; /* state_dtype */
} adam_ctx;

enum {
    S_STEP,
    S_EXP_AVG,
    S_EXP_AVG_SQ,
    S_MAX_EXP_AVG_SQ,
    S_STATE1,
    S_STATE2,
    S_ABSMAX1,
    S_ABSMAX2,
    S_QMAP1,
    S_QMAP2,
    S_N
};
static const ow_slot adam_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_F32),
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    [S_MAX_EXP_AVG_SQ] = {.name = "max_exp_avg_sq"},
    /* state_dtype int8: bitsandbytes' names (state1, state2 float32 under 4096) */
    [S_STATE1] = {.name = "state1"},
    [S_STATE2] = {.name = "state2"},
    [S_ABSMAX1] = {.name = "absmax1"},
    [S_ABSMAX2] = {.name = "absmax2"},
    [S_QMAP1] = {.name = "qmap1"},
    [S_QMAP2] = {.name = "qmap2"},
    {0},
};
/* where the moments live under each state_dtype (quant.h) */
static const ow__qplan adam_qplan = {
    .m = {{S_EXP_AVG, S_STATE1, S_ABSMAX1, S_QMAP1, true},
          {S_EXP_AVG_SQ, S_STATE2, S_ABSMAX2, S_QMAP2, false},
          {S_MAX_EXP_AVG_SQ, -1, -1, -1, false}},
    .n = 3};

static ow__qmode qmode(const ow_hparam *hp)
{
    return ow__qmode_of(&hp[P_STATE_DTYPE], &hp[P_SR]);
}

static void prepare(ow_prepare_args *a, const adam_variant *v)
{
    adam_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double lr = a->lr, wd = hp[P_WD].v[0], b1 = hp[P_BETAS].v[0], b2 = hp[P_BETAS].v[1];
    double step = a->scalars[S_STEP] += 1;
    c->sign = !v->ignore_maximize && ow__hp_true(&hp[P_MAXIMIZE]) ? -1.0f : 1.0f;
    int wd_mode = v->wd_mode;
    if (!hp[P_ADAMW_MODE].absent) /* APEX FusedAdam: adam_w_mode picks the decay */
        wd_mode = ow__hp_true(&hp[P_ADAMW_MODE]) ? WD_DECOUPLED : WD_L2;
    c->has_l2 = wd_mode == WD_L2 && wd != 0;
    c->l2 = ow__f(wd);
    c->keep = 1.0f;
    if (wd_mode == WD_DECOUPLED) /* param.mul_(1 - wd_scale * weight_decay) */
        c->keep = ow__f(
            1. -
            ow__wd_scale(lr, ow__hp_true(&hp[P_CORRECTED]), a->defaults[P_LR].v[0]) * wd);
    else if (wd_mode == WD_COMPOSER && wd != 0)
        c->keep = ow__f(1 - (a->initial_lr != 0 ? lr / a->initial_lr : 1.0) * wd);
    c->b1 = ow__f(b1);
    c->omb1 = ow__f(1 - b1);
    c->b2 = ow__f(b2);
    c->omb2 = ow__f(1 - b2);
    /* APEX's bias_correction: false divides by 1 (absent: on, as torch) */
    bool bias = hp[P_BIAS].absent || ow__hp_true(&hp[P_BIAS]);
    double bc1 = bias ? 1 - pow(b1, step) : 1.0, bc2 = bias ? 1 - pow(b2, step) : 1.0;
    c->bc2s = ow__f(v->pow_half ? pow(bc2, 0.5) : sqrt(bc2));
    c->eps = ow__f(hp[P_EPS].v[0]);
    c->nss = ow__f(-(lr / bc1));
    c->amsgrad = ow__hp_true(&hp[P_AMSGRAD]);
    c->caution = ow__hp_true(&hp[P_CAUTION]);
    /* foreach=None means foreach for timm, but not with caution (no
     * _foreach_maximum_.Scalar in torch 1.13) */
    bool foreach =
        !v->read_foreach || hp[P_FOREACH].is_null || ow__hp_true(&hp[P_FOREACH]);
    c->multi = v->multi && foreach && !c->caution;
    c->nesterov = v->nesterov;
    c->q = (ow__qstep){.mode = qmode(hp), .key = ow__sr_key(0, (uint64_t)step, 0)};
    a->passes = c->caution ? 6u : 1u; /* caution: count the mask, then step */
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    if (slot == S_STEP)
        return 0;
    if (slot == S_MAX_EXP_AVG_SQ && !ow__hp_true(&hp[P_AMSGRAD]))
        return -1;
    return ow__qplan_shape(&adam_qplan, qmode(hp), slot, ndim, shape, out);
}

static ow_dtype slot_dtype(const ow_hparam *hp, int slot, size_t numel)
{
    return ow__qplan_dtype(&adam_qplan, qmode(hp), slot, numel);
}

static bool check(const ow_hparam *hp, char *msg, size_t n)
{
    return ow__qmode_check(&hp[P_STATE_DTYPE], &hp[P_SR], msg, n);
}

/* ---- kernels ------------------------------------------------------------------------
 */

/* One element: g (+ wd*p); m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; amsgrad max;
 * denom = sqrt(v)/sqrt(bc2) + eps; p = p*keep - lr/bc1 * m/denom, rounded the way the
 * reference's code path rounds it. The moments are kept as st says (quant.h): float32,
 * or bf16 read and rounded in place, block by block for the stochastic keys. */
static inline __attribute__((always_inline)) void adam_loop(const ow_kernel_args *a,
                                                            const adam_ctx *c, bool l2,
                                                            bool ams, bool multi,
                                                            bool nest, ow__store st)
{
    size_t n = a->n, block = st == OW__STORE_F32 ? n : OW__QBLOCK;
    float *restrict p = a->p;
    void *restrict m = ow__moment(a, S_EXP_AVG, st), *restrict v =
                                                         ow__moment(a, S_EXP_AVG_SQ, st);
    void *restrict vmax = ow__moment(a, S_MAX_EXP_AVG_SQ, st);
    const float *restrict g = a->g;
    const float sg = c->sign, wd = c->l2, keep = c->keep, b1 = c->b1, omb1 = c->omb1,
                b2 = c->b2, omb2 = c->omb2, bc2s = c->bc2s, eps = c->eps, nss = c->nss;
    for (size_t o = 0; o < n; o += block) {
        size_t e = n - o < block ? n : o + block;
        uint64_t km = ow__bf16_block_key(c->q.key, 0, g[o]),
                 kv = ow__bf16_block_key(c->q.key, 1, g[o]),
                 kx = ow__bf16_block_key(c->q.key, 2, g[o]);
#pragma omp simd
        for (size_t i = o; i < e; i++) {
            float gi = g[i] * sg;
            if (l2)
                gi = fmaf(wd, p[i], gi);
            float mi = fmaf(omb1, gi, OW__MOMENT_LOAD(st, m, i) * b1);
            float vi = fmaf(omb2 * gi, gi, OW__MOMENT_LOAD(st, v, i) * b2);
            OW__MOMENT_STORE(st, m, i, mi, km, a->off + i);
            OW__MOMENT_STORE(st, v, i, vi, kv, a->off + i);
            if (ams) {
                vi = fmaxf(OW__MOMENT_LOAD(st, vmax, i), vi);
                OW__MOMENT_STORE(st, vmax, i, vi, kx, a->off + i);
            }
            float num = nest ? fmaf(omb1, gi, mi * b1) : mi;
            float denom = sqrtf(vi) / bc2s + eps;
            float pi = p[i] * keep;
            p[i] = multi ? pi + num / (denom / nss) : pi + (nss * num) / denom;
        }
    }
}

/* adam_loop with its switches constant for the common variants */
static inline __attribute__((always_inline)) void adam_switch(const ow_kernel_args *a,
                                                              ow__store st)
{
    const adam_ctx *c = a->ctx;
    unsigned key = (unsigned)c->has_l2 | (unsigned)c->amsgrad << 1 |
                   (unsigned)c->multi << 2 | (unsigned)c->nesterov << 3;
    switch (key) {
    case 0: adam_loop(a, c, false, false, false, false, st); break;
    case 1: adam_loop(a, c, true, false, false, false, st); break;
    case 2: adam_loop(a, c, false, true, false, false, st); break;
    case 3: adam_loop(a, c, true, true, false, false, st); break;
    case 4: adam_loop(a, c, false, false, true, false, st); break;
    case 6: adam_loop(a, c, false, true, true, false, st); break;
    case 12: adam_loop(a, c, false, false, true, true, st); break;
    default: adam_loop(a, c, c->has_l2, c->amsgrad, c->multi, c->nesterov, st); break;
    }
}

OW_SIMD static void adam_run(const ow_kernel_args *a)
{
    adam_switch(a, OW__STORE_F32);
}

OW_SIMD static void adam_run_bf16(const ow_kernel_args *a, bool sr)
{
    if (sr)
        adam_switch(a, OW__STORE_BF16_SR);
    else
        adam_switch(a, OW__STORE_BF16);
}

/* The reference's op sequence, one statement per torch call. */
static void adam_ref(const ow_kernel_args *a)
{
    const adam_ctx *c = a->ctx;
    for (size_t i = 0; i < a->n; i++) {
        float g = c->sign < 0 ? -a->g[i] : a->g[i];
        if (c->has_l2)
            g = fmaf(c->l2, a->p[i], g); /* grad.add(param, alpha=wd) */
        float p = a->p[i] * c->keep;     /* param.mul_(1 - lr*wd) */
        float m =
            fmaf(c->omb1, g, a->s[S_EXP_AVG][i] * c->b1); /* m.mul_(b1).add_(g, 1-b1) */
        float v = fmaf(c->omb2 * g, g, a->s[S_EXP_AVG_SQ][i] * c->b2); /* .addcmul_ */
        a->s[S_EXP_AVG][i] = m;
        a->s[S_EXP_AVG_SQ][i] = v;
        if (c->amsgrad) {
            float *vm = &a->s[S_MAX_EXP_AVG_SQ][i];
            *vm = v = fmaxf(*vm, v); /* torch.maximum(..., out=) */
        }
        if (c->nesterov)
            m = fmaf(c->omb1, g, m * c->b1); /* exp_avg.mul(b1).add_(g) */
        float denom = sqrtf(v) / c->bc2s;    /* v.sqrt() / bc2_sqrt */
        denom = denom + c->eps;              /* .add_(eps) */
        if (c->caution) {
            a->sums[0] += m * g > 0; /* (exp_avg * grad > 0) */
            continue;
        }
        if (c->multi) {
            denom = denom / c->nss;  /* _foreach_div_(denom, ss) */
            a->p[i] = p + m / denom; /* _foreach_addcdiv_ */
        } else {
            a->p[i] = p + (c->nss * m) / denom; /* addcdiv_(m, d, -ss) */
        }
    }
}

/* caution, pass 0: the moments move and the mask is counted; p waits for pass 1 */
static void adam_caution_count(const ow_kernel_args *a)
{
    adam_ref(a);
}

static void adam_caution_apply(const ow_kernel_args *a)
{
    const adam_ctx *c = a->ctx;
    const float scale = (float)a->t[0];
    for (size_t i = 0; i < a->n; i++) {
        float g = c->sign < 0 ? -a->g[i] : a->g[i];
        float m = a->s[S_EXP_AVG][i];
        float v = c->amsgrad ? a->s[S_MAX_EXP_AVG_SQ][i] : a->s[S_EXP_AVG_SQ][i];
        if (c->nesterov)
            m = fmaf(c->omb1, g, m * c->b1);
        float denom = sqrtf(v) / c->bc2s + c->eps;
        float mask = m * g > 0 ? scale : 0.0f; /* mask.div_(mask.mean().clamp_(1e-3)) */
        m = m * mask;
        a->p[i] = a->p[i] * c->keep + (c->nss * m) / denom;
    }
}

/* ---- entries ------------------------------------------------------------------------
 */

/* the kernels over moments stored as state_dtype says (float32: straight through) */
#define QPASS(fn, ref)                                                                   \
    static void fn##_##ref(const ow_kernel_args *a)                                      \
    {                                                                                    \
        const adam_ctx *c = a->ctx;                                                      \
        ow__qplan_pass(&adam_qplan, &c->q, S_N, a, fn, ref);                             \
    }
/* the step pass reads bf16 moments in place */
static void adam_run_false(const ow_kernel_args *a)
{
    const adam_ctx *c = a->ctx;
    ow__qplan_pass_bf16(&adam_qplan, &c->q, S_N, a, adam_run, adam_run_bf16, false);
}
QPASS(adam_ref, true)
QPASS(adam_caution_count, false)
QPASS(adam_caution_count, true)
QPASS(adam_caution_apply, false)
QPASS(adam_caution_apply, true)

static const ow_pass adam_passes[] = {
    {.run = adam_run_false, .ref = adam_ref_true},
    {.run = adam_caution_count_false,
     .ref = adam_caution_count_true,
     .nsums = 1,
     .finish = ow__caution_finish},
    {.run = adam_caution_apply_false, .ref = adam_caution_apply_true},
    {0}};

#define VARIANT(name, ...)                                                               \
    static const adam_variant name##_v = {__VA_ARGS__};                                  \
    static void name##_prepare(ow_prepare_args *a)                                       \
    {                                                                                    \
        prepare(a, &name##_v);                                                           \
    }                                                                                    \
    static const ow_optimizer_ops name##_ops = {.abi_version = OW_ABI_VERSION,           \
                                                .slots = adam_slots,                     \
                                                .params = adam_params,                   \
                                                .ctx_size = sizeof(adam_ctx),            \
                                                .prepare = name##_prepare,               \
                                                .slot_shape = slot_shape,                \
                                                .passes = adam_passes,                   \
                                                .check = check,                          \
                                                .slot_dtype = slot_dtype}

VARIANT(torch_adam, .wd_mode = WD_L2);
VARIANT(torch_adamw, .wd_mode = WD_DECOUPLED);
VARIANT(legacy, .wd_mode = WD_DECOUPLED, .read_foreach = true, .multi = true,
        .pow_half = true);
/* NAdamW.step does not pass group['foreach'] on: foreach: false still runs the
 * multi-tensor path */
VARIANT(nadamw, .wd_mode = WD_DECOUPLED, .multi = true, .nesterov = true);
VARIANT(composer, .wd_mode = WD_COMPOSER, .ignore_maximize = true);

static bool fused_check(const ow_hparam *hp, char *msg, size_t n)
{
    if (!ow__hp_true(&hp[P_AMSGRAD]))
        return true;
    snprintf(msg, n, "FusedAdam does not support the AMSGrad variant (APEX refuses it)");
    return false;
}
static void fused_prepare(ow_prepare_args *a)
{
    prepare(a, &torch_adam_v);
}
static const ow_optimizer_ops fused_ops = {.abi_version = OW_ABI_VERSION,
                                           .slots = adam_slots,
                                           .params = adam_params,
                                           .ctx_size = sizeof(adam_ctx),
                                           .check = fused_check,
                                           .prepare = fused_prepare,
                                           .slot_shape = slot_shape,
                                           .passes = adam_passes};

OW__OPTIMIZER_ENTRY(ow__optimizer_adam, "Adam", "mmengine", adam_keys, torch_adam_ops,
                    "torch.optim.Adam: adaptive moment estimation (L2 weight decay)");
OW__OPTIMIZER_ENTRY(ow__optimizer_adamw, "AdamW", "mmengine", adamw_keys, torch_adamw_ops,
                    "torch.optim.AdamW: Adam with decoupled weight decay");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adam, "adam", "timm", timm_adam_keys,
                    torch_adam_ops, "timm 'adam': torch.optim.Adam");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adamw, "adamw", "timm", timm_adamw_keys,
                    torch_adamw_ops, "timm 'adamw': torch.optim.AdamW");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adamwlegacy, "adamwlegacy", "timm",
                    adamwlegacy_keys, legacy_ops, "timm AdamWLegacy (foreach path)");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adamc, "adamc", "timm", adamc_keys, legacy_ops,
                    "timm AdamWLegacy, corrected weight decay (lr**2/max_lr)");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_cadamw, "cadamw", "timm", cadamw_keys, legacy_ops,
                    "timm AdamWLegacy, cautious");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_cadamc, "cadamc", "timm", cadamc_keys, legacy_ops,
                    "timm AdamWLegacy, cautious, corrected weight decay");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_nadamw, "nadamw", "timm", nadamw_keys, nadamw_ops,
                    "timm NAdamW: AdamW with a Nesterov look-ahead numerator");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_nadamc, "nadamc", "timm", nadamc_keys, nadamw_ops,
                    "timm NAdamW, corrected weight decay");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_cnadamw, "cnadamw", "timm", cnadamw_keys,
                    nadamw_ops, "timm NAdamW, cautious");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_cnadamc, "cnadamc", "timm", cnadamc_keys,
                    nadamw_ops, "timm NAdamW, cautious, corrected weight decay");
OW__OPTIMIZER_ENTRY(ow__optimizer_composer_adamw, "DecoupledAdamW", "composer",
                    composer_adamw_keys, composer_ops,
                    "composer DecoupledAdamW: decay p *= 1 - (lr/initial_lr)*wd");
OW__OPTIMIZER_ENTRY(
    ow__optimizer_timm_fusedadam, "fusedadam", "timm", fusedadam_keys, fused_ops,
    "timm 'fusedadam' (APEX FusedAdam, GPU-only there): torch Adam's update");
OW__OPTIMIZER_ENTRY(
    ow__optimizer_timm_fusedadamw, "fusedadamw", "timm", fusedadamw_keys, fused_ops,
    "timm 'fusedadamw' (APEX FusedAdam, GPU-only there): torch AdamW's update");
/* timm's bitsandbytes names: bitsandbytes' Adam and AdamW both decay decoupled (its
 * ADAM update multiplies p by 1 - lr*wd); torch's arithmetic here, not bitsandbytes'
 * (which adds eps times sqrt(bias_correction2) inside) */
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_bnbadam, "bnbadam", "timm", timm_adamw_keys,
                    torch_adamw_ops,
                    "timm 'bnbadam': bitsandbytes Adam (decoupled decay) as AdamW");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_bnbadamw, "bnbadamw", "timm", timm_adamw_keys,
                    torch_adamw_ops, "timm 'bnbadamw': bitsandbytes AdamW as AdamW");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_bnbadam8bit, "bnbadam8bit", "timm",
                    timm_bnbadamw8bit_keys, torch_adamw_ops,
                    "timm 'bnbadam8bit': AdamW with state_dtype int8");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_bnbadamw8bit, "bnbadamw8bit", "timm",
                    timm_bnbadamw8bit_keys, torch_adamw_ops,
                    "timm 'bnbadamw8bit': AdamW with state_dtype int8");
