/* check_arch.c -- the built-in architectures: every golden model tree rebuilt module by
 * module and byte for byte, timm's model-level facts against the reference's
 * timm_model_meta, the size families against the references' parameter counts, lookup
 * errors, allocation failures, and `optwrap model/groups --arch` end to end. */
#include "testlib.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------------- */

static ow_model *new_arch(const char *arch)
{
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    ow_check_ok(ow_model_new_arch(arch, &m, &err), &err);
    return m;
}

/* The arch a golden file was made from: mmpretrain_X.yaml is X, timm_X.yaml timm/X;
 * false for the hand-made torch_* models, which are no architecture. */
static bool arch_of_file(const char *file, char *arch, size_t n)
{
    size_t len = strlen(file);
    if (len < 5 || strcmp(file + len - 5, ".yaml") != 0)
        return false;
    if (strncmp(file, "mmpretrain_", 11) == 0)
        snprintf(arch, n, "%.*s", (int)(len - 16), file + 11);
    else if (strncmp(file, "timm_", 5) == 0)
        snprintf(arch, n, "timm/%.*s", (int)(len - 10), file + 5);
    else
        return false;
    return true;
}

static void shape_text(char *buf, size_t n, const ow_param_view *v)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < v->ndim && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "",
                              (long long)v->shape[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

/* Module by module, with a message naming the first difference. */
static void assert_same_tree(const char *what, const ow_model *got, const ow_model *want)
{
    size_t nm = ow_model_get_num_modules(want), k = 0;
    for (size_t i = 0; i < nm && i < ow_model_get_num_modules(got); i++) {
        const ow_module_info *g = ow_model_get_module(got, i);
        const ow_module_info *w = ow_model_get_module(want, i);
        ck_assert_msg(!strcmp(g->name, w->name), "%s: module %zu is '%s', want '%s'",
                      what, i, g->name, w->name);
        ck_assert_msg(!strcmp(g->type, w->type), "%s: module '%s' has type %s, want %s",
                      what, w->name, g->type, w->type);
        ck_assert_msg(g->kind == w->kind && g->in_channels == w->in_channels &&
                          g->out_channels == w->out_channels && g->groups == w->groups,
                      "%s: module '%s' has kind %d conv %lld/%lld/%lld, want %d "
                      "%lld/%lld/%lld",
                      what, w->name, g->kind, (long long)g->in_channels,
                      (long long)g->out_channels, (long long)g->groups, w->kind,
                      (long long)w->in_channels, (long long)w->out_channels,
                      (long long)w->groups);
    }
    ck_assert_msg(ow_model_get_num_modules(got) == nm, "%s: %zu modules, want %zu", what,
                  ow_model_get_num_modules(got), nm);
    for (; k < ow_model_get_num_params(want) && k < ow_model_get_num_params(got); k++) {
        ow_param_view g, w;
        char gs[128], ws[128];
        ow_model_get_param(got, k, &g);
        ow_model_get_param(want, k, &w);
        shape_text(gs, sizeof gs, &g);
        shape_text(ws, sizeof ws, &w);
        ck_assert_msg(!strcmp(g.full_name, w.full_name),
                      "%s: param %zu is '%s', want '%s'", what, k, g.full_name,
                      w.full_name);
        ck_assert_msg(!strcmp(gs, ws), "%s: param '%s' has shape %s, want %s", what,
                      w.full_name, gs, ws);
        ck_assert_msg(g.requires_grad == w.requires_grad && g.is_shared == w.is_shared,
                      "%s: param '%s' has requires_grad %d shared %d, want %d %d", what,
                      w.full_name, g.requires_grad, g.is_shared, w.requires_grad,
                      w.is_shared);
    }
    ck_assert_msg(ow_model_get_num_params(got) == ow_model_get_num_params(want),
                  "%s: %zu params, want %zu", what, ow_model_get_num_params(got),
                  ow_model_get_num_params(want));
}

/* text without the lines of top-level facts (between `name:` and `modules:`), which
 * the golden files do not carry; returned in place */
static char *drop_fact_lines(char *text)
{
    char *name = strstr(text, "\nname: ");
    char *facts = name ? strchr(name + 1, '\n') : NULL;
    char *modules = facts ? strstr(facts, "\nmodules:") : NULL;
    if (modules)
        memmove(facts, modules, strlen(modules) + 1);
    return text;
}

static void assert_same_text(const char *what, const char *got, const char *want)
{
    int line = 1;
    const char *g = got, *w = want;
    while (*g && *g == *w) {
        line += *g == '\n';
        g++;
        w++;
    }
    ck_assert_msg(*g == *w, "%s: line %d differs:\n  got  '%.60s'\n  want '%.60s'", what,
                  line, g, w);
}

/* ---- golden trees ------------------------------------------------------------------ */

/* Every golden model file of a reference architecture (the first line of each names
 * the build call) is what ow_model_new_arch gives, structurally and as saved text. */
START_TEST(golden_models_are_rebuilt_exactly)
{
    char dir[1024];
    ow_test_path(dir, sizeof dir, OW_TEST_GOLDEN, "models");
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int checked = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char arch[256], path[1024 + 1 + 256];
        if (!arch_of_file(e->d_name, arch, sizeof arch))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ow_error err;
        ow_error_clear(&err);
        ow_model *want = NULL;
        ow_check_ok(ow_model_load(path, &want, &err), &err);
        ow_model *got = new_arch(arch);
        assert_same_tree(arch, got, want);
        ck_assert_str_eq(ow_model_get_name(got), ow_model_get_name(want));

        char *golden = ow_test_slurp(path), *text = NULL;
        ck_assert_msg(golden[0] == '#', "%s: no build-call comment line", e->d_name);
        ow_check_ok(ow_model_save(got, &text, &err), &err);
        assert_same_text(arch, drop_fact_lines(text), strchr(golden, '\n') + 1);
        ow_free(text);
        ow_free(golden);
        ow_model_free(got);
        ow_model_free(want);
        checked++;
    }
    closedir(d);
    ck_assert_int_ge(checked, 6);
}
END_TEST

