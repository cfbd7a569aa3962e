/* ctor_internal.h -- what the constructors share beyond the group object: Python's
 * number semantics, name patterns (substrings, fnmatch globs, PCRE2 regexes that fail
 * with positioned errors), mmengine's custom_keys table, the flat group, and the
 * layer-depth providers' tree readers. */
#ifndef OW_CTOR_INTERNAL_H
#define OW_CTOR_INTERNAL_H

#include "../groups/groups_internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- numbers (numbers.c) ------------------------------------------------------------
 */

/* Python's `base ** exp` for a config number and an int exponent: an int base with
 * exp >= 0 stays an int, anything else is the float pow(base, (double)exp), which is
 * bit-identical to Python's float ** int. NULL on allocation failure. */
ow_cfg *ow__num_pow(const ow_cfg *base, int64_t exp);
/* Python's `a * b` on config numbers: int * int stays an int, anything else a float,
 * as a node without position that owns nothing. */
ow_cfg ow__num_product(const ow_cfg *a, const ow_cfg *b);
/* The same as a new heap node; NULL on allocation failure. */
ow_cfg *ow__num_mul(const ow_cfg *a, const ow_cfg *b);
/* A config number as a double (0 for anything else). */
double ow__num_value(const ow_cfg *v);
/* A config number, or NULL when v is absent, null or not a number. */
const ow_cfg *ow__num_or_null(const ow_cfg *map, const char *key);

/* ---- patterns (patterns.c) ----------------------------------------------------------
 */

/* Python's fnmatch.fnmatch(name, pattern) on POSIX: the whole name, case-sensitive;
 * '*' matches any run (dots included), '?' one character, '[seq]' / '[!seq]' a set with
 * ranges; a '[' without a closing ']' and a backslash are literal. */
bool ow__fnmatch(const char *pattern, const char *name);

/* A compiled PCRE2 regex and its match data, allocated through ow__malloc. */
typedef struct ow__regex {
    pcre2_code *code;
    pcre2_match_data *md;
} ow__regex;

/* Compiles pattern; a pattern that does not compile fails with OW_ERR_VALUE at node:
 * "<label>: regex '<pattern>' does not compile: error <n> at offset <k>: <PCRE2's
 * message>". */
int ow__regex_compile(ow__regex *re, const char *pattern, const ow_cfg *node,
                      const char *label, ow_error *err);
/* Matches subject: anchored at its start like Python's re.match, else anywhere like
 * re.search. Fails only with OW_ERR_NOMEM (or OW_ERR_VALUE for a match limit). */
int ow__regex_match(const ow__regex *re, const char *subject, bool anchored,
                    bool *matched, ow_error *err);
/* Number of capture groups of the pattern. */
uint32_t ow__regex_num_groups(const ow__regex *re);
/* Capture i (1-based) of the last successful match: false when it did not take part. */
bool ow__regex_group(const ow__regex *re, const char *subject, uint32_t i,
                     const char **start, size_t *len);
void ow__regex_free(ow__regex *re);

/* ---- custom_keys (custom_keys.c) ----------------------------------------------------
 */

typedef enum ow__match_kind {
    OW__MATCH_SUBSTRING, /* mmengine: the key is a substring of the name */
    OW__MATCH_REGEX,     /* "re:PATTERN": PCRE2 search in the plain dotted name */
    OW__MATCH_GLOB       /* "glob:PATTERN": fnmatch of the whole plain dotted name */
} ow__match_kind;

typedef struct ow__custom_key {
    const char *key;     /* as written, prefix included ("re:^head\.") */
    const char *pattern; /* after the prefix */
    ow__match_kind kind;
    const ow_cfg *cfg; /* its map of settings (positions for messages) */
    ow__regex re;      /* OW__MATCH_REGEX only */
    size_t hits, wins; /* parameters it matched / decided */
    long inside_word;  /* first parameter (model index) where a substring match starts
                          inside a name component ("head" in "decode_head"), or -1 */
    bool matches_any;  /* (warnings) matches some occurrence, frozen ones included */
} ow__custom_key;

typedef struct ow__custom_keys {
    ow__custom_key *k; /* [n] in mmengine's order: longest first, then alphabetical */
    size_t n;
    const ow_cfg *node;    /* the custom_keys map */
    unsigned char *tested; /* [model params] every key was tried on the full name (the
                              warnings need not try again); NULL without keys */
} ow__custom_keys;

/* Reads paramwise_cfg.custom_keys (absent or null: no keys) for a model: every value
 * must be a map whose lr_mult / decay_mult are numbers; "re:" keys are compiled. */
int ow__custom_keys_read(const ow_cfg *pw, const ow_model *model, ow__custom_keys *out,
                         ow_error *err);
void ow__custom_keys_free(ow__custom_keys *ck);
/* The same checks without a model (ow_cfg_check): every value a map with numeric
 * multipliers, every "re:" key a valid pattern. */
int ow__custom_keys_check(const ow_cfg *pw, ow_error *err);
/* The key deciding a parameter, counting hits for the warnings: substring keys are
 * tested against `dotted` (mmengine's spelling, which may start with '.'), "re:" and
 * "glob:" keys against the plain dotted name `name`, the full name of occurrence
 * `param`. *hit is NULL when none matches. */
int ow__custom_keys_find(ow__custom_keys *ck, const char *dotted, const char *name,
                         size_t param, ow__custom_key **hit, ow_error *err);
