/* wrapper.c -- the ow_optim_wrapper object: built from a whole config (groups, optimizer,
 * schedule on the optimizer's own hyperparameters), and mmengine's update_params per
 * micro-batch: the loss factor of the window, then at its end unscale, inf/nan check,
 * clipping, step or skip, GradScaler's update and zero_grad; schedulers after every
 * micro-batch and epoch, as the runner's ParamSchedulerHook steps them. */
#include "../dist/dist_internal.h"
#include "wrapper_internal.h"

#include <math.h>
#include <string.h>

void ow__wrapper_free_parts(ow_optim_wrapper *w)
{
    ow_sched_free(w->sched);
    ow_sched_target_free(w->target);
    ow_optimizer_free(w->opt);
    ow_groups_free(w->groups);
    ow_model_free(w->submodel);
    ow_cfg_free(w->config);
    ow_free(w->grads);
    ow_free(w->scratch);
    ow_free(w->lr);
    ow_free(w->momentum);
    ow_free(w->built);
    ow__half_free(w);
    ow__dist_free(w->dist);
}

void ow_optim_wrapper_free(ow_optim_wrapper *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nchildren; i++) {
        ow_optim_wrapper_free(w->children[i]);
        ow_free(w->names[i]);
    }
    ow_free(w->children);
    ow_free(w->names);
    ow__wrapper_free_parts(w);
    ow_free(w);
}

/* The run's length in micro-batches, as the runner passes it to
 * initialize_count_status; -1 when unknown. */
static int64_t run_iters(const ow_sched_loop *l)
{
    if (l->max_epochs > 0 && l->epoch_length > INT64_MAX / l->max_epochs)
        return INT64_MAX; /* a host's loop without a scheduler to check it */
    if (l->max_epochs > 0)
        return l->epoch_length > 0 ? l->max_epochs * l->epoch_length : -1;
    return l->max_iters > 0 ? l->max_iters : -1;
}

/* After the optimizer exists: its schedule, the counters and the loss scale. */
int ow__wrapper_finish(ow_optim_wrapper *w, const ow_cfg *config,
                       const ow_sched_loop *loop, ow_error *err)
{
    ow_sched_loop none = {0};
    w->model = ow__optimizer_model(w->opt);
    int rc = ow__wrapper_groups_json(w, &w->built, err); /* before the first step */
    if (rc == OW_OK)
        rc = ow_optimizer_sched_target_new(w->opt, &w->target, err);
    if (rc == OW_OK && config)
        rc = ow_sched_new(config, w->target, loop ? loop : &none, &w->sched, err);
    if (rc)
        return rc;
    w->ng = ow_optimizer_get_num_groups(w->opt);
    w->lr = ow__calloc(w->ng ? w->ng : 1, sizeof *w->lr);
    w->momentum = ow__calloc(w->ng ? w->ng : 1, sizeof *w->momentum);
    if (!w->lr || !w->momentum)
        return ow__nomem(err);
    w->scale = w->o.amp && w->o.scaler_enabled ? (float)w->o.init_scale : 1.0f;
    w->ds_last_overflow = -1;
    w->ds_hyst = w->o.ds_hysteresis;
    ow_sched_loop run = w->sched ? ow_sched_get_loop(w->sched) : (loop ? *loop : none);
    return ow_optim_wrapper_set_counts(w, 0, run_iters(&run), err);
}

int ow_optim_wrapper_new(const ow_cfg *config, ow_model *model, const ow_sched_loop *loop,
                         ow_optim_wrapper **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_new: out is NULL");
    *out = NULL;
    if (!config || !model)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_new: config or model is NULL");
    /* the whole config's one verdict (ow_cfg_check) before anything is built */
    int rc = ow_cfg_check(config, err);
    if (rc)
        return rc;
    ow_optim_wrapper *w = ow__calloc(1, sizeof *w);
    if (!w)
        return ow__nomem(err);
    rc = ow_cfg_copy(config, &w->config, err);
    w->host_model = model;
    if (rc == OW_OK && ow__wrapper_is_dict(ow_cfg_find(w->config, "optim_wrapper")))
        rc = ow__wrapper_dict_build(w, model, loop, err);
    else if (rc == OW_OK)
        rc = ow__wrapper_build_one(w, w->config, model, loop, err);
    if (rc) {
        ow_optim_wrapper_free(w);
        return rc;
    }
    *out = w;
    return OW_OK;
}

