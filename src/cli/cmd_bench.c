/* cmd_bench.c -- `optwrap bench`: times optimizer steps (SGD-momentum, AdamW, Lamb,
 * Lion, Adafactor) on ViT-B-like tensor lists of 1M/10M/100M floats and on 1,000 tiny
 * tensors, at 1 and 2 threads, next to a kernel with the optimizer's memory-access
 * pattern and no arithmetic, timed in the same run: ms/step, GB/s, % of the pattern.
 * --state runs the optimizers with state_dtype bf16 or int8, each against the pattern of
 * its own bytes (moments of 2 bytes, or 1 plus 4 per block of 256); the last column is
 * the state the optimizer holds, in bytes per parameter (ow_optimizer_get_state_bytes:
 * small tensors keep float32 state under int8).
 * Figures are printed, never asserted (the machine is shared and noisy). */
#include "cli.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const cli_option bench_options[] = {
    {"--optimizers", 1,
     "comma list of sgd,adamw,lamb,lion,adan,adafactor,muon (default: all but muon, "
     "whose bf16 Newton-Schulz is compute-bound: name it, on small sizes)"},
    {"--quick", 0, "1M parameters, 1 thread, few steps (a smoke test)"},
    {"--sizes", 1,
     "comma list of ViT-like sizes in millions, 'vitb' (ViT-B/16 itself, 86.6M), 'tiny' "
     "(1000x1000) and 'overhead' (1000x1) (default 1,10,100,vitb,tiny,overhead)"},
    {"--state", 1,
     "comma list of optimizer state dtypes f32,bf16,int8 (default f32; bf16 and int8 "
     "for sgd, adamw, lamb and lion)"},
    {"--threads", 1, "comma list of thread counts (default 1,2)"},
};

/* A state dtype: its state_dtype value and bytes per moment element (int8: a code and
 * its share of the block's absmax). */
static const struct {
    const char *key, *value;
    double bytes;
} states[] = {
    {"f32", "float32", 4}, {"bf16", "bfloat16", 2}, {"int8", "int8", 1 + 4.0 / 256}};

typedef struct bench_opt {
    const char *key, *label, *config; /* config: the optimizer node, without its `}` */
    int reads, writes;                /* arrays of the access pattern */
    bool state_dtype;                 /* has the state_dtype key */
    bool named_only;                  /* not in the default list */
} bench_opt;

