/* depth_conv.c -- get_layer_depth of mmpretrain's convolutional backbones: ConvNeXt
 * (12 or 6 layer ids by the depth of its third stage) and the ResNet family, whose rule
 * tests the full name for 'backbone.layer' and knows only five stage layouts.
 * https://github.com/open-mmlab/mmpretrain/blob/main/mmpretrain/models/backbones/convnext.py
 * https://github.com/open-mmlab/mmpretrain/blob/main/mmpretrain/models/backbones/resnet.py
 */
#include "ctor_internal.h"

#include <math.h>
#include <string.h>

#define MAX_STAGES 16

typedef struct conv_state {
    const char *prefix;
    const ow_cfg *where;
    int64_t depths[MAX_STAGES]; /* blocks per stage, from the tree */
    size_t n_stages;
    int64_t max_layer_id;   /* ConvNeXt: 12 or 6; ResNet: N + 1 */
    int64_t blk2, blk3, n2; /* ResNet's blocks per layer id in stages 2 and 3 */
} conv_state;

static const char *parent_of(const ow_layer_depth_args *a, const char *child, char *buf,
                             size_t n)
{
    snprintf(buf, n, "%s%s%s", a->backbone, *a->backbone ? "." : "", child);
    return buf;
}

/* Part k of name as an int, or an error naming the Python expression that would fail. */
static int int_part(const conv_state *s, const char *who, const char *name, size_t k,
                    size_t skip, int64_t *out, ow_error *err)
{
    const char *p;
    size_t len;
    if (ow__name_part(name, k, &p, &len) && len >= skip &&
        ow__parse_int(p + skip, len - skip, out))
        return OW_OK;
    return ow__error_at(err, OW_ERR_MODEL, s->where,
                        "%s get_layer_depth: cannot read an index from '%s' (part %zu)",
                        who, name, k);
}

/* ---- ConvNeXt ---------------------------------------------------------------------- */

static int convnext_prepare(const ow_layer_depth_args *a, void **out, ow_error *err)
{
    char stages[256], stage[280];
    parent_of(a, "stages", stages, sizeof stages);
    int64_t n = ow__count_children(a->model, stages);
    if (n < 2 || n > MAX_STAGES)
        return ow__error_at(
            err, OW_ERR_UNSUPPORTED, a->where,
            "ConvNeXt get_layer_depth: needs at least two '%s.N' stages in "
            "the model tree (it reads depths[-2]), found %lld",
            stages, (long long)n);
    conv_state *s = ow__calloc(1, sizeof *s);
    if (!s)
        return ow__nomem(err);
    s->prefix = a->prefix;
    s->where = a->where;
    s->n_stages = (size_t)n;
    for (size_t i = 0; i < s->n_stages; i++) {
        snprintf(stage, sizeof stage, "%s.%zu", stages, i);
        s->depths[i] = ow__count_children(a->model, stage);
    }
    s->max_layer_id = s->depths[s->n_stages - 2] > 9 ? 12 : 6;
    *out = s;
    return OW_OK;
}

static int convnext_get(const void *state, const char *name, int64_t *id, int64_t *n,
                        ow_error *err)
{
    const conv_state *s = state;
    int64_t max = s->max_layer_id, stage, block;
    *n = max + 2;
    size_t plen = strlen(s->prefix);
    if (strncmp(name, s->prefix, plen)) {
        *id = max + 1;
        return OW_OK;
    }
    const char *rest = name + plen;
    int rc;
    if (!strncmp(rest, "downsample_layers", 17)) {
        if ((rc = int_part(s, "ConvNeXt", rest, 1, 0, &stage, err)))
            return rc;
        *id = stage == 0 ? 0 : stage == 1 || stage == 2 ? stage + 1 : max;
    } else if (!strncmp(rest, "stages", 6)) {
        if ((rc = int_part(s, "ConvNeXt", rest, 1, 0, &stage, err)) ||
            (rc = int_part(s, "ConvNeXt", rest, 2, 0, &block, err)))
            return rc;
        *id = stage == 0 || stage == 1 ? stage + 1 : stage == 2 ? 3 + block / 3 : max;
    } else {
        *id = max + 1;
    }
    return OW_OK;
}

/* ---- ResNet ------------------------------------------------------------------------ */

/* (stage 2 blocks, stage 3 blocks) -> blocks per layer id: ResNet-50/101/152/200 and
 * eca269d; mmpretrain raises NotImplementedError for any other layout. */
static const struct {
    int64_t d1, d2, blk2, blk3;
} resnet_layouts[] = {
    {4, 6, 2, 3}, {4, 23, 2, 3}, {8, 36, 4, 4}, {24, 36, 4, 4}, {30, 48, 5, 6},
};

