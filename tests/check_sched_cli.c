/* check_sched_cli.c -- `optwrap schedule` end to end: its CSV against every golden
 * schedule (over a real model's groups, the base group included), a well-formed SVG,
 * the terminal chart's key points, warnings on stderr, and usage errors. */
#include "sched_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Writes text to a new temporary file; its path goes to path[32]. */
static void write_temp(char *path, const char *suffix, const char *text)
{
    snprintf(path, 40, "/tmp/ow_sched_XXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    ck_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
}

static const char tiny_model[] = "format: optwrap-model/1\nname: tiny\nmodules:\n"
                                 "  - {name: '', type: Net}\n"
                                 "  - name: fc\n    type: Linear\n    kind: linear\n"
                                 "    params:\n"
                                 "      - {name: weight, shape: [2, 2]}\n"
                                 "      - {name: bias, shape: [2]}\n";

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
    "timm/cosine_cycle_mul_updates.json",
    "timm/cosine_warmup_epochs.json",
    "timm/multistep_epochs.json",
    "timm/step_epochs.json",
};

/* The recorded lr of group g at iteration k (and momentum, when asked and recorded). */
static bool golden_value(const ow_cfg *golden, bool timm, const char *key, size_t k,
                         size_t g, double *out)
{
    char path[96];
    if (!timm) {
        snprintf(path, sizeof path, "%s.%zu.%zu", key, k, g);
    } else {
        int64_t upe;
        ow_cfg_get_int(ow_cfg_find(golden, "updates_per_epoch"), &upe, NULL);
        size_t epochs = ow_cfg_get_size(ow_cfg_find(golden, "lr_used"));
        if (strcmp(key, "lr") != 0 || g >= 2)
            return false;
        if (k == epochs * (size_t)upe)
            snprintf(path, sizeof path, "lr_after_epoch.%zu.%zu", epochs - 1, g);
        else
            snprintf(path, sizeof path, "lr_used.%zu.%zu.%zu", k / (size_t)upe,
                     k % (size_t)upe, g);
    }
    return ow_cfg_get_double(ow_cfg_find(golden, path), out, NULL) == OW_OK;
}

/* The config a golden recording stands for: SGD (AdamW) with lr 0.1 and a bias group at
 * half the lr, so that the tiny model gets the recording's two groups. */
static char *golden_config(const ow_cfg *golden, bool timm)
{
    ow_cfg *sched = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_copy(ow_cfg_find(golden, timm ? "factory_kwargs" : "config"),
                            &sched, &err),
                &err);
    if (timm) {
        ow_cfg *type = ow__cfg_new_string("timm.create_scheduler_v2");
        ow_check_ok(ow_cfg_set_node(sched, "type", type, &err), &err);
        ow_cfg_free(type);
    }
    char *json = NULL;
    ow_check_ok(ow_cfg_save_json(sched, &json, &err), &err);
    const ow_cfg *opt = ow_cfg_find(golden, "optimizer");
    const char *name = "torch.optim.SGD";
    if (opt)
        ow_cfg_get_string(opt, &name, NULL);
    size_t n = strlen(json) + 512;
    char *text = malloc(n);
    snprintf(text, n,
             "optim_wrapper:\n"
             "  optimizer: {type: %s, lr: 0.1%s}\n"
             "  paramwise_cfg: {custom_keys: {bias: {lr_mult: 0.5}}}\n"
             "param_scheduler: %s\n",
             strstr(name, "AdamW") ? "AdamW" : "SGD",
             strstr(name, "AdamW") ? "" : ", momentum: 0.9", json);
    ow_free(json);
    ow_cfg_free(sched);
    return text;
}

