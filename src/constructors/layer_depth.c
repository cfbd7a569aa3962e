/* layer_depth.c -- choosing the layer-depth provider (mmpretrain's get_layer_depth) for a
 * model: named by paramwise_cfg.layer_depth, else found by the class of the root, else
 * of the `backbone` module (ImageClassifier delegates with prefix 'backbone.'); and the
 * tree readers providers use to count layers the way the Python modules know them. */
#include "ctor_internal.h"

#include <string.h>

const ow_module_info *ow__find_module(const ow_model *model, const char *name)
{
    for (size_t i = 0; i < ow_model_get_num_modules(model); i++) {
        const ow_module_info *m = ow_model_get_module(model, i);
        if (!strcmp(m->name, name))
            return m;
    }
    return NULL;
}

bool ow__has_module(const ow_model *model, const char *name)
{
    return ow__find_module(model, name) != NULL;
}

bool ow__parse_int(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == len)
        return false;
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

bool ow__name_part(const char *name, size_t n, const char **start, size_t *len)
{
    const char *p = name;
    for (size_t i = 0; i < n; i++) {
        p = strchr(p, '.');
        if (!p)
            return false;
        p++;
    }
    const char *dot = strchr(p, '.');
    *start = p;
    *len = dot ? (size_t)(dot - p) : strlen(p);
    return true;
}

int64_t ow__count_children(const ow_model *model, const char *parent)
{
    size_t plen = strlen(parent);
    int64_t count = 0;
    for (size_t i = 0; i < ow_model_get_num_modules(model); i++) {
        const char *name = ow_model_get_module(model, i)->name;
        const char *rest = name;
        if (plen) {
            if (strncmp(name, parent, plen) || name[plen] != '.')
                continue;
            rest = name + plen + 1;
        }
        int64_t idx;
        if (*rest && !strchr(rest, '.') && ow__parse_int(rest, strlen(rest), &idx) &&
            rest[0] != '-' && rest[0] != '+' && idx + 1 > count)
            count = idx + 1;
    }
    return count;
}

void ow__depth_close(ow__depth *d)
{
    if (d->ops && d->ops->free && d->state)
        d->ops->free(d->state);
    memset(d, 0, sizeof *d);
}

static const char *const regex_hint =
    "set paramwise_cfg.layer_depth: {type: RegexLayerDepth, rules: [[REGEX, LAYER_ID], "
    "...], num_layers: N}";

/* A provider found by class name; RegexLayerDepth needs rules, so it is never implied. */
static const ow_entry *provider_for(const char *type)
{
    const ow_entry *e = ow_registry_find(OW_KIND_LAYER_DEPTH, type);
    return e && strcmp(e->name, "RegexLayerDepth") ? e : NULL;
}

static int open_named(const ow_cfg *cfg, const char *scope, const ow_entry **out,
                      ow_error *err)
{
    static const char *const type_only[] = {"type", NULL};
    const ow_cfg *type = ow__cfg_map_get(cfg, "type");
    if (!type)
        return ow__error_at(
            err, OW_ERR_MISSING_KEY, cfg,
            "optim_wrapper.paramwise_cfg.layer_depth: missing key 'type'");
    int rc = ow__registry_lookup(OW_KIND_LAYER_DEPTH, type, scope, out, err);
    if (!rc)
        rc = ow__schema_check(cfg, (*out)->keys,
                              "optim_wrapper.paramwise_cfg.layer_depth", type_only, err);
    return rc;
}

int ow__depth_check(const ow_cfg *layer_depth, const char *scope, ow_error *err)
{
    const ow_entry *e = NULL;
    return open_named(layer_depth, scope, &e, err);
}

int ow__depth_open(const ow_model *model, const ow_cfg *layer_depth, const ow_cfg *where,
                   const char *scope, ow_groups *groups, ow__depth *out, ow_error *err)
{
    memset(out, 0, sizeof *out);
    const ow_module_info *root = ow_model_get_module(model, 0);
    const ow_module_info *backbone = ow__find_module(model, "backbone");
    const ow_entry *e = NULL;
    bool at_root = false;
    int rc;
    if (layer_depth) {
        if ((rc = open_named(layer_depth, scope, &e, err)))
            return rc;
        at_root = !backbone;
        where = layer_depth;
    } else if (root && (e = provider_for(root->type))) {
        at_root = true;
    } else if (backbone) {
        if (!(e = provider_for(backbone->type)))
            return ow__error_at(
                err, OW_ERR_UNSUPPORTED, where,
                "optim_wrapper.constructor: the backbone %s doesn't support "
                "`get_layer_depth` (optwrap has no layer-depth provider for "
                "it); %s",
                backbone->type, regex_hint);
    } else {
        return ow__error_at(
            err, OW_ERR_UNSUPPORTED, where,
            "optim_wrapper.constructor: layer-wise lr decay needs the "
            "model's `get_layer_depth`, but the model %s has no `backbone` "
            "module and no layer-depth provider; %s",
            root ? root->type : "(empty)", regex_hint);
    }
    const ow_layer_depth_ops *ops = e->ops;
    if (!ops || ops->abi_version != OW_ABI_VERSION || !ops->prepare || !ops->get)
        return ow__error_at(
            err, OW_ERR_PLUGIN, where,
            "layer_depth '%s' has no usable ops (ABI version %d expected)", e->name,
            OW_ABI_VERSION);
    ow_layer_depth_args a = {.model = model,
                             .backbone = at_root ? "" : "backbone",
                             .prefix = at_root ? "" : "backbone.",
                             .cfg = layer_depth,
                             .where = where,
                             .groups = groups};
    void *state = NULL;
    if ((rc = ops->prepare(&a, &state, err)))
        return rc;
    out->entry = e;
    out->ops = ops;
    out->state = state;
    out->backbone_type = at_root ? (root ? root->type : "") : backbone->type;
    return OW_OK;
}