static int resnet_prepare(const ow_layer_depth_args *a, void **out, ow_error *err)
{
    char layer[256];
    int64_t depths[MAX_STAGES];
    size_t n = 0;
    while (n < MAX_STAGES) {
        char child[32];
        snprintf(child, sizeof child, "layer%zu", n + 1);
        parent_of(a, child, layer, sizeof layer);
        if (!ow__has_module(a->model, layer))
            break;
        depths[n++] = ow__count_children(a->model, layer);
    }
    if (n < 3)
        return ow__error_at(
            err, OW_ERR_UNSUPPORTED, a->where,
            "ResNet get_layer_depth: needs stages '%slayer1' to '%slayer3' "
            "in the model tree, found %zu",
            a->prefix, a->prefix, n);
    size_t k = 0;
    while (k < OW__ARRAY_LEN(resnet_layouts) &&
           !(resnet_layouts[k].d1 == depths[1] && resnet_layouts[k].d2 == depths[2]))
        k++;
    if (k == OW__ARRAY_LEN(resnet_layouts)) {
        char list[128] = "";
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%lld", i ? ", " : "",
                     (long long)depths[i]);
        }
        return ow__error_at(
            err, OW_ERR_UNSUPPORTED, a->where,
            "ResNet get_layer_depth: stage depths [%s] are not one it knows "
            "(mmpretrain raises NotImplementedError; it handles stages 2 and "
            "3 of 4 and 6, 4 and 23, 8 and 36, 24 and 36, 30 and 48, e.g. "
            "ResNet-50/101/152, not ResNet-18); set "
            "paramwise_cfg.layer_depth: {type: RegexLayerDepth, ...}",
            list);
    }
    conv_state *s = ow__calloc(1, sizeof *s);
    if (!s)
        return ow__nomem(err);
    s->prefix = a->prefix;
    s->where = a->where;
    s->n_stages = n;
    memcpy(s->depths, depths, n * sizeof *depths);
    s->blk2 = resnet_layouts[k].blk2;
    s->blk3 = resnet_layouts[k].blk3;
    /* math.ceil(depths[1] / blk2 - 1e-5), in double as Python computes it */
    s->n2 = (int64_t)ceil((double)depths[1] / (double)s->blk2 - 1e-5);
    int64_t n3 = (int64_t)ceil((double)depths[2] / (double)s->blk3 - 1e-5);
    s->max_layer_id = 2 + s->n2 + n3 + 1;
    if (!*a->prefix) {
        char msg[OW_ERROR_TEXT_LEN];
        snprintf(
            msg, sizeof msg,
            "ResNet get_layer_depth (reproduced): mmpretrain matches the full name "
            "against 'backbone.layer' whatever the prefix, so with ResNet at the root "
            "every parameter gets layer id 0 (lr scale rate**%lld)",
            (long long)s->max_layer_id);
        int rc = ow_groups_add_warning(a->groups, a->where, msg, err);
        if (rc) {
            ow_free(s);
            return rc;
        }
    }
    *out = s;
    return OW_OK;
}

static int resnet_get(const void *state, const char *name, int64_t *id, int64_t *n,
                      ow_error *err)
{
    const conv_state *s = state;
    int64_t max = s->max_layer_id, nn = max - 1, stage, block;
    *n = max + 1;
    if (strncmp(name, s->prefix, strlen(s->prefix))) {
        *id = max;
        return OW_OK;
    }
    if (strncmp(name, "backbone.layer", 14)) { /* the full name, whatever the prefix */
        *id = 0;
        return OW_OK;
    }
    int rc;
    if ((rc = int_part(s, "ResNet", name, 1, 5, &stage, err)) ||
        (rc = int_part(s, "ResNet", name, 2, 0, &block, err)))
        return rc;
    if (stage == 1)
        *id = 1;
    else if (stage == 2)
        *id = 2 + block / s->blk2;
    else if (stage == 3)
        *id = 2 + s->n2 + block / s->blk3;
    else
        *id = nn;
    return OW_OK;
}

static const ow_key no_keys[] = {{0}};

static const ow_layer_depth_ops convnext_ops = {.abi_version = OW_ABI_VERSION,
                                                .prepare = convnext_prepare,
                                                .get = convnext_get,
                                                .free = ow_free};
static const ow_layer_depth_ops resnet_ops = {.abi_version = OW_ABI_VERSION,
                                              .prepare = resnet_prepare,
                                              .get = resnet_get,
                                              .free = ow_free};

static const char *const convnext_aliases[] = {"SparseConvNeXt", NULL};
static const char *const resnet_aliases[] = {
    "ResNetV1c", "ResNetV1d", "ResNeXt",      "Res2Net",      "SEResNet",  "SEResNeXt",
    "ResNeSt",   "RegNet",    "ResNet_CIFAR", "SparseResNet", "OFAResNet", NULL};

const ow_entry ow__layer_depth_convnext = {
    .abi_version = OW_ABI_VERSION,
    .name = "ConvNeXt",
    .kind = OW_KIND_LAYER_DEPTH,
    .scope = "mmpretrain",
    .summary =
        "ConvNeXt: 12 layer ids when depths[-2] > 9, else 6; stage 2 in blocks of 3",
    .keys = no_keys,
    .aliases = convnext_aliases,
    .ops = &convnext_ops,
};

const ow_entry ow__layer_depth_resnet = {
    .abi_version = OW_ABI_VERSION,
    .name = "ResNet",
    .kind = OW_KIND_LAYER_DEPTH,
    .scope = "mmpretrain",
    .summary = "ResNet family: stem 0, layer1 1, layer2/3 in chunks, layer4 N; only the "
               "ResNet-50/101/152/200 stage layouts",
    .keys = no_keys,
    .aliases = resnet_aliases,
    .ops = &resnet_ops,
};
