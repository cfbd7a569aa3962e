/* depth_swin.c -- get_layer_depth of mmpretrain's hierarchical transformers: Swin
 * (stages.i.blocks.j, the stage's patch merging with its last block) and MixMIM (the same
 * on layers.i, stem matched by substring, neck and leftovers one below the top).
 * https://github.com/open-mmlab/mmpretrain/blob/main/mmpretrain/models/backbones/swin_transformer.py
 * https://github.com/open-mmlab/mmpretrain/blob/main/mmpretrain/models/backbones/mixmim.py
 */
#include "ctor_internal.h"

#include <string.h>

#define MAX_STAGES 16

typedef struct swin_state {
    const char *name; /* the provider, for messages */
    const char *prefix;
    const ow_cfg *where;
    int64_t depths[MAX_STAGES]; /* blocks per stage, from the tree */
    size_t n_stages;
    int64_t total; /* sum(depths) */
} swin_state;

/* depths[i] = the number of "<backbone>.<stages>.i.blocks.N" modules. */
static int prepare(const ow_layer_depth_args *a, void **out, const char *name,
                   const char *stages, ow_error *err)
{
    char parent[256], blocks[300];
    snprintf(parent, sizeof parent, "%s%s%s", a->backbone, *a->backbone ? "." : "",
             stages);
    int64_t n = ow__count_children(a->model, parent);
    if (n < 1 || n > MAX_STAGES)
        return ow__error_at(
            err, OW_ERR_UNSUPPORTED, a->where,
            "%s get_layer_depth: the model tree has no '%s.N.blocks' stages "
            "(it sums their depths)",
            name, parent);
    swin_state *s = ow__calloc(1, sizeof *s);
    if (!s)
        return ow__nomem(err);
    *s = (swin_state){
        .name = name, .prefix = a->prefix, .where = a->where, .n_stages = (size_t)n};
    for (size_t i = 0; i < s->n_stages; i++) {
        snprintf(blocks, sizeof blocks, "%s.%zu.blocks", parent, i);
        s->depths[i] = ow__count_children(a->model, blocks);
        s->total += s->depths[i];
    }
    *out = s;
    return OW_OK;
}

static int swin_prepare(const ow_layer_depth_args *a, void **out, ow_error *err)
{
    return prepare(a, out, "SwinTransformer", "stages", err);
}

static int mixmim_prepare(const ow_layer_depth_args *a, void **out, ow_error *err)
{
    return prepare(a, out, "MixMIMTransformer", "layers", err);
}

/* Python's sum(depths[:k]) (a slice past the end is the whole list). */
static int64_t sum_first(const swin_state *s, int64_t k)
{
    int64_t total = 0;
    for (int64_t i = 0; i < k && (size_t)i < s->n_stages; i++)
        total += s->depths[i];
    return total;
}

/* stages.i.<x>...: x is the block index, or the stage-end patch merging's layer name
 * (`ends`), which shares the id of the stage's last block. */
static int stage_depth(const swin_state *s, const char *rest, const char *const *ends,
                       int64_t *id, ow_error *err)
{
    const char *p, *x;
    size_t len, xlen;
    int64_t stage, block;
    if (!ow__name_part(rest, 1, &p, &len) || !ow__parse_int(p, len, &stage) ||
        !ow__name_part(rest, 3, &x, &xlen))
        goto bad;
    for (const char *const *e = ends; *e; e++)
        if (strlen(*e) == xlen && !strncmp(x, *e, xlen)) {
            *id = sum_first(s, stage + 1);
            return OW_OK;
        }
    if (!ow__parse_int(x, xlen, &block))
        goto bad;
    *id = sum_first(s, stage) + block + 1;
    return OW_OK;
bad:
    return ow__error_at(err, OW_ERR_MODEL, s->where,
                        "%s get_layer_depth: cannot read a stage and block from '%s' "
                        "(mmpretrain: name.split('.')[1] and [3])",
                        s->name, rest);
}

static int swin_get(const void *state, const char *name, int64_t *id, int64_t *n,
                    ow_error *err)
{
    static const char *const ends[] = {"reduction", "norm", NULL};
    const swin_state *s = state;
    *n = s->total + 2;
    size_t plen = strlen(s->prefix);
    if (strncmp(name, s->prefix, plen)) {
        *id = *n - 1;
        return OW_OK;
    }
    const char *rest = name + plen;
    if (!strncmp(rest, "patch_embed", 11)) {
        *id = 0;
        return OW_OK;
    }
    if (!strncmp(rest, "stages", 6))
        return stage_depth(s, rest, ends, id, err);
    *id = *n - 1;
    return OW_OK;
}

static int mixmim_get(const void *state, const char *name, int64_t *id, int64_t *n,
                      ow_error *err)
{
    static const char *const ends[] = {"downsample", "reduction", "norm", NULL};
    const swin_state *s = state;
    *n = s->total + 2;
    size_t plen = strlen(s->prefix);
    if (strncmp(name, s->prefix, plen)) {
        *id = !strncmp(name, "neck", 4) ? *n - 2 : *n - 1;
        return OW_OK;
    }
    const char *rest = name + plen;
    if (strstr(rest, "patch_embed") || strstr(rest, "absolute_pos_embed") ||
        strstr(rest, "pos_embed")) {
        *id = 0;
        return OW_OK;
    }
    if (!strncmp(rest, "layers", 6))
        return stage_depth(s, rest, ends, id, err);
    *id = *n - 2;
    return OW_OK;
}

static const ow_key no_keys[] = {{0}};

static const ow_layer_depth_ops swin_ops = {.abi_version = OW_ABI_VERSION,
                                            .prepare = swin_prepare,
                                            .get = swin_get,
                                            .free = ow_free};
static const ow_layer_depth_ops mixmim_ops = {.abi_version = OW_ABI_VERSION,
                                              .prepare = mixmim_prepare,
                                              .get = mixmim_get,
                                              .free = ow_free};

static const char *const swin_aliases[] = {"SimMIMSwinTransformer", NULL};
static const char *const mixmim_aliases[] = {"MixMIMPretrainTransformer", NULL};

const ow_entry ow__layer_depth_swin = {
    .abi_version = OW_ABI_VERSION,
    .name = "SwinTransformer",
    .kind = OW_KIND_LAYER_DEPTH,
    .scope = "mmpretrain",
    .summary = "Swin: patch_embed 0, stages.i.blocks.j -> sum(depths[:i])+j+1, patch "
               "merging with its stage's last block",
    .keys = no_keys,
    .aliases = swin_aliases,
    .ops = &swin_ops,
};

const ow_entry ow__layer_depth_mixmim = {
    .abi_version = OW_ABI_VERSION,
    .name = "MixMIMTransformer",
    .kind = OW_KIND_LAYER_DEPTH,
    .scope = "mmpretrain",
    .summary = "MixMIM: the Swin rule on layers.i; neck and leftovers at num_layers-2",
    .keys = no_keys,
    .aliases = mixmim_aliases,
    .ops = &mixmim_ops,
};
