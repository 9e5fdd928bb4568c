/*
 * control — the router's control socket: admission, one request per
 * connection, the changes recorded and made durable, then logged and
 * answered. See control.h and common/router_ctl.h.
 */
#include "router/control.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "addrlist.h"
#include "diag.h"
#include "log.h"
#include "mem.h"
#include "router_ctl.h"
#include "safeio.h"
#include "state.h"
#include "router/destination.h"
#include "router/dispatch.h"
#include "router/router.h"

struct client {
    struct channel *ch;
    uid_t uid;
    struct client *next;
};

static struct channel_listener *listener;
static struct client *clients;
static struct router *the_router;

/* ------------------------------------------------------------ answer ---- */

/* What one request answers: NOTE records as they come, the DONE last. */
struct answer {
    struct buf recs;
    uint32_t count;
    int failed;
    struct buf summary;
};

static void note(struct answer *a, enum rctl_stream stream, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void note(struct answer *a, enum rctl_stream stream, const char *fmt, ...)
{
    struct buf text = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&text, fmt, ap);
    va_end(ap);
    rctl_put_note(&a->recs, stream, buf_cstr(&text));
    buf_free(&text);
}

/* One failure of the request, told to the client's standard error. */
#define fail(a, ...)                                                                               \
    do {                                                                                           \
        note((a), RCTL_TO_STDERR, __VA_ARGS__);                                                    \
        (a)->failed = 1;                                                                           \
    } while (0)

/* Make what was recorded durable: one group commit (state.h). A failure
 * is fail-stop: the client hears nothing and the journal stays the truth. */
static void make_durable(struct router *r)
{
    if (state_flush(r->s) != 0)
        router_state_fail("flush (control)");
}

/* ---------------------------------------------------- hold, release, delete ---- */

static const struct {
    const char *done, *logged;
} change_words[] = {
    [RCTL_HOLD] = {"Placed on hold", "placed on hold"},
    [RCTL_RELEASE] = {"Released from hold", "released from hold"},
    [RCTL_DELETE] = {"Deleted", "deleted"},
};

struct pick {
    struct addrlist *ids;
    uint32_t op, select;
};

static int pick_message(const struct state_msg *m, void *arg)
{
    struct pick *p = arg;
    char id[QUEUE_ID_LEN + 1];
    if (p->select == RCTL_SEL_DEFERRED && state_msg_state(m) != SMSG_DEFERRED)
        return 0;
    if ((p->op == RCTL_HOLD && m->held) || (p->op == RCTL_RELEASE && !m->held))
        return 0;
    state_msg_id(m, id);
    addrlist_add(p->ids, id);
    return 0;
}

/* The login name of uid, for the deletion record and the log. */
static void name_of(uid_t uid, struct buf *out)
{
    const struct passwd *pw = getpwuid(uid);
    if (pw && pw->pw_name && pw->pw_name[0])
        buf_printf(out, "%s", pw->pw_name);
    else
        buf_printf(out, "uid %lu", (unsigned long)uid);
}

/* Record the change of one message; 1 recorded, 0 nothing to do, -1. */
static int change_one(struct router *r, uint32_t op, const char *id, const char *who,
                      struct answer *a)
{
    if (!queue_id_valid(id)) {
        fail(a, "%s: not a queue ID", id);
        return -1;
    }
    const struct state_msg *m = state_find(r->s, id);
    if (!m) {
        fail(a, "%s: no such message in the queue", id);
        return -1;
    }
    if ((op == RCTL_HOLD && m->held) || (op == RCTL_RELEASE && !m->held))
        return 0;
    int64_t now = (int64_t)time(NULL);
    uint64_t seq = op == RCTL_DELETE ? state_delete(r->s, id, now, who)
                   : op == RCTL_HOLD ? state_hold(r->s, id, now)
                                     : state_release(r->s, id, now);
    if (seq == 0) {
        fail(a, "%s: cannot %s: %s", id, rctl_op_name(op), strerror(errno));
        return -1;
    }
    return 1;
}

