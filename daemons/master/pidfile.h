/*
 * pidfile — one master per instance: run_dir/master.pid, flock'd by the
 * running master for its whole life and holding its pid.
 *
 * The lock, not the pid, says whether a master runs: a pid file nobody
 * holds is stale (its master was killed) and is taken over and rewritten;
 * one that is locked means the instance runs, and a second master refuses.
 * Must never: trust the pid in the file to decide anything but the text of
 * a message.
 */
#ifndef ONEHOP_MASTER_PIDFILE_H
#define ONEHOP_MASTER_PIDFILE_H

#include <sys/types.h>

#include "buf.h"

/* Lock and write run_dir/master.pid (run_dir made 0755 if missing). Returns the descriptor (keep it
 * open; close-on-exec), or -1 with err ("the instance DIR is already running (master pid N)").
 * *stale_pid is the pid of a stale file taken over, or 0. */
int pidfile_take(const char *run_dir, const char *confdir, long *stale_pid, struct buf *err);
/* Remove the file (still locked), then close fd. */
void pidfile_release(int fd, const char *run_dir);
/* The pid of the running master of run_dir, -1 when it runs but has not
 * written its pid yet, or 0 when none holds the lock. */
long pidfile_running(const char *run_dir);

#endif
