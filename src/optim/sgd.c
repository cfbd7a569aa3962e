/* SGD family: torch.optim.SGD (L2 weight decay added to the gradient), timm's SGDW and
 * composer's DecoupledSGDW (decoupled decay `p *= 1 - scale*wd`), with momentum,
 * dampening, Nesterov, maximize, and timm's cautious / corrected-decay variants as
 * flags on one kernel. Schemas in the order of each class's `defaults` dict.
 * https://pytorch.org/docs/1.13/generated/torch.optim.SGD.html */
#include "optim_internal.h"
#include "quant.h"

#include <string.h>

/* ---- schemas ------------------------------------------------------------------------
 */

#define SGD_COMMON(mom, damp, nest)                                                      \
    OW__KEY_NUM("momentum", mom, "momentum factor"),                                     \
        OW__KEY_ANYNUM("dampening", damp, "dampening for momentum"),                     \
        OW__KEY_NUM("weight_decay", "0", "weight decay"),                                \
        OW__KEY_BOOL("nesterov", nest, "Nesterov momentum")

/* no lr default: torch's `required` */
static const ow_key sgd_keys[] = {
    {.name = "lr",
     .type = OW_T_NUMBER,
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "learning rate"},
    SGD_COMMON("0", "0", "false"),
    OW__KEY_BOOL("maximize", "false", "maximize the objective instead of minimizing"),
    OW__KEY_FOREACH,
    OW__KEY_PERF("differentiable"),
    OW__KEY_STATE_DTYPE,
    OW__KEY_STOCHASTIC_ROUNDING,
    {0},
};

/* timm's factory: momentum 0.9 injected, lr from create_optimizer_v2 (required here) */
#define TIMM_SGD_KEYS(nest) TIMM_SGD_KEYS_Q(nest, "float32")
#define TIMM_SGD_KEYS_Q(nest, state_dtype)                                               \
    {.name = "lr",                                                                       \
     .type = OW_T_NUMBER,                                                                \
     .min = 0,                                                                           \
     .max = INFINITY,                                                                    \
     .flags = OW_KEY_RANGE,                                                              \
     .doc = "learning rate"},                                                            \
        SGD_COMMON("0.9", "0", nest),                                                    \
        OW__KEY_BOOL("maximize", "false",                                                \
                     "maximize the objective instead of minimizing"),                    \
        OW__KEY_FOREACH, OW__KEY_PERF("differentiable"),                                 \
        OW__KEY_STATE_DTYPE_DEF(state_dtype), OW__KEY_STOCHASTIC_ROUNDING,               \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key timm_sgd_keys[] = {TIMM_SGD_KEYS("true")};
static const ow_key timm_momentum_keys[] = {TIMM_SGD_KEYS("false")};
static const ow_key timm_sgd8bit_keys[] = {TIMM_SGD_KEYS_Q("true", "int8")};

#define TIMM_SGDW_KEYS(caution, corrected)                                               \
    OW__KEY_NUM("lr", "0.001", "learning rate"),                                         \
        OW__KEY_NUM("momentum", "0.9", "momentum factor"),                               \
        OW__KEY_ANYNUM("dampening", "0.0", "dampening for momentum"),                    \
        OW__KEY_NUM("weight_decay", "0", "decoupled weight decay"),                      \
        OW__KEY_BOOL("nesterov", "true", "Nesterov momentum"),                           \
        OW__KEY_BOOL("caution", caution,                                                 \
                     "cautious update (mask where update and gradient disagree)"),       \
        OW__KEY_BOOL("corrected_weight_decay", corrected,                                \
                     "decay scaled by lr**2/max_lr"),                                    \
        OW__KEY_BOOL("maximize", "false",                                                \
                     "maximize the objective instead of minimizing"),                    \
        OW__KEY_FOREACH, OW__KEY_PERF("differentiable"), OW__KEY_STATE_DTYPE,            \
        OW__KEY_STOCHASTIC_ROUNDING,                                                     \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key sgdw_keys[] = {TIMM_SGDW_KEYS("false", "false")};
