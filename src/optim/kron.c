/* Kron (timm's kron.py: PSGD with a Kronecker-factored preconditioner, after
 * lixilinx/psgd_torch and evanatyourservice/kron_torch). Each dim i of a parameter has
 * a factor Q_i: upper triangular (d x d) or, when the dim is 1, larger than
 * max_size_triangular, the tensor has fewer than min_ndim_triangular dims or
 * memory_save_mode says so, diagonal (a vector). Every step the momentum is
 * preconditioned by the Q_i^T Q_i along each dim; while the update probability allows
 * (1 for the first 500 steps), the Q_i move toward whitening the momentum against a
 * probe V ~ N(0, 1) (a->rand), and with probability 0.01 (python's random.random(),
 * a->rand_scalar) they are rebalanced. Products run in float32 with sums in a fixed
 * order (matmul.c); torch's einsum and LAPACK sum in theirs, so Kron is held to a
 * relative error. The state file keeps the list Q as slots Q.0, Q.1, ... */
#include "optim_internal.h"

#include "matmul.h"

#include <string.h>

#define KRON_KEYS(decoupled, corrected)                                                  \
    OW__KEY_NUM("lr", "0.001", "learning rate"),                                         \
        {.name = "momentum",                                                             \
         .type = OW_T_NUMBER,                                                            \
         .def = "0.9",                                                                   \
         .min = 0,                                                                       \
         .max = 1,                                                                       \
         .flags = OW_KEY_RANGE | OW_KEY_MAX_OPEN,                                        \
         .doc = "momentum of the gradient"},                                             \
        OW__KEY_NUM("weight_decay", "0.0", "weight decay (L2, or decoupled)"),           \
        {.name = "preconditioner_update_probability",                                    \
         .type = OW_T_NUMBER,                                                            \
         .def = "null",                                                                  \
         .min = 0,                                                                       \
         .max = 1,                                                                       \
         .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN | OW_KEY_NULLABLE,                      \
         .doc = "update Q every 1/p steps (null: 1 until step 500, then annealed to "    \
                "0.03)"},                                                                \
        {.name = "max_size_triangular",                                                  \
         .type = OW_T_INT,                                                               \
         .def = "2048",                                                                  \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "dims larger than this get a diagonal factor"},                          \
        {.name = "min_ndim_triangular",                                                  \
         .type = OW_T_INT,                                                               \
         .def = "2",                                                                     \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "tensors with fewer dims get diagonal factors only"},                    \
        {.name = "memory_save_mode",                                                     \
         .type = OW_T_STRING,                                                            \
         .def = "null",                                                                  \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "null, one_diag, smart_one_diag or all_diag: which dims are diagonal"},  \
        OW__KEY_BOOL("momentum_into_precond_update", "true",                             \
                     "fit Q to the momentum (false: to the gradient)"),                  \
        OW__KEY_ANYNUM("precond_lr", "0.1", "step size of the Q update"),                \
        OW__KEY_ANYNUM("precond_init_scale", "1.0", "initial scale of Q"),               \
        {.name = "mu_dtype",                                                             \
         .type = OW_T_STRING,                                                            \
         .def = "null",                                                                  \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "momentum dtype: only null (float32)"},                                  \
        {.name = "precond_dtype",                                                        \
         .type = OW_T_STRING,                                                            \
         .def = "null",                                                                  \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "preconditioner dtype: only null or float32"},                           \
        OW__KEY_BOOL("decoupled_decay", decoupled, "decay p *= 1 - lr*wd (else L2)"),    \
        OW__KEY_BOOL("corrected_weight_decay", corrected,                                \
                     "decoupled decay scaled by lr**2/max_lr"),                          \
        OW__KEY_BOOL("flatten", "false", "flatten dims start..end before factoring"),    \
        OW__KEY_ANYNUM("flatten_start_dim", "2", "first dim flattened"),                 \
        OW__KEY_ANYNUM("flatten_end_dim", "-1", "last dim flattened"),                   \
        OW__KEY_BOOL("stochastic_weight_decay", "false",                                 \
                     "weight decay times 2*random.random()"),                            \
        OW__KEY_BOOL("deterministic", "false",                                           \
                     "constructor argument: true (per-step torch generators seeded "     \
                     "from the python rng) is not supported"),                           \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key kron_keys[] = {KRON_KEYS("false", "false")};
