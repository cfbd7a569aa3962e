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
    if (!node || node->type != OW_CFG_BOOL)
        return type_error(node, "bool", err);
    *out = node->v.b;
    return OW_OK;
}

int ow_cfg_get_int(const ow_cfg *node, int64_t *out, ow_error *err)
{
    if (!node || node->type != OW_CFG_INT)
        return type_error(node, "int", err);
    *out = node->v.i;
    return OW_OK;
}

int ow_cfg_get_double(const ow_cfg *node, double *out, ow_error *err)
{
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
    if (!node || node->type != OW_CFG_STRING)
        return type_error(node, "string", err);
    *out = node->v.s;
    return OW_OK;
}

int ow_cfg_get_doubles(const ow_cfg *node, double *out, size_t n, ow_error *err)
{
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