int ow__wrapper_build_one(ow_optim_wrapper *w, const ow_cfg *config,
                          const ow_model *model, const ow_sched_loop *loop, ow_error *err)
{
    const ow_cfg *node;
    int rc = ow_groups_build(config, model, &w->groups, err);
    if (rc == OW_OK)
        node = ow_cfg_find(config, "optim_wrapper");
    if (rc == OW_OK)
        rc = ow__wrapper_resolve(config, node, NULL, &w->o, err);
    if (rc == OW_OK)
        rc = ow_optimizer_new(w->groups, &w->opt, err);
    if (rc == OW_OK)
        rc = ow__wrapper_finish(w, config, loop, err);
    if (rc == OW_OK)
        w->config_hash = ow__wrapper_config_hash(config);
    return rc;
}

/* The keys of a wrapper around an optimizer the host built: those that build one are
 * refused, the rest validated as in a config. */
static int resolve_standalone(const ow_cfg *config, const ow_cfg *node,
                              ow__wrapper_opts *o, ow_error *err)
{
    static const char *const building[] = {"optimizer", "paramwise_cfg", "constructor",
                                           NULL};
    for (const char *const *k = building; *k; k++)
        if (ow__cfg_map_get(node, *k))
            return ow__error_at(err, OW_ERR_VALUE, ow__cfg_map_get(node, *k),
                                "optim_wrapper.%s: the optimizer is already built "
                                "(ow_optim_wrapper_wrap); give only the wrapper's keys",
                                *k);
    ow_cfg *copy = ow__cfg_dup(node), *empty = ow__cfg_new(OW_CFG_MAP, NULL, 0, 0);
    if (!copy || !empty || ow__cfg_map_set(copy, "optimizer", empty) != OW_OK) {
        if (!copy || !empty) /* else the map took it */
            ow_cfg_free(empty);
        ow_cfg_free(copy);
        return ow__nomem(err);
    }
    int rc = ow__wrapper_resolve(config, copy, NULL, o, err);
    ow_cfg_free(copy);
    return rc;
}

int ow_optim_wrapper_wrap(ow_optimizer *opt, const ow_cfg *wrapper_cfg,
                          const ow_cfg *config, const ow_sched_loop *loop,
                          ow_optim_wrapper **out, ow_error *err)
{
    ow__error_reset(err);
    if (out)
        *out = NULL;
    if (!out || !opt) {
        ow_optimizer_free(opt);
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_wrap: opt or out is NULL");
    }
    ow_optim_wrapper *w = ow__calloc(1, sizeof *w);
    if (!w) {
        ow_optimizer_free(opt);
        return ow__nomem(err);
    }
    w->opt = opt;
    int rc = OW_OK;
    if (wrapper_cfg && ow_cfg_get_type(wrapper_cfg) != OW_CFG_MAP)
        rc = ow__error_at(err, OW_ERR_TYPE, wrapper_cfg, "optim_wrapper: expected map");
    else if (wrapper_cfg)
        rc = resolve_standalone(config, wrapper_cfg, &w->o, err);
    else
        w->o = (ow__wrapper_opts){.acc = 1, .init_scale = 1.0};
    if (rc == OW_OK && config)
        rc = ow_cfg_copy(config, &w->config, err);
    if (rc == OW_OK)
        rc = ow__wrapper_finish(w, w->config, loop, err);
    if (rc) {
        ow_optim_wrapper_free(w);
        return rc;
    }
    w->config_hash = ow__wrapper_config_hash(w->config);
    *out = w;
    return OW_OK;
}

/* ---- counters (mmengine's OptimWrapper) ------------------------------------------- */

