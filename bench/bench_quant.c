/* bench_quant.c -- quantized optimizer state (src/optim/quant.c): 8-bit quantize and
 * dequantize throughput, and an AdamW step with float32, bf16 and 8-bit state, each
 * against its own access pattern (bytes per parameter it must move). Figures are
 * printed, never asserted. Usage: bench_quant [million elements, default 16] */
#include "optim/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct adamw_ctx {
    float keep, b1, omb1, b2, omb2, bc2s, eps, nss;
} adamw_ctx;

/* adam.c's float32 loop (decoupled decay, single-tensor rounding) */
OW_SIMD static void adamw_kernel(const ow_kernel_args *a)
{
    const adamw_ctx *c = a->ctx;
    float *restrict p = a->p, *restrict m = a->s[0], *restrict v = a->s[1];
    const float *restrict g = a->g;
    const float keep = c->keep, b1 = c->b1, omb1 = c->omb1, b2 = c->b2, omb2 = c->omb2,
                bc2s = c->bc2s, eps = c->eps, nss = c->nss;
#pragma omp simd
    for (size_t i = 0; i < a->n; i++) {
        float mi = fmaf(omb1, g[i], m[i] * b1);
        float vi = fmaf(omb2 * g[i], g[i], v[i] * b2);
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2s + eps;
        p[i] = p[i] * keep + (nss * mi) / denom;
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define REPS 15
typedef struct state {
    size_t n;
    float *p, *g, *m, *v, *am1, *am2;
    uint16_t *hm, *hv;
    uint8_t *cm, *cv;
} state;

/* One AdamW step with state kind k over n elements in `threads` ranges of whole
 * blocks. */
static void step(state *s, ow__qkind k, const adamw_ctx *c, int threads)
{
    size_t nb = (s->n + OW__QBLOCK - 1) / OW__QBLOCK;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; t++) {
        size_t lo = nb * (size_t)t / (size_t)threads * OW__QBLOCK,
               hi = nb * (size_t)(t + 1) / (size_t)threads * OW__QBLOCK;
        hi = hi > s->n ? s->n : hi;
        ow_kernel_args a = {.n = hi - lo, .p = s->p + lo, .g = s->g + lo, .ctx = c};
        float *sl[2] = {s->m + lo, s->v + lo};
        if (k == OW__Q_F32) {
            a.s = sl;
            adamw_kernel(&a);
            continue;
        }
        ow__qslot q[2];
        if (k == OW__Q_I8S) {
            q[0] = (ow__qslot){OW__Q_I8S, s->cm + lo, s->am1 + lo / OW__QBLOCK};
            q[1] = (ow__qslot){OW__Q_I8U, s->cv + lo, s->am2 + lo / OW__QBLOCK};
        } else {
            q[0] = (ow__qslot){k, s->hm + lo, NULL};
            q[1] = (ow__qslot){k, s->hv + lo, NULL};
        }
        ow__qrange r = {
            .a = &a, .fn = adamw_kernel, .slot = q, .nslots = 2, .key = 7, .index = lo};
        ow__q_run(&r);
    }
}

static void state_free(state *s)
{
    void *bufs[] = {s->p, s->g, s->m, s->v, s->hm, s->hv, s->cm, s->cv, s->am1, s->am2};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
}

int main(int argc, char **argv)
{
    size_t n = (size_t)(argc > 1 ? strtol(argv[1], NULL, 10) : 16) << 20;
    state s = {.n = n};
    s.p = calloc(n, 4);
    s.g = malloc(n * 4);
    s.m = calloc(n, 4);
    s.v = calloc(n, 4);
    s.hm = calloc(n, 2);
    s.hv = calloc(n, 2);
    s.cm = calloc(n, 1);
    s.cv = calloc(n, 1);
    s.am1 = calloc(n / OW__QBLOCK + 1, 4);
    s.am2 = calloc(n / OW__QBLOCK + 1, 4);
    if (!s.p || !s.g || !s.m || !s.v || !s.hm || !s.hv || !s.cm || !s.cv || !s.am1 ||
        !s.am2) {
        state_free(&s);
        return 1;
    }
    uint32_t x = 1;
    for (size_t i = 0; i < n; i++) {
        x = ow__mix32(x + (uint32_t)i);
        s.g[i] = ((float)(x >> 8) * 0x1p-24f - 0.5f) * 1e-2f;
    }
    double t[REPS];
    printf("%zu elements (%zu MiB of float32)\n", n, n * 4 >> 20);
    /* codecs: float32 -> codes + absmax, and back */
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        ow__q8_quantize(&ow__qtab_signed, s.g, n, s.cm, s.am1);
        t[r] = now() - t0;
    }
    qsort(t, REPS, sizeof *t, cmp);
    printf(
        "quantize (1 thread)   %7.2f ms  %6.0f M elements/s  %5.2f GB/s (5.02 B/elem)\n",
        t[REPS / 2] * 1e3, n / t[REPS / 2] * 1e-6, n * 5.02 / t[REPS / 2] * 1e-9);
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        ow__q8_dequantize(&ow__qtab_signed, s.cm, s.am1, n, s.m);
        t[r] = now() - t0;
    }
    qsort(t, REPS, sizeof *t, cmp);
    printf(
        "dequantize (1 thread) %7.2f ms  %6.0f M elements/s  %5.2f GB/s (5.02 B/elem)\n",
        t[REPS / 2] * 1e3, n / t[REPS / 2] * 1e-6, n * 5.02 / t[REPS / 2] * 1e-9);
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        for (size_t b = 0; b * OW__QBLOCK < n; b++)
            s.am2[b] = ow__q8_encode_ref(&ow__qtab_signed, s.g + b * OW__QBLOCK,
                                         OW__QBLOCK, s.cv + b * OW__QBLOCK);
        t[r] = now() - t0;
        if (r == 2)
            break;
    }
    qsort(t, 3, sizeof *t, cmp);
    printf("quantize, binary search (_ref) %7.2f ms  %6.0f M elements/s\n", t[1] * 1e3,
           n / t[1] * 1e-6);
    for (size_t i = 0; i < n; i++)
        s.m[i] = 0;
    /* AdamW steps */
    static const struct {
        const char *name;
        ow__qkind k;
        double bytes; /* per parameter: p r+w, g r, state r+w */
    } kinds[] = {{"f32", OW__Q_F32, 28},
                 {"bf16", OW__Q_BF16, 20},
                 {"bf16-sr", OW__Q_BF16_SR, 20},
                 {"int8", OW__Q_I8S, 16 + 16.0 / OW__QBLOCK}};
    int maxt = 1;
