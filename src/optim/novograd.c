/* NovoGrad (timm's NvNovoGrad): a per-layer second moment v = b2*v + (1-b2)*|g|^2 (v =
 * |g|^2 while v is 0), the gradient divided by sqrt(v) + eps (the AMSGrad maximum of v
 * with amsgrad), plus wd*p, times 1-b1 with grad_averaging, into m = b1*m + g;
 * p -= lr * m. Steps tensor by tensor: |g|^2 is summed in torch's order (torch.sum's
 * cascade of 8-lane vectors), bit-exact against torch on one thread (with more,
 * torch splits sums over 32768 elements among them). Stochastic Gradient Methods with
 * Layer-wise Adaptive Moments, https://arxiv.org/abs/1905.11286 */
#include "optim_internal.h"

static const ow_key novograd_keys[] = {
    OW__KEY_NUM("lr", "0.001", "learning rate"),
    OW__KEY_BETAS("[0.95, 0.98]"),
    {.name = "eps",
     .type = OW_T_FLOAT,
     .def = "1e-08",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "added to the denominator"},
    OW__KEY_NUM("weight_decay", "0.0",
                "weight decay (wd*p added to the normalised gradient)"),
    OW__KEY_BOOL("grad_averaging", "false", "scale the gradient by 1-beta1"),
    OW__KEY_BOOL("amsgrad", "false", "maximum of the past second moments"),
    {0},
};

enum { P_LR, P_BETAS, P_EPS, P_WD, P_AVERAGING, P_AMSGRAD, NP };
static const char *const novograd_params[NP + 1] = {[P_LR] = "lr",
                                                    [P_BETAS] = "betas",
                                                    [P_EPS] = "eps",
                                                    [P_WD] = "weight_decay",
                                                    [P_AVERAGING] = "grad_averaging",
                                                    [P_AMSGRAD] = "amsgrad"};

typedef struct novograd_ctx {
    float b1, omb1, b2, omb2, eps, wd, nlr;
    bool has_wd, averaging, amsgrad;
} novograd_ctx;

enum { S_STEP, S_EXP_AVG, S_EXP_AVG_SQ, S_MAX_EXP_AVG_SQ };
static const ow_slot novograd_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_EXP_AVG] = {.name = "exp_avg"},
    /* float32 0-d tensors */
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq",
                      .flags = OW_SLOT_SCALAR,
                      .dtype = OW_DTYPE_F32},
    [S_MAX_EXP_AVG_SQ] = {.name = "max_exp_avg_sq",
                          .flags = OW_SLOT_SCALAR,
                          .dtype = OW_DTYPE_F32},
    {0},
};

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    if (slot == S_MAX_EXP_AVG_SQ && !ow__hp_true(&hp[P_AMSGRAD]))
        return -1;
    if (slot == S_STEP || slot == S_EXP_AVG_SQ || slot == S_MAX_EXP_AVG_SQ)
        return 0;
    for (int i = 0; i < ndim; i++) /* exp_avg (and a composite's slots after ours) */
        out[i] = shape[i];
    return ndim;
}

static void prepare(ow_prepare_args *a)
{
    novograd_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double b1 = hp[P_BETAS].v[0], b2 = hp[P_BETAS].v[1], wd = hp[P_WD].v[0];
    a->scalars[S_STEP] += 1;
    c->b1 = ow__f(b1);
    c->omb1 = ow__f(1 - b1);
    c->b2 = ow__f(b2);
    c->omb2 = ow__f(1 - b2);
    c->eps = ow__f(hp[P_EPS].v[0]);
    c->has_wd = wd != 0;
    c->wd = ow__f(wd);
    c->averaging = ow__hp_true(&hp[P_AVERAGING]);
    c->amsgrad = ow__hp_true(&hp[P_AMSGRAD]);
    c->nlr = ow__f(-a->lr);
}

/* multi_row_sum of torch's SumKernel over squares: rows of `width` lanes (lane k of
 * row i is g[i * row_len + k]) summed into four levels of accumulators that cascade
 * every 2**level_power rows. */
static void cascade_rows(const float *g, size_t rows, size_t row_len, size_t width,
                         float *out)
{
    enum { LEVELS = 4 };
    float acc[LEVELS][8] = {{0}};
    size_t bits = 0;
    while (((size_t)1 << bits) < rows)
        bits++;
    size_t power = bits / LEVELS > 4 ? bits / LEVELS : 4, step = (size_t)1 << power;
    size_t mask = step - 1, i = 0;
    while (i + step <= rows) {
        for (size_t j = 0; j < step; j++, i++)
            for (size_t k = 0; k < width; k++)
                acc[0][k] = acc[0][k] + g[i * row_len + k] * g[i * row_len + k];
        for (size_t j = 1; j < LEVELS; j++) {
            for (size_t k = 0; k < width; k++) {
                acc[j][k] = acc[j][k] + acc[j - 1][k];
                acc[j - 1][k] = 0;
            }
            if (i & (mask << (j * power)))
                break;
        }
    }
    for (; i < rows; i++)
        for (size_t k = 0; k < width; k++)
            acc[0][k] = acc[0][k] + g[i * row_len + k] * g[i * row_len + k];
    for (size_t j = 1; j < LEVELS; j++)
        for (size_t k = 0; k < width; k++)
            acc[0][k] = acc[0][k] + acc[j][k];
    for (size_t k = 0; k < width; k++)
        out[k] = acc[0][k];
}

