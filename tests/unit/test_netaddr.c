/*
 * test_netaddr — a test per row: host names (RFC 1123), IP literals,
 * HOST:PORT in every form with every flag, CIDR parsing and matching
 * (IPv4-mapped IPv6 clients against IPv4 networks).
 */
#include "rowtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "netaddr.h"

struct name_row {
    const char *in;
    int valid;
};

static const struct name_row name_rows[] = {
    {"example.com", 1},
    {"Mail.Example.COM", 1},
    {"example.com.", 1},
    {"localhost", 1},
    {"a-b.c0", 1},
    {"3com.net", 1},
    {"xn--bcher-kva.example", 1},
    {"", 0},
    {".", 0},
    {"example..com", 0},
    {".example.com", 0},
    {"-a.example", 0},
    {"a-.example", 0},
    {"under_score.example", 0},
    {"sp ace.example", 0},
    {"1.2.3.4", 0},
    {"1.2.3.256", 0},
    {"123", 0},
    {"a.b:25", 0},
    {"[a.b]", 0},
    /* 63-byte label ok, 64 not */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", 1},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", 0},
};

static void test_hostname_valid(void **state)
{
    const struct name_row *r = *state;
    assert_int_equal(hostname_valid(r->in), r->valid);
}

/* 253 bytes in all are allowed (plus a trailing dot), 254 are not. */
static void test_hostname_length(void **state)
{
    (void)state;
    char name[260];
    memset(name, 'a', sizeof(name));
    for (size_t i = 63; i < sizeof(name); i += 64)
        name[i] = '.';
    name[253] = '\0'; /* labels 63.63.63.61 */
    assert_int_equal(hostname_valid(name), 1);
    name[253] = '.';
    name[254] = '\0';
    assert_int_equal(hostname_valid(name), 1);
    name[253] = 'a';
    assert_int_equal(hostname_valid(name), 0);
}

struct ip_row {
    const char *in;
    int family;
};

static const struct ip_row ip_rows[] = {
    {"127.0.0.1", AF_INET},
    {"0.0.0.0", AF_INET},
    {"::", AF_INET6},
    {"::1", AF_INET6},
    {"2001:db8::1", AF_INET6},
    {"::ffff:10.1.2.3", AF_INET6},
    {"1.2.3", 0},
    {"1.2.3.256", 0},
    {"[::1]", 0},
    {"example.com", 0},
    {"", 0},
    {"::1%eth0", 0},
    {" 1.2.3.4", 0},
};

static void test_ip_literal(void **state)
{
    const struct ip_row *r = *state;
    unsigned char addr[16];
    assert_int_equal(ip_literal(r->in, addr), r->family);
}

struct hp_row {
    const char *in;
    unsigned flags;
    int rc;
    const char *host;
    unsigned port;
    int bracketed, family;
};

