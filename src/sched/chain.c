/* chain.c -- from a config's param_scheduler to a schedule: every scheduler's type
 * resolved and its keys checked through the registry, `end` defaulted as mmengine's
 * runner does, convert_to_iter_based applied; then, once all of it is valid, each is
 * built in list order and takes its first step (mmengine) or writes its start (timm). */
#include "sched_internal.h"

#include <math.h>
#include <string.h>

static const char *const type_only[] = {"type", NULL};

/* ---- the run ---------------------------------------------------------------------- */

static int64_t train_int(const ow_cfg *train, const char *key)
{
    const ow_cfg *v = ow__cfg_map_get(train, key);
    return v && v->type == OW_CFG_INT && v->v.i > 0 ? v->v.i : 0;
}

/* The runner's loop: the caller's numbers, else train_cfg's (EpochBasedTrainLoop when
 * its type says so or by_epoch is true, as mmengine's runner picks it). */
static int resolve_loop(const ow_cfg *config, const ow_sched_loop *given, ow_sched *s,
                        ow_error *err)
{
    ow_sched_loop l = given ? *given : (ow_sched_loop){0, 0, 0};
    if (l.epoch_length < 0 || l.max_epochs < 0 || l.max_iters < 0)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_sched_new: negative loop length");
    const ow_cfg *train = ow__cfg_map_get(config, "train_cfg");
    if (l.max_epochs == 0 && l.max_iters == 0 && train && train->type == OW_CFG_MAP) {
        const ow_cfg *type = ow__cfg_map_get(train, "type");
        const ow_cfg *by_epoch = ow__cfg_map_get(train, "by_epoch");
        bool epochs = !(by_epoch && by_epoch->type == OW_CFG_BOOL && !by_epoch->v.b);
        if (type && type->type == OW_CFG_STRING)
            epochs = strstr(type->v.s, "IterBased") == NULL;
        if (epochs)
            l.max_epochs = train_int(train, "max_epochs");
        else
            l.max_iters = train_int(train, "max_iters");
    }
    /* counts stay exact as doubles, and max_epochs x epoch_length fits an int64_t */
    const int64_t lim = OW__COUNT_MAX;
    if (l.epoch_length > lim || l.max_epochs > lim || l.max_iters > lim ||
        (l.max_epochs > 0 && l.epoch_length > lim / l.max_epochs)) {
        const ow_cfg *at =
            given && (given->max_epochs || given->max_iters)
                ? NULL
                : ow__cfg_map_get(train, l.max_epochs ? "max_epochs" : "max_iters");
        return ow__error_at(err, OW_ERR_VALUE, at,
                            "the run is longer than 2^53 iterations (max_epochs %lld x "
                            "epoch_length %lld, max_iters %lld)",
                            (long long)l.max_epochs, (long long)l.epoch_length,
                            (long long)l.max_iters);
    }
    s->iter_based = l.max_epochs == 0 && l.max_iters > 0;
    if (l.max_epochs > 0)
        l.max_iters = l.max_epochs * l.epoch_length;
    s->loop = l;
    return OW_OK;
}

/* ---- one scheduler ------------------------------------------------------------------
 */

/* The window keys every mmengine scheduler has (mmengine's _ParamScheduler and
 * build_scheduler_from_cfg / build_iter_from_epoch). */
static int setup_window(ow__sched_item *it, ow__sched_build *b, const ow_sched *s,
                        bool checking, ow_error *err)
{
    const ow_cfg *m = b->node;
    it->cfg_by_epoch = it->by_epoch = ow__sched_num(b, "by_epoch") != 0;
    bool convert = ow__sched_num(b, "convert_to_iter_based") != 0;
    const ow_cfg *end = ow__cfg_map_get(m, "end");
    const ow_cfg *begin = ow__cfg_map_get(m, "begin");
    it->begin = ow__sched_num(b, "begin");
    it->end_given = end != NULL;
    if (end) {
        it->end_line = end->line;
        it->end_column = end->column;
        it->end = ow__sched_num(b, "end");
    } else {
        /* runner._build_param_scheduler: setdefault('end', max_epochs if by_epoch else
         * max_iters); an IterBasedTrainLoop has max_epochs 1 */
        double max = it->by_epoch ? (double)(s->iter_based ? 1 : s->loop.max_epochs)
                                  : (double)s->loop.max_iters;
        it->end = max > 0 ? max : OW__SCHED_INF;
    }
    it->cfg_begin = it->begin;
    it->cfg_end = it->end;
    bool ints =
        (!begin || begin->type == OW_CFG_INT) && (!end || end->type == OW_CFG_INT);
    int64_t length = s->loop.epoch_length;
    if (ow__sched_has(b, "epoch_length"))
        length = ow__i64_sat(ow__sched_num(b, "epoch_length"));
    b->epoch_length = length;
    if (convert) {
        if (!it->by_epoch)
            return ow__sched_fail(b, err, "convert_to_iter_based",
                                  "only an epoch-based scheduler (by_epoch: true) can be "
                                  "converted to iter-based");
        if (length <= 0 && !checking)
            return ow__sched_fail(b, err, "convert_to_iter_based",
                                  "convert_to_iter_based needs the epoch length "
                                  "(len(train_dataloader)): give it to the run "
                                  "(--epoch-length) or as this scheduler's epoch_length");
        if (!checking) {
            /* int(begin * epoch_length): Python's int() truncates */
            it->begin = trunc(it->begin * (double)length);
            if (it->end != OW__SCHED_INF)
                it->end = trunc(it->end * (double)length);
            it->by_epoch = false;
            it->converted = true;
            b->scale = (double)length;
            ints = true;
        }
    }
    if (it->end <= it->begin) {
        char bb[40], eb[40];
        return ow__sched_fail(
            b, err, end ? "end" : "begin",
            "end should be larger than begin, but got begin=%s, end=%s%s",
            ow__py_num(it->begin, ints, bb, sizeof bb),
            ow__py_num(it->end, ints, eb, sizeof eb),
            end ? ""
                : " (`end` is not given: it defaults to the run's "
                  "length, as mmengine's runner sets it)");
    }
    double last = ow__sched_num(b, "last_step");
    it->last_step = ow__i64_sat(last);
    return OW_OK;
}

