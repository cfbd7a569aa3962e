/* model_io.c -- the optwrap-model/1 YAML format (see MODEL-FORMAT.md): loading through
 * the config parser, so that every error points at file:line:column, and saving the
 * same layout back, so that load -> save -> load gives the same model. */
#include "model_internal.h"

#include <string.h>
#include <strings.h>

#define MODEL_FORMAT "optwrap-model/1"

static const char *const module_keys[] = {
    "name", "type", "kind", "in_channels", "out_channels", "groups", "params", NULL};
static const char *const param_keys[] = {"name", "shape", "requires_grad", "shared",
                                         NULL};
/* candidates for a did-you-mean on `kind:` */
static const char *const kind_list[] = {"norm",      "conv",  "linear",
                                        "embedding", "other", NULL};

/* ---- loading: typed reads of one entry, failing at the node's position ------------- */

static int check_keys(const ow_cfg *map, const char *const *keys, const char *ctx,
                      ow_error *err)
{
    for (size_t i = 0; i < map->v.c.n; i++) {
        const char *key = map->v.c.keys[i];
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], key) != 0)
            k++;
        if (keys[k])
            continue;
        const char *near = ow__closest(key, keys);
        if (near)
            return ow__error_at(err, OW_ERR_UNKNOWN_KEY, map->v.c.items[i],
                                "%s: unknown key '%s' (did you mean '%s'?)", ctx, key,
                                near);
        char list[160] = "";
        for (k = 0; keys[k]; k++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     k ? ", " : "", keys[k]);
        return ow__error_at(err, OW_ERR_UNKNOWN_KEY, map->v.c.items[i],
                            "%s: unknown key '%s' (expected one of: %s)", ctx, key, list);
    }
    return OW_OK;
}

/* The value of key in map, checked to be of type want; *out is NULL when the key is
 * absent, which is an error when required. ctx "" is the top level. */
static int get_value(const ow_cfg *map, const char *key, ow_cfg_type want, bool required,
                     const char *ctx, const ow_cfg **out, ow_error *err)
{
    const ow_cfg *v = ow__cfg_map_get(map, key);
    const char *sep = *ctx ? ": " : "";
    *out = v;
    if (!v && required)
        return ow__error_at(err, OW_ERR_MISSING_KEY, map, "%s%smissing key '%s'", ctx,
                            sep, key);
    if (v && v->type != want)
        return ow__error_at(err, OW_ERR_TYPE, v, "%s%s%s: expected %s, got %s", ctx,
                            *ctx ? "." : "", key, ow_cfg_type_name(want),
                            ow_cfg_type_name(v->type));
    return OW_OK;
}

static int get_string(const ow_cfg *map, const char *key, bool required, const char *ctx,
                      const char **out, ow_error *err)
{
    const ow_cfg *v;
    int rc = get_value(map, key, OW_CFG_STRING, required, ctx, &v, err);
    *out = v ? v->v.s : NULL;
    return rc;
}

static int get_int(const ow_cfg *map, const char *key, const char *ctx, int64_t *out,
                   ow_error *err)
{
    const ow_cfg *v;
    int rc = get_value(map, key, OW_CFG_INT, false, ctx, &v, err);
    *out = v ? v->v.i : 0;
    return rc;
}

/* Re-raises an error of the model API at the node of the field it rejected. */
static int relay(int rc, const ow_error *local, const ow_cfg *node, ow_error *err)
{
    if (rc == OW_ERR_NOMEM)
        return ow__nomem(err);
    return ow__error_at(err, rc, node, "%s", local->message);
}

static int parse_kind(const ow_cfg *node, const char *ctx, ow_module_kind *out,
                      ow_error *err)
{
    for (int k = OW_MODULE_OTHER; k <= OW_MODULE_EMBEDDING; k++)
        if (strcmp(node->v.s, ow__module_kind_name((ow_module_kind)k)) == 0) {
            *out = (ow_module_kind)k;
            return OW_OK;
        }
    const char *near = ow__closest(node->v.s, kind_list);
    char hint[64] = "";
    if (near)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
    return ow__error_at(err, OW_ERR_VALUE, node,
                        "%s.kind: unknown kind '%s'%s; expected norm, conv, linear, "
                        "embedding or other",
                        ctx, node->v.s, hint);
}

