/* testlib.c -- shared Check helpers (see testlib.h). */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

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

char *ow_test_slurp(const char *path)
{
    char *text = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow__read_file(path, &text, NULL, &err), &err);
    return text;
}

int ow_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
