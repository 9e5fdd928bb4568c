/*
 * test_addrlist — golden expectations for the RFC 5322 3.4 address-list
 * parser (queue/addrlist.h): one test per row; each row is a field body and
 * either the addr-specs found (joined by " | ") or the error expected.
 */
#include <string.h>

#include "addrlist.h"
#include "rowtest.h"

struct row {
    const char *in;
    const char *want; /* " | "-joined addr-specs, or NULL for an error */
    const char *why;  /* expected error reason when want is NULL */
};

static const struct row rows[] = {
    /* RFC 5322 3.4 mailbox forms */
    {"bob@b.test", "bob@b.test", NULL},
    {"<bob@b.test>", "bob@b.test", NULL},
    {"Bob Smith <bob@b.test>", "bob@b.test", NULL},
    {"\"Smith, Bob\" <bob@b.test>", "bob@b.test", NULL},
    {"John Q. Public <jqp@b.test>", "jqp@b.test", NULL},
    {"a@b.test, c@d.test", "a@b.test | c@d.test", NULL},
    {"  a@b.test ,\r\n\tc@d.test  ", "a@b.test | c@d.test", NULL},
    {"Bob\r\n <bob@b.test>", "bob@b.test", NULL},
    /* comments, nested and quoted-pair inside */
    {"bob@b.test (Bob Smith)", "bob@b.test", NULL},
    {"(x) bob (y) @ (z) b.test", "bob@b.test", NULL},
    {"bob@b.test (a (nested \\) comment) here)", "bob@b.test", NULL},
    {"Bob <bob@b.test> (work), carol@c.test", "bob@b.test | carol@c.test", NULL},
    /* quoted local parts keep their quotes */
    {"\"john doe\"@b.test", "\"john doe\"@b.test", NULL},
    {"\"a\\\"b\"@b.test", "\"a\\\"b\"@b.test", NULL},
    {"first.last@b.test", "first.last@b.test", NULL},
    {"first . last @ b . test", "first.last@b.test", NULL},
    /* domain literals */
    {"bob@[192.0.2.1]", "bob@[192.0.2.1]", NULL},
    {"Bob <bob@[IPv6:2001:db8::1]>", "bob@[IPv6:2001:db8::1]", NULL},
    /* groups (RFC 5322 3.4) */
    {"team: a@b.test, c@d.test;", "a@b.test | c@d.test", NULL},
    {"undisclosed-recipients:;", "", NULL},
    {"team: Ann <a@b.test>, c@d.test;, e@f.test", "a@b.test | c@d.test | e@f.test", NULL},
    {"team: a@b.test", "a@b.test", NULL},
    {"\"the team\": a@b.test;", "a@b.test", NULL},
    /* obs-route and obs-addr-list (RFC 5322 4.4) */
    {"<@relay.test,@other.test:bob@b.test>", "bob@b.test", NULL},
    {"a@b.test,,c@d.test,", "a@b.test | c@d.test", NULL},
    {"", "", NULL},
    {" (only a comment) ", "", NULL},
    /* bare local parts (sendmail) */
    {"bob", "bob", NULL},
    {"bob, carol", "bob | carol", NULL},
    {"Bob <bob>", "bob", NULL},
    /* UTF-8 in a display name (RFC 6532) */
    {"J\xc3\xbcrgen <j@b.test>", "j@b.test", NULL},
    /* errors */
    {"Bob Smith", NULL, "malformed local part"},
    {"bob@", NULL, "missing domain after \"@\""},
    {"bob@b.test c@d.test", NULL, "malformed domain"},
    {"<bob@b.test", NULL, "missing \">\""},
    {"<>", NULL, "empty address \"<>\""},
    {"Bob <>", NULL, "empty address \"<>\""},
    {"\"unterminated@b.test", NULL, "unterminated quoted string"},
    {"bob@b.test (unterminated", NULL, "unterminated comment"},
    {"bob@[1.2.3.4", NULL, "unterminated domain literal"},
    {"bob@b.test)", NULL, "unbalanced \")\""},
    {"a..b@b.test", NULL, "malformed local part"},
    {".a@b.test", NULL, "malformed local part"},
    {"a@b..test", NULL, "malformed domain"},
    {"a@b.test.", NULL, "malformed domain"},
    {"g1: g2: a@b.test;;", NULL, "group inside a group"},
    {"a@b.test; c@d.test", NULL, "expected \",\" between addresses"},
    {"bob\x01@b.test", NULL, "invalid character in address"},
    {"<@relay.test bob@b.test>", NULL, "malformed domain"},
    {"bob@b.test>", NULL, "expected \",\" between addresses"},
    {"\\bob@b.test", NULL, "invalid character in address"},
};

static void check_row(void **state)
{
    const struct row *r = *state;
    struct addrlist l = ADDRLIST_INIT;
    addrlist_add(&l, "before"); /* must survive a failed parse */
    const char *why = NULL;
    int rc = addrlist_parse(r->in, strlen(r->in), &l, &why);
    if (r->want == NULL) {
        assert_int_equal(rc, -1);
        assert_non_null(why);
        assert_string_equal(why, r->why);
        assert_int_equal(l.n, 1);
    } else {
        assert_int_equal(rc, 0);
        struct buf got = BUF_INIT;
        for (size_t k = 1; k < l.n; k++) {
            if (k > 1)
                buf_adds(&got, " | ");
            buf_adds(&got, l.v[k]);
        }
        assert_string_equal(buf_cstr(&got), r->want);
        buf_free(&got);
    }
    assert_string_equal(l.v[0], "before");
    addrlist_free(&l);
}

/* A NUL inside the given length is an error, never an end of string. */
static void check_nul_inside(void **state)
{
    struct addrlist l = ADDRLIST_INIT;
    const char *why = NULL;
    assert_int_equal(addrlist_parse("a@b.test\0c@d.test", 17, &l, &why), -1);
    assert_string_equal(why, "invalid character in address");
    assert_int_equal(l.n, 0);
    addrlist_free(&l);
}

/* The length bounds the parse: bytes after it are never looked at. */
static void check_length_bound(void **state)
{
    struct addrlist l = ADDRLIST_INIT;
    const char *why = NULL;
    assert_int_equal(addrlist_parse("a@b.test, (never seen", 8, &l, &why), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "a@b.test");
    addrlist_free(&l);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(rows); i++)
        rowtest_add(&t, check_row, &rows[i], "addrlist_parse %s", rows[i].in);
    rowtest_add(&t, check_nul_inside, NULL, "NUL byte inside the length");
    rowtest_add(&t, check_length_bound, NULL, "length bound");
    return rowtest_run(&t, "addrlist");
}
