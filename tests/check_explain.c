/* check_explain.c -- why a parameter got its settings: the reasons every constructor
 * records, the warnings for custom keys and patterns that decide nothing or more than
 * meant, the opt-in "re:" / "glob:" custom keys, the effective lr, and what
 * `optwrap groups --explain` prints from them. */
#include "ctor_test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_CFG(pw)                                                                  \
    "optim_wrapper:\n"                                                                   \
    "  optimizer: {type: SGD, lr: 0.1, weight_decay: 0.0001}\n"                          \
    "  paramwise_cfg:\n"                                                                 \
    "    custom_keys:\n" pw

/* A segmentation-like model: `head` is a substring of `decode_head`. */
static const char *const seg_params[] = {"backbone.layers.1.w:4x4",
                                         "backbone.layers.10.w:4x4",
                                         "backbone.norm.weight",
                                         "decode_head.conv_seg.weight:4x4",
                                         "!auxiliary.conv.weight:4x4",
                                         "head.fc.weight:4x4",
                                         NULL};

START_TEST(regex_and_glob_custom_keys)
{
    ow_model *m = ct_model("EncoderDecoder", "Backbone", seg_params);
    ow_groups *g =
        ct_build(DEFAULT_CFG("      're:^head\\.': {lr_mult: 10}\n"
                             "      'glob:backbone.layers.1?.*': {lr_mult: 2}\n"
                             "      'glob:*.layers.1.*': {lr_mult: 3}\n"),
                 m);
    ck_assert_double_eq(ct_num(g, ct_group_of(g, "head.fc.weight"), "lr"), 1.0);
    ck_assert_double_eq(ct_num(g, ct_group_of(g, "backbone.layers.10.w"), "lr"), 0.2);
    ck_assert_double_eq(ct_num(g, ct_group_of(g, "backbone.layers.1.w"), "lr"),
                        0.30000000000000004);
    /* the regex anchors: decode_head is not 'head.' */
    size_t gi = ct_group_of(g, "decode_head.conv_seg.weight");
    ck_assert_ptr_null(ow_cfg_find(ow_groups_get_options(g, gi), "lr_mult"));
    ck_assert_str_eq(ow_groups_get_reason(g, ct_group_of(g, "head.fc.weight")),
                     "custom key 're:^head\\.' (regex)");
    ck_assert_str_eq(ow_groups_get_reason(g, ct_group_of(g, "backbone.layers.10.w")),
                     "custom key 'glob:backbone.layers.1?.*' (glob)");
    ck_assert_uint_eq(ow_groups_get_num_warnings(g), 0);
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

/* Each kind of surprising key gets one warning at the key's settings. */
START_TEST(custom_key_warnings)
{
    ow_model *m = ct_model("EncoderDecoder", "Backbone", seg_params);
    ow_groups *g = ct_build(DEFAULT_CFG("      head: {lr_mult: 10}\n"
                                        "      layers.1: {lr_mult: 2}\n"
                                        "      hed: {lr_mult: 3}\n"
                                        "      auxiliary: {lr_mult: 4}\n"
                                        "      backbone.norm: {lr_mult: 6}\n"
                                        "      norm: {lr_mult: 7}\n"),
                            m);
    /* in mmengine's key order: longest first, then alphabetical */
    static const char *const want[] = {
        "t.yaml:8:18: optim_wrapper.paramwise_cfg.custom_keys: key 'auxiliary' matches "
        "only "
        "frozen parameters (requires_grad false)",
        "t.yaml:6:17: optim_wrapper.paramwise_cfg.custom_keys: key 'layers.1' also "
        "matches "
        "'backbone.layers.10.w' in the middle of a name (keys are substrings); if that "
        "is not "
        "meant, write a longer key or 're:' with anchors",
        "t.yaml:5:13: optim_wrapper.paramwise_cfg.custom_keys: key 'head' also matches "
        "'decode_head.conv_seg.weight' in the middle of a name (keys are substrings); if "
        "that "
        "is not meant, write a longer key or 're:' with anchors",
        "t.yaml:10:13: optim_wrapper.paramwise_cfg.custom_keys: key 'norm' matches 1 "
        "parameter, "
        "but a longer key decides each of them",
        /* in parentheses: clang's -Wstring-concatenation asks for a comma otherwise */
        ("t.yaml:7:12: optim_wrapper.paramwise_cfg.custom_keys: key 'hed' matches no "
         "parameter"),
    };
    ck_assert_uint_eq(ow_groups_get_num_warnings(g), OW__ARRAY_LEN(want));
    for (size_t i = 0; i < OW__ARRAY_LEN(want); i++)
        ck_assert_str_eq(ow_groups_get_warning(g, i), want[i]);
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

START_TEST(bad_regex_custom_key)
{
    ow_model *m = ct_model("EncoderDecoder", "Backbone", seg_params);
    ow_error err;
    ct_build_fails(DEFAULT_CFG("      're:head[': {lr_mult: 10}\n"), m, OW_ERR_VALUE,
                   &err);
    ow_check_error(
        &err, OW_ERR_VALUE, "t.yaml", 5, 19,
        "optim_wrapper.paramwise_cfg.custom_keys.re:head[: regex 'head[' does not "
        "compile: error 106 at offset 5: missing terminating ] for character class");
    ow_model_free(m);
}
END_TEST

/* mmpretrain: lr_mult is copied and inert; keys it never reads are ignored, said so. */
START_TEST(lr_decay_warnings_and_reasons)
{
    ow_model *m = ct_arch("vit-base-p16");
    ow_groups *g =
        ct_build("optim_wrapper:\n"
                 "  optimizer: {type: AdamW, lr: 0.004, weight_decay: 0.05}\n"
                 "  constructor: LearningRateDecayOptimWrapperConstructor\n"
                 "  paramwise_cfg:\n"
                 "    layer_decay_rate: 0.65\n"
                 "    norm_decay_mult: 0.0\n"
                 "    bias_lr_mult: 2.0\n"
                 "    custom_keys: {.cls_token: {decay_mult: 0.0, lr_mult: 10}}\n",
                 m);
    ck_assert_uint_eq(ow_groups_get_num_warnings(g), 2);
    ck_assert_str_eq(
        ow_groups_get_warning(g, 0),
        "t.yaml:8:31: optim_wrapper.paramwise_cfg.custom_keys..cls_token.lr_mult: "
        "has no effect under LearningRateDecayOptimWrapperConstructor (lr = base lr "
        "* layer scale); it is copied into the groups as mmpretrain does");
    ck_assert_str_eq(ow_groups_get_warning(g, 1),
                     "t.yaml:7:19: optim_wrapper.paramwise_cfg.bias_lr_mult: ignored by "
                     "LearningRateDecayOptimWrapperConstructor (as in mmpretrain)");
    ck_assert_str_eq(
        ow_groups_get_reason(g, ct_group_of(g, "backbone.cls_token")),
        "layer 0 of 14 (VisionTransformer get_layer_depth), lr_scale 0.65**13; "
        "weight decay: custom key '.cls_token'");
    ck_assert_str_eq(
        ow_groups_get_reason(g, ct_group_of(g, "backbone.layers.4.ln1.bias")),
        "layer 5 of 14 (VisionTransformer get_layer_depth), lr_scale 0.65**8; "
        "weight decay: norm_decay_mult");
    /* lr_scale is part of lr already: the effective lr is lr */
    double eff;
    ow_error err;
    size_t gi = ct_group_of(g, "backbone.layers.4.ln1.bias");
    ow_check_ok(ow_groups_get_effective_lr(g, gi, &eff, &err), &err);
    ck_assert_double_eq(eff, ct_num(g, gi, "lr"));
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

/* ---- the command ------------------------------------------------------------------- */

static char *run(const char *args, int *status)
{
    char out_path[] = "/tmp/ow_explain_XXXXXX";
    int fo = mkstemp(out_path);
    ck_assert(fo >= 0);
    close(fo);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/optwrap' %s >'%s' 2>&1", OW_TEST_GOLDEN,
             OW_TEST_BUILDDIR, args, out_path);
    int st = system(cmd);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    char *out = ow_test_slurp(out_path);
    unlink(out_path);
    return out;
}

START_TEST(groups_command_explains)
{
    int status;
    char *out =
        run("groups '{optimizer: {type: timm.adamw, lr: 0.001, weight_decay: 0.05}, "
            "constructor: TimmOptimWrapperConstructor, paramwise_cfg: {layer_decay: 0.5, "
            "no_weight_decay: [cls_token], group_matcher: {stem: ^cls_token|pos_embed|"
            "patch_embed, blocks: ^blocks\\.(\\d+)}}}' --model models/timm_vit_base_"
            "patch16_224.yaml --explain",
            &status);
    ck_assert_msg(status == 0, "%s", out);
    ck_assert_msg(
        strstr(out, "cls_token                                        group 0: "
                    "lr=0.001 effective_lr=1.220703125e-07 weight_decay=0.0  layer 0 "
                    "of 14 (group_matcher 'stem'), lr_scale 0.5**13; no weight decay: "
                    "no_weight_decay pattern 'cls_token' (config)\n"),
        "%s", out);
    ow_free(out);
    out = run("groups '{optimizer: {type: timm.adamw, lr: 0.001}, constructor: "
              "TimmOptimWrapperConstructor, paramwise_cfg: {layer_decay: 0.5}}' --model "
              "models/torch_tied-tiny.yaml",
              &status);
    ck_assert_msg(status == 0, "%s", out);
    ck_assert_msg(strstr(out,
                         "optwrap: warning: <inline>:1:115: optim_wrapper.paramwise_cfg."
                         "layer_decay: the model has no group_matcher"),
                  "%s", out);
    ck_assert_msg(
        strstr(out, "\neffective_lr: the lr a group steps with before any schedule"),
        "%s", out);
    ow_free(out);
}
END_TEST

START_TEST(custom_keys_survive_every_allocation_failure)
{
    ow_model *m = ct_model("EncoderDecoder", "Backbone", seg_params);
    ow_cfg *cfg = ct_config(DEFAULT_CFG("      're:^head\\.': {lr_mult: 10}\n"
                                        "      'glob:*.layers.1?.*': {lr_mult: 2}\n"
                                        "      hed: {lr_mult: 3}\n"));
    ow_groups *g = ct_build_oom(cfg, m);
    ck_assert_uint_eq(ow_groups_get_num_warnings(g), 1);
    ow_groups_free(g);
    ow_cfg_free(cfg);
    ow_model_free(m);
}
END_TEST

static Suite *make_explain_suite(void)
{
    Suite *s = suite_create("explain");
    TCase *tc = tcase_create("Core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, regex_and_glob_custom_keys);
    tcase_add_test(tc, custom_key_warnings);
    tcase_add_test(tc, bad_regex_custom_key);
    tcase_add_test(tc, lr_decay_warnings_and_reasons);
    tcase_add_test(tc, groups_command_explains);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("Limits");
    tcase_set_timeout(tl, 60);
    tcase_add_test(tl, custom_keys_survive_every_allocation_failure);
    suite_add_tcase(s, tl);
    return s;
}

int main(void)
{
    return ow_test_run(make_explain_suite());
}