#ifdef _OPENMP
    maxt = omp_get_max_threads();
#endif
    for (int threads = 1; threads <= maxt; threads *= 2)
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            for (int r = 0; r < REPS; r++) {
                double b1 = 0.9, b2 = 0.999, st = r + 1.0;
                adamw_ctx c = {.keep = 1 - 1e-3f * 0.01f,
                               .b1 = (float)b1,
                               .omb1 = (float)(1 - b1),
                               .b2 = (float)b2,
                               .omb2 = (float)(1 - b2),
                               .bc2s = (float)sqrt(1 - pow(b2, st)),
                               .eps = 1e-8f,
                               .nss = (float)(-1e-3 / (1 - pow(b1, st)))};
                double t0 = now();
                step(&s, kinds[k].k, &c, threads);
                t[r] = now() - t0;
            }
            qsort(t, REPS, sizeof *t, cmp);
            double med = t[REPS / 2], best = t[0];
            printf("AdamW %-8s %d thread(s) %7.2f ms (best %7.2f)  %5.2f ns/param  %5.2f "
                   "GB/s of its pattern (%.2f B/param)\n",
                   kinds[k].name, threads, med * 1e3, best * 1e3, best / n * 1e9,
                   n * kinds[k].bytes / best * 1e-9, kinds[k].bytes);
        }
    state_free(&s);
    return 0;
}
