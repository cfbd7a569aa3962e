/* check_cfg.c -- the config layer: _base_ chains and merging, {{ }} templates,
 * --cfg-options overrides, YAML/JSON output, the schema validator, the bad-config
 * corpus in tests/bad/cfg and allocation failures in each entry point. */
#include "cfg/cfg_internal.h"
#include "testlib.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------- */

/* OW_TEST_DATA and OW_TEST_BAD, canonical: base paths are normalised by the loader,
 * and a build directory's "build/../tests" would otherwise show in two spellings. */
static char *data_root, *bad_root;

static const char *data_path(char *buf, size_t n, const char *rel)
{
    snprintf(buf, n, "%s/cfg/%s", data_root, rel);
    return buf;
}

static ow_cfg *load_data(const char *rel)
{
    char path[1024];
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    ow_check_ok(ow_cfg_load(data_path(path, sizeof path, rel), &cfg, &err), &err);
    return cfg;
}

static ow_cfg *parse_text(const char *text)
{
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    ow_check_ok(ow__cfg_parse(text, strlen(text), "expected", &cfg, &err), &err);
    return cfg;
}

/* Asserts that cfg equals the tree written as YAML in `expected`. */
#define check_tree(cfg, expected) check_tree_at(__LINE__, (cfg), (expected))
static void check_tree_at(int line, const ow_cfg *cfg, const char *expected)
{
    ow_cfg *want = parse_text(expected);
    if (!ow__cfg_equal(cfg, want)) {
        char *got = NULL;
        ow_cfg_save_yaml(cfg, &got, NULL);
        ck_abort_msg("line %d: tree differs; expected\n%s\ngot\n%s", line, expected, got);
    }
    ow_cfg_free(want);
}

#define check_pos(node, suffix, line, column)                                            \
    check_pos_at(__LINE__, (node), (suffix), (line), (column))
static void check_pos_at(int at, const ow_cfg *node, const char *suffix, int line,
                         int column)
{
    ck_assert_msg(node != NULL, "line %d: no node", at);
    const char *file = ow_cfg_get_file(node);
    size_t lf = file ? strlen(file) : 0, ls = strlen(suffix);
    ck_assert_msg(file && lf >= ls && !strcmp(file + lf - ls, suffix),
                  "line %d: file '%s' does not end with '%s'", at, file ? file : "(null)",
                  suffix);
    ck_assert_msg(ow_cfg_get_line(node) == line && ow_cfg_get_column(node) == column,
                  "line %d: expected %d:%d, got %d:%d", at, line, column,
                  ow_cfg_get_line(node), ow_cfg_get_column(node));
}

/* ---- Inherit ------------------------------------------------------------------- */

