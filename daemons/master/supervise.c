/*
 * supervise — the daemons' lifecycle. See supervise.h and master.h.
 */
#include "master/supervise.h"
#include "master/scrape.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_link.h"
#include "log.h"
#include "safeio.h"
#include "master/listen.h"
#include "master/spawn.h"

#define LINK_FD 3 /* the master link's number in every daemon */

const char *proc_state_name(enum proc_state s)
{
    static const char *const names[] = {"stopped", "starting",  "running",
                                        "backoff", "crashloop", "stopping"};
    return names[s];
}

static void program_path(const struct master *m, const struct daemon_row *row, struct buf *out)
{
    buf_clear(out);
    path_join(out, m->conf.daemon_dir, row->program);
}

static int row_enabled(const struct master *m, const struct daemon_row *row, struct buf *err)
{
    if (row->listen == LISTEN_SMTP && m->conf.smtp_listen.n == 0)
        return 0; /* SPEC 3: an empty smtp_listen disables the SMTP server */
    struct buf path = BUF_INIT;
    program_path(m, row, &path);
    int present = access(buf_cstr(&path), X_OK) == 0;
    if (!present && row->when == START_ALWAYS)
        buf_printf(err, "cannot find the %s daemon %s: %s (daemon_dir)", row->name, buf_cstr(&path),
                   strerror(errno));
    buf_free(&path);
    return present ? 1 : row->when == START_ALWAYS ? -1 : 0;
}

static struct proc *find_proc(struct master *m, const char *name)
{
    for (size_t i = 0; i < m->nprocs; i++)
        if (strcmp(m->procs[i].row->name, name) == 0)
            return &m->procs[i];
    return NULL;
}

/* Which end of channel c is p's: 0 (row a), 1 (row b), or -1 (neither). */
static int end_of(const struct chanpair *c, const struct proc *p)
{
    return strcmp(c->row->a.daemon, p->row->name) == 0   ? 0
           : strcmp(c->row->b.daemon, p->row->name) == 0 ? 1
                                                         : -1;
}

/* p's peer on channel i, or NULL when p holds no end of it. */
static struct proc *peer_on(struct master *m, size_t i, const struct proc *p)
{
    const struct chanpair *c = &m->chans[i];
    int mine = end_of(c, p);
    return mine < 0 ? NULL : find_proc(m, mine ? c->row->a.daemon : c->row->b.daemon);
}

/* One master record (RELOAD, STOP) to a daemon: 0, or -1 when the link is
 * closed or cannot take it. */
static int link_send(struct channel *link, enum dlink_type type)
{
    struct buf rec = BUF_INIT;
    daemon_link_encode(&rec, type, NULL);
    int rc = channel_send(link, rec.s, rec.len, NULL, 0);
    buf_free(&rec);
    return rc < 0 ? -1 : 0;
}

/* Ask a running daemon to stop, the way its row says: STOP on its link,
 * else SIGTERM. During a stop, a daemon whose link closed since the stop
 * began (before this or as STOP is sent: on_link_close marks it
 * P_STOPPING) is leaving by itself, its channel peer having left first:
 * it is not signalled (a sanitizer build's exit can take a while), and
 * the stop timer still bounds it. */
static void tell_stop(struct proc *p)
{
    if (p->reaped)
        return; /* gone already: its pid may be another process's now */
    if (p->link && link_send(p->link, DLINK_STOP) == 0)
        return;
    if (p->m->state == M_STOPPING && p->state == P_STOPPING)
        return;
    kill(p->pid, SIGTERM);
}

static int new_pair(struct chanpair *c, struct buf *err)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->end) < 0) {
        buf_printf(err, "cannot make the %s channel: %s", c->row->name, strerror(errno));
        c->end[0] = c->end[1] = -1;
        return -1;
    }
    return 0;
}

