/* registry.c -- `type:` strings to entries: the built-in table (builtins.c) plus the
 * entries registered at run time, mmengine's scope rules, "closest names" for a miss,
 * and sorted iteration. The run-time list is the library's only mutable global state. */
#include "registry_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define ROOT_SCOPE "mmengine" /* the scope of an entry whose .scope is NULL */
#define SCOPE_MAX  128        /* longest scope prefix a type string may carry */
#define CLOSE_MAX  3          /* "closest" names: at most this many, this distance */

typedef struct record {
    const ow_entry *entry;
    const void *owner; /* the plugin whose init registered it, or NULL */
} record;

/* Run-time entries in registration order. A newer entry hides older ones (and
 * built-ins) of its kind and scope that it shares a name with. Guarded by lock. */
static struct {
    record *items;
    size_t n, cap;
} runtime;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local const void *current_owner;

static const char *const kind_names[] = {
    [OW_KIND_OPTIMIZER] = "optimizer",         [OW_KIND_CONSTRUCTOR] = "constructor",
    [OW_KIND_OPTIM_WRAPPER] = "optim_wrapper", [OW_KIND_SCHEDULER] = "scheduler",
    [OW_KIND_LAYER_DEPTH] = "layer_depth",
};
_Static_assert(OW__ARRAY_LEN(kind_names) == OW_KIND__COUNT, "a name for every kind");

const char *ow_registry_kind_name(ow_registry_kind kind)
{
    return (unsigned)kind < OW_KIND__COUNT ? kind_names[kind] : "?";
}

static const char *scope_of(const ow_entry *e)
{
    return e->scope ? e->scope : ROOT_SCOPE;
}

static bool has_name(const ow_entry *e, const char *name)
{
    if (strcmp(e->name, name) == 0)
        return true;
    for (const char *const *a = e->aliases; a && *a; a++)
        if (strcmp(*a, name) == 0)
            return true;
    return false;
}

/* scope NULL: any scope. */
static bool matches(const ow_entry *e, ow_registry_kind kind, const char *scope,
                    const char *name)
{
    return e->kind == kind && (!scope || strcmp(scope_of(e), scope) == 0) &&
           has_name(e, name);
}

/* ---- lookup (callers hold lock) ---------------------------------------------------- */

/* The newest run-time entry wins, then the built-ins. */
static const ow_entry *find_in_scope(ow_registry_kind kind, const char *scope,
                                     const char *key)
{
    for (size_t i = runtime.n; i-- > 0;)
        if (matches(runtime.items[i].entry, kind, scope, key))
            return runtime.items[i].entry;
    for (const ow_entry *const *b = ow__builtins; *b; b++)
        if (matches(*b, kind, scope, key))
            return *b;
    return NULL;
}

/* The first scope, in registration order, that holds key. */
static const ow_entry *find_anywhere(ow_registry_kind kind, const char *key)
{
    const ow_entry *first = NULL;
    for (const ow_entry *const *b = ow__builtins; *b && !first; b++)
        if (matches(*b, kind, NULL, key))
            first = *b;
    for (size_t i = 0; i < runtime.n && !first; i++)
        if (matches(runtime.items[i].entry, kind, NULL, key))
            first = runtime.items[i].entry;
    return first ? find_in_scope(kind, scope_of(first), key) : NULL;
}

/* mmengine's Registry.get: split at the first '.'; a scoped key looks in that scope
 * only (so "mmpretrain.AdamW" misses: AdamW lives in mmengine); an unscoped one tries
 * the default scope, then the root scope, then (our extension) any other scope. */
static const ow_entry *resolve(ow_registry_kind kind, const char *name,
                               const char *default_scope)
{
    const char *dot = strchr(name, '.');
    if (dot) {
        char scope[SCOPE_MAX];
        size_t len = (size_t)(dot - name);
        if (len >= sizeof scope)
            return NULL;
        memcpy(scope, name, len);
        scope[len] = '\0';
        return find_in_scope(kind, scope, dot + 1);
    }
    const ow_entry *e = default_scope ? find_in_scope(kind, default_scope, name) : NULL;
    if (!e)
        e = find_in_scope(kind, ROOT_SCOPE, name);
    return e ? e : find_anywhere(kind, name);
}

/* `lookahead_<name>`: the composite of Lookahead over <name>, timm's unless scoped
 * ("mmengine.lookahead_AdamW", what `type: Lookahead` configs become). */
