/*
 * test_routes — golden rows for the routes file (SPEC 4): every accepted
 * form parsed to its fields, every mistake reported at its exact line with
 * parsing going on, the most-specific-first table of routes_match(), and loading
 * (missing file = empty, unreadable = error).
 */
#include "rowtest.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "routes.h"

/* ------------------------------------------------------------ accepted ---- */

struct hop_want {
    enum nexthop_kind kind;
    const char *host; /* or the error text */
    unsigned port;
};

struct good_row {
    const char *line;
    enum route_pattern kind;
    const char *pattern;
    const char *domain;
    size_t nhops;
    struct hop_want hops[3];
};

static const struct good_row good_rows[] = {
    {"example.com        [192.0.2.10]:25        # deliver to this address",
     ROUTE_EXACT,
     "example.com",
     "example.com",
     1,
     {{NEXTHOP_HOST, "192.0.2.10", 25}}},
    {".example.com       relay.example.net      # subdomains",
     ROUTE_SUBDOMAINS,
     ".example.com",
     "example.com",
     1,
     {{NEXTHOP_MX, "relay.example.net", 0}}},
    {"partner.test       [mx.partner.test]:2526 # host name, no MX",
     ROUTE_EXACT,
     "partner.test",
     "partner.test",
     1,
     {{NEXTHOP_HOST, "mx.partner.test", 2526}}},
    {"bad.test           error:5.1.2 no such domain here",
     ROUTE_EXACT,
     "bad.test",
     "bad.test",
     1,
     {{NEXTHOP_ERROR, "5.1.2 no such domain here", 0}}},
    {"*                  [smarthost.isp.test]:587",
     ROUTE_ANY,
     "*",
     "",
     1,
     {{NEXTHOP_HOST, "smarthost.isp.test", 587}}},
    {"Example.COM.  Relay.Test",
     ROUTE_EXACT,
     "example.com",
     "example.com",
     1,
     {{NEXTHOP_MX, "relay.test", 0}}},
    {".Sub.Example.COM relay.test",
     ROUTE_SUBDOMAINS,
     ".sub.example.com",
     "sub.example.com",
     1,
     {{NEXTHOP_MX, "relay.test", 0}}},
    {"multi.test a.test, [b.test]:2525,relay.test:26",
     ROUTE_EXACT,
     "multi.test",
     "multi.test",
     3,
     {{NEXTHOP_MX, "a.test", 0}, {NEXTHOP_HOST, "b.test", 2525}, {NEXTHOP_MX, "relay.test", 26}}},
    {"loc.test local", ROUTE_EXACT, "loc.test", "loc.test", 1, {{NEXTHOP_LOCAL, NULL, 0}}},
    {"err.test error:4.3.0 try later, really  # why",
     ROUTE_EXACT,
     "err.test",
     "err.test",
     1,
     {{NEXTHOP_ERROR, "4.3.0 try later, really", 0}}},
    {"tab.test\t[127.0.0.5]:2525\t",
     ROUTE_EXACT,
     "tab.test",
     "tab.test",
     1,
     {{NEXTHOP_HOST, "127.0.0.5", 2525}}},
    {"   indented.test relay.test",
     ROUTE_EXACT,
     "indented.test",
     "indented.test",
     1,
     {{NEXTHOP_MX, "relay.test", 0}}},
    {"crlf.test relay.test\r",
     ROUTE_EXACT,
     "crlf.test",
     "crlf.test",
     1,
     {{NEXTHOP_MX, "relay.test", 0}}},
    {"v6.test [2001:db8::1]:25",
     ROUTE_EXACT,
     "v6.test",
     "v6.test",
     1,
     {{NEXTHOP_HOST, "2001:db8::1", 25}}},
    {"localhost relay.test",
     ROUTE_EXACT,
     "localhost",
     "localhost",
     1,
     {{NEXTHOP_MX, "relay.test", 0}}},
};

