/*
 * channel — the one message channel between any two onehop processes: a
 * connected Unix stream socket (a socketpair, or accepted from a listener)
 * driven by libuv (a uv_poll_t on the socket and our own sendmsg/recvmsg,
 * because libuv's IPC pipes cannot carry plain descriptors). The framing
 * and descriptor rules are those of channel_core.h; records are ipc.h's.
 *
 * Contract:
 *   - reading: every whole record goes to on_record with its descriptors.
 *     The handler takes a descriptor with chan_record_take_fd; the channel
 *     closes every descriptor not taken when the handler returns. A handler
 *     that returns a reason (a static string) rejects the record: the
 *     channel logs one line "channel NAME: REASON", closes its descriptors
 *     and closes the channel. A record over max_record, a malformed header,
 *     descriptors beyond max_fds (or any on a channel that takes none) do
 *     the same; the channel never guesses and never crashes.
 *   - writing: channel_send queues a record (with descriptors, which the
 *     channel owns from then on and closes once sent or when it closes)
 *     and writes it at once unless the channel is corked. It returns 1 while
 *     the queue is under the high-water mark and 0 once it reaches it: the
 *     producer should pause; on_drain is called once the queue falls below
 *     the low-water mark after a 0, from the loop (never inside the
 *     producer's own channel_send or channel_uncork). A queue past hard_limit (a producer that
 *     ignores the 0) closes the channel: a peer that does not read never
 *     makes a daemon buffer without bound.
 *   - closing: the peer closing (EOF, ECONNRESET, EPIPE), also mid-record,
 *     and every error above are reported once through on_close with the
 *     reason; after on_close no callback runs and the channel frees itself
 *     (do not use the pointer again). channel_close() by the owner closes
 *     without on_close. Both are safe inside any callback of the channel.
 *   - corking: records sent while corked (and during on_record: the channel
 *     corks itself while it dispatches one read) leave together in as few
 *     writes as the socket allows when it is uncorked.
 *   - rounds (channel_batch_rounds, opt-in): every record sent while the
 *     loop runs waits for the end of that loop round (the prepare phase,
 *     just before the loop waits for events) and they leave together: one
 *     write for a run of records without descriptors, one sendmsg per
 *     record with descriptors (its first byte, channel_core.h's rule), in
 *     the order sent. No record waits longer than the round that sent it;
 *     channel_close gives what is queued one non-blocking write first.
 *
 * The listener accepts on a Unix socket only the peers whose uid is in a
 * given set (SO_PEERCRED); any other connection is closed at once with one
 * log line naming the listener, the uid and the pid.
 *
 * Must never: block, buffer without bound, leak a descriptor, or call a
 * callback after on_close or channel_close.
 */
#ifndef ONEHOP_CHANNEL_H
#define ONEHOP_CHANNEL_H

#include <sys/types.h>

#include <uv.h>

#include "buf.h"
#include "channel_core.h"

struct channel;

struct channel_ops {
    /* A whole record: NULL to accept it, or a reason to reject it (the
     * channel closes). May send, cork, pause, close. */
    const char *(*on_record)(void *arg, struct channel *ch, struct chan_record *rec);
    /* The write queue fell below the low-water mark after channel_send
     * returned 0. May be NULL. */
    void (*on_drain)(void *arg, struct channel *ch);
    /* The channel closed (peer gone or an error); reason names why. The
     * channel is freed after this returns. */
    void (*on_close)(void *arg, struct channel *ch, const char *reason);
};

struct channel_opts {
    const char *name;  /* for log lines, e.g. "dnscache client uid 105"; copied */
    size_t max_record; /* 0: IPC_RECORD_MAX */
    unsigned max_fds;  /* per record, <= CHAN_FDS_MAX; 0: takes none */
    size_t high_water; /* 0: 256 KiB */
    size_t low_water;  /* 0: high_water / 4 */
    size_t hard_limit; /* 0: 4 * high_water + max_record */
};

/* Drive fd (a connected Unix stream socket; set non-blocking here; the
 * channel owns it and closes it). NULL with err if libuv refuses it (then
 * fd is closed too). */
struct channel *channel_open(uv_loop_t *loop, int fd, const struct channel_opts *opts,
                             const struct channel_ops *ops, void *arg, struct buf *err);
/* Queue rec[0..len) (a whole ipc record) with descriptors fds[0..nfds).
 * 1: go on; 0: at the high-water mark, pause until on_drain; -1: the
 * channel is closed or closing (descriptors closed). */
int channel_send(struct channel *ch, const void *rec, size_t len, const int *fds, unsigned nfds);
/* The same for every record in records (no descriptors). */
int channel_send_buf(struct channel *ch, const struct buf *records);
/* From now on, what one loop round sends leaves at the end of the round
 * (see "rounds" above): fewer writes for a producer of many records. */
void channel_batch_rounds(struct channel *ch);
void channel_cork(struct channel *ch);
/* Write what the cork held. */
void channel_uncork(struct channel *ch);
/* Stop and resume reading (a producer of answers paused by its peer). */
void channel_pause_reading(struct channel *ch);
void channel_resume_reading(struct channel *ch);
/* Bytes queued and not yet written. */
size_t channel_pending(const struct channel *ch);
/* The peer's credentials, taken when the channel was opened (uid and gid
 * -1 when SO_PEERCRED failed). */
const struct chan_cred *channel_peer(const struct channel *ch);
const char *channel_name(const struct channel *ch);
/* Close now, without on_close; queued output is dropped (on a channel that
 * batches rounds it gets one non-blocking write first). NULL is fine. */
void channel_close(struct channel *ch);
/* A last word before a protocol error closes the channel: cb runs when
 * the channel (or on_record's rejection) found an error, before on_close;
 * what it sends gets one non-blocking write, then the channel closes. For
 * protocols that answer a bad request with an error record. */
typedef void (*channel_error_cb)(void *arg, struct channel *ch, const char *reason);
void channel_set_error_reply(struct channel *ch, channel_error_cb cb);

/* --------------------------------------------------------------- listener ---- */

struct channel_listener;

/* A connection the uid check let in: fd is connected, non-blocking and
 * close-on-exec, and belongs to the callback (usually channel_open). */
typedef void (*channel_accept_cb)(void *arg, int fd, const struct chan_cred *peer);

/* Accept on fd (a bound, listening Unix stream socket; the listener owns
 * it) only peers whose uid is in uids[0..nuids) (copied). name appears in
 * the log line of a refused peer. NULL with err on failure. */
struct channel_listener *channel_listen_fd(uv_loop_t *loop, int fd, const char *name,
                                           const uid_t *uids, size_t nuids, channel_accept_cb cb,
                                           void *arg, struct buf *err);
/* Create the socket at path (mode applied with chmod after bind; a stale
 * socket nobody answers on is replaced, a live one is an error) and
 * listen on it as channel_listen_fd does. */
struct channel_listener *channel_listen_path(uv_loop_t *loop, const char *path, mode_t mode,
                                             const uid_t *uids, size_t nuids, channel_accept_cb cb,
                                             void *arg, struct buf *err);
/* The same, with name in the log lines and in the error for a live
 * socket ("another NAME is serving PATH"). */
struct channel_listener *channel_listen_named(uv_loop_t *loop, const char *path, const char *name,
                                              mode_t mode, const uid_t *uids, size_t nuids,
                                              channel_accept_cb cb, void *arg, struct buf *err);
/* Connections refused so far (for counters and tests). */
uint64_t channel_listener_refused(const struct channel_listener *l);
/* Stop accepting and close the socket (the path is not unlinked). */
void channel_listener_close(struct channel_listener *l);

#endif
