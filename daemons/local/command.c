/*
 * command — |command delivery and its exit status table. See command.h.
 */
#include "local/command.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"

#define OUTPUT_KEEP 1024 /* bytes of the command's output kept for the text */
#define SHOWN_MAX 200    /* characters of a command or its output in a text */

/* sysexits.h codes: EX_OSERR and EX_TEMPFAIL are temporary, every other
 * one permanent, with Postfix's enhanced status codes (global/sys_exits.c). */
static const struct exit_row exit_rows[] = {
    {64, "EX_USAGE", RP_PERM, "5.3.0", "command line usage error"},
    {65, "EX_DATAERR", RP_PERM, "5.6.0", "data format error"},
    {66, "EX_NOINPUT", RP_PERM, "5.3.0", "cannot open input"},
    {67, "EX_NOUSER", RP_PERM, "5.1.1", "user unknown"},
    {68, "EX_NOHOST", RP_PERM, "5.1.2", "host name unknown"},
    {69, "EX_UNAVAILABLE", RP_PERM, "5.3.0", "service unavailable"},
    {70, "EX_SOFTWARE", RP_PERM, "5.3.0", "internal software error"},
    {71, "EX_OSERR", RP_TEMP, "4.3.0", "system resource problem"},
    {72, "EX_OSFILE", RP_PERM, "5.3.0", "critical OS file missing"},
    {73, "EX_CANTCREAT", RP_PERM, "5.2.0", "can't create user output file"},
    {74, "EX_IOERR", RP_PERM, "5.3.0", "input/output error"},
    {75, "EX_TEMPFAIL", RP_TEMP, "4.3.0", "temporary failure"},
    {76, "EX_PROTOCOL", RP_PERM, "5.5.0", "remote error in protocol"},
    {77, "EX_NOPERM", RP_PERM, "5.7.0", "permission denied"},
    {78, "EX_CONFIG", RP_PERM, "5.3.5", "local configuration error"},
};

const struct exit_row *command_exit_rows(size_t *n)
{
    *n = sizeof(exit_rows) / sizeof(exit_rows[0]);
    return exit_rows;
}

static const struct exit_row *exit_row_find(int status)
{
    for (size_t i = 0; i < sizeof(exit_rows) / sizeof(exit_rows[0]); i++)
        if (exit_rows[i].status == status)
            return &exit_rows[i];
    return NULL;
}

/* ": \"first line\"" of the output, printable and bounded; "" for none. */
static void add_output(struct buf *b, const char *output)
{
    size_t n = strcspn(output, "\n");
    if (n == 0)
        return;
    buf_adds(b, ": \"");
    for (size_t i = 0; i < n && i < SHOWN_MAX; i++) {
        unsigned char c = (unsigned char)output[i];
        buf_addc(b, c >= 0x20 && c != 0x7f && c != '"' ? (char)c : '?');
    }
    buf_addc(b, '"');
}

void command_exit_outcome(int wait_status, const char *what, const char *output, struct outcome *o)
{
    static const char relay[] = "local:command";
    struct buf tail = BUF_INIT;
    add_output(&tail, output);
    if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) {
        outcome_set(o, RP_OK, relay, "2.0.0 delivered to command: %s", what);
    } else if (WIFEXITED(wait_status)) {
        int st = WEXITSTATUS(wait_status);
        const struct exit_row *r = exit_row_find(st);
        if (r)
            outcome_set(o, r->cls, relay, "%s command %s: %s (exit status %d, %s)%s", r->dsn, what,
                        r->text, st, r->name, buf_cstr(&tail));
        else
            outcome_set(o, RP_PERM, relay, "5.3.0 command %s: died with status %d%s", what, st,
                        buf_cstr(&tail));
    } else {
        int sig = WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0;
        outcome_set(o, RP_TEMP, relay, "4.3.0 command %s: died with signal %d%s", what, sig,
                    buf_cstr(&tail));
    }
    buf_free(&tail);
}

/* ------------------------------------------------------------- running ---- */

static void env_add(struct buf *b, const char *name, const char *value)
{
    buf_printf(b, "%s=%s", name, value ? value : "");
    buf_addc(b, '\0');
}

/* The NUL-separated environment of command.h, and its pointer array. */
static char **make_env(const struct command_env *e, struct buf *store)
{
    env_add(store, "SENDER", e->sender);
    env_add(store, "RECIPIENT", e->recipient);
    env_add(store, "ORIGINAL_RECIPIENT", e->original);
    env_add(store, "LOCAL", e->local);
    env_add(store, "EXTENSION", e->extension);
    env_add(store, "DOMAIN", e->domain);
    env_add(store, "USER", e->user);
    env_add(store, "LOGNAME", e->user);
    env_add(store, "HOME", e->home);
    env_add(store, "SHELL", e->shell && e->shell[0] ? e->shell : "/bin/sh");
    env_add(store, "PATH", "/usr/local/bin:/usr/bin:/bin");
    size_t n = 0;
    for (size_t at = 0; at < store->len; at += strlen(store->s + at) + 1)
        n++;
    char **v = xcalloc(n + 1, sizeof(*v));
    size_t i = 0;
    for (size_t at = 0; at < store->len; at += strlen(store->s + at) + 1)
        v[i++] = store->s + at;
    return v;
}

