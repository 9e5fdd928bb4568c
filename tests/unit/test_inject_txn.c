/*
 * test_inject_txn — one injection transaction inside onehop-queue
 * (queue/inject_txn.h): request decoding (every type, every malformed
 * shape), envelope validation rows (sender, recipients, attributes, DSN
 * parameters) with their RFC 3463 codes, the first failure sticking, and
 * the reply records.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "inject_proto.h"
#include "inject_txn.h"
#include "ipc.h"
#include "mem.h"
#include "rowtest.h"

/* ------------------------------------------------------------- decoding ---- */
static void test_decode_each_type(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    struct ipc_reader r;
    struct inj_request rq;
    const char *why;

    ipc_begin(&w, &b, INJ_RCPT);
    ipc_add_u32(&w, 7);
    ipc_add_str(&w, "bob@b.test");
    ipc_add_str(&w, "rfc822;bob@b.test");
    ipc_add_str(&w, "FAILURE");
    ipc_finish(&w);
    assert_int_equal(inj_request_decode(&r, b.s, b.len, &rq, &why), 0);
    assert_int_equal(rq.type, INJ_RCPT);
    assert_int_equal(rq.txn, 7);
    assert_string_equal(rq.s1, "bob@b.test");
    assert_string_equal(rq.s2, "rfc822;bob@b.test");
    assert_string_equal(rq.s3, "FAILURE");
    ipc_close(&r);

    buf_clear(&b);
    ipc_begin(&w, &b, INJ_DATA);
    ipc_add_u32(&w, 8);
    ipc_add_bytes(&w, "a\0b", 3);
    ipc_finish(&w);
    assert_int_equal(inj_request_decode(&r, b.s, b.len, &rq, &why), 0);
    assert_int_equal(rq.n, 3);
    assert_memory_equal(rq.data, "a\0b", 3);
    ipc_close(&r);

    buf_clear(&b);
    ipc_begin(&w, &b, INJ_END);
    ipc_add_u32(&w, 9);
    ipc_finish(&w);
    assert_int_equal(inj_request_decode(&r, b.s, b.len, &rq, &why), 0);
    assert_int_equal(rq.type, INJ_END);
    ipc_close(&r);
    buf_free(&b);
}

struct bad_row {
    const char *name;
    uint16_t type;
    int shape; /* what to put in the record */
};

enum {
    SHAPE_NO_TXN,
    SHAPE_STR_AS_TXN,
    SHAPE_EXTRA_FIELD,
    SHAPE_BYTES_AS_STR,
    SHAPE_BIG_DATA,
    SHAPE_PLAIN
};

static const struct bad_row bad_rows[] = {
    {"unknown type", 99, SHAPE_PLAIN},
    {"reply type as request", INJ_OK, SHAPE_PLAIN},
    {"BEGIN without txn", INJ_BEGIN, SHAPE_NO_TXN},
    {"BEGIN txn as string", INJ_BEGIN, SHAPE_STR_AS_TXN},
    {"END with an extra field", INJ_END, SHAPE_EXTRA_FIELD},
    {"RCPT with bytes for a string", INJ_RCPT, SHAPE_BYTES_AS_STR},
    {"DATA over INJ_DATA_MAX", INJ_DATA, SHAPE_BIG_DATA},
};

static void test_decode_bad(void **state)
{
    const struct bad_row *row = *state;
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    struct ipc_reader r;
    struct inj_request rq;
    const char *why = NULL;
    ipc_begin(&w, &b, row->type);
    switch (row->shape) {
    case SHAPE_NO_TXN:
        break;
    case SHAPE_STR_AS_TXN:
        ipc_add_str(&w, "1");
        break;
    case SHAPE_EXTRA_FIELD:
        ipc_add_u32(&w, 1);
        ipc_add_u32(&w, 2);
        break;
    case SHAPE_BYTES_AS_STR:
        ipc_add_u32(&w, 1);
        ipc_add_bytes(&w, "x", 1);
        ipc_add_str(&w, "");
        ipc_add_str(&w, "");
        break;
    case SHAPE_BIG_DATA: {
        char *big = xcalloc(1, INJ_DATA_MAX + 1);
        ipc_add_u32(&w, 1);
        ipc_add_bytes(&w, big, INJ_DATA_MAX + 1);
        free(big);
        break;
    }
    default:
        ipc_add_u32(&w, 1);
    }
    ipc_finish(&w);
    assert_int_equal(inj_request_decode(&r, b.s, b.len, &rq, &why), -1);
    assert_non_null(why);
    ipc_close(&r);
    buf_free(&b);
}