static void answer_change(struct router *r, const struct rctl_request *req, uid_t uid,
                          struct answer *a)
{
    struct addrlist ids = ADDRLIST_INIT, done = ADDRLIST_INIT;
    struct buf who = BUF_INIT;
    name_of(uid, &who);
    if (req->select == RCTL_SEL_NAMED) {
        for (size_t i = 0; i < req->nargs; i++)
            addrlist_add(&ids, req->args[i]);
    } else {
        struct pick p = {&ids, req->op, req->select};
        state_each(r->s, pick_message, &p);
    }
    for (size_t i = 0; i < ids.n; i++)
        if (change_one(r, req->op, ids.v[i], buf_cstr(&who), a) > 0)
            addrlist_add(&done, ids.v[i]);
    make_durable(r);
    for (size_t i = 0; i < done.n; i++) {
        if (req->op == RCTL_DELETE)
            log_info("%s: deleted (onehop delete by %s)", done.v[i], buf_cstr(&who));
        else
            log_info("%s: %s", done.v[i], change_words[req->op].logged);
    }
    a->count = (uint32_t)done.n;
    buf_printf(&a->summary, "%s: %zu message%s", change_words[req->op].done, done.n,
               done.n == 1 ? "" : "s");
    addrlist_free(&ids);
    addrlist_free(&done);
    buf_free(&who);
}

/* ------------------------------------------------------------ flush ---- */

struct due_rcpt {
    char id[QUEUE_ID_LEN + 1];
    uint32_t rcpt;
};

struct flush {
    struct router *r;
    const char *domain; /* NULL: every domain */
    int partial;        /* one domain or one message: only their D8 marks go */
    int64_t now;
    struct due_rcpt *v;
    size_t n, cap;
    struct queue_file file; /* the envelope of the file read last (domains) */
    int have_file;
};

/* The recipient's address, from its message file (read once per file). */
static const char *rcpt_address(struct flush *fl, const struct state_msg *m, uint32_t k)
{
    const char *fid = m->file->fid;
    if (!fl->have_file || strcmp(fl->file.fid, fid) != 0) {
        if (fl->have_file)
            queue_file_free(&fl->file);
        fl->have_file = queue_load(fl->r->q, fid, &fl->file) == 0;
        if (!fl->have_file)
            return NULL; /* gone meanwhile, or corrupt: the router's own read finds out */
    }
    if (m->index >= fl->file.nmsg || k >= fl->file.msg[m->index].nrcpt)
        return NULL;
    return fl->file.msg[m->index].rcpt[k].addr;
}

static int domain_matches(const char *address, const char *domain)
{
    const char *at = address ? strrchr(address, '@') : NULL;
    return at && strcasecmp(at + 1, domain) == 0;
}

/* The deferred recipients of m that wait for a later try (and are of the
 * domain asked for). */
static void pick_recipients(struct flush *fl, const struct state_msg *m)
{
    for (uint32_t k = 0; k < m->nrcpt; k++) {
        const struct state_rcpt *x = &m->rcpt[k];
        if (x->state != SRCPT_DEFERRED || x->next_try <= fl->now)
            continue;
        if (fl->domain && !domain_matches(rcpt_address(fl, m, k), fl->domain))
            continue;
        fl->v = xgrow(fl->v, &fl->cap, fl->n + 1, sizeof(*fl->v));
        state_msg_id(m, fl->v[fl->n].id);
        fl->v[fl->n++].rcpt = k;
    }
}

/* Any message with deferred recipients (one with others pending too is
 * "active", not "deferred": its deferred ones are flushed all the same). */
static int pick_flushed(const struct state_msg *m, void *arg)
{
    if (!m->held && !m->in_flight && !m->deleted)
        pick_recipients(arg, m);
    return 0;
}

/* flush ID: that message only; a held or busy one is said so. */
static int pick_one_message(struct flush *fl, const char *id, struct answer *a)
{
    const struct state_msg *m = queue_id_valid(id) ? state_find(fl->r->s, id) : NULL;
    if (!queue_id_valid(id))
        fail(a, "%s: not a queue ID", id);
    else if (!m)
        fail(a, "%s: no such message in the queue", id);
    else if (m->held)
        fail(a, "%s: on hold: release it first (onehop release %s)", id, id);
    else if (m->in_flight)
        note(a, RCTL_TO_STDERR, "%s: being delivered now", id);
    else
        pick_recipients(fl, m);
    return m ? 0 : -1;
}

