/* check_registry.c -- the registry: lookup with mmengine's scope rules and positioned
 * errors, run-time registration (aliases, duplicates, force, ABI), sorted iteration
 * over complete entries, and plugins loaded directly or through custom_imports. */
#include "testlib.h"

#include "../registry/registry_internal.h"

#include <string.h>
#include <strings.h>

static const ow_key no_keys[] = {{0}};

/* Every test starts and ends with only the built-ins, also under CK_FORK=no. */
static void reset(void)
{
    ow__registry_reset();
}

static ow_entry make_entry(const char *name, ow_registry_kind kind, const char *scope)
{
    return (ow_entry){.abi_version = OW_ABI_VERSION,
                      .name = name,
                      .kind = kind,
                      .scope = scope,
                      .summary = "test entry",
                      .keys = no_keys};
}

static ow_cfg *parse_text(const char *text, const char *file)
{
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    ow_check_ok(ow__cfg_parse(text, strlen(text), file, &cfg, &err), &err);
    return cfg;
}

static size_t count_entries(void)
{
    size_t n = 0;
    for (const ow_entry *e = ow_registry_next(NULL); e; e = ow_registry_next(e))
        n++;
    return n;
}

/* ---- Lookup ------------------------------------------------------------------------ */

static const struct {
    ow_registry_kind kind;
    const char *type;
    const char *found; /* NULL: a miss */
} find_cases[] = {
    {OW_KIND_OPTIMIZER, "AdamW", "AdamW"},
    {OW_KIND_OPTIMIZER, "mmengine.AdamW", "AdamW"},
    {OW_KIND_OPTIMIZER, "Adam", "Adam"},
    {OW_KIND_OPTIMIZER, "SGD", "SGD"},
    {OW_KIND_OPTIM_WRAPPER, "OptimWrapper", "OptimWrapper"},
    {OW_KIND_CONSTRUCTOR, "DefaultOptimWrapperConstructor",
     "DefaultOptimWrapperConstructor"},
    {OW_KIND_OPTIMIZER, "mmpretrain.AdamW", NULL}, /* mmengine quirk: no fallback */
    {OW_KIND_OPTIMIZER, "ADAMW", NULL},            /* names are case-sensitive */
    {OW_KIND_CONSTRUCTOR, "AdamW", NULL},          /* another kind */
    {OW_KIND_OPTIMIZER, "", NULL},
    {OW_KIND_OPTIMIZER, "mmengine.", NULL},
    {OW_KIND_OPTIMIZER, "mmengine.mmengine.AdamW", NULL},
    {OW_KIND__COUNT, "AdamW", NULL},
};

START_TEST(find_by_name_and_scope)
{
    const ow_entry *e = ow_registry_find(find_cases[_i].kind, find_cases[_i].type);
    if (!find_cases[_i].found) {
        ck_assert_ptr_null(e);
        return;
    }
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->name, find_cases[_i].found);
    ck_assert_int_eq(e->kind, find_cases[_i].kind);
}
END_TEST

/* The key order is torch 1.13's `defaults` order: the key order of the groups. */
static const struct {
    const char *type;
    const char *keys;
} schema_cases[] = {
    {"SGD", "lr=(none) momentum=0 dampening=0 weight_decay=0 nesterov=false "
            "maximize=false foreach=null differentiable=false"},
    {"Adam", "lr=0.001 betas=[0.9, 0.999] eps=1e-08 weight_decay=0 amsgrad=false "
             "maximize=false foreach=null capturable=false differentiable=false "
             "fused=false"},
    {"AdamW", "lr=0.001 betas=[0.9, 0.999] eps=1e-08 weight_decay=0.01 amsgrad=false "
              "foreach=null maximize=false capturable=false"},
};

