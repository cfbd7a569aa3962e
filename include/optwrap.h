/* optwrap.h -- build neural-network optimizers from mmengine/timm-style YAML configs.
 * The one installed header of liboptwrap: configs, the registry, model trees and
 * param groups. Everything here is prefixed ow_; nothing else is exported.
 *
 * Conventions, stated once:
 * - Every fallible call returns OW_OK (0) or an OW_ERR_* code, and stores the same code,
 *   a message and, where there is one, the file:line:column of the offending config node
 *   in a caller-owned ow_error (which may be NULL). Each such call resets the error on
 *   entry, so it needs no initialising and always describes the last call (see ow_error).
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
/* Version of the registry entry layout; plugins set ow_entry.abi_version to it, and an
 * entry of another version is refused. History: 2 added ow_key.len (a plugin built
 * against 1 has shorter key rows and must be rebuilt); 3 reworked ow_optimizer_ops
 * (optwrap-plugin.h): hyperparameters by name, a pass table, per-tensor planning. */
#define OW_ABI_VERSION 3

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
 * 0 means "no position". file is a path, or "<string>", "<cfg-options>", "<model>".
 *
 * The rule (jansson's): every function that takes an ow_error * resets it on entry,
 * whatever it held before, so `ow_error err;` needs no initialiser, and after a call it
 * holds OW_OK (the call succeeded) or the error of that call, never an earlier one.
 * Within one call the innermost cause is kept (the first error stored while unwinding
 * wins). A caller that goes on after a failure must read or copy the error before its
 * next call. */
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
/* Resets err to "no error" (code OW_OK, empty message); functions taking an ow_error do
 * this themselves on entry. */
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
 * tree the caller frees with ow_cfg_free(). As in mmengine, `{{ fileDirname }}`,
 * `{{ fileBasename }}`, `{{ fileBasenameNoExtension }}`, `{{ fileExtname }}` and
 * `{{$ENV_NAME:default}}` are expanded, top-level keys starting with `__` are dropped
 * and `filename`, `text`, `pretty_text`, `env_variables` are reserved; `_delete_` keys
 * never remain; Python (.py) configs and bases are rejected. */
OW_API int ow_cfg_load(const char *path, ow_cfg **out, ow_error *err);
/* The same for text in memory; `name` is used as the file name in positions (NULL
 * means "<string>"). `_base_` paths are resolved relative to the current directory. */
OW_API int ow_cfg_load_string(const char *text, const char *name, ow_cfg **out,
                              ow_error *err);

/* Limits on what a load reads, so that a hostile or broken file fails with a clear
 * error instead of exhausting memory, the stack or time. Every load applies them:
 * ow_cfg_load / ow_model_load / ow_trajectory_load with the defaults, the *_with_limits
 * variants with the caller's (NULL, or a field left 0, means the default). A limit that
 * is hit fails with its name in the message; raise it to read a bigger input. */
typedef struct ow_limits {
    /* Largest file read, in bytes (a config, each of its _base_ files, a model tree, a
     * golden trajectory): default 256 MiB, larger fails with OW_ERR_IO. Only regular
     * files are read: FIFOs, devices and folders fail with OW_ERR_IO "not a regular
     * file", without blocking. */
    size_t max_file_bytes;
    /* Config nodes that YAML aliases (`*name`) may copy in one file: default 1,000,000
     * (ten thousand times any real config). Nested aliases grow exponentially ("billion
     * laughs": 520 bytes that expand to 13 GB); past the budget the alias that crosses it
     * fails with OW_ERR_SYNTAX at its file:line:column. */
    size_t max_alias_nodes;
    /* Deepest nesting of YAML lists and maps, aliases' copies included: default 1,000
     * (mmengine configs stay under 15). Deeper fails with OW_ERR_SYNTAX at the list or
     * map (or alias) that goes past it. Readers recurse once per level: a limit
     * raised far past the default needs a bigger stack. */
    size_t max_depth;
} ow_limits;

/* The default limits, as stated above. */
OW_API ow_limits ow_limits_defaults(void);
/* ow_cfg_load and ow_cfg_load_string within limits (NULL: the defaults). */
OW_API int ow_cfg_load_with_limits(const char *path, const ow_limits *limits,
                                   ow_cfg **out, ow_error *err);
OW_API int ow_cfg_load_string_with_limits(const char *text, const char *name,
                                          const ow_limits *limits, ow_cfg **out,
                                          ow_error *err);
OW_API void ow_cfg_free(ow_cfg *cfg);
/* A new empty map, for building a config in code; the caller frees it. */
OW_API int ow_cfg_new(ow_cfg **out, ow_error *err);
/* Stores a deep copy of value (positions included) at a dotted path of map keys under
 * map, creating missing maps; an existing value there is replaced. */
OW_API int ow_cfg_set_node(ow_cfg *map, const char *path, const ow_cfg *value,
                           ow_error *err);
/* A deep copy of node (positions included); the caller frees it. */
OW_API int ow_cfg_copy(const ow_cfg *node, ow_cfg **out, ow_error *err);

/* Validates a whole config without a model, the one verdict `optwrap check`, `groups`,
 * `schedule`, `train` and ow_optim_wrapper_new share: `default_scope` and
 * `custom_imports` (plugins loaded first), `optim_wrapper` (every `type` known to the
 * registry, every key declared, values of the right type, length and range, the
 * optimizer's own rules across keys such as Nesterov's, custom_keys), `train_cfg`,
 * `val_cfg`, `test_cfg` (the keys of mmengine's loop types: EpochBasedTrainLoop,
 * IterBasedTrainLoop or `by_epoch`, ValLoop, TestLoop; another loop type is not
 * checked) and `param_scheduler` (as ow_sched_check). Other top-level keys (model,
 * data, ...) are not looked at. */
OW_API int ow_cfg_check(const ow_cfg *config, ow_error *err);

/* Applies one override in mmengine's --cfg-options form, "a.b.c=VALUE": VALUE is read
 * as a YAML scalar or flow collection (`1e-4`, `[0.9,0.95]`, `{lr_mult: 10}`), missing
 * maps on the path are created, a digit component indexes an existing list. The tree
 * is left unchanged when this fails. Nodes it adds are positioned at file
 * "<cfg-options>", line 1, and the 1-based column in `assignment` where the value (for
 * a created map: its key) starts. */
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

/* Reads with a default, for the common host read:
 *     int64_t epochs;
 *     rc = ow_cfg_get_int_or(cfg, "train_cfg.max_epochs", 30, &epochs, &err);
 * *out gets def when the dotted path (as ow_cfg_find) leads to no node, the node's value
 * when it has the type; a node of another type (null included) fails with OW_ERR_TYPE at
 * its position, naming the path: "train_cfg.max_epochs: expected int, got string". An
 * int is accepted where a float is asked for. The string is borrowed from cfg (or is
 * def). */
OW_API int ow_cfg_get_bool_or(const ow_cfg *cfg, const char *path, bool def, bool *out,
                              ow_error *err);
OW_API int ow_cfg_get_int_or(const ow_cfg *cfg, const char *path, int64_t def,
                             int64_t *out, ow_error *err);
OW_API int ow_cfg_get_double_or(const ow_cfg *cfg, const char *path, double def,
                                double *out, ow_error *err);
OW_API int ow_cfg_get_string_or(const ow_cfg *cfg, const char *path, const char *def,
                                const char **out, ow_error *err);

/* Writes node as block YAML (print-config) or as compact JSON into a new string the
 * caller releases with ow_free(). Floats are written in their shortest round-trip form.
 */
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
    OW_T_ANY, /* any value, copied as written */
    OW_T_BOOL,
    OW_T_INT,
    OW_T_NUMBER, /* int or float, kept as written (torch keeps `dampening: 0` an int) */
    OW_T_FLOAT,  /* a float; an int is accepted and converted */
    OW_T_STRING,
    OW_T_NUMLIST, /* a list of numbers (betas, milestones); `.min`/`.max` bound each item
                   */
    OW_T_LIST,
    OW_T_MAP
} ow_type;

