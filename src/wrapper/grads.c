/* grads.c -- the passes an update runs over the gradient buffers at the end of a
 * window: GradScaler's unscale with its inf/nan check, clip_grad_norm_'s norm, scaling,
 * clamping and zeroing. Large tensors are split into fixed chunks over threads; sums
 * are kept per chunk and added in order, so no result depends on the thread count. */
#include "wrapper_internal.h"

#include "../optim/quant.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Elements per chunk, and chunks per parallel batch (their partial sums live on the
 * stack, so a pass allocates nothing and cannot fail). */
#define CHUNK        OW__GRAD_CHUNK
#define BATCH        256
#define SERIAL_BELOW OW__GRAD_SERIAL_BELOW

/* What one read-only pass over the gradients finds: whether any element is inf or nan
 * (as they are), and, for clipping, the p-norm sums of fl(g * inv), the unscaled values
 * clip_grad_norm_ sees under AMP. */
typedef ow__scan_part scan_part;

static double term(double u, double p)
{
    double a = fabs(u);
    return p == 2 ? a * a : p == 1 ? a : p == 0 ? (double)(a != 0) : pow(a, p);
}

/* Whether an element is inf or nan: its exponent bits all set (integer lanes: the loop
 * vectorises whatever the float environment). */
OW_SIMD static bool any_nonfinite(const float *restrict x, size_t n)
{
    const uint32_t *restrict b = (const uint32_t *)(const void *)x;
    uint32_t any = 0;
#pragma omp simd reduction(| : any)
    for (size_t i = 0; i < n; i++)
        any |= (uint32_t)((b[i] & 0x7f800000u) == 0x7f800000u);
    return any != 0;
}

/* The sum of squares of fl(x * inv) in double (the vector lanes' order is fixed by the
 * build, not by the thread count), and the inf/nan test in the same pass. */
OW_SIMD static double sum_sq(const float *restrict x, size_t n, float inv, bool *bad)
{
    const uint32_t *restrict b = (const uint32_t *)(const void *)x;
    double acc = 0;
    uint32_t any = 0;
#pragma omp simd reduction(+ : acc) reduction(| : any)
    for (size_t i = 0; i < n; i++) {
        any |= (uint32_t)((b[i] & 0x7f800000u) == 0x7f800000u);
        double u = (double)(x[i] * inv);
        acc += u * u;
    }
    *bad = any != 0;
    return acc;
}

static scan_part scan_chunk(const float *x, size_t n, float inv, double p, bool norm)
{
    scan_part r = {false, 0};
    if (norm && p == 2) { /* the common case: one pass */
        r.acc = sum_sq(x, n, inv, &r.bad);
        return r;
    }
    r.bad = any_nonfinite(x, n);
    if (!norm)
        return r;
    if (isinf(p)) {
        for (size_t i = 0; i < n; i++) {
            double a = fabs((double)(x[i] * inv));
            r.acc = isnan(a) || isnan(r.acc) ? NAN : a > r.acc ? a : r.acc;
        }
    } else {
        for (size_t i = 0; i < n; i++)
            r.acc += term((double)(x[i] * inv), p);
    }
    return r;
}

static double combine(double a, double b, double p)
{
    if (!isinf(p))
        return a + b;
    return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
}

static size_t thread_num(void)
{
#ifdef _OPENMP
    return (size_t)omp_get_thread_num();
#else
    return 0;
#endif
}

static size_t max_threads(void)
{
#ifdef _OPENMP
    return (size_t)omp_get_max_threads();
#else
    return 1;
#endif
}

/* Elements [off, off + n) of g as float32: in place, or decoded into buf. */
static const float *values(const ow__grad *g, size_t off, size_t n, float *buf)
{
    const uint16_t *h = (const uint16_t *)(const void *)g->g + off;
    if (g->dt == OW_GRAD_F32)
        return g->g + off;
    if (g->dt == OW_GRAD_BF16) /* the optimizer's decoders: exact */
        ow__bf16_decode(h, n, buf);
    else
        ow__f16_decode(h, n, buf);
    return buf;
}

/* One tensor, chunk by chunk in order, the chunks of a batch over threads; a half
 * tensor's chunks are decoded into scratch (ow__grads_scratch), so that its parts are
 * those of the same values in float32. */
