/* mm_mult.c -- mmengine's multiplicative schedulers: ConstantLR, LinearLR, StepLR,
 * MultiStepLR, ExponentialLR and PolyLR, with their Momentum and ParamScheduler
 * versions. Each step multiplies the group's current value (chainable form), in the
 * order of operations of mmengine 0.11's param_scheduler.py.
 * https://github.com/open-mmlab/mmengine/blob/main/mmengine/optim/scheduler/param_scheduler.py
 */
#include "sched_internal.h"

#include <string.h>

/* Parameters of the classes here: the ones a class does not use stay 0. */
typedef struct mult {
    double factor, start_factor, end_factor; /* Constant, Linear */
    double total_iters;                      /* end - begin - 1 */
    double gamma, step_size;                 /* Step, MultiStep, Exponential */
    double eta_min, power;                   /* Poly */
    size_t n_milestones;
    double milestones[]; /* MultiStep, x epoch_length if converted */
} mult;

static int new_mult(ow__sched_item *it, size_t n_milestones, mult **out, ow_error *err)
{
    mult *m = ow__calloc(1, sizeof *m + n_milestones * sizeof(double));
    if (!m)
        return ow__nomem(err);
    m->total_iters = it->end - it->begin - 1;
    m->n_milestones = n_milestones;
    it->impl = m;
    *out = m;
    return OW_OK;
}

/* ---- ConstantLR: v*factor at t=0, v/factor at t=total_iters -------------------------
 */

static int constant_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    mult *m = NULL;
    int rc = new_mult(it, 0, &m, err);
    if (rc == OW_OK)
        m->factor = ow__sched_num(b, "factor");
    return rc;
}

static void constant_value(const ow__sched_item *it, const double *initial,
                           const double *cur, double *out, size_t n)
{
    const mult *m = it->impl;
    double t = (double)it->last_step;
    (void)initial;
    for (size_t g = 0; g < n; g++) {
        if (t == 0)
            out[g] = cur[g] * m->factor;
        else if (t != m->total_iters)
            out[g] = cur[g];
        else
            out[g] = cur[g] * (1.0 / m->factor);
    }
}

/* ---- LinearLR: from start_factor to end_factor over total_iters ----------------------
 */

static int linear_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    mult *m = NULL;
    int rc = new_mult(it, 0, &m, err);
    if (rc == OW_OK) {
        m->start_factor = ow__sched_num(b, "start_factor");
        m->end_factor = ow__sched_num(b, "end_factor");
    }
    return rc;
}

static void linear_value(const ow__sched_item *it, const double *initial,
                         const double *cur, double *out, size_t n)
{
    const mult *m = it->impl;
    double t = (double)it->last_step;
    double sf = m->start_factor, ef = m->end_factor;
    (void)initial;
    for (size_t g = 0; g < n; g++) {
        if (t == 0)
            out[g] = cur[g] * sf;
        else
            out[g] =
                cur[g] * (1. + (ef - sf) / (m->total_iters * sf + (t - 1) * (ef - sf)));
    }
}

/* ---- StepLR: gamma every step_size steps
 * ----------------------------------------------- */

static int step_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    mult *m = NULL;
    int rc = new_mult(it, 0, &m, err);
    if (rc == OW_OK) {
        m->gamma = ow__sched_num(b, "gamma");
        m->step_size = ow__sched_num(b, "step_size") * b->scale;
    }
    return rc;
}

static void step_value(const ow__sched_item *it, const double *initial, const double *cur,
                       double *out, size_t n)
{
    const mult *m = it->impl;
    double t = (double)it->last_step;
    bool decay = t != 0 && ow__py_mod(t, m->step_size) == 0;
    (void)initial;
    for (size_t g = 0; g < n; g++)
        out[g] = decay ? cur[g] * m->gamma : cur[g];
}

/* ---- MultiStepLR: gamma**count at each milestone (a Counter: repeats compound) --------
 */

static int multistep_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    const ow_cfg *list = ow__cfg_map_get(b->node, "milestones");
    mult *m = NULL;
    int rc = new_mult(it, list->v.c.n, &m, err);
    if (rc)
        return rc;
    m->gamma = ow__sched_num(b, "gamma");
    for (size_t i = 0; i < list->v.c.n; i++) {
        const ow_cfg *v = list->v.c.items[i];
        m->milestones[i] = (v->type == OW_CFG_INT ? (double)v->v.i : v->v.d) * b->scale;
    }
    return OW_OK;
}

static void multistep_value(const ow__sched_item *it, const double *initial,
                            const double *cur, double *out, size_t n)
{
    const mult *m = it->impl;
    double t = (double)it->last_step;
    int count = 0;
    (void)initial;
    for (size_t i = 0; i < m->n_milestones; i++)
        count += m->milestones[i] == t;
    for (size_t g = 0; g < n; g++)
        out[g] = count ? cur[g] * pow(m->gamma, (double)count) : cur[g];
}

