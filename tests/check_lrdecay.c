/* check_lrdecay.c -- mmpretrain's LearningRateDecayOptimWrapperConstructor: every golden
 * lrdecay__* case and its error cases, each layer-depth provider on the built-in
 * architectures and on hand-made trees (the reference quirks included, with their
 * warnings), RegexLayerDepth and its positioned errors, and allocation failures. */
#include "ctor_test.h"
#include "golden_groups.h"

#include <math.h>
#include <string.h>

static char **cases;
static size_t n_cases;

START_TEST(golden_lrdecay_case)
{
    const char *name = cases[_i];
    ow_golden_case c;
    ow_golden_build(&c, name);
    ow_check_ok(c.rc, &c.err);
    ow_golden_check_groups(name, c.groups, c.golden);
    /* every group's layer id is below the provider's count, as get_layer_depth returned
     */
    const ow_cfg *max_id = ow_cfg_find(c.golden, "layer_depth.max_id");
    for (size_t gi = 0; max_id && gi < ow_groups_get_count(c.groups); gi++) {
        const ow_cfg *id = ow_cfg_find(ow_groups_get_options(c.groups, gi), "layer_id");
        if (id)
            ck_assert_int_lt(id->v.i, max_id->v.i);
    }
    ow_golden_case_free(&c);
}
END_TEST

/* The reference's errors, with optwrap's message instead of the Python exception.
 * Positions are in the golden JSON file, whose optim_wrapper sits on line 4. */
static const struct {
    const char *file;
    int code, line, column;
    const char *message;
} error_cases[] = {
    /* KeyError: 'weight_decay' */
    {"error__mmpretrain_vit-base-p16__ld_no_weight_decay.json", OW_ERR_MISSING_KEY, 4, 57,
     "optim_wrapper.optimizer: LearningRateDecayOptimWrapperConstructor needs "
     "weight_decay "
     "(without it mmpretrain skips every weight-decay rule, custom keys included, and "
     "then "
     "fails with KeyError: 'weight_decay')"},
    /* TypeError: unsupported operand type(s) for *: 'NoneType' and 'float' */
    {"error__mmpretrain_vit-base-p16__ld_without_lr.json", OW_ERR_MISSING_KEY, 4, 57,
     "optim_wrapper.optimizer: LearningRateDecayOptimWrapperConstructor sets lr = "
     "optimizer.lr * layer scale, but optim_wrapper.optimizer has no lr"},
};

START_TEST(golden_error_case)
{
    ow_golden_check_error(error_cases[_i].file, error_cases[_i].code,
                          error_cases[_i].line, error_cases[_i].column,
                          error_cases[_i].message);
}
END_TEST

/* ---- providers on real trees: (architecture, parameter, layer id, num_layers) -------
 */

#define LRD_CFG(extra)                                                                   \
    "optim_wrapper:\n"                                                                   \
    "  optimizer: {type: AdamW, lr: 1.0, weight_decay: 0.05}\n"                          \
    "  constructor: LearningRateDecayOptimWrapperConstructor\n"                          \
    "  paramwise_cfg: {layer_decay_rate: 0.5" extra "}\n"

