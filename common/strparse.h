/*
 * strparse — strict parsers for the scalar values of the configuration and
 * of the command line. Each takes a NUL-terminated string, accepts the whole
 * string or nothing (no trailing junk, no sign where none is allowed, no
 * overflow), and on failure returns -1 and sets *why to a static English
 * reason suitable for "FILE:LINE: KEY: REASON".
 */
#ifndef ONEHOP_STRPARSE_H
#define ONEHOP_STRPARSE_H

#include <stddef.h>
#include <stdint.h>

/* Decimal unsigned integer in [min, max]. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **why);
/* Duration: a decimal number with an optional suffix s, m, h, d (SPEC 3); a bare
 * number is seconds. Result in seconds, at most 10 years. */
int parse_duration(const char *s, uint64_t *seconds, const char **why);
/* Size in bytes: a number with an optional suffix k, m, g (powers of 1024). */
int parse_size(const char *s, uint64_t *bytes, const char **why);
/* yes/no, true/false, on/off, 1/0 (case-insensitive). */
int parse_bool(const char *s, int *out, const char **why);

/* Split a configuration list value ("a, b c,d") into words; returns the
 * number of words, each a new string in *words (free with strlist_free). */
size_t split_list(const char *s, char ***words);
void strlist_free(char **words, size_t n);

/* ASCII lower-casing in place; returns s. */
char *str_lower(char *s);
/* Trim ASCII white space at both ends, in place; returns the start. */
char *str_trim(char *s);

#endif
