/* fastai's step callbacks (fastai/optimizer.py at 0a20fa1b) run over one tensor, each
 * one the torch ops fastai writes, in float32 and in torch's rounding: a Python float
 * meets a tensor as (float)x, `add_(t, alpha=a)` is fmaf(a, t, x), addcmul_ is
 * fmaf(v*t1, t2, x), addcdiv_ is x + (v*t1)/t2, and the per-tensor reductions
 * (torch.norm, .mean()) sum in torch 1.13's CPU order. Scalars (debias, RAdam's
 * rectification, LARC's local lr) are Python doubles as fastai computes them. */
#include "fastai_internal.h"

#define ST(x) (1u << (x))
#define HY(x) (1u << (x))

const char *const ow__fa_hyper_names[FH__N + 1] = {
    [FH_LR] = "lr",
    [FH_WD] = "wd",
    [FH_MOM] = "mom",
    [FH_SQR_MOM] = "sqr_mom",
    [FH_EPS] = "eps",
    [FH_BETA] = "beta",
    [FH_NU_1] = "nu_1",
    [FH_NU_2] = "nu_2",
    [FH_TRUST_COEFF] = "trust_coeff",
    [FH_LOOKAHEAD_K] = "lookahead_k",
    [FH_LOOKAHEAD_ALPHA] = "lookahead_alpha",
};

#define ADAMLIKE HY(FH_LR) | HY(FH_MOM) | HY(FH_SQR_MOM) | HY(FH_EPS)
#define MOMENTS  ST(FS_GRAD_AVG) | ST(FS_SQR_AVG) | ST(FS_STEP)

const ow__fa_cb_info ow__fa_cbs[FA__NCB] = {
    [FA_WEIGHT_DECAY] = {.name = "weight_decay", .hypers = HY(FH_LR) | HY(FH_WD)},
    [FA_L2_REG] = {.name = "l2_reg", .hypers = HY(FH_WD)},
    [FA_AVERAGE_GRAD] = {.name = "average_grad",
                         .option = "dampening",
                         .creates = ST(FS_GRAD_AVG),
                         .hypers = HY(FH_MOM)},
    [FA_AVERAGE_SQR_GRAD] = {.name = "average_sqr_grad",
                             .option = "dampening",
                             .option_default = true,
                             .creates = ST(FS_SQR_AVG),
                             .hypers = HY(FH_SQR_MOM)},
    [FA_STEP_STAT] = {.name = "step_stat", .creates = ST(FS_STEP)},
    [FA_MOMENTUM_STEP] = {.name = "momentum_step",
                          .needs = ST(FS_GRAD_AVG),
                          .hypers = HY(FH_LR)},
    [FA_SGD_STEP] = {.name = "sgd_step", .hypers = HY(FH_LR)},
    [FA_RMS_PROP_STEP] = {.name = "rms_prop_step",
                          .needs = ST(FS_SQR_AVG),
                          .optional = ST(FS_GRAD_AVG),
                          .hypers = HY(FH_LR) | HY(FH_EPS)},
    [FA_ADAM_STEP] = {.name = "adam_step", .needs = MOMENTS, .hypers = ADAMLIKE},
    [FA_RADAM_STEP] = {.name = "radam_step",
                       .needs = MOMENTS,
                       .hypers = ADAMLIKE | HY(FH_BETA)},
    [FA_QHADAM_STEP] = {.name = "qhadam_step",
                        .needs = MOMENTS,
                        .hypers = ADAMLIKE | HY(FH_NU_1) | HY(FH_NU_2)},
    [FA_LARC_LAYER_LR] = {.name = "larc_layer_lr",
                          .option = "clip",
                          .option_default = true,
                          .creates = ST(FS_LOCAL_LR),
                          .hypers =
                              HY(FH_LR) | HY(FH_TRUST_COEFF) | HY(FH_WD) | HY(FH_EPS)},
    [FA_LARC_STEP] = {.name = "larc_step",
                      .needs = ST(FS_LOCAL_LR),
                      .optional = ST(FS_GRAD_AVG)},
    [FA_LAMB_STEP] = {.name = "lamb_step", .needs = MOMENTS, .hypers = ADAMLIKE},
    [FA_LOOKAHEAD] = {.name = "lookahead",
                      .creates = ST(FS_SLOW_WEIGHTS) | ST(FS_LOOKAHEAD_COUNT),
                      .hypers = HY(FH_LOOKAHEAD_K) | HY(FH_LOOKAHEAD_ALPHA)},
};

