/* safetensors.c -- writes safetensors files (tensors streamed from the caller's memory,
 * a CRC-32 of each in the metadata, atomic replacement on disk) and reads them back
 * through one parser that checks every byte of a possibly hostile file first. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define META_KEY     "__metadata__"
#define CHECKSUM_KEY "checksums"
/* Deeper nesting than any safetensors header or our metadata needs; the YAML reader
 * recurses once per level. */
#define MAX_DEPTH 64
/* Bytes written (and checksummed) per call: large enough for full disk speed, small
 * enough to stay in cache between the checksum and the write. */
#define CHUNK ((size_t)1 << 20)

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    {"F32", 4}, {"F64", 8}, {"I64", 8},  {"U8", 1},      {"BF16", 2},
    {"F16", 2}, {"I32", 4}, {"U32", 4},  {"I16", 2},     {"U16", 2},
    {"I8", 1},  {"U64", 8}, {"BOOL", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1},
};

/* The table's copy of a dtype name (so that callers can compare with strcmp), or NULL. */
static const char *dtype_find(const char *dtype, size_t *size)
{
    for (size_t i = 0; dtype && i < OW__ARRAY_LEN(dtypes); i++)
        if (!strcmp(dtypes[i].name, dtype)) {
            *size = dtypes[i].size;
            return dtypes[i].name;
        }
    return NULL;
}

size_t ow__st_dtype_size(const char *dtype)
{
    size_t size = 0;
    return dtype_find(dtype, &size) ? size : 0;
}

static bool little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

void ow__st_copy_le(void *dst, const void *src, size_t n, size_t elem_size)
{
    unsigned char *d = dst;
    if (n)
        memcpy(d, src, n * elem_size);
    if (little_endian() || elem_size < 2)
        return;
    for (size_t i = 0; i < n; i++)
        for (size_t a = 0, b = elem_size - 1; a < b; a++, b--) {
            unsigned char t = d[i * elem_size + a];
            d[i * elem_size + a] = d[i * elem_size + b];
            d[i * elem_size + b] = t;
        }
}

int ow__st_error(ow_error *err, const char *file, const char *fmt, ...)
{
    char msg[OW_ERROR_TEXT_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ow__error(err, OW_ERR_STATE, file, 0, 0, "state file: %s", msg);
}

/* zlib's crc32 counts in uInt: feed it at most 1 GiB at a time. */
static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n)
{
    while (n) {
        uInt m = n > ((size_t)1 << 30) ? (uInt)1 << 30 : (uInt)n;
        crc = (uint32_t)crc32(crc, p, m);
        p += m;
        n -= m;
    }
    return crc;
}

/* ---- the builder ------------------------------------------------------------------- */

typedef struct st_entry {
    char *name;
    const char *dtype; /* the table's name */
    size_t elem_size;
    int ndim;
    int64_t *shape; /* [ndim] owned */
    const void *data;
    void *copy; /* owned copy of data (add_copy), else NULL */
    size_t nbytes;
    ow__st_fill_fn fill; /* the bytes come from fill(fill_ctx, ...) when not NULL */
    void *fill_ctx;
} st_entry;

typedef struct st_meta {
    char *key, *value;
} st_meta;

struct ow__st_builder {
    st_entry *t;
    size_t nt, tcap;
    st_meta *m;
    size_t nm, mcap;
};

int ow__st_builder_new(ow__st_builder **out, ow_error *err)
{
    *out = ow__calloc(1, sizeof **out);
    return *out ? OW_OK : ow__nomem(err);
}

void ow__st_builder_free(ow__st_builder *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->nt; i++) {
        ow_free(b->t[i].name);
        ow_free(b->t[i].shape);
        ow_free(b->t[i].copy);
    }
    for (size_t i = 0; i < b->nm; i++) {
        ow_free(b->m[i].key);
        ow_free(b->m[i].value);
    }
    ow_free(b->t);
    ow_free(b->m);
    ow_free(b);
}

