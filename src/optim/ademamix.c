/* AdEMAMix (bitsandbytes): Adam with a second, slow first moment mixed in,
 *   m1 = b1 m1 + (1-b1) g;  m2 = b3 m2 + (1-b3) g;  nu = b2 nu + (1-b2) g^2
 *   p *= 1 - lr wd (wd > 0);  p -= lr (m1/bc1 + alpha m2) / (sqrt(nu)/sqrt(bc2) + eps)
 * with optional warm-ups of alpha (t_alpha) and b3 (t_beta3), in the op order of
 * bitsandbytes' pure-torch backend; state as bitsandbytes keeps it (state1 = [m1, m2],
 * state2 = nu), in float32, bf16 or its 8-bit blocks (state_dtype, quant.h).
 * Pagliardini et al., "The AdEMAMix Optimizer", 2024, https://arxiv.org/abs/2409.03137 */
#include "optim_internal.h"
#include "quant.h"

#include <string.h>

#define ADEMAMIX_KEYS(state_dtype)                                                       \
    OW__KEY_NUM("lr", "0.001", "learning rate"),                                         \
        {.name = "betas",                                                                \
         .type = OW_T_NUMLIST,                                                           \
         .def = "[0.9, 0.999, 0.9999]",                                                  \
         .min = 0,                                                                       \
         .max = 1,                                                                       \
         .len = 3,                                                                       \
         .flags = OW_KEY_RANGE | OW_KEY_MAX_OPEN,                                        \
         .doc = "decay rates of the fast first moment, the second moment and the slow "  \
                "first moment"},                                                         \
        OW__KEY_NUM("eps", "1e-08", "added to the denominator for numerical stability"), \
        OW__KEY_NUM("weight_decay", "0.01", "decoupled weight decay"),                   \
        OW__KEY_ANYNUM("alpha", "5.0", "weight of the slow first moment"),               \
        {.name = "t_alpha",                                                              \
         .type = OW_T_INT,                                                               \
         .def = "null",                                                                  \
         .min = 1,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_NULLABLE | OW_KEY_RANGE,                                        \
         .doc = "steps over which alpha warms up linearly (null: none)"},                \
        {.name = "t_beta3",                                                              \
         .type = OW_T_INT,                                                               \
         .def = "null",                                                                  \
         .min = 1,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_NULLABLE | OW_KEY_RANGE,                                        \
         .doc = "steps over which beta3 warms up (null: none)"},                         \
        OW__KEY_STATE_DTYPE_DEF(state_dtype), OW__KEY_STOCHASTIC_ROUNDING,               \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key ademamix_keys[] = {ADEMAMIX_KEYS("float32")};
static const ow_key ademamix8bit_keys[] = {ADEMAMIX_KEYS("int8")};

enum { P_LR, P_BETAS, P_EPS, P_WD, P_ALPHA, P_T_ALPHA, P_T_BETA3, P_STATE_DTYPE, P_SR };
static const char *const ademamix_params[] = {[P_LR] = "lr",
                                              [P_BETAS] = "betas",
                                              [P_EPS] = "eps",
                                              [P_WD] = "weight_decay",
                                              [P_ALPHA] = "alpha",
                                              [P_T_ALPHA] = "t_alpha",
                                              [P_T_BETA3] = "t_beta3",
                                              [P_STATE_DTYPE] = "state_dtype",
                                              [P_SR] = "stochastic_rounding",
                                              NULL};

enum { S_STEP, S_STATE1, S_STATE2, S_ABSMAX1, S_ABSMAX2, S_QMAP1, S_QMAP2 };
static const ow_slot ademamix_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_STATE1] = {.name = "state1"}, /* [2, *shape]: m1, m2 */
    [S_STATE2] = {.name = "state2"}, /* nu */
    [S_ABSMAX1] = {.name = "absmax1"},
    [S_ABSMAX2] = {.name = "absmax2"},
    [S_QMAP1] = {.name = "qmap1"},
    [S_QMAP2] = {.name = "qmap2"},
    {0},
};

typedef struct ademamix_ctx {
    float b1, omb1, b2, omb2, b3, omb3, alpha, bc1, bc2s, eps, lr, keep;
    bool decay;
    ow__qstep q;
} ademamix_ctx;

static ow__qmode qmode(const ow_hparam *hp)
{
    return ow__qmode_of(&hp[P_STATE_DTYPE], &hp[P_SR]);
}

