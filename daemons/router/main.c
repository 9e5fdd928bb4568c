/*
 * onehop-router — the queue manager (issue 11; qmail-send's and Postfix
 * qmgr's role):
 *
 *     onehop-router [-C DIR]
 *
 * One libuv loop. Started by the master (daemon_link_uv.h) under the
 * router account, with the cleaner's channel in ONEHOP_CHANNEL_CLEANER and
 * the remote's in ONEHOP_CHANNEL_REMOTE. At start it opens the queue and
 * asks the cleaner for RECOVER, then opens the queue and its state side as
 * the owner (queue/state.h: state/lock for its life), learns the queue and
 * says READY. New
 * mail is learned when the trigger FIFO (run_dir/queue.trigger) is pulled,
 * by a safety scan every SCAN_INTERVAL_MS, and at the start. Each loop
 * iteration ends in router_pump(): learn, hand out what is due
 * (dispatch.h), ONE state_flush() for everything recorded in the
 * iteration (group commit), then act on what is durable (held log lines,
 * dispatches ended, the cleaner's requests: cleaner_link.h), and arm the
 * timer for the next due time. RELOAD (or SIGHUP) re-reads onehop.conf and
 * the maps; STOP (or SIGTERM, SIGINT) flushes and exits 0; deliveries in
 * flight are left (due again at the next start: at least once).
 *
 * Exit status: 0 after a stop, 1 when it cannot start or the state fails
 * (fail-stop: the master restarts it and the journal is the truth).
 * Must never: act on a change before it is durable, or hold the whole
 * queue in memory (the state side's active window, queue_active_limit).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "daemon_args.h"
#include "daemon_link.h"
#include "daemon_link_uv.h"
#include "confcheck.h"
#include "diag.h"
#include "log.h"
#include "mem.h"
#include "strparse.h"
#include "router/cleaner_link.h"
#include "router/control.h"
#include "router/dispatch.h"
#include "router/incoming_watch.h"
#include "router/rmetrics.h"
#include "router/router.h"

#define SCAN_INTERVAL_MS 60000        /* the safety scan of incoming/ */
#define CLEAN_RETRY_INTERVAL_MS 10000 /* failed cleaner requests asked again */
#define PUMP_ROUNDS 8                 /* flush-and-act rounds of one pump at most */

static struct router the_router;

static uv_check_t pump_check;
static uv_timer_t due_timer, scan_timer, clean_timer;
static uv_signal_t sigterm, sigint, sighup;
static uv_poll_t trigger_poll;
static int trigger_fd = -1, trigger_keep = -1;
static struct incoming_watch *watch; /* NULL: every learn lists the queue */
static struct buf named = BUF_INIT;  /* file ids the watch reported, to learn */

void router_state_fail(const char *what)
{
    log_die(1, "state: %s: %s", what, strerror(errno));
}

/* ------------------------------------------------------- held lines ---- */

void router_hold_line(struct router *r, uint64_t seq, char *text)
{
    r->held = xgrow(r->held, &r->held_cap, r->nheld + 1, sizeof(*r->held));
    r->held[r->nheld].seq = seq;
    r->held[r->nheld++].text = text;
}

static void release_held(struct router *r)
{
    uint64_t durable = state_durable(r->s);
    size_t kept = 0;
    for (size_t i = 0; i < r->nheld; i++) {
        if (r->held[i].seq <= durable) {
            log_info("%s", r->held[i].text);
            free(r->held[i].text);
        } else {
            r->held[kept++] = r->held[i];
        }
    }
    r->nheld = kept;
}

/* ------------------------------------------------------------- pump ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_due_timer(uv_timer_t *h);

/* wake: the earliest future due time (unix seconds), 0: nothing waits. */
static void arm_due_timer(int64_t wake)
{
    if (wake <= 0) {
        uv_timer_stop(&due_timer);
        return;
    }
    int64_t delay = wake * 1000 - now_ms();
    uv_timer_start(&due_timer, on_due_timer, delay > 0 ? (uint64_t)delay : 0, 0);
}