static int add(ow__st_builder *b, const char *name, const char *dtype, int ndim,
               const int64_t *shape, const void *data, size_t nbytes, bool copy,
               ow_error *err)
{
    if (!b || !name || !*name || !strcmp(name, META_KEY))
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "safetensors: invalid tensor name '%s'", name ? name : "(null)");
    size_t esize = 0;
    const char *dt = dtype_find(dtype, &esize);
    if (!dt)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "safetensors: '%s': unknown dtype '%s'", name,
                         dtype ? dtype : "(null)");
    size_t numel = 1;
    bool fits = ndim >= 0 && (shape || ndim == 0) && (data || !nbytes);
    for (int d = 0; fits && d < ndim; d++) {
        fits = shape[d] >= 0 && (uint64_t)shape[d] <= SIZE_MAX;
        if (fits && shape[d] && numel > SIZE_MAX / (size_t)shape[d])
            fits = false;
        else if (fits)
            numel *= (size_t)shape[d];
    }
    if (!fits || numel > SIZE_MAX / esize || numel * esize != nbytes)
        return ow__error(
            err, OW_ERR_MISUSE, NULL, 0, 0,
            "safetensors: '%s': %zu bytes do not match its shape and dtype %s", name,
            nbytes, dt);
    if (ow__grow((void **)&b->t, &b->tcap, b->nt + 1, sizeof *b->t))
        return ow__nomem(err);
    st_entry e = {.dtype = dt, .elem_size = esize, .ndim = ndim, .nbytes = nbytes};
    e.name = ow__strdup(name);
    e.shape = ow__malloc(ndim ? (size_t)ndim * sizeof *e.shape : 1);
    if (copy)
        e.copy = ow__malloc(nbytes);
    if (!e.name || !e.shape || (copy && !e.copy)) {
        ow_free(e.name);
        ow_free(e.shape);
        ow_free(e.copy);
        return ow__nomem(err);
    }
    if (ndim)
        memcpy(e.shape, shape, (size_t)ndim * sizeof *e.shape);
    if (copy && nbytes)
        memcpy(e.copy, data, nbytes);
    e.data = copy ? e.copy : data;
    b->t[b->nt++] = e;
    return OW_OK;
}

int ow__st_builder_add(ow__st_builder *b, const char *name, const char *dtype, int ndim,
                       const int64_t *shape, const void *data, size_t nbytes,
                       ow_error *err)
{
    return add(b, name, dtype, ndim, shape, data, nbytes, false, err);
}

int ow__st_builder_add_copy(ow__st_builder *b, const char *name, const char *dtype,
                            int ndim, const int64_t *shape, const void *data,
                            size_t nbytes, ow_error *err)
{
    return add(b, name, dtype, ndim, shape, data, nbytes, true, err);
}

int ow__st_builder_set_meta(ow__st_builder *b, const char *key, const char *value,
                            ow_error *err)
{
    if (!b || !key || !value || !strcmp(key, CHECKSUM_KEY))
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "safetensors: invalid metadata key '%s'", key ? key : "(null)");
    char *v = ow__strdup(value);
    if (!v)
        return ow__nomem(err);
    for (size_t i = 0; i < b->nm; i++)
        if (!strcmp(b->m[i].key, key)) {
            ow_free(b->m[i].value);
            b->m[i].value = v;
            return OW_OK;
        }
    char *k = ow__strdup(key);
    if (!k || ow__grow((void **)&b->m, &b->mcap, b->nm + 1, sizeof *b->m)) {
        ow_free(k);
        ow_free(v);
        return ow__nomem(err);
    }
    b->m[b->nm++] = (st_meta){.key = k, .value = v};
    return OW_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names must be unique; checked once per save, sorted (thousands of tensors). */
static int check_names(const ow__st_builder *b, size_t *data_len, ow_error *err)
{
    size_t total = 0;
    for (size_t i = 0; i < b->nt; i++) {
        if (b->t[i].nbytes > SIZE_MAX - total)
            return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                             "safetensors: the tensors exceed the address space");
        total += b->t[i].nbytes;
    }
    *data_len = total;
    const char **names = ow__malloc((b->nt ? b->nt : 1) * sizeof *names);
    if (!names)
        return ow__nomem(err);
    for (size_t i = 0; i < b->nt; i++)
        names[i] = b->t[i].name;
    qsort(names, b->nt, sizeof *names, cmp_names);
    int rc = OW_OK;
    for (size_t i = 1; i < b->nt && !rc; i++)
        if (!strcmp(names[i - 1], names[i]))
            rc = ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                           "safetensors: tensor '%s' added twice", names[i]);
    ow_free(names);
    return rc;
}

/* The metadata's own checksum: every entry but the checksums, key and value each ended
 * by a NUL, in header order. */
