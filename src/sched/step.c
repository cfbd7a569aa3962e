/* step.c -- a schedule over a run: mmengine's ParamSchedulerHook (after every
 * training iteration, epoch and validation, in list order), timm's step(epoch) and
 * step_update(num_updates), and what the schedule tells about itself. A step that
 * would fail is refused before any scheduler of it runs. Building (chain.c) calls
 * these, never the other way. */
#include "sched_internal.h"

#include <string.h>

double *ow__sched_initial_of(const ow_sched *s, const char *param)
{
    for (size_t i = 0; i < s->n_initial; i++)
        if (!strcmp(s->initial[i].param, param))
            return s->initial[i].v;
    return NULL;
}

int ow__sched_read(const ow_sched *s, const char *param, double *out, ow_error *err)
{
    for (size_t g = 0; g < s->n; g++)
        if (!s->target.get(s->target.ctx, g, param, &out[g]))
            return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                             "schedule target: group %zu lost its '%s'", g, param);
    return OW_OK;
}

void ow__sched_write(const ow_sched *s, const char *param, const double *v)
{
    for (size_t g = 0; g < s->n; g++)
        s->target.set(s->target.ctx, g, param, v[g]);
}

/* timm's update_groups: value * group['lr_scale'] where the group has one, unless the
 * optimizer applies lr_scale itself when stepping. */
void ow__sched_timm_apply(const ow_sched *s, const ow__sched_item *it, const double *v)
{
    for (size_t g = 0; g < s->n; g++) {
        double scale;
        double x = v[g];
        if (!s->target.lr_scale_at_step &&
            s->target.get(s->target.ctx, g, "lr_scale", &scale))
            x = x * scale;
        s->target.set(s->target.ctx, g, it->param, x);
    }
}

/* mmengine's _ParamScheduler.step(): active while begin <= global_step < end; the
 * value set by the last active step stays after the window. */
void ow__sched_mm_step(ow_sched *s, ow__sched_item *it)
{
    it->global_step++;
    if (!(it->begin <= (double)it->global_step && (double)it->global_step < it->end))
        return;
    it->last_step++;
    double *cur = s->scratch, *out = s->scratch + s->n;
    ow__sched_read(s, it->param, cur, NULL);
    it->def->value(it, ow__sched_initial_of(s, it->param), cur, out, s->n);
    ow__sched_write(s, it->param, out);
}

/* timm: the value at t when the scheduler counts in that unit (t_in_epochs). */
static void timm_step(ow_sched *s, ow__sched_item *it, double t, bool on_epoch,
                      const double *metric)
{
    double *v = s->scratch;
    if (it->def->kind == OW__SCHED_TIMM) {
        if (it->t_in_epochs != on_epoch)
            return;
        it->def->timm_lr(it, t, v, s->n);
        ow__sched_timm_apply(s, it, v);
        return;
    }
    /* PlateauLRScheduler: step() only; warmup while epoch <= warmup_t, then torch's
     * ReduceLROnPlateau on the metric (without one it holds: timm would fail) */
    if (!on_epoch)
        return;
    if (t <= it->warmup_t) {
        it->def->timm_lr(it, t, v, s->n);
        ow__sched_timm_apply(s, it, v);
        return;
    }
    if (!metric)
        return;
    const ow__plateau *p = it->impl;
    it->state[3] = t; /* last_epoch */
    if (!ow__plateau_update(p, it->state, *metric))
        return;
    const double *min_lr = p->min_values;
    ow__sched_read(s, it->param, v, NULL);
    for (size_t g = 0; g < s->n; g++) {
        double old = v[g], new_lr = old * p->factor;
        if (new_lr < min_lr[g])
            new_lr = min_lr[g];
        if (old - new_lr > p->eps)
            s->target.set(s->target.ctx, g, it->param, new_lr);
    }
}

static int check_step(ow_sched *s, bool by_epoch, ow_error *err)
{
    for (size_t i = 0; i < s->n_items; i++) {
        ow__sched_item *it = &s->items[i];
        if (it->def->kind == OW__SCHED_MM && it->by_epoch == by_epoch && it->def->check) {
            int rc = it->def->check(it, err);
            if (rc)
                return rc;
        }
    }
    return OW_OK;
}

int ow_sched_step_iter(ow_sched *s, ow_error *err)
{
    ow__error_reset(err);
    if (!s)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_sched_step_iter: NULL");
    int rc = check_step(s, false, err);
    if (rc)
        return rc;
    s->iters++;
    for (size_t i = 0; i < s->n_items; i++) {
        ow__sched_item *it = &s->items[i];
        if (it->def->kind == OW__SCHED_MM && !it->by_epoch)
            ow__sched_mm_step(s, it);
        else if (it->def->kind >= OW__SCHED_TIMM)
            timm_step(s, it, (double)s->iters, false, NULL);
    }
    return OW_OK;
}

int ow_sched_step_epoch(ow_sched *s, const double *metric, ow_error *err)
{
    ow__error_reset(err);
    if (!s)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_sched_step_epoch: NULL");
    int rc = check_step(s, true, err);
    if (rc)
        return rc;
    s->epochs++;
    for (size_t i = 0; i < s->n_items; i++) {
        ow__sched_item *it = &s->items[i];
        if (it->def->kind == OW__SCHED_MM && it->by_epoch)
            ow__sched_mm_step(s, it);
        else if (it->def->kind == OW__SCHED_MM_PLATEAU)
            it->global_step++; /* step() without metrics only counts */
        else if (it->def->kind >= OW__SCHED_TIMM)
            timm_step(s, it, (double)s->epochs, true, metric);
    }
    return OW_OK;
}