START_TEST(optimizer_schemas_follow_torch)
{
    const ow_entry *e = ow_registry_find(OW_KIND_OPTIMIZER, schema_cases[_i].type);
    ck_assert_ptr_nonnull(e);
    char buf[256] = "";
    size_t len = 0;
    for (const ow_key *k = e->keys; k->name; k++)
        if (!(k->flags & OW_KEY_OPTIONAL)) /* optwrap's additions (state_dtype) */
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s=%s",
                                    len ? " " : "", k->name, k->def ? k->def : "(none)");
    ck_assert_str_eq(buf, schema_cases[_i].keys);
    const ow_key *betas = e->keys[1].type == OW_T_NUMLIST ? &e->keys[1] : NULL;
    if (betas) { /* each beta in [0, 1) */
        ck_assert_uint_eq(betas->flags, OW_KEY_RANGE | OW_KEY_MAX_OPEN);
        ck_assert_double_eq(betas->min, 0);
        ck_assert_double_eq(betas->max, 1);
    }
    ck_assert_uint_eq(e->keys[0].flags, OW_KEY_RANGE); /* lr >= 0 */
    ck_assert_double_eq(e->keys[0].min, 0);
}
END_TEST

START_TEST(optim_wrapper_schema)
{
    const ow_entry *e = ow_registry_find(OW_KIND_OPTIM_WRAPPER, "OptimWrapper");
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->keys[0].name, "optimizer");
    ck_assert_uint_eq(e->keys[0].flags, OW_KEY_REQUIRED);
    ck_assert_str_eq(e->keys[2].name, "constructor");
    ck_assert_str_eq(e->keys[2].def, "DefaultOptimWrapperConstructor");
    ck_assert_str_eq(e->keys[3].name, "accumulative_counts");
    ck_assert_double_eq(e->keys[3].min, 1);
    ck_assert_str_eq(e->keys[4].name, "clip_grad");
    ck_assert_str_eq(e->keys[4].def, "null");
    ck_assert_str_eq(e->keys[5].name, "skip_nonfinite");
    ck_assert_str_eq(e->keys[6].name, "zero_stage");
    ck_assert_str_eq(e->keys[7].name, "grad_dtype");
    ck_assert_str_eq(e->keys[7].def, "float32");
    ck_assert_ptr_null(e->keys[8].name);
}
END_TEST

/* Bad configs on disk: tests/bad/registry/<case>/{config.yaml, expected}. kind -1:
 * the config's custom_imports. */
static const struct {
    const char *name;
    int code;
    int kind;
    const char *type_path;
} bad_cases[] = {
    {"unknown_optimizer", OW_ERR_UNKNOWN_TYPE, OW_KIND_OPTIMIZER,
     "optim_wrapper.optimizer.type"},
    {"scoped_miss", OW_ERR_UNKNOWN_TYPE, OW_KIND_OPTIMIZER,
     "optim_wrapper.optimizer.type"},
    {"type_not_string", OW_ERR_TYPE, OW_KIND_OPTIMIZER, "optim_wrapper.optimizer.type"},
    {"unknown_wrapper", OW_ERR_UNKNOWN_TYPE, OW_KIND_OPTIM_WRAPPER, "optim_wrapper.type"},
    {"unknown_constructor", OW_ERR_UNKNOWN_TYPE, OW_KIND_CONSTRUCTOR,
     "optim_wrapper.constructor"},
    {"unknown_scope_and_name", OW_ERR_UNKNOWN_TYPE, OW_KIND_OPTIMIZER,
     "optim_wrapper.optimizer.type"},
    {"import_unknown_key", OW_ERR_UNKNOWN_KEY, -1, NULL},
    {"import_missing_imports", OW_ERR_MISSING_KEY, -1, NULL},
    {"import_not_string", OW_ERR_TYPE, -1, NULL},
    {"import_not_map", OW_ERR_TYPE, -1, NULL},
    {"import_allow_not_bool", OW_ERR_TYPE, -1, NULL},
};

