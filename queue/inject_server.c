/*
 * inject_server — onehop-queue's server mode with GROUP COMMIT
 * (inject_proto.h "server mode").
 *
 * One libuv loop reads interleaved transactions from fd 0. A message whose
 * INJ_END arrived is "ready". When no commit is running, every ready message
 * goes into one batch, and a worker thread (uv_queue_work) writes the batch
 * as ONE queue file: one write, one fdatasync, one rename, one directory
 * fsync for all of them. Messages that become ready while it runs wait for
 * the next batch, so the more concurrent writers, the bigger the batch and
 * the fewer fsyncs per message; a lone writer still gets one commit per
 * message with no added delay. Replies are sent only from the after-work
 * callback, i.e. after the batch's commit returned: no reply before the
 * data is durable.
 *
 * Memory is bounded: a transaction's content is kept in memory up to
 * SPILL_BYTES (or while all transactions together hold less than
 * MEMORY_BYTES); beyond that it is streamed into a queue file of its own,
 * committed in the same round with its own fsync (large messages only).
 * Must never: reply before the commit, let the worker thread touch anything
 * but its batch, or crash on a hostile record (that closes the channel).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "inject_proto.h"
#include "inject_server.h"
#include "inject_txn.h"
#include "log.h"
#include "mem.h"
#include "safeio.h"

#define SPILL_BYTES (256u * 1024)
#define MEMORY_BYTES (64u * 1024 * 1024)

struct batch {
    uv_work_t req;
    struct server *sv;
    struct inj_txn **t;
    size_t n;
    char (*id)[QUEUE_ID_LEN + 1];
    int *err; /* errno of a failed commit, per message */
};

struct server {
    struct inj_ctx *cx;
    uv_loop_t *loop;
    uv_pipe_t in, out;
    uv_stream_t *reply_stream; /* NULL: fd 1 is not a pipe, write synchronously */
    struct inj_reader rr;      /* framing state (rr.fd unused here) */
    struct inj_txn **open;
    size_t nopen, open_cap;
    struct inj_txn **ready;
    size_t nready, ready_cap;
    struct batch *running;
    uint64_t memory; /* content bytes held by transactions */
    unsigned pending_writes;
    int eof, fatal, closing;
};

struct write_req {
    uv_write_t req;
    struct server *sv;
    struct buf data;
};

static void maybe_finish(struct server *sv);

/* ---------------------------------------------------------------- replies ---- */
static void on_written(uv_write_t *req, int status)
{
    struct write_req *wr = req->data;
    struct server *sv = wr->sv;
    if (status < 0 && status != UV_EPIPE && status != UV_ECANCELED)
        log_warn("cannot write replies: %s", uv_strerror(status));
    buf_free(&wr->data);
    free(wr);
    sv->pending_writes--;
    maybe_finish(sv);
}

static void send_replies(struct server *sv, struct buf *replies)
{
    if (replies->len == 0)
        return;
    if (!sv->reply_stream) {
        if (write_all(1, replies->s, replies->len) != 0 && errno != EPIPE)
            log_warn("cannot write replies: %m");
        buf_clear(replies);
        return;
    }
    struct write_req *wr = xcalloc(1, sizeof(*wr));
    wr->sv = sv;
    wr->data = *replies;
    *replies = (struct buf)BUF_INIT;
    wr->req.data = wr;
    uv_buf_t b = uv_buf_init(wr->data.s, (unsigned)wr->data.len);
    if (uv_write(&wr->req, sv->reply_stream, &b, 1, on_written) != 0) {
        buf_free(&wr->data);
        free(wr);
        return;
    }
    sv->pending_writes++;
}

/* ------------------------------------------------------------ transactions ---- */
static struct inj_txn **find_open(struct server *sv, uint32_t txn, size_t *at)
{
    for (size_t i = 0; i < sv->nopen; i++) {
        if (sv->open[i]->txn == txn) {
            if (at)
                *at = i;
            return &sv->open[i];
        }
    }
    return NULL;
}

