/* warn.c -- what a schedule that builds fine can still get wrong: two schedulers that
 * change the same value at the same steps (chained, they multiply), a scheduler that
 * never becomes active, an `end` beyond the run. Computed once, at build time. */
#include "sched_internal.h"

#include <string.h>

#define SCAN_LIMIT (1 << 24) /* steps an overlap check walks at most */

static int add(ow_sched *s, const char *file, int line, int column, int code,
               const char *fmt, ...) OW__PRINTF(6, 7);
static int add(ow_sched *s, const char *file, int line, int column, int code,
               const char *fmt, ...)
{
    size_t cap = s->n_warnings;
    ow_error *w = ow__realloc(s->warnings, (cap + 1) * sizeof *w);
    if (!w)
        return OW_ERR_NOMEM;
    s->warnings = w;
    ow_error *e = &w[s->n_warnings++];
    ow_error_clear(e);
    va_list ap;
    va_start(ap, fmt);
    ow__verror(e, code, file, line, column, fmt, ap);
    va_end(ap);
    return OW_OK;
}

/* "param_scheduler.1 (CosineAnnealingLR)" */
static const char *name_of(const ow_sched *s, const ow__sched_item *it, char *buf,
                           size_t n)
{
    size_t i = (size_t)(it - s->items);
    if (s->n_items == 1)
        snprintf(buf, n, "param_scheduler (%s)", it->entry->name);
    else
        snprintf(buf, n, "param_scheduler.%zu (%s)", i, it->entry->name);
    return buf;
}

/* The steps the run takes in the item's unit: epochs or iterations (0: unknown). */
static double run_steps(const ow_sched *s, const ow__sched_item *it)
{
    return it->by_epoch ? (double)s->loop.max_epochs : (double)s->loop.max_iters;
}

static int check_activity(ow_sched *s, const ow__sched_item *it)
{
    char name[96], a[40], b[40];
    const char *unit = it->by_epoch ? "epoch" : "iteration";
    if (it->by_epoch && s->iter_based)
        return add(
            s, it->file, it->line, it->column, OW_ERR_VALUE,
            "%s steps at the end of each epoch, but an iteration-based run "
            "(IterBasedTrainLoop) has no epoch ends: %s",
            name_of(s, it, name, sizeof name),
            it->begin <= 0 && it->def->kind == OW__SCHED_MM
                ? "only its first step, at build time, applies (set by_epoch: false "
                  "or convert_to_iter_based: true)"
                : "it never becomes active");
    double run = run_steps(s, it);
    if (run > 0 && it->begin >= run)
        return add(s, it->file, it->line, it->column, OW_ERR_VALUE,
                   "%s never becomes active: it begins at %s %s, but the run has %s %ss",
                   name_of(s, it, name, sizeof name), unit,
                   ow__py_num(it->begin, true, a, sizeof a),
                   ow__py_num(run, true, b, sizeof b), unit);
    if (run > 0 && it->end_given && it->end != OW__SCHED_INF && it->end > run) {
        bool epochs = it->cfg_by_epoch && !s->iter_based;
        double cfg_run = epochs ? (double)s->loop.max_epochs : run;
        return add(
            s, it->file, it->end_line, it->end_column, OW_ERR_RANGE,
            "%s: end=%s is beyond the run, which has %s %ss: it is cut off before "
            "reaching its end",
            name_of(s, it, name, sizeof name), ow__py_num(it->cfg_end, true, a, sizeof a),
            ow__py_num(cfg_run, true, b, sizeof b), epochs ? "epoch" : "iteration");
    }
    return OW_OK;
}

/* Does the item change its value at global step g (0 = its build)? */
static bool changes_at(const ow__sched_item *it, double g)
{
    if (!(it->begin <= g && g < it->end))
        return false;
    double t = g - it->begin + (double)(it->last_step + 1);
    return !it->def->changes || it->def->changes(it, t);
}

/* Steps where both a and b change the value, in a's unit when a counts epochs and b
 * iterations (scale: iterations per epoch of a, else 1). */
static int check_overlap(ow_sched *s, const ow__sched_item *a, const ow__sched_item *b)
{
    double scale = 1;
    if (a->by_epoch != b->by_epoch) {
        if (s->loop.epoch_length <= 0)
            return OW_OK;
        if (b->by_epoch) { /* walk the item that counts epochs */
            const ow__sched_item *t = a;
            a = b;
            b = t;
        }
        scale = (double)s->loop.epoch_length;
    }
    double lo = a->begin > b->begin / scale ? a->begin : ceil(b->begin / scale);
    double hi = a->end < b->end / scale ? a->end : b->end / scale;
    double run = run_steps(s, a);
    if (run > 0 && run < hi)
        hi = run;
    if (hi - lo > SCAN_LIMIT)
        return OW_OK;
    double first = -1, last = -1, count = 0;
    for (double g = lo; g < hi; g++)
        if (changes_at(a, g) && changes_at(b, g * scale)) {
            if (first < 0)
                first = g;
            last = g;
            count++;
        }
    if (count == 0)
        return OW_OK;
    const ow__sched_item *later = a > b ? a : b, *earlier = a > b ? b : a;
    const char *unit = a->by_epoch ? "epoch" : "iteration";
    char n1[96], n2[96], x1[40], x2[40], steps[64] = "";
    if (count > 1)
        snprintf(steps, sizeof steps, "s %s..%s", ow__py_num(first, true, x1, sizeof x1),
                 ow__py_num(last, true, x2, sizeof x2));
    else
        snprintf(steps, sizeof steps, " %s", ow__py_num(first, true, x1, sizeof x1));
    return add(s, later->file, later->line, later->column, OW_ERR_VALUE,
               "%s and %s both change '%s' at %s%s: chained schedulers multiply there, "
               "which is rarely intended (let one begin where the other ends)",
               name_of(s, later, n1, sizeof n1), name_of(s, earlier, n2, sizeof n2),
               later->param, unit, steps);
}

int ow__sched_find_warnings(ow_sched *s, ow_error *err)
{
    for (size_t j = 0; j < s->n_items; j++) {
        ow__sched_item *it = &s->items[j];
        bool mm = it->def->kind == OW__SCHED_MM || it->def->kind == OW__SCHED_MM_PLATEAU;
        if (mm && check_activity(s, it) != OW_OK)
            return ow__nomem(err);
        for (size_t i = 0; i < j && it->def->kind == OW__SCHED_MM; i++) {
            const ow__sched_item *other = &s->items[i];
            if (other->def->kind == OW__SCHED_MM && !strcmp(other->param, it->param) &&
                check_overlap(s, other, it) != OW_OK)
                return ow__nomem(err);
        }
    }
    return OW_OK;
}
