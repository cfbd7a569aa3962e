/* groups.c -- the ow_groups object: param groups as torch's optimizer.param_groups hold
 * them (parameter occurrences plus an ordered map of hyperparameters), the optimizer
 * they are for, their accessors, and their JSON form. */
#include "groups_internal.h"

#include <string.h>

void ow_groups_free(ow_groups *groups)
{
    if (!groups)
        return;
    for (size_t i = 0; i < groups->n; i++)
        ow_cfg_free(groups->g[i].opts); /* what was set from outside, on the heap */
    ow_free(groups->g);
    ow_free(groups->param_reasons);
    for (size_t i = 0; i < groups->n_warnings; i++)
        ow_free(groups->warnings[i]);
    ow_free(groups->warnings);
    ow_cfg_free(groups->defaults);
    ow__pool_free(groups->pool); /* last: the nodes above may live in it */
    ow_free(groups);
}

ow_groups *ow__groups_new(const ow_model *model)
{
    ow_groups *g = ow__calloc(1, sizeof *g);
    if (g && !(g->pool = ow__pool_new())) {
        ow_free(g);
        return NULL;
    }
    if (g)
        g->model = model;
    return g;
}

static int bad_group(const ow_groups *groups, size_t group, ow_error *err)
{
    if (!groups)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "groups is NULL");
    if (group >= groups->n)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "group index %zu out of range (%zu groups)", group, groups->n);
    return OW_OK;
}

int ow_groups_add(ow_groups *groups, size_t *index, ow_error *err)
{
    ow__error_reset(err);
    if (!groups)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "groups is NULL");
    if (ow__grow((void **)&groups->g, &groups->cap, groups->n + 1, sizeof(ow_group)))
        return ow__nomem(err);
    ow_group *grp = &groups->g[groups->n];
    memset(grp, 0, sizeof *grp);
    if (!(grp->opts = ow__cfg_pool_new(groups->pool, OW_CFG_MAP)) ||
        ow__cfg_pool_reserve(groups->pool, grp->opts, groups->opts_cap) != OW_OK)
        return ow__nomem(err);
    if (index)
        *index = groups->n;
    groups->n++;
    return OW_OK;
}

int ow_groups_add_param(ow_groups *groups, size_t group, size_t param, ow_error *err)
{
    ow__error_reset(err);
    int rc = bad_group(groups, group, err);
    if (rc)
        return rc;
    if (param >= ow_model_get_num_params(groups->model))
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "parameter index %zu out of range (%zu parameters)", param,
                         ow_model_get_num_params(groups->model));
    ow_group *grp = &groups->g[group];
    if (grp->n == grp->cap) { /* doubling in the pool: the old array stays there */
        size_t cap = grp->cap ? grp->cap * 2 : 1;
        size_t *params =
            ow__pool_alloc(groups->pool, cap * sizeof *params, _Alignof(size_t));
        if (!params)
            return ow__nomem(err);
        if (grp->n)
            memcpy(params, grp->params, grp->n * sizeof *params);
        grp->params = params;
        grp->cap = cap;
    }
    grp->params[grp->n++] = param;
    return OW_OK;
}

int ow__groups_put(ow_groups *groups, size_t gi, const char *key, ow_cfg *value,
                   ow_error *err)
{
    if (ow__cfg_pool_map_set(groups->pool, groups->g[gi].opts, key, value) != OW_OK)
        return ow__nomem(err);
    return OW_OK;
}

/* Sets a copy of value: in the pool while ow_groups_build fills the groups (freed with
 * them at once), on the heap otherwise, so that setting a key again and again after a
 * build does not grow the pool. */
static int set_copy(ow_groups *groups, size_t group, const char *key, const ow_cfg *value,
                    ow_error *err)
{
    int rc = bad_group(groups, group, err);
    if (rc)
        return rc;
    if (!key || !*key || !strcmp(key, "params"))
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "invalid group key '%s'",
                         key ? key : "(null)");
    ow_cfg *v =
        groups->building ? ow__cfg_pool_dup(groups->pool, value) : ow__cfg_dup(value);
    return v ? ow__groups_put(groups, group, key, v, err) : ow__nomem(err);
}

int ow_groups_set_double(ow_groups *groups, size_t group, const char *key, double value,
                         ow_error *err)
{
    ow__error_reset(err);
    return set_copy(groups, group, key, &(ow_cfg){.type = OW_CFG_FLOAT, .v.d = value},
                    err);
}

int ow_groups_set_int(ow_groups *groups, size_t group, const char *key, int64_t value,
                      ow_error *err)
{
    ow__error_reset(err);
    return set_copy(groups, group, key, &(ow_cfg){.type = OW_CFG_INT, .v.i = value}, err);
}

int ow_groups_set_string(ow_groups *groups, size_t group, const char *key,
                         const char *value, ow_error *err)
{
    ow__error_reset(err);
    ow_cfg v = {.type = OW_CFG_STRING, .v.s = (char *)(value ? value : "")};
    return set_copy(groups, group, key, &v, err);
}

