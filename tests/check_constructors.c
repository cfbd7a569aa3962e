/* check_constructors.c -- DefaultOptimWrapperConstructor against the reference: every
 * golden mmengine__* case (groups, order, values, int/float types), the golden error
 * cases with optwrap's positioned messages, and hand-built models for the rules the
 * golden models do not reach (DCN offsets, key ordering, empty parameter lists). */
#include "golden_groups.h"

#include <string.h>

static char **cases;
static size_t n_cases;

/* mmengine silently ignores a misspelled paramwise_cfg key; optwrap refuses it with a
 * did-you-mean. This is the one golden mmengine case where we deliberately differ. */
static const char *typo_suffix = "__sgd_typo_key.json";

START_TEST(golden_mmengine_case)
{
    const char *name = cases[_i];
    ow_golden_case c;
    ow_golden_build(&c, name);
    size_t len = strlen(name), ls = strlen(typo_suffix);
    if (len > ls && !strcmp(name + len - ls, typo_suffix)) {
        ck_assert_int_eq(c.rc, OW_ERR_UNKNOWN_KEY);
        ck_assert_str_eq(c.err.message, "optim_wrapper.paramwise_cfg: unknown key "
                                        "'bias_lr_mul' (did you mean 'bias_lr_mult'?)");
        ck_assert_int_eq(c.err.line, 4);
        ck_assert_ptr_null(c.groups);
    } else {
        ow_check_ok(c.rc, &c.err);
        ow_golden_check_groups(name, c.groups, c.golden);
    }
    ow_golden_case_free(&c);
}
END_TEST

/* The reference's error cases that concern the default constructor, with the error
 * optwrap gives instead of the Python exception (noted per row). Positions are in the
 * golden JSON file, whose optim_wrapper sits on line 4. */
static const struct {
    const char *file;
    int code, line, column;
    const char *message;
} error_cases[] = {
    /* ValueError: Invalid learning rate: -0.1 */
    {"error__mmpretrain_vit-base-p16__negative_lr.json", OW_ERR_RANGE, 4, 79,
     "optim_wrapper.optimizer.lr: must be >= 0, got -0.1"},
    /* ValueError: base_wd should not be None (x3, one per multiplier) */
    {"error__mmpretrain_vit-base-p16__bias_decay_without_wd.json", OW_ERR_MISSING_KEY, 4,
     139,
     "optim_wrapper.paramwise_cfg.bias_decay_mult: needs "
     "optim_wrapper.optimizer.weight_decay "
     "(base_wd should not be None)"},
    {"error__mmpretrain_vit-base-p16__norm_decay_without_wd.json", OW_ERR_MISSING_KEY, 4,
     139,
     "optim_wrapper.paramwise_cfg.norm_decay_mult: needs "
     "optim_wrapper.optimizer.weight_decay "
     "(base_wd should not be None)"},
    {"error__mmpretrain_mobilenet-v2__dwconv_decay_without_wd.json", OW_ERR_MISSING_KEY,
     4, 141,
     "optim_wrapper.paramwise_cfg.dwconv_decay_mult: needs "
     "optim_wrapper.optimizer.weight_decay (base_wd should not be None)"},
    {"error__mmpretrain_vit-base-p16__custom_decay_without_wd.json", OW_ERR_MISSING_KEY,
     4, 159,
     "optim_wrapper.paramwise_cfg.custom_keys.head.decay_mult: needs "
     "optim_wrapper.optimizer.weight_decay (base_wd should not be None)"},
    /* TypeError: unsupported operand type(s) for *: 'NoneType' and 'float' */
    {"error__mmpretrain_vit-base-p16__custom_lr_mult_without_lr.json", OW_ERR_MISSING_KEY,
     4, 140,
     "optim_wrapper.paramwise_cfg.custom_keys.head: sets lr = optimizer.lr * lr_mult, "
     "but "
     "optim_wrapper.optimizer has no lr"},
    /* ValueError: parameter group didn't specify a value of required optimization
     * parameter lr */
    {"error__mmpretrain_vit-base-p16__sgd_missing_lr.json", OW_ERR_MISSING_KEY, 4, 57,
     "optim_wrapper.optimizer: parameter group 0 didn't specify a value of required "
     "optimization parameter lr"},
    /* KeyError: 'NoSuchOptimWrapperConstructor is not in the mmpretrain::optimizer
     * wrapper constructor registry...' */
    {"error__mmpretrain_vit-base-p16__unknown_constructor.json", OW_ERR_UNKNOWN_TYPE, 4,
     184, "unknown constructor type 'NoSuchOptimWrapperConstructor'"},
    /* TypeError: None is not a callable object */
    {"error__mmpretrain_vit-base-p16__unknown_optimizer.json", OW_ERR_UNKNOWN_TYPE, 4, 66,
     "unknown optimizer type 'AdamX' (closest: 'AdamW', 'Adam', 'Adamax')"},
    /* ValueError: some parameters appear in more than one parameter group */
    {"error__torch_tied-tiny__tied_no_bypass.json", OW_ERR_DUPLICATE, 4, 143,
     "some parameters appear in more than one parameter group: 'head.weight' is the same "
     "tensor as an earlier parameter (set paramwise_cfg.bypass_duplicate: true to keep "
     "only "
     "its first occurrence)"},
};

