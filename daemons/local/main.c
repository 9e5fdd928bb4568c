/*
 * onehop-local — the local delivery daemon (SPEC 7; ARCHITECTURE "local"):
 *
 *     onehop-local [-C DIR]              the daemon, fed by the router
 *     onehop-local [-C DIR] --deliver    one delivery (agent.h; the daemon's own use)
 *
 * Takes jobs from the router on its channel (local_proto.h; the descriptor
 * named by ONEHOP_CHANNEL_LOCAL), and runs every recipient of a job as one
 * delivery agent process (agent.h: this program again, with --deliver),
 * at most local_concurrency at once, the rest waiting in arrival order;
 * past WAITING_MAX waiting jobs the channel is not read (the router waits;
 * each waiting job holds a descriptor). For every recipient it sends the
 * router one RP_RESULT as the agent ends, and once all are in, RP_DONE;
 * and logs its fate (SPEC 8):
 *
 *   ID: to=<alice@host>, orig_to=<team@host>, relay=local, delay=0.05, status=sent (delivered to
 * maildir)
 *
 * (orig_to when an alias led there; for a |command or /file target, to= is
 * the address it was for). An agent that ends without a result (killed,
 * crashed) makes its recipient temporary.
 *
 * Under a root master the daemon keeps root (the master's row has no
 * account) so that its agents can take each recipient's rights; the daemon
 * itself opens no mailbox, command or user file: it only reads records,
 * holds descriptors and starts agents. Started by the master
 * (daemon_link_uv.h) it says READY once its channel is open, re-reads
 * onehop.conf on RELOAD or SIGHUP and stops on STOP, SIGTERM or SIGINT;
 * run without a master (a test driver) it also stops when the router's
 * channel closes. At a stop, agents under way finish their delivery (a
 * mailbox write is never cut short) and their results go to the router as
 * usual; jobs not started are left to the router (it has them still and
 * gives them again at the next start). Once no agent runs and every result
 * is written, the master link closes: the master then stops the router
 * (master/table.h STOP_FIRST), which journals those results first, so a
 * delivery under way at a stop is done once, not twice. The daemon ends
 * when the router's channel closes (without a master: at once). After
 * STOP_GRACE_MS agents still running are killed (their recipients are
 * answered temporary).
 * Exit status: 0 after a stop, 1 when it cannot start.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <uv.h>

#include "channel.h"
#include "conf.h"
#include "daemon_args.h"
#include "daemon_link.h"
#include "daemon_link_uv.h"
#include "diag.h"
#include "local_proto.h"
#include "log.h"
#include "mem.h"
#include "safeio.h"
#include "strparse.h"
#include "local/agent.h"

#define WAITING_MAX 64
#define STOP_GRACE_MS 18000 /* within the master's drain bound (2/3 of 30 s) */
#define DRAIN_POLL_MS 10
#define AGENT_GRACE_S 300 /* an agent past local_command_timeout + this is killed */

struct job {
    struct lp_job j;
    int fd;         /* the message */
    size_t started; /* recipients given to an agent */
    size_t results; /* results sent */
    struct job *next;
};

struct agent {
    struct local *lo;
    struct job *job;
    size_t index;
    uv_process_t proc;
    uv_pipe_t in, out;
    uv_timer_t guard;
    uv_write_t wr;
    struct buf request, answer;
    int exited, out_done, finished, open_handles;
    int64_t exit_status;
    int term_signal;
};

struct local {
    uv_loop_t *loop;
    const char *confdir;
    struct conf conf;
    struct channel *router;
    struct daemon_link_uv *link;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t stop_timer, drain_timer;
    struct job *head, *tail;
    size_t njobs, running;
    struct agent **agents; /* running, for the stop */
    size_t nagents, agents_cap;
    int paused, stopping, finished, supervised;
    struct buf self; /* daemon_dir/onehop-local */
};

static void schedule(struct local *lo);
static void drain_check(struct local *lo);

/* ---------------------------------------------------------------- jobs ---- */

static void job_free(struct job *jb)
{
    if (jb->fd >= 0)
        close(jb->fd);
    lp_job_free(&jb->j);
    free(jb);
}

static void job_unlink(struct local *lo, struct job *jb)
{
    struct job **pp = &lo->head;
    while (*pp && *pp != jb)
        pp = &(*pp)->next;
    if (*pp)
        *pp = jb->next;
    lo->tail = NULL;
    for (struct job *x = lo->head; x; x = x->next)
        lo->tail = x;
    lo->njobs--;
}

