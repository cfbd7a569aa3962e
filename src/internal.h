/* internal.h -- declarations shared by the library's files and its tests, never
 * installed: allocation, error filling, string buffers, number formatting, and the
 * config tree's internal layout. Cross-file internals are named ow__*. */
#ifndef OW_INTERNAL_H
#define OW_INTERNAL_H

#include "optwrap.h"
#include "util/half.h" /* float16 and bfloat16 to and from float32, inline */

#include <stdarg.h>
#include <stdio.h>

#define OW__PRINTF(a, b) __attribute__((format(printf, a, b)))
#define OW__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- allocation (src/alloc.c) ---------------------------------------------------- */

/* Every allocation goes through these, so tests can make the Nth one fail. */
void *ow__malloc(size_t n);
void *ow__calloc(size_t count, size_t size);
/* 64-byte aligned, released with ow_free. */
void *ow__malloc_aligned(size_t n);
void *ow__realloc(void *ptr, size_t n);
char *ow__strdup(const char *s);
char *ow__strndup(const char *s, size_t n);
/* Test hook: the allocation after `n` more successful ones fails (n < 0: never).
 * Returns the number of allocations made since the last call. Not thread-safe; tests
 * only. */
long ow__alloc_fail_after(long n);

/* Grows *items (of elem_size) so that it holds at least need elements. */
int ow__grow(void **items, size_t *cap, size_t need, size_t elem_size);

/* Kernels are compiled for AVX-512, AVX2 and baseline x86-64, and the loader picks the
 * best one for the CPU (function multi-versioning, an ifunc). GCC: the x86-64-v4 and -v3
 * levels (v3 has FMA). Clang 14 has target_clones too, but resolves "arch=x86-64-v4" as
 * a CPU model (its resolver compares __cpu_model's vendor against 0, so it never picks
 * the clone on Intel or AMD) and drops the "arch=x86-64-v3" clone; it wants one feature
 * per clone, so its AVX2 clone has no FMA (fmaf is then libm's: the same results, each
 * rounded once). Elsewhere: plain C. */
#if defined(__x86_64__) && defined(__linux__) && defined(__clang__) &&                   \
    __clang_major__ >= 14
#define OW_SIMD __attribute__((target_clones("avx512f", "avx2", "default")))
#elif defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) &&                  \
    !defined(__clang__)
#define OW_SIMD                                                                          \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define OW_SIMD
#endif

/* A gradient as torch's GradScaler.unscale_ and then clip_grad_value_ or
 * clip_grad_norm_ leave it: fl(g * inv), then clamped to [-clamp, clamp] (clamp >= 0;
 * nan stays nan) or times coef (rounded again). inv = coef = 1, clamp < 0: g itself.
 * The wrapper's pass over float32 gradients and the optimizer's reads of half ones. */
static inline float ow__grad_xform(float g, float inv, float coef, float clamp)
{
    float u = g * inv;
    return clamp >= 0 ? (u < -clamp ? -clamp : u > clamp ? clamp : u) : u * coef;
}

/* The largest count optwrap keeps (steps, iterations, int keys): exact as a double, and
 * counting on from it cannot overflow an int64_t. */
#define OW__COUNT_MAX ((int64_t)1 << 53)

/* v as an int64_t, saturating where C leaves the cast undefined (out of range); nan
 * gives 0. For counts computed from configured numbers (begin * epoch_length). */
static inline int64_t ow__i64_sat(double v)
{
    return v >= 0x1p63 ? INT64_MAX : v < -0x1p63 ? INT64_MIN : v == v ? (int64_t)v : 0;
}

/* torch's `foreach` switch, a key of its optimizers and clip_grad_norm_: no effect on a
 * CPU result (optimizers keep it where it selects torch's multi-tensor rounding). */
#define OW__KEY_FOREACH                                                                  \
    {                                                                                    \
        .name = "foreach", .type = OW_T_BOOL, .def = "null",                             \
        .flags = OW_KEY_NULLABLE | OW_KEY_IGNORED,                                       \
        .doc = "torch implementation switch, accepted and ignored"                       \
    }

/* ---- timm's Lookahead composites (src/optim/lookahead.c) --------------------------- */

/* The composite `lookahead_<inner>` (made once, kept by the registry); NULL for an entry
 * without kernels, a composite, or no memory. */