START_TEST(golden_error_case)
{
    ow_golden_check_error(error_cases[_i].file, error_cases[_i].code,
                          error_cases[_i].line, error_cases[_i].column,
                          error_cases[_i].message);
}
END_TEST

/* SEMANTICS 4.5's worked example, on a model built through the API. */
static ow_model *worked_model(void)
{
    ow_model *m = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_model_new("worked", &m, &err), &err);
    const ow_module_info mods[] = {
        {.name = "", .type = "Net"},
        {.name = "backbone", .type = "Backbone"},
        {.name = "backbone.dw",
         .type = "Conv2d",
         .kind = OW_MODULE_CONV,
         .in_channels = 8,
         .out_channels = 8,
         .groups = 8},
        {.name = "backbone.bn", .type = "BatchNorm2d", .kind = OW_MODULE_NORM},
        {.name = "head", .type = "Head"},
        {.name = "head.fc", .type = "Linear", .kind = OW_MODULE_LINEAR},
    };
    for (size_t i = 0; i < OW__ARRAY_LEN(mods); i++)
        ow_check_ok(ow_model_add_module(m, &mods[i], &err), &err);
    static const int64_t dw_w[] = {8, 1, 3, 3}, v8[] = {8}, fc_w[] = {10, 8},
                         v10[] = {10};
    const ow_param_info params[] = {
        {.module = "backbone.dw",
         .name = "weight",
         .ndim = 4,
         .shape = dw_w,
         .requires_grad = true},
        {.module = "backbone.dw",
         .name = "bias",
         .ndim = 1,
         .shape = v8,
         .requires_grad = true},
        {.module = "backbone.bn",
         .name = "weight",
         .ndim = 1,
         .shape = v8,
         .requires_grad = true},
        {.module = "backbone.bn",
         .name = "bias",
         .ndim = 1,
         .shape = v8,
         .requires_grad = true},
        {.module = "head.fc",
         .name = "weight",
         .ndim = 2,
         .shape = fc_w,
         .requires_grad = true},
        {.module = "head.fc",
         .name = "bias",
         .ndim = 1,
         .shape = v10,
         .requires_grad = true},
    };
    for (size_t i = 0; i < OW__ARRAY_LEN(params); i++)
        ow_check_ok(ow_model_add_param(m, &params[i], &err), &err);
    return m;
}

static ow_cfg *config_from(const char *yaml)
{
    ow_cfg *c = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow__cfg_parse(yaml, strlen(yaml), "t.yaml", &c, &err), &err);
    return c;
}

static const char *worked_cfg =
    "optim_wrapper:\n"
    "  optimizer: {type: SGD, lr: 0.01, weight_decay: 0.0001}\n"
    "  paramwise_cfg:\n"
    "    custom_keys: {head: {lr_mult: 10}}\n"
    "    norm_decay_mult: 0\n"
    "    bias_decay_mult: 0\n"
    "    dwconv_decay_mult: 0.5\n"
    "    flat_decay_mult: 0.1\n";