static const ow_key kronw_keys[] = {KRON_KEYS("true", "false")};
static const ow_key kronc_keys[] = {KRON_KEYS("true", "true")};

enum {
    P_LR,
    P_MOMENTUM,
    P_WD,
    P_PROB,
    P_MAX_TRI,
    P_MIN_NDIM,
    P_MEMORY,
    P_MOM_INTO,
    P_PRECOND_LR,
    P_INIT_SCALE,
    P_MU_DTYPE,
    P_PRECOND_DTYPE,
    P_DECOUPLED,
    P_CORRECTED,
    P_FLATTEN,
    P_FLAT_START,
    P_FLAT_END,
    P_STOCHASTIC_WD,
    P_DETERMINISTIC,
    NP
};
static const char *const kron_params[NP + 1] = {
    [P_LR] = "lr",
    [P_MOMENTUM] = "momentum",
    [P_WD] = "weight_decay",
    [P_PROB] = "preconditioner_update_probability",
    [P_MAX_TRI] = "max_size_triangular",
    [P_MIN_NDIM] = "min_ndim_triangular",
    [P_MEMORY] = "memory_save_mode",
    [P_MOM_INTO] = "momentum_into_precond_update",
    [P_PRECOND_LR] = "precond_lr",
    [P_INIT_SCALE] = "precond_init_scale",
    [P_MU_DTYPE] = "mu_dtype",
    [P_PRECOND_DTYPE] = "precond_dtype",
    [P_DECOUPLED] = "decoupled_decay",
    [P_CORRECTED] = "corrected_weight_decay",
    [P_FLATTEN] = "flatten",
    [P_FLAT_START] = "flatten_start_dim",
    [P_FLAT_END] = "flatten_end_dim",
    [P_STOCHASTIC_WD] = "stochastic_weight_decay",
    [P_DETERMINISTIC] = "deterministic",
};

#define MAX_Q OW_MAX_DIMS
enum { S_STEP, S_COUNTER, S_MOMENTUM, S_Q0 };
static const ow_slot kron_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [S_COUNTER] = OW__SLOT_COUNTER("update_counter", OW_DTYPE_I64),
    [S_MOMENTUM] = {.name = "momentum_buffer"},
    {.name = "Q.0"},
    {.name = "Q.1"},
    {.name = "Q.2"},
    {.name = "Q.3"},
    {.name = "Q.4"},
    {.name = "Q.5"},
    {.name = "Q.6"},
    {.name = "Q.7"},
    {0},
};

static bool is_null(const ow_hparam *h)
{
    return h->absent || h->is_null;
}

static bool check(const ow_hparam *hp, char *msg, size_t n)
{
    const char *mem = hp[P_MEMORY].s;
    if (!is_null(&hp[P_MEMORY]) &&
        (!mem || (strcmp(mem, "one_diag") && strcmp(mem, "smart_one_diag") &&
                  strcmp(mem, "all_diag")))) {
        snprintf(msg, n,
                 "memory_save_mode must be null, one_diag, smart_one_diag or "
                 "all_diag");
        return false;
    }
    if (!is_null(&hp[P_MU_DTYPE])) {
        snprintf(msg, n, "mu_dtype: only null (the gradient's float32) is supported");
        return false;
    }
    const char *pd = hp[P_PRECOND_DTYPE].s;
    if (!is_null(&hp[P_PRECOND_DTYPE]) && (!pd || strcmp(pd, "float32"))) {
        snprintf(msg, n, "precond_dtype: only null or float32 is supported");
        return false;
    }
    if (ow__hp_true(&hp[P_DETERMINISTIC])) {
        snprintf(msg, n,
                 "deterministic: true (torch generators seeded per step from "
                 "the python rng) is not supported");
        return false;
    }
    return true;
}

