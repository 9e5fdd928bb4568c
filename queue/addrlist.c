/*
 * addrlist — RFC 5322 3.4 address-list parser for `sendmail -t` and
 * sendmail's command-line recipients. See addrlist.h.
 *
 * Two passes: a lexer turns the field body into tokens (atoms, quoted
 * strings, domain literals, one-character specials), skipping folding white
 * space and comments (RFC 5322 3.2.2); a recursive-descent parser walks the
 * tokens following the grammar in addrlist.h.
 *
 * Must never: read past len, accept a NUL or control byte, or leave a
 * partial result in the caller's list after a syntax error.
 */
#include "addrlist.h"

#include <string.h>

#include "buf.h"
#include "mem.h"

enum tok_kind { TOK_ATOM, TOK_QSTRING, TOK_DLITERAL, TOK_SPECIAL };

struct token {
    enum tok_kind kind;
    char special; /* TOK_SPECIAL: one of < > : ; @ , . */
    size_t start, len;
};

struct parser {
    const char *s;
    size_t len, pos; /* lexer position in s */
    struct token *tok;
    size_t ntok, cap, i; /* parser position in tok */
    const char *why;
    struct addrlist *out;
};

/* ------------------------------------------------------------- lexer ---- */

/* RFC 5322 3.2.3 atext, plus RFC 6532 UTF8-non-ascii (any byte >= 0x80). */
static int is_atext(unsigned char c)
{
    if (c >= 0x80)
        return 1;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Folding white space (RFC 5322 3.2.2): the unfolded CR LF count as space. */
static int is_fws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_forbidden_control(unsigned char c)
{
    return (c < 0x20 && !is_fws(c)) || c == 0x7f;
}

static int fail(struct parser *p, const char *why)
{
    if (!p->why)
        p->why = why;
    return -1;
}

/* Skip from the opening "(" to its matching ")" (comments nest; RFC 5322 3.2.2). */
static int skip_comment(struct parser *p)
{
    int depth = 0;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos++];
        if (is_forbidden_control(c))
            return fail(p, "control character in comment");
        if (c == '\\') {
            if (p->pos >= p->len || p->s[p->pos] == '\0')
                return fail(p, "bad quoted-pair in comment");
            p->pos++;
        } else if (c == '(') {
            depth++;
        } else if (c == ')' && --depth == 0) {
            return 0;
        }
    }
    return fail(p, "unterminated comment");
}

/* Scan a quoted string or domain literal from its opening character to the
 * closing one, allowing quoted-pairs and folding white space inside. */
static int skip_delimited(struct parser *p, char close, const char *unterminated)
{
    p->pos++;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos++];
        if (is_forbidden_control(c))
            return fail(p, "control character in address");
        if (c == '\\') {
            if (p->pos >= p->len || p->s[p->pos] == '\0')
                return fail(p, "bad quoted-pair in address");
            p->pos++;
        } else if (c == (unsigned char)close) {
            return 0;
        } else if (close == ']' && c == '[') {
            return fail(p, "\"[\" inside a domain literal");
        }
    }
    return fail(p, unterminated);
}

static void push_token(struct parser *p, enum tok_kind kind, char special, size_t start)
{
    p->tok = xgrow(p->tok, &p->cap, p->ntok + 1, sizeof(*p->tok));
    p->tok[p->ntok].kind = kind;
    p->tok[p->ntok].special = special;
    p->tok[p->ntok].start = start;
    p->tok[p->ntok].len = p->pos - start;
    p->ntok++;
}

static int lex_one(struct parser *p)
{
    size_t start = p->pos;
    unsigned char c = (unsigned char)p->s[p->pos];
    if (is_fws(c)) {
        p->pos++;
        return 0;
    }
    if (c == '(')
        return skip_comment(p);
    if (c == '"') {
        if (skip_delimited(p, '"', "unterminated quoted string") < 0)
            return -1;
        push_token(p, TOK_QSTRING, 0, start);
        return 0;
    }
    if (c == '[') {
        if (skip_delimited(p, ']', "unterminated domain literal") < 0)
            return -1;
        push_token(p, TOK_DLITERAL, 0, start);
        return 0;
    }
    if (c != 0 && strchr("<>:;@,.", c)) {
        p->pos++;
        push_token(p, TOK_SPECIAL, (char)c, start);
        return 0;
    }
    if (!is_atext(c))
        return fail(p, c == ')'   ? "unbalanced \")\""
                       : c == ']' ? "unbalanced \"]\""
                                  : "invalid character in address");
    while (p->pos < p->len && is_atext((unsigned char)p->s[p->pos]))
        p->pos++;
    push_token(p, TOK_ATOM, 0, start);
    return 0;
}

static int lex(struct parser *p)
{
    while (p->pos < p->len)
        if (lex_one(p) < 0)
            return -1;
    return 0;
}

/* ------------------------------------------------------------ parser ---- */

static int at_special(const struct parser *p, char c)
{
    return p->i < p->ntok && p->tok[p->i].kind == TOK_SPECIAL && p->tok[p->i].special == c;
}

static int is_word(const struct token *t)
{
    return t->kind == TOK_ATOM || t->kind == TOK_QSTRING;
}

static int at_phrase_token(const struct parser *p)
{
    return p->i < p->ntok && (is_word(&p->tok[p->i]) || at_special(p, '.'));
}

/* Append tokens [from, to) as "word *("." word)" (RFC 5322 obs-local-part,
 * which includes dot-atom), white space between them dropped. */