/* Reads `shape:` into dims; *ndim = -1 when the key is absent. */
static int get_shape(const ow_cfg *node, const char *ctx, int64_t *dims, int *ndim,
                     ow_error *err)
{
    *ndim = -1;
    if (!node)
        return OW_OK;
    if (node->type != OW_CFG_LIST)
        return ow__error_at(err, OW_ERR_TYPE, node,
                            "%s.shape: expected a list of ints, got %s", ctx,
                            ow_cfg_type_name(node->type));
    if (node->v.c.n > OW_MAX_DIMS)
        return ow__error_at(err, OW_ERR_MODEL, node,
                            "%s.shape: %zu dimensions, at most %d are supported", ctx,
                            node->v.c.n, OW_MAX_DIMS);
    for (size_t k = 0; k < node->v.c.n; k++) {
        const ow_cfg *item = node->v.c.items[k];
        if (item->type != OW_CFG_INT)
            return ow__error_at(err, OW_ERR_TYPE, item,
                                "%s.shape[%zu]: expected int, got %s", ctx, k,
                                ow_cfg_type_name(item->type));
        dims[k] = item->v.i;
    }
    *ndim = (int)node->v.c.n;
    return OW_OK;
}

static int load_param(ow_model *m, const ow_cfg *entry, const char *module, size_t i,
                      size_t j, ow_error *err)
{
    char ctx[64];
    snprintf(ctx, sizeof ctx, "modules[%zu].params[%zu]", i, j);
    if (entry->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, entry, "%s: expected map, got %s", ctx,
                            ow_cfg_type_name(entry->type));
    const char *name, *shared;
    const ow_cfg *grad_node, *shape_node = ow__cfg_map_get(entry, "shape");
    int64_t dims[OW_MAX_DIMS];
    int ndim, rc;
    if ((rc = check_keys(entry, param_keys, ctx, err)) != OW_OK ||
        (rc = get_string(entry, "name", true, ctx, &name, err)) != OW_OK ||
        (rc = get_string(entry, "shared", false, ctx, &shared, err)) != OW_OK ||
        (rc = get_shape(shape_node, ctx, dims, &ndim, err)) != OW_OK ||
        (rc = get_value(entry, "requires_grad", OW_CFG_BOOL, false, ctx, &grad_node,
                        err)) != OW_OK)
        return rc;
    if (ndim < 0 && !shared)
        return ow__error_at(err, OW_ERR_MISSING_KEY, entry, "%s: missing key 'shape'",
                            ctx);
    ow_param_info info = {.module = module,
                          .name = name,
                          .ndim = ndim < 0 ? 0 : ndim,
                          .shape = ndim < 0 ? NULL : dims,
                          .requires_grad = grad_node ? grad_node->v.b : true,
                          .shared = shared};
    /* one tensor has one requires_grad: an occurrence that does not say takes it */
    ow_param_view target;
    if (shared && !grad_node &&
        ow_model_get_param(m, (size_t)ow_model_find_param(m, shared), &target) == OW_OK)
        info.requires_grad = target.requires_grad;
    ow__model_field field;
    ow_error local;
    ow_error_clear(&local);
    if ((rc = ow__model_add_param(m, &info, &field, &local)) == OW_OK)
        return OW_OK;
    const ow_cfg *at = field == OW__FIELD_NAME     ? ow__cfg_map_get(entry, "name")
                       : field == OW__FIELD_SHARED ? ow__cfg_map_get(entry, "shared")
                       : field == OW__FIELD_SHAPE  ? shape_node
                       : field == OW__FIELD_REQUIRES_GRAD ? grad_node
                                                          : NULL;
    return relay(rc, &local, at ? at : entry, err);
}

