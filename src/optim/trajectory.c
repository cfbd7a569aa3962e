/* trajectory.c -- replays a golden `optimizer_trajectory` file (recorded gradients and
 * the parameters the reference produced from them): builds a model of its tensors,
 * groups with its defaults and overrides, and the optimizer it names, then steps and
 * compares in float32 units in the last place. An `optim_wrapper_trajectory` (mmengine's
 * OptimWrapper: accumulation and clipping) runs the same through an ow_optim_wrapper,
 * one micro-batch a step. Used by `optwrap replay` and the tests. */
#include "optim_internal.h"

#include <stdint.h>
#include <string.h>

struct ow_trajectory {
    ow_cfg *doc;
    ow_model *model;
    ow_groups *groups;
    ow_optimizer *opt;
    size_t nt;
    float **data, **grad;
    size_t *numel;
    int steps, done;
    const ow_cfg *grads, *params, *lr_per_step, *state;
    ow_trajectory_stats stats;
    ow_optim_wrapper *wrapper; /* optim_wrapper_trajectory: owns opt */
    const ow_cfg *iterations;  /* optim_wrapper_trajectory: what each one recorded */
    ow__traj_inputs inputs;    /* recorded draws, Hessian-vector products */
};

void ow_trajectory_free(ow_trajectory *traj)
{
    if (!traj)
        return;
    if (traj->wrapper)
        ow_optim_wrapper_free(traj->wrapper);
    else
        ow_optimizer_free(traj->opt);
    ow_groups_free(traj->groups);
    ow_model_free(traj->model);
    for (size_t i = 0; i < traj->nt; i++) {
        if (traj->data)
            ow_free(traj->data[i]);
        if (traj->grad)
            ow_free(traj->grad[i]);
    }
    ow_free(traj->data);
    ow_free(traj->grad);
    ow_free(traj->numel);
    ow_cfg_free(traj->doc);
    ow_free(traj);
}

static int need(const ow_cfg *doc, const char *key, ow_cfg_type type, const ow_cfg **out,
                ow_error *err)
{
    const ow_cfg *v = ow__cfg_map_get(doc, key);
    if (!v)
        return ow__error_at(err, OW_ERR_MISSING_KEY, doc, "trajectory: missing key '%s'",
                            key);
    if (v->type != type)
        return ow__error_at(err, OW_ERR_TYPE, v, "trajectory: %s: expected %s, got %s",
                            key, ow_cfg_type_name(type), ow_cfg_type_name(v->type));
    *out = v;
    return OW_OK;
}

/* A float32 value as the golden files write it: a number, or "nan"/"inf"/"-inf". */
static int read_float(const ow_cfg *v, float *out, ow_error *err)
{
    if (v->type == OW_CFG_STRING) {
        if (!strcmp(v->v.s, "nan"))
            *out = NAN;
        else if (!strcmp(v->v.s, "inf"))
            *out = INFINITY;
        else if (!strcmp(v->v.s, "-inf"))
            *out = -INFINITY;
        else
            return ow__error_at(err, OW_ERR_TYPE, v,
                                "trajectory: expected a number, got '%s'", v->v.s);
        return OW_OK;
    }
    double d;
    int rc = ow_cfg_get_double(v, &d, err);
    *out = (float)d;
    return rc;
}

/* Copies a list of n float32 values. */
static int read_floats(const ow_cfg *list, float *out, size_t n, ow_error *err)
{
    if (!list || list->type != OW_CFG_LIST || list->v.c.n != n)
        return ow__error_at(err, OW_ERR_VALUE, list,
                            "trajectory: expected a list of %zu numbers", n);
    for (size_t i = 0; i < n; i++) {
        int rc = read_float(list->v.c.items[i], &out[i], err);
        if (rc)
            return rc;
    }
    return OW_OK;
}

/* The registry name of a file's optimizer: timm names under `timm.`, torch.optim.X as
 * X, composer.X as composer.X. NULL for families optwrap does not implement. */
