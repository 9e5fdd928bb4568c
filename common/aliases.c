/*
 * aliases — parse the aliases file (Postfix aliases(5) syntax). See
 * aliases.h for the format and the contract.
 *
 * Physical lines are gathered into one logical entry (the first line and its
 * continuation lines) before the entry is parsed; each piece remembers its
 * line number so a mistake in a continuation line is reported there.
 */
#include "aliases.h"

#include <string.h>
#include <strings.h>

#include "mem.h"
#include "strparse.h"

struct segment {
    size_t offset; /* where the physical line starts in the entry text */
    unsigned line;
};

struct aliases_parser {
    struct aliases *a;
    struct mapfile_lines it;
    struct buf entry; /* the logical line being gathered */
    struct segment *seg;
    size_t nseg, seg_cap;
};

#define ERR_AT(p, line, ...) diag_add((p)->it.d, (p)->it.fname, (line), __VA_ARGS__)

/* The line on which byte `offset` of the entry was written. */
static unsigned line_at(const struct aliases_parser *p, size_t offset)
{
    size_t i = p->nseg - 1;
    while (i > 0 && p->seg[i].offset > offset)
        i--;
    return p->seg[i].line;
}

/* Where the next `stop` byte outside double quotes is, or the end of s.
 * Inside quotes a backslash escapes the next byte (RFC 5322 quoted-pair). */
static char *find_unquoted(char *s, char stop)
{
    int quoted = 0;
    for (; *s; s++) {
        if (quoted && *s == '\\' && s[1])
            s++;
        else if (*s == '"')
            quoted = !quoted;
        else if (!quoted && *s == stop)
            return s;
    }
    return s;
}

/* If s is one double-quoted string, its content without quotes and escapes
 * (a new string); else NULL. */
static char *unquote_whole(const char *s)
{
    if (s[0] != '"')
        return NULL;
    struct buf out = BUF_INIT;
    for (s++; *s; s++) {
        if (*s == '\\' && s[1]) {
            buf_addc(&out, *++s);
        } else if (*s == '"') {
            if (s[1])
                break;
            return buf_steal(&out);
        } else {
            buf_addc(&out, *s);
        }
    }
    buf_free(&out);
    return NULL;
}

/* ------------------------------------------------------------- targets ---- */

static void target_free(struct alias_target *t)
{
    free(t->value);
    if (t->kind == ALIAS_ADDRESS)
        addr_free(&t->addr);
}

/* The kind of a target from its first bytes (text already unquoted). */
static enum alias_target_kind target_kind(const char *text)
{
    if (text[0] == '|')
        return ALIAS_COMMAND;
    if (text[0] == '/')
        return ALIAS_FILE;
    if (strncasecmp(text, ":include:", 9) == 0)
        return ALIAS_INCLUDE;
    return ALIAS_ADDRESS;
}

static const char *const kind_names[] = {"address", "|command", "file", ":include:"};

/* The value of a |command, /file or :include: target: after "|" or ":include:". */
static const char *special_value(enum alias_target_kind kind, const char *text)
{
    if (kind == ALIAS_COMMAND)
        return text + 1;
    if (kind == ALIAS_INCLUDE)
        return mapfile_skip_space((char *)text + 9);
    return text;
}

/* What is wrong with a |command, /file or :include: target, or NULL. A path
 * with white space must be quoted: unquoted, it is most often two targets
 * with the comma between them forgotten. */
static const char *special_mistake(const struct alias_target *t, int quoted)
{
    if (mapfile_is_blank(t->value))
        return "is empty";
    if (!quoted && t->kind != ALIAS_COMMAND && strpbrk(t->value, " \t"))
        return "holds white space (put it in double quotes, or is a comma missing?)";
    return NULL;
}

static int parse_address_target(struct aliases_parser *p, const char *name, const char *text,
                                struct alias_target *t)
{
    const char *why = NULL;
    if (addr_parse(text, strlen(text), ADDR_ALLOW_BARE, &t->addr, &why) < 0) {
        ERR_AT(p, t->line, "%s: bad address \"%s\": %s", name, text, why ? why : "syntax error");
        return -1;
    }
    t->value = xstrdup(text);
    return 0;
}

