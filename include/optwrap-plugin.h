/* optwrap-plugin.h -- writing an optimizer: the interface between optwrap's step engine
 * and an optimizer's kernels, for optimizers built into liboptwrap and for plugins.
 *
 * EXPERIMENTAL: this interface may change between minor versions; an entry built
 * against another OW_ABI_VERSION is refused at registration. optwrap.h is the stable
 * user API and does not include this file.
 *
 * An optimizer entry (kind OW_KIND_OPTIMIZER) points its `ops` at an ow_optimizer_ops.
 * Its keys are validated centrally; the engine resolves each group's values, hands them
 * to the hooks in the order of `ops->params` (by name: a variant that lacks a key gets
 * it marked absent), calls `prepare` once per group and step to turn them into per-step
 * constants (in double, as the references compute them in Python), then steps every
 * tensor either through the element passes (all tensors as one multi-tensor range, per
 * tensor sums reaching `finish` hooks between passes: Lamb, Lars) or through
 * `tensor_step`, one tensor at a time with its shape (Adafactor, Muon's 2-D weights);
 * `per_tensor` lets one optimizer mix both. */
#ifndef OPTWRAP_PLUGIN_H
#define OPTWRAP_PLUGIN_H

#include "optwrap.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Numbers in one hyperparameter (Adan's three betas). */
#define OW_MAX_VALUES 4
/* Element passes of one step (rows of ops->passes before its empty row). */
#define OW_MAX_PASSES 8
/* Per-tensor sums one pass accumulates. */
#define OW_MAX_SUMS 4
/* Per-tensor values that finish hooks hand to later passes. */
#define OW_MAX_TENSOR_SCALARS 8
/* Bytes of per-step constants. */
#define OW_MAX_CTX 256
/* Hyperparameters one optimizer reads (ops->params). */
#define OW_MAX_PARAMS 48

/* One hyperparameter of a group, resolved from its config value. */
typedef struct ow_hparam {
    double v[OW_MAX_VALUES]; /* the number, or the numbers of a list; bools are 0 or 1 */
    int n;                   /* how many numbers: 1 for a scalar, the list's length */
    bool is_null;            /* the value is null (Adafactor's `lr: null`) */
    const char *s;           /* a string value (borrowed), else NULL */
    bool absent;       /* the entry has no key of this name (a variant without it) */
    const ow_cfg *cfg; /* the value as configured (lists of maps), or NULL */
} ow_hparam;

typedef enum ow_dtype {
    OW_DTYPE_F32,  /* torch.float32 (tensors; 0-d tensors such as Adam's `step`) */
    OW_DTYPE_F64,  /* a Python float (scalar slots) */
    OW_DTYPE_I64,  /* a Python int (SGD-family `step` counters; scalar slots) */
    OW_DTYPE_BF16, /* bfloat16 tensor slot, uint16_t storage */
    OW_DTYPE_U8    /* uint8 tensor slot (quantized codes) */
} ow_dtype;

#define OW_SLOT_SCALAR     0x1u /* one value per parameter (`step`, `mu_product`) */
#define OW_SLOT_FROM_PARAM 0x2u /* created as a copy of the parameter (MADGRAD's x0) */
#define OW_SLOT_FROM_GRAD  0x4u /* created as a copy of the first step's gradient */
/* a scalar counter (`step`): a state file's value must be a whole number from 0 to
 * 2^53, or the load is refused */
#define OW_SLOT_COUNT 0x8u

/* A state slot: torch's key, and what it holds. Tensor slots have the parameter's shape
 * unless ops->slot_shape says otherwise, and the dtype ops->slot_dtype gives (default:
 * .dtype). A list of tensors (Kron's Q) is several slots "Q.0", "Q.1", ... */
typedef struct ow_slot {
    const char *name;
    unsigned flags; /* OW_SLOT_* */
    ow_dtype dtype; /* scalars: how torch stores the value (saved that way) */
    float init;     /* the initial value (of every element; RMSpropTF's square_avg: 1) */
} ow_slot;

/* What prepare gets and gives, once per group and step. */
typedef struct ow_prepare_args {
    const ow_hparam *hp; /* [params] the group's hyperparameters */
    const ow_hparam
        *defaults;     /* [params] optimizer-level values (timm's defaults['lr']) */
    double lr;         /* this step's lr: hp lr (times lr_scale, timm groups) */
    double initial_lr; /* the group's lr when the optimizer was made (composer) */
    double *scalars;   /* [slots] a tensor's scalar slots, in/out (step += 1) */
    void *ctx;         /* out: ctx_size bytes of constants for the kernels */
    unsigned passes;   /* out: bit k set = pass k runs for the group (preset: all) */
    void *shared;      /* OW_MAX_CTX bytes per optimizer, zero at first, kept across
                          groups and steps (caches the references share between
                          groups, such as RAdamLegacy's `buffer`); not saved */
} ow_prepare_args;

/* What an element kernel gets: a contiguous range of one tensor or, for a pass without
 * per-tensor sums, a batch of consecutive tiny tensors of one group that share every
 * per-step constant (copied into one buffer): kernels work element by element. */
typedef struct ow_kernel_args {
    size_t n;        /* elements */
    float *p;        /* [n] parameters */
    const float *g;  /* [n] gradients */
    float *const *s; /* [slots] parameter-shaped float32 slots at this range, else NULL */
    const void *ctx; /* the group's constants from prepare */
    const double *t; /* [OW_MAX_TENSOR_SCALARS] the tensor's values from finish */
    double *sums;    /* [pass nsums] add this range's sums here */
    size_t off;      /* the range's first element in its tensor (0 in a gathered batch) */
    void *const *full; /* [slots] every slot's storage from its start, any shape or
                          dtype (absmax per block of 8-bit state), NULL where absent;
                          NULL for a gathered batch (only tensors whose slots are all
                          float32 and parameter-shaped are gathered) */
} ow_kernel_args;
typedef void (*ow_kernel_fn)(const ow_kernel_args *a);

