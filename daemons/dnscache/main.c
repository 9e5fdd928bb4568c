/*
 * onehop-dnscache — the DNS cache daemon (ARCHITECTURE "Processes"):
 *
 *     onehop-dnscache [-C DIR]
 *
 * Reads DIR/onehop.conf, logs to `log` as onehop/dnscache[pid], serves
 * run_dir/dnscache.sock (server.h) in the foreground until SIGTERM or
 * SIGINT. SIGHUP re-reads the dns_* settings: cache size, TTL bounds,
 * serve-stale and the upstream servers; the cache is kept. Started by the
 * master (daemon_link_uv.h), it says READY once it serves, reloads on
 * RELOAD, stops on STOP and exits when the master goes away.
 *
 * One libuv loop; c-ares inside it (upstream.h); no threads. Exit status:
 * 0 after a clean stop, 1 when it cannot start (configuration, socket).
 */
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "conf.h"
#include "daemon_args.h"
#include "daemon_link_uv.h"
#include "diag.h"
#include "dnsproto.h"
#include "log.h"
#include "safeio.h"
#include "siphash.h"
#include "dnscache/dmetrics.h"
#include "dnscache/dns_cache.h"
#include "dnscache/lookup.h"
#include "dnscache/server.h"
#include "dnscache/upstream.h"

struct daemon {
    uv_loop_t *loop;
    const char *confdir;
    struct conf conf;
    struct upstream *up;
    struct dns_cache *cache;
    struct lookup *lookup;
    struct server *server;
    struct buf servers_text;
    struct daemon_signals signals;
    struct daemon_link_uv *link;
};

static void limits_from_conf(const struct conf *c, struct lookup_limits *lim)
{
    lim->min_ttl = c->dns_min_ttl;
    lim->max_ttl = c->dns_max_ttl;
    lim->negative_max_ttl = c->dns_negative_max_ttl;
    lim->serve_stale = c->dns_serve_stale;
    lim->serve_stale_max = c->dns_serve_stale_max;
    lim->lookup_timeout = c->dns_lookup_timeout;
}

static void publish_info(struct daemon *d)
{
    buf_clear(&d->servers_text);
    upstream_describe(d->up, &d->servers_text);
    struct server_info info = {buf_cstr(&d->servers_text), d->conf.dns_cache_size};
    server_set_info(d->server, &info);
}

static void stop(struct daemon *d, const char *why)
{
    if (!d->server)
        return; /* stopping already */
    log_info("stopping (%s)", why);
    daemon_link_uv_close(d->link);
    d->link = NULL;
    server_stop(d->server);
    d->server = NULL;
    lookup_shutdown(d->lookup);
    upstream_free(d->up); /* queries in flight end with a temporary failure */
    d->up = NULL;
    daemon_signals_close(&d->signals);
}

static void reload(struct daemon *d)
{
    struct conf fresh;
    struct diag dg = DIAG_INIT;
    struct buf err = BUF_INIT;
    if (conf_load(&fresh, d->confdir, &dg) < 0) {
        diag_log(&dg);
        log_warn("reload refused: configuration errors; keeping the running settings");
    } else if (upstream_configure(d->up, &fresh, &err) < 0) {
        log_warn("reload refused: %s", buf_cstr(&err));
    } else {
        struct lookup_limits lim;
        limits_from_conf(&fresh, &lim);
        lookup_set_limits(d->lookup, &lim);
        dns_cache_set_max(d->cache, fresh.dns_cache_size);
        conf_free(&d->conf);
        d->conf = fresh;
        publish_info(d);
        log_info("reloaded: servers %s, cache size %llu", buf_cstr(&d->servers_text),
                 (unsigned long long)d->conf.dns_cache_size);
        memset(&fresh, 0, sizeof(fresh));
    }
    if (fresh.config_dir)
        conf_free(&fresh);
    diag_free(&dg);
    buf_free(&err);
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

static int start(struct daemon *d)
{
    struct buf err = BUF_INIT, path = BUF_INIT;
    struct lookup_limits lim;
    uint8_t key[SIPHASH_KEY_SIZE];
    if (mkdir_p(d->conf.run_dir, 0750) < 0)
        log_die(1, "cannot create run_dir %s: %m", d->conf.run_dir);
    d->up = upstream_new(d->loop, &d->conf, &err);
    if (!d->up)
        log_die(1, "cannot start the resolver: %s", buf_cstr(&err));
    siphash_random_key(key);
    d->cache = dns_cache_new(d->conf.dns_cache_size, key);
    limits_from_conf(&d->conf, &lim);
    d->lookup = lookup_new(d->loop, d->up, d->cache, &lim);
    dmetrics_start(d->lookup, d->cache);
    path_join(&path, d->conf.run_dir, DNSP_SOCKET_NAME);
    d->server = server_start(d->loop, buf_cstr(&path), d->conf.user, d->lookup, d->cache, &err);
    if (!d->server)
        log_die(1, "%s", buf_cstr(&err));
    publish_info(d);
    log_info("started: socket %s, servers %s, cache size %llu", buf_cstr(&path),
             buf_cstr(&d->servers_text), (unsigned long long)d->conf.dns_cache_size);
    buf_free(&path);
    buf_free(&err);
    return 0;
}

int main(int argc, char **argv)
{
    struct daemon d;
    memset(&d, 0, sizeof(d));
    int rc = daemon_begin(argc, argv, "dnscache", &d.conf, &d.confdir);
    if (rc != 0)
        return rc;
    d.loop = uv_default_loop();
    d.link = daemon_link_uv_start(d.loop, on_reload, on_master_stop, &d);
    /* before the socket exists: a SIGTERM as soon as it accepts is a stop
     * (handled once the loop runs), never the default death */
    daemon_signals_start(d.loop, &d.signals, on_reload, on_stop, &d);
    start(&d);
    daemon_link_uv_ready(d.link);
    uv_run(d.loop, UV_RUN_DEFAULT);
    lookup_free(d.lookup);
    dns_cache_free(d.cache);
    buf_free(&d.servers_text);
    conf_free(&d.conf);
    uv_loop_close(d.loop);
    log_info("stopped");
    log_close();
    return 0;
}
