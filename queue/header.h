/*
 * header — the header section of a message (RFC 5322 section 2.2), found in
 * text whose lines end in LF or CR LF (queue.h stores them ending in LF).
 *
 *     header-field = field-name ":" unstructured CRLF
 *     field-name   = 1*ftext      ftext = %d33-57 / %d59-126
 *     folding: a line that starts with SP or HTAB continues the field above
 *
 * The header section ends at the first empty line (the separator, consumed)
 * or at the first line that is neither a field nor a continuation (that line
 * starts the body and the message had no separator). White space between
 * the field name and ":" is accepted (RFC 5322 4.5, obs-optional). Nothing
 * is copied: every field points into the text it was found in.
 *
 * Must never read past len. A final line without a line end is still taken
 * as a line.
 */
#ifndef ONEHOP_HEADER_H
#define ONEHOP_HEADER_H

#include <stddef.h>

struct header {
    const char *name; /* field name, name_len bytes */
    size_t name_len;
    const char
        *value; /* after the ":", through the last continuation line, final line end excluded */
    size_t value_len;
    const char *raw; /* the whole field as written, final line end included */
    size_t raw_len;
};

struct header_block {
    struct header *v;
    size_t n, cap;
    size_t body_offset; /* where the body starts in the text */
    int has_separator;  /* 1 if an empty line ended the header section */
};

#define HEADER_BLOCK_INIT                                                                          \
    {                                                                                              \
        NULL, 0, 0, 0, 0                                                                           \
    }

/* Split text[0..len) into header fields and the body offset. */
void header_block_parse(const char *text, size_t len, struct header_block *hb);
/* 1 if the field's name is `name`, compared case-insensitively. */
int header_is(const struct header *h, const char *name);
/* The first field named `name`, or NULL. */
const struct header *header_find(const struct header_block *hb, const char *name);
void header_block_free(struct header_block *hb);

#endif
