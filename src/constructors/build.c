/* build.c -- from a config to param groups: resolve and validate the optim wrapper,
 * the optimizer and the constructor through the registry, run the constructor, then
 * fill every group the way torch's add_param_group does (explicit keys first, then the
 * optimizer config's values and the optimizer's defaults, in the defaults' order). */
#include "ctor_internal.h"

#include <string.h>

/* torch: setdefault every default into each group; a required key missing everywhere
 * is "parameter group didn't specify a value of required optimization parameter".
 * OW_KEY_OPTIONAL keys (optwrap's additions) are left out unless given.
 * Linear in the number of groups: each group's map grows once, by the keys it lacks,
 * and takes the interned key names. Numbers and lists are copied, since schedulers
 * write them in place (sched/target.c); bools, nulls and strings, which nothing writes
 * in place, are the defaults' own pooled nodes, shared (pooled nodes are never freed
 * one by one). */
static int fill_groups(ow_groups *groups, const ow_entry *opt, const ow_cfg *defaults,
                       const ow_cfg *opt_cfg, ow_error *err)
{
    ow__pool *pool = groups->pool;
    size_t nk = 0;
    while (opt->keys[nk].name)
        nk++;
    if (nk == 0)
        return OW_OK;
    const char **names = ow__pool_alloc(pool, nk * sizeof *names, _Alignof(char *));
    const ow_cfg **values = ow__pool_alloc(pool, nk * sizeof *values, _Alignof(ow_cfg *));
    bool *repeated = ow__pool_alloc(pool, nk * sizeof *repeated, 1);
    bool *missing = ow__pool_alloc(pool, nk * sizeof *missing, 1);
    if (!names || !values || !repeated || !missing)
        return ow__nomem(err);
    for (size_t k = 0; k < nk; k++) {
        if (!(names[k] = ow__pool_intern(pool, opt->keys[k].name)))
            return ow__nomem(err);
        values[k] = ow__cfg_map_get(defaults, names[k]);
        repeated[k] = false; /* a name listed twice is there from its first time on */
        for (size_t j = 0; j < k && !repeated[k]; j++)
            repeated[k] = names[j] == names[k];
    }
    for (size_t gi = 0; gi < groups->n; gi++) {
        ow_cfg *opts = groups->g[gi].opts;
        size_t n0 = opts->v.c.n, add = 0; /* n0: the constructor's keys */
        for (size_t k = 0; k < nk; k++) {
            bool present = repeated[k] || (opt->keys[k].flags & OW_KEY_OPTIONAL);
            for (size_t j = 0; j < n0 && !present; j++)
                present = opts->v.c.keys[j][0] == names[k][0] &&
                          !strcmp(opts->v.c.keys[j], names[k]);
            missing[k] = !present;
            add += !present;
        }
        if (ow__cfg_pool_reserve(pool, opts, n0 + add) != OW_OK)
            return ow__nomem(err);
        for (size_t k = 0; k < nk; k++) {
            if (!missing[k])
                continue;
            const ow_cfg *v = values[k];
            if (!v)
                return ow__error_at(
                    err, OW_ERR_MISSING_KEY, opt_cfg,
                    "optim_wrapper.optimizer: parameter group %zu didn't "
                    "specify a value of required optimization parameter %s",
                    gi, names[k]);
            bool shared = v->type == OW_CFG_BOOL || v->type == OW_CFG_NULL ||
                          v->type == OW_CFG_STRING;
            ow_cfg *copy = shared ? (ow_cfg *)v : ow__cfg_pool_dup(pool, v);
            if (ow__cfg_pool_map_add(pool, opts, names[k], copy) != OW_OK)
                return ow__nomem(err);
        }
    }
    return OW_OK;
}

/* torch refuses a tensor that sits in two groups. */
static int check_disjoint(const ow_groups *groups, const ow_cfg *where, ow_error *err)
{
    size_t n_tensors = ow_model_get_num_tensors(groups->model);
    size_t *first = ow__malloc((n_tensors ? n_tensors : 1) * sizeof *first);
    if (!first)
        return ow__nomem(err);
    for (size_t t = 0; t < n_tensors; t++)
        first[t] = (size_t)-1;
    int rc = OW_OK;
    for (size_t gi = 0; gi < groups->n && rc == OW_OK; gi++)
        for (size_t j = 0; j < groups->g[gi].n; j++) {
            ow_param_view pv;
            ow_model_get_param(groups->model, groups->g[gi].params[j], &pv);
            if (first[pv.tensor] != (size_t)-1 && first[pv.tensor] != gi) {
                ow_param_view fv;
                ow_model_get_param(groups->model, groups->g[first[pv.tensor]].params[0],
                                   &fv);
                rc = ow__error_at(
                    err, OW_ERR_DUPLICATE, where,
                    "some parameters appear in more than one parameter group: "
                    "'%s' is the same tensor as an earlier parameter (set "
                    "paramwise_cfg.bypass_duplicate: true to keep only its "
                    "first occurrence)",
                    pv.full_name);
                break;
            }
            first[pv.tensor] = gi;
        }
    ow_free(first);
    return rc;
}