/* ------------------------------------------------------------ envelope ---- */
struct env_row {
    const char *what; /* "sender", "rcpt", "attr", "uidattr", "dsn" */
    const char *a, *b;
    const char *want;     /* stored form, or NULL when refused */
    const char *enhanced; /* when refused */
};

static const struct env_row env_rows[] = {
    {"sender", "alice@a.test", NULL, "alice@a.test", NULL},
    {"sender", "Alice@A.TEST", NULL, "Alice@a.test", NULL},
    {"sender", "", NULL, "", NULL},
    {"sender", "<>", NULL, "", NULL},
    {"sender", "no at sign", NULL, NULL, "5.1.7"},
    {"sender", "a@b\r\nX: y", NULL, NULL, "5.1.7"},
    {"rcpt", "bob@b.test", NULL, "bob@b.test", NULL},
    {"rcpt", "\"john doe\"@b.test", NULL, "\"john doe\"@b.test", NULL},
    {"rcpt", "bob@[127.0.0.1]", NULL, "bob@[127.0.0.1]", NULL},
    {"rcpt", "bob", NULL, NULL, "5.1.3"},
    {"rcpt", "", NULL, NULL, "5.1.3"},
    {"rcpt", "bob@", NULL, NULL, "5.1.3"},
    {"rcpt", "bob@b.test\n", NULL, NULL, "5.1.3"},
    {"attr", "client", "x.test[127.0.0.9]", "client", NULL},
    {"attr", "Client", "x", NULL, "5.5.4"},
    {"attr", "client-addr", "x", NULL, "5.5.4"},
    {"attr", "helo", "a\nb", NULL, "5.5.4"},
    {"attr", "uid", "0", NULL, "5.5.4"},
    {"attr", "route", "[127.0.0.1]:25", NULL, "5.5.4"}, /* only the router records it */
    {"attr", "helo", "mx.client.test", "helo", NULL},
    {"uidattr", "uid", "1000", "uid", NULL},
    {"dsn", "rfc822;bob@b.test", "SUCCESS,FAILURE", "bob@b.test", NULL},
    {"dsn", "rfc822;bob@b.test\r\n", "", NULL, "5.5.4"},
};

static void test_envelope_row(void **state)
{
    const struct env_row *row = *state;
    struct inj_txn t;
    inj_txn_init(&t, 1, 0);
    inj_txn_sender(&t, "ok@a.test");
    const char *got = NULL;
    if (strcmp(row->what, "sender") == 0) {
        inj_txn_sender(&t, row->a);
        got = t.sender;
    } else if (strcmp(row->what, "rcpt") == 0) {
        inj_txn_rcpt(&t, row->a, "", "");
        got = t.nrcpt ? t.rcpt[0] : NULL;
    } else if (strcmp(row->what, "dsn") == 0) {
        inj_txn_rcpt(&t, "bob@b.test", row->a, row->b);
        got = t.nrcpt ? t.rcpt[0] : NULL;
    } else {
        inj_txn_attr(&t, row->a, row->b, strcmp(row->what, "uidattr") == 0);
        got = t.nattr ? t.attr[0].name : NULL;
    }
    if (row->want) {
        assert_false(inj_txn_failed(&t));
        assert_non_null(got);
        assert_string_equal(got, row->want);
    } else {
        assert_true(inj_txn_failed(&t));
        assert_int_equal(t.status, INJ_EX_DATAERR);
        assert_string_equal(t.enhanced, row->enhanced);
    }
    inj_txn_free(&t);
}

static void test_recipient_limit(void **state)
{
    (void)state;
    struct inj_txn t;
    inj_txn_init(&t, 1, 0);
    inj_txn_sender(&t, "a@a.test");
    for (int i = 0; i < QUEUE_RCPT_MAX; i++)
        inj_txn_rcpt(&t, "r@b.test", "", "");
    assert_false(inj_txn_failed(&t));
    assert_int_equal(t.nrcpt, QUEUE_RCPT_MAX);
    inj_txn_rcpt(&t, "one.more@b.test", "", "");
    assert_true(inj_txn_failed(&t));
    assert_string_equal(t.enhanced, "5.5.3");
    inj_txn_free(&t);
}

static void test_attribute_limit(void **state)
{
    (void)state;
    struct inj_txn t;
    inj_txn_init(&t, 1, 0);
    for (int i = 0; i < QUEUE_ATTR_MAX; i++)
        inj_txn_attr(&t, "client", "y", 0);
    assert_false(inj_txn_failed(&t));
    inj_txn_attr(&t, "client", "y", 0);
    assert_string_equal(t.enhanced, "5.5.4");
    inj_txn_free(&t);
}

