/*
 * inject_server — onehop-queue's two modes (inject_proto.h): the one-shot
 * run exec'd by sendmail and the persistent group-committing server used by
 * smtpd. Both get the context onehop-queue.c prepared (privileges, config,
 * the open queue) and return the process exit status.
 *
 * Server mode started by the master (cx->link with a descriptor: the
 * daemon row "queue", channel QUEUE to smtpd on fd 0): the socket on fd 0
 * carries the replies too, READY is sent once the queue is open (FAILED
 * with the reason otherwise), and STOP lets the open transactions finish
 * and then exits 0; the master's end closing exits at once (70).
 */
#ifndef ONEHOP_INJECT_SERVER_H
#define ONEHOP_INJECT_SERVER_H

#include <stdint.h>
#include <sys/types.h>

#include "daemon_link.h"
#include "queue.h"

struct inj_ctx {
    struct queue *q;         /* NULL when the queue could not be opened */
    const char *unavailable; /* why the queue is unavailable (then q is NULL) */
    uint64_t size_limit;     /* message_size_limit */
    const char *run_dir;     /* for the router trigger */
    uid_t uid;               /* the real uid (one-shot "uid" attribute) */
    struct daemon_link *link; /* server mode under the master, else NULL or fd -1 */
};

int inject_oneshot(struct inj_ctx *cx);
int inject_server(struct inj_ctx *cx);

#endif
