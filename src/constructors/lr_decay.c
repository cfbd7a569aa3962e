/* lr_decay.c -- mmpretrain's LearningRateDecayOptimWrapperConstructor: one group per
 * parameter with lr = base_lr * rate ** (num_layers - layer_id - 1) from the backbone's
 * get_layer_depth (a layer-depth provider), and weight decay from custom_keys (decay_mult
 * only) or the norm / bias / flat multipliers; groups carry lr_scale, layer_id and
 * param_name.
 * https://github.com/open-mmlab/mmpretrain/blob/main/mmpretrain/engine/optimizers/layer_decay_optim_wrapper_constructor.py
 */
#include "ctor_internal.h"

#include <string.h>

#define NAME "LearningRateDecayOptimWrapperConstructor"

static const ow_key lrd_keys[] = {
    {.name = "layer_decay_rate",
     .type = OW_T_NUMBER,
     .def = "1.0",
     .doc = "lr of layer id k is base lr * rate ** (num_layers - k - 1)"},
    {.name = "custom_keys",
     .type = OW_T_MAP,
     .flags = OW_KEY_NULLABLE,
     .doc =
         "substring (or 're:REGEX', 'glob:PATTERN') -> {decay_mult, other group keys}; "
         "lr_mult has no effect here"},
    {.name = "norm_decay_mult",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "weight-decay multiplier of norm layers' parameters"},
    {.name = "bias_decay_mult",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "weight-decay multiplier of parameters named bias"},
    {.name = "flat_decay_mult",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "weight-decay multiplier of 1-D parameters"},
    {.name = "layer_depth",
     .type = OW_T_MAP,
     .flags = OW_KEY_NULLABLE,
     .doc = "{type: a layer_depth entry, ...}: instead of the provider found by the "
            "model's backbone class (RegexLayerDepth for any model)"},
    {.name = "bias_lr_mult",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "ignored, as mmpretrain ignores it (a warning says so)"},
    {.name = "dwconv_decay_mult",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "ignored, as mmpretrain ignores it (a warning says so)"},
    {.name = "dcn_offset_lr_mult",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "ignored, as mmpretrain ignores it (a warning says so)"},
    {.name = "bypass_duplicate",
     .type = OW_T_BOOL,
     .flags = OW_KEY_NULLABLE,
     .doc = "ignored, as mmpretrain ignores it (a warning says so)"},
    {0},
};

/* Keys the reference accepts (its parent validates them) and then never reads. */
static int warn_ignored(const ow_cfg *pw, ow_groups *g, ow_error *err)
{
    static const char *const ignored[] = {"bias_lr_mult", "dwconv_decay_mult",
                                          "dcn_offset_lr_mult", "bypass_duplicate"};
    for (size_t i = 0; i < OW__ARRAY_LEN(ignored); i++) {
        const ow_cfg *v = ow__cfg_map_get(pw, ignored[i]);
        if (!v || v->type == OW_CFG_NULL)
            continue;
        char msg[256];
        snprintf(msg, sizeof msg,
                 "optim_wrapper.paramwise_cfg.%s: ignored by " NAME " (as in mmpretrain)",
                 ignored[i]);
        int rc = ow_groups_add_warning(g, v, msg, err);
        if (rc)
            return rc;
    }
    return OW_OK;
}

/* lr_mult (or lr) in a custom key is copied into the group, then lr is overwritten. */
static int warn_inert_lr(const ow__custom_keys *ck, ow_groups *g, ow_error *err)
{
    for (size_t i = 0; i < ck->n; i++) {
        const char *which = ow__cfg_map_get(ck->k[i].cfg, "lr_mult") ? "lr_mult"
                            : ow__cfg_map_get(ck->k[i].cfg, "lr")    ? "lr"
                                                                     : NULL;
        if (!which || !ck->k[i].wins)
            continue;
        char msg[OW_ERROR_TEXT_LEN];
        snprintf(
            msg, sizeof msg,
            "optim_wrapper.paramwise_cfg.custom_keys.%s.%s: has no effect under " NAME
            " (lr = base lr * layer scale); it is copied into the groups as mmpretrain "
            "does",
            ck->k[i].key, which);
        int rc = ow_groups_add_warning(g, ck->k[i].cfg, msg, err);
        if (rc)
            return rc;
    }
    return OW_OK;
}

