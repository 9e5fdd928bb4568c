/*
 * test_addr — the RFC 5321 mailbox parser (common/addr.h) against a table of
 * good and bad addresses, one cmocka test per row: the expected local part,
 * domain and flags for each good one, the exact reason for each bad one.
 * Every input is copied into a heap block of exactly its length first, so a
 * read past `len` is caught by AddressSanitizer (make SAN=1).
 */
#include "rowtest.h"

#include <string.h>

#include "addr.h"

enum { P = ADDR_PATH, N = ADDR_ALLOW_NULL, B = ADDR_ALLOW_BARE, U = ADDR_ALLOW_UTF8 };

struct addr_row {
    const char *in;
    size_t len;
    unsigned flags;
    const char *local;  /* expected on success */
    const char *domain; /* expected on success; NULL: none */
    int is_null, is_literal;
    const char *why; /* NULL: must parse */
};

/* sizeof keeps NUL bytes written inside the literal. */
#define GOOD(in, fl, lo, dom)                                                                      \
    {                                                                                              \
        in, sizeof(in) - 1, fl, lo, dom, 0, 0, NULL                                                \
    }
#define GOOD_LIT(in, fl, lo, dom)                                                                  \
    {                                                                                              \
        in, sizeof(in) - 1, fl, lo, dom, 0, 1, NULL                                                \
    }
#define GOOD_NULL(in, fl)                                                                          \
    {                                                                                              \
        in, sizeof(in) - 1, fl, "", NULL, 1, 0, NULL                                               \
    }
#define BAD(in, fl, why)                                                                           \
    {                                                                                              \
        in, sizeof(in) - 1, fl, NULL, NULL, 0, 0, why                                              \
    }

static const char R_NUL[] = "NUL byte in address";
static const char R_EMPTY[] = "empty address";
static const char R_NULLPATH[] = "null address <> not allowed";
static const char R_NOLT[] = "path does not start with <";
static const char R_NOGT[] = "path does not end with >";
static const char R_NOAT[] = "missing @domain";
static const char R_LEMPTY[] = "empty local part";
static const char R_LDOT0[] = "local part starts with a dot";
static const char R_LDOT1[] = "local part ends with a dot";
static const char R_LDOTS[] = "two dots in a row in local part";
static const char R_LCHAR[] = "invalid character in local part";
static const char R_QAFTER[] = "characters after quoted local part";
static const char R_QOPEN[] = "unterminated quoted local part";
static const char R_QCHAR[] = "invalid character in quoted local part";
static const char R_QESC[] = "invalid escaped character in quoted local part";
static const char R_DEMPTY[] = "empty domain";
static const char R_DDOT0[] = "domain starts with a dot";
static const char R_DDOT1[] = "domain ends with a dot";
static const char R_DDOTS[] = "two dots in a row in domain";
static const char R_DHYPH[] = "domain label starts or ends with a hyphen";
static const char R_DCHAR[] = "invalid character in domain";
static const char R_V4[] = "invalid IPv4 address literal";
static const char R_V6[] = "invalid IPv6 address literal";
static const char R_LITOPEN[] = "unterminated address literal";
static const char R_LITAFTER[] = "characters after address literal";
static const char R_LITEMPTY[] = "empty address literal";
static const char R_TAG[] = "invalid address literal tag";
static const char R_GENEMPTY[] = "empty general address literal";
static const char R_GENCHAR[] = "invalid character in address literal";
static const char R_ROUTE[] = "invalid source route";
static const char R_ROUTECOLON[] = "source route without a colon";
static const char R_ROUTEDOM[] = "invalid domain in source route";
static const char R_ROUTEMBOX[] = "source route without a mailbox";
static const char R_8BIT[] = "non-ASCII character in address (UTF-8 not allowed here)";
static const char R_UTF8[] = "invalid UTF-8 in address";
static const char R_LLONG[] = "local part longer than 64 octets";
static const char R_DLONG[] = "domain longer than 255 octets";
static const char R_LABEL[] = "domain label longer than 63 octets";
static const char R_PLONG[] = "path longer than 256 octets";
static const char R_ALONG[] = "address longer than 254 octets";

