/* dist.c -- ow_optim_wrapper_set_dist: a wrapper becomes data-parallel. The ranks agree
 * on config, model and groups first (every rank learns who differs, so none waits for
 * a collective another skipped); the trainable elements, in the optimizer's order, are
 * cut into contiguous, balanced shards at scan-unit starts (so that the clip norm's
 * partial sums are those one process takes); under ZeRO each rank builds a model of its
 * shard's pieces (pointers into the host's buffers) and the same optimizer over it. */
#include "../groups/groups_internal.h"
#include "../model/model_internal.h"
#include "../optim/optim_internal.h"
#include "dist_internal.h"

#include <stdlib.h>
#include <string.h>

void ow__dist_free(ow__dist *d)
{
    if (!d)
        return;
    if (d->d.free)
        d->d.free(d->d.ctx);
    ow_optimizer_free(d->sopt);
    ow_groups_free(d->sgroups);
    ow_model_free(d->smodel);
    ow_free(d->t);
    ow_free(d->full);
    ow_free(d->unit);
    ow_free(d->cut);
    ow_free(d->ufirst);
    ow_free(d->piece);
    ow_free(d->pgrad);
    ow_free(d->send);
    ow_free(d->recv);
    ow_free(d->parts);
    ow_free(d->mine);
    for (int i = 0; i < 6; i++)
        ow_free(d->c[i]);
    ow_free(d);
}

/* ---- agreement ----------------------------------------------------------------------
 */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

/* What every rank must have alike, and its own status. */
typedef struct record {
    int64_t rc;
    uint64_t config, model, groups;
    int64_t total, ntensors, ngroups, stage;
} record;

int ow__dist_agree(ow__dist *d, int rc, const char *what, ow_error *err)
{
    int32_t mine = rc, *all = ow__calloc((size_t)d->d.size, sizeof *all);
    if (!all)
        return ow__nomem(err); /* cannot tell the others: MPI's own errors abort */
    for (int r = 0; r < d->d.size; r++) {
        d->c[0][r] = sizeof mine;
        d->c[1][r] = (size_t)r * sizeof mine;
    }
    int t = d->d.allgatherv(d->d.ctx, &mine, sizeof mine, all, d->c[0], d->c[1]);
    d->bytes += sizeof mine * (size_t)(d->d.size - 1);
    int first = -1;
    for (int r = 0; r < d->d.size && first < 0; r++)
        if (all[r])
            first = r;
    ow_free(all);
    if (t)
        return ow__error(err, OW_ERR_IO, NULL, 0, 0,
                         "rank %d: the transport failed (code %d) while %s", d->d.rank, t,
                         what);
    if (first < 0 || rc)
        return rc; /* this rank's own message stands */
    return ow__error(err, OW_ERR_VALUE, NULL, 0, 0,
                     "rank %d failed %s (its own error is on its stderr); every rank "
                     "stops",
                     first, what);
}

static int fill_record(const ow_optim_wrapper *w, const ow__dist *d, record *r)
{
    memset(r, 0, sizeof *r);
    r->config = w->config_hash;
    r->total = (int64_t)d->total;
    r->ntensors = (int64_t)d->nt;
    r->ngroups = (int64_t)ow_optimizer_get_num_groups(w->opt);
    r->stage = d->stage;
    uint64_t h = 0xcbf29ce484222325ull;
    const ow_model *m = w->model;
    for (size_t i = 0; i < d->nt; i++) {
        ow_param_view pv;
        ow_model_get_param(m, d->t[i].param, &pv);
        h = fnv(h, pv.full_name, strlen(pv.full_name) + 1);
        h = fnv(h, pv.shape, (size_t)pv.ndim * sizeof *pv.shape);
    }
    r->model = h;
    h = fnv(0xcbf29ce484222325ull, w->built, strlen(w->built));
    for (size_t i = 0; i < d->nt; i++)
        h = fnv(h, &d->t[i].group, sizeof d->t[i].group);
    r->groups = h;
    return OW_OK;
}