/* timm's facts are what the reference recorded as timm_model_meta (a missing method,
 * null there, is no fact here); the other sizes of a family carry the same facts. */
static const struct {
    const char *file, *arch;
} meta_cases[] = {
    {"timm_vit_base_patch16_224.yaml", "timm/vit_base_patch16_224"},
    {"timm_vit_base_patch16_224.yaml", "timm/vit_tiny_patch16_224"},
    {"timm_vit_base_patch16_224.yaml", "timm/vit_large_patch16_224"},
    {"timm_resnet50.yaml", "timm/resnet50"},
    {"timm_resnet50.yaml", "timm/resnet18"},
    {"timm_resnet50.yaml", "timm/resnet152"},
};

START_TEST(timm_facts_match_the_reference)
{
    char path[1024];
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *meta = NULL;
    ow_test_path(path, sizeof path, OW_TEST_GOLDEN, "arch/timm_model_meta.json");
    ow_check_ok(ow_cfg_load(path, &meta, &err), &err);
    /* the file names hold dots, so no dotted-path lookup */
    const ow_cfg *want =
        ow__cfg_map_get(ow_cfg_find(meta, "models"), meta_cases[_i].file);
    ck_assert_ptr_nonnull(want);
    ow_model *m = new_arch(meta_cases[_i].arch);
    static const char *const keys[] = {"no_weight_decay", "group_matcher"};
    for (size_t k = 0; k < OW__ARRAY_LEN(keys); k++) {
        const ow_cfg *w = ow_cfg_find(want, keys[k]);
        const ow_cfg *g = ow_model_get_facts(m, keys[k]);
        if (ow_cfg_get_type(w) == OW_CFG_NULL)
            ck_assert_msg(g == NULL, "%s: unexpected %s", meta_cases[_i].arch, keys[k]);
        else
            ck_assert_msg(g && ow__cfg_equal(g, w), "%s: %s differs", meta_cases[_i].arch,
                          keys[k]);
    }
    /* without a group_matcher timm would read pretrained_cfg's classifier instead */
    ck_assert_uint_eq(
        ow_cfg_get_size(ow_model_get_facts(m, NULL)),
        ow_cfg_get_type(ow_cfg_find(want, "no_weight_decay")) == OW_CFG_NULL ? 1 : 2);
    ow_model_free(m);
    ow_cfg_free(meta);
}
END_TEST

