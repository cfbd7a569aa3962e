/* node.c -- the config tree's nodes: creation, ordered maps, lists, copies, equality,
 * and the read-only accessors of the public API. */
#include "../internal.h"

#include <math.h>
#include <string.h>

ow_cfg *ow__cfg_new(ow_cfg_type type, const char *file, int line, int column)
{
    ow_cfg *n = ow__calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->type = type;
    if (ow__cfg_set_pos(n, file, line, column) != OW_OK) {
        ow_free(n);
        return NULL;
    }
    return n;
}

/* Moves a node's pooled data (file, string, arrays, keys) to the heap, all or nothing,
 * before a mutator frees or grows it. The node itself may stay in the pool. */
static int unpool(ow_cfg *n)
{
    if (!(n->pooled & OW__POOLED_DATA))
        return OW_OK;
    bool coll = n->type == OW_CFG_LIST || n->type == OW_CFG_MAP;
    size_t cap = coll ? n->v.c.cap : 0, done = 0;
    char *file = NULL, *s = NULL;
    ow_cfg **items = NULL;
    char **keys = NULL;
    if ((n->file && !(file = ow__strdup(n->file))) ||
        (n->type == OW_CFG_STRING && !(s = ow__strdup(n->v.s))) ||
        (cap && !(items = ow__malloc(cap * sizeof *items))) ||
        (cap && n->type == OW_CFG_MAP && !(keys = ow__malloc(cap * sizeof *keys))))
        goto fail;
    for (; keys && done < n->v.c.n; done++)
        if (!(keys[done] = ow__strdup(n->v.c.keys[done])))
            goto fail;
    n->file = file;
    if (n->type == OW_CFG_STRING)
        n->v.s = s;
    if (coll) {
        if (cap)
            memcpy(items, n->v.c.items, n->v.c.n * sizeof *items);
        n->v.c.items = items;
        n->v.c.keys = keys;
    }
    n->pooled &= (unsigned char)~OW__POOLED_DATA;
    return OW_OK;
fail:
    while (done > 0)
        ow_free(keys[--done]);
    ow_free(keys);
    ow_free(items);
    ow_free(s);
    ow_free(file);
    return OW_ERR_NOMEM;
}

int ow__cfg_set_pos(ow_cfg *node, const char *file, int line, int column)
{
    char *f = NULL;
    if (unpool(node) != OW_OK || (file && !(f = ow__strdup(file))))
        return OW_ERR_NOMEM;
    ow_free(node->file);
    node->file = f;
    node->line = line;
    node->column = column;
    return OW_OK;
}

ow_cfg *ow__cfg_new_double(double d)
{
    ow_cfg *n = ow__cfg_new(OW_CFG_FLOAT, NULL, 0, 0);
    if (n)
        n->v.d = d;
    return n;
}

ow_cfg *ow__cfg_new_int(int64_t i)
{
    ow_cfg *n = ow__cfg_new(OW_CFG_INT, NULL, 0, 0);
    if (n)
        n->v.i = i;
    return n;
}

ow_cfg *ow__cfg_new_bool(bool b)
{
    ow_cfg *n = ow__cfg_new(OW_CFG_BOOL, NULL, 0, 0);
    if (n)
        n->v.b = b;
    return n;
}

ow_cfg *ow__cfg_new_string(const char *s)
{
    ow_cfg *n = ow__cfg_new(OW_CFG_STRING, NULL, 0, 0);
    if (n && !(n->v.s = ow__strdup(s))) {
        ow_free(n);
        return NULL;
    }
    return n;
}

void ow_cfg_free(ow_cfg *cfg)
{
    if (!cfg)
        return;
    bool heap = !(cfg->pooled & OW__POOLED_DATA); /* pooled memory goes with its pool */
    if (cfg->type == OW_CFG_STRING && heap)
        ow_free(cfg->v.s);
    if (cfg->type == OW_CFG_LIST || cfg->type == OW_CFG_MAP) {
        for (size_t i = 0; i < cfg->v.c.n; i++) {
            ow_cfg_free(cfg->v.c.items[i]);
            if (cfg->v.c.keys && heap)
                ow_free(cfg->v.c.keys[i]);
        }
        if (heap) {
            ow_free(cfg->v.c.items);
            ow_free(cfg->v.c.keys);
        }
    }
    if (heap)
        ow_free(cfg->file);
    if (!(cfg->pooled & OW__POOLED_NODE))
        ow_free(cfg);
}