/* The first rank whose record differs from rank 0's, with what differs. */
static int compare(const record *all, int n, ow_error *err)
{
    for (int r = 1; r < n; r++) {
        const record *a = &all[0], *b = &all[r];
        if (b->stage != a->stage)
            return ow__error(err, OW_ERR_VALUE, NULL, 0, 0,
                             "data-parallel: rank %d runs zero_stage %lld, rank 0 %lld",
                             r, (long long)b->stage, (long long)a->stage);
        if (b->config != a->config)
            return ow__error(err, OW_ERR_VALUE, NULL, 0, 0,
                             "data-parallel: rank %d's config differs from rank 0's (its "
                             "optim_wrapper or param_scheduler section)",
                             r);
        if (b->model != a->model || b->total != a->total || b->ntensors != a->ntensors)
            return ow__error(err, OW_ERR_VALUE, NULL, 0, 0,
                             "data-parallel: rank %d's model differs from rank 0's: %lld "
                             "trainable tensors of %lld elements against %lld of %lld "
                             "(or other names or shapes)",
                             r, (long long)b->ntensors, (long long)b->total,
                             (long long)a->ntensors, (long long)a->total);
        if (b->groups != a->groups || b->ngroups != a->ngroups)
            return ow__error(
                err, OW_ERR_VALUE, NULL, 0, 0,
                "data-parallel: rank %d's param groups differ from rank 0's: "
                "%lld groups against %lld (or other options or members)",
                r, (long long)b->ngroups, (long long)a->ngroups);
    }
    return OW_OK;
}

/* ---- layout -------------------------------------------------------------------------
 */

/* The trainable tensors in the optimizer's order: distinct, in a group, with data and
 * a gradient and requires_grad (what ow__wrapper_collect_grads collects). */
static int collect(const ow_optim_wrapper *w, ow__dist *d, ow_error *err)
{
    const ow_groups *gs = w->groups;
    const ow_model *m = w->model;
    size_t cap = 0, nt = ow_model_get_num_tensors(m);
    for (size_t gi = 0; gi < ow_groups_get_count(gs); gi++)
        cap += ow_groups_get_num_params(gs, gi);
    bool *seen = ow__calloc(nt ? nt : 1, sizeof *seen);
    d->t = ow__calloc(cap ? cap : 1, sizeof *d->t);
    if (!seen || !d->t) {
        ow_free(seen);
        return ow__nomem(err);
    }
    for (size_t gi = 0; gi < ow_groups_get_count(gs); gi++)
        for (size_t j = 0; j < ow_groups_get_num_params(gs, gi); j++) {
            ow_param_view pv;
            size_t param = ow_groups_get_param(gs, gi, j);
            if (ow_model_get_param(m, param, &pv) != OW_OK || seen[pv.tensor])
                continue;
            seen[pv.tensor] = true;
            if (!pv.requires_grad || !pv.data || !pv.grad)
                continue;
            d->t[d->nt++] = (ow__dist_tensor){.param = param,
                                              .tensor = pv.tensor,
                                              .group = gi,
                                              .numel = (size_t)pv.numel,
                                              .flat = d->total,
                                              .unit = d->nunits,
                                              .p = pv.data,
                                              .g = pv.grad};
            d->total += (size_t)pv.numel;
            d->nunits += (size_t)pv.numel < OW__GRAD_SERIAL_BELOW
                             ? 1
                             : ((size_t)pv.numel + OW__GRAD_CHUNK - 1) / OW__GRAD_CHUNK;
        }
    ow_free(seen);
    d->gen = ow__model_generation(m);
    /* the same walk as the optimizer's: its tensors in order, some not trainable */
    if (!(d->full = ow__calloc(d->nt ? d->nt : 1, sizeof *d->full)))
        return ow__nomem(err);
    const ow_optimizer *opt = w->opt;
    for (size_t i = 0, j = 0; i < d->nt; i++) {
        while (j < opt->nt && opt->t[j].param != d->t[i].param)
            j++;
        if (j == opt->nt)
            return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                             "data-parallel: tensor %zu is not in the optimizer", i);
        d->full[i] = j;
    }
    return OW_OK;
}