/* The families without a golden file here: their group_matcher as timm's source
 * writes it (regexes verbatim, (99999,) as [99999]), and a round trip of the facts
 * through the model format. */
static const struct {
    const char *arch, *group_matcher;
} matcher_cases[] = {
    {"timm/convnext_tiny",
     "{stem: '^stem', blocks: [['^stages\\.(\\d+)\\.downsample', [0]], "
     "['^stages\\.(\\d+)\\.blocks\\.(\\d+)', null], ['^norm_pre', [99999]]]}"},
    {"timm/convnext_xlarge",
     "{stem: '^stem', blocks: [['^stages\\.(\\d+)\\.downsample', [0]], "
     "['^stages\\.(\\d+)\\.blocks\\.(\\d+)', null], ['^norm_pre', [99999]]]}"},
    {"timm/efficientnet_b0",
     "{stem: '^conv_stem|bn1', blocks: "
     "[['^blocks\\.(\\d+)\\.(\\d+)', null], ['conv_head|bn2', [99999]]]}"},
    {"timm/efficientnet_b4",
     "{stem: '^conv_stem|bn1', blocks: "
     "[['^blocks\\.(\\d+)\\.(\\d+)', null], ['conv_head|bn2', [99999]]]}"},
};

START_TEST(timm_group_matchers_round_trip)
{
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *want = NULL;
    ow_check_ok(ow_cfg_load_string(matcher_cases[_i].group_matcher, NULL, &want, &err),
                &err);
    ow_model *m = new_arch(matcher_cases[_i].arch), *back = NULL;
    ck_assert(ow__cfg_equal(ow_model_get_facts(m, "group_matcher"), want));
    ck_assert_ptr_null(ow_model_get_facts(m, "no_weight_decay")); /* no such method */
    char *text = NULL;
    ow_check_ok(ow_model_save(m, &text, &err), &err);
    ow_check_ok(ow_model_load_string(text, "saved.yaml", &back, &err), &err);
    ck_assert(ow__cfg_equal(ow_model_get_facts(back, NULL), ow_model_get_facts(m, NULL)));
    assert_same_tree(matcher_cases[_i].arch, back, m);
    ow_free(text);
    ow_model_free(back);
    ow_model_free(m);
    ow_cfg_free(want);
}
END_TEST

/* ---- size families ----------------------------------------------------------------- */

/* Module and parameter counts (the golden README's table where it lists the model) and
 * element counts: the references' own parameter counts (timm's model cards,
 * torchvision's and mmpretrain's model zoo tables), 1000-class heads included. */
