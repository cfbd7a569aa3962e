/* fuzz_state.c -- optimizer state files and checkpoints: the input goes through the
 * internal safetensors parser (every tensor and metadata entry read), is staged as an
 * optimizer state file (what ow_optimizer_load does after reading the file) and loaded
 * as a checkpoint into a small AmpOptimWrapper (ow_optim_wrapper_load_buffer), with and
 * without its flags. A wrapper is built for every input, so inputs do not interact.
 *
 * Seeds: with OW_FUZZ_SEEDS=<dir> in the environment, the target writes a state file
 * and checkpoints of its wrapper after a few steps into <dir> (each also without its
 * checksums, so that mutations get past them) and exits. */
#include "fuzz.h"
#include "optim/optim_internal.h"
#include "util/safetensors.h"

#include <stdio.h>
#include <unistd.h>

static const char wrapper_yaml[] =
    "optim_wrapper:\n"
    "  type: AmpOptimWrapper\n"
    "  loss_scale: dynamic\n"
    "  accumulative_counts: 2\n"
    "  clip_grad: {max_norm: 1.0}\n"
    "  optimizer: {type: AdamW, lr: 0.001, weight_decay: 0.05}\n"
    "  paramwise_cfg:\n"
    "    norm_decay_mult: 0.0\n"
    "    custom_keys: {cls_token: {decay_mult: 0.0}, head: {lr_mult: 2.0}}\n"
    "param_scheduler:\n"
    "  - {type: LinearLR, start_factor: 0.1, by_epoch: false, begin: 0, end: 4}\n"
    "  - {type: CosineAnnealingLR, T_max: 6, by_epoch: false, begin: 4, end: 10}\n"
    "  - {type: CosineAnnealingMomentum, eta_min: 0.85, by_epoch: false, begin: 0,"
    " end: 10}\n";

typedef struct host {
    ow_model *model;
    float *data, *grad;
    size_t numel;
    ow_optim_wrapper *w;
} host;

static ow_cfg *config;

static void host_free(host *h)
{
    ow_optim_wrapper_free(h->w);
    ow_model_free(h->model);
    free(h->data);
    free(h->grad);
}

static int host_new(host *h)
{
    memset(h, 0, sizeof *h);
    if (!config && ow_cfg_load_string(wrapper_yaml, "wrapper.yaml", &config, NULL))
        abort();
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
    if (ow_model_set_buffers(h->model, h->data, h->grad, h->numel, NULL) ||
        ow_optim_wrapper_new(config, h->model, &loop, &h->w, NULL))
        abort();
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

static void write_seeds(const char *dir)
{
    host h;
    host_new(&h);
    for (int it = 0; it < 5; it++) {
        for (size_t i = 0; i < h.numel; i++)
            h.grad[i] += 0.01f * (float)((int)(i * 7 + (size_t)it) % 13 - 6);
        if (ow_optim_wrapper_update(h.w, NULL, NULL))
            abort();
        void *buf = NULL;
        size_t len = 0;
        char name[64];
        if (it == 2 || it == 3) {
            if (ow_optim_wrapper_save_buffer(h.w, OW_CKPT_PARAMS, &buf, &len, NULL))
                abort();
            snprintf(name, sizeof name, "checkpoint-params-%d", it);
            write_seed(dir, name, buf, len);
            ow_free(buf);
        }
        if (it == 4) {
            if (ow_optim_wrapper_save_buffer(h.w, 0, &buf, &len, NULL))
                abort();
            write_seed(dir, "checkpoint-4", buf, len);
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
    write_seed(dir, "optimizer", buf, len);
    host_free(&h);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("OW_FUZZ_SEEDS");
    if (dir && *dir) {
        write_seeds(dir);
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
    host h;
    host_new(&h);
    ow_error err;
    parse_only(data, size, ow_optim_wrapper_get_optimizer(h.w));
    host_free(&h);
    /* a fresh wrapper for each flag set: a successful load changes it */
    static const unsigned flags[] = {0, OW_CKPT_PARAMS | OW_CKPT_FILE_HPARAMS};
    for (size_t k = 0; k < 2; k++) {
        host_new(&h);
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
