/* state.c -- the optimizer's state as safetensors, so a PyTorch user can open it:
 * torch's state keys as tensors "state.<param index>.<key>", the param groups in the
 * metadata. One part of a checkpoint (under a prefix) or a file of its own; loading is
 * staged (everything read and checked) and then committed, which cannot fail. */
#include "../util/safetensors.h"
#include "optim_internal.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT "optwrap-optimizer/1"

static const char *const dtype_names[] = {[OW_DTYPE_F32] = "F32",
                                          [OW_DTYPE_F64] = "F64",
                                          [OW_DTYPE_I64] = "I64",
                                          [OW_DTYPE_BF16] = "BF16",
                                          [OW_DTYPE_U8] = "U8"};

static const char *tensor_name(const ow_optimizer *opt, size_t i)
{
    ow_param_view pv;
    ow_model_get_param(opt->model, opt->t[i].param, &pv);
    return pv.full_name;
}

/* "scope.Name", as the registry writes a scoped entry. */
static void optimizer_name(const ow_optimizer *opt, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s", opt->entry->scope ? opt->entry->scope : "",
             opt->entry->scope ? "." : "", opt->entry->name);
}

static void put_shape(ow_strbuf *sb, int ndim, const int64_t *shape)
{
    ow__sb_putc(sb, '[');
    for (int d = 0; d < ndim; d++)
        ow__sb_printf(sb, d ? ", %lld" : "%lld", (long long)shape[d]);
    ow__sb_putc(sb, ']');
}

/* ---- save -------------------------------------------------------------------------- */

static bool has_slot(const ow_optimizer *opt, size_t i, size_t s)
{
    int64_t shape[OW_MAX_DIMS];
    return opt->t[i].has_state && ow__slot_shape(opt, &opt->t[i], s, shape) >= 0;
}

/* How the state is stored, where the group's own keys do not say and it is not
 * float32 (the optimizer-level state_dtype): a group without state_dtype in a file is
 * float32, whatever the loading optimizer's defaults. */
static const char *const storage_keys[] = {"state_dtype", "stochastic_rounding"};

static void put_storage(const ow_optimizer *opt, size_t gi, ow_strbuf *groups)
{
    const ow_cfg *o = opt->g[gi].opts;
    for (size_t j = 0; j < OW__ARRAY_LEN(storage_keys); j++) {
        long k = ow__optimizer_key(opt, storage_keys[j]);
        if (k < 0 || ow__cfg_map_get(o, storage_keys[j]))
            continue;
        const ow_hparam *hp = &opt->g[gi].hp[k];
        if (j == 0 && !hp->absent && hp->s && strcmp(hp->s, "float32"))
            ow__sb_printf(groups, "\"state_dtype\": \"%s\", ", hp->s);
        if (j == 1 && !hp->absent && ow__hp_true(hp))
            ow__sb_puts(groups, "\"stochastic_rounding\": true, ");
    }
}

/* The metadata values: names, shapes and groups as JSON text. */
static void metadata(const ow_optimizer *opt, ow_strbuf *names, ow_strbuf *shapes,
                     ow_strbuf *groups)
{
    ow__sb_putc(groups, '[');
    size_t index = 0;
    for (size_t gi = 0; gi < opt->ng; gi++) {
        const ow_cfg *o = opt->g[gi].opts;
        ow__sb_puts(groups, gi ? ", {" : "{");
        for (size_t k = 0; k < o->v.c.n; k++) {
            ow__sb_json_string(groups, o->v.c.keys[k]);
            ow__sb_puts(groups, ": ");
            ow__cfg_write_json(groups, o->v.c.items[k]);
            ow__sb_puts(groups, ", ");
        }
        put_storage(opt, gi, groups);
        ow__sb_puts(groups, "\"params\": [");
        for (size_t i = 0, first = 1; i < opt->nt; i++)
            if (opt->t[i].group == gi) {
                ow__sb_printf(groups, first ? "%zu" : ", %zu", index++);
                first = 0;
            }
        ow__sb_puts(groups, "]}");
    }
    ow__sb_putc(groups, ']');
    ow__sb_putc(names, '[');
    ow__sb_putc(shapes, '[');
    for (size_t i = 0; i < opt->nt; i++) {
        if (i) {
            ow__sb_puts(names, ", ");
            ow__sb_puts(shapes, ", ");
        }
        ow__sb_json_string(names, tensor_name(opt, i));
        put_shape(shapes, opt->t[i].ndim, opt->t[i].shape);
    }
    ow__sb_putc(names, ']');
    ow__sb_putc(shapes, ']');
}