static int init_channels(struct master *m, struct buf *err)
{
    size_t n;
    const struct channel_row *rows = table_channels(&n);
    for (size_t i = 0; i < n && m->nchans < MASTER_ROWS_MAX; i++) {
        struct proc *a = find_proc(m, rows[i].a.daemon), *b = find_proc(m, rows[i].b.daemon);
        if (!(a && a->enabled) && !(b && b->enabled))
            continue;
        struct chanpair *c = &m->chans[m->nchans++];
        c->row = &rows[i];
        if (new_pair(c, err) < 0)
            return -1;
    }
    return 0;
}

int supervise_init(struct master *m, struct buf *err)
{
    size_t n;
    const struct daemon_row *rows = table_daemons(&n);
    for (size_t i = 0; i < n && i < MASTER_ROWS_MAX; i++) {
        struct proc *p = &m->procs[m->nprocs++];
        memset(p, 0, sizeof(*p));
        p->m = m;
        p->row = &rows[i];
        int on = row_enabled(m, p->row, err);
        if (on < 0)
            return -1;
        p->enabled = on;
        if (on && account_resolve(&p->account, m->conf.user, p->row->account, err) < 0)
            return -1;
        uv_timer_init(m->loop, &p->timer);
        p->timer.data = p;
    }
    if (init_channels(m, err) < 0)
        return -1;
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i].enabled && m->procs[i].row->listen == LISTEN_SMTP &&
            listen_smtp(m, err) < 0)
            return -1;
    return 0;
}

/* ------------------------------------------------------------ start ---- */

static int all_ready(const struct master *m)
{
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i].enabled && m->procs[i].state != P_READY)
            return 0;
    return 1;
}

static const char *on_link_record(void *arg, struct channel *ch, struct chan_record *rec)
{
    struct proc *p = arg;
    int type = daemon_link_decode(rec->data, rec->len, &p->failure);
    if (type == DLINK_READY) {
        if (p->state == P_STARTING)
            p->state = P_READY;
        log_info("%s (pid %ld) is ready", p->row->name, (long)p->pid);
        if (p->m->state == M_STARTING && all_ready(p->m))
            master_ready(p->m, NULL);
    } else if (type == DLINK_FAILED) {
        p->said_failed = 1;
        log_error("%s (pid %ld) cannot start: %s", p->row->name, (long)p->pid,
                  buf_cstr(&p->failure));
    } else if (type == DLINK_METRICS_TEXT) {
        scrape_answer(p, &p->failure); /* failure holds only a FAILED's text */
        buf_clear(&p->failure);
    } else {
        return "not a daemon record";
    }
    return NULL;
}

static void advance_stop(struct master *m);

/* The exit itself comes with SIGCHLD. During a stop, a daemon that drains
 * (table.h STOP_FIRST) closes its link once its deliveries are answered:
 * the next step of the stop may begin. */
static void on_link_close(void *arg, struct channel *ch, const char *reason)
{
    struct proc *p = arg;
    p->link = NULL;
    if (p->m->state == M_STOPPING) {
        p->state = P_STOPPING; /* leaving by itself: no signal needed */
        log_info("%s (pid %ld) closed its link: its work under way is answered", p->row->name,
                 (long)p->pid);
        advance_stop(p->m);
    }
}

static const struct channel_ops link_ops = {on_link_record, NULL, on_link_close};

/* Add end `which` of channel c, as row end e, to the request. */
static void add_channel_end(struct spawn_req *r, struct chanpair *c, int which,
                            const struct channel_end *e, int *next_fd, struct buf *envs)
{
    struct spawn_fd *f = &r->fds[r->nfds++];
    f->fd = c->end[which];
    f->at = e->fd >= 0 ? e->fd : (*next_fd)++;
    f->env = NULL;
    if (e->fd < 0) {
        buf_printf(envs, "ONEHOP_CHANNEL_%s", c->row->name);
        buf_addc(envs, '\0');
        f->env = ""; /* set below, once envs stops moving */
    }
}

static void add_listen_fds(struct master *m, struct spawn_req *r, int *next_fd,
                           struct buf *listen_env)
{
    for (size_t i = 0; i < m->nlisten && r->nfds < SPAWN_FDS_MAX; i++) {
        struct spawn_fd *f = &r->fds[r->nfds++];
        f->fd = m->listen_fds[i];
        f->at = (*next_fd)++;
        f->env = NULL;
        buf_printf(listen_env, "%s%d", i ? "," : "", f->at);
    }
    r->listen_env = listen_env->len ? buf_cstr(listen_env) : NULL;
}