START_TEST(bad_config_errors)
{
    char dir[512], path[600];
    ow_test_path(dir, sizeof dir, OW_TEST_BAD, "registry");
    snprintf(path, sizeof path, "%s/%s/config.yaml", dir, bad_cases[_i].name);
    char *text = ow_test_slurp(path);
    ow_cfg *cfg = parse_text(text, path);
    ow_free(text);
    snprintf(path, sizeof path, "%s/%s/expected", dir, bad_cases[_i].name);
    char *expected = ow_test_slurp(path);
    expected[strcspn(expected, "\n")] = '\0';

    ow_error err;
    ow_error_clear(&err);
    int rc;
    if (bad_cases[_i].kind < 0) {
        rc = ow__registry_import(cfg, &err);
    } else {
        static const ow_entry dummy;
        const ow_entry *e = &dummy; /* must be reset to NULL */
        rc = ow__registry_lookup((ow_registry_kind)bad_cases[_i].kind,
                                 ow_cfg_find(cfg, bad_cases[_i].type_path), NULL, &e,
                                 &err);
        ck_assert_ptr_null(e);
    }
    ck_assert_int_eq(rc, bad_cases[_i].code);
    ck_assert_int_eq(err.code, bad_cases[_i].code);
    char got[1024];
    ow_error_format(&err, got, sizeof got);
    size_t lg = strlen(got), le = strlen(expected);
    ck_assert_msg(lg > le && got[lg - le - 1] == '/' &&
                      strcmp(got + lg - le, expected) == 0,
                  "expected '.../%s', got '%s'", expected, got);
    ow_free(expected);
    ow_cfg_free(cfg);
}
END_TEST

static void check_lookup(const char *yaml_type, const char *default_scope,
                         const ow_entry *want)
{
    ow_cfg *cfg = parse_text(yaml_type, "t.yaml");
    ow_error err;
    ow_error_clear(&err);
    const ow_entry *e = NULL;
    ow_check_ok(ow__registry_lookup(OW_KIND_OPTIMIZER, ow_cfg_find(cfg, "type"),
                                    default_scope, &e, &err),
                &err);
    ck_assert_ptr_eq(e, want);
    ow_cfg_free(cfg);
}

START_TEST(default_scope_then_root_then_any)
{
    ow_entry quux_pre = make_entry("Quux", OW_KIND_OPTIMIZER, "mmpretrain");
    ow_entry quux_det = make_entry("Quux", OW_KIND_OPTIMIZER, "mmdet");
    ow_entry adamw_pre = make_entry("AdamW", OW_KIND_OPTIMIZER, "mmpretrain");
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_registry_add(&quux_pre, false, &err), &err);
    ow_check_ok(ow_registry_add(&quux_det, false, &err), &err);
    ow_check_ok(ow_registry_add(&adamw_pre, false, &err), &err);
    const ow_entry *root_adamw = ow_registry_find(OW_KIND_OPTIMIZER, "mmengine.AdamW");

    check_lookup("type: Quux", NULL, &quux_pre); /* first scope registered */
    check_lookup("type: Quux", "mmdet", &quux_det);
    check_lookup("type: mmdet.Quux", "mmpretrain", &quux_det);
    check_lookup("type: AdamW", "mmpretrain", &adamw_pre); /* the child scope first */
    check_lookup("type: AdamW", "mmseg", root_adamw);      /* then its parent */
    check_lookup("type: AdamW", NULL, root_adamw);
    check_lookup("type: mmpretrain.AdamW", NULL, &adamw_pre);
    ck_assert_ptr_eq(ow_registry_find(OW_KIND_OPTIMIZER, "Quux"), &quux_pre);
}
END_TEST

