/*
 * inject_server — onehop-queue's server mode with GROUP COMMIT
 * (inject_proto.h "server mode").
 *
 * One poll(2) loop reads interleaved transactions from fd 0. A message whose
 * INJ_END arrived is "ready". The loop drains whatever input is there (up to
 * ROUND_BYTES), then writes every ready message as ONE queue file: one
 * write, one fdatasync, one rename, one directory fsync for all of them.
 * While that commit runs, new records wait in the pipe and in the writers'
 * own buffers and form the next batch, so the more concurrent writers, the
 * bigger the batch and the fewer fsyncs per message; a lone writer still
 * gets one commit per message with no added delay. Replies are queued only
 * after the batch's commit returned: no reply before the data is durable.
 * They go out as the reply stream accepts them (non-blocking when it is a
 * pipe or socket), so a writer that is slow to read its replies never stops
 * the input.
 *
 * No event library and no thread: the process has one input and one output,
 * and the commit is the only slow step, which batching already overlaps with
 * the writers. That keeps onehop-queue free of libuv, so it links statically
 * and starts in a tenth of a millisecond for sendmail's one-shot use
 * (docs/INTERNALS.md "Injection cost").
 *
 * Memory is bounded: a transaction's content is kept in memory up to
 * SPILL_BYTES (or while all transactions together hold less than
 * MEMORY_BYTES); beyond that it is streamed into a queue file of its own,
 * committed in the same round with its own fsync (large messages only).
 * Must never: reply before the commit, or crash on a hostile record (that
 * closes the channel).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channel_core.h"
#include "inject_proto.h"
#include "inject_server.h"
#include "inject_txn.h"
#include "log.h"
#include "mem.h"
#include "safeio.h"

#define SPILL_BYTES (256u * 1024)
#define MEMORY_BYTES (64u * 1024 * 1024)
#define ROUND_BYTES (4u * 1024 * 1024) /* input read before a commit is due */
#define POOL_BUFS 64                   /* content buffers kept for reuse */
#define POOL_BUF_CAP (64u * 1024)      /* larger ones are freed */

struct batch {
    struct server *sv;
    struct inj_txn **t;
    size_t n;
    char (*id)[QUEUE_ID_LEN + 1];
    int *err; /* errno of a failed commit, per message */
};

struct server {
    struct inj_ctx *cx;
    int out_fd;        /* fd 1, or fd 0 when both are one socket */
    int out_async;     /* out_fd is non-blocking (a pipe or socket) */
    struct buf out;    /* replies not yet written */
    struct chan_in in; /* framing of fd 0 (channel_core.h) */
    struct inj_txn **open;
    size_t nopen, open_cap;
    struct inj_txn **ready;
    size_t nready, ready_cap;
    uint64_t memory; /* content bytes held by transactions */
    int eof, fatal;
    int stopping; /* the master said STOP: end once nothing is open */
    /* Content buffers of released transactions, empty, for the next ones:
     * musl's allocator maps and unmaps a buffer's every growth step, which
     * cost two mmap/munmap pairs per message before. */
    struct buf pool[POOL_BUFS];
    size_t npool;
};

/* ---------------------------------------------------------------- replies ---- */
/* Write what the reply stream takes now; a blocking stream takes it all. A
 * peer that went away (EPIPE) gets nothing more: its messages are committed
 * all the same. */
