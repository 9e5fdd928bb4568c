/*
 * test_sites — golden expectations for the sites file (SPEC 5): the SPEC
 * example parsed to its fields, each accepted form, every mistake reported at
 * its exact line (forward references resolved at the end of the file but
 * reported at the link's own line), the sites_find_by_domain() table, and
 * loading (missing file = empty, unreadable = error).
 */
#include "rowtest.h"

#include <string.h>

#include "sites.h"

static int parse(struct sites *s, struct diag *d, const char *text)
{
    sites_init(s);
    return sites_parse(s, "sites", text, strlen(text), d);
}

/* ------------------------------------------------------------ accepted ---- */

static const char spec_example[] =
    "site hub     hub.example.com                         # site NAME DOMAIN...\n"
    "site site1   site1.example.com  corp1.example\n"
    "site site2   site2.example.com\n"
    "local site1                                          # the site this server is in\n"
    "link site1 hub  10 smtp  [gw.hub.example.com]        # link A B COST TYPE [GATEWAY]\n"
    "link site2 hub  10 smtp\n"
    "link site3 hub  20 rpc   [gw.hub.example.com]\n"
    "site site3   site3.example.com\n";

static void test_spec_example(void **state)
{
    struct sites s;
    struct diag d = DIAG_INIT;
    assert_int_equal(parse(&s, &d, spec_example), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.v[0].name, "hub");
    assert_int_equal(s.v[0].ndomains, 1);
    assert_string_equal(s.v[0].domains[0], "hub.example.com");
    assert_string_equal(s.v[1].name, "site1");
    assert_int_equal(s.v[1].line, 2);
    assert_int_equal(s.v[1].ndomains, 2);
    assert_string_equal(s.v[1].domains[0], "site1.example.com");
    assert_string_equal(s.v[1].domains[1], "corp1.example");
    assert_string_equal(s.v[3].name, "site3");
    assert_int_equal(s.local, 1);
    assert_int_equal(s.local_line, 4);
    assert_ptr_equal(sites_local(&s), &s.v[1]);

    assert_int_equal(s.nlinks, 3);
    const struct site_link *l = &s.links[0];
    assert_int_equal(l->a, 1);
    assert_int_equal(l->b, 0);
    assert_int_equal(l->cost, 10);
    assert_string_equal(l->type, "smtp");
    assert_true(l->is_smtp);
    assert_true(l->has_gateway);
    assert_int_equal(l->gateway.kind, NEXTHOP_HOST);
    assert_string_equal(l->gateway.host, "gw.hub.example.com");
    assert_int_equal(l->line, 5);
    l = &s.links[1];
    assert_int_equal(l->a, 2);
    assert_false(l->has_gateway);
    assert_true(l->is_smtp);
    l = &s.links[2]; /* names site3, defined on the line after it */
    assert_int_equal(l->a, 3);
    assert_int_equal(l->b, 0);
    assert_int_equal(l->cost, 20);
    assert_string_equal(l->type, "rpc");
    assert_false(l->is_smtp);
    assert_int_equal(l->line, 7);
    sites_free(&s);
    diag_free(&d);
}

static void test_forms(void **state)
{
    static const char text[] = "# whole-line comment\n"
                               "\n"
                               "  site  a\tA.Example.COM.   # trailing comment\n"
                               "site b b.test\r\n"
                               "link a b 7 RPC b-gw.test:2526\n"
                               "link b a 1000000 smtp\n"
                               "link a b 1 smtp [192.0.2.7]:25\n"
                               "site c_1.x-y c.test\n"
                               "local c_1.x-y\n";
    struct sites s;
    struct diag d = DIAG_INIT;
    assert_int_equal(parse(&s, &d, text), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.v[0].domains[0], "a.example.com");
    assert_int_equal(s.v[0].line, 3);
    assert_string_equal(s.v[1].domains[0], "b.test");
    assert_int_equal(s.nlinks, 3);
    assert_string_equal(s.links[0].type, "rpc");
    assert_false(s.links[0].is_smtp);
    assert_int_equal(s.links[0].gateway.kind, NEXTHOP_MX);
    assert_string_equal(s.links[0].gateway.host, "b-gw.test");
    assert_int_equal(s.links[0].gateway.port, 2526);
    assert_int_equal(s.links[1].cost, SITES_MAX_COST);
    assert_int_equal(s.links[1].a, 1);
    assert_int_equal(s.links[2].gateway.kind, NEXTHOP_HOST);
    assert_true(s.links[2].gateway.is_ip);
    assert_string_equal(sites_local(&s)->name, "c_1.x-y");
    sites_free(&s);
    diag_free(&d);
}

static void test_empty_has_no_local(void **state)
{
    struct sites s;
    struct diag d = DIAG_INIT;
    assert_int_equal(parse(&s, &d, "# nothing\n\n"), 0);
    assert_int_equal(s.n, 0);
    assert_null(sites_local(&s));
    assert_int_equal(s.local, SITES_NO_LOCAL);
    assert_null(sites_find_by_domain(&s, "a.test"));
    sites_free(&s);
}

