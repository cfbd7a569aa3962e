/* Adagrad and Adadelta: torch.optim.Adagrad (sum of squared gradients, lr decayed by
 * 1/(1 + (t-1)*lr_decay)) and torch.optim.Adadelta (running averages of squared
 * gradients and squared updates).
 * https://pytorch.org/docs/1.13/generated/torch.optim.Adagrad.html */
#include "optim_internal.h"
#include "quant.h"

/* ---- Adagrad ------------------------------------------------------------------------
 */

#define ADAGRAD_KEYS(eps, wd)                                                            \
    OW__KEY_NUM("lr", "0.01", "learning rate"),                                          \
        OW__KEY_NUM("lr_decay", "0", "learning rate decay"),                             \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = eps,                                                                     \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the denominator"},                                             \
        OW__KEY_NUM("weight_decay", wd, "L2 penalty"),                                   \
        OW__KEY_NUM("initial_accumulator_value", "0", "initial value of the sum"),       \
        OW__KEY_FOREACH,                                                                 \
        OW__KEY_BOOL("maximize", "false",                                                \
                     "maximize the objective instead of minimizing"),                    \
        OW__KEY_STATE_DTYPE, OW__KEY_STOCHASTIC_ROUNDING,                                \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key adagrad_keys[] = {ADAGRAD_KEYS("1e-10", "0")};
static const ow_key timm_adagrad_keys[] = {ADAGRAD_KEYS("1e-08", "0.0")};

enum {
    A_LR,
    A_LR_DECAY,
    A_EPS,
    A_WD,
    A_INIT,
    A_FOREACH,
    A_MAXIMIZE,
    A_STATE_DTYPE,
    A_SR
};
static const char *const adagrad_params[] = {[A_LR] = "lr",
                                             [A_LR_DECAY] = "lr_decay",
                                             [A_EPS] = "eps",
                                             [A_WD] = "weight_decay",
                                             [A_INIT] = "initial_accumulator_value",
                                             [A_FOREACH] = "foreach",
                                             [A_MAXIMIZE] = "maximize",
                                             [A_STATE_DTYPE] = "state_dtype",
                                             [A_SR] = "stochastic_rounding",
                                             NULL};

typedef struct adagrad_ctx {
    float sign, l2, eps, nclr, init;
    bool has_l2, first;
    ow__qstep q; /* state_dtype */
} adagrad_ctx;

enum { S_STEP, S_SUM, S_STATE1, S_ABSMAX1, S_QMAP1, S_N };
static const ow_slot adagrad_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_F32),
    [S_SUM] = {.name = "sum"},
    /* state_dtype int8: bitsandbytes' names */
    [S_STATE1] = {.name = "state1"},
    [S_ABSMAX1] = {.name = "absmax1"},
    [S_QMAP1] = {.name = "qmap1"},
    {0},
};
static const ow__qplan adagrad_qplan = {
    .m = {{S_SUM, S_STATE1, S_ABSMAX1, S_QMAP1, false}}, .n = 1};

static ow__qmode qmode(const ow_hparam *hp)
{
    return ow__qmode_of(&hp[A_STATE_DTYPE], &hp[A_SR]);
}

static int adagrad_slot_shape(const ow_hparam *hp, int slot, int ndim,
                              const int64_t *shape, int64_t *out)
{
    if (slot == S_STEP)
        return 0;
    return ow__qplan_shape(&adagrad_qplan, qmode(hp), slot, ndim, shape, out);
}

static ow_dtype adagrad_slot_dtype(const ow_hparam *hp, int slot, size_t numel)
{
    return ow__qplan_dtype(&adagrad_qplan, qmode(hp), slot, numel);
}

static bool adagrad_check(const ow_hparam *hp, char *msg, size_t n)
{
    return ow__qmode_check(&hp[A_STATE_DTYPE], &hp[A_SR], msg, n);
}

static void adagrad_prepare(ow_prepare_args *a)
{
    adagrad_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    c->first = a->scalars[S_STEP] == 0; /* torch fills sum with the initial value */
    double t = a->scalars[S_STEP] += 1;
    c->sign = ow__hp_true(&hp[A_MAXIMIZE]) ? -1.0f : 1.0f;
    c->has_l2 = hp[A_WD].v[0] != 0;
    c->l2 = ow__f(hp[A_WD].v[0]);
    c->eps = ow__f(hp[A_EPS].v[0]);
    c->init = ow__f(hp[A_INIT].v[0]);
    c->q = (ow__qstep){.mode = qmode(hp), .key = ow__sr_key(0, (uint64_t)t, 0)};
    c->nclr = ow__f(-(a->lr / (1 + (t - 1) * hp[A_LR_DECAY].v[0])));
    if (ow__hp_true(&hp[A_FOREACH])) {
        /* _multi_tensor_adagrad: -lr / (1 + (step - 1) * lr_decay) on the float32 step
         * tensor, and `scalar / tensor` is tensor.reciprocal() * scalar */
        float d = ((float)t - 1.0f) * ow__f(hp[A_LR_DECAY].v[0]) + 1.0f;
        c->nclr = (1.0f / d) * ow__f(-a->lr);
    }
}

