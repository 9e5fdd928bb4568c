/*
 * test_remote_classify — the D4 table of daemons/remote/classify.c, one
 * test per row: the row as text against the golden line of SPEC D4
 * (docs/remote-classification.md has the same lines), the lookup finds
 * exactly that row, and the D4 invariants hold for it (nothing before the
 * session was accepted and no 4xx is permanent; "possibly delivered" only
 * after the content was sent). Plus: the number of rows, and pairs that
 * cannot happen have no row.
 */
#include "rowtest.h"

#include <stdio.h>
#include <string.h>

#include "remote/classify.h"

static const char *const golden[] = {
    "connect refused -> next-address temporary",
    "connect timeout -> next-address temporary",
    "connect lost -> next-address temporary",
    "greeting timeout -> next-address temporary",
    "greeting lost -> next-address temporary",
    "greeting 421 -> next-address temporary",
    "greeting 4xx -> next-address temporary",
    "greeting 5xx -> next-address temporary",
    "EHLO timeout -> next-address temporary",
    "EHLO lost -> next-address temporary",
    "EHLO 421 -> next-address temporary",
    "EHLO 4xx -> try-HELO temporary",
    "EHLO 5xx -> try-HELO temporary",
    "HELO timeout -> next-address temporary",
    "HELO lost -> next-address temporary",
    "HELO 421 -> next-address temporary",
    "HELO 4xx -> next-address temporary",
    "HELO 5xx -> next-address temporary",
    "MAIL FROM timeout -> next-address temporary",
    "MAIL FROM lost -> next-address temporary",
    "MAIL FROM 421 -> next-address temporary",
    "MAIL FROM 4xx -> next-address temporary",
    "MAIL FROM 5xx -> bounce-transaction permanent",
    "MAIL FROM too-big -> next-address permanent",
    "MAIL FROM no-SMTPUTF8 -> next-address permanent",
    "RCPT TO timeout -> next-address temporary",
    "RCPT TO lost -> next-address temporary",
    "RCPT TO 421 -> next-address temporary",
    "RCPT TO 4xx -> recipient-next-address temporary",
    "RCPT TO 5xx -> bounce-recipient permanent",
    "DATA timeout -> next-address temporary",
    "DATA lost -> next-address temporary",
    "DATA 421 -> next-address temporary",
    "DATA 4xx -> next-address temporary",
    "DATA 5xx -> bounce-transaction permanent",
    "end of DATA timeout -> next-address temporary possibly-delivered",
    "end of DATA lost -> next-address temporary possibly-delivered",
    "end of DATA 421 -> next-address temporary",
    "end of DATA 4xx -> next-address temporary",
    "end of DATA 5xx -> bounce-transaction permanent",
};

static const char *event_word(enum smtp_event e)
{
    static const char *const w[EVENT_COUNT] = {"refused", "timeout", "lost",    "421",
                                               "4xx",     "5xx",     "too-big", "no-SMTPUTF8"};
    return w[e];
}

static const char *action_word(enum smtp_action a)
{
    static const char *const w[] = {"next-address", "try-HELO", "recipient-next-address",
                                    "bounce-recipient", "bounce-transaction"};
    return w[a];
}

static void row_text(const struct d4_row *r, char *out, size_t n)
{
    snprintf(out, n, "%s %s -> %s %s%s", smtp_stage_name(r->stage), event_word(r->event),
             action_word(r->action), rp_class_name(r->last_resort),
             r->maybe_delivered ? " possibly-delivered" : "");
}

static void test_row(void **state)
{
    size_t i = (size_t)(uintptr_t)*state - 1, n;
    const struct d4_row *rows = d4_rows(&n);
    const struct d4_row *r = &rows[i];
    char text[160];
    row_text(r, text, sizeof(text));
    assert_string_equal(text, golden[i]);
    assert_ptr_equal(d4_classify(r->stage, r->event), r);
    /* D4: before the session was accepted nothing is permanent */
    if (r->stage <= STAGE_HELO || r->event == EVENT_4XX || r->event == EVENT_421 ||
        r->event == EVENT_LOST || r->event == EVENT_TIMEOUT || r->event == EVENT_REFUSED)
        assert_int_equal(r->last_resort, RP_TEMP);
    if (r->last_resort == RP_PERM)
        assert_true(r->event == EVENT_5XX || r->event == EVENT_TOO_BIG ||
                    r->event == EVENT_NO_UTF8);
    if (r->maybe_delivered)
        assert_int_equal(r->stage, STAGE_CONTENT);
}

static void test_row_count(void **state)
{
    size_t n;
    d4_rows(&n);
    assert_int_equal(n, ROWS(golden));
}

static void test_impossible_pairs(void **state)
{
    assert_null(d4_classify(STAGE_GREETING, EVENT_REFUSED));
    assert_null(d4_classify(STAGE_RCPT, EVENT_TOO_BIG));
    assert_null(d4_classify(STAGE_RCPT, EVENT_NO_UTF8));
    assert_null(d4_classify(STAGE_CONTENT, EVENT_REFUSED));
    assert_int_equal(d4_event_of_code(421), EVENT_421);
    assert_int_equal(d4_event_of_code(450), EVENT_4XX);
    assert_int_equal(d4_event_of_code(554), EVENT_5XX);
    assert_int_equal(d4_event_of_code(250), EVENT_4XX); /* a code the stage did not expect */
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    size_t n;
    const struct d4_row *rows = d4_rows(&n);
    for (size_t i = 0; i < n; i++)
        rowtest_add(&t, test_row, (const void *)(uintptr_t)(i + 1), "D4 %s %s",
                    smtp_stage_name(rows[i].stage), event_word(rows[i].event));
    rowtest_add(&t, test_row_count, NULL, "D4 row count");
    rowtest_add(&t, test_impossible_pairs, NULL, "D4 pairs that cannot happen");
    return rowtest_run(&t, "remote_classify");
}