unsigned ow__fa_prog_states(const ow__fa_prog *prog)
{
    unsigned m = 0;
    for (int i = 0; i < prog->n; i++)
        m |= ow__fa_cbs[prog->cb[i]].creates;
    return m;
}

unsigned ow__fa_prog_hypers(const ow__fa_prog *prog)
{
    unsigned m = 0;
    for (int i = 0; i < prog->n; i++)
        m |= ow__fa_cbs[prog->cb[i]].hypers;
    return m;
}

unsigned ow__fa_prog_defaults(const ow__fa_prog *prog, double *h)
{
    static const struct {
        int cb, hyper;
        double v;
    } defaults[] = {
        {FA_WEIGHT_DECAY, FH_WD, 0.0},    {FA_L2_REG, FH_WD, 0.0},
        {FA_AVERAGE_GRAD, FH_MOM, 0.9},   {FA_AVERAGE_SQR_GRAD, FH_SQR_MOM, 0.99},
        {FA_RMS_PROP_STEP, FH_EPS, 1e-8}, {FA_LARC_LAYER_LR, FH_TRUST_COEFF, 0.02},
        {FA_LARC_LAYER_LR, FH_WD, 0.0},   {FA_LARC_LAYER_LR, FH_EPS, 1e-8},
    };
    unsigned set = 0;
    for (int i = 0; i < prog->n; i++)
        for (size_t d = 0; d < sizeof defaults / sizeof *defaults; d++)
            if ((prog->flags[i] & FA_BARE) && defaults[d].cb == prog->cb[i]) {
                h[defaults[d].hyper] = defaults[d].v;
                set |= HY(defaults[d].hyper);
            }
    return set;
}

bool ow__fa_prog_add(ow__fa_prog *prog, ow__fa_cb cb, bool option)
{
    if (prog->n >= OW__FA_MAX_CBS)
        return false;
    prog->cb[prog->n] = (uint8_t)cb;
    prog->flags[prog->n++] = option ? FA_OPT : 0;
    return true;
}

/* ---- element loops -----------------------------------------------------------------
 */

/* fastai's debias(mom, damp, step) = damp * (1 - mom**step) / (1 - mom), damp 1-mom */
static double debias(double mom, double step)
{
    return (1 - mom) * (1 - pow(mom, step)) / (1 - mom);
}

/* One callback's constants over one tensor, for the element loops. */
typedef struct el {
    const ow__fa_tensor *t;
    int cb;
    const float *g;   /* the gradient as the callbacks see it */
    float *g_out;     /* l2_reg: where the changed gradient goes */
    const float *src; /* rms_prop_step / larc_step: grad_avg or the gradient */
    float *u;         /* lamb_step: the update */
    float a, b, c, d, e, f, h, k; /* the callback's float32 constants (see el_run) */
    bool rect, has_eps, has_beta;
} el;

static inline float softplus(float x, float beta) /* F.softplus(x, beta), threshold 20 */
{
    return x * beta > 20.0f ? x : log1pf(expf(x * beta)) / beta;
}

/* The element loops of one callback over [lo, hi): SIMD clones, so that fmaf is one
 * instruction and the loops vectorize (the rounding is the same on every path). */
