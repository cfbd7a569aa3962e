/* model.c -- the in-memory model tree: modules in walk order, their direct parameters,
 * tensors shared between occurrences (tied weights), and hash lookups by name so that
 * building groups over a 20,000-parameter model stays linear. */
#include "model_internal.h"

#include <string.h>

typedef struct module_rec {
    ow_module_info info; /* name and type are owned */
    size_t num_params;   /* direct parameters */
    bool implicit;       /* made as a missing parent; an explicit add fills it in */
} module_rec;

typedef struct param_rec {
    char *full_name;    /* owned: "backbone.ln1.weight", or "logit_scale" at the root */
    size_t name_offset; /* the direct name is full_name + name_offset */
    size_t module;      /* index into modules */
    size_t owner;       /* record of the tensor's first occurrence (itself if distinct) */
    size_t tensor;      /* distinct-tensor index, in walk order of first occurrences */
    size_t position;    /* walk-order index of this occurrence */
    int ndim;
    int64_t shape[OW_MAX_DIMS];
    int64_t numel;
    bool requires_grad;
    float *data, *grad;       /* meaningful on the owner record only */
    ow_grad_dtype grad_dtype; /* what grad points to (ow_model_set_grad_half) */
} param_rec;

/* Open addressing with linear probing; a slot holds a record index + 1 (0 = empty).
 * Records are never removed, so there are no tombstones. */
typedef struct name_table {
    size_t *slots;
    size_t cap; /* a power of two, or 0 */
} name_table;

struct ow_model {
    char *name;
    module_rec *modules; /* walk order = insertion order */
    size_t num_modules, cap_modules;
    param_rec *params; /* insertion order */
    size_t num_params, cap_params;
    size_t *order; /* [num_params]: order[walk position] = record index */
    size_t cap_order;
    name_table module_index, param_index;
    size_t num_tensors;
    int64_t numel;                  /* over distinct tensors */
    size_t last_module_with_params; /* adding at or after it appends to the walk */
    ow_cfg *facts;                  /* map: no_weight_decay, group_matcher, ... */
    unsigned long generation;       /* bumped when params or data/grad pointers change */
    ow_error *warnings;             /* things accepted but rarely meant */
    size_t num_warnings, cap_warnings;
};

static const char *const kind_names[] = {
    [OW_MODULE_OTHER] = "other",         [OW_MODULE_NORM] = "norm",
    [OW_MODULE_CONV] = "conv",           [OW_MODULE_LINEAR] = "linear",
    [OW_MODULE_EMBEDDING] = "embedding",
};

const char *ow__module_kind_name(ow_module_kind kind)
{
    return (unsigned)kind < OW__ARRAY_LEN(kind_names) ? kind_names[kind] : NULL;
}

/* ---- name tables ------------------------------------------------------------------- */

typedef const char *(*key_fn)(const ow_model *model, size_t record);

static const char *module_key(const ow_model *m, size_t i)
{
    return m->modules[i].info.name;
}

static const char *param_key(const ow_model *m, size_t i)
{
    return m->params[i].full_name;
}

/* FNV-1a over the first len bytes. */
static size_t hash_name(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)h;
}

/* The record whose key is the first len bytes of name, or SIZE_MAX. */
static size_t table_find(const ow_model *m, const name_table *t, key_fn key,
                         const char *name, size_t len)
{
    if (!t->cap)
        return SIZE_MAX;
    size_t mask = t->cap - 1;
    for (size_t i = hash_name(name, len) & mask;; i = (i + 1) & mask) {
        size_t slot = t->slots[i];
        if (!slot)
            return SIZE_MAX;
        const char *k = key(m, slot - 1);
        if (strncmp(k, name, len) == 0 && k[len] == '\0')
            return slot - 1;
    }
}

static void table_put(name_table *t, const char *name, size_t record)
{
    size_t mask = t->cap - 1;
    size_t i = hash_name(name, strlen(name)) & mask;
    while (t->slots[i])
        i = (i + 1) & mask;
    t->slots[i] = record + 1;
}

