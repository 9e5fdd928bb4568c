/*
 * test_dns_cache — expiry exactly at the TTL, the stale window, LRU eviction
 * order, replacement, flushing, table growth: one test per rule of
 * dns_cache.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dnscache/dns_cache.h"

static const uint8_t key[SIPHASH_KEY_SIZE] = {7, 7, 7};

static void put_a(struct dns_cache *c, const char *name, uint32_t ttl, int64_t now)
{
    struct dns_cache_put p = {DNSP_QTYPE_A,       name, NULL, DNS_STATUS_OK, ttl,
                              "\x0a\x00\x00\x01", 4,    1};
    assert_int_equal(dns_cache_store(c, &p, now), 0);
}

static const struct dns_entry *find_a(struct dns_cache *c, const char *name, int64_t now,
                                      int64_t stale_ms, int *stale)
{
    return dns_cache_find(c, DNSP_QTYPE_A, name, now, stale_ms, stale);
}

static void test_fresh_until_exactly_the_ttl(void **state)
{
    struct dns_cache *c = dns_cache_new(10, key);
    int stale;
    put_a(c, "h.test", 2, 1000);
    const struct dns_entry *e = find_a(c, "h.test", 2999, 0, &stale);
    assert_non_null(e);
    assert_int_equal(stale, 0);
    assert_string_equal(dns_entry_name(e), "h.test");
    assert_int_equal(e->count, 1);
    assert_memory_equal(dns_entry_data(e), "\x0a\x00\x00\x01", 4);
    assert_null(find_a(c, "h.test", 3000, 0, &stale));
    assert_int_equal(dns_cache_count(c), 0);
    dns_cache_free(c);
}

static void test_remaining_seconds(void **state)
{
    struct dns_cache *c = dns_cache_new(10, key);
    int stale;
    put_a(c, "h.test", 300, 0);
    const struct dns_entry *e = find_a(c, "h.test", 0, 0, &stale);
    assert_int_equal(dns_entry_remaining(e, 0), 300);
    assert_int_equal(dns_entry_remaining(e, 1500), 298);
    assert_int_equal(dns_entry_remaining(e, 400000), 0);
    dns_cache_free(c);
}

static void test_stale_within_window_only(void **state)
{
    struct dns_cache *c = dns_cache_new(10, key);
    int stale;
    put_a(c, "h.test", 10, 0);
    const struct dns_entry *e = find_a(c, "h.test", 15000, 60000, &stale);
    assert_non_null(e);
    assert_int_equal(stale, 1);
    assert_null(find_a(c, "h.test", 70000, 60000, &stale));
    dns_cache_free(c);
}

static void test_types_are_separate(void **state)
{
    struct dns_cache *c = dns_cache_new(10, key);
    int stale;
    put_a(c, "h.test", 10, 0);
    assert_null(dns_cache_find(c, DNSP_QTYPE_AAAA, "h.test", 0, 0, &stale));
    assert_non_null(find_a(c, "h.test", 0, 0, &stale));
    dns_cache_free(c);
}

static void test_least_recently_used_goes_first(void **state)
{
    struct dns_cache *c = dns_cache_new(3, key);
    int stale;
    put_a(c, "a.test", 100, 0);
    put_a(c, "b.test", 100, 0);
    put_a(c, "c.test", 100, 0);
    assert_non_null(find_a(c, "a.test", 1, 0, &stale)); /* a becomes the most recent */
    put_a(c, "d.test", 100, 2);                         /* evicts b */
    assert_null(find_a(c, "b.test", 3, 0, &stale));
    assert_non_null(find_a(c, "a.test", 3, 0, &stale));
    assert_non_null(find_a(c, "c.test", 3, 0, &stale));
    assert_non_null(find_a(c, "d.test", 3, 0, &stale));
    assert_int_equal(dns_cache_count(c), 3);
    assert_int_equal(dns_cache_evictions(c), 1);
    dns_cache_free(c);
}

static void test_150_names_in_100_keep_the_newest(void **state)
{
    struct dns_cache *c = dns_cache_new(100, key);
    char name[32];
    int stale;
    for (int i = 0; i < 150; i++) {
        snprintf(name, sizeof(name), "n%d.test", i);
        put_a(c, name, 100, i);
    }
    for (int i = 0; i < 150; i++) {
        snprintf(name, sizeof(name), "n%d.test", i);
        if (i < 50)
            assert_null(find_a(c, name, 200, 0, &stale));
        else
            assert_non_null(find_a(c, name, 200, 0, &stale));
    }
    assert_int_equal(dns_cache_evictions(c), 50);
    dns_cache_free(c);
}

static void test_store_replaces(void **state)
{
    struct dns_cache *c = dns_cache_new(10, key);
    int stale;
    put_a(c, "h.test", 10, 0);
    struct dns_cache_put p = {DNSP_QTYPE_A, "h.test",           "real.test", DNS_STATUS_OK,
                              50,           "\x0a\x00\x00\x02", 4,           1};
    assert_int_equal(dns_cache_store(c, &p, 0), 0);
    assert_int_equal(dns_cache_count(c), 1);
    const struct dns_entry *e = find_a(c, "h.test", 20000, 0, &stale);
    assert_non_null(e);
    assert_string_equal(dns_entry_canon(e), "real.test");
    assert_memory_equal(dns_entry_data(e), "\x0a\x00\x00\x02", 4);
    dns_cache_free(c);
}

