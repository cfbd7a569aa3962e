/* patterns.c -- matching parameter names: Python's fnmatch (timm's no_weight_decay
 * patterns, "glob:" custom keys) and PCRE2 regexes (timm's group_matcher,
 * RegexLayerDepth, "re:" custom keys) whose memory comes from ow__malloc and whose
 * compile errors carry the config node's position, PCRE2's offset and PCRE2's own
 * message. */
#include "ctor_internal.h"

#include <string.h>

/* ---- fnmatch -------------------------------------------------------------------------
 * Python's fnmatch.translate turns the pattern into a regex; this walks the pattern
 * directly with the same meaning. https://docs.python.org/3/library/fnmatch.html */

/* Whether the set "[...]" starting at p (just after '[') matches c. Returns the set's
 * end (just after ']'), or NULL when there is no closing ']' (then '[' is literal). */
static const char *match_set(const char *p, char c, bool *hit)
{
    const char *q = p;
    bool negate = *q == '!';
    if (negate)
        q++;
    if (*q == ']') /* a ']' first in the set is a member */
        q++;
    while (*q && *q != ']')
        q++;
    if (!*q)
        return NULL;
    const char *end = q; /* the closing ']' */
    const char *s = p + (negate ? 1 : 0);
    bool in = false;
    while (s < end) {
        char lo = *s, hi = *s;
        if (s + 2 < end && s[1] == '-') {
            hi = s[2];
            s += 3;
        } else {
            s++;
        }
        /* a reversed range (z-a) matches nothing, as Python drops it */
        if (lo <= hi && c >= lo && c <= hi)
            in = true;
    }
    *hit = in != negate;
    return end + 1;
}

bool ow__fnmatch(const char *pattern, const char *name)
{
    const char *p = pattern, *n = name;
    const char *star_p = NULL, *star_n = NULL; /* the last '*' and where it resumes */
    while (*n) {
        bool hit = false;
        const char *next = NULL;
        if (*p == '*') {
            while (*p == '*')
                p++;
            star_p = p;
            star_n = n;
            continue;
        }
        if (*p == '?') {
            hit = true;
            next = p + 1;
        } else if (*p == '[' && (next = match_set(p + 1, *n, &hit))) {
            /* set handled */
        } else if (*p) {
            hit = *p == *n;
            next = p + 1;
        }
        if (hit) {
            p = next;
            n++;
        } else if (star_p) {
            p = star_p;
            n = ++star_n;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return !*p;
}

/* ---- PCRE2 ------------------------------------------------------------------------- */

static void *re_malloc(PCRE2_SIZE size, void *data)
{
    (void)data;
    return ow__malloc(size ? size : 1);
}

static void re_free(void *ptr, void *data)
{
    (void)data;
    ow_free(ptr);
}

int ow__regex_compile(ow__regex *re, const char *pattern, const ow_cfg *node,
                      const char *label, ow_error *err)
{
    memset(re, 0, sizeof *re);
    pcre2_general_context *gc = pcre2_general_context_create(re_malloc, re_free, NULL);
    pcre2_compile_context *cc = gc ? pcre2_compile_context_create(gc) : NULL;
    if (!cc) {
        pcre2_general_context_free(gc);
        return ow__nomem(err);
    }
    int code = 0;
    PCRE2_SIZE offset = 0;
    re->code =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &offset, cc);
    pcre2_compile_context_free(cc);
    pcre2_general_context_free(gc);
    if (!re->code) {
        if (code == PCRE2_ERROR_NOMEMORY || code == PCRE2_ERROR_HEAP_FAILED)
            return ow__nomem(err);
        PCRE2_UCHAR text[256];
        if (pcre2_get_error_message(code, text, sizeof text) < 0)
            snprintf((char *)text, sizeof text, "unknown error");
        return ow__error_at(err, OW_ERR_VALUE, node,
                            "%s: regex '%s' does not compile: error %d at offset %zu: %s",
                            label, pattern, code, (size_t)offset, (const char *)text);
    }
    if (!(re->md = pcre2_match_data_create_from_pattern(re->code, NULL))) {
        ow__regex_free(re);
        return ow__nomem(err);
    }
    return OW_OK;
}

int ow__regex_match(const ow__regex *re, const char *subject, bool anchored,
                    bool *matched, ow_error *err)
{
    int rc = pcre2_match(re->code, (PCRE2_SPTR)subject, strlen(subject), 0,
                         anchored ? PCRE2_ANCHORED : 0, re->md, NULL);
    *matched = rc >= 0;
    if (rc >= 0 || rc == PCRE2_ERROR_NOMATCH)
        return OW_OK;
    if (rc == PCRE2_ERROR_NOMEMORY || rc == PCRE2_ERROR_HEAPLIMIT)
        return ow__nomem(err);
    PCRE2_UCHAR text[256];
    if (pcre2_get_error_message(rc, text, sizeof text) < 0)
        snprintf((char *)text, sizeof text, "error %d", rc);
    return ow__error(err, OW_ERR_VALUE, NULL, 0, 0, "matching '%s': %s", subject,
                     (const char *)text);
}

uint32_t ow__regex_num_groups(const ow__regex *re)
{
    uint32_t n = 0;
    pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &n);
    return n;
}

bool ow__regex_group(const ow__regex *re, const char *subject, uint32_t i,
                     const char **start, size_t *len)
{
    if (i >= pcre2_get_ovector_count(re->md))
        return false;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
    if (ov[2 * i] == PCRE2_UNSET)
        return false;
    *start = subject + ov[2 * i];
    *len = ov[2 * i + 1] - ov[2 * i];
    return true;
}

void ow__regex_free(ow__regex *re)
{
    pcre2_match_data_free(re->md);
    pcre2_code_free(re->code);
    re->md = NULL;
    re->code = NULL;
}