static uint64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static const char *status_word(enum rp_class c)
{
    return c == RP_OK ? "sent" : c == RP_PERM ? "bounced" : "deferred";
}

/* "2.0.0 delivered to maildir" -> "delivered to maildir" (the log's text). */
static const char *without_code(const char *reply)
{
    const char *p = reply;
    if (p[0] >= '2' && p[0] <= '5' && p[1] == '.') {
        p += strcspn(p, " ");
        while (*p == ' ')
            p++;
    }
    return *p ? p : reply;
}

/* SPEC 8: one line per recipient's fate. */
static void log_result(const struct job *jb, const struct lp_rcpt *rc, const struct rp_result *r)
{
    int target = rc->recipient[0] == '|' || rc->recipient[0] == '/';
    const char *to = target ? rc->original : rc->recipient;
    struct buf orig = BUF_INIT;
    if (!target && strcmp(rc->original, rc->recipient) != 0)
        buf_printf(&orig, ", orig_to=<%s>", rc->original);
    log_info("%s: to=<%s>%s, relay=local, delay=%.2f, status=%s (%s)", jb->j.queue_id, to,
             buf_cstr(&orig), (double)r->delay_ms / 1000, status_word(r->cls),
             without_code(r->reply));
    buf_free(&orig);
}

static void send_result(struct local *lo, struct job *jb, size_t index, enum rp_class cls,
                        const char *reply, const char *relay)
{
    uint64_t from = jb->j.arrival_us, now = now_us();
    struct rp_result r = {jb->j.job,
                          (uint32_t)index,
                          cls,
                          reply,
                          relay,
                          "none",
                          from && now > from ? (now - from) / 1000 : 0,
                          0};
    log_result(jb, &jb->j.rcpt[index], &r);
    struct buf rec = BUF_INIT;
    rp_put_result(&rec, &r);
    if (++jb->results == jb->j.nrcpt)
        rp_put_done(&rec, jb->j.job, (uint32_t)jb->j.nrcpt);
    if (lo->router)
        channel_send_buf(lo->router, &rec);
    buf_free(&rec);
    if (jb->results == jb->j.nrcpt) {
        job_unlink(lo, jb);
        job_free(jb);
    }
}

/* -------------------------------------------------------------- agents ---- */

static void agent_forget(struct local *lo, struct agent *a)
{
    for (size_t i = 0; i < lo->nagents; i++)
        if (lo->agents[i] == a) {
            lo->agents[i] = lo->agents[--lo->nagents];
            break;
        }
}

static void on_agent_handle_closed(uv_handle_t *h)
{
    struct agent *a = h->data;
    if (--a->open_handles > 0)
        return;
    buf_free(&a->request);
    buf_free(&a->answer);
    free(a);
}

static void agent_close(struct agent *a, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_agent_handle_closed);
}

/* The agent's answer, checked: its own result for job and index 0. */
static void agent_finish(struct agent *a)
{
    struct local *lo = a->lo;
    struct rp_result r;
    struct buf text = BUF_INIT, reply = BUF_INIT;
    const char *why;
    a->finished = 1;
    agent_forget(lo, a);
    lo->running--;
    if (rp_get_result(a->answer.s, a->answer.len, &r, &text, &why) == 0 && r.job == a->job->j.job &&
        r.index == 0) {
        send_result(lo, a->job, a->index, r.cls, r.reply, r.relay);
    } else {
        if (a->term_signal)
            buf_printf(&reply, "4.3.0 the delivery agent was killed by signal %d", a->term_signal);
        else
            buf_printf(&reply, "4.3.0 the delivery agent ended without a result (status %lld)",
                       (long long)a->exit_status);
        send_result(lo, a->job, a->index, RP_TEMP, reply.s, "local");
    }
    buf_free(&text);
    buf_free(&reply);
    agent_close(a, (uv_handle_t *)&a->guard);
    agent_close(a, (uv_handle_t *)&a->proc);
    schedule(lo);
    drain_check(lo);
}

static void agent_maybe_done(struct agent *a)
{
    if (a->exited && a->out_done && !a->finished)
        agent_finish(a);
}

static void on_agent_exit(uv_process_t *p, int64_t status, int term_signal)
{
    struct agent *a = p->data;
    a->exited = 1;
    a->exit_status = status;
    a->term_signal = term_signal;
    agent_maybe_done(a);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct agent *a = h->data;
    buf_reserve(&a->answer, suggested);
    b->base = a->answer.s + a->answer.len;
    b->len = a->answer.cap - a->answer.len - 1;
}

