/* pool.c -- a bump allocator for the many small config nodes of one owner (a build's
 * param groups: 20,000 groups of ten values each), interned strings, and the config
 * operations that build pooled nodes. Chunks come from ow__malloc, so OOM tests see
 * each one fail; everything is freed at once with the pool. */
#include "../internal.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FIRST_CHUNK 4096
#define MAX_CHUNK   (64 * 1024) /* below malloc's mmap threshold */

typedef struct chunk {
    struct chunk *next;
    max_align_t data[]; /* the blocks */
} chunk;

struct ow__pool {
    chunk *chunks;     /* newest first */
    char *cur, *end;   /* the free part of the newest chunk */
    size_t next_size;  /* bytes of data in the next chunk */
    const char **slot; /* [cap] interned strings, open addressing; NULL = empty */
    size_t cap, count;
    const char *last; /* the last string interned: copies of one file name repeat */
};

ow__pool *ow__pool_new(void)
{
    ow__pool *p = ow__calloc(1, sizeof *p);
    if (p)
        p->next_size = FIRST_CHUNK;
    return p;
}

void ow__pool_free(ow__pool *pool)
{
    if (!pool)
        return;
    for (chunk *c = pool->chunks, *next; c; c = next) {
        next = c->next;
        ow_free(c);
    }
    ow_free(pool->slot);
    ow_free(pool);
}

/* n bytes aligned to `align` (a power of two, at most what malloc guarantees). */
static void *pool_bytes(ow__pool *p, size_t n, size_t align)
{
    uintptr_t at = ((uintptr_t)p->cur + (align - 1)) & ~(uintptr_t)(align - 1);
    if (p->cur && at <= (uintptr_t)p->end && n <= (uintptr_t)p->end - at) {
        p->cur = (char *)at + n;
        return (char *)at;
    }
    size_t size = p->next_size;
    if (size < n)
        size = n; /* a big block gets a chunk of its own size */
    chunk *c = ow__malloc(offsetof(chunk, data) + size);
    if (!c)
        return NULL;
    c->next = p->chunks;
    p->chunks = c;
    p->cur = (char *)c->data + n;
    p->end = (char *)c->data + size;
    if (p->next_size < MAX_CHUNK)
        p->next_size *= 2;
    return c->data;
}

void *ow__pool_alloc(ow__pool *pool, size_t n, size_t align)
{
    return pool_bytes(pool, n ? n : 1, align);
}

