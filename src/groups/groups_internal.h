/* groups_internal.h -- the layout of ow_groups, shared by the group object (src/groups/)
 * and the code that fills it: the build pipeline and the constructors. Everyone else
 * reads groups through functions (optwrap.h, and the ow__groups_* of internal.h). */
#ifndef OW_GROUPS_INTERNAL_H
#define OW_GROUPS_INTERNAL_H

#include "../internal.h"

/* A group's params array, its options map (its nodes, keys and arrays) and its reason
 * live in the pool of its ow_groups, which frees them all at once; some values may be
 * heap nodes (ow_cfg_free tells them apart). */
typedef struct ow_group {
    size_t *params; /* [n] model occurrence indices (in the pool) */
    size_t n, cap;
    ow_cfg *opts;       /* ordered map: hyperparameters (pooled) */
    const char *reason; /* why (for --explain), interned in the pool; NULL = none */
} ow_group;

struct ow_groups {
    const ow_model *model; /* borrowed */
    ow_group *g;           /* [n] */
    size_t n, cap;
    ow__pool *pool; /* owned: the groups' options, params and reasons */
    bool building; /* inside ow_groups_build: ow_groups_set_* copy values into the pool */
    size_t opts_cap; /* room a new group's options map starts with: the optimizer's
                        keys, which every group gets (0: grown as keys come) */
    const ow_entry *optimizer; /* (optim) the optimizer entry the groups were built for */
    ow_cfg *defaults;          /* (optim) owned: the optimizer's `defaults` dict (timm's
                                  corrected weight decay reads defaults['lr']), or NULL */
    char **warnings;           /* [n_warnings] formatted "file:line:column: message" */
    size_t n_warnings, cap_warnings;
    const char **param_reasons; /* (constructors) [model params] per-occurrence reasons
                                   for --explain, interned in the pool; NULL until one
                                   is set */
    bool apply_lr_scale;        /* (constructors) the optimizer steps with lr * lr_scale
                                   (timm's layer decay); false where lr_scale is already
                                   folded into lr (mmpretrain, mmseg) or absent */
};

/* Sets key of group gi to value (taken, even on failure), keeping the key in the pool:
 * what constructors use instead of ow__cfg_map_set on a group's options. */
int ow__groups_put(ow_groups *groups, size_t gi, const char *key, ow_cfg *value,
                   ow_error *err);

#endif