/* Key flags. */
#define OW_KEY_REQUIRED 0x1u  /* must be given (no default) */
#define OW_KEY_NULLABLE 0x2u  /* null is accepted in addition to .type */
#define OW_KEY_RANGE    0x4u  /* .min/.max apply (numbers, and each item of a NUMLIST) */
#define OW_KEY_MIN_OPEN 0x8u  /* the value must be strictly greater than .min */
#define OW_KEY_MAX_OPEN 0x10u /* the value must be strictly less than .max */
#define OW_KEY_IGNORED                                                                   \
    0x20u /* accepted and changes nothing on a CPU (torch's foreach,                     \
             capturable, differentiable, fused switches) */
#define OW_KEY_OPTIONAL                                                                  \
    0x40u /* optwrap's own addition to a reference's keys (state_dtype): param groups    \
             hold it only where given, so they stay the reference's; when absent the     \
             optimizer sees its default, or null without one */

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
    /* OW_T_NUMLIST and OW_T_LIST: the number of items the value must have (betas: 2);
     * 0 means any number. Added in ABI version 2, last so that rows written with
     * designated initializers need no change. */
    size_t len;
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

/* A layer-depth provider (kind OW_KIND_LAYER_DEPTH) is mmpretrain's `get_layer_depth` for
 * one family of backbones: LearningRateDecayOptimWrapperConstructor picks it by the
 * class name of the model's root, else of its `backbone` module (entry name or alias),
 * or by `paramwise_cfg.layer_depth.type`, and asks it for every parameter's layer id. */
typedef struct ow_layer_depth_args {
    const ow_model *model;
    const char *backbone; /* the backbone module's full name: "backbone", or "" (root) */
    const char *prefix;   /* what get_layer_depth strips: "backbone." or "" */
    const ow_cfg *cfg;    /* paramwise_cfg.layer_depth (a map) when given, else NULL */
    const ow_cfg *where;  /* the config node errors and warnings point at */
    ow_groups *groups;    /* for ow_groups_add_warning (a reference quirk reproduced) */
} ow_layer_depth_args;

typedef struct ow_layer_depth_ops {
    int abi_version; /* OW_ABI_VERSION */
    /* Reads what get_layer_depth reads from the backbone (its layer counts, from the
     * tree) into a new *state, released by free; fails with a positioned error (code
     * OW_ERR_UNSUPPORTED) for a backbone the reference cannot handle. */
    int (*prepare)(const ow_layer_depth_args *a, void **state, ow_error *err);
    /* get_layer_depth for a full parameter name ("backbone.layers.3.ln1.weight"): its
     * layer id and the number of layers (scale = rate ** (num_layers - layer_id - 1)). */
    int (*get)(const void *state, const char *name, int64_t *layer_id,
               int64_t *num_layers, ow_error *err);
    void (*free)(void *state); /* optional: NULL when prepare allocates nothing */
} ow_layer_depth_ops;

/* A registry entry: static const data owned by whoever registers it, which must stay
 * valid for as long as it is registered (for a plugin: until the process exits). */
struct ow_entry {
    int abi_version;  /* OW_ABI_VERSION */
    const char *name; /* type string, e.g. "AdamW" */
    ow_registry_kind kind;
    const char *scope;          /* "mmengine", "mmpretrain", "timm", ... or NULL */
    const char *summary;        /* one line, for `optwrap list` */
    const ow_key *keys;         /* the accepted keys, ended by a row with name NULL */
    const char *const *aliases; /* optional: NULL-terminated other names, or NULL */
    const void *ops;            /* kind-specific: ow_constructor_ops for constructors;
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

/* Type strings a reference registers that optwrap refuses (timm's bitsandbytes names):
 * the reason, or NULL when name is not one. Asking for one in a config is an error
 * (OW_ERR_UNSUPPORTED) with this reason. */
OW_API const char *ow_registry_refusal(ow_registry_kind kind, const char *name);
/* The i-th refused type string of a kind ("timm.bnbadam8bit"), written to buf; NULL past
 * the end. */
OW_API const char *ow_registry_refused(ow_registry_kind kind, size_t i, char *buf,
                                       size_t n);

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
    OW_MODULE_NORM, /* BatchNorm, InstanceNorm, GroupNorm, LayerNorm and subclasses */
    OW_MODULE_CONV, /* Conv1d/2d/3d, ConvTranspose */
    OW_MODULE_LINEAR,
    OW_MODULE_EMBEDDING
} ow_module_kind;

typedef struct ow_module_info {
    const char *name; /* dotted full name; "" for the root */
    const char *type; /* class name: "Conv2d", "LayerNorm", "VisionTransformer" */
    ow_module_kind kind;
    int64_t in_channels, out_channels, groups; /* conv only; 0 otherwise */
} ow_module_info;

#define OW_MAX_DIMS 8

typedef struct ow_param_info {
    const char *module;   /* full name of an added module */
    const char *name;     /* direct name ("weight") */
    int ndim;             /* 0..OW_MAX_DIMS */
    const int64_t *shape; /* [ndim] */
    bool requires_grad;
    float *data;        /* host-owned [numel], or NULL for a tree without data */
    float *grad;        /* host-owned [numel], or NULL (no gradient) */
    const char *shared; /* full name of an earlier parameter this one is, or NULL;
                           shape, data and grad are then taken from it (ndim 0
                           and shape NULL: not checked; data, grad NULL or the
                           same), requires_grad must be the tensor's */
} ow_param_info;

/* A read-only view of one parameter occurrence, valid until the model changes. */
typedef struct ow_param_view {
    const char *full_name; /* "backbone.layers.0.gn.weight"; "logit_scale" at root */
    const char *module;    /* owning module's full name */
    const char *name;      /* direct name */
    const ow_module_info *module_info;
    int ndim;
    const int64_t *shape;
    int64_t numel;
    bool requires_grad;
    size_t tensor;  /* index of the distinct tensor; equal for shared params */
    bool is_shared; /* a later occurrence of an earlier tensor */
    float *data, *grad;
} ow_param_view;

