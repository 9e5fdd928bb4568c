/*
 * supervise — start, watch, restart, reload and stop the daemons of the
 * table (master.h draws a proc's states).
 *
 * Restart policy (table.h struct restart_policy): a daemon that exits
 * while the master is not stopping is restarted after a delay that starts
 * at backoff_first_ms and doubles with every exit seen within
 * loop_window_s (at most backoff_max_ms); the loop_exits-th exit within
 * the window is a crash loop: one log line, no more restarts, and status
 * shows "crashloop" until `onehop reload` (or a restart of the master)
 * tries again.
 *
 * Start-up: supervise_start_all() starts every enabled row; the master
 * answers `onehop start` once all have said READY, or with the first
 * daemon's own failure text (then every daemon is stopped).
 *
 * Stop: STOP to every daemon, step by step (table.h enum stop_step): first
 * those that take work in and those that deliver; once these have exited
 * or closed their link (their deliveries under way answered to the router;
 * at most two thirds of stop_timeout_s), the router; once it exited, the
 * cleaner and the dnscache. At most stop_timeout_s for all to exit, then
 * SIGKILL to what is left (logged and reported). The queue is the
 * truth: a daemon killed here loses nothing that was acknowledged.
 */
#ifndef ONEHOP_MASTER_SUPERVISE_H
#define ONEHOP_MASTER_SUPERVISE_H

#include "master/master.h"

/* Fill m->procs from the table: enabled rows, their accounts (root), the
 * channels. 0, or -1 with err (a missing account or program). */
int supervise_init(struct master *m, struct buf *err);
void supervise_start_all(struct master *m);
/* SIGCHLD: reap every exited child and act on it. */
void supervise_reap(struct master *m);
/* RELOAD to every ready daemon; crash-looped ones are started again. */
void supervise_reload(struct master *m);
/* Begin the stop (idempotent); supervise_stopped() is called when done. */
void supervise_stop_all(struct master *m);
/* Called by supervise when every daemon is gone during a stop (main.c). */
void master_stopped(struct master *m);
/* Called once every enabled daemon said READY, or one failed (why). */
void master_ready(struct master *m, const char *why);

#endif
