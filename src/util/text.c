/* text.c -- small text helpers: Python-repr formatting of doubles (the golden files and
 * `optwrap groups --format json` print numbers that way), did-you-mean suggestions and
 * reading a whole file. */
#include "../internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void ow__format_double(double v, char *buf, size_t n)
{
    if (isnan(v)) {
        snprintf(buf, n, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, n, v < 0 ? "-inf" : "inf");
        return;
    }
    /* Shortest of %.1e .. %.17e that reads back to v: digits and exponent. */
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* tmp is [-]d[.ddd]e[+-]XX; split into sign, digit string and decimal exponent. */
    const char *p = tmp;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    char digits[24];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    digits[nd] = '\0';
    int exp10 = (int)strtol(p + 1, NULL, 10); /* exponent of the first digit */
    /* Python repr: scientific when exp < -4 or exp >= 16. */
    char out[48];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (exp10 < -4 || exp10 >= 16) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t i = 1; i < nd; i++)
                out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (exp10 < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = -1; i > exp10; i--)
            out[o++] = '0';
        for (size_t i = 0; i < nd; i++)
            out[o++] = digits[i];
        out[o] = '\0';
    } else {
        for (int i = 0; i <= exp10; i++)
            out[o++] = (size_t)i < nd ? digits[i] : '0';
        out[o++] = '.';
        if ((size_t)exp10 + 1 < nd)
            for (size_t i = (size_t)exp10 + 1; i < nd; i++)
                out[o++] = digits[i];
        else
            out[o++] = '0';
        out[o] = '\0';
    }
    snprintf(buf, n, "%s", out);
}

size_t ow__edit_distance(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return cap + 1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0], best = i;
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = diag + cost;
            if (up + 1 < v)
                v = up + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            row[j] = v;
            diag = up;
            if (v < best)
                best = v;
        }
        if (best > cap)
            return cap + 1;
    }
    return row[lb];
}

const char *ow__closest(const char *word, const char *const *candidates)
{
    /* A plausible typo: at most a third of the word's length wrong (at least 1, at most
     * 4), or a candidate that starts with the word or the word with it. */
    size_t len = strlen(word);
    size_t cap = len / 3;
    if (cap < 1)
        cap = 1;
    if (cap > 4)
        cap = 4;
    const char *best = NULL;
    size_t best_d = cap + 1;
    for (size_t i = 0; candidates && candidates[i]; i++) {
        size_t d = ow__edit_distance(word, candidates[i], cap);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best;
}

int ow__read_file(const char *path, char **out, size_t *len, ow_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ow__error(err, OW_ERR_IO, path, 0, 0, "cannot open: %s", strerror(errno));
    ow_strbuf sb;
    ow__sb_init(&sb);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ow__sb_putn(&sb, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        ow__sb_free(&sb);
        return ow__error(err, OW_ERR_IO, path, 0, 0, "read error");
    }
    size_t l = sb.len;
    char *d = ow__sb_take(&sb);
    if (!d)
        return ow__nomem(err);
    *out = d;
    if (len)
        *len = l;
    return OW_OK;
}
