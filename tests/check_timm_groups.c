/* check_timm_groups.c -- TimmOptimWrapperConstructor against timm: every golden timm__*
 * case mapped to one optwrap config (create_optimizer_v2's opt/lr/weight_decay and
 * grouping kwargs; param_groups_*'s kwargs with the AdamW the golden file names), the
 * layer maps timm computed, the timm error cases, the built-in timm architectures'
 * own facts, and what optwrap adds: warnings, fallback groups, effective lr. */
#include "constructors/ctor_internal.h"
#include "ctor_test.h"
#include "golden_groups.h"
#include "model/model_internal.h"

#include <string.h>

static char **cases;
static size_t n_cases;

/* ---- a golden case as an optwrap config ---------------------------------------------
 */

static void put_json(ow_strbuf *sb, const ow_cfg *v)
{
    ow__cfg_write_json(sb, v);
}

static void put_kw(ow_strbuf *sb, bool *first, const char *key, const ow_cfg *v)
{
    if (!v)
        return;
    ow__sb_printf(sb, "%s%s: ", *first ? "" : ", ", key);
    put_json(sb, v);
    *first = false;
}

/* create_optimizer_v2(model, opt, lr, weight_decay, filter_bias_and_bn, layer_decay...)
 * -> optimizer {type: timm.<opt>, lr, weight_decay} + paramwise_cfg of the grouping
 * kwargs. timm lower-cases opt, splits it on '_' and uses the last part (a leading
 * 'lookahead' would wrap it; no golden case does). param_groups_*(model, **kwargs) ->
 * the golden file's effective optimizer (torch AdamW) with the function's grouping. */
static char *golden_yaml(const ow_cfg *golden)
{
    const ow_cfg *ow = ow_cfg_find(golden, "optim_wrapper");
    const char *fn = strrchr(ow_cfg_find(ow, "function")->v.s, '.') + 1;
    const ow_cfg *kw = ow_cfg_find(ow, "kwargs");
    ow_strbuf sb;
    ow__sb_init(&sb);
    ow__sb_puts(&sb, "optim_wrapper:\n  optimizer: {type: ");
    bool first = false;
    if (!strcmp(fn, "create_optimizer_v2")) {
        const char *opt = ow_cfg_find(kw, "opt")->v.s, *last = strrchr(opt, '_');
        ow__sb_printf(&sb, "timm.%s", last ? last + 1 : opt);
        put_kw(&sb, &first, "lr", ow_cfg_find(kw, "lr"));
        put_kw(&sb, &first, "weight_decay", ow_cfg_find(kw, "weight_decay"));
        ow__sb_puts(&sb,
                    "}\n  constructor: TimmOptimWrapperConstructor\n  paramwise_cfg: {");
        first = true;
        static const char *const keys[] = {"filter_bias_and_bn", "layer_decay",
                                           "layer_decay_min_scale",
                                           "layer_decay_no_opt_scale"};
        for (size_t i = 0; i < OW__ARRAY_LEN(keys); i++)
            put_kw(&sb, &first, keys[i], ow_cfg_find(kw, keys[i]));
    } else {
        bool pgld = !strcmp(fn, "param_groups_layer_decay");
        ow__sb_printf(&sb, "AdamW");
        put_kw(&sb, &first, "lr", ow_cfg_find(golden, "effective_optimizer.kwargs.lr"));
        const ow_cfg *wd = ow_cfg_find(kw, "weight_decay");
        if (wd)
            put_kw(&sb, &first, "weight_decay", wd);
        else /* the functions' own defaults */
            ow__sb_puts(&sb, pgld ? ", weight_decay: 0.05" : ", weight_decay: 1e-05");
        ow__sb_puts(&sb,
                    "}\n  constructor: TimmOptimWrapperConstructor\n  paramwise_cfg: {");
        first = true;
        put_kw(&sb, &first, "weight_decay_exclude_1d",
               ow_cfg_find(kw, "weight_decay_exclude_1d"));
        put_kw(&sb, &first, "no_weight_decay", ow_cfg_find(kw, "no_weight_decay_list"));
        if (pgld && !ow_cfg_find(kw, "layer_decay"))
            ow__sb_printf(&sb, "%slayer_decay: 0.75", first ? "" : ", "), first = false;
        put_kw(&sb, &first, "layer_decay", ow_cfg_find(kw, "layer_decay"));
        put_kw(&sb, &first, "layer_decay_min_scale", ow_cfg_find(kw, "min_scale"));
        put_kw(&sb, &first, "layer_decay_no_opt_scale", ow_cfg_find(kw, "no_opt_scale"));
    }
    ow__sb_puts(&sb, "}\n");
    char *text = ow__sb_take(&sb);
    ck_assert_ptr_nonnull(text);
    return text;
}

