/* check_pipeline.c -- the pieces together, as a host uses them: a config and a model
 * with data become groups, an optimizer steps them, and layer decay's lr_scale is
 * applied exactly once whichever constructor made the groups. */
#include "testlib.h"

#include <string.h>

/* Both put embed, blocks.0, blocks.1 at layer 0, 1, 2 of 3 with decay 0.5: scales 0.25,
 * 0.5, 1. timm keeps lr and records lr_scale; mmpretrain folds the scale into lr. */
static const struct {
    const char *name, *config;
} configs[] = {
    {"timm", "optim_wrapper:\n"
             "  optimizer: {type: SGD, lr: 1.0}\n"
             "  constructor: TimmOptimWrapperConstructor\n"
             "  paramwise_cfg: {layer_decay: 0.5}\n"},
    {"mmpretrain",
     "optim_wrapper:\n"
     "  optimizer: {type: SGD, lr: 1.0, weight_decay: 0.0}\n"
     "  constructor: LearningRateDecayOptimWrapperConstructor\n"
     "  paramwise_cfg:\n"
     "    layer_decay_rate: 0.5\n"
     "    layer_depth: {type: RegexLayerDepth, num_layers: 3,\n"
     "                  rules: [['^embed', 0], ['^blocks\\.(\\d+)', '$1 + 1']]}\n"},
};

START_TEST(layer_decay_scale_applied_once)
{
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    ow_check_ok(ow_model_load_string(ow_test_layer_model, "tiny.yaml", &m, &err), &err);
    static const char *const names[] = {"embed.weight", "blocks.0.weight",
                                        "blocks.1.weight"};
    float data[3][4], grad[3][4];
    for (size_t t = 0; t < 3; t++) {
        for (size_t i = 0; i < 4; i++)
            data[t][i] = 1.0f, grad[t][i] = 1.0f;
        ow_check_ok(ow_model_set_data(m, names[t], data[t], grad[t], &err), &err);
    }
    ow_cfg *cfg = NULL;
    ow_check_ok(ow_cfg_load_string(configs[_i].config, "t.yaml", &cfg, &err), &err);
    ow_groups *g = NULL;
    ow_check_ok(ow_groups_build(cfg, m, &g, &err), &err);
    ow_optimizer *opt = NULL;
    ow_check_ok(ow_optimizer_new(g, &opt, &err), &err);
    ow_check_ok(ow_optimizer_step(opt, &err), &err);
    static const float want[] = {1.0f - 0.25f, 1.0f - 0.5f, 0.0f};
    for (size_t t = 0; t < 3; t++)
        for (size_t i = 0; i < 4; i++)
            ck_assert_msg(data[t][i] == want[t], "%s: %s[%zu] = %g, want %g",
                          configs[_i].name, names[t], i, data[t][i], want[t]);
    /* the effective lr the command shows is the one the step used */
    for (size_t gi = 0; gi < ow_groups_get_count(g); gi++) {
        double eff;
        ow_check_ok(ow_groups_get_effective_lr(g, gi, &eff, &err), &err);
        ow_param_view pv;
        ow_model_get_param(m, ow_groups_get_param(g, gi, 0), &pv);
        size_t t = pv.tensor;
        ck_assert_double_eq_tol(eff, 1.0 - want[t], 1e-15);
    }
    ow_optimizer_free(opt);
    ow_groups_free(g);
    ow_cfg_free(cfg);
    ow_model_free(m);
}
END_TEST

static Suite *make_pipeline_suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("Core");
    tcase_add_loop_test(tc, layer_decay_scale_applied_once, 0, OW__ARRAY_LEN(configs));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(make_pipeline_suite());
}
