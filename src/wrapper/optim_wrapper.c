/* optim_wrapper.c -- the optim_wrapper registry entries (mmengine's OptimWrapper and
 * AmpOptimWrapper) and the validation of their own keys, in depth: clip_grad as
 * torch's clip_grad_norm_/clip_grad_value_ take it, loss_scale as GradScaler does. */
#include "wrapper_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The rows both wrappers have (build_optim_wrapper and OptimWrapper.__init__). */
#define OPTIM_WRAPPER_KEYS                                                               \
    {.name = "optimizer",                                                                \
     .type = OW_T_MAP,                                                                   \
     .flags = OW_KEY_REQUIRED,                                                           \
     .doc = "the optimizer config: `type` and its hyperparameters"},                     \
        {.name = "paramwise_cfg",                                                        \
         .type = OW_T_MAP,                                                               \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "per-parameter rules, read by the constructor"},                         \
        {.name = "constructor",                                                          \
         .type = OW_T_STRING,                                                            \
         .def = "DefaultOptimWrapperConstructor",                                        \
         .doc = "the constructor that builds the param groups"},                         \
        {.name = "accumulative_counts",                                                  \
         .type = OW_T_INT,                                                               \
         .def = "1",                                                                     \
         .min = 1,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "iterations over which gradients are accumulated before a step"},        \
        {.name = "clip_grad",                                                            \
         .type = OW_T_MAP,                                                               \
         .def = "null",                                                                  \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "gradient clipping: {max_norm: ..., norm_type: 2} or {type: value, "     \
                "clip_value: ...}"},                                                     \
        {.name = "skip_nonfinite",                                                       \
         .type = OW_T_BOOL,                                                              \
         .def = "false",                                                                 \
         .doc = "optwrap: skip a step whose gradients hold inf or nan (mmengine steps "  \
                "anyway; AmpOptimWrapper always skips)"},                                \
        {.name = "zero_stage",                                                           \
         .type = OW_T_INT,                                                               \
         .def = "0",                                                                     \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "optwrap: data-parallel runs (ow_optim_wrapper_set_dist): 1 shards the " \
                "optimizer state over the ranks, 2 the gradient sums too (ZeRO); one "   \
                "process runs the plain optimizer"},                                     \
    {                                                                                    \
        .name = "grad_dtype", .type = OW_T_STRING, .def = "float32",                     \
        .doc =                                                                           \
            "optwrap: the host's gradients, float32, bfloat16 or float16 (bound with "   \
            "ow_model_set_grad_half): the optimizer reads half ones directly, "          \
            "unscaled and clipped as it reads them, as their float32 values"             \
    }

static const ow_key optim_wrapper_keys[] = {OPTIM_WRAPPER_KEYS, {0}};

static const ow_key amp_keys[] = {
    OPTIM_WRAPPER_KEYS,
    {.name = "loss_scale",
     .type = OW_T_ANY,
     .def = "dynamic",
     .doc = "'dynamic' (GradScaler's defaults), a float (a constant scale), or "
            "{init_scale, growth_factor, backoff_factor, growth_interval, enabled}"},
    {.name = "dtype",
     .type = OW_T_STRING,
     .def = "null",
     .flags = OW_KEY_NULLABLE,
     .doc = "the host's compute dtype: float16 or bfloat16 lets it bind half-precision "
            "parameters and gradients (ow_optim_wrapper_bind_half; fp32 master weights "
            "stay in optwrap); float32, float64 or null: fp32 buffers"},
    {.name = "use_fsdp",
     .type = OW_T_BOOL,
     .def = "false",
     .doc = "FSDP's sharded grad scaler (refused: optwrap runs no FSDP)"},
    {0},
};

const ow_entry ow__optim_wrapper_default = {
    .abi_version = OW_ABI_VERSION,
    .name = "OptimWrapper",
    .kind = OW_KIND_OPTIM_WRAPPER,
    .scope = "mmengine",
    .summary = "mmengine: steps the optimizer, with gradient accumulation and clipping",
    .keys = optim_wrapper_keys,
};

const ow_entry ow__optim_wrapper_amp = {
    .abi_version = OW_ABI_VERSION,
    .name = "AmpOptimWrapper",
    .kind = OW_KIND_OPTIM_WRAPPER,
    .scope = "mmengine",
    .summary = "mmengine: OptimWrapper with torch GradScaler's dynamic loss scaling",
    .keys = amp_keys,
};

