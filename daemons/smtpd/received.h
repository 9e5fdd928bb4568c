/*
 * received — the Received: trace header smtpd prepends to each message
 * (RFC 5321 4.4, RFC 5322 3.6.7; the "with" keyword of RFC 3848):
 *
 *   Received: from HELO (NAME [ADDRESS])
 *           by HOSTNAME (onehop) with ESMTPS (TLSv1.3 TLS_AES_256_GCM_SHA384)
 *           for <RCPT>; Sun, 06 Dec 2026 22:40:00 +0000
 *
 * "for" only with exactly one recipient (a Bcc list must not leak). The
 * HELO argument is written as given when it is printable ASCII without
 * parentheses, else replaced by "unknown". Ends with CRLF.
 */
#ifndef ONEHOP_SMTPD_RECEIVED_H
#define ONEHOP_SMTPD_RECEIVED_H

#include <time.h>

#include "buf.h"

struct received_info {
    const char *helo;        /* as the client said it */
    const char *client_name; /* "unknown" when not known */
    const char *client_addr; /* "127.0.0.1", "IPv6:::1"; NULL: a local submission */
    const char *hostname;    /* myhostname */
    const char *protocol;    /* "ESMTP", "ESMTPS"... */
    const char *tls;         /* "TLSv1.3 TLS_AES_..." or NULL */
    const char *rcpt;        /* the one recipient, or NULL */
    time_t when;
};

void received_header(struct buf *out, const struct received_info *ri);

#endif
