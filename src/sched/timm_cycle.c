/* timm_cycle.c -- timm's cycle schedulers: CosineLRScheduler, PolyLRScheduler and
 * TanhLRScheduler, with linear warmup, warmup_prefix, cycles (cycle_mul, cycle_decay,
 * cycle_limit) and k-decay; the lr is a function of t alone (timm 1.0 scheduler/).
 * https://github.com/huggingface/pytorch-image-models/tree/main/timm/scheduler */
#include "sched_internal.h"

#include <string.h>

typedef enum shape { COSINE, POLY, TANH } shape;

typedef struct cycle {
    shape shape;
    double t_initial, lr_min;
    double cycle_mul, cycle_decay, cycle_limit;
    double warmup_lr_init;
    bool prefix;
    double k_decay; /* cosine, poly */
    double power;   /* poly */
    double lb, ub;  /* tanh */
} cycle;

int ow__sched_timm_common(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    if (ow__sched_has(b, "noise_range_t"))
        return ow__error_at(err, OW_ERR_UNSUPPORTED,
                            ow__cfg_map_get(b->node, "noise_range_t"),
                            "%s: lr noise is not supported (it draws from torch's random "
                            "generator)",
                            b->context);
    if (ow__sched_num(b, "initialize") == 0)
        return ow__error_at(
            err, OW_ERR_UNSUPPORTED, ow__cfg_map_get(b->node, "initialize"),
            "%s: initialize: false is not supported (the schedule records "
            "the groups' initial lr itself)",
            b->context);
    it->warmup_t = ow__sched_num(b, "warmup_t");
    if (isnan(it->warmup_t))
        it->warmup_t = 0;
    return OW_OK;
}

/* The value at t of one group whose base value is `base`, after any warmup. */
static double decay_at(const ow__sched_item *it, double t, double base)
{
    const cycle *c = it->impl;
    const double pi = 3.141592653589793;
    if (c->prefix)
        t = t - it->warmup_t;
    double i, t_i, t_curr;
    if (c->cycle_mul != 1) {
        i = floor(log(1 - t / c->t_initial * (1 - c->cycle_mul)) / log(c->cycle_mul));
        t_i = pow(c->cycle_mul, i) * c->t_initial;
        t_curr = t - (1 - pow(c->cycle_mul, i)) / (1 - c->cycle_mul) * c->t_initial;
    } else {
        i = ow__py_floordiv(t, c->t_initial);
        t_i = c->t_initial;
        t_curr = t - (c->t_initial * i);
    }
    if (!(i < c->cycle_limit))
        return c->lr_min;
    double lr_max = base * pow(c->cycle_decay, i);
    double k = c->k_decay;
    switch (c->shape) {
    case COSINE:
        return c->lr_min +
               0.5 * (lr_max - c->lr_min) * (1 + cos(pi * pow(t_curr, k) / pow(t_i, k)));
    case POLY:
        return c->lr_min +
               (lr_max - c->lr_min) * pow(1 - pow(t_curr, k) / pow(t_i, k), c->power);
    default: {
        double tr = t_curr / t_i;
        return c->lr_min +
               0.5 * (lr_max - c->lr_min) * (1 - tanh(c->lb * (1. - tr) + c->ub * tr));
    }
    }
}

/* timm's _get_lr: linear warmup from warmup_lr_init, towards the base value (or, for
 * Tanh without prefix, towards the value the decay has at warmup_t). */
static double lr_at(const ow__sched_item *it, double t, double base)
{
    const cycle *c = it->impl;
    if (t < it->warmup_t) {
        double target = base;
        if (c->shape == TANH && !c->prefix)
            target = decay_at(it, it->warmup_t, base);
        double step = (target - c->warmup_lr_init) / it->warmup_t;
        return c->warmup_lr_init + t * step;
    }
    return decay_at(it, t, base);
}

static void cycle_lr(const ow__sched_item *it, double t, double *out, size_t n)
{
    for (size_t g = 0; g < n; g++)
        out[g] = lr_at(it, t, it->base[g]);
}

