/* check_optim.c -- the optimizer engine: every golden trajectory through the code of
 * `optwrap replay --check`, fast kernels against their plain _ref twins, hand-checked
 * degenerate hyperparameters, state save/load round trips and refusals, and the
 * checks on hyperparameters. */
#include "optim/optim_internal.h"
#include "optim_fixture.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- golden trajectories ------------------------------------------------------------
 */

/* Every file under tests/golden/optim, sorted (found once). */
static char *golden_files[1024];
static int n_golden;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void find_golden(void)
{
    static const char *const families[] = {"torch", "composer", "timm", "fastai",
                                           "mmpretrain"};
    char dir[1024], path[2048];
    for (size_t f = 0; f < OW__ARRAY_LEN(families); f++) {
        snprintf(dir, sizeof dir, "%s/optim/%s", OW_TEST_GOLDEN, families[f]);
        DIR *d = ow_test_opendir(dir);
        struct dirent *de;
        while ((de = readdir(d)) && n_golden < (int)OW__ARRAY_LEN(golden_files)) {
            size_t len = strlen(de->d_name);
            if (len < 6 || strcmp(de->d_name + len - 5, ".json"))
                continue;
            snprintf(path, sizeof path, "%s/%s", families[f], de->d_name);
            golden_files[n_golden++] = strdup(path);
        }
        closedir(d);
    }
    if (n_golden == 0) {
        fprintf(stderr, "no golden trajectories under %s/optim\n", OW_TEST_GOLDEN);
        exit(EXIT_FAILURE);
    }
    qsort(golden_files, (size_t)n_golden, sizeof *golden_files, cmp_str);
}

/* Files of optimizers outside issue 4 (fastai, the rest of the timm zoo): they must be
 * refused as unsupported, with a clear message. */
static bool implemented(const char *file)
{
    static const char *const later[] = {NULL};
    for (const char *const *n = later; *n; n++)
        if (!strncmp(file, *n, strlen(*n)))
            return false;
    return true;
}

/* Runs one file the way `optwrap replay --check` does; returns the stats. */
static int replay(const char *rel, int threads, bool ref, ow_trajectory_stats *st,
                  ow_error *err)
{
    char path[2048];
    ow_test_path(path, sizeof path, OW_TEST_GOLDEN, "optim");
    strncat(path, "/", sizeof path - strlen(path) - 1);
    strncat(path, rel, sizeof path - strlen(path) - 1);
    ow_trajectory *t = NULL;
    int rc = ow_trajectory_load(path, &t, err);
    if (rc)
        return rc;
    ow_optimizer_set_threads(ow_trajectory_get_optimizer(t), threads, NULL);
    ow__optimizer_use_ref(ow_trajectory_get_optimizer(t), ref);
    for (int k = 0; k < ow_trajectory_get_num_steps(t) && !rc; k++)
        rc = ow_trajectory_step(t, err);
    ow_trajectory_get_stats(t, st);
    ow_trajectory_free(t);
    return rc;
}

START_TEST(golden_trajectory)
{
    ck_assert_int_lt(_i, n_golden);
    const char *file = golden_files[_i];
    ow_error err;
    ow_error_clear(&err);
    ow_trajectory_stats st;
    int rc = replay(file, 1, false, &st, &err);
    if (!implemented(file)) {
        ck_assert_msg(rc == OW_ERR_UNSUPPORTED, "%s: expected unsupported, got %s (%s)",
                      file, ow_error_code_name(rc), err.message);
        ck_assert_ptr_nonnull(strstr(err.message, "is not implemented in optwrap"));
        return;
    }
    ck_assert_msg(rc == OW_OK, "%s: %s", file, err.message);
    ck_assert_msg(
        st.passed, "%s: max_abs_err=%g max_rel_err=%g max_ulp=%llu (tolerance %g)", file,
        st.max_abs_err, st.max_rel_err, (unsigned long long)st.max_ulp, st.tolerance);
    /* the plain kernels give the same numbers */
    ow_trajectory_stats st_ref;
    ck_assert_int_eq(replay(file, 1, true, &st_ref, &err), OW_OK);
    ck_assert_msg(st_ref.passed, "%s (ref): max_ulp=%llu", file,
                  (unsigned long long)st_ref.max_ulp);
}
END_TEST

/* ---- fast kernels against their plain twins ------------------------------------------
 */

static const int k_ndim[] = {1, 1, 2, 3, 1};
static const int64_t k_shapes[][3] = {{7}, {70000}, {40, 50}, {3, 20, 20}, {1}};

