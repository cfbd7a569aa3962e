/* mm_cosine.c -- mmengine's cosine schedulers: CosineAnnealingLR (the recursive
 * PyTorch form, never quite reaching eta_min) and CosineRestartLR (periods, each
 * restarting at base * restart_weight), with their Momentum and ParamScheduler
 * versions, and mmpretrain's CosineAnnealingWeightDecay.
 * https://arxiv.org/abs/1608.03983 (SGDR), mmengine 0.11 param_scheduler.py */
#include "sched_internal.h"

#include <string.h>

typedef struct cosine {
    double t_max;
    double eta_min, eta_min_ratio; /* exactly one is used */
    bool ratio;
    size_t n_periods; /* CosineRestart */
    double data[];    /* periods[n], restart_weights[n], cumulative[n] */
} cosine;

/* eta_min is absolute for every group; eta_min_ratio is relative to its base value. */
static double eta_min_of(const cosine *c, double base)
{
    return c->ratio ? base * c->eta_min_ratio : c->eta_min;
}

static int read_eta(cosine *c, const ow__sched_build *b, bool zero_default, ow_error *err)
{
    bool has_min = ow__sched_has(b, "eta_min"),
         has_ratio = ow__sched_has(b, "eta_min_ratio");
    if (!has_min && !has_ratio && zero_default)
        has_min = true; /* CosineAnnealing keeps eta_min 0 when neither is given */
    if (has_min == has_ratio)
        return ow__sched_fail(b, err, has_min ? "eta_min_ratio" : NULL,
                              "give exactly one of eta_min and eta_min_ratio");
    c->ratio = has_ratio;
    c->eta_min = has_min && ow__sched_has(b, "eta_min") ? ow__sched_num(b, "eta_min") : 0;
    c->eta_min_ratio = has_ratio ? ow__sched_num(b, "eta_min_ratio") : 0;
    return OW_OK;
}

/* ---- CosineAnnealingLR
 * ------------------------------------------------------------------ */

static int annealing_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    cosine *c = ow__calloc(1, sizeof *c);
    if (!c)
        return ow__nomem(err);
    it->impl = c;
    /* T_max or (end - begin): an absent (or 0) T_max spans the converted window */
    double t_max = ow__sched_has(b, "T_max") ? ow__sched_num(b, "T_max") * b->scale : 0;
    c->t_max = t_max != 0 ? t_max : it->end - it->begin;
    return read_eta(c, b, true, err);
}

static void annealing_value(const ow__sched_item *it, const double *initial,
                            const double *cur, double *out, size_t n)
{
    const cosine *c = it->impl;
    double t = (double)it->last_step, tm = c->t_max;
    const double pi = 3.141592653589793;
    (void)initial;
    for (size_t g = 0; g < n; g++) {
        double m = eta_min_of(c, it->base[g]);
        if (t == 0)
            out[g] = cur[g];
        else if (ow__py_mod(t - 1 - tm, 2 * tm) == 0)
            out[g] = cur[g] + (it->base[g] - m) * (1 - cos(pi / tm)) / 2;
        else
            out[g] =
                (1 + cos(pi * t / tm)) / (1 + cos(pi * (t - 1) / tm)) * (cur[g] - m) + m;
    }
}

/* ---- mmpretrain CosineAnnealingWeightDecay
 * mmpretrain/engine/schedulers/weight_decay_scheduler.py: CosineAnnealingParamScheduler
 * on weight_decay, except that a group whose base value is 0 stays at 0 (not eta_min).
 * ------------------------------------------------------------------------------------ */

static void wd_annealing_value(const ow__sched_item *it, const double *initial,
                               const double *cur, double *out, size_t n)
{
    annealing_value(it, initial, cur, out, n);
    if (it->last_step != 0)
        for (size_t g = 0; g < n; g++)
            if (it->base[g] == 0)
                out[g] = 0;
}

/* ---- CosineRestartLR
 * ---------------------------------------------------------------------- */

static int restart_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    const ow_cfg *periods = ow__cfg_map_get(b->node, "periods");
    const ow_cfg *weights = ow__cfg_map_get(b->node, "restart_weights");
    size_t np = periods->v.c.n;
    size_t nw = weights ? weights->v.c.n : 1;
    cosine *c = ow__calloc(1, sizeof *c + 3 * np * sizeof(double));
    if (!c)
        return ow__nomem(err);
    it->impl = c;
    c->n_periods = np;
    if (nw != np)
        return ow__sched_fail(b, err, weights ? "restart_weights" : "periods",
                              "periods and restart_weights should have the same length "
                              "(got %zu and %zu)",
                              np, nw);
    double *p = c->data, *w = p + np, *cum = w + np;
    double sum = 0;
    for (size_t i = 0; i < np; i++) {
        const ow_cfg *v = periods->v.c.items[i];
        p[i] = (v->type == OW_CFG_INT ? (double)v->v.i : v->v.d) * b->scale;
        sum += p[i];
        cum[i] = sum;
        if (weights) {
            const ow_cfg *x = weights->v.c.items[i];
            w[i] = x->type == OW_CFG_INT ? (double)x->v.i : x->v.d;
        } else {
            w[i] = 1;
        }
    }
    return read_eta(c, b, false, err);
}

