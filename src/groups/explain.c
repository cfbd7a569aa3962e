/* explain.c -- what `optwrap groups --explain` and the table show beyond the groups
 * themselves: per-parameter reasons (merged groups, parameters left out) and the lr a
 * group really steps with once the optimizer applies lr_scale (ow__lr_scaled, the one
 * home of that rule, which the optimizer's step uses too). */
#include "groups_internal.h"

int ow_groups_set_param_reason(ow_groups *groups, size_t param, const char *reason,
                               ow_error *err)
{
    ow__error_reset(err);
    if (!groups)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "groups is NULL");
    size_t n = ow_model_get_num_params(groups->model);
    if (param >= n)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "parameter index %zu out of range (%zu parameters)", param, n);
    if (!groups->param_reasons &&
        !(groups->param_reasons = ow__calloc(n, sizeof(char *))))
        return ow__nomem(err);
    /* interned: many parameters share a reason */
    const char *copy = ow__pool_intern(groups->pool, reason ? reason : "");
    if (!copy)
        return ow__nomem(err);
    groups->param_reasons[param] = copy;
    return OW_OK;
}

const char *ow_groups_get_param_reason(const ow_groups *groups, size_t param)
{
    if (!groups || !groups->param_reasons ||
        param >= ow_model_get_num_params(groups->model))
        return "";
    const char *r = groups->param_reasons[param];
    return r ? r : "";
}

static bool number(const ow_cfg *v, double *out)
{
    if (v && v->type == OW_CFG_INT)
        *out = (double)v->v.i;
    else if (v && v->type == OW_CFG_FLOAT)
        *out = v->v.d;
    else
        return false;
    return true;
}

double ow__lr_scaled(double lr, const ow_cfg *group_options, bool applies_lr_scale)
{
    double scale;
    if (applies_lr_scale && number(ow__cfg_map_get(group_options, "lr_scale"), &scale))
        return lr * scale;
    return lr;
}

int ow_groups_get_effective_lr(const ow_groups *groups, size_t group, double *out,
                               ow_error *err)
{
    ow__error_reset(err);
    if (!groups || !out || group >= groups->n)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_groups_get_effective_lr: bad groups, group or out");
    const ow_cfg *opts = groups->g[group].opts;
    double lr;
    if (!number(ow__cfg_map_get(opts, "lr"), &lr))
        return ow__error(err, OW_ERR_VALUE, NULL, 0, 0, "group %zu has no numeric lr",
                         group);
    *out = ow__lr_scaled(lr, opts, groups->apply_lr_scale);
    return OW_OK;
}
