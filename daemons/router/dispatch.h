/*
 * dispatch — due messages to onehop-remote and their results back
 * (common/remote_proto.h on ONEHOP_CHANNEL_REMOTE).
 *
 * For each message state_next_due() hands out, each recipient that is due
 * is routed (common/routing.h; the route recorded with state_set_route
 * when it changed) and:
 *   - remote: grouped with the message's other recipients for the same
 *     next hops into one JOB of up to RP_RCPT_MAX (SPEC D7), sent with its
 *     own descriptor of the message (queue_msg_open: O_RDONLY, the content
 *     verified);
 *   - local: deferred, "local delivery is not built yet" (never dropped,
 *     never bounced);
 *   - bounce / defer decided by the routing: recorded so, with its status;
 *   - a deferred recipient whose message outlived queue_lifetime: bounced.
 * Each RESULT is recorded at once (delivered, deferred with the back-off
 * of retry.h, bounced); the dispatch of a message ends (state_dispatch_done)
 * once every job of it is DONE and its records are durable. At most
 * remote_concurrency jobs are in flight (a message may go over by the jobs
 * of that one message).
 *
 * Bounce DSNs (D6) are not sent yet: a bounced recipient is recorded and
 * logged status=bounced. Must never: lose a recipient (every one due gets
 * a job or a recorded outcome), or end a dispatch before its outcomes are
 * durable.
 */
#ifndef ONEHOP_ROUTER_DISPATCH_H
#define ONEHOP_ROUTER_DISPATCH_H

#include <stdint.h>

struct router;
struct dispatch;

/* Open the remote's channel (router_channel, RP_CHANNEL_ENV). */
struct dispatch *dispatch_open(struct router *r);
/* Hand out what is due at now while there is room; *next_wakeup as
 * state_next_due gives it (0: nothing waits). Returns 1 if it recorded or
 * sent anything. */
int dispatch_due(struct dispatch *d, int64_t now, int64_t *next_wakeup);
/* After a flush: end the dispatches whose outcomes are durable (their
 * messages are indexed again: due now or later). 1 if any ended. */
int dispatch_settle(struct dispatch *d);
/* Jobs in flight (logs). */
unsigned dispatch_in_flight(const struct dispatch *d);
void dispatch_close(struct dispatch *d);

#endif
