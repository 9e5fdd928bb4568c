/*
 * mapfile — what the three map parsers (routes, sites, aliases) share:
 * reading a map file, cutting its text into numbered lines, comments and
 * words, domain names, and a small string index for duplicate checks.
 *
 * Contract:
 * - Lines end in LF or CRLF; the last line needs no end. Line numbers start
 *   at 1. A line holding a NUL byte or another control character (other
 *   than tab) is reported to the diag as FILE:LINE and skipped, so every
 *   word a parser later quotes in a message is printable.
 * - mapfile_read(): a missing file is an empty map (returns 0), any other
 *   failure is reported as "FILE: message" (line 0) and returns -1.
 * - Never reads outside [text, text + len); never trusts a NUL inside it.
 */
#ifndef ONEHOP_MAPFILE_H
#define ONEHOP_MAPFILE_H

#include <stddef.h>

#include "buf.h"
#include "diag.h"

/* The largest map file read (an aliases file of a big site is well below). */
#define MAPFILE_MAX_SIZE (64u * 1024 * 1024)

struct mapfile_lines {
    const char *fname;
    const char *p, *end;
    unsigned lineno; /* number of the line last returned */
    struct buf line;
    struct diag *d;
};

void mapfile_lines_init(struct mapfile_lines *it, const char *fname, const char *text, size_t len,
                        struct diag *d);
/* The next line without its end, NUL-terminated and modifiable (valid until
 * the next call); it->lineno is its number. NULL at the end of the text. */
char *mapfile_next_line(struct mapfile_lines *it);
void mapfile_lines_free(struct mapfile_lines *it);

/* Read path into text (appending): 1 read, 0 missing, -1 reported to d. */
int mapfile_read(const char *path, struct buf *text, struct diag *d);

/* Cut a `#` comment that starts the line or follows white space. */
void mapfile_strip_comment(char *line);
/* Skip spaces and tabs; returns the first other byte. */
char *mapfile_skip_space(char *s);
/* The next word separated by spaces or tabs, NUL-terminated in place;
 * *pos moves past it. NULL when none is left. */
char *mapfile_next_word(char **pos);
/* 1 if s is only spaces and tabs. */
int mapfile_is_blank(const char *s);

/* Lower-case a domain in place and drop one trailing dot; returns 1 if it is
 * then a valid RFC 1123 host name (netaddr.h hostname_valid), else 0. */
int mapfile_domain_normalize(char *domain);
/* Compare a domain (any case, one trailing dot ignored) with a lower-case
 * name without trailing dot: 1 if it is that name, or for the second one,
 * 1 if it is a subdomain of it (at any depth: ends in "." name). */
int mapfile_domain_equal(const char *domain, const char *name);
/* key = domain lower-cased, without one trailing dot: how an index is asked. */
void mapfile_domain_key(struct buf *key, const char *domain);
int mapfile_domain_is_sub(const char *domain, const char *parent);

/*
 * strindex — a hash index from a string to a number, for duplicate checks
 * and lookups by name. Keys are not copied: each must stay alive and
 * unchanged while it is in the index. Case-sensitive.
 */
struct strindex_slot {
    const char *key; /* NULL: empty */
    size_t value;
};

struct strindex {
    struct strindex_slot *slots;
    size_t cap; /* 0 or a power of two */
    size_t n;
};

#define STRINDEX_INIT                                                                              \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* 1 and *value set if key is present, else 0. */
int strindex_get(const struct strindex *x, const char *key, size_t *value);
/* Add key (which must not be present). */
void strindex_put(struct strindex *x, const char *key, size_t value);
void strindex_free(struct strindex *x);

#endif
