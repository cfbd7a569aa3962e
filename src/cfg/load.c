/* load.c -- a config file and its `_base_` chain (recursive, relative to each including
 * file, cycles detected), merged as mmengine's Config._file2dict does (SEMANTICS 2.2),
 * with `{{_base_.x}}` references resolved against the bases. */
#include "cfg_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 64

/* A file being loaded, for cycle detection and for messages. */
typedef struct frame {
    const char *path; /* as shown in positions */
    dev_t dev;
    ino_t ino;
    bool has_id; /* false for text in memory */
} frame;

typedef struct loader {
    ow_error *err;
    ow_limits limits;
    frame stack[MAX_DEPTH];
    size_t depth;
    bool trail_open;   /* " (included from ..." has been appended to err->message */
    bool keep_message; /* err held an error on entry: never touch its message */
} loader;

static int load_text(loader *ld, const char *text, size_t len, const char *file,
                     const char *abs_path, const char *base_dir, ow_cfg **out);

/* ---- paths --------------------------------------------------------------------- */

/* Lexical normalisation, as Python's os.path.normpath (which mmengine applies through
 * abspath): "a/./b/../c.yaml" is "a/c.yaml". */
static char *normalize(const char *path)
{
    size_t n = strlen(path);
    char *out = ow__malloc(n + 2);
    if (!out)
        return NULL;
    size_t o = 0;
    if (path[0] == '/')
        out[o++] = '/';
    size_t root = o; /* nothing before this is ever removed */
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - s);
        if (len == 1 && s[0] == '.')
            continue;
        if (len == 2 && s[0] == '.' && s[1] == '.') {
            size_t k = o;
            while (k > root && out[k - 1] != '/')
                k--;
            if (o > root && !(o - k == 2 && out[k] == '.' && out[k + 1] == '.')) {
                o = k > root ? k - 1 : root; /* drop the last name and its '/' */
                continue;
            }
            if (o == root && root == 1) /* "/.." is "/" */
                continue;
        }
        if (o > root)
            out[o++] = '/';
        memcpy(out + o, s, len);
        o += len;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
    return out;
}

/* dir/rel normalised; rel alone when it is absolute. */
static char *join(const char *dir, const char *rel)
{
    if (rel[0] == '/')
        return normalize(rel);
    ow_strbuf sb;
    ow__sb_init(&sb);
    ow__sb_printf(&sb, "%s/%s", dir, rel);
    char *joined = ow__sb_take(&sb);
    char *path = joined ? normalize(joined) : NULL;
    ow_free(joined);
    return path;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return ow__strdup(".");
    return ow__strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* The absolute path, for `{{ fileDirname }}` (mmengine uses osp.abspath). */
static char *absolute(const char *path)
{
    char cwd[4096];
    if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
        return normalize(path);
    return join(cwd, path);
}

typedef enum { EXT_OK, EXT_PYTHON, EXT_OTHER } ext_kind;

static ext_kind extension(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    if (dot && !strcmp(dot, ".py"))
        return EXT_PYTHON;
    if (dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".json")))
        return EXT_OK;
    return EXT_OTHER;
}

#define PYTHON_HINT "optwrap reads only YAML and JSON configs (.yaml, .yml, .json)"
#define EXT_HINT    "only .yaml, .yml and .json configs are supported"

/* ---- errors from a chain ------------------------------------------------------- */

/* Appends the include chain to an error raised inside a base, gcc style: "(included
 * from a.yaml:1:8, from top.yaml:1:8)". err is caller-owned, so this is safe. */
static void add_trail(loader *ld, const ow_cfg *entry)
{
    ow_error *err = ld->err;
    if (!err || ld->keep_message || err->code == OW_OK || err->code == OW_ERR_NOMEM)
        return;
    size_t len = strlen(err->message);
    snprintf(err->message + len, sizeof err->message - len, "%s%s:%d:%d",
             ld->trail_open ? ", from " : " (included from ", entry->file, entry->line,
             entry->column);
    ld->trail_open = true;
}

