/*
 * qclient — smtpd's end of the QUEUE channel. See qclient.h.
 *
 * Transactions live on one list; a reply names its txn number, found by a
 * walk of that list (one walk per message: cheap beside the commit). The
 * content is sent in INJ_DATA records of up to QC_CHUNK bytes, so a
 * message never sits whole in smtpd's memory.
 *
 * Few writes: a transaction's records (BEGIN, ATTR, RCPT, DATA) wait in its
 * own buffer and go to the channel together, with its last content and END
 * at qclient_end, or with a QC_CHUNK of content (a transaction aborted
 * before that sends nothing at all); and the channel batches loop rounds
 * (channel_batch_rounds), so that every session's messages ended in one
 * round go out in one write. Nothing waits longer than that round: the
 * queue server acts on a message only at its END anyway.
 */
#include "smtpd/qclient.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "channel.h"
#include "inject_proto.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "queue.h"

#define QC_CHUNK (32u * 1024)
#define QC_HIGH_WATER (4u * 1024 * 1024)
#define QC_UNAVAILABLE "451 4.3.0 Error: queue server unavailable, try again later"

struct qtxn {
    struct qtxn *next;
    uint32_t txn;
    int ended;
    qclient_done_cb *done; /* NULL once forgotten */
    void *arg;
    struct buf data; /* content not yet sent */
    struct buf out;  /* its records not yet handed to the channel */
    int sent;        /* some were: an abort must be told */
};

struct qclient {
    struct channel *ch;
    struct qtxn *list;
    size_t pending, open;
    uint32_t next_txn;
    int congested;
    void (*on_down)(void *);
    void (*on_drain)(void *);
    void *arg;
};

