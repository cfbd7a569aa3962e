/* plugin.c -- plugins: shared libraries whose ow_plugin_init registers entries, loaded
 * by ow_registry_load_plugin or by a config's `custom_imports` (mmengine's
 * import_modules_from_strings, with library paths instead of Python modules); and the
 * tests' reset of everything registered or loaded at run time. */
#include "registry_internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

/* Handles of the plugins whose init succeeded: loading one again is a no-op. They are
 * never closed, since their entries must stay valid until the process exits. */
static struct {
    void **items;
    size_t n, cap;
} loaded;
/* Serialises loads, so that one plugin's init runs once. An ow_plugin_init must not
 * load plugins itself. */
static pthread_mutex_t plugin_lock = PTHREAD_MUTEX_INITIALIZER;

static bool is_loaded(const void *handle)
{
    for (size_t i = 0; i < loaded.n; i++)
        if (loaded.items[i] == handle)
            return true;
    return false;
}

/* Runs the init of a freshly opened plugin; on failure the entries it added are
 * removed again, so a failed load leaves the registry as it was. */
static int run_init(void *handle, const char *path, ow_error *err)
{
    void *sym = dlsym(handle, "ow_plugin_init");
    if (!sym)
        return ow__error(err, OW_ERR_PLUGIN, NULL, 0, 0,
                         "plugin '%s' does not export ow_plugin_init", path);
    ow_plugin_init_fn init;
    /* POSIX lets a data pointer hold a function's address */
    memcpy(&init, &sym, sizeof init);
    ow_error inner;
    ow_error_clear(&inner);
    ow__registry_set_owner(handle);
    int rc = init(&inner);
    ow__registry_set_owner(NULL);
    if (rc == OW_OK)
        return OW_OK;
    ow__registry_drop_owner(handle);
    if (inner.code == OW_OK)
        return ow__error(err, OW_ERR_PLUGIN, NULL, 0, 0,
                         "plugin '%s': ow_plugin_init failed with %s", path,
                         ow_error_code_name(rc));
    return ow__error(err, inner.code, inner.file[0] ? inner.file : NULL, inner.line,
                     inner.column, "%s", inner.message);
}

int ow_registry_load_plugin(const char *path, ow_error *err)
{
    ow__error_reset(err);
    if (!path || !*path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_registry_load_plugin: path is NULL or empty");
    int rc = OW_OK;
    pthread_mutex_lock(&plugin_lock);
    /* dlopen returns the same handle for a library that is already open */
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        rc = ow__error(err, OW_ERR_PLUGIN, NULL, 0, 0, "cannot load plugin: %s",
                       dlerror());
    } else if (is_loaded(handle)) {
        dlclose(handle); /* drop the reference this dlopen added */
    } else if (ow__grow((void **)&loaded.items, &loaded.cap, loaded.n + 1,
                        sizeof *loaded.items) != OW_OK) {
        /* room first: nothing may fail once init has registered its entries */
        rc = ow__nomem(err);
        dlclose(handle);
    } else if ((rc = run_init(handle, path, err)) != OW_OK) {
        dlclose(handle);
    } else {
        loaded.items[loaded.n++] = handle;
    }
    pthread_mutex_unlock(&plugin_lock);
    return rc;
}

/* Here rather than in registry.c, which knows nothing of plugins. */
void ow__registry_reset(void)
{
    ow__registry_clear();
    pthread_mutex_lock(&plugin_lock);
    ow_free(loaded.items);
    loaded.items = NULL;
    loaded.n = loaded.cap = 0;
    pthread_mutex_unlock(&plugin_lock);
}

/* ---- custom_imports ---------------------------------------------------------------- */

static const char *const import_keys[] = {"imports", "allow_failed_imports", NULL};

/* path as written when absolute, else relative to the directory of the config file
 * the string came from (the current directory for in-memory text such as "<string>").
 * The result always holds a '/', so dlopen never searches the library path. */
static char *import_path(const ow_cfg *node)
{
    const char *path = node->v.s;
    if (path[0] == '/')
        return ow__strdup(path);
    const char *file = node->file;
    const char *slash = file && file[0] != '<' ? strrchr(file, '/') : NULL;
    ow_strbuf sb;
    ow__sb_init(&sb);
    if (!slash)
        ow__sb_puts(&sb, ".");
    else
        ow__sb_putn(&sb, file, slash == file ? 1 : (size_t)(slash - file));
    if (sb.len && sb.data[sb.len - 1] != '/')
        ow__sb_putc(&sb, '/');
    ow__sb_puts(&sb, path);
    return ow__sb_take(&sb);
}

