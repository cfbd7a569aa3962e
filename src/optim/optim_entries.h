/* optim_entries.h -- the optimizer registry entries of src/optim, one per name, for the
 * built-in table (registry/builtins.c). */
#ifndef OW_OPTIM_ENTRIES_H
#define OW_OPTIM_ENTRIES_H

#include "optwrap.h"

/* src/optim/sgd.c */
extern const ow_entry ow__optimizer_timm_sgd;
extern const ow_entry ow__optimizer_timm_momentum;
extern const ow_entry ow__optimizer_timm_sgdw;
extern const ow_entry ow__optimizer_timm_sgdc;
extern const ow_entry ow__optimizer_timm_csgdw;
extern const ow_entry ow__optimizer_timm_csgdc;
extern const ow_entry ow__optimizer_timm_fusedsgd;
extern const ow_entry ow__optimizer_composer_sgdw;

/* src/optim/adam.c */
extern const ow_entry ow__optimizer_timm_adam;
extern const ow_entry ow__optimizer_timm_adamw;
extern const ow_entry ow__optimizer_timm_adamwlegacy;
extern const ow_entry ow__optimizer_timm_adamc;
extern const ow_entry ow__optimizer_timm_cadamw;
extern const ow_entry ow__optimizer_timm_cadamc;
extern const ow_entry ow__optimizer_timm_nadamw;
extern const ow_entry ow__optimizer_timm_nadamc;
extern const ow_entry ow__optimizer_timm_cnadamw;
extern const ow_entry ow__optimizer_timm_cnadamc;
extern const ow_entry ow__optimizer_timm_fusedadam;
extern const ow_entry ow__optimizer_timm_fusedadamw;
extern const ow_entry ow__optimizer_composer_adamw;

/* src/optim/nadam.c */
extern const ow_entry ow__optimizer_nadam;
extern const ow_entry ow__optimizer_timm_nadam;
extern const ow_entry ow__optimizer_timm_nadamlegacy;

/* src/optim/radam.c */
extern const ow_entry ow__optimizer_radam;
extern const ow_entry ow__optimizer_timm_radam;
extern const ow_entry ow__optimizer_timm_radamlegacy;
extern const ow_entry ow__optimizer_timm_radamw;

/* src/optim/adamax.c */
extern const ow_entry ow__optimizer_adamax;
extern const ow_entry ow__optimizer_timm_adamax;

/* src/optim/adagrad.c */
extern const ow_entry ow__optimizer_adagrad;
extern const ow_entry ow__optimizer_timm_adagrad;
extern const ow_entry ow__optimizer_adadelta;
extern const ow_entry ow__optimizer_timm_adadelta;

/* src/optim/rmsprop.c */
extern const ow_entry ow__optimizer_rmsprop;
extern const ow_entry ow__optimizer_timm_rmsprop;
extern const ow_entry ow__optimizer_timm_rmsproptf;
extern const ow_entry ow__optimizer_timm_rmsproptfc;
extern const ow_entry ow__optimizer_timm_crmsproptf;

/* src/optim/lion.c */
extern const ow_entry ow__optimizer_timm_lion;
extern const ow_entry ow__optimizer_timm_lionc;
extern const ow_entry ow__optimizer_timm_clion;
extern const ow_entry ow__optimizer_timm_clionc;

/* src/optim/adabelief.c */
extern const ow_entry ow__optimizer_timm_adabelief;
extern const ow_entry ow__optimizer_timm_radabelief;

/* src/optim/lars.c */
extern const ow_entry ow__optimizer_timm_lars;
extern const ow_entry ow__optimizer_timm_larc;
extern const ow_entry ow__optimizer_timm_nlars;
extern const ow_entry ow__optimizer_timm_nlarc;
extern const ow_entry ow__optimizer_mmpretrain_lars;

/* src/optim/lamb.c */
extern const ow_entry ow__optimizer_timm_lamb;
extern const ow_entry ow__optimizer_timm_fusedlamb;
extern const ow_entry ow__optimizer_timm_lambc;
extern const ow_entry ow__optimizer_timm_lambw;
extern const ow_entry ow__optimizer_timm_lambcw;
extern const ow_entry ow__optimizer_timm_lambcd;
extern const ow_entry ow__optimizer_timm_clamb;
extern const ow_entry ow__optimizer_timm_clambw;
extern const ow_entry ow__optimizer_mmpretrain_lamb;

