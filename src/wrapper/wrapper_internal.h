/* wrapper_internal.h -- what the files of src/wrapper share: the wrapper's options as
 * read from its config, the ow_optim_wrapper object, and the gradient passes
 * (unscale, finiteness, norms, clipping) an update runs at the end of a window. */
#ifndef OW_WRAPPER_INTERNAL_H
#define OW_WRAPPER_INTERNAL_H

#include "../internal.h"

#include <stdint.h>

typedef enum ow__clip_mode { OW__CLIP_NONE, OW__CLIP_NORM, OW__CLIP_VALUE } ow__clip_mode;
typedef enum ow__half_kind { OW__HALF_NONE, OW__HALF_F16, OW__HALF_BF16 } ow__half_kind;

/* The wrapper's own keys, validated and resolved (optim_wrapper.c). */
struct ow__wrapper_opts {
    bool amp; /* AmpOptimWrapper */
    int64_t acc;
    ow__clip_mode clip;
    double max_norm, norm_type; /* norm_type INFINITY for inf */
    bool error_if_nonfinite;
    double clip_value;
    bool skip_nonfinite;
    /* AMP: torch GradScaler */
    bool scaler_enabled;
    bool dynamic; /* false: a constant loss_scale, reset after every update */
    double init_scale, growth_factor, backoff_factor;
    int64_t growth_interval;
    ow__half_kind half; /* AMP dtype float16/bfloat16: hosts may bind half buffers */
    ow_grad_dtype grad_dtype; /* the host's gradients (ow_model_set_grad_half) */
    int64_t zero_stage;       /* data-parallel runs (src/dist/): 0, 1 or 2 */
    /* DeepSpeedOptimWrapper (deepspeed.c): the strategy's fp16 loss scaler */
    bool deepspeed, ds_scaler, ds_consecutive;
    int64_t ds_hysteresis;
    double ds_min_scale;
};

/* deepspeed.c: the DeepSpeedOptimWrapper entry, its options from the config's top-level
 * strategy, and DeepSpeed's loss scale update (fails where DeepSpeed stops the run). */
extern const ow_entry ow__optim_wrapper_deepspeed;
int ow__wrapper_parse_deepspeed(const ow_cfg *config, const ow_cfg *node,
                                ow__wrapper_opts *o, ow_error *err);
int ow__wrapper_ds_update(ow_optim_wrapper *w, bool overflow, ow_error *err);

/* Validates an optim_wrapper map's own keys (schema of its registry entry `e`, then
 * clip_grad and loss_scale in depth) and resolves them into *out (may be NULL). */
int ow__wrapper_parse(const ow_cfg *node, const ow_entry *e, ow__wrapper_opts *out,
                      ow_error *err);

/* A gradient tensor the update passes work on. */
typedef struct ow__grad {
    float *g; /* uint16_t halves where dt says so */
    size_t n;
    unsigned char dt; /* ow_grad_dtype */
} ow__grad;

/* What a window-end pass over the gradients found. */
typedef struct ow__grad_stats {
    bool nonfinite; /* an element was inf or nan (before any scaling) */
    double total;   /* the clip norm as torch computes it (float32 values) */
} ow__grad_stats;

/* The data-parallel part (src/dist/dist_internal.h), set by ow_optim_wrapper_set_dist. */
typedef struct ow__dist ow__dist;

struct ow_optim_wrapper {
    ow_cfg *config;     /* owned copy of the whole config, or NULL */
    ow_model *submodel; /* owned: a dict wrapper's module, as its own tree */
    ow_groups *groups;  /* owned, or NULL (ow_optim_wrapper_wrap) */
    ow_optimizer *opt;  /* owned */
    ow_sched_target *target;
    ow_sched *sched; /* owned; NULL: none */
    ow__wrapper_opts o;
    int64_t inner, max_counts, remainder; /* mmengine's _inner_count, ... */
    float scale;                          /* GradScaler's _scale (1 without AMP) */
    int64_t tracker;                      /* GradScaler's _growth_tracker (DeepSpeed's
                                             cur_iter) */
    int64_t ds_last_overflow, ds_hyst;    /* DeepSpeed's last_overflow_iter and
                                             cur_hysteresis */
    int64_t epochs;                       /* end_epoch calls */
    uint64_t config_hash;
    char *built; /* owned: JSON list of the groups' options as built (before the schedule)
                  */
    const ow_model *model; /* the tree the optimizer steps (borrowed, or submodel) */
    ow_model *host_model;  /* what bind_half may repoint (NULL after ..._wrap) */
    struct ow__half *half; /* [nhalf] bound half-precision parameters */
    size_t nhalf;
    /* OptimWrapperDict */
    char **names;
    ow_optim_wrapper **children;
    size_t nchildren;
    ow__dist *dist; /* owned; NULL: one process */
    /* scratch */
    ow__grad *grads;
    size_t ngrads, grads_cap;
    float *scratch; /* half gradients: their scan's float32 chunks */
    size_t scratch_cap;
    double *lr, *momentum; /* [ng] for ow_update_info */
    size_t ng;
};

