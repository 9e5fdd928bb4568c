/*
 * channel_core — framing and descriptors of a channel, without libuv. See
 * channel_core.h for the wire rules.
 *
 * The reader keeps the bytes it was fed in one buf; `head` is where the
 * next record starts (the bytes before it are the record popped last, still
 * valid for its caller) and the buffer is compacted only when new bytes are
 * fed, so popping many small records costs no copying. Descriptors wait in
 * `attach`, each tied to the offset of the record they arrived with.
 *
 * The writer keeps the bytes not sent yet in one buf from `head` on, and
 * the descriptors of each record tied to that record's first byte; it sends
 * that byte alone with them (sendmsg, SCM_RIGHTS) and the other bytes in as
 * few sends as the socket takes.
 *
 * Must never: compile against libuv (onehop-queue links it with musl),
 * trust a length before checking it, or leave a descriptor neither handed
 * out nor closed.
 */
#include "channel_core.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "mem.h"

#define READ_CHUNK 65536
/* Records with descriptors a reader may hold before they are popped: a
 * read returns the descriptors of at most one record, so this is only
 * reached by a caller that feeds without popping. */
#define ATTACH_HELD_MAX 64

static void close_fds(const int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static uint32_t be32_at(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* ---------------------------------------------------------------- reader ---- */

void chan_in_init(struct chan_in *in, size_t max_record, unsigned max_fds)
{
    memset(in, 0, sizeof(*in));
    in->max_record = max_record ? max_record : IPC_RECORD_MAX;
    in->max_fds = max_fds > CHAN_FDS_MAX ? CHAN_FDS_MAX : max_fds;
}

static void in_close_attached(struct chan_in *in)
{
    for (size_t i = in->attach_head; i < in->nattach; i++)
        close_fds(in->attach[i].fd, in->attach[i].n);
    in->attach_head = in->nattach = 0;
}

void chan_in_free(struct chan_in *in)
{
    in_close_attached(in);
    free(in->attach);
    buf_free(&in->data);
    memset(in, 0, sizeof(*in));
}

static int in_fail(struct chan_in *in, const char *why)
{
    if (!in->error)
        in->error = why;
    in_close_attached(in);
    return -1;
}

/* Drop the bytes of records already popped, and their attachments. */
static void in_compact(struct chan_in *in)
{
    if (in->head == 0)
        return;
    buf_consume(&in->data, in->head);
    size_t keep = in->nattach - in->attach_head;
    if (keep > 0)
        memmove(in->attach, in->attach + in->attach_head, keep * sizeof(*in->attach));
    in->nattach = keep;
    in->attach_head = 0;
    for (size_t i = 0; i < keep; i++)
        in->attach[i].offset -= in->head;
    in->head = 0;
}

/* 0 if a record starts at offset at (walking the headers from head). */
static int in_record_starts_at(const struct chan_in *in, size_t at, const char **why)
{
    size_t pos = in->head;
    while (pos < at) {
        if (in->data.len - pos < 4) {
            *why = "descriptors arrived inside a record header";
            return -1;
        }
        uint32_t len = be32_at(in->data.s + pos);
        if (len < IPC_HEADER_SIZE || len > in->max_record) {
            *why = "record length out of bounds";
            return -1;
        }
        pos += len;
    }
    if (pos != at) {
        *why = "descriptors arrived inside a record";
        return -1;
    }
    return 0;
}

static int in_attach(struct chan_in *in, size_t at, const int *fds, unsigned nfds)
{
    const char *why = NULL;
    if (in->max_fds == 0)
        why = "descriptors on a channel that takes none";
    else if (nfds > in->max_fds)
        why = "more descriptors than a record may carry";
    else if (in->nattach - in->attach_head >= ATTACH_HELD_MAX)
        why = "too many records with descriptors held";
    if (why || in_record_starts_at(in, at, &why) < 0) {
        close_fds(fds, nfds);
        return in_fail(in, why);
    }
    in->attach = xgrow(in->attach, &in->attach_cap, in->nattach + 1, sizeof(*in->attach));
    struct chan_fds *a = &in->attach[in->nattach++];
    a->offset = at;
    a->n = nfds;
    memcpy(a->fd, fds, nfds * sizeof(int));
    return 0;
}

int chan_in_feed(struct chan_in *in, const void *p, size_t n, const int *fds, unsigned nfds)
{
    if (in->error) {
        close_fds(fds, nfds);
        return -1;
    }
    if (nfds > 0 && n == 0) {
        close_fds(fds, nfds);
        return in_fail(in, "descriptors without data");
    }
    in_compact(in);
    buf_add(&in->data, p, n);
    if (nfds > 0)
        return in_attach(in, in->data.len - 1, fds, nfds);
    return 0;
}

int chan_in_pop(struct chan_in *in, struct chan_record *rec)
{
    size_t reclen;
    const char *why = NULL;
    memset(rec, 0, sizeof(*rec));
    if (in->error)
        return -1;
    if (in->head == in->data.len)
        return 0;
    int rc =
        ipc_frame(in->data.s + in->head, in->data.len - in->head, in->max_record, &reclen, &why);
    if (rc < 0)
        return in_fail(in, why);
    if (rc == 0)
        return 0;
    rec->data = in->data.s + in->head;
    rec->len = reclen;
    if (in->attach_head < in->nattach && in->attach[in->attach_head].offset == in->head) {
        struct chan_fds *a = &in->attach[in->attach_head++];
        memcpy(rec->fd, a->fd, a->n * sizeof(int));
        rec->nfds = a->n;
    }
    in->head += reclen;
    return 1;
}

size_t chan_in_wanted(const struct chan_in *in)
{
    size_t avail = in->data.len - in->head;
    if (avail < IPC_HEADER_SIZE)
        return IPC_HEADER_SIZE - avail;
    uint32_t len = be32_at(in->data.s + in->head);
    if (len < IPC_HEADER_SIZE || len > in->max_record)
        return 0; /* chan_in_pop reports it */
    return avail >= len ? 0 : len - avail;
}

int chan_in_partial(const struct chan_in *in)
{
    return in->data.len > in->head;
}

/* The descriptors of every SCM_RIGHTS message in msg, at most CHAN_FDS_MAX
 * (the control buffer holds no more: MSG_CTRUNC then). */
static unsigned collect_fds(struct msghdr *msg, int *fds)
{
    unsigned n = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (n < CHAN_FDS_MAX)
                fds[n++] = fd;
            else
                close(fd);
        }
    }
    return n;
}