static void close_trail(loader *ld)
{
    if (!ld->trail_open)
        return;
    size_t len = strlen(ld->err->message);
    snprintf(ld->err->message + len, sizeof ld->err->message - len, ")");
    ld->trail_open = false;
}

/* ---- bases --------------------------------------------------------------------- */

static int cycle_error(loader *ld, const ow_cfg *entry, size_t from, const char *path)
{
    char chain[OW_ERROR_TEXT_LEN] = "";
    size_t len = 0;
    for (size_t k = from; k < ld->depth && len < sizeof chain; k++)
        len += (size_t)snprintf(chain + len, sizeof chain - len, "%s -> ",
                                ld->stack[k].path);
    if (len < sizeof chain)
        snprintf(chain + len, sizeof chain - len, "%s", path);
    return ow__error_at(ld->err, OW_ERR_INHERIT, entry, "inheritance cycle: %s", chain);
}

/* Loads the base named by the string node `entry` of a file in base_dir. */
static int load_base(loader *ld, const ow_cfg *entry, const char *base_dir, ow_cfg **out)
{
    *out = NULL;
    ow_error *err = ld->err;
    const char *rel = entry->v.s;
    if (strstr(rel, "::"))
        return ow__error_at(err, OW_ERR_UNSUPPORTED, entry,
                            "base config '%s' is a package config ('package::path'); "
                            "optwrap resolves only file paths",
                            rel);
    switch (extension(rel)) {
    case EXT_PYTHON:
        return ow__error_at(err, OW_ERR_UNSUPPORTED, entry,
                            "base config '%s' is a Python config: " PYTHON_HINT, rel);
    case EXT_OTHER:
        return ow__error_at(err, OW_ERR_UNSUPPORTED, entry, "base config '%s': " EXT_HINT,
                            rel);
    case EXT_OK: break;
    }
    char *path = join(base_dir, rel), *abs = NULL, *dir = NULL, *text = NULL;
    int rc;
    struct stat st;
    size_t len;
    ow_error read_err;
    ow_error_clear(&read_err);
    if (!path) {
        rc = ow__nomem(err);
    } else if (stat(path, &st) != 0) {
        rc = ow__error_at(err, OW_ERR_INHERIT, entry,
                          "base config '%s' %s (looked for '%s')", rel,
                          errno == ENOENT ? "does not exist" : strerror(errno), path);
    } else if (ld->depth == MAX_DEPTH) {
        rc = ow__error_at(err, OW_ERR_INHERIT, entry,
                          "base configs nested more than %d deep", MAX_DEPTH);
    } else {
        rc = OW_OK;
        for (size_t k = 0; k < ld->depth && rc == OW_OK; k++)
            if (ld->stack[k].has_id && ld->stack[k].dev == st.st_dev &&
                ld->stack[k].ino == st.st_ino)
                rc = cycle_error(ld, entry, k, path);
        /* an unreadable, special (FIFO, device) or oversized base is OW_ERR_IO */
        if (rc == OW_OK && (rc = ow__read_file_limited(path, ld->limits.max_file_bytes,
                                                       &text, &len, &read_err)) != OW_OK)
            rc = rc == OW_ERR_NOMEM
                     ? ow__nomem(err)
                     : ow__error_at(err, rc, entry, "cannot read base config '%s': %s",
                                    path, read_err.message);
        if (rc == OW_OK && (!(abs = absolute(path)) || !(dir = dir_of(path))))
            rc = ow__nomem(err);
        if (rc == OW_OK) {
            ld->stack[ld->depth++] =
                (frame){.path = path, .dev = st.st_dev, .ino = st.st_ino, .has_id = true};
            rc = load_text(ld, text, len, path, abs, dir, out);
            ld->depth--;
            if (rc != OW_OK)
                add_trail(ld, entry);
        }
    }
    ow_free(text);
    ow_free(dir);
    ow_free(abs);
    ow_free(path);
    return rc;
}