static const ow_entry *find_entry(const char *name, char *buf, size_t n)
{
    if (!strncmp(name, "torch.optim.", 12))
        snprintf(buf, n, "%s", name + 12);
    else if (!strncmp(name, "composer.", 9))
        snprintf(buf, n, "%s", name);
    else if (strchr(name, '.'))
        snprintf(buf, n, "%s", name);
    else
        snprintf(buf, n, "timm.%s", name);
    const ow_entry *e = ow_registry_find(OW_KIND_OPTIMIZER, buf);
    return e && e->ops ? e : NULL;
}

/* torch's implementation switches, present in every defaults dict and meaningless here */
static bool perf_flag(const char *key)
{
    static const char *const flags[] = {"foreach", "fused", "capturable",
                                        "differentiable", NULL};
    for (const char *const *f = flags; *f; f++)
        if (!strcmp(*f, key))
            return true;
    return false;
}

/* timm's create_optimizer_v2 drops eps and betas for the optimizers registered without
 * them, and passes momentum only to those with it: such a factory_kwargs key never
 * reached the optimizer. */
static bool dropped_by_factory(const ow_cfg *doc, const char *key)
{
    const ow_cfg *f = ow__cfg_map_get(doc, "factory");
    return f && f->type == OW_CFG_STRING &&
           !strcmp(f->v.s, "timm.optim.create_optimizer_v2") &&
           (!strcmp(key, "eps") || !strcmp(key, "betas") || !strcmp(key, "momentum"));
}

/* fastai's set_hyper takes a list as one value per group (lr: [0.005, 0.01]): a
 * scalar key given so in the defaults is left to the groups' overrides. */
static bool per_group_list(const ow_cfg *doc, const ow_key *key, const ow_cfg *v)
{
    return ow_cfg_get_type(v) == OW_CFG_LIST && key->type != OW_T_LIST &&
           key->type != OW_T_NUMLIST && key->type != OW_T_ANY &&
           ow_cfg_get_size(v) == ow_cfg_get_size(ow__cfg_map_get(doc, "groups"));
}

/* The optimizer's defaults: the file's `defaults` restricted to the declared keys (the
 * rest are derived values such as Adafactor's relative_step); factory_kwargs, which a
 * user wrote, must all be declared (or dropped by timm's factory). Not
 * ow__optimizer_defaults_new: the groups get the recorded keys in the reference's
 * order, and a key the file lacks stays out of them (the optimizer resolves it to the
 * schema's default). */
static int make_defaults(const ow_cfg *doc, const ow_entry *e, ow_cfg **out,
                         ow_error *err)
{
    const ow_cfg *defaults, *kwargs = ow__cfg_map_get(doc, "factory_kwargs");
    int rc;
    /* a wrapper file records the optimizer's kwargs: the rest are its defaults */
    const char *dkey =
        ow__cfg_map_get(doc, "optimizer_kwargs") ? "optimizer_kwargs" : "defaults";
    if ((rc = need(doc, dkey, OW_CFG_MAP, &defaults, err)))
        return rc;
    if (defaults == ow__cfg_map_get(doc, "optimizer_kwargs"))
        kwargs = defaults;
    ow_cfg *d = ow__cfg_new(OW_CFG_MAP, NULL, 0, 0);
    if (!d)
        return ow__nomem(err);
    for (size_t i = 0; kwargs && kwargs->type == OW_CFG_MAP && i < kwargs->v.c.n; i++)
        if (!ow__schema_find(e->keys, kwargs->v.c.keys[i]) &&
            !perf_flag(kwargs->v.c.keys[i]) &&
            !dropped_by_factory(doc, kwargs->v.c.keys[i])) {
            rc = ow__error_at(err, OW_ERR_UNKNOWN_KEY, kwargs->v.c.items[i],
                              "trajectory: factory_kwargs: '%s' is not a key of %s",
                              kwargs->v.c.keys[i], e->name);
            goto fail;
        }
    for (size_t i = 0; i < defaults->v.c.n; i++) {
        const ow_key *key = ow__schema_find(e->keys, defaults->v.c.keys[i]);
        if (!key || per_group_list(doc, key, defaults->v.c.items[i]))
            continue;
        ow_cfg *v = ow__cfg_dup(defaults->v.c.items[i]);
        if (!v || ow__cfg_map_set(d, defaults->v.c.keys[i], v) != OW_OK) {
            rc = ow__nomem(err);
            goto fail;
        }
    }
    /* constructor arguments the class keeps outside `defaults` (Adahessian's
     * update_each, n_samples, avg_conv_kernel) reach it only through factory_kwargs */
    for (size_t i = 0;
         kwargs != defaults && kwargs && kwargs->type == OW_CFG_MAP && i < kwargs->v.c.n;
         i++) {
        const char *k = kwargs->v.c.keys[i];
        if (!ow__schema_find(e->keys, k) || ow__cfg_map_get(defaults, k) ||
            dropped_by_factory(doc, k))
            continue;
        ow_cfg *v = ow__cfg_dup(kwargs->v.c.items[i]);
        if (!v || ow__cfg_map_set(d, k, v) != OW_OK) {
            rc = ow__nomem(err);
            goto fail;
        }
    }
    if ((rc = ow__schema_check(d, e->keys, "trajectory: defaults", NULL, err)))
        goto fail;
    *out = d;
    return OW_OK;
fail:
    ow_cfg_free(d);
    return rc;
}