static uint32_t meta_crc(uint32_t crc, const char *key, const char *value)
{
    crc = crc_update(crc, (const unsigned char *)key, strlen(key) + 1);
    return crc_update(crc, (const unsigned char *)value, strlen(value) + 1);
}

/* The 8-byte length and the padded header. crc NULL: zeros, which take the same room
 * as the real values (8 hex digits), so the data's place is known before they are. */
static int header(const ow__st_builder *b, const uint32_t *crc, ow_strbuf *sb,
                  ow_error *err)
{
    ow_strbuf sums;
    ow__sb_init(&sums);
    uint32_t mcrc = 0;
    for (size_t i = 0; i < b->nm; i++)
        mcrc = meta_crc(mcrc, b->m[i].key, b->m[i].value);
    ow__sb_printf(&sums, "{\"" META_KEY "\":\"%08" PRIx32 "\"", crc ? mcrc : 0);
    for (size_t i = 0; i < b->nt; i++) {
        ow__sb_putc(&sums, ',');
        ow__sb_json_string(&sums, b->t[i].name);
        ow__sb_printf(&sums, ":\"%08" PRIx32 "\"", crc ? crc[i] : 0);
    }
    ow__sb_putc(&sums, '}');
    ow__sb_init(sb);
    ow__sb_putn(sb, "\0\0\0\0\0\0\0\0", 8);
    ow__sb_puts(sb, "{\"" META_KEY "\":{");
    for (size_t i = 0; i < b->nm; i++) {
        ow__sb_json_string(sb, b->m[i].key);
        ow__sb_putc(sb, ':');
        ow__sb_json_string(sb, b->m[i].value);
        ow__sb_putc(sb, ',');
    }
    ow__sb_puts(sb, "\"" CHECKSUM_KEY "\":");
    ow__sb_json_string(sb, sums.data ? sums.data : "");
    ow__sb_putc(sb, '}');
    size_t off = 0;
    for (size_t i = 0; i < b->nt; i++) {
        const st_entry *e = &b->t[i];
        ow__sb_putc(sb, ',');
        ow__sb_json_string(sb, e->name);
        ow__sb_printf(sb, ":{\"dtype\":\"%s\",\"shape\":[", e->dtype);
        for (int d = 0; d < e->ndim; d++)
            ow__sb_printf(sb, d ? ",%" PRId64 : "%" PRId64, e->shape[d]);
        ow__sb_printf(sb, "],\"data_offsets\":[%zu,%zu]}", off, off + e->nbytes);
        off += e->nbytes;
    }
    ow__sb_putc(sb, '}');
    while (!sb->failed && (sb->len - 8) % 8) /* the data starts 8-aligned */
        ow__sb_putc(sb, ' ');
    bool failed = sums.failed || sb->failed;
    ow__sb_free(&sums);
    if (failed) {
        ow__sb_free(sb);
        return ow__nomem(err);
    }
    uint64_t hl = sb->len - 8;
    ow__st_copy_le(sb->data, &hl, 1, 8);
    return OW_OK;
}

int ow__st_builder_set_fill(ow__st_builder *b, const char *name, ow__st_fill_fn fill,
                            void *ctx, ow_error *err)
{
    for (size_t i = 0; b && name && i < b->nt; i++)
        if (!strcmp(b->t[i].name, name)) {
            b->t[i].fill = fill;
            b->t[i].fill_ctx = ctx;
            return OW_OK;
        }
    return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "safetensors: no tensor '%s'",
                     name ? name : "(null)");
}

/* A filled tensor's bytes in a new buffer (*out), or NULL after a failing fill. */
static int fill_entry(const st_entry *e, unsigned char **out)
{
    *out = ow__malloc(e->nbytes ? e->nbytes : 1);
    if (*out && e->fill(e->fill_ctx, *out, e->nbytes) == 0)
        return 0;
    ow_free(*out);
    *out = NULL;
    return -1;
}

