/* replay.c -- re-runs a reference recording of a schedule (golden files of kind
 * mmengine_param_scheduler and timm_scheduler) the way the recording was made:
 * mmengine's runner hooks, or timm's train.py loop; every recorded value must match
 * within 1e-12 relative. Used by `optwrap replay --check` and the Check suite. */
#include "sched_internal.h"

#include <math.h>
#include <string.h>

#define TOLERANCE  1e-12
#define MAX_GROUPS 16

/* The recording's optimizer groups: lr, momentum and weight_decay only. */
typedef struct values {
    size_t n;
    double lr[MAX_GROUPS], momentum[MAX_GROUPS], wd[MAX_GROUPS];
    bool has_momentum, has_wd;
} values;

static bool replay_get(void *ctx, size_t g, const char *key, double *out)
{
    values *v = ctx;
    if (!strcmp(key, "lr"))
        *out = v->lr[g];
    else if (!strcmp(key, "momentum") && v->has_momentum)
        *out = v->momentum[g];
    else if (!strcmp(key, "weight_decay") && v->has_wd)
        *out = v->wd[g];
    else
        return false;
    return true;
}

static void replay_set(void *ctx, size_t g, const char *key, double value)
{
    values *v = ctx;
    if (!strcmp(key, "lr"))
        v->lr[g] = value;
    else if (!strcmp(key, "weight_decay"))
        v->wd[g] = value;
    else
        v->momentum[g] = value;
}

typedef struct check {
    double max_err;
    size_t count;
    char *msg;
    size_t n;
    ow_error *err;
} check;

static int malformed(const ow_cfg *node, const char *what, ow_error *err)
{
    return ow__error_at(err, OW_ERR_VALUE, node, "golden file: %s", what);
}

static bool numbers(const ow_cfg *list, double *out, size_t max, size_t *n)
{
    if (!list || list->type != OW_CFG_LIST || list->v.c.n > max)
        return false;
    for (size_t i = 0; i < list->v.c.n; i++) {
        const ow_cfg *x = list->v.c.items[i];
        if (x->type != OW_CFG_INT && x->type != OW_CFG_FLOAT)
            return false;
        out[i] = x->type == OW_CFG_INT ? (double)x->v.i : x->v.d;
    }
    *n = list->v.c.n;
    return true;
}

/* Compares the recorded row (one value per group) with the groups' values now. */
static int compare(check *c, const ow_cfg *row, const double *got, size_t n,
                   const char *what)
{
    double want[MAX_GROUPS];
    size_t m;
    if (!numbers(row, want, MAX_GROUPS, &m) || m != n)
        return malformed(row, "a row of values that does not have one per group", c->err);
    for (size_t g = 0; g < n; g++) {
        double diff = fabs(got[g] - want[g]);
        double rel = want[g] != 0 ? diff / fabs(want[g]) : diff;
        if (rel > c->max_err)
            c->max_err = rel;
        c->count++;
        if (rel > TOLERANCE) {
            char w[40], h[40];
            ow__format_double(want[g], w, sizeof w);
            ow__format_double(got[g], h, sizeof h);
            snprintf(c->msg, c->n, "%s[%zu]: expected %s, got %s (relative error %.3g)",
                     what, g, w, h, rel);
            return ow__error_at(c->err, OW_ERR_VALUE, row->v.c.items[g], "%s", c->msg);
        }
    }
    return OW_OK;
}

static const ow_cfg *row_of(const ow_cfg *list, size_t i)
{
    return list && list->type == OW_CFG_LIST && i < list->v.c.n ? list->v.c.items[i]
                                                                : NULL;
}

