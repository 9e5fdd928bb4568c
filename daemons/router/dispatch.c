/*
 * dispatch — due messages to onehop-remote, results back: dispatch.h.
 */
#include "router/dispatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "remote_proto.h"
#include "router/bounce.h"
#include "router/retry.h"
#include "router/router.h"

#define LOCAL_NOT_BUILT "4.3.2 local delivery is not built yet"

/* A permanent failure waiting for its DSN (recorded once the DSN is queued). */
struct pending_bounce {
    uint32_t k;
    char *reason;
    char *remote_mta; /* NULL: none */
    int log_here;     /* the router decided it: it logs the status line */
};

/* One message handed out by state_next_due(), until its jobs are done. */
struct inflight {
    char id[QUEUE_ID_LEN + 1];
    const struct state_msg *m; /* valid while in flight (state.h) */
    int64_t arrival;           /* unix seconds */
    unsigned jobs;             /* sent, not DONE yet */
    uint64_t seq;              /* the last record of this dispatch */
    char **addr;               /* each recipient's address, for log lines */
    uint32_t naddr;
    struct pending_bounce *bounces;
    size_t nbounces, bounces_cap;
    struct inflight *next; /* on the settling list */
};

struct job {
    uint64_t id;
    struct inflight *msg;
    uint32_t n;
    uint32_t rcpt[RP_RCPT_MAX]; /* the message's recipient index of each */
    uint8_t answered[RP_RCPT_MAX];
    struct job *next;
};

/* The recipients of one message for one list of next hops. */
struct group {
    char *key; /* the next hops, comma-separated (nexthop.h text) */
    uint32_t *rcpt;
    char **addr; /* the final recipient (an alias may have replaced it) */
    size_t n, cap, addr_cap;
};

struct groups {
    struct group *v;
    size_t n, cap;
};

struct dispatch {
    struct router *r;
    struct channel *ch;
    struct job *jobs;
    unsigned njobs;
    uint64_t last_job;
    struct inflight *settling;
    struct buf text; /* a result's strings */
};

/* ------------------------------------------------------------ records ---- */

static struct retry_policy policy(const struct router *r)
{
    struct retry_policy p = {r->conf.retry_min, r->conf.retry_max, r->conf.queue_lifetime};
    return p;
}

/* A record's number into the dispatch; a refused one is logged (a message
 * finished or deleted meanwhile), any other failure is fatal. */
static void note(struct inflight *f, uint64_t seq, const char *what)
{
    if (seq == 0) {
        if (errno != ENOENT && errno != EINVAL)
            router_state_fail(what);
        log_warn("%s: %s refused by the state: %s", f->id, what, strerror(errno));
        return;
    }
    if (seq > f->seq)
        f->seq = seq;
}

static const char *rcpt_addr(const struct inflight *f, uint32_t k)
{
    return k < f->naddr ? f->addr[k] : "";
}

/* SPEC 8's line for an outcome the router decided itself, once durable. */
static void hold_status(struct dispatch *d, struct inflight *f, uint32_t k, const char *status,
                        const char *reason, int64_t now)
{
    struct buf line = BUF_INIT;
    buf_printf(&line, "%s: to=<%s>, relay=none, delay=%lld, status=%s (%s)", f->id, rcpt_addr(f, k),
               (long long)(now - f->arrival), status, reason);
    router_hold_line(d->r, f->seq, buf_steal(&line));
}

/* The clock rounded up to the next second: next tries are whole seconds,
 * and an interval counted from the rounded-down second would come up to a
 * second early (shorter than retry_min). */
static int64_t now_ceil(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec + (ts.tv_nsec > 0);
}

static void record_deferred(struct dispatch *d, struct inflight *f, uint32_t k, int64_t now,
                            const char *reason)
{
    struct retry_policy p = policy(d->r);
    int64_t next = retry_next_try(&p, f->m->rcpt[k].attempts + 1, now_ceil(), f->arrival);
    note(f, state_deferred(d->r->s, f->id, k, now, next, reason), "deferral");
}

