/* custom_keys.c -- paramwise_cfg.custom_keys as mmengine and mmpretrain read them (the
 * first key in longest-then-alphabetical order that is a substring of the name wins),
 * plus the opt-in "re:" (PCRE2 search) and "glob:" (fnmatch) keys, and the warnings
 * for keys that decide nothing or match more than their author likely meant. */
#include "ctor_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define CONTEXT "optim_wrapper.paramwise_cfg.custom_keys"

/* mmengine: sorted(sorted(keys), key=len, reverse=True) -- longest first, then
 * alphabetical. */
static int key_cmp(const void *a, const void *b)
{
    const ow__custom_key *x = a, *y = b;
    size_t lx = strlen(x->key), ly = strlen(y->key);
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return strcmp(x->key, y->key);
}

void ow__custom_keys_free(ow__custom_keys *ck)
{
    for (size_t i = 0; ck->k && i < ck->n; i++)
        ow__regex_free(&ck->k[i].re);
    ow_free(ck->k);
    ow_free(ck->tested);
    memset(ck, 0, sizeof *ck);
}

static int read_key(const char *key, const ow_cfg *v, ow__custom_key *out, ow_error *err)
{
    if (v->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, v, CONTEXT ".%s: expected map, got %s", key,
                            ow_cfg_type_name(v->type));
    static const char *const mults[] = {"lr_mult", "decay_mult"};
    for (size_t j = 0; j < OW__ARRAY_LEN(mults); j++) {
        const ow_cfg *m = ow__cfg_map_get(v, mults[j]);
        if (m && m->type != OW_CFG_INT && m->type != OW_CFG_FLOAT)
            return ow__error_at(err, OW_ERR_TYPE, m,
                                CONTEXT ".%s.%s: expected number, got %s", key, mults[j],
                                ow_cfg_type_name(m->type));
    }
    out->key = key;
    out->pattern = key;
    out->cfg = v;
    out->inside_word = -1;
    if (!strncmp(key, "re:", 3)) {
        out->kind = OW__MATCH_REGEX;
        out->pattern = key + 3;
        char label[300];
        snprintf(label, sizeof label, CONTEXT ".%s", key);
        return ow__regex_compile(&out->re, out->pattern, v, label, err);
    }
    if (!strncmp(key, "glob:", 5)) {
        out->kind = OW__MATCH_GLOB;
        out->pattern = key + 5;
    }
    return OW_OK;
}

int ow__custom_keys_read(const ow_cfg *pw, const ow_model *model, ow__custom_keys *out,
                         ow_error *err)
{
    memset(out, 0, sizeof *out);
    const ow_cfg *ck = ow__cfg_map_get(pw, "custom_keys");
    if (!ck || ck->type == OW_CFG_NULL)
        return OW_OK;
    if (ck->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, ck, CONTEXT ": expected map, got %s",
                            ow_cfg_type_name(ck->type));
    out->node = ck;
    if (ck->v.c.n == 0)
        return OW_OK;
    size_t np = ow_model_get_num_params(model);
    if (!(out->k = ow__calloc(ck->v.c.n, sizeof *out->k)) ||
        !(out->tested = ow__calloc(np ? np : 1, 1))) {
        ow__custom_keys_free(out);
        return ow__nomem(err);
    }
    for (size_t i = 0; i < ck->v.c.n; i++) {
        int rc = read_key(ck->v.c.keys[i], ck->v.c.items[i], &out->k[i], err);
        out->n = i + 1; /* so a failure frees what was compiled */
        if (rc) {
            ow__custom_keys_free(out);
            return rc;
        }
    }
    qsort(out->k, out->n, sizeof *out->k, key_cmp);
    return OW_OK;
}

int ow__custom_keys_check(const ow_cfg *pw, ow_error *err)
{
    const ow_cfg *ck = ow__cfg_map_get(pw, "custom_keys");
    if (!ck || ck->type != OW_CFG_MAP)
        return OW_OK; /* the schema row checks the type */
    for (size_t i = 0; i < ck->v.c.n; i++) {
        ow__custom_key k = {0};
        int rc = read_key(ck->v.c.keys[i], ck->v.c.items[i], &k, err);
        ow__regex_free(&k.re);
        if (rc)
            return rc;
    }
    return OW_OK;
}

