/*
 * onehop-master — starts, supervises and stops the daemons of one instance
 * (SPEC 1 `onehop start`, 7, 8; ARCHITECTURE "Processes"; onehop-master(8)):
 *
 *     onehop-master [-C DIR] [--foreground]
 *
 * `onehop start` runs it. It checks the configuration as `onehop check`
 * does, takes run_dir/master.pid (one master per instance), prepares the
 * directories (account.h), binds the listening sockets, starts every daemon
 * of the table (table.h) under its account and waits until each has said
 * READY. Without --foreground it runs in the background, and the process
 * that `onehop start` waits for exits only then: 0 when all are ready, 1
 * with the first daemon's own error (every daemon is stopped again).
 *
 * Then it supervises (supervise.h): restarts with back-off, crash loops,
 * SIGHUP or `onehop reload` (configuration re-checked: refused if `onehop
 * check` would refuse it, else RELOAD to every daemon), SIGTERM, SIGINT or
 * `onehop stop` (STOP to every daemon in the order of table.h's stop steps:
 * the delivery agents answer the router for the deliveries under way before
 * the router stops; at most ONEHOP_MASTER_STOP_TIMEOUT seconds, default 30,
 * then SIGKILL).
 *
 * Must never: run two masters on one instance, leave a daemon behind when
 * it exits, or change anything when a reload is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "confcheck.h"
#include "log.h"
#include "safeio.h"
#include "strparse.h"
#include "master/account.h"
#include "master/control.h"
#include "master/master.h"
#include "master/pidfile.h"
#include "master/scrape.h"
#include "master/supervise.h"

#define STOP_TIMEOUT_S 30
#define READY_TIMEOUT_S 30

static struct master master;
static int pid_fd = -1;
static int exit_status;
static uv_signal_t sig_chld, sig_term, sig_int, sig_hup;
static uv_timer_t finish_timer;
static struct buf start_failure; /* why the start failed, for `onehop start` */

static unsigned env_seconds(const char *name, unsigned dflt)
{
    const char *s = getenv(name), *why;
    uint64_t v;
    if (!s || parse_uint(s, 1, 3600, &v, &why) < 0)
        return dflt;
    return (unsigned)v;
}

/* -------------------------------------------------------- start-up report ---- */

/* Tell `onehop start` (the waiting parent) how the start went, once. */
static void report_start(struct master *m, const char *why)
{
    if (m->ready_report < 0)
        return;
    struct buf text = BUF_INIT;
    if (why)
        buf_sets(&text, why);
    else
        buf_sets(&text, "ready");
    write_all(m->ready_report, text.s, text.len);
    close(m->ready_report);
    m->ready_report = -1;
    buf_free(&text);
}

void master_ready(struct master *m, const char *why)
{
    if (m->state != M_STARTING)
        return;
    uv_timer_stop(&m->ready_timer);
    if (why) { /* `onehop start` hears it once every daemon is gone again */
        log_error("start failed: %s", why);
        buf_sets(&start_failure, why);
        exit_status = 1;
        supervise_stop_all(m);
        return;
    }
    m->state = M_RUNNING;
    size_t n = 0;
    for (size_t i = 0; i < m->nprocs; i++)
        n += m->procs[i].enabled;
    log_info("ready: %zu daemons accept work", n);
    report_start(m, NULL);
}

static void on_ready_timeout(uv_timer_t *t)
{
    struct master *m = t->data;
    for (size_t i = 0; i < m->nprocs; i++) {
        struct proc *p = &m->procs[i];
        if (p->enabled && p->state != P_READY) {
            struct buf why = BUF_INIT;
            buf_printf(&why, "%s did not say it was ready within %u s", p->row->name,
                       m->ready_timeout_s);
            master_ready(m, buf_cstr(&why));
            buf_free(&why);
            return;
        }
    }
}

/* ---------------------------------------------------------------- stop ---- */