/* Every group must hold the scheduled key (mmengine: KeyError on group[param_name];
 * its momentum schedulers check the optimizer's defaults first). */
static int check_target(const ow_sched *s, const ow__sched_item *it, ow__sched_build *b,
                        ow_error *err)
{
    for (size_t g = 0; g < s->n; g++) {
        double v;
        if (s->target.get(s->target.ctx, g, it->param, &v))
            continue;
        if (!strcmp(it->param, "momentum"))
            return ow__sched_fail(b, err, NULL,
                                  "optimizer must support momentum when using momentum "
                                  "scheduler (its groups have neither 'momentum' nor "
                                  "'betas')");
        return ow__sched_fail(b, err, it->def->param ? NULL : "param_name",
                              "param group %zu has no '%s' to schedule", g, it->param);
    }
    return OW_OK;
}

static int set_position(ow__sched_item *it, const ow_cfg *node, ow_error *err)
{
    it->line = node->line;
    it->column = node->column;
    if (node->file && !(it->file = ow__strdup(node->file)))
        return ow__nomem(err);
    return OW_OK;
}

/* Resolves, validates and sets up the scheduler of node `m` (everything but the first
 * step). s->target is unset (n 0) when checking without groups. */
static int setup_item(ow_sched *s, ow__sched_item *it, const ow_cfg *m, const char *where,
                      const char *scope, bool checking, int64_t *timm_epochs,
                      ow_error *err)
{
    char ctx[200];
    ow_cfg *class_cfg = NULL;
    int rc;
    if (m->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, m, "%s: expected map, got %s", where,
                            ow_cfg_type_name(m->type));
    const ow_cfg *type = ow__cfg_map_get(m, "type");
    if (!type)
        return ow__error_at(err, OW_ERR_MISSING_KEY, m, "%s: missing key 'type'", where);
    if ((rc = ow__registry_lookup(OW_KIND_SCHEDULER, type, scope, &it->entry, err)))
        return rc;
    if (!(it->def = ow__sched_def_of(it->entry)))
        return ow__error_at(
            err, OW_ERR_UNSUPPORTED, type,
            "%s: scheduler '%s' has no implementation in optwrap (run-time "
            "scheduler entries are schemas only)",
            where, it->entry->name);
    if ((rc = ow__schema_check(m, it->entry->keys, where, type_only, err)))
        return rc;
    snprintf(ctx, sizeof ctx, "%s (%s)", where, it->entry->name);
    ow__sched_build b = {.node = m,
                         .entry = it->entry,
                         .context = ctx,
                         .n = s->n,
                         .has_base_group = s->target.has_base_group,
                         .scale = 1,
                         .epoch_length = s->loop.epoch_length};
    if ((rc = set_position(it, m, err)))
        return rc;
    if (it->def->kind == OW__SCHED_TIMM_FACTORY) {
        /* create_scheduler_v2: build the class it picks from the keys it passes */
        if (checking && b.epoch_length <= 0)
            b.epoch_length = 1;
        if ((rc = ow__sched_timm_factory(&b, &class_cfg, timm_epochs, err)))
            return rc;
        const char *cls = ow__cfg_map_get(class_cfg, "type")->v.s;
        it->entry = ow_registry_find(OW_KIND_SCHEDULER, cls);
        it->def = it->entry ? ow__sched_def_of(it->entry) : NULL;
        if (!it->def) {
            ow_cfg_free(class_cfg);
            return ow__error_at(err, OW_ERR_UNSUPPORTED, m, "%s: '%s' is not registered",
                                ctx, cls);
        }
        b.node = class_cfg;
        b.entry = it->entry;
    }
    bool mm = it->def->kind == OW__SCHED_MM || it->def->kind == OW__SCHED_MM_PLATEAU;
    if (mm) {
        rc = setup_window(it, &b, s, checking, err);
    } else {
        it->begin = it->cfg_begin = 0;
        it->end = it->cfg_end = OW__SCHED_INF;
        it->t_in_epochs = ow__sched_num(&b, "t_in_epochs") != 0;
        it->by_epoch = it->cfg_by_epoch = it->t_in_epochs;
        it->end_given = false;
    }
    const char *param = it->def->param;
    if (rc == OW_OK && !param) {
        const ow_cfg *pn = ow__cfg_map_get(b.node, "param_name");
        param = pn ? pn->v.s : "";
    }
    if (rc == OW_OK && !(it->param = ow__strdup(param)))
        rc = ow__nomem(err);
    if (rc == OW_OK && !(it->base = ow__calloc(s->n ? s->n : 1, sizeof *it->base)))
        rc = ow__nomem(err);
    if (rc == OW_OK)
        rc = it->def->init(it, &b, err);
    if (rc == OW_OK && s->n)
        rc = check_target(s, it, &b, err);
    ow_cfg_free(class_cfg);
    return rc;
}

