/* optwrap.h -- build neural-network optimizers from mmengine/timm-style YAML configs.
 * The one installed header of liboptwrap: configs, the registry, model trees and
 * param groups. Everything here is prefixed ow_; nothing else is exported.
 *
 * Conventions, stated once:
 * - Every fallible call returns OW_OK (0) or an OW_ERR_* code, and stores the same code,
 *   a message and, where there is one, the file:line:column of the offending config node
 *   in a caller-owned ow_error (which may be NULL). The first error stored wins.
 * - ow_*_new / ow_*_load create a handle the caller owns and releases with the matching
 *   ow_*_free, which accepts NULL. A failed constructor stores NULL in *out: there is
 *   nothing to free.
 * - A "borrowed" pointer is owned by the handle it came from and stays valid until that
 *   handle is freed or modified.
 * - The library never prints, exits or aborts on user input.
 */
#ifndef OPTWRAP_H
#define OPTWRAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define OW_API
#else
#define OW_API __attribute__((visibility("default")))
#endif

#define OW_VERSION_STRING "0.1.0"
/* Version of the registry entry layout; plugins set ow_entry.abi_version to it. */
#define OW_ABI_VERSION 1

/* ---------------------------------------------------------------------------------- */
/* Errors                                                                             */
/* ---------------------------------------------------------------------------------- */

/* Codes are never renumbered; new ones are added at the end. */
enum {
    OW_OK = 0,
    OW_ERR_NOMEM = 1,        /* an allocation failed */
    OW_ERR_MISUSE = 2,       /* API misuse: NULL handle, bad index, ... */
    OW_ERR_IO = 3,           /* a file could not be read or written */
    OW_ERR_SYNTAX = 4,       /* malformed YAML or override text */
    OW_ERR_TYPE = 5,         /* a value has the wrong type */
    OW_ERR_UNKNOWN_KEY = 6,  /* a key no consumer accepts */
    OW_ERR_MISSING_KEY = 7,  /* a required key is absent */
    OW_ERR_RANGE = 8,        /* a value is out of its allowed range */
    OW_ERR_UNKNOWN_TYPE = 9, /* a `type:` names no registry entry */
    OW_ERR_DUPLICATE = 10,   /* a duplicate key, name or registration */
    OW_ERR_INHERIT = 11,     /* _base_ inheritance: missing base, cycle, bad merge */
    OW_ERR_MODEL = 12,       /* a model tree is inconsistent or lacks what is needed */
    OW_ERR_VALUE = 13,       /* a value is invalid for what it is used for */
    OW_ERR_PLUGIN = 14,      /* a plugin could not be loaded or initialised */
    OW_ERR_STATE = 15,       /* a state file is truncated, corrupt or mismatched */
    OW_ERR_UNSUPPORTED = 16, /* a feature or name optwrap does not implement */
    OW_ERR__COUNT
};

#define OW_ERROR_FILE_LEN 256
#define OW_ERROR_TEXT_LEN 512

/* Caller-owned, fixed size: filling it never allocates. line and column are 1-based;
 * 0 means "no position". file is a path, or "<string>", "<cfg-options>", "<model>". */
typedef struct ow_error {
    int code;
    int line, column;
    char file[OW_ERROR_FILE_LEN];
    char message[OW_ERROR_TEXT_LEN];
} ow_error;

/* "OW_ERR_UNKNOWN_KEY" for a code; "OW_ERR_?" for a code out of range. */
OW_API const char *ow_error_code_name(int code);
/* A one-line description of a code ("unknown key"). */
OW_API const char *ow_strerror(int code);
/* Writes "file:line:column: message" (or "file: message", or "message" when there is
 * no position) into buf, truncating safely. Returns the length it would have had. */
OW_API int ow_error_format(const ow_error *err, char *buf, size_t n);
/* Resets err to "no error" (code OW_OK, empty message). */
OW_API void ow_error_clear(ow_error *err);

/* ---------------------------------------------------------------------------------- */
/* Config trees                                                                       */
/* ---------------------------------------------------------------------------------- */

/* A config is a tree of nodes loaded from YAML (or JSON, which is YAML flow). Every
 * node remembers the file, line and column it came from. The same opaque type is used
 * for the root, which the caller owns, and for nodes inside it, which are borrowed.
 *
 * Scalars follow the YAML 1.2 core schema, not PyYAML's 1.1 rules: `1e-3` is a float
 * (PyYAML would read a string), `yes`/`no` are strings, `.inf`/`.nan` are floats,
 * `~`/`null` are null. Quoted scalars are always strings. */
