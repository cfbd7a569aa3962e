/* optim_internal.h -- what the optimizer engine's files share: the layout of an
 * ow_optimizer and its tensors, the multi-tensor pass runner, and the small helpers the
 * optimizer files use (SIMD dispatch, Python float rules, hyperparameter indexing). */
#ifndef OW_OPTIM_INTERNAL_H
#define OW_OPTIM_INTERNAL_H

#include "../internal.h"
#include "optwrap-plugin.h"

#include <math.h>

/* Elements below which a step runs on one thread: a parallel region costs more. */
#define OW__SERIAL_BELOW 65536
/* Elements per work unit: per-tensor sums are kept per unit and added in order, so
 * norms do not depend on the thread count. */
#define OW__UNIT 16384

/* At most this many slots per optimizer. */
#define OW__MAX_SLOTS 16

/* One distinct parameter tensor of the optimizer, in param_groups order. The fields a
 * step reads for every tensor come first, in two cache lines: on 1,000 tiny tensors
 * the step is bound by the lines it touches. */
typedef struct ow__tensor {
    size_t group; /* optimizer group */
    size_t numel;
    size_t ctx; /* per step: index of its prepared constants */
    float *p;   /* per step */
    const float *g;
    float **slot;    /* [slots] tensor storage, NULL where absent / scalar */
    double *scalar;  /* [slots] scalar slot values */
    unsigned kslots; /* bit k: slot k is parameter-shaped (set with the active list) */
    bool has_state;  /* state created (first step with a gradient) */
    bool all_f32;    /* every tensor slot is float32 and parameter-shaped (gatherable) */
    bool fresh;      /* state created by the step in progress */
    double t[OW_MAX_TENSOR_SCALARS]; /* finish-hook values of the current step */
    bool per_tensor;                 /* steps through tensor_step, not the passes */
    bool wants_hvp;                  /* OW_NEEDS_HVP: reads H z this step */
    bool la_valid;                   /* Lookahead: the slow buffer holds slow weights */
    unsigned char gdt; /* ow_grad_dtype of g (per step): half gradients are read through
                          float32 buffers (kernels.c), per unit or per tensor */
    unsigned char sdtype[OW__MAX_SLOTS]; /* ow_dtype of each tensor slot */
    const float *z, *hz;                 /* OW_NEEDS_HVP: this step's z and H z */
    size_t *slot_numel;                  /* [slots] */
    size_t param;                        /* model occurrence index */
    int ndim;
    int64_t shape[OW_MAX_DIMS];
} ow__tensor;

typedef struct ow__group {
    ow_cfg *opts;   /* owned copy of the group's hyperparameters */
    ow_hparam *hp;  /* [keys] resolved from opts */
    ow_hparam *php; /* [params] the same in ops->params order (ow__group_sync) */
    double initial_lr;
} ow__group;