static const struct {
    const char *arch;
    size_t modules, params;
    int64_t numel;
} sizes[] = {
    {"vit-small-p16", 166, 104, 48772840}, /* mmpretrain's 's': 768 wide, 8 deep */
    {"vit-base-p16", 242, 152, 86567656},
    {"vit-base-p32", 242, 152, 88224232},
    {"vit-large-p16", 470, 296, 304326632},
    {"vit-large-p32", 470, 296, 306535400},
    {"vit-huge-p14", 622, 392, 632045800},
    {"deit-tiny", 242, 152, 5717416},
    {"deit-small", 242, 152, 22050664},
    {"deit-base", 242, 152, 86567656},
    {"beit-base-p16", 240, 199, 86530984},
    {"beit-large-p16", 468, 391, 304430568},
    {"resnet18", 81, 62, 11689512},
    {"resnet34", 137, 110, 21797672},
    {"resnet50", 172, 161, 25557032},
    {"resnet50-frozen1", 172, 161, 25557032},
    {"resnet101", 325, 314, 44549160},
    {"resnet152", 478, 467, 60192808},
    {"convnext-tiny", 151, 182, 28589128},
    {"convnext-small", 277, 344, 50223688},
    {"convnext-base", 277, 344, 88591464},
    {"convnext-large", 277, 344, 197767336},
    {"convnext-xlarge", 277, 344, 350196968},
    {"mobilenet-v2", 240, 158, 3504872},
    {"swin-tiny", 290, 173, 28288354},
    {"swin-small", 542, 329, 49606258},
    {"swin-base", 542, 329, 87768224},
    {"swin-large", 542, 329, 196532476},
    {"timm/vit_tiny_patch16_224", 276, 152, 5717416},
    {"timm/vit_small_patch16_224", 276, 152, 22050664},
    {"timm/vit_base_patch16_224", 276, 152, 86567656},
    {"timm/vit_base_patch32_224", 276, 152, 88224232},
    {"timm/vit_large_patch16_224", 540, 296, 304326632},
    {"timm/resnet18", 94, 62, 11689512},
    {"timm/resnet34", 166, 110, 21797672},
    {"timm/resnet50", 217, 161, 25557032},
    {"timm/resnet101", 421, 314, 44549160},
    {"timm/resnet152", 625, 467, 60192808},
    {"timm/convnext_tiny", 249, 182, 28589128},
    {"timm/convnext_small", 465, 344, 50223688},
    {"timm/convnext_base", 465, 344, 88591464},
    {"timm/convnext_large", 465, 344, 197767336},
    {"timm/convnext_xlarge", 465, 344, 350196968},
    {"timm/efficientnet_b0", 337, 213, 5288548},
    {"timm/efficientnet_b1", 473, 301, 7794184},
    {"timm/efficientnet_b2", 473, 301, 9109994},
    {"timm/efficientnet_b3", 533, 340, 12233232},
    {"timm/efficientnet_b4", 653, 418, 19341616},
};

START_TEST(sizes_match_the_references)
{
    ow_model *m = new_arch(sizes[_i].arch);
    ck_assert_msg(ow_model_get_num_modules(m) == sizes[_i].modules &&
                      ow_model_get_num_params(m) == sizes[_i].params &&
                      ow_model_get_numel(m) == sizes[_i].numel,
                  "%s: %zu modules, %zu params, %lld elements", sizes[_i].arch,
                  ow_model_get_num_modules(m), ow_model_get_num_params(m),
                  (long long)ow_model_get_numel(m));
    ck_assert_uint_eq(ow_model_get_num_tensors(m), sizes[_i].params); /* nothing tied */
    ow_model_free(m);
}
END_TEST

/* Every built-in name has a row above, and names are unique. */
START_TEST(every_arch_is_sized)
{
    size_t n = 0;
    for (const char *a; (a = ow_model_get_arch(n)) != NULL; n++) {
        size_t found = 0;
        for (size_t i = 0; i < OW__ARRAY_LEN(sizes); i++)
            found += !strcmp(sizes[i].arch, a);
        ck_assert_msg(found == 1, "'%s' has %zu rows in sizes[]", a, found);
        for (size_t j = 0; j < n; j++)
            ck_assert_str_ne(ow_model_get_arch(j), a);
    }
    ck_assert_uint_eq(n, OW__ARRAY_LEN(sizes));
    ck_assert_ptr_null(ow_model_get_arch(n + 100));
}
END_TEST

/* Spot checks in the families without a golden file: the parameters each reference
 * adds (relative position tables, layer scale, q/v biases, SE widths, frozen stages). */
