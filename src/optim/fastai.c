/* fastai's optimizers (fastai/optimizer.py at 0a20fa1b), scope `fastai.`: each a list
 * of step callbacks run per parameter (fastai_cbs.c). The presets build the list the
 * way fastai's functions do (SGD, RMSProp, Adam, RAdam, QHAdam, Larc, Lamb) from their
 * hyperparameters, in each group; Lookahead (over Adam) and ranger (over RAdam with
 * mom 0.95, wd 0.01, eps 1e-6) add fastai's Lookahead step. Keys are fastai's names,
 * in the order fastai's `hypers` gain them (the callbacks' defaults, then the
 * function's arguments), then the construction switches (decouple_wd, clip), which
 * fastai does not keep in its hypers.
 * Differs on purpose: fastai chooses the list once from the function's arguments,
 * here each group chooses it from its own mom (a group with mom 0 steps as plain SGD,
 * with the same numbers); Lookahead's count and its sync run per parameter that has a
 * gradient, fastai's once per step() over every parameter. */
#include "fastai_internal.h"

#include <string.h>

/* ---- schemas ------------------------------------------------------------------------
 */

#define K_LR                                                                             \
    {                                                                                    \
        .name = "lr", .type = OW_T_NUMBER, .min = 0, .max = INFINITY,                    \
        .flags = OW_KEY_RANGE, .doc = "learning rate (fastai: required)"                 \
    }
#define K_WD(d)                                                                          \
    OW__KEY_NUM("wd", d, "weight decay (decoupled, or L2 with decouple_wd false)")
#define K_MOM(d)     OW__KEY_NUM("mom", d, "momentum of the gradient average (grad_avg)")
#define K_SQR_MOM(d) OW__KEY_NUM("sqr_mom", d, "momentum of the squared-gradient average")
#define K_EPS(d)     OW__KEY_NUM("eps", d, "added to the denominator")
#define K_BETA       OW__KEY_NUM("beta", "0.0", "RAdam: softplus of the denominator (0: none)")
#define K_DECOUPLE                                                                       \
    OW__KEY_BOOL("decouple_wd", "true",                                                  \
                 "true: weight_decay (p *= 1 - lr*wd); false: l2_reg (g += wd*p)")
#define K_LOOKAHEAD                                                                      \
    {.name = "lookahead_k",                                                              \
     .type = OW_T_INT,                                                                   \
     .def = "6",                                                                         \
     .min = 1,                                                                           \
     .max = INFINITY,                                                                    \
     .flags = OW_KEY_RANGE,                                                              \
     .doc = "Lookahead k: steps between syncs of the slow weights"},                     \
    {                                                                                    \
        .name = "lookahead_alpha", .type = OW_T_NUMBER, .def = "0.5", .min = 0,          \
        .max = 1, .flags = OW_KEY_RANGE,                                                 \
        .doc = "Lookahead alpha: slow += alpha*(fast - slow)"                            \
    }

static const ow_key sgd_keys[] = {K_WD("0.0"), K_MOM("0.0"), K_LR, K_DECOUPLE, {0}};
static const ow_key rmsprop_keys[] = {
    K_WD("0.0"), K_MOM("0.0"), K_SQR_MOM("0.99"), K_EPS("1e-08"), K_LR, K_DECOUPLE, {0}};
#define ADAM_KEYS                                                                        \
    K_WD("0.01"), K_SQR_MOM("0.99"), K_LR, K_MOM("0.9"), K_EPS("1e-05"), K_DECOUPLE
static const ow_key adam_keys[] = {ADAM_KEYS, {0}};
static const ow_key lookahead_keys[] = {ADAM_KEYS, K_LOOKAHEAD, {0}};
static const ow_key radam_keys[] = {
    K_WD("0.0"), K_SQR_MOM("0.99"), K_LR, K_MOM("0.9"), K_EPS("1e-05"),
    K_BETA,      K_DECOUPLE,        {0}};
