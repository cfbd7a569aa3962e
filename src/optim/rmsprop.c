/* RMSprop family: torch.optim.RMSprop (square_avg from zeros, sqrt(v) + eps) and timm's
 * RMSpropTF (square_avg from ones, eps inside the sqrt, the lr folded into the momentum
 * buffer by default, decoupled/corrected decay and caution as flags).
 * https://pytorch.org/docs/1.13/generated/torch.optim.RMSprop.html */
#include "optim_internal.h"
#include "quant.h"

#include <string.h>

#define K_CENTERED                                                                       \
    OW__KEY_BOOL("centered", "false", "normalise by the gradient's variance")
#define RMS_HEAD(mom, alpha, eps)                                                        \
    OW__KEY_NUM("lr", "0.01", "learning rate"),                                          \
        OW__KEY_NUM("momentum", mom, "momentum factor"),                                 \
        {.name = "alpha",                                                                \
         .type = OW_T_NUMBER,                                                            \
         .def = alpha,                                                                   \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "smoothing constant"},                                                   \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = eps,                                                                     \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the denominator"},                                             \
        K_CENTERED
#define TORCH_TAIL(wd)                                                                   \
    OW__KEY_NUM("weight_decay", wd, "L2 penalty"), OW__KEY_FOREACH,                      \
        OW__KEY_BOOL("maximize", "false",                                                \
                     "maximize the objective instead of minimizing"),                    \
        OW__KEY_PERF("differentiable"), OW__KEY_STATE_DTYPE,                             \
        OW__KEY_STOCHASTIC_ROUNDING,                                                     \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key rmsprop_keys[] = {RMS_HEAD("0", "0.99", "1e-08"), TORCH_TAIL("0")};
static const ow_key timm_rmsprop_keys[] = {RMS_HEAD("0.9", "0.9", "1e-08"),
                                           TORCH_TAIL("0.0")};
#define TF_KEYS(decoupled, corrected, caution)                                           \
    RMS_HEAD("0.9", "0.9", "1e-10"), OW__KEY_NUM("weight_decay", "0.0", "weight decay"), \
        OW__KEY_BOOL("decoupled_decay", decoupled,                                       \
                     "decay p *= 1 - lr*wd instead of L2"),                              \
        OW__KEY_BOOL("corrected_weight_decay", corrected,                                \
                     "decay scaled by lr**2/max_lr"),                                    \
        OW__KEY_BOOL("lr_in_momentum", "true", "fold the lr into the momentum buffer"),  \
        OW__KEY_BOOL("caution", caution, "cautious update"), OW__KEY_STATE_DTYPE,        \
        OW__KEY_STOCHASTIC_ROUNDING,                                                     \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key rmsproptf_keys[] = {TF_KEYS("false", "false", "false")};
static const ow_key rmsproptfc_keys[] = {TF_KEYS("true", "true", "false")};
static const ow_key crmsproptf_keys[] = {TF_KEYS("false", "false", "true")};

enum {
    K_LR,
    K_MOMENTUM,
    K_ALPHA,
    K_EPS,
    K_CENTERED_,
    K_WD,
    K_DECOUPLED,
    K_CORRECTED,
    K_LR_IN_MOM,
    K_CAUTION,
    K_MAXIMIZE,
    K_STATE_DTYPE,
    K_SR
};
static const char *const rms_params[] = {[K_LR] = "lr",
                                         [K_MOMENTUM] = "momentum",
                                         [K_ALPHA] = "alpha",
                                         [K_EPS] = "eps",
                                         [K_CENTERED_] = "centered",
                                         [K_WD] = "weight_decay",
                                         [K_DECOUPLED] = "decoupled_decay",
                                         [K_CORRECTED] = "corrected_weight_decay",
                                         [K_LR_IN_MOM] = "lr_in_momentum",
                                         [K_CAUTION] = "caution",
                                         [K_MAXIMIZE] = "maximize",
                                         [K_STATE_DTYPE] = "state_dtype",
                                         [K_SR] = "stochastic_rounding",
                                         NULL};

typedef struct rms_ctx {
    float sign, l2, keep, alpha, oma, eps, momentum, lr, nlr;
    bool tf, has_l2, centered, has_momentum, lr_in_momentum, caution;
    ow__qstep q; /* state_dtype */
} rms_ctx;