/* D6: a bounce is recorded only once its DSN is queued (finish_bounces),
 * so no crash can leave a bounced recipient without its notice. */
static void bounce_later(struct inflight *f, uint32_t k, const char *reason, const char *relay,
                         int log_here)
{
    f->bounces = xgrow(f->bounces, &f->bounces_cap, f->nbounces + 1, sizeof(*f->bounces));
    struct pending_bounce *b = &f->bounces[f->nbounces++];
    b->k = k;
    b->reason = xstrdup(reason ? reason : "");
    b->remote_mta = NULL;
    b->log_here = log_here;
    const char *bracket = relay ? strchr(relay, '[') : NULL;
    if (bracket && bracket > relay)
        b->remote_mta = xstrndup(relay, (size_t)(bracket - relay));
}

/* A temporary failure the router decided (routing, local, no content). */
static void defer_here(struct dispatch *d, struct inflight *f, uint32_t k, int64_t now,
                       const char *reason)
{
    record_deferred(d, f, k, now, reason);
    hold_status(d, f, k, "deferred", reason, now);
}

static void bounce_here(struct inflight *f, uint32_t k, const char *reason)
{
    bounce_later(f, k, reason, NULL, 1);
}

/* SPEC 3 queue_lifetime, D4 (c): a deferred recipient past it is bounced. */
static void bounce_expired(struct dispatch *d, struct inflight *f, uint32_t k, const char *last)
{
    struct buf why = BUF_INIT;
    buf_printf(&why, "5.4.7 message expired after %llus in the queue; last error: %s",
               (unsigned long long)d->r->conf.queue_lifetime, last ? last : "none");
    bounce_here(f, k, why.s);
    buf_free(&why);
}

/* ------------------------------------------------------- bounces (D6) ---- */

#define HEADERS_MAX (256u * 1024) /* of the original message, quoted in a DSN */

/* The original header block: the content up to its first empty line. */
static void read_headers(const struct queue_msg_fd *mf, struct buf *out)
{
    size_t want = mf->length < HEADERS_MAX ? (size_t)mf->length : HEADERS_MAX;
    char *p = xmalloc(want + 1);
    ssize_t n = pread(mf->fd, p, want, (off_t)mf->offset);
    if (n > 0) {
        p[n] = '\0';
        char *end = strstr(p, "\n\n");
        buf_add(out, p, end ? (size_t)(end - p) + 1 : (size_t)n);
    }
    free(p);
}

static void record_bounces(struct dispatch *d, struct inflight *f, int64_t now, const char *dsn)
{
    for (size_t i = 0; i < f->nbounces; i++) {
        const struct pending_bounce *b = &f->bounces[i];
        note(f, state_bounced(d->r->s, f->id, b->k, now, b->reason), "bounce");
        if (dsn)
            note(f, state_set_flags(d->r->s, f->id, b->k, QUEUE_FLAG_BOUNCE_SENT), "flags");
        if (b->log_here)
            hold_status(d, f, b->k, "bounced", b->reason, now);
    }
    if (dsn) {
        struct buf line = BUF_INIT;
        buf_printf(&line, "%s: sender non-delivery notification: %s", f->id, dsn);
        router_hold_line(d->r, f->seq, buf_steal(&line));
    }
}

static void compose_dsn(struct dispatch *d, struct inflight *f, const struct queue_msg_fd *mf,
                        int64_t now, struct buf *out)
{
    const struct queue_msg *qm = &mf->file.msg[mf->index];
    struct bounce_rcpt *rc = xcalloc(f->nbounces, sizeof(*rc));
    struct buf headers = BUF_INIT;
    for (size_t i = 0; i < f->nbounces; i++) {
        const struct pending_bounce *b = &f->bounces[i];
        rc[i].address = rcpt_addr(f, b->k);
        rc[i].orcpt = b->k < qm->nrcpt && qm->rcpt[b->k].orcpt ? qm->rcpt[b->k].orcpt : "";
        rc[i].diagnostic = b->reason;
        rc[i].remote_mta = b->remote_mta;
    }
    read_headers(mf, &headers);
    struct bounce bn = {
        d->r->conf.myhostname,      f->id,      qm->sender, f->arrival, now, rc, f->nbounces,
        headers.s ? headers.s : "", headers.len};
    bounce_compose(&bn, out);
    buf_free(&headers);
    free(rc);
}

