/* testlib.h -- helpers shared by the Check suites: error assertions that check every
 * field, paths to the test data, and a main() that runs one suite. */
#ifndef OW_TESTLIB_H
#define OW_TESTLIB_H

#include "internal.h"

#include <check.h>
#include <dirent.h>

/* Asserts err holds code, message and a position. file_suffix: the error's file must
 * end with it (NULL: not checked); line/column 0: no position expected. message: the
 * whole message must equal it. */
#define ow_check_error(err, code, file_suffix, line, column, message)                    \
    ow__check_error(__FILE__, __LINE__, (err), (code), (file_suffix), (line), (column),  \
                    (message))
void ow__check_error(const char *tf, int tl, const ow_error *err, int code,
                     const char *file_suffix, int line, int column, const char *message);

/* Asserts rc == OW_OK, printing the formatted error otherwise. */
#define ow_check_ok(rc, err) ow__check_ok(__FILE__, __LINE__, (rc), (err))
void ow__check_ok(const char *tf, int tl, int rc, const ow_error *err);

/* A path under tests/golden, tests/bad or configs (static buffer per call site is not
 * allowed: the caller passes buf). */
const char *ow_test_path(char *buf, size_t n, const char *dir, const char *rel);

/* Opens a folder of test data; a missing one ends the program with a failure (and its
 * name), so that a tarball without its data fails its suites instead of running no
 * cases. */
DIR *ow_test_opendir(const char *dir);

/* Reads a whole file into a string (fails the test if it cannot). Caller frees. */
char *ow_test_slurp(const char *path);

/* What `optwrap ARGS` did: exit status, stdout and stderr (owned; ow_test_cli_free). */
typedef struct ow_cli_result {
    int status;
    char *out, *err;
} ow_cli_result;

/* Runs the built `optwrap ARGS` (a shell command line) from the source tree, so that
 * relative paths such as configs/x.yaml work. */
ow_cli_result ow_test_cli(const char *args);
void ow_test_cli_free(ow_cli_result *r);

/* A tiny model with a timm group_matcher: embed, blocks.0, blocks.1 (each a 2x2 Linear
 * weight) at layer ids 0, 1, 2 for timm's layer decay. */
extern const char ow_test_layer_model[];

/* Runs a suite and returns the process exit status. */
int ow_test_run(Suite *s);

#endif
