/* check_sched_state.c -- parameter schedulers, the other half: every bad config on
 * disk (tests/bad/sched) with its exact message and position, the warnings, errors at
 * step time, a saved state that continues exactly, and allocation failures. */
#include "sched_test.h"

#include <string.h>

/* ---- bad configs
 * ------------------------------------------------------------------------ */

/* tests/bad/sched/<name>/{config.yaml, expected}: the config gets a one-group target and
 * a run of 10 epochs of 5 iterations (epochs without an epoch length where the case is
 * about it). `expected` is "config.yaml:line:column: message". */
static const struct {
    const char *name;
    int code;
} bad_cases[] = {
    {"begin_after_run", OW_ERR_VALUE},
    {"convert_not_by_epoch", OW_ERR_VALUE},
    {"convert_without_epoch_length", OW_ERR_VALUE},
    {"cosine_both_eta", OW_ERR_VALUE},
    {"empty_converted_window", OW_ERR_VALUE},
    {"end_before_begin", OW_ERR_VALUE},
    {"factor_out_of_range", OW_ERR_RANGE},
    {"item_not_map", OW_ERR_TYPE},
    {"list_not_list", OW_ERR_TYPE},
    {"milestones_not_list", OW_ERR_TYPE},
    {"missing_type", OW_ERR_MISSING_KEY},
    {"negative_begin", OW_ERR_RANGE},
    {"onecycle_eta_max_length", OW_ERR_VALUE},
    {"onecycle_int_pct_start", OW_ERR_VALUE},
    {"onecycle_momentum", OW_ERR_VALUE},
    {"onecycle_strategy", OW_ERR_VALUE},
    {"param_name_missing", OW_ERR_MISSING_KEY},
    {"param_unknown", OW_ERR_VALUE},
    {"plateau_by_iter", OW_ERR_VALUE},
    {"plateau_rule", OW_ERR_VALUE},
    {"restart_lengths", OW_ERR_VALUE},
    {"restart_without_eta", OW_ERR_VALUE},
    {"resume_without_earlier", OW_ERR_VALUE},
    {"step_size_missing", OW_ERR_MISSING_KEY},
    {"timm_factor_range", OW_ERR_RANGE},
    {"timm_noise", OW_ERR_UNSUPPORTED},
    {"timm_not_alone", OW_ERR_VALUE},
    {"timm_plateau_mode", OW_ERR_VALUE},
    {"timm_tanh_bounds", OW_ERR_VALUE},
    {"timm_unknown_sched", OW_ERR_VALUE},
    {"timm_updates_unknown", OW_ERR_VALUE},
    {"unknown_key", OW_ERR_UNKNOWN_KEY},
    {"unknown_type", OW_ERR_UNKNOWN_TYPE},
};

