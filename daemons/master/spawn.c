/*
 * spawn — fork and exec one daemon. See spawn.h.
 *
 * The child moves every descriptor it keeps above the highest target
 * number first (so that placing one never overwrites another), then
 * dup2()s each to its number, closes everything else (close_range), and
 * only then changes its ids and execs.
 */
#include "master/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem.h"
#include "safeio.h"
#include "sysdeps.h"

#define ARGV_MAX 16

/* In the child: report what failed (errno) on the pipe and exit. */
static void child_fail(int report, const char *what)
{
    int e = errno;
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s: %s", what, strerror(e));
    write_all(report, b.s, b.len);
    _exit(127);
}

static void reset_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static int highest_target(const struct spawn_req *r)
{
    int high = 2;
    for (unsigned i = 0; i < r->nfds; i++)
        if (r->fds[i].at > high)
            high = r->fds[i].at;
    return high;
}

static int is_target(const struct spawn_req *r, int fd)
{
    for (unsigned i = 0; i < r->nfds; i++)
        if (r->fds[i].at == fd)
            return 1;
    return 0;
}

/* Place every descriptor at its number (0 is /dev/null unless a target),
 * then close every other one but the report pipe, which closes at exec. */
static void place_fds(const struct spawn_req *r, int *report)
{
    int above = highest_target(r) + 1, moved[SPAWN_FDS_MAX];
    int rep = fcntl(*report, F_DUPFD_CLOEXEC, above);
    if (rep < 0)
        child_fail(*report, "cannot move a descriptor");
    *report = rep;
    for (unsigned i = 0; i < r->nfds; i++)
        if ((moved[i] = fcntl(r->fds[i].fd, F_DUPFD_CLOEXEC, rep + 1)) < 0)
            child_fail(rep, "cannot move a descriptor");
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0)
        child_fail(rep, "cannot open /dev/null");
    for (unsigned i = 0; i < r->nfds; i++)
        if (dup2(moved[i], r->fds[i].at) < 0)
            child_fail(rep, "cannot place a descriptor");
    for (int fd = 3; fd < rep; fd++)
        if (!is_target(r, fd))
            close(fd);
    close_range((unsigned)rep + 1, ~0u, 0);
}

static void set_fd_env(const struct spawn_req *r, int report)
{
    char num[16];
    for (unsigned i = 0; i < r->nfds; i++) {
        if (!r->fds[i].env)
            continue;
        snprintf(num, sizeof(num), "%d", r->fds[i].at);
        if (setenv(r->fds[i].env, num, 1) < 0)
            child_fail(report, "cannot set the environment");
    }
    if (r->listen_env && setenv("ONEHOP_LISTEN_FDS", r->listen_env, 1) < 0)
        child_fail(report, "cannot set the environment");
}

static void exec_child(const struct spawn_req *r, int report)
{
    const char *argv[ARGV_MAX];
    size_t n = 0;
    argv[n++] = r->path;
    argv[n++] = "-C";
    argv[n++] = r->confdir;
    for (size_t i = 0; r->args[i] && n < ARGV_MAX - 1; i++)
        argv[n++] = r->args[i];
    argv[n] = NULL;
    reset_signals();
    setpgid(0, 0); /* a terminal's ^C reaches the master, which stops the rest */
    place_fds(r, &report);
    set_fd_env(r, report);
    if (account_become(r->account) < 0)
        child_fail(report, "cannot change to the daemon's account");
    execv(r->path, (char *const *)argv);
    struct buf what = BUF_INIT;
    buf_printf(&what, "cannot run %s", r->path);
    child_fail(report, buf_cstr(&what));
}

pid_t spawn_daemon(const struct spawn_req *r, struct buf *err)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        buf_printf(err, "cannot make a pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        buf_printf(err, "cannot fork: %s", strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        close(pipefd[0]);
        exec_child(r, pipefd[1]);
    }
    close(pipefd[1]);
    struct buf why = BUF_INIT;
    read_all(pipefd[0], &why, 4096); /* EOF at the exec: nothing to say */
    close(pipefd[0]);
    if (why.len) {
        buf_add(err, why.s, why.len);
        waitpid(pid, NULL, 0);
        buf_free(&why);
        return -1;
    }
    buf_free(&why);
    return pid;
}
