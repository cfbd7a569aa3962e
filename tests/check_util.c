/* check_util.c -- the small shared pieces: error table and formatting, Python-repr
 * doubles, did-you-mean, YAML scalar typing and positions, duplicate keys. */
#include "testlib.h"

#include <math.h>
#include <string.h>

START_TEST(error_table_complete)
{
    for (int c = 0; c < OW_ERR__COUNT; c++) {
        ck_assert_str_ne(ow_error_code_name(c), "OW_ERR_?");
        ck_assert_str_ne(ow_strerror(c), "unknown error");
    }
    ck_assert_str_eq(ow_error_code_name(OW_ERR__COUNT), "OW_ERR_?");
    ck_assert_str_eq(ow_error_code_name(OW_ERR_UNKNOWN_KEY), "OW_ERR_UNKNOWN_KEY");
}
END_TEST

START_TEST(error_first_wins_and_formats)
{
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow__error(&err, OW_ERR_TYPE, "a.yaml", 3, 7, "inner %d", 1),
                     OW_ERR_TYPE);
    ck_assert_int_eq(ow__error(&err, OW_ERR_RANGE, "b.yaml", 1, 1, "outer"),
                     OW_ERR_RANGE);
    char buf[128];
    ow_error_format(&err, buf, sizeof buf);
    ck_assert_str_eq(buf, "a.yaml:3:7: inner 1");
    ow_error_clear(&err);
    ow__error(&err, OW_ERR_IO, "c.yaml", 0, 0, "cannot open");
    ow_error_format(&err, buf, sizeof buf);
    ck_assert_str_eq(buf, "c.yaml: cannot open");
    /* NULL err is allowed everywhere */
    ck_assert_int_eq(ow__error(NULL, OW_ERR_IO, NULL, 0, 0, "x"), OW_ERR_IO);
}
END_TEST

static const struct {
    double v;
    const char *repr;
} repr_cases[] = {
    {0.1, "0.1"},
    {1.0, "1.0"},
    {0.0, "0.0"},
    {-0.0, "-0.0"},
    {1e-05, "1e-05"},
    {5e-05, "5e-05"},
    {0.0001, "0.0001"},
    {1e-08, "1e-08"},
    {0.30000000000000004, "0.30000000000000004"},
    {9e-05, "9e-05"},
    {1e16, "1e+16"},
    {123456789012345678.0, "1.2345678901234568e+17"},
    {1e15, "1000000000000000.0"},
    {0.0026000000000000003, "0.0026000000000000003"},
    {2.5, "2.5"},
    {-3.75e-7, "-3.75e-07"},
    {0.274625, "0.274625"},
    {100.0, "100.0"},
    {1.5e300, "1.5e+300"},
    {INFINITY, "inf"},
};

START_TEST(format_double_like_python_repr)
{
    char buf[40];
    ow__format_double(repr_cases[_i].v, buf, sizeof buf);
    ck_assert_str_eq(buf, repr_cases[_i].repr);
}
END_TEST

START_TEST(closest_suggests_typos_only)
{
    static const char *const keys[] = {"norm_decay_mult", "bias_decay_mult",
                                       "bias_lr_mult", "custom_keys", NULL};
    ck_assert_str_eq(ow__closest("norm_decay_mul", keys), "norm_decay_mult");
    ck_assert_str_eq(ow__closest("bias_lr_mul", keys), "bias_lr_mult");
    ck_assert_str_eq(ow__closest("custom_key", keys), "custom_keys");
    ck_assert_ptr_null(ow__closest("momentum", keys));
    ck_assert_uint_eq(ow__edit_distance("kitten", "sitting", 10), 3);
}
END_TEST

static ow_cfg *parse(const char *text, ow_error *err)
{
    ow_cfg *c = NULL;
    ow_error_clear(err);
    ow__cfg_parse(text, strlen(text), "t.yaml", &c, err);
    return c;
}

