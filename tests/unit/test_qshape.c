/*
 * test_qshape — the table of `onehop qshape` (daemons/admin/qshape.h): one
 * row per age edge of the buckets (qshape's 5-minute tick, 10 buckets: the
 * first [0, 5) minutes, then doubling, the last 1280 minutes and more);
 * domains lower-cased and cut at the last '@'; a message counted once per
 * domain and once in TOTAL; rows by total, then length, then name; the
 * text golden against Postfix qshape's layout (80 columns, widths from the
 * headings and TOTAL's figures) and the JSON.
 */
#include "rowtest.h"

#include <string.h>

#include "admin/qshape.h"

struct bucket_row {
    int64_t age;
    unsigned bucket;
};

#define MIN 60
static const struct bucket_row bucket_rows[] = {
    {-30, 0},          {0, 0},
    {5 * MIN - 1, 0},  {5 * MIN, 1},
    {10 * MIN - 1, 1}, {10 * MIN, 2},
    {20 * MIN, 3},     {40 * MIN, 4},
    {80 * MIN, 5},     {160 * MIN, 6},
    {320 * MIN, 7},    {640 * MIN - 1, 7},
    {640 * MIN, 8},    {1280 * MIN - 1, 8},
    {1280 * MIN, 9},   {100000 * MIN, 9},
};

static void test_bucket(void **state)
{
    const struct bucket_row *row = *state;
    assert_int_equal(qshape_bucket(row->age), row->bucket);
}

static void test_domain(void **state)
{
    struct buf d = BUF_INIT;
    (void)state;
    qshape_domain("Bob@B.Test", &d);
    assert_string_equal(d.s, "b.test");
    qshape_domain("\"a@b\"@c.test.", &d);
    assert_string_equal(d.s, "c.test");
    qshape_domain("postmaster", &d);
    assert_string_equal(d.s, "postmaster");
    buf_free(&d);
}

static void test_counts_and_order(void **state)
{
    struct qshape t;
    (void)state;
    qshape_init(&t);
    const char *m1[] = {"a@c.test", "b@C.TEST", "x@bb.test"}; /* c.test once */
    const char *m2[] = {"y@bb.test"};
    const char *m3[] = {"z@aa.test"};
    qshape_add_message(&t, 2 * MIN, m1, 3);
    qshape_add_message(&t, 2000 * MIN, m2, 1);
    qshape_add_message(&t, 7 * MIN, m3, 1);
    qshape_add_message(&t, 7 * MIN, NULL, 0); /* nothing pending: not counted */
    qshape_sort(&t);
    assert_int_equal(t.total.total, 3);
    assert_int_equal(t.total.n[0], 1);
    assert_int_equal(t.total.n[1], 1);
    assert_int_equal(t.total.n[9], 1);
    assert_int_equal(t.nrows, 3);
    assert_string_equal(t.rows[0]->domain, "bb.test"); /* 2 */
    assert_int_equal(t.rows[0]->total, 2);
    assert_string_equal(t.rows[1]->domain, "c.test"); /* 1, the shorter name first */
    assert_int_equal(t.rows[1]->total, 1);
    assert_int_equal(t.rows[1]->n[0], 1);
    assert_string_equal(t.rows[2]->domain, "aa.test");

    struct buf out = BUF_INIT;
    qshape_text(&t, &out);
    const char *golden = "                                         T  5 10 20 40 80 160 320 640 "
                         "1280 1280+\n"
                         "                                  TOTAL  3  1  1  0  0  0   0   0   0 "
                         "   0     1\n"
                         "                                bb.test  2  1  0  0  0  0   0   0   0 "
                         "   0     1\n"
                         "                                 c.test  1  1  0  0  0  0   0   0   0 "
                         "   0     0\n"
                         "                                aa.test  1  0  1  0  0  0   0   0   0 "
                         "   0     0\n";
    assert_string_equal(buf_cstr(&out), golden);
    buf_clear(&out);
    qshape_json(&t, "all", &out);
    assert_non_null(strstr(buf_cstr(&out), "\"queue\":\"all\""));
    assert_non_null(strstr(out.s, "\"columns\":[\"T\",\"5\",\"10\",\"20\",\"40\",\"80\",\"160\","
                                  "\"320\",\"640\",\"1280\",\"1280+\"]"));
    assert_non_null(strstr(out.s, "{\"domain\":\"TOTAL\",\"total\":3,\"buckets\":[1,1,0,0,0,0,0,0,"
                                  "0,1]}"));
    assert_non_null(strstr(out.s, "{\"domain\":\"c.test\",\"total\":1,\"buckets\":[1,0,0,0,0,0,0,"
                                  "0,0,0]}"));
    buf_free(&out);
    qshape_free(&t);
}

static void test_many_domains_and_a_long_one(void **state)
{
    struct qshape t;
    struct buf addr = BUF_INIT, out = BUF_INIT;
    (void)state;
    qshape_init(&t);
    for (int i = 0; i < 5000; i++) { /* the lookup table grows */
        buf_clear(&addr);
        buf_printf(&addr, "u@d%d.test", i % 2500);
        const char *a[] = {buf_cstr(&addr)};
        qshape_add_message(&t, 0, a, 1);
    }
    const char *longest[] = {"u@a-very-long-subdomain-name.of-a-rather-long-domain.example.test"};
    qshape_add_message(&t, 0, longest, 1);
    assert_int_equal(t.nrows, 2501);
    assert_int_equal(t.total.total, 5001);
    qshape_sort(&t);
    assert_int_equal(t.rows[0]->total, 2);
    assert_string_equal(t.rows[2500]->domain, longest[0] + 2);
    qshape_text(&t, &out);
    /* cut from the left behind '+' to the domain column's width: 80 less the figures' 45 */
    assert_non_null(strstr(buf_cstr(&out), "\n+-a-rather-long-domain.example.test    1"));
    buf_free(&addr);
    buf_free(&out);
    qshape_free(&t);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(bucket_rows); i++)
        rowtest_add(&t, test_bucket, &bucket_rows[i], "age %lld s: bucket %u",
                    (long long)bucket_rows[i].age, bucket_rows[i].bucket);
    rowtest_add(&t, test_domain, NULL, "domains");
    rowtest_add(&t, test_counts_and_order, NULL, "counts, order, text and JSON");
    rowtest_add(&t, test_many_domains_and_a_long_one, NULL, "many domains, a long one cut");
    return rowtest_run(&t, "qshape");
}
