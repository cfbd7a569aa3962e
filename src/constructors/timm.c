/* timm.c -- TimmOptimWrapperConstructor: the groups timm's create_optimizer_v2 builds
 * from a model: param_groups_weight_decay (no_decay, decay, then their fallback twins),
 * or with layer_decay param_groups_layer_decay (layer_<id>_<decay|no_decay>[_fallback]
 * in order of first appearance, lr_scale per group, lr left to the optimizer). Beyond
 * timm, optwrap's optimizer applies lr_scale when stepping.
 * https://github.com/huggingface/pytorch-image-models/blob/main/timm/optim/_param_groups.py
 */
#include "ctor_internal.h"

#include <string.h>

#define NAME  "TimmOptimWrapperConstructor"
#define LABEL "optim_wrapper.paramwise_cfg"

static const ow_key timm_keys[] = {
    {.name = "filter_bias_and_bn",
     .type = OW_T_BOOL,
     .def = "true",
     .doc = "no weight decay for 1-D parameters (and, without layer decay, names ending "
            "in .bias)"},
    {.name = "weight_decay_exclude_1d",
     .type = OW_T_BOOL,
     .flags = OW_KEY_NULLABLE,
     .doc = "the same switch under param_groups_*'s name (give one of the two)"},
    {.name = "no_weight_decay",
     .type = OW_T_LIST,
     .flags = OW_KEY_NULLABLE,
     .doc = "fnmatch patterns of full names without weight decay, added to the model "
            "file's no_weight_decay"},
    {.name = "layer_decay",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "layer-wise lr decay: lr_scale = layer_decay ** (top id - id)"},
    {.name = "layer_decay_min_scale",
     .type = OW_T_NUMBER,
     .def = "0.0",
     .doc = "lower bound of lr_scale"},
    {.name = "layer_decay_no_opt_scale",
     .type = OW_T_NUMBER,
     .flags = OW_KEY_NULLABLE,
     .doc = "parameters whose lr_scale is below this are left out of optimization"},
    {.name = "group_matcher",
     .type = OW_T_MAP,
     .flags = OW_KEY_NULLABLE,
     .doc = "timm's group_matcher(coarse=False) (group -> regex or [[regex, suffix]]), "
            "instead of the model file's"},
    {.name = "fallback_list",
     .type = OW_T_LIST,
     .flags = OW_KEY_NULLABLE,
     .doc = "fnmatch patterns of parameters for a fallback optimizer: their own groups, "
            "marked use_fallback"},
    {.name = "fallback_no_weight_decay",
     .type = OW_T_BOOL,
     .def = "false",
     .doc = "the no_weight_decay patterns go to the fallback groups too"},
    {0},
};

typedef struct pattern {
    const char *text;
    const ow_cfg *node;
    bool from_config; /* model-file patterns (ViT's dist_token, ...) may match nothing */
    size_t hits;
} pattern;

typedef struct tg {
    const ow_cfg *pw, *wd;
    bool exclude_1d;
    pattern *nwd, *fb; /* no_weight_decay, fallback_list */
    size_t n_nwd, n_fb;
    ow__named_groups names;
    ow__timm_layers layers;
    ow_cfg **scales; /* [num_layers] */
} tg;

static const ow_cfg zero = {.type = OW_CFG_FLOAT, .v.d = 0.0};

static int add_patterns(pattern **out, size_t *n, const ow_cfg *list, bool from_config,
                        const char *label, ow_error *err)
{
    if (!list || list->type == OW_CFG_NULL)
        return OW_OK;
    if (list->type != OW_CFG_LIST)
        return ow__error_at(err, OW_ERR_TYPE, list,
                            "%s: expected a list of patterns, got %s", label,
                            ow_cfg_type_name(list->type));
    size_t cap = *n;
    for (size_t i = 0; i < list->v.c.n; i++) {
        const ow_cfg *p = list->v.c.items[i];
        if (p->type != OW_CFG_STRING)
            return ow__error_at(err, OW_ERR_TYPE, p,
                                "%s.%zu: expected a pattern string, "
                                "got %s",
                                label, i, ow_cfg_type_name(p->type));
        if (ow__grow((void **)out, &cap, *n + 1, sizeof **out))
            return ow__nomem(err);
        (*out)[(*n)++] = (pattern){.text = p->v.s, .node = p, .from_config = from_config};
    }
    return OW_OK;
}

static const pattern *match(pattern *ps, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (ow__fnmatch(ps[i].text, name)) {
            ps[i].hits++;
            return &ps[i];
        }
    return NULL;
}

