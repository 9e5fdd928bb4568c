/*
 * test_json — golden expectations for the JSON string escaper (common/json.h):
 * one test per escaping rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

static void expect_escaped(const char *in, size_t len, const char *want)
{
    struct buf out = BUF_INIT;
    json_add_string(&out, in, len);
    assert_string_equal(buf_cstr(&out), want);
    buf_free(&out);
}

static void test_plain_ascii(void **state)
{
    expect_escaped("alice@a.test", 12, "\"alice@a.test\"");
}

static void test_empty(void **state)
{
    expect_escaped("", 0, "\"\"");
}

static void test_quote_and_backslash(void **state)
{
    expect_escaped("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
}

static void test_short_control_escapes(void **state)
{
    expect_escaped("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
}

static void test_other_controls_and_del(void **state)
{
    expect_escaped("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
}

static void test_nul_byte_inside(void **state)
{
    expect_escaped("a\0b", 3, "\"a\\u0000b\"");
}

static void test_valid_utf8_copied(void **state)
{
    /* é (2 bytes), € (3 bytes), U+1F600 (4 bytes) */
    expect_escaped("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
                   "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
}

static void test_latin1_byte_escaped(void **state)
{
    expect_escaped("caf\xe9", 4, "\"caf\\u00e9\"");
}

static void test_stray_continuation_escaped(void **state)
{
    expect_escaped("\x80x", 2, "\"\\u0080x\"");
}

static void test_overlong_escaped(void **state)
{
    /* C0 AF is an overlong '/'; E0 80 AF an overlong too */
    expect_escaped("\xc0\xaf", 2, "\"\\u00c0\\u00af\"");
    expect_escaped("\xe0\x80\xaf", 3, "\"\\u00e0\\u0080\\u00af\"");
}

static void test_surrogate_escaped(void **state)
{
    expect_escaped("\xed\xa0\x80", 3, "\"\\u00ed\\u00a0\\u0080\"");
}

static void test_above_max_code_point_escaped(void **state)
{
    expect_escaped("\xf4\x90\x80\x80", 4, "\"\\u00f4\\u0090\\u0080\\u0080\"");
}

static void test_truncated_sequence_at_end(void **state)
{
    /* the length ends inside the sequence: never read past it */
    expect_escaped("\xe2\x82\xac", 2, "\"\\u00e2\\u0082\"");
}

static void test_cstr_null_and_key(void **state)
{
    struct buf out = BUF_INIT;
    json_add_cstr(&out, NULL);
    json_add_key(&out, "id"); /* after a value: separated */
    json_add_uint(&out, 18446744073709551615u);
    buf_addc(&out, ',');
    json_add_int(&out, -5);
    assert_string_equal(buf_cstr(&out), "null,\"id\":18446744073709551615,-5");
    buf_free(&out);
}

/* Members separate themselves: none before the first of an object. */
static void test_fields_separate_themselves(void **state)
{
    (void)state;
    struct buf out = BUF_INIT;
    buf_addc(&out, '{');
    json_field_cstr(&out, "a", "x");
    json_field_uint(&out, "b", 2);
    json_add_key(&out, "c");
    buf_addc(&out, '{');
    json_field_bool(&out, "d", 1);
    json_field_bool(&out, "e", 0);
    buf_adds(&out, "}}");
    assert_string_equal(buf_cstr(&out), "{\"a\":\"x\",\"b\":2,\"c\":{\"d\":true,\"e\":false}}");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_ascii),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_quote_and_backslash),
        cmocka_unit_test(test_short_control_escapes),
        cmocka_unit_test(test_other_controls_and_del),
        cmocka_unit_test(test_nul_byte_inside),
        cmocka_unit_test(test_valid_utf8_copied),
        cmocka_unit_test(test_latin1_byte_escaped),
        cmocka_unit_test(test_stray_continuation_escaped),
        cmocka_unit_test(test_overlong_escaped),
        cmocka_unit_test(test_surrogate_escaped),
        cmocka_unit_test(test_above_max_code_point_escaped),
        cmocka_unit_test(test_truncated_sequence_at_end),
        cmocka_unit_test(test_cstr_null_and_key),
        cmocka_unit_test(test_fields_separate_themselves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