/* One target, trimmed. Returns 0 and fills t, or -1 after a mistake. */
static int parse_target(struct aliases_parser *p, const char *name, const char *text, unsigned line,
                        struct alias_target *t)
{
    char *unquoted = unquote_whole(text);
    const char *body = unquoted ? unquoted : text;
    *t = (struct alias_target){.line = line};
    t->kind = target_kind(body);
    if (t->kind == ALIAS_ADDRESS) {
        free(unquoted); /* a quoted local part keeps its quotes */
        return parse_address_target(p, name, text, t);
    }
    t->value = xstrdup(special_value(t->kind, body));
    const char *mistake = special_mistake(t, unquoted != NULL);
    free(unquoted);
    if (!mistake)
        return 0;
    ERR_AT(p, line, "%s: %s target \"%s\" %s", name, kind_names[t->kind], text, mistake);
    free(t->value);
    return -1;
}

/* The comma-separated targets from `offset` of the entry text on. */
static int parse_targets(struct aliases_parser *p, struct alias *al, const char *shown,
                         size_t offset)
{
    int bad = 0;
    char *s = p->entry.s + offset;
    while (*s) {
        char *end = find_unquoted(s, ',');
        int last = *end == '\0';
        *end = '\0';
        char *text = str_trim(s);
        if (*text) {
            struct alias_target t;
            unsigned line = line_at(p, (size_t)(text - p->entry.s));
            if (parse_target(p, shown, text, line, &t) < 0) {
                bad = 1;
            } else {
                al->targets = xrealloc(al->targets, (al->ntargets + 1) * sizeof(t));
                al->targets[al->ntargets++] = t;
            }
        }
        s = last ? end : end + 1;
    }
    if (!al->ntargets && !bad) {
        ERR_AT(p, al->line, "%s: no targets (NAME: TARGET, TARGET...)", shown);
        bad = 1;
    }
    return bad ? -1 : 0;
}

/* --------------------------------------------------------------- entry ---- */

static void alias_free(struct alias *al)
{
    for (size_t i = 0; i < al->ntargets; i++)
        target_free(&al->targets[i]);
    free(al->targets);
    free(al->name);
}

/* The name before the colon: trimmed, unquoted, lower-cased. */
static char *parse_name(struct aliases_parser *p, char *text, unsigned line)
{
    char *name = str_trim(text);
    char *unquoted = unquote_whole(name);
    if (!unquoted && strpbrk(name, " \t\"")) {
        ERR_AT(p, line, "bad alias name \"%s\" (white space or quotes need double quotes)", name);
        return NULL;
    }
    if (!unquoted)
        unquoted = xstrdup(name);
    if (!*unquoted) {
        ERR_AT(p, line, "empty alias name");
        free(unquoted);
        return NULL;
    }
    return str_lower(unquoted);
}

static void add_alias(struct aliases_parser *p, struct alias *al)
{
    struct aliases *a = p->a;
    size_t first;
    if (strindex_get(&a->by_name, al->name, &first)) {
        ERR_AT(p, al->line, "duplicate alias \"%s\" (first at line %u)", al->name,
               a->v[first].line);
        alias_free(al);
        return;
    }
    a->v = xgrow(a->v, &a->cap, a->n + 1, sizeof(*a->v));
    a->v[a->n] = *al;
    strindex_put(&a->by_name, a->v[a->n].name, a->n);
    a->n++;
}

/* The gathered logical line: NAME: TARGET, TARGET... Targets are checked
 * even under a bad name, so that every mistake is reported. */
static int parse_entry(struct aliases_parser *p, struct alias *al)
{
    char *colon = find_unquoted(p->entry.s, ':');
    if (!*colon) {
        ERR_AT(p, al->line, "missing \":\" after the alias name (NAME: TARGET, TARGET...)");
        return -1;
    }
    *colon = '\0';
    size_t targets_at = (size_t)(colon + 1 - p->entry.s);
    al->name = parse_name(p, p->entry.s, al->line);
    int bad = al->name == NULL;
    const char *shown = al->name ? al->name : str_trim(p->entry.s);
    bad |= parse_targets(p, al, shown, targets_at) < 0;
    return bad ? -1 : 0;
}