static const struct addr_row rows[] = {
    /* plain Dot-string mailboxes; the domain is lower-cased, the local part not */
    GOOD("user@example.com", 0, "user", "example.com"),
    GOOD("User.Name@Example.COM", 0, "User.Name", "example.com"),
    GOOD("a@b", 0, "a", "b"),
    GOOD("first.middle.last@example.com", 0, "first.middle.last", "example.com"),
    GOOD("!#$%&'*+-/=?^_`{|}~@example.com", 0, "!#$%&'*+-/=?^_`{|}~", "example.com"),
    GOOD("user@localhost", 0, "user", "localhost"),
    GOOD("user@sub-domain.example-1.com", 0, "user", "sub-domain.example-1.com"),
    GOOD("user@123.4example.net", 0, "user", "123.4example.net"),
    GOOD("user@xn--bcher-kva.example", 0, "user", "xn--bcher-kva.example"),
    /* Quoted-string local parts keep their quotes and escapes */
    GOOD("\"john doe\"@example.com", 0, "\"john doe\"", "example.com"),
    GOOD("\"a\\\"b\"@example.com", 0, "\"a\\\"b\"", "example.com"),
    GOOD("\"a\\\\b\"@example.com", 0, "\"a\\\\b\"", "example.com"),
    GOOD("\"\\ \"@example.com", 0, "\"\\ \"", "example.com"),
    GOOD("\"\"@example.com", 0, "\"\"", "example.com"),
    GOOD("\".dot..dot.\"@example.com", 0, "\".dot..dot.\"", "example.com"),
    GOOD("\"a@b\"@example.com", 0, "\"a@b\"", "example.com"),
    GOOD("\"<>()[]:;,\"@example.com", 0, "\"<>()[]:;,\"", "example.com"),
    /* paths */
    GOOD("<user@example.com>", P, "user", "example.com"),
    GOOD("<user@example.com>", 0, "user", "example.com"),
    GOOD("<\"a>b\"@example.com>", P, "\"a>b\"", "example.com"),
    GOOD("<@relay.example:user@example.com>", P, "user", "example.com"),
    GOOD("<@a.example,@B.example:user@Example.com>", P, "user", "example.com"),
    GOOD("<@relay.example:user@example.com>", 0, "user", "example.com"),
    /* the null path */
    GOOD_NULL("<>", P | N),
    GOOD_NULL("<>", N),
    GOOD_NULL("", N),
    BAD("<>", P, R_NULLPATH),
    BAD("<>", 0, R_NULLPATH),
    BAD("", 0, R_EMPTY),
    BAD("", P | N, R_NOLT),
    /* bare local parts */
    GOOD("postmaster", B, "postmaster", NULL),
    GOOD("<Postmaster>", P | B, "Postmaster", NULL),
    GOOD("\"quoted bare\"", B, "\"quoted bare\"", NULL),
    BAD("postmaster", 0, R_NOAT),
    BAD("<postmaster>", P, R_NOAT),
    BAD("postmaster", P | B, R_NOLT),
    /* address literals, RFC 5321 4.1.3 */
    GOOD_LIT("user@[192.0.2.1]", 0, "user", "[192.0.2.1]"),
    GOOD_LIT("<user@[127.0.0.1]>", P, "user", "[127.0.0.1]"),
    GOOD_LIT("user@[IPv6:2001:DB8::1]", 0, "user", "[IPv6:2001:db8::1]"),
    GOOD_LIT("user@[ipv6:::1]", 0, "user", "[IPv6:::1]"),
    GOOD_LIT("user@[IPv6:::ffff:192.0.2.1]", 0, "user", "[IPv6:::ffff:192.0.2.1]"),
    GOOD_LIT("user@[IPv6:2001:db8:0:0:0:0:0:1]", 0, "user", "[IPv6:2001:db8:0:0:0:0:0:1]"),
    GOOD_LIT("user@[X-Tag:Some=Content]", 0, "user", "[X-Tag:Some=Content]"),
    BAD("user@[192.0.2.256]", 0, R_V4),
    BAD("user@[192.0.2]", 0, R_V4),
    BAD("user@[192.0.2.1.5]", 0, R_V4),
    BAD("user@[example.com]", 0, R_V4),
    BAD("user@[IPv6:2001:db8::g]", 0, R_V6),
    BAD("user@[IPv6:192.0.2.1]", 0, R_V6),
    BAD("user@[IPv6:fe80::1%eth0]", 0, R_V6),
    BAD("user@[IPv6:1:2:3:4:5:6:7:8:9]", 0, R_V6),
    BAD("user@[IPv6:]", 0, R_V6),
    BAD("user@[192.0.2.1", 0, R_LITOPEN),
    BAD("user@[192.0.2.1]x", 0, R_LITAFTER),
    BAD("user@[192.0.2.1].com", 0, R_LITAFTER),
    BAD("user@[]", 0, R_LITEMPTY),
    BAD("user@[tag_x:abc]", 0, R_TAG),
    BAD("user@[x-:abc]", 0, R_TAG),
    BAD("user@[:abc]", 0, R_TAG),
    BAD("user@[x:]", 0, R_GENEMPTY),
    BAD("user@[x:a b]", 0, R_GENCHAR),
    BAD("user@[x:a\\b]", 0, R_GENCHAR),
    /* local part errors */
    BAD("@example.com", 0, R_LEMPTY),
    BAD(".user@example.com", 0, R_LDOT0),
    BAD("user.@example.com", 0, R_LDOT1),
    BAD("us..er@example.com", 0, R_LDOTS),
    BAD("us er@example.com", 0, R_LCHAR),
    BAD("us(er)@example.com", 0, R_LCHAR),
    BAD(" user@example.com", 0, R_LCHAR),
    BAD("a\"b\"@example.com", 0, R_LCHAR),
    BAD("user\x7f@example.com", 0, R_LCHAR),
    BAD("\"ab\"c@example.com", 0, R_QAFTER),
    BAD("\"ab\".c@example.com", 0, R_QAFTER),
    BAD("\"unterminated@example.com", 0, R_QOPEN),
    BAD("\"ends in backslash\\", 0, R_QOPEN),
    BAD("\"a\tb\"@example.com", 0, R_QCHAR),
    BAD("\"a\\\tb\"@example.com", 0, R_QESC),
    BAD("\"a\rb\"@example.com", 0, R_QCHAR),
    /* domain errors */
    BAD("user@", 0, R_DEMPTY),
    BAD("user@.example.com", 0, R_DDOT0),
    BAD("user@example.com.", 0, R_DDOT1),
    BAD("user@example..com", 0, R_DDOTS),
    BAD("user@-example.com", 0, R_DHYPH),
    BAD("user@example-.com", 0, R_DHYPH),
    BAD("user@exa_mple.com", 0, R_DCHAR),
    BAD("user@example.com@example.net", 0, R_DCHAR),
    /* trailing junk */
    BAD("user@example.com x", 0, R_DCHAR),
    BAD("user@example.com>", 0, R_DCHAR),
    BAD("user@example.com\r\n", 0, R_DCHAR),
    BAD("<user@example.com> ", P, R_NOGT),
    BAD("<user@example.com>x", 0, R_NOGT),
    BAD("<user@example.com> SIZE=100", P, R_NOGT),
    BAD("<user@example.com", P, R_NOGT),
    BAD("<", 0, R_NOGT),
    BAD("user@example.com", P, R_NOLT),
    BAD("<<user@example.com>>", P, R_LCHAR),
    /* source routes */
    BAD("<@relay.example user@example.com>", P, R_ROUTECOLON),
    BAD("<@:user@example.com>", P, R_ROUTEDOM),
    BAD("<@a.example,b.example:user@example.com>", P, R_ROUTE),
    BAD("<@a.example,:user@example.com>", P, R_ROUTE),
    BAD("<@a_b.example:user@example.com>", P, R_ROUTEDOM),
    BAD("<@[192.0.2.1]:user@example.com>", P, R_ROUTEDOM),
    BAD("<@a.example:>", P, R_ROUTEMBOX),
    /* UTF-8: only with ADDR_ALLOW_UTF8, and only when well formed */
    GOOD("j\xc3\xb6rg@b\xc3\xbc"
         "cher.example",
         U, "j\xc3\xb6rg",
         "b\xc3\xbc"
         "cher.example"),
    GOOD("\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac\xe5\x8f\xb8", U,
         "\xe7\x94\xa8\xe6\x88\xb7", "\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac\xe5\x8f\xb8"),
    GOOD("\"\xf0\x9f\x98\x80 smile\"@example.com", U, "\"\xf0\x9f\x98\x80 smile\"", "example.com"),
    GOOD("<j\xc3\xb6rg@Example.COM>", P | U, "j\xc3\xb6rg", "example.com"),
    BAD("j\xc3\xb6rg@example.com", 0, R_8BIT),
    BAD("user@b\xc3\xbc"
        "cher.example",
        0, R_8BIT),
    BAD("\"\xc3\xb6\"@example.com", 0, R_8BIT),
    BAD("j\xc3@example.com", U, R_UTF8),
    BAD("j\xc0\xaf@example.com", U, R_UTF8),
    BAD("j\xed\xa0\x80@example.com", U, R_UTF8),
    BAD("j\xf4\x90\x80\x80@example.com", U, R_UTF8),
    BAD("j\xff@example.com", U, R_UTF8),
    BAD("user@b\xfc"
        "cher.example",
        U, R_UTF8),
    BAD("user@example.co\xe2\x82", U, R_UTF8),
    /* a NUL byte anywhere */
    BAD("user\0@example.com", 0, R_NUL),
    BAD("user@example.com\0", 0, R_NUL),
    BAD("\0", N, R_NUL),
    BAD("<user@exam\0ple.com>", P, R_NUL),
    BAD("\"a\0b\"@example.com", 0, R_NUL),
};