START_TEST(bad_config_errors)
{
    const char *name = bad_cases[_i].name;
    char path[1024];
    snprintf(path, sizeof path, "%s/sched/%s/config.yaml", OW_TEST_BAD, name);
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    ow_check_ok(ow_cfg_load(path, &cfg, &err), &err);
    snprintf(path, sizeof path, "%s/sched/%s/expected", OW_TEST_BAD, name);
    char *expected = ow_test_slurp(path);
    expected[strcspn(expected, "\n")] = '\0';
    ow_sched_target *t = NULL;
    ow_check_ok(ow_sched_target_new(cfg, NULL, &t, &err), &err);
    double lr_before;
    ck_assert(t->get(t->ctx, 0, "lr", &lr_before));
    bool no_length =
        strstr(name, "without_epoch_length") || strstr(name, "updates_unknown");
    ow_sched_loop loop = {.epoch_length = no_length ? 0 : 5, .max_epochs = 10};
    ow_sched *s = (ow_sched *)1;
    int rc = ow_sched_new(cfg, t, &loop, &s, &err);
    ck_assert_int_eq(rc, bad_cases[_i].code);
    ck_assert_int_eq(err.code, bad_cases[_i].code);
    ck_assert_ptr_null(s);
    char got[1024];
    ow_error_format(&err, got, sizeof got);
    size_t lg = strlen(got), le = strlen(expected);
    ck_assert_msg(lg >= le && strcmp(got + lg - le, expected) == 0 &&
                      got[lg - le - 1] == '/',
                  "%s: expected '.../%s', got '%s'", name, expected, got);
    double lr_after;
    ck_assert(t->get(t->ctx, 0, "lr", &lr_after) && lr_after == lr_before);
    /* ow_sched_check finds the same problems, except those that need groups or the run */
    ow_error check_err;
    ow_error_clear(&check_err);
    rc = ow_sched_check(cfg, &check_err);
    ck_assert(rc == OW_OK || (rc == bad_cases[_i].code && check_err.line == err.line &&
                              !strcmp(check_err.message, err.message)));
    ow_free(expected);
    ow_sched_target_free(t);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(check_validates_without_groups)
{
    ow_cfg *cfg = sched_load("param_scheduler:\n"
                             "  - {type: LinearLR, end: 5, convert_to_iter_based: true}\n"
                             "  - {type: OneCycleLR, eta_max: [1, 2, 3]}\n");
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_check(cfg, &err), &err);
    ow_cfg_free(cfg);
    cfg = sched_load("param_scheduler: [{type: StepLR, step_size: 2, gama: 0.5}]\n");
    ck_assert_int_eq(ow_sched_check(cfg, &err), OW_ERR_UNKNOWN_KEY);
    ow_check_error(&err, OW_ERR_UNKNOWN_KEY, "t.yaml", 1, 54,
                   "param_scheduler.0: unknown key 'gama' (did you mean 'gamma'?)");
    ow_cfg_free(cfg);
}
END_TEST

/* ---- errors when stepping
 * -------------------------------------------------------------------- */

START_TEST(onecycle_refuses_a_step_past_total_steps)
{
    ow_cfg *cfg = sched_load(
        "param_scheduler:\n"
        "  - {type: ExponentialLR, gamma: 0.5, by_epoch: false}\n"
        "  - {type: OneCycleLR, eta_max: 1.0, total_steps: 3, by_epoch: false}\n");
    plain p = {.n = 1, .lr = {0.1}};
    ow_sched_target t = plain_target(&p);
    ow_sched_loop loop = {.max_iters = 10};
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_new(cfg, &t, &loop, &s, &err), &err);
    for (int i = 0; i < 3; i++)
        ow_check_ok(ow_sched_step_iter(s, &err), &err);
    double lr = p.lr[0];
    ck_assert_int_eq(ow_sched_step_iter(s, &err), OW_ERR_VALUE);
    ow_check_error(
        &err, OW_ERR_VALUE, "t.yaml", 3, 5,
        "OneCycleLR: Tried to step 5 times. The specified number of total steps "
        "is 3");
    ck_assert_double_eq(p.lr[0], lr); /* ExponentialLR did not step either */
    ow_sched_free(s);
    ow_cfg_free(cfg);
}
END_TEST

/* A run counts in int64_t and doubles: max_epochs x epoch_length stops at 2^53, from
 * train_cfg (positioned there) or from the caller's loop. */