START_TEST(scalars_follow_yaml_1_2_core)
{
    ow_error err;
    ow_cfg *c = parse("a: 1e-3\nb: 0\nc: 0.0\nd: yes\ne: true\nf: ~\ng: '1'\n"
                      "h: .inf\ni: -.inf\nj: 0x10\nk: [0.9, 0.999]\nl: 1_000\nm: \"x\"\n",
                      &err);
    ow_check_ok(err.code, &err);
    ck_assert_int_eq(ow_cfg_get_type(ow_cfg_find(c, "a")), OW_CFG_FLOAT);
    ck_assert_double_eq(ow_cfg_find(c, "a")->v.d, 1e-3);
    ck_assert_int_eq(ow_cfg_get_type(ow_cfg_find(c, "b")), OW_CFG_INT);
    ck_assert_int_eq(ow_cfg_get_type(ow_cfg_find(c, "c")), OW_CFG_FLOAT);
    ck_assert_int_eq(ow_cfg_get_type(ow_cfg_find(c, "d")), OW_CFG_STRING);
    ck_assert_int_eq(ow_cfg_get_type(ow_cfg_find(c, "e")), OW_CFG_BOOL);
    ck_assert_int_eq(ow_cfg_get_type(ow_cfg_find(c, "f")), OW_CFG_NULL);
    ck_assert_int_eq(ow_cfg_get_type(ow_cfg_find(c, "g")), OW_CFG_STRING);
    ck_assert(isinf(ow_cfg_find(c, "h")->v.d) && ow_cfg_find(c, "h")->v.d > 0);
    ck_assert(isinf(ow_cfg_find(c, "i")->v.d) && ow_cfg_find(c, "i")->v.d < 0);
    ck_assert_int_eq(ow_cfg_find(c, "j")->v.i, 16);
    ck_assert_int_eq(ow_cfg_get_size(ow_cfg_find(c, "k")), 2);
    ck_assert_int_eq(ow_cfg_get_type(ow_cfg_find(c, "l")), OW_CFG_STRING);
    ck_assert_int_eq(ow_cfg_get_type(ow_cfg_find(c, "m")), OW_CFG_STRING);
    const ow_cfg *k1 = ow_cfg_find(c, "k.1");
    ck_assert_int_eq(ow_cfg_get_line(k1), 11);
    ck_assert_int_eq(ow_cfg_get_column(k1), 10);
    ow_cfg_free(c);
}
END_TEST

START_TEST(json_is_read_as_yaml_flow)
{
    ow_error err;
    ow_cfg *c =
        parse("{\"a\": [1, 2.5, 1e-05], \"b\": {\"c\": null, \"d\": false}}", &err);
    ow_check_ok(err.code, &err);
    ck_assert_double_eq(ow_cfg_find(c, "a.2")->v.d, 1e-05);
    ck_assert_int_eq(ow_cfg_get_type(ow_cfg_find(c, "a.0")), OW_CFG_INT);
    ck_assert_int_eq(ow_cfg_get_type(ow_cfg_find(c, "b.c")), OW_CFG_NULL);
    ow_cfg_free(c);
}
END_TEST

START_TEST(duplicate_keys_rejected_at_second)
{
    ow_error err;
    ow_cfg *c = parse("optimizer:\n  lr: 0.1\n  lr: 0.2\n", &err);
    ck_assert_ptr_null(c);
    ow_check_error(&err, OW_ERR_DUPLICATE, "t.yaml", 3, 3,
                   "duplicate key 'lr' (first defined at line 2, column 7)");
}
END_TEST

START_TEST(syntax_error_positioned)
{
    ow_error err;
    ow_cfg *c = parse("a: [1, 2\nb: 3\n", &err);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(err.code, OW_ERR_SYNTAX);
    ck_assert_int_gt(err.line, 0);
    ck_assert_str_eq(err.file, "t.yaml");
}
END_TEST

START_TEST(parse_survives_every_allocation_failure)
{
    const char *text = "a: &x {b: [1, 2.5, s], c: 'q'}\nd: *x\n";
    for (long n = 0;; n++) {
        ow_error err;
        ow_error_clear(&err);
        ow_cfg *c = NULL;
        ow__alloc_fail_after(n);
        int rc = ow__cfg_parse(text, strlen(text), "t.yaml", &c, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK) {
            ck_assert_double_eq(ow_cfg_find(c, "d.b.1")->v.d, 2.5);
            ow_cfg_free(c);
            break;
        }
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
        ck_assert_ptr_null(c);
    }
}
END_TEST

static Suite *make_util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, error_table_complete);
    tcase_add_test(tc, error_first_wins_and_formats);
    tcase_add_loop_test(tc, format_double_like_python_repr, 0, OW__ARRAY_LEN(repr_cases));
    tcase_add_test(tc, closest_suggests_typos_only);
    tcase_add_test(tc, scalars_follow_yaml_1_2_core);
    tcase_add_test(tc, json_is_read_as_yaml_flow);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("Errors");
    tcase_add_test(te, duplicate_keys_rejected_at_second);
    tcase_add_test(te, syntax_error_positioned);
    tcase_add_test(te, parse_survives_every_allocation_failure);
    suite_add_tcase(s, te);
    return s;
}

int main(void)
{
    return ow_test_run(make_util_suite());
}
