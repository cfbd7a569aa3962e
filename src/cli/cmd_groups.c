/* cmd_groups.c -- `optwrap groups CONFIG --model MODEL` (or `--arch NAME`, a built-in
 * architecture): the param groups a model gets,
 * as a table in the spirit of mmengine's paramwise_options debug log, as JSON shaped
 * like the golden files' groups_effective, or per parameter with --explain. */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const cli_option groups_options[] = {
    {"--arch", 1,
     "a built-in architecture instead of --model (optwrap model --list-archs)"},
    {"--cfg-options", 2, "override config keys: a.b.c=VALUE (YAML value)"},
    {"--explain", 0, "for every parameter, the rule that decided its settings"},
    {"--format", 1, "table (default) or json"},
    {"--model", 1, "the model tree (optwrap-model/1 YAML)"},
};

/* A group option as text: numbers in Python repr, lists as [a, b]. */
static void print_value(const ow_cfg *v)
{
    char *text = NULL;
    ow_error err;
    if (ow_cfg_save_json(v, &text, &err) == OW_OK)
        fputs(text, stdout);
    ow_free(text);
}

static const char *const main_keys[] = {"lr", "weight_decay"};

/* Python's repr of a double: the shortest text that reads back, "1.0" when integral. */
static void print_double(double x)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    fputs(buf, stdout);
    if (!strpbrk(buf, ".eEn"))
        fputs(".0", stdout);
}

/* lr, the lr the group steps with (lr * lr_scale where the optimizer applies lr_scale)
 * when the group has an lr_scale, weight_decay, then the other keys. */
static void print_options(const ow_groups *g, size_t gi, bool main_only)
{
    const ow_cfg *opts = ow_groups_get_options(g, gi);
    for (size_t m = 0; m < 2; m++) {
        const ow_cfg *v = ow_cfg_find(opts, main_keys[m]);
        if (v) {
            printf(" %s=", main_keys[m]);
            print_value(v);
        }
        double eff;
        ow_error err;
        if (m == 0 && ow_cfg_find(opts, "lr_scale") &&
            ow_groups_get_effective_lr(g, gi, &eff, &err) == OW_OK) {
            printf(" effective_lr=");
            print_double(eff);
        }
    }
    if (main_only)
        return;
    for (size_t k = 0; k < ow_cfg_get_size(opts); k++) {
        const char *key = ow_cfg_get_key(opts, k);
        if (!strcmp(key, "lr") || !strcmp(key, "weight_decay"))
            continue;
        printf(" %s=", key);
        print_value(ow_cfg_get_item(opts, k));
    }
}

static void print_table(const ow_groups *g)
{
    const ow_model *m = ow_groups_get_model(g);
    size_t n_params = 0;
    int64_t numel = 0;
    for (size_t gi = 0; gi < ow_groups_get_count(g); gi++) {
        printf("group %zu:", gi);
        print_options(g, gi, false);
        const char *why = ow_groups_get_reason(g, gi);
        if (*why)
            printf("  (%s)", why);
        printf("\n");
        for (size_t j = 0; j < ow_groups_get_num_params(g, gi); j++) {
            ow_param_view pv;
            ow_model_get_param(m, ow_groups_get_param(g, gi, j), &pv);
            printf("    %-48s [", pv.full_name);
            for (int d = 0; d < pv.ndim; d++)
                printf("%s%" PRId64, d ? ", " : "", pv.shape[d]);
            printf("]%s\n", pv.requires_grad ? "" : " frozen");
            n_params++;
            numel += pv.numel;
        }
    }
    printf("%zu groups, %zu parameters, %" PRId64 " elements\n", ow_groups_get_count(g),
           n_params, numel);
    bool scaled = false;
    for (size_t gi = 0; gi < ow_groups_get_count(g) && !scaled; gi++)
        scaled = ow_cfg_find(ow_groups_get_options(g, gi), "lr_scale") != NULL;
    if (scaled)
        printf(
            "effective_lr: the lr a group steps with before any schedule (optwrap's "
            "optimizer applies timm's lr_scale; mmpretrain and mmseg fold it into lr)\n");
}

