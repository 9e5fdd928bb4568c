/*
 * master — the state of onehop-master shared by its parts: the running
 * configuration, one struct proc per row of table.h, the channels between
 * daemons, and the stop in progress.
 *
 * A proc's life (supervise.h):
 *
 *     off ──start──► starting ──READY──► ready ──exit──► backoff ──timer──► starting
 *                       │                  │                │ (crash loop:
 *                       └──exit/FAILED─────┴──► ...         └──► crashloop, no restart)
 *     any ──stop──► stopping ──exit──► off
 *
 * "disabled" rows (START_IF_PRESENT without their program) are never
 * started and not shown by status.
 */
#ifndef ONEHOP_MASTER_MASTER_H
#define ONEHOP_MASTER_MASTER_H

#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "buf.h"
#include "channel.h"
#include "conf.h"
#include "master/account.h"
#include "master/table.h"

#define MASTER_ROWS_MAX 16
#define MASTER_LISTEN_MAX 16
#define EXITS_KEPT 16

enum proc_state { P_OFF, P_STARTING, P_READY, P_BACKOFF, P_CRASHLOOP, P_STOPPING };

struct master;

struct proc {
    struct master *m;
    const struct daemon_row *row;
    int enabled; /* started by this master */
    struct account account;
    enum proc_state state;
    pid_t pid;                     /* 0 when not running */
    struct channel *link;          /* the master link (daemon_link.h) */
    uint64_t started_ms;           /* when the current process was started (uv_now) */
    time_t started_wall;           /* the same, for status */
    unsigned restarts;             /* restarts after an exit (not reloads) */
    uint64_t exits_ms[EXITS_KEPT]; /* recent exit times, newest at [0] */
    unsigned nexits;
    uv_timer_t timer;                   /* back-off */
    struct buf failure;                 /* the daemon's own error text (DLINK_FAILED) */
    int said_failed;                    /* failure is the daemon's own (it sent FAILED) */
    int restart_after_stop;             /* stopped to be started again (a channel peer left) */
    const struct proc *restart_cause;   /* the peer whose exit restart_after_stop is for */
    int reaped;                         /* its exit is being handled: no signal to its pid */
    int last_status;                    /* wait status of its last exit */
    unsigned chan_gen[MASTER_ROWS_MAX]; /* generation of each chans[] end it holds */
};

/* One socketpair of table_channels(): end[0] for row a, end[1] for row b.
 * -1 once given to a daemon (the master's copy closed). A daemon started
 * when its end was given away already gets a fresh pair (gen + 1); a
 * daemon whose peer exited while both held the same generation is
 * restarted, as its channel leads nowhere now. */
struct chanpair {
    const struct channel_row *row;
    int end[2];
    unsigned gen;
};

enum master_state { M_STARTING, M_RUNNING, M_STOPPING };

struct master {
    uv_loop_t *loop;
    const char *confdir;
    struct conf conf;
    enum master_state state;
    struct proc procs[MASTER_ROWS_MAX];
    size_t nprocs;
    struct chanpair chans[MASTER_ROWS_MAX];
    size_t nchans;
    int listen_fds[MASTER_LISTEN_MAX];
    size_t nlisten;
    time_t started_wall;
    int ready_report; /* the pipe to `onehop start` (-1 once answered) */
    unsigned stop_timeout_s;
    unsigned ready_timeout_s;
    uv_timer_t stop_timer, ready_timer;
    uv_timer_t drain_timer;   /* bounds the wait for STOP_FIRST daemons (table.h) */
    enum stop_step stop_step; /* the step of the stop under way */
    int stop_step_told;       /* its daemons were told */
    int drain_over;           /* the drain bound passed: every step is told at once */
    struct buf stop_note;     /* "killed dnscache (pid 12) after 30 s" */
    /* control clients waiting for the end of the stop */
    struct channel *stop_waiters[16];
    size_t nstop_waiters;
};

const char *proc_state_name(enum proc_state s);

#endif