START_TEST(csv_matches_golden_schedules)
{
    ow_cfg *golden = sched_golden(golden_cases[_i]);
    bool timm = strncmp(golden_cases[_i], "timm/", 5) == 0;
    char cfg_path[40], model_path[40], args[512];
    char *text = golden_config(golden, timm);
    write_temp(cfg_path, ".yaml", text);
    write_temp(model_path, ".yaml", tiny_model);
    int64_t length = 0, epochs = 0;
    ow_cfg_get_int(ow_cfg_find(golden, timm ? "updates_per_epoch" : "epoch_length"),
                   &length, NULL);
    ow_cfg_get_int(ow_cfg_find(golden, timm ? "num_epochs" : "max_epochs"), &epochs,
                   NULL);
    snprintf(args, sizeof args,
             "schedule %s --model %s --epochs %lld --epoch-length %lld --csv", cfg_path,
             model_path, (long long)epochs, (long long)length);
    ow_cli_result r = ow_test_cli(args);
    ck_assert_msg(r.status == 0, "%s: %s", args, r.err);
    /* header: iter,epoch,lr[0],lr[1],lr[base],momentum[0],... */
    char *line = r.out, *next = strchr(line, '\n');
    *next = '\0';
    static const char header[] = "iter,epoch,lr[0],lr[1],lr[base],momentum[0]";
    ck_assert_msg(!strncmp(line, header, strlen(header)), "%s", line);
    size_t rows = 0;
    for (line = next + 1; *line; line = next + 1, rows++) {
        next = strchr(line, '\n');
        *next = '\0';
        char *p = line, *end;
        ck_assert_int_eq(strtoll(p, &end, 10), (long long)rows);
        double epoch = strtod(end + 1, &end);
        ck_assert_double_eq_tol(epoch, (double)rows / (double)length, 1e-12);
        for (size_t c = 0; c < 6; c++) {
            double got = strtod(end + 1, &end), want;
            const char *key = c < 3 ? "lr" : "momentum";
            if (!golden_value(golden, timm, key, rows, c % 3, &want))
                continue;
            ck_assert_msg(fabs(got - want) <= 1e-12 * fabs(want),
                          "%s row %zu column %zu: %.17g, want %.17g", golden_cases[_i],
                          rows, c, got, want);
        }
    }
    ck_assert_uint_eq(rows, (size_t)(epochs * length) + 1);
    ow_test_cli_free(&r);
    free(text);
    unlink(cfg_path);
    unlink(model_path);
    ow_cfg_free(golden);
}
END_TEST

/* Enough of XML 1.0 to tell a well-formed document: one root, balanced tags, quoted
 * attributes, known entities, no stray '<' or '&'. */
static void assert_well_formed(const char *s)
{
    const char *stack[64];
    size_t depth = 0, roots = 0;
    if (!strncmp(s, "<?xml", 5))
        s = strstr(s, "?>") + 2;
    for (; *s; s++) {
        if (*s == '&') {
            ck_assert_msg(!strncmp(s, "&amp;", 5) || !strncmp(s, "&lt;", 4) ||
                              !strncmp(s, "&gt;", 4) || !strncmp(s, "&quot;", 6) ||
                              !strncmp(s, "&apos;", 6),
                          "bad entity at '%.20s'", s);
            continue;
        }
        if (*s != '<')
            continue;
        if (s[1] == '/') { /* end tag */
            ck_assert_uint_gt(depth, 0);
            size_t len = strcspn(s + 2, ">");
            const char *open = stack[--depth];
            ck_assert_msg(!strncmp(open, s + 2, len) && strcspn(open, " />\n") == len,
                          "mismatched end tag at '%.20s'", s);
            s += len + 2;
            continue;
        }
        const char *name = s + 1;
        if (depth == 0)
            roots++;
        /* attributes: name="value" with no '<' inside */
        const char *p = name + strcspn(name, " />");
        while (*p == ' ') {
            p++;
            p += strcspn(p, "=");
            ck_assert_msg(p[1] == '"', "unquoted attribute at '%.30s'", p);
            const char *close = strchr(p + 2, '"');
            ck_assert(close && !memchr(p + 2, '<', (size_t)(close - p - 2)));
            p = close + 1;
        }
        if (p[0] == '/' && p[1] == '>') {
            s = p + 1;
            continue;
        }
        ck_assert_msg(*p == '>', "bad tag at '%.30s'", name);
        ck_assert_uint_lt(depth, 64);
        stack[depth++] = name;
        s = p;
    }
    ck_assert_uint_eq(depth, 0);
    ck_assert_uint_eq(roots, 1);
}

START_TEST(svg_is_well_formed)
{
    char svg[] = "/tmp/ow_sched_svgXXXXXX";
    int fd = mkstemp(svg);
    ck_assert(fd >= 0);
    close(fd);
    char args[256];
    snprintf(args, sizeof args,
             "schedule configs/vit-base-p16_adamw_in1k.yaml --epoch-length 1251 -o %s",
             svg);
    ow_cli_result r = ow_test_cli(args);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "wrote /tmp/ow_sched_svg"));
    char *text = ow_test_slurp(svg);
    ck_assert(!strncmp(text, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", 44));
    assert_well_formed(text);
    ck_assert_ptr_nonnull(strstr(text, "<polyline"));
    ck_assert_ptr_nonnull(strstr(text, ">epoch</text>"));
    ck_assert_ptr_nonnull(strstr(text, ">iteration</text>"));
    if (system("command -v xmllint >/dev/null 2>&1") == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "xmllint --noout %s", svg);
        ck_assert_int_eq(system(cmd), 0);
    }
    ow_free(text);
    ow_test_cli_free(&r);
    unlink(svg);
}
END_TEST

