/* state.c -- checkpoints of a data-parallel wrapper. The file is the one a single
 * process writes (torch's key names, every tensor whole): under ZeRO, rank 0 writes it
 * streaming, each state tensor gathered from the ranks holding its pieces as the file
 * reaches it (never the whole state on rank 0, one tensor at a time); a
 * load reads the whole file on every rank, keeps its shard's slices and drops the rest,
 * so a state saved on 4 ranks loads on 2 or 1 (resharding is only the cut). Every rank
 * learns whether every other succeeded before anything changes. */
#include "../optim/optim_internal.h"
#include "../util/safetensors.h"
#include "dist_internal.h"

#include <string.h>

/* Tensor slots (not scalars) of the optimizer. */
static bool tensor_slot(const ow_optimizer *opt, size_t s)
{
    return !(opt->ops->slots[s].flags & OW_SLOT_SCALAR);
}

/* Whether the shards hold state (they step together: all or none). */
static int any_state(ow__dist *d, bool *out, ow_error *err)
{
    int8_t mine = d->npieces && d->sopt->t[0].has_state;
    int8_t *all = ow__calloc((size_t)d->d.size, 1);
    if (!all)
        return ow__nomem(err);
    for (int r = 0; r < d->d.size; r++) {
        d->c[0][r] = 1;
        d->c[1][r] = (size_t)r;
    }
    int t = d->d.allgatherv(d->d.ctx, &mine, 1, all, d->c[0], d->c[1]);
    *out = false;
    for (int r = 0; r < d->d.size; r++)
        *out = *out || all[r];
    ow_free(all);
    return t ? ow__error(err, OW_ERR_IO, NULL, 0, 0, "rank %d: the transport failed (%d)",
                         d->d.rank, t)
             : OW_OK;
}

/* Sends count bytes at send to rank 0, which receives every rank's at recv + displs. */
static int to_zero(ow__dist *d, const void *send, size_t count, void *recv,
                   const size_t *counts, const size_t *displs)
{
    size_t n = (size_t)d->d.size;
    for (size_t r = 0; r < n; r++) {
        d->c[0][r] = r == 0 ? count : 0;
        d->c[1][r] = 0;
        d->c[2][r] = d->d.rank == 0 ? counts[r] : 0;
        d->c[3][r] = d->d.rank == 0 ? displs[r] : 0;
    }
    d->bytes += d->d.rank ? count : 0;
    return d->d.alltoallv(d->d.ctx, send, d->c[0], d->c[1], recv, d->c[2], d->c[3]);
}

void ow__dist_state_release(ow_optim_wrapper *w)
{
    ow__dist *d = w->dist;
    for (size_t i = 0; d && d->stage && i < d->nt; i++) {
        ow__tensor *t = &w->opt->t[d->full[i]];
        for (size_t s = 0; d->streamed && t->slot && s < w->opt->nslots; s++)
            t->slot[s] = NULL; /* stand-ins for the shards' bytes, not allocations */
        ow__tensor_free_state(w->opt, t);
    }
    if (d)
        d->streamed = false;
}

/* While rank 0 writes a checkpoint its full optimizer holds state for every trainable
 * tensor: the scalar slots (step counts) gathered, the tensor slots stand-ins whose
 * bytes the ranks send one tensor at a time as the file is written (fill). */
static int stand_in(ow_optimizer *full, size_t j, const float *mark, ow_error *err)
{
    ow__tensor *t = &full->t[j];
    size_t ns = full->nslots ? full->nslots : 1;
    t->slot = ow__calloc(ns, sizeof *t->slot);
    t->slot_numel = ow__calloc(ns, sizeof *t->slot_numel);
    t->scalar = ow__calloc(ns, sizeof *t->scalar);
    if (!t->slot || !t->slot_numel || !t->scalar) {
        ow__tensor_free_state(full, t);
        return ow__nomem(err);
    }
    for (size_t s = 0; s < full->nslots; s++) {
        int64_t shape[OW_MAX_DIMS];
        int nd = ow__slot_shape(full, t, s, shape);
        if (nd < 0 || !tensor_slot(full, s))
            continue;
        size_t n = 1;
        for (int k = 0; k < nd; k++)
            n *= (size_t)shape[k];
        t->sdtype[s] =
            (unsigned char)ow__slot_dtype_hp(full, full->g[t->group].hp, s, t->numel);
        t->slot[s] = (float *)mark;
        t->slot_numel[s] = n;
    }
    t->has_state = true;
    return OW_OK;
}

/* The file's state tensors in its order, from (*i, *s) on: each trainable tensor's
 * tensor slots (what ow__optimizer_state_add writes for the stand-ins). */
static bool next_entry(const ow__dist *d, const ow_optimizer *full, size_t *i, size_t *s)
{
    for (; *i < d->nt; ++*i, *s = 0)
        for (; *s < full->nslots; ++*s) {
            int64_t shape[OW_MAX_DIMS];
            if (tensor_slot(full, *s) &&
                ow__slot_shape(full, &full->t[d->full[*i]], *s, shape) >= 0)
                return true;
        }
    return false;
}

