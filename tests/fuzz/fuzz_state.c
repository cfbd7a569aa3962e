/* fuzz_state.c -- optimizer state files and checkpoints: the input goes through the
 * internal safetensors parser (every tensor and metadata entry read), is staged as an
 * optimizer state file (what ow_optimizer_load does after reading the file) and loaded
 * as a checkpoint into a small AmpOptimWrapper (ow_optim_wrapper_load_buffer), with and
 * without its flags, over the optimizer the file names (one of twelve). A wrapper is
 * built for every input, so inputs do not interact.
 *
 * Seeds: with OW_FUZZ_SEEDS=<dir> in the environment, the target writes a state file
 * and checkpoints of each wrapper after a few steps into <dir> (each also without its
 * checksums, so that mutations get past them) and exits. */
#include "fuzz.h"
#include "optim/optim_internal.h"
#include "util/safetensors.h"

#include <stdio.h>
#include <unistd.h>

/* The wrapper of the first seeds (AdamW, every wrapper feature); the others step the
 * optimizers whose state files hold more than AdamW's (counters that index caches,
 * per-group counters, factored and Kron slots, fastai's callbacks, bf16 moments). A
 * file's "optimizer.optimizer" picks the host it is loaded into, as a user picks the
 * config that wrote it; seeds are written for every one. */
static const char wrapper_yaml[] = "optim_wrapper:\n"
                                   "  type: AmpOptimWrapper\n"
                                   "  loss_scale: dynamic\n"
                                   "  accumulative_counts: 2\n"
                                   "  clip_grad: {max_norm: 1.0}\n";
static const char paramwise_yaml[] =
    "  paramwise_cfg:\n"
    "    norm_decay_mult: 0.0\n"
    "    custom_keys: {cls_token: {decay_mult: 0.0}, head: {lr_mult: 2.0}}\n";
static const char sched_yaml[] =
    "param_scheduler:\n"
    "  - {type: LinearLR, start_factor: 0.1, by_epoch: false, begin: 0, end: 4}\n"
    "  - {type: CosineAnnealingLR, T_max: 6, by_epoch: false, begin: 4, end: 10}\n";
/* the first host also has paramwise rules and schedules the momentum (betas[0]) */
static const char momentum_yaml[] = "  - {type: CosineAnnealingMomentum, eta_min: 0.85, "
                                    "by_epoch: false, begin: 0, end: 10}\n";
static const char *const optimizers[] = {
    "{type: AdamW, lr: 0.001, weight_decay: 0.05}",
    "{type: SGD, lr: 0.1, momentum: 0.9, nesterov: true}",
    "{type: timm.radabelief, lr: 0.001}",
    "{type: timm.radamlegacy, lr: 0.001}",
    "{type: timm.lookahead_adamw, lr: 0.001, lookahead_k: 2}",
    "{type: timm.adafactor, lr: 0.01, min_dim_size_to_factor: 1}",
    "{type: timm.kron, lr: 0.001, preconditioner_update_probability: 0.5}",
    "{type: timm.lamb, lr: 0.01, state_dtype: bfloat16}",
    "{type: timm.novograd, lr: 0.01, amsgrad: true}",
    "{type: fastai.ranger, lr: 0.01, lookahead_k: 2}",
    "{type: timm.nadamlegacy, lr: 0.01}",
    "{type: timm.madgrad, lr: 0.01}",
};
#define N_OPT (sizeof optimizers / sizeof *optimizers)

typedef struct host {
    ow_model *model;
    float *data, *grad;
    size_t numel;
    ow_optim_wrapper *w;
} host;

static ow_cfg *config[N_OPT];
static char *names[N_OPT]; /* each host's "optimizer.optimizer" */

static void host_free(host *h)
{
    ow_optim_wrapper_free(h->w);
    ow_model_free(h->model);
    free(h->data);
    free(h->grad);
}

/* A host that cannot be built is the target's bug, not a finding of the fuzzer's. */
static void die(const ow_error *err)
{
    char msg[1024];
    ow_error_format(err, msg, sizeof msg);
    fprintf(stderr, "fuzz_state: %s\n", msg);
    abort();
}

static ow_cfg *config_of(size_t k)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%s%s  optimizer: %s\n%s%s", wrapper_yaml,
             k ? "" : paramwise_yaml, optimizers[k], sched_yaml, k ? "" : momentum_yaml);
    ow_error err;
    if (!config[k] && ow_cfg_load_string(yaml, "wrapper.yaml", &config[k], &err))
        die(&err);
    return config[k];
}

static int host_new(host *h, size_t k)
{
    memset(h, 0, sizeof *h);
    if (ow_model_load_string(fuzz_model_yaml, "fuzz-model", &h->model, NULL))
        abort();
    h->numel = (size_t)ow_model_get_numel(h->model);
    h->data = calloc(h->numel, sizeof(float));
    h->grad = calloc(h->numel, sizeof(float));
    if (!h->data || !h->grad)
        abort();
    for (size_t i = 0; i < h->numel; i++)
        h->data[i] = 0.125f * (float)((int)i - 20);
    ow_sched_loop loop = {.max_iters = 10};
    ow_error err;
    if (ow_model_set_buffers(h->model, h->data, h->grad, h->numel, &err) ||
        ow_optim_wrapper_new(config_of(k), h->model, &loop, &h->w, &err))
        die(&err);
    return 0;
}

static void write_seed(const char *dir, const char *name, const void *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
        abort();
    /* the same without checksums: rename the key in place (same length) */
    unsigned char *copy = malloc(len);
    if (!copy)
        abort();
    memcpy(copy, buf, len);
    for (size_t i = 0; i + 11 <= len; i++)
        if (!memcmp(copy + i, "\"checksums\"", 11))
            copy[i + 9] = 'x';
    snprintf(path, sizeof path, "%s/%s-nosum", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(copy, 1, len, f) != len || fclose(f))
        abort();
    free(copy);
}

