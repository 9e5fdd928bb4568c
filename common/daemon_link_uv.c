/*
 * daemon_link_uv — the daemon's side of the master link in a libuv loop:
 * the descriptor found by daemon_link_open() driven as a channel
 * (channel.h). See daemon_link_uv.h.
 */
#include "daemon_link_uv.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "channel.h"
#include "daemon_link.h"
#include "log.h"
#include "mem.h"

struct daemon_link_uv {
    struct daemon_link link; /* the environment and the fatal hook */
    struct channel *ch;      /* owns link.fd */
    daemon_link_uv_cb *on_reload, *on_stop;
    void *arg;
    struct buf text;
};

/* The answer to DLINK_METRICS, from the process's registry (metrics.h). */
static void send_metrics(struct channel *ch)
{
    struct buf text = BUF_INIT, rec = BUF_INIT;
    metrics_render(&text);
    daemon_link_encode(&rec, DLINK_METRICS_TEXT, buf_cstr(&text));
    channel_send(ch, rec.s, rec.len, NULL, 0);
    buf_free(&text);
    buf_free(&rec);
}

static const char *on_record(void *arg, struct channel *ch, struct chan_record *rec)
{
    struct daemon_link_uv *l = arg;
    int type = daemon_link_decode(rec->data, rec->len, &l->text);
    if (type == DLINK_RELOAD)
        l->on_reload(l->arg);
    else if (type == DLINK_STOP)
        l->on_stop(l->arg);
    else if (type == DLINK_METRICS)
        send_metrics(ch);
    else
        return "not a master record";
    return NULL;
}

/* The master is gone (or spoke nonsense): a daemon never runs on alone. */
static void on_close(void *arg, struct channel *ch, const char *reason)
{
    log_warn("master link: %s; exiting now", reason);
    _exit(1);
}

static const struct channel_ops link_ops = {on_record, NULL, on_close};

struct daemon_link_uv *daemon_link_uv_start(uv_loop_t *loop, daemon_link_uv_cb *on_reload,
                                            daemon_link_uv_cb *on_stop, void *arg)
{
    struct daemon_link_uv *l = xcalloc(1, sizeof(*l));
    const char *why = NULL;
    if (daemon_link_open(&l->link, &why) < 0)
        log_die(1, "%s", why);
    l->on_reload = on_reload;
    l->on_stop = on_stop;
    l->arg = arg;
    if (l->link.fd >= 0) {
        struct channel_opts opts = {"master link", DLINK_RECORD_MAX, 0, 0, 0, 0};
        struct buf err = BUF_INIT;
        l->ch = channel_open(loop, l->link.fd, &opts, &link_ops, l, &err);
        if (!l->ch)
            log_die(1, "cannot watch the master link: %s", buf_cstr(&err));
        buf_free(&err);
    }
    return l;
}

void daemon_link_uv_ready(struct daemon_link_uv *l)
{
    l->link.ready = 1;
    if (!l->ch)
        return;
    struct buf rec = BUF_INIT;
    daemon_link_encode(&rec, DLINK_READY, NULL);
    channel_send(l->ch, rec.s, rec.len, NULL, 0);
    buf_free(&rec);
}

void daemon_link_uv_close(struct daemon_link_uv *l)
{
    if (!l)
        return;
    channel_close(l->ch); /* closes link.fd */
    l->link.fd = -1;
    daemon_link_close(&l->link);
    buf_free(&l->text);
    free(l);
}

/* ------------------------------------------------------------ signals ---- */
static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon_signals *s = h->data;
    if (signum == SIGHUP)
        s->on_reload(s->arg);
    else
        s->on_stop(s->arg, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void watch(uv_loop_t *loop, struct daemon_signals *s, uv_signal_t *h, int signum)
{
    uv_signal_init(loop, h);
    h->data = s;
    uv_signal_start(h, on_signal, signum);
}

void daemon_signals_start(uv_loop_t *loop, struct daemon_signals *s, daemon_link_uv_cb *on_reload,
                          void (*on_stop)(void *arg, const char *why), void *arg)
{
    s->on_reload = on_reload;
    s->on_stop = on_stop;
    s->arg = arg;
    watch(loop, s, &s->term, SIGTERM);
    watch(loop, s, &s->intr, SIGINT);
    watch(loop, s, &s->hup, SIGHUP);
}

void daemon_signals_close(struct daemon_signals *s)
{
    uv_signal_t *handles[] = {&s->term, &s->intr, &s->hup};
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++)
        if (!uv_is_closing((uv_handle_t *)handles[i]))
            uv_close((uv_handle_t *)handles[i], NULL);
}
