/* layer_decay.c -- mmseg's and mmdet's LearningRateDecayOptimizerConstructor and mmseg's
 * deprecated LayerDecayOptimizerConstructor: layer ids from hard-coded name rules picked
 * by the backbone's class name (ConvNeXt; BEiT/MAE in mmseg), decay_type layer_wise or
 * stage_wise, groups merged as layer_<id>_<decay|no_decay> in order of first appearance.
 * custom_keys and the decay multipliers are ignored, as in the references (mmseg#1623).
 * https://github.com/open-mmlab/mmsegmentation/blob/main/mmseg/engine/optimizers/layer_decay_optimizer_constructor.py
 */
#include "ctor_internal.h"

#include <string.h>

typedef enum variant { MMSEG, MMSEG_LEGACY, MMDET } variant;

#define IGNORED_KEYS(doc_)                                                               \
    {.name = "custom_keys", .type = OW_T_ANY, .doc = doc_},                              \
        {.name = "bias_decay_mult", .type = OW_T_ANY, .doc = doc_},                      \
        {.name = "norm_decay_mult", .type = OW_T_ANY, .doc = doc_},                      \
        {.name = "flat_decay_mult", .type = OW_T_ANY, .doc = doc_},                      \
        {.name = "dwconv_decay_mult", .type = OW_T_ANY, .doc = doc_},                    \
        {.name = "bias_lr_mult", .type = OW_T_ANY, .doc = doc_},                         \
        {.name = "dcn_offset_lr_mult", .type = OW_T_ANY, .doc = doc_},                   \
    {                                                                                    \
        .name = "bypass_duplicate", .type = OW_T_ANY, .doc = doc_                        \
    }
#define IGNORED_DOC "ignored by this constructor, as in the reference (a warning says so)"

static const ow_key lrd_keys[] = {
    {.name = "num_layers",
     .type = OW_T_INT,
     .min = 0,
     .max = 1e9,
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE,
     .doc =
         "backbone layers; ids run 0..num_layers+1, scale = rate ** (num_layers+1 - id)"},
    {.name = "decay_rate",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_REQUIRED,
     .doc = "lr multiplier per layer id below the top"},
    {.name = "decay_type",
     .type = OW_T_STRING,
     .def = "layer_wise",
     .doc = "layer_wise (also layer_wise_vit) or stage_wise (ConvNeXt)"},
    IGNORED_KEYS(IGNORED_DOC),
    {0},
};

static const ow_key legacy_keys[] = {
    {.name = "num_layers",
     .type = OW_T_INT,
     .min = 0,
     .max = 1e9,
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE,
     .doc = "backbone layers; ids run 0..num_layers+1"},
    {.name = "layer_decay_rate",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_REQUIRED,
     .doc = "lr multiplier per layer id below the top (becomes decay_rate)"},
    {.name = "decay_rate", .type = OW_T_ANY, .doc = "overwritten by layer_decay_rate"},
    {.name = "decay_type", .type = OW_T_ANY, .doc = "overwritten by layer_wise_vit"},
    IGNORED_KEYS(IGNORED_DOC),
    {0},
};

typedef struct ld {
    variant v;
    const char *ctor; /* the entry name, for messages */
    const ow_cfg *base_lr, *base_wd, *rate, *pw, *where;
    int64_t num_layers, n; /* n = num_layers + 2 */
    bool layer_wise;       /* else stage_wise */
    bool convnext;         /* else a BEiT/MAE ViT */
    ow__named_groups names;
} ld;

static int bad_name(const ld *l, const char *name, ow_error *err)
{
    return ow__error_at(err, OW_ERR_MODEL, l->where,
                        "%s: cannot read a stage, block or layer index from '%s'",
                        l->ctor, name);
}

static bool int_part(const char *name, size_t k, int64_t *out)
{
    const char *p;
    size_t len;
    return ow__name_part(name, k, &p, &len) && ow__parse_int(p, len, out);
}

