/*
 * daemon_link — how a daemon started by the master (onehop-master) talks to
 * it, and how the master talks back: one connected Unix socket (one end of
 * a socketpair), inherited by the daemon as the descriptor named by the
 * environment variable ONEHOP_MASTER_FD.
 *
 * Records (ipc.h) on that socket, each at most DLINK_RECORD_MAX bytes:
 *
 *     daemon -> master   DLINK_READY         the daemon accepts work now
 *                        DLINK_FAILED  STR   it cannot start: its own error
 *                                            text (`onehop start` prints it);
 *                                            it exits next
 *     master -> daemon   DLINK_RELOAD        re-read the configuration/maps
 *                        DLINK_STOP          stop gracefully (finish or give
 *                                            back in-flight work) and exit
 *                        DLINK_METRICS       send your metrics now
 *     daemon -> master   DLINK_METRICS_TEXT BYTES   the answer: the daemon's
 *                                            registry rendered (metrics.h),
 *                                            at most METRICS_TEXT_MAX bytes
 *
 * DLINK_METRICS is answered by the link itself (daemon_link_next() and
 * daemon_link_uv), from the process's registry: a daemon only registers
 * and bumps its metrics.
 *
 * When the master's end closes (the master died, even by kill -9), the
 * daemon exits at once: no orphan keeps running without its supervisor.
 *
 * This is the plain form, free of libuv (the poll(2) `onehop-queue
 * --server` and the cleaner, which build against musl, use it):
 * daemon_link_open() takes the descriptor from the environment, the caller
 * polls l->fd for input and calls daemon_link_next() until it returns 0.
 * daemon_link_uv.h wraps it for libuv daemons. The master uses the same
 * records (daemon_link_encode/decode) on its ends, through channel.h.
 *
 * Before READY, a log_fatal()/log_die() of the daemon is also sent to the
 * master as DLINK_FAILED, so a daemon that dies during start-up reports
 * its own reason without doing anything itself.
 *
 * Must never: block on the socket (it is non-blocking), trust a record
 * (every one is checked; a malformed one ends the link), or leave the
 * descriptor to a program the daemon runs (close-on-exec).
 */
#ifndef ONEHOP_DAEMON_LINK_H
#define ONEHOP_DAEMON_LINK_H

#include <stddef.h>

#include "buf.h"
#include "channel_core.h"
#include "metrics.h"

#define DAEMON_LINK_ENV "ONEHOP_MASTER_FD"
#define DLINK_RECORD_MAX (METRICS_TEXT_MAX + 64)
#define DLINK_TEXT_MAX 2048

enum dlink_type {
    DLINK_READY = 1,
    DLINK_FAILED = 2,
    DLINK_RELOAD = 3,
    DLINK_STOP = 4,
    DLINK_METRICS = 5,
    DLINK_METRICS_TEXT = 6
};

struct daemon_link {
    int fd;            /* -1 when the daemon was not started by a master */
    int ready;         /* READY was sent */
    struct chan_in in; /* bytes read and not yet taken as records */
    struct buf text;   /* the text of the last DLINK_FAILED */
    const char *why;   /* why the link ended (daemon_link_next() returned -1) */
};

/* The records, for both ends (the master drives its ends with channel.h):
 * append one to out; decode one whole record (the type, the text of FAILED
 * or METRICS_TEXT into text), or -1 when it is not exactly one of ours. */
void daemon_link_encode(struct buf *out, enum dlink_type type, const char *text);
int daemon_link_decode(const void *data, size_t len, struct buf *text);

/* The daemon's side. Returns 0 with l->fd >= 0 when ONEHOP_MASTER_FD names
 * a connected socket, 0 with l->fd == -1 when the variable is not set (run
 * by hand or by a test), and -1 with *why when it is set but unusable. The
 * variable is removed from the environment; the descriptor is made
 * non-blocking and close-on-exec. */
int daemon_link_open(struct daemon_link *l, const char **why);
/* Send READY / FAILED(text) / RELOAD / STOP: 0, or -1 with errno. Each is
 * a no-op returning 0 when l->fd is -1. */
int daemon_link_send(struct daemon_link *l, enum dlink_type type, const char *text);
int daemon_link_ready(struct daemon_link *l);
/* Read what the socket holds and return the next record's type (a FAILED
 * text is in l->text; METRICS is answered here and not returned), 0 when no whole record is there yet (wait for input,
 * then call again), or -1 when the link ended: end of file, a read error,
 * or a malformed record (l->why says which). Call it until it returns 0 or
 * -1: records already read are returned before the socket is read again. */
int daemon_link_next(struct daemon_link *l);
void daemon_link_close(struct daemon_link *l);

#endif