struct ow_optimizer {
    const ow_entry *entry;
    const ow_optimizer_ops *ops;
    const ow_groups *groups;
    const ow_model *model;
    bool apply_lr_scale; /* the groups' lr_scale multiplies lr when stepping (timm's
                            layer decay, see ow__lr_scaled); false where the constructor
                            folded it into lr */
    size_t nkeys, nslots;
    size_t scalar_slot[OW__MAX_SLOTS]; /* [nscalar] indices of the OW_SLOT_SCALAR slots */
    size_t nscalar;
    ow__group *g;
    size_t ng;
    ow_hparam *defaults;                /* [keys] */
    long pmap[OW_MAX_PARAMS];           /* ops->params[i] is key pmap[i], or -1 */
    size_t np;                          /* hyperparameters in ops->params */
    ow_hparam pdefaults[OW_MAX_PARAMS]; /* defaults in ops->params order */
    bool mixed; /* ops has passes and tensor_step: per_tensor picks per tensor */
    long la_step_key, la_k_key,
        la_alpha_key; /* Lookahead composite: key indices, or -1 */
    /* randomness and Hessian-vector products (OW_NEEDS_RNG, OW_NEEDS_HVP) */
    ow_rng_fn rng;
    void *rng_user;
    uint64_t seed, draws; /* the built-in generator: seed and draws taken */
    ow_hvp_fn hvp;
    void *hvp_user;
    float *hvp_buf; /* [2 * elements of the active tensors]: z, then H z */
    size_t hvp_cap;
    ow_cfg *defaults_cfg; /* owned copy (strings in defaults point into it) */
    ow__tensor *t;
    size_t nt;
    int threads;  /* 0: default */
    bool use_ref; /* tests: run the _ref kernels */
    float gx[3];  /* half gradients: ow__grad_xform's inv, coef, clamp as they are read
                     (the wrapper's unscale and clipping, ow__optimizer_set_grad_xform) */
    long lr_key;  /* index of "lr" in the keys, or -1 (looked up once) */
    /* active, nactive, active_all and the tensors' p and g are kept from the last step
     * while valid and the model's generation is active_gen (see ow_optimizer_step) */
    bool active_valid;
    unsigned long active_gen;
    size_t nactive, active_all;
    /* step scratch, grown on demand */
    size_t *active;     /* [nt] tensors stepping now: those taking the passes, then
                           those taking tensor_step (npass of the first kind) */
    size_t *active_tmp; /* [nt] */
    size_t npass;
    unsigned char *ctx; /* [nctx * OW_MAX_CTX] prepared constants */
    unsigned *ctx_passes;
    size_t ctx_cap;
    double shared[OW_MAX_CTX / sizeof(double)]; /* ow_prepare_args.shared */
    void *scratch; /* ow_tensor_args.scratch (64-byte aligned) */
    size_t scratch_cap;
    struct ow__unit *units; /* work units of the active tensors */
    size_t units_cap, nunits;
    bool units_built;   /* units cut for this step (by the first pass needing them) */
    unsigned pass_mask; /* passes some active tensor runs this step (prepare_all) */
    bool t_dirty;       /* a finish hook wrote tensors' t since prepare_all zeroed them */
    size_t plan_all;    /* elements of the active tensors, set by ow__plan_passes */
    int plan_threads;   /* threads of this step, set by ow__plan_passes */
    size_t *order;      /* [units] units of one pass, then their element prefix */
    size_t order_cap;
    double *sums; /* [units * OW_MAX_SUMS] */
    size_t sums_cap;
    float *gbuf; /* [gbuf_cap] a per-tensor step's half gradient in float32 */
    size_t gbuf_cap;
    char **notes; /* [nnotes] what the last load noted (ow_optimizer_get_note) */
    size_t nnotes;
};

/* A piece of at most OW__UNIT elements of one active tensor. */
typedef struct ow__unit {
    size_t active; /* index into opt->active */
    size_t off, n;
} ow__unit;

/* ---- optimizer.c ----------------------------------------------------------------- */

/* Resolves a config value into an ow_hparam (strings are borrowed from node). */
void ow__hparam_from_cfg(const ow_cfg *node, ow_hparam *out);
/* Maps ops->params to the entry's keys (map[i]: key index or -1), *np their count;
 * OW_ERR_PLUGIN for a params list too long or NULL. */
int ow__params_map(const ow_entry *e, long *map, size_t *np, ow_error *err);
/* hp in key order -> out in ops->params order (absent where map[i] < 0). */
void ow__params_view(const long *map, size_t np, const ow_hparam *hp, ow_hparam *out);
/* Rebuilds group gi's php from its hp (after any change to hp). */
void ow__group_sync(ow_optimizer *opt, size_t gi);
/* The index of key name in the entry's keys, or -1. */
long ow__optimizer_key(const ow_optimizer *opt, const char *name);
/* Tests: run the plain _ref kernels instead of the fast ones. */
void ow__optimizer_use_ref(ow_optimizer *opt, bool on);
/* Creates the state of tensor i (slots at their init values); NOMEM leaves it absent. */
int ow__tensor_alloc_state(ow_optimizer *opt, size_t i, ow_error *err);
void ow__tensor_free_state(ow_optimizer *opt, ow__tensor *t);
/* Bytes per element of a dtype; the storage dtype of a tensor slot under hp ([keys]). */
size_t ow__dtype_size(ow_dtype d);
ow_dtype ow__slot_dtype_hp(const ow_optimizer *opt, const ow_hparam *hp, size_t slot,
                           size_t numel);
