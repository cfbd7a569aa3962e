/* check_sched.c -- parameter schedulers: every golden schedule replayed exactly,
 * chaining worked out by hand, the base_param_settings group over real param groups,
 * timm's lr_scale and step calls, the plateau schedulers, and every built-in entry.
 * Errors, warnings, saved state and allocation failures: check_sched_state.c. */
#include "sched_test.h"

#include <math.h>
#include <string.h>

/* ---- golden recordings ----------------------------------------------------------------
 */

static const char *const golden_cases[] = {
    "mmengine/constant.json",
    "mmengine/cosine_momentum_adamw.json",
    "mmengine/cosine_restart.json",
    "mmengine/exponential.json",
    "mmengine/linear_warmup_cosine_chain.json",
    "mmengine/linear_warmup_cosine_nooverlap.json",
    "mmengine/multistep_iter.json",
    "mmengine/onecycle_three_phase_linear.json",
    "mmengine/poly_epoch.json",
    "mmengine/step_converted.json",
    "mmpretrain/cosine_weight_decay_iter.json",
    "mmpretrain/cosine_weight_decay_ratio_restart.json",
    "mmpretrain/cosine_weight_decay_spark.json",
    "timm/cosine_cycle_mul_updates.json",
    "timm/cosine_warmup_epochs.json",
    "timm/multistep_epochs.json",
    "timm/step_epochs.json",
};

START_TEST(golden_schedules_replay_exactly)
{
    ow_cfg *golden = sched_golden(golden_cases[_i]);
    ow_error err;
    ow_error_clear(&err);
    char msg[512];
    double max_err = -1;
    ow_check_ok(ow_sched_replay(golden, &max_err, msg, sizeof msg, &err), &err);
    ck_assert_msg(max_err >= 0 && max_err <= 1e-12, "%s: %s", golden_cases[_i], msg);
    ck_assert_msg(strstr(msg, "values match"), "%s", msg);
    ow_cfg_free(golden);
}
END_TEST

START_TEST(replay_reports_a_mismatch_with_its_place)
{
    ow_cfg *golden = sched_golden("mmengine/exponential.json");
    /* one recorded value off by one part in 1e9 */
    ow_cfg *row = (ow_cfg *)ow_cfg_find(golden, "lr.7");
    row->v.c.items[1]->v.d *= 1 + 1e-9;
    ow_error err;
    ow_error_clear(&err);
    char msg[512];
    double max_err;
    ck_assert_int_eq(ow_sched_replay(golden, &max_err, msg, sizeof msg, &err),
                     OW_ERR_VALUE);
    ck_assert_msg(!strncmp(msg, "lr[7][1]: expected ", 19), "%s", msg);
    ck_assert_str_eq(err.message, msg);
    ck_assert_int_gt(err.line, 0);
    ck_assert(max_err > 1e-10);
    ow_cfg_free(golden);
}
END_TEST

/* A golden whose epoch_length x max_epochs overflows int64_t is malformed, not UB. */
START_TEST(replay_refuses_an_overflowing_run)
{
    ow_cfg *golden = sched_golden("mmengine/exponential.json");
    ow_cfg *length = (ow_cfg *)ow_cfg_find(golden, "epoch_length");
    ow_cfg *epochs = (ow_cfg *)ow_cfg_find(golden, "max_epochs");
    ck_assert(length && length->type == OW_CFG_INT && epochs &&
              epochs->type == OW_CFG_INT);
    length->v.i = (int64_t)1 << 40;
    epochs->v.i = (int64_t)1 << 30;
    ow_error err;
    ow_error_clear(&err);
    char msg[512];
    double max_err;
    ck_assert_int_eq(ow_sched_replay(golden, &max_err, msg, sizeof msg, &err),
                     OW_ERR_VALUE);
    ck_assert_str_eq(err.message,
                     "golden file: epoch_length, max_epochs, total_iters or lr missing");
    ow_cfg_free(golden);
}
END_TEST