/* Due now, not an attempt (state_retry_now): attempts, last try and reason
 * stay, so a flush never brings queue_lifetime, a bounce or a longer
 * back-off nearer. A flush of one domain or message forgets the dead-
 * destination marks (D8) of the routes its recipients took, only those. */
static size_t make_due(struct flush *fl, size_t *nmsg, size_t *nmarks)
{
    struct destinations *dests = dispatch_destinations(fl->r->dispatch);
    size_t done = 0;
    *nmsg = *nmarks = 0;
    for (size_t i = 0; i < fl->n; i++) {
        const struct state_msg *m = state_find(fl->r->s, fl->v[i].id);
        if (!m || fl->v[i].rcpt >= m->nrcpt)
            continue;
        if (fl->partial)
            *nmarks += dest_forget_route(dests, m->rcpt[fl->v[i].rcpt].route);
        uint64_t seq = state_retry_now(fl->r->s, fl->v[i].id, fl->v[i].rcpt, fl->now, "flush");
        if (seq == 0 && errno != ENOENT && errno != EINVAL)
            router_state_fail("flush: recording a next try");
        if (seq == 0)
            continue;
        done++;
        if (i == 0 || strcmp(fl->v[i - 1].id, fl->v[i].id) != 0)
            (*nmsg)++;
    }
    return done;
}

static void answer_flush(struct router *r, const struct rctl_request *req, struct answer *a)
{
    const char *target = req->nargs ? req->args[0] : "";
    struct flush fl = {.r = r, .now = (int64_t)time(NULL), .partial = target[0] != '\0'};
    if (target[0] == '@') {
        fl.domain = target + 1;
        if (!fl.domain[0]) {
            fail(a, "flush: @ needs a domain");
            return;
        }
    }
    if (target[0] && target[0] != '@')
        pick_one_message(&fl, target, a);
    else
        state_each(r->s, pick_flushed, &fl);
    if (fl.have_file)
        queue_file_free(&fl.file);
    size_t nmsg, nmarks, nrcpt = make_due(&fl, &nmsg, &nmarks);
    free(fl.v);
    make_durable(r);
    if (nrcpt > 0 && !fl.partial)
        dispatch_forget_dead(r->dispatch);
    if (nmarks > 0)
        log_info("flush %s: %zu dead destination%s tried again now (D8)", target, nmarks,
                 nmarks == 1 ? "" : "s");
    if (nrcpt > 0)
        log_info("flush%s%s: %zu deferred recipient%s of %zu message%s due now",
                 target[0] ? " " : "", target, nrcpt, nrcpt == 1 ? "" : "s", nmsg,
                 nmsg == 1 ? "" : "s");
    a->count = (uint32_t)nrcpt;
    if (nrcpt > 0)
        buf_printf(&a->summary, "Flushed: %zu deferred recipient%s of %zu message%s", nrcpt,
                   nrcpt == 1 ? "" : "s", nmsg, nmsg == 1 ? "" : "s");
    else if (!a->failed)
        buf_printf(&a->summary, "Flushed: no deferred mail%s%s waits", target[0] ? " for " : "",
                   target[0] == '@' ? target + 1 : target);
}

/* ----------------------------------------------------- reload, newaliases ---- */

static void answer_reload(struct router *r, const struct rctl_request *req, struct answer *a)
{
    struct diag dg = DIAG_INIT;
    int maps_only = req->op == RCTL_NEWALIASES;
    if (router_reload(r, maps_only, &dg) == 0) {
        buf_printf(&a->summary, "%s",
                   maps_only ? "routes, sites and aliases reloaded"
                             : "configuration, routes, sites and aliases "
                               "reloaded");
    } else {
        for (size_t i = 0; i < dg.n; i++) {
            if (dg.v[i].line)
                note(a, RCTL_TO_STDERR, "%s:%u: %s", dg.v[i].file, dg.v[i].line, dg.v[i].text);
            else
                note(a, RCTL_TO_STDERR, "%s: %s", dg.v[i].file, dg.v[i].text);
        }
        a->failed = 1;
        buf_printf(&a->summary, "reload refused: %zu mistake%s; the running configuration is kept",
                   dg.n, dg.n == 1 ? "" : "s");
    }
    diag_free(&dg);
}

