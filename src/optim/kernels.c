/* kernels.c -- the multi-tensor pass runner and the optimizer's threads: all active
 * tensors form one flat range of elements, cut into work units of at most OW__UNIT
 * elements; one OpenMP parallel region per pass in which threads claim contiguous
 * chunks of units (serial below a size threshold). Per-tensor sums are kept per unit
 * and added in unit order, so results never depend on the thread count. */
#include "quant.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int default_threads(void)
{
    const char *env = getenv("OW_NUM_THREADS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end == '\0' && n > 0 && n <= 4096)
            return (int)n;
    }
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int ow__optimizer_threads(const ow_optimizer *opt)
{
    int n = opt->threads > 0 ? opt->threads : default_threads();
    return n < 1 ? 1 : n;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem, ow_error *err)
{
    if (need <= *cap)
        return OW_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = ow__realloc(*p, c * elem);
    if (!q)
        return ow__nomem(err);
    *p = q;
    *cap = c;
    return OW_OK;
}

void ow__grad_f32(const ow_optimizer *opt, const ow__tensor *t, size_t off, size_t n,
                  float *out)
{
    const uint16_t *h = (const uint16_t *)(const void *)t->g + off;
    if (t->gdt == OW_GRAD_BF16)
        ow__bf16_decode(h, n, out);
    else if (t->gdt == OW_GRAD_F16)
        ow__f16_decode(h, n, out);
    else
        memcpy(out, t->g + off, n * sizeof *out);
    const float inv = opt->gx[0], coef = opt->gx[1], clamp = opt->gx[2];
    if (t->gdt && (inv != 1.0f || coef != 1.0f || clamp >= 0))
        for (size_t i = 0; i < n; i++)
            out[i] = ow__grad_xform(out[i], inv, coef, clamp);
}

void ow__optimizer_set_grad_xform(ow_optimizer *opt, float inv, float coef, float clamp)
{
    opt->gx[0] = inv;
    opt->gx[1] = coef;
    opt->gx[2] = clamp;
}

static void call_f32(const ow_optimizer *opt, const ow_pass *pass, const ow__unit *u,
                     size_t n, double *sums);

/* A half gradient goes to the kernel a work unit at a time through a float32 buffer on
 * this thread's stack (64 KB, in cache): a unit with sums is one call, as with float32
 * gradients; a range without sums is elementwise, so its pieces give the same bits. */
static void call(const ow_optimizer *opt, const ow_pass *pass, const ow__unit *u,
                 size_t n, double *sums)
{
    const ow__tensor *t = &opt->t[opt->active[u->active]];
    if (!t->gdt) {
        call_f32(opt, pass, u, n, sums);
        return;
    }
    _Alignas(64) float g[OW__UNIT];
    float *s[OW__MAX_SLOTS];
    for (size_t o = 0; o < n; o += OW__UNIT) {
        size_t m = n - o < OW__UNIT ? n - o : OW__UNIT, off = u->off + o;
        ow__grad_f32(opt, t, off, m, g);
        for (size_t k = 0; k < opt->nslots; k++)
            s[k] = t->kslots & (1u << k) ? t->slot[k] + off : NULL;
        ow_kernel_args a = {.n = m,
                            .p = t->p + off,
                            .g = g,
                            .s = s,
                            .ctx = opt->ctx + t->ctx * OW_MAX_CTX,
                            .t = t->t,
                            .sums = sums,
                            .off = off,
                            .full = (void *const *)t->slot};
        (opt->use_ref ? pass->ref : pass->run)(&a);
    }
}

static void call_f32(const ow_optimizer *opt, const ow_pass *pass, const ow__unit *u,
                     size_t n, double *sums)
{
    const ow__tensor *t = &opt->t[opt->active[u->active]];
    float *s[OW__MAX_SLOTS];
    for (size_t k = 0; k < opt->nslots; k++)
        s[k] = t->kslots & (1u << k) ? t->slot[k] + u->off : NULL;
    ow_kernel_args a = {.n = n,
                        .p = t->p + u->off,
                        .g = t->g + u->off,
                        .s = s,
                        .ctx = opt->ctx + t->ctx * OW_MAX_CTX,
                        .t = t->t,
                        .sums = sums,
                        .off = u->off,
                        .full = (void *const *)t->slot};
    (opt->use_ref ? pass->ref : pass->run)(&a);
}

/* Tensors of at most this many elements are gathered: a kernel call costs tens of
 * nanoseconds and its sqrt/div chain is latency, not throughput, when n is 1. */
#define OW__GATHER_MAX 16
/* Elements of one gather batch (its buffers live on the stack). */
#define OW__GATHER_N 128

/* Consecutive tiny tensors of one pass that share their constants (ctx), their finish
 * values (t) and which slots they have are copied into one contiguous batch, stepped
 * by one kernel call and copied back. A pass without sums is elementwise (the runner
 * already calls it on arbitrary ranges), so the results are the same bits as one call
 * per tensor. */
typedef struct gather_batch {
    size_t n, ntensors;
    const ow__tensor *tensor[OW__GATHER_N];
    unsigned slots; /* bit k: slot k is parameter-shaped in every gathered tensor */
    float p[OW__GATHER_N], g[OW__GATHER_N], s[OW__MAX_SLOTS][OW__GATHER_N];
} gather_batch;

static void gather_flush(const ow_optimizer *opt, const ow_pass *pass, gather_batch *b)
{
    if (!b->n)
        return;
    const ow__tensor *first = b->tensor[0];
    float *s[OW__MAX_SLOTS];
    for (size_t k = 0; k < opt->nslots; k++)
        s[k] = b->slots & (1u << k) ? b->s[k] : NULL;
    ow_kernel_args a = {.n = b->n,
                        .p = b->p,
                        .g = b->g,
                        .s = s,
                        .ctx = opt->ctx + first->ctx * OW_MAX_CTX,
                        .t = first->t};
    pass->run(&a);
    /* copy back p and every slot: the kernel may write any of them */
    for (size_t i = 0, off = 0; i < b->ntensors; i++) {
        const ow__tensor *t = b->tensor[i];
        for (size_t e = 0; e < t->numel; e++)
            t->p[e] = b->p[off + e];
        for (size_t k = 0; k < opt->nslots; k++)
            if (b->slots & (1u << k))
                for (size_t e = 0; e < t->numel; e++)
                    t->slot[k][e] = b->s[k][off + e];
        off += t->numel;
    }
    b->n = b->ntensors = 0;
}

static void gather_add(const ow_optimizer *opt, const ow_pass *pass, gather_batch *b,
                       const ow__tensor *t)
{
    unsigned slots = t->kslots;
    if (b->n) {
        const ow__tensor *first = b->tensor[0];
        if (b->n + t->numel > OW__GATHER_N || slots != b->slots || t->ctx != first->ctx ||
            (opt->t_dirty && memcmp(t->t, first->t, sizeof t->t)))
            gather_flush(opt, pass, b);
    }
    b->slots = slots;
    for (size_t e = 0; e < t->numel; e++) {
        b->p[b->n + e] = t->p[e];
        b->g[b->n + e] = t->g[e];
    }
    for (size_t k = 0; k < opt->nslots; k++)
        if (slots & (1u << k))
            for (size_t e = 0; e < t->numel; e++)
                b->s[k][b->n + e] = t->slot[k][e];
    b->tensor[b->ntensors++] = t;
    b->n += t->numel;
}

/* Units [lo, hi) of the pass order on one thread. Without sums, consecutive units of
 * one tensor go to the kernel as one range. */
static void run_range(const ow_optimizer *opt, const ow_pass *pass, const size_t *order,
                      size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi;) {
        const ow__unit *u = &opt->units[order[i]];
        if (pass->nsums) {
            double *sums = opt->sums + order[i] * OW_MAX_SUMS;
            memset(sums, 0, OW_MAX_SUMS * sizeof *sums);
            call(opt, pass, u, u->n, sums);
            i++;
            continue;
        }
        size_t n = u->n, j = i + 1;
        while (j < hi && opt->units[order[j]].active == u->active) {
            n += opt->units[order[j]].n;
            j++;
        }
        call(opt, pass, u, n, NULL);
        i = j;
    }
}