static const ow_key sgdc_keys[] = {TIMM_SGDW_KEYS("false", "true")};
static const ow_key csgdw_keys[] = {TIMM_SGDW_KEYS("true", "false")};
static const ow_key csgdc_keys[] = {TIMM_SGDW_KEYS("true", "true")};

/* APEX FusedSGD's signature (timm 'fusedsgd': momentum 0.9, nesterov): torch SGD's
 * update; wd_after_momentum (APEX's other ordering) is refused when true */
static const ow_key fusedsgd_keys[] = {
    {.name = "lr",
     .type = OW_T_NUMBER,
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE | OW_KEY_REQUIRED,
     .doc = "learning rate"},
    SGD_COMMON("0.9", "0", "true"),
    OW__KEY_BOOL("wd_after_momentum", "false", "APEX's decay after momentum: refused"),
    OW__KEY_PERF("materialize_master_grads"),
    OW__KEY_PERF("set_grad_none"),
    {0},
};

static const ow_key composer_sgdw_keys[] = {
    {.name = "lr",
     .type = OW_T_NUMBER,
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "learning rate"},
    OW__KEY_NUM("momentum", "0", "momentum factor"),
    OW__KEY_ANYNUM("dampening", "0", "dampening for momentum"),
    OW__KEY_NUM("weight_decay", "0", "decoupled decay, scaled by lr/initial_lr"),
    OW__KEY_BOOL("nesterov", "false", "Nesterov momentum"),
    OW__KEY_BOOL("maximize", "false", "accepted; composer ignores it"),
    OW__KEY_FOREACH,
    OW__KEY_PERF("differentiable"),
    OW__KEY_STATE_DTYPE,
    OW__KEY_STOCHASTIC_ROUNDING,
    {0},
};

/* ---- per-step constants -------------------------------------------------------------
 */

enum {
    K_LR,
    K_MOMENTUM,
    K_DAMPENING,
    K_WD,
    K_NESTEROV,
    K_CAUTION,
    K_CORRECTED,
    K_MAXIMIZE,
    K_WD_AFTER,
    K_STATE_DTYPE,
    K_SR
};
static const char *const sgd_params[] = {[K_LR] = "lr",
                                         [K_MOMENTUM] = "momentum",
                                         [K_DAMPENING] = "dampening",
                                         [K_WD] = "weight_decay",
                                         [K_NESTEROV] = "nesterov",
                                         [K_CAUTION] = "caution",
                                         [K_CORRECTED] = "corrected_weight_decay",
                                         [K_MAXIMIZE] = "maximize",
                                         [K_WD_AFTER] = "wd_after_momentum",
                                         [K_STATE_DTYPE] = "state_dtype",
                                         [K_SR] = "stochastic_rounding",
                                         NULL};
enum { WD_L2, WD_DECOUPLED, WD_COMPOSER }; /* how an entry applies weight decay */

typedef struct sgd_ctx {
    float l2;   /* g += l2 * p (torch); 0 = none */
    float keep; /* p *= keep before the update (decoupled); 1 = none */
    float momentum, damp1, neg_lr, sign;
    bool has_l2, has_momentum, first, nesterov, caution;
    ow__qstep q; /* state_dtype */
} sgd_ctx;

enum { S_BUF, S_STEP, S_STATE1, S_ABSMAX1, S_QMAP1, S_N };
static const ow_slot sgd_slots[] = {
    [S_BUF] = {.name = "momentum_buffer"},
    /* not torch's: tells whether the buffer exists yet (torch: `buf is None`) */
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    /* state_dtype int8: bitsandbytes' names */
    [S_STATE1] = {.name = "state1"},
    [S_ABSMAX1] = {.name = "absmax1"},
    [S_QMAP1] = {.name = "qmap1"},
    {0},
};
static const ow__qplan sgd_qplan = {.m = {{S_BUF, S_STATE1, S_ABSMAX1, S_QMAP1, true}},
                                    .n = 1};