/* ---- chaining
 * ------------------------------------------------------------------------------ */

/* SEMANTICS.md 6.4: LinearLR(0.1, 0..4) then CosineAnnealingLR(4..10), iter-based. */
START_TEST(warmup_then_cosine_worked_example)
{
    static const double want[] = {0.01,  0.04, 0.07,  0.1,        0.1,        0.0933013,
                                  0.075, 0.05, 0.025, 0.00669873, 0.00669873, 0.00669873};
    ow_cfg *cfg =
        sched_load("param_scheduler:\n"
                   "  - {type: LinearLR, start_factor: 0.1, by_epoch: false, begin: 0,"
                   " end: 4}\n"
                   "  - {type: CosineAnnealingLR, eta_min: 0, by_epoch: false, begin: 4,"
                   " end: 10}\n");
    plain p = {.n = 2, .lr = {0.1, 0.01}};
    ow_sched_target t = plain_target(&p);
    ow_sched_loop loop = {.max_iters = 12};
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_new(cfg, &t, &loop, &s, &err), &err);
    for (size_t i = 0; i < OW__ARRAY_LEN(want); i++) {
        ck_assert_double_eq_tol(p.lr[0], want[i], 1e-7);
        ck_assert_double_eq_tol(p.lr[1] * 10, p.lr[0], 1e-15);
        ow_check_ok(ow_sched_step_iter(s, &err), &err);
    }
    ck_assert_uint_eq(ow_sched_get_num_warnings(s), 0);
    ow_sched_free(s);
    ow_cfg_free(cfg);
}
END_TEST

/* Overlapping windows multiply: worked out by hand. LinearLR(0.5 -> 1 over 0..3) and
 * ExponentialLR(0.5 over 1..4) both act at iteration 2. */
START_TEST(overlapping_windows_multiply)
{
    static const double want[] = {0.5, 0.75, 0.5, 0.25, 0.25, 0.25};
    ow_cfg *cfg =
        sched_load("param_scheduler:\n"
                   "  - {type: LinearLR, start_factor: 0.5, by_epoch: false, end: 3}\n"
                   "  - {type: ExponentialLR, gamma: 0.5, by_epoch: false, begin: 1,"
                   " end: 4}\n");
    plain p = {.n = 1, .lr = {1.0}};
    ow_sched_target t = plain_target(&p);
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_new(cfg, &t, NULL, &s, &err), &err);
    for (size_t i = 0; i < OW__ARRAY_LEN(want); i++) {
        ck_assert_double_eq_tol(p.lr[0], want[i], 1e-15);
        ow_check_ok(ow_sched_step_iter(s, &err), &err);
    }
    ck_assert_uint_eq(ow_sched_get_num_warnings(s), 1);
    ck_assert_str_eq(
        ow_sched_get_warning(s, 0)->message,
        "param_scheduler.1 (ExponentialLR) and param_scheduler.0 (LinearLR) both "
        "change 'lr' at iteration 2: chained schedulers multiply there, which is "
        "rarely intended (let one begin where the other ends)");
    ck_assert_int_eq(ow_sched_get_warning(s, 0)->line, 3);
    ow_sched_free(s);
    ow_cfg_free(cfg);
}
END_TEST

/* An epoch-based scheduler's step lands on the first iteration of the next epoch; the
 * runner's `end` default follows by_epoch; momentum and lr chains are independent. */