/* The watch's names (a file committed, incoming_watch.h); it may have
 * missed some: then the queue is listed. */
static void take_named(struct router *r)
{
    if (watch && incoming_watch_take(watch, &named) < 0) {
        log_warn("the watch of incoming/ missed events; the queue is listed");
        r->learn_asked = 1;
    }
}

static int learn(struct router *r)
{
    take_named(r);
    long n = 0;
    if (r->learn_asked) {
        r->learn_asked = 0;
        n = state_learn_files(r->s); /* knows the named ones too */
    } else if (named.len) {
        n = state_learn_named(r->s, named.s, named.len / (QUEUE_FILE_ID_LEN + 1));
    }
    buf_clear(&named);
    if (n < 0)
        router_state_fail("learning new files");
    return n > 0;
}

/* The end of every loop iteration (and of every timer): see the top. */
static void router_pump(struct router *r)
{
    if (!r->started || r->stopping)
        return;
    int64_t wake = 0;
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        int busy = learn(r);
        busy |= dispatch_due(r->dispatch, (int64_t)time(NULL), &wake);
        if (state_flush(r->s) != 0)
            router_state_fail("flush");
        release_held(r);
        busy |= dispatch_settle(r->dispatch); /* due again: the next round's wake-up */
        cleaner_link_send(r->cleaner);
        if (state_maybe_checkpoint(r->s, 0) < 0)
            log_warn("state: checkpoint failed: %s (the journal goes on)", strerror(errno));
        if (!busy)
            break;
    }
    arm_due_timer(wake);
}

static void on_check(uv_check_t *h)
{
    router_pump(h->data);
}

static void on_due_timer(uv_timer_t *h)
{
    router_pump(h->data);
}

static void on_incoming(void *arg);

/* Watch incoming/ (before a listing, so that nothing committed in between
 * is missed); without a watch every trigger pull lists the queue. */
static void watch_incoming(struct router *r)
{
    if (watch && incoming_watch_ok(watch))
        return;
    incoming_watch_close(watch);
    watch = incoming_watch_open(r->loop, r->conf.queue_dir, on_incoming, r);
    if (!watch)
        log_warn("cannot watch %s/incoming: %s; each trigger pull lists the queue",
                 r->conf.queue_dir, strerror(errno));
}

/* The safety scan: a full listing (files gone by hand, a missed event);
 * a broken watch is opened again first. */
static void on_scan_timer(uv_timer_t *h)
{
    struct router *r = h->data;
    watch_incoming(r);
    r->learn_asked = 1;
    router_pump(r);
}

static void on_clean_timer(uv_timer_t *h)
{
    struct router *r = h->data;
    cleaner_link_retry(r->cleaner);
    router_pump(r);
}

/* The watch has names (learned at the pump that follows this callback). */
static void on_incoming(void *arg)
{
    (void)arg;
}

/* queue.h: one byte per pull, after the commit's rename; read them all.
 * With the watch working, the names of what was committed are already
 * with it (its events were queued before the byte); without, the queue
 * is listed. */
static void on_trigger(uv_poll_t *h, int status, int events)
{
    struct router *r = h->data;
    char bytes[256];
    (void)status;
    (void)events;
    while (read(trigger_fd, bytes, sizeof(bytes)) > 0)
        ;
    if (!incoming_watch_ok(watch))
        r->learn_asked = 1;
}

/* --------------------------------------------------------- start, stop ---- */

/* repeat_ms 0: initialized only (started by whoever arms it). */
static void start_timer(struct router *r, uv_timer_t *t, uv_timer_cb cb, uint64_t repeat_ms)
{
    uv_timer_init(r->loop, t);
    t->data = r;
    if (repeat_ms)
        uv_timer_start(t, cb, repeat_ms, repeat_ms);
}

