/*
 * bs — sendmail -bs on standard input/output. See bs.h.
 */
#include "smtpd/bs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "channel_core.h"
#include "diag.h"
#include "inject_proto.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "routing.h"
#include "safeio.h"
#include "smtpd/received.h"
#include "smtpd/relay.h"
#include "smtpd/smtp_proto.h"

#define TXN 1

extern char **environ;

struct bs {
    struct conf *conf;
    struct routing routing;
    struct relay_policy relay;
    struct smtp_proto p;
    pid_t child;
    int to_fd, from_fd; /* the one-shot onehop-queue's fd 0 and fd 1 */
    struct buf data;    /* content not yet written */
    int broken;         /* a write to the child failed */
};

/* ---------------------------------------------------------- the child ---- */
static int spawn_queue(struct bs *b)
{
    int in[2], out[2];
    struct buf path = BUF_INIT;
    if (pipe2(in, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    path_join(&path, b->conf->daemon_dir, "onehop-queue");
    const char *argv[] = {"onehop-queue", "-C", b->conf->config_dir, NULL};
    int e = posix_spawn(&b->child, buf_cstr(&path), &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (e != 0) {
        log_warn("cannot run %s: %s", buf_cstr(&path), strerror(e));
        close(in[1]);
        close(out[0]);
        buf_free(&path);
        return -1;
    }
    buf_free(&path);
    b->to_fd = in[1];
    b->from_fd = out[0];
    return 0;
}

static void send_rec(struct bs *b, struct buf *rec)
{
    if (!b->broken && write_all(b->to_fd, rec->s, rec->len) != 0)
        b->broken = 1;
    buf_clear(rec);
}

static void send_strs(struct bs *b, uint16_t type, const char *s1, const char *s2, const char *s3)
{
    struct buf rec = BUF_INIT;
    struct ipc_writer w;
    ipc_begin(&w, &rec, type);
    ipc_add_u32(&w, TXN);
    if (s1)
        ipc_add_str(&w, s1);
    if (s2)
        ipc_add_str(&w, s2);
    if (s3)
        ipc_add_str(&w, s3);
    ipc_finish(&w);
    send_rec(b, &rec);
    buf_free(&rec);
}

static void flush_data(struct bs *b)
{
    struct buf rec = BUF_INIT;
    for (size_t off = 0; off < b->data.len; off += INJ_DATA_MAX) {
        size_t n = b->data.len - off < INJ_DATA_MAX ? b->data.len - off : INJ_DATA_MAX;
        struct ipc_writer w;
        ipc_begin(&w, &rec, INJ_DATA);
        ipc_add_u32(&w, TXN);
        ipc_add_bytes(&w, b->data.s + off, n);
        ipc_finish(&w);
        send_rec(b, &rec);
    }
    buf_clear(&b->data);
    buf_free(&rec);
}

/* Close the pipes and reap the child. */
static int end_child(struct bs *b)
{
    int status = 0;
    if (b->to_fd >= 0)
        close(b->to_fd);
    if (b->from_fd >= 0)
        close(b->from_fd);
    b->to_fd = b->from_fd = -1;
    while (b->child > 0 && waitpid(b->child, &status, 0) < 0 && errno == EINTR)
        ;
    b->child = 0;
    return status;
}

/* The reply record as an SMTP reply line. */
static void read_outcome(struct bs *b, struct buf *line)
{
    struct buf rec = BUF_INIT;
    const char *why = NULL, *id = NULL, *enh = NULL, *text = NULL;
    uint32_t txn = 0, status = 0;
    struct ipc_reader rd;
    int got = chan_recv_record(b->from_fd, INJ_RECORD_MAX, 0, -1, &rec, NULL, NULL, &why) == 1 &&
              ipc_open(&rd, rec.s, rec.len) == 0;
    if (got && rd.type == INJ_OK && ipc_get_u32(&rd, &txn) == 0 &&
        ipc_get_str(&rd, QUEUE_ID_LEN, &id) == 0 && ipc_end(&rd) == 0) {
        buf_printf(line, "250 2.0.0 Ok: queued as %s", id);
    } else if (got && rd.type == INJ_FAIL && ipc_get_u32(&rd, &txn) == 0 &&
               ipc_get_u32(&rd, &status) == 0 && ipc_get_str(&rd, 16, &enh) == 0 &&
               ipc_get_str(&rd, 1024, &text) == 0 && ipc_end(&rd) == 0) {
        int temp = status == INJ_EX_TEMPFAIL || enh[0] == '4';
        int code = !temp                           ? (strncmp(enh, "5.3.4", 5) == 0 ? 552 : 554)
                   : strncmp(enh, "4.3.1", 5) == 0 ? 452
                                                   : 451;
        buf_printf(line, "%d %s %s", code, enh[0] ? enh : "4.3.0", text);
    } else {
        buf_sets(line, "451 4.3.0 Error: the queue gave no answer, try again later");
    }
    if (got)
        ipc_close(&rd);
    int status_code = end_child(b);
    if (line->s[0] == '2' && !(WIFEXITED(status_code) && WEXITSTATUS(status_code) == 0)) {
        buf_clear(line); /* an OK from a process that then failed is no success */
        buf_sets(line, "451 4.3.0 Error: the queue failed, try again later");
    }
    buf_free(&rec);
}

/* -------------------------------------------------------------- hooks ---- */
static int hook_rcpt(void *arg, struct smtp_proto *p, const char *addr, struct buf *reply)
{
    struct bs *b = arg;
    (void)p;
    return relay_check(&b->relay, NULL, addr, reply);
}

static int hook_data_begin(void *arg, struct smtp_proto *p, struct buf *reply)
{
    struct bs *b = arg;
    const struct smtp_txn *t = &p->txn;
    if (spawn_queue(b) != 0) {
        buf_sets(reply, "451 4.3.0 Error: cannot run onehop-queue, try again later");
        return -1;
    }
    b->broken = 0;
    send_strs(b, INJ_BEGIN, buf_cstr(&p->txn.sender), NULL, NULL);
    send_strs(b, INJ_ATTR, "helo", buf_cstr(&p->helo), NULL);
    send_strs(b, INJ_ATTR, "protocol", smtp_proto_protocol(p), NULL);
    if (t->envid)
        send_strs(b, INJ_ATTR, "envid", t->envid, NULL);
    if (t->ret)
        send_strs(b, INJ_ATTR, "ret", t->ret, NULL);
    for (size_t i = 0; i < t->nrcpt; i++)
        send_strs(b, INJ_RCPT, t->rcpt[i], t->orcpt[i], t->notify[i]);
    struct received_info ri = {
        buf_cstr(&p->helo),
        "unknown",
        NULL,
        b->conf->myhostname,
        smtp_proto_protocol(p),
        NULL,
        t->nrcpt == 1 ? t->rcpt[0] : NULL,
        time(NULL),
    };
    received_header(&b->data, &ri);
    return 0;
}

static void hook_data(void *arg, const char *s, size_t n)
{
    struct bs *b = arg;
    buf_add(&b->data, s, n);
    if (b->data.len >= INJ_DATA_MAX)
        flush_data(b);
}

static void hook_data_end(void *arg)
{
    struct bs *b = arg;
    struct buf line = BUF_INIT;
    flush_data(b);
    send_strs(b, INJ_END, NULL, NULL, NULL);
    close(b->to_fd);
    b->to_fd = -1;
    read_outcome(b, &line);
    smtp_proto_data_result(&b->p, buf_cstr(&line));
    buf_free(&line);
}

static void hook_data_abort(void *arg)
{
    struct bs *b = arg;
    buf_clear(&b->data);
    if (b->child > 0) { /* no END: the one-shot exits 75, nothing queued */
        close(b->to_fd);
        b->to_fd = -1;
        end_child(b);
    }
}

static const struct smtp_hooks bs_hooks = {
    NULL, hook_rcpt, hook_data_begin, hook_data, hook_data_end, hook_data_abort, NULL, NULL,
};

/* ---------------------------------------------------------------- loop ---- */
static void write_out(struct bs *b)
{
    if (b->p.out.len && write_all(1, b->p.out.s, b->p.out.len) != 0)
        b->p.closing = 1;
    buf_clear(&b->p.out);
}

int bs_main(struct conf *c, const char *confdir)
{
    struct bs b;
    struct diag dg = DIAG_INIT;
    (void)confdir;
    memset(&b, 0, sizeof(b));
    b.conf = c;
    b.to_fd = b.from_fd = -1;
    signal(SIGPIPE, SIG_IGN);
    if (routing_load(&b.routing, c, &dg) < 0) {
        diag_print(&dg, stderr);
        diag_free(&dg);
        conf_free(c);
        return 75;
    }
    diag_free(&dg);
    b.routing.conf = c;
    relay_init(&b.relay, c, &b.routing);
    struct smtp_proto_cfg cfg = {
        c->myhostname,
        c->message_size_limit,
        (unsigned)c->smtpd_max_recipients,
        c->smtpd_bare_newline == BARE_NEWLINE_REJECT,
        0,
        0,
    };
    smtp_proto_init(&b.p, &cfg, &bs_hooks, &b);
    smtp_proto_greeting(&b.p);
    write_out(&b);
    char chunk[16384];
    while (!b.p.closing) {
        ssize_t n = read(0, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        smtp_proto_input(&b.p, chunk, (size_t)n);
        write_out(&b);
    }
    if (b.child > 0)
        hook_data_abort(&b);
    smtp_proto_free(&b.p);
    buf_free(&b.data);
    relay_free(&b.relay);
    routing_free(&b.routing);
    conf_free(c);
    return 0;
}