const ow_entry *ow__lookahead_entry(const ow_entry *inner);
/* The optimizer a composite wraps, or NULL when e is not one. */
const ow_entry *ow__lookahead_inner(const ow_entry *e);
/* name without "lookahead_", or NULL when it does not start so. */
const char *ow__lookahead_strip(const char *name);
/* Whether an optim_wrapper.optimizer map is optwrap's Lookahead config form
 * {type: Lookahead, optimizer: {type: X, ...}, alpha, k}, and its flat form (a new map:
 * X's keys, type the composite over X, lookahead_alpha, lookahead_k). */
bool ow__lookahead_is_config_form(const ow_cfg *opt_cfg);
int ow__lookahead_flatten(const ow_cfg *opt_cfg, const char *scope, ow_cfg **flat,
                          ow_error *err);

/* ---- names a reference has that optwrap refuses (src/optim/refused.c) -------------- */

/* Why optimizer type `name` ("bnbadam8bit", "timm.bnbadam8bit") is refused, or NULL. */
const char *ow__refused_reason(const char *name, const char *default_scope);
/* The i-th refused name, for listings; false past the end. */
bool ow__refused_get(size_t i, const char **scope, const char **name,
                     const char **reason);

/* ---- errors (src/error.c) -------------------------------------------------------- */

/* Every public function that takes an ow_error calls this first (jansson's way): the
 * error then describes the last call, whatever the struct held before (garbage
 * included). Cheap: only the code, the position and the first bytes of the texts. */
void ow__error_reset(ow_error *err);
/* Stores code, position and message in err unless err is NULL or already holds an
 * error: within one public call the first error wins, so the innermost cause survives
 * unwinding. An error a caller means to ignore must go to a scratch ow_error. Returns
 * code, so callers can `return ow__error(...)`. */
int ow__error(ow_error *err, int code, const char *file, int line, int column,
              const char *fmt, ...) OW__PRINTF(6, 7);
int ow__verror(ow_error *err, int code, const char *file, int line, int column,
               const char *fmt, va_list ap);
/* The same at a config node's position (node may be NULL: no position). */
int ow__error_at(ow_error *err, int code, const ow_cfg *node, const char *fmt, ...)
    OW__PRINTF(4, 5);
int ow__nomem(ow_error *err);

/* ---- strings (src/util/strbuf.c, text.c) ----------------------------------------- */

typedef struct ow_strbuf {
    char *data;
    size_t len, cap;
    int failed; /* an allocation failed; later appends are ignored */
} ow_strbuf;

void ow__sb_init(ow_strbuf *sb);
void ow__sb_free(ow_strbuf *sb);
void ow__sb_putc(ow_strbuf *sb, char c);
void ow__sb_puts(ow_strbuf *sb, const char *s);
void ow__sb_putn(ow_strbuf *sb, const char *s, size_t n);
void ow__sb_printf(ow_strbuf *sb, const char *fmt, ...) OW__PRINTF(2, 3);
/* Writes s as a JSON string literal (quoted, escaped). */
void ow__sb_json_string(ow_strbuf *sb, const char *s);
/* Hands the buffer over (NUL-terminated) and resets sb; NULL if an allocation failed. */
char *ow__sb_take(ow_strbuf *sb);

/* Formats a double the way Python's repr() does: the shortest text that reads back to
 * the same double, "1.0" for integral values, "1e-05" / "1e+16" style exponents,
 * "inf", "-inf", "nan". buf must hold at least 32 bytes. */
void ow__format_double(double v, char *buf, size_t n);

/* Levenshtein distance, capped: returns a value > cap as soon as it exceeds cap. */
size_t ow__edit_distance(const char *a, const char *b, size_t cap);
/* The candidate closest to word (within a distance that makes it a plausible typo), or
 * NULL. candidates is NULL-terminated. */
const char *ow__closest(const char *word, const char *const *candidates);

/* Reads a whole regular file into a NUL-terminated buffer (caller frees with ow__free).
 * FIFOs, devices and folders fail with OW_ERR_IO ("not a regular file") without
 * blocking, and so does a file over max_bytes (0: the default ow_limits.max_file_bytes);
 * ow__read_file is ow__read_file_limited with the default. */
int ow__read_file(const char *path, char **out, size_t *len, ow_error *err);
int ow__read_file_limited(const char *path, size_t max_bytes, char **out, size_t *len,
                          ow_error *err);

