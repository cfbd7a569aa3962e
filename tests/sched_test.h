/* sched_test.h -- what the scheduler suites share: a plain target over arrays of
 * values, and loading configs and golden files. */
#ifndef OW_SCHED_TEST_H
#define OW_SCHED_TEST_H

#include "sched/sched_internal.h"
#include "testlib.h"

/* Up to 8 groups of lr, momentum, lr_scale and weight_decay. */
typedef struct plain {
    size_t n;
    double lr[8], momentum[8], lr_scale[8], weight_decay[8];
    bool has_momentum, has_scale, has_base, has_wd;
} plain;

/* A target over p (no base group unless p->has_base). */
ow_sched_target plain_target(plain *p);
/* A config from YAML text (file name "t.yaml"); fails the test on error. */
ow_cfg *sched_load(const char *text);
/* tests/golden/sched/<rel>. */
ow_cfg *sched_golden(const char *rel);

#endif