/* Slot s of trainable tensor i from the ranks holding its pieces, into buf on rank 0
 * (collective: every rank calls it for the same entries in the same order). */
static int gather_entry(ow__dist *d, const ow_optimizer *full, size_t i, size_t s,
                        void *buf)
{
    const ow__dist_tensor *t = &d->t[i];
    size_t n = (size_t)d->d.size, es = 4, count = 0;
    const void *send = NULL;
    for (size_t k = 0; k < d->npieces; k++) /* at most one piece of it here */
        if (d->piece[k].tensor == i && d->sopt->t[k].slot &&
            (send = d->sopt->t[k].slot[s])) {
            es = ow__dtype_size(d->sopt->t[k].sdtype[s]);
            count = d->piece[k].len * es;
        }
    if (d->d.rank == 0)
        es = ow__dtype_size(full->t[d->full[i]].sdtype[s]);
    for (size_t r = 0; r < n; r++) {
        size_t a = t->flat > d->cut[r] ? t->flat : d->cut[r];
        size_t b =
            t->flat + t->numel < d->cut[r + 1] ? t->flat + t->numel : d->cut[r + 1];
        d->c[4][r] = a < b ? (b - a) * es : 0;
        d->c[5][r] = a < b ? (a - t->flat) * es : 0;
    }
    return to_zero(d, send, count, buf, d->c[4], d->c[5]);
}

/* The builder's fill: the next state tensor, gathered as the file is written. */
static int fill(void *ctx, void *buf, size_t nbytes)
{
    ow_optim_wrapper *w = ctx;
    ow__dist *d = w->dist;
    (void)nbytes;
    if (!next_entry(d, w->opt, &d->next_i, &d->next_s))
        return -1;
    int t = gather_entry(d, w->opt, d->next_i, d->next_s, buf);
    d->next_s++;
    return t;
}

int ow__dist_state_fills(ow_optim_wrapper *w, ow__st_builder *b, const char *prefix,
                         ow_error *err)
{
    ow__dist *d = w->dist;
    int rc = OW_OK;
    char name[512];
    for (size_t i = 0, s = 0; d->streamed && rc == OW_OK && next_entry(d, w->opt, &i, &s);
         s++) {
        snprintf(name, sizeof name, "%soptimizer.state.%zu.%s", prefix, d->full[i],
                 w->opt->ops->slots[s].name);
        rc = ow__st_builder_set_fill(b, name, fill, w, err);
    }
    return rc;
}

void ow__dist_state_serve(ow_optim_wrapper *w)
{
    ow__dist *d = w->dist;
    /* the ranks but 0 send every entry; rank 0 gathers what its save did not ask for
     * (after a failed write): the same collectives on every rank */
    while (d->streamed && next_entry(d, w->opt, &d->next_i, &d->next_s)) {
        gather_entry(d, w->opt, d->next_i, d->next_s, d->recv);
        d->next_s++;
    }
}

int ow__dist_state_gather(ow_optim_wrapper *w, ow_error *err)
{
    ow__dist *d = w->dist;
    bool state = false;
    d->next_i = d->next_s = 0;
    d->streamed = false;
    if (!d->stage) /* every rank holds the whole state: rank 0 writes its own */
        return OW_OK;
    int rc = any_state(d, &state, err);
    if (rc || !state)
        return rc;
    ow_optimizer *full = w->opt, *so = d->sopt;
    bool zero = d->d.rank == 0;
    d->streamed = true; /* from here, release undoes the stand-ins */
    for (size_t i = 0; zero && i < d->nt && rc == OW_OK; i++)
        rc = stand_in(full, d->full[i], d->recv, err);
    if ((rc = ow__dist_agree(d, rc, "to hold the gathered state", err)))
        return rc;
    size_t n = (size_t)d->d.size, ns = full->nslots, mine = 0, pos = 0;
    size_t *counts = ow__calloc(n, sizeof *counts),
           *displs = ow__calloc(n, sizeof *displs);
    double *own = ow__calloc(d->nt * ns + 1, sizeof *own);
    double *all = zero ? ow__calloc(d->nt * ns + 1, sizeof *all) : NULL;
    if (!counts || !displs || !own || (zero && !all))
        rc = ow__nomem(err);
    if ((rc = ow__dist_agree(d, rc, "to gather the state", err))) {
        ow_free(counts);
        ow_free(displs);
        ow_free(own);
        ow_free(all);
        return rc;
    }
    /* scalar slots (step counts): from the piece holding each tensor's first element;
     * rank r sends those of the tensors that start in its shard, in order */
    for (size_t k = 0; k < d->npieces; k++)
        if (d->piece[k].off == 0)
            memcpy(own + ns * mine++, so->t[k].scalar, ns * sizeof(double));
    for (size_t r = 0, i = 0; r < n; r++) {
        displs[r] = pos * ns * sizeof(double);
        for (; i < d->nt && d->t[i].flat < d->cut[r + 1]; i++)
            pos += d->t[i].numel > 0;
        counts[r] = pos * ns * sizeof(double) - displs[r];
    }
    int t = to_zero(d, own, mine * ns * sizeof(double), all, counts, displs);
    for (size_t i = 0, j = 0; zero && !t && i < d->nt; i++)
        if (d->t[i].numel)
            memcpy(full->t[d->full[i]].scalar, all + ns * j++, ns * sizeof(double));
    ow_free(own);
    ow_free(all);
    ow_free(counts);
    ow_free(displs);
    if (t)
        return ow__error(err, OW_ERR_IO, NULL, 0, 0,
                         "rank %d: the transport failed (code %d) gathering the state",
                         d->d.rank, t);
    return OW_OK;
}

