/* schema.c -- the one validator of declared keys (STYLE 9): unknown keys with a
 * did-you-mean, types, ranges and required keys, one message shape per kind of
 * failure; and the defaults of key rows, parsed from their YAML text.
 *
 * Bounds: with OW_KEY_RANGE, .min applies unless it is -INFINITY and .max unless it is
 * INFINITY (rows write `.max = INFINITY` for "no upper bound"). NaN is out of any range.
 */
#include "cfg_internal.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static const char *const type_names[] = {
    [OW_T_ANY] = "any",
    [OW_T_BOOL] = "bool",
    [OW_T_INT] = "int",
    [OW_T_NUMBER] = "number",
    [OW_T_FLOAT] = "float",
    [OW_T_STRING] = "string",
    [OW_T_NUMLIST] = "list of numbers",
    [OW_T_LIST] = "list",
    [OW_T_MAP] = "map",
};

const ow_key *ow__schema_find(const ow_key *keys, const char *name)
{
    for (const ow_key *k = keys; k && k->name; k++)
        if (!strcmp(k->name, name))
            return k;
    return NULL;
}

static bool is_number(const ow_cfg *v)
{
    return v->type == OW_CFG_INT || v->type == OW_CFG_FLOAT;
}

static bool fits(const ow_cfg *v, ow_type type)
{
    switch (type) {
    case OW_T_ANY: return true;
    case OW_T_BOOL: return v->type == OW_CFG_BOOL;
    case OW_T_INT: return v->type == OW_CFG_INT;
    case OW_T_NUMBER:
    case OW_T_FLOAT: return is_number(v);
    case OW_T_STRING: return v->type == OW_CFG_STRING;
    case OW_T_NUMLIST:
    case OW_T_LIST: return v->type == OW_CFG_LIST;
    case OW_T_MAP: return v->type == OW_CFG_MAP;
    }
    return false;
}

/* "context.key", or "key" without a context. */
static void make_label(char *buf, size_t n, const char *context, const char *key)
{
    if (context && *context)
        snprintf(buf, n, "%s.%s", context, key);
    else
        snprintf(buf, n, "%s", key);
}

/* Numbers in messages: Python's repr without a trailing ".0" (0, 0.1, 1e-05). */
static void number_text(double d, char *buf, size_t n)
{
    ow__format_double(d, buf, n);
    size_t len = strlen(buf);
    if (len > 2 && !strcmp(buf + len - 2, ".0"))
        buf[len - 2] = '\0';
}

static int check_range(const ow_cfg *v, const ow_key *key, const char *label,
                       ow_error *err)
{
    double x = v->type == OW_CFG_INT ? (double)v->v.i : v->v.d;
    bool has_min = key->min > -INFINITY, has_max = key->max < INFINITY;
    bool min_open = key->flags & OW_KEY_MIN_OPEN, max_open = key->flags & OW_KEY_MAX_OPEN;
    if (!has_min && !has_max)
        return OW_OK;
    if (!isnan(x) && (!has_min || (min_open ? x > key->min : x >= key->min)) &&
        (!has_max || (max_open ? x < key->max : x <= key->max)))
        return OW_OK;
    char lo[40], hi[40], got[40];
    number_text(key->min, lo, sizeof lo);
    number_text(key->max, hi, sizeof hi);
    if (v->type == OW_CFG_INT)
        snprintf(got, sizeof got, "%" PRId64, v->v.i);
    else
        number_text(x, got, sizeof got);
    const char *ge = min_open ? ">" : ">=", *le = max_open ? "<" : "<=";
    if (has_min && has_max && !min_open && !max_open)
        return ow__error_at(err, OW_ERR_RANGE, v, "%s: must be between %s and %s, got %s",
                            label, lo, hi, got);
    if (has_min && has_max)
        return ow__error_at(err, OW_ERR_RANGE, v, "%s: must be %s %s and %s %s, got %s",
                            label, ge, lo, le, hi, got);
    return ow__error_at(err, OW_ERR_RANGE, v, "%s: must be %s %s, got %s", label,
                        has_min ? ge : le, has_min ? lo : hi, got);
}