/* ------------------------------------------------- generated long rows ---- */

static char *repeat(struct buf *b, char c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf_addc(b, c);
    return b->s;
}

/* "aaa...@" + a domain of labels of 63 'd' separated by dots, dn bytes long. */
static void add_domain(struct buf *b, size_t dn)
{
    for (size_t i = 0; i < dn; i++)
        buf_addc(b, (i % 64 == 63) ? '.' : 'd');
}

#define NGEN 16
static struct buf gen_in[NGEN], gen_local[NGEN], gen_domain[NGEN];
static struct addr_row gen_rows[NGEN];
static size_t ngen;

static void gen_row(unsigned flags, const char *prefix, size_t local_n, size_t domain_n,
                    const char *suffix, const char *why)
{
    size_t i = ngen++;
    struct buf *in = &gen_in[i];
    buf_adds(in, prefix);
    size_t local_at = in->len;
    repeat(in, 'l', local_n);
    buf_add(&gen_local[i], in->s + local_at, local_n);
    if (domain_n) {
        buf_addc(in, '@');
        size_t dom_at = in->len;
        add_domain(in, domain_n);
        buf_add(&gen_domain[i], in->s + dom_at, domain_n);
    }
    buf_adds(in, suffix);
    gen_rows[i] = (struct addr_row){buf_cstr(in),    in->len, flags, buf_cstr(&gen_local[i]),
                                    gen_domain[i].s, 0,       0,     why};
}