/* A flatten dim as an int: past +-(OW_MAX_DIMS + 1) every shape flattens the same */
static int dim_of(double v)
{
    const double lim = OW_MAX_DIMS + 1;
    return v > lim ? (int)lim : v < -lim ? -(int)lim : v == v ? (int)v : 0;
}

/* What decides the factored shape and the diagonal dims. */
enum { MEM_NONE, MEM_ONE, MEM_SMART, MEM_ALL };
typedef struct kron_geom {
    bool flatten;
    int start, end, mem;
    double max_tri, min_ndim;
} kron_geom;

static kron_geom geom_of(const ow_hparam *hp)
{
    kron_geom k = {.flatten = ow__hp_true(&hp[P_FLATTEN]),
                   .start = dim_of(hp[P_FLAT_START].v[0]),
                   .end = dim_of(hp[P_FLAT_END].v[0]),
                   .max_tri = hp[P_MAX_TRI].v[0],
                   .min_ndim = hp[P_MIN_NDIM].v[0]};
    const char *mem = is_null(&hp[P_MEMORY]) ? NULL : hp[P_MEMORY].s;
    k.mem = !mem                             ? MEM_NONE
            : !strcmp(mem, "one_diag")       ? MEM_ONE
            : !strcmp(mem, "smart_one_diag") ? MEM_SMART
                                             : MEM_ALL;
    return k;
}

/* The shape Kron factors: timm's safe_flatten(grad, start, end) when flatten. */
static int factored_shape(const kron_geom *k, int ndim, const int64_t *shape,
                          int64_t *out)
{
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    if (!k->flatten)
        return ndim;
    int start = k->start, end = k->end >= 0 ? k->end : ndim + k->end;
    end = end < ndim - 1 ? end : ndim - 1;
    if (ndim <= start || start > end || start < 0)
        return ndim;
    int64_t m = 1;
    for (int d = start; d <= end; d++)
        m *= shape[d];
    out[start] = m;
    for (int d = end + 1; d < ndim; d++)
        out[start + 1 + d - end - 1] = shape[d];
    return ndim - (end - start);
}

/* Which dims get a diagonal factor (timm's _init_Q_exprs). */
static void diag_dims(const kron_geom *k, int nd, const int64_t *sh, bool *diag)
{
    int big = 0; /* np.argsort(shape)[::-1][0]: the last of the largest */
    for (int i = 1; i < nd; i++)
        if (sh[i] >= sh[big])
            big = i;
    bool unique = true;
    for (int i = 0; i < nd; i++)
        if (i != big && sh[i] == sh[big])
            unique = false;
    for (int i = 0; i < nd; i++) {
        bool d = k->mem == MEM_ALL ||
                 (i == big &&
                  (k->mem == MEM_ONE || (k->mem == MEM_SMART && nd >= 2 && unique)));
        diag[i] =
            sh[i] == 1 || (double)sh[i] > k->max_tri || (double)nd < k->min_ndim || d;
    }
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    int64_t sh[OW_MAX_DIMS];
    kron_geom k = geom_of(hp);
    int nd = factored_shape(&k, ndim, shape, sh);
    if (slot == S_STEP || slot == S_COUNTER)
        return 0;
    if (slot == S_MOMENTUM) {
        memcpy(out, sh, (size_t)nd * sizeof *out);
        return nd;
    }
    int q = slot - S_Q0;
    if (nd == 0) /* a 0-d parameter: one 0-d factor */
        return q == 0 ? 0 : -1;
    if (q >= nd)
        return -1;
    bool diag[OW_MAX_DIMS];
    diag_dims(&k, nd, sh, diag);
    out[0] = out[1] = sh[q];
    return diag[q] ? 1 : 2;
}