enum {
    S_STEP,
    S_SQUARE_AVG,
    S_BUF,
    S_GRAD_AVG,
    S_STATE1,
    S_STATE2,
    S_ABSMAX1,
    S_ABSMAX2,
    S_QMAP1,
    S_QMAP2,
    S_N
};
/* state_dtype int8: bitsandbytes' names (state1: square_avg, state2: the momentum
 * buffer; grad_avg stays float32) */
#define Q_SLOTS                                                                          \
    [S_STATE1] = {.name = "state1"}, [S_STATE2] = {.name = "state2"},                    \
    [S_ABSMAX1] = {.name = "absmax1"}, [S_ABSMAX2] = {.name = "absmax2"},                \
    [S_QMAP1] = {.name = "qmap1"}, [S_QMAP2] = {.name = "qmap2"}
static const ow__qplan rms_qplan = {
    .m = {{S_SQUARE_AVG, S_STATE1, S_ABSMAX1, S_QMAP1, false},
          {S_BUF, S_STATE2, S_ABSMAX2, S_QMAP2, true},
          {S_GRAD_AVG, -1, -1, -1, true}},
    .n = 3};
static const ow_slot torch_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_SQUARE_AVG] = {.name = "square_avg"},
    [S_BUF] = {.name = "momentum_buffer"},
    [S_GRAD_AVG] = {.name = "grad_avg"},
    Q_SLOTS,
    {0},
};
static const ow_slot tf_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_F32),
    [S_SQUARE_AVG] = {.name = "square_avg", .init = 1},
    [S_BUF] = {.name = "momentum_buffer"},
    [S_GRAD_AVG] = {.name = "grad_avg"},
    Q_SLOTS,
    {0},
};

static ow__qmode qmode(const ow_hparam *hp)
{
    return ow__qmode_of(&hp[K_STATE_DTYPE], &hp[K_SR]);
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    if (slot == S_STEP)
        return 0;
    if ((slot == S_BUF && !(hp[K_MOMENTUM].v[0] > 0)) ||
        (slot == S_GRAD_AVG && !ow__hp_true(&hp[K_CENTERED_])) ||
        (slot == S_STATE2 && !(hp[K_MOMENTUM].v[0] > 0)))
        return -1;
    return ow__qplan_shape(&rms_qplan, qmode(hp), slot, ndim, shape, out);
}

static ow_dtype slot_dtype(const ow_hparam *hp, int slot, size_t numel)
{
    return ow__qplan_dtype(&rms_qplan, qmode(hp), slot, numel);
}

static bool check_torch(const ow_hparam *hp, char *msg, size_t n)
{
    return ow__qmode_check(&hp[K_STATE_DTYPE], &hp[K_SR], msg, n);
}

/* square_avg starts at 1 in RMSpropTF: 8-bit codes start at 0 */
static bool check_tf(const ow_hparam *hp, char *msg, size_t n)
{
    if (qmode(hp) == OW__QM_I8) {
        snprintf(msg, n,
                 "state_dtype int8 is not available for RMSpropTF (square_avg "
                 "starts at 1): use bfloat16");
        return false;
    }
    return check_torch(hp, msg, n);
}

static void prepare_common(ow_prepare_args *a, rms_ctx *c)
{
    const ow_hparam *hp = a->hp;
    a->scalars[S_STEP] += 1;
    c->q = (ow__qstep){.mode = qmode(hp),
                       .key = ow__sr_key(0, (uint64_t)a->scalars[S_STEP], 0)};
    c->alpha = ow__f(hp[K_ALPHA].v[0]);
    c->oma = ow__f(1. - hp[K_ALPHA].v[0]);
    c->eps = ow__f(hp[K_EPS].v[0]);
    c->centered = ow__hp_true(&hp[K_CENTERED_]);
    c->has_momentum = hp[K_MOMENTUM].v[0] > 0;
    c->momentum = ow__f(hp[K_MOMENTUM].v[0]);
    c->lr = ow__f(a->lr);
    c->nlr = ow__f(-a->lr);
    c->keep = 1.0f;
    c->sign = 1.0f;
}

static void prepare_torch(ow_prepare_args *a)
{
    rms_ctx *c = a->ctx;
    prepare_common(a, c);
    c->has_l2 = a->hp[K_WD].v[0] != 0;
    c->l2 = ow__f(a->hp[K_WD].v[0]);
    c->sign = ow__hp_true(&a->hp[K_MAXIMIZE]) ? -1.0f : 1.0f;
    a->passes = 1u;
}

