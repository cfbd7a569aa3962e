/* ctor_test.c -- see ctor_test.h. */
#include "ctor_test.h"

#include <stdlib.h>
#include <string.h>

static bool norm_like(const char *last)
{
    return !strncmp(last, "norm", 4) || !strncmp(last, "ln", 2) ||
           !strncmp(last, "bn", 2);
}

/* Adds every missing ancestor module of full module name m (parents first). */
static void ensure_module(ow_model *model, const char *m, const char *root,
                          const char *backbone)
{
    if (ow_model_get_num_modules(model) == 0) {
        ow_module_info r = {.name = "", .type = root};
        ow_error err;
        ow_check_ok(ow_model_add_module(model, &r, &err), &err);
    }
    if (!*m)
        return;
    for (size_t i = 0; i < ow_model_get_num_modules(model); i++)
        if (!strcmp(ow_model_get_module(model, i)->name, m))
            return;
    char parent[512];
    snprintf(parent, sizeof parent, "%s", m);
    char *dot = strrchr(parent, '.');
    if (dot)
        *dot = '\0';
    else
        parent[0] = '\0';
    ensure_module(model, parent, root, backbone);
    const char *last = dot ? m + (dot - parent) + 1 : m;
    ow_module_info info = {.name = m, .type = "Module"};
    if (!strcmp(m, "backbone") && backbone)
        info.type = backbone;
    else if (norm_like(last))
        info.type = "LayerNorm", info.kind = OW_MODULE_NORM;
    ow_error err;
    ow_check_ok(ow_model_add_module(model, &info, &err), &err);
}

ow_model *ct_model(const char *root, const char *backbone, const char *const *specs)
{
    ow_model *m = NULL;
    ow_error err;
    ow_check_ok(ow_model_new("t", &m, &err), &err);
    ensure_module(m, "", root, backbone);
    for (size_t i = 0; specs[i]; i++) {
        const char *spec = specs[i];
        bool frozen = spec[0] == '!';
        char full[512];
        snprintf(full, sizeof full, "%s", spec + frozen);
        int64_t shape[OW_MAX_DIMS] = {2};
        int ndim = 1;
        char *colon = strchr(full, ':');
        if (colon) {
            *colon = '\0';
            ndim = 0;
            for (char *p = colon + 1; *p && ndim < OW_MAX_DIMS;) {
                shape[ndim++] = strtoll(p, &p, 10);
                if (*p == 'x')
                    p++;
            }
        }
        char *dot = strrchr(full, '.');
        const char *pname = dot ? dot + 1 : full;
        if (dot)
            *dot = '\0';
        const char *module = dot ? full : "";
        ensure_module(m, module, root, backbone);
        ow_param_info p = {.module = module,
                           .name = pname,
                           .ndim = ndim,
                           .shape = shape,
                           .requires_grad = !frozen};
        ow_check_ok(ow_model_add_param(m, &p, &err), &err);
    }
    return m;
}

ow_model *ct_arch(const char *name)
{
    ow_model *m = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_model_new_arch(name, &m, &err), &err);
    return m;
}

ow_cfg *ct_config(const char *yaml)
{
    ow_cfg *c = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_load_string(yaml, "t.yaml", &c, &err), &err);
    return c;
}

ow_groups *ct_build(const char *yaml, const ow_model *model)
{
    ow_cfg *cfg = ct_config(yaml);
    ow_groups *g = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_groups_build(cfg, model, &g, &err), &err);
    ow_cfg_free(cfg);
    return g;
}

void ct_build_fails(const char *yaml, const ow_model *model, int code, ow_error *err)
{
    ow_cfg *cfg = ct_config(yaml);
    ow_groups *g = NULL;
    ow_error_clear(err);
    int rc = ow_groups_build(cfg, model, &g, err);
    char buf[1024];
    ow_error_format(err, buf, sizeof buf);
    ck_assert_msg(rc == code, "expected %s, got %s (%s)", ow_error_code_name(code),
                  ow_error_code_name(rc), buf);
    ck_assert_ptr_null(g);
    ow_cfg_free(cfg);
}

size_t ct_group_of(const ow_groups *g, const char *name)
{
    const ow_model *m = ow_groups_get_model(g);
    long p = ow_model_find_param(m, name);
    ck_assert_msg(p >= 0, "no parameter '%s' in the model", name);
    for (size_t gi = 0; gi < ow_groups_get_count(g); gi++)
        for (size_t j = 0; j < ow_groups_get_num_params(g, gi); j++)
            if (ow_groups_get_param(g, gi, j) == (size_t)p)
                return gi;
    ck_abort_msg("parameter '%s' is in no group", name);
    return 0;
}

double ct_num(const ow_groups *g, size_t gi, const char *key)
{
    const ow_cfg *v = ow_cfg_find(ow_groups_get_options(g, gi), key);
    ck_assert_msg(
        v && (ow_cfg_get_type(v) == OW_CFG_INT || ow_cfg_get_type(v) == OW_CFG_FLOAT),
        "group %zu has no number '%s'", gi, key);
    double d = 0;
    ow_error err;
    ow_check_ok(ow_cfg_get_double(v, &d, &err), &err);
    return d;
}

bool ct_has_warning(const ow_groups *g, const char *text)
{
    for (size_t i = 0; i < ow_groups_get_num_warnings(g); i++)
        if (strstr(ow_groups_get_warning(g, i), text))
            return true;
    return false;
}

ow_groups *ct_build_oom(const ow_cfg *cfg, const ow_model *model)
{
    for (long n = 0;; n++) {
        ow_groups *g = NULL;
        ow_error err;
        ow_error_clear(&err);
        ow__alloc_fail_after(n);
        int rc = ow_groups_build(cfg, model, &g, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK)
            return g;
        ck_assert_msg(rc == OW_ERR_NOMEM, "allocation %ld: %s (%s)", n,
                      ow_error_code_name(rc), err.message);
        ck_assert_ptr_null(g);
    }
}
