/* state.c -- optimizer state files: safetensors (an 8-byte little-endian header length,
 * a JSON header, raw little-endian tensors) with torch's state keys as
 * "state.<param index>.<key>", and the param groups in the metadata, so a PyTorch user
 * can open them. Written to a temporary, fsync'd and renamed; read fully and checked
 * before anything in the optimizer changes. */
#include "optim_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FORMAT "optwrap-optimizer/1"

static const char *const dtype_names[] = {
    [OW_DTYPE_F32] = "F32", [OW_DTYPE_F64] = "F64", [OW_DTYPE_I64] = "I64"};
static const size_t dtype_sizes[] = {
    [OW_DTYPE_F32] = 4, [OW_DTYPE_F64] = 8, [OW_DTYPE_I64] = 8};

static bool little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Copies n values of size sz, reversing each one's bytes on big-endian hosts. */
static void copy_le(unsigned char *dst, const void *src, size_t n, size_t sz)
{
    memcpy(dst, src, n * sz);
    if (little_endian())
        return;
    for (size_t i = 0; i < n; i++)
        for (size_t a = 0, b = sz - 1; a < b; a++, b--) {
            unsigned char t = dst[i * sz + a];
            dst[i * sz + a] = dst[i * sz + b];
            dst[i * sz + b] = t;
        }
}

static void scalar_bytes(ow_dtype dt, double v, unsigned char *out)
{
    if (dt == OW_DTYPE_F32) {
        float f = (float)v;
        copy_le(out, &f, 1, 4);
    } else if (dt == OW_DTYPE_F64) {
        copy_le(out, &v, 1, 8);
    } else {
        int64_t i = (int64_t)v;
        copy_le(out, &i, 1, 8);
    }
}

static double scalar_value(ow_dtype dt, const unsigned char *in)
{
    unsigned char b[8];
    if (dt == OW_DTYPE_F32) {
        float f;
        copy_le(b, in, 1, 4);
        memcpy(&f, b, 4);
        return f;
    }
    copy_le(b, in, 1, 8);
    if (dt == OW_DTYPE_F64) {
        double d;
        memcpy(&d, b, 8);
        return d;
    }
    int64_t i;
    memcpy(&i, b, 8);
    return (double)i;
}

static const char *tensor_name(const ow_optimizer *opt, size_t i)
{
    ow_param_view pv;
    ow_model_get_param(opt->model, opt->t[i].param, &pv);
    return pv.full_name;
}

/* ---- save -------------------------------------------------------------------------- */

/* The bytes of slot s of tensor i (scalars: one value of the slot's dtype). */
static size_t slot_bytes(const ow_optimizer *opt, size_t i, size_t s)
{
    const ow_slot *sl = &opt->ops->slots[s];
    if (sl->flags & OW_SLOT_SCALAR)
        return dtype_sizes[sl->dtype];
    return opt->t[i].slot[s] ? opt->t[i].slot_numel[s] * 4 : 0;
}

static bool has_slot(const ow_optimizer *opt, size_t i, size_t s)
{
    int64_t shape[OW_MAX_DIMS];
    return opt->t[i].has_state && ow__slot_shape(opt, &opt->t[i], s, shape) >= 0;
}