int ow__dist_state_reserve(ow_optim_wrapper *w, ow_error *err)
{
    ow__dist *d = w->dist;
    int rc = OW_OK;
    for (size_t k = 0; d->stage && k < d->npieces && rc == OW_OK; k++)
        if (!d->sopt->t[k].has_state &&
            (rc = ow__tensor_alloc_state(d->sopt, k, err)) == OW_OK)
            d->sopt->t[k].fresh = true;
    return rc;
}

void ow__dist_state_unreserve(ow_optim_wrapper *w)
{
    ow__dist *d = w->dist;
    for (size_t k = 0; d->stage && k < d->npieces; k++)
        if (d->sopt->t[k].fresh) {
            ow__tensor_free_state(d->sopt, &d->sopt->t[k]);
            d->sopt->t[k].fresh = false;
        }
}

void ow__dist_state_scatter(ow_optim_wrapper *w)
{
    ow__dist *d = w->dist;
    if (!d->stage)
        return;
    ow_optimizer *full = w->opt, *so = d->sopt;
    for (size_t k = 0; k < d->npieces; k++) {
        const ow__dist_piece *pc = &d->piece[k];
        const ow__tensor *ft = &full->t[d->full[pc->tensor]];
        ow__tensor *st = &so->t[k];
        st->fresh = false;
        if (!ft->has_state) { /* saved before the first step */
            ow__tensor_free_state(so, st);
            continue;
        }
        for (size_t s = 0; s < full->nslots; s++) {
            size_t es = ow__dtype_size(ft->sdtype[s]);
            if (tensor_slot(full, s) && ft->slot[s] && st->slot[s])
                memcpy(st->slot[s], (const unsigned char *)ft->slot[s] + pc->off * es,
                       pc->len * es);
            st->scalar[s] = ft->scalar[s];
        }
    }
    so->active_valid = false;
    ow__dist_state_release(w);
}

int ow__dist_window_sums(ow_optim_wrapper *w, ow_error *err)
{
    ow__dist *d = w->dist;
    int rc = ow__dist_agree(d, ow__dist_refresh(w, err), "to read its buffers", err);
    if (rc)
        return rc;
    size_t n = (size_t)d->d.size, me = (size_t)d->d.rank;
    size_t lo = d->cut[me], len = d->cut[me + 1] - lo;
    for (size_t i = 0; i < d->nt; i++)
        memcpy(d->send + d->t[i].flat, d->t[i].g, d->t[i].numel * sizeof(float));
    for (size_t r = 0; r < n; r++) {
        d->c[0][r] = (d->cut[r + 1] - d->cut[r]) * sizeof(float);
        d->c[1][r] = d->cut[r] * sizeof(float);
        d->c[2][r] = len * sizeof(float);
        d->c[3][r] = r * len * sizeof(float);
    }
    int t =
        d->d.alltoallv(d->d.ctx, d->send, d->c[0], d->c[1], d->recv, d->c[2], d->c[3]);
    d->bytes += (d->total - len) * sizeof(float);
    float *sum = d->send + lo; /* the packed copy is spent: the shard's sums go here */
    for (size_t i = 0; !t && i < len; i++) {
        float acc = d->recv[i];
        for (size_t r = 1; r < n; r++)
            acc += d->recv[r * len + i];
        sum[i] = acc;
    }
    size_t *counts = ow__calloc(n, sizeof *counts),
           *displs = ow__calloc(n, sizeof *displs);
    rc = counts && displs ? OW_OK : ow__nomem(err);
    if (!t && (rc = ow__dist_agree(d, rc, "to gather the window's sums", err)) == OW_OK) {
        for (size_t r = 0; r < n; r++) {
            counts[r] = (d->cut[r + 1] - d->cut[r]) * sizeof(float);
            displs[r] = d->cut[r] * sizeof(float);
        }
        t = to_zero(d, sum, len * sizeof(float), d->recv, counts, displs);
    }
    ow_free(counts);
    ow_free(displs);
    if (t)
        return ow__error(err, OW_ERR_IO, NULL, 0, 0,
                         "rank %d: the transport failed (code %d) gathering the window's "
                         "sums",
                         d->d.rank, t);
    return rc;
}

const float *ow__dist_window_grad(const ow_optim_wrapper *w, size_t tensor)
{
    const ow__dist *d = w->dist;
    for (size_t i = 0; i < d->nt; i++)
        if (d->t[i].tensor == tensor)
            return d->recv + d->t[i].flat;
    return NULL;
}
