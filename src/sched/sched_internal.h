/* sched_internal.h -- what the files of src/sched share: one scheduler of a chain
 * (ow__sched_item), the per-class definition a registry entry points at
 * (ow__sched_def), the schedule itself, and Python's arithmetic where it differs
 * from C's. Glossary: n = number of groups (the base group included), t = a
 * scheduler's local step, b = base (initial) value, v = current value. */
#ifndef OW_SCHED_INTERNAL_H
#define OW_SCHED_INTERNAL_H

#include "../internal.h"

#include <math.h>
#include <stdint.h>

#define OW__SCHED_INF         1e9 /* mmengine's INF = int(1e9): an open `end` */
#define OW__SCHED_STATE_SLOTS 4

typedef struct ow__sched_item ow__sched_item;

/* How a scheduler moves: chainable per step (mmengine), or from the step count alone
 * (timm), and the two plateau schedulers, which react to a metric. */
typedef enum ow__sched_kind {
    OW__SCHED_MM,
    OW__SCHED_MM_PLATEAU,
    OW__SCHED_TIMM,
    OW__SCHED_TIMM_PLATEAU,
    OW__SCHED_TIMM_FACTORY /* create_scheduler_v2: replaced by a class at build time */
} ow__sched_kind;

/* What a class's init reads: its validated config node and the groups it will step. */
typedef struct ow__sched_build {
    const ow_cfg *node;    /* the scheduler's map, schema-checked */
    const ow_entry *entry; /* its registry entry (for key defaults) */
    const char *context;   /* "param_scheduler.0 (LinearLR)", for messages */
    size_t n;              /* groups, the base group included */
    bool has_base_group;
    double scale;         /* convert_to_iter_based: epoch length; else 1 */
    int64_t epoch_length; /* 0: unknown */
} ow__sched_build;

/* The definition a scheduler entry's `ops` points at. */
typedef struct ow__sched_def {
    ow__sched_kind kind;
    const char *param; /* "lr", "momentum", or NULL: the config's `param_name` */
    const char *const *state_keys; /* names of item->state[] slots that are saved */
    /* Reads the class's keys into item->impl (one ow_free-able block) and checks what
     * needs the groups, such as per-group list lengths. */
    int (*init)(ow__sched_item *it, const ow__sched_build *b, ow_error *err);
    /* OW__SCHED_MM: the values for local step it->last_step, from the current ones. */
    void (*value)(const ow__sched_item *it, const double *initial, const double *cur,
                  double *out, size_t n);
    /* optional, OW__SCHED_MM: runs before the initial values are recorded at build time
     * (OneCycle overwrites them). */
    void (*prepare)(const ow__sched_item *it, double *initial, size_t n);
    /* optional, OW__SCHED_MM: an error the next step would raise (checked before any
     * scheduler of the step runs, so a failing step changes nothing). */
    int (*check)(const ow__sched_item *it, ow_error *err);
    /* optional, OW__SCHED_MM: whether local step t changes the value (for the overlap
     * warning); NULL: every step does. */
    bool (*changes)(const ow__sched_item *it, double t);
    /* OW__SCHED_TIMM / TIMM_PLATEAU: the unscaled values at t (warmup included). */
    void (*timm_lr)(const ow__sched_item *it, double t, double *out, size_t n);
} ow__sched_def;

/* One scheduler of a schedule. */
struct ow__sched_item {
    const ow_entry *entry;
    const ow__sched_def *def;
    char *file; /* where it is configured (owned; NULL: nowhere) */
    int line, column;
    char *param; /* the scheduled key (owned) */
    /* mmengine */
    double begin, end; /* the window, in its steps, after convert_to_iter_based */
    bool by_epoch;
    bool converted;
    bool end_given;            /* `end` came from the config, not the runner's default */
    int end_line, end_column;  /* its position */
    double cfg_begin, cfg_end; /* the window as configured (epochs when by_epoch) */
    bool cfg_by_epoch;         /* the config's by_epoch, before any conversion */
    int64_t global_step, last_step;
    /* timm */
    bool t_in_epochs;
    double warmup_t;
    /* both */
    double *base; /* [n] base values: the initial values when it was built */
    double state[OW__SCHED_STATE_SLOTS]; /* def->state_keys: plateau bookkeeping */
    void *impl;                          /* the class's parameters (owned, one block) */
};

/* Per scheduled key, its initial value in every group: mmengine's `initial_<key>`,
 * set by the first scheduler of that key (setdefault) and shared by later ones. */
typedef struct ow__sched_initial {
    char *param;
    double *v; /* [n] */
    bool set;  /* recorded yet */
} ow__sched_initial;

struct ow_sched {
    ow_sched_target target;
    size_t n;
    ow__sched_item *items;
    size_t n_items;
    ow__sched_initial *initial;
    size_t n_initial;
    char **params; /* distinct scheduled keys, first use first */
    size_t n_params;
    ow_sched_loop loop;    /* as resolved */
    bool iter_based;       /* IterBasedTrainLoop: no epoch ends during the run */
    bool timm;             /* the one scheduler is timm's */
    double *scratch;       /* [2n] current and new values during a step */
    int64_t iters, epochs; /* runner hooks done */
    ow_error *warnings;
    size_t n_warnings;
};