static int build_model(ow_trajectory *t, const ow_cfg *shapes, const ow_cfg *init,
                       ow_error *err)
{
    int rc;
    const ow_module_info root = {.name = "", .type = "Trajectory"};
    if ((rc = ow_model_new("trajectory", &t->model, err)) ||
        (rc = ow_model_add_module(t->model, &root, err)))
        return rc;
    t->nt = shapes->v.c.n;
    t->data = ow__calloc(t->nt, sizeof *t->data);
    t->grad = ow__calloc(t->nt, sizeof *t->grad);
    t->numel = ow__calloc(t->nt, sizeof *t->numel);
    if (!t->data || !t->grad || !t->numel)
        return ow__nomem(err);
    for (size_t i = 0; i < t->nt; i++) {
        const ow_cfg *sh = shapes->v.c.items[i];
        int64_t shape[OW_MAX_DIMS];
        size_t nd = ow_cfg_get_size(sh), n = 1;
        if (sh->type != OW_CFG_LIST || nd > OW_MAX_DIMS)
            return ow__error_at(err, OW_ERR_VALUE, sh, "trajectory: bad shape");
        for (size_t d = 0; d < nd; d++) {
            if ((rc = ow_cfg_get_int(sh->v.c.items[d], &shape[d], err)))
                return rc;
            n *= (size_t)shape[d];
        }
        char name[32];
        snprintf(name, sizeof name, "p%zu", i);
        t->numel[i] = n;
        t->data[i] = ow__calloc(n ? n : 1, sizeof(float));
        t->grad[i] = ow__calloc(n ? n : 1, sizeof(float));
        if (!t->data[i] || !t->grad[i])
            return ow__nomem(err);
        if ((rc = read_floats(ow_cfg_get_item(init, i), t->data[i], n, err)))
            return rc;
        ow_param_info pi = {.module = "",
                            .name = name,
                            .ndim = (int)nd,
                            .shape = shape,
                            .requires_grad = true,
                            .data = t->data[i],
                            .grad = t->grad[i]};
        if ((rc = ow_model_add_param(t->model, &pi, err)))
            return rc;
    }
    return OW_OK;
}

