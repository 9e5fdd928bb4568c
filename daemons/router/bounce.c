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
#include "inject_client.h"
#include "inject_proto.h"
#include "ipc.h"
#include "msgprep.h"
#include "safeio.h"

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

int bounce_inject(const struct conf *c, const char *rcpt, const struct buf *msg, char *id,
                  struct buf *why)
{
    struct inject_client ic;
    if (inject_client_start(&ic, c, BOUNCE_INJECT_TIMEOUT_MS, why) < 0)
        return -1;
    struct buf records = BUF_INIT;
    inject_put_envelope(&records, "", &rcpt, 1);
    inject_put_data(&records, msg->s, msg->len);
    inject_put_end(&records);
    int rc = -1;
    if (inject_client_send(&ic, &records) == 0)
        rc = inject_client_answer(&ic, id, why) == 0 ? 0 : -1;
    else
        buf_printf(why, "writing to onehop-queue: %s", strerror(errno));
    buf_free(&records);
    inject_client_end(&ic);
    return rc;
}
