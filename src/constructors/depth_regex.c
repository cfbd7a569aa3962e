/* depth_regex.c -- RegexLayerDepth: layer ids from an ordered list of PCRE2 rules in the
 * config, for any model without a built-in provider (a C framework's own backbone):
 *   layer_depth: {type: RegexLayerDepth, num_layers: 14,
 *                 rules: [['^backbone\.(cls_token|pos_embed|patch_embed)', 0],
 *                         ['^backbone\.layers\.(\d+)\.', '$1 + 1']]}
 * The first rule whose regex is found in the full name (Python's re.search) gives the
 * id: an int, or an integer expression of its captures ($1..$9, + - * // % and
 * parentheses). A name no rule matches gets `default` (num_layers - 1: lr scale 1). */
#include "ctor_internal.h"

#include <ctype.h>
#include <string.h>

#define LABEL "optim_wrapper.paramwise_cfg.layer_depth"

typedef struct rule {
    ow__regex re;
    const ow_cfg *node; /* the [regex, id] pair */
    const ow_cfg *id;   /* an int, or a string expression */
    size_t index;
} rule;

typedef struct regex_state {
    rule *rules;
    size_t n;
    int64_t num_layers, fallback;
} regex_state;

/* ---- id expressions: recursive descent over the text, evaluated on the captures ---- */

typedef struct expr {
    const char *text, *p;
    const rule *r;
    const char *subject; /* NULL while only checking the syntax */
    uint32_t n_groups;
    ow_error *err;
    int rc;
} expr;

static int64_t fail(expr *e, const char *what)
{
    if (!e->rc)
        e->rc =
            ow__error_at(e->err, OW_ERR_VALUE, e->r->id,
                         LABEL ".rules.%zu: layer id expression '%s': %s at offset %zu",
                         e->r->index, e->text, what, (size_t)(e->p - e->text));
    return 0;
}

static void skip_space(expr *e)
{
    while (*e->p == ' ' || *e->p == '\t')
        e->p++;
}

static int64_t parse_sum(expr *e);

static int64_t parse_atom(expr *e)
{
    skip_space(e);
    if (*e->p == '(') {
        e->p++;
        int64_t v = parse_sum(e);
        skip_space(e);
        if (*e->p != ')')
            return fail(e, "expected ')'");
        e->p++;
        return v;
    }
    if (*e->p == '-') {
        e->p++;
        int64_t x = parse_atom(e);
        return x == INT64_MIN ? fail(e, "integer overflow") : -x;
    }
    bool capture = *e->p == '$';
    if (capture)
        e->p++;
    if (!isdigit((unsigned char)*e->p))
        return fail(e, capture ? "expected a capture number after '$'"
                               : "expected a number, '$N' or '('");
    int64_t v = 0;
    while (isdigit((unsigned char)*e->p) && v < 100000000000LL)
        v = v * 10 + (*e->p++ - '0');
    if (!capture)
        return v;
    if (v < 1 || v > (int64_t)e->n_groups)
        return fail(e, "no such capture group in the rule's regex");
    if (!e->subject)
        return 1; /* checking only */
    const char *s;
    size_t len;
    int64_t x;
    if (!ow__regex_group(&e->r->re, e->subject, (uint32_t)v, &s, &len))
        return fail(e, "the capture did not take part in the match");
    if (!ow__parse_int(s, len, &x)) {
        if (!e->rc)
            e->rc =
                ow__error_at(e->err, OW_ERR_VALUE, e->r->id,
                             LABEL ".rules.%zu: capture $%lld of '%s' is '%.*s', not an "
                                   "integer",
                             e->r->index, (long long)v, e->subject, (int)len, s);
        return 0;
    }
    return x;
}

static int64_t parse_product(expr *e)
{
    int64_t v = parse_atom(e);
    for (;;) {
        skip_space(e);
        char op = *e->p;
        if (op != '*' && op != '/' && op != '%')
            return v;
        if (op == '/' && e->p[1] != '/')
            return fail(e, "'/' is not integer division: write '//'");
        e->p += op == '/' ? 2 : 1;
        int64_t w = parse_atom(e);
        if (op == '*') {
            if (__builtin_mul_overflow(v, w, &v))
                return fail(e, "integer overflow");
        } else if (w == 0) {
            return e->subject ? fail(e, "division by zero") : 0;
        } else {
            /* Python's floor division and modulo */
            int64_t q = v / w, r = v % w;
            if (r != 0 && ((r < 0) != (w < 0))) {
                q--;
                r += w;
            }
            v = op == '/' ? q : r;
        }
    }
}

