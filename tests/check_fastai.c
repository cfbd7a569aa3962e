/* check_fastai.c -- fastai's optimizers: torch's float32 reductions (values from torch
 * 1.13 on the CPU, one thread), the `cbs:` list reader and its refusals. The presets'
 * trajectories are checked with every golden file in check_optim. */
#include "optim/fastai_internal.h"
#include "optim_fixture.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

/* ---- reductions ---------------------------------------------------------------------
 */

/* x[i] = ((i*7919) % 1000 - 500) / 37 in float32; torch's x.sum(), torch.norm(x) and
 * x.pow(2).mean().sqrt() */
static const struct {
    size_t n;
    double sum, norm, rms;
} reductions[] = {
    {5, 0x1.2a60dcp+4, 0x1.591690p+4, 0x1.34a7fcp+3},
    {7, 0x1.598376p+4, 0x1.5b93d6p+4, 0x1.06be70p+3},
    {20, 0x1.07c8a4p+4, 0x1.178d78p+5, 0x1.f41432p+2},
    {100, -0x1.9acf94p+4, 0x1.3b99c6p+6, 0x1.f8f60cp+2},
    {1000, -0x1.b06eaep+3, 0x1.ed71b8p+7, 0x1.f3549ap+2},
    {40000, -0x1.0e452ap+9, 0x1.861a20p+10, 0x1.f3549ap+2},
};

START_TEST(reductions_in_torch_order)
{
    size_t n = reductions[_i].n;
    float *x = malloc(n * sizeof *x), *sq = malloc(n * sizeof *sq);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(sq);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)((long)((i * 7919) % 1000) - 500) / 37.0f;
        sq[i] = x[i] * x[i];
    }
    ck_assert_float_eq(ow__fa_sum(x, n), (float)reductions[_i].sum);
    ck_assert_float_eq(ow__fa_norm(x, n), (float)reductions[_i].norm);
    ck_assert_float_eq(sqrtf(ow__fa_sum(sq, n) / (float)n), (float)reductions[_i].rms);
    free(x);
    free(sq);
}
END_TEST

/* ---- trajectories: the goldens and tests/data/fastai (see its README)
 * -------------------------
 */

/* the shared goldens (tests/golden/optim/fastai) and the variants here: check_optim holds
 * fastai.Lamb and fastai.Larc to the norm-based optimizers' tolerance by name; fastai's
 * reductions are torch's own order, so every file must match to the bit */
static const char *const trajectories[] = {
    "golden:Adam__base.json",
    "golden:Lamb__base.json",
    "golden:Larc__base.json",
    "golden:Lookahead__adam.json",
    "golden:QHAdam__base.json",
    "golden:RAdam__base.json",
    "golden:RMSProp__momentum.json",
    "golden:SGD__momentum.json",
    "golden:ranger__base.json",
    "Lamb__l2.json",
    "Larc__noclip_l2.json",
    "QHAdam__nu2_l2.json",
    "RAdam__eps0.json",
    "RMSProp__l2_nomom.json",
    "SGD__l2_nomom.json",
    "ranger__k3.json",
};

START_TEST(trajectories_bit_exact)
{
    char dir[1024], path[2048];
    bool golden = !strncmp(trajectories[_i], "golden:", 7);
    snprintf(path, sizeof path, "%s/%s",
             golden ? ow_test_path(dir, sizeof dir, OW_TEST_GOLDEN, "optim/fastai")
                    : ow_test_path(dir, sizeof dir, OW_TEST_DATA, "fastai"),
             trajectories[_i] + (golden ? 7 : 0));
    for (int ref = 0; ref < 2; ref++) {
        ow_error err;
        ow_error_clear(&err);
        ow_trajectory *t = NULL;
        ow_check_ok(ow_trajectory_load(path, &t, &err), &err);
        ow__optimizer_use_ref(ow_trajectory_get_optimizer(t), ref);
        for (int k = 0; k < ow_trajectory_get_num_steps(t); k++)
            ow_check_ok(ow_trajectory_step(t, &err), &err);
        ow_trajectory_stats st;
        ow_trajectory_get_stats(t, &st);
        ck_assert_msg(st.max_ulp == 0, "%s (ref %d): max_ulp=%llu max_abs_err=%g",
                      trajectories[_i], ref, (unsigned long long)st.max_ulp,
                      st.max_abs_err);
        ow_trajectory_free(t);
    }
}
END_TEST

/* ---- cbs lists ----------------------------------------------------------------------
 */