/* wrapper.c: building. build_one builds groups, optimizer and schedule of config (its
 * optim_wrapper a single wrapper) over model into w; finish adds the schedule, counters
 * and loss scale once w->opt exists; free_parts releases what one wrapper owns. */
int ow__wrapper_build_one(ow_optim_wrapper *w, const ow_cfg *config,
                          const ow_model *model, const ow_sched_loop *loop,
                          ow_error *err);
int ow__wrapper_finish(ow_optim_wrapper *w, const ow_cfg *config,
                       const ow_sched_loop *loop, ow_error *err);
void ow__wrapper_free_parts(ow_optim_wrapper *w);
/* dict.c: the named wrappers of an OptimWrapperDict config (w->config), each over the
 * module of its name. */
int ow__wrapper_dict_build(ow_optim_wrapper *w, const ow_model *model,
                           const ow_sched_loop *loop, ow_error *err);
/* checkpoint.c: a hash of what a checkpoint's state depends on in a config (its
 * optim_wrapper and param_scheduler), 0 for NULL. */
uint64_t ow__wrapper_config_hash(const ow_cfg *config);
/* The optimizer's current group options as a JSON list, into a new *out. */
int ow__wrapper_groups_json(const ow_optim_wrapper *w, char **out, ow_error *err);

/* half.c: the optimizer reads the host's half gradients, except in data-parallel runs:
 * copies gives every binding float32 gradients (ow_optim_wrapper_set_dist calls it),
 * and gather copies the host's half gradients into them (at a window's end, and before
 * a checkpoint saves an open window's sums: the fp32 copies are a mirror, not state);
 * scatter rounds the fp32 master weights (and with grads, float32 gradient sums of a
 * loaded checkpoint) back into the host's buffers, zero_grads zeroes its half
 * gradients; free releases the bindings. */
int ow__half_copies(ow_optim_wrapper *w, ow_error *err);
/* Whether binding i reads float32 copies (tests). */
bool ow__half_copied(const ow_optim_wrapper *w, size_t i);
void ow__half_gather(const ow_optim_wrapper *w);
void ow__half_scatter(ow_optim_wrapper *w, bool grads);
void ow__half_zero_grads(ow_optim_wrapper *w);
void ow__half_free(ow_optim_wrapper *w);

/* Collects the gradient buffers the optimizer steps (distinct tensors that require a
 * gradient and have one) into w->grads, each of the dtype grad_dtype says (an error
 * names the first that is not; data-parallel runs take float32 ones only), and sizes
 * w->scratch for scanning half ones. */
int ow__wrapper_collect_grads(ow_optim_wrapper *w, ow_error *err);
/* One read-only pass: whether any gradient element is inf or nan, and with norm not
 * NULL, torch.nn.utils.clip_grad_norm_'s total p-norm (p inf: the largest |g|) of the
 * unscaled values fl(g * inv) in float32, summed in a fixed order whatever the thread
 * count. */
bool ow__grads_scan(const ow__grad *g, size_t n, float inv, double p, float *norm,
                    float *scratch);
/* (scratch: w->scratch where a gradient is half, else unread) */
/* g = fl(fl(g * inv) * coef), or with clamp >= 0, g = clamp(fl(g * inv), -clamp, clamp):
 * GradScaler's unscale_ and the clipping in one pass (a factor of 1 is skipped; half
 * gradients are left for the optimizer to apply it as it reads them). Returns whether
 * a clamped element was inf or nan before. */
bool ow__grads_apply(const ow__grad *g, size_t n, float inv, float coef, float clamp);
/* Sets every element to zero; with check, reports whether one was inf or nan. */
bool ow__grads_zero(const ow__grad *g, size_t n, bool check);

/* The scan's units, for a data-parallel wrapper whose ranks each scan their shard: a
 * tensor below OW__GRAD_SERIAL_BELOW elements is one unit, a larger one a unit per
 * OW__GRAD_CHUNK elements. ow__grads_scan is, per tensor, its units' parts combined in
 * order from {false, 0}, added into a total: the same steps on the same parts give the
 * same bits. */
#define OW__GRAD_CHUNK        16384
#define OW__GRAD_SERIAL_BELOW 65536
typedef struct ow__scan_part {
    bool bad;
    double acc; /* the sum of |u|^p, or the largest |u| (nan if any) for p = inf */
} ow__scan_part;
typedef struct ow__scan_total {
    bool bad;
    double total;
} ow__scan_total;
ow__scan_part ow__grads_scan_unit(const float *x, size_t n, float inv, double p,
                                  bool norm);
ow__scan_part ow__grads_scan_combine(ow__scan_part acc, ow__scan_part next, double p);
void ow__grads_scan_add(ow__scan_total *s, ow__scan_part t, double p, bool norm);
bool ow__grads_scan_end(const ow__scan_total *s, double p, float *norm);

#endif /* OW_WRAPPER_INTERNAL_H */
