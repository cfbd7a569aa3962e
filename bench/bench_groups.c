/* bench_groups.c -- how long building param groups takes: the ViT-B model tree under a
 * paramwise config, and synthetic models of 1,000 to 20,000 tensors (linear growth is
 * the point: mmengine's and timm's group building is quadratic). Prints the best of
 * several runs, figures only. */
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

static const char *config_text =
    "optim_wrapper:\n"
    "  optimizer: {type: AdamW, lr: 0.001, weight_decay: 0.05}\n"
    "  paramwise_cfg:\n"
    "    norm_decay_mult: 0.0\n"
    "    bias_decay_mult: 0.0\n"
    "    custom_keys: {.cls_token: {decay_mult: 0.0}, .pos_embed: {decay_mult: 0.0}, "
    "head: {lr_mult: 10}}\n";

static ow_model *synthetic(int blocks)
{
    ow_model *m = NULL;
    ow_model_new("synthetic", &m, NULL);
    ow_module_info root = {.name = "", .type = "Net"};
    ow_model_add_module(m, &root, NULL);
    static const int64_t w[] = {64, 64}, b[] = {64};
    for (int i = 0; i < blocks; i++) {
        char lin[64], norm[64];
        snprintf(lin, sizeof lin, "block%d", i);
        ow_module_info blk = {.name = lin, .type = "Block"};
        ow_model_add_module(m, &blk, NULL);
        snprintf(lin, sizeof lin, "block%d.fc", i);
        snprintf(norm, sizeof norm, "block%d.norm", i);
        ow_module_info fc = {.name = lin, .type = "Linear", .kind = OW_MODULE_LINEAR};
        ow_module_info ln = {.name = norm, .type = "LayerNorm", .kind = OW_MODULE_NORM};
        ow_model_add_module(m, &fc, NULL);
        ow_model_add_module(m, &ln, NULL);
        ow_param_info p[] = {
            {.module = lin,
             .name = "weight",
             .ndim = 2,
             .shape = w,
             .requires_grad = true},
            {.module = lin, .name = "bias", .ndim = 1, .shape = b, .requires_grad = true},
            {.module = norm,
             .name = "weight",
             .ndim = 1,
             .shape = b,
             .requires_grad = true},
            {.module = norm,
             .name = "bias",
             .ndim = 1,
             .shape = b,
             .requires_grad = true},
        };
        for (size_t k = 0; k < 4; k++)
            ow_model_add_param(m, &p[k], NULL);
    }
    return m;
}

static double time_build(const ow_cfg *cfg, const ow_model *m, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        ow_groups *g = NULL;
        ow_error err;
        double t0 = now();
        if (ow_groups_build(cfg, m, &g, &err)) {
            char msg[1024];
            ow_error_format(&err, msg, sizeof msg);
            fprintf(stderr, "%s\n", msg);
            exit(1);
        }
        double t = now() - t0;
        best = t < best ? t : best;
        ow_groups_free(g);
    }
    return best;
}

/* bench_groups [-r REPS] [-s TENSORS] [MODEL.yaml]: the model file (ViT-B:
 * models/mmpretrain_vit-base-p16.yaml) when given, then synthetic models of 1k, 5k,
 * 10k and 20k tensors, or only TENSORS with -s. -r 1 makes one build per model, for
 * `valgrind --tool=callgrind --toggle-collect=ow_groups_build`. */
int main(int argc, char **argv)
{
    int reps = 0, only = 0;
    const char *model_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            only = (int)strtol(argv[++i], NULL, 10);
        else
            model_path = argv[i];
    }
    ow_cfg *cfg = NULL;
    ow_error err;
    if (ow_cfg_load_string(config_text, "<bench>", &cfg, &err))
        return 1;
    if (model_path) {
        ow_model *vit = NULL;
        if (ow_model_load(model_path, &vit, &err)) {
            fprintf(stderr, "cannot load %s\n", model_path);
            return 1;
        }
        size_t n = ow_model_get_num_tensors(vit);
        double t = time_build(cfg, vit, reps ? reps : 200);
        printf("param groups, %-30s %8.3f ms  (%zu tensors, %.2f us/tensor)\n",
               model_path, t * 1e3, n, t * 1e6 / (double)n);
        ow_model_free(vit);
    }
    static const int sizes[] = {1000, 5000, 10000, 20000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int tensors = only ? only : sizes[i];
        ow_model *m = synthetic(tensors / 4);
        double t = time_build(cfg, m, reps ? reps : 10);
        printf("param groups, %6d tensors               %8.3f ms  (%.2f us/tensor)\n",
               tensors, t * 1e3, t * 1e6 / tensors);
        ow_model_free(m);
        if (only)
            break;
    }
    ow_cfg_free(cfg);
    return 0;
}
