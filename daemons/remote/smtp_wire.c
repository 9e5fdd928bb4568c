/*
 * smtp_wire — SMTP reply parsing, EHLO extensions and the message's wire
 * form. See smtp_wire.h.
 */
#include "remote/smtp_wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void smtp_reader_init(struct smtp_reader *r)
{
    memset(r, 0, sizeof(*r));
}

void smtp_reader_free(struct smtp_reader *r)
{
    buf_free(&r->in);
}

void smtp_reply_free(struct smtp_reply *rep)
{
    buf_free(&rep->text);
    buf_free(&rep->lines);
}

void smtp_reader_feed(struct smtp_reader *r, const void *p, size_t n)
{
    buf_add(&r->in, p, n);
}

static int reply_code(const char *line, size_t len)
{
    if (len < 3)
        return -1;
    for (int i = 0; i < 3; i++)
        if (line[i] < '0' || line[i] > '9')
            return -1;
    if (line[0] < '2' || line[0] > '5')
        return -1; /* RFC 5321 4.2.1: the first digit is 2..5 */
    if (len > 3 && line[3] != ' ' && line[3] != '-')
        return -1;
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* Take one line of len bytes (CR LF or LF removed) into rep; 1 when it was
 * the last line of the reply, 0 when more follow, -1 on an error. */
static int take_line(struct smtp_reader *r, const char *line, size_t len, struct smtp_reply *rep,
                     const char **why)
{
    int code = reply_code(line, len);
    if (code < 0) {
        *why = "malformed reply line";
        return -1;
    }
    if (r->code == 0) {
        r->code = code;
        buf_clear(&rep->text);
        buf_clear(&rep->lines);
        buf_add(&rep->text, line, 3);
    } else if (code != r->code) {
        *why = "reply lines with different codes";
        return -1;
    }
    if (++r->nlines > SMTP_REPLY_LINES) {
        *why = "reply with too many lines";
        return -1;
    }
    const char *text = len > 4 ? line + 4 : "";
    size_t tlen = len > 4 ? len - 4 : 0;
    if (tlen) {
        buf_addc(&rep->text, ' ');
        buf_add(&rep->text, text, tlen);
    }
    buf_add(&rep->lines, text, tlen);
    buf_addc(&rep->lines, '\n');
    return len <= 3 || line[3] == ' ';
}

int smtp_reader_next(struct smtp_reader *r, struct smtp_reply *rep, const char **why)
{
    for (;;) {
        char *nl = r->in.len ? memchr(r->in.s, '\n', r->in.len) : NULL;
        if (!nl) {
            if (r->in.len > SMTP_REPLY_MAX) {
                *why = "reply line too long";
                return -1;
            }
            return 0;
        }
        size_t len = (size_t)(nl - r->in.s);
        size_t eat = len + 1;
        if (len && r->in.s[len - 1] == '\r')
            len--;
        int last = take_line(r, r->in.s, len, rep, why);
        buf_consume(&r->in, eat);
        if (last < 0)
            return -1;
        if (rep->text.len > SMTP_REPLY_MAX) {
            *why = "reply too long";
            return -1;
        }
        if (last) {
            rep->code = r->code;
            r->code = 0;
            r->nlines = 0;
            return 1;
        }
    }
}

/* keyword (case-insensitive) followed by the end of the line or a space. */
static const char *keyword(const char *line, size_t len, const char *kw)
{
    size_t k = strlen(kw);
    if (len < k || strncasecmp(line, kw, k) != 0 || (len > k && line[k] != ' '))
        return NULL;
    return line + k;
}

void smtp_ext_parse(const struct smtp_reply *ehlo, struct smtp_ext *ext)
{
    memset(ext, 0, sizeof(*ext));
    const char *p = ehlo->lines.s, *end = p + ehlo->lines.len;
    int first = 1;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *rest;
        if (first)
            first = 0; /* the greeting line names the server */
        else if (keyword(p, len, "PIPELINING"))
            ext->pipelining = 1;
        else if (keyword(p, len, "8BITMIME"))
            ext->eightbitmime = 1;
        else if (keyword(p, len, "ENHANCEDSTATUSCODES"))
            ext->enhancedstatuscodes = 1;
        else if (keyword(p, len, "STARTTLS"))
            ext->starttls = 1;
        else if (keyword(p, len, "DSN"))
            ext->dsn = 1;
        else if (keyword(p, len, "SMTPUTF8"))
            ext->smtputf8 = 1;
        else if ((rest = keyword(p, len, "SIZE")) != NULL) {
            ext->has_size = 1;
            const char *q = rest, *stop = p + len;
            uint64_t v = 0;
            while (q < stop && *q == ' ')
                q++;
            for (; q < stop && *q >= '0' && *q <= '9'; q++)
                v = v > UINT64_MAX / 10 ? UINT64_MAX : v * 10 + (uint64_t)(*q - '0');
            ext->size = v;
        }
        p = nl ? nl + 1 : end;
    }
}

void smtp_dot_init(struct smtp_dot *d)
{
    d->at_line_start = 1;
}

void smtp_dot_encode(struct smtp_dot *d, const char *p, size_t n, struct buf *out)
{
    buf_reserve(out, n + n / 16 + 8);
    while (n) {
        if (d->at_line_start && *p == '.')
            buf_addc(out, '.'); /* RFC 5321 4.5.2: transparency */
        const char *nl = memchr(p, '\n', n);
        size_t run = nl ? (size_t)(nl - p) : n;
        buf_add(out, p, run);
        if (nl) {
            buf_add(out, "\r\n", 2);
            run++;
            d->at_line_start = 1;
        } else {
            d->at_line_start = 0;
        }
        p += run;
        n -= run;
    }
}

void smtp_dot_finish(struct smtp_dot *d, struct buf *out)
{
    if (!d->at_line_start)
        buf_add(out, "\r\n", 2);
    buf_add(out, ".\r\n", 3);
}

void smtp_scan_init(struct smtp_scan *sc)
{
    sc->at_line_start = 1;
    sc->in_header = 1;
    sc->eightbit = 0;
    sc->header_8bit = 0;
}

/* 1 if p[0..n) has a byte >= 0x80: eight bytes at a time. */
static int any_8bit(const char *p, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= (unsigned char)p[i];
    return (acc & 0x8080808080808080ull) != 0;
}

/* Line by line (memchr): each LF is one byte more (CRLF on the wire); the
 * text between two LFs is scanned for 8-bit bytes only while that can
 * still change what sc says. */
uint64_t smtp_wire_size(const char *p, size_t n, struct smtp_scan *sc)
{
    uint64_t size = n;
    const char *end = p + n;
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        const char *stop = lf ? lf : end;
        if (stop > p) {
            sc->at_line_start = 0;
            int wanted = !sc->eightbit || (sc->in_header && !sc->header_8bit);
            if (wanted && any_8bit(p, (size_t)(stop - p))) {
                sc->eightbit = 1;
                sc->header_8bit |= sc->in_header;
            }
        }
        if (!lf)
            break;
        size++; /* becomes CRLF */
        if (sc->at_line_start)
            sc->in_header = 0; /* the empty line */
        sc->at_line_start = 1;
        p = lf + 1;
    }
    return size;
}

int smtp_text_is_utf8(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s & 0x80)
            return 1;
    return 0;
}