/* sum += g*g; p += -clr * g / (sqrt(sum) + eps); sum kept as st says (quant.h), bf16
 * block by block for the stochastic keys */
static inline __attribute__((always_inline)) void adagrad_loop(const ow_kernel_args *a,
                                                               ow__store st)
{
    const adagrad_ctx *c = a->ctx;
    size_t n = a->n, block = st == OW__STORE_F32 ? n : OW__QBLOCK;
    float *restrict p = a->p;
    void *restrict s = ow__moment(a, S_SUM, st);
    const float *restrict g = a->g;
    const float sg = c->sign, l2 = c->l2, eps = c->eps, nclr = c->nclr, init = c->init;
    const bool has_l2 = c->has_l2, first = c->first;
    for (size_t o = 0; o < n; o += block) {
        size_t e = n - o < block ? n : o + block;
        uint64_t ks = ow__bf16_block_key(c->q.key, 0, g[o]);
#pragma omp simd
        for (size_t i = o; i < e; i++) {
            float gi = g[i] * sg;
            if (has_l2)
                gi = fmaf(l2, p[i], gi);
            float si = fmaf(gi, gi, first ? init : OW__MOMENT_LOAD(st, s, i));
            OW__MOMENT_STORE(st, s, i, si, ks, a->off + i);
            p[i] = p[i] + (nclr * gi) / (sqrtf(si) + eps);
        }
    }
}

OW_SIMD static void adagrad_run(const ow_kernel_args *a)
{
    adagrad_loop(a, OW__STORE_F32);
}

OW_SIMD static void adagrad_run_bf16(const ow_kernel_args *a, bool sr)
{
    if (sr)
        adagrad_loop(a, OW__STORE_BF16_SR);
    else
        adagrad_loop(a, OW__STORE_BF16);
}

static void adagrad_ref(const ow_kernel_args *a)
{
    const adagrad_ctx *c = a->ctx;
    for (size_t i = 0; i < a->n; i++) {
        float g = c->sign < 0 ? -a->g[i] : a->g[i];
        if (c->has_l2)
            g = fmaf(c->l2, a->p[i], g);               /* grad.add(param, wd) */
        float s = c->first ? c->init : a->s[S_SUM][i]; /* full_like(p, init) */
        s = fmaf(1.0f * g, g, s);                      /* addcmul_(g, g, value=1) */
        a->s[S_SUM][i] = s;
        float std = sqrtf(s) + c->eps;           /* sqrt().add_(eps) */
        a->p[i] = a->p[i] + (c->nclr * g) / std; /* addcdiv_(g, std, -clr) */
    }
}

OW__QPASS_BF16(adagrad_qplan, adagrad_ctx, S_N, adagrad_run, adagrad_run_bf16)
OW__QPASS(adagrad_qplan, adagrad_ctx, S_N, adagrad_ref, true)
static const ow_pass adagrad_passes[] = {
    {.run = adagrad_run_qfalse, .ref = adagrad_ref_qtrue}, {0}};

static const ow_optimizer_ops adagrad_ops = {.abi_version = OW_ABI_VERSION,
                                             .slots = adagrad_slots,
                                             .params = adagrad_params,
                                             .ctx_size = sizeof(adagrad_ctx),
                                             .check = adagrad_check,
                                             .prepare = adagrad_prepare,
                                             .slot_shape = adagrad_slot_shape,
                                             .passes = adagrad_passes,
                                             .slot_dtype = adagrad_slot_dtype};

/* ---- Adadelta -----------------------------------------------------------------------
 */

#define ADADELTA_KEYS(wd)                                                                \
    OW__KEY_NUM("lr", "1.0", "coefficient scaling delta"),                               \
        {.name = "rho",                                                                  \
         .type = OW_T_NUMBER,                                                            \
         .def = "0.9",                                                                   \
         .min = 0,                                                                       \
         .max = 1,                                                                       \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "decay of the running averages"},                                        \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-06",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added inside the square roots"},                                        \
        OW__KEY_NUM("weight_decay", wd, "L2 penalty"),                                   \
        OW__KEY_BOOL("maximize", "false",                                                \
                     "maximize the objective instead of minimizing"),                    \
        OW__KEY_FOREACH,                                                                 \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key adadelta_keys[] = {ADADELTA_KEYS("0")};
static const ow_key timm_adadelta_keys[] = {ADADELTA_KEYS("0.0")};

