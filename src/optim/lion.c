/* Lion (timm): p *= 1 - lr*wd; p -= lr * sign(b1*m + (1-b1)*g); m = b2*m + (1-b2)*g.
 * timm runs the foreach path by default (m updated by mul/add) and the single-tensor
 * one with caution (m updated by lerp); both are reproduced. state_dtype: the moment in
 * bf16 or 8 bits (quant.h).
 * Symbolic Discovery of Optimization Algorithms, https://arxiv.org/abs/2302.06675 */
#include "optim_internal.h"
#include "quant.h"

#define LION_KEYS(caution, corrected) LION_KEYS_Q(caution, corrected, "float32")
#define LION_KEYS_Q(caution, corrected, state_dtype)                                     \
    OW__KEY_NUM("lr", "0.0001", "learning rate"), OW__KEY_BETAS("[0.9, 0.99]"),          \
        OW__KEY_NUM("weight_decay", "0.0", "decoupled weight decay"),                    \
        OW__KEY_BOOL("caution", caution, "cautious update"),                             \
        OW__KEY_BOOL("corrected_weight_decay", corrected,                                \
                     "decay scaled by lr**2/max_lr"),                                    \
        OW__KEY_FOREACH,                                                                 \
        OW__KEY_BOOL("maximize", "false",                                                \
                     "maximize the objective instead of minimizing"),                    \
        OW__KEY_STATE_DTYPE_DEF(state_dtype), OW__KEY_STOCHASTIC_ROUNDING,               \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key lion_keys[] = {LION_KEYS("false", "false")};
static const ow_key lionc_keys[] = {LION_KEYS("false", "true")};
static const ow_key clion_keys[] = {LION_KEYS("true", "false")};
static const ow_key clionc_keys[] = {LION_KEYS("true", "true")};
static const ow_key lion8bit_keys[] = {LION_KEYS_Q("false", "false", "int8")};

enum {
    K_LR,
    K_BETAS,
    K_WD,
    K_CAUTION,
    K_CORRECTED,
    K_FOREACH,
    K_MAXIMIZE,
    K_STATE_DTYPE,
    K_SR
};
static const char *const lion_params[] = {[K_LR] = "lr",
                                          [K_BETAS] = "betas",
                                          [K_WD] = "weight_decay",
                                          [K_CAUTION] = "caution",
                                          [K_CORRECTED] = "corrected_weight_decay",
                                          [K_FOREACH] = "foreach",
                                          [K_MAXIMIZE] = "maximize",
                                          [K_STATE_DTYPE] = "state_dtype",
                                          [K_SR] = "stochastic_rounding",
                                          NULL};

typedef struct lion_ctx {
    float sign, keep, b1, omb1, b2, omb2, nlr;
    bool single, caution;
    ow__qstep q; /* state_dtype */
} lion_ctx;

enum { S_EXP_AVG, S_STATE1, S_ABSMAX1, S_QMAP1, S_N };
static const ow_slot lion_slots[] = {[S_EXP_AVG] = {.name = "exp_avg"},
                                     /* state_dtype int8: bitsandbytes' names */
                                     [S_STATE1] = {.name = "state1"},
                                     [S_ABSMAX1] = {.name = "absmax1"},
                                     [S_QMAP1] = {.name = "qmap1"},
                                     {0}};
static const ow__qplan lion_qplan = {
    .m = {{S_EXP_AVG, S_STATE1, S_ABSMAX1, S_QMAP1, true}}, .n = 1};

static ow__qmode qmode(const ow_hparam *hp)
{
    return ow__qmode_of(&hp[K_STATE_DTYPE], &hp[K_SR]);
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    return ow__qplan_shape(&lion_qplan, qmode(hp), slot, ndim, shape, out);
}

static ow_dtype slot_dtype(const ow_hparam *hp, int slot, size_t numel)
{
    return ow__qplan_dtype(&lion_qplan, qmode(hp), slot, numel);
}

static bool check(const ow_hparam *hp, char *msg, size_t n)
{
    return ow__qmode_check(&hp[K_STATE_DTYPE], &hp[K_SR], msg, n);
}

