/*
 * inject_client — one message into the queue through a one-shot
 * onehop-queue (DAEMON_DIR/onehop-queue -C CONFIG_DIR, the queue account's
 * writer) on two pipes, speaking inject_proto.h: what the router does for
 * a bounce (router/bounce.c) and the local agent for a ~/.forward
 * (local/forward.c). The caller builds its transaction's records with the
 * inject_put_* calls and sends them (all at once or in pieces); the answer
 * is INJ_OK with the new message id, or INJ_FAIL with its reason.
 *
 * fork and exec (a caller may be a single-threaded event loop; the child
 * restores SIGPIPE and exits 75, temporary, when exec fails). Every read and
 * write is bounded by the timeout given at the start. Must never: report
 * a message queued before onehop-queue said INJ_OK for this transaction,
 * or leave the child unreaped.
 */
#ifndef ONEHOP_INJECT_CLIENT_H
#define ONEHOP_INJECT_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "conf.h"

#define INJECT_CLIENT_TXN 1 /* the one transaction of a one-shot writer */

struct inject_client {
    pid_t pid;
    int to, from; /* its standard input and output */
    int timeout_ms;
};

/* Start the writer: 0, or -1 with why. */
int inject_client_start(struct inject_client *ic, const struct conf *c, int timeout_ms,
                        struct buf *why);
/* INJ_BEGIN (sender; "" the null sender) and one INJ_RCPT per recipient. */
void inject_put_envelope(struct buf *out, const char *sender, const char *const *rcpts, size_t n);
/* p[0..len) as INJ_DATA records of at most INJ_DATA_MAX bytes. */
void inject_put_data(struct buf *out, const char *p, size_t len);
void inject_put_end(struct buf *out);
/* Write records to the writer: 0, or -1 with errno. */
int inject_client_send(struct inject_client *ic, const struct buf *records);
/* The writer's answer: 0 and id (QUEUE_ID_LEN + 1 bytes); -1 temporary
 * (no answer, a malformed one, or INJ_FAIL with the temporary status), -2
 * permanent (INJ_FAIL otherwise); why says which. */
int inject_client_answer(struct inject_client *ic, char *id, struct buf *why);
/* Close both pipes and reap the writer. */
void inject_client_end(struct inject_client *ic);

#endif
