/*
 * master_proto — the records of the master's control socket
 * (run_dir/master.sock), spoken by `onehop stop`, `reload` and `status`
 * (ipc.h records; the master accepts only root and its own uid, by peer
 * credentials).
 *
 *     client -> master   MCTL_STATUS | MCTL_RELOAD | MCTL_STOP | MCTL_METRICS
 *                                   (no fields)
 *     master -> client   MCTL_PROC name, pid, user, uid, started, restarts, state
 *                                   (status: one per process, the master first)
 *                        MCTL_OK text     the end of a successful answer (text
 *                                         "" or a note, e.g. who was killed)
 *                        MCTL_ERR text    a refusal (reload: the configuration's
 *                                         FILE:LINE: errors, one per line)
 *                        MCTL_CHUNK text  metrics: a piece of the Prometheus
 *                                         text (whole lines), then MCTL_OK ""
 *
 * STATUS is answered at once; RELOAD once the configuration was checked
 * and RELOAD sent to every daemon; METRICS once every running daemon
 * answered DLINK_METRICS or its bound passed (onehop-master(8)); STOP once every daemon has exited (at
 * most the stop bound, onehop-master(8)), just before the master exits.
 * One request per connection.
 */
#ifndef ONEHOP_MASTER_PROTO_H
#define ONEHOP_MASTER_PROTO_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"

#define MASTER_SOCKET_NAME "master.sock"
#define MASTER_PID_NAME "master.pid"
#define MCTL_RECORD_MAX 65536
#define MCTL_TEXT_MAX 60000

enum mctl_type {
    MCTL_STATUS = 1,
    MCTL_RELOAD = 2,
    MCTL_STOP = 3,
    MCTL_METRICS = 4,
    MCTL_PROC = 10,
    MCTL_OK = 11,
    MCTL_ERR = 12,
    MCTL_CHUNK = 13
};

struct mctl_proc {
    const char *name, *user, *state;
    uint32_t pid, uid, restarts;
    uint64_t started; /* Unix time; 0 when not running */
};

void mctl_encode_request(struct buf *out, enum mctl_type type);
void mctl_encode_proc(struct buf *out, const struct mctl_proc *p);
void mctl_encode_text(struct buf *out, enum mctl_type type, const char *text);

/* Decoded record; strings point into the reader, valid until ipc_close. */
struct mctl_msg {
    int type;
    struct mctl_proc proc;
    const char *text;
};
struct ipc_reader;
/* 0 with m filled, or -1 when data[0..len) is not exactly one of ours. */
int mctl_decode(struct ipc_reader *r, const void *data, size_t len, struct mctl_msg *m);

#endif
