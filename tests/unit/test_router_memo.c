/*
 * test_router_memo — daemons/router/memo.c: alias targets remembered per
 * (message, recipient), the SPEC 5 rule 5 mark, forgetting, and growth
 * past the first table without losing an entry.
 */
#include "rowtest.h"

#include <stdio.h>

#include "router/memo.h"

#define ID1 "1K1ZVA0XNSX00ZCW00"
#define ID2 "1K1ZVA0XNSX00ZCW01"

static void test_targets(void **state)
{
    struct memo *mm = memo_new();
    (void)state;
    assert_int_equal(memo_target(mm, ID1, 0, "a@b.test"), MEMO_NONE);
    memo_set_target(mm, ID1, 0, "a@b.test", MEMO_DELIVERED);
    memo_set_target(mm, ID1, 0, "c@d.test", MEMO_BOUNCED);
    assert_int_equal(memo_target(mm, ID1, 0, "a@b.test"), MEMO_DELIVERED);
    assert_int_equal(memo_target(mm, ID1, 0, "c@d.test"), MEMO_BOUNCED);
    assert_int_equal(memo_target(mm, ID1, 1, "a@b.test"), MEMO_NONE); /* another recipient */
    assert_int_equal(memo_target(mm, ID2, 0, "a@b.test"), MEMO_NONE); /* another message */
    assert_int_equal(memo_count(mm), 1);
    memo_free(mm);
}

static void test_all_mx_temp(void **state)
{
    struct memo *mm = memo_new();
    (void)state;
    memo_set_all_mx_temp(mm, ID1, 2, 0); /* clearing nothing makes no entry */
    assert_int_equal(memo_count(mm), 0);
    memo_set_all_mx_temp(mm, ID1, 2, 1);
    assert_true(memo_all_mx_temp(mm, ID1, 2));
    assert_false(memo_all_mx_temp(mm, ID1, 1));
    memo_set_all_mx_temp(mm, ID1, 2, 0);
    assert_false(memo_all_mx_temp(mm, ID1, 2));
    assert_int_equal(memo_count(mm), 0); /* an entry with nothing else goes */
    memo_set_target(mm, ID1, 3, "a@b.test", MEMO_DELIVERED);
    memo_set_all_mx_temp(mm, ID1, 3, 1);
    memo_set_all_mx_temp(mm, ID1, 3, 0);
    assert_int_equal(memo_target(mm, ID1, 3, "a@b.test"), MEMO_DELIVERED); /* kept */
    assert_int_equal(memo_count(mm), 1);
    memo_free(mm);
}

static void test_forget(void **state)
{
    struct memo *mm = memo_new();
    (void)state;
    memo_set_target(mm, ID1, 0, "a@b.test", MEMO_DELIVERED);
    memo_set_target(mm, ID1, 1, "a@b.test", MEMO_DELIVERED);
    memo_forget(mm, ID1, 0);
    memo_forget(mm, ID2, 0); /* nothing there */
    assert_int_equal(memo_target(mm, ID1, 0, "a@b.test"), MEMO_NONE);
    assert_int_equal(memo_target(mm, ID1, 1, "a@b.test"), MEMO_DELIVERED);
    assert_int_equal(memo_count(mm), 1);
    memo_free(mm);
}

static void test_growth(void **state)
{
    struct memo *mm = memo_new();
    char target[32];
    (void)state;
    for (uint32_t k = 0; k < 5000; k++) {
        snprintf(target, sizeof(target), "t%u@x.test", k);
        memo_set_target(mm, ID1, k, target, MEMO_DELIVERED);
    }
    assert_int_equal(memo_count(mm), 5000);
    for (uint32_t k = 0; k < 5000; k++) {
        snprintf(target, sizeof(target), "t%u@x.test", k);
        assert_int_equal(memo_target(mm, ID1, k, target), MEMO_DELIVERED);
    }
    memo_free(mm);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    rowtest_add(&t, test_targets, NULL, "targets per message and recipient");
    rowtest_add(&t, test_all_mx_temp, NULL, "rule 5 mark");
    rowtest_add(&t, test_forget, NULL, "forget one recipient");
    rowtest_add(&t, test_growth, NULL, "5000 recipients through growth");
    return rowtest_run(&t, "router_memo");
}