/* Every optimizer entry, and some settings its defaults do not reach. */
static const struct {
    const char *entry, *extra;
} variants[] = {
    {"Adam", "amsgrad: true, maximize: true"},
    {"SGD", "momentum: 0.9, nesterov: true"},
    {"SGD", "momentum: 0.9, dampening: 0.5, maximize: true"},
    {"RMSprop", "momentum: 0.9, centered: true"},
    {"timm.rmsproptf", "centered: true, lr_in_momentum: false"},
    {"timm.crmsproptf", "lr_in_momentum: false, decoupled_decay: true"},
    {"timm.adafactor", "lr: null, warmup_init: true"},
    {"timm.cadafactor", "scale_parameter: false, min_dim_size_to_factor: 2"},
    {"timm.lamb", "always_adapt: true, max_grad_norm: null"},
    {"timm.clamb", "decoupled_decay: true"},
    {"timm.adabelief", "amsgrad: true, decoupled_decay: false"},
    {"timm.lars", "always_adapt: true, momentum: 0"},
    {"fastai.SGD", "mom: 0.9, decouple_wd: false, wd: 0.01"},
    {"fastai.RMSProp", "mom: 0.9, wd: 0.01"},
    {"fastai.RAdam", "beta: 2.0, eps: 0"},
    {"fastai.Larc", "clip: false, mom: 0, decouple_wd: false"},
    {"fastai.Optimizer", "cbs: [weight_decay, {type: average_grad, dampening: true}, "
                         "average_sqr_grad, rms_prop_step, step_stat, qhadam_step], "
                         "mom: 0.9, nu_1: 0.7, nu_2: 1.0, lookahead_k: 2"},
    {"mmpretrain.LARS", "momentum: 0.9, nesterov: true"},
    {"mmpretrain.LARS", "momentum: 0.9, dampening: 0.5, lars_exclude: true"},
    {"Adagrad", "initial_accumulator_value: 0.1, lr_decay: 0.01"},
    {"timm.lion", "foreach: false"},
    {"timm.adamwlegacy", "amsgrad: true"},
    {"timm.nadamw", "foreach: false, maximize: true"},
    {"NAdam", "foreach: true"},
    {"RAdam", "foreach: true, betas: [0.9, 0.9]"},
    {"RAdam", "foreach: true, betas: [0.9, 0.5]"},
    {"timm.radamw", "foreach: true"},
    {"timm.adan", "betas: [0.9, 0.8, 0.7], eps: 0.001"},
    {"timm.cadan", "no_prox: true"},
    {"timm.adopt", "maximize: true, clip_exp: null"},
    {"timm.cadopt", "decoupled: true, corrected_weight_decay: true, eps: 0.1"},
    {"timm.laprop", "caution: true, corrected_weight_decay: true"},
    {"timm.madgrad", "momentum: 0"},
    {"timm.madgradw", "momentum: 0.5"},
    {"timm.mars", "mars_type: lion"},
    {"timm.mars", "betas: [0.8, 0.95]"},
    {"timm.mars", "optimize_1d: true, lr_1d_factor: 0.5, betas_1d: [0.8, 0.9]"},
    {"timm.cmars", "mars_type: lion, optimize_1d: true, gamma: 0.5"},
    {"timm.novograd", "amsgrad: true, grad_averaging: true"},
};

static const ow_entry *nth_optimizer(int i)
{
    int k = 0;
    for (const ow_entry *e = ow_registry_next(NULL); e; e = ow_registry_next(e))
        if (e->kind == OW_KIND_OPTIMIZER && e->ops && k++ == i)
            return e;
    return NULL;
}

static int count_optimizers(void)
{
    int k = 0;
    while (nth_optimizer(k))
        k++;
    return k;
}

static void compare_kernels(const char *name, const char *extra)
{
    char o0[256], o1[256];
    bool own_lr = !strncmp(extra, "lr:", 3);
    snprintf(o0, sizeof o0, "{%sweight_decay: 0.0%s%s}", own_lr ? "" : "lr: 0.01, ",
             *extra ? ", " : "", extra);
    snprintf(o1, sizeof o1, "{%sweight_decay: 0.1%s%s}", own_lr ? "" : "lr: 0.02, ",
             *extra ? ", " : "", extra);
    const char *const opts[] = {o0, o1};
    fixture fast, ref;
    fix_make(&fast, name, 5, k_ndim, k_shapes, 2, opts, 11);
    fix_make(&ref, name, 5, k_ndim, k_shapes, 2, opts, 11);
    ow_optimizer_set_threads(fast.opt, 2, NULL);
    ow_optimizer_set_threads(ref.opt, 1, NULL);
    ow__optimizer_use_ref(ref.opt, true);
    double tol = ow__trajectory_tolerance(ow_optimizer_get_entry(fast.opt));
    ow_error err;
    ow_error_clear(&err);
    for (int step = 0; step < 3; step++) {
        fix_grads(&fast, 100 + (unsigned)step);
        fix_grads(&ref, 100 + (unsigned)step);
        ow_check_ok(ow_optimizer_step(fast.opt, &err), &err);
        ow_check_ok(ow_optimizer_step(ref.opt, &err), &err);
    }
    char what[400];
    snprintf(what, sizeof what, "%s {%s}: fast against ref", name, extra);
    fix_expect_same(&fast, &ref, tol, what);
    fix_free(&fast);
    fix_free(&ref);
}

/* Hyperparameters reach the kernels by name (ops->params): every key an optimizer
 * accepts is read by its hooks, unless it is one of torch's implementation switches that
 * change nothing on a CPU (OW_KEY_IGNORED); and every name the hooks read is a key of
 * some entry that reads the same list (a misspelt name would read as absent
 * everywhere). */
START_TEST(every_key_is_read)
{
    const ow_entry *e = nth_optimizer(_i);
    const ow_optimizer_ops *ops = e->ops;
    ck_assert_msg(ops->params != NULL, "%s: no params", e->name);
    for (size_t k = 0; e->keys[k].name; k++) {
        if (e->keys[k].flags & OW_KEY_IGNORED)
            continue;
        bool read = false;
        for (size_t i = 0; ops->params[i] && !read; i++)
            read = !strcmp(ops->params[i], e->keys[k].name);
        ck_assert_msg(read, "%s: key '%s' is accepted but no hook reads it", e->name,
                      e->keys[k].name);
    }
    for (size_t i = 0; ops->params[i]; i++) {
        bool found = false;
        for (const ow_entry *o = ow_registry_next(NULL); o && !found;
             o = ow_registry_next(o)) {
            const ow_optimizer_ops *oo = o->kind == OW_KIND_OPTIMIZER ? o->ops : NULL;
            for (size_t k = 0;
                 oo && oo->params == ops->params && o->keys[k].name && !found; k++)
                found = !strcmp(o->keys[k].name, ops->params[i]);
        }
        ck_assert_msg(found, "%s: params names '%s', a key of no entry reading these",
                      e->name, ops->params[i]);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(ops->params[i], ops->params[j]),
                          "%s: '%s' twice in params", e->name, ops->params[i]);
    }
}
END_TEST

