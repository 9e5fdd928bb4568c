/*
 * test_dns_answer — the meaning of an upstream answer, one test per rule of
 * dns_answer.h: classes (ok, nodata, nxdomain, null MX, each temporary
 * failure), TTLs (positive minimum, RFC 2308 negative), MX order, CNAME
 * chains (followed, looping, too long, left for the caller to chase).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "dnsbuild.h"
#include "dnscache/dns_answer.h"

static struct buf msg;
static struct dns_result res;

static int setup(void **state)
{
    memset(&msg, 0, sizeof(msg));
    dns_result_init(&res);
    return 0;
}

static int teardown(void **state)
{
    buf_free(&msg);
    dns_result_free(&res);
    return 0;
}

static void interpret(const char *qname, unsigned qtype)
{
    dns_result_from_answer(&res, msg.s, msg.len, qname, (uint16_t)qtype, DNS_CNAME_CHAIN_MAX);
}

static void add_soa_authority(uint32_t soa_ttl, uint32_t minimum)
{
    db_rr(&msg, "test", 6, soa_ttl);
    db_rdata_soa(&msg, minimum);
}

static void test_a_records_with_minimum_ttl(void **state)
{
    db_header(&msg, 0x8180, 1, 2, 0, 0);
    db_question(&msg, "h.test", 1);
    db_rr(&msg, "h.test", 1, 300);
    db_rdata_a(&msg, 192, 0, 2, 1);
    db_rr(&msg, "h.test", 1, 120);
    db_rdata_a(&msg, 192, 0, 2, 2);
    interpret("h.test", 1);
    assert_int_equal(res.status, DNS_STATUS_OK);
    assert_int_equal(res.ttl, 120);
    assert_int_equal(res.cacheable, 1);
    assert_int_equal(res.count, 2);
    assert_memory_equal(res.data.s, "\xc0\x00\x02\x01\xc0\x00\x02\x02", 8);
    assert_string_equal(res.canon, "h.test");
}

static void test_aaaa_records(void **state)
{
    db_header(&msg, 0x8180, 1, 1, 0, 0);
    db_question(&msg, "h.test", 28);
    db_rr(&msg, "h.test", 28, 60);
    db_rdata_aaaa(&msg, 5);
    interpret("h.test", 28);
    assert_int_equal(res.status, DNS_STATUS_OK);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.data.len, 16);
    assert_int_equal((unsigned char)res.data.s[15], 5);
}

static void test_mx_sorted_by_preference_stable(void **state)
{
    db_header(&msg, 0x8180, 1, 4, 0, 0);
    db_question(&msg, "b.test", 15);
    db_rr(&msg, "b.test", 15, 300);
    db_rdata_mx(&msg, 20, "mx3.b.test");
    db_rr(&msg, "b.test", 15, 300);
    db_rdata_mx(&msg, 10, "mx2.b.test");
    db_rr(&msg, "b.test", 15, 200);
    db_rdata_mx(&msg, 10, "mx1.b.test");
    db_rr(&msg, "b.test", 15, 300);
    db_rdata_mx(&msg, 5, "MX0.B.TEST");
    interpret("b.test", 15);
    assert_int_equal(res.status, DNS_STATUS_OK);
    assert_int_equal(res.ttl, 200);
    assert_int_equal(res.count, 4);
    const char *want[] = {"mx0.b.test", "mx2.b.test", "mx1.b.test", "mx3.b.test"};
    unsigned prefs[] = {5, 10, 10, 20};
    size_t off = 0, n;
    uint16_t pref;
    const char *name;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(dns_mx_next(res.data.s, res.data.len, &off, &pref, &name, &n), 1);
        assert_int_equal(pref, prefs[i]);
        assert_int_equal(n, strlen(want[i]));
        assert_memory_equal(name, want[i], n);
    }
    assert_int_equal(dns_mx_next(res.data.s, res.data.len, &off, &pref, &name, &n), 0);
}

static void test_null_mx(void **state)
{
    db_header(&msg, 0x8180, 1, 1, 0, 0);
    db_question(&msg, "b.test", 15);
    db_rr(&msg, "b.test", 15, 300);
    db_rdata_mx(&msg, 0, ".");
    interpret("b.test", 15);
    assert_int_equal(res.status, DNS_STATUS_NULLMX);
    assert_int_equal(res.count, 0);
    assert_int_equal(res.cacheable, 1);
    assert_int_equal(res.ttl, 300);
}

static void test_root_exchange_among_real_ones_is_ignored(void **state)
{
    db_header(&msg, 0x8180, 1, 2, 0, 0);
    db_question(&msg, "b.test", 15);
    db_rr(&msg, "b.test", 15, 300);
    db_rdata_mx(&msg, 0, ".");
    db_rr(&msg, "b.test", 15, 300);
    db_rdata_mx(&msg, 10, "mx.b.test");
    interpret("b.test", 15);
    assert_int_equal(res.status, DNS_STATUS_OK);
    assert_int_equal(res.count, 1);
}

static void test_nodata_ttl_is_soa_minimum(void **state)
{
    db_header(&msg, 0x8180, 1, 0, 1, 0);
    db_question(&msg, "b.test", 15);
    add_soa_authority(600, 45);
    interpret("b.test", 15);
    assert_int_equal(res.status, DNS_STATUS_NODATA);
    assert_int_equal(res.ttl, 45);
    assert_int_equal(res.cacheable, 1);
}

static void test_negative_ttl_is_soa_ttl_when_smaller(void **state)
{
    db_header(&msg, 0x8183, 1, 0, 1, 0);
    db_question(&msg, "b.test", 15);
    add_soa_authority(20, 3600);
    interpret("b.test", 15);
    assert_int_equal(res.status, DNS_STATUS_NXDOMAIN);
    assert_int_equal(res.ttl, 20);
    assert_int_equal(res.cacheable, 1);
}

static void test_negative_without_soa_is_not_cacheable(void **state)
{
    db_header(&msg, 0x8183, 1, 0, 0, 0);
    db_question(&msg, "b.test", 15);
    interpret("b.test", 15);
    assert_int_equal(res.status, DNS_STATUS_NXDOMAIN);
    assert_int_equal(res.cacheable, 0);
}

static void test_records_of_another_name_are_nodata(void **state)
{
    db_header(&msg, 0x8180, 1, 1, 1, 0);
    db_question(&msg, "b.test", 1);
    db_rr(&msg, "other.test", 1, 300);
    db_rdata_a(&msg, 10, 0, 0, 1);
    add_soa_authority(60, 60);
    interpret("b.test", 1);
    assert_int_equal(res.status, DNS_STATUS_NODATA);
}

static void test_cname_chain_followed(void **state)
{
    db_header(&msg, 0x8180, 1, 3, 0, 0);
    db_question(&msg, "www.test", 1);
    db_rr(&msg, "www.test", 5, 30);
    db_rdata_cname(&msg, "web.test");
    db_rr(&msg, "web.test", 5, 300);
    db_rdata_cname(&msg, "host.test");
    db_rr(&msg, "host.test", 1, 300);
    db_rdata_a(&msg, 10, 1, 2, 3);
    interpret("www.test", 1);
    assert_int_equal(res.status, DNS_STATUS_OK);
    assert_string_equal(res.canon, "host.test");
    assert_int_equal(res.cnames, 2);
    assert_int_equal(res.ttl, 30);
    assert_int_equal(res.count, 1);
}

static void test_cname_loop(void **state)
{
    db_header(&msg, 0x8180, 1, 2, 0, 0);
    db_question(&msg, "a.test", 1);
    db_rr(&msg, "a.test", 5, 30);
    db_rdata_cname(&msg, "b.test");
    db_rr(&msg, "b.test", 5, 30);
    db_rdata_cname(&msg, "a.test");
    interpret("a.test", 1);
    assert_int_equal(res.status, DNS_STATUS_TEMPFAIL);
    assert_int_equal(res.fail, DNS_FAIL_CNAME);
    assert_string_equal(res.reason.s, "CNAME loop at a.test");
    assert_int_equal(res.cacheable, 0);
}

static void test_cname_chain_too_long(void **state)
{
    db_header(&msg, 0x8180, 1, 10, 0, 0);
    db_question(&msg, "c0.test", 1);
    for (int i = 0; i < 10; i++) {
        char owner[16], target[16];
        snprintf(owner, sizeof(owner), "c%d.test", i);
        snprintf(target, sizeof(target), "c%d.test", i + 1);
        db_rr(&msg, owner, 5, 30);
        db_rdata_cname(&msg, target);
    }
    interpret("c0.test", 1);
    assert_int_equal(res.status, DNS_STATUS_TEMPFAIL);
    assert_int_equal(res.fail, DNS_FAIL_CNAME);
    assert_string_equal(res.reason.s, "CNAME chain longer than 8 links");
}

static void test_cname_left_unchased_asks_to_follow(void **state)
{
    db_header(&msg, 0x8180, 1, 1, 0, 0);
    db_question(&msg, "www.test", 15);
    db_rr(&msg, "www.test", 5, 40);
    db_rdata_cname(&msg, "elsewhere.example");
    interpret("www.test", 15);
    assert_int_equal(res.follow, 1);
    assert_string_equal(res.canon, "elsewhere.example");
    assert_int_equal(res.ttl, 40);
    assert_int_equal(res.cnames, 1);
}

static void test_cname_then_nxdomain(void **state)
{
    db_header(&msg, 0x8183, 1, 1, 1, 0);
    db_question(&msg, "www.test", 1);
    db_rr(&msg, "www.test", 5, 300);
    db_rdata_cname(&msg, "gone.test");
    add_soa_authority(60, 60);
    interpret("www.test", 1);
    assert_int_equal(res.status, DNS_STATUS_NXDOMAIN);
    assert_string_equal(res.canon, "gone.test");
    assert_int_equal(res.ttl, 60);
}

static void test_cname_budget_across_queries(void **state)
{
    db_header(&msg, 0x8180, 1, 1, 0, 0);
    db_question(&msg, "a.test", 1);
    db_rr(&msg, "a.test", 5, 30);
    db_rdata_cname(&msg, "b.test");
    dns_result_from_answer(&res, msg.s, msg.len, "a.test", 1, 0);
    assert_int_equal(res.status, DNS_STATUS_TEMPFAIL);
    assert_int_equal(res.fail, DNS_FAIL_CNAME);
}

static void expect_fail(unsigned flags, enum dns_fail kind, const char *reason)
{
    db_header(&msg, flags, 1, 0, 0, 0);
    db_question(&msg, "b.test", 15);
    interpret("b.test", 15);
    assert_int_equal(res.status, DNS_STATUS_TEMPFAIL);
    assert_int_equal(res.fail, kind);
    assert_string_equal(res.reason.s, reason);
    assert_int_equal(res.cacheable, 0);
}

static void test_servfail(void **state)
{
    expect_fail(0x8182, DNS_FAIL_SERVFAIL, "SERVFAIL from the upstream resolver");
}

static void test_refused(void **state)
{
    expect_fail(0x8185, DNS_FAIL_REFUSED, "REFUSED by the upstream resolver");
}

static void test_formerr(void **state)
{
    expect_fail(0x8181, DNS_FAIL_OTHER, "FORMERR from the upstream resolver");
}

static void test_notimp(void **state)
{
    expect_fail(0x8184, DNS_FAIL_OTHER, "rcode 4 from the upstream resolver");
}

static void test_not_a_response(void **state)
{
    expect_fail(0x0100, DNS_FAIL_MALFORMED, "malformed answer: not a query response");
}

static void test_truncated(void **state)
{
    expect_fail(0x8380, DNS_FAIL_MALFORMED, "answer truncated even over TCP");
}

static void test_other_question(void **state)
{
    db_header(&msg, 0x8180, 1, 0, 0, 0);
    db_question(&msg, "c.test", 15);
    interpret("b.test", 15);
    assert_int_equal(res.fail, DNS_FAIL_MALFORMED);
    assert_string_equal(res.reason.s, "malformed answer: not for our question");
}

static void test_other_qtype(void **state)
{
    db_header(&msg, 0x8180, 1, 0, 0, 0);
    db_question(&msg, "b.test", 1);
    interpret("b.test", 15);
    assert_int_equal(res.fail, DNS_FAIL_MALFORMED);
}

static void test_hostile_message_is_malformed(void **state)
{
    db_header(&msg, 0x8180, 1, 9, 0, 0);
    db_question(&msg, "b.test", 15);
    interpret("b.test", 15);
    assert_int_equal(res.status, DNS_STATUS_TEMPFAIL);
    assert_int_equal(res.fail, DNS_FAIL_MALFORMED);
    assert_string_equal(res.reason.s, "malformed answer: section counts larger than the data");
}

static void test_fail_kind_names(void **state)
{
    assert_string_equal(dns_fail_name(DNS_FAIL_SERVFAIL), "servfail");
    assert_string_equal(dns_fail_name(DNS_FAIL_TIMEOUT), "timeout");
    assert_string_equal(dns_fail_name(DNS_FAIL_KINDS), "other");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_a_records_with_minimum_ttl),
        T(test_aaaa_records),
        T(test_mx_sorted_by_preference_stable),
        T(test_null_mx),
        T(test_root_exchange_among_real_ones_is_ignored),
        T(test_nodata_ttl_is_soa_minimum),
        T(test_negative_ttl_is_soa_ttl_when_smaller),
        T(test_negative_without_soa_is_not_cacheable),
        T(test_records_of_another_name_are_nodata),
        T(test_cname_chain_followed),
        T(test_cname_loop),
        T(test_cname_chain_too_long),
        T(test_cname_left_unchased_asks_to_follow),
        T(test_cname_then_nxdomain),
        T(test_cname_budget_across_queries),
        T(test_servfail),
        T(test_refused),
        T(test_formerr),
        T(test_notimp),
        T(test_not_a_response),
        T(test_truncated),
        T(test_other_question),
        T(test_other_qtype),
        T(test_hostile_message_is_malformed),
        T(test_fail_kind_names),
    };
    return cmocka_run_group_tests_name("dns_answer", tests, NULL, NULL);
}