/* -------------------------------------------------------------- errors ---- */

struct bad_row {
    const char *what;
    const char *text;
    unsigned lines[4];   /* every expected diag line, in order; 0 ends */
    const char *message; /* expected text of the first diag */
    size_t nsites, nlinks;
};

#define HUB_S1 "site hub hub.test\nsite s1 s1.test\n" /* lines 1, 2 */

static const struct bad_row bad_rows[] = {
    {"unknown keyword",
     HUB_S1 "frobnicate s1\n",
     {3},
     "unknown keyword \"frobnicate\" (site, local or link)",
     2,
     0},
    {"keyword in capitals", "Site a a.test\n", {1}, NULL, 0, 0},
    {"site without anything",
     "site\n",
     {1},
     "site: missing name and domains (site NAME DOMAIN...)",
     0,
     0},
    {"site without domain", "site a\n", {1}, "site a: no domain (site NAME DOMAIN...)", 1, 0},
    {"site defined twice",
     HUB_S1 "site hub other.test\n",
     {3},
     "site hub defined twice (first at line 1)",
     2,
     0},
    {"domain in two sites",
     HUB_S1 "site s2 S1.test.\n",
     {3},
     "site s2: domain s1.test is already in site s1 (line 2)",
     3,
     0},
    {"domain twice in one site",
     "site a a.test a.test\n",
     {1},
     "site a: domain a.test listed twice",
     1,
     0},
    {"invalid domain",
     "site a a.test bad_domain.test\n",
     {1},
     "site a: bad domain \"bad_domain.test\"",
     1,
     0},
    {"leading-dot domain", "site a .a.test\n", {1}, NULL, 1, 0},
    {"bad site name",
     "site b@d a.test\n",
     {1},
     "bad site name \"b@d\": use letters, digits, \".\", \"_\" and \"-\"",
     0,
     0},
    {"link to an unknown site",
     HUB_S1 "local s1\nlink s1 nowhere 10 smtp\n",
     {4},
     "link: unknown site \"nowhere\"",
     2,
     0},
    {"link to two unknown sites", "link x y 1 smtp\n", {1, 1}, NULL, 0, 0},
    {"link from a site to itself",
     HUB_S1 "link s1 s1 10 smtp\n",
     {3},
     "link from site s1 to itself",
     2,
     0},
    {"non-numeric cost",
     HUB_S1 "link s1 hub ten smtp\n",
     {3},
     "link: cost \"ten\" is not an integer from 1 to 1000000",
     2,
     0},
    {"zero cost", HUB_S1 "link s1 hub 0 smtp\n", {3}, NULL, 2, 0},
    {"negative cost", HUB_S1 "link s1 hub -5 smtp\n", {3}, NULL, 2, 0},
    {"cost too large", HUB_S1 "link s1 hub 1000001 smtp\n", {3}, NULL, 2, 0},
    {"link with three fields",
     HUB_S1 "link s1 hub 10\n",
     {3},
     "link: missing fields (link A B COST TYPE [GATEWAY])",
     2,
     0},
    {"link with six fields",
     HUB_S1 "link s1 hub 10 smtp [gw.test] extra\n",
     {3},
     "link: too many fields (link A B COST TYPE [GATEWAY])",
     2,
     0},
    {"bad type", HUB_S1 "link s1 hub 10 sm/tp\n", {3}, NULL, 2, 0},
    {"gateway local", HUB_S1 "link s1 hub 10 smtp local\n", {3}, NULL, 2, 0},
    {"gateway error:", HUB_S1 "link s1 hub 10 smtp error:5.0.0\n", {3}, NULL, 2, 0},
    {"gateway bad port", HUB_S1 "link s1 hub 10 smtp [gw.test]:99999\n", {3}, NULL, 2, 0},
    {"local naming an unknown site", HUB_S1 "local s9\n", {3}, "local: unknown site \"s9\"", 2, 0},
    {"local given twice",
     HUB_S1 "local s1\nlocal hub\n",
     {4},
     "local given twice (first at line 3)",
     2,
     0},
    {"local without name", HUB_S1 "local\n", {3}, "local: missing site name (local NAME)", 2, 0},
    {"local with two names",
     HUB_S1 "local s1 hub\n",
     {3},
     "local: too many fields (local NAME)",
     2,
     0},
    {"two mistakes on one link", HUB_S1 "link s1 s1 0 smtp\n", {3, 3}, NULL, 2, 0},
    {"every mistake in line order, parsing goes on",
     "link s1 nowhere 10 smtp\n" /* 1: resolved at the end, reported here */
     "site hub hub.test\n"
     "frobnicate\n" /* 3 */
     "site s1 s1.test\n"
     "link s1 hub ten smtp\n" /* 5 */
     "link s1 hub 5 smtp\n"
     "local ghost\n", /* 7 */
     {1, 3, 5, 7},
     "link: unknown site \"nowhere\"",
     2,
     1},
    {"test file of the acceptance suite",
     "site hub hub.test\nsite s1 s1.test\nlocal s1\nlink s1 nowhere 10 smtp\n"
     "link s1 hub ten smtp\nfrobnicate s1\n",
     {4, 5, 6},
     NULL,
     2,
     0},
    {"control character",
     "site a a.test\x7f\n",
     {1},
     "control character 0x7f in line; line ignored",
     0,
     0},
};