static const bench_opt optimizers[] = {
    {"sgd", "SGD-momentum", "{type: SGD, lr: 0.01, momentum: 0.9, weight_decay: 0.0001",
     3, 2, true, false},
    {"adamw", "AdamW", "{type: AdamW, lr: 0.001, weight_decay: 0.05", 4, 3, true, false},
    {"lamb", "Lamb", "{type: timm.lamb, lr: 0.001, weight_decay: 0.01", 4, 3, true,
     false},
    {"lion", "Lion", "{type: timm.lion, lr: 0.0001, weight_decay: 0.01", 3, 2, true,
     false},
    /* p, g, exp_avg, exp_avg_sq, exp_avg_diff, neg_pre_grad read; all but g written */
    {"adan", "Adan", "{type: timm.adan, lr: 0.001, weight_decay: 0.02", 6, 5, false,
     false},
    {"adafactor", "Adafactor", "{type: timm.adafactor, lr: 0.001", 2, 1, false, false},
    /* momentum for all; 2-D weights: torch's bf16 Newton-Schulz, emulated exactly */
    {"muon", "Muon", "{type: timm.muon, lr: 0.02", 3, 2, false, true},
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- layouts ------------------------------------------------------------------------
 */

typedef struct layout {
    int64_t (*shape)[2]; /* [n] rows, cols (cols 0: 1-D) */
    size_t n;
    size_t numel;
} layout;

/* ViT-B/16's 152 tensors, 2-D ones with their rows scaled so the total is near target
 * (target 0: unscaled, ViT-B/16 itself). */
static int vit_layout(double target, layout *out)
{
    static const int64_t block[][2] = {{768, 0},    {768, 0},  {2304, 768}, {2304, 0},
                                       {768, 768},  {768, 0},  {768, 0},    {768, 0},
                                       {3072, 768}, {3072, 0}, {768, 3072}, {768, 0}};
    /* cls_token, pos_embed, patch_embed weight and bias, final norm, head */
    static const int64_t edge[][2] = {{768, 0}, {197 * 768, 0}, {768, 768},  {768, 0},
                                      {768, 0}, {768, 0},       {1000, 768}, {1000, 0}};
    size_t n = 12 * 12 + 8;
    out->shape = calloc(n, sizeof *out->shape);
    if (!out->shape)
        return -1;
    double full = 0;
    for (int b = 0; b < 12; b++)
        for (int k = 0; k < 12; k++)
            full += (double)block[k][0] * (block[k][1] ? block[k][1] : 1);
    for (int k = 0; k < 8; k++)
        full += (double)edge[k][0] * (edge[k][1] ? edge[k][1] : 1);
    double s = target > 0 ? target / full : 1.0;
    out->n = 0;
    out->numel = 0;
    for (size_t i = 0; i < n; i++) {
        const int64_t *src = i < 8 ? edge[i] : block[(i - 8) % 12];
        int64_t rows = src[1] ? (int64_t)fmax(1, round((double)src[0] * s)) : src[0];
        if (!src[1] && src[0] > 4096) /* the position embedding scales too */
            rows = (int64_t)fmax(1, round((double)src[0] * s));
        out->shape[out->n][0] = rows;
        out->shape[out->n][1] = src[1];
        out->numel += (size_t)rows * (size_t)(src[1] ? src[1] : 1);
        out->n++;
    }
    return 0;
}

/* 1,000 tensors of `each` elements: with 1, the time is the per-step overhead */
static int tiny_layout(layout *out, int64_t each)
{
    out->n = 1000;
    out->shape = calloc(out->n, sizeof *out->shape);
    if (!out->shape)
        return -1;
    for (size_t i = 0; i < out->n; i++)
        out->shape[i][0] = each;
    out->numel = 1000 * (size_t)each;
    return 0;
}

/* ---- the memory-pattern kernel
 * --------------------------------------------------------- */

/* Reads `reads` arrays and writes all but one of them (the gradient) in place, with one
 * add per element: the optimizer's traffic without its arithmetic. One parallel region,
 * contiguous chunks; serial below the engine's threshold (OW__SERIAL_BELOW), so that on
 * tiny layouts it times the bytes and not a parallel region. */
static void pattern(float *const *a, int reads, size_t n, int threads)
{
#pragma omp parallel num_threads(threads) if (n >= 65536)
    {
        size_t id = 0, nt = 1;
#ifdef _OPENMP
        id = (size_t)omp_get_thread_num();
        nt = (size_t)omp_get_num_threads();
#endif
        size_t lo = n / nt * id, hi = id + 1 == nt ? n : n / nt * (id + 1);
        float *restrict x0 = a[0], *restrict x1 = a[1], *restrict x2 = a[2],
                        *restrict x3 = a[3], *restrict x4 = a[4], *restrict x5 = a[5];
        if (reads == 6) /* Adan: x1 (the gradient) read, the other five written */
#pragma omp simd
            for (size_t i = lo; i < hi; i++) {
                float s = x1[i] + x5[i];
                x0[i] += s;
                x2[i] += s;
                x3[i] += x2[i];
                x4[i] += x3[i];
                x5[i] = s;
            }
        else if (reads == 4)
#pragma omp simd
            for (size_t i = lo; i < hi; i++) {
                float s = x1[i] + x3[i];
                x0[i] += s;
                x2[i] += s;
                x3[i] += x2[i];
            }
        else if (reads == 3)
#pragma omp simd
            for (size_t i = lo; i < hi; i++) {
                float s = x1[i] + x2[i];
                x0[i] += s;
                x2[i] = s;
            }
        else
#pragma omp simd
            for (size_t i = lo; i < hi; i++)
                x0[i] += x1[i];
    }
}

/* The pattern of quantized state: p read and written, g read, `moments` arrays of
 * esize-byte elements read and written (int8's absmax, 4 bytes per 256, is left out). */
static void pattern_q(float *p, const float *g, unsigned char *m0, unsigned char *m1,
                      int moments, int esize, size_t n, int threads)
{
#pragma omp parallel num_threads(threads) if (n >= 65536)
    {
        size_t id = 0, nt = 1;
#ifdef _OPENMP
        id = (size_t)omp_get_thread_num();
        nt = (size_t)omp_get_num_threads();
#endif
        size_t lo = n / nt * id, hi = id + 1 == nt ? n : n / nt * (id + 1);
        float *restrict x = p;
        const float *restrict y = g;
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
            x[i] += y[i];
        /* the moments' bytes, read and written once (an element's bytes as one) */
        for (int k = 0; k < moments; k++) {
            unsigned char *restrict c = k ? m1 : m0;
#pragma omp simd
            for (size_t i = lo * (size_t)esize; i < hi * (size_t)esize; i++)
                c[i] = (unsigned char)(c[i] + 1);
        }
    }
}

/* The pattern's arrays, every page written before timing: calloc'd pages that are only
 * read (the gradient) stay mapped to the kernel's one zero page, which always hits in
 * cache, and the pattern would move 4 bytes per element less than the optimizer. */
static float *pattern_array(size_t n)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; x && i < n; i++)
        x[i] = (float)(i & 1023) * 1e-30f;
    return x;
}

/* ---- one measurement ----------------------------------------------------------------
 */