static const struct {
    const char *arch, *param;
    int64_t id, n;
} depth_cases[] = {
    /* Swin-T, depths [2, 2, 6, 2]: patch merging shares its stage's last block id */
    {"swin-tiny", "backbone.patch_embed.projection.weight", 0, 14},
    {"swin-tiny", "backbone.stages.0.blocks.0.norm1.weight", 1, 14},
    {"swin-tiny", "backbone.stages.0.blocks.1.attn.w_msa.qkv.weight", 2, 14},
    {"swin-tiny", "backbone.stages.0.downsample.reduction.weight", 2, 14},
    {"swin-tiny", "backbone.stages.0.downsample.norm.weight", 2, 14},
    {"swin-tiny", "backbone.stages.1.blocks.0.norm1.weight", 3, 14},
    {"swin-tiny", "backbone.stages.2.blocks.5.norm2.bias", 10, 14},
    {"swin-tiny", "backbone.stages.2.downsample.reduction.weight", 10, 14},
    {"swin-tiny", "backbone.stages.3.blocks.1.norm2.weight", 12, 14},
    {"swin-tiny", "backbone.norm3.weight", 13, 14},
    {"swin-tiny", "head.fc.weight", 13, 14},
    /* BEiT-B: the ViT rule; layer scale and q/v biases sit in their layer */
    {"beit-base-p16", "backbone.cls_token", 0, 14},
    {"beit-base-p16", "backbone.patch_embed.projection.weight", 0, 14},
    {"beit-base-p16", "backbone.layers.0.gamma_1", 1, 14},
    {"beit-base-p16", "backbone.layers.11.attn.q_bias", 12, 14},
    {"beit-base-p16", "head.fc.weight", 13, 14},
    /* ViT-L: 24 layers */
    {"vit-large-p16", "backbone.pos_embed", 0, 26},
    {"vit-large-p16", "backbone.layers.23.ln1.weight", 24, 26},
    {"vit-large-p16", "backbone.ln1.weight", 25, 26},
    /* DeiT-T (VisionTransformer) */
    {"deit-tiny", "backbone.layers.5.ffn.layers.0.0.weight", 6, 14},
    /* ConvNeXt-S, depths [3, 3, 27, 3]: depths[-2] > 9 gives 12 layer ids + 2 */
    {"convnext-small", "backbone.downsample_layers.0.0.weight", 0, 14},
    {"convnext-small", "backbone.downsample_layers.1.1.weight", 2, 14},
    {"convnext-small", "backbone.downsample_layers.2.1.weight", 3, 14},
    {"convnext-small", "backbone.downsample_layers.3.1.weight", 12, 14},
    {"convnext-small", "backbone.stages.0.0.gamma", 1, 14},
    {"convnext-small", "backbone.stages.1.2.gamma", 2, 14},
    {"convnext-small", "backbone.stages.2.26.gamma", 11, 14},
    {"convnext-small", "backbone.stages.3.0.gamma", 12, 14},
    {"convnext-small", "backbone.norm3.weight", 13, 14},
    {"convnext-small", "head.fc.weight", 13, 14},
    /* ResNet-101 [3, 4, 23, 3]: blocks of (2, 3), N = 2 + 2 + 8 */
    {"resnet101", "backbone.conv1.weight", 0, 14},
    {"resnet101", "backbone.layer1.2.conv1.weight", 1, 14},
    {"resnet101", "backbone.layer2.3.conv1.weight", 3, 14},
    {"resnet101", "backbone.layer3.22.conv3.weight", 11, 14},
    {"resnet101", "backbone.layer4.2.conv3.weight", 12, 14},
    {"resnet101", "head.fc.weight", 13, 14},
    /* ResNet-152 [3, 8, 36, 3]: blocks of (4, 4), N = 2 + 2 + 9 */
    {"resnet152", "backbone.layer2.7.conv1.weight", 3, 15},
    {"resnet152", "backbone.layer3.35.conv1.weight", 12, 15},
    {"resnet152", "backbone.layer4.0.conv1.weight", 13, 15},
    {"resnet152", "head.fc.bias", 14, 15},
};

