/* parse.c -- YAML text to an ow_cfg tree with libyaml's event API. Every node keeps its
 * 1-based position; duplicate map keys are rejected at the second key (libyaml does not
 * catch them); plain scalars are typed by the YAML 1.2 core schema. Hostile text is
 * bounded by ow_limits: nesting depth and the nodes that aliases copy. */
#include "../internal.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static bool all_match(const char *s, const char *set)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!strchr(set, *s))
            return false;
    return true;
}

static bool is_core_float(const char *s)
{
    /* [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    size_t int_digits = 0, frac_digits = 0;
    while (*p >= '0' && *p <= '9')
        p++, int_digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, frac_digits++;
    }
    if (int_digits + frac_digits == 0)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

int ow__cfg_resolve_scalar(ow_cfg *node, const char *text, bool quoted)
{
    node->quoted = quoted;
    if (!quoted) {
        static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
        for (size_t i = 0; i < OW__ARRAY_LEN(nulls); i++)
            if (strcmp(text, nulls[i]) == 0) {
                node->type = OW_CFG_NULL;
                return OW_OK;
            }
        if (!strcmp(text, "true") || !strcmp(text, "True") || !strcmp(text, "TRUE") ||
            !strcmp(text, "false") || !strcmp(text, "False") || !strcmp(text, "FALSE")) {
            node->type = OW_CFG_BOOL;
            node->v.b = text[0] == 't' || text[0] == 'T';
            return OW_OK;
        }
        const char *digits = text + (text[0] == '-' || text[0] == '+');
        int base = 0;
        if (all_match(digits, "0123456789"))
            base = 10;
        else if (!strncmp(text, "0o", 2) && all_match(text + 2, "01234567"))
            base = 8;
        else if (!strncmp(text, "0x", 2) && all_match(text + 2, "0123456789abcdefABCDEF"))
            base = 16;
        if (base) {
            errno = 0;
            long long v = strtoll(base == 10 ? text : text + 2, NULL, base);
            if (errno == 0) {
                node->type = OW_CFG_INT;
                node->v.i = v;
                return OW_OK;
            }
            /* too large for int64: keep it as a float, like a YAML reader in C must */
        }
        const char *t = text + (text[0] == '-' || text[0] == '+');
        if (!strcmp(t, ".inf") || !strcmp(t, ".Inf") || !strcmp(t, ".INF")) {
            node->type = OW_CFG_FLOAT;
            node->v.d = text[0] == '-' ? -INFINITY : INFINITY;
            return OW_OK;
        }
        if (!strcmp(text, ".nan") || !strcmp(text, ".NaN") || !strcmp(text, ".NAN")) {
            node->type = OW_CFG_FLOAT;
            node->v.d = NAN;
            return OW_OK;
        }
        if (is_core_float(text) || base) {
            node->type = OW_CFG_FLOAT;
            node->v.d = strtod(text, NULL);
            return OW_OK;
        }
    }
    node->type = OW_CFG_STRING;
    node->v.s = ow__strdup(text);
    return node->v.s ? OW_OK : OW_ERR_NOMEM;
}

/* Anchors seen so far, for aliases (`*name` gets a copy of the anchored node). */
typedef struct anchor {
    char *name;
    const ow_cfg *node;
} anchor;

typedef struct parser {
    yaml_parser_t yp;
    const char *file;
    ow_error *err;
    anchor *anchors;
    size_t n_anchors, cap_anchors;
    ow_limits limits;
    size_t depth;       /* collections open around the event being parsed */
    size_t alias_nodes; /* nodes copied by aliases so far */
    const ow__parse_opts *opts;
    ow_cfg *root;     /* the top-level map while it is parsed, for opts->on_item */
    ow_cfg *anchored; /* list of streamed items that anchors point into */
} parser;

static int parse_node(parser *p, yaml_event_t *ev, ow_cfg **out);

static int error_at(parser *p, int code, yaml_mark_t m, const char *fmt, ...)
    OW__PRINTF(4, 5);