int ow__cfg_reserve(ow_cfg *c, size_t need)
{
    if (need <= c->v.c.cap)
        return OW_OK;
    if (unpool(c) != OW_OK)
        return OW_ERR_NOMEM;
    size_t cap = c->v.c.cap;
    if (ow__grow((void **)&c->v.c.items, &cap, need, sizeof(ow_cfg *)) != OW_OK)
        return OW_ERR_NOMEM;
    if (c->type == OW_CFG_MAP) {
        size_t kcap = c->v.c.cap;
        if (ow__grow((void **)&c->v.c.keys, &kcap, cap, sizeof(char *)) != OW_OK)
            return OW_ERR_NOMEM;
    }
    c->v.c.cap = cap;
    return OW_OK;
}

int ow__cfg_list_append(ow_cfg *list, ow_cfg *item)
{
    if (!item)
        return OW_ERR_NOMEM;
    if (ow__cfg_reserve(list, list->v.c.n + 1) != OW_OK) {
        ow_cfg_free(item);
        return OW_ERR_NOMEM;
    }
    list->v.c.items[list->v.c.n++] = item;
    return OW_OK;
}

long ow__cfg_map_index(const ow_cfg *map, const char *key)
{
    if (!map || map->type != OW_CFG_MAP)
        return -1;
    for (size_t i = 0; i < map->v.c.n; i++) /* first bytes first: most keys differ */
        if (map->v.c.keys[i][0] == key[0] && strcmp(map->v.c.keys[i], key) == 0)
            return (long)i;
    return -1;
}

ow_cfg *ow__cfg_map_get(const ow_cfg *map, const char *key)
{
    long i = ow__cfg_map_index(map, key);
    return i < 0 ? NULL : map->v.c.items[i];
}

int ow__cfg_map_set(ow_cfg *map, const char *key, ow_cfg *value)
{
    if (!value)
        return OW_ERR_NOMEM;
    long i = ow__cfg_map_index(map, key);
    if (i >= 0) {
        ow_cfg_free(map->v.c.items[i]);
        map->v.c.items[i] = value;
        return OW_OK;
    }
    char *k = NULL;
    if (unpool(map) != OW_OK || !(k = ow__strdup(key)) ||
        ow__cfg_reserve(map, map->v.c.n + 1) != OW_OK) {
        ow_free(k);
        ow_cfg_free(value);
        return OW_ERR_NOMEM;
    }
    map->v.c.keys[map->v.c.n] = k;
    map->v.c.items[map->v.c.n++] = value;
    return OW_OK;
}

void ow__cfg_map_remove(ow_cfg *map, const char *key)
{
    long i = ow__cfg_map_index(map, key);
    if (i < 0)
        return;
    ow_cfg_free(map->v.c.items[i]);
    if (!(map->pooled & OW__POOLED_DATA))
        ow_free(map->v.c.keys[i]);
    size_t rest = map->v.c.n - (size_t)i - 1;
    memmove(map->v.c.items + i, map->v.c.items + i + 1, rest * sizeof(ow_cfg *));
    memmove(map->v.c.keys + i, map->v.c.keys + i + 1, rest * sizeof(char *));
    map->v.c.n--;
}

ow_cfg *ow__cfg_dup(const ow_cfg *node)
{
    if (!node)
        return NULL;
    ow_cfg *c = ow__cfg_new(node->type, node->file, node->line, node->column);
    if (!c)
        return NULL;
    c->quoted = node->quoted;
    switch (node->type) {
    case OW_CFG_STRING:
        if (!(c->v.s = ow__strdup(node->v.s)))
            goto fail;
        break;
    case OW_CFG_LIST:
    case OW_CFG_MAP:
        for (size_t i = 0; i < node->v.c.n; i++) {
            ow_cfg *item = ow__cfg_dup(node->v.c.items[i]);
            int rc = node->type == OW_CFG_MAP
                         ? ow__cfg_map_set(c, node->v.c.keys[i], item)
                         : ow__cfg_list_append(c, item);
            if (rc != OW_OK)
                goto fail;
        }
        break;
    default: c->v = node->v;
    }
    return c;
fail:
    ow_cfg_free(c);
    return NULL;
}

int ow_cfg_copy(const ow_cfg *node, ow_cfg **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_cfg_copy: out is NULL");
    *out = NULL;
    if (!node)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_cfg_copy: node is NULL");
    if (!(*out = ow__cfg_dup(node)))
        return ow__nomem(err);
    return OW_OK;
}