START_TEST(run_longer_than_2_53_is_refused)
{
    ow_cfg *cfg =
        sched_load("param_scheduler: [{type: ExponentialLR, gamma: 0.5}]\n"
                   "train_cfg: {by_epoch: true, max_epochs: 4611686018427387904}\n");
    plain p = {.n = 1, .lr = {0.1}};
    ow_sched_target t = plain_target(&p);
    ow_sched_loop loop = {.epoch_length = 4};
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow_sched_new(cfg, &t, &loop, &s, &err), OW_ERR_VALUE);
    ck_assert_ptr_null(s);
    ow_check_error(&err, OW_ERR_VALUE, "t.yaml", 2, 41,
                   "the run is longer than 2^53 iterations (max_epochs "
                   "4611686018427387904 x epoch_length 4, max_iters 0)");
    loop = (ow_sched_loop){.epoch_length = (int64_t)1 << 40, .max_epochs = 1 << 14};
    ck_assert_int_eq(ow_sched_new(cfg, &t, &loop, &s, &err), OW_ERR_VALUE);
    ow_check_error(&err, OW_ERR_VALUE, NULL, 0, 0,
                   "the run is longer than 2^53 iterations (max_epochs 16384 x "
                   "epoch_length 1099511627776, max_iters 0)");
    loop.max_epochs = 1 << 13; /* 2^53 itself is a run */
    ow_check_ok(ow_sched_new(cfg, &t, &loop, &s, &err), &err);
    ow_sched_free(s);
    ck_assert_double_eq(p.lr[0], 0.1);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(momentum_needs_momentum_or_betas)
{
    ow_cfg *cfg = sched_load("param_scheduler: [{type: LinearMomentum, end: 3}]\n");
    plain p = {.n = 1, .lr = {0.1}};
    ow_sched_target t = plain_target(&p);
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow_sched_new(cfg, &t, NULL, &s, &err), OW_ERR_VALUE);
    ow_check_error(
        &err, OW_ERR_VALUE, "t.yaml", 1, 19,
        "param_scheduler.0 (LinearMomentum): optimizer must support momentum "
        "when using momentum scheduler (its groups have neither 'momentum' nor "
        "'betas')");
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(misuse_is_refused)
{
    ow_cfg *cfg = sched_load("param_scheduler: []\n");
    plain p = {.n = 0};
    ow_sched_target t = plain_target(&p);
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow_sched_new(cfg, &t, NULL, &s, &err), OW_ERR_MISUSE);
    ck_assert_int_eq(ow_sched_new(cfg, &t, NULL, NULL, NULL), OW_ERR_MISUSE);
    ck_assert_int_eq(ow_sched_step_iter(NULL, NULL), OW_ERR_MISUSE);
    ck_assert_int_eq(ow_sched_load_state(NULL, "{}", NULL), OW_ERR_MISUSE);
    ck_assert_uint_eq(ow_sched_get_num_warnings(NULL), 0);
    ck_assert_ptr_null(ow_sched_get_warning(NULL, 0));
    ow_sched_free(NULL);
    ow_cfg_free(cfg);
}
END_TEST

/* ---- warnings
 * ----------------------------------------------------------------------------------- */

static ow_sched *build_warned(const char *text, ow_sched_loop loop, plain *p)
{
    ow_cfg *cfg = sched_load(text);
    ow_sched_target t = plain_target(p);
    ow_sched *s = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_new(cfg, &t, &loop, &s, &err), &err);
    ow_cfg_free(cfg);
    return s;
}

static const struct {
    const char *config;
    ow_sched_loop loop;
    int code, line, column;
    const char *message; /* NULL: no warning */
} warn_cases[] = {
    /* the golden chain: LinearLR over iterations 0..500, cosine from epoch 1 */
    {"param_scheduler:\n"
     "  - {type: LinearLR, start_factor: 0.001, by_epoch: false, begin: 0, end: 500}\n"
     "  - {type: CosineAnnealingLR, eta_min: 1.0e-5, begin: 1, end: 8,"
     " convert_to_iter_based: true}\n",
     {100, 8, 0},
     OW_ERR_VALUE,
     3,
     5,
     "param_scheduler.1 (CosineAnnealingLR) and param_scheduler.0 (LinearLR) both change "
     "'lr' at iterations 101..499: chained schedulers multiply there, which is rarely "
     "intended (let one begin where the other ends)"},
    /* mmdet's warmup plus epoch milestones: they overlap but never act together */
    {"param_scheduler:\n"
     "  - {type: LinearLR, start_factor: 0.001, by_epoch: false, begin: 0, end: 500}\n"
     "  - {type: MultiStepLR, begin: 0, end: 12, milestones: [8, 11], gamma: 0.1}\n",
     {1000, 12, 0},
     0,
     0,
     0,
     NULL},
    /* ... unless a milestone falls inside the warmup */
    {"param_scheduler:\n"
     "  - {type: LinearLR, start_factor: 0.001, by_epoch: false, begin: 0, end: 500}\n"
     "  - {type: MultiStepLR, milestones: [1, 11], gamma: 0.1}\n",
     {100, 12, 0},
     OW_ERR_VALUE,
     3,
     5,
     "param_scheduler.1 (MultiStepLR) and param_scheduler.0 (LinearLR) both change 'lr' "
     "at "
     "epoch 1: chained schedulers multiply there, which is rarely intended (let one "
     "begin "
     "where the other ends)"},
    {"param_scheduler:\n"
     "  - {type: LinearLR, end: 2}\n"
     "  - {type: CosineAnnealingLR, begin: 20, end: 30}\n",
     {10, 12, 0},
     OW_ERR_VALUE,
     3,
     5,
     "param_scheduler.1 (CosineAnnealingLR) never becomes active: it begins at epoch 20, "
     "but the run has 12 epochs"},
    {"param_scheduler:\n"
     "  - {type: CosineAnnealingLR,\n"
     "     end: 300}\n",
     {10, 100, 0},
     OW_ERR_RANGE,
     3,
     11,
     "param_scheduler (CosineAnnealingLR): end=300 is beyond the run, which has 100 "
     "epochs: it is cut off before reaching its end"},
    {"param_scheduler:\n"
     "  - {type: LinearLR, end: 20, convert_to_iter_based: true}\n",
     {5, 10, 0},
     OW_ERR_RANGE,
     2,
     27,
     "param_scheduler (LinearLR): end=20 is beyond the run, which has 10 epochs: it is "
     "cut "
     "off before reaching its end"},
    {"param_scheduler:\n"
     "  - {type: LinearLR, by_epoch: false, begin: 2000, end: 3000}\n",
     {0, 0, 1000},
     OW_ERR_VALUE,
     2,
     5,
     "param_scheduler (LinearLR) never becomes active: it begins at iteration 2000, but "
     "the "
     "run has 1000 iterations"},
    {"param_scheduler:\n"
     "  - {type: LinearLR, end: 5}\n",
     {0, 0, 1000},
     OW_ERR_VALUE,
     2,
     5,
     "param_scheduler (LinearLR) steps at the end of each epoch, but an iteration-based "
     "run "
     "(IterBasedTrainLoop) has no epoch ends: only its first step, at build time, "
     "applies "
     "(set by_epoch: false or convert_to_iter_based: true)"},
};

