/* groups_internal.h -- the layout of ow_groups, shared by the group object, the build
 * pipeline and the constructors. */
#ifndef OW_GROUPS_INTERNAL_H
#define OW_GROUPS_INTERNAL_H

#include "../internal.h"

typedef struct ow_group {
    size_t *params; /* [n] model occurrence indices */
    size_t n, cap;
    ow_cfg *opts; /* ordered map: hyperparameters */
    char *reason; /* why (for --explain); NULL = none */
} ow_group;

struct ow_groups {
    const ow_model *model; /* borrowed */
    ow_group *g;           /* [n] */
    size_t n, cap;
    const ow_entry *optimizer; /* (optim) the optimizer entry the groups were built for */
    ow_cfg *defaults;          /* (optim) owned: the optimizer's `defaults` dict (timm's
                                  corrected weight decay reads defaults['lr']), or NULL */
    char **warnings;           /* [n_warnings] formatted "file:line:column: message" */
    size_t n_warnings, cap_warnings;
    char **param_reasons; /* (constructors) [model params] per-occurrence reasons for
                             --explain; NULL until one is set */
    bool apply_lr_scale;  /* (constructors) the optimizer steps with lr * lr_scale
                             (timm's layer decay); false where lr_scale is already
                             folded into lr (mmpretrain, mmseg) or absent */
};

ow_groups *ow__groups_new(const ow_model *model);

/* Python's `a * b` on config numbers: int * int stays an int, anything else a float.
 * NULL on allocation failure. */
ow_cfg *ow__num_mul(const ow_cfg *a, const ow_cfg *b);

#endif
