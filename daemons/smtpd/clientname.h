/*
 * clientname — the name of an SMTP client for onehop-smtpd's logs and
 * Received: header (SPEC 8: "connect from client.test[127.0.0.9]"): its
 * PTR name, forward-confirmed, asked of onehop-dnscache (the RDNS view of
 * common/dnsproto.h; smtpd resolves nothing itself, ARCHITECTURE
 * "Processes"), without blocking the loop.
 *
 *     r = clientname_lookup(dns, peer, done, arg);
 *     ... done(arg, name) once: the confirmed name, or NULL ("unknown")
 *     clientname_cancel(r)                 done never runs
 *
 * As Postfix: a name whose A (AAAA) records do not hold the address is not
 * used ("unknown") and logged as a warning ("hostname H does not resolve
 * to address A"); no PTR, a failed or a slow look-up give "unknown" too.
 * The caller bounds the wait (dns_lookup_timeout) by cancelling. An IPv4
 * address mapped into IPv6 (::ffff:a.b.c.d) is looked up as IPv4.
 *
 * Must never: call done inside clientname_lookup(), or twice.
 */
#ifndef ONEHOP_SMTPD_CLIENTNAME_H
#define ONEHOP_SMTPD_CLIENTNAME_H

#include <sys/socket.h>

#include "dnsclient.h"

struct clientname;

typedef void clientname_cb(void *arg, const char *name);

/* NULL when the address has no reverse name (not IPv4 or IPv6): then the
 * name is "unknown" at once and done never runs. */
struct clientname *clientname_lookup(struct dnsclient *dns, const struct sockaddr *peer,
                                     clientname_cb *done, void *arg);
void clientname_cancel(struct clientname *r);

#endif
