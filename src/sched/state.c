/* state.c -- a schedule's progress as versioned JSON: the hook counts, each scheduler's
 * step counts, base values and plateau bookkeeping, the initial values, and the
 * current value of every scheduled key of every group. Loading checks all of it
 * against the schedule before changing anything. */
#include "sched_internal.h"

#include <math.h>
#include <string.h>

#define FORMAT  "optwrap-sched"
#define VERSION 1

/* Non-finite numbers are written as the strings "inf", "-inf", "nan" (JSON has none). */
static void put_num(ow_strbuf *sb, double v)
{
    char buf[40];
    if (isnan(v))
        ow__sb_puts(sb, "\"nan\"");
    else if (isinf(v))
        ow__sb_puts(sb, v > 0 ? "\"inf\"" : "\"-inf\"");
    else {
        ow__format_double(v, buf, sizeof buf);
        ow__sb_puts(sb, buf);
    }
}

static void put_array(ow_strbuf *sb, const double *v, size_t n)
{
    ow__sb_putc(sb, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            ow__sb_puts(sb, ", ");
        put_num(sb, v[i]);
    }
    ow__sb_putc(sb, ']');
}

int ow_sched_save_state(const ow_sched *s, char **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_sched_save_state: out is NULL");
    *out = NULL;
    if (!s)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_sched_save_state: NULL");
    ow_strbuf sb;
    ow__sb_init(&sb);
    double *v = s->scratch;
    ow__sb_printf(&sb, "{\"format\": \"%s\", \"version\": %d, \"groups\": %zu, ", FORMAT,
                  VERSION, s->n);
    ow__sb_printf(&sb, "\"iters\": %lld, \"epochs\": %lld,\n \"initial\": {",
                  (long long)s->iters, (long long)s->epochs);
    for (size_t i = 0; i < s->n_initial; i++) {
        ow__sb_puts(&sb, i ? ", " : "");
        ow__sb_json_string(&sb, s->initial[i].param);
        ow__sb_puts(&sb, ": ");
        put_array(&sb, s->initial[i].v, s->n);
    }
    ow__sb_puts(&sb, "},\n \"values\": {");
    for (size_t i = 0; i < s->n_params; i++) {
        ow__sched_read(s, s->params[i], v, NULL);
        ow__sb_puts(&sb, i ? ", " : "");
        ow__sb_json_string(&sb, s->params[i]);
        ow__sb_puts(&sb, ": ");
        put_array(&sb, v, s->n);
    }
    ow__sb_puts(&sb, "},\n \"schedulers\": [");
    for (size_t i = 0; i < s->n_items; i++) {
        const ow__sched_item *it = &s->items[i];
        ow__sb_puts(&sb, i ? ",\n  {\"type\": " : "\n  {\"type\": ");
        ow__sb_json_string(&sb, it->entry->name);
        ow__sb_puts(&sb, ", \"param\": ");
        ow__sb_json_string(&sb, it->param);
        ow__sb_printf(&sb, ", \"global_step\": %lld, \"last_step\": %lld, \"base\": ",
                      (long long)it->global_step, (long long)it->last_step);
        put_array(&sb, it->base, s->n);
        for (size_t k = 0; it->def->state_keys && it->def->state_keys[k]; k++) {
            ow__sb_printf(&sb, ", \"%s\": ", it->def->state_keys[k]);
            put_num(&sb, it->state[k]);
        }
        ow__sb_putc(&sb, '}');
    }
    ow__sb_puts(&sb, "]}\n");
    if (!(*out = ow__sb_take(&sb)))
        return ow__nomem(err);
    return OW_OK;
}

/* ---- loading ------------------------------------------------------------------------
 */

static int bad(ow_error *err, const ow_cfg *node, const char *what)
{
    return ow__error(err, OW_ERR_STATE, NULL, node ? node->line : 0,
                     node ? node->column : 0, "schedule state: %s", what);
}

static bool num_of(const ow_cfg *v, double *out)
{
    if (!v)
        return false;
    if (v->type == OW_CFG_INT)
        *out = (double)v->v.i;
    else if (v->type == OW_CFG_FLOAT)
        *out = v->v.d;
    else if (v->type == OW_CFG_STRING && !strcmp(v->v.s, "inf"))
        *out = INFINITY;
    else if (v->type == OW_CFG_STRING && !strcmp(v->v.s, "-inf"))
        *out = -INFINITY;
    else if (v->type == OW_CFG_STRING && !strcmp(v->v.s, "nan"))
        *out = NAN;
    else
        return false;
    return true;
}

static bool int_of(const ow_cfg *v, int64_t *out)
{
    if (!v || v->type != OW_CFG_INT)
        return false;
    *out = v->v.i;
    return true;
}

/* A list of exactly n numbers into out (may be NULL: check only). */
static bool array_of(const ow_cfg *v, size_t n, double *out)
{
    if (!v || v->type != OW_CFG_LIST || v->v.c.n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        double x;
        if (!num_of(v->v.c.items[i], &x))
            return false;
        if (out)
            out[i] = x;
    }
    return true;
}

