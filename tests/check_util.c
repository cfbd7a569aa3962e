/* check_util.c -- the small shared pieces: error table and formatting, Python-repr
 * doubles, did-you-mean, YAML scalar typing and positions, duplicate keys. */
#include "testlib.h"

#include "util/shortest.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
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

/* xorshift64: the same doubles on every run */
static uint64_t next_random(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* The i-th test double: any bit pattern, schedule-like values (an lr in [0, 1e-2),
 * products and ratios of small integers), short decimals and values near powers of two
 * and of ten, both signs. */
static double random_double(uint64_t *x, int i)
{
    uint64_t b = next_random(x);
    double v;
    switch (i % 6) {
    case 0: memcpy(&v, &b, sizeof v); break;
    case 1: v = (double)(b >> 11) / 9007199254740992.0 * 1e-2; break;
    case 2: v = (double)(b % 100000) / (double)(1 + (b >> 32) % 10000); break;
    case 3: v = (double)(b % 1000000) * 0.001; break;
    case 4:
        v = nextafter(ldexp(1.0, (int)(b % 200) - 100), (b >> 40) & 1 ? 0.0 : 1e300);
        break;
    default: v = nextafter(pow(10.0, (double)(b % 60) - 30), (b >> 40) & 1 ? 0.0 : 1e300);
    }
    return (b >> 63) ? -v : v;
}

/* The fast shortest digits are the printf search's, byte for byte, and read back. */
START_TEST(shortest_digits_equal_printf_search)
{
    uint64_t x = UINT64_C(0x9e3779b97f4a7c15);
    int checked = 0;
    for (int i = 0; i < 60000; i++) {
        double v = random_double(&x, i);
        if (v == 0 || !isfinite(v))
            continue;
        char fast[18], ref[18];
        int e_fast, e_ref;
        int n_fast = ow__shortest_digits(v, fast, &e_fast);
        int n_ref = ow__shortest_digits_ref(v, ref, &e_ref);
        if (n_fast != n_ref || e_fast != e_ref || strcmp(fast, ref))
            ck_abort_msg("%.17g: %s e%d, the printf search gives %s e%d", v, fast, e_fast,
                         ref, e_ref);
        char text[40];
        snprintf(text, sizeof text, "%c%c.%se%d", v < 0 ? '-' : '+', fast[0],
                 n_fast > 1 ? fast + 1 : "0", e_fast);
        ck_assert_msg(strtod(text, NULL) == v, "%.17g printed as %s", v, text);
        checked++;
    }
    ck_assert_int_gt(checked, 58000);
}
END_TEST

/* Every double ow__format_double and ow__format_shortest_g print reads back as itself,
 * and no shorter %.*g text does. */
START_TEST(formatted_doubles_read_back)
{
    uint64_t x = UINT64_C(0x2545f4914f6cdd1d);
    for (int i = 0; i < 30000; i++) {
        double v = random_double(&x, i);
        if (isnan(v))
            continue;
        char repr[40], g[40], shorter[40];
        ow__format_double(v, repr, sizeof repr);
        ck_assert_msg(strtod(repr, NULL) == v, "%.17g printed as %s", v, repr);
        int len = ow__format_shortest_g(v, g);
        ck_assert_int_eq(len, (int)strlen(g));
        ck_assert_msg(strtod(g, NULL) == v, "%.17g printed as %s", v, g);
        int prec = 1;
        while (prec < 17) {
            snprintf(shorter, sizeof shorter, "%.*g", prec, v);
            if (strtod(shorter, NULL) == v)
                break;
            prec++;
        }
        snprintf(shorter, sizeof shorter, "%.*g", prec, v);
        ck_assert_str_eq(g, shorter);
    }
}
END_TEST

static const struct {
    double v;
    const char *g;
} shortest_g_cases[] = {
    {0.003, "0.003"},    {0.003000000000000118, "0.003000000000000118"},
    {1e-05, "1e-05"},    {4.5e2, "4.5e+02"},
    {450.5, "450.5"},    {1.5e20, "1.5e+20"},
    {0.0, "0"},          {-0.0, "-0"},
    {0.75, "0.75"},      {0.125, "0.125"},
    {1e-300, "1e-300"},  {4.9406564584124654e-324, "5e-324"},
    {-INFINITY, "-inf"}, {1e23, "1e+23"},
};

START_TEST(shortest_g_like_printf)
{
    char buf[40];
    ow__format_shortest_g(shortest_g_cases[_i].v, buf);
    ck_assert_str_eq(buf, shortest_g_cases[_i].g);
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
    tcase_add_test(tc, shortest_digits_equal_printf_search);
    tcase_add_test(tc, formatted_doubles_read_back);
    tcase_add_loop_test(tc, shortest_g_like_printf, 0, OW__ARRAY_LEN(shortest_g_cases));
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
