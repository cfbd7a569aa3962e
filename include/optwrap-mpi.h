/* optwrap-mpi.h -- data-parallel training over MPI (liboptwrap_mpi, pkg-config
 * optwrap-mpi). Experimental. Every rank builds its wrapper from the same config and
 * model, binds its buffers, then hands it the communicator:
 *
 *     MPI_Init(&argc, &argv);
 *     ow_optim_wrapper_new(cfg, model, &loop, &w, &err);
 *     if (ow_optim_wrapper_set_comm(w, MPI_COMM_WORLD, &err) != OW_OK) ...
 *     per micro-batch: gradients of this rank's part of the batch, then
 *     ow_optim_wrapper_update(w, &info, &err): averaged over the ranks at a window's end
 *
 * The wrapper keeps a duplicate of comm (freed with the wrapper, which must happen
 * before MPI_Finalize). See optwrap-dist.h for what the wrapper does with it. */
#ifndef OPTWRAP_MPI_H
#define OPTWRAP_MPI_H

#include <mpi.h>
#include <optwrap-dist.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ow_optim_wrapper_set_dist over a duplicate of comm. Collective over comm. */
OW_API int ow_optim_wrapper_set_comm(ow_optim_wrapper *w, MPI_Comm comm, ow_error *err);

#ifdef __cplusplus
}
#endif

#endif /* OPTWRAP_MPI_H */