typedef struct kron_ctx {
    double lr, momentum, wd, wd_scale, prob, precond_lr, init_scale;
    bool scheduled, decoupled, stochastic, into;
    kron_geom geom;
} kron_ctx;

static void prepare(ow_prepare_args *a)
{
    kron_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    memset(c, 0, sizeof *c);
    c->lr = a->lr;
    c->momentum = hp[P_MOMENTUM].v[0];
    c->wd = hp[P_WD].v[0];
    c->decoupled = ow__hp_true(&hp[P_DECOUPLED]);
    c->wd_scale =
        ow__hp_true(&hp[P_CORRECTED]) ? a->lr * a->lr / a->defaults[P_LR].v[0] : a->lr;
    c->scheduled = is_null(&hp[P_PROB]);
    c->prob = c->scheduled ? 0 : hp[P_PROB].v[0];
    c->precond_lr = hp[P_PRECOND_LR].v[0];
    c->init_scale = hp[P_INIT_SCALE].v[0];
    c->stochastic = ow__hp_true(&hp[P_STOCHASTIC_WD]);
    c->into = ow__hp_true(&hp[P_MOM_INTO]);
    c->geom = geom_of(hp);
}

/* ---- tensor algebra along one dim of a row-major tensor (pre, d, post) ---------- */

typedef struct dims {
    int nd;
    int64_t sh[OW_MAX_DIMS];
    size_t numel;
} dims;

static void split(const dims *t, int i, size_t *pre, size_t *post)
{
    *pre = *post = 1;
    for (int k = 0; k < i; k++)
        *pre *= (size_t)t->sh[k];
    for (int k = i + 1; k < t->nd; k++)
        *post *= (size_t)t->sh[k];
}

/* y = x x_i M (y[p, a, q] = sum_b M[a, b] x[p, b, q]; M^T when tm); diag: M is a
 * vector v, y[p, a, q] = v[a] x[p, a, q]. y may not alias x unless diag. */
static void mode_mul(const dims *t, int i, const float *m, bool diag, bool tm,
                     const float *x, float *y, int threads, bool ref)
{
    size_t pre, post, d = (size_t)t->sh[i];
    split(t, i, &pre, &post);
    if (!diag && !ref && post == 1) { /* the pre products as one: Y = X op(M)^T, the same
                                       * sums in the same order */
        ow__sgemm((int64_t)pre, (int64_t)d, (int64_t)d, 1.0f, x, (int64_t)d, false, m,
                  (int64_t)d, !tm, 0.0f, y, (int64_t)d, threads);
        return;
    }
    for (size_t p = 0; p < pre; p++) {
        const float *xp = x + p * d * post;
        float *yp = y + p * d * post;
        if (diag) {
            for (size_t a = 0; a < d; a++)
                for (size_t q = 0; q < post; q++)
                    yp[a * post + q] = m[a] * xp[a * post + q];
        } else if (ref) {
            ow__sgemm_ref((int64_t)d, (int64_t)post, (int64_t)d, 1.0f, m, (int64_t)d, tm,
                          xp, (int64_t)post, false, 0.0f, yp, (int64_t)post);
        } else {
            ow__sgemm((int64_t)d, (int64_t)post, (int64_t)d, 1.0f, m, (int64_t)d, tm, xp,
                      (int64_t)post, false, 0.0f, yp, (int64_t)post, threads);
        }
    }
}