/* An optimizer from outside the library (tests/plugin/test_plugin.c, written against
 * optwrap-plugin.h): its 1-D tensor steps through the element pass, its 2-D one through
 * its per-tensor step with scratch; two steps worked out by hand. */
START_TEST(plugin_optimizer_steps)
{
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_registry_load_plugin(OW_TEST_PLUGINS "/libowtestplugin.so", &err),
                &err);
    static const int nd[] = {1, 2};
    static const int64_t sh[][3] = {{3}, {4, 1}};
    const char *const opts[] = {"{lr: 0.1, beta: 0.5, weight_decay: 0.5}"};
    fixture f;
    fix_make(&f, "owtest.PluginSignum", 2, nd, sh, 1, opts, 1);
    const float p0[] = {1, -1, 0.5f}, p1[] = {2, -2, 1, 0};
    const float g0[2][3] = {{1, -2, 0}, {-3, 1, 0}};
    const float g1[2][4] = {{1, 1, -1, 0}, {-4, 1, 1, 0}};
    memcpy(f.data[0], p0, sizeof p0);
    memcpy(f.data[1], p1, sizeof p1);
    float want0[3], want1[4], m0[3] = {0}, m1[4] = {0};
    memcpy(want0, p0, sizeof p0);
    memcpy(want1, p1, sizeof p1);
    for (int step = 0; step < 2; step++) {
        memcpy(f.grad[0], g0[step], sizeof g0[step]);
        memcpy(f.grad[1], g1[step], sizeof g1[step]);
        ow_check_ok(ow_optimizer_step(f.opt, &err), &err);
        for (int i = 0; i < 3; i++) { /* keep = 1 - 0.1*0.5; step lr */
            m0[i] = 0.5f * m0[i] + 0.5f * g0[step][i];
            float sg = m0[i] > 0 ? 1.0f : m0[i] < 0 ? -1.0f : 0.0f;
            want0[i] = want0[i] * 0.95f - 0.1f * sg;
        }
        for (int i = 0; i < 4; i++) { /* rows = 4: step lr / 2 */
            m1[i] = 0.5f * m1[i] + 0.5f * g1[step][i];
            float sg = m1[i] > 0 ? 1.0f : m1[i] < 0 ? -1.0f : 0.0f;
            want1[i] = want1[i] * 0.95f - 0.05f * sg;
        }
    }
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq(f.data[0][i], want0[i]);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(f.data[1][i], want1[i]);
    fix_free(&f);
    /* its check runs as a built-in's does */
    ow_groups *groups = NULL;
    ow_cfg *cfg = NULL;
    ow_check_ok(
        ow_cfg_load_string(
            "{optim_wrapper: {optimizer: {type: owtest.PluginSignum, beta: 1.5}}}",
            "t.yaml", &cfg, &err),
        &err);
    ow_model *m = NULL;
    ow_check_ok(ow_model_new("m", &m, &err), &err);
    const ow_module_info root = {.name = "", .type = "M"};
    ow_check_ok(ow_model_add_module(m, &root, &err), &err);
    int rc = ow_groups_build(cfg, m, &groups, &err);
    ck_assert_int_eq(rc, OW_ERR_VALUE);
    ck_assert_msg(strstr(err.message, "beta must be in [0, 1)"), "%s", err.message);
    ow_groups_free(groups);
    ow_model_free(m);
    ow_cfg_free(cfg);
}
END_TEST

/* timm's APEX names run the update of the optimizer they accelerate: the same bits. */
static const struct {
    const char *fused, *plain, *fused_opts, *plain_opts;
} fused_pairs[] = {
    {"timm.fusedadam", "timm.adam", "{lr: 0.01, weight_decay: 0.1}", NULL},
    {"timm.fusedadamw", "timm.adamw", "{lr: 0.01, weight_decay: 0.1}", NULL},
    {"timm.fusedadam", "timm.adamw", "{lr: 0.01, weight_decay: 0.1, adam_w_mode: true}",
     "{lr: 0.01, weight_decay: 0.1}"},
    {"timm.fusedsgd", "timm.sgd", "{lr: 0.01, weight_decay: 0.1}", NULL},
    {"timm.fusedlamb", "timm.lamb", "{lr: 0.01, weight_decay: 0.1}", NULL},
    {"timm.fusedlamb", "timm.lamb", "{lr: 0.01, weight_decay: 0.0, use_nvlamb: true}",
     "{lr: 0.01, weight_decay: 0.0, always_adapt: true}"},
    {"timm.lookahead_fusedadamw", "timm.lookahead_adamw", "{lr: 0.01}", NULL},
};

START_TEST(fused_names_run_the_plain_update)
{
    static const int nd[] = {1, 2};
    static const int64_t sh[][3] = {{7}, {3, 5}};
    const char *const fo[] = {fused_pairs[_i].fused_opts};
    const char *const po[] = {fused_pairs[_i].plain_opts ? fused_pairs[_i].plain_opts
                                                         : fused_pairs[_i].fused_opts};
    fixture a, b;
    fix_make(&a, fused_pairs[_i].fused, 2, nd, sh, 1, fo, 4);
    fix_make(&b, fused_pairs[_i].plain, 2, nd, sh, 1, po, 4);
    ow_error err;
    for (int step = 0; step < 7; step++) {
        fix_grads(&a, 30 + (unsigned)step);
        fix_grads(&b, 30 + (unsigned)step);
        ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
        ow_check_ok(ow_optimizer_step(b.opt, &err), &err);
    }
    fix_expect_same(&a, &b, 0, fused_pairs[_i].fused);
    fix_free(&a);
    fix_free(&b);
}
END_TEST

