/*
 * ipc — typed records on pipes and sockets. See ipc.h for the wire format.
 *
 * Writing appends to a struct buf and patches the header at the end; a
 * record too large to send is a bug in the writer and is fatal. Reading
 * treats the record as hostile: every length is checked against the bytes
 * that remain before it is used, every tag against the one asked for, and the
 * first error sticks so that a caller may read a whole record and test once.
 *
 * Strings are copied into r->scratch. The first string read reserves room
 * for every remaining byte of the record; each copy (n bytes plus a NUL)
 * is smaller than its field on the wire (tag, u32 length, n bytes), so the
 * scratch buffer is never reallocated and earlier pointers stay valid.
 *
 * ipc_open() initialises the whole reader; call ipc_close() before opening
 * the next record with the same reader.
 *
 * Must never: read outside data[0..len), guess past an error, or accept a
 * record whose fields do not account for every byte of it.
 */
#include "ipc.h"

#include <string.h>

#include "log.h"

/* The hard ceiling as a size_t, for comparisons with sizes. */
static const size_t record_max = IPC_RECORD_MAX;

/* ---------------------------------------------------------- big-endian ---- */

static void put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    put_be16(p, (uint16_t)(v >> 16));
    put_be16(p + 2, (uint16_t)v);
}

static void put_be64(unsigned char *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint16_t get_be16(const unsigned char *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)get_be16(p) << 16 | get_be16(p + 2);
}