typedef struct ow_cfg ow_cfg;

typedef enum ow_cfg_type {
    OW_CFG_NULL,
    OW_CFG_BOOL,
    OW_CFG_INT,
    OW_CFG_FLOAT,
    OW_CFG_STRING,
    OW_CFG_LIST,
    OW_CFG_MAP
} ow_cfg_type;

/* Loads a YAML/JSON config file and resolves its `_base_` chain (relative paths,
 * recursive; dicts merge key by key, lists and scalars are replaced, `_delete_: true`
 * replaces a dict wholesale) and `{{_base_.a.b}}` references. On success *out is a
 * tree the caller frees with ow_cfg_free(). */
OW_API int ow_cfg_load(const char *path, ow_cfg **out, ow_error *err);
/* The same for text in memory; `name` is used as the file name in positions (NULL
 * means "<string>"). `_base_` paths are resolved relative to the current directory. */
OW_API int ow_cfg_load_string(const char *text, const char *name, ow_cfg **out,
                              ow_error *err);
OW_API void ow_cfg_free(ow_cfg *cfg);
/* A deep copy of node (positions included); the caller frees it. */
OW_API int ow_cfg_copy(const ow_cfg *node, ow_cfg **out, ow_error *err);

/* Applies one override in mmengine's --cfg-options form, "a.b.c=VALUE": VALUE is read
 * as a YAML scalar or flow collection (`1e-4`, `[0.9,0.95]`, `{lr_mult: 10}`), missing
 * maps on the path are created, a digit component indexes an existing list. The tree
 * is left unchanged when this fails. */
OW_API int ow_cfg_set(ow_cfg *cfg, const char *assignment, ow_error *err);

/* Node access. A NULL node reads as OW_CFG_NULL with size 0. */
OW_API ow_cfg_type ow_cfg_get_type(const ow_cfg *node);
/* "null", "bool", "int", "float", "string", "list", "map". */
OW_API const char *ow_cfg_type_name(ow_cfg_type type);
/* Number of items of a list or entries of a map; 0 otherwise. */
OW_API size_t ow_cfg_get_size(const ow_cfg *node);
/* Item i of a list or value i of a map (borrowed), or NULL. */
OW_API const ow_cfg *ow_cfg_get_item(const ow_cfg *node, size_t i);
/* Key i of a map (borrowed), or NULL. */
OW_API const char *ow_cfg_get_key(const ow_cfg *node, size_t i);
/* Follows a dotted path of map keys and list indices ("optim_wrapper.optimizer.lr",
 * "param_scheduler.0"); NULL when any step is missing. An empty path is node itself. */
OW_API const ow_cfg *ow_cfg_find(const ow_cfg *node, const char *path);
/* Where a node came from. Borrowed file name; line/column 1-based (0 = unknown). */
OW_API const char *ow_cfg_get_file(const ow_cfg *node);
OW_API int ow_cfg_get_line(const ow_cfg *node);
OW_API int ow_cfg_get_column(const ow_cfg *node);

/* Typed reads of a scalar node, failing with the node's position and "expected X, got
 * Y" when the type does not fit. An int is accepted where a float is asked for. */
OW_API int ow_cfg_get_bool(const ow_cfg *node, bool *out, ow_error *err);
OW_API int ow_cfg_get_int(const ow_cfg *node, int64_t *out, ow_error *err);
OW_API int ow_cfg_get_double(const ow_cfg *node, double *out, ow_error *err);
/* Borrowed string. */
OW_API int ow_cfg_get_string(const ow_cfg *node, const char **out, ow_error *err);
/* A list of exactly n numbers, such as `betas: [0.9, 0.999]`. */
OW_API int ow_cfg_get_doubles(const ow_cfg *node, double *out, size_t n, ow_error *err);

/* Writes node as block YAML (print-config) or as compact JSON into a new string the
 * caller releases with ow_free(). Floats are written in their shortest round-trip form. */
OW_API int ow_cfg_save_yaml(const ow_cfg *node, char **out, ow_error *err);
OW_API int ow_cfg_save_json(const ow_cfg *node, char **out, ow_error *err);