/* Every name of timm's list_optimizers() is run or refused with its reason, and the
 * README's table (tools/timm-table.sh) says which. */
START_TEST(every_timm_name_is_run_or_refused)
{
    FILE *names = fopen(OW_TEST_DATA "/timm_optimizers.txt", "r");
    FILE *readme = fopen(OW_TEST_CONFIGS "/../README.md", "r");
    ck_assert_ptr_nonnull(names);
    ck_assert_ptr_nonnull(readme);
    static char text[1 << 17];
    size_t len = fread(text, 1, sizeof text - 1, readme);
    text[len] = 0;
    fclose(readme);
    char line[128];
    int count = 0;
    while (fgets(line, sizeof line, names)) {
        if (line[0] == '#')
            continue;
        line[strcspn(line, "\n")] = 0;
        char full[160], row[160];
        snprintf(full, sizeof full, "timm.%s", line);
        const ow_entry *e = ow_registry_find(OW_KIND_OPTIMIZER, full);
        const char *why = ow_registry_refusal(OW_KIND_OPTIMIZER, full);
        ck_assert_msg((e && e->ops) || why, "%s: neither run nor refused", full);
        snprintf(row, sizeof row, "\n| `%s` | %s", line, why ? "**refused**" : "");
        ck_assert_msg(strstr(text, row), "README.md has no row '%s'", row + 1);
        snprintf(row, sizeof row, "\n| `%s` | **refused**", line);
        ck_assert_msg(why || !strstr(text, row), "README.md refuses %s, optwrap runs it",
                      line);
        count++;
    }
    fclose(names);
    ck_assert_int_eq(count, 98);
}
END_TEST

/* A model of one 5-element tensor, groups from config text, its optimizer. */
typedef struct cfg_run {
    ow_model *model;
    ow_groups *groups;
    ow_optimizer *opt;
    float data[5], grad[5];
} cfg_run;

static void cfg_run_make(cfg_run *r, const char *optimizer)
{
    memset(r, 0, sizeof *r);
    ow_error err;
    char text[320];
    snprintf(text, sizeof text, "{optim_wrapper: {optimizer: %s}}", optimizer);
    ow_cfg *cfg = NULL;
    ow_check_ok(ow_cfg_load_string(text, "t.yaml", &cfg, &err), &err);
    const ow_module_info root = {.name = "", .type = "M"};
    const int64_t shape[] = {5};
    for (int i = 0; i < 5; i++)
        r->data[i] = 0.3f * (float)i - 0.5f;
    ow_param_info pi = {.module = "",
                        .name = "w",
                        .ndim = 1,
                        .shape = shape,
                        .requires_grad = true,
                        .data = r->data,
                        .grad = r->grad};
    ow_check_ok(ow_model_new("m", &r->model, &err), &err);
    ow_check_ok(ow_model_add_module(r->model, &root, &err), &err);
    ow_check_ok(ow_model_add_param(r->model, &pi, &err), &err);
    ow_check_ok(ow_groups_build(cfg, r->model, &r->groups, &err), &err);
    ow_check_ok(ow_optimizer_new(r->groups, &r->opt, &err), &err);
    ow_cfg_free(cfg);
}

static void cfg_run_free(cfg_run *r)
{
    ow_optimizer_free(r->opt);
    ow_groups_free(r->groups);
    ow_model_free(r->model);
}

/* `type: Lookahead` over any optimizer: the inner one's steps, and every k steps the
 * slow weights (born at the first sync as the fast ones) move alpha of the way and the
 * fast weights take them: worked out here beside a plain AdamW. */
START_TEST(lookahead_config_form)
{
    cfg_run la, plain;
    cfg_run_make(&la, "{type: Lookahead, optimizer: {type: AdamW, lr: 0.01, "
                      "weight_decay: 0.1}, alpha: 0.25, k: 3}");
    cfg_run_make(&plain, "{type: AdamW, lr: 0.01, weight_decay: 0.1}");
    ck_assert_str_eq(ow_optimizer_get_entry(la.opt)->name, "lookahead_AdamW");
    float slow[5];
    ow_error err;
    for (int step = 1; step <= 9; step++) {
        for (int i = 0; i < 5; i++)
            la.grad[i] = plain.grad[i] = (float)((step * 7 + i * 3) % 5) - 2.0f;
        ow_check_ok(ow_optimizer_step(la.opt, &err), &err);
        ow_check_ok(ow_optimizer_step(plain.opt, &err), &err);
        if (step % 3 == 0)
            for (int i = 0; i < 5; i++) {
                if (step == 3)
                    slow[i] = plain.data[i];
                slow[i] = fmaf(0.25f, plain.data[i] - slow[i], slow[i]);
                plain.data[i] = slow[i];
            }
        for (int i = 0; i < 5; i++)
            ck_assert_msg(la.data[i] == plain.data[i], "step %d [%d]: %.9g against %.9g",
                          step, i, la.data[i], plain.data[i]);
    }
    double k;
    ow_check_ok(ow_optimizer_get_double(la.opt, 0, "lookahead_step", &k, &err), &err);
    ck_assert(k == 9);
    cfg_run_free(&la);
    cfg_run_free(&plain);
}
END_TEST

