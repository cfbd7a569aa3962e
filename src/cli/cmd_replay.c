/* cmd_replay.c -- `optwrap replay FILE.json [--check]`: re-runs a golden file through
 * optwrap: an optimizer trajectory (recorded gradients; prints the parameters after
 * each step) or a schedule (mmengine_param_scheduler, timm_scheduler); with --check it
 * compares with the recorded values. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const cli_option replay_options[] = {
    {"--check", 0, "compare with the recorded parameters; exit 1 beyond tolerance"},
    {"--quiet", 0, "do not print the parameters"},
    {"--threads", 1, "threads per step (default: OW_NUM_THREADS or the machine's)"},
};

/* Shortest text that reads back to the same float (the golden files' repr). */
static void print_float(float x)
{
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x)
            break;
    }
    fputs(buf, stdout);
}

static void print_params(const ow_model *m, int step)
{
    for (size_t i = 0; i < ow_model_get_num_params(m); i++) {
        ow_param_view pv;
        ow_model_get_param(m, i, &pv);
        printf("step %d %s [", step, pv.full_name);
        for (int64_t j = 0; j < pv.numel; j++) {
            if (j)
                fputs(", ", stdout);
            print_float(pv.data[j]);
        }
        printf("]\n");
    }
}

/* The schedule kinds of golden files, replayed by the scheduler code. */
static int replay_schedule(const char *path, const ow_cfg *golden, bool check)
{
    ow_error err;
    ow_error_clear(&err);
    double max_err = 0;
    char msg[512] = "";
    int rc = ow_sched_replay(golden, &max_err, msg, sizeof msg, &err);
    if (rc && rc != OW_ERR_VALUE)
        return cli_fail(&err);
    if (!check) {
        printf("%s\n", msg);
        return CLI_OK;
    }
    printf("max_rel_err=%.9g\n", max_err);
    if (rc) {
        fprintf(stderr, "optwrap replay: %s: beyond tolerance: %s\n", path, msg);
        return CLI_ERROR;
    }
    return CLI_OK;
}

int cli_replay(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("replay");
    size_t n_opts = sizeof replay_options / sizeof *replay_options;
    cli_args a;
    int st = cli_parse(argc, argv, cmd, replay_options, n_opts, &a);
    if (st != CLI_OK)
        return st;
    if (a.help) {
        cli_help(stdout, cmd, replay_options, n_opts);
        return CLI_OK;
    }
    const char *threads = cli_value(&a, replay_options, n_opts, "--threads");
    bool check = cli_value(&a, replay_options, n_opts, "--check") != NULL;
    bool quiet = cli_value(&a, replay_options, n_opts, "--quiet") != NULL;
    char *end = NULL;
    long nth = threads ? strtol(threads, &end, 10) : 0;
    if (a.n_positional != 1 || (threads && (*end || nth < 1 || nth > 4096))) {
        fprintf(stderr,
                "optwrap replay: expected one FILE.json (and --threads N >= 1)\n"
                "usage: optwrap %s\n",
                cmd->usage);
        return CLI_USAGE;
    }
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *golden = NULL;
    if (ow_cfg_load(a.positional[0], &golden, &err))
        return cli_fail(&err);
    const ow_cfg *kind = ow_cfg_find(golden, "kind");
    const char *k = ow_cfg_get_type(kind) == OW_CFG_STRING ? NULL : "";
    if (!k)
        ow_cfg_get_string(kind, &k, NULL);
    if (!strcmp(k, "mmengine_param_scheduler") || !strcmp(k, "timm_scheduler")) {
        st = replay_schedule(a.positional[0], golden, check);
        ow_cfg_free(golden);
        return st;
    }
    ow_trajectory *t = NULL;
    int made = ow_trajectory_new(golden, &t, &err);
    ow_cfg_free(golden);
    if (made)
        return cli_fail(&err);
    ow_optimizer_set_threads(ow_trajectory_get_optimizer(t), (int)nth, NULL);
    int rc = OW_OK;
    for (int k = 0; k < ow_trajectory_get_num_steps(t) && !rc; k++)
        if (!(rc = ow_trajectory_step(t, &err)) && !quiet)
            print_params(ow_trajectory_get_model(t), k + 1);
    ow_trajectory_stats s;
    ow_trajectory_get_stats(t, &s);
    ow_trajectory_free(t);
    if (rc)
        return cli_fail(&err);
    if (!check)
        return CLI_OK;
    printf("max_abs_err=%.9g max_rel_err=%.9g max_ulp=%llu\n", s.max_abs_err,
           s.max_rel_err, (unsigned long long)s.max_ulp);
    if (!s.passed) {
        fprintf(stderr, "optwrap replay: %s: beyond tolerance (%s)\n", a.positional[0],
                s.tolerance == 0 ? "bit-exact expected" : "relative error");
        return CLI_ERROR;
    }
    return CLI_OK;
}