/* *limits with each 0 field replaced by its default; the defaults for NULL. */
ow_limits ow__limits_resolve(const ow_limits *limits);

#define ow__free ow_free

/* ---- config tree (src/cfg) ------------------------------------------------------- */

/* A node owns its file, v.s, items, keys and key strings, unless they live in an
 * ow__pool (bits of `pooled`): ow_cfg_free then frees only what is on the heap (the
 * children are freed by their own bits), and the pool must outlive the node: copy a
 * pooled node, never move it, out of its owner. The mutators below first move a node's
 * pooled data to the heap; code that replaces v.s, keys[i] or file directly must only
 * do so on heap nodes (pooled == 0). */
enum {
    OW__POOLED_NODE = 1, /* the struct itself is a pool block */
    OW__POOLED_DATA = 2  /* file, v.s, the items and keys arrays and the key strings */
};

struct ow_cfg {
    ow_cfg_type type;
    int line, column;
    bool quoted;          /* a scalar written with quotes (always a string) */
    unsigned char pooled; /* OW__POOLED_* bits; 0 for the heap */
    char *file;           /* owned copy; NULL for nodes made in code */
    union {
        bool b;
        int64_t i;
        double d;
        char *s; /* owned */
        struct {
            ow_cfg **items; /* owned */
            char **keys;    /* owned; maps only */
            size_t n, cap;
        } c;
    } v;
};

/* A saved counter (a step, an iteration): an int from -1 (mmengine's last_step before
 * the first step, DeepSpeed's last overflow before the first) to OW__COUNT_MAX. */
static inline bool ow__cfg_count(const ow_cfg *v, int64_t *out)
{
    if (!v || v->type != OW_CFG_INT || v->v.i < -1 || v->v.i > OW__COUNT_MAX)
        return false;
    *out = v->v.i;
    return true;
}

ow_cfg *ow__cfg_new(ow_cfg_type type, const char *file, int line, int column);
ow_cfg *ow__cfg_new_double(double d);
ow_cfg *ow__cfg_new_int(int64_t i);
ow_cfg *ow__cfg_new_bool(bool b);
ow_cfg *ow__cfg_new_string(const char *s);
/* Sets the position of node (and copies file). */
int ow__cfg_set_pos(ow_cfg *node, const char *file, int line, int column);
/* Appends an item to a list (takes ownership of item, even on failure). */
int ow__cfg_list_append(ow_cfg *list, ow_cfg *item);
/* Room for need items in a list or map. */
int ow__cfg_reserve(ow_cfg *coll, size_t need);
/* Sets key in a map: replaces the value in place if present, else appends. Takes
 * ownership of value, even on failure. */
int ow__cfg_map_set(ow_cfg *map, const char *key, ow_cfg *value);
/* Removes key from a map and frees its value; no-op when absent. */
void ow__cfg_map_remove(ow_cfg *map, const char *key);
/* The value of key in a map (NULL when absent or when map is not a map). */
ow_cfg *ow__cfg_map_get(const ow_cfg *map, const char *key);
/* Index of key in a map, or -1. */
long ow__cfg_map_index(const ow_cfg *map, const char *key);
/* Deep copy; NULL on allocation failure. */
ow_cfg *ow__cfg_dup(const ow_cfg *node);
/* Structural equality (types, values, keys in order; positions ignored). */
bool ow__cfg_equal(const ow_cfg *a, const ow_cfg *b);

/* ---- pools (src/cfg/pool.c) ------------------------------------------------------ */

/* A bump allocator for many small blocks with one owner and one lifetime (a build's
 * group options), and interned strings. Blocks are never freed one by one: memory a
 * node no longer uses stays in the pool until ow__pool_free. Not thread-safe. */
typedef struct ow__pool ow__pool;
ow__pool *ow__pool_new(void);
/* Frees every block and string at once; accepts NULL. */
void ow__pool_free(ow__pool *pool);
/* n bytes aligned to align (a power of two up to _Alignof(max_align_t): pass the
 * element type's alignment); NULL on allocation failure. */
void *ow__pool_alloc(ow__pool *pool, size_t n, size_t align);
/* The pool's one copy of s (equal strings share it), valid until ow__pool_free; NULL
 * on allocation failure. */