/* The request for p: link end at LINK_FD, then channel ends, then sockets. */
static void build_request(struct proc *p, int link_end, struct spawn_req *r, struct buf *path,
                          struct buf *envs, struct buf *listen_env)
{
    struct master *m = p->m;
    int next_fd = LINK_FD + 1;
    memset(r, 0, sizeof(*r));
    program_path(m, p->row, path);
    r->path = buf_cstr(path);
    r->confdir = m->confdir;
    r->args = p->row->args;
    r->account = &p->account;
    r->fds[r->nfds++] = (struct spawn_fd){link_end, LINK_FD, DAEMON_LINK_ENV};
    for (size_t i = 0; i < m->nchans; i++) {
        struct chanpair *c = &m->chans[i];
        if (strcmp(c->row->a.daemon, p->row->name) == 0)
            add_channel_end(r, c, 0, &c->row->a, &next_fd, envs);
        if (strcmp(c->row->b.daemon, p->row->name) == 0)
            add_channel_end(r, c, 1, &c->row->b, &next_fd, envs);
    }
    const char *name = envs->s;
    for (unsigned i = 0; i < r->nfds; i++)
        if (r->fds[i].env && !r->fds[i].env[0]) {
            r->fds[i].env = name;
            name += strlen(name) + 1;
        }
    if (p->row->listen == LISTEN_SMTP)
        add_listen_fds(m, r, &next_fd, listen_env);
}

/* The ends given to p are its now: the master's copies close. */
static void drop_given_ends(struct proc *p)
{
    for (size_t i = 0; i < p->m->nchans; i++) {
        struct chanpair *c = &p->m->chans[i];
        for (int w = 0; w < 2; w++) {
            const struct channel_end *e = w ? &c->row->b : &c->row->a;
            if (strcmp(e->daemon, p->row->name) == 0 && c->end[w] >= 0) {
                close(c->end[w]);
                c->end[w] = -1;
                p->chan_gen[i] = c->gen;
            }
        }
    }
}

static void start_failed(struct proc *p, const char *why);

/* Channel i leads somewhere for p, which holds end `mine`: the master
 * holds that end, and the other is held by the master too or by a running
 * peer of the same generation (not by a process that has exited since it
 * was given). */
static int pair_usable(struct master *m, size_t i, const struct proc *p, int mine)
{
    const struct chanpair *c = &m->chans[i];
    if (c->end[mine] < 0)
        return 0;
    if (c->end[!mine] >= 0)
        return 1;
    const struct proc *peer = peer_on(m, i, p);
    return peer && peer->pid && !peer->reaped && peer->chan_gen[i] == c->gen;
}

/* p's end of a channel was given to an earlier process of p, or its
 * peer's end to a peer that has exited since: a new pair (the ends the
 * master still held go with the old one). */
static int renew_channels(struct proc *p, struct buf *err)
{
    for (size_t i = 0; i < p->m->nchans; i++) {
        struct chanpair *c = &p->m->chans[i];
        int mine = end_of(c, p);
        if (mine < 0 || pair_usable(p->m, i, p, mine))
            continue;
        for (int w = 0; w < 2; w++)
            if (c->end[w] >= 0)
                close(c->end[w]);
        if (new_pair(c, err) < 0)
            return -1;
        c->gen++;
    }
    return 0;
}