static int parse(const char *yaml, ow__fa_prog *prog, ow_error *err)
{
    ow_cfg *cfg;
    ow_error_clear(err);
    int rc = ow_cfg_load_string(yaml, "<cbs>", &cfg, err);
    ck_assert_int_eq(rc, OW_OK);
    rc = ow__fa_parse_cbs(ow__cfg_map_get(cfg, "cbs"), prog, err);
    ow_cfg_free(cfg);
    return rc;
}

START_TEST(cbs_build_fastai_adam)
{
    ow__fa_prog prog;
    ow_error err;
    int rc = parse("cbs: [weight_decay, {type: average_grad, dampening: true},\n"
                   "      average_sqr_grad, step_stat, adam_step]\n",
                   &prog, &err);
    ow_check_ok(rc, &err);
    ck_assert_int_eq(prog.n, 5);
    static const int want[] = {FA_WEIGHT_DECAY, FA_AVERAGE_GRAD, FA_AVERAGE_SQR_GRAD,
                               FA_STEP_STAT, FA_ADAM_STEP};
    static const int flags[] = {FA_BARE, FA_OPT, FA_OPT | FA_BARE, FA_BARE, FA_BARE};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(prog.cb[i], want[i]);
        ck_assert_int_eq(prog.flags[i], flags[i]);
    }
    ck_assert_uint_eq(ow__fa_prog_states(&prog),
                      1u << FS_GRAD_AVG | 1u << FS_SQR_AVG | 1u << FS_STEP);
    /* average_grad as a map is fastai's partial(...): no `.defaults`, so no mom */
    double h[FH__N] = {0};
    ck_assert_uint_eq(ow__fa_prog_defaults(&prog, h), 1u << FH_WD | 1u << FH_SQR_MOM);
    ck_assert_double_eq(h[FH_SQR_MOM], 0.99);
}
END_TEST

START_TEST(cbs_options_and_optional_state)
{
    ow__fa_prog prog;
    ow_error err;
    /* larc_step reads grad_avg when an earlier callback made it, else the gradient */
    int rc = parse("cbs: [l2_reg, {type: larc_layer_lr, clip: false}, larc_step]\n",
                   &prog, &err);
    ow_check_ok(rc, &err);
    ck_assert_int_eq(prog.n, 3);
    ck_assert_int_eq(prog.flags[1], 0);
    double h[FH__N] = {0};
    ck_assert_uint_eq(ow__fa_prog_defaults(&prog, h), 1u << FH_WD);
    ck_assert_uint_eq(ow__fa_prog_hypers(&prog),
                      1u << FH_LR | 1u << FH_WD | 1u << FH_TRUST_COEFF | 1u << FH_EPS);
}
END_TEST

static const struct {
    const char *yaml;
    int code, line, column;
    const char *message;
} refusals[] = {
    {"cbs: [weight_decay, averge_grad, momentum_step]\n", OW_ERR_VALUE, 1, 21,
     "cbs[1]: unknown callback 'averge_grad' (did you mean 'average_grad'?)"},
    {"cbs: [lookahead]\n", OW_ERR_VALUE, 1, 7,
     "cbs[0]: unknown callback 'lookahead' (fastai's: weight_decay, l2_reg, "
     "average_grad, "
     "average_sqr_grad, step_stat, momentum_step, sgd_step, rms_prop_step, adam_step, "
     "radam_step, qhadam_step, larc_layer_lr, larc_step, lamb_step)"},
    {"cbs:\n  - {type: average_grad, dampning: true}\n  - momentum_step\n",
     OW_ERR_UNKNOWN_KEY, 2, 36,
     "cbs[0]: unknown key 'dampning' for average_grad (did you mean 'dampening'?) (its "
     "option is dampening)"},
    {"cbs: [{type: sgd_step, clip: true}]\n", OW_ERR_UNKNOWN_KEY, 1, 30,
     "cbs[0]: unknown key 'clip' for sgd_step (it takes no option)"},
    {"cbs: [{type: average_grad, dampening: 1}, momentum_step]\n", OW_ERR_TYPE, 1, 39,
     "cbs[0].dampening: expected a bool"},
    {"cbs: [{dampening: true}]\n", OW_ERR_MISSING_KEY, 1, 7,
     "cbs[0]: a callback map needs 'type' (its name)"},
    {"cbs: [weight_decay, adam_step, average_grad]\n", OW_ERR_VALUE, 1, 21,
     "cbs[1]: adam_step reads grad_avg, which a later callback creates; put "
     "average_grad before it"},
    {"cbs: [average_grad, average_sqr_grad, lamb_step]\n", OW_ERR_VALUE, 1, 39,
     "cbs[2]: lamb_step reads step, which no earlier callback creates; put step_stat "
     "before it"},
    {"cbs: [average_sqr_grad, rms_prop_step, average_grad]\n", OW_ERR_VALUE, 1, 25,
     "cbs[1]: rms_prop_step reads grad_avg, which a later callback creates; put "
     "average_grad before it"},
    {"cbs: []\n", OW_ERR_VALUE, 1, 6, "cbs: 0 callbacks; between 1 and 16 are accepted"},
    {"cbs: sgd_step\n", OW_ERR_TYPE, 1, 6,
     "cbs: expected a list of fastai step callbacks"},
    {"cbs: [3]\n", OW_ERR_TYPE, 1, 7,
     "cbs[0]: expected a callback name or a map with 'type'"},
};