static ow__qmode qmode(const ow_hparam *hp)
{
    return ow__qmode_of(&hp[K_STATE_DTYPE], &hp[K_SR]);
}

static ow_dtype sgd_slot_dtype(const ow_hparam *hp, int slot, size_t numel)
{
    return ow__qplan_dtype(&sgd_qplan, qmode(hp), slot, numel);
}

static bool sgd_check(const ow_hparam *hp, char *msg, size_t n)
{
    if (ow__hp_true(&hp[K_NESTEROV]) &&
        (hp[K_MOMENTUM].v[0] <= 0 || hp[K_DAMPENING].v[0] != 0)) {
        snprintf(msg, n, "Nesterov momentum requires a momentum and zero dampening");
        return false;
    }
    if (ow__hp_true(&hp[K_WD_AFTER])) {
        snprintf(msg, n,
                 "wd_after_momentum: true (APEX FusedSGD's decay after the momentum) is "
                 "not implemented: torch's SGD adds the decay before it");
        return false;
    }
    return ow__qmode_check(&hp[K_STATE_DTYPE], &hp[K_SR], msg, n);
}

static int sgd_slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                          int64_t *out)
{
    if (slot == S_STEP)
        return 0;
    if (hp[K_MOMENTUM].v[0] == 0)
        return -1; /* torch keeps no buffer without momentum */
    return ow__qplan_shape(&sgd_qplan, qmode(hp), slot, ndim, shape, out);
}

static void prepare_common(ow_prepare_args *a, int wd_mode, bool caution, bool corrected,
                           bool maximize)
{
    sgd_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double wd = hp[K_WD].v[0], mom = hp[K_MOMENTUM].v[0];
    c->has_l2 = wd_mode == WD_L2 && wd != 0;
    c->l2 = ow__f(wd);
    c->keep = 1.0f;
    if (wd_mode == WD_DECOUPLED) /* timm: param.mul_(1. - wd_scale * weight_decay) */
        c->keep = ow__f(1. - ow__wd_scale(a->lr, corrected, a->defaults[K_LR].v[0]) * wd);
    else if (wd_mode == WD_COMPOSER &&
             wd != 0) /* (lr / initial_lr) if initial_lr else 1 */
        c->keep = ow__f(1 - (a->initial_lr != 0 ? a->lr / a->initial_lr : 1.0) * wd);
    c->has_momentum = mom != 0;
    c->momentum = ow__f(mom);
    c->damp1 = ow__f(1 - hp[K_DAMPENING].v[0]);
    c->nesterov = ow__hp_true(&hp[K_NESTEROV]);
    c->neg_lr = ow__f(-a->lr);
    c->sign = maximize ? -1.0f : 1.0f;
    c->first = a->scalars[S_STEP] == 0;
    c->caution = caution && c->has_momentum;
    a->scalars[S_STEP] += 1;
    c->q = (ow__qstep){.mode = qmode(hp),
                       .key = ow__sr_key(0, (uint64_t)a->scalars[S_STEP], 0)};
    a->passes = c->caution ? 6u : 1u; /* caution: count the mask, then step */
}

/* ---- kernels ------------------------------------------------------------------------
 */

/* One element, as torch's op sequence: d = g (+ wd*p); buf = mom*buf + (1-damp)*d, or
 * a copy of d at first; d = d + mom*buf (Nesterov) or buf; p = p*keep - lr*d. The
 * buffer is kept as st says (quant.h), bf16 block by block for the stochastic keys. */
