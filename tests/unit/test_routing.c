/*
 * test_routing — the routing decision (routing.h), one test per row: the
 * resolution order (local domains, every routes form and its lookup order,
 * sites rules 1-6 with site_direct_smtp yes and no, relayhost, MX, address
 * literals), alias expansion (every target kind, :include:, loops, limits,
 * duplicates), D5 (a next hop that is this host), rule 5's fallback, the
 * site rule table and local_users. Each fixture is a configuration
 * directory written to /tmp and loaded as the router loads it.
 */
#include "rowtest.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "routing.h"
#include "spec5_sites.h"

/* ------------------------------------------------------------ fixtures ---- */

static const char hub_sites[] = SPEC5_SITES "site lone    lone.example.com\n";

static const char hub_routes[] = "example.com        [192.0.2.10]:25\n"     /* line 1 */
                                 ".sub.test          relay.example.net\n"   /* 2 */
                                 "deep.sub.test      [deep.relay.test]\n"   /* 3 */
                                 ".deep.sub.test     [deeper.relay.test]\n" /* 4 */
                                 "bad.test           error:5.1.2 no such domain here\n"
                                 "plain.test         error:go away\n" /* 6 */
                                 "multi.test         a.test, [b.test]:2525, relay.test:26\n"
                                 "here.test          local\n"            /* 8 */
                                 "self.test          [127.0.0.1]:2525\n" /* 9 */
                                 "selfname.test      [mx.site1.example.com]\n";

static const char hub_aliases[] =
    "team: alice, bob@site2.example.com, \"|/usr/bin/filter --tag team\",\n"
    "      /var/mail/team.archive, :include:lists/team.txt\n"
    "loop1: loop2\nloop2: loop3\nloop3: loop1\n"
    "root: root, admin\nadmin: carol@here.test\n"
    "incloop: :include:lists/loop.txt\n"
    "missing: :include:lists/none.txt\n"
    "inccmd: :include:lists/cmd.txt\n"
    "incbad: :include:lists/bad.txt\n"
    "incdir: :include:lists\n"
    "dup: alice, alice@mx.site1.example.com, Alice@LOCALHOST, alice\n"
    "away: bob@site2.example.com\n";

struct fixture_def {
    const char *conf, *routes, *sites, *aliases;
};

static const char hub_conf[] =
    "myhostname = mx.site1.example.com\n"
    "local_users = any\n"
    "smtp_listen = 127.0.0.1:2525, [::1]:2526, 0.0.0.0:2527, 127.0.0.3:25\n";

enum { F_HUB, F_NODIRECT, F_STAR, F_RELAY, F_RELAYSELF, F_PASSWD };
static const struct fixture_def fixtures[] = {
    [F_HUB] = {hub_conf, hub_routes, hub_sites, hub_aliases},
    [F_NODIRECT] = {"myhostname = mx.site1.example.com\nlocal_users = any\nsite_direct_smtp = no\n",
                    "",
                    "site hub hub.example.com\nsite site1 site1.example.com\n"
                    "site site2 site2.example.com\nlocal site1\n"
                    "link site1 hub 10 smtp\nlink site2 hub 10 smtp\n",
                    ""},
    [F_STAR] = {"myhostname = mx.site1.example.com\nrelayhost = [relay.isp.test]:587\n",
                "* [smarthost.isp.test]:587\n", hub_sites, ""},
    [F_RELAY] = {"myhostname = mx.site1.example.com\nrelayhost = [relay.isp.test]:587\n", "",
                 hub_sites, ""},
    [F_RELAYSELF] = {"myhostname = mx.site1.example.com\nrelayhost = mx.site1.example.com\n", "",
                     "", ""},
    [F_PASSWD] = {"myhostname = mx.site1.example.com\nlocal_users = passwd\n", "", "", ""},
};

struct fixture {
    char dir[128];
    struct conf conf;
    struct routing rt;
};