static void finish_entry(struct aliases_parser *p)
{
    if (!p->nseg)
        return;
    struct alias al = {.line = p->seg[0].line};
    if (parse_entry(p, &al) == 0)
        add_alias(p, &al);
    else
        alias_free(&al);
    p->nseg = 0;
    buf_clear(&p->entry);
}

static void add_segment(struct aliases_parser *p, const char *line)
{
    p->seg = xgrow(p->seg, &p->seg_cap, p->nseg + 1, sizeof(*p->seg));
    p->seg[p->nseg].offset = p->entry.len;
    p->seg[p->nseg].line = p->it.lineno;
    p->nseg++;
    buf_adds(&p->entry, line);
}

/* A physical line: ignored, a continuation, or the start of an entry. */
static void take_line(struct aliases_parser *p, const char *line)
{
    const char *first = mapfile_skip_space((char *)line);
    if (!*first || *first == '#')
        return;
    if (first == line) {
        finish_entry(p);
        add_segment(p, line);
    } else if (p->nseg) {
        add_segment(p, line);
    } else {
        ERR_AT(p, p->it.lineno,
               "continuation line (starting with white space) with no entry "
               "before it");
    }
}

/* Feed every line of text to take (the parser's lines set up for it). */
static void parse_lines(struct aliases_parser *p, const char *fname, const char *text, size_t len,
                        struct diag *d, void (*take)(struct aliases_parser *, const char *))
{
    const char *line;
    mapfile_lines_init(&p->it, fname, text, len, d);
    while ((line = mapfile_next_line(&p->it)))
        take(p, line);
}

static void parser_free(struct aliases_parser *p)
{
    mapfile_lines_free(&p->it);
    buf_free(&p->entry);
    free(p->seg);
}

int aliases_parse(struct aliases *a, const char *fname, const char *text, size_t len,
                  struct diag *d)
{
    struct aliases_parser p = {.a = a};
    size_t before = d->n;
    parse_lines(&p, fname, text, len, d, take_line);
    finish_entry(&p);
    parser_free(&p);
    return d->n > before ? -1 : 0;
}

int aliases_load(struct aliases *a, const char *path, struct diag *d)
{
    struct buf text = BUF_INIT;
    int got = mapfile_read(path, &text, d);
    int status = got < 0 ? -1 : 0;
    if (got > 0)
        status = aliases_parse(a, path, text.s, text.len, d);
    buf_free(&text);
    return status;
}

void aliases_free(struct aliases *a)
{
    for (size_t i = 0; i < a->n; i++)
        alias_free(&a->v[i]);
    free(a->v);
    strindex_free(&a->by_name);
    *a = (struct aliases)ALIASES_INIT;
}

/* A line of an :include: file: every line that is not blank or `#` holds
 * targets, and its end separates them as a comma does. */
static void take_include_line(struct aliases_parser *p, const char *line)
{
    const char *first = mapfile_skip_space((char *)line);
    if (!*first || *first == '#')
        return;
    if (p->nseg)
        buf_addc(&p->entry, ',');
    add_segment(p, line);
}

int aliases_parse_include(struct alias *out, const char *fname, const char *text, size_t len,
                          struct diag *d)
{
    struct aliases_parser p = {.a = NULL};
    size_t before = d->n;
    parse_lines(&p, fname, text, len, d, take_include_line);
    *out = (struct alias){.name = xstrdup(fname), .line = 1};
    if (p.nseg)
        parse_targets(&p, out, fname, 0);
    parser_free(&p);
    return d->n > before ? -1 : 0;
}

void alias_entry_free(struct alias *al)
{
    alias_free(al);
    *al = (struct alias){0};
}

const struct alias *aliases_lookup(const struct aliases *a, const char *name)
{
    char *key = str_lower(xstrdup(name));
    size_t index;
    int found = strindex_get(&a->by_name, key, &index);
    free(key);
    return found ? &a->v[index] : NULL;
}
