/*
 * test_router_retry — daemons/router/retry.c (SPEC 3 retry_min, retry_max,
 * queue_lifetime; D8): one test per row of the back-off table, the cap at
 * the message's expiry, and expiry itself.
 */
#include "rowtest.h"

#include "router/retry.h"

struct interval_row {
    uint64_t min, max;
    uint32_t attempts;
    uint64_t want;
};

static const struct interval_row intervals[] = {
    {300, 4000, 1, 300},  {300, 4000, 2, 600},   {300, 4000, 3, 1200}, {300, 4000, 4, 2400},
    {300, 4000, 5, 4000}, {300, 4000, 40, 4000}, {1, 4, 1, 1},         {1, 4, 2, 2},
    {1, 4, 3, 4},         {1, 4, 4, 4},          {0, 0, 1, 1},         {10, 5, 3, 10},
    {2, 3, 2, 3},         {60, 86400, 0, 60},
};

static void test_interval(void **state)
{
    const struct interval_row *row = *state;
    struct retry_policy p = {row->min, row->max, 5 * 86400};
    assert_int_equal(retry_interval(&p, row->attempts), row->want);
}

static void test_next_try_backoff(void **state)
{
    struct retry_policy p = {300, 4000, 5 * 86400};
    (void)state;
    assert_int_equal(retry_next_try(&p, 1, 1000000, 999000), 1000300);
    assert_int_equal(retry_next_try(&p, 3, 1000000, 999000), 1001200);
}

static void test_next_try_capped_at_expiry(void **state)
{
    struct retry_policy p = {300, 4000, 3600};
    (void)state;
    /* arrived 3500 s ago: expires in 100 s, tried then (and bounced) */
    assert_int_equal(retry_next_try(&p, 2, 10000, 6500), 10100);
    /* already past expiry: never a time before now + 1 */
    assert_int_equal(retry_next_try(&p, 2, 10000, 1000), 10001);
}

static void test_expired(void **state)
{
    struct retry_policy p = {300, 4000, 6};
    (void)state;
    assert_int_equal(retry_expired(&p, 105, 100), 0);
    assert_int_equal(retry_expired(&p, 106, 100), 1);
    assert_int_equal(retry_expired(&p, 106, 0), 0); /* arrival unknown */
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(intervals); i++)
        rowtest_add(&t, test_interval, &intervals[i], "interval min %llu max %llu attempt %u",
                    (unsigned long long)intervals[i].min, (unsigned long long)intervals[i].max,
                    intervals[i].attempts);
    rowtest_add(&t, test_next_try_backoff, NULL, "next try: back-off");
    rowtest_add(&t, test_next_try_capped_at_expiry, NULL, "next try: capped at expiry");
    rowtest_add(&t, test_expired, NULL, "queue_lifetime expiry");
    return rowtest_run(&t, "router_retry");
}
