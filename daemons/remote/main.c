/*
 * onehop-remote — the SMTP client daemon (ARCHITECTURE "Routing and
 * delivery"):
 *
 *     onehop-remote [-C DIR]
 *
 * Takes jobs from the router on its channel (remote_proto.h; the
 * descriptor named by ONEHOP_CHANNEL_REMOTE, the master's name for this
 * end), delivers each (delivery.h) and sends back one result per
 * recipient and a job-done record. One libuv loop runs every delivery at
 * once: at most remote_concurrency in all and remote_destination_concurrency
 * per destination (a job's first next hop); the rest wait in arrival order,
 * and past WAITING_MAX waiting jobs the channel is not read (the router
 * waits: nothing here buffers without bound, each waiting job holds a
 * descriptor). DNS through the dnscache only (run_dir/dnscache.sock).
 * Started by the master (daemon_link_uv.h) it says READY once its channel
 * is open, re-reads onehop.conf on RELOAD or SIGHUP and stops on STOP,
 * SIGTERM or SIGINT; run without a master (a test driver) it also stops
 * when the router's channel closes (under the master a closed channel
 * waits for the master's STOP: the master restarts the channel's peers).
 * At a stop, deliveries under way finish and their results go to the
 * router; waiting jobs are left to it (it has them still and gives them
 * again at the next start). Once none is under way and every result is
 * written, the master link closes: the master then stops the router
 * (master/table.h STOP_FIRST), which journals those results first, so a
 * delivery under way at a stop is done once, not twice. The daemon ends
 * when the router's channel closes (without a master: at once). Deliveries
 * still under way after STOP_GRACE_MS are abandoned without results (the
 * router gives them again: at least once, never lost).
 *
 * It opens nothing under the queue: message content comes as descriptors.
 * Exit status: 0 after a stop, 1 when it cannot start.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "channel.h"
#include "conf.h"
#include "daemon_args.h"
#include "daemon_link.h"
#include "daemon_link_uv.h"
#include "diag.h"
#include "dnsclient.h"
#include "dnsproto.h"
#include "log.h"
#include "mem.h"
#include "nexthop.h"
#include "remote_proto.h"
#include "safeio.h"
#include "strparse.h"
#include "remote/delivery.h"
#include "remote/session.h"
#include "remote/xmetrics.h"

#define WAITING_MIN 64
#define STOP_GRACE_MS 18000 /* within the master's drain bound (2/3 of 30 s) */
#define DRAIN_POLL_MS 10

struct dest {
    char *key;
    uint64_t active;
    double window;    /* deliveries it may have under way (feedback below) */
    uint64_t next_ms; /* remote_destination_rate: the next start allowed (loop time) */
};

struct list {
    struct delivery *head, *tail;
    size_t n;
};

struct remote {
    uv_loop_t *loop;
    const char *confdir;
    struct conf conf;
    struct remote_env env;
    struct channel *router;
    struct daemon_link_uv *link;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t rate_timer; /* wakes the scheduler when a rate allows the next start */
    uv_timer_t stop_timer; /* a stop's bound on the deliveries under way */
    struct list waiting, active;
    struct dest *dests;
    size_t ndests, dests_cap;
    int paused, scheduling, stopping, finished;
    int supervised; /* started by the master (daemon_link.h) */
};

/* -------------------------------------------------------------- lists ---- */

static void list_push(struct list *l, struct delivery *d)
{
    d->prev = l->tail;
    d->next = NULL;
    if (l->tail)
        l->tail->next = d;
    else
        l->head = d;
    l->tail = d;
    l->n++;
}

static void list_remove(struct list *l, struct delivery *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        l->head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        l->tail = d->prev;
    d->prev = d->next = NULL;
    l->n--;
}

static struct dest *dest_find(struct remote *rm, const char *key)
{
    for (size_t i = 0; i < rm->ndests; i++)
        if (strcmp(rm->dests[i].key, key) == 0)
            return &rm->dests[i];
    return NULL;
}