int ow__schema_check_value(const ow_cfg *value, const ow_key *key, const char *context,
                           ow_error *err)
{
    if (!value || !key)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow__schema_check_value: needs a value and a key");
    char label[256];
    make_label(label, sizeof label, context, key->name);
    if (value->type == OW_CFG_NULL && (key->flags & OW_KEY_NULLABLE))
        return OW_OK;
    if (!fits(value, key->type))
        return ow__error_at(err, OW_ERR_TYPE, value, "%s: expected %s%s, got %s", label,
                            type_names[key->type],
                            key->flags & OW_KEY_NULLABLE ? " or null" : "",
                            ow_cfg_type_name(value->type));
    /* ints are read as doubles (hp->v); past 2^53 they stop being exact, and a cast
     * back to int64_t can overflow */
    if (key->type == OW_T_INT &&
        (value->v.i > OW__COUNT_MAX || value->v.i < -OW__COUNT_MAX))
        return ow__error_at(err, OW_ERR_RANGE, value,
                            "%s: %" PRId64 " is too large for an int key (at most 2^53 "
                            "either way)",
                            label, value->v.i);
    bool ranged = key->flags & OW_KEY_RANGE;
    bool list = key->type == OW_T_NUMLIST || key->type == OW_T_LIST;
    if (list && key->len && value->v.c.n != key->len)
        return ow__error_at(
            err, OW_ERR_VALUE, value, "%s: expected a list of %zu %s, got %zu", label,
            key->len, key->type == OW_T_NUMLIST ? "numbers" : "items", value->v.c.n);
    if (key->type == OW_T_NUMLIST) {
        for (size_t i = 0; i < value->v.c.n; i++) {
            const ow_cfg *item = value->v.c.items[i];
            char item_label[300];
            snprintf(item_label, sizeof item_label, "%s[%zu]", label, i);
            if (!is_number(item))
                return ow__error_at(err, OW_ERR_TYPE, item, "%s: expected number, got %s",
                                    item_label, ow_cfg_type_name(item->type));
            if (ranged && check_range(item, key, item_label, err) != OW_OK)
                return OW_ERR_RANGE;
        }
        return OW_OK;
    }
    if (ranged && is_number(value))
        return check_range(value, key, label, err);
    return OW_OK;
}