static void on_answer(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct agent *a = s->data;
    if (n > 0) {
        a->answer.len += (size_t)n;
        if (a->answer.len > LP_RECORD_MAX)
            n = UV_EOF; /* more than any result: the answer is bad */
        else
            return;
    }
    if (n < 0) {
        a->out_done = 1;
        agent_close(a, (uv_handle_t *)&a->out);
        agent_maybe_done(a);
    }
}

static void on_request_written(uv_write_t *w, int status)
{
    struct agent *a = w->data;
    agent_close(a, (uv_handle_t *)&a->in);
}

static void on_guard(uv_timer_t *t)
{
    struct agent *a = t->data;
    log_warn("%s: the delivery agent for recipient %zu runs too long; killed", a->job->j.queue_id,
             a->index);
    uv_process_kill(&a->proc, SIGKILL);
}

/* The one-recipient job the agent reads on its standard input. */
static void agent_request(const struct job *jb, size_t index, struct buf *out)
{
    struct lp_job one = jb->j;
    one.rcpt = &jb->j.rcpt[index];
    one.nrcpt = 1;
    lp_put_job(out, &one);
}

static int agent_spawn(struct local *lo, struct agent *a)
{
    char *args[] = {lo->self.s, "-C", (char *)lo->conf.config_dir, AGENT_FLAG, NULL};
    uv_stdio_container_t stdio[4];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&a->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&a->out;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = a->job->fd;
    uv_process_options_t opts;
    memset(&opts, 0, sizeof(opts));
    opts.exit_cb = on_agent_exit;
    opts.file = lo->self.s;
    opts.args = args;
    opts.stdio_count = 4;
    opts.stdio = stdio;
    return uv_spawn(lo->loop, &a->proc, &opts);
}

static void agent_start(struct local *lo, struct job *jb, size_t index)
{
    struct agent *a = xcalloc(1, sizeof(*a));
    a->lo = lo;
    a->job = jb;
    a->index = index;
    uv_pipe_init(lo->loop, &a->in, 0);
    uv_pipe_init(lo->loop, &a->out, 0);
    uv_timer_init(lo->loop, &a->guard);
    a->in.data = a->out.data = a->guard.data = a->proc.data = a->wr.data = a;
    a->open_handles = 3;
    int rc = agent_spawn(lo, a);
    if (rc < 0) {
        struct buf reply = BUF_INIT;
        buf_printf(&reply, "4.3.0 cannot start the delivery agent %s: %s", lo->self.s,
                   uv_strerror(rc));
        agent_close(a, (uv_handle_t *)&a->in);
        agent_close(a, (uv_handle_t *)&a->out);
        agent_close(a, (uv_handle_t *)&a->guard);
        send_result(lo, jb, index, RP_TEMP, reply.s, "local");
        buf_free(&reply);
        return;
    }
    a->open_handles++; /* the process handle */
    lo->running++;
    lo->agents = xgrow(lo->agents, &lo->agents_cap, lo->nagents + 1, sizeof(*lo->agents));
    lo->agents[lo->nagents++] = a;
    agent_request(jb, index, &a->request);
    uv_buf_t b = uv_buf_init(a->request.s, (unsigned)a->request.len);
    if (uv_write(&a->wr, (uv_stream_t *)&a->in, &b, 1, on_request_written) < 0)
        agent_close(a, (uv_handle_t *)&a->in);
    uv_read_start((uv_stream_t *)&a->out, on_alloc, on_answer);
    uv_timer_start(&a->guard, on_guard, (lo->conf.local_command_timeout + AGENT_GRACE_S) * 1000, 0);
}

/* ---------------------------------------------------------- scheduling ---- */

static void schedule(struct local *lo)
{
    if (lo->stopping)
        return;
    for (struct job *jb = lo->head; jb && lo->running < lo->conf.local_concurrency;) {
        struct job *next = jb->next;
        while (jb->started < jb->j.nrcpt && lo->running < lo->conf.local_concurrency) {
            size_t index = jb->started++;
            int last_start = jb->started == jb->j.nrcpt;
            /* a job is freed with its last result, so never before its last
             * start: only then may agent_start (a failed spawn) free it */
            agent_start(lo, jb, index);
            if (last_start)
                break;
        }
        jb = next;
    }
    if (lo->paused && lo->njobs < WAITING_MAX && lo->router) {
        lo->paused = 0;
        channel_resume_reading(lo->router);
    }
}