static const ow_key clip_norm_keys[] = {
    {.name = "type", .type = OW_T_STRING, .def = "norm", .doc = "norm or value"},
    {.name = "max_norm",
     .type = OW_T_NUMBER,
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE,
     .doc = "the largest total norm the gradients keep"},
    {.name = "norm_type",
     .type = OW_T_ANY,
     .def = "2.0",
     .doc = "p of the p-norm: a number >= 0, or inf (the largest |g|)"},
    {.name = "error_if_nonfinite",
     .type = OW_T_BOOL,
     .def = "false",
     .doc = "fail when the total norm is inf or nan instead of scaling by it"},
    OW__KEY_FOREACH,
    {0},
};

static const ow_key clip_value_keys[] = {
    {.name = "type", .type = OW_T_STRING, .def = "norm", .doc = "norm or value"},
    {.name = "clip_value",
     .type = OW_T_NUMBER,
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE,
     .doc = "gradients are clamped to [-clip_value, clip_value]"},
    OW__KEY_FOREACH,
    {0},
};

static const ow_key scaler_keys[] = {
    {.name = "init_scale",
     .type = OW_T_NUMBER,
     .def = "65536.0",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,
     .doc = "the first loss scale"},
    {.name = "growth_factor",
     .type = OW_T_NUMBER,
     .def = "2.0",
     .min = 1,
     .max = INFINITY,
     .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,
     .doc = "the scale is multiplied by it after growth_interval finite steps"},
    {.name = "backoff_factor",
     .type = OW_T_NUMBER,
     .def = "0.5",
     .min = 0,
     .max = 1,
     .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN | OW_KEY_MAX_OPEN,
     .doc = "the scale is multiplied by it after a step with inf or nan gradients"},
    {.name = "growth_interval",
     .type = OW_T_INT,
     .def = "2000",
     .min = 1,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "finite steps in a row before the scale grows"},
    {.name = "enabled",
     .type = OW_T_BOOL,
     .def = "true",
     .doc = "false: no scaling at all (scale 1, no skipped steps)"},
    {0},
};

static double number(const ow_cfg *v)
{
    return v->type == OW_CFG_INT ? (double)v->v.i : v->v.d;
}

/* A key's value in map, else its row's default (every row used here has one). */
static double num_or_default(const ow_cfg *map, const ow_key *keys, const char *name)
{
    const ow_cfg *v = ow__cfg_map_get(map, name);
    if (v)
        return number(v);
    const ow_key *k = ow__schema_find(keys, name);
    return strtod(k->def, NULL);
}

static bool bool_or(const ow_cfg *map, const char *name, bool fallback)
{
    const ow_cfg *v = ow__cfg_map_get(map, name);
    return v && v->type == OW_CFG_BOOL ? v->v.b : fallback;
}

static int parse_clip(const ow_cfg *clip, ow__wrapper_opts *o, ow_error *err)
{
    if (!clip || clip->type == OW_CFG_NULL) {
        o->clip = OW__CLIP_NONE;
        return OW_OK;
    }
    if (clip->v.c.n == 0)
        return ow__error_at(err, OW_ERR_VALUE, clip,
                            "optim_wrapper.clip_grad: an empty map (give max_norm, or "
                            "type: value and clip_value; null disables clipping)");
    const ow_cfg *type = ow__cfg_map_get(clip, "type");
    const char *t = "norm";
    int rc;
    if (type && (rc = ow_cfg_get_string(type, &t, err)))
        return rc;
    if (strcmp(t, "norm") && strcmp(t, "value"))
        return ow__error_at(err, OW_ERR_VALUE, type,
                            "optim_wrapper.clip_grad.type: should be \"norm\" or "
                            "\"value\", got \"%s\"",
                            t);
    if (clip->v.c.n == (type ? 1u : 0u))
        return ow__error_at(err, OW_ERR_MISSING_KEY, clip,
                            "optim_wrapper.clip_grad: `clip_grad` should contain other "
                            "arguments besides `type` (%s)",
                            strcmp(t, "norm") ? "clip_value" : "max_norm");
    bool norm = !strcmp(t, "norm");
    const ow_key *keys = norm ? clip_norm_keys : clip_value_keys;
    if ((rc = ow__schema_check(clip, keys, "optim_wrapper.clip_grad", NULL, err)))
        return rc;
    if (!norm) {
        o->clip = OW__CLIP_VALUE;
        o->clip_value = number(ow__cfg_map_get(clip, "clip_value"));
        return OW_OK;
    }
    o->clip = OW__CLIP_NORM;
    o->max_norm = number(ow__cfg_map_get(clip, "max_norm"));
    o->error_if_nonfinite = bool_or(clip, "error_if_nonfinite", false);
    o->norm_type = 2.0;
    const ow_cfg *p = ow__cfg_map_get(clip, "norm_type");
    if (p && p->type == OW_CFG_STRING && !strcmp(p->v.s, "inf"))
        o->norm_type = INFINITY;
    else if (p && (p->type == OW_CFG_INT || p->type == OW_CFG_FLOAT) && number(p) >= 0 &&
             !isnan(number(p)))
        o->norm_type = number(p);
    else if (p)
        return ow__error_at(err, OW_ERR_VALUE, p,
                            "optim_wrapper.clip_grad.norm_type: expected a number >= 0 "
                            "or inf (.inf in YAML)");
    return OW_OK;
}