OW_API int ow_model_new(const char *name, ow_model **out, ow_error *err);
OW_API void ow_model_free(ow_model *model);
/* Adds a module after all earlier ones; the name must be new. Missing ancestors are
 * created first, as `mkdir -p` does: adding "h.0.attn" to an empty model adds the root
 * "", "h" and "h.0" as plain modules (type "Module", kind other), each of which a later
 * add of the same name describes in place (once), keeping its position.
 * kind OW_MODULE_OTHER (0, what a zeroed info holds) follows the type for torch's own
 * classes, which mmengine's constructors test with isinstance: LayerNorm, GroupNorm,
 * BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm1d/2d/3d are norm; Conv1d/2d/3d,
 * ConvTranspose1d/2d/3d conv; Linear linear; Embedding embedding ("nn." or "torch.nn."
 * prefixes allowed). Another kind given for one of them is kept, with a warning
 * (ow_model_get_warning). A subclass with another name (mmpretrain's LayerNorm2d) needs
 * its kind given. */
OW_API int ow_model_add_module(ow_model *model, const ow_module_info *info,
                               ow_error *err);
/* Adds a direct parameter to an existing module. */
OW_API int ow_model_add_param(ow_model *model, const ow_param_info *info, ow_error *err);
/* Sets the host's data and grad pointers of a distinct tensor (found by any of its
 * names); either may be NULL. */
OW_API int ow_model_set_data(ow_model *model, const char *full_name, float *data,
                             float *grad, ow_error *err);

/* The same by parameter occurrence index (walk order, as ow_model_get_param): sets the
 * pointers of that occurrence's tensor. OW_ERR_MISUSE for an index out of range,
 * OW_ERR_MODEL when data and grad overlap. */
OW_API int ow_model_set_data_at(ow_model *model, size_t index, float *data, float *grad,
                                ow_error *err);

/* Hosts whose gradients are half precision: the gradient of occurrence index's tensor is
 * numel uint16_t values of dtype (OW_GRAD_BF16 or OW_GRAD_F16) the host owns. The
 * optimizer's element kernels read them one work unit at a time through a small float32
 * buffer per thread (no float32 copy of the whole gradient; a per-tensor step such as
 * Muon's or AdEMAMix's gets its tensor converted); a step gives the parameters a step
 * over the gradients converted to float32 first would give, bit for bit.
 * ow_model_set_data (_at, ow_model_set_buffers) sets a float32 gradient again. An
 * OptimWrapper takes them where its config says `grad_dtype: bfloat16` (or float16):
 * it checks and clips them as their float32 values, the optimizer unscales and clips
 * them as it reads them, and the wrapper zeroes them in place (an AmpOptimWrapper with
 * `dtype` binds half parameters and gradients with ow_optim_wrapper_bind_half). */
typedef enum ow_grad_dtype { OW_GRAD_F32, OW_GRAD_BF16, OW_GRAD_F16 } ow_grad_dtype;
OW_API int ow_model_set_grad_half(ow_model *model, size_t index, void *grad,
                                  ow_grad_dtype dtype, ow_error *err);

/* Warnings about the tree: things accepted but rarely meant (a LayerNorm given another
 * kind). Each has code OW_ERR_MODEL, a message, and for a model file the position of
 * the node; borrowed, valid until the model changes or is freed. */
OW_API size_t ow_model_get_num_warnings(const ow_model *model);
OW_API const ow_error *ow_model_get_warning(const ow_model *model, size_t i);

/* Sets the data and grad pointers of every distinct tensor at once from two contiguous
 * buffers of numel floats each (llm.c keeps every parameter in one allocation), the
 * tensors laid out in walk order (ow_model_get_param, shared occurrences skipped).
 * numel must be the model's element count (ow_model_get_numel) and the two buffers must
 * not overlap; either may be NULL (that pointer is cleared). */
OW_API int ow_model_set_buffers(ow_model *model, float *data, float *grad, size_t numel,
                                ow_error *err);

/* Loads and saves the optwrap-model/1 YAML format (see docs/model-format.md). */
OW_API int ow_model_load(const char *path, ow_model **out, ow_error *err);
OW_API int ow_model_load_string(const char *text, const char *name, ow_model **out,
                                ow_error *err);
/* The same within limits (NULL: the defaults, see ow_limits). */
OW_API int ow_model_load_with_limits(const char *path, const ow_limits *limits,
                                     ow_model **out, ow_error *err);