static void start_proc(struct proc *p)
{
    struct master *m = p->m;
    struct buf err = BUF_INIT, path = BUF_INIT, envs = BUF_INIT, listen_env = BUF_INIT;
    struct spawn_req req;
    int pair[2];
    buf_clear(&p->failure);
    p->said_failed = 0;
    if (renew_channels(p, &err) < 0) {
        start_failed(p, buf_cstr(&err));
        buf_free(&err);
        return;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
        buf_printf(&err, "cannot make the master link: %s", strerror(errno));
        start_failed(p, buf_cstr(&err));
        buf_free(&err);
        return;
    }
    build_request(p, pair[1], &req, &path, &envs, &listen_env);
    pid_t pid = spawn_daemon(&req, &err);
    close(pair[1]);
    p->reaped = 0;
    if (pid < 0) {
        close(pair[0]);
        start_failed(p, buf_cstr(&err));
    } else {
        struct buf name = BUF_INIT;
        buf_printf(&name, "%s link", p->row->name);
        struct channel_opts opts = {buf_cstr(&name), DLINK_RECORD_MAX, 0, 0, 0, 0};
        p->pid = pid;
        p->state = P_STARTING;
        p->started_ms = uv_now(m->loop);
        p->started_wall = time(NULL);
        p->link = channel_open(m->loop, pair[0], &opts, &link_ops, p, &err);
        if (!p->link) /* it will not be heard: the ready bound or its exit ends it */
            log_error("%s: %s", p->row->name, buf_cstr(&err));
        drop_given_ends(p);
        log_info("%s started: pid %ld, user %s (uid %lu)", p->row->name, (long)pid, p->account.name,
                 (unsigned long)p->account.uid);
        buf_free(&name);
    }
    buf_free(&err);
    buf_free(&path);
    buf_free(&envs);
    buf_free(&listen_env);
}

void supervise_start_all(struct master *m)
{
    for (size_t i = 0; i < m->nprocs && m->state == M_STARTING; i++)
        if (m->procs[i].enabled)
            start_proc(&m->procs[i]);
    if (m->state == M_STARTING && all_ready(m))
        master_ready(m, NULL);
}

/* ------------------------------------------------------------- exits ---- */

static unsigned exits_within(const struct proc *p, uint64_t now, unsigned window_s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < p->nexits; i++)
        if (now - p->exits_ms[i] <= (uint64_t)window_s * 1000)
            n++;
    return n;
}

static void note_exit(struct proc *p, uint64_t now)
{
    memmove(p->exits_ms + 1, p->exits_ms, sizeof(p->exits_ms) - sizeof(p->exits_ms[0]));
    p->exits_ms[0] = now;
    if (p->nexits < EXITS_KEPT)
        p->nexits++;
}

static void on_backoff_done(uv_timer_t *t)
{
    struct proc *p = t->data;
    if (p->state != P_BACKOFF || p->m->state == M_STOPPING)
        return;
    p->restarts++;
    log_info("restarting %s (restart %u)", p->row->name, p->restarts);
    start_proc(p);
}

/* p exited (or could not be started) while the master runs. */
static void schedule_restart(struct proc *p)
{
    const struct restart_policy *rp = &p->row->restart;
    uint64_t now = uv_now(p->m->loop);
    note_exit(p, now);
    unsigned n = exits_within(p, now, rp->loop_window_s);
    if (n >= rp->loop_exits) {
        p->state = P_CRASHLOOP;
        log_error("%s exited %u times within %u s: crash loop, not restarting it "
                  "(onehop reload tries again)",
                  p->row->name, n, rp->loop_window_s);
        return;
    }
    uint64_t delay = rp->backoff_first_ms;
    for (unsigned i = 1; i < n && delay < rp->backoff_max_ms; i++)
        delay *= 2;
    if (delay > rp->backoff_max_ms)
        delay = rp->backoff_max_ms;
    p->state = P_BACKOFF;
    log_info("%s will be restarted in %llu ms", p->row->name, (unsigned long long)delay);
    uv_timer_start(&p->timer, on_backoff_done, delay, 0);
}

static void start_failed(struct proc *p, const char *why)
{
    log_error("%s: %s", p->row->name, why);
    p->pid = 0;
    if (p->m->state == M_STARTING) {
        p->state = P_OFF;
        master_ready(p->m, why);
    } else if (p->m->state == M_RUNNING) {
        schedule_restart(p);
    } else {
        p->state = P_OFF;
    }
}