/* Names optwrap refuses, and APEX modes it has no twin for: an error that says why. */
static const struct {
    const char *optimizer, *message;
} refusals[] = {
    {"{type: timm.bnbadamw8bit, state_dtype: int4}",
     "state_dtype 'int4' is not one of float32, bfloat16, int8"},
    {"{type: AdamW, stochastic_rounding: true}",
     "stochastic_rounding needs state_dtype: bfloat16"},
    {"{type: timm.rmsproptf, state_dtype: int8}",
     "state_dtype int8 is not available for RMSpropTF (square_avg starts at 1)"},
    {"{type: timm.fusednovograd}", "is refused: APEX FusedNovoGrad (GPU-only) differs"},
    {"{type: timm.fusedadam, amsgrad: true}",
     "FusedAdam does not support the AMSGrad variant (APEX refuses it)"},
    {"{type: timm.fusedlamb, adam_w_mode: false}",
     "adam_w_mode: false (L2 decay inside the moments) is not implemented"},
    {"{type: Lookahead, optimizer: {type: AdamW, lr: 0.1}, alhpa: 0.5}",
     "optim_wrapper.optimizer: Lookahead has no key 'alhpa' (its keys: optimizer, "
     "alpha, k)"},
    {"{type: Lookahead, optimizer: [AdamW]}",
     "optim_wrapper.optimizer.optimizer: expected the map of the optimizer Lookahead "
     "wraps, got list"},
    {"{type: Lookahead, optimizer: {lr: 0.1}}",
     "optim_wrapper.optimizer.optimizer: missing key 'type'"},
    {"{type: Lookahead, optimizer: {type: timm.lookahead_sgd, lr: 0.1}}",
     "Lookahead cannot wrap 'lookahead_sgd' (it is a Lookahead already)"},
    {"{type: Lookahead, optimizer: {type: AdamW, lr: 0.1}, k: 0}",
     "optim_wrapper.optimizer.lookahead_k: must be"},
    {"{type: timm.fusedsgd, lr: 0.1, wd_after_momentum: true}",
     "wd_after_momentum: true (APEX FusedSGD's decay after the momentum) is not "
     "implemented"},
};

START_TEST(refused_names_say_why)
{
    char text[256];
    snprintf(text, sizeof text, "{optim_wrapper: {optimizer: %s}}",
             refusals[_i].optimizer);
    ow_error err;
    ow_cfg *cfg = NULL;
    ow_check_ok(ow_cfg_load_string(text, "t.yaml", &cfg, &err), &err);
    ow_model *m = NULL;
    ow_check_ok(ow_model_new("m", &m, &err), &err);
    const ow_module_info root = {.name = "", .type = "M"};
    ow_check_ok(ow_model_add_module(m, &root, &err), &err);
    ow_groups *groups = NULL;
    ck_assert_int_ne(ow_groups_build(cfg, m, &groups, &err), OW_OK);
    ck_assert_msg(strstr(err.message, refusals[_i].message), "%s", err.message);
    ck_assert_int_eq(err.line, 1);
    ow_model_free(m);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(fast_matches_ref)
{
    const ow_entry *e = nth_optimizer(_i);
    ck_assert_ptr_nonnull(e);
    char name[96];
    snprintf(name, sizeof name, "%s%s%s", e->scope ? e->scope : "", e->scope ? "." : "",
             e->name);
    compare_kernels(name, "");
}
END_TEST

START_TEST(fast_matches_ref_variants)
{
    compare_kernels(variants[_i].entry, variants[_i].extra);
}
END_TEST

/* Work is split into chunks claimed by whichever thread is free, and per-tensor sums
 * (Lamb, Lars, Adafactor norms) are added in chunk order: the result must not depend on
 * the thread count, to the bit. */
START_TEST(threads_do_not_change_results)
{
    const ow_entry *e = nth_optimizer(_i);
    char name[96];
    snprintf(name, sizeof name, "%s%s%s", e->scope ? e->scope : "", e->scope ? "." : "",
             e->name);
    static const int nd[] = {1, 2, 1};
    static const int64_t sh[][3] = {{100001}, {200, 300}, {5}}; /* 3 chunks of 64K */
    const char *const opts[] = {"{lr: 0.01, weight_decay: 0.1}"};
    fixture one, two;
    fix_make(&one, name, 3, nd, sh, 1, opts, 5);
    fix_make(&two, name, 3, nd, sh, 1, opts, 5);
    ow_optimizer_set_threads(one.opt, 1, NULL);
    ow_optimizer_set_threads(two.opt, 2, NULL);
    ow_error err;
    ow_error_clear(&err);
    for (int step = 0; step < 2; step++) {
        fix_grads(&one, 7 + (unsigned)step);
        fix_grads(&two, 7 + (unsigned)step);
        ow_check_ok(ow_optimizer_step(one.opt, &err), &err);
        ow_check_ok(ow_optimizer_step(two.opt, &err), &err);
    }
    for (size_t i = 0; i < one.n; i++)
        ck_assert_msg(!memcmp(one.data[i], two.data[i], one.numel[i] * sizeof(float)),
                      "%s: tensor %zu differs between 1 and 2 threads", name, i);
    fix_free(&one);
    fix_free(&two);
}
END_TEST

/* Consecutive tiny tensors of one group go through one kernel call (a batch copied into
 * a buffer); the reference kernels run tensor by tensor, so they must agree to the bit
 * (to tolerance for norm-based optimizers). */
START_TEST(tiny_tensor_batches_match_ref)
{
    const ow_entry *e = nth_optimizer(_i);
    char name[96];
    snprintf(name, sizeof name, "%s%s%s", e->scope ? e->scope : "", e->scope ? "." : "",
             e->name);
    static const int nd[] = {1, 1, 1, 2, 1, 1, 1};
    static const int64_t sh[][3] = {{3}, {16}, {1}, {2, 5}, {9}, {2}, {17}};
    const char *const opts[] = {"{lr: 0.01, weight_decay: 0.1}"};
    fixture fast, ref;
    fix_make(&fast, name, 7, nd, sh, 1, opts, 3);
    fix_make(&ref, name, 7, nd, sh, 1, opts, 3);
    ow__optimizer_use_ref(ref.opt, true);
    double tol = ow__trajectory_tolerance(ow_optimizer_get_entry(fast.opt));
    ow_error err;
    ow_error_clear(&err);
    for (int step = 0; step < 3; step++) {
        fix_grads(&fast, 20 + (unsigned)step);
        fix_grads(&ref, 20 + (unsigned)step);
        ow_check_ok(ow_optimizer_step(fast.opt, &err), &err);
        ow_check_ok(ow_optimizer_step(ref.opt, &err), &err);
    }
    char what[200];
    snprintf(what, sizeof what, "%s: batched against ref", name);
    fix_expect_same(&fast, &ref, tol, what);
    fix_free(&fast);
    fix_free(&ref);
}
END_TEST

/* ---- degenerate hyperparameters, worked out by hand
 * ------------------------------------ */

/* One step of `entry` with `opts` on p = [1.5, -2, 0.25], g = [0.5, -3, 2]. */
static void one_step(const char *entry, const char *opts, float *out)
{
    static const int nd[] = {1};
    static const int64_t sh[][3] = {{3}};
    fixture f;
    const char *const o[] = {opts};
    fix_make(&f, entry, 1, nd, sh, 1, o, 1);
    const float p[] = {1.5f, -2.0f, 0.25f}, g[] = {0.5f, -3.0f, 2.0f};
    memcpy(f.data[0], p, sizeof p);
    memcpy(f.grad[0], g, sizeof g);
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_optimizer_step(f.opt, &err), &err);
    memcpy(out, f.data[0], sizeof p);
    fix_free(&f);
}

