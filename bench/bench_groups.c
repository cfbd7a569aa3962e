/* bench_groups.c -- how long building param groups takes: the ViT-B model tree under a
 * paramwise config, and synthetic models of 1,000 to 20,000 tensors (linear growth is
 * the point: mmengine's and timm's group building is quadratic). Prints figures only. */
#include "optwrap.h"

#include <stdio.h>
#include <stdlib.h>
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

int main(int argc, char **argv)
{
    ow_cfg *cfg = NULL;
    ow_error err;
    if (ow_cfg_load_string(config_text, "<bench>", &cfg, &err))
        return 1;
    if (argc > 1) {
        ow_model *vit = NULL;
        if (ow_model_load(argv[1], &vit, &err)) {
            fprintf(stderr, "cannot load %s\n", argv[1]);
            return 1;
        }
        printf("param groups, %-28s %8.3f ms  (%zu tensors)\n", argv[1],
               time_build(cfg, vit, 20) * 1e3, ow_model_get_num_tensors(vit));
        ow_model_free(vit);
    }
    for (int tensors = 1000; tensors <= 20000; tensors *= 2) {
        ow_model *m = synthetic(tensors / 4);
        double t = time_build(cfg, m, 5);
        printf("param groups, %6d tensors             %8.3f ms  (%.2f us/tensor)\n",
               tensors, t * 1e3, t * 1e6 / tensors);
        ow_model_free(m);
    }
    ow_cfg_free(cfg);
    return 0;
}
