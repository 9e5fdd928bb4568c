/*
 * addr — RFC 5321 mailbox and path parsing. See addr.h.
 *
 * The grammar applied (RFC 5321 4.1.2 and 4.1.3; RFC 6531 3.3 adds UTF-8):
 *
 *     Path          = "<" [ A-d-l ":" ] Mailbox ">"      (A-d-l is dropped)
 *     A-d-l         = At-domain *( "," At-domain ),  At-domain = "@" Domain
 *     Mailbox       = Local-part "@" ( Domain / address-literal )
 *     Local-part    = Dot-string / Quoted-string
 *     Dot-string    = Atom *( "." Atom ),  Atom = 1*atext
 *     Quoted-string = DQUOTE *( qtextSMTP / quoted-pairSMTP ) DQUOTE
 *     Domain        = sub-domain *( "." sub-domain )   (RFC 1123 labels)
 *     address-literal = "[" ( IPv4 / "IPv6:" IPv6 / Standardized-tag ":" 1*dcontent ) "]"
 *
 * Without ADDR_PATH the angle brackets are optional: "<u@d>" and "u@d" are
 * both accepted; with it they are required. Limits (4.5.3.1): local part 64
 * octets as written, domain 255, path 256 with its brackets (so a mailbox
 * written without brackets may have at most 254).
 *
 * The result keeps the local part as written (quotes and escapes included:
 * RFC 5321 2.4, the local part is the receiving host's business) and lower-
 * cases the domain, except the "IPv6" tag of a literal (kept as "IPv6") and
 * the content of a general literal (kept as written).
 *
 * Must never: read s beyond len, accept a NUL byte, touch *out or leave
 * anything allocated on failure, or look anything up.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <string.h>

#include "mem.h"

enum literal_kind { LIT_NONE, LIT_IPV4, LIT_IPV6, LIT_GENERAL };

static int fail(const char **why, const char *reason)
{
    *why = reason;
    return -1;
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_let_dig(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

/* RFC 5322 3.2.3 atext (RFC 5321 4.1.2 Atom). */
static int is_atext(unsigned char c)
{
    return is_let_dig(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 5321 4.1.2 qtextSMTP: %d32-33 / %d35-91 / %d93-126. */
static int is_qtext(unsigned char c)
{
    return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

/* RFC 5321 4.1.3 dcontent: %d33-90 / %d94-126. */
static int is_dcontent(unsigned char c)
{
    return c >= 33 && c <= 126 && c != '[' && c != '\\' && c != ']';
}

/* Length of the well-formed UTF-8 character at p[0..n) (RFC 3629 4: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_char_len(const unsigned char *p, size_t n)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (p[0] == 0xe0)
        lo = 0xa0;
    else if (p[0] == 0xed)
        hi = 0x9f;
    else if (p[0] == 0xf0)
        lo = 0x90;
    else if (p[0] == 0xf4)
        hi = 0x8f;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

/* A byte >= 0x80 at s[i]: allowed only with ADDR_ALLOW_UTF8 (RFC 6531 3.3,
 * UTF8-non-ascii) and only as part of well-formed UTF-8. Sets *adv to the
 * character's length. */
static int check_utf8_at(const char *s, size_t n, size_t i, unsigned flags, size_t *adv,
                         const char **why)
{
    if (!(flags & ADDR_ALLOW_UTF8))
        return fail(why, "non-ASCII character in address (UTF-8 not allowed here)");
    *adv = utf8_char_len((const unsigned char *)s + i, n - i);
    if (*adv == 0)
        return fail(why, "invalid UTF-8 in address");
    return 0;
}

/* ---------------------------------------------------------- local part ---- */

/* Dot-string: s[0..n) is the whole local part (it ends at the first "@",
 * which atext does not contain). */
static int check_dot_string(const char *s, size_t n, unsigned flags, const char **why)
{
    if (n == 0)
        return fail(why, "empty local part");
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t adv = 1;
        if (c == '.' && i == 0)
            return fail(why, "local part starts with a dot");
        if (c == '.' && s[i - 1] == '.')
            return fail(why, "two dots in a row in local part");
        if (c >= 0x80 && check_utf8_at(s, n, i, flags, &adv, why) < 0)
            return -1;
        if (c < 0x80 && c != '.' && !is_atext(c))
            return fail(why, "invalid character in local part");
        i += adv;
    }
    if (s[n - 1] == '.')
        return fail(why, "local part ends with a dot");
    return 0;
}

/* Quoted-string starting at s[0] == '"'; sets *end just past the closing quote. */
static int scan_quoted_string(const char *s, size_t n, unsigned flags, size_t *end,
                              const char **why)
{
    size_t i = 1;
    while (i < n && s[i] != '"') {
        unsigned char c = (unsigned char)s[i];
        size_t adv = 1;
        if (c == '\\') {
            /* quoted-pairSMTP = %d92 %d32-126 */
            if (i + 1 == n)
                return fail(why, "unterminated quoted local part");
            if ((unsigned char)s[i + 1] < 32 || (unsigned char)s[i + 1] > 126)
                return fail(why, "invalid escaped character in quoted local part");
            adv = 2;
        } else if (c >= 0x80) {
            if (check_utf8_at(s, n, i, flags, &adv, why) < 0)
                return -1;
        } else if (!is_qtext(c)) {
            return fail(why, "invalid character in quoted local part");
        }
        i += adv;
    }
    if (i >= n)
        return fail(why, "unterminated quoted local part");
    *end = i + 1;
    return 0;
}

/* Finds and checks the local part at the start of s[0..n); *local_n is its length. */
static int scan_local_part(const char *s, size_t n, unsigned flags, size_t *local_n,
                           const char **why)
{
    if (n > 0 && s[0] == '"') {
        if (scan_quoted_string(s, n, flags, local_n, why) < 0)
            return -1;
        if (*local_n < n && s[*local_n] != '@')
            return fail(why, "characters after quoted local part");
    } else {
        const char *at = memchr(s, '@', n);
        *local_n = at ? (size_t)(at - s) : n;
        if (check_dot_string(s, *local_n, flags, why) < 0)
            return -1;
    }
    if (*local_n > ADDR_LOCAL_MAX)
        return fail(why, "local part longer than 64 octets");
    return 0;
}

/* -------------------------------------------------------------- domain ---- */

/* One RFC 1123 label: Let-dig [ Ldh-str ], at most 63 octets. A label that
 * holds UTF-8 (a U-label, RFC 6531) is not held to 63 octets here: the limit
 * applies to its A-label form, which can be shorter. */
static int check_label(const char *s, size_t n, unsigned flags, const char **why)
{
    int ascii = 1;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t adv = 1;
        if (c >= 0x80) {
            if (check_utf8_at(s, n, i, flags, &adv, why) < 0)
                return -1;
            ascii = 0;
        } else if (!is_let_dig(c) && c != '-') {
            return fail(why, "invalid character in domain");
        }
        i += adv;
    }
    if (s[0] == '-' || s[n - 1] == '-')
        return fail(why, "domain label starts or ends with a hyphen");
    if (ascii && n > 63)
        return fail(why, "domain label longer than 63 octets");
    return 0;
}

/* Domain = sub-domain *("." sub-domain): no empty label, no trailing dot. */
static int check_domain_name(const char *s, size_t n, unsigned flags, const char **why)
{
    if (n == 0)
        return fail(why, "empty domain");
    if (n > ADDR_DOMAIN_MAX)
        return fail(why, "domain longer than 255 octets");
    size_t start = 0;
    for (;;) {
        const char *dot = memchr(s + start, '.', n - start);
        size_t end = dot ? (size_t)(dot - s) : n;
        if (end == start && start == 0)
            return fail(why, "domain starts with a dot");
        if (end == start && start == n)
            return fail(why, "domain ends with a dot");
        if (end == start)
            return fail(why, "two dots in a row in domain");
        if (check_label(s + start, end - start, flags, why) < 0)
            return -1;
        if (!dot)
            return 0;
        start = end + 1;
    }
}

/* Standardized-tag = Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig. */
static int is_ldh_str(const char *s, size_t n)
{
    if (n == 0 || !is_let_dig((unsigned char)s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_let_dig((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* inet_pton on s[0..n); the copy is bounded by the buffer, never by n. */
static int ip_text_valid(int family, const char *s, size_t n)
{
    char text[64];
    unsigned char bin[16];
    if (n >= sizeof(text))
        return 0;
    memcpy(text, s, n);
    text[n] = '\0';
    return inet_pton(family, text, bin) == 1;
}

/* RFC 5321 4.1.3: the content c[0..n) of "[...]". */
static int check_literal_content(const char *c, size_t n, enum literal_kind *kind, const char **why)
{
    if (n == 0)
        return fail(why, "empty address literal");
    const char *colon = memchr(c, ':', n);
    if (!colon) {
        *kind = LIT_IPV4;
        return ip_text_valid(AF_INET, c, n) ? 0 : fail(why, "invalid IPv4 address literal");
    }
    size_t tag_n = (size_t)(colon - c), rest_n = n - tag_n - 1;
    if (tag_n == 4 && strncasecmp(c, "IPv6", 4) == 0) {
        *kind = LIT_IPV6;
        return ip_text_valid(AF_INET6, colon + 1, rest_n)
                   ? 0
                   : fail(why, "invalid IPv6 address literal");
    }
    if (!is_ldh_str(c, tag_n))
        return fail(why, "invalid address literal tag");
    if (rest_n == 0)
        return fail(why, "empty general address literal");
    for (size_t i = 0; i < rest_n; i++)
        if (!is_dcontent((unsigned char)colon[1 + i]))
            return fail(why, "invalid character in address literal");
    *kind = LIT_GENERAL;
    return 0;
}

static int check_literal(const char *s, size_t n, enum literal_kind *kind, const char **why)
{
    const char *close = memchr(s, ']', n);
    if (!close)
        return fail(why, "unterminated address literal");
    if ((size_t)(close - s) != n - 1)
        return fail(why, "characters after address literal");
    return check_literal_content(s + 1, n - 2, kind, why);
}

/* The part after "@": a domain name or an address literal. */
static int check_domain(const char *s, size_t n, unsigned flags, enum literal_kind *kind,
                        const char **why)
{
    *kind = LIT_NONE;
    if (n > ADDR_DOMAIN_MAX)
        return fail(why, "domain longer than 255 octets");
    if (n > 0 && s[0] == '[')
        return check_literal(s, n, kind, why);
    return check_domain_name(s, n, flags, why);
}

/* Domain names are case-insensitive (RFC 5321 2.4): lower-case them, and the
 * address part of an IPv6 literal, whose tag is written "IPv6". */
static char *canonical_domain(const char *s, size_t n, enum literal_kind kind)
{
    char *d = xstrndup(s, n);
    if (kind == LIT_GENERAL)
        return d;
    for (char *p = d; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (kind == LIT_IPV6) {
        d[1] = 'I'; /* "[ipv6:" becomes "[IPv6:" */
        d[2] = 'P';
    }
    return d;
}

/* ------------------------------------------------------------- mailbox ---- */

/* Mailbox in exactly s[0..n); fills m (allocating) only when all is valid. */
static int parse_mailbox(const char *s, size_t n, unsigned flags, struct mailaddr *m,
                         const char **why)
{
    size_t local_n;
    if (scan_local_part(s, n, flags, &local_n, why) < 0)
        return -1;
    if (local_n == n) {
        if (!(flags & ADDR_ALLOW_BARE))
            return fail(why, "missing @domain");
        m->local = xstrndup(s, n);
        return 0;
    }
    enum literal_kind kind;
    const char *dom = s + local_n + 1;
    size_t dom_n = n - local_n - 1;
    if (check_domain(dom, dom_n, flags, &kind, why) < 0)
        return -1;
    m->local = xstrndup(s, local_n);
    m->domain = canonical_domain(dom, dom_n, kind);
    m->is_literal = kind != LIT_NONE;
    return 0;
}

/* RFC 5321 4.1.2 A-d-l ":" at the start of s; *used is its length with the
 * colon. Appendix C: the route is to be ignored, so it is only checked. */
static int skip_source_route(const char *s, size_t n, unsigned flags, size_t *used,
                             const char **why)
{
    size_t i = 0;
    for (;;) {
        if (i >= n || s[i] != '@')
            return fail(why, "invalid source route");
        size_t start = ++i;
        while (i < n && s[i] != ',' && s[i] != ':')
            i++;
        if (i == n)
            return fail(why, "source route without a colon");
        if (check_domain_name(s + start, i - start, flags, why) < 0)
            return fail(why, "invalid domain in source route");
        if (s[i++] == ':') {
            *used = i;
            return 0;
        }
    }
}

static int set_null(unsigned flags, struct mailaddr *m, const char **why)
{
    if (!(flags & ADDR_ALLOW_NULL))
        return fail(why, "null address <> not allowed");
    m->local = xstrdup("");
    m->is_null = 1;
    return 0;
}

/* Path = "<" [ A-d-l ":" ] Mailbox ">" , or the null path "<>". */
static int parse_path(const char *s, size_t n, unsigned flags, struct mailaddr *m, const char **why)
{
    if (n < 2 || s[n - 1] != '>')
        return fail(why, "path does not end with >");
    const char *in = s + 1;
    size_t in_n = n - 2, route_n = 0;
    if (in_n == 0)
        return set_null(flags, m, why);
    if (in[0] == '@' && skip_source_route(in, in_n, flags, &route_n, why) < 0)
        return -1;
    if (route_n == in_n)
        return fail(why, "source route without a mailbox");
    if (parse_mailbox(in + route_n, in_n - route_n, flags, m, why) < 0)
        return -1;
    /* Checked last, so that a too long local part or domain is named. */
    if (n > ADDR_PATH_MAX) {
        addr_free(m);
        return fail(why, "path longer than 256 octets");
    }
    return 0;
}

/* A mailbox written without angle brackets (only without ADDR_PATH). */
static int parse_bare(const char *s, size_t n, unsigned flags, struct mailaddr *m, const char **why)
{
    if (n == 0)
        return (flags & ADDR_ALLOW_NULL) ? set_null(flags, m, why) : fail(why, "empty address");
    if (parse_mailbox(s, n, flags, m, why) < 0)
        return -1;
    /* RFC 5321 4.5.3.1.3: it must still fit in a 256-octet path with "<>". */
    if (n > ADDR_PATH_MAX - 2) {
        addr_free(m);
        return fail(why, "address longer than 254 octets");
    }
    return 0;
}

int addr_parse(const char *s, size_t len, unsigned flags, struct mailaddr *out, const char **why)
{
    const char *unused;
    struct mailaddr m = {0};
    int rc;
    if (!why)
        why = &unused;
    if (len > 0 && memchr(s, '\0', len))
        return fail(why, "NUL byte in address");
    if (len > 0 && s[0] == '<')
        rc = parse_path(s, len, flags, &m, why);
    else if (flags & ADDR_PATH)
        rc = fail(why, "path does not start with <");
    else
        rc = parse_bare(s, len, flags, &m, why);
    if (rc == 0)
        *out = m;
    return rc;
}

void addr_free(struct mailaddr *a)
{
    free(a->local);
    free(a->domain);
    a->local = a->domain = NULL;
    a->is_null = a->is_literal = 0;
}

void addr_format(const struct mailaddr *a, struct buf *out)
{
    if (a->is_null)
        return;
    buf_adds(out, a->local);
    if (a->domain) {
        buf_addc(out, '@');
        buf_adds(out, a->domain);
    }
}

int addr_domain_valid(const char *s, size_t len)
{
    const char *why;
    enum literal_kind kind;
    if (len > 0 && memchr(s, '\0', len))
        return 0;
    return check_domain(s, len, 0, &kind, &why) == 0;
}

void addr_local_unquoted(const struct mailaddr *a, struct buf *out)
{
    const char *l = a->local;
    size_t n = strlen(l);
    if (n < 2 || l[0] != '"') {
        buf_add(out, l, n);
        return;
    }
    /* Quoted-string: drop the quotes, keep the character after each "\". */
    for (size_t i = 1; i + 1 < n; i++) {
        if (l[i] == '\\' && i + 2 < n)
            i++;
        buf_addc(out, l[i]);
    }
}