enum { D_LR, D_RHO, D_EPS, D_WD, D_MAXIMIZE };
static const char *const adadelta_params[] = {
    [D_LR] = "lr",           [D_RHO] = "rho",           [D_EPS] = "eps",
    [D_WD] = "weight_decay", [D_MAXIMIZE] = "maximize", NULL};

typedef struct adadelta_ctx {
    float sign, l2, rho, omr, eps, nlr;
    bool has_l2;
} adadelta_ctx;

enum { S_DSTEP, S_SQUARE_AVG, S_ACC_DELTA };
static const ow_slot adadelta_slots[] = {
    [S_DSTEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_SQUARE_AVG] = {.name = "square_avg"},
    [S_ACC_DELTA] = {.name = "acc_delta"},
    {0},
};

static void adadelta_prepare(ow_prepare_args *a)
{
    adadelta_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    a->scalars[S_DSTEP] += 1;
    c->sign = ow__hp_true(&hp[D_MAXIMIZE]) ? -1.0f : 1.0f;
    c->has_l2 = hp[D_WD].v[0] != 0;
    c->l2 = ow__f(hp[D_WD].v[0]);
    c->rho = ow__f(hp[D_RHO].v[0]);
    c->omr = ow__f(1 - hp[D_RHO].v[0]);
    c->eps = ow__f(hp[D_EPS].v[0]);
    c->nlr = ow__f(-a->lr);
}

/* s = rho*s + (1-rho)*g*g; d = sqrt(acc + eps) / sqrt(s + eps) * g;
 * acc = rho*acc + (1-rho)*d*d; p -= lr*d */
OW_SIMD static void adadelta_run(const ow_kernel_args *a)
{
    const adadelta_ctx *c = a->ctx;
    size_t n = a->n;
    float *restrict p = a->p, *restrict s = a->s[S_SQUARE_AVG],
                    *restrict acc = a->s[S_ACC_DELTA];
    const float *restrict g = a->g;
    const float sg = c->sign, l2 = c->l2, rho = c->rho, omr = c->omr, eps = c->eps,
                nlr = c->nlr;
    const bool has_l2 = c->has_l2;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * sg;
        if (has_l2)
            gi = fmaf(l2, p[i], gi);
        float si = fmaf(omr * gi, gi, s[i] * rho);
        float d = sqrtf(acc[i] + eps) / sqrtf(si + eps) * gi;
        s[i] = si;
        acc[i] = fmaf(omr * d, d, acc[i] * rho);
        p[i] = fmaf(nlr, d, p[i]);
    }
}

static void adadelta_ref(const ow_kernel_args *a)
{
    const adadelta_ctx *c = a->ctx;
    for (size_t i = 0; i < a->n; i++) {
        float g = c->sign < 0 ? -a->g[i] : a->g[i];
        if (c->has_l2)
            g = fmaf(c->l2, a->p[i], g);
        float s = fmaf(c->omr * g, g, a->s[S_SQUARE_AVG][i] * c->rho); /* addcmul_ */
        float std = sqrtf(s + c->eps); /* square_avg.add(eps).sqrt_() */
        float delta =
            sqrtf(a->s[S_ACC_DELTA][i] + c->eps); /* acc_delta.add(eps).sqrt_() */
        delta = delta / std;                      /* .div_(std) */
        delta = delta * g;                        /* .mul_(grad) */
        a->s[S_SQUARE_AVG][i] = s;
        a->s[S_ACC_DELTA][i] = fmaf(c->omr * delta, delta, a->s[S_ACC_DELTA][i] * c->rho);
        a->p[i] = fmaf(c->nlr, delta, a->p[i]); /* add_(delta, alpha=-lr) */
    }
}

static const ow_pass adadelta_passes[] = {{.run = adadelta_run, .ref = adadelta_ref},
                                          {0}};

static const ow_optimizer_ops adadelta_ops = {.abi_version = OW_ABI_VERSION,
                                              .slots = adadelta_slots,
                                              .params = adadelta_params,
                                              .ctx_size = sizeof(adadelta_ctx),
                                              .prepare = adadelta_prepare,
                                              .passes = adadelta_passes};

OW__OPTIMIZER_ENTRY(
    ow__optimizer_adagrad, "Adagrad", "mmengine", adagrad_keys, adagrad_ops,
    "torch.optim.Adagrad: per-element lr from the sum of squared gradients");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adagrad, "adagrad", "timm", timm_adagrad_keys,
                    adagrad_ops, "timm 'adagrad': torch.optim.Adagrad, eps 1e-8");
OW__OPTIMIZER_ENTRY(
    ow__optimizer_adadelta, "Adadelta", "mmengine", adadelta_keys, adadelta_ops,
    "torch.optim.Adadelta: running averages of squared gradients and updates");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adadelta, "adadelta", "timm", timm_adadelta_keys,
                    adadelta_ops, "timm 'adadelta': torch.optim.Adadelta");