/* What a config's optim_wrapper resolves to, once validated. */
typedef struct resolved {
    const ow_cfg *optim_wrapper, *optimizer, *paramwise_cfg, *where;
    const ow_entry *wrapper, *opt, *ctor;
    ow_cfg *flat; /* owned: Lookahead's config form as the flat optimizer map */
} resolved;

/* Validates one optim_wrapper map `ow_node` of config (the whole config gives
 * default_scope and custom_imports): types known, keys known, values in range. */
static int resolve_node(const ow_cfg *config, const ow_cfg *ow_node, resolved *r,
                        ow_error *err)
{
    memset(r, 0, sizeof *r);
    const char *scope;
    int rc = ow__cfg_scope(config, &scope, err);
    if (rc)
        return rc;
    r->optim_wrapper = ow_node;
    /* the wrapper type (mmengine: setdefault('type', 'OptimWrapper')) and its keys */
    if ((rc = ow__wrapper_resolve(config, ow_node, &r->wrapper, NULL, err)))
        return rc;

    /* the optimizer */
    const ow_cfg *opt_cfg = ow__cfg_map_get(ow_node, "optimizer");
    if (opt_cfg->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, opt_cfg,
                            "optim_wrapper.optimizer: expected map, got %s",
                            ow_cfg_type_name(opt_cfg->type));
    const ow_cfg *otype = ow__cfg_map_get(opt_cfg, "type");
    if (!otype)
        return ow__error_at(err, OW_ERR_MISSING_KEY, opt_cfg,
                            "optim_wrapper.optimizer: missing key 'type'");
    if ((rc = ow__optimizer_lookup(opt_cfg, scope, &r->opt, &r->flat, err)))
        return rc;
    if (r->flat)
        opt_cfg = r->flat; /* Lookahead's config form */
    if ((rc =
             ow__optimizer_check_config(r->opt, opt_cfg, "optim_wrapper.optimizer", err)))
        return rc;
    r->optimizer = opt_cfg;

    /* the constructor, and its paramwise_cfg schema */
    const ow_cfg *ctype = ow__cfg_map_get(ow_node, "constructor");
    if (ctype && ctype->type != OW_CFG_NULL)
        rc = ow__registry_lookup(OW_KIND_CONSTRUCTOR, ctype, scope, &r->ctor, err);
    else if (!(r->ctor = ow_registry_find(OW_KIND_CONSTRUCTOR,
                                          "DefaultOptimWrapperConstructor")))
        rc = ow__error_at(err, OW_ERR_UNKNOWN_TYPE, ow_node,
                          "DefaultOptimWrapperConstructor is not registered");
    if (rc)
        return rc;
    const ow_constructor_ops *ops = r->ctor->ops;
    if (!ops || !ops->build)
        return ow__error_at(err, OW_ERR_UNSUPPORTED, ctype ? ctype : ow_node,
                            "constructor '%s' has no build function", r->ctor->name);
    const ow_cfg *pw = ow__cfg_map_get(ow_node, "paramwise_cfg");
    if (pw && pw->type == OW_CFG_NULL)
        pw = NULL;
    if (pw && (rc = ow__schema_check(pw, r->ctor->keys, "optim_wrapper.paramwise_cfg",
                                     NULL, err)))
        return rc;
    /* a constructor that declares custom_keys a map reads them as mmengine does */
    const ow_key *ck_row = ow__schema_find(r->ctor->keys, "custom_keys");
    if (pw && ck_row && ck_row->type == OW_T_MAP && (rc = ow__custom_keys_check(pw, err)))
        return rc;
    /* a layer_depth section names its own registry entry: check it without a model */
    const ow_cfg *ld = pw ? ow__cfg_map_get(pw, "layer_depth") : NULL;
    if (ld && ld->type == OW_CFG_MAP && (rc = ow__depth_check(ld, scope, err)))
        return rc;
    r->paramwise_cfg = pw;
    r->where = pw ? pw : ow_node;
    return OW_OK;
}

/* resolve_node, with r->flat freed on failure (and NULL) */
static int resolve(const ow_cfg *config, const ow_cfg *ow_node, resolved *r,
                   ow_error *err)
{
    int rc = resolve_node(config, ow_node, r, err);
    if (rc) {
        ow_cfg_free(r->flat);
        r->flat = NULL;
    }
    return rc;
}