/* -------------------------------------- per-destination concurrency ---- *
 *
 * After Postfix's destination concurrency feedback (qmgr_queue.c), in the
 * shape of TCP's congestion control (AIMD):
 *
 *   - a destination starts at remote_destination_concurrency (the operator's
 *     ceiling: a destination that never complains is not slowed down);
 *   - a delivery that met a sign of overload at the receiver -- a refused
 *     connection, a connect timeout, or a 421 ("too many connections",
 *     "try again later") -- halves the window (never below 1): a receiver
 *     that turns connections away must see fewer of them at once, quickly,
 *     or every retry adds to the storm it complains about;
 *   - a delivery that sent a message without such a sign grows the window
 *     by 1/window, so one whole window of successes adds one more
 *     concurrent delivery: the window comes back slowly, probing the
 *     receiver's real limit instead of jumping back over it.
 *   - jobs beyond the window wait here, in order; none is failed for it.
 * A destination is remembered while it has deliveries under way or its
 * window is below the ceiling, so the lesson outlives its last delivery.
 */

static double dest_ceiling(const struct remote *rm)
{
    return (double)rm->conf.remote_destination_concurrency;
}

static struct dest *dest_get(struct remote *rm, const char *key)
{
    struct dest *x = dest_find(rm, key);
    if (!x) {
        rm->dests = xgrow(rm->dests, &rm->dests_cap, rm->ndests + 1, sizeof(*rm->dests));
        x = &rm->dests[rm->ndests++];
        x->key = xstrdup(key);
        x->active = 0;
        x->window = dest_ceiling(rm);
        x->next_ms = 0;
    }
    return x;
}

/* remote_destination_rate (SPEC 3): starts evenly spaced, 1000/rate ms
 * apart, so that a receiver sees a steady trickle and never a burst. */
static uint64_t rate_interval_ms(const struct remote *rm)
{
    uint64_t rate = rm->conf.remote_destination_rate;
    return rate ? (1000 + rate - 1) / rate : 0;
}

/* Room for one more delivery to key now? */
static int dest_has_room(struct remote *rm, const char *key)
{
    const struct dest *x = dest_find(rm, key);
    if (x && rate_interval_ms(rm) && x->next_ms > uv_now(rm->loop))
        return 0;
    double window = x ? x->window : dest_ceiling(rm);
    if (window > dest_ceiling(rm)) /* lowered by a reload */
        window = dest_ceiling(rm);
    return !x || (double)x->active < (window < 1 ? 1 : window);
}

static void dest_take(struct remote *rm, const char *key)
{
    struct dest *x = dest_get(rm, key);
    uint64_t now = uv_now(rm->loop);
    x->active++;
    x->next_ms = (x->next_ms > now ? x->next_ms : now) + rate_interval_ms(rm);
}

static void dest_feedback(struct dest *x, const struct delivery *d, double ceiling)
{
    if (d->congested) {
        x->window = x->window / 2 < 1 ? 1 : x->window / 2;
        log_info("destination %s: concurrency window down to %.0f (%s)", x->key, x->window,
                 "refused, timed out or 421");
    } else if (d->delivered) {
        x->window += 1 / (x->window < 1 ? 1 : x->window);
        if (x->window > ceiling)
            x->window = ceiling;
    }
}

static void dest_release(struct remote *rm, const struct delivery *d)
{
    struct dest *x = dest_find(rm, d->dest);
    if (!x)
        return;
    x->active--;
    if (!d->aborted)
        dest_feedback(x, d, dest_ceiling(rm));
    if (x->active > 0 || x->window < dest_ceiling(rm) || x->next_ms > uv_now(rm->loop))
        return; /* still under way, or a lesson or a rate to remember */
    free(x->key);
    *x = rm->dests[--rm->ndests];
}

/* ---------------------------------------------------------- scheduling ---- */

static size_t waiting_max(const struct remote *rm)
{
    return rm->conf.remote_concurrency > WAITING_MIN ? rm->conf.remote_concurrency : WAITING_MIN;
}

/* The first waiting delivery whose destination has room, or NULL. */
static struct delivery *next_runnable(struct remote *rm)
{
    for (struct delivery *d = rm->waiting.head; d; d = d->next)
        if (dest_has_room(rm, d->dest))
            return d;
    return NULL;
}

static void schedule(struct remote *rm);
static void drain_check(struct remote *rm);
static void on_drain_poll(uv_timer_t *t);

static void on_rate_timer(uv_timer_t *t)
{
    schedule(t->data);
}

