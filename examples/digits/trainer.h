/* trainer.h -- the digits example's trainer: a small MLP trained on the UCI handwritten
 * digits, its optimizer, schedule and checkpoints built by optwrap from a YAML config.
 * Used by examples/digits/main.c and by `optwrap train`. */
#ifndef DIGITS_TRAINER_H
#define DIGITS_TRAINER_H

#include <stdbool.h>
#include <stddef.h>

struct ow_optim_wrapper;
struct ow_error;

/* Data-parallel training (NULL: one process): each global batch is split over `size`
 * ranks, this one training on part `rank`; attach hands the wrapper its transport
 * (ow_optim_wrapper_set_comm: the gradients are averaged at each window's end). Only
 * rank 0 prints and writes checkpoints (a save is collective). */
typedef struct digits_parallel {
    int rank, size;
    int (*attach)(void *user, struct ow_optim_wrapper *w, struct ow_error *err);
    void *user;
} digits_parallel;

typedef struct digits_options {
    const char *prog;     /* prefix of error messages ("digits", "optwrap") */
    const char *config;   /* the YAML config (configs/digits_mlp.yaml) */
    const char *work_dir; /* checkpoints and last_checkpoint; created when missing */
    const char *data;     /* digits.csv.gz; NULL: digits_default_data() */
    const char *const *cfg_options; /* [n_cfg_options] "a.b.c=VALUE", applied in order */
    int n_cfg_options;
    bool resume;    /* continue from <work_dir>/last_checkpoint when there is one */
    int stop_after; /* > 0: stop after this epoch, as if interrupted (tests resume) */
    bool quiet;     /* no progress line per epoch, only the final line */
    const digits_parallel *parallel; /* NULL: one process */
} digits_options;

/* Trains as the config says, printing a line per epoch and `final test acc X%`.
 * Returns 0, or 1 after printing the error as "prog: file:line:column: message".
 * *test_acc (may be NULL) gets the final test accuracy in percent. */
int digits_train(const digits_options *o, double *test_acc);

/* The data file when none is given: $OW_DIGITS_DATA, else the installed copy, else the
 * one in the source tree (paths fixed at build time). */
const char *digits_default_data(void);
/* mmengine's default work dir: "work_dirs/<config file name without .yaml>". */
void digits_default_work_dir(const char *config, char *buf, size_t n);

#endif
