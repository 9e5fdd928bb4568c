/*
 * test_metrics — golden text of the registry's rendering (common/metrics.h)
 * in the Prometheus exposition format 0.0.4: one test per rule (HELP/TYPE,
 * label escaping, histogram buckets cumulative up to +Inf with _sum and
 * _count, an unlabelled family renders 0, the series cap folds into
 * "other", collectors run before rendering, re-registration).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static int teardown(void **state)
{
    metrics_reset();
    return 0;
}

static void expect_render(const char *want)
{
    struct buf out = BUF_INIT;
    metrics_render(&out);
    assert_string_equal(buf_cstr(&out), want);
    buf_free(&out);
}

static void test_counter_with_label(void **state)
{
    struct metric *m =
        metric_counter("onehop_delivered_total", "Recipients delivered.", "transport");
    metric_inc(m, "remote");
    metric_inc(m, "remote");
    metric_add(m, "local", 5);
    expect_render("# HELP onehop_delivered_total Recipients delivered.\n"
                  "# TYPE onehop_delivered_total counter\n"
                  "onehop_delivered_total{transport=\"remote\"} 2\n"
                  "onehop_delivered_total{transport=\"local\"} 5\n");
}

static void test_counter_never_goes_down(void **state)
{
    struct metric *m = metric_counter("x_total", "x", NULL);
    metric_add(m, NULL, 3);
    metric_add(m, NULL, -1);
    expect_render("# HELP x_total x\n# TYPE x_total counter\nx_total 3\n");
}

static void test_unlabelled_family_renders_zero(void **state)
{
    metric_gauge("onehop_up", "Up.", NULL);
    metric_counter("onehop_lab_total", "Labelled, no series yet.", "daemon");
    expect_render("# HELP onehop_up Up.\n# TYPE onehop_up gauge\nonehop_up 0\n"
                  "# HELP onehop_lab_total Labelled, no series yet.\n"
                  "# TYPE onehop_lab_total counter\n");
}

static void test_gauge_set_and_fraction(void **state)
{
    struct metric *m = metric_gauge("onehop_queue_oldest_age_seconds", "Age.", NULL);
    metric_set(m, NULL, 12.5);
    metric_set(m, NULL, 0.25);
    expect_render("# HELP onehop_queue_oldest_age_seconds Age.\n"
                  "# TYPE onehop_queue_oldest_age_seconds gauge\n"
                  "onehop_queue_oldest_age_seconds 0.25\n");
}

static void test_label_value_escaping(void **state)
{
    struct metric *m = metric_counter("c_total", "c", "destination");
    metric_inc(m, "a\\b\"c\nd");
    expect_render("# HELP c_total c\n# TYPE c_total counter\n"
                  "c_total{destination=\"a\\\\b\\\"c\\nd\"} 1\n");
}

static void test_help_escaping(void **state)
{
    metric_gauge("g", "line one\nback\\slash \"quoted\"", NULL);
    expect_render("# HELP g line one\\nback\\\\slash \"quoted\"\n# TYPE g gauge\ng 0\n");
}

static void test_histogram_cumulative_buckets(void **state)
{
    static const double bounds[] = {0.1, 1, 10};
    struct metric *m =
        metric_histogram("onehop_delivery_seconds", "Latency.", "transport", bounds, 3);
    metric_observe(m, "remote", 0.05);
    metric_observe(m, "remote", 0.1); /* le is inclusive */
    metric_observe(m, "remote", 2);
    metric_observe(m, "remote", 60); /* only +Inf */
    expect_render("# HELP onehop_delivery_seconds Latency.\n"
                  "# TYPE onehop_delivery_seconds histogram\n"
                  "onehop_delivery_seconds_bucket{transport=\"remote\",le=\"0.1\"} 2\n"
                  "onehop_delivery_seconds_bucket{transport=\"remote\",le=\"1\"} 2\n"
                  "onehop_delivery_seconds_bucket{transport=\"remote\",le=\"10\"} 3\n"
                  "onehop_delivery_seconds_bucket{transport=\"remote\",le=\"+Inf\"} 4\n"
                  "onehop_delivery_seconds_sum{transport=\"remote\"} 62.15\n"
                  "onehop_delivery_seconds_count{transport=\"remote\"} 4\n");
}

static void test_histogram_without_label(void **state)
{
    static const double bounds[] = {1};
    metric_histogram("h", "h", NULL, bounds, 1);
    expect_render("# HELP h h\n# TYPE h histogram\n"
                  "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}

static void test_series_cap_folds_into_other(void **state)
{
    struct metric *m = metric_counter("d_total", "d", "destination");
    char name[32];
    for (int i = 0; i < METRICS_SERIES_MAX + 10; i++) {
        snprintf(name, sizeof(name), "d%d", i);
        metric_inc(m, name);
    }
    struct buf out = BUF_INIT;
    metrics_render(&out);
    const char *s = buf_cstr(&out);
    int lines = 0;
    for (const char *p = s; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines, 2 + METRICS_SERIES_MAX); /* HELP, TYPE, 63 values and other */
    assert_non_null(strstr(s, "d_total{destination=\"other\"} 11\n"));
    assert_null(strstr(s, "\"d63\""));
    buf_free(&out);
}

static void test_reregistration_returns_same_family(void **state)
{
    struct metric *a = metric_counter("r_total", "r", NULL);
    struct metric *b = metric_counter("r_total", "r", NULL);
    assert_ptr_equal(a, b);
    metric_inc(b, NULL);
    expect_render("# HELP r_total r\n# TYPE r_total counter\nr_total 1\n");
}

static void set_depth(void *arg)
{
    metric_set(arg, "deferred", 7);
}

static void test_collector_runs_before_render(void **state)
{
    struct metric *m = metric_gauge("q", "q", "state");
    metrics_on_collect(set_depth, m);
    metrics_on_collect(set_depth, m); /* once only */
    expect_render("# HELP q q\n# TYPE q gauge\nq{state=\"deferred\"} 7\n");
}

static void test_sample_helpers(void **state)
{
    struct buf out = BUF_INIT;
    metrics_render_head(&out, "onehop_up", "Up.", "gauge");
    metrics_render_sample(&out, "onehop_up", "daemon", "router", 1);
    metrics_render_sample(&out, "plain", NULL, NULL, 0);
    assert_string_equal(buf_cstr(&out), "# HELP onehop_up Up.\n# TYPE onehop_up gauge\n"
                                        "onehop_up{daemon=\"router\"} 1\nplain 0\n");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_counter_with_label, teardown),
        cmocka_unit_test_teardown(test_counter_never_goes_down, teardown),
        cmocka_unit_test_teardown(test_unlabelled_family_renders_zero, teardown),
        cmocka_unit_test_teardown(test_gauge_set_and_fraction, teardown),
        cmocka_unit_test_teardown(test_label_value_escaping, teardown),
        cmocka_unit_test_teardown(test_help_escaping, teardown),
        cmocka_unit_test_teardown(test_histogram_cumulative_buckets, teardown),
        cmocka_unit_test_teardown(test_histogram_without_label, teardown),
        cmocka_unit_test_teardown(test_series_cap_folds_into_other, teardown),
        cmocka_unit_test_teardown(test_reregistration_returns_same_family, teardown),
        cmocka_unit_test_teardown(test_collector_runs_before_render, teardown),
        cmocka_unit_test_teardown(test_sample_helpers, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