static bool check(const ow_hparam *hp, char *msg, size_t n)
{
    return ow__qmode_check(&hp[P_STATE_DTYPE], &hp[P_SR], msg, n);
}

static void prepare(ow_prepare_args *a)
{
    ademamix_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double step = a->scalars[S_STEP] += 1, lr = a->lr, wd = hp[P_WD].v[0];
    double b1 = hp[P_BETAS].v[0], b2 = hp[P_BETAS].v[1], b3 = hp[P_BETAS].v[2];
    double alpha = hp[P_ALPHA].v[0];
    if (!hp[P_T_ALPHA].is_null) /* alpha_t = min(step * alpha / t_alpha, alpha) */
        alpha = fmin(step * alpha / hp[P_T_ALPHA].v[0], alpha);
    if (!hp[P_T_BETA3].is_null) { /* exp(ln b1 ln b3 / ((1 - s) ln b3 + s ln b1)) */
        double l1 = log(b1), l3 = log(b3), s = step / hp[P_T_BETA3].v[0];
        b3 = fmin(exp(l1 * l3 / ((1 - s) * l3 + s * l1)), b3);
    }
    c->b1 = ow__f(b1);
    c->omb1 = ow__f(1.0 - b1);
    c->b2 = ow__f(b2);
    c->omb2 = ow__f(1.0 - b2);
    c->b3 = ow__f(b3);
    c->omb3 = ow__f(1.0 - b3);
    c->alpha = ow__f(alpha);
    c->bc1 = ow__f(1.0 - pow(b1, step));
    c->bc2s = ow__f(sqrt(1.0 - pow(b2, step)));
    c->eps = ow__f(hp[P_EPS].v[0]);
    c->lr = ow__f(lr);
    c->decay = wd > 0;
    c->keep = ow__f(1.0 - lr * wd);
    c->q = (ow__qstep){.mode = qmode(hp), .key = (uint64_t)step};
}

static size_t numel_of(int ndim, const int64_t *shape)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)shape[d];
    return n;
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    size_t numel = numel_of(ndim, shape), nb = (numel + OW__QBLOCK - 1) / OW__QBLOCK;
    bool i8 = qmode(hp) == OW__QM_I8 && numel >= OW__Q8_MIN;
    switch (slot) {
    case S_STEP: return 0;
    case S_STATE1:
        if (ndim + 1 > OW_MAX_DIMS)
            return -1;
        out[0] = 2;
        memcpy(out + 1, shape, (size_t)ndim * sizeof *out);
        return ndim + 1;
    case S_STATE2: memcpy(out, shape, (size_t)ndim * sizeof *out); return ndim;
    case S_ABSMAX1:
        out[0] = 2;
        out[1] = (int64_t)nb;
        return i8 ? 2 : -1;
    case S_ABSMAX2: out[0] = (int64_t)nb; return i8 ? 1 : -1;
    default: out[0] = 256; return i8 ? 1 : -1;
    }
}

static ow_dtype slot_dtype(const ow_hparam *hp, int slot, size_t numel)
{
    ow__qmode m = qmode(hp);
    if (slot != S_STATE1 && slot != S_STATE2)
        return OW_DTYPE_F32;
    if (m == OW__QM_I8)
        return numel >= OW__Q8_MIN ? OW_DTYPE_U8 : OW_DTYPE_F32;
    return m == OW__QM_F32 ? OW_DTYPE_F32 : OW_DTYPE_BF16;
}

/* ---- kernels ------------------------------------------------------------------------
 */

/* One element, in the reference's op order (slots 0: m1, 1: m2, 2: nu), the moments
 * kept as st says (quant.h), bf16 block by block with the tensor's key. */
