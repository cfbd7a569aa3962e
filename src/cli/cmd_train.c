/* cmd_train.c -- `optwrap train`: the bundled example trainer (examples/digits/), an MLP
 * on the UCI handwritten digits whose optimizer, schedule and checkpoints come from the
 * config, run with mmengine's work-dir and resume conventions; data-parallel when
 * started by mpirun (built with MPI: each rank trains on its part of every batch). */
#include "../../examples/digits/trainer.h"
#include "cli.h"

#include <stdlib.h>
#ifdef OW_WITH_MPI
#include <optwrap-mpi.h>
#endif

static const cli_option train_options[] = {
    {"--cfg-options", 2, "override config keys: a.b.c=VALUE (YAML value)"},
    {"--data", 1, "the digits CSV (.gz); default $OW_DIGITS_DATA or the bundled copy"},
    {"--quiet", 0, "print only the final line"},
    {"--resume", 0, "continue from WORK_DIR/last_checkpoint when there is one"},
    {"--stop-after", 1, "stop after this epoch, as if interrupted (to try --resume)"},
    {"--work-dir", 1, "checkpoints go here (default work_dirs/<config name>)"},
};

#ifdef OW_WITH_MPI
/* Started by mpirun (Open MPI's or a PMI launcher's variables): data-parallel. */
static bool under_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

static int attach(void *user, ow_optim_wrapper *w, ow_error *err)
{
    (void)user;
    return ow_optim_wrapper_set_comm(w, MPI_COMM_WORLD, err);
}

/* digits_train over MPI_COMM_WORLD; without mpirun, one process. */
static int train(const digits_options *o)
{
    if (!under_mpirun())
        return digits_train(o, NULL);
    digits_parallel par = {.attach = attach};
    digits_options po = *o;
    MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &par.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &par.size);
    po.parallel = &par;
    int rc = digits_train(&po, NULL);
    MPI_Finalize();
    return rc;
}
#else
static int train(const digits_options *o)
{
    return digits_train(o, NULL);
}
#endif

int cli_train(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("train");
    size_t n_opts = sizeof train_options / sizeof *train_options;
    cli_args a;
    int st = cli_parse(argc, argv, cmd, train_options, n_opts, &a);
    if (st != CLI_OK)
        return st;
    if (a.help) {
        cli_help(stdout, cmd, train_options, n_opts);
        return CLI_OK;
    }
    const char *stop = cli_value(&a, train_options, n_opts, "--stop-after");
    char *end = NULL;
    long stop_after = stop ? strtol(stop, &end, 10) : 0;
    const char *problem = a.n_positional != 1 ? "expected one CONFIG"
                          : stop && (*end || stop_after < 1 || stop_after > 1 << 20)
                              ? "--stop-after needs a positive number of epochs"
                              : NULL;
    if (problem) {
        fprintf(stderr, "optwrap train: %s\nusage: optwrap %s\n", problem, cmd->usage);
        return CLI_USAGE;
    }
    char work_dir[4096];
    digits_options o = {
        .prog = "optwrap",
        .config = a.positional[0],
        .work_dir = cli_value(&a, train_options, n_opts, "--work-dir"),
        .data = cli_value(&a, train_options, n_opts, "--data"),
        .cfg_options = a.multi,
        .n_cfg_options = a.n_multi,
        .resume = cli_value(&a, train_options, n_opts, "--resume") != NULL,
        .stop_after = (int)stop_after,
        .quiet = cli_value(&a, train_options, n_opts, "--quiet") != NULL,
    };
    if (!o.work_dir) {
        digits_default_work_dir(o.config, work_dir, sizeof work_dir);
        o.work_dir = work_dir;
    }
    return train(&o) ? CLI_ERROR : CLI_OK;
}
