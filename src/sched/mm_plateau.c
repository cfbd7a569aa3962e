/* mm_plateau.c -- mmengine's ReduceOnPlateauLR / Momentum / ParamScheduler: multiply
 * by factor when the monitored validation metric has not improved for `patience`
 * validations; and the bookkeeping it shares with timm's PlateauLRScheduler (both
 * follow torch's ReduceLROnPlateau). Stepped by ow_sched_step_val. */
#include "sched_internal.h"

#include <string.h>

bool ow__plateau_update(const ow__plateau *p, double *state, double metric)
{
    double best = state[0];
    bool better;
    if (!p->greater && !p->absolute)
        better = metric < best * (1. - p->threshold);
    else if (!p->greater)
        better = metric < best - p->threshold;
    else if (!p->absolute)
        better = metric > best * (p->threshold + 1.);
    else
        better = metric > best + p->threshold;
    if (better) {
        state[0] = metric;
        state[1] = 0;
    } else {
        state[1] += 1;
    }
    if (state[2] > 0) { /* in cooldown: bad epochs are ignored */
        state[2] -= 1;
        state[1] = 0;
    }
    if (state[1] > p->patience) {
        state[2] = p->cooldown;
        state[1] = 0;
        return true;
    }
    return false;
}

static const char *const rules[] = {"less", "greater", NULL};
static const char *const threshold_rules[] = {"rel", "abs", NULL};

static int plateau_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    const ow_cfg *monitor = ow__cfg_map_get(b->node, "monitor");
    const char *name = monitor ? monitor->v.s : "loss";
    size_t n = b->n, len = strlen(name) + 1;
    ow__plateau *p = ow__calloc(1, sizeof *p + (n ? n : 1) * sizeof(double) + len);
    if (!p)
        return ow__nomem(err);
    it->impl = p;
    p->min_values = (double *)(p + 1);
    char *copy = (char *)(p->min_values + (n ? n : 1));
    memcpy(copy, name, len);
    p->monitor = copy;
    if (!it->by_epoch)
        return ow__sched_fail(b, err,
                              it->converted ? "convert_to_iter_based" : "by_epoch",
                              "%s only supports by_epoch: true", it->entry->name);
    size_t rule, threshold_rule;
    int rc;
    if ((rc = ow__sched_choice(b, "rule", rules, &rule, err)) ||
        (rc = ow__sched_choice(b, "threshold_rule", threshold_rules, &threshold_rule,
                               err)))
        return rc;
    p->greater = rule == 1;
    p->absolute = threshold_rule == 1;
    p->factor = ow__sched_num(b, "factor");
    p->patience = ow__sched_num(b, "patience");
    p->threshold = ow__sched_num(b, "threshold");
    p->cooldown = ow__sched_num(b, "cooldown");
    p->eps = ow__sched_num(b, "eps");
    /* min_value: a list has one entry per optimizer group; the base group repeats the
     * last one (mmengine appends it when the wrapper has base_param_settings) */
    size_t real = b->has_base_group ? n - 1 : n;
    if ((rc = ow__sched_per_group(b, "min_value", 0, real,
                                  " (one per optimizer param group; mmengine's "
                                  "base_param_settings group takes the last)",
                                  p->min_values, err)))
        return rc;
    if (b->has_base_group && real > 0)
        p->min_values[n - 1] = p->min_values[n - 2];
    /* mmengine's INF = int(1e9) is the first "best" */
    it->state[0] = p->greater ? -OW__SCHED_INF : OW__SCHED_INF;
    return OW_OK;
}

static const char *const plateau_state[] = {"best", "num_bad_epochs", "cooldown_counter",
                                            NULL};

#define PLATEAU_KEYS                                                                     \
    {.name = "monitor",                                                                  \
     .type = OW_T_STRING,                                                                \
     .def = "loss",                                                                      \
     .doc = "the validation metric to watch"},                                           \
        {.name = "rule",                                                                 \
         .type = OW_T_STRING,                                                            \
         .def = "less",                                                                  \
         .doc = "'less' (reduce when it stops decreasing) or 'greater'"},                \
        {.name = "factor",                                                               \
         .type = OW_T_NUMBER,                                                            \
         .def = "0.1",                                                                   \
         .min = 0,                                                                       \
         .max = 1,                                                                       \
         .flags = OW_KEY_RANGE | OW_KEY_MAX_OPEN,                                        \
         .doc = "multiplier on a plateau (< 1)"},                                        \
        {.name = "patience",                                                             \
         .type = OW_T_INT,                                                               \
         .def = "10",                                                                    \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "validations without improvement before reducing"},                      \
        {.name = "threshold",                                                            \
         .type = OW_T_NUMBER,                                                            \
         .def = "0.0001",                                                                \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "smallest change that counts"},                                          \
        {.name = "threshold_rule",                                                       \
         .type = OW_T_STRING,                                                            \
         .def = "rel",                                                                   \
         .doc = "'rel' (relative to the best) or 'abs'"},                                \
        {.name = "cooldown",                                                             \
         .type = OW_T_INT,                                                               \
         .def = "0",                                                                     \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "validations to wait after a reduction"},                                \
        {.name = "min_value",                                                            \
         .type = OW_T_ANY,                                                               \
         .def = "0.0",                                                                   \
         .doc = "lower bound: a number, or one per optimizer param group"},              \
    {                                                                                    \
        .name = "eps", .type = OW_T_NUMBER, .def = "1e-08", .min = 0, .max = INFINITY,   \
        .flags = OW_KEY_RANGE, .doc = "smaller changes are skipped"                      \
    }

static const ow_key plateau_keys[] = {PLATEAU_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key plateau_p_keys[] = {
    OW__SCHED_PARAM_NAME_KEY, PLATEAU_KEYS, OW__SCHED_MM_KEYS, {0}};

static const ow__sched_def plateau_lr = {.kind = OW__SCHED_MM_PLATEAU,
                                         .param = "lr",
                                         .state_keys = plateau_state,
                                         .init = plateau_init};
static const ow__sched_def plateau_mom = {.kind = OW__SCHED_MM_PLATEAU,
                                          .param = "momentum",
                                          .state_keys = plateau_state,
                                          .init = plateau_init};
static const ow__sched_def plateau_param = {
    .kind = OW__SCHED_MM_PLATEAU, .state_keys = plateau_state, .init = plateau_init};

OW__SCHED_ENTRY(ow__sched_plateau_lr, "ReduceOnPlateauLR", "mmengine", plateau_keys,
                plateau_lr, "lr times factor when a validation metric stops improving");
OW__SCHED_ENTRY(ow__sched_plateau_momentum, "ReduceOnPlateauMomentum", "mmengine",
                plateau_keys, plateau_mom,
                "momentum times factor when a validation metric stops improving");
OW__SCHED_ENTRY(ow__sched_plateau_param, "ReduceOnPlateauParamScheduler", "mmengine",
                plateau_p_keys, plateau_param,
                "any group value times factor when a validation metric stops improving");
