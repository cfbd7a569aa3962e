/* bench_wrapper.c -- what the optim wrapper adds to an optimizer step on ViT-B/16
 * (86,567,656 floats): a window's end (inf/nan check, clipping, AMP's unscale, zeroing)
 * and a micro-batch inside a window, against AdamW's step alone, with the memory
 * traffic each one needs at the machine's measured copy bandwidth. Medians of
 * interleaved runs, figures only. */
#include "optwrap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

static const struct {
    const char *name, *keys;
    double extra_bytes; /* per parameter, beyond AdamW's 28: what the wrapper must move */
} cases[] = {
    {"OptimWrapper", "", 8}, /* check while zeroing: r + w */
    {"clip_grad norm", "  clip_grad: {max_norm: 1.0}\n",
     16}, /* scan r, scale rw, zero w */
    {"AMP + clip_grad norm", "  type: AmpOptimWrapper\n  clip_grad: {max_norm: 1.0}\n",
     16},
    {"AMP, no clipping", "  type: AmpOptimWrapper\n", 16},
};

int main(int argc, char **argv)
{
    long r = argc > 1 ? strtol(argv[1], NULL, 10) : 7;
    int reps = r < 1 ? 1 : r > 64 ? 64 : (int)r;
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    if (ow_model_new_arch("vit-base-p16", &m, &err))
        return 1;
    size_t n = (size_t)ow_model_get_numel(m);
    float *d = malloc(n * sizeof *d), *g = malloc(n * sizeof *g), *copy = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        d[i] = 0.01f * (float)(i % 97);
        g[i] = 0.001f * (float)(i % 89);
        copy[i] = 0;
    }
    ow_model_set_buffers(m, d, g, n, &err);
    /* the machine's bandwidth right now: a copy moves 8 bytes per float */
    double bw[15];
    for (int k = 0; k < 15; k++) {
        double t0 = now();
        memcpy(copy, g, n * 4);
        bw[k] = 8.0 * (double)n / (now() - t0);
    }
    double gbs = median(bw, 15);
    printf("ViT-B/16, %zu floats; copy bandwidth %.1f GB/s; medians of %d\n", n,
           gbs / 1e9, reps);
    printf("%-22s %10s %10s %12s %14s\n", "wrapper", "step ms", "update ms", "extra ms",
           "extra vs bytes");
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml,
                 "optim_wrapper:\n  optimizer: {type: AdamW, lr: 0.001, "
                 "weight_decay: 0.05}\n%s",
                 cases[c].keys);
        ow_cfg *cfg = NULL;
        ow_optim_wrapper *w = NULL;
        if (ow_cfg_load_string(yaml, "bench", &cfg, &err) ||
            ow_optim_wrapper_new(cfg, m, NULL, &w, &err)) {
            char msg[1024];
            ow_error_format(&err, msg, sizeof msg);
            fprintf(stderr, "%s\n", msg);
            return 1;
        }
        ow_optimizer *opt = ow_optim_wrapper_get_optimizer(w);
        ow_optimizer_step(opt, &err); /* state allocated, pages touched */
        double ts[64], tu[64];
        for (int k = 0; k < reps; k++) {
            double t0 = now();
            ow_optimizer_step(opt, &err);
            ts[k] = now() - t0;
            for (size_t i = 0; i < n; i += 1024) /* a backward wrote the gradients */
                g[i] = 0.001f;
            t0 = now();
            ow_optim_wrapper_update(w, NULL, &err);
            tu[k] = now() - t0;
        }
        double s = median(ts, reps), u = median(tu, reps);
        double ideal = cases[c].extra_bytes * (double)n / gbs;
        printf("%-22s %10.1f %10.1f %12.1f %13.0f%%\n", cases[c].name, s * 1e3, u * 1e3,
               (u - s) * 1e3, 100.0 * ideal / (u - s));
        ow_optim_wrapper_free(w);
        ow_cfg_free(cfg);
    }
    free(d);
    free(g);
    free(copy);
    ow_model_free(m);
    return 0;
}