START_TEST(chain_merges_three_levels)
{
    ow_cfg *cfg = load_data("chain/top.yaml");
    check_tree(cfg,
               "optim_wrapper:\n"
               "  type: OptimWrapper\n"
               "  optimizer: {type: AdamW, lr: 0.01, momentum: 0.9, betas: [0.8, 0.9],\n"
               "              weight_decay: 0.05}\n"
               "  paramwise_cfg: {norm_decay_mult: 0.0}\n"
               "  clip_grad: null\n"
               "model: {depth: 50}\n"
               "work: top\n");
    /* every value keeps the place where it was written, bases included */
    check_pos(ow_cfg_find(cfg, "optim_wrapper.optimizer.momentum"),
              "/chain_bases/leaf.yaml", 6, 15);
    check_pos(ow_cfg_find(cfg, "optim_wrapper.optimizer.type"), "/chain_bases/mid.yaml",
              4, 11);
    check_pos(ow_cfg_find(cfg, "optim_wrapper.optimizer.lr"), "/chain/top.yaml", 4, 9);
    check_pos(ow_cfg_find(cfg, "optim_wrapper.optimizer.betas.1"), "/chain/top.yaml", 5,
              18);
    check_pos(cfg, "/chain/top.yaml", 1, 1);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(two_bases_delete_and_list_replacement)
{
    ow_cfg *cfg = load_data("two_bases/child.yaml");
    /* _delete_ replaced the SGD dict; the list replaced the JSON base's list; the
     * _delete_ of a dict without base value is dropped, not leaked */
    check_tree(cfg, "optim_wrapper:\n"
                    "  optimizer: {type: AdamW, lr: 0.001}\n"
                    "  paramwise_cfg: {bias_lr_mult: 2.0}\n"
                    "param_scheduler: [{type: LinearLR, end: 5}]\n"
                    "train_cfg: {max_epochs: 90}\n");
    check_pos(ow_cfg_find(cfg, "param_scheduler.0"), "/two_bases/child.yaml", 10, 5);
    check_pos(ow_cfg_find(cfg, "train_cfg.max_epochs"), "/two_bases/sched.json", 2, 30);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(refs_resolve_against_bases)
{
    ow_cfg *cfg = load_data("refs/child.yaml");
    /* `lr: {{_base_.lr}}` sees the bases' 0.02, not the child's own lr: 0.5 */
    check_tree(cfg,
               "lr: 0.5\n"
               "betas: [0.9, 0.99]\n"
               "optimizer: {type: SGD, lr: 0.1}\n"
               "sched: [{type: A}, {type: B}]\n"
               "optim_wrapper:\n"
               "  optimizer: {type: AdamW, lr: 0.02, betas: [0.9, 0.99], inner: SGD}\n"
               "  from_list: B\n"
               "  whole: {type: SGD, lr: 0.1}\n"
               "  pair: [0.02, 1]\n");
    /* a copied value keeps the base's position */
    check_pos(ow_cfg_find(cfg, "optim_wrapper.optimizer.lr"), "/refs/base.yaml", 1, 5);
    check_pos(ow_cfg_find(cfg, "optim_wrapper.pair.1"), "/refs/child.yaml", 10, 25);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(load_string_bases_and_names)
{
    char path[1024], text[2048];
    snprintf(text, sizeof text,
             "_base_: %s\nlr: '{{_base_.optimizer.lr}}'\noptimizer: null\n",
             data_path(path, sizeof path, "refs/base.yaml"));
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    ow_check_ok(ow_cfg_load_string(text, "inline.yaml", &cfg, &err), &err);
    /* a scalar may replace a base's dict */
    check_tree(cfg, "lr: 0.1\nbetas: [0.9, 0.99]\noptimizer: null\n"
                    "sched: [{type: A}, {type: B}]\n");
    check_pos(ow_cfg_find(cfg, "optimizer"), "inline.yaml", 3, 12);
    ow_cfg_free(cfg);
    ow_check_ok(ow_cfg_load_string("a: 1", NULL, &cfg, &err), &err);
    ck_assert_str_eq(ow_cfg_get_file(cfg), "<string>");
    ow_cfg_free(cfg);
    ow_check_ok(ow_cfg_load_string("", NULL, &cfg, &err), &err);
    check_tree(cfg, "{}");
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(delete_keys_always_stripped)
{
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    ow_check_ok(ow_cfg_load_string("_delete_: true\n"
                                   "a: {_delete_: false, b: {_delete_: true, c: 1}}\n"
                                   "l: [{_delete_: true, d: 2}]\n__x: 1\n",
                                   NULL, &cfg, &err),
                &err);
    check_tree(cfg, "a: {b: {c: 1}}\nl: [{d: 2}]\n");
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(top_level_file_errors)
{
    ow_error err;
    ow_cfg *cfg = (ow_cfg *)&err; /* must come back NULL */
    ow_error_clear(&err);
    ck_assert_int_eq(ow_cfg_load("/nonexistent/optwrap/x.yaml", &cfg, &err), OW_ERR_IO);
    ck_assert_ptr_null(cfg);
    ow_check_error(&err, OW_ERR_IO, "/nonexistent/optwrap/x.yaml", 0, 0,
                   "cannot open: No such file or directory");
    ow_error_clear(&err);
    ck_assert_int_eq(ow_cfg_load("configs/x.py", &cfg, &err), OW_ERR_UNSUPPORTED);
    ow_check_error(&err, OW_ERR_UNSUPPORTED, "configs/x.py", 0, 0,
                   "Python configs are not supported: optwrap reads only YAML and JSON "
                   "configs (.yaml, .yml, .json)");
    ow_error_clear(&err);
    ck_assert_int_eq(ow_cfg_load("x.cfg", &cfg, &err), OW_ERR_UNSUPPORTED);
    ow_check_error(&err, OW_ERR_UNSUPPORTED, "x.cfg", 0, 0,
                   "only .yaml, .yml and .json configs are supported");
    ow_error_clear(&err);
    ck_assert_int_eq(ow_cfg_load(NULL, &cfg, &err), OW_ERR_MISUSE);
    ck_assert_int_eq(ow_cfg_load("x.yaml", NULL, NULL), OW_ERR_MISUSE);
    ck_assert_int_eq(ow_cfg_load_string(NULL, NULL, &cfg, NULL), OW_ERR_MISUSE);
}
END_TEST

START_TEST(error_describes_the_last_call)
{
    /* every call taking an ow_error resets it on entry: an earlier error, or garbage,
     * never shows through (the include trail is this call's own) */
    char path[1024];
    snprintf(path, sizeof path, "%s/cfg/deep_chain/config.yaml", bad_root);
    ow_error fresh, err;
    ow_cfg *cfg = NULL;
    ck_assert_int_eq(ow_cfg_load(path, &cfg, &fresh), OW_ERR_INHERIT);
    memset(&err, 0xAA, sizeof err);
    ck_assert_int_eq(ow_cfg_load(path, &cfg, &err), OW_ERR_INHERIT);
    ck_assert_ptr_null(cfg);
    ow_check_error(&err, fresh.code, fresh.file, fresh.line, fresh.column, fresh.message);
    ow__error(&err, OW_ERR_RANGE, "first.yaml", 1, 2, "first");
    ck_assert_int_eq(ow_cfg_load(path, &cfg, &err), OW_ERR_INHERIT);
    ck_assert_str_eq(err.message, fresh.message);
    /* a call that succeeds leaves "no error", whatever was there */
    memset(&err, 0xAA, sizeof err);
    ck_assert_int_eq(ow_cfg_load_string("a: 1\n", NULL, &cfg, &err), OW_OK);
    ow_check_error(&err, OW_OK, "", 0, 0, "");
    char buf[64];
    ow_error_format(&err, buf, sizeof buf);
    ck_assert_str_eq(buf, "");
    ow_cfg_free(cfg);
}
END_TEST

/* ---- Templates ----------------------------------------------------------------- */

START_TEST(file_variables_and_env_defaults)
{
    unsetenv("OW_TEST_CFG_PORT");
    unsetenv("OW_TEST_CFG_HOST");
    ow_cfg *cfg = load_data("vars/run.yaml");
    char want[2048];
    snprintf(want, sizeof want,
             "work_dir: '%s/cfg/vars/work'\nname: run\nbase: run.yaml\next: .yaml\n"
             "port: 8080\nhost: localhost\nquoted: '8080'\nmixed: p1q\nlist: [1, 2]\n"
             "run_key: 1\nbraces: '{{ not a template }}'\n",
             data_root);
    check_tree(cfg, want);
    /* placeholders have the template's length: later columns are unchanged */
    check_pos(ow_cfg_find(cfg, "port"), "/vars/run.yaml", 5, 7);
    check_pos(ow_cfg_find(cfg, "list.1"), "/vars/run.yaml", 9, 33);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(env_value_is_typed_where_plain)
{
    setenv("OW_TEST_CFG_PORT", "1.5e-3", 1);
    setenv("OW_TEST_CFG_HOST", "example.org", 1);
    ow_cfg *cfg = load_data("vars/run.yaml");
    ck_assert_double_eq(ow_cfg_find(cfg, "port")->v.d, 1.5e-3);
    ck_assert_double_eq(ow_cfg_find(cfg, "list.0")->v.d, 1.5e-3);
    ck_assert_str_eq(ow_cfg_find(cfg, "quoted")->v.s, "1.5e-3");
    ck_assert_str_eq(ow_cfg_find(cfg, "mixed")->v.s, "p1.5e-3q");
    ck_assert_str_eq(ow_cfg_find(cfg, "host")->v.s, "example.org");
    ow_cfg_free(cfg);
    unsetenv("OW_TEST_CFG_PORT");
    unsetenv("OW_TEST_CFG_HOST");
}
END_TEST

static const struct {
    const char *text, *path;
} base_refs[] = {
    {"{{_base_.lr}}", "lr"},
    {"{{ _base_.optimizer.lr }}", "optimizer.lr"},
    {"{{_base_.sched.0}}", "sched.0"},
    {"{{_base_.}}", NULL},
    {"{{_base_lr}}", NULL},
    {"x{{_base_.lr}}", NULL},
    {"{{_base_.a b}}", NULL},
    {"{{$A:1}}", NULL},
    {"{_base_.lr}", NULL},
};

START_TEST(base_reference_syntax)
{
    const char *path = NULL;
    size_t len = 0;
    bool is_ref = ow__cfg_base_ref(base_refs[_i].text, &path, &len);
    ck_assert_int_eq(is_ref, base_refs[_i].path != NULL);
    if (is_ref) {
        ck_assert_uint_eq(len, strlen(base_refs[_i].path));
        ck_assert(!strncmp(path, base_refs[_i].path, len));
    }
}
END_TEST

/* ---- Overrides ----------------------------------------------------------------- */

static ow_cfg *base_for_overrides(void)
{
    ow_cfg *cfg = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(
        ow_cfg_load_string("optim_wrapper:\n"
                           "  optimizer: {type: AdamW, lr: 0.001, betas: [0.9, 0.999]}\n"
                           "  paramwise_cfg: {norm_decay_mult: 0.0}\n"
                           "param_scheduler:\n"
                           "  - {type: LinearLR, end: 5}\n"
                           "  - {type: CosineAnnealingLR, begin: 5}\n"
                           "name: run\n",
                           "base.yaml", &cfg, &err),
        &err);
    return cfg;
}

START_TEST(override_values_and_positions)
{
    ow_cfg *cfg = base_for_overrides();
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_set(cfg, "optim_wrapper.optimizer.lr=1e-4", &err), &err);
    ow_check_ok(ow_cfg_set(cfg, "optim_wrapper.optimizer.betas=[0.9,0.95]", &err), &err);
    ow_check_ok(
        ow_cfg_set(cfg, "optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult=10", &err),
        &err);
    ow_check_ok(ow_cfg_set(cfg,
                           "optim_wrapper.paramwise_cfg={bias_decay_mult: 0, "
                           "custom_keys: {head: {decay_mult: 0.5}}}",
                           &err),
                &err);
    ow_check_ok(ow_cfg_set(cfg, "param_scheduler.1.end=90", &err), &err);
    ow_check_ok(ow_cfg_set(cfg, "optim_wrapper.optimizer.betas.1=0.99", &err), &err);
    ow_check_ok(
        ow_cfg_set(cfg, "param_scheduler.0={_delete_: true, type: ConstantLR}", &err),
        &err);
    ow_check_ok(ow_cfg_set(cfg, "name= x y ", &err), &err);
    ow_check_ok(ow_cfg_set(cfg, "new.deep.key=true", &err), &err);
    check_tree(cfg, "optim_wrapper:\n"
                    "  optimizer: {type: AdamW, lr: 0.0001, betas: [0.9, 0.99]}\n"
                    "  paramwise_cfg:\n"
                    "    norm_decay_mult: 0.0\n"
                    "    custom_keys: {head: {lr_mult: 10, decay_mult: 0.5}}\n"
                    "    bias_decay_mult: 0\n"
                    "param_scheduler:\n"
                    "  - {type: ConstantLR}\n"
                    "  - {type: CosineAnnealingLR, begin: 5, end: 90}\n"
                    "name: x y\n"
                    "new: {deep: {key: true}}\n");
    /* value nodes: the column where VALUE starts in the assignment */
    check_pos(ow_cfg_find(cfg, "optim_wrapper.optimizer.lr"), "<cfg-options>", 1, 28);
    check_pos(ow_cfg_find(cfg, "optim_wrapper.optimizer.betas"), "<cfg-options>", 1, 31);
    check_pos(ow_cfg_find(cfg, "optim_wrapper.optimizer.betas.0"), "<cfg-options>", 1,
              32);
    check_pos(ow_cfg_find(cfg, "optim_wrapper.optimizer.betas.1"), "<cfg-options>", 1,
              33);
    check_pos(ow_cfg_find(cfg, "param_scheduler.1.end"), "<cfg-options>", 1, 23);
    check_pos(ow_cfg_find(cfg, "name"), "<cfg-options>", 1, 7);
    /* created maps sit at their first key; merged maps keep their place */
    check_pos(ow_cfg_find(cfg, "optim_wrapper.paramwise_cfg.custom_keys"),
              "<cfg-options>", 1, 41);
    check_pos(ow_cfg_find(cfg, "new.deep"), "<cfg-options>", 1, 10);
    check_pos(ow_cfg_find(cfg, "optim_wrapper.optimizer"), "base.yaml", 2, 14);
    check_pos(ow_cfg_find(cfg, "param_scheduler.1.begin"), "base.yaml", 6, 38);
    ow_cfg_free(cfg);
}
END_TEST

static const struct {
    const char *assignment, *expected;
} override_values[] = {
    {"v=1e-4", "v: 1.0e-4"},
    {"v=5", "v: 5"},
    {"v=-.inf", "v: -.inf"},
    {"v=abc", "v: abc"},
    {"v=true", "v: true"},
    {"v=yes", "v: 'yes'"},
    {"v=", "v: null"},
    {"v=null", "v: null"},
    {"v=~", "v: null"},
    {"v='1e-4'", "v: '1e-4'"},
    {"v=\"a, b\"", "v: 'a, b'"},
    {"v=a,b", "v: 'a,b'"},
    {"v=x: y", "v: 'x: y'"},
    {"v=[]", "v: []"},
    {"v={}", "v: {}"},
    {"v=[[1, 2], {a: b}]", "v: [[1, 2], {a: b}]"},
    {"v=[don't]", "v: [\"don't\"]"},
    {"v=a=b", "v: a=b"},
};

START_TEST(override_value_types)
{
    ow_cfg *cfg = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_new(&cfg, &err), &err);
    ow_check_ok(ow_cfg_set(cfg, override_values[_i].assignment, &err), &err);
    check_tree(cfg, override_values[_i].expected);
    ow_cfg_free(cfg);
}
END_TEST

static const struct {
    const char *assignment;
    int code, column;
    const char *message;
} override_errors[] = {
    {"optim_wrapper", OW_ERR_SYNTAX, 1, "expected KEY=VALUE, got 'optim_wrapper'"},
    {"=1", OW_ERR_SYNTAX, 1, "empty key in '=1'"},
    {"a..b=1", OW_ERR_SYNTAX, 3, "empty key component in 'a..b'"},
    {"a.=1", OW_ERR_SYNTAX, 3, "empty key component in 'a.'"},
    {"a=[0.9,0.95", OW_ERR_SYNTAX, 3, "unbalanced brackets in value '[0.9,0.95'"},
    {"a={x: [1}", OW_ERR_SYNTAX, 3, "unbalanced brackets in value '{x: [1}'"},
    {"a=[1]]", OW_ERR_SYNTAX, 3, "unbalanced brackets in value '[1]]'"},
    {"a=[1] x", OW_ERR_SYNTAX, 7, "did not find expected <document start>"},
    {"a='x' y", OW_ERR_SYNTAX, 7, "did not find expected <document start>"},
    {"param_scheduler.2.end=1", OW_ERR_RANGE, 17,
     "index 2 is out of range for 'param_scheduler', a list of 2 items"},
    {"param_scheduler.x.end=1", OW_ERR_TYPE, 17,
     "'param_scheduler' is a list: 'x' is not an index"},
    {"name.first=a", OW_ERR_TYPE, 6,
     "'name' is a map here but a string in the config (base.yaml:7:7); set '_delete_: "
     "true' in the map to replace it"},
    {"optim_wrapper.optimizer={_delete_: 1}", OW_ERR_TYPE, 36,
     "_delete_: expected bool, got int"},
};

START_TEST(override_errors_leave_tree_unchanged)
{
    ow_cfg *cfg = base_for_overrides();
    ow_cfg *before = ow__cfg_dup(cfg);
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow_cfg_set(cfg, override_errors[_i].assignment, &err),
                     override_errors[_i].code);
    ow_check_error(&err, override_errors[_i].code, "<cfg-options>", 1,
                   override_errors[_i].column, override_errors[_i].message);
    ck_assert(ow__cfg_equal(cfg, before));
    ow_cfg_free(before);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(override_misuse)
{
    ow_cfg *cfg = base_for_overrides();
    ck_assert_int_eq(ow_cfg_set(NULL, "a=1", NULL), OW_ERR_MISUSE);
    ck_assert_int_eq(ow_cfg_set(cfg, NULL, NULL), OW_ERR_MISUSE);
    ck_assert_int_eq(ow_cfg_set((ow_cfg *)ow_cfg_find(cfg, "name"), "a=1", NULL),
                     OW_ERR_MISUSE);
    ow_cfg_free(cfg);
}
END_TEST

/* ---- Emit ---------------------------------------------------------------------- */

START_TEST(yaml_output_exact)
{
    ow_cfg *cfg = parse_text("a: {b: 1, c: [0.9, 0.999], d: {}, e: [], f: null}\n"
                             "l: [{x: 1, y: [1, [2, 3]]}, [a, b], 'true', '']\n"
                             "s: [1e-3, '1e-3', 'a: b', -1, 1e16, .inf, '#x', x#y]\n");
    char *text = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_save_yaml(cfg, &text, &err), &err);
    ck_assert_str_eq(text,
                     "a:\n"
                     "  b: 1\n"
                     "  c: [0.9, 0.999]\n"
                     "  d: {}\n"
                     "  e: []\n"
                     "  f: null\n"
                     "l:\n"
                     "  - x: 1\n"
                     "    y:\n"
                     "      - 1\n"
                     "      - [2, 3]\n"
                     "  - [a, b]\n"
                     "  - \"true\"\n"
                     "  - \"\"\n"
                     "s: [0.001, \"1e-3\", \"a: b\", -1, 1e+16, .inf, \"#x\", x#y]\n");
    ow_free(text);
    ow_cfg_free(cfg);
}
END_TEST

static const char *const round_trip_texts[] = {
    "strings: ['1e-3', 'true', '', 'null', '~', '- x', 'a: b', '#c', ' lead', 'x #y',\n"
    "          \"multi\\nline\", \"tab\\t\", '[x]', '0x1F', '123', '1.5', '.inf', "
    "'yes',\n"
    "          'a,b', '{x}', '...', 'trail:', \"q'\\\"\", \"\\u00e9t\\u00e9\", '*a', "
    "'&b',\n"
    "          '!t', '%p', '@x', '`x', '|', '>', '?', 'x: ']\n"
    "numbers: [0, -7, 9223372036854775807, 0.1, 1e-05, 1e+16, -0.0, .inf, -.inf, "
    "2.5e-300]\n"
    "keys: {'a: b': 1, '1': 2, '': 3, '#': 4, 'true': 5, '- x': 6, plain key: 7}\n"
    "nested: [[[]], [{}], [{a: [1, {b: [c]}]}], {x: [[1, 2], [3]]}]\n"
    "long: [aaaaaaaaaa, bbbbbbbbbb, cccccccccc, dddddddddd, eeeeeeeeee, ffffffffff, g]\n",
    "[1, 2]",
    "just a string",
    "{}",
};

START_TEST(yaml_round_trip)
{
    ow_cfg *cfg = parse_text(round_trip_texts[_i]);
    char *text = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_save_yaml(cfg, &text, &err), &err);
    ow_cfg *back = NULL;
    ow_check_ok(ow__cfg_parse(text, strlen(text), "back", &back, &err), &err);
    ck_assert_msg(ow__cfg_equal(cfg, back), "round trip differs:\n%s", text);
    ow_cfg_free(back);
    ow_free(text);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(loaded_configs_round_trip)
{
    static const char *const files[] = {"chain/top.yaml", "two_bases/child.yaml",
                                        "refs/child.yaml", "vars/run.yaml"};
    for (size_t i = 0; i < OW__ARRAY_LEN(files); i++) {
        ow_cfg *cfg = load_data(files[i]);
        char *text = NULL;
        ow_error err;
        ow_error_clear(&err);
        ow_check_ok(ow_cfg_save_yaml(cfg, &text, &err), &err);
        ow_cfg *back = NULL;
        ow_check_ok(ow_cfg_load_string(text, "printed.yaml", &back, &err), &err);
        ck_assert_msg(ow__cfg_equal(cfg, back), "%s: round trip differs:\n%s", files[i],
                      text);
        ow_cfg_free(back);
        ow_free(text);
        ow_cfg_free(cfg);
    }
}
END_TEST

START_TEST(json_output_exact)
{
    ow_cfg *cfg =
        parse_text("a: 1\nb: [1.0, 1e-05, 0.1]\nc: {d: null, e: true}\n"
                   "f: \"x\\\"y\\n\"\ng: .inf\nh: .nan\ni: -.inf\nj: []\nk: {}\n");
    char *text = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_save_json(cfg, &text, &err), &err);
    ck_assert_str_eq(text,
                     "{\"a\": 1, \"b\": [1.0, 1e-05, 0.1], \"c\": {\"d\": null, "
                     "\"e\": true}, \"f\": \"x\\\"y\\n\", \"g\": Infinity, \"h\": NaN, "
                     "\"i\": -Infinity, \"j\": [], \"k\": {}}");
    ow_free(text);
    ow_check_ok(ow_cfg_save_json(NULL, &text, &err), &err);
    ck_assert_str_eq(text, "null");
    ow_free(text);
    ck_assert_int_eq(ow_cfg_save_json(cfg, NULL, NULL), OW_ERR_MISUSE);
    ck_assert_int_eq(ow_cfg_save_yaml(cfg, NULL, NULL), OW_ERR_MISUSE);
    ow_cfg_free(cfg);
}
END_TEST

/* ---- Schema -------------------------------------------------------------------- */

static const ow_key test_keys[] = {
    {.name = "lr",
     .type = OW_T_FLOAT,
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE},
    {.name = "momentum",
     .type = OW_T_NUMBER,
     .def = "0",
     .min = 0,
     .max = 1,
     .flags = OW_KEY_RANGE},
    {.name = "eps",
     .type = OW_T_FLOAT,
     .def = "1e-08",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN},
    {.name = "betas",
     .type = OW_T_NUMLIST,
     .def = "[0.9, 0.999]",
     .min = 0,
     .max = 1,
     .flags = OW_KEY_RANGE},
    {.name = "nesterov", .type = OW_T_BOOL, .def = "false"},
    {.name = "norm_decay_mult", .type = OW_T_FLOAT, .flags = OW_KEY_NULLABLE},
    {.name = "custom_keys", .type = OW_T_MAP, .def = "{}"},
    {.name = "name", .type = OW_T_STRING, .def = "null", .flags = OW_KEY_NULLABLE},
    {.name = "steps", .type = OW_T_INT, .def = "1"},
    {.name = "extra", .type = OW_T_ANY},
    {.name = "milestones", .type = OW_T_LIST},
    {.name = "scale", .type = OW_T_FLOAT, .def = "2"},
    {.name = "gamma",
     .type = OW_T_NUMBER,
     .min = 0,
     .max = 1,
     .flags = OW_KEY_RANGE | OW_KEY_MAX_OPEN},
    {.name = "clip",
     .type = OW_T_NUMBER,
     .min = -INFINITY,
     .max = 10,
     .flags = OW_KEY_RANGE},
    {0},
};

static const char *const type_only[] = {"type", NULL};

static const struct {
    const char *yaml;
    int code, line, column;
    const char *message;
} schema_cases[] = {
    {"lr: 0.1\nnorm_decay_mul: 0", OW_ERR_UNKNOWN_KEY, 2, 17,
     "opt.paramwise_cfg: unknown key 'norm_decay_mul' (did you mean 'norm_decay_mult'?)"},
    {"lr: 0.1\nfoo: 1", OW_ERR_UNKNOWN_KEY, 2, 6,
     "opt.paramwise_cfg: unknown key 'foo' (accepted: lr, momentum, eps, betas, "
     "nesterov, "
     "norm_decay_mult, custom_keys, name, steps, extra, milestones, scale, gamma, clip, "
     "type)"},
    {"typ: SGD\nlr: x", OW_ERR_UNKNOWN_KEY, 1, 6,
     "opt.paramwise_cfg: unknown key 'typ' (did you mean 'type'?)"},
    {"lr: abc", OW_ERR_TYPE, 1, 5, "opt.paramwise_cfg.lr: expected float, got string"},
    {"lr: 0.1\nnorm_decay_mult: x", OW_ERR_TYPE, 2, 18,
     "opt.paramwise_cfg.norm_decay_mult: expected float or null, got string"},
    {"lr: -0.1", OW_ERR_RANGE, 1, 5, "opt.paramwise_cfg.lr: must be >= 0, got -0.1"},
    {"lr: .nan", OW_ERR_RANGE, 1, 5, "opt.paramwise_cfg.lr: must be >= 0, got nan"},
    {"lr: 0.1\nmomentum: 1.5", OW_ERR_RANGE, 2, 11,
     "opt.paramwise_cfg.momentum: must be between 0 and 1, got 1.5"},
    {"lr: 0.1\neps: 0", OW_ERR_RANGE, 2, 6, "opt.paramwise_cfg.eps: must be > 0, got 0"},
    {"lr: 0.1\neps: 0.0", OW_ERR_RANGE, 2, 6,
     "opt.paramwise_cfg.eps: must be > 0, got 0"},
    {"lr: 0.1\ngamma: 1", OW_ERR_RANGE, 2, 8,
     "opt.paramwise_cfg.gamma: must be >= 0 and < 1, got 1"},
    {"lr: 0.1\nclip: 1e3", OW_ERR_RANGE, 2, 7,
     "opt.paramwise_cfg.clip: must be <= 10, got 1000"},
    {"lr: 0.1\nbetas: [0.9, 1.5]", OW_ERR_RANGE, 2, 14,
     "opt.paramwise_cfg.betas[1]: must be between 0 and 1, got 1.5"},
    {"lr: 0.1\nbetas: [0.9, x]", OW_ERR_TYPE, 2, 14,
     "opt.paramwise_cfg.betas[1]: expected number, got string"},
    {"lr: 0.1\nbetas: 0.9", OW_ERR_TYPE, 2, 8,
     "opt.paramwise_cfg.betas: expected list of numbers, got float"},
    {"lr: 0.1\nsteps: 1.0", OW_ERR_TYPE, 2, 8,
     "opt.paramwise_cfg.steps: expected int, got float"},
    {"lr: 0.1\nnesterov: yes", OW_ERR_TYPE, 2, 11,
     "opt.paramwise_cfg.nesterov: expected bool, got string"},
    {"lr: 0.1\ncustom_keys: [1]", OW_ERR_TYPE, 2, 14,
     "opt.paramwise_cfg.custom_keys: expected map, got list"},
    {"lr: 0.1\nmilestones: {}", OW_ERR_TYPE, 2, 13,
     "opt.paramwise_cfg.milestones: expected list, got map"},
    {"lr: 0.1\nname: 3", OW_ERR_TYPE, 2, 7,
     "opt.paramwise_cfg.name: expected string or null, got int"},
    {"lr: null", OW_ERR_TYPE, 1, 5, "opt.paramwise_cfg.lr: expected float, got null"},
    {"momentum: 0.9", OW_ERR_MISSING_KEY, 1, 1,
     "opt.paramwise_cfg: missing required key 'lr'"},
    {"- 1", OW_ERR_TYPE, 1, 1, "opt.paramwise_cfg: expected map, got list"},
    {"lr: 1\nmomentum: 0\nextra: [any, {thing: 1}]\nname: null\ntype: SGD\n"
     "norm_decay_mult: null\nbetas: [0, 1]\neps: 1e-300\ngamma: 0\nclip: -1e9\nscale: 1",
     OW_OK, 0, 0, NULL},
};

START_TEST(schema_messages)
{
    ow_cfg *map = parse_text(schema_cases[_i].yaml);
    ow_error err;
    ow_error_clear(&err);
    int rc = ow__schema_check(map, test_keys, "opt.paramwise_cfg", type_only, &err);
    ck_assert_int_eq(rc, schema_cases[_i].code);
    if (schema_cases[_i].code != OW_OK)
        ow_check_error(&err, schema_cases[_i].code, "expected", schema_cases[_i].line,
                       schema_cases[_i].column, schema_cases[_i].message);
    ow_cfg_free(map);
}
END_TEST

START_TEST(schema_without_context)
{
    static const ow_key two[] = {{.name = "a", .type = OW_T_INT}, {.name = "b"}, {0}};
    static const ow_key none[] = {{0}};
    ow_cfg *map = parse_text("zzz: 1");
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow__schema_check(map, two, NULL, NULL, &err), OW_ERR_UNKNOWN_KEY);
    ow_check_error(&err, OW_ERR_UNKNOWN_KEY, "expected", 1, 6,
                   "unknown key 'zzz' (accepted: a, b)");
    ow_error_clear(&err);
    ck_assert_int_eq(ow__schema_check(map, none, "x", NULL, &err), OW_ERR_UNKNOWN_KEY);
    ow_check_error(&err, OW_ERR_UNKNOWN_KEY, "expected", 1, 6,
                   "x: unknown key 'zzz' (no keys are accepted here)");
    ow_error_clear(&err);
    ck_assert_int_eq(ow__schema_check_value(ow_cfg_find(map, "zzz"), &two[0], "", &err),
                     OW_OK);
    /* an absent map is an empty one */
    ck_assert_int_eq(ow__schema_check(NULL, two, "x", NULL, &err), OW_OK);
    ck_assert_int_eq(ow__schema_check(NULL, test_keys, "x", NULL, &err),
                     OW_ERR_MISSING_KEY);
    ow_check_error(&err, OW_ERR_MISSING_KEY, NULL, 0, 0, "x: missing required key 'lr'");
    ck_assert_ptr_eq(ow__schema_find(test_keys, "eps"), &test_keys[2]);
    ck_assert_ptr_null(ow__schema_find(test_keys, "nope"));
    ck_assert_ptr_null(ow__schema_find(NULL, "eps"));
    ow_cfg_free(map);
}
END_TEST

static const struct {
    const char *key, *expected; /* expected: YAML of {v: default}, NULL: no default */
} defaults[] = {
    {"momentum", "v: 0"},     {"eps", "v: 1.0e-8"},     {"betas", "v: [0.9, 0.999]"},
    {"nesterov", "v: false"}, {"custom_keys", "v: {}"}, {"name", "v: null"},
    {"steps", "v: 1"},        {"scale", "v: 2.0"},      {"lr", NULL},
};

START_TEST(schema_defaults)
{
    const ow_key *key = ow__schema_find(test_keys, defaults[_i].key);
    ow_cfg *v = (ow_cfg *)key;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow__schema_default(key, &v, &err), &err);
    if (!defaults[_i].expected) {
        ck_assert_ptr_null(v);
        return;
    }
    ow_cfg *want = parse_text(defaults[_i].expected);
    ck_assert(ow__cfg_equal(v, ow_cfg_find(want, "v")));
    /* defaults were written in C: no position, at any depth */
    ck_assert_ptr_null(ow_cfg_get_file(v));
    ck_assert_ptr_null(ow_cfg_get_file(ow_cfg_get_item(v, 0)));
    ck_assert_int_eq(ow_cfg_get_line(v), 0);
    ow_cfg_free(want);
    ow_cfg_free(v);
}
END_TEST

