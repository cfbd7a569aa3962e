/* depth_vit.c -- get_layer_depth of mmpretrain's plain transformers: VisionTransformer
 * (and DeiT, DeiT3, EVA-02, MAE, ... which inherit it), BEiTViT, ViTSAM, and HiViT,
 * whose copy of the rule looks for `layers` where its blocks are named `blocks`.
 * https://github.com/open-mmlab/mmpretrain/blob/main/mmpretrain/models/backbones/vision_transformer.py
 */
#include "ctor_internal.h"

#include <string.h>

typedef struct vit_state {
    const char *name;   /* the provider, for messages */
    const char *prefix; /* "backbone." or "" (a static string) */
    const ow_cfg *where;
    int64_t num_layers; /* transformer layers in the tree */
    bool hivit;         /* HiViT's `param_name in 'pos_embed'` */
} vit_state;

static int prepare(const ow_layer_depth_args *a, void **out, const char *name,
                   const char *layers, bool hivit, ow_error *err)
{
    char parent[256];
    snprintf(parent, sizeof parent, "%s%s%s", a->backbone, *a->backbone ? "." : "",
             layers);
    int64_t n = ow__count_children(a->model, parent);
    if (n == 0)
        return ow__error_at(
            err, OW_ERR_UNSUPPORTED, a->where,
            "%s get_layer_depth: the model tree has no '%s.N' modules (the "
            "transformer layers it counts)",
            name, parent);
    vit_state *s = ow__calloc(1, sizeof *s);
    if (!s)
        return ow__nomem(err);
    *s = (vit_state){.name = name,
                     .prefix = a->prefix,
                     .where = a->where,
                     .num_layers = n,
                     .hivit = hivit};
    if (hivit) {
        char msg[OW_ERROR_TEXT_LEN];
        snprintf(
            msg, sizeof msg,
            "HiViT get_layer_depth (reproduced): mmpretrain looks for '%slayers.N' but "
            "HiViT's blocks are '%s.N', so every block parameter gets the top layer "
            "id %lld (lr scale 1: no decay for any block)",
            a->prefix, parent, (long long)(n + 1));
        int rc = ow_groups_add_warning(a->groups, a->where, msg, err);
        if (rc) {
            ow_free(s);
            return rc;
        }
    }
    *out = s;
    return OW_OK;
}

static int vit_prepare(const ow_layer_depth_args *a, void **out, ow_error *err)
{
    return prepare(a, out, "VisionTransformer", "layers", false, err);
}

static int beit_prepare(const ow_layer_depth_args *a, void **out, ow_error *err)
{
    return prepare(a, out, "BEiTViT", "layers", false, err);
}

static int sam_prepare(const ow_layer_depth_args *a, void **out, ow_error *err)
{
    return prepare(a, out, "ViTSAM", "layers", false, err);
}

static int hivit_prepare(const ow_layer_depth_args *a, void **out, ow_error *err)
{
    return prepare(a, out, "HiViT", "blocks", true, err);
}

/* num_layers = layers + 2: 0 for the embeddings, i + 1 for layer i, the last id for
 * everything else (final norms) and everything outside the backbone (head). */
static int vit_get(const void *state, const char *name, int64_t *id, int64_t *n,
                   ow_error *err)
{
    const vit_state *s = state;
    *n = s->num_layers + 2;
    size_t plen = strlen(s->prefix);
    if (strncmp(name, s->prefix, plen)) {
        *id = *n - 1;
        return OW_OK;
    }
    const char *rest = name + plen;
    bool stem = s->hivit ? strstr("pos_embed", rest) != NULL
                         : !strcmp(rest, "cls_token") || !strcmp(rest, "pos_embed");
    if (stem || !strncmp(rest, "patch_embed", 11)) {
        *id = 0;
    } else if (!strncmp(rest, "layers", 6)) {
        const char *p;
        size_t len;
        int64_t layer;
        if (!ow__name_part(rest, 1, &p, &len) || !ow__parse_int(p, len, &layer))
            return ow__error_at(err, OW_ERR_MODEL, s->where,
                                "%s get_layer_depth: cannot read a layer index from '%s' "
                                "(mmpretrain: int(name.split('.')[1]))",
                                s->name, name);
        *id = layer + 1;
    } else {
        *id = *n - 1;
    }
    return OW_OK;
}

static const ow_key no_keys[] = {{0}};

static const ow_layer_depth_ops vit_ops = {.abi_version = OW_ABI_VERSION,
                                           .prepare = vit_prepare,
                                           .get = vit_get,
                                           .free = ow_free};
static const ow_layer_depth_ops beit_ops = {.abi_version = OW_ABI_VERSION,
                                            .prepare = beit_prepare,
                                            .get = vit_get,
                                            .free = ow_free};
static const ow_layer_depth_ops sam_ops = {.abi_version = OW_ABI_VERSION,
                                           .prepare = sam_prepare,
                                           .get = vit_get,
                                           .free = ow_free};
static const ow_layer_depth_ops hivit_ops = {.abi_version = OW_ABI_VERSION,
                                             .prepare = hivit_prepare,
                                             .get = vit_get,
                                             .free = ow_free};

static const char *const vit_aliases[] = {"DistilledVisionTransformer",
                                          "DeiT3",
                                          "ViTEVA02",
                                          "MAEViT",
                                          "MFFViT",
                                          "MILANViT",
                                          "MoCoV3ViT",
                                          "MaskFeatViT",
                                          NULL};
static const char *const beit_aliases[] = {"BEiTPretrainViT", "CAEPretrainViT", NULL};
static const char *const hivit_aliases[] = {"iTPNHiViT", "MAEHiViT", NULL};

const ow_entry ow__layer_depth_vit = {
    .abi_version = OW_ABI_VERSION,
    .name = "VisionTransformer",
    .kind = OW_KIND_LAYER_DEPTH,
    .scope = "mmpretrain",
    .summary =
        "ViT and subclasses (DeiT, MAE, EVA-02...): cls_token/pos_embed/patch_embed "
        "0, layers.i -> i+1, the rest num_layers+1",
    .keys = no_keys,
    .aliases = vit_aliases,
    .ops = &vit_ops,
};

const ow_entry ow__layer_depth_beit = {
    .abi_version = OW_ABI_VERSION,
    .name = "BEiTViT",
    .kind = OW_KIND_LAYER_DEPTH,
    .scope = "mmpretrain",
    .summary = "BEiT (and BEiT/CAE pretraining ViTs): the ViT rule",
    .keys = no_keys,
    .aliases = beit_aliases,
    .ops = &beit_ops,
};

const ow_entry ow__layer_depth_sam = {
    .abi_version = OW_ABI_VERSION,
    .name = "ViTSAM",
    .kind = OW_KIND_LAYER_DEPTH,
    .scope = "mmpretrain",
    .summary = "SAM's ViT encoder: the ViT rule",
    .keys = no_keys,
    .ops = &sam_ops,
};

const ow_entry ow__layer_depth_hivit = {
    .abi_version = OW_ABI_VERSION,
    .name = "HiViT",
    .kind = OW_KIND_LAYER_DEPTH,
    .scope = "mmpretrain",
    .summary =
        "HiViT: the ViT rule on 'layers', which HiViT lacks (its blocks all get the "
        "top id, as in mmpretrain; a warning says so)",
    .keys = no_keys,
    .aliases = hivit_aliases,
    .ops = &hivit_ops,
};
