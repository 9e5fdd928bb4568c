/*
 * json — the smallest JSON writer onehop needs for `--json` output: string
 * literals escaped per RFC 8259 section 7, appended to a struct buf.
 *
 * Contract: the output is always valid JSON text in valid UTF-8, whatever the
 * input bytes. `"` and `\` are escaped, control characters (U+0000..U+001F
 * and U+007F) become \b \f \n \r \t or \u00XX, well-formed UTF-8 sequences
 * are copied as they are, and every byte that is not part of a well-formed
 * UTF-8 sequence (stray continuation bytes, overlong forms, surrogates, code
 * points above U+10FFFF, truncated sequences) becomes \u00XX, so a queue
 * file with Latin-1 headers still lists. Never reads past len.
 */
#ifndef ONEHOP_JSON_H
#define ONEHOP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Append s[0..len) as a quoted JSON string. */
void json_add_string(struct buf *out, const char *s, size_t len);
/* The same for a NUL-terminated string; NULL is written as null. */
void json_add_cstr(struct buf *out, const char *s);
/* Append "key": (the key escaped as above), preceded by a comma unless it
 * is the first member of its object (out ends in '{'). */
void json_add_key(struct buf *out, const char *key);
/* "key":value members, separated as json_add_key does. */
void json_field_cstr(struct buf *out, const char *key, const char *s);
void json_field_uint(struct buf *out, const char *key, uint64_t v);
void json_field_bool(struct buf *out, const char *key, int on);
/* Append an unsigned integer / a signed integer. */
void json_add_uint(struct buf *out, uint64_t v);
void json_add_int(struct buf *out, int64_t v);

#endif