static void watch_trigger(struct router *r)
{
    trigger_fd = queue_trigger_listen(r->conf.run_dir, &trigger_keep);
    if (trigger_fd < 0) {
        log_warn("trigger FIFO in %s: %s; new mail is found by the scan every %d s",
                 r->conf.run_dir, strerror(errno), SCAN_INTERVAL_MS / 1000);
        return;
    }
    uv_poll_init(r->loop, &trigger_poll, trigger_fd);
    trigger_poll.data = r;
    uv_poll_start(&trigger_poll, UV_READABLE, on_trigger);
}

/* After the cleaner's RECOVER: the cleaner made the queue's layout if it was
 * missing (a first start), so the queue opens now. */
static void open_queue(struct router *r)
{
    const char *why = NULL;
    if (queue_open(&r->q, r->conf.queue_dir, QUEUE_OPEN_READER, &why) != 0)
        log_die(1, "queue %s: %s: %s", r->conf.queue_dir, why ? why : "cannot open",
                strerror(errno));
    if (state_open(&r->s, r->q, 0, NULL, &why) != 0)
        log_die(1, "state of %s: %s: %s", r->conf.queue_dir,
                errno == EWOULDBLOCK ? "another router holds state/lock"
                : why                ? why
                                     : "cannot open",
                strerror(errno));
    state_set_active_limit(r->s, r->conf.queue_active_limit);
}

void router_recovered(struct router *r)
{
    if (r->started || r->stopping)
        return;
    open_queue(r);
    watch_incoming(r);
    r->learn_asked = 1;
    learn(r);
    r->started = 1;
    watch_trigger(r);
    start_timer(r, &scan_timer, on_scan_timer, SCAN_INTERVAL_MS);
    start_timer(r, &clean_timer, on_clean_timer, CLEAN_RETRY_INTERVAL_MS);
    control_open(r);
    rmetrics_start(r);
    struct state_counts c;
    state_count(r->s, &c);
    log_info("started: %lu messages queued (%lu incoming, %lu deferred, %lu held); "
             "remote_concurrency %llu",
             c.total, c.incoming, c.deferred, c.hold,
             (unsigned long long)r->conf.remote_concurrency);
    daemon_link_uv_ready(r->link);
}

static void close_handle(uv_handle_t *h)
{
    if (h->loop && !uv_is_closing(h))
        uv_close(h, NULL);
}

void router_stop(struct router *r, const char *why)
{
    if (r->stopping)
        return;
    r->stopping = 1;
    control_close(r);
    log_info("stopping (%s): %u jobs in flight are left for the next start", why,
             dispatch_in_flight(r->dispatch));
    if (r->s && state_flush(r->s) == 0)
        release_held(r);
    daemon_link_uv_close(r->link);
    r->link = NULL;
    cleaner_link_close(r->cleaner);
    r->cleaner = NULL;
    dispatch_close(r->dispatch);
    r->dispatch = NULL;
    close_handle((uv_handle_t *)&pump_check);
    close_handle((uv_handle_t *)&due_timer);
    close_handle((uv_handle_t *)&scan_timer);
    close_handle((uv_handle_t *)&clean_timer);
    close_handle((uv_handle_t *)&trigger_poll);
    incoming_watch_close(watch);
    watch = NULL;
    close_handle((uv_handle_t *)&sigterm);
    close_handle((uv_handle_t *)&sigint);
    close_handle((uv_handle_t *)&sighup);
}

void router_channel_lost(struct router *r, const char *why)
{
    if (!r->supervised)
        router_stop(r, why);
    else
        log_warn("%s; waiting for the master", why);
}

/* ------------------------------------------------------------ reload ---- */

