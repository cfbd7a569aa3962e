/* timm_step.c -- timm's StepLRScheduler and MultiStepLRScheduler (decay by steps of t,
 * warmup_prefix on by default) and PlateauLRScheduler (warmup, then torch's
 * ReduceLROnPlateau on the metric given to step(epoch, metric)). */
#include "sched_internal.h"

#include <string.h>

typedef struct steps {
    double decay_rate, warmup_lr_init;
    bool prefix;
    double decay_t; /* Step */
    size_t n;       /* MultiStep */
    double milestones[];
} steps;

/* Python's bisect.bisect_right, on the list as given (timm assumes it sorted). */
static size_t bisect_right(const double *a, size_t n, double x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x < a[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static void steps_lr(const ow__sched_item *it, double t, double *out, size_t n,
                     bool multi)
{
    const steps *s = it->impl;
    for (size_t g = 0; g < n; g++) {
        double base = it->base[g];
        if (t < it->warmup_t) {
            out[g] = s->warmup_lr_init + t * ((base - s->warmup_lr_init) / it->warmup_t);
            continue;
        }
        double tt = s->prefix ? t - it->warmup_t : t;
        /* MultiStep decays one step before each milestone: bisect_right(decay_t, t + 1),
         * as timm 1.0's multistep_lr.py does */
        double k = multi ? (double)bisect_right(s->milestones, s->n, tt + 1)
                         : ow__py_floordiv(tt, s->decay_t);
        out[g] = base * pow(s->decay_rate, k);
    }
}

static void step_lr(const ow__sched_item *it, double t, double *out, size_t n)
{
    steps_lr(it, t, out, n, false);
}

static void multistep_lr(const ow__sched_item *it, double t, double *out, size_t n)
{
    steps_lr(it, t, out, n, true);
}

static int steps_init(ow__sched_item *it, const ow__sched_build *b, bool multi,
                      ow_error *err)
{
    const ow_cfg *list = multi ? ow__cfg_map_get(b->node, "decay_t") : NULL;
    size_t n = list ? list->v.c.n : 0;
    steps *s = ow__calloc(1, sizeof *s + n * sizeof(double));
    if (!s)
        return ow__nomem(err);
    it->impl = s;
    int rc = ow__sched_timm_common(it, b, err);
    if (rc)
        return rc;
    s->decay_rate = ow__sched_num(b, "decay_rate");
    s->warmup_lr_init = ow__sched_num(b, "warmup_lr_init");
    s->prefix = ow__sched_num(b, "warmup_prefix") != 0;
    s->n = n;
    if (multi) {
        for (size_t i = 0; i < n; i++) {
            const ow_cfg *v = list->v.c.items[i];
            s->milestones[i] = v->type == OW_CFG_INT ? (double)v->v.i : v->v.d;
        }
    } else {
        s->decay_t = ow__sched_num(b, "decay_t");
    }
    return OW_OK;
}

static int step_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    return steps_init(it, b, false, err);
}

static int multistep_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    return steps_init(it, b, true, err);
}

/* ---- PlateauLRScheduler
 * ---------------------------------------------------------------- */

/* Only the warmup is a function of t (epoch <= warmup_t); with no warmup its step is 1,
 * as in timm, so step(0) writes warmup_lr_init. */
static void plateau_lr(const ow__sched_item *it, double t, double *out, size_t n)
{
    const ow__plateau *p = it->impl;
    double init = p->warmup_lr_init;
    for (size_t g = 0; g < n; g++) {
        double step = it->warmup_t > 0 ? (it->base[g] - init) / it->warmup_t : 1;
        out[g] = init + t * step;
    }
}

static const char *const modes[] = {"min", "max", NULL};

static int plateau_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    size_t n = b->n;
    ow__plateau *p = ow__calloc(1, sizeof *p + (n ? n : 1) * sizeof(double));
    if (!p)
        return ow__nomem(err);
    it->impl = p;
    p->min_values = (double *)(p + 1);
    int rc = ow__sched_timm_common(it, b, err);
    size_t mode;
    if (rc || (rc = ow__sched_choice(b, "mode", modes, &mode, err)))
        return rc;
    p->greater = mode == 1;
    p->absolute = false; /* torch's default threshold_mode 'rel' */
    p->threshold = ow__sched_num(b, "threshold");
    p->patience = ow__sched_num(b, "patience_t");
    p->cooldown = ow__sched_num(b, "cooldown_t");
    p->factor = ow__sched_num(b, "decay_rate");
    p->eps = 1e-8;
    for (size_t g = 0; g < n; g++)
        p->min_values[g] = ow__sched_num(b, "lr_min");
    p->warmup_lr_init = ow__sched_num(b, "warmup_lr_init");
    it->state[0] = p->greater ? -INFINITY : INFINITY; /* torch's mode_worse */
    return OW_OK;
}