/* out = x_(i) x_(i)^T (d x d), or its diagonal (d) when diag */
static void gram(const dims *t, int i, const float *x, bool diag, float *out, int threads,
                 bool ref)
{
    size_t pre, post, d = (size_t)t->sh[i];
    split(t, i, &pre, &post);
    if (diag) {
        for (size_t a = 0; a < d; a++) {
            float s = 0;
            for (size_t p = 0; p < pre; p++)
                for (size_t q = 0; q < post; q++) {
                    float v = x[(p * d + a) * post + q];
                    s += v * v;
                }
            out[a] = s;
        }
        return;
    }
    if (!ref && post == 1) { /* X^T X in one product: out adds p in order either way */
        ow__sgemm((int64_t)d, (int64_t)d, (int64_t)pre, 1.0f, x, (int64_t)d, true, x,
                  (int64_t)d, false, 0.0f, out, (int64_t)d, threads);
        return;
    }
    for (size_t p = 0; p < pre; p++) {
        const float *xp = x + p * d * post;
        float beta = p ? 1.0f : 0.0f;
        if (ref)
            ow__sgemm_ref((int64_t)d, (int64_t)d, (int64_t)post, 1.0f, xp, (int64_t)post,
                          false, xp, (int64_t)post, true, beta, out, (int64_t)d);
        else
            ow__sgemm((int64_t)d, (int64_t)d, (int64_t)post, 1.0f, xp, (int64_t)post,
                      false, xp, (int64_t)post, true, beta, out, (int64_t)d, threads);
    }
}

/* x = x x_i inv(Q)^T in place: every fiber v along dim i becomes v inv(Q) (Q upper
 * triangular, solve_triangular(left=False)); diag: v / q */
static void solve_right(const dims *t, int i, const float *q, bool diag, float *x)
{
    size_t pre, post, d = (size_t)t->sh[i];
    split(t, i, &pre, &post);
    for (size_t p = 0; p < pre; p++)
        for (size_t r = 0; r < post; r++) {
            float *v = x + p * d * post + r;
            if (diag) {
                for (size_t a = 0; a < d; a++)
                    v[a * post] = v[a * post] / q[a];
                continue;
            }
            for (size_t j = 0; j < d; j++) {
                float s = v[j * post];
                for (size_t k = 0; k < j; k++)
                    s -= q[k * d + j] * v[k * post];
                v[j * post] = s / q[j * d + j];
            }
        }
}

/* timm's _norm_lower_bound of a symmetric d x d matrix: a cheap lower bound of its
 * spectral norm (w: 2d floats of scratch) */
static float norm_lower_bound(const float *a, size_t d, float *w)
{
    float mx = 0;
    for (size_t i = 0; i < d * d; i++)
        mx = fabsf(a[i]) > mx ? fabsf(a[i]) : mx;
    if (!(mx > 0))
        return mx;
    float *x = w, *y = w + d;
    /* column sums and row sums of (A / max)^2: the largest of each */
    size_t ci = 0, rj = 0;
    float c0 = -1, r0 = -1;
    for (size_t k = 0; k < d; k++) {
        float sc = 0, sr = 0;
        for (size_t l = 0; l < d; l++) {
            float u = a[l * d + k] / mx, v = a[k * d + l] / mx;
            sc += u * u;
            sr += v * v;
        }
        if (sc > c0) {
            c0 = sc;
            ci = k;
        }
        if (sr > r0) {
            r0 = sr;
            rj = k;
        }
    }
    bool by_col = c0 > r0;
    for (size_t c = 0; c < d; c++) { /* x = A[:, i] @ A, or A @ A[j] */
        float s = 0;
        for (size_t r = 0; r < d; r++)
            s += by_col ? (a[r * d + ci] / mx) * (a[r * d + c] / mx)
                        : (a[c * d + r] / mx) * (a[rj * d + r] / mx);
        x[c] = s;
    }
    float nx = 0;
    for (size_t c = 0; c < d; c++)
        nx += x[c] * x[c];
    nx = sqrtf(nx);
    for (size_t c = 0; c < d; c++) /* (x / |x|) @ A^H, or A^H @ (x / |x|) */ {
        float s = 0;
        for (size_t r = 0; r < d; r++)
            s += by_col ? (x[r] / nx) * (a[c * d + r] / mx)
                        : (a[r * d + c] / mx) * (x[r] / nx);
        y[c] = s;
    }
    float ny = 0;
    for (size_t c = 0; c < d; c++)
        ny += y[c] * y[c];
    return mx * sqrtf(ny);
}

#define TINY 1.17549435e-38f /* torch.finfo(torch.bfloat16).tiny */