OW_API int ow_model_load_string_with_limits(const char *text, const char *name,
                                            const ow_limits *limits, ow_model **out,
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
/* A model-level fact by top-level key of the model file (`no_weight_decay`,
 * `group_matcher`, ...), borrowed; NULL when absent. key NULL gives the map of all. */
OW_API const ow_cfg *ow_model_get_facts(const ow_model *model, const char *key);
/* Index of the occurrence with this full name, or -1. */
OW_API long ow_model_find_param(const ow_model *model, const char *full_name);

/* Built-in architectures: the tree of a standard model, module by module as the
 * reference builds it. mmpretrain classifiers go by their config names ("vit-base-p16",
 * "deit-tiny", "swin-tiny", "resnet50", ...), timm models by "timm/" and timm's model
 * name ("timm/vit_base_patch16_224"); timm models carry the no_weight_decay and
 * group_matcher facts timm reads from the model. The model is named like the golden
 * files ("mmpretrain_resnet50", "timm_resnet50"). An unknown name fails with
 * OW_ERR_UNKNOWN_TYPE and the closest name. *out is owned by the caller
 * (ow_model_free). */
OW_API int ow_model_new_arch(const char *arch, ow_model **out, ow_error *err);
/* The i-th built-in architecture name, or NULL past the end. */
OW_API const char *ow_model_get_arch(size_t i);

/* ---------------------------------------------------------------------------------- */
/* Param groups                                                                       */
/* ---------------------------------------------------------------------------------- */

/* Param groups as torch fills optimizer.param_groups: each holds parameter occurrences
 * and an ordered map of hyperparameters (the keys the constructor's rules set, then the
 * optimizer config's, then the optimizer's defaults). */

/* Builds the groups for a whole config: reads its `optim_wrapper` (and `default_scope`,
 * `custom_imports`, which loads plugins), validates the wrapper, optimizer and
 * paramwise_cfg against their registry entries, runs the constructor and fills each
 * group's missing hyperparameters from the optimizer config, then from the optimizer's
 * defaults. *out is owned by the caller; it borrows model, which must outlive it. */
OW_API int ow_groups_build(const ow_cfg *config, const ow_model *model, ow_groups **out,
                           ow_error *err);
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
/* Why a group got its settings, in words ("custom key 'head'", "norm: norm_decay_mult"),
 * as the constructor recorded it; "" when it recorded nothing. Borrowed. */
OW_API const char *ow_groups_get_reason(const ow_groups *groups, size_t group);
/* For constructors: records the reason shown by ow_groups_get_reason (copied). */
OW_API int ow_groups_set_reason(ow_groups *groups, size_t group, const char *reason,
                                ow_error *err);
/* Warnings the constructor raised: things that are legal but rarely meant (a custom key
 * that matches no parameter, a reference quirk being reproduced). Each is a formatted
 * "file:line:column: message" line, borrowed. */
OW_API size_t ow_groups_get_num_warnings(const ow_groups *groups);
OW_API const char *ow_groups_get_warning(const ow_groups *groups, size_t i);
/* For constructors: records a warning at a config node's position (node may be NULL). */
OW_API int ow_groups_add_warning(ow_groups *groups, const ow_cfg *node,
                                 const char *message, ow_error *err);
/* The model the groups were built for (borrowed). */
OW_API const ow_model *ow_groups_get_model(const ow_groups *groups);
/* Writes {"groups": [{"params": [names], key: value, ...}, ...]} into a new string. */
OW_API int ow_groups_save_json(const ow_groups *groups, char **out, ow_error *err);
/* For constructors: records why one parameter occurrence (a model index) got its
 * settings, or why it is in no group, when its group's reason cannot say it (merged
 * groups, parameters left out); copied. */
OW_API int ow_groups_set_param_reason(ow_groups *groups, size_t param, const char *reason,
                                      ow_error *err);
/* The reason recorded for a parameter occurrence, "" when none (its group's reason
 * applies). Borrowed. */
OW_API const char *ow_groups_get_param_reason(const ow_groups *groups, size_t param);
/* The lr a group's parameters step with before any schedule: its `lr` times its
 * `lr_scale` where the optimizer applies lr_scale (groups of TimmOptimWrapperConstructor:
 * timm's layer decay, which timm leaves to its schedulers), else its `lr` (mmpretrain
 * and mmseg fold lr_scale into lr already). OW_ERR_VALUE when the group has no numeric
 * lr. */
OW_API int ow_groups_get_effective_lr(const ow_groups *groups, size_t group, double *out,
                                      ow_error *err);

/* ---------------------------------------------------------------------------------- */
/* Optimizers                                                                         */
/* ---------------------------------------------------------------------------------- */

/* An optimizer steps the parameters of param groups: the registry entry the groups'
 * config named (ow_groups_build), with each group's hyperparameters. One step runs over
 * all parameters of all groups as one multi-tensor pass, split into contiguous chunks
 * over threads, with SIMD kernels chosen for the CPU at run time. Each parameter's
 * state (exp_avg, step, ...) is created at its first step with a gradient, as torch
 * does, and saved with torch's state key names. */
typedef struct ow_optimizer ow_optimizer;

/* Makes the optimizer of the groups' optimizer entry. It borrows groups (and through
 * them the model): both must outlive it. The hyperparameters are copied: from then on
 * the optimizer holds each group's current values; change them with ow_optimizer_set_*
 * or a schedule on ow_optimizer_sched_target_new, not in the groups. Fails with
 * OW_ERR_UNSUPPORTED for an entry without kernels. The thread count starts as the
 * OW_NUM_THREADS environment variable, else the machine's (OpenMP) count. */
OW_API int ow_optimizer_new(const ow_groups *groups, ow_optimizer **out, ow_error *err);
OW_API void ow_optimizer_free(ow_optimizer *opt);

/* One step over every parameter that requires a gradient and whose grad pointer is set
 * (ow_model_set_data); the others are skipped as torch skips them, and frozen ones never
 * move. The lr used is the group's `lr` times its `lr_scale` for groups built by
 * TimmOptimWrapperConstructor (timm's layer decay, see ow_groups_get_effective_lr):
 * schedulers write the unscaled lr there. Elsewhere (mmpretrain, mmseg) lr_scale is
 * already folded into lr and the optimizer uses `lr` as it is. Gradients are read, never
 * written. On failure (OW_ERR_NOMEM creating state) nothing has moved. */
OW_API int ow_optimizer_step(ow_optimizer *opt, ow_error *err);

/* The registry entry it runs (borrowed). */
OW_API const ow_entry *ow_optimizer_get_entry(const ow_optimizer *opt);
OW_API size_t ow_optimizer_get_num_groups(const ow_optimizer *opt);
/* A group's hyperparameters as an ordered map (borrowed; valid until the next set or
 * load). */
OW_API const ow_cfg *ow_optimizer_get_options(const ow_optimizer *opt, size_t group);
/* The lr group's parameters step with next: its `lr` times its `lr_scale` where the
 * optimizer applies lr_scale (see ow_optimizer_step); NAN for a bad index or a null lr.
 */
OW_API double ow_optimizer_get_lr(const ow_optimizer *opt, size_t group);
/* Reads a numeric hyperparameter of a group ("lr", "momentum", "lr_scale"). */
OW_API int ow_optimizer_get_double(const ow_optimizer *opt, size_t group, const char *key,
                                   double *out, ow_error *err);
/* Sets a hyperparameter of a group between steps, checked against the optimizer's key
 * schema (type, range, and cross-key rules such as Nesterov's); on failure nothing
 * changes. Keys outside the schema may be set only if the group already has them
 * (lr_scale, initial_lr). set_value copies value (lists such as betas). */
OW_API int ow_optimizer_set_double(ow_optimizer *opt, size_t group, const char *key,
                                   double value, ow_error *err);
OW_API int ow_optimizer_set_value(ow_optimizer *opt, size_t group, const char *key,
                                  const ow_cfg *value, ow_error *err);

/* Threads used by a step; n <= 0 restores the default (OW_NUM_THREADS, else the
 * machine's). Small steps run on one thread whatever this says. */
OW_API int ow_optimizer_set_threads(ow_optimizer *opt, int n, ow_error *err);
OW_API int ow_optimizer_get_threads(const ow_optimizer *opt);

/* The bytes of state the optimizer holds now (every tensor's slots as stored: float32,
 * bf16 or 8-bit codes with their absmax and maps; scalar slots as doubles); 0 before the
 * first step with a gradient creates it. */
OW_API size_t ow_optimizer_get_state_bytes(const ow_optimizer *opt);

/* Writes the whole state (every slot of every parameter, step counts, each group's
 * hyperparameters) as safetensors: tensors "state.<i>.<key>" with torch's keys and
 * parameter indices i in param_groups order, and JSON metadata "param_groups",
 * "param_names", "param_shapes", "optimizer", "format" = "optwrap-optimizer/1" and
 * "checksums" (a CRC-32 of the metadata and of every tensor). The file is written to a
 * new temporary beside path (mode 0666 less the umask), fsync'd, renamed over path, and
 * the folder fsync'd. A whole run (wrapper, schedule, parameters) is checkpointed with
 * ow_optim_wrapper_save instead. */
OW_API int ow_optimizer_save(const ow_optimizer *opt, const char *path, ow_error *err);
/* Reads a file written by ow_optimizer_save into an optimizer over the same parameters
 * (names and shapes) and optimizer type; a truncated, corrupt or mismatched file fails
 * with OW_ERR_STATE (OW_ERR_IO when unreadable) and leaves opt untouched. Stepping after
 * a load continues bit for bit as if the optimizer had never stopped. */
OW_API int ow_optimizer_load(ow_optimizer *opt, const char *path, ow_error *err);
/* What the last successful load (ow_optimizer_load, or a checkpoint through
 * ow_optim_wrapper_load) noted, one line each, for the host to show: a state saved with
 * another `state_dtype` is converted into the optimizer's (the moments decoded to
 * float32 and stored as the optimizer stores them; the storage keys state_dtype and
 * stochastic_rounding stay the optimizer's) and noted as "PATH: param group G: state
 * saved with state_dtype int8, converted to float32". NULL past the end. */
OW_API size_t ow_optimizer_get_num_notes(const ow_optimizer *opt);
OW_API const char *ow_optimizer_get_note(const ow_optimizer *opt, size_t i);

/* Usage, with groups from ow_groups_build() over a model whose grad pointers the host
 * fills every iteration:
 *
 *     ow_optimizer *opt = NULL;
 *     if (ow_optimizer_new(groups, &opt, &err) == OW_OK) {
 *         for (int it = 0; it < iters; it++) {
 *             forward_backward(model_data, grads);           (the host's work)
 *             ow_optimizer_set_double(opt, 0, "lr", lr_at(it), &err);
 *             ow_optimizer_step(opt, &err);
 *         }
 *         ow_optimizer_save(opt, "work_dir/optimizer.safetensors", &err);
 *     }
 *     ow_optimizer_free(opt);
 */

/* ---- randomness and second-order inputs ---------------------------------------------
 * Some optimizers draw random numbers (Kron's probe vectors and update-probability
 * draws, Adahessian's Rademacher vectors) or need Hessian-vector products (Adahessian).
 * Both come from the host: by default draws come from a built-in generator seeded with
 * ow_optimizer_set_seed (the same stream whatever the thread count); a host that wants
 * torch's or a recorded stream (optwrap replay does) sets its own. */
typedef enum ow_rng_kind {
    OW_RNG_NORMAL,    /* standard normal (torch.randn) */
    OW_RNG_UNIFORM,   /* uniform in [0, 1) (torch.rand; python random.random) */
    OW_RNG_RADEMACHER /* +1 or -1 with equal odds */
} ow_rng_kind;
/* Fills out[n] with draws of kind for parameter `param` (its index in param_groups
 * order; (size_t)-1 for a draw of the optimizer itself, such as python random.random()),
 * in the order the optimizer asks. Tensor draws are used as float32 (torch's). */
typedef void (*ow_rng_fn)(void *user, ow_rng_kind kind, size_t param, double *out,
                          size_t n);
OW_API void ow_optimizer_set_rng(ow_optimizer *opt, ow_rng_fn fn, void *user);
OW_API void ow_optimizer_set_seed(ow_optimizer *opt, uint64_t seed);
/* Hessian-vector products: for the n parameters params[k] (param_groups indices) and
 * vectors v[k] of their sizes, writes (H v)[k] into out[k], H the Hessian of the loss
 * of the step in progress over all of them. Returns OW_OK or an error code (the step
 * then fails and nothing moves). */
typedef int (*ow_hvp_fn)(void *user, size_t n, const size_t *params,
                         const float *const *v, float *const *out);
OW_API void ow_optimizer_set_hvp(ow_optimizer *opt, ow_hvp_fn fn, void *user);

/* Writing an optimizer of one's own (a plugin's) is described in optwrap-plugin.h. */

/* ---- reference trajectories ----------------------------------------------------------
 * A golden `optimizer_trajectory` file (recorded gradients and the parameters torch,
 * timm or composer produced from them) replayed through optwrap: the optimizer is built
 * from the file's name (`timm.` for timm names, `torch.optim.X` as X, `composer.X` as X),
 * defaults and group overrides; each step feeds the recorded gradients and compares the
 * parameters with the recorded ones. */
typedef struct ow_trajectory ow_trajectory;

typedef struct ow_trajectory_stats {
    int steps;          /* steps run so far */
    double max_abs_err; /* over every parameter element of every step run */
    double max_rel_err; /* |x - ref| / max(|ref|, RMS of ref's tensor) */
    uint64_t max_ulp;   /* float32 units in the last place */
    double tolerance;   /* what the optimizer is held to (0: bit for bit) */
    bool passed; /* max_ulp == 0 when tolerance is 0, else max_rel_err <= tolerance */
} ow_trajectory_stats;

/* Loads a trajectory file and builds its model, groups and optimizer. A name optwrap does
 * not implement fails with OW_ERR_UNSUPPORTED. */
OW_API int ow_trajectory_load(const char *path, ow_trajectory **out, ow_error *err);
/* The same from a golden file already loaded (copied; golden stays the caller's). */
OW_API int ow_trajectory_new(const ow_cfg *golden, ow_trajectory **out, ow_error *err);
OW_API void ow_trajectory_free(ow_trajectory *traj);
/* Runs the next recorded step; OW_ERR_MISUSE after the last one. */
OW_API int ow_trajectory_step(ow_trajectory *traj, ow_error *err);
OW_API int ow_trajectory_get_num_steps(const ow_trajectory *traj);
/* The optimizer (to set threads) and the model (parameter values via
 * ow_model_get_param), borrowed. */
OW_API ow_optimizer *ow_trajectory_get_optimizer(ow_trajectory *traj);
OW_API const ow_model *ow_trajectory_get_model(const ow_trajectory *traj);
OW_API void ow_trajectory_get_stats(const ow_trajectory *traj, ow_trajectory_stats *out);

/* ---------------------------------------------------------------------------------- */
/* Schedulers                                                                         */
/* ---------------------------------------------------------------------------------- */

/* A config's `param_scheduler` (one map or a list of maps, each with a `type`: mmengine's
 * LinearLR, CosineAnnealingMomentum, OneCycleParamScheduler..., timm's
 * CosineLRScheduler... or timm's factory `create_scheduler_v2`) becomes an ow_sched that
 * sets every group's lr, momentum or other hyperparameter over a run, exactly as the
 * reference does:
 * - mmengine schedulers are chainable: each step computes the new value from the group's
 *   current value, so schedulers whose windows overlap multiply. Each takes its first
 *   step when it is built; a by_epoch scheduler then steps after every training epoch,
 *   any other after every training iteration (mmengine's ParamSchedulerHook).
 * - timm schedulers compute the value from the step count alone; `t_in_epochs` says
 *   whether they follow epochs or optimizer updates, and a group's `lr_scale` (layer
 *   decay) multiplies what they write. A timm scheduler must be the only one.
 *
 * Schedulers read and write hyperparameters through an ow_sched_target. To drive an
 * optimizer, make its target with ow_optimizer_sched_target_new (an ow_optim_wrapper
 * does this itself); ow_sched_target_new writes param groups instead, for looking at a
 * schedule without an optimizer (an optimizer copies its groups when it is made and
 * never reads them again). Key "momentum" means the group's `momentum`, or `betas[0]`
 * for Adam-style optimizers (mmengine's momentum schedulers do the same). */

typedef struct ow_sched ow_sched;

/* The groups a schedule steps. mmengine's OptimWrapper appends a phantom group,
 * `base_param_settings`, built from the optimizer's defaults, when the optimizer has
 * more than one param group: its schedulers step it like the others (it is what mmengine
 * logs as `base_lr`), and per-group lists such as OneCycle's `eta_max` count it. A target
 * with such a group says so in has_base_group; it is then the last group. */
typedef struct ow_sched_target {
    size_t num_groups;   /* the groups, the base group included */
    bool has_base_group; /* the last group is mmengine's base_param_settings */
    /* The optimizer multiplies lr by each group's lr_scale when stepping (groups of
     * TimmOptimWrapperConstructor): timm schedulers then write the unscaled lr instead
     * of timm's value * lr_scale, so the scale is applied once. */
    bool lr_scale_at_step;
    void *ctx; /* passed to get and set */
    /* Reads hyperparameter `key` of a group; false when the group has no such key. */
    bool (*get)(void *ctx, size_t group, const char *key, double *value);
    /* Writes it. Called only with keys that get found; it must not fail. */
    void (*set)(void *ctx, size_t group, const char *key, double value);
} ow_sched_target;

/* A ready-made target over param groups (not an optimizer: see above): groups 0..n-1 are
 * those of `groups` (written in place), then, when there is more than one, the
 * base_param_settings group: the optimizer's defaults from config's
 * `optim_wrapper.optimizer` and the optimizer's registry entry, held by the target. With
 * groups NULL the target is that one group alone (what `optwrap schedule` uses without a
 * model). *out is owned by the caller (ow_sched_target_free); it borrows groups, which
 * must outlive it. */
OW_API int ow_sched_target_new(const ow_cfg *config, ow_groups *groups,
                               ow_sched_target **out, ow_error *err);
/* The target of an optimizer's groups: a schedule built on it writes each group's
 * hyperparameters in the optimizer, where the next step reads them; writing cannot
 * fail. With more than one group, mmengine's base_param_settings (the optimizer's
 * defaults, owned by the target) is the last group. It borrows opt, which must outlive
 * it and the schedule. */
OW_API int ow_optimizer_sched_target_new(ow_optimizer *opt, ow_sched_target **out,
                                         ow_error *err);
/* Frees a target made by ow_sched_target_new or ow_optimizer_sched_target_new. */
OW_API void ow_sched_target_free(ow_sched_target *target);

/* The training run a schedule is built for, as mmengine's runner knows it. A field left
 * 0 is taken from the config's `train_cfg` (max_epochs, max_iters, by_epoch, type) where
 * it has one, and otherwise stays unknown. */
typedef struct ow_sched_loop {
    int64_t epoch_length; /* iterations per epoch, len(train_dataloader); 0: unknown */
    int64_t max_epochs;   /* > 0: an epoch-based loop (EpochBasedTrainLoop) */
    int64_t max_iters;    /* > 0 with max_epochs 0: an iteration-based loop */
} ow_sched_loop;

/* Builds the schedule of config's `param_scheduler` for target's groups and performs
 * every scheduler's first step, which writes the groups (LinearLR applies start_factor at
 * once). An absent `end` defaults as mmengine's runner sets it: max_epochs for a by_epoch
 * scheduler, else max_iters (unknown: no end). convert_to_iter_based needs the epoch
 * length. A config without param_scheduler gives an empty schedule. The target is copied;
 * its ctx must outlive the schedule. On failure the groups are unchanged. */
OW_API int ow_sched_new(const ow_cfg *config, const ow_sched_target *target,
                        const ow_sched_loop *loop, ow_sched **out, ow_error *err);
OW_API void ow_sched_free(ow_sched *sched);
/* Validates config's `param_scheduler` without groups: every type known, every key
 * known, values in range, windows well formed. */
OW_API int ow_sched_check(const ow_cfg *config, ow_error *err);

/* The runner's hooks, in its order: after each training iteration (every scheduler with
 * by_epoch false steps; a timm scheduler gets step_update(iterations so far)), after each
 * training epoch (every by_epoch scheduler steps; a timm scheduler gets step(epochs so
 * far, metric); metric may be NULL and is used by timm's PlateauLRScheduler), and after
 * each validation (mmengine's ReduceOnPlateau schedulers read the metric they monitor
 * from names/values). */
OW_API int ow_sched_step_iter(ow_sched *sched, ow_error *err);
OW_API int ow_sched_step_epoch(ow_sched *sched, const double *metric, ow_error *err);
OW_API int ow_sched_step_val(ow_sched *sched, const char *const *names,
                             const double *values, size_t n, ow_error *err);
/* timm's own calls, for a host that counts like timm's train.py: step(epoch, metric) and
 * step_update(num_updates, metric). OW_ERR_MISUSE when the schedule is not timm's. */
OW_API int ow_sched_step_timm(ow_sched *sched, int64_t epoch, const double *metric,
                              ow_error *err);
OW_API int ow_sched_step_timm_update(ow_sched *sched, int64_t num_updates,
                                     const double *metric, ow_error *err);

/* The schedule's progress (step counts, base values, plateau bookkeeping) and the
 * current value of every scheduled hyperparameter of every group, as versioned JSON text
 * (`{"format": "optwrap-sched", "version": 1, ...}`) the caller frees with ow_free().
 * Loading it into a schedule built from the same config and target continues exactly
 * where the saved one was, the groups' scheduled values included. The configuration
 * itself is not saved (unlike mmengine, whose resume overwrites `end`, `eta_min`...);
 * a state that does not fit the schedule fails with OW_ERR_STATE and changes nothing. */
OW_API int ow_sched_save_state(const ow_sched *sched, char **out, ow_error *err);
OW_API int ow_sched_load_state(ow_sched *sched, const char *text, ow_error *err);

/* Warnings about a schedule that can hardly be what its author meant: windows where two
 * schedulers both change the same value (the product is rarely intended), a scheduler
 * that never becomes active, an `end` beyond the run. Each has a message and the
 * position of the config node (code OW_ERR_VALUE or OW_ERR_RANGE). Borrowed. */
OW_API size_t ow_sched_get_num_warnings(const ow_sched *sched);
OW_API const ow_error *ow_sched_get_warning(const ow_sched *sched, size_t i);

/* What a schedule is made of, for charts and logs. */
typedef struct ow_sched_info {
    const char *type;  /* registry name: "LinearLR" (borrowed) */
    const char *param; /* the scheduled key: "lr", "momentum", ... (borrowed) */
    bool by_epoch;     /* steps per epoch (false after convert_to_iter_based) */
    double begin, end; /* its window, in its steps; end 1e9 when open */
    int64_t begin_iter, end_iter; /* the window in iterations; -1 when unknown or open */
} ow_sched_info;

OW_API size_t ow_sched_get_count(const ow_sched *sched);
OW_API int ow_sched_get_info(const ow_sched *sched, size_t i, ow_sched_info *out);
/* The distinct scheduled keys ("lr", "momentum"...), in order of first use. Borrowed. */
OW_API size_t ow_sched_get_num_params(const ow_sched *sched);
OW_API const char *ow_sched_get_param(const ow_sched *sched, size_t i);
/* The run as resolved by ow_sched_new (loop, train_cfg, timm's num_epochs). */
OW_API ow_sched_loop ow_sched_get_loop(const ow_sched *sched);
/* The target the schedule writes (its copy, borrowed). */
OW_API const ow_sched_target *ow_sched_get_target(const ow_sched *sched);

/* Re-runs a reference recording of a schedule, a JSON file of kind
 * `mmengine_param_scheduler` or `timm_scheduler` (see tests/golden/sched/), and compares
 * every value it holds. *max_err gets the largest relative difference (may be NULL);
 * msg (n bytes, may be NULL) the first mismatch or a one-line summary. OW_OK when every
 * value matches within 1e-12 relative, OW_ERR_VALUE on a mismatch (err says where),
 * other codes when the file is malformed or the schedule cannot be built. */
OW_API int ow_sched_replay(const ow_cfg *golden, double *max_err, char *msg, size_t n,
                           ow_error *err);

/* ---------------------------------------------------------------------------------- */
/* Optim wrappers: what a training loop holds and calls                               */
/* ---------------------------------------------------------------------------------- */

/* An ow_optim_wrapper is mmengine's `build_optim_wrapper` plus the runner's
 * ParamSchedulerHook in one object: built from a whole config, it owns a copy of the
 * config, the param groups, the optimizer and the schedule. Its `type` is OptimWrapper
 * (accumulation, clipping), AmpOptimWrapper (the same with GradScaler's dynamic loss
 * scaling) or, when `optim_wrapper` has neither `optimizer` nor `constructor`, an
 * OptimWrapperDict of named wrappers, each built over the module of the same name.
 *
 * One source of truth: once built, a group's current lr and momentum live in the
 * optimizer; the schedule writes them there and ow_optim_wrapper_get_lr reads them.
 *
 * Per iteration the host does what mmengine's update_params does:
 *
 *     float k = ow_optim_wrapper_get_loss_multiplier(w);  (accumulation x loss scale)
 *     backward(loss * k) into the gradient buffers it registered, adding to them
 *     ow_optim_wrapper_update(w, &info, &err);            (unscale, check, clip, step
 *                                                          or skip, zero, schedule)
 * and at the end of every epoch ow_optim_wrapper_end_epoch(w, metric, &err). */
typedef struct ow_optim_wrapper ow_optim_wrapper;

/* Builds the wrapper of config's `optim_wrapper` over model (borrowed: it must outlive
 * the wrapper; its data and grad pointers are what the optimizer steps), with config's
 * `param_scheduler` for the run in loop (NULL, or fields left 0: taken from `train_cfg`).
 * config is copied. Accumulation windows are counted from iteration 0 to the run's
 * max_iters (max_epochs x epoch_length), as the runner's initialize_count_status does;
 * a resumed run sets them from the checkpoint. */
OW_API int ow_optim_wrapper_new(const ow_cfg *config, ow_model *model,
                                const ow_sched_loop *loop, ow_optim_wrapper **out,
                                ow_error *err);
/* Wraps an optimizer the host built itself (taken: freed with the wrapper, even on
 * failure), with `wrapper_cfg` a map of the wrapper's own keys (`type`,
 * `accumulative_counts`, `clip_grad`, `loss_scale`, ...; NULL: a plain OptimWrapper) and
 * the schedule of config's `param_scheduler` (config may be NULL: no schedule). The
 * groups the optimizer was made from must outlive the wrapper. */
OW_API int ow_optim_wrapper_wrap(ow_optimizer *opt, const ow_cfg *wrapper_cfg,
                                 const ow_cfg *config, const ow_sched_loop *loop,
                                 ow_optim_wrapper **out, ow_error *err);
OW_API void ow_optim_wrapper_free(ow_optim_wrapper *w);

/* mmengine's initialize_count_status: the iteration the run is at and the run's length
 * in iterations (-1: unknown, then the last window never steps early). */
OW_API int ow_optim_wrapper_set_counts(ow_optim_wrapper *w, int64_t iteration,
                                       int64_t max_iters, ow_error *err);

/* The float the host multiplies its loss by before backward: fl32(loss_scale /
 * loss_factor), where loss_factor is accumulative_counts, or the length of the last,
 * incomplete window of the run (mmengine's scale_loss), and loss_scale is 1 without AMP.
 * 0 when the run is over (more iterations than announced). */
OW_API float ow_optim_wrapper_get_loss_multiplier(const ow_optim_wrapper *w);
/* Whether the coming micro-batch ends a window (mmengine's should_sync): a data-parallel
 * host all-reduces gradients only then. */
OW_API bool ow_optim_wrapper_should_sync(const ow_optim_wrapper *w);

/* What one update did, as mmengine logs it. Arrays are borrowed from the wrapper and
 * valid until its next call. */
typedef struct ow_update_info {
    int64_t iteration; /* micro-batches done, this one included (_inner_count) */
    bool window_end;   /* this micro-batch ended an accumulation window */
    bool stepped;      /* the optimizer stepped */
    bool skipped;      /* a window ended without a step (non-finite gradient under AMP
                          or skip_nonfinite) */
    bool nonfinite;    /* a gradient element was inf or nan (checked at window ends) */
    double grad_norm;  /* total norm before clipping (clip_grad type norm), else NAN */
    double clip_coef;  /* the factor the gradients were multiplied by, else NAN */
    double loss_scale; /* the scale used for this window (1 without AMP) */
    double next_loss_scale; /* after GradScaler's update */
    size_t num_groups;      /* real param groups */
    const double *lr;       /* [num_groups] the lr this micro-batch ran with (what
                               mmengine logs as train/lr; ow_optim_wrapper_get_lr: next) */
    const double *momentum; /* [num_groups] its momentum or betas[0], else 0 */
    bool has_base;          /* mmengine's base_param_settings group exists (> 1 group) */
    double base_lr, base_momentum;
} ow_update_info;

/* Ends one micro-batch (the host's backward added its gradients): counts it and, at the
 * end of a window, unscales (AMP), checks every gradient for inf/nan, clips, steps or
 * skips, advances the loss scale and zeroes the gradients; then advances the
 * iteration-based schedulers (every micro-batch, as mmengine's hook does). info may be
 * NULL. A dict wrapper refuses (OW_ERR_MISUSE): update each wrapper. A refused update
 * (an error_if_nonfinite clip of a non-finite norm, more micro-batches than the run
 * announced) changes nothing; after OW_ERR_NOMEM in the step nothing has moved, but the
 * window's gradients may already be unscaled and clipped. */
OW_API int ow_optim_wrapper_update(ow_optim_wrapper *w, ow_update_info *info,
                                   ow_error *err);
/* After each training epoch: advances the epoch-based schedulers (metric for plateau
 * schedulers, may be NULL); a dict wrapper advances every wrapper's. */
OW_API int ow_optim_wrapper_end_epoch(ow_optim_wrapper *w, const double *metric,
                                      ow_error *err);
/* After each validation: mmengine's ReduceOnPlateau schedulers read the metric they
 * monitor from names/values (ParamSchedulerHook.after_val_epoch); a dict wrapper passes
 * them to every wrapper. */
OW_API int ow_optim_wrapper_end_val(ow_optim_wrapper *w, const char *const *names,
                                    const double *values, size_t n, ow_error *err);
/* Sets every registered gradient buffer to zero (the wrapper does it after each step). */
OW_API void ow_optim_wrapper_zero_grad(ow_optim_wrapper *w);

/* For an AmpOptimWrapper with `dtype: float16` or `bfloat16`: the host's parameter
 * param_name (full name) lives in half precision (IEEE binary16 or bfloat16 bits, numel
 * uint16_t each), and so does its gradient, which the host's backward adds to. optwrap
 * copies the values into fp32 master weights it owns (the model's data and grad pointers
 * of that parameter are set to its fp32 copies), reads the half gradients at every
 * update, steps the master weights and writes them back rounded to nearest even after
 * every step; the host's buffers must outlive the wrapper. Checkpoints hold the master
 * weights. */
OW_API int ow_optim_wrapper_bind_half(ow_optim_wrapper *w, const char *param_name,
                                      void *data, void *grad, ow_error *err);

/* Reads: the current lr (times lr_scale where the optimizer applies it) and momentum of
 * real group g; the loss scale; the micro-batches done. */
OW_API double ow_optim_wrapper_get_lr(const ow_optim_wrapper *w, size_t group);
OW_API double ow_optim_wrapper_get_momentum(const ow_optim_wrapper *w, size_t group);
OW_API double ow_optim_wrapper_get_loss_scale(const ow_optim_wrapper *w);
OW_API int64_t ow_optim_wrapper_get_iteration(const ow_optim_wrapper *w);
/* Epochs ended (ow_optim_wrapper_end_epoch calls), restored by a checkpoint: where a
 * resumed epoch loop starts. For a dict wrapper, both counts are its first wrapper's. */
OW_API int64_t ow_optim_wrapper_get_epoch(const ow_optim_wrapper *w);
/* Borrowed parts (NULL for a dict wrapper): its optimizer, schedule, groups. */
OW_API ow_optimizer *ow_optim_wrapper_get_optimizer(ow_optim_wrapper *w);
OW_API ow_sched *ow_optim_wrapper_get_sched(ow_optim_wrapper *w);
OW_API const ow_groups *ow_optim_wrapper_get_groups(const ow_optim_wrapper *w);
/* An OptimWrapperDict's wrappers, in config order (0 for a plain wrapper): its names and
 * borrowed wrappers, or NULL past the end / for an unknown name. */
OW_API size_t ow_optim_wrapper_get_num_children(const ow_optim_wrapper *w);
OW_API const char *ow_optim_wrapper_get_child_name(const ow_optim_wrapper *w, size_t i);
OW_API ow_optim_wrapper *ow_optim_wrapper_get_child(ow_optim_wrapper *w,
                                                    const char *name);

/* ---- checkpoints ---------------------------------------------------------------------
 * One safetensors file holds all a resumed run needs: the optimizer state (tensors
 * "optimizer.state.<i>.<key>", torch's keys), the param groups' current hyperparameters
 * and how they were built, the wrapper's counters, the loss scaler, the schedule's
 * state, the parameter names and shapes, a hash of the config, a format version and a
 * CRC-32 of every tensor's bytes; with OW_CKPT_PARAMS also the host's parameters
 * ("params.<name>"). A dict wrapper saves each wrapper under "<name>.". */
#define OW_CKPT_PARAMS 0x1u /* save: include the parameters; load: restore them too */
/* load: accept groups built differently from the file's (another paramwise_cfg, lr,
 * weight_decay): the file's hyperparameters replace the config's, as torch's
 * load_state_dict does. The default refuses such a file (OW_ERR_STATE, saying which
 * group and key differ). */
#define OW_CKPT_FILE_HPARAMS 0x2u

/* Written to a temporary file in the same folder, fsync'd and renamed over path, then
 * the folder fsync'd; the file gets the permissions a new file gets (umask). */
OW_API int ow_optim_wrapper_save(const ow_optim_wrapper *w, const char *path,
                                 unsigned flags, ow_error *err);
/* The same into a new buffer (*out, *len) the caller releases with ow_free(). */
OW_API int ow_optim_wrapper_save_buffer(const ow_optim_wrapper *w, unsigned flags,
                                        void **out, size_t *len, ow_error *err);
/* Restores a checkpoint into a wrapper built from the same config over the same model:
 * continuing is bit for bit a run that never stopped. A truncated file, a changed byte,
 * another model, optimizer, wrapper type or group layout, groups built differently
 * (unless OW_CKPT_FILE_HPARAMS), a schedule that does not fit, or another
 * accumulative_counts inside an open window fails with OW_ERR_STATE saying which, and
 * changes nothing. Keys that change no state (clip_grad, the run's length) may differ;
 * the counters continue from the file. docs/checkpoint.md has the layout. */
OW_API int ow_optim_wrapper_load(ow_optim_wrapper *w, const char *path, unsigned flags,
                                 ow_error *err);
OW_API int ow_optim_wrapper_load_buffer(ow_optim_wrapper *w, const void *buf, size_t len,
                                        unsigned flags, ow_error *err);

/* ---------------------------------------------------------------------------------- */
/* Intended usage: the training loop of examples/digits/trainer.c                     */
/* ---------------------------------------------------------------------------------- */
/*
 *     ow_error err; (each call resets it: no initialiser needed)
 *     ow_cfg *cfg = NULL;
 *     ow_model *model = NULL;
 *     ow_optim_wrapper *w = NULL;
 *     ow_sched_loop loop = {.epoch_length = batches_per_epoch, .max_epochs = epochs};
 *     int rc = ow_cfg_load("configs/digits_mlp.yaml", &cfg, &err);
 *     if (!rc) (the tree of named modules, then the host's two buffers)
 *         rc = ow_model_load_string(tree_yaml, "mlp", &model, &err) ||
 *              ow_model_set_buffers(model, params, grads, num_params, &err);
 *     if (!rc)
 *         rc = ow_optim_wrapper_new(cfg, model, &loop, &w, &err);
 *     if (!rc && resume)
 *         rc = ow_optim_wrapper_load(w, "work_dir/epoch_3.safetensors", OW_CKPT_PARAMS,
 *                                    &err);
 *     for (int64_t e = ow_optim_wrapper_get_epoch(w); !rc && e < epochs; e++) {
 *         for (int64_t it = 0; !rc && it < batches_per_epoch; it++) {
 *             float loss = forward(batch(e, it));
 *             backward(ow_optim_wrapper_get_loss_multiplier(w));  (adds to grads)
 *             rc = ow_optim_wrapper_update(w, NULL, &err);   (steps at window ends)
 *         }
 *         if (!rc)
 *             rc = ow_optim_wrapper_end_epoch(w, NULL, &err) ||
 *                  ow_optim_wrapper_save(w, "work_dir/epoch_N.safetensors",
 *                                        OW_CKPT_PARAMS, &err);
 *     }
 *     if (rc) {
 *         char msg[1024];
 *         ow_error_format(&err, msg, sizeof msg);
 *         fprintf(stderr, "%s\n", msg);
 *     }
 *     ow_optim_wrapper_free(w);
 *     ow_model_free(model);
 *     ow_cfg_free(cfg);
 */

#ifdef __cplusplus
}
#endif

#endif /* OPTWRAP_H */