static void test_no_recipient_and_first_failure_sticks(void **state)
{
    (void)state;
    struct inj_txn t;
    inj_txn_init(&t, 1, 0);
    inj_txn_sender(&t, "a@a.test");
    inj_txn_data(&t, "hi\n", 3);
    inj_txn_end(&t);
    assert_string_equal(t.enhanced, "5.5.1");
    inj_txn_free(&t);

    inj_txn_init(&t, 2, 100);
    inj_txn_sender(&t, "a@a.test");
    inj_txn_data(&t, "a\0", 2);
    inj_txn_rcpt(&t, "not valid", "", "");
    inj_txn_data(&t, "more", 4);
    inj_txn_end(&t);
    assert_string_equal(t.enhanced, "5.6.0");
    assert_int_equal(t.data.len, 0); /* failed content is dropped */
    inj_txn_free(&t);
}

static void test_content_normalised_and_sized(void **state)
{
    (void)state;
    struct inj_txn t;
    struct queue_envelope env;
    inj_txn_init(&t, 1, 0);
    inj_txn_sender(&t, "a@a.test");
    inj_txn_rcpt(&t, "b@b.test", "", "");
    inj_txn_data(&t, "Subject: x\r\n\r\nhi\r", 17);
    inj_txn_data(&t, "\nend", 4);
    inj_txn_end(&t);
    assert_false(inj_txn_failed(&t));
    assert_int_equal(t.data.len, 19);
    assert_memory_equal(t.data.s, "Subject: x\n\nhi\nend\n", 19);
    assert_int_equal(inj_txn_size(&t), 19);
    inj_txn_envelope(&t, &env);
    assert_string_equal(env.sender, "a@a.test");
    assert_int_equal(env.nrcpt, 1);
    assert_string_equal(env.rcpt[0], "b@b.test");
    inj_txn_free(&t);
}

/* -------------------------------------------------------------- replies ---- */
static void test_replies(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct ipc_reader r;
    uint32_t txn, status;
    const char *s, *text;
    inj_reply_ok(&b, 42, "1K0VASA8J7400QE200");
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    assert_int_equal(r.type, INJ_OK);
    assert_int_equal(ipc_get_u32(&r, &txn), 0);
    assert_int_equal(txn, 42);
    assert_int_equal(ipc_get_str(&r, 100, &s), 0);
    assert_string_equal(s, "1K0VASA8J7400QE200");
    assert_int_equal(ipc_end(&r), 0);
    ipc_close(&r);

    struct inj_txn t;
    inj_txn_init(&t, 43, 0);
    inj_txn_commit_failed(&t, ENOSPC);
    buf_clear(&b);
    inj_reply_fail(&b, &t);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    assert_int_equal(r.type, INJ_FAIL);
    assert_int_equal(ipc_get_u32(&r, &txn), 0);
    assert_int_equal(ipc_get_u32(&r, &status), 0);
    assert_int_equal(ipc_get_str(&r, 100, &s), 0);
    assert_int_equal(ipc_get_str(&r, 1000, &text), 0);
    assert_int_equal(ipc_end(&r), 0);
    assert_int_equal(txn, 43);
    assert_int_equal(status, INJ_EX_TEMPFAIL);
    assert_string_equal(s, "4.3.1");
    assert_non_null(strstr(text, "storage"));
    ipc_close(&r);
    inj_txn_free(&t);
    buf_free(&b);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    rowtest_add(&t, test_decode_each_type, NULL, "decode each type");
    for (size_t i = 0; i < ROWS(bad_rows); i++)
        rowtest_add(&t, test_decode_bad, &bad_rows[i], "decode refuses %s", bad_rows[i].name);
    for (size_t i = 0; i < ROWS(env_rows); i++)
        rowtest_add(&t, test_envelope_row, &env_rows[i], "%s %s %s", env_rows[i].what,
                    env_rows[i].a, env_rows[i].want ? "accepted" : "refused");
    rowtest_add(&t, test_recipient_limit, NULL, "recipient limit");
    rowtest_add(&t, test_attribute_limit, NULL, "attribute limit");
    rowtest_add(&t, test_no_recipient_and_first_failure_sticks, NULL, "first failure sticks");
    rowtest_add(&t, test_content_normalised_and_sized, NULL, "content normalised");
    rowtest_add(&t, test_replies, NULL, "reply records");
    return rowtest_run(&t, "inject_txn");
}
