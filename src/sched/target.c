/* target.c -- the ready-made schedule target over param groups: their hyperparameter
 * maps, written in place, plus mmengine's base_param_settings group (the optimizer's
 * defaults) when there is more than one group. "momentum" falls back to betas[0]. */
#include "sched_internal.h"

#include <string.h>

typedef struct groups_target {
    ow__target_impl impl; /* first: the pointer handed out */
    ow_groups *groups;    /* borrowed; NULL: the base group alone */
    size_t n_real;
    ow_cfg *base; /* owned: the optimizer's defaults */
} groups_target;

static ow_cfg *group_map(const groups_target *t, size_t g)
{
    return g < t->n_real ? ow__groups_get_options_mutable(t->groups, g) : t->base;
}

ow_cfg *ow__sched_value_node(const ow_cfg *map, const char *key)
{
    ow_cfg *v = ow__cfg_map_get(map, key);
    if (!v && !strcmp(key, "momentum")) {
        /* Adam-style optimizers: mmengine's momentum schedulers drive betas[0] */
        ow_cfg *betas = ow__cfg_map_get(map, "betas");
        if (betas && betas->type == OW_CFG_LIST && betas->v.c.n == 2)
            v = betas->v.c.items[0];
    }
    return v && (v->type == OW_CFG_INT || v->type == OW_CFG_FLOAT) ? v : NULL;
}

static ow_cfg *value_node(const groups_target *t, size_t g, const char *key)
{
    return ow__sched_value_node(group_map(t, g), key);
}

static bool target_get(void *ctx, size_t g, const char *key, double *value)
{
    return ow__sched_value_get(group_map(ctx, g), key, value);
}

static void target_set(void *ctx, size_t g, const char *key, double value)
{
    ow_cfg *v = value_node(ctx, g, key);
    if (v) { /* in place: a scheduled int (`momentum: 0`) becomes a float, as in Python */
        v->type = OW_CFG_FLOAT;
        v->v.d = value;
    }
}

bool ow__sched_value_get(const ow_cfg *map, const char *key, double *value)
{
    const ow_cfg *v = ow__sched_value_node(map, key);
    if (!v)
        return false;
    *value = v->type == OW_CFG_INT ? (double)v->v.i : v->v.d;
    return true;
}

/* optimizer.defaults (ow__optimizer_defaults_new) of the config's optimizer. */
static int make_base(const ow_cfg *config, ow_cfg **out, ow_error *err)
{
    const ow_cfg *opt = ow_cfg_find(config, "optim_wrapper.optimizer");
    if (!opt || opt->type != OW_CFG_MAP)
        return ow__error_at(
            err, OW_ERR_MISSING_KEY, config,
            "config: the schedule needs optim_wrapper.optimizer (a map with "
            "the optimizer's type and lr)");
    const ow_cfg *type = ow__cfg_map_get(opt, "type");
    if (!type)
        return ow__error_at(err, OW_ERR_MISSING_KEY, opt,
                            "optim_wrapper.optimizer: missing key 'type'");
    const char *scope;
    const ow_entry *entry;
    ow_cfg *flat = NULL;
    int rc = ow__cfg_scope(config, &scope, err);
    if (rc || (rc = ow__optimizer_lookup(opt, scope, &entry, &flat, err)))
        return rc;
    if (flat)
        opt = flat; /* Lookahead's config form */
    if (!(rc = ow__optimizer_check_config(entry, opt, "optim_wrapper.optimizer", err)))
        rc = ow__optimizer_defaults_new(entry, opt, NULL, out, err);
    ow_cfg_free(flat);
    return rc;
}

static void destroy(ow__target_impl *impl)
{
    groups_target *t = (groups_target *)impl;
    ow_cfg_free(t->base);
    ow_free(t);
}

int ow_sched_target_new(const ow_cfg *config, ow_groups *groups, ow_sched_target **out,
                        ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_sched_target_new: out is NULL");
    *out = NULL;
    if (!config)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_sched_target_new: config is NULL");
    groups_target *t = ow__calloc(1, sizeof *t);
    if (!t)
        return ow__nomem(err);
    int rc = make_base(config, &t->base, err);
    if (rc) {
        ow_free(t);
        return rc;
    }
    t->groups = groups;
    t->n_real = ow_groups_get_count(groups);
    bool has_base = t->n_real > 1;
    t->impl.destroy = destroy;
    t->impl.pub =
        (ow_sched_target){.num_groups = groups ? t->n_real + has_base : 1,
                          .has_base_group = has_base,
                          .lr_scale_at_step = ow__groups_applies_lr_scale(groups),
                          .ctx = t,
                          .get = target_get,
                          .set = target_set};
    *out = &t->impl.pub;
    return OW_OK;
}

void ow_sched_target_free(ow_sched_target *target)
{
    if (target)
        ((ow__target_impl *)target)->destroy((ow__target_impl *)target);
}
