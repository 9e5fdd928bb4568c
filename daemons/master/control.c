/*
 * control — the control socket's requests. See control.h and
 * master_proto.h.
 */
#include "master/control.h"

#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "master_proto.h"
#include "safeio.h"
#include "master/scrape.h"
#include "master/supervise.h"

static struct channel_listener *listener;

static void send_text(struct channel *ch, enum mctl_type type, const char *text)
{
    struct buf rec = BUF_INIT;
    mctl_encode_text(&rec, type, text);
    channel_send(ch, rec.s, rec.len, NULL, 0);
    buf_free(&rec);
}

static void add_proc(struct buf *out, const char *name, pid_t pid, const struct account *a,
                     time_t started, unsigned restarts, const char *state)
{
    struct mctl_proc p = {name,     a->name,          state, (uint32_t)pid, (uint32_t)a->uid,
                          restarts, (uint64_t)started};
    mctl_encode_proc(out, &p);
}

static void answer_status(struct master *m, struct channel *ch)
{
    struct buf out = BUF_INIT;
    struct account self;
    struct buf err = BUF_INIT;
    account_resolve(&self, m->conf.user, NULL, &err);
    add_proc(&out, "master", getpid(), &self, m->started_wall, 0,
             m->state == M_STOPPING   ? "stopping"
             : m->state == M_STARTING ? "starting"
                                      : "running");
    for (size_t i = 0; i < m->nprocs; i++) {
        const struct proc *p = &m->procs[i];
        if (p->enabled)
            add_proc(&out, p->row->name, p->pid, &p->account, p->pid ? p->started_wall : 0,
                     p->restarts, proc_state_name(p->state));
    }
    mctl_encode_text(&out, MCTL_OK, "");
    channel_send_buf(ch, &out);
    account_free(&self);
    buf_free(&out);
    buf_free(&err);
}

static void answer_reload(struct master *m, struct channel *ch)
{
    struct buf err = BUF_INIT;
    if (master_reload(m, &err) < 0)
        send_text(ch, MCTL_ERR, buf_cstr(&err));
    else
        send_text(ch, MCTL_OK, "");
    buf_free(&err);
}

static void answer_stop(struct master *m, struct channel *ch)
{
    if (m->nstop_waiters >= sizeof(m->stop_waiters) / sizeof(m->stop_waiters[0])) {
        send_text(ch, MCTL_ERR, "too many clients wait for the stop");
        return;
    }
    m->stop_waiters[m->nstop_waiters++] = ch;
    log_info("stop requested (onehop stop)");
    supervise_stop_all(m);
}

static const char *on_request(void *arg, struct channel *ch, struct chan_record *rec)
{
    struct master *m = arg;
    struct ipc_reader r;
    struct mctl_msg msg;
    int ok = mctl_decode(&r, rec->data, rec->len, &msg) == 0;
    ipc_close(&r);
    if (!ok)
        return "malformed request";
    if (msg.type == MCTL_STATUS)
        answer_status(m, ch);
    else if (msg.type == MCTL_RELOAD && m->state == M_RUNNING)
        answer_reload(m, ch);
    else if (msg.type == MCTL_RELOAD)
        send_text(ch, MCTL_ERR, "the instance is still starting or stopping");
    else if (msg.type == MCTL_STOP)
        answer_stop(m, ch);
    else if (msg.type == MCTL_METRICS)
        scrape_request(m, ch);
    else
        return "not a request";
    return NULL;
}

static void forget_waiter(struct master *m, struct channel *ch)
{
    for (size_t i = 0; i < m->nstop_waiters; i++)
        if (m->stop_waiters[i] == ch) {
            m->stop_waiters[i] = m->stop_waiters[--m->nstop_waiters];
            return;
        }
}

static void on_client_close(void *arg, struct channel *ch, const char *reason)
{
    forget_waiter(arg, ch);
    scrape_forget(ch);
}

static const struct channel_ops client_ops = {on_request, NULL, on_client_close};

static void on_accept(void *arg, int fd, const struct chan_cred *peer)
{
    struct master *m = arg;
    struct buf name = BUF_INIT, err = BUF_INIT;
    buf_printf(&name, "control client uid %lu pid %ld", (unsigned long)peer->uid, (long)peer->pid);
    struct channel_opts opts = {buf_cstr(&name), MCTL_RECORD_MAX, 0, 0, 0, 0};
    if (!channel_open(m->loop, fd, &opts, &client_ops, m, &err))
        log_warn("%s: %s", buf_cstr(&name), buf_cstr(&err));
    buf_free(&name);
    buf_free(&err);
}

int control_start(struct master *m, struct buf *err)
{
    struct buf path = BUF_INIT;
    uid_t uids[2] = {0, getuid()};
    path_join(&path, m->conf.run_dir, MASTER_SOCKET_NAME);
    listener = channel_listen_path(m->loop, buf_cstr(&path), 0600, uids, uids[1] ? 2 : 1, on_accept,
                                   m, err);
    buf_free(&path);
    return listener ? 0 : -1;
}

void control_finish(struct master *m)
{
    const char *note = buf_cstr(&m->stop_note);
    for (size_t i = 0; i < m->nstop_waiters; i++)
        send_text(m->stop_waiters[i], MCTL_OK, note);
    m->nstop_waiters = 0;
    if (listener) {
        struct buf path = BUF_INIT;
        path_join(&path, m->conf.run_dir, MASTER_SOCKET_NAME);
        unlink(buf_cstr(&path));
        buf_free(&path);
        channel_listener_close(listener);
        listener = NULL;
    }
}
