/*
 * test_qlist — the queue listing, `queue show` and qstat output (queue/qlist.h)
 * against golden text, on a real queue built with the queue library in a
 * fresh directory: the Postfix mailq layout with its `*` and `!` marks,
 * `(reason)` lines only when the reason changes, delivered recipients left
 * out, MAILER-DAEMON for the null sender, the summary line (a "(reason)"
 * is right-aligned to column 76 as Postfix does), control characters
 * neutralised, and the JSON shapes. Recipient states come from the state
 * side (queue/state.h), recorded here as the router would; a file the state
 * does not know is listed as its file says.
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
#include "state.h"

struct fixture {
    char dir[64];
    struct queue *q;
    struct state *s; /* the owner's state, as a router holds it */
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    const char *why;
    test_temp_dir(fx->dir, sizeof(fx->dir), "qlist");
    if (queue_open(&fx->q, fx->dir, QUEUE_OPEN_CREATE, &why) != 0 ||
        state_open(&fx->s, fx->q, 0, NULL, &why) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    state_close(fx->s);
    queue_close(fx->q);
    int rc = test_remove_tree(fx->dir);
    free(fx);
    return rc;
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

/* Outcomes and actions as the router records them (durable at once). */
enum change { DEFERRED, SUSPENDED, DELIVERED, HOLD, DELETE };

static void update(struct state *s, const char *id, enum change kind, uint32_t rcpt, int64_t next,
                   const char *text)
{
    int64_t t = 1700000000;
    uint64_t seq = kind == DEFERRED    ? state_deferred(s, id, rcpt, t, next, text)
                   : kind == SUSPENDED ? state_suspended(s, id, rcpt, t, next, text)
                   : kind == DELIVERED ? state_delivered(s, id, rcpt, t, text)
                   : kind == HOLD      ? state_hold(s, id, t)
                                       : state_delete(s, id, t, text);
    assert_true(seq > 0);
    assert_int_equal(state_flush(s), 0);
}

/* Learn the new files and take id's file, as the router and its cleaner do. */
static void take(struct fixture *fx, const char *id)
{
    struct state_clean_req r;
    char fid[QUEUE_FILE_ID_LEN + 1];
    memcpy(fid, id, QUEUE_FILE_ID_LEN);
    fid[QUEUE_FILE_ID_LEN] = '\0';
    assert_true(state_learn_files(fx->s) >= 0);
    assert_int_equal(state_flush(fx->s), 0);
    while (state_clean_next(fx->s, &r))
        if (strcmp(r.id, fid) == 0) {
            assert_int_equal(queue_take(fx->q, fid), 0);
            state_clean_done(fx->s, &r, 0);
        }
    assert_int_equal(state_flush(fx->s), 0);
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
static void build_queue(struct fixture *fx, char *a, char *b, char *c)
{
    commit(fx->q, "alice@a.test", one_rcpt, 1, "Subject: a\n\nbody\n", a);
    commit(fx->q, "carol@c.test", four_rcpts, 4, "Subject: b\n\n0123456789\n", b);
    commit(fx->q, "", one_rcpt, 1, "Subject: c\n\nx\n", c);
    take(fx, b);
    struct state *s = fx->s;
    update(s, b, DEFERRED, 0, 1700000300, "connect to mx.c.test[127.0.0.3]:25: refused");
    update(s, b, DEFERRED, 1, 1700000300, "connect to mx.c.test[127.0.0.3]:25: refused");
    update(s, b, DEFERRED, 2, 1700000600, "450 4.2.0 busy\x1b[31m");
    update(s, b, DELIVERED, 3, 0, "250 ok");
    update(s, c, HOLD, QUEUE_NO_RCPT, 0, NULL);
}

static void test_mailq_layout(void **state)
{
    struct fixture *fx = *state;
    char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1], c[QUEUE_ID_LEN + 1];
    char ta[32], tb[32], tc[32];
    build_queue(fx, a, b, c);
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
    take(fx, id); /* active and not tried yet */
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
    build_queue(fx, a, b, c);
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
    build_queue(fx, a, b, c);
    char *text = show(fx->q, b, QLIST_JSON);
    /* per-recipient details, then the message-wide fields */
    assert_non_null(strstr(text, "{\"address\":\"r1@c.test\",\"state\":\"deferred\",\"reason\":"
                                 "\"connect to mx.c.test[127.0.0.3]:25: refused\","
                                 "\"attempts\":1,\"last_attempt\":1700000000,"
                                 "\"next_attempt\":1700000300,\"orcpt\":\"\",\"notify\":\"\","
                                 "\"route\":null}"));
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
    build_queue(fx, a, b, c);
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

/* D8: a recipient deferred with its destination (no attempt made) still
 * has a next try; queue show gives it, in JSON and text. */
static void test_show_suspended(void **state)
{
    struct fixture *fx = *state;
    char id[QUEUE_ID_LEN + 1];
    const char *const rcpt[] = {"dave@d.test"};
    commit(fx->q, "erin@e.test", rcpt, 1, "Subject: d\n\nbody\n", id);
    take(fx, id);
    update(fx->s, id, SUSPENDED, 0, 1700000600, "delivery temporarily suspended: dead");
    char *text = show(fx->q, id, QLIST_JSON);
    assert_non_null(strstr(text, "\"attempts\":0,\"last_attempt\":null,"
                                 "\"next_attempt\":1700000600,"));
    assert_non_null(strstr(text, "\"attempts\":0,\"next_attempt\":1700000600,\"route\""));
    free(text);
    text = show(fx->q, id, 0);
    assert_non_null(strstr(text, "  attempts:  0\n  last try:  -\n"
                                 "  next try:  Tue, 14 Nov 2023 22:23:20 +0000\n"));
    free(text);
}

static void test_show_missing(void **state)
{
    struct fixture *fx = *state;
    char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1], c[QUEUE_ID_LEN + 1];
    build_queue(fx, a, b, c);
    update(fx->s, a, DELETE, 0, 0, "test");
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
    build_queue(fx, a, b, c);
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
        cmocka_unit_test_setup_teardown(test_show_suspended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