static int error_at(parser *p, int code, yaml_mark_t m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ow__verror(p->err, code, p->file, (int)m.line + 1, (int)m.column + 1, fmt, ap);
    va_end(ap);
    return code;
}

static int next_event(parser *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&p->yp, ev)) {
        yaml_mark_t m = p->yp.problem_mark;
        if (p->yp.error == YAML_MEMORY_ERROR)
            return ow__nomem(p->err);
        if (p->yp.context)
            return ow__error(p->err, OW_ERR_SYNTAX, p->file, (int)m.line + 1,
                             (int)m.column + 1, "%s: %s", p->yp.context,
                             p->yp.problem ? p->yp.problem : "syntax error");
        return ow__error(p->err, OW_ERR_SYNTAX, p->file, (int)m.line + 1,
                         (int)m.column + 1, "%s",
                         p->yp.problem ? p->yp.problem : "syntax error");
    }
    return OW_OK;
}

static int remember_anchor(parser *p, const yaml_char_t *name, const ow_cfg *node)
{
    if (!name)
        return OW_OK;
    if (ow__grow((void **)&p->anchors, &p->cap_anchors, p->n_anchors + 1,
                 sizeof(anchor)) != OW_OK)
        return ow__nomem(p->err);
    char *n = ow__strdup((const char *)name);
    if (!n)
        return ow__nomem(p->err);
    p->anchors[p->n_anchors].name = n;
    p->anchors[p->n_anchors++].node = node;
    return OW_OK;
}

static int parse_scalar(parser *p, yaml_event_t *ev, ow_cfg **out)
{
    yaml_mark_t m = ev->start_mark;
    ow_cfg *n = ow__cfg_new(OW_CFG_NULL, p->file, (int)m.line + 1, (int)m.column + 1);
    if (!n)
        return ow__nomem(p->err);
    const char *text = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    int rc;
    if (tag && !strcmp(tag, YAML_STR_TAG))
        rc = ow__cfg_resolve_scalar(n, text, true);
    else {
        rc = ow__cfg_resolve_scalar(n, text, quoted && !tag);
        if (rc == OW_OK && tag) {
            /* an explicit !!int / !!float / !!bool / !!null must resolve to that type */
            ow_cfg_type want = !strcmp(tag, YAML_INT_TAG)     ? OW_CFG_INT
                               : !strcmp(tag, YAML_FLOAT_TAG) ? OW_CFG_FLOAT
                               : !strcmp(tag, YAML_BOOL_TAG)  ? OW_CFG_BOOL
                               : !strcmp(tag, YAML_NULL_TAG)  ? OW_CFG_NULL
                                                              : OW_CFG_STRING;
            if (want == OW_CFG_FLOAT && n->type == OW_CFG_INT) {
                n->type = OW_CFG_FLOAT;
                n->v.d = (double)n->v.i;
            } else if (want != n->type) {
                ow_cfg_free(n);
                return ow__error(p->err, OW_ERR_TYPE, p->file, (int)m.line + 1,
                                 (int)m.column + 1, "'%s' is not a valid %s", text, tag);
            }
        }
    }
    if (rc != OW_OK) {
        ow_cfg_free(n);
        return ow__nomem(p->err);
    }
    if (remember_anchor(p, ev->data.scalar.anchor, n) != OW_OK) {
        ow_cfg_free(n);
        return OW_ERR_NOMEM;
    }
    *out = n;
    return OW_OK;
}

/* ---- map keys: a hash set once a map is big, so that the duplicate check of a map of
 * n keys costs O(n), not O(n^2) ---------------------------------------------------- */

#define KEYSET_FROM 16 /* smaller maps are scanned */

typedef struct keyset {
    size_t *slots; /* [cap] key index + 1; 0 = empty */
    size_t cap;
} keyset;

static size_t hash_key(const char *s)
{
    uint64_t h = 14695981039346656037u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return (size_t)(h ^ (h >> 32));
}

static void keyset_put(keyset *ks, const char *key, size_t index)
{
    size_t j = hash_key(key) & (ks->cap - 1);
    while (ks->slots[j])
        j = (j + 1) & (ks->cap - 1);
    ks->slots[j] = index + 1;
}

