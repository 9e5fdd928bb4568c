/*
 * mem — checked allocation; see mem.h.
 */
#include "mem.h"

#include <string.h>

#include "log.h"

static void *checked(void *p, size_t n)
{
    if (!p && n)
        log_fatal("out of memory allocating %zu bytes", n);
    return p;
}

void *xmalloc(size_t n)
{
    return checked(malloc(n ? n : 1), n ? n : 1);
}

void *xcalloc(size_t n, size_t size)
{
    if (size && n > (size_t)-1 / size)
        log_fatal("xcalloc: %zu x %zu overflows", n, size);
    return checked(calloc(n ? n : 1, size ? size : 1), 1);
}

void *xrealloc(void *p, size_t n)
{
    return checked(realloc(p, n ? n : 1), n ? n : 1);
}

void *xgrow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    if (size == 0)
        log_fatal("xgrow: elements of 0 bytes");
    size_t c = *cap ? *cap : 8;
    while (c < need) {
        if (c > (size_t)-1 / 2 / size)
            log_fatal("xgrow: %zu elements of %zu bytes overflows", need, size);
        c *= 2;
    }
    if (c > (size_t)-1 / size) /* also when the loop did not run */
        log_fatal("xgrow: %zu elements of %zu bytes overflows", c, size);
    p = xrealloc(p, c * size);
    *cap = c;
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