/* A slot's shape for tensor t (its ndim, or -1 when the tensor has no such slot). */
int ow__slot_shape(const ow_optimizer *opt, const ow__tensor *t, size_t slot,
                   int64_t *shape);
/* The same under the hyperparameters hp ([keys]) instead of those of t's group. */
int ow__slot_shape_hp(const ow_optimizer *opt, const ow_hparam *hp, const ow__tensor *t,
                      size_t slot, int64_t *shape);
/* Resolves a group's options into hp ([keys]; absent keys get the optimizer's defaults)
 * and checks the optimizer's cross-key rules (OW_ERR_VALUE naming group gi). */
int ow__optimizer_resolve_group(const ow_optimizer *opt, size_t gi, const ow_cfg *opts,
                                ow_hparam *hp, ow_error *err);
/* Replaces group gi's options with opts (taken, even on failure), re-resolving hp and
 * checking it; nothing changes on failure. */
int ow__optimizer_set_group(ow_optimizer *opt, size_t gi, ow_cfg *opts, ow_error *err);

/* ---- state.c: the optimizer's part of a state file or checkpoint ---------------- */

typedef struct ow__st_builder ow__st_builder;
typedef struct ow__st_file ow__st_file;

/* Adds the optimizer's state to a safetensors builder (src/util/safetensors.h): tensors
 * prefix + "state.<i>.<key>" (torch's keys, i in param_groups order; they borrow the
 * optimizer's slots, so save before the next step or load) and metadata prefix +
 * "optimizer", "param_names", "param_shapes" and "param_groups" (each group's current
 * hyperparameters with "params": [indices]). prefix may be "" or NULL. */
int ow__optimizer_state_add(const ow_optimizer *opt, ow__st_builder *b,
                            const char *prefix, ow_error *err);

/* A load in two phases, so that a caller restoring several parts checks them all before
 * changing any: stage reads the parts under prefix from f and checks everything against
 * opt (optimizer name, parameter names and shapes, group count and members, every
 * hyperparameter against the key schema and the optimizer's rules, each tensor's slot,
 * shape and dtype, complete state per parameter), building the new state in *out
 * (OW_ERR_STATE naming the file and what differs; OW_ERR_NOMEM; *out NULL on failure).
 * Tensors whose names do not start with prefix are left to other parts. commit installs
 * a staged state into the optimizer it was staged for (it cannot fail) and frees it;
 * discard frees it unused. Both accept NULL. */
typedef struct ow__optimizer_staged ow__optimizer_staged;
int ow__optimizer_state_stage(const ow_optimizer *opt, const ow__st_file *f,
                              const char *prefix, ow__optimizer_staged **out,
                              ow_error *err);
void ow__optimizer_state_commit(ow_optimizer *opt, ow__optimizer_staged *s);
void ow__optimizer_state_discard(ow__optimizer_staged *s);
/* The hyperparameters a staged state holds for group g (without "params"), for callers
 * that compare them with the optimizer's before committing; NULL past the end. */
const ow_cfg *ow__optimizer_staged_group(const ow__optimizer_staged *s, size_t g);
/* Frees the notes of the last load. */
void ow__optimizer_clear_notes(ow_optimizer *opt);

/* ---- state_convert.c: a staged state into another state_dtype ------------------- */

/* Tensor t's staged slots (slot, slot_numel, present: [nslots], laid out as the
 * hyperparameters `from` ([keys]) store them) converted in place into the layout of
 * `to`: each moment decoded into float32 and encoded as `to` stores it (slots of the
 * same dtype keep their bytes). OW_ERR_STATE naming `where` when the optimizer cannot
 * (an int8 map that is not bitsandbytes', AdEMAMix's per-tensor step into int8);
 * OW_ERR_NOMEM. The slots are unchanged on failure. */