static void write_seeds(const char *dir, size_t k)
{
    host h;
    host_new(&h, k);
    char name[64];
    for (int it = 0; it < 5; it++) {
        for (size_t i = 0; i < h.numel; i++)
            h.grad[i] += 0.01f * (float)((int)(i * 7 + (size_t)it) % 13 - 6);
        if (ow_optim_wrapper_update(h.w, NULL, NULL))
            abort();
        void *buf = NULL;
        size_t len = 0;
        if (it >= 2) { /* inside a window (with parameters) and at its end */
            unsigned flags = it < 4 ? OW_CKPT_PARAMS : 0;
            if (ow_optim_wrapper_save_buffer(h.w, flags, &buf, &len, NULL))
                abort();
            snprintf(name, sizeof name, "%zu-checkpoint%s-%d", k, flags ? "-params" : "",
                     it);
            write_seed(dir, name, buf, len);
            ow_free(buf);
        }
    }
    /* an optimizer state file, as ow_optimizer_save writes it */
    char path[4096];
    snprintf(path, sizeof path, "%s/optimizer.tmp", dir);
    if (ow_optimizer_save(ow_optim_wrapper_get_optimizer(h.w), path, NULL))
        abort();
    FILE *f = fopen(path, "rb");
    static unsigned char buf[1 << 20];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (!f || len == 0 || len == sizeof buf)
        abort();
    fclose(f);
    unlink(path);
    snprintf(name, sizeof name, "%zu-optimizer", k);
    write_seed(dir, name, buf, len);
    host_free(&h);
}

/* The optimizer a state file or checkpoint names (its metadata "optimizer"). */
static const char *named(const ow__st_file *f)
{
    const char *v = ow__st_file_find_meta(f, "optimizer.optimizer");
    return v ? v : ow__st_file_find_meta(f, "optimizer");
}

/* Each host's name, from a checkpoint of it. */
static void names_init(void)
{
    for (size_t k = 0; k < N_OPT; k++) {
        host h;
        host_new(&h, k);
        void *buf = NULL;
        size_t len = 0;
        ow__st_file *f = NULL;
        if (ow_optim_wrapper_save_buffer(h.w, 0, &buf, &len, NULL) ||
            ow__st_file_parse(buf, len, "names", &f, NULL) || !named(f) ||
            !(names[k] = strdup(named(f))))
            abort();
        ow__st_file_free(f);
        ow_free(buf);
        host_free(&h);
    }
}

/* The host a file is loaded into: the one of its optimizer, else the first. */
static size_t pick(const uint8_t *data, size_t size)
{
    ow__st_file *f = NULL;
    size_t k = 0;
    if (ow__st_file_parse(data, size, "fuzz.safetensors", &f, NULL) == OW_OK) {
        const char *name = named(f);
        while (name && k < N_OPT && strcmp(names[k], name))
            k++;
        k = k < N_OPT ? k : 0;
        ow__st_file_free(f);
    }
    return k;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    names_init();
    const char *dir = getenv("OW_FUZZ_SEEDS");
    if (dir && *dir) {
        for (size_t k = 0; k < N_OPT; k++)
            write_seeds(dir, k);
        exit(0);
    }
    return 0;
}

/* The internal parser alone: read everything it hands out. */
static void parse_only(const uint8_t *data, size_t size, ow_optimizer *opt)
{
    ow_error err;
    ow__st_file *f = NULL;
    if (ow__st_file_parse(data, size, "fuzz.safetensors", &f, &err) != OW_OK)
        return;
    size_t n = ow__st_file_get_count(f);
    for (size_t i = 0; i < n; i++) {
        const ow__st_tensor *t = ow__st_file_get_tensor(f, i);
        if (ow__st_file_find(f, t->name) == NULL)
            abort(); /* every tensor listed is found by its name */
        unsigned char tmp[64];
        size_t k = t->nbytes < sizeof tmp ? t->nbytes : sizeof tmp;
        if (t->elem_size && k / t->elem_size)
            ow__st_copy_le(tmp, t->data, k / t->elem_size, t->elem_size);
    }
    ow_cfg *meta = NULL;
    if (ow__st_file_meta_json(f, "param_groups", &meta, &err) == OW_OK)
        ow_cfg_free(meta);
    /* what ow_optimizer_load does with a file it has read */
    const char *fmt = ow__st_file_find_meta(f, "format");
    if (fmt && !strcmp(fmt, "optwrap-optimizer/1")) {
        ow__optimizer_staged *s = NULL;
        if (ow__optimizer_state_stage(opt, f, "", &s, &err) == OW_OK)
            ow__optimizer_state_commit(opt, s);
    }
    ow__st_file_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t kind = pick(data, size);
    host h;
    host_new(&h, kind);
    ow_error err;
    parse_only(data, size, ow_optim_wrapper_get_optimizer(h.w));
    host_free(&h);
    /* a fresh wrapper for each flag set: a successful load changes it */
    static const unsigned flags[] = {0, OW_CKPT_PARAMS | OW_CKPT_FILE_HPARAMS};
    for (size_t k = 0; k < 2; k++) {
        host_new(&h, kind);
        if (ow_optim_wrapper_load_buffer(h.w, data, size, flags[k], &err) == OW_OK) {
            /* the restored run goes on */
            for (size_t i = 0; i < h.numel; i++)
                h.grad[i] = 0.01f;
            ow_optim_wrapper_update(h.w, NULL, &err);
            ow_optim_wrapper_end_epoch(h.w, NULL, &err);
        }
        host_free(&h);
    }
    return 0;
}
