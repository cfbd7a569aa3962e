/* defaults.c -- an optimizer's `defaults` dict as torch's Optimizer.__init__ keeps it:
 * every key of the optimizer's schema, the config's value first, else the schema's
 * default. One builder for the groups (constructors/build.c) and the schedule's
 * base_param_settings group (sched/target.c). */
#include "../internal.h"

/* A copy of value in pool, or on the heap without one; NULL on allocation failure. */
static ow_cfg *copy_in(ow__pool *pool, const ow_cfg *value)
{
    return pool ? ow__cfg_pool_dup(pool, value) : ow__cfg_dup(value);
}

int ow__optimizer_defaults_new(const ow_entry *optimizer, const ow_cfg *optimizer_cfg,
                               ow__pool *pool, ow_cfg **out, ow_error *err)
{
    *out = NULL;
    ow_cfg *d =
        pool ? ow__cfg_pool_new(pool, OW_CFG_MAP) : ow__cfg_new(OW_CFG_MAP, NULL, 0, 0);
    if (!d)
        return ow__nomem(err);
    int rc = OW_OK;
    for (const ow_key *k = optimizer->keys; k->name && rc == OW_OK; k++) {
        const ow_cfg *given = ow__cfg_map_get(optimizer_cfg, k->name);
        ow_cfg *def = NULL, *v = NULL;
        if (given)
            v = copy_in(pool, given);
        else if (k->flags & OW_KEY_OPTIONAL)
            continue; /* optwrap's own key: only where given */
        else if ((rc = ow__schema_default(k, &def, err)) != OW_OK || !def)
            continue; /* an error, or no default: the key stays absent */
        else /* the parsed default is a heap node: it is the value without a pool */
            v = pool ? copy_in(pool, def) : def;
        if (v != def)
            ow_cfg_free(def);
        int set = pool ? ow__cfg_pool_map_set(pool, d, k->name, v)
                       : ow__cfg_map_set(d, k->name, v);
        if (set != OW_OK) /* both take v, even on failure; a NULL v is NOMEM */
            rc = ow__nomem(err);
    }
    if (rc != OW_OK) {
        ow_cfg_free(d);
        return rc;
    }
    *out = d;
    return OW_OK;
}