int ow__state_convert(const ow_optimizer *opt, const ow__tensor *t, const ow_hparam *from,
                      const ow_hparam *to, float **slot, size_t *slot_numel,
                      bool *present, const char *where, ow_error *err);

/* ---- draws.c: randomness and Hessian-vector products ------------------------------ */

/* ow_tensor_args.rand and .rand_scalar (engine: the optimizer). */
void ow__tensor_rand(const ow_tensor_args *a, ow_rng_kind kind, float *out, size_t n);
double ow__tensor_rand_scalar(const ow_tensor_args *a);
/* OW_NEEDS_HVP: draws z for the active tensors [from, nactive) and asks the host for
 * H z (OW_ERR_UNSUPPORTED without a host callback; the host's error code else). */
int ow__hvp_prepare(ow_optimizer *opt, size_t from, size_t nactive, ow_error *err);

/* ---- lookahead.c: timm's Lookahead over any optimizer ---------------------------- */

/* (ow__lookahead_entry, _inner and _strip: internal.h, for the registry) */
/* After a step of the active tensors: the groups' counters, and the syncs due. */
void ow__lookahead_after_step(ow_optimizer *opt, size_t nactive);
/* A group's options (built, or staged from a file) hold its counter lookahead_step, at
 * hp's value where they lack it, so that state files save it. OW_OK or OW_ERR_NOMEM. */
int ow__lookahead_own_step(const ow_optimizer *opt, ow_cfg *opts, const ow_hparam *hp);

/* ---- trajectory_inputs.c: a replay's recorded draws and Hessian-vector products ---- */

typedef struct ow__traj_inputs {
    const ow_cfg *extra, *coef_a, *coef_b;
    float *const *data;  /* [tensors] the replay's parameters */
    const size_t *numel; /* [tensors] */
    const ow_optimizer *opt;
    int step;
    size_t cursor[3]; /* next draw of each ow_rng_kind in this step */
    bool failed;      /* a draw was missing or of another size */
} ow__traj_inputs;
/* What the entry is held to in a replay: 0 (bit for bit) or a relative error. */
double ow__trajectory_tolerance(const ow_entry *e);
/* Sets the optimizer's generator and Hessian-vector products from the golden file doc
 * (where it records them); in must stay at its address while opt steps. */
void ow__traj_inputs_attach(ow__traj_inputs *in, const ow_cfg *doc, ow_optimizer *opt,
                            float *const *data, const size_t *numel);
/* Before step `step`: its draws start over. */
void ow__traj_inputs_step(ow__traj_inputs *in, int step);

/* ---- kernels.c (which needs nothing of optimizer.c) -------------------------------- */

/* The threads a step uses: ow_optimizer_set_threads', else $OW_NUM_THREADS, else
 * OpenMP's default; at least 1. */
int ow__optimizer_threads(const ow_optimizer *opt);
/* fn(arg, lo, hi) over [0, n) in one contiguous part per thread, for a tensor_step's
 * passes; with one thread (a small tensor) it calls fn(arg, 0, n) with no parallel
 * region, which costs a few hundred nanoseconds a call. */
typedef void ow__range_fn(const void *arg, size_t lo, size_t hi);
void ow__parallel_range(ow__range_fn *fn, const void *arg, size_t n, int threads);

/* Cuts the active tensors (all: their elements) into work units where the step runs
 * in parallel or keeps sums (the only step that can fail: NOMEM). */
int ow__plan_passes(ow_optimizer *opt, size_t nactive, size_t all, ow_error *err);
/* Runs the element passes over the planned units (p, g and ctx of the tensors set). */
void ow__run_passes(ow_optimizer *opt, size_t nactive);
/* n elements from off of tensor t's gradient as float32 (a half gradient decoded). */
void ow__grad_f32(const ow_optimizer *opt, const ow__tensor *t, size_t off, size_t n,
                  float *out);