/* recvmsg, or read(2) when fd is not a socket (a pipe on fd 0). */
static ssize_t recv_some(int fd, void *p, size_t len, int *fds, unsigned *nfds, int *truncated)
{
    union {
        char space[CMSG_SPACE(sizeof(int) * CHAN_FDS_MAX)];
        struct cmsghdr align;
    } control;
    struct iovec iov = {p, len};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof(control.space);
    *nfds = 0;
    *truncated = 0;
    ssize_t n;
    do
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK) {
        do
            n = read(fd, p, len);
        while (n < 0 && errno == EINTR);
        return n;
    }
    if (n < 0)
        return n;
    *nfds = collect_fds(&msg, fds);
    *truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
    return n;
}

ssize_t chan_in_read(struct chan_in *in, int fd, size_t limit)
{
    int fds[CHAN_FDS_MAX];
    unsigned nfds;
    int truncated;
    if (in->error) {
        errno = EPROTO;
        return -1;
    }
    in_compact(in);
    size_t want = limit && limit < READ_CHUNK ? limit : READ_CHUNK;
    buf_reserve(&in->data, want);
    ssize_t n = recv_some(fd, in->data.s + in->data.len, want, fds, &nfds, &truncated);
    if (n <= 0) {
        int e = errno;
        close_fds(fds, nfds);
        errno = e;
        return n;
    }
    if (truncated) {
        close_fds(fds, nfds);
        in_fail(in, "more descriptors than a record may carry");
        errno = EPROTO;
        return -1;
    }
    /* The bytes are in place already: account for them, then attach. */
    in->data.len += (size_t)n;
    in->data.s[in->data.len] = '\0';
    if (nfds > 0 && in_attach(in, in->data.len - 1, fds, nfds) < 0) {
        errno = EPROTO;
        return -1;
    }
    return n;
}

