/* check_recipes.c -- the fine-tuning recipes in configs/ (MAE and BEiT ViTs with layer
 * decay 0.65 / 0.75, SimMIM Swin, ConvNeXt stage-wise, timm-style ViT): each loads,
 * checks (optim_wrapper and param_scheduler), builds the groups it means on the built-in
 * architecture without a warning, and gives the lr and weight decay worked out by hand
 * (MAE ViT-B: exactly the reference's groups). */
#include "ctor_test.h"
#include "golden_groups.h"

#include <math.h>
#include <string.h>

static ow_cfg *recipe(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", OW_TEST_CONFIGS, name);
    ow_cfg *cfg = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_load(path, &cfg, &err), &err);
    ow_check_ok(ow_cfg_check(cfg, &err), &err);
    ow_check_ok(ow_sched_check(cfg, &err), &err);
    return cfg;
}

static ow_groups *build(const ow_cfg *cfg, const ow_model *m)
{
    ow_groups *g = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_groups_build(cfg, m, &g, &err), &err);
    for (size_t i = 0; i < ow_groups_get_num_warnings(g); i++)
        ck_abort_msg("unexpected warning: %s", ow_groups_get_warning(g, i));
    return g;
}

/* name, parameter, lr, weight decay */
typedef struct expect {
    const char *param;
    double lr, wd;
} expect;

static void check_params(const ow_groups *g, const expect *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t gi = ct_group_of(g, e[i].param);
        double lr;
        ow_error err;
        ow_check_ok(ow_groups_get_effective_lr(g, gi, &lr, &err), &err);
        ck_assert_msg(fabs(lr - e[i].lr) <= 1e-15 * e[i].lr, "%s: lr %.17g, want %.17g",
                      e[i].param, lr, e[i].lr);
        ck_assert_msg(ct_num(g, gi, "weight_decay") == e[i].wd,
                      "%s: weight decay %g, want %g", e[i].param,
                      ct_num(g, gi, "weight_decay"), e[i].wd);
    }
}

