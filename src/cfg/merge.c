/* merge.c -- mmengine's Config._merge_a_into_b on config trees: how a child config
 * overrides the union of its bases, and how --cfg-options override a config
 * (SEMANTICS 2.3 and 2.5). Nodes are moved, not copied, from the overriding tree. */
#include "cfg_internal.h"

#include <string.h>

typedef struct merger {
    bool list_keys;        /* --cfg-options: digit keys index lists */
    const char *into_name; /* "base", "config": what is overridden, for messages */
    int code;              /* the code of a map-over-non-map error */
    ow_error *err;
} merger;

static const char *with_article(ow_cfg_type t)
{
    switch (t) {
    case OW_CFG_NULL: return "null";
    case OW_CFG_BOOL: return "a bool";
    case OW_CFG_INT: return "an int";
    case OW_CFG_FLOAT: return "a float";
    case OW_CFG_STRING: return "a string";
    case OW_CFG_LIST: return "a list";
    case OW_CFG_MAP: return "a map";
    }
    return "?";
}

/* Removes `_delete_` from a map, telling whether it asked for wholesale replacement.
 * mmengine pops it only when the base has the key and leaks it into the optimizer's
 * arguments otherwise; we always remove it. */
static int take_delete(ow_cfg *map, bool *del, ow_error *err)
{
    *del = false;
    const ow_cfg *d = ow__cfg_map_get(map, "_delete_");
    if (!d)
        return OW_OK;
    if (d->type != OW_CFG_BOOL)
        return ow__error_at(err, OW_ERR_TYPE, d, "_delete_: expected bool, got %s",
                            ow_cfg_type_name(d->type));
    *del = d->v.b;
    ow__cfg_map_remove(map, "_delete_");
    return OW_OK;
}

int ow__cfg_strip_delete(ow_cfg *node, ow_error *err)
{
    if (!node || (node->type != OW_CFG_MAP && node->type != OW_CFG_LIST))
        return OW_OK;
    bool del;
    int rc = node->type == OW_CFG_MAP ? take_delete(node, &del, err) : OW_OK;
    for (size_t i = 0; rc == OW_OK && i < node->v.c.n; i++)
        rc = ow__cfg_strip_delete(node->v.c.items[i], err);
    return rc;
}

static void join_path(char *buf, size_t n, const char *prefix, const char *key)
{
    if (*prefix)
        snprintf(buf, n, "%s.%s", prefix, key);
    else
        snprintf(buf, n, "%s", key);
}

/* A list index written in decimal; false for anything else or an absurd value. */
static bool parse_index(const char *key, size_t *idx)
{
    size_t v = 0;
    if (!*key)
        return false;
    for (const char *p = key; *p; p++) {
        if (*p < '0' || *p > '9' || v > 100000000)
            return false;
        v = v * 10 + (size_t)(*p - '0');
    }
    *idx = v;
    return true;
}

static int merge_map(const merger *m, ow_cfg *into, ow_cfg *from, const char *prefix);

/* Merges v (owned) over existing (NULL when absent). *out is what the slot must then
 * hold: existing itself after an in-place merge, or v. */
static int merge_over(const merger *m, ow_cfg *existing, ow_cfg *v, const char *path,
                      ow_cfg **out)
{
    *out = NULL;
    int rc;
    if (v->type == OW_CFG_MAP) {
        bool del;
        if ((rc = take_delete(v, &del, m->err)) != OW_OK)
            goto fail;
        if (existing && !del) {
            if (existing->type == OW_CFG_MAP ||
                (m->list_keys && existing->type == OW_CFG_LIST)) {
                rc = merge_map(m, existing, v, path);
                *out = rc == OW_OK ? existing : NULL;
                return rc;
            }
            char where[OW_ERROR_FILE_LEN + 40] = "";
            if (existing->file)
                snprintf(where, sizeof where, " (%s:%d:%d)", existing->file,
                         existing->line, existing->column);
            rc = ow__error_at(
                m->err, m->code, v,
                "'%s' is a map here but %s in the %s%s; set '_delete_: true' "
                "in the map to replace it",
                path, with_article(existing->type), m->into_name, where);
            goto fail;
        }
    }
    /* replaced wholesale: nothing below can delete anything any more */
    if ((rc = ow__cfg_strip_delete(v, m->err)) != OW_OK)
        goto fail;
    *out = v;
    return OW_OK;
fail:
    ow_cfg_free(v);
    return rc;
}

/* Merges the map `from` (owned) into `into`, a map or, with list keys, a list. */
static int merge_map(const merger *m, ow_cfg *into, ow_cfg *from, const char *prefix)
{
    int rc = OW_OK;
    for (size_t i = 0; rc == OW_OK && i < from->v.c.n; i++) {
        const char *key = from->v.c.keys[i];
        ow_cfg *v = from->v.c.items[i];
        from->v.c.items[i] = NULL; /* moved: freeing `from` no longer frees it */
        char path[512];
        join_path(path, sizeof path, prefix, key);
        ow_cfg *out = NULL;
        if (into->type == OW_CFG_LIST) {
            size_t idx;
            if (!parse_index(key, &idx)) {
                ow_cfg_free(v);
                rc = ow__error_at(m->err, OW_ERR_TYPE, from,
                                  "'%s' is a list: '%s' is not an index", prefix, key);
            } else if (idx >= into->v.c.n) {
                ow_cfg_free(v);
                rc =
                    ow__error_at(m->err, OW_ERR_RANGE, from,
                                 "index %s is out of range for '%s', a list of %zu items",
                                 key, prefix, into->v.c.n);
            } else if ((rc = merge_over(m, into->v.c.items[idx], v, path, &out)) ==
                           OW_OK &&
                       out != into->v.c.items[idx]) {
                ow_cfg_free(into->v.c.items[idx]);
                into->v.c.items[idx] = out;
            }
            continue;
        }
        ow_cfg *existing = ow__cfg_map_get(into, key);
        if ((rc = merge_over(m, existing, v, path, &out)) == OW_OK && out != existing &&
            ow__cfg_map_set(into, key, out) != OW_OK)
            rc = ow__nomem(m->err);
    }
    ow_cfg_free(from);
    return rc;
}

int ow__cfg_merge(ow_cfg *into, ow_cfg *from, bool allow_list_keys, const char *into_name,
                  ow_error *err)
{
    if (!into || !from || into->type != OW_CFG_MAP || from->type != OW_CFG_MAP) {
        ow_cfg_free(from);
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow__cfg_merge: needs two maps");
    }
    merger m = {.list_keys = allow_list_keys,
                .into_name = into_name,
                .code = allow_list_keys ? OW_ERR_TYPE : OW_ERR_INHERIT,
                .err = err};
    /* `_delete_` at the top has no base value to replace: dropped */
    bool del;
    int rc = take_delete(from, &del, err);
    if (rc != OW_OK) {
        ow_cfg_free(from);
        return rc;
    }
    return merge_map(&m, into, from, "");
}