static void close_handle(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_finish(uv_timer_t *t)
{
    struct master *m = t->data;
    report_start(m, start_failure.len ? buf_cstr(&start_failure) : "stopped before it was ready");
    control_finish(m);
    if (pid_fd >= 0)
        pidfile_release(pid_fd, m->conf.run_dir);
    pid_fd = -1;
    log_info("stopped%s%s", m->stop_note.len ? ": " : "", buf_cstr(&m->stop_note));
    uv_stop(m->loop);
}

void master_stopped(struct master *m)
{
    uv_timer_stop(&m->stop_timer);
    uv_timer_stop(&m->drain_timer);
    finish_timer.data = m;
    uv_timer_start(&finish_timer, on_finish, 0, 0); /* outside any channel callback */
}

/* -------------------------------------------------------------- reload ---- */

static void diag_text(const struct diag *d, struct buf *out)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    diag_print(d, f);
    fclose(f);
    buf_add(out, text, len);
    free(text);
}

int master_reload(struct master *m, struct buf *err)
{
    struct conf fresh;
    struct diag d = DIAG_INIT;
    int rc = 0;
    if (conf_check_dir(m->confdir, &fresh, &d) < 0) {
        diag_text(&d, err);
        diag_log(&d);
        log_warn("reload refused: %zu mistake%s in %s (onehop check); the running "
                 "configuration is kept",
                 d.n, d.n == 1 ? "" : "s", m->confdir);
        conf_free(&fresh);
        rc = -1;
    } else {
        log_info("reload: configuration checked; RELOAD to every daemon");
        conf_free(&m->conf);
        m->conf = fresh;
        supervise_reload(m);
    }
    diag_free(&d);
    return rc;
}

/* ------------------------------------------------------------- signals ---- */

static void on_signal(uv_signal_t *h, int signum)
{
    struct master *m = h->data;
    struct buf err = BUF_INIT;
    if (signum == SIGCHLD) {
        supervise_reap(m);
    } else if (signum == SIGHUP) {
        if (m->state == M_RUNNING)
            master_reload(m, &err);
    } else {
        log_info("stop requested (%s)", signum == SIGTERM ? "SIGTERM" : "SIGINT");
        supervise_stop_all(m);
    }
    buf_free(&err);
}

static void watch_signal(struct master *m, uv_signal_t *h, int signum)
{
    uv_signal_init(m->loop, h);
    h->data = m;
    uv_signal_start(h, on_signal, signum);
}

/* ------------------------------------------------------------ start-up ---- */

/* 0 and 1 become /dev/null; 2 the log file when `log` is one, so that a
 * daemon that cannot open it (an account without the right to, as root)
 * still logs there through its standard error, else /dev/null too. */
static void detach_stdio(const char *log)
{
    int null = open("/dev/null", O_RDWR);
    int err = log[0] == '/' ? open(log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0644) : -1;
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(err >= 0 ? err : null, 2);
    }
    if (null > 2)
        close(null);
    if (err > 2)
        close(err);
}

/* Fork: the parent waits for the child's report and exits with it; the
 * child goes on in a session of its own (detach_stdio). */
static void background(struct master *m)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        log_die(1, "cannot make a pipe: %m");
    pid_t pid = fork();
    if (pid < 0)
        log_die(1, "cannot fork: %m");
    if (pid > 0) {
        struct buf text = BUF_INIT;
        close(pipefd[1]);
        read_all(pipefd[0], &text, 65536);
        if (strcmp(buf_cstr(&text), "ready") == 0)
            _exit(0);
        fprintf(stderr, "onehop-master: %s\n",
                text.len ? buf_cstr(&text) : "the master exited before it was ready");
        _exit(1);
    }
    close(pipefd[0]);
    m->ready_report = pipefd[1];
    setsid();
    detach_stdio(m->conf.log);
}

