/* optimizer.c -- the ow_optimizer object: built from param groups and their optimizer
 * entry, it keeps each group's hyperparameters (settable between steps), creates the
 * state of a parameter at its first step with a gradient, and runs one step: prepare
 * once per group and step, then the element passes or the per-tensor hook. */
#include "../model/model_internal.h"
#include "optim_internal.h"

#include <string.h>

void ow__hparam_from_cfg(const ow_cfg *node, ow_hparam *out)
{
    memset(out, 0, sizeof *out);
    switch (ow_cfg_get_type(node)) {
    case OW_CFG_NULL: out->is_null = true; break;
    case OW_CFG_BOOL:
        out->v[0] = node->v.b;
        out->n = 1;
        break;
    case OW_CFG_INT:
        out->v[0] = (double)node->v.i;
        out->n = 1;
        break;
    case OW_CFG_FLOAT:
        out->v[0] = node->v.d;
        out->n = 1;
        break;
    case OW_CFG_STRING: out->s = node->v.s; break;
    case OW_CFG_MAP: break;
    case OW_CFG_LIST:
        for (size_t i = 0; i < node->v.c.n && i < OW_MAX_VALUES; i++) {
            const ow_cfg *it = node->v.c.items[i];
            if (it->type == OW_CFG_INT)
                out->v[out->n++] = (double)it->v.i;
            else if (it->type == OW_CFG_FLOAT)
                out->v[out->n++] = it->v.d;
            else if (it->type == OW_CFG_BOOL)
                out->v[out->n++] = it->v.b;
        }
        break;
    default: break;
    }
    out->cfg = node;
}

int ow__params_map(const ow_entry *e, long *map, size_t *np, ow_error *err)
{
    const ow_optimizer_ops *ops = e->ops;
    size_t n = 0;
    while (ops->params && ops->params[n] && n <= OW_MAX_PARAMS)
        n++;
    if (!ops->params || n > OW_MAX_PARAMS)
        return ow__error(err, OW_ERR_PLUGIN, NULL, 0, 0,
                         "optimizer '%s': ops.params is %s", e->name,
                         ops->params ? "longer than OW_MAX_PARAMS" : "NULL");
    for (size_t i = 0; i < n; i++) {
        map[i] = -1;
        for (size_t k = 0; e->keys[k].name && map[i] < 0; k++)
            if (!strcmp(e->keys[k].name, ops->params[i]))
                map[i] = (long)k;
    }
    *np = n;
    return OW_OK;
}

void ow__params_view(const long *map, size_t np, const ow_hparam *hp, ow_hparam *out)
{
    for (size_t i = 0; i < np; i++) {
        if (map[i] >= 0) {
            out[i] = hp[map[i]];
        } else {
            memset(&out[i], 0, sizeof out[i]);
            out[i].absent = true;
        }
    }
}

void ow__group_sync(ow_optimizer *opt, size_t gi)
{
    ow__params_view(opt->pmap, opt->np, opt->g[gi].hp, opt->g[gi].php);
}

long ow__optimizer_key(const ow_optimizer *opt, const char *name)
{
    for (size_t k = 0; k < opt->nkeys; k++)
        if (!strcmp(opt->entry->keys[k].name, name))
            return (long)k;
    return -1;
}

void ow__optimizer_use_ref(ow_optimizer *opt, bool on)
{
    opt->use_ref = on;
}

/* ---- groups ------------------------------------------------------------------------ */

static double cfg_number(const ow_cfg *n, double fallback)
{
    if (n && n->type == OW_CFG_INT)
        return (double)n->v.i;
    if (n && n->type == OW_CFG_FLOAT)
        return n->v.d;
    return fallback;
}

int ow__optimizer_resolve_group(const ow_optimizer *opt, size_t gi, const ow_cfg *opts,
                                ow_hparam *hp, ow_error *err)
{
    for (size_t k = 0; k < opt->nkeys; k++) {
        const ow_cfg *v = ow__cfg_map_get(opts, opt->entry->keys[k].name);
        if (v)
            ow__hparam_from_cfg(v, &hp[k]);
        else
            hp[k] = opt->defaults[k];
    }
    char msg[256];
    ow_hparam view[OW_MAX_PARAMS];
    ow__params_view(opt->pmap, opt->np, hp, view);
    if (opt->ops->check && !opt->ops->check(view, msg, sizeof msg))
        return ow__error(err, OW_ERR_VALUE, NULL, 0, 0, "%s: param group %zu: %s",
                         opt->entry->name, gi, msg);
    return OW_OK;
}

