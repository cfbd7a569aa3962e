/* optim_wrapper.c -- mmengine's OptimWrapper, the plain wrapper: its config schema
 * (the keys build_optim_wrapper and OptimWrapper.__init__ accept). Stepping,
 * accumulation and clipping come later. */
#include "../internal.h"

#include <math.h>

static const ow_key optim_wrapper_keys[] = {
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
    {.name = "accumulative_counts",
     .type = OW_T_INT,
     .def = "1",
     .min = 1,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "iterations over which gradients are accumulated before a step"},
    {.name = "clip_grad",
     .type = OW_T_MAP,
     .def = "null",
     .flags = OW_KEY_NULLABLE,
     .doc = "gradient clipping: {max_norm: ..., norm_type: 2} or {type: value, "
            "clip_value: ...}"},
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
