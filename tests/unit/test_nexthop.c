/*
 * test_nexthop — golden rows for every next-hop form of SPEC 3/4/5: the
 * parsed value, the canonical text nexthop_format() prints (which parses back
 * to the same value), and every refused form; lists with their order.
 */
#include "rowtest.h"

#include <string.h>

#include "nexthop.h"

struct nh_row {
    const char *in;
    unsigned flags;
    int rc;
    enum nexthop_kind kind;
    const char *host; /* or the error text */
    unsigned port;
    int is_ip;
    const char *canonical;
};

static const struct nh_row nh_rows[] = {
    {"relay.example.net", 0, 0, NEXTHOP_MX, "relay.example.net", 0, 0, "relay.example.net"},
    {"  Relay.Example.NET.  ", 0, 0, NEXTHOP_MX, "relay.example.net", 0, 0, "relay.example.net"},
    {"relay.example.net:2526", 0, 0, NEXTHOP_MX, "relay.example.net", 2526, 0,
     "relay.example.net:2526"},
    {"[mx.partner.test]", 0, 0, NEXTHOP_HOST, "mx.partner.test", 0, 0, "[mx.partner.test]"},
    {"[mx.partner.test]:2526", 0, 0, NEXTHOP_HOST, "mx.partner.test", 2526, 0,
     "[mx.partner.test]:2526"},
    {"[192.0.2.10]:25", 0, 0, NEXTHOP_HOST, "192.0.2.10", 25, 1, "[192.0.2.10]:25"},
    {"[192.0.2.10]", 0, 0, NEXTHOP_HOST, "192.0.2.10", 0, 1, "[192.0.2.10]"},
    {"[2001:db8::1]:587", 0, 0, NEXTHOP_HOST, "2001:db8::1", 587, 1, "[2001:db8::1]:587"},
    {"[2001:db8::1]", 0, 0, NEXTHOP_HOST, "2001:db8::1", 0, 1, "[2001:db8::1]"},
    {"192.0.2.10", 0, 0, NEXTHOP_HOST, "192.0.2.10", 0, 1, "[192.0.2.10]"},
    {"192.0.2.10:2525", 0, 0, NEXTHOP_HOST, "192.0.2.10", 2525, 1, "[192.0.2.10]:2525"},
    {"2001:db8::1", 0, 0, NEXTHOP_HOST, "2001:db8::1", 0, 1, "[2001:db8::1]"},
    {"local", 0, 0, NEXTHOP_LOCAL, NULL, 0, 0, "local"},
    {"LOCAL", 0, 0, NEXTHOP_LOCAL, NULL, 0, 0, "local"},
    {"error:5.1.2 no such domain here", 0, 0, NEXTHOP_ERROR, "5.1.2 no such domain here", 0, 0,
     "error:5.1.2 no such domain here"},
    {"error:  spaced  ", 0, 0, NEXTHOP_ERROR, "spaced", 0, 0, "error:spaced"},
    {"[smarthost.isp.test]:587", NEXTHOP_NO_LOCAL | NEXTHOP_NO_ERROR, 0, NEXTHOP_HOST,
     "smarthost.isp.test", 587, 0, "[smarthost.isp.test]:587"},
    {"local.", 0, 0, NEXTHOP_MX, "local", 0, 0, "local."},
    {"local.", NEXTHOP_NO_LOCAL, 0, NEXTHOP_MX, "local", 0, 0, "local."},
    {"error.:25", NEXTHOP_NO_ERROR, 0, NEXTHOP_MX, "error", 25, 0, "error.:25"},
    {"[local]", NEXTHOP_NO_LOCAL, 0, NEXTHOP_HOST, "local", 0, 0, "[local]"},
    /* refused */
    {"local", NEXTHOP_NO_LOCAL, -1, 0, NULL, 0, 0, NULL},
    {"error:5.1.2 x", NEXTHOP_NO_ERROR, -1, 0, NULL, 0, 0, NULL},
    {"error:", 0, -1, 0, NULL, 0, 0, NULL},
    {"error:   ", 0, -1, 0, NULL, 0, 0, NULL},
    {"", 0, -1, 0, NULL, 0, 0, NULL},
    {"   ", 0, -1, 0, NULL, 0, 0, NULL},
    {"host:99999", 0, -1, 0, NULL, 0, 0, NULL},
    {"host:0", 0, -1, 0, NULL, 0, 0, NULL},
    {"[host]:0", 0, -1, 0, NULL, 0, 0, NULL},
    {"[192.0.2.1]:99999", 0, -1, 0, NULL, 0, 0, NULL},
    {"[192.0.2.1]:", 0, -1, 0, NULL, 0, 0, NULL},
    {"host:", 0, -1, 0, NULL, 0, 0, NULL},
    {"[host", 0, -1, 0, NULL, 0, 0, NULL},
    {"[]", 0, -1, 0, NULL, 0, 0, NULL},
    {"2001:db8::1:25:x", 0, -1, 0, NULL, 0, 0, NULL},
    {"bad_host.example", 0, -1, 0, NULL, 0, 0, NULL},
    {"two words", 0, -1, 0, NULL, 0, 0, NULL},
    {"a,b", 0, -1, 0, NULL, 0, 0, NULL},
    {"*", 0, -1, 0, NULL, 0, 0, NULL},
};

