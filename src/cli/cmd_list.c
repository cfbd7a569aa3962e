/* cmd_list.c -- `optwrap list [KIND | NAME]`: the registry's entries with their one-line
 * descriptions, and with --keys every declared key and its default; for optimizers also
 * timm's lookahead_ composites and the names optwrap refuses, with the reason. */
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

static void print_entry(const ow_entry *e, bool keys)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", e->scope ? e->scope : "mmengine", e->name);
    printf("  %-44s %s\n", name, e->summary);
    for (const ow_key *k = e->keys; keys && k->name; k++)
        printf("      %-22s %-8s %s%s\n", k->name, type_word(k->type),
               k->def ? "default " : (k->flags & OW_KEY_REQUIRED ? "required" : ""),
               k->def ? k->def : "");
}

/* What optimizer listings add after the entries. */
static void print_optimizer_extras(void)
{
    printf("  %-44s %s\n", "timm.lookahead_<name>",
           "timm Lookahead (lookahead_alpha 0.5, lookahead_k 6) over any timm name");
    char name[128];
    for (size_t i = 0; ow_registry_refused(OW_KIND_OPTIMIZER, i, name, sizeof name); i++)
        printf("  %-44s refused: %s\n", name,
               ow_registry_refusal(OW_KIND_OPTIMIZER, name));
}

/* One entry by name, of any kind (optimizers first). */
static int list_one(const char *name, bool keys)
{
    for (int k = 0; k < OW_KIND__COUNT; k++) {
        const ow_entry *e = ow_registry_find((ow_registry_kind)k, name);
        if (e) {
            printf("%s:\n", ow_registry_kind_name(e->kind));
            print_entry(e, keys);
            return CLI_OK;
        }
    }
    const char *reason = ow_registry_refusal(OW_KIND_OPTIMIZER, name);
    if (reason)
        fprintf(stderr, "optwrap list: '%s' is refused: %s\n", name, reason);
    else
        fprintf(stderr, "optwrap list: no kind or entry named '%s'\n", name);
    return CLI_USAGE;
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
    bool keys = cli_value(&a, list_options, n_opts, "--keys") != NULL;
    if (a.n_positional > 1)
        return fprintf(stderr, "usage: optwrap %s\n", cmd->usage), CLI_USAGE;
    if (a.n_positional == 1) {
        for (int k = 0; k < OW_KIND__COUNT; k++)
            if (!strcmp(a.positional[0], ow_registry_kind_name((ow_registry_kind)k)))
                want = k;
        if (want < 0)
            return list_one(a.positional[0], keys);
    }
    int last_kind = -1;
    for (const ow_entry *e = ow_registry_next(NULL); e; e = ow_registry_next(e)) {
        if (want >= 0 && (int)e->kind != want)
            continue;
        if ((int)e->kind != last_kind) {
            if (last_kind == OW_KIND_OPTIMIZER)
                print_optimizer_extras();
            printf("%s%s:\n", last_kind < 0 ? "" : "\n", ow_registry_kind_name(e->kind));
            last_kind = (int)e->kind;
        }
        print_entry(e, keys);
    }
    if (last_kind == OW_KIND_OPTIMIZER)
        print_optimizer_extras();
    return CLI_OK;
}