static inline __attribute__((always_inline)) void sgd_loop(const ow_kernel_args *a,
                                                           const sgd_ctx *c, bool l2,
                                                           bool mom, bool first,
                                                           bool nest, ow__store st)
{
    size_t n = a->n, block = st == OW__STORE_F32 ? n : OW__QBLOCK;
    float *restrict p = a->p;
    const float *restrict g = a->g;
    void *restrict buf = ow__moment(a, S_BUF, st);
    const float wd = c->l2, keep = c->keep, m = c->momentum, d1 = c->damp1,
                nlr = c->neg_lr, sg = c->sign;
    for (size_t o = 0; o < n; o += block) {
        size_t e = n - o < block ? n : o + block;
        uint64_t kb = ow__bf16_block_key(c->q.key, 0, g[o]);
#pragma omp simd
        for (size_t i = o; i < e; i++) {
            float d = g[i] * sg;
            if (l2)
                d = fmaf(wd, p[i], d);
            if (mom) {
                float b = first ? d : fmaf(d1, d, OW__MOMENT_LOAD(st, buf, i) * m);
                OW__MOMENT_STORE(st, buf, i, b, kb, a->off + i);
                d = nest ? fmaf(m, b, d) : b;
            }
            p[i] = fmaf(nlr, d, p[i] * keep);
        }
    }
}

/* caution, pass 0: only moves the buffer and counts the mask */
static inline __attribute__((always_inline)) void
sgd_count(const ow_kernel_args *a, const sgd_ctx *c, ow__store st)
{
    size_t n = a->n, block = st == OW__STORE_F32 ? n : OW__QBLOCK, cnt = 0;
    const float *restrict g = a->g;
    void *restrict buf = ow__moment(a, S_BUF, st);
    const float m = c->momentum, d1 = c->damp1, sg = c->sign;
    for (size_t o = 0; o < n; o += block) {
        size_t e = n - o < block ? n : o + block;
        uint64_t kb = ow__bf16_block_key(c->q.key, 0, g[o]);
#pragma omp simd reduction(+ : cnt)
        for (size_t i = o; i < e; i++) {
            float d = g[i] * sg;
            float b = c->first ? d : fmaf(d1, d, OW__MOMENT_LOAD(st, buf, i) * m);
            OW__MOMENT_STORE(st, buf, i, b, kb, a->off + i);
            float u = c->nesterov ? fmaf(m, b, d) : b;
            cnt += u * d > 0;
        }
    }
    a->sums[0] += (double)cnt;
}

static inline __attribute__((always_inline)) void sgd_switch(const ow_kernel_args *a,
                                                             ow__store st)
{
    const sgd_ctx *c = a->ctx;
    if (c->caution) {
        sgd_count(a, c, st);
        return;
    }
    unsigned key = (unsigned)c->has_l2 | (unsigned)c->has_momentum << 1 |
                   (unsigned)c->first << 2 | (unsigned)c->nesterov << 3;
    switch (key) {
    case 0:
    case 4:
    case 8:
    case 12: sgd_loop(a, c, false, false, false, false, st); break;
    case 1:
    case 5:
    case 9:
    case 13: sgd_loop(a, c, true, false, false, false, st); break;
    case 2: sgd_loop(a, c, false, true, false, false, st); break;
    case 3: sgd_loop(a, c, true, true, false, false, st); break;
    case 6: sgd_loop(a, c, false, true, true, false, st); break;
    case 7: sgd_loop(a, c, true, true, true, false, st); break;
    case 10: sgd_loop(a, c, false, true, false, true, st); break;
    case 11: sgd_loop(a, c, true, true, false, true, st); break;
    case 14: sgd_loop(a, c, false, true, true, true, st); break;
    default: sgd_loop(a, c, true, true, true, true, st); break;
    }
}

OW_SIMD static void sgd_run(const ow_kernel_args *a)
{
    sgd_switch(a, OW__STORE_F32);
}

OW_SIMD static void sgd_run_bf16(const ow_kernel_args *a, bool sr)
{
    if (sr)
        sgd_switch(a, OW__STORE_BF16_SR);
    else
        sgd_switch(a, OW__STORE_BF16);
}

