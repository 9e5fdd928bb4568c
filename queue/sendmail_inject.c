/*
 * sendmail_inject — the one-shot hand-over of a prepared message to
 * onehop-queue, the only writer of new queue files (inject_proto.h), in one
 * of two ways:
 *
 *   exec   (the common case: sendmail has nothing left to do once the
 *          message is committed) the whole transaction, BEGIN, RCPT...,
 *          DATA..., END, is written to a memfd, which becomes fd 0; fd 1
 *          becomes /dev/null; and sendmail execve()s
 *          DAEMON_DIR/onehop-queue -C CONFIG_DIR. onehop-queue's exit status
 *          is sendmail's, and it prints its own reasons on standard error.
 *          One process start and no waiting process: a one-shot injection
 *          costs one start of sendmail and one exec of onehop-queue
 *          (docs/INTERNALS.md "Injection cost").
 *   spawn  (-v, which reports the queue id afterwards, or no memfd): spawn
 *          onehop-queue with two pipes, stream the records, read the single
 *          OK/FAIL reply, reap the process.
 *
 * Also runs the `onehop` admin command for -q (flush) and newaliases
 * (reload): sendmail_run_onehop().
 *
 * Exit codes (SPEC 2): an OK reply from a process that exited 0 is the only
 * success; a FAIL reply keeps its permanent/temporary class; anything else
 * (no reply, a crash, a program that cannot be run) is temporary, since
 * nothing was committed and the caller may retry. Must never: report
 * success without an INJ_OK, or wait forever on a dead child (its pipe end
 * closes and the reads see EOF).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "channel_core.h"
#include "inject_proto.h"
#include "ipc.h"
#include "safeio.h"
#include "sendmail.h"

#define TXN 1
#define SEND_BATCH (256u * 1024) /* bytes of records written at once */

extern char **environ;

struct child {
    pid_t pid;
    int to_fd;   /* its fd 0 */
    int from_fd; /* its fd 1 */
};

static int spawn_queue_writer(const char *path, const char *confdir, struct child *ch)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return errno;
    if (pipe2(out, O_CLOEXEC) != 0) {
        int e = errno;
        close(in[0]);
        close(in[1]);
        return e;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    char *const argv[] = {(char *)"onehop-queue", (char *)"-C", (char *)confdir, NULL};
    int rc = posix_spawn(&ch->pid, path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        return rc;
    }
    ch->to_fd = in[1];
    ch->from_fd = out[0];
    return 0;
}

/* Write out and empty the batch; 0, or -1 when the child stopped reading. */
static int flush_batch(int fd, struct buf *batch)
{
    int rc = chan_send_record(fd, batch->s, batch->len, NULL, 0, -1);
    buf_clear(batch);
    return rc;
}

static void add_envelope(struct buf *out, const struct prepared_message *m, const char *notify)
{
    struct ipc_writer w;
    ipc_begin(&w, out, INJ_BEGIN);
    ipc_add_u32(&w, TXN);
    ipc_add_str(&w, m->sender);
    ipc_finish(&w);
    ipc_begin(&w, out, INJ_ATTR); /* a local submission: its pickup line (queue_place.c) */
    ipc_add_u32(&w, TXN);
    ipc_add_str(&w, "protocol");
    ipc_add_str(&w, "sendmail");
    ipc_finish(&w);
    for (size_t k = 0; k < m->rcpt.n; k++) {
        ipc_begin(&w, out, INJ_RCPT);
        ipc_add_u32(&w, TXN);
        ipc_add_str(&w, m->rcpt.v[k]);
        ipc_add_str(&w, "");
        ipc_add_str(&w, notify);
        ipc_finish(&w);
    }
}

/* Every record of the transaction to fd; stops early (returns -1) if the
 * child closes its end, so that its reply or exit status can tell why. */
