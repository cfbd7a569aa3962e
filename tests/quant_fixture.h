/* quant_fixture.h -- what the quantized-state suites share: a deterministic generator,
 * torch AdamW's float32 element kernel (adam.c's single-tensor loop), and tensors with
 * state of every kind stepped through the block loop (src/optim/qstep.c). */
#ifndef OW_QUANT_FIXTURE_H
#define OW_QUANT_FIXTURE_H

#include "optim/quant.h"

uint64_t rng_next(uint64_t *s);
double rng_uniform(uint64_t *s); /* [0, 1) */
double rng_normal(uint64_t *s);

typedef struct adamw_ctx {
    float keep, b1, omb1, b2, omb2, bc2s, eps, nss;
} adamw_ctx;

/* AdamW's per-step constants as adam.c's prepare computes them. */
adamw_ctx adamw_prepare(double lr, double b1, double b2, double eps, double wd,
                        double step);
/* torch.optim.AdamW's single-tensor step, element by element (slots 0: exp_avg,
 * 1: exp_avg_sq) */
void adamw_kernel(const ow_kernel_args *a);

/* n parameters with gradients from seed, and their moments in every storage. */
typedef struct qstate {
    size_t n;
    float *p, *g, *m, *v, *am1, *am2;
    uint16_t *hm, *hv;
    uint8_t *cm, *cv;
} qstate;
qstate qstate_new(size_t n, uint64_t seed);
void qstate_free(qstate *q);
/* One AdamW step over [lo, hi) of q with state of kind k (fast or plain loop). */
void qstep(qstate *q, ow__qkind k, const adamw_ctx *c, size_t lo, size_t hi, bool ref,
           uint64_t key);

#endif