START_TEST(provider_layer_ids)
{
    ow_model *m = ct_arch(depth_cases[_i].arch);
    ow_groups *g = ct_build(LRD_CFG(""), m);
    size_t gi = ct_group_of(g, depth_cases[_i].param);
    int64_t id = depth_cases[_i].id, n = depth_cases[_i].n;
    ck_assert_msg((int64_t)ct_num(g, gi, "layer_id") == id, "%s %s: layer %g, want %lld",
                  depth_cases[_i].arch, depth_cases[_i].param, ct_num(g, gi, "layer_id"),
                  (long long)id);
    ck_assert_double_eq(ct_num(g, gi, "lr_scale"), pow(0.5, (double)(n - id - 1)));
    ck_assert_double_eq(ct_num(g, gi, "lr"), pow(0.5, (double)(n - id - 1)));
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

/* frozen_stages=1: conv1, bn1 and layer1 are skipped silently */
START_TEST(frozen_parameters_are_skipped)
{
    ow_model *m = ct_arch("resnet50-frozen1");
    ow_groups *g = ct_build(LRD_CFG(""), m);
    size_t frozen = 0;
    for (size_t i = 0; i < ow_model_get_num_params(m); i++) {
        ow_param_view pv;
        ow_model_get_param(m, i, &pv);
        frozen += !pv.requires_grad;
    }
    ck_assert_uint_gt(frozen, 0);
    ck_assert_uint_eq(ow_groups_get_count(g), ow_model_get_num_params(m) - frozen);
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

/* ---- hand-made trees: the root as backbone, aliases, the quirks ------------------- */

static int64_t layer_of(const ow_groups *g, const char *name)
{
    return (int64_t)ct_num(g, ct_group_of(g, name), "layer_id");
}

START_TEST(vit_at_the_root_has_no_prefix)
{
    static const char *const p[] = {"cls_token:1x1x4",
                                    "pos_embed:1x5x4",
                                    "patch_embed.projection.weight:4x3x2x2",
                                    "layers.0.ln1.weight",
                                    "layers.1.ffn.w:4x4",
                                    "ln1.weight",
                                    NULL};
    ow_model *m = ct_model("VisionTransformer", NULL, p);
    ow_groups *g = ct_build(LRD_CFG(""), m);
    ck_assert_int_eq(layer_of(g, "cls_token"), 0);
    ck_assert_int_eq(layer_of(g, "patch_embed.projection.weight"), 0);
    ck_assert_int_eq(layer_of(g, "layers.0.ln1.weight"), 1);
    ck_assert_int_eq(layer_of(g, "layers.1.ffn.w"), 2);
    ck_assert_int_eq(layer_of(g, "ln1.weight"), 3);
    ck_assert_str_eq(ow_groups_get_reason(g, ct_group_of(g, "layers.1.ffn.w")),
                     "layer 2 of 4 (VisionTransformer get_layer_depth), lr_scale 0.5**1; "
                     "weight decay: optimizer weight_decay");
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

START_TEST(subclass_names_are_aliases)
{
    static const char *const p[] = {"backbone.cls_token:1x1x4",
                                    "backbone.dist_token:1x1x4",
                                    "backbone.layers.0.w:4x4", "head.w:4x4", NULL};
    ow_model *m = ct_model("ImageClassifier", "DistilledVisionTransformer", p);
    ow_groups *g = ct_build(LRD_CFG(""), m);
    ck_assert_int_eq(layer_of(g, "backbone.cls_token"), 0);
    ck_assert_int_eq(layer_of(g, "backbone.dist_token"), 2); /* not a stem token */
    ck_assert_int_eq(layer_of(g, "head.w"), 2);
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

START_TEST(mixmim_neck_and_leftovers)
{
    static const char *const p[] = {"backbone.absolute_pos_embed:1x4x4",
                                    "backbone.patch_embed.projection.w:4x4",
                                    "backbone.layers.0.blocks.0.w:4x4",
                                    "backbone.layers.0.blocks.1.w:4x4",
                                    "backbone.layers.0.downsample.reduction.w:4x4",
                                    "backbone.layers.1.blocks.0.w:4x4",
                                    "backbone.norm.weight",
                                    "neck.w:4x4",
                                    "head.w:4x4",
                                    NULL};
    ow_model *m = ct_model("ImageClassifier", "MixMIMTransformer", p);
    ow_groups *g = ct_build(LRD_CFG(""), m); /* depths [2, 1]: 5 layer ids */
    ck_assert_int_eq(layer_of(g, "backbone.absolute_pos_embed"), 0);
    ck_assert_int_eq(layer_of(g, "backbone.patch_embed.projection.w"), 0);
    ck_assert_int_eq(layer_of(g, "backbone.layers.0.blocks.1.w"), 2);
    ck_assert_int_eq(layer_of(g, "backbone.layers.0.downsample.reduction.w"), 2);
    ck_assert_int_eq(layer_of(g, "backbone.layers.1.blocks.0.w"), 3);
    ck_assert_int_eq(layer_of(g, "backbone.norm.weight"), 3); /* num_layers - 2 */
    ck_assert_int_eq(layer_of(g, "neck.w"), 3);               /* num_layers - 2 */
    ck_assert_int_eq(layer_of(g, "head.w"), 4);
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

/* HiViT's rule looks for 'layers': its 'blocks' all get the top id, with a warning. */
START_TEST(hivit_blocks_never_match)
{
    static const char *const p[] = {"backbone.pos_embed:1x4x4",
                                    "backbone.patch_embed.proj.w:4x4",
                                    "backbone.blocks.0.w:4x4",
                                    "backbone.blocks.1.w:4x4",
                                    "head.w:4x4",
                                    NULL};
    ow_model *m = ct_model("ImageClassifier", "MAEHiViT", p);
    ow_groups *g = ct_build(LRD_CFG(""), m);
    ck_assert_int_eq(layer_of(g, "backbone.pos_embed"), 0);
    ck_assert_int_eq(layer_of(g, "backbone.blocks.0.w"), 3);
    ck_assert_int_eq(layer_of(g, "backbone.blocks.1.w"), 3);
    ck_assert_uint_eq(ow_groups_get_num_warnings(g), 1);
    ck_assert_str_eq(
        ow_groups_get_warning(g, 0),
        "t.yaml:3:16: HiViT get_layer_depth (reproduced): mmpretrain looks for "
        "'backbone.layers.N' but HiViT's blocks are 'backbone.blocks.N', so every "
        "block parameter gets the top layer id 3 (lr scale 1: no decay for any "
        "block)");
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

/* ResNet at the root: 'backbone.layer' never matches, every parameter is layer 0. */
START_TEST(resnet_full_name_quirk)
{
    static const int blocks[] = {3, 4, 6, 3};
    const char *p[40];
    char names[40][64];
    size_t n = 0;
    snprintf(names[n], sizeof names[n], "conv1.weight:4x3x3x3");
    p[n] = names[n], n++;
    for (int s = 0; s < 4; s++)
        for (int b = 0; b < blocks[s]; b++) {
            snprintf(names[n], sizeof names[n], "layer%d.%d.conv1.weight:4x4x1x1", s + 1,
                     b);
            p[n] = names[n], n++;
        }
    p[n] = NULL;
    ow_model *m = ct_model("ResNet", NULL, p);
    ow_groups *g = ct_build(LRD_CFG(""), m);
    for (size_t gi = 0; gi < ow_groups_get_count(g); gi++) {
        ck_assert_int_eq((int64_t)ct_num(g, gi, "layer_id"), 0);
        ck_assert_double_eq(ct_num(g, gi, "lr_scale"), pow(0.5, 7));
    }
    ck_assert(
        ct_has_warning(g, "ResNet get_layer_depth (reproduced): mmpretrain matches the "
                          "full name against 'backbone.layer' whatever the prefix"));
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

START_TEST(named_provider_overrides_the_backbone_class)
{
    static const char *const p[] = {"backbone.cls_token:1x1x4", "backbone.layers.0.w:4x4",
                                    "backbone.layers.1.w:4x4", "head.w:4x4", NULL};
    ow_model *m = ct_model("MyNet", "MyViT", p);
    ow_groups *g = ct_build(LRD_CFG(", layer_depth: {type: VisionTransformer}"), m);
    ck_assert_int_eq(layer_of(g, "backbone.layers.1.w"), 2);
    ck_assert_int_eq(layer_of(g, "head.w"), 3);
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

/* ---- bad inputs: positioned errors ------------------------------------------------ */

static const struct {
    const char *arch, *extra;
    int code, line, column;
    const char *message;
} bad_cases[] = {
    {"resnet18", "", OW_ERR_UNSUPPORTED, 3, 16,
     "ResNet get_layer_depth: stage depths [2, 2, 2, 2] are not one it knows (mmpretrain "
     "raises NotImplementedError; it handles stages 2 and 3 of 4 and 6, 4 and 23, 8 and "
     "36, "
     "24 and 36, 30 and 48, e.g. ResNet-50/101/152, not ResNet-18); set "
     "paramwise_cfg.layer_depth: {type: RegexLayerDepth, ...}"},
    {"mobilenet-v2", "", OW_ERR_UNSUPPORTED, 3, 16,
     "optim_wrapper.constructor: the backbone MobileNetV2 doesn't support "
     "`get_layer_depth` "
     "(optwrap has no layer-depth provider for it); set paramwise_cfg.layer_depth: "
     "{type: "
     "RegexLayerDepth, rules: [[REGEX, LAYER_ID], ...], num_layers: N}"},
    {"vit-base-p16", ", layer_depth: {type: VisionTransformr}", OW_ERR_UNKNOWN_TYPE, 4,
     62,
     "unknown layer_depth type 'VisionTransformr' (closest: "
     "'mmpretrain.VisionTransformer')"},
    /* a provider that cannot handle the backbone, at the layer_depth map */
    {"vit-base-p16", ", layer_depth: {type: ConvNeXt}", OW_ERR_UNSUPPORTED, 4, 55,
     "ConvNeXt get_layer_depth: needs at least two 'backbone.stages.N' stages in the "
     "model "
     "tree (it reads depths[-2]), found 0"},
    {"vit-base-p16", ", layer_depth: {type: SwinTransformer, depths: [2]}",
     OW_ERR_UNKNOWN_KEY, 4, 87,
     "optim_wrapper.paramwise_cfg.layer_depth: unknown key 'depths' (accepted: type)"},
};

START_TEST(bad_inputs)
{
    ow_model *m = ct_arch(bad_cases[_i].arch);
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "optim_wrapper:\n"
             "  optimizer: {type: AdamW, lr: 1.0, weight_decay: 0.05}\n"
             "  constructor: LearningRateDecayOptimWrapperConstructor\n"
             "  paramwise_cfg: {layer_decay_rate: 0.5%s}\n",
             bad_cases[_i].extra);
    ow_error err;
    ct_build_fails(yaml, m, bad_cases[_i].code, &err);
    ow_check_error(&err, bad_cases[_i].code, "t.yaml", bad_cases[_i].line,
                   bad_cases[_i].column, bad_cases[_i].message);
    ow_model_free(m);
}
END_TEST

/* ---- RegexLayerDepth ----------------------------------------------------------------
 */

#define REGEX_CFG(rules, more)                                                           \
    "optim_wrapper:\n"                                                                   \
    "  optimizer: {type: AdamW, lr: 1.0, weight_decay: 0.05}\n"                          \
    "  constructor: LearningRateDecayOptimWrapperConstructor\n"                          \
    "  paramwise_cfg:\n"                                                                 \
    "    layer_decay_rate: 0.5\n"                                                        \
    "    layer_depth:\n"                                                                 \
    "      type: RegexLayerDepth\n"                                                      \
    "      num_layers: 9\n" more "      rules:\n" rules

/* MobileNetV2 has no get_layer_depth: rules give its stem 0, layer k id k, conv2 8. */
START_TEST(regex_rules_give_layer_ids)
{
    ow_model *m = ct_arch("mobilenet-v2");
    ow_groups *g =
        ct_build(REGEX_CFG("        - ['^backbone\\.conv1\\.', 0]\n"
                           "        - ['^backbone\\.layer(\\d+)\\.', '$1']\n"
                           "        - ['^backbone\\.conv2\\.', '(3 + 5) // 1']\n",
                           ""),
                 m);
    ck_assert_int_eq(layer_of(g, "backbone.conv1.conv.weight"), 0);
    ck_assert_int_eq(layer_of(g, "backbone.layer1.0.conv.0.conv.weight"), 1);
    ck_assert_int_eq(layer_of(g, "backbone.layer7.0.conv.0.conv.weight"), 7);
    ck_assert_int_eq(layer_of(g, "backbone.conv2.conv.weight"), 8);
    ck_assert_int_eq(layer_of(g, "head.fc.weight"), 8); /* no rule: num_layers - 1 */
    size_t gi = ct_group_of(g, "backbone.layer3.0.conv.0.conv.weight");
    ck_assert_double_eq(ct_num(g, gi, "lr_scale"), 0.03125);
    ck_assert_str_eq(
        ow_groups_get_reason(g, gi),
        "layer 3 of 9 (RegexLayerDepth get_layer_depth), lr_scale 0.5**5; weight "
        "decay: optimizer weight_decay");
    ck_assert_uint_eq(ow_groups_get_num_warnings(g), 0);
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

START_TEST(regex_default_and_unused_rule)
{
    ow_model *m = ct_arch("mobilenet-v2");
    ow_groups *g =
        ct_build(REGEX_CFG("        - ['^backbone\\.layer(\\d+)\\.', '$1 - 1']\n"
                           "        - ['^neck\\.', 8]\n",
                           "      default: 7\n"),
                 m);
    ck_assert_int_eq(layer_of(g, "backbone.layer1.0.conv.0.conv.weight"), 0);
    ck_assert_int_eq(layer_of(g, "head.fc.weight"), 7);
    ck_assert_uint_eq(ow_groups_get_num_warnings(g), 1);
    ck_assert_str_eq(
        ow_groups_get_warning(g, 0),
        "t.yaml:12:11: optim_wrapper.paramwise_cfg.layer_depth.rules.1: regex "
        "'^neck\\.' matches no parameter");
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

static const struct {
    const char *rules;
    int code, line, column;
    const char *message;
} regex_errors[] = {
    /* PCRE2's own message and offset, at the regex's position */
    {"        - ['^backbone\\.(layer', 0]\n", OW_ERR_VALUE, 10, 12,
     "optim_wrapper.paramwise_cfg.layer_depth.rules.0: regex '^backbone\\.(layer' does "
     "not "
     "compile: error 114 at offset 17: missing closing parenthesis"},
    {"        - ['[a-', 0]\n", OW_ERR_VALUE, 10, 12,
     "optim_wrapper.paramwise_cfg.layer_depth.rules.0: regex '[a-' does not compile: "
     "error "
     "106 at offset 3: missing terminating ] for character class"},
    {"        - ['^backbone\\.(\\w+)\\.', '$1']\n", OW_ERR_VALUE, 10, 34,
     "optim_wrapper.paramwise_cfg.layer_depth.rules.0: capture $1 of "
     "'backbone.conv1.conv.weight' is 'conv1', not an integer"},
    {"        - ['^backbone\\.layer(\\d+)\\.', '$1 + 5']\n", OW_ERR_RANGE, 10, 39,
     "optim_wrapper.paramwise_cfg.layer_depth.rules.0: layer id 9 for "
     "'backbone.layer4.0.conv.0.conv.weight' is out of range 0..8 (num_layers 9)"},
    {"        - ['^backbone\\.layer(\\d+)\\.', '$1 +']\n", OW_ERR_VALUE, 10, 39,
     "optim_wrapper.paramwise_cfg.layer_depth.rules.0: layer id expression '$1 +': "
     "expected a "
     "number, '$N' or '(' at offset 4"},
    {"        - ['^backbone\\.layer(\\d+)\\.', '$2']\n", OW_ERR_VALUE, 10, 39,
     "optim_wrapper.paramwise_cfg.layer_depth.rules.0: layer id expression '$2': no such "
     "capture group in the rule's regex at offset 2"},
    {"        - ['^backbone\\.layer(\\d+)\\.', '$1 / 2']\n", OW_ERR_VALUE, 10, 39,
     "optim_wrapper.paramwise_cfg.layer_depth.rules.0: layer id expression '$1 / 2': '/' "
     "is "
     "not integer division: write '//' at offset 3"},
    {"        - ['^backbone']\n", OW_ERR_TYPE, 10, 11,
     "optim_wrapper.paramwise_cfg.layer_depth.rules.0: expected a pair [REGEX, "
     "LAYER_ID]"},
    {"        - ['^backbone', 1.5]\n", OW_ERR_TYPE, 10, 25,
     "optim_wrapper.paramwise_cfg.layer_depth.rules.0: the layer id must be an int or an "
     "expression of the captures such as '$1 + 1', got float"},
};

START_TEST(regex_bad_rules)
{
    ow_model *m = ct_arch("mobilenet-v2");
    char yaml[1024];
    snprintf(yaml, sizeof yaml, REGEX_CFG("%s", ""), regex_errors[_i].rules);
    ow_error err;
    ct_build_fails(yaml, m, regex_errors[_i].code, &err);
    ow_check_error(&err, regex_errors[_i].code, "t.yaml", regex_errors[_i].line,
                   regex_errors[_i].column, regex_errors[_i].message);
    ow_model_free(m);
}
END_TEST

START_TEST(regex_survives_every_allocation_failure)
{
    ow_model *m = ct_arch("mobilenet-v2");
    ow_cfg *cfg =
        ct_config(REGEX_CFG("        - ['^backbone\\.layer(\\d+)\\.', '$1']\n", ""));
    ow_groups *g = ct_build_oom(cfg, m);
    ck_assert_int_eq(layer_of(g, "backbone.layer2.0.conv.0.conv.weight"), 2);
    ow_groups_free(g);
    ow_cfg_free(cfg);
    ow_model_free(m);
}
END_TEST

START_TEST(lr_decay_survives_every_allocation_failure)
{
    ow_cfg *golden =
        ow_golden_load("lrdecay__mmpretrain_vit-base-p16__doc_rate0.65.json");
    ow_cfg *cfg = ow_golden_config(golden);
    ow_model *m = ow_golden_model(golden);
    ow_groups *g = ct_build_oom(cfg, m);
    ow_golden_check_groups("oom", g, golden);
    ow_groups_free(g);
    ow_model_free(m);
    ow_cfg_free(cfg);
    ow_cfg_free(golden);
}
END_TEST

static Suite *make_lrdecay_suite(void)
{
    Suite *s = suite_create("lrdecay");
    cases = ow_golden_list("lrdecay__", &n_cases);
    TCase *tg = tcase_create("Golden");
    tcase_set_timeout(tg, 60);
    tcase_add_loop_test(tg, golden_lrdecay_case, 0, (int)n_cases);
    tcase_add_loop_test(tg, golden_error_case, 0, OW__ARRAY_LEN(error_cases));
    suite_add_tcase(s, tg);
    TCase *tp = tcase_create("Providers");
    tcase_set_timeout(tp, 60);
    tcase_add_loop_test(tp, provider_layer_ids, 0, OW__ARRAY_LEN(depth_cases));
    tcase_add_test(tp, frozen_parameters_are_skipped);
    tcase_add_test(tp, vit_at_the_root_has_no_prefix);
    tcase_add_test(tp, subclass_names_are_aliases);
    tcase_add_test(tp, mixmim_neck_and_leftovers);
    tcase_add_test(tp, hivit_blocks_never_match);
    tcase_add_test(tp, resnet_full_name_quirk);
    tcase_add_test(tp, named_provider_overrides_the_backbone_class);
    suite_add_tcase(s, tp);
    TCase *tr = tcase_create("Regex");
    tcase_add_test(tr, regex_rules_give_layer_ids);
    tcase_add_test(tr, regex_default_and_unused_rule);
    tcase_add_loop_test(tr, regex_bad_rules, 0, OW__ARRAY_LEN(regex_errors));
    suite_add_tcase(s, tr);
    TCase *te = tcase_create("Errors");
    tcase_add_loop_test(te, bad_inputs, 0, OW__ARRAY_LEN(bad_cases));
    suite_add_tcase(s, te);
    TCase *tl = tcase_create("Limits");
    tcase_set_timeout(tl, 120);
    tcase_add_test(tl, lr_decay_survives_every_allocation_failure);
    tcase_add_test(tl, regex_survives_every_allocation_failure);
    suite_add_tcase(s, tl);
    return s;
}

int main(void)
{
    int rc = ow_test_run(make_lrdecay_suite());
    ow_golden_free_list(cases);
    return rc;
}
