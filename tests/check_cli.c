/* check_cli.c -- the optwrap command end to end: its table and --help, every config in
 * configs/ checked, groups as JSON equal to the reference's for a golden case, inline
 * optim_wrapper flow, --cfg-options, exit codes and error lines. */
#include "golden_groups.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const commands[] = {"bench",  "check",    "groups",
                                       "list",   "model",    "print-config",
                                       "replay", "schedule", "train"};

START_TEST(help_lists_every_command)
{
    ow_cli_result r = ow_test_cli("--help");
    ck_assert_int_eq(r.status, 0);
    for (size_t i = 0; i < OW__ARRAY_LEN(commands); i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\n  %s ", commands[i]);
        ck_assert_msg(strstr(r.out, needle), "--help lacks '%s'", commands[i]);
        char args[64], usage[64];
        snprintf(args, sizeof args, "%s --help", commands[i]);
        snprintf(usage, sizeof usage, "usage: optwrap %s", commands[i]);
        ow_cli_result h = ow_test_cli(args);
        ck_assert_int_eq(h.status, 0);
        ck_assert_msg(!strncmp(h.out, usage, strlen(usage)), "%s: %s", args, h.out);
        ow_test_cli_free(&h);
    }
    ow_test_cli_free(&r);
    r = ow_test_cli("frobnicate");
    ck_assert_int_eq(r.status, 2);
    ck_assert(strstr(r.err, "optwrap: unknown command 'frobnicate'"));
    ow_test_cli_free(&r);
    r = ow_test_cli("groups configs/resnet50_8xb32_in1k.yaml --model");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err,
                     "optwrap groups: option '--model' needs a value\nusage: optwrap "
                     "groups CONFIG (--model MODEL.yaml | --arch NAME) [--format "
                     "table|json|csv] [--csv] [--explain] [--cfg-options K=V ...]\n");
    ow_test_cli_free(&r);
}
END_TEST

/* Every recipe users may copy is valid, and builds groups for its model. */
static const struct {
    const char *config, *model;
    size_t groups;
} recipes[] = {
    {"configs/resnet50_8xb32_in1k.yaml", "models/mmpretrain_resnet50.yaml", 161},
    {"configs/vit-base-p16_adamw_in1k.yaml", "models/mmpretrain_vit-base-p16.yaml", 152},
};

START_TEST(recipes_check_and_build)
{
    char args[1024], want[256];
    snprintf(args, sizeof args, "check %s --model %s", recipes[_i].config,
             recipes[_i].model);
    ow_cli_result r = ow_test_cli(args);
    snprintf(want, sizeof want, "%s: OK (%zu param groups)\n", recipes[_i].config,
             recipes[_i].groups);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.out, want);
    ow_test_cli_free(&r);
}
END_TEST

/* Every recipe in configs/ (not the bases) passes `optwrap check`. */
START_TEST(every_recipe_checks)
{
    DIR *d = opendir(OW_TEST_CONFIGS);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml"))
            continue;
        char args[512], want[512];
        snprintf(args, sizeof args, "check configs/%s", e->d_name);
        snprintf(want, sizeof want, "configs/%s: OK\n", e->d_name);
        ow_cli_result r = ow_test_cli(args);
        ck_assert_msg(r.status == 0, "%s: %s", args, r.err);
        ck_assert_str_eq(r.out, want);
        ow_test_cli_free(&r);
        n++;
    }
    closedir(d);
    ck_assert_uint_ge(n, 2);
}
END_TEST