static void prepare(ow_prepare_args *a)
{
    lion_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double b1 = hp[K_BETAS].v[0], b2 = hp[K_BETAS].v[1];
    c->sign = ow__hp_true(&hp[K_MAXIMIZE]) ? -1.0f : 1.0f;
    c->keep = ow__f(
        1 - ow__wd_scale(a->lr, ow__hp_true(&hp[K_CORRECTED]), a->defaults[K_LR].v[0]) *
                hp[K_WD].v[0]);
    c->b1 = ow__f(b1);
    c->omb1 = ow__f(1 - b1);
    c->b2 = ow__f(b2);
    c->omb2 = ow__f(1 - b2);
    c->nlr = ow__f(-a->lr);
    /* foreach unless caution (no _foreach_maximum_.Scalar in torch 1.13) or foreach=False
     */
    c->caution = ow__hp_true(&hp[K_CAUTION]);
    c->single = c->caution || (!hp[K_FOREACH].is_null && !ow__hp_true(&hp[K_FOREACH]));
    c->q = (ow__qstep){.mode = qmode(hp)};
    a->passes = c->caution ? 6u : 1u; /* caution: count the mask, then step */
}

static inline float sign_of(float x)
{
    return (float)((x > 0) - (x < 0));
}

/* torch lerp_(end, w) for w < 0.5: self + w * (end - self), fused */
static inline float lerp(float x, float y, float w)
{
    return fmaf(w, y - x, x);
}

/* The step (or with caution its mask count) over the moment kept as st says (quant.h),
 * bf16 block by block for the stochastic keys. */
static inline __attribute__((always_inline)) void lion_loop(const ow_kernel_args *a,
                                                            ow__store st)
{
    const lion_ctx *c = a->ctx;
    size_t n = a->n, block = st == OW__STORE_F32 ? n : OW__QBLOCK;
    float *restrict p = a->p;
    void *restrict m = ow__moment(a, S_EXP_AVG, st);
    const float *restrict g = a->g;
    const float sg = c->sign, keep = c->keep, b1 = c->b1, omb1 = c->omb1, b2 = c->b2,
                omb2 = c->omb2, nlr = c->nlr;
    if (c->caution) { /* pass 0: count where the sign update agrees with the gradient */
        double cnt = 0;
#pragma omp simd reduction(+ : cnt)
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * sg;
            float u = sign_of(fmaf(omb1, gi, OW__MOMENT_LOAD(st, m, i) * b1));
            cnt += u * gi > 0;
        }
        a->sums[0] += cnt;
        return;
    }
    for (size_t o = 0; o < n; o += block) {
        size_t e = n - o < block ? n : o + block;
        uint64_t km = ow__bf16_block_key(c->q.key, 0, g[o]);
        if (c->single) {
#pragma omp simd
            for (size_t i = o; i < e; i++) {
                float gi = g[i] * sg, mi = OW__MOMENT_LOAD(st, m, i);
                float u = sign_of(fmaf(omb1, gi, mi * b1));
                p[i] = fmaf(nlr, u, p[i] * keep);
                OW__MOMENT_STORE(st, m, i, lerp(mi, gi, omb2), km, a->off + i);
            }
            continue;
        }
#pragma omp simd
        for (size_t i = o; i < e; i++) {
            float gi = g[i] * sg, mi = OW__MOMENT_LOAD(st, m, i);
            float u = sign_of(fmaf(omb1, gi, mi * b1));
            p[i] = fmaf(nlr, u, p[i] * keep);
            OW__MOMENT_STORE(st, m, i, fmaf(omb2, gi, mi * b2), km, a->off + i);
        }
    }
}

OW_SIMD static void lion_run(const ow_kernel_args *a)
{
    lion_loop(a, OW__STORE_F32);
}

OW_SIMD static void lion_run_bf16(const ow_kernel_args *a, bool sr)
{
    if (sr)
        lion_loop(a, OW__STORE_BF16_SR);
    else
        lion_loop(a, OW__STORE_BF16);
}