OW_SIMD static void el_run(const void *arg, size_t lo, size_t hi)
{
    const el *e = arg;
    const ow__fa_tensor *t = e->t;
    float *restrict p = t->p, *restrict ga = t->state[FS_GRAD_AVG],
                    *restrict sa = t->state[FS_SQR_AVG], *restrict u = e->u;
    const float *restrict g = e->g, *restrict src = e->src;
    const float a = e->a, b = e->b, c = e->c, d = e->d, ee = e->e, f = e->f, h = e->h,
                k = e->k;
    switch (e->cb) {
    case FA_WEIGHT_DECAY: /* p.data.mul_(1 - lr*wd) */
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            p[i] = p[i] * a;
        break;
    case FA_L2_REG: { /* p.grad.data.add_(p.data, alpha=wd): in place when twice */
        float *out = e->g_out;
        const float *in = e->g;
        for (size_t i = lo; i < hi; i++)
            out[i] = fmaf(a, p[i], in[i]);
        break;
    }
    case FA_AVERAGE_GRAD: /* grad_avg.mul_(mom).add_(grad, alpha=damp) */
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            ga[i] = fmaf(b, g[i], ga[i] * a);
        break;
    case FA_AVERAGE_SQR_GRAD: /* sqr_avg.mul_(sqr_mom).addcmul_(grad, grad, value=damp) */
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            sa[i] = fmaf(b * g[i], g[i], sa[i] * a);
        break;
    case FA_SGD_STEP:      /* p.data.add_(grad, alpha=-lr) */
    case FA_MOMENTUM_STEP: /* p.data.add_(grad_avg, alpha=-lr) */
    case FA_LARC_STEP:     /* p.data.add_(grad or grad_avg, alpha=-local_lr) */
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            p[i] = fmaf(a, src[i], p[i]);
        break;
    case FA_RMS_PROP_STEP: /* p.addcdiv_(grad_avg or grad, sqrt(sqr_avg) + eps, -lr) */
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            p[i] = p[i] + (a * src[i]) / (sqrtf(sa[i]) + b);
        break;
    case FA_ADAM_STEP: /* addcdiv_(grad_avg, (sqr_avg/db2).sqrt() + eps, -lr/db1) */
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            p[i] = p[i] + (a * ga[i]) / (sqrtf(sa[i] / b) + c);
        break;
    case FA_RADAM_STEP:
        if (!e->rect) { /* p.data.add_(grad_avg, alpha=-lr/db1) */
#pragma omp simd
            for (size_t i = lo; i < hi; i++)
                p[i] = fmaf(a, ga[i], p[i]);
        } else if (!e->has_beta &&
                   e->has_eps) { /* addcdiv_(grad_avg, denom, -lr*v/db1) */
#pragma omp simd
            for (size_t i = lo; i < hi; i++)
                p[i] = p[i] + (a * ga[i]) / (sqrtf(sa[i] / b) + c);
        } else { /* `if eps: denom += eps`, `if beta: denom = F.softplus(denom, beta)` */
            for (size_t i = lo; i < hi; i++) {
                float denom = sqrtf(sa[i] / b);
                if (e->has_eps)
                    denom = denom + c;
                if (e->has_beta)
                    denom = softplus(denom, d);
                p[i] = p[i] + (a * ga[i]) / denom;
            }
        }
        break;
    case FA_QHADAM_STEP:
        /* addcdiv_((1-nu_1)*grad + nu_1*(grad_avg/db1),
         *          ((1-nu_2)*grad**2 + nu_2*(sqr_avg/db2)).sqrt() + eps, value=-lr) */
#pragma omp simd
        for (size_t i = lo; i < hi; i++) {
            float num = b * g[i] + c * (ga[i] / d);
            float den = sqrtf(ee * (g[i] * g[i]) + f * (sa[i] / h)) + k;
            p[i] = p[i] + (a * num) / den;
        }
        break;
    case FA_LAMB_STEP: /* step = (grad_avg/db1) / ((sqr_avg/db2).sqrt() + eps) */
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            u[i] = (ga[i] / b) / (sqrtf(sa[i] / c) + d);
        break;
    case FA_LAMB_STEP + FA__NCB: /* p.data.add_(step, alpha=-lr*q) */
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            p[i] = fmaf(a, u[i], p[i]);
        break;
    case FA_LOOKAHEAD: { /* slow.add_(fast - slow, alpha); fast.copy_(slow) */
        float *restrict slow = t->state[FS_SLOW_WEIGHTS];
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            p[i] = slow[i] = fmaf(a, p[i] - slow[i], slow[i]);
        break;
    }
    default: break;
    }
}

