/* golden_groups.c -- see golden_groups.h. */
#include "golden_groups.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

ow_cfg *ow_golden_load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/groups/%s", OW_TEST_GOLDEN, name);
    char *text = ow_test_slurp(path);
    ow_cfg *c = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow__cfg_parse(text, strlen(text), path, &c, &err), &err);
    ow_free(text);
    return c;
}

ow_cfg *ow_golden_config(const ow_cfg *golden)
{
    ow_cfg *cfg = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_new(&cfg, &err), &err);
    ow_check_ok(
        ow_cfg_set_node(cfg, "optim_wrapper", ow_cfg_find(golden, "optim_wrapper"), &err),
        &err);
    return cfg;
}

ow_model *ow_golden_model(const ow_cfg *golden)
{
    const char *file = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_get_string(ow_cfg_find(golden, "model"), &file, &err), &err);
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s", OW_TEST_GOLDEN, file);
    ow_model *m = NULL;
    ow_check_ok(ow_model_load(path, &m, &err), &err);
    return m;
}

static char *json(const ow_cfg *v)
{
    ow_strbuf sb;
    ow__sb_init(&sb);
    ow__cfg_write_json(&sb, v);
    return ow__sb_take(&sb);
}

void ow_golden_check_groups(const char *name, const ow_groups *groups,
                            const ow_cfg *golden)
{
    const ow_cfg *want = ow_cfg_find(golden, "groups_effective");
    ck_assert_msg(want, "%s: no groups_effective", name);
    const ow_model *model = ow_groups_get_model(groups);
    ck_assert_msg(ow_groups_get_count(groups) == ow_cfg_get_size(want),
                  "%s: %zu groups, reference has %zu", name, ow_groups_get_count(groups),
                  ow_cfg_get_size(want));
    for (size_t gi = 0; gi < ow_cfg_get_size(want); gi++) {
        const ow_cfg *wg = ow_cfg_get_item(want, gi);
        const ow_cfg *params = ow_cfg_find(wg, "params");
        ck_assert_msg(ow_groups_get_num_params(groups, gi) == ow_cfg_get_size(params),
                      "%s: group %zu has %zu params, reference %zu", name, gi,
                      ow_groups_get_num_params(groups, gi), ow_cfg_get_size(params));
        for (size_t j = 0; j < ow_cfg_get_size(params); j++) {
            ow_param_view pv;
            ow_model_get_param(model, ow_groups_get_param(groups, gi, j), &pv);
            ck_assert_msg(!strcmp(pv.full_name, ow_cfg_get_item(params, j)->v.s),
                          "%s: group %zu param %zu is %s, reference %s", name, gi, j,
                          pv.full_name, ow_cfg_get_item(params, j)->v.s);
        }
        /* every key, in order (torch's implementation switches included) */
        const ow_cfg *opts = ow_groups_get_options(groups, gi);
        size_t k_ours = 0;
        for (size_t k = 0; k < ow_cfg_get_size(wg); k++) {
            const char *key = ow_cfg_get_key(wg, k);
            if (!strcmp(key, "params"))
                continue;
            ck_assert_msg(k_ours < ow_cfg_get_size(opts), "%s: group %zu lacks key '%s'",
                          name, gi, key);
            const char *ours = ow_cfg_get_key(opts, k_ours);
            ck_assert_msg(!strcmp(ours, key),
                          "%s: group %zu key %zu is '%s', reference '%s'", name, gi,
                          k_ours, ours, key);
            const ow_cfg *a = ow_cfg_get_item(opts, k_ours), *b = ow_cfg_get_item(wg, k);
            if (!ow__cfg_equal(a, b)) {
                char *ja = json(a), *jb = json(b);
                ck_abort_msg("%s: group %zu '%s' = %s (%s), reference %s (%s)", name, gi,
                             key, ja, ow_cfg_type_name(a->type), jb,
                             ow_cfg_type_name(b->type));
            }
            k_ours++;
        }
        ck_assert_msg(k_ours == ow_cfg_get_size(opts), "%s: group %zu has extra key '%s'",
                      name, gi, ow_cfg_get_key(opts, k_ours));
    }
}

void ow_golden_build(ow_golden_case *c, const char *name)
{
    c->golden = ow_golden_load(name);
    c->cfg = ow_golden_config(c->golden);
    c->model = ow_golden_model(c->golden);
    c->groups = NULL;
    ow_error_clear(&c->err);
    c->rc = ow_groups_build(c->cfg, c->model, &c->groups, &c->err);
}

void ow_golden_case_free(ow_golden_case *c)
{
    ow_groups_free(c->groups);
    ow_model_free(c->model);
    ow_cfg_free(c->cfg);
    ow_cfg_free(c->golden);
}

void ow_golden_check_error(const char *name, int code, int line, int column,
                           const char *message)
{
    ow_golden_case c;
    ow_golden_build(&c, name);
    ck_assert_int_eq(c.rc, code);
    ck_assert_ptr_null(c.groups);
    ow_check_error(&c.err, code, name, line, column, message);
    ow_golden_case_free(&c);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **ow_golden_list(const char *prefix, size_t *n)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/groups", OW_TEST_GOLDEN);
    DIR *d = ow_test_opendir(dir);
    size_t count = 0, cap = 16;
    char **names = calloc(cap + 1, sizeof *names);
    for (struct dirent *e; names && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, strlen(prefix)))
            continue;
        if (count == cap) {
            cap *= 2;
            names = realloc(names, (cap + 1) * sizeof *names);
        }
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    if (!names || count == 0) {
        fprintf(stderr, "no golden files %s* in %s\n", prefix, dir);
        exit(EXIT_FAILURE);
    }
    qsort(names, count, sizeof *names, cmp_str);
    names[count] = NULL;
    *n = count;
    return names;
}

void ow_golden_free_list(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}
