/*
 * pidfile — the master's pid file and lock. See pidfile.h.
 */
#include "master/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "master_proto.h"
#include "safeio.h"

static void pid_path(const char *run_dir, struct buf *out)
{
    path_join(out, run_dir, MASTER_PID_NAME);
}

/* The pid written in the file fd, or 0. */
static long read_pid(int fd)
{
    struct buf b = BUF_INIT;
    long pid = 0;
    if (lseek(fd, 0, SEEK_SET) == 0 && read_all(fd, &b, 64) == 0 && b.len)
        pid = strtol(buf_cstr(&b), NULL, 10);
    buf_free(&b);
    return pid > 0 ? pid : 0;
}

int pidfile_take(const char *run_dir, const char *confdir, long *stale_pid, struct buf *err)
{
    struct buf path = BUF_INIT;
    pid_path(run_dir, &path);
    *stale_pid = 0;
    if (mkdir_p(run_dir, 0755) < 0) {
        buf_printf(err, "cannot create %s: %s", run_dir, strerror(errno));
        buf_free(&path);
        return -1;
    }
    int fd = open(buf_cstr(&path), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        buf_printf(err, "cannot open %s: %s", buf_cstr(&path), strerror(errno));
        buf_free(&path);
        return -1;
    }
    buf_free(&path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        long pid = read_pid(fd);
        if (e == EWOULDBLOCK)
            buf_printf(err, "the instance %s is already running (master pid %ld)", confdir, pid);
        else
            buf_printf(err, "cannot lock the pid file in %s: %s", run_dir, strerror(e));
        close(fd);
        return -1;
    }
    *stale_pid = read_pid(fd);
    struct buf text = BUF_INIT;
    buf_printf(&text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, text.s, text.len, 0) != (ssize_t)text.len) {
        buf_printf(err, "cannot write the pid file in %s: %s", run_dir, strerror(errno));
        close(fd);
        fd = -1;
    }
    buf_free(&text);
    return fd;
}

void pidfile_release(int fd, const char *run_dir)
{
    struct buf path = BUF_INIT;
    pid_path(run_dir, &path);
    unlink(buf_cstr(&path));
    buf_free(&path);
    close(fd);
}

long pidfile_running(const char *run_dir)
{
    struct buf path = BUF_INIT;
    pid_path(run_dir, &path);
    int fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    buf_free(&path);
    if (fd < 0)
        return 0;
    long pid = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK)
        pid = read_pid(fd) ? read_pid(fd) : -1; /* locked, pid not written yet */
    close(fd);
    return pid;
}