/* torch.sum(torch.pow(grad, 2)) on CPU for a contiguous float32 tensor of n < 32768
 * elements (single-threaded; pow(x, 2) rounds x*x): under 8 elements, 4 scalar lanes;
 * else vectors of 8 in 4 interleaved accumulators (row_sum over vectors), then the
 * scalar tail first and the 8 lanes after it, in order. */
static float torch_sum_sq(const float *g, size_t n)
{
    if (n < 8) {
        float part[4] = {0};
        size_t rows = n / 4;
        cascade_rows(g, rows, 4, 4, part);
        for (size_t i = rows * 4; i < n; i++)
            part[0] = part[0] + g[i] * g[i];
        return ((part[0] + part[1]) + part[2]) + part[3];
    }
    size_t vecs = n / 8, rows = vecs / 4;
    float part[4][8];
    for (size_t j = 0; j < 4; j++) /* vector j of each row of 4 vectors */
        cascade_rows(g + j * 8, rows, 32, 8, part[j]);
    for (size_t v = rows * 4; v < vecs; v++)
        for (size_t k = 0; k < 8; k++)
            part[0][k] = part[0][k] + g[v * 8 + k] * g[v * 8 + k];
    for (size_t j = 1; j < 4; j++)
        for (size_t k = 0; k < 8; k++)
            part[0][k] = part[0][k] + part[j][k];
    float s = 0;
    for (size_t i = vecs * 8; i < n; i++)
        s = s + g[i] * g[i];
    for (size_t k = 0; k < 8; k++)
        s = s + part[0][k];
    return s;
}

typedef struct novograd_job {
    const novograd_ctx *c;
    float *p, *m;
    const float *g;
    float denom;
} novograd_job;

static void update_range(const void *arg, size_t lo, size_t hi)
{
    const novograd_job *j = arg;
    const novograd_ctx *c = j->c;
    for (size_t i = lo; i < hi; i++) {
        float g = j->g[i] / j->denom; /* grad.div_(denom) */
        if (c->has_wd)
            g = fmaf(c->wd, j->p[i], g); /* grad.add_(p, alpha=wd) */
        if (c->averaging)
            g = g * c->omb1;
        j->m[i] = j->m[i] * c->b1 + g;            /* exp_avg.mul_(b1).add_(grad) */
        j->p[i] = fmaf(c->nlr, j->m[i], j->p[i]); /* p.add_(exp_avg, alpha=-lr) */
    }
}

static void step_tensor(const ow_tensor_args *a)
{
    const novograd_ctx *c = a->ctx;
    float norm = torch_sum_sq(a->g, a->numel);
    float v = (float)a->scalars[S_EXP_AVG_SQ];
    if (v == 0)
        v = norm; /* exp_avg_sq.copy_(norm) */
    else
        v = fmaf(c->omb2, norm, v * c->b2); /* exp_avg_sq.mul_(b2).add_(norm, 1-b2) */
    a->scalars[S_EXP_AVG_SQ] = v;
    if (c->amsgrad) {
        float vm = (float)a->scalars[S_MAX_EXP_AVG_SQ];
        v = vm = v > vm ? v : vm; /* torch.max(max_exp_avg_sq, exp_avg_sq) */
        a->scalars[S_MAX_EXP_AVG_SQ] = vm;
    }
    novograd_job j = {.c = c, .p = a->p, .m = a->s[S_EXP_AVG], .g = a->g};
    j.denom = sqrtf(v) + c->eps; /* exp_avg_sq.sqrt().add_(eps) */
    ow__parallel_range(update_range, &j, a->numel, a->ref ? 1 : a->threads);
}

static const ow_optimizer_ops novograd_ops = {.abi_version = OW_ABI_VERSION,
                                              .slots = novograd_slots,
                                              .params = novograd_params,
                                              .ctx_size = sizeof(novograd_ctx),
                                              .prepare = prepare,
                                              .slot_shape = slot_shape,
                                              .tensor_step = step_tensor};

OW__OPTIMIZER_ENTRY(ow__optimizer_timm_novograd, "novograd", "timm", novograd_keys,
                    novograd_ops,
                    "timm NvNovoGrad: layer-wise second moment of the gradient norm");
