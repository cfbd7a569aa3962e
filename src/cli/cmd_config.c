/* cmd_config.c -- `optwrap check` (validate a config, optionally against a model) and
 * `optwrap print-config` (the config after _base_ merging and --cfg-options). */
#include "cli.h"

#include <string.h>

static const cli_option check_options[] = {
    {"--cfg-options", 2, "override config keys: a.b.c=VALUE (YAML value)"},
    {"--model", 1, "also build the param groups for this optwrap-model/1 file"},
};

int cli_check(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("check");
    size_t n_opts = sizeof check_options / sizeof *check_options;
    cli_args a;
    int st = cli_parse(argc, argv, cmd, check_options, n_opts, &a);
    if (st != CLI_OK)
        return st;
    if (a.help) {
        cli_help(stdout, cmd, check_options, n_opts);
        return CLI_OK;
    }
    if (a.n_positional != 1) {
        fprintf(stderr, "optwrap check: expected one CONFIG\nusage: optwrap %s\n",
                cmd->usage);
        return CLI_USAGE;
    }
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    ow_model *model = NULL;
    ow_groups *groups = NULL;
    const char *model_path = cli_value(&a, check_options, n_opts, "--model");
    int rc = cli_load_config(a.positional[0], a.multi, a.n_multi, &cfg, &err);
    if (!rc)
        rc = ow_cfg_check(cfg, &err);
    if (!rc && model_path && !(rc = ow_model_load(model_path, &model, &err)))
        rc = ow_groups_build(cfg, model, &groups, &err);
    if (!rc) {
        printf("%s: OK", a.positional[0]);
        if (groups)
            printf(" (%zu param groups)", ow_groups_get_count(groups));
        printf("\n");
    }
    ow_groups_free(groups);
    ow_model_free(model);
    ow_cfg_free(cfg);
    return rc ? cli_fail(&err) : CLI_OK;
}

static const cli_option print_options[] = {
    {"--cfg-options", 2, "override config keys: a.b.c=VALUE (YAML value)"},
    {"--format", 1, "yaml (default) or json"},
};

int cli_print_config(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("print-config");
    size_t n_opts = sizeof print_options / sizeof *print_options;
    cli_args a;
    int st = cli_parse(argc, argv, cmd, print_options, n_opts, &a);
    if (st != CLI_OK)
        return st;
    if (a.help) {
        cli_help(stdout, cmd, print_options, n_opts);
        return CLI_OK;
    }
    const char *format = cli_value(&a, print_options, n_opts, "--format");
    if (a.n_positional != 1 ||
        (format && strcmp(format, "yaml") && strcmp(format, "json"))) {
        fprintf(stderr,
                "optwrap print-config: expected one CONFIG and --format yaml|json\n"
                "usage: optwrap %s\n",
                cmd->usage);
        return CLI_USAGE;
    }
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    char *text = NULL;
    int rc = cli_load_config(a.positional[0], a.multi, a.n_multi, &cfg, &err);
    if (!rc)
        rc = format && !strcmp(format, "json") ? ow_cfg_save_json(cfg, &text, &err)
                                               : ow_cfg_save_yaml(cfg, &text, &err);
    if (!rc)
        fputs(text, stdout);
    if (!rc && format && !strcmp(format, "json"))
        fputc('\n', stdout);
    ow_free(text);
    ow_cfg_free(cfg);
    return rc ? cli_fail(&err) : CLI_OK;
}