/* The index of key among map's keys, or -1; indexes map's keys (n of them, about to
 * grow by one) once there are KEYSET_FROM. */
static long find_key(const ow_cfg *map, keyset *ks, const char *key, int *rc)
{
    size_t n = map->v.c.n;
    *rc = OW_OK;
    if (n < KEYSET_FROM)
        return ow__cfg_map_index(map, key);
    if ((n + 1) * 2 > ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 2 * KEYSET_FROM * 2;
        size_t *slots = ow__calloc(cap, sizeof *slots);
        if (!slots) {
            *rc = OW_ERR_NOMEM;
            return -1;
        }
        ow_free(ks->slots);
        *ks = (keyset){.slots = slots, .cap = cap};
        for (size_t i = 0; i < n; i++)
            keyset_put(ks, map->v.c.keys[i], i);
    }
    for (size_t j = hash_key(key) & (ks->cap - 1); ks->slots[j];
         j = (j + 1) & (ks->cap - 1))
        if (!strcmp(map->v.c.keys[ks->slots[j] - 1], key))
            return (long)(ks->slots[j] - 1);
    return -1;
}

/* Appends key (taken) and value (taken) to a map known not to hold key. */
static int map_append(ow_cfg *map, keyset *ks, char *key, ow_cfg *value)
{
    if (ow__cfg_reserve(map, map->v.c.n + 1) != OW_OK) {
        ow_free(key);
        ow_cfg_free(value);
        return OW_ERR_NOMEM;
    }
    if (ks->cap)
        keyset_put(ks, key, map->v.c.n);
    map->v.c.keys[map->v.c.n] = key;
    map->v.c.items[map->v.c.n++] = value;
    return OW_OK;
}

/* The items of the list `start` opens, the value of opts->stream_key in the top-level
 * map, handed one by one to opts->on_item instead of being stored, until it says
 * OW__PARSE_KEEP (on the first item): then they are stored as usual. */
static int parse_streamed(parser *p, ow_cfg *list)
{
    bool streaming = true;
    for (size_t index = 0;; index++) {
        yaml_event_t ev;
        int rc = next_event(p, &ev);
        if (rc != OW_OK)
            return rc;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return OW_OK;
        }
        size_t anchors = p->n_anchors;
        ow_cfg *item = NULL;
        rc = parse_node(p, &ev, &item);
        yaml_event_delete(&ev);
        if (rc != OW_OK)
            return rc;
        if (streaming) {
            rc = p->opts->on_item(item, index, p->root, p->opts->ctx, p->err);
            if (rc == OW__PARSE_KEEP && index == 0) {
                streaming = false;
            } else if (rc != OW_OK) {
                ow_cfg_free(item);
                return rc == OW__PARSE_KEEP ? OW_ERR_MISUSE : rc;
            } else if (p->n_anchors == anchors) {
                ow_cfg_free(item);
                continue;
            } else { /* an alias may copy it later */
                if (!p->anchored && !(p->anchored = ow__cfg_new(OW_CFG_LIST, NULL, 0, 0)))
                    rc = OW_ERR_NOMEM;
                else
                    rc = ow__cfg_list_append(p->anchored, item);
                if (rc != OW_OK)
                    return ow__nomem(p->err);
                continue;
            }
        }
        if (ow__cfg_list_append(list, item) != OW_OK)
            return ow__nomem(p->err);
    }
}

