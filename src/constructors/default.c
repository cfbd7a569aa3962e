/* default.c -- mmengine's DefaultOptimWrapperConstructor: one param group per
 * parameter, lr and weight decay from paramwise_cfg's custom_keys and bias / norm /
 * depth-wise conv / flat multipliers, with mmengine's precedence and quirks.
 * https://github.com/open-mmlab/mmengine/blob/main/mmengine/optim/optimizer/default_constructor.py
 */
#include "ctor_internal.h"

#include <stdlib.h>
#include <string.h>

static const ow_key default_keys[] = {
    {.name = "custom_keys",
     .type = OW_T_MAP,
     .flags = OW_KEY_NULLABLE,
     .doc = "substring of a parameter's full name (or 're:REGEX', 'glob:PATTERN') -> "
            "{lr_mult, decay_mult, any group key}"},
    {.name = "bias_lr_mult",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "lr multiplier of biases (not of norm layers)"},
    {.name = "bias_decay_mult",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "weight-decay multiplier of biases"},
    {.name = "norm_decay_mult",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "weight-decay multiplier of norm layers' weights and biases"},
    {.name = "dwconv_decay_mult",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "weight-decay multiplier of depth-wise Conv2d (in_channels == groups)"},
    {.name = "flat_decay_mult",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "weight-decay multiplier of 1-D parameters"},
    {.name = "dcn_offset_lr_mult",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "lr multiplier of deformable convs' offset convs"},
    {.name = "bypass_duplicate",
     .type = OW_T_BOOL,
     .def = "false",
     .doc = "keep only the first occurrence of a shared parameter"},
    {0},
};

/* mmcv's deformable convs; their children's parameters are "in a DCN module". */
static bool is_dcn_type(const char *type)
{
    static const char *const dcn[] = {"DeformConv2d", "ModulatedDeformConv2d",
                                      "DeformConv2dPack", "ModulatedDeformConv2dPack"};
    for (size_t i = 0; i < OW__ARRAY_LEN(dcn); i++) /* asked of every module */
        if (type[0] == dcn[i][0] && !strcmp(type, dcn[i]))
            return true;
    return false;
}

/* isinstance(m, nn.Conv2d): Conv2d and its subclasses (Conv2dSame, StdConv2d, ...),
 * which all carry "Conv2d" in their class names; ConvTranspose2d and Conv1d do not. */
static bool is_conv2d(const ow_module_info *m)
{
    return m->kind == OW_MODULE_CONV && strstr(m->type, "Conv2d") &&
           !is_dcn_type(m->type);
}

/* For every module (walk order), whether its parent is a DCN: mmengine passes
 * is_dcn_module down one level. Modules come depth-first, so the parent of module i is
 * on a stack of its ancestors; linear in the number of modules. NULL when the model has
 * no DCN at all (*out stays NULL) or on allocation failure (returns OW_ERR_NOMEM). */
static int modules_in_dcn(const ow_model *model, bool **out, ow_error *err)
{
    *out = NULL;
    size_t n = ow_model_get_num_modules(model);
    bool any = false;
    for (size_t i = 0; i < n && !any; i++)
        any = is_dcn_type(ow_model_get_module(model, i)->type);
    if (!any)
        return OW_OK;
    bool *in_dcn = ow__calloc(n, sizeof *in_dcn);
    size_t *stack = ow__calloc(n, sizeof *stack);
    if (!in_dcn || !stack) {
        ow_free(in_dcn);
        ow_free(stack);
        return ow__nomem(err);
    }
    size_t depth = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = ow_model_get_module(model, i)->name;
        const char *dot = strrchr(name, '.');
        size_t plen = dot ? (size_t)(dot - name) : 0;
        while (depth > 0) {
            const char *top = ow_model_get_module(model, stack[depth - 1])->name;
            if (*name && strlen(top) == plen && !strncmp(top, name, plen))
                break;
            depth--;
        }
        in_dcn[i] =
            depth > 0 && is_dcn_type(ow_model_get_module(model, stack[depth - 1])->type);
        stack[depth++] = i;
    }
    ow_free(stack);
    *out = in_dcn;
    return OW_OK;
}

