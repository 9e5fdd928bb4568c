/*
 * msgcheck — content checks and LF normalisation for onehop-queue. See
 * msgcheck.h. One pass over the bytes; plain bytes are copied in runs.
 */
#include "msgcheck.h"

#include <string.h>

#include "inject_proto.h"

enum line_kind {
    LK_START,   /* nothing of this line seen yet */
    LK_NAME,    /* header field name characters */
    LK_NAME_WS, /* white space after a name (obsolete syntax, RFC 5322 4.5.3) */
    LK_DONE     /* a field, a continuation, or the body: nothing more to learn */
};

void msgcheck_init(struct msgcheck *c, uint64_t size_limit)
{
    memset(c, 0, sizeof(*c));
    c->size_limit = size_limit;
    c->in_header = 1;
    c->line_kind = LK_START;
}

static int fail(struct msgcheck *c, const char *enhanced, const char *why)
{
    if (!c->why) {
        c->enhanced = enhanced;
        c->why = why;
    }
    return -1;
}

/* RFC 5322 2.2: field name characters are printable ASCII except ':'. */
static int is_ftext(unsigned char b)
{
    return b >= 33 && b <= 126 && b != ':';
}

static int is_wsp(unsigned char b)
{
    return b == ' ' || b == '\t';
}

/* Learn from one byte (not LF) of a line in the header section. */
static int classify(struct msgcheck *c, unsigned char b)
{
    switch (c->line_kind) {
    case LK_START:
        if (is_wsp(b)) {
            c->line_kind = LK_DONE; /* continuation of the previous field */
        } else if (is_ftext(b)) {
            c->line_kind = LK_NAME;
        } else {
            c->in_header = 0; /* not a field: the body starts here */
            c->line_kind = LK_DONE;
        }
        return 0;
    case LK_NAME:
    case LK_NAME_WS:
        if (b == ':') {
            c->line_kind = LK_DONE;
            if (++c->nheaders > INJ_HEADERS_MAX)
                return fail(c, "5.6.0", "too many header fields");
        } else if (is_wsp(b)) {
            c->line_kind = LK_NAME_WS;
        } else if (c->line_kind == LK_NAME_WS || !is_ftext(b)) {
            c->in_header = 0;
            c->line_kind = LK_DONE;
        }
        return 0;
    default:
        return 0;
    }
}

static int count_bytes(struct msgcheck *c, uint64_t n)
{
    c->size += n;
    if (c->size_limit && c->size > c->size_limit)
        return fail(c, "5.3.4", "message size exceeds the fixed maximum message size");
    return 0;
}

/* One stored byte other than LF. */
static int line_byte(struct msgcheck *c, unsigned char b)
{
    if (++c->line_len > INJ_LINE_MAX)
        return fail(c, "5.6.0", "message has a line longer than 1048576 bytes");
    if (c->in_header && classify(c, b) != 0)
        return -1;
    return count_bytes(c, 1);
}

static int line_end(struct msgcheck *c)
{
    if (c->in_header && (c->line_len == 0 || c->line_kind == LK_NAME || c->line_kind == LK_NAME_WS))
        c->in_header = 0; /* empty line, or a line that was no field */
    c->line_len = 0;
    c->line_kind = LK_START;
    return count_bytes(c, 1);
}

static int emit_held_cr(struct msgcheck *c, struct buf *out)
{
    for (; c->held_cr > 0; c->held_cr--) {
        if (line_byte(c, '\r') != 0)
            return -1;
        buf_addc(out, '\r');
    }
    return 0;
}

/* k plain body bytes (no NUL, CR or LF) at once: the same checks, in the
 * same order, as k calls of line_byte outside the header. */
static int body_run(struct msgcheck *c, uint64_t k)
{
    int line_over = c->line_len + k > INJ_LINE_MAX;
    int size_over = c->size_limit && c->size + k > c->size_limit;
    if (line_over || size_over) {
        uint64_t line_at = line_over ? INJ_LINE_MAX - c->line_len : UINT64_MAX;
        uint64_t size_at = size_over ? c->size_limit - c->size : UINT64_MAX;
        return line_at <= size_at
                   ? fail(c, "5.6.0", "message has a line longer than 1048576 bytes")
                   : fail(c, "5.3.4", "message size exceeds the fixed maximum message size");
    }
    c->line_len += k;
    c->size += k;
    return 0;
}

/* The end of the run of plain bytes (none of NUL, CR, LF) from i. */
static size_t plain_end(const unsigned char *p, size_t i, size_t n)
{
    while (i < n && p[i] != '\n' && p[i] != '\r' && p[i] != '\0')
        i++;
    return i;
}

int msgcheck_feed(struct msgcheck *c, const void *data, size_t n, struct buf *out)
{
    const unsigned char *p = data;
    size_t run = 0; /* start of the bytes not yet copied to out */
    if (c->why)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!c->in_header && !c->held_cr) { /* the body: plain bytes in runs */
            size_t j = plain_end(p, i, n);
            if (j > i && body_run(c, j - i) != 0)
                return -1;
            if ((i = j) == n)
                break;
        }
        unsigned char b = p[i];
        if (b == '\0')
            return fail(c, "5.6.0", "message contains NUL bytes");
        if (b == '\r') {
            buf_add(out, p + run, i - run);
            run = i + 1;
            c->held_cr++;
            continue;
        }
        if (c->held_cr && b == '\n')
            c->held_cr = 0; /* CR before a line end: dropped */
        else if (c->held_cr && emit_held_cr(c, out) != 0)
            return -1;
        if ((b == '\n' ? line_end(c) : line_byte(c, b)) != 0)
            return -1;
    }
    buf_add(out, p + run, n - run);
    return 0;
}

int msgcheck_finish(struct msgcheck *c, struct buf *out)
{
    if (c->why)
        return -1;
    if (c->held_cr == 0 && c->line_len == 0)
        return 0;
    c->held_cr = 0; /* CRs at the very end end the last line */
    if (line_end(c) != 0)
        return -1;
    buf_addc(out, '\n');
    return 0;
}
