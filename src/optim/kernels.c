/* kernels.c -- the multi-tensor pass runner: all active tensors form one flat range of
 * elements, cut into work units of at most OW__UNIT elements; one OpenMP parallel
 * region per pass in which threads claim contiguous chunks of units (serial below a
 * size threshold). Per-tensor sums are kept per unit and added in unit order, so results
 * never depend on the thread count. */
#include "optim_internal.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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

static void call(const ow_optimizer *opt, const ow_pass *pass, const ow__unit *u,
                 size_t n, double *sums)
{
    const ow__tensor *t = &opt->t[opt->active[u->active]];
    float *s[OW__MAX_SLOTS];
    for (size_t k = 0; k < opt->nslots; k++)
        s[k] = t->slot[k] && t->slot_numel[k] == t->numel ? t->slot[k] + u->off : NULL;
    ow_kernel_args a = {.n = n,
                        .p = t->p + u->off,
                        .g = t->g + u->off,
                        .s = s,
                        .ctx = opt->ctx + t->ctx * OW_MAX_CTX,
                        .t = t->t,
                        .sums = sums};
    (opt->use_ref ? pass->ref : pass->run)(&a);
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
    size_t *order = opt->order, *prefix = opt->order + nunits, m = 0, total = 0;
    if (!pass->nsums && (all < OW__SERIAL_BELOW || nth == 1)) {
        /* serial, no sums: one kernel call per tensor, no unit bookkeeping */
        for (size_t a = 0; a < nactive; a++) {
            const ow__tensor *t = &opt->t[opt->active[a]];
            if (t->numel && (opt->ctx_passes[t->ctx] & (1u << k))) {
                ow__unit u = {.active = a, .off = 0, .n = t->numel};
                call(opt, pass, &u, t->numel, NULL);
            }
        }
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
    for (size_t a = 0; a < nactive; a++) {
        ow__tensor *t = &opt->t[opt->active[a]];
        if (!(opt->ctx_passes[t->ctx] & (1u << k)))
            continue;
        memcpy(tsum, &per[a * OW_MAX_SUMS], sizeof tsum);
        ow_finish_args f = {.ctx = opt->ctx + t->ctx * OW_MAX_CTX,
                            .sums = tsum,
                            .totals = totals,
                            .numel = t->numel,
                            .t = t->t};
        pass->finish(&f);
    }
}

int ow__plan_passes(ow_optimizer *opt, size_t nactive, size_t all, ow_error *err)
{
    bool sums = false;
    for (size_t k = 0; k < OW_MAX_PASSES && opt->ops->passes[k].run; k++)
        sums = sums || opt->ops->passes[k].nsums;
    opt->plan_all = all;
    opt->plan_threads = ow__optimizer_threads(opt); /* once per step: reads the env */
    opt->nunits = 0;
    if (!sums && (all < OW__SERIAL_BELOW || opt->plan_threads == 1))
        return OW_OK; /* the serial path steps whole tensors: no units */
    size_t nunits = 0;
    for (size_t a = 0; a < nactive; a++)
        nunits += (opt->t[opt->active[a]].numel + OW__UNIT - 1) / OW__UNIT;
    int rc;
    if ((rc = grow((void **)&opt->units, &opt->units_cap, nunits + 1, sizeof *opt->units,
                   err)) ||
        (rc = grow((void **)&opt->order, &opt->order_cap, 2 * nunits + 1, sizeof(size_t),
                   err)) ||
        (rc = grow((void **)&opt->sums, &opt->sums_cap,
                   (nunits + nactive + 1) * OW_MAX_SUMS, sizeof(double), err)))
        return rc;
    size_t u = 0;
    for (size_t a = 0; a < nactive; a++) {
        size_t n = opt->t[opt->active[a]].numel;
        for (size_t off = 0; off < n; off += OW__UNIT)
            opt->units[u++] = (ow__unit){
                .active = a, .off = off, .n = n - off < OW__UNIT ? n - off : OW__UNIT};
    }
    opt->nunits = u;
    return OW_OK;
}

void ow__run_passes(ow_optimizer *opt, size_t nactive)
{
    for (size_t k = 0; k < OW_MAX_PASSES && opt->ops->passes[k].run; k++)
        run_pass(opt, k, opt->nunits, nactive, opt->plan_all, opt->plan_threads);
}