static noreturn void fail_start(struct master *m, const char *why)
{
    log_error("cannot start: %s", why);
    report_start(m, why);
    exit(1);
}

static void take_instance(struct master *m)
{
    struct buf err = BUF_INIT;
    long stale = 0;
    /* the lock first: a refused second start changes nothing */
    pid_fd = pidfile_take(m->conf.run_dir, m->confdir, &stale, &err);
    if (pid_fd < 0)
        fail_start(m, buf_cstr(&err));
    if (stale)
        log_warn("replaced the stale pid file of master pid %ld (it is not running)", stale);
    if (account_prepare_dirs(m->conf.queue_dir, m->conf.run_dir, m->conf.user, &err) < 0 ||
        supervise_init(m, &err) < 0 || control_start(m, &err) < 0) {
        pidfile_release(pid_fd, m->conf.run_dir);
        fail_start(m, buf_cstr(&err));
    }
    buf_free(&err);
}

static void load_conf(struct master *m)
{
    struct diag d = DIAG_INIT;
    if (conf_check_dir(m->confdir, &m->conf, &d) < 0) {
        diag_print(&d, stderr);
        fprintf(stderr, "onehop-master: %zu mistake%s in %s (see onehop check)\n", d.n,
                d.n == 1 ? "" : "s", m->confdir);
        exit(1);
    }
    diag_free(&d);
}

static int usage(void)
{
    fprintf(stderr, "usage: onehop-master [-C DIR] [--foreground]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct master *m = &master;
    const char *opt_C = NULL;
    int foreground = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-C") == 0 && i + 1 < argc)
            opt_C = argv[++i];
        else if (strcmp(argv[i], "--foreground") == 0)
            foreground = 1;
        else
            return usage();
    }
    m->confdir = conf_dir(opt_C);
    m->ready_report = -1;
    m->stop_timeout_s = env_seconds("ONEHOP_MASTER_STOP_TIMEOUT", STOP_TIMEOUT_S);
    m->ready_timeout_s = env_seconds("ONEHOP_MASTER_READY_TIMEOUT", READY_TIMEOUT_S);
    load_conf(m);
    if (log_open("master", m->conf.log) < 0)
        log_warn("cannot open log %s: %m; logging to stderr", m->conf.log);
    if (foreground)
        log_also_stderr(strcmp(m->conf.log, "stderr") != 0);
    else
        background(m);
    signal(SIGPIPE, SIG_IGN);
    m->loop = uv_default_loop();
    m->started_wall = time(NULL);
    m->state = M_STARTING;
    uv_timer_init(m->loop, &m->stop_timer);
    uv_timer_init(m->loop, &m->ready_timer);
    uv_timer_init(m->loop, &m->drain_timer);
    uv_timer_init(m->loop, &finish_timer);
    m->ready_timer.data = m;
    watch_signal(m, &sig_chld, SIGCHLD);
    take_instance(m);
    scrape_init(m);
    watch_signal(m, &sig_term, SIGTERM);
    watch_signal(m, &sig_int, SIGINT);
    watch_signal(m, &sig_hup, SIGHUP);
    log_info("starting: configuration %s, daemons from %s", m->confdir, m->conf.daemon_dir);
    uv_timer_start(&m->ready_timer, on_ready_timeout, (uint64_t)m->ready_timeout_s * 1000, 0);
    supervise_start_all(m);
    uv_run(m->loop, UV_RUN_DEFAULT);
    uv_walk(m->loop, close_handle, NULL);
    uv_run(m->loop, UV_RUN_DEFAULT);
    uv_loop_close(m->loop);
    for (size_t i = 0; i < m->nprocs; i++) {
        account_free(&m->procs[i].account);
        buf_free(&m->procs[i].failure);
    }
    scrape_close(m);
    buf_free(&m->stop_note);
    buf_free(&start_failure);
    conf_free(&m->conf);
    log_close();
    return exit_status;
}
