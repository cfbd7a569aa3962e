/* step.c -- a data-parallel window end (wrapper.c calls these in order): gradients
 * averaged across the ranks as DistributedDataParallel does (each rank's sums divided
 * by the rank count, then added in rank order: an all-to-all moves each shard's pieces
 * to its owner, which sums them; stages 0 and 1 then gather the sums everywhere); the
 * inf/nan check and clip norm from the same partial sums one process takes; the step
 * (every tensor, or this rank's shard); under ZeRO the updated shards gathered so that
 * every rank holds every parameter. */
#include "../optim/optim_internal.h"
#include "dist_internal.h"

#include <string.h>

/* counts and displacements of the shards, in bytes of elem */
static void shard_counts(ow__dist *d, size_t *count, size_t *displ, size_t elem)
{
    for (int r = 0; r < d->d.size; r++) {
        count[r] = (d->cut[r + 1] - d->cut[r]) * elem;
        displ[r] = d->cut[r] * elem;
    }
}

static int transport(ow__dist *d, int t, const char *what, ow_error *err)
{
    return t ? ow__error(err, OW_ERR_IO, NULL, 0, 0,
                         "rank %d: the transport failed (code %d) while %s", d->d.rank, t,
                         what)
             : OW_OK;
}

int ow__dist_reduce(ow_optim_wrapper *w, ow_error *err)
{
    ow__dist *d = w->dist;
    int rc = ow__dist_agree(d, ow__dist_refresh(w, err), "to read its buffers", err);
    if (rc)
        return rc;
    d->last_bytes = d->bytes;
    size_t n = (size_t)d->d.size, me = (size_t)d->d.rank;
    size_t lo = d->cut[me], len = d->cut[me + 1] - lo;
    for (size_t i = 0; i < d->nt; i++)
        memcpy(d->send + d->t[i].flat, d->t[i].g, d->t[i].numel * sizeof(float));
    shard_counts(d, d->c[0], d->c[1], sizeof(float));
    for (size_t r = 0; r < n; r++) {
        d->c[2][r] = len * sizeof(float);
        d->c[3][r] = r * len * sizeof(float);
    }
    int t =
        d->d.alltoallv(d->d.ctx, d->send, d->c[0], d->c[1], d->recv, d->c[2], d->c[3]);
    if ((rc = transport(d, t, "reducing gradients", err)))
        return rc;
    d->bytes += (d->total - len) * sizeof(float);
    /* torch DDP's average: each rank's sum divided by the world size, then added (in
     * rank order here) */
    const float world = (float)n;
    float *out = d->send + lo;
    for (size_t i = 0; i < len; i++) {
        float acc = d->recv[i] / world;
        for (size_t r = 1; r < n; r++)
            acc += d->recv[r * len + i] / world;
        out[i] = acc;
    }
    for (size_t k = 0; k < d->npieces; k++) {
        const ow__dist_piece *pc = &d->piece[k];
        const ow__dist_tensor *tt = &d->t[pc->tensor];
        memcpy(tt->g + pc->off, d->send + tt->flat + pc->off, pc->len * sizeof(float));
    }
    if (d->stage == 2)
        return OW_OK; /* each rank keeps only its shard's sums */
    t = d->d.allgatherv(d->d.ctx, out, len * sizeof(float), d->recv, d->c[0], d->c[1]);
    if ((rc = transport(d, t, "gathering gradients", err)))
        return rc;
    d->bytes += len * sizeof(float) * (n - 1);
    for (size_t i = 0; i < d->nt; i++)
        memcpy(d->t[i].g, d->recv + d->t[i].flat, d->t[i].numel * sizeof(float));
    return OW_OK;
}