typedef struct rules {
    const ow_cfg *base_lr, *base_wd; /* NULL when the optimizer config lacks them */
    const ow_cfg *bias_lr, *bias_decay, *norm_decay, *dwconv_decay, *flat_decay, *dcn_lr;
    bool bypass_duplicate;
    ow__custom_keys keys;
    const ow_cfg *where; /* paramwise_cfg, for positions */
} rules;

static const ow_cfg *mult(const ow_cfg *pw, const char *key)
{
    const ow_cfg *v = ow__cfg_map_get(pw, key);
    return v && v->type != OW_CFG_NULL ? v : NULL;
}

static int set_product(ow_groups *g, size_t gi, const char *key, const ow_cfg *base,
                       const ow_cfg *m, ow_error *err)
{
    ow_cfg v = ow__num_product(base, m);
    return ow_groups_set_value(g, gi, key, &v, err);
}

static const ow_cfg one = {.type = OW_CFG_FLOAT, .v.d = 1.0};

static int apply_custom(const rules *r, const ow__custom_key *ck, ow_groups *g, size_t gi,
                        ow_error *err)
{
    const ow_cfg *lr_mult = ow__cfg_map_get(ck->cfg, "lr_mult");
    const ow_cfg *decay_mult = ow__cfg_map_get(ck->cfg, "decay_mult");
    if (!r->base_lr)
        return ow__error_at(
            err, OW_ERR_MISSING_KEY, ck->cfg,
            "optim_wrapper.paramwise_cfg.custom_keys.%s: sets lr = "
            "optimizer.lr * lr_mult, but optim_wrapper.optimizer has no lr",
            ck->key);
    int rc = set_product(g, gi, "lr", r->base_lr, lr_mult ? lr_mult : &one, err);
    if (!rc && r->base_wd)
        rc = set_product(g, gi, "weight_decay", r->base_wd,
                         decay_mult ? decay_mult : &one, err);
    for (size_t i = 0; !rc && i < ck->cfg->v.c.n; i++)
        rc = ow_groups_set_value(g, gi, ck->cfg->v.c.keys[i], ck->cfg->v.c.items[i], err);
    if (!rc) {
        char why[300];
        ow__custom_key_describe(ck, why, sizeof why);
        rc = ow_groups_set_reason(g, gi, why, err);
    }
    return rc;
}

static int missing_lr(const rules *r, const char *key, ow_error *err)
{
    return ow__error_at(err, OW_ERR_MISSING_KEY, ow__cfg_map_get(r->where, key),
                        "optim_wrapper.paramwise_cfg.%s: multiplies optimizer.lr, but "
                        "optim_wrapper.optimizer has no lr",
                        key);
}

/* Adds a rule's name to the reason, ", "-separated (no snprintf: once per group). */
static void add_rule(char *why, size_t n, const char *rule)
{
    size_t len = strlen(why), rl = strlen(rule);
    if (len && len + 2 < n) {
        memcpy(why + len, ", ", 3);
        len += 2;
    }
    if (len + rl < n)
        memcpy(why + len, rule, rl + 1);
}