static int build_groups(ow_trajectory *t, const ow_entry *e, ow_cfg *defaults,
                        ow_error *err)
{
    const ow_cfg *groups;
    int rc;
    if (!(t->groups = ow__groups_new(t->model))) {
        ow_cfg_free(defaults);
        return ow__nomem(err);
    }
    ow__groups_set_optimizer(t->groups, e, defaults);
    if ((rc = need(t->doc, "groups", OW_CFG_LIST, &groups, err)))
        return rc;
    for (size_t gi = 0; gi < groups->v.c.n; gi++) {
        const ow_cfg *g = groups->v.c.items[gi];
        const ow_cfg *tensors = ow__cfg_map_get(g, "tensors");
        const ow_cfg *over = ow__cfg_map_get(g, "overrides");
        size_t index;
        if ((rc = ow_groups_add(t->groups, &index, err)))
            return rc;
        for (size_t j = 0; j < ow_cfg_get_size(tensors); j++) {
            int64_t k;
            if ((rc = ow_cfg_get_int(tensors->v.c.items[j], &k, err)))
                return rc;
            if (k < 0 || (size_t)k >= t->nt)
                return ow__error_at(err, OW_ERR_VALUE, tensors->v.c.items[j],
                                    "trajectory: tensor index %lld out of range",
                                    (long long)k);
            char name[32];
            snprintf(name, sizeof name, "p%lld", (long long)k);
            if ((rc = ow_groups_add_param(
                     t->groups, index, (size_t)ow_model_find_param(t->model, name), err)))
                return rc;
        }
        /* torch's add_param_group: the group's own keys, then setdefault the defaults */
        for (size_t k = 0; k < ow_cfg_get_size(over); k++) {
            const ow_key *key = ow__schema_find(e->keys, over->v.c.keys[k]);
            if (!key)
                return ow__error_at(err, OW_ERR_UNKNOWN_KEY, over->v.c.items[k],
                                    "trajectory: overrides: '%s' is not a key of %s",
                                    over->v.c.keys[k], e->name);
            if ((rc = ow__schema_check_value(over->v.c.items[k], key,
                                             "trajectory: overrides", err)) ||
                (rc = ow_groups_set_value(t->groups, index, over->v.c.keys[k],
                                          over->v.c.items[k], err)))
                return rc;
        }
        for (size_t k = 0; k < defaults->v.c.n; k++)
            if (!ow__cfg_map_get(ow_groups_get_options(t->groups, index),
                                 defaults->v.c.keys[k]) &&
                (rc = ow_groups_set_value(t->groups, index, defaults->v.c.keys[k],
                                          defaults->v.c.items[k], err)))
                return rc;
    }
    return OW_OK;
}

/* An optim_wrapper_trajectory: the wrapper of the file's accumulative_counts and
 * clip_grad over the optimizer, counting from init_counts to max_iters as the runner's
 * initialize_count_status does. */
static int setup_wrapper(ow_trajectory *t, ow_error *err)
{
    const ow_cfg *acc, *max_iters, *init = ow__cfg_map_get(t->doc, "init_counts");
    const ow_cfg *clip = ow__cfg_map_get(t->doc, "clip_grad");
    int rc;
    if ((rc = need(t->doc, "accumulative_counts", OW_CFG_INT, &acc, err)) ||
        (rc = need(t->doc, "max_iters", OW_CFG_INT, &max_iters, err)))
        return rc;
    ow_cfg *wcfg = ow__cfg_new(OW_CFG_MAP, NULL, 0, 0);
    if (!wcfg)
        return ow__nomem(err);
    /* ow__cfg_map_set takes the value even when it fails */
    ow_cfg *a = ow__cfg_dup(acc);
    if (!a || ow__cfg_map_set(wcfg, "accumulative_counts", a) != OW_OK ||
        (clip &&
         (!(a = ow__cfg_dup(clip)) || ow__cfg_map_set(wcfg, "clip_grad", a) != OW_OK))) {
        ow_cfg_free(wcfg);
        return ow__nomem(err);
    }
    ow_sched_loop loop = {.max_iters = max_iters->v.i};
    rc = ow_optim_wrapper_wrap(t->opt, wcfg, NULL, &loop, &t->wrapper, err);
    ow_cfg_free(wcfg);
    if (rc) {
        t->opt = NULL; /* freed by the failed wrap */
        return rc;
    }
    if (init && init->type == OW_CFG_INT &&
        (rc = ow_optim_wrapper_set_counts(t->wrapper, init->v.i, max_iters->v.i, err)))
        return rc;
    t->iterations = t->params;
    /* clip_grad_norm_'s norm is a float32 reduction in torch's own order */
    if (ow_cfg_get_type(clip) == OW_CFG_MAP && !ow__cfg_map_get(clip, "clip_value"))
        t->stats.tolerance = fmax(t->stats.tolerance, 1e-5);
    return OW_OK;
}