START_TEST(worked_example)
{
    ow_model *m = worked_model();
    ow_cfg *cfg = config_from(worked_cfg);
    ow_groups *g = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_groups_build(cfg, m, &g, &err), &err);
    ck_assert_uint_eq(ow_groups_get_count(g), 6);
    /* dw.weight: dwconv rule; dw.bias: bias before dwconv; bn: norm; head: custom */
    static const double wd[] = {5e-05, 0.0, 0.0, 0.0, 0.0001, 0.0001};
    static const double lr[] = {0.01, 0.01, 0.01, 0.01, 0.1, 0.1};
    static const char *const why[] = {"dwconv_decay_mult", "bias_decay_mult",
                                      "norm_decay_mult",   "norm_decay_mult",
                                      "custom key 'head'", "custom key 'head'"};
    for (size_t i = 0; i < 6; i++) {
        const ow_cfg *o = ow_groups_get_options(g, i);
        ck_assert_double_eq(ow_cfg_find(o, "weight_decay")->v.d, wd[i]);
        ck_assert_double_eq(ow_cfg_find(o, "lr")->v.d, lr[i]);
        ck_assert_str_eq(ow_groups_get_reason(g, i), why[i]);
    }
    /* lr_mult 10 is an int: 0.01 * 10 is a float, and the key is copied as an int */
    ck_assert_int_eq(ow_cfg_find(ow_groups_get_options(g, 4), "lr_mult")->type,
                     OW_CFG_INT);
    /* defaults fill in after the explicit keys, in torch's order */
    ck_assert_str_eq(ow_cfg_get_key(ow_groups_get_options(g, 0), 0), "weight_decay");
    ck_assert_str_eq(ow_cfg_get_key(ow_groups_get_options(g, 0), 1), "lr");
    ck_assert_str_eq(ow_cfg_get_key(ow_groups_get_options(g, 0), 2), "momentum");
    ow_groups_free(g);
    ow_cfg_free(cfg);
    ow_model_free(m);
}
END_TEST

START_TEST(custom_keys_longest_then_alphabetical)
{
    ow_model *m = worked_model();
    /* "head.fc" (7) beats "head" (4); "bn.b" and "dw.b" tie at 4 with "head" and sort
     * alphabetically before it, so "bn.b" wins for backbone.bn.bias. */
    ow_cfg *cfg =
        config_from("optim_wrapper:\n"
                    "  optimizer: {type: SGD, lr: 1.0}\n"
                    "  paramwise_cfg:\n"
                    "    custom_keys: {head: {lr_mult: 2}, head.fc: {lr_mult: 3},\n"
                    "                  bn.b: {lr_mult: 5}, backbone: {lr_mult: 7}}\n");
    ow_groups *g = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_groups_build(cfg, m, &g, &err), &err);
    /* dw.weight, dw.bias, bn.weight -> backbone (8 chars beats 4); bn.bias -> backbone
     * too (longest first); head.fc.* -> head.fc */
    static const int64_t lr[] = {7, 7, 7, 7, 3, 3};
    for (size_t i = 0; i < 6; i++) {
        const ow_cfg *v = ow_cfg_find(ow_groups_get_options(g, i), "lr");
        ck_assert_double_eq(v->v.d, (double)lr[i]);
    }
    ow_groups_free(g);
    ow_cfg_free(cfg);
    ow_model_free(m);
}
END_TEST

START_TEST(all_frozen_is_an_empty_parameter_list)
{
    ow_model *m = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_model_new("frozen", &m, &err), &err);
    ow_module_info root = {.name = "", .type = "Net"};
    ow_check_ok(ow_model_add_module(m, &root, &err), &err);
    static const int64_t s[] = {3};
    ow_param_info p = {.module = "", .name = "w", .ndim = 1, .shape = s};
    ow_check_ok(ow_model_add_param(m, &p, &err), &err);
    ow_cfg *cfg = config_from("optim_wrapper:\n  optimizer: {type: AdamW, lr: 0.001}\n"
                              "  paramwise_cfg: {norm_decay_mult: 0.0}\n");
    ow_groups *g = NULL;
    ck_assert_int_eq(ow_groups_build(cfg, m, &g, &err), OW_ERR_MISSING_KEY);
    ow_check_error(&err, OW_ERR_MISSING_KEY, "t.yaml", 3, 36,
                   "optim_wrapper.paramwise_cfg.norm_decay_mult: needs "
                   "optim_wrapper.optimizer.weight_decay (base_wd should not be None)");
    ow_cfg_free(cfg);
    cfg = config_from("optim_wrapper:\n  optimizer: {type: AdamW, lr: 0.001}\n"
                      "  paramwise_cfg: {bypass_duplicate: true}\n");
    ow_error_clear(&err);
    ck_assert_int_eq(ow_groups_build(cfg, m, &g, &err), OW_ERR_MODEL);
    ow_check_error(
        &err, OW_ERR_MODEL, "t.yaml", 2, 3,
        "optimizer got an empty parameter list (the model has no parameter that "
        "requires a gradient)");
    ow_cfg_free(cfg);
    ow_model_free(m);
}
END_TEST

/* mmcv's DCN: the offset conv inside it gets dcn_offset_lr_mult and is exempt from the
 * bias and flat rules; the DCN's own bias is an ordinary bias. */
