/* testlib.c -- shared Check helpers (see testlib.h). */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void ow__check_error(const char *tf, int tl, const ow_error *err, int code,
                     const char *file_suffix, int line, int column, const char *message)
{
    char buf[1024];
    ow_error_format(err, buf, sizeof buf);
    ck_assert_msg(err->code == code, "%s:%d: expected %s, got %s (%s)", tf, tl,
                  ow_error_code_name(code), ow_error_code_name(err->code), buf);
    if (file_suffix) {
        size_t lf = strlen(err->file), ls = strlen(file_suffix);
        ck_assert_msg(lf >= ls && strcmp(err->file + lf - ls, file_suffix) == 0,
                      "%s:%d: error file '%s' does not end with '%s'", tf, tl, err->file,
                      file_suffix);
    }
    ck_assert_msg(err->line == line && err->column == column,
                  "%s:%d: expected position %d:%d, got %d:%d (%s)", tf, tl, line, column,
                  err->line, err->column, buf);
    if (message)
        ck_assert_msg(strcmp(err->message, message) == 0,
                      "%s:%d: expected message\n  '%s'\ngot\n  '%s'", tf, tl, message,
                      err->message);
}

void ow__check_ok(const char *tf, int tl, int rc, const ow_error *err)
{
    if (rc != OW_OK) {
        char buf[1024];
        ow_error_format(err, buf, sizeof buf);
        ck_abort_msg("%s:%d: unexpected error %s: %s", tf, tl, ow_error_code_name(rc),
                     buf);
    }
}

const char *ow_test_path(char *buf, size_t n, const char *dir, const char *rel)
{
    snprintf(buf, n, "%s/%s", dir, rel);
    return buf;
}

DIR *ow_test_opendir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "missing test data folder %s\n", dir);
        exit(EXIT_FAILURE);
    }
    return d;
}

char *ow_test_slurp(const char *path)
{
    char *text = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow__read_file(path, &text, NULL, &err), &err);
    return text;
}

ow_cli_result ow_test_cli(const char *args)
{
    char out_path[] = "/tmp/ow_cli_outXXXXXX", err_path[] = "/tmp/ow_cli_errXXXXXX";
    int fo = mkstemp(out_path), fe = mkstemp(err_path);
    ck_assert(fo >= 0 && fe >= 0);
    close(fo);
    close(fe);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s/..' && '%s/optwrap' %s >'%s' 2>'%s'",
             OW_TEST_CONFIGS, OW_TEST_BUILDDIR, args, out_path, err_path);
    int st = system(cmd);
    ow_cli_result r = {.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1};
    r.out = ow_test_slurp(out_path);
    r.err = ow_test_slurp(err_path);
    unlink(out_path);
    unlink(err_path);
    return r;
}

void ow_test_cli_free(ow_cli_result *r)
{
    ow_free(r->out);
    ow_free(r->err);
}

int ow_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

const char ow_test_layer_model[] =
    "format: optwrap-model/1\n"
    "name: tiny\n"
    "group_matcher: {stem: '^embed', blocks: [['^blocks\\.(\\d+)', null]]}\n"
    "modules:\n"
    "  - {name: '', type: Net}\n"
    "  - {name: embed, type: Linear, kind: linear, params: [{name: weight, shape: [2, "
    "2]}]}\n"
    "  - {name: blocks, type: ModuleList}\n"
    "  - {name: blocks.0, type: Linear, kind: linear, params: [{name: weight, shape: [2, "
    "2]}]}\n"
    "  - {name: blocks.1, type: Linear, kind: linear, params: [{name: weight, shape: [2, "
    "2]}]}\n";