/* Sets metadata prefix + key; fails with NOMEM where building value did. */
static int set_meta(ow__st_builder *b, const char *prefix, const char *key,
                    const ow_strbuf *value, ow_error *err)
{
    ow_strbuf k;
    ow__sb_init(&k);
    ow__sb_puts(&k, prefix);
    ow__sb_puts(&k, key);
    int rc = k.failed || value->failed
                 ? ow__nomem(err)
                 : ow__st_builder_set_meta(b, k.data, value->data, err);
    ow__sb_free(&k);
    return rc;
}

/* Slot s of tensor i as tensor `name`: a scalar slot as a 0-d tensor of its dtype
 * (copied), a tensor slot as float32 borrowed from the optimizer. */
static int add_slot(const ow_optimizer *opt, ow__st_builder *b, const char *name,
                    size_t i, size_t s, ow_error *err)
{
    const ow_slot *sl = &opt->ops->slots[s];
    const ow__tensor *t = &opt->t[i];
    if (sl->flags & OW_SLOT_SCALAR) {
        double v = t->scalar[s];
        float f = (float)v;
        int64_t n = (int64_t)v;
        const void *data = sl->dtype == OW_DTYPE_F32   ? (const void *)&f
                           : sl->dtype == OW_DTYPE_F64 ? (const void *)&v
                                                       : (const void *)&n;
        return ow__st_builder_add_copy(b, name, dtype_names[sl->dtype], 0, NULL, data,
                                       ow__dtype_size(sl->dtype), err);
    }
    int64_t shape[OW_MAX_DIMS];
    int nd = ow__slot_shape(opt, t, s, shape);
    ow_dtype dt = (ow_dtype)t->sdtype[s];
    return ow__st_builder_add(b, name, dtype_names[dt], nd, shape, t->slot[s],
                              t->slot_numel[s] * ow__dtype_size(dt), err);
}

int ow__optimizer_state_add(const ow_optimizer *opt, ow__st_builder *b,
                            const char *prefix, ow_error *err)
{
    if (!opt || !b)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow__optimizer_state_add: NULL argument");
    if (!prefix)
        prefix = "";
    ow_strbuf names, shapes, groups, oname, tname;
    ow__sb_init(&names);
    ow__sb_init(&shapes);
    ow__sb_init(&groups);
    ow__sb_init(&oname);
    ow__sb_init(&tname);
    metadata(opt, &names, &shapes, &groups);
    char buf[160];
    optimizer_name(opt, buf, sizeof buf);
    ow__sb_puts(&oname, buf);
    int rc = set_meta(b, prefix, "optimizer", &oname, err);
    if (!rc)
        rc = set_meta(b, prefix, "param_names", &names, err);
    if (!rc)
        rc = set_meta(b, prefix, "param_shapes", &shapes, err);
    if (!rc)
        rc = set_meta(b, prefix, "param_groups", &groups, err);
    if (!rc && (opt->ops->needs & OW_NEEDS_RNG)) { /* the built-in generator's place */
        oname.len = 0;
        ow__sb_printf(&oname, "%llu %llu", (unsigned long long)opt->seed,
                      (unsigned long long)opt->draws);
        rc = set_meta(b, prefix, "rng", &oname, err);
    }
    for (size_t i = 0; i < opt->nt && !rc; i++)
        for (size_t s = 0; s < opt->nslots && !rc; s++) {
            if (!has_slot(opt, i, s))
                continue;
            tname.len = 0;
            ow__sb_printf(&tname, "%sstate.%zu.%s", prefix, i, opt->ops->slots[s].name);
            rc = tname.failed ? ow__nomem(err) : add_slot(opt, b, tname.data, i, s, err);
        }
    ow__sb_free(&names);
    ow__sb_free(&shapes);
    ow__sb_free(&groups);
    ow__sb_free(&oname);
    ow__sb_free(&tname);
    return rc;
}