int ow__st_builder_save_buffer(const ow__st_builder *b, void **out, size_t *len,
                               ow_error *err)
{
    *out = NULL;
    *len = 0;
    size_t dlen;
    int rc = check_names(b, &dlen, err);
    if (rc)
        return rc;
    ow_strbuf sb;
    if ((rc = header(b, NULL, &sb, err)))
        return rc;
    size_t hlen = sb.len;
    ow__sb_free(&sb);
    uint32_t *crc = ow__calloc(b->nt ? b->nt : 1, sizeof *crc);
    unsigned char *buf = hlen > SIZE_MAX - dlen ? NULL : ow__malloc(hlen + dlen);
    if (!crc || !buf) {
        ow_free(crc);
        ow_free(buf);
        return ow__nomem(err);
    }
    unsigned char *p = buf + hlen, *filled = NULL;
    for (size_t i = 0; i < b->nt && rc == OW_OK; i++) {
        const st_entry *e = &b->t[i];
        if (e->fill && fill_entry(e, &filled)) {
            rc = ow__error(err, OW_ERR_IO, NULL, 0, 0,
                           "safetensors: the bytes of '%s' could not be gathered",
                           e->name);
            break;
        }
        ow__st_copy_le(p, e->fill ? filled : e->data, e->nbytes / e->elem_size,
                       e->elem_size);
        ow_free(filled);
        filled = NULL;
        crc[i] = crc_update(0, p, e->nbytes);
        p += e->nbytes;
    }
    if (rc == OW_OK)
        rc = header(b, crc, &sb, err);
    ow_free(crc);
    if (rc) {
        ow_free(buf);
        return rc;
    }
    memcpy(buf, sb.data, hlen);
    ow__sb_free(&sb);
    *out = buf;
    *len = hlen + dlen;
    return OW_OK;
}

/* ---- atomic files ------------------------------------------------------------------ */

static int pwrite_all(int fd, const void *buf, size_t n, off_t at)
{
    const unsigned char *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w == 0)
            errno = ENOSPC;
        if (w <= 0)
            return -1;
        p += w;
        at += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Streams a tensor in little-endian order, checksumming what is written. scratch holds
 * CHUNK bytes (used on big-endian hosts only). */
static int write_tensor(int fd, const st_entry *e, unsigned char *scratch, uint32_t *crc,
                        off_t *at)
{
    unsigned char *filled = NULL;
    if (e->fill && fill_entry(e, &filled))
        return -1;
    const unsigned char *p = e->fill ? filled : e->data;
    size_t left = e->nbytes, per = CHUNK / e->elem_size * e->elem_size;
    uint32_t c = 0;
    while (left) {
        size_t m = left < per ? left : per;
        const unsigned char *chunk = p;
        if (!little_endian() && e->elem_size > 1) {
            ow__st_copy_le(scratch, p, m / e->elem_size, e->elem_size);
            chunk = scratch;
        }
        c = crc_update(c, chunk, m);
        if (pwrite_all(fd, chunk, m, *at)) {
            ow_free(filled);
            return -1;
        }
        *at += (off_t)m;
        p += m;
        left -= m;
    }
    ow_free(filled);
    *crc = c;
    return 0;
}

/* Creates path + ".tmp-<8 hex digits>" with O_EXCL (mode 0666, so the umask decides as
 * for any new file; mkstemp would force 0600). Returns the descriptor, or -1 (errno). */