/* The config's optim_wrapper map, after the checks every entry point makes. */
static int wrapper_node(const ow_cfg *config, const ow_cfg **out, ow_error *err)
{
    const char *scope;
    int rc = ow__cfg_scope(config, &scope, err);
    if (rc)
        return rc;
    const ow_cfg *ow_node = ow__cfg_map_get(config, "optim_wrapper");
    if (!ow_node)
        return ow__error_at(err, OW_ERR_MISSING_KEY, config,
                            "config: missing key 'optim_wrapper'");
    if (ow_node->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, ow_node,
                            "optim_wrapper: expected map, got %s",
                            ow_cfg_type_name(ow_node->type));
    *out = ow_node;
    return OW_OK;
}

int ow__wrapper_node_check(const ow_cfg *config, const ow_cfg *node, ow_error *err)
{
    resolved r;
    int rc = resolve(config, node, &r, err);
    if (!rc)
        ow_cfg_free(r.flat);
    return rc;
}

int ow_cfg_check(const ow_cfg *config, ow_error *err)
{
    ow__error_reset(err);
    if (!config)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_cfg_check: config is NULL");
    const ow_cfg *node;
    resolved r;
    int rc = wrapper_node(config, &node, err);
    bool dict = rc == OW_OK && ow__wrapper_is_dict(node);
    if (rc == OW_OK)
        rc = ow__loops_check(config, err);
    /* a dict checks each member's optimizer and schedule (dict.c) */
    if (rc == OW_OK)
        rc = dict ? ow__wrapper_dict_check(config, err) : resolve(config, node, &r, err);
    if (rc == OW_OK && !dict)
        ow_cfg_free(r.flat);
    if (rc == OW_OK && !dict && ow__cfg_map_get(config, "param_scheduler"))
        rc = ow_sched_check(config, err);
    return rc;
}

int ow_groups_build(const ow_cfg *config, const ow_model *model, ow_groups **out,
                    ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_groups_build: out is NULL");
    *out = NULL;
    if (!config || !model)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_groups_build: config or model is NULL");
    const ow_cfg *node;
    int rc = wrapper_node(config, &node, err);
    if (rc)
        return rc;
    if (ow__wrapper_is_dict(node))
        return ow__error_at(err, OW_ERR_MISUSE, node,
                            "optim_wrapper: an OptimWrapperDict (a map of named "
                            "wrappers) has groups per wrapper: build it with "
                            "ow_optim_wrapper_new");
    return ow__groups_build_node(config, node, model, out, err);
}

int ow__groups_build_node(const ow_cfg *config, const ow_cfg *node, const ow_model *model,
                          ow_groups **out, ow_error *err)
{
    *out = NULL;
    resolved r;
    int rc = resolve(config, node, &r, err);
    if (rc)
        return rc;
    ow_groups *groups = ow__groups_new(model);
    ow_cfg *defaults = NULL;
    if (!groups) {
        ow_cfg_free(r.flat);
        return ow__nomem(err);
    }
    groups->building = true;
    for (const ow_key *k = r.opt->keys; k->name; k++)
        groups->opts_cap++;
    ow_constructor_ctx ctx = {.optim_wrapper = r.optim_wrapper,
                              .optimizer = r.optimizer,
                              .paramwise_cfg = r.paramwise_cfg,
                              .optimizer_entry = r.opt,
                              .model = model};
    const ow_constructor_ops *ops = r.ctor->ops;
    if ((rc = ops->build(&ctx, groups, err)))
        goto fail;
    if (groups->n == 0 || (groups->n == 1 && groups->g[0].n == 0)) {
        rc = ow__error_at(err, OW_ERR_MODEL, r.optim_wrapper,
                          "optimizer got an empty parameter list (the model has no "
                          "parameter that requires a gradient)");
        goto fail;
    }
    /* the defaults live in the groups' pool, values included, so that fill_groups can
     * copy (or share) them cheaply */
    if ((rc = check_disjoint(groups, r.where, err)) ||
        (rc = ow__optimizer_defaults_new(r.opt, r.optimizer, groups->pool, &defaults,
                                         err)) ||
        (rc = fill_groups(groups, r.opt, defaults, r.optimizer, err)))
        goto fail;
    groups->building = false;
    ow__groups_set_optimizer(groups, r.opt, defaults);
    ow_cfg_free(r.flat);
    *out = groups;
    return OW_OK;
fail:
    ow_cfg_free(r.flat);
    ow_cfg_free(defaults);
    ow_groups_free(groups);
    return rc;
}