/* Makes room for one more key besides records 0..count-1, keeping the load at most a
 * half. Runs before the new record exists, so a failure changes nothing. */
static int table_reserve_n(const ow_model *m, name_table *t, key_fn key, size_t count,
                           size_t extra)
{
    if ((count + extra) * 2 <= t->cap)
        return OW_OK;
    size_t cap = t->cap ? t->cap * 2 : 64;
    while ((count + extra) * 2 > cap)
        cap *= 2;
    name_table grown = {.slots = ow__calloc(cap, sizeof(size_t)), .cap = cap};
    if (!grown.slots)
        return OW_ERR_NOMEM;
    for (size_t r = 0; r < count; r++)
        table_put(&grown, key(m, r), r);
    ow_free(t->slots);
    *t = grown;
    return OW_OK;
}

static int table_reserve(const ow_model *m, name_table *t, key_fn key, size_t count)
{
    return table_reserve_n(m, t, key, count, 1);
}

/* ---- creation ---------------------------------------------------------------------- */

int ow_model_new(const char *name, ow_model **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_model_new: out is NULL");
    *out = NULL;
    ow_model *m = ow__calloc(1, sizeof *m);
    if (!m)
        return ow__nomem(err);
    m->name = ow__strdup(name ? name : "");
    m->facts = ow__cfg_new(OW_CFG_MAP, NULL, 0, 0);
    if (!m->name || !m->facts) {
        ow_model_free(m);
        return ow__nomem(err);
    }
    *out = m;
    return OW_OK;
}

void ow_model_free(ow_model *model)
{
    if (!model)
        return;
    for (size_t i = 0; i < model->num_modules; i++) {
        ow_free((void *)model->modules[i].info.name);
        ow_free((void *)model->modules[i].info.type);
    }
    for (size_t i = 0; i < model->num_params; i++)
        ow_free(model->params[i].full_name);
    ow_free(model->modules);
    ow_free(model->params);
    ow_free(model->order);
    ow_free(model->module_index.slots);
    ow_free(model->param_index.slots);
    ow_cfg_free(model->facts);
    ow_free(model->warnings);
    ow_free(model->name);
    ow_free(model);
}

/* Fills err for a rejected add and says which field was at fault. Content errors name
 * "<model>" as their file: there is no config node to point at. */
static int add_error(ow__model_field *field, ow__model_field which, ow_error *err,
                     int code, const char *fmt, ...) OW__PRINTF(5, 6);

static int add_error(ow__model_field *field, ow__model_field which, ow_error *err,
                     int code, const char *fmt, ...)
{
    if (field)
        *field = which;
    va_list ap;
    va_start(ap, fmt);
    ow__verror(err, code, code == OW_ERR_MISUSE ? NULL : "<model>", 0, 0, fmt, ap);
    va_end(ap);
    return code;
}

/* "" (the root) or dot-separated non-empty parts. */
static bool dotted_name_ok(const char *name)
{
    if (!*name)
        return true;
    size_t len = strlen(name);
    return name[0] != '.' && name[len - 1] != '.' && !strstr(name, "..");
}

/* ---- modules ----------------------------------------------------------------------- */

/* The torch classes mmengine's constructors test with isinstance, by class name. */
static const struct {
    const char *type;
    ow_module_kind kind;
} known_types[] = {
    {"BatchNorm1d", OW_MODULE_NORM},     {"BatchNorm2d", OW_MODULE_NORM},
    {"BatchNorm3d", OW_MODULE_NORM},     {"SyncBatchNorm", OW_MODULE_NORM},
    {"InstanceNorm1d", OW_MODULE_NORM},  {"InstanceNorm2d", OW_MODULE_NORM},
    {"InstanceNorm3d", OW_MODULE_NORM},  {"GroupNorm", OW_MODULE_NORM},
    {"LayerNorm", OW_MODULE_NORM},       {"Conv1d", OW_MODULE_CONV},
    {"Conv2d", OW_MODULE_CONV},          {"Conv3d", OW_MODULE_CONV},
    {"ConvTranspose1d", OW_MODULE_CONV}, {"ConvTranspose2d", OW_MODULE_CONV},
    {"ConvTranspose3d", OW_MODULE_CONV}, {"Linear", OW_MODULE_LINEAR},
    {"Embedding", OW_MODULE_EMBEDDING},
};