/* Units, and the cuts: rank r's shard starts at the unit start nearest r x total / N. */
static int cut(ow__dist *d, ow_error *err)
{
    size_t n = (size_t)d->d.size;
    d->unit = ow__calloc(d->nunits + 1, sizeof *d->unit);
    d->cut = ow__calloc(n + 1, sizeof *d->cut);
    d->ufirst = ow__calloc(n + 1, sizeof *d->ufirst);
    size_t *start = ow__calloc(d->nunits + 1, sizeof *start);
    if (!d->unit || !d->cut || !d->ufirst || !start) {
        ow_free(start);
        return ow__nomem(err);
    }
    size_t u = 0;
    for (size_t i = 0; i < d->nt; i++) {
        size_t n = d->t[i].numel, step = n < OW__GRAD_SERIAL_BELOW ? n : OW__GRAD_CHUNK;
        size_t off = 0;
        do {
            size_t l = n - off < step ? n - off : step;
            d->unit[u] = (ow__dist_unit){i, off, l};
            start[u++] = d->t[i].flat + off;
            off += l;
        } while (off < n);
    }
    start[d->nunits] = d->total;
    u = 0;
    for (size_t r = 1; r < n; r++) {
        size_t target = (size_t)((double)d->total * (double)r / (double)n);
        while (u < d->nunits &&
               (start[u + 1] > target ? start[u + 1] - target : target - start[u + 1]) <=
                   (start[u] > target ? start[u] - target : target - start[u]))
            u++;
        d->cut[r] = start[u];
        d->ufirst[r] = u;
    }
    d->cut[n] = d->total;
    d->ufirst[n] = d->nunits;
    ow_free(start);
    return OW_OK;
}

/* This rank's pieces, and (ZeRO) a model of them with the same groups and optimizer. */
static int shard(ow_optim_wrapper *w, ow__dist *d, ow_error *err)
{
    size_t lo = d->cut[d->d.rank], hi = d->cut[d->d.rank + 1];
    d->piece = ow__calloc(d->nt ? d->nt : 1, sizeof *d->piece);
    d->pgrad = ow__calloc(d->nt ? d->nt : 1, sizeof *d->pgrad);
    if (!d->piece || !d->pgrad)
        return ow__nomem(err);
    for (size_t i = 0; i < d->nt; i++) {
        size_t a = d->t[i].flat, b = a + d->t[i].numel;
        a = a > lo ? a : lo;
        b = b < hi ? b : hi;
        if (a < b)
            d->piece[d->npieces++] = (ow__dist_piece){i, a - d->t[i].flat, b - a};
    }
    if (d->stage == 0)
        return OW_OK;
    static const ow_module_info root = {.name = "", .type = "Shard"};
    int rc = ow_model_new("shard", &d->smodel, err);
    if (rc == OW_OK)
        rc = ow_model_add_module(d->smodel, &root, err);
    for (size_t k = 0; k < d->npieces && rc == OW_OK; k++) {
        const ow__dist_piece *pc = &d->piece[k];
        const ow__dist_tensor *t = &d->t[pc->tensor];
        ow_param_view pv;
        ow_model_get_param(w->model, t->param, &pv);
        char name[32];
        snprintf(name, sizeof name, "p%zu", k);
        int64_t len = (int64_t)pc->len;
        bool whole = pc->len == t->numel;
        ow_param_info info = {.module = "",
                              .name = name,
                              .ndim = whole ? pv.ndim : 1,
                              .shape = whole ? pv.shape : &len,
                              .requires_grad = true,
                              .data = t->p + pc->off,
                              .grad = t->g + pc->off};
        rc = ow_model_add_param(d->smodel, &info, err);
        if (rc == OW_OK && ow_model_find_param(d->smodel, name) != (long)k)
            rc = ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "shard model order");
    }
    if (rc == OW_OK && !(d->sgroups = ow__groups_new(d->smodel)))
        rc = ow__nomem(err);
    size_t ng = ow_optimizer_get_num_groups(w->opt);
    for (size_t gi = 0; gi < ng && rc == OW_OK; gi++) {
        size_t idx;
        const ow_cfg *o = ow_optimizer_get_options(w->opt, gi);
        rc = ow_groups_add(d->sgroups, &idx, err);
        for (size_t k = 0; k < ow_cfg_get_size(o) && rc == OW_OK; k++)
            rc = ow_groups_set_value(d->sgroups, gi, ow_cfg_get_key(o, k),
                                     ow_cfg_get_item(o, k), err);
    }
    for (size_t k = 0; k < d->npieces && rc == OW_OK; k++)
        rc = ow_groups_add_param(d->sgroups, d->t[d->piece[k].tensor].group, k, err);
    if (rc)
        return rc;
    ow_cfg *defaults = NULL;
    const ow_cfg *src = ow__groups_get_defaults(w->groups);
    if (src && !(defaults = ow__cfg_dup(src)))
        return ow__nomem(err);
    ow__groups_set_optimizer(d->sgroups, ow__groups_get_optimizer(w->groups), defaults);
    d->sgroups->apply_lr_scale = ow__groups_applies_lr_scale(w->groups);
    rc = ow_optimizer_new(d->sgroups, &d->sopt, err);
    if (rc == OW_OK)
        rc = ow_optimizer_set_threads(d->sopt, ow_optimizer_get_threads(w->opt), err);
    for (size_t k = 0; rc == OW_OK && k < d->npieces; k++)
        if (k >= d->sopt->nt || d->sopt->t[k].param != k)
            rc = ow__error(
                err, OW_ERR_MISUSE, NULL, 0, 0,
                "data-parallel: the shard's optimizer has its pieces in another "
                "order");
    return rc;
}