typedef struct lrd {
    const ow_cfg *base_lr, *base_wd, *rate;
    const ow_cfg *norm, *bias, *flat;
    ow__custom_keys keys;
    ow__depth depth;
} lrd;

static int set_taken(ow_groups *g, size_t gi, const char *key, ow_cfg *v, ow_error *err)
{
    return ow__groups_put(g, gi, key, v, err); /* NULL v: out of memory */
}

static const ow_cfg one = {.type = OW_CFG_FLOAT, .v.d = 1.0};

/* Weight decay, first of: custom key (decay_mult, then its other keys copied), norm,
 * bias, flat, else base_wd. Writes the rule into why. */
static int weight_decay(lrd *l, const ow_param_view *pv, size_t i, ow_groups *g,
                        size_t gi, char *why, size_t n, ow_error *err)
{
    ow__custom_key *hit;
    int rc = ow__custom_keys_find(&l->keys, pv->full_name, pv->full_name, i, &hit, err);
    if (rc)
        return rc;
    if (hit) {
        const ow_cfg *m = ow__cfg_map_get(hit->cfg, "decay_mult");
        rc = set_taken(g, gi, "weight_decay", ow__num_mul(l->base_wd, m ? m : &one), err);
        for (size_t k = 0; !rc && k < hit->cfg->v.c.n; k++)
            if (strcmp(hit->cfg->v.c.keys[k], "decay_mult"))
                rc = ow_groups_set_value(g, gi, hit->cfg->v.c.keys[k],
                                         hit->cfg->v.c.items[k], err);
        ow__custom_key_describe(hit, why, n);
        return rc;
    }
    const char *rule = NULL;
    const ow_cfg *mult = NULL;
    if (pv->module_info->kind == OW_MODULE_NORM && l->norm)
        rule = "norm_decay_mult", mult = l->norm;
    else if (!strcmp(pv->name, "bias") && l->bias)
        rule = "bias_decay_mult", mult = l->bias;
    else if (pv->ndim == 1 && l->flat)
        rule = "flat_decay_mult", mult = l->flat;
    if (rule) {
        snprintf(why, n, "%s", rule);
        return set_taken(g, gi, "weight_decay", ow__num_mul(l->base_wd, mult), err);
    }
    snprintf(why, n, "optimizer weight_decay");
    return set_taken(g, gi, "weight_decay", ow__cfg_dup(l->base_wd), err);
}

static int add_param(lrd *l, const ow_param_view *pv, size_t i, ow_groups *g,
                     ow_error *err)
{
    size_t gi;
    char wd_why[300];
    int64_t id, n;
    int rc;
    if ((rc = ow_groups_add(g, &gi, err)) || (rc = ow_groups_add_param(g, gi, i, err)) ||
        (rc = weight_decay(l, pv, i, g, gi, wd_why, sizeof wd_why, err)) ||
        (rc = l->depth.ops->get(l->depth.state, pv->full_name, &id, &n, err)))
        return rc;
    ow_cfg *scale = ow__num_pow(l->rate, n - id - 1);
    if (!scale)
        return ow__nomem(err);
    rc = set_taken(g, gi, "lr", ow__num_mul(l->base_lr, scale), err);
    if (rc) {
        ow_cfg_free(scale);
        return rc;
    }
    if ((rc = set_taken(g, gi, "lr_scale", scale, err)) ||
        (rc = ow_groups_set_int(g, gi, "layer_id", id, err)) ||
        (rc = ow_groups_set_string(g, gi, "param_name", pv->full_name, err)))
        return rc;
    char rate[32], why[512];
    ow__format_double(ow__num_value(l->rate), rate, sizeof rate);
    snprintf(why, sizeof why,
             "layer %lld of %lld (%s get_layer_depth), lr_scale %s**%lld; "
             "weight decay: %s",
             (long long)id, (long long)n, l->depth.entry->name, rate,
             (long long)(n - id - 1), wd_why);
    return ow_groups_set_reason(g, gi, why, err);
}