int ow_optimizer_save(const ow_optimizer *opt, const char *path, ow_error *err)
{
    ow__error_reset(err);
    if (!opt || !path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optimizer_save: NULL argument");
    ow__st_builder *b = NULL;
    int rc = ow__st_builder_new(&b, err);
    if (!rc)
        rc = ow__st_builder_set_meta(b, "format", FORMAT, err);
    if (!rc)
        rc = ow__optimizer_state_add(opt, b, "", err);
    if (!rc)
        rc = ow__st_builder_save(b, path, err);
    ow__st_builder_free(b);
    return rc;
}

/* ---- stage ------------------------------------------------------------------------- */

struct ow__optimizer_staged {
    const ow_optimizer *opt;
    ow_cfg **opts;   /* [ng] the groups' hyperparameters, without "params" */
    ow_hparam **hp;  /* [ng] resolved from opts */
    ow_cfg **fopts;  /* [ng] the file's own, where its storage keys differ */
    ow_hparam **fhp; /* [ng] resolved from fopts: the layout of the file's tensors */
    char **notes;    /* [nnotes] for ow_optimizer_get_note */
    size_t nnotes;
    float ***slot;        /* [nt] NULL: no state; else [nslots] */
    size_t **slot_numel;  /* [nt] [nslots] where slot[i] */
    double **scalar;      /* [nt] [nslots] where slot[i] */
    bool *present;        /* [nt * nslots] */
    uint64_t seed, draws; /* OW_NEEDS_RNG: the built-in generator's place */
};

void ow__optimizer_state_discard(ow__optimizer_staged *s)
{
    if (!s)
        return;
    const ow_optimizer *opt = s->opt;
    for (size_t i = 0; s->slot && i < opt->nt; i++) {
        for (size_t k = 0; s->slot[i] && k < opt->nslots; k++)
            ow_free(s->slot[i][k]);
        ow_free(s->slot[i]);
    }
    for (size_t i = 0; s->slot_numel && i < opt->nt; i++)
        ow_free(s->slot_numel[i]);
    for (size_t i = 0; s->scalar && i < opt->nt; i++)
        ow_free(s->scalar[i]);
    for (size_t g = 0; s->opts && g < opt->ng; g++)
        ow_cfg_free(s->opts[g]);
    for (size_t g = 0; s->hp && g < opt->ng; g++)
        ow_free(s->hp[g]);
    for (size_t g = 0; s->fopts && g < opt->ng; g++)
        ow_cfg_free(s->fopts[g]);
    for (size_t g = 0; s->fhp && g < opt->ng; g++)
        ow_free(s->fhp[g]);
    for (size_t k = 0; k < s->nnotes; k++)
        ow_free(s->notes[k]);
    ow_free(s->notes);
    ow_free(s->opts);
    ow_free(s->hp);
    ow_free(s->fopts);
    ow_free(s->fhp);
    ow_free(s->slot);
    ow_free(s->slot_numel);
    ow_free(s->scalar);
    ow_free(s->present);
    ow_free(s);
}

const ow_cfg *ow__optimizer_staged_group(const ow__optimizer_staged *s, size_t g)
{
    return s && g < s->opt->ng ? s->opts[g] : NULL;
}

/* A metadata entry prefix + key parsed as JSON. */
static int meta_json(const ow__st_file *f, const char *prefix, const char *key,
                     ow_cfg **out, ow_error *err)
{
    ow_strbuf k;
    ow__sb_init(&k);
    ow__sb_puts(&k, prefix);
    ow__sb_puts(&k, key);
    int rc = k.failed ? ow__nomem(err) : ow__st_file_meta_json(f, k.data, out, err);
    ow__sb_free(&k);
    return rc;
}

static int check_optimizer(const ow_optimizer *opt, const ow__st_file *f,
                           const char *prefix, ow_error *err)
{
    const char *path = ow__st_file_get_name(f);
    ow_strbuf k;
    ow__sb_init(&k);
    ow__sb_puts(&k, prefix);
    ow__sb_puts(&k, "optimizer");
    if (k.failed) {
        ow__sb_free(&k);
        return ow__nomem(err);
    }
    const char *name = ow__st_file_find_meta(f, k.data);
    char ours[160];
    optimizer_name(opt, ours, sizeof ours);
    int rc =
        !name ? ow__st_error(err, path, "metadata lacks '%s'", k.data)
        : strcmp(name, ours)
            ? ow__st_error(err, path, "written by optimizer '%s', not '%s'", name, ours)
            : OW_OK;
    ow__sb_free(&k);
    return rc;
}

static bool same_shape(const ow_cfg *list, const ow__tensor *t)
{
    if (ow_cfg_get_type(list) != OW_CFG_LIST || list->v.c.n != (size_t)t->ndim)
        return false;
    for (int d = 0; d < t->ndim; d++) {
        const ow_cfg *x = list->v.c.items[d];
        if (x->type != OW_CFG_INT || x->v.i != t->shape[d])
            return false;
    }
    return true;
}

/* Parameter names, in param_groups order, and (files that have them) their shapes. */
static int check_params(const ow_optimizer *opt, const ow__st_file *f, const char *prefix,
                        ow_error *err)
{
    const char *path = ow__st_file_get_name(f);
    ow_cfg *names = NULL, *shapes = NULL;
    int rc = meta_json(f, prefix, "param_names", &names, err);
    if (rc)
        return rc;
    if (names->type != OW_CFG_LIST || names->v.c.n != opt->nt)
        rc = ow__st_error(err, path, "it holds %zu parameters, the optimizer %zu",
                          ow_cfg_get_size(names), opt->nt);
    for (size_t i = 0; !rc && i < opt->nt; i++) {
        const ow_cfg *n = names->v.c.items[i];
        if (n->type != OW_CFG_STRING || strcmp(n->v.s, tensor_name(opt, i)))
            rc = ow__st_error(err, path, "parameter %zu is '%s', the optimizer's is '%s'",
                              i, n->type == OW_CFG_STRING ? n->v.s : "?",
                              tensor_name(opt, i));
    }
    ow_strbuf k;
    ow__sb_init(&k);
    ow__sb_puts(&k, prefix);
    ow__sb_puts(&k, "param_shapes");
    if (!rc && k.failed)
        rc = ow__nomem(err);
    if (!rc && ow__st_file_find_meta(f, k.data) &&
        !(rc = ow__st_file_meta_json(f, k.data, &shapes, err))) {
        if (shapes->type != OW_CFG_LIST || shapes->v.c.n != opt->nt)
            rc = ow__st_error(err, path, "metadata '%s' does not list %zu shapes", k.data,
                              opt->nt);
        for (size_t i = 0; !rc && i < opt->nt; i++)
            if (!same_shape(shapes->v.c.items[i], &opt->t[i])) {
                ow_strbuf file, ours;
                ow__sb_init(&file);
                ow__sb_init(&ours);
                ow__cfg_write_json(&file, shapes->v.c.items[i]);
                put_shape(&ours, opt->t[i].ndim, opt->t[i].shape);
                rc = file.failed || ours.failed
                         ? ow__nomem(err)
                         : ow__st_error(err, path,
                                        "parameter '%s' is %s in the file, %s in the "
                                        "optimizer (another model?)",
                                        tensor_name(opt, i), file.data, ours.data);
                ow__sb_free(&file);
                ow__sb_free(&ours);
            }
    }
    ow__sb_free(&k);
    ow_cfg_free(names);
    ow_cfg_free(shapes);
    return rc;
}

static bool hp_same(const ow_hparam *a, const ow_hparam *b)
{
    if (a->absent != b->absent || a->is_null != b->is_null || !a->s != !b->s)
        return false;
    return a->s ? !strcmp(a->s, b->s) : a->n == b->n && (a->n < 1 || a->v[0] == b->v[0]);
}

static const char *storage_name(const ow_hparam *hp)
{
    return !hp->absent && hp->s ? hp->s : "float32";
}

static int add_note(ow__optimizer_staged *s, const char *text, ow_error *err)
{
    char **n = ow__realloc(s->notes, (s->nnotes + 1) * sizeof *n);
    if (!n)
        return ow__nomem(err);
    s->notes = n;
    if (!(n[s->nnotes] = ow__strdup(text)))
        return ow__nomem(err);
    s->nnotes++;
    return OW_OK;
}

/* How the state is stored (state_dtype, stochastic_rounding) is the optimizer's choice,
 * not the file's: the staged group takes the optimizer's values; where the file's say
 * otherwise they are kept in fopts/fhp (they say how its tensors are laid out, for
 * ow__state_convert) and a note says so. */
static int keep_storage(const ow_optimizer *opt, size_t g, ow__optimizer_staged *s,
                        const char *path, ow_error *err)
{
    long ks = ow__optimizer_key(opt, "state_dtype");
    if (ks < 0)
        return OW_OK;
    bool same = true;
    for (size_t j = 0; j < OW__ARRAY_LEN(storage_keys); j++) {
        long k = ow__optimizer_key(opt, storage_keys[j]);
        same = same && (k < 0 || hp_same(&opt->g[g].hp[k], &s->hp[g][k]));
    }
    s->fopts[g] = s->opts[g];
    s->fhp[g] = s->hp[g];
    s->hp[g] = NULL;
    if (!(s->opts[g] = ow__cfg_dup(s->fopts[g])) ||
        !(s->hp[g] = ow__calloc(opt->nkeys ? opt->nkeys : 1, sizeof(ow_hparam))))
        return ow__nomem(err);
    for (size_t j = 0; j < OW__ARRAY_LEN(storage_keys); j++) {
        const ow_cfg *mine = ow__cfg_map_get(opt->g[g].opts, storage_keys[j]);
        if (!mine)
            ow__cfg_map_remove(s->opts[g], storage_keys[j]);
        else if (ow__cfg_map_set(s->opts[g], storage_keys[j], ow__cfg_dup(mine)))
            return ow__nomem(err);
    }
    ow_error e2;
    ow_error_clear(&e2);
    if (ow__optimizer_resolve_group(opt, g, s->opts[g], s->hp[g], &e2))
        return e2.code == OW_ERR_NOMEM
                   ? ow__nomem(err)
                   : ow__st_error(err, path, "param group %zu: %s", g, e2.message);
    if (same) { /* the file's keys spelled as the optimizer's */
        ow_cfg_free(s->fopts[g]);
        ow_free(s->fhp[g]);
        s->fopts[g] = NULL;
        s->fhp[g] = NULL;
    }
    return OW_OK;
}

/* One note per conversion: "PATH: state saved with state_dtype int8, converted to
 * float32 (param groups 0, 1)"; none where stochastic_rounding alone differs (the same
 * bytes). */
static int make_notes(const ow_optimizer *opt, ow__optimizer_staged *s, const char *path,
                      ow_error *err)
{
    long ks = ow__optimizer_key(opt, "state_dtype");
    bool *done = ow__calloc(opt->ng ? opt->ng : 1, sizeof *done);
    if (!done)
        return ow__nomem(err);
    int rc = OW_OK;
    for (size_t g = 0; g < opt->ng && !rc; g++) {
        if (done[g] || !s->fhp[g])
            continue;
        const char *was = storage_name(&s->fhp[g][ks]),
                   *now = storage_name(&s->hp[g][ks]);
        ow_strbuf note, list;
        ow__sb_init(&note);
        ow__sb_init(&list);
        size_t count = 0;
        for (size_t h = g; h < opt->ng; h++)
            if (!done[h] && s->fhp[h] && !strcmp(was, storage_name(&s->fhp[h][ks])) &&
                !strcmp(now, storage_name(&s->hp[h][ks]))) {
                done[h] = true;
                ow__sb_printf(&list, count++ ? ", %zu" : "%zu", h);
            }
        ow__sb_printf(&note,
                      "%s: state saved with state_dtype %s, converted to %s (param "
                      "group%s %s)",
                      path, was, now, count > 1 ? "s" : "", list.data ? list.data : "");
        if (strcmp(was, now))
            rc =
                note.failed || list.failed ? ow__nomem(err) : add_note(s, note.data, err);
        ow__sb_free(&note);
        ow__sb_free(&list);
    }
    ow_free(done);
    return rc;
}

/* Group g of the file: the optimizer's members, hyperparameters that pass the schema
 * and the optimizer's rules; into s->opts[g] and s->hp[g]. */
static int stage_group(const ow_optimizer *opt, const ow_cfg *grp, size_t g,
                       size_t *first, ow__optimizer_staged *s, const char *path,
                       ow_error *err)
{
    size_t count = 0;
    for (size_t i = 0; i < opt->nt; i++)
        count += opt->t[i].group == g;
    const ow_cfg *params = ow__cfg_map_get(grp, "params");
    bool same = grp->type == OW_CFG_MAP && ow_cfg_get_type(params) == OW_CFG_LIST &&
                params->v.c.n == count;
    for (size_t k = 0; same && k < count; k++) {
        const ow_cfg *x = params->v.c.items[k];
        same = x->type == OW_CFG_INT && x->v.i >= 0 && (uint64_t)x->v.i == *first + k;
    }
    if (!same)
        return ow__st_error(err, path,
                            "param group %zu does not match the optimizer's group %zu "
                            "(%zu parameters from index %zu)",
                            g, g, count, *first);
    *first += count;
    if (!(s->opts[g] = ow__cfg_dup(grp)) ||
        !(s->hp[g] = ow__calloc(opt->nkeys ? opt->nkeys : 1, sizeof(ow_hparam))))
        return ow__nomem(err);
    ow__cfg_map_remove(s->opts[g], "params");
    for (size_t j = 0; j < OW__ARRAY_LEN(storage_keys); j++) /* absent: float32 */
        if (ow__optimizer_key(opt, storage_keys[j]) >= 0 &&
            !ow__cfg_map_get(s->opts[g], storage_keys[j]) &&
            ow__cfg_map_set(s->opts[g], storage_keys[j],
                            j ? ow__cfg_new_bool(false) : ow__cfg_new_string("float32")))
            return ow__nomem(err);
    ow_error e2;
    ow_error_clear(&e2);
    for (size_t k = 0; k < opt->nkeys; k++) {
        const ow_cfg *v = ow__cfg_map_get(s->opts[g], opt->entry->keys[k].name);
        if (v && ow__schema_check_value(v, &opt->entry->keys[k], "param_groups", &e2))
            break;
    }
    if (!e2.code)
        ow__optimizer_resolve_group(opt, g, s->opts[g], s->hp[g], &e2);
    if (e2.code == OW_ERR_NOMEM ||
        (!e2.code && ow__lookahead_own_step(opt, s->opts[g], s->hp[g])))
        return ow__nomem(err);
    if (e2.code)
        return ow__st_error(err, path, "param group %zu: %s", g, e2.message);
    return keep_storage(opt, g, s, path, err);
}

static int stage_groups(const ow_optimizer *opt, const ow__st_file *f, const char *prefix,
                        ow__optimizer_staged *s, ow_error *err)
{
    const char *path = ow__st_file_get_name(f);
    ow_cfg *groups = NULL;
    int rc = meta_json(f, prefix, "param_groups", &groups, err);
    if (rc)
        return rc;
    if (groups->type != OW_CFG_LIST || groups->v.c.n != opt->ng)
        rc = ow__st_error(err, path, "it has %zu param groups, the optimizer %zu",
                          ow_cfg_get_size(groups), opt->ng);
    size_t first = 0;
    for (size_t g = 0; !rc && g < opt->ng; g++)
        rc = stage_group(opt, groups->v.c.items[g], g, &first, s, path, err);
    ow_cfg_free(groups);
    return rc;
}

/* "<i>.<key>" (after "state."): a parameter index written without leading zeros, so
 * that each slot has one name. */
static bool parse_index(const char *s, size_t *i, const char **key)
{
    size_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (SIZE_MAX - 9) / 10)
            return false;
        v = v * 10 + (size_t)(*p - '0');
    }
    if (*p != '.')
        return false;
    *i = v;
    *key = p + 1;
    return true;
}