/* ------------------------------------------------------------ clients ---- */

static const char *on_request(void *arg, struct channel *ch, struct chan_record *rec)
{
    struct client *c = arg;
    struct router *r = the_router;
    struct rctl_request req;
    const char *why = NULL;
    if (rctl_get_request(rec->data, rec->len, &req, &why) < 0)
        return why;
    struct answer a = {BUF_INIT, 0, 0, BUF_INIT};
    log_info("control: %s%s%s (uid %lu)", rctl_op_name(req.op), req.nargs ? " " : "",
             req.nargs ? req.args[0] : "", (unsigned long)c->uid);
    if (req.op == RCTL_FLUSH)
        answer_flush(r, &req, &a);
    else if (req.op == RCTL_RELOAD || req.op == RCTL_NEWALIASES)
        answer_reload(r, &req, &a);
    else
        answer_change(r, &req, c->uid, &a);
    rctl_put_done(&a.recs, a.failed ? 1 : 0, a.count, buf_cstr(&a.summary));
    channel_send_buf(ch, &a.recs);
    rctl_request_free(&req);
    buf_free(&a.recs);
    buf_free(&a.summary);
    return NULL;
}

static void forget_client(struct client *c)
{
    for (struct client **p = &clients; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    free(c);
}

static void on_client_close(void *arg, struct channel *ch, const char *reason)
{
    (void)ch;
    (void)reason;
    forget_client(arg);
}

static const struct channel_ops client_ops = {on_request, NULL, on_client_close};

static void on_accept(void *arg, int fd, const struct chan_cred *peer)
{
    struct router *r = arg;
    struct buf name = BUF_INIT, err = BUF_INIT;
    struct client *c = xcalloc(1, sizeof(*c));
    buf_printf(&name, "control client uid %lu pid %ld", (unsigned long)peer->uid, (long)peer->pid);
    struct channel_opts opts = {buf_cstr(&name), RCTL_RECORD_MAX, 0, 0, 0, 0};
    c->uid = peer->uid;
    c->ch = channel_open(r->loop, fd, &opts, &client_ops, c, &err);
    if (c->ch) {
        c->next = clients;
        clients = c;
    } else {
        log_warn("%s: %s", buf_cstr(&name), buf_cstr(&err));
        free(c);
    }
    buf_free(&name);
    buf_free(&err);
}

static int in_state_dir; /* the socket is queue_dir/state/router.sock */

/* run_dir/router.sock, or queue_dir/state/router.sock when run_dir is not
 * ours to write (started by root: run_dir is root's; state/ is ours). */
static void socket_path(const struct router *r, struct buf *path)
{
    rctl_socket_path(r->conf.run_dir, r->conf.queue_dir, in_state_dir, path);
}

int control_open(struct router *r)
{
    struct buf path = BUF_INIT, err = BUF_INIT;
    uid_t uids[2] = {0, getuid()};
    the_router = r;
    in_state_dir = access(r->conf.run_dir, W_OK | X_OK) != 0;
    socket_path(r, &path);
    listener = channel_listen_named(r->loop, buf_cstr(&path), "control socket", 0600, uids,
                                    uids[1] ? 2 : 1, on_accept, r, &err);
    if (!listener)
        log_warn("control socket %s: %s; flush, hold, release and delete cannot reach this "
                 "router",
                 buf_cstr(&path), buf_cstr(&err));
    buf_free(&path);
    buf_free(&err);
    return listener ? 0 : -1;
}

void control_close(struct router *r)
{
    if (listener) {
        struct buf path = BUF_INIT;
        socket_path(r, &path);
        unlink(buf_cstr(&path));
        buf_free(&path);
        channel_listener_close(listener);
        listener = NULL;
    }
    while (clients) {
        struct client *c = clients;
        clients = c->next;
        channel_close(c->ch);
        free(c);
    }
}
