/*
 * test_diag — configuration errors collected and reported as
 * `FILE:LINE: message` (common/diag.h): the exact text diag_print writes,
 * line 0 as `FILE: message`, order, and the same text through diag_log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include <unistd.h>

#include "buf.h"
#include "diag.h"
#include "log.h"
#include "safeio.h"

/* What diag_print writes, captured in memory. */
static char *printed(const struct diag *d)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    diag_print(d, f);
    assert_int_equal(fclose(f), 0);
    return text;
}

static void expect_printed(const struct diag *d, const char *want)
{
    char *text = printed(d);
    assert_string_equal(text, want);
    free(text);
}

static void test_empty_prints_nothing(void **state)
{
    struct diag d = DIAG_INIT;
    expect_printed(&d, "");
    diag_free(&d);
}

static void test_file_line_message(void **state)
{
    struct diag d = DIAG_INIT;
    diag_add(&d, "/etc/onehop/onehop.conf", 12, "unknown key \"%s\"", "mynetwork");
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].file, "/etc/onehop/onehop.conf");
    assert_int_equal(d.v[0].line, 12);
    assert_string_equal(d.v[0].text, "unknown key \"mynetwork\"");
    expect_printed(&d, "/etc/onehop/onehop.conf:12: unknown key \"mynetwork\"\n");
    diag_free(&d);
}

static void test_line_zero_is_whole_file(void **state)
{
    struct diag d = DIAG_INIT;
    diag_add(&d, "routes", 0, "cannot read: %s", "Permission denied");
    expect_printed(&d, "routes: cannot read: Permission denied\n");
    diag_free(&d);
}

static void test_order_kept(void **state)
{
    struct diag d = DIAG_INIT;
    for (unsigned i = 1; i <= 100; i++)
        diag_add(&d, i % 2 ? "a.conf" : "b.conf", i, "error %u", i);
    struct buf want = BUF_INIT;
    for (unsigned i = 1; i <= 100; i++)
        buf_printf(&want, "%s:%u: error %u\n", i % 2 ? "a.conf" : "b.conf", i, i);
    expect_printed(&d, buf_cstr(&want));
    buf_free(&want);
    diag_free(&d);
}

static void test_long_message_not_cut(void **state)
{
    struct diag d = DIAG_INIT;
    struct buf msg = BUF_INIT, want = BUF_INIT;
    for (int i = 0; i < 10000; i++)
        buf_addc(&msg, (char)('a' + i % 26));
    diag_add(&d, "f", 1, "%s", msg.s);
    buf_printf(&want, "f:1: %s\n", msg.s);
    expect_printed(&d, want.s);
    buf_free(&msg);
    buf_free(&want);
    diag_free(&d);
}

static void test_message_is_not_a_format(void **state)
{
    struct diag d = DIAG_INIT;
    diag_add(&d, "%s.conf", 3, "%s", "50%d off");
    expect_printed(&d, "%s.conf:3: 50%d off\n");
    diag_free(&d);
}

static void test_free_and_reuse(void **state)
{
    struct diag d = DIAG_INIT;
    diag_add(&d, "x", 1, "one");
    diag_free(&d);
    assert_int_equal(d.n, 0);
    assert_null(d.v);
    expect_printed(&d, "");
    diag_add(&d, "y", 2, "two");
    expect_printed(&d, "y:2: two\n");
    diag_free(&d);
}

/* diag_log: each item is one "error: " log line with the same text. */
static void test_log(void **state)
{
    char dir[64];
    test_temp_dir(dir, sizeof(dir), "diag");
    struct buf path = BUF_INIT, text = BUF_INIT;
    path_join(&path, dir, "log");
    log_set_hostname("testhost");
    assert_int_equal(log_open("check", path.s), 0);

    struct diag d = DIAG_INIT;
    diag_add(&d, "onehop.conf", 7, "bad value");
    diag_add(&d, "sites", 0, "missing");
    diag_log(&d);
    diag_free(&d);
    log_close();

    assert_int_equal(read_file(path.s, &text, 0), 0);
    const char *first = strstr(text.s, "onehop/check[");
    assert_non_null(first);
    assert_non_null(strstr(first, "]: error: onehop.conf:7: bad value\n"));
    const char *second = strstr(first + 1, "onehop/check[");
    assert_non_null(second);
    assert_non_null(strstr(second, "]: error: sites: missing\n"));
    assert_null(strstr(text.s, "sites:0"));

    unlink(path.s);
    rmdir(dir);
    buf_free(&path);
    buf_free(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_prints_nothing),
        cmocka_unit_test(test_file_line_message),
        cmocka_unit_test(test_line_zero_is_whole_file),
        cmocka_unit_test(test_order_kept),
        cmocka_unit_test(test_long_message_not_cut),
        cmocka_unit_test(test_message_is_not_a_format),
        cmocka_unit_test(test_free_and_reuse),
        cmocka_unit_test(test_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
