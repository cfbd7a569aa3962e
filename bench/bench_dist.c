/* bench_dist.c -- data-parallel AdamW on ViT-B/16 (86,567,656 floats) over MPI: for
 * zero_stage 0 (plain data-parallel), 1 and 2, the window end's time (the slowest
 * rank's, median of interleaved runs), the bytes each rank sends per step and the
 * optimizer state each rank holds. Run under mpirun at 1, 2 and 4 ranks (make
 * bench-mpi): the state per rank falls as 1 / ranks under ZeRO. Figures only.
 *     mpirun -np N bench/bench_dist [--arch NAME] [-r REPEATS] */
#include <optwrap-mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *arch = "vit-base-p16";
    int reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--arch"))
            arch = argv[i + 1];
        else if (!strcmp(argv[i], "-r"))
            reps = (int)strtol(argv[i + 1], NULL, 10);
    }
    reps = reps < 1 ? 1 : reps > 50 ? 50 : reps;
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    if (ow_model_new_arch(arch, &m, &err)) {
        fprintf(stderr, "bench_dist: %s\n", err.message);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    size_t n = (size_t)ow_model_get_numel(m);
    float *d = malloc(n * sizeof *d), *g = malloc(n * sizeof *g);
    if (!d || !g)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (size_t i = 0; i < n; i++)
        d[i] = 0.01f * (float)(i % 97);
    ow_model_set_buffers(m, d, g, n, &err);
    if (rank == 0)
        printf("%s, %zu floats, AdamW with clip_grad norm, %d rank%s; medians of %d\n"
               "zero_stage  step ms (slowest rank)  MB sent/step/rank  state MB/rank\n",
               arch, n, size, size > 1 ? "s" : "", reps);
    for (int stage = 0; stage <= 2; stage++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml,
                 "optim_wrapper:\n  optimizer: {type: AdamW, lr: 0.001, weight_decay: "
                 "0.05}\n  clip_grad: {max_norm: 1.0}\n  zero_stage: %d\n",
                 stage);
        ow_cfg *cfg = NULL;
        ow_optim_wrapper *w = NULL;
        int rc = ow_cfg_load_string(yaml, "bench.yaml", &cfg, &err);
        if (rc == OW_OK)
            rc = ow_optim_wrapper_new(cfg, m, NULL, &w, &err);
        if (rc == OW_OK)
            rc = ow_optim_wrapper_set_comm(w, MPI_COMM_WORLD, &err);
        ow_cfg_free(cfg);
        if (rc) {
            fprintf(stderr, "bench_dist: rank %d: %s\n", rank, err.message);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        double t[50] = {0};
        for (int r = -1; r < reps; r++) { /* the first creates the state: untimed */
            for (size_t i = 0; i < n; i++)
                g[i] = 0.001f * (float)((i + (size_t)rank) % 89);
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            if (ow_optim_wrapper_update(w, NULL, &err)) {
                fprintf(stderr, "bench_dist: rank %d: %s\n", rank, err.message);
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            double dt = MPI_Wtime() - t0, slowest = dt;
            MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (r >= 0)
                t[r] = slowest;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp);
        ow_dist_stats st;
        ow_optim_wrapper_get_dist_stats(w, &st, &err);
        double sent = (double)st.last_bytes_sent, state = (double)st.state_bytes,
               most = 0, big = 0;
        MPI_Allreduce(&sent, &most, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        MPI_Allreduce(&state, &big, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (rank == 0)
            printf("%10d  %22.1f  %17.1f  %13.1f\n", stage, 1e3 * t[reps / 2], most / 1e6,
                   big / 1e6);
        ow_optim_wrapper_free(w);
    }
    ow_model_free(m);
    free(d);
    free(g);
    MPI_Finalize();
    return 0;
}
