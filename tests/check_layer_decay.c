/* check_layer_decay.c -- mmseg's and mmdet's LearningRateDecayOptimizerConstructor (the
 * numbers of mmdet's own unit test, on its ToyConvNeXt), mmseg's deprecated
 * LayerDecayOptimizerConstructor and mmdet's ViTDet layer decay: merged groups, their key
 * order and values, the reproduced quirks, positioned errors, allocation failures. */
#include "ctor_test.h"

#include <string.h>

/* mmdet tests/test_engine/test_optimizers/test_layer_decay_optimizer_constructor.py:
 * ToyDetector(ToyConvNeXt) with a frozen `lin`. */
static const char *const toy_params[] = {"backbone.cls_token:1",
                                         "backbone.mask_token:1",
                                         "backbone.pos_embed:1",
                                         "backbone.stem_norm:1",
                                         "!backbone.lin:1",
                                         "backbone.stages.0.0.conv.weight:4x3x1x1",
                                         "backbone.stages.0.0.conv.bias:4",
                                         "backbone.stages.1.0.conv.weight:4x3x1x1",
                                         "backbone.stages.1.0.conv.bias:4",
                                         "backbone.stages.2.0.conv.weight:4x3x1x1",
                                         "backbone.stages.2.0.conv.bias:4",
                                         "backbone.stages.3.0.conv.weight:4x3x1x1",
                                         "backbone.stages.3.0.conv.bias:4",
                                         "backbone.norm0.weight:2",
                                         "backbone.norm0.bias:2",
                                         "backbone.downsample_norm0.weight:2",
                                         "backbone.downsample_norm0.bias:2",
                                         "backbone.downsample_norm1.weight:2",
                                         "backbone.downsample_norm1.bias:2",
                                         "backbone.downsample_norm2.weight:2",
                                         "backbone.downsample_norm2.bias:2",
                                         "backbone.downsample_layers.0.0.weight:4x3x1x1",
                                         "backbone.downsample_layers.0.0.bias:4",
                                         "backbone.downsample_layers.1.0.weight:4x3x1x1",
                                         "backbone.downsample_layers.1.0.bias:4",
                                         "backbone.downsample_layers.2.0.weight:4x3x1x1",
                                         "backbone.downsample_layers.2.0.bias:4",
                                         "backbone.downsample_layers.3.0.weight:4x3x1x1",
                                         "backbone.downsample_layers.3.0.bias:4",
                                         "head.weight:2x1x1x1",
                                         "head.bias:2",
                                         NULL};

#define TOY_CFG(ctor, type)                                                              \
    "optim_wrapper:\n"                                                                   \
    "  optimizer: {type: AdamW, lr: 1, betas: [0.9, 0.999], weight_decay: 0.05}\n"       \
    "  constructor: " ctor "\n"                                                          \
    "  paramwise_cfg: {decay_rate: 2, decay_type: " type ", num_layers: 6}\n"

/* expected_{stage,layer}_wise_lr_wd_convnext: (weight_decay, lr_scale) per group */
static const double toy_wd[] = {0.0,  0.0, 0.05, 0.0, 0.05, 0.0,
                                0.05, 0.0, 0.05, 0.0, 0.05, 0.05};
static const int64_t stage_scale[] = {128, 1, 64, 64, 32, 32, 16, 16, 8, 8, 128, 1};
static const int64_t layer_scale[] = {128, 1, 64, 64, 32, 32, 16, 16, 2, 2, 128, 1};

static const struct {
    const char *yaml;
    const int64_t *scale;
} toy_cases[] = {
    {TOY_CFG("mmdet.LearningRateDecayOptimizerConstructor", "stage_wise"), stage_scale},
    {TOY_CFG("mmdet.LearningRateDecayOptimizerConstructor", "layer_wise"), layer_scale},
    {TOY_CFG("mmseg.LearningRateDecayOptimizerConstructor", "stage_wise"), stage_scale},
    {TOY_CFG("LearningRateDecayOptimizerConstructor", "layer_wise"), layer_scale},
};