static int add_dotted_words(struct parser *p, size_t from, size_t to, struct buf *out,
                            const char *why)
{
    for (size_t k = from; k < to; k++) {
        const struct token *t = &p->tok[k];
        int want_word = (k - from) % 2 == 0;
        if (want_word ? !is_word(t) : !(t->kind == TOK_SPECIAL && t->special == '.'))
            return fail(p, why);
        buf_add(out, p->s + t->start, t->len);
    }
    if (to == from || (to - from) % 2 == 0)
        return fail(p, why);
    return 0;
}

/* domain = dot-atom / domain-literal (RFC 5322 3.4.1); appends "@domain". */
static int parse_domain(struct parser *p, struct buf *addr)
{
    buf_addc(addr, '@');
    if (p->i < p->ntok && p->tok[p->i].kind == TOK_DLITERAL) {
        buf_add(addr, p->s + p->tok[p->i].start, p->tok[p->i].len);
        p->i++;
        return 0;
    }
    size_t from = p->i;
    while (p->i < p->ntok && (p->tok[p->i].kind == TOK_ATOM || at_special(p, '.')))
        p->i++;
    if (from == p->i)
        return fail(p, "missing domain after \"@\"");
    return add_dotted_words(p, from, p->i, addr, "malformed domain");
}

/* local-part ["@" domain] from the tokens [from, p->i), then the domain. */
static int finish_addr_spec(struct parser *p, size_t from)
{
    struct buf addr = BUF_INIT;
    int rc = add_dotted_words(p, from, p->i, &addr, "malformed local part");
    if (rc == 0 && at_special(p, '@')) {
        p->i++;
        rc = parse_domain(p, &addr);
    }
    if (rc == 0)
        addrlist_add(p->out, buf_cstr(&addr));
    buf_free(&addr);
    return rc;
}

/* obs-route = obs-domain-list ":" (RFC 5322 4.4), e.g. "@a,@b:" — dropped. */
static int skip_obs_route(struct parser *p)
{
    while (at_special(p, '@') || at_special(p, ',')) {
        if (at_special(p, ',')) {
            p->i++;
            continue;
        }
        p->i++;
        struct buf ignored = BUF_INIT;
        int rc = parse_domain(p, &ignored);
        buf_free(&ignored);
        if (rc < 0)
            return -1;
    }
    if (!at_special(p, ':'))
        return fail(p, "malformed source route");
    p->i++;
    return 0;
}

/* angle-addr after its "<" (RFC 5322 3.4, obs-angle-addr of 4.4). */
static int parse_angle_addr(struct parser *p)
{
    if (at_special(p, '>'))
        return fail(p, "empty address \"<>\"");
    if (at_special(p, '@') && skip_obs_route(p) < 0)
        return -1;
    size_t from = p->i;
    while (at_phrase_token(p))
        p->i++;
    if (from == p->i)
        return fail(p, "missing address inside \"<>\"");
    if (finish_addr_spec(p, from) < 0)
        return -1;
    if (!at_special(p, '>'))
        return fail(p, "missing \">\"");
    p->i++;
    return 0;
}

/* mailbox = name-addr / addr-spec; the phrase tokens are already skipped
 * from `from` to p->i. */
static int parse_mailbox_rest(struct parser *p, size_t from)
{
    if (at_special(p, '<')) {
        p->i++;
        return parse_angle_addr(p);
    }
    if (from == p->i)
        return fail(p, "missing address");
    /* addr-spec, or a bare local part when no "@" follows (sendmail) */
    return finish_addr_spec(p, from);
}

/* group-list up to and including ";" (a missing ";" at the end is tolerated). */
static int parse_group_rest(struct parser *p)
{
    while (p->i < p->ntok && !at_special(p, ';')) {
        if (at_special(p, ',')) {
            p->i++;
            continue;
        }
        size_t from = p->i;
        while (at_phrase_token(p))
            p->i++;
        if (at_special(p, ':'))
            return fail(p, "group inside a group");
        if (parse_mailbox_rest(p, from) < 0)
            return -1;
        if (p->i < p->ntok && !at_special(p, ',') && !at_special(p, ';'))
            return fail(p, "expected \",\" or \";\" in group");
    }
    if (at_special(p, ';'))
        p->i++;
    return 0;
}

static int parse_address(struct parser *p)
{
    size_t from = p->i;
    while (at_phrase_token(p))
        p->i++;
    if (at_special(p, ':')) {
        p->i++;
        return parse_group_rest(p);
    }
    return parse_mailbox_rest(p, from);
}

static int parse_address_list(struct parser *p)
{
    while (p->i < p->ntok) {
        if (at_special(p, ',')) {
            p->i++; /* obs-addr-list: empty element */
            continue;
        }
        if (parse_address(p) < 0)
            return -1;
        if (p->i < p->ntok && !at_special(p, ','))
            return fail(p, "expected \",\" between addresses");
    }
    return 0;
}

int addrlist_parse(const char *s, size_t len, struct addrlist *out, const char **why)
{
    struct parser p = {.s = s, .len = len, .out = out};
    size_t had = out->n;
    int rc = lex(&p);
    if (rc == 0)
        rc = parse_address_list(&p);
    free(p.tok);
    if (rc < 0) {
        while (out->n > had)
            free(out->v[--out->n]);
        *why = p.why;
    }
    return rc;
}

void addrlist_add(struct addrlist *l, const char *addr)
{
    l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
    l->v[l->n++] = xstrdup(addr);
}

void addrlist_free(struct addrlist *l)
{
    for (size_t k = 0; k < l->n; k++)
        free(l->v[k]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}