START_TEST(warnings_say_what_and_where)
{
    plain p = {.n = 1, .lr = {0.1}};
    ow_sched *s = build_warned(warn_cases[_i].config, warn_cases[_i].loop, &p);
    if (!warn_cases[_i].message) {
        ck_assert_uint_eq(ow_sched_get_num_warnings(s), 0);
    } else {
        ck_assert_uint_eq(ow_sched_get_num_warnings(s), 1);
        const ow_error *w = ow_sched_get_warning(s, 0);
        ow_check_error(w, warn_cases[_i].code, "t.yaml", warn_cases[_i].line,
                       warn_cases[_i].column, warn_cases[_i].message);
    }
    ow_sched_free(s);
}
END_TEST

/* ---- state
 * ------------------------------------------------------------------------------------ */

static const char tiny_model[] = "format: optwrap-model/1\nname: tiny\nmodules:\n"
                                 "  - {name: '', type: Net}\n"
                                 "  - name: fc\n    type: Linear\n    kind: linear\n"
                                 "    params:\n"
                                 "      - {name: weight, shape: [2, 2]}\n"
                                 "      - {name: bias, shape: [2]}\n";

static const char rich_config[] =
    "optim_wrapper:\n"
    "  optimizer: {type: SGD, lr: 0.1, momentum: 0.9}\n"
    "  paramwise_cfg: {custom_keys: {bias: {lr_mult: 0.5}}}\n"
    "param_scheduler:\n"
    "  - {type: LinearLR, start_factor: 0.25, by_epoch: false, end: 7}\n"
    "  - {type: CosineAnnealingLR, begin: 1, eta_min_ratio: 0.01, convert_to_iter_based: "
    "true}\n"
    "  - {type: MultiStepMomentum, milestones: [2, 4], gamma: 0.5}\n"
    "  - {type: ReduceOnPlateauLR, patience: 0, factor: 0.5}\n";

/* A schedule over real groups (with the base group), built from rich_config. */
typedef struct world {
    ow_cfg *cfg;
    ow_model *model;
    ow_groups *groups;
    ow_sched_target *target;
    ow_sched *sched;
} world;