typedef struct run {
    ow_model *model;
    float *data, *grad;
    size_t numel;
} run;

static int build_model(const layout *l, run *r, ow_error *err)
{
    memset(r, 0, sizeof *r);
    r->numel = l->numel;
    r->data = malloc(l->numel * sizeof(float));
    r->grad = malloc(l->numel * sizeof(float));
    if (!r->data || !r->grad) {
        snprintf(err->message, sizeof err->message, "bench: out of memory");
        return err->code = OW_ERR_NOMEM;
    }
    uint32_t x = 12345;
    for (size_t i = 0; i < l->numel; i++) {
        x = x * 1664525u + 1013904223u;
        r->data[i] = (float)(x >> 8) / 16777216.0f - 0.5f;
        r->grad[i] = (float)((x >> 4) & 0xffff) / 65536.0f - 0.5f;
    }
    const ow_module_info root = {.name = "", .type = "Bench"};
    int rc;
    if ((rc = ow_model_new("bench", &r->model, err)) ||
        (rc = ow_model_add_module(r->model, &root, err)))
        return rc;
    size_t off = 0;
    for (size_t i = 0; i < l->n; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%zu", i);
        int64_t shape[2] = {l->shape[i][0], l->shape[i][1]};
        size_t n = (size_t)shape[0] * (size_t)(shape[1] ? shape[1] : 1);
        ow_param_info pi = {.module = "",
                            .name = name,
                            .ndim = shape[1] ? 2 : 1,
                            .shape = shape,
                            .requires_grad = true,
                            .data = r->data + off,
                            .grad = r->grad + off};
        if ((rc = ow_model_add_param(r->model, &pi, err)))
            return rc;
        off += n;
    }
    return OW_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

#define MAX_ROUNDS 400

/* Times one optimizer and its pattern kernel in alternating rounds (the machine's
 * bandwidth drifts, so both see the same conditions), each round a batch of at least
 * ~2 ms; *ms and *pms get the medians of the per-step times. The first step (state
 * allocation, first touch of the state's pages) and one pattern call are not timed. */
/* The pattern for state dtype si (0: float32's). */
static void pattern_for(const bench_opt *o, size_t si, float *const *bufs, size_t n,
                        int threads)
{
    if (si == 0)
        pattern(bufs, o->reads, n, threads);
    else
        pattern_q(bufs[0], bufs[1], (unsigned char *)bufs[2], (unsigned char *)bufs[3],
                  o->reads - 2, (int)states[si].bytes, n, threads);
}

static int time_both(const run *r, const bench_opt *o, size_t si, float *const *bufs,
                     int threads, double budget, double *ms, double *pms, double *held,
                     ow_error *err)
{
    char text[320];
    snprintf(text, sizeof text, "optim_wrapper: {optimizer: %s%s%s}}", o->config,
             si ? ", state_dtype: " : "", si ? states[si].value : "");
    ow_cfg *cfg = NULL;
    ow_groups *groups = NULL;
    ow_optimizer *opt = NULL;
    static double so[MAX_ROUNDS], sp[MAX_ROUNDS];
    int rc;
    if ((rc = ow_cfg_load_string(text, "<bench>", &cfg, err)) ||
        (rc = ow_groups_build(cfg, r->model, &groups, err)) ||
        (rc = ow_optimizer_new(groups, &opt, err)) ||
        (rc = ow_optimizer_set_threads(opt, threads, err)) ||
        (rc = ow_optimizer_step(opt, err)))
        goto done;
    pattern_for(o, si, bufs, r->numel, threads);
    double t0 = now();
    if ((rc = ow_optimizer_step(opt, err)))
        goto done;
    double one = now() - t0;
    int reps = one >= 2e-3 ? 1 : (int)(2e-3 / (one > 1e-7 ? one : 1e-7)) + 1;
    int rounds = 0;
    double start = now();
    do {
        t0 = now();
        for (int i = 0; i < reps; i++)
            if ((rc = ow_optimizer_step(opt, err)))
                goto done;
        double t1 = now();
        for (int i = 0; i < reps; i++)
            pattern_for(o, si, bufs, r->numel, threads);
        so[rounds] = 1e3 * (t1 - t0) / reps;
        sp[rounds] = 1e3 * (now() - t1) / reps;
        rounds++;
    } while (rounds < MAX_ROUNDS && (rounds < 5 || now() - start < budget));
    *ms = median(so, rounds);
    *pms = median(sp, rounds);
    *held = (double)ow_optimizer_get_state_bytes(opt) / (double)r->numel;
done:
    ow_optimizer_free(opt);
    ow_groups_free(groups);
    ow_cfg_free(cfg);
    return rc;
}

static bool listed(const char *list, const char *item)
{
    if (!list)
        return true;
    size_t n = strlen(item);
    for (const char *p = list; (p = strstr(p, item)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

int cli_bench(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("bench");
    size_t n_opts = sizeof bench_options / sizeof *bench_options;
    cli_args a;
    int st = cli_parse(argc, argv, cmd, bench_options, n_opts, &a);
    if (st != CLI_OK)
        return st;
    if (a.help) {
        cli_help(stdout, cmd, bench_options, n_opts);
        return CLI_OK;
    }
    bool quick = cli_value(&a, bench_options, n_opts, "--quick") != NULL;
    const char *which = cli_value(&a, bench_options, n_opts, "--optimizers");
    const char *sizes = cli_value(&a, bench_options, n_opts, "--sizes");
    const char *tlist = cli_value(&a, bench_options, n_opts, "--threads");
    const char *slist = cli_value(&a, bench_options, n_opts, "--state");
    if (!slist)
        slist = "f32";
    for (const char *p = slist; *p;) { /* every listed dtype is known */
        size_t len = strcspn(p, ",");
        bool known = false;
        for (size_t k = 0; k < sizeof states / sizeof *states; k++)
            known |= strlen(states[k].key) == len && !strncmp(p, states[k].key, len);
        if (!known) {
            fprintf(stderr,
                    "optwrap bench: --state: unknown dtype '%.*s' (f32, bf16, int8)\n",
                    (int)len, p);
            return CLI_USAGE;
        }
        p += len + (p[len] == ',');
    }
    if (!sizes)
        sizes = quick ? "1" : "1,10,100,vitb,tiny,overhead";
    if (!tlist)
        tlist = quick ? "1" : "1,2";
    double budget = quick ? 0.05 : 1.0;
    /* ViT-like sizes in millions; "vitb" is 0: unscaled */
    static const struct {
        const char *name, *label;
        double millions;
        int64_t tiny; /* 1,000 tensors of this many elements, or 0 */
    } layouts[] = {{"1", "vit-1M", 1, 0},          {"10", "vit-10M", 10, 0},
                   {"100", "vit-100M", 100, 0},    {"vitb", "vit-b/16", 0, 0},
                   {"tiny", "1000x1000", 0, 1000}, {"overhead", "1000x1", 0, 1}};
    printf("%-13s %-5s %7s %-10s %3s %10s %9s %12s %9s %9s %9s\n", "optimizer", "state",
           "B/param", "layout", "thr", "ms/step", "GB/s", "pattern ms", "% pattern",
           "extra us", "state B/p");
    ow_error err;
    ow_error_clear(&err);
    for (size_t si = 0; si < sizeof layouts / sizeof *layouts; si++) {
        if (!listed(sizes, layouts[si].name))
            continue;
        layout l = {0};
        int lrc = layouts[si].tiny ? tiny_layout(&l, layouts[si].tiny)
                                   : vit_layout(layouts[si].millions * 1e6, &l);
        run r;
        float *bufs[6] = {0};
        if (lrc || build_model(&l, &r, &err)) {
            free(l.shape);
            return cli_fail(&err);
        }
        for (int b = 0; b < 6; b++) {
            bufs[b] = pattern_array(l.numel);
            if (!bufs[b]) {
                fprintf(stderr, "optwrap bench: out of memory\n");
                return CLI_ERROR;
            }
        }
        const char *lname = layouts[si].label;
        for (int th = 1; th <= 64; th++) {
            char tn[16];
            snprintf(tn, sizeof tn, "%d", th);
            if (!listed(tlist, tn))
                continue;
            for (size_t k = 0; k < sizeof optimizers / sizeof *optimizers; k++)
                for (size_t si = 0; si < sizeof states / sizeof *states; si++) {
                    const bench_opt *o = &optimizers[k];
                    if ((which ? !listed(which, o->key) : o->named_only) ||
                        !listed(slist, states[si].key) || (si && !o->state_dtype))
                        continue;
                    double ms = 0, pms = 0, held = 0;
                    if (time_both(&r, o, si, bufs, th, budget, &ms, &pms, &held, &err))
                        return cli_fail(&err);
                    /* p read and written, g read, each moment read and written */
                    double per = si ? 12.0 + 2 * (o->reads - 2) * states[si].bytes
                                    : 4.0 * (o->reads + o->writes);
                    double bytes = per * (double)l.numel;
                    printf("%-13s %-5s %7.2f %-10s %3d %10.3f %9.1f %12.3f %8.0f%% %9.1f "
                           "%9.3f\n",
                           o->label, states[si].key, per, lname, th, ms,
                           bytes / (ms * 1e6), pms, 100.0 * pms / ms, 1e3 * (ms - pms),
                           held);
                    fflush(stdout);
                }
        }
        for (int b = 0; b < 6; b++)
            free(bufs[b]);
        ow_model_free(r.model);
        free(r.data);
        free(r.grad);
        free(l.shape);
    }
    return CLI_OK;
}