static void describe_exit(struct buf *out, const struct proc *p, int status)
{
    buf_printf(out, "%s (pid %ld) ", p->row->name, (long)p->pid);
    if (WIFSIGNALED(status))
        buf_printf(out, "was killed by signal %d", WTERMSIG(status));
    else
        buf_printf(out, "exited with status %d", WEXITSTATUS(status));
}

/* Of two channel peers that die together, the one killed by a signal
 * (SIGKILL, SIGSEGV...) is the cause; one that exited with a status (on
 * its channel's end of file or reset, whatever the code) is the
 * consequence; a clean exit (0, SIGTERM) is the likeliest consequence. */
enum exit_rank { EXIT_KILLED, EXIT_STATUS, EXIT_CLEAN };

static enum exit_rank exit_rank(int status)
{
    if (WIFSIGNALED(status))
        return WTERMSIG(status) == SIGTERM ? EXIT_CLEAN : EXIT_KILLED;
    return WEXITSTATUS(status) == 0 ? EXIT_CLEAN : EXIT_STATUS;
}

/* The same, for a zombie seen with waitid(WNOWAIT). */
static enum exit_rank siginfo_rank(const siginfo_t *si)
{
    if (si->si_code == CLD_EXITED)
        return si->si_status == 0 ? EXIT_CLEAN : EXIT_STATUS;
    return si->si_status == SIGTERM ? EXIT_CLEAN : EXIT_KILLED;
}

/* How long before its channel peer's death an exit may be that death's
 * consequence (the peer's SIGCHLD can come after it). */
#define COLLATERAL_WINDOW_MS 2000

/* peer exited (not killed) just before p and was counted as a crash,
 * waiting for its back-off; p, dead now of a likelier cause or stopped by
 * the master to be restarted, held the other end of the same channel: that
 * exit was p's doing. It is taken back from peer's count and peer starts again now. */
static int forgive_collateral_exit(struct proc *peer, const struct proc *p, size_t chan)
{
    uint64_t now = uv_now(p->m->loop);
    if (peer->state != P_BACKOFF || peer->nexits == 0 ||
        peer->chan_gen[chan] != p->chan_gen[chan] || exit_rank(peer->last_status) == EXIT_KILLED ||
        (!(p->restart_after_stop && p->restart_cause != peer) &&
         exit_rank(p->last_status) >= exit_rank(peer->last_status)) ||
        now - peer->exits_ms[0] > COLLATERAL_WINDOW_MS)
        return 0;
    memmove(peer->exits_ms, peer->exits_ms + 1, sizeof(peer->exits_ms) - sizeof(peer->exits_ms[0]));
    peer->nexits--;
    uv_timer_stop(&peer->timer);
    log_info("%s: its last exit followed its %s channel peer %s's: not counted, starting it now",
             peer->row->name, p->m->chans[chan].row->name, p->row->name);
    start_proc(peer);
    return 1;
}

/* p exited: a running peer connected to it through a channel of the same
 * generation talks to nobody now, and is restarted too (its exit then
 * counts as p's, not its own). */
static void restart_channel_peers(struct proc *p)
{
    struct master *m = p->m;
    for (size_t i = 0; i < m->nchans && m->state == M_RUNNING; i++) {
        struct chanpair *c = &m->chans[i];
        struct proc *peer = peer_on(m, i, p);
        if (!peer || p->chan_gen[i] != c->gen || forgive_collateral_exit(peer, p, i))
            continue;
        if (!peer->pid || peer->state == P_STOPPING || peer->chan_gen[i] != c->gen)
            continue;
        log_info("restarting %s: its %s channel peer %s exited", peer->row->name, c->row->name,
                 p->row->name);
        peer->restart_after_stop = 1;
        peer->restart_cause = p;
        peer->state = P_STOPPING;
        tell_stop(peer);
    }
}

/* A channel peer of p, on the channel's current generation, is being
 * stopped by the master to be started again (its own peer died): p, which
 * exited unasked, saw that peer close the channel (a sanitizer build's
 * exit can take seconds after that), and p's exit is that peer's doing. */