static void lion_ref(const ow_kernel_args *a)
{
    const lion_ctx *c = a->ctx;
    for (size_t i = 0; i < a->n; i++) {
        float g = c->sign < 0 ? -a->g[i] : a->g[i];
        float *m = &a->s[S_EXP_AVG][i];
        float u = fmaf(c->omb1, g, *m * c->b1);  /* exp_avg.mul(b1).add_(g, 1-b1) */
        u = u > 0 ? 1.0f : u < 0 ? -1.0f : 0.0f; /* .sign_() */
        if (c->caution) {
            a->sums[0] += u * g > 0;
            continue;
        }
        a->p[i] = a->p[i] * c->keep;        /* param.mul_(1 - lr*wd) */
        a->p[i] = fmaf(c->nlr, u, a->p[i]); /* param.add_(update, alpha=-lr) */
        if (c->single)
            *m = fmaf(c->omb2, g - *m, *m); /* exp_avg.lerp_(g, 1-b2) */
        else
            *m = fmaf(c->omb2, g, *m * c->b2); /* _foreach_mul_, _foreach_add_ */
    }
}

/* caution, pass 1: update * mask, then the step and the (lerp) moment update */
static inline __attribute__((always_inline)) void
lion_caution_loop(const ow_kernel_args *a, ow__store st)
{
    const lion_ctx *c = a->ctx;
    const float scale = (float)a->t[0];
    size_t n = a->n, block = st == OW__STORE_F32 ? n : OW__QBLOCK;
    void *m = ow__moment(a, S_EXP_AVG, st);
    for (size_t o = 0; o < n; o += block) {
        size_t e = n - o < block ? n : o + block;
        uint64_t km = ow__bf16_block_key(c->q.key, 0, a->g[o]);
        for (size_t i = o; i < e; i++) {
            float g = c->sign < 0 ? -a->g[i] : a->g[i], mi = OW__MOMENT_LOAD(st, m, i);
            float u = sign_of(fmaf(c->omb1, g, mi * c->b1));
            u = u * (u * g > 0 ? scale : 0.0f);
            a->p[i] = fmaf(c->nlr, u, a->p[i] * c->keep);
            OW__MOMENT_STORE(st, m, i, lerp(mi, g, c->omb2), km, a->off + i);
        }
    }
}

static void lion_caution(const ow_kernel_args *a)
{
    lion_caution_loop(a, OW__STORE_F32);
}

OW_SIMD static void lion_caution_bf16(const ow_kernel_args *a, bool sr)
{
    if (sr)
        lion_caution_loop(a, OW__STORE_BF16_SR);
    else
        lion_caution_loop(a, OW__STORE_BF16);
}

OW__QPASS_BF16(lion_qplan, lion_ctx, S_N, lion_run, lion_run_bf16)
OW__QPASS(lion_qplan, lion_ctx, S_N, lion_ref, true)
OW__QPASS_BF16(lion_qplan, lion_ctx, S_N, lion_caution, lion_caution_bf16)
OW__QPASS(lion_qplan, lion_ctx, S_N, lion_caution, true)

static const ow_pass lion_passes[] = {
    {.run = lion_run_qfalse, .ref = lion_ref_qtrue},
    {.run = lion_run_qfalse,
     .ref = lion_ref_qtrue,
     .nsums = 1,
     .finish = ow__caution_finish},
    {.run = lion_caution_qfalse, .ref = lion_caution_qtrue},
    {0}};

static const ow_optimizer_ops lion_ops = {.abi_version = OW_ABI_VERSION,
                                          .slots = lion_slots,
                                          .params = lion_params,
                                          .ctx_size = sizeof(lion_ctx),
                                          .check = check,
                                          .prepare = prepare,
                                          .slot_shape = slot_shape,
                                          .passes = lion_passes,
                                          .slot_dtype = slot_dtype};

#define ENTRY(var, nm, keys_, sum)                                                       \
    OW__OPTIMIZER_ENTRY(var, nm, "timm", keys_, lion_ops, sum)

ENTRY(ow__optimizer_timm_lion, "lion", lion_keys,
      "timm Lion: sign of an interpolated momentum");
ENTRY(ow__optimizer_timm_lionc, "lionc", lionc_keys, "timm Lion, corrected weight decay");
ENTRY(ow__optimizer_timm_clion, "clion", clion_keys, "timm Lion, cautious");
ENTRY(ow__optimizer_timm_clionc, "clionc", clionc_keys,
      "timm Lion, cautious, corrected weight decay");
ENTRY(ow__optimizer_timm_bnblion, "bnblion", lion_keys,
      "timm 'bnblion': bitsandbytes Lion (the same update) as timm Lion");
ENTRY(ow__optimizer_timm_bnblion8bit, "bnblion8bit", lion8bit_keys,
      "timm 'bnblion8bit': Lion with state_dtype int8");
