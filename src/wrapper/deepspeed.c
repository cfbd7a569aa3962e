/* deepspeed.c -- mmengine's DeepSpeedOptimWrapper with the config's top-level
 * `strategy: {type: DeepSpeedStrategy, ...}` (mmpretrain's MAE ViT-H/L benchmarks): the
 * ZeRO stage from zero_optimization, accumulation and clipping from
 * gradient_accumulation_steps and gradient_clipping, and with fp16 DeepSpeed's own
 * dynamic loss scaler (DynamicLossScaler: hysteresis, a window since the last overflow,
 * a floor at whose overflow DeepSpeed stops the run). Keys that only tune DeepSpeed's
 * communication or the host's inputs are accepted (no result changes); keys optwrap
 * cannot honour are refused with the reason. */
#include "wrapper_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const ow_key ds_wrapper_keys[] = {
    {.name = "optimizer",
     .type = OW_T_MAP,
     .flags = OW_KEY_REQUIRED,
     .doc = "the optimizer config: `type` and its hyperparameters"},
    {.name = "paramwise_cfg",
     .type = OW_T_MAP,
     .flags = OW_KEY_NULLABLE,
     .doc = "per-parameter rules, read by the constructor"},
    {.name = "constructor",
     .type = OW_T_STRING,
     .def = "DefaultOptimWrapperConstructor",
     .doc = "the constructor that builds the param groups"},
    {0},
};

const ow_entry ow__optim_wrapper_deepspeed = {
    .abi_version = OW_ABI_VERSION,
    .name = "DeepSpeedOptimWrapper",
    .kind = OW_KIND_OPTIM_WRAPPER,
    .scope = "mmengine",
    .summary = "mmengine: DeepSpeed's engine steps; the top-level strategy "
               "(DeepSpeedStrategy) gives the ZeRO stage, fp16 loss scaler, accumulation "
               "and clipping",
    .keys = ds_wrapper_keys,
};

#define RANGE(lo) .min = lo, .max = INFINITY, .flags = OW_KEY_RANGE
#define COMM(n, t)                                                                       \
    {                                                                                    \
        .name = n, .type = t, .doc = "DeepSpeed's communication only: accepted"          \
    }

static const ow_key strategy_keys[] = {
    {.name = "type", .type = OW_T_STRING, .doc = "DeepSpeedStrategy"},
    {.name = "fp16", .type = OW_T_MAP, .doc = "DeepSpeed's fp16 mode and loss scaler"},
    {.name = "bf16", .type = OW_T_MAP, .doc = "{enabled}: bfloat16, no loss scaling"},
    {.name = "zero_optimization", .type = OW_T_MAP, .doc = "{stage: 0, 1 or 2, ...}"},
    {.name = "gradient_accumulation_steps",
     .type = OW_T_INT,
     RANGE(1),
     .doc = "micro-batches per step"},
    {.name = "gradient_clipping",
     .type = OW_T_NUMBER,
     RANGE(0),
     .doc = "the largest global 2-norm of the gradients (0: none)"},
    {.name = "inputs_to_half", .type = OW_T_ANY, .doc = "the host's inputs: accepted"},
    {.name = "train_micro_batch_size_per_gpu",
     .type = OW_T_INT,
     .doc = "the host's data loader: accepted"},
    {.name = "steps_per_print", .type = OW_T_INT, .doc = "logging only: accepted"},
    {0},
};

static const ow_key fp16_keys[] = {
    {.name = "enabled", .type = OW_T_BOOL, .def = "false", .doc = "fp16 training"},
    {.name = "fp16_master_weights_and_grads",
     .type = OW_T_BOOL,
     .def = "false",
     .doc = "fp16 master weights (refused: optwrap keeps them in fp32)"},
    {.name = "loss_scale",
     .type = OW_T_NUMBER,
     RANGE(0),
     .def = "0",
     .doc = "0: dynamic; else a constant loss scale"},
    {.name = "initial_scale_power",
     .type = OW_T_INT,
     .min = 0,
     .max = 1023, /* 2.0 ** 1024 overflows */
     .flags = OW_KEY_RANGE,
     .def = "16",
     .doc = "the dynamic scale starts at 2^initial_scale_power"},
    {.name = "loss_scale_window",
     .type = OW_T_INT,
     RANGE(1),
     .def = "1000",
     .doc = "steps without overflow (since the last one) before the scale doubles"},
    {.name = "hysteresis",
     .type = OW_T_INT,
     RANGE(1),
     .def = "2",
     .doc = "overflows tolerated before the scale halves"},
    {.name = "consecutive_hysteresis",
     .type = OW_T_BOOL,
     .def = "false",
     .doc = "refill the hysteresis after every good step (else at each growth)"},
    {.name = "min_loss_scale",
     .type = OW_T_NUMBER,
     RANGE(0),
     .def = "1",
     .doc = "the scale's floor; an overflow at it stops the run"},
    {.name = "auto_cast", .type = OW_T_BOOL, .doc = "the host's inputs: accepted"},
    {0},
};

