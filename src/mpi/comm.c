/* comm.c -- liboptwrap_mpi: the ow_dist transport over an MPI communicator. Only byte
 * moves (MPI_Allgatherv, MPI_Alltoallv of MPI_BYTE): every sum is optwrap's own, in
 * rank order, so no result depends on MPI's reduction algorithms. */
#include <optwrap-mpi.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct comm_ctx {
    MPI_Comm comm;
    int size;
    int *a, *b, *c, *d; /* [size] int counts and displacements */
} comm_ctx;

/* MPI counts are ints: a transfer past INT_MAX bytes is refused (MPI_ERR_COUNT). */
static int to_int(const size_t *in, int *out, int n)
{
    for (int i = 0; i < n; i++) {
        if (in[i] > INT_MAX)
            return MPI_ERR_COUNT;
        out[i] = (int)in[i];
    }
    return MPI_SUCCESS;
}

static int allgatherv(void *ctx, const void *send, size_t n, void *recv,
                      const size_t *counts, const size_t *displs)
{
    comm_ctx *c = ctx;
    int rc = n > INT_MAX ? MPI_ERR_COUNT : to_int(counts, c->a, c->size);
    if (rc == MPI_SUCCESS)
        rc = to_int(displs, c->b, c->size);
    if (rc == MPI_SUCCESS)
        rc = MPI_Allgatherv(send, (int)n, MPI_BYTE, recv, c->a, c->b, MPI_BYTE, c->comm);
    return rc;
}

static int alltoallv(void *ctx, const void *send, const size_t *scounts,
                     const size_t *sdispls, void *recv, const size_t *rcounts,
                     const size_t *rdispls)
{
    comm_ctx *c = ctx;
    int rc = to_int(scounts, c->a, c->size);
    if (rc == MPI_SUCCESS)
        rc = to_int(sdispls, c->b, c->size);
    if (rc == MPI_SUCCESS)
        rc = to_int(rcounts, c->c, c->size);
    if (rc == MPI_SUCCESS)
        rc = to_int(rdispls, c->d, c->size);
    if (rc == MPI_SUCCESS)
        rc = MPI_Alltoallv(send, c->a, c->b, MPI_BYTE, recv, c->c, c->d, MPI_BYTE,
                           c->comm);
    return rc;
}

static void ctx_free(void *ctx)
{
    comm_ctx *c = ctx;
    if (!c)
        return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && c->comm != MPI_COMM_NULL)
        MPI_Comm_free(&c->comm);
    free(c->a);
    free(c->b);
    free(c->c);
    free(c->d);
    free(c);
}

static int fail(ow_error *err, int code, const char *what, int mpi_rc)
{
    if (err) {
        char text[MPI_MAX_ERROR_STRING] = "";
        int len = 0;
        if (mpi_rc != MPI_SUCCESS)
            MPI_Error_string(mpi_rc, text, &len);
        err->code = code;
        err->line = err->column = 0;
        err->file[0] = '\0';
        snprintf(err->message, sizeof err->message, "ow_optim_wrapper_set_comm: %s%s%s",
                 what, len ? ": " : "", text);
    }
    return code;
}

int ow_optim_wrapper_set_comm(ow_optim_wrapper *w, MPI_Comm comm, ow_error *err)
{
    if (err)
        ow_error_clear(err);
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!w || !initialized || comm == MPI_COMM_NULL)
        return fail(err, OW_ERR_MISUSE,
                    "needs a wrapper and a communicator, after MPI_Init", MPI_SUCCESS);
    comm_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return fail(err, OW_ERR_NOMEM, "out of memory", MPI_SUCCESS);
    c->comm = MPI_COMM_NULL;
    int rank = 0, rc = MPI_Comm_dup(comm, &c->comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_size(c->comm, &c->size);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(c->comm, &rank);
    if (rc != MPI_SUCCESS) {
        ctx_free(c);
        return fail(err, OW_ERR_IO, "MPI failed", rc);
    }
    size_t n = (size_t)c->size;
    c->a = calloc(n, sizeof *c->a);
    c->b = calloc(n, sizeof *c->b);
    c->c = calloc(n, sizeof *c->c);
    c->d = calloc(n, sizeof *c->d);
    if (!c->a || !c->b || !c->c || !c->d) {
        ctx_free(c);
        return fail(err, OW_ERR_NOMEM, "out of memory", MPI_SUCCESS);
    }
    ow_dist d = {.rank = rank,
                 .size = c->size,
                 .ctx = c,
                 .allgatherv = allgatherv,
                 .alltoallv = alltoallv,
                 .free = ctx_free};
    return ow_optim_wrapper_set_dist(w, &d, err);
}