/* ZeRO steps pieces of tensors: only optimizers whose update is element by element for
 * the groups' hyperparameters (the passes prepare selects: AdamW's caution adds a pass
 * with per-tensor sums). */
int ow__dist_check_elementwise(const ow_optimizer *opt, int rounds, ow_error *err)
{
    const ow_entry *e = ow_optimizer_get_entry(opt);
    const ow_optimizer_ops *ops = e->ops;
    /* the passes the coming `rounds` steps select: prepare as the engine will call it,
     * on each tensor's scalars (copies) or, before the first step, the scalar slots'
     * initial values (ADOPT's first step runs other passes than the next ones) */
    unsigned mask = 0;
    for (size_t i = 0; i < opt->nt && !ops->tensor_step; i++) {
        const ow__tensor *t = &opt->t[i];
        double scalars[OW__MAX_SLOTS] = {0};
        for (size_t sl = 0; sl < opt->nslots; sl++)
            scalars[sl] = t->has_state ? t->scalar[sl] : (double)ops->slots[sl].init;
        _Alignas(16) unsigned char ctx[OW_MAX_CTX] = {0}, shared[OW_MAX_CTX];
        memcpy(shared, opt->shared, sizeof shared);
        for (int r = 0; r < rounds; r++) { /* prepare counts the step in scalars */
            ow_prepare_args pa = {.hp = opt->g[t->group].php,
                                  .defaults = opt->pdefaults,
                                  .lr = 0.001,
                                  .initial_lr = opt->g[t->group].initial_lr,
                                  .scalars = scalars,
                                  .ctx = ctx,
                                  .passes = ~0u,
                                  .shared = shared};
            ops->prepare(&pa);
            mask |= pa.passes;
        }
    }
    bool sums = false;
    for (int k = 0; ops->passes && k < OW_MAX_PASSES && ops->passes[k].run; k++)
        sums = sums ||
               ((mask >> k & 1u) && (ops->passes[k].nsums > 0 || ops->passes[k].finish));
    /* state slots cut with the tensor: parameter-shaped, one element per element */
    bool shaped = true;
    for (size_t i = 0; i < opt->nt && shaped; i++)
        for (size_t sl = 0; sl < opt->nslots && shaped; sl++) {
            const ow__tensor *t = &opt->t[i];
            int64_t shape[OW_MAX_DIMS];
            int nd = ow__slot_shape(opt, t, sl, shape);
            size_t n = 1;
            for (int k = 0; k < nd; k++)
                n *= (size_t)shape[k];
            if (ops->slots[sl].flags & OW_SLOT_SCALAR || nd < 0)
                continue;
            shaped = n == t->numel &&
                     (!ops->slot_dtype || ops->slot_dtype(opt->g[t->group].php, (int)sl,
                                                          t->numel) != OW_DTYPE_U8);
        }
    const char *what = ops->tensor_step            ? "whole tensors (a per-tensor step)"
                       : !shaped                   ? "state that is not parameter-shaped"
                       : sums                      ? "whole-tensor norms"
                       : ops->needs & OW_NEEDS_RNG ? "random draws per tensor"
                       : ops->needs & OW_NEEDS_HVP ? "Hessian-vector products"
                                                   : NULL;
    if (what)
        return ow__error(err, OW_ERR_UNSUPPORTED, NULL, 0, 0,
                         "zero_stage: %s reads %s, which a ZeRO shard (a tensor may span "
                         "ranks) does not hold; use zero_stage 0 (plain data-parallel) "
                         "or an element-wise optimizer (SGD, AdamW, ... without caution)",
                         e->name, what);
    return OW_OK;
}