static void child_exec(const char *command, const struct command_env *e, int in, int out)
{
    static const int sigs[] = {SIGPIPE, SIGXFSZ, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGALRM};
    sigset_t none;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(71); /* EX_OSERR: temporary */
    if (!e->home || chdir(e->home) < 0)
        (void)!chdir("/");
    struct buf store = BUF_INIT;
    char **envp = make_env(e, &store);
    execle("/bin/sh", "sh", "-c", command, (char *)NULL, envp);
    _exit(71);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct feed {
    struct msgcopy copy;
    const char *p; /* the unwritten rest of the current chunk */
    size_t n;
    int in, out; /* our ends; -1 once closed */
    struct buf output;
    int read_error;
};

static void close_in(struct feed *f)
{
    if (f->in >= 0)
        close(f->in);
    f->in = -1;
}

/* Write what the pipe takes; at the end (or EPIPE: the command does not
 * want the rest, as Postfix allows) close it. */
static void feed_write(struct feed *f)
{
    for (;;) {
        if (f->n == 0) {
            int rc = msgcopy_next(&f->copy, &f->p, &f->n);
            if (rc <= 0) {
                f->read_error = rc < 0 ? errno : 0;
                close_in(f);
                return;
            }
        }
        ssize_t w = write(f->in, f->p, f->n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        if (w < 0) {
            close_in(f);
            return;
        }
        f->p += w;
        f->n -= (size_t)w;
    }
}

static void feed_read(struct feed *f)
{
    char tmp[4096];
    ssize_t r = read(f->out, tmp, sizeof(tmp));
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        close(f->out);
        f->out = -1;
        return;
    }
    if (f->output.len < OUTPUT_KEEP)
        buf_add(&f->output, tmp,
                (size_t)r < OUTPUT_KEEP - f->output.len ? (size_t)r : OUTPUT_KEEP - f->output.len);
}

/* Feed the message and drain the output until both are done or the
 * deadline; 0, or -1 at the deadline. */
static int feed_run(struct feed *f, int64_t deadline)
{
    while (f->in >= 0 || f->out >= 0) {
        struct pollfd p[2] = {{f->in, POLLOUT, 0}, {f->out, POLLIN, 0}};
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -1;
        int rc = poll(p, 2, left > 1000 ? 1000 : (int)left);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc <= 0)
            continue;
        if (f->in >= 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP)))
            feed_write(f);
        if (f->out >= 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP)))
            feed_read(f);
    }
    return 0;
}

/* waitpid with the deadline: 0 and *status, or -1 at the deadline. */
static int wait_until(pid_t pid, int64_t deadline, int *status)
{
    for (;;) {
        pid_t got = waitpid(pid, status, WNOHANG);
        if (got == pid)
            return 0;
        if (got < 0 && errno != EINTR)
            return -1;
        if (now_ms() >= deadline)
            return -1;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The command as shown in texts: its first SHOWN_MAX characters. */
static void shown_command(struct buf *b, const char *command)
{
    size_t n = strlen(command);
    buf_add(b, command, n < SHOWN_MAX ? n : SHOWN_MAX);
    if (n > SHOWN_MAX)
        buf_adds(b, "...");
}

static int make_pipes(int in[2], int out[2])
{
    if (pipe2(in, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    return 0;
}

void command_deliver(const char *command, const struct command_env *env, const struct msgsrc *src,
                     const struct buf *prefix, unsigned timeout_s, struct outcome *o)
{
    static const char relay[] = "local:command";
    int in[2], out[2];
    struct buf what = BUF_INIT;
    shown_command(&what, command);
    if (make_pipes(in, out) < 0) {
        outcome_errno(o, relay, errno, "cannot make a pipe for the command");
        buf_free(&what);
        return;
    }
    pid_t pid = fork();
    if (pid == 0)
        child_exec(command, env, in[0], out[1]);
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        outcome_errno(o, relay, errno, "cannot start the command");
        close(in[1]);
        close(out[0]);
        buf_free(&what);
        return;
    }
    struct feed f = {.in = in[1], .out = out[0]};
    msgcopy_init(&f.copy, src, 0, prefix);
    fcntl(f.in, F_SETFL, O_NONBLOCK);
    fcntl(f.out, F_SETFL, O_NONBLOCK);
    int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
    int status = 0;
    if (feed_run(&f, deadline) < 0 || wait_until(pid, deadline, &status) < 0) {
        kill(-pid, SIGKILL); /* its session: the shell and what it started */
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        outcome_set(o, RP_TEMP, relay, "4.3.0 command %s: killed after the time limit of %u s",
                    what.s, timeout_s);
        log_warn("command %s: killed after the time limit of %u s", what.s, timeout_s);
    } else if (f.read_error) {
        outcome_errno(o, relay, f.read_error, "cannot read the message");
    } else {
        command_exit_outcome(status, what.s, buf_cstr(&f.output), o);
    }
    close_in(&f);
    if (f.out >= 0)
        close(f.out);
    msgcopy_free(&f.copy);
    buf_free(&f.output);
    buf_free(&what);
}