/* Every parameter occurrence, with its group, effective lr / weight decay and the rule.
 */
static int print_explain(const ow_groups *g)
{
    const ow_model *m = ow_groups_get_model(g);
    size_t np = ow_model_get_num_params(m);
    long *group_of = malloc((np ? np : 1) * sizeof *group_of);
    if (!group_of) {
        fprintf(stderr, "optwrap: out of memory\n");
        return CLI_ERROR;
    }
    for (size_t i = 0; i < np; i++)
        group_of[i] = -1;
    for (size_t gi = 0; gi < ow_groups_get_count(g); gi++)
        for (size_t j = 0; j < ow_groups_get_num_params(g, gi); j++)
            group_of[ow_groups_get_param(g, gi, j)] = (long)gi;
    for (size_t i = 0; i < np; i++) {
        ow_param_view pv;
        ow_model_get_param(m, i, &pv);
        printf("%-48s ", pv.full_name);
        long found = group_of[i];
        if (found < 0) {
            const char *why = ow_groups_get_param_reason(g, i);
            printf("skipped (%s)\n", *why                ? why
                                     : !pv.requires_grad ? "frozen: requires_grad false"
                                     : pv.is_shared ? "shared with an earlier parameter"
                                                    : "not in any group");
            continue;
        }
        printf("group %ld:", found);
        print_options(g, (size_t)found, true);
        const char *why = ow_groups_get_param_reason(g, i);
        if (!*why)
            why = ow_groups_get_reason(g, (size_t)found);
        printf("  %s\n", *why ? why : "optimizer defaults");
    }
    free(group_of);
    return CLI_OK;
}

int cli_groups(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("groups");
    size_t n_opts = sizeof groups_options / sizeof *groups_options;
    cli_args a;
    int st = cli_parse(argc, argv, cmd, groups_options, n_opts, &a);
    if (st != CLI_OK)
        return st;
    if (a.help) {
        cli_help(stdout, cmd, groups_options, n_opts);
        return CLI_OK;
    }
    const char *format = cli_value(&a, groups_options, n_opts, "--format");
    const char *model_path = cli_value(&a, groups_options, n_opts, "--model");
    const char *arch = cli_value(&a, groups_options, n_opts, "--arch");
    if (a.n_positional != 1 || !model_path == !arch ||
        (format && strcmp(format, "table") && strcmp(format, "json"))) {
        fprintf(stderr,
                "optwrap groups: expected CONFIG, one of --model MODEL and --arch "
                "NAME, and --format table|json\nusage: optwrap %s\n",
                cmd->usage);
        return CLI_USAGE;
    }
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    ow_model *model = NULL;
    ow_groups *groups = NULL;
    int rc = cli_load_config(a.positional[0], a.multi, a.n_multi, &cfg, &err);
    if (!rc && cli_load_model(model_path, arch, &model, &err)) {
        ow_cfg_free(cfg);
        return CLI_ERROR;
    }
    if (!rc)
        rc = ow_groups_build(cfg, model, &groups, &err);
    for (size_t i = 0; !rc && i < ow_groups_get_num_warnings(groups); i++)
        fprintf(stderr, "optwrap: warning: %s\n", ow_groups_get_warning(groups, i));
    if (!rc) {
        if (cli_value(&a, groups_options, n_opts, "--explain")) {
            st = print_explain(groups);
        } else if (format && !strcmp(format, "json")) {
            char *text = NULL;
            if (!(rc = ow_groups_save_json(groups, &text, &err)))
                printf("%s\n", text);
            ow_free(text);
        } else {
            print_table(groups);
        }
    }
    ow_groups_free(groups);
    ow_model_free(model);
    ow_cfg_free(cfg);
    return rc ? cli_fail(&err) : st;
}