void chan_record_close(struct chan_record *rec)
{
    close_fds(rec->fd, rec->nfds);
    rec->nfds = 0;
}

int chan_record_take_fd(struct chan_record *rec, unsigned i)
{
    if (i >= rec->nfds)
        return -1;
    int fd = rec->fd[i];
    rec->fd[i] = -1;
    return fd;
}

/* ---------------------------------------------------------------- writer ---- */

void chan_out_init(struct chan_out *out)
{
    memset(out, 0, sizeof(*out));
}

void chan_out_free(struct chan_out *out)
{
    for (size_t i = out->attach_head; i < out->nattach; i++)
        close_fds(out->attach[i].fd, out->attach[i].n);
    free(out->attach);
    buf_free(&out->data);
    memset(out, 0, sizeof(*out));
}

/* Drop what was sent once it is most of the buffer (amortized copying). */
static void out_compact(struct chan_out *out)
{
    if (out->head == out->data.len) {
        buf_clear(&out->data);
        out->head = 0;
    } else if (out->head >= READ_CHUNK && out->head >= out->data.len / 2) {
        buf_consume(&out->data, out->head);
        for (size_t i = out->attach_head; i < out->nattach; i++)
            out->attach[i].offset -= out->head;
        out->head = 0;
    }
    if (out->attach_head == out->nattach)
        out->attach_head = out->nattach = 0;
}

void chan_out_add(struct chan_out *out, const void *rec, size_t len, const int *fds, unsigned nfds)
{
    if (nfds > CHAN_FDS_MAX)
        log_fatal("channel: %u descriptors in one record (at most %d)", nfds, CHAN_FDS_MAX);
    if (nfds > 0 && len == 0)
        log_fatal("channel: descriptors without a record");
    out_compact(out);
    if (nfds > 0) {
        out->attach = xgrow(out->attach, &out->attach_cap, out->nattach + 1, sizeof(*out->attach));
        struct chan_fds *a = &out->attach[out->nattach++];
        a->offset = out->data.len;
        a->n = nfds;
        memcpy(a->fd, fds, nfds * sizeof(int));
    }
    buf_add(&out->data, rec, len);
}

size_t chan_out_pending(const struct chan_out *out)
{
    return out->data.len - out->head;
}

/* One byte with the descriptors of its record (SCM_RIGHTS). */
static ssize_t send_with_fds(int fd, const char *p, const struct chan_fds *a)
{
    union {
        char space[CMSG_SPACE(sizeof(int) * CHAN_FDS_MAX)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct iovec iov = {(void *)p, 1};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * a->n);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * a->n);
    memcpy(CMSG_DATA(c), a->fd, sizeof(int) * a->n);
    return sendmsg(fd, &msg, MSG_NOSIGNAL);
}

/* send(2), or write(2) when fd is not a socket (a pipe on fd 1). */
static ssize_t send_plain(int fd, const char *p, size_t n)
{
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == ENOTSOCK)
        w = write(fd, p, n);
    return w;
}

int chan_out_write(struct chan_out *out, int fd)
{
    while (out->head < out->data.len) {
        struct chan_fds *a =
            out->attach_head < out->nattach ? &out->attach[out->attach_head] : NULL;
        const char *p = out->data.s + out->head;
        ssize_t w;
        if (a && a->offset == out->head)
            w = send_with_fds(fd, p, a);
        else
            w = send_plain(fd, p, (a ? a->offset : out->data.len) - out->head);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w < 0)
            return -1;
        if (a && a->offset == out->head) {
            close_fds(a->fd, a->n); /* the peer holds its own copies now */
            out->attach_head++;
        }
        out->head += (size_t)w;
    }
    out_compact(out);
    return 1;
}

/* ------------------------------------------------------- peer identity ---- */

