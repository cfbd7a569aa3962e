/* mpi_dist.c -- data-parallel wrappers under mpirun (tests/check-mpi.sh runs it on 2
 * and 4 ranks): plain data-parallel, ZeRO stage 1 and stage 2 give bit for bit the
 * parameters of one process stepping on the gradients averaged in rank order (SGD with
 * momentum and AdamW, with accumulation, clipping by the global norm, a schedule, and
 * AMP with an overflow on one rank that skips the step everywhere); every rank holds
 * the same parameters; ranks that disagree fail on every rank, naming the rank. */
#include <optwrap-mpi.h>
#include <optwrap-plugin.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank, size, failures;

#define EXPECT(cond, ...)                                                                \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            failures++;                                                                  \
            fprintf(stderr, "rank %d: %s:%d: %s: ", rank, __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
        }                                                                                \
    } while (0)

/* backbone.fc (300 x 250: five scan units, so shards cut inside it), norm, head */
typedef struct host {
    ow_model *model;
    float *data, *grad;
    size_t n;
    ow_optim_wrapper *w;
} host;

static int host_init(host *h, bool extra, ow_error *err)
{
    memset(h, 0, sizeof *h);
    static const ow_module_info mods[] = {
        {.name = "", .type = "Net"},
        {.name = "fc", .type = "Linear", .kind = OW_MODULE_LINEAR},
        {.name = "norm", .type = "LayerNorm", .kind = OW_MODULE_NORM},
        {.name = "head", .type = "Linear", .kind = OW_MODULE_LINEAR},
    };
    static const int64_t fc[] = {300, 250}, b300[] = {300}, n250[] = {250},
                         head[] = {10, 300}, b10[] = {10}, x[] = {7};
    /* a frozen tensor in the middle keeps the flat order honest */
    const ow_param_info ps[] = {
        {"fc", "weight", 2, fc, true, NULL, NULL, NULL},
        {"fc", "bias", 1, b300, true, NULL, NULL, NULL},
        {"norm", "weight", 1, n250, true, NULL, NULL, NULL},
        {"norm", "bias", 1, n250, true, NULL, NULL, NULL},
        {"head", "weight", 2, head, true, NULL, NULL, NULL},
        {"head", "frozen", 1, b10, false, NULL, NULL, NULL},
        {"head", "bias", 1, b10, true, NULL, NULL, NULL},
        {"head", "extra", 1, x, true, NULL, NULL, NULL},
    };
    int rc = ow_model_new("net", &h->model, err);
    for (size_t i = 0; i < 4 && rc == OW_OK; i++)
        rc = ow_model_add_module(h->model, &mods[i], err);
    for (size_t i = 0; i < (extra ? 8u : 7u) && rc == OW_OK; i++)
        rc = ow_model_add_param(h->model, &ps[i], err);
    if (rc)
        return rc;
    h->n = (size_t)ow_model_get_numel(h->model);
    h->data = calloc(h->n, sizeof *h->data);
    h->grad = calloc(h->n, sizeof *h->grad);
    if (!h->data || !h->grad)
        return OW_ERR_NOMEM;
    for (size_t i = 0; i < h->n; i++)
        h->data[i] = 0.02f * sinf(0.37f * (float)i);
    return ow_model_set_buffers(h->model, h->data, h->grad, h->n, err);
}

static int host_build(host *h, const char *yaml, int64_t iters, ow_error *err)
{
    ow_cfg *cfg = NULL;
    ow_sched_loop loop = {.max_iters = iters};
    int rc = ow_cfg_load_string(yaml, "dist.yaml", &cfg, err);
    if (rc == OW_OK)
        rc = ow_optim_wrapper_new(cfg, h->model, &loop, &h->w, err);
    ow_cfg_free(cfg);
    return rc;
}

static void host_free(host *h)
{
    ow_optim_wrapper_free(h->w);
    ow_model_free(h->model);
    free(h->data);
    free(h->grad);
}

/* rank r's gradient of micro-batch it (inf at one element where asked) */
static float raw(int r, int it, size_t i, int bad_rank, int bad_it)
{
    if (r == bad_rank && it == bad_it && i == 7)
        return INFINITY;
    return sinf(0.001f * (float)(i + 1) * (float)(it + 1) + 0.37f * (float)r) *
           (1.0f + 0.1f * (float)r);
}