START_TEST(epoch_steps_and_end_defaults)
{
    ow_cfg *cfg =
        sched_load("param_scheduler:\n"
                   "  - {type: StepLR, step_size: 1, gamma: 0.5}\n"
                   "  - {type: ConstantMomentum, factor: 0.5, by_epoch: false}\n");
    plain p = {.n = 1, .lr = {1.0}, .momentum = {0.8}, .has_momentum = true};
    ow_sched_target t = plain_target(&p);
    ow_sched_loop loop = {.epoch_length = 3, .max_epochs = 2};
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_new(cfg, &t, &loop, &s, &err), &err);
    ow_sched_info info;
    ow_check_ok(ow_sched_get_info(s, 0, &info), &err);
    ck_assert(info.by_epoch && info.begin == 0 && info.end == 2);
    ck_assert(info.begin_iter == 0 && info.end_iter == 6);
    ow_check_ok(ow_sched_get_info(s, 1, &info), &err);
    ck_assert(!info.by_epoch && info.end == 6 && !strcmp(info.param, "momentum"));
    ck_assert_uint_eq(ow_sched_get_num_params(s), 2);
    ck_assert_str_eq(ow_sched_get_param(s, 0), "lr");
    ck_assert_str_eq(ow_sched_get_param(s, 1), "momentum");
    static const double lr[] = {1, 1, 1, 0.5, 0.5, 0.5, 0.5};
    static const double mom[] = {0.4, 0.4, 0.4, 0.4, 0.4, 0.8, 0.8};
    for (int i = 0; i < 7; i++) {
        ck_assert_double_eq(p.lr[0], lr[i]);
        ck_assert_double_eq_tol(p.momentum[0], mom[i], 1e-15);
        ow_check_ok(ow_sched_step_iter(s, &err), &err);
        if ((i + 1) % 3 == 0)
            ow_check_ok(ow_sched_step_epoch(s, NULL, &err), &err);
    }
    ow_sched_free(s);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(no_param_scheduler_is_an_empty_schedule)
{
    ow_cfg *cfg = sched_load("optim_wrapper: {optimizer: {type: SGD, lr: 0.1}}\n");
    plain p = {.n = 1, .lr = {0.1}};
    ow_sched_target t = plain_target(&p);
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_new(cfg, &t, NULL, &s, &err), &err);
    ck_assert_uint_eq(ow_sched_get_count(s), 0);
    ow_check_ok(ow_sched_step_iter(s, &err), &err);
    ow_check_ok(ow_sched_step_epoch(s, NULL, &err), &err);
    ck_assert_double_eq(p.lr[0], 0.1);
    ck_assert_int_eq(ow_sched_step_timm(s, 1, NULL, &err), OW_ERR_MISUSE);
    ow_sched_free(s);
    ow_cfg_free(cfg);
}
END_TEST

/* An iteration-based run from train_cfg, when the caller does not say. */
START_TEST(run_from_train_cfg)
{
    ow_cfg *cfg = sched_load("train_cfg: {type: IterBasedTrainLoop, max_iters: 1000}\n"
                             "param_scheduler: [{type: LinearLR, by_epoch: false}]\n");
    plain p = {.n = 1, .lr = {0.1}};
    ow_sched_target t = plain_target(&p);
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_new(cfg, &t, NULL, &s, &err), &err);
    ow_sched_loop l = ow_sched_get_loop(s);
    ck_assert(l.max_iters == 1000 && l.max_epochs == 0);
    ow_sched_info info;
    ow_check_ok(ow_sched_get_info(s, 0, &info), &err);
    ck_assert_double_eq(info.end, 1000);
    ow_sched_free(s);
    ow_cfg_free(cfg);
    cfg = sched_load("train_cfg: {by_epoch: true, max_epochs: 7}\n"
                     "param_scheduler: [{type: LinearLR}]\n");
    ow_sched_loop given = {.epoch_length = 3};
    ow_check_ok(ow_sched_new(cfg, &t, &given, &s, &err), &err);
    l = ow_sched_get_loop(s);
    ck_assert(l.max_epochs == 7 && l.max_iters == 21 && l.epoch_length == 3);
    ow_sched_free(s);
    ow_cfg_free(cfg);
}
END_TEST

/* ---- the base_param_settings group over real param groups
 * --------------------------------- */

static const char tiny_model[] = "format: optwrap-model/1\n"
                                 "name: tiny\n"
                                 "modules:\n"
                                 "  - {name: '', type: Net}\n"
                                 "  - name: fc\n"
                                 "    type: Linear\n"
                                 "    kind: linear\n"
                                 "    params:\n"
                                 "      - {name: weight, shape: [2, 2]}\n"
                                 "      - {name: bias, shape: [2]}\n";