int ow__optimizer_set_group(ow_optimizer *opt, size_t gi, ow_cfg *opts, ow_error *err)
{
    ow__group *g = &opt->g[gi];
    ow_hparam *hp = ow__calloc(opt->nkeys ? opt->nkeys : 1, sizeof *hp);
    if (!hp || (!g->php && !(g->php = ow__calloc(opt->np ? opt->np : 1, sizeof *hp)))) {
        ow_free(hp);
        ow_cfg_free(opts);
        return ow__nomem(err);
    }
    int rc = ow__optimizer_resolve_group(opt, gi, opts, hp, err);
    if (!rc && ow__lookahead_own_step(opt, opts, hp))
        rc = ow__nomem(err);
    if (rc) {
        ow_free(hp);
        ow_cfg_free(opts);
        return rc;
    }
    ow_cfg_free(g->opts);
    ow_free(g->hp);
    g->opts = opts;
    g->hp = hp;
    ow__group_sync(opt, gi);
    opt->active_valid = false; /* per_tensor may read the new values */
    return OW_OK;
}

/* The lr group gi steps with (ow__lr_scaled: lr * lr_scale where the optimizer applies
 * lr_scale), NAN when its lr is null. */
static double step_lr(const ow_optimizer *opt, size_t gi)
{
    const ow__group *g = &opt->g[gi];
    long k = opt->lr_key;
    double lr = k >= 0 && !g->hp[k].is_null ? g->hp[k].v[0] : NAN;
    return ow__lr_scaled(lr, g->opts, opt->apply_lr_scale);
}

/* ---- new / free -------------------------------------------------------------------- */

void ow__tensor_free_state(ow_optimizer *opt, ow__tensor *t)
{
    opt->active_valid = false; /* the next step must create state again */
    if (t->slot)
        for (size_t s = 0; s < opt->nslots; s++)
            ow_free(t->slot[s]);
    ow_free(t->slot);
    ow_free(t->slot_numel);
    ow_free(t->scalar);
    t->slot = NULL;
    t->slot_numel = NULL;
    t->scalar = NULL;
    t->has_state = false;
}

void ow_optimizer_free(ow_optimizer *opt)
{
    if (!opt)
        return;
    for (size_t i = 0; i < opt->nt; i++)
        ow__tensor_free_state(opt, &opt->t[i]);
    for (size_t i = 0; opt->g && i < opt->ng; i++) {
        ow_cfg_free(opt->g[i].opts);
        ow_free(opt->g[i].hp);
        ow_free(opt->g[i].php);
    }
    ow_free(opt->g);
    ow_free(opt->t);
    ow_free(opt->defaults);
    ow_cfg_free(opt->defaults_cfg);
    ow_free(opt->active);
    ow_free(opt->active_tmp);
    ow_free(opt->ctx);
    ow_free(opt->ctx_passes);
    ow_free(opt->units);
    ow_free(opt->order);
    ow_free(opt->sums);
    ow_free(opt->scratch);
    ow_free(opt->hvp_buf);
    ow_free(opt->gbuf);
    ow__optimizer_clear_notes(opt);
    ow_free(opt);
}

static int add_tensors(ow_optimizer *opt, ow_error *err)
{
    size_t total = 0;
    for (size_t gi = 0; gi < opt->ng; gi++)
        total += ow_groups_get_num_params(opt->groups, gi);
    size_t ntensors = ow_model_get_num_tensors(opt->model);
    opt->t = ow__calloc(total ? total : 1, sizeof *opt->t);
    bool *seen = ow__calloc(ntensors ? ntensors : 1, sizeof *seen);
    if (!opt->t || !seen) {
        ow_free(seen);
        return ow__nomem(err);
    }
    for (size_t gi = 0; gi < opt->ng; gi++)
        for (size_t j = 0; j < ow_groups_get_num_params(opt->groups, gi); j++) {
            ow_param_view pv;
            size_t param = ow_groups_get_param(opt->groups, gi, j);
            if (ow_model_get_param(opt->model, param, &pv) != OW_OK || seen[pv.tensor])
                continue; /* a tied tensor is stepped once, under its first name */
            seen[pv.tensor] = true;
            ow__tensor *t = &opt->t[opt->nt++];
            t->group = gi;
            t->param = param;
            t->ndim = pv.ndim;
            memcpy(t->shape, pv.shape, (size_t)pv.ndim * sizeof *pv.shape);
            t->numel = (size_t)pv.numel;
        }
    ow_free(seen);
    return OW_OK;
}