/* get_layer_id_for_convnext / get_stage_id_for_convnext / get_layer_id_for_vit. */
static int layer_id(const ld *l, const char *name, int64_t *id, ow_error *err)
{
    int64_t stage, block;
    if (!strcmp(name, "backbone.cls_token") || !strcmp(name, "backbone.mask_token") ||
        !strcmp(name, "backbone.pos_embed")) {
        *id = 0;
        return OW_OK;
    }
    if (!l->convnext) { /* ViT, max id N */
        if (!strncmp(name, "backbone.patch_embed", 20))
            *id = 0;
        else if (!strncmp(name, "backbone.layers", 15))
            return int_part(name, 2, &stage) ? (*id = stage + 1, OW_OK)
                                             : bad_name(l, name, err);
        else
            *id = l->n - 1;
        return OW_OK;
    }
    if (!strncmp(name, "backbone.downsample_layers", 26)) {
        if (!l->layer_wise) {
            *id = 0;
            return OW_OK;
        }
        if (!int_part(name, 2, &stage) || stage < 0 || stage > 3)
            return bad_name(l, name, err);
        *id = stage == 0 ? 0 : stage == 3 ? l->num_layers : stage + 1;
        return OW_OK;
    }
    if (!strncmp(name, "backbone.stages", 15)) {
        if (!int_part(name, 2, &stage))
            return bad_name(l, name, err);
        if (!l->layer_wise) {
            *id = stage + 1;
            return OW_OK;
        }
        if (!int_part(name, 3, &block) || stage < 0 || stage > 3)
            return bad_name(l, name, err);
        *id = stage <= 1 ? stage + 1 : stage == 2 ? 3 + block / 3 : l->num_layers;
        return OW_OK;
    }
    *id = l->layer_wise ? l->num_layers + 1 : l->n - 1;
    return OW_OK;
}

static int new_group(ld *l, ow_groups *g, size_t gi, int64_t id, bool decay,
                     const char *gname, ow_error *err)
{
    ow_cfg *scale = ow__num_pow(l->rate, l->n - id - 1);
    ow_cfg *lr = scale ? ow__num_mul(scale, l->base_lr) : NULL;
    if (!scale || !lr) {
        ow_cfg_free(scale);
        return ow__nomem(err);
    }
    int rc = ow__layer_group_keys(
        g, gi, decay ? ow__cfg_dup(l->base_wd) : ow__cfg_new_double(0.0), scale, gname,
        lr, err);
    if (rc)
        return rc;
    char rate[32], why[300];
    ow__format_double(ow__num_value(l->rate), rate, sizeof rate);
    snprintf(why, sizeof why, "%s: layer %lld of %lld (%s %s), lr_scale %s**%lld; %s",
             gname, (long long)id, (long long)l->n, l->convnext ? "ConvNeXt" : "ViT",
             l->layer_wise ? "layer_wise" : "stage_wise", rate,
             (long long)(l->n - id - 1),
             decay ? "weight decay" : "no weight decay (1-D or .bias)");
    return ow_groups_set_reason(g, gi, why, err);
}

static int add_param(ld *l, const ow_param_view *pv, size_t i, ow_groups *g,
                     ow_error *err)
{
    const char *name = pv->full_name;
    size_t len = strlen(name);
    bool no_decay = pv->ndim == 1 || (len >= 5 && !strcmp(name + len - 5, ".bias")) ||
                    !strcmp(name, "pos_embed") || !strcmp(name, "cls_token");
    int64_t id = 0;
    int rc = layer_id(l, name, &id, err);
    if (rc)
        return rc;
    char gname[64];
    snprintf(gname, sizeof gname, "layer_%lld_%s", (long long)id,
             no_decay ? "no_decay" : "decay");
    size_t gi;
    bool created;
    if ((rc = ow__named_group(&l->names, g, gname, &gi, &created, err)) ||
        (created && (rc = new_group(l, g, gi, id, !no_decay, gname, err))) ||
        (rc = ow_groups_add_param(g, gi, i, err)) ||
        (rc = ow__group_append_name(g, gi, "param_names", name, err)))
        return rc;
    /* the exact-name test never sees the 'backbone.' prefix: these stay decayed */
    if (!no_decay &&
        (!strcmp(name, "backbone.pos_embed") || !strcmp(name, "backbone.cls_token"))) {
        char msg[OW_ERROR_TEXT_LEN];
        snprintf(
            msg, sizeof msg,
            "%s (reproduced): '%s' gets weight decay, because the reference's no-decay "
            "test compares the bare name '%s'",
            l->ctor, name, name + 9);
        rc = ow_groups_add_warning(g, l->where, msg, err);
    }
    return rc;
}