static double group_value(const ow_groups *g, size_t i, const char *path)
{
    double v = NAN;
    ow_cfg_get_double(ow_cfg_find(ow_groups_get_options(g, i), path), &v, NULL);
    return v;
}

/* The golden onecycle case again, over groups built from a config and a model: two
 * groups (lr 0.1 and 0.05) plus the base group, stepped in place. */
START_TEST(base_group_is_stepped_with_real_groups)
{
    ow_cfg *golden = sched_golden("mmengine/onecycle_three_phase_linear.json");
    ow_cfg *cfg = sched_load(
        "optim_wrapper:\n"
        "  optimizer: {type: SGD, lr: 0.1, momentum: 0.9}\n"
        "  paramwise_cfg: {custom_keys: {bias: {lr_mult: 0.5}}}\n"
        "param_scheduler:\n"
        "  - {type: OneCycleLR, eta_max: [0.5, 0.25, 0.5], by_epoch: false, begin: 0,"
        " end: 50, pct_start: 0.25, anneal_strategy: linear, three_phase: true}\n");
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    ow_groups *g = NULL;
    ow_sched_target *t = NULL;
    ow_sched *s = NULL;
    ow_check_ok(ow_model_load_string(tiny_model, "tiny.yaml", &m, &err), &err);
    ow_check_ok(ow_groups_build(cfg, m, &g, &err), &err);
    ow_check_ok(ow_sched_target_new(cfg, g, &t, &err), &err);
    ck_assert_uint_eq(t->num_groups, 3);
    ck_assert(t->has_base_group);
    ow_sched_loop loop = {.epoch_length = 5, .max_epochs = 10};
    ow_check_ok(ow_sched_new(cfg, t, &loop, &s, &err), &err);
    for (int k = 0; k <= 50; k++) {
        char path[32];
        double want[3], base;
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "lr.%d.%d", k, i);
            ow_check_ok(ow_cfg_get_double(ow_cfg_find(golden, path), &want[i], &err),
                        &err);
        }
        ck_assert_double_eq(group_value(g, 0, "lr"), want[0]);
        ck_assert_double_eq(group_value(g, 1, "lr"), want[1]);
        ck_assert(t->get(t->ctx, 2, "lr", &base));
        ck_assert_double_eq(base, want[2]);
        if (k < 50)
            ow_check_ok(ow_sched_step_iter(s, &err), &err);
        if (k < 50 && (k + 1) % 5 == 0)
            ow_check_ok(ow_sched_step_epoch(s, NULL, &err), &err);
    }
    ow_sched_free(s);
    ow_sched_target_free(t);
    ow_groups_free(g);
    ow_model_free(m);
    ow_cfg_free(cfg);
    ow_cfg_free(golden);
}
END_TEST

/* mmengine's momentum schedulers drive betas[0] of Adam-style optimizers; one group
 * means no base group. */
