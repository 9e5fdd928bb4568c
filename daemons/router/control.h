/*
 * control — the router's control socket, run_dir/router.sock, or
 * queue_dir/state/router.sock when run_dir is not the router's to write
 * (started by root, the router runs as its account and run_dir is root's;
 * records: common/router_ctl.h), through which `onehop flush`, `hold`, `release`,
 * `delete`, `sendmail -q` and `newaliases` change a running router's queue.
 *
 * The listener admits by peer credentials only root and the router's own
 * uid (the instance's owner when an ordinary user started it; under root
 * the daemons run as their accounts and root is the owner); anyone else is
 * closed at once, logged with its uid and pid. Each request is acted on in
 * the loop at once:
 *   - flush [ID | @DOMAIN]: every deferred recipient concerned (not held,
 *     not in flight) becomes due now (state_retry_now: not an attempt; its
 *     attempts, last try and reason stay), so the pump hands it out; a
 *     flush of all drops every dead-destination mark (D8,
 *     dispatch_forget_dead), so a destination that is back is tried at
 *     once; a flush of one domain or message drops only the marks of the
 *     routes its recipients took (dest_forget_route): the others stay;
 *   - hold, release, delete (IDs, all, deferred): state_hold,
 *     state_release, state_delete; logged "ID: placed on hold", "ID:
 *     released from hold", "ID: deleted (onehop delete, uid N)"; a deleted
 *     message's "ID: removed" comes from the cleaner once its space is
 *     taken back (cleaner_link.c);
 *   - reload: router_reload (checked as `onehop check`; a bad configuration
 *     is refused with its FILE:LINE: messages, the running one kept);
 *   - newaliases: the aliases file validated, then routes, sites and
 *     aliases read again (router_reload, maps only).
 * Every change is recorded in the state journal and made durable (one
 * state_flush) before anything is logged or answered.
 *
 * Must never: answer or log a change before it is durable, act for a peer
 * it did not admit, or block the loop on a client.
 */
#ifndef ONEHOP_ROUTER_CONTROL_H
#define ONEHOP_ROUTER_CONTROL_H

struct router;

/* Listen on run_dir/router.sock (mode 0600). A failure is logged and the
 * router goes on without it (the admin commands then say it is not
 * reachable); returns 0 or -1. */
int control_open(struct router *r);
/* Stop listening, remove the socket, close every client. */
void control_close(struct router *r);

#endif
