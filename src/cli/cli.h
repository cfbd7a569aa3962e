/* cli.h -- the optwrap command: its subcommands and the helpers they share (option
 * parsing from sorted tables, config and model loading, error printing). */
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
    const char *usage; /* the synopsis after "usage: optwrap " */
} cli_command;

/* An option of a subcommand. Tables MUST be sorted by name (searched with bsearch). */
typedef struct cli_option {
    const char *name; /* "--format" */
    int arg;          /* 0: flag; 1: one value; 2: values up to the next option */
    const char *help;
} cli_option;

#define CLI_MAX_POSITIONAL 8
#define CLI_MAX_VALUES     64

/* What cli_parse found: a flag is set when values[i] is non-NULL ("" for flags). */
typedef struct cli_args {
    const char *positional[CLI_MAX_POSITIONAL];
    int n_positional;
    const char *values[32];            /* by option index in the table */
    const char *multi[CLI_MAX_VALUES]; /* values of arg==2 options (e.g. --cfg-options) */
    int n_multi;
    int help;
} cli_args;

/* Parses argv (argv[0] is the subcommand). Returns CLI_OK, or CLI_USAGE after printing
 * the problem and the usage. --help / -h sets args->help (the caller prints help). */
int cli_parse(int argc, char **argv, const cli_command *cmd, const cli_option *opts,
              size_t n_opts, cli_args *args);
/* The value of an option by name, or NULL. */
const char *cli_value(const cli_args *args, const cli_option *opts, size_t n_opts,
                      const char *name);
/* Prints "usage: optwrap <usage>", the summary and the option table to f. */
void cli_help(FILE *f, const cli_command *cmd, const cli_option *opts, size_t n_opts);
/* Prints "optwrap: file:line:column: message" to stderr; returns CLI_ERROR. */
int cli_fail(const ow_error *err);

/* The model of `--model PATH` or `--arch NAME` (arch, when given, wins). On failure it
 * prints the error (and, for an unknown arch, where the names are listed). */
int cli_load_model(const char *path, const char *arch, ow_model **out, ow_error *err);

/* Loads CONFIG (a file path, or inline YAML/JSON flow starting with '{': a whole config
 * if it has an `optim_wrapper` key, else the optim_wrapper itself) and applies the
 * --cfg-options assignments in order. */
int cli_load_config(const char *arg, const char *const *overrides, int n_overrides,
                    ow_cfg **out, ow_error *err);

/* The subcommands, each in its own file. */
int cli_check(int argc, char **argv);
int cli_print_config(int argc, char **argv);
int cli_list(int argc, char **argv);
int cli_model(int argc, char **argv);
int cli_groups(int argc, char **argv);
int cli_replay(int argc, char **argv);   /* cmd_replay.c */
int cli_bench(int argc, char **argv);    /* cmd_bench.c */
int cli_schedule(int argc, char **argv); /* cmd_schedule.c */
int cli_train(int argc, char **argv);    /* cmd_train.c: examples/digits/trainer.c */

/* The command table (main.c), for help and tests. */
extern const cli_command cli_commands[];
const cli_command *cli_find_command(const char *name);

#endif