/* src/optim/adafactor.c */
extern const ow_entry ow__optimizer_timm_adafactor;
extern const ow_entry ow__optimizer_timm_cadafactor;

/* src/optim/adan.c */
extern const ow_entry ow__optimizer_timm_adan;
extern const ow_entry ow__optimizer_timm_adanw;
extern const ow_entry ow__optimizer_timm_cadan;
extern const ow_entry ow__optimizer_timm_cadanw;

/* src/optim/adopt.c */
extern const ow_entry ow__optimizer_timm_adopt;
extern const ow_entry ow__optimizer_timm_adoptw;
extern const ow_entry ow__optimizer_timm_adoptc;
extern const ow_entry ow__optimizer_timm_cadopt;
extern const ow_entry ow__optimizer_timm_cadoptw;
extern const ow_entry ow__optimizer_timm_cadoptc;

/* src/optim/laprop.c */
extern const ow_entry ow__optimizer_timm_laprop;
extern const ow_entry ow__optimizer_timm_claprop;
extern const ow_entry ow__optimizer_timm_lapropc;

/* src/optim/madgrad.c */
extern const ow_entry ow__optimizer_timm_madgrad;
extern const ow_entry ow__optimizer_timm_madgradw;

/* src/optim/mars.c */
extern const ow_entry ow__optimizer_timm_mars;
extern const ow_entry ow__optimizer_timm_cmars;

/* src/optim/novograd.c */
extern const ow_entry ow__optimizer_timm_novograd;
/* src/optim/muon.c */
extern const ow_entry ow__optimizer_timm_muon;
extern const ow_entry ow__optimizer_timm_nmuon;
extern const ow_entry ow__optimizer_timm_adamuon;
extern const ow_entry ow__optimizer_timm_nadamuon;

/* src/optim/adamp.c */
extern const ow_entry ow__optimizer_timm_adamp;
extern const ow_entry ow__optimizer_timm_cadamp;
extern const ow_entry ow__optimizer_timm_sgdp;
extern const ow_entry ow__optimizer_timm_csgdp;

/* src/optim/adafactor_bv.c */
extern const ow_entry ow__optimizer_timm_adafactorbv;
extern const ow_entry ow__optimizer_timm_adafactorbvc;
extern const ow_entry ow__optimizer_timm_cadafactorbv;
extern const ow_entry ow__optimizer_timm_cadafactorbvc;

/* src/optim/adahessian.c */
extern const ow_entry ow__optimizer_timm_adahessian;

/* src/optim/kron.c */
extern const ow_entry ow__optimizer_timm_kron;
extern const ow_entry ow__optimizer_timm_kronc;
extern const ow_entry ow__optimizer_timm_kronw;

/* src/optim/fastai.c */
extern const ow_entry ow__optimizer_fastai_sgd;
extern const ow_entry ow__optimizer_fastai_rmsprop;
extern const ow_entry ow__optimizer_fastai_adam;
extern const ow_entry ow__optimizer_fastai_radam;
extern const ow_entry ow__optimizer_fastai_qhadam;
extern const ow_entry ow__optimizer_fastai_larc;
extern const ow_entry ow__optimizer_fastai_lamb;
extern const ow_entry ow__optimizer_fastai_lookahead;
extern const ow_entry ow__optimizer_fastai_ranger;
extern const ow_entry ow__optimizer_fastai_optimizer;

/* src/optim/ademamix.c */
extern const ow_entry ow__optimizer_ademamix;
extern const ow_entry ow__optimizer_ademamix8bit;
extern const ow_entry ow__optimizer_timm_bnbademamix;
extern const ow_entry ow__optimizer_timm_bnbademamix8bit;

/* timm's bitsandbytes names (adam.c, lion.c, sgd.c) */
extern const ow_entry ow__optimizer_timm_bnbadam;
extern const ow_entry ow__optimizer_timm_bnbadamw;
extern const ow_entry ow__optimizer_timm_bnbadam8bit;
extern const ow_entry ow__optimizer_timm_bnbadamw8bit;
extern const ow_entry ow__optimizer_timm_bnblion;
extern const ow_entry ow__optimizer_timm_bnblion8bit;
extern const ow_entry ow__optimizer_timm_bnbsgd;
extern const ow_entry ow__optimizer_timm_bnbsgd8bit;

#endif /* OW_OPTIM_ENTRIES_H */