static int import_one(const ow_cfg *node, bool allow_failed, ow_error *err)
{
    char *path = import_path(node);
    if (!path)
        return ow__nomem(err);
    ow_error inner;
    ow_error_clear(&inner);
    int rc = ow_registry_load_plugin(path, &inner);
    ow_free(path);
    if (rc == OW_OK || (allow_failed && rc != OW_ERR_NOMEM))
        return OW_OK; /* mmengine warns and goes on; a library does not print */
    return ow__error_at(err, inner.code, node, "%s", inner.message);
}

static int check_keys(const ow_cfg *ci, ow_error *err)
{
    for (size_t i = 0; i < ci->v.c.n; i++) {
        const char *key = ci->v.c.keys[i];
        bool known = false;
        for (const char *const *k = import_keys; *k && !known; k++)
            known = strcmp(*k, key) == 0;
        if (known)
            continue;
        const char *close = ow__closest(key, import_keys);
        if (close)
            return ow__error_at(err, OW_ERR_UNKNOWN_KEY, ci->v.c.items[i],
                                "custom_imports: unknown key '%s' (did you mean '%s'?)",
                                key, close);
        return ow__error_at(err, OW_ERR_UNKNOWN_KEY, ci->v.c.items[i],
                            "custom_imports: unknown key '%s' (expected 'imports' or "
                            "'allow_failed_imports')",
                            key);
    }
    return OW_OK;
}

int ow__registry_import(const ow_cfg *root, ow_error *err)
{
    const ow_cfg *ci = ow__cfg_map_get(root, "custom_imports");
    if (!ci || ci->type == OW_CFG_NULL)
        return OW_OK;
    if (ci->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, ci, "custom_imports: expected map, got %s",
                            ow_cfg_type_name(ci->type));
    int rc = check_keys(ci, err);
    if (rc != OW_OK)
        return rc;
    const ow_cfg *imports = ow__cfg_map_get(ci, "imports");
    if (!imports)
        return ow__error_at(err, OW_ERR_MISSING_KEY, ci,
                            "custom_imports: missing key 'imports'");
    bool allow_failed = false;
    const ow_cfg *allow = ow__cfg_map_get(ci, "allow_failed_imports");
    if (allow && (rc = ow_cfg_get_bool(allow, &allow_failed, err)) != OW_OK)
        return rc;
    /* mmengine takes one string or a list of them; check them all before loading any */
    if (imports->type == OW_CFG_STRING)
        return import_one(imports, allow_failed, err);
    if (imports->type != OW_CFG_LIST)
        return ow__error_at(err, OW_ERR_TYPE, imports,
                            "custom_imports.imports: expected string or list, got %s",
                            ow_cfg_type_name(imports->type));
    const char *s;
    for (size_t i = 0; i < imports->v.c.n; i++)
        if ((rc = ow_cfg_get_string(imports->v.c.items[i], &s, err)) != OW_OK)
            return rc;
    for (size_t i = 0; i < imports->v.c.n && rc == OW_OK; i++)
        rc = import_one(imports->v.c.items[i], allow_failed, err);
    return rc;
}

int ow__cfg_scope(const ow_cfg *config, const char **scope, ow_error *err)
{
    *scope = NULL;
    if (!config)
        return OW_OK; /* a wrapper around a host's optimizer has no config */
    if (config->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, config, "config: expected map, got %s",
                            ow_cfg_type_name(ow_cfg_get_type(config)));
    const ow_cfg *node = ow__cfg_map_get(config, "default_scope");
    if (node && node->type != OW_CFG_NULL && node->type != OW_CFG_STRING)
        return ow__error_at(err, OW_ERR_TYPE, node,
                            "default_scope: expected string or null, got %s",
                            ow_cfg_type_name(node->type));
    int rc = ow__registry_import(config, err);
    if (rc == OW_OK && node && node->type == OW_CFG_STRING)
        *scope = node->v.s;
    return rc;
}