static void gen_rows_make(void)
{
    /* 4.5.3.1.1: local part 64 octets */
    gen_row(0, "", 64, 11, "", NULL);
    gen_row(0, "", 65, 11, "", R_LLONG);
    gen_row(B, "", 65, 0, "", R_LLONG);
    /* 4.5.3.1.2: domain 255 octets (a whole mailbox cannot carry 255; see
     * test_domain_valid_limits for 255 itself) */
    gen_row(0, "", 1, 256, "", R_DLONG);
    gen_row(P, "<", 1, 300, ">", R_DLONG);
    /* RFC 1035 2.3.4 via RFC 1123: labels of at most 63 octets */
    gen_row(0, "", 10, 63, "", NULL);
    /* 4.5.3.1.3: path 256 octets with its brackets */
    gen_row(P, "<", 64, 256 - 2 - 64 - 1, ">", NULL);
    gen_row(P, "<", 64, 256 - 2 - 64, ">", R_PLONG);
    gen_row(0, "<", 64, 256 - 2 - 64 - 1, ">", NULL);
    gen_row(0, "", 64, 254 - 64 - 1, "", NULL);
    gen_row(0, "", 64, 255 - 64 - 1, "", R_ALONG);
}

static void gen_rows_free(void)
{
    for (size_t i = 0; i < NGEN; i++) {
        buf_free(&gen_in[i]);
        buf_free(&gen_local[i]);
        buf_free(&gen_domain[i]);
    }
}