/* The kind a torch class name implies; false for other names. "torch.nn." and "nn."
 * prefixes are allowed. */
static bool kind_of_type(const char *type, ow_module_kind *kind)
{
    if (!strncmp(type, "torch.", 6))
        type += 6;
    if (!strncmp(type, "nn.", 3))
        type += 3;
    for (size_t i = 0; i < OW__ARRAY_LEN(known_types); i++)
        if (!strcmp(type, known_types[i].type)) {
            *kind = known_types[i].kind;
            return true;
        }
    return false;
}

int ow__model_add_warning(ow_model *m, const char *fmt, ...)
{
    if (ow__grow((void **)&m->warnings, &m->cap_warnings, m->num_warnings + 1,
                 sizeof *m->warnings) != OW_OK)
        return OW_ERR_NOMEM;
    ow_error *w = &m->warnings[m->num_warnings++];
    ow_error_clear(w);
    va_list ap;
    va_start(ap, fmt);
    ow__verror(w, OW_ERR_MODEL, "<model>", 0, 0, fmt, ap);
    va_end(ap);
    return OW_OK;
}

ow_error *ow__model_last_warning(ow_model *m)
{
    return m && m->num_warnings ? &m->warnings[m->num_warnings - 1] : NULL;
}

size_t ow_model_get_num_warnings(const ow_model *model)
{
    return model ? model->num_warnings : 0;
}

const ow_error *ow_model_get_warning(const ow_model *model, size_t i)
{
    return model && i < model->num_warnings ? &model->warnings[i] : NULL;
}

/* Adds the module `info` (its name new), after its missing ancestors, the root
 * included, as plain torch Modules (mkdir -p), in walk order; all or nothing. */
static int add_with_parents(ow_model *m, const ow_module_info *info, ow_error *err)
{
    const char *name = info->name;
    size_t n_new = 0, cap = 1;
    for (const char *p = name; *p; p++)
        cap += *p == '.';
    cap += *name != '\0'; /* the root */
    size_t *lens = ow__malloc(cap * sizeof *lens);
    char **names = ow__calloc(cap, sizeof *names),
         **types = ow__calloc(cap, sizeof *types);
    int rc = lens && names && types ? OW_OK : OW_ERR_NOMEM;
    /* prefixes of name that end before a dot, then name itself */
    size_t name_len = strlen(name);
    for (size_t len = 0; rc == OW_OK && len < name_len; len++)
        if ((len == 0 || name[len] == '.') &&
            table_find(m, &m->module_index, module_key, name, len) == SIZE_MAX)
            lens[n_new++] = len;
    if (rc == OW_OK)
        lens[n_new++] = strlen(name);
    for (size_t i = 0; rc == OW_OK && i < n_new; i++) {
        names[i] = ow__strndup(name, lens[i]);
        types[i] = ow__strdup(i + 1 < n_new ? "Module" : info->type);
        if (!names[i] || !types[i])
            rc = OW_ERR_NOMEM;
    }
    if (rc == OW_OK && (ow__grow((void **)&m->modules, &m->cap_modules,
                                 m->num_modules + n_new, sizeof(module_rec)) != OW_OK ||
                        table_reserve_n(m, &m->module_index, module_key, m->num_modules,
                                        n_new) != OW_OK))
        rc = OW_ERR_NOMEM;
    for (size_t i = 0; i < n_new; i++) {
        if (rc != OW_OK) {
            ow_free(names ? names[i] : NULL);
            ow_free(types ? types[i] : NULL);
            continue;
        }
        bool implicit = i + 1 < n_new;
        module_rec *rec = &m->modules[m->num_modules];
        rec->info = implicit ? (ow_module_info){.kind = OW_MODULE_OTHER} : *info;
        rec->info.name = names[i];
        rec->info.type = types[i];
        rec->num_params = 0;
        rec->implicit = implicit;
        table_put(&m->module_index, names[i], m->num_modules);
        m->num_modules++;
    }
    ow_free(lens);
    ow_free(names);
    ow_free(types);
    return rc == OW_OK ? OW_OK : ow__nomem(err);
}

