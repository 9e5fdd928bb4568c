/*
 * test_qlist — the queue listing, `queue show` and qstat output (queue/qlist.h)
 * against golden text, on a real queue built with the queue library in a
 * fresh directory: the Postfix mailq layout with its `*` and `!` marks,
 * `(reason)` lines only when the reason changes, delivered recipients left
 * out, MAILER-DAEMON for the null sender, the summary line (a "(reason)"
 * is right-aligned to column 76 as Postfix does), control characters
 * neutralised, and the JSON shapes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "mem.h"
#include "qlist.h"
#include "queue_impl.h" /* write_version: these tests record state in format 2 files */

struct fixture {
    char dir[64];
    struct queue *q;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    const char *why;
    test_temp_dir(fx->dir, sizeof(fx->dir), "qlist");
    if (queue_open(&fx->q, fx->dir, QUEUE_OPEN_CREATE, &why) != 0 ||
        queue_lock_owner(fx->q, 0) != 0)
        return -1;
    fx->q->write_version = 2; /* a format 3 file takes no state records */
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    struct buf cmd = BUF_INIT;
    queue_close(fx->q);
    buf_printf(&cmd, "rm -rf '%s'", fx->dir);
    int rc = system(buf_cstr(&cmd));
    buf_free(&cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* Commit one message; its id into id[QUEUE_ID_LEN + 1]. */
static void commit(struct queue *q, const char *sender, const char *const *rcpt, size_t n,
                   const char *content, char *id)
{
    struct queue_writer *w;
    struct queue_envelope env = {sender, rcpt, NULL, NULL, n, NULL, 0};
    char fid[QUEUE_FILE_ID_LEN + 1];
    unsigned index;
    assert_int_equal(queue_writer_begin(q, &w), 0);
    assert_int_equal(queue_writer_data(w, content, strlen(content)), 0);
    assert_int_equal(queue_writer_end_msg(w, &env, &index), 0);
    assert_int_equal(queue_writer_commit(w, fid), 0);
    queue_msg_id(fid, index, id);
}

static void update(struct queue *q, const char *id, enum queue_update_kind kind, uint32_t rcpt,
                   int64_t next, const char *text)
{
    char fid[QUEUE_FILE_ID_LEN + 1];
    memcpy(fid, id, QUEUE_FILE_ID_LEN);
    fid[QUEUE_FILE_ID_LEN] = '\0';
    struct queue_update u = {kind, 0, rcpt, 1700000000, next, 0, text};
    assert_int_equal(queue_update(q, fid, &u, 1, NULL), 0);
}

static void take(struct queue *q, const char *id)
{
    char fid[QUEUE_FILE_ID_LEN + 1];
    memcpy(fid, id, QUEUE_FILE_ID_LEN);
    fid[QUEUE_FILE_ID_LEN] = '\0';
    assert_int_equal(queue_take(q, fid), 0);
}

/* What a printer wrote, as a string the caller frees. */
static char *capture(int (*print)(struct queue *, unsigned, FILE *), struct queue *q,
                     unsigned flags)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(print(q, flags, f), 0);
    fclose(f);
    return text;
}

/* The arrival column of message id, as the listing must show it. */
static void arrival_of(struct queue *q, const char *id, char *out, size_t size)
{
    struct queue_file f;
    size_t index;
    assert_int_equal(queue_find(q, id, &f, &index), 0);
    time_t t = (time_t)(f.msg[index].arrival_us / 1000000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, size, "%a %b %e %H:%M:%S", &tm);
    queue_file_free(&f);
}

static void test_empty(void **state)
{
    struct fixture *fx = *state;
    char *text = capture(qlist_print_queue, fx->q, 0);
    assert_string_equal(text, "Mail queue is empty\n");
    free(text);
    text = capture(qlist_print_queue, NULL, 0); /* the queue was never created */
    assert_string_equal(text, "Mail queue is empty\n");
    free(text);
    text = capture(qlist_print_queue, fx->q, QLIST_JSON);
    assert_string_equal(text, "{\"messages\":[]}\n");
    free(text);
}

static const char *const one_rcpt[] = {"bob@b.test"};
static const char *const four_rcpts[] = {"r1@c.test", "r2@c.test", "r3@c.test", "r4@c.test"};

/* Message A: untried, incoming. B: active, r1 r2 deferred for one reason,
 * r3 for another, r4 delivered. C: null sender, held. */
static void build_queue(struct queue *q, char *a, char *b, char *c)
{
    commit(q, "alice@a.test", one_rcpt, 1, "Subject: a\n\nbody\n", a);
    commit(q, "carol@c.test", four_rcpts, 4, "Subject: b\n\n0123456789\n", b);
    commit(q, "", one_rcpt, 1, "Subject: c\n\nx\n", c);
    take(q, b);
    update(q, b, QUPD_DEFERRED, 0, 1700000300, "connect to mx.c.test[127.0.0.3]:25: refused");
    update(q, b, QUPD_DEFERRED, 1, 1700000300, "connect to mx.c.test[127.0.0.3]:25: refused");
    update(q, b, QUPD_DEFERRED, 2, 1700000600, "450 4.2.0 busy\x1b[31m");
    update(q, b, QUPD_DELIVERED, 3, 0, "250 ok");
    update(q, c, QUPD_HOLD, QUEUE_NO_RCPT, 0, NULL);
}

static void test_mailq_layout(void **state)
{
    struct fixture *fx = *state;
    char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1], c[QUEUE_ID_LEN + 1];
    char ta[32], tb[32], tc[32];
    build_queue(fx->q, a, b, c);
    arrival_of(fx->q, a, ta, sizeof(ta));
    arrival_of(fx->q, b, tb, sizeof(tb));
    arrival_of(fx->q, c, tc, sizeof(tc));
    struct buf want = BUF_INIT;
    const char *indent = "                                                  "; /* 50 */
    buf_printf(&want,
               "-Queue ID-          --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
               "%s        17 %s  alice@a.test\n"
               "%sbob@b.test\n"
               "\n"
               "%s        23 %s  carol@c.test\n"
               "%*s(connect to mx.c.test[127.0.0.3]:25: refused)\n"
               "%sr1@c.test\n"
               "%sr2@c.test\n"
               "%*s(450 4.2.0 busy?[31m)\n"
               "%sr3@c.test\n"
               "\n"
               "%s!       14 %s  MAILER-DAEMON\n"
               "%sbob@b.test\n"
               "\n"
               "-- 0 Kbytes in 3 Requests.\n",
               a, ta, indent, b, tb, 76 - 43, "", indent, indent, 76 - 19, "", indent, c, tc,
               indent);
    char *text = capture(qlist_print_queue, fx->q, 0);
    assert_string_equal(text, buf_cstr(&want));
    free(text);
    buf_free(&want);
}