static const ow_key qhadam_keys[] = {
    K_WD("0.0"),
    K_LR,
    OW__KEY_ANYNUM("nu_1", "0.7", "weight of the averaged gradient in the numerator"),
    OW__KEY_ANYNUM("nu_2", "1.0", "weight of the averaged square in the denominator"),
    K_MOM("0.999"),
    K_SQR_MOM("0.999"),
    K_EPS("1e-08"),
    K_DECOUPLE,
    {0}};
static const ow_key larc_keys[] = {
    K_WD("0.0"),
    K_MOM("0.9"),
    K_LR,
    OW__KEY_NUM("trust_coeff", "0.02", "trust coefficient of the layer-wise lr"),
    K_EPS("1e-08"),
    OW__KEY_BOOL("clip", "true", "LARC: the layer lr is min(lr, local lr)"),
    K_DECOUPLE,
    {0}};
static const ow_key lamb_keys[] = {K_WD("0.0"),    K_SQR_MOM("0.99"), K_LR, K_MOM("0.9"),
                                   K_EPS("1e-05"), K_DECOUPLE,        {0}};
static const ow_key ranger_keys[] = {K_WD("0.01"),  K_SQR_MOM("0.99"), K_LR,
                                     K_MOM("0.95"), K_EPS("1e-06"),    K_BETA,
                                     K_DECOUPLE,    K_LOOKAHEAD,       {0}};

/* null: fastai's defaults come from the callbacks named bare (ow__fa_prog_defaults) */
#define K_FREE(n, doc_)                                                                  \
    {                                                                                    \
        .name = n, .type = OW_T_NUMBER, .def = "null", .flags = OW_KEY_NULLABLE,         \
        .doc = doc_                                                                      \
    }
static const ow_key optimizer_keys[] = {
    {.name = "cbs",
     .type = OW_T_LIST,
     .flags = OW_KEY_REQUIRED,
     .doc = "step callbacks in order: names, or {type: name, dampening/clip: bool}"},
    K_LR,
    K_FREE("mom", "momentum (average_grad; default 0.9 when named bare)"),
    K_FREE("sqr_mom", "squared momentum (average_sqr_grad; default 0.99 when bare)"),
    K_FREE("eps", "epsilon (rms_prop_step, larc_layer_lr: default 1e-8 when bare)"),
    K_FREE("wd", "weight decay (weight_decay, l2_reg, larc_layer_lr: default 0)"),
    K_FREE("beta", "radam_step's softplus beta (0: none)"),
    K_FREE("nu_1", "qhadam_step's nu_1"),
    K_FREE("nu_2", "qhadam_step's nu_2"),
    K_FREE("trust_coeff", "larc_layer_lr's trust coefficient (default 0.02 when bare)"),
    {.name = "lookahead_k",
     .type = OW_T_INT,
     .def = "null",
     .min = 1,
     .max = INFINITY,
     .flags = OW_KEY_RANGE | OW_KEY_NULLABLE,
     .doc = "fastai Lookahead over the list: steps between syncs (null: none)"},
    {.name = "lookahead_alpha",
     .type = OW_T_NUMBER,
     .def = "0.5",
     .min = 0,
     .max = 1,
     .flags = OW_KEY_RANGE,
     .doc = "Lookahead alpha: slow += alpha*(fast - slow)"},
    {0}};

/* ---- hyperparameters, state, constants ----------------------------------------------
 */

/* The hyperparameters the hooks read: fastai's (FH_x, same index), then the
 * construction switches. */
enum { P_DECOUPLE_WD = FH__N, P_CLIP, P_CBS, NP };
static const char *const fa_params[NP + 1] = {
    [FH_LR] = "lr",
    [FH_WD] = "wd",
    [FH_MOM] = "mom",
    [FH_SQR_MOM] = "sqr_mom",
    [FH_EPS] = "eps",
    [FH_BETA] = "beta",
    [FH_NU_1] = "nu_1",
    [FH_NU_2] = "nu_2",
    [FH_TRUST_COEFF] = "trust_coeff",
    [FH_LOOKAHEAD_K] = "lookahead_k",
    [FH_LOOKAHEAD_ALPHA] = "lookahead_alpha",
    [P_DECOUPLE_WD] = "decouple_wd",
    [P_CLIP] = "clip",
    [P_CBS] = "cbs",
};