START_TEST(recipe_groups_values)
{
    /* ResNet-50 recipe: biases and BN get weight_decay 0.0, convs keep 1e-4 */
    ow_cli_result r = ow_test_cli("groups configs/resnet50_8xb32_in1k.yaml --model "
                                  "models/mmpretrain_resnet50.yaml --format json");
    ck_assert_msg(r.status == 0, "%s", r.err);
    ow_cfg *j = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow__cfg_parse(r.out, strlen(r.out), "<stdout>", &j, &err), &err);
    const ow_cfg *g0 = ow_cfg_find(j, "groups.0"), *g1 = ow_cfg_find(j, "groups.1");
    ck_assert_str_eq(ow_cfg_find(g0, "params.0")->v.s, "backbone.conv1.weight");
    ck_assert_double_eq(ow_cfg_find(g0, "weight_decay")->v.d, 0.0001);
    ck_assert_str_eq(ow_cfg_find(g1, "params.0")->v.s, "backbone.bn1.weight");
    ck_assert_double_eq(ow_cfg_find(g1, "weight_decay")->v.d, 0.0);
    ck_assert_double_eq(ow_cfg_find(g1, "lr")->v.d, 0.1);
    ow_cfg_free(j);
    ow_test_cli_free(&r);
    /* the table ends with the summary line */
    r = ow_test_cli("groups configs/resnet50_8xb32_in1k.yaml --model "
                    "models/mmpretrain_resnet50.yaml");
    ck_assert_int_eq(r.status, 0);
    ck_assert(strstr(r.out, "\n161 groups, 2 distinct settings; 161 parameters, 25557032 "
                            "elements\n"));
    /* the keys every group shares once, then only the column that varies, rounded */
    ck_assert(
        !strncmp(r.out,
                 "every group: lr 0.1, momentum 0.9, dampening 0, nesterov false, "
                 "maximize false, foreach null, differentiable false\n"
                 "group  params  weight_decay  why\n"
                 "0           1  0.0001        optimizer defaults\n"
                 "1           1  0             norm_decay_mult\n",
                 strlen("every group: lr 0.1, momentum 0.9, dampening 0, nesterov "
                        "false, maximize false, foreach null, differentiable false\n"
                        "group  params  weight_decay  why\n"
                        "0           1  0.0001        optimizer defaults\n"
                        "1           1  0             norm_decay_mult\n")));
    ow_test_cli_free(&r);
    /* layer decay: 152 one-parameter groups, 28 distinct settings; numbers rounded for
     * reading in the table, exact in --csv */
    r = ow_test_cli(
        "groups configs/vit-base-p16_mae-ft-100e_in1k.yaml --arch vit-base-p16");
    ck_assert_int_eq(r.status, 0);
    ck_assert(
        !strncmp(r.out,
                 "every group: betas [0.9, 0.999], eps 1e-08, amsgrad false, foreach "
                 "null, maximize false, capturable false\n"
                 "group  params  lr           effective_lr  weight_decay  lr_scale    "
                 "layer_id  param_name                                why\n"
                 "0           1  7.39441e-06  7.39441e-06   0             0.00369721  "
                 "0         backbone.cls_token                        layer 0 of 14 "
                 "(VisionTransformer get_layer_depth), lr_scale 0.65**13; weight "
                 "decay: custom key '.cls_token'\n",
                 300));
    ck_assert(strstr(r.out,
                     "\n151         1  0.002        0.002         0             1 "
                     "          13        head.layers.head.bias                     "
                     "layer 13 of 14 (VisionTransformer get_layer_depth), lr_scale "
                     "0.65**0; weight decay: custom key '.bias'\n"
                     "152 groups, 28 distinct settings; 152 parameters, 86567656 "
                     "elements\n"));
    ow_test_cli_free(&r);
    r = ow_test_cli(
        "groups configs/vit-base-p16_mae-ft-100e_in1k.yaml --arch vit-base-p16 --csv");
    ck_assert_int_eq(r.status, 0);
    ck_assert(!strncmp(
        r.out,
        "group,params,lr,effective_lr,weight_decay,lr_scale,layer_id,param_name,betas,"
        "eps,"
        "amsgrad,foreach,maximize,capturable,why\n"
        "0,1,7.39441178203743e-06,7.39441178203743e-06,0.0,0.003697205891018715,0,"
        "backbone.cls_token,\"[0.9, 0.999]\",1e-08,false,null,false,false,\"layer 0 of "
        "14 "
        "(VisionTransformer get_layer_depth), lr_scale 0.65**13; weight decay: custom "
        "key "
        "'.cls_token'\"\n",
        300));
    ow_test_cli_free(&r);
}
END_TEST

/* The golden file's optim_wrapper given inline, as written there, gives its groups. */
START_TEST(inline_optim_wrapper_json_matches_golden)
{
    const char *name = "mmengine__torch_tied-tiny__sgd_mix.json";
    ow_cfg *golden = ow_golden_load(name);
    char *ow_json = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_save_json(ow_cfg_find(golden, "optim_wrapper"), &ow_json, &err),
                &err);
    char args[4096];
    snprintf(args, sizeof args,
             "groups '%s' --model %s/models/torch_tied-tiny.yaml --format json", ow_json,
             OW_TEST_GOLDEN);
    ow_cli_result r = ow_test_cli(args);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ow_cfg *got = NULL;
    ow_check_ok(ow__cfg_parse(r.out, strlen(r.out), "<stdout>", &got, &err), &err);
    const ow_cfg *want = ow_cfg_find(golden, "groups_effective");
    const ow_cfg *groups = ow_cfg_find(got, "groups");
    ck_assert_uint_eq(ow_cfg_get_size(groups), ow_cfg_get_size(want));
    for (size_t i = 0; i < ow_cfg_get_size(want); i++) {
        const ow_cfg *w = ow_cfg_get_item(want, i), *g = ow_cfg_get_item(groups, i);
        size_t k_got = 0;
        for (size_t k = 0; k < ow_cfg_get_size(w); k++) {
            const char *key = ow_cfg_get_key(w, k);
            ck_assert_str_eq(ow_cfg_get_key(g, k_got), key);
            ck_assert_msg(ow__cfg_equal(ow_cfg_get_item(g, k_got), ow_cfg_get_item(w, k)),
                          "group %zu key %s differs", i, key);
            k_got++;
        }
        ck_assert_uint_eq(k_got, ow_cfg_get_size(g));
    }
    ow_cfg_free(got);
    ow_free(ow_json);
    ow_cfg_free(golden);
    ow_test_cli_free(&r);
}
END_TEST

