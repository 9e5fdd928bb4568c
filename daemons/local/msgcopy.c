/*
 * msgcopy — the stored message on its way into a mailbox, a command or a
 * file. See msgcopy.h.
 */
#include "local/msgcopy.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "safeio.h"

#define CHUNK (64u * 1024)

static const char from_[] = "From ";

void msgcopy_init(struct msgcopy *c, const struct msgsrc *src, unsigned flags,
                  const struct buf *prefix)
{
    memset(c, 0, sizeof(*c));
    c->src = src;
    c->flags = flags;
    c->line_start = 1;
    c->last = '\n';
    if (prefix && prefix->len) {
        buf_add(&c->out, prefix->s, prefix->len);
        c->last = prefix->s[prefix->len - 1];
    }
}

void msgcopy_free(struct msgcopy *c)
{
    buf_free(&c->out);
}

static void emit(struct msgcopy *c, char ch)
{
    buf_addc(&c->out, ch);
    c->last = ch;
}

/* The "From " bytes held at a line start that turned out not to be one. */
static void release_held(struct msgcopy *c)
{
    for (size_t i = 0; i < c->held; i++)
        emit(c, from_[i]);
    c->held = 0;
}

/* One content byte, CR LF already folded: the quoting of a line start. */
static void filter_byte(struct msgcopy *c, char ch)
{
    if ((c->flags & MSGCOPY_FROM_QUOTE) && c->line_start) {
        if (ch == from_[c->held]) {
            if (++c->held == sizeof(from_) - 1) {
                emit(c, '>');
                release_held(c);
                c->line_start = 0;
            }
            return;
        }
        release_held(c);
    }
    c->line_start = 0;
    emit(c, ch);
    if (ch == '\n')
        c->line_start = 1;
}

/* CR LF -> LF over chunk boundaries (every CR right before an LF goes:
 * "\r\r\n" is a line end too, so no CR LF is ever written); a CR before
 * anything else stays. */
static void filter(struct msgcopy *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r') {
            c->pending_cr++;
            continue;
        }
        if (p[i] != '\n')
            for (; c->pending_cr; c->pending_cr--)
                filter_byte(c, '\r');
        c->pending_cr = 0;
        filter_byte(c, p[i]);
    }
}

static void finish(struct msgcopy *c)
{
    if (c->flags & MSGCOPY_MBOX_END)
        c->pending_cr = 0; /* the line end added below ends their line */
    for (; c->pending_cr; c->pending_cr--)
        filter_byte(c, '\r');
    release_held(c);
    if (c->flags & MSGCOPY_MBOX_END) {
        if (c->last != '\n')
            emit(c, '\n');
        emit(c, '\n');
    }
    c->done = 1;
}

int msgcopy_next(struct msgcopy *c, const char **p, size_t *n)
{
    char chunk[CHUNK];
    while (c->out.len == 0 && !c->done) {
        uint64_t left = c->src->length - c->pos;
        if (left == 0) {
            finish(c);
            break;
        }
        size_t want = left < CHUNK ? (size_t)left : CHUNK;
        ssize_t got = pread(c->src->fd, chunk, want, (off_t)(c->src->offset + c->pos));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = EIO; /* the file is shorter than its record says */
            return -1;
        }
        c->pos += (uint64_t)got;
        filter(c, chunk, (size_t)got);
    }
    if (c->out.len == 0)
        return 0;
    *p = c->out.s;
    *n = c->out.len;
    c->out.len = 0; /* the caller uses it before the next call */
    return 1;
}

int msgcopy_to_fd(const struct msgsrc *src, unsigned flags, const struct buf *prefix, int fd,
                  uint64_t *written)
{
    struct msgcopy c;
    const char *p;
    size_t n;
    int rc;
    *written = 0;
    msgcopy_init(&c, src, flags, prefix);
    while ((rc = msgcopy_next(&c, &p, &n)) == 1) {
        if (write_all(fd, p, n) < 0) {
            rc = -1;
            break;
        }
        *written += n;
    }
    int saved = errno;
    msgcopy_free(&c);
    errno = saved;
    return rc < 0 ? -1 : 0;
}

/* The header section (up to the first empty line, or MSGCOPY_HEADER_MAX). */
static int read_headers(const struct msgsrc *src, struct buf *out)
{
    uint64_t len = src->length < MSGCOPY_HEADER_MAX ? src->length : MSGCOPY_HEADER_MAX;
    buf_reserve(out, (size_t)len + 1);
    while (out->len < len) {
        ssize_t got = pread(src->fd, out->s + out->len, (size_t)(len - out->len),
                            (off_t)(src->offset + out->len));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = EIO;
            return -1;
        }
        out->len += (size_t)got;
        out->s[out->len] = '\0';
        if (strstr(out->s, "\n\n") || strncmp(out->s, "\n", 1) == 0)
            break;
    }
    return 0;
}

/* Does the unfolded field value v[0..n) equal addr, white space around it
 * and a pair of angle brackets aside? */
static int value_names(const char *v, size_t n, const char *addr)
{
    while (n && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\n' || v[n - 1] == '\r'))
        n--;
    if (n >= 2 && v[0] == '<' && v[n - 1] == '>')
        v++, n -= 2;
    return n == strlen(addr) && strncasecmp(v, addr, n) == 0;
}

int msgcopy_delivered_to(const struct msgsrc *src, const char *addr)
{
    static const char name[] = "delivered-to:";
    struct buf h = BUF_INIT;
    if (read_headers(src, &h) < 0) {
        buf_free(&h);
        return -1;
    }
    int found = 0;
    for (size_t at = 0; at < h.len && !found;) {
        const char *line = h.s + at;
        if (*line == '\n')
            break;       /* the end of the header section */
        size_t end = at; /* a field ends at a newline not followed by white space */
        while (end < h.len && !(h.s[end] == '\n' && !(end + 1 < h.len && (h.s[end + 1] == ' ' ||
                                                                          h.s[end + 1] == '\t'))))
            end++;
        size_t n = end - at;
        if (n > sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0)
            found = value_names(line + sizeof(name) - 1, n - (sizeof(name) - 1), addr);
        at = end + 1;
    }
    buf_free(&h);
    return found;
}
