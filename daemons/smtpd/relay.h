/*
 * relay — who may send mail where (SPEC 3 local_domains, relay_domains,
 * mynetworks; the decision at RCPT time), as one pure function over the
 * configuration and the routing decision (common/routing.h):
 *
 *   1. a local part with '%', '!' or '@' (percent hack, bang path, an
 *      address inside a quoted local part) for a domain of this host:
 *      refused (554 5.7.1): such forms never reach another host through us
 *   2. a domain of this host (local_domains, or what routing delivers
 *      locally): accepted when the routing finds a mailbox, alias, file or
 *      command for it; 550 5.1.1 when it bounces (local_users = passwd and
 *      no such user, an alias loop...)
 *   3. a domain of relay_domains (the domain itself; its subdomains are
 *      not implied): accepted from anyone
 *   4. a client in mynetworks: accepted
 *   5. anything else: 554 5.7.1 Relay access denied
 * A non-local recipient the routing bounces outright (an `error:` route)
 * is accepted like any other of rules 3-5: SPEC 4 and D4 (b) make it a
 * bounce, a DSN to the sender with the route's text, which the router
 * sends. Source routes were dropped by the address parser
 * (RFC 5321 C); a trailing dot never parses.
 *
 * Must never: accept a non-local recipient from outside mynetworks that is
 * not in relay_domains.
 */
#ifndef ONEHOP_SMTPD_RELAY_H
#define ONEHOP_SMTPD_RELAY_H

#include <sys/socket.h>

#include "buf.h"
#include "conf.h"
#include "netaddr.h"
#include "routing.h"

struct relay_policy {
    const struct conf *conf;
    const struct routing *routing;
    struct cidr *nets; /* mynetworks */
    size_t nnets;
};

/* Build from c (mynetworks was validated by conf); rt borrowed. */
void relay_init(struct relay_policy *rp, const struct conf *c, const struct routing *rt);
void relay_free(struct relay_policy *rp);
/* 1 if the client (NULL: a local submission, sendmail -bs) is in mynetworks. */
int relay_client_trusted(const struct relay_policy *rp, const struct sockaddr *client);
/* 0: accept addr (local@domain, lower-case domain); else the reply line. */
int relay_check(const struct relay_policy *rp, const struct sockaddr *client, const char *addr,
                struct buf *reply);

#endif
