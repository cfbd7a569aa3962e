/* timm_layers.c -- timm's layer ids for layer decay: group_with_matcher(reverse=True)
 * over a model's group_matcher (anchored regexes; keys (ordinal, *captures, *suffix) as
 * float tuples, sorted, numbered, 99999 = MATCH_PREV_GROUP joining the previous id), or
 * auto_group_layers when the model has none.
 * https://github.com/huggingface/pytorch-image-models/blob/main/timm/models/_manipulate.py
 */
#include "ctor_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MATCH_PREV_GROUP 99999.0
#define LAYERS_PER_GROUP 12

typedef struct rule {
    ow__regex re;
    double ordinal;
    const ow_cfg *suffix; /* a list of numbers, or NULL */
    const ow_cfg *node;   /* the regex, for messages */
    const char *group;
} rule;

typedef struct keyed {
    double *k; /* [n] */
    size_t n;
    size_t param;
} keyed;

void ow__timm_layers_free(ow__timm_layers *tl)
{
    ow_free(tl->id);
    ow_free(tl->rule);
    ow_free(tl->rule_group);
    memset(tl, 0, sizeof *tl);
}

static int add_rule(rule **rules, size_t *n, size_t *cap, const char *label,
                    const char *group, size_t ordinal, const ow_cfg *regex,
                    const ow_cfg *suffix, ow_error *err)
{
    char where[300];
    snprintf(where, sizeof where, "%s.%s", label, group);
    if (regex->type != OW_CFG_STRING)
        return ow__error_at(err, OW_ERR_TYPE, regex,
                            "%s: expected a regex string, got %s", where,
                            ow_cfg_type_name(regex->type));
    if (suffix && suffix->type == OW_CFG_NULL)
        suffix = NULL;
    bool ok = !suffix || suffix->type == OW_CFG_LIST;
    for (size_t i = 0; ok && suffix && i < suffix->v.c.n; i++)
        ok = suffix->v.c.items[i]->type == OW_CFG_INT ||
             suffix->v.c.items[i]->type == OW_CFG_FLOAT;
    if (!ok)
        return ow__error_at(
            err, OW_ERR_TYPE, suffix,
            "%s: a suffix is null or a list of numbers ([99999] joins the "
            "previous group)",
            where);
    if (ow__grow((void **)rules, cap, *n + 1, sizeof **rules))
        return ow__nomem(err);
    rule *r = &(*rules)[*n];
    memset(r, 0, sizeof *r);
    int rc = ow__regex_compile(&r->re, regex->v.s, regex, where, err);
    if (rc)
        return rc;
    r->ordinal = (double)ordinal;
    r->suffix = suffix;
    r->node = regex;
    r->group = group;
    (*n)++;
    return OW_OK;
}

/* The dict matcher compiled into (regex, (ordinal,), suffix) rules, in order. */
static int compile_matcher(const ow_cfg *m, const char *label, rule **rules, size_t *n,
                           ow_error *err)
{
    size_t cap = 0;
    *rules = NULL;
    *n = 0;
    if (m->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, m, "%s: expected map, got %s", label,
                            ow_cfg_type_name(m->type));
    int rc = OW_OK;
    for (size_t g = 0; !rc && g < m->v.c.n; g++) {
        const char *group = m->v.c.keys[g];
        const ow_cfg *spec = m->v.c.items[g];
        if (spec->type == OW_CFG_NULL) /* counted in the ordinals, never matched */
            continue;
        if (spec->type != OW_CFG_LIST) {
            rc = add_rule(rules, n, &cap, label, group, g, spec, NULL, err);
            continue;
        }
        for (size_t j = 0; !rc && j < spec->v.c.n; j++) {
            const ow_cfg *pair = spec->v.c.items[j];
            if (pair->type != OW_CFG_LIST || pair->v.c.n != 2)
                rc = ow__error_at(err, OW_ERR_TYPE, pair,
                                  "%s.%s: expected a pair [REGEX, SUFFIX]", label, group);
            else
                rc = add_rule(rules, n, &cap, label, group, g, pair->v.c.items[0],
                              pair->v.c.items[1], err);
        }
    }
    return rc;
}

/* float(capture) as Python reads it: the whole text must be a number. */
static bool parse_float(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    *out = strtod(buf, &end);
    return *end == '\0';
}

/* The sort key of one name: (ordinal, *captures, *suffix) of the first rule that
 * matches at the start, else (inf,). */
static int key_of(rule *rules, size_t n_rules, const char *label, const char *name,
                  keyed *out, long *which, ow_error *err)
{
    *which = -1;
    for (size_t r = 0; r < n_rules; r++) {
        bool m;
        int rc = ow__regex_match(&rules[r].re, name, true, &m, err);
        if (rc)
            return rc;
        if (!m)
            continue;
        uint32_t ng = ow__regex_num_groups(&rules[r].re);
        size_t ns = rules[r].suffix ? rules[r].suffix->v.c.n : 0;
        if (!(out->k = ow__malloc((1 + ng + ns) * sizeof *out->k)))
            return ow__nomem(err);
        out->k[out->n++] = rules[r].ordinal;
        for (uint32_t i = 1; i <= ng; i++) {
            const char *s = NULL;
            size_t len = 0;
            double v;
            if (!ow__regex_group(&rules[r].re, name, i, &s, &len) ||
                !parse_float(s, len, &v))
                return ow__error_at(err, OW_ERR_VALUE, rules[r].node,
                                    "%s.%s: capture %u of '%s' is %s'%.*s', not a number "
                                    "(timm sorts layers by float(capture))",
                                    label, rules[r].group, i, name, s ? "" : "unset ",
                                    (int)len, s ? s : "");
            out->k[out->n++] = v;
        }
        for (size_t i = 0; i < ns; i++)
            out->k[out->n++] = ow__num_value(rules[r].suffix->v.c.items[i]);
        *which = (long)r;
        return OW_OK;
    }
    if (!(out->k = ow__malloc(sizeof *out->k)))
        return ow__nomem(err);
    out->k[out->n++] = INFINITY; /* un-matched layers (neck, head): the largest key */
    return OW_OK;
}