/* Which rule set the backbone class selects, as the reference tests its name. */
static int pick_rules(ld *l, const ow_model *model, const char *decay_type, ow_error *err)
{
    const ow_module_info *bb = ow__find_module(model, "backbone");
    if (!bb)
        return ow__error_at(err, OW_ERR_UNSUPPORTED, l->where,
                            "%s: the model has no `backbone` module (the reference reads "
                            "module.backbone's class)",
                            l->ctor);
    l->layer_wise = strstr(decay_type, "layer_wise") != NULL;
    if (!l->layer_wise && strcmp(decay_type, "stage_wise"))
        return ow__error_at(
            err, OW_ERR_VALUE, ow__cfg_map_get(l->pw, "decay_type"),
            "optim_wrapper.paramwise_cfg.decay_type: expected layer_wise, "
            "layer_wise_vit or stage_wise, got '%s'",
            decay_type);
    l->convnext = strstr(bb->type, "ConvNeXt") != NULL;
    bool vit = l->v != MMDET && l->layer_wise &&
               (strstr(bb->type, "BEiT") || strstr(bb->type, "MAE"));
    if (l->convnext || vit)
        return OW_OK;
    return ow__error_at(
        err, OW_ERR_UNSUPPORTED, l->where,
        "%s: %s decay handles backbones whose class name contains %s, not "
        "'%s' (the reference raises NotImplementedError)",
        l->ctor, l->layer_wise ? "layer_wise" : "stage_wise",
        l->layer_wise && l->v != MMDET ? "ConvNeXt, BEiT or MAE" : "ConvNeXt", bb->type);
}

static int warn_ignored(const ld *l, ow_groups *g, ow_error *err)
{
    static const char *const ignored[] = {
        "custom_keys",       "bias_decay_mult", "norm_decay_mult",    "flat_decay_mult",
        "dwconv_decay_mult", "bias_lr_mult",    "dcn_offset_lr_mult", "bypass_duplicate",
        "decay_rate",        "decay_type"};
    for (size_t i = 0; i < OW__ARRAY_LEN(ignored); i++) {
        const ow_cfg *v = ow__cfg_map_get(l->pw, ignored[i]);
        if (!v || (i >= 8 && l->v != MMSEG_LEGACY))
            continue;
        char msg[256];
        snprintf(msg, sizeof msg, "optim_wrapper.paramwise_cfg.%s: %s by %s", ignored[i],
                 i >= 8 ? "overwritten" : "ignored", l->ctor);
        int rc = ow_groups_add_warning(g, v, msg, err);
        if (rc)
            return rc;
    }
    if (l->v != MMSEG_LEGACY)
        return OW_OK;
    return ow_groups_add_warning(
        g, l->where,
        "LayerDecayOptimizerConstructor is deprecated in mmseg: use "
        "LearningRateDecayOptimizerConstructor with decay_type: "
        "layer_wise_vit and decay_rate",
        err);
}

