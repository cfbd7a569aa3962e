/* util.c -- small pieces the scheduler classes share: telling a built-in scheduler
 * entry from another, reading their validated keys (with the schema's defaults),
 * positioned errors, and Python's float arithmetic where it differs from C's. */
#include "sched_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const ow__sched_def *ow__sched_def_of(const ow_entry *entry)
{
    /* only our own entries: a plugin's scheduler entry has no ops we could trust */
    for (const ow_entry *const *e = ow__builtins; *e; e++)
        if (*e == entry && entry->kind == OW_KIND_SCHEDULER)
            return entry->ops;
    return NULL;
}

static double number_of(const ow_cfg *v)
{
    switch (v->type) {
    case OW_CFG_INT: return (double)v->v.i;
    case OW_CFG_FLOAT: return v->v.d;
    case OW_CFG_BOOL: return v->v.b ? 1 : 0;
    default: return NAN;
    }
}

double ow__sched_num(const ow__sched_build *b, const char *key)
{
    const ow_cfg *v = ow__cfg_map_get(b->node, key);
    if (v)
        return number_of(v);
    const ow_key *row = ow__schema_find(b->entry->keys, key);
    if (!row || !row->def || !strcmp(row->def, "null"))
        return NAN;
    if (!strcmp(row->def, "true"))
        return 1;
    if (!strcmp(row->def, "false"))
        return 0;
    return strtod(row->def, NULL);
}

bool ow__sched_has(const ow__sched_build *b, const char *key)
{
    const ow_cfg *v = ow__cfg_map_get(b->node, key);
    return v && v->type != OW_CFG_NULL;
}

int ow__sched_per_group(const ow__sched_build *b, const char *key, double def,
                        size_t want, const char *note, double *out, ow_error *err)
{
    const ow_cfg *v = ow__cfg_map_get(b->node, key);
    if (v && v->type == OW_CFG_LIST) {
        for (size_t i = 0; i < v->v.c.n; i++) {
            const ow_cfg *item = v->v.c.items[i];
            if (item->type != OW_CFG_INT && item->type != OW_CFG_FLOAT)
                return ow__error_at(err, OW_ERR_TYPE, item,
                                    "%s: expected number, got %s in '%s'", b->context,
                                    ow_cfg_type_name(item->type), key);
        }
        if (want && v->v.c.n != want)
            return ow__error_at(
                err, OW_ERR_VALUE, v, "%s: expected %zu value%s for %s, got %zu%s",
                b->context, want, want == 1 ? "" : "s", key, v->v.c.n, note ? note : "");
        for (size_t i = 0; i < want; i++)
            out[i] = number_of(v->v.c.items[i]);
        return OW_OK;
    }
    if (v && v->type != OW_CFG_NULL && v->type != OW_CFG_INT && v->type != OW_CFG_FLOAT)
        return ow__error_at(err, OW_ERR_TYPE, v,
                            "%s: expected number or list of numbers, got %s for key '%s'",
                            b->context, ow_cfg_type_name(v->type), key);
    double x = v && v->type != OW_CFG_NULL ? number_of(v) : def;
    for (size_t i = 0; i < want; i++)
        out[i] = x;
    return OW_OK;
}

int ow__sched_fail(const ow__sched_build *b, ow_error *err, const char *key,
                   const char *fmt, ...)
{
    const ow_cfg *node = key ? ow__cfg_map_get(b->node, key) : NULL;
    char msg[OW_ERROR_TEXT_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ow__error_at(err, OW_ERR_VALUE, node ? node : b->node, "%s: %s", b->context,
                        msg);
}

/* CPython's float_rem. */
double ow__py_mod(double a, double b)
{
    double mod = fmod(a, b);
    if (mod != 0) {
        if ((b < 0) != (mod < 0))
            mod += b;
    } else {
        mod = copysign(0.0, b);
    }
    return mod;
}

/* CPython's float_floor_div (_float_div_mod). */
double ow__py_floordiv(double a, double b)
{
    double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0 && (b < 0) != (mod < 0))
        div -= 1.0;
    if (div == 0)
        return copysign(0.0, a / b);
    double floordiv = floor(div);
    if (div - floordiv > 0.5)
        floordiv += 1.0;
    return floordiv;
}

const char *ow__py_num(double v, bool is_int, char *buf, size_t n)
{
    if (is_int && v == trunc(v) && fabs(v) < 1e18)
        snprintf(buf, n, "%lld", (long long)v);
    else
        ow__format_double(v, buf, n);
    return buf;
}

int ow__sched_choice(const ow__sched_build *b, const char *key,
                     const char *const *choices, size_t *out, ow_error *err)
{
    const ow_cfg *v = ow__cfg_map_get(b->node, key);
    const char *text = NULL;
    if (v)
        text = v->v.s;
    else
        text = ow__schema_find(b->entry->keys, key)->def;
    /* a default is written as YAML text: strip its quotes */
    char buf[32];
    if (!v && text[0] == '\'') {
        snprintf(buf, sizeof buf, "%.*s", (int)strlen(text) - 2, text + 1);
        text = buf;
    }
    for (size_t i = 0; choices[i]; i++)
        if (!strcmp(text, choices[i])) {
            *out = i;
            return OW_OK;
        }
    char list[160] = "";
    size_t len = 0, count = 0;
    while (choices[count])
        count++;
    if (count > 2)
        len = (size_t)snprintf(list, sizeof list, "one of ");
    for (size_t i = 0; i < count && len < sizeof list; i++) {
        int w = snprintf(list + len, sizeof list - len, "%s'%s'",
                         i == 0       ? ""
                         : count == 2 ? " or "
                                      : ", ",
                         choices[i]);
        len += w > 0 ? (size_t)w : 0;
    }
    const char *close = ow__closest(text, choices);
    if (close)
        return ow__sched_fail(b, err, key, "%s must be %s, got '%s' (did you mean '%s'?)",
                              key, list, text, close);
    return ow__sched_fail(b, err, key, "%s must be %s, got '%s'", key, list, text);
}