static const struct {
    const char *arch, *param, *shape;
    bool requires_grad;
} spots[] = {
    {"beit-base-p16", "backbone.cls_token", "[1, 1, 768]", true},
    {"beit-base-p16", "backbone.layers.0.gamma_1", "[768]", true},
    {"beit-base-p16", "backbone.layers.11.attn.relative_position_bias_table", "[732, 12]",
     true},
    {"beit-base-p16", "backbone.layers.3.attn.v_bias", "[768]", true},
    {"beit-base-p16", "backbone.ln2.bias", "[768]", true},
    {"beit-large-p16", "backbone.layers.23.attn.relative_position_bias_table",
     "[732, 16]", true},
    {"deit-tiny", "backbone.pos_embed", "[1, 197, 192]", true},
    {"vit-huge-p14", "backbone.pos_embed", "[1, 257, 1280]", true},
    {"swin-tiny", "backbone.stages.2.blocks.5.attn.w_msa.relative_position_bias_table",
     "[169, 12]", true},
    {"swin-tiny", "backbone.stages.2.downsample.reduction.weight", "[768, 1536]", true},
    {"swin-large", "backbone.norm3.weight", "[1536]", true},
    {"convnext-xlarge", "backbone.stages.3.2.gamma", "[2048]", true},
    {"resnet50-frozen1", "backbone.conv1.weight", "[64, 3, 7, 7]", false},
    {"resnet50-frozen1", "backbone.layer1.2.bn3.bias", "[256]", false},
    {"resnet50-frozen1", "backbone.layer2.0.conv1.weight", "[128, 256, 1, 1]", true},
    {"resnet18", "backbone.layer2.0.downsample.0.weight", "[128, 64, 1, 1]", true},
    {"timm/convnext_tiny", "stages.1.downsample.1.weight", "[192, 96, 2, 2]", true},
    {"timm/convnext_tiny", "head.norm.weight", "[768]", true},
    {"timm/efficientnet_b0", "blocks.0.0.se.conv_reduce.weight", "[8, 32, 1, 1]", true},
    {"timm/efficientnet_b0", "blocks.1.0.se.conv_reduce.weight", "[4, 96, 1, 1]", true},
    {"timm/efficientnet_b0", "blocks.6.0.conv_pwl.weight", "[320, 1152, 1, 1]", true},
    {"timm/efficientnet_b4", "conv_stem.weight", "[48, 3, 3, 3]", true},
    {"timm/efficientnet_b4", "classifier.weight", "[1000, 1792]", true},
    {"timm/resnet18", "layer4.1.bn2.weight", "[512]", true},
};

START_TEST(reference_specific_params)
{
    ow_model *m = new_arch(spots[_i].arch);
    long i = ow_model_find_param(m, spots[_i].param);
    ck_assert_msg(i >= 0, "%s: no param '%s'", spots[_i].arch, spots[_i].param);
    ow_param_view v;
    char shape[128];
    ow_model_get_param(m, (size_t)i, &v);
    shape_text(shape, sizeof shape, &v);
    ck_assert_str_eq(shape, spots[_i].shape);
    ck_assert_int_eq(v.requires_grad, spots[_i].requires_grad);
    ow_model_free(m);
}
END_TEST

/* ---- errors and allocation failures ------------------------------------------------ */

START_TEST(unknown_names_fail)
{
    ow_error err;
    ow_model *m = (ow_model *)&err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow_model_new_arch("vit-bas-p16", &m, &err), OW_ERR_UNKNOWN_TYPE);
    ck_assert_ptr_null(m);
    ow_check_error(&err, OW_ERR_UNKNOWN_TYPE, NULL, 0, 0,
                   "unknown architecture 'vit-bas-p16' (closest: 'vit-base-p16')");
    ow_error_clear(&err);
    ck_assert_int_eq(ow_model_new_arch("timm/resnet5", &m, &err), OW_ERR_UNKNOWN_TYPE);
    ow_check_error(&err, OW_ERR_UNKNOWN_TYPE, NULL, 0, 0,
                   "unknown architecture 'timm/resnet5' (closest: 'timm/resnet50')");
    ow_error_clear(&err);
    ck_assert_int_eq(ow_model_new_arch("alexnet", &m, &err), OW_ERR_UNKNOWN_TYPE);
    ow_check_error(&err, OW_ERR_UNKNOWN_TYPE, NULL, 0, 0,
                   "unknown architecture 'alexnet'");
    ow_error_clear(&err);
    /* names are exact: no case folding, no scope guessing */
    ck_assert_int_eq(ow_model_new_arch("ResNet50", &m, &err), OW_ERR_UNKNOWN_TYPE);
    ow_error_clear(&err);
    ck_assert_int_eq(ow_model_new_arch(NULL, &m, &err), OW_ERR_MISUSE);
    ow_check_error(&err, OW_ERR_MISUSE, NULL, 0, 0,
                   "ow_model_new_arch: arch and out must not be NULL");
    ck_assert_int_eq(ow_model_new_arch("resnet50", NULL, NULL), OW_ERR_MISUSE);
}
END_TEST

