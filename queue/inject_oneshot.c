/*
 * inject_oneshot — onehop-queue's one-shot mode (inject_proto.h): exactly
 * one transaction read from fd 0, its content streamed straight into a new
 * queue file, committed at INJ_END; the reply record goes to fd 1, the exit
 * status tells the caller what happened.
 *
 * A permanent or temporary failure does not stop the reading: the input is
 * drained to INJ_END so the caller never meets EPIPE, then the failure is
 * answered. Nothing is ever left half-written: the tmp file is removed on
 * every failure (and by recovery if we are killed).
 * Must never: exit 0 unless the commit returned success.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "channel_core.h"
#include "inject_proto.h"
#include "inject_server.h"
#include "inject_txn.h"
#include "log.h"
#include "safeio.h"

/* The next whole record of fd 0 (channel_core's framing): 1 and *rec; 0 when
 * the input ended (cleanly or inside a record); -1 with *why when the
 * framing is bad. *rec is valid until the next call. */
static int next_record(struct chan_in *in, struct chan_record *rec, const char **why)
{
    for (;;) {
        int r = chan_in_pop(in, rec);
        if (r != 0) {
            *why = in->error;
            return r;
        }
        ssize_t n = chan_in_read(in, 0, 0); /* EINTR retried */
        if (n < 0 && errno == EPROTO) {
            *why = in->error;
            return -1;
        }
        if (n <= 0)
            return 0;
    }
}

static void on_alarm(int sig)
{
    (void)sig;
    _exit(INJ_EX_TEMPFAIL); /* the tmp file is left to recovery (no lock) */
}

static void send_reply(const struct buf *reply)
{
    if (write_all(1, reply->s, reply->len) != 0 && errno != EPIPE && errno != EBADF)
        log_warn("cannot write the reply: %m");
}

static int finish_failed(const struct inj_txn *t)
{
    struct buf reply = BUF_INIT;
    inj_reply_fail(&reply, t);
    send_reply(&reply);
    buf_free(&reply);
    fprintf(stderr, "onehop-queue: %s %s\n", t->enhanced ? t->enhanced : "",
            buf_cstr((struct buf *)&t->why));
    inj_log_reject(t);
    return t->status;
}

/* INJ_END of a sound transaction: commit, then wake the router and answer
 * (the commit logged the from= line). */
static int commit(struct inj_ctx *cx, struct inj_txn *t)
{
    char id[QUEUE_ID_LEN + 1];
    if (inj_txn_commit(t, id) != 0) {
        inj_txn_commit_failed(t, errno);
        return finish_failed(t);
    }
    queue_trigger_pull(cx->run_dir);
    struct buf reply = BUF_INIT;
    inj_reply_ok(&reply, t->txn, id);
    send_reply(&reply);
    buf_free(&reply);
    return INJ_EX_OK;
}

static void start(struct inj_ctx *cx, struct inj_txn *t, const struct inj_request *rq)
{
    char uid[32];
    inj_txn_init(t, rq->txn, cx->size_limit);
    inj_txn_sender(t, rq->s1);
    snprintf(uid, sizeof(uid), "%lu", (unsigned long)cx->uid);
    inj_txn_attr(t, "uid", uid, 1);
    if (!cx->q)
        inj_txn_fail(t, INJ_EX_TEMPFAIL, "4.3.0", "%s", cx->unavailable);
    else
        inj_txn_spill(t, cx->q); /* one-shot content streams to its file */
}

static int protocol_error(const char *why)
{
    log_error("protocol error on input: %s", why);
    fprintf(stderr, "onehop-queue: protocol error on input: %s\n", why);
    return INJ_EX_SOFTWARE;
}

/* Apply one request; returns -1 to go on, or the exit status. */
static int handle(struct inj_ctx *cx, struct inj_txn *t, int *begun, const struct inj_request *rq)
{
    if (!*begun) {
        if (rq->type != INJ_BEGIN)
            return protocol_error("first record is not INJ_BEGIN");
        start(cx, t, rq);
        *begun = 1;
        return -1;
    }
    if (rq->txn != t->txn || rq->type == INJ_BEGIN)
        return protocol_error("a second transaction in one-shot mode");
    switch (rq->type) {
    case INJ_ATTR:
        inj_txn_attr(t, rq->s1, rq->s2, 0);
        return -1;
    case INJ_RCPT:
        inj_txn_rcpt(t, rq->s1, rq->s2, rq->s3);
        return -1;
    case INJ_DATA:
        inj_txn_data(t, rq->data, rq->n);
        return -1;
    case INJ_ABORT:
        return INJ_EX_TEMPFAIL;
    default: /* INJ_END */
        /* The input is complete: the timeout guards a stalled caller, never
         * the commit (firing after the commit point would report a failure
         * for a message that is queued). */
        alarm(0);
        inj_txn_end(t);
        return inj_txn_failed(t) ? finish_failed(t) : commit(cx, t);
    }
}

int inject_oneshot(struct inj_ctx *cx)
{
    struct chan_in in;
    struct inj_txn t;
    int begun = 0, status = -1;
    signal(SIGALRM, on_alarm);
    alarm(INJ_ONESHOT_TIMEOUT);
    chan_in_init(&in, INJ_RECORD_MAX, 0);
    while (status < 0) {
        const char *why = NULL;
        struct chan_record rec;
        struct inj_request rq;
        struct ipc_reader r;
        int got = next_record(&in, &rec, &why);
        if (got == 0) {
            fprintf(stderr, "onehop-queue: input ended before the end of the message: "
                            "nothing queued\n");
            status = INJ_EX_TEMPFAIL;
        } else if (got < 0) {
            status = protocol_error(why);
        } else if (inj_request_decode(&r, rec.data, rec.len, &rq, &why) != 0) {
            status = protocol_error(why);
            ipc_close(&r);
        } else {
            status = handle(cx, &t, &begun, &rq);
            ipc_close(&r);
        }
    }
    if (begun)
        inj_txn_free(&t);
    chan_in_free(&in);
    return status;
}