static void free_item(ow__sched_item *it)
{
    ow_free(it->file);
    ow_free(it->param);
    ow_free(it->base);
    ow_free(it->impl);
}

void ow_sched_free(ow_sched *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_items; i++)
        free_item(&s->items[i]);
    ow_free(s->items);
    for (size_t i = 0; i < s->n_initial; i++) {
        ow_free(s->initial[i].param);
        ow_free(s->initial[i].v);
    }
    ow_free(s->initial);
    ow_free(s->params);
    ow_free(s->warnings);
    ow_free(s->scratch);
    ow_free(s);
}

/* ---- building the whole list ---------------------------------------------------------
 */

/* The distinct keys, each with its table of initial values. */
static int make_tables(ow_sched *s, ow_error *err)
{
    size_t cap = s->n_items ? s->n_items : 1;
    if (!(s->initial = ow__calloc(cap, sizeof *s->initial)) ||
        !(s->params = ow__calloc(cap, sizeof *s->params)))
        return ow__nomem(err);
    for (size_t i = 0; i < s->n_items; i++) {
        const char *p = s->items[i].param;
        if (ow__sched_initial_of(s, p))
            continue;
        ow__sched_initial *t = &s->initial[s->n_initial];
        if (!(t->param = ow__strdup(p)))
            return ow__nomem(err);
        s->params[s->n_initial++] = t->param; /* counted now: freed with the schedule */
        if (!(t->v = ow__calloc(s->n ? s->n : 1, sizeof *t->v)))
            return ow__nomem(err);
    }
    s->n_params = s->n_initial;
    return OW_OK;
}

static ow__sched_initial *table_of(ow_sched *s, const char *param)
{
    for (size_t i = 0; i < s->n_initial; i++)
        if (!strcmp(s->initial[i].param, param))
            return &s->initial[i];
    return NULL;
}

/* mmengine: resuming by last_step needs initial_<param> from an earlier scheduler. */
static int check_resume(const ow_sched *s, size_t i, ow_error *err)
{
    const ow__sched_item *it = &s->items[i];
    if (it->last_step < 0 || it->def->kind != OW__SCHED_MM)
        return OW_OK;
    for (size_t j = 0; j < i; j++)
        if (!strcmp(s->items[j].param, it->param))
            return OW_OK;
    return ow__error(
        err, OW_ERR_VALUE, it->file, it->line, it->column,
        "param_scheduler.%zu (%s): param 'initial_%s' is not specified in "
        "param_groups[0] when resuming an optimizer (last_step %lld needs an "
        "earlier scheduler of '%s')",
        i, it->entry->name, it->param, (long long)it->last_step, it->param);
}

/* The first step: initial values recorded (setdefault), base values taken, then
 * mmengine's constructor step() or timm's update_groups. Cannot fail. */