int ow_groups_set_value(ow_groups *groups, size_t group, const char *key,
                        const ow_cfg *value, ow_error *err)
{
    ow__error_reset(err);
    if (!value)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "value is NULL");
    return set_copy(groups, group, key, value, err);
}

int ow_groups_set_reason(ow_groups *groups, size_t group, const char *reason,
                         ow_error *err)
{
    ow__error_reset(err);
    int rc = bad_group(groups, group, err);
    if (rc)
        return rc;
    /* interned: many groups share a reason */
    const char *r = ow__pool_intern(groups->pool, reason ? reason : "");
    if (!r)
        return ow__nomem(err);
    groups->g[group].reason = r;
    return OW_OK;
}

int ow_groups_add_warning(ow_groups *groups, const ow_cfg *node, const char *message,
                          ow_error *err)
{
    ow__error_reset(err);
    if (!groups || !message)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "groups or message is NULL");
    ow_error as_error;
    ow_error_clear(&as_error);
    ow__error_at(&as_error, OW_ERR_VALUE, node, "%s", message);
    char line[OW_ERROR_FILE_LEN + OW_ERROR_TEXT_LEN + 32];
    ow_error_format(&as_error, line, sizeof line);
    char *copy = ow__strdup(line);
    if (!copy || ow__grow((void **)&groups->warnings, &groups->cap_warnings,
                          groups->n_warnings + 1, sizeof(char *))) {
        ow_free(copy);
        return ow__nomem(err);
    }
    groups->warnings[groups->n_warnings++] = copy;
    return OW_OK;
}

size_t ow_groups_get_num_warnings(const ow_groups *groups)
{
    return groups ? groups->n_warnings : 0;
}

const char *ow_groups_get_warning(const ow_groups *groups, size_t i)
{
    return groups && i < groups->n_warnings ? groups->warnings[i] : NULL;
}

size_t ow_groups_get_count(const ow_groups *groups)
{
    return groups ? groups->n : 0;
}

size_t ow_groups_get_num_params(const ow_groups *groups, size_t group)
{
    return groups && group < groups->n ? groups->g[group].n : 0;
}

size_t ow_groups_get_param(const ow_groups *groups, size_t group, size_t j)
{
    if (!groups || group >= groups->n || j >= groups->g[group].n)
        return (size_t)-1;
    return groups->g[group].params[j];
}

const ow_cfg *ow_groups_get_options(const ow_groups *groups, size_t group)
{
    return groups && group < groups->n ? groups->g[group].opts : NULL;
}

const char *ow_groups_get_reason(const ow_groups *groups, size_t group)
{
    if (!groups || group >= groups->n || !groups->g[group].reason)
        return "";
    return groups->g[group].reason;
}

const ow_model *ow_groups_get_model(const ow_groups *groups)
{
    return groups ? groups->model : NULL;
}

const ow_entry *ow__groups_get_optimizer(const ow_groups *groups)
{
    return groups ? groups->optimizer : NULL;
}

const ow_cfg *ow__groups_get_defaults(const ow_groups *groups)
{
    return groups ? groups->defaults : NULL;
}

void ow__groups_set_optimizer(ow_groups *groups, const ow_entry *optimizer,
                              ow_cfg *defaults)
{
    if (!groups) {
        ow_cfg_free(defaults);
        return;
    }
    if (groups->defaults != defaults)
        ow_cfg_free(groups->defaults);
    groups->optimizer = optimizer;
    groups->defaults = defaults;
}

bool ow__groups_applies_lr_scale(const ow_groups *groups)
{
    return groups && groups->apply_lr_scale;
}

ow_cfg *ow__groups_get_options_mutable(ow_groups *groups, size_t group)
{
    return groups && group < groups->n ? groups->g[group].opts : NULL;
}

int ow_groups_save_json(const ow_groups *groups, char **out, ow_error *err)
{
    ow__error_reset(err);
    if (!groups || !out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "groups or out is NULL");
    *out = NULL;
    ow_strbuf sb;
    ow__sb_init(&sb);
    ow__sb_puts(&sb, "{\"groups\": [");
    for (size_t i = 0; i < groups->n; i++) {
        const ow_group *grp = &groups->g[i];
        ow__sb_puts(&sb, i ? ", {\"params\": [" : "{\"params\": [");
        for (size_t j = 0; j < grp->n; j++) {
            ow_param_view pv;
            ow_model_get_param(groups->model, grp->params[j], &pv);
            if (j)
                ow__sb_puts(&sb, ", ");
            ow__sb_json_string(&sb, pv.full_name);
        }
        ow__sb_putc(&sb, ']');
        for (size_t k = 0; k < grp->opts->v.c.n; k++) {
            ow__sb_puts(&sb, ", ");
            ow__sb_json_string(&sb, grp->opts->v.c.keys[k]);
            ow__sb_puts(&sb, ": ");
            ow__cfg_write_json(&sb, grp->opts->v.c.items[k]);
        }
        ow__sb_putc(&sb, '}');
    }
    ow__sb_puts(&sb, "]}");
    if (!(*out = ow__sb_take(&sb)))
        return ow__nomem(err);
    return OW_OK;
}