int ow_optimizer_new(const ow_groups *groups, ow_optimizer **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_optimizer_new: out is NULL");
    *out = NULL;
    const ow_entry *e = ow__groups_get_optimizer(groups);
    if (!e)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optimizer_new: groups is NULL or was not built for an "
                         "optimizer");
    const ow_optimizer_ops *ops = e->ops;
    if (e->kind != OW_KIND_OPTIMIZER || !ops)
        return ow__error(err, OW_ERR_UNSUPPORTED, NULL, 0, 0,
                         "optimizer '%s%s%s' has no kernels in optwrap (only its schema)",
                         e->scope ? e->scope : "", e->scope ? "." : "", e->name);
    size_t npasses = 0;
    while (ops->abi_version == OW_ABI_VERSION && ops->passes &&
           ops->passes[npasses].run && npasses <= OW_MAX_PASSES)
        npasses++;
    if (ops->abi_version != OW_ABI_VERSION || !ops->slots || !ops->prepare ||
        ops->ctx_size > OW_MAX_CTX || npasses > OW_MAX_PASSES ||
        (!npasses && !ops->tensor_step) || (ops->per_tensor && !ops->tensor_step))
        return ow__error(err, OW_ERR_PLUGIN, NULL, 0, 0,
                         "optimizer '%s': invalid ow_optimizer_ops (abi_version %d, "
                         "expected %d)",
                         e->name, ops->abi_version, OW_ABI_VERSION);
    ow_optimizer *opt = ow__calloc(1, sizeof *opt);
    if (!opt)
        return ow__nomem(err);
    opt->entry = e;
    opt->ops = ops;
    opt->groups = groups;
    ow__optimizer_set_grad_xform(opt, 1.0f, 1.0f, -1.0f);
    opt->model = ow_groups_get_model(groups);
    opt->apply_lr_scale = ow__groups_applies_lr_scale(groups);
    opt->mixed = npasses && ops->tensor_step;
    while (e->keys[opt->nkeys].name)
        opt->nkeys++;
    int rc = ow__params_map(e, opt->pmap, &opt->np, err);
    if (rc) {
        ow_free(opt);
        return rc;
    }
    while (ops->slots[opt->nslots].name)
        opt->nslots++;
    if (opt->nslots > OW__MAX_SLOTS) {
        ow_free(opt);
        return ow__error(err, OW_ERR_PLUGIN, NULL, 0, 0,
                         "optimizer '%s': more than %d state slots", e->name,
                         OW__MAX_SLOTS);
    }
    for (size_t s = 0; s < opt->nslots; s++)
        if (ops->slots[s].flags & OW_SLOT_SCALAR)
            opt->scalar_slot[opt->nscalar++] = s;
    rc = OW_ERR_NOMEM;
    opt->ng = ow_groups_get_count(groups);
    opt->g = ow__calloc(opt->ng ? opt->ng : 1, sizeof *opt->g);
    opt->defaults = ow__calloc(opt->nkeys ? opt->nkeys : 1, sizeof *opt->defaults);
    if (!opt->g || !opt->defaults)
        goto nomem;
    /* optimizer-level values: the defaults dict, else the schema's defaults */
    const ow_cfg *defaults = ow__groups_get_defaults(groups);
    if (defaults && !(opt->defaults_cfg = ow__cfg_dup(defaults)))
        goto nomem;
    for (size_t k = 0; k < opt->nkeys; k++) {
        const ow_cfg *v = ow__cfg_map_get(opt->defaults_cfg, e->keys[k].name);
        if (v) {
            ow__hparam_from_cfg(v, &opt->defaults[k]);
            continue;
        }
        ow_cfg *d = NULL;
        if ((rc = ow__schema_default(&e->keys[k], &d, err)))
            goto fail;
        if (d) {
            if (!opt->defaults_cfg &&
                !(opt->defaults_cfg = ow__cfg_new(OW_CFG_MAP, NULL, 0, 0))) {
                ow_cfg_free(d);
                goto nomem;
            }
            if (ow__cfg_map_set(opt->defaults_cfg, e->keys[k].name, d) != OW_OK)
                goto nomem;
            ow__hparam_from_cfg(ow__cfg_map_get(opt->defaults_cfg, e->keys[k].name),
                                &opt->defaults[k]);
        } else {
            opt->defaults[k].is_null = true;
        }
    }
    ow__params_view(opt->pmap, opt->np, opt->defaults, opt->pdefaults);
    long lr_key = opt->lr_key = ow__optimizer_key(opt, "lr");
    opt->la_step_key = opt->la_k_key = opt->la_alpha_key = -1;
    if (ow__lookahead_inner(e)) {
        opt->la_step_key = ow__optimizer_key(opt, "lookahead_step");
        opt->la_k_key = ow__optimizer_key(opt, "lookahead_k");
        opt->la_alpha_key = ow__optimizer_key(opt, "lookahead_alpha");
    }
    for (size_t gi = 0; gi < opt->ng; gi++) {
        ow_cfg *copy = ow__cfg_dup(ow_groups_get_options(groups, gi));
        if (!copy)
            goto nomem;
        if ((rc = ow__optimizer_set_group(opt, gi, copy, err)))
            goto fail;
        const ow_cfg *init = ow__cfg_map_get(opt->g[gi].opts, "initial_lr");
        double lr = lr_key >= 0 ? opt->g[gi].hp[lr_key].v[0] : 0.0;
        opt->g[gi].initial_lr = cfg_number(init, lr);
    }
    if ((rc = add_tensors(opt, err)))
        goto fail;
    size_t nt = opt->nt ? opt->nt : 1;
    opt->active = ow__calloc(nt, sizeof *opt->active);
    opt->active_tmp = ow__calloc(nt, sizeof *opt->active);
    if (!opt->active || !opt->active_tmp)
        goto nomem;
    *out = opt;
    return OW_OK;