static void header(const ow_optimizer *opt, ow_strbuf *sb)
{
    ow_strbuf meta;
    ow__sb_init(&meta);
    ow__sb_putc(&meta, '[');
    size_t index = 0;
    for (size_t gi = 0; gi < opt->ng; gi++) {
        const ow_cfg *o = opt->g[gi].opts;
        ow__sb_puts(&meta, gi ? ", {" : "{");
        for (size_t k = 0; k < o->v.c.n; k++) {
            ow__sb_json_string(&meta, o->v.c.keys[k]);
            ow__sb_puts(&meta, ": ");
            ow__cfg_write_json(&meta, o->v.c.items[k]);
            ow__sb_puts(&meta, ", ");
        }
        ow__sb_puts(&meta, "\"params\": [");
        for (size_t i = 0, first = 1; i < opt->nt; i++)
            if (opt->t[i].group == gi) {
                ow__sb_printf(&meta, first ? "%zu" : ", %zu", index++);
                first = 0;
            }
        ow__sb_puts(&meta, "]}");
    }
    ow__sb_putc(&meta, ']');
    ow_strbuf names;
    ow__sb_init(&names);
    ow__sb_putc(&names, '[');
    for (size_t i = 0; i < opt->nt; i++) {
        if (i)
            ow__sb_puts(&names, ", ");
        ow__sb_json_string(&names, tensor_name(opt, i));
    }
    ow__sb_putc(&names, ']');
    char optname[160];
    snprintf(optname, sizeof optname, "%s%s%s",
             opt->entry->scope ? opt->entry->scope : "", opt->entry->scope ? "." : "",
             opt->entry->name);
    ow__sb_puts(sb, "{\"__metadata__\": {\"format\": \"" FORMAT "\", \"optimizer\": ");
    ow__sb_json_string(sb, optname);
    ow__sb_puts(sb, ", \"param_names\": ");
    ow__sb_json_string(sb, names.data ? names.data : "");
    ow__sb_puts(sb, ", \"param_groups\": ");
    ow__sb_json_string(sb, meta.data ? meta.data : "");
    ow__sb_putc(sb, '}');
    if (names.failed || meta.failed)
        sb->failed = 1;
    ow__sb_free(&names);
    ow__sb_free(&meta);
    size_t off = 0;
    for (size_t i = 0; i < opt->nt; i++)
        for (size_t s = 0; s < opt->nslots; s++) {
            if (!has_slot(opt, i, s))
                continue;
            const ow_slot *sl = &opt->ops->slots[s];
            int64_t shape[OW_MAX_DIMS];
            int nd = ow__slot_shape(opt, &opt->t[i], s, shape);
            size_t nb = slot_bytes(opt, i, s);
            ow__sb_printf(sb, ", \"state.%zu.%s\": {\"dtype\": \"%s\", \"shape\": [", i,
                          sl->name,
                          dtype_names[sl->flags & OW_SLOT_SCALAR ? sl->dtype : 0]);
            for (int d = 0; d < nd; d++)
                ow__sb_printf(sb, d ? ", %lld" : "%lld", (long long)shape[d]);
            ow__sb_printf(sb, "], \"data_offsets\": [%zu, %zu]}", off, off + nb);
            off += nb;
        }
    ow__sb_putc(sb, '}');
    while (sb->len % 8 && !sb->failed) /* the data starts 8-aligned */
        ow__sb_putc(sb, ' ');
}