/* One tensor "state.<i>.<key>" of the file into s. */
static int stage_tensor(const ow_optimizer *opt, const ow__st_tensor *st,
                        const char *rest, ow__optimizer_staged *s, const char *path,
                        ow_error *err)
{
    const char *name = st->name, *key;
    size_t i;
    if (strncmp(rest, "state.", 6))
        return ow__st_error(err, path, "unexpected tensor '%s'", name);
    if (!parse_index(rest + 6, &i, &key) || i >= opt->nt)
        return ow__st_error(err, path, "tensor '%s' names no parameter of the optimizer",
                            name);
    size_t k = 0;
    while (k < opt->nslots && strcmp(opt->ops->slots[k].name, key))
        k++;
    if (k == opt->nslots)
        return ow__st_error(err, path,
                            "'%s': %s keeps no state '%s' (a file of another optimizer?)",
                            name, opt->entry->name, key);
    const ow_slot *sl = &opt->ops->slots[k];
    const ow__tensor *t = &opt->t[i];
    const ow_hparam *lay = s->fhp[t->group] ? s->fhp[t->group] : s->hp[t->group];
    int64_t shape[OW_MAX_DIMS];
    int nd = ow__slot_shape_hp(opt, lay, t, k, shape);
    if (nd < 0)
        return ow__st_error(err, path,
                            "'%s': parameter '%s' has no state '%s' with these settings",
                            name, tensor_name(opt, i), key);
    ow_dtype dt =
        sl->flags & OW_SLOT_SCALAR ? sl->dtype : ow__slot_dtype_hp(opt, lay, k, t->numel);
    if (strcmp(st->dtype, dtype_names[dt]))
        return ow__st_error(err, path, "'%s': dtype %s, expected %s", name, st->dtype,
                            dtype_names[dt]);
    bool same = st->ndim == nd;
    for (int d = 0; d < nd && same; d++)
        same = st->shape[d] == shape[d];
    if (!same)
        return ow__st_error(
            err, path, "'%s': its shape differs from parameter '%s' (another model?)",
            name, tensor_name(opt, i));
    size_t at = i * opt->nslots + k;
    if (s->present[at])
        return ow__st_error(err, path, "'%s' appears twice", name);
    size_t ns = opt->nslots;
    if (!s->slot[i] && (!(s->slot[i] = ow__calloc(ns, sizeof **s->slot)) ||
                        !(s->slot_numel[i] = ow__calloc(ns, sizeof **s->slot_numel)) ||
                        !(s->scalar[i] = ow__calloc(ns, sizeof **s->scalar))))
        return ow__nomem(err);
    s->present[at] = true;
    if (sl->flags & OW_SLOT_SCALAR) {
        union {
            float f32;
            double f64;
            int64_t i64;
        } v;
        ow__st_copy_le(&v, st->data, 1, ow__dtype_size(dt));
        double x = dt == OW_DTYPE_F32   ? v.f32
                   : dt == OW_DTYPE_F64 ? v.f64
                                        : (double)v.i64;
        /* kernels turn counters into integers (random keys, cache slots) */
        if ((sl->flags & OW_SLOT_COUNT) &&
            !(x >= 0 && x <= (double)OW__COUNT_MAX && x == floor(x)))
            return ow__st_error(err, path,
                                "'%s' is %g, not a count (a whole number from 0 to 2^53)",
                                name, x);
        s->scalar[i][k] = x;
        return OW_OK;
    }
    if (!(s->slot[i][k] = ow__malloc(st->nbytes ? st->nbytes : 1)))
        return ow__nomem(err);
    ow__st_copy_le(s->slot[i][k], st->data, st->numel, ow__dtype_size(dt));
    s->slot_numel[i][k] = st->numel;
    return OW_OK;
}