static const struct proc *restarting_peer(const struct proc *p)
{
    struct master *m = p->m;
    for (size_t i = 0; i < m->nchans; i++) {
        const struct chanpair *c = &m->chans[i];
        const struct proc *peer = peer_on(m, i, p);
        if (p->chan_gen[i] != c->gen)
            continue;
        if (peer && peer->pid && peer->restart_after_stop && peer->restart_cause != p &&
            peer->chan_gen[i] == c->gen)
            return peer;
    }
    return NULL;
}

static int any_running(const struct master *m)
{
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i].pid)
            return 1;
    return 0;
}

static void proc_exited(struct proc *p, int status);

/* Why the start failed: a daemon's own FAILED text if one sent it (a
 * peer's exit may be seen first), else p's. */
static const char *first_failure(struct master *m, struct proc *p)
{
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i].said_failed)
            return buf_cstr(&m->procs[i].failure);
    return buf_cstr(&p->failure);
}

/* p ended unasked, not killed: perhaps because a channel peer died and p
 * saw its channel end (end of file, or a reset when the peer left data
 * unread). A peer that is dead of a likelier cause (exit_rank) but not
 * reaped yet (a zombie, seen without reaping it: WNOWAIT) is handled
 * first, so that p's exit counts as the consequence it is
 * (restart_channel_peers marks p), not a crash. */
static void reap_dead_peers_first(struct proc *p, int status)
{
    struct master *m = p->m;
    for (size_t i = 0; i < m->nchans; i++) {
        struct proc *peer = peer_on(m, i, p);
        siginfo_t si;
        int peer_status;
        memset(&si, 0, sizeof(si));
        if (peer && peer->pid && !peer->reaped &&
            waitid(P_PID, (id_t)peer->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            si.si_pid == peer->pid && siginfo_rank(&si) <= exit_rank(status) &&
            waitpid(peer->pid, &peer_status, 0) == peer->pid)
            proc_exited(peer, peer_status);
    }
}

static void proc_exited(struct proc *p, int status)
{
    struct master *m = p->m;
    struct buf what = BUF_INIT;
    p->reaped = 1;
    p->last_status = status;
    if (m->state != M_STOPPING && !p->restart_after_stop && exit_rank(status) != EXIT_KILLED)
        reap_dead_peers_first(p, status);
    /* before restart_channel_peers(p) marks p's own peers for p's exit */
    const struct proc *cause = restarting_peer(p);
    describe_exit(&what, p, status);
    log_info("%s", buf_cstr(&what));
    channel_close(p->link);
    p->link = NULL;
    restart_channel_peers(p);
    p->pid = 0;
    if (m->state == M_STOPPING) {
        p->state = P_OFF;
        advance_stop(m);
    } else if (m->state == M_STARTING) {
        if (!p->failure.len)
            buf_printf(&p->failure, "%s before it was ready", buf_cstr(&what));
        p->state = P_OFF;
        master_ready(m, first_failure(m, p));
    } else if (p->restart_after_stop && exit_rank(status) != EXIT_KILLED) {
        p->restart_after_stop = 0; /* its peer's exit, whatever its status: not counted */
        start_proc(p);
    } else if (exit_rank(status) != EXIT_KILLED && cause) {
        log_info("%s: its channel peer %s is being restarted: not counted, starting it now",
                 p->row->name, cause->row->name);
        start_proc(p);
    } else {
        p->restart_after_stop = 0;
        schedule_restart(p);
    }
    buf_free(&what);
}

static void exited(struct master *m, pid_t pid, int status)
{
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i].pid == pid) {
            proc_exited(&m->procs[i], status);
            return;
        }
}

/* Every exit reaped now, likeliest causes first (exit_rank): a daemon
 * that ended because its channel peer died (end of file or reset) is then
 * seen after that peer, as the consequence it is. */
void supervise_reap(struct master *m)
{
    pid_t pids[64];
    int status[64];
    size_t n = 0;
    while (n < 64 && (pids[n] = waitpid(-1, &status[n], WNOHANG)) > 0)
        n++;
    for (int rank = EXIT_KILLED; rank <= EXIT_CLEAN; rank++)
        for (size_t i = 0; i < n; i++)
            if ((int)exit_rank(status[i]) == rank)
                exited(m, pids[i], status[i]);
    if (n == 64)
        supervise_reap(m);
}