/* Loads one base and adds its keys to the union of the bases so far: mmengine allows
 * no key in two bases ("Duplicate key is not allowed among bases"). */
static int add_base(loader *ld, ow_cfg *bases, const ow_cfg *entry, const char *base_dir)
{
    ow_cfg *b = NULL;
    int rc = load_base(ld, entry, base_dir, &b);
    for (size_t i = 0; rc == OW_OK && i < b->v.c.n; i++) {
        const char *key = b->v.c.keys[i];
        const ow_cfg *first = ow__cfg_map_get(bases, key);
        if (first) {
            const char *f1 = first->file, *f2 = b->v.c.items[i]->file;
            rc = ow__error_at(
                ld->err, OW_ERR_INHERIT, entry,
                "duplicate key '%s' among bases '%s' and '%s' (mmengine does "
                "not allow a top-level key in two bases)",
                key, f1 ? f1 : "?", f2 ? f2 : "?");
        } else if (ow__cfg_map_set(bases, key, b->v.c.items[i]) != OW_OK) {
            rc = ow__nomem(ld->err);
        }
        if (!first)
            b->v.c.items[i] = NULL; /* moved (or freed by a failed map_set) */
    }
    ow_cfg_free(b);
    return rc;
}

static int load_bases(loader *ld, const ow_cfg *spec, const char *base_dir, ow_cfg *bases)
{
    if (spec->type == OW_CFG_STRING)
        return add_base(ld, bases, spec, base_dir);
    if (spec->type != OW_CFG_LIST)
        return ow__error_at(ld->err, OW_ERR_TYPE, spec,
                            "_base_: expected a string or a list of strings, got %s",
                            ow_cfg_type_name(spec->type));
    for (size_t i = 0; i < spec->v.c.n; i++) {
        const ow_cfg *entry = spec->v.c.items[i];
        if (entry->type != OW_CFG_STRING)
            return ow__error_at(ld->err, OW_ERR_TYPE, entry,
                                "_base_[%zu]: expected a string, got %s", i,
                                ow_cfg_type_name(entry->type));
        int rc = add_base(ld, bases, entry, base_dir);
        if (rc != OW_OK)
            return rc;
    }
    return OW_OK;
}

/* ---- {{_base_.x}} references ----------------------------------------------------- */

/* The value at a dotted path of the bases, or an error naming the closest key. */
static int lookup(const ow_cfg *bases, const ow_cfg *ref, const char *path, size_t len,
                  const ow_cfg **out, ow_error *err)
{
    const ow_cfg *cur = bases;
    size_t start = 0;
    while (cur && start <= len) {
        size_t end = start;
        while (end < len && path[end] != '.')
            end++;
        char key[256];
        if (end - start >= sizeof key || end == start) {
            cur = NULL;
            break;
        }
        memcpy(key, path + start, end - start);
        key[end - start] = '\0';
        const ow_cfg *next = NULL;
        if (cur->type == OW_CFG_MAP)
            next = ow__cfg_map_get(cur, key);
        else if (cur->type == OW_CFG_LIST && strspn(key, "0123456789") == end - start)
            next = ow_cfg_get_item(cur, strtoul(key, NULL, 10));
        if (!next && cur->type == OW_CFG_MAP && cur->v.c.n > 0) {
            /* did you mean: the closest key at the level that lacks this one */
            const char **keys = ow__malloc((cur->v.c.n + 1) * sizeof *keys);
            if (!keys)
                return ow__nomem(err);
            for (size_t i = 0; i < cur->v.c.n; i++)
                keys[i] = cur->v.c.keys[i];
            keys[cur->v.c.n] = NULL;
            const char *near = ow__closest(key, keys); /* one of cur's own keys */
            ow_free(keys);
            if (near)
                return ow__error_at(
                    err, OW_ERR_INHERIT, ref,
                    "'%s': the bases have no '%.*s' (did you mean '%.*s%s'?)", ref->v.s,
                    (int)len, path, (int)start, path, near);
        }
        cur = next;
        start = end + 1;
    }
    if (!cur)
        return ow__error_at(err, OW_ERR_INHERIT, ref, "'%s': the bases have no '%.*s'",
                            ref->v.s, (int)len, path);
    *out = cur;
    return OW_OK;
}