/* ---- helpers for optimizer files -------------------------------------------------- */

/* torch applies a Python scalar to a float32 tensor as (float)scalar. */
static inline float ow__f(double x)
{
    return (float)x;
}

/* The caution mask scale of timm: mean of the 0/1 mask in float32, clamped at 1e-3,
 * then 1/mean (mask.div_(mask.mean().clamp_(min=1e-3))). */
static inline double ow__caution_scale(double count, size_t numel)
{
    float mean = (float)count / (float)numel;
    if (mean < 1e-3f)
        mean = 1e-3f;
    return (double)(1.0f / mean);
}

/* The finish hook of a caution count pass (sums[0]: the mask's ones): t[0] becomes the
 * scale the apply pass multiplies the mask by. */
static inline void ow__caution_finish(const ow_finish_args *f)
{
    f->t[0] = ow__caution_scale(f->sums[0], f->numel);
}

/* A hyperparameter as a bool / first number (false / dflt when null or absent). */
static inline bool ow__hp_true(const ow_hparam *hp)
{
    return !hp->is_null && hp->n > 0 && hp->v[0] != 0;
}
static inline double ow__hp_num(const ow_hparam *hp, double dflt)
{
    return hp->is_null || hp->n < 1 ? dflt : hp->v[0];
}

/* timm's decoupled decay scale: lr, or lr**2 / defaults['lr'] when corrected. */
static inline double ow__wd_scale(double lr, bool corrected, double max_lr)
{
    return corrected ? lr * lr / max_lr : lr;
}

/* Key rows the optimizer files share (torch's names and checks). */
#define OW__KEY_NUM(n, d, doc_)                                                          \
    {                                                                                    \
        .name = n, .type = OW_T_NUMBER, .def = d, .min = 0, .max = INFINITY,             \
        .flags = OW_KEY_RANGE, .doc = doc_                                               \
    }
/* A counter slot (torch's 0-d `step`): a state file's value must be a count. */
#define OW__SLOT_COUNTER(name_, dtype_)                                                  \
    {                                                                                    \
        .name = name_, .flags = OW_SLOT_SCALAR | OW_SLOT_COUNT, .dtype = dtype_          \
    }
#define OW__KEY_ANYNUM(n, d, doc_)                                                       \
    {                                                                                    \
        .name = n, .type = OW_T_NUMBER, .def = d, .doc = doc_                            \
    }
#define OW__KEY_BOOL(n, d, doc_)                                                         \
    {                                                                                    \
        .name = n, .type = OW_T_BOOL, .def = d, .doc = doc_                              \
    }
#define OW__KEY_BETAS(d)                                                                 \
    {                                                                                    \
        .name = "betas", .type = OW_T_NUMLIST, .def = d, .min = 0, .max = 1, .len = 2,   \
        .flags = OW_KEY_RANGE | OW_KEY_MAX_OPEN,                                         \
        .doc = "decay rates of the running averages of the gradient and its square"      \
    }
/* torch's performance switches: accepted, no effect on a CPU step */
#define OW__KEY_PERF(n)                                                                  \
    {                                                                                    \
        .name = n, .type = OW_T_BOOL, .def = "false",                                    \
        .flags = OW_KEY_NULLABLE | OW_KEY_IGNORED,                                       \
        .doc = "torch implementation switch, accepted and ignored"                       \
    }
/* Defines the registry entry `var` of an optimizer (one line per entry in each family's
 * file; registry/builtins.c lists them). Extra designated initializers may follow. */
#define OW__OPTIMIZER_ENTRY(var, name_, scope_, keys_, ops_, summary_, ...)              \
    const ow_entry var = {.abi_version = OW_ABI_VERSION,                                 \
                          .name = name_,                                                 \
                          .kind = OW_KIND_OPTIMIZER,                                     \
                          .scope = scope_,                                               \
                          .summary = summary_,                                           \
                          .keys = keys_,                                                 \
                          .ops = &ops_,                                                  \
                          __VA_ARGS__}

#endif /* OW_OPTIM_INTERNAL_H */
