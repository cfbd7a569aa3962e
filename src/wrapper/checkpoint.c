/* checkpoint.c -- one safetensors file (or buffer) with everything a resumed run
 * needs: the optimizer state, the wrapper's counters and loss scaler, the schedule's
 * state, the groups as built, the parameters' names and shapes (and optionally their
 * values), a hash of the config and a checksum of every tensor. */
#include "../dist/dist_internal.h"
#include "../model/model_internal.h"
#include "../optim/optim_internal.h"
#include "../util/safetensors.h"
#include "wrapper_internal.h"

#include <string.h>

/* FNV-1a over the compact JSON of the sections a checkpoint depends on. */
uint64_t ow__wrapper_config_hash(const ow_cfg *config)
{
    static const char *const sections[] = {"optim_wrapper", "param_scheduler", NULL};
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *const *s = sections; config && *s; s++) {
        char *json = NULL;
        const ow_cfg *node = ow__cfg_map_get(config, *s);
        if (node && ow_cfg_save_json(node, &json, NULL) == OW_OK)
            for (const char *c = json; *c; c++)
                h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
        ow_free(json);
        h = (h ^ 0xffu) * 0x100000001b3ull; /* section separator */
    }
    return config ? h : 0;
}

#define FORMAT "optwrap-checkpoint/1"

int ow__wrapper_groups_json(const ow_optim_wrapper *w, char **out, ow_error *err)
{
    ow_strbuf sb;
    ow__sb_init(&sb);
    ow__sb_putc(&sb, '[');
    for (size_t g = 0; g < ow_optimizer_get_num_groups(w->opt); g++) {
        if (g)
            ow__sb_puts(&sb, ", ");
        ow__cfg_write_json(&sb, ow_optimizer_get_options(w->opt, g));
    }
    ow__sb_putc(&sb, ']');
    if (sb.failed) {
        ow__sb_free(&sb);
        return ow__nomem(err);
    }
    *out = ow__sb_take(&sb);
    return OW_OK;
}

/* ---- save -------------------------------------------------------------------------- */

/* The model's next distinct tensor with data from occurrence *i on (then *i is past
 * it): what the params.* and grads.* entries hold. */
static bool next_tensor(const ow_optim_wrapper *w, size_t *i, ow_param_view *pv)
{
    for (; *i < ow_model_get_num_params(w->model); ++*i)
        if (ow_model_get_param(w->model, *i, pv) == OW_OK && !pv->is_shared && pv->data) {
            ++*i;
            return true;
        }
    return false;
}

/* The safetensors dtype and element size of the gradients of the occurrence before *i
 * (next_tensor's last): the host's half gradients are kept as they are. */
static const char *grad_dtype(const ow_optim_wrapper *w, size_t i, size_t *size)
{
    ow_grad_dtype dt = ow__model_grad_dtype(w->model, i - 1);
    *size = dt ? 2 : 4;
    return dt == OW_GRAD_BF16 ? "BF16" : dt == OW_GRAD_F16 ? "F16" : "F32";
}

/* Gradients have been added since the last step. */
static bool window_open(const ow_optim_wrapper *w)
{
    return w->inner % w->o.acc != 0 && w->inner != w->max_counts;
}