static void check_value(const struct nh_row *r, const struct nexthop *nh)
{
    assert_int_equal(nh->kind, r->kind);
    if (r->kind == NEXTHOP_ERROR) {
        assert_string_equal(nh->text, r->host);
        assert_null(nh->host);
    } else if (r->host) {
        assert_string_equal(nh->host, r->host);
        assert_null(nh->text);
    } else {
        assert_null(nh->host);
        assert_null(nh->text);
    }
    assert_int_equal(nh->port, r->port);
    assert_int_equal(nh->is_ip, r->is_ip);
}

static void test_nexthop_parse(void **state)
{
    const struct nh_row *r = *state;
    struct nexthop nh;
    const char *why = NULL;
    int rc = nexthop_parse(r->in, r->flags, &nh, &why);
    assert_int_equal(rc, r->rc);
    if (rc < 0) {
        assert_non_null(why);
        assert_null(nh.host);
        assert_null(nh.text);
        return;
    }
    check_value(r, &nh);
    struct buf text = BUF_INIT;
    nexthop_format(&nh, &text);
    assert_string_equal(buf_cstr(&text), r->canonical);
    nexthop_free(&nh);
    /* the canonical form reads back to the same value */
    assert_int_equal(nexthop_parse(buf_cstr(&text), r->flags, &nh, &why), 0);
    check_value(r, &nh);
    nexthop_free(&nh);
    buf_free(&text);
}

struct list_row {
    const char *in;
    unsigned flags;
    int rc;
    size_t n;
    const char *canonical[4];
};

static const struct list_row list_rows[] = {
    {"relay.example.net", 0, 0, 1, {"relay.example.net"}},
    {"[a.example]:25, b.example ,[192.0.2.1]",
     0,
     0,
     3,
     {"[a.example]:25", "b.example", "[192.0.2.1]"}},
    {"a.example,local", 0, 0, 2, {"a.example", "local"}},
    {"a.example, error:4.4.1 down, try later",
     0,
     0,
     2,
     {"a.example", "error:4.4.1 down, try later"}},
    {"error:5.1.2 no, such, domain", 0, 0, 1, {"error:5.1.2 no, such, domain"}},
    {"", 0, -1, 0, {NULL}},
    {"a.example,", 0, -1, 0, {NULL}},
    {",a.example", 0, -1, 0, {NULL}},
    {"a.example,,b.example", 0, -1, 0, {NULL}},
    {"a.example, b.example:0", 0, -1, 0, {NULL}},
    {"a.example, local", NEXTHOP_NO_LOCAL, -1, 0, {NULL}},
    {"a.example, error:x", NEXTHOP_NO_ERROR, -1, 0, {NULL}},
};

static void test_nexthop_parse_list(void **state)
{
    const struct list_row *r = *state;
    struct nexthop *v = (struct nexthop *)1;
    size_t n = 99;
    const char *why = NULL;
    int rc = nexthop_parse_list(r->in, r->flags, &v, &n, &why);
    assert_int_equal(rc, r->rc);
    if (rc < 0) {
        assert_non_null(why);
        assert_null(v);
        assert_int_equal(n, 0);
        return;
    }
    assert_int_equal(n, r->n);
    for (size_t i = 0; i < n; i++) {
        struct buf text = BUF_INIT;
        nexthop_format(&v[i], &text);
        assert_string_equal(buf_cstr(&text), r->canonical[i]);
        buf_free(&text);
    }
    nexthop_list_free(v, n);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(nh_rows); i++)
        rowtest_add(&t, test_nexthop_parse, &nh_rows[i], "nexthop_parse \"%s\" flags %u",
                    nh_rows[i].in, nh_rows[i].flags);
    for (size_t i = 0; i < ROWS(list_rows); i++)
        rowtest_add(&t, test_nexthop_parse_list, &list_rows[i], "nexthop_parse_list \"%s\"",
                    list_rows[i].in);
    return rowtest_run(&t, "nexthop");
}