/* A failed allocation anywhere gives OW_ERR_NOMEM, no model and no leak (valgrind);
 * timm/resnet18 also parses its facts. */
static const char *const oom_archs[] = {"resnet18", "timm/resnet18"};

START_TEST(allocation_failures_leave_nothing)
{
    ow_model *full = new_arch(oom_archs[_i]);
    for (long n = 0;; n++) {
        ow_error err;
        ow_error_clear(&err);
        ow_model *m = (ow_model *)&err;
        ow__alloc_fail_after(n);
        int rc = ow_model_new_arch(oom_archs[_i], &m, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK) {
            assert_same_tree(oom_archs[_i], m, full);
            ow_model_free(m);
            break;
        }
        ow_check_error(&err, OW_ERR_NOMEM, NULL, 0, 0, "out of memory");
        ck_assert_ptr_null(m);
    }
    ow_model_free(full);
}
END_TEST

/* ---- the command ------------------------------------------------------------------- */

START_TEST(cli_model_arch)
{
    ow_cli_result r = ow_test_cli("model --arch vit-base-p16 --format yaml");
    ck_assert_int_eq(r.status, 0);
    char *golden = ow_test_slurp(OW_TEST_GOLDEN "/models/mmpretrain_vit-base-p16.yaml");
    assert_same_text("model --arch", r.out, strchr(golden, '\n') + 1);
    ow_free(golden);
    ow_test_cli_free(&r);

    r = ow_test_cli("model --arch timm/resnet50");
    ck_assert_int_eq(r.status, 0);
    const char *head =
        "model timm_resnet50: 217 modules, 161 parameters (161 tensors), "
        "25557032 elements\ngroup_matcher: {\"stem\": \"^conv1|bn1|maxpool\", "
        "\"blocks\": \"^layer(\\\\d+)\\\\.(\\\\d+)\"}\n(root)  (ResNet)\n";
    ck_assert_msg(!strncmp(r.out, head, strlen(head)), "summary starts '%.300s'", r.out);
    ow_test_cli_free(&r);

    r = ow_test_cli("model --list-archs");
    ck_assert_int_eq(r.status, 0);
    const char *p = r.out;
    for (size_t i = 0; ow_model_get_arch(i); i++) {
        size_t len = strlen(ow_model_get_arch(i));
        ck_assert_msg(!strncmp(p, ow_model_get_arch(i), len) && p[len] == '\n',
                      "--list-archs: line %zu is not '%s'", i, ow_model_get_arch(i));
        p += len + 1;
    }
    ck_assert_str_eq(p, "");
    ow_test_cli_free(&r);
}
END_TEST

START_TEST(cli_groups_arch)
{
    /* the built-in tree gives the same groups as its golden file */
    ow_cli_result a =
        ow_test_cli("groups configs/resnet50_8xb32_in1k.yaml --arch resnet50 --format "
                    "json");
    ow_cli_result b =
        ow_test_cli("groups configs/resnet50_8xb32_in1k.yaml --model "
                    "tests/golden/models/mmpretrain_resnet50.yaml --format json");
    ck_assert_int_eq(a.status, 0);
    ck_assert_int_eq(b.status, 0);
    ck_assert_str_eq(a.out, b.out);
    ow_test_cli_free(&a);
    ow_test_cli_free(&b);
}
END_TEST