static void test_bad_text(void **state)
{
    const struct bad_row *r = *state;
    struct sites s;
    struct diag d = DIAG_INIT;
    size_t want = 0;
    while (want < 4 && r->lines[want])
        want++;
    assert_int_equal(parse(&s, &d, r->text), -1);
    assert_int_equal(d.n, want);
    for (size_t i = 0; i < want; i++) {
        assert_string_equal(d.v[i].file, "sites");
        assert_int_equal(d.v[i].line, r->lines[i]);
    }
    if (r->message)
        assert_string_equal(d.v[0].text, r->message);
    assert_int_equal(s.n, r->nsites);
    assert_int_equal(s.nlinks, r->nlinks);
    sites_free(&s);
    diag_free(&d);
}

/* The SPEC 5 example as printed links site3, which it never defines. */
static void test_spec_example_without_site3(void **state)
{
    size_t len = (size_t)(strstr(spec_example, "site site3") - spec_example);
    struct sites s;
    struct diag d = DIAG_INIT;
    sites_init(&s);
    assert_int_equal(sites_parse(&s, "sites", spec_example, len, &d), -1);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].line, 7);
    assert_string_equal(d.v[0].text, "link: unknown site \"site3\"");
    assert_int_equal(s.nlinks, 2);
    sites_free(&s);
    diag_free(&d);
}

/* ------------------------------------------------- sites_find_by_domain ---- */

static const char find_table[] = "site hub  hub.test\n"
                                 "site s1   s1.test corp1.example\n"
                                 "site deep a.s1.test\n"
                                 "site s2   s2.test\n";

struct find_row {
    const char *domain;
    const char *site; /* NULL: none */
};

static const struct find_row find_rows[] = {
    {"s1.test", "s1"},
    {"S1.Test.", "s1"},
    {"x.s1.test", "s1"},
    {"a.s1.test", "deep"},
    {"b.a.s1.test", "deep"},
    {"xa.s1.test", "s1"},
    {"corp1.example", "s1"},
    {"mail.corp1.example", "s1"},
    {"hub.test", "hub"},
    {"s2.test", "s2"},
    {"s1test", NULL},
    {"xs1.test", NULL},
    {"test", NULL},
    {"other.org", NULL},
    {"s1.test.other.org", NULL},
    {"", NULL},
};

static void test_find_by_domain(void **state)
{
    const struct find_row *r = *state;
    struct sites s;
    struct diag d = DIAG_INIT;
    assert_int_equal(parse(&s, &d, find_table), 0);
    const struct site *got = sites_find_by_domain(&s, r->domain);
    if (r->site) {
        assert_non_null(got);
        assert_string_equal(got->name, r->site);
    } else {
        assert_null(got);
    }
    sites_free(&s);
}

static void test_find_by_name(void **state)
{
    struct sites s;
    struct diag d = DIAG_INIT;
    assert_int_equal(parse(&s, &d, find_table), 0);
    assert_string_equal(sites_find(&s, "deep")->domains[0], "a.s1.test");
    assert_null(sites_find(&s, "DEEP"));
    assert_null(sites_find(&s, "nowhere"));
    assert_null(sites_local(&s));
    sites_free(&s);
}

/* ---------------------------------------------------------------- load ---- */

static void test_load_missing_is_empty(void **state)
{
    struct sites s;
    struct diag d = DIAG_INIT;
    sites_init(&s);
    assert_int_equal(sites_load(&s, "/nonexistent/onehop/sites", &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(s.n, 0);
}

static void test_load_unreadable_is_error(void **state)
{
    struct sites s;
    struct diag d = DIAG_INIT;
    sites_init(&s);
    assert_int_equal(sites_load(&s, "/", &d), -1);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].line, 0);
    assert_string_equal(d.v[0].file, "/");
    diag_free(&d);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    rowtest_add(&t, test_spec_example, NULL, "SPEC 5 example (site3 defined after its link)");
    rowtest_add(&t, test_spec_example_without_site3, NULL, "SPEC 5 example as printed");
    rowtest_add(&t, test_forms, NULL, "accepted forms");
    rowtest_add(&t, test_empty_has_no_local, NULL, "empty file");
    for (size_t i = 0; i < ROWS(bad_rows); i++)
        rowtest_add(&t, test_bad_text, &bad_rows[i], "reports %s", bad_rows[i].what);
    for (size_t i = 0; i < ROWS(find_rows); i++)
        rowtest_add(&t, test_find_by_domain, &find_rows[i], "sites_find_by_domain \"%s\"",
                    find_rows[i].domain);
    rowtest_add(&t, test_find_by_name, NULL, "sites_find by name");
    rowtest_add(&t, test_load_missing_is_empty, NULL, "missing file is an empty topology");
    rowtest_add(&t, test_load_unreadable_is_error, NULL, "unreadable file is an error");
    return rowtest_run(&t, "sites");
}
