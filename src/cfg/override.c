/* override.c -- mmengine's --cfg-options on a loaded config: "a.b.c=VALUE", VALUE read
 * as a YAML scalar or flow collection, merged like Config.merge_from_dict (SEMANTICS
 * 2.5). The merge runs on a copy that is swapped in, so a failure changes nothing.
 *
 * Positions of override nodes: file "<cfg-options>", line 1, and the 1-based column in
 * the assignment string where the node starts: the value's first character for the
 * value (and its items), the key component for the map that holds it. */
#include "cfg_internal.h"

#include <string.h>

#define WHERE "<cfg-options>"

static void shift_columns(ow_cfg *node, int by)
{
    if (node->line == 1)
        node->column += by;
    if (node->type == OW_CFG_MAP || node->type == OW_CFG_LIST)
        for (size_t i = 0; i < node->v.c.n; i++)
            shift_columns(node->v.c.items[i], by);
}

/* Brackets balanced outside quoted scalars. A quote opens a scalar only where a flow
 * scalar may start, so "[don't]" is fine. */
static bool balanced(const char *s)
{
    char stack[64];
    size_t depth = 0;
    char quote = 0, prev = 0;
    for (; *s; s++) {
        char c = *s;
        if (quote) {
            if (c == quote)
                quote = 0;
            else if (c == '\\' && quote == '"' && s[1])
                s++;
            continue;
        }
        if ((c == '\'' || c == '"') && (!prev || strchr("[{,:", prev)))
            quote = c;
        else if (c == '[' || c == '{') {
            if (depth == sizeof stack)
                return false;
            stack[depth++] = c;
        } else if (c == ']' || c == '}') {
            if (!depth || stack[--depth] != (c == ']' ? '[' : '{'))
                return false;
        }
        if (c != ' ' && c != '\t')
            prev = c;
    }
    return depth == 0 && !quote;
}

/* VALUE: a flow collection or quoted scalar goes through the YAML parser; anything
 * else is one plain scalar typed by the core schema (so `a=` is null, `a=x: y` the
 * string "x: y", never a block map). */
static int parse_value(const char *text, int col, ow_cfg **out, ow_error *err)
{
    *out = NULL;
    size_t len = strlen(text);
    ow_cfg *v = NULL;
    int rc;
    if (len && strchr("[{'\"", text[0])) {
        if (text[0] != '\'' && text[0] != '"' && !balanced(text))
            return ow__error(err, OW_ERR_SYNTAX, WHERE, 1, col,
                             "unbalanced brackets in value '%.128s'", text);
        ow_error perr;
        ow_error_clear(&perr);
        if ((rc = ow__cfg_parse(text, len, WHERE, &v, &perr)) != OW_OK) {
            if (rc == OW_ERR_NOMEM)
                return ow__nomem(err);
            return ow__error(err, rc, WHERE, perr.line,
                             perr.line == 1 ? perr.column + col - 1 : perr.column, "%s",
                             perr.message);
        }
        ow_cfg_type want = text[0] == '['   ? OW_CFG_LIST
                           : text[0] == '{' ? OW_CFG_MAP
                                            : OW_CFG_STRING;
        if (v->type != want) {
            ow_cfg_free(v);
            return ow__error(
                err, OW_ERR_SYNTAX, WHERE, 1, col,
                "value must be a YAML scalar or flow collection, got '%.128s'", text);
        }
        shift_columns(v, col - 1);
    } else {
        if (!(v = ow__cfg_new(OW_CFG_NULL, WHERE, 1, col)))
            return ow__nomem(err);
        if (ow__cfg_resolve_scalar(v, text, false) != OW_OK) {
            ow_cfg_free(v);
            return ow__nomem(err);
        }
    }
    *out = v;
    return OW_OK;
}

/* {a: {b: {c: value}}} for "a.b.c": each map at the column of its key. Takes value. */
static int nest(const char *assignment, const char *eq, ow_cfg *value, ow_cfg **out,
                ow_error *err)
{
    ow_cfg *node = value;
    const char *end = eq;
    for (;;) {
        const char *start = end;
        while (start > assignment && start[-1] != '.')
            start--;
        ow_cfg *map = ow__cfg_new(OW_CFG_MAP, WHERE, 1, (int)(start - assignment) + 1);
        char *key = ow__strndup(start, (size_t)(end - start));
        if (!map || !key) {
            ow_free(key);
            ow_cfg_free(map);
            ow_cfg_free(node);
            return ow__nomem(err);
        }
        int rc = ow__cfg_map_set(map, key, node); /* owns node even when it fails */
        ow_free(key);
        node = map;
        if (rc != OW_OK) {
            ow_cfg_free(node);
            return ow__nomem(err);
        }
        if (start == assignment)
            break;
        end = start - 1;
    }
    *out = node;
    return OW_OK;
}

int ow_cfg_set(ow_cfg *cfg, const char *assignment, ow_error *err)
{
    ow__error_reset(err);
    if (!cfg || !assignment)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_cfg_set: needs a config and an assignment");
    if (cfg->type != OW_CFG_MAP)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_cfg_set: the config is not a map");
    const char *eq = strchr(assignment, '=');
    if (!eq)
        return ow__error(err, OW_ERR_SYNTAX, WHERE, 1, 1,
                         "expected KEY=VALUE, got '%.128s'", assignment);
    if (eq == assignment)
        return ow__error(err, OW_ERR_SYNTAX, WHERE, 1, 1, "empty key in '%.128s'",
                         assignment);
    for (const char *p = assignment;;) {
        const char *q = p;
        while (q < eq && *q != '.')
            q++;
        if (q == p)
            return ow__error(err, OW_ERR_SYNTAX, WHERE, 1, (int)(p - assignment) + 1,
                             "empty key component in '%.*s'", (int)(eq - assignment),
                             assignment);
        if (q == eq)
            break;
        p = q + 1;
    }
    /* mmengine strips the whole value of spaces; we trim the ends only */
    const char *vb = eq + 1, *ve = vb + strlen(vb);
    while (*vb == ' ' || *vb == '\t')
        vb++;
    while (ve > vb && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    char *text = ow__strndup(vb, (size_t)(ve - vb));
    if (!text)
        return ow__nomem(err);
    ow_cfg *value = NULL, *override = NULL, *copy = NULL;
    int rc = parse_value(text, (int)(vb - assignment) + 1, &value, err);
    ow_free(text);
    if (rc != OW_OK)
        return rc;
    if ((rc = nest(assignment, eq, value, &override, err)) != OW_OK)
        return rc;
    if (!(copy = ow__cfg_dup(cfg))) {
        ow_cfg_free(override);
        return ow__nomem(err);
    }
    if ((rc = ow__cfg_merge(copy, override, true, "config", err)) != OW_OK) {
        ow_cfg_free(copy);
        return rc;
    }
    /* swap the merged copy into the caller's node, which keeps its address */
    ow_cfg tmp = *cfg;
    *cfg = *copy;
    *copy = tmp;
    ow_cfg_free(copy);
    return OW_OK;
}
