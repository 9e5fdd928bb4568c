/*
 * strparse — strict parsers for scalar configuration and command-line values.
 * See strparse.h.
 *
 * Contract: each parser accepts the whole string or nothing. No sign, no
 * white space, no trailing junk, no silent overflow; on failure the output is
 * left untouched and *why names the reason (a static string).
 * Never: call strtoul/atoi (they accept signs, white space and wrap around).
 */
#include "strparse.h"

#include <string.h>
#include <strings.h>

#include "mem.h"

#define TEN_YEARS_SECONDS (10ULL * 365 * 86400)

static int ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int ascii_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ASCII only, whatever the locale (host names and keywords are ASCII). */
static char ascii_lower(char c)
{
    static const char lower[] = "abcdefghijklmnopqrstuvwxyz";
    if (c >= 'A' && c <= 'Z')
        return lower[c - 'A'];
    return c;
}

/* Read the leading decimal digits of s into *out; returns how many there were,
 * or 0 with *why set when there were none or the number overflows. */
static size_t read_digits(const char *s, uint64_t *out, const char **why)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; ascii_digit(s[i]); i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            *why = "number too large";
            return 0;
        }
        v = v * 10 + d;
    }
    if (i == 0) {
        *why = "not a number";
        return 0;
    }
    *out = v;
    return i;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **why)
{
    uint64_t v;
    size_t n = read_digits(s, &v, why);
    if (n == 0)
        return -1;
    if (s[n] != '\0') {
        *why = "not a number";
        return -1;
    }
    if (v < min || v > max) {
        *why = "out of range";
        return -1;
    }
    *out = v;
    return 0;
}

/* Multiply v by unit, refusing overflow beyond limit. */
static int scale(uint64_t v, uint64_t unit, uint64_t limit, uint64_t *out)
{
    if (v > limit / unit)
        return -1;
    *out = v * unit;
    return 0;
}

static uint64_t duration_unit(char suffix)
{
    switch (ascii_lower(suffix)) {
    case '\0':
    case 's':
        return 1;
    case 'm':
        return 60;
    case 'h':
        return 3600;
    case 'd':
        return 86400;
    default:
        return 0;
    }
}

int parse_duration(const char *s, uint64_t *seconds, const char **why)
{
    uint64_t v;
    size_t n = read_digits(s, &v, why);
    if (n == 0)
        return -1;
    uint64_t unit = duration_unit(s[n]);
    if (unit == 0 || (s[n] != '\0' && s[n + 1] != '\0')) {
        *why = "bad duration (use a number with an optional s, m, h or d suffix)";
        return -1;
    }
    if (scale(v, unit, TEN_YEARS_SECONDS, seconds) < 0) {
        *why = "duration longer than 10 years";
        return -1;
    }
    return 0;
}

static uint64_t size_unit(char suffix)
{
    switch (ascii_lower(suffix)) {
    case '\0':
        return 1;
    case 'k':
        return 1024;
    case 'm':
        return 1024ULL * 1024;
    case 'g':
        return 1024ULL * 1024 * 1024;
    default:
        return 0;
    }
}

int parse_size(const char *s, uint64_t *bytes, const char **why)
{
    uint64_t v;
    size_t n = read_digits(s, &v, why);
    if (n == 0)
        return -1;
    uint64_t unit = size_unit(s[n]);
    if (unit == 0 || (s[n] != '\0' && s[n + 1] != '\0')) {
        *why = "bad size (use a number of bytes with an optional k, m or g suffix)";
        return -1;
    }
    if (scale(v, unit, UINT64_MAX, bytes) < 0) {
        *why = "number too large";
        return -1;
    }
    return 0;
}

int parse_bool(const char *s, int *out, const char **why)
{
    static const struct {
        const char *word;
        int value;
    } words[] = {{"yes", 1}, {"no", 0},  {"true", 1}, {"false", 0},
                 {"on", 1},  {"off", 0}, {"1", 1},    {"0", 0}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasecmp(s, words[i].word) == 0) {
            *out = words[i].value;
            return 0;
        }
    }
    *why = "not a boolean (use yes or no)";
    return -1;
}

static int list_separator(char c)
{
    return c == ',' || ascii_space(c);
}

size_t split_list(const char *s, char ***words)
{
    char **v = NULL;
    size_t n = 0, cap = 0;
    while (*s) {
        while (*s && list_separator(*s))
            s++;
        size_t len = 0;
        while (s[len] && !list_separator(s[len]))
            len++;
        if (len == 0)
            break;
        v = xgrow(v, &cap, n + 1, sizeof(*v));
        v[n++] = xstrndup(s, len);
        s += len;
    }
    *words = v;
    return n;
}

void strlist_free(char **words, size_t n)
{
    if (!words)
        return;
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(words);
}

char *str_lower(char *s)
{
    for (char *p = s; *p; p++)
        *p = ascii_lower(*p);
    return s;
}

char *str_trim(char *s)
{
    while (ascii_space(*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && ascii_space(s[len - 1]))
        len--;
    s[len] = '\0';
    return s;
}