static int load_module(ow_model *m, const ow_cfg *entry, size_t i, ow_error *err)
{
    char ctx[32];
    snprintf(ctx, sizeof ctx, "modules[%zu]", i);
    if (entry->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, entry, "%s: expected map, got %s", ctx,
                            ow_cfg_type_name(entry->type));
    ow_module_info info = {.kind = OW_MODULE_OTHER};
    const char *kind = NULL;
    const ow_cfg *params;
    int rc;
    if ((rc = check_keys(entry, module_keys, ctx, err)) != OW_OK ||
        (rc = get_string(entry, "name", true, ctx, &info.name, err)) != OW_OK ||
        (rc = get_string(entry, "type", true, ctx, &info.type, err)) != OW_OK ||
        (rc = get_string(entry, "kind", false, ctx, &kind, err)) != OW_OK ||
        (kind && (rc = parse_kind(ow__cfg_map_get(entry, "kind"), ctx, &info.kind,
                                  err)) != OW_OK) ||
        (rc = get_int(entry, "in_channels", ctx, &info.in_channels, err)) != OW_OK ||
        (rc = get_int(entry, "out_channels", ctx, &info.out_channels, err)) != OW_OK ||
        (rc = get_int(entry, "groups", ctx, &info.groups, err)) != OW_OK)
        return rc;
    params = ow__cfg_map_get(entry, "params");
    if (params && params->type != OW_CFG_LIST && params->type != OW_CFG_NULL)
        return ow__error_at(err, OW_ERR_TYPE, params, "%s.params: expected list, got %s",
                            ctx, ow_cfg_type_name(params->type));

    ow__model_field field;
    ow_error local;
    ow_error_clear(&local);
    size_t warnings = ow_model_get_num_warnings(m);
    if ((rc = ow__model_add_module(m, &info, &field, &local)) == OW_OK &&
        ow_model_get_num_warnings(m) > warnings) {
        /* a kind at odds with the type: point at the kind */
        ow_error *w = ow__model_last_warning(m);
        const ow_cfg *at = ow__cfg_map_get(entry, "kind");
        at = at ? at : entry;
        snprintf(w->file, sizeof w->file, "%s",
                 ow_cfg_get_file(at) ? ow_cfg_get_file(at) : "");
        w->line = ow_cfg_get_line(at);
        w->column = ow_cfg_get_column(at);
    }
    if (rc != OW_OK) {
        static const char *const field_keys[] = {
            [OW__FIELD_NAME] = "name",
            [OW__FIELD_TYPE] = "type",
            [OW__FIELD_KIND] = "kind",
            [OW__FIELD_IN_CHANNELS] = "in_channels",
            [OW__FIELD_OUT_CHANNELS] = "out_channels",
            [OW__FIELD_GROUPS] = "groups",
        };
        const ow_cfg *at = NULL;
        if ((size_t)field < OW__ARRAY_LEN(field_keys) && field_keys[field])
            at = ow__cfg_map_get(entry, field_keys[field]);
        return relay(rc, &local, at ? at : entry, err);
    }
    for (size_t j = 0; j < ow_cfg_get_size(params); j++)
        if ((rc = load_param(m, params->v.c.items[j], info.name, i, j, err)) != OW_OK)
            return rc;
    return OW_OK;
}

/* Builds a model from a parsed file; takes the top-level facts out of root. streamed
 * (taken, may be NULL) is the model the modules were already added to while parsing. */
static int model_from_cfg(ow_cfg *root, ow_model *streamed, ow_model **out, ow_error *err)
{
    ow_model *m = streamed;
    int rc = OW_ERR_MODEL;
    if (root->type != OW_CFG_MAP) {
        rc = ow__error_at(err, OW_ERR_TYPE, root,
                          "expected a map with format, name and modules at the top "
                          "level, got %s",
                          ow_cfg_type_name(root->type));
        goto fail;
    }
    const ow_cfg *format = ow__cfg_map_get(root, "format");
    if (!format) {
        rc = ow__error_at(err, OW_ERR_MODEL, root,
                          "missing key 'format' (a model file starts with 'format: "
                          "%s')",
                          MODEL_FORMAT);
        goto fail;
    }
    if (format->type != OW_CFG_STRING) {
        rc = ow__error_at(err, OW_ERR_MODEL, format, "format: expected '%s', got %s",
                          MODEL_FORMAT, ow_cfg_type_name(format->type));
        goto fail;
    }
    if (strcmp(format->v.s, MODEL_FORMAT) != 0) {
        rc = ow__error_at(err, OW_ERR_MODEL, format, "format: expected '%s', got '%s'",
                          MODEL_FORMAT, format->v.s);
        goto fail;
    }
    const char *name;
    const ow_cfg *modules;
    if ((rc = get_string(root, "name", false, "", &name, err)) != OW_OK ||
        (rc = get_value(root, "modules", OW_CFG_LIST, true, "", &modules, err)) != OW_OK)
        goto fail;

    if (!m && (rc = ow_model_new(name, &m, err)) != OW_OK)
        return rc;
    for (size_t i = 0; i < modules->v.c.n; i++)
        if ((rc = load_module(m, modules->v.c.items[i], i, err)) != OW_OK)
            goto fail;
    for (size_t i = 0; i < root->v.c.n; i++) {
        const char *key = root->v.c.keys[i];
        if (!strcmp(key, "format") || !strcmp(key, "name") || !strcmp(key, "modules"))
            continue;
        ow_cfg *value = root->v.c.items[i];
        root->v.c.items[i] = NULL; /* handed to the model, even on failure */
        if ((rc = ow__model_set_fact(m, key, value)) != OW_OK) {
            rc = ow__nomem(err);
            goto fail;
        }
    }
    *out = m;
    return OW_OK;
fail:
    ow_model_free(m);
    return rc;
}