static int parse_collection(parser *p, yaml_event_t *start, ow_cfg **out)
{
    bool is_map = start->type == YAML_MAPPING_START_EVENT;
    yaml_mark_t m = start->start_mark;
    if (p->depth >= p->limits.max_depth)
        return error_at(p, OW_ERR_SYNTAX, m,
                        "lists and maps nested more than %zu deep (ow_limits.max_depth)",
                        p->limits.max_depth);
    ow_cfg *c = ow__cfg_new(is_map ? OW_CFG_MAP : OW_CFG_LIST, p->file, (int)m.line + 1,
                            (int)m.column + 1);
    if (!c)
        return ow__nomem(p->err);
    const yaml_char_t *anchor_name =
        is_map ? start->data.mapping_start.anchor : start->data.sequence_start.anchor;
    if (remember_anchor(p, anchor_name, c) != OW_OK) {
        ow_cfg_free(c);
        return OW_ERR_NOMEM;
    }
    bool top = p->depth == 0;
    if (top && is_map)
        p->root = c;
    p->depth++;
    keyset ks = {0};
    int rc;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next_event(p, &ev)) != OW_OK)
            break;
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            ow_free(ks.slots);
            p->depth--;
            *out = c;
            return OW_OK;
        }
        if (!is_map) {
            ow_cfg *item = NULL;
            rc = parse_node(p, &ev, &item);
            yaml_event_delete(&ev);
            if (rc != OW_OK)
                break;
            if ((rc = ow__cfg_list_append(c, item)) != OW_OK) {
                ow__nomem(p->err);
                break;
            }
            continue;
        }
        /* a map key: only scalar keys are meaningful in a config */
        yaml_mark_t km = ev.start_mark;
        if (ev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&ev);
            rc = ow__error(p->err, OW_ERR_SYNTAX, p->file, (int)km.line + 1,
                           (int)km.column + 1, "map keys must be scalars");
            break;
        }
        char *key = ow__strdup((const char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        if (!key) {
            rc = ow__nomem(p->err);
            break;
        }
        long at = find_key(c, &ks, key, &rc);
        if (rc != OW_OK) {
            ow_free(key);
            ow__nomem(p->err);
            break;
        }
        if (at >= 0) {
            const ow_cfg *first = c->v.c.items[at];
            rc = ow__error(p->err, OW_ERR_DUPLICATE, p->file, (int)km.line + 1,
                           (int)km.column + 1,
                           "duplicate key '%s' (first defined at line %d, column %d)",
                           key, first->line, first->column);
            ow_free(key);
            break;
        }
        ow_cfg *value = NULL;
        if ((rc = next_event(p, &ev)) == OW_OK) {
            bool stream = top && p->opts && p->opts->stream_key &&
                          !strcmp(key, p->opts->stream_key) &&
                          ev.type == YAML_SEQUENCE_START_EVENT &&
                          !ev.data.sequence_start.anchor &&
                          p->depth < p->limits.max_depth;
            if (!stream) {
                rc = parse_node(p, &ev, &value);
            } else if (!(value = ow__cfg_new(OW_CFG_LIST, p->file,
                                             (int)ev.start_mark.line + 1,
                                             (int)ev.start_mark.column + 1))) {
                rc = ow__nomem(p->err);
            } else {
                p->depth++;
                if ((rc = parse_streamed(p, value)) != OW_OK) {
                    ow_cfg_free(value);
                    value = NULL;
                }
                p->depth--;
            }
            yaml_event_delete(&ev);
        }
        if (rc != OW_OK) {
            ow_free(key);
            break;
        }
        if ((rc = map_append(c, &ks, key, value)) != OW_OK) {
            ow__nomem(p->err);
            break;
        }
    }
    ow_free(ks.slots);
    if (p->root == c)
        p->root = NULL;
    ow_cfg_free(c);
    return rc;
}

/* The nodes of a subtree (counting stops once past cap) and its height in collections. */
static void measure(const ow_cfg *node, size_t cap, size_t *count, size_t *height)
{
    *height = 0;
    if (++*count > cap || (node->type != OW_CFG_LIST && node->type != OW_CFG_MAP))
        return;
    for (size_t i = 0; i < node->v.c.n && *count <= cap; i++) {
        size_t h;
        measure(node->v.c.items[i], cap, count, &h);
        if (h > *height)
            *height = h;
    }
    ++*height;
}

