/* quant_fixture.c -- see quant_fixture.h. */
#include "quant_fixture.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>

uint64_t rng_next(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double rng_uniform(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1p-53;
}

double rng_normal(uint64_t *s)
{
    double u = rng_uniform(s) + 0x1p-60, v = rng_uniform(s);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

adamw_ctx adamw_prepare(double lr, double b1, double b2, double eps, double wd,
                        double step)
{
    adamw_ctx c = {.keep = (float)(1 - lr * wd),
                   .b1 = (float)b1,
                   .omb1 = (float)(1 - b1),
                   .b2 = (float)b2,
                   .omb2 = (float)(1 - b2),
                   .bc2s = (float)sqrt(1 - pow(b2, step)),
                   .eps = (float)eps,
                   .nss = (float)(-(lr / (1 - pow(b1, step))))};
    return c;
}

/* torch.optim.AdamW's single-tensor step, element by element (slots 0: exp_avg,
 * 1: exp_avg_sq) */
void adamw_kernel(const ow_kernel_args *a)
{
    const adamw_ctx *c = a->ctx;
    float *p = a->p, *m = a->s[0], *v = a->s[1];
    for (size_t i = 0; i < a->n; i++) {
        float g = a->g[i];
        float mi = fmaf(c->omb1, g, m[i] * c->b1);
        float vi = fmaf(c->omb2 * g, g, v[i] * c->b2);
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / c->bc2s + c->eps;
        p[i] = p[i] * c->keep + (c->nss * mi) / denom;
    }
}

qstate qstate_new(size_t n, uint64_t seed)
{
    size_t nb = (n + 255) / 256;
    qstate q = {.n = n,
                .p = malloc(n * 4),
                .g = malloc(n * 4),
                .m = calloc(n, 4),
                .v = calloc(n, 4),
                .am1 = calloc(nb, 4),
                .am2 = calloc(nb, 4),
                .hm = calloc(n, 2),
                .hv = calloc(n, 2),
                .cm = calloc(n, 1),
                .cv = calloc(n, 1)};
    for (size_t i = 0; i < n; i++) {
        q.p[i] = (float)rng_normal(&seed);
        q.g[i] = (float)(rng_normal(&seed) * 1e-2);
    }
    return q;
}

void qstate_free(qstate *q)
{
    free(q->p);
    free(q->g);
    free(q->m);
    free(q->v);
    free(q->am1);
    free(q->am2);
    free(q->hm);
    free(q->hv);
    free(q->cm);
    free(q->cv);
}

/* One AdamW step over [lo, hi) of q with state of kind k (fast or plain). */
void qstep(qstate *q, ow__qkind k, const adamw_ctx *c, size_t lo, size_t hi, bool ref,
           uint64_t key)
{
    ow_kernel_args a = {.n = hi - lo, .p = q->p + lo, .g = q->g + lo, .ctx = c};
    ow__qslot s[2];
    if (k == OW__Q_F32) {
        s[0] = (ow__qslot){.kind = k, .data = q->m + lo};
        s[1] = (ow__qslot){.kind = k, .data = q->v + lo};
    } else if (k == OW__Q_BF16 || k == OW__Q_BF16_SR) {
        s[0] = (ow__qslot){.kind = k, .data = q->hm + lo};
        s[1] = (ow__qslot){.kind = k, .data = q->hv + lo};
    } else {
        s[0] = (ow__qslot){
            .kind = OW__Q_I8S, .data = q->cm + lo, .absmax = q->am1 + lo / 256};
        s[1] = (ow__qslot){
            .kind = OW__Q_I8U, .data = q->cv + lo, .absmax = q->am2 + lo / 256};
    }
    ow__qrange r = {
        .a = &a, .fn = adamw_kernel, .slot = s, .nslots = 2, .key = key, .index = lo};
    ck_assert(ref ? ow__q_ref(&r) : ow__q_run(&r));
}
