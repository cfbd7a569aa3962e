/* fastai_internal.h -- fastai's optimizers as data (fastai/optimizer.py): a program of
 * step callbacks (weight_decay, average_grad, ..., adam_step) that runs over one tensor
 * in order, each as the torch ops fastai writes, in float32. The presets (fastai.c)
 * and the generic fastai.Optimizer build programs; fastai_cbs.c runs them (with torch's
 * reductions from fastai_reduce.c) and fastai_parse.c reads a `cbs:` list. Glossary: ga =
 * grad_avg, sa = sqr_avg, db1/db2 = fastai's debias(mom, 1-mom, step) and debias(sqr_mom,
 * 1-sqr_mom, step). */
#ifndef OW_FASTAI_INTERNAL_H
#define OW_FASTAI_INTERNAL_H

#include "optim_internal.h"

#include <stdint.h>

/* The callbacks, in fastai's names (ow__fa_cb_name). FA_LOOKAHEAD is not one of
 * fastai's callbacks: it is Lookahead's step after the inner optimizer's (count,
 * every k steps slow += alpha*(fast - slow), fast = slow), appended by the
 * Lookahead and ranger presets. */
typedef enum ow__fa_cb {
    FA_WEIGHT_DECAY,
    FA_L2_REG,
    FA_AVERAGE_GRAD,
    FA_AVERAGE_SQR_GRAD,
    FA_STEP_STAT,
    FA_MOMENTUM_STEP,
    FA_SGD_STEP,
    FA_RMS_PROP_STEP,
    FA_ADAM_STEP,
    FA_RADAM_STEP,
    FA_QHADAM_STEP,
    FA_LARC_LAYER_LR,
    FA_LARC_STEP,
    FA_LAMB_STEP,
    FA_LOOKAHEAD,
    FA__NCB
} ow__fa_cb;

/* A callback's option, set in the program's flags: average_grad/average_sqr_grad's
 * `dampening`, larc_layer_lr's `clip`. */
#define FA_OPT 0x1u
/* The callback was named bare, not as a map (fastai's partial(cb, ...), which carries
 * no `.defaults`): its hyperparameter defaults apply (ow__fa_prog_defaults). */
#define FA_BARE 0x2u

#define OW__FA_MAX_CBS 16

typedef struct ow__fa_prog {
    uint8_t n;
    uint8_t cb[OW__FA_MAX_CBS];    /* ow__fa_cb */
    uint8_t flags[OW__FA_MAX_CBS]; /* FA_OPT | FA_BARE */
} ow__fa_prog;

/* The hyperparameters the callbacks read, by fastai's names (ow__fa_hyper_name). */
typedef enum ow__fa_hyper {
    FH_LR,
    FH_WD,
    FH_MOM,
    FH_SQR_MOM,
    FH_EPS,
    FH_BETA,
    FH_NU_1,
    FH_NU_2,
    FH_TRUST_COEFF,
    FH_LOOKAHEAD_K,
    FH_LOOKAHEAD_ALPHA,
    FH__N
} ow__fa_hyper;

/* The per-parameter state, in the order fastai's state dict gains its keys. */
typedef enum ow__fa_state {
    FS_GRAD_AVG,        /* tensor */
    FS_SQR_AVG,         /* tensor */
    FS_STEP,            /* int */
    FS_LOCAL_LR,        /* float32 0-d tensor (larc_layer_lr) */
    FS_SLOW_WEIGHTS,    /* tensor, the parameter at the first step (Lookahead) */
    FS_LOOKAHEAD_COUNT, /* int: steps since the first (Lookahead's count) */
    FS__N
} ow__fa_state;

/* One row of the callback table. */
typedef struct ow__fa_cb_info {
    const char *name;
    const char *option;  /* its option key, or NULL */
    bool option_default; /* the option's value when not given */
    unsigned creates;    /* bit FS_x: the state it creates */
    unsigned needs;      /* bit FS_x: the state it reads (another callback creates) */
    unsigned optional;   /* bit FS_x: the state it reads when present */
    unsigned hypers;     /* bit FH_x: the hyperparameters it reads */
} ow__fa_cb_info;

extern const ow__fa_cb_info ow__fa_cbs[FA__NCB];
extern const char *const ow__fa_hyper_names[FH__N + 1];

/* The state a program creates (bit FS_x). */
unsigned ow__fa_prog_states(const ow__fa_prog *prog);
/* The hyperparameters a program reads (bit FH_x). */
unsigned ow__fa_prog_hypers(const ow__fa_prog *prog);
/* fastai's merge of the callbacks' `.defaults` (weight_decay: wd 0; average_grad: mom
 * 0.9; average_sqr_grad: sqr_mom 0.99; rms_prop_step: eps 1e-8; larc_layer_lr:
 * trust_coeff 0.02, wd 0, eps 1e-8) over the bare callbacks of prog: writes h[FH_x]
 * and returns the bits of the hyperparameters it set. */
unsigned ow__fa_prog_defaults(const ow__fa_prog *prog, double *h);
/* Appends a callback (false when the program is full). */
bool ow__fa_prog_add(ow__fa_prog *prog, ow__fa_cb cb, bool option);

/* One tensor's step. */
typedef struct ow__fa_tensor {
    size_t n;
    float *p;       /* [n] */
    const float *g; /* [n] the gradient (not written: l2_reg writes work) */
    float *work;    /* [2 * n] scratch: the gradient l2_reg changes, lamb_step's update */
    float *state[FS__N];   /* tensor states ([n]), NULL where absent */
    double *scalar[FS__N]; /* scalar states, NULL where absent */
    int threads;
    bool ref; /* plain loops only */
} ow__fa_tensor;

/* Runs prog over one tensor with hyperparameters h ([FH__N]). */
void ow__fa_run(const ow__fa_prog *prog, const double *h, const ow__fa_tensor *t);

/* torch's float32 reductions on the CPU (one thread), in torch 1.13's order:
 * torch.norm(x) (8 lanes of x*x, folded left, then the tail) and x.sum() (cascade sum
 * of 8-lane vectors, 4 rows at a time). */
float ow__fa_norm(const float *x, size_t n);
float ow__fa_sum(const float *x, size_t n);
/* x.pow(2).mean().sqrt() */
float ow__fa_rms(const float *x, size_t n);

/* Reads a `cbs:` list (names, or maps with `type` and the callback's option) into
 * prog; errors name the item's position (did-you-mean for names and keys), and a
 * callback reading state no earlier callback creates is refused. */
int ow__fa_parse_cbs(const ow_cfg *list, ow__fa_prog *prog, ow_error *err);

#endif /* OW_FASTAI_INTERNAL_H */