/* A copy of an anchored node for an alias, within the alias and depth budgets. */
static int expand_alias(parser *p, const ow_cfg *target, const char *name, yaml_mark_t m,
                        ow_cfg **out)
{
    size_t budget = p->limits.max_alias_nodes - p->alias_nodes, count = 0, height;
    measure(target, budget, &count, &height);
    if (count > budget)
        return error_at(p, OW_ERR_SYNTAX, m,
                        "alias '*%s': aliases would copy more than %zu nodes "
                        "(ow_limits.max_alias_nodes; nested aliases grow exponentially)",
                        name, p->limits.max_alias_nodes);
    if (p->depth + height > p->limits.max_depth)
        return error_at(p, OW_ERR_SYNTAX, m,
                        "alias '*%s': lists and maps nested more than %zu deep "
                        "(ow_limits.max_depth)",
                        name, p->limits.max_depth);
    p->alias_nodes += count;
    ow_cfg *copy = ow__cfg_dup(target);
    if (!copy)
        return ow__nomem(p->err);
    if (ow__cfg_set_pos(copy, p->file, (int)m.line + 1, (int)m.column + 1)) {
        ow_cfg_free(copy);
        return ow__nomem(p->err);
    }
    *out = copy;
    return OW_OK;
}

static int parse_node(parser *p, yaml_event_t *ev, ow_cfg **out)
{
    *out = NULL;
    switch (ev->type) {
    case YAML_SCALAR_EVENT: return parse_scalar(p, ev, out);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: return parse_collection(p, ev, out);
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        for (size_t i = p->n_anchors; i-- > 0;)
            if (!strcmp(p->anchors[i].name, name))
                return expand_alias(p, p->anchors[i].node, name, ev->start_mark, out);
        yaml_mark_t m = ev->start_mark;
        return ow__error(p->err, OW_ERR_SYNTAX, p->file, (int)m.line + 1,
                         (int)m.column + 1, "unknown alias '*%s'", name);
    }
    default: {
        yaml_mark_t m = ev->start_mark;
        return ow__error(p->err, OW_ERR_SYNTAX, p->file, (int)m.line + 1,
                         (int)m.column + 1, "unexpected YAML event");
    }
    }
}

int ow__cfg_parse(const char *text, size_t len, const char *file, ow_cfg **out,
                  ow_error *err)
{
    return ow__cfg_parse_with(text, len, file, NULL, out, err);
}

int ow__cfg_parse_with(const char *text, size_t len, const char *file,
                       const ow__parse_opts *opts, ow_cfg **out, ow_error *err)
{
    *out = NULL;
    parser p = {.file = file ? file : "<string>",
                .err = err,
                .limits = ow__limits_resolve(opts ? opts->limits : NULL),
                .opts = opts && opts->on_item ? opts : NULL};
    if (!yaml_parser_initialize(&p.yp))
        return ow__nomem(err);
    yaml_parser_set_input_string(&p.yp, (const unsigned char *)text, len);
    ow_cfg *root = NULL;
    int rc = OW_OK;
    bool have_doc = false;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next_event(&p, &ev)) != OW_OK)
            break;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT && have_doc) {
            yaml_mark_t m = ev.start_mark;
            yaml_event_delete(&ev);
            rc = ow__error(err, OW_ERR_SYNTAX, p.file, (int)m.line + 1, (int)m.column + 1,
                           "a config holds one YAML document; found a second one");
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT)
            have_doc = true;
        if (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT ||
            t == YAML_MAPPING_START_EVENT || t == YAML_ALIAS_EVENT) {
            rc = parse_node(&p, &ev, &root);
            yaml_event_delete(&ev);
            if (rc != OW_OK)
                break;
            continue;
        }
        yaml_event_delete(&ev);
    }
    for (size_t i = 0; i < p.n_anchors; i++)
        ow_free(p.anchors[i].name);
    ow_free(p.anchors);
    ow_cfg_free(p.anchored);
    yaml_parser_delete(&p.yp);
    if (rc != OW_OK) {
        ow_cfg_free(root);
        return rc;
    }
    if (!root || root->type == OW_CFG_NULL) {
        /* an empty file is an empty config */
        ow_cfg_free(root);
        root = ow__cfg_new(OW_CFG_MAP, p.file, 1, 1);
        if (!root)
            return ow__nomem(err);
    }
    *out = root;
    return OW_OK;
}