static const struct hp_row hp_rows[] = {
    {"mx.example.com", 0, 0, "mx.example.com", 0, 0, 0},
    {"MX.Example.COM.", 0, 0, "mx.example.com", 0, 0, 0},
    {"mx.example.com:2525", 0, 0, "mx.example.com", 2525, 0, 0},
    {"[mx.example.com]", 0, 0, "mx.example.com", 0, 1, 0},
    {"[mx.example.com]:587", 0, 0, "mx.example.com", 587, 1, 0},
    {"1.2.3.4", 0, 0, "1.2.3.4", 0, 0, AF_INET},
    {"1.2.3.4:25", 0, 0, "1.2.3.4", 25, 0, AF_INET},
    {"[1.2.3.4]:25", 0, 0, "1.2.3.4", 25, 1, AF_INET},
    {"[2001:db8::1]", 0, 0, "2001:db8::1", 0, 1, AF_INET6},
    {"[2001:db8::1]:25", 0, 0, "2001:db8::1", 25, 1, AF_INET6},
    {"2001:db8::1", 0, 0, "2001:db8::1", 0, 0, AF_INET6},
    {"2001:DB8::A", 0, 0, "2001:db8::a", 0, 0, AF_INET6},
    {"[2001:DB8::A]:25", 0, 0, "2001:db8::a", 25, 1, AF_INET6},
    {"x:65535", 0, 0, "x", 65535, 0, 0},
    {"x:1", 0, 0, "x", 1, 0, 0},
    {"x:0", 0, -1, NULL, 0, 0, 0},
    {"x:65536", 0, -1, NULL, 0, 0, 0},
    {"x:99999", 0, -1, NULL, 0, 0, 0},
    {"x:", 0, -1, NULL, 0, 0, 0},
    {"x:-1", 0, -1, NULL, 0, 0, 0},
    {"x:25x", 0, -1, NULL, 0, 0, 0},
    {":25", 0, -1, NULL, 0, 0, 0},
    {"", 0, -1, NULL, 0, 0, 0},
    {"[]", 0, -1, NULL, 0, 0, 0},
    {"[]:25", 0, -1, NULL, 0, 0, 0},
    {"[x", 0, -1, NULL, 0, 0, 0},
    {"[x]y", 0, -1, NULL, 0, 0, 0},
    {"[x]:", 0, -1, NULL, 0, 0, 0},
    {"2001:db8::1:25x", 0, -1, NULL, 0, 0, 0},
    {"bad_name", 0, -1, NULL, 0, 0, 0},
    {"1.2.3.256", 0, -1, NULL, 0, 0, 0},
    {"a b", 0, -1, NULL, 0, 0, 0},
    /* HP_REQUIRE_IP */
    {"1.2.3.4", HP_REQUIRE_IP, 0, "1.2.3.4", 0, 0, AF_INET},
    {"[::1]:53", HP_REQUIRE_IP, 0, "::1", 53, 1, AF_INET6},
    {"ns.example", HP_REQUIRE_IP, -1, NULL, 0, 0, 0},
    {"[ns.example]:53", HP_REQUIRE_IP, -1, NULL, 0, 0, 0},
    /* HP_REQUIRE_PORT */
    {"127.0.0.1:2525", HP_REQUIRE_PORT, 0, "127.0.0.1", 2525, 0, AF_INET},
    {"127.0.0.1", HP_REQUIRE_PORT, -1, NULL, 0, 0, 0},
    {"::1", HP_REQUIRE_PORT, -1, NULL, 0, 0, 0},
    /* HP_ALLOW_WILDCARD */
    {"*:25", HP_ALLOW_WILDCARD | HP_REQUIRE_PORT, 0, "*", 25, 0, 0},
    {"*:25", HP_REQUIRE_PORT, -1, NULL, 0, 0, 0},
    {"[*]:25", HP_ALLOW_WILDCARD, -1, NULL, 0, 0, 0},
    {"[::]:25", HP_ALLOW_WILDCARD | HP_REQUIRE_IP | HP_REQUIRE_PORT, 0, "::", 25, 1, AF_INET6},
    {"0.0.0.0:25", HP_ALLOW_WILDCARD | HP_REQUIRE_IP | HP_REQUIRE_PORT, 0, "0.0.0.0", 25, 0,
     AF_INET},
};

static void test_hostport_parse(void **state)
{
    const struct hp_row *r = *state;
    struct hostport hp;
    const char *why = NULL;
    int rc = hostport_parse(r->in, r->flags, &hp, &why);
    assert_int_equal(rc, r->rc);
    if (rc < 0) {
        assert_non_null(why);
        assert_null(hp.host);
        return;
    }
    assert_string_equal(hp.host, r->host);
    assert_int_equal(hp.port, r->port);
    assert_int_equal(hp.bracketed, r->bracketed);
    assert_int_equal(hp.family, r->family);
    hostport_free(&hp);
    assert_null(hp.host);
}

struct cidr_row {
    const char *in;
    int rc, family;
    unsigned prefix;
};

static const struct cidr_row cidr_rows[] = {
    {"127.0.0.0/8", 0, AF_INET, 8},
    {"10.1.2.3", 0, AF_INET, 32},
    {"0.0.0.0/0", 0, AF_INET, 0},
    {"192.168.1.128/25", 0, AF_INET, 25},
    {"::1/128", 0, AF_INET6, 128},
    {"::1", 0, AF_INET6, 128},
    {"2001:db8::/32", 0, AF_INET6, 32},
    {"[::1]/128", 0, AF_INET6, 128},
    {"[2001:db8::]/32", 0, AF_INET6, 32},
    {"::/0", 0, AF_INET6, 0},
    {"127.0.0.1/8", -1, 0, 0},
    {"192.168.1.129/25", -1, 0, 0},
    {"2001:db8::1/32", -1, 0, 0},
    {"10.0.0.0/33", -1, 0, 0},
    {"::/129", -1, 0, 0},
    {"10.0.0.0/", -1, 0, 0},
    {"10.0.0.0/-1", -1, 0, 0},
    {"10.0.0.0/8x", -1, 0, 0},
    {"10.0.0/8", -1, 0, 0},
    {"example.com/8", -1, 0, 0},
    {"", -1, 0, 0},
    {"/8", -1, 0, 0},
};