/* Everything checked; nothing changed yet. */
static int validate(const ow_sched *s, const ow_cfg *root, ow_error *err)
{
    const ow_cfg *format = ow__cfg_map_get(root, "format");
    int64_t version, groups, count;
    if (!format || format->type != OW_CFG_STRING || strcmp(format->v.s, FORMAT) != 0)
        return bad(err, root,
                   "not an optwrap-sched state (no \"format\": \"" FORMAT "\")");
    if (!int_of(ow__cfg_map_get(root, "version"), &version) || version != VERSION)
        return bad(err, root, "unsupported version (this optwrap reads version 1)");
    if (!int_of(ow__cfg_map_get(root, "groups"), &groups) || groups != (int64_t)s->n)
        return bad(err, root, "saved for another number of param groups");
    if (!ow__cfg_count(ow__cfg_map_get(root, "iters"), &count) ||
        !ow__cfg_count(ow__cfg_map_get(root, "epochs"), &count))
        return bad(err, root, "missing iters or epochs, or not counts (-1 to 2^53)");
    const ow_cfg *initial = ow__cfg_map_get(root, "initial");
    const ow_cfg *values = ow__cfg_map_get(root, "values");
    const ow_cfg *items = ow__cfg_map_get(root, "schedulers");
    if (!initial || initial->type != OW_CFG_MAP || !values ||
        values->type != OW_CFG_MAP || !items || items->type != OW_CFG_LIST)
        return bad(err, root, "missing initial, values or schedulers");
    for (size_t i = 0; i < initial->v.c.n; i++)
        if (!ow__sched_initial_of(s, initial->v.c.keys[i]) ||
            !array_of(initial->v.c.items[i], s->n, NULL))
            return bad(err, initial->v.c.items[i], "initial values that do not fit");
    for (size_t i = 0; i < s->n_params; i++)
        if (!array_of(ow__cfg_map_get(values, s->params[i]), s->n, NULL))
            return bad(err, values, "missing or malformed values of a scheduled key");
    if (items->v.c.n != s->n_items)
        return bad(err, items, "saved for another list of schedulers");
    for (size_t i = 0; i < s->n_items; i++) {
        const ow__sched_item *it = &s->items[i];
        const ow_cfg *m = items->v.c.items[i];
        const ow_cfg *type = ow__cfg_map_get(m, "type"),
                     *param = ow__cfg_map_get(m, "param");
        int64_t step;
        if (!type || type->type != OW_CFG_STRING || strcmp(type->v.s, it->entry->name) ||
            !param || param->type != OW_CFG_STRING || strcmp(param->v.s, it->param))
            return bad(err, m, "saved for another list of schedulers (types differ)");
        if (!ow__cfg_count(ow__cfg_map_get(m, "global_step"), &step) ||
            !ow__cfg_count(ow__cfg_map_get(m, "last_step"), &step) ||
            !array_of(ow__cfg_map_get(m, "base"), s->n, NULL))
            return bad(err, m,
                       "a scheduler without its steps (counts from -1 to 2^53) or base "
                       "values");
        for (size_t k = 0; it->def->state_keys && it->def->state_keys[k]; k++) {
            double x;
            if (!num_of(ow__cfg_map_get(m, it->def->state_keys[k]), &x))
                return bad(err, m, "a plateau scheduler without its bookkeeping");
        }
    }
    return OW_OK;
}

static void apply(ow_sched *s, const ow_cfg *root)
{
    int_of(ow__cfg_map_get(root, "iters"), &s->iters);
    int_of(ow__cfg_map_get(root, "epochs"), &s->epochs);
    const ow_cfg *initial = ow__cfg_map_get(root, "initial");
    for (size_t i = 0; i < s->n_initial; i++) {
        const ow_cfg *v = ow__cfg_map_get(initial, s->initial[i].param);
        s->initial[i].set = v != NULL;
        if (v)
            array_of(v, s->n, s->initial[i].v);
    }
    const ow_cfg *values = ow__cfg_map_get(root, "values");
    for (size_t i = 0; i < s->n_params; i++) {
        array_of(ow__cfg_map_get(values, s->params[i]), s->n, s->scratch);
        ow__sched_write(s, s->params[i], s->scratch);
    }
    const ow_cfg *items = ow__cfg_map_get(root, "schedulers");
    for (size_t i = 0; i < s->n_items; i++) {
        ow__sched_item *it = &s->items[i];
        const ow_cfg *m = items->v.c.items[i];
        int_of(ow__cfg_map_get(m, "global_step"), &it->global_step);
        int_of(ow__cfg_map_get(m, "last_step"), &it->last_step);
        array_of(ow__cfg_map_get(m, "base"), s->n, it->base);
        for (size_t k = 0; it->def->state_keys && it->def->state_keys[k]; k++)
            num_of(ow__cfg_map_get(m, it->def->state_keys[k]), &it->state[k]);
    }
}

int ow_sched_load_state(ow_sched *s, const char *text, ow_error *err)
{
    ow__error_reset(err);
    if (!s || !text)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_sched_load_state: NULL");
    ow_cfg *root = NULL;
    ow_error perr;
    ow_error_clear(&perr);
    int rc = ow__cfg_parse(text, strlen(text), "<sched-state>", &root, &perr);
    if (rc == OW_ERR_NOMEM)
        return ow__nomem(err);
    if (rc)
        return ow__error(err, OW_ERR_STATE, NULL, perr.line, perr.column,
                         "schedule state: not valid JSON: %s", perr.message);
    if (root->type != OW_CFG_MAP)
        rc = bad(err, root, "not an optwrap-sched state (expected a JSON object)");
    else
        rc = validate(s, root, err);
    if (rc == OW_OK)
        apply(s, root);
    ow_cfg_free(root);
    return rc;
}