/* Replaces every `{{_base_.a.b}}` string under *slot by a copy of the bases' value,
 * which keeps the position where the base wrote it. */
static int resolve_refs(ow_cfg **slot, const ow_cfg *bases, ow_error *err)
{
    ow_cfg *node = *slot;
    if (node->type == OW_CFG_MAP || node->type == OW_CFG_LIST) {
        for (size_t i = 0; i < node->v.c.n; i++) {
            int rc = resolve_refs(&node->v.c.items[i], bases, err);
            if (rc != OW_OK)
                return rc;
        }
        return OW_OK;
    }
    const char *path;
    size_t len;
    if (node->type != OW_CFG_STRING || !ow__cfg_base_ref(node->v.s, &path, &len))
        return OW_OK;
    if (!bases)
        return ow__error_at(err, OW_ERR_INHERIT, node,
                            "'%s' refers to a base value, but this config has no _base_",
                            node->v.s);
    const ow_cfg *value;
    int rc = lookup(bases, node, path, len, &value, err);
    if (rc != OW_OK)
        return rc;
    ow_cfg *copy = ow__cfg_dup(value);
    if (!copy)
        return ow__nomem(err);
    ow_cfg_free(node);
    *slot = copy;
    return OW_OK;
}

/* ---- one file ------------------------------------------------------------------ */

/* mmengine drops `__*` keys (Python module internals) and pops `_deprecation_`. */
static void drop_private_keys(ow_cfg *root)
{
    for (size_t i = root->v.c.n; i-- > 0;) {
        const char *key = root->v.c.keys[i];
        if (!strncmp(key, "__", 2) || !strcmp(key, "_deprecation_"))
            ow__cfg_map_remove(root, key);
    }
}

static int load_text(loader *ld, const char *text, size_t len, const char *file,
                     const char *abs_path, const char *base_dir, ow_cfg **out)
{
    ow_error *err = ld->err;
    ow_cfg *root = NULL, *bases = NULL;
    int rc = ow__cfg_parse_templated(text, len, file, abs_path, &ld->limits, &root, err);
    if (rc != OW_OK)
        return rc;
    if (root->type != OW_CFG_MAP) {
        rc =
            ow__error_at(err, OW_ERR_TYPE, root, "a config must be a map of keys, got %s",
                         ow_cfg_type_name(root->type));
        goto fail;
    }
    const ow_cfg *spec = ow__cfg_map_get(root, "_base_");
    if (spec) {
        if (!(bases = ow__cfg_new(OW_CFG_MAP, root->file, root->line, root->column))) {
            rc = ow__nomem(err);
            goto fail;
        }
        if ((rc = load_bases(ld, spec, base_dir, bases)) != OW_OK)
            goto fail;
    }
    /* references see the bases only, before this file's own values are merged in */
    if ((rc = resolve_refs(&root, bases, err)) != OW_OK)
        goto fail;
    ow__cfg_map_remove(root, "_base_");
    if (bases) {
        ow_cfg *child = root;
        root = bases;
        bases = NULL;
        if ((rc = ow__cfg_merge(root, child, false, "base", err)) != OW_OK)
            goto fail;
    } else if ((rc = ow__cfg_strip_delete(root, err)) != OW_OK) {
        goto fail;
    }
    drop_private_keys(root);
    *out = root;
    return OW_OK;
fail:
    ow_cfg_free(root);
    ow_cfg_free(bases);
    return rc;
}

