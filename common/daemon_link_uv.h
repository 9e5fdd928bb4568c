/*
 * daemon_link_uv — the master link (daemon_link.h) in a libuv daemon: the
 * dnscache, and the router, remote, local and smtpd to come.
 *
 *     link = daemon_link_uv_start(loop, on_reload, on_stop, d);
 *     ... set up; then, once the daemon accepts work:
 *     daemon_link_uv_ready(link);
 *
 * on_reload and on_stop are called from the loop when the master sends
 * RELOAD and STOP. When the master's end closes (the master died) or
 * sends anything malformed, the daemon logs one line and exits at once
 * (_exit, status 1): it must not run on without its supervisor, and a
 * graceful stop is what STOP is for. The master's DLINK_METRICS is
 * answered here from the process's registry (metrics.h). A start-up failure logged with
 * log_die() before READY reaches the master by itself (daemon_link.h).
 *
 * Without ONEHOP_MASTER_FD (run by hand or by a test) it returns a link
 * that does nothing, so the daemon's code is the same either way.
 * The link is a channel (channel.h) on the descriptor daemon_link_open()
 * found. Must never: block the loop, or call back after
 * daemon_link_uv_close().
 */
#ifndef ONEHOP_DAEMON_LINK_UV_H
#define ONEHOP_DAEMON_LINK_UV_H

#include <uv.h>

typedef void daemon_link_uv_cb(void *arg);

struct daemon_link_uv;

/* Fatal (log_die) when ONEHOP_MASTER_FD is set but unusable. */
struct daemon_link_uv *daemon_link_uv_start(uv_loop_t *loop, daemon_link_uv_cb *on_reload,
                                            daemon_link_uv_cb *on_stop, void *arg);
/* The daemon accepts work now. */
void daemon_link_uv_ready(struct daemon_link_uv *l);
/* Stop watching and free (the daemon is stopping; NULL is fine). */
void daemon_link_uv_close(struct daemon_link_uv *l);

/* The signals a libuv daemon obeys as the master's records: SIGHUP as
 * RELOAD, SIGTERM and SIGINT as STOP (why = "SIGTERM" or "SIGINT"). The
 * struct is the caller's and must live until the loop has ended;
 * daemon_signals_close() (again is fine) lets the loop end. */
struct daemon_signals {
    uv_signal_t term, intr, hup;
    daemon_link_uv_cb *on_reload;
    void (*on_stop)(void *arg, const char *why);
    void *arg;
};

void daemon_signals_start(uv_loop_t *loop, struct daemon_signals *s, daemon_link_uv_cb *on_reload,
                          void (*on_stop)(void *arg, const char *why), void *arg);
void daemon_signals_close(struct daemon_signals *s);

#endif