START_TEST(cfg_options_override)
{
    ow_cli_result r =
        ow_test_cli("groups configs/resnet50_8xb32_in1k.yaml --model "
                    "models/mmpretrain_resnet50.yaml --format json --cfg-options "
                    "optim_wrapper.optimizer.lr=0.2 "
                    "'optim_wrapper.paramwise_cfg.custom_keys.head={lr_mult: 10}'");
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert(strstr(r.out, "{\"params\": [\"backbone.conv1.weight\"], \"lr\": 0.2, "));
    ck_assert(strstr(r.out, "{\"params\": [\"head.fc.weight\"], \"lr\": 2.0, "
                            "\"weight_decay\": 0.0001, \"lr_mult\": 10, "));
    ow_test_cli_free(&r);
    r = ow_test_cli("print-config configs/resnet50_8xb32_in1k.yaml --format json "
                    "--cfg-options optim_wrapper.optimizer.lr=0.2");
    ck_assert_int_eq(r.status, 0);
    ck_assert(strstr(r.out,
                     "\"optimizer\": {\"type\": \"SGD\", \"lr\": 0.2, \"momentum\": 0.9, "
                     "\"weight_decay\": 0.0001}"));
    ck_assert(strstr(r.out, "\"default_scope\": \"mmpretrain\""));
    ow_test_cli_free(&r);
}
END_TEST

START_TEST(errors_are_positioned_with_exit_1)
{
    ow_cli_result r =
        ow_test_cli("check '{optimizer: {type: SGD, lr: 0.1}, paramwise_cfg: "
                    "{norm_decay_mul: 0}}'");
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err,
                     "optwrap: <inline>:1:67: optim_wrapper.paramwise_cfg: unknown key "
                     "'norm_decay_mul' (did you mean 'norm_decay_mult'?)\n");
    ow_test_cli_free(&r);
    r = ow_test_cli("check configs/resnet50_8xb32_in1k.yaml --cfg-options "
                    "optim_wrapper.optimizer.lr=-1");
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err,
                     "optwrap: <cfg-options>:1:28: optim_wrapper.optimizer.lr: must be "
                     ">= 0, got -1\n");
    ow_test_cli_free(&r);
    /* a layer_depth section is checked without a model too */
    r = ow_test_cli(
        "check '{optimizer: {type: AdamW, lr: 0.001, weight_decay: 0.05}, "
        "constructor: LearningRateDecayOptimWrapperConstructor, paramwise_cfg: "
        "{layer_decay_rate: 0.65, layer_depth: {type: RegexLayerDeph}}}'");
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "optwrap: <inline>:1:174: unknown layer_depth type "
                            "'RegexLayerDeph' (closest: 'mmpretrain.RegexLayerDepth')\n");
    ow_test_cli_free(&r);
    r = ow_test_cli("model no/such/model.yaml");
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "optwrap: no/such/model.yaml: cannot open: No such file or "
                            "directory\n");
    ow_test_cli_free(&r);
}
END_TEST

START_TEST(list_and_model)
{
    ow_cli_result r = ow_test_cli("list optimizer --keys");
    ck_assert_int_eq(r.status, 0);
    ck_assert(strstr(r.out, "mmengine.AdamW"));
    ck_assert(strstr(r.out, "weight_decay"));
    ck_assert_ptr_null(strstr(r.out, "DefaultOptimWrapperConstructor"));
    ow_test_cli_free(&r);
    r = ow_test_cli("list constructor");
    ck_assert_int_eq(r.status, 0);
    ck_assert(strstr(r.out, "mmengine.DefaultOptimWrapperConstructor"));
    ow_test_cli_free(&r);
    r = ow_test_cli("list nonsense");
    ck_assert_int_eq(r.status, 2);
    ck_assert(strstr(r.err, "optwrap list: no kind or entry named 'nonsense'"));
    ow_test_cli_free(&r);
    /* one entry by name, a composite among them; refused names say why */
    r = ow_test_cli("list timm.lookahead_adamw --keys");
    ck_assert_int_eq(r.status, 0);
    ck_assert(strstr(r.out, "timm Lookahead (alpha 0.5, k 6) over 'adamw'"));
    ck_assert(strstr(r.out, "      lookahead_k            int      default 6\n"));
    ow_test_cli_free(&r);
    r = ow_test_cli("list optimizer");
    ck_assert(strstr(r.out, "  timm.fusednovograd                           refused: "
                            "APEX FusedNovoGrad (GPU-only) differs"));
    ck_assert(strstr(r.out, "timm 'fusedadamw' (APEX FusedAdam, GPU-only there)"));
    ow_test_cli_free(&r);
    r = ow_test_cli("list timm.fusednovograd");
    ck_assert_int_eq(r.status, 2);
    ck_assert(strstr(r.err, "optwrap list: 'timm.fusednovograd' is refused: APEX"));
    ow_test_cli_free(&r);
    r = ow_test_cli("model models/mmpretrain_resnet50.yaml");
    ck_assert_int_eq(r.status, 0);
    const char *head =
        "model mmpretrain_resnet50: 172 modules, 161 parameters (161 tensors), "
        "25557032 elements\n(root)  (ImageClassifier)\n";
    ck_assert_msg(!strncmp(r.out, head, strlen(head)), "%.200s", r.out);
    ow_test_cli_free(&r);
}
END_TEST