/* ------------------------------------------------------ reload, stop ---- */

void supervise_reload(struct master *m)
{
    for (size_t i = 0; i < m->nprocs; i++) {
        struct proc *p = &m->procs[i];
        if (p->state == P_READY && p->link) {
            link_send(p->link, DLINK_RELOAD);
        } else if (p->state == P_CRASHLOOP) {
            p->nexits = 0;
            log_info("reload: starting %s again after its crash loop", p->row->name);
            start_proc(p);
        }
    }
}

/* Two thirds of the stop bound for the deliveries under way, the rest for
 * the router's own stop (its journal flushed) and the last daemons. */
static unsigned drain_bound_s(const struct master *m)
{
    unsigned s = m->stop_timeout_s * 2 / 3;
    return s ? s : 1;
}

static void on_stop_timeout(uv_timer_t *t)
{
    struct master *m = t->data;
    for (size_t i = 0; i < m->nprocs; i++) {
        struct proc *p = &m->procs[i];
        if (!p->pid)
            continue;
        log_warn("%s (pid %ld) did not stop within %u s: killed", p->row->name, (long)p->pid,
                 m->stop_timeout_s);
        buf_printf(&m->stop_note, "%skilled %s (pid %ld) after %u s", m->stop_note.len ? "; " : "",
                   p->row->name, (long)p->pid, m->stop_timeout_s);
        kill(p->pid, SIGKILL);
    }
}

/* Every daemon of step `step` (and, at the last step, every earlier one
 * still running without a link) is asked to stop (tell_stop), then
 * marked stopping. */
static void tell_step(struct master *m, enum stop_step step)
{
    for (size_t i = 0; i < m->nprocs; i++) {
        struct proc *p = &m->procs[i];
        if (!p->pid || p->row->stop_step > step)
            continue;
        if (p->row->stop_step == step || (step == STOP_LAST && !p->link)) {
            tell_stop(p);
            p->state = P_STOPPING;
        }
    }
}

/* A step is over when each of its daemons exited or closed its link. */
static int step_over(const struct master *m, enum stop_step step)
{
    if (m->drain_over)
        return 1;
    for (size_t i = 0; i < m->nprocs; i++) {
        const struct proc *p = &m->procs[i];
        if (p->row->stop_step == step && p->pid && p->link)
            return 0;
    }
    return 1;
}

static void advance_stop(struct master *m)
{
    while (m->stop_step <= STOP_LAST) {
        if (!m->stop_step_told) {
            m->stop_step_told = 1;
            tell_step(m, m->stop_step);
        }
        if (m->stop_step == STOP_LAST || !step_over(m, m->stop_step))
            break;
        m->stop_step++;
        m->stop_step_told = 0;
    }
    if (!any_running(m))
        master_stopped(m);
}

/* The daemons that drain took too long: the rest of the stop goes on, and
 * what they still do is done again at the next start (at least once). */
static void on_drain_timeout(uv_timer_t *t)
{
    struct master *m = t->data;
    log_warn("deliveries under way not answered within %u s: stopping the router all the same",
             drain_bound_s(m));
    m->drain_over = 1;
    advance_stop(m);
}

void supervise_stop_all(struct master *m)
{
    if (m->state == M_STOPPING)
        return;
    m->state = M_STOPPING;
    for (size_t i = 0; i < m->nprocs; i++) {
        struct proc *p = &m->procs[i];
        uv_timer_stop(&p->timer);
        if (!p->pid)
            p->state = P_OFF;
    }
    m->stop_step = STOP_FIRST;
    m->stop_step_told = 0;
    m->drain_over = 0;
    m->stop_timer.data = m;
    uv_timer_start(&m->stop_timer, on_stop_timeout, (uint64_t)m->stop_timeout_s * 1000, 0);
    m->drain_timer.data = m;
    uv_timer_start(&m->drain_timer, on_drain_timeout, (uint64_t)drain_bound_s(m) * 1000, 0);
    advance_stop(m);
}