static inline __attribute__((always_inline)) void ademamix_loop(const ow_kernel_args *a,
                                                                const ademamix_ctx *c,
                                                                bool decay, ow__store st,
                                                                uint64_t key)
{
    size_t n = a->n, block = st == OW__STORE_F32 ? n : OW__QBLOCK;
    float *restrict p = a->p;
    void *restrict m1 = ow__moment(a, 0, st), *restrict m2 = ow__moment(a, 1, st),
                   *restrict nu = ow__moment(a, 2, st);
    const float *restrict g = a->g;
    const float b1 = c->b1, omb1 = c->omb1, b2 = c->b2, omb2 = c->omb2, b3 = c->b3,
                omb3 = c->omb3, alpha = c->alpha, bc1 = c->bc1, bc2s = c->bc2s,
                eps = c->eps, lr = c->lr, keep = c->keep;
    for (size_t o = 0; o < n; o += block) {
        size_t e = n - o < block ? n : o + block;
        uint64_t k1 = ow__bf16_block_key(key, 0, g[o]),
                 k2 = ow__bf16_block_key(key, 1, g[o]),
                 k3 = ow__bf16_block_key(key, 2, g[o]);
#pragma omp simd
        for (size_t i = o; i < e; i++) {
            float gi = g[i];
            /* s1 * beta1 + (1 - beta1) * g */
            float f1 = OW__MOMENT_LOAD(st, m1, i) * b1 + omb1 * gi;
            /* s3 * beta3 + (1 - beta3) * g */
            float f3 = OW__MOMENT_LOAD(st, m2, i) * b3 + omb3 * gi;
            /* s2 * beta2 + (1 - beta2) * g * g */
            float f2 = OW__MOMENT_LOAD(st, nu, i) * b2 + (omb2 * gi) * gi;
            OW__MOMENT_STORE(st, m1, i, f1, k1, a->off + i);
            OW__MOMENT_STORE(st, m2, i, f3, k2, a->off + i);
            OW__MOMENT_STORE(st, nu, i, f2, k3, a->off + i);
            float pi = decay ? p[i] * keep : p[i];   /* p * (1 - lr * wd) */
            float mixed = f1 / bc1 + alpha * f3;     /* m1 / c1 + alpha * m2 */
            float adaptive = sqrtf(f2) / bc2s + eps; /* sqrt(nu) / c2 + eps */
            p[i] = pi - lr * (mixed / adaptive);
        }
    }
}

OW_SIMD static void ademamix_run(const ow_kernel_args *a)
{
    const ademamix_ctx *c = a->ctx;
    if (c->decay)
        ademamix_loop(a, c, true, OW__STORE_F32, 0);
    else
        ademamix_loop(a, c, false, OW__STORE_F32, 0);
}

/* a's full: the three bf16 moments from the tensor's start; key: the tensor's */
OW_SIMD static void ademamix_run_bf16(const ow_kernel_args *a, bool sr, uint64_t key)
{
    const ademamix_ctx *c = a->ctx;
    if (sr && c->decay)
        ademamix_loop(a, c, true, OW__STORE_BF16_SR, key);
    else if (sr)
        ademamix_loop(a, c, false, OW__STORE_BF16_SR, key);
    else if (c->decay)
        ademamix_loop(a, c, true, OW__STORE_BF16, key);
    else
        ademamix_loop(a, c, false, OW__STORE_BF16, key);
}

static void ademamix_ref(const ow_kernel_args *a)
{
    const ademamix_ctx *c = a->ctx;
    for (size_t i = 0; i < a->n; i++) {
        float g = a->g[i];
        float m1 = a->s[0][i] * c->b1 + c->omb1 * g;
        float m2 = a->s[1][i] * c->b3 + c->omb3 * g;
        float nu = a->s[2][i] * c->b2 + c->omb2 * g * g;
        a->s[0][i] = m1;
        a->s[1][i] = m2;
        a->s[2][i] = nu;
        float p = c->decay ? a->p[i] * c->keep : a->p[i];
        float mixed = m1 / c->bc1 + c->alpha * m2;
        float adaptive = sqrtf(nu) / c->bc2s + c->eps;
        a->p[i] = p - c->lr * (mixed / adaptive);
    }
}

/* A tensor's blocks [lo, hi) (thread ranges start at block boundaries, so no result
 * depends on the thread count). */
typedef struct chunk_arg {
    const ow_tensor_args *t;
    uint64_t key;
} chunk_arg;