/* The reference built exactly these groups for this optim_wrapper (mae_benchmark_cfg). */
START_TEST(mae_vit_base)
{
    ow_cfg *cfg = recipe("vit-base-p16_mae-ft-100e_in1k.yaml");
    ow_cfg *golden =
        ow_golden_load("lrdecay__mmpretrain_vit-base-p16__mae_benchmark_cfg.json");
    ow_model *m = ow_golden_model(golden);
    ow_groups *g = build(cfg, m);
    ow_golden_check_groups("vit-base-p16_mae-ft-100e_in1k.yaml", g, golden);
    ow_groups_free(g);
    ow_model_free(m);
    ow_cfg_free(golden);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(mae_vit_large)
{
    ow_cfg *cfg = recipe("vit-large-p16_mae-ft-50e_in1k.yaml");
    ow_model *m = ct_arch("vit-large-p16");
    ow_groups *g = build(cfg, m);
    const expect e[] = {
        {"backbone.cls_token", 0.004 * pow(0.75, 25), 0.0},
        {"backbone.layers.0.ln1.weight", 0.004 * pow(0.75, 24), 0.0},
        {"backbone.layers.0.attn.qkv.weight", 0.004 * pow(0.75, 24), 0.05},
        {"backbone.layers.23.attn.qkv.bias", 0.004 * 0.75, 0.0},
        {"head.layers.head.weight", 0.004, 0.05},
    };
    check_params(g, e, OW__ARRAY_LEN(e));
    ow_groups_free(g);
    ow_model_free(m);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(beit_base)
{
    ow_cfg *cfg = recipe("beit-base-p16_ft-100e_in1k.yaml");
    ow_model *m = ct_arch("beit-base-p16");
    ow_groups *g = build(cfg, m);
    const expect e[] = {
        {"backbone.cls_token", 0.004 * pow(0.65, 13), 0.0},
        {"backbone.layers.0.gamma_1", 0.004 * pow(0.65, 12), 0.0},
        {"backbone.layers.0.attn.q_bias", 0.004 * pow(0.65, 12), 0.0},
        {"backbone.layers.11.attn.qkv.weight", 0.004 * 0.65, 0.05},
        {"head.fc.weight", 0.004, 0.05},
    };
    check_params(g, e, OW__ARRAY_LEN(e));
    ow_groups_free(g);
    ow_model_free(m);
    ow_cfg_free(cfg);
}
END_TEST

/* Swin-B, depths [2, 2, 18, 2]: 26 layer ids */
START_TEST(simmim_swin_base)
{
    ow_cfg *cfg = recipe("swin-base-w7_simmim-ft-100e_in1k.yaml");
    ow_model *m = ct_arch("swin-base");
    ow_groups *g = build(cfg, m);
    const expect e[] = {
        {"backbone.patch_embed.projection.weight", 0.005 * pow(0.9, 25), 0.05},
        {"backbone.stages.2.blocks.17.attn.w_msa.relative_position_bias_table",
         0.005 * pow(0.9, 3), 0.0},
        {"backbone.stages.2.downsample.reduction.weight", 0.005 * pow(0.9, 3), 0.05},
        {"backbone.stages.3.blocks.1.norm2.weight", 0.005 * 0.9, 0.0},
        {"head.fc.weight", 0.005, 0.05},
    };
    check_params(g, e, OW__ARRAY_LEN(e));
    ow_groups_free(g);
    ow_model_free(m);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(convnext_stage_wise)
{
    ow_cfg *cfg = recipe("convnext-tiny_upernet_stage-wise_ade20k.yaml");
    ow_model *m = ct_arch("convnext-tiny");
    ow_groups *g = build(cfg, m);
    const expect e[] = {
        {"backbone.downsample_layers.0.0.weight", 0.0001 * pow(0.9, 7), 0.05},
        {"backbone.downsample_layers.2.1.bias", 0.0001 * pow(0.9, 7), 0.0},
        {"backbone.stages.0.1.depthwise_conv.weight", 0.0001 * pow(0.9, 6), 0.05},
        {"backbone.stages.3.2.depthwise_conv.weight", 0.0001 * pow(0.9, 3), 0.05},
        {"backbone.stages.3.2.gamma", 0.0001 * pow(0.9, 3), 0.0},
        {"head.fc.weight", 0.0001, 0.05},
    };
    check_params(g, e, OW__ARRAY_LEN(e));
    /* merged: ids 0..4 and 7, decay and no_decay each */
    ck_assert_uint_eq(ow_groups_get_count(g), 12);
    ow_groups_free(g);
    ow_model_free(m);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(timm_vit_base)
{
    ow_cfg *cfg = recipe("vit-base-p16_timm-ft_layer-decay.yaml");
    ow_model *m = ct_arch("timm/vit_base_patch16_224");
    ow_groups *g = build(cfg, m);
    const expect e[] = {
        {"cls_token", 0.0005 * pow(0.65, 13), 0.0},
        {"patch_embed.proj.weight", 0.0005 * pow(0.65, 13), 0.05},
        {"blocks.0.attn.qkv.weight", 0.0005 * pow(0.65, 12), 0.05},
        {"norm.weight", 0.0005 * 0.65, 0.0}, /* joins the last block (MATCH_PREV_GROUP) */
        {"head.weight", 0.0005, 0.05},
    };
    check_params(g, e, OW__ARRAY_LEN(e));
    ck_assert_uint_eq(ow_groups_get_count(g), 28);
    ow_groups_free(g);
    ow_model_free(m);
    ow_cfg_free(cfg);
}
END_TEST

static Suite *make_recipes_suite(void)
{
    Suite *s = suite_create("recipes");
    TCase *tc = tcase_create("Core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mae_vit_base);
    tcase_add_test(tc, mae_vit_large);
    tcase_add_test(tc, beit_base);
    tcase_add_test(tc, simmim_swin_base);
    tcase_add_test(tc, convnext_stage_wise);
    tcase_add_test(tc, timm_vit_base);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(make_recipes_suite());
}
