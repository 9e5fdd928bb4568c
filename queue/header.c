/*
 * header — split a message's header section into fields (RFC 5322 2.2).
 * See header.h.
 *
 * Must never: copy or modify the text, or read past its length.
 */
#include "header.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mem.h"

/* Length of the line at p, up to and including its LF (or to the end). */
static size_t line_length(const char *p, size_t avail)
{
    const char *lf = memchr(p, '\n', avail);
    return lf ? (size_t)(lf - p) + 1 : avail;
}

/* Length of the line without its CR LF / LF. */
static size_t content_length(const char *p, size_t n)
{
    if (n > 0 && p[n - 1] == '\n')
        n--;
    if (n > 0 && p[n - 1] == '\r')
        n--;
    return n;
}

/* RFC 5322 2.2 ftext: printable US-ASCII except ":". */
static int is_ftext(unsigned char c)
{
    return c >= 33 && c <= 126 && c != ':';
}

/* If line[0..n) starts a header field, return the length of its name and
 * set *colon to the offset of the ":"; else return 0. */
static size_t field_name_length(const char *line, size_t n, size_t *colon)
{
    size_t k = 0;
    while (k < n && is_ftext((unsigned char)line[k]))
        k++;
    size_t name_len = k;
    while (k < n && (line[k] == ' ' || line[k] == '\t')) /* RFC 5322 4.5 obs-optional */
        k++;
    if (name_len == 0 || k >= n || line[k] != ':')
        return 0;
    *colon = k;
    return name_len;
}

static void start_field(struct header_block *hb, const char *line, size_t n, size_t name_len,
                        size_t colon)
{
    hb->v = xgrow(hb->v, &hb->cap, hb->n + 1, sizeof(*hb->v));
    struct header *h = &hb->v[hb->n++];
    h->name = line;
    h->name_len = name_len;
    h->value = line + colon + 1;
    h->value_len = content_length(line, n) - colon - 1;
    h->raw = line;
    h->raw_len = n;
}

/* A continuation line extends the current field's value and raw text. */
static void continue_field(struct header *h, const char *line, size_t n)
{
    h->value_len = (size_t)(line - h->value) + content_length(line, n);
    h->raw_len = (size_t)(line - h->raw) + n;
}

void header_block_parse(const char *text, size_t len, struct header_block *hb)
{
    size_t pos = 0;
    hb->n = 0;
    hb->has_separator = 0;
    while (pos < len) {
        const char *line = text + pos;
        size_t n = line_length(line, len - pos);
        size_t colon = 0, name_len;
        if (content_length(line, n) == 0) {
            hb->has_separator = 1;
            pos += n;
            break;
        }
        if ((line[0] == ' ' || line[0] == '\t') && hb->n > 0) {
            continue_field(&hb->v[hb->n - 1], line, n);
        } else if ((name_len = field_name_length(line, n, &colon)) > 0) {
            start_field(hb, line, n, name_len, colon);
        } else {
            break; /* not a header: the body starts here, without separator */
        }
        pos += n;
    }
    hb->body_offset = pos;
}

int header_is(const struct header *h, const char *name)
{
    return strlen(name) == h->name_len && strncasecmp(h->name, name, h->name_len) == 0;
}

const struct header *header_find(const struct header_block *hb, const char *name)
{
    for (size_t k = 0; k < hb->n; k++)
        if (header_is(&hb->v[k], name))
            return &hb->v[k];
    return NULL;
}

void header_block_free(struct header_block *hb)
{
    free(hb->v);
    hb->v = NULL;
    hb->n = hb->cap = 0;
}