START_TEST(closest_names_sorted)
{
    /* neighbours of AdamX in a scope of their own (the built-in zoo keeps growing):
     * distance, then nearer length, then alphabetical */
    static const char *const names[] = {"Adam",  "AdamW", "Adamax",
                                        "NAdam", "RAdam", "SGD"};
    ow_entry more[OW__ARRAY_LEN(names)];
    ow_error err;
    ow_error_clear(&err);
    for (size_t i = 0; i < OW__ARRAY_LEN(names); i++) {
        more[i] = make_entry(names[i], OW_KIND_OPTIMIZER, NULL);
        more[i].scope = "zz";
        ow_check_ok(ow_registry_add(&more[i], false, &err), &err);
    }
    ow_cfg *cfg = parse_text("type: zz.AdamX", "t.yaml");
    const ow_entry *e = NULL;
    ck_assert_int_eq(
        ow__registry_lookup(OW_KIND_OPTIMIZER, ow_cfg_find(cfg, "type"), NULL, &e, &err),
        OW_ERR_UNKNOWN_TYPE);
    ow_check_error(
        &err, OW_ERR_UNKNOWN_TYPE, "t.yaml", 1, 7,
        "unknown optimizer type 'zz.AdamX' (closest: 'AdamW', 'Adam', 'Adamax')");
    ow_cfg_free(cfg);

    char buf[64];
    ck_assert_str_eq(ow__registry_closest(OW_KIND_OPTIMIZER, "zz.nadam", buf, sizeof buf),
                     "'NAdam', 'RAdam', 'Adam'");
    ck_assert_ptr_null(ow__registry_closest(OW_KIND_OPTIMIZER, "Foo", buf, sizeof buf));
    ck_assert_ptr_null(ow__registry_closest(OW_KIND_SCHEDULER, "SGD", buf, sizeof buf));
}
END_TEST

/* ---- Register ---------------------------------------------------------------------- */

START_TEST(aliases_resolve_to_one_entry)
{
    static const char *const aliases[] = {"my_opt", "MyOptimizer", NULL};
    ow_entry e = make_entry("MyOpt", OW_KIND_OPTIMIZER, "user");
    e.aliases = aliases;
    ow_error err;
    ow_error_clear(&err);
    size_t before = count_entries();
    ow_check_ok(ow_registry_add(&e, false, &err), &err);
    ck_assert_ptr_eq(ow_registry_find(OW_KIND_OPTIMIZER, "MyOpt"), &e);
    ck_assert_ptr_eq(ow_registry_find(OW_KIND_OPTIMIZER, "my_opt"), &e);
    ck_assert_ptr_eq(ow_registry_find(OW_KIND_OPTIMIZER, "user.MyOptimizer"), &e);
    ck_assert_ptr_null(ow_registry_find(OW_KIND_OPTIMIZER, "mmengine.my_opt"));
    ck_assert_uint_eq(count_entries(), before + 1); /* listed once, by its name */
}
END_TEST

START_TEST(duplicates_fail_unless_forced)
{
    static const char *const sgd_alias[] = {"SGD", NULL};
    ow_entry adamw = make_entry("AdamW", OW_KIND_OPTIMIZER, NULL);
    ow_entry by_alias = make_entry("Fresh", OW_KIND_OPTIMIZER, "mmengine");
    by_alias.aliases = sgd_alias;
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow_registry_add(&adamw, false, &err), OW_ERR_DUPLICATE);
    ow_check_error(&err, OW_ERR_DUPLICATE, NULL, 0, 0,
                   "`AdamW` is already registered in the mmengine optimizer registry");
    ow_error_clear(&err);
    ck_assert_int_eq(ow_registry_add(&by_alias, false, &err), OW_ERR_DUPLICATE);
    ow_check_error(&err, OW_ERR_DUPLICATE, NULL, 0, 0,
                   "`SGD` is already registered in the mmengine optimizer registry");
    ck_assert_ptr_null(ow_registry_find(OW_KIND_OPTIMIZER, "Fresh"));

    /* the same name in another scope or kind is no duplicate */
    ow_entry other_scope = make_entry("AdamW", OW_KIND_OPTIMIZER, "timm");
    ow_entry other_kind = make_entry("AdamW", OW_KIND_SCHEDULER, NULL);
    ow_error_clear(&err);
    ow_check_ok(ow_registry_add(&other_scope, false, &err), &err);
    ow_check_ok(ow_registry_add(&other_kind, false, &err), &err);
    ck_assert_int_eq(ow_registry_add(&other_kind, false, &err), OW_ERR_DUPLICATE);
}
END_TEST