static const struct {
    const char *entry, *opts;
    float want[3];
} degenerate[] = {
    /* p - lr*g */
    {"SGD", "{lr: 1, momentum: 0}", {1.0f, 1.0f, -1.75f}},
    /* L2: g + wd*p = [1.25, -4, 2.125] */
    {"SGD", "{lr: 1, weight_decay: 0.5}", {0.25f, 2.0f, -1.875f}},
    /* betas (0, 0), eps 0: m = g, v = g*g, bias corrections 1: p - sign(g) */
    {"AdamW", "{lr: 1, betas: [0, 0], eps: 0, weight_decay: 0}", {0.5f, -1.0f, -0.75f}},
    /* decoupled decay first: p*(1 - 1*0.5) - sign(g) */
    {"AdamW",
     "{lr: 1, betas: [0, 0], eps: 0, weight_decay: 0.5}",
     {-0.25f, 0.0f, -0.875f}},
    /* L2 into the gradient: sign(g + 0.5p) = [+, -, +] */
    {"Adam", "{lr: 1, betas: [0, 0], eps: 0, weight_decay: 0.5}", {0.5f, -1.0f, -0.75f}},
    /* sign(g), no decay */
    {"timm.lion", "{lr: 1, betas: [0, 0], weight_decay: 0}", {0.5f, -1.0f, -0.75f}},
    /* sum = g*g: p - g/|g| */
    {"Adagrad", "{lr: 1, eps: 0}", {0.5f, -1.0f, -0.75f}},
    /* buffer = g at the first step, nesterov: g + 0.5*g */
    {"timm.sgd", "{lr: 1, momentum: 0.5, nesterov: true}", {0.75f, 2.5f, -2.75f}},
    /* composer: decay by lr/initial_lr = 1: p*(1 - 0.5) - g */
    {"composer.DecoupledSGDW", "{lr: 1, weight_decay: 0.5}", {0.25f, 2.0f, -1.875f}},
    /* APEX bias_correction: false: m = 0.5g, v = g*g, no division: p - 0.5*sign(g) */
    {"timm.fusedadam",
     "{lr: 1, betas: [0.5, 0], eps: 0, bias_correction: false}",
     {1.0f, -1.5f, -0.25f}},
};

START_TEST(degenerate_by_hand)
{
    float got[3];
    one_step(degenerate[_i].entry, degenerate[_i].opts, got);
    for (int k = 0; k < 3; k++)
        ck_assert_msg(got[k] == degenerate[_i].want[k],
                      "%s %s: p[%d] = %.9g, expected %.9g", degenerate[_i].entry,
                      degenerate[_i].opts, k, got[k], degenerate[_i].want[k]);
}
END_TEST

/* ---- parameters without a gradient, frozen ones, threads
 * -------------------------------- */

