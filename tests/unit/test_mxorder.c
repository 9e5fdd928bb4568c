/*
 * test_mxorder — SPEC D1 and D5 in daemons/remote/mxorder.c: preferences
 * kept in order, equal preferences and each host's addresses shuffled
 * (every order seen over many seeds), the smtp_max_addresses cap, and the
 * loop rule: our name or one of our listen addresses among the MX hosts
 * keeps only better preferences, and none left is MX_LOOP.
 */
#include "rowtest.h"

#include <arpa/inet.h>
#include <string.h>

#include "remote/mxorder.h"

static unsigned char v4[6][4] = {{127, 0, 0, 2}, {127, 0, 0, 3}, {127, 0, 0, 4},
                                 {127, 0, 0, 5}, {127, 0, 0, 6}, {127, 0, 0, 7}};

/* mx1 (10): .2 .3   mx2 (10): .4   mx3 (20): .5 .6 .7 */
static void sample(struct dnsp_answer *a, struct dnsp_host *h)
{
    memset(a, 0, sizeof(*a));
    memset(h, 0, 3 * sizeof(*h));
    h[0] = (struct dnsp_host){10, "mx1.b.test", DNS_STATUS_OK, "", 60, v4[0], 2, NULL, 0};
    h[1] = (struct dnsp_host){10, "mx2.b.test", DNS_STATUS_OK, "", 60, v4[2], 1, NULL, 0};
    h[2] = (struct dnsp_host){20, "mx3.b.test", DNS_STATUS_OK, "", 60, v4[3], 3, NULL, 0};
    a->name = "b.test";
    a->hosts = h;
    a->nhosts = 3;
}

static struct mx_self no_self(void)
{
    struct mx_self s = {"mta.onehop.test", NULL, 0};
    return s;
}

static void test_order_and_spreading(void **state)
{
    struct dnsp_answer a;
    struct dnsp_host h[3];
    struct mx_self self = no_self();
    sample(&a, h);
    int first_seen[2] = {0, 0}, last_addr_seen[3] = {0, 0, 0};
    for (uint64_t seed = 1; seed <= 200; seed++) {
        struct mx_rng rng;
        struct mx_target *t;
        size_t n;
        mx_rng_init(&rng, seed);
        assert_int_equal(mx_order(&a, 25, &self, 10, &rng, &t, &n), 6);
        for (size_t i = 0; i < 3; i++)
            assert_int_equal(t[i].pref, 10);
        for (size_t i = 3; i < 6; i++) {
            assert_int_equal(t[i].pref, 20);
            assert_string_equal(t[i].host, "mx3.b.test");
            assert_int_equal(t[i].port, 25);
        }
        first_seen[strcmp(t[0].host, "mx1.b.test") == 0 ? 0 : 1]++;
        last_addr_seen[t[3].addr[3] - 5]++;
        mx_targets_free(t, n);
    }
    /* equal preferences: each host first in a fair share of the seeds */
    assert_true(first_seen[0] > 40 && first_seen[1] > 40);
    /* a host's addresses in every order */
    for (int i = 0; i < 3; i++)
        assert_true(last_addr_seen[i] > 20);
}

static void test_cap(void **state)
{
    struct dnsp_answer a;
    struct dnsp_host h[3];
    struct mx_self self = no_self();
    struct mx_rng rng;
    struct mx_target *t;
    size_t n;
    sample(&a, h);
    mx_rng_init(&rng, 7);
    assert_int_equal(mx_order(&a, 25, &self, 2, &rng, &t, &n), 2);
    assert_int_equal(t[0].pref, 10);
    assert_int_equal(t[1].pref, 10);
    mx_targets_free(t, n);
}

static void test_loop_by_name(void **state)
{
    struct dnsp_answer a;
    struct dnsp_host h[3];
    struct mx_self self = {"MX3.b.test", NULL, 0};
    struct mx_rng rng;
    struct mx_target *t;
    size_t n;
    sample(&a, h);
    mx_rng_init(&rng, 3);
    assert_int_equal(mx_order(&a, 25, &self, 10, &rng, &t, &n), 3); /* only better than 20 */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(t[i].pref, 10);
    mx_targets_free(t, n);
    self.myhostname = "mx2.b.test"; /* we are among the best: nothing left */
    assert_int_equal(mx_order(&a, 25, &self, 10, &rng, &t, &n), MX_LOOP);
    assert_int_equal(n, 0);
}

static void test_loop_by_listen_address(void **state)
{
    struct dnsp_answer a;
    struct dnsp_host h[3];
    struct mx_listen l = {AF_INET, {127, 0, 0, 6}, 2525, 0};
    struct mx_self self = {"mta.onehop.test", &l, 1};
    struct mx_rng rng;
    struct mx_target *t;
    size_t n;
    sample(&a, h);
    mx_rng_init(&rng, 3);
    assert_int_equal(mx_order(&a, 2525, &self, 10, &rng, &t, &n), 3);
    mx_targets_free(t, n);
    /* the same address on another port is not us */
    assert_int_equal(mx_order(&a, 25, &self, 10, &rng, &t, &n), 6);
    mx_targets_free(t, n);
    /* a wildcard listen address is us on every loopback address */
    struct mx_listen any = {AF_INET, {0}, 25, 1};
    self.listen = &any;
    assert_int_equal(mx_order(&a, 25, &self, 10, &rng, &t, &n), MX_LOOP);
    assert_true(mx_self_listens(&self, AF_INET, v4[0], 25));
    assert_false(mx_self_listens(&self, AF_INET, v4[0], 26));
}

static void test_format(void **state)
{
    struct mx_target t = {"mx.b.test", AF_INET, {127, 0, 0, 9}, 2526, 10};
    struct buf out = BUF_INIT;
    mx_target_format(&t, &out);
    assert_string_equal(out.s, "mx.b.test[127.0.0.9]:2526");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_spreading),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_loop_by_name),
        cmocka_unit_test(test_loop_by_listen_address),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests_name("mxorder", tests, NULL, NULL);
}