static int add_wrapper(const ow_optim_wrapper *w, const char *prefix, unsigned flags,
                       ow__st_builder *b, char **sched_text, ow_error *err)
{
    char key[512];
    snprintf(key, sizeof key, "%soptimizer.", prefix);
    int rc = ow__optimizer_state_add(w->opt, b, key, err);
    if (rc)
        return rc;
    ow_strbuf sb;
    ow__sb_init(&sb);
    ow__sb_printf(&sb,
                  "{\"type\": \"%s\", \"iteration\": %lld, \"epoch\": %lld, "
                  "\"max_iters\": %lld, "
                  "\"accumulative_counts\": %lld, \"loss_scale\": %.9g, "
                  "\"growth_tracker\": %lld, \"config_hash\": \"%016llx\"}",
                  w->o.deepspeed ? "DeepSpeedOptimWrapper"
                  : w->o.amp     ? "AmpOptimWrapper"
                                 : "OptimWrapper",
                  (long long)w->inner, (long long)w->epochs, (long long)w->max_counts,
                  (long long)w->o.acc, (double)w->scale, (long long)w->tracker,
                  (unsigned long long)w->config_hash);
    if (w->o.ds_scaler) { /* DeepSpeed's loss scaler: its last overflow, hysteresis */
        sb.len--;
        ow__sb_printf(&sb, ", \"ds_last_overflow\": %lld, \"ds_hysteresis\": %lld}",
                      (long long)w->ds_last_overflow, (long long)w->ds_hyst);
    }
    if (sb.failed) {
        ow__sb_free(&sb);
        return ow__nomem(err);
    }
    snprintf(key, sizeof key, "%swrapper", prefix);
    rc = ow__st_builder_set_meta(b, key, sb.data, err);
    ow__sb_free(&sb);
    snprintf(key, sizeof key, "%sgroups_built", prefix);
    if (rc == OW_OK)
        rc = ow__st_builder_set_meta(b, key, w->built, err);
    if (rc == OW_OK && w->sched &&
        (rc = ow_sched_save_state(w->sched, sched_text, err)) == OW_OK) {
        snprintf(key, sizeof key, "%sschedule", prefix);
        rc = ow__st_builder_set_meta(b, key, *sched_text, err);
    }
    if (flags & OW_CKPT_PARAMS)
        ow__half_gather(w); /* an open window's sums, from the host's half buffers */
    ow_param_view pv;
    for (size_t i = 0;
         rc == OW_OK && (flags & OW_CKPT_PARAMS) && next_tensor(w, &i, &pv);) {
        snprintf(key, sizeof key, "%sparams.%s", prefix, pv.full_name);
        rc = ow__st_builder_add(b, key, "F32", pv.ndim, pv.shape, pv.data,
                                (size_t)pv.numel * sizeof(float), err);
        /* mid-window, the sums so far are part of the run: keep them */
        snprintf(key, sizeof key, "%sgrads.%s", prefix, pv.full_name);
        /* data-parallel: every rank's sums, added on rank 0 */
        const float *sums = w->dist ? ow__dist_window_grad(w, pv.tensor) : pv.grad;
        size_t es;
        const char *dt = grad_dtype(w, i, &es);
        if (rc == OW_OK && w->dist && es == 2 && window_open(w))
            rc = ow__error(err, OW_ERR_UNSUPPORTED, NULL, 0, 0,
                           "ow_optim_wrapper_save: parameter '%s' has half gradients; "
                           "data-parallel runs sum float32 ones",
                           pv.full_name);
        if (rc == OW_OK && window_open(w) && pv.grad && sums)
            rc = ow__st_builder_add(b, key, dt, pv.ndim, pv.shape, sums,
                                    (size_t)pv.numel * es, err);
    }
    return rc;
}

/* The wrappers a checkpoint holds: the children of a dict ("name."), or w itself (""). */
static size_t members(const ow_optim_wrapper *w, size_t i, const ow_optim_wrapper **m,
                      char *prefix, size_t n)
{
    if (!w->nchildren) {
        *m = w;
        prefix[0] = '\0';
        return 1;
    }
    if (i < w->nchildren) {
        *m = w->children[i];
        snprintf(prefix, n, "%s.", w->names[i]);
    }
    return w->nchildren;
}

static int build(const ow_optim_wrapper *w, unsigned flags, ow__st_builder **out,
                 char **texts, ow_error *err)
{
    ow__st_builder *b = NULL;
    int rc = ow__st_builder_new(&b, err);
    if (rc == OW_OK)
        rc = ow__st_builder_set_meta(b, "format", FORMAT, err);
    char prefix[256];
    const ow_optim_wrapper *m = w;
    size_t n = members(w, 0, &m, prefix, sizeof prefix);
    for (size_t i = 0; rc == OW_OK && i < n; i++) {
        members(w, i, &m, prefix, sizeof prefix);
        rc = add_wrapper(m, prefix, flags, b, &texts[i], err);
    }
    if (rc) {
        ow__st_builder_free(b);
        return rc;
    }
    *out = b;
    return OW_OK;
}

