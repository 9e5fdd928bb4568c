/*
 * cleaner_link — the router's end of the cleaner's channel
 * (queue/clean_proto.h; ONEHOP_CHANNEL_CLEANER from the master): RECOVER
 * once at the start, then the state side's requests (TAKE, RECLAIM,
 * REMOVE, QUARANTINE) as state_clean_next() hands them out, pipelined,
 * answered one by one in order and recorded with state_clean_done().
 * Logs "ID: removed" (SPEC 8) for every message of a file the cleaner
 * removed (and for a reclaimed message, whose content is gone).
 *
 * Must never: send a request the state did not hand out, or record an
 * answer for a request other than the oldest one unanswered.
 */
#ifndef ONEHOP_ROUTER_CLEANER_LINK_H
#define ONEHOP_ROUTER_CLEANER_LINK_H

struct router;
struct cleaner_link;

#define CLEANER_CHANNEL_ENV "ONEHOP_CHANNEL_CLEANER" /* the master's name for our end */

/* Open the channel (router_channel) and send RECOVER; router_recovered()
 * follows its answer. */
struct cleaner_link *cleaner_link_open(struct router *r);
/* Send the requests the state hands out now (after a flush), at most
 * CLEAN_WINDOW unanswered: the rest go as answers come back. */
void cleaner_link_send(struct cleaner_link *c);
/* Failed requests handed out again (the retry timer). */
void cleaner_link_retry(struct cleaner_link *c);
void cleaner_link_close(struct cleaner_link *c);

#endif
