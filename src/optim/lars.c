/* LARS / LARC (timm Lars): SGD whose gradient (plus L2 decay) is scaled per tensor by
 * the trust ratio tc*|p| / (|g| + wd*|p| + eps) when weight decay is on (or
 * always_adapt); LARC clips ratio/lr at 1. mmpretrain's LARS (at the end) always adapts
 * unless a group sets lars_exclude, and takes the ratio in double. Norms are summed in
 * double, so the ratio can differ from torch's float32 reduction in the last place.
 * Large Batch Training of Convolutional Networks, https://arxiv.org/abs/1708.03888 */
#include "optim_internal.h"
#include "quant.h"

#include <string.h>

#define LARS_KEYS(nesterov, clip)                                                        \
    OW__KEY_NUM("lr", "1.0", "learning rate"),                                           \
        OW__KEY_NUM("momentum", "0.9", "momentum factor"),                               \
        OW__KEY_ANYNUM("dampening", "0", "dampening for momentum"),                      \
        OW__KEY_NUM("weight_decay", "0.0", "L2 penalty (turns the adaptation on)"),      \
        OW__KEY_BOOL("nesterov", nesterov, "Nesterov momentum"),                         \
        OW__KEY_NUM("trust_coeff", "0.001", "trust coefficient"),                        \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-08",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "added to the ratio's denominator"},                                     \
        OW__KEY_BOOL("trust_clip", clip, "LARC: clip ratio/lr at 1"),                    \
        OW__KEY_BOOL("always_adapt", "false", "adapt without weight decay too"),         \
        OW__KEY_STATE_DTYPE, OW__KEY_STOCHASTIC_ROUNDING,                                \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key lars_keys[] = {LARS_KEYS("false", "false")};
static const ow_key larc_keys[] = {LARS_KEYS("false", "true")};
static const ow_key nlars_keys[] = {LARS_KEYS("true", "false")};
static const ow_key nlarc_keys[] = {LARS_KEYS("true", "true")};

enum {
    K_LR,
    K_MOMENTUM,
    K_DAMPENING,
    K_WD,
    K_NESTEROV,
    K_TC,
    K_EPS,
    K_CLIP,
    K_ALWAYS,
    K_STATE_DTYPE,
    K_SR
};
static const char *const lars_params[] = {[K_LR] = "lr",
                                          [K_MOMENTUM] = "momentum",
                                          [K_DAMPENING] = "dampening",
                                          [K_WD] = "weight_decay",
                                          [K_NESTEROV] = "nesterov",
                                          [K_TC] = "trust_coeff",
                                          [K_EPS] = "eps",
                                          [K_CLIP] = "trust_clip",
                                          [K_ALWAYS] = "always_adapt",
                                          [K_STATE_DTYPE] = "state_dtype",
                                          [K_SR] = "stochastic_rounding",
                                          NULL};

typedef struct lars_ctx {
    float wd, tc, eps, lr, momentum, damp1, nlr;
    bool adapt, clip, has_momentum, first, nesterov;
    ow__qstep q; /* state_dtype (timm's Lars) */
} lars_ctx;

enum { S_BUF, S_STEP };
static const ow_slot slots[] = {
    [S_BUF] = {.name = "momentum_buffer"},
    /* not timm's: whether the buffer exists yet */
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    {0},
};
/* timm's Lars: the same, and state_dtype int8's slots under bitsandbytes' names */
enum { S_STATE1 = S_STEP + 1, S_ABSMAX1, S_QMAP1, S_N };
static const ow_slot qslots[] = {
    [S_BUF] = {.name = "momentum_buffer"},
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_STATE1] = {.name = "state1"},
    [S_ABSMAX1] = {.name = "absmax1"},
    [S_QMAP1] = {.name = "qmap1"},
    {0},
};
static const ow__qplan lars_qplan = {.m = {{S_BUF, S_STATE1, S_ABSMAX1, S_QMAP1, true}},
                                     .n = 1};

static ow__qmode qmode(const ow_hparam *hp)
{
    return ow__qmode_of(&hp[K_STATE_DTYPE], &hp[K_SR]);
}

static ow_dtype slot_dtype(const ow_hparam *hp, int slot, size_t numel)
{
    return ow__qplan_dtype(&lars_qplan, qmode(hp), slot, numel);
}

static bool check(const ow_hparam *hp, char *msg, size_t n)
{
    if (ow__hp_true(&hp[K_NESTEROV]) &&
        (hp[K_MOMENTUM].v[0] <= 0 || hp[K_DAMPENING].v[0] != 0)) {
        snprintf(msg, n, "Nesterov momentum requires a momentum and zero dampening");
        return false;
    }
    return ow__qmode_check(&hp[K_STATE_DTYPE], &hp[K_SR], msg, n);
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    if (slot == S_STEP)
        return 0;
    if (hp[K_MOMENTUM].v[0] == 0)
        return -1;
    return ow__qplan_shape(&lars_qplan, qmode(hp), slot, ndim, shape, out);
}