static int cycle_init(ow__sched_item *it, const ow__sched_build *b, shape sh,
                      ow_error *err)
{
    cycle *c = ow__calloc(1, sizeof *c);
    if (!c)
        return ow__nomem(err);
    it->impl = c;
    int rc = ow__sched_timm_common(it, b, err);
    if (rc)
        return rc;
    c->shape = sh;
    c->t_initial = ow__sched_num(b, "t_initial");
    c->lr_min = ow__sched_num(b, "lr_min");
    c->cycle_mul = ow__sched_num(b, "cycle_mul");
    c->cycle_decay = ow__sched_num(b, "cycle_decay");
    c->cycle_limit = ow__sched_num(b, "cycle_limit");
    c->warmup_lr_init = ow__sched_num(b, "warmup_lr_init");
    c->prefix = ow__sched_num(b, "warmup_prefix") != 0;
    c->k_decay = sh == TANH ? 1 : ow__sched_num(b, "k_decay");
    c->power = sh == POLY ? ow__sched_num(b, "power") : 1;
    if (sh == TANH) {
        c->lb = ow__sched_num(b, "lb");
        c->ub = ow__sched_num(b, "ub");
        if (!(c->lb < c->ub))
            return ow__sched_fail(b, err, "ub", "lb must be less than ub (got %g and %g)",
                                  c->lb, c->ub);
    }
    return OW_OK;
}

static int cosine_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    return cycle_init(it, b, COSINE, err);
}
static int poly_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    return cycle_init(it, b, POLY, err);
}
static int tanh_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    return cycle_init(it, b, TANH, err);
}

/* ---- keys and entries
 * ------------------------------------------------------------------- */

#define TIMM_CYCLE_KEYS                                                                  \
    {.name = "t_initial",                                                                \
     .type = OW_T_NUMBER,                                                                \
     .min = 0,                                                                           \
     .max = INFINITY,                                                                    \
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE | OW_KEY_MIN_OPEN,                          \
     .doc = "length of the first cycle, in t"},                                          \
        {.name = "lr_min",                                                               \
         .type = OW_T_NUMBER,                                                            \
         .def = "0.0",                                                                   \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "lowest lr"},                                                            \
        {.name = "cycle_mul",                                                            \
         .type = OW_T_NUMBER,                                                            \
         .def = "1.0",                                                                   \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,                                        \
         .doc = "each cycle this much longer"},                                          \
        {.name = "cycle_decay",                                                          \
         .type = OW_T_NUMBER,                                                            \
         .def = "1.0",                                                                   \
         .doc = "each cycle's peak this much lower"},                                    \
        {.name = "cycle_limit",                                                          \
         .type = OW_T_NUMBER,                                                            \
         .def = "1",                                                                     \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "number of cycles, then lr_min"},                                        \
        OW__SCHED_TIMM_WARMUP_KEYS,                                                      \
    {                                                                                    \
        .name = "warmup_prefix", .type = OW_T_BOOL, .def = "false",                      \
        .doc = "the decay starts after the warmup (else underneath it)"                  \
    }

static const ow_key cosine_keys[] = {
    TIMM_CYCLE_KEYS,
    {.name = "k_decay",
     .type = OW_T_NUMBER,
     .def = "1.0",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,
     .doc = "k-decay exponent"},
    OW__SCHED_TIMM_KEYS,
    {0},
};
static const ow_key poly_keys[] = {
    TIMM_CYCLE_KEYS,
    {.name = "power",
     .type = OW_T_NUMBER,
     .def = "0.5",
     .doc = "power of the polynomial"},
    {.name = "k_decay",
     .type = OW_T_NUMBER,
     .def = "1.0",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,
     .doc = "k-decay exponent"},
    OW__SCHED_TIMM_KEYS,
    {0},
};
static const ow_key tanh_keys[] = {
    TIMM_CYCLE_KEYS,
    {.name = "lb",
     .type = OW_T_NUMBER,
     .def = "-7.0",
     .doc = "tanh argument at the start"},
    {.name = "ub", .type = OW_T_NUMBER, .def = "3.0", .doc = "tanh argument at the end"},
    OW__SCHED_TIMM_KEYS,
    {0},
};

static const ow__sched_def cosine_def = {
    .kind = OW__SCHED_TIMM, .param = "lr", .init = cosine_init, .timm_lr = cycle_lr};
static const ow__sched_def poly_def = {
    .kind = OW__SCHED_TIMM, .param = "lr", .init = poly_init, .timm_lr = cycle_lr};
static const ow__sched_def tanh_def = {
    .kind = OW__SCHED_TIMM, .param = "lr", .init = tanh_init, .timm_lr = cycle_lr};

OW__SCHED_ENTRY(ow__sched_timm_cosine, "CosineLRScheduler", "timm", cosine_keys,
                cosine_def,
                "timm: cosine decay with warmup, restarts (cycles) and k-decay");
OW__SCHED_ENTRY(ow__sched_timm_poly, "PolyLRScheduler", "timm", poly_keys, poly_def,
                "timm: polynomial decay with warmup, cycles and k-decay");
OW__SCHED_ENTRY(ow__sched_timm_tanh, "TanhLRScheduler", "timm", tanh_keys, tanh_def,
                "timm: hyperbolic-tangent decay with warmup and cycles");
