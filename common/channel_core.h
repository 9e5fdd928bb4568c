/*
 * channel_core — the framing and descriptor core of every onehop channel,
 * free of libuv so that the poll(2) programs built with musl (onehop-queue
 * --server, --clean) and blocking tools share it with the libuv channel
 * (channel.h). Records are those of ipc.h; this module only finds their
 * boundaries (ipc_frame) and carries descriptors with them.
 *
 * Descriptors on the wire (SCM_RIGHTS on a Unix stream socket):
 *   - the sender passes a record's descriptors with the FIRST BYTE of that
 *     record, alone in its own sendmsg(2); the rest of the record follows
 *     in ordinary writes;
 *   - Linux ends a recvmsg(2) on a stream socket right after the first
 *     message that carries descriptors, so a read that returns descriptors
 *     ends exactly on the first byte of their record. The reader attributes
 *     them to the record that starts at the last byte of that read;
 *   - descriptors that end a read anywhere else (inside a record), more
 *     descriptors than the channel allows for one record (max_fds; 0 means
 *     the channel takes none), or a truncated control message (MSG_CTRUNC)
 *     are a protocol error: the reader fails, and every descriptor it holds
 *     is closed. Received descriptors are always close-on-exec
 *     (MSG_CMSG_CLOEXEC).
 *
 * Ownership: descriptors popped with a record belong to the caller; those
 * still in a reader or writer are closed by chan_in_free/chan_out_free.
 * Descriptors given to chan_out_add belong to the writer from then on and
 * are closed once sent (dup() first to keep a copy).
 *
 * Must never: read or write outside its buffers, hand a record out before
 * all of its bytes are there, lose or leak a descriptor, or guess which
 * record a descriptor belongs to.
 */
#ifndef ONEHOP_CHANNEL_CORE_H
#define ONEHOP_CHANNEL_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

/* The most descriptors one record may carry on any channel. */
#define CHAN_FDS_MAX 8

/* Descriptors waiting for (reader) or travelling with (writer) the record
 * that starts at byte `offset` of the buffer. */
struct chan_fds {
    size_t offset;
    int fd[CHAN_FDS_MAX];
    unsigned n;
};

/* ---------------------------------------------------------------- reader ---- */

struct chan_in {
    struct buf data;         /* bytes received; data.s[head] starts a record */
    size_t head;             /* bytes before it: the record popped last */
    size_t max_record;       /* 0: IPC_RECORD_MAX */
    unsigned max_fds;        /* per record; 0: the channel takes none */
    struct chan_fds *attach; /* in offset order, from attach_head on */
    size_t nattach, attach_cap, attach_head;
    const char *error; /* sticky: once set, nothing more is accepted */
};

/* One record popped from a reader: data[0..len) is a whole ipc record (for
 * ipc_open), valid until the next feed or read into the reader; fd[0..nfds) are the
 * caller's (an entry set to -1 was taken; chan_record_close closes the rest). */
struct chan_record {
    const char *data;
    size_t len;
    int fd[CHAN_FDS_MAX];
    unsigned nfds;
};

void chan_in_init(struct chan_in *in, size_t max_record, unsigned max_fds);
/* Close held descriptors, free memory. */
void chan_in_free(struct chan_in *in);
/* Feed n bytes that one read returned, with the descriptors that read
 * returned (ownership passes to the reader, which closes them on error).
 * Returns 0, or -1 with in->error set. */
int chan_in_feed(struct chan_in *in, const void *p, size_t n, const int *fds, unsigned nfds);
/* Pop the next whole record: 1 (rec filled), 0 (more bytes needed), or -1
 * (in->error: bad header, oversized). The bytes of the previous record are
 * dropped at this call. */
int chan_in_pop(struct chan_in *in, struct chan_record *rec);
/* Bytes that complete the record at the head of the buffer (the header
 * first), for readers that must not read past a record; 0 when a whole
 * record or a bad header is there (chan_in_pop tells which). */
size_t chan_in_wanted(const struct chan_in *in);
/* One recvmsg(2) from fd of at most limit bytes (0: as much as fits in a
 * 64 KiB read), fed into in. Returns bytes read (> 0), 0 on EOF, -1 with
 * errno (EAGAIN, ECONNRESET...; EPROTO with in->error for a descriptor
 * error). Retries EINTR. */
ssize_t chan_in_read(struct chan_in *in, int fd, size_t limit);
/* 1 when bytes of an unfinished record are held (EOF now is mid-record). */
int chan_in_partial(const struct chan_in *in);
/* Close the descriptors of rec that were not taken. */
void chan_record_close(struct chan_record *rec);
/* Take rec->fd[i] (the record no longer closes it); -1 if none. */
int chan_record_take_fd(struct chan_record *rec, unsigned i);

/* ---------------------------------------------------------------- writer ---- */

struct chan_out {
    struct buf data; /* queued bytes; data.s[head..len) not sent yet */
    size_t head;
    struct chan_fds *attach; /* offsets into data, ascending */
    size_t nattach, attach_cap, attach_head;
};

void chan_out_init(struct chan_out *out);
/* Close unsent descriptors, free memory. */
void chan_out_free(struct chan_out *out);
/* Queue one whole record (as built by ipc_begin..ipc_finish) with nfds
 * descriptors (nfds <= CHAN_FDS_MAX, else fatal: a bug); the writer owns
 * the descriptors from now on. */
void chan_out_add(struct chan_out *out, const void *rec, size_t len, const int *fds, unsigned nfds);
/* Bytes queued and not yet sent. */
size_t chan_out_pending(const struct chan_out *out);
/* Write as much as the socket takes (MSG_NOSIGNAL; EINTR retried).
 * Returns 1 when the queue is empty, 0 when the socket is full (EAGAIN),
 * -1 with errno on an error (EPIPE, ECONNRESET...). */
int chan_out_write(struct chan_out *out, int fd);

/* ------------------------------------------------------- peer identity ---- */

struct chan_cred {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

/* SO_PEERCRED of a connected Unix socket; 0 or -1 with errno. */
int chan_peer_cred(int fd, struct chan_cred *out);
/* 1 if uid is one of uids[0..n). */
int chan_uid_allowed(uid_t uid, const uid_t *uids, size_t n);

/* ------------------------------------- blocking helpers (simple programs) ---- */

/* Send rec[0..len), one whole record or several, with the descriptors of
 * the first (which stay the caller's: they are duplicated by the kernel,
 * not closed); without descriptors the bytes are written as they are, not
 * copied. Waits at most timeout_ms in total
 * (< 0: no limit). 0, or -1 with errno (ETIMEDOUT on timeout). */
int chan_send_record(int fd, const void *rec, size_t len, const int *fds, unsigned nfds,
                     int timeout_ms);
/* Receive one record (never reading past it) into out, with its
 * descriptors into fds[0..*nfds) (room for CHAN_FDS_MAX; the caller's;
 * fds and nfds may be NULL when max_fds is 0).
 * max_record and max_fds as for chan_in_init; waits at most timeout_ms in
 * total (< 0: no limit). Returns 1 on a record, 0 on a clean EOF before any
 * byte, -1 with *why and errno (ETIMEDOUT, EPROTO for a bad record or
 * descriptors, ECONNRESET...) and no descriptor left open. */
int chan_recv_record(int fd, size_t max_record, unsigned max_fds, int timeout_ms, struct buf *out,
                     int *fds, unsigned *nfds, const char **why);

#endif
