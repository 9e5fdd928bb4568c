/*
 * trigger — the router's wake-up FIFO (after qmail's trigger.c/triggerpull.c).
 *
 * onehop-queue writes one byte after each commit; the router reads and
 * discards whatever is there and scans incoming/. The byte carries no
 * meaning, so losing one (no reader, FIFO full) loses nothing: the router
 * also scans at start and on a timer.
 * Must never: block the writer, or write into anything but a FIFO.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "safeio.h"

static void trigger_path(const char *run_dir, struct buf *out)
{
    path_join(out, run_dir, QUEUE_TRIGGER_NAME);
}

void queue_trigger_pull(const char *run_dir)
{
    struct buf path = BUF_INIT;
    trigger_path(run_dir, &path);
    int fd = open(buf_cstr(&path), O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    buf_free(&path);
    if (fd < 0)
        return; /* ENXIO: no reader; ENOENT: no router has run yet */
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
        ssize_t r;
        do
            r = write(fd, "!", 1);
        while (r < 0 && errno == EINTR); /* EAGAIN: full, the router is awake anyway */
    }
    close(fd);
}

int queue_trigger_listen(const char *run_dir, int *keep_fd)
{
    struct buf path = BUF_INIT;
    trigger_path(run_dir, &path);
    const char *p = buf_cstr(&path);
    if (mkfifo(p, 0622) != 0 && errno != EEXIST) {
        buf_free(&path);
        return -1;
    }
    chmod(p, 0622); /* umask may have taken the writers' bits */
    int rfd = open(p, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    int wfd = rfd >= 0 ? open(p, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC) : -1;
    struct stat st;
    int e = errno;
    buf_free(&path);
    if (rfd < 0 || wfd < 0 || fstat(rfd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
        if (rfd >= 0)
            close(rfd);
        if (wfd >= 0)
            close(wfd);
        errno = rfd >= 0 && wfd >= 0 ? ENOTSUP : e;
        return -1;
    }
    *keep_fd = wfd;
    return rfd;
}
