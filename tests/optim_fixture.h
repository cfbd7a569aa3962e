/* optim_fixture.h -- a small model of float tensors with deterministic data and
 * gradients, and param groups over it for any optimizer entry, shared by the optimizer
 * suites. */
#ifndef OW_OPTIM_FIXTURE_H
#define OW_OPTIM_FIXTURE_H

#include "testlib.h"

#define FIX_MAX 8

typedef struct fixture {
    ow_model *model;
    ow_groups *groups;
    ow_optimizer *opt;
    size_t n;       /* tensors */
    size_t ngroups; /* tensor i is in group i % ngroups */
    size_t numel[FIX_MAX];
    float *data[FIX_MAX], *grad[FIX_MAX];
} fixture;

/* Tensors of the given shapes (ndim[i] dims from shapes[i]); tensor i goes to group
 * i % ngroups; group g gets the YAML flow map opts[g] ("{lr: 0.1}") over the entry's
 * defaults. seed picks the data. Fails the test on error. */
void fix_make(fixture *f, const char *entry, size_t n, const int *ndim,
              const int64_t (*shapes)[3], size_t ngroups, const char *const *opts,
              unsigned seed);
/* The same groups' tensors with new gradients from seed. */
void fix_grads(fixture *f, unsigned seed);
void fix_free(fixture *f);
/* Copies data (and grads) of a into b (same shapes). */
void fix_copy_data(fixture *b, const fixture *a);
/* Fails at the first element where a's parameters differ from b's: bit for bit (NaN
 * equals NaN) when tol is 0, else by more than tol relative. what names the pair in the
 * message. One assertion for all elements: Check records every assertion it passes. */
void fix_expect_same(const fixture *a, const fixture *b, double tol, const char *what);

#endif
