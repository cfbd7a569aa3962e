/* mm_onecycle.c -- mmengine's OneCycleLR (and OneCycleParamScheduler, lr only): the
 * 1cycle policy, not chainable. At build time it overwrites every group's initial
 * value with eta_max / div_factor; the phases then anneal initial -> max -> min (or
 * initial -> max -> initial -> min with three_phase). https://arxiv.org/abs/1708.07120 */
#include "sched_internal.h"

#include <string.h>

typedef struct onecycle {
    double total_steps;
    double div_factor;
    bool linear;
    size_t n_phases;
    double end_step[3];
    int start[3], finish[3]; /* 0 initial, 1 max, 2 min */
    double *max, *min;       /* [n] each, in the same block */
} onecycle;

static const char *const strategies[] = {"cos", "linear", NULL};

static int onecycle_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    size_t n = b->n;
    onecycle *o = ow__calloc(1, sizeof *o + 2 * (n ? n : 1) * sizeof(double));
    if (!o)
        return ow__nomem(err);
    it->impl = o;
    o->max = (double *)(o + 1);
    o->min = o->max + n;
    if (strcmp(it->param, "lr") != 0)
        return ow__sched_fail(b, err, "param_name",
                              "OneCycle only works for learning rate updating, but got "
                              "param_name '%s'",
                              it->param);
    if (ow__sched_has(b, "total_steps")) {
        const ow_cfg *ts = ow__cfg_map_get(b->node, "total_steps");
        o->total_steps = (double)ts->v.i * b->scale;
    } else {
        o->total_steps = it->end - it->begin;
    }
    /* mmengine requires a Python float: an int 0 or 1 is rejected */
    const ow_cfg *pct_node = ow__cfg_map_get(b->node, "pct_start");
    if (pct_node && pct_node->type != OW_CFG_FLOAT)
        return ow__sched_fail(
            b, err, "pct_start",
            "pct_start must be a float between 0 and 1, got the int %lld "
            "(mmengine rejects an int here: write %lld.0)",
            (long long)pct_node->v.i, (long long)pct_node->v.i);
    double pct = ow__sched_num(b, "pct_start");
    size_t strategy;
    int rc = ow__sched_choice(b, "anneal_strategy", strategies, &strategy, err);
    if (rc)
        return rc;
    o->linear = strategy == 1;
    o->div_factor = ow__sched_num(b, "div_factor");
    double final_div = ow__sched_num(b, "final_div_factor");
    double t = o->total_steps;
    if (ow__sched_num(b, "three_phase") != 0) {
        o->n_phases = 3;
        o->end_step[0] = pct * t - 1;
        o->end_step[1] = 2 * pct * t - 2;
        o->end_step[2] = t - 1;
        o->start[0] = 0, o->finish[0] = 1;
        o->start[1] = 1, o->finish[1] = 0;
        o->start[2] = 0, o->finish[2] = 2;
    } else {
        o->n_phases = 2;
        o->end_step[0] = pct * t - 1;
        o->end_step[1] = t - 1;
        o->start[0] = 0, o->finish[0] = 1;
        o->start[1] = 1, o->finish[1] = 2;
    }
    /* eta_max counts every group the scheduler steps, the base group included */
    if ((rc =
             ow__sched_per_group(b, "eta_max", 0, n,
                                 b->has_base_group ? " (one per param group, mmengine's "
                                                     "base_param_settings group included)"
                                                   : " (one per param group)",
                                 o->max, err)))
        return rc;
    for (size_t g = 0; g < n; g++)
        o->min[g] = o->max[g] / o->div_factor / final_div;
    return OW_OK;
}

/* group['initial_lr'] = eta_max / div_factor, overwriting what earlier schedulers set */
static void onecycle_prepare(const ow__sched_item *it, double *initial, size_t n)
{
    const onecycle *o = it->impl;
    for (size_t g = 0; g < n; g++)
        initial[g] = o->max[g] / o->div_factor;
}