/* Element callbacks waiting to run, run block by block: each block of the tensor goes
 * through every pending callback in order (an element sees the same ops in the same
 * order as callback after callback over the whole tensor), so that a run of callbacks
 * reads the tensor's arrays once. Flushed before a reduction reads them. */
#define FA_BLOCK 256

typedef struct pending {
    el e[OW__FA_MAX_CBS + 1];
    int n;
} pending;

static void pending_run(const void *arg, size_t lo, size_t hi)
{
    const pending *q = arg;
    for (size_t b = lo; b < hi; b += FA_BLOCK) {
        size_t end = hi - b > FA_BLOCK ? b + FA_BLOCK : hi;
        for (int k = 0; k < q->n; k++)
            el_run(&q->e[k], b, end);
    }
}

static void flush(pending *q, const ow__fa_tensor *t)
{
    if (q->n == 0)
        return;
    if (t->ref || t->threads <= 1)
        pending_run(q, 0, t->n);
    else
        ow__parallel_range(pending_run, q, t->n, t->threads);
    q->n = 0;
}

/* larc_layer_lr: lr*trust_coeff * p_norm / (g_norm + p_norm*wd + eps), in float32
 * 0-d tensors; clip: Python's min(lr, local_lr) (lr when local_lr is not smaller) */
static double larc_local_lr(const ow__fa_tensor *t, const float *g, const double *h,
                            bool clip)
{
    float pn = ow__fa_norm(t->p, t->n), gn = ow__fa_norm(g, t->n);
    float ll = ow__f(h[FH_LR] * h[FH_TRUST_COEFF]) * pn /
               (gn + pn * ow__f(h[FH_WD]) + ow__f(h[FH_EPS]));
    if (clip && !(ll < ow__f(h[FH_LR])))
        return h[FH_LR];
    return ll;
}

/* lamb_step's scale: -lr * q, q = 1 when a norm is 0, else min(r1/r2, 10) */
static float lamb_alpha(const ow__fa_tensor *t, const float *u, double lr)
{
    float r1 = ow__fa_rms(t->p, t->n), r2 = ow__fa_rms(u, t->n);
    if (r1 == 0 || r2 == 0)
        return ow__f(-lr);
    float q = r1 / r2;
    if (10.0f < q) /* min(q, 10): the int 10 */
        return ow__f(-lr * 10);
    return ow__f(-lr) * q; /* (-lr) * q, a float32 tensor */
}