/* Scratch sizes: the largest dim (a diagonal term) and the largest triangular one. */
typedef struct kron_sizes {
    size_t dmax, tmax;
} kron_sizes;

static kron_sizes sizes_of(const kron_geom *k, int nd, const int64_t *sh)
{
    bool diag[OW_MAX_DIMS];
    kron_sizes z = {1, 1};
    diag_dims(k, nd, sh, diag);
    for (int i = 0; i < nd; i++) {
        size_t d = (size_t)sh[i];
        z.dmax = d > z.dmax ? d : z.dmax;
        if (!diag[i])
            z.tmax = d > z.tmax ? d : z.tmax;
    }
    return z;
}

/* the d x d (or d) terms of one dim */
static size_t term_floats(kron_sizes z)
{
    return z.tmax * z.tmax > z.dmax ? z.tmax * z.tmax : z.dmax;
}

/* Bytes of scratch: five tensors (debiased momentum, A, conjB, a product, the
 * preconditioned gradient), four terms and two vectors. */
static size_t scratch_bytes(const ow_hparam *hp, int ndim, const int64_t *shape)
{
    int64_t sh[OW_MAX_DIMS];
    kron_geom k = geom_of(hp);
    int nd = factored_shape(&k, ndim, shape, sh);
    size_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= (size_t)sh[i];
    kron_sizes z = sizes_of(&k, nd, sh);
    return (5 * n + 5 * term_floats(z) + 2 * z.tmax + 64) * sizeof(float);
}

static void init_q(const dims *t, const bool *diag, float *const *q, double scale)
{
    float s = ow__f(t->nd ? pow(scale, 1.0 / t->nd) : scale);
    if (t->nd == 0) {
        q[0][0] = s;
        return;
    }
    for (int i = 0; i < t->nd; i++) {
        size_t d = (size_t)t->sh[i];
        if (diag[i]) {
            for (size_t a = 0; a < d; a++)
                q[i][a] = s;
        } else {
            for (size_t a = 0; a < d * d; a++)
                q[i][a] = a % (d + 1) == 0 ? s : 0.0f;
        }
    }
}

/* timm's precond_update_prob_schedule(step) in float32: clamp(exp(-0.001 * (n -
 * 500)), 0.03, 1) */
static float scheduled_prob(double step)
{
    float x = ow__f(-0.001) * ((float)step - 500.0f);
    float pr = expf(x);
    return pr < 0.03f ? 0.03f : pr > 1.0f ? 1.0f : pr;
}

/* One Q update (the loop over Q in Kron.step): A = G x_i Q_i, conjB = V x_i
 * inv(Q_i)^T, then per dim the two Gram terms and the step on Q_i. */