static const ow_entry *resolve_composite(ow_registry_kind kind, const char *name)
{
    const char *dot = strchr(name, '.');
    const char *rest = ow__lookahead_strip(dot ? dot + 1 : name);
    char scope[SCOPE_MAX] = "timm";
    if (kind != OW_KIND_OPTIMIZER || !rest || (dot && (size_t)(dot - name) >= SCOPE_MAX))
        return NULL;
    if (dot) {
        memcpy(scope, name, (size_t)(dot - name));
        scope[dot - name] = '\0';
    }
    pthread_mutex_lock(&lock);
    const ow_entry *inner = find_in_scope(kind, scope, rest);
    pthread_mutex_unlock(&lock);
    return inner ? ow__lookahead_entry(inner) : NULL;
}

static const ow_entry *resolve_locked(ow_registry_kind kind, const char *name,
                                      const char *default_scope)
{
    pthread_mutex_lock(&lock);
    const ow_entry *e = resolve(kind, name, default_scope);
    pthread_mutex_unlock(&lock);
    return e ? e : resolve_composite(kind, name);
}

const ow_entry *ow_registry_find(ow_registry_kind kind, const char *name)
{
    if ((unsigned)kind >= OW_KIND__COUNT || !name)
        return NULL;
    return resolve_locked(kind, name, NULL);
}

/* Is e hidden by a run-time entry registered after position `newer` (0 for built-ins)? */
static bool hidden(const ow_entry *e, size_t newer)
{
    for (size_t j = newer; j < runtime.n; j++)
        if (matches(runtime.items[j].entry, e->kind, scope_of(e), e->name))
            return true;
    return false;
}

/* ---- closest names ----------------------------------------------------------------- */

typedef struct near_name {
    const char *name;
    const char *scope; /* shown as "scope.name" when set */
    size_t distance, length_gap;
} near_name;

/* Closer first; at equal distance the name of nearer length, then alphabetical. */
static int near_cmp(const near_name *a, const near_name *b)
{
    if (a->distance != b->distance)
        return a->distance < b->distance ? -1 : 1;
    if (a->length_gap != b->length_gap)
        return a->length_gap < b->length_gap ? -1 : 1;
    int c = strcasecmp(a->name, b->name);
    return c ? c : strcmp(a->name, b->name);
}

/* Edit distance ignoring case: "adamw" is a typo of "AdamW", not three edits away. */
static size_t distance_nocase(const char *a, const char *b, size_t cap)
{
    char la[65], lb[65];
    size_t na = strlen(a), nb = strlen(b);
    if (na >= sizeof la || nb >= sizeof lb)
        return cap + 1;
    for (size_t i = 0; i <= na; i++)
        la[i] = (char)tolower((unsigned char)a[i]);
    for (size_t i = 0; i <= nb; i++)
        lb[i] = (char)tolower((unsigned char)b[i]);
    return ow__edit_distance(la, lb, cap);
}

static void offer(near_name *best, size_t *n, const char *word, const char *name,
                  const char *shown_scope)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(best[i].name, name) == 0 && best[i].scope == shown_scope)
            return;
    size_t lw = strlen(word), ln = strlen(name);
    size_t longer = lw > ln ? lw : ln;
    near_name c = {name, shown_scope, distance_nocase(word, name, CLOSE_MAX),
                   lw > ln ? lw - ln : ln - lw};
    /* a name that shares nothing with the word is no suggestion */
    if (c.distance > CLOSE_MAX || c.distance >= lw || c.distance >= longer)
        return;
    size_t at = *n < CLOSE_MAX ? (*n)++ : CLOSE_MAX;
    if (at == CLOSE_MAX && near_cmp(&c, &best[CLOSE_MAX - 1]) >= 0)
        return;
    if (at == CLOSE_MAX)
        at = CLOSE_MAX - 1;
    while (at > 0 && near_cmp(&c, &best[at - 1]) < 0) {
        best[at] = best[at - 1];
        at--;
    }
    best[at] = c;
}

/* Names (and aliases) of entries in `scope` (NULL: any scope, shown qualified). */
static void offer_entry(near_name *best, size_t *n, const char *word, const ow_entry *e,
                        const char *scope)
{
    if (scope && strcmp(scope_of(e), scope))
        return;
    const char *shown_scope = scope ? NULL : scope_of(e);
    offer(best, n, word, e->name, shown_scope);
    for (const char *const *a = e->aliases; a && *a; a++)
        offer(best, n, word, *a, shown_scope);
}