START_TEST(cbs_refused_with_position)
{
    ow__fa_prog prog;
    ow_error err;
    int rc = parse(refusals[_i].yaml, &prog, &err);
    ck_assert_int_eq(rc, refusals[_i].code);
    ow_check_error(&err, refusals[_i].code, "<cbs>", refusals[_i].line,
                   refusals[_i].column, refusals[_i].message);
}
END_TEST

/* ---- fastai.Optimizer ----------------------------------------------------------------
 */

/* The list fastai's Adam builds, given to fastai.Optimizer, steps to the same bits. */
START_TEST(optimizer_list_equals_preset)
{
    static const int nd[] = {1, 2, 1};
    static const int64_t sh[][3] = {{7}, {40, 30}, {70000}};
    const char *const adam[] = {"{lr: 0.01, wd: 0.1}", "{lr: 0.02, wd: 0.0}"};
    const char *const list[] = {
        "{lr: 0.01, wd: 0.1, mom: 0.9, eps: 1.0e-5, cbs: [weight_decay, {type: "
        "average_grad, dampening: true}, average_sqr_grad, step_stat, adam_step]}",
        "{lr: 0.02, wd: 0.0, mom: 0.9, eps: 1.0e-5, cbs: [weight_decay, {type: "
        "average_grad, dampening: true}, average_sqr_grad, step_stat, adam_step]}"};
    fixture a, b;
    fix_make(&a, "fastai.Adam", 3, nd, sh, 2, adam, 9);
    fix_make(&b, "fastai.Optimizer", 3, nd, sh, 2, list, 9);
    ow_optimizer_set_threads(b.opt, 2, NULL);
    ow_error err;
    ow_error_clear(&err);
    for (int step = 0; step < 3; step++) {
        fix_grads(&a, 40 + (unsigned)step);
        fix_grads(&b, 40 + (unsigned)step);
        ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
        ow_check_ok(ow_optimizer_step(b.opt, &err), &err);
    }
    fix_expect_same(&a, &b, 0, "fastai.Optimizer against fastai.Adam");
    fix_free(&a);
    fix_free(&b);
}
END_TEST

/* A hyperparameter a callback reads must be given, or defaulted by a callback named
 * bare: fastai's partial(average_grad, ...) carries no `mom`. */
START_TEST(optimizer_refuses_missing_hyper)
{
    ow_cfg *cfg;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_load_string("type: fastai.Optimizer\nlr: 0.1\ncbs: [{type: "
                                   "average_grad, dampening: true}, momentum_step]\n",
                                   "<opt>", &cfg, &err),
                &err);
    const ow_entry *e = ow_registry_find(OW_KIND_OPTIMIZER, "fastai.Optimizer");
    ck_assert_ptr_nonnull(e);
    int rc = ow__optimizer_check_config(e, cfg, "optimizer", &err);
    ow_check_error(
        &err, OW_ERR_VALUE, "<opt>", 1, 1,
        "optimizer (Optimizer): cbs[0]: average_grad reads 'mom', which is not "
        "given (only callbacks named bare bring fastai's defaults)");
    ck_assert_int_eq(rc, OW_ERR_VALUE);
    ow_cfg_free(cfg);
}
END_TEST

static Suite *make_fastai_suite(void)
{
    Suite *s = suite_create("fastai");
    TCase *tr = tcase_create("Reductions");
    tcase_add_loop_test(tr, reductions_in_torch_order, 0, OW__ARRAY_LEN(reductions));
    suite_add_tcase(s, tr);
    TCase *tv = tcase_create("Variants");
    tcase_add_loop_test(tv, trajectories_bit_exact, 0, OW__ARRAY_LEN(trajectories));
    suite_add_tcase(s, tv);
    TCase *tc = tcase_create("Callbacks");
    tcase_add_test(tc, cbs_build_fastai_adam);
    tcase_add_test(tc, cbs_options_and_optional_state);
    tcase_add_loop_test(tc, cbs_refused_with_position, 0, OW__ARRAY_LEN(refusals));
    tcase_add_test(tc, optimizer_list_equals_preset);
    tcase_add_test(tc, optimizer_refuses_missing_hyper);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(make_fastai_suite());
}