int ow__model_add_module(ow_model *m, const ow_module_info *info, ow__model_field *field,
                         ow_error *err)
{
    if (field)
        *field = OW__FIELD_NONE;
    if (!m || !info || !info->name || !info->type)
        return add_error(field, OW__FIELD_NONE, err, OW_ERR_MISUSE,
                         "ow_model_add_module: model, info, info->name and info->type "
                         "must not be NULL");
    const char *name = info->name;
    if (!ow__module_kind_name(info->kind))
        return add_error(field, OW__FIELD_KIND, err, OW_ERR_MISUSE,
                         "module '%s': kind %d is not an ow_module_kind", name,
                         (int)info->kind);
    if (!dotted_name_ok(name))
        return add_error(field, OW__FIELD_NAME, err, OW_ERR_MODEL,
                         "module '%s': a dotted name cannot have an empty part", name);
    size_t existing = table_find(m, &m->module_index, module_key, name, strlen(name));
    if (existing != SIZE_MAX && !m->modules[existing].implicit)
        return add_error(field, OW__FIELD_NAME, err, OW_ERR_DUPLICATE,
                         "module '%s' was already added", name);
    /* kind OTHER follows the type for torch's own classes (isinstance in mmengine) */
    ow_module_kind implied = OW_MODULE_OTHER;
    bool known = kind_of_type(info->type, &implied);
    ow_module_kind kind = info->kind == OW_MODULE_OTHER && known ? implied : info->kind;
    static const char *const conv_keys[] = {"in_channels", "out_channels", "groups"};
    const int64_t conv[] = {info->in_channels, info->out_channels, info->groups};
    for (int i = 0; i < 3; i++) {
        ow__model_field at = (ow__model_field)(OW__FIELD_IN_CHANNELS + i);
        if (conv[i] < 0)
            return add_error(field, at, err, OW_ERR_MODEL,
                             "module '%s': %s must not be negative, got %lld", name,
                             conv_keys[i], (long long)conv[i]);
        if (conv[i] != 0 && kind != OW_MODULE_CONV)
            return add_error(field, at, err, OW_ERR_MODEL,
                             "module '%s': %s is for kind conv only, not %s", name,
                             conv_keys[i], kind_names[kind]);
    }
    /* warnings first: a failed allocation then changes nothing */
    size_t warnings = m->num_warnings;
    if (known && kind != implied &&
        ow__model_add_warning(m,
                              "module '%s': type %s is a torch %s module, but its kind "
                              "is %s (mmengine's constructors test the class: kind %s)",
                              name, info->type, kind_names[implied], kind_names[kind],
                              kind_names[implied]) != OW_OK)
        return ow__nomem(err);
    ow_module_info full = *info;
    full.kind = kind;
    int rc;
    if (existing != SIZE_MAX) { /* an implicit parent, now described */
        module_rec *rec = &m->modules[existing];
        char *type_copy = ow__strdup(info->type);
        if (!type_copy) {
            m->num_warnings = warnings;
            return ow__nomem(err);
        }
        ow_free((void *)rec->info.type);
        full.name = rec->info.name;
        full.type = type_copy;
        rec->info = full;
        rec->implicit = false;
        return OW_OK;
    }
    if ((rc = add_with_parents(m, &full, err)) != OW_OK)
        m->num_warnings = warnings;
    return rc;
}