int ow_optim_wrapper_set_counts(ow_optim_wrapper *w, int64_t iteration, int64_t max_iters,
                                ow_error *err)
{
    ow__error_reset(err);
    if (!w || iteration < 0 || max_iters < -1 || max_iters == 0)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_set_counts: needs a wrapper, an iteration "
                         ">= 0 and max_iters > 0 (or -1: unknown)");
    for (size_t i = 0; i < w->nchildren; i++)
        ow_optim_wrapper_set_counts(w->children[i], iteration, max_iters, err);
    w->inner = iteration;
    w->max_counts = max_iters;
    w->remainder = max_iters > 0 ? max_iters % w->o.acc : -1;
    return OW_OK;
}

/* mmengine's scale_loss factor for the coming micro-batch (0: past the announced run). */
static int64_t loss_factor(const ow_optim_wrapper *w)
{
    if (w->o.acc == 1)
        return 1;
    if (w->max_counts == -1)
        return w->o.acc;
    return w->inner < w->max_counts - w->remainder ? w->o.acc : w->remainder;
}

float ow_optim_wrapper_get_loss_multiplier(const ow_optim_wrapper *w)
{
    if (!w || w->nchildren || !w->opt)
        return 0.0f;
    int64_t f = loss_factor(w);
    /* autograd of (loss / factor) * scale: the scale (float32), divided in float32 */
    return f ? w->scale / (float)f : 0.0f;
}

bool ow_optim_wrapper_should_sync(const ow_optim_wrapper *w)
{
    if (!w || !w->opt)
        return true;
    int64_t next = w->inner + 1;
    return next % w->o.acc == 0 || next == w->max_counts;
}

/* ---- the update ------------------------------------------------------------------- */

static void record_values(ow_optim_wrapper *w, ow_update_info *r)
{
    for (size_t g = 0; g < w->ng; g++) {
        w->lr[g] = ow_optim_wrapper_get_lr(w, g);
        w->momentum[g] = ow_optim_wrapper_get_momentum(w, g);
    }
    r->num_groups = w->ng;
    r->lr = w->lr;
    r->momentum = w->momentum;
    const ow_cfg *base = ow__sched_target_base(w->target);
    r->has_base = base != NULL;
    r->base_lr = r->base_momentum = 0;
    if (base) {
        ow__sched_value_get(base, "lr", &r->base_lr);
        ow__sched_value_get(base, "momentum", &r->base_momentum);
    }
}

/* GradScaler.update(): back off after inf/nan, grow after growth_interval good steps;
 * a constant loss_scale is simply set again (update(new_scale)). */
static int update_scale(ow_optim_wrapper *w, bool found_inf, ow_error *err)
{
    const ow__wrapper_opts *o = &w->o;
    if (!o->amp || !o->scaler_enabled)
        return OW_OK;
    if (o->ds_scaler)
        return ow__wrapper_ds_update(w, found_inf, err);
    if (!o->dynamic) {
        w->scale = (float)o->init_scale;
        return OW_OK;
    }
    if (found_inf) {
        w->scale = (float)((double)w->scale * o->backoff_factor);
        w->tracker = 0;
    } else if (w->tracker + 1 == o->growth_interval) {
        float grown = (float)((double)w->scale * o->growth_factor);
        if (isfinite(grown))
            w->scale = grown;
        w->tracker = 0;
    } else {
        w->tracker++;
    }
    return OW_OK;
}

/* The end of a window: unscale, check, clip, step or skip, scale update, zero. Every
 * check comes first (one read-only pass), so that a refused update changes nothing;
 * unscaling and clipping are then one pass. Without clipping or skipping, the inf/nan
 * report comes from the zeroing pass after the step. */