static int apply_type_rules(const rules *r, const ow_param_view *pv, bool in_dcn,
                            ow_groups *g, size_t gi, ow_error *err)
{
    const ow_module_info *m = pv->module_info;
    bool is_norm = m->kind == OW_MODULE_NORM;
    bool is_bias = !strcmp(pv->name, "bias");
    /* groups 0: a conv whose channels were not given (kind from its type) */
    bool is_dwconv = is_conv2d(m) && m->groups > 0 && m->in_channels == m->groups;
    char why[200] = "";
    int rc = OW_OK;
    if (is_bias && !(is_norm || in_dcn) && r->bias_lr) {
        if (!r->base_lr)
            return missing_lr(r, "bias_lr_mult", err);
        rc = set_product(g, gi, "lr", r->base_lr, r->bias_lr, err);
        add_rule(why, sizeof why, "bias_lr_mult");
    }
    if (!rc && in_dcn && strstr(pv->module, "conv_offset") && is_conv2d(m) && r->dcn_lr) {
        if (!r->base_lr)
            return missing_lr(r, "dcn_offset_lr_mult", err);
        rc = set_product(g, gi, "lr", r->base_lr, r->dcn_lr, err);
        add_rule(why, sizeof why, "dcn_offset_lr_mult");
    }
    if (rc || !r->base_wd)
        goto done;
    const char *rule = NULL;
    const ow_cfg *decay = NULL;
    if (is_norm && r->norm_decay)
        rule = "norm_decay_mult", decay = r->norm_decay;
    else if (is_bias && !in_dcn && r->bias_decay)
        rule = "bias_decay_mult", decay = r->bias_decay;
    else if (is_dwconv && r->dwconv_decay)
        rule = "dwconv_decay_mult", decay = r->dwconv_decay;
    else if (pv->ndim == 1 && !in_dcn && r->flat_decay)
        rule = "flat_decay_mult", decay = r->flat_decay;
    if (rule) {
        rc = set_product(g, gi, "weight_decay", r->base_wd, decay, err);
        add_rule(why, sizeof why, rule);
    }
done:
    if (!rc && why[0])
        rc = ow_groups_set_reason(g, gi, why, err);
    return rc;
}

/* paramwise_cfg absent or empty: torch gets model.parameters(), one group holding every
 * distinct tensor, frozen ones included. */
int ow__groups_add_flat(const ow_model *model, ow_groups *g, ow_error *err)
{
    size_t gi;
    int rc = ow_groups_add(g, &gi, err);
    for (size_t i = 0; !rc && i < ow_model_get_num_params(model); i++) {
        ow_param_view pv;
        ow_model_get_param(model, i, &pv);
        if (!pv.is_shared)
            rc = ow_groups_add_param(g, gi, i, err);
    }
    if (!rc)
        rc = ow_groups_set_reason(g, gi, "no paramwise_cfg: model.parameters()", err);
    return rc;
}

/* mmengine raises "base_wd should not be None" at construction for these. */
int ow__check_base_wd(const ow_cfg *pw, const ow__custom_keys *ck, const ow_cfg *base_wd,
                      ow_error *err)
{
    if (base_wd)
        return OW_OK;
    static const char *const needs_wd[] = {"bias_decay_mult", "norm_decay_mult",
                                           "dwconv_decay_mult"};
    for (size_t i = 0; i < OW__ARRAY_LEN(needs_wd); i++)
        if (mult(pw, needs_wd[i]))
            return ow__error_at(
                err, OW_ERR_MISSING_KEY, ow__cfg_map_get(pw, needs_wd[i]),
                "optim_wrapper.paramwise_cfg.%s: needs "
                "optim_wrapper.optimizer.weight_decay (base_wd should not "
                "be None)",
                needs_wd[i]);
    /* in the config's order, as mmengine's loop over custom_keys.values() */
    const ow_cfg *map = ck->node;
    for (size_t i = 0; map && i < map->v.c.n; i++)
        if (ow__cfg_map_get(map->v.c.items[i], "decay_mult"))
            return ow__error_at(
                err, OW_ERR_MISSING_KEY, ow__cfg_map_get(map->v.c.items[i], "decay_mult"),
                "optim_wrapper.paramwise_cfg.custom_keys.%s.decay_mult: "
                "needs optim_wrapper.optimizer.weight_decay (base_wd should "
                "not be None)",
                map->v.c.keys[i]);
    return OW_OK;
}