/* fastai's state keys; a program creates some of them (slot_shape -1 for the rest). */
static const ow_slot fa_slots[] = {
    [FS_GRAD_AVG] = {.name = "grad_avg"},
    [FS_SQR_AVG] = {.name = "sqr_avg"},
    [FS_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_I64),
    [FS_LOCAL_LR] = {.name = "local_lr", .flags = OW_SLOT_SCALAR, .dtype = OW_DTYPE_F32},
    [FS_SLOW_WEIGHTS] = {.name = "slow_weights", .flags = OW_SLOT_FROM_PARAM},
    [FS_LOOKAHEAD_COUNT] = OW__SLOT_COUNTER("lookahead_count", OW_DTYPE_I64),
    {0},
};

typedef struct fa_ctx {
    ow__fa_prog prog;
    double h[FH__N];
} fa_ctx;

typedef void build_fn(const ow_hparam *hp, ow__fa_prog *prog);

/* ---- the presets' lists (fastai's functions) ----------------------------------------
 */

static void add_wd(const ow_hparam *hp, ow__fa_prog *p)
{
    bool decouple = hp[P_DECOUPLE_WD].absent || ow__hp_true(&hp[P_DECOUPLE_WD]);
    ow__fa_prog_add(p, decouple ? FA_WEIGHT_DECAY : FA_L2_REG, false);
}

static bool has_mom(const ow_hparam *hp)
{
    return ow__hp_num(&hp[FH_MOM], 0) != 0;
}

static void build_sgd(const ow_hparam *hp, ow__fa_prog *p)
{
    add_wd(hp, p);
    if (has_mom(hp))
        ow__fa_prog_add(p, FA_AVERAGE_GRAD, false);
    ow__fa_prog_add(p, has_mom(hp) ? FA_MOMENTUM_STEP : FA_SGD_STEP, false);
}

static void build_rmsprop(const ow_hparam *hp, ow__fa_prog *p)
{
    add_wd(hp, p);
    if (has_mom(hp))
        ow__fa_prog_add(p, FA_AVERAGE_GRAD, false);
    ow__fa_prog_add(p, FA_AVERAGE_SQR_GRAD, true);
    ow__fa_prog_add(p, FA_RMS_PROP_STEP, false);
}

/* weight decay, average_grad(dampening), average_sqr_grad, step_stat, then `last` */
static void build_moments(const ow_hparam *hp, ow__fa_prog *p, ow__fa_cb last)
{
    add_wd(hp, p);
    ow__fa_prog_add(p, FA_AVERAGE_GRAD, true);
    ow__fa_prog_add(p, FA_AVERAGE_SQR_GRAD, true);
    ow__fa_prog_add(p, FA_STEP_STAT, false);
    ow__fa_prog_add(p, last, false);
}

static void build_adam(const ow_hparam *hp, ow__fa_prog *p)
{
    build_moments(hp, p, FA_ADAM_STEP);
}
static void build_radam(const ow_hparam *hp, ow__fa_prog *p)
{
    build_moments(hp, p, FA_RADAM_STEP);
}
static void build_qhadam(const ow_hparam *hp, ow__fa_prog *p)
{
    build_moments(hp, p, FA_QHADAM_STEP);
}
static void build_lamb(const ow_hparam *hp, ow__fa_prog *p)
{
    build_moments(hp, p, FA_LAMB_STEP);
}
static void build_lookahead(const ow_hparam *hp, ow__fa_prog *p)
{
    build_moments(hp, p, FA_ADAM_STEP);
    ow__fa_prog_add(p, FA_LOOKAHEAD, false);
}
static void build_ranger(const ow_hparam *hp, ow__fa_prog *p)
{
    build_moments(hp, p, FA_RADAM_STEP);
    ow__fa_prog_add(p, FA_LOOKAHEAD, false);
}

static void build_larc(const ow_hparam *hp, ow__fa_prog *p)
{
    add_wd(hp, p);
    if (has_mom(hp))
        ow__fa_prog_add(p, FA_AVERAGE_GRAD, false);
    ow__fa_prog_add(p, FA_LARC_LAYER_LR, hp[P_CLIP].absent || ow__hp_true(&hp[P_CLIP]));
    ow__fa_prog_add(p, FA_LARC_STEP, false);
}