/* A plugin named by custom_imports registers an optimizer and a constructor that the
 * same config then uses: the whole path from YAML to dlopen to groups. */
START_TEST(plugin_from_custom_imports)
{
    char path[] = "/tmp/ow_cli_pluginXXXXXX.yaml";
    int fd = mkstemps(path, 5);
    ck_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f,
            "custom_imports:\n"
            "  imports: ['%s/libowtestplugin.so']\n"
            "  allow_failed_imports: false\n"
            "optim_wrapper:\n"
            "  optimizer: {type: owtest.PluginSGD, lr: 0.5}\n"
            "  constructor: PluginConstructor\n",
            OW_TEST_PLUGINS);
    fclose(f);
    char args[1024];
    snprintf(args, sizeof args, "groups %s --model models/mmpretrain_resnet50.yaml",
             path);
    ow_cli_result r = ow_test_cli(args);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.out, "group  params  lr   momentum  why\n"
                            "0         161  0.5  0         optimizer defaults\n"
                            "1 groups, 1 distinct settings; 161 parameters, 25557032 "
                            "elements\n");
    ow_test_cli_free(&r);
    /* without the plugin the names are unknown */
    snprintf(args, sizeof args, "check '{optimizer: {type: owtest.PluginSGD, lr: 0.5}}'");
    r = ow_test_cli(args);
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "optwrap: <inline>:1:20: unknown optimizer type "
                            "'owtest.PluginSGD'\n");
    ow_test_cli_free(&r);
    unlink(path);
}
END_TEST

/* replay reads the kind of a golden file: optimizer trajectories and schedules alike. */
START_TEST(replay_golden_files)
{
    char args[1024];
    snprintf(args, sizeof args, "replay --check %s/sched/mmengine/constant.json",
             OW_TEST_GOLDEN);
    ow_cli_result r = ow_test_cli(args);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.out, "max_rel_err=0\n");
    ow_test_cli_free(&r);
    snprintf(args, sizeof args, "replay --check --quiet %s/optim/torch/AdamW__base.json",
             OW_TEST_GOLDEN);
    r = ow_test_cli(args);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.out, "max_abs_err=0 max_rel_err=0 max_ulp=0\n");
    ow_test_cli_free(&r);
    /* a schedule whose recorded lr is changed no longer replays */
    char src[1024];
    snprintf(src, sizeof src, "%s/sched/mmengine/constant.json", OW_TEST_GOLDEN);
    char *text = ow_test_slurp(src);
    char *hit = strstr(text, "\"lr\":[[0.025");
    ck_assert_ptr_nonnull(hit);
    hit[10] = '6'; /* 0.025 -> 0.065 */
    char path[] = "/tmp/ow_cli_replayXXXXXX.json";
    int fd = mkstemps(path, 5);
    ck_assert(fd >= 0);
    ck_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    ow_free(text);
    snprintf(args, sizeof args, "replay --check %s", path);
    r = ow_test_cli(args);
    ck_assert_int_eq(r.status, 1);
    ck_assert(strstr(r.err, "beyond tolerance"));
    ow_test_cli_free(&r);
    unlink(path);
}
END_TEST

static Suite *make_cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("Commands");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, help_lists_every_command);
    tcase_add_loop_test(tc, recipes_check_and_build, 0, OW__ARRAY_LEN(recipes));
    tcase_add_test(tc, every_recipe_checks);
    tcase_add_test(tc, recipe_groups_values);
    tcase_add_test(tc, inline_optim_wrapper_json_matches_golden);
    tcase_add_test(tc, cfg_options_override);
    tcase_add_test(tc, errors_are_positioned_with_exit_1);
    tcase_add_test(tc, list_and_model);
    tcase_add_test(tc, plugin_from_custom_imports);
    tcase_add_test(tc, replay_golden_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(make_cli_suite());
}
