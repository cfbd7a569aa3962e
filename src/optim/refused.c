/* refused.c -- the names a reference registers that optwrap refuses, each with its
 * reason: asking for one is an error that says why, never an unknown type or a silent
 * substitute. `optwrap list optimizer` shows them, and the README's table of timm names
 * is checked against them. */
#include "internal.h"

#include <string.h>

static const struct {
    const char *scope, *name, *reason;
} refused[] = {
    {"timm", "fusednovograd",
     "APEX FusedNovoGrad (GPU-only) differs from timm's NvNovoGrad (moments initialised "
     "from the first norm, reg_inside_moment, norm_type): no CPU twin to run instead"},
};

const char *ow__refused_reason(const char *name, const char *default_scope)
{
    const char *dot = strchr(name, '.');
    for (size_t i = 0; i < OW__ARRAY_LEN(refused); i++) {
        if (dot ? (strlen(refused[i].scope) == (size_t)(dot - name) &&
                   !strncmp(name, refused[i].scope, (size_t)(dot - name)) &&
                   !strcmp(dot + 1, refused[i].name))
                : !strcmp(name, refused[i].name))
            return refused[i].reason;
    }
    (void)default_scope;
    return NULL;
}

const char *ow_registry_refusal(ow_registry_kind kind, const char *name)
{
    return kind == OW_KIND_OPTIMIZER && name ? ow__refused_reason(name, NULL) : NULL;
}

const char *ow_registry_refused(ow_registry_kind kind, size_t i, char *buf, size_t n)
{
    if (kind != OW_KIND_OPTIMIZER || i >= OW__ARRAY_LEN(refused) || !buf || !n)
        return NULL;
    snprintf(buf, n, "%s.%s", refused[i].scope, refused[i].name);
    return buf;
}
