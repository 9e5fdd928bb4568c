/*
 * incoming_watch — the names of new files of incoming/ from inotify:
 * incoming_watch.h.
 */
#include "router/incoming_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "queue.h"

#define WATCH_EVENTS (IN_MOVED_TO | IN_CREATE)

struct incoming_watch {
    uv_poll_t poll;
    int fd;
    int broken;     /* an overflow or a lost watch: the next take says -1 */
    int reported;   /* -1 was returned: nothing more is named */
    struct buf ids; /* reported, not taken yet */
    incoming_watch_cb *cb;
    void *arg;
};

static int add_buckets(int fd, const char *queue_dir)
{
    struct buf path = BUF_INIT;
    int rc = 0;
    for (unsigned b = 0; b < QUEUE_BUCKETS && rc == 0; b++) {
        buf_clear(&path);
        buf_printf(&path, "%s/incoming/%02x", queue_dir, b);
        if (inotify_add_watch(fd, path.s, WATCH_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW) < 0)
            rc = -1;
    }
    buf_free(&path);
    return rc;
}

static void note_event(struct incoming_watch *w, const struct inotify_event *ev)
{
    if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_UNMOUNT)) {
        w->broken = 1; /* events lost, or a bucket removed: list everything */
        return;
    }
    if (!(ev->mask & WATCH_EVENTS) || (ev->mask & IN_ISDIR) || ev->len == 0)
        return;
    if (strnlen(ev->name, ev->len) != QUEUE_FILE_ID_LEN || !queue_file_id_valid(ev->name))
        return; /* not a committed file's name */
    buf_add(&w->ids, ev->name, QUEUE_FILE_ID_LEN + 1);
}

/* Read every waiting event (the descriptor is non-blocking). */
static void drain(struct incoming_watch *w)
{
    char raw[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->fd, raw, sizeof(raw));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN)
                w->broken = 1;
            return;
        }
        for (char *p = raw; p < raw + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            note_event(w, ev);
            p += sizeof(*ev) + ev->len;
        }
    }
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    struct incoming_watch *w = h->data;
    (void)events;
    if (status < 0)
        w->broken = 1;
    else
        drain(w);
    w->cb(w->arg);
}

struct incoming_watch *incoming_watch_open(uv_loop_t *loop, const char *queue_dir,
                                           incoming_watch_cb *cb, void *arg)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (add_buckets(fd, queue_dir) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    struct incoming_watch *w = xcalloc(1, sizeof(*w));
    w->fd = fd;
    w->cb = cb;
    w->arg = arg;
    uv_poll_init(loop, &w->poll, fd);
    w->poll.data = w;
    uv_poll_start(&w->poll, UV_READABLE, on_readable);
    return w;
}

long incoming_watch_take(struct incoming_watch *w, struct buf *out)
{
    if (w->reported)
        return 0; /* said once: the caller lists at each trigger pull now */
    if (w->broken) {
        w->reported = 1;
        buf_clear(&w->ids);
        return -1;
    }
    long n = (long)(w->ids.len / (QUEUE_FILE_ID_LEN + 1));
    buf_add(out, w->ids.s, w->ids.len);
    buf_clear(&w->ids);
    return n;
}

int incoming_watch_ok(const struct incoming_watch *w)
{
    return w && !w->broken && !w->reported;
}

static void on_closed(uv_handle_t *h)
{
    struct incoming_watch *w = h->data;
    close(w->fd);
    buf_free(&w->ids);
    free(w);
}

void incoming_watch_close(struct incoming_watch *w)
{
    if (!w)
        return;
    uv_poll_stop(&w->poll);
    uv_close((uv_handle_t *)&w->poll, on_closed);
}