static int send_message(int fd, const struct prepared_message *m, const char *notify)
{
    const size_t chunk = (size_t)(INJ_DATA_MAX);
    struct buf batch = BUF_INIT;
    struct ipc_writer w;
    int rc = 0;
    add_envelope(&batch, m, notify);
    for (size_t off = 0; rc == 0 && off < m->content.len; off += chunk) {
        size_t n = m->content.len - off < chunk ? m->content.len - off : chunk;
        ipc_begin(&w, &batch, INJ_DATA);
        ipc_add_u32(&w, TXN);
        ipc_add_bytes(&w, m->content.s + off, n);
        ipc_finish(&w);
        if (batch.len >= (size_t)SEND_BATCH)
            rc = flush_batch(fd, &batch);
    }
    if (rc == 0) {
        ipc_begin(&w, &batch, INJ_END);
        ipc_add_u32(&w, TXN);
        ipc_finish(&w);
        rc = flush_batch(fd, &batch);
    }
    buf_free(&batch);
    return rc;
}

struct reply {
    int got;         /* 1 when a well-formed reply arrived */
    int ok;          /* INJ_OK */
    uint32_t status; /* INJ_FAIL status */
    char id[QUEUE_ID_LEN + 1];
};

static void parse_reply(const struct buf *rec, struct reply *r)
{
    struct ipc_reader rd;
    uint32_t txn = 0, status = 0;
    const char *id = NULL, *enhanced = NULL, *text = NULL;
    if (ipc_open(&rd, rec->s, rec->len) != 0)
        return;
    if (rd.type == INJ_OK && ipc_get_u32(&rd, &txn) == 0 &&
        ipc_get_str(&rd, QUEUE_ID_LEN, &id) == 0 && ipc_end(&rd) == 0 && txn == TXN &&
        queue_id_valid(id)) {
        r->got = r->ok = 1;
        memcpy(r->id, id, QUEUE_ID_LEN + 1);
    } else if (rd.type == INJ_FAIL && ipc_get_u32(&rd, &txn) == 0 &&
               ipc_get_u32(&rd, &status) == 0 && ipc_get_str(&rd, 64, &enhanced) == 0 &&
               ipc_get_str(&rd, INJ_RECORD_MAX, &text) == 0 && ipc_end(&rd) == 0) {
        r->got = 1;
        r->status = status;
    }
    ipc_close(&rd);
}

static int wait_child(pid_t pid, int *status)
{
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

/* The sysexits code from the reply and the way the child ended. */
static int outcome(const struct reply *r, int wstatus)
{
    int exited = WIFEXITED(wstatus), code = exited ? WEXITSTATUS(wstatus) : -1;
    if (r->got && r->ok && exited && code == 0)
        return EX_OK;
    if (r->got && !r->ok) /* onehop-queue printed the reason itself */
        return r->status == INJ_EX_DATAERR    ? EX_DATAERR
               : r->status == INJ_EX_TEMPFAIL ? EX_TEMPFAIL
                                              : EX_SOFTWARE;
    if (!exited) {
        fprintf(stderr,
                "sendmail: onehop-queue was killed by signal %d: the message may or may not "
                "have been queued\n",
                WTERMSIG(wstatus));
        return EX_TEMPFAIL;
    }
    fprintf(stderr,
            "sendmail: onehop-queue gave no answer (exit status %d): the message may or may "
            "not have been queued\n",
            code);
    if (code == INJ_EX_DATAERR)
        return EX_DATAERR;
    return code == INJ_EX_USAGE || code == INJ_EX_SOFTWARE ? EX_SOFTWARE : EX_TEMPFAIL;
}

/* execve DAEMON_DIR/NAME with argv; returns only when that failed, after
 * saying so ("PROGRAM: cannot run PATH: REASON" and after): EX_TEMPFAIL. */
static int exec_daemon_program(const struct conf *c, const char *name, const char *const *argv,
                               const char *program, const char *after)
{
    struct buf path = BUF_INIT;
    path_join(&path, c->daemon_dir, name);
    execve(buf_cstr(&path), (char *const *)argv, environ);
    fprintf(stderr, "%s: cannot run %s: %s%s\n", program, buf_cstr(&path), strerror(errno), after);
    buf_free(&path);
    return EX_TEMPFAIL;
}

/* fd moved above 0-2 (close-on-exec), or -1. */
static int above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return moved;
}

/* The exec hand-over: returns only when it did not happen. -1: before
 * anything changed (no memfd, or it could not be filled: the spawn way may
 * still work); otherwise the sysexits code of a failed execve, reported. */