static void restart_value(const ow__sched_item *it, const double *initial,
                          const double *cur, double *out, size_t n)
{
    const cosine *c = it->impl;
    const double *p = c->data, *w = p + c->n_periods, *cum = w + c->n_periods;
    const double pi = 3.141592653589793;
    double t = (double)it->last_step;
    size_t idx = 0;
    (void)initial;
    while (idx < c->n_periods && !(t < cum[idx]))
        idx++;
    if (idx == c->n_periods) { /* past the last period: held */
        memcpy(out, cur, n * sizeof *out);
        return;
    }
    double step = t - (idx == 0 ? 0 : cum[idx - 1]), period = p[idx];
    for (size_t g = 0; g < n; g++) {
        double eta_max = it->base[g] * w[idx];
        double m = eta_min_of(c, it->base[g]);
        if (step == 0)
            out[g] = eta_max;
        else
            out[g] = (1 + cos(pi * step / period)) / (1 + cos(pi * (step - 1) / period)) *
                         (cur[g] - m) +
                     m;
    }
}

/* ---- which local steps change the value (the overlap warning) ------------------------
 */

static bool annealing_changes(const ow__sched_item *it, double t)
{
    (void)it;
    return t != 0;
}

static bool restart_changes(const ow__sched_item *it, double t)
{
    const cosine *c = it->impl;
    return c->n_periods && t < c->data[3 * c->n_periods - 1];
}

/* ---- keys and entries
 * ------------------------------------------------------------------- */

#define ANNEALING_KEYS                                                                   \
    {.name = "T_max",                                                                    \
     .type = OW_T_NUMBER,                                                                \
     .min = 0,                                                                           \
     .max = INFINITY,                                                                    \
     .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN | OW_KEY_NULLABLE,                          \
     .doc = "half period in steps (default: end - begin)"},                              \
        {.name = "eta_min",                                                              \
         .type = OW_T_NUMBER,                                                            \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "lowest value, the same for every group (default 0)"},                   \
    {                                                                                    \
        .name = "eta_min_ratio", .type = OW_T_NUMBER, .flags = OW_KEY_NULLABLE,          \
        .doc = "lowest value as a fraction of each group's base value"                   \
    }
#define RESTART_KEYS                                                                     \
    {.name = "periods",                                                                  \
     .type = OW_T_NUMLIST,                                                               \
     .min = 0,                                                                           \
     .max = INFINITY,                                                                    \
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE | OW_KEY_MIN_OPEN,                          \
     .doc = "length of each cosine cycle, in steps"},                                    \
        {.name = "restart_weights",                                                      \
         .type = OW_T_NUMLIST,                                                           \
         .def = "[1]",                                                                   \
         .doc = "each cycle starts at base value times its weight"},                     \
        {.name = "eta_min",                                                              \
         .type = OW_T_NUMBER,                                                            \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "lowest value, the same for every group (this or eta_min_ratio)"},       \
    {                                                                                    \
        .name = "eta_min_ratio", .type = OW_T_NUMBER, .flags = OW_KEY_NULLABLE,          \
        .doc = "lowest value as a fraction of each group's base value"                   \
    }

static const ow_key annealing_keys[] = {ANNEALING_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key annealing_p_keys[] = {
    OW__SCHED_PARAM_NAME_KEY, ANNEALING_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key restart_keys[] = {RESTART_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key restart_p_keys[] = {
    OW__SCHED_PARAM_NAME_KEY, RESTART_KEYS, OW__SCHED_MM_KEYS, {0}};

OW__SCHED_MM_DEFS(annealing);
static const ow__sched_def wd_annealing = {.kind = OW__SCHED_MM,
                                           .param = "weight_decay",
                                           .init = annealing_init,
                                           .value = wd_annealing_value,
                                           .changes = annealing_changes};
OW__SCHED_MM_DEFS(restart);

#define MM "mmengine"
OW__SCHED_ENTRY(ow__sched_cosine_lr, "CosineAnnealingLR", MM, annealing_keys,
                annealing_lr,
                "lr annealed along a cosine from its base value towards eta_min");
OW__SCHED_ENTRY(ow__sched_cosine_momentum, "CosineAnnealingMomentum", MM, annealing_keys,
                annealing_mom, "momentum annealed along a cosine towards eta_min");
OW__SCHED_ENTRY(ow__sched_cosine_param, "CosineAnnealingParamScheduler", MM,
                annealing_p_keys, annealing_param,
                "any group value annealed along a cosine towards eta_min");
OW__SCHED_ENTRY(ow__sched_restart_lr, "CosineRestartLR", MM, restart_keys, restart_lr,
                "cosine annealing restarted at each period, at base times its weight");
OW__SCHED_ENTRY(ow__sched_restart_momentum, "CosineRestartMomentum", MM, restart_keys,
                restart_mom, "momentum: cosine annealing with restarts");
OW__SCHED_ENTRY(ow__sched_restart_param, "CosineRestartParamScheduler", MM,
                restart_p_keys, restart_param,
                "any group value: cosine annealing with restarts");
OW__SCHED_ENTRY(ow__sched_cosine_weight_decay, "CosineAnnealingWeightDecay", "mmpretrain",
                annealing_keys, wd_annealing, /* no param_name: mmpretrain passes it */
                "mmpretrain: weight_decay annealed along a cosine towards eta_min; a "
                "group starting at 0 stays at 0");
