/* strbuf.c -- a growable string buffer whose appends never fail loudly: an allocation
 * failure marks the buffer, and ow__sb_take() then reports it by returning NULL. */
#include "../internal.h"

#include <string.h>

void ow__sb_init(ow_strbuf *sb)
{
    memset(sb, 0, sizeof *sb);
}

void ow__sb_free(ow_strbuf *sb)
{
    ow_free(sb->data);
    ow__sb_init(sb);
}

static int reserve(ow_strbuf *sb, size_t extra)
{
    if (sb->failed)
        return 0;
    if (ow__grow((void **)&sb->data, &sb->cap, sb->len + extra + 1, 1) != OW_OK) {
        sb->failed = 1;
        return 0;
    }
    return 1;
}

void ow__sb_putn(ow_strbuf *sb, const char *s, size_t n)
{
    if (!reserve(sb, n))
        return;
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void ow__sb_puts(ow_strbuf *sb, const char *s)
{
    ow__sb_putn(sb, s, strlen(s));
}

void ow__sb_putc(ow_strbuf *sb, char c)
{
    ow__sb_putn(sb, &c, 1);
}

void ow__sb_printf(ow_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(sb, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void ow__sb_json_string(ow_strbuf *sb, const char *s)
{
    ow__sb_putc(sb, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': ow__sb_puts(sb, "\\\""); break;
        case '\\': ow__sb_puts(sb, "\\\\"); break;
        case '\n': ow__sb_puts(sb, "\\n"); break;
        case '\t': ow__sb_puts(sb, "\\t"); break;
        case '\r': ow__sb_puts(sb, "\\r"); break;
        default:
            if (*p < 0x20)
                ow__sb_printf(sb, "\\u%04x", *p);
            else
                ow__sb_putc(sb, (char)*p);
        }
    }
    ow__sb_putc(sb, '"');
}

char *ow__sb_take(ow_strbuf *sb)
{
    if (sb->failed) {
        ow__sb_free(sb);
        return NULL;
    }
    if (!sb->data) {
        if (!reserve(sb, 0))
            return NULL;
        sb->data[0] = '\0'; /* nothing was put: the empty string */
    }
    char *d = sb->data;
    ow__sb_init(sb);
    return d;
}
