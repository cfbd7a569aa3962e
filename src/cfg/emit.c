/* emit.c -- writing a config tree: block YAML for `optwrap print-config`, which reads
 * back to an equal tree (strings that would read as another type are quoted), and
 * compact JSON as Python's json.dumps writes it by default. */
#include "cfg_internal.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* Lists of scalars up to this many characters are written in flow style. */
#define FLOW_WIDTH 72

static bool is_collection(const ow_cfg *node)
{
    return node && (node->type == OW_CFG_LIST || node->type == OW_CFG_MAP);
}

/* True when s can be written unquoted and reads back as this very string. */
static bool plain_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]) || strchr(" \t:", s[n - 1]) ||
        !strncmp(s, "...", 3))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || strchr(",[]{}", *p))
            return false;
        if ((*p == ':' && (p[1] == ' ' || p[1] == '\t')) ||
            (*p == '#' && (p[-1] == ' ' || p[-1] == '\t')))
            return false;
    }
    ow_cfg probe = {.type = OW_CFG_NULL};
    bool string =
        ow__cfg_resolve_scalar(&probe, s, false) == OW_OK && probe.type == OW_CFG_STRING;
    if (probe.type == OW_CFG_STRING)
        ow_free(probe.v.s);
    return string;
}

static void put_string(ow_strbuf *sb, const char *s)
{
    if (plain_ok(s))
        ow__sb_puts(sb, s);
    else /* a JSON string literal is a valid YAML double-quoted scalar */
        ow__sb_json_string(sb, s);
}

static void put_scalar(ow_strbuf *sb, const ow_cfg *node)
{
    char buf[40];
    switch (node ? node->type : OW_CFG_NULL) {
    case OW_CFG_NULL: ow__sb_puts(sb, "null"); break;
    case OW_CFG_BOOL: ow__sb_puts(sb, node->v.b ? "true" : "false"); break;
    case OW_CFG_INT: ow__sb_printf(sb, "%" PRId64, node->v.i); break;
    case OW_CFG_FLOAT:
        if (isnan(node->v.d))
            ow__sb_puts(sb, ".nan");
        else if (isinf(node->v.d))
            ow__sb_puts(sb, node->v.d < 0 ? "-.inf" : ".inf");
        else {
            ow__format_double(node->v.d, buf, sizeof buf);
            ow__sb_puts(sb, buf);
        }
        break;
    case OW_CFG_STRING: put_string(sb, node->v.s); break;
    case OW_CFG_LIST: ow__sb_puts(sb, "[]"); break; /* only ever empty here */
    case OW_CFG_MAP: ow__sb_puts(sb, "{}"); break;
    }
}

/* " [a, b]" for a short non-empty list of scalars; false (nothing written) otherwise. */
static bool put_flow_list(ow_strbuf *sb, const ow_cfg *list)
{
    if (list->type != OW_CFG_LIST || list->v.c.n == 0)
        return false;
    for (size_t i = 0; i < list->v.c.n; i++)
        if (is_collection(list->v.c.items[i]))
            return false;
    size_t mark = sb->len;
    ow__sb_puts(sb, " [");
    for (size_t i = 0; i < list->v.c.n; i++) {
        if (i)
            ow__sb_puts(sb, ", ");
        put_scalar(sb, list->v.c.items[i]);
    }
    ow__sb_putc(sb, ']');
    if (sb->failed || sb->len - mark <= FLOW_WIDTH)
        return true;
    sb->len = mark; /* too wide: take it back, the caller writes a block list */
    sb->data[mark] = '\0';
    return false;
}

static void put_block(ow_strbuf *sb, const ow_cfg *node, int indent, bool inline_first);

/* The value after "key:" or "-" (already written); nested blocks at `indent`. */
static void put_value(ow_strbuf *sb, const ow_cfg *node, int indent, bool after_dash)
{
    if (is_collection(node) && node->v.c.n > 0 && !put_flow_list(sb, node)) {
        /* a map or list under "-" starts on the dash's line */
        ow__sb_putc(sb, after_dash ? ' ' : '\n');
        put_block(sb, node, indent, after_dash);
        return;
    }
    if (!is_collection(node) || node->v.c.n == 0) {
        ow__sb_putc(sb, ' ');
        put_scalar(sb, node);
    }
    ow__sb_putc(sb, '\n');
}

static void put_block(ow_strbuf *sb, const ow_cfg *node, int indent, bool inline_first)
{
    for (size_t i = 0; i < node->v.c.n; i++) {
        if (i > 0 || !inline_first)
            ow__sb_printf(sb, "%*s", indent, "");
        if (node->type == OW_CFG_MAP) {
            put_string(sb, node->v.c.keys[i]);
            ow__sb_putc(sb, ':');
        } else {
            ow__sb_putc(sb, '-');
        }
        put_value(sb, node->v.c.items[i], indent + 2, node->type == OW_CFG_LIST);
    }
}

static int take(ow_strbuf *sb, char **out, ow_error *err)
{
    if (!(*out = ow__sb_take(sb)))
        return ow__nomem(err);
    return OW_OK;
}

int ow_cfg_save_yaml(const ow_cfg *node, char **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_cfg_save_yaml: out is NULL");
    *out = NULL;
    ow_strbuf sb;
    ow__sb_init(&sb);
    if (is_collection(node) && node->v.c.n > 0) {
        put_block(&sb, node, 0, false);
    } else {
        put_scalar(&sb, node);
        ow__sb_putc(&sb, '\n');
    }
    return take(&sb, out, err);
}

void ow__cfg_write_json(ow_strbuf *sb, const ow_cfg *node)
{
    switch (node ? node->type : OW_CFG_NULL) {
    case OW_CFG_NULL: ow__sb_puts(sb, "null"); break;
    case OW_CFG_BOOL: ow__sb_puts(sb, node->v.b ? "true" : "false"); break;
    case OW_CFG_INT: ow__sb_printf(sb, "%" PRId64, node->v.i); break;
    case OW_CFG_FLOAT:
        /* Python's json writes the non-finite values as JavaScript names */
        if (isnan(node->v.d))
            ow__sb_puts(sb, "NaN");
        else if (isinf(node->v.d))
            ow__sb_puts(sb, node->v.d < 0 ? "-Infinity" : "Infinity");
        else {
            char buf[40];
            ow__format_double(node->v.d, buf, sizeof buf);
            ow__sb_puts(sb, buf);
        }
        break;
    case OW_CFG_STRING: ow__sb_json_string(sb, node->v.s); break;
    case OW_CFG_LIST:
    case OW_CFG_MAP:
        ow__sb_putc(sb, node->type == OW_CFG_MAP ? '{' : '[');
        for (size_t i = 0; i < node->v.c.n; i++) {
            if (i)
                ow__sb_puts(sb, ", ");
            if (node->type == OW_CFG_MAP) {
                ow__sb_json_string(sb, node->v.c.keys[i]);
                ow__sb_puts(sb, ": ");
            }
            ow__cfg_write_json(sb, node->v.c.items[i]);
        }
        ow__sb_putc(sb, node->type == OW_CFG_MAP ? '}' : ']');
        break;
    }
}

int ow_cfg_save_json(const ow_cfg *node, char **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_cfg_save_json: out is NULL");
    *out = NULL;
    ow_strbuf sb;
    ow__sb_init(&sb);
    ow__cfg_write_json(&sb, node);
    return take(&sb, out, err);
}
