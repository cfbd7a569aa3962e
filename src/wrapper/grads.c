/* grads.c -- the passes an update runs over the gradient buffers at the end of a
 * window: GradScaler's unscale with its inf/nan check, clip_grad_norm_'s norm, scaling,
 * clamping and zeroing. Large tensors are split into fixed chunks over threads; sums
 * are kept per chunk and added in order, so no result depends on the thread count. */
#include "wrapper_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* One tensor, chunk by chunk in order, the chunks of a batch over threads. */
static scan_part scan_tensor(const float *x, size_t n, float inv, double p, bool norm)
{
    if (n < SERIAL_BELOW)
        return scan_chunk(x, n, inv, p, norm);
    scan_part part[BATCH], r = {false, 0};
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
    for (size_t c0 = 0; c0 < nchunks; c0 += BATCH) {
        long m = (long)(nchunks - c0 < BATCH ? nchunks - c0 : BATCH);
#pragma omp parallel for schedule(static)
        for (long c = 0; c < m; c++) {
            size_t off = (c0 + (size_t)c) * CHUNK;
            size_t len = n - off < CHUNK ? n - off : CHUNK;
            part[c] = scan_chunk(x + off, len, inv, p, norm);
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

bool ow__grads_scan(const ow__grad *g, size_t n, float inv, double p, float *norm)
{
    ow__scan_total s = {false, 0};
    for (size_t i = 0; i < n; i++)
        ow__grads_scan_add(&s, scan_tensor(g[i].g, g[i].n, inv, p, norm != NULL), p,
                           norm != NULL);
    return ow__grads_scan_end(&s, p, norm);
}

/* fn over every element range of every tensor, in parallel for large tensors; the
 * flags of the ranges are ORed. */
typedef bool range_fn(float *x, size_t n, const float *arg);

static bool for_all(const ow__grad *g, size_t n, range_fn *fn, const float *arg)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (g[i].n < SERIAL_BELOW) {
            any = fn(g[i].g, g[i].n, arg) || any;
            continue;
        }
        long nchunks = (long)((g[i].n + CHUNK - 1) / CHUNK);
        bool f = false;
#pragma omp parallel for schedule(static) reduction(|| : f)
        for (long c = 0; c < nchunks; c++) {
            size_t off = (size_t)c * CHUNK;
            size_t len = g[i].n - off < CHUNK ? g[i].n - off : CHUNK;
            f = fn(g[i].g + off, len, arg) || f;
        }
        any = any || f;
    }
    return any;
}

/* arg: inv, coef, clamp (< 0: none). Two roundings, as torch's unscale_ then mul_. */
OW_SIMD static bool apply_range(float *restrict x, size_t n, const float *arg)
{
    const float inv = arg[0], coef = arg[1], v = arg[2];
    if (v >= 0) { /* torch.clamp_: nan stays nan */
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float u = x[i] * inv;
            x[i] = u < -v ? -v : u > v ? v : u;
        }
    } else if (inv != 1.0f && coef != 1.0f) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            x[i] = (x[i] * inv) * coef;
    } else {
        const float k = inv != 1.0f ? inv : coef;
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            x[i] *= k;
    }
    return false;
}

static bool zero_range(float *x, size_t n, const float *check)
{
    bool bad = check && any_nonfinite(x, n);
    memset(x, 0, n * sizeof *x);
    return bad;
}

void ow__grads_apply(const ow__grad *g, size_t n, float inv, float coef, float clamp)
{
    const float arg[3] = {inv, coef, clamp};
    if (inv != 1.0f || coef != 1.0f || clamp >= 0)
        for_all(g, n, apply_range, arg);
}

bool ow__grads_zero(const ow__grad *g, size_t n, bool check)
{
    static const float yes = 1.0f;
    return for_all(g, n, zero_range, check ? &yes : NULL);
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
    for (size_t i = 0; i < nt; i++) {
        ow__grad *g = &w->grads[w->ngrads];
        if (ow__optimizer_tensor_grad(w->opt, i, &g->g, &g->n))
            w->ngrads++;
    }
    return OW_OK;
}
