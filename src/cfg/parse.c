/* parse.c -- YAML text to an ow_cfg tree with libyaml's event API. Every node keeps its
 * 1-based position; duplicate map keys are rejected at the second key (libyaml does not
 * catch them); plain scalars are typed by the YAML 1.2 core schema. */
#include "../internal.h"

#include <errno.h>
#include <math.h>
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
} parser;

static int parse_node(parser *p, yaml_event_t *ev, ow_cfg **out);

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

static int parse_collection(parser *p, yaml_event_t *start, ow_cfg **out)
{
    bool is_map = start->type == YAML_MAPPING_START_EVENT;
    yaml_mark_t m = start->start_mark;
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
    int rc;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next_event(p, &ev)) != OW_OK)
            break;
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
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
        const ow_cfg *first = ow__cfg_map_get(c, key);
        if (first) {
            rc = ow__error(p->err, OW_ERR_DUPLICATE, p->file, (int)km.line + 1,
                           (int)km.column + 1,
                           "duplicate key '%s' (first defined at line %d, column %d)",
                           key, first->line, first->column);
            ow_free(key);
            break;
        }
        ow_cfg *value = NULL;
        if ((rc = next_event(p, &ev)) == OW_OK) {
            rc = parse_node(p, &ev, &value);
            yaml_event_delete(&ev);
        }
        if (rc == OW_OK && (rc = ow__cfg_map_set(c, key, value)) != OW_OK)
            ow__nomem(p->err);
        ow_free(key);
        if (rc != OW_OK)
            break;
    }
    ow_cfg_free(c);
    return rc;
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
            if (!strcmp(p->anchors[i].name, name)) {
                ow_cfg *copy = ow__cfg_dup(p->anchors[i].node);
                if (!copy)
                    return ow__nomem(p->err);
                yaml_mark_t m = ev->start_mark;
                if (ow__cfg_set_pos(copy, p->file, (int)m.line + 1, (int)m.column + 1)) {
                    ow_cfg_free(copy);
                    return ow__nomem(p->err);
                }
                *out = copy;
                return OW_OK;
            }
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
    *out = NULL;
    parser p = {.file = file ? file : "<string>", .err = err};
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