static void prepare(ow_prepare_args *a)
{
    lars_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double wd = hp[K_WD].v[0];
    c->adapt = wd != 0 || ow__hp_true(&hp[K_ALWAYS]);
    c->wd = ow__f(wd);
    c->tc = ow__f(hp[K_TC].v[0]);
    c->eps = ow__f(hp[K_EPS].v[0]);
    c->lr = ow__f(a->lr);
    c->nlr = ow__f(-a->lr);
    c->clip = ow__hp_true(&hp[K_CLIP]);
    c->has_momentum = hp[K_MOMENTUM].v[0] != 0;
    c->momentum = ow__f(hp[K_MOMENTUM].v[0]);
    c->damp1 = ow__f(1. - hp[K_DAMPENING].v[0]);
    c->nesterov = ow__hp_true(&hp[K_NESTEROV]);
    c->first = a->scalars[S_STEP] == 0;
    a->scalars[S_STEP] += 1;
    c->q = (ow__qstep){.mode = qmode(hp),
                       .key = ow__sr_key(0, (uint64_t)a->scalars[S_STEP], 0)};
    a->passes = c->adapt ? 3u : 2u;
}

/* pass 0: |p|^2 and |g|^2 */
OW_SIMD static void norms_run(const ow_kernel_args *a)
{
    size_t n = a->n;
    const float *restrict p = a->p, *restrict g = a->g;
    double pp = 0, gg = 0;
#pragma omp simd reduction(+ : pp, gg)
    for (size_t i = 0; i < n; i++) {
        pp += (double)p[i] * p[i];
        gg += (double)g[i] * g[i];
    }
    a->sums[0] += pp;
    a->sums[1] += gg;
}

static void norms_ref(const ow_kernel_args *a)
{
    for (size_t i = 0; i < a->n; i++) {
        a->sums[0] += (double)a->p[i] * a->p[i];
        a->sums[1] += (double)a->g[i] * a->g[i];
    }
}

/* The trust ratio in float32, as the reference computes it on 0-d tensors. */
static void trust_finish(const ow_finish_args *f)
{
    const lars_ctx *c = f->ctx;
    float w = (float)sqrt(f->sums[0]), gn = (float)sqrt(f->sums[1]);
    float ratio = (c->tc * w) / (gn + w * c->wd + c->eps);
    if (!(w > 0) || !(gn > 0))
        ratio = 1.0f;
    if (c->clip) {
        ratio = ratio / c->lr;
        if (ratio > 1.0f)
            ratio = 1.0f;
    }
    f->t[0] = ratio;
}

/* pass 1: d = (g + wd*p) * ratio; momentum; p -= lr*d. The buffer is kept as st says
 * (quant.h), bf16 block by block for the stochastic keys. */
static inline __attribute__((always_inline)) void step_body(const ow_kernel_args *a,
                                                            ow__store st)
{
    const lars_ctx *c = a->ctx;
    size_t n = a->n, block = st == OW__STORE_F32 ? n : OW__QBLOCK;
    float *restrict p = a->p;
    void *restrict buf = ow__moment(a, S_BUF, st);
    const float *restrict g = a->g;
    const float ratio = (float)a->t[0];
    for (size_t o = 0; o < n; o += block) {
        size_t e = n - o < block ? n : o + block;
        uint64_t kb = ow__bf16_block_key(c->q.key, 0, g[o]);
#pragma omp simd
        for (size_t i = o; i < e; i++) {
            float d = c->adapt ? fmaf(c->wd, p[i], g[i]) * ratio : g[i];
            if (c->has_momentum) {
                float b = c->first ? d
                                   : fmaf(c->damp1, d,
                                          OW__MOMENT_LOAD(st, buf, i) * c->momentum);
                OW__MOMENT_STORE(st, buf, i, b, kb, a->off + i);
                d = c->nesterov ? fmaf(c->momentum, b, d) : b;
            }
            p[i] = fmaf(c->nlr, d, p[i]);
        }
    }
}

OW_SIMD static void lars_step_run(const ow_kernel_args *a)
{
    step_body(a, OW__STORE_F32);
}

OW_SIMD static void lars_step_run_bf16(const ow_kernel_args *a, bool sr)
{
    if (sr)
        step_body(a, OW__STORE_BF16_SR);
    else
        step_body(a, OW__STORE_BF16);
}