static bool listed(const char *const *names, const char *name)
{
    for (size_t i = 0; names && names[i]; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

static int unknown_key(const ow_cfg *value, const char *key, const ow_key *keys,
                       const char *context, const char *const *extra, ow_error *err)
{
    /* the accepted names, declared ones first; tables are far shorter than this */
    const char *names[128];
    size_t n = 0;
    for (const ow_key *k = keys; k && k->name && n + 1 < OW__ARRAY_LEN(names); k++)
        names[n++] = k->name;
    for (size_t i = 0; extra && extra[i] && n + 1 < OW__ARRAY_LEN(names); i++)
        names[n++] = extra[i];
    names[n] = NULL;
    const char *sep = context && *context ? ": " : "";
    const char *ctx = context ? context : "";
    /* mmpretrain's twins configs write `_delete=True`: mmengine merges it as an ordinary
     * key that nothing reads, so the base's settings survive */
    if (!strcmp(key, "_delete"))
        return ow__error_at(err, OW_ERR_UNKNOWN_KEY, value,
                            "%s%sunknown key '_delete' (did you mean '_delete_'?): "
                            "mmengine keeps '_delete' as an ordinary key and ignores it, "
                            "so the base's settings survive; remove the key to get "
                            "mmengine's result, or write '_delete_: true' to delete the "
                            "base's settings",
                            ctx, sep);
    const char *near = ow__closest(key, names);
    if (near)
        return ow__error_at(err, OW_ERR_UNKNOWN_KEY, value,
                            "%s%sunknown key '%s' (did you mean '%s'?)", ctx, sep, key,
                            near);
    if (n == 0)
        return ow__error_at(err, OW_ERR_UNKNOWN_KEY, value,
                            "%s%sunknown key '%s' (no keys are accepted here)", ctx, sep,
                            key);
    char accepted[OW_ERROR_TEXT_LEN];
    size_t len = 0;
    accepted[0] = '\0';
    for (size_t i = 0; i < n && len < sizeof accepted; i++)
        len += (size_t)snprintf(accepted + len, sizeof accepted - len, "%s%s",
                                i ? ", " : "", names[i]);
    return ow__error_at(err, OW_ERR_UNKNOWN_KEY, value,
                        "%s%sunknown key '%s' (accepted: %s)", ctx, sep, key, accepted);
}

int ow__schema_check(const ow_cfg *map, const ow_key *keys, const char *context,
                     const char *const *extra, ow_error *err)
{
    const char *ctx = context ? context : "";
    const char *sep = *ctx ? ": " : "";
    if (map && map->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, map, "%s%sexpected map, got %s", ctx, sep,
                            ow_cfg_type_name(map->type));
    size_t n = map ? map->v.c.n : 0;
    /* unknown keys first: a typo is the likeliest cause of the other failures */
    for (size_t i = 0; i < n; i++) {
        const char *key = map->v.c.keys[i];
        if (!ow__schema_find(keys, key) && !listed(extra, key))
            return unknown_key(map->v.c.items[i], key, keys, ctx, extra, err);
    }
    for (size_t i = 0; i < n; i++) {
        const ow_key *row = ow__schema_find(keys, map->v.c.keys[i]);
        int rc = row ? ow__schema_check_value(map->v.c.items[i], row, ctx, err) : OW_OK;
        if (rc != OW_OK)
            return rc;
    }
    for (const ow_key *k = keys; k && k->name; k++)
        if ((k->flags & OW_KEY_REQUIRED) && !ow__cfg_map_get(map, k->name))
            return ow__error_at(err, OW_ERR_MISSING_KEY, map,
                                "%s%smissing required key '%s'", ctx, sep, k->name);
    return OW_OK;
}

/* Defaults have no position: they were written in C, not in a config. */
static void clear_positions(ow_cfg *node)
{
    ow__cfg_set_pos(node, NULL, 0, 0); /* cannot fail without a file to copy */
    if (node->type == OW_CFG_MAP || node->type == OW_CFG_LIST)
        for (size_t i = 0; i < node->v.c.n; i++)
            clear_positions(node->v.c.items[i]);
}

int ow__schema_default(const ow_key *key, ow_cfg **out, ow_error *err)
{
    if (!out || !key)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow__schema_default: bad arguments");
    *out = NULL;
    if (!key->def)
        return OW_OK;
    const char *text = key->def;
    ow_cfg *v = NULL;
    if (text[0] && strchr("[{'\"", text[0])) {
        ow_error perr;
        ow_error_clear(&perr);
        int rc = ow__cfg_parse(text, strlen(text), NULL, &v, &perr);
        if (rc == OW_ERR_NOMEM)
            return ow__nomem(err);
        if (rc != OW_OK)
            return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                             "default of key '%s' is not valid YAML: %s", key->name,
                             perr.message);
        clear_positions(v);
    } else {
        /* a plain scalar, typed like one in a config ("null" is null, not an empty map)
         */
        if (!(v = ow__cfg_new(OW_CFG_NULL, NULL, 0, 0)))
            return ow__nomem(err);
        if (ow__cfg_resolve_scalar(v, text, false) != OW_OK) {
            ow_cfg_free(v);
            return ow__nomem(err);
        }
    }
    if (key->type == OW_T_FLOAT && v->type == OW_CFG_INT) {
        v->type = OW_CFG_FLOAT; /* a float key's default is a float, as torch stores it */
        v->v.d = (double)v->v.i;
    }
    *out = v;
    return OW_OK;
}