static int exec_queue_writer(const struct conf *c, const struct prepared_message *m,
                             const char *notify)
{
    /* both above fd 2, so that neither dup2() below can close the other */
    int fd = above_stdio(memfd_create("onehop-message", MFD_CLOEXEC));
    if (fd < 0)
        return -1;
    int null = above_stdio(open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (null < 0 || send_message(fd, m, notify) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        if (null >= 0)
            close(null);
        return -1;
    }
    if (dup2(fd, 0) != 0 || dup2(null, 1) != 1) { /* dup2 clears close-on-exec */
        fprintf(stderr, "sendmail: cannot hand the message over: %s: nothing was queued\n",
                strerror(errno));
        return EX_TEMPFAIL;
    }
    signal(SIGPIPE, SIG_DFL);
    const char *argv[] = {"onehop-queue", "-C", c->config_dir, NULL};
    return exec_daemon_program(c, "onehop-queue", argv, "sendmail", ": nothing was queued");
}

/* The spawn hand-over: returns the outcome and fills id on success. */
static int spawn_inject(const struct conf *c, const struct prepared_message *m, const char *notify,
                        char *id)
{
    struct buf path = BUF_INIT, rec = BUF_INIT;
    struct child ch = {0, -1, -1};
    struct reply r;
    const char *why = NULL;
    int wstatus = 0;
    memset(&r, 0, sizeof(r));
    signal(SIGPIPE, SIG_IGN); /* a child that stops reading: EPIPE, then its reply says why */
    path_join(&path, c->daemon_dir, "onehop-queue");
    int e = spawn_queue_writer(buf_cstr(&path), c->config_dir, &ch);
    if (e != 0) {
        fprintf(stderr, "sendmail: cannot run %s: %s: nothing was queued\n", buf_cstr(&path),
                strerror(e));
        buf_free(&path);
        return EX_TEMPFAIL;
    }
    send_message(ch.to_fd, m, notify);
    close(ch.to_fd);
    if (chan_recv_record(ch.from_fd, INJ_RECORD_MAX, 0, -1, &rec, NULL, NULL, &why) == 1)
        parse_reply(&rec, &r);
    close(ch.from_fd);
    if (wait_child(ch.pid, &wstatus) != 0)
        wstatus = 0xff00; /* unknown: treated as a failure */
    int rc = outcome(&r, wstatus);
    if (rc == EX_OK)
        memcpy(id, r.id, QUEUE_ID_LEN + 1);
    buf_free(&path);
    buf_free(&rec);
    return rc;
}

int sendmail_inject(const struct conf *c, const struct prepared_message *m, const char *notify,
                    char *id)
{
    if (!id) {
        int rc = exec_queue_writer(c, m, notify);
        if (rc >= 0)
            return rc;
    }
    char unused[QUEUE_ID_LEN + 1];
    return spawn_inject(c, m, notify, id ? id : unused);
}

int sendmail_exec_lister(const struct conf *c, const char *program)
{
    const char *argv[] = {"onehop-queue", "-C", c->config_dir, "--list", NULL};
    return exec_daemon_program(c, "onehop-queue", argv, program, "");
}

int sendmail_run_onehop(const struct conf *c, const char *const *args, int replace)
{
    struct buf path = BUF_INIT;
    const char *argv[16] = {"onehop", "-C", c->config_dir};
    size_t n = 3;
    for (size_t k = 0; args[k] && n + 1 < sizeof(argv) / sizeof(argv[0]); k++)
        argv[n++] = args[k];
    argv[n] = NULL;
    if (replace)
        return exec_daemon_program(c, "onehop", argv, "sendmail", "");
    path_join(&path, c->daemon_dir, "onehop");
    pid_t pid = 0;
    int status = 0;
    int e = posix_spawn(&pid, buf_cstr(&path), NULL, NULL, (char *const *)argv, environ);
    if (e != 0 || pid <= 0) {
        fprintf(stderr, "sendmail: cannot run %s: %s\n", buf_cstr(&path), strerror(e));
        buf_free(&path);
        return EX_TEMPFAIL;
    }
    buf_free(&path);
    if (wait_child(pid, &status) != 0 || !WIFEXITED(status))
        return EX_TEMPFAIL;
    return WEXITSTATUS(status);
}
