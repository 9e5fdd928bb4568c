/*
 * daemon_link — the master link's records and the daemon's side of it,
 * without libuv, on the framing core of channel_core.h. See daemon_link.h.
 */
#include "daemon_link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "strparse.h"

/* The link a fatal log line before READY is reported on (one per process). */
static struct daemon_link *fatal_link;

static void report_fatal(const char *text)
{
    if (fatal_link && !fatal_link->ready)
        daemon_link_send(fatal_link, DLINK_FAILED, text);
}

void daemon_link_encode(struct buf *out, enum dlink_type type, const char *text)
{
    struct ipc_writer w;
    ipc_begin(&w, out, (uint16_t)type);
    size_t max = type == DLINK_FAILED ? DLINK_TEXT_MAX : METRICS_TEXT_MAX;
    if (type == DLINK_FAILED || type == DLINK_METRICS_TEXT) {
        size_t n = strlen(text);
        ipc_add_bytes(&w, text, n > max ? max : n);
    }
    ipc_finish(&w);
}

int daemon_link_decode(const void *data, size_t len, struct buf *text)
{
    struct ipc_reader r;
    const void *p = NULL;
    size_t n = 0;
    int type = -1;
    if (ipc_open(&r, data, len) == 0) {
        type = r.type;
        int has_text = type == DLINK_FAILED || type == DLINK_METRICS_TEXT;
        if (has_text)
            ipc_get_bytes(&r, type == DLINK_FAILED ? DLINK_TEXT_MAX : METRICS_TEXT_MAX, &p, &n);
        if (ipc_end(&r) < 0 || type < DLINK_READY || type > DLINK_METRICS_TEXT)
            type = -1;
        else if (has_text)
            buf_set(text, p, n);
    }
    ipc_close(&r);
    return type;
}

static void link_init(struct daemon_link *l, int fd)
{
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    chan_in_init(&l->in, DLINK_RECORD_MAX, 0);
}

static int parse_fd(const char *s, int *fd)
{
    uint64_t v;
    const char *why;
    if (parse_uint(s, 0, 65535, &v, &why) < 0)
        return -1;
    *fd = (int)v;
    return 0;
}

int daemon_link_open(struct daemon_link *l, const char **why)
{
    link_init(l, -1);
    const char *env = getenv(DAEMON_LINK_ENV);
    if (!env)
        return 0;
    int fd, type;
    socklen_t len = sizeof(type);
    if (parse_fd(env, &fd) < 0) {
        *why = DAEMON_LINK_ENV " is not a descriptor number";
        return -1;
    }
    unsetenv(DAEMON_LINK_ENV);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
        *why = DAEMON_LINK_ENV " names no stream socket";
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    l->fd = fd;
    fatal_link = l;
    log_set_fatal_hook(report_fatal);
    return 0;
}

int daemon_link_send(struct daemon_link *l, enum dlink_type type, const char *text)
{
    if (l->fd < 0)
        return 0;
    struct buf out = BUF_INIT;
    daemon_link_encode(&out, type, text);
    /* Records are tiny and the master reads them at once: one either fits
     * the empty socket buffer or the master is stuck (then 1 s is enough). */
    int rc = chan_send_record(l->fd, out.s, out.len, NULL, 0, 1000);
    buf_free(&out);
    return rc;
}

/* The answer to DLINK_METRICS: the registry's text, or -1 with errno. */
static int send_metrics(struct daemon_link *l)
{
    struct buf text = BUF_INIT;
    metrics_render(&text);
    int rc = daemon_link_send(l, DLINK_METRICS_TEXT, buf_cstr(&text));
    buf_free(&text);
    return rc;
}

int daemon_link_ready(struct daemon_link *l)
{
    int rc = daemon_link_send(l, DLINK_READY, NULL);
    l->ready = 1;
    return rc;
}

static int link_ended(struct daemon_link *l, const char *why)
{
    l->why = why;
    return -1;
}

int daemon_link_next(struct daemon_link *l)
{
    if (l->fd < 0)
        return 0;
    for (;;) {
        struct chan_record rec;
        int got = chan_in_pop(&l->in, &rec);
        if (got < 0)
            return link_ended(l, l->in.error);
        if (got > 0) {
            int type = daemon_link_decode(rec.data, rec.len, &l->text);
            chan_record_close(&rec);
            if (type == DLINK_METRICS && send_metrics(l) < 0)
                return link_ended(l, "cannot send the metrics on the master link");
            if (type == DLINK_METRICS)
                continue;
            return type < 0 ? link_ended(l, "malformed record on the master link") : type;
        }
        ssize_t n = chan_in_read(&l->in, l->fd, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0)
            return link_ended(l, l->in.error ? l->in.error : "read error on the master link");
        if (n == 0)
            return link_ended(l, "the master link closed");
    }
}

void daemon_link_close(struct daemon_link *l)
{
    if (fatal_link == l) {
        fatal_link = NULL;
        log_set_fatal_hook(NULL);
    }
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    chan_in_free(&l->in);
    buf_free(&l->text);
}