static void remove_open(struct server *sv, size_t at)
{
    sv->open[at] = sv->open[--sv->nopen];
}

static void txn_release(struct server *sv, struct inj_txn *t)
{
    sv->memory -= t->data.len;
    inj_txn_free(t);
    free(t);
}

static void fail_now(struct server *sv, struct inj_txn *t)
{
    struct buf reply = BUF_INIT;
    inj_reply_fail(&reply, t);
    send_replies(sv, &reply);
    buf_free(&reply);
    log_info("reject: from=<%s>, nrcpt=%zu: %s %s", t->sender ? t->sender : "", t->nrcpt,
             t->enhanced ? t->enhanced : "", buf_cstr(&t->why));
    txn_release(sv, t);
}

/* Content of t grew: keep it in memory or stream it to its own file. */
static void account_data(struct server *sv, struct inj_txn *t, size_t before)
{
    sv->memory = sv->memory - before + t->data.len;
    if (t->w || inj_txn_failed(t))
        return;
    if (t->data.len > SPILL_BYTES || sv->memory > MEMORY_BYTES) {
        size_t held = t->data.len;
        inj_txn_spill(t, sv->cx->q);
        sv->memory = sv->memory - held + t->data.len;
    }
}

/* -------------------------------------------------------------- the worker ---- */
/* Commit a message that has a file of its own. */
static void commit_own(struct batch *b, size_t i)
{
    struct inj_txn *t = b->t[i];
    struct queue_envelope env;
    char fid[QUEUE_FILE_ID_LEN + 1];
    unsigned index;
    inj_txn_envelope(t, &env);
    struct queue_writer *w = t->w;
    t->w = NULL;
    if (queue_writer_end_msg(w, &env, &index) != 0) {
        b->err[i] = errno;
        queue_writer_abort(w);
    } else if (queue_writer_commit(w, fid) != 0) {
        b->err[i] = errno;
    } else {
        queue_msg_id(fid, index, b->id[i]);
    }
}

/* Commit members[0..n) (in-memory messages) as one file. */
static void commit_shared(struct batch *b, const size_t *members, size_t n)
{
    struct queue_writer *w;
    char fid[QUEUE_FILE_ID_LEN + 1];
    unsigned *index = xcalloc(n, sizeof(*index));
    int e = 0;
    if (queue_writer_begin(b->sv->cx->q, &w) != 0) {
        e = errno;
    } else {
        for (size_t k = 0; k < n && !e; k++) {
            struct inj_txn *t = b->t[members[k]];
            struct queue_envelope env;
            inj_txn_envelope(t, &env);
            if (queue_writer_data(w, t->data.s, t->data.len) != 0 ||
                queue_writer_end_msg(w, &env, &index[k]) != 0)
                e = errno;
        }
        if (e)
            queue_writer_abort(w);
        else if (queue_writer_commit(w, fid) != 0)
            e = errno;
    }
    for (size_t k = 0; k < n; k++) {
        if (e)
            b->err[members[k]] = e;
        else
            queue_msg_id(fid, index[k], b->id[members[k]]);
    }
    free(index);
}

static void batch_work(uv_work_t *req)
{
    struct batch *b = req->data;
    size_t *members = xcalloc(b->n, sizeof(*members));
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->t[i]->w) {
            commit_own(b, i);
            continue;
        }
        members[n++] = i;
        if (n == QUEUE_FILE_MSGS_MAX) {
            commit_shared(b, members, n);
            n = 0;
        }
    }
    if (n)
        commit_shared(b, members, n);
    free(members);
}

static void maybe_commit(struct server *sv);