static scan_part scan_tensor(const ow__grad *g, float inv, double p, bool norm,
                             float *scratch)
{
    size_t n = g->n;
    if (n < SERIAL_BELOW)
        return scan_chunk(values(g, 0, n, scratch), n, inv, p, norm);
    scan_part part[BATCH], r = {false, 0};
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
    int nt = (int)max_threads(); /* the team ow__grads_scratch sized scratch for */
    for (size_t c0 = 0; c0 < nchunks; c0 += BATCH) {
        long m = (long)(nchunks - c0 < BATCH ? nchunks - c0 : BATCH);
#pragma omp parallel for schedule(static) num_threads(nt)
        for (long c = 0; c < m; c++) {
            size_t off = (c0 + (size_t)c) * CHUNK;
            size_t len = n - off < CHUNK ? n - off : CHUNK;
            float *buf = g->dt ? scratch + SERIAL_BELOW + thread_num() * CHUNK : NULL;
            part[c] = scan_chunk(values(g, off, len, buf), len, inv, p, norm);
        }
        for (long c = 0; c < m; c++) {
            r.bad = r.bad || part[c].bad;
            r.acc = combine(r.acc, part[c].acc, p);
        }
    }
    return r;
}

scan_part ow__grads_scan_unit(const float *x, size_t n, float inv, double p, bool norm)
{
    return scan_chunk(x, n, inv, p, norm);
}

/* The next part of a tensor folded into acc (from {false, 0}: 0 + acc is acc, the
 * sums being >= 0), as scan_tensor folds its chunks. */
scan_part ow__grads_scan_combine(scan_part acc, scan_part next, double p)
{
    return (scan_part){acc.bad || next.bad, combine(acc.acc, next.acc, p)};
}

void ow__grads_scan_add(ow__scan_total *s, scan_part t, double p, bool norm)
{
    s->bad = s->bad || t.bad;
    if (!norm)
        return;
    /* torch.norm of each tensor is a float32 value; the total is their norm */
    float tn = isinf(p)           ? (float)t.acc
               : p == 0 || p == 1 ? (float)t.acc
               : p == 2           ? (float)sqrt(t.acc)
                                  : (float)pow(t.acc, 1.0 / p);
    s->total = isinf(p) ? combine(s->total, tn, p) : s->total + term(tn, p);
}

bool ow__grads_scan_end(const ow__scan_total *s, double p, float *norm)
{
    if (norm)
        *norm = isinf(p) || p == 0 || p == 1 ? (float)s->total
                : p == 2                     ? (float)sqrt(s->total)
                                             : (float)pow(s->total, 1.0 / p);
    return s->bad;
}

bool ow__grads_scan(const ow__grad *g, size_t n, float inv, double p, float *norm,
                    float *scratch)
{
    ow__scan_total s = {false, 0};
    for (size_t i = 0; i < n; i++)
        ow__grads_scan_add(&s, scan_tensor(&g[i], inv, p, norm != NULL, scratch), p,
                           norm != NULL);
    return ow__grads_scan_end(&s, p, norm);
}

/* fn over every element range of every tensor, in parallel for large tensors; the
 * flags of the ranges are ORed. */
typedef bool range_fn(const ow__grad *g, size_t off, size_t n, const float *arg);

static bool for_all(const ow__grad *g, size_t n, range_fn *fn, const float *arg)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (g[i].n < SERIAL_BELOW) {
            any = fn(&g[i], 0, g[i].n, arg) || any;
            continue;
        }
        long nchunks = (long)((g[i].n + CHUNK - 1) / CHUNK);
        bool f = false;
#pragma omp parallel for schedule(static) reduction(|| : f)
        for (long c = 0; c < nchunks; c++) {
            size_t off = (size_t)c * CHUNK;
            size_t len = g[i].n - off < CHUNK ? g[i].n - off : CHUNK;
            f = fn(&g[i], off, len, arg) || f;
        }
        any = any || f;
    }
    return any;
}

/* arg: inv, coef, clamp (< 0: none): ow__grad_xform. */
OW_SIMD static void apply_f32(float *restrict x, size_t n, const float *arg)
{
    const float inv = arg[0], coef = arg[1], v = arg[2];
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        x[i] = ow__grad_xform(x[i], inv, coef, v);
}