START_TEST(momentum_drives_betas_without_base_group)
{
    ow_cfg *cfg =
        sched_load("optim_wrapper:\n"
                   "  optimizer: {type: AdamW, lr: 0.1, betas: [0.9, 0.999]}\n"
                   "param_scheduler:\n"
                   "  - {type: CosineAnnealingMomentum, eta_min: 0.85, begin: 0, end: 10,"
                   " convert_to_iter_based: true}\n");
    ow_cfg *golden = sched_golden("mmengine/cosine_momentum_adamw.json");
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    ow_groups *g = NULL;
    ow_sched_target *t = NULL;
    ow_sched *s = NULL;
    ow_check_ok(ow_model_load_string(tiny_model, "tiny.yaml", &m, &err), &err);
    ow_check_ok(ow_groups_build(cfg, m, &g, &err), &err);
    ck_assert_uint_eq(ow_groups_get_count(g), 1);
    ow_check_ok(ow_sched_target_new(cfg, g, &t, &err), &err);
    ck_assert_uint_eq(t->num_groups, 1);
    ck_assert(!t->has_base_group);
    ow_sched_loop loop = {.epoch_length = 5, .max_epochs = 10};
    ow_check_ok(ow_sched_new(cfg, t, &loop, &s, &err), &err);
    for (int k = 0; k <= 50; k++) {
        char path[32];
        double want;
        snprintf(path, sizeof path, "momentum.%d.0", k);
        ow_check_ok(ow_cfg_get_double(ow_cfg_find(golden, path), &want, &err), &err);
        ck_assert_double_eq(group_value(g, 0, "betas.0"), want);
        ck_assert_double_eq(group_value(g, 0, "betas.1"), 0.999);
        ck_assert_double_eq(group_value(g, 0, "lr"), 0.1);
        if (k < 50)
            ow_check_ok(ow_sched_step_iter(s, &err), &err);
    }
    ow_sched_free(s);
    ow_sched_target_free(t);
    ow_groups_free(g);
    ow_model_free(m);
    ow_cfg_free(golden);
    ow_cfg_free(cfg);
}
END_TEST

/* Without groups, the target is the optimizer's defaults alone (optwrap schedule). */
START_TEST(target_of_config_alone)
{
    ow_cfg *cfg = sched_load("optim_wrapper: {optimizer: {type: SGD, lr: 0.2}}\n");
    ow_error err;
    ow_error_clear(&err);
    ow_sched_target *t = NULL;
    ow_check_ok(ow_sched_target_new(cfg, NULL, &t, &err), &err);
    ck_assert_uint_eq(t->num_groups, 1);
    double v;
    ck_assert(t->get(t->ctx, 0, "lr", &v) && v == 0.2);
    ck_assert(t->get(t->ctx, 0, "momentum", &v) && v == 0); /* SGD's default */
    ck_assert(!t->get(t->ctx, 0, "betas", &v));
    ck_assert(!t->get(t->ctx, 0, "nothing", &v));
    t->set(t->ctx, 0, "momentum", 0.5);
    ck_assert(t->get(t->ctx, 0, "momentum", &v) && v == 0.5);
    ow_sched_target_free(t);
    ow_sched_target_free(NULL);
    ow_cfg_free(cfg);
}
END_TEST

/* ---- timm
 * -------------------------------------------------------------------------------- */

/* layer decay: what timm writes is the scheduled value times the group's lr_scale. */
START_TEST(timm_applies_lr_scale)
{
    ow_cfg *cfg =
        sched_load("param_scheduler: {type: CosineLRScheduler, t_initial: 10}\n");
    plain p = {.n = 2, .lr = {0.1, 0.1}, .lr_scale = {1.0, 0.5}, .has_scale = true};
    ow_sched_target t = plain_target(&p);
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_new(cfg, &t, NULL, &s, &err), &err);
    ck_assert_double_eq(p.lr[0], 0.1);
    ck_assert_double_eq(p.lr[1], 0.05); /* initial_lr 0.1 times 0.5 at once */
    ow_check_ok(ow_sched_step_timm(s, 5, NULL, &err), &err);
    ck_assert_double_eq_tol(p.lr[0], 0.05, 1e-15);
    ck_assert_double_eq_tol(p.lr[1], 0.025, 1e-15);
    /* t_in_epochs: updates do nothing */
    ow_check_ok(ow_sched_step_timm_update(s, 9, NULL, &err), &err);
    ow_check_ok(ow_sched_step_iter(s, &err), &err);
    ck_assert_double_eq_tol(p.lr[0], 0.05, 1e-15);
    ow_check_ok(ow_sched_step_timm(s, 10, NULL, &err), &err);
    ck_assert_double_eq(p.lr[0], 0.0); /* timm's cosine reaches lr_min at t_initial */
    ow_sched_free(s);
    ow_cfg_free(cfg);
}
END_TEST

