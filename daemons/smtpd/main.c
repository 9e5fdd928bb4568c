/*
 * onehop-smtpd — the ESMTP server (SPEC 1, 3, 7, 8; issue 13):
 *
 *     onehop-smtpd [-C DIR]        the daemon, started by the master
 *     onehop-smtpd [-C DIR] --bs   one SMTP session on standard input and
 *                                  output (sendmail -bs; bs.c)
 *
 * The daemon takes its listening sockets from ONEHOP_LISTEN_FDS (the
 * master binds smtp_listen) and its queue server channel from
 * ONEHOP_CHANNEL_QUEUE (daemons/master/table.c: `onehop-queue --server`,
 * group commit). One libuv loop serves every session (session.c). It
 * says READY once it listens; RELOAD (or SIGHUP) re-reads onehop.conf and
 * the maps for new sessions and new recipients; STOP (or SIGTERM) stops
 * accepting, answers 421 to every session (one waiting for its commit
 * gets the commit's answer first) and exits once they are gone. When the
 * queue server goes away, the waiting sessions get 451 and new MAIL
 * commands 451 until the master restarts the pair. Client names come
 * from onehop-dnscache (run_dir/dnscache.sock, session.c).
 *
 * Exit status: 0 after a stop, 1 when it cannot start.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "daemon_args.h"
#include "diag.h"
#include "log.h"
#include "mem.h"
#include "smtpd/bs.h"
#include "smtpd/smetrics.h"
#include "smtpd/smtpd.h"
#include "tls_mem.h"

static void on_connection(uv_stream_t *l, int status)
{
    struct smtpd *d = l->data;
    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    if (!d->stopping)
        session_accept(d, l);
}

/* Every descriptor of ONEHOP_LISTEN_FDS ("3,4"), listening already. */
static void open_listeners(struct smtpd *d)
{
    const char *env = getenv("ONEHOP_LISTEN_FDS");
    if (!env || !*env)
        log_die(1, "no listening sockets: ONEHOP_LISTEN_FDS is not set (started without "
                   "the master, or smtp_listen is empty)");
    char *copy = xstrdup(env), *save = NULL;
    size_t n = 1;
    for (const char *c = env; *c; c++)
        n += *c == ',';
    d->listeners = xcalloc(n, sizeof(*d->listeners));
    d->listeners_nodelay = 1;
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        long fd = strtol(w, &end, 10);
        uv_tcp_t *t = &d->listeners[d->nlisteners];
        if (*end || fd < 3 || uv_tcp_init(d->loop, t) != 0 || uv_tcp_open(t, (int)fd) != 0)
            log_die(1, "ONEHOP_LISTEN_FDS: %s is not a listening socket", w);
        t->data = d;
        /* Linux gives an accepted socket the listener's TCP_NODELAY: set
         * once here, not once per client */
        if (uv_tcp_nodelay(t, 1) != 0)
            d->listeners_nodelay = 0;
        int rc = uv_listen((uv_stream_t *)t, 1024, on_connection);
        if (rc != 0)
            log_die(1, "listen on fd %s: %s", w, uv_strerror(rc));
        d->nlisteners++;
    }
    free(copy);
    unsetenv("ONEHOP_LISTEN_FDS");
}

static void on_queue_down(void *arg)
{
    struct smtpd *d = arg;
    if (!d->stopping)
        log_warn("the queue server is gone: new messages get 451 until it is back");
}

static void on_queue_drain(void *arg)
{
    session_resume_all(arg);
}

static void open_queue(struct smtpd *d)
{
    const char *env = getenv("ONEHOP_CHANNEL_QUEUE");
    char *end = NULL;
    long fd = env ? strtol(env, &end, 10) : -1;
    if (!env || *end || fd < 3)
        log_die(1, "no queue server channel: ONEHOP_CHANNEL_QUEUE is not set");
    unsetenv("ONEHOP_CHANNEL_QUEUE");
    d->queue = qclient_open(d->loop, (int)fd, on_queue_down, on_queue_drain, d);
}

/* STARTTLS (RFC 3207; TLS 1.2 or later) when smtpd_tls_cert and
 * smtpd_tls_key are set; NULL otherwise, or with the reason in why. */
static SSL_CTX *load_tls(const struct conf *c, struct buf *why)
{
    if (!c->smtpd_tls_cert[0] || !c->smtpd_tls_key[0])
        return NULL;
    return tls_mem_server_ctx("smtpd_tls_cert", c->smtpd_tls_cert, "smtpd_tls_key",
                              c->smtpd_tls_key, why);
}

