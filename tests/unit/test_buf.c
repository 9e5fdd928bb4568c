/*
 * test_buf — the one byte-buffer type (common/buf.h): growth on append and
 * printf, the NUL kept after the content, consume, truncate, set, steal, and
 * the fail-stop on impossible requests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "mem.h"

/* The invariants every buf keeps once storage exists. */
static void assert_buf_ok(const struct buf *b)
{
    assert_non_null(b->s);
    assert_true(b->len < b->cap);
    assert_int_equal(b->s[b->len], '\0');
}

static void test_zeroed_is_empty(void **state)
{
    struct buf b = BUF_INIT;
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_cstr(&b), "");
    assert_buf_ok(&b);
    buf_free(&b);
    assert_null(b.s);
    assert_int_equal(b.cap, 0);
}

static void test_add_grows(void **state)
{
    struct buf b = BUF_INIT;
    size_t last_cap = 0, growths = 0;
    for (int i = 0; i < 10000; i++) {
        buf_addc(&b, (char)('a' + i % 26));
        assert_buf_ok(&b);
        if (b.cap != last_cap)
            growths++, last_cap = b.cap;
    }
    assert_int_equal(b.len, 10000);
    assert_true(growths < 20); /* doubling, not one allocation per byte */
    for (int i = 0; i < 10000; i++)
        assert_int_equal(b.s[i], 'a' + i % 26);
    buf_free(&b);
}

static void test_add_binary_and_adds(void **state)
{
    struct buf b = BUF_INIT;
    buf_add(&b, "a\0b", 3);
    buf_adds(&b, "cd");
    buf_add(&b, NULL, 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.s, "a\0bcd", 6); /* with the trailing NUL */
    buf_free(&b);
}

static void test_large_append(void **state)
{
    struct buf b = BUF_INIT;
    size_t n = 5u * 1024 * 1024 + 3;
    char *big = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7);
    buf_adds(&b, "head");
    buf_add(&b, big, n);
    assert_int_equal(b.len, n + 4);
    assert_buf_ok(&b);
    assert_memory_equal(b.s + 4, big, n);
    buf_add(&b, big, n);
    assert_int_equal(b.len, 2 * n + 4);
    assert_memory_equal(b.s + 4 + n, big, n);
    assert_buf_ok(&b);
    free(big);
    buf_free(&b);
}

static void test_printf(void **state)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s=%d", "x", 42);
    assert_string_equal(b.s, "x=42");
    assert_int_equal(b.len, 4);
    buf_printf(&b, "%s", "");
    assert_int_equal(b.len, 4);
    buf_printf(&b, ";%05u", 7u);
    assert_string_equal(b.s, "x=42;00007");
    assert_buf_ok(&b);
    buf_free(&b);
}

static void test_printf_growth(void **state)
{
    struct buf b = BUF_INIT, want = BUF_INIT;
    char chunk[1001];
    memset(chunk, 'z', 1000);
    chunk[1000] = '\0';
    for (int i = 0; i < 300; i++) {
        buf_printf(&b, "%d:%s|", i, chunk);
        char num[16];
        snprintf(num, sizeof(num), "%d:", i);
        buf_adds(&want, num);
        buf_adds(&want, chunk);
        buf_addc(&want, '|');
        assert_buf_ok(&b);
    }
    assert_int_equal(b.len, want.len);
    assert_memory_equal(b.s, want.s, want.len);
    buf_free(&b);
    buf_free(&want);
}

static void test_printf_empty_buf_empty_text(void **state)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s", "");
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_cstr(&b), "");
    buf_free(&b);
}

static void test_set(void **state)
{
    struct buf b = BUF_INIT;
    buf_sets(&b, "a long first value");
    buf_sets(&b, "short");
    assert_int_equal(b.len, 5);
    assert_string_equal(b.s, "short");
    buf_set(&b, "", 0);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.s, "");
    buf_free(&b);
}

