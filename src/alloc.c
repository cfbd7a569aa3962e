/* alloc.c -- the library's one allocation path, with a hook that lets tests make the
 * Nth allocation fail (the OOM loop of tests/check_cfg.c and friends). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Test-only failure injection; see ow__alloc_fail_after(). Not part of the API. */
static long fail_countdown = -1;
static long alloc_count;

static int should_fail(void)
{
    alloc_count++;
    if (fail_countdown < 0)
        return 0;
    if (fail_countdown == 0)
        return 1;
    fail_countdown--;
    return 0;
}

long ow__alloc_fail_after(long n)
{
    long made = alloc_count;
    alloc_count = 0;
    fail_countdown = n;
    return made;
}

void *ow__malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *ow__calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *ow__malloc_aligned(size_t n)
{
    void *p = NULL;
    if (should_fail() || posix_memalign(&p, 64, n ? n : 1))
        return NULL;
    return p;
}

void *ow__realloc(void *ptr, size_t n)
{
    return should_fail() ? NULL : realloc(ptr, n ? n : 1);
}

char *ow__strndup(const char *s, size_t n)
{
    char *d = ow__malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *ow__strdup(const char *s)
{
    return s ? ow__strndup(s, strlen(s)) : NULL;
}

void ow_free(void *ptr)
{
    free(ptr);
}

int ow__grow(void **items, size_t *cap, size_t need, size_t elem_size)
{
    if (need <= *cap)
        return OW_OK;
    size_t ncap = *cap ? *cap : 4;
    while (ncap < need)
        ncap *= 2;
    void *p = ow__realloc(*items, ncap * elem_size);
    if (!p)
        return OW_ERR_NOMEM;
    *items = p;
    *cap = ncap;
    return OW_OK;
}