static const ow_key zero_keys[] = {
    {.name = "stage", .type = OW_T_INT, RANGE(0), .def = "0", .doc = "ZeRO stage"},
    COMM("allgather_partitions", OW_T_BOOL),
    COMM("reduce_scatter", OW_T_BOOL),
    COMM("allgather_bucket_size", OW_T_NUMBER),
    COMM("reduce_bucket_size", OW_T_NUMBER),
    COMM("overlap_comm", OW_T_BOOL),
    COMM("contiguous_gradients", OW_T_BOOL),
    COMM("round_robin_gradients", OW_T_BOOL),
    {.name = "cpu_offload", .type = OW_T_BOOL, .doc = "refused when true"},
    {.name = "offload_optimizer", .type = OW_T_MAP, .doc = "refused"},
    {.name = "offload_param", .type = OW_T_MAP, .doc = "refused"},
    {0},
};

static double num(const ow_cfg *map, const ow_key *keys, const char *name)
{
    const ow_cfg *v = ow__cfg_map_get(map, name);
    if (v)
        return v->type == OW_CFG_INT ? (double)v->v.i : v->v.d;
    const ow_key *k = ow__schema_find(keys, name);
    return k->def ? strtod(k->def, NULL) : 0;
}

static bool flag(const ow_cfg *map, const char *name)
{
    const ow_cfg *v = ow__cfg_map_get(map, name);
    return v && v->type == OW_CFG_BOOL && v->v.b;
}

static int parse_zero(const ow_cfg *z, ow__wrapper_opts *o, ow_error *err)
{
    int rc = ow__schema_check(z, zero_keys, "strategy.zero_optimization", NULL, err);
    if (rc)
        return rc;
    const ow_cfg *stage = ow__cfg_map_get(z, "stage");
    if (stage && stage->v.i > 2)
        return ow__error_at(err, OW_ERR_UNSUPPORTED, stage,
                            "strategy.zero_optimization.stage: stage %lld shards the "
                            "parameters too; optwrap keeps every parameter on every rank "
                            "(stages 0, 1 and 2)",
                            (long long)stage->v.i);
    static const char *const offload[] = {"offload_optimizer", "offload_param", NULL};
    for (const char *const *k = offload; *k; k++) {
        const ow_cfg *v = ow__cfg_map_get(z, *k), *dev = ow__cfg_map_get(v, "device");
        if (v && !(dev && dev->type == OW_CFG_STRING && !strcmp(dev->v.s, "none")))
            return ow__error_at(err, OW_ERR_UNSUPPORTED, v,
                                "strategy.zero_optimization.%s: optwrap steps the state "
                                "where it lies (host memory already); remove the key or "
                                "give device: none",
                                *k);
    }
    if (flag(z, "cpu_offload"))
        return ow__error_at(err, OW_ERR_UNSUPPORTED, ow__cfg_map_get(z, "cpu_offload"),
                            "strategy.zero_optimization.cpu_offload: optwrap steps the "
                            "state where it lies (host memory already) and has no "
                            "offload engine; set it to false");
    o->zero_stage = stage ? stage->v.i : 0;
    return OW_OK;
}

static int parse_fp16(const ow_cfg *f, ow__wrapper_opts *o, ow_error *err)
{
    int rc = ow__schema_check(f, fp16_keys, "strategy.fp16", NULL, err);
    if (rc || !flag(f, "enabled"))
        return rc;
    if (flag(f, "fp16_master_weights_and_grads"))
        return ow__error_at(err, OW_ERR_UNSUPPORTED,
                            ow__cfg_map_get(f, "fp16_master_weights_and_grads"),
                            "strategy.fp16.fp16_master_weights_and_grads: optwrap keeps "
                            "fp32 master weights and gradient sums; set it to false");
    o->amp = o->scaler_enabled = o->ds_scaler = true;
    double ls = num(f, fp16_keys, "loss_scale");
    o->dynamic = ls == 0;
    o->init_scale =
        o->dynamic ? ldexp(1.0, (int)num(f, fp16_keys, "initial_scale_power")) : ls;
    o->growth_factor = 2.0; /* DeepSpeed's scale_factor */
    o->backoff_factor = 0.5;
    o->growth_interval = (int64_t)num(f, fp16_keys, "loss_scale_window");
    o->ds_hysteresis = (int64_t)num(f, fp16_keys, "hysteresis");
    o->ds_consecutive = flag(f, "consecutive_hysteresis");
    o->ds_min_scale = num(f, fp16_keys, "min_loss_scale");
    return OW_OK;
}

