/* common.c -- what every optwrap subcommand shares: option parsing from a sorted table,
 * help text generated from that table, config loading with --cfg-options, errors. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static int cmp_option(const void *key, const void *elem)
{
    return strcmp(key, ((const cli_option *)elem)->name);
}

static const cli_option *find_option(const char *name, const cli_option *opts, size_t n)
{
    return n ? bsearch(name, opts, n, sizeof *opts, cmp_option) : NULL;
}

void cli_help(FILE *f, const cli_command *cmd, const cli_option *opts, size_t n_opts)
{
    fprintf(f, "usage: optwrap %s\n\n%s\n", cmd->usage, cmd->summary);
    if (n_opts)
        fprintf(f, "\noptions:\n");
    for (size_t i = 0; i < n_opts; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s", opts[i].name,
                 opts[i].arg == 1   ? " VALUE"
                 : opts[i].arg == 2 ? " K=V ..."
                                    : "");
        fprintf(f, "  %-24s %s\n", left, opts[i].help);
    }
    fprintf(f, "  %-24s %s\n", "-h, --help", "show this help");
}

static int usage_error(const cli_command *cmd, const char *fmt, const char *what)
{
    fprintf(stderr, "optwrap %s: ", cmd->name);
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\nusage: optwrap %s\n", cmd->usage);
    return CLI_USAGE;
}

int cli_parse(int argc, char **argv, const cli_command *cmd, const cli_option *opts,
              size_t n_opts, cli_args *args)
{
    memset(args, 0, sizeof *args);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            args->help = 1;
            return CLI_OK;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (args->n_positional == CLI_MAX_POSITIONAL)
                return usage_error(cmd, "too many arguments at '%s'", a);
            args->positional[args->n_positional++] = a;
            continue;
        }
        /* --name=value is accepted too */
        char name[64];
        const char *eq = strchr(a, '=');
        size_t len = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof name)
            return usage_error(cmd, "unknown option '%s'", a);
        memcpy(name, a, len);
        name[len] = '\0';
        const cli_option *o = find_option(name, opts, n_opts);
        if (!o)
            return usage_error(cmd, "unknown option '%s'", name);
        size_t idx = (size_t)(o - opts);
        if (o->arg == 0) {
            args->values[idx] = "";
        } else if (o->arg == 1) {
            const char *v =
                eq && a[1] == '-' ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v)
                return usage_error(cmd, "option '%s' needs a value", name);
            args->values[idx] = v;
        } else {
            args->values[idx] = "";
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                if (args->n_multi == CLI_MAX_VALUES)
                    return usage_error(cmd, "too many values for '%s'", name);
                args->multi[args->n_multi++] = argv[++i];
            }
        }
    }
    return CLI_OK;
}

const char *cli_value(const cli_args *args, const cli_option *opts, size_t n_opts,
                      const char *name)
{
    const cli_option *o = find_option(name, opts, n_opts);
    return o ? args->values[o - opts] : NULL;
}

int cli_fail(const ow_error *err)
{
    char buf[OW_ERROR_FILE_LEN + OW_ERROR_TEXT_LEN + 32];
    ow_error_format(err, buf, sizeof buf);
    fprintf(stderr, "optwrap: %s\n", buf);
    return CLI_ERROR;
}

int cli_load_model(const char *path, const char *arch, ow_model **out, ow_error *err)
{
    int rc = arch ? ow_model_new_arch(arch, out, err) : ow_model_load(path, out, err);
    if (rc) {
        cli_fail(err);
        if (arch && rc == OW_ERR_UNKNOWN_TYPE)
            fprintf(stderr, "optwrap: 'optwrap model --list-archs' lists the built-in "
                            "architectures\n");
    }
    return rc;
}

int cli_load_config(const char *arg, const char *const *overrides, int n_overrides,
                    ow_cfg **out, ow_error *err)
{
    *out = NULL;
    ow_cfg *cfg = NULL;
    int rc;
    if (arg[0] == '{') {
        ow_cfg *inline_cfg = NULL;
        if ((rc = ow_cfg_load_string(arg, "<inline>", &inline_cfg, err)))
            return rc;
        if (ow_cfg_find(inline_cfg, "optim_wrapper")) {
            cfg = inline_cfg;
        } else {
            rc = ow_cfg_new(&cfg, err);
            if (!rc)
                rc = ow_cfg_set_node(cfg, "optim_wrapper", inline_cfg, err);
            ow_cfg_free(inline_cfg);
            if (rc) {
                ow_cfg_free(cfg);
                return rc;
            }
        }
    } else if ((rc = ow_cfg_load(arg, &cfg, err))) {
        return rc;
    }
    for (int i = 0; i < n_overrides; i++)
        if ((rc = ow_cfg_set(cfg, overrides[i], err))) {
            ow_cfg_free(cfg);
            return rc;
        }
    *out = cfg;
    return OW_OK;
}