/* half gradients stay as they are: the optimizer applies arg as it reads them. Clamping
 * makes inf finite: whether an element was inf or nan is told before it. */
static bool apply_range(const ow__grad *g, size_t off, size_t n, const float *arg)
{
    if (g->dt != OW_GRAD_F32)
        return false;
    bool bad = arg[2] >= 0 && any_nonfinite(g->g + off, n);
    apply_f32(g->g + off, n, arg);
    return bad;
}

/* Whether a half is inf or nan: its exponent bits all set. */
static bool any_nonfinite_half(const uint16_t *h, size_t n, uint16_t exp)
{
    unsigned any = 0;
    for (size_t i = 0; i < n; i++)
        any |= (h[i] & exp) == exp;
    return any != 0;
}

static bool zero_range(const ow__grad *g, size_t off, size_t n, const float *check)
{
    if (g->dt == OW_GRAD_F32) {
        bool bad = check && any_nonfinite(g->g + off, n);
        memset(g->g + off, 0, n * sizeof(float));
        return bad;
    }
    uint16_t *h = (uint16_t *)(void *)g->g + off;
    bool bad = check && any_nonfinite_half(h, n, g->dt == OW_GRAD_BF16 ? 0x7f80 : 0x7c00);
    memset(h, 0, n * sizeof *h);
    return bad;
}

bool ow__grads_apply(const ow__grad *g, size_t n, float inv, float coef, float clamp)
{
    const float arg[3] = {inv, coef, clamp};
    return (inv != 1.0f || coef != 1.0f || clamp >= 0) && for_all(g, n, apply_range, arg);
}

bool ow__grads_zero(const ow__grad *g, size_t n, bool check)
{
    static const float yes = 1.0f;
    return for_all(g, n, zero_range, check ? &yes : NULL);
}

static const char *dtype_name(ow_grad_dtype dt)
{
    return dt == OW_GRAD_BF16 ? "bfloat16" : dt == OW_GRAD_F16 ? "float16" : "float32";
}

int ow__wrapper_collect_grads(ow_optim_wrapper *w, ow_error *err)
{
    size_t nt = ow__optimizer_num_tensors(w->opt);
    if (nt > w->grads_cap) {
        ow__grad *g = ow__realloc(w->grads, nt * sizeof *g);
        if (!g)
            return ow__nomem(err);
        w->grads = g;
        w->grads_cap = nt;
    }
    w->ngrads = 0;
    size_t need = 0; /* scratch for scanning half gradients */
    for (size_t i = 0; i < nt; i++) {
        ow__grad *g = &w->grads[w->ngrads];
        const char *name;
        if (!ow__optimizer_tensor_grad(w->opt, i, &g->g, &g->n, &g->dt, &name))
            continue;
        ow_grad_dtype bound = w->o.half == OW__HALF_BF16  ? OW_GRAD_BF16
                              : w->o.half == OW__HALF_F16 ? OW_GRAD_F16
                                                          : w->o.grad_dtype;
        if (g->dt != w->o.grad_dtype && g->dt != bound) /* bind_half's are read too */
            return ow__error(
                err, OW_ERR_MODEL, NULL, 0, 0,
                "optim_wrapper.grad_dtype is %s but parameter '%s' has %s gradients (%s)",
                dtype_name(w->o.grad_dtype), name, dtype_name(g->dt),
                g->dt ? "bound with ow_model_set_grad_half: set grad_dtype to match"
                      : "bind its half buffer with ow_model_set_grad_half");
        if (g->dt && w->dist)
            return ow__error(
                err, OW_ERR_UNSUPPORTED, NULL, 0, 0,
                "optim_wrapper.grad_dtype %s: data-parallel runs sum float32 "
                "gradients; bind float32 ones (or an AmpOptimWrapper with "
                "dtype, whose master gradients are float32)",
                dtype_name(g->dt));
        if (g->dt)
            need = OW__GRAD_SERIAL_BELOW + max_threads() * OW__GRAD_CHUNK;
        w->ngrads++;
    }
    if (need > w->scratch_cap) {
        float *s = ow__realloc(w->scratch, need * sizeof *s);
        if (!s)
            return ow__nomem(err);
        w->scratch = s;
        w->scratch_cap = need;
    }
    return OW_OK;
}