/* Builds model, groups and optimizer from t->doc, the parsed golden file. */
static int setup(ow_trajectory *t, ow_error *err)
{
    const ow_cfg *kind, *name, *shapes, *init;
    int rc;
    if (t->doc->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, t->doc, "trajectory: expected a map");
    if ((rc = need(t->doc, "kind", OW_CFG_STRING, &kind, err)))
        goto fail;
    bool wrapped = !strcmp(kind->v.s, "optim_wrapper_trajectory");
    if (strcmp(kind->v.s, "optimizer_trajectory") && !wrapped) {
        rc = ow__error_at(err, OW_ERR_VALUE, kind,
                          "trajectory: kind is '%s', not 'optimizer_trajectory' or "
                          "'optim_wrapper_trajectory'",
                          kind->v.s);
        goto fail;
    }
    if ((rc = need(t->doc, "optimizer", OW_CFG_STRING, &name, err)) ||
        (rc = need(t->doc, "shapes", OW_CFG_LIST, &shapes, err)) ||
        (rc = need(t->doc, "init", OW_CFG_LIST, &init, err)) ||
        (rc = need(t->doc, wrapped ? "g" : "grads", OW_CFG_LIST, &t->grads, err)) ||
        (rc = need(t->doc, wrapped ? "iterations" : "params", OW_CFG_LIST, &t->params,
                   err)))
        goto fail;
    char lookup[128];
    const ow_entry *e = find_entry(name->v.s, lookup, sizeof lookup);
    if (!e) {
        rc = ow__error_at(
            err, OW_ERR_UNSUPPORTED, name,
            "optimizer '%s' (registry name '%s') is not implemented in optwrap",
            name->v.s, lookup);
        goto fail;
    }
    t->lr_per_step = ow__cfg_map_get(t->doc, "lr_per_step");
    t->state = ow__cfg_map_get(t->doc, "state");
    t->steps = (int)t->grads->v.c.n;
    if (t->params->v.c.n != t->grads->v.c.n || ow_cfg_get_size(init) != shapes->v.c.n) {
        rc =
            ow__error_at(err, OW_ERR_VALUE, t->params,
                         "trajectory: grads, params, init and shapes disagree in length");
        goto fail;
    }
    ow_cfg *defaults = NULL;
    if ((rc = build_model(t, shapes, init, err)) ||
        (rc = make_defaults(t->doc, e, &defaults, err)) ||
        (rc = build_groups(t, e, defaults, err)) ||
        (rc = ow_optimizer_new(t->groups, &t->opt, err)))
        goto fail;
    t->stats.tolerance = ow__trajectory_tolerance(e);
    ow__traj_inputs_attach(&t->inputs, t->doc, t->opt, t->data, t->numel);
    t->stats.passed = true;
    if (wrapped)
        rc = setup_wrapper(t, err);
fail:
    return rc;
}

int ow_trajectory_new(const ow_cfg *golden, ow_trajectory **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out || !golden)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_trajectory_new: NULL argument");
    *out = NULL;
    ow_trajectory *t = ow__calloc(1, sizeof *t);
    if (!t || !(t->doc = ow__cfg_dup(golden))) {
        ow_free(t);
        return ow__nomem(err);
    }
    int rc = setup(t, err);
    if (rc) {
        ow_trajectory_free(t);
        return rc;
    }
    *out = t;
    return OW_OK;
}

int ow_trajectory_load(const char *path, ow_trajectory **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out || !path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_trajectory_load: NULL argument");
    *out = NULL;
    ow_trajectory *t = ow__calloc(1, sizeof *t);
    if (!t)
        return ow__nomem(err);
    char *text = NULL;
    size_t len = 0;
    int rc = ow__read_file(path, &text, &len, err);
    if (!rc)
        rc = ow__cfg_parse(text, len, path, &t->doc, err);
    ow_free(text);
    if (!rc)
        rc = setup(t, err);
    if (rc) {
        ow_trajectory_free(t);
        return rc;
    }
    *out = t;
    return OW_OK;
}

/* Distance in float32 units in the last place (+0 and -0 are the same). */
static uint64_t ulp_distance(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0 : UINT32_MAX;
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    int64_t x = ia < 0 ? (int64_t)INT32_MIN - ia : ia;
    int64_t y = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return (uint64_t)(x > y ? x - y : y - x);
}