START_TEST(schema_bad_default_is_misuse)
{
    static const ow_key bad = {.name = "k", .type = OW_T_LIST, .def = "[1, 2"};
    ow_cfg *v = NULL;
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow__schema_default(&bad, &v, &err), OW_ERR_MISUSE);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(strncmp(err.message, "default of key 'k' is not valid YAML: ", 38),
                     0);
}
END_TEST

/* ---- the bad-config corpus ------------------------------------------------------ */

/* tests/bad/cfg/<case>/{config.yaml, expected}: `expected` holds the formatted error
 * with paths relative to the case directory, then the code's name. */
static char *bad_cases[128];
static size_t n_bad_cases;

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void find_bad_cases(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/cfg", bad_root);
    DIR *d = ow_test_opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)) && n_bad_cases < OW__ARRAY_LEN(bad_cases))
        if (e->d_name[0] != '.')
            bad_cases[n_bad_cases++] = strdup(e->d_name);
    closedir(d);
    qsort(bad_cases, n_bad_cases, sizeof *bad_cases, compare_names);
}

/* Replaces every occurrence of prefix in s (in place). */
static void strip_prefix(char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    char *p;
    while ((p = strstr(s, prefix)))
        memmove(p, p + n, strlen(p + n) + 1);
}

static void temp_dir(char *buf, size_t n);
static void write_text(const char *path, const char *text);