static void flush_replies(struct server *sv)
{
    while (sv->out.len) {
        ssize_t n = write(sv->out_fd, sv->out.s, sv->out.len);
        if (n > 0) {
            buf_consume(&sv->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && sv->out_async)
            return;
        if (n < 0 && errno != EPIPE)
            log_warn("cannot write replies: %m");
        buf_clear(&sv->out);
    }
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
    if (t->data.s && t->data.cap <= POOL_BUF_CAP && sv->npool < POOL_BUFS) {
        buf_clear(&t->data);
        sv->pool[sv->npool++] = t->data;
        t->data = (struct buf)BUF_INIT;
    }
    inj_txn_free(t);
    free(t);
}

static void fail_now(struct server *sv, struct inj_txn *t)
{
    inj_reply_fail(&sv->out, t);
    flush_replies(sv);
    inj_log_reject(t);
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
    if (inj_txn_commit(b->t[i], b->id[i]) != 0)
        b->err[i] = errno;
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

static void batch_work(struct batch *b)
{
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

/* The batch's commit returned: answer, wake the router (the writer logged
 * each committed message's from= line). */
static void batch_done(struct batch *b)
{
    struct server *sv = b->sv;
    int any = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct inj_txn *t = b->t[i];
        if (b->err[i]) {
            size_t held = t->data.len;
            inj_txn_commit_failed(t, b->err[i]); /* may drop the content */
            sv->memory -= held - t->data.len;
            log_warn("commit failed: from=<%s>: %s", t->sender, buf_cstr(&t->why));
            inj_reply_fail(&sv->out, t);
        } else {
            inj_reply_ok(&sv->out, t->txn, b->id[i]);
            any = 1;
        }
        txn_release(sv, t);
    }
    flush_replies(sv);
    if (any)
        queue_trigger_pull(sv->cx->run_dir);
}

/* Commit every ready message now, as one batch. */
static void commit_ready(struct server *sv)
{
    if (sv->nready == 0)
        return;
    struct batch b = {
        .sv = sv,
        .t = sv->ready,
        .n = sv->nready,
        .id = xcalloc(sv->nready, sizeof(*b.id)),
        .err = xcalloc(sv->nready, sizeof(*b.err)),
    };
    sv->ready = NULL;
    sv->nready = sv->ready_cap = 0;
    batch_work(&b);
    batch_done(&b);
    free(b.t);
    free(b.id);
    free(b.err);
}

/* --------------------------------------------------------------- requests ---- */
/* Stop reading for good, so that a writer blocked on a full input pipe gets
 * EPIPE (or EOF on a socket) instead of waiting for ever: shut the socket's
 * reading side, or put /dev/null on fd 0 (never leave fd 0 free for a later
 * open to take). */
static void close_input(struct server *sv)
{
    if (sv->out_fd == 0) {
        shutdown(0, SHUT_RD);
        return;
    }
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) != 0)
        close(0); /* no /dev/null: closing is still better than a hang */
    if (null > 0)
        close(null);
}

static void protocol_error(struct server *sv, const char *why)
{
    if (sv->fatal)
        return;
    log_error("protocol error on input: %s: closing the channel", why);
    sv->fatal = 1;
    close_input(sv);
}

static void begin(struct server *sv, const struct inj_request *rq)
{
    if (find_open(sv, rq->txn, NULL))
        return protocol_error(sv, "INJ_BEGIN for a transaction already open");
    if (sv->nopen >= INJ_TXN_MAX)
        return protocol_error(sv, "too many open transactions");
    struct inj_txn *t = xmalloc(sizeof(*t));
    inj_txn_init(t, rq->txn, sv->cx->size_limit);
    if (sv->npool)
        t->data = sv->pool[--sv->npool];
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
    struct chan_record rec;
    int r = 0;
    while (!sv->fatal && (r = chan_in_pop(&sv->in, &rec)) == 1) {
        const char *why = NULL;
        struct ipc_reader rd;
        struct inj_request rq;
        if (inj_request_decode(&rd, rec.data, rec.len, &rq, &why) != 0)
            protocol_error(sv, why);
        else
            handle(sv, &rq);
        ipc_close(&rd);
    }
    if (r < 0)
        protocol_error(sv, sv->in.error);
}

/* -------------------------------------------------------------------- I/O ---- */
/* Read what fd 0 has now, up to ROUND_BYTES, and act on every whole record.
 * Stops at EAGAIN, end of input, or a protocol error. */