/* Releases memory returned by the library (strings from ow_cfg_save_*, ...). */
OW_API void ow_free(void *ptr);

/* ---------------------------------------------------------------------------------- */
/* Registry                                                                           */
/* ---------------------------------------------------------------------------------- */

/* The registry maps `type:` strings to implementations, like mmengine's registries.
 * Built-in entries are static tables; run-time entries (ow_registry_add, plugins) are
 * the library's only mutable global state. Lookup takes an optional scope prefix
 * ("mmpretrain.LearningRateDecayOptimWrapperConstructor", "timm.adamw"). */

typedef enum ow_registry_kind {
    OW_KIND_OPTIMIZER,
    OW_KIND_CONSTRUCTOR,
    OW_KIND_OPTIM_WRAPPER,
    OW_KIND_SCHEDULER,
    OW_KIND_LAYER_DEPTH,
    OW_KIND__COUNT
} ow_registry_kind;

/* Value types of declared keys. */
typedef enum ow_type {
    OW_T_ANY,     /* any value, copied as written */
    OW_T_BOOL,
    OW_T_INT,
    OW_T_NUMBER,  /* int or float, kept as written (torch keeps `dampening: 0` an int) */
    OW_T_FLOAT,   /* a float; an int is accepted and converted */
    OW_T_STRING,
    OW_T_NUMLIST, /* a list of numbers (betas, milestones); `.min`/`.max` bound each item */
    OW_T_LIST,
    OW_T_MAP
} ow_type;

/* Key flags. */
#define OW_KEY_REQUIRED 0x1u /* must be given (no default) */
#define OW_KEY_NULLABLE 0x2u /* null is accepted in addition to .type */
#define OW_KEY_RANGE    0x4u /* .min/.max apply (numbers, and each item of a NUMLIST) */
#define OW_KEY_MIN_OPEN 0x8u /* the value must be strictly greater than .min */

/* One declared key of an entry, a row of its schema: `.def` is the default written as
 * YAML text ("0.9", "[0.9, 0.999]", "false", "null"), NULL when the key has none (and
 * is then absent unless given). */
typedef struct ow_key {
    const char *name;
    ow_type type;
    const char *def;
    double min, max;
    unsigned flags;
    const char *doc;
} ow_key;

typedef struct ow_model ow_model;
typedef struct ow_groups ow_groups;
typedef struct ow_entry ow_entry;

/* What a constructor gets: the optim_wrapper node, its `optimizer` node, its
 * `paramwise_cfg` node (NULL when absent), the resolved optimizer entry and the model. */
typedef struct ow_constructor_ctx {
    const ow_cfg *optim_wrapper;
    const ow_cfg *optimizer;
    const ow_cfg *paramwise_cfg;
    const ow_entry *optimizer_entry;
    const ow_model *model;
} ow_constructor_ctx;

/* A constructor fills `groups` (empty on entry) with param groups holding only the
 * keys its rules set; optwrap then fills the optimizer's settings and defaults. */
typedef struct ow_constructor_ops {
    int (*build)(const ow_constructor_ctx *ctx, ow_groups *groups, ow_error *err);
} ow_constructor_ops;

/* A registry entry: static const data owned by whoever registers it, which must stay
 * valid for as long as it is registered (for a plugin: until the process exits). */
struct ow_entry {
    int abi_version;               /* OW_ABI_VERSION */
    const char *name;              /* type string, e.g. "AdamW" */
    ow_registry_kind kind;
    const char *scope;             /* "mmengine", "mmpretrain", "timm", ... or NULL */
    const char *summary;           /* one line, for `optwrap list` */
    const ow_key *keys;            /* the accepted keys, ended by a row with name NULL */
    const char *const *aliases;    /* optional: NULL-terminated other names, or NULL */
    const void *ops;               /* kind-specific: ow_constructor_ops for constructors;
                                      optional (NULL) for schema-only entries */
};

/* Registers a run-time entry. Fails with OW_ERR_DUPLICATE when the name (or an alias)
 * already names an entry of the same kind and scope, unless force is true, in which case
 * the new entry hides the old one. */
OW_API int ow_registry_add(const ow_entry *entry, bool force, ow_error *err);
/* Finds an entry by kind and type string (with or without scope); NULL if none. */
OW_API const ow_entry *ow_registry_find(ow_registry_kind kind, const char *name);
/* Iterates every visible entry: built-ins and run-time entries, sorted by kind, then
 * name. Pass NULL to start; returns NULL after the last. */