nomem:
    rc = ow__nomem(err);
fail:
    ow_optimizer_free(opt);
    return rc;
}

/* ---- state ------------------------------------------------------------------------- */

int ow__slot_shape(const ow_optimizer *opt, const ow__tensor *t, size_t slot,
                   int64_t *shape)
{
    return ow__slot_shape_hp(opt, opt->g[t->group].hp, t, slot, shape);
}

int ow__slot_shape_hp(const ow_optimizer *opt, const ow_hparam *hp, const ow__tensor *t,
                      size_t slot, int64_t *shape)
{
    /* a Lookahead composite's slow buffer (its last slot) is its own, parameter-shaped:
     * the inner hooks only ever see their own slots */
    bool own = opt->la_step_key >= 0 && slot + 1 == opt->nslots;
    if (opt->ops->slot_shape && !own) {
        ow_hparam view[OW_MAX_PARAMS];
        ow__params_view(opt->pmap, opt->np, hp, view);
        return opt->ops->slot_shape(view, (int)slot, t->ndim, t->shape, shape);
    }
    if (opt->ops->slots[slot].flags & OW_SLOT_SCALAR)
        return 0;
    memcpy(shape, t->shape, (size_t)t->ndim * sizeof *shape);
    return t->ndim;
}

size_t ow__dtype_size(ow_dtype d)
{
    switch (d) {
    case OW_DTYPE_BF16: return 2;
    case OW_DTYPE_U8: return 1;
    case OW_DTYPE_F64:
    case OW_DTYPE_I64: return 8;
    default: return 4;
    }
}

ow_dtype ow__slot_dtype_hp(const ow_optimizer *opt, const ow_hparam *hp, size_t slot,
                           size_t numel)
{
    if (opt->la_step_key >= 0 && slot + 1 == opt->nslots)
        return OW_DTYPE_F32; /* Lookahead's slow buffer */
    if (opt->ops->slot_dtype) {
        ow_hparam view[OW_MAX_PARAMS];
        ow__params_view(opt->pmap, opt->np, hp, view);
        return opt->ops->slot_dtype(view, (int)slot, numel);
    }
    ow_dtype d = opt->ops->slots[slot].dtype;
    return d == OW_DTYPE_BF16 || d == OW_DTYPE_U8 ? d : OW_DTYPE_F32;
}

int ow__tensor_alloc_state(ow_optimizer *opt, size_t i, ow_error *err)
{
    ow__tensor *t = &opt->t[i];
    size_t ns = opt->nslots ? opt->nslots : 1;
    t->slot = ow__calloc(ns, sizeof *t->slot);
    t->slot_numel = ow__calloc(ns, sizeof *t->slot_numel);
    t->scalar = ow__calloc(ns, sizeof *t->scalar);
    if (!t->slot || !t->slot_numel || !t->scalar)
        goto nomem;
    for (size_t s = 0; s < opt->nslots; s++) {
        const ow_slot *sl = &opt->ops->slots[s];
        int64_t shape[OW_MAX_DIMS];
        int nd = ow__slot_shape(opt, t, s, shape);
        if (nd >= 0 && (sl->flags & OW_SLOT_SCALAR))
            t->scalar[s] = sl->init;
        if (nd < 0 || (sl->flags & OW_SLOT_SCALAR))
            continue;
        size_t n = 1;
        for (int d = 0; d < nd; d++)
            n *= (size_t)shape[d];
        ow_dtype dt = ow__slot_dtype_hp(opt, opt->g[t->group].hp, s, t->numel);
        t->sdtype[s] = (unsigned char)dt;
        if (!(t->slot[s] = ow__malloc((n ? n : 1) * ow__dtype_size(dt))))
            goto nomem;
        t->slot_numel[s] = n;
        const float *from = (sl->flags & OW_SLOT_FROM_PARAM)  ? t->p
                            : (sl->flags & OW_SLOT_FROM_GRAD) ? t->g
                                                              : NULL;
        if (from == t->g && t->gdt && n == t->numel && dt == OW_DTYPE_F32)
            ow__grad_f32(opt, t, 0, n, t->slot[s]); /* a half gradient */
        else if (from && n == t->numel && dt == OW_DTYPE_F32)
            memcpy(t->slot[s], from, n * sizeof(float));
        else if (dt == OW_DTYPE_F32)
            for (size_t k = 0; k < n; k++)
                t->slot[s][k] = sl->init;
        else if (dt == OW_DTYPE_BF16)
            for (size_t k = 0; k < n; k++)
                ((uint16_t *)t->slot[s])[k] = ow__f32_to_bf16(sl->init);
        else
            memset(t->slot[s], 0, n); /* codes: the optimizer's to fill */
    }
    t->has_state = true;
    return OW_OK;
nomem:
    ow__tensor_free_state(opt, t);
    return ow__nomem(err);
}

