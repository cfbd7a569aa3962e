/* named_groups.c -- groups merged by name in order of first appearance, the way mmseg's
 * and timm's constructors fill a dict of parameter groups keyed "layer_<id>_<decay>". */
#include "ctor_internal.h"

#include <string.h>

int ow__named_group(ow__named_groups *ng, ow_groups *g, const char *name, size_t *gi,
                    bool *created, ow_error *err)
{
    *created = false;
    for (size_t i = 0; i < ng->n; i++)
        if (!strcmp(ng->names[i], name)) {
            *gi = i;
            return OW_OK;
        }
    if (ow__grow((void **)&ng->names, &ng->cap, ng->n + 1, sizeof(char *)))
        return ow__nomem(err);
    char *copy = ow__strdup(name);
    if (!copy)
        return ow__nomem(err);
    int rc = ow_groups_add(g, gi, err);
    if (rc) {
        ow_free(copy);
        return rc;
    }
    ng->names[ng->n++] = copy;
    *created = true;
    return OW_OK;
}

void ow__named_groups_free(ow__named_groups *ng)
{
    for (size_t i = 0; i < ng->n; i++)
        ow_free(ng->names[i]);
    ow_free(ng->names);
    memset(ng, 0, sizeof *ng);
}

int ow__group_append_name(ow_groups *g, size_t gi, const char *key, const char *name,
                          ow_error *err)
{
    ow_cfg *list = ow__cfg_map_get(g->g[gi].opts, key);
    if (!list) {
        list = ow__cfg_pool_new(g->pool, OW_CFG_LIST);
        int rc = ow__groups_put(g, gi, key, list, err); /* takes list, even on failure */
        if (rc)
            return rc;
    }
    ow_cfg s = {.type = OW_CFG_STRING, .v.s = (char *)name};
    if (ow__cfg_pool_list_append(g->pool, list, ow__cfg_pool_dup(g->pool, &s)) != OW_OK)
        return ow__nomem(err);
    return OW_OK;
}

int ow__layer_group_keys(ow_groups *g, size_t gi, ow_cfg *weight_decay, ow_cfg *lr_scale,
                         const char *name, ow_cfg *lr, ow_error *err)
{
    int rc = ow__groups_put(g, gi, "weight_decay", weight_decay, err);
    if (!rc)
        rc = ow__groups_put(g, gi, "param_names", ow__cfg_pool_new(g->pool, OW_CFG_LIST),
                            err);
    if (!rc) {
        rc = ow__groups_put(g, gi, "lr_scale", lr_scale, err);
        lr_scale = NULL;
    }
    if (!rc)
        rc = ow_groups_set_string(g, gi, "group_name", name, err);
    if (!rc) {
        rc = ow__groups_put(g, gi, "lr", lr, err);
        lr = NULL;
    }
    ow_cfg_free(lr_scale);
    ow_cfg_free(lr);
    return rc;
}