/* Closed forms worked out from timm's formulas at a few t. */
START_TEST(timm_tanh_poly_step_values)
{
    struct {
        const char *cfg;
        double t, want;
    } cases[] = {
        {"{type: TanhLRScheduler, t_initial: 10}", 0, 0.05 * (1 - tanh(-7.0))},
        {"{type: TanhLRScheduler, t_initial: 10}", 5, 0.05 * (1 - tanh(-2.0))},
        {"{type: PolyLRScheduler, t_initial: 10}", 5, 0.1 * sqrt(0.5)},
        {"{type: PolyLRScheduler, t_initial: 10, power: 2, lr_min: 0.01}", 8,
         0.01 + 0.09 * pow(0.2, 2)},
        {"{type: StepLRScheduler, decay_t: 3, decay_rate: 0.5}", 7, 0.025},
        {"{type: StepLRScheduler, decay_t: 3, decay_rate: 0.5, warmup_t: 2, "
         "warmup_lr_init: 0.0}",
         1, 0.05},
        {"{type: StepLRScheduler, decay_t: 3, decay_rate: 0.5, warmup_t: 2}", 5, 0.05},
        {"{type: MultiStepLRScheduler, decay_t: [4, 6], decay_rate: 0.1}", 3, 0.1 * 0.1},
        {"{type: CosineLRScheduler, t_initial: 4, cycle_limit: 2, cycle_decay: 0.5}", 6,
         0.5 * 0.05 * (1 + cos(M_PI * 2 / 4))},
    };
    for (size_t i = 0; i < OW__ARRAY_LEN(cases); i++) {
        char text[256];
        snprintf(text, sizeof text, "param_scheduler: %s\n", cases[i].cfg);
        ow_cfg *cfg = sched_load(text);
        plain p = {.n = 1, .lr = {0.1}};
        ow_sched_target t = plain_target(&p);
        ow_sched *s = NULL;
        ow_error err;
        ow_error_clear(&err);
        ow_check_ok(ow_sched_new(cfg, &t, NULL, &s, &err), &err);
        ow_check_ok(ow_sched_step_timm(s, (int64_t)cases[i].t, NULL, &err), &err);
        ck_assert_msg(fabs(p.lr[0] - cases[i].want) <= 1e-15 * cases[i].want,
                      "%s at t=%g: %.17g, want %.17g", cases[i].cfg, cases[i].t, p.lr[0],
                      cases[i].want);
        ow_sched_free(s);
        ow_cfg_free(cfg);
    }
}
END_TEST

/* timm's PlateauLRScheduler wraps torch's ReduceLROnPlateau: mode min, patience 1. */
START_TEST(timm_plateau_reduces_on_metric)
{
    ow_cfg *cfg = sched_load("param_scheduler: {type: PlateauLRScheduler, mode: min,"
                             " patience_t: 1, decay_rate: 0.5, lr_min: 0.02}\n");
    plain p = {.n = 2, .lr = {0.1, 0.05}};
    ow_sched_target t = plain_target(&p);
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_new(cfg, &t, NULL, &s, &err), &err);
    static const double metric[] = {1.0, 1.0, 1.0, 0.5, 0.6, 0.7, 0.8};
    static const double lr0[] = {0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025};
    static const double lr1[] = {0.05, 0.05, 0.025, 0.025, 0.025, 0.02, 0.02};
    for (size_t e = 0; e < OW__ARRAY_LEN(metric); e++) {
        ow_check_ok(ow_sched_step_epoch(s, &metric[e], &err), &err);
        ck_assert_double_eq_tol(p.lr[0], lr0[e], 1e-15);
        ck_assert_double_eq_tol(p.lr[1], lr1[e], 1e-15);
    }
    /* without a metric it holds (timm would raise) */
    ow_check_ok(ow_sched_step_epoch(s, NULL, &err), &err);
    ck_assert_double_eq_tol(p.lr[0], 0.025, 1e-15);
    ow_sched_free(s);
    ow_cfg_free(cfg);
}
END_TEST