START_TEST(skips_missing_grads_and_frozen)
{
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    ow_model *m = NULL;
    ow_groups *groups = NULL;
    ow_optimizer *opt = NULL;
    float data[3][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}}, grad[3][4];
    float before[3][4];
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++)
            grad[i][k] = 0.5f;
    memcpy(before, data, sizeof data);
    const ow_module_info root = {.name = "", .type = "Net"};
    const int64_t shape[] = {4};
    ow_check_ok(ow_model_new("net", &m, &err), &err);
    ow_check_ok(ow_model_add_module(m, &root, &err), &err);
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "w%d", i);
        /* w0 trains; w1 has no gradient; w2 is frozen although its gradient is set */
        ow_param_info pi = {.module = "",
                            .name = name,
                            .ndim = 1,
                            .shape = shape,
                            .requires_grad = i != 2,
                            .data = data[i],
                            .grad = i == 1 ? NULL : grad[i]};
        ow_check_ok(ow_model_add_param(m, &pi, &err), &err);
    }
    /* no paramwise_cfg: one group of model.parameters(), frozen ones included */
    ow_check_ok(ow_cfg_load_string("optim_wrapper: {optimizer: {type: SGD, lr: 0.1, "
                                   "momentum: 0.9}}",
                                   NULL, &cfg, &err),
                &err);
    ow_check_ok(ow_groups_build(cfg, m, &groups, &err), &err);
    ow_check_ok(ow_optimizer_new(groups, &opt, &err), &err);
    for (int step = 0; step < 2; step++)
        ow_check_ok(ow_optimizer_step(opt, &err), &err);
    /* p = fma(-lr, g, p); buf = fma(1 - dampening, g, 0.9 * buf); p = fma(-lr, buf, p) */
    ck_assert_float_eq(
        data[0][0], fmaf(-0.1f, fmaf(1.0f, 0.5f, 0.5f * 0.9f), fmaf(-0.1f, 0.5f, 1.0f)));
    ck_assert_mem_eq(data[1], before[1], sizeof data[1]);
    ck_assert_mem_eq(data[2], before[2], sizeof data[2]);
    /* w1 gets a gradient later: its buffer starts then, as torch's would */
    ow_check_ok(ow_model_set_data(m, "w1", data[1], grad[1], &err), &err);
    ow_check_ok(ow_optimizer_step(opt, &err), &err);
    ck_assert_float_eq(data[1][0], fmaf(-0.1f, 0.5f, 5.0f));
    ow_optimizer_free(opt);
    ow_groups_free(groups);
    ow_model_free(m);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(threads_from_api_and_environment)
{
    static const int nd[] = {1};
    static const int64_t sh[][3] = {{4}};
    const char *const o[] = {"{lr: 0.1}"};
    fixture f;
    setenv("OW_NUM_THREADS", "3", 1);
    fix_make(&f, "SGD", 1, nd, sh, 1, o, 3);
    ck_assert_int_eq(ow_optimizer_get_threads(f.opt), 3);
    ck_assert_int_eq(ow_optimizer_set_threads(f.opt, 5, NULL), OW_OK);
    ck_assert_int_eq(ow_optimizer_get_threads(f.opt), 5);
    ow_optimizer_set_threads(f.opt, 0, NULL);
    ck_assert_int_eq(ow_optimizer_get_threads(f.opt), 3);
    setenv("OW_NUM_THREADS", "junk", 1);
    ck_assert_int_ge(ow_optimizer_get_threads(f.opt), 1);
    unsetenv("OW_NUM_THREADS");
    fix_free(&f);
}
END_TEST

/* ---- the command ----------------------------------------------------------------------
 */

/* `optwrap replay` runs the same code; its exit status and its one line of figures. */
START_TEST(replay_command)
{
    char cmd[3072], out[1024];
    snprintf(out, sizeof out, "%s/tests/replay-%d.out", OW_TEST_BUILDDIR, (int)getpid());
    snprintf(cmd, sizeof cmd,
             "%s/optwrap replay %s/optim/torch/AdamW__base.json --check --quiet >%s 2>&1",
             OW_TEST_BUILDDIR, OW_TEST_GOLDEN, out);
    ck_assert_int_eq(system(cmd), 0);
    char *text = ow_test_slurp(out);
    ck_assert_str_eq(text, "max_abs_err=0 max_rel_err=0 max_ulp=0\n");
    ow_free(text);
    /* a name optwrap does not have: a golden file with its optimizer renamed */
    char src[1024], tmp[] = "/tmp/ow_replay_XXXXXX.json";
    snprintf(src, sizeof src, "%s/optim/timm/kron__base.json", OW_TEST_GOLDEN);
    text = ow_test_slurp(src);
    char *at = strstr(text, "\"optimizer\":\"kron\"");
    ck_assert_ptr_nonnull(at);
    int fd = mkstemps(tmp, 5); /* keeps .json: replay reads .json files */
    ck_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "%.*s\"optimizer\":\"nosuch\"%s", (int)(at - text), text,
            at + strlen("\"optimizer\":\"kron\""));
    fclose(f);
    ow_free(text);
    snprintf(cmd, sizeof cmd, "%s/optwrap replay %s --check >%s 2>&1", OW_TEST_BUILDDIR,
             tmp, out);
    int st = system(cmd);
    unlink(tmp);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    text = ow_test_slurp(out);
    ck_assert_ptr_nonnull(strstr(text, ":3:13: optimizer 'nosuch' (registry name "
                                       "'timm.nosuch') is not implemented in optwrap\n"));
    ow_free(text);
    unlink(out);
}
END_TEST

/* ---- bad trajectory files ----------------------------------------------------------
 * Each case edits one line of a golden file (they have one top-level key per line);
 * the file must be refused with this error, or (code OW_OK) replay as the original. */