static int default_build(const ow_constructor_ctx *ctx, ow_groups *g, ow_error *err)
{
    const ow_cfg *pw = ctx->paramwise_cfg;
    if (!pw || pw->v.c.n == 0)
        return ow__groups_add_flat(ctx->model, g, err);
    rules r = {.base_lr = mult(ctx->optimizer, "lr"),
               .base_wd = mult(ctx->optimizer, "weight_decay"),
               .bias_lr = mult(pw, "bias_lr_mult"),
               .bias_decay = mult(pw, "bias_decay_mult"),
               .norm_decay = mult(pw, "norm_decay_mult"),
               .dwconv_decay = mult(pw, "dwconv_decay_mult"),
               .flat_decay = mult(pw, "flat_decay_mult"),
               .dcn_lr = mult(pw, "dcn_offset_lr_mult"),
               .where = pw};
    const ow_cfg *bypass = mult(pw, "bypass_duplicate");
    r.bypass_duplicate = bypass && bypass->v.b;
    int rc = ow__custom_keys_read(pw, ctx->model, &r.keys, err);
    if (!rc)
        rc = ow__check_base_wd(pw, &r.keys, r.base_wd, err);
    const ow_model *model = ctx->model;
    size_t n_tensors = ow_model_get_num_tensors(model);
    bool *in_dcn = NULL;
    if (!rc)
        rc = modules_in_dcn(model, &in_dcn, err);
    bool *seen = rc ? NULL : ow__calloc(n_tensors ? n_tensors : 1, sizeof *seen);
    if (!rc && !seen)
        rc = ow__nomem(err);
    size_t module = 0; /* parameters come in module order */
    for (size_t i = 0; !rc && i < ow_model_get_num_params(model); i++) {
        ow_param_view pv;
        ow_model_get_param(model, i, &pv);
        while (ow_model_get_module(model, module) != pv.module_info &&
               strcmp(ow_model_get_module(model, module)->name, pv.module))
            module++;
        /* bypass_duplicate is tested before requires_grad, against earlier groups */
        if (r.bypass_duplicate && seen[pv.tensor])
            continue;
        if (!pv.requires_grad)
            continue;
        seen[pv.tensor] = true;
        size_t gi;
        if ((rc = ow_groups_add(g, &gi, err)) ||
            (rc = ow_groups_add_param(g, gi, i, err)))
            break;
        /* mmengine matches custom keys against f'{prefix}.{name}': ".name" at the root,
         * the full name elsewhere (one over 1023 bytes cut to that, by snprintf) */
        char full[1024];
        const char *dotted = full;
        size_t len = strlen(pv.full_name);
        if (*pv.module && len < sizeof full)
            dotted = pv.full_name;
        else
            snprintf(full, sizeof full, "%s.%s", pv.module, pv.name);
        ow__custom_key *hit = NULL;
        if ((rc = ow__custom_keys_find(&r.keys, dotted, pv.full_name, i, &hit, err)))
            break;
        if (hit)
            rc = apply_custom(&r, hit, g, gi, err);
        else
            rc = apply_type_rules(&r, &pv, in_dcn && in_dcn[module], g, gi, err);
    }
    if (!rc)
        rc = ow__custom_keys_warn(&r.keys, model, g, err);
    ow_free(in_dcn);
    ow_free(seen);
    ow__custom_keys_free(&r.keys);
    return rc;
}

static const ow_constructor_ops default_ops = {.build = default_build};

const ow_entry ow__constructor_default = {
    .abi_version = OW_ABI_VERSION,
    .name = "DefaultOptimWrapperConstructor",
    .kind = OW_KIND_CONSTRUCTOR,
    .scope = "mmengine",
    .summary = "mmengine: one group per parameter; custom_keys, bias/norm/dwconv/flat "
               "multipliers",
    .keys = default_keys,
    .ops = &default_ops,
};