/* ---- step -------------------------------------------------------------------------- */

static int grow_ctx(ow_optimizer *opt, size_t need, ow_error *err)
{
    if (need <= opt->ctx_cap)
        return OW_OK;
    size_t cap = opt->ctx_cap ? opt->ctx_cap : 4;
    while (cap < need)
        cap *= 2;
    unsigned char *c = ow__realloc(opt->ctx, cap * OW_MAX_CTX);
    if (!c)
        return ow__nomem(err);
    opt->ctx = c;
    unsigned *p = ow__realloc(opt->ctx_passes, cap * sizeof *p);
    if (!p)
        return ow__nomem(err);
    opt->ctx_passes = p;
    opt->ctx_cap = cap;
    return OW_OK;
}

/* prepare once per group and scalar state: tensors of a group that share their step
 * (the usual case) share one set of constants. Cannot fail: the constants' room is
 * reserved before (grow_ctx). */
static void prepare_all(ow_optimizer *opt, size_t nactive)
{
    size_t nctx = 0;
    unsigned mask = 0;
    const ow__tensor *prev = NULL;
    /* finish values start at zero each step; they are only nonzero after a finish hook
     * ran, so only then are they cleared (all tensors: an inactive one keeps its own) */
    for (size_t i = 0; opt->t_dirty && i < opt->nt; i++)
        memset(opt->t[i].t, 0, sizeof opt->t[i].t);
    opt->t_dirty = false;
    double prev_in[OW__MAX_SLOTS];
    for (size_t a = 0; a < nactive; a++) {
        ow__tensor *t = &opt->t[opt->active[a]];
        /* only scalar slots hold scalars; a few doubles, 1,000 times a step: plain
         * indexed loops (a copy loop over all slots becomes a memcpy call) */
        bool same = prev && prev->group == t->group;
        for (size_t j = 0; j < opt->nscalar && same; j++)
            same = t->scalar[opt->scalar_slot[j]] == prev_in[j];
        if (same) {
            for (size_t j = 0; j < opt->nscalar; j++)
                t->scalar[opt->scalar_slot[j]] = prev->scalar[opt->scalar_slot[j]];
            t->ctx = prev->ctx;
        } else {
            for (size_t j = 0; j < opt->nscalar; j++)
                prev_in[j] = t->scalar[opt->scalar_slot[j]];
            const ow__group *g = &opt->g[t->group];
            ow_prepare_args pa = {.hp = g->php,
                                  .defaults = opt->pdefaults,
                                  .lr = step_lr(opt, t->group),
                                  .initial_lr = g->initial_lr,
                                  .scalars = t->scalar,
                                  .ctx = opt->ctx + nctx * OW_MAX_CTX,
                                  .passes = ~0u,
                                  .shared = opt->shared};
            memset(pa.ctx, 0, OW_MAX_CTX);
            opt->ops->prepare(&pa);
            opt->ctx_passes[nctx] = pa.passes;
            mask |= pa.passes;
            t->ctx = nctx++;
        }
        prev = t;
    }
    opt->pass_mask = mask;
}

/* Scratch for per-tensor steps: the most any active tensor's needs, 64-byte aligned. */
static int grow_scratch(ow_optimizer *opt, size_t from, size_t nactive, ow_error *err)
{
    size_t need = 0;
    for (size_t a = from; a < nactive && opt->ops->scratch_bytes; a++) {
        const ow__tensor *t = &opt->t[opt->active[a]];
        size_t b = opt->ops->scratch_bytes(opt->g[t->group].php, t->ndim, t->shape);
        need = b > need ? b : need;
    }
    if (need <= opt->scratch_cap)
        return OW_OK;
    void *s = ow__malloc_aligned(need);
    if (!s)
        return ow__nomem(err);
    ow_free(opt->scratch);
    opt->scratch = s;
    opt->scratch_cap = need;
    return OW_OK;
}

/* Puts the active tensors that take the passes first and those that take tensor_step
 * after them; returns how many take the passes. */