START_TEST(newest_forced_entry_wins)
{
    const ow_entry *builtin = ow_registry_find(OW_KIND_OPTIMIZER, "AdamW");
    ow_entry first = make_entry("AdamW", OW_KIND_OPTIMIZER, NULL);
    ow_entry second = make_entry("AdamW", OW_KIND_OPTIMIZER, "mmengine");
    ow_error err;
    ow_error_clear(&err);
    size_t before = count_entries();
    ow_check_ok(ow_registry_add(&first, true, &err), &err);
    ck_assert_ptr_eq(ow_registry_find(OW_KIND_OPTIMIZER, "AdamW"), &first);
    ow_check_ok(ow_registry_add(&second, true, &err), &err);
    ck_assert_ptr_eq(ow_registry_find(OW_KIND_OPTIMIZER, "mmengine.AdamW"), &second);
    ck_assert_uint_eq(count_entries(), before); /* the hidden ones are not listed */
    bool listed = false;
    for (const ow_entry *e = ow_registry_next(NULL); e; e = ow_registry_next(e)) {
        ck_assert_ptr_ne(e, builtin);
        ck_assert_ptr_ne(e, &first);
        listed = listed || e == &second;
    }
    ck_assert(listed);
    ow__registry_reset();
    ck_assert_ptr_eq(ow_registry_find(OW_KIND_OPTIMIZER, "AdamW"), builtin);
}
END_TEST

static const char *const dotted_alias[] = {"a.b", NULL};

static const struct {
    ow_entry entry;
    int code;
    const char *message;
} invalid_cases[] = {
#define ENTRY(...)                                                                       \
    {                                                                                    \
        .abi_version = OW_ABI_VERSION, .keys = no_keys, __VA_ARGS__                      \
    }
    {{.abi_version = OW_ABI_VERSION + 1, .name = "New", .keys = no_keys},
     OW_ERR_PLUGIN,
     "registry entry has ABI version 4, but this optwrap (" OW_VERSION_STRING
     ") expects 3: rebuild it against this optwrap.h"},
    {ENTRY(.name = ""), OW_ERR_VALUE, "registry entry has no name"},
    {ENTRY(.name = NULL), OW_ERR_VALUE, "registry entry has no name"},
    {ENTRY(.name = "timm.X"), OW_ERR_VALUE,
     "registry entry name 'timm.X' must not contain '.' (it separates a scope from a "
     "name)"},
    {ENTRY(.name = "X", .kind = OW_KIND__COUNT), OW_ERR_VALUE,
     "registry entry `X`: unknown kind 5"},
    {ENTRY(.name = "X", .scope = ""), OW_ERR_VALUE,
     "registry entry `X`: scope '' must be non-empty and without '.'"},
    {{.abi_version = OW_ABI_VERSION, .name = "X"},
     OW_ERR_VALUE,
     "registry entry `X`: keys is NULL (give a table ended by a row with name NULL)"},
    {ENTRY(.name = "X", .aliases = dotted_alias), OW_ERR_VALUE,
     "registry entry `X`: alias 'a.b' must be non-empty and without '.'"},
#undef ENTRY
};

START_TEST(invalid_entries_rejected)
{
    ow_error err;
    ow_error_clear(&err);
    size_t before = count_entries();
    ck_assert_int_eq(ow_registry_add(&invalid_cases[_i].entry, true, &err),
                     invalid_cases[_i].code);
    ow_check_error(&err, invalid_cases[_i].code, NULL, 0, 0, invalid_cases[_i].message);
    ck_assert_uint_eq(count_entries(), before);
}
END_TEST

START_TEST(add_survives_every_allocation_failure)
{
    ow_entry e = make_entry("Chaos", OW_KIND_OPTIMIZER, NULL);
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow_registry_add(NULL, false, &err), OW_ERR_MISUSE);
    for (long n = 0;; n++) {
        ow_error_clear(&err);
        ow__alloc_fail_after(n);
        int rc = ow_registry_add(&e, false, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK)
            break;
        ow_check_error(&err, OW_ERR_NOMEM, NULL, 0, 0, "out of memory");
        ck_assert_ptr_null(ow_registry_find(OW_KIND_OPTIMIZER, "Chaos"));
    }
    ck_assert_ptr_eq(ow_registry_find(OW_KIND_OPTIMIZER, "Chaos"), &e);
}
END_TEST

/* ---- Iterate ----------------------------------------------------------------------- */