static const struct {
    const char *file, *find, *replace;
    int code, line, column;
    const char *message;
} bad_files[] = {
    {"torch/SGD__dampening.json", "\"kind\":\"optimizer_trajectory\"",
     "\"kind\":\"sched\"", OW_ERR_VALUE, 2, 8,
     "trajectory: kind is 'sched', not 'optimizer_trajectory' or "
     "'optim_wrapper_trajectory'"},
    {"torch/SGD__dampening.json", "\"optimizer\":\"torch.optim.SGD\"",
     "\"optimizer\":\"torch.optim.SGDX\"", OW_ERR_UNSUPPORTED, 3, 13,
     "optimizer 'torch.optim.SGDX' (registry name 'SGDX') is not implemented in optwrap"},
    {"torch/SGD__dampening.json", "\"dampening\":0.5}",
     "\"dampening\":0.5,\"nesterow\":1}", OW_ERR_UNKNOWN_KEY, 8, 70,
     "trajectory: factory_kwargs: 'nesterow' is not a key of SGD"},
    /* timm's factory drops eps for lion: it never reached the optimizer */
    {"timm/lion__base.json", "\"factory_kwargs\":{", "\"factory_kwargs\":{\"eps\":0.1,",
     OW_OK, 0, 0, NULL},
    {"torch/SGD__dampening.json", "\"momentum\":0.9,\"dampening\":0.5,\"weight_decay\"",
     "\"momentum\":-0.9,\"dampening\":0.5,\"weight_decay\"", OW_ERR_RANGE, 9, 33,
     "trajectory: defaults.momentum: must be >= 0, got -0.9"},
    {"torch/SGD__dampening.json", "\"weight_decay\":0.0}}",
     "\"weight_decay\":0.0,\"wd\":1}}", OW_ERR_UNKNOWN_KEY, 10, 73,
     "trajectory: overrides: 'wd' is not a key of SGD"},
    {"torch/SGD__dampening.json", "\"tensors\":[1,2]", "\"tensors\":[1,3]", OW_ERR_VALUE,
     10, 84, "trajectory: tensor index 3 out of range"},
    {"torch/SGD__dampening.json", "\"shapes\":[[7]", "\"shapes\":[[8]", OW_ERR_VALUE, 16,
     9, "trajectory: expected a list of 8 numbers"},
    {"torch/SGD__dampening.json", "\"grads\":[[[0.4387751519680023,",
     "\"grads\":[[[\"x\",", OW_ERR_TYPE, 17, 12,
     "trajectory: expected a number, got 'x'"},
    {"torch/SGD__dampening.json", "\"groups\":", "\"groupz\":", OW_ERR_MISSING_KEY, 1, 1,
     "trajectory: missing key 'groups'"},
    {"torch/SGD__dampening.json", "\"seed\":20240611,", "\"seed\":[20240611,",
     OW_ERR_SYNTAX, 21, 1,
     "while parsing a flow sequence: did not find expected ',' or ']'"},
};

START_TEST(replay_refuses_bad_files)
{
    char path[1024], tmp[] = "/tmp/ow_traj_XXXXXX";
    snprintf(path, sizeof path, "%s/optim/%s", OW_TEST_GOLDEN, bad_files[_i].file);
    char *text = ow_test_slurp(path);
    char *at = strstr(text, bad_files[_i].find);
    ck_assert_msg(at != NULL, "'%s' not in %s", bad_files[_i].find, path);
    int fd = mkstemp(tmp);
    ck_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "%.*s%s%s", (int)(at - text), text, bad_files[_i].replace,
            at + strlen(bad_files[_i].find));
    fclose(f);
    ow_free(text);
    ow_error err;
    ow_error_clear(&err);
    ow_trajectory *t = NULL;
    int rc = ow_trajectory_load(tmp, &t, &err);
    if (bad_files[_i].code == OW_OK) {
        ow_check_ok(rc, &err);
        for (int k = 0; k < ow_trajectory_get_num_steps(t) && !rc; k++)
            rc = ow_trajectory_step(t, &err);
        ow_check_ok(rc, &err);
        ow_trajectory_stats st;
        ow_trajectory_get_stats(t, &st);
        ck_assert(st.passed);
    } else {
        /* the recorded values are read step by step */
        for (int k = 0; !rc && k < ow_trajectory_get_num_steps(t); k++)
            rc = ow_trajectory_step(t, &err);
        ck_assert_int_ne(rc, OW_OK);
        ow_check_error(&err, bad_files[_i].code, strrchr(tmp, '/'), bad_files[_i].line,
                       bad_files[_i].column, bad_files[_i].message);
    }
    ow_trajectory_free(t);
    unlink(tmp);
}
END_TEST

Suite *make_optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("Golden");
    tcase_set_timeout(tc, 120);
    find_golden();
    tcase_add_loop_test(tc, golden_trajectory, 0, n_golden);
    tcase_add_loop_test(tc, replay_refuses_bad_files, 0, (int)OW__ARRAY_LEN(bad_files));
    suite_add_tcase(s, tc);
    tc = tcase_create("Kernels");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, every_key_is_read, 0, count_optimizers());
    tcase_add_test(tc, plugin_optimizer_steps);
    tcase_add_loop_test(tc, fused_names_run_the_plain_update, 0,
                        (int)OW__ARRAY_LEN(fused_pairs));
    tcase_add_loop_test(tc, refused_names_say_why, 0, (int)OW__ARRAY_LEN(refusals));
    tcase_add_test(tc, every_timm_name_is_run_or_refused);
    tcase_add_test(tc, lookahead_config_form);
    tcase_add_loop_test(tc, fast_matches_ref, 0, count_optimizers());
    tcase_add_loop_test(tc, fast_matches_ref_variants, 0, (int)OW__ARRAY_LEN(variants));
    suite_add_tcase(s, tc);
    tc = tcase_create("Core");
    tcase_add_loop_test(tc, degenerate_by_hand, 0, (int)OW__ARRAY_LEN(degenerate));
    tcase_add_test(tc, skips_missing_grads_and_frozen);
    tcase_add_test(tc, threads_from_api_and_environment);
    tcase_add_loop_test(tc, threads_do_not_change_results, 0, count_optimizers());
    tcase_add_loop_test(tc, tiny_tensor_batches_match_ref, 0, count_optimizers());
    suite_add_tcase(s, tc);
    tc = tcase_create("Command");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, replay_command);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(make_optim_suite());
}