/* Every parameter with state has all of the slots its settings give it. */
static int check_complete(const ow_optimizer *opt, ow__optimizer_staged *s,
                          const char *path, ow_error *err)
{
    for (size_t i = 0; i < opt->nt; i++) {
        if (!s->slot[i])
            continue;
        const ow__tensor *t = &opt->t[i];
        const ow_hparam *lay = s->fhp[t->group] ? s->fhp[t->group] : s->hp[t->group];
        for (size_t k = 0; k < opt->nslots; k++) {
            int64_t shape[OW_MAX_DIMS];
            if (ow__slot_shape_hp(opt, lay, t, k, shape) >= 0 &&
                !s->present[i * opt->nslots + k])
                return ow__st_error(err, path,
                                    "the state of parameter '%s' is incomplete",
                                    tensor_name(opt, i));
        }
    }
    return OW_OK;
}

int ow__optimizer_state_stage(const ow_optimizer *opt, const ow__st_file *f,
                              const char *prefix, ow__optimizer_staged **out,
                              ow_error *err)
{
    *out = NULL;
    if (!opt || !f)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow__optimizer_state_stage: NULL argument");
    if (!prefix)
        prefix = "";
    const char *path = ow__st_file_get_name(f);
    int rc = check_optimizer(opt, f, prefix, err);
    if (rc || (rc = check_params(opt, f, prefix, err)))
        return rc;
    unsigned long long seed = 0, draws = 0;
    if (opt->ops->needs & OW_NEEDS_RNG) {
        char key[160];
        snprintf(key, sizeof key, "%srng", prefix);
        const char *v = ow__st_file_find_meta(f, key);
        char *end = NULL;
        if (v) {
            seed = strtoull(v, &end, 10);
            draws = end && *end == ' ' ? strtoull(end + 1, &end, 10) : 0;
        }
        if (!v || !end || *end)
            return ow__st_error(err, path,
                                "metadata '%s' (the generator's seed and "
                                "draws) is missing or malformed",
                                key);
    }
    ow__optimizer_staged *s = ow__calloc(1, sizeof *s);
    if (!s)
        return ow__nomem(err);
    s->opt = opt;
    s->seed = seed;
    s->draws = draws;
    size_t nt = opt->nt ? opt->nt : 1, ng = opt->ng ? opt->ng : 1;
    s->opts = ow__calloc(ng, sizeof *s->opts);
    s->hp = ow__calloc(ng, sizeof *s->hp);
    s->fopts = ow__calloc(ng, sizeof *s->fopts);
    s->fhp = ow__calloc(ng, sizeof *s->fhp);
    s->slot = ow__calloc(nt, sizeof *s->slot);
    s->slot_numel = ow__calloc(nt, sizeof *s->slot_numel);
    s->scalar = ow__calloc(nt, sizeof *s->scalar);
    s->present = ow__calloc(nt * (opt->nslots ? opt->nslots : 1), sizeof *s->present);
    if (!s->opts || !s->hp || !s->fopts || !s->fhp || !s->slot || !s->slot_numel ||
        !s->scalar || !s->present)
        rc = ow__nomem(err);
    if (!rc)
        rc = stage_groups(opt, f, prefix, s, err);
    if (!rc && ow__optimizer_key(opt, "state_dtype") >= 0)
        rc = make_notes(opt, s, path, err);
    size_t plen = strlen(prefix);
    for (size_t j = 0, n = ow__st_file_get_count(f); !rc && j < n; j++) {
        const ow__st_tensor *st = ow__st_file_get_tensor(f, j);
        if (!strncmp(st->name, prefix, plen))
            rc = stage_tensor(opt, st, st->name + plen, s, path, err);
    }
    if (!rc)
        rc = check_complete(opt, s, path, err);
    for (size_t i = 0; !rc && i < opt->nt; i++) { /* into the optimizer's state_dtype */
        size_t g = opt->t[i].group;
        if (s->slot[i] && s->fhp[g])
            rc = ow__state_convert(opt, &opt->t[i], s->fhp[g], s->hp[g], s->slot[i],
                                   s->slot_numel[i], s->present + i * opt->nslots, path,
                                   err);
    }
    if (rc) {
        ow__optimizer_state_discard(s);
        return rc;
    }
    *out = s;
    return OW_OK;
}

