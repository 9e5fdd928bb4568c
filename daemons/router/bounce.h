/*
 * bounce — delivery status notifications (SPEC D6; RFC 3464, RFC 3462
 * multipart/report, RFC 3461 ORCPT): one DSN per message covering every
 * recipient of it that failed in one dispatch (or, for delay_warning, one
 * delay notice for those that waited that long: Action: delayed), from MAILER-DAEMON@myhostname
 * with the null sender, carrying a human-readable part, a
 * message/delivery-status part and the original headers
 * (text/rfc822-headers), queued through onehop-queue like any message.
 *
 * bounce_compose() is pure; bounce_inject() runs DAEMON_DIR/onehop-queue
 * one-shot (inject_proto.h) and waits for its answer, bounded by
 * BOUNCE_INJECT_TIMEOUT_MS. Must never: send a DSN for a message whose
 * sender is the null sender (the caller checks: D6, never a bounce for a
 * bounce), or report a DSN queued before onehop-queue said INJ_OK.
 */
#ifndef ONEHOP_ROUTER_BOUNCE_H
#define ONEHOP_ROUTER_BOUNCE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conf.h"
#include "queue.h"

#define BOUNCE_INJECT_TIMEOUT_MS 30000

struct bounce_rcpt {
    const char *address;
    const char *orcpt;      /* RFC 3461 "rfc822;addr" or "" */
    const char *diagnostic; /* the server's reply or our own reason */
    const char *remote_mta; /* host name of the relay, or NULL */
};

struct bounce {
    const char *myhostname;
    const char *queue_id;
    const char *sender; /* the original envelope sender (the DSN's recipient) */
    int64_t arrival;    /* unix seconds */
    int64_t now;
    const struct bounce_rcpt *rcpt;
    size_t nrcpt;
    const char *headers; /* the original header block, LF line ends */
    size_t headers_len;
    int delayed;         /* a delay notice (delay_warning): Action: delayed, 4.x.x */
    int64_t retry_until; /* delayed: RFC 3464 2.3.7 Will-Retry-Until (0: none) */
};

/* The RFC 3463 status of a reply ("550 5.1.1 ..." -> "5.1.1"); "5.0.0"
 * when it carries none. out[16]. */
void bounce_status(const char *diagnostic, char *out);
/* The same for a temporary failure ("451 4.3.0 ..." -> "4.3.0"; "4.0.0"). */
void bounce_delay_status(const char *diagnostic, char *out);
/* The whole DSN (header and body, LF line ends) into out. */
void bounce_compose(const struct bounce *b, struct buf *out);
/* Queue msg from the null sender to rcpt; 0 with id[QUEUE_ID_LEN + 1]
 * filled, or -1 with *why (static text). */
int bounce_inject(const struct conf *c, const char *rcpt, const struct buf *msg, char *id,
                  struct buf *why);

#endif