/* ------------------------------------------------------------- the test ---- */

static void test_addr_row(void **state)
{
    const struct addr_row *r = *state;
    /* exactly len bytes, no terminator: an over-read is an ASan error */
    char *in = xmalloc(r->len ? r->len : 1);
    memcpy(in, r->in, r->len);
    char sentinel[] = "untouched";
    struct mailaddr a = {sentinel, sentinel, 7, 7};
    const char *why = NULL;
    int rc = addr_parse(in, r->len, r->flags, &a, &why);
    free(in);
    if (r->why) {
        if (rc == 0)
            fail_msg("accepted, local=%s domain=%s", a.local, a.domain ? a.domain : "(none)");
        assert_string_equal(why, r->why);
        assert_ptr_equal(a.local, sentinel);
        assert_ptr_equal(a.domain, sentinel);
        assert_int_equal(a.is_null, 7);
        return;
    }
    if (rc != 0)
        fail_msg("rejected: %s", why);
    assert_string_equal(a.local, r->local);
    if (r->domain)
        assert_string_equal(a.domain, r->domain);
    else
        assert_null(a.domain);
    assert_int_equal(a.is_null, r->is_null);
    assert_int_equal(a.is_literal, r->is_literal);
    addr_free(&a);
}

/* ------------------------------------------------------ other functions ---- */

static void parse_ok(const char *s, unsigned flags, struct mailaddr *a)
{
    const char *why = NULL;
    if (addr_parse(s, strlen(s), flags, a, &why) != 0)
        fail_msg("%s rejected: %s", s, why);
}

static void expect_format(const char *in, unsigned flags, const char *want)
{
    struct mailaddr a;
    struct buf out = BUF_INIT;
    parse_ok(in, flags, &a);
    buf_adds(&out, "prefix:");
    addr_format(&a, &out);
    assert_string_equal(buf_cstr(&out), want);
    buf_free(&out);
    addr_free(&a);
}

static void test_format(void **state)
{
    expect_format("<@relay.example:User@Example.COM>", P, "prefix:User@example.com");
    expect_format("\"a b\"@[IPv6:::1]", 0, "prefix:\"a b\"@[IPv6:::1]");
    expect_format("<>", P | N, "prefix:");
    expect_format("", N, "prefix:");
    expect_format("postmaster", B, "prefix:postmaster");
}

static void expect_unquoted(const char *in, unsigned flags, const char *want)
{
    struct mailaddr a;
    struct buf out = BUF_INIT;
    parse_ok(in, flags, &a);
    addr_local_unquoted(&a, &out);
    assert_string_equal(buf_cstr(&out), want);
    buf_free(&out);
    addr_free(&a);
}

static void test_local_unquoted(void **state)
{
    expect_unquoted("plain.user@example.com", 0, "plain.user");
    expect_unquoted("\"john doe\"@example.com", 0, "john doe");
    expect_unquoted("\"a\\\"b\"@example.com", 0, "a\"b");
    expect_unquoted("\"a\\\\b\"@example.com", 0, "a\\b");
    expect_unquoted("\"\\x\\y\"@example.com", 0, "xy");
    expect_unquoted("\"trail\\\\\"@example.com", 0, "trail\\");
    expect_unquoted("\"\"@example.com", 0, "");
    expect_unquoted("<>", P | N, "");
}

/* The formatted address parses again to the same thing (flags without PATH). */
static void test_format_reparses(void **state)
{
    for (size_t i = 0; i < ROWS(rows); i++) {
        struct mailaddr a, b;
        struct buf text = BUF_INIT;
        if (rows[i].why)
            continue;
        assert_int_equal(addr_parse(rows[i].in, rows[i].len, rows[i].flags, &a, NULL), 0);
        addr_format(&a, &text);
        const char *why = NULL;
        if (addr_parse(text.s, text.len, rows[i].flags & ~(unsigned)P, &b, &why) != 0)
            fail_msg("row %zu: \"%s\" does not reparse: %s", i, buf_cstr(&text), why);
        assert_string_equal(b.local, a.local);
        if (a.domain)
            assert_string_equal(b.domain, a.domain);
        assert_int_equal(b.is_null, a.is_null);
        addr_free(&a);
        addr_free(&b);
        buf_free(&text);
    }
}

