/*
 * router — the state onehop-router's modules share: one libuv loop, the
 * queue and its state side (queue/state.h, owner), the routing decision
 * (common/routing.h), the cleaner's channel (cleaner_link.h) and the
 * remote's (dispatch.h).
 *
 * The rule every module follows (state.h): a change is recorded first
 * (a journal record, its sequence number), made durable by the one
 * state_flush() of each loop iteration (router_pump in main.c), and acted
 * on (a log line, a cleaner request, a dispatch ended) only once
 * state_durable() has reached its number. Must never: log an outcome, or
 * let the cleaner remove anything, before the record that allows it is on
 * disk.
 */
#ifndef ONEHOP_ROUTER_ROUTER_H
#define ONEHOP_ROUTER_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "channel.h"
#include "conf.h"
#include "queue.h"
#include "routing.h"
#include "state.h"

/* A log line held until the record it reports is durable. */
struct held_line {
    uint64_t seq;
    char *text;
};

struct router {
    uv_loop_t *loop;
    const char *confdir;
    struct conf conf;
    struct routing routing;
    struct queue *q;
    struct state *s;
    struct daemon_link_uv *link;
    struct cleaner_link *cleaner;
    struct dispatch *dispatch;
    int started; /* the cleaner's RECOVER answered, READY sent */
    int stopping;
    int supervised;  /* started by the master (daemon_link.h) */
    int learn_asked; /* trigger, scan or start: learn new files at the next pump */
    struct held_line *held;
    size_t nheld, held_cap;
};

/* Hold line until seq is durable (0: at the next pump). Takes text. */
void router_hold_line(struct router *r, uint64_t seq, char *text);
/* Fail-stop after a state error: log and exit (the master restarts us; the
 * journal is the truth we come back to). */
void router_state_fail(const char *what) __attribute__((__noreturn__));
/* The channel end the master passed in the environment variable env
 * (a descriptor number), opened; fatal (log_die) when missing or refused. */
struct channel *router_channel(struct router *r, const char *env, const struct channel_opts *opts,
                               const struct channel_ops *ops, void *arg);
/* The cleaner's RECOVER was answered: learn the queue and say READY. */
void router_recovered(struct router *r);
/* Re-read and check the configuration as `onehop check` does (confcheck.h)
 * and load routes, sites and aliases; maps_only: the running configuration
 * is kept and only the maps are read again. In-flight work is kept. 0, or
 * -1 with the mistakes in dg (logged too) and the running settings kept. */
struct diag;
int router_reload(struct router *r, int maps_only, struct diag *dg);
/* Stop: the loop ends once the handles are closed. */
void router_stop(struct router *r, const char *why);
/* A channel to a peer closed: without a master, stop; under the master,
 * wait for its STOP (it restarts a dead daemon's channel peers; exiting
 * first would race with it). */
void router_channel_lost(struct router *r, const char *why);

#endif