static void world_new(world *w, const char *config, bool build)
{
    ow_error err;
    ow_error_clear(&err);
    memset(w, 0, sizeof *w);
    w->cfg = sched_load(config);
    ow_check_ok(ow_model_load_string(tiny_model, "tiny.yaml", &w->model, &err), &err);
    ow_check_ok(ow_groups_build(w->cfg, w->model, &w->groups, &err), &err);
    ow_check_ok(ow_sched_target_new(w->cfg, w->groups, &w->target, &err), &err);
    ow_sched_loop loop = {.epoch_length = 4, .max_epochs = 6};
    if (build)
        ow_check_ok(ow_sched_new(w->cfg, w->target, &loop, &w->sched, &err), &err);
}

static void world_free(world *w)
{
    ow_sched_free(w->sched);
    ow_sched_target_free(w->target);
    ow_groups_free(w->groups);
    ow_model_free(w->model);
    ow_cfg_free(w->cfg);
}

/* Every group's lr and momentum, flattened. */
static void snapshot(const world *w, double *out)
{
    const ow_sched_target *t = w->target;
    for (size_t g = 0; g < t->num_groups; g++) {
        ck_assert(t->get(t->ctx, g, "lr", &out[2 * g]));
        ck_assert(t->get(t->ctx, g, "momentum", &out[2 * g + 1]));
    }
}

/* The runner's loop from iteration `from` to `to`, validating every epoch. */
static void run(world *w, int from, int to, double (*seen)[6])
{
    static const double loss[] = {1.0, 0.9, 0.95, 0.97, 0.5, 0.6};
    const char *name = "loss";
    ow_error err;
    ow_error_clear(&err);
    for (int i = from; i < to; i++) {
        if (seen)
            snapshot(w, seen[i]);
        ow_check_ok(ow_sched_step_iter(w->sched, &err), &err);
        if ((i + 1) % 4 == 0) {
            ow_check_ok(ow_sched_step_epoch(w->sched, NULL, &err), &err);
            ow_check_ok(
                ow_sched_step_val(w->sched, &name, &loss[(i + 1) / 4 - 1], 1, &err),
                &err);
        }
    }
}

START_TEST(restored_schedule_continues_exactly)
{
    double want[24][6], got[24][6], at_save[6], at_load[6];
    world a, b, c;
    world_new(&a, rich_config, true);
    run(&a, 0, 24, want);
    world_new(&b, rich_config, true);
    run(&b, 0, 10, NULL);
    snapshot(&b, at_save);
    char *state = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_save_state(b.sched, &state, &err), &err);
    world_free(&b);
    /* a fresh schedule takes its first steps; loading puts everything back */
    world_new(&c, rich_config, true);
    ow_check_ok(ow_sched_load_state(c.sched, state, &err), &err);
    snapshot(&c, at_load);
    ck_assert_mem_eq(at_load, at_save, sizeof at_save);
    run(&c, 10, 24, got);
    for (int i = 10; i < 24; i++)
        for (int k = 0; k < 6; k++)
            ck_assert_msg(got[i][k] == want[i][k],
                          "iteration %d value %d: %.17g != %.17g", i, k, got[i][k],
                          want[i][k]);
    ck_assert(want[23][0] != want[10][0]); /* the schedule did move */
    ow_free(state);
    world_free(&a);
    world_free(&c);
}
END_TEST

START_TEST(restored_timm_schedule_continues_exactly)
{
    static const char config[] =
        "param_scheduler: {type: create_scheduler_v2, sched: cosine, num_epochs: 3,"
        " warmup_epochs: 1, cycle_limit: 2, cycle_mul: 2.0, step_on_epochs: false}\n";
    plain p1 = {.n = 2, .lr = {0.1, 0.05}}, p2 = p1;
    ow_cfg *cfg = sched_load(config);
    ow_sched_target t1 = plain_target(&p1), t2 = plain_target(&p2);
    ow_sched_loop loop = {.epoch_length = 4};
    ow_sched *s1 = NULL, *s2 = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_new(cfg, &t1, &loop, &s1, &err), &err);
    for (int i = 0; i < 13; i++)
        ow_check_ok(ow_sched_step_iter(s1, &err), &err);
    char *state = NULL;
    ow_check_ok(ow_sched_save_state(s1, &state, &err), &err);
    ow_check_ok(ow_sched_new(cfg, &t2, &loop, &s2, &err), &err);
    ow_check_ok(ow_sched_load_state(s2, state, &err), &err);
    for (int i = 13; i < 36; i++) {
        ck_assert(p1.lr[0] == p2.lr[0] && p1.lr[1] == p2.lr[1]);
        ow_check_ok(ow_sched_step_iter(s1, &err), &err);
        ow_check_ok(ow_sched_step_iter(s2, &err), &err);
    }
    ow_free(state);
    ow_sched_free(s1);
    ow_sched_free(s2);
    ow_cfg_free(cfg);
}
END_TEST