static void write_file(const char *dir, const char *name, const char *text)
{
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/%s", dir, name);
    FILE *f = fopen(buf_cstr(&path), "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    buf_free(&path);
}

static void fixture_load(struct fixture *f, int which)
{
    const struct fixture_def *def = &fixtures[which];
    struct diag d = DIAG_INIT;
    test_temp_dir(f->dir, sizeof(f->dir), "routing");
    write_file(f->dir, "onehop.conf", def->conf);
    write_file(f->dir, "routes", def->routes);
    write_file(f->dir, "sites", def->sites);
    write_file(f->dir, "aliases", def->aliases);
    struct buf lists = BUF_INIT;
    buf_printf(&lists, "%s/lists", f->dir);
    assert_int_equal(mkdir(buf_cstr(&lists), 0700), 0);
    buf_free(&lists);
    write_file(f->dir, "lists/team.txt", "dave\n# a comment\nerin@example.com, frank\n");
    write_file(f->dir, "lists/loop.txt", ":include:lists/loop.txt\n");
    write_file(f->dir, "lists/cmd.txt", "|/bin/sh\n");
    write_file(f->dir, "lists/bad.txt", "gina\nbad@@address\n");
    conf_load(&f->conf, f->dir, &d);
    routing_load(&f->rt, &f->conf, &d);
    if (d.n)
        diag_print(&d, stderr);
    assert_int_equal(d.n, 0);
    diag_free(&d);
}

static void fixture_free(struct fixture *f)
{
    routing_free(&f->rt);
    conf_free(&f->conf);
    assert_int_equal(test_remove_tree(f->dir), 0);
}

/* "mx:host", the canonical form for [host] and [ip], "local", "error", joined by ", ". */
static void hops_text(const struct route_result *r, struct buf *out)
{
    for (size_t i = 0; i < r->nhops; i++) {
        if (i)
            buf_adds(out, ", ");
        if (r->hops[i].kind == NEXTHOP_MX)
            buf_adds(out, "mx:");
        nexthop_format(&r->hops[i], out);
    }
}

static void path_text(const struct routing *rt, const struct route_result *r, struct buf *out)
{
    for (size_t i = 0; i < r->npath; i++)
        buf_printf(out, "%s%s", i ? "->" : "", rt->sites.v[r->path[i]].name);
}

/* --------------------------------------------------------- resolution ---- */

struct resolve_row {
    int fixture;
    const char *address;
    size_t nresults; /* results of the address */
    size_t index;    /* the result checked */
    const char *recipient;
    enum route_rule rule;
    enum route_action action;
    unsigned line;    /* routes / aliases line, 0 when none */
    const char *hops; /* hops_text, "" when none */
    unsigned hop_count;
    const char *path;   /* path_text */
    const char *status; /* NULL when delivered */
    const char *reason; /* a part of it, NULL when delivered */
};

#define LOCAL_HOP "local"
static const struct resolve_row resolve_rows[] = {
    /* SPEC 5 with the hub and two spokes, site_direct_smtp = yes */
    {F_HUB, "bob@site2.example.com", 1, 0, "bob@site2.example.com", RULE_SITE_DIRECT, ROUTE_REMOTE,
     0, "mx:site2.example.com", 1, "site1->hub->site2", NULL, NULL},
    {F_HUB, "bob@Sub.Site2.example.com", 1, 0, "bob@sub.site2.example.com", RULE_SITE_DIRECT,
     ROUTE_REMOTE, 0, "mx:sub.site2.example.com", 1, "site1->hub->site2", NULL, NULL},
    {F_HUB, "x@site3.example.com", 1, 0, "x@site3.example.com", RULE_SITE_GATEWAY, ROUTE_REMOTE, 0,
     "[gw.hub.example.com]", 2, "site1->hub->site3", NULL, NULL}, /* rpc link: rule 4 */
    {F_HUB, "y@site1.example.com", 1, 0, "y@site1.example.com", RULE_SITE_LOCAL, ROUTE_LOCAL, 0,
     LOCAL_HOP, 0, "site1", NULL, NULL},
    {F_HUB, "y@corp1.example", 1, 0, "y@corp1.example", RULE_SITE_LOCAL, ROUTE_LOCAL, 0, LOCAL_HOP,
     0, "site1", NULL, NULL},
    {F_HUB, "h@hub.example.com", 1, 0, "h@hub.example.com", RULE_SITE_DIRECT, ROUTE_REMOTE, 0,
     "mx:hub.example.com", 1, "site1->hub", NULL, NULL},
    {F_HUB, "y@lone.example.com", 1, 0, "y@lone.example.com", RULE_MX, ROUTE_REMOTE, 0,
     "mx:lone.example.com", 1, "", NULL, NULL}, /* rule 6: no path */
    {F_HUB, "y@gmail.test", 1, 0, "y@gmail.test", RULE_MX, ROUTE_REMOTE, 0, "mx:gmail.test", 1, "",
     NULL, NULL},
    /* every routes form and the lookup order */
    {F_HUB, "a@example.com", 1, 0, "a@example.com", RULE_ROUTE, ROUTE_REMOTE, 1, "[192.0.2.10]:25",
     1, "", NULL, NULL},
    {F_HUB, "a@x.sub.test", 1, 0, "a@x.sub.test", RULE_ROUTE, ROUTE_REMOTE, 2,
     "mx:relay.example.net", 1, "", NULL, NULL},
    {F_HUB, "a@sub.test", 1, 0, "a@sub.test", RULE_MX, ROUTE_REMOTE, 0, "mx:sub.test", 1, "", NULL,
     NULL}, /* .sub.test is its subdomains only */
    {F_HUB, "a@deep.sub.test", 1, 0, "a@deep.sub.test", RULE_ROUTE, ROUTE_REMOTE, 3,
     "[deep.relay.test]", 1, "", NULL, NULL}, /* exact before .sub.test */
    {F_HUB, "a@x.deep.sub.test", 1, 0, "a@x.deep.sub.test", RULE_ROUTE, ROUTE_REMOTE, 4,
     "[deeper.relay.test]", 1, "", NULL, NULL}, /* the nearest parent first */
    {F_HUB, "a@bad.test", 1, 0, "a@bad.test", RULE_ROUTE, ROUTE_BOUNCE, 5, "", 0, "", "5.1.2",
     "no such domain here"},
    {F_HUB, "a@plain.test", 1, 0, "a@plain.test", RULE_ROUTE, ROUTE_BOUNCE, 6, "", 0, "", "5.0.0",
     "go away"},
    {F_HUB, "a@multi.test", 1, 0, "a@multi.test", RULE_ROUTE, ROUTE_REMOTE, 7,
     "mx:a.test, [b.test]:2525, mx:relay.test:26", 1, "", NULL, NULL},
    {F_HUB, "a@here.test", 1, 0, "a@here.test", RULE_ROUTE, ROUTE_LOCAL, 8, LOCAL_HOP, 0, "", NULL,
     NULL},
    /* D5: a route back to this host */
    {F_HUB, "a@self.test", 1, 0, "a@self.test", RULE_ROUTE, ROUTE_DEFER, 9, "[127.0.0.1]:2525", 1,
     "", "4.4.6", "loops back to myself"},
    {F_HUB, "a@selfname.test", 1, 0, "a@selfname.test", RULE_ROUTE, ROUTE_DEFER, 10,
     "[mx.site1.example.com]", 1, "", "4.4.6", "loops back to myself"},
    /* local domains and bare names */
    {F_HUB, "alice@localhost", 1, 0, "alice@localhost", RULE_LOCAL, ROUTE_LOCAL, 0, LOCAL_HOP, 0,
     "", NULL, NULL},
    {F_HUB, "alice", 1, 0, "alice@mx.site1.example.com", RULE_LOCAL, ROUTE_LOCAL, 0, LOCAL_HOP, 0,
     "", NULL, NULL},
    {F_HUB, "<bad", 1, 0, "<bad", RULE_NONE, ROUTE_BOUNCE, 0, "", 0, "", "5.1.3", ""},
    /* address literals */
    {F_HUB, "u@[192.0.2.7]", 1, 0, "u@[192.0.2.7]", RULE_LITERAL, ROUTE_REMOTE, 0, "[192.0.2.7]", 1,
     "", NULL, NULL},
    {F_HUB, "u@[IPv6:2001:db8::7]", 1, 0, "u@[IPv6:2001:db8::7]", RULE_LITERAL, ROUTE_REMOTE, 0,
     "[2001:db8::7]", 1, "", NULL, NULL},
    {F_HUB, "u@[127.0.0.3]", 1, 0, "u@[127.0.0.3]", RULE_LITERAL, ROUTE_LOCAL, 0, LOCAL_HOP, 0, "",
     NULL, NULL}, /* an address this host listens on (remote_port 25) */
    {F_HUB, "u@[127.0.0.1]", 1, 0, "u@[127.0.0.1]", RULE_LITERAL, ROUTE_REMOTE, 0, "[127.0.0.1]", 1,
     "", NULL, NULL}, /* listened on 2525, not on remote_port */
    /* aliases: every target kind, :include:, loops, duplicates */
    {F_HUB, "team@localhost", 7, 0, "alice@mx.site1.example.com", RULE_LOCAL, ROUTE_LOCAL, 0,
     LOCAL_HOP, 0, "", NULL, NULL},
    {F_HUB, "team@localhost", 7, 1, "bob@site2.example.com", RULE_SITE_DIRECT, ROUTE_REMOTE, 0,
     "mx:site2.example.com", 1, "site1->hub->site2", NULL, NULL},
    {F_HUB, "team@localhost", 7, 2, "|/usr/bin/filter --tag team", RULE_ALIAS_COMMAND, ROUTE_LOCAL,
     1, LOCAL_HOP, 0, "", NULL, NULL},
    {F_HUB, "team@localhost", 7, 3, "/var/mail/team.archive", RULE_ALIAS_FILE, ROUTE_LOCAL, 2,
     LOCAL_HOP, 0, "", NULL, NULL},
    {F_HUB, "team@localhost", 7, 4, "dave@mx.site1.example.com", RULE_LOCAL, ROUTE_LOCAL, 0,
     LOCAL_HOP, 0, "", NULL, NULL},
    {F_HUB, "team@localhost", 7, 5, "erin@example.com", RULE_ROUTE, ROUTE_REMOTE, 1,
     "[192.0.2.10]:25", 1, "", NULL, NULL},
    {F_HUB, "team@localhost", 7, 6, "frank@mx.site1.example.com", RULE_LOCAL, ROUTE_LOCAL, 0,
     LOCAL_HOP, 0, "", NULL, NULL},
    {F_HUB, "loop1", 1, 0, "loop1@mx.site1.example.com", RULE_ALIAS, ROUTE_BOUNCE, 5, "", 0, "",
     "5.4.6", "alias loop: loop1 -> loop2 -> loop3 -> loop1"},
    {F_HUB, "root@localhost", 2, 0, "root@mx.site1.example.com", RULE_LOCAL, ROUTE_LOCAL, 0,
     LOCAL_HOP, 0, "", NULL, NULL}, /* "root: root, admin": root's own mailbox */
    {F_HUB, "root@localhost", 2, 1, "carol@here.test", RULE_ROUTE, ROUTE_LOCAL, 8, LOCAL_HOP, 0, "",
     NULL, NULL},
    {F_HUB, "incloop@localhost", 1, 0, ":include:lists/loop.txt", RULE_ALIAS, ROUTE_BOUNCE, 8, "",
     0, "", "5.4.6", "alias loop"},
    {F_HUB, "missing@localhost", 1, 0, ":include:lists/none.txt", RULE_ALIAS, ROUTE_DEFER, 9, "", 0,
     "", "4.3.0", "does not exist"},
    {F_HUB, "inccmd@localhost", 1, 0, "|/bin/sh", RULE_ALIAS_COMMAND, ROUTE_BOUNCE, 10, "", 0, "",
     "5.7.1", "not allowed from an :include: file"},
    {F_HUB, "incbad@localhost", 1, 0, ":include:lists/bad.txt", RULE_ALIAS, ROUTE_DEFER, 11, "", 0,
     "", "4.3.0", "lists/bad.txt:2: "},
    {F_HUB, "incdir@localhost", 1, 0, ":include:lists", RULE_ALIAS, ROUTE_DEFER, 12, "", 0, "",
     "4.3.0", "/lists: "}, /* a directory: unreadable */
    {F_HUB, "dup@localhost", 2, 0, "alice@mx.site1.example.com", RULE_LOCAL, ROUTE_LOCAL, 0,
     LOCAL_HOP, 0, "", NULL, NULL},
    {F_HUB, "dup@localhost", 2, 1, "Alice@localhost", RULE_LOCAL, ROUTE_LOCAL, 0, LOCAL_HOP, 0, "",
     NULL, NULL},
    /* site_direct_smtp = no, a first link with no gateway: the far site's MX */
    {F_NODIRECT, "bob@site2.example.com", 1, 0, "bob@site2.example.com", RULE_SITE_GATEWAY,
     ROUTE_REMOTE, 0, "mx:hub.example.com", 2, "site1->hub->site2", NULL, NULL},
    {F_NODIRECT, "h@hub.example.com", 1, 0, "h@hub.example.com", RULE_SITE_GATEWAY, ROUTE_REMOTE, 0,
     "mx:hub.example.com", 1, "site1->hub", NULL, NULL},
    /* a `*` route comes before sites and relayhost (step 3) */
    {F_STAR, "bob@site2.example.com", 1, 0, "bob@site2.example.com", RULE_ROUTE, ROUTE_REMOTE, 1,
     "[smarthost.isp.test]:587", 2, "", NULL, NULL},
    {F_STAR, "y@gmail.test", 1, 0, "y@gmail.test", RULE_ROUTE, ROUTE_REMOTE, 1,
     "[smarthost.isp.test]:587", 2, "", NULL, NULL},
    /* relayhost after sites, before MX */
    {F_RELAY, "y@gmail.test", 1, 0, "y@gmail.test", RULE_RELAYHOST, ROUTE_REMOTE, 0,
     "[relay.isp.test]:587", 2, "", NULL, NULL},
    {F_RELAY, "y@lone.example.com", 1, 0, "y@lone.example.com", RULE_RELAYHOST, ROUTE_REMOTE, 0,
     "[relay.isp.test]:587", 2, "", NULL, NULL},
    {F_RELAY, "bob@site2.example.com", 1, 0, "bob@site2.example.com", RULE_SITE_DIRECT,
     ROUTE_REMOTE, 0, "mx:site2.example.com", 1, "site1->hub->site2", NULL, NULL},
    {F_RELAYSELF, "y@gmail.test", 1, 0, "y@gmail.test", RULE_RELAYHOST, ROUTE_DEFER, 0,
     "mx:mx.site1.example.com", 2, "", "4.4.6", "loops back to myself"},
    /* local_users = passwd */
    {F_PASSWD, "root@localhost", 1, 0, "root@localhost", RULE_LOCAL, ROUTE_LOCAL, 0, LOCAL_HOP, 0,
     "", NULL, NULL},
    {F_PASSWD, "no-such-user-zq@localhost", 1, 0, "no-such-user-zq@localhost", RULE_LOCAL,
     ROUTE_BOUNCE, 0, LOCAL_HOP, 0, "", "5.1.1", "no such user"},
};

static void test_resolve(void **state)
{
    const struct resolve_row *row = *state;
    struct fixture f;
    struct route_results res = ROUTE_RESULTS_INIT;
    struct buf hops = BUF_INIT, path = BUF_INIT;
    fixture_load(&f, row->fixture);
    routing_resolve(&f.rt, row->address, &res);
    assert_int_equal(res.n, row->nresults);
    const struct route_result *r = &res.v[row->index];
    hops_text(r, &hops);
    path_text(&f.rt, r, &path);
    assert_string_equal(r->recipient, row->recipient);
    assert_string_equal(route_rule_name(r->rule), route_rule_name(row->rule));
    assert_string_equal(route_action_name(r->action), route_action_name(row->action));
    assert_int_equal(r->line, row->line);
    if (r->action != ROUTE_BOUNCE)
        assert_string_equal(buf_cstr(&hops), row->hops);
    assert_int_equal(r->hop_count, row->hop_count);
    assert_string_equal(buf_cstr(&path), row->path);
    if (row->status) {
        assert_string_equal(r->status, row->status);
        assert_non_null(strstr(r->reason, row->reason));
    } else {
        assert_null(r->status);
        assert_null(r->reason);
    }
    buf_free(&hops);
    buf_free(&path);
    route_results_free(&res);
    fixture_free(&f);
}

/* -------------------------------------------------------- site rules ---- */

struct site_rule_row {
    int is_local, reached, direct_smtp, all_smtp;
    enum route_rule rule;
};

static const struct site_rule_row site_rule_rows[] = {
    {1, 0, 0, 0, RULE_SITE_LOCAL},   {1, 0, 0, 1, RULE_SITE_LOCAL},
    {1, 0, 1, 0, RULE_SITE_LOCAL},   {1, 0, 1, 1, RULE_SITE_LOCAL},
    {1, 1, 0, 0, RULE_SITE_LOCAL},   {1, 1, 0, 1, RULE_SITE_LOCAL},
    {1, 1, 1, 0, RULE_SITE_LOCAL},   {1, 1, 1, 1, RULE_SITE_LOCAL}, /* rule 1 */
    {0, 0, 0, 0, RULE_NONE},         {0, 0, 0, 1, RULE_NONE},
    {0, 0, 1, 0, RULE_NONE},         {0, 0, 1, 1, RULE_NONE}, /* rule 6 */
    {0, 1, 1, 1, RULE_SITE_DIRECT},                           /* rule 3 */
    {0, 1, 0, 0, RULE_SITE_GATEWAY}, {0, 1, 0, 1, RULE_SITE_GATEWAY},
    {0, 1, 1, 0, RULE_SITE_GATEWAY}, /* rule 4 */
};

static void test_site_rule(void **state)
{
    const struct site_rule_row *row = *state;
    assert_string_equal(route_rule_name(routing_site_rule(row->is_local, row->reached,
                                                          row->direct_smtp, row->all_smtp)),
                        route_rule_name(row->rule));
}

/* ----------------------------------------------------------------- D5 ---- */

struct self_row {
    const char *nexthop;
    int is_self;
};

static const struct self_row self_rows[] = {
    {"[127.0.0.3]", 1}, /* no port: remote_port (25) */
    {"[127.0.0.1]:2525", 1},
    {"[127.0.0.1]:25", 0}, /* another port */
    {"[127.0.0.2]:2525", 0},
    {"[::1]:2526", 1},
    {"[::1]:2525", 0},
    {"[127.0.0.9]:2527", 1}, /* 0.0.0.0:2527 binds every loopback address */
    {"[192.0.2.1]:2527", 0}, /* not known to be ours */
    {"[mx.site1.example.com]", 1},
    {"mx.site1.example.com", 1},
    {"MX.Site1.Example.COM.:2600", 1},
    {"localhost", 1}, /* a local domain */
    {"[other.test]", 0},
    {"other.test", 0},
    {"local", 0},
};

static void test_self(void **state)
{
    const struct self_row *row = *state;
    struct fixture f;
    struct nexthop nh;
    const char *why;
    fixture_load(&f, F_HUB);
    assert_int_equal(nexthop_parse(row->nexthop, 0, &nh, &why), 0);
    assert_int_equal(routing_nexthop_is_self(&f.rt, &nh), row->is_self);
    nexthop_free(&nh);
    fixture_free(&f);
}

/* ---------------------------------------------------- rule 5 fallback ---- */

struct fallback_row {
    int fixture;
    const char *address;
    int has_fallback;
    const char *hops;
    unsigned hop_count;
};

static const struct fallback_row fallback_rows[] = {
    {F_HUB, "bob@site2.example.com", 1, "[gw.hub.example.com]", 2},
    {F_HUB, "h@hub.example.com", 1, "[gw.hub.example.com]", 1},
    {F_RELAY, "bob@site2.example.com", 1, "[gw.hub.example.com]", 2},
    {F_HUB, "x@site3.example.com", 0, NULL, 0}, /* already by the path */
    {F_HUB, "y@gmail.test", 0, NULL, 0},
    {F_HUB, "y@site1.example.com", 0, NULL, 0},
};

static void test_fallback(void **state)
{
    const struct fallback_row *row = *state;
    struct fixture f;
    struct route_results res = ROUTE_RESULTS_INIT;
    struct route_result fb;
    fixture_load(&f, row->fixture);
    routing_resolve(&f.rt, row->address, &res);
    assert_int_equal(res.n, 1);
    int got = routing_site_fallback(&f.rt, &res.v[0], &fb);
    assert_int_equal(got == 0, row->has_fallback);
    if (got == 0) {
        struct buf hops = BUF_INIT;
        hops_text(&fb, &hops);
        assert_string_equal(route_rule_name(fb.rule), "site-gateway");
        assert_string_equal(buf_cstr(&hops), row->hops);
        assert_int_equal(fb.hop_count, row->hop_count);
        assert_string_equal(fb.recipient, row->address);
        buf_free(&hops);
        route_result_free(&fb);
    }
    route_results_free(&res);
    fixture_free(&f);
}

/* ------------------------------------------------------------- limits ---- */

/* A routing moved by assignment (a reload swaps one in) still routes by its
 * site paths: nothing in it points into the struct it was loaded in (the
 * old place is scribbled over before use). */
static void test_moved_routing(void **state)
{
    struct fixture f;
    struct routing moved;
    struct route_results res = ROUTE_RESULTS_INIT;
    struct buf path = BUF_INIT;
    fixture_load(&f, F_HUB);
    moved = f.rt;
    memset(&f.rt, 0xa5, sizeof(f.rt));
    routing_resolve(&moved, "bob@site2.example.com", &res);
    assert_int_equal(res.n, 1);
    path_text(&moved, &res.v[0], &path);
    assert_string_equal(buf_cstr(&path), "site1->hub->site2");
    assert_string_equal(route_rule_name(res.v[0].rule), "site-direct");
    f.rt = moved;
    route_results_free(&res);
    buf_free(&path);
    fixture_free(&f);
}

/* A fixture of only an aliases file (local_users = any). */
static void fixture_aliases_only(struct fixture *f, const char *aliases)
{
    struct diag d = DIAG_INIT;
    test_temp_dir(f->dir, sizeof(f->dir), "routing");
    write_file(f->dir, "onehop.conf", "myhostname = h.test\nlocal_users = any\n");
    write_file(f->dir, "aliases", aliases);
    conf_load(&f->conf, f->dir, &d);
    routing_load(&f->rt, &f->conf, &d);
    assert_int_equal(d.n, 0);
    diag_free(&d);
}

/* A chain of nested aliases deeper than ROUTING_MAX_DEPTH stops there. */
static void test_depth_limit(void **state)
{
    struct buf aliases = BUF_INIT;
    struct fixture f;
    struct route_results res = ROUTE_RESULTS_INIT;
    for (int i = 0; i < ROUTING_MAX_DEPTH + 5; i++)
        buf_printf(&aliases, "a%d: a%d\n", i, i + 1);
    fixture_aliases_only(&f, buf_cstr(&aliases));
    routing_resolve(&f.rt, "a0", &res);
    assert_int_equal(res.n, 1);
    assert_string_equal(res.v[0].status, "5.4.6");
    assert_non_null(strstr(res.v[0].reason, "nested deeper than 20"));
    route_results_free(&res);
    buf_free(&aliases);
    fixture_free(&f);
}

/* A fan-out of 3 over 18 levels (3^18 walks if each alias were expanded at
 * every mention) expands each alias once: 18 leaves and the last alias's
 * target, well within a second. */
static void test_fan_out_expands_each_alias_once(void **state)
{
    struct buf aliases = BUF_INIT;
    struct fixture f;
    struct route_results res = ROUTE_RESULTS_INIT;
    struct timespec t0, t1;
    for (int i = 0; i < 18; i++)
        buf_printf(&aliases, "a%d: a%d, a%d, a%d, leaf%d@remote.test\n", i, i + 1, i + 1, i + 1, i);
    buf_adds(&aliases, "a18: last@remote.test\n");
    fixture_aliases_only(&f, buf_cstr(&aliases));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    routing_resolve(&f.rt, "a0", &res);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(res.n, 19);
    assert_string_equal(res.v[0].recipient, "last@remote.test");
    assert_string_equal(res.v[18].recipient, "leaf0@remote.test");
    for (size_t i = 0; i < res.n; i++)
        assert_string_equal(route_action_name(res.v[i].action), "remote");
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(took < 1.0);
    route_results_free(&res);
    buf_free(&aliases);
    fixture_free(&f);
}

/* An alias with more than ROUTING_MAX_RESULTS recipients ends in one bounce
 * row after the first ROUTING_MAX_RESULTS. */
static void test_results_limit(void **state)
{
    struct buf aliases = BUF_INIT;
    struct fixture f;
    struct route_results res = ROUTE_RESULTS_INIT;
    buf_adds(&aliases, "big: ");
    for (int i = 0; i < ROUTING_MAX_RESULTS + 10; i++)
        buf_printf(&aliases, "%su%d@remote.test", i ? ", " : "", i);
    buf_addc(&aliases, '\n');
    fixture_aliases_only(&f, buf_cstr(&aliases));
    routing_resolve(&f.rt, "big", &res);
    assert_int_equal(res.n, ROUTING_MAX_RESULTS + 1);
    assert_string_equal(res.v[ROUTING_MAX_RESULTS].status, "5.5.3");
    assert_string_equal(res.v[ROUTING_MAX_RESULTS - 1].recipient, "u999@remote.test");
    route_results_free(&res);
    buf_free(&aliases);
    fixture_free(&f);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(resolve_rows); i++)
        rowtest_add(&t, test_resolve, &resolve_rows[i], "resolve %s [%zu] (row %zu)",
                    resolve_rows[i].address, resolve_rows[i].index, i);
    for (size_t i = 0; i < ROWS(site_rule_rows); i++)
        rowtest_add(&t, test_site_rule, &site_rule_rows[i],
                    "site rule local=%d path=%d direct=%d "
                    "smtp=%d",
                    site_rule_rows[i].is_local, site_rule_rows[i].reached,
                    site_rule_rows[i].direct_smtp, site_rule_rows[i].all_smtp);
    for (size_t i = 0; i < ROWS(self_rows); i++)
        rowtest_add(&t, test_self, &self_rows[i], "D5 self %s", self_rows[i].nexthop);
    for (size_t i = 0; i < ROWS(fallback_rows); i++)
        rowtest_add(&t, test_fallback, &fallback_rows[i], "rule 5 fallback %s",
                    fallback_rows[i].address);
    rowtest_add(&t, test_moved_routing, NULL, "a moved routing still routes");
    rowtest_add(&t, test_depth_limit, NULL, "alias depth limit");
    rowtest_add(&t, test_results_limit, NULL, "alias results limit");
    rowtest_add(&t, test_fan_out_expands_each_alias_once, NULL, "alias fan-out expanded once");
    return rowtest_run(&t, "routing");
}