static void test_active_mark(void **state)
{
    struct fixture *fx = *state;
    char id[QUEUE_ID_LEN + 1];
    commit(fx->q, "alice@a.test", one_rcpt, 1, "S: x\n\n", id);
    take(fx->q, id); /* active and not tried yet */
    char *text = capture(qlist_print_queue, fx->q, 0);
    struct buf mark = BUF_INIT;
    buf_printf(&mark, "\n%s*", id);
    assert_non_null(strstr(text, buf_cstr(&mark)));
    free(text);
    buf_free(&mark);
}

static void test_queue_json(void **state)
{
    struct fixture *fx = *state;
    char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1], c[QUEUE_ID_LEN + 1];
    build_queue(fx->q, a, b, c);
    char *text = capture(qlist_print_queue, fx->q, QLIST_JSON);
    struct buf want = BUF_INIT;
    struct queue_file f;
    size_t index;
    uint64_t arrival[3];
    const char *ids[3] = {a, b, c};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(queue_find(fx->q, ids[k], &f, &index), 0);
        arrival[k] = f.msg[index].arrival_us / 1000000;
        queue_file_free(&f);
    }
    buf_printf(&want,
               "{\"messages\":["
               "{\"id\":\"%s\",\"state\":\"incoming\",\"size\":17,\"arrival\":%llu,"
               "\"sender\":\"alice@a.test\",\"recipients\":[{\"address\":\"bob@b.test\","
               "\"state\":\"pending\",\"reason\":null}]},"
               "{\"id\":\"%s\",\"state\":\"deferred\",\"size\":23,\"arrival\":%llu,"
               "\"sender\":\"carol@c.test\",\"recipients\":["
               "{\"address\":\"r1@c.test\",\"state\":\"deferred\","
               "\"reason\":\"connect to mx.c.test[127.0.0.3]:25: refused\"},"
               "{\"address\":\"r2@c.test\",\"state\":\"deferred\","
               "\"reason\":\"connect to mx.c.test[127.0.0.3]:25: refused\"},"
               "{\"address\":\"r3@c.test\",\"state\":\"deferred\","
               "\"reason\":\"450 4.2.0 busy?[31m\"},"
               "{\"address\":\"r4@c.test\",\"state\":\"delivered\",\"reason\":\"250 ok\"}]},"
               "{\"id\":\"%s\",\"state\":\"hold\",\"size\":14,\"arrival\":%llu,"
               "\"sender\":\"\",\"recipients\":[{\"address\":\"bob@b.test\","
               "\"state\":\"pending\",\"reason\":null}]}"
               "]}\n",
               a, (unsigned long long)arrival[0], b, (unsigned long long)arrival[1], c,
               (unsigned long long)arrival[2]);
    assert_string_equal(text, buf_cstr(&want));
    free(text);
    buf_free(&want);
}