static void reload(struct smtpd *d)
{
    struct conf fresh;
    struct routing rt;
    struct diag dg = DIAG_INIT;
    struct buf why = BUF_INIT;
    memset(&rt, 0, sizeof(rt));
    if (conf_load(&fresh, d->confdir, &dg) < 0 || routing_load(&rt, &fresh, &dg) < 0) {
        diag_log(&dg);
        log_warn("reload refused: configuration errors; keeping the running settings");
        routing_free(&rt);
        conf_free(&fresh);
        diag_free(&dg);
        return;
    }
    SSL_CTX *tls = load_tls(&fresh, &why);
    if (!tls && why.len) {
        log_warn("reload refused: %s", buf_cstr(&why));
        routing_free(&rt);
        conf_free(&fresh);
    } else {
        relay_free(&d->relay);
        routing_free(&d->routing);
        conf_free(&d->conf);
        SSL_CTX_free(d->tls); /* sessions in TLS hold their own reference */
        d->conf = fresh;
        d->routing = rt;
        d->routing.conf = &d->conf;
        d->tls = tls;
        relay_init(&d->relay, &d->conf, &d->routing);
        log_info("reloaded");
    }
    diag_free(&dg);
    buf_free(&why);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Everything is answered: close what is left so the loop ends. */
void smtpd_sessions_gone(struct smtpd *d)
{
    qclient_close(d->queue);
    d->queue = NULL;
    dnsclient_free(d->dns);
    d->dns = NULL;
    daemon_link_uv_close(d->link);
    d->link = NULL;
    daemon_signals_close(&d->signals);
}

static void stop(struct smtpd *d, const char *why)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    log_info("stopping (%s): %zu sessions", why, d->nsessions);
    for (size_t i = 0; i < d->nlisteners; i++)
        close_handle((uv_handle_t *)&d->listeners[i]);
    session_shutdown_all(d);
    if (d->nsessions == 0)
        smtpd_sessions_gone(d);
}

static void on_reload(void *arg)
{
    reload(arg);
}

static void on_stop(void *arg, const char *why)
{
    stop(arg, why);
}

static void on_master_stop(void *arg)
{
    stop(arg, "master");
}

/* Many idle sessions need many descriptors: the soft limit up to the hard. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void start(struct smtpd *d)
{
    struct diag dg = DIAG_INIT;
    struct buf why = BUF_INIT;
    if (routing_load(&d->routing, &d->conf, &dg) < 0) {
        diag_log(&dg);
        log_die(1, "configuration errors in the maps of %s", d->confdir);
    }
    diag_free(&dg);
    d->routing.conf = &d->conf;
    relay_init(&d->relay, &d->conf, &d->routing);
    d->tls = load_tls(&d->conf, &why);
    if (!d->tls && why.len)
        log_die(1, "%s", buf_cstr(&why));
    buf_free(&why);
    raise_fd_limit();
    struct buf path = BUF_INIT;
    dnsc_socket_path(d->conf.run_dir, &path); /* each look-up is bounded by the session */
    d->dns = dnsclient_new(d->loop, buf_cstr(&path), (d->conf.dns_lookup_timeout + 5) * 1000);
    buf_free(&path);
    open_queue(d);
    open_listeners(d);
    log_info("started: %zu listening sockets%s", d->nlisteners, d->tls ? ", STARTTLS" : "");
}

/* "--bs" anywhere among the arguments: taken out, 1 returned. */
static int take_bs(int *argc, char **argv)
{
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--bs") == 0) {
            memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i) * sizeof(*argv));
            (*argc)--;
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct smtpd d;
    memset(&d, 0, sizeof(d));
    int bs = take_bs(&argc, argv);
    int rc = daemon_begin(argc, argv, bs ? "sendmail" : "smtpd", &d.conf, &d.confdir);
    if (rc != 0)
        return bs ? 75 : rc;
    if (bs)
        return bs_main(&d.conf, d.confdir);
    d.loop = uv_default_loop();
    d.link = daemon_link_uv_start(d.loop, on_reload, on_master_stop, &d);
    smetrics_start();
    daemon_signals_start(d.loop, &d.signals, on_reload, on_stop, &d); /* before listening */
    start(&d);
    daemon_link_uv_ready(d.link);
    uv_run(d.loop, UV_RUN_DEFAULT);
    relay_free(&d.relay);
    routing_free(&d.routing);
    SSL_CTX_free(d.tls);
    free(d.listeners);
    conf_free(&d.conf);
    uv_loop_close(d.loop);
    log_info("stopped");
    log_close();
    return 0;
}