START_TEST(chart_shows_key_points)
{
    ow_cli_result r =
        ow_test_cli("schedule configs/vit-base-p16_adamw_in1k.yaml --epoch-length 1251");
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "375300 iterations (300 epochs of 1251)"));
    ck_assert_ptr_nonnull(strstr(r.out, "  0 LinearLR"));
    ck_assert_ptr_nonnull(strstr(r.out,
                                 "key points of lr, group 0:\n"
                                 "  start        iter 0        epoch 0        3e-06\n"
                                 "  warmup end   iter 25019    epoch 19.9992  "
                                 "0.0029999999999997637\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "  final        iter 375300   epoch 300      "));
    ow_test_cli_free(&r);
    /* MultiStep: the steps are listed */
    r = ow_test_cli("schedule configs/resnet50_8xb32_in1k.yaml --epoch-length 100");
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "  step down    iter 9000     epoch 90       "
                                        "0.00010000000000000003\n"));
    ow_test_cli_free(&r);
}
END_TEST

/* Groups of TimmOptimWrapperConstructor step with lr * lr_scale (the optimizer applies
 * the scale): that is what the CSV and the chart show. A by-epoch warmup is a staircase;
 * its end is its last step up. */
START_TEST(layer_decay_groups_show_scaled_lr)
{
    char model[40], args[1024];
    write_temp(model, ".yaml", ow_test_layer_model);
    static const char config[] =
        "'{optim_wrapper: {optimizer: {type: SGD, lr: 1.0}, constructor: "
        "TimmOptimWrapperConstructor, paramwise_cfg: {layer_decay: 0.5}}, "
        "param_scheduler: {type: timm.create_scheduler_v2, sched: step, num_epochs: 4, "
        "decay_epochs: 2, decay_rate: 0.5, warmup_epochs: 1, warmup_lr: 0.25}}'";
    snprintf(args, sizeof args, "schedule %s --model %s --epoch-length 2 --csv", config,
             model);
    ow_cli_result r = ow_test_cli(args);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.out, "iter,epoch,lr[0],lr[1],lr[2],lr[base],momentum[0],"
                            "momentum[1],momentum[2],momentum[base]\n"
                            "0,0,0.0625,0.125,0.25,0.25,0,0,0,0\n"
                            "1,0.5,0.0625,0.125,0.25,0.25,0,0,0,0\n"
                            "2,1,0.25,0.5,1,1,0,0,0,0\n"
                            "3,1.5,0.25,0.5,1,1,0,0,0,0\n"
                            "4,2,0.125,0.25,0.5,0.5,0,0,0,0\n"
                            "5,2.5,0.125,0.25,0.5,0.5,0,0,0,0\n"
                            "6,3,0.125,0.25,0.5,0.5,0,0,0,0\n"
                            "7,3.5,0.125,0.25,0.5,0.5,0,0,0,0\n"
                            "8,4,0.0625,0.125,0.25,0.25,0,0,0,0\n");
    ow_test_cli_free(&r);
    snprintf(args, sizeof args, "schedule %s --model %s --epoch-length 2", config, model);
    r = ow_test_cli(args);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out,
                                 "key points of lr, group 0:\n"
                                 "  start        iter 0        epoch 0        0.0625\n"
                                 "  warmup end   iter 2        epoch 1        0.25\n"
                                 "  decay starts iter 4        epoch 2        0.125\n"
                                 "  step down    iter 8        epoch 4        0.0625\n"
                                 "  final        iter 8        epoch 4        0.0625\n"));
    ow_test_cli_free(&r);
    unlink(model);
    /* a built-in architecture instead of a model file */
    r = ow_test_cli("schedule configs/vit-base-p16_timm-ft_layer-decay.yaml --arch "
                    "timm/vit_base_patch16_224 --epoch-length 10");
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "29 groups (the last is mmengine's "
                                        "base_param_settings), 1000 iterations"));
    ow_test_cli_free(&r);
}
END_TEST

/* A one-step restart is listed once, and the decay starts once. */
START_TEST(restart_is_one_key_point)
{
    ow_cli_result r = ow_test_cli(
        "schedule '{optim_wrapper: {optimizer: {type: SGD, lr: 0.1}}, param_scheduler: "
        "[{type: CosineRestartLR, periods: [5, 5], restart_weights: [1, 0.5], eta_min: "
        "0.01, by_epoch: false}]}' --iters 10");
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out,
                                 "key points of lr, group 0:\n"
                                 "  start        iter 0        0.1\n"
                                 "  decay starts iter 1        0.09140576474687263\n"
                                 "  restart      iter 5        0.05\n"
                                 "  final        iter 10       0.013819660112501053\n"));
    ow_test_cli_free(&r);
}
END_TEST