START_TEST(iteration_sorted_and_complete)
{
    ow_entry lower = make_entry("adam_lower", OW_KIND_OPTIMIZER, "user");
    ow_entry sched = make_entry("Zeta", OW_KIND_SCHEDULER, NULL);
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_registry_add(&sched, false, &err), &err);
    ow_check_ok(ow_registry_add(&lower, false, &err), &err);
    char order[512] = "";
    size_t len = 0, builtins = 0;
    const ow_entry *prev = NULL;
    for (const ow_entry *e = ow_registry_next(NULL); e;
         prev = e, e = ow_registry_next(e)) {
        if (prev)
            ck_assert(prev->kind < e->kind ||
                      (prev->kind == e->kind && strcasecmp(prev->name, e->name) <= 0));
        ck_assert_int_eq(e->abi_version, OW_ABI_VERSION);
        ck_assert_msg(e->summary && *e->summary, "%s has no summary", e->name);
        ck_assert_msg(e->keys != NULL, "%s has no key table", e->name);
        for (const ow_key *k = e->keys; k->name; k++)
            ck_assert_msg(k->doc && *k->doc, "%s.%s has no doc", e->name, k->name);
        /* the order of a fixed set of names; the zoo grows around them */
        static const char *const watched[] = {"Adam",
                                              "adam_lower",
                                              "AdamW",
                                              "SGD",
                                              "DefaultOptimWrapperConstructor",
                                              "OptimWrapper",
                                              "Zeta"};
        for (size_t w = 0; w < OW__ARRAY_LEN(watched); w++)
            if (!strcmp(e->name, watched[w]) &&
                (!e->scope || !strcmp(e->scope, "mmengine") || e == &lower ||
                 e == &sched))
                len += (size_t)snprintf(order + len, sizeof order - len, "%s:%s ",
                                        ow_registry_kind_name(e->kind), e->name);
        builtins += e != &lower && e != &sched;
    }
    ck_assert_str_eq(order, "optimizer:Adam optimizer:adam_lower optimizer:AdamW "
                            "optimizer:SGD constructor:DefaultOptimWrapperConstructor "
                            "optim_wrapper:OptimWrapper scheduler:Zeta ");
    size_t table = 0;
    while (ow__builtins[table])
        table++;
    ck_assert_uint_eq(builtins, table);
}
END_TEST

START_TEST(kind_names)
{
    static const char *const names[] = {"optimizer", "constructor", "optim_wrapper",
                                        "scheduler", "layer_depth"};
    for (int k = 0; k < OW_KIND__COUNT; k++)
        ck_assert_str_eq(ow_registry_kind_name((ow_registry_kind)k), names[k]);
    ck_assert_str_eq(ow_registry_kind_name(OW_KIND__COUNT), "?");
}
END_TEST

/* ---- Plugins ----------------------------------------------------------------------- */

#define PLUGIN            OW_TEST_PLUGINS "/libowtestplugin.so"
#define FAIL_PLUGIN       OW_TEST_PLUGINS "/libowfailplugin.so"
#define NOINIT_PLUGIN     OW_TEST_PLUGINS "/libownoinit.so"
#define PLUGIN_DIR_CONFIG OW_TEST_BUILDDIR "/tests/plugin/config.yaml"

static void check_plugin_entries(void)
{
    const ow_entry *sgd = ow_registry_find(OW_KIND_OPTIMIZER, "PluginSGD");
    ck_assert_ptr_nonnull(sgd);
    ck_assert_str_eq(sgd->scope, "owtest");
    ck_assert_ptr_eq(ow_registry_find(OW_KIND_OPTIMIZER, "owtest.PluginSGD"), sgd);
    const ow_entry *ctor = ow_registry_find(OW_KIND_CONSTRUCTOR, "PluginConstructor");
    ck_assert_ptr_nonnull(ctor);
    ck_assert_ptr_eq(ow_registry_find(OW_KIND_CONSTRUCTOR, "mmengine.PluginConstructor"),
                     ctor);
    const ow_constructor_ops *ops = ctor->ops;
    ck_assert_ptr_nonnull(ops);
    ck_assert_ptr_nonnull(ops->build);
}