static void test_negative_entry_without_data(void **state)
{
    struct dns_cache *c = dns_cache_new(10, key);
    int stale;
    struct dns_cache_put p = {DNSP_QTYPE_MX, "gone.test", NULL, DNS_STATUS_NXDOMAIN, 30,
                              NULL,          0,           0};
    assert_int_equal(dns_cache_store(c, &p, 0), 0);
    const struct dns_entry *e = dns_cache_find(c, DNSP_QTYPE_MX, "gone.test", 0, 0, &stale);
    assert_non_null(e);
    assert_int_equal(e->status, DNS_STATUS_NXDOMAIN);
    assert_string_equal(dns_entry_canon(e), "gone.test");
    dns_cache_free(c);
}

static void test_flush_one_name_every_type(void **state)
{
    struct dns_cache *c = dns_cache_new(10, key);
    int stale;
    put_a(c, "h.test", 10, 0);
    put_a(c, "other.test", 10, 0);
    struct dns_cache_put p = {DNSP_QTYPE_AAAA, "h.test", NULL, DNS_STATUS_NODATA, 10, NULL, 0, 0};
    dns_cache_store(c, &p, 0);
    assert_int_equal(dns_cache_flush(c, "h.test"), 2);
    assert_null(find_a(c, "h.test", 0, 0, &stale));
    assert_non_null(find_a(c, "other.test", 0, 0, &stale));
    assert_int_equal(dns_cache_flush(c, NULL), 1);
    assert_int_equal(dns_cache_count(c), 0);
    assert_int_equal(dns_cache_bytes(c), 64 * sizeof(void *));
    dns_cache_free(c);
}

static void test_size_zero_stores_nothing(void **state)
{
    struct dns_cache *c = dns_cache_new(0, key);
    struct dns_cache_put p = {DNSP_QTYPE_A, "h.test", NULL, DNS_STATUS_OK, 10, "abcd", 4, 1};
    assert_int_equal(dns_cache_store(c, &p, 0), -1);
    assert_int_equal(dns_cache_count(c), 0);
    dns_cache_free(c);
}

static void test_name_too_long_is_refused(void **state)
{
    struct dns_cache *c = dns_cache_new(10, key);
    char name[300];
    int stale;
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    struct dns_cache_put p = {DNSP_QTYPE_A, name, NULL, DNS_STATUS_OK, 10, "abcd", 4, 1};
    assert_int_equal(dns_cache_store(c, &p, 0), -1);
    assert_null(find_a(c, name, 0, 0, &stale));
    dns_cache_free(c);
}

static void test_growth_keeps_every_entry(void **state)
{
    struct dns_cache *c = dns_cache_new(20000, key);
    char name[32];
    int stale;
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof(name), "host%d.test", i);
        put_a(c, name, 100, 0);
    }
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof(name), "host%d.test", i);
        assert_non_null(find_a(c, name, 0, 0, &stale));
    }
    assert_int_equal(dns_cache_count(c), 10000);
    dns_cache_free(c);
}

static void test_set_max_evicts(void **state)
{
    struct dns_cache *c = dns_cache_new(10, key);
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "h%d.test", i);
        put_a(c, name, 100, 0);
    }
    dns_cache_set_max(c, 4);
    assert_int_equal(dns_cache_count(c), 4);
    dns_cache_free(c);
}

static void count_entry(void *arg, const struct dns_entry *e)
{
    struct buf *order = arg;
    buf_adds(order, dns_entry_name(e));
    buf_addc(order, ' ');
}

static void test_walk_most_recent_first(void **state)
{
    struct dns_cache *c = dns_cache_new(10, key);
    struct buf order = BUF_INIT;
    put_a(c, "a.test", 100, 0);
    put_a(c, "b.test", 100, 0);
    dns_cache_walk(c, count_entry, &order);
    assert_string_equal(buf_cstr(&order), "b.test a.test ");
    buf_free(&order);
    dns_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_until_exactly_the_ttl),
        cmocka_unit_test(test_remaining_seconds),
        cmocka_unit_test(test_stale_within_window_only),
        cmocka_unit_test(test_types_are_separate),
        cmocka_unit_test(test_least_recently_used_goes_first),
        cmocka_unit_test(test_150_names_in_100_keep_the_newest),
        cmocka_unit_test(test_store_replaces),
        cmocka_unit_test(test_negative_entry_without_data),
        cmocka_unit_test(test_flush_one_name_every_type),
        cmocka_unit_test(test_size_zero_stores_nothing),
        cmocka_unit_test(test_name_too_long_is_refused),
        cmocka_unit_test(test_growth_keeps_every_entry),
        cmocka_unit_test(test_set_max_evicts),
        cmocka_unit_test(test_walk_most_recent_first),
    };
    return cmocka_run_group_tests_name("dns_cache", tests, NULL, NULL);
}