static int window_end(ow_optim_wrapper *w, ow_update_info *r, ow_error *err)
{
    const ow__wrapper_opts *o = &w->o;
    int rc = ow__wrapper_collect_grads(w, err);
    if (rc)
        return rc;
    ow__half_gather(w); /* the host's half sums, exactly, into the fp32 ones */
    if (w->dist && (rc = ow__dist_reduce(w, err))) /* averaged over the ranks */
        return rc;
    bool amp = o->amp && o->scaler_enabled, norm = o->clip == OW__CLIP_NORM;
    /* unscale_: 1/scale in double, rounded to float */
    float inv = amp ? (float)(1.0 / (double)w->scale) : 1.0f, total = 0, coef = 1.0f;
    /* data-parallel: always checked first, so that every rank agrees */
    bool early = amp || norm || o->skip_nonfinite || w->dist, bad = false;
    if (early && w->dist)
        rc = ow__dist_scan(w, inv, o->norm_type, norm ? &total : NULL, &bad, err);
    else if (early)
        bad = ow__grads_scan(w->grads, w->ngrads, inv, o->norm_type, norm ? &total : NULL,
                             w->scratch);
    if (rc)
        return rc;
    if (norm && o->error_if_nonfinite && (bad || !isfinite(total)))
        return ow__error(err, OW_ERR_VALUE, NULL, 0, 0,
                         "clip_grad: the total norm of order %g for gradients is "
                         "non-finite, so it cannot be clipped (error_if_nonfinite is "
                         "true; set it to false to scale by the non-finite norm anyway)",
                         o->norm_type);
    if (norm) {
        /* max_norm / (total + 1e-6): torch's __rtruediv__ is reciprocal() * max_norm */
        coef = (1.0f / (total + 1e-6f)) * (float)o->max_norm;
        if (!(coef <= 1.0f) && !isnan(coef))
            coef = 1.0f;
        r->grad_norm = total;
        r->clip_coef = coef;
    }
    const ow__grad *g = w->grads; /* under ZeRO, only this rank's shard is stepped */
    size_t ng = w->ngrads;
    if (w->dist)
        ow__dist_grads(w, &g, &ng);
    float clamp = o->clip == OW__CLIP_VALUE ? (float)o->clip_value : -1.0f;
    bool clamped_bad = ow__grads_apply(g, ng, inv, coef, clamp);
    /* half gradients: the step reads them so (float32 ones were just written so) */
    ow__optimizer_set_grad_xform(w->opt, inv, coef, clamp);
    bool skip = bad && (amp || o->skip_nonfinite);
    rc = skip ? OW_OK : w->dist ? ow__dist_step(w, err) : ow_optimizer_step(w->opt, err);
    ow__optimizer_set_grad_xform(w->opt, 1.0f, 1.0f, -1.0f);
    if (rc)
        return rc;
    r->stepped = !skip;
    r->skipped = skip;
    if ((rc = update_scale(w, bad, err)))
        return rc;
    if (ow__grads_zero(w->grads, w->ngrads, !early) || (!early && clamped_bad))
        bad = true;
    r->nonfinite = bad;
    ow__half_zero_grads(w);
    if (r->stepped)
        ow__half_scatter(w, false);
    return OW_OK;
}

int ow_optim_wrapper_update(ow_optim_wrapper *w, ow_update_info *info, ow_error *err)
{
    ow__error_reset(err);
    if (!w || w->nchildren)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         w ? "ow_optim_wrapper_update: an OptimWrapperDict is updated "
                             "wrapper by wrapper (ow_optim_wrapper_get_child)"
                           : "ow_optim_wrapper_update: w is NULL");
    if (loss_factor(w) == 0)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_update: micro-batch %lld is past the run's "
                         "%lld iterations (loss factor 0; raise max_iters with "
                         "ow_optim_wrapper_set_counts)",
                         (long long)w->inner + 1, (long long)w->max_counts);
    ow_update_info r = {.grad_norm = NAN, .clip_coef = NAN, .loss_scale = w->scale};
    record_values(w, &r); /* what this micro-batch ran with (mmengine logs these) */
    int64_t inner = w->inner + 1;
    r.iteration = inner;
    r.window_end = inner % w->o.acc == 0 || inner == w->max_counts;
    int rc = r.window_end ? window_end(w, &r, err) : OW_OK;
    if (rc)
        return rc;
    w->inner = inner;
    r.next_loss_scale = w->scale;
    if (w->sched && (rc = ow_sched_step_iter(w->sched, err)))
        return rc;
    if (info)
        *info = r;
    return OW_OK;
}

