/*
 * test_mem — allocation that never returns NULL (common/mem.h): xgrow's
 * doubling and its overflow checks, the string copies, and fail-stop on
 * requests that cannot be met.
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

#include "mem.h"

static void test_zero_sizes_give_memory(void **state)
{
    void *p = xmalloc(0), *q = xcalloc(0, 4), *r = xrealloc(NULL, 0);
    assert_non_null(p);
    assert_non_null(q);
    assert_non_null(r);
    free(p);
    free(q);
    free(r);
}

static void test_xcalloc_zeroed(void **state)
{
    unsigned char *p = xcalloc(100, 3);
    for (int i = 0; i < 300; i++)
        assert_int_equal(p[i], 0);
    free(p);
}

static void test_xgrow(void **state)
{
    int *v = NULL;
    size_t cap = 0;
    v = xgrow(v, &cap, 1, sizeof(*v));
    assert_int_equal(cap, 8);
    int *same = xgrow(v, &cap, 8, sizeof(*v));
    assert_ptr_equal(same, v); /* enough room: nothing changes */
    assert_int_equal(cap, 8);
    v = xgrow(v, &cap, 9, sizeof(*v));
    assert_int_equal(cap, 16);
    v = xgrow(v, &cap, 1000, sizeof(*v));
    assert_int_equal(cap, 1024);
    for (int i = 0; i < 1000; i++)
        v[i] = i; /* all of it writable (ASan) */
    free(v);
}

static void test_strdup(void **state)
{
    char *a = xstrdup("hello");
    char *b = xstrndup("hello world", 5);
    char *c = xstrndup("", 0);
    assert_string_equal(a, "hello");
    assert_string_equal(b, "hello");
    assert_string_equal(c, "");
    free(a);
    free(b);
    free(c);
}

static void grow_overflow_in_loop(void)
{
    size_t cap = 0;
    xgrow(NULL, &cap, SIZE_MAX / 2, 16);
}

static void grow_overflow_first_step(void)
{
    size_t cap = 0;
    xgrow(NULL, &cap, 1, SIZE_MAX / 4); /* 8 elements already overflow */
}

static void grow_zero_size(void)
{
    size_t cap = 0;
    xgrow(NULL, &cap, 1, 0);
}

static void calloc_overflow(void)
{
    xcalloc(SIZE_MAX / 2, 4);
}

static void test_impossible_requests_are_fatal(void **state)
{
    assert_int_equal(child_exit_status(grow_overflow_in_loop), 1);
    assert_int_equal(child_exit_status(grow_overflow_first_step), 1);
    assert_int_equal(child_exit_status(grow_zero_size), 1);
    assert_int_equal(child_exit_status(calloc_overflow), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_sizes_give_memory),
        cmocka_unit_test(test_xcalloc_zeroed),
        cmocka_unit_test(test_xgrow),
        cmocka_unit_test(test_strdup),
        cmocka_unit_test(test_impossible_requests_are_fatal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