static size_t split_active(ow_optimizer *opt, size_t nactive)
{
    const ow_optimizer_ops *ops = opt->ops;
    size_t npass = 0, nper = 0;
    for (size_t a = 0; a < nactive; a++) { /* stable: each part in param_groups order */
        ow__tensor *t = &opt->t[opt->active[a]];
        t->per_tensor = !ops->passes || !ops->passes[0].run ||
                        (ops->tensor_step &&
                         (!ops->per_tensor ||
                          ops->per_tensor(opt->g[t->group].php, t->ndim, t->shape)));
        if (t->per_tensor)
            opt->active_tmp[nper++] = opt->active[a];
        else
            opt->active[npass++] = opt->active[a];
    }
    memcpy(opt->active + npass, opt->active_tmp, nper * sizeof *opt->active);
    return npass;
}

/* Room for the largest half gradient of the per-tensor steps [from, nactive). */
static int grow_gbuf(ow_optimizer *opt, size_t from, size_t nactive, ow_error *err)
{
    size_t need = 0;
    for (size_t a = from; a < nactive; a++) {
        const ow__tensor *t = &opt->t[opt->active[a]];
        if (t->gdt && t->numel > need)
            need = t->numel;
    }
    if (need <= opt->gbuf_cap)
        return OW_OK;
    float *b = ow__realloc(opt->gbuf, need * sizeof *b);
    if (!b)
        return ow__nomem(err);
    opt->gbuf = b;
    opt->gbuf_cap = need;
    return OW_OK;
}

/* Steps active tensors [from, nactive) with tensor_step. */
static void run_tensor_steps(ow_optimizer *opt, size_t from, size_t nactive)
{
    void (*step)(const ow_tensor_args *) = opt->use_ref && opt->ops->tensor_ref
                                               ? opt->ops->tensor_ref
                                               : opt->ops->tensor_step;
    for (size_t a = from; a < nactive; a++) {
        ow__tensor *t = &opt->t[opt->active[a]];
        if (t->gdt) /* the room: grow_gbuf */
            ow__grad_f32(opt, t, 0, t->numel, opt->gbuf);
        ow_tensor_args ta = {.ndim = t->ndim,
                             .shape = t->shape,
                             .numel = t->numel,
                             .p = t->p,
                             .g = t->gdt ? opt->gbuf : t->g,
                             .s = t->slot,
                             .scalars = t->scalar,
                             .ctx = opt->ctx + t->ctx * OW_MAX_CTX,
                             .scratch = opt->ops->scratch_bytes ? opt->scratch : NULL,
                             .threads = t->numel < OW__SERIAL_BELOW || opt->use_ref
                                            ? 1
                                            : ow__optimizer_threads(opt),
                             .ref = opt->use_ref,
                             .param = opt->active[a],
                             .z = t->z,
                             .hvp = t->hz,
                             .rand = ow__tensor_rand,
                             .rand_scalar = ow__tensor_rand_scalar,
                             .engine = opt};
        step(&ta);
    }
}

int ow_optimizer_step(ow_optimizer *opt, ow_error *err)
{
    ow__error_reset(err);
    if (!opt)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optimizer_step: opt is NULL");
    size_t nactive = 0, all = 0, npass = 0;
    int rc = OW_OK;
    bool need_state = false;
    /* The active tensors and their pointers only change with the model (its generation)
     * or when state is dropped: on 1,000 tiny tensors walking the model every step
     * costs more than the step itself. */
    unsigned long gen = ow__model_generation(opt->model);
    bool cached = opt->active_valid && opt->active_gen == gen;
    if (cached) {
        nactive = opt->nactive;
        npass = opt->npass;
        all = opt->active_all;
    } else {
        for (size_t i = 0; i < opt->nt; i++) {
            ow__tensor *t = &opt->t[i];
            ow_param_view pv;
            if (ow_model_get_param(opt->model, t->param, &pv) != OW_OK ||
                !pv.requires_grad || !pv.data || !pv.grad)
                continue;
            t->p = pv.data;
            t->g = pv.grad;
            t->gdt = (unsigned char)ow__model_grad_dtype(opt->model, t->param);
            need_state = need_state || !t->has_state;
            opt->active[nactive++] = i;
        }
        npass = split_active(opt, nactive);
        for (size_t a = 0; a < npass; a++)
            all += opt->t[opt->active[a]].numel;
    }
    /* everything that can fail comes first, so that a failure leaves all as it was:
     * missing state, the room for the constants, the work units, the scratch, the
     * host's Hessian-vector products. On 1,000 small tensors each walk over them costs
     * microseconds: skip the ones that have nothing to do. */
    for (size_t a = 0; need_state && a < nactive && rc == OW_OK; a++) {
        ow__tensor *t = &opt->t[opt->active[a]];
        if (!t->has_state &&
            (rc = ow__tensor_alloc_state(opt, opt->active[a], err)) == OW_OK)
            t->fresh = true;
    }
    if (rc == OW_OK)
        rc = grow_ctx(opt, nactive + 1, err);
    if (rc == OW_OK && npass < nactive)
        rc = grow_scratch(opt, npass, nactive, err);
    if (rc == OW_OK && npass < nactive)
        rc = grow_gbuf(opt, npass, nactive, err);
    if (rc == OW_OK && npass)
        rc = ow__plan_passes(opt, npass, all, err);
    if (rc == OW_OK && (opt->ops->needs & OW_NEEDS_HVP))
        rc = ow__hvp_prepare(opt, npass, nactive, err);
    if (rc == OW_OK && !cached) /* every active tensor has its state now */
        for (size_t a = 0; a < nactive; a++) {
            ow__tensor *t = &opt->t[opt->active[a]];
            t->kslots = 0;
            t->all_f32 = true;
            for (size_t k = 0; k < opt->nslots; k++) {
                bool f32 = t->sdtype[k] == OW_DTYPE_F32;
                if (t->slot[k] && f32 && t->slot_numel[k] == t->numel)
                    t->kslots |= 1u << k;
                else if (t->slot[k])
                    t->all_f32 = false;
            }
        }
    if (rc == OW_OK) {
        prepare_all(opt, nactive);
        if (npass)
            ow__run_passes(opt, npass);
        run_tensor_steps(opt, npass, nactive);
        if (opt->la_step_key >= 0)
            ow__lookahead_after_step(opt, nactive);
    }
    for (size_t a = 0; need_state && a < nactive; a++) {
        ow__tensor *t = &opt->t[opt->active[a]];
        if (rc && t->fresh)
            ow__tensor_free_state(opt, t); /* state created by a step that did not run */
        t->fresh = false;
    }
    /* after a step that ran, every active tensor has state: the list can be reused */
    opt->active_valid = rc == OW_OK;
    opt->active_gen = gen;
    opt->nactive = nactive;
    opt->npass = npass;
    opt->active_all = all;
    return rc;
}

