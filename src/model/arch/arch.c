/* arch.c -- the built-in architectures: lookup by name over the family tables, the
 * builder every family uses to add a module and its parameters in one call, and the
 * mmpretrain classifier parts (root, neck, heads, mmcv's FFN) that families share. */
#include "arch_internal.h"

#include <stdarg.h>
#include <string.h>

static const ow__arch_def *const families[] = {
    ow__arch_mm_vit,   ow__arch_mm_cnn,   ow__arch_mm_swin,
    ow__arch_timm_vit, ow__arch_timm_cnn, ow__arch_timm_effnet,
};

#define MAX_ARCHS 128 /* room for the did-you-mean candidate list */

/* ---- lookup ------------------------------------------------------------------------ */

/* The i-th definition over all families, or NULL past the end. */
static const ow__arch_def *arch_at(size_t i)
{
    for (size_t f = 0; f < OW__ARRAY_LEN(families); f++)
        for (const ow__arch_def *d = families[f]; d->name; d++)
            if (i-- == 0)
                return d;
    return NULL;
}

const char *ow_model_get_arch(size_t i)
{
    const ow__arch_def *d = arch_at(i);
    return d ? d->name : NULL;
}

static const ow__arch_def *arch_find(const char *name)
{
    const ow__arch_def *d;
    for (size_t i = 0; (d = arch_at(i)) != NULL; i++)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

static int unknown_arch(const char *name, ow_error *err)
{
    const char *names[MAX_ARCHS + 1];
    size_t n = 0;
    while (n < MAX_ARCHS && (names[n] = ow_model_get_arch(n)) != NULL)
        n++;
    names[n] = NULL;
    const char *near = ow__closest(name, names);
    if (near)
        return ow__error(err, OW_ERR_UNKNOWN_TYPE, NULL, 0, 0,
                         "unknown architecture '%s' (closest: '%s')", name, near);
    return ow__error(err, OW_ERR_UNKNOWN_TYPE, NULL, 0, 0, "unknown architecture '%s'",
                     name);
}

/* The model's name after the golden files': "mmpretrain_<name>", "timm_<name>". */
static void model_name(const char *arch, char *buf, size_t n)
{
    if (strncmp(arch, "timm/", 5) == 0)
        snprintf(buf, n, "timm_%s", arch + 5);
    else
        snprintf(buf, n, "mmpretrain_%s", arch);
}

int ow_model_new_arch(const char *arch, ow_model **out, ow_error *err)
{
    ow__error_reset(err);
    if (out)
        *out = NULL;
    if (!arch || !out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_model_new_arch: arch and out must not be NULL");
    const ow__arch_def *def = arch_find(arch);
    if (!def)
        return unknown_arch(arch, err);
    char name[OW__ARCH_NAME_MAX];
    model_name(arch, name, sizeof name);
    ow__arch a = {.err = err};
    if ((a.rc = ow_model_new(name, &a.model, err)) != OW_OK)
        return a.rc;
    def->build(&a, def->cfg);
    if (a.rc != OW_OK) {
        ow_model_free(a.model);
        return a.rc;
    }
    *out = a.model;
    return OW_OK;
}

/* ---- the builder ------------------------------------------------------------------- */

/* Formats a name into buf (OW__ARCH_NAME_MAX bytes); false once anything has failed. */
static bool format_name(ow__arch *a, char *buf, const char *fmt, va_list ap)
{
    if (a->rc != OW_OK) {
        buf[0] = '\0';
        return false;
    }
    int len = vsnprintf(buf, OW__ARCH_NAME_MAX, fmt, ap);
    if (len < 0 || len >= OW__ARCH_NAME_MAX) {
        a->rc = ow__error(a->err, OW_ERR_MISUSE, NULL, 0, 0,
                          "built-in architecture: name '%s...' is too long", buf);
        return false;
    }
    return true;
}

void ow__arch_name(ow__arch *a, char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    format_name(a, buf, fmt, ap);
    va_end(ap);
}

/* Formats a module's full name into a->last. */
static bool set_name(ow__arch *a, const char *fmt, va_list ap)
{
    return format_name(a, a->last, fmt, ap);
}

static void add_module(ow__arch *a, const char *type, ow_module_kind kind, int64_t in,
                       int64_t out, int64_t groups)
{
    ow_module_info info = {.name = a->last,
                           .type = type,
                           .kind = kind,
                           .in_channels = in,
                           .out_channels = out,
                           .groups = groups};
    a->rc = ow_model_add_module(a->model, &info, a->err);
}

void ow__arch_param(ow__arch *a, const char *name, int ndim, const int64_t *shape)
{
    if (a->rc != OW_OK)
        return;
    ow_param_info info = {.module = a->last,
                          .name = name,
                          .ndim = ndim,
                          .shape = shape,
                          .requires_grad = !a->frozen};
    a->rc = ow_model_add_param(a->model, &info, a->err);
}

void ow__arch_mod(ow__arch *a, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = set_name(a, fmt, ap);
    va_end(ap);
    if (ok)
        add_module(a, type, OW_MODULE_OTHER, 0, 0, 0);
}

void ow__arch_norm(ow__arch *a, const char *type, int64_t channels, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = set_name(a, fmt, ap);
    va_end(ap);
    if (!ok)
        return;
    add_module(a, type, OW_MODULE_NORM, 0, 0, 0);
    ow__arch_param(a, "weight", OW__SHAPE(channels));
    ow__arch_param(a, "bias", OW__SHAPE(channels));
}

void ow__arch_linear(ow__arch *a, int64_t in, int64_t out, bool bias, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = set_name(a, fmt, ap);
    va_end(ap);
    if (!ok)
        return;
    add_module(a, "Linear", OW_MODULE_LINEAR, 0, 0, 0);
    ow__arch_param(a, "weight", OW__SHAPE(out, in));
    if (bias)
        ow__arch_param(a, "bias", OW__SHAPE(out));
}

void ow__arch_conv(ow__arch *a, int64_t in, int64_t out, int64_t k, int64_t groups,
                   bool bias, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = set_name(a, fmt, ap);
    va_end(ap);
    if (!ok)
        return;
    add_module(a, "Conv2d", OW_MODULE_CONV, in, out, groups);
    ow__arch_param(a, "weight", OW__SHAPE(out, in / groups, k, k));
    if (bias)
        ow__arch_param(a, "bias", OW__SHAPE(out));
}

void ow__arch_fact(ow__arch *a, const char *key, const char *yaml)
{
    if (a->rc != OW_OK)
        return;
    ow_cfg *value = NULL;
    if ((a->rc = ow__cfg_parse(yaml, strlen(yaml), "<arch>", &value, a->err)) != OW_OK)
        return;
    if (ow__model_set_fact(a->model, key, value) != OW_OK) /* takes value */
        a->rc = ow__nomem(a->err);
}

/* ---- mmpretrain's classifier parts ---------------------------------------------------
 */

void ow__arch_mm_root(ow__arch *a)
{
    ow__arch_mod(a, "ImageClassifier", "%s", "");
    ow__arch_mod(a, "ClsDataPreprocessor", "data_preprocessor");
}

void ow__arch_mm_gap_neck(ow__arch *a)
{
    ow__arch_mod(a, "GlobalAveragePooling", "neck");
    ow__arch_mod(a, "AdaptiveAvgPool2d", "neck.gap");
}

void ow__arch_mm_linear_head(ow__arch *a, int64_t in)
{
    ow__arch_mod(a, "LinearClsHead", "head");
    ow__arch_mod(a, "CrossEntropyLoss", "head.loss_module");
    ow__arch_linear(a, in, 1000, true, "head.fc");
}

void ow__arch_mm_vit_head(ow__arch *a, int64_t in)
{
    ow__arch_mod(a, "VisionTransformerClsHead", "head");
    ow__arch_mod(a, "CrossEntropyLoss", "head.loss_module");
    ow__arch_mod(a, "Sequential", "head.layers");
    ow__arch_linear(a, in, 1000, true, "head.layers.head");
}

void ow__arch_mm_ffn(ow__arch *a, const char *p, int64_t dims, int64_t hidden)
{
    ow__arch_mod(a, "FFN", "%s", p);
    ow__arch_mod(a, "Sequential", "%s.layers", p);
    ow__arch_mod(a, "Sequential", "%s.layers.0", p);
    ow__arch_linear(a, dims, hidden, true, "%s.layers.0.0", p);
    ow__arch_mod(a, "GELU", "%s.layers.0.1", p);
    ow__arch_mod(a, "Dropout", "%s.layers.0.2", p);
    ow__arch_linear(a, hidden, dims, true, "%s.layers.1", p);
    ow__arch_mod(a, "Dropout", "%s.layers.2", p);
    ow__arch_mod(a, "DropPath", "%s.dropout_layer", p);
    ow__arch_mod(a, "Identity", "%s.gamma2", p);
}
