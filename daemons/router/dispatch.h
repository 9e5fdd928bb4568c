/*
 * dispatch — due messages to onehop-remote (common/remote_proto.h on
 * ONEHOP_CHANNEL_REMOTE) and onehop-local (common/local_proto.h on
 * ONEHOP_CHANNEL_LOCAL), and their results back.
 *
 * For each message state_next_due() hands out, each recipient that is due
 * is routed (common/routing.h; the route recorded with state_set_route
 * when it changed) and:
 *   - remote: grouped with the message's other recipients for the same
 *     next hops into one RP_JOB of up to RP_RCPT_MAX (SPEC D7), sent with
 *     its own descriptor of the message (queue_msg_open: O_RDONLY, the
 *     content verified); at most remote_concurrency jobs in flight (a
 *     message may go over by the jobs of that one message);
 *   - local: the message's local recipients in one LP_JOB (up to
 *     LP_RCPT_MAX each) with its descriptor; at most local_concurrency in
 *     flight, the others wait in order for a slot (and while local_concurrency
 *     wait, no further message is handed out); origin LP_FROM_ALIASES for
 *     the |command and /file targets of the aliases file;
 *   - an alias expanding to several final recipients: each target is
 *     dispatched; the envelope recipient is final once all its targets are
 *     (delivered if any was, bounced if every one bounced), deferred while
 *     one is temporary; memo.h remembers the targets done so that a retry
 *     does not deliver them again (after a router restart it may: at least
 *     once); a target that fails permanently is named in the DSN, with
 *     Original-Recipient;
 *   - bounce / defer decided by the routing: recorded so, with its status;
 *   - a deferred recipient whose message outlived queue_lifetime: bounced;
 *   - a destination that is dead (destination.h, D8): deferred to the end of
 *     its back-off without a job, woken when a delivery there succeeds.
 * Each RESULT, remote or local, takes the same path: recorded at once
 * (delivered, deferred with the back-off of retry.h, bounced once its DSN
 * is queued). SPEC 5 rule 5: a direct delivery whose result carried
 * RP_FLAG_ALL_MX_TEMP goes by the site path next. When a dispatch ends:
 * one DSN for its bounces (D6; a bounce's own failure goes once to
 * postmaster, a failed notice to postmaster is logged and dropped), then
 * the expanded aliases settled, then one delay notice (delay_warning) for
 * the recipients that waited that long, each once (QUEUE_FLAG_DELAY_WARNED);
 * the dispatch ends (state_dispatch_done) once its records are durable.
 * If the local channel closes, its jobs in flight or waiting are deferred.
 *
 * Must never: lose a recipient (every one due gets a job or a recorded
 * outcome), or end a dispatch before its outcomes are durable.
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
/* onehop flush (control.h): forget every dead-destination mark (D8), so
 * that what the flush made due is tried now, not suspended again. */
void dispatch_forget_dead(struct dispatch *d);
/* The dead-destination marks (flush @DOMAIN forgets only its own). */
struct destinations *dispatch_destinations(struct dispatch *d);
void dispatch_close(struct dispatch *d);

#endif