/* Jobs held back only by a rate: wake up when the earliest may start. */
static void wake_for_rate(struct remote *rm)
{
    uint64_t now = uv_now(rm->loop), first = 0;
    if (!rate_interval_ms(rm) || rm->active.n >= rm->conf.remote_concurrency)
        return;
    for (struct delivery *d = rm->waiting.head; d; d = d->next) {
        const struct dest *x = dest_find(rm, d->dest);
        if (x && x->next_ms > now && (!first || x->next_ms < first))
            first = x->next_ms;
    }
    if (first)
        uv_timer_start(&rm->rate_timer, on_rate_timer, first - now, 0);
}

static void schedule(struct remote *rm)
{
    if (rm->scheduling || rm->stopping)
        return; /* a delivery that finished inside delivery_start: the loop below goes on */
    rm->scheduling = 1;
    struct delivery *d;
    while (rm->active.n < rm->conf.remote_concurrency && (d = next_runnable(rm)) != NULL) {
        list_remove(&rm->waiting, d);
        list_push(&rm->active, d);
        dest_take(rm, d->dest);
        delivery_start(d); /* may finish at once (on_done) */
    }
    rm->scheduling = 0;
    wake_for_rate(rm);
    if (rm->paused && rm->waiting.n < waiting_max(rm) && rm->router) {
        rm->paused = 0;
        channel_resume_reading(rm->router);
    }
}

static void on_done(void *arg, struct delivery *d)
{
    struct remote *rm = arg;
    list_remove(&rm->active, d);
    dest_release(rm, d);
    if (!d->aborted && rm->router) {
        struct buf records = BUF_INIT;
        delivery_results(d, &records);
        channel_send_buf(rm->router, &records);
        buf_free(&records);
    }
    delivery_free(d);
    schedule(rm);
    drain_check(rm);
}

/* ---------------------------------------------------------------- jobs ---- */

/* Text that goes into an SMTP command line: no control character, no
 * angle bracket (the caller must not be able to split or end a command). */
static int smtp_text_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>')
            return 0;
    return 1;
}

static const char *check_job(const struct rp_job *j)
{
    if (!smtp_text_ok(j->sender))
        return "job: sender with characters an SMTP command cannot carry";
    for (size_t i = 0; i < j->nrcpt; i++)
        if (!j->rcpt[i].address[0] || !smtp_text_ok(j->rcpt[i].address) ||
            !smtp_text_ok(j->rcpt[i].orcpt) || strchr(j->rcpt[i].orcpt, ' '))
            return "job: recipient with characters an SMTP command cannot carry";
    for (size_t i = 0; i < j->nhops; i++) {
        struct nexthop nh;
        const char *why;
        if (nexthop_parse(j->hops[i], NEXTHOP_NO_LOCAL | NEXTHOP_NO_ERROR, &nh, &why) < 0)
            return "job: a next hop that is not one";
        nexthop_free(&nh);
    }
    return NULL;
}

/* A job whose content cannot be read: every recipient temporary at once. */
static void refuse_job(struct remote *rm, const struct rp_job *j, const char *why)
{
    struct buf records = BUF_INIT, text = BUF_INIT;
    buf_printf(&text, "cannot read the message: %s", why);
    for (size_t i = 0; i < j->nrcpt; i++) {
        struct rp_result r = {j->job, (uint32_t)i, RP_TEMP, text.s, "none", "none", 0, 0};
        rp_put_result(&records, &r);
        log_info("%s: to=<%s>, relay=none, delay=0, status=deferred (%s)", j->queue_id,
                 j->rcpt[i].address, text.s);
    }
    rp_put_done(&records, j->job, (uint32_t)j->nrcpt);
    channel_send_buf(rm->router, &records);
    buf_free(&records);
    buf_free(&text);
}

static const char *on_job(struct remote *rm, struct chan_record *rec)
{
    struct rp_job j;
    const char *why;
    if (rp_get_job(rec->data, rec->len, &j, &why) < 0)
        return why;
    if (rm->stopping) { /* left to the router: it gives it again at the next start */
        rp_job_free(&j);
        return NULL;
    }
    if (rec->nfds != 1) {
        rp_job_free(&j);
        return "job without its message descriptor";
    }
    if ((why = check_job(&j)) != NULL) {
        rp_job_free(&j);
        return why;
    }
    int fd = chan_record_take_fd(rec, 0);
    struct delivery *d = delivery_new(&rm->env, &j, fd, on_done, rm, &why);
    if (!d) {
        refuse_job(rm, &j, why);
        rp_job_free(&j);
        return NULL;
    }
    list_push(&rm->waiting, d);
    if (rm->waiting.n >= waiting_max(rm) && !rm->paused) {
        rm->paused = 1;
        channel_pause_reading(rm->router);
    }
    schedule(rm);
    return NULL;
}