START_TEST(mmdet_unit_test_numbers)
{
    ow_model *m = ct_model("ToyDetector", "ToyConvNeXt", toy_params);
    ow_groups *g = ct_build(toy_cases[_i].yaml, m);
    ck_assert_uint_eq(ow_groups_get_count(g), 12);
    size_t total = 0;
    for (size_t gi = 0; gi < 12; gi++)
        total += ow_groups_get_num_params(g, gi);
    ck_assert_uint_eq(total, ow_model_get_num_params(m) - 1); /* the frozen `lin` */
    for (size_t gi = 0; gi < 12; gi++) {
        const ow_cfg *o = ow_groups_get_options(g, gi);
        ck_assert_double_eq(ct_num(g, gi, "weight_decay"), toy_wd[gi]);
        /* int rate, int lr: lr_scale and lr stay ints, and lr == lr_scale */
        const ow_cfg *scale = ow_cfg_find(o, "lr_scale"), *lr = ow_cfg_find(o, "lr");
        ck_assert_int_eq(ow_cfg_get_type(scale), OW_CFG_INT);
        ck_assert_int_eq(ow_cfg_get_type(lr), OW_CFG_INT);
        ck_assert_msg((int64_t)ct_num(g, gi, "lr_scale") == toy_cases[_i].scale[gi],
                      "group %zu: lr_scale %g, want %lld", gi, ct_num(g, gi, "lr_scale"),
                      (long long)toy_cases[_i].scale[gi]);
        ck_assert_double_eq(ct_num(g, gi, "lr"), ct_num(g, gi, "lr_scale"));
        /* mmseg's key order, then the optimizer's defaults */
        static const char *const keys[] = {"weight_decay", "param_names", "lr_scale",
                                           "group_name",   "lr",          "betas"};
        for (size_t k = 0; k < OW__ARRAY_LEN(keys); k++)
            ck_assert_str_eq(ow_cfg_get_key(o, k), keys[k]);
    }
    /* the first group holds the three tokens, then the downsample biases of id 0: all
     * four stage-wise, only the first layer-wise */
    const ow_cfg *names = ow_cfg_find(ow_groups_get_options(g, 0), "param_names");
    ck_assert_uint_eq(ow_cfg_get_size(names), toy_cases[_i].scale == stage_scale ? 7 : 4);
    ck_assert_str_eq(ow_cfg_find(names, "2")->v.s, "backbone.pos_embed");
    ck_assert_str_eq(ow_cfg_find(ow_groups_get_options(g, 0), "group_name")->v.s,
                     "layer_0_no_decay");
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

#define BEIT_CFG(ctor, pw)                                                               \
    "optim_wrapper:\n"                                                                   \
    "  optimizer: {type: AdamW, lr: 0.001, weight_decay: 0.05}\n"                        \
    "  constructor: " ctor "\n"                                                          \
    "  paramwise_cfg: " pw "\n"

/* BEiT under mmseg: 3-D backbone.cls_token is decayed (its no-decay test compares the
 * bare name), with a warning; the legacy constructor gives the same groups. */
static const char *const beit_cfgs[] = {
    BEIT_CFG("LearningRateDecayOptimizerConstructor",
             "{num_layers: 12, decay_rate: 0.9, decay_type: layer_wise_vit}"),
    BEIT_CFG("mmseg.LayerDecayOptimizerConstructor",
             "{num_layers: 12, layer_decay_rate: 0.9, decay_rate: 0.5}"),
};

START_TEST(mmseg_beit_layer_wise)
{
    ow_model *m = ct_arch("beit-base-p16");
    ow_groups *g = ct_build(beit_cfgs[_i], m);
    size_t gi = ct_group_of(g, "backbone.cls_token");
    ck_assert_uint_eq(gi, 0);
    ck_assert_str_eq(ow_cfg_find(ow_groups_get_options(g, gi), "group_name")->v.s,
                     "layer_0_decay");
    ck_assert_double_eq(ct_num(g, gi, "weight_decay"), 0.05);
    ck_assert(ct_has_warning(g, "'backbone.cls_token' gets weight decay, because the "
                                "reference's no-decay test compares the bare name "
                                "'cls_token'"));
    gi = ct_group_of(g, "backbone.layers.3.ffn.layers.0.0.weight");
    ck_assert_str_eq(ow_cfg_find(ow_groups_get_options(g, gi), "group_name")->v.s,
                     "layer_4_decay");
    ck_assert_double_eq(ct_num(g, gi, "lr_scale"), 0.3874204890000001); /* 0.9 ** 9 */
    ck_assert_double_eq(ct_num(g, gi, "lr"), 0.3874204890000001 * 0.001);
    gi = ct_group_of(g, "backbone.layers.3.ffn.layers.0.0.bias");
    ck_assert_str_eq(ow_cfg_find(ow_groups_get_options(g, gi), "group_name")->v.s,
                     "layer_4_no_decay");
    gi = ct_group_of(g, "head.fc.weight");
    ck_assert_double_eq(ct_num(g, gi, "lr_scale"), 1.0);
    ck_assert_str_eq(ow_groups_get_reason(g, gi),
                     "layer_13_decay: layer 13 of 14 (ViT layer_wise), lr_scale 0.9**0; "
                     "weight decay");
    if (_i == 1) {
        ck_assert(ct_has_warning(g,
                                 "t.yaml:4:70: optim_wrapper.paramwise_cfg.decay_rate: "
                                 "overwritten by LayerDecayOptimizerConstructor"));
        ck_assert(
            ct_has_warning(g, "LayerDecayOptimizerConstructor is deprecated in mmseg"));
    }
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

/* ViTDet: norms in blocks and pos_embed undecayed (int 0 for pos_embed), biases decayed.
 */
START_TEST(vitdet_groups)
{
    static const char *const p[] = {"backbone.pos_embed:1x4x4",
                                    "backbone.patch_embed.proj.weight:4x3x2x2",
                                    "backbone.patch_embed.proj.bias:4",
                                    "backbone.blocks.0.norm1.weight:4",
                                    "backbone.blocks.0.attn.qkv.weight:12x4",
                                    "backbone.blocks.0.attn.qkv.bias:12",
                                    "backbone.blocks.1.norm1.weight:4",
                                    "backbone.blocks.1.attn.qkv.weight:12x4",
                                    "neck.lateral.weight:4x4",
                                    "roi_head.norm.weight:4",
                                    NULL};
    ow_model *m = ct_model("MaskRCNN", "ViT", p);
    ow_groups *g = ct_build("optim_wrapper:\n"
                            "  optimizer: {type: AdamW, lr: 1.0, weight_decay: 0.1}\n"
                            "  constructor: ViTLayerDecayOptimizerConstructor\n"
                            "  paramwise_cfg: {num_layers: 2, decay_rate: 0.5}\n",
                            m);
    static const struct {
        const char *name;
        double wd, scale;
        size_t n;
    } want[] = {{"layer_0_no_decay_pos_embed", 0, 0.125, 1},
                {"layer_0_decay", 0.1, 0.125, 2},
                {"layer_1_no_decay", 0, 0.25, 1},
                {"layer_1_decay", 0.1, 0.25, 2},
                {"layer_2_no_decay", 0, 0.5, 1},
                {"layer_2_decay", 0.1, 0.5, 1},
                {"layer_3_decay", 0.1, 1.0, 2}};
    ck_assert_uint_eq(ow_groups_get_count(g), OW__ARRAY_LEN(want));
    for (size_t gi = 0; gi < OW__ARRAY_LEN(want); gi++) {
        const ow_cfg *o = ow_groups_get_options(g, gi);
        ck_assert_str_eq(ow_cfg_find(o, "group_name")->v.s, want[gi].name);
        ck_assert_double_eq(ct_num(g, gi, "weight_decay"), want[gi].wd);
        ck_assert_double_eq(ct_num(g, gi, "lr_scale"), want[gi].scale);
        ck_assert_double_eq(ct_num(g, gi, "lr"), want[gi].scale);
        ck_assert_uint_eq(ow_groups_get_num_params(g, gi), want[gi].n);
    }
    ck_assert_int_eq(
        ow_cfg_get_type(ow_cfg_find(ow_groups_get_options(g, 0), "weight_decay")),
        OW_CFG_INT);
    ck_assert_int_eq(
        ow_cfg_get_type(ow_cfg_find(ow_groups_get_options(g, 2), "weight_decay")),
        OW_CFG_FLOAT);
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

static const struct {
    const char *arch, *yaml;
    int code, line, column;
    const char *message;
} bad_cases[] = {
    {"vit-base-p16",
     BEIT_CFG("mmseg.LearningRateDecayOptimizerConstructor",
              "{num_layers: 12, decay_rate: 0.9}"),
     OW_ERR_UNSUPPORTED, 3, 16,
     "LearningRateDecayOptimizerConstructor: layer_wise decay handles backbones whose "
     "class "
     "name contains ConvNeXt, BEiT or MAE, not 'VisionTransformer' (the reference raises "
     "NotImplementedError)"},
    {"beit-base-p16",
     BEIT_CFG("mmdet.LearningRateDecayOptimizerConstructor",
              "{num_layers: 12, decay_rate: 0.9}"),
     OW_ERR_UNSUPPORTED, 3, 16,
     "LearningRateDecayOptimizerConstructor: layer_wise decay handles backbones whose "
     "class "
     "name contains ConvNeXt, not 'BEiTViT' (the reference raises NotImplementedError)"},
    {"beit-base-p16",
     BEIT_CFG("LearningRateDecayOptimizerConstructor",
              "{num_layers: 12, decay_rate: 0.9, decay_type: stage_wise}"),
     OW_ERR_UNSUPPORTED, 3, 16,
     "LearningRateDecayOptimizerConstructor: stage_wise decay handles backbones whose "
     "class "
     "name contains ConvNeXt, not 'BEiTViT' (the reference raises NotImplementedError)"},
    {"convnext-tiny",
     BEIT_CFG("LearningRateDecayOptimizerConstructor",
              "{num_layers: 6, decay_rate: 0.9, decay_type: layerwise}"),
     OW_ERR_VALUE, 4, 63,
     "optim_wrapper.paramwise_cfg.decay_type: expected layer_wise, layer_wise_vit or "
     "stage_wise, got 'layerwise'"},
    {"convnext-tiny",
     BEIT_CFG("LearningRateDecayOptimizerConstructor", "{decay_rate: 0.9}"),
     OW_ERR_MISSING_KEY, 4, 18,
     "optim_wrapper.paramwise_cfg: missing required key 'num_layers'"},
    {"convnext-tiny",
     "optim_wrapper:\n"
     "  optimizer: {type: AdamW, lr: 0.001}\n"
     "  constructor: LearningRateDecayOptimizerConstructor\n"
     "  paramwise_cfg: {num_layers: 6, decay_rate: 0.9}\n",
     OW_ERR_MISSING_KEY, 2, 14,
     "optim_wrapper.optimizer: LearningRateDecayOptimizerConstructor needs weight_decay "
     "(the "
     "reference would write weight_decay None into its decay groups)"},
};

START_TEST(bad_inputs)
{
    ow_model *m = ct_arch(bad_cases[_i].arch);
    ow_error err;
    ct_build_fails(bad_cases[_i].yaml, m, bad_cases[_i].code, &err);
    ow_check_error(&err, bad_cases[_i].code, "t.yaml", bad_cases[_i].line,
                   bad_cases[_i].column, bad_cases[_i].message);
    ow_model_free(m);
}
END_TEST

START_TEST(no_paramwise_cfg_is_one_flat_group)
{
    ow_model *m = ct_model("ToyDetector", "ToyConvNeXt", toy_params);
    ow_groups *g = ct_build("optim_wrapper:\n"
                            "  optimizer: {type: AdamW, lr: 1, weight_decay: 0.05}\n"
                            "  constructor: ViTLayerDecayOptimizerConstructor\n",
                            m);
    ck_assert_uint_eq(ow_groups_get_count(g), 1);
    ck_assert_uint_eq(ow_groups_get_num_params(g, 0), ow_model_get_num_params(m));
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

START_TEST(layer_decay_survives_every_allocation_failure)
{
    ow_model *m = ct_model("ToyDetector", "ToyConvNeXt", toy_params);
    ow_cfg *cfg = ct_config(toy_cases[0].yaml);
    ow_groups *g = ct_build_oom(cfg, m);
    ck_assert_uint_eq(ow_groups_get_count(g), 12);
    ow_groups_free(g);
    ow_cfg_free(cfg);
    cfg = ct_config("optim_wrapper:\n"
                    "  optimizer: {type: AdamW, lr: 1, weight_decay: 0.05}\n"
                    "  constructor: ViTLayerDecayOptimizerConstructor\n"
                    "  paramwise_cfg: {num_layers: 4, decay_rate: 0.5}\n");
    g = ct_build_oom(cfg, m);
    ck_assert_uint_gt(ow_groups_get_count(g), 1);
    ow_groups_free(g);
    ow_cfg_free(cfg);
    ow_model_free(m);
}
END_TEST

static Suite *make_layer_decay_suite(void)
{
    Suite *s = suite_create("layer_decay");
    TCase *tc = tcase_create("Core");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, mmdet_unit_test_numbers, 0, OW__ARRAY_LEN(toy_cases));
    tcase_add_loop_test(tc, mmseg_beit_layer_wise, 0, OW__ARRAY_LEN(beit_cfgs));
    tcase_add_test(tc, vitdet_groups);
    tcase_add_test(tc, no_paramwise_cfg_is_one_flat_group);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("Errors");
    tcase_set_timeout(te, 60);
    tcase_add_loop_test(te, bad_inputs, 0, OW__ARRAY_LEN(bad_cases));
    suite_add_tcase(s, te);
    TCase *tl = tcase_create("Limits");
    tcase_set_timeout(tl, 120);
    tcase_add_test(tl, layer_decay_survives_every_allocation_failure);
    suite_add_tcase(s, tl);
    return s;
}

int main(void)
{
    return ow_test_run(make_layer_decay_suite());
}