static void sgd_ref(const ow_kernel_args *a)
{
    const sgd_ctx *c = a->ctx;
    double cnt = 0;
    for (size_t i = 0; i < a->n; i++) {
        float d = c->sign < 0 ? -a->g[i] : a->g[i];
        if (c->has_l2)
            d = fmaf(c->l2, a->p[i], d); /* d_p.add(param, alpha=weight_decay) */
        if (!c->caution)
            a->p[i] = a->p[i] * c->keep; /* param.mul_(1 - wd_scale*wd) */
        if (c->has_momentum) {
            float b = a->s[S_BUF][i];
            if (c->first)
                b = d; /* torch.clone(d_p) */
            else
                b = fmaf(c->damp1, d,
                         b * c->momentum); /* buf.mul_(m).add_(d_p, 1-damp) */
            a->s[S_BUF][i] = b;
            float u =
                c->nesterov ? fmaf(c->momentum, b, d) : b; /* d_p.add(buf, alpha=m) */
            if (c->caution) {
                cnt += u * d > 0;
                continue;
            }
            d = u;
        }
        a->p[i] = fmaf(c->neg_lr, d, a->p[i]); /* param.add_(d_p, alpha=-lr) */
    }
    if (c->caution)
        a->sums[0] += cnt;
}

/* caution, pass 1: the update where it agrees in sign with the gradient, scaled by
 * 1/mean(mask) (timm: grad = buf * mask) */
/* reads the buffer only: the block loop's re-encoding of it keeps its bits */
static inline __attribute__((always_inline)) void
sgd_caution_loop(const ow_kernel_args *a, ow__store st)
{
    const sgd_ctx *c = a->ctx;
    size_t n = a->n;
    float *restrict p = a->p;
    const float *restrict g = a->g;
    const void *restrict buf = ow__moment(a, S_BUF, st);
    const float scale = (float)a->t[0], m = c->momentum, keep = c->keep, nlr = c->neg_lr,
                sg = c->sign;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float d = g[i] * sg, b = OW__MOMENT_LOAD(st, buf, i);
        float u = c->nesterov ? fmaf(m, b, d) : b;
        float mask = u * d > 0 ? scale : 0.0f;
        p[i] = fmaf(nlr, u * mask, p[i] * keep);
    }
}

OW_SIMD static void sgd_caution_run(const ow_kernel_args *a)
{
    sgd_caution_loop(a, OW__STORE_F32);
}

OW_SIMD static void sgd_caution_run_bf16(const ow_kernel_args *a, bool sr)
{
    (void)sr;
    sgd_caution_loop(a, OW__STORE_BF16);
}

static void sgd_caution_ref(const ow_kernel_args *a)
{
    const sgd_ctx *c = a->ctx;
    for (size_t i = 0; i < a->n; i++) {
        float d = c->sign < 0 ? -a->g[i] : a->g[i];
        float u = c->nesterov ? fmaf(c->momentum, a->s[S_BUF][i], d) : a->s[S_BUF][i];
        float mask = u * d > 0 ? (float)a->t[0] : 0.0f;
        a->p[i] = fmaf(c->neg_lr, u * mask, a->p[i] * c->keep);
    }
}

/* ---- entries ------------------------------------------------------------------------
 */

static void prepare_torch(ow_prepare_args *a)
{
    prepare_common(a, WD_L2, false, false, ow__hp_true(&a->hp[K_MAXIMIZE]));
}
static void prepare_sgdw(ow_prepare_args *a)
{
    prepare_common(a, WD_DECOUPLED, ow__hp_true(&a->hp[K_CAUTION]),
                   ow__hp_true(&a->hp[K_CORRECTED]), ow__hp_true(&a->hp[K_MAXIMIZE]));
}
/* composer's step reads no maximize (accepted, as composer accepts it) */
static void prepare_composer(ow_prepare_args *a)
{
    prepare_common(a, WD_COMPOSER, false, false, false);
}