static const struct {
    const char *args;
    int status;
    const char *err; /* the whole of stderr, or its start when it ends with '~' */
} cli_errors[] = {
    {"model --arch vit-bas-p16", 1,
     "optwrap: unknown architecture 'vit-bas-p16' (closest: 'vit-base-p16')\n"
     "optwrap: 'optwrap model --list-archs' lists the built-in architectures\n"},
    {"groups configs/resnet50_8xb32_in1k.yaml --arch nonet", 1,
     "optwrap: unknown architecture 'nonet'\n"
     "optwrap: 'optwrap model --list-archs' lists the built-in architectures\n"},
    {"model tests/golden/models/mmpretrain_resnet50.yaml --arch resnet50", 2,
     "optwrap model: expected one MODEL file or --arch NAME, and --format summary|yaml\n"
     "usage: optwrap model (MODEL.yaml | --arch NAME | --list-archs) [--format "
     "summary|yaml]\n"},
    {"model", 2, "optwrap model: expected one MODEL file or --arch NAME~"},
    {"model --list-archs --arch resnet50", 2,
     "optwrap model: --list-archs takes no MODEL, --arch or --format~"},
    {"model --arch", 2, "optwrap model: option '--arch' needs a value~"},
    {"groups configs/resnet50_8xb32_in1k.yaml", 2,
     "optwrap groups: expected CONFIG, one of --model MODEL and --arch NAME, and "
     "--format "
     "table|json|csv\nusage: optwrap groups CONFIG (--model MODEL.yaml | --arch NAME) "
     "[--format table|json|csv] [--csv] [--explain] [--cfg-options K=V ...]\n"},
    {"groups configs/resnet50_8xb32_in1k.yaml --arch resnet50 --model "
     "tests/golden/models/mmpretrain_resnet50.yaml",
     2, "optwrap groups: expected CONFIG, one of --model MODEL and --arch NAME~"},
};

START_TEST(cli_arch_errors)
{
    ow_cli_result r = ow_test_cli(cli_errors[_i].args);
    ck_assert_msg(r.status == cli_errors[_i].status, "%s: status %d (%s)",
                  cli_errors[_i].args, r.status, r.err);
    size_t len = strlen(cli_errors[_i].err);
    if (cli_errors[_i].err[len - 1] == '~')
        ck_assert_msg(!strncmp(r.err, cli_errors[_i].err, len - 1), "%s: stderr '%s'",
                      cli_errors[_i].args, r.err);
    else
        ck_assert_str_eq(r.err, cli_errors[_i].err);
    ck_assert_str_eq(r.out, "");
    ow_test_cli_free(&r);
}
END_TEST

static Suite *arch_suite(void)
{
    Suite *s = suite_create("arch");
    TCase *tc = tcase_create("Golden");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, golden_models_are_rebuilt_exactly);
    tcase_add_loop_test(tc, timm_facts_match_the_reference, 0,
                        (int)OW__ARRAY_LEN(meta_cases));
    tcase_add_loop_test(tc, timm_group_matchers_round_trip, 0,
                        (int)OW__ARRAY_LEN(matcher_cases));
    suite_add_tcase(s, tc);
    tc = tcase_create("Sizes");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, sizes_match_the_references, 0, (int)OW__ARRAY_LEN(sizes));
    tcase_add_test(tc, every_arch_is_sized);
    tcase_add_loop_test(tc, reference_specific_params, 0, (int)OW__ARRAY_LEN(spots));
    suite_add_tcase(s, tc);
    tc = tcase_create("Errors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, unknown_names_fail);
    tcase_add_loop_test(tc, allocation_failures_leave_nothing, 0,
                        (int)OW__ARRAY_LEN(oom_archs));
    suite_add_tcase(s, tc);
    tc = tcase_create("Command");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cli_model_arch);
    tcase_add_test(tc, cli_groups_arch);
    tcase_add_loop_test(tc, cli_arch_errors, 0, (int)OW__ARRAY_LEN(cli_errors));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(arch_suite());
}
