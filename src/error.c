/* error.c -- ow_error: filling (reset by each public call, then the first error wins;
 * never allocates), formatting as
 * file:line:column: message, and the one table of code names and descriptions. */
#include "internal.h"

#include <string.h>

static const struct {
    const char *name;
    const char *text;
} error_table[] = {
    /* OW_OK */ {"OW_OK", "no error"},
    /* OW_ERR_NOMEM */ {"OW_ERR_NOMEM", "out of memory"},
    /* OW_ERR_MISUSE */ {"OW_ERR_MISUSE", "library misuse"},
    /* OW_ERR_IO */ {"OW_ERR_IO", "input/output error"},
    /* OW_ERR_SYNTAX */ {"OW_ERR_SYNTAX", "syntax error"},
    /* OW_ERR_TYPE */ {"OW_ERR_TYPE", "wrong type"},
    /* OW_ERR_UNKNOWN_KEY */ {"OW_ERR_UNKNOWN_KEY", "unknown key"},
    /* OW_ERR_MISSING_KEY */ {"OW_ERR_MISSING_KEY", "missing key"},
    /* OW_ERR_RANGE */ {"OW_ERR_RANGE", "value out of range"},
    /* OW_ERR_UNKNOWN_TYPE */ {"OW_ERR_UNKNOWN_TYPE", "unknown registry type"},
    /* OW_ERR_DUPLICATE */ {"OW_ERR_DUPLICATE", "duplicate"},
    /* OW_ERR_INHERIT */ {"OW_ERR_INHERIT", "config inheritance error"},
    /* OW_ERR_MODEL */ {"OW_ERR_MODEL", "model tree error"},
    /* OW_ERR_VALUE */ {"OW_ERR_VALUE", "invalid value"},
    /* OW_ERR_PLUGIN */ {"OW_ERR_PLUGIN", "plugin error"},
    /* OW_ERR_STATE */ {"OW_ERR_STATE", "bad state file"},
    /* OW_ERR_UNSUPPORTED */ {"OW_ERR_UNSUPPORTED", "not supported"},
};

_Static_assert(OW__ARRAY_LEN(error_table) == OW_ERR__COUNT,
               "every OW_ERR_* code needs a row in error_table");

const char *ow_error_code_name(int code)
{
    return code >= 0 && code < OW_ERR__COUNT ? error_table[code].name : "OW_ERR_?";
}

const char *ow_strerror(int code)
{
    return code >= 0 && code < OW_ERR__COUNT ? error_table[code].text : "unknown error";
}

void ow_error_clear(ow_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

void ow__error_reset(ow_error *err)
{
    if (!err)
        return;
    err->code = OW_OK;
    err->line = err->column = 0;
    err->file[0] = '\0';
    err->message[0] = '\0';
}

int ow__verror(ow_error *err, int code, const char *file, int line, int column,
               const char *fmt, va_list ap)
{
    if (!err || err->code != OW_OK)
        return code;
    err->code = code;
    err->line = line > 0 ? line : 0;
    err->column = column > 0 ? column : 0;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    return code;
}

int ow__error(ow_error *err, int code, const char *file, int line, int column,
              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ow__verror(err, code, file, line, column, fmt, ap);
    va_end(ap);
    return code;
}

int ow__error_at(ow_error *err, int code, const ow_cfg *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ow__verror(err, code, node ? node->file : NULL, node ? node->line : 0,
               node ? node->column : 0, fmt, ap);
    va_end(ap);
    return code;
}

int ow__nomem(ow_error *err)
{
    return ow__error(err, OW_ERR_NOMEM, NULL, 0, 0, "out of memory");
}

int ow_error_format(const ow_error *err, char *buf, size_t n)
{
    if (!err)
        return snprintf(buf, n, "(no error information)");
    if (err->file[0] && err->line > 0)
        return snprintf(buf, n, "%s:%d:%d: %s", err->file, err->line, err->column,
                        err->message);
    if (err->file[0])
        return snprintf(buf, n, "%s: %s", err->file, err->message);
    return snprintf(buf, n, "%s", err->message);
}