static const struct {
    const char *find, *replace, *message;
} bad_states[] = {
    {"\"format\": \"optwrap-sched\"", "\"format\": \"other\"",
     "schedule state: not an optwrap-sched state (no \"format\": \"optwrap-sched\")"},
    {"\"version\": 1", "\"version\": 2",
     "schedule state: unsupported version (this optwrap reads version 1)"},
    {"\"groups\": 3", "\"groups\": 2",
     "schedule state: saved for another number of param groups"},
    {"\"type\": \"LinearLR\"", "\"type\": \"ConstantLR\"",
     "schedule state: saved for another list of schedulers (types differ)"},
    {"\"best\": ", "\"worst\": ",
     "schedule state: a plateau scheduler without its bookkeeping"},
    {"\"values\": {\"lr\": [", "\"values\": {\"lr\": 5, \"lr_\": [",
     "schedule state: missing or malformed values of a scheduled key"},
    {"\"schedulers\": [", "\"schedulers\": 7, \"x\": [",
     "schedule state: missing initial, values or schedulers"},
    /* counters that would overflow when counted on, or are no counters */
    {"\"iters\": ", "\"iters\": 9007199254740993, \"x\": ",
     "schedule state: missing iters or epochs, or not counts (-1 to 2^53)"},
    {"\"epochs\": ", "\"epochs\": -2, \"x\": ",
     "schedule state: missing iters or epochs, or not counts (-1 to 2^53)"},
    {"\"last_step\": ", "\"last_step\": 9223372036854775807, \"x\": ",
     "schedule state: a scheduler without its steps (counts from -1 to 2^53) or base "
     "values"},
    {"\"global_step\": ", "\"global_step\": 1.5, \"x\": ",
     "schedule state: a scheduler without its steps (counts from -1 to 2^53) or base "
     "values"},
};

/* A state that does not fit is refused and changes nothing. */
START_TEST(bad_state_is_refused_whole)
{
    world a, b;
    world_new(&a, rich_config, true);
    world_new(&b, rich_config, true);
    run(&a, 0, 9, NULL);
    char *state = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_sched_save_state(a.sched, &state, &err), &err);
    ck_assert_ptr_nonnull(strstr(state, bad_states[_i].find));
    size_t n = strlen(state) + strlen(bad_states[_i].replace) + 1;
    char *text = ow__malloc(n);
    char *at = strstr(state, bad_states[_i].find);
    snprintf(text, n, "%.*s%s%s", (int)(at - state), state, bad_states[_i].replace,
             at + strlen(bad_states[_i].find));
    double before[6], after[6];
    snapshot(&b, before);
    ck_assert_int_eq(ow_sched_load_state(b.sched, text, &err), OW_ERR_STATE);
    ck_assert_str_eq(err.message, bad_states[_i].message);
    snapshot(&b, after);
    ck_assert_mem_eq(before, after, sizeof before);
    /* b still runs as a fresh schedule does */
    world c;
    world_new(&c, rich_config, true);
    double want[24][6], got[24][6];
    run(&c, 0, 24, want);
    run(&b, 0, 24, got);
    ck_assert_mem_eq(want, got, sizeof want);
    ow_free(text);
    ow_free(state);
    world_free(&a);
    world_free(&b);
    world_free(&c);
}
END_TEST

START_TEST(state_that_is_not_json)
{
    world w;
    world_new(&w, rich_config, true);
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow_sched_load_state(w.sched, "{\"format\": [", &err), OW_ERR_STATE);
    ck_assert(!strncmp(err.message, "schedule state: not valid JSON: ", 32));
    ow_error_clear(&err);
    ck_assert_int_eq(ow_sched_load_state(w.sched, "[1, 2]", &err), OW_ERR_STATE);
    ck_assert_str_eq(
        err.message,
        "schedule state: not an optwrap-sched state (expected a JSON object)");
    world_free(&w);
}
END_TEST

