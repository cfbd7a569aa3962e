/* dict.c -- mmengine's OptimWrapperDict: several named wrappers from one config (a
 * GAN's generator and discriminator), each with its own optimizer, constructor and
 * paramwise_cfg over the module of its name, and its own schedule: `param_scheduler`
 * keyed by wrapper name, or one list every wrapper gets. */
#include "../model/model_internal.h"
#include "wrapper_internal.h"

#include <string.h>

/* param_scheduler as a map of wrapper names (a map without `type`). */
static bool keyed_schedule(const ow_cfg *ps)
{
    return ow_cfg_get_type(ps) == OW_CFG_MAP && !ow_cfg_find(ps, "type");
}

/* The config one member sees: the whole config with its own optim_wrapper and
 * schedule. */
static int member_config(const ow_cfg *config, const char *name, const ow_cfg *node,
                         ow_cfg **out, ow_error *err)
{
    const ow_cfg *ps = ow_cfg_find(config, "param_scheduler");
    ow_cfg *c = NULL, *empty = NULL;
    int rc = ow_cfg_copy(config, &c, err);
    if (rc == OW_OK)
        rc = ow_cfg_set_node(c, "optim_wrapper", node, err);
    if (rc == OW_OK && keyed_schedule(ps)) {
        const ow_cfg *mine = ow__cfg_map_get(ps, name);
        if (!mine && !(empty = ow__cfg_new(OW_CFG_LIST, NULL, 0, 0)))
            rc = ow__nomem(err);
        if (rc == OW_OK)
            rc = ow_cfg_set_node(c, "param_scheduler", mine ? mine : empty, err);
    }
    ow_cfg_free(empty);
    if (rc) {
        ow_cfg_free(c);
        return rc;
    }
    *out = c;
    return OW_OK;
}

int ow__wrapper_dict_check(const ow_cfg *config, ow_error *err)
{
    const ow_cfg *node = ow_cfg_find(config, "optim_wrapper");
    const ow_cfg *ps = ow_cfg_find(config, "param_scheduler");
    int rc = OW_OK;
    for (size_t i = 0; i < node->v.c.n && rc == OW_OK; i++) {
        const char *name = node->v.c.keys[i];
        const ow_cfg *member = node->v.c.items[i];
        if (!strcmp(name, "constructor"))
            continue;
        if (member->type != OW_CFG_MAP)
            return ow__error_at(err, OW_ERR_TYPE, member,
                                "optim_wrapper.%s: an OptimWrapperDict holds wrappers "
                                "(maps with an optimizer), got %s",
                                name, ow_cfg_type_name(member->type));
        rc = ow__wrapper_node_check(config, member, err);
    }
    for (size_t i = 0; rc == OW_OK && keyed_schedule(ps) && i < ps->v.c.n; i++)
        if (!ow__cfg_map_get(node, ps->v.c.keys[i]))
            rc = ow__error_at(err, OW_ERR_UNKNOWN_KEY, ps->v.c.items[i],
                              "param_scheduler.%s: no wrapper of optim_wrapper has "
                              "that name",
                              ps->v.c.keys[i]);
    /* each member's schedule, as the member config it is built from */
    for (size_t i = 0; rc == OW_OK && ps && i < node->v.c.n; i++) {
        if (!strcmp(node->v.c.keys[i], "constructor"))
            continue;
        ow_cfg *c = NULL;
        if ((rc = member_config(config, node->v.c.keys[i], node->v.c.items[i], &c,
                                err)) == OW_OK)
            rc = ow_sched_check(c, err);
        ow_cfg_free(c);
    }
    return rc;
}

/* The module `prefix` of model as a tree of its own (prefix's module as the root), with
 * the same data and grad pointers: what mmengine passes as model.<name>. */
static int submodel(const ow_model *model, const char *prefix, ow_model **out,
                    ow_error *err)
{
    size_t plen = strlen(prefix);
    ow_model *m = NULL;
    int rc = ow_model_new(prefix, &m, err);
    bool found = false;
    for (size_t i = 0; rc == OW_OK && i < ow_model_get_num_modules(model); i++) {
        ow_module_info mi = *ow_model_get_module(model, i);
        if (!strcmp(mi.name, prefix))
            mi.name = "";
        else if (!strncmp(mi.name, prefix, plen) && mi.name[plen] == '.')
            mi.name += plen + 1;
        else
            continue;
        found = true;
        rc = ow_model_add_module(m, &mi, err);
    }
    if (rc == OW_OK && !found)
        rc = ow__error(err, OW_ERR_MODEL, NULL, 0, 0,
                       "optim_wrapper.%s: the model has no module '%s' for this wrapper "
                       "of the OptimWrapperDict",
                       prefix, prefix);
    for (size_t i = 0; rc == OW_OK && i < ow_model_get_num_params(model); i++) {
        ow_param_view pv;
        ow_model_get_param(model, i, &pv);
        const char *mod = pv.module;
        if (!strcmp(mod, prefix))
            mod = "";
        else if (!strncmp(mod, prefix, plen) && mod[plen] == '.')
            mod += plen + 1;
        else
            continue;
        const char *shared = pv.is_shared ? ow__model_get_tensor_name(model, i) : NULL;
        if (shared && (strncmp(shared, prefix, plen) || shared[plen] != '.'))
            rc = ow__error(err, OW_ERR_MODEL, NULL, 0, 0,
                           "optim_wrapper.%s: parameter '%s' is tied to '%s', outside "
                           "the wrapper's module",
                           prefix, pv.full_name, shared);
        ow_param_info pi = {.module = mod,
                            .name = pv.name,
                            .ndim = pv.ndim,
                            .shape = pv.shape,
                            .requires_grad = pv.requires_grad,
                            .data = pv.data,
                            .grad = pv.grad,
                            .shared = shared ? shared + plen + 1 : NULL};
        if (rc == OW_OK)
            rc = ow_model_add_param(m, &pi, err);
    }
    if (rc) {
        ow_model_free(m);
        return rc;
    }
    *out = m;
    return OW_OK;
}

int ow__wrapper_dict_build(ow_optim_wrapper *w, const ow_model *model,
                           const ow_sched_loop *loop, ow_error *err)
{
    int rc = ow__wrapper_dict_check(w->config, err);
    const ow_cfg *node = ow_cfg_find(w->config, "optim_wrapper");
    size_t n = 0;
    if (rc == OW_OK) {
        w->names = ow__calloc(node->v.c.n, sizeof *w->names);
        w->children = ow__calloc(node->v.c.n, sizeof *w->children);
        if (!w->names || !w->children)
            rc = ow__nomem(err);
    }
    for (size_t i = 0; rc == OW_OK && i < node->v.c.n; i++) {
        const char *name = node->v.c.keys[i];
        if (!strcmp(name, "constructor"))
            continue;
        ow_optim_wrapper *c = ow__calloc(1, sizeof *c);
        if (!c || !(w->names[n] = ow__strdup(name))) {
            ow_free(c);
            rc = ow__nomem(err);
            break;
        }
        w->children[n++] = c;
        w->nchildren = n;
        if ((rc = member_config(w->config, name, node->v.c.items[i], &c->config, err)) ||
            (rc = submodel(model, name, &c->submodel, err)))
            break;
        c->host_model = c->submodel;
        rc = ow__wrapper_build_one(c, c->config, c->submodel, loop, err);
    }
    return rc;
}