/* The factory's epochs become the run when nothing else says how long it is. */
START_TEST(timm_factory_sets_the_run)
{
    ow_cfg *cfg =
        sched_load("param_scheduler: {type: timm.create_scheduler_v2, sched: cosine,"
                   " num_epochs: 20, warmup_epochs: 2, warmup_prefix: true,"
                   " cooldown_epochs: 3}\n");
    plain p = {.n = 1, .lr = {0.1}};
    ow_sched_target t = plain_target(&p);
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_sched_loop loop = {.epoch_length = 10};
    ow_check_ok(ow_sched_new(cfg, &t, &loop, &s, &err), &err);
    ow_sched_loop l = ow_sched_get_loop(s);
    ck_assert_int_eq(l.max_epochs, 25); /* 20 + warmup prefix 2 + cooldown 3 */
    ck_assert_int_eq(l.max_iters, 250);
    ow_sched_info info;
    ow_check_ok(ow_sched_get_info(s, 0, &info), &err);
    ck_assert_str_eq(info.type, "CosineLRScheduler");
    ck_assert(info.by_epoch);
    ck_assert_double_eq(p.lr[0], 1e-05); /* warmup_lr */
    ow_sched_free(s);
    ow_cfg_free(cfg);
}
END_TEST

/* ---- mmengine's ReduceOnPlateau
 * ------------------------------------------------------------ */

START_TEST(reduce_on_plateau_follows_validation)
{
    ow_cfg *cfg = sched_load("param_scheduler:\n"
                             "  - {type: ReduceOnPlateauLR, monitor: acc, rule: greater,"
                             " patience: 0, factor: 0.5, min_value: 0.03}\n");
    plain p = {.n = 1, .lr = {0.1}};
    ow_sched_target t = plain_target(&p);
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_new(cfg, &t, NULL, &s, &err), &err);
    const char *names[] = {"loss", "acc"};
    static const double acc[] = {0.5, 0.4, 0.4, 0.4, 0.6};
    static const double want[] = {0.1, 0.05, 0.03, 0.03, 0.03};
    for (size_t e = 0; e < OW__ARRAY_LEN(acc); e++) {
        double values[] = {1.0, acc[e]};
        ow_check_ok(ow_sched_step_epoch(s, NULL, &err), &err);
        ow_check_ok(ow_sched_step_val(s, names, values, 2, &err), &err);
        ck_assert_double_eq_tol(p.lr[0], want[e], 1e-15);
    }
    /* a metric it does not monitor: refused, nothing changes */
    double loss = 1.0;
    ow_error_clear(&err);
    ck_assert_int_eq(ow_sched_step_val(s, names, &loss, 1, &err), OW_ERR_VALUE);
    ow_check_error(&err, OW_ERR_VALUE, "t.yaml", 2, 5,
                   "param_scheduler.0 (ReduceOnPlateauLR): expected key 'acc' among the "
                   "validation metrics ['loss'], but it is not there");
    ow_sched_free(s);
    ow_cfg_free(cfg);
}
END_TEST

/* ---- every entry
 * ----------------------------------------------------------------------------- */

/* Builds each built-in entry with its required keys and runs it over a short run. */
static const ow_entry *sched_entries[64];