static const double *find_metric(const char *key, const char *const *names,
                                 const double *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (names[i] && !strcmp(names[i], key))
            return &values[i];
    return NULL;
}

/* mmengine's ReduceOnPlateauParamScheduler.step(metrics): reduce when the monitored
 * metric has not improved for `patience` validations; keep values within eps. */
static void plateau_step(ow_sched *s, ow__sched_item *it, double metric)
{
    if (!((double)it->global_step >= it->begin && (double)it->global_step < it->end))
        return;
    it->last_step++;
    const ow__plateau *p = it->impl;
    if (!ow__plateau_update(p, it->state, metric))
        return;
    const double *min_value = p->min_values;
    double *v = s->scratch;
    ow__sched_read(s, it->param, v, NULL);
    for (size_t g = 0; g < s->n; g++) {
        double new_v = v[g] * p->factor;
        if (new_v < min_value[g])
            new_v = min_value[g];
        if (v[g] - new_v > p->eps)
            s->target.set(s->target.ctx, g, it->param, new_v);
    }
}

int ow_sched_step_val(ow_sched *s, const char *const *names, const double *values,
                      size_t n, ow_error *err)
{
    ow__error_reset(err);
    if (!s || (n && (!names || !values)))
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_sched_step_val: NULL");
    /* every monitored metric must be there before any scheduler acts */
    for (size_t i = 0; i < s->n_items; i++) {
        const ow__sched_item *it = &s->items[i];
        if (it->def->kind != OW__SCHED_MM_PLATEAU)
            continue;
        const char *monitor = ((const ow__plateau *)it->impl)->monitor;
        if (!find_metric(monitor, names, values, n)) {
            char have[256] = "";
            size_t len = 0;
            for (size_t k = 0; k < n && len < sizeof have; k++) {
                int w = snprintf(have + len, sizeof have - len, "%s'%s'", k ? ", " : "",
                                 names[k] ? names[k] : "");
                len += w > 0 ? (size_t)w : 0;
            }
            return ow__error(err, OW_ERR_VALUE, it->file, it->line, it->column,
                             "param_scheduler.%zu (%s): expected key '%s' among the "
                             "validation metrics [%s], but it is not there",
                             i, it->entry->name, monitor, have);
        }
    }
    for (size_t i = 0; i < s->n_items; i++) {
        ow__sched_item *it = &s->items[i];
        if (it->def->kind == OW__SCHED_MM_PLATEAU)
            plateau_step(
                s, it,
                *find_metric(((const ow__plateau *)it->impl)->monitor, names, values, n));
    }
    return OW_OK;
}

int ow_sched_step_timm(ow_sched *s, int64_t epoch, const double *metric, ow_error *err)
{
    ow__error_reset(err);
    if (!s || !s->timm)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_sched_step_timm: the schedule has no timm scheduler");
    timm_step(s, &s->items[0], (double)epoch, true, metric);
    return OW_OK;
}

int ow_sched_step_timm_update(ow_sched *s, int64_t num_updates, const double *metric,
                              ow_error *err)
{
    ow__error_reset(err);
    if (!s || !s->timm)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_sched_step_timm_update: the schedule has no timm scheduler");
    (void)metric; /* only PlateauLRScheduler reads a metric, and not per update */
    timm_step(s, &s->items[0], (double)num_updates, false, NULL);
    return OW_OK;
}

/* ---- what a schedule is made of -------------------------------------------------------
 */

size_t ow_sched_get_num_warnings(const ow_sched *s)
{
    return s ? s->n_warnings : 0;
}

const ow_error *ow_sched_get_warning(const ow_sched *s, size_t i)
{
    return s && i < s->n_warnings ? &s->warnings[i] : NULL;
}

size_t ow_sched_get_count(const ow_sched *s)
{
    return s ? s->n_items : 0;
}

int ow_sched_get_info(const ow_sched *s, size_t i, ow_sched_info *out)
{
    if (!s || !out || i >= s->n_items)
        return ow__error(NULL, OW_ERR_MISUSE, NULL, 0, 0, "bad scheduler index");
    const ow__sched_item *it = &s->items[i];
    int64_t len = s->loop.epoch_length;
    *out = (ow_sched_info){.type = it->entry->name,
                           .param = it->param,
                           .by_epoch = it->by_epoch,
                           .begin = it->begin,
                           .end = it->end,
                           .begin_iter = -1,
                           .end_iter = -1};
    double per = it->by_epoch ? (double)len : 1.0;
    if (per > 0) {
        out->begin_iter = ow__i64_sat(it->begin * per);
        if (it->end != OW__SCHED_INF)
            out->end_iter = ow__i64_sat(it->end * per);
    }
    return OW_OK;
}

size_t ow_sched_get_num_params(const ow_sched *s)
{
    return s ? s->n_params : 0;
}

const char *ow_sched_get_param(const ow_sched *s, size_t i)
{
    return s && i < s->n_params ? s->params[i] : NULL;
}

ow_sched_loop ow_sched_get_loop(const ow_sched *s)
{
    return s ? s->loop : (ow_sched_loop){0, 0, 0};
}

const ow_sched_target *ow_sched_get_target(const ow_sched *s)
{
    return s ? &s->target : NULL;
}