static void free_tg(tg *t)
{
    for (int64_t i = 0; t->scales && i < t->layers.num_layers; i++)
        ow_cfg_free(t->scales[i]);
    ow_free(t->scales);
    ow__timm_layers_free(&t->layers);
    ow__named_groups_free(&t->names);
    ow_free(t->nwd);
    ow_free(t->fb);
}

/* Why a parameter gets no weight decay, for --explain; NULL when it is decayed. pgwd:
 * param_groups_weight_decay's rules (weight_decay 0 puts everything in no-decay; names
 * ending in '.bias' count with the 1-D test); else param_groups_layer_decay's. */
static const char *no_decay_reason(tg *t, const ow_param_view *pv, bool pgwd, char *buf,
                                   size_t n)
{
    const pattern *p = match(t->nwd, t->n_nwd, pv->full_name); /* counts hits */
    size_t len = strlen(pv->full_name);
    if (pgwd && !ow__num_value(t->wd))
        return "weight_decay is 0: one no-decay group";
    if (t->exclude_1d && pv->ndim <= 1)
        return pv->ndim == 1 ? "no weight decay: 1-D" : "no weight decay: 0-D";
    if (pgwd && t->exclude_1d && len >= 5 && !strcmp(pv->full_name + len - 5, ".bias"))
        return "no weight decay: name ends with '.bias'";
    if (!p)
        return NULL;
    snprintf(buf, n, "no weight decay: no_weight_decay pattern '%s' (%s)", p->text,
             p->from_config ? "config" : "model");
    return buf;
}

static int add_to(tg *t, ow_groups *g, const char *gname, bool decay, bool fallback,
                  const ow_cfg *scale, size_t param, bool *created, ow_error *err)
{
    size_t gi;
    int rc = ow__named_group(&t->names, g, gname, &gi, created, err);
    if (!rc && *created) {
        if (scale)
            rc = ow_groups_set_value(g, gi, "lr_scale", scale, err);
        if (!rc)
            rc = ow_groups_set_value(g, gi, "weight_decay", decay ? t->wd : &zero, err);
        if (!rc && fallback)
            rc = ow_groups_set_value(g, gi, "use_fallback",
                                     &(ow_cfg){.type = OW_CFG_BOOL, .v.b = true}, err);
    }
    return rc ? rc : ow_groups_add_param(g, gi, param, err);
}

/* param_groups_weight_decay: the four groups in timm's fixed order, empty ones left out.
 */
static int weight_decay_groups(tg *t, const ow_model *model, ow_groups *g, ow_error *err)
{
    static const char *const order[] = {"no_decay", "decay", "no_decay_fallback",
                                        "decay_fallback"};
    size_t np = ow_model_get_num_params(model);
    signed char *cls = ow__malloc(np ? np : 1);
    if (!cls)
        return ow__nomem(err);
    int rc = OW_OK;
    for (size_t i = 0; !rc && i < np; i++) {
        ow_param_view pv;
        ow_model_get_param(model, i, &pv);
        cls[i] = -1;
        if (!pv.requires_grad || pv.is_shared)
            continue;
        bool fb = match(t->fb, t->n_fb, pv.full_name) != NULL;
        char buf[300];
        const char *why = no_decay_reason(t, &pv, true, buf, sizeof buf);
        cls[i] = (signed char)((why ? 0 : 1) + (fb ? 2 : 0));
        rc = ow_groups_set_param_reason(g, i, why ? why : "weight decay", err);
    }
    for (int c = 0; !rc && c < 4; c++)
        for (size_t i = 0; !rc && i < np; i++) {
            bool created;
            if (cls[i] != c ||
                (rc = add_to(t, g, order[c], c & 1, c >= 2, NULL, i, &created, err)))
                continue;
            if (created) {
                char gr[100];
                snprintf(gr, sizeof gr, "timm param_groups_weight_decay: %s", order[c]);
                rc = ow_groups_set_reason(g, g->n - 1, gr, err);
            }
        }
    ow_free(cls);
    return rc;
}

/* Python's max(min_scale, layer_decay ** (layer_max - i)) per layer id. */
static int make_scales(tg *t, const ow_cfg *decay, const ow_cfg *min_scale, ow_error *err)
{
    int64_t n = t->layers.num_layers;
    if (!(t->scales = ow__calloc((size_t)(n ? n : 1), sizeof *t->scales)))
        return ow__nomem(err);
    for (int64_t i = 0; i < n; i++) {
        ow_cfg *s = ow__num_pow(decay, n - 1 - i);
        if (s && !(ow__num_value(s) > ow__num_value(min_scale))) {
            ow_cfg_free(s);
            s = ow__cfg_dup(min_scale);
        }
        if (!(t->scales[i] = s))
            return ow__nomem(err);
    }
    return OW_OK;
}