/* Python tuple order: element by element, a shorter prefix first. */
static int key_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    for (size_t i = 0; i < x->n && i < y->n; i++)
        if (x->k[i] != y->k[i])
            return x->k[i] < y->k[i] ? -1 : 1;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    return x->param < y->param ? -1 : x->param > y->param;
}

static bool same_key(const keyed *x, const keyed *y)
{
    return x->n == y->n && !memcmp(x->k, y->k, x->n * sizeof *x->k);
}

static int from_matcher(const ow_model *model, const ow_cfg *matcher, const char *label,
                        ow__timm_layers *tl, ow_error *err)
{
    size_t np = ow_model_get_num_params(model), n_keyed = 0;
    rule *rules = NULL;
    size_t n_rules = 0;
    keyed *keys = ow__calloc(np ? np : 1, sizeof *keys);
    int rc =
        keys ? compile_matcher(matcher, label, &rules, &n_rules, err) : ow__nomem(err);
    if (!rc && n_rules && !(tl->rule_group = ow__calloc(n_rules, sizeof *tl->rule_group)))
        rc = ow__nomem(err);
    for (size_t r = 0; !rc && r < n_rules; r++)
        tl->rule_group[r] = rules[r].group;
    tl->n_rules = n_rules;
    for (size_t i = 0; !rc && i < np; i++) {
        ow_param_view pv;
        ow_model_get_param(model, i, &pv);
        if (pv.is_shared)
            continue;
        keys[n_keyed].param = i;
        rc = key_of(rules, n_rules, label, pv.full_name, &keys[n_keyed], &tl->rule[i],
                    err);
        n_keyed++;
    }
    if (!rc) {
        qsort(keys, n_keyed, sizeof *keys, key_cmp);
        int64_t lid = -1;
        for (size_t i = 0; i < n_keyed; i++) {
            bool new_key = i == 0 || !same_key(&keys[i], &keys[i - 1]);
            if (new_key && (lid < 0 || keys[i].k[keys[i].n - 1] != MATCH_PREV_GROUP))
                lid++;
            tl->id[keys[i].param] = lid;
        }
        tl->num_layers = lid + 1;
    }
    for (size_t i = 0; keys && i < np; i++)
        ow_free(keys[i].k);
    ow_free(keys);
    for (size_t r = 0; r < n_rules; r++)
        ow__regex_free(&rules[r].re);
    ow_free(rules);
    return rc;
}

static bool in_head(const char *name, const ow_cfg *classifier)
{
    if (!classifier || classifier->type == OW_CFG_NULL)
        return true;
    if (classifier->type == OW_CFG_STRING)
        return !*classifier->v.s ||
               !strncmp(name, classifier->v.s, strlen(classifier->v.s));
    if (classifier->type != OW_CFG_LIST || classifier->v.c.n == 0)
        return true;
    for (size_t i = 0; i < classifier->v.c.n; i++) {
        const ow_cfg *p = classifier->v.c.items[i];
        if (p->type == OW_CFG_STRING && !strncmp(name, p->v.s, strlen(p->v.s)))
            return true;
    }
    return false;
}

/* auto_group_layers(model): trunk tensors in chunks of 12, the head on top. */
static void auto_group(const ow_model *model, const ow_cfg *classifier,
                       ow__timm_layers *tl)
{
    size_t np = ow_model_get_num_params(model), trunk = 0;
    for (size_t i = 0; i < np; i++) {
        ow_param_view pv;
        ow_model_get_param(model, i, &pv);
        if (!pv.is_shared && !in_head(pv.full_name, classifier))
            tl->id[i] = (int64_t)(trunk++ / LAYERS_PER_GROUP);
    }
    int64_t chunks = (int64_t)((trunk + LAYERS_PER_GROUP - 1) / LAYERS_PER_GROUP);
    for (size_t i = 0; i < np; i++) {
        ow_param_view pv;
        ow_model_get_param(model, i, &pv);
        if (!pv.is_shared && in_head(pv.full_name, classifier))
            tl->id[i] = chunks;
    }
    int64_t max = 0;
    for (size_t i = 0; i < np; i++)
        if (tl->id[i] > max)
            max = tl->id[i];
    tl->num_layers = max + 1;
}

int ow__timm_layers_build(const ow_model *model, const ow_cfg *matcher, const char *label,
                          const ow_cfg *classifier, ow__timm_layers *out, ow_error *err)
{
    memset(out, 0, sizeof *out);
    size_t np = ow_model_get_num_params(model);
    out->id = ow__malloc((np ? np : 1) * sizeof *out->id);
    out->rule = ow__malloc((np ? np : 1) * sizeof *out->rule);
    if (!out->id || !out->rule) {
        ow__timm_layers_free(out);
        return ow__nomem(err);
    }
    for (size_t i = 0; i < np; i++) {
        out->id[i] = -1;
        out->rule[i] = -1;
    }
    out->from_matcher = matcher != NULL;
    int rc = OW_OK;
    if (matcher)
        rc = from_matcher(model, matcher, label, out, err);
    else
        auto_group(model, classifier, out);
    if (rc)
        ow__timm_layers_free(out);
    return rc;
}