static const char *const configs[] = {
    /* SGD with momentum, accumulation, clipping by the global norm */
    "optim_wrapper:\n"
    "  optimizer: {type: SGD, lr: 0.1, momentum: 0.9, weight_decay: 0.0001}\n"
    "  paramwise_cfg: {norm_decay_mult: 0.0}\n"
    "  accumulative_counts: 2\n"
    "  clip_grad: {max_norm: 1.0}\n"
    "  zero_stage: %d\n",
    /* AdamW with a warm-up, accumulation, clipping */
    "optim_wrapper:\n"
    "  optimizer: {type: AdamW, lr: 0.001, weight_decay: 0.05}\n"
    "  paramwise_cfg: {norm_decay_mult: 0.0, bias_decay_mult: 0.0}\n"
    "  accumulative_counts: 2\n"
    "  clip_grad: {max_norm: 0.5}\n"
    "  zero_stage: %d\n"
    "param_scheduler:\n"
    "  - {type: LinearLR, start_factor: 0.1, by_epoch: false, begin: 0, end: 6}\n",
    /* AMP: dynamic loss scale, one rank's overflow skips the step on every rank */
    "optim_wrapper:\n"
    "  type: AmpOptimWrapper\n"
    "  optimizer: {type: AdamW, lr: 0.001, weight_decay: 0.05}\n"
    "  loss_scale: {init_scale: 1024.0, growth_interval: 2}\n"
    "  accumulative_counts: 2\n"
    "  clip_grad: {max_norm: 1.0}\n"
    "  zero_stage: %d\n",
    /* mmpretrain's DeepSpeed form: the stage, clipping, accumulation and DeepSpeed's
     * fp16 loss scaler from the strategy */
    "optim_wrapper:\n"
    "  type: DeepSpeedOptimWrapper\n"
    "  optimizer: {type: AdamW, lr: 0.001, weight_decay: 0.05}\n"
    "strategy:\n"
    "  type: DeepSpeedStrategy\n"
    "  fp16: {enabled: true, loss_scale: 0, initial_scale_power: 10, loss_scale_window: "
    "2,\n"
    "         hysteresis: 1, min_loss_scale: 1}\n"
    "  gradient_accumulation_steps: 2\n"
    "  gradient_clipping: 1.0\n"
    "  zero_optimization: {stage: %d, overlap_comm: true, contiguous_gradients: true}\n",
    /* AdamW's moments stored in bfloat16 (state_dtype) */
    "optim_wrapper:\n"
    "  optimizer: {type: AdamW, lr: 0.001, weight_decay: 0.05, state_dtype: bfloat16}\n"
    "  accumulative_counts: 2\n"
    "  clip_grad: {max_norm: 0.5}\n"
    "  zero_stage: %d\n",
};

enum { ITERS = 12 };

/* Trains with the gradients of all ranks averaged: data-parallel over MPI (ref false),
 * or one process stepping on the average taken here in rank order (ref true). */
static void train_range(host *h, bool ref, int bad_rank, int bad_it, float *norms,
                        int from, int to)
{
    ow_error err;
    ow_error_clear(&err);
    float *acc = ref ? calloc((size_t)size * h->n, sizeof *acc) : NULL;
    int win = 0;
    for (int it = from; it < to; it++) {
        float m = ow_optim_wrapper_get_loss_multiplier(h->w);
        bool end = ow_optim_wrapper_should_sync(h->w);
        if (!ref) {
            for (size_t i = 0; i < h->n; i++)
                h->grad[i] += raw(rank, it, i, bad_rank, bad_it) * m;
        } else {
            for (int r = 0; r < size; r++)
                for (size_t i = 0; i < h->n; i++)
                    acc[(size_t)r * h->n + i] += raw(r, it, i, bad_rank, bad_it) * m;
            if (end) { /* DDP: each rank's sum divided by the world size, in rank order */
                for (size_t i = 0; i < h->n; i++) {
                    float s = acc[i] / (float)size;
                    for (int r = 1; r < size; r++)
                        s += acc[(size_t)r * h->n + i] / (float)size;
                    h->grad[i] = s;
                }
                memset(acc, 0, (size_t)size * h->n * sizeof *acc);
            }
        }
        ow_update_info info;
        int rc = ow_optim_wrapper_update(h->w, &info, &err);
        EXPECT(rc == OW_OK, "update %d: %s", it, err.message);
        if (info.window_end)
            norms[win++] = info.grad_norm;
    }
    free(acc);
}

