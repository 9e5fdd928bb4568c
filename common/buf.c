/*
 * buf — growable byte buffer with explicit length and capacity. See buf.h.
 */
#include "buf.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "mem.h"

void buf_reserve(struct buf *b, size_t extra)
{
    if (extra > (size_t)-1 / 2 - b->len)
        log_fatal("buf_reserve: %zu + %zu bytes is too large", b->len, extra);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->s = xrealloc(b->s, cap);
    b->cap = cap;
}

void buf_reserve_read(struct buf *b)
{
    if (b->cap - b->len < 2048)
        buf_reserve(b, b->len < 4095 ? 4095 : b->len);
}

/* p may point into b itself (buf_add(b, b->s, n) doubles a prefix): it is
 * re-found after the storage may have moved. */
void buf_add(struct buf *b, const void *p, size_t n)
{
    const char *c = p;
    int inside = b->s && c >= b->s && c < b->s + b->cap;
    size_t off = inside ? (size_t)(c - b->s) : 0;
    buf_reserve(b, n);
    if (inside)
        c = b->s + off;
    if (n)
        memmove(b->s + b->len, c, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void buf_addc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0)
        log_fatal("buf_vprintf: bad format \"%s\"", fmt);
    buf_reserve(b, (size_t)n);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, again);
    va_end(again);
    b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_set(struct buf *b, const void *p, size_t n)
{
    const char *c = p;
    if (b->s && c >= b->s && c < b->s + b->cap) { /* a part of itself */
        memmove(b->s, c, n);
        buf_truncate(b, n);
        return;
    }
    b->len = 0;
    buf_add(b, p, n);
}

void buf_sets(struct buf *b, const char *s)
{
    buf_set(b, s, strlen(s));
}

void buf_consume(struct buf *b, size_t n)
{
    if (n > b->len)
        log_fatal("buf_consume: %zu of %zu bytes", n, b->len);
    if (n == 0)
        return; /* also keeps a never-used buf (s == NULL) away from memmove */
    memmove(b->s, b->s + n, b->len - n);
    b->len -= n;
    if (b->s)
        b->s[b->len] = '\0';
}

void buf_truncate(struct buf *b, size_t n)
{
    if (n > b->len)
        log_fatal("buf_truncate: %zu of %zu bytes", n, b->len);
    b->len = n;
    if (b->s)
        b->s[b->len] = '\0';
}

void buf_clear(struct buf *b)
{
    buf_truncate(b, 0);
}

void buf_free(struct buf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

const char *buf_cstr(struct buf *b)
{
    if (!b->s)
        buf_reserve(b, 0), b->s[0] = '\0';
    return b->s;
}

char *buf_steal(struct buf *b)
{
    buf_cstr(b);
    char *s = b->s;
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}