START_TEST(warnings_go_to_stderr)
{
    ow_cli_result r =
        ow_test_cli("schedule '{optim_wrapper: {optimizer: {type: SGD, lr: 0.1}}, "
                    "param_scheduler: [{type: CosineAnnealingLR, end: 50}]}' --epochs 10 "
                    "--epoch-length 3 --csv");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.err, "optwrap: warning: <inline>:1:101: param_scheduler "
                            "(CosineAnnealingLR): end=50 is beyond the run, which has 10 "
                            "epochs: it is cut off before reaching its end\n");
    ck_assert(!strncmp(r.out, "iter,epoch,lr[0],momentum[0]\n0,0,0.1,0\n", 39));
    ow_test_cli_free(&r);
}
END_TEST

static const struct {
    const char *args;
    int status;
    const char *err; /* the start of stderr */
} usage_cases[] = {
    {"schedule configs/vit-base-p16_adamw_in1k.yaml --epochs 10", 2,
     "optwrap schedule: --epochs needs --epoch-length\n"},
    {"schedule configs/vit-base-p16_adamw_in1k.yaml --iters 5 --epochs 3 --epoch-length "
     "2",
     2, "optwrap schedule: give either --iters or --epochs, not both\n"},
    {"schedule configs/vit-base-p16_adamw_in1k.yaml --iters -5", 2,
     "optwrap schedule: --iters, --epochs and --epoch-length take a positive count\n"},
    {"schedule", 2, "optwrap schedule: expected one CONFIG\n"},
    {"schedule configs/vit-base-p16_adamw_in1k.yaml --iters 5 --arch vit-base-p16 "
     "--model models/mmpretrain_vit-base-p16.yaml",
     2, "optwrap schedule: give either --model or --arch, not both\n"},
    {"schedule configs/vit-base-p16_adamw_in1k.yaml --iters 5 --arch vit-base-p61", 1,
     "optwrap: unknown architecture 'vit-base-p61' (closest: 'vit-base-p16')\n"
     "optwrap: 'optwrap model --list-archs' lists the built-in architectures\n"},
    {"schedule '{optim_wrapper: {optimizer: {type: SGD, lr: 0.1}}}'", 1,
     "optwrap: the run's length is unknown: give --iters N, or --epochs E --epoch-length "
     "L"},
    {"schedule configs/vit-base-p16_adamw_in1k.yaml", 1,
     "optwrap: configs/_base_/schedules/warmup_cosine_300e.yaml:4:91: param_scheduler.0 "
     "(LinearLR): convert_to_iter_based needs the epoch length"},
    {"schedule '{optim_wrapper: {optimizer: {type: SGD, lr: 0.1}}, param_scheduler: "
     "[{type: StepLR, step_size: 2, gama: 0.5}]}' --iters 10",
     1,
     "optwrap: <inline>:1:105: param_scheduler.0: unknown key 'gama' (did you mean "
     "'gamma'?)\n"},
};

START_TEST(usage_and_user_errors)
{
    ow_cli_result r = ow_test_cli(usage_cases[_i].args);
    ck_assert_int_eq(r.status, usage_cases[_i].status);
    ck_assert_msg(!strncmp(r.err, usage_cases[_i].err, strlen(usage_cases[_i].err)),
                  "%s: stderr '%s'", usage_cases[_i].args, r.err);
    ow_test_cli_free(&r);
}
END_TEST

START_TEST(help_describes_the_command)
{
    ow_cli_result r = ow_test_cli("schedule --help");
    ck_assert_int_eq(r.status, 0);
    ck_assert(!strncmp(r.out,
                       "usage: optwrap schedule CONFIG [--iters N | --epochs E "
                       "--epoch-length L]",
                       72));
    ck_assert_ptr_nonnull(strstr(r.out, "--csv"));
    ow_test_cli_free(&r);
    r = ow_test_cli("--help");
    ck_assert_ptr_nonnull(strstr(r.out, "\n  schedule "));
    ow_test_cli_free(&r);
}
END_TEST

static Suite *make_sched_cli_suite(void)
{
    Suite *s = suite_create("sched_cli");
    TCase *tc = tcase_create("Csv");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, csv_matches_golden_schedules, 0,
                        (int)OW__ARRAY_LEN(golden_cases));
    suite_add_tcase(s, tc);
    tc = tcase_create("Plot");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, svg_is_well_formed);
    tcase_add_test(tc, chart_shows_key_points);
    tcase_add_test(tc, layer_decay_groups_show_scaled_lr);
    tcase_add_test(tc, restart_is_one_key_point);
    tcase_add_test(tc, warnings_go_to_stderr);
    suite_add_tcase(s, tc);
    tc = tcase_create("Usage");
    tcase_add_loop_test(tc, usage_and_user_errors, 0, (int)OW__ARRAY_LEN(usage_cases));
    tcase_add_test(tc, help_describes_the_command);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(make_sched_cli_suite());
}