static void chunk(const void *arg, size_t lo, size_t hi)
{
    const chunk_arg *ca = arg;
    const ow_tensor_args *t = ca->t;
    const ademamix_ctx *c = t->ctx;
    size_t n = t->numel, nb = (n + OW__QBLOCK - 1) / OW__QBLOCK;
    size_t o = lo * OW__QBLOCK, e = hi * OW__QBLOCK < n ? hi * OW__QBLOCK : n;
    ow_kernel_args a = {.n = e - o, .p = t->p + o, .g = t->g + o, .ctx = c};
    ow_kernel_fn fn = t->ref ? ademamix_ref : ademamix_run;
    void *s1 = t->s[S_STATE1], *s2 = t->s[S_STATE2];
    ow__qslot q[3];
    bool bf16 = c->q.mode == OW__QM_BF16 || c->q.mode == OW__QM_BF16_SR;
    if (bf16 && !t->ref) { /* in place, the block loop's bits */
        void *full[3] = {s1, (uint16_t *)s1 + n, s2};
        a.full = full;
        a.off = o;
        ademamix_run_bf16(&a, c->q.mode == OW__QM_BF16_SR, ca->key);
        return;
    }
    if (c->q.mode == OW__QM_F32 || (c->q.mode == OW__QM_I8 && n < OW__Q8_MIN)) {
        float *s[3] = {(float *)s1 + o, (float *)s1 + n + o, (float *)s2 + o};
        a.s = s;
        fn(&a);
        return;
    }
    if (c->q.mode == OW__QM_I8) {
        float *am1 = (float *)t->s[S_ABSMAX1], *am2 = (float *)t->s[S_ABSMAX2];
        q[0] = (ow__qslot){OW__Q_I8S, (uint8_t *)s1 + o, am1 + lo};
        q[1] = (ow__qslot){OW__Q_I8S, (uint8_t *)s1 + n + o, am1 + nb + lo};
        q[2] = (ow__qslot){OW__Q_I8U, (uint8_t *)s2 + o, am2 + lo};
    } else {
        ow__qkind k = c->q.mode == OW__QM_BF16_SR ? OW__Q_BF16_SR : OW__Q_BF16;
        q[0] = (ow__qslot){k, (uint16_t *)s1 + o, NULL};
        q[1] = (ow__qslot){k, (uint16_t *)s1 + n + o, NULL};
        q[2] = (ow__qslot){k, (uint16_t *)s2 + o, NULL};
    }
    ow__qrange r = {
        .a = &a, .fn = fn, .slot = q, .nslots = 3, .key = ca->key, .index = o};
    if (t->ref)
        ow__q_ref(&r);
    else
        ow__q_run(&r);
}

static void tensor_step(const ow_tensor_args *t)
{
    const ademamix_ctx *c = t->ctx;
    if (c->q.mode == OW__QM_I8 && t->numel >= OW__Q8_MIN) {
        memcpy(t->s[S_QMAP1], ow__qtab_signed.map, sizeof ow__qtab_signed.map);
        memcpy(t->s[S_QMAP2], ow__qtab_unsigned.map, sizeof ow__qtab_unsigned.map);
    }
    chunk_arg ca = {.t = t, .key = ow__sr_key(0, c->q.key, t->param)};
    size_t nb = (t->numel + OW__QBLOCK - 1) / OW__QBLOCK;
    ow__parallel_range(chunk, &ca, nb, t->numel < OW__SERIAL_BELOW ? 1 : t->threads);
}

static const ow_optimizer_ops ademamix_ops = {.abi_version = OW_ABI_VERSION,
                                              .slots = ademamix_slots,
                                              .params = ademamix_params,
                                              .ctx_size = sizeof(ademamix_ctx),
                                              .check = check,
                                              .prepare = prepare,
                                              .slot_shape = slot_shape,
                                              .tensor_step = tensor_step,
                                              .slot_dtype = slot_dtype};

OW__OPTIMIZER_ENTRY(ow__optimizer_ademamix, "AdEMAMix", "bitsandbytes", ademamix_keys,
                    ademamix_ops,
                    "bitsandbytes AdEMAMix: Adam plus a slow EMA of the gradient "
                    "(alpha, beta3 warm-ups), torch-backend op order");
OW__OPTIMIZER_ENTRY(ow__optimizer_ademamix8bit, "AdEMAMix8bit", "bitsandbytes",
                    ademamix8bit_keys, ademamix_ops,
                    "bitsandbytes AdEMAMix8bit: AdEMAMix, state_dtype int8 by default");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_bnbademamix, "bnbademamix", "timm", ademamix_keys,
                    ademamix_ops, "timm 'bnbademamix': bitsandbytes AdEMAMix");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_bnbademamix8bit, "bnbademamix8bit", "timm",
                    ademamix8bit_keys, ademamix_ops,
                    "timm 'bnbademamix8bit': bitsandbytes AdEMAMix8bit (int8 state)");
