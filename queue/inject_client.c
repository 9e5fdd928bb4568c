/*
 * inject_client — a one-shot onehop-queue as a client. See inject_client.h.
 */
#include "inject_client.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_core.h"
#include "inject_proto.h"
#include "ipc.h"
#include "queue.h"
#include "safeio.h"

int inject_client_start(struct inject_client *ic, const struct conf *c, int timeout_ms,
                        struct buf *why)
{
    int in[2], out[2];
    ic->pid = -1;
    ic->to = ic->from = -1;
    ic->timeout_ms = timeout_ms;
    if (pipe2(in, O_CLOEXEC) != 0) {
        buf_printf(why, "cannot make a pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(out, O_CLOEXEC) != 0) {
        buf_printf(why, "cannot make a pipe: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        return -1;
    }
    struct buf path = BUF_INIT;
    path_join(&path, c->daemon_dir, "onehop-queue");
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        if (dup2(in[0], 0) == 0 && dup2(out[1], 1) == 1)
            execl(path.s, "onehop-queue", "-C", c->config_dir, (char *)NULL);
        _exit(INJ_EX_TEMPFAIL);
    }
    int saved = errno;
    buf_free(&path);
    close(in[0]);
    close(out[1]);
    ic->pid = pid;
    ic->to = in[1];
    ic->from = out[0];
    if (pid < 0) {
        buf_printf(why, "cannot run onehop-queue: %s", strerror(saved));
        inject_client_end(ic);
        return -1;
    }
    return 0;
}

void inject_put_envelope(struct buf *out, const char *sender, const char *const *rcpts, size_t n)
{
    struct ipc_writer w;
    ipc_begin(&w, out, INJ_BEGIN);
    ipc_add_u32(&w, INJECT_CLIENT_TXN);
    ipc_add_str(&w, sender);
    ipc_finish(&w);
    for (size_t i = 0; i < n; i++) {
        ipc_begin(&w, out, INJ_RCPT);
        ipc_add_u32(&w, INJECT_CLIENT_TXN);
        ipc_add_str(&w, rcpts[i]);
        ipc_add_str(&w, ""); /* ORCPT */
        ipc_add_str(&w, ""); /* NOTIFY */
        ipc_finish(&w);
    }
}

void inject_put_data(struct buf *out, const char *p, size_t len)
{
    for (size_t at = 0; at < len; at += INJ_DATA_MAX) {
        struct ipc_writer w;
        ipc_begin(&w, out, INJ_DATA);
        ipc_add_u32(&w, INJECT_CLIENT_TXN);
        ipc_add_bytes(&w, p + at, len - at < INJ_DATA_MAX ? len - at : INJ_DATA_MAX);
        ipc_finish(&w);
    }
}

void inject_put_end(struct buf *out)
{
    struct ipc_writer w;
    ipc_begin(&w, out, INJ_END);
    ipc_add_u32(&w, INJECT_CLIENT_TXN);
    ipc_finish(&w);
}

int inject_client_send(struct inject_client *ic, const struct buf *records)
{
    return chan_send_record(ic->to, records->s, records->len, NULL, 0, ic->timeout_ms) < 0 ? -1 : 0;
}

/* One answer record, decoded. */
static int decode_answer(const struct buf *rec, char *id, struct buf *why)
{
    struct ipc_reader rd;
    const char *qid, *enhanced, *text;
    uint32_t txn = 0, status = 0;
    int rc = -1;
    if (ipc_open(&rd, rec->s, rec->len) != 0) {
        buf_adds(why, "onehop-queue answered with a malformed record");
        return -1;
    }
    if (rd.type == INJ_OK && ipc_get_u32(&rd, &txn) == 0 &&
        ipc_get_str(&rd, QUEUE_ID_LEN, &qid) == 0 && ipc_end(&rd) == 0 &&
        txn == INJECT_CLIENT_TXN && queue_id_valid(qid)) {
        memcpy(id, qid, QUEUE_ID_LEN + 1);
        rc = 0;
    } else if (rd.type == INJ_FAIL && ipc_get_u32(&rd, &txn) == 0 &&
               ipc_get_u32(&rd, &status) == 0 && ipc_get_str(&rd, 64, &enhanced) == 0 &&
               ipc_get_str(&rd, INJ_RECORD_MAX, &text) == 0 && ipc_end(&rd) == 0) {
        buf_printf(why, "onehop-queue refused it: %s %s", enhanced, text);
        rc = status == INJ_EX_TEMPFAIL ? -1 : -2;
    } else {
        buf_adds(why, "onehop-queue answered with a malformed record");
    }
    ipc_close(&rd);
    return rc;
}

int inject_client_answer(struct inject_client *ic, char *id, struct buf *why)
{
    struct buf rec = BUF_INIT;
    const char *err = NULL;
    int rc = -1;
    if (chan_recv_record(ic->from, INJ_RECORD_MAX, 0, ic->timeout_ms, &rec, NULL, NULL, &err) != 1)
        buf_printf(why, "onehop-queue gave no answer%s%s", err ? ": " : "", err ? err : "");
    else
        rc = decode_answer(&rec, id, why);
    buf_free(&rec);
    return rc;
}

void inject_client_end(struct inject_client *ic)
{
    int status;
    if (ic->to >= 0)
        close(ic->to);
    if (ic->from >= 0)
        close(ic->from);
    ic->to = ic->from = -1;
    while (ic->pid > 0 && waitpid(ic->pid, &status, 0) < 0 && errno == EINTR)
        ;
    ic->pid = -1;
}