static void test_domain_valid(void **state)
{
    assert_true(addr_domain_valid("example.com", 11));
    assert_true(addr_domain_valid("EXAMPLE.com", 11));
    assert_true(addr_domain_valid("[192.0.2.1]", 11));
    assert_true(addr_domain_valid("[IPv6:::1]", 10));
    assert_false(addr_domain_valid("", 0));
    assert_false(addr_domain_valid("example.com.", 12));
    assert_false(addr_domain_valid("exa mple.com", 12));
    assert_false(addr_domain_valid("[300.0.0.1]", 11));
    assert_false(addr_domain_valid("ex\0ample.com", 12));
    assert_false(addr_domain_valid("b\xc3\xbc"
                                   "cher.example",
                                   13)); /* no UTF-8 here */
    /* only len bytes count: "example.com" followed by junk that is not read */
    assert_true(addr_domain_valid("example.com junk", 11));
}

static void test_domain_valid_limits(void **state)
{
    struct buf d = BUF_INIT;
    add_domain(&d, 255);
    assert_true(addr_domain_valid(d.s, d.len));
    buf_clear(&d);
    add_domain(&d, 256);
    assert_false(addr_domain_valid(d.s, d.len));
    buf_clear(&d);
    repeat(&d, 'x', 63);
    assert_true(addr_domain_valid(d.s, d.len));
    buf_addc(&d, 'x');
    assert_false(addr_domain_valid(d.s, d.len));
    buf_free(&d);
}

static void test_label_64_rejected(void **state)
{
    struct buf in = BUF_INIT;
    buf_adds(&in, "user@");
    repeat(&in, 'x', 64);
    buf_adds(&in, ".example");
    struct mailaddr a;
    const char *why = NULL;
    assert_int_equal(addr_parse(in.s, in.len, 0, &a, &why), -1);
    assert_string_equal(why, R_LABEL);
    buf_free(&in);
}

/* A length shorter than the string: only len bytes are the address. */
static void test_len_bounds_input(void **state)
{
    struct mailaddr a;
    const char *s = "user@example.com.invalid junk";
    assert_int_equal(addr_parse(s, 16, 0, &a, NULL), 0);
    assert_string_equal(a.domain, "example.com");
    addr_free(&a);
}

static void test_why_may_be_null(void **state)
{
    struct mailaddr a;
    assert_int_equal(addr_parse("bad address", 11, 0, &a, NULL), -1);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    gen_rows_make();
    for (size_t i = 0; i < ROWS(rows); i++)
        rowtest_add(&t, test_addr_row, &rows[i], "row %03zu [%s%s%s%s] %s -> %s", i,
                    rows[i].flags & P ? "P" : "", rows[i].flags & N ? "N" : "",
                    rows[i].flags & B ? "B" : "", rows[i].flags & U ? "U" : "", rows[i].in,
                    rows[i].why ? rows[i].why : "ok");
    for (size_t i = 0; i < ngen; i++)
        rowtest_add(&t, test_addr_row, &gen_rows[i], "generated %zu: %zu bytes -> %s", i,
                    gen_rows[i].len, gen_rows[i].why ? gen_rows[i].why : "ok");
    rowtest_add(&t, test_format, NULL, "addr_format");
    rowtest_add(&t, test_local_unquoted, NULL, "addr_local_unquoted");
    rowtest_add(&t, test_format_reparses, NULL, "formatted addresses parse again");
    rowtest_add(&t, test_domain_valid, NULL, "addr_domain_valid");
    rowtest_add(&t, test_domain_valid_limits, NULL, "addr_domain_valid 255/256, label 63/64");
    rowtest_add(&t, test_label_64_rejected, NULL, "label of 64 octets in a mailbox");
    rowtest_add(&t, test_len_bounds_input, NULL, "len bounds the input");
    rowtest_add(&t, test_why_may_be_null, NULL, "why may be NULL");
    int failed = rowtest_run(&t, "addr");
    gen_rows_free();
    return failed;
}
