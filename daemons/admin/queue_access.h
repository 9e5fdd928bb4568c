/*
 * queue_access — how the queue subcommands of `onehop` (queue, qstat,
 * qshape, delete, hold, release, flush) reach an instance's queue: load DIR/onehop.conf,
 * then open queue_dir. Configuration errors are printed as FILE:LINE:
 * message and fail the command: acting on the wrong queue is worse than
 * not acting.
 */
#ifndef ONEHOP_ADMIN_QUEUE_ACCESS_H
#define ONEHOP_ADMIN_QUEUE_ACCESS_H

#include "conf.h"
#include "queue.h"

/* Returns 0 with c loaded and *q open (NULL when the queue directory does
 * not exist yet: an empty queue), or 1 after printing why (c is then freed). */
int admin_queue_open(const char *confdir, struct conf *c, struct queue **q);
void admin_queue_close(struct conf *c, struct queue *q);
/* The two steps of admin_queue_open, for commands that ask the router
 * first and open the queue only when none runs: 0, or 1 after printing why
 * (c is then freed). */
int admin_conf_open(const char *confdir, struct conf *c);
int admin_queue_attach(struct conf *c, struct queue **q);

#endif
