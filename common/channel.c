/*
 * channel — a record channel on a Unix stream socket, driven by libuv. See
 * channel.h for the contract and channel_core.h for the wire rules.
 *
 * One uv_poll_t watches the socket: readable while reading is not paused,
 * writable only while the write queue holds bytes the socket refused.
 * Reading does one recvmsg per readable event (libuv polls level-triggered,
 * so a busy peer cannot starve the others) and then hands every whole
 * record out, corked, so that answers produced by one read leave in one
 * write. Closing stops the poll at once; the socket and the memory go in
 * the handle's close callback, so a channel closed inside one of its own
 * callbacks stays valid until that callback returns.
 *
 * Must never: call a callback after on_close or channel_close, write past
 * the hard limit, or block.
 */
#include "channel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "mem.h"

#define DEFAULT_HIGH_WATER (256u * 1024)
#define LISTEN_BACKLOG 256
#define ACCEPTS_PER_EVENT 64

struct channel {
    uv_poll_t poll;
    uv_prepare_t round; /* the end of a loop round, for channel_batch_rounds */
    int handles;        /* libuv handles to close before the memory goes */
    int batching, round_due;
    int fd;
    char *name;
    struct channel_ops ops;
    void *arg;
    struct chan_in in;
    struct chan_out out;
    size_t high_water, low_water, hard_limit;
    struct chan_cred peer;
    channel_error_cb error_reply;
    unsigned corked;
    int dispatching, read_paused, write_blocked, told_pause, drain_due, closed;
};

static void update_poll(struct channel *ch);
static void dispatch(struct channel *ch);

/* ------------------------------------------------------------ closing ---- */

static void on_channel_closed(uv_handle_t *h)
{
    struct channel *ch = h->data;
    if (--ch->handles > 0)
        return;
    close(ch->fd);
    free(ch->name);
    free(ch);
}

/* Stop everything now; the memory goes with the handle. */
static void shut(struct channel *ch)
{
    ch->closed = 1;
    uv_poll_stop(&ch->poll);
    chan_in_free(&ch->in);
    chan_out_free(&ch->out);
    uv_close((uv_handle_t *)&ch->poll, on_channel_closed);
    if (ch->batching)
        uv_close((uv_handle_t *)&ch->round, on_channel_closed);
}

/* The channel ends for reason; protocol errors are logged (one line). */
static void end_channel(struct channel *ch, const char *reason, int log_it)
{
    if (ch->closed)
        return;
    if (log_it)
        log_warn("channel %s: %s; closed", ch->name, reason);
    if (log_it && ch->error_reply) {
        channel_error_cb reply = ch->error_reply;
        ch->error_reply = NULL; /* once */
        ch->corked++;           /* what it sends waits for the one write below */
        reply(ch->arg, ch, reason);
        if (!ch->closed)
            chan_out_write(&ch->out, ch->fd);
        if (ch->closed)
            return; /* the reply closed it */
    }
    shut(ch);
    if (ch->ops.on_close)
        ch->ops.on_close(ch->arg, ch, reason);
}

void channel_close(struct channel *ch)
{
    if (!ch || ch->closed)
        return;
    if (ch->round_due && !ch->write_blocked)
        chan_out_write(&ch->out, ch->fd); /* the round's records: one try */
    shut(ch);
}

/* ------------------------------------------------------------ writing ---- */

/* The queue fell below the low-water mark after a pause. From the poll
 * callback on_drain runs at once; elsewhere (inside channel_send or
 * channel_uncork) it is due at the next writable event, so the producer
 * never hears it inside its own call. */
static void check_drain(struct channel *ch, int from_loop)
{
    if (!ch->told_pause || chan_out_pending(&ch->out) >= ch->low_water)
        return;
    if (!from_loop) {
        if (!ch->drain_due) {
            ch->drain_due = 1;
            update_poll(ch);
        }
        return;
    }
    ch->told_pause = 0;
    if (ch->drain_due) {
        ch->drain_due = 0;
        update_poll(ch);
    }
    if (ch->ops.on_drain)
        ch->ops.on_drain(ch->arg, ch);
}

static void flush(struct channel *ch, int from_loop)
{
    int rc = chan_out_write(&ch->out, ch->fd);
    if (rc < 0) {
        int peer_gone = errno == EPIPE || errno == ECONNRESET;
        end_channel(ch, peer_gone ? "peer closed the connection" : strerror(errno), !peer_gone);
        return;
    }
    int blocked = rc == 0;
    if (blocked != ch->write_blocked) {
        ch->write_blocked = blocked;
        update_poll(ch);
    }
    check_drain(ch, from_loop);
}