static void prepare_tf(ow_prepare_args *a)
{
    rms_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    prepare_common(a, c);
    double wd = hp[K_WD].v[0];
    c->tf = true;
    if (wd != 0 && ow__hp_true(&hp[K_DECOUPLED]))
        c->keep = ow__f(1. - ow__wd_scale(a->lr, ow__hp_true(&hp[K_CORRECTED]),
                                          a->defaults[K_LR].v[0]) *
                                 wd);
    else if (wd != 0) {
        c->has_l2 = true;
        c->l2 = ow__f(wd);
    }
    c->lr_in_momentum = ow__hp_true(&hp[K_LR_IN_MOM]);
    c->caution = ow__hp_true(&hp[K_CAUTION]) && c->has_momentum;
    a->passes = c->caution ? 6u : 1u; /* caution: count the mask, then step */
}

/* The gradient after maximize and L2 decay. */
static inline float grad_of(const rms_ctx *c, float g, float p)
{
    g = g * c->sign;
    return c->has_l2 ? fmaf(c->l2, p, g) : g;
}

/* Pass 0: the averages and the buffer, then p (or, with caution, the mask count). The
 * moments are kept as st says (quant.h), bf16 block by block for the stochastic keys;
 * their ranks count the bf16 slots present before them, as the block loop does. */
static inline __attribute__((always_inline)) void rms_body(const ow_kernel_args *a,
                                                           ow__store st)
{
    const rms_ctx *c = a->ctx;
    size_t n = a->n, block = st == OW__STORE_F32 ? n : OW__QBLOCK, cnt = 0;
    float *restrict p = a->p;
    void *restrict sq = ow__moment(a, S_SQUARE_AVG, st),
                   *restrict buf = ow__moment(a, S_BUF, st),
                   *restrict ga = ow__moment(a, S_GRAD_AVG, st);
    const float *restrict g = a->g;
    size_t rbuf = sq != NULL, rga = rbuf + (buf != NULL);
    for (size_t o = 0; o < n; o += block) {
        size_t e = n - o < block ? n : o + block;
        uint64_t ks = ow__bf16_block_key(c->q.key, 0, g[o]),
                 kb = ow__bf16_block_key(c->q.key, rbuf, g[o]),
                 kg = ow__bf16_block_key(c->q.key, rga, g[o]);
#pragma omp simd reduction(+ : cnt)
        for (size_t i = o; i < e; i++) {
            float gi = grad_of(c, g[i], p[i]), s, avg, si = OW__MOMENT_LOAD(st, sq, i);
            if (c->tf) { /* square_avg.add_(grad.pow(2) - square_avg, alpha=1-alpha) */
                s = fmaf(c->oma, gi * gi - si, si);
                if (c->centered) {
                    float gai = OW__MOMENT_LOAD(st, ga, i);
                    float m = fmaf(c->oma, gi - gai, gai);
                    OW__MOMENT_STORE(st, ga, i, m, kg, a->off + i);
                    avg = sqrtf(fmaf(-1.0f * m, m, s) + c->eps);
                } else {
                    avg = sqrtf(s + c->eps);
                }
            } else {
                s = fmaf(c->oma * gi, gi, si * c->alpha);
                if (c->centered) {
                    float m = fmaf(c->oma, gi, OW__MOMENT_LOAD(st, ga, i) * c->alpha);
                    OW__MOMENT_STORE(st, ga, i, m, kg, a->off + i);
                    avg = sqrtf(fmaf(-1.0f * m, m, s));
                } else {
                    avg = sqrtf(s);
                }
                avg = avg + c->eps;
            }
            OW__MOMENT_STORE(st, sq, i, s, ks, a->off + i);
            if (!c->has_momentum) {
                p[i] = p[i] * c->keep + (c->nlr * gi) / avg;
                continue;
            }
            float b = OW__MOMENT_LOAD(st, buf, i) * c->momentum;
            b = c->tf && c->lr_in_momentum ? b + (c->lr * gi) / avg : b + gi / avg;
            OW__MOMENT_STORE(st, buf, i, b, kb, a->off + i);
            if (c->caution)
                cnt += b * gi > 0;
            else if (c->tf && c->lr_in_momentum)
                p[i] = p[i] * c->keep + -b;
            else
                p[i] = fmaf(c->nlr, b, p[i] * c->keep);
        }
    }
    if (c->caution)
        a->sums[0] += (double)cnt;
}

