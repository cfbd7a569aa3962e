/* subst.c -- mmengine's `{{ ... }}` templates (SEMANTICS 2.2 steps 2-4): each is swapped
 * for a same-length placeholder before parsing, so unquoted ones parse and positions stay
 * right, then expanded in the parsed tree's strings and keys. */
#include "cfg_internal.h"

#include <stdlib.h>
#include <string.h>

typedef enum { T_VAR, T_ENV, T_BASE } template_kind;

typedef struct template
{
    template_kind kind;
    size_t len;               /* length of the template as written, "{{" to "}}" */
    char *text;               /* the template as written */
    char *value;              /* T_VAR, T_ENV: what it expands to */
    size_t name_at, name_len; /* T_ENV: the variable's name within text */
}
template;

/* Placeholders are the stem, the template's index in decimal, '_', then '_' padding up
 * to the template's length. The stem is chosen so that it occurs nowhere in the text,
 * hence every stem found in the parsed tree is one of ours. */
#define STEM_LEN 3

typedef struct scan {
    template *t;
    size_t n, cap;
    char stem[STEM_LEN + 1];
    const char *file, *abs_path;
} scan;

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

static void trim(const char **b, const char **e)
{
    while (*b < *e && is_space(**b))
        (*b)++;
    while (*e > *b && is_space((*e)[-1]))
        (*e)--;
}

static bool span_is(const char *b, const char *e, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(e - b) == n && memcmp(b, word, n) == 0;
}

/* `_base_.a.b` (after trimming): the dotted path, [\w.]+ as mmengine's regex. */
static bool base_path(const char *b, const char *e, const char **path, size_t *len)
{
    trim(&b, &e);
    if (e - b <= 7 || memcmp(b, "_base_.", 7) != 0)
        return false;
    for (const char *p = b + 7; p < e; p++)
        if (!is_word(*p) && *p != '.')
            return false;
    *path = b + 7;
    *len = (size_t)(e - b - 7);
    return true;
}

bool ow__cfg_base_ref(const char *s, const char **path, size_t *len)
{
    size_t n = strlen(s);
    if (n < 4 || strncmp(s, "{{", 2) != 0 || strcmp(s + n - 2, "}}") != 0)
        return false;
    return base_path(s + 2, s + n - 2, path, len);
}

/* The predefined variables of abs_path, as Python's os.path.dirname / basename /
 * splitext give them. */
static char *file_variable(const char *abs_path, const char *name)
{
    const char *slash = strrchr(abs_path, '/');
    const char *base = slash ? slash + 1 : abs_path;
    const char *dot = strrchr(base, '.');
    const char *first = base;
    while (*first == '.')
        first++;
    if (dot && dot <= first) /* ".bashrc" has no extension */
        dot = NULL;
    if (!strcmp(name, "fileDirname")) {
        if (!slash)
            return ow__strdup(".");
        return ow__strndup(abs_path, slash == abs_path ? 1 : (size_t)(slash - abs_path));
    }
    if (!strcmp(name, "fileBasename"))
        return ow__strdup(base);
    if (!strcmp(name, "fileBasenameNoExtension"))
        return ow__strndup(base, dot ? (size_t)(dot - base) : strlen(base));
    return ow__strdup(dot ? dot : "");
}

/* mmengine's `\{\{['"]?\s*\$(\w+)\s*:\s*(\S*?)\s*['"]?\}\}`, applied to the inside. */
static bool env_template(const char *b, const char *e, char **value,
                         const char **var_name, size_t *var_len)
{
    if (b < e && (*b == '\'' || *b == '"'))
        b++;
    while (b < e && is_space(*b))
        b++;
    if (b >= e || *b != '$')
        return false;
    const char *name = ++b;
    while (b < e && is_word(*b))
        b++;
    size_t name_len = (size_t)(b - name);
    while (b < e && is_space(*b))
        b++;
    if (name_len == 0 || b >= e || *b != ':')
        return false;
    b++;
    if (e > b && (e[-1] == '\'' || e[-1] == '"'))
        e--;
    trim(&b, &e);
    for (const char *p = b; p < e; p++)
        if (is_space(*p))
            return false;
    char var[256];
    if (name_len >= sizeof var)
        return false;
    memcpy(var, name, name_len);
    var[name_len] = '\0';
    const char *env = getenv(var);
    /* an unset variable without default is reported where the template is used */
    *value = env ? ow__strdup(env) : ow__strndup(b, (size_t)(e - b));
    *var_name = name;
    *var_len = name_len;
    return true;
}

