/* main.c -- the optwrap command: one table of subcommands, each with --help. */
#include "cli.h"

#include <string.h>

/* One row per subcommand; --help and the consistency test are generated from it. */
const cli_command cli_commands[] = {
    {"bench", cli_bench, "time optimizer steps against the memory-bandwidth pattern",
     "bench [--quick] [--optimizers LIST] [--sizes LIST] [--threads LIST]"},
    {"check", cli_check,
     "validate a config: every type known, every key known, values in range",
     "check CONFIG [--model MODEL.yaml] [--cfg-options K=V ...]"},
    {"groups", cli_groups, "show the param groups a model gets from a config",
     "groups CONFIG (--model MODEL.yaml | --arch NAME) [--format table|json|csv] [--csv] "
     "[--explain] [--cfg-options K=V ...]"},
    {"list", cli_list, "list the registry: names, descriptions, keys and defaults",
     "list [optimizer|constructor|optim_wrapper|scheduler|layer_depth|NAME] [--keys]"},
    {"model", cli_model, "show a model tree: modules, parameters, element counts",
     "model (MODEL.yaml | --arch NAME | --list-archs) [--format summary|yaml]"},
    {"print-config", cli_print_config,
     "print the config after _base_ merging and --cfg-options",
     "print-config CONFIG [--format yaml|json] [--cfg-options K=V ...]"},
    {"replay", cli_replay,
     "re-run a reference optimizer trajectory or schedule and compare",
     "replay FILE.json [--check]"},
    {"schedule", cli_schedule, "the lr/momentum schedule as a chart, SVG or CSV",
     "schedule CONFIG [--iters N | --epochs E --epoch-length L] [-o FILE.svg] [--csv] "
     "[--model MODEL.yaml | --arch NAME] [--cfg-options K=V ...]"},
    {"train", cli_train,
     "train the example MLP on the digits data with a config's optimizer and schedule",
     "train CONFIG [--work-dir DIR] [--resume] [--data PATH] [--cfg-options K=V ...]"},
    {NULL, NULL, NULL, NULL},
};

const cli_command *cli_find_command(const char *name)
{
    for (const cli_command *c = cli_commands; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: optwrap COMMAND [ARGS...]\n\ncommands:\n");
    for (const cli_command *c = cli_commands; c->name; c++)
        fprintf(f, "  %-14s %s\n", c->name, c->summary);
    fprintf(f, "\nRun 'optwrap COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("optwrap %s\n", OW_VERSION_STRING);
        return CLI_OK;
    }
    for (const cli_command *c = cli_commands; c->name; c++)
        if (!strcmp(c->name, argv[1]))
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "optwrap: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