static int write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int ow_optimizer_save(const ow_optimizer *opt, const char *path, ow_error *err)
{
    if (!opt || !path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optimizer_save: NULL argument");
    ow_strbuf sb;
    ow__sb_init(&sb);
    header(opt, &sb);
    if (sb.failed) {
        ow__sb_free(&sb);
        return ow__nomem(err);
    }
    size_t plen = strlen(path);
    char *tmp = ow__malloc(plen + 16);
    unsigned char *chunk = ow__malloc(65536);
    int fd = -1, rc = OW_OK;
    if (tmp)
        tmp[0] = '\0'; /* nothing to remove yet */
    if (!tmp || !chunk) {
        rc = ow__nomem(err);
        goto done;
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) {
        tmp[0] = '\0';
        rc = ow__error(err, OW_ERR_IO, path, 0, 0, "cannot create a temporary file: %s",
                       strerror(errno));
        goto done;
    }
    unsigned char len8[8];
    uint64_t hl = sb.len;
    copy_le(len8, &hl, 1, 8);
    bool bad = write_all(fd, len8, 8) || write_all(fd, sb.data, sb.len);
    for (size_t i = 0; i < opt->nt && !bad; i++)
        for (size_t s = 0; s < opt->nslots && !bad; s++) {
            if (!has_slot(opt, i, s))
                continue;
            const ow_slot *sl = &opt->ops->slots[s];
            if (sl->flags & OW_SLOT_SCALAR) {
                scalar_bytes(sl->dtype, opt->t[i].scalar[s], chunk);
                bad = write_all(fd, chunk, dtype_sizes[sl->dtype]);
                continue;
            }
            const float *v = opt->t[i].slot[s];
            for (size_t off = 0, n = opt->t[i].slot_numel[s]; off < n && !bad;
                 off += 16384) {
                size_t m = n - off < 16384 ? n - off : 16384;
                copy_le(chunk, v + off, m, 4);
                bad = write_all(fd, chunk, m * 4);
            }
        }
    if (bad || fsync(fd) != 0) {
        rc = ow__error(err, OW_ERR_IO, path, 0, 0, "cannot write: %s", strerror(errno));
        goto done;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = ow__error(err, OW_ERR_IO, path, 0, 0, "cannot write: %s", strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        rc = ow__error(err, OW_ERR_IO, path, 0, 0, "cannot rename the temporary file: %s",
                       strerror(errno));
done:
    if (fd >= 0)
        close(fd);
    if (rc && tmp && tmp[0])
        unlink(tmp);
    ow_free(tmp);
    ow_free(chunk);
    ow__sb_free(&sb);
    return rc;
}

/* ---- load -------------------------------------------------------------------------- */

typedef struct loaded {
    float **slot;   /* [nt * nslots] */
    double *scalar; /* [nt * nslots] */
    bool *present;  /* [nt * nslots] */
    ow_cfg **opts;  /* [ng] */
    ow_hparam **hp; /* [ng] */
} loaded;

static void loaded_free(const ow_optimizer *opt, loaded *l)
{
    for (size_t i = 0; l->slot && i < opt->nt * opt->nslots; i++)
        ow_free(l->slot[i]);
    for (size_t g = 0; l->opts && l->hp && g < opt->ng; g++) {
        ow_cfg_free(l->opts[g]);
        ow_free(l->hp[g]);
    }
    if (l->opts && !l->hp)
        for (size_t g = 0; g < opt->ng; g++)
            ow_cfg_free(l->opts[g]);
    ow_free(l->slot);
    ow_free(l->scalar);
    ow_free(l->present);
    ow_free(l->opts);
    ow_free(l->hp);
}

static int bad(ow_error *err, const char *path, const char *fmt, ...) OW__PRINTF(3, 4);
static int bad(ow_error *err, const char *path, const char *fmt, ...)
{
    char msg[OW_ERROR_TEXT_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ow__error(err, OW_ERR_STATE, path, 0, 0, "state file: %s", msg);
}

/* A metadata value that holds JSON text, parsed into *parsed. */
static int meta_json(const ow_cfg *meta, const char *key, ow_cfg **parsed,
                     const char *path, ow_error *err)
{
    const ow_cfg *v = ow__cfg_map_get(meta, key);
    if (!v || v->type != OW_CFG_STRING)
        return bad(err, path, "metadata lacks '%s'", key);
    ow_error e2;
    ow_error_clear(&e2);
    if (ow__cfg_parse(v->v.s, strlen(v->v.s), path, parsed, &e2))
        return e2.code == OW_ERR_NOMEM
                   ? ow__nomem(err)
                   : bad(err, path, "metadata '%s' is not valid JSON", key);
    return OW_OK;
}

static int load_groups(ow_optimizer *opt, const ow_cfg *groups, loaded *l,
                       const char *path, ow_error *err)
{
    if (groups->type != OW_CFG_LIST || groups->v.c.n != opt->ng)
        return bad(err, path, "it has %zu param groups, the optimizer %zu",
                   ow_cfg_get_size(groups), opt->ng);
    for (size_t g = 0; g < opt->ng; g++) {
        const ow_cfg *grp = groups->v.c.items[g];
        size_t count = 0;
        for (size_t i = 0; i < opt->nt; i++)
            count += opt->t[i].group == g;
        if (grp->type != OW_CFG_MAP ||
            ow_cfg_get_size(ow__cfg_map_get(grp, "params")) != count)
            return bad(err, path,
                       "param group %zu does not match the size of the optimizer's "
                       "group (%zu parameters)",
                       g, count);
        if (!(l->opts[g] = ow__cfg_dup(grp)) ||
            !(l->hp[g] = ow__calloc(opt->nkeys ? opt->nkeys : 1, sizeof(ow_hparam))))
            return ow__nomem(err);
        ow__cfg_map_remove(l->opts[g], "params");
        for (size_t k = 0; k < opt->nkeys; k++) {
            const ow_cfg *v = ow__cfg_map_get(l->opts[g], opt->entry->keys[k].name);
            ow_error e2;
            ow_error_clear(&e2);
            if (v && ow__schema_check_value(v, &opt->entry->keys[k], "param_groups", &e2))
                return e2.code == OW_ERR_NOMEM
                           ? ow__nomem(err)
                           : bad(err, path, "param group %zu: %s", g, e2.message);
            if (v)
                ow__hparam_from_cfg(v, &l->hp[g][k]);
            else
                l->hp[g][k] = opt->defaults[k];
        }
    }
    return OW_OK;
}

static int parse_offsets(const ow_cfg *info, size_t *begin, size_t *end)
{
    const ow_cfg *o = ow__cfg_map_get(info, "data_offsets");
    int64_t b, e;
    if (ow_cfg_get_size(o) != 2 || ow_cfg_get_int(o->v.c.items[0], &b, NULL) ||
        ow_cfg_get_int(o->v.c.items[1], &e, NULL) || b < 0 || e < b)
        return -1;
    *begin = (size_t)b;
    *end = (size_t)e;
    return 0;
}

/* One tensor entry "state.<i>.<key>" of the header into l. */
static int load_tensor(ow_optimizer *opt, const char *name, const ow_cfg *info,
                       const unsigned char *data, size_t dlen, loaded *l,
                       const char *path, ow_error *err)
{
    char *end;
    if (strncmp(name, "state.", 6))
        return bad(err, path, "unexpected tensor '%s'", name);
    unsigned long i = strtoul(name + 6, &end, 10);
    if (end == name + 6 || *end != '.' || i >= opt->nt)
        return bad(err, path, "tensor '%s' names no parameter of the optimizer", name);
    const char *key = end + 1;
    size_t s = 0;
    while (s < opt->nslots && strcmp(opt->ops->slots[s].name, key))
        s++;
    if (s == opt->nslots)
        return bad(err, path,
                   "'%s': %s keeps no state '%s' (a file of another optimizer?)", name,
                   opt->entry->name, key);
    const ow_slot *sl = &opt->ops->slots[s];
    ow__tensor tmp = opt->t[i];
    ow__group saved = opt->g[tmp.group];
    ow_hparam *hp = l->hp[tmp.group];
    int64_t shape[OW_MAX_DIMS];
    opt->g[tmp.group].hp = hp; /* slot shapes under the loaded hyperparameters */
    int nd = ow__slot_shape(opt, &tmp, s, shape);
    opt->g[tmp.group] = saved;
    if (nd < 0)
        return bad(err, path,
                   "'%s': parameter '%s' has no state '%s' with these settings", name,
                   tensor_name(opt, i), key);
    ow_dtype dt = sl->flags & OW_SLOT_SCALAR ? sl->dtype : OW_DTYPE_F32;
    const ow_cfg *dtype = ow__cfg_map_get(info, "dtype"),
                 *shp = ow__cfg_map_get(info, "shape");
    if (!dtype || dtype->type != OW_CFG_STRING || strcmp(dtype->v.s, dtype_names[dt]))
        return bad(err, path, "'%s': dtype %s, expected %s", name,
                   dtype && dtype->type == OW_CFG_STRING ? dtype->v.s : "?",
                   dtype_names[dt]);
    bool same = ow_cfg_get_size(shp) == (size_t)nd && shp->type == OW_CFG_LIST;
    size_t n = 1;
    for (int d = 0; d < nd && same; d++) {
        int64_t x;
        same = !ow_cfg_get_int(shp->v.c.items[d], &x, NULL) && x == shape[d];
        n *= (size_t)shape[d];
    }
    if (!same)
        return bad(err, path,
                   "'%s': its shape differs from parameter '%s' (another model?)", name,
                   tensor_name(opt, i));
    size_t b, e;
    if (parse_offsets(info, &b, &e) || e > dlen || e - b != n * dtype_sizes[dt])
        return bad(err, path,
                   "'%s': data offsets out of range (truncated or corrupt file)", name);
    size_t at = i * opt->nslots + s;
    if (l->present[at])
        return bad(err, path, "'%s' appears twice", name);
    l->present[at] = true;
    if (sl->flags & OW_SLOT_SCALAR) {
        l->scalar[at] = scalar_value(dt, data + b);
        return OW_OK;
    }
    if (!(l->slot[at] = ow__malloc((n ? n : 1) * sizeof(float))))
        return ow__nomem(err);
    copy_le((unsigned char *)l->slot[at], data + b, n, 4);
    return OW_OK;
}

/* Every parameter with state has all of its slots; then the swap, which cannot fail. */
static int install(ow_optimizer *opt, loaded *l, const char *path, ow_error *err)
{
    for (size_t i = 0; i < opt->nt; i++) {
        size_t have = 0, want = 0;
        ow__tensor tmp = opt->t[i];
        ow__group saved = opt->g[tmp.group];
        opt->g[tmp.group].hp = l->hp[tmp.group];
        for (size_t s = 0; s < opt->nslots; s++) {
            int64_t shape[OW_MAX_DIMS];
            if (ow__slot_shape(opt, &tmp, s, shape) >= 0) {
                want++;
                have += l->present[i * opt->nslots + s];
            }
        }
        opt->g[tmp.group] = saved;
        if (have && have != want)
            return bad(err, path, "the state of parameter '%s' is incomplete",
                       tensor_name(opt, i));
    }
    /* allocate the per-tensor arrays first: nothing may fail after the first swap */
    size_t ns = opt->nslots ? opt->nslots : 1;
    float ***slots = ow__calloc(opt->nt ? opt->nt : 1, sizeof *slots);
    size_t **numels = ow__calloc(opt->nt ? opt->nt : 1, sizeof *numels);
    double **scalars = ow__calloc(opt->nt ? opt->nt : 1, sizeof *scalars);
    bool ok = slots && numels && scalars;
    for (size_t i = 0; i < opt->nt && ok; i++) {
        slots[i] = ow__calloc(ns, sizeof **slots);
        numels[i] = ow__calloc(ns, sizeof **numels);
        scalars[i] = ow__calloc(ns, sizeof **scalars);
        ok = slots[i] && numels[i] && scalars[i];
    }
    if (!ok) {
        for (size_t i = 0; slots && numels && scalars && i < opt->nt; i++) {
            ow_free(slots[i]);
            ow_free(numels[i]);
            ow_free(scalars[i]);
        }
        ow_free(slots);
        ow_free(numels);
        ow_free(scalars);
        return ow__nomem(err);
    }
    for (size_t i = 0; i < opt->nt; i++) {
        ow__tensor *t = &opt->t[i];
        ow__tensor_free_state(opt, t);
        bool any = false;
        for (size_t s = 0; s < opt->nslots; s++) {
            size_t at = i * opt->nslots + s;
            any |= l->present[at];
            slots[i][s] = l->slot[at];
            l->slot[at] = NULL;
            numels[i][s] = 0;
            if (slots[i][s]) {
                int64_t shape[OW_MAX_DIMS];
                ow__group saved = opt->g[t->group];
                opt->g[t->group].hp = l->hp[t->group];
                int nd = ow__slot_shape(opt, t, s, shape);
                opt->g[t->group] = saved;
                size_t n = 1;
                for (int d = 0; d < nd; d++)
                    n *= (size_t)shape[d];
                numels[i][s] = n;
            }
            scalars[i][s] = l->scalar[at];
        }
        if (any) {
            t->slot = slots[i];
            t->slot_numel = numels[i];
            t->scalar = scalars[i];
            t->has_state = true;
        } else {
            ow_free(slots[i]);
            ow_free(numels[i]);
            ow_free(scalars[i]);
        }
    }
    ow_free(slots);
    ow_free(numels);
    ow_free(scalars);
    for (size_t g = 0; g < opt->ng; g++) {
        ow_cfg_free(opt->g[g].opts);
        ow_free(opt->g[g].hp);
        opt->g[g].opts = l->opts[g];
        opt->g[g].hp = l->hp[g];
        l->opts[g] = NULL;
        l->hp[g] = NULL;
        const ow_cfg *sc = ow__cfg_map_get(opt->g[g].opts, "lr_scale");
        opt->g[g].lr_scale = !opt->apply_lr_scale             ? 1.0
                             : sc && sc->type == OW_CFG_FLOAT ? sc->v.d
                             : sc && sc->type == OW_CFG_INT   ? (double)sc->v.i
                                                              : 1.0;
    }
    return OW_OK;
}

int ow_optimizer_load(ow_optimizer *opt, const char *path, ow_error *err)
{
    if (!opt || !path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optimizer_load: NULL argument");
    char *buf = NULL;
    size_t len = 0;
    ow_cfg *head = NULL, *names = NULL, *groups = NULL;
    loaded l = {0};
    int rc = ow__read_file(path, &buf, &len, err);
    if (rc)
        return rc;
    uint64_t hl = 0;
    unsigned char le[8];
    if (len >= 8) {
        copy_le(le, buf, 1, 8);
        memcpy(&hl, le, 8);
    }
    if (len < 8 || hl > len - 8) {
        rc = bad(err, path, "truncated (%zu bytes, header of %llu)", len,
                 (unsigned long long)hl);
        goto done;
    }
    ow_error perr;
    ow_error_clear(&perr);
    if (ow__cfg_parse(buf + 8, (size_t)hl, path, &head, &perr) ||
        head->type != OW_CFG_MAP) {
        rc = perr.code == OW_ERR_NOMEM
                 ? ow__nomem(err)
                 : bad(err, path,
                       "the header is not valid JSON (not a safetensors file?)");
        goto done;
    }
    const ow_cfg *meta = ow__cfg_map_get(head, "__metadata__");
    const ow_cfg *fmt = ow__cfg_map_get(meta, "format");
    const ow_cfg *oname = ow__cfg_map_get(meta, "optimizer");
    if (!fmt || fmt->type != OW_CFG_STRING || strcmp(fmt->v.s, FORMAT) || !oname ||
        oname->type != OW_CFG_STRING) {
        rc = bad(err, path, "not an optwrap optimizer state (format '%s')",
                 fmt && fmt->type == OW_CFG_STRING ? fmt->v.s : "?");
        goto done;
    }
    char ours[160];
    snprintf(ours, sizeof ours, "%s%s%s", opt->entry->scope ? opt->entry->scope : "",
             opt->entry->scope ? "." : "", opt->entry->name);
    if (strcmp(oname->v.s, ours)) {
        rc = bad(err, path, "written by optimizer '%s', not '%s'", oname->v.s, ours);
        goto done;
    }
    if ((rc = meta_json(meta, "param_names", &names, path, err)) ||
        (rc = meta_json(meta, "param_groups", &groups, path, err)))
        goto done;
    const ow_cfg *nl = names, *gl = groups;
    if (nl->type != OW_CFG_LIST || nl->v.c.n != opt->nt) {
        rc = bad(err, path, "it holds %zu parameters, the optimizer %zu",
                 ow_cfg_get_size(nl), opt->nt);
        goto done;
    }
    for (size_t i = 0; i < opt->nt; i++) {
        const ow_cfg *n = nl->v.c.items[i];
        if (n->type != OW_CFG_STRING || strcmp(n->v.s, tensor_name(opt, i))) {
            rc = bad(err, path, "parameter %zu is '%s', the optimizer's is '%s'", i,
                     n->type == OW_CFG_STRING ? n->v.s : "?", tensor_name(opt, i));
            goto done;
        }
    }
    size_t cells = (opt->nt ? opt->nt : 1) * (opt->nslots ? opt->nslots : 1);
    l.slot = ow__calloc(cells, sizeof *l.slot);
    l.scalar = ow__calloc(cells, sizeof *l.scalar);
    l.present = ow__calloc(cells, sizeof *l.present);
    l.opts = ow__calloc(opt->ng ? opt->ng : 1, sizeof *l.opts);
    l.hp = ow__calloc(opt->ng ? opt->ng : 1, sizeof *l.hp);
    if (!l.slot || !l.scalar || !l.present || !l.opts || !l.hp) {
        rc = ow__nomem(err);
        goto done;
    }
    if ((rc = load_groups(opt, gl, &l, path, err)))
        goto done;
    const unsigned char *data = (const unsigned char *)buf + 8 + hl;
    size_t dlen = len - 8 - (size_t)hl, used = 0;
    for (size_t k = 0; k < head->v.c.n; k++) {
        if (!strcmp(head->v.c.keys[k], "__metadata__"))
            continue;
        if ((rc = load_tensor(opt, head->v.c.keys[k], head->v.c.items[k], data, dlen, &l,
                              path, err)))
            goto done;
        size_t b, e;
        parse_offsets(head->v.c.items[k], &b, &e);
        if (e > used)
            used = e;
    }
    if (used != dlen) {
        rc = bad(err, path,
                 "%zu bytes of data, the header describes %zu (truncated or corrupt "
                 "file)",
                 dlen, used);
        goto done;
    }
    rc = install(opt, &l, path, err);
done:
    loaded_free(opt, &l);
    ow_cfg_free(head);
    ow_cfg_free(names);
    ow_cfg_free(groups);
    ow_free(buf);
    return rc;
}
