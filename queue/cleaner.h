/*
 * cleaner — `onehop-queue --clean`: the queue account's hands for the
 * router (qmail-clean's role). The router owns delivery state but may not
 * change the message tree; it asks the cleaner, over clean_proto.h's
 * records, to take, reclaim, remove and quarantine message files, and to
 * run the writer-side recovery. docs/INTERNALS.md "Ownership and the
 * cleaner" has the crash table.
 * Must never: act on anything but a well-formed id's own file, follow a
 * symlink, open anything but a regular file, touch state/, or answer
 * before the change is done.
 */
#ifndef ONEHOP_CLEANER_H
#define ONEHOP_CLEANER_H

#include "buf.h"
#include "clean_proto.h"
#include "queue.h"

/* Carry out one decoded request on q and append its reply record to reply
 * (CLEAN_OK or CLEAN_ERR, clean_proto.h). Logs each change. */
void cleaner_apply(struct queue *q, const struct clean_request *rq, struct buf *reply);

/* Serve requests read from in_fd, replies written to out_fd, one per
 * request in order, until in_fd ends. Returns the exit status: 0 at the end
 * of input, 70 on a protocol violation (logged), 75 when the replies can no
 * longer be written. */
int cleaner_serve(struct queue *q, int in_fd, int out_fd);
/* The same, hearing the master's link between requests (daemon_link.h):
 * STOP, or the link closing (the master died), ends it with status 0
 * after the request in hand; RELOAD is ignored. link NULL or without a
 * descriptor: cleaner_serve. */
struct daemon_link;
int cleaner_serve_linked(struct queue *q, int in_fd, int out_fd, struct daemon_link *link);

/* The cleaner's start, before it says READY to the master: the writer
 * side's recovery (as RECOVER), so that the router, started after it,
 * finds every committed slot of a crash in incoming/. Nothing when q is
 * NULL. Never call it for a set-uid run. */
void cleaner_start(struct queue *q);

/* onehop-queue --clean: refuses a set-uid run (64) and an unavailable queue
 * (75, with unavailable as the reason); replies go on fd 0 when it is a
 * socket, else on fd 1. */
int cleaner_main(struct queue *q, const char *unavailable, int setid, struct daemon_link *link);

#endif