START_TEST(every_entry_builds_and_steps)
{
    const ow_entry *e = sched_entries[_i];
    ck_assert_ptr_nonnull(ow_registry_find(OW_KIND_SCHEDULER, e->name));
    ck_assert_ptr_nonnull(e->summary);
    ck_assert(e->summary[0] != '\0');
    ck_assert_ptr_nonnull(e->keys);
    char text[512];
    int len =
        snprintf(text, sizeof text, "param_scheduler: {type: %s.%s", e->scope, e->name);
    static const struct {
        const char *key, *value;
    } required[] = {
        {"step_size", "2"},
        {"milestones", "[2, 4]"},
        {"gamma", "0.9"},
        {"periods", "[3, 3]"},
        {"restart_weights", "[1, 0.5]"},
        {"eta_min", "0.001"},
        {"param_name", "lr"},
        {"t_initial", "5"},
        {"decay_t", "[2]"},
        {"eta_max", "0.5"},
    };
    for (size_t i = 0; i < OW__ARRAY_LEN(required); i++) {
        const ow_key *k = ow__schema_find(e->keys, required[i].key);
        if (!k)
            continue;
        const char *value = required[i].value;
        if (!strcmp(k->name, "decay_t") && k->type != OW_T_NUMLIST)
            value = "2";
        len +=
            snprintf(text + len, sizeof text - (size_t)len, ", %s: %s", k->name, value);
    }
    snprintf(text + len, sizeof text - (size_t)len, "}\n");
    ow_cfg *cfg = sched_load(text);
    plain p = {.n = 2,
               .lr = {0.1, 0.05},
               .momentum = {0.9, 0.9},
               .weight_decay = {0.05, 0.0},
               .has_momentum = true,
               .has_wd = true};
    ow_sched_target t = plain_target(&p);
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_sched_loop loop = {.epoch_length = 2, .max_epochs = 5};
    ow_check_ok(ow_sched_new(cfg, &t, &loop, &s, &err), &err);
    for (int i = 0; i < 10; i++) {
        ow_check_ok(ow_sched_step_iter(s, &err), &err);
        if (i % 2 == 1) {
            double metric = 1.0;
            const char *name = "loss";
            ow_check_ok(ow_sched_step_epoch(s, &metric, &err), &err);
            ow_check_ok(ow_sched_step_val(s, &name, &metric, 1, &err), &err);
        }
        ck_assert_msg(isfinite(p.lr[0]) && isfinite(p.momentum[0]) &&
                          isfinite(p.weight_decay[0]) && p.weight_decay[1] == 0,
                      "%s", e->name);
    }
    ow_sched_free(s);
    ow_cfg_free(cfg);
}
END_TEST

static Suite *make_sched_suite(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("Golden");
    tcase_add_loop_test(tc, golden_schedules_replay_exactly, 0,
                        (int)OW__ARRAY_LEN(golden_cases));
    tcase_add_test(tc, replay_reports_a_mismatch_with_its_place);
    tcase_add_test(tc, replay_refuses_an_overflowing_run);
    suite_add_tcase(s, tc);
    tc = tcase_create("Chain");
    tcase_add_test(tc, warmup_then_cosine_worked_example);
    tcase_add_test(tc, overlapping_windows_multiply);
    tcase_add_test(tc, epoch_steps_and_end_defaults);
    tcase_add_test(tc, no_param_scheduler_is_an_empty_schedule);
    tcase_add_test(tc, run_from_train_cfg);
    suite_add_tcase(s, tc);
    tc = tcase_create("Groups");
    tcase_add_test(tc, base_group_is_stepped_with_real_groups);
    tcase_add_test(tc, momentum_drives_betas_without_base_group);
    tcase_add_test(tc, target_of_config_alone);
    suite_add_tcase(s, tc);
    tc = tcase_create("Timm");
    tcase_add_test(tc, timm_applies_lr_scale);
    tcase_add_test(tc, timm_tanh_poly_step_values);
    tcase_add_test(tc, timm_plateau_reduces_on_metric);
    tcase_add_test(tc, timm_factory_sets_the_run);
    suite_add_tcase(s, tc);
    tc = tcase_create("Plateau");
    tcase_add_test(tc, reduce_on_plateau_follows_validation);
    suite_add_tcase(s, tc);
    tc = tcase_create("Entries");
    size_t n = 0;
    for (const ow_entry *const *e = ow__builtins; *e; e++)
        if ((*e)->kind == OW_KIND_SCHEDULER && n < OW__ARRAY_LEN(sched_entries))
            sched_entries[n++] = *e;
    tcase_add_loop_test(tc, every_entry_builds_and_steps, 0, (int)n);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(make_sched_suite());
}