static int64_t parse_sum(expr *e)
{
    int64_t v = parse_product(e);
    for (;;) {
        skip_space(e);
        char op = *e->p;
        if (op != '+' && op != '-')
            return v;
        e->p++;
        int64_t w = parse_product(e);
        if (op == '+' ? __builtin_add_overflow(v, w, &v)
                      : __builtin_sub_overflow(v, w, &v))
            return fail(e, "integer overflow");
    }
}

/* The id a rule gives (subject NULL: check the expression only). */
static int rule_id(const rule *r, const char *subject, int64_t *out, ow_error *err)
{
    if (r->id->type == OW_CFG_INT) {
        *out = r->id->v.i;
        return OW_OK;
    }
    expr e = {.text = r->id->v.s,
              .p = r->id->v.s,
              .r = r,
              .subject = subject,
              .n_groups = ow__regex_num_groups(&r->re),
              .err = err};
    int64_t v = parse_sum(&e);
    skip_space(&e);
    if (!e.rc && *e.p)
        fail(&e, "unexpected text");
    *out = v;
    return e.rc;
}

/* ---- the provider ------------------------------------------------------------------ */

static void regex_free(void *state)
{
    regex_state *s = state;
    for (size_t i = 0; s && i < s->n; i++)
        ow__regex_free(&s->rules[i].re);
    if (s)
        ow_free(s->rules);
    ow_free(s);
}

static int read_rule(const ow_cfg *node, size_t i, rule *r, ow_error *err)
{
    r->node = node;
    r->index = i;
    if (node->type != OW_CFG_LIST || node->v.c.n != 2 ||
        node->v.c.items[0]->type != OW_CFG_STRING)
        return ow__error_at(err, OW_ERR_TYPE, node,
                            LABEL ".rules.%zu: expected a pair [REGEX, LAYER_ID]", i);
    r->id = node->v.c.items[1];
    if (r->id->type != OW_CFG_INT && r->id->type != OW_CFG_STRING)
        return ow__error_at(err, OW_ERR_TYPE, r->id,
                            LABEL
                            ".rules.%zu: the layer id must be an int or an expression "
                            "of the captures such as '$1 + 1', got %s",
                            i, ow_cfg_type_name(r->id->type));
    char label[128];
    snprintf(label, sizeof label, LABEL ".rules.%zu", i);
    int rc = ow__regex_compile(&r->re, node->v.c.items[0]->v.s, node->v.c.items[0], label,
                               err);
    int64_t unused;
    if (!rc)
        rc = rule_id(r, NULL, &unused, err);
    return rc;
}

/* The rule matching name (NULL: none) and the id it gives. */
static int lookup(const regex_state *s, const char *name, const rule **hit, int64_t *id,
                  ow_error *err)
{
    *hit = NULL;
    *id = s->fallback;
    for (size_t i = 0; i < s->n; i++) {
        bool m;
        int rc = ow__regex_match(&s->rules[i].re, name, false, &m, err);
        if (rc)
            return rc;
        if (m) {
            *hit = &s->rules[i];
            return rule_id(&s->rules[i], name, id, err);
        }
    }
    return OW_OK;
}