static int layer_decay_groups(tg *t, const ow_model *model, const ow_cfg *decay,
                              ow_groups *g, ow_error *err)
{
    const ow_cfg *no_opt = ow__num_or_null(t->pw, "layer_decay_no_opt_scale");
    if (no_opt && !ow__num_value(no_opt))
        no_opt = NULL; /* `if no_opt_scale and ...` */
    size_t dropped = 0;
    char dec[32];
    ow__format_double(ow__num_value(decay), dec, sizeof dec);
    int rc = OW_OK;
    for (size_t i = 0; !rc && i < ow_model_get_num_params(model); i++) {
        ow_param_view pv;
        ow_model_get_param(model, i, &pv);
        if (!pv.requires_grad || pv.is_shared)
            continue;
        bool fb = match(t->fb, t->n_fb, pv.full_name) != NULL;
        char buf[300], why[700], at[200];
        const char *nd = no_decay_reason(t, &pv, false, buf, sizeof buf);
        int64_t id = t->layers.id[i], top = t->layers.num_layers - 1;
        const ow_cfg *scale = t->scales[id];
        long r = t->layers.rule[i];
        if (!t->layers.from_matcher)
            snprintf(at, sizeof at, "auto_group_layers");
        else if (r >= 0)
            snprintf(at, sizeof at, "group_matcher '%s'", t->layers.rule_group[r]);
        else
            snprintf(at, sizeof at, "no group_matcher rule: top id");
        snprintf(why, sizeof why, "layer %lld of %lld (%s), lr_scale %s**%lld; %s",
                 (long long)id, (long long)(top + 1), at, dec, (long long)(top - id),
                 nd ? nd : "weight decay");
        if (no_opt && ow__num_value(scale) < ow__num_value(no_opt)) {
            dropped++;
            rc = ow_groups_set_param_reason(g, i,
                                            "left out: lr_scale below "
                                            "layer_decay_no_opt_scale",
                                            err);
            continue;
        }
        char gname[64];
        snprintf(gname, sizeof gname, "layer_%lld_%s%s", (long long)id,
                 nd ? "no_decay" : "decay", fb ? "_fallback" : "");
        bool created;
        if ((rc = add_to(t, g, gname, !nd, fb, scale, i, &created, err)))
            break;
        if (created) {
            char gr[100];
            snprintf(gr, sizeof gr, "timm param_groups_layer_decay: %s", gname);
            rc = ow_groups_set_reason(g, g->n - 1, gr, err);
        }
        if (!rc)
            rc = ow_groups_set_param_reason(g, i, why, err);
    }
    if (!rc && dropped) {
        char msg[OW_ERROR_TEXT_LEN];
        char lim[32];
        ow__format_double(ow__num_value(no_opt), lim, sizeof lim);
        snprintf(msg, sizeof msg,
                 LABEL
                 ".layer_decay_no_opt_scale: %zu parameter%s with lr_scale below %s "
                 "%s left out of optimization; timm also sets their "
                 "requires_grad=False on the model, optwrap leaves the model as it is",
                 dropped, dropped == 1 ? "" : "s", lim, dropped == 1 ? "is" : "are");
        rc = ow_groups_add_warning(g, ow__cfg_map_get(t->pw, "layer_decay_no_opt_scale"),
                                   msg, err);
    }
    return rc;
}

static int read_cfg(const ow_constructor_ctx *ctx, tg *t, ow_error *err)
{
    const ow_cfg *pw = ctx->paramwise_cfg;
    const ow_cfg *fbb = ow__cfg_map_get(pw, "filter_bias_and_bn");
    const ow_cfg *ex = ow__cfg_map_get(pw, "weight_decay_exclude_1d");
    if (ex && ex->type == OW_CFG_NULL)
        ex = NULL;
    if (fbb && ex && fbb->v.b != ex->v.b)
        return ow__error_at(err, OW_ERR_VALUE, ex,
                            LABEL
                            ".weight_decay_exclude_1d: contradicts filter_bias_and_bn "
                            "(the same switch; give one of the two)");
    t->exclude_1d = ex ? ex->v.b : fbb ? fbb->v.b : true;
    int rc = add_patterns(&t->nwd, &t->n_nwd,
                          ow_model_get_facts(ctx->model, "no_weight_decay"), false,
                          "model no_weight_decay", err);
    if (!rc)
        rc = add_patterns(&t->nwd, &t->n_nwd, ow__cfg_map_get(pw, "no_weight_decay"),
                          true, LABEL ".no_weight_decay", err);
    if (!rc)
        rc = add_patterns(&t->fb, &t->n_fb, ow__cfg_map_get(pw, "fallback_list"), true,
                          LABEL ".fallback_list", err);
    const ow_cfg *fnwd = ow__cfg_map_get(pw, "fallback_no_weight_decay");
    if (!rc && fnwd && fnwd->v.b)
        rc = add_patterns(&t->fb, &t->n_fb, ow__cfg_map_get(pw, "no_weight_decay"), false,
                          LABEL ".no_weight_decay", err);
    if (!rc && fnwd && fnwd->v.b)
        rc = add_patterns(&t->fb, &t->n_fb,
                          ow_model_get_facts(ctx->model, "no_weight_decay"), false,
                          "model no_weight_decay", err);
    return rc;
}