bool ow__cfg_equal(const ow_cfg *a, const ow_cfg *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case OW_CFG_NULL: return true;
    case OW_CFG_BOOL: return a->v.b == b->v.b;
    case OW_CFG_INT: return a->v.i == b->v.i;
    case OW_CFG_FLOAT: /* structural: NaN equals NaN, 0.0 differs from -0.0 */
        return (a->v.d != a->v.d && b->v.d != b->v.d) ||
               (a->v.d == b->v.d && signbit(a->v.d) == signbit(b->v.d));
    case OW_CFG_STRING: return strcmp(a->v.s, b->v.s) == 0;
    case OW_CFG_LIST:
    case OW_CFG_MAP:
        if (a->v.c.n != b->v.c.n)
            return false;
        for (size_t i = 0; i < a->v.c.n; i++) {
            if (a->type == OW_CFG_MAP && strcmp(a->v.c.keys[i], b->v.c.keys[i]) != 0)
                return false;
            if (!ow__cfg_equal(a->v.c.items[i], b->v.c.items[i]))
                return false;
        }
        return true;
    }
    return false;
}

ow_cfg_type ow_cfg_get_type(const ow_cfg *node)
{
    return node ? node->type : OW_CFG_NULL;
}

const char *ow_cfg_type_name(ow_cfg_type type)
{
    static const char *const names[] = {"null",   "bool", "int", "float",
                                        "string", "list", "map"};
    return (unsigned)type < OW__ARRAY_LEN(names) ? names[type] : "?";
}

size_t ow_cfg_get_size(const ow_cfg *node)
{
    if (!node || (node->type != OW_CFG_LIST && node->type != OW_CFG_MAP))
        return 0;
    return node->v.c.n;
}

const ow_cfg *ow_cfg_get_item(const ow_cfg *node, size_t i)
{
    return i < ow_cfg_get_size(node) ? node->v.c.items[i] : NULL;
}

const char *ow_cfg_get_key(const ow_cfg *node, size_t i)
{
    if (!node || node->type != OW_CFG_MAP || i >= node->v.c.n)
        return NULL;
    return node->v.c.keys[i];
}

const char *ow_cfg_get_file(const ow_cfg *node)
{
    return node ? node->file : NULL;
}

int ow_cfg_get_line(const ow_cfg *node)
{
    return node ? node->line : 0;
}

int ow_cfg_get_column(const ow_cfg *node)
{
    return node ? node->column : 0;
}

int ow_cfg_new(ow_cfg **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_cfg_new: out is NULL");
    if (!(*out = ow__cfg_new(OW_CFG_MAP, NULL, 0, 0)))
        return ow__nomem(err);
    return OW_OK;
}

int ow_cfg_set_node(ow_cfg *map, const char *path, const ow_cfg *value, ow_error *err)
{
    ow__error_reset(err);
    if (!map || !path || !*path || !value || map->type != OW_CFG_MAP)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_cfg_set_node: needs a map, a path and a value");
    /* walk, noting which maps must be created, before changing anything */
    ow_cfg *copy = ow__cfg_dup(value);
    if (!copy)
        return ow__nomem(err);
    ow_cfg *cur = map;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        char *key = ow__strndup(p, len);
        if (!key) {
            ow_cfg_free(copy);
            return ow__nomem(err);
        }
        if (!dot) {
            int rc = ow__cfg_map_set(cur, key, copy);
            ow_free(key);
            return rc ? ow__nomem(err) : OW_OK;
        }
        ow_cfg *next = ow__cfg_map_get(cur, key);
        if (next && next->type != OW_CFG_MAP) {
            ow_free(key);
            ow_cfg_free(copy);
            return ow__error_at(err, OW_ERR_TYPE, next,
                                "cannot set '%s': '%.*s' is a %s, not a map", path,
                                (int)(dot - path), path, ow_cfg_type_name(next->type));
        }
        if (!next) {
            next = ow__cfg_new(OW_CFG_MAP, NULL, 0, 0);
            if (!next || ow__cfg_map_set(cur, key, next) != OW_OK) {
                ow_free(key);
                ow_cfg_free(copy);
                return ow__nomem(err);
            }
        }
        ow_free(key);
        cur = next;
        p = dot + 1;
    }
}