/* Compares one tensor. The relative error of an element is taken against the larger of
 * |ref| and the tensor's RMS: an element near zero in a tensor of ordinary values
 * (a parameter crossing zero) is held to the tensor's scale, not to its own. */
static void compare(ow_trajectory *t, const float *got, const float *want, size_t n)
{
    ow_trajectory_stats *s = &t->stats;
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += isfinite(want[i]) ? (double)want[i] * want[i] : 0;
    double rms = n ? sqrt(ss / (double)n) : 0;
    for (size_t i = 0; i < n; i++) {
        double abs_err = fabs((double)got[i] - (double)want[i]);
        double scale = fmax(fabs((double)want[i]), rms);
        double rel = scale != 0 ? abs_err / scale : abs_err;
        uint64_t ulp = ulp_distance(got[i], want[i]);
        if (isnan(abs_err))
            abs_err = rel = isnan(got[i]) && isnan(want[i]) ? 0 : INFINITY;
        if (abs_err > s->max_abs_err)
            s->max_abs_err = abs_err;
        if (rel > s->max_rel_err)
            s->max_rel_err = rel;
        if (ulp > s->max_ulp)
            s->max_ulp = ulp;
    }
    s->passed = s->tolerance == 0 ? s->max_ulp == 0 : s->max_rel_err <= s->tolerance;
}

/* The final state's tensors that optwrap also keeps, compared like the parameters. */
static int compare_state(ow_trajectory *t, ow_error *err)
{
    const ow_optimizer *opt = t->opt;
    for (size_t i = 0; i < opt->nt && i < ow_cfg_get_size(t->state); i++) {
        const ow__tensor *ot = &opt->t[i];
        const ow_cfg *st = ow_cfg_get_item(t->state, i);
        if (!ot->has_state || ow_cfg_get_type(st) != OW_CFG_MAP)
            continue;
        for (size_t s = 0; s < opt->nslots; s++) {
            const ow_cfg *v = ow__cfg_map_get(st, opt->ops->slots[s].name);
            const ow_cfg *data = ow__cfg_map_get(v, "data");
            const ow_cfg *dtype = ow__cfg_map_get(v, "dtype");
            if (!data || !dtype || dtype->type != OW_CFG_STRING ||
                strcmp(dtype->v.s, "float32"))
                continue;
            size_t n = ow_cfg_get_size(data);
            float want[4096], got;
            if (opt->ops->slots[s].flags & OW_SLOT_SCALAR) {
                int rc = read_floats(data, want, 1, err);
                if (rc)
                    return rc;
                got = (float)ot->scalar[s];
                compare(t, &got, want, 1);
            } else if (ot->slot[s] && n == ot->slot_numel[s] && n <= 4096) {
                int rc = read_floats(data, want, n, err);
                if (rc)
                    return rc;
                compare(t, ot->slot[s], want, n);
            }
        }
    }
    return OW_OK;
}

static int compare_params(ow_trajectory *t, const ow_cfg *params, ow_error *err);

/* One micro-batch through the wrapper: the host's backward adds g_t times the loss
 * multiplier (autograd of loss / loss_factor) to the gradients, then the update; the
 * loss factor, whether it stepped, and the logged grad_norm must match too. */