static int warn_unused(const pattern *ps, size_t n, const char *what, ow_groups *g,
                       ow_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!ps[i].from_config || ps[i].hits)
            continue;
        char msg[OW_ERROR_TEXT_LEN];
        snprintf(msg, sizeof msg, LABEL ".%s: pattern '%s' matches no parameter", what,
                 ps[i].text);
        int rc = ow_groups_add_warning(g, ps[i].node, msg, err);
        if (rc)
            return rc;
    }
    return OW_OK;
}

static int layers_for(const ow_constructor_ctx *ctx, tg *t, ow_groups *g, ow_error *err)
{
    const ow_cfg *m = ow__cfg_map_get(t->pw, "group_matcher");
    const char *label = LABEL ".group_matcher";
    if (!m || m->type == OW_CFG_NULL) {
        m = ow_model_get_facts(ctx->model, "group_matcher");
        label = "model group_matcher";
    }
    if (m && m->type == OW_CFG_NULL)
        m = NULL;
    const ow_cfg *pcfg = ow_model_get_facts(ctx->model, "pretrained_cfg");
    const ow_cfg *classifier = ow__cfg_map_get(pcfg, "classifier");
    int rc = ow__timm_layers_build(ctx->model, m, label, classifier, &t->layers, err);
    if (rc || m || (classifier && classifier->type != OW_CFG_NULL))
        return rc;
    return ow_groups_add_warning(g, ow__cfg_map_get(t->pw, "layer_decay"),
                                 LABEL
                                 ".layer_decay: the model has no group_matcher and no "
                                 "pretrained_cfg.classifier, so timm's "
                                 "auto_group_layers counts every parameter as head: "
                                 "one layer id, lr_scale 1 everywhere (layer decay "
                                 "does nothing)",
                                 err);
}

static int timm_build(const ow_constructor_ctx *ctx, ow_groups *g, ow_error *err)
{
    static const ow_cfg empty = {.type = OW_CFG_MAP};
    tg t = {.pw = ctx->paramwise_cfg ? ctx->paramwise_cfg : &empty};
    /* create_optimizer_v2(weight_decay=0.) */
    t.wd = ow__num_or_null(ctx->optimizer, "weight_decay");
    if (!t.wd)
        t.wd = &zero;
    const ow_cfg *decay = ow__num_or_null(t.pw, "layer_decay");
    int rc = read_cfg(ctx, &t, err);
    if (!rc && decay) {
        const ow_cfg *min_scale = ow__num_or_null(t.pw, "layer_decay_min_scale");
        if (!(rc = layers_for(ctx, &t, g, err)))
            rc = make_scales(&t, decay, min_scale ? min_scale : &zero, err);
        if (!rc)
            rc = layer_decay_groups(&t, ctx->model, decay, g, err);
    } else if (!rc) {
        rc = weight_decay_groups(&t, ctx->model, g, err);
    }
    if (!rc)
        rc = warn_unused(t.nwd, t.n_nwd, "no_weight_decay", g, err);
    if (!rc)
        rc = warn_unused(t.fb, t.n_fb, "fallback_list", g, err);
    g->apply_lr_scale = true;
    free_tg(&t);
    return rc;
}

static const ow_constructor_ops timm_ops = {.build = timm_build};

const ow_entry ow__constructor_timm = {
    .abi_version = OW_ABI_VERSION,
    .name = NAME,
    .kind = OW_KIND_CONSTRUCTOR,
    .scope = "timm",
    .summary =
        "timm create_optimizer_v2 grouping: no-decay for 1-D / bias / no_weight_decay, "
        "layer decay by group_matcher with lr_scale",
    .keys = timm_keys,
    .ops = &timm_ops,
};