static int save(const ow_optim_wrapper *w, unsigned flags, const char *path, void **buf,
                size_t *len, ow_error *err)
{
    if (!w || (!path && (!buf || !len)))
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_save: NULL argument");
    /* data-parallel: every rank calls it, rank 0 writes the state gathered from all */
    ow_optim_wrapper *dw = w->dist ? (ow_optim_wrapper *)w : NULL;
    int rc = OW_OK;
    if (dw && (flags & OW_CKPT_PARAMS) && window_open(w)) {
        ow__half_gather(w);                 /* the host's half sums, on every rank */
        rc = ow__dist_window_sums(dw, err); /* all ranks' sums so far, on rank 0 */
    }
    if (rc == OW_OK && dw)
        rc = ow__dist_state_gather(dw, err);
    if (rc) {
        if (dw)
            ow__dist_state_release(dw);
        return rc;
    }
    bool writer = !dw || dw->dist->d.rank == 0;
    if (!writer && !path) {
        *buf = NULL;
        *len = 0;
    }
    size_t n = w->nchildren ? w->nchildren : 1;
    char **texts = ow__calloc(n, sizeof *texts); /* the schedules' states, kept alive */
    ow__st_builder *b = NULL;
    if (!texts)
        rc = ow__nomem(err);
    else if (writer)
        rc = build(w, flags, &b, texts, err);
    if (rc == OW_OK && writer && dw) /* ZeRO: state tensors stream from their ranks */
        rc = ow__dist_state_fills(dw, b, "", err);
    if (rc == OW_OK && writer)
        rc = path ? ow__st_builder_save(b, path, err)
                  : ow__st_builder_save_buffer(b, buf, len, err);
    ow__st_builder_free(b);
    for (size_t i = 0; texts && i < n; i++)
        ow_free(texts[i]);
    ow_free(texts);
    if (dw) {
        ow__dist_state_serve(dw); /* the entries rank 0's write did not ask for */
        ow__dist_state_release(dw);
        rc = ow__dist_agree(dw->dist, rc, "to write the checkpoint", err);
    }
    return rc;
}

