/* cli.h -- the optwrap command's subcommands and shared helpers. */
#ifndef OW_CLI_H
#define OW_CLI_H

#include "optwrap.h"

#include <stdio.h>

/* Exit statuses: success, a user error (bad config, model...), bad usage. */
enum { CLI_OK = 0, CLI_ERROR = 1, CLI_USAGE = 2 };

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage; /* the --help text after "usage: optwrap " */
} cli_command;

#endif