/* ---- ExponentialLR: gamma every step after the first
 * ------------------------------------ */

static int exponential_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    mult *m = NULL;
    int rc = new_mult(it, 0, &m, err);
    if (rc == OW_OK)
        m->gamma = ow__sched_num(b, "gamma");
    return rc;
}

static void exponential_value(const ow__sched_item *it, const double *initial,
                              const double *cur, double *out, size_t n)
{
    const mult *m = it->impl;
    (void)initial;
    for (size_t g = 0; g < n; g++)
        out[g] = it->last_step == 0 ? cur[g] : cur[g] * m->gamma;
}

/* ---- PolyLR: (v - eta_min) * (1 - 1/(T - t + 1))**power + eta_min --------------------
 */

static int poly_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    mult *m = NULL;
    int rc = new_mult(it, 0, &m, err);
    if (rc == OW_OK) {
        m->eta_min = ow__sched_num(b, "eta_min");
        m->power = ow__sched_num(b, "power");
    }
    return rc;
}

static void poly_value(const ow__sched_item *it, const double *initial, const double *cur,
                       double *out, size_t n)
{
    const mult *m = it->impl;
    double t = (double)it->last_step;
    (void)initial;
    for (size_t g = 0; g < n; g++) {
        if (t == 0)
            out[g] = cur[g];
        else
            out[g] =
                (cur[g] - m->eta_min) * pow(1 - 1 / (m->total_iters - t + 1), m->power) +
                m->eta_min;
    }
}

/* ---- which local steps change the value (the overlap warning) ------------------------
 */

static bool constant_changes(const ow__sched_item *it, double t)
{
    const mult *m = it->impl;
    return t == 0 || t == m->total_iters;
}

static bool linear_changes(const ow__sched_item *it, double t)
{
    const mult *m = it->impl;
    return t <= m->total_iters &&
           (t == 0 ? m->start_factor != 1 : m->end_factor != m->start_factor);
}

static bool step_changes(const ow__sched_item *it, double t)
{
    const mult *m = it->impl;
    return t != 0 && ow__py_mod(t, m->step_size) == 0 && m->gamma != 1;
}

static bool multistep_changes(const ow__sched_item *it, double t)
{
    const mult *m = it->impl;
    for (size_t i = 0; i < m->n_milestones; i++)
        if (m->milestones[i] == t)
            return m->gamma != 1;
    return false;
}

static bool exponential_changes(const ow__sched_item *it, double t)
{
    const mult *m = it->impl;
    return t != 0 && m->gamma != 1;
}

static bool poly_changes(const ow__sched_item *it, double t)
{
    const mult *m = it->impl;
    return t != 0 && t <= m->total_iters;
}

/* ---- keys and entries
 * ------------------------------------------------------------------- */

#define CONSTANT_KEYS                                                                    \
    {                                                                                    \
        .name = "factor", .type = OW_T_NUMBER, .def = "0.3333333333333333", .min = 0,    \
        .max = 1, .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,                               \
        .doc = "multiplier until end - 1 (0 would divide by zero when restoring)"        \
    }
#define LINEAR_KEYS                                                                      \
    {.name = "start_factor",                                                             \
     .type = OW_T_NUMBER,                                                                \
     .def = "0.3333333333333333",                                                        \
     .min = 0,                                                                           \
     .max = 1,                                                                           \
     .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,                                            \
     .doc = "multiplier at the first step (0 would divide by zero at the second)"},      \
    {                                                                                    \
        .name = "end_factor", .type = OW_T_NUMBER, .def = "1.0", .min = 0, .max = 1,     \
        .flags = OW_KEY_RANGE, .doc = "multiplier reached at end - 1"                    \
    }
#define STEP_KEYS                                                                        \
    {.name = "step_size",                                                                \
     .type = OW_T_NUMBER,                                                                \
     .min = 0,                                                                           \
     .max = INFINITY,                                                                    \
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE | OW_KEY_MIN_OPEN,                          \
     .doc = "steps between decays"},                                                     \
    {                                                                                    \
        .name = "gamma", .type = OW_T_NUMBER, .def = "0.1",                              \
        .doc = "multiplier per decay"                                                    \
    }
#define MULTISTEP_KEYS                                                                   \
    {.name = "milestones",                                                               \
     .type = OW_T_NUMLIST,                                                               \
     .min = 0,                                                                           \
     .max = INFINITY,                                                                    \
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE,                                            \
     .doc = "local steps where gamma applies"},                                          \
    {                                                                                    \
        .name = "gamma", .type = OW_T_NUMBER, .def = "0.1",                              \
        .doc = "multiplier per milestone"                                                \
    }
#define EXPONENTIAL_KEYS                                                                 \
    {                                                                                    \
        .name = "gamma", .type = OW_T_NUMBER, .flags = OW_KEY_REQUIRED,                  \
        .doc = "multiplier per step"                                                     \
    }