static void train(host *h, bool ref, int bad_rank, int bad_it, float *norms)
{
    train_range(h, ref, bad_rank, bad_it, norms, 0, ITERS);
}

static bool same_everywhere(const float *x, size_t n)
{
    float *zero = malloc(n * sizeof *zero);
    memcpy(zero, x, n * sizeof *zero);
    MPI_Bcast(zero, (int)(n * sizeof *zero), MPI_BYTE, 0, MPI_COMM_WORLD);
    bool same = !memcmp(zero, x, n * sizeof *zero);
    free(zero);
    int all = same, both;
    MPI_Allreduce(&all, &both, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return both;
}

static void bit_identity(void)
{
    for (size_t c = 0; c < sizeof configs / sizeof *configs; c++) {
        bool amp = c == 2 || c == 3;
        int bad_rank = amp ? size - 1 : -1, bad_it = 5;
        char yaml[1024];
        ow_error err;
        ow_error_clear(&err);
        host ref;
        float ref_norms[ITERS], norms[ITERS];
        snprintf(yaml, sizeof yaml, configs[c], 0);
        int rc = host_init(&ref, false, &err);
        if (rc == OW_OK)
            rc = host_build(&ref, yaml, ITERS, &err);
        EXPECT(rc == OW_OK, "config %zu: %s", c, err.message);
        if (rc)
            return;
        train(&ref, true, bad_rank, bad_it, ref_norms);
        size_t state[3] = {0};
        for (int stage = 0; stage <= 2; stage++) {
            host h;
            snprintf(yaml, sizeof yaml, configs[c], stage);
            rc = host_init(&h, false, &err);
            if (rc == OW_OK)
                rc = host_build(&h, yaml, ITERS, &err);
            if (rc == OW_OK)
                rc = ow_optim_wrapper_set_comm(h.w, MPI_COMM_WORLD, &err);
            EXPECT(rc == OW_OK, "config %zu stage %d: %s", c, stage, err.message);
            if (rc) {
                host_free(&h);
                continue;
            }
            train(&h, false, bad_rank, bad_it, norms);
            EXPECT(!memcmp(h.data, ref.data, h.n * sizeof *h.data),
                   "config %zu: zero_stage %d on %d ranks differs from one process "
                   "stepping on the averaged gradients",
                   c, stage, size);
            EXPECT(!memcmp(norms, ref_norms, ITERS / 2 * sizeof *norms),
                   "config %zu stage %d: clip norms differ (%.9g vs %.9g)", c, stage,
                   (double)norms[0], (double)ref_norms[0]);
            EXPECT(same_everywhere(h.data, h.n), "config %zu stage %d: ranks differ", c,
                   stage);
            EXPECT(ow_optim_wrapper_get_loss_scale(h.w) ==
                       ow_optim_wrapper_get_loss_scale(ref.w),
                   "config %zu stage %d: loss scale", c, stage);
            ow_dist_stats st;
            EXPECT(ow_optim_wrapper_get_dist_stats(h.w, &st, &err) == OW_OK, "%s",
                   err.message);
            state[stage] = st.state_bytes;
            if (rank == 0)
                printf("config %zu zero_stage %d: shard [%lld, %lld) of %lld, state %zu "
                       "bytes, %llu bytes sent\n",
                       c, stage, (long long)st.shard_begin, (long long)st.shard_end,
                       (long long)st.numel, st.state_bytes,
                       (unsigned long long)st.bytes_sent);
            host_free(&h);
        }
        /* the state is split, not copied: the ranks' shards add up to the whole (but
         * the step counts of a tensor cut between ranks), none more than 1 / ranks of
         * it and a scan unit (16384 elements: 8 bytes each for AdamW, 4 for SGD) */
        unsigned long long mine = state[1], sum = 0, most = 0;
        MPI_Allreduce(&mine, &sum, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(&mine, &most, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
        EXPECT(state[1] == state[2] && sum >= state[0] && sum <= state[0] + 64u * size &&
                   most <= state[0] / (size_t)size + 8 * 16384,
               "config %zu: state %zu, %llu in all, %llu at most (ZeRO) vs %zu (plain)",
               c, state[1], sum, most, state[0]);
        if (c == 2) /* the overflow was skipped: the scale backed off at least once */
            EXPECT(ow_optim_wrapper_get_loss_scale(ref.w) < 4096.0, "AMP scale %g",
                   ow_optim_wrapper_get_loss_scale(ref.w));
        host_free(&ref);
    }
}

/* Every registered optimizer: under ZeRO stage 2 either refused (whole-tensor reads)
 * or bit for bit plain data-parallel (stage 0), AMP overflow and clipping included. */
static void every_optimizer(void)
{
    int same = 0, refused = 0, unbuilt = 0;
    for (const ow_entry *e = ow_registry_next(NULL); e; e = ow_registry_next(e)) {
        if (e->kind != OW_KIND_OPTIMIZER || !e->ops)
            continue;
        const ow_optimizer_ops *ops = e->ops;
        if (ops->needs & OW_NEEDS_HVP) { /* this host has no Hessian products to give */
            unbuilt++;
            continue;
        }
        float *data[3] = {NULL, NULL, NULL};
        int rcs[3] = {0, 0, 0};
        size_t n = 0;
        for (int stage = 0; stage <= 2; stage += 2) {
            char yaml[512];
            snprintf(yaml, sizeof yaml,
                     "optim_wrapper:\n  type: AmpOptimWrapper\n"
                     "  optimizer: {type: %s%s%s, lr: 0.01}\n"
                     "  loss_scale: {init_scale: 1024.0, growth_interval: 2}\n"
                     "  accumulative_counts: 2\n  clip_grad: {max_norm: 1.0}\n"
                     "  zero_stage: %d\n",
                     e->scope ? e->scope : "", e->scope ? "." : "", e->name, stage);
            host h;
            ow_error err;
            ow_error_clear(&err);
            float norms[ITERS];
            int rc = host_init(&h, false, &err);
            if (rc == OW_OK)
                rc = host_build(&h, yaml, ITERS, &err);
            /* every rank builds the same: a config error is everyone's */
            if (rc == OW_OK &&
                (rc = ow_optim_wrapper_set_comm(h.w, MPI_COMM_WORLD, &err)))
                rcs[stage] = rc;
            else if (rc)
                rcs[stage] = -1;
            if (rc == OW_OK) {
                train(&h, false, size - 1, 5, norms);
                n = h.n;
                data[stage] = malloc(n * sizeof(float));
                memcpy(data[stage], h.data, n * sizeof(float));
            }
            host_free(&h);
        }
        if (rcs[0] == -1) {
            unbuilt++;
        } else if (rcs[2] == OW_ERR_UNSUPPORTED) {
            refused++;
            if (rank == 0)
                printf("refused under ZeRO: %s%s%s\n", e->scope ? e->scope : "",
                       e->scope ? "." : "", e->name);
        } else {
            EXPECT(data[0] && data[2] && !memcmp(data[0], data[2], n * sizeof(float)),
                   "%s: zero_stage 2 differs from plain data-parallel (rc %d, %d)",
                   e->name, rcs[0], rcs[2]);
            same++;
        }
        free(data[0]);
        free(data[2]);
    }
    if (rank == 0)
        printf("optimizers under ZeRO-2: %d bit-identical with plain data-parallel, %d "
               "refused, %d not run here (lr alone does not build them, or they need the "
               "host's "
               "Hessian products)\n",
               same, refused, unbuilt);
}

/* One rank differs: every rank fails, the message names it. */
static void disagreement(const char *yaml, bool extra, const char *what)
{
    host h;
    ow_error err;
    ow_error_clear(&err);
    int rc = host_init(&h, extra && rank == size - 1, &err);
    if (rc == OW_OK)
        rc = host_build(&h, yaml, ITERS, &err);
    EXPECT(rc == OW_OK, "%s", err.message);
    if (rc == OW_OK)
        rc = ow_optim_wrapper_set_comm(h.w, MPI_COMM_WORLD, &err);
    char name[32];
    snprintf(name, sizeof name, "rank %d", size - 1);
    EXPECT(rc != OW_OK && strstr(err.message, name) && strstr(err.message, what),
           "expected an error naming %s and '%s', got %d: %s", name, what, rc,
           err.message);
    host_free(&h);
}

static void refusals(void)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "optim_wrapper:\n  optimizer: {type: SGD, lr: %s}\n  zero_stage: 1\n",
             rank == size - 1 ? "0.2" : "0.1");
    disagreement(yaml, false, "config");
    disagreement("optim_wrapper:\n  optimizer: {type: SGD, lr: 0.1}\n", true, "model");
    /* mmengine's ZeroRedundancyOptimizer form is zero_stage 1 */
    {
        host z;
        ow_error e2;
        ow_error_clear(&e2);
        ow_dist_stats st = {0};
        int rc = host_init(&z, false, &e2);
        if (rc == OW_OK)
            rc =
                host_build(&z,
                           "optim_wrapper:\n  optimizer: {type: ZeroRedundancyOptimizer, "
                           "optimizer_type: AdamW, lr: 0.01}\n",
                           ITERS, &e2);
        if (rc == OW_OK)
            rc = ow_optim_wrapper_set_comm(z.w, MPI_COMM_WORLD, &e2);
        if (rc == OW_OK)
            rc = ow_optim_wrapper_get_dist_stats(z.w, &st, &e2);
        EXPECT(rc == OW_OK && st.zero_stage == 1, "ZeroRedundancyOptimizer: %d %s",
               st.zero_stage, e2.message);
        host_free(&z);
    }
    /* whole-tensor norms cannot be taken from a shard */
    host h;
    ow_error err;
    ow_error_clear(&err);
    int rc = host_init(&h, false, &err);
    if (rc == OW_OK)
        rc = host_build(&h,
                        "optim_wrapper:\n  optimizer: {type: mmpretrain.Lamb, lr: 0.01}\n"
                        "  zero_stage: 2\n",
                        ITERS, &err);
    EXPECT(rc == OW_OK, "%s", err.message);
    if (rc == OW_OK)
        rc = ow_optim_wrapper_set_comm(h.w, MPI_COMM_WORLD, &err);
    EXPECT(rc == OW_ERR_UNSUPPORTED && strstr(err.message, "Lamb"), "got %d: %s", rc,
           err.message);
    host_free(&h);
}

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (f && !fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET) &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    *len = buf ? (size_t)n : 0;
    return buf;
}