const char *ow__pool_intern(ow__pool *pool, const char *s);

/* Pooled config nodes (OW__POOLED_NODE | OW__POOLED_DATA): the struct, its file (an
 * interned string), string, arrays and keys in the pool. A new one has no position. */
ow_cfg *ow__cfg_pool_new(ow__pool *pool, ow_cfg_type type);
/* Deep copy into the pool; NULL on allocation failure. */
ow_cfg *ow__cfg_pool_dup(ow__pool *pool, const ow_cfg *node);
/* Room for need items; a collection with pooled data grows in the pool, one on the
 * heap on the heap (so do the functions below). */
int ow__cfg_pool_reserve(ow__pool *pool, ow_cfg *coll, size_t need);
/* ow__cfg_map_set with the key interned in the pool. Takes value, even on failure. */
int ow__cfg_pool_map_set(ow__pool *pool, ow_cfg *map, const char *key, ow_cfg *value);
/* Appends key, which must be absent from map and come from ow__pool_intern(pool): no
 * lookup, no copy. Takes value, even on failure. */
int ow__cfg_pool_map_add(ow__pool *pool, ow_cfg *map, const char *key, ow_cfg *value);
/* ow__cfg_list_append into the pool. Takes item, even on failure. */
int ow__cfg_pool_list_append(ow__pool *pool, ow_cfg *list, ow_cfg *item);

/* Resolves a plain (unquoted) YAML scalar per the YAML 1.2 core schema into node. */
int ow__cfg_resolve_scalar(ow_cfg *node, const char *text, bool quoted);

/* Parses YAML text into a tree without _base_ handling, within the default ow_limits. */
int ow__cfg_parse(const char *text, size_t len, const char *file, ow_cfg **out,
                  ow_error *err);

/* What on_item returns, for the first item only, to have the items stored as usual. */
#define OW__PARSE_KEEP (-1)

/* Options of ow__cfg_parse_with; a NULL pointer means the defaults. */
typedef struct ow__parse_opts {
    const ow_limits *limits; /* NULL: ow_limits_defaults() */
    /* optional: the items of the list under this key of the top-level map go, as they
     * are parsed, to on_item (which borrows them) instead of into the tree, where the
     * list stays empty; for files of a million entries (model trees). root is the
     * top-level map as far as parsed. Not for an anchored list. */
    const char *stream_key;
    int (*on_item)(const ow_cfg *item, size_t index, const ow_cfg *root, void *ctx,
                   ow_error *err);
    void *ctx;
} ow__parse_opts;
int ow__cfg_parse_with(const char *text, size_t len, const char *file,
                       const ow__parse_opts *opts, ow_cfg **out, ow_error *err);

/* Writes a scalar or collection as compact JSON into sb (floats via
 * ow__format_double, bools true/false, null). */
void ow__cfg_write_json(ow_strbuf *sb, const ow_cfg *node);

/* ---- schema validation (src/cfg/schema.c) ---------------------------------------- */

/* Checks a map node against a key table (ended by a row with name NULL): every key
 * must be declared (else OW_ERR_UNKNOWN_KEY at the key's value with a did-you-mean),
 * types and ranges must fit, required keys must be present. `context` names the node
 * in messages ("paramwise_cfg"). `extra` (may be NULL) lists further accepted keys that
 * are checked elsewhere, such as "type". */
int ow__schema_check(const ow_cfg *map, const ow_key *keys, const char *context,
                     const char *const *extra, ow_error *err);
/* Checks one value against one key row. */
int ow__schema_check_value(const ow_cfg *value, const ow_key *key, const char *context,
                           ow_error *err);
/* The default of a key parsed into a new node (NULL def gives NULL, *out = NULL). */
int ow__schema_default(const ow_key *key, ow_cfg **out, ow_error *err);
/* The row named name, or NULL. */
const ow_key *ow__schema_find(const ow_key *keys, const char *name);

/* ---- registry (registry/) ------------------------------------------------------- */

/* The one table of built-in entries (registry/builtins.c), NULL-terminated. */
extern const ow_entry *const ow__builtins[];

/* Resolves a `type:` node of the given kind (a string, optionally "scope.Name"),
 * trying default_scope (may be NULL) first for an unscoped name. On a miss: an
 * OW_ERR_UNKNOWN_TYPE at the node naming the closest registered names, or the scope
 * that does hold a scoped name. */