int router_reload(struct router *r, int maps_only, struct diag *dg)
{
    struct conf fresh;
    struct routing rt;
    int loaded = maps_only || conf_check_dir(r->confdir, &fresh, dg) == 0;
    if (loaded && routing_load(&rt, maps_only ? &r->conf : &fresh, dg) < 0) {
        routing_free(&rt);
        loaded = 0;
    }
    if (!loaded) {
        diag_log(dg);
        log_warn("reload refused: configuration errors; keeping the running settings");
        if (!maps_only)
            conf_free(&fresh);
        return -1;
    }
    routing_free(&r->routing);
    if (!maps_only) {
        conf_free(&r->conf);
        r->conf = fresh;
    }
    r->routing = rt;
    r->routing.conf = &r->conf; /* the routing borrows the configuration it was loaded from */
    if (r->s)
        state_set_active_limit(r->s, r->conf.queue_active_limit);
    log_info(maps_only ? "reloaded: routes, sites and aliases"
                       : "reloaded: configuration, routes, sites and aliases");
    router_pump(r);
    return 0;
}

static void reload(struct router *r)
{
    struct diag dg = DIAG_INIT;
    router_reload(r, 0, &dg);
    diag_free(&dg);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct router *r = h->data;
    if (signum == SIGHUP)
        reload(r);
    else
        router_stop(r, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_master_reload(void *arg)
{
    reload(arg);
}

static void on_master_stop(void *arg)
{
    router_stop(arg, "master");
}

static void watch_signal(struct router *r, uv_signal_t *h, int signum)
{
    uv_signal_init(r->loop, h);
    h->data = r;
    uv_signal_start(h, on_signal, signum);
}

/* A channel end the master passed: the descriptor named in env. */
static int channel_fd(const char *env)
{
    const char *s = getenv(env);
    uint64_t fd;
    const char *why;
    if (!s)
        log_die(1, "%s is not set: onehop-router is started by the master, with its channels", env);
    if (parse_uint(s, 0, 65535, &fd, &why) < 0)
        log_die(1, "%s=%s: %s", env, s, why);
    unsetenv(env);
    return (int)fd;
}

struct channel *router_channel(struct router *r, const char *env, const struct channel_opts *opts,
                               const struct channel_ops *ops, void *arg)
{
    struct buf err = BUF_INIT;
    int fd = channel_fd(env);
    fcntl(fd, F_SETFD, FD_CLOEXEC); /* inherited from the master: not for onehop-queue (DSNs) */
    struct channel *ch = channel_open(r->loop, fd, opts, ops, arg, &err);
    if (!ch)
        log_die(1, "%s channel: %s", opts->name, buf_cstr(&err));
    buf_free(&err);
    return ch;
}

int main(int argc, char **argv)
{
    struct router *r = &the_router;
    int rc = daemon_begin(argc, argv, "router", &r->conf, &r->confdir);
    if (rc != 0)
        return rc;
    r->loop = uv_default_loop();
    r->supervised = getenv(DAEMON_LINK_ENV) != NULL;
    r->link = daemon_link_uv_start(r->loop, on_master_reload, on_master_stop, r);
    struct diag dg = DIAG_INIT;
    if (routing_load(&r->routing, &r->conf, &dg) < 0) {
        diag_log(&dg);
        log_die(1, "routes, sites or aliases have mistakes (see onehop check)");
    }
    diag_free(&dg);
    r->dispatch = dispatch_open(r);
    r->cleaner = cleaner_link_open(r);
    uv_check_init(r->loop, &pump_check);
    pump_check.data = r;
    uv_check_start(&pump_check, on_check);
    start_timer(r, &due_timer, on_due_timer, 0);
    watch_signal(r, &sigterm, SIGTERM);
    watch_signal(r, &sigint, SIGINT);
    watch_signal(r, &sighup, SIGHUP);
    uv_run(r->loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < r->nheld; i++)
        free(r->held[i].text);
    free(r->held);
    buf_free(&named);
    if (trigger_keep >= 0)
        close(trigger_keep);
    if (trigger_fd >= 0)
        close(trigger_fd);
    state_close(r->s);
    queue_close(r->q);
    routing_free(&r->routing);
    conf_free(&r->conf);
    uv_loop_close(r->loop);
    log_info("stopped");
    log_close();
    return 0;
}