static void batch_done(uv_work_t *req, int status)
{
    struct batch *b = req->data;
    struct server *sv = b->sv;
    struct buf replies = BUF_INIT;
    int any = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct inj_txn *t = b->t[i];
        if (status != 0 && !b->err[i] && !b->id[i][0])
            b->err[i] = EIO;
        if (b->err[i]) {
            inj_txn_commit_failed(t, b->err[i]);
            log_warn("commit failed: from=<%s>: %s", t->sender, buf_cstr(&t->why));
            inj_reply_fail(&replies, t);
        } else {
            inj_log_queued(b->id[i], t);
            inj_reply_ok(&replies, t->txn, b->id[i]);
            any = 1;
        }
        txn_release(sv, t);
    }
    send_replies(sv, &replies);
    buf_free(&replies);
    if (any)
        queue_trigger_pull(sv->cx->run_dir);
    free(b->t);
    free(b->id);
    free(b->err);
    free(b);
    sv->running = NULL;
    maybe_commit(sv);
    maybe_finish(sv);
}

static void maybe_commit(struct server *sv)
{
    if (sv->running || sv->nready == 0)
        return;
    struct batch *b = xcalloc(1, sizeof(*b));
    b->sv = sv;
    b->t = sv->ready;
    b->n = sv->nready;
    b->id = xcalloc(b->n, sizeof(*b->id));
    b->err = xcalloc(b->n, sizeof(*b->err));
    b->req.data = b;
    sv->ready = NULL;
    sv->nready = sv->ready_cap = 0;
    sv->running = b;
    int r = uv_queue_work(sv->loop, &b->req, batch_work, batch_done);
    if (r != 0)
        log_fatal("cannot start a commit: %s", uv_strerror(r));
}

/* --------------------------------------------------------------- requests ---- */
static void protocol_error(struct server *sv, const char *why)
{
    if (sv->fatal)
        return;
    log_error("protocol error on input: %s: closing the channel", why);
    sv->fatal = 1;
    uv_read_stop((uv_stream_t *)&sv->in);
}

static void begin(struct server *sv, const struct inj_request *rq)
{
    if (find_open(sv, rq->txn, NULL))
        return protocol_error(sv, "INJ_BEGIN for a transaction already open");
    if (sv->nopen >= INJ_TXN_MAX)
        return protocol_error(sv, "too many open transactions");
    struct inj_txn *t = xmalloc(sizeof(*t));
    inj_txn_init(t, rq->txn, sv->cx->size_limit);
    inj_txn_sender(t, rq->s1);
    sv->open = xgrow(sv->open, &sv->open_cap, sv->nopen + 1, sizeof(*sv->open));
    sv->open[sv->nopen++] = t;
}

static void end(struct server *sv, struct inj_txn *t, size_t at)
{
    size_t before = t->data.len;
    remove_open(sv, at);
    inj_txn_end(t);
    account_data(sv, t, before);
    if (inj_txn_failed(t))
        return fail_now(sv, t);
    sv->ready = xgrow(sv->ready, &sv->ready_cap, sv->nready + 1, sizeof(*sv->ready));
    sv->ready[sv->nready++] = t;
    maybe_commit(sv);
}

static void handle(struct server *sv, const struct inj_request *rq)
{
    if (rq->type == INJ_BEGIN)
        return begin(sv, rq);
    size_t at;
    struct inj_txn **slot = find_open(sv, rq->txn, &at);
    if (!slot)
        return protocol_error(sv, "record for a transaction that is not open");
    struct inj_txn *t = *slot;
    size_t before = t->data.len;
    switch (rq->type) {
    case INJ_ATTR:
        inj_txn_attr(t, rq->s1, rq->s2, 0);
        return account_data(sv, t, before); /* a failure drops the content */
    case INJ_RCPT:
        inj_txn_rcpt(t, rq->s1, rq->s2, rq->s3);
        return account_data(sv, t, before);
    case INJ_DATA:
        inj_txn_data(t, rq->data, rq->n);
        return account_data(sv, t, before);
    case INJ_ABORT:
        remove_open(sv, at);
        return txn_release(sv, t);
    default: /* INJ_END */
        return end(sv, t, at);
    }
}