/* Modules are added as the parser reads them, so that a file of a million modules is
 * never a config tree at once (about 1.5 KB a module); `streamed` is the model. */
static int stream_module(const ow_cfg *item, size_t i, const ow_cfg *root, void *ctx,
                         ow_error *err)
{
    ow_model **streamed = ctx;
    if (i == 0) {
        /* only when the keys before the modules pass already (a saved file starts with
         * format and name); otherwise model_from_cfg checks all in order, as before */
        const ow_cfg *format = ow__cfg_map_get(root, "format");
        const ow_cfg *name = ow__cfg_map_get(root, "name");
        if (!format || format->type != OW_CFG_STRING ||
            strcmp(format->v.s, MODEL_FORMAT) != 0 || !name ||
            name->type != OW_CFG_STRING)
            return OW__PARSE_KEEP;
        int rc = ow_model_new(name->v.s, streamed, err);
        if (rc != OW_OK)
            return rc;
    }
    return load_module(*streamed, item, i, err);
}

static int load_text(const char *text, size_t len, const char *file,
                     const ow_limits *limits, ow_model **out, ow_error *err)
{
    ow_cfg *root = NULL;
    ow_model *streamed = NULL;
    const ow__parse_opts opts = {.limits = limits,
                                 .stream_key = "modules",
                                 .on_item = stream_module,
                                 .ctx = &streamed};
    int rc = ow__cfg_parse_with(text, len, file, &opts, &root, err);
    if (rc == OW_OK)
        rc = model_from_cfg(root, streamed, out, err);
    else
        ow_model_free(streamed);
    ow_cfg_free(root);
    return rc;
}

int ow_model_load_string(const char *text, const char *name, ow_model **out,
                         ow_error *err)
{
    return ow_model_load_string_with_limits(text, name, NULL, out, err);
}

int ow_model_load_string_with_limits(const char *text, const char *name,
                                     const ow_limits *limits, ow_model **out,
                                     ow_error *err)
{
    ow__error_reset(err);
    if (out)
        *out = NULL;
    if (!out || !text)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_model_load_string: text and out must not be NULL");
    return load_text(text, strlen(text), name ? name : "<string>", limits, out, err);
}

int ow_model_load(const char *path, ow_model **out, ow_error *err)
{
    return ow_model_load_with_limits(path, NULL, out, err);
}

int ow_model_load_with_limits(const char *path, const ow_limits *limits, ow_model **out,
                              ow_error *err)
{
    ow__error_reset(err);
    if (out)
        *out = NULL;
    if (!out || !path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_model_load: path and out must not be NULL");
    char *text = NULL;
    size_t len = 0;
    int rc = ow__read_file_limited(path, limits ? limits->max_file_bytes : 0, &text, &len,
                                   err);
    if (rc == OW_OK)
        rc = load_text(text, len, path, limits, out, err);
    ow_free(text);
    return rc;
}

/* ---- saving ------------------------------------------------------------------------ */

/* Whether s reads back as the same string when written unquoted, for YAML 1.2 readers
 * and for PyYAML's 1.1 (which takes yes/no/on/off for bools). */
static bool plain_safe(const char *s)
{
    static const char *const reserved[] = {"true", "false", "null", "yes", "no",
                                           "on",   "off",   "y",    "n"};
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/") !=
        strlen(s))
        return false;
    for (size_t i = 0; i < OW__ARRAY_LEN(reserved); i++)
        if (strcasecmp(s, reserved[i]) == 0)
            return false;
    return true;
}

static void put_string(ow_strbuf *sb, const char *s)
{
    if (plain_safe(s))
        ow__sb_puts(sb, s);
    else
        ow__sb_json_string(sb, s);
}