static bool same_bytes(const void *a, size_t na, const void *b, size_t nb)
{
    return a && b && na == nb && !memcmp(a, b, na);
}

/* A checkpoint written by N ranks under ZeRO is the file one process writes; loaded on
 * N / 2 ranks (resharded) and saved again, it is the file one process writes after
 * loading it; training resumed from it on N ranks goes on bit for bit; a rank that
 * cannot load it makes every rank fail. */
static void checkpoints(const char *config)
{
    char yaml[1024], a[64], b[64];
    int pid = rank == 0 ? (int)getpid() : 0;
    MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
    snprintf(a, sizeof a, "/tmp/ow-mpi-%d-a.safetensors", pid);
    snprintf(b, sizeof b, "/tmp/ow-mpi-%d-b.safetensors", pid);
    snprintf(yaml, sizeof yaml, config, 1);
    ow_error err;
    ow_error_clear(&err);
    float norms[ITERS];
    host ref, z;
    int rc = host_init(&ref, false, &err);
    if (rc == OW_OK)
        rc = host_build(&ref, yaml, ITERS, &err); /* no communicator: one process */
    if (rc == OW_OK)
        rc = host_init(&z, false, &err);
    if (rc == OW_OK)
        rc = host_build(&z, yaml, ITERS, &err);
    if (rc == OW_OK)
        rc = ow_optim_wrapper_set_comm(z.w, MPI_COMM_WORLD, &err);
    EXPECT(rc == OW_OK, "%s", err.message);
    if (rc)
        return;
    train_range(&ref, true, -1, -1, norms, 0, ITERS / 2);
    train_range(&z, false, -1, -1, norms, 0, ITERS / 2);
    rc = ow_optim_wrapper_save(z.w, a, OW_CKPT_PARAMS, &err);
    EXPECT(rc == OW_OK, "save: %s", err.message);
    void *one = NULL, *file = NULL;
    size_t none = 0, nfile = 0;
    EXPECT(ow_optim_wrapper_save_buffer(ref.w, OW_CKPT_PARAMS, &one, &none, &err) ==
               OW_OK,
           "%s", err.message);
    file = read_file(a, &nfile);
    EXPECT(same_bytes(file, nfile, one, none),
           "the checkpoint of %d ranks (%zu bytes) is not one process's (%zu bytes)",
           size, nfile, none);
    free(file);
    host_free(&z);

    /* on half the ranks (one when there are two) */
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, rank < size / 2 ? 0 : MPI_UNDEFINED, rank, &half);
    if (half != MPI_COMM_NULL) {
        host y;
        rc = host_init(&y, false, &err);
        if (rc == OW_OK)
            rc = host_build(&y, yaml, ITERS, &err);
        if (rc == OW_OK)
            rc = ow_optim_wrapper_set_comm(y.w, half, &err);
        if (rc == OW_OK)
            rc = ow_optim_wrapper_load(y.w, a, OW_CKPT_PARAMS, &err);
        if (rc == OW_OK)
            rc = ow_optim_wrapper_save(y.w, b, OW_CKPT_PARAMS, &err);
        EXPECT(rc == OW_OK, "on %d ranks: %s", size / 2, err.message);
        host_free(&y);
        MPI_Comm_free(&half);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    host x; /* one process loads and saves it */
    void *again = NULL;
    size_t nagain = 0;
    rc = host_init(&x, false, &err);
    if (rc == OW_OK)
        rc = host_build(&x, yaml, ITERS, &err);
    if (rc == OW_OK)
        rc = ow_optim_wrapper_load_buffer(x.w, one, none, OW_CKPT_PARAMS, &err);
    if (rc == OW_OK)
        rc = ow_optim_wrapper_save_buffer(x.w, OW_CKPT_PARAMS, &again, &nagain, &err);
    EXPECT(rc == OW_OK, "%s", err.message);
    host_free(&x);
    file = read_file(b, &nfile);
    EXPECT(same_bytes(file, nfile, again, nagain),
           "saved on %d ranks, loaded and saved on %d: not what one process saves", size,
           size / 2);
    free(file);
    ow_free(again);
    ow_free(one);

    /* resumed on every rank: the run goes on as one process's */
    host r;
    rc = host_init(&r, false, &err);
    if (rc == OW_OK)
        rc = host_build(&r, yaml, ITERS, &err);
    if (rc == OW_OK)
        rc = ow_optim_wrapper_set_comm(r.w, MPI_COMM_WORLD, &err);
    if (rc == OW_OK)
        rc = ow_optim_wrapper_load(r.w, b, OW_CKPT_PARAMS, &err);
    EXPECT(rc == OW_OK, "resume: %s", err.message);
    train_range(&r, false, -1, -1, norms, ITERS / 2, ITERS);
    train_range(&ref, true, -1, -1, norms, ITERS / 2, ITERS);
    EXPECT(!memcmp(r.data, ref.data, r.n * sizeof *r.data),
           "resumed on %d ranks from a resharded checkpoint: differs", size);
    host_free(&r);
    host_free(&ref);

    /* the last rank cannot read its file: every rank fails, none loads */
    rc = host_init(&r, false, &err);
    if (rc == OW_OK)
        rc = host_build(&r, yaml, ITERS, &err);
    if (rc == OW_OK)
        rc = ow_optim_wrapper_set_comm(r.w, MPI_COMM_WORLD, &err);
    EXPECT(rc == OW_OK, "%s", err.message);
    float before = r.data[3];
    rc = ow_optim_wrapper_load(r.w, rank == size - 1 ? "/nonexistent.safetensors" : b,
                               OW_CKPT_PARAMS, &err);
    char name[32];
    snprintf(name, sizeof name, "rank %d", size - 1);
    EXPECT(rc != OW_OK && (rank == size - 1 || strstr(err.message, name)) &&
               r.data[3] == before && ow_optim_wrapper_get_iteration(r.w) == 0,
           "a failed load on %s: got %d: %s", name, rc, err.message);
    host_free(&r);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        remove(a);
        remove(b);
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    bit_identity();
    refusals();
    checkpoints(configs[1]);
    checkpoints(configs[4]); /* bfloat16 moments */
    every_optimizer();
    int all = 0;
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%s: %d ranks, %d failures\n", all ? "FAIL" : "PASS", size, all);
    MPI_Finalize();
    return all ? 1 : 0;
}
