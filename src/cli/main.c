/* main.c -- the optwrap command: one table of subcommands, each with --help. */
#include "cli.h"

#include <string.h>

static const cli_command commands[] = {
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: optwrap COMMAND [ARGS...]\n\ncommands:\n");
    for (const cli_command *c = commands; c->name; c++)
        fprintf(f, "  %-14s %s\n", c->name, c->summary);
    fprintf(f, "\nRun 'optwrap COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("optwrap %s\n", OW_VERSION_STRING);
        return CLI_OK;
    }
    for (const cli_command *c = commands; c->name; c++)
        if (!strcmp(c->name, argv[1]))
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "optwrap: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