static void step_ref(const ow_kernel_args *a)
{
    step_body(a, OW__STORE_F32);
}

OW__QPASS_BF16(lars_qplan, lars_ctx, S_N, lars_step_run, lars_step_run_bf16)
OW__QPASS(lars_qplan, lars_ctx, S_N, step_ref, true)
static const ow_pass lars_passes[] = {
    {.run = norms_run, .ref = norms_ref, .nsums = 2, .finish = trust_finish},
    {.run = lars_step_run_qfalse, .ref = step_ref_qtrue},
    {0}};

static const ow_optimizer_ops lars_ops = {.abi_version = OW_ABI_VERSION,
                                          .slots = qslots,
                                          .params = lars_params,
                                          .ctx_size = sizeof(lars_ctx),
                                          .check = check,
                                          .prepare = prepare,
                                          .slot_shape = slot_shape,
                                          .passes = lars_passes,
                                          .slot_dtype = slot_dtype};

#define ENTRY(var, nm, keys_, sum)                                                       \
    OW__OPTIMIZER_ENTRY(var, nm, "timm", keys_, lars_ops, sum)

ENTRY(ow__optimizer_timm_lars, "lars", lars_keys,
      "timm Lars: SGD with a layer-wise trust ratio");
ENTRY(ow__optimizer_timm_larc, "larc", larc_keys,
      "timm Lars with LARC clipping (ratio/lr <= 1)");
ENTRY(ow__optimizer_timm_nlars, "nlars", nlars_keys, "timm Lars, Nesterov momentum");
ENTRY(ow__optimizer_timm_nlarc, "nlarc", nlarc_keys,
      "timm Lars, Nesterov, LARC clipping");

/* ---- mmpretrain LARS --------------------------------------------------------------
 * mmpretrain/engine/optimizers/lars.py: the trust ratio is always on (unless the group
 * sets lars_exclude) and computed in Python double from the two norms, which are
 * float32 reductions read with .item(); then d = (g + wd*p) * (local_lr*lr) in float32,
 * SGD momentum on d (the first buffer a copy of d) and p -= d. eps is the optimizer's
 * (self.eps, not in mmpretrain's groups): a group's own eps is ignored, as there. */

static const ow_key mm_keys[] = {
    {.name = "lr", .type = OW_T_NUMBER, .doc = "base learning rate"},
    {.name = "momentum", .type = OW_T_NUMBER, .def = "0", .doc = "momentum factor"},
    {.name = "dampening",
     .type = OW_T_NUMBER,
     .def = "0",
     .doc = "dampening for momentum"},
    {.name = "weight_decay",
     .type = OW_T_NUMBER,
     .def = "0",
     .doc = "L2 penalty, added to the gradient"},
    OW__KEY_BOOL("nesterov", "false", "Nesterov momentum"),
    {.name = "eta", .type = OW_T_NUMBER, .def = "0.001", .doc = "LARS coefficient"},
    {.name = "eps",
     .type = OW_T_NUMBER,
     .def = "1e-08",
     .doc = "added to the ratio's denominator; the optimizer's value applies to every "
            "group (mmpretrain keeps it as self.eps)"},
    /* not a constructor argument in mmpretrain (group.get('lars_exclude', False)): a
     * key here so that groups may carry it; every group shows it */
    OW__KEY_BOOL("lars_exclude", "false",
                 "a group's: no trust ratio (local lr 1); set it through "
                 "paramwise_cfg.custom_keys"),
    {0},
};

enum { M_LR, M_MOMENTUM, M_DAMPENING, M_WD, M_NESTEROV, M_ETA, M_EPS, M_EXCLUDE };
static const char *const mm_params[] = {
    [M_LR] = "lr",           [M_MOMENTUM] = "momentum",    [M_DAMPENING] = "dampening",
    [M_WD] = "weight_decay", [M_NESTEROV] = "nesterov",    [M_ETA] = "eta",
    [M_EPS] = "eps",         [M_EXCLUDE] = "lars_exclude", NULL};

typedef struct mm_lars_ctx {
    double lr, wd, eta, eps; /* Python floats */
    float wd_f, lr_f, momentum, damp1;
    bool exclude, has_momentum, first, nesterov;
} mm_lars_ctx;

/* mmpretrain's checks, in its order and words. Its lr test is `not isinstance(lr,
 * float) and lr < 0.0`, which lets a negative float through; optwrap refuses every
 * negative lr. */