OW_API const ow_entry *ow_registry_next(const ow_entry *prev);
/* "optimizer", "constructor", "optim_wrapper", "scheduler", "layer_depth". */
OW_API const char *ow_registry_kind_name(ow_registry_kind kind);
/* dlopens a plugin and calls its `int ow_plugin_init(ow_error *err)`. */
OW_API int ow_registry_load_plugin(const char *path, ow_error *err);

/* A plugin exports this; it registers its entries with ow_registry_add(). */
typedef int (*ow_plugin_init_fn)(ow_error *err);

/* ---------------------------------------------------------------------------------- */
/* Model trees                                                                        */
/* ---------------------------------------------------------------------------------- */

/* A model is the list of its modules in walk order (root "" first, depth-first,
 * children in definition order), each holding its direct parameters: the order in
 * which mmengine's constructors visit them. A parameter may be shared with an earlier
 * one (tied weights): it is then one tensor reached under two names. */

typedef enum ow_module_kind {
    OW_MODULE_OTHER,
    OW_MODULE_NORM,      /* BatchNorm, InstanceNorm, GroupNorm, LayerNorm and subclasses */
    OW_MODULE_CONV,      /* Conv1d/2d/3d, ConvTranspose */
    OW_MODULE_LINEAR,
    OW_MODULE_EMBEDDING
} ow_module_kind;

typedef struct ow_module_info {
    const char *name;  /* dotted full name; "" for the root */
    const char *type;  /* class name: "Conv2d", "LayerNorm", "VisionTransformer" */
    ow_module_kind kind;
    int64_t in_channels, out_channels, groups; /* conv only; 0 otherwise */
} ow_module_info;

#define OW_MAX_DIMS 8

typedef struct ow_param_info {
    const char *module;         /* full name of an added module */
    const char *name;           /* direct name ("weight") */
    int ndim;                   /* 0..OW_MAX_DIMS */
    const int64_t *shape;       /* [ndim] */
    bool requires_grad;
    float *data;                /* host-owned [numel], or NULL for a tree without data */
    float *grad;                /* host-owned [numel], or NULL (no gradient) */
    const char *shared;         /* full name of an earlier parameter this one is, or NULL;
                                   shape, data and grad are then taken from it */
} ow_param_info;

/* A read-only view of one parameter occurrence, valid until the model changes. */
typedef struct ow_param_view {
    const char *full_name;     /* "backbone.layers.0.gn.weight"; "logit_scale" at root */
    const char *module;        /* owning module's full name */
    const char *name;          /* direct name */
    const ow_module_info *module_info;
    int ndim;
    const int64_t *shape;
    int64_t numel;
    bool requires_grad;
    size_t tensor;             /* index of the distinct tensor; equal for shared params */
    bool is_shared;            /* a later occurrence of an earlier tensor */
    float *data, *grad;
} ow_param_view;

OW_API int ow_model_new(const char *name, ow_model **out, ow_error *err);
OW_API void ow_model_free(ow_model *model);
/* Adds a module after all earlier ones. Its parent (the name up to the last dot, "" for
 * a top-level name) must already exist, and the name must be new. */
OW_API int ow_model_add_module(ow_model *model, const ow_module_info *info, ow_error *err);
/* Adds a direct parameter to an existing module. */
OW_API int ow_model_add_param(ow_model *model, const ow_param_info *info, ow_error *err);
/* Sets the host's data and grad pointers of a distinct tensor (found by any of its
 * names); either may be NULL. */
OW_API int ow_model_set_data(ow_model *model, const char *full_name, float *data,
                             float *grad, ow_error *err);

/* Loads and saves the optwrap-model/1 YAML format (see MODEL-FORMAT.md). */
OW_API int ow_model_load(const char *path, ow_model **out, ow_error *err);
OW_API int ow_model_load_string(const char *text, const char *name, ow_model **out,
                                ow_error *err);
OW_API int ow_model_save(const ow_model *model, char **out, ow_error *err);