/* mmengine's Config reserves these attribute names. */
static int check_reserved(const ow_cfg *root, ow_error *err)
{
    static const char *const reserved[] = {"filename", "text", "pretty_text",
                                           "env_variables"};
    for (size_t i = 0; i < OW__ARRAY_LEN(reserved); i++) {
        const ow_cfg *v = ow__cfg_map_get(root, reserved[i]);
        if (v)
            return ow__error_at(err, OW_ERR_VALUE, v, "'%s' is reserved for config file",
                                reserved[i]);
    }
    return OW_OK;
}

/* The top of a chain: file (shown in positions), its identity when it is a file. */
static int load_top(const char *text, size_t len, const char *file, const char *abs_path,
                    const char *base_dir, const struct stat *st, const ow_limits *limits,
                    ow_cfg **out, ow_error *err)
{
    loader ld = {.err = err,
                 .limits = ow__limits_resolve(limits),
                 .keep_message = err && err->code != OW_OK};
    ld.stack[ld.depth++] = (frame){.path = file,
                                   .dev = st ? st->st_dev : 0,
                                   .ino = st ? st->st_ino : 0,
                                   .has_id = st != NULL};
    ow_cfg *cfg = NULL;
    int rc = load_text(&ld, text, len, file, abs_path, base_dir, &cfg);
    if (rc == OW_OK && (rc = check_reserved(cfg, err)) != OW_OK) {
        ow_cfg_free(cfg);
        cfg = NULL;
    }
    close_trail(&ld);
    *out = cfg;
    return rc;
}

int ow_cfg_load(const char *path, ow_cfg **out, ow_error *err)
{
    return ow_cfg_load_with_limits(path, NULL, out, err);
}

int ow_cfg_load_with_limits(const char *path, const ow_limits *limits, ow_cfg **out,
                            ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_cfg_load: out is NULL");
    *out = NULL;
    if (!path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "ow_cfg_load: path is NULL");
    switch (extension(path)) {
    case EXT_PYTHON:
        return ow__error(err, OW_ERR_UNSUPPORTED, path, 0, 0,
                         "Python configs are not supported: " PYTHON_HINT);
    case EXT_OTHER: return ow__error(err, OW_ERR_UNSUPPORTED, path, 0, 0, EXT_HINT);
    case EXT_OK: break;
    }
    char *text = NULL, *abs = NULL, *dir = NULL;
    size_t len;
    int rc = ow__read_file_limited(path, limits ? limits->max_file_bytes : 0, &text, &len,
                                   err);
    if (rc == OW_OK && (!(abs = absolute(path)) || !(dir = dir_of(path))))
        rc = ow__nomem(err);
    if (rc == OW_OK) {
        struct stat st;
        bool has_id = stat(path, &st) == 0;
        rc = load_top(text, len, path, abs, dir, has_id ? &st : NULL, limits, out, err);
    }
    ow_free(text);
    ow_free(abs);
    ow_free(dir);
    return rc;
}

int ow_cfg_load_string(const char *text, const char *name, ow_cfg **out, ow_error *err)
{
    return ow_cfg_load_string_with_limits(text, name, NULL, out, err);
}

int ow_cfg_load_string_with_limits(const char *text, const char *name,
                                   const ow_limits *limits, ow_cfg **out, ow_error *err)
{
    ow__error_reset(err);
    if (!out)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_cfg_load_string: out is NULL");
    *out = NULL;
    if (!text)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_cfg_load_string: text is NULL");
    const char *file = name ? name : "<string>";
    /* the text lives in the current directory: bases and {{ fileDirname }} say so */
    const char *slash = strrchr(file, '/');
    char *abs = absolute(slash ? slash + 1 : file);
    if (!abs)
        return ow__nomem(err);
    int rc = load_top(text, strlen(text), file, abs, ".", NULL, limits, out, err);
    ow_free(abs);
    return rc;
}