static void process_input(struct server *sv)
{
    struct inj_reader *rr = &sv->rr;
    while (!sv->fatal) {
        size_t reclen;
        const char *why = NULL;
        int r = ipc_frame(rr->in.s + rr->off, rr->in.len - rr->off, INJ_RECORD_MAX, &reclen, &why);
        if (r < 0)
            return protocol_error(sv, why);
        if (r == 0)
            break;
        struct ipc_reader rd;
        struct inj_request rq;
        if (inj_request_decode(&rd, rr->in.s + rr->off, reclen, &rq, &why) != 0)
            protocol_error(sv, why);
        else
            handle(sv, &rq);
        ipc_close(&rd);
        rr->off += reclen;
    }
    buf_consume(&rr->in, rr->off);
    rr->off = 0;
}

/* -------------------------------------------------------------------- I/O ---- */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct server *sv = h->data;
    (void)suggested;
    buf_reserve(&sv->rr.in, 65536);
    *b = uv_buf_init(sv->rr.in.s + sv->rr.in.len, (unsigned)(sv->rr.in.cap - sv->rr.in.len - 1));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct server *sv = s->data;
    (void)b;
    if (n > 0) {
        sv->rr.in.len += (size_t)n;
        process_input(sv);
    } else if (n < 0) {
        if (n != UV_EOF)
            log_warn("read error on input: %s", uv_strerror((int)n));
        else if (sv->rr.in.len)
            log_warn("input ended inside a record");
        sv->eof = 1;
        uv_read_stop(s);
    }
    maybe_finish(sv);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

/* Input over (EOF or protocol error), every ready message committed and
 * answered, every reply written: drop open transactions and stop. */
static void maybe_finish(struct server *sv)
{
    if (sv->closing || !(sv->eof || sv->fatal) || sv->running || sv->nready || sv->pending_writes)
        return;
    sv->closing = 1;
    for (size_t i = 0; i < sv->nopen; i++)
        txn_release(sv, sv->open[i]);
    sv->nopen = 0;
    uv_close((uv_handle_t *)&sv->in, on_closed);
    if (sv->reply_stream == (uv_stream_t *)&sv->out)
        uv_close((uv_handle_t *)&sv->out, on_closed);
}

static int same_socket(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && S_ISSOCK(sa.st_mode) &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int open_streams(struct server *sv)
{
    if (uv_pipe_init(sv->loop, &sv->in, 0) != 0 || uv_pipe_open(&sv->in, 0) != 0)
        return -1;
    sv->in.data = sv;
    if (same_socket(0, 1)) {
        sv->reply_stream = (uv_stream_t *)&sv->in;
    } else if (uv_guess_handle(1) == UV_NAMED_PIPE) {
        if (uv_pipe_init(sv->loop, &sv->out, 0) != 0 || uv_pipe_open(&sv->out, 1) != 0)
            return -1;
        sv->out.data = sv;
        sv->reply_stream = (uv_stream_t *)&sv->out;
    }
    return uv_read_start((uv_stream_t *)&sv->in, on_alloc, on_read) == 0 ? 0 : -1;
}

int inject_server(struct inj_ctx *cx)
{
    struct server sv;
    memset(&sv, 0, sizeof(sv));
    sv.cx = cx;
    if (!cx->q) {
        log_error("server mode: %s", cx->unavailable);
        return INJ_EX_TEMPFAIL;
    }
    sv.loop = uv_default_loop();
    if (open_streams(&sv) != 0) {
        log_error("server mode: fd 0 must be a pipe or a socket");
        return INJ_EX_USAGE;
    }
    uv_run(sv.loop, UV_RUN_DEFAULT);
    uv_loop_close(sv.loop);
    free(sv.open);
    free(sv.ready);
    buf_free(&sv.rr.in);
    return sv.fatal ? INJ_EX_SOFTWARE : INJ_EX_OK;
}