int ow_optim_wrapper_end_epoch(ow_optim_wrapper *w, const double *metric, ow_error *err)
{
    ow__error_reset(err);
    if (!w)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_end_epoch: w is NULL");
    int rc = OW_OK;
    for (size_t i = 0; i < w->nchildren && rc == OW_OK; i++)
        rc = ow_optim_wrapper_end_epoch(w->children[i], metric, err);
    if (rc == OW_OK && w->sched)
        rc = ow_sched_step_epoch(w->sched, metric, err);
    if (rc == OW_OK)
        w->epochs++;
    return rc;
}

int ow_optim_wrapper_end_val(ow_optim_wrapper *w, const char *const *names,
                             const double *values, size_t n, ow_error *err)
{
    ow__error_reset(err);
    if (!w)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_end_val: w is NULL");
    int rc = OW_OK;
    for (size_t i = 0; i < w->nchildren && rc == OW_OK; i++)
        rc = ow_optim_wrapper_end_val(w->children[i], names, values, n, err);
    if (rc == OW_OK && w->sched)
        rc = ow_sched_step_val(w->sched, names, values, n, err);
    return rc;
}

void ow_optim_wrapper_zero_grad(ow_optim_wrapper *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nchildren; i++)
        ow_optim_wrapper_zero_grad(w->children[i]);
    if (w->opt && ow__wrapper_collect_grads(w, NULL) == OW_OK)
        ow__grads_zero(w->grads, w->ngrads, false);
    ow__half_zero_grads(w);
}

/* ---- reads ------------------------------------------------------------------------ */

double ow_optim_wrapper_get_lr(const ow_optim_wrapper *w, size_t group)
{
    return w && w->opt ? ow_optimizer_get_lr(w->opt, group) : NAN;
}

double ow_optim_wrapper_get_momentum(const ow_optim_wrapper *w, size_t group)
{
    double m = 0;
    if (!w || !w->opt || group >= w->ng)
        return NAN;
    ow__sched_value_get(ow_optimizer_get_options(w->opt, group), "momentum", &m);
    return m;
}

double ow_optim_wrapper_get_loss_scale(const ow_optim_wrapper *w)
{
    return w ? w->scale : NAN;
}

/* A dict's counters are its first wrapper's: the host updates its wrappers in step. */
int64_t ow_optim_wrapper_get_iteration(const ow_optim_wrapper *w)
{
    return !w ? 0 : w->nchildren ? w->children[0]->inner : w->inner;
}

int64_t ow_optim_wrapper_get_epoch(const ow_optim_wrapper *w)
{
    return !w ? 0 : w->nchildren ? w->children[0]->epochs : w->epochs;
}

ow_optimizer *ow_optim_wrapper_get_optimizer(ow_optim_wrapper *w)
{
    return w ? w->opt : NULL;
}

ow_sched *ow_optim_wrapper_get_sched(ow_optim_wrapper *w)
{
    return w ? w->sched : NULL;
}

const ow_groups *ow_optim_wrapper_get_groups(const ow_optim_wrapper *w)
{
    return w ? w->groups : NULL;
}

size_t ow_optim_wrapper_get_num_children(const ow_optim_wrapper *w)
{
    return w ? w->nchildren : 0;
}

const char *ow_optim_wrapper_get_child_name(const ow_optim_wrapper *w, size_t i)
{
    return w && i < w->nchildren ? w->names[i] : NULL;
}

ow_optim_wrapper *ow_optim_wrapper_get_child(ow_optim_wrapper *w, const char *name)
{
    for (size_t i = 0; w && name && i < w->nchildren; i++)
        if (!strcmp(w->names[i], name))
            return w->children[i];
    return NULL;
}