static size_t collect_closest(ow_registry_kind kind, const char *word, const char *scope,
                              near_name *best)
{
    size_t nb = 0;
    for (const ow_entry *const *b = ow__builtins; *b; b++)
        if ((*b)->kind == kind && !hidden(*b, 0))
            offer_entry(best, &nb, word, *b, scope);
    for (size_t i = 0; i < runtime.n; i++)
        if (runtime.items[i].entry->kind == kind &&
            !hidden(runtime.items[i].entry, i + 1))
            offer_entry(best, &nb, word, runtime.items[i].entry, scope);
    return nb;
}

/* Suggestions for a miss: a scoped name gets names of its scope; an unscoped one gets
 * names of the default scope and of mmengine, and only when none is close, names of
 * every scope written with their scope ("timm.adamw"). */
static const char *closest(ow_registry_kind kind, const char *name,
                           const char *default_scope, char *buf, size_t n)
{
    near_name best[CLOSE_MAX];
    size_t nb = 0;
    const char *dot = strchr(name, '.');
    pthread_mutex_lock(&lock);
    if (dot) {
        char scope[64];
        snprintf(scope, sizeof scope, "%.*s", (int)(dot - name), name);
        nb = collect_closest(kind, dot + 1, scope, best);
    } else {
        if (default_scope)
            nb = collect_closest(kind, name, default_scope, best);
        if (nb == 0)
            nb = collect_closest(kind, name, "mmengine", best);
        if (nb == 0)
            nb = collect_closest(kind, name, NULL, best);
    }
    pthread_mutex_unlock(&lock);
    if (nb == 0 || n == 0)
        return NULL;
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < nb && len < n; i++) {
        int w = snprintf(buf + len, n - len, "%s'%s%s%s'", i ? ", " : "",
                         best[i].scope ? best[i].scope : "", best[i].scope ? "." : "",
                         best[i].name);
        len += w > 0 ? (size_t)w : 0;
    }
    return buf;
}

const char *ow__registry_closest(ow_registry_kind kind, const char *name, char *buf,
                                 size_t n)
{
    return closest(kind, name, NULL, buf, n);
}

int ow__registry_lookup(ow_registry_kind kind, const ow_cfg *type_node,
                        const char *default_scope, const ow_entry **out, ow_error *err)
{
    const char *name;
    *out = NULL;
    int rc = ow_cfg_get_string(type_node, &name, err);
    if (rc != OW_OK)
        return rc;
    if ((unsigned)kind >= OW_KIND__COUNT)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "unknown registry kind %d",
                         kind);
    const char *what = ow_registry_kind_name(kind);
    if ((*out = resolve_locked(kind, name, default_scope)))
        return OW_OK;

    const char *refusal =
        kind == OW_KIND_OPTIMIZER ? ow__refused_reason(name, NULL) : NULL;
    if (refusal)
        return ow__error_at(err, OW_ERR_UNSUPPORTED, type_node,
                            "optimizer type '%s' is refused: %s", name, refusal);
    const char *dot = strchr(name, '.');
    const char *key = dot ? dot + 1 : name;
    const ow_entry *elsewhere = dot ? resolve_locked(kind, key, NULL) : NULL;
    if (elsewhere)
        return ow__error_at(err, OW_ERR_UNKNOWN_TYPE, type_node,
                            "%s type '%s' is not in scope '%.*s'; '%s' is registered in "
                            "scope '%s': write '%s.%s' or drop the scope",
                            what, name, (int)(dot - name), name, key, scope_of(elsewhere),
                            scope_of(elsewhere), key);
    char close[256];
    if (closest(kind, name, default_scope, close, sizeof close))
        return ow__error_at(err, OW_ERR_UNKNOWN_TYPE, type_node,
                            "unknown %s type '%s' (closest: %s)", what, name, close);
    return ow__error_at(err, OW_ERR_UNKNOWN_TYPE, type_node, "unknown %s type '%s'", what,
                        name);
}

/* ---- registration ------------------------------------------------------------------ */

/* A name or scope must be non-empty and free of '.', which separates the two. */
static bool plain_word(const char *s)
{
    return s && *s && !strchr(s, '.') && strlen(s) < SCOPE_MAX;
}

static int invalid(ow_error *err, const char *fmt, ...) OW__PRINTF(2, 3);
static int invalid(ow_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ow__verror(err, OW_ERR_VALUE, NULL, 0, 0, fmt, ap);
    va_end(ap);
    return OW_ERR_VALUE;
}