static int open_temp(const char *path, char *tmp, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^
                 (uint64_t)getpid() << 16 ^ (uint64_t)(uintptr_t)tmp;
    for (int attempt = 0; attempt < 64; attempt++) {
        x = x * 6364136223846793005u + 1442695040888963407u; /* Knuth's MMIX LCG */
        snprintf(tmp, n, "%s.tmp-%08" PRIx32, path, (uint32_t)(x >> 32));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* Makes the rename durable. Filesystems that cannot sync a folder say EINVAL: the
 * rename is as durable as they make it. */
static int sync_folder(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, n, ".");
    else if (slash == path)
        snprintf(dir, n, "/");
    else
        snprintf(dir, n, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == EACCES ? 0 : -1;
    int rc = fsync(fd) != 0 && errno != EINVAL && errno != EROFS ? -1 : 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int ow__st_builder_save(const ow__st_builder *b, const char *path, ow_error *err)
{
    if (!b || !path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "safetensors: NULL argument");
    size_t dlen;
    int rc = check_names(b, &dlen, err);
    if (rc)
        return rc;
    ow_strbuf head, final;
    if ((rc = header(b, NULL, &head, err)))
        return rc;
    ow__sb_init(&final);
    size_t tlen = strlen(path) + 32;
    char *tmp = ow__malloc(tlen);
    uint32_t *crc = ow__calloc(b->nt ? b->nt : 1, sizeof *crc);
    unsigned char *scratch = little_endian() ? NULL : ow__malloc(CHUNK);
    int fd = -1;
    bool created = false;
    if (!tmp || !crc || (!little_endian() && !scratch)) {
        rc = ow__nomem(err);
        goto done;
    }
    if ((fd = open_temp(path, tmp, tlen)) < 0) {
        rc = ow__error(err, OW_ERR_IO, path, 0, 0, "cannot create a temporary file: %s",
                       strerror(errno));
        goto done;
    }
    created = true;
    off_t at = (off_t)head.len;
    bool bad = pwrite_all(fd, head.data, head.len, 0) != 0;
    for (size_t i = 0; i < b->nt && !bad; i++)
        bad = write_tensor(fd, &b->t[i], scratch, &crc[i], &at) != 0;
    if (bad) {
        rc = ow__error(err, OW_ERR_IO, path, 0, 0, "cannot write: %s", strerror(errno));
        goto done;
    }
    if ((rc = header(b, crc, &final, err)))
        goto done;
    if (pwrite_all(fd, final.data, final.len, 0) || fsync(fd)) {
        rc = ow__error(err, OW_ERR_IO, path, 0, 0, "cannot write: %s", strerror(errno));
        goto done;
    }
    int closed = close(fd);
    fd = -1;
    if (closed) {
        rc = ow__error(err, OW_ERR_IO, path, 0, 0, "cannot write: %s", strerror(errno));
        goto done;
    }
    if (rename(tmp, path)) {
        rc = ow__error(err, OW_ERR_IO, path, 0, 0,
                       "cannot rename the temporary file over it: %s", strerror(errno));
        goto done;
    }
    created = false;
    if (sync_folder(path, tmp, tlen))
        rc = ow__error(err, OW_ERR_IO, path, 0, 0,
                       "saved, but cannot sync its folder: %s", strerror(errno));
done:
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    ow_free(tmp);
    ow_free(crc);
    ow_free(scratch);
    ow__sb_free(&head);
    ow__sb_free(&final);
    return rc;
}

/* ---- the parser -------------------------------------------------------------------- */

struct ow__st_file {
    char *name;
    unsigned char *owned; /* the file's bytes when loaded, else NULL */
    const unsigned char *data;
    size_t dlen;
    ow_cfg *head;
    const ow_cfg *meta; /* the __metadata__ map, or NULL */
    ow__st_tensor *t;
    size_t nt;
    const ow__st_tensor **by_name; /* [nt] sorted by name */
    int64_t *dims;
};

static bool json_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The YAML reader accepts more than JSON: refuse what JSON lacks before it runs. Anchors
 * and aliases expand exponentially, tags and comments have no use, and deep nesting
 * would recurse without bound. Outside strings JSON has only structure, numbers and
 * true/false/null; inside, no raw control characters. */
static bool json_shaped(const char *s, size_t n, bool object)
{
    size_t i = 0;
    int depth = 0;
    while (i < n && json_space((unsigned char)s[i]))
        i++;
    if (i == n || (object && s[i] != '{'))
        return false;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++) {
                if ((unsigned char)s[i] < 0x20)
                    return false;
                if (s[i] == '\\')
                    i++;
            }
            if (i >= n)
                return false;
        } else if (c == '{' || c == '[') {
            if (++depth > MAX_DEPTH)
                return false;
        } else if (c == '}' || c == ']') {
            if (--depth < 0)
                return false;
        } else if (!(json_space(c) || c == ',' || c == ':' || c == '+' || c == '-' ||
                     c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                     (c >= 'A' && c <= 'Z'))) {
            return false;
        }
    }
    return depth == 0;
}

static bool is_meta(const ow_cfg *head, size_t k)
{
    return !strcmp(head->v.c.keys[k], META_KEY);
}

/* One tensor entry of the header: checked, then described in *t (shape into dims when
 * dims is not NULL; else *ndim only counts them). */