/* mmengine: lr[k] after k training iterations (k = 0: right after building). */
static int replay_mmengine(const ow_cfg *golden, ow_cfg *config, values *v, check *c)
{
    int64_t length = 0, epochs = 0, total = 0;
    const ow_cfg *lr = ow__cfg_map_get(golden, "lr");
    const ow_cfg *mom = ow__cfg_map_get(golden, "momentum");
    const ow_cfg *wd = ow__cfg_map_get(golden, "weight_decay");
    ow_cfg_get_int(ow__cfg_map_get(golden, "epoch_length"), &length, NULL);
    ow_cfg_get_int(ow__cfg_map_get(golden, "max_epochs"), &epochs, NULL);
    ow_cfg_get_int(ow__cfg_map_get(golden, "total_iters"), &total, NULL);
    if (length <= 0 || epochs <= 0 || epochs > INT64_MAX / length ||
        total != length * epochs || !lr || lr->type != OW_CFG_LIST ||
        lr->v.c.n != (size_t)total + 1)
        return malformed(golden, "epoch_length, max_epochs, total_iters or lr missing",
                         c->err);
    ow_sched_target target = {.num_groups = v->n,
                              .has_base_group = v->n > 1,
                              .ctx = v,
                              .get = replay_get,
                              .set = replay_set};
    ow_sched_loop loop = {.epoch_length = length, .max_epochs = epochs};
    ow_sched *s = NULL;
    int rc = ow_sched_new(config, &target, &loop, &s, c->err);
    char what[48];
    for (int64_t k = 0; rc == OW_OK && k <= total; k++) {
        if (k > 0 && (rc = ow_sched_step_iter(s, c->err)) == OW_OK && k % length == 0)
            rc = ow_sched_step_epoch(s, NULL, c->err);
        snprintf(what, sizeof what, "lr[%lld]", (long long)k);
        if (rc == OW_OK)
            rc = compare(c, row_of(lr, (size_t)k), v->lr, v->n, what);
        snprintf(what, sizeof what, "momentum[%lld]", (long long)k);
        if (rc == OW_OK && mom)
            rc = compare(c, row_of(mom, (size_t)k), v->momentum, v->n, what);
        snprintf(what, sizeof what, "weight_decay[%lld]", (long long)k);
        if (rc == OW_OK && wd)
            rc = compare(c, row_of(wd, (size_t)k), v->wd, v->n, what);
    }
    /* the windows after the runner's `end` default and convert_to_iter_based */
    const ow_cfg *built = ow__cfg_map_get(golden, "built_schedulers");
    for (size_t i = 0; rc == OW_OK && built && i < ow_cfg_get_size(built); i++) {
        const ow_cfg *b = built->v.c.items[i];
        ow_sched_info info;
        double begin, end;
        if (ow_sched_get_info(s, i, &info) != OW_OK ||
            ow_cfg_get_double(ow__cfg_map_get(b, "begin"), &begin, NULL) ||
            ow_cfg_get_double(ow__cfg_map_get(b, "end"), &end, NULL))
            rc = malformed(b, "a built scheduler without begin and end", c->err);
        else if (begin != info.begin || end != info.end)
            rc = ow__error_at(c->err, OW_ERR_VALUE, b,
                              "built_schedulers.%zu: expected the window [%g, %g), got "
                              "[%g, %g)",
                              i, begin, end, info.begin, info.end);
    }
    ow_sched_free(s);
    return rc;
}

/* timm's train.py: step_update(num_updates) after every update, step(epoch + 1, metric)
 * after every epoch. */
static int replay_timm(const ow_cfg *golden, ow_cfg *config, values *v, check *c)
{
    int64_t upe = 0, epochs = 0;
    ow_cfg_get_int(ow__cfg_map_get(golden, "updates_per_epoch"), &upe, NULL);
    ow_cfg_get_int(ow__cfg_map_get(golden, "num_epochs"), &epochs, NULL);
    const ow_cfg *used = ow__cfg_map_get(golden, "lr_used");
    const ow_cfg *after = ow__cfg_map_get(golden, "lr_after_epoch");
    const ow_cfg *metrics = ow__cfg_map_get(golden, "metrics");
    if (upe <= 0 || !used || used->type != OW_CFG_LIST || !after)
        return malformed(golden, "updates_per_epoch, lr_used or lr_after_epoch missing",
                         c->err);
    ow_sched_target target = {
        .num_groups = v->n, .ctx = v, .get = replay_get, .set = replay_set};
    ow_sched_loop loop = {.epoch_length = upe}; /* the run: the epochs timm returns */
    ow_sched *s = NULL;
    int rc = ow_sched_new(config, &target, &loop, &s, c->err);
    if (rc == OW_OK && ow_sched_get_loop(s).max_epochs != epochs)
        rc = ow__error_at(c->err, OW_ERR_VALUE, ow__cfg_map_get(golden, "num_epochs"),
                          "num_epochs: expected %lld, got %lld", (long long)epochs,
                          (long long)ow_sched_get_loop(s).max_epochs);
    if (rc == OW_OK)
        rc = compare(c, ow__cfg_map_get(golden, "lr_at_start"), v->lr, v->n,
                     "lr_at_start");
    char what[64];
    for (size_t e = 0; rc == OW_OK && e < used->v.c.n; e++) {
        const ow_cfg *epoch = used->v.c.items[e];
        for (size_t u = 0; rc == OW_OK && u < ow_cfg_get_size(epoch); u++) {
            snprintf(what, sizeof what, "lr_used[%zu][%zu]", e, u);
            if ((rc = compare(c, row_of(epoch, u), v->lr, v->n, what)) == OW_OK)
                rc = ow_sched_step_iter(s, c->err);
        }
        double metric;
        bool has_metric = ow_cfg_get_double(row_of(metrics, e), &metric, NULL) == OW_OK;
        if (rc == OW_OK)
            rc = ow_sched_step_epoch(s, has_metric ? &metric : NULL, c->err);
        snprintf(what, sizeof what, "lr_after_epoch[%zu]", e);
        if (rc == OW_OK)
            rc = compare(c, row_of(after, e), v->lr, v->n, what);
    }
    ow_sched_free(s);
    return rc;
}