static const char *on_record(void *arg, struct channel *ch, struct chan_record *rec)
{
    struct remote *rm = arg;
    if (rp_record_type(rec->data, rec->len) != RP_JOB)
        return "unexpected record from the router";
    return on_job(rm, rec);
}

/* ---------------------------------------------------------- life cycle ---- */

static void stop(struct remote *rm, const char *why);

static void abandon_active(struct remote *rm)
{
    for (struct delivery *d = rm->active.head, *next; d; d = next) {
        next = d->next;
        delivery_abort(d); /* on_done frees it, now or once its session closed */
    }
}

/* The end of a stop: what is still under way is abandoned without results
 * (the router gives it again), nothing more goes to the router or the
 * master, and the loop ends. */
static void finish(struct remote *rm)
{
    if (rm->finished)
        return;
    rm->finished = 1;
    abandon_active(rm);
    daemon_link_uv_close(rm->link);
    rm->link = NULL;
    channel_close(rm->router);
    rm->router = NULL;
    session_close_idle(&rm->env);
    dnsclient_free(rm->env.dns);
    rm->env.dns = NULL;
    uv_close((uv_handle_t *)&rm->stop_timer, NULL);
    uv_close((uv_handle_t *)&rm->sigterm, NULL);
    uv_close((uv_handle_t *)&rm->sigint, NULL);
    uv_close((uv_handle_t *)&rm->sighup, NULL);
}

/* Without a master the router's end is the driver's: its close ends the
 * daemon. Under the master, the master renews the channel and restarts us
 * with STOP (its channel peer exited): exiting here would race with it.
 * During a stop, the router's close is the end. */
static void on_router_close(void *arg, struct channel *ch, const char *reason)
{
    struct remote *rm = arg;
    rm->router = NULL;
    if (rm->stopping) {
        finish(rm);
        return;
    }
    if (!rm->supervised) {
        stop(rm, reason);
        return;
    }
    log_warn("router channel closed (%s); waiting for the master", reason);
}

/* A stop's drain is over once no delivery is under way and every result
 * is written: the master link closes (the master may stop the router
 * now), and the daemon ends with the router's channel (or a second
 * SIGTERM); without a master, at once. */
static void drain_check(struct remote *rm)
{
    if (!rm->stopping || rm->finished)
        return;
    if (!rm->router) {
        finish(rm); /* no router to answer: nothing to wait for */
        return;
    }
    if (rm->active.n > 0 || !rm->link)
        return;
    if (channel_pending(rm->router) > 0) {
        uv_timer_start(&rm->stop_timer, on_drain_poll, DRAIN_POLL_MS, 0);
        return;
    }
    log_info("stop: every delivery under way is answered");
    uv_timer_stop(&rm->stop_timer);
    daemon_link_uv_close(rm->link);
    rm->link = NULL;
    session_close_idle(&rm->env);
    if (!rm->supervised)
        finish(rm);
}

static void on_drain_poll(uv_timer_t *t)
{
    drain_check(t->data);
}

static void on_stop_grace(uv_timer_t *t)
{
    struct remote *rm = t->data;
    log_warn("stop: %zu deliveries still under way after %d s; abandoned (the router gives them "
             "again)",
             rm->active.n, STOP_GRACE_MS / 1000);
    abandon_active(rm);
    drain_check(rm);
}

static void stop(struct remote *rm, const char *why)
{
    if (rm->stopping)
        return;
    rm->stopping = 1;
    log_info("stopping (%s): %zu deliveries under way finish, %zu waiting are left to the router",
             why, rm->active.n, rm->waiting.n);
    while (rm->waiting.head) {
        struct delivery *d = rm->waiting.head;
        list_remove(&rm->waiting, d);
        delivery_free(d);
    }
    uv_close((uv_handle_t *)&rm->rate_timer, NULL);
    uv_timer_start(&rm->stop_timer, on_stop_grace, STOP_GRACE_MS, 0);
    drain_check(rm);
}