static int parse_entry(const ow__st_file *f, const char *name, const ow_cfg *e,
                       ow__st_tensor *t, int64_t *dims, ow_error *err)
{
    static const char *const keys[] = {"dtype", "shape", "data_offsets", NULL};
    if (e->type != OW_CFG_MAP)
        return ow__st_error(err, f->name,
                            "'%s': not a tensor entry (a map of dtype, shape and "
                            "data_offsets)",
                            name);
    for (size_t k = 0; k < e->v.c.n; k++) {
        size_t j = 0;
        while (keys[j] && strcmp(keys[j], e->v.c.keys[k]))
            j++;
        if (!keys[j])
            return ow__st_error(err, f->name, "'%s': unknown key '%s'", name,
                                e->v.c.keys[k]);
    }
    const ow_cfg *dt = ow__cfg_map_get(e, "dtype"), *shape = ow__cfg_map_get(e, "shape"),
                 *off = ow__cfg_map_get(e, "data_offsets");
    if (!dt || dt->type != OW_CFG_STRING)
        return ow__st_error(err, f->name, "'%s': no dtype", name);
    if (!(t->dtype = dtype_find(dt->v.s, &t->elem_size)))
        return ow__st_error(err, f->name, "'%s': unknown dtype '%s'", name, dt->v.s);
    if (!shape || shape->type != OW_CFG_LIST)
        return ow__st_error(err, f->name, "'%s': no shape", name);
    if (shape->v.c.n > INT_MAX)
        return ow__st_error(err, f->name, "'%s': too many dimensions", name);
    t->ndim = (int)shape->v.c.n;
    size_t numel = 1;
    bool huge = false;
    for (size_t d = 0; d < shape->v.c.n; d++) {
        const ow_cfg *x = shape->v.c.items[d];
        if (x->type != OW_CFG_INT || x->v.i < 0)
            return ow__st_error(err, f->name, "'%s': a shape lists sizes >= 0", name);
        if (dims)
            dims[d] = x->v.i;
        if ((uint64_t)x->v.i > SIZE_MAX || (x->v.i && numel > SIZE_MAX / (size_t)x->v.i))
            huge = true;
        else
            numel *= (size_t)x->v.i;
    }
    if (!off || off->type != OW_CFG_LIST || off->v.c.n != 2 ||
        off->v.c.items[0]->type != OW_CFG_INT || off->v.c.items[1]->type != OW_CFG_INT)
        return ow__st_error(err, f->name, "'%s': no data_offsets [begin, end]", name);
    int64_t b = off->v.c.items[0]->v.i, end = off->v.c.items[1]->v.i;
    if (b < 0 || end < b || (uint64_t)end > f->dlen)
        return ow__st_error(err, f->name,
                            "'%s': data offsets out of range (truncated or corrupt file)",
                            name);
    if (huge || numel > SIZE_MAX / t->elem_size ||
        numel * t->elem_size != (size_t)(end - b))
        return ow__st_error(err, f->name,
                            "'%s': its shape and dtype %s do not fit its %zu bytes "
                            "(corrupt file)",
                            name, t->dtype, (size_t)(end - b));
    t->name = name;
    t->numel = numel;
    t->data = f->data + b;
    t->nbytes = (size_t)(end - b);
    return OW_OK;
}