/* ---- accessors --------------------------------------------------------------------- */

size_t ow__optimizer_num_tensors(const ow_optimizer *opt)
{
    return opt->nt;
}

const ow_model *ow__optimizer_model(const ow_optimizer *opt)
{
    return opt->model;
}

size_t ow__optimizer_tensor_param(const ow_optimizer *opt, size_t i)
{
    return opt->t[i].param;
}

bool ow__optimizer_tensor_grad(const ow_optimizer *opt, size_t i, float **grad,
                               size_t *numel, unsigned char *dtype, const char **name)
{
    ow_param_view pv;
    if (i >= opt->nt || ow_model_get_param(opt->model, opt->t[i].param, &pv) != OW_OK ||
        !pv.requires_grad || !pv.data || !pv.grad)
        return false;
    *grad = pv.grad;
    *numel = opt->t[i].numel;
    *dtype = (unsigned char)ow__model_grad_dtype(opt->model, opt->t[i].param);
    *name = pv.full_name;
    return true;
}

size_t ow_optimizer_get_state_bytes(const ow_optimizer *opt)
{
    size_t n = 0;
    for (size_t i = 0; opt && i < opt->nt; i++) {
        const ow__tensor *t = &opt->t[i];
        for (size_t s = 0; t->has_state && s < opt->nslots; s++)
            n += opt->ops->slots[s].flags & OW_SLOT_SCALAR ? sizeof(double)
                 : t->slot[s] ? t->slot_numel[s] * ow__dtype_size(t->sdtype[s])
                              : 0;
    }
    return n;
}

double ow_optimizer_get_lr(const ow_optimizer *opt, size_t group)
{
    return opt && group < opt->ng ? step_lr(opt, group) : NAN;
}

const ow_entry *ow_optimizer_get_entry(const ow_optimizer *opt)
{
    return opt ? opt->entry : NULL;
}

size_t ow_optimizer_get_num_groups(const ow_optimizer *opt)
{
    return opt ? opt->ng : 0;
}

const ow_cfg *ow_optimizer_get_options(const ow_optimizer *opt, size_t group)
{
    return opt && group < opt->ng ? opt->g[group].opts : NULL;
}

static int bad_group(const ow_optimizer *opt, size_t group, const char *key,
                     ow_error *err)
{
    if (!opt || !key)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "optimizer or key is NULL");
    if (group >= opt->ng)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "group index %zu out of range (%zu groups)", group, opt->ng);
    return OW_OK;
}

int ow_optimizer_get_double(const ow_optimizer *opt, size_t group, const char *key,
                            double *out, ow_error *err)
{
    ow__error_reset(err);
    int rc = bad_group(opt, group, key, err);
    if (rc)
        return rc;
    const ow_cfg *v = ow__cfg_map_get(opt->g[group].opts, key);
    if (!v)
        return ow__error(err, OW_ERR_MISSING_KEY, NULL, 0, 0,
                         "param group %zu has no key '%s'", group, key);
    return ow_cfg_get_double(v, out, err);
}

