/*
 * bounce — DSNs: bounce.h.
 */
#include "router/bounce.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_core.h"
#include "inject_proto.h"
#include "ipc.h"
#include "msgprep.h"
#include "safeio.h"

#define TXN 1

/* RFC 3463 2: class "." subject "." detail, digits only. */
static int status_at(const char *p, size_t *len)
{
    size_t i = 0;
    if (p[i] != '2' && p[i] != '4' && p[i] != '5')
        return 0;
    i++;
    for (int part = 0; part < 2; part++) {
        if (p[i++] != '.')
            return 0;
        size_t digits = 0;
        while (p[i] >= '0' && p[i] <= '9' && digits < 3)
            i++, digits++;
        if (digits == 0)
            return 0;
    }
    *len = i;
    return p[i] == '\0' || p[i] == ' ';
}

/* The first word of the text that is a cls.x.x code (the remote's text is
 * "host H said: 550 5.1.1 ... (in reply to ...)", ours starts with it). */
static void status_of_class(const char *diagnostic, char cls, char *out)
{
    const char *s = diagnostic ? diagnostic : "";
    size_t len = 0;
    for (const char *p = s; *p; p++) {
        if ((p == s || p[-1] == ' ') && p[0] == cls && status_at(p, &len) && len < 16) {
            memcpy(out, p, len);
            out[len] = '\0';
            return;
        }
    }
    memcpy(out, cls == '5' ? "5.0.0" : "4.0.0", 6);
}

void bounce_status(const char *diagnostic, char *out)
{
    status_of_class(diagnostic, '5', out);
}

void bounce_delay_status(const char *diagnostic, char *out)
{
    status_of_class(diagnostic, '4', out);
}

static void add_date_line(struct buf *out, const char *name, int64_t t)
{
    buf_printf(out, "%s: ", name);
    msgprep_format_date((time_t)t, out);
    buf_addc(out, '\n');
}

static void compose_header(const struct bounce *b, const char *boundary, struct buf *out)
{
    buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\n", b->myhostname);
    buf_printf(out, "To: <%s>\n", b->sender);
    buf_adds(out, b->delayed ? "Subject: Delayed Mail (still being retried)\n"
                             : "Subject: Undelivered Mail Returned to Sender\n");
    add_date_line(out, "Date", b->now);
    buf_printf(out, "Message-ID: <%s.%s@%s>\n", b->queue_id, b->delayed ? "delay" : "dsn",
               b->myhostname);
    buf_adds(out, "Auto-Submitted: auto-replied\n"); /* RFC 3834 */
    buf_adds(out, "MIME-Version: 1.0\n");
    buf_printf(out,
               "Content-Type: multipart/report; report-type=delivery-status;\n"
               "\tboundary=\"%s\"\n\n",
               boundary);
}

static void compose_text(const struct bounce *b, const char *boundary, struct buf *out)
{
    buf_printf(out, "--%s\nContent-Type: text/plain; charset=us-ascii\n\n", boundary);
    buf_printf(out, "This is the mail system at host %s.\n\n", b->myhostname);
    buf_adds(out, b->delayed ? "Your message could not be delivered yet to one or more "
                               "recipients.\nIt is still being retried: you need not send it "
                               "again.\n\n"
                             : "Your message could not be delivered to one or more recipients.\n"
                               "It is attached below (its headers).\n\n");
    for (size_t i = 0; i < b->nrcpt; i++)
        buf_printf(out, "<%s>: %s\n", b->rcpt[i].address, b->rcpt[i].diagnostic);
    buf_addc(out, '\n');
}

/* RFC 3464 2.2 (per message) and 2.3 (per recipient). */
static void compose_status(const struct bounce *b, const char *boundary, struct buf *out)
{
    buf_printf(out, "--%s\nContent-Type: message/delivery-status\n\n", boundary);
    buf_printf(out, "Reporting-MTA: dns; %s\n", b->myhostname);
    buf_printf(out, "X-Onehop-Queue-ID: %s\n", b->queue_id);
    add_date_line(out, "Arrival-Date", b->arrival);
    for (size_t i = 0; i < b->nrcpt; i++) {
        const struct bounce_rcpt *r = &b->rcpt[i];
        char status[16];
        if (b->delayed)
            bounce_delay_status(r->diagnostic, status);
        else
            bounce_status(r->diagnostic, status);
        buf_printf(out, "\nFinal-Recipient: rfc822; %s\n", r->address);
        if (r->orcpt && r->orcpt[0])
            buf_printf(out, "Original-Recipient: %s\n", r->orcpt);
        buf_printf(out, "Action: %s\nStatus: %s\n", b->delayed ? "delayed" : "failed", status);
        if (r->remote_mta)
            buf_printf(out, "Remote-MTA: dns; %s\n", r->remote_mta);
        buf_printf(out, "Diagnostic-Code: smtp; %s\n", r->diagnostic);
        if (b->delayed && b->retry_until > 0)
            add_date_line(out, "Will-Retry-Until", b->retry_until);
    }
    buf_addc(out, '\n');
}

