/*
 * inject_server — onehop-queue's two modes (inject_proto.h): the one-shot
 * run exec'd by sendmail and the persistent group-committing server used by
 * smtpd. Both get the context onehop-queue.c prepared (privileges, config,
 * the open queue) and return the process exit status.
 */
#ifndef ONEHOP_INJECT_SERVER_H
#define ONEHOP_INJECT_SERVER_H

#include <stdint.h>
#include <sys/types.h>

#include "queue.h"

struct inj_ctx {
    struct queue *q;         /* NULL when the queue could not be opened */
    const char *unavailable; /* why the queue is unavailable (then q is NULL) */
    uint64_t size_limit;     /* message_size_limit */
    const char *run_dir;     /* for the router trigger */
    uid_t uid;               /* the real uid (one-shot "uid" attribute) */
};

int inject_oneshot(struct inj_ctx *cx);
int inject_server(struct inj_ctx *cx);

#endif