static int lrd_build(const ow_constructor_ctx *ctx, ow_groups *g, ow_error *err)
{
    const ow_cfg *pw = ctx->paramwise_cfg;
    if (!pw || pw->v.c.n == 0) /* mmengine's __call__: no paramwise_cfg, no decay */
        return ow__groups_add_flat(ctx->model, g, err);
    lrd l = {.base_lr = ow__num_or_null(ctx->optimizer, "lr"),
             .base_wd = ow__num_or_null(ctx->optimizer, "weight_decay"),
             .rate = ow__num_or_null(pw, "layer_decay_rate"),
             .norm = ow__num_or_null(pw, "norm_decay_mult"),
             .bias = ow__num_or_null(pw, "bias_decay_mult"),
             .flat = ow__num_or_null(pw, "flat_decay_mult")};
    if (!l.rate)
        l.rate = &one;
    const ow_cfg *ld = ow__cfg_map_get(pw, "layer_depth");
    const ow_cfg *where = ow__cfg_map_get(ctx->optim_wrapper, "constructor");
    int rc = ow__custom_keys_read(pw, ctx->model, &l.keys, err);
    if (!rc)
        rc = ow__check_base_wd(pw, &l.keys, l.base_wd, err);
    if (!rc)
        rc = ow__depth_open(ctx->model, ld && ld->type == OW_CFG_MAP ? ld : NULL,
                            where ? where : ctx->optim_wrapper, NULL, g, &l.depth, err);
    if (!rc && !l.base_lr)
        rc = ow__error_at(err, OW_ERR_MISSING_KEY, ctx->optimizer,
                          "optim_wrapper.optimizer: " NAME
                          " sets lr = optimizer.lr * layer "
                          "scale, but optim_wrapper.optimizer has no lr");
    if (!rc && !l.base_wd)
        rc = ow__error_at(
            err, OW_ERR_MISSING_KEY, ctx->optimizer,
            "optim_wrapper.optimizer: " NAME " needs weight_decay (without it "
            "mmpretrain skips every weight-decay rule, custom keys included, "
            "and then fails with KeyError: 'weight_decay')");
    for (size_t i = 0; !rc && i < ow_model_get_num_params(ctx->model); i++) {
        ow_param_view pv;
        ow_model_get_param(ctx->model, i, &pv);
        if (pv.requires_grad) /* frozen parameters are skipped silently */
            rc = add_param(&l, &pv, i, g, err);
    }
    if (!rc)
        rc = ow__custom_keys_warn(&l.keys, ctx->model, g, err);
    if (!rc)
        rc = warn_inert_lr(&l.keys, g, err);
    if (!rc)
        rc = warn_ignored(pw, g, err);
    ow__depth_close(&l.depth);
    ow__custom_keys_free(&l.keys);
    return rc;
}

static const ow_constructor_ops lrd_ops = {.build = lrd_build};

const ow_entry ow__constructor_lr_decay = {
    .abi_version = OW_ABI_VERSION,
    .name = NAME,
    .kind = OW_KIND_CONSTRUCTOR,
    .scope = "mmpretrain",
    .summary = "mmpretrain: layer-wise lr decay from the backbone's get_layer_depth; "
               "weight decay from custom_keys / norm / bias / flat multipliers",
    .keys = lrd_keys,
    .ops = &lrd_ops,
};
