/*
 * dnsbuild — build DNS wire messages by hand in unit tests (header-only), so
 * that every parser test states its exact input bytes: good answers, and the
 * hostile ones (pointer loops, short counts, long names) no real server
 * would send.
 *
 *     struct buf m = BUF_INIT;
 *     db_header(&m, 0x8180, 1, 1, 0, 0);       flags, qd, an, ns, ar
 *     db_name(&m, "b.test"); db_u16(&m, 15); db_u16(&m, 1);
 *     db_rr(&m, "b.test", 15, 300); db_rdata_mx(&m, 10, "mx.b.test");
 */
#ifndef ONEHOP_TEST_DNSBUILD_H
#define ONEHOP_TEST_DNSBUILD_H

#include <stdint.h>
#include <string.h>

#include "buf.h"

static inline void db_u8(struct buf *m, unsigned v)
{
    unsigned char c = (unsigned char)v;
    buf_add(m, &c, 1);
}

static inline void db_u16(struct buf *m, unsigned v)
{
    db_u8(m, (v >> 8) & 0xff);
    db_u8(m, v & 0xff);
}

static inline void db_u32(struct buf *m, uint32_t v)
{
    db_u16(m, v >> 16);
    db_u16(m, v & 0xffff);
}

static inline void db_header(struct buf *m, unsigned flags, unsigned qd, unsigned an, unsigned ns,
                             unsigned ar)
{
    db_u16(m, 0x1234);
    db_u16(m, flags);
    db_u16(m, qd);
    db_u16(m, an);
    db_u16(m, ns);
    db_u16(m, ar);
}

/* Labels of a dotted name, then the root; "." is the root alone. */
static inline void db_labels(struct buf *m, const char *name)
{
    while (*name && strcmp(name, ".") != 0) {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        db_u8(m, (unsigned)n);
        buf_add(m, name, n);
        name += n + (dot ? 1 : 0);
    }
}

static inline void db_name(struct buf *m, const char *name)
{
    db_labels(m, name);
    db_u8(m, 0);
}

/* A compression pointer to offset off. */
static inline void db_pointer(struct buf *m, unsigned off)
{
    db_u16(m, 0xc000 | off);
}

static inline void db_question(struct buf *m, const char *name, unsigned type)
{
    db_name(m, name);
    db_u16(m, type);
    db_u16(m, 1);
}

/* Owner, type, class IN, ttl; the caller adds RDLENGTH and RDATA. */
static inline void db_rr(struct buf *m, const char *owner, unsigned type, uint32_t ttl)
{
    db_name(m, owner);
    db_u16(m, type);
    db_u16(m, 1);
    db_u32(m, ttl);
}

static inline void db_rdata_a(struct buf *m, unsigned a, unsigned b, unsigned c, unsigned d)
{
    db_u16(m, 4);
    db_u8(m, a);
    db_u8(m, b);
    db_u8(m, c);
    db_u8(m, d);
}

static inline void db_rdata_aaaa(struct buf *m, unsigned last)
{
    db_u16(m, 16);
    db_u16(m, 0x2001);
    db_u16(m, 0x0db8);
    for (int i = 0; i < 5; i++)
        db_u16(m, 0);
    db_u16(m, last);
}

/* RDLENGTH of a name written uncompressed. */
static inline unsigned db_name_len(const char *name)
{
    struct buf t = BUF_INIT;
    db_name(&t, name);
    unsigned n = (unsigned)t.len;
    buf_free(&t);
    return n;
}

static inline void db_rdata_mx(struct buf *m, unsigned pref, const char *host)
{
    db_u16(m, 2 + db_name_len(host));
    db_u16(m, pref);
    db_name(m, host);
}

static inline void db_rdata_cname(struct buf *m, const char *target)
{
    db_u16(m, db_name_len(target));
    db_name(m, target);
}

static inline void db_rdata_soa(struct buf *m, uint32_t minimum)
{
    db_u16(m, db_name_len("ns.test") + db_name_len("admin.test") + 20);
    db_name(m, "ns.test");
    db_name(m, "admin.test");
    db_u32(m, 1);
    db_u32(m, 3600);
    db_u32(m, 600);
    db_u32(m, 86400);
    db_u32(m, minimum);
}

/* Patch the 16-bit field at off. */
static inline void db_patch16(struct buf *m, size_t off, unsigned v)
{
    m->s[off] = (char)((v >> 8) & 0xff);
    m->s[off + 1] = (char)(v & 0xff);
}

#endif