static int cmp_place(const void *a, const void *b)
{
    const ow__st_tensor *x = *(const ow__st_tensor *const *)a,
                        *y = *(const ow__st_tensor *const *)b;
    if (x->data != y->data)
        return x->data < y->data ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static int cmp_tensor_names(const void *a, const void *b)
{
    return strcmp((*(const ow__st_tensor *const *)a)->name,
                  (*(const ow__st_tensor *const *)b)->name);
}

/* The tensors tile the data area: no gap, no overlap, nothing after the last. */
static int check_tiling(ow__st_file *f, ow_error *err)
{
    for (size_t i = 0; i < f->nt; i++)
        f->by_name[i] = &f->t[i];
    qsort(f->by_name, f->nt, sizeof *f->by_name, cmp_place);
    size_t at = 0;
    for (size_t i = 0; i < f->nt; i++) {
        const ow__st_tensor *t = f->by_name[i];
        size_t b = (size_t)(t->data - f->data);
        if (b < at)
            return ow__st_error(err, f->name,
                                "'%s' and '%s' overlap in the data (corrupt file)",
                                f->by_name[i - 1]->name, t->name);
        if (b > at)
            return ow__st_error(
                err, f->name,
                "bytes %zu to %zu of the data belong to no tensor (corrupt "
                "file)",
                at, b);
        at = b + t->nbytes;
    }
    if (at != f->dlen)
        return ow__st_error(err, f->name,
                            "%zu bytes of data, the header describes %zu (truncated or "
                            "corrupt file)",
                            f->dlen, at);
    qsort(f->by_name, f->nt, sizeof *f->by_name, cmp_tensor_names);
    return OW_OK;
}

static bool parse_hex8(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return s[8] == '\0';
}

/* With "checksums" in the metadata, every tensor has one and every one matches. */
static int check_sums(ow__st_file *f, ow_error *err)
{
    if (!ow__st_file_find_meta(f, CHECKSUM_KEY))
        return OW_OK;
    ow_cfg *sums = NULL;
    int rc = ow__st_file_meta_json(f, CHECKSUM_KEY, &sums, err);
    if (rc)
        return rc;
    bool *seen = ow__calloc(f->nt ? f->nt : 1, sizeof *seen);
    if (!seen) {
        ow_cfg_free(sums);
        return ow__nomem(err);
    }
    if (sums->type != OW_CFG_MAP)
        rc = ow__st_error(err, f->name,
                          "metadata '" CHECKSUM_KEY "' is not a map of tensor names");
    for (size_t k = 0; !rc && k < sums->v.c.n; k++) {
        const char *name = sums->v.c.keys[k];
        const ow_cfg *v = sums->v.c.items[k];
        const ow__st_tensor *t = ow__st_file_find(f, name);
        uint32_t want;
        if (!strcmp(name, META_KEY)) {
            uint32_t got = 0;
            for (size_t m = 0; m < f->meta->v.c.n; m++)
                if (strcmp(f->meta->v.c.keys[m], CHECKSUM_KEY))
                    got = meta_crc(got, f->meta->v.c.keys[m], f->meta->v.c.items[m]->v.s);
            if (v->type != OW_CFG_STRING || !parse_hex8(v->v.s, &want))
                rc = ow__st_error(err, f->name,
                                  "the checksum of the metadata is not 8 hex digits");
            else if (got != want)
                rc = ow__st_error(err, f->name,
                                  "checksum mismatch in the metadata (corrupt file)");
        } else if (!t)
            rc = ow__st_error(err, f->name, "a checksum names no tensor: '%s'", name);
        else if (v->type != OW_CFG_STRING || !parse_hex8(v->v.s, &want))
            rc = ow__st_error(err, f->name,
                              "the checksum of tensor '%s' is not 8 hex digits", name);
        else if (crc_update(0, t->data, t->nbytes) != want)
            rc = ow__st_error(err, f->name,
                              "checksum mismatch in tensor '%s' (corrupt file)", name);
        else
            seen[t - f->t] = true;
    }
    for (size_t i = 0; !rc && i < f->nt; i++)
        if (!seen[i])
            rc = ow__st_error(err, f->name, "tensor '%s' has no checksum", f->t[i].name);
    ow_free(seen);
    ow_cfg_free(sums);
    return rc;
}

static int parse(ow__st_file *f, const unsigned char *buf, size_t len, ow_error *err)
{
    if (len < 8)
        return ow__st_error(err, f->name,
                            "truncated (%zu bytes; a safetensors file starts with an "
                            "8-byte header length)",
                            len);
    uint64_t hl;
    ow__st_copy_le(&hl, buf, 1, 8);
    if (hl > len - 8)
        return ow__st_error(err, f->name,
                            "truncated or not a safetensors file (%zu bytes, header "
                            "length %" PRIu64 ")",
                            len, hl);
    const char *text = (const char *)buf + 8;
    f->data = buf + 8 + hl;
    f->dlen = len - 8 - (size_t)hl;
    ow_error perr;
    ow_error_clear(&perr);
    if (!json_shaped(text, (size_t)hl, true) ||
        ow__cfg_parse(text, (size_t)hl, f->name, &f->head, &perr) ||
        f->head->type != OW_CFG_MAP)
        return perr.code == OW_ERR_NOMEM
                   ? ow__nomem(err)
                   : ow__st_error(err, f->name,
                                  "the header is not valid JSON (not a safetensors "
                                  "file?)");
    const ow_cfg *head = f->head;
    size_t ndims = 0;
    for (size_t k = 0; k < head->v.c.n; k++) {
        if (is_meta(head, k)) {
            const ow_cfg *m = f->meta = head->v.c.items[k];
            if (m->type != OW_CFG_MAP)
                return ow__st_error(err, f->name, "'" META_KEY "' is not a map");
            for (size_t j = 0; j < m->v.c.n; j++)
                if (m->v.c.items[j]->type != OW_CFG_STRING)
                    return ow__st_error(err, f->name, "metadata '%s' is not a string",
                                        m->v.c.keys[j]);
            continue;
        }
        ow__st_tensor probe;
        int rc = parse_entry(f, head->v.c.keys[k], head->v.c.items[k], &probe, NULL, err);
        if (rc)
            return rc;
        ndims += (size_t)probe.ndim;
        f->nt++;
    }
    f->t = ow__calloc(f->nt ? f->nt : 1, sizeof *f->t);
    f->by_name = ow__calloc(f->nt ? f->nt : 1, sizeof *f->by_name);
    f->dims = ow__calloc(ndims ? ndims : 1, sizeof *f->dims);
    if (!f->t || !f->by_name || !f->dims)
        return ow__nomem(err);
    for (size_t k = 0, i = 0, d = 0; k < head->v.c.n; k++) {
        if (is_meta(head, k))
            continue;
        ow__st_tensor *t = &f->t[i++];
        parse_entry(f, head->v.c.keys[k], head->v.c.items[k], t, f->dims + d, err);
        t->shape = f->dims + d;
        d += (size_t)t->ndim;
    }
    int rc = check_tiling(f, err);
    return rc ? rc : check_sums(f, err);
}

void ow__st_file_free(ow__st_file *f)
{
    if (!f)
        return;
    ow_free(f->name);
    ow_free(f->owned);
    ow_cfg_free(f->head);
    ow_free(f->t);
    ow_free(f->by_name);
    ow_free(f->dims);
    ow_free(f);
}

static int file_new(const char *name, ow__st_file **out, ow_error *err)
{
    ow__st_file *f = ow__calloc(1, sizeof *f);
    if (f && !(f->name = ow__strdup(name))) {
        ow_free(f);
        f = NULL;
    }
    *out = f;
    return f ? OW_OK : ow__nomem(err);
}

int ow__st_file_parse(const void *buf, size_t len, const char *name, ow__st_file **out,
                      ow_error *err)
{
    *out = NULL;
    ow__st_file *f;
    if (file_new(name ? name : "<buffer>", &f, err))
        return OW_ERR_NOMEM;
    int rc = buf || !len
                 ? parse(f, buf, len, err)
                 : ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "safetensors: NULL buffer");
    if (rc) {
        ow__st_file_free(f);
        return rc;
    }
    *out = f;
    return OW_OK;
}