static void test_cidr_parse(void **state)
{
    const struct cidr_row *r = *state;
    struct cidr net;
    const char *why = NULL;
    int rc = cidr_parse(r->in, &net, &why);
    assert_int_equal(rc, r->rc);
    if (rc < 0) {
        assert_non_null(why);
        return;
    }
    assert_int_equal(net.family, r->family);
    assert_int_equal(net.prefix, r->prefix);
}

struct match_row {
    const char *net;
    const char *addr; /* as a sockaddr of its own family */
    int match;
};

static const struct match_row match_rows[] = {
    {"127.0.0.0/8", "127.0.0.1", 1},
    {"127.0.0.0/8", "127.255.255.255", 1},
    {"127.0.0.0/8", "128.0.0.1", 0},
    {"127.0.0.0/8", "::ffff:127.0.0.1", 1},
    {"127.0.0.0/8", "::ffff:128.0.0.1", 0},
    {"127.0.0.0/8", "::1", 0},
    {"127.0.0.0/8", "::127.0.0.1", 0},
    {"192.168.1.128/25", "192.168.1.200", 1},
    {"192.168.1.128/25", "192.168.1.127", 0},
    {"10.1.2.3", "10.1.2.3", 1},
    {"10.1.2.3", "10.1.2.4", 0},
    {"0.0.0.0/0", "203.0.113.9", 1},
    {"0.0.0.0/0", "::ffff:203.0.113.9", 1},
    {"0.0.0.0/0", "2001:db8::1", 0},
    {"::1/128", "::1", 1},
    {"::1/128", "::2", 0},
    {"::1/128", "127.0.0.1", 0},
    {"2001:db8::/32", "2001:db8:ffff::1", 1},
    {"2001:db8::/32", "2001:db9::1", 0},
    {"2001:db8::/33", "2001:db8:8000::1", 0},
    {"::ffff:10.0.0.0/104", "10.9.9.9", 1},
    {"::/0", "192.0.2.1", 1},
};

static void test_cidr_match(void **state)
{
    const struct match_row *r = *state;
    struct cidr net;
    const char *why;
    assert_int_equal(cidr_parse(r->net, &net, &why), 0);
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    const struct sockaddr *sa;
    if (inet_pton(AF_INET, r->addr, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sa = (const struct sockaddr *)&sin;
    } else {
        assert_int_equal(inet_pton(AF_INET6, r->addr, &sin6.sin6_addr), 1);
        sin6.sin6_family = AF_INET6;
        sa = (const struct sockaddr *)&sin6;
    }
    assert_int_equal(cidr_match(&net, sa), r->match);
}

static void test_cidr_match_other_family(void **state)
{
    (void)state;
    struct cidr net;
    const char *why;
    assert_int_equal(cidr_parse("0.0.0.0/0", &net, &why), 0);
    struct sockaddr sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNIX;
    assert_int_equal(cidr_match(&net, &sa), 0);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(name_rows); i++)
        rowtest_add(&t, test_hostname_valid, &name_rows[i], "hostname_valid \"%s\"",
                    name_rows[i].in);
    rowtest_add(&t, test_hostname_length, NULL, "hostname_valid 253 bytes");
    for (size_t i = 0; i < ROWS(ip_rows); i++)
        rowtest_add(&t, test_ip_literal, &ip_rows[i], "ip_literal \"%s\"", ip_rows[i].in);
    for (size_t i = 0; i < ROWS(hp_rows); i++)
        rowtest_add(&t, test_hostport_parse, &hp_rows[i], "hostport_parse \"%s\" flags %u",
                    hp_rows[i].in, hp_rows[i].flags);
    for (size_t i = 0; i < ROWS(cidr_rows); i++)
        rowtest_add(&t, test_cidr_parse, &cidr_rows[i], "cidr_parse \"%s\"", cidr_rows[i].in);
    for (size_t i = 0; i < ROWS(match_rows); i++)
        rowtest_add(&t, test_cidr_match, &match_rows[i], "cidr_match %s %s", match_rows[i].net,
                    match_rows[i].addr);
    rowtest_add(&t, test_cidr_match_other_family, NULL, "cidr_match AF_UNIX");
    return rowtest_run(&t, "netaddr");
}
