/* optwrap-dist.h -- data-parallel training: the collective operations an optim wrapper
 * needs from a transport, and what a data-parallel wrapper reports. Experimental.
 *
 * A host that trains on several processes (ranks) hands every rank's wrapper the same
 * transport (MPI: optwrap-mpi.h does it, ow_optim_wrapper_set_comm). The wrapper then
 * averages the gradients at the end of each accumulation window, as torch's
 * DistributedDataParallel does, and with `zero_stage: 1 | 2` (or mmengine's
 * ZeroRedundancyOptimizer) each rank keeps and steps only its shard of the optimizer
 * state. Sums across ranks are taken in rank order in optwrap itself, never by the
 * transport's reduction, so a run is reproducible and the stages give bit-identical
 * parameters. This header has no MPI dependency: liboptwrap carries every part of it
 * but the transport. */
#ifndef OPTWRAP_DIST_H
#define OPTWRAP_DIST_H

#include <optwrap.h>

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A transport: byte-wise collectives over `size` ranks, each a call every rank makes
 * (collective), returning 0 or a nonzero code of the transport. */
typedef struct ow_dist {
    int rank, size;
    void *ctx;
    /* Every rank's n bytes at send, concatenated: rank r's counts[r] bytes land at
     * recv + displs[r] on every rank. */
    int (*allgatherv)(void *ctx, const void *send, size_t n, void *recv,
                      const size_t *counts, const size_t *displs);
    /* This rank's scounts[q] bytes at send + sdispls[q] go to rank q, which receives
     * them at recv + rdispls[this rank] (rcounts[r] bytes from rank r). */
    int (*alltoallv)(void *ctx, const void *send, const size_t *scounts,
                     const size_t *sdispls, void *recv, const size_t *rcounts,
                     const size_t *rdispls);
    /* called once when the wrapper is freed (NULL: nothing to release) */
    void (*free)(void *ctx);
} ow_dist;

/* Makes w a data-parallel wrapper over dist (copied; its ctx is the wrapper's from now
 * on, released with dist->free even on failure). Collective: every rank calls it with
 * the wrapper built from the same config and model, after binding the model's buffers
 * and before the first update. The ranks check that they agree on the config, the model
 * and the group layout (an error names the first rank that differs and what differs,
 * on every rank, instead of a hang); one rank runs the plain wrapper. Under zero_stage
 * 1 or 2 the optimizer must update element by element (optimizers that read whole-tensor
 * norms or shapes are refused, naming the optimizer). Not for an OptimWrapperDict or a
 * wrapper around a host-built optimizer (ow_optim_wrapper_wrap). */
OW_API int ow_optim_wrapper_set_dist(ow_optim_wrapper *w, const ow_dist *dist,
                                     ow_error *err);

typedef struct ow_dist_stats {
    int rank, size;
    int zero_stage;           /* 0: plain data-parallel (every rank steps everything) */
    int64_t numel;            /* trainable elements of the model */
    int64_t shard_begin;      /* this rank's shard of them, [begin, end) in the order */
    int64_t shard_end;        /*   of the optimizer's tensors (param groups' order) */
    uint64_t bytes_sent;      /* by this rank since set_dist (gradients, parameters,
                                 the norm's partial sums, agreement) */
    uint64_t last_bytes_sent; /* since the last window's end began */
    size_t state_bytes;       /* the optimizer state this rank holds */
} ow_dist_stats;

/* What the data-parallel wrapper w does and has sent. A wrapper without a transport (or
 * on one rank) reports size 1, its whole model as its shard (numel counts the tensors
 * of the last window's end) and its state; OW_ERR_MISUSE for an OptimWrapperDict. */
OW_API int ow_optim_wrapper_get_dist_stats(const ow_optim_wrapper *w, ow_dist_stats *out,
                                           ow_error *err);

#ifdef __cplusplus
}
#endif

#endif /* OPTWRAP_DIST_H */