/* The loop is about to wait: what this round sent goes out now. */
static void on_round_end(uv_prepare_t *h)
{
    struct channel *ch = h->data;
    uv_prepare_stop(h);
    ch->round_due = 0;
    if (--ch->corked == 0 && !ch->closed && !ch->write_blocked && chan_out_pending(&ch->out) > 0)
        flush(ch, 1);
}

/* Cork until the end of this loop round. */
static void hold_for_round(struct channel *ch)
{
    ch->round_due = 1;
    ch->corked++;
    uv_prepare_start(&ch->round, on_round_end);
}

void channel_batch_rounds(struct channel *ch)
{
    if (ch->closed || ch->batching)
        return;
    uv_prepare_init(ch->poll.loop, &ch->round);
    ch->round.data = ch;
    ch->handles++;
    ch->batching = 1;
}

int channel_send(struct channel *ch, const void *rec, size_t len, const int *fds, unsigned nfds)
{
    if (ch->closed) {
        for (unsigned i = 0; i < nfds; i++)
            close(fds[i]);
        return -1;
    }
    chan_out_add(&ch->out, rec, len, fds, nfds);
    if (ch->batching && !ch->round_due && !ch->write_blocked)
        hold_for_round(ch);
    if (!ch->corked && !ch->write_blocked)
        flush(ch, 0);
    if (ch->closed)
        return -1;
    size_t pending = chan_out_pending(&ch->out);
    if (pending > ch->hard_limit) {
        end_channel(ch, "peer does not read: write queue over its limit", 1);
        return -1;
    }
    if (pending >= ch->high_water) {
        ch->told_pause = 1;
        return 0;
    }
    return 1;
}

int channel_send_buf(struct channel *ch, const struct buf *records)
{
    return channel_send(ch, records->s, records->len, NULL, 0);
}

void channel_cork(struct channel *ch)
{
    ch->corked++;
}

void channel_uncork(struct channel *ch)
{
    if (ch->corked > 0 && --ch->corked == 0 && !ch->closed && !ch->write_blocked &&
        chan_out_pending(&ch->out) > 0)
        flush(ch, 0);
}

size_t channel_pending(const struct channel *ch)
{
    return chan_out_pending(&ch->out);
}

/* ------------------------------------------------------------ reading ---- */

/* Hand out every whole record held, unless paused or closed. */
static void dispatch(struct channel *ch)
{
    struct chan_record rec;
    if (ch->dispatching)
        return; /* the outer loop goes on */
    ch->dispatching = 1;
    channel_cork(ch);
    while (!ch->closed && !ch->read_paused) {
        int rc = chan_in_pop(&ch->in, &rec);
        if (rc == 0)
            break;
        if (rc < 0) {
            end_channel(ch, ch->in.error, 1);
            break;
        }
        const char *why = ch->ops.on_record(ch->arg, ch, &rec);
        chan_record_close(&rec);
        if (why)
            end_channel(ch, why, 1);
    }
    ch->dispatching = 0;
    channel_uncork(ch);
}

