/* dist_internal.h -- the data-parallel part of an optim wrapper (src/dist/): the flat
 * order of the trainable elements, this rank's shard of it and the optimizer over that
 * shard, and the buffers the window end moves gradients and parameters through. */
#ifndef OW_DIST_INTERNAL_H
#define OW_DIST_INTERNAL_H

#include "../wrapper/wrapper_internal.h"

#include <optwrap-dist.h>

/* A trainable tensor, in the optimizer's order (the order of w->grads). */
typedef struct ow__dist_tensor {
    size_t param;       /* model occurrence */
    size_t tensor;      /* the model's distinct tensor */
    size_t group;       /* its param group */
    size_t numel, flat; /* its first element's place in the flat order */
    size_t unit;        /* its first scan unit */
    float *p, *g;       /* the host's buffers */
} ow__dist_tensor;

/* A piece of a tensor in this rank's shard: elements [off, off + len). */
typedef struct ow__dist_piece {
    size_t tensor, off, len;
} ow__dist_piece;

/* A scan unit (wrapper_internal.h): elements [off, off + len) of a tensor. */
typedef struct ow__dist_unit {
    size_t tensor, off, len;
} ow__dist_unit;

struct ow__dist {
    ow_dist d;
    int stage;
    ow__dist_tensor *t;
    size_t nt, total;
    size_t *full;        /* [nt] each tensor's index in the wrapper's (full) optimizer */
    ow__dist_unit *unit; /* [nunits] in flat order */
    size_t nunits;
    size_t *cut;    /* [size + 1] the shards' bounds in the flat order, at unit starts */
    size_t *ufirst; /* [size + 1] the shards' first units */
    ow__dist_piece *piece; /* [npieces] this rank's shard */
    ow__grad *pgrad;       /* [npieces] the pieces' gradients */
    size_t npieces;
    ow_model *smodel; /* the shard as a model of its pieces (stages 1 and 2) */
    ow_groups *sgroups;
    ow_optimizer *sopt;
    float *send, *recv; /* [total], [max(total, size x largest shard)] */
    double *parts;      /* [2 x nunits] the scan's parts: acc, bad */
    double *mine;       /* [2 x nunits] this rank's parts, to send */
    size_t *c[6];       /* [size] byte counts and displacements */
    uint64_t bytes, last_bytes;
    bool streamed;         /* a checkpoint's state is being streamed (state.c) */
    size_t next_i, next_s; /* the next state tensor to stream */
    unsigned long gen;     /* the model generation the pointers were read at */
};

/* dist.c */
void ow__dist_free(ow__dist *d);
/* Every rank's status `rc` (this rank's message in err when nonzero): OW_OK when all
 * are OW_OK, else an error on every rank naming the first failing rank. */
int ow__dist_agree(ow__dist *d, int rc, const char *what, ow_error *err);
/* Whether ZeRO can step opt's groups as they are now for the next `rounds` steps:
 * element-wise passes only (a schedule may change the hyperparameters that select
 * passes, so every step asks again). */
int ow__dist_check_elementwise(const ow_optimizer *opt, int rounds, ow_error *err);
/* The host's current pointers (it may rebind buffers between updates). */
int ow__dist_refresh(ow_optim_wrapper *w, ow_error *err);

/* step.c: the window end's parts (wrapper.c) */
int ow__dist_reduce(ow_optim_wrapper *w, ow_error *err);
int ow__dist_scan(ow_optim_wrapper *w, float inv, double p, float *norm, bool *bad,
                  ow_error *err);
void ow__dist_grads(const ow_optim_wrapper *w, const ow__grad **g, size_t *n);
int ow__dist_step(ow_optim_wrapper *w, ow_error *err);
/* state.c: checkpoints (checkpoint.c). gather: collective; under ZeRO rank 0's full
 * optimizer then holds every shard's state (release drops it again). reserve: state
 * for every piece before a load (unreserve: undo when the load fails); scatter: after
 * the file's state went into the full optimizer, each piece takes its slice. */
int ow__dist_state_gather(ow_optim_wrapper *w, ow_error *err);
/* rank 0, after building the checkpoint: its state tensors stream from the ranks (the
 * builder's fills); serve, on every rank after the save: the entries not yet sent
 * (all of them but on rank 0), so that the collectives match whatever rank 0 wrote. */
struct ow__st_builder;
int ow__dist_state_fills(ow_optim_wrapper *w, struct ow__st_builder *b,
                         const char *prefix, ow_error *err);
void ow__dist_state_serve(ow_optim_wrapper *w);
void ow__dist_state_release(ow_optim_wrapper *w);
int ow__dist_state_reserve(ow_optim_wrapper *w, ow_error *err);
void ow__dist_state_unreserve(ow_optim_wrapper *w);
void ow__dist_state_scatter(ow_optim_wrapper *w);

/* Inside a window, before a save: the ranks' gradient sums so far, added in rank order,
 * gathered on rank 0 (collective); window_grad: a tensor's (rank 0; NULL for a tensor
 * the wrapper does not train). A resumed run continues them on rank 0 (the others
 * start from zero): the same sums, up to the rounding of the average. */
int ow__dist_window_sums(ow_optim_wrapper *w, ow_error *err);
const float *ow__dist_window_grad(const ow_optim_wrapper *w, size_t tensor);

#endif