int ow_optimizer_set_value(ow_optimizer *opt, size_t group, const char *key,
                           const ow_cfg *value, ow_error *err)
{
    ow__error_reset(err);
    int rc = bad_group(opt, group, key, err);
    if (rc)
        return rc;
    if (!value)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "value is NULL");
    long k = ow__optimizer_key(opt, key);
    char context[160];
    snprintf(context, sizeof context, "%s: param group %zu", opt->entry->name, group);
    if (k >= 0) {
        if ((rc = ow__schema_check_value(value, &opt->entry->keys[k], context, err)))
            return rc;
    } else if (!ow__cfg_map_get(opt->g[group].opts, key)) {
        const char *names[64];
        size_t n = 0;
        for (size_t i = 0; i < opt->nkeys && n + 1 < OW__ARRAY_LEN(names); i++)
            names[n++] = opt->entry->keys[i].name;
        names[n] = NULL;
        const char *near = ow__closest(key, names);
        return ow__error(
            err, OW_ERR_UNKNOWN_KEY, NULL, 0, 0, "%s: unknown key '%s'%s%s%s", context,
            key, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    } else if (ow_cfg_get_type(value) != OW_CFG_INT &&
               ow_cfg_get_type(value) != OW_CFG_FLOAT) {
        return ow__error(err, OW_ERR_TYPE, NULL, 0, 0,
                         "%s: expected a number for key '%s'", context, key);
    }
    ow_cfg *opts = ow__cfg_dup(opt->g[group].opts);
    ow_cfg *v = ow__cfg_dup(value);
    if (!opts || !v) {
        ow_cfg_free(opts);
        ow_cfg_free(v);
        return ow__nomem(err);
    }
    if (ow__cfg_map_set(opts, key, v) != OW_OK) {
        ow_cfg_free(opts);
        return ow__nomem(err);
    }
    return ow__optimizer_set_group(opt, group, opts, err);
}

int ow_optimizer_set_double(ow_optimizer *opt, size_t group, const char *key,
                            double value, ow_error *err)
{
    ow__error_reset(err);
    ow_cfg *v = ow__cfg_new_double(value);
    if (!v)
        return ow__nomem(err);
    int rc = ow_optimizer_set_value(opt, group, key, v, err);
    ow_cfg_free(v);
    return rc;
}

int ow_optimizer_set_threads(ow_optimizer *opt, int n, ow_error *err)
{
    ow__error_reset(err);
    if (!opt)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "optimizer is NULL");
    opt->threads = n > 0 ? n : 0;
    return OW_OK;
}

int ow_optimizer_get_threads(const ow_optimizer *opt)
{
    return opt ? ow__optimizer_threads(opt) : 0;
}

/* ---- checks without groups -----------------------------------------------------------
 */

int ow__optimizer_check_config(const ow_entry *entry, const ow_cfg *opt_cfg,
                               const char *context, ow_error *err)
{
    const ow_optimizer_ops *ops = entry->ops;
    if (!ops || ops->abi_version != OW_ABI_VERSION || !ops->check)
        return OW_OK;
    size_t nk = 0;
    while (entry->keys[nk].name)
        nk++;
    /* the values torch checks in __init__: the config's, else the schema's defaults
     * (kept alive in `held`, since string values are borrowed) */
    ow_hparam *hp = ow__calloc(nk ? nk : 1, sizeof *hp);
    ow_cfg *held = ow__cfg_new(OW_CFG_LIST, NULL, 0, 0);
    int rc = OW_OK;
    if (!hp || !held) {
        rc = ow__nomem(err);
        goto done;
    }
    for (size_t k = 0; k < nk; k++) {
        const ow_cfg *v = ow__cfg_map_get(opt_cfg, entry->keys[k].name);
        if (!v) {
            ow_cfg *d = NULL;
            if ((rc = ow__schema_default(&entry->keys[k], &d, err)))
                goto done;
            if (d && (rc = ow__cfg_list_append(held, d)))
                goto done;
            v = d;
        }
        if (v)
            ow__hparam_from_cfg(v, &hp[k]);
        else
            hp[k].is_null = true;
    }
    char msg[256];
    long map[OW_MAX_PARAMS];
    size_t np;
    ow_hparam view[OW_MAX_PARAMS];
    if ((rc = ow__params_map(entry, map, &np, err)))
        goto done;
    ow__params_view(map, np, hp, view);
    if (!ops->check(view, msg, sizeof msg))
        rc = ow__error_at(err, OW_ERR_VALUE, opt_cfg, "%s (%s): %s", context, entry->name,
                          msg);
done:
    if (rc == OW_ERR_NOMEM)
        ow__nomem(err);
    ow_free(hp);
    ow_cfg_free(held);
    return rc;
}
