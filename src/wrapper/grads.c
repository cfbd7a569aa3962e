/* grads.c -- the passes an update runs over the gradient buffers at the end of a
 * window: GradScaler's unscale with its inf/nan check, clip_grad_norm_'s norm, scaling,
 * clamping and zeroing. Large tensors are split into fixed chunks over threads; sums
 * are kept per chunk and added in order, so no result depends on the thread count. */
#include "wrapper_internal.h"

#include <math.h>
#include <string.h>

/* Elements per chunk, and chunks per parallel batch (their partial sums live on the
 * stack, so a pass allocates nothing and cannot fail). */
#define CHUNK        16384
#define BATCH        256
#define SERIAL_BELOW 65536

typedef enum { SUM_SQ, SUM_ABS, SUM_POW, MAX_ABS, COUNT_NZ } reduce_op;

/* One chunk's partial: a sum in double, or the largest |x| (nan if any). */
static double reduce_chunk(const float *x, size_t n, reduce_op op, double p)
{
    double acc = 0;
    switch (op) {
    case SUM_SQ:
        for (size_t i = 0; i < n; i++)
            acc += (double)x[i] * x[i];
        break;
    case SUM_ABS:
        for (size_t i = 0; i < n; i++)
            acc += fabs((double)x[i]);
        break;
    case SUM_POW:
        for (size_t i = 0; i < n; i++)
            acc += pow(fabs((double)x[i]), p);
        break;
    case COUNT_NZ:
        for (size_t i = 0; i < n; i++)
            acc += x[i] != 0;
        break;
    case MAX_ABS:
        for (size_t i = 0; i < n; i++) {
            double a = fabs((double)x[i]);
            if (isnan(a))
                return NAN;
            acc = a > acc ? a : acc;
        }
        break;
    }
    return acc;
}

static double combine(double a, double b, reduce_op op)
{
    if (op != MAX_ABS)
        return a + b;
    if (isnan(a) || isnan(b))
        return NAN;
    return a > b ? a : b;
}

/* The reduction of one tensor, chunk by chunk in order. */
static double reduce_tensor(const float *x, size_t n, reduce_op op, double p)
{
    if (n < SERIAL_BELOW)
        return reduce_chunk(x, n, op, p);
    double part[BATCH], acc = 0;
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
    for (size_t c0 = 0; c0 < nchunks; c0 += BATCH) {
        long m = (long)(nchunks - c0 < BATCH ? nchunks - c0 : BATCH);
#pragma omp parallel for schedule(static)
        for (long c = 0; c < m; c++) {
            size_t off = (c0 + (size_t)c) * CHUNK;
            size_t len = n - off < CHUNK ? n - off : CHUNK;
            part[c] = reduce_chunk(x + off, len, op, p);
        }
        for (long c = 0; c < m; c++)
            acc = combine(acc, part[c], op);
    }
    return acc;
}

/* torch.norm(x, p) of one tensor, rounded to float32 as torch returns it. */
static float tensor_norm(const float *x, size_t n, double p)
{
    if (isinf(p))
        return (float)reduce_tensor(x, n, MAX_ABS, p);
    if (p == 0)
        return (float)reduce_tensor(x, n, COUNT_NZ, p);
    if (p == 1)
        return (float)reduce_tensor(x, n, SUM_ABS, p);
    if (p == 2)
        return (float)sqrt(reduce_tensor(x, n, SUM_SQ, p));
    return (float)pow(reduce_tensor(x, n, SUM_POW, p), 1.0 / p);
}

float ow__grads_norm(const ow__grad *g, size_t n, double p)
{
    if (n == 0)
        return 0.0f;
    if (isinf(p)) { /* torch.max(torch.stack(norms)) */
        double m = 0;
        for (size_t i = 0; i < n; i++)
            m = combine(m, reduce_tensor(g[i].g, g[i].n, MAX_ABS, p), MAX_ABS);
        return (float)m;
    }
    /* the norms of the tensors, stacked as float32, and their norm */
    double acc = 0;
    for (size_t i = 0; i < n; i++) {
        double t = tensor_norm(g[i].g, g[i].n, p);
        acc += p == 0 ? t != 0 : p == 1 ? fabs(t) : p == 2 ? t * t : pow(fabs(t), p);
    }
    if (p == 0 || p == 1)
        return (float)acc;
    return (float)(p == 2 ? sqrt(acc) : pow(acc, 1.0 / p));
}

/* fn over every element range of every tensor, in parallel for large tensors. */
typedef void range_fn(float *x, size_t n, const void *arg, bool *flag);

static void for_all(const ow__grad *g, size_t n, range_fn *fn, const void *arg,
                    bool *flag)
{
    for (size_t i = 0; i < n; i++) {
        if (g[i].n < SERIAL_BELOW) {
            fn(g[i].g, g[i].n, arg, flag);
            continue;
        }
        long nchunks = (long)((g[i].n + CHUNK - 1) / CHUNK);
        bool any = false;
#pragma omp parallel for schedule(static) reduction(|| : any)
        for (long c = 0; c < nchunks; c++) {
            size_t off = (size_t)c * CHUNK;
            size_t len = g[i].n - off < CHUNK ? g[i].n - off : CHUNK;
            bool f = false;
            fn(g[i].g + off, len, arg, &f);
            any = any || f;
        }
        *flag = *flag || any;
    }
}

static void unscale_range(float *x, size_t n, const void *arg, bool *flag)
{
    float inv = *(const float *)arg;
    bool bad = false;
    for (size_t i = 0; i < n; i++) {
        bad |= !isfinite(x[i]);
        x[i] = x[i] * inv;
    }
    *flag = *flag || bad;
}

static void check_range(float *x, size_t n, const void *arg, bool *flag)
{
    (void)arg;
    bool bad = false;
    for (size_t i = 0; i < n; i++)
        bad |= !isfinite(x[i]);
    *flag = *flag || bad;
}

static void scale_range(float *x, size_t n, const void *arg, bool *flag)
{
    (void)flag;
    float c = *(const float *)arg;
    for (size_t i = 0; i < n; i++)
        x[i] *= c;
}

/* torch.clamp_(min=-v, max=v): nan stays nan */
static void clamp_range(float *x, size_t n, const void *arg, bool *flag)
{
    (void)flag;
    float v = *(const float *)arg;
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] < -v ? -v : x[i] > v ? v : x[i];
}

static void zero_range(float *x, size_t n, const void *arg, bool *flag)
{
    (void)arg;
    (void)flag;
    memset(x, 0, n * sizeof *x);
}

bool ow__grads_unscale(const ow__grad *g, size_t n, float inv_scale)
{
    bool bad = false;
    /* torch returns the value unchanged when inv_scale is 1 (x * 1 is x anyway) */
    for_all(g, n, inv_scale == 1.0f ? check_range : unscale_range, &inv_scale, &bad);
    return bad;
}

bool ow__grads_nonfinite(const ow__grad *g, size_t n)
{
    bool bad = false;
    for_all(g, n, check_range, NULL, &bad);
    return bad;
}

void ow__grads_scale(const ow__grad *g, size_t n, float coef)
{
    bool unused = false;
    for_all(g, n, scale_range, &coef, &unused);
}

void ow__grads_clamp(const ow__grad *g, size_t n, float v)
{
    bool unused = false;
    for_all(g, n, clamp_range, &v, &unused);
}

void ow__grads_zero(const ow__grad *g, size_t n)
{
    bool unused = false;
    for_all(g, n, zero_range, NULL, &unused);
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