static char *show(struct queue *q, const char *id, unsigned flags)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(qlist_print_message(q, id, flags, f), 0);
    fclose(f);
    return text;
}

static void test_show_json(void **state)
{
    struct fixture *fx = *state;
    char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1], c[QUEUE_ID_LEN + 1];
    build_queue(fx->q, a, b, c);
    char *text = show(fx->q, b, QLIST_JSON);
    /* per-recipient details, then the message-wide fields */
    assert_non_null(strstr(text, "{\"address\":\"r1@c.test\",\"state\":\"deferred\",\"reason\":"
                                 "\"connect to mx.c.test[127.0.0.3]:25: refused\","
                                 "\"attempts\":1,\"last_attempt\":1700000000,"
                                 "\"next_attempt\":1700000300,\"orcpt\":\"\",\"notify\":\"\"}"));
    assert_non_null(strstr(text, "{\"address\":\"r4@c.test\",\"state\":\"delivered\",\"reason\":"
                                 "\"250 ok\",\"attempts\":1,\"last_attempt\":1700000000,"
                                 "\"next_attempt\":null,"));
    assert_non_null(strstr(text, "\"attributes\":{},\"headers\":[{\"name\":\"Subject\","
                                 "\"value\":\"b\"}],\"attempts\":1,"
                                 "\"next_attempt\":1700000300,\"route\":null}\n"));
    free(text);
}

static void test_show_text(void **state)
{
    struct fixture *fx = *state;
    char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1], c[QUEUE_ID_LEN + 1];
    build_queue(fx->q, a, b, c);
    char *text = show(fx->q, b, 0);
    assert_non_null(strstr(text, "State:       deferred\n"));
    assert_non_null(strstr(text, "Sender:      <carol@c.test>\n"));
    assert_non_null(strstr(text, "Recipient:   <r3@c.test>\n  state:     deferred\n"
                                 "  attempts:  1\n  last try:  Tue, 14 Nov 2023 22:13:20 +0000\n"
                                 "  next try:  Tue, 14 Nov 2023 22:23:20 +0000\n"
                                 "  reason:    450 4.2.0 busy?[31m\n"));
    assert_non_null(strstr(text, "Headers:\n  Subject: b\n"));
    assert_null(strchr(text, '\x1b'));
    free(text);
    text = show(fx->q, c, 0);
    assert_non_null(strstr(text, "State:       hold\n"));
    assert_non_null(strstr(text, "Sender:      <>\n"));
    free(text);
}

static void test_show_missing(void **state)
{
    struct fixture *fx = *state;
    char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1], c[QUEUE_ID_LEN + 1];
    build_queue(fx->q, a, b, c);
    assert_int_equal(queue_delete(fx->q, a, "test"), 0);
    FILE *f = fopen("/dev/null", "w");
    assert_int_equal(qlist_print_message(fx->q, a, 0, f), -1); /* deleted */
    assert_int_equal(qlist_print_message(fx->q, "not an id", 0, f), -1);
    assert_int_equal(qlist_print_message(NULL, b, 0, f), -1);
    fclose(f);
}

static void test_counts(void **state)
{
    struct fixture *fx = *state;
    char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1], c[QUEUE_ID_LEN + 1];
    build_queue(fx->q, a, b, c);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct queue_file qf;
    size_t index;
    assert_int_equal(queue_find(fx->q, a, &qf, &index), 0);
    time_t oldest = (time_t)(qf.msg[index].arrival_us / 1000000);
    queue_file_free(&qf);
    assert_int_equal(qlist_print_counts(fx->q, QLIST_JSON, oldest + 3725, f), 0);
    fclose(f);
    assert_string_equal(text, "{\"total\":3,\"incoming\":1,\"active\":0,\"deferred\":1,"
                              "\"hold\":1,\"corrupt\":0,\"oldest_age\":3725}\n");
    free(text);
    text = NULL;
    f = open_memstream(&text, &len);
    assert_int_equal(qlist_print_counts(fx->q, 0, oldest + 3725, f), 0);
    fclose(f);
    assert_string_equal(text, "total:       3\nincoming:    1\nactive:      0\ndeferred:    1\n"
                              "hold:        1\ncorrupt:     0\noldest_age:  3725 s (1h02m)\n");
    free(text);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailq_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_active_mark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