void ow__optimizer_state_commit(ow_optimizer *opt, ow__optimizer_staged *s)
{
    if (!s)
        return;
    assert(opt == s->opt);
    for (size_t i = 0; i < opt->nt; i++) {
        ow__tensor *t = &opt->t[i];
        ow__tensor_free_state(opt, t); /* also makes the next step rebuild its lists */
        if (!s->slot[i])
            continue;
        t->slot = s->slot[i];
        t->slot_numel = s->slot_numel[i];
        t->scalar = s->scalar[i];
        t->has_state = true;
        s->slot[i] = NULL;
        s->slot_numel[i] = NULL;
        s->scalar[i] = NULL;
    }
    if (opt->ops->needs & OW_NEEDS_RNG) {
        opt->seed = s->seed;
        opt->draws = s->draws;
    }
    ow__optimizer_clear_notes(opt);
    opt->notes = s->notes;
    opt->nnotes = s->nnotes;
    s->notes = NULL;
    s->nnotes = 0;
    for (size_t g = 0; g < opt->ng; g++) {
        ow__group *grp = &opt->g[g];
        ow_cfg_free(grp->opts);
        ow_free(grp->hp);
        grp->opts = s->opts[g];
        grp->hp = s->hp[g];
        s->opts[g] = NULL;
        s->hp[g] = NULL;
        ow__group_sync(opt, g);
    }
    for (size_t i = 0; i < opt->nt; i++) { /* the dtypes the settings give (as staged) */
        ow__tensor *t = &opt->t[i];
        for (size_t k = 0; t->has_state && k < opt->nslots; k++)
            t->sdtype[k] =
                (unsigned char)ow__slot_dtype_hp(opt, opt->g[t->group].hp, k, t->numel);
        /* Lookahead: the slow weights exist once a sync has run */
        const ow_hparam *hp = opt->g[t->group].hp;
        t->la_valid =
            opt->la_step_key >= 0 && hp[opt->la_step_key].v[0] >= hp[opt->la_k_key].v[0];
    }
    ow__optimizer_state_discard(s);
}