static int setup(ow_optim_wrapper *w, ow__dist *d, ow_error *err)
{
    if (w->nchildren || !w->groups || !w->opt)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_set_dist: only for a wrapper built from a "
                         "config (ow_optim_wrapper_new), not an OptimWrapperDict or "
                         "ow_optim_wrapper_wrap");
    if (w->dist)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_set_dist: called twice");
    d->stage = (int)w->o.zero_stage;
    int rc = ow__half_copies(w, err); /* half gradients: float32 copies to sum */
    if (rc)
        return rc;
    for (int i = 2; i < 6; i++)
        if (!(d->c[i] = ow__calloc((size_t)d->d.size, sizeof *d->c[i])))
            return ow__nomem(err);
    rc = collect(w, d, err);
    if (rc == OW_OK)
        rc = cut(d, err);
    if (rc == OW_OK && d->stage)
        rc = ow__dist_check_elementwise(w->opt, 4, err); /* the first steps */
    return rc;
}

static int buffers(ow__dist *d, ow_error *err)
{
    size_t most = 0, n = (size_t)d->d.size;
    for (size_t r = 0; r < n; r++)
        most = d->cut[r + 1] - d->cut[r] > most ? d->cut[r + 1] - d->cut[r] : most;
    size_t rn = most * n > d->total ? most * n : d->total;
    d->send = ow__malloc((d->total ? d->total : 1) * sizeof *d->send);
    d->recv = ow__malloc((rn ? rn : 1) * sizeof *d->recv);
    d->parts = ow__calloc(2 * d->nunits + 2, sizeof *d->parts);
    d->mine = ow__calloc(2 * d->nunits + 2, sizeof *d->mine);
    return d->send && d->recv && d->parts && d->mine ? OW_OK : ow__nomem(err);
}