int ow_model_add_module(ow_model *model, const ow_module_info *info, ow_error *err)
{
    ow__error_reset(err);
    return ow__model_add_module(model, info, NULL, err);
}

/* ---- parameters -------------------------------------------------------------------- */

/* "[768, 3, 16, 16]" into buf (ndim <= OW_MAX_DIMS fits in 256 bytes). */
static const char *format_shape(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "",
                              (long long)shape[i]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
    return buf;
}

/* Checks ndim and extents and computes numel (a 0-dim tensor has one element). */
static int check_shape(const char *full, const ow_param_info *info, int64_t *numel,
                       ow__model_field *field, ow_error *err)
{
    char buf[256];
    if (info->ndim < 0 || info->ndim > OW_MAX_DIMS)
        return add_error(field, OW__FIELD_SHAPE, err, OW_ERR_MODEL,
                         "param '%s': ndim must be between 0 and %d, got %d", full,
                         OW_MAX_DIMS, info->ndim);
    if (info->ndim > 0 && !info->shape)
        return add_error(field, OW__FIELD_SHAPE, err, OW_ERR_MISUSE,
                         "param '%s': shape is NULL but ndim is %d", full, info->ndim);
    int64_t n = 1;
    for (int i = 0; i < info->ndim; i++)
        if (info->shape[i] < 0)
            return add_error(field, OW__FIELD_SHAPE, err, OW_ERR_MODEL,
                             "param '%s': shape %s has a negative extent", full,
                             format_shape(buf, sizeof buf, info->ndim, info->shape));
    for (int i = 0; i < info->ndim; i++) {
        if (info->shape[i] != 0 && n > INT64_MAX / info->shape[i])
            return add_error(field, OW__FIELD_SHAPE, err, OW_ERR_MODEL,
                             "param '%s': shape %s has too many elements", full,
                             format_shape(buf, sizeof buf, info->ndim, info->shape));
        n *= info->shape[i];
    }
    *numel = n;
    return OW_OK;
}

/* Checks a `shared` occurrence against its tensor; *owner gets the tensor's record. */
static int check_shared(const ow_model *m, const char *full, size_t module,
                        const ow_param_info *info, size_t *owner, ow__model_field *field,
                        ow_error *err)
{
    size_t target =
        table_find(m, &m->param_index, param_key, info->shared, strlen(info->shared));
    if (target == SIZE_MAX)
        return add_error(field, OW__FIELD_SHARED, err, OW_ERR_MODEL,
                         "param '%s': shared '%s' is not an earlier parameter", full,
                         info->shared);
    /* the tensor's first occurrence must stay first in walk order */
    if (m->params[target].module > module)
        return add_error(field, OW__FIELD_SHARED, err, OW_ERR_MODEL,
                         "param '%s': shared '%s' comes after it in walk order", full,
                         info->shared);
    const param_rec *o = &m->params[m->params[target].owner];
    *owner = m->params[target].owner;
    char a[256], b[256];
    if ((info->ndim != 0 || info->shape) &&
        (info->ndim != o->ndim ||
         memcmp(info->shape, o->shape, (size_t)o->ndim * sizeof(int64_t)) != 0))
        return add_error(field, OW__FIELD_SHAPE, err, OW_ERR_MODEL,
                         "param '%s': shape %s differs from %s of shared '%s'", full,
                         format_shape(a, sizeof a, info->ndim, info->shape),
                         format_shape(b, sizeof b, o->ndim, o->shape), info->shared);
    if (info->requires_grad != o->requires_grad)
        return add_error(field, OW__FIELD_REQUIRES_GRAD, err, OW_ERR_MODEL,
                         "param '%s': requires_grad is %s but shared '%s' (the same "
                         "tensor) has %s",
                         full, info->requires_grad ? "true" : "false", info->shared,
                         o->requires_grad ? "true" : "false");
    if ((info->data && info->data != o->data) || (info->grad && info->grad != o->grad))
        return add_error(field, OW__FIELD_DATA, err, OW_ERR_MODEL,
                         "param '%s': data and grad come from shared '%s'; pass NULL",
                         full, info->shared);
    return OW_OK;
}

