/* sched_target.c -- an optimizer as the target of a schedule: schedulers read and write
 * each group's hyperparameters in the optimizer itself (its options and the resolved
 * values the kernels read), so there is one home for a group's current lr. With more
 * than one group, mmengine's base_param_settings group (the optimizer's defaults)
 * follows the real ones. */
#include "optim_internal.h"

#include <string.h>

typedef struct opt_target {
    ow__target_impl impl; /* first: the pointer handed out */
    ow_optimizer *opt;    /* borrowed */
    ow_cfg *base;         /* owned: base_param_settings, or NULL with one group */
} opt_target;

static const ow_cfg *group_map(const opt_target *t, size_t g)
{
    return g < t->opt->ng ? t->opt->g[g].opts : t->base;
}

static bool target_get(void *ctx, size_t g, const char *key, double *value)
{
    return ow__sched_value_get(group_map(ctx, g), key, value);
}

/* Writes the options node in place and the resolved value the kernels read: nothing
 * to allocate, so it cannot fail. */
static void target_set(void *ctx, size_t g, const char *key, double value)
{
    opt_target *t = ctx;
    ow_cfg *v = ow__sched_value_node(group_map(t, g), key);
    if (!v)
        return;
    v->type = OW_CFG_FLOAT; /* a scheduled int (`momentum: 0`) becomes a float */
    v->v.d = value;
    if (g >= t->opt->ng)
        return;
    ow__group *grp = &t->opt->g[g];
    long k = ow__optimizer_key(t->opt, key);
    if (k < 0 && !strcmp(key, "momentum"))
        k = ow__optimizer_key(t->opt, "betas");
    if (k >= 0) {
        grp->hp[k].v[0] = value;
        ow__group_sync(t->opt, g);
    }
    /* a scheduled lr_scale needs nothing more: the step reads it from the options */
}

static void destroy(ow__target_impl *impl)
{
    opt_target *t = (opt_target *)impl;
    ow_cfg_free(t->base);
    ow_free(t);
}

int ow_optimizer_sched_target_new(ow_optimizer *opt, ow_sched_target **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out || !opt)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optimizer_sched_target_new: NULL argument");
    *out = NULL;
    opt_target *t = ow__calloc(1, sizeof *t);
    if (!t)
        return ow__nomem(err);
    bool has_base = opt->ng > 1;
    if (has_base && !(t->base = ow__cfg_dup(opt->defaults_cfg))) {
        ow_free(t);
        return ow__nomem(err);
    }
    t->opt = opt;
    t->impl.destroy = destroy;
    t->impl.pub = (ow_sched_target){.num_groups = opt->ng + has_base,
                                    .has_base_group = has_base,
                                    .lr_scale_at_step = opt->apply_lr_scale,
                                    .ctx = t,
                                    .get = target_get,
                                    .set = target_set};
    *out = &t->impl.pub;
    return OW_OK;
}

const ow_cfg *ow__sched_target_base(const ow_sched_target *target)
{
    return target && target->get == target_get ? ((const opt_target *)target->ctx)->base
                                               : NULL;
}
