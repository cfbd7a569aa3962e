/* builtins.c -- the one table of built-in registry entries, one line each (sqlite's
 * aBuiltinFunc). Adding an optimizer: its file in src/optim/, then a line here. The
 * order is the registration order; lookup is by name and ow_registry_next sorts. */
#include "optim/optim_entries.h" /* src/optim: the optimizer entries */
#include "registry_internal.h"
#include "sched/sched_entries.h" /* src/sched: the scheduler entries */

extern const ow_entry ow__optim_wrapper_default; /* src/wrapper/optim_wrapper.c */
extern const ow_entry ow__optim_wrapper_amp;     /* src/wrapper/optim_wrapper.c */
extern const ow_entry ow__constructor_default;   /* src/constructors/default.c */
extern const ow_entry ow__optimizer_sgd;         /* src/optim/sgd.c */
extern const ow_entry ow__optimizer_adam;        /* src/optim/adam.c */
extern const ow_entry ow__optimizer_adamw;       /* src/optim/adam.c */

extern const ow_entry ow__constructor_lr_decay;       /* src/constructors/lr_decay.c */
extern const ow_entry ow__constructor_mmseg_lr_decay; /* src/constructors/layer_decay.c */
extern const ow_entry
    ow__constructor_mmseg_layer_decay;                /* src/constructors/layer_decay.c */
extern const ow_entry ow__constructor_mmdet_lr_decay; /* src/constructors/layer_decay.c */
extern const ow_entry
    ow__constructor_vitdet_layer_decay;         /* src/constructors/vit_layer_decay.c */
extern const ow_entry ow__constructor_timm;     /* src/constructors/timm.c */
extern const ow_entry ow__layer_depth_vit;      /* src/constructors/depth_vit.c */
extern const ow_entry ow__layer_depth_beit;     /* src/constructors/depth_vit.c */
extern const ow_entry ow__layer_depth_sam;      /* src/constructors/depth_vit.c */
extern const ow_entry ow__layer_depth_hivit;    /* src/constructors/depth_vit.c */
extern const ow_entry ow__layer_depth_convnext; /* src/constructors/depth_conv.c */
extern const ow_entry ow__layer_depth_resnet;   /* src/constructors/depth_conv.c */
extern const ow_entry ow__layer_depth_swin;     /* src/constructors/depth_swin.c */
extern const ow_entry ow__layer_depth_mixmim;   /* src/constructors/depth_swin.c */
extern const ow_entry ow__layer_depth_regex;    /* src/constructors/depth_regex.c */