/* The config the recording's scheduler list or factory arguments stand for. */
static int make_config(const ow_cfg *golden, bool timm, ow_cfg **out, ow_error *err)
{
    const ow_cfg *list = ow__cfg_map_get(golden, timm ? "factory_kwargs" : "config");
    if (!list)
        return malformed(golden, timm ? "no factory_kwargs" : "no config", err);
    ow_cfg *config = ow__cfg_new(OW_CFG_MAP, NULL, 0, 0);
    ow_cfg *copy = ow__cfg_dup(list);
    if (!config || !copy || ow__cfg_map_set(config, "param_scheduler", copy) != OW_OK) {
        if (!config || !copy)
            ow_cfg_free(copy);
        ow_cfg_free(config);
        return ow__nomem(err);
    }
    copy = NULL;
    if (timm) {
        ow_cfg *type = ow__cfg_new_string("timm.create_scheduler_v2");
        ow_cfg *ps = ow__cfg_map_get(config, "param_scheduler");
        if (!type || ps->type != OW_CFG_MAP ||
            ow__cfg_map_set(ps, "type", type) != OW_OK) {
            ow_cfg_free(config);
            return type ? malformed(list, "factory_kwargs is not a map", err)
                        : ow__nomem(err);
        }
    }
    *out = config;
    return OW_OK;
}

int ow_sched_replay(const ow_cfg *golden, double *max_err, char *msg, size_t n,
                    ow_error *err)
{
    ow__error_reset(err);
    char local[2];
    check c = {
        .msg = msg && n ? msg : local, .n = msg && n ? n : sizeof local, .err = err};
    c.msg[0] = '\0';
    if (max_err)
        *max_err = 0;
    if (!golden || golden->type != OW_CFG_MAP)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_sched_replay: not a map");
    const ow_cfg *kind = ow__cfg_map_get(golden, "kind");
    bool timm =
        kind && kind->type == OW_CFG_STRING && !strcmp(kind->v.s, "timm_scheduler");
    if (!timm && !(kind && kind->type == OW_CFG_STRING &&
                   !strcmp(kind->v.s, "mmengine_param_scheduler")))
        return malformed(kind ? kind : golden,
                         "kind must be mmengine_param_scheduler or timm_scheduler", err);
    values v = {0};
    const ow_cfg *mom = ow__cfg_map_get(golden, "base_momentum");
    if (!numbers(ow__cfg_map_get(golden, "base_lr"), v.lr, MAX_GROUPS, &v.n) || v.n == 0)
        return malformed(golden, "base_lr must list each group's lr", err);
    size_t nm;
    v.has_momentum = mom && numbers(mom, v.momentum, MAX_GROUPS, &nm) && nm == v.n;
    const ow_cfg *wd = ow__cfg_map_get(golden, "base_weight_decay");
    v.has_wd = wd && numbers(wd, v.wd, MAX_GROUPS, &nm) && nm == v.n;
    ow_cfg *config = NULL;
    int rc = make_config(golden, timm, &config, err);
    if (rc == OW_OK)
        rc = timm ? replay_timm(golden, config, &v, &c)
                  : replay_mmengine(golden, config, &v, &c);
    ow_cfg_free(config);
    if (max_err)
        *max_err = c.max_err;
    if (rc == OW_OK) {
        const ow_cfg *name = ow__cfg_map_get(golden, "case");
        snprintf(c.msg, c.n, "%s %s: %zu values match (max relative error %.3g)",
                 kind->v.s, name && name->type == OW_CFG_STRING ? name->v.s : "?",
                 c.count, c.max_err);
    } else if (!c.msg[0] && err) {
        snprintf(c.msg, c.n, "%s", err->message);
    }
    return rc;
}
