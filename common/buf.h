/*
 * buf — the one byte-buffer type of onehop (STYLE.md: "one buffer type").
 *
 * A buf holds `len` bytes at `s`, in storage of `cap` bytes, and always keeps
 * a NUL byte at s[len] once anything was added, so buf_cstr() is free. Every
 * append checks and grows the capacity; nothing ever writes past `cap`.
 * Allocation failure is fatal (fail-stop, the master restarts the daemon).
 * A zeroed buf (BUF_INIT) is empty and valid.
 */
#ifndef ONEHOP_BUF_H
#define ONEHOP_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *s;
    size_t len;
    size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

void buf_reserve(struct buf *b, size_t extra);
/* Room for one read(2) into b: at least 4 KiB, growing with what b holds,
 * so small input costs a small buffer (a large one is mmap'd and unmapped
 * again: most of a short-lived program's memory cost). */
void buf_reserve_read(struct buf *b);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_set(struct buf *b, const void *p, size_t n);
void buf_sets(struct buf *b, const char *s);
/* Drop the first n bytes (n <= len), keeping the rest. */
void buf_consume(struct buf *b, size_t n);
/* Length becomes n (n <= len). */
void buf_truncate(struct buf *b, size_t n);
void buf_clear(struct buf *b);
void buf_free(struct buf *b);
/* NUL-terminated view ("" for an empty buf); valid until the next change. */
const char *buf_cstr(struct buf *b);
/* Hand the storage to the caller (NUL-terminated, never NULL); b becomes empty. */
char *buf_steal(struct buf *b);

#endif