static void set_fact(ow_model *m, const char *key, const ow_cfg *v)
{
    ck_assert_int_eq(ow__model_set_fact(m, key, ow__cfg_dup(v)), OW_OK);
}

/* What timm reads from the model object rather than the tree, from timm_model_meta:
 * group_matcher and pretrained_cfg.classifier always; no_weight_decay() only for
 * create_optimizer_v2 (param_groups_* take no_weight_decay_list alone). */
static ow_model *golden_timm_model(const ow_cfg *golden)
{
    ow_model *m = ow_golden_model(golden);
    const ow_cfg *meta = ow_cfg_find(golden, "timm_model_meta");
    const ow_cfg *gm = ow_cfg_find(meta, "group_matcher");
    if (gm && ow_cfg_get_type(gm) != OW_CFG_NULL)
        set_fact(m, "group_matcher", gm);
    const ow_cfg *nwd = ow_cfg_find(meta, "no_weight_decay");
    if (nwd && ow_cfg_get_type(nwd) != OW_CFG_NULL &&
        strstr(ow_cfg_find(golden, "constructor")->v.s, "create_optimizer_v2"))
        set_fact(m, "no_weight_decay", nwd);
    const ow_cfg *cls = ow_cfg_find(meta, "pretrained_cfg_classifier");
    if (cls && ow_cfg_get_type(cls) != OW_CFG_NULL) {
        ow_cfg *pcfg = ow__cfg_new(OW_CFG_MAP, NULL, 0, 0);
        ck_assert_int_eq(ow__cfg_map_set(pcfg, "classifier", ow__cfg_dup(cls)), OW_OK);
        ck_assert_int_eq(ow__model_set_fact(m, "pretrained_cfg", pcfg), OW_OK);
    }
    return m;
}

START_TEST(golden_timm_case)
{
    const char *name = cases[_i];
    ow_cfg *golden = ow_golden_load(name);
    char *yaml = golden_yaml(golden);
    ow_cfg *cfg = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_load_string(yaml, name, &cfg, &err), &err);
    ow_model *m = golden_timm_model(golden);
    ow_groups *g = NULL;
    ow_check_ok(ow_groups_build(cfg, m, &g, &err), &err);
    ow_golden_check_groups(name, g, golden);
    /* optwrap steps with lr * lr_scale (timm leaves that to its schedulers) */
    for (size_t gi = 0; gi < ow_groups_get_count(g); gi++) {
        double eff, scale = ow_cfg_find(ow_groups_get_options(g, gi), "lr_scale")
                                ? ct_num(g, gi, "lr_scale")
                                : 1.0;
        ow_check_ok(ow_groups_get_effective_lr(g, gi, &eff, &err), &err);
        ck_assert_double_eq(eff, ct_num(g, gi, "lr") * scale);
    }
    ow_groups_free(g);
    ow_model_free(m);
    ow_cfg_free(cfg);
    ow_free(yaml);
    ow_cfg_free(golden);
}
END_TEST