/* Walk position of a new last param of module: the end of that module's block. */
static size_t insert_position(const ow_model *m, size_t module)
{
    if (m->num_params == 0 || module >= m->last_module_with_params)
        return m->num_params;
    size_t pos = 0;
    for (size_t k = 0; k <= module; k++)
        pos += m->modules[k].num_params;
    return pos;
}

/* Inserts record r at walk position pos, renumbering what follows. Adding to an earlier
 * module than the last one with params costs O(n); appending (the usual) is O(1). */
static void insert_occurrence(ow_model *m, size_t r, size_t pos)
{
    param_rec *p = &m->params[r];
    bool distinct = p->owner == r;
    if (pos == m->num_params) {
        m->order[pos] = r;
        p->position = pos;
        p->tensor = distinct ? m->num_tensors : m->params[p->owner].tensor;
        return;
    }
    memmove(m->order + pos + 1, m->order + pos, (m->num_params - pos) * sizeof(size_t));
    m->order[pos] = r;
    for (size_t k = pos; k <= m->num_params; k++)
        m->params[m->order[k]].position = k;
    /* first occurrences always precede their shared ones, so one pass renumbers */
    size_t t = 0;
    for (size_t k = 0; k <= m->num_params; k++) {
        param_rec *q = &m->params[m->order[k]];
        q->tensor = q->owner == m->order[k] ? t++ : m->params[q->owner].tensor;
    }
}

int ow__model_add_param(ow_model *m, const ow_param_info *info, ow__model_field *field,
                        ow_error *err)
{
    if (field)
        *field = OW__FIELD_NONE;
    if (!m || !info || !info->module || !info->name)
        return add_error(field, OW__FIELD_NONE, err, OW_ERR_MISUSE,
                         "ow_model_add_param: model, info, info->module and info->name "
                         "must not be NULL");
    size_t module =
        table_find(m, &m->module_index, module_key, info->module, strlen(info->module));
    if (module == SIZE_MAX)
        return add_error(field, OW__FIELD_MODULE, err, OW_ERR_MODEL,
                         "param '%s%s%s': module '%s' was not added", info->module,
                         *info->module ? "." : "", info->name, info->module);
    if (!*info->name)
        return add_error(field, OW__FIELD_NAME, err, OW_ERR_MODEL,
                         "module '%s': a param needs a non-empty name", info->module);

    ow_strbuf sb;
    ow__sb_init(&sb);
    ow__sb_printf(&sb, "%s%s%s", info->module, *info->module ? "." : "", info->name);
    char *full = ow__sb_take(&sb);
    if (!full)
        return ow__nomem(err);
    int rc;
    int64_t numel = 0;
    size_t owner = m->num_params;
    if (strchr(info->name, '.'))
        rc = add_error(field, OW__FIELD_NAME, err, OW_ERR_MODEL,
                       "param '%s': a param name cannot contain '.'", full);
    else if (table_find(m, &m->param_index, param_key, full, strlen(full)) != SIZE_MAX)
        rc = add_error(field, OW__FIELD_NAME, err, OW_ERR_DUPLICATE,
                       "param '%s' was already added", full);
    else if ((rc = check_shape(full, info, &numel, field, err)) == OW_OK && info->shared)
        rc = check_shared(m, full, module, info, &owner, field, err);
    if (rc != OW_OK)
        goto fail;
    if (ow__grow((void **)&m->params, &m->cap_params, m->num_params + 1,
                 sizeof(param_rec)) != OW_OK ||
        ow__grow((void **)&m->order, &m->cap_order, m->num_params + 1, sizeof(size_t)) !=
            OW_OK ||
        table_reserve(m, &m->param_index, param_key, m->num_params) != OW_OK) {
        rc = ow__nomem(err);
        goto fail;
    }

    /* nothing fails from here on */
    size_t r = m->num_params;
    param_rec *p = &m->params[r];
    memset(p, 0, sizeof *p);
    p->full_name = full;
    p->name_offset = strlen(full) - strlen(info->name);
    p->module = module;
    p->owner = owner;
    if (owner == r) {
        p->ndim = info->ndim;
        if (info->ndim)
            memcpy(p->shape, info->shape, (size_t)info->ndim * sizeof(int64_t));
        p->numel = numel;
        p->requires_grad = info->requires_grad;
        p->data = info->data;
        p->grad = info->grad;
    } else {
        const param_rec *o = &m->params[owner];
        p->ndim = o->ndim;
        memcpy(p->shape, o->shape, sizeof p->shape);
        p->numel = o->numel;
        p->requires_grad = o->requires_grad;
    }
    insert_occurrence(m, r, insert_position(m, module));
    if (owner == r) {
        m->num_tensors++;
        m->numel += numel;
    }
    m->modules[module].num_params++;
    if (module > m->last_module_with_params)
        m->last_module_with_params = module;
    table_put(&m->param_index, full, r);
    m->num_params++;
    m->generation++;
    return OW_OK;
fail:
    ow_free(full);
    return rc;
}