static void read_input(struct server *sv)
{
    size_t got = 0;
    while (!sv->eof && !sv->fatal && got < ROUND_BYTES) {
        ssize_t n = chan_in_read(&sv->in, 0, 0); /* EINTR retried */
        if (n > 0) {
            got += (size_t)n;
            process_input(sv);
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else if (n < 0 && errno == EPROTO) {
            protocol_error(sv, sv->in.error);
        } else {
            if (n < 0)
                log_warn("read error on input: %m");
            else if (chan_in_partial(&sv->in))
                log_warn("input ended inside a record");
            sv->eof = 1;
        }
    }
}

static int linked(const struct server *sv)
{
    return sv->cx->link && sv->cx->link->fd >= 0;
}

/* The master's records: STOP drains, a closed link ends the process (no
 * server runs on without its supervisor). */
static void read_link(struct server *sv)
{
    int type;
    while ((type = daemon_link_next(sv->cx->link)) > 0)
        if (type == DLINK_STOP)
            sv->stopping = 1;
    if (type < 0) {
        log_error("master link: %s: exiting", sv->cx->link->why);
        _exit(INJ_EX_SOFTWARE);
    }
}

/* Wait until the input has something or the reply stream takes more. */
static void wait_for_io(struct server *sv)
{
    struct pollfd p[3];
    nfds_t n = 0, link_at = 3;
    if (!sv->eof && !sv->fatal)
        p[n++] = (struct pollfd){.fd = 0, .events = POLLIN};
    if (sv->out.len && sv->out_async)
        p[n++] = (struct pollfd){.fd = sv->out_fd, .events = POLLOUT};
    if (linked(sv)) {
        link_at = n;
        p[n++] = (struct pollfd){.fd = sv->cx->link->fd, .events = POLLIN};
    }
    if (n && poll(p, n, -1) < 0 && errno != EINTR)
        log_fatal("poll: %m");
    if (link_at < n && p[link_at].revents)
        read_link(sv);
}

static int same_socket(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && S_ISSOCK(sa.st_mode) &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int is_stream(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

static int set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* fd 0 must be a pipe or socket; replies go back on it when it is a socket
 * that fd 1 shares, else on fd 1 (non-blocking only when a pipe or socket:
 * a terminal or file is written synchronously). */
static int open_streams(struct server *sv)
{
    struct stat st;
    if (!is_stream(0) || set_nonblocking(0) != 0)
        return -1;
    int socket0 = fstat(0, &st) == 0 && S_ISSOCK(st.st_mode);
    sv->out_fd = same_socket(0, 1) || (linked(sv) && socket0) ? 0 : 1;
    sv->out_async = sv->out_fd == 0 || (is_stream(1) && set_nonblocking(1) == 0);
    return 0;
}

/* Input over (EOF or protocol error), every ready message committed and
 * answered, every reply written. */
static int finished(const struct server *sv)
{
    int input_over = sv->eof || sv->fatal || (sv->stopping && sv->nopen == 0);
    return input_over && sv->nready == 0 && sv->out.len == 0;
}

int inject_server(struct inj_ctx *cx)
{
    struct server sv;
    memset(&sv, 0, sizeof(sv));
    sv.cx = cx;
    chan_in_init(&sv.in, INJ_RECORD_MAX, 0);
    if (!cx->q) {
        log_error("server mode: %s", cx->unavailable);
        if (linked(&sv))
            daemon_link_send(cx->link, DLINK_FAILED, cx->unavailable);
        return INJ_EX_TEMPFAIL;
    }
    if (open_streams(&sv) != 0) {
        log_error("server mode: fd 0 must be a pipe or a socket");
        if (linked(&sv))
            daemon_link_send(cx->link, DLINK_FAILED, "fd 0 must be a pipe or a socket");
        return INJ_EX_USAGE;
    }
    if (linked(&sv))
        daemon_link_ready(cx->link);
    while (!finished(&sv)) {
        read_input(&sv);
        commit_ready(&sv);
        flush_replies(&sv);
        if (!finished(&sv) && sv.nready == 0)
            wait_for_io(&sv);
    }
    for (size_t i = 0; i < sv.nopen; i++) /* the input ended inside them */
        txn_release(&sv, sv.open[i]);
    for (size_t i = 0; i < sv.npool; i++)
        buf_free(&sv.pool[i]);
    free(sv.open);
    free(sv.ready);
    chan_in_free(&sv.in);
    buf_free(&sv.out);
    return sv.fatal ? INJ_EX_SOFTWARE : INJ_EX_OK;
}