/* The DSN not queued: the recipients stay deferred, tried (and bounced) again. */
static void defer_bounces(struct dispatch *d, struct inflight *f, int64_t now, const char *why)
{
    struct buf reason = BUF_INIT;
    log_warn("%s: the non-delivery notification could not be queued: %s", f->id, why);
    for (size_t i = 0; i < f->nbounces; i++) {
        buf_clear(&reason);
        buf_printf(&reason, "4.3.0 bounce notice not queued (%s); was: %s", why,
                   f->bounces[i].reason);
        record_deferred(d, f, f->bounces[i].k, now, buf_cstr(&reason));
    }
    buf_free(&reason);
}

/* One DSN for every recipient of this dispatch that failed, queued, then
 * their bounces recorded (D6). A message from the null sender gets none. */
static void finish_bounces(struct dispatch *d, struct inflight *f)
{
    struct queue_msg_fd mf;
    struct buf dsn = BUF_INIT, why = BUF_INIT;
    const char *open_why = NULL;
    char dsn_id[QUEUE_ID_LEN + 1];
    int64_t now = (int64_t)time(NULL);
    if (f->nbounces == 0)
        return;
    if (queue_msg_open(d->r->q, f->id, &mf, &open_why) != 0) {
        defer_bounces(d, f, now, open_why ? open_why : strerror(errno));
        return;
    }
    if (mf.file.msg[mf.index].sender[0] == '\0') {
        log_info("%s: no notification for a message from the null sender (D6)", f->id);
        record_bounces(d, f, now, NULL);
    } else {
        compose_dsn(d, f, &mf, now, &dsn);
        if (bounce_inject(&d->r->conf, mf.file.msg[mf.index].sender, &dsn, dsn_id, &why) == 0)
            record_bounces(d, f, now, dsn_id);
        else
            defer_bounces(d, f, now, buf_cstr(&why));
    }
    queue_msg_fd_close(&mf);
    buf_free(&dsn);
    buf_free(&why);
}

/* ----------------------------------------------------------- settling ---- */

static void inflight_free(struct inflight *f)
{
    for (uint32_t k = 0; k < f->naddr; k++)
        free(f->addr[k]);
    free(f->addr);
    for (size_t i = 0; i < f->nbounces; i++) {
        free(f->bounces[i].reason);
        free(f->bounces[i].remote_mta);
    }
    free(f->bounces);
    free(f);
}

/* The dispatch is over: its DSN queued and its bounces recorded, then
 * ended once all of it is durable. */
static void settle_later(struct dispatch *d, struct inflight *f)
{
    finish_bounces(d, f);
    f->next = d->settling;
    d->settling = f;
}

int dispatch_settle(struct dispatch *d)
{
    int settled = 0;
    uint64_t durable = state_durable(d->r->s);
    for (struct inflight **p = &d->settling; *p;) {
        struct inflight *f = *p;
        if (f->seq > durable) {
            p = &f->next;
            continue;
        }
        *p = f->next;
        state_dispatch_done(d->r->s, f->id);
        inflight_free(f);
        settled = 1;
    }
    return settled;
}

/* --------------------------------------------------------------- jobs ---- */

