/*
 * queue_v2log — a test fixture that writes the state log of a format 1 or 2
 * queue file (queue/queue.h "file format": records TYPE(u8) LEN(u32)
 * PAYLOAD CRC-32C(u32) appended after the committed image), as onehop
 * before the state side did. Nothing in onehop writes these logs any more;
 * recovery and the state side still read and import them, and these tests
 * need such files. Encoded here on its own, from the format's text, so the
 * reader is checked against an independent writer. Header-only: included by
 * the tests of old files (test_queue.c, test_state.c).
 */
#ifndef ONEHOP_TEST_QUEUE_V2LOG_H
#define ONEHOP_TEST_QUEUE_V2LOG_H

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "queue.h"
#include "queue_impl.h" /* crc32c */
#include "safeio.h"

/* One record: type 'd' delivered, 'b' bounced, 'f' deferred (rcpt, time,
 * next_try, text), 'h' hold, 'r' release (time), 'x' delete (time, text),
 * 'g' flags (rcpt or QUEUE_NO_RCPT, bits, time). */
struct v2rec {
    char type;
    uint32_t msg, rcpt;
    uint64_t time, next_try;
    uint32_t flags;
    const char *text;
};

static void v2_u32(struct buf *b, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        buf_addc(b, (char)(v >> (8 * i)));
}

static void v2_u64(struct buf *b, uint64_t v)
{
    v2_u32(b, (uint32_t)(v >> 32));
    v2_u32(b, (uint32_t)v);
}

static void v2_text(struct buf *b, const char *t)
{
    v2_u32(b, (uint32_t)(t ? strlen(t) : 0));
    if (t)
        buf_add(b, t, strlen(t));
}

static void v2_payload(struct buf *p, const struct v2rec *r)
{
    v2_u32(p, r->msg);
    switch (r->type) {
    case 'd':
    case 'b':
    case 'f':
        v2_u32(p, r->rcpt);
        v2_u64(p, r->time);
        if (r->type == 'f')
            v2_u64(p, r->next_try);
        v2_text(p, r->text);
        break;
    case 'g':
        v2_u32(p, r->rcpt);
        v2_u32(p, r->flags);
        v2_u64(p, r->time);
        break;
    case 'x':
        v2_u64(p, r->time);
        v2_text(p, r->text);
        break;
    default: /* 'h', 'r' */
        v2_u64(p, r->time);
        break;
    }
}

/* The framed records of r[0..n) appended to out. */
static void v2_encode(struct buf *out, const struct v2rec *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct buf p = BUF_INIT;
        v2_payload(&p, &r[i]);
        size_t start = out->len;
        buf_addc(out, r[i].type);
        v2_u32(out, (uint32_t)p.len);
        buf_add(out, p.s, p.len);
        v2_u32(out, crc32c(0, out->s + start, out->len - start));
        buf_free(&p);
    }
}

/* Append the records to the file at path: 0, or -1. */
static int v2_append(const char *path, const struct v2rec *r, size_t n)
{
    struct buf out = BUF_INIT;
    v2_encode(&out, r, n);
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    int rc = fd >= 0 && write_all(fd, out.s, out.len) == 0 ? 0 : -1;
    if (fd >= 0)
        close(fd);
    buf_free(&out);
    return rc;
}

#endif