/* ---- classes (one file per family) ----------------------------------------------- */

/* The keys every mmengine scheduler accepts besides its own (_ParamScheduler and the
 * runner's build_scheduler_from_cfg). `end` has no default: the runner's applies. */
#define OW__SCHED_MM_KEYS                                                                \
    {.name = "begin",                                                                    \
     .type = OW_T_NUMBER,                                                                \
     .def = "0",                                                                         \
     .min = 0,                                                                           \
     .max = INFINITY,                                                                    \
     .flags = OW_KEY_RANGE,                                                              \
     .doc = "step (epoch or iteration) where it starts"},                                \
        {.name = "end",                                                                  \
         .type = OW_T_NUMBER,                                                            \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,                                        \
         .doc = "step where it stops (default: the run's max_epochs or max_iters)"},     \
        {.name = "by_epoch",                                                             \
         .type = OW_T_BOOL,                                                              \
         .def = "true",                                                                  \
         .doc = "step after every epoch (else after every iteration)"},                  \
        {.name = "convert_to_iter_based",                                                \
         .type = OW_T_BOOL,                                                              \
         .def = "false",                                                                 \
         .doc = "turn an epoch-based config into per-iteration steps (x epoch_length)"}, \
        {.name = "epoch_length",                                                         \
         .type = OW_T_INT,                                                               \
         .min = 1,                                                                       \
         .max = (double)OW__COUNT_MAX,                                                   \
         .flags = OW_KEY_RANGE | OW_KEY_NULLABLE,                                        \
         .doc = "iterations per epoch for convert_to_iter_based (default: the run's)"},  \
        {.name = "last_step",                                                            \
         .type = OW_T_INT,                                                               \
         .def = "-1",                                                                    \
         .min = -1,                                                                      \
         .max = (double)OW__COUNT_MAX,                                                   \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "resume without a state: the last local step taken"},                    \
    {                                                                                    \
        .name = "verbose", .type = OW_T_BOOL, .def = "false",                            \
        .doc = "accepted for compatibility; optwrap never prints"                        \
    }

/* The three definitions of an mmengine class, one per scheduled key: cls_lr, cls_mom and
 * cls_param (the generic *ParamScheduler, whose key comes from param_name), sharing the
 * class's cls_init, cls_value and cls_changes. */
#define OW__SCHED_MM_DEFS(cls)                                                           \
    static const ow__sched_def cls##_lr = {.kind = OW__SCHED_MM,                         \
                                           .param = "lr",                                \
                                           .init = cls##_init,                           \
                                           .value = cls##_value,                         \
                                           .changes = cls##_changes};                    \
    static const ow__sched_def cls##_mom = {.kind = OW__SCHED_MM,                        \
                                            .param = "momentum",                         \
                                            .init = cls##_init,                          \
                                            .value = cls##_value,                        \
                                            .changes = cls##_changes};                   \
    static const ow__sched_def cls##_param = {.kind = OW__SCHED_MM,                      \
                                              .init = cls##_init,                        \
                                              .value = cls##_value,                      \
                                              .changes = cls##_changes}

/* The key of the generic *ParamScheduler versions. */
#define OW__SCHED_PARAM_NAME_KEY                                                         \
    {                                                                                    \
        .name = "param_name", .type = OW_T_STRING, .flags = OW_KEY_REQUIRED,             \
        .doc = "the group key to schedule ('lr', 'momentum', 'weight_decay', ...)"       \
    }

/* The keys of every timm class (its Scheduler base), and of those with a warmup. */
#define OW__SCHED_TIMM_KEYS                                                              \
    {.name = "t_in_epochs",                                                              \
     .type = OW_T_BOOL,                                                                  \
     .def = "true",                                                                      \
     .doc = "t counts epochs (step) rather than optimizer updates (step_update)"},       \
        {.name = "noise_range_t",                                                        \
         .type = OW_T_ANY,                                                               \
         .def = "null",                                                                  \
         .doc = "lr noise range (not supported: must stay null)"},                       \
        {.name = "noise_pct",                                                            \
         .type = OW_T_NUMBER,                                                            \
         .def = "0.67",                                                                  \
         .doc = "lr noise limit"},                                                       \
        {.name = "noise_std",                                                            \
         .type = OW_T_NUMBER,                                                            \
         .def = "1.0",                                                                   \
         .doc = "lr noise std-dev"},                                                     \
        {.name = "noise_seed", .type = OW_T_INT, .def = "42", .doc = "lr noise seed"},   \
    {                                                                                    \
        .name = "initialize", .type = OW_T_BOOL, .def = "true",                          \
        .doc = "record the groups' initial lr (must stay true)"                          \
    }
