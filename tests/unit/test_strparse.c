/*
 * test_strparse — one test per row of each parser's decision table: every
 * accepted form, every refused form (sign, junk, overflow, bad suffix).
 */
#include "rowtest.h"

#include <string.h>

#include "strparse.h"

struct uint_row {
    const char *in;
    uint64_t min, max;
    int rc;
    uint64_t want;
};

static const struct uint_row uint_rows[] = {
    {"0", 0, 10, 0, 0},
    {"10", 0, 10, 0, 10},
    {"007", 0, 10, 0, 7},
    {"11", 0, 10, -1, 0},
    {"4", 5, 10, -1, 0},
    {"18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX},
    {"18446744073709551616", 0, UINT64_MAX, -1, 0},
    {"99999999999999999999999", 0, UINT64_MAX, -1, 0},
    {"", 0, 10, -1, 0},
    {"-1", 0, 10, -1, 0},
    {"+1", 0, 10, -1, 0},
    {" 1", 0, 10, -1, 0},
    {"1 ", 0, 10, -1, 0},
    {"1x", 0, 10, -1, 0},
    {"0x1", 0, 10, -1, 0},
    {"1.5", 0, 10, -1, 0},
};

static void test_parse_uint(void **state)
{
    const struct uint_row *r = *state;
    uint64_t v = 12345;
    const char *why = NULL;
    int rc = parse_uint(r->in, r->min, r->max, &v, &why);
    assert_int_equal(rc, r->rc);
    if (rc == 0) {
        assert_int_equal(v, r->want);
    } else {
        assert_non_null(why);
        assert_int_equal(v, 12345); /* untouched on failure */
    }
}

struct num_row {
    const char *in;
    int rc;
    uint64_t want;
};

static const struct num_row duration_rows[] = {
    {"0", 0, 0},
    {"30", 0, 30},
    {"30s", 0, 30},
    {"5m", 0, 300},
    {"2h", 0, 7200},
    {"5d", 0, 432000},
    {"5D", 0, 432000},
    {"3650d", 0, 315360000},
    {"3651d", -1, 0},
    {"315360001", -1, 0},
    {"99999999999999999999d", -1, 0},
    {"", -1, 0},
    {"s", -1, 0},
    {"5w", -1, 0},
    {"5ms", -1, 0},
    {"5 s", -1, 0},
    {"-5s", -1, 0},
    {"1.5h", -1, 0},
};

static void test_parse_duration(void **state)
{
    const struct num_row *r = *state;
    uint64_t v = 0;
    const char *why = NULL;
    int rc = parse_duration(r->in, &v, &why);
    assert_int_equal(rc, r->rc);
    if (rc == 0)
        assert_int_equal(v, r->want);
    else
        assert_non_null(why);
}

static const struct num_row size_rows[] = {
    {"0", 0, 0},
    {"52428800", 0, 52428800},
    {"10k", 0, 10240},
    {"10K", 0, 10240},
    {"50m", 0, 52428800},
    {"2g", 0, 2147483648ULL},
    {"18446744073709551615", 0, UINT64_MAX},
    {"17179869184g", -1, 0},
    {"10kb", -1, 0},
    {"10t", -1, 0},
    {"k", -1, 0},
    {"", -1, 0},
    {"-1", -1, 0},
};

static void test_parse_size(void **state)
{
    const struct num_row *r = *state;
    uint64_t v = 0;
    const char *why = NULL;
    int rc = parse_size(r->in, &v, &why);
    assert_int_equal(rc, r->rc);
    if (rc == 0)
        assert_int_equal(v, r->want);
    else
        assert_non_null(why);
}

struct bool_row {
    const char *in;
    int rc, want;
};

static const struct bool_row bool_rows[] = {
    {"yes", 0, 1},   {"no", 0, 0}, {"YES", 0, 1}, {"No", 0, 0},    {"true", 0, 1},
    {"false", 0, 0}, {"on", 0, 1}, {"off", 0, 0}, {"1", 0, 1},     {"0", 0, 0},
    {"", -1, 0},     {"y", -1, 0}, {"2", -1, 0},  {"yes ", -1, 0}, {"enable", -1, 0},
};

static void test_parse_bool(void **state)
{
    const struct bool_row *r = *state;
    int v = -7;
    const char *why = NULL;
    int rc = parse_bool(r->in, &v, &why);
    assert_int_equal(rc, r->rc);
    if (rc == 0)
        assert_int_equal(v, r->want);
    else
        assert_int_equal(v, -7);
}

struct split_row {
    const char *in;
    size_t n;
    const char *words[4];
};

static const struct split_row split_rows[] = {
    {"", 0, {NULL}},
    {"  , ,\t", 0, {NULL}},
    {"a", 1, {"a"}},
    {"a, b c,d", 4, {"a", "b", "c", "d"}},
    {"  a ,,b\n\tc  ", 3, {"a", "b", "c"}},
    {"127.0.0.0/8, ::1/128", 2, {"127.0.0.0/8", "::1/128"}},
};

static void test_split_list(void **state)
{
    const struct split_row *r = *state;
    char **w = NULL;
    size_t n = split_list(r->in, &w);
    assert_int_equal(n, r->n);
    for (size_t j = 0; j < n; j++)
        assert_string_equal(w[j], r->words[j]);
    strlist_free(w, n);
}

static void test_str_lower_trim(void **state)
{
    (void)state;
    char a[] = "MiXeD.Example.COM";
    assert_string_equal(str_lower(a), "mixed.example.com");
    char b[] = " \t value with  space \r\n";
    assert_string_equal(str_trim(b), "value with  space");
    char c[] = "   ";
    assert_string_equal(str_trim(c), "");
    char d[] = "";
    assert_string_equal(str_trim(d), "");
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(uint_rows); i++)
        rowtest_add(&t, test_parse_uint, &uint_rows[i], "parse_uint \"%s\" [%llu,%llu]",
                    uint_rows[i].in, (unsigned long long)uint_rows[i].min,
                    (unsigned long long)uint_rows[i].max);
    for (size_t i = 0; i < ROWS(duration_rows); i++)
        rowtest_add(&t, test_parse_duration, &duration_rows[i], "parse_duration \"%s\"",
                    duration_rows[i].in);
    for (size_t i = 0; i < ROWS(size_rows); i++)
        rowtest_add(&t, test_parse_size, &size_rows[i], "parse_size \"%s\"", size_rows[i].in);
    for (size_t i = 0; i < ROWS(bool_rows); i++)
        rowtest_add(&t, test_parse_bool, &bool_rows[i], "parse_bool \"%s\"", bool_rows[i].in);
    for (size_t i = 0; i < ROWS(split_rows); i++)
        rowtest_add(&t, test_split_list, &split_rows[i], "split_list \"%s\"", split_rows[i].in);
    rowtest_add(&t, test_str_lower_trim, NULL, "str_lower and str_trim");
    return rowtest_run(&t, "strparse");
}
