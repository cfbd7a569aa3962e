/* vit_layer_decay.c -- mmdet's ViTDet layer decay (projects/ViTDet, registered there as
 * LayerDecayOptimizerConstructor): ids from `backbone.blocks.<i>` substrings, no weight
 * decay for norms inside blocks and for pos_embed (Linear biases are decayed), groups
 * merged as layer_<id>_<decay|no_decay|no_decay_pos_embed>.
 * https://github.com/open-mmlab/mmdetection/blob/main/projects/ViTDet/vitdet/layer_decay_optimizer_constructor.py
 */
#include "ctor_internal.h"

#include <string.h>

#define NAME "ViTLayerDecayOptimizerConstructor"

static const ow_key vitdet_keys[] = {
    {.name = "num_layers",
     .type = OW_T_INT,
     .min = 0,
     .max = 1e9,
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE,
     .doc = "ViT blocks; ids run 0..num_layers+1, scale = rate ** (num_layers+1 - id)"},
    {.name = "decay_rate",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_REQUIRED,
     .doc = "lr multiplier per layer id below the top"},
    {.name = "decay_type",
     .type = OW_T_STRING,
     .def = "layer_wise",
     .doc = "read and logged by the reference, otherwise unused"},
    {0},
};

typedef struct vd {
    const ow_cfg *base_lr, *base_wd, *rate, *where;
    int64_t num_layers;
    ow__named_groups names;
} vd;

/* get_layer_id_for_vit(name, num_layers) of ViTDet. */
static int layer_id(const vd *d, const char *name, int64_t *id, ow_error *err)
{
    *id = d->num_layers + 1;
    if (strncmp(name, "backbone", 8))
        return OW_OK;
    if (strstr(name, "patch_embed") || strstr(name, "pos_embed")) {
        *id = 0;
    } else if (strstr(name, ".blocks.")) {
        const char *p;
        size_t len;
        int64_t block;
        if (!ow__name_part(name, 2, &p, &len) || !ow__parse_int(p, len, &block))
            return ow__error_at(err, OW_ERR_MODEL, d->where,
                                NAME ": cannot read a block index from '%s' "
                                     "(int(name.split('.')[2]))",
                                name);
        *id = block + 1;
    }
    return OW_OK;
}

static int new_group(vd *d, ow_groups *g, size_t gi, int64_t id, const char *kind,
                     const char *gname, ow_error *err)
{
    int64_t n = d->num_layers + 2;
    static const ow_cfg one = {.type = OW_CFG_FLOAT, .v.d = 1.0};
    ow_cfg *scale = ow__num_pow(d->rate, n - 1 - id);
    ow_cfg *lr0 = scale ? ow__num_mul(scale, d->base_lr) : NULL;
    ow_cfg *lr = lr0 ? ow__num_mul(lr0, &one) : NULL; /* scale * base_lr * lr_multi */
    ow_cfg_free(lr0);
    if (!scale || !lr) {
        ow_cfg_free(scale);
        return ow__nomem(err);
    }
    /* 0. for the block norms, the int 0 for pos_embed, as the reference writes them */
    ow_cfg *wd = !strcmp(kind, "decay")      ? ow__cfg_dup(d->base_wd)
                 : !strcmp(kind, "no_decay") ? ow__cfg_new_double(0.0)
                                             : ow__cfg_new_int(0);
    int rc = ow__layer_group_keys(g, gi, wd, scale, gname, lr, err);
    if (rc)
        return rc;
    char rate[32], why[300];
    ow__format_double(ow__num_value(d->rate), rate, sizeof rate);
    snprintf(why, sizeof why, "%s: layer %lld of %lld (ViTDet), lr_scale %s**%lld; %s",
             gname, (long long)id, (long long)n, rate, (long long)(n - 1 - id),
             !strcmp(kind, "decay")      ? "weight decay"
             : !strcmp(kind, "no_decay") ? "no weight decay (norm inside backbone.blocks)"
                                         : "no weight decay (pos_embed)");
    return ow_groups_set_reason(g, gi, why, err);
}

static int add_param(vd *d, const char *name, size_t i, ow_groups *g, ow_error *err)
{
    const char *kind = !strncmp(name, "backbone.blocks", 15) && strstr(name, "norm")
                           ? "no_decay"
                       : strstr(name, "pos_embed") ? "no_decay_pos_embed"
                                                   : "decay";
    int64_t id;
    int rc = layer_id(d, name, &id, err);
    if (rc)
        return rc;
    char gname[64];
    snprintf(gname, sizeof gname, "layer_%lld_%s", (long long)id, kind);
    size_t gi;
    bool created;
    if ((rc = ow__named_group(&d->names, g, gname, &gi, &created, err)) ||
        (created && (rc = new_group(d, g, gi, id, kind, gname, err))) ||
        (rc = ow_groups_add_param(g, gi, i, err)))
        return rc;
    return ow__group_append_name(g, gi, "param_names", name, err);
}

static int vitdet_build(const ow_constructor_ctx *ctx, ow_groups *g, ow_error *err)
{
    const ow_cfg *pw = ctx->paramwise_cfg;
    if (!pw || pw->v.c.n == 0) /* mmengine's __call__: plain parameters */
        return ow__groups_add_flat(ctx->model, g, err);
    const ow_cfg *where = ow__cfg_map_get(ctx->optim_wrapper, "constructor");
    vd d = {.base_lr = ow__num_or_null(ctx->optimizer, "lr"),
            .base_wd = ow__num_or_null(ctx->optimizer, "weight_decay"),
            .rate = ow__num_or_null(pw, "decay_rate"),
            .where = where ? where : ctx->optim_wrapper,
            .num_layers = ow__cfg_map_get(pw, "num_layers")->v.i};
    int rc = OW_OK;
    if (!d.base_lr)
        rc = ow__error_at(err, OW_ERR_MISSING_KEY, ctx->optimizer,
                          "optim_wrapper.optimizer: " NAME " sets lr = lr_scale * "
                          "optimizer.lr, but optim_wrapper.optimizer has no lr");
    if (!rc && !d.base_wd)
        rc = ow__error_at(
            err, OW_ERR_MISSING_KEY, ctx->optimizer,
            "optim_wrapper.optimizer: " NAME " needs weight_decay (the "
            "reference would write weight_decay None into its decay groups)");
    for (size_t i = 0; !rc && i < ow_model_get_num_params(ctx->model); i++) {
        ow_param_view pv;
        ow_model_get_param(ctx->model, i, &pv);
        if (pv.requires_grad && !pv.is_shared) /* torch's named_parameters() */
            rc = add_param(&d, pv.full_name, i, g, err);
    }
    ow__named_groups_free(&d.names);
    return rc;
}

static const ow_constructor_ops vitdet_ops = {.build = vitdet_build};
static const char *const vitdet_aliases[] = {"LayerDecayOptimizerConstructor", NULL};

const ow_entry ow__constructor_vitdet_layer_decay = {
    .abi_version = OW_ABI_VERSION,
    .name = NAME,
    .kind = OW_KIND_CONSTRUCTOR,
    .scope = "mmdet",
    .summary =
        "mmdet ViTDet: layer decay over backbone.blocks.<i>, no decay for block norms "
        "and pos_embed",
    .keys = vitdet_keys,
    .aliases = vitdet_aliases,
    .ops = &vitdet_ops,
};