static void update_q(const ow_tensor_args *a, const kron_ctx *c, const dims *t,
                     const bool *diag, float *const *q, const float *gsrc, float *buf)
{
    size_t n = t->numel, tf = term_floats(sizes_of(&c->geom, t->nd, t->sh));
    float *A = buf, *B = A + n, *tmp = B + n, *t1 = tmp + n, *t2 = t1 + tf, *u = t2 + tf,
          *v = u + tf, *w = v + tf;
    a->rand(a, OW_RNG_NORMAL, B, n); /* V = torch.randn(shape) */
    memcpy(A, gsrc, n * sizeof *A);
    for (int i = 0; i < t->nd; i++) { /* A = einsum(exprA, *Q, G) */
        mode_mul(t, i, q[i], diag[i], false, A, diag[i] ? A : tmp, a->threads, a->ref);
        if (!diag[i])
            memcpy(A, tmp, n * sizeof *A);
        solve_right(t, i, q[i], diag[i], B); /* conjB */
    }
    const float plr = ow__f(c->precond_lr);
    for (int i = 0; i < t->nd; i++) {
        size_t d = (size_t)t->sh[i];
        gram(t, i, A, diag[i], t1, a->threads, a->ref);
        gram(t, i, B, diag[i], t2, a->threads, a->ref);
        if (diag[i]) { /* tmp = (t1 - t2) * plr * q / (|t1 + t2|_inf + tiny) */
            float mx = 0;
            for (size_t k = 0; k < d; k++) {
                float s = fabsf(t1[k] + t2[k]);
                mx = s > mx ? s : mx;
            }
            float den = mx + TINY;
            for (size_t k = 0; k < d; k++)
                q[i][k] = q[i][k] - (t1[k] - t2[k]) * plr * q[i][k] / den;
            continue;
        }
        for (size_t k = 0; k < d * d; k++) {
            u[k] = (t1[k] - t2[k]) * plr;
            t1[k] = t1[k] + t2[k];
        }
        for (size_t r = 0; r < d; r++) /* triu */
            for (size_t k = 0; k < r; k++)
                u[r * d + k] = 0.0f;
        float den = norm_lower_bound(t1, d, w) + TINY;
        for (size_t k = 0; k < d * d; k++)
            u[k] = u[k] / den;
        if (a->ref) /* tmp @= q */
            ow__sgemm_ref((int64_t)d, (int64_t)d, (int64_t)d, 1.0f, u, (int64_t)d, false,
                          q[i], (int64_t)d, false, 0.0f, v, (int64_t)d);
        else
            ow__sgemm((int64_t)d, (int64_t)d, (int64_t)d, 1.0f, u, (int64_t)d, false,
                      q[i], (int64_t)d, false, 0.0f, v, (int64_t)d, a->threads);
        for (size_t k = 0; k < d * d; k++)
            q[i][k] = q[i][k] - v[k];
    }
}

/* timm's _balance_Q: every factor scaled to the geometric mean of their max norms */
static void balance(const dims *t, const bool *diag, float *const *q)
{
    float norms[MAX_Q], prod = 1.0f;
    for (int i = 0; i < t->nd; i++) {
        size_t m = diag[i] ? (size_t)t->sh[i] : (size_t)(t->sh[i] * t->sh[i]);
        float mx = 0;
        for (size_t k = 0; k < m; k++)
            mx = fabsf(q[i][k]) > mx ? fabsf(q[i][k]) : mx;
        norms[i] = mx;
        prod *= mx;
    }
    float gm = powf(prod, ow__f(1.0 / t->nd));
    for (int i = 0; i < t->nd; i++) {
        size_t m = diag[i] ? (size_t)t->sh[i] : (size_t)(t->sh[i] * t->sh[i]);
        float f = gm / norms[i];
        for (size_t k = 0; k < m; k++)
            q[i][k] = q[i][k] * f;
    }
}