int ow_optimizer_load(ow_optimizer *opt, const char *path, ow_error *err)
{
    ow__error_reset(err);
    if (!opt || !path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optimizer_load: NULL argument");
    ow__st_file *f = NULL;
    ow__optimizer_staged *s = NULL;
    int rc = ow__st_file_load(path, &f, err);
    if (rc)
        return rc;
    const char *fmt = ow__st_file_find_meta(f, "format");
    if (!fmt || strcmp(fmt, FORMAT))
        rc = ow__st_error(err, path, "not an optwrap optimizer state (format '%s')",
                          fmt ? fmt : "?");
    if (!rc)
        rc = ow__optimizer_state_stage(opt, f, "", &s, err);
    if (!rc)
        ow__optimizer_state_commit(opt, s);
    ow__st_file_free(f);
    return rc;
}

void ow__optimizer_clear_notes(ow_optimizer *opt)
{
    for (size_t k = 0; k < opt->nnotes; k++)
        ow_free(opt->notes[k]);
    ow_free(opt->notes);
    opt->notes = NULL;
    opt->nnotes = 0;
}

size_t ow_optimizer_get_num_notes(const ow_optimizer *opt)
{
    return opt ? opt->nnotes : 0;
}

const char *ow_optimizer_get_note(const ow_optimizer *opt, size_t i)
{
    return opt && i < opt->nnotes ? opt->notes[i] : NULL;
}