static void test_good_line(void **state)
{
    const struct good_row *r = *state;
    struct routes rt = ROUTES_INIT;
    struct diag d = DIAG_INIT;
    assert_int_equal(routes_parse(&rt, "routes", r->line, strlen(r->line), &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(rt.n, 1);
    const struct route *got = &rt.v[0];
    assert_int_equal(got->kind, r->kind);
    assert_string_equal(got->pattern, r->pattern);
    assert_string_equal(got->domain, r->domain);
    assert_int_equal(got->line, 1);
    assert_int_equal(got->nhops, r->nhops);
    for (size_t i = 0; i < r->nhops; i++) {
        assert_int_equal(got->hops[i].kind, r->hops[i].kind);
        if (r->hops[i].kind == NEXTHOP_ERROR)
            assert_string_equal(got->hops[i].text, r->hops[i].host);
        else if (r->hops[i].host)
            assert_string_equal(got->hops[i].host, r->hops[i].host);
        assert_int_equal(got->hops[i].port, r->hops[i].port);
    }
    routes_free(&rt);
    diag_free(&d);
}

/* -------------------------------------------------------------- errors ---- */

struct bad_row {
    const char *what;
    const char *text;
    size_t nroutes;      /* good routes still parsed */
    unsigned lines[3];   /* every expected diag line, in order; 0 ends */
    const char *message; /* expected text of the first diag */
};

static const struct bad_row bad_rows[] = {
    {"pattern without next hop",
     "# c\ngood.test relay.test\nmissing.test\n",
     1,
     {3},
     "missing.test: no next hop"},
    {"pattern then only a comment",
     "a.test relay.test\nb.test   # nothing\n",
     1,
     {2},
     "b.test: no next hop"},
    {"port out of range",
     "good.test [127.0.0.5]:2525\nport.test      [127.0.0.5]:99999\n",
     1,
     {2},
     NULL},
    {"port zero", "p.test relay.test:0", 0, {1}, NULL},
    {"invalid domain pattern",
     "bad..pattern relay.test",
     0,
     {1},
     "bad pattern \"bad..pattern\": not a valid domain"},
    {"underscore in pattern", "\n\nbad_host.test relay.test", 0, {3}, NULL},
    {"dot only", ". relay.test", 0, {1}, NULL},
    {"star-dot pattern",
     "*.example.com relay.test",
     0,
     {1},
     "bad pattern \"*.example.com\": write \".example.com\" for the subdomains of example.com"},
    {"star glued", "*x relay.test", 0, {1}, NULL},
    {"duplicate pattern",
     "a.test relay.test\nb.test x.test\na.test other.test\n",
     2,
     {3},
     "duplicate pattern \"a.test\" (first at line 1)"},
    {"duplicate after normalising",
     "A.Test. relay.test\n\na.test other.test",
     1,
     {3},
     "duplicate pattern \"a.test\" (first at line 1)"},
    {"duplicate star",
     "* [a.test]\n* [b.test]\n",
     1,
     {2},
     "duplicate pattern \"*\" (first at line 1)"},
    {"exact and subdomain are different", "a.test x.test\n.a.test y.test\n", 2, {0}, NULL},
    {"local in a list",
     "x.test relay.test, local",
     0,
     {1},
     "x.test: \"local\" must be the only next hop of a route"},
    {"error in a list",
     "x.test relay.test, error:5.0.0 no",
     0,
     {1},
     "x.test: \"error:\" must be the only next hop of a route"},
    {"error without text", "x.test error:", 0, {1}, NULL},
    {"next hops without commas", "x.test relay.test relay2.test", 0, {1}, NULL},
    {"hash glued to host", "x.test relay.test#x", 0, {1}, NULL},
    {"empty list item", "x.test a.test,,b.test", 0, {1}, NULL},
    {"trailing comma", "x.test a.test,", 0, {1}, NULL},
    {"bad pattern and bad next hop", "a..b [1.2.3.4]:0", 0, {1, 1}, NULL},
    {"control character",
     "a.test \x1b[31mrelay.test",
     0,
     {1},
     "control character 0x1b in line; line ignored"},
    {"every mistake, parsing goes on",
     "one.test relay.test\n"
     "two.test\n"
     "three.test relay.test\n"
     "four.test [127.0.0.5]:99999\n"
     "one.test again.test\n"
     "six.test relay.test\n",
     3,
     {2, 4, 5},
     NULL},
};

static void test_bad_text(void **state)
{
    const struct bad_row *r = *state;
    struct routes rt = ROUTES_INIT;
    struct diag d = DIAG_INIT;
    size_t len = strlen(r->text);
    size_t want = 0;
    while (want < 3 && r->lines[want])
        want++;
    assert_int_equal(routes_parse(&rt, "dir/routes", r->text, len, &d), want ? -1 : 0);
    assert_int_equal(d.n, want);
    for (size_t i = 0; i < want; i++) {
        assert_string_equal(d.v[i].file, "dir/routes");
        assert_int_equal(d.v[i].line, r->lines[i]);
    }
    if (r->message)
        assert_string_equal(d.v[0].text, r->message);
    assert_int_equal(rt.n, r->nroutes);
    routes_free(&rt);
    diag_free(&d);
}

/* A NUL byte cannot hide the rest of its line: the line is reported. */
static void test_nul_byte(void **state)
{
    static const char text[] = "a.test relay.test\nb.test\0 relay.test\nc.test relay.test";
    struct routes rt = ROUTES_INIT;
    struct diag d = DIAG_INIT;
    assert_int_equal(routes_parse(&rt, "routes", text, sizeof(text) - 1, &d), -1);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].line, 2);
    assert_string_equal(d.v[0].text, "NUL byte in line; line ignored");
    assert_int_equal(rt.n, 2);
    assert_int_equal(rt.v[1].line, 3);
    routes_free(&rt);
    diag_free(&d);
}

