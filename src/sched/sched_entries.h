/* sched_entries.h -- the built-in scheduler entries, for registry/builtins.c and
 * src/sched/entries.c: mmengine's LR, Momentum and ParamScheduler versions of each
 * class, then timm's classes and its create_scheduler_v2 factory. */
#ifndef OW_SCHED_ENTRIES_H
#define OW_SCHED_ENTRIES_H

#include "optwrap.h"

extern const ow_entry ow__sched_constant_lr, ow__sched_constant_momentum,
    ow__sched_constant_param; /* mm_mult.c */
extern const ow_entry ow__sched_linear_lr, ow__sched_linear_momentum,
    ow__sched_linear_param;
extern const ow_entry ow__sched_step_lr, ow__sched_step_momentum, ow__sched_step_param;
extern const ow_entry ow__sched_multistep_lr, ow__sched_multistep_momentum,
    ow__sched_multistep_param;
extern const ow_entry ow__sched_exponential_lr, ow__sched_exponential_momentum,
    ow__sched_exponential_param;
extern const ow_entry ow__sched_poly_lr, ow__sched_poly_momentum, ow__sched_poly_param;
extern const ow_entry ow__sched_cosine_lr, ow__sched_cosine_momentum,
    ow__sched_cosine_param;                          /* mm_cosine.c */
extern const ow_entry ow__sched_cosine_weight_decay; /* mm_cosine.c (mmpretrain) */
extern const ow_entry ow__sched_restart_lr, ow__sched_restart_momentum,
    ow__sched_restart_param;
extern const ow_entry ow__sched_onecycle_lr, ow__sched_onecycle_param; /* mm_onecycle.c */
extern const ow_entry ow__sched_plateau_lr, ow__sched_plateau_momentum,
    ow__sched_plateau_param; /* mm_plateau.c */
extern const ow_entry ow__sched_timm_cosine, ow__sched_timm_poly,
    ow__sched_timm_tanh; /* timm_cycle.c */
extern const ow_entry ow__sched_timm_step, ow__sched_timm_multistep,
    ow__sched_timm_plateau;                         /* timm_step.c */
extern const ow_entry ow__sched_timm_factory_entry; /* timm_factory.c */

#endif /* OW_SCHED_ENTRIES_H */