OW_SIMD static void rms_run(const ow_kernel_args *a)
{
    rms_body(a, OW__STORE_F32);
}

OW_SIMD static void rms_run_bf16(const ow_kernel_args *a, bool sr)
{
    if (sr)
        rms_body(a, OW__STORE_BF16_SR);
    else
        rms_body(a, OW__STORE_BF16);
}

static void rms_ref(const ow_kernel_args *a)
{
    rms_body(a, OW__STORE_F32);
}

/* caution, pass 1: buf * mask (timm's _apply_caution), decay, update; reads the buffer
 * only (the block loop's re-encoding of it keeps its bits) */
static inline __attribute__((always_inline)) void
rms_caution_loop(const ow_kernel_args *a, ow__store st)
{
    const rms_ctx *c = a->ctx;
    const float scale = (float)a->t[0];
    const void *buf = ow__moment(a, S_BUF, st);
    for (size_t i = 0; i < a->n; i++) {
        float gi = grad_of(c, a->g[i], a->p[i]);
        float b = OW__MOMENT_LOAD(st, buf, i);
        b = b * (b * gi > 0 ? scale : 0.0f);
        float p = a->p[i] * c->keep;
        a->p[i] = c->lr_in_momentum ? p + -b : fmaf(c->nlr, b, p);
    }
}

static void rms_caution(const ow_kernel_args *a)
{
    rms_caution_loop(a, OW__STORE_F32);
}

OW_SIMD static void rms_caution_bf16(const ow_kernel_args *a, bool sr)
{
    (void)sr;
    rms_caution_loop(a, OW__STORE_BF16);
}

OW__QPASS_BF16(rms_qplan, rms_ctx, S_N, rms_run, rms_run_bf16)
OW__QPASS(rms_qplan, rms_ctx, S_N, rms_ref, true)
OW__QPASS_BF16(rms_qplan, rms_ctx, S_N, rms_caution, rms_caution_bf16)
OW__QPASS(rms_qplan, rms_ctx, S_N, rms_caution, true)

static const ow_pass rms_passes[] = {
    {.run = rms_run_qfalse, .ref = rms_ref_qtrue},
    {.run = rms_run_qfalse,
     .ref = rms_ref_qtrue,
     .nsums = 1,
     .finish = ow__caution_finish},
    {.run = rms_caution_qfalse, .ref = rms_caution_qtrue},
    {0}};

#define RMS_OPS(slots_, prep, check_)                                                    \
    {                                                                                    \
        .abi_version = OW_ABI_VERSION, .slots = slots_, .params = rms_params,            \
        .ctx_size = sizeof(rms_ctx), .check = check_, .prepare = prep,                   \
        .slot_shape = slot_shape, .passes = rms_passes, .slot_dtype = slot_dtype         \
    }
static const ow_optimizer_ops torch_ops =
    RMS_OPS(torch_slots, prepare_torch, check_torch);
static const ow_optimizer_ops tf_ops = RMS_OPS(tf_slots, prepare_tf, check_tf);

OW__OPTIMIZER_ENTRY(ow__optimizer_rmsprop, "RMSprop", "mmengine", rmsprop_keys, torch_ops,
                    "torch.optim.RMSprop: gradient normalised by a running RMS");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_rmsprop, "rmsprop", "timm", timm_rmsprop_keys,
                    torch_ops,
                    "timm 'rmsprop': torch.optim.RMSprop, alpha 0.9, momentum 0.9");
OW__OPTIMIZER_ENTRY(
    ow__optimizer_timm_rmsproptf, "rmsproptf", "timm", rmsproptf_keys, tf_ops,
    "timm RMSpropTF: TensorFlow-style RMSprop (eps inside the sqrt, lr in momentum)");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_rmsproptfc, "rmsproptfc", "timm", rmsproptfc_keys,
                    tf_ops, "timm RMSpropTF, decoupled and corrected weight decay");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_crmsproptf, "crmsproptf", "timm", crmsproptf_keys,
                    tf_ops, "timm RMSpropTF, cautious");