static char *pool_strndup(ow__pool *p, const char *s, size_t len)
{
    char *d = pool_bytes(p, len + 1, 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/* FNV-1a over the string; len set to its length. */
static size_t hash_of(const char *s, size_t *len)
{
    uint64_t h = 14695981039346656037u;
    const char *c = s;
    for (; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211u;
    *len = (size_t)(c - s);
    return (size_t)(h ^ (h >> 32));
}

static int grow_table(ow__pool *p)
{
    size_t cap = p->cap ? p->cap * 2 : 64;
    const char **slot = ow__calloc(cap, sizeof *slot);
    if (!slot)
        return OW_ERR_NOMEM;
    for (size_t i = 0; i < p->cap; i++) {
        if (!p->slot[i])
            continue;
        size_t len, j = hash_of(p->slot[i], &len) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = p->slot[i];
    }
    ow_free(p->slot);
    p->slot = slot;
    p->cap = cap;
    return OW_OK;
}

const char *ow__pool_intern(ow__pool *pool, const char *s)
{
    /* s is the pool's own last copy (never compare a caller's pointer: its buffer
     * may hold other text next time) */
    if (s == pool->last)
        return s;
    if (pool->count + 1 > pool->cap / 2 && grow_table(pool) != OW_OK)
        return NULL;
    size_t len, j = hash_of(s, &len) & (pool->cap - 1);
    for (; pool->slot[j]; j = (j + 1) & (pool->cap - 1))
        if (!strcmp(pool->slot[j], s))
            goto found;
    if (!(pool->slot[j] = pool_strndup(pool, s, len)))
        return NULL;
    pool->count++;
found:
    return pool->last = pool->slot[j];
}

/* ---- pooled config nodes ---------------------------------------------------------- */

ow_cfg *ow__cfg_pool_new(ow__pool *pool, ow_cfg_type type)
{
    ow_cfg *n = pool_bytes(pool, sizeof *n, _Alignof(ow_cfg));
    if (n) {
        memset(n, 0, sizeof *n);
        n->type = type;
        n->pooled = OW__POOLED_NODE | OW__POOLED_DATA;
    }
    return n;
}

/* Moves a pooled collection's items (and keys) to new pool arrays of cap slots. */
static int pool_arrays(ow__pool *pool, ow_cfg *coll, size_t cap)
{
    bool map = coll->type == OW_CFG_MAP;
    /* one block: items, then (maps) keys; the old block stays in the pool */
    ow_cfg **items = pool_bytes(
        pool, cap * (sizeof(ow_cfg *) + (map ? sizeof(char *) : 0)), _Alignof(ow_cfg *));
    if (!items)
        return OW_ERR_NOMEM;
    size_t n = coll->v.c.n;
    if (n)
        memcpy(items, coll->v.c.items, n * sizeof *items);
    if (map) {
        char **keys = (char **)(items + cap);
        if (n)
            memcpy(keys, coll->v.c.keys, n * sizeof *keys);
        coll->v.c.keys = keys;
    }
    coll->v.c.items = items;
    coll->v.c.cap = cap;
    return OW_OK;
}

int ow__cfg_pool_reserve(ow__pool *pool, ow_cfg *coll, size_t need)
{
    if (need <= coll->v.c.cap)
        return OW_OK;
    if (!(coll->pooled & OW__POOLED_DATA))
        return ow__cfg_reserve(coll, need);
    size_t cap = coll->v.c.cap ? coll->v.c.cap * 2 : 4;
    return pool_arrays(pool, coll, cap < need ? need : cap);
}

ow_cfg *ow__cfg_pool_dup(ow__pool *pool, const ow_cfg *node)
{
    if (!node)
        return NULL;
    /* on failure the partial copy holds pool memory only: nothing to free */
    ow_cfg *c = pool_bytes(pool, sizeof *c, _Alignof(ow_cfg));
    if (!c)
        return NULL;
    *c = *node; /* the scalars' values and the position; the rest is replaced below */
    c->pooled = OW__POOLED_NODE | OW__POOLED_DATA;
    /* file == last: copying a node of this pool, whose file is interned already */
    if (node->file && node->file != pool->last &&
        !(c->file = (char *)ow__pool_intern(pool, node->file)))
        return NULL;
    switch (node->type) {
    case OW_CFG_STRING:
        if (!(c->v.s = pool_strndup(pool, node->v.s, strlen(node->v.s))))
            return NULL;
        break;
    case OW_CFG_LIST:
    case OW_CFG_MAP:
        memset(&c->v, 0, sizeof c->v);
        if (node->v.c.n && pool_arrays(pool, c, node->v.c.n) != OW_OK)
            return NULL;
        for (size_t i = 0; i < node->v.c.n; i++) {
            if (!(c->v.c.items[i] = ow__cfg_pool_dup(pool, node->v.c.items[i])))
                return NULL;
            if (node->type == OW_CFG_MAP &&
                !(c->v.c.keys[i] = (char *)ow__pool_intern(pool, node->v.c.keys[i])))
                return NULL;
            c->v.c.n = i + 1;
        }
        break;
    default: break;
    }
    return c;
}

int ow__cfg_pool_map_add(ow__pool *pool, ow_cfg *map, const char *key, ow_cfg *value)
{
    if (!value)
        return OW_ERR_NOMEM;
    if (!(map->pooled & OW__POOLED_DATA))
        return ow__cfg_map_set(map, key, value);
    if (ow__cfg_pool_reserve(pool, map, map->v.c.n + 1) != OW_OK) {
        ow_cfg_free(value);
        return OW_ERR_NOMEM;
    }
    map->v.c.keys[map->v.c.n] = (char *)key;
    map->v.c.items[map->v.c.n++] = value;
    return OW_OK;
}

int ow__cfg_pool_map_set(ow__pool *pool, ow_cfg *map, const char *key, ow_cfg *value)
{
    if (!value)
        return OW_ERR_NOMEM;
    if (!(map->pooled & OW__POOLED_DATA))
        return ow__cfg_map_set(map, key, value);
    long i = ow__cfg_map_index(map, key);
    if (i >= 0) {
        ow_cfg_free(map->v.c.items[i]);
        map->v.c.items[i] = value;
        return OW_OK;
    }
    const char *k = ow__pool_intern(pool, key);
    if (!k) {
        ow_cfg_free(value);
        return OW_ERR_NOMEM;
    }
    return ow__cfg_pool_map_add(pool, map, k, value);
}

int ow__cfg_pool_list_append(ow__pool *pool, ow_cfg *list, ow_cfg *item)
{
    if (!item)
        return OW_ERR_NOMEM;
    if (!(list->pooled & OW__POOLED_DATA))
        return ow__cfg_list_append(list, item);
    if (ow__cfg_pool_reserve(pool, list, list->v.c.n + 1) != OW_OK) {
        ow_cfg_free(item);
        return OW_ERR_NOMEM;
    }
    list->v.c.items[list->v.c.n++] = item;
    return OW_OK;
}