#define OW__SCHED_TIMM_WARMUP_KEYS                                                       \
    {.name = "warmup_t",                                                                 \
     .type = OW_T_NUMBER,                                                                \
     .def = "0",                                                                         \
     .min = 0,                                                                           \
     .max = INFINITY,                                                                    \
     .flags = OW_KEY_RANGE,                                                              \
     .doc = "length of the linear warmup, in t"},                                        \
    {                                                                                    \
        .name = "warmup_lr_init", .type = OW_T_NUMBER, .def = "0", .min = 0,             \
        .max = INFINITY, .flags = OW_KEY_RANGE, .doc = "lr at the start of the warmup"   \
    }
/* A scheduler's registry entry (the line registry/builtins.c lists). */
#define OW__SCHED_ENTRY(var, name_, scope_, keys_, def_, summary_)                       \
    const ow_entry var = {.abi_version = OW_ABI_VERSION,                                 \
                          .name = name_,                                                 \
                          .kind = OW_KIND_SCHEDULER,                                     \
                          .scope = scope_,                                               \
                          .summary = summary_,                                           \
                          .keys = keys_,                                                 \
                          .ops = &def_}

/* A string key that must be one of `choices` (NULL-terminated): OW_ERR_VALUE with a
 * did-you-mean otherwise. *out gets the index. */
int ow__sched_choice(const ow__sched_build *b, const char *key,
                     const char *const *choices, size_t *out, ow_error *err);

/* The definition behind an entry, or NULL when it is not a built-in scheduler. */
const ow__sched_def *ow__sched_def_of(const ow_entry *entry);

/* A key's number: the config's value, else the schema default (NAN when neither). */
double ow__sched_num(const ow__sched_build *b, const char *key);
/* True when the key is given and not null. */
bool ow__sched_has(const ow__sched_build *b, const char *key);
/* A number, or a list of `want` numbers (one per group), into out[want]; a list of
 * another length is an error at the node, whose message ends with `note`. With want 0
 * (checking without groups) only the types are checked. */
int ow__sched_per_group(const ow__sched_build *b, const char *key, double def,
                        size_t want, const char *note, double *out, ow_error *err);
/* Fails with OW_ERR_VALUE at the key's node (or the map) and the context prefix. */
int ow__sched_fail(const ow__sched_build *b, ow_error *err, const char *key,
                   const char *fmt, ...) OW__PRINTF(4, 5);

/* What every timm class checks the same way (noise and initialize are refused); sets
 * it->warmup_t. */
int ow__sched_timm_common(ow__sched_item *it, const ow__sched_build *b, ow_error *err);

/* timm's create_scheduler_v2: the class config it would build (a new map with `type`
 * and the class's keys) and the epochs it returns. */
int ow__sched_timm_factory(const ow__sched_build *b, ow_cfg **class_cfg,
                           int64_t *num_epochs, ow_error *err);

/* The impl of both plateau schedulers (torch's ReduceLROnPlateau logic). Their state:
 * [0] best, [1] num_bad_epochs, [2] cooldown_counter, [3] last_epoch (timm). The
 * update returns true when it is time to reduce. */
typedef struct ow__plateau {
    bool greater, absolute; /* rule 'greater' / mode 'max'; threshold_rule 'abs' */
    double threshold;
    double patience, cooldown;
    double eps;
    double factor;
    double warmup_lr_init; /* timm */
    double *min_values;    /* [n], in the same block */
    const char *monitor;   /* mmengine: the metric's name, in the same block */
} ow__plateau;
bool ow__plateau_update(const ow__plateau *p, double *state, double metric);

/* ---- the schedule's values (step.c; chain.c, which builds it, calls them) ---------- */

/* The initial values of key (NULL when no scheduler recorded them yet). */
double *ow__sched_initial_of(const ow_sched *s, const char *param);
/* Reads key of every group into out[n]; MISUSE when a group lacks it. */
int ow__sched_read(const ow_sched *s, const char *param, double *out, ow_error *err);
void ow__sched_write(const ow_sched *s, const char *param, const double *v);
/* A timm scheduler's values at t, written with each group's lr_scale. */
void ow__sched_timm_apply(const ow_sched *s, const ow__sched_item *it, const double *v);
/* mmengine's _ParamScheduler.step() for one scheduler (values written). */
void ow__sched_mm_step(ow_sched *s, ow__sched_item *it);

/* Computes the warnings of a schedule whose items are set up (warn.c). */
int ow__sched_find_warnings(ow_sched *s, ow_error *err);

/* ---- Python arithmetic ------------------------------------------------------------- */

/* Python's float `a % b` (the sign of b) and `a // b`, exact for integral values. */
double ow__py_mod(double a, double b);
double ow__py_floordiv(double a, double b);
/* A number as Python prints it in messages: "5" for an integral value that was an int
 * in the config, else repr ("0.5", "1e-05"). buf holds at least 32 bytes. */
const char *ow__py_num(double v, bool is_int, char *buf, size_t n);

#endif /* OW_SCHED_INTERNAL_H */