static int onecycle_check(const ow__sched_item *it, ow_error *err)
{
    const onecycle *o = it->impl;
    double g = (double)(it->global_step + 1);
    if (!(it->begin <= g && g < it->end) || (double)(it->last_step + 1) <= o->total_steps)
        return OW_OK;
    char buf[40];
    return ow__error(err, OW_ERR_VALUE, it->file, it->line, it->column,
                     "%s: Tried to step %lld times. The specified number of total steps "
                     "is %s",
                     it->entry->name, (long long)(it->last_step + 2),
                     ow__py_num(o->total_steps, true, buf, sizeof buf));
}

static void onecycle_value(const ow__sched_item *it, const double *initial,
                           const double *cur, double *out, size_t n)
{
    const onecycle *o = it->impl;
    const double pi = 3.141592653589793;
    double t = (double)it->last_step;
    (void)cur;
    for (size_t g = 0; g < n; g++) {
        const double ends[3] = {initial[g], o->max[g], o->min[g]};
        double start_step = 0;
        for (size_t i = 0; i < o->n_phases; i++) {
            double end_step = o->end_step[i];
            if (t <= end_step || i == o->n_phases - 1) {
                double pct = (t - start_step) / (end_step - start_step);
                double a = ends[o->start[i]], z = ends[o->finish[i]];
                if (o->linear)
                    out[g] = (z - a) * pct + a;
                else
                    out[g] = z + (a - z) / 2.0 * (cos(pi * pct) + 1);
                break;
            }
            start_step = end_step;
        }
    }
}

#define ONECYCLE_KEYS                                                                    \
    {.name = "eta_max",                                                                  \
     .type = OW_T_ANY,                                                                   \
     .def = "0",                                                                         \
     .doc =                                                                              \
         "peak lr: a number, or a list with one per param group (mmengine counts its "   \
         "base_param_settings group)"},                                                  \
        {.name = "total_steps",                                                          \
         .type = OW_T_INT,                                                               \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN | OW_KEY_NULLABLE,                      \
         .doc = "steps in the cycle (default: end - begin)"},                            \
        {.name = "pct_start",                                                            \
         .type = OW_T_NUMBER,                                                            \
         .def = "0.3",                                                                   \
         .min = 0,                                                                       \
         .max = 1,                                                                       \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "fraction of the cycle spent increasing (a float)"},                     \
        {.name = "anneal_strategy",                                                      \
         .type = OW_T_STRING,                                                            \
         .def = "cos",                                                                   \
         .doc = "'cos' or 'linear'"},                                                    \
        {.name = "div_factor",                                                           \
         .type = OW_T_NUMBER,                                                            \
         .def = "25.0",                                                                  \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,                                        \
         .doc = "initial lr = eta_max / div_factor"},                                    \
        {.name = "final_div_factor",                                                     \
         .type = OW_T_NUMBER,                                                            \
         .def = "10000.0",                                                               \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,                                        \
         .doc = "final lr = initial lr / final_div_factor"},                             \
    {                                                                                    \
        .name = "three_phase", .type = OW_T_BOOL, .def = "false",                        \
        .doc = "anneal back to the initial lr before the final phase"                    \
    }

static const ow_key onecycle_keys[] = {ONECYCLE_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key onecycle_p_keys[] = {
    OW__SCHED_PARAM_NAME_KEY, ONECYCLE_KEYS, OW__SCHED_MM_KEYS, {0}};

static const ow__sched_def onecycle_lr = {.kind = OW__SCHED_MM,
                                          .param = "lr",
                                          .init = onecycle_init,
                                          .value = onecycle_value,
                                          .prepare = onecycle_prepare,
                                          .check = onecycle_check};
static const ow__sched_def onecycle_param = {.kind = OW__SCHED_MM,
                                             .init = onecycle_init,
                                             .value = onecycle_value,
                                             .prepare = onecycle_prepare,
                                             .check = onecycle_check};

OW__SCHED_ENTRY(ow__sched_onecycle_lr, "OneCycleLR", "mmengine", onecycle_keys,
                onecycle_lr,
                "the 1cycle policy: up to eta_max, then down far below the start");
OW__SCHED_ENTRY(ow__sched_onecycle_param, "OneCycleParamScheduler", "mmengine",
                onecycle_p_keys, onecycle_param,
                "the 1cycle policy as a ParamScheduler (param_name must be 'lr')");
