/*
 * test_router_bounce — daemons/router/bounce.c (SPEC D6, RFC 3464): the
 * enhanced status taken from a reply (one row each), and the parts and
 * fields of a composed DSN.
 */
#include "rowtest.h"

#include <string.h>

#include "router/bounce.h"

struct status_row {
    const char *reply, *want;
};

static const struct status_row statuses[] = {
    {"550 5.1.1 no such user", "5.1.1"},
    {"554 5.7.1 relaying denied", "5.7.1"},
    {"550 no enhanced code", "5.0.0"},
    {"5.4.7 message expired after 6s", "5.4.7"},
    {"4.4.6 mail loops", "5.0.0"}, /* a bounce is never a 4.x.x */
    {"550 5.1.10 ten", "5.1.10"},
    {"550 5.1 short", "5.0.0"},
    {"", "5.0.0"},
    {"553 5.1.3x", "5.0.0"},
    {"host 127.0.0.2[127.0.0.2]:25 said: 550 5.1.1 no such user (in reply to RCPT TO command)",
     "5.1.1"},
    {"host mx said: 554 5.7.1 not you", "5.7.1"},
    {"version 5.1.1x then 5.2.2 here", "5.2.2"},
};

static void test_status(void **state)
{
    const struct status_row *row = *state;
    char out[16];
    bounce_status(row->reply, out);
    assert_string_equal(out, row->want);
}

static void test_compose(void **state)
{
    (void)state;
    static const char headers[] = "From: a@a.test\nSubject: hello\n";
    struct bounce_rcpt rc[2] = {
        {"bob@b.test", "rfc822;bob@b.test", "550 5.1.1 no such user", "mx.b.test"},
        {"carol@b.test", "", "5.4.7 message expired after 6s in the queue", NULL},
    };
    struct bounce b = {"mta.test", "1K1QBHJ6TDQ00YMP00", "a@a.test", 1700000000, 1700000100, rc, 2,
                       headers,    strlen(headers),      0,          0};
    struct buf out = BUF_INIT;
    bounce_compose(&b, &out);
    const char *s = buf_cstr(&out);
    assert_non_null(strstr(s, "From: Mail Delivery System <MAILER-DAEMON@mta.test>\n"));
    assert_non_null(strstr(s, "To: <a@a.test>\n"));
    assert_non_null(strstr(s, "Content-Type: multipart/report; report-type=delivery-status;\n"
                              "\tboundary=\"1K1QBHJ6TDQ00YMP00/mta.test\"\n"));
    assert_non_null(strstr(s, "\n--1K1QBHJ6TDQ00YMP00/mta.test\n"
                              "Content-Type: message/delivery-status\n\n"
                              "Reporting-MTA: dns; mta.test\n"));
    assert_non_null(strstr(s, "\nFinal-Recipient: rfc822; bob@b.test\n"
                              "Original-Recipient: rfc822;bob@b.test\n"
                              "Action: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.b.test\n"
                              "Diagnostic-Code: smtp; 550 5.1.1 no such user\n"));
    assert_non_null(strstr(s, "\nFinal-Recipient: rfc822; carol@b.test\n"
                              "Action: failed\nStatus: 5.4.7\nDiagnostic-Code: smtp; 5.4.7"));
    assert_non_null(strstr(s, "Content-Type: text/rfc822-headers\n\n"
                              "From: a@a.test\nSubject: hello\n\n"
                              "--1K1QBHJ6TDQ00YMP00/mta.test--\n"));
    assert_null(strstr(s, "\r"));
    buf_free(&out);
}

static void test_delay_status(void **state)
{
    char out[16];
    (void)state;
    bounce_delay_status("host x said: 451 4.2.1 busy", out);
    assert_string_equal(out, "4.2.1");
    bounce_delay_status("connect to x: Connection refused", out);
    assert_string_equal(out, "4.0.0");
    bounce_delay_status("550 5.1.1 not a delay", out);
    assert_string_equal(out, "4.0.0");
}

static void test_compose_delayed(void **state)
{
    (void)state;
    static const char headers[] = "Subject: hello\n";
    struct bounce_rcpt rc[1] = {{"bob@b.test", "", "451 4.2.1 busy", NULL}};
    struct bounce b = {.myhostname = "mta.test",
                       .queue_id = "1K1QBHJ6TDQ00YMP00",
                       .sender = "a@a.test",
                       .arrival = 1700000000,
                       .now = 1700000100,
                       .rcpt = rc,
                       .nrcpt = 1,
                       .headers = headers,
                       .headers_len = strlen(headers),
                       .delayed = 1,
                       .retry_until = 1700086400};
    struct buf out = BUF_INIT;
    bounce_compose(&b, &out);
    const char *s = buf_cstr(&out);
    assert_non_null(strstr(s, "Subject: Delayed Mail (still being retried)\n"));
    assert_non_null(strstr(s, "\nFinal-Recipient: rfc822; bob@b.test\n"
                              "Action: delayed\nStatus: 4.2.1\n"
                              "Diagnostic-Code: smtp; 451 4.2.1 busy\nWill-Retry-Until: "));
    assert_null(strstr(s, "Action: failed"));
    buf_free(&out);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(statuses); i++)
        rowtest_add(&t, test_status, &statuses[i], "status of \"%s\"", statuses[i].reply);
    rowtest_add(&t, test_compose, NULL, "a DSN's parts and fields");
    rowtest_add(&t, test_delay_status, NULL, "the status of a delay");
    rowtest_add(&t, test_compose_delayed, NULL, "a delay notice: Action: delayed");
    return rowtest_run(&t, "router_bounce");
}