static int add_template(scan *sc, template_kind kind, const char *at, size_t len,
                        char *value)
{
    template t = {.kind = kind, .len = len, .text = ow__strndup(at, len), .value = value};
    if (!t.text || (kind != T_BASE && !value) ||
        ow__grow((void **)&sc->t, &sc->cap, sc->n + 1, sizeof(template)) != OW_OK) {
        ow_free(t.text);
        ow_free(value);
        return OW_ERR_NOMEM;
    }
    sc->t[sc->n++] = t;
    return OW_OK;
}

/* Looks at the template `{{` b .. e `}}` starting at `at`; adds it when it is one. */
static int classify(scan *sc, const char *at, const char *b, const char *e, bool *found)
{
    static const char *const vars[] = {"fileDirname", "fileBasename",
                                       "fileBasenameNoExtension", "fileExtname"};
    size_t len = (size_t)(e + 2 - at);
    const char *tb = b, *te = e;
    trim(&tb, &te);
    *found = true;
    for (size_t i = 0; i < OW__ARRAY_LEN(vars); i++)
        if (span_is(tb, te, vars[i])) {
            char *v = file_variable(sc->abs_path, vars[i]);
            return v ? add_template(sc, T_VAR, at, len, v) : OW_ERR_NOMEM;
        }
    const char *path;
    size_t path_len;
    if (base_path(b, e, &path, &path_len))
        return add_template(sc, T_BASE, at, len, NULL);
    char *value = NULL;
    const char *name;
    size_t name_len;
    if (env_template(b, e, &value, &name, &name_len)) {
        int rc = value ? add_template(sc, T_ENV, at, len, value) : OW_ERR_NOMEM;
        if (rc == OW_OK) {
            sc->t[sc->n - 1].name_at = (size_t)(name - at);
            sc->t[sc->n - 1].name_len = name_len;
        }
        return rc;
    }
    *found = false;
    return OW_OK;
}

static const char *find(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return hay + i;
    return NULL;
}

/* Finds the templates of text and writes a copy with placeholders into *copy (NULL
 * when there is none). */
static int scan_text(scan *sc, const char *text, size_t len, char **copy, ow_error *err)
{
    *copy = NULL;
    const char *end = text + len;
    for (const char *p = text; p + 1 < end;) {
        if (p[0] != '{' || p[1] != '{') {
            p++;
            continue;
        }
        const char *q = p + 2;
        while (q + 1 < end && *q != '\n' && !(q[0] == '}' && q[1] == '}'))
            q++;
        bool found = false;
        if (q + 1 < end && *q != '\n' && classify(sc, p, p + 2, q, &found) != OW_OK)
            return ow__nomem(err);
        if (!found) {
            p += 2;
            continue;
        }
        if (!*copy && !(*copy = ow__strndup(text, len)))
            return ow__nomem(err);
        char ph[32];
        int n = snprintf(ph, sizeof ph, "%s%zu_", sc->stem, sc->n - 1);
        const template *t = &sc->t[sc->n - 1];
        if (n < 0 || (size_t)n > t->len) {
            const char *line = text;
            int lineno = 1;
            for (const char *c = text; c < p; c++)
                if (*c == '\n')
                    lineno++, line = c + 1;
            return ow__error(err, OW_ERR_UNSUPPORTED, sc->file, lineno,
                             (int)(p - line) + 1,
                             "too many '{{ }}' templates in one file");
        }
        char *dst = *copy + (p - text);
        memcpy(dst, ph, (size_t)n);
        memset(dst + n, '_', t->len - (size_t)n);
        p = q + 2;
    }
    return OW_OK;
}