void bounce_compose(const struct bounce *b, struct buf *out)
{
    struct buf boundary = BUF_INIT;
    buf_printf(&boundary, "%s/%s", b->queue_id, b->myhostname);
    compose_header(b, boundary.s, out);
    compose_text(b, boundary.s, out);
    compose_status(b, boundary.s, out);
    buf_printf(out, "--%s\nContent-Type: text/rfc822-headers\n\n", boundary.s);
    buf_add(out, b->headers, b->headers_len);
    if (b->headers_len == 0 || b->headers[b->headers_len - 1] != '\n')
        buf_addc(out, '\n');
    buf_printf(out, "\n--%s--\n", boundary.s);
    buf_free(&boundary);
}

/* --------------------------------------------------------------- inject ---- */

static void add_records(struct buf *out, const char *rcpt, const struct buf *msg)
{
    struct ipc_writer w;
    ipc_begin(&w, out, INJ_BEGIN);
    ipc_add_u32(&w, TXN);
    ipc_add_str(&w, "");
    ipc_finish(&w);
    ipc_begin(&w, out, INJ_RCPT);
    ipc_add_u32(&w, TXN);
    ipc_add_str(&w, rcpt);
    ipc_add_str(&w, "");
    ipc_add_str(&w, "");
    ipc_finish(&w);
    for (size_t off = 0; off < msg->len; off += INJ_DATA_MAX) {
        size_t n = msg->len - off < INJ_DATA_MAX ? msg->len - off : INJ_DATA_MAX;
        ipc_begin(&w, out, INJ_DATA);
        ipc_add_u32(&w, TXN);
        ipc_add_bytes(&w, msg->s + off, n);
        ipc_finish(&w);
    }
    ipc_begin(&w, out, INJ_END);
    ipc_add_u32(&w, TXN);
    ipc_finish(&w);
}

/* DAEMON_DIR/onehop-queue -C CONFIG_DIR, one-shot, on two pipes. fork and
 * exec (the router is one thread): the child restores SIGPIPE, which the
 * daemon ignores (daemon_args.h), and exits 75 (temporary) if exec fails. */
static pid_t spawn_writer(const struct conf *c, int *to, int *from)
{
    int in[2], out[2];
    struct buf path = BUF_INIT;
    *to = *from = -1;
    if (pipe2(in, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    path_join(&path, c->daemon_dir, "onehop-queue");
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        if (dup2(in[0], 0) == 0 && dup2(out[1], 1) == 1)
            execl(path.s, "onehop-queue", "-C", c->config_dir, (char *)NULL);
        _exit(INJ_EX_TEMPFAIL);
    }
    buf_free(&path);
    close(in[0]);
    close(out[1]);
    *to = in[1];
    *from = out[0];
    return pid;
}

/* INJ_OK for our transaction: 0 and id; else -1 with why. */
static int read_reply(int fd, char *id, struct buf *why)
{
    struct buf rec = BUF_INIT;
    const char *err = NULL, *qid = NULL, *enhanced = NULL, *text = NULL;
    struct ipc_reader rd;
    uint32_t txn = 0, status = 0;
    int rc = -1;
    if (chan_recv_record(fd, INJ_RECORD_MAX, 0, BOUNCE_INJECT_TIMEOUT_MS, &rec, NULL, NULL, &err) !=
        1) {
        buf_printf(why, "onehop-queue gave no answer%s%s", err ? ": " : "", err ? err : "");
    } else if (ipc_open(&rd, rec.s, rec.len) == 0) {
        if (rd.type == INJ_OK && ipc_get_u32(&rd, &txn) == 0 &&
            ipc_get_str(&rd, QUEUE_ID_LEN, &qid) == 0 && ipc_end(&rd) == 0 && txn == TXN &&
            queue_id_valid(qid)) {
            memcpy(id, qid, QUEUE_ID_LEN + 1);
            rc = 0;
        } else if (rd.type == INJ_FAIL && ipc_get_u32(&rd, &txn) == 0 &&
                   ipc_get_u32(&rd, &status) == 0 && ipc_get_str(&rd, 64, &enhanced) == 0 &&
                   ipc_get_str(&rd, INJ_RECORD_MAX, &text) == 0 && ipc_end(&rd) == 0) {
            buf_printf(why, "onehop-queue refused it: %s %s", enhanced, text);
        } else {
            buf_adds(why, "onehop-queue answered with a malformed record");
        }
        ipc_close(&rd);
    }
    buf_free(&rec);
    return rc;
}

int bounce_inject(const struct conf *c, const char *rcpt, const struct buf *msg, char *id,
                  struct buf *why)
{
    int to = -1, from = -1, status = 0, rc = -1;
    pid_t pid = spawn_writer(c, &to, &from);
    if (pid < 0) {
        buf_printf(why, "cannot run onehop-queue: %s", strerror(errno));
        if (to >= 0)
            close(to);
        if (from >= 0)
            close(from);
        return -1;
    }
    struct buf records = BUF_INIT;
    add_records(&records, rcpt, msg);
    if (chan_send_record(to, records.s, records.len, NULL, 0, BOUNCE_INJECT_TIMEOUT_MS) == 0)
        rc = read_reply(from, id, why);
    else
        buf_printf(why, "writing to onehop-queue: %s", strerror(errno));
    buf_free(&records);
    close(to);
    close(from);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return rc;
}