static void unlink_txn(struct qclient *q, struct qtxn *t)
{
    for (struct qtxn **pp = &q->list; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    q->pending--;
    if (!t->ended)
        q->open--;
    buf_free(&t->data);
    buf_free(&t->out);
    free(t);
}

/* Hand t's records to the channel. */
static void send_txn(struct qclient *q, struct qtxn *t)
{
    if (t->out.len && q->ch) {
        t->sent = 1;
        if (channel_send_buf(q->ch, &t->out) == 0)
            q->congested = 1;
    }
    buf_clear(&t->out);
}

/* One record into t's buffer: type, txn, then up to three strings. */
static void add_simple(struct qtxn *t, uint16_t type, const char *a, const char *b, const char *c)
{
    struct ipc_writer w;
    ipc_begin(&w, &t->out, type);
    ipc_add_u32(&w, t->txn);
    if (a)
        ipc_add_str(&w, a);
    if (b)
        ipc_add_str(&w, b);
    if (c)
        ipc_add_str(&w, c);
    ipc_finish(&w);
}

static void add_data(struct qtxn *t)
{
    for (size_t off = 0; off < t->data.len; off += INJ_DATA_MAX) {
        size_t n = t->data.len - off < INJ_DATA_MAX ? t->data.len - off : INJ_DATA_MAX;
        struct ipc_writer w;
        ipc_begin(&w, &t->out, INJ_DATA);
        ipc_add_u32(&w, t->txn);
        ipc_add_bytes(&w, t->data.s + off, n);
        ipc_finish(&w);
    }
    buf_clear(&t->data);
}

/* ------------------------------------------------------------- replies ---- */
static struct qtxn *find_ended(struct qclient *q, uint32_t txn)
{
    for (struct qtxn *t = q->list; t; t = t->next)
        if (t->txn == txn && t->ended)
            return t;
    return NULL;
}

static int in_use(struct qclient *q, uint32_t txn)
{
    for (struct qtxn *t = q->list; t; t = t->next)
        if (t->txn == txn)
            return 1;
    return 0;
}

/* INJ_FAIL as an SMTP reply: the enhanced code's class picks 4xx or 5xx. */
static void fail_reply(struct buf *out, uint32_t status, const char *enhanced, const char *text)
{
    int temp = status == INJ_EX_TEMPFAIL || enhanced[0] == '4';
    int code = !temp ? (strncmp(enhanced, "5.3.4", 5) == 0 ? 552 : 554)
               : strncmp(enhanced, "4.3.1", 5) == 0 ? 452
                                                    : 451;
    buf_printf(out, "%d %s %s", code, enhanced[0] ? enhanced : (temp ? "4.3.0" : "5.3.0"), text);
}

static const char *on_record(void *arg, struct channel *ch, struct chan_record *rec)
{
    struct qclient *q = arg;
    struct ipc_reader rd;
    uint32_t txn = 0, status = 0;
    const char *id = NULL, *enhanced = NULL, *text = NULL;
    struct buf reply = BUF_INIT;
    (void)ch;
    if (ipc_open(&rd, rec->data, rec->len) != 0)
        return "malformed record from the queue server";
    int ok = rd.type == INJ_OK && ipc_get_u32(&rd, &txn) == 0 &&
             ipc_get_str(&rd, QUEUE_ID_LEN, &id) == 0 && ipc_end(&rd) == 0;
    int fail = !ok && rd.type == INJ_FAIL && ipc_get_u32(&rd, &txn) == 0 &&
               ipc_get_u32(&rd, &status) == 0 && ipc_get_str(&rd, 16, &enhanced) == 0 &&
               ipc_get_str(&rd, 1024, &text) == 0 && ipc_end(&rd) == 0;
    struct qtxn *t = ok || fail ? find_ended(q, txn) : NULL;
    if (t && t->done) {
        if (fail)
            fail_reply(&reply, status, enhanced, text);
        t->done(t->arg, ok ? id : NULL, ok ? NULL : buf_cstr(&reply));
    }
    if (t)
        unlink_txn(q, t);
    buf_free(&reply);
    ipc_close(&rd);
    return t ? NULL : "unexpected record from the queue server";
}

static void on_drain(void *arg, struct channel *ch)
{
    struct qclient *q = arg;
    (void)ch;
    q->congested = 0;
    if (q->on_drain)
        q->on_drain(q->arg);
}

/* The queue server is gone: nothing unanswered was committed for sure. */
static void on_close(void *arg, struct channel *ch, const char *reason)
{
    struct qclient *q = arg;
    (void)ch;
    log_error("queue server channel closed: %s", reason);
    q->ch = NULL;
    struct qtxn *t = q->list, *next;
    for (; t; t = next) { /* the open ones stay with their sessions until their end */
        next = t->next;
        if (t->ended) {
            if (t->done)
                t->done(t->arg, NULL, QC_UNAVAILABLE);
            unlink_txn(q, t);
        }
    }
    if (q->on_down)
        q->on_down(q->arg);
}

static const struct channel_ops ops = {on_record, on_drain, on_close};

/* ---------------------------------------------------------------- public ---- */
struct qclient *qclient_open(uv_loop_t *loop, int fd, void (*down)(void *), void (*drain)(void *),
                             void *arg)
{
    struct qclient *q = xcalloc(1, sizeof(*q));
    struct buf err = BUF_INIT;
    struct channel_opts opts = {"queue server", INJ_RECORD_MAX, 0, QC_HIGH_WATER, 0, 0};
    q->on_down = down;
    q->on_drain = drain;
    q->arg = arg;
    q->next_txn = 1;
    opts.hard_limit = 64u * QC_HIGH_WATER;
    q->ch = channel_open(loop, fd, &opts, &ops, q, &err);
    if (q->ch)
        channel_batch_rounds(q->ch); /* a round's messages in one write */
    else
        log_error("queue server channel: %s", buf_cstr(&err));
    buf_free(&err);
    return q;
}

void qclient_close(struct qclient *q)
{
    if (!q)
        return;
    channel_close(q->ch); /* what this round queued gets one write first */
    q->ch = NULL;
    while (q->list)
        unlink_txn(q, q->list);
    free(q);
}

int qclient_up(const struct qclient *q)
{
    return q && q->ch != NULL;
}

size_t qclient_pending(const struct qclient *q)
{
    return q ? q->pending : 0;
}

int qclient_congested(const struct qclient *q)
{
    return q && q->congested;
}

struct qtxn *qclient_begin(struct qclient *q, const char *sender, qclient_done_cb *done, void *arg)
{
    if (!qclient_up(q) || q->open >= INJ_TXN_MAX)
        return NULL;
    struct qtxn *t = xcalloc(1, sizeof(*t));
    do { /* a number not in use: answered ones may be reused */
        t->txn = q->next_txn++;
    } while (t->txn == 0 || in_use(q, t->txn));
    t->done = done;
    t->arg = arg;
    t->next = q->list;
    q->list = t;
    q->pending++;
    q->open++;
    add_simple(t, INJ_BEGIN, sender, NULL, NULL);
    return t;
}

void qclient_attr(struct qclient *q, struct qtxn *t, const char *name, const char *value)
{
    (void)q;
    add_simple(t, INJ_ATTR, name, value, NULL);
}

void qclient_rcpt(struct qclient *q, struct qtxn *t, const char *addr, const char *orcpt,
                  const char *notify)
{
    (void)q;
    add_simple(t, INJ_RCPT, addr, orcpt, notify);
}

void qclient_data(struct qclient *q, struct qtxn *t, const void *p, size_t n)
{
    if (!q->ch)
        return; /* it fails at its end */
    buf_add(&t->data, p, n);
    if (t->data.len >= QC_CHUNK) {
        add_data(t);
        send_txn(q, t);
    }
}

void qclient_end(struct qclient *q, struct qtxn *t)
{
    add_data(t);
    add_simple(t, INJ_END, NULL, NULL, NULL);
    send_txn(q, t);
    t->ended = 1;
    q->open--;
    if (!q->ch) { /* it closed while the message came in */
        if (t->done)
            t->done(t->arg, NULL, QC_UNAVAILABLE);
        unlink_txn(q, t);
    }
}

void qclient_abort(struct qclient *q, struct qtxn *t)
{
    if (!t->ended && t->sent) { /* else the server never heard of it */
        buf_clear(&t->out);
        add_simple(t, INJ_ABORT, NULL, NULL, NULL);
        send_txn(q, t);
    }
    unlink_txn(q, t);
}

void qclient_forget(struct qclient *q, struct qtxn *t)
{
    if (!t->ended)
        return qclient_abort(q, t);
    t->done = NULL;
}