/* After a pass, per tensor: its sums (and their totals over all tensors of the pass, for
 * global norms) become values for later passes, or update the tensor's scalar state. */
typedef struct ow_finish_args {
    const void *ctx;
    const double *sums;   /* [nsums] this tensor's */
    const double *totals; /* [nsums] over every tensor in the pass */
    size_t numel;
    double *t;       /* [OW_MAX_TENSOR_SCALARS] in/out */
    double *scalars; /* [slots] the tensor's scalar slots: persistent (NovoGrad's
                        per-layer second moment) */
} ow_finish_args;

/* One element pass; ops->passes is a table of them ended by a row with run NULL. */
typedef struct ow_pass {
    ow_kernel_fn run; /* the fast kernel (SIMD, restrict) */
    ow_kernel_fn ref; /* its plain scalar twin: the same results, checked by the tests */
    int nsums;        /* per-tensor sums it accumulates, 0..OW_MAX_SUMS */
    void (*finish)(const ow_finish_args *f); /* optional */
} ow_pass;

/* What a per-tensor step gets. */
typedef struct ow_tensor_args {
    int ndim;
    const int64_t *shape;
    size_t numel;
    float *p;
    const float *g;
    float *const *s; /* [slots] every tensor slot in its own shape, NULL where absent; a
                        slot of another dtype points at its storage (uint16_t for BF16,
                        uint8_t for U8): cast it */
    double *scalars; /* [slots] in/out */
    const void *ctx;
    void *scratch;    /* ops->scratch_bytes for this tensor, 64-byte aligned, or NULL */
    int threads;      /* threads its element-wise loops may use (reductions stay serial so
                         that results do not depend on it) */
    bool ref;         /* use plain loops only (tests) */
    size_t param;     /* the tensor's index in param_groups order */
    const float *z;   /* OW_NEEDS_HVP: the Rademacher vector of this step, [numel] */
    const float *hvp; /* OW_NEEDS_HVP: H z for this tensor, [numel] */
    /* OW_NEEDS_RNG: n draws of kind for this tensor, in the order asked */
    void (*rand)(const struct ow_tensor_args *a, ow_rng_kind kind, float *out, size_t n);
    /* OW_NEEDS_RNG: one uniform draw of the optimizer's own generator (python's
     * random.random() of timm's Kron) */
    double (*rand_scalar)(const struct ow_tensor_args *a);
    void *engine; /* for rand and rand_scalar */
} ow_tensor_args;

/* ops->needs: draws random numbers (tensor_step: a->rand); reads Hessian-vector
 * products (tensor_step: a->z, a->hvp). */
#define OW_NEEDS_RNG 0x1u
#define OW_NEEDS_HVP 0x2u

typedef struct ow_optimizer_ops {
    int abi_version;           /* OW_ABI_VERSION */
    const ow_slot *slots;      /* state slots, ended by a row with name NULL */
    const char *const *params; /* the hyperparameters the hooks read, NULL-terminated:
                                  hook argument hp[i] is the key named params[i] */
    size_t ctx_size;           /* bytes prepare writes, <= OW_MAX_CTX */
    /* optional: the reference's checks across keys ("Nesterov momentum requires a
     * momentum and zero dampening"); returns false and writes msg to reject a group */
    bool (*check)(const ow_hparam *hp, char *msg, size_t n);
    void (*prepare)(ow_prepare_args *a);
    /* optional: a slot's shape for a parameter of this shape (writes out, returns its
     * ndim), or -1 when the parameter has no such slot; NULL: all slots, param-shaped */
    int (*slot_shape)(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out);
    const ow_pass *passes; /* element passes in order, ended by {0}; or NULL */
    /* optional: steps one tensor at a time (after prepare), and its plain twin (NULL:
     * tensor_step itself, told a->ref) */
    void (*tensor_step)(const ow_tensor_args *a);
    void (*tensor_ref)(const ow_tensor_args *a);
    /* optional, with both passes and tensor_step: whether this tensor takes tensor_step
     * (Muon's 2-D weights) or the passes (its AdamW fallback). NULL: tensor_step where
     * there is one. */
    bool (*per_tensor)(const ow_hparam *hp, int ndim, const int64_t *shape);
    /* optional: bytes of scratch tensor_step needs for this shape (NULL: none) */
    size_t (*scratch_bytes)(const ow_hparam *hp, int ndim, const int64_t *shape);
    unsigned needs; /* OW_NEEDS_* */
    /* optional, with OW_NEEDS_HVP: whether a tensor with these scalar slots (before
     * this step's prepare) reads H z this step (Adahessian's update_each); NULL: every
     * step. Tensors that do not get z = hvp = NULL, and no draws are taken for them. */
    bool (*wants_hvp)(const ow_hparam *hp, const double *scalars);
    /* optional: the storage dtype of tensor slot `slot` for a tensor of numel elements
     * (8-bit state keeps small tensors in float32); NULL: the slot's .dtype */
    ow_dtype (*slot_dtype)(const ow_hparam *hp, int slot, size_t numel);
} ow_optimizer_ops;

#ifdef __cplusplus
}
#endif

#endif /* OPTWRAP_PLUGIN_H */