static int parse_loss_scale(const ow_cfg *ls, ow__wrapper_opts *o, ow_error *err)
{
    o->scaler_enabled = true;
    o->dynamic = true;
    o->init_scale = 65536.0;
    o->growth_factor = 2.0;
    o->backoff_factor = 0.5;
    o->growth_interval = 2000;
    if (!ls || (ls->type == OW_CFG_STRING && !strcmp(ls->v.s, "dynamic")))
        return OW_OK;
    if (ls->type == OW_CFG_FLOAT) {
        if (!(ls->v.d > 0) || isinf(ls->v.d))
            return ow__error_at(err, OW_ERR_RANGE, ls,
                                "optim_wrapper.loss_scale: a constant scale must be a "
                                "finite number > 0");
        o->dynamic = false;
        o->init_scale = ls->v.d;
        return OW_OK;
    }
    if (ls->type == OW_CFG_MAP) {
        int rc = ow__schema_check(ls, scaler_keys, "optim_wrapper.loss_scale", NULL, err);
        if (rc)
            return rc;
        o->init_scale = num_or_default(ls, scaler_keys, "init_scale");
        o->growth_factor = num_or_default(ls, scaler_keys, "growth_factor");
        o->backoff_factor = num_or_default(ls, scaler_keys, "backoff_factor");
        o->growth_interval = (int64_t)num_or_default(ls, scaler_keys, "growth_interval");
        o->scaler_enabled = bool_or(ls, "enabled", true);
        return OW_OK;
    }
    if (ls->type == OW_CFG_INT)
        return ow__error_at(err, OW_ERR_TYPE, ls,
                            "optim_wrapper.loss_scale: must be a float, a map or "
                            "\"dynamic\", got the int %lld (mmengine rejects an int: "
                            "write %lld.0)",
                            (long long)ls->v.i, (long long)ls->v.i);
    return ow__error_at(err, OW_ERR_TYPE, ls,
                        "optim_wrapper.loss_scale: must be a float, a map or "
                        "\"dynamic\", got %s",
                        ls->type == OW_CFG_STRING ? "another string"
                                                  : ow_cfg_type_name(ls->type));
}

static int parse_amp(const ow_cfg *node, ow__wrapper_opts *o, ow_error *err)
{
    const ow_cfg *dtype = ow__cfg_map_get(node, "dtype");
    static const char *const dtypes[] = {"float16", "bfloat16", "float32", "float64",
                                         NULL};
    if (dtype && dtype->type == OW_CFG_STRING) {
        bool known = false;
        for (const char *const *d = dtypes; *d; d++)
            known = known || !strcmp(*d, dtype->v.s);
        if (!known)
            return ow__error_at(err, OW_ERR_VALUE, dtype,
                                "optim_wrapper.dtype: should be any of float16, "
                                "bfloat16, float32, float64, got '%s'",
                                dtype->v.s);
        o->half = !strcmp(dtype->v.s, "float16")    ? OW__HALF_F16
                  : !strcmp(dtype->v.s, "bfloat16") ? OW__HALF_BF16
                                                    : OW__HALF_NONE;
    }
    if (bool_or(node, "use_fsdp", false))
        return ow__error_at(err, OW_ERR_UNSUPPORTED, ow__cfg_map_get(node, "use_fsdp"),
                            "optim_wrapper.use_fsdp: optwrap runs no FSDP (its sharded "
                            "grad scaler needs torch.distributed); remove the key");
    o->amp = true;
    return parse_loss_scale(ow__cfg_map_get(node, "loss_scale"), o, err);
}