int ow__registry_lookup(ow_registry_kind kind, const ow_cfg *type_node,
                        const char *default_scope, const ow_entry **out, ow_error *err);
/* Up to three registered names of `kind` closest to name, written "'A', 'B', 'C'" into
 * buf; returns buf, or NULL when no name is close. */
const char *ow__registry_closest(ow_registry_kind kind, const char *name, char *buf,
                                 size_t n);
/* Loads the plugins of a config's `custom_imports: {imports: [...],
 * allow_failed_imports: false}` (paths relative to the config file's directory);
 * no-op when root has no custom_imports. */
int ow__registry_import(const ow_cfg *root, ow_error *err);
/* The one reading of a config's registry scope, for every entry point (check, groups,
 * schedule, wrapper): config must be a map, its `default_scope` a string or null
 * (*scope: NULL when absent or null), and its custom_imports plugins are loaded first. */
int ow__cfg_scope(const ow_cfg *config, const char **scope, ow_error *err);
/* Tests only: drops every run-time entry and forgets loaded plugins (they stay mapped).
 */
void ow__registry_reset(void);

/* ---- param groups (src/groups/) --------------------------------------------------- */

/* What the optimizer, the schedule targets and the trajectories read of (or set on)
 * param groups beyond the public accessors; the layout stays in groups_internal.h. */

/* Empty groups over model (borrowed); NULL on allocation failure. */
ow_groups *ow__groups_new(const ow_model *model);
/* The optimizer entry the groups were built for, and its `defaults` dict (borrowed;
 * timm's corrected weight decay reads defaults['lr']): NULL when not built for one. */
const ow_entry *ow__groups_get_optimizer(const ow_groups *groups);
const ow_cfg *ow__groups_get_defaults(const ow_groups *groups);
/* For groups filled by hand (trajectories, tests): the optimizer they are for and its
 * defaults dict (taken, even when groups is NULL; may be NULL), replacing any earlier. */
void ow__groups_set_optimizer(ow_groups *groups, const ow_entry *optimizer,
                              ow_cfg *defaults);
/* Whether the optimizer steps with lr * lr_scale (timm's layer decay); false where the
 * constructor folded lr_scale into lr (mmpretrain, mmseg) or there is none. */
bool ow__groups_applies_lr_scale(const ow_groups *groups);
/* Group's options map, writable in place (a schedule target writes its numbers); NULL
 * past the end. */
ow_cfg *ow__groups_get_options_mutable(ow_groups *groups, size_t group);

/* The lr a group steps with: lr times the group's numeric lr_scale where the optimizer
 * applies lr_scale (applies_lr_scale), else lr itself. The one place of that rule:
 * ow_groups_get_effective_lr and the optimizer's step both use it. */
double ow__lr_scaled(double lr, const ow_cfg *group_options, bool applies_lr_scale);

/* An optimizer's `defaults` dict as torch builds it (optimizer.defaults): every key of
 * the entry's schema in declaration order, optimizer_cfg's value where it gives one,
 * else the schema's default; a key with neither stays absent (torch's `required`).
 * In pool when pool is not NULL (then ow_cfg_free frees only what is on the heap),
 * else on the heap. *out is NULL on failure. */
int ow__optimizer_defaults_new(const ow_entry *optimizer, const ow_cfg *optimizer_cfg,
                               ow__pool *pool, ow_cfg **out, ow_error *err);

/* torch's checks across keys that an optimizer's __init__ makes on its defaults
 * ("Nesterov momentum requires a momentum and zero dampening"): the entry's ops->check
 * on optimizer_cfg's values, else the schema's defaults. OW_ERR_VALUE at optimizer_cfg,
 * "<context> (<name>): <message>"; OW_OK for entries without a check. */
int ow__optimizer_check_config(const ow_entry *optimizer, const ow_cfg *optimizer_cfg,
                               const char *context, ow_error *err);

/* ---- schedule targets (src/sched/target.c, src/optim/sched_target.c) -------------- */

/* Every ow_sched_target handed out starts with this, so that one
 * ow_sched_target_free releases either kind. */
typedef struct ow__target_impl {
    ow_sched_target pub; /* first: the pointer handed out */
    void (*destroy)(struct ow__target_impl *impl);
} ow__target_impl;