START_TEST(dcn_offset_rules)
{
    ow_model *m = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_model_new("dcn", &m, &err), &err);
    const ow_module_info mods[] = {
        {.name = "", .type = "Net"},
        {.name = "dcn", .type = "DeformConv2dPack", .kind = OW_MODULE_OTHER},
        {.name = "dcn.conv_offset",
         .type = "Conv2d",
         .kind = OW_MODULE_CONV,
         .in_channels = 4,
         .out_channels = 18,
         .groups = 1},
        {.name = "fc", .type = "Linear", .kind = OW_MODULE_LINEAR},
    };
    for (size_t i = 0; i < OW__ARRAY_LEN(mods); i++)
        ow_check_ok(ow_model_add_module(m, &mods[i], &err), &err);
    static const int64_t w[] = {4, 4, 3, 3}, b4[] = {4}, ow[] = {18, 4, 3, 3},
                         b18[] = {18};
    const ow_param_info params[] = {
        {.module = "dcn", .name = "weight", .ndim = 4, .shape = w, .requires_grad = true},
        {.module = "dcn", .name = "bias", .ndim = 1, .shape = b4, .requires_grad = true},
        {.module = "dcn.conv_offset",
         .name = "weight",
         .ndim = 4,
         .shape = ow,
         .requires_grad = true},
        {.module = "dcn.conv_offset",
         .name = "bias",
         .ndim = 1,
         .shape = b18,
         .requires_grad = true},
        {.module = "fc", .name = "bias", .ndim = 1, .shape = b4, .requires_grad = true},
    };
    for (size_t i = 0; i < OW__ARRAY_LEN(params); i++)
        ow_check_ok(ow_model_add_param(m, &params[i], &err), &err);
    ow_cfg *cfg =
        config_from("optim_wrapper:\n"
                    "  optimizer: {type: SGD, lr: 1.0, weight_decay: 0.5}\n"
                    "  paramwise_cfg: {dcn_offset_lr_mult: 0.25, bias_lr_mult: 2,\n"
                    "                  flat_decay_mult: 0.5}\n");
    ow_groups *g = NULL;
    ow_check_ok(ow_groups_build(cfg, m, &g, &err), &err);
    static const double lr[] = {1.0, 2.0, 0.25, 0.25, 2.0};
    static const double wd[] = {0.5, 0.25, 0.5, 0.5, 0.25};
    for (size_t i = 0; i < 5; i++) {
        const ow_cfg *o = ow_groups_get_options(g, i);
        ck_assert_msg(ow_cfg_find(o, "lr")->v.d == lr[i], "param %zu lr %g", i,
                      ow_cfg_find(o, "lr")->v.d);
        ck_assert_msg(ow_cfg_find(o, "weight_decay")->v.d == wd[i], "param %zu wd %g", i,
                      ow_cfg_find(o, "weight_decay")->v.d);
    }
    ow_groups_free(g);
    ow_cfg_free(cfg);
    ow_model_free(m);
}
END_TEST

START_TEST(build_survives_every_allocation_failure)
{
    ow_model *m = worked_model();
    ow_cfg *cfg = config_from(worked_cfg);
    for (long n = 0;; n++) {
        ow_groups *g = NULL;
        ow_error err;
        ow_error_clear(&err);
        ow__alloc_fail_after(n);
        int rc = ow_groups_build(cfg, m, &g, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK) {
            ck_assert_uint_eq(ow_groups_get_count(g), 6);
            ow_groups_free(g);
            break;
        }
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
        ck_assert_ptr_null(g);
    }
    ow_cfg_free(cfg);
    ow_model_free(m);
}
END_TEST

static Suite *make_constructors_suite(void)
{
    Suite *s = suite_create("constructors");
    cases = ow_golden_list("mmengine__", &n_cases);
    TCase *tg = tcase_create("Golden");
    tcase_set_timeout(tg, 60);
    tcase_add_loop_test(tg, golden_mmengine_case, 0, (int)n_cases);
    tcase_add_loop_test(tg, golden_error_case, 0, OW__ARRAY_LEN(error_cases));
    suite_add_tcase(s, tg);
    TCase *tc = tcase_create("Rules");
    tcase_add_test(tc, worked_example);
    tcase_add_test(tc, custom_keys_longest_then_alphabetical);
    tcase_add_test(tc, all_frozen_is_an_empty_parameter_list);
    tcase_add_test(tc, dcn_offset_rules);
    tcase_add_test(tc, build_survives_every_allocation_failure);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc = ow_test_run(make_constructors_suite());
    ow_golden_free_list(cases);
    return rc;
}