#define POLY_KEYS                                                                        \
    {.name = "eta_min",                                                                  \
     .type = OW_T_NUMBER,                                                                \
     .def = "0",                                                                         \
     .doc = "value reached at end - 1"},                                                 \
    {                                                                                    \
        .name = "power", .type = OW_T_NUMBER, .def = "1.0",                              \
        .doc = "power of the polynomial"                                                 \
    }

static const ow_key constant_keys[] = {CONSTANT_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key constant_p_keys[] = {
    OW__SCHED_PARAM_NAME_KEY, CONSTANT_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key linear_keys[] = {LINEAR_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key linear_p_keys[] = {
    OW__SCHED_PARAM_NAME_KEY, LINEAR_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key step_keys[] = {STEP_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key step_p_keys[] = {
    OW__SCHED_PARAM_NAME_KEY, STEP_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key multistep_keys[] = {MULTISTEP_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key multistep_p_keys[] = {
    OW__SCHED_PARAM_NAME_KEY, MULTISTEP_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key exponential_keys[] = {EXPONENTIAL_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key exponential_p_keys[] = {
    OW__SCHED_PARAM_NAME_KEY, EXPONENTIAL_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key poly_keys[] = {POLY_KEYS, OW__SCHED_MM_KEYS, {0}};
static const ow_key poly_p_keys[] = {
    OW__SCHED_PARAM_NAME_KEY, POLY_KEYS, OW__SCHED_MM_KEYS, {0}};

OW__SCHED_MM_DEFS(constant);
OW__SCHED_MM_DEFS(linear);
OW__SCHED_MM_DEFS(step);
OW__SCHED_MM_DEFS(multistep);
OW__SCHED_MM_DEFS(exponential);
OW__SCHED_MM_DEFS(poly);

#define MM "mmengine"
OW__SCHED_ENTRY(ow__sched_constant_lr, "ConstantLR", MM, constant_keys, constant_lr,
                "lr times factor until end - 1, then restored");
OW__SCHED_ENTRY(ow__sched_constant_momentum, "ConstantMomentum", MM, constant_keys,
                constant_mom, "momentum times factor until end - 1, then restored");
OW__SCHED_ENTRY(ow__sched_constant_param, "ConstantParamScheduler", MM, constant_p_keys,
                constant_param, "any group value times factor until end - 1");
OW__SCHED_ENTRY(ow__sched_linear_lr, "LinearLR", MM, linear_keys, linear_lr,
                "lr multiplier moving linearly from start_factor to end_factor (warmup)");
OW__SCHED_ENTRY(ow__sched_linear_momentum, "LinearMomentum", MM, linear_keys, linear_mom,
                "momentum multiplier moving linearly from start_factor to end_factor");
OW__SCHED_ENTRY(ow__sched_linear_param, "LinearParamScheduler", MM, linear_p_keys,
                linear_param, "any group value's multiplier moving linearly");
OW__SCHED_ENTRY(ow__sched_step_lr, "StepLR", MM, step_keys, step_lr,
                "lr times gamma every step_size steps");
OW__SCHED_ENTRY(ow__sched_step_momentum, "StepMomentum", MM, step_keys, step_mom,
                "momentum times gamma every step_size steps");
OW__SCHED_ENTRY(ow__sched_step_param, "StepParamScheduler", MM, step_p_keys, step_param,
                "any group value times gamma every step_size steps");
OW__SCHED_ENTRY(ow__sched_multistep_lr, "MultiStepLR", MM, multistep_keys, multistep_lr,
                "lr times gamma at each milestone");
OW__SCHED_ENTRY(ow__sched_multistep_momentum, "MultiStepMomentum", MM, multistep_keys,
                multistep_mom, "momentum times gamma at each milestone");
OW__SCHED_ENTRY(ow__sched_multistep_param, "MultiStepParamScheduler", MM,
                multistep_p_keys, multistep_param,
                "any group value times gamma at each milestone");
OW__SCHED_ENTRY(ow__sched_exponential_lr, "ExponentialLR", MM, exponential_keys,
                exponential_lr, "lr times gamma every step");
OW__SCHED_ENTRY(ow__sched_exponential_momentum, "ExponentialMomentum", MM,
                exponential_keys, exponential_mom, "momentum times gamma every step");
OW__SCHED_ENTRY(ow__sched_exponential_param, "ExponentialParamScheduler", MM,
                exponential_p_keys, exponential_param,
                "any group value times gamma every step");
OW__SCHED_ENTRY(ow__sched_poly_lr, "PolyLR", MM, poly_keys, poly_lr,
                "lr decaying polynomially to eta_min at end - 1");
OW__SCHED_ENTRY(ow__sched_poly_momentum, "PolyMomentum", MM, poly_keys, poly_mom,
                "momentum decaying polynomially to eta_min at end - 1");
OW__SCHED_ENTRY(ow__sched_poly_param, "PolyParamScheduler", MM, poly_p_keys, poly_param,
                "any group value decaying polynomially to eta_min");