void ow__fa_run(const ow__fa_prog *prog, const double *h, const ow__fa_tensor *t)
{
    el e = {.t = t, .g = t->g};
    pending q = {.n = 0};
    double lr = h[FH_LR];
    for (int k = 0; k < prog->n; k++) {
        int cb = prog->cb[k];
        bool opt = prog->flags[k] & FA_OPT;
        double step = t->scalar[FS_STEP] ? *t->scalar[FS_STEP] : 0;
        e.cb = cb;
        switch (cb) {
        case FA_WEIGHT_DECAY:
        case FA_L2_REG:
            if (h[FH_WD] == 0) /* `if do_wd and wd != 0` */
                continue;
            e.a = cb == FA_L2_REG ? ow__f(h[FH_WD]) : ow__f(1 - lr * h[FH_WD]);
            e.g_out = t->work;
            break;
        case FA_AVERAGE_GRAD:
        case FA_AVERAGE_SQR_GRAD: {
            double mom = h[cb == FA_AVERAGE_GRAD ? FH_MOM : FH_SQR_MOM];
            e.a = ow__f(mom);
            e.b = ow__f(opt ? 1 - mom : 1.0);
            break;
        }
        case FA_STEP_STAT: *t->scalar[FS_STEP] += 1; continue;
        case FA_SGD_STEP:
        case FA_MOMENTUM_STEP:
            e.a = ow__f(-lr);
            e.src = cb == FA_SGD_STEP ? e.g : t->state[FS_GRAD_AVG];
            break;
        case FA_RMS_PROP_STEP:
            e.a = ow__f(-lr);
            e.b = ow__f(h[FH_EPS]);
            e.src = t->state[FS_GRAD_AVG] ? t->state[FS_GRAD_AVG] : e.g;
            break;
        case FA_ADAM_STEP:
            e.a = ow__f(-lr / debias(h[FH_MOM], step));
            e.b = ow__f(debias(h[FH_SQR_MOM], step));
            e.c = ow__f(h[FH_EPS]);
            break;
        case FA_RADAM_STEP: {
            double sm = h[FH_SQR_MOM], db1 = debias(h[FH_MOM], step);
            double r_inf = 2 / (1 - sm) - 1;
            double r = r_inf - 2 * step * pow(sm, step) / (1 - pow(sm, step));
            e.rect = r > 5;
            if (e.rect) {
                double v =
                    sqrt(((r - 4) * (r - 2) * r_inf) / ((r_inf - 4) * (r_inf - 2) * r));
                e.a = ow__f(-lr * v / db1);
            } else {
                e.a = ow__f(-lr / db1);
            }
            e.b = ow__f(debias(sm, step));
            e.c = ow__f(h[FH_EPS]);
            e.d = ow__f(h[FH_BETA]);
            e.has_eps = h[FH_EPS] != 0;
            e.has_beta = h[FH_BETA] != 0;
            break;
        }
        case FA_QHADAM_STEP:
            e.a = ow__f(-lr);
            e.b = ow__f(1 - h[FH_NU_1]);
            e.c = ow__f(h[FH_NU_1]);
            e.d = ow__f(debias(h[FH_MOM], step));
            e.e = ow__f(1 - h[FH_NU_2]);
            e.f = ow__f(h[FH_NU_2]);
            e.h = ow__f(debias(h[FH_SQR_MOM], step));
            e.k = ow__f(h[FH_EPS]);
            break;
        case FA_LARC_LAYER_LR:
            flush(&q, t);
            *t->scalar[FS_LOCAL_LR] = larc_local_lr(t, e.g, h, opt);
            continue;
        case FA_LARC_STEP:
            e.a = ow__f(-*t->scalar[FS_LOCAL_LR]);
            e.src = t->state[FS_GRAD_AVG] ? t->state[FS_GRAD_AVG] : e.g;
            break;
        case FA_LAMB_STEP:
            e.u = t->work + t->n;
            e.b = ow__f(debias(h[FH_MOM], step));
            e.c = ow__f(debias(h[FH_SQR_MOM], step));
            e.d = ow__f(h[FH_EPS]);
            q.e[q.n++] = e;
            flush(&q, t);
            e.a = lamb_alpha(t, e.u, lr);
            e.cb = FA_LAMB_STEP + FA__NCB;
            break;
        case FA_LOOKAHEAD: {
            double count = *t->scalar[FS_LOOKAHEAD_COUNT] += 1;
            if (fmod(count, h[FH_LOOKAHEAD_K]) != 0)
                continue;
            e.a = ow__f(h[FH_LOOKAHEAD_ALPHA]);
            break;
        }
        default: continue;
        }
        q.e[q.n++] = e;
        if (cb == FA_L2_REG)
            e.g = t->work;
    }
    flush(&q, t);
}