int ow_optim_wrapper_save(const ow_optim_wrapper *w, const char *path, unsigned flags,
                          ow_error *err)
{
    ow__error_reset(err);
    if (!path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_save: path is NULL");
    return save(w, flags, path, NULL, NULL, err);
}

int ow_optim_wrapper_save_buffer(const ow_optim_wrapper *w, unsigned flags, void **out,
                                 size_t *len, ow_error *err)
{
    ow__error_reset(err);
    return save(w, flags, NULL, out, len, err);
}

/* ---- load -------------------------------------------------------------------------- */

/* What one wrapper of the file holds, checked, before anything changes. */
typedef struct staged_member {
    ow__optimizer_staged *opt;
    int64_t iteration, tracker, epoch;
    int64_t ds_last_overflow, ds_hyst; /* DeepSpeed's loss scaler */
    double scale;
    const char *sched; /* borrowed from the file */
    char *undo;        /* the schedule's state before the load, to roll back */
    bool sched_loaded;
} staged_member;

/* A counter of the metadata (ow__cfg_count), or OW_ERR_STATE. */
static int meta_int(const ow_cfg *map, const char *key, int64_t *out)
{
    return ow__cfg_count(ow__cfg_map_get(map, key), out) ? OW_OK : OW_ERR_STATE;
}

/* The groups as built now against the file's record: the same keys and values. */
static int compare_built(const ow_optim_wrapper *w, const ow__st_file *f,
                         const char *prefix, ow_error *err)
{
    char key[512];
    snprintf(key, sizeof key, "%sgroups_built", prefix);
    const char *name = ow__st_file_get_name(f);
    ow_cfg *theirs = NULL, *ours = NULL;
    int rc = ow__st_file_meta_json(f, key, &theirs, err);
    if (rc == OW_OK && ow__cfg_parse(w->built, strlen(w->built), "<groups>", &ours, NULL))
        rc = ow__nomem(err);
    for (size_t g = 0; rc == OW_OK && g < ow_cfg_get_size(ours); g++) {
        const ow_cfg *a = ow_cfg_get_item(theirs, g), *b = ow_cfg_get_item(ours, g);
        for (int pass = 0; pass < 2 && rc == OW_OK; pass++) {
            const ow_cfg *x = pass ? a : b, *y = pass ? b : a;
            for (size_t k = 0; k < ow_cfg_get_size(x) && rc == OW_OK; k++) {
                const char *kn = ow_cfg_get_key(x, k);
                char *xs = NULL, *ys = NULL;
                const ow_cfg *yv = ow__cfg_map_get(y, kn);
                ow_cfg_save_json(ow_cfg_get_item(x, k), &xs, NULL);
                if (yv)
                    ow_cfg_save_json(yv, &ys, NULL);
                if (!xs || (yv && !ys))
                    rc = ow__nomem(err);
                else if (!ys || strcmp(xs, ys))
                    rc = ow__st_error(
                        err, name,
                        "param group %zu was built with %s = %s, the config now builds "
                        "%s = %s (another paramwise_cfg or optimizer setting; pass "
                        "OW_CKPT_FILE_HPARAMS to take the file's values, as torch's "
                        "load_state_dict does)",
                        g, kn, pass ? xs : (ys ? ys : "(absent)"), kn,
                        pass ? (ys ? ys : "(absent)") : xs);
                ow_free(xs);
                ow_free(ys);
            }
        }
    }
    if (rc == OW_OK && ow_cfg_get_size(theirs) != ow_cfg_get_size(ours))
        rc = ow__st_error(err, name, "it was built with %zu param groups, not %zu",
                          ow_cfg_get_size(theirs), ow_cfg_get_size(ours));
    ow_cfg_free(theirs);
    ow_cfg_free(ours);
    return rc;
}

/* Every distinct parameter of the model is in the file, with its shape. */
/* A params.* or grads.* tensor holds values of dtype (params: F32) of the parameter's
 * shape. */
static bool fits(const ow__st_tensor *t, const ow_param_view *pv, const char *dtype)
{
    bool same = !strcmp(t->dtype, dtype) && t->ndim == pv->ndim;
    for (int d = 0; same && d < pv->ndim; d++)
        same = t->shape[d] == pv->shape[d];
    return same;
}

static int check_params(const ow_optim_wrapper *w, const ow__st_file *f,
                        const char *prefix, ow_error *err)
{
    const char *name = ow__st_file_get_name(f);
    ow_param_view pv;
    for (size_t i = 0; next_tensor(w, &i, &pv);) {
        char key[512];
        snprintf(key, sizeof key, "%sparams.%s", prefix, pv.full_name);
        const ow__st_tensor *t = ow__st_file_find(f, key);
        if (!t)
            return ow__st_error(err, name,
                                "it holds no parameter '%s' (saved without "
                                "OW_CKPT_PARAMS, or from another model)",
                                pv.full_name);
        snprintf(key, sizeof key, "%sgrads.%s", prefix, pv.full_name);
        const ow__st_tensor *g = ow__st_file_find(f, key);
        size_t es;
        if (!fits(t, &pv, "F32") || (g && !fits(g, &pv, grad_dtype(w, i, &es))))
            return ow__st_error(err, name,
                                "parameter '%s': its shape or dtype differs from the "
                                "model's (another model?)",
                                pv.full_name);
    }
    return OW_OK;
}

static int stage(ow_optim_wrapper *w, const ow__st_file *f, const char *prefix,
                 unsigned flags, staged_member *s, ow_error *err)
{
    const char *name = ow__st_file_get_name(f);
    char key[512];
    snprintf(key, sizeof key, "%soptimizer.", prefix);
    int rc = ow__optimizer_state_stage(w->opt, f, key, &s->opt, err);
    ow_cfg *meta = NULL;
    snprintf(key, sizeof key, "%swrapper", prefix);
    if (rc == OW_OK)
        rc = ow__st_file_meta_json(f, key, &meta, err);
    const ow_cfg *type = ow__cfg_map_get(meta, "type"), *scale;
    const char *ours = w->o.deepspeed ? "DeepSpeedOptimWrapper"
                       : w->o.amp     ? "AmpOptimWrapper"
                                      : "OptimWrapper";
    if (rc == OW_OK && (!type || type->type != OW_CFG_STRING || strcmp(type->v.s, ours)))
        rc = ow__st_error(err, name, "written by %s, this wrapper is %s",
                          type && type->type == OW_CFG_STRING ? type->v.s : "?", ours);
    if (rc == OW_OK && (meta_int(meta, "iteration", &s->iteration) ||
                        meta_int(meta, "epoch", &s->epoch) ||
                        meta_int(meta, "growth_tracker", &s->tracker) ||
                        !(scale = ow__cfg_map_get(meta, "loss_scale")) ||
                        ow_cfg_get_double(scale, &s->scale, NULL) || s->iteration < 0))
        rc = ow__st_error(
            err, name,
            "metadata '%s' lacks the wrapper's counters (integers from -1 to 2^53)", key);
    /* the sums of an open window were divided by the file's accumulative_counts */
    int64_t acc = 0, max = 0;
    if (rc == OW_OK && !meta_int(meta, "accumulative_counts", &acc) && acc < 1)
        rc =
            ow__st_error(err, name, "metadata '%s': accumulative_counts %lld is not >= 1",
                         key, (long long)acc);
    if (rc == OW_OK && !meta_int(meta, "accumulative_counts", &acc) &&
        !meta_int(meta, "max_iters", &max) && acc != w->o.acc && s->iteration % acc &&
        s->iteration != max)
        rc = ow__st_error(
            err, name,
            "it was saved inside an accumulation window of "
            "accumulative_counts %lld, this wrapper accumulates %lld (resume "
            "with %lld, or from a checkpoint at a window's end)",
            (long long)acc, (long long)w->o.acc, (long long)acc);
    if (rc == OW_OK && w->o.ds_scaler &&
        (meta_int(meta, "ds_last_overflow", &s->ds_last_overflow) ||
         meta_int(meta, "ds_hysteresis", &s->ds_hyst)))
        rc = ow__st_error(err, name, "metadata '%s' lacks DeepSpeed's loss scaler", key);
    ow_cfg_free(meta);
    if (rc == OW_OK && !(flags & OW_CKPT_FILE_HPARAMS))
        rc = compare_built(w, f, prefix, err);
    snprintf(key, sizeof key, "%sschedule", prefix);
    if (rc == OW_OK && w->sched && !(s->sched = ow__st_file_find_meta(f, key)))
        rc = ow__st_error(err, name, "it holds no schedule state ('%s')", key);
    if (rc == OW_OK && (flags & OW_CKPT_PARAMS))
        rc = check_params(w, f, prefix, err);
    return rc;
}

static void install(ow_optim_wrapper *w, const ow__st_file *f, const char *prefix,
                    unsigned flags, staged_member *s)
{
    ow__optimizer_state_commit(w->opt, s->opt);
    s->opt = NULL;
    w->inner = s->iteration;
    w->epochs = s->epoch;
    w->scale = (float)s->scale;
    w->tracker = s->tracker;
    if (w->o.ds_scaler) {
        w->ds_last_overflow = s->ds_last_overflow;
        w->ds_hyst = s->ds_hyst;
    }
    ow_param_view pv;
    for (size_t i = 0; (flags & OW_CKPT_PARAMS) && next_tensor(w, &i, &pv);) {
        char key[512];
        snprintf(key, sizeof key, "%sparams.%s", prefix, pv.full_name);
        const ow__st_tensor *t = ow__st_file_find(f, key);
        ow__st_copy_le(pv.data, t->data, t->numel, 4);
        snprintf(key, sizeof key, "%sgrads.%s", prefix, pv.full_name);
        const ow__st_tensor *g = ow__st_file_find(f, key);
        size_t es;
        grad_dtype(w, i, &es);
        if (pv.grad && g && (!w->dist || w->dist->d.rank == 0)) /* checked before */
            ow__st_copy_le(pv.grad, g->data, g->numel, es);
        else if (pv.grad) /* at a window's end, or another rank continues the sums */
            memset(pv.grad, 0, (size_t)pv.numel * es);
    }
    if (flags & OW_CKPT_PARAMS) /* half hosts: their weights from the master copy */
        ow__half_scatter(w, true);
}

/* rc: the file's parse. Data-parallel, every rank reads the whole file and learns
 * whether all could stage it before any installs it. */
static int load(ow_optim_wrapper *w, const ow__st_file *f, unsigned flags, int rc,
                ow_error *err)
{
    const char *format = rc ? NULL : ow__st_file_find_meta(f, "format");
    if (rc == OW_OK && (!format || strcmp(format, FORMAT)))
        rc =
            ow__st_error(err, ow__st_file_get_name(f),
                         "not an optwrap checkpoint (format '%s', expected '" FORMAT "')",
                         format ? format : "?");
    size_t n = w->nchildren ? w->nchildren : 1;
    staged_member *s = rc ? NULL : ow__calloc(n, sizeof *s);
    if (rc == OW_OK && !s)
        rc = ow__nomem(err);
    char prefix[256];
    const ow_optim_wrapper *cm = w;
    for (size_t i = 0; s && i < n && rc == OW_OK; i++) {
        members(w, i, &cm, prefix, sizeof prefix);
        rc = stage((ow_optim_wrapper *)cm, f, prefix, flags, &s[i], err);
    }
    if (w->dist && rc == OW_OK)
        rc = ow__dist_state_reserve(w, err);
    if (w->dist)
        rc = ow__dist_agree(w->dist, rc, "to load the checkpoint", err);
    if (!s) {
        if (w->dist)
            ow__dist_state_unreserve(w);
        return rc;
    }
    /* schedules check and apply in one call: keep each one's state to roll back */
    for (size_t i = 0; i < n && rc == OW_OK; i++) {
        members(w, i, &cm, prefix, sizeof prefix);
        ow_sched *sched = cm->sched;
        if (!sched)
            continue;
        if ((rc = ow_sched_save_state(sched, &s[i].undo, err)) == OW_OK &&
            (rc = ow_sched_load_state(sched, s[i].sched, err)) == OW_OK)
            s[i].sched_loaded = true;
    }
    for (size_t i = 0; i < n; i++) {
        members(w, i, &cm, prefix, sizeof prefix);
        if (rc == OW_OK)
            install((ow_optim_wrapper *)cm, f, prefix, flags, &s[i]);
        else if (s[i].sched_loaded)
            ow_sched_load_state(cm->sched, s[i].undo, NULL); /* it fit before */
        ow__optimizer_state_discard(s[i].opt);
        ow_free(s[i].undo);
    }
    ow_free(s);
    if (w->dist && rc == OW_OK)
        ow__dist_state_scatter(w); /* each rank keeps its shard's slice */
    else if (w->dist)
        ow__dist_state_unreserve(w);
    return rc;
}

int ow_optim_wrapper_load(ow_optim_wrapper *w, const char *path, unsigned flags,
                          ow_error *err)
{
    ow__error_reset(err);
    if (!w || !path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_load: NULL argument");
    ow__st_file *f = NULL;
    int rc = ow__st_file_load(path, &f, err);
    if (rc == OW_OK || w->dist)
        rc = load(w, f, flags, rc, err);
    ow__st_file_free(f);
    return rc;
}

int ow_optim_wrapper_load_buffer(ow_optim_wrapper *w, const void *buf, size_t len,
                                 unsigned flags, ow_error *err)
{
    ow__error_reset(err);
    if (!w || !buf)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_load_buffer: NULL argument");
    ow__st_file *f = NULL;
    int rc = ow__st_file_parse(buf, len, "<buffer>", &f, err);
    if (rc == OW_OK || w->dist)
        rc = load(w, f, flags, rc, err);
    ow__st_file_free(f);
    return rc;
}