static void construct(ow_sched *s, ow__sched_item *it)
{
    ow__sched_initial *t = table_of(s, it->param);
    if (it->def->prepare) {
        it->def->prepare(it, t->v, s->n);
        t->set = true;
    }
    if (!t->set) {
        ow__sched_read(s, it->param, t->v, NULL);
        t->set = true;
    }
    memcpy(it->base, t->v, s->n * sizeof *t->v);
    switch (it->def->kind) {
    case OW__SCHED_MM:
        it->global_step = -1;
        ow__sched_mm_step(s, it);
        break;
    case OW__SCHED_MM_PLATEAU:
        it->global_step = 0; /* its constructor does not step */
        break;
    default:
        /* timm: update_groups(base_values), then the warmup start value */
        ow__sched_timm_apply(s, it, it->base);
        if (it->warmup_t > 0) {
            it->def->timm_lr(it, 0, s->scratch, s->n);
            ow__sched_timm_apply(s, it, s->scratch);
        }
        break;
    }
}

static int count_items(const ow_cfg *list, const ow_cfg **first, size_t *count,
                       ow_error *err)
{
    *count = 0;
    *first = NULL;
    if (!list || list->type == OW_CFG_NULL)
        return OW_OK;
    if (list->type == OW_CFG_MAP) {
        *first = list;
        *count = 1;
        return OW_OK;
    }
    if (list->type != OW_CFG_LIST)
        return ow__error_at(err, OW_ERR_TYPE, list,
                            "param_scheduler: expected a list of maps, got %s",
                            ow_cfg_type_name(list->type));
    *count = list->v.c.n;
    return OW_OK;
}

/* Everything but the first steps: resolved, validated, allocated. */
static int setup(ow_sched *s, const ow_cfg *config, bool checking, ow_error *err)
{
    const ow_cfg *list = ow__cfg_map_get(config, "param_scheduler");
    const ow_cfg *single;
    size_t count;
    int rc = count_items(list, &single, &count, err);
    if (rc)
        return rc;
    const char *scope;
    if ((rc = ow__cfg_scope(config, &scope, err)))
        return rc;
    if (count && !(s->items = ow__calloc(count, sizeof *s->items)))
        return ow__nomem(err);
    int64_t timm_epochs = 0;
    for (size_t i = 0; i < count; i++) {
        char where[48];
        const ow_cfg *m = single ? single : list->v.c.items[i];
        if (single)
            snprintf(where, sizeof where, "param_scheduler");
        else
            snprintf(where, sizeof where, "param_scheduler.%zu", i);
        s->n_items = i + 1;
        if ((rc = setup_item(s, &s->items[i], m, where, scope, checking, &timm_epochs,
                             err)))
            return rc;
        bool timm = s->items[i].def->kind >= OW__SCHED_TIMM;
        if (timm && count > 1)
            return ow__error_at(err, OW_ERR_VALUE, m,
                                "%s (%s): a timm scheduler sets the lr from its own step "
                                "count and must be the only scheduler (got %zu)",
                                where, s->items[i].entry->name, count);
        s->timm = timm;
        if ((rc = check_resume(s, i, err)))
            return rc;
    }
    /* timm's train.py trains for the epochs create_scheduler_v2 returns */
    if (timm_epochs > 0 && s->loop.max_epochs == 0 && s->loop.max_iters == 0) {
        s->loop.max_epochs = timm_epochs;
        s->loop.max_iters = timm_epochs * s->loop.epoch_length;
    }
    if ((rc = make_tables(s, err)))
        return rc;
    if (!checking && !(s->scratch = ow__calloc(2 * s->n, sizeof *s->scratch)))
        return ow__nomem(err);
    return checking ? OW_OK : ow__sched_find_warnings(s, err);
}

int ow_sched_new(const ow_cfg *config, const ow_sched_target *target,
                 const ow_sched_loop *loop, ow_sched **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_sched_new: out is NULL");
    *out = NULL;
    if (!config || !target || !target->get || !target->set || target->num_groups == 0)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_sched_new: config is NULL or the target has no groups or "
                         "no get/set");
    if (config->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, config, "config: expected map, got %s",
                            ow_cfg_type_name(config->type));
    ow_sched *s = ow__calloc(1, sizeof *s);
    if (!s)
        return ow__nomem(err);
    s->target = *target;
    s->n = target->num_groups;
    int rc = resolve_loop(config, loop, s, err);
    if (rc == OW_OK)
        rc = setup(s, config, false, err);
    if (rc) {
        ow_sched_free(s);
        return rc;
    }
    for (size_t i = 0; i < s->n_items; i++)
        construct(s, &s->items[i]);
    *out = s;
    return OW_OK;
}

int ow_sched_check(const ow_cfg *config, ow_error *err)
{
    ow__error_reset(err);
    if (!config)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_sched_check: config is NULL");
    if (config->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, config, "config: expected map, got %s",
                            ow_cfg_type_name(config->type));
    ow_sched *s = ow__calloc(1, sizeof *s);
    if (!s)
        return ow__nomem(err);
    int rc = resolve_loop(config, NULL, s, err);
    if (rc == OW_OK)
        rc = setup(s, config, true, err);
    ow_sched_free(s);
    return rc;
}