static bool is_word(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static int key_matches(ow__custom_key *k, const char *dotted, const char *name,
                       size_t param, bool *hit, ow_error *err)
{
    switch (k->kind) {
    case OW__MATCH_REGEX: return ow__regex_match(&k->re, name, false, hit, err);
    case OW__MATCH_GLOB: *hit = ow__fnmatch(k->pattern, name); return OW_OK;
    case OW__MATCH_SUBSTRING: break;
    }
    const char *at = *k->key ? strstr(dotted, k->key) : dotted;
    *hit = at != NULL;
    /* "head" inside "decode_head", "layers.1" inside "layers.10": substring matching
     * reaching into a name component is a frequent surprise */
    if (at && k->inside_word < 0 && *k->key) {
        size_t len = strlen(k->key);
        bool starts_inside = at > dotted && is_word(at[-1]) && is_word(k->key[0]);
        bool ends_inside =
            isdigit((unsigned char)k->key[len - 1]) && isdigit((unsigned char)at[len]);
        if (starts_inside || ends_inside)
            k->inside_word = (long)param;
    }
    return OW_OK;
}

int ow__custom_keys_find(ow__custom_keys *ck, const char *dotted, const char *name,
                         size_t param, ow__custom_key **hit, ow_error *err)
{
    *hit = NULL;
    for (size_t i = 0; i < ck->n; i++) {
        bool m;
        int rc = key_matches(&ck->k[i], dotted, name, param, &m, err);
        if (rc)
            return rc;
        if (!m)
            continue;
        ck->k[i].hits++;
        if (!*hit) {
            *hit = &ck->k[i];
            ck->k[i].wins++;
        }
    }
    if (ck->tested && (dotted == name || !strcmp(dotted, name)))
        ck->tested[param] = 1;
    return OW_OK;
}

void ow__custom_key_describe(const ow__custom_key *k, char *buf, size_t n)
{
    static const char *const kinds[] = {"", " (regex)", " (glob)"};
    snprintf(buf, n, "custom key '%s'%s", k->key, kinds[k->kind]);
}

/* For the keys that decided no trainable parameter: whether they match any occurrence
 * at all, frozen ones included. One walk over the model for all of them. */
static int match_all_params(ow__custom_keys *ck, const ow_model *model, ow_error *err)
{
    size_t left = 0;
    for (size_t k = 0; k < ck->n; k++) {
        ck->k[k].matches_any = false;
        left += ck->k[k].hits == 0;
    }
    for (size_t i = 0; i < ow_model_get_num_params(model) && left; i++) {
        if (ck->tested[i]) /* the walk tried every key on this very name */
            continue;
        ow_param_view pv;
        ow_model_get_param(model, i, &pv);
        for (size_t k = 0; k < ck->n; k++) {
            ow__custom_key *key = &ck->k[k];
            if (key->hits || key->matches_any)
                continue;
            long saved = key->inside_word; /* only the walk's matches count there */
            int rc =
                key_matches(key, pv.full_name, pv.full_name, i, &key->matches_any, err);
            key->inside_word = saved;
            if (rc)
                return rc;
            left -= key->matches_any;
        }
    }
    return OW_OK;
}

int ow__custom_keys_warn(ow__custom_keys *ck, const ow_model *model, ow_groups *groups,
                         ow_error *err)
{
    int rc = match_all_params(ck, model, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < ck->n; i++) {
        ow__custom_key *k = &ck->k[i];
        char msg[OW_ERROR_TEXT_LEN];
        msg[0] = '\0';
        if (k->hits == 0) {
            snprintf(msg, sizeof msg, CONTEXT ": key '%s' matches %s", k->key,
                     k->matches_any ? "only frozen parameters (requires_grad false)"
                                    : "no parameter");
        } else if (k->wins == 0) {
            snprintf(msg, sizeof msg,
                     CONTEXT
                     ": key '%s' matches %zu parameter%s, but a longer key decides "
                     "each of them",
                     k->key, k->hits, k->hits == 1 ? "" : "s");
        } else if (k->inside_word >= 0) {
            ow_param_view pv;
            ow_model_get_param(model, (size_t)k->inside_word, &pv);
            snprintf(msg, sizeof msg,
                     CONTEXT
                     ": key '%s' also matches '%s' in the middle of a name (keys "
                     "are substrings); if that is not meant, write a longer key or "
                     "'re:' with anchors",
                     k->key, pv.full_name);
        }
        if (msg[0] && (rc = ow_groups_add_warning(groups, k->cfg, msg, err)))
            return rc;
    }
    return OW_OK;
}