static uint64_t get_be64(const unsigned char *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* ------------------------------------------------------------- writing ---- */

void ipc_begin(struct ipc_writer *w, struct buf *out, uint16_t type)
{
    unsigned char header[IPC_HEADER_SIZE] = {0};
    put_be16(header + 4, type);
    w->out = out;
    w->start = out->len;
    w->nfields = 0;
    buf_add(out, header, sizeof(header));
}

/* The tag byte of a new field, counted in the header at ipc_finish(). */
static void add_tag(struct ipc_writer *w, enum ipc_tag tag)
{
    if (w->nfields == UINT16_MAX)
        log_fatal("ipc: more than %u fields in one record", (unsigned)UINT16_MAX);
    w->nfields++;
    buf_addc(w->out, (char)tag);
}

void ipc_add_u32(struct ipc_writer *w, uint32_t v)
{
    unsigned char b[4];
    put_be32(b, v);
    add_tag(w, IPC_U32);
    buf_add(w->out, b, sizeof(b));
}

void ipc_add_u64(struct ipc_writer *w, uint64_t v)
{
    unsigned char b[8];
    put_be64(b, v);
    add_tag(w, IPC_U64);
    buf_add(w->out, b, sizeof(b));
}

static void add_counted(struct ipc_writer *w, enum ipc_tag tag, const void *p, size_t n)
{
    unsigned char b[4];
    if (n > record_max)
        log_fatal("ipc: a field of %zu bytes exceeds the record limit", n);
    put_be32(b, (uint32_t)n);
    add_tag(w, tag);
    buf_add(w->out, b, sizeof(b));
    buf_add(w->out, p, n);
}

void ipc_add_str(struct ipc_writer *w, const char *s)
{
    add_counted(w, IPC_STR, s, strlen(s));
}

void ipc_add_bytes(struct ipc_writer *w, const void *p, size_t n)
{
    add_counted(w, IPC_BYTES, p, n);
}

void ipc_finish(struct ipc_writer *w)
{
    size_t size = w->out->len - w->start;
    if (size > record_max)
        log_fatal("ipc: record of %zu bytes exceeds %u", size, (unsigned)IPC_RECORD_MAX);
    unsigned char *h = (unsigned char *)w->out->s + w->start;
    put_be32(h, (uint32_t)size);
    put_be16(h + 6, w->nfields);
}

/* ------------------------------------------------------------- framing ---- */

/* The length field of a header: at least the header, at most the limit
 * of the channel (max; 0 or anything above IPC_RECORD_MAX means that). */
static int check_length(uint32_t len, size_t max, const char **why)
{
    size_t limit = (max == 0 || max > record_max) ? record_max : max;
    if (len < IPC_HEADER_SIZE) {
        *why = "record length shorter than its header";
        return -1;
    }
    if (len > limit) {
        *why = "record longer than the channel allows";
        return -1;
    }
    return 0;
}

int ipc_frame(const void *data, size_t avail, size_t max, size_t *reclen, const char **why)
{
    if (avail < 4)
        return 0;
    uint32_t len = get_be32((const unsigned char *)data);
    if (check_length(len, max, why) < 0)
        return -1;
    if (avail < len)
        return 0;
    *reclen = len;
    return 1;
}

/* ------------------------------------------------------------- reading ---- */

static int set_error(struct ipc_reader *r, const char *error)
{
    if (!r->error)
        r->error = error;
    return -1;
}

int ipc_open(struct ipc_reader *r, const void *data, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->p = data;
    r->len = len;
    if (len < IPC_HEADER_SIZE)
        return set_error(r, "record shorter than its header");
    if (len > record_max)
        return set_error(r, "record longer than IPC_RECORD_MAX");
    if (get_be32(r->p) != len)
        return set_error(r, "record length does not match its header");
    r->type = get_be16(r->p + 4);
    r->nfields = get_be16(r->p + 6);
    r->pos = IPC_HEADER_SIZE;
    return 0;
}

/* Consume the tag of the next field, which must be `want`. */
static int take_tag(struct ipc_reader *r, enum ipc_tag want)
{
    if (r->error)
        return -1;
    if (r->fields_read >= r->nfields)
        return set_error(r, "more fields read than the record holds");
    if (r->pos >= r->len)
        return set_error(r, "record ends before its last field");
    unsigned char tag = r->p[r->pos];
    if (tag < IPC_U32 || tag > IPC_BYTES)
        return set_error(r, "unknown field tag");
    if (tag != want)
        return set_error(r, "field is not of the type expected");
    r->pos++;
    return 0;
}

/* Point *p at the next n bytes of the record and consume them. */
static int take_bytes(struct ipc_reader *r, size_t n, const unsigned char **p)
{
    if (n > r->len - r->pos)
        return set_error(r, "field runs past the end of the record");
    *p = r->p + r->pos;
    r->pos += n;
    return 0;
}

/* A fixed-size field; fields_read counts only fields read in full. */
static int take_fixed(struct ipc_reader *r, enum ipc_tag tag, size_t n, const unsigned char **p)
{
    size_t saved = r->pos;
    if (take_tag(r, tag) < 0 || take_bytes(r, n, p) < 0) {
        r->pos = saved;
        return -1;
    }
    r->fields_read++;
    return 0;
}

int ipc_get_u32(struct ipc_reader *r, uint32_t *out)
{
    const unsigned char *p;
    if (take_fixed(r, IPC_U32, 4, &p) < 0)
        return -1;
    *out = get_be32(p);
    return 0;
}

int ipc_get_u64(struct ipc_reader *r, uint64_t *out)
{
    const unsigned char *p;
    if (take_fixed(r, IPC_U64, 8, &p) < 0)
        return -1;
    *out = get_be64(p);
    return 0;
}

/* A length-counted field (STR or BYTES) of at most max bytes. */
static int take_counted(struct ipc_reader *r, enum ipc_tag tag, size_t max, const unsigned char **p,
                        size_t *n)
{
    const unsigned char *lenp;
    size_t saved = r->pos;
    if (take_tag(r, tag) < 0 || take_bytes(r, 4, &lenp) < 0)
        goto fail;
    *n = get_be32(lenp);
    if (*n > max) {
        set_error(r, tag == IPC_STR ? "string longer than allowed" : "bytes longer than allowed");
        goto fail;
    }
    if (take_bytes(r, *n, p) < 0)
        goto fail;
    r->fields_read++;
    return 0;
fail:
    r->pos = saved;
    return -1;
}

int ipc_get_str(struct ipc_reader *r, size_t max, const char **out)
{
    const unsigned char *p;
    size_t n;
    size_t tag_pos = r->pos;
    if (take_counted(r, IPC_STR, max, &p, &n) < 0)
        return -1;
    if (memchr(p, '\0', n))
        return set_error(r, "string contains a NUL byte");
    /* See the top of this file: one reservation covers every later string. */
    if (r->scratch.cap == 0)
        buf_reserve(&r->scratch, r->len - tag_pos);
    if (r->scratch.len + n + 2 > r->scratch.cap) /* copy, its NUL, the buf's own NUL */
        log_fatal("ipc: scratch space exhausted (bug)");
    char *copy = r->scratch.s + r->scratch.len;
    buf_add(&r->scratch, p, n);
    buf_addc(&r->scratch, '\0');
    *out = copy;
    return 0;
}

int ipc_get_bytes(struct ipc_reader *r, size_t max, const void **out, size_t *n)
{
    const unsigned char *p;
    size_t count;
    if (take_counted(r, IPC_BYTES, max, &p, &count) < 0)
        return -1;
    *out = p;
    *n = count;
    return 0;
}

int ipc_end(struct ipc_reader *r)
{
    if (r->error)
        return -1;
    if (r->fields_read != r->nfields)
        return set_error(r, "record has fields left unread");
    if (r->pos != r->len)
        return set_error(r, "record has bytes after its last field");
    return 0;
}

void ipc_close(struct ipc_reader *r)
{
    buf_free(&r->scratch);
    r->p = NULL;
    r->len = r->pos = 0;
}