static int wrapper_step(ow_trajectory *t, const ow_cfg *grads, const ow_cfg *rec,
                        ow_error *err)
{
    int rc, k = t->done;
    float m = ow_optim_wrapper_get_loss_multiplier(t->wrapper);
    const ow_cfg *factor = ow__cfg_map_get(rec, "loss_factor");
    const ow_cfg *updated = ow__cfg_map_get(rec, "updated");
    double f;
    if (!factor || ow_cfg_get_double(factor, &f, NULL) || m != (float)(1.0 / f))
        return ow__error_at(err, OW_ERR_VALUE, factor ? factor : rec,
                            "trajectory: iteration %d: loss multiplier %.9g, the "
                            "reference divides the loss by %s",
                            k, (double)m, factor ? "a different factor" : "?");
    float *g = NULL;
    for (size_t i = 0; i < t->nt; i++) {
        size_t n = t->numel[i];
        if (!(g = ow__realloc(g, (n ? n : 1) * sizeof *g)))
            return ow__nomem(err);
        if ((rc = read_floats(ow_cfg_get_item(grads, i), g, n, err))) {
            ow_free(g);
            return rc;
        }
        for (size_t j = 0; j < n; j++)
            t->grad[i][j] += g[j] * m;
    }
    ow_free(g);
    ow_update_info info;
    if ((rc = ow_optim_wrapper_update(t->wrapper, &info, err)))
        return rc;
    if (!updated || updated->type != OW_CFG_BOOL || updated->v.b != info.stepped)
        return ow__error_at(
            err, OW_ERR_VALUE, updated ? updated : rec,
            "trajectory: iteration %d: optwrap %s, the reference %s", k,
            info.stepped ? "stepped" : "did not step",
            updated && updated->type == OW_CFG_BOOL && updated->v.b ? "did" : "did not");
    const ow_cfg *norm = ow__cfg_map_get(rec, "reported_grad_norm");
    float want_norm;
    if (norm && (rc = read_float(norm, &want_norm, err)))
        return rc;
    if (norm) {
        float got = (float)info.grad_norm;
        compare(t, &got, &want_norm, 1);
    }
    return compare_params(t, ow__cfg_map_get(rec, "params"), err);
}

int ow_trajectory_step(ow_trajectory *t, ow_error *err)
{
    ow__error_reset(err);
    if (!t)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "trajectory is NULL");
    if (t->done >= t->steps)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "trajectory: all %d steps were run", t->steps);
    int rc, k = t->done;
    const ow_cfg *grads = t->grads->v.c.items[k], *params = t->params->v.c.items[k];
    if (t->wrapper)
        return wrapper_step(t, grads, params, err);
    for (size_t i = 0; i < t->nt; i++)
        if ((rc = read_floats(ow_cfg_get_item(grads, i), t->grad[i], t->numel[i], err)))
            return rc;
    const ow_cfg *lrs = ow_cfg_get_item(t->lr_per_step, (size_t)k);
    for (size_t g = 0; g < ow_cfg_get_size(lrs); g++) {
        double lr;
        if ((rc = ow_cfg_get_double(ow_cfg_get_item(lrs, g), &lr, err)) ||
            (rc = ow_optimizer_set_double(t->opt, g, "lr", lr, err)))
            return rc;
    }
    ow__traj_inputs_step(&t->inputs, k);
    if ((rc = ow_optimizer_step(t->opt, err)))
        return rc;
    if (t->inputs.failed)
        return ow__error(err, OW_ERR_VALUE, NULL, 0, 0,
                         "trajectory: step %d: the optimizer asked for a draw the "
                         "reference did not record",
                         k);
    return compare_params(t, params, err);
}

/* The parameters after a step against the recorded ones, then the final state. */
static int compare_params(ow_trajectory *t, const ow_cfg *params, ow_error *err)
{
    int rc, k = t->done;
    float want[4096];
    for (size_t i = 0; i < t->nt; i++) {
        size_t n = t->numel[i];
        for (size_t off = 0; off < n; off += 4096) {
            size_t m = n - off < 4096 ? n - off : 4096;
            const ow_cfg *list = ow_cfg_get_item(params, i);
            if (ow_cfg_get_size(list) != n)
                return ow__error_at(err, OW_ERR_VALUE, list,
                                    "trajectory: step %d tensor %zu: expected %zu values",
                                    k, i, n);
            for (size_t j = 0; j < m; j++)
                if ((rc = read_float(list->v.c.items[off + j], &want[j], err)))
                    return rc;
            compare(t, t->data[i] + off, want, m);
        }
    }
    t->stats.steps = ++t->done;
    if (t->done == t->steps && t->state)
        return compare_state(t, err);
    return OW_OK;
}

int ow_trajectory_get_num_steps(const ow_trajectory *traj)
{
    return traj ? traj->steps : 0;
}

ow_optimizer *ow_trajectory_get_optimizer(ow_trajectory *traj)
{
    return traj ? traj->opt : NULL;
}

const ow_model *ow_trajectory_get_model(const ow_trajectory *traj)
{
    return traj ? traj->model : NULL;
}

void ow_trajectory_get_stats(const ow_trajectory *traj, ow_trajectory_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (traj)
        *out = traj->stats;
}