int ow__st_file_load(const char *path, ow__st_file **out, ow_error *err)
{
    *out = NULL;
    if (!path)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0, "safetensors: NULL path");
    /* the one file reader (regular files only), without a size limit: a state file
     * holds as much as the optimizer keeps */
    char *buf = NULL;
    size_t len = 0;
    ow__st_file *f = NULL;
    int rc = ow__read_file_limited(path, SIZE_MAX - 1, &buf, &len, err);
    if (rc == OW_OK && (rc = file_new(path, &f, err)))
        ow_free(buf);
    if (rc)
        return rc;
    f->owned = (unsigned char *)buf;
    if ((rc = parse(f, f->owned, len, err))) {
        ow__st_file_free(f);
        return rc;
    }
    *out = f;
    return OW_OK;
}

const char *ow__st_file_get_name(const ow__st_file *f)
{
    return f->name;
}

size_t ow__st_file_get_count(const ow__st_file *f)
{
    return f->nt;
}

const ow__st_tensor *ow__st_file_get_tensor(const ow__st_file *f, size_t i)
{
    return i < f->nt ? &f->t[i] : NULL;
}

const ow__st_tensor *ow__st_file_find(const ow__st_file *f, const char *name)
{
    size_t lo = 0, hi = f->nt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->by_name[mid]->name, name);
        if (!c)
            return f->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *ow__st_file_find_meta(const ow__st_file *f, const char *key)
{
    const ow_cfg *v = ow__cfg_map_get(f->meta, key);
    return v ? v->v.s : NULL;
}

int ow__st_file_meta_json(const ow__st_file *f, const char *key, ow_cfg **out,
                          ow_error *err)
{
    *out = NULL;
    const char *v = ow__st_file_find_meta(f, key);
    if (!v)
        return ow__st_error(err, f->name, "metadata lacks '%s'", key);
    size_t n = strlen(v);
    ow_error perr;
    ow_error_clear(&perr);
    if (!json_shaped(v, n, false) || ow__cfg_parse(v, n, f->name, out, &perr))
        return perr.code == OW_ERR_NOMEM
                   ? ow__nomem(err)
                   : ow__st_error(err, f->name, "metadata '%s' is not valid JSON", key);
    return OW_OK;
}
