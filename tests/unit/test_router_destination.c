/*
 * test_router_destination — daemons/router/destination.c (SPEC D8): alive
 * by default; dead after a connection-level failure for the back-off of
 * retry.h; one probe once it ran out, the others waiting meanwhile; a late
 * failure of a job sent before does not extend it; a success hands back
 * the waiting messages, each once.
 */
#include "rowtest.h"

#include <stdlib.h>

#include "router/destination.h"

static const struct retry_policy P = {10, 40, 86400};

static void test_alive_by_default(void **state)
{
    struct destinations *ds = dest_new();
    int64_t wake = 0;
    const char *why = NULL;
    (void)state;
    assert_int_equal(dest_admit(ds, "[a]:25", 100, &wake, &why), DEST_SEND);
    assert_int_equal(dest_dead_count(ds), 0);
    dest_free(ds);
}

static void test_dead_then_probe(void **state)
{
    struct destinations *ds = dest_new();
    int64_t wake = 0;
    const char *why = NULL;
    (void)state;
    assert_int_equal(dest_failed(ds, "d", "connect refused", 100, &P), 1);
    assert_int_equal(dest_admit(ds, "d", 105, &wake, &why), DEST_WAIT);
    assert_int_equal(wake, 110);
    assert_string_equal(why, "connect refused");
    assert_int_equal(dest_failed(ds, "d", "again", 106, &P), 0); /* sent before: no longer */
    assert_int_equal(dest_admit(ds, "d", 110, &wake, &why), DEST_PROBE);
    assert_int_equal(dest_admit(ds, "d", 110, &wake, &why), DEST_WAIT); /* the probe is out */
    assert_int_equal(wake, 120);
    assert_int_equal(dest_failed(ds, "d", "still", 111, &P), 1); /* the probe failed: doubled */
    assert_int_equal(dest_admit(ds, "d", 130, &wake, &why), DEST_WAIT);
    assert_int_equal(wake, 131);
    assert_int_equal(dest_admit(ds, "other", 130, &wake, &why), DEST_SEND);
    dest_free(ds);
}

static void test_capped_at_retry_max(void **state)
{
    struct destinations *ds = dest_new();
    int64_t wake = 0, now = 0;
    const char *why = NULL;
    (void)state;
    for (int i = 0; i < 6; i++) {
        dest_failed(ds, "d", "x", now, &P);
        now += 1000;
        assert_int_equal(dest_admit(ds, "d", now, &wake, &why), DEST_PROBE);
    }
    dest_failed(ds, "d", "x", now, &P);
    assert_int_equal(dest_admit(ds, "d", now, &wake, &why), DEST_WAIT);
    assert_int_equal(wake, now + 40);
    dest_free(ds);
}

static void test_success_wakes_waiters_once(void **state)
{
    struct destinations *ds = dest_new();
    char **ids;
    (void)state;
    dest_failed(ds, "d", "x", 100, &P);
    dest_wait(ds, "d", "M1");
    dest_wait(ds, "d", "M1"); /* a second recipient of the same message */
    dest_wait(ds, "d", "M2");
    dest_wait(ds, "alive", "M3"); /* not dead: not kept */
    size_t n = dest_reached(ds, "d", &ids);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "M1");
    assert_string_equal(ids[1], "M2");
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    assert_int_equal(dest_dead_count(ds), 0);
    assert_int_equal(dest_reached(ds, "d", &ids), 0);
    assert_null(ids);
    int64_t wake = 0;
    const char *why = NULL;
    assert_int_equal(dest_admit(ds, "d", 101, &wake, &why), DEST_SEND);
    dest_free(ds);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    rowtest_add(&t, test_alive_by_default, NULL, "alive by default");
    rowtest_add(&t, test_dead_then_probe, NULL, "dead, waiting, one probe, doubled");
    rowtest_add(&t, test_capped_at_retry_max, NULL, "back-off capped at retry_max");
    rowtest_add(&t, test_success_wakes_waiters_once, NULL, "a success wakes each waiter once");
    return rowtest_run(&t, "router_destination");
}