int ow__dist_scan(ow_optim_wrapper *w, float inv, double p, float *norm, bool *bad,
                  ow_error *err)
{
    ow__dist *d = w->dist;
    if (d->stage < 2) { /* every rank holds the same sums */
        *bad = ow__grads_scan(w->grads, w->ngrads, inv, p, norm, NULL);
        return OW_OK;
    }
    size_t me = (size_t)d->d.rank, u0 = d->ufirst[me], u1 = d->ufirst[me + 1];
    /* this rank's units' parts as (acc, bad) pairs of doubles: no padding travels */
    double *mine = d->mine;
    for (size_t u = u0; u < u1; u++) {
        const ow__dist_unit *un = &d->unit[u];
        ow__scan_part s = ow__grads_scan_unit(d->t[un->tensor].g + un->off, un->len, inv,
                                              p, norm != NULL);
        mine[2 * (u - u0)] = s.acc;
        mine[2 * (u - u0) + 1] = s.bad;
    }
    for (int r = 0; r < d->d.size; r++) {
        d->c[0][r] = (d->ufirst[r + 1] - d->ufirst[r]) * 2 * sizeof(double);
        d->c[1][r] = d->ufirst[r] * 2 * sizeof(double);
    }
    int t = d->d.allgatherv(d->d.ctx, mine, (u1 - u0) * 2 * sizeof(double), d->parts,
                            d->c[0], d->c[1]);
    int rc = transport(d, t, "gathering the gradients' norms", err);
    if (rc)
        return rc;
    d->bytes += (u1 - u0) * 2 * sizeof(double) * (size_t)(d->d.size - 1);
    /* every rank folds every part in the order one process does */
    ow__scan_total total = {false, 0};
    for (size_t i = 0; i < d->nt; i++) {
        size_t last = i + 1 < d->nt ? d->t[i + 1].unit : d->nunits;
        ow__scan_part acc = {false, 0};
        for (size_t u = d->t[i].unit; u < last; u++)
            acc = ow__grads_scan_combine(
                acc, (ow__scan_part){d->parts[2 * u + 1] != 0, d->parts[2 * u]}, p);
        ow__grads_scan_add(&total, acc, p, norm != NULL);
    }
    *bad = ow__grads_scan_end(&total, p, norm);
    return OW_OK;
}

void ow__dist_grads(const ow_optim_wrapper *w, const ow__grad **g, size_t *n)
{
    const ow__dist *d = w->dist;
    if (d->stage == 0) {
        *g = w->grads;
        *n = w->ngrads;
        return;
    }
    for (size_t k = 0; k < d->npieces; k++) {
        const ow__dist_piece *pc = &d->piece[k];
        d->pgrad[k] = (ow__grad){d->t[pc->tensor].g + pc->off, pc->len, OW_GRAD_F32};
    }
    *g = d->pgrad;
    *n = d->npieces;
}

int ow__dist_step(ow_optim_wrapper *w, ow_error *err)
{
    ow__dist *d = w->dist;
    int rc = OW_OK;
    if (d->stage == 0) {
        rc = ow_optimizer_step(w->opt, err);
    } else {
        /* the schedule sets the full optimizer's options: the shard's follow them */
        size_t ng = ow_optimizer_get_num_groups(w->opt);
        for (size_t gi = 0; gi < ng && rc == OW_OK; gi++) {
            ow_cfg *o = ow__cfg_dup(ow_optimizer_get_options(w->opt, gi));
            rc = o ? ow__optimizer_set_group(d->sopt, gi, o, err) : ow__nomem(err);
        }
        if (rc == OW_OK) /* the passes the step to come selects: element-wise only */
            rc = ow__dist_check_elementwise(d->sopt, 1, err);
        if (rc == OW_OK)
            rc = ow_optimizer_step(d->sopt, err);
    }
    if ((rc = ow__dist_agree(d, rc, "its optimizer step", err)) || d->stage == 0)
        return rc;
    size_t me = (size_t)d->d.rank, lo = d->cut[me], len = d->cut[me + 1] - lo;
    for (size_t k = 0; k < d->npieces; k++) {
        const ow__dist_piece *pc = &d->piece[k];
        const ow__dist_tensor *t = &d->t[pc->tensor];
        memcpy(d->send + t->flat + pc->off, t->p + pc->off, pc->len * sizeof(float));
    }
    shard_counts(d, d->c[0], d->c[1], sizeof(float));
    int t = d->d.allgatherv(d->d.ctx, d->send + lo, len * sizeof(float), d->recv, d->c[0],
                            d->c[1]);
    if ((rc = transport(d, t, "gathering parameters", err)))
        return rc;
    d->bytes += len * sizeof(float) * (size_t)(d->d.size - 1);
    for (size_t i = 0; i < d->nt; i++)
        memcpy(d->t[i].p, d->recv + d->t[i].flat, d->t[i].numel * sizeof(float));
    return OW_OK;
}
