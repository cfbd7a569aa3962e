/* model_internal.h -- what the model tree's files share with the rest of the library:
 * add calls that say which field they rejected (so the YAML loader can point at that
 * node), and model-level facts for the built-in architectures. */
#ifndef OW_MODEL_INTERNAL_H
#define OW_MODEL_INTERNAL_H

#include "../internal.h"

/* The field of an ow_module_info / ow_param_info that an add call rejected. */
typedef enum ow__model_field {
    OW__FIELD_NONE,
    OW__FIELD_NAME,
    OW__FIELD_TYPE,
    OW__FIELD_KIND,
    OW__FIELD_IN_CHANNELS,
    OW__FIELD_OUT_CHANNELS,
    OW__FIELD_GROUPS,
    OW__FIELD_MODULE,
    OW__FIELD_SHAPE,
    OW__FIELD_REQUIRES_GRAD,
    OW__FIELD_SHARED,
    OW__FIELD_DATA
} ow__model_field;

/* ow_model_add_module / ow_model_add_param, also storing in *field (may be NULL) the
 * field at fault when they fail (OW__FIELD_NONE for a failure of no field, NOMEM). */
int ow__model_add_module(ow_model *model, const ow_module_info *info,
                         ow__model_field *field, ow_error *err);
int ow__model_add_param(ow_model *model, const ow_param_info *info,
                        ow__model_field *field, ow_error *err);

/* Records a model warning (code OW_ERR_MODEL, file "<model>", no position);
 * OW_ERR_NOMEM when it cannot. The last one, writable (the YAML loader positions it at
 * the node at fault), or NULL. */
int ow__model_add_warning(ow_model *model, const char *fmt, ...) OW__PRINTF(2, 3);
ow_error *ow__model_last_warning(ow_model *model);

/* The full name of the first occurrence of occurrence i's tensor (itself when it is not
 * shared), or NULL when i is out of range. */
const char *ow__model_get_tensor_name(const ow_model *model, size_t i);

/* Sets a model-level fact (`no_weight_decay`, `group_matcher`, ...), replacing an
 * earlier value of the same key in place. Takes ownership of value, even on failure. */
int ow__model_set_fact(ow_model *model, const char *key, ow_cfg *value_taken);

/* The map of all facts (borrowed; never NULL for a model made by ow_model_new). */
const ow_cfg *ow__model_facts(const ow_model *model);

/* The module names of the five kinds, indexed by ow_module_kind ("other", "norm",
 * "conv", "linear", "embedding"); NULL for a value out of range. */
const char *ow__module_kind_name(ow_module_kind kind);

/* A counter bumped by every change to the params or their data/grad pointers (added
 * params, ow_model_set_data): callers that cache pointers compare it to rebuild. */
unsigned long ow__model_generation(const ow_model *model);
/* What the grad pointer of occurrence index points to (ow_model_set_grad_half). */
ow_grad_dtype ow__model_grad_dtype(const ow_model *model, size_t index);

#endif /* OW_MODEL_INTERNAL_H */
