/*
 * rmetrics — the router's metrics (common/metrics.h; every metric is listed
 * in docs/metrics.md): recipients delivered, deferred and bounced by
 * transport, the delivery delay of the delivered, the queue by state
 * with the age of its oldest message (the state side's counters, read at
 * each scrape), and messages received by source.
 *
 * A message is received when the router first hands it out (no recipient
 * tried yet, none final); its source is "smtp" when smtpd took it from a
 * network client (the client_address attribute), "bounce" for a null
 * sender without one (the router's own DSNs; `sendmail -f ''` too), else
 * "sendmail" (sendmail, sendmail -bs, onehop-queue). A router restart
 * before a first attempt counts that message again in the new process,
 * whose counters start at 0.
 *
 * transport is "remote" or "local" for a delivery agent's result (one per
 * RP_RESULT, so the counts equal the agent's SPEC 8 status= lines), and
 * "none" for a fate the router decides and logs itself (relay=none: an
 * error: route, queue_lifetime expiry, a loop, no delivery agent).
 *
 * Must never: change what the router does; it only counts.
 */
#ifndef ONEHOP_ROUTER_RMETRICS_H
#define ONEHOP_ROUTER_RMETRICS_H

#include "remote_proto.h"

struct router;

/* Register the families and the queue's collector (once the state is open). */
void rmetrics_start(struct router *r);
/* A delivery agent's result for one recipient. */
void rmetrics_result(int local, const struct rp_result *res);
/* The router hands out message m (qm: its envelope). */
struct state_msg;
struct queue_msg;
void rmetrics_dispatch(const struct state_msg *m, const struct queue_msg *qm);
/* A relay=none line the router logs: status "deferred" or "bounced". */
void rmetrics_router_status(const char *status);

#endif