static uint32_t notify_bits(const char *notify)
{
    uint32_t bits = 0;
    struct buf words = BUF_INIT;
    buf_sets(&words, notify ? notify : "");
    for (char *save = NULL, *w = strtok_r(words.s, ",", &save); w; w = strtok_r(NULL, ",", &save))
        bits |= strcasecmp(w, "NEVER") == 0     ? RP_NOTIFY_NEVER
                : strcasecmp(w, "SUCCESS") == 0 ? RP_NOTIFY_SUCCESS
                : strcasecmp(w, "FAILURE") == 0 ? RP_NOTIFY_FAILURE
                : strcasecmp(w, "DELAY") == 0   ? RP_NOTIFY_DELAY
                                                : 0;
    buf_free(&words);
    return bits;
}

/* Split key ("h1,h2") into the job's next hops. */
static size_t split_hops(char *key, char **hops)
{
    size_t n = 0;
    for (char *save = NULL, *h = strtok_r(key, ",", &save); h && n < RP_HOPS_MAX;
         h = strtok_r(NULL, ",", &save))
        hops[n++] = h;
    return n;
}

/* One JOB for recipients [from, from + n) of g, with its own descriptor. */
static void send_job(struct dispatch *d, struct inflight *f, const struct queue_msg_fd *mf,
                     const struct group *g, size_t from, uint32_t n)
{
    const struct queue_msg *qm = &mf->file.msg[mf->index];
    struct rp_rcpt rc[RP_RCPT_MAX];
    char *hops[RP_HOPS_MAX];
    char *key = xstrdup(g->key);
    struct job *j = xcalloc(1, sizeof(*j));
    j->id = ++d->last_job;
    j->msg = f;
    j->n = n;
    for (uint32_t i = 0; i < n; i++) {
        const struct queue_rcpt *qr = &qm->rcpt[g->rcpt[from + i]];
        j->rcpt[i] = g->rcpt[from + i];
        rc[i].address = g->addr[from + i];
        rc[i].orcpt = qr->orcpt ? qr->orcpt : (char *)"";
        rc[i].notify = notify_bits(qr->notify);
    }
    struct rp_job job = {j->id,      f->id, mf->offset, mf->length, f->m->arrival_us,
                         qm->sender, rc,    n,          hops,       0};
    job.nhops = split_hops(key, hops);
    struct buf rec = BUF_INIT;
    rp_put_job(&rec, &job);
    int fd = fcntl(mf->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        log_die(1, "%s: dup of the message descriptor: %s", f->id, strerror(errno));
    j->next = d->jobs;
    d->jobs = j;
    d->njobs++;
    f->jobs++;
    channel_send(d->ch, rec.s, rec.len, &fd, 1); /* the channel owns fd now */
    buf_free(&rec);
    free(key);
}

static struct group *group_for(struct groups *gs, const char *key)
{
    for (size_t i = 0; i < gs->n; i++)
        if (strcmp(gs->v[i].key, key) == 0)
            return &gs->v[i];
    gs->v = xgrow(gs->v, &gs->cap, gs->n + 1, sizeof(*gs->v));
    struct group *g = &gs->v[gs->n++];
    memset(g, 0, sizeof(*g));
    g->key = xstrdup(key);
    return g;
}

static void group_add(struct groups *gs, const char *key, uint32_t k, const char *addr)
{
    struct group *g = group_for(gs, key);
    g->rcpt = xgrow(g->rcpt, &g->cap, g->n + 1, sizeof(*g->rcpt));
    g->addr = xgrow(g->addr, &g->addr_cap, g->n + 1, sizeof(*g->addr));
    g->rcpt[g->n] = k;
    g->addr[g->n++] = xstrdup(addr);
}

static void groups_free(struct groups *gs)
{
    for (size_t i = 0; i < gs->n; i++) {
        for (size_t k = 0; k < gs->v[i].n; k++)
            free(gs->v[i].addr[k]);
        free(gs->v[i].addr);
        free(gs->v[i].rcpt);
        free(gs->v[i].key);
    }
    free(gs->v);
}

/* ------------------------------------------------------------ routing ---- */

/* The route as `onehop queue show` displays it; recorded when it changed. */
static void record_route(struct dispatch *d, struct inflight *f, uint32_t k,
                         const struct route_result *rr, const char *hops)
{
    struct buf text = BUF_INIT;
    route_result_describe(&d->r->routing, rr, &text);
    if (hops)
        buf_printf(&text, " -> %s", hops);
    const char *old = f->m->rcpt[k].route;
    if (!old || strcmp(old, buf_cstr(&text)) != 0)
        note(f, state_set_route(d->r->s, f->id, k, buf_cstr(&text)), "route");
    buf_free(&text);
}

static void hops_key(const struct route_result *rr, struct buf *key)
{
    for (size_t i = 0; i < rr->nhops && i < RP_HOPS_MAX; i++) {
        if (i > 0)
            buf_addc(key, ',');
        nexthop_format(&rr->hops[i], key);
    }
}

static void reason_of(const struct route_result *rr, struct buf *why)
{
    buf_printf(why, "%s %s", rr->status ? rr->status : "", rr->reason ? rr->reason : "");
}

/* The decision to apply: the one result, or, by SPEC 5 rule 5, the site
 * path when the direct delivery of the last attempt failed temporarily
 * (the hub is a fallback, never a single point of failure): *fallback is
 * then filled and *fell_back set. NULL: an alias that expanded to several. */
static const struct route_result *pick_route(struct dispatch *d, struct inflight *f, uint32_t k,
                                             const struct route_results *res,
                                             struct route_result *fallback, int *fell_back)
{
    const struct route_result *rr = res->n == 1 ? &res->v[0] : NULL;
    if (rr && rr->rule == RULE_SITE_DIRECT && f->m->rcpt[k].state == SRCPT_DEFERRED &&
        routing_site_fallback(&d->r->routing, rr, fallback) == 0) {
        *fell_back = 1;
        return fallback;
    }
    return rr;
}

/* One due recipient: its routing decision, recorded or grouped. */
static void route_rcpt(struct dispatch *d, struct inflight *f, uint32_t k, int64_t now,
                       struct groups *gs)
{
    struct route_results res = ROUTE_RESULTS_INIT;
    struct buf key = BUF_INIT, why = BUF_INIT;
    struct route_result fallback;
    int fell_back = 0;
    routing_resolve(&d->r->routing, rcpt_addr(f, k), &res);
    const struct route_result *rr = pick_route(d, f, k, &res, &fallback, &fell_back);
    if (!rr) {
        buf_printf(&why,
                   "4.3.0 an alias expanding to %zu recipients: delivery of expanded "
                   "aliases is not built yet",
                   res.n);
        defer_here(d, f, k, now, why.s);
    } else if (rr->action == ROUTE_REMOTE && rr->nhops > 0) {
        hops_key(rr, &key);
        record_route(d, f, k, rr, key.s);
        group_add(gs, key.s, k, rr->recipient);
    } else if (rr->action == ROUTE_LOCAL) {
        record_route(d, f, k, rr, NULL);
        defer_here(d, f, k, now, LOCAL_NOT_BUILT);
    } else if (rr->action == ROUTE_BOUNCE) {
        record_route(d, f, k, rr, NULL);
        reason_of(rr, &why);
        bounce_here(f, k, why.s);
    } else {
        record_route(d, f, k, rr, NULL);
        reason_of(rr, &why);
        defer_here(d, f, k, now, why.s);
    }
    if (fell_back)
        route_result_free(&fallback);
    route_results_free(&res);
    buf_free(&key);
    buf_free(&why);
}

static int rcpt_due(const struct state_rcpt *r, int64_t now)
{
    return r->state == SRCPT_PENDING || (r->state == SRCPT_DEFERRED && r->next_try <= now);
}

/* The message could not be opened: every due recipient deferred (a file
 * gone or corrupt is the state side's and the cleaner's to settle). */
static void defer_unreadable(struct dispatch *d, struct inflight *f, int64_t now, const char *why)
{
    struct buf reason = BUF_INIT;
    buf_printf(&reason, "4.3.0 cannot open the message: %s", why ? why : strerror(errno));
    log_warn("%s: %s", f->id, reason.s);
    for (uint32_t k = 0; k < f->m->nrcpt; k++)
        if (rcpt_due(&f->m->rcpt[k], now))
            record_deferred(d, f, k, now, reason.s);
    buf_free(&reason);
}

#define RECEIVED_MAX 100 /* SPEC D5 */

/* SPEC D5: more than RECEIVED_MAX Received: header fields is a mail loop. */
static int loops(const struct queue_msg_fd *mf)
{
    struct buf headers = BUF_INIT;
    unsigned n = 0;
    read_headers(mf, &headers);
    for (size_t i = 0; i + 9 <= headers.len; i++)
        if ((i == 0 || headers.s[i - 1] == '\n') && strncasecmp(headers.s + i, "received:", 9) == 0)
            n++;
    buf_free(&headers);
    return n > RECEIVED_MAX;
}

static void copy_addresses(struct inflight *f, const struct queue_msg_fd *mf)
{
    const struct queue_msg *qm = &mf->file.msg[mf->index];
    f->naddr = (uint32_t)(qm->nrcpt < f->m->nrcpt ? qm->nrcpt : f->m->nrcpt);
    f->addr = xcalloc(f->naddr ? f->naddr : 1, sizeof(*f->addr));
    for (uint32_t k = 0; k < f->naddr; k++)
        f->addr[k] = xstrdup(qm->rcpt[k].addr);
}

static void dispatch_message(struct dispatch *d, const struct state_msg *m, int64_t now)
{
    struct inflight *f = xcalloc(1, sizeof(*f));
    struct queue_msg_fd mf;
    const char *why = NULL;
    state_msg_id(m, f->id);
    f->m = m;
    f->arrival = (int64_t)(m->arrival_us / 1000000);
    if (queue_msg_open(d->r->q, f->id, &mf, &why) != 0) {
        defer_unreadable(d, f, now, why);
        settle_later(d, f);
        return;
    }
    copy_addresses(f, &mf);
    struct retry_policy p = policy(d->r);
    struct groups gs = {NULL, 0, 0};
    int loop = loops(&mf);
    for (uint32_t k = 0; k < f->naddr; k++) {
        const struct state_rcpt *r = &m->rcpt[k];
        if (!rcpt_due(r, now))
            continue;
        if (loop)
            bounce_here(f, k, "5.4.6 mail loop: more than 100 Received: header fields");
        else if (r->state == SRCPT_DEFERRED && retry_expired(&p, now, f->arrival))
            bounce_expired(d, f, k, r->reason);
        else
            route_rcpt(d, f, k, now, &gs);
    }
    for (size_t i = 0; i < gs.n; i++)
        for (size_t from = 0; from < gs.v[i].n; from += RP_RCPT_MAX) {
            size_t left = gs.v[i].n - from;
            send_job(d, f, &mf, &gs.v[i], from,
                     (uint32_t)(left < RP_RCPT_MAX ? left : RP_RCPT_MAX));
        }
    groups_free(&gs);
    queue_msg_fd_close(&mf);
    if (f->jobs == 0)
        settle_later(d, f);
}

int dispatch_due(struct dispatch *d, int64_t now, int64_t *next_wakeup)
{
    const struct state_msg *m;
    int did = 0;
    *next_wakeup = 0;
    while (d->ch && d->njobs < d->r->conf.remote_concurrency) {
        if (!state_next_due(d->r->s, now, &m, next_wakeup))
            return did;
        dispatch_message(d, m, now);
        did = 1;
    }
    *next_wakeup = 0; /* full: a job's DONE makes room and pumps again */
    return did;
}

unsigned dispatch_in_flight(const struct dispatch *d)
{
    return d ? d->njobs : 0;
}

/* ------------------------------------------------------------ results ---- */

static struct job *job_find(struct dispatch *d, uint64_t id, struct job ***link)
{
    for (struct job **p = &d->jobs; *p; p = &(*p)->next)
        if ((*p)->id == id) {
            if (link)
                *link = p;
            return *p;
        }
    return NULL;
}

static void record_result(struct dispatch *d, struct inflight *f, uint32_t k,
                          const struct rp_result *res, int64_t now)
{
    struct retry_policy p = policy(d->r);
    if (res->cls == RP_OK)
        note(f, state_delivered(d->r->s, f->id, k, now, res->reply), "delivery");
    else if (res->cls == RP_PERM)
        bounce_later(f, k, res->reply, res->relay, 0);
    else if (retry_expired(&p, now, f->arrival))
        bounce_expired(d, f, k, res->reply);
    else
        record_deferred(d, f, k, now, res->reply);
}

static const char *on_result(struct dispatch *d, struct chan_record *rec)
{
    struct rp_result res;
    const char *why;
    if (rp_get_result(rec->data, rec->len, &res, &d->text, &why) < 0)
        return why;
    struct job *j = job_find(d, res.job, NULL);
    if (!j)
        return "a result for no job in flight";
    if (res.index >= j->n || j->answered[res.index])
        return "a result for no recipient of its job, or a second one";
    j->answered[res.index] = 1;
    record_result(d, j->msg, j->rcpt[res.index], &res, (int64_t)time(NULL));
    return NULL;
}

static const char *on_done(struct dispatch *d, struct chan_record *rec)
{
    uint64_t id;
    uint32_t nresults;
    const char *why;
    struct job **link;
    if (rp_get_done(rec->data, rec->len, &id, &nresults, &why) < 0)
        return why;
    struct job *j = job_find(d, id, &link);
    if (!j)
        return "a job done that is not in flight";
    struct inflight *f = j->msg;
    int64_t now = (int64_t)time(NULL);
    for (uint32_t i = 0; i < j->n; i++)
        if (!j->answered[i]) /* remote_proto.h forbids it; never lose the recipient */
            defer_here(d, f, j->rcpt[i], now, "4.3.0 no result from the remote daemon");
    *link = j->next;
    free(j);
    d->njobs--;
    if (--f->jobs == 0)
        settle_later(d, f);
    return NULL;
}

static const char *on_record(void *arg, struct channel *ch, struct chan_record *rec)
{
    struct dispatch *d = arg;
    (void)ch;
    switch (rp_record_type(rec->data, rec->len)) {
    case RP_RESULT:
        return on_result(d, rec);
    case RP_DONE:
        return on_done(d, rec);
    default:
        return "unexpected record from the remote daemon";
    }
}

/* Jobs in flight stay in flight: their messages are due again after the
 * restart the master does (its channel's peers), at least once. */
static void on_close(void *arg, struct channel *ch, const char *reason)
{
    struct dispatch *d = arg;
    (void)ch;
    d->ch = NULL;
    log_warn("remote channel closed (%s) with %u jobs in flight", reason, d->njobs);
    router_channel_lost(d->r, "the remote's channel closed");
}

struct dispatch *dispatch_open(struct router *r)
{
    static const struct channel_ops ops = {on_record, NULL, on_close};
    struct channel_opts opts = {"remote", RP_RECORD_MAX, 0, 1024 * 1024, 0, 0};
    struct dispatch *d = xcalloc(1, sizeof(*d));
    d->r = r;
    d->ch = router_channel(r, RP_CHANNEL_ENV, &opts, &ops, d);
    return d;
}

void dispatch_close(struct dispatch *d)
{
    if (!d)
        return;
    channel_close(d->ch);
    while (d->jobs) {
        struct job *j = d->jobs;
        d->jobs = j->next;
        if (--j->msg->jobs == 0)
            inflight_free(j->msg);
        free(j);
    }
    struct inflight *f = d->settling;
    while (f) {
        struct inflight *next = f->next;
        inflight_free(f);
        f = next;
    }
    buf_free(&d->text);
    free(d);
}
