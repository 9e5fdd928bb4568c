/*
 * mapfile — lines, words, domains and a string index for the map parsers.
 * See mapfile.h for the contract.
 */
#include "mapfile.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "mem.h"
#include "netaddr.h"
#include "safeio.h"
#include "strparse.h"

void mapfile_lines_init(struct mapfile_lines *it, const char *fname, const char *text, size_t len,
                        struct diag *d)
{
    it->fname = fname;
    it->p = text;
    it->end = text + len;
    it->lineno = 0;
    it->line = (struct buf)BUF_INIT;
    it->d = d;
}

/* 0 if every byte is printable, a tab or part of a UTF-8 sequence; else the
 * first offending byte (NUL reported as 0x100 so that 0 means "clean"). */
static unsigned first_control_byte(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0)
            return 0x100;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return c;
    }
    return 0;
}

/* Copy the next physical line into it->line; 0 at the end of the text. */
static int take_line(struct mapfile_lines *it)
{
    if (it->p >= it->end)
        return 0;
    const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
    size_t n = nl ? (size_t)(nl - it->p) : (size_t)(it->end - it->p);
    buf_set(&it->line, it->p, n);
    it->p += nl ? n + 1 : n;
    if (it->line.len && it->line.s[it->line.len - 1] == '\r')
        buf_truncate(&it->line, it->line.len - 1);
    it->lineno++;
    return 1;
}

char *mapfile_next_line(struct mapfile_lines *it)
{
    while (take_line(it)) {
        buf_cstr(&it->line); /* storage exists even for an empty line */
        unsigned bad = first_control_byte(it->line.s, it->line.len);
        if (!bad)
            return it->line.s;
        if (bad == 0x100)
            diag_add(it->d, it->fname, it->lineno, "NUL byte in line; line ignored");
        else
            diag_add(it->d, it->fname, it->lineno, "control character 0x%02x in line; line ignored",
                     bad);
    }
    return NULL;
}

void mapfile_lines_free(struct mapfile_lines *it)
{
    buf_free(&it->line);
}

int mapfile_read(const char *path, struct buf *text, struct diag *d)
{
    if (read_file(path, text, MAPFILE_MAX_SIZE) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    if (errno == EFBIG)
        diag_add(d, path, 0, "cannot read: larger than %u bytes", MAPFILE_MAX_SIZE);
    else
        diag_add(d, path, 0, "cannot read: %s", strerror(errno));
    return -1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

void mapfile_strip_comment(char *line)
{
    for (char *s = line; *s; s++) {
        if (*s == '#' && (s == line || is_space(s[-1]))) {
            *s = '\0';
            return;
        }
    }
}

char *mapfile_skip_space(char *s)
{
    while (is_space(*s))
        s++;
    return s;
}

char *mapfile_next_word(char **pos)
{
    char *w = mapfile_skip_space(*pos);
    if (!*w) {
        *pos = w;
        return NULL;
    }
    char *e = w;
    while (*e && !is_space(*e))
        e++;
    *pos = *e ? e + 1 : e;
    *e = '\0';
    return w;
}

int mapfile_is_blank(const char *s)
{
    while (is_space(*s))
        s++;
    return *s == '\0';
}

int mapfile_domain_normalize(char *domain)
{
    size_t n = strlen(domain);
    if (n > 1 && domain[n - 1] == '.' && domain[n - 2] != '.')
        domain[--n] = '\0';
    for (char *s = domain; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
    return n > 0 && hostname_valid(domain);
}

void mapfile_domain_key(struct buf *key, const char *domain)
{
    buf_sets(key, domain);
    str_lower(key->s);
    if (key->len && key->s[key->len - 1] == '.')
        buf_truncate(key, key->len - 1);
}

/* Length of domain without one trailing dot. */
static size_t domain_len(const char *domain)
{
    size_t n = strlen(domain);
    return n > 0 && domain[n - 1] == '.' ? n - 1 : n;
}

int mapfile_domain_equal(const char *domain, const char *name)
{
    size_t n = domain_len(domain);
    return n == strlen(name) && strncasecmp(domain, name, n) == 0;
}

int mapfile_domain_is_sub(const char *domain, const char *parent)
{
    size_t n = domain_len(domain), pn = strlen(parent);
    /* LABEL "." parent: at least one byte and a dot before parent */
    if (n < pn + 2 || domain[n - pn - 1] != '.')
        return 0;
    return strncasecmp(domain + n - pn, parent, pn) == 0;
}

/* FNV-1a, 64 bits folded to size_t. */
static size_t hash_string(const char *s)
{
    uint64_t h = 14695981039346656037u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211u;
    }
    return (size_t)(h ^ (h >> 32));
}

static size_t find_slot(const struct strindex_slot *slots, size_t cap, const char *key)
{
    size_t i = hash_string(key) & (cap - 1);
    while (slots[i].key && strcmp(slots[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

int strindex_get(const struct strindex *x, const char *key, size_t *value)
{
    if (!x->cap)
        return 0;
    size_t i = find_slot(x->slots, x->cap, key);
    if (!x->slots[i].key)
        return 0;
    *value = x->slots[i].value;
    return 1;
}

static void strindex_grow(struct strindex *x)
{
    size_t cap = x->cap ? x->cap * 2 : 16;
    struct strindex_slot *slots = xcalloc(cap, sizeof(*slots));
    for (size_t i = 0; i < x->cap; i++)
        if (x->slots[i].key)
            slots[find_slot(slots, cap, x->slots[i].key)] = x->slots[i];
    free(x->slots);
    x->slots = slots;
    x->cap = cap;
}

void strindex_put(struct strindex *x, const char *key, size_t value)
{
    /* at most half full, so that probes stay short and always end */
    if ((x->n + 1) * 2 > x->cap)
        strindex_grow(x);
    size_t i = find_slot(x->slots, x->cap, key);
    x->slots[i].key = key;
    x->slots[i].value = value;
    x->n++;
}

void strindex_free(struct strindex *x)
{
    free(x->slots);
    *x = (struct strindex)STRINDEX_INIT;
}