/* A case that needs a symbolic link (a base that is a link to /dev/zero) cannot carry
 * it in the tarball: tar follows links, and /dev/zero never ends. Its file `symlinks`
 * lists "NAME TARGET" lines instead; the case then runs from a copy of its config.yaml
 * in a temporary folder that holds those links. Returns the folder to run from. */
static const char *stage_case(const char *dir, char *tmp, size_t n)
{
    char path[2048], name[256], target[256];
    snprintf(path, sizeof path, "%ssymlinks", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return dir;
    temp_dir(tmp, n - 1);
    while (fscanf(f, "%255s %255s", name, target) == 2) {
        snprintf(path, sizeof path, "%s/%s", tmp, name);
        ck_assert_msg(symlink(target, path) == 0, "symlink %s -> %s", path, target);
    }
    fclose(f);
    snprintf(path, sizeof path, "%sconfig.yaml", dir);
    char *text = ow_test_slurp(path);
    snprintf(path, sizeof path, "%s/config.yaml", tmp);
    write_text(path, text);
    free(text);
    size_t len = strlen(tmp);
    tmp[len] = '/';
    tmp[len + 1] = '\0';
    return tmp;
}

/* Removes what stage_case made: the folder's files and links, then the folder. */
static void unstage_case(const char *tmp)
{
    DIR *d = opendir(tmp);
    char path[2048];
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s%s", tmp, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(tmp);
}

START_TEST(bad_config_corpus)
{
    char dir[1024], path[1100], line[4096], tmp[1024];
    snprintf(dir, sizeof dir, "%s/cfg/%s/", bad_root, bad_cases[_i]);
    snprintf(path, sizeof path, "%sexpected", dir);
    char *expected = ow_test_slurp(path);
    char *nl = strchr(expected, '\n');
    ck_assert_msg(nl, "%s: expected holds 'file:line:col: message' then the code",
                  bad_cases[_i]);
    *nl = '\0';
    char *code = nl + 1;
    code[strcspn(code, "\n")] = '\0';

    const char *run_dir = stage_case(dir, tmp, sizeof tmp);
    snprintf(path, sizeof path, "%sconfig.yaml", run_dir);
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = (ow_cfg *)&err;
    int rc = ow_cfg_load(path, &cfg, &err);
    ck_assert_ptr_null(cfg);
    ow_error_format(&err, line, sizeof line);
    strip_prefix(line, run_dir);
    if (run_dir != dir)
        unstage_case(run_dir);
    ck_assert_msg(!strcmp(line, expected), "%s:\nexpected %s\ngot      %s", bad_cases[_i],
                  expected, line);
    ck_assert_str_eq(ow_error_code_name(rc), code);
    ck_assert_int_eq(err.code, rc);
    free(expected);
}
END_TEST

/* ---- hostile inputs: ow_limits ------------------------------------------------- */

/* A fresh folder under the build tree's tmp space for files made by a test. */
static void temp_dir(char *buf, size_t n)
{
    snprintf(buf, n, "%s/ow-hostile-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(limits_have_documented_defaults)
{
    ow_limits l = ow_limits_defaults();
    ck_assert_uint_eq(l.max_file_bytes, (size_t)256 << 20);
    ck_assert_uint_eq(l.max_alias_nodes, 1000000);
    ck_assert_uint_eq(l.max_depth, 1000);
    /* 0 fields and NULL mean the defaults */
    ow_limits zero = {0}, r = ow__limits_resolve(&zero), d = ow__limits_resolve(NULL);
    ck_assert_int_eq(memcmp(&r, &l, sizeof l), 0);
    ck_assert_int_eq(memcmp(&d, &l, sizeof l), 0);
}
END_TEST

/* 50,000 nested '[' crashed the recursive parser; now it stops at the 1001st level,
 * quickly (libyaml's scanner is quadratic in the depth it reaches). */
START_TEST(deep_nesting_stops_at_the_limit)
{
    size_t depth = 50000;
    char *text = malloc(2 * depth + 8);
    ck_assert_ptr_nonnull(text);
    memcpy(text, "x: ", 3);
    memset(text + 3, '[', depth);
    memset(text + 3 + depth, ']', depth);
    text[3 + 2 * depth] = '\0';
    ow_error err;
    ow_cfg *cfg = NULL;
    ck_assert_int_eq(ow_cfg_load_string(text, "deep.yaml", &cfg, &err), OW_ERR_SYNTAX);
    ck_assert_ptr_null(cfg);
    /* the map at the top is level 1: the 1000th '[' is level 1001 */
    ow_check_error(&err, OW_ERR_SYNTAX, "deep.yaml", 1, 1003,
                   "lists and maps nested more than 1000 deep (ow_limits.max_depth)");
    /* exactly at the limit: loads; raised: deeper loads */
    text[3 + 999] = '\0';
    memset(text + 3 + 999, ']', 999);
    text[3 + 2 * 999] = '\0';
    ow_check_ok(ow_cfg_load_string(text, "deep.yaml", &cfg, &err), &err);
    ow_cfg_free(cfg);
    depth = 3000; /* raised: each level costs stack in the recursive readers */
    memset(text + 3, '[', depth);
    memset(text + 3 + depth, ']', depth);
    text[3 + 2 * depth] = '\0';
    ow_limits l = {.max_depth = depth + 1};
    ow_check_ok(ow_cfg_load_string_with_limits(text, "deep.yaml", &l, &cfg, &err), &err);
    const ow_cfg *x = ow_cfg_get_item(cfg, 0);
    for (size_t i = 1; i < depth; i++)
        x = ow_cfg_get_item(x, 0);
    ck_assert_int_eq(ow_cfg_get_type(x), OW_CFG_LIST);
    ck_assert_uint_eq(ow_cfg_get_size(x), 0);
    ow_cfg_free(cfg);
    free(text);
}
END_TEST

START_TEST(alias_budget_counts_copied_nodes)
{
    /* each *a copies 10 nodes (the list and its 9 items) */
    const char *text = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a]\n";
    ow_error err;
    ow_cfg *cfg = NULL;
    ow_limits l = {.max_alias_nodes = 19};
    ck_assert_int_eq(ow_cfg_load_string_with_limits(text, "a.yaml", &l, &cfg, &err),
                     OW_ERR_SYNTAX);
    ck_assert_ptr_null(cfg);
    ow_check_error(&err, OW_ERR_SYNTAX, "a.yaml", 2, 9,
                   "alias '*a': aliases would copy more than 19 nodes "
                   "(ow_limits.max_alias_nodes; nested aliases grow exponentially)");
    l.max_alias_nodes = 20;
    ow_check_ok(ow_cfg_load_string_with_limits(text, "a.yaml", &l, &cfg, &err), &err);
    ck_assert_uint_eq(ow_cfg_get_size(ow_cfg_get_item(ow_cfg_get_item(cfg, 1), 1)), 9);
    ow_cfg_free(cfg);
    /* an alias that would nest past the depth limit fails at the alias */
    l = (ow_limits){.max_depth = 3};
    ck_assert_int_eq(ow_cfg_load_string_with_limits("a: &a [[1]]\nb: [*a]\n", "d.yaml",
                                                    &l, &cfg, &err),
                     OW_ERR_SYNTAX);
    ow_check_error(&err, OW_ERR_SYNTAX, "d.yaml", 2, 5,
                   "alias '*a': lists and maps nested more than 3 deep "
                   "(ow_limits.max_depth)");
}
END_TEST

/* The duplicate-key check of a big map is hashed: 200,000 keys load in linear time and
 * a duplicate among them is still found at the second key. */
START_TEST(big_maps_find_duplicates)
{
    size_t n = 200000;
    char *text = malloc(n * 24 + 64);
    ck_assert_ptr_nonnull(text);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(text + o, 24, "k%zu: %zu\n", i, i);
    text[o] = '\0';
    ow_error err;
    ow_cfg *cfg = NULL;
    ow_check_ok(ow_cfg_load_string(text, "big.yaml", &cfg, &err), &err);
    ck_assert_uint_eq(ow_cfg_get_size(cfg), n);
    ck_assert_str_eq(ow_cfg_get_key(cfg, n - 1), "k199999");
    ow_cfg_free(cfg);
    snprintf(text + o, 24, "k17: 0\n");
    ck_assert_int_eq(ow_cfg_load_string(text, "big.yaml", &cfg, &err), OW_ERR_DUPLICATE);
    ow_check_error(&err, OW_ERR_DUPLICATE, "big.yaml", (int)n + 1, 1,
                   "duplicate key 'k17' (first defined at line 18, column 6)");
    free(text);
}
END_TEST

START_TEST(file_size_limit)
{
    char dir[512], path[600];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    write_text(path, "a: 1\nb: 2\n"); /* 10 bytes */
    ow_error err;
    ow_cfg *cfg = NULL;
    ow_limits l = {.max_file_bytes = 9};
    ck_assert_int_eq(ow_cfg_load_with_limits(path, &l, &cfg, &err), OW_ERR_IO);
    ck_assert_ptr_null(cfg);
    ow_check_error(&err, OW_ERR_IO, "/c.yaml", 0, 0,
                   "10 bytes, over the limit of 9 bytes (ow_limits.max_file_bytes)");
    l.max_file_bytes = 10;
    ow_check_ok(ow_cfg_load_with_limits(path, &l, &cfg, &err), &err);
    ow_cfg_free(cfg);
    /* a base over the limit fails at its _base_ entry */
    char top[600], msg[1200];
    snprintf(top, sizeof top, "%s/top.yaml", dir);
    write_text(top, "_base_: c.yaml\n");          /* 15 bytes */
    write_text(path, "a: 1\nb: 2\nc: 3\nd: 4\n"); /* 20 bytes */
    l.max_file_bytes = 15;
    ck_assert_int_eq(ow_cfg_load_with_limits(top, &l, &cfg, &err), OW_ERR_IO);
    ck_assert_ptr_null(cfg);
    snprintf(msg, sizeof msg,
             "cannot read base config '%s': 20 bytes, over the limit of 15 bytes "
             "(ow_limits.max_file_bytes)",
             path);
    ow_check_error(&err, OW_ERR_IO, "/top.yaml", 1, 9, msg);
    l.max_file_bytes = 20;
    ow_check_ok(ow_cfg_load_with_limits(top, &l, &cfg, &err), &err);
    ck_assert_uint_eq(ow_cfg_get_size(cfg), 4);
    ow_cfg_free(cfg);
    unlink(path);
    unlink(top);
    rmdir(dir);
}
END_TEST

/* A FIFO as a config or a base fails at once (it used to block forever). */
START_TEST(fifo_is_not_read)
{
    char dir[512], fifo[600], top[600], msg[1400];
    temp_dir(dir, sizeof dir);
    snprintf(fifo, sizeof fifo, "%s/pipe.yaml", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ow_error err;
    ow_cfg *cfg = NULL;
    ck_assert_int_eq(ow_cfg_load(fifo, &cfg, &err), OW_ERR_IO);
    ow_check_error(&err, OW_ERR_IO, "/pipe.yaml", 0, 0, "not a regular file (a FIFO)");
    snprintf(top, sizeof top, "%s/top.yaml", dir);
    write_text(top, "_base_: pipe.yaml\n");
    ck_assert_int_eq(ow_cfg_load(top, &cfg, &err), OW_ERR_IO);
    snprintf(msg, sizeof msg, "cannot read base config '%s': not a regular file (a FIFO)",
             fifo);
    ow_check_error(&err, OW_ERR_IO, "/top.yaml", 1, 9, msg);
    unlink(fifo);
    unlink(top);
    rmdir(dir);
}
END_TEST

/* ---- allocation failures ------------------------------------------------------- */

START_TEST(load_survives_every_allocation_failure)
{
    static const char *const files[] = {"chain/top.yaml", "refs/child.yaml"};
    char path[1024];
    data_path(path, sizeof path, files[_i]);
    ow_cfg *want = load_data(files[_i]);
    long n;
    for (n = 0;; n++) {
        ow_error err;
        ow_error_clear(&err);
        ow_cfg *cfg = (ow_cfg *)&err;
        ow__alloc_fail_after(n);
        int rc = ow_cfg_load(path, &cfg, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK) {
            ck_assert(ow__cfg_equal(cfg, want));
            ow_cfg_free(cfg);
            break;
        }
        ow_check_error(&err, OW_ERR_NOMEM, NULL, 0, 0, "out of memory");
        ck_assert_ptr_null(cfg);
    }
    ck_assert_int_gt(n, 20);
    ow_cfg_free(want);
}
END_TEST

START_TEST(set_survives_every_allocation_failure)
{
    static const char *const assignments[] = {
        "optim_wrapper.paramwise_cfg.custom_keys.head={lr_mult: 10, decay_mult: [1, 2]}",
        "param_scheduler.1.end=90",
        "optim_wrapper.optimizer={_delete_: true, type: SGD}",
    };
    ow_cfg *cfg = base_for_overrides();
    ow_cfg *before = ow__cfg_dup(cfg);
    for (long n = 0;; n++) {
        ow_error err;
        ow_error_clear(&err);
        ow__alloc_fail_after(n);
        int rc = ow_cfg_set(cfg, assignments[_i], &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK)
            break;
        ow_check_error(&err, OW_ERR_NOMEM, NULL, 0, 0, "out of memory");
        ck_assert(ow__cfg_equal(cfg, before));
    }
    ck_assert(!ow__cfg_equal(cfg, before));
    ow_cfg_free(before);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(save_and_defaults_survive_allocation_failure)
{
    ow_cfg *cfg = load_data("refs/child.yaml");
    for (int which = 0; which < 3; which++) {
        for (long n = 0;; n++) {
            ow_error err;
            ow_error_clear(&err);
            char *text = NULL;
            ow_cfg *v = NULL;
            ow__alloc_fail_after(n);
            int rc = which == 0   ? ow_cfg_save_yaml(cfg, &text, &err)
                     : which == 1 ? ow_cfg_save_json(cfg, &text, &err)
                                  : ow__schema_default(&test_keys[3], &v, &err);
            ow__alloc_fail_after(-1);
            ow_free(text);
            ow_cfg_free(v);
            if (rc == OW_OK)
                break;
            ow_check_error(&err, OW_ERR_NOMEM, NULL, 0, 0, "out of memory");
            ck_assert_ptr_null(text);
            ck_assert_ptr_null(v);
        }
    }
    ow_cfg_free(cfg);
}
END_TEST

/* ---- One verdict: ow_cfg_check and building agree -------------------------------- */

#define OPT "optim_wrapper:\n  optimizer: {type: AdamW, lr: 0.001}\n"
static const struct {
    const char *title, *yaml;
    int code, line, column;
    const char *message;
} verdicts[] = {
    {"nesterov without momentum",
     "optim_wrapper:\n  optimizer: {type: SGD, lr: 0.1, nesterov: true}\n", OW_ERR_VALUE,
     2, 14,
     "optim_wrapper.optimizer (SGD): Nesterov momentum requires a momentum and zero "
     "dampening"},
    {"custom_keys value not a map",
     "optim_wrapper:\n  optimizer: {type: SGD, lr: 0.1}\n"
     "  paramwise_cfg: {custom_keys: {head: 3}}\n",
     OW_ERR_TYPE, 3, 39,
     "optim_wrapper.paramwise_cfg.custom_keys.head: expected map, got int"},
    {"betas too short",
     "optim_wrapper:\n  optimizer: {type: AdamW, lr: 0.001, betas: [0.9]}\n",
     OW_ERR_VALUE, 2, 46,
     "optim_wrapper.optimizer.betas: expected a list of 2 numbers, got 1"},
    {"betas too long",
     "optim_wrapper:\n  optimizer: {type: AdamW, lr: 0.001, betas: [0.9, 0.999, 0.5]}\n",
     OW_ERR_VALUE, 2, 46,
     "optim_wrapper.optimizer.betas: expected a list of 2 numbers, got 3"},
    {"max_epoch typo", OPT "train_cfg: {by_epoch: true, max_epoch: 30}\n",
     OW_ERR_UNKNOWN_KEY, 3, 40,
     "train_cfg: unknown key 'max_epoch' (did you mean 'max_epochs'?)"},
    {"epoch loop by type", OPT "train_cfg: {type: EpochBasedTrainLoop, max_iters: 30}\n",
     OW_ERR_UNKNOWN_KEY, 3, 51,
     "train_cfg: unknown key 'max_iters' (accepted: max_epochs, val_begin, val_interval, "
     "dynamic_intervals, type)"},
    {"iter loop needs max_iters", OPT "train_cfg: {by_epoch: false, val_interval: 10}\n",
     OW_ERR_MISSING_KEY, 3, 12, "train_cfg: missing required key 'max_iters'"},
    {"type and by_epoch",
     OPT "train_cfg: {type: IterBasedTrainLoop, by_epoch: false, max_iters: 9}\n",
     OW_ERR_VALUE, 3, 49,
     "train_cfg: only one of 'type' or 'by_epoch' can exist (mmengine's "
     "build_train_loop)"},
    {"train loop needs a kind", OPT "train_cfg: {max_epochs: 3}\n", OW_ERR_MISSING_KEY, 3,
     12,
     "train_cfg: needs 'type' or 'by_epoch' (mmengine's build_train_loop cannot train "
     "without either: KeyError 'by_epoch'); by_epoch: true for an EpochBasedTrainLoop, "
     "false for an IterBasedTrainLoop"},
    {"val_cfg keys", OPT "val_cfg: {fp16: true, interval: 1}\n", OW_ERR_UNKNOWN_KEY, 3,
     33, "val_cfg: unknown key 'interval' (accepted: fp16)"},
    {"test_cfg fp16 type", OPT "test_cfg: {type: TestLoop, fp16: 1}\n", OW_ERR_TYPE, 3,
     34, "test_cfg.fp16: expected bool, got int"},
    {"_delete for _delete_",
     "optim_wrapper:\n  optimizer: {type: SGD, lr: 0.1}\n"
     "  paramwise_cfg: {_delete: true, norm_decay_mult: 0.0}\n",
     OW_ERR_UNKNOWN_KEY, 3, 28,
     "optim_wrapper.paramwise_cfg: unknown key '_delete' (did you mean '_delete_'?): "
     "mmengine keeps '_delete' as an ordinary key and ignores it, so the base's settings "
     "survive; remove the key to get mmengine's result, or write '_delete_: true' to "
     "delete the base's settings"},
    {"schedule is part of the check", OPT "param_scheduler: {type: LinearLR, factr: 1}\n",
     OW_ERR_UNKNOWN_KEY, 0, 0, NULL},
    {"accepted whole config",
     OPT
     "train_cfg: {by_epoch: true, max_epochs: 30, val_interval: 1}\n"
     "val_cfg: {}\ntest_cfg: null\nmodel: {anything: [1, 2]}\n"
     "param_scheduler: [{type: LinearLR, start_factor: 0.1, by_epoch: false, end: 5}]\n",
     OW_OK, 0, 0, NULL},
    {"another library's loop is free",
     OPT "train_cfg: {type: mmdet.TeacherStudentLoop, teacher: x}\n", OW_OK, 0, 0, NULL},
};

/* Builds what `optwrap train` builds: groups, optimizer and schedule over a one-tensor
 * model. */
static int build_verdict(const ow_cfg *cfg, ow_error *err)
{
    float data[4] = {0}, grad[4] = {0};
    const int64_t shape[] = {4};
    ow_model *m = NULL;
    ow_optim_wrapper *w = NULL;
    ow_module_info root = {.name = "head", .type = "Linear"};
    ow_param_info pi = {.module = "head",
                        .name = "weight",
                        .ndim = 1,
                        .shape = shape,
                        .requires_grad = true,
                        .data = data,
                        .grad = grad};
    ow_sched_loop loop = {.epoch_length = 10, .max_epochs = 30};
    int rc = ow_model_new("net", &m, err);
    if (!rc)
        rc = ow_model_add_module(m, &root, err);
    if (!rc)
        rc = ow_model_add_param(m, &pi, err);
    if (!rc)
        rc = ow_optim_wrapper_new(cfg, m, &loop, &w, err);
    ow_optim_wrapper_free(w);
    ow_model_free(m);
    return rc;
}

START_TEST(check_gives_the_build_verdict)
{
    ow_error err, built;
    memset(&err, 0xAA, sizeof err);
    ow_cfg *cfg = NULL;
    ow_check_ok(ow_cfg_load_string(verdicts[_i].yaml, "v.yaml", &cfg, &err), &err);
    int rc = ow_cfg_check(cfg, &err);
    ck_assert_msg(rc == verdicts[_i].code, "%s: expected %s, got %s (%s)",
                  verdicts[_i].title, ow_error_code_name(verdicts[_i].code),
                  ow_error_code_name(rc), err.message);
    if (verdicts[_i].message)
        ow_check_error(&err, verdicts[_i].code, "v.yaml", verdicts[_i].line,
                       verdicts[_i].column, verdicts[_i].message);
    else if (rc == OW_OK)
        ow_check_error(&err, OW_OK, "", 0, 0, "");
    /* building says the same, with the same message */
    memset(&built, 0x55, sizeof built);
    ck_assert_int_eq(build_verdict(cfg, &built), rc);
    ck_assert_str_eq(built.message, err.message);
    ow_cfg_free(cfg);
}
END_TEST

/* Every bad optimizer and registry config on disk fails ow_cfg_check as it fails a
 * build, with the same error. (tests/bad/sched holds warnings and run-dependent cases
 * too: check_sched_state runs it.) */
static const char *const corpus_dirs[] = {"optim", "registry"};

START_TEST(bad_corpus_check_and_build_agree)
{
    char dir[1024], path[1400];
    snprintf(dir, sizeof dir, "%s/%s", bad_root, corpus_dirs[_i]);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s/config.yaml", dir, e->d_name);
        ow_error err, built;
        ow_cfg *cfg = NULL;
        if (ow_cfg_load(path, &cfg, &err))
            continue; /* fails before either */
        int rc = ow_cfg_check(cfg, &err);
        int rb = build_verdict(cfg, &built);
        ck_assert_msg(rc != OW_OK && rb != OW_OK,
                      "%s/%s: check says %s (%s), build says %s (%s)", corpus_dirs[_i],
                      e->d_name, ow_error_code_name(rc), err.message,
                      ow_error_code_name(rb), built.message);
        ck_assert_msg(rc == rb && !strcmp(err.message, built.message),
                      "%s/%s: check: %s, build: %s", corpus_dirs[_i], e->d_name,
                      err.message, built.message);
        ow_cfg_free(cfg);
        n++;
    }
    closedir(d);
    ck_assert_uint_gt(n, 0);
}
END_TEST

START_TEST(getters_with_defaults)
{
    ow_cfg *cfg = NULL;
    ow_error err;
    memset(&err, 0xAA, sizeof err);
    ow_check_ok(ow_cfg_load_string("train_cfg: {max_epochs: 12, by_epoch: true}\n"
                                   "lr: 1\nname: vit\nbad: text\n",
                                   "g.yaml", &cfg, &err),
                &err);
    int64_t i = 0;
    double d = 0;
    bool b = false;
    const char *s = NULL;
    ow_check_ok(ow_cfg_get_int_or(cfg, "train_cfg.max_epochs", 30, &i, &err), &err);
    ck_assert_int_eq(i, 12);
    ow_check_ok(ow_cfg_get_int_or(cfg, "train_cfg.max_iters", 30, &i, &err), &err);
    ck_assert_int_eq(i, 30);
    ow_check_ok(ow_cfg_get_double_or(cfg, "lr", 0.5, &d, &err), &err);
    ck_assert_double_eq(d, 1.0);
    ow_check_ok(ow_cfg_get_double_or(cfg, "wd", 0.5, &d, &err), &err);
    ck_assert_double_eq(d, 0.5);
    ow_check_ok(ow_cfg_get_bool_or(cfg, "train_cfg.by_epoch", false, &b, &err), &err);
    ck_assert(b);
    ow_check_ok(ow_cfg_get_string_or(cfg, "name", "x", &s, &err), &err);
    ck_assert_str_eq(s, "vit");
    ow_check_ok(ow_cfg_get_string_or(cfg, "model.name", "x", &s, &err), &err);
    ck_assert_str_eq(s, "x");
    ow_check_error(&err, OW_OK, "", 0, 0, "");
    ck_assert_int_eq(ow_cfg_get_int_or(cfg, "bad", 30, &i, &err), OW_ERR_TYPE);
    ow_check_error(&err, OW_ERR_TYPE, "g.yaml", 4, 6, "bad: expected int, got string");
    ck_assert_int_eq(ow_cfg_get_bool_or(cfg, "lr", false, &b, &err), OW_ERR_TYPE);
    ow_check_error(&err, OW_ERR_TYPE, "g.yaml", 2, 5, "lr: expected bool, got int");
    ck_assert_int_eq(ow_cfg_get_int_or(cfg, NULL, 1, &i, &err), OW_ERR_MISUSE);
    ow_cfg_free(cfg);
}
END_TEST

static Suite *make_cfg_suite(void)
{
    Suite *s = suite_create("cfg");
    TCase *tc = tcase_create("Inherit");
    tcase_add_test(tc, chain_merges_three_levels);
    tcase_add_test(tc, two_bases_delete_and_list_replacement);
    tcase_add_test(tc, refs_resolve_against_bases);
    tcase_add_test(tc, load_string_bases_and_names);
    tcase_add_test(tc, delete_keys_always_stripped);
    tcase_add_test(tc, top_level_file_errors);
    tcase_add_test(tc, error_describes_the_last_call);
    suite_add_tcase(s, tc);

    tc = tcase_create("Templates");
    tcase_add_test(tc, file_variables_and_env_defaults);
    tcase_add_test(tc, env_value_is_typed_where_plain);
    tcase_add_loop_test(tc, base_reference_syntax, 0, OW__ARRAY_LEN(base_refs));
    suite_add_tcase(s, tc);

    tc = tcase_create("Overrides");
    tcase_add_test(tc, override_values_and_positions);
    tcase_add_loop_test(tc, override_value_types, 0, OW__ARRAY_LEN(override_values));
    tcase_add_loop_test(tc, override_errors_leave_tree_unchanged, 0,
                        OW__ARRAY_LEN(override_errors));
    tcase_add_test(tc, override_misuse);
    suite_add_tcase(s, tc);

    tc = tcase_create("Emit");
    tcase_add_test(tc, yaml_output_exact);
    tcase_add_loop_test(tc, yaml_round_trip, 0, OW__ARRAY_LEN(round_trip_texts));
    tcase_add_test(tc, loaded_configs_round_trip);
    tcase_add_test(tc, json_output_exact);
    suite_add_tcase(s, tc);

    tc = tcase_create("Schema");
    tcase_add_loop_test(tc, schema_messages, 0, OW__ARRAY_LEN(schema_cases));
    tcase_add_test(tc, schema_without_context);
    tcase_add_loop_test(tc, schema_defaults, 0, OW__ARRAY_LEN(defaults));
    tcase_add_test(tc, schema_bad_default_is_misuse);
    suite_add_tcase(s, tc);

    tc = tcase_create("Errors");
    tcase_add_loop_test(tc, bad_config_corpus, 0, (int)n_bad_cases);
    suite_add_tcase(s, tc);

    tc = tcase_create("Verdict");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, check_gives_the_build_verdict, 0, OW__ARRAY_LEN(verdicts));
    tcase_add_loop_test(tc, bad_corpus_check_and_build_agree, 0,
                        OW__ARRAY_LEN(corpus_dirs));
    tcase_add_test(tc, getters_with_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("Hostile");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, limits_have_documented_defaults);
    tcase_add_test(tc, deep_nesting_stops_at_the_limit);
    tcase_add_test(tc, alias_budget_counts_copied_nodes);
    tcase_add_test(tc, big_maps_find_duplicates);
    tcase_add_test(tc, file_size_limit);
    tcase_add_test(tc, fifo_is_not_read);
    suite_add_tcase(s, tc);

    tc = tcase_create("OOM");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, load_survives_every_allocation_failure, 0, 2);
    tcase_add_loop_test(tc, set_survives_every_allocation_failure, 0, 3);
    tcase_add_test(tc, save_and_defaults_survive_allocation_failure);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    data_root = realpath(OW_TEST_DATA, NULL);
    bad_root = realpath(OW_TEST_BAD, NULL);
    if (!data_root || !bad_root) {
        fprintf(stderr, "cannot find %s or %s\n", OW_TEST_DATA, OW_TEST_BAD);
        return EXIT_FAILURE;
    }
    find_bad_cases();
    if (n_bad_cases == 0) {
        fprintf(stderr, "no cases under %s/cfg\n", bad_root);
        return EXIT_FAILURE;
    }
    int rc = ow_test_run(make_cfg_suite());
    free(data_root);
    free(bad_root);
    for (size_t i = 0; i < n_bad_cases; i++)
        free(bad_cases[i]);
    return rc;
}