int ow__wrapper_parse_deepspeed(const ow_cfg *config, const ow_cfg *node,
                                ow__wrapper_opts *o, ow_error *err)
{
    static const char *const type_only[] = {"type", NULL};
    int rc = ow__schema_check(node, ds_wrapper_keys, "optim_wrapper", type_only, err);
    const ow_cfg *s = ow__cfg_map_get(config, "strategy");
    if (rc)
        return rc;
    if (!s || s->type != OW_CFG_MAP)
        return ow__error_at(err, s ? OW_ERR_TYPE : OW_ERR_MISSING_KEY, s ? s : node,
                            "optim_wrapper: DeepSpeedOptimWrapper runs under a top-level "
                            "`strategy: {type: DeepSpeedStrategy, ...}` map");
    if ((rc = ow__schema_check(s, strategy_keys, "strategy", NULL, err)))
        return rc;
    const ow_cfg *t = ow__cfg_map_get(s, "type");
    if (!t || t->type != OW_CFG_STRING ||
        (strcmp(t->v.s, "DeepSpeedStrategy") &&
         strcmp(t->v.s, "mmengine.DeepSpeedStrategy")))
        return ow__error_at(
            err, OW_ERR_VALUE, t ? t : s,
            "strategy.type: DeepSpeedOptimWrapper needs DeepSpeedStrategy");
    *o = (ow__wrapper_opts){.acc = 1, .init_scale = 1.0, .deepspeed = true};
    o->acc = (int64_t)num(s, strategy_keys, "gradient_accumulation_steps");
    if (o->acc < 1)
        o->acc = 1;
    double clip = num(s, strategy_keys, "gradient_clipping");
    if (clip > 0) {
        o->clip = OW__CLIP_NORM;
        o->max_norm = clip;
        o->norm_type = 2.0;
    }
    const ow_cfg *z = ow__cfg_map_get(s, "zero_optimization"),
                 *f = ow__cfg_map_get(s, "fp16"), *b = ow__cfg_map_get(s, "bf16");
    if (z && (rc = parse_zero(z, o, err)))
        return rc;
    if (f && (rc = parse_fp16(f, o, err)))
        return rc;
    if (b && flag(b, "enabled") && o->ds_scaler)
        return ow__error_at(err, OW_ERR_VALUE, b,
                            "strategy: fp16 and bf16 are both enabled (DeepSpeed refuses "
                            "it too)");
    if (b && flag(b, "enabled")) {
        o->amp = true; /* bfloat16: no loss scaling, nothing skipped */
        o->half = OW__HALF_BF16;
    }
    return OW_OK;
}

/* DeepSpeed's DynamicLossScaler.update_scale after a window (an overflow skipped the
 * step); w->tracker counts its cur_iter, last_overflow and hysteresis live beside. */
int ow__wrapper_ds_update(ow_optim_wrapper *w, bool overflow, ow_error *err)
{
    const ow__wrapper_opts *o = &w->o;
    if (!o->dynamic)
        return OW_OK;
    if (overflow) {
        if (o->ds_hysteresis == 1 || w->ds_hyst == 1) {
            if ((double)w->scale == o->ds_min_scale)
                return ow__error(err, OW_ERR_VALUE, NULL, 0, 0,
                                 "strategy.fp16: an overflow at the minimum loss scale "
                                 "%g (min_loss_scale): DeepSpeed stops the run here",
                                 o->ds_min_scale);
            double next = (double)w->scale / 2.0;
            w->scale = (float)(next > o->ds_min_scale ? next : o->ds_min_scale);
        } else {
            w->ds_hyst--;
        }
        w->ds_last_overflow = w->tracker;
    } else {
        if (o->ds_consecutive)
            w->ds_hyst = o->ds_hysteresis;
        if ((w->tracker - w->ds_last_overflow) % o->growth_interval == 0) {
            if (!o->ds_consecutive)
                w->ds_hyst = o->ds_hysteresis;
            w->scale = (float)((double)w->scale * 2.0);
        }
    }
    w->tracker++;
    return OW_OK;
}