int ow_model_add_param(ow_model *model, const ow_param_info *info, ow_error *err)
{
    ow__error_reset(err);
    return ow__model_add_param(model, info, NULL, err);
}

int ow_model_set_data(ow_model *model, const char *full_name, float *data, float *grad,
                      ow_error *err)
{
    ow__error_reset(err);
    if (!model || !full_name)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_model_set_data: model and full_name must not be NULL");
    size_t r =
        table_find(model, &model->param_index, param_key, full_name, strlen(full_name));
    if (r == SIZE_MAX)
        return ow__error(err, OW_ERR_MODEL, "<model>", 0, 0, "param '%s' was not added",
                         full_name);
    param_rec *o = &model->params[model->params[r].owner];
    o->data = data;
    o->grad = grad;
    o->grad_dtype = OW_GRAD_F32;
    model->generation++;
    return OW_OK;
}

int ow_model_set_data_at(ow_model *model, size_t index, float *data, float *grad,
                         ow_error *err)
{
    ow__error_reset(err);
    if (!model)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_model_set_data_at: model is NULL");
    if (index >= model->num_params)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_model_set_data_at: parameter index %zu is out of range (the "
                         "model has %zu)",
                         index, model->num_params);
    param_rec *o = &model->params[model->params[model->order[index]].owner];
    size_t n = (size_t)o->numel;
    if (data && grad && data < grad + n && grad < data + n)
        return ow__error(err, OW_ERR_MODEL, "<model>", 0, 0,
                         "ow_model_set_data_at: param '%s': the data and grad buffers "
                         "overlap",
                         o->full_name);
    o->data = data;
    o->grad = grad;
    o->grad_dtype = OW_GRAD_F32;
    model->generation++;
    return OW_OK;
}

int ow_model_set_grad_half(ow_model *model, size_t index, void *grad, ow_grad_dtype dtype,
                           ow_error *err)
{
    ow__error_reset(err);
    if (!model || !grad)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_model_set_grad_half: model and grad must not be NULL");
    if (dtype != OW_GRAD_BF16 && dtype != OW_GRAD_F16)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_model_set_grad_half: dtype %d is not OW_GRAD_BF16 or "
                         "OW_GRAD_F16",
                         (int)dtype);
    if (index >= model->num_params)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_model_set_grad_half: parameter index %zu is out of range "
                         "(the model has %zu)",
                         index, model->num_params);
    param_rec *o = &model->params[model->params[model->order[index]].owner];
    o->grad = grad;
    o->grad_dtype = dtype;
    model->generation++;
    return OW_OK;
}

ow_grad_dtype ow__model_grad_dtype(const ow_model *model, size_t index)
{
    return index < model->num_params
               ? model->params[model->params[model->order[index]].owner].grad_dtype
               : OW_GRAD_F32;
}