/* fastai.Optimizer: the config's list (checked by check_optimizer), then Lookahead's
 * step when lookahead_k is set */
static void build_optimizer(const ow_hparam *hp, ow__fa_prog *p)
{
    if (ow__fa_parse_cbs(hp[P_CBS].cfg, p, NULL) != OW_OK)
        p->n = 0;
    if (ow__hp_num(&hp[FH_LOOKAHEAD_K], 0) >= 1)
        ow__fa_prog_add(p, FA_LOOKAHEAD, false);
}

/* The list reads, and a hyperparameter each callback reads is given or defaulted by a
 * callback named bare (fastai: a TypeError on the first step). */
static bool check_optimizer(const ow_hparam *hp, char *msg, size_t n)
{
    ow__fa_prog prog;
    ow_error err;
    ow_error_clear(&err);
    if (ow__fa_parse_cbs(hp[P_CBS].cfg, &prog, &err) != OW_OK) {
        if (err.line > 0) /* the engine names the file and the optimizer's position */
            snprintf(msg, n, "line %d, column %d: %s", err.line, err.column, err.message);
        else
            snprintf(msg, n, "%s", err.message);
        return false;
    }
    double dflt[FH__N];
    unsigned have = ow__fa_prog_defaults(&prog, dflt);
    for (int i = 0; i < prog.n; i++)
        for (int k = 0; k < FH__N; k++) {
            const ow_hparam *v = &hp[k];
            bool given = !v->absent && !v->is_null && v->n > 0;
            if (!(ow__fa_cbs[prog.cb[i]].hypers & (1u << k)) || given ||
                (have & (1u << k)))
                continue;
            snprintf(msg, n,
                     "cbs[%d]: %s reads '%s', which is not given (only callbacks named "
                     "bare bring fastai's defaults)",
                     i, ow__fa_cbs[prog.cb[i]].name, ow__fa_hyper_names[k]);
            return false;
        }
    return true;
}

/* ---- hooks --------------------------------------------------------------------------
 */

static void prepare(ow_prepare_args *a, build_fn *build)
{
    fa_ctx *c = a->ctx;
    double dflt[FH__N] = {0};
    build(a->hp, &c->prog);
    ow__fa_prog_defaults(&c->prog, dflt); /* fastai.Optimizer's bare callbacks */
    for (int k = 0; k < FH__N; k++)
        c->h[k] = ow__hp_num(&a->hp[k], dflt[k]);
    c->h[FH_LR] = a->lr;
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out, build_fn *build)
{
    ow__fa_prog prog = {0};
    build(hp, &prog);
    if (!(ow__fa_prog_states(&prog) & (1u << slot)))
        return -1;
    if (fa_slots[slot].flags & OW_SLOT_SCALAR)
        return 0;
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    return ndim;
}

/* l2_reg's gradient and lamb_step's update: a tensor's worth each */
static size_t scratch_bytes(const ow_hparam *hp, int ndim, const int64_t *shape,
                            build_fn *build)
{
    ow__fa_prog prog = {0};
    build(hp, &prog);
    bool need = false;
    for (int i = 0; i < prog.n; i++)
        need = need || prog.cb[i] == FA_L2_REG || prog.cb[i] == FA_LAMB_STEP;
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)shape[d];
    return need ? 2 * n * sizeof(float) : 0;
}

static void tensor_step(const ow_tensor_args *a)
{
    const fa_ctx *c = a->ctx;
    unsigned have = ow__fa_prog_states(&c->prog);
    ow__fa_tensor t = {.n = a->numel,
                       .p = a->p,
                       .g = a->g,
                       .work = a->scratch,
                       .threads = a->threads,
                       .ref = a->ref};
    for (int s = 0; s < FS__N; s++) {
        if (!(have & (1u << s)))
            continue;
        if (fa_slots[s].flags & OW_SLOT_SCALAR)
            t.scalar[s] = &a->scalars[s];
        else
            t.state[s] = a->s[s];
    }
    ow__fa_run(&c->prog, c->h, &t);
}