static int validate(const ow_entry *e, ow_error *err)
{
    if (!e)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_registry_add: entry is NULL");
    /* checked before any other field is read: the layout may differ */
    if (e->abi_version != OW_ABI_VERSION)
        return ow__error(err, OW_ERR_PLUGIN, NULL, 0, 0,
                         "registry entry has ABI version %d, but this optwrap (%s) "
                         "expects %d: rebuild it against this optwrap.h",
                         e->abi_version, OW_VERSION_STRING, OW_ABI_VERSION);
    if (!e->name || !*e->name)
        return invalid(err, "registry entry has no name");
    if (!plain_word(e->name))
        return invalid(err,
                       "registry entry name '%s' must not contain '.' (it separates "
                       "a scope from a name)",
                       e->name);
    if ((unsigned)e->kind >= OW_KIND__COUNT)
        return invalid(err, "registry entry `%s`: unknown kind %d", e->name,
                       (int)e->kind);
    if (e->scope && !plain_word(e->scope))
        return invalid(err,
                       "registry entry `%s`: scope '%s' must be non-empty and "
                       "without '.'",
                       e->name, e->scope);
    if (!e->keys)
        return invalid(err,
                       "registry entry `%s`: keys is NULL (give a table ended by a "
                       "row with name NULL)",
                       e->name);
    for (const char *const *a = e->aliases; a && *a; a++)
        if (!plain_word(*a))
            return invalid(err,
                           "registry entry `%s`: alias '%s' must be non-empty and "
                           "without '.'",
                           e->name, *a);
    return OW_OK;
}

/* The first of e's names that an entry of its kind and scope already has, or NULL. */
static const char *taken_name(const ow_entry *e)
{
    if (find_in_scope(e->kind, scope_of(e), e->name))
        return e->name;
    for (const char *const *a = e->aliases; a && *a; a++)
        if (find_in_scope(e->kind, scope_of(e), *a))
            return *a;
    return NULL;
}

int ow_registry_add(const ow_entry *entry, bool force, ow_error *err)
{
    ow__error_reset(err);
    int rc = validate(entry, err);
    if (rc != OW_OK)
        return rc;
    pthread_mutex_lock(&lock);
    const char *taken = force ? NULL : taken_name(entry);
    if (taken)
        rc = ow__error(err, OW_ERR_DUPLICATE, NULL, 0, 0,
                       "`%s` is already registered in the %s %s registry", taken,
                       scope_of(entry), ow_registry_kind_name(entry->kind));
    else if (ow__grow((void **)&runtime.items, &runtime.cap, runtime.n + 1,
                      sizeof *runtime.items) != OW_OK)
        rc = ow__nomem(err);
    else
        runtime.items[runtime.n++] = (record){entry, current_owner};
    pthread_mutex_unlock(&lock);
    return rc;
}

void ow__registry_set_owner(const void *owner)
{
    current_owner = owner;
}

void ow__registry_drop_owner(const void *owner)
{
    pthread_mutex_lock(&lock);
    size_t kept = 0;
    for (size_t i = 0; i < runtime.n; i++)
        if (runtime.items[i].owner != owner)
            runtime.items[kept++] = runtime.items[i];
    runtime.n = kept;
    pthread_mutex_unlock(&lock);
}

void ow__registry_clear(void)
{
    pthread_mutex_lock(&lock);
    ow_free(runtime.items);
    runtime.items = NULL;
    runtime.n = runtime.cap = 0;
    pthread_mutex_unlock(&lock);
}

/* ---- iteration --------------------------------------------------------------------- */

/* Kind, then name ignoring case; the rest only makes the order total. */
static int entry_cmp(const ow_entry *a, const ow_entry *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    int c = strcasecmp(a->name, b->name);
    if (c == 0)
        c = strcmp(a->name, b->name);
    if (c == 0)
        c = strcmp(scope_of(a), scope_of(b));
    if (c == 0 && a != b)
        c = (uintptr_t)a < (uintptr_t)b ? -1 : 1;
    return c;
}

static void consider(const ow_entry *e, const ow_entry *prev, const ow_entry **best)
{
    if ((!prev || entry_cmp(e, prev) > 0) && (!*best || entry_cmp(e, *best) < 0))
        *best = e;
}

/* The smallest visible entry after prev: a linear scan per call keeps no iterator
 * state, and the registry holds tens of entries. */
const ow_entry *ow_registry_next(const ow_entry *prev)
{
    const ow_entry *best = NULL;
    pthread_mutex_lock(&lock);
    for (const ow_entry *const *b = ow__builtins; *b; b++)
        if (!hidden(*b, 0))
            consider(*b, prev, &best);
    for (size_t i = 0; i < runtime.n; i++)
        if (!hidden(runtime.items[i].entry, i + 1))
            consider(runtime.items[i].entry, prev, &best);
    pthread_mutex_unlock(&lock);
    return best;
}