static bool mm_check(const ow_hparam *hp, char *msg, size_t n)
{
    static const struct {
        int k;
        const char *what;
    } rules[] = {{M_LR, "learning rate"},
                 {M_MOMENTUM, "momentum value"},
                 {M_WD, "weight_decay value"},
                 {M_ETA, "LARS coefficient value"}};
    for (size_t i = 0; i < OW__ARRAY_LEN(rules); i++) {
        const ow_hparam *h = &hp[rules[i].k];
        if (!h->is_null && h->n > 0 && h->v[0] < 0.0) {
            char v[32];
            ow__format_double(h->v[0], v, sizeof v);
            snprintf(msg, n, "Invalid %s: %s", rules[i].what, v);
            return false;
        }
    }
    if (ow__hp_true(&hp[M_NESTEROV]) &&
        (hp[M_MOMENTUM].v[0] <= 0 || hp[M_DAMPENING].v[0] != 0)) {
        snprintf(msg, n, "Nesterov momentum requires a momentum and zero dampening");
        return false;
    }
    return true;
}

static int mm_slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                         int64_t *out)
{
    if (slot == S_STEP)
        return 0;
    if (hp[M_MOMENTUM].v[0] == 0)
        return -1;
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    return ndim;
}

static void mm_prepare(ow_prepare_args *a)
{
    mm_lars_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    const ow_hparam *eps = &a->defaults[M_EPS];
    c->lr = a->lr;
    c->wd = hp[M_WD].v[0];
    c->eta = hp[M_ETA].v[0];
    c->eps = eps->is_null || eps->n < 1 ? 1e-8 : eps->v[0]; /* self.eps */
    c->wd_f = ow__f(c->wd);
    c->lr_f = ow__f(c->lr); /* local_lr 1: actual_lr = lr */
    c->exclude = ow__hp_true(&hp[M_EXCLUDE]);
    c->has_momentum = hp[M_MOMENTUM].v[0] != 0;
    c->momentum = ow__f(hp[M_MOMENTUM].v[0]);
    c->damp1 = ow__f(1. - hp[M_DAMPENING].v[0]);
    c->nesterov = ow__hp_true(&hp[M_NESTEROV]);
    c->first = a->scalars[S_STEP] == 0;
    a->scalars[S_STEP] += 1;
    a->passes = c->exclude ? 2u : 3u;
}

/* actual_lr = local_lr * lr in Python double: the norms are float32 values. */
static void mm_finish(const ow_finish_args *f)
{
    const mm_lars_ctx *c = f->ctx;
    double w = (double)(float)sqrt(f->sums[0]), gn = (double)(float)sqrt(f->sums[1]);
    double local_lr = 1.;
    if (w != 0 && gn != 0)
        local_lr = c->eta * w / (gn + c->wd * w + c->eps);
    f->t[0] = local_lr * c->lr;
}

/* d = (g + wd*p) * actual_lr; buf = d (first) or mom*buf + (1-damp)*d; d = d + mom*buf
 * (Nesterov) or buf; p = p + (-d). */
static inline __attribute__((always_inline)) void mm_step_body(const ow_kernel_args *a)
{
    const mm_lars_ctx *c = a->ctx;
    size_t n = a->n;
    float *restrict p = a->p, *restrict buf = a->s[S_BUF];
    const float *restrict g = a->g;
    const float alr = c->exclude ? c->lr_f : (float)a->t[0];
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float d = fmaf(c->wd_f, p[i], g[i]) * alr;
        if (c->has_momentum) {
            float b = c->first ? d : fmaf(c->damp1, d, buf[i] * c->momentum);
            buf[i] = b;
            d = c->nesterov ? fmaf(c->momentum, b, d) : b;
        }
        p[i] = p[i] - d;
    }
}

OW_SIMD static void mm_step_run(const ow_kernel_args *a)
{
    mm_step_body(a);
}

static void mm_step_ref(const ow_kernel_args *a)
{
    mm_step_body(a);
}

static const ow_pass mm_lars_passes[] = {
    {.run = norms_run, .ref = norms_ref, .nsums = 2, .finish = mm_finish},
    {.run = mm_step_run, .ref = mm_step_ref},
    {0}};

static const ow_optimizer_ops mm_lars_ops = {
    .abi_version = OW_ABI_VERSION,
    .slots = slots,
    .params = mm_params,
    .ctx_size = sizeof(mm_lars_ctx),
    .check = mm_check,
    .prepare = mm_prepare,
    .slot_shape = mm_slot_shape,
    .passes = mm_lars_passes,
    /* the norms are summed in double, torch's in float32 */};

OW__OPTIMIZER_ENTRY(ow__optimizer_mmpretrain_lars, "LARS", "mmpretrain", mm_keys,
                    mm_lars_ops,
                    "mmpretrain LARS: SGD with a layer-wise trust ratio, per-group "
                    "lars_exclude");