/* Warnings, after the walk, for keys that decided nothing (no match, only frozen
 * parameters, always beaten by a longer key) or that matched inside a name component
 * ("head" in "decode_head"), each at the key's settings node. */
int ow__custom_keys_warn(ow__custom_keys *ck, const ow_model *model, ow_groups *groups,
                         ow_error *err);
/* "custom key 'head'" or "custom key 're:^head\.' (regex)" into buf. */
void ow__custom_key_describe(const ow__custom_key *k, char *buf, size_t n);

/* ---- shared pieces of the mm constructors -------------------------------------------
 */

/* paramwise_cfg absent or empty: torch gets model.parameters(), one group of every
 * distinct tensor, frozen ones included (default.c). */
int ow__groups_add_flat(const ow_model *model, ow_groups *g, ow_error *err);
/* mmengine's _validate_cfg: "base_wd should not be None" when a decay multiplier (or a
 * custom key's decay_mult) is set without optimizer.weight_decay (default.c). */
int ow__check_base_wd(const ow_cfg *pw, const ow__custom_keys *ck, const ow_cfg *base_wd,
                      ow_error *err);

/* Groups merged by name, in order of first appearance (mmseg's and timm's
 * parameter_groups dicts): group k of the ow_groups is the k-th name. */
typedef struct ow__named_groups {
    char **names; /* [n] */
    size_t n, cap;
} ow__named_groups;
/* The group named name, appended to g when new (*created set). */
int ow__named_group(ow__named_groups *ng, ow_groups *g, const char *name, size_t *gi,
                    bool *created, ow_error *err);
void ow__named_groups_free(ow__named_groups *ng);
/* Appends a string to the list at key of group gi (mmseg's param_names). */
int ow__group_append_name(ow_groups *g, size_t gi, const char *key, const char *name,
                          ow_error *err);
/* A new layer-decay group's keys in mmseg's order: weight_decay, param_names (empty),
 * lr_scale, group_name, lr. Takes weight_decay, lr_scale and lr (NULL: out of memory),
 * even on failure. */
int ow__layer_group_keys(ow_groups *g, size_t gi, ow_cfg *weight_decay, ow_cfg *lr_scale,
                         const char *name, ow_cfg *lr, ow_error *err);

/* ---- layer depth (layer_depth.c) ----------------------------------------------------
 */

/* The number of direct children named "<parent>.<i>" (i = 0, 1, ...) of module parent
 * ("" = root, children "0", "1", ...): mmengine's ModuleList lengths, read off the
 * tree. 0 when parent does not exist or has no such child. */
int64_t ow__count_children(const ow_model *model, const char *parent);
/* Whether a module of that full name exists. */
bool ow__has_module(const ow_model *model, const char *name);
/* The module of that full name, or NULL. */
const ow_module_info *ow__find_module(const ow_model *model, const char *name);
/* Python's int(s) for a name component (digits, optional sign); false when it is not
 * an int. */
bool ow__parse_int(const char *s, size_t len, int64_t *out);
/* The n-th dot-separated component of name (Python's name.split('.')[n]): *start and
 * *len; false when there are fewer components. */
bool ow__name_part(const char *name, size_t n, const char **start, size_t *len);

/* The provider LearningRateDecayOptimWrapperConstructor uses for a model: from
 * paramwise_cfg.layer_depth when given (at `layer_depth`, a map with `type`), else by
 * the root's class name, else by the `backbone` module's. Errors are positioned at
 * `where` (the constructor node) when nothing fits. */
typedef struct ow__depth {
    const ow_entry *entry;
    const ow_layer_depth_ops *ops;
    void *state;
    const char *backbone_type; /* the class the provider was chosen for */
} ow__depth;
/* Checks a paramwise_cfg.layer_depth map without a model: its type names a layer_depth
 * entry and its keys fit that entry's schema (what `optwrap check` can see). */
int ow__depth_check(const ow_cfg *layer_depth, const char *scope, ow_error *err);
int ow__depth_open(const ow_model *model, const ow_cfg *layer_depth, const ow_cfg *where,
                   const char *scope, ow_groups *groups, ow__depth *out, ow_error *err);
void ow__depth_close(ow__depth *d);

/* ---- timm's layer map (timm_layers.c) ------------------------------------------------
 */

/* Layer ids for timm's param_groups_layer_decay, over the parameters torch's
 * named_parameters() lists (first occurrences, frozen ones included). */
typedef struct ow__timm_layers {
    int64_t *id; /* [params] layer id; -1 for later occurrences of shared tensors */
    long *rule;  /* [params] the matcher rule that decided, -1 when none matched */
    const char **rule_group; /* [rules] the matcher group name of each rule (borrowed) */
    size_t n_rules;
    int64_t num_layers; /* max id + 1 */
    bool from_matcher;  /* else auto_group_layers */
} ow__timm_layers;

/* From `matcher` (timm's group_matcher(coarse=False) as a map: group -> regex, or ->
 * [[regex, suffix], ...], suffix null or a list of numbers, 99999 joining the previous
 * group) when not NULL, else auto_group_layers: 12 tensors per id, the parameters under
 * `classifier` (a string or list of prefixes; NULL = none: every parameter is head) on
 * top. `label` names the matcher in messages. */
int ow__timm_layers_build(const ow_model *model, const ow_cfg *matcher, const char *label,
                          const ow_cfg *classifier, ow__timm_layers *out, ow_error *err);
void ow__timm_layers_free(ow__timm_layers *tl);

#endif /* OW_CTOR_INTERNAL_H */