/* The SPEC 4 example file: five routes at lines 2..6, in file order. */
static void test_spec_example(void **state)
{
    static const char text[] =
        "# pattern          next hop\n"
        "example.com        [192.0.2.10]:25        # deliver to this address, no MX lookup\n"
        ".example.com       relay.example.net      # subdomains: look up relay.example.net's MX\n"
        "partner.test       [mx.partner.test]:2526 # host name, A/AAAA lookup only (no MX)\n"
        "bad.test           error:5.1.2 no such domain here\n"
        "*                  [smarthost.isp.test]:587\n";
    struct routes rt = ROUTES_INIT;
    struct diag d = DIAG_INIT;
    assert_int_equal(routes_parse(&rt, "routes", text, sizeof(text) - 1, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(rt.n, 5);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(rt.v[i].line, i + 2);
    assert_string_equal(rt.v[1].pattern, ".example.com");
    assert_string_equal(rt.v[4].pattern, "*");
    routes_free(&rt);
    diag_free(&d);
}

/* --------------------------------------------------------- routes_match ---- */

static const char match_table[] = "a.example.com   [10.0.0.1]\n"  /* line 1 */
                                  ".example.com    relay.test\n"  /* line 2 */
                                  "example.com     [10.0.0.2]\n"  /* line 3 */
                                  ".b.test         [10.0.0.3]\n"  /* line 4 */
                                  "*               [10.0.0.9]\n"; /* line 5 */

struct match_row {
    const char *domain;
    unsigned line;    /* of the matching route; 0: none */
    int without_star; /* the same table without its "*" line */
};

static const struct match_row match_rows[] = {
    {"a.example.com", 1, 0}, {"A.Example.COM.", 1, 0},     {"b.a.example.com", 2, 0},
    {"x.example.com", 2, 0}, {"deep.x.example.com", 2, 0}, {"example.com", 3, 0},
    {"EXAMPLE.com.", 3, 0},  {"notexample.com", 5, 0},     {"b.test", 5, 0},
    {"c.b.test", 4, 0},      {"other.org", 5, 0},          {"other.org", 0, 1},
    {"b.test", 0, 1},        {"notexample.com", 0, 1},     {"example.com.evil.org", 0, 1},
    {"c.b.test", 4, 1},
};

static void test_match(void **state)
{
    const struct match_row *r = *state;
    struct routes rt = ROUTES_INIT;
    struct diag d = DIAG_INIT;
    size_t len = sizeof(match_table) - 1;
    if (r->without_star)
        len = (size_t)(strstr(match_table, "*") - match_table);
    assert_int_equal(routes_parse(&rt, "routes", match_table, len, &d), 0);
    const struct route *got = routes_match(&rt, r->domain);
    if (r->line) {
        assert_non_null(got);
        assert_int_equal(got->line, r->line);
    } else {
        assert_null(got);
    }
    routes_free(&rt);
    diag_free(&d);
}

/* The most specific pattern wins wherever it is written: `*` and a broader
 * `.parent` written first shadow nothing (SPEC 4, issue 11). */
static void test_match_most_specific_wins(void **state)
{
    static const char text[] =
        "* [10.0.0.9]\n.example.com relay.test\n.a.example.com relay.a.test\n"
        "a.example.com [10.0.0.1]\n";
    struct routes rt = ROUTES_INIT;
    struct diag d = DIAG_INIT;
    assert_int_equal(routes_parse(&rt, "routes", text, sizeof(text) - 1, &d), 0);
    assert_int_equal(routes_match(&rt, "a.example.com")->line, 4);
    assert_int_equal(routes_match(&rt, "b.a.example.com")->line, 3);
    assert_int_equal(routes_match(&rt, "c.example.com")->line, 2);
    assert_int_equal(routes_match(&rt, "example.com")->line, 1);
    routes_free(&rt);
    diag_free(&d);
}

static void test_match_empty_table(void **state)
{
    struct routes rt = ROUTES_INIT;
    assert_null(routes_match(&rt, "example.com"));
}

/* ---------------------------------------------------------------- load ---- */

static void test_load_missing_is_empty(void **state)
{
    struct routes rt = ROUTES_INIT;
    struct diag d = DIAG_INIT;
    assert_int_equal(routes_load(&rt, "/nonexistent/onehop/routes", &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(rt.n, 0);
}

static void test_load_unreadable_is_error(void **state)
{
    struct routes rt = ROUTES_INIT;
    struct diag d = DIAG_INIT;
    /* a directory opens but cannot be read */
    assert_int_equal(routes_load(&rt, "/", &d), -1);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].file, "/");
    assert_int_equal(d.v[0].line, 0);
    assert_non_null(strstr(d.v[0].text, "cannot read"));
    diag_free(&d);
}

static void test_load_reports_path(void **state)
{
    char path[64];
    test_temp_file(path, sizeof(path), "routes", "ok.test relay.test\nbroken.test\n");
    struct routes rt = ROUTES_INIT;
    struct diag d = DIAG_INIT;
    assert_int_equal(routes_load(&rt, path, &d), -1);
    unlink(path);
    assert_int_equal(rt.n, 1);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].file, path);
    assert_int_equal(d.v[0].line, 2);
    routes_free(&rt);
    diag_free(&d);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(good_rows); i++)
        rowtest_add(&t, test_good_line, &good_rows[i], "accepts \"%s\"", good_rows[i].line);
    for (size_t i = 0; i < ROWS(bad_rows); i++)
        rowtest_add(&t, test_bad_text, &bad_rows[i], "reports %s", bad_rows[i].what);
    for (size_t i = 0; i < ROWS(match_rows); i++)
        rowtest_add(&t, test_match, &match_rows[i], "routes_match %s%s", match_rows[i].domain,
                    match_rows[i].without_star ? " (no *)" : "");
    rowtest_add(&t, test_nul_byte, NULL, "reports a NUL byte");
    rowtest_add(&t, test_spec_example, NULL, "SPEC 4 example");
    rowtest_add(&t, test_match_most_specific_wins, NULL, "most specific wins, whatever the order");
    rowtest_add(&t, test_match_empty_table, NULL, "empty table matches nothing");
    rowtest_add(&t, test_load_missing_is_empty, NULL, "missing file is an empty table");
    rowtest_add(&t, test_load_unreadable_is_error, NULL, "unreadable file is an error");
    rowtest_add(&t, test_load_reports_path, NULL, "load reports the path");
    return rowtest_run(&t, "routes");
}