OW_API const char *ow_model_get_name(const ow_model *model);
OW_API size_t ow_model_get_num_modules(const ow_model *model);
OW_API const ow_module_info *ow_model_get_module(const ow_model *model, size_t i);
/* Parameter occurrences in walk order, shared ones included (their is_shared set). */
OW_API size_t ow_model_get_num_params(const ow_model *model);
OW_API int ow_model_get_param(const ow_model *model, size_t i, ow_param_view *out);
/* Distinct tensors (first occurrences), and total elements over them. */
OW_API size_t ow_model_get_num_tensors(const ow_model *model);
OW_API int64_t ow_model_get_numel(const ow_model *model);
/* The model-level list `no_weight_decay` (timm), borrowed; NULL when absent. */
OW_API const ow_cfg *ow_model_get_facts(const ow_model *model, const char *key);
/* Index of the occurrence with this full name, or -1. */
OW_API long ow_model_find_param(const ow_model *model, const char *full_name);

/* ---------------------------------------------------------------------------------- */
/* Param groups                                                                       */
/* ---------------------------------------------------------------------------------- */

/* Param groups as torch fills optimizer.param_groups: each holds parameter occurrences
 * and an ordered map of hyperparameters (the keys the constructor's rules set, then the
 * optimizer config's, then the optimizer's defaults). */

/* Builds the groups for an `optim_wrapper` config node: validates the node, resolves
 * the optimizer and constructor types, runs the constructor and fills defaults. */
OW_API int ow_groups_build(const ow_cfg *optim_wrapper, const ow_model *model,
                           ow_groups **out, ow_error *err);
OW_API void ow_groups_free(ow_groups *groups);

/* For constructors: appends an empty group and returns its index in *index. */
OW_API int ow_groups_add(ow_groups *groups, size_t *index, ow_error *err);
/* Appends parameter occurrence `param` (a model index) to group `group`. */
OW_API int ow_groups_add_param(ow_groups *groups, size_t group, size_t param,
                               ow_error *err);
/* Sets a hyperparameter of a group, replacing any earlier value in place (its position
 * is kept) or appending it. set_value copies `value`. */
OW_API int ow_groups_set_double(ow_groups *groups, size_t group, const char *key,
                                double value, ow_error *err);
OW_API int ow_groups_set_int(ow_groups *groups, size_t group, const char *key,
                             int64_t value, ow_error *err);
OW_API int ow_groups_set_string(ow_groups *groups, size_t group, const char *key,
                                const char *value, ow_error *err);
OW_API int ow_groups_set_value(ow_groups *groups, size_t group, const char *key,
                               const ow_cfg *value, ow_error *err);

OW_API size_t ow_groups_get_count(const ow_groups *groups);
OW_API size_t ow_groups_get_num_params(const ow_groups *groups, size_t group);
/* Model occurrence index of the j-th parameter of a group. */
OW_API size_t ow_groups_get_param(const ow_groups *groups, size_t group, size_t j);
/* The hyperparameters of a group as an ordered map (borrowed). */
OW_API const ow_cfg *ow_groups_get_options(const ow_groups *groups, size_t group);
/* The model the groups were built for (borrowed). */
OW_API const ow_model *ow_groups_get_model(const ow_groups *groups);
/* Writes {"groups": [{"params": [names], key: value, ...}, ...]} into a new string. */
OW_API int ow_groups_save_json(const ow_groups *groups, char **out, ow_error *err);

/* ---------------------------------------------------------------------------------- */
/* Intended usage                                                                     */
/* ---------------------------------------------------------------------------------- */
/*
 *     ow_error err;
 *     ow_cfg *cfg = NULL;
 *     ow_model *model = NULL;
 *     ow_groups *groups = NULL;
 *     if (ow_cfg_load("configs/resnet50_sgd.yaml", &cfg, &err) ||
 *         ow_cfg_set(cfg, "optim_wrapper.optimizer.lr=0.2", &err) ||
 *         ow_model_load("resnet50.yaml", &model, &err) ||
 *         ow_groups_build(ow_cfg_find(cfg, "optim_wrapper"), model, &groups, &err)) {
 *         char msg[1024];
 *         ow_error_format(&err, msg, sizeof msg);
 *         fprintf(stderr, "%s\n", msg);
 *     } else {
 *         printf("%zu groups\n", ow_groups_get_count(groups));
 *     }
 *     ow_groups_free(groups);
 *     ow_model_free(model);
 *     ow_cfg_free(cfg);
 */

#ifdef __cplusplus
}
#endif

#endif /* OPTWRAP_H */