static void read_ready(struct channel *ch)
{
    ssize_t n = chan_in_read(&ch->in, ch->fd, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0 && errno == EPROTO) {
        end_channel(ch, ch->in.error, 1);
        return;
    }
    if (n <= 0) {
        int partial = chan_in_partial(&ch->in);
        const char *reason = n == 0 ? "peer closed the connection" : strerror(errno);
        if (partial)
            reason = n == 0 ? "peer closed the connection inside a record"
                            : "connection lost inside a record";
        end_channel(ch, reason, partial);
        return;
    }
    dispatch(ch);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct channel *ch = h->data;
    if (status < 0) {
        /* libuv reports POLLERR as UV_EBADF; the socket's own error says
         * what happened. A peer that went away with our records unread
         * resets the connection: that is the peer gone, not a fault. */
        int err = 0;
        socklen_t len = sizeof(err);
        if (status == UV_EBADF && getsockopt(ch->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
            err != 0) {
            int gone = err == ECONNRESET || err == EPIPE;
            end_channel(ch, gone ? "peer closed the connection" : strerror(err), !gone);
        } else {
            end_channel(ch, uv_strerror(status), 1);
        }
        return;
    }
    if ((events & UV_WRITABLE) && !ch->closed)
        flush(ch, 1);
    if ((events & UV_READABLE) && !ch->closed && !ch->read_paused)
        read_ready(ch);
}

static void update_poll(struct channel *ch)
{
    int writable = ch->write_blocked || ch->drain_due;
    int events = (ch->read_paused ? 0 : UV_READABLE) | (writable ? UV_WRITABLE : 0);
    if (ch->closed)
        return;
    if (events)
        uv_poll_start(&ch->poll, events, on_poll);
    else
        uv_poll_stop(&ch->poll);
}

void channel_pause_reading(struct channel *ch)
{
    if (ch->closed || ch->read_paused)
        return;
    ch->read_paused = 1;
    update_poll(ch);
}

void channel_resume_reading(struct channel *ch)
{
    if (ch->closed || !ch->read_paused)
        return;
    ch->read_paused = 0;
    update_poll(ch);
    dispatch(ch); /* records that arrived before the pause */
}

/* ---------------------------------------------------------------- opening ---- */

static void set_limits(struct channel *ch, const struct channel_opts *o)
{
    size_t max_record = o->max_record ? o->max_record : IPC_RECORD_MAX;
    ch->high_water = o->high_water ? o->high_water : DEFAULT_HIGH_WATER;
    ch->low_water = o->low_water ? o->low_water : ch->high_water / 4;
    ch->hard_limit = o->hard_limit ? o->hard_limit : 4 * ch->high_water + max_record;
    chan_in_init(&ch->in, max_record, o->max_fds);
    chan_out_init(&ch->out);
}

struct channel *channel_open(uv_loop_t *loop, int fd, const struct channel_opts *opts,
                             const struct channel_ops *ops, void *arg, struct buf *err)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        buf_printf(err, "channel %s: %s", opts->name, strerror(errno));
        close(fd);
        return NULL;
    }
    struct channel *ch = xcalloc(1, sizeof(*ch));
    int rc = uv_poll_init(loop, &ch->poll, fd);
    if (rc != 0) {
        buf_printf(err, "channel %s: %s", opts->name, uv_strerror(rc));
        close(fd);
        free(ch);
        return NULL;
    }
    ch->poll.data = ch;
    ch->handles = 1;
    ch->fd = fd;
    ch->name = xstrdup(opts->name);
    ch->ops = *ops;
    ch->arg = arg;
    if (chan_peer_cred(fd, &ch->peer) < 0) {
        ch->peer.pid = 0;
        ch->peer.uid = (uid_t)-1;
        ch->peer.gid = (gid_t)-1;
    }
    set_limits(ch, opts);
    update_poll(ch);
    return ch;
}

void channel_set_error_reply(struct channel *ch, channel_error_cb cb)
{
    ch->error_reply = cb;
}

const struct chan_cred *channel_peer(const struct channel *ch)
{
    return &ch->peer;
}

const char *channel_name(const struct channel *ch)
{
    return ch->name;
}

/* --------------------------------------------------------------- listener ---- */

struct channel_listener {
    uv_poll_t poll;
    int fd;
    char *name;
    uid_t *uids;
    size_t nuids;
    channel_accept_cb cb;
    void *arg;
    uint64_t refused;
};

/* Let the peer of fd in, or close it with one log line. */
static void admit(struct channel_listener *l, int fd)
{
    struct chan_cred peer;
    if (chan_peer_cred(fd, &peer) < 0) {
        log_warn("%s: refused a connection: no peer credentials (%s)", l->name, strerror(errno));
        close(fd);
        l->refused++;
        return;
    }
    if (!chan_uid_allowed(peer.uid, l->uids, l->nuids)) {
        log_warn("%s: refused a connection from uid %u (pid %ld): not an allowed account", l->name,
                 (unsigned)peer.uid, (long)peer.pid);
        close(fd);
        l->refused++;
        return;
    }
    l->cb(l->arg, fd, &peer);
}

static void on_listener_poll(uv_poll_t *h, int status, int events)
{
    struct channel_listener *l = h->data;
    for (int i = 0; i < ACCEPTS_PER_EVENT && status == 0; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log_warn("%s: accept: %s", l->name, strerror(errno));
            if (errno != EINTR && errno != ECONNABORTED)
                break;
            continue;
        }
        admit(l, fd);
    }
}

