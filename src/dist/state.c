/* state.c -- checkpoints of a data-parallel wrapper. The file is the one a single
 * process writes (torch's key names, every tensor whole): under ZeRO, rank 0 gathers
 * the shards' state into the full optimizer for the save and drops it afterwards; a
 * load reads the whole file on every rank, keeps its shard's slices and drops the rest,
 * so a state saved on 4 ranks loads on 2 or 1 (resharding is only the cut). Every rank
 * learns whether every other succeeded before anything changes. */
#include "../optim/optim_internal.h"
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
    const ow__dist *d = w->dist;
    for (size_t i = 0; d && d->stage && i < d->nt; i++)
        ow__tensor_free_state(w->opt, &w->opt->t[d->full[i]]);
}

int ow__dist_state_gather(ow_optim_wrapper *w, ow_error *err)
{
    ow__dist *d = w->dist;
    bool state = false;
    if (!d->stage) /* every rank holds the whole state: rank 0 writes its own */
        return OW_OK;
    int rc = any_state(d, &state, err);
    if (rc || !state)
        return rc;
    ow_optimizer *full = w->opt, *so = d->sopt;
    bool zero = d->d.rank == 0;
    for (size_t i = 0; zero && i < d->nt && rc == OW_OK; i++)
        if (!full->t[d->full[i]].has_state)
            rc = ow__tensor_alloc_state(full, d->full[i], err);
    if ((rc = ow__dist_agree(d, rc, "to hold the gathered state", err)))
        return rc;
    size_t n = (size_t)d->d.size, me = (size_t)d->d.rank;
    size_t lo = d->cut[me], len = d->cut[me + 1] - lo;
    size_t ns = full->nslots, mine = 0, pos = 0;
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
    int t = 0;
    for (size_t s = 0; s < full->nslots && !t; s++) {
        if (!tensor_slot(full, s))
            continue;
        /* slot s of this rank's shard, in the flat order; rank 0 receives all */
        for (size_t k = 0; k < d->npieces; k++) {
            float *src = so->t[k].slot[s];
            float *dst = d->send + (d->t[d->piece[k].tensor].flat + d->piece[k].off - lo);
            if (src)
                memcpy(dst, src, d->piece[k].len * sizeof *dst);
            else
                memset(dst, 0, d->piece[k].len * sizeof *dst);
        }
        for (size_t r = 0; r < n; r++) {
            counts[r] = (d->cut[r + 1] - d->cut[r]) * sizeof(float);
            displs[r] = d->cut[r] * sizeof(float);
        }
        t = to_zero(d, d->send, len * sizeof(float), d->recv, counts, displs);
        for (size_t i = 0; zero && !t && i < d->nt; i++) {
            ow__tensor *ft = &full->t[d->full[i]];
            if (ft->slot[s])
                memcpy(ft->slot[s], d->recv + d->t[i].flat,
                       d->t[i].numel * sizeof(float));
        }
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
    if (!t)
        t = to_zero(d, own, mine * ns * sizeof(double), all, counts, displs);
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
            if (tensor_slot(full, s) && ft->slot[s] && st->slot[s])
                memcpy(st->slot[s], ft->slot[s] + pc->off, pc->len * sizeof(float));
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