/* The number node a schedule reads and writes for key in a group's options map: the
 * key's own, or betas[0] for "momentum" (Adam-style optimizers), else NULL. */
ow_cfg *ow__sched_value_node(const ow_cfg *map, const char *key);
/* Its value; false when there is none. */
bool ow__sched_value_get(const ow_cfg *map, const char *key, double *value);
/* The base_param_settings group of a target made by ow_optimizer_sched_target_new
 * (borrowed), NULL for other targets or with one group. */
const ow_cfg *ow__sched_target_base(const ow_sched_target *target);

/* ---- run loops (src/sched/loops.c) ----------------------------------------------- */

/* Checks train_cfg, val_cfg and test_cfg (each absent, null or a map) as mmengine's
 * runner builds its loops: EpochBasedTrainLoop, IterBasedTrainLoop (or by_epoch
 * true/false), ValLoop and TestLoop accept their own keys only; another `type` is left
 * alone. */
int ow__loops_check(const ow_cfg *config, ow_error *err);

/* ---- optim wrappers (src/wrapper/optim_wrapper.c, src/constructors/build.c) -------- */

typedef struct ow__wrapper_opts ow__wrapper_opts;
/* Resolves the wrapper type an optim_wrapper map `node` of config names (default
 * OptimWrapper) and validates its own keys in depth (clip_grad, loss_scale): *entry and,
 * when out is not NULL, its resolved options (then a schema-only run-time entry fails
 * with OW_ERR_UNSUPPORTED). */
int ow__wrapper_resolve(const ow_cfg *config, const ow_cfg *node, const ow_entry **entry,
                        ow__wrapper_opts *out, ow_error *err);
/* Whether an optim_wrapper map is an OptimWrapperDict: no `optimizer`, no constructor
 * but MultiOptimWrapperConstructor, and map values: the named wrappers. */
bool ow__wrapper_is_dict(const ow_cfg *node);
/* The optimizer entry an optim_wrapper.optimizer map names (src/wrapper/zero.c): its
 * `type`, or mmengine's {type: ZeroRedundancyOptimizer, optimizer_type: X, ...}; the
 * map's keys checked against the entry's schema. is_zero: the ZeRO form. Lookahead's
 * config form is read as its flat form, which *flat then holds (the caller's to free,
 * and what it reads instead of opt_cfg); NULL otherwise. */
int ow__optimizer_lookup(const ow_cfg *opt_cfg, const char *scope, const ow_entry **out,
                         ow_cfg **flat, ow_error *err);
bool ow__optimizer_is_zero(const ow_cfg *opt_cfg);
/* Checks every wrapper of a dict config as ow_cfg_check checks one. */
int ow__wrapper_dict_check(const ow_cfg *config, ow_error *err);
/* ow_cfg_check and ow_groups_build for one optim_wrapper map of config (a dict's
 * member): the wrapper, its optimizer and paramwise_cfg. */
int ow__wrapper_node_check(const ow_cfg *config, const ow_cfg *node, ow_error *err);
int ow__groups_build_node(const ow_cfg *config, const ow_cfg *node, const ow_model *model,
                          ow_groups **out, ow_error *err);

/* ---- optimizer tensors (src/optim/optimizer.c), for the wrapper's gradient passes -- */

/* The distinct tensors an optimizer steps, in param_groups order. */
size_t ow__optimizer_num_tensors(const ow_optimizer *opt);
/* The model an optimizer steps (borrowed). */
const ow_model *ow__optimizer_model(const ow_optimizer *opt);
/* Tensor i's gradient buffer, size, ow_grad_dtype and parameter name (borrowed) when it
 * steps now (requires a gradient and has data and grad pointers); false otherwise. */
bool ow__optimizer_tensor_grad(const ow_optimizer *opt, size_t i, float **grad,
                               size_t *numel, unsigned char *dtype, const char **name);
/* What the optimizer's reads of half gradients apply until set again (ow__grad_xform):
 * the wrapper's unscale and clipping of half gradients, which it cannot write back. */
void ow__optimizer_set_grad_xform(ow_optimizer *opt, float inv, float coef, float clamp);
/* The model parameter (occurrence index) tensor i is stepped under. */
size_t ow__optimizer_tensor_param(const ow_optimizer *opt, size_t i);

#endif /* OW_INTERNAL_H */