static const char *on_job(struct local *lo, struct chan_record *rec)
{
    struct job *jb = xcalloc(1, sizeof(*jb));
    const char *why;
    jb->fd = -1;
    if (lp_get_job(rec->data, rec->len, &jb->j, &why) < 0) {
        free(jb);
        return why;
    }
    if (rec->nfds != 1) {
        job_free(jb);
        return "job without its message descriptor";
    }
    jb->fd = chan_record_take_fd(rec, 0);
    if (lo->tail)
        lo->tail->next = jb;
    else
        lo->head = jb;
    lo->tail = jb;
    lo->njobs++;
    if (lo->njobs >= WAITING_MAX && !lo->paused) {
        lo->paused = 1;
        channel_pause_reading(lo->router);
    }
    schedule(lo);
    return NULL;
}

static const char *on_record(void *arg, struct channel *ch, struct chan_record *rec)
{
    if (rp_record_type(rec->data, rec->len) != LP_JOB)
        return "unexpected record from the router";
    return on_job(arg, rec);
}

/* ---------------------------------------------------------- life cycle ---- */

static void stop(struct local *lo, const char *why);

/* The end of a stop: nothing more goes to the router or the master; the
 * loop ends with the last agent. */
static void finish(struct local *lo)
{
    if (lo->finished)
        return;
    lo->finished = 1;
    daemon_link_uv_close(lo->link);
    lo->link = NULL;
    channel_close(lo->router);
    lo->router = NULL;
    uv_timer_stop(&lo->drain_timer);
    uv_close((uv_handle_t *)&lo->sigterm, NULL);
    uv_close((uv_handle_t *)&lo->sigint, NULL);
    uv_close((uv_handle_t *)&lo->sighup, NULL);
}

static void on_router_close(void *arg, struct channel *ch, const char *reason)
{
    struct local *lo = arg;
    lo->router = NULL;
    if (lo->stopping) {
        finish(lo); /* the router stopped: nobody is left to answer */
        return;
    }
    if (!lo->supervised) {
        stop(lo, reason);
        return;
    }
    log_warn("router channel closed (%s); waiting for the master", reason);
}

static void on_drain_poll(uv_timer_t *t)
{
    drain_check(t->data);
}

/* A stop's drain is over once no agent runs and every result is written:
 * the master link closes (the master may stop the router now), and the
 * daemon ends with the router's channel (or a second SIGTERM); without a
 * master, at once. */
static void drain_check(struct local *lo)
{
    if (!lo->stopping || lo->finished)
        return;
    if (!lo->router) {
        finish(lo); /* no router to answer: nothing to wait for */
        return;
    }
    if (lo->running > 0 || !lo->link)
        return;
    if (channel_pending(lo->router) > 0) {
        uv_timer_start(&lo->drain_timer, on_drain_poll, DRAIN_POLL_MS, 0);
        return;
    }
    log_info("stop: every delivery under way is answered");
    daemon_link_uv_close(lo->link);
    lo->link = NULL;
    if (!lo->supervised)
        finish(lo);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct local *lo = t->data;
    log_warn("stop: %zu delivery agents still running after %d s; killed", lo->nagents,
             STOP_GRACE_MS / 1000);
    for (size_t i = 0; i < lo->nagents; i++)
        uv_process_kill(&lo->agents[i]->proc, SIGKILL);
}

static void stop(struct local *lo, const char *why)
{
    if (lo->stopping)
        return;
    lo->stopping = 1;
    log_info("stopping (%s): %zu deliveries under way finish, %zu jobs are left to the router", why,
             lo->running, lo->njobs);
    uv_timer_start(&lo->stop_timer, on_stop_timer, STOP_GRACE_MS, 0);
    uv_unref((uv_handle_t *)&lo->stop_timer); /* the loop ends with the last agent */
    drain_check(lo);
}