int chan_peer_cred(int fd, struct chan_cred *out)
{
    struct ucred uc;
    socklen_t len = sizeof(uc);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
        return -1;
    out->pid = uc.pid;
    out->uid = uc.uid;
    out->gid = uc.gid;
    return 0;
}

int chan_uid_allowed(uid_t uid, const uid_t *uids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (uids[i] == uid)
            return 1;
    return 0;
}

/* ------------------------------------------------------------- blocking ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline (< 0: none). 0, or -1 with errno
 * (ETIMEDOUT). */
static int wait_for(int fd, short events, int64_t deadline)
{
    for (;;) {
        int left = -1;
        if (deadline >= 0) {
            int64_t d = deadline - now_ms();
            left = d > 0 ? (int)d : 0;
        }
        struct pollfd p = {fd, events, 0};
        int rc = poll(&p, 1, left);
        if (rc > 0)
            return 0;
        if (rc == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR)
            return -1;
    }
}

static int64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* Bytes without descriptors, written from the caller's memory (no copy:
 * sendmail hands whole batches of records over this way). */
static int send_plain_all(int fd, const char *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t w = send_plain(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_for(fd, POLLOUT, deadline) < 0)
                return -1;
            continue;
        }
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int chan_send_record(int fd, const void *rec, size_t len, const int *fds, unsigned nfds,
                     int timeout_ms)
{
    int copies[CHAN_FDS_MAX];
    int64_t deadline = deadline_after(timeout_ms);
    if (nfds == 0)
        return send_plain_all(fd, rec, len, deadline);
    if (nfds > CHAN_FDS_MAX) {
        errno = EINVAL;
        return -1;
    }
    for (unsigned i = 0; i < nfds; i++) {
        copies[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
        if (copies[i] < 0) {
            int e = errno;
            close_fds(copies, i);
            errno = e;
            return -1;
        }
    }
    struct chan_out out;
    chan_out_init(&out);
    chan_out_add(&out, rec, len, copies, nfds);
    int rc;
    while ((rc = chan_out_write(&out, fd)) == 0)
        if (wait_for(fd, POLLOUT, deadline) < 0)
            break;
    int e = errno;
    chan_out_free(&out);
    errno = e;
    return rc == 1 ? 0 : -1;
}

static int recv_fail(struct chan_in *in, const char **why, const char *reason, int e)
{
    *why = in->error ? in->error : reason;
    chan_in_free(in);
    errno = e;
    return -1;
}

int chan_recv_record(int fd, size_t max_record, unsigned max_fds, int timeout_ms, struct buf *out,
                     int *fds, unsigned *nfds, const char **why)
{
    struct chan_in in;
    struct chan_record rec;
    int64_t deadline = deadline_after(timeout_ms);
    chan_in_init(&in, max_record, max_fds);
    if (nfds)
        *nfds = 0;
    size_t want;
    while ((want = chan_in_wanted(&in)) > 0) {
        if (deadline >= 0 && wait_for(fd, POLLIN, deadline) < 0)
            return recv_fail(&in, why, "no record within the time allowed", errno);
        ssize_t n = chan_in_read(&in, fd, want);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (deadline < 0 && wait_for(fd, POLLIN, -1) < 0)
                return recv_fail(&in, why, "poll error", errno);
            continue;
        }
        if (n < 0)
            return recv_fail(&in, why, "read error", errno);
        if (n == 0 && !chan_in_partial(&in)) {
            chan_in_free(&in);
            return 0;
        }
        if (n == 0)
            return recv_fail(&in, why, "end of file inside a record", ECONNRESET);
    }
    if (chan_in_pop(&in, &rec) != 1)
        return recv_fail(&in, why, "bad record", EPROTO);
    buf_set(out, rec.data, rec.len);
    if (rec.nfds > 0) { /* never with max_fds 0: the reader refuses them */
        memcpy(fds, rec.fd, rec.nfds * sizeof(int));
        *nfds = rec.nfds;
    }
    chan_in_free(&in);
    return 1;
}