/* The first unit of the pass whose element prefix is >= target (prefix is ascending). */
static size_t lower_bound(const size_t *prefix, size_t n, size_t target)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (prefix[mid] < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Elements one thread claims at a time on the parallel path: large enough that a claim
 * (one atomic add) is noise next to the ~1.8 MB of AdamW traffic it covers, small enough
 * that a thread the machine delays holds back at most one chunk: a static split makes
 * the whole step wait for the slower thread on this shared machine. */
#define OW__CHUNK (4 * OW__UNIT)

static void run_pass(ow_optimizer *opt, size_t k, size_t nunits, size_t nactive,
                     size_t all, int nth)
{
    const ow_pass *pass = &opt->ops->passes[k];
    /* order is NULL when there are no units (the serial path needs none): no offset
     * into it then, which would be undefined behaviour */
    size_t *order = opt->order, *prefix = order ? order + nunits : NULL, m = 0, total = 0;
    if (!pass->nsums && (all < OW__SERIAL_BELOW || nth == 1)) {
        /* serial, no sums: one kernel call per tensor, no unit bookkeeping; tiny
         * tensors go through a gather batch (fast kernels only: the _ref path stays
         * the plain one the tests compare against) */
        gather_batch b; /* ~10 KB: set the counts only, not the buffers */
        b.n = b.ntensors = 0;
        for (size_t a = 0; a < nactive; a++) {
            const ow__tensor *t = &opt->t[opt->active[a]];
            if (!t->numel || !(opt->ctx_passes[t->ctx] & (1u << k)))
                continue;
            if (!opt->use_ref && t->numel <= OW__GATHER_MAX && t->all_f32 && !t->gdt) {
                gather_add(opt, pass, &b, t);
                continue;
            }
            ow__unit u = {.active = a, .off = 0, .n = t->numel};
            call(opt, pass, &u, t->numel, NULL);
        }
        gather_flush(opt, pass, &b);
        return;
    }
    for (size_t i = 0; i < nunits; i++) {
        const ow__tensor *t = &opt->t[opt->active[opt->units[i].active]];
        if (!(opt->ctx_passes[t->ctx] & (1u << k)))
            continue;
        prefix[m] = total;
        order[m++] = i;
        total += opt->units[i].n;
    }
    if (m == 0)
        return;
    if (total < OW__SERIAL_BELOW || nth == 1) {
        run_range(opt, pass, order, 0, m);
    } else {
#ifdef _OPENMP
        /* chunk c: the units starting in [c, c+1) * OW__CHUNK of the pass's elements */
        size_t next = 0, nchunks = (total + OW__CHUNK - 1) / OW__CHUNK;
#pragma omp parallel num_threads(nth)
        for (;;) {
            size_t c;
#pragma omp atomic capture
            c = next++;
            if (c >= nchunks)
                break;
            size_t lo = lower_bound(prefix, m, c * OW__CHUNK);
            size_t hi =
                c + 1 == nchunks ? m : lower_bound(prefix, m, (c + 1) * OW__CHUNK);
            run_range(opt, pass, order, lo, hi);
        }
#else
        run_range(opt, pass, order, 0, m);
#endif
    }
    if (!pass->nsums)
        return;
    /* per-tensor sums in unit order, their totals, then the finish hook */
    double tsum[OW_MAX_SUMS] = {0}, totals[OW_MAX_SUMS] = {0};
    size_t i = 0;
    double *per = opt->sums + (size_t)nunits * OW_MAX_SUMS; /* [nactive * sums] */
    memset(per, 0, nactive * OW_MAX_SUMS * sizeof *per);
    for (i = 0; i < m; i++) {
        const ow__unit *u = &opt->units[order[i]];
        for (int s = 0; s < pass->nsums; s++)
            per[u->active * OW_MAX_SUMS + s] += opt->sums[order[i] * OW_MAX_SUMS + s];
    }
    for (size_t a = 0; a < nactive; a++)
        for (int s = 0; s < pass->nsums; s++)
            totals[s] += per[a * OW_MAX_SUMS + s];
    if (!pass->finish)
        return;
    opt->t_dirty = true;
    for (size_t a = 0; a < nactive; a++) {
        ow__tensor *t = &opt->t[opt->active[a]];
        if (!(opt->ctx_passes[t->ctx] & (1u << k)))
            continue;
        memcpy(tsum, &per[a * OW_MAX_SUMS], sizeof tsum);
        ow_finish_args f = {.ctx = opt->ctx + t->ctx * OW_MAX_CTX,
                            .sums = tsum,
                            .totals = totals,
                            .numel = t->numel,
                            .t = t->t,
                            .scalars = t->scalar};
        pass->finish(&f);
    }
}

int ow__plan_passes(ow_optimizer *opt, size_t nactive, size_t all, ow_error *err)
{
    bool sums = false;
    for (size_t k = 0; k < OW_MAX_PASSES && opt->ops->passes[k].run; k++)
        sums = sums || opt->ops->passes[k].nsums; /* ops->passes is set: npass > 0 */
    opt->plan_all = all;
    opt->plan_threads = ow__optimizer_threads(opt); /* once per step: reads the env */
    opt->nunits = 0;
    opt->units_built = false;
    if (!sums && (all < OW__SERIAL_BELOW || opt->plan_threads == 1))
        return OW_OK; /* the serial path steps whole tensors: no units */
    /* a bound, not a count: each tensor adds at most one partial unit */
    size_t nunits = nactive + all / OW__UNIT;
    /* only the room is reserved here (the fallible part); the units are cut by the
     * first pass that needs them, since a pass with sums (caution) is often off for
     * every tensor and 1,000 tiny tensors would pay for units nobody reads */
    int rc;
    if ((rc = grow((void **)&opt->units, &opt->units_cap, nunits + 1, sizeof *opt->units,
                   err)) ||
        (rc = grow((void **)&opt->order, &opt->order_cap, 2 * nunits + 1, sizeof(size_t),
                   err)) ||
        (rc = grow((void **)&opt->sums, &opt->sums_cap,
                   (nunits + nactive + 1) * OW_MAX_SUMS, sizeof(double), err)))
        return rc;
    return OW_OK;
}

/* Cuts the active tensors into units, in the room ow__plan_passes reserved. */
static void build_units(ow_optimizer *opt, size_t nactive)
{
    size_t u = 0;
    for (size_t a = 0; a < nactive; a++) {
        size_t n = opt->t[opt->active[a]].numel;
        for (size_t off = 0; off < n; off += OW__UNIT)
            opt->units[u++] = (ow__unit){
                .active = a, .off = off, .n = n - off < OW__UNIT ? n - off : OW__UNIT};
    }
    opt->nunits = u;
    opt->units_built = true;
}

void ow__run_passes(ow_optimizer *opt, size_t nactive)
{
    for (size_t k = 0; k < OW_MAX_PASSES && opt->ops->passes[k].run; k++) {
        if (!(opt->pass_mask & (1u << k)))
            continue; /* no tensor runs it this step (prepare_all's union) */
        const ow_pass *pass = &opt->ops->passes[k];
        bool serial = opt->plan_all < OW__SERIAL_BELOW || opt->plan_threads == 1;
        if ((pass->nsums || !serial) && !opt->units_built)
            build_units(opt, nactive);
        run_pass(opt, k, opt->nunits, nactive, opt->plan_all, opt->plan_threads);
    }
}

void ow__parallel_range(ow__range_fn *fn, const void *arg, size_t n, int threads)
{
    if (threads <= 1 || n < 2) {
        fn(arg, 0, n);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
    {
        size_t id = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        fn(arg, n * id / nt, n * (id + 1) / nt);
    }
#else
    fn(arg, 0, n);
#endif
}