OW__QPASS_BF16(sgd_qplan, sgd_ctx, S_N, sgd_run, sgd_run_bf16)
OW__QPASS(sgd_qplan, sgd_ctx, S_N, sgd_ref, true)
OW__QPASS_BF16(sgd_qplan, sgd_ctx, S_N, sgd_caution_run, sgd_caution_run_bf16)
OW__QPASS(sgd_qplan, sgd_ctx, S_N, sgd_caution_ref, true)

static const ow_pass sgd_passes[] = {
    {.run = sgd_run_qfalse, .ref = sgd_ref_qtrue},
    {.run = sgd_run_qfalse,
     .ref = sgd_ref_qtrue,
     .nsums = 1,
     .finish = ow__caution_finish},
    {.run = sgd_caution_run_qfalse, .ref = sgd_caution_ref_qtrue},
    {0}};

#define SGD_OPS(prep)                                                                    \
    {                                                                                    \
        .abi_version = OW_ABI_VERSION, .slots = sgd_slots, .params = sgd_params,         \
        .ctx_size = sizeof(sgd_ctx), .check = sgd_check, .prepare = prep,                \
        .slot_shape = sgd_slot_shape, .passes = sgd_passes, .slot_dtype = sgd_slot_dtype \
    }
static const ow_optimizer_ops torch_sgd_ops = SGD_OPS(prepare_torch);
static const ow_optimizer_ops sgdw_ops = SGD_OPS(prepare_sgdw);
static const ow_optimizer_ops composer_sgdw_ops = SGD_OPS(prepare_composer);

OW__OPTIMIZER_ENTRY(
    ow__optimizer_sgd, "SGD", "mmengine", sgd_keys, torch_sgd_ops,
    "torch.optim.SGD: stochastic gradient descent with optional (Nesterov) momentum");
static const char *const sgd_aliases[] = {"nesterov", NULL};
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_sgd, "sgd", "timm", timm_sgd_keys, torch_sgd_ops,
                    "timm 'sgd'/'nesterov': torch.optim.SGD, momentum 0.9, nesterov",
                    .aliases = sgd_aliases);
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_momentum, "momentum", "timm", timm_momentum_keys,
                    torch_sgd_ops,
                    "timm 'momentum': torch.optim.SGD, momentum 0.9, no nesterov");
static const char *const sgdw_aliases[] = {"nesterovw", NULL};
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_sgdw, "sgdw", "timm", sgdw_keys, sgdw_ops,
                    "timm SGDW: SGD with decoupled weight decay, nesterov",
                    .aliases = sgdw_aliases);
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_sgdc, "sgdc", "timm", sgdc_keys, sgdw_ops,
                    "timm SGDW with corrected weight decay (lr**2/max_lr)");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_csgdw, "csgdw", "timm", csgdw_keys, sgdw_ops,
                    "timm SGDW, cautious");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_csgdc, "csgdc", "timm", csgdc_keys, sgdw_ops,
                    "timm SGDW, cautious, corrected weight decay");
OW__OPTIMIZER_ENTRY(ow__optimizer_composer_sgdw, "DecoupledSGDW", "composer",
                    composer_sgdw_keys, composer_sgdw_ops,
                    "composer DecoupledSGDW: decay p *= 1 - (lr/initial_lr)*wd");
OW__OPTIMIZER_ENTRY(
    ow__optimizer_timm_fusedsgd, "fusedsgd", "timm", fusedsgd_keys, torch_sgd_ops,
    "timm 'fusedsgd' (APEX FusedSGD, GPU-only there): torch SGD's update");
/* timm's bitsandbytes names (timm asks for nesterov, which bitsandbytes' SGD refuses:
 * torch's SGD runs it) */
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_bnbsgd, "bnbsgd", "timm", timm_sgd_keys,
                    torch_sgd_ops, "timm 'bnbsgd': SGD, momentum 0.9, nesterov");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_bnbsgd8bit, "bnbsgd8bit", "timm",
                    timm_sgd8bit_keys, torch_sgd_ops,
                    "timm 'bnbsgd8bit': SGD, momentum 0.9, nesterov, state_dtype int8");