struct channel_listener *channel_listen_fd(uv_loop_t *loop, int fd, const char *name,
                                           const uid_t *uids, size_t nuids, channel_accept_cb cb,
                                           void *arg, struct buf *err)
{
    int flags = fcntl(fd, F_GETFL);
    int rc =
        flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? uv_translate_sys_error(errno) : 0;
    struct channel_listener *l = xcalloc(1, sizeof(*l));
    if (rc == 0)
        rc = uv_poll_init(loop, &l->poll, fd);
    if (rc != 0) {
        buf_printf(err, "%s: %s", name, uv_strerror(rc));
        close(fd);
        free(l);
        return NULL;
    }
    l->poll.data = l;
    l->fd = fd;
    l->name = xstrdup(name);
    l->uids = xcalloc(nuids ? nuids : 1, sizeof(uid_t));
    memcpy(l->uids, uids, nuids * sizeof(uid_t));
    l->nuids = nuids;
    l->cb = cb;
    l->arg = arg;
    rc = uv_poll_start(&l->poll, UV_READABLE, on_listener_poll);
    if (rc != 0) {
        buf_printf(err, "%s: %s", name, uv_strerror(rc));
        channel_listener_close(l);
        return NULL;
    }
    return l;
}

static int fill_sockaddr(struct sockaddr_un *sa, const char *path, struct buf *err)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path)) {
        buf_printf(err, "socket path %s is longer than %zu bytes", path, sizeof(sa->sun_path) - 1);
        return -1;
    }
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

/* Refuse to take over from a live server; remove a stale socket file. */
static int claim_path(const struct sockaddr_un *sa, const char *what, struct buf *err)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
        close(fd);
        buf_printf(err, "another %s is serving %s", what, sa->sun_path);
        return -1;
    }
    if (fd >= 0)
        close(fd);
    if (unlink(sa->sun_path) < 0 && errno != ENOENT) {
        buf_printf(err, "cannot remove stale socket %s: %s", sa->sun_path, strerror(errno));
        return -1;
    }
    return 0;
}

/* socket, bind (born with mode: no window where it is wider), listen at
 * once (a bound socket that does not listen yet looks stale to a second
 * server's claim_path), then the mode again whatever the umask did. */
static int bind_path(const struct sockaddr_un *sa, mode_t mode, struct buf *err)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        buf_printf(err, "socket: %s", strerror(errno));
        return -1;
    }
    mode_t old = umask(~mode & 0777);
    int rc = bind(fd, (const struct sockaddr *)sa, sizeof(*sa));
    umask(old);
    if (rc == 0)
        rc = listen(fd, LISTEN_BACKLOG);
    if (rc == 0)
        rc = chmod(sa->sun_path, mode);
    if (rc < 0) {
        buf_printf(err, "listen on %s: %s", sa->sun_path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* name: in log lines; what: in the error for a live socket. */
static struct channel_listener *listen_at(uv_loop_t *loop, const char *path, const char *name,
                                          const char *what, mode_t mode, const uid_t *uids,
                                          size_t nuids, channel_accept_cb cb, void *arg,
                                          struct buf *err)
{
    struct sockaddr_un sa;
    if (fill_sockaddr(&sa, path, err) < 0 || claim_path(&sa, what, err) < 0)
        return NULL;
    int fd = bind_path(&sa, mode, err);
    if (fd < 0)
        return NULL;
    struct channel_listener *l = channel_listen_fd(loop, fd, name, uids, nuids, cb, arg, err);
    if (!l)
        unlink(path);
    return l;
}

struct channel_listener *channel_listen_path(uv_loop_t *loop, const char *path, mode_t mode,
                                             const uid_t *uids, size_t nuids, channel_accept_cb cb,
                                             void *arg, struct buf *err)
{
    return listen_at(loop, path, path, "process", mode, uids, nuids, cb, arg, err);
}

struct channel_listener *channel_listen_named(uv_loop_t *loop, const char *path, const char *name,
                                              mode_t mode, const uid_t *uids, size_t nuids,
                                              channel_accept_cb cb, void *arg, struct buf *err)
{
    return listen_at(loop, path, name, name, mode, uids, nuids, cb, arg, err);
}

uint64_t channel_listener_refused(const struct channel_listener *l)
{
    return l->refused;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct channel_listener *l = h->data;
    close(l->fd);
    free(l->name);
    free(l->uids);
    free(l);
}

void channel_listener_close(struct channel_listener *l)
{
    if (!l)
        return;
    uv_poll_stop(&l->poll);
    uv_close((uv_handle_t *)&l->poll, on_listener_closed);
}