int ow_model_set_buffers(ow_model *model, float *data, float *grad, size_t numel,
                         ow_error *err)
{
    ow__error_reset(err);
    if (!model)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_model_set_buffers: model is NULL");
    if (numel != (size_t)model->numel)
        return ow__error(err, OW_ERR_MODEL, "<model>", 0, 0,
                         "ow_model_set_buffers: the buffers hold %zu floats, the model's "
                         "distinct tensors %lld",
                         numel, (long long)model->numel);
    if (data && grad && data < grad + numel && grad < data + numel)
        return ow__error(err, OW_ERR_MODEL, "<model>", 0, 0,
                         "ow_model_set_buffers: the data and grad buffers overlap");
    size_t off = 0; /* distinct tensors in walk order: their first occurrences */
    for (size_t pos = 0; pos < model->num_params; pos++) {
        param_rec *p = &model->params[model->order[pos]];
        if (p->owner != model->order[pos])
            continue;
        p->data = data ? data + off : NULL;
        p->grad = grad ? grad + off : NULL;
        p->grad_dtype = OW_GRAD_F32;
        off += (size_t)p->numel;
    }
    model->generation++;
    return OW_OK;
}

unsigned long ow__model_generation(const ow_model *model)
{
    return model ? model->generation : 0;
}

/* ---- reading ----------------------------------------------------------------------- */

const char *ow_model_get_name(const ow_model *model)
{
    return model ? model->name : NULL;
}

size_t ow_model_get_num_modules(const ow_model *model)
{
    return model ? model->num_modules : 0;
}

const ow_module_info *ow_model_get_module(const ow_model *model, size_t i)
{
    return model && i < model->num_modules ? &model->modules[i].info : NULL;
}

size_t ow_model_get_num_params(const ow_model *model)
{
    return model ? model->num_params : 0;
}

int ow_model_get_param(const ow_model *model, size_t i, ow_param_view *out)
{
    if (!model || !out || i >= model->num_params)
        return OW_ERR_MISUSE;
    const param_rec *p = &model->params[model->order[i]];
    const param_rec *o = &model->params[p->owner];
    const ow_module_info *mi = &model->modules[p->module].info;
    *out = (ow_param_view){
        .full_name = p->full_name,
        .module = mi->name,
        .name = p->full_name + p->name_offset,
        .module_info = mi,
        .ndim = p->ndim,
        .shape = p->shape,
        .numel = p->numel,
        .requires_grad = p->requires_grad,
        .tensor = p->tensor,
        .is_shared = p->owner != model->order[i],
        .data = o->data,
        .grad = o->grad,
    };
    return OW_OK;
}

size_t ow_model_get_num_tensors(const ow_model *model)
{
    return model ? model->num_tensors : 0;
}

int64_t ow_model_get_numel(const ow_model *model)
{
    return model ? model->numel : 0;
}

long ow_model_find_param(const ow_model *model, const char *full_name)
{
    if (!model || !full_name)
        return -1;
    size_t r =
        table_find(model, &model->param_index, param_key, full_name, strlen(full_name));
    return r == SIZE_MAX ? -1 : (long)model->params[r].position;
}

const char *ow__model_get_tensor_name(const ow_model *model, size_t i)
{
    if (!model || i >= model->num_params)
        return NULL;
    return model->params[model->params[model->order[i]].owner].full_name;
}

/* ---- model-level facts ------------------------------------------------------------- */

const ow_cfg *ow_model_get_facts(const ow_model *model, const char *key)
{
    if (!model)
        return NULL;
    return key ? ow__cfg_map_get(model->facts, key) : model->facts;
}

const ow_cfg *ow__model_facts(const ow_model *model)
{
    return model ? model->facts : NULL;
}

int ow__model_set_fact(ow_model *model, const char *key, ow_cfg *value_taken)
{
    if (!model || !key) {
        ow_cfg_free(value_taken);
        return OW_ERR_MISUSE;
    }
    return ow__cfg_map_set(model->facts, key, value_taken);
}
