/* text.c -- small text helpers: Python-repr formatting of doubles (the golden files and
 * `optwrap groups --format json` print numbers that way), did-you-mean suggestions and
 * reading a whole file within ow_limits. */
#include "../internal.h"
#include "shortest.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    char digits[18] = "0";
    int exp10 = 0;
    size_t nd = v == 0 ? 1 : (size_t)ow__shortest_digits(v, digits, &exp10);
    int neg = signbit(v) != 0;
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

/* ---- limits on input ---------------------------------------------------------- */

static const ow_limits default_limits = {
    .max_file_bytes = (size_t)256 << 20,
    .max_alias_nodes = 1000000,
    .max_depth = 1000,
};

ow_limits ow_limits_defaults(void)
{
    return default_limits;
}

ow_limits ow__limits_resolve(const ow_limits *limits)
{
    ow_limits l = limits ? *limits : default_limits;
    if (!l.max_file_bytes)
        l.max_file_bytes = default_limits.max_file_bytes;
    if (!l.max_alias_nodes)
        l.max_alias_nodes = default_limits.max_alias_nodes;
    if (!l.max_depth)
        l.max_depth = default_limits.max_depth;
    return l;
}

static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode)    ? "a folder"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a file";
}

int ow__read_file(const char *path, char **out, size_t *len, ow_error *err)
{
    return ow__read_file_limited(path, 0, out, len, err);
}

int ow__read_file_limited(const char *path, size_t max_bytes, char **out, size_t *len,
                          ow_error *err)
{
    *out = NULL;
    if (!max_bytes)
        max_bytes = default_limits.max_file_bytes;
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return ow__error(err, OW_ERR_IO, path, 0, 0, "cannot open: %s", strerror(errno));
    struct stat st;
    int rc = OW_OK;
    char *data = NULL;
    size_t size = 0;
    if (fstat(fd, &st) != 0) {
        rc = ow__error(err, OW_ERR_IO, path, 0, 0, "cannot stat: %s", strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = ow__error(err, OW_ERR_IO, path, 0, 0, "not a regular file (%s)",
                       file_kind(st.st_mode));
    } else if ((uintmax_t)st.st_size > max_bytes) {
        rc = ow__error(err, OW_ERR_IO, path, 0, 0,
                       "%jd bytes, over the limit of %zu bytes "
                       "(ow_limits.max_file_bytes)",
                       (intmax_t)st.st_size, max_bytes);
    } else if (!(data = ow__malloc((size_t)st.st_size + 1))) {
        rc = ow__nomem(err);
    } else {
        /* a file that grows while it is read is read up to its size at open */
        size_t want = (size_t)st.st_size;
        while (size < want) {
            ssize_t n = read(fd, data + size, want - size);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = ow__error(err, OW_ERR_IO, path, 0, 0, "read error: %s",
                               strerror(errno));
                break;
            }
            if (n == 0)
                break; /* it shrank */
            size += (size_t)n;
        }
    }
    close(fd);
    if (rc != OW_OK) {
        ow_free(data);
        return rc;
    }
    data[size] = '\0';
    *out = data;
    if (len)
        *len = size;
    return OW_OK;
}
