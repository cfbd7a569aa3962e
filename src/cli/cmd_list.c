/* cmd_list.c -- `optwrap list [KIND]`: the registry's entries with their one-line
 * descriptions, and with --keys every declared key and its default. */
#include "cli.h"

#include <string.h>

static const cli_option list_options[] = {
    {"--keys", 0, "also show each entry's keys and defaults"},
};

static const char *type_word(ow_type t)
{
    static const char *const words[] = {"any",    "bool",    "int",  "number", "float",
                                        "string", "numbers", "list", "map"};
    return (unsigned)t < sizeof words / sizeof *words ? words[t] : "?";
}

int cli_list(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("list");
    size_t n_opts = sizeof list_options / sizeof *list_options;
    cli_args a;
    int st = cli_parse(argc, argv, cmd, list_options, n_opts, &a);
    if (st != CLI_OK)
        return st;
    if (a.help) {
        cli_help(stdout, cmd, list_options, n_opts);
        return CLI_OK;
    }
    int want = -1;
    if (a.n_positional > 1)
        return fprintf(stderr, "usage: optwrap %s\n", cmd->usage), CLI_USAGE;
    if (a.n_positional == 1) {
        for (int k = 0; k < OW_KIND__COUNT; k++)
            if (!strcmp(a.positional[0], ow_registry_kind_name((ow_registry_kind)k)))
                want = k;
        if (want < 0) {
            fprintf(stderr, "optwrap list: unknown kind '%s' (kinds:", a.positional[0]);
            for (int k = 0; k < OW_KIND__COUNT; k++)
                fprintf(stderr, " %s", ow_registry_kind_name((ow_registry_kind)k));
            fprintf(stderr, ")\n");
            return CLI_USAGE;
        }
    }
    bool keys = cli_value(&a, list_options, n_opts, "--keys") != NULL;
    int last_kind = -1;
    for (const ow_entry *e = ow_registry_next(NULL); e; e = ow_registry_next(e)) {
        if (want >= 0 && (int)e->kind != want)
            continue;
        if ((int)e->kind != last_kind) {
            printf("%s%s:\n", last_kind < 0 ? "" : "\n", ow_registry_kind_name(e->kind));
            last_kind = (int)e->kind;
        }
        char name[128];
        snprintf(name, sizeof name, "%s.%s", e->scope ? e->scope : "mmengine", e->name);
        printf("  %-44s %s\n", name, e->summary);
        for (const ow_key *k = e->keys; keys && k->name; k++)
            printf("      %-22s %-8s %s%s\n", k->name, type_word(k->type),
                   k->def ? "default " : (k->flags & OW_KEY_REQUIRED ? "required" : ""),
                   k->def ? k->def : "");
    }
    return CLI_OK;
}