int ow__wrapper_parse(const ow_cfg *node, const ow_entry *e, ow__wrapper_opts *out,
                      ow_error *err)
{
    static const char *const type_only[] = {"type", NULL};
    int rc = ow__schema_check(node, e->keys, "optim_wrapper", type_only, err);
    if (rc)
        return rc;
    ow__wrapper_opts o = {.acc = 1, .scaler_enabled = false, .init_scale = 1.0};
    const ow_cfg *acc = ow__cfg_map_get(node, "accumulative_counts");
    if (acc)
        o.acc = acc->v.i;
    o.skip_nonfinite = bool_or(node, "skip_nonfinite", false);
    const ow_cfg *gd = ow__cfg_map_get(node, "grad_dtype");
    if (gd && gd->type == OW_CFG_STRING) {
        static const char *const names[] = {"float32", "bfloat16", "float16"};
        int k = 0;
        while (k < 3 && strcmp(names[k], gd->v.s))
            k++;
        if (k == 3)
            return ow__error_at(err, OW_ERR_VALUE, gd,
                                "optim_wrapper.grad_dtype: should be any of float32, "
                                "bfloat16, float16, got '%s'",
                                gd->v.s);
        o.grad_dtype = k == 1 ? OW_GRAD_BF16 : k == 2 ? OW_GRAD_F16 : OW_GRAD_F32;
    }
    const ow_cfg *zs = ow__cfg_map_get(node, "zero_stage");
    if (zs && zs->v.i > 2)
        return ow__error_at(err, OW_ERR_UNSUPPORTED, zs,
                            "optim_wrapper.zero_stage: stage %lld shards the parameters "
                            "too; optwrap keeps every parameter on every rank (stages 0, "
                            "1 and 2)",
                            (long long)zs->v.i);
    /* mmengine's ZeroRedundancyOptimizer: stage 1 (2 where the key says so) */
    const ow_cfg *opt = ow__cfg_map_get(node, "optimizer");
    bool zro = opt && opt->type == OW_CFG_MAP && ow__optimizer_is_zero(opt);
    if (zro && zs && zs->v.i == 0)
        return ow__error_at(err, OW_ERR_VALUE, zs,
                            "optim_wrapper.zero_stage: 0 contradicts the optimizer's "
                            "type ZeroRedundancyOptimizer (which shards its state: stage "
                            "1); give 1 or 2, or the optimizer_type as the type");
    o.zero_stage = zs ? zs->v.i : zro ? 1 : 0;
    if ((rc = parse_clip(ow__cfg_map_get(node, "clip_grad"), &o, err)))
        return rc;
    if (e == &ow__optim_wrapper_amp && (rc = parse_amp(node, &o, err)))
        return rc;
    if (o.half != OW__HALF_NONE && o.grad_dtype != OW_GRAD_F32)
        return ow__error_at(err, OW_ERR_VALUE, gd,
                            "optim_wrapper.grad_dtype: an AmpOptimWrapper with dtype "
                            "float16 or bfloat16 takes the host's half gradients itself "
                            "(ow_optim_wrapper_bind_half); remove grad_dtype");
    if (out)
        *out = o;
    return OW_OK;
}

int ow__wrapper_resolve(const ow_cfg *config, const ow_cfg *node, const ow_entry **entry,
                        ow__wrapper_opts *out, ow_error *err)
{
    const char *scope;
    const ow_cfg *wtype = ow__cfg_map_get(node, "type");
    const ow_entry *e = NULL;
    int rc = ow__cfg_scope(config, &scope, err);
    if (rc)
        return rc;
    if (wtype)
        rc = ow__registry_lookup(OW_KIND_OPTIM_WRAPPER, wtype, scope, &e, err);
    else if (!(e = ow_registry_find(OW_KIND_OPTIM_WRAPPER, "OptimWrapper")))
        rc = ow__error_at(err, OW_ERR_UNKNOWN_TYPE, node,
                          "OptimWrapper is not registered");
    if (rc)
        return rc;
    ow__wrapper_opts ds;
    if (e == &ow__optim_wrapper_deepspeed) {
        if ((rc = ow__wrapper_parse_deepspeed(config, node, out ? out : &ds, err)))
            return rc;
    } else if (e != &ow__optim_wrapper_default && e != &ow__optim_wrapper_amp) {
        /* a run-time entry: its schema is all optwrap knows of it */
        static const char *const type_only[] = {"type", NULL};
        if ((rc = ow__schema_check(node, e->keys, "optim_wrapper", type_only, err)))
            return rc;
        if (out)
            return ow__error_at(err, OW_ERR_UNSUPPORTED, wtype,
                                "optim_wrapper type '%s' has no implementation in "
                                "optwrap (only its schema)",
                                e->name);
    } else if ((rc = ow__wrapper_parse(node, e, out, err))) {
        return rc;
    }
    if (entry)
        *entry = e;
    return OW_OK;
}

bool ow__wrapper_is_dict(const ow_cfg *node)
{
    if (!node || node->type != OW_CFG_MAP || ow__cfg_map_get(node, "optimizer"))
        return false;
    const ow_cfg *ctor = ow__cfg_map_get(node, "constructor");
    if (ctor && (ctor->type != OW_CFG_STRING ||
                 (strcmp(ctor->v.s, "MultiOptimWrapperConstructor") &&
                  strcmp(ctor->v.s, "mmagic.MultiOptimWrapperConstructor"))))
        return false;
    for (size_t i = 0; i < node->v.c.n; i++)
        if (node->v.c.items[i]->type == OW_CFG_MAP)
            return true;
    return false;
}