int ow_optim_wrapper_set_dist(ow_optim_wrapper *w, const ow_dist *dist, ow_error *err)
{
    ow__error_reset(err);
    if (!dist || !dist->allgatherv || !dist->alltoallv || dist->size < 1 ||
        dist->rank < 0 || dist->rank >= dist->size || !w) {
        if (dist && dist->free)
            dist->free(dist->ctx);
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_set_dist: needs a wrapper and a transport "
                         "with both collectives and 0 <= rank < size");
    }
    ow__dist *d = ow__calloc(1, sizeof *d);
    if (!d) {
        if (dist->free)
            dist->free(dist->ctx);
        return ow__nomem(err);
    }
    d->d = *dist;
    if (!(d->c[0] = ow__calloc((size_t)d->d.size, sizeof *d->c[0])) ||
        !(d->c[1] = ow__calloc((size_t)d->d.size, sizeof *d->c[1]))) {
        ow__dist_free(d);
        return ow__nomem(err);
    }
    /* every rank's status and record travel before any rank may give up */
    ow_error local;
    ow__error_reset(&local);
    int rc = setup(w, d, &local);
    if (rc == OW_OK)
        rc = shard(w, d, &local);
    if (rc == OW_OK)
        rc = buffers(d, &local);
    record mine, *all = ow__calloc((size_t)d->d.size, sizeof *all);
    if (!all && rc == OW_OK)
        rc = ow__nomem(&local);
    if (rc == OW_OK)
        fill_record(w, d, &mine);
    else
        memset(&mine, 0, sizeof mine);
    mine.rc = rc;
    int t = all ? 0 : -1;
    if (all) {
        for (int r = 0; r < d->d.size; r++) {
            d->c[0][r] = sizeof mine;
            d->c[1][r] = (size_t)r * sizeof mine;
        }
        t = d->d.allgatherv(d->d.ctx, &mine, sizeof mine, all, d->c[0], d->c[1]);
    }
    int first = -1;
    for (int r = 0; all && !t && r < d->d.size && first < 0; r++)
        if (all[r].rc)
            first = r;
    if (rc) {
        if (err)
            *err = local;
    } else if (t) {
        rc = ow__error(err, OW_ERR_IO, NULL, 0, 0,
                       "ow_optim_wrapper_set_dist: the transport failed (code %d)", t);
    } else if (first >= 0) {
        rc = ow__error(err, all[first].rc, NULL, 0, 0,
                       "data-parallel: rank %d could not set up its wrapper (its own "
                       "error is on its stderr); every rank stops",
                       first);
    } else {
        rc = compare(all, d->d.size, err);
    }
    ow_free(all);
    if (rc) {
        ow__dist_free(d);
        return rc;
    }
    if (d->d.size == 1) { /* one rank: the plain wrapper */
        ow__dist_free(d);
        return OW_OK;
    }
    w->dist = d;
    return OW_OK;
}

int ow__dist_refresh(ow_optim_wrapper *w, ow_error *err)
{
    ow__dist *d = w->dist;
    unsigned long gen = ow__model_generation(w->model);
    if (gen == d->gen)
        return OW_OK;
    int rc = OW_OK;
    for (size_t i = 0; i < d->nt && rc == OW_OK; i++) {
        ow_param_view pv;
        ow_model_get_param(w->model, d->t[i].param, &pv);
        if (!pv.requires_grad || !pv.data || !pv.grad)
            rc = ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                           "data-parallel: '%s' stopped being trainable after "
                           "ow_optim_wrapper_set_dist (its layout is fixed then)",
                           pv.full_name);
        d->t[i].p = pv.data;
        d->t[i].g = pv.grad;
    }
    for (size_t k = 0; k < d->npieces && rc == OW_OK; k++) {
        const ow__dist_piece *pc = &d->piece[k];
        float *p = d->t[pc->tensor].p + pc->off, *g = d->t[pc->tensor].g + pc->off;
        if (d->smodel)
            rc = ow_model_set_data_at(d->smodel, k, p, g, err);
    }
    d->gen = gen;
    return rc;
}

int ow_optim_wrapper_get_dist_stats(const ow_optim_wrapper *w, ow_dist_stats *out,
                                    ow_error *err)
{
    ow__error_reset(err);
    if (!w || !out || w->nchildren || !w->opt)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_get_dist_stats: needs a wrapper (not an "
                         "OptimWrapperDict) and out");
    const ow__dist *d = w->dist;
    if (!d) { /* one process: everything is its shard */
        int64_t numel = 0;
        for (size_t i = 0; i < w->ngrads; i++)
            numel += (int64_t)w->grads[i].n;
        *out = (ow_dist_stats){.size = 1,
                               .zero_stage = (int)w->o.zero_stage,
                               .numel = numel,
                               .shard_end = numel,
                               .state_bytes = ow_optimizer_get_state_bytes(w->opt)};
        return OW_OK;
    }
    *out = (ow_dist_stats){.rank = d->d.rank,
                           .size = d->d.size,
                           .zero_stage = d->stage,
                           .numel = (int64_t)d->total,
                           .shard_begin = (int64_t)d->cut[d->d.rank],
                           .shard_end = (int64_t)d->cut[d->d.rank + 1],
                           .bytes_sent = d->bytes,
                           .last_bytes_sent = d->bytes - d->last_bytes,
                           .state_bytes =
                               ow_optimizer_get_state_bytes(d->sopt ? d->sopt : w->opt)};
    return OW_OK;
}