/* ---- entries ------------------------------------------------------------------------
 */

#define PRESET(name, ...)                                                                \
    static void name##_prepare(ow_prepare_args *a)                                       \
    {                                                                                    \
        prepare(a, build_##name);                                                        \
    }                                                                                    \
    static int name##_shape(const ow_hparam *hp, int s, int nd, const int64_t *sh,       \
                            int64_t *o)                                                  \
    {                                                                                    \
        return slot_shape(hp, s, nd, sh, o, build_##name);                               \
    }                                                                                    \
    static size_t name##_scratch(const ow_hparam *hp, int nd, const int64_t *sh)         \
    {                                                                                    \
        return scratch_bytes(hp, nd, sh, build_##name);                                  \
    }                                                                                    \
    static const ow_optimizer_ops name##_ops = {.abi_version = OW_ABI_VERSION,           \
                                                .slots = fa_slots,                       \
                                                .params = fa_params,                     \
                                                .ctx_size = sizeof(fa_ctx),              \
                                                .prepare = name##_prepare,               \
                                                .slot_shape = name##_shape,              \
                                                .tensor_step = tensor_step,              \
                                                .scratch_bytes = name##_scratch,         \
                                                __VA_ARGS__}

PRESET(sgd);
PRESET(rmsprop);
PRESET(adam);
PRESET(radam);
PRESET(qhadam);
PRESET(larc);
PRESET(lamb);
PRESET(lookahead);
PRESET(ranger);
PRESET(optimizer, .check = check_optimizer);

OW__OPTIMIZER_ENTRY(ow__optimizer_fastai_sgd, "SGD", "fastai", sgd_keys, sgd_ops,
                    "fastai SGD: weight_decay, [average_grad], sgd_step/momentum_step");
OW__OPTIMIZER_ENTRY(
    ow__optimizer_fastai_rmsprop, "RMSProp", "fastai", rmsprop_keys, rmsprop_ops,
    "fastai RMSProp: sqrt(sqr_avg) + eps denominator, no bias correction");
OW__OPTIMIZER_ENTRY(ow__optimizer_fastai_adam, "Adam", "fastai", adam_keys, adam_ops,
                    "fastai Adam: decoupled wd 0.01, sqr_mom 0.99, eps 1e-5 inside the "
                    "debiased sqrt");
OW__OPTIMIZER_ENTRY(
    ow__optimizer_fastai_radam, "RAdam", "fastai", radam_keys, radam_ops,
    "fastai RAdam: rectified Adam (SGD-with-momentum steps while r <= 5)");
OW__OPTIMIZER_ENTRY(ow__optimizer_fastai_qhadam, "QHAdam", "fastai", qhadam_keys,
                    qhadam_ops, "fastai QHAdam: quasi-hyperbolic Adam (nu_1, nu_2)");
OW__OPTIMIZER_ENTRY(ow__optimizer_fastai_larc, "Larc", "fastai", larc_keys, larc_ops,
                    "fastai Larc: SGD with a per-layer lr from |p|/|g| (clipped at lr)");
OW__OPTIMIZER_ENTRY(ow__optimizer_fastai_lamb, "Lamb", "fastai", lamb_keys, lamb_ops,
                    "fastai Lamb: Adam update scaled by rms(p)/rms(update), at most 10");
OW__OPTIMIZER_ENTRY(
    ow__optimizer_fastai_lookahead, "Lookahead", "fastai", lookahead_keys, lookahead_ops,
    "fastai Lookahead over fastai Adam: slow weights from the first step, "
    "synced every k");
OW__OPTIMIZER_ENTRY(ow__optimizer_fastai_ranger, "ranger", "fastai", ranger_keys,
                    ranger_ops,
                    "fastai ranger: Lookahead over RAdam (mom 0.95, wd 0.01, eps 1e-6)");
OW__OPTIMIZER_ENTRY(ow__optimizer_fastai_optimizer, "Optimizer", "fastai", optimizer_keys,
                    optimizer_ops,
                    "fastai Optimizer: the step callbacks `cbs` in order, per parameter");