/* ---- allocation failures
 * ---------------------------------------------------------------------- */

START_TEST(build_survives_allocation_failures)
{
    world w;
    world_new(&w, rich_config, false);
    double before[6], after[6];
    snapshot(&w, before);
    ow_sched_loop loop = {.epoch_length = 4, .max_epochs = 6};
    for (long n = 0;; n++) {
        ow_sched *s = (ow_sched *)1;
        ow_error err;
        ow_error_clear(&err);
        ow__alloc_fail_after(n);
        int rc = ow_sched_new(w.cfg, w.target, &loop, &s, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK) {
            ck_assert_uint_eq(ow_sched_get_count(s), 4);
            ow_sched_free(s);
            break;
        }
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
        ck_assert_ptr_null(s);
        snapshot(&w, after);
        ck_assert_mem_eq(before, after, sizeof before);
    }
    world_free(&w);
}
END_TEST

START_TEST(target_survives_allocation_failures)
{
    ow_cfg *cfg = sched_load("optim_wrapper: {optimizer: {type: AdamW, lr: 0.001}}\n");
    for (long n = 0;; n++) {
        ow_sched_target *t = NULL;
        ow_error err;
        ow_error_clear(&err);
        ow__alloc_fail_after(n);
        int rc = ow_sched_target_new(cfg, NULL, &t, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK) {
            double v;
            ck_assert(t->get(t->ctx, 0, "momentum", &v) && v == 0.9);
            ow_sched_target_free(t);
            break;
        }
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
        ck_assert_ptr_null(t);
    }
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(state_survives_allocation_failures)
{
    world a, b;
    world_new(&a, rich_config, true);
    world_new(&b, rich_config, true);
    run(&a, 0, 11, NULL);
    char *state = NULL;
    ow_error err;
    for (long n = 0;; n++) {
        ow_error_clear(&err);
        ow__alloc_fail_after(n);
        int rc = ow_sched_save_state(a.sched, &state, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK)
            break;
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
        ck_assert_ptr_null(state);
    }
    double before[6], after[6], want[6];
    snapshot(&b, before);
    snapshot(&a, want);
    for (long n = 0;; n++) {
        ow_error_clear(&err);
        ow__alloc_fail_after(n);
        int rc = ow_sched_load_state(b.sched, state, &err);
        ow__alloc_fail_after(-1);
        snapshot(&b, after);
        if (rc == OW_OK) {
            ck_assert_mem_eq(after, want, sizeof want);
            break;
        }
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
        ck_assert_mem_eq(before, after, sizeof before);
    }
    ow_free(state);
    world_free(&a);
    world_free(&b);
}
END_TEST

static Suite *make_sched_state_suite(void)
{
    Suite *s = suite_create("sched_state");
    TCase *tc = tcase_create("Errors");
    tcase_add_loop_test(tc, bad_config_errors, 0, (int)OW__ARRAY_LEN(bad_cases));
    tcase_add_test(tc, check_validates_without_groups);
    tcase_add_test(tc, onecycle_refuses_a_step_past_total_steps);
    tcase_add_test(tc, run_longer_than_2_53_is_refused);
    tcase_add_test(tc, momentum_needs_momentum_or_betas);
    tcase_add_test(tc, misuse_is_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("Warnings");
    tcase_add_loop_test(tc, warnings_say_what_and_where, 0,
                        (int)OW__ARRAY_LEN(warn_cases));
    suite_add_tcase(s, tc);
    tc = tcase_create("State");
    tcase_add_test(tc, restored_schedule_continues_exactly);
    tcase_add_test(tc, restored_timm_schedule_continues_exactly);
    tcase_add_loop_test(tc, bad_state_is_refused_whole, 0,
                        (int)OW__ARRAY_LEN(bad_states));
    tcase_add_test(tc, state_that_is_not_json);
    suite_add_tcase(s, tc);
    tc = tcase_create("Limits");
    tcase_add_test(tc, build_survives_allocation_failures);
    tcase_add_test(tc, target_survives_allocation_failures);
    tcase_add_test(tc, state_survives_allocation_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(make_sched_state_suite());
}