static void test_consume(void **state)
{
    struct buf b = BUF_INIT;
    buf_sets(&b, "0123456789");
    buf_consume(&b, 3);
    assert_int_equal(b.len, 7);
    assert_string_equal(b.s, "3456789");
    buf_consume(&b, 0);
    assert_string_equal(b.s, "3456789");
    buf_consume(&b, 7);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.s, "");
    buf_free(&b);
}

static void test_consume_zero_of_empty(void **state)
{
    struct buf b = BUF_INIT;
    buf_consume(&b, 0);
    assert_int_equal(b.len, 0);
    buf_truncate(&b, 0);
    buf_clear(&b);
    assert_null(b.s);
    buf_free(&b);
}

static void test_truncate_and_clear(void **state)
{
    struct buf b = BUF_INIT;
    buf_sets(&b, "hello world");
    size_t cap = b.cap;
    buf_truncate(&b, 5);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.s, "hello");
    buf_truncate(&b, 5);
    assert_string_equal(b.s, "hello");
    buf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.s, "");
    assert_int_equal(b.cap, cap); /* storage kept for reuse */
    buf_free(&b);
}

static void test_steal(void **state)
{
    struct buf b = BUF_INIT;
    buf_sets(&b, "mine now");
    char *s = buf_steal(&b);
    assert_string_equal(s, "mine now");
    assert_null(b.s);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(s);
    /* stealing an empty buf still gives a string */
    s = buf_steal(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    /* the buf is usable again afterwards */
    buf_adds(&b, "again");
    assert_string_equal(buf_cstr(&b), "again");
    buf_free(&b);
}

static void test_reserve(void **state)
{
    struct buf b = BUF_INIT;
    buf_reserve(&b, 1000);
    assert_true(b.cap >= 1001);
    assert_int_equal(b.len, 0);
    char *before = b.s;
    for (int i = 0; i < 1000; i++)
        buf_addc(&b, 'r');
    assert_ptr_equal(b.s, before); /* reserved: no reallocation */
    buf_free(&b);
}

/* ---------------------------------------------------------- fail-stop ---- */

static struct buf child_buf; /* static: reachable for LeakSanitizer at exit */

static void consume_too_much(void)
{
    buf_sets(&child_buf, "abc");
    buf_consume(&child_buf, 4);
}

static void truncate_too_much(void)
{
    buf_sets(&child_buf, "abc");
    buf_truncate(&child_buf, 4);
}

static void reserve_too_much(void)
{
    buf_sets(&child_buf, "abc");
    buf_reserve(&child_buf, SIZE_MAX - 2);
}

static void test_impossible_requests_are_fatal(void **state)
{
    assert_int_equal(child_exit_status(consume_too_much), 1);
    assert_int_equal(child_exit_status(truncate_too_much), 1);
    assert_int_equal(child_exit_status(reserve_too_much), 1);
}

/* buf_add / buf_set given a part of the same buf: the storage may move
 * while growing, and the bytes must still be the right ones. */
static void test_self_aliasing(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_sets(&b, "abcdefgh");
    for (int i = 0; i < 10; i++)
        buf_add(&b, b.s, b.len); /* doubles: 8 << 10 bytes, many reallocs */
    assert_int_equal(b.len, 8u << 10);
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(b.s[i], "abcdefgh"[i % 8]);
    buf_set(&b, b.s + 3, 4);
    assert_string_equal(buf_cstr(&b), "defg");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zeroed_is_empty),
        cmocka_unit_test(test_add_grows),
        cmocka_unit_test(test_add_binary_and_adds),
        cmocka_unit_test(test_large_append),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_printf_growth),
        cmocka_unit_test(test_printf_empty_buf_empty_text),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_consume_zero_of_empty),
        cmocka_unit_test(test_truncate_and_clear),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_impossible_requests_are_fatal),
        cmocka_unit_test(test_self_aliasing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
