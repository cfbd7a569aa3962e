/* zero.c -- the optimizer a config names, looked up the way every reader of
 * optim_wrapper.optimizer does it: `type`, or mmengine's ZeroRedundancyOptimizer form
 * {type: ZeroRedundancyOptimizer, optimizer_type: AdamW, ...} (torch's
 * ZeroRedundancyOptimizer around the optimizer of optimizer_type: the wrapper runs it
 * as zero_stage 1 over its ranks, as the plain optimizer on one). */
#include "wrapper_internal.h"

#include <string.h>

bool ow__optimizer_is_zero(const ow_cfg *opt_cfg)
{
    const ow_cfg *t = ow__cfg_map_get(opt_cfg, "type");
    return t && t->type == OW_CFG_STRING &&
           (!strcmp(t->v.s, "ZeroRedundancyOptimizer") ||
            !strcmp(t->v.s, "mmengine.ZeroRedundancyOptimizer"));
}

static int zero_keys(const ow_cfg *opt_cfg, const ow_cfg **inner, ow_error *err)
{
    static const char *const flags[] = {"parameters_as_bucket_view", "overlap_with_ddp",
                                        NULL};
    for (const char *const *k = flags; *k; k++) {
        const ow_cfg *v = ow__cfg_map_get(opt_cfg, *k);
        if (v && v->type != OW_CFG_BOOL)
            return ow__error_at(err, OW_ERR_TYPE, v,
                                "optim_wrapper.optimizer.%s: expected a bool, got %s", *k,
                                ow_cfg_type_name(v->type));
        if (v && v->v.b && !strcmp(*k, "overlap_with_ddp"))
            return ow__error_at(err, OW_ERR_UNSUPPORTED, v,
                                "optim_wrapper.optimizer.overlap_with_ddp: true steps "
                                "inside DDP's gradient hook, bucket by bucket (its first "
                                "iterations only warm up); optwrap steps at a window's "
                                "end: remove the key");
    }
    /* parameters_as_bucket_view only lays the parameters out in memory: no result
     * changes, so it is accepted either way */
    *inner = ow__cfg_map_get(opt_cfg, "optimizer_type");
    if (!*inner)
        return ow__error_at(err, OW_ERR_MISSING_KEY, opt_cfg,
                            "optim_wrapper.optimizer: ZeroRedundancyOptimizer needs "
                            "optimizer_type, the optimizer it shards (AdamW, SGD, ...)");
    return OW_OK;
}

int ow__optimizer_lookup(const ow_cfg *opt_cfg, const char *scope, const ow_entry **out,
                         ow_cfg **flat, ow_error *err)
{
    *flat = NULL;
    if (ow__lookahead_is_config_form(opt_cfg)) {
        int rc = ow__lookahead_flatten(opt_cfg, scope, flat, err);
        if (rc)
            return rc;
        opt_cfg = *flat;
    }
    static const char *const plain[] = {"type", NULL};
    static const char *const zero[] = {
        "type", "optimizer_type", "parameters_as_bucket_view", "overlap_with_ddp", NULL};
    const ow_cfg *type = ow__cfg_map_get(opt_cfg, "type");
    bool is_zero = ow__optimizer_is_zero(opt_cfg);
    int rc = is_zero ? zero_keys(opt_cfg, &type, err) : OW_OK;
    if (rc == OW_OK)
        rc = ow__registry_lookup(OW_KIND_OPTIMIZER, type, scope, out, err);
    if (rc == OW_OK)
        rc = ow__schema_check(opt_cfg, (*out)->keys, "optim_wrapper.optimizer",
                              is_zero ? zero : plain, err);
    if (rc) {
        ow_cfg_free(*flat);
        *flat = NULL;
    }
    return rc;
}