/* First in its TCase: under CK_FORK=no the library stays mapped, but the reset makes
 * the next load run its init again. */
START_TEST(load_survives_every_allocation_failure)
{
    for (long n = 0;; n++) {
        ow_error err;
        ow_error_clear(&err);
        ow__alloc_fail_after(n);
        int rc = ow_registry_load_plugin(PLUGIN, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK)
            break;
        ow_check_error(&err, OW_ERR_NOMEM, NULL, 0, 0, "out of memory");
        ck_assert_ptr_null(ow_registry_find(OW_KIND_OPTIMIZER, "PluginSGD"));
    }
    check_plugin_entries();
}
END_TEST

START_TEST(load_plugin_twice)
{
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_registry_load_plugin(PLUGIN, &err), &err);
    check_plugin_entries();
    size_t n = count_entries();
    ow_check_ok(ow_registry_load_plugin(PLUGIN, &err), &err); /* init not run again */
    ck_assert_uint_eq(count_entries(), n);
}
END_TEST

START_TEST(load_plugin_errors)
{
    ow_error err;
    ow_error_clear(&err);
    const char *missing = OW_TEST_PLUGINS "/libnosuchplugin.so";
    ck_assert_int_eq(ow_registry_load_plugin(missing, &err), OW_ERR_PLUGIN);
    /* the rest is dlerror()'s text */
    ow_check_error(&err, OW_ERR_PLUGIN, NULL, 0, 0, NULL);
    ck_assert_msg(strncmp(err.message, "cannot load plugin: ", 20) == 0 &&
                      strstr(err.message, missing),
                  "%s", err.message);

    ow_error_clear(&err);
    ck_assert_int_eq(ow_registry_load_plugin(NOINIT_PLUGIN, &err), OW_ERR_PLUGIN);
    ow_check_error(&err, OW_ERR_PLUGIN, NULL, 0, 0,
                   "plugin '" NOINIT_PLUGIN "' does not export ow_plugin_init");

    /* init's own error; what it registered before failing is removed again */
    for (int attempt = 0; attempt < 2; attempt++) {
        ow_error_clear(&err);
        ck_assert_int_eq(ow_registry_load_plugin(FAIL_PLUGIN, &err), OW_ERR_PLUGIN);
        ow_check_error(
            &err, OW_ERR_PLUGIN, NULL, 0, 0,
            "registry entry has ABI version 4, but this optwrap (" OW_VERSION_STRING
            ") expects 3: rebuild it against this optwrap.h");
        ck_assert_ptr_null(ow_registry_find(OW_KIND_OPTIMIZER, "FailingSGD"));
    }
    ow_error_clear(&err);
    ck_assert_int_eq(ow_registry_load_plugin("", &err), OW_ERR_MISUSE);
}
END_TEST