static int build(const ow_constructor_ctx *ctx, ow_groups *g, variant v, const char *ctor,
                 ow_error *err)
{
    const ow_cfg *pw = ctx->paramwise_cfg;
    if (!pw || pw->v.c.n == 0) /* mmengine's __call__: plain parameters */
        return ow__groups_add_flat(ctx->model, g, err);
    const ow_cfg *where = ow__cfg_map_get(ctx->optim_wrapper, "constructor");
    ld l = {.v = v,
            .ctor = ctor,
            .base_lr = ow__num_or_null(ctx->optimizer, "lr"),
            .base_wd = ow__num_or_null(ctx->optimizer, "weight_decay"),
            .rate = ow__num_or_null(pw, v == MMSEG_LEGACY ? "layer_decay_rate"
                                                          : "decay_rate"),
            .pw = pw,
            .where = where ? where : ctx->optim_wrapper,
            .num_layers = ow__cfg_map_get(pw, "num_layers")->v.i};
    l.n = l.num_layers + 2;
    const ow_cfg *dt = ow__cfg_map_get(pw, "decay_type");
    const char *decay_type = v == MMSEG_LEGACY                 ? "layer_wise_vit"
                             : dt && dt->type == OW_CFG_STRING ? dt->v.s
                                                               : "layer_wise";
    ow__custom_keys none = {0};
    int rc = ow__check_base_wd(pw, &none, l.base_wd, err);
    if (!rc)
        rc = pick_rules(&l, ctx->model, decay_type, err);
    if (!rc && !l.base_lr)
        rc = ow__error_at(
            err, OW_ERR_MISSING_KEY, ctx->optimizer,
            "optim_wrapper.optimizer: %s sets lr = lr_scale * optimizer.lr, but "
            "optim_wrapper.optimizer has no lr",
            ctor);
    if (!rc && !l.base_wd)
        rc = ow__error_at(err, OW_ERR_MISSING_KEY, ctx->optimizer,
                          "optim_wrapper.optimizer: %s needs weight_decay (the reference "
                          "would write weight_decay None into its decay groups)",
                          ctor);
    for (size_t i = 0; !rc && i < ow_model_get_num_params(ctx->model); i++) {
        ow_param_view pv;
        ow_model_get_param(ctx->model, i, &pv);
        if (pv.requires_grad && !pv.is_shared) /* torch's named_parameters() */
            rc = add_param(&l, &pv, i, g, err);
    }
    if (!rc)
        rc = warn_ignored(&l, g, err);
    ow__named_groups_free(&l.names);
    return rc;
}

static int mmseg_build(const ow_constructor_ctx *ctx, ow_groups *g, ow_error *err)
{
    return build(ctx, g, MMSEG, "LearningRateDecayOptimizerConstructor", err);
}

static int legacy_build(const ow_constructor_ctx *ctx, ow_groups *g, ow_error *err)
{
    return build(ctx, g, MMSEG_LEGACY, "LayerDecayOptimizerConstructor", err);
}

static int mmdet_build(const ow_constructor_ctx *ctx, ow_groups *g, ow_error *err)
{
    return build(ctx, g, MMDET, "LearningRateDecayOptimizerConstructor", err);
}

static const ow_constructor_ops mmseg_ops = {.build = mmseg_build};
static const ow_constructor_ops legacy_ops = {.build = legacy_build};
static const ow_constructor_ops mmdet_ops = {.build = mmdet_build};

const ow_entry ow__constructor_mmseg_lr_decay = {
    .abi_version = OW_ABI_VERSION,
    .name = "LearningRateDecayOptimizerConstructor",
    .kind = OW_KIND_CONSTRUCTOR,
    .scope = "mmseg",
    .summary =
        "mmseg: layer_wise / stage_wise decay for ConvNeXt, BEiT and MAE backbones, "
        "groups merged as layer_<id>_<decay|no_decay>",
    .keys = lrd_keys,
    .ops = &mmseg_ops,
};

const ow_entry ow__constructor_mmseg_layer_decay = {
    .abi_version = OW_ABI_VERSION,
    .name = "LayerDecayOptimizerConstructor",
    .kind = OW_KIND_CONSTRUCTOR,
    .scope = "mmseg",
    .summary = "mmseg (deprecated, BEiT): the ViT layer_wise decay with layer_decay_rate",
    .keys = legacy_keys,
    .ops = &legacy_ops,
};

const ow_entry ow__constructor_mmdet_lr_decay = {
    .abi_version = OW_ABI_VERSION,
    .name = "LearningRateDecayOptimizerConstructor",
    .kind = OW_KIND_CONSTRUCTOR,
    .scope = "mmdet",
    .summary =
        "mmdet: layer_wise / stage_wise decay for ConvNeXt backbones, groups merged "
        "as layer_<id>_<decay|no_decay>",
    .keys = lrd_keys,
    .ops = &mmdet_ops,
};