static void reload(struct remote *rm)
{
    struct conf fresh;
    struct diag dg = DIAG_INIT;
    if (conf_load(&fresh, rm->confdir, &dg) < 0) {
        diag_log(&dg);
        log_warn("reload refused: configuration errors; keeping the running settings");
        conf_free(&fresh);
    } else {
        conf_free(&rm->conf);
        rm->conf = fresh;
        mx_self_free(&rm->env.self);
        mx_self_from_conf(&rm->env.self, &rm->conf);
        log_info("reloaded: remote_concurrency %llu, remote_destination_concurrency %llu",
                 (unsigned long long)rm->conf.remote_concurrency,
                 (unsigned long long)rm->conf.remote_destination_concurrency);
        schedule(rm);
    }
    diag_free(&dg);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct remote *rm = h->data;
    if (signum == SIGHUP && !rm->stopping)
        reload(rm);
    else if (rm->stopping && signum != SIGHUP)
        finish(rm); /* asked again: end without waiting for the router */
    else if (signum != SIGHUP)
        stop(rm, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_master_reload(void *arg)
{
    reload(arg);
}

static void on_master_stop(void *arg)
{
    stop(arg, "master");
}

static void watch_signal(struct remote *rm, uv_signal_t *h, int signum)
{
    uv_signal_init(rm->loop, h);
    h->data = rm;
    uv_signal_start(h, on_signal, signum);
}

static int router_fd(void)
{
    const char *s = getenv(RP_CHANNEL_ENV);
    uint64_t fd;
    const char *why;
    if (!s)
        log_die(1,
                "%s is not set: onehop-remote is started by the master, or by a test "
                "driver, with its router channel",
                RP_CHANNEL_ENV);
    if (parse_uint(s, 0, 65535, &fd, &why) < 0)
        log_die(1, "%s=%s: %s", RP_CHANNEL_ENV, s, why);
    unsetenv(RP_CHANNEL_ENV);
    return (int)fd;
}

static void start(struct remote *rm)
{
    static const struct channel_ops ops = {on_record, NULL, on_router_close};
    struct channel_opts opts = {"router", RP_RECORD_MAX, 1, 0, 0, 0};
    struct buf err = BUF_INIT, path = BUF_INIT;
    rm->env.loop = rm->loop;
    uv_timer_init(rm->loop, &rm->rate_timer);
    rm->rate_timer.data = rm;
    uv_timer_init(rm->loop, &rm->stop_timer);
    rm->stop_timer.data = rm;
    rm->env.conf = &rm->conf;
    mx_self_from_conf(&rm->env.self, &rm->conf);
    mx_rng_init(&rm->env.rng, 0);
    dnsc_socket_path(rm->conf.run_dir, &path);
    /* a lookup may take dns_lookup_timeout in the cache; allow for the trip */
    rm->env.dns = dnsclient_new(rm->loop, path.s, (rm->conf.dns_lookup_timeout + 5) * 1000);
    rm->router = channel_open(rm->loop, router_fd(), &opts, &ops, rm, &err);
    if (!rm->router)
        log_die(1, "router channel: %s", buf_cstr(&err));
    channel_batch_rounds(rm->router); /* a round's results in one write */
    log_info("started: remote_concurrency %llu, remote_destination_concurrency %llu, dnscache %s",
             (unsigned long long)rm->conf.remote_concurrency,
             (unsigned long long)rm->conf.remote_destination_concurrency, path.s);
    buf_free(&path);
    buf_free(&err);
}

int main(int argc, char **argv)
{
    struct remote rm;
    memset(&rm, 0, sizeof(rm));
    int rc = daemon_begin(argc, argv, "remote", &rm.conf, &rm.confdir);
    if (rc != 0)
        return rc;
    rm.loop = uv_default_loop();
    rm.supervised = getenv(DAEMON_LINK_ENV) != NULL;
    rm.link = daemon_link_uv_start(rm.loop, on_master_reload, on_master_stop, &rm);
    xmetrics_start();
    start(&rm);
    watch_signal(&rm, &rm.sigterm, SIGTERM);
    watch_signal(&rm, &rm.sigint, SIGINT);
    watch_signal(&rm, &rm.sighup, SIGHUP);
    daemon_link_uv_ready(rm.link);
    uv_run(rm.loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < rm.ndests; i++)
        free(rm.dests[i].key); /* windows remembered below their ceiling */
    free(rm.dests);
    mx_self_free(&rm.env.self);
    conf_free(&rm.conf);
    uv_loop_close(rm.loop);
    log_info("stopped");
    log_close();
    return 0;
}
