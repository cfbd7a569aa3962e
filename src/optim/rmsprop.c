/* RMSprop family: torch.optim.RMSprop (square_avg from zeros, sqrt(v) + eps) and timm's
 * RMSpropTF (square_avg from ones, eps inside the sqrt, the lr folded into the momentum
 * buffer by default, decoupled/corrected decay and caution as flags).
 * https://pytorch.org/docs/1.13/generated/torch.optim.RMSprop.html */
#include "optim_internal.h"

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
        OW__KEY_PERF("differentiable"),                                                  \
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
        OW__KEY_BOOL("caution", caution, "cautious update"),                             \
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
    K_MAXIMIZE
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
                                         NULL};

typedef struct rms_ctx {
    float sign, l2, keep, alpha, oma, eps, momentum, lr, nlr;
    bool tf, has_l2, centered, has_momentum, lr_in_momentum, caution;
} rms_ctx;

enum { S_STEP, S_SQUARE_AVG, S_BUF, S_GRAD_AVG };
static const ow_slot torch_slots[] = {
    [S_STEP] = {.name = "step", .flags = OW_SLOT_SCALAR, .dtype = OW_DTYPE_I64},
    [S_SQUARE_AVG] = {.name = "square_avg"},
    [S_BUF] = {.name = "momentum_buffer"},
    [S_GRAD_AVG] = {.name = "grad_avg"},
    {0},
};
static const ow_slot tf_slots[] = {
    [S_STEP] = {.name = "step", .flags = OW_SLOT_SCALAR, .dtype = OW_DTYPE_F32},
    [S_SQUARE_AVG] = {.name = "square_avg", .init = 1},
    [S_BUF] = {.name = "momentum_buffer"},
    [S_GRAD_AVG] = {.name = "grad_avg"},
    {0},
};

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    if (slot == S_STEP)
        return 0;
    if ((slot == S_BUF && !(hp[K_MOMENTUM].v[0] > 0)) ||
        (slot == S_GRAD_AVG && !ow__hp_true(&hp[K_CENTERED_])))
        return -1;
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    return ndim;
}

static void prepare_common(ow_prepare_args *a, rms_ctx *c)
{
    const ow_hparam *hp = a->hp;
    a->scalars[S_STEP] += 1;
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

/* Pass 0: the averages and the buffer, then p (or, with caution, the mask count). */
static inline __attribute__((always_inline)) void rms_body(const ow_kernel_args *a)
{
    const rms_ctx *c = a->ctx;
    size_t n = a->n, cnt = 0;
    float *restrict p = a->p, *restrict sq = a->s[S_SQUARE_AVG],
                    *restrict buf = a->s[S_BUF], *restrict ga = a->s[S_GRAD_AVG];
    const float *restrict g = a->g;
#pragma omp simd reduction(+ : cnt)
    for (size_t i = 0; i < n; i++) {
        float gi = grad_of(c, g[i], p[i]), s, avg;
        if (c->tf) { /* square_avg.add_(grad.pow(2) - square_avg, alpha=1-alpha) */
            s = fmaf(c->oma, gi * gi - sq[i], sq[i]);
            if (c->centered) {
                float m = fmaf(c->oma, gi - ga[i], ga[i]);
                ga[i] = m;
                avg = sqrtf(fmaf(-1.0f * m, m, s) + c->eps);
            } else {
                avg = sqrtf(s + c->eps);
            }
        } else {
            s = fmaf(c->oma * gi, gi, sq[i] * c->alpha);
            if (c->centered) {
                float m = fmaf(c->oma, gi, ga[i] * c->alpha);
                ga[i] = m;
                avg = sqrtf(fmaf(-1.0f * m, m, s));
            } else {
                avg = sqrtf(s);
            }
            avg = avg + c->eps;
        }
        sq[i] = s;
        if (!c->has_momentum) {
            p[i] = p[i] * c->keep + (c->nlr * gi) / avg;
            continue;
        }
        float b = buf[i] * c->momentum;
        b = c->tf && c->lr_in_momentum ? b + (c->lr * gi) / avg : b + gi / avg;
        buf[i] = b;
        if (c->caution)
            cnt += b * gi > 0;
        else if (c->tf && c->lr_in_momentum)
            p[i] = p[i] * c->keep + -b;
        else
            p[i] = fmaf(c->nlr, b, p[i] * c->keep);
    }
    if (c->caution)
        a->sums[0] += (double)cnt;
}

OW_SIMD static void rms_run(const ow_kernel_args *a)
{
    rms_body(a);
}

static void rms_ref(const ow_kernel_args *a)
{
    rms_body(a);
}

static void caution_finish(const ow_finish_args *f)
{
    f->t[0] = ow__caution_scale(f->sums[0], f->numel);
}

/* caution, pass 1: buf * mask (timm's _apply_caution), decay, update */
static void rms_caution(const ow_kernel_args *a)
{
    const rms_ctx *c = a->ctx;
    const float scale = (float)a->t[0];
    for (size_t i = 0; i < a->n; i++) {
        float gi = grad_of(c, a->g[i], a->p[i]);
        float b = a->s[S_BUF][i];
        b = b * (b * gi > 0 ? scale : 0.0f);
        float p = a->p[i] * c->keep;
        a->p[i] = c->lr_in_momentum ? p + -b : fmaf(c->nlr, b, p);
    }
}

static const ow_pass rms_passes[] = {
    {.run = rms_run, .ref = rms_ref},
    {.run = rms_run, .ref = rms_ref, .nsums = 1, .finish = caution_finish},
    {.run = rms_caution, .ref = rms_caution},
    {0}};

#define RMS_OPS(slots_, prep)                                                            \
    {                                                                                    \
        .abi_version = OW_ABI_VERSION, .slots = slots_, .params = rms_params,            \
        .ctx_size = sizeof(rms_ctx), .prepare = prep, .slot_shape = slot_shape,          \
        .passes = rms_passes                                                             \
    }
static const ow_optimizer_ops torch_ops = RMS_OPS(torch_slots, prepare_torch);
static const ow_optimizer_ops tf_ops = RMS_OPS(tf_slots, prepare_tf);

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