const ow_entry *const ow__builtins[] = {
    &ow__optim_wrapper_default,
    &ow__optim_wrapper_amp,
    &ow__constructor_default,
    &ow__optimizer_sgd,
    &ow__optimizer_adam,
    &ow__optimizer_adamw,
    &ow__optimizer_timm_sgd,
    &ow__optimizer_timm_momentum,
    &ow__optimizer_timm_sgdw,
    &ow__optimizer_timm_sgdc,
    &ow__optimizer_timm_csgdw,
    &ow__optimizer_timm_csgdc,
    &ow__optimizer_composer_sgdw,
    &ow__optimizer_timm_adam,
    &ow__optimizer_timm_adamw,
    &ow__optimizer_timm_fusedadam,
    &ow__optimizer_timm_fusedadamw,
    &ow__optimizer_timm_fusedsgd,
    &ow__optimizer_timm_fusedlamb,
    &ow__optimizer_timm_adamwlegacy,
    &ow__optimizer_timm_adamc,
    &ow__optimizer_timm_cadamw,
    &ow__optimizer_timm_cadamc,
    &ow__optimizer_timm_nadamw,
    &ow__optimizer_timm_nadamc,
    &ow__optimizer_timm_cnadamw,
    &ow__optimizer_timm_cnadamc,
    &ow__optimizer_composer_adamw,
    &ow__sched_constant_lr,
    &ow__sched_constant_momentum,
    &ow__sched_constant_param,
    &ow__sched_linear_lr,
    &ow__sched_linear_momentum,
    &ow__sched_linear_param,
    &ow__sched_step_lr,
    &ow__sched_step_momentum,
    &ow__sched_step_param,
    &ow__sched_multistep_lr,
    &ow__sched_multistep_momentum,
    &ow__sched_multistep_param,
    &ow__sched_exponential_lr,
    &ow__sched_exponential_momentum,
    &ow__sched_exponential_param,
    &ow__sched_poly_lr,
    &ow__sched_poly_momentum,
    &ow__sched_poly_param,
    &ow__sched_cosine_lr,
    &ow__sched_cosine_momentum,
    &ow__sched_cosine_param,
    &ow__sched_cosine_weight_decay,
    &ow__sched_restart_lr,
    &ow__sched_restart_momentum,
    &ow__sched_restart_param,
    &ow__sched_onecycle_lr,
    &ow__sched_onecycle_param,
    &ow__sched_plateau_lr,
    &ow__sched_plateau_momentum,
    &ow__sched_plateau_param,
    &ow__sched_timm_cosine,
    &ow__sched_timm_poly,
    &ow__sched_timm_tanh,
    &ow__sched_timm_step,
    &ow__sched_timm_multistep,
    &ow__sched_timm_plateau,
    &ow__sched_timm_factory_entry,
    &ow__optimizer_nadam,
    &ow__optimizer_timm_nadam,
    &ow__optimizer_timm_nadamlegacy,
    &ow__optimizer_radam,
    &ow__optimizer_timm_radam,
    &ow__optimizer_timm_radamlegacy,
    &ow__optimizer_timm_radamw,
    &ow__optimizer_adamax,
    &ow__optimizer_timm_adamax,
    &ow__optimizer_adagrad,
    &ow__optimizer_timm_adagrad,
    &ow__optimizer_adadelta,
    &ow__optimizer_timm_adadelta,
    &ow__optimizer_rmsprop,
    &ow__optimizer_timm_rmsprop,
    &ow__optimizer_timm_rmsproptf,
    &ow__optimizer_timm_rmsproptfc,
    &ow__optimizer_timm_crmsproptf,
    &ow__optimizer_timm_lion,
    &ow__optimizer_timm_lionc,
    &ow__optimizer_timm_clion,
    &ow__optimizer_timm_clionc,
    &ow__optimizer_timm_adabelief,
    &ow__optimizer_timm_radabelief,
    &ow__optimizer_timm_lars,
    &ow__optimizer_timm_larc,
    &ow__optimizer_timm_nlars,
    &ow__optimizer_timm_nlarc,
    &ow__optimizer_timm_lamb,
    &ow__optimizer_timm_lambc,
    &ow__optimizer_timm_lambw,
    &ow__optimizer_timm_lambcw,
    &ow__optimizer_timm_lambcd,
    &ow__optimizer_timm_clamb,
    &ow__optimizer_timm_clambw,
    &ow__optimizer_timm_adafactor,
    &ow__optimizer_timm_cadafactor,
    &ow__optimizer_timm_adan,
    &ow__optimizer_timm_adanw,
    &ow__optimizer_timm_cadan,
    &ow__optimizer_timm_cadanw,
    &ow__optimizer_timm_adopt,
    &ow__optimizer_timm_adoptw,
    &ow__optimizer_timm_adoptc,
    &ow__optimizer_timm_cadopt,
    &ow__optimizer_timm_cadoptw,
    &ow__optimizer_timm_cadoptc,
    &ow__optimizer_timm_laprop,
    &ow__optimizer_timm_claprop,
    &ow__optimizer_timm_lapropc,
    &ow__optimizer_timm_madgrad,
    &ow__optimizer_timm_madgradw,
    &ow__optimizer_timm_mars,
    &ow__optimizer_timm_cmars,
    &ow__optimizer_timm_novograd,
    &ow__constructor_lr_decay,
    &ow__constructor_mmseg_lr_decay,
    &ow__constructor_mmseg_layer_decay,
    &ow__constructor_mmdet_lr_decay,
    &ow__constructor_vitdet_layer_decay,
    &ow__constructor_timm,
    &ow__layer_depth_vit,
    &ow__layer_depth_beit,
    &ow__layer_depth_sam,
    &ow__layer_depth_hivit,
    &ow__layer_depth_convnext,
    &ow__layer_depth_resnet,
    &ow__layer_depth_swin,
    &ow__layer_depth_mixmim,
    &ow__layer_depth_regex,
    &ow__optimizer_mmpretrain_lamb,
    &ow__optimizer_mmpretrain_lars,
    NULL,
};