/* Every parameter's id, checked once: in range, and every rule used. */
static int check_all(const ow_layer_depth_args *a, const regex_state *s, ow_error *err)
{
    size_t *used = ow__calloc(s->n ? s->n : 1, sizeof *used);
    if (!used)
        return ow__nomem(err);
    int rc = OW_OK;
    for (size_t i = 0; !rc && i < ow_model_get_num_params(a->model); i++) {
        ow_param_view pv;
        ow_model_get_param(a->model, i, &pv);
        const rule *r;
        int64_t id;
        if ((rc = lookup(s, pv.full_name, &r, &id, err)))
            break;
        if (r)
            used[r->index]++;
        if (r && (id < 0 || id >= s->num_layers))
            rc = ow__error_at(
                err, OW_ERR_RANGE, r->id,
                LABEL ".rules.%zu: layer id %lld for '%s' is out of range 0..%lld "
                      "(num_layers %lld)",
                r->index, (long long)id, pv.full_name, (long long)(s->num_layers - 1),
                (long long)s->num_layers);
    }
    for (size_t i = 0; !rc && i < s->n; i++)
        if (!used[i]) {
            char msg[OW_ERROR_TEXT_LEN];
            snprintf(msg, sizeof msg, LABEL ".rules.%zu: regex '%s' matches no parameter",
                     i, s->rules[i].node->v.c.items[0]->v.s);
            rc = ow_groups_add_warning(a->groups, s->rules[i].node, msg, err);
        }
    ow_free(used);
    return rc;
}

static int regex_prepare(const ow_layer_depth_args *a, void **out, ow_error *err)
{
    if (!a->cfg) /* never implied by a class name: only paramwise_cfg.layer_depth names it
                  */
        return ow__error_at(err, OW_ERR_MISSING_KEY, a->where,
                            LABEL ": RegexLayerDepth needs rules and num_layers");
    const ow_cfg *rules = ow__cfg_map_get(a->cfg, "rules");
    const ow_cfg *num = ow__cfg_map_get(a->cfg, "num_layers");
    const ow_cfg *def = ow__cfg_map_get(a->cfg, "default");
    regex_state *s = ow__calloc(1, sizeof *s);
    if (!s)
        return ow__nomem(err);
    s->num_layers = num->v.i;
    s->fallback = def && def->type == OW_CFG_INT ? def->v.i : s->num_layers - 1;
    int rc = OW_OK;
    if (s->fallback < 0 || s->fallback >= s->num_layers)
        rc = ow__error_at(err, OW_ERR_RANGE, def,
                          LABEL ".default: layer id %lld is out of range 0..%lld",
                          (long long)s->fallback, (long long)(s->num_layers - 1));
    if (!rc && rules->v.c.n && !(s->rules = ow__calloc(rules->v.c.n, sizeof *s->rules)))
        rc = ow__nomem(err);
    for (size_t i = 0; !rc && i < rules->v.c.n; i++) {
        rc = read_rule(rules->v.c.items[i], i, &s->rules[i], err);
        s->n = i + 1;
    }
    if (!rc)
        rc = check_all(a, s, err);
    if (rc) {
        regex_free(s);
        return rc;
    }
    *out = s;
    return OW_OK;
}

static int regex_get(const void *state, const char *name, int64_t *id, int64_t *n,
                     ow_error *err)
{
    const regex_state *s = state;
    const rule *r;
    *n = s->num_layers;
    return lookup(s, name, &r, id, err);
}

static const ow_key regex_keys[] = {
    {.name = "rules",
     .type = OW_T_LIST,
     .flags = OW_KEY_REQUIRED,
     .doc = "[[REGEX, LAYER_ID], ...]: the first regex found in a parameter's full name "
            "gives its layer id, an int or an expression of the captures ('$1 + 1')"},
    {.name = "num_layers",
     .type = OW_T_INT,
     .min = 1,
     .max = 1e9,
     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE,
     .doc = "the number of layer ids; scale = rate ** (num_layers - id - 1)"},
    {.name = "default",
     .type = OW_T_INT,
     .flags = OW_KEY_NULLABLE,
     .doc = "the layer id of a name no rule matches (default num_layers - 1: scale 1)"},
    {0},
};

static const ow_layer_depth_ops regex_ops = {.abi_version = OW_ABI_VERSION,
                                             .prepare = regex_prepare,
                                             .get = regex_get,
                                             .free = regex_free};

const ow_entry ow__layer_depth_regex = {
    .abi_version = OW_ABI_VERSION,
    .name = "RegexLayerDepth",
    .kind = OW_KIND_LAYER_DEPTH,
    .scope = "mmpretrain",
    .summary =
        "layer ids from an ordered list of PCRE2 rules in the config, for any model",
    .keys = regex_keys,
    .ops = &regex_ops,
};