/* ---- keys and entries
 * ------------------------------------------------------------------- */

static const ow_key step_keys[] = {
    {.name = "decay_t",
     .type = OW_T_NUMBER,
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE | OW_KEY_MIN_OPEN,
     .doc = "t between decays"},
    {.name = "decay_rate",
     .type = OW_T_NUMBER,
     .def = "1.0",
     .doc = "multiplier per decay"},
    OW__SCHED_TIMM_WARMUP_KEYS,
    {.name = "warmup_prefix",
     .type = OW_T_BOOL,
     .def = "true",
     .doc = "the decay starts after the warmup (else underneath it)"},
    OW__SCHED_TIMM_KEYS,
    {0},
};
static const ow_key multistep_keys[] = {
    {.name = "decay_t",
     .type = OW_T_NUMLIST,
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE,
     .doc = "milestones in t, sorted (each decays one step early, as timm does)"},
    {.name = "decay_rate",
     .type = OW_T_NUMBER,
     .def = "1.0",
     .doc = "multiplier per milestone"},
    OW__SCHED_TIMM_WARMUP_KEYS,
    {.name = "warmup_prefix",
     .type = OW_T_BOOL,
     .def = "true",
     .doc = "the decay starts after the warmup (else underneath it)"},
    OW__SCHED_TIMM_KEYS,
    {0},
};
static const ow_key plateau_keys[] = {
    {.name = "decay_rate",
     .type = OW_T_NUMBER,
     .def = "0.1",
     .min = 0,
     .max = 1,
     .flags = OW_KEY_RANGE | OW_KEY_MAX_OPEN,
     .doc = "multiplier on a plateau (< 1)"},
    {.name = "patience_t",
     .type = OW_T_INT,
     .def = "10",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "epochs without improvement before reducing"},
    {.name = "verbose",
     .type = OW_T_BOOL,
     .def = "true",
     .doc = "accepted for compatibility; optwrap never prints"},
    {.name = "threshold",
     .type = OW_T_NUMBER,
     .def = "0.0001",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "smallest relative change that counts"},
    {.name = "cooldown_t",
     .type = OW_T_INT,
     .def = "0",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "epochs to wait after a reduction"},
    OW__SCHED_TIMM_WARMUP_KEYS,
    {.name = "lr_min",
     .type = OW_T_NUMBER,
     .def = "0",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "lowest lr"},
    {.name = "mode",
     .type = OW_T_STRING,
     .def = "max",
     .doc = "'max' (the metric should grow) or 'min'"},
    {.name = "noise_range_t",
     .type = OW_T_ANY,
     .def = "null",
     .doc = "lr noise range (not supported: must stay null)"},
    {.name = "noise_type", .type = OW_T_STRING, .def = "normal", .doc = "lr noise kind"},
    {.name = "noise_pct", .type = OW_T_NUMBER, .def = "0.67", .doc = "lr noise limit"},
    {.name = "noise_std", .type = OW_T_NUMBER, .def = "1.0", .doc = "lr noise std-dev"},
    {.name = "noise_seed",
     .type = OW_T_INT,
     .flags = OW_KEY_NULLABLE,
     .doc = "lr noise seed"},
    {.name = "initialize",
     .type = OW_T_BOOL,
     .def = "true",
     .doc = "record the groups' initial lr (must stay true)"},
    {0},
};

static const char *const plateau_state[] = {"best", "num_bad_epochs", "cooldown_counter",
                                            "last_epoch", NULL};

static const ow__sched_def step_def = {
    .kind = OW__SCHED_TIMM, .param = "lr", .init = step_init, .timm_lr = step_lr};
static const ow__sched_def multistep_def = {.kind = OW__SCHED_TIMM,
                                            .param = "lr",
                                            .init = multistep_init,
                                            .timm_lr = multistep_lr};
static const ow__sched_def plateau_def = {.kind = OW__SCHED_TIMM_PLATEAU,
                                          .param = "lr",
                                          .state_keys = plateau_state,
                                          .init = plateau_init,
                                          .timm_lr = plateau_lr};

OW__SCHED_ENTRY(ow__sched_timm_step, "StepLRScheduler", "timm", step_keys, step_def,
                "timm: lr times decay_rate every decay_t, with warmup");
OW__SCHED_ENTRY(ow__sched_timm_multistep, "MultiStepLRScheduler", "timm", multistep_keys,
                multistep_def,
                "timm: lr times decay_rate at each milestone, with warmup");
OW__SCHED_ENTRY(ow__sched_timm_plateau, "PlateauLRScheduler", "timm", plateau_keys,
                plateau_def,
                "timm: warmup, then lr times decay_rate when the eval metric plateaus");