/* Expands the placeholders in s into *out. *expanded: a variable was pasted in. */
static int expand(const scan *sc, const char *s, const ow_cfg *node, bool is_key,
                  char **out, bool *expanded, ow_error *err)
{
    ow_strbuf sb;
    ow__sb_init(&sb);
    *out = NULL;
    *expanded = false;
    const char *p = s;
    for (;;) {
        const char *hit = strstr(p, sc->stem);
        if (!hit) {
            ow__sb_puts(&sb, p);
            break;
        }
        ow__sb_putn(&sb, p, (size_t)(hit - p));
        const char *q = hit + STEM_LEN;
        size_t idx = 0, digits = 0;
        while (*q >= '0' && *q <= '9' && digits < 9)
            idx = idx * 10 + (size_t)(*q++ - '0'), digits++;
        const template *t = digits && idx < sc->n ? &sc->t[idx] : NULL;
        size_t pad = t ? strspn(q, "_") : 0;
        if (!t || (size_t)(q - hit) + pad < t->len) {
            /* not one of ours (a YAML escape can spell anything): keep it */
            ow__sb_putn(&sb, hit, STEM_LEN);
            p = hit + STEM_LEN;
            continue;
        }
        if (t->kind == T_BASE) {
            if (!is_key && (hit != s || hit[t->len] != '\0')) {
                ow__sb_free(&sb);
                return ow__error_at(
                    err, OW_ERR_VALUE, node,
                    "'%s' must be the whole value to refer to a base value", t->text);
            }
            ow__sb_puts(&sb, t->text);
        } else if (t->kind == T_ENV && !*t->value) {
            ow__sb_free(&sb);
            return ow__error_at(
                err, OW_ERR_VALUE, node,
                "environment variable '%.*s' is not set (or is empty) and "
                "'%s' gives no default",
                (int)t->name_len, t->text + t->name_at, t->text);
        } else {
            ow__sb_puts(&sb, t->value);
            *expanded = true;
        }
        p = hit + t->len;
    }
    if (!(*out = ow__sb_take(&sb)))
        return ow__nomem(err);
    return OW_OK;
}

static int expand_tree(const scan *sc, ow_cfg *node, ow_error *err)
{
    char *s = NULL;
    bool expanded;
    int rc;
    if (node->type == OW_CFG_STRING && strstr(node->v.s, sc->stem)) {
        if ((rc = expand(sc, node->v.s, node, false, &s, &expanded, err)) != OW_OK)
            return rc;
        ow_free(node->v.s);
        node->v.s = s;
        if (expanded && !node->quoted) {
            /* pasted into a plain scalar: typed as the resulting text would be */
            node->v.s = NULL;
            rc = ow__cfg_resolve_scalar(node, s, false);
            ow_free(s);
            if (rc != OW_OK)
                return ow__nomem(err);
        }
        return OW_OK;
    }
    if (node->type != OW_CFG_MAP && node->type != OW_CFG_LIST)
        return OW_OK;
    for (size_t i = 0; i < node->v.c.n; i++) {
        if (node->type == OW_CFG_MAP && strstr(node->v.c.keys[i], sc->stem)) {
            if ((rc = expand(sc, node->v.c.keys[i], node->v.c.items[i], true, &s,
                             &expanded, err)) != OW_OK)
                return rc;
            ow_free(node->v.c.keys[i]);
            node->v.c.keys[i] = s;
        }
        if ((rc = expand_tree(sc, node->v.c.items[i], err)) != OW_OK)
            return rc;
    }
    return OW_OK;
}

int ow__cfg_parse_templated(const char *text, size_t len, const char *file,
                            const char *abs_path, const ow_limits *limits, ow_cfg **out,
                            ow_error *err)
{
    *out = NULL;
    const ow__parse_opts opts = {.limits = limits};
    if (!find(text, len, "{{"))
        return ow__cfg_parse_with(text, len, file, &opts, out, err);
    scan sc = {.file = file ? file : "<string>", .abs_path = abs_path};
    for (char c = 'A'; c <= 'Z' && !sc.stem[0]; c++) {
        char stem[STEM_LEN + 1] = {'Q', 'w', c, '\0'};
        if (!find(text, len, stem))
            memcpy(sc.stem, stem, sizeof stem);
    }
    char *copy = NULL;
    ow_cfg *root = NULL;
    int rc;
    if (!sc.stem[0]) /* the text holds all of QwA..QwZ: leave its braces alone */
        rc = ow__cfg_parse_with(text, len, file, &opts, &root, err);
    else if ((rc = scan_text(&sc, text, len, &copy, err)) == OW_OK)
        rc = ow__cfg_parse_with(copy ? copy : text, len, file, &opts, &root, err);
    if (rc == OW_OK && copy)
        rc = expand_tree(&sc, root, err);
    for (size_t i = 0; i < sc.n; i++) {
        ow_free(sc.t[i].text);
        ow_free(sc.t[i].value);
    }
    ow_free(sc.t);
    ow_free(copy);
    if (rc != OW_OK) {
        ow_cfg_free(root);
        return rc;
    }
    *out = root;
    return OW_OK;
}