/* A fact's value in YAML flow style, which reads back to an equal tree. */
static void put_flow(ow_strbuf *sb, const ow_cfg *node)
{
    char num[40];
    switch (node->type) {
    case OW_CFG_NULL: ow__sb_puts(sb, "null"); break;
    case OW_CFG_BOOL: ow__sb_puts(sb, node->v.b ? "true" : "false"); break;
    case OW_CFG_INT: ow__sb_printf(sb, "%lld", (long long)node->v.i); break;
    case OW_CFG_FLOAT:
        ow__format_double(node->v.d, num, sizeof num);
        /* YAML spells the non-finite values .inf, -.inf, .nan */
        ow__sb_puts(sb, !strcmp(num, "inf")    ? ".inf"
                        : !strcmp(num, "-inf") ? "-.inf"
                        : !strcmp(num, "nan")  ? ".nan"
                                               : num);
        break;
    case OW_CFG_STRING: put_string(sb, node->v.s); break;
    case OW_CFG_LIST:
    case OW_CFG_MAP:
        ow__sb_putc(sb, node->type == OW_CFG_LIST ? '[' : '{');
        for (size_t i = 0; i < node->v.c.n; i++) {
            if (i)
                ow__sb_puts(sb, ", ");
            if (node->type == OW_CFG_MAP) {
                put_string(sb, node->v.c.keys[i]);
                ow__sb_puts(sb, ": ");
            }
            put_flow(sb, node->v.c.items[i]);
        }
        ow__sb_putc(sb, node->type == OW_CFG_LIST ? ']' : '}');
        break;
    }
}

/* Writes the params of module mi, which are the occurrences from *k on. */
static void put_params(ow_strbuf *sb, const ow_model *m, const ow_module_info *mi,
                       size_t *k)
{
    ow_param_view v;
    bool first = true;
    for (; ow_model_get_param(m, *k, &v) == OW_OK && v.module_info == mi; (*k)++) {
        if (first)
            ow__sb_puts(sb, "    params:\n");
        first = false;
        ow__sb_puts(sb, "      - {name: ");
        put_string(sb, v.name);
        ow__sb_puts(sb, ", shape: [");
        for (int d = 0; d < v.ndim; d++)
            ow__sb_printf(sb, "%s%lld", d ? ", " : "", (long long)v.shape[d]);
        ow__sb_putc(sb, ']');
        if (!v.requires_grad)
            ow__sb_puts(sb, ", requires_grad: false");
        if (v.is_shared) {
            ow__sb_puts(sb, ", shared: ");
            put_string(sb, ow__model_get_tensor_name(m, *k));
        }
        ow__sb_puts(sb, "}\n");
    }
}

int ow_model_save(const ow_model *model, char **out, ow_error *err)
{
    ow__error_reset(err);
    if (out)
        *out = NULL;
    if (!out || !model)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_model_save: model and out must not be NULL");
    ow_strbuf sb;
    ow__sb_init(&sb);
    ow__sb_puts(&sb, "format: " MODEL_FORMAT "\nname: ");
    put_string(&sb, ow_model_get_name(model));
    ow__sb_putc(&sb, '\n');
    const ow_cfg *facts = ow_model_get_facts(model, NULL);
    for (size_t i = 0; i < ow_cfg_get_size(facts); i++) {
        put_string(&sb, ow_cfg_get_key(facts, i));
        ow__sb_puts(&sb, ": ");
        put_flow(&sb, ow_cfg_get_item(facts, i));
        ow__sb_putc(&sb, '\n');
    }
    size_t n = ow_model_get_num_modules(model), k = 0;
    ow__sb_puts(&sb, n ? "modules:\n" : "modules: []\n");
    for (size_t i = 0; i < n; i++) {
        const ow_module_info *mi = ow_model_get_module(model, i);
        ow__sb_puts(&sb, "  - name: ");
        put_string(&sb, mi->name);
        ow__sb_puts(&sb, "\n    type: ");
        put_string(&sb, mi->type);
        ow__sb_putc(&sb, '\n');
        if (mi->kind != OW_MODULE_OTHER)
            ow__sb_printf(&sb, "    kind: %s\n", ow__module_kind_name(mi->kind));
        if (mi->kind == OW_MODULE_CONV)
            ow__sb_printf(&sb,
                          "    in_channels: %lld\n    out_channels: %lld\n"
                          "    groups: %lld\n",
                          (long long)mi->in_channels, (long long)mi->out_channels,
                          (long long)mi->groups);
        put_params(&sb, model, mi, &k);
    }
    if (!(*out = ow__sb_take(&sb)))
        return ow__nomem(err);
    return OW_OK;
}