/* The layer ids timm computed (group_with_matcher / auto_group_layers). */
START_TEST(golden_layer_map)
{
    const char *name = cases[_i];
    ow_cfg *golden = ow_golden_load(name);
    const ow_cfg *map = ow_cfg_find(golden, "timm_model_meta.layer_map");
    if (map && ow_cfg_get_type(map) == OW_CFG_MAP) {
        ow_model *m = golden_timm_model(golden);
        const ow_cfg *classifier =
            ow_cfg_find(ow_model_get_facts(m, "pretrained_cfg"), "classifier");
        ow__timm_layers tl;
        ow_error err;
        ow_error_clear(&err);
        ow_check_ok(ow__timm_layers_build(m, ow_model_get_facts(m, "group_matcher"), "gm",
                                          classifier, &tl, &err),
                    &err);
        for (size_t i = 0; i < ow_cfg_get_size(map); i++) {
            long p = ow_model_find_param(m, ow_cfg_get_key(map, i));
            ck_assert_int_ge(p, 0);
            ck_assert_msg(tl.id[p] == ow_cfg_get_item(map, i)->v.i,
                          "%s: %s has id %lld, timm %lld", name, ow_cfg_get_key(map, i),
                          (long long)tl.id[p], (long long)ow_cfg_get_item(map, i)->v.i);
        }
        ow__timm_layers_free(&tl);
        ow_model_free(m);
    }
    ow_cfg_free(golden);
}
END_TEST

/* timm's errors, positioned in the config the case maps to. */
static const struct {
    const char *file;
    int code, line, column;
    const char *message;
} error_cases[] = {
    /* ValueError: Invalid learning rate: -0.001 */
    {"error__timm_vit_base_patch16_224__timm_negative_lr.json", OW_ERR_RANGE, 2, 37,
     "optim_wrapper.optimizer.lr: must be >= 0, got -0.001"},
    /* ValueError: Optimizer adamx not found in registry */
    {"error__timm_vit_base_patch16_224__timm_unknown_opt.json", OW_ERR_UNKNOWN_TYPE, 2,
     21, NULL},
};

START_TEST(golden_error_case)
{
    ow_cfg *golden = ow_golden_load(error_cases[_i].file);
    char *yaml = golden_yaml(golden);
    ow_model *m = golden_timm_model(golden);
    ow_error err;
    ct_build_fails(yaml, m, error_cases[_i].code, &err);
    ow_check_error(&err, error_cases[_i].code, "t.yaml", error_cases[_i].line,
                   error_cases[_i].column, error_cases[_i].message);
    if (!error_cases[_i].message)
        ck_assert_msg(
            !strncmp(err.message, "unknown optimizer type 'timm.adamx' (closest: ", 46) &&
                strstr(err.message, "'adamw'"),
            "got '%s'", err.message);
    ow_model_free(m);
    ow_free(yaml);
    ow_cfg_free(golden);
}
END_TEST

/* ---- the built-in timm architectures carry their own facts ------------------------- */

START_TEST(builtin_arch_facts_match_golden)
{
    static const char *const pairs[][2] = {
        {"timm/vit_base_patch16_224",
         "timm__timm_vit_base_patch16_224__adamw_ld0.65_fb1.json"},
        {"timm/vit_base_patch16_224",
         "timm__timm_vit_base_patch16_224__sgd_ldnone_fb1.json"},
        {"timm/resnet50", "timm__timm_resnet50__lamb_ld0.75_fb0.json"},
    };
    ow_cfg *golden = ow_golden_load(pairs[_i][1]);
    char *yaml = golden_yaml(golden);
    ow_model *m = ct_arch(pairs[_i][0]);
    ow_groups *g = ct_build(yaml, m);
    ow_golden_check_groups(pairs[_i][1], g, golden);
    ow_groups_free(g);
    ow_model_free(m);
    ow_free(yaml);
    ow_cfg_free(golden);
}
END_TEST

/* ---- beyond the golden data ----------------------------------------------------------
 */

#define TIMM_CFG(pw)                                                                     \
    "optim_wrapper:\n"                                                                   \
    "  optimizer: {type: timm.adamw, lr: 0.001, weight_decay: 0.05}\n"                   \
    "  constructor: TimmOptimWrapperConstructor\n"                                       \
    "  paramwise_cfg: " pw "\n"

