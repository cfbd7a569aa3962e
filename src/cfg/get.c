/* get.c -- reading a config tree: dotted-path lookup and typed getters that fail with
 * the node's position ("expected float, got string"). */
#include "../internal.h"

#include <stdlib.h>
#include <string.h>

const ow_cfg *ow_cfg_find(const ow_cfg *node, const char *path)
{
    if (!node || !path)
        return NULL;
    const char *p = path;
    while (*p && node) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        char part[256];
        if (len >= sizeof part)
            return NULL;
        memcpy(part, p, len);
        part[len] = '\0';
        if (node->type == OW_CFG_MAP) {
            node = ow__cfg_map_get(node, part);
        } else if (node->type == OW_CFG_LIST && len > 0 &&
                   strspn(part, "0123456789") == len) {
            node = ow_cfg_get_item(node, strtoul(part, NULL, 10));
        } else {
            return NULL;
        }
        p += len;
        if (*p == '.')
            p++;
    }
    return node;
}

static int type_error(const ow_cfg *node, const char *want, ow_error *err)
{
    if (!node)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "expected %s, got no node",
                         want);
    return ow__error_at(err, OW_ERR_TYPE, node, "expected %s, got %s", want,
                        ow_cfg_type_name(node->type));
}

int ow_cfg_get_bool(const ow_cfg *node, bool *out, ow_error *err)
{
    ow__error_reset(err);
    if (!node || node->type != OW_CFG_BOOL)
        return type_error(node, "bool", err);
    *out = node->v.b;
    return OW_OK;
}

int ow_cfg_get_int(const ow_cfg *node, int64_t *out, ow_error *err)
{
    ow__error_reset(err);
    if (!node || node->type != OW_CFG_INT)
        return type_error(node, "int", err);
    *out = node->v.i;
    return OW_OK;
}

int ow_cfg_get_double(const ow_cfg *node, double *out, ow_error *err)
{
    ow__error_reset(err);
    if (node && node->type == OW_CFG_INT) {
        *out = (double)node->v.i;
        return OW_OK;
    }
    if (!node || node->type != OW_CFG_FLOAT)
        return type_error(node, "float", err);
    *out = node->v.d;
    return OW_OK;
}

int ow_cfg_get_string(const ow_cfg *node, const char **out, ow_error *err)
{
    ow__error_reset(err);
    if (!node || node->type != OW_CFG_STRING)
        return type_error(node, "string", err);
    *out = node->v.s;
    return OW_OK;
}

int ow_cfg_get_doubles(const ow_cfg *node, double *out, size_t n, ow_error *err)
{
    ow__error_reset(err);
    if (!node || node->type != OW_CFG_LIST)
        return type_error(node, "list of numbers", err);
    if (node->v.c.n != n)
        return ow__error_at(err, OW_ERR_TYPE, node,
                            "expected a list of %zu numbers, got %zu", n, node->v.c.n);
    for (size_t i = 0; i < n; i++) {
        int rc = ow_cfg_get_double(node->v.c.items[i], &out[i], err);
        if (rc != OW_OK)
            return rc;
    }
    return OW_OK;
}

/* ---- reads with a default ------------------------------------------------------------
 */

/* The node at path, or NULL (the default applies) when path leads nowhere. */
static int find_or(const ow_cfg *cfg, const char *path, const char *want,
                   ow_cfg_type want_type, const ow_cfg **out, ow_error *err)
{
    *out = NULL;
    if (!path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_cfg_get_%s_or: path is NULL",
                         want);
    const ow_cfg *node = ow_cfg_find(cfg, path);
    if (!node)
        return OW_OK;
    bool fits = node->type == want_type ||
                (want_type == OW_CFG_FLOAT && node->type == OW_CFG_INT);
    if (!fits)
        return ow__error_at(err, OW_ERR_TYPE, node, "%s: expected %s, got %s", path, want,
                            ow_cfg_type_name(node->type));
    *out = node;
    return OW_OK;
}

int ow_cfg_get_bool_or(const ow_cfg *cfg, const char *path, bool def, bool *out,
                       ow_error *err)
{
    ow__error_reset(err);
    const ow_cfg *node;
    int rc = find_or(cfg, path, "bool", OW_CFG_BOOL, &node, err);
    if (rc == OW_OK && out)
        *out = node ? node->v.b : def;
    return rc;
}

int ow_cfg_get_int_or(const ow_cfg *cfg, const char *path, int64_t def, int64_t *out,
                      ow_error *err)
{
    ow__error_reset(err);
    const ow_cfg *node;
    int rc = find_or(cfg, path, "int", OW_CFG_INT, &node, err);
    if (rc == OW_OK && out)
        *out = node ? node->v.i : def;
    return rc;
}

int ow_cfg_get_double_or(const ow_cfg *cfg, const char *path, double def, double *out,
                         ow_error *err)
{
    ow__error_reset(err);
    const ow_cfg *node;
    int rc = find_or(cfg, path, "float", OW_CFG_FLOAT, &node, err);
    if (rc == OW_OK && out)
        *out = !node ? def : node->type == OW_CFG_INT ? (double)node->v.i : node->v.d;
    return rc;
}

int ow_cfg_get_string_or(const ow_cfg *cfg, const char *path, const char *def,
                         const char **out, ow_error *err)
{
    ow__error_reset(err);
    const ow_cfg *node;
    int rc = find_or(cfg, path, "string", OW_CFG_STRING, &node, err);
    if (rc == OW_OK && out)
        *out = node ? node->v.s : def;
    return rc;
}