START_TEST(custom_imports_relative_to_config)
{
    /* the file needs not exist: only its directory is used */
    ow_cfg *cfg = parse_text("custom_imports:\n"
                             "  imports: [.libs/libowtestplugin.so]\n"
                             "  allow_failed_imports: false\n",
                             PLUGIN_DIR_CONFIG);
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow__registry_import(cfg, &err), &err);
    check_plugin_entries();
    ow_cfg_free(cfg);

    /* one string instead of a list; an absolute path is taken as is */
    cfg = parse_text("custom_imports: {imports: " PLUGIN "}\n", "<string>");
    ow_check_ok(ow__registry_import(cfg, &err), &err);
    ow_cfg_free(cfg);
    cfg = parse_text("optim_wrapper: {}\n", "t.yaml"); /* nothing to import */
    ow_check_ok(ow__registry_import(cfg, &err), &err);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(plugin_optimizer_in_check_and_schedule)
{
    /* one reading of the config's scope (ow__cfg_scope): what check accepts, the
     * schedule's target (the optimizer's defaults) finds too */
    ow__registry_reset();
    ow_cfg *cfg = parse_text("custom_imports: {imports: " PLUGIN "}\n"
                             "optim_wrapper:\n"
                             "  optimizer: {type: owtest.PluginSGD, lr: 0.1}\n"
                             "param_scheduler: {type: ConstantLR, factor: 0.5}\n",
                             "<string>");
    ow_error err;
    ow_check_ok(ow_cfg_check(cfg, &err), &err);
    ow__registry_reset();
    ow_sched_target *target = NULL;
    ow_check_ok(ow_sched_target_new(cfg, NULL, &target, &err), &err);
    ow_sched_target_free(target);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(custom_imports_failures)
{
    const char *text = "custom_imports:\n"
                       "  imports: [libmissing.so, .libs/libowtestplugin.so]\n"
                       "  allow_failed_imports: %s\n";
    char buf[256];
    snprintf(buf, sizeof buf, text, "true");
    ow_cfg *cfg = parse_text(buf, PLUGIN_DIR_CONFIG);
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow__registry_import(cfg, &err), &err); /* the missing one is skipped */
    check_plugin_entries();
    ow_cfg_free(cfg);

    snprintf(buf, sizeof buf, text, "false");
    cfg = parse_text(buf, PLUGIN_DIR_CONFIG);
    ck_assert_int_eq(ow__registry_import(cfg, &err), OW_ERR_PLUGIN);
    ow_check_error(&err, OW_ERR_PLUGIN, PLUGIN_DIR_CONFIG, 2, 13, NULL);
    ck_assert_msg(strstr(err.message, "cannot load plugin: " OW_TEST_BUILDDIR
                                      "/tests/plugin/libmissing.so: "),
                  "%s", err.message);
    ow_cfg_free(cfg);
}
END_TEST

START_TEST(import_survives_every_allocation_failure)
{
    ow_cfg *cfg = parse_text("custom_imports: {imports: [.libs/libowtestplugin.so]}\n",
                             PLUGIN_DIR_CONFIG);
    for (long n = 0;; n++) {
        ow_error err;
        ow_error_clear(&err);
        ow__alloc_fail_after(n);
        int rc = ow__registry_import(cfg, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK)
            break;
        ck_assert_int_eq(err.code, OW_ERR_NOMEM);
        ck_assert_ptr_null(ow_registry_find(OW_KIND_OPTIMIZER, "PluginSGD"));
    }
    check_plugin_entries();
    ow_cfg_free(cfg);
}
END_TEST

static Suite *make_registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("Lookup");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_add_loop_test(tc, find_by_name_and_scope, 0, (int)OW__ARRAY_LEN(find_cases));
    tcase_add_loop_test(tc, optimizer_schemas_follow_torch, 0,
                        (int)OW__ARRAY_LEN(schema_cases));
    tcase_add_test(tc, optim_wrapper_schema);
    tcase_add_loop_test(tc, bad_config_errors, 0, (int)OW__ARRAY_LEN(bad_cases));
    tcase_add_test(tc, default_scope_then_root_then_any);
    tcase_add_test(tc, closest_names_sorted);
    suite_add_tcase(s, tc);

    tc = tcase_create("Register");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_add_test(tc, aliases_resolve_to_one_entry);
    tcase_add_test(tc, duplicates_fail_unless_forced);
    tcase_add_test(tc, newest_forced_entry_wins);
    tcase_add_loop_test(tc, invalid_entries_rejected, 0,
                        (int)OW__ARRAY_LEN(invalid_cases));
    tcase_add_test(tc, add_survives_every_allocation_failure);
    suite_add_tcase(s, tc);

    tc = tcase_create("Iterate");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_add_test(tc, iteration_sorted_and_complete);
    tcase_add_test(tc, kind_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("Plugins");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_add_test(tc, load_survives_every_allocation_failure);
    tcase_add_test(tc, load_plugin_twice);
    tcase_add_test(tc, load_plugin_errors);
    tcase_add_test(tc, custom_imports_relative_to_config);
    tcase_add_test(tc, plugin_optimizer_in_check_and_schedule);
    tcase_add_test(tc, custom_imports_failures);
    tcase_add_test(tc, import_survives_every_allocation_failure);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(make_registry_suite());
}