static void kron_step(const ow_tensor_args *a)
{
    const kron_ctx *c = a->ctx;
    size_t n = a->numel;
    float *p = a->p, *mom = a->s[S_MOMENTUM];
    const float *g = a->g;
    float *const *q = a->s + S_Q0;
    dims t = {.numel = n};
    t.nd = factored_shape(&c->geom, a->ndim, a->shape, t.sh);
    bool diag[OW_MAX_DIMS];
    if (t.nd == 0) { /* a 0-d parameter: one factor of one element */
        t.nd = 1;
        t.sh[0] = 1;
    }
    diag_dims(&c->geom, t.nd, t.sh, diag);
    double step = a->scalars[S_STEP];
    if (step == 0)
        init_q(&t, diag, q, c->init_scale);
    /* update_counter += 1; do_update = counter >= 1 / prob */
    double counter = a->scalars[S_COUNTER] += 1;
    bool update = c->scheduled ? (float)counter >= 1.0f / scheduled_prob(step)
                               : counter >= 1.0 / c->prob;
    if (update)
        a->scalars[S_COUNTER] = 0;
    step = a->scalars[S_STEP] = step + 1;
    float *buf = a->scratch, *deb = buf, *work = buf + n;
    const float m = ow__f(c->momentum), omm = ow__f(1 - c->momentum),
                bc = ow__f(1 - pow(c->momentum, step));
    for (size_t i = 0; i < n; i++) {
        mom[i] = fmaf(omm, g[i], mom[i] * m); /* mul_(momentum).add_(grad, 1-momentum) */
        deb[i] = mom[i] / bc;                 /* momentum_buffer / bias_correction */
    }
    /* balance = rng.random() < 0.01 and do_update: the draw is taken every step */
    bool bal = a->rand_scalar(a) < 0.01 && update;
    if (a->ndim > 1 && bal)
        balance(&t, diag, q);
    if (update)
        update_q(a, c, &t, diag, q, c->into ? deb : g, work);
    /* pre_grad = einsum(exprP, *conj(Q), *Q, G): G x_i (Q_i^T Q_i) */
    float *pre = work, *tmp = work + n, *qq = tmp + n;
    memcpy(pre, deb, n * sizeof *pre);
    for (int i = 0; i < t.nd; i++) {
        size_t d = (size_t)t.sh[i];
        if (diag[i]) {
            for (size_t k = 0; k < d; k++)
                qq[k] = q[i][k] * q[i][k];
            mode_mul(&t, i, qq, true, false, pre, pre, a->threads, a->ref);
            continue;
        }
        if (a->ref)
            ow__sgemm_ref((int64_t)d, (int64_t)d, (int64_t)d, 1.0f, q[i], (int64_t)d,
                          true, q[i], (int64_t)d, false, 0.0f, qq, (int64_t)d);
        else
            ow__sgemm((int64_t)d, (int64_t)d, (int64_t)d, 1.0f, q[i], (int64_t)d, true,
                      q[i], (int64_t)d, false, 0.0f, qq, (int64_t)d, a->threads);
        mode_mul(&t, i, qq, false, false, pre, tmp, a->threads, a->ref);
        memcpy(pre, tmp, n * sizeof *pre);
    }
    /* pre_grad *= clamp(1.1 / (sqrt(mean(pre^2)) + 1e-8), max=1) */
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (double)pre[i] * pre[i];
    float rms = sqrtf((float)(ss / (double)n));
    float f = ow__f(1.1) / (rms + ow__f(1e-8));
    f = f > 1.0f ? 1.0f : f;
    for (size_t i = 0; i < n; i++)
        pre[i] = pre[i] * f;
    if (c->wd != 0) {
        double wd = c->wd;
        if (c->stochastic)
            wd = 2 * a->rand_scalar(a) * wd;
        if (c->decoupled) {
            const float keep = ow__f(1. - c->wd_scale * wd);
            for (size_t i = 0; i < n; i++)
                p[i] = p[i] * keep;
        } else {
            const float w = ow__f(wd);
            for (size_t i = 0; i < n; i++)
                pre[i] = fmaf(w, p[i], pre[i]); /* pre_grad.add_(p, alpha=wd) */
        }
    }
    const float nlr = ow__f(-c->lr);
    for (size_t i = 0; i < n; i++)
        p[i] = fmaf(nlr, pre[i], p[i]);
}

static const ow_optimizer_ops kron_ops = {
    .abi_version = OW_ABI_VERSION,
    .slots = kron_slots,
    .params = kron_params,
    .ctx_size = sizeof(kron_ctx),
    .check = check,
    .prepare = prepare,
    .slot_shape = slot_shape,
    .tensor_step = kron_step,
    .scratch_bytes = scratch_bytes,
    .needs = OW_NEEDS_RNG,
};

OW__OPTIMIZER_ENTRY(
    ow__optimizer_timm_kron, "kron", "timm", kron_keys, kron_ops,
    "timm Kron: PSGD, Kronecker-factored preconditioner (probes from rand)");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_kronw, "kronw", "timm", kronw_keys, kron_ops,
                    "timm Kron, decoupled weight decay");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_kronc, "kronc", "timm", kronc_keys, kron_ops,
                    "timm Kron, corrected decoupled weight decay (lr**2/max_lr)");