static void reload(struct local *lo)
{
    struct conf fresh;
    struct diag dg = DIAG_INIT;
    if (conf_load(&fresh, lo->confdir, &dg) < 0) {
        diag_log(&dg);
        log_warn("reload refused: configuration errors; keeping the running settings");
        conf_free(&fresh);
    } else {
        conf_free(&lo->conf);
        lo->conf = fresh;
        log_info("reloaded: local_concurrency %llu",
                 (unsigned long long)lo->conf.local_concurrency);
        schedule(lo);
    }
    diag_free(&dg);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct local *lo = h->data;
    if (signum == SIGHUP && !lo->stopping)
        reload(lo);
    else if (lo->stopping && signum != SIGHUP)
        finish(lo); /* asked again: end without waiting for the router */
    else if (signum != SIGHUP)
        stop(lo, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_master_reload(void *arg)
{
    reload(arg);
}

static void on_master_stop(void *arg)
{
    stop(arg, "master");
}

static void watch_signal(struct local *lo, uv_signal_t *h, int signum)
{
    uv_signal_init(lo->loop, h);
    h->data = lo;
    uv_signal_start(h, on_signal, signum);
}

static int router_fd(void)
{
    const char *s = getenv(LP_CHANNEL_ENV);
    uint64_t fd;
    const char *why;
    if (!s)
        log_die(1,
                "%s is not set: onehop-local is started by the master, or by a test "
                "driver, with its router channel",
                LP_CHANNEL_ENV);
    if (parse_uint(s, 0, 65535, &fd, &why) < 0)
        log_die(1, "%s=%s: %s", LP_CHANNEL_ENV, s, why);
    unsetenv(LP_CHANNEL_ENV);
    fcntl((int)fd, F_SETFD, FD_CLOEXEC); /* never into an agent */
    return (int)fd;
}

static void start(struct local *lo)
{
    static const struct channel_ops ops = {on_record, NULL, on_router_close};
    struct channel_opts opts = {"router", LP_RECORD_MAX, 1, 0, 0, 0};
    struct buf err = BUF_INIT;
    path_join(&lo->self, lo->conf.daemon_dir, "onehop-local");
    if (access(lo->self.s, X_OK) < 0)
        log_die(1, "%s: %m (the delivery agent is this program, in daemon_dir)", lo->self.s);
    uv_timer_init(lo->loop, &lo->stop_timer);
    lo->stop_timer.data = lo;
    uv_timer_init(lo->loop, &lo->drain_timer);
    lo->drain_timer.data = lo;
    lo->router = channel_open(lo->loop, router_fd(), &opts, &ops, lo, &err);
    if (!lo->router)
        log_die(1, "router channel: %s", buf_cstr(&err));
    log_info("started: local_concurrency %llu, mailbox %s, local_users %s%s",
             (unsigned long long)lo->conf.local_concurrency, lo->conf.mailbox,
             lo->conf.local_users == LOCAL_USERS_ANY ? "any" : "passwd",
             geteuid() == 0 ? ", as root (agents take each recipient's rights)" : "");
    buf_free(&err);
}

/* argv without --deliver; 1 if it was there. */
static int take_agent_flag(int *argc, char **argv)
{
    int found = 0, n = 0;
    for (int i = 0; i < *argc; i++) {
        if (i > 0 && strcmp(argv[i], AGENT_FLAG) == 0)
            found = 1;
        else
            argv[n++] = argv[i];
    }
    argv[n] = NULL;
    *argc = n;
    return found;
}

int main(int argc, char **argv)
{
    struct local lo;
    memset(&lo, 0, sizeof(lo));
    int agent = take_agent_flag(&argc, argv);
    int rc = daemon_begin(argc, argv, "local", &lo.conf, &lo.confdir);
    if (rc != 0)
        return agent ? 75 : rc;
    if (agent) {
        rc = agent_main(&lo.conf);
        conf_free(&lo.conf);
        log_close();
        return rc;
    }
    lo.loop = uv_default_loop();
    lo.supervised = getenv(DAEMON_LINK_ENV) != NULL;
    lo.link = daemon_link_uv_start(lo.loop, on_master_reload, on_master_stop, &lo);
    start(&lo);
    watch_signal(&lo, &lo.sigterm, SIGTERM);
    watch_signal(&lo, &lo.sigint, SIGINT);
    watch_signal(&lo, &lo.sighup, SIGHUP);
    daemon_link_uv_ready(lo.link);
    uv_run(lo.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&lo.stop_timer, NULL);
    uv_close((uv_handle_t *)&lo.drain_timer, NULL);
    uv_run(lo.loop, UV_RUN_NOWAIT);
    while (lo.head) {
        struct job *jb = lo.head;
        lo.head = jb->next;
        job_free(jb);
    }
    free(lo.agents);
    buf_free(&lo.self);
    conf_free(&lo.conf);
    uv_loop_close(lo.loop);
    log_info("stopped");
    log_close();
    return 0;
}