/* A config group_matcher replaces the model's: here one id per block pair. */
START_TEST(config_group_matcher)
{
    ow_model *m = ct_arch("timm/vit_base_patch16_224");
    ow_groups *g =
        ct_build(TIMM_CFG("{layer_decay: 0.5, group_matcher: {stem: '^cls_token|pos_"
                          "embed|patch_embed', blocks: [['^blocks\\.(\\d+)\\.', "
                          "null]], pairs: null}}"),
                 m);
    /* ids: stem 0, blocks 1..12, norm/fc_norm/head unmatched 13 */
    size_t gi = ct_group_of(g, "blocks.0.attn.qkv.weight");
    ck_assert_double_eq(ct_num(g, gi, "lr_scale"), 0.5 * 0.5 * 0.5 * 0.5 * 0.5 * 0.5 *
                                                       0.5 * 0.5 * 0.5 * 0.5 * 0.5 * 0.5);
    gi = ct_group_of(g, "norm.weight");
    ck_assert_double_eq(ct_num(g, gi, "lr_scale"), 1.0);
    ck_assert_str_eq(
        ow_groups_get_param_reason(g, ow_model_find_param(m, "norm.weight")),
        "layer 13 of 14 (no group_matcher rule: top id), lr_scale 0.5**0; no weight "
        "decay: 1-D");
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

START_TEST(fallback_groups_come_last)
{
    ow_model *m = ct_arch("timm/vit_base_patch16_224");
    ow_groups *g = ct_build(TIMM_CFG("{fallback_list: ['head.*', 'pos_embed']}"), m);
    ck_assert_uint_eq(ow_groups_get_count(g), 4);
    static const double wd[] = {0.0, 0.05, 0.0, 0.05};
    for (size_t gi = 0; gi < 4; gi++) {
        ck_assert_double_eq(ct_num(g, gi, "weight_decay"), wd[gi]);
        const ow_cfg *fb = ow_cfg_find(ow_groups_get_options(g, gi), "use_fallback");
        ck_assert(gi < 2 ? fb == NULL : fb && fb->v.b);
    }
    ck_assert_uint_eq(ct_group_of(g, "pos_embed"),
                      2); /* no_weight_decay (model) + fallback */
    ck_assert_uint_eq(ct_group_of(g, "head.weight"), 3);
    ck_assert_uint_eq(ct_group_of(g, "head.bias"), 2);
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

START_TEST(warnings_for_unused_patterns_and_dropped_parameters)
{
    ow_model *m = ct_arch("timm/vit_base_patch16_224");
    ow_groups *g = ct_build(
        TIMM_CFG("{layer_decay: 0.65, layer_decay_no_opt_scale: 0.01,\n"
                 "                  no_weight_decay: [cls_tokn, 'blocks.*.norm?.*']}"),
        m);
    ck_assert_uint_eq(ow_groups_get_num_warnings(g), 2);
    ck_assert_str_eq(
        ow_groups_get_warning(g, 0),
        "t.yaml:4:64: optim_wrapper.paramwise_cfg.layer_decay_no_opt_scale: 28 "
        "parameters with lr_scale below 0.01 are left out of optimization; timm "
        "also sets their requires_grad=False on the model, optwrap leaves the model "
        "as it is");
    ck_assert_str_eq(ow_groups_get_warning(g, 1),
                     "t.yaml:5:37: optim_wrapper.paramwise_cfg.no_weight_decay: pattern "
                     "'cls_tokn' matches no parameter");
    long p = ow_model_find_param(m, "cls_token");
    ck_assert_str_eq(ow_groups_get_param_reason(g, (size_t)p),
                     "left out: lr_scale below layer_decay_no_opt_scale");
    ow_groups_free(g);
    ow_model_free(m);
}
END_TEST

static const struct {
    const char *pw;
    int code, line, column;
    const char *message;
} bad_cases[] = {
    {"{layer_decay: 0.5, group_matcher: {stem: '^(cls_token'}}", OW_ERR_VALUE, 4, 59,
     "optim_wrapper.paramwise_cfg.group_matcher.stem: regex '^(cls_token' does not "
     "compile: "
     "error 114 at offset 11: missing closing parenthesis"},
    {"{layer_decay: 0.5, group_matcher: {blocks: '^(\\w+)'}}", OW_ERR_VALUE, 4, 61,
     "optim_wrapper.paramwise_cfg.group_matcher.blocks: capture 1 of 'cls_token' is "
     "'cls_token', not a number (timm sorts layers by float(capture))"},
    {"{layer_decay: 0.5, group_matcher: {blocks: [['^blocks', 99999]]}}", OW_ERR_TYPE, 4,
     74,
     "optim_wrapper.paramwise_cfg.group_matcher.blocks: a suffix is null or a list of "
     "numbers "
     "([99999] joins the previous group)"},
    {"{filter_bias_and_bn: true, weight_decay_exclude_1d: false}", OW_ERR_VALUE, 4, 70,
     "optim_wrapper.paramwise_cfg.weight_decay_exclude_1d: contradicts "
     "filter_bias_and_bn (the "
     "same switch; give one of the two)"},
    {"{no_weight_decay: [1]}", OW_ERR_TYPE, 4, 37,
     "optim_wrapper.paramwise_cfg.no_weight_decay.0: expected a pattern string, got int"},
};

START_TEST(bad_inputs)
{
    ow_model *m = ct_arch("timm/vit_base_patch16_224");
    char yaml[1024];
    snprintf(yaml, sizeof yaml, TIMM_CFG("%s"), bad_cases[_i].pw);
    ow_error err;
    ct_build_fails(yaml, m, bad_cases[_i].code, &err);
    ow_check_error(&err, bad_cases[_i].code, "t.yaml", bad_cases[_i].line,
                   bad_cases[_i].column, bad_cases[_i].message);
    ow_model_free(m);
}
END_TEST

START_TEST(timm_survives_every_allocation_failure)
{
    static const char *const pws[] = {
        "{layer_decay: 0.65, no_weight_decay: ['blocks.1?.*']}",
        "{fallback_list: ['head.*']}"};
    ow_model *m = ct_arch("timm/vit_base_patch16_224");
    for (size_t i = 0; i < OW__ARRAY_LEN(pws); i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, TIMM_CFG("%s"), pws[i]);
        ow_cfg *cfg = ct_config(yaml);
        ow_groups *g = ct_build_oom(cfg, m);
        ck_assert_uint_gt(ow_groups_get_count(g), 1);
        ow_groups_free(g);
        ow_cfg_free(cfg);
    }
    ow_model_free(m);
}
END_TEST

static Suite *make_timm_groups_suite(void)
{
    Suite *s = suite_create("timm_groups");
    cases = ow_golden_list("timm__", &n_cases);
    TCase *tg = tcase_create("Golden");
    tcase_set_timeout(tg, 120);
    tcase_add_loop_test(tg, golden_timm_case, 0, (int)n_cases);
    tcase_add_loop_test(tg, golden_layer_map, 0, (int)n_cases);
    tcase_add_loop_test(tg, golden_error_case, 0, OW__ARRAY_LEN(error_cases));
    tcase_add_loop_test(tg, builtin_arch_facts_match_golden, 0, 3);
    suite_add_tcase(s, tg);
    TCase *tc = tcase_create("Core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, config_group_matcher);
    tcase_add_test(tc, fallback_groups_come_last);
    tcase_add_test(tc, warnings_for_unused_patterns_and_dropped_parameters);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("Errors");
    tcase_add_loop_test(te, bad_inputs, 0, OW__ARRAY_LEN(bad_cases));
    suite_add_tcase(s, te);
    TCase *tl = tcase_create("Limits");
    tcase_set_timeout(tl, 120);
    tcase_add_test(tl, timm_survives_every_allocation_failure);
    suite_add_tcase(s, tl);
    return s;
}

int main(void)
{
    int rc = ow_test_run(make_timm_groups_suite());
    ow_golden_free_list(cases);
    return rc;
}
