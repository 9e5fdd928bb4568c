/*
 * dispatch — due messages to onehop-remote and onehop-local, results back:
 * dispatch.h.
 */
#include "router/dispatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "local_proto.h"
#include "log.h"
#include "mem.h"
#include "remote_proto.h"
#include "router/bounce.h"
#include "router/destination.h"
#include "router/memo.h"
#include "router/retry.h"
#include "router/rmetrics.h"
#include "router/router.h"

#define LOCAL_KEY "local" /* the group of a message's local recipients */
#define LOCAL_GONE "4.3.0 the local delivery agent is not available"
#define SUSPENDED "4.4.1 delivery temporarily suspended:" /* D8, Postfix's words */
#define ROUTE_TEXT_MAX 1000 /* the route recorded for an expanded alias */

/* An envelope recipient whose alias expanded to several final recipients
 * (targets): final once every target is (memo.h remembers the done ones). */
struct expansion {
    uint32_t k;
    uint32_t ntargets;
    uint32_t nok, nbounced, ntemp; /* this dispatch and earlier ones (memo) */
    char *temp_reason;             /* the first temporary failure */
    struct expansion *next;
};

/* A permanent failure waiting for its DSN (recorded once the DSN is queued). */
struct pending_bounce {
    uint32_t k;
    struct expansion *x; /* NULL: the envelope recipient itself */
    char *target;        /* x: the alias target that failed */
    char *reason;
    char *remote_mta; /* NULL: none */
    int log_here;     /* the router decided it: it logs the status line */
};

/* One message handed out by state_next_due(), until its jobs are done. */
struct inflight {
    char id[QUEUE_ID_LEN + 1];
    const struct state_msg *m; /* valid while in flight (state.h) */
    int64_t arrival;           /* unix seconds */
    unsigned jobs;             /* sent or waiting, not DONE yet */
    int dispatching;           /* dispatch_message is still making its jobs */
    uint64_t seq;              /* the last record of this dispatch */
    char **addr;               /* each recipient's address, for log lines */
    uint32_t naddr;
    struct expansion *expansions;
    struct pending_bounce *bounces;
    size_t nbounces, bounces_cap;
    struct inflight *next; /* on the settling list */
};

/* One recipient of a job: the envelope recipient k, and for an expanded
 * alias its expansion and target. */
struct unit {
    uint32_t k;
    struct expansion *x;
    char *target;
};

struct job {
    uint64_t id;
    int local;  /* on the local's channel */
    char *dest; /* remote: the next hops (destination.h key) */
    struct inflight *msg;
    uint32_t n;
    struct unit u[RP_RCPT_MAX];
    uint8_t answered[RP_RCPT_MAX];
    uint32_t reached, conn_failed; /* results that reached a server / did not (D8) */
    char *last_reply;
    struct buf rec; /* local: the record, while waiting for a slot */
    int fd;         /* local: its descriptor while waiting, else -1 */
    struct job *next;
};

/* The recipients of one message for one list of next hops (or local). */
struct member {
    uint32_t k;
    char *addr; /* the final recipient (an alias may have replaced it) */
    struct expansion *x;
    uint32_t origin; /* local: LP_FROM_* */
};

struct group {
    char *key; /* the next hops, comma-separated (nexthop.h text), or LOCAL_KEY */
    int local;
    struct member *mb;
    size_t n, cap;
};

struct groups {
    struct group *v;
    size_t n, cap;
};

struct dispatch {
    struct router *r;
    struct channel *ch;                  /* remote */
    struct channel *lch;                 /* local, NULL: not available */
    struct job *jobs;                    /* sent */
    struct job *waiting, **waiting_tail; /* local jobs waiting for a slot, in order */
    unsigned nremote, nlocal, nwaiting;
    uint64_t last_job;
    struct inflight *settling;
    struct memo *memo;
    struct destinations *dests;
    struct buf text; /* a result's strings */
    /* The file of the last message handed out, open while dispatch_due
     * goes on: the state hands a file's messages out one after another. */
    struct queue_msg_fd file;
    int file_open;
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
static void hold_status(struct dispatch *d, struct inflight *f, const char *to, const char *status,
                        const char *reason, int64_t now)
{
    struct buf line = BUF_INIT;
    rmetrics_router_status(status);
    buf_printf(&line, "%s: to=<%s>, relay=none, delay=%lld, status=%s (%s)", f->id, to,
               (long long)(now - f->arrival), status, reason);
    router_hold_line(d->r, f->seq, buf_steal(&line));
}

static void hold_info(struct dispatch *d, struct inflight *f, struct buf *line)
{
    router_hold_line(d->r, f->seq, buf_steal(line));
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

static void record_deferred_at(struct dispatch *d, struct inflight *f, uint32_t k, int64_t now,
                               int64_t next, const char *reason)
{
    note(f, state_deferred(d->r->s, f->id, k, now, next, reason), "deferral");
}

static void record_deferred(struct dispatch *d, struct inflight *f, uint32_t k, int64_t now,
                            const char *reason)
{
    struct retry_policy p = policy(d->r);
    int64_t next = retry_next_try(&p, f->m->rcpt[k].attempts + 1, now_ceil(), f->arrival);
    record_deferred_at(d, f, k, now, next, reason);
}

/* D6: a bounce is recorded only once its DSN is queued (finish_bounces),
 * so no crash can leave a bounced recipient without its notice. */
static void bounce_later(struct inflight *f, uint32_t k, struct expansion *x, const char *target,
                         const char *reason, const char *relay, int log_here)
{
    f->bounces = xgrow(f->bounces, &f->bounces_cap, f->nbounces + 1, sizeof(*f->bounces));
    struct pending_bounce *b = &f->bounces[f->nbounces++];
    b->k = k;
    b->x = x;
    b->target = x ? xstrdup(target) : NULL;
    b->reason = xstrdup(reason ? reason : "");
    b->remote_mta = NULL;
    b->log_here = log_here;
    const char *bracket = relay ? strchr(relay, '[') : NULL;
    if (bracket && bracket > relay)
        b->remote_mta = xstrndup(relay, (size_t)(bracket - relay));
}

/* A temporary failure of one target of an expanded alias. */
static void target_temp(struct expansion *x, const char *reason)
{
    x->ntemp++;
    if (!x->temp_reason)
        x->temp_reason = xstrdup(reason ? reason : "4.3.0 deferred");
}

/* A temporary failure the router decided (routing, local, no content). */
static void defer_here(struct dispatch *d, struct inflight *f, uint32_t k, int64_t now,
                       const char *reason)
{
    record_deferred(d, f, k, now, reason);
    hold_status(d, f, rcpt_addr(f, k), "deferred", reason, now);
}

/* The same for one unit (an envelope recipient, or a target of one). */
static void defer_unit(struct dispatch *d, struct inflight *f, const struct unit *u, int64_t now,
                       const char *reason)
{
    if (!u->x) {
        defer_here(d, f, u->k, now, reason);
        return;
    }
    target_temp(u->x, reason);
    hold_status(d, f, u->target, "deferred", reason, now);
}

static void bounce_here(struct inflight *f, uint32_t k, const char *reason)
{
    bounce_later(f, k, NULL, NULL, reason, NULL, 1);
}

/* SPEC 3 queue_lifetime, D4 (c): a deferred recipient past it is bounced. */
static void expired_reason(struct dispatch *d, const char *last, struct buf *why)
{
    buf_printf(why, "5.4.7 message expired after %llus in the queue; last error: %s",
               (unsigned long long)d->r->conf.queue_lifetime, last ? last : "none");
}

static void bounce_expired(struct dispatch *d, struct inflight *f, uint32_t k, const char *last)
{
    struct buf why = BUF_INIT;
    expired_reason(d, last, &why);
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

/* The DSN is queued (dsn: its id; NULL: none is sent): every bounce is
 * recorded; a bounced alias target is remembered done. */
static void record_bounces(struct dispatch *d, struct inflight *f, int64_t now, const char *dsn,
                           const char *kind)
{
    for (size_t i = 0; i < f->nbounces; i++) {
        const struct pending_bounce *b = &f->bounces[i];
        if (b->x) {
            memo_set_target(d->memo, f->id, b->k, b->target, MEMO_BOUNCED);
            b->x->nbounced++;
        } else {
            /* The flag first: the bounce may finish the message (the state forgets it). */
            if (dsn)
                note(f, state_set_flags(d->r->s, f->id, b->k, QUEUE_FLAG_BOUNCE_SENT), "flags");
            note(f, state_bounced(d->r->s, f->id, b->k, now, b->reason), "bounce");
            memo_forget(d->memo, f->id, b->k); /* final: an expired alias's targets too */
        }
        if (b->log_here)
            hold_status(d, f, b->x ? b->target : rcpt_addr(f, b->k), "bounced", b->reason, now);
    }
    if (dsn) {
        struct buf line = BUF_INIT;
        buf_printf(&line, "%s: %s non-delivery notification: %s", f->id, kind, dsn);
        hold_info(d, f, &line);
    }
}

/* RFC 3464 2.3.1: Original-Recipient is the ORCPT when the client gave one,
 * else, for an alias target, the envelope recipient it expanded from. */
static const char *original_of(const struct queue_msg *qm, const struct inflight *f, uint32_t k,
                               int target, struct buf *scratch)
{
    if (k < qm->nrcpt && qm->rcpt[k].orcpt && qm->rcpt[k].orcpt[0])
        return qm->rcpt[k].orcpt;
    if (!target)
        return "";
    buf_printf(scratch, "rfc822; %s", rcpt_addr(f, k));
    return buf_cstr(scratch);
}

static void compose_notice(struct dispatch *d, struct inflight *f, const struct queue_msg_fd *mf,
                           struct bounce *bn, struct buf *out)
{
    struct buf headers = BUF_INIT;
    read_headers(mf, &headers);
    bn->myhostname = d->r->conf.myhostname;
    bn->queue_id = f->id;
    bn->arrival = f->arrival;
    bn->headers = headers.s ? headers.s : "";
    bn->headers_len = headers.len;
    bounce_compose(bn, out);
    buf_free(&headers);
}

static void compose_dsn(struct dispatch *d, struct inflight *f, const struct queue_msg_fd *mf,
                        const char *to, int64_t now, struct buf *out)
{
    const struct queue_msg *qm = &mf->file.msg[mf->index];
    struct bounce_rcpt *rc = xcalloc(f->nbounces, sizeof(*rc));
    struct buf *orig = xcalloc(f->nbounces, sizeof(*orig));
    for (size_t i = 0; i < f->nbounces; i++) {
        const struct pending_bounce *b = &f->bounces[i];
        rc[i].address = b->x ? b->target : rcpt_addr(f, b->k);
        rc[i].orcpt = original_of(qm, f, b->k, b->x != NULL, &orig[i]);
        rc[i].diagnostic = b->reason;
        rc[i].remote_mta = b->remote_mta;
    }
    struct bounce bn = {.sender = to, .now = now, .rcpt = rc, .nrcpt = f->nbounces};
    compose_notice(d, f, mf, &bn, out);
    for (size_t i = 0; i < f->nbounces; i++)
        buf_free(&orig[i]);
    free(orig);
    free(rc);
}

/* The DSN not queued: the recipients stay deferred, tried (and bounced) again. */
static void defer_bounces(struct dispatch *d, struct inflight *f, int64_t now, const char *why)
{
    struct buf reason = BUF_INIT;
    log_warn("%s: the non-delivery notification could not be queued: %s", f->id, why);
    for (size_t i = 0; i < f->nbounces; i++) {
        const struct pending_bounce *b = &f->bounces[i];
        buf_clear(&reason);
        buf_printf(&reason, "4.3.0 bounce notice not queued (%s); was: %s", why, b->reason);
        if (b->x)
            target_temp(b->x, buf_cstr(&reason));
        else
            record_deferred(d, f, b->k, now, buf_cstr(&reason));
    }
    buf_free(&reason);
}

static int is_postmaster(const char *addr)
{
    size_t n = strlen("postmaster");
    return strncasecmp(addr, "postmaster", n) == 0 && (addr[n] == '\0' || addr[n] == '@');
}

/* Every failed recipient of a bounce is postmaster: the notice of a failed
 * bounce failed itself. */
static int only_postmaster(const struct inflight *f)
{
    for (size_t i = 0; i < f->nbounces; i++) {
        const struct pending_bounce *b = &f->bounces[i];
        if (!is_postmaster(b->x ? b->target : rcpt_addr(f, b->k)))
            return 0;
    }
    return 1;
}

/* Queue a DSN to `to` and record the bounces; deferred when not queued. */
static void send_dsn(struct dispatch *d, struct inflight *f, const struct queue_msg_fd *mf,
                     const char *to, const char *kind, int64_t now)
{
    struct buf dsn = BUF_INIT, why = BUF_INIT;
    char dsn_id[QUEUE_ID_LEN + 1];
    compose_dsn(d, f, mf, to, now, &dsn);
    if (bounce_inject(&d->r->conf, to, &dsn, dsn_id, &why) == 0)
        record_bounces(d, f, now, dsn_id, kind);
    else
        defer_bounces(d, f, now, buf_cstr(&why));
    buf_free(&dsn);
    buf_free(&why);
}

/* D6 for a message from the null sender (a bounce): its failure goes once
 * to postmaster; when that notice fails too, it is logged and dropped. */
static void bounce_of_bounce(struct dispatch *d, struct inflight *f, const struct queue_msg_fd *mf,
                             int64_t now)
{
    if (only_postmaster(f)) {
        log_warn("%s: undeliverable notification to postmaster discarded (D6)", f->id);
        record_bounces(d, f, now, NULL, NULL);
        return;
    }
    struct buf pm = BUF_INIT;
    buf_printf(&pm, "postmaster@%s", d->r->conf.myhostname);
    send_dsn(d, f, mf, pm.s, "postmaster", now);
    buf_free(&pm);
}

/* One DSN for every recipient of this dispatch that failed, queued, then
 * their bounces recorded (D6). */
static void finish_bounces(struct dispatch *d, struct inflight *f)
{
    struct queue_msg_fd mf;
    const char *open_why = NULL;
    int64_t now = (int64_t)time(NULL);
    if (f->nbounces == 0)
        return;
    if (queue_msg_open(d->r->q, f->id, &mf, &open_why) != 0) {
        defer_bounces(d, f, now, open_why ? open_why : strerror(errno));
        return;
    }
    const char *sender = mf.file.msg[mf.index].sender;
    if (sender[0] == '\0')
        bounce_of_bounce(d, f, &mf, now);
    else
        send_dsn(d, f, &mf, sender, "sender", now);
    queue_msg_fd_close(&mf);
}

/* ------------------------------------------------ delay warnings (SPEC 3) ---- */

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

/* A recipient due a delay notice: deferred, waiting delay_warning or more,
 * none sent yet, and RFC 3461 4.1 NOTIFY (when given) asks for DELAY. */
static int wants_delay_notice(const struct dispatch *d, const struct inflight *f,
                              const struct queue_msg *qm, uint32_t k, int64_t now)
{
    const struct state_rcpt *r = &f->m->rcpt[k];
    uint64_t after = d->r->conf.delay_warning;
    if (after == 0 || r->state != SRCPT_DEFERRED || (r->flags & QUEUE_FLAG_DELAY_WARNED))
        return 0;
    if (f->arrival <= 0 || now - f->arrival < (int64_t)after)
        return 0;
    uint32_t bits = k < qm->nrcpt ? notify_bits(qm->rcpt[k].notify) : 0;
    return bits == 0 || (bits & RP_NOTIFY_DELAY);
}

static void send_delay_notice(struct dispatch *d, struct inflight *f, const struct queue_msg_fd *mf,
                              const uint32_t *ks, size_t n, int64_t now)
{
    const struct queue_msg *qm = &mf->file.msg[mf->index];
    struct bounce_rcpt *rc = xcalloc(n, sizeof(*rc));
    struct buf *orig = xcalloc(n, sizeof(*orig));
    struct buf dsn = BUF_INIT, why = BUF_INIT;
    char dsn_id[QUEUE_ID_LEN + 1];
    for (size_t i = 0; i < n; i++) {
        rc[i].address = rcpt_addr(f, ks[i]);
        rc[i].orcpt = original_of(qm, f, ks[i], 0, &orig[i]);
        rc[i].diagnostic = f->m->rcpt[ks[i]].reason ? f->m->rcpt[ks[i]].reason : "4.0.0 deferred";
    }
    struct bounce bn = {.sender = qm->sender,
                        .now = now,
                        .rcpt = rc,
                        .nrcpt = n,
                        .delayed = 1,
                        .retry_until = f->arrival + (int64_t)d->r->conf.queue_lifetime};
    compose_notice(d, f, mf, &bn, &dsn);
    if (bounce_inject(&d->r->conf, qm->sender, &dsn, dsn_id, &why) == 0) {
        for (size_t i = 0; i < n; i++)
            note(f, state_set_flags(d->r->s, f->id, ks[i], QUEUE_FLAG_DELAY_WARNED), "flags");
        struct buf line = BUF_INIT;
        buf_printf(&line, "%s: sender delay notification: %s", f->id, dsn_id);
        hold_info(d, f, &line);
    } else {
        log_warn("%s: the delay notification could not be queued (tried again later): %s", f->id,
                 buf_cstr(&why));
    }
    for (size_t i = 0; i < n; i++)
        buf_free(&orig[i]);
    free(orig);
    free(rc);
    buf_free(&dsn);
    buf_free(&why);
}

/* delay_warning: one notice per message for its recipients that have
 * waited that long, each warned once (QUEUE_FLAG_DELAY_WARNED). None for a
 * message from the null sender. */
static void warn_delays(struct dispatch *d, struct inflight *f)
{
    int64_t now = (int64_t)time(NULL);
    struct queue_msg_fd mf;
    const char *why = NULL;
    if (d->r->conf.delay_warning == 0 || f->arrival <= 0 ||
        now - f->arrival < (int64_t)d->r->conf.delay_warning)
        return;
    if (queue_msg_open(d->r->q, f->id, &mf, &why) != 0)
        return; /* tried again at the next dispatch */
    const struct queue_msg *qm = &mf.file.msg[mf.index];
    uint32_t *ks = xcalloc(f->naddr ? f->naddr : 1, sizeof(*ks));
    size_t n = 0;
    for (uint32_t k = 0; qm->sender[0] && k < f->naddr; k++)
        if (wants_delay_notice(d, f, qm, k, now))
            ks[n++] = k;
    if (n > 0)
        send_delay_notice(d, f, &mf, ks, n, now);
    free(ks);
    queue_msg_fd_close(&mf);
}

/* ------------------------------------------------ expanded aliases ---- */

static struct expansion *expansion_new(struct inflight *f, uint32_t k, uint32_t ntargets)
{
    struct expansion *x = xcalloc(1, sizeof(*x));
    x->k = k;
    x->ntargets = ntargets;
    x->next = f->expansions;
    f->expansions = x;
    return x;
}

/* After the DSN: an expanded envelope recipient with a target still to do
 * is deferred; otherwise it is final: delivered if any target was, else
 * bounced (each target's DSN is queued), and forgotten by the memo. */
static void finish_expansion(struct dispatch *d, struct inflight *f, struct expansion *x,
                             int64_t now)
{
    struct buf text = BUF_INIT;
    if (x->ntemp > 0) {
        buf_printf(&text, "%s (alias: %u of %u targets still to do)", x->temp_reason, x->ntemp,
                   x->ntargets);
        record_deferred(d, f, x->k, now, text.s);
    } else if (x->nok > 0) {
        buf_printf(&text, "2.0.0 alias expanded to %u: %u delivered, %u bounced", x->ntargets,
                   x->nok, x->nbounced);
        note(f, state_delivered(d->r->s, f->id, x->k, now, text.s), "delivery");
        memo_forget(d->memo, f->id, x->k);
    } else {
        buf_printf(&text, "5.0.0 alias expanded to %u: every target bounced", x->ntargets);
        note(f, state_set_flags(d->r->s, f->id, x->k, QUEUE_FLAG_BOUNCE_SENT), "flags");
        note(f, state_bounced(d->r->s, f->id, x->k, now, text.s), "bounce");
        memo_forget(d->memo, f->id, x->k);
    }
    struct buf line = BUF_INIT;
    buf_printf(&line, "%s: <%s>: %s", f->id, rcpt_addr(f, x->k), text.s);
    hold_info(d, f, &line);
    buf_free(&text);
}

static void finish_expansions(struct dispatch *d, struct inflight *f)
{
    int64_t now = (int64_t)time(NULL);
    for (struct expansion *x = f->expansions; x; x = x->next)
        finish_expansion(d, f, x, now);
}

/* ----------------------------------------------------------- settling ---- */

static void inflight_free(struct inflight *f)
{
    for (uint32_t k = 0; k < f->naddr; k++)
        free(f->addr[k]);
    free(f->addr);
    for (size_t i = 0; i < f->nbounces; i++) {
        free(f->bounces[i].reason);
        free(f->bounces[i].target);
        free(f->bounces[i].remote_mta);
    }
    free(f->bounces);
    while (f->expansions) {
        struct expansion *x = f->expansions;
        f->expansions = x->next;
        free(x->temp_reason);
        free(x);
    }
    free(f);
}

/* The dispatch is over: its DSN queued and its bounces recorded, its
 * expanded aliases settled, delay notices sent, then ended once all of it
 * is durable. */
static void settle_later(struct dispatch *d, struct inflight *f)
{
    finish_bounces(d, f);
    finish_expansions(d, f);
    warn_delays(d, f);
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

/* Split key ("h1,h2") into the job's next hops. */
static size_t split_hops(char *key, char **hops)
{
    size_t n = 0;
    for (char *save = NULL, *h = strtok_r(key, ",", &save); h && n < RP_HOPS_MAX;
         h = strtok_r(NULL, ",", &save))
        hops[n++] = h;
    return n;
}

static struct job *job_new(struct dispatch *d, struct inflight *f, const struct group *g,
                           size_t from, uint32_t n)
{
    struct job *j = xcalloc(1, sizeof(*j));
    j->id = ++d->last_job;
    j->local = g->local;
    j->dest = g->local ? NULL : xstrdup(g->key);
    j->msg = f;
    j->n = n;
    j->fd = -1;
    for (uint32_t i = 0; i < n; i++) {
        const struct member *mb = &g->mb[from + i];
        j->u[i].k = mb->k;
        j->u[i].x = mb->x;
        j->u[i].target = mb->x ? xstrdup(mb->addr) : NULL;
    }
    f->jobs++;
    return j;
}

static void job_free(struct job *j)
{
    for (uint32_t i = 0; i < j->n; i++)
        free(j->u[i].target);
    if (j->fd >= 0)
        close(j->fd);
    buf_free(&j->rec);
    free(j->last_reply);
    free(j->dest);
    free(j);
}

static int dup_message_fd(const struct inflight *f, const struct queue_msg_fd *mf)
{
    int fd = fcntl(mf->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        log_die(1, "%s: dup of the message descriptor: %s", f->id, strerror(errno));
    return fd;
}

static void job_sent(struct dispatch *d, struct job *j)
{
    j->next = d->jobs;
    d->jobs = j;
    if (j->local)
        d->nlocal++;
    else
        d->nremote++;
}

/* One JOB for members [from, from + n) of g, with its own descriptor. */
static void send_remote_job(struct dispatch *d, struct inflight *f, const struct queue_msg_fd *mf,
                            const struct group *g, size_t from, uint32_t n)
{
    const struct queue_msg *qm = &mf->file.msg[mf->index];
    struct rp_rcpt rc[RP_RCPT_MAX];
    char *hops[RP_HOPS_MAX];
    char *key = xstrdup(g->key);
    struct job *j = job_new(d, f, g, from, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct queue_rcpt *qr = &qm->rcpt[g->mb[from + i].k];
        rc[i].address = g->mb[from + i].addr;
        rc[i].orcpt = qr->orcpt ? qr->orcpt : (char *)"";
        rc[i].notify = notify_bits(qr->notify);
    }
    struct rp_job job = {j->id,      f->id, mf->offset, mf->length, f->m->arrival_us,
                         qm->sender, rc,    n,          hops,       0};
    job.nhops = split_hops(key, hops);
    struct buf rec = BUF_INIT;
    rp_put_job(&rec, &job);
    int fd = dup_message_fd(f, mf);
    job_sent(d, j);
    /* d->ch is NULL once a send found the remote gone (on_remote_close):
     * the job stays in flight, as on_remote_close keeps them, for the
     * restart the master does */
    if (d->ch)
        channel_send(d->ch, rec.s, rec.len, &fd, 1); /* the channel owns fd now */
    else
        close(fd);
    buf_free(&rec);
    free(key);
}

/* Local jobs beyond local_concurrency wait, in order, for a slot. */
static void send_waiting_local(struct dispatch *d)
{
    while (d->lch && d->waiting && d->nlocal < d->r->conf.local_concurrency) {
        struct job *j = d->waiting;
        d->waiting = j->next;
        if (!d->waiting)
            d->waiting_tail = &d->waiting;
        d->nwaiting--;
        int fd = j->fd;
        j->fd = -1;
        /* the record leaves j first: a send that finds the local gone runs
         * on_local_close, which ends (frees) j before channel_send returns */
        struct buf rec = j->rec;
        j->rec = (struct buf)BUF_INIT;
        job_sent(d, j);
        channel_send(d->lch, rec.s, rec.len, &fd, 1);
        buf_free(&rec);
    }
}

/* One LP_JOB (local_proto.h) for members [from, from + n) of g. */
static void queue_local_job(struct dispatch *d, struct inflight *f, const struct queue_msg_fd *mf,
                            const struct group *g, size_t from, uint32_t n)
{
    const struct queue_msg *qm = &mf->file.msg[mf->index];
    struct lp_rcpt rc[LP_RCPT_MAX];
    struct job *j = job_new(d, f, g, from, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct member *mb = &g->mb[from + i];
        const struct queue_rcpt *qr = &qm->rcpt[mb->k];
        rc[i].recipient = mb->addr;
        rc[i].original = (char *)rcpt_addr(f, mb->k);
        rc[i].orcpt = qr->orcpt ? qr->orcpt : (char *)"";
        rc[i].notify = notify_bits(qr->notify);
        rc[i].origin = mb->origin;
    }
    struct lp_job job = {j->id, f->id, mf->offset, mf->length, f->m->arrival_us, qm->sender, rc, n};
    lp_put_job(&j->rec, &job);
    j->fd = dup_message_fd(f, mf);
    *d->waiting_tail = j;
    d->waiting_tail = &j->next;
    d->nwaiting++;
    send_waiting_local(d);
}

static struct group *group_for(struct groups *gs, const char *key, int local)
{
    for (size_t i = 0; i < gs->n; i++)
        if (gs->v[i].local == local && strcmp(gs->v[i].key, key) == 0)
            return &gs->v[i];
    gs->v = xgrow(gs->v, &gs->cap, gs->n + 1, sizeof(*gs->v));
    struct group *g = &gs->v[gs->n++];
    memset(g, 0, sizeof(*g));
    g->key = xstrdup(key);
    g->local = local;
    return g;
}

static void group_add(struct groups *gs, const char *key, int local, uint32_t k,
                      struct expansion *x, const char *addr, uint32_t origin)
{
    struct group *g = group_for(gs, key, local);
    g->mb = xgrow(g->mb, &g->cap, g->n + 1, sizeof(*g->mb));
    struct member *mb = &g->mb[g->n++];
    mb->k = k;
    mb->x = x;
    mb->addr = xstrdup(addr);
    mb->origin = origin;
}

static void groups_free(struct groups *gs)
{
    for (size_t i = 0; i < gs->n; i++) {
        for (size_t k = 0; k < gs->v[i].n; k++)
            free(gs->v[i].mb[k].addr);
        free(gs->v[i].mb);
        free(gs->v[i].key);
    }
    free(gs->v);
}

/* ------------------------------------------------ dead destinations (D8) ---- */

/* The members of g wait for their destination: deferred to its wake-up
 * ("delivery temporarily suspended"), using no slot. */
static void suspend_group(struct dispatch *d, struct inflight *f, const struct group *g,
                          int64_t now, int64_t wake, const char *why)
{
    struct buf reason = BUF_INIT;
    buf_printf(&reason, "%s %s", SUSPENDED, why && why[0] ? why : "destination down");
    for (size_t i = 0; i < g->n; i++) {
        const struct member *mb = &g->mb[i];
        if (mb->x) {
            target_temp(mb->x, reason.s);
            hold_status(d, f, mb->addr, "deferred", reason.s, now);
        } else {
            note(f,
                 state_suspended(d->r->s, f->id, mb->k, now, wake > now ? wake : now + 1, reason.s),
                 "suspension");
            hold_status(d, f, mb->addr, "deferred", reason.s, now);
        }
    }
    dest_wait(d->dests, g->key, f->id);
    buf_free(&reason);
}

/* A success at a destination that was dead wakes the messages that waited
 * for it: their suspended recipients are due now. */
static void wake_waiters(struct dispatch *d, const char *key)
{
    char **ids;
    size_t n = dest_reached(d->dests, key, &ids);
    int64_t now = (int64_t)time(NULL);
    size_t woken = 0;
    for (size_t i = 0; i < n; i++) {
        const struct state_msg *m = state_find(d->r->s, ids[i]);
        for (uint32_t k = 0; m && !m->in_flight && k < m->nrcpt; k++) {
            const struct state_rcpt *r = &m->rcpt[k];
            if (r->state != SRCPT_DEFERRED || r->next_try <= now || !r->reason ||
                strncmp(r->reason, SUSPENDED, strlen(SUSPENDED)) != 0)
                continue;
            if (state_retry_now(d->r->s, ids[i], k, now, "D8 wake-up") == 0 && errno != ENOENT &&
                errno != EINVAL)
                router_state_fail("waking a deferral");
            woken++;
        }
        free(ids[i]);
    }
    free(ids);
    if (n > 0)
        log_info("destination %s is up again: %zu waiting recipients woken", key, woken);
}

/* D8: the end of a remote job tells whether its destination is alive. */
static void judge_destination(struct dispatch *d, const struct job *j)
{
    struct retry_policy p = policy(d->r);
    if (j->reached > 0)
        wake_waiters(d, j->dest);
    else if (j->conn_failed == j->n &&
             dest_failed(d->dests, j->dest, j->last_reply, (int64_t)time(NULL), &p))
        log_info("destination %s deferred as a whole until its back-off ends or a delivery "
                 "there succeeds (D8): %s",
                 j->dest, j->last_reply ? j->last_reply : "");
}

static void send_group(struct dispatch *d, struct inflight *f, const struct queue_msg_fd *mf,
                       const struct group *g, int64_t now)
{
    if (g->local && !d->lch) {
        for (size_t i = 0; i < g->n; i++) {
            struct unit u = {g->mb[i].k, g->mb[i].x, g->mb[i].addr};
            defer_unit(d, f, &u, now, LOCAL_GONE);
        }
        return;
    }
    if (!g->local) {
        int64_t wake = 0;
        const char *why = NULL;
        if (dest_admit(d->dests, g->key, now, &wake, &why) == DEST_WAIT) {
            suspend_group(d, f, g, now, wake, why);
            return;
        }
    }
    for (size_t from = 0; from < g->n; from += RP_RCPT_MAX) {
        size_t left = g->n - from;
        uint32_t n = (uint32_t)(left < RP_RCPT_MAX ? left : RP_RCPT_MAX);
        if (g->local)
            queue_local_job(d, f, mf, g, from, n);
        else
            send_remote_job(d, f, mf, g, from, n);
    }
}

/* ------------------------------------------------------------ routing ---- */

static void record_route_text(struct dispatch *d, struct inflight *f, uint32_t k, const char *text)
{
    const char *old = f->m->rcpt[k].route;
    if (!old || strcmp(old, text) != 0)
        note(f, state_set_route(d->r->s, f->id, k, text), "route");
}

static void hops_key(const struct route_result *rr, struct buf *key)
{
    for (size_t i = 0; i < rr->nhops && i < RP_HOPS_MAX; i++) {
        if (i > 0)
            buf_addc(key, ',');
        nexthop_format(&rr->hops[i], key);
    }
}

/* The route as `onehop queue show` displays it. */
static void describe(struct dispatch *d, const struct route_result *rr, struct buf *text)
{
    route_result_describe(&d->r->routing, rr, text);
    if (rr->action == ROUTE_REMOTE && rr->nhops > 0) {
        buf_adds(text, " -> ");
        hops_key(rr, text);
    }
}

static void reason_of(const struct route_result *rr, struct buf *why)
{
    buf_printf(why, "%s %s", rr->status ? rr->status : "", rr->reason ? rr->reason : "");
}

/* The decision to apply: the result, or, by SPEC 5 rule 5, the site path
 * when the last direct attempt failed temporarily at every MX host
 * (RP_FLAG_ALL_MX_TEMP; the hub is a fallback, never a single point of
 * failure): *fallback is then filled and *fell_back set. */
static const struct route_result *pick_route(struct dispatch *d, struct inflight *f, uint32_t k,
                                             const struct route_result *rr,
                                             struct route_result *fallback, int *fell_back)
{
    if (rr->rule == RULE_SITE_DIRECT && f->m->rcpt[k].state == SRCPT_DEFERRED &&
        memo_all_mx_temp(d->memo, f->id, k) &&
        routing_site_fallback(&d->r->routing, rr, fallback) == 0) {
        memo_set_all_mx_temp(d->memo, f->id, k, 0); /* the next attempt: direct again */
        *fell_back = 1;
        return fallback;
    }
    return rr;
}

/* The origin of a local target (local_proto.h): the aliases file's
 * commands and files run with the aliases' rights. */
static uint32_t origin_of(const struct route_result *rr)
{
    return rr->rule == RULE_ALIAS_COMMAND || rr->rule == RULE_ALIAS_FILE ? LP_FROM_ALIASES
                                                                         : LP_FROM_ADDRESS;
}

/* One final recipient of envelope recipient k (x: one target of its
 * expanded alias): grouped, or its outcome decided here. */
static void route_final(struct dispatch *d, struct inflight *f, uint32_t k, struct expansion *x,
                        const struct route_result *rr, int64_t now, struct groups *gs)
{
    struct buf key = BUF_INIT, why = BUF_INIT;
    struct unit u = {k, x, rr->recipient};
    if (rr->action == ROUTE_REMOTE && rr->nhops > 0) {
        hops_key(rr, &key);
        group_add(gs, key.s, 0, k, x, rr->recipient, 0);
    } else if (rr->action == ROUTE_LOCAL) {
        group_add(gs, LOCAL_KEY, 1, k, x, rr->recipient, origin_of(rr));
    } else if (rr->action == ROUTE_BOUNCE) {
        reason_of(rr, &why);
        bounce_later(f, k, x, rr->recipient, why.s, NULL, 1);
    } else {
        reason_of(rr, &why);
        defer_unit(d, f, &u, now, why.s);
    }
    buf_free(&key);
    buf_free(&why);
}

/* An alias expanded to several: each target not done yet is routed; the
 * route recorded names them all (cut at ROUTE_TEXT_MAX). */
static void route_expanded(struct dispatch *d, struct inflight *f, uint32_t k,
                           const struct route_results *res, int64_t now, struct groups *gs)
{
    struct expansion *x = expansion_new(f, k, (uint32_t)res->n);
    struct buf text = BUF_INIT;
    buf_printf(&text, "alias expanded to %zu:", res->n);
    for (size_t i = 0; i < res->n; i++) {
        const struct route_result *rr = &res->v[i];
        if (text.len < ROUTE_TEXT_MAX) {
            buf_printf(&text, " %s%s (", i ? "; " : "", rr->recipient);
            describe(d, rr, &text);
            buf_addc(&text, ')');
        }
        enum memo_outcome done = memo_target(d->memo, f->id, k, rr->recipient);
        if (done == MEMO_DELIVERED)
            x->nok++;
        else if (done == MEMO_BOUNCED)
            x->nbounced++;
        else
            route_final(d, f, k, x, rr, now, gs);
    }
    record_route_text(d, f, k, buf_cstr(&text));
    buf_free(&text);
}

/* One due recipient: its routing decision, recorded or grouped. */
static void route_rcpt(struct dispatch *d, struct inflight *f, uint32_t k, int64_t now,
                       struct groups *gs)
{
    struct route_results res = ROUTE_RESULTS_INIT;
    struct route_result fallback;
    int fell_back = 0;
    routing_resolve(&d->r->routing, rcpt_addr(f, k), &res);
    if (res.n > 1) {
        route_expanded(d, f, k, &res, now, gs);
    } else {
        const struct route_result *rr = pick_route(d, f, k, &res.v[0], &fallback, &fell_back);
        struct buf text = BUF_INIT;
        describe(d, rr, &text);
        record_route_text(d, f, k, text.s);
        buf_free(&text);
        route_final(d, f, k, NULL, rr, now, gs);
    }
    if (fell_back)
        route_result_free(&fallback);
    route_results_free(&res);
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

static void close_file(struct dispatch *d)
{
    if (d->file_open)
        queue_msg_fd_close(&d->file);
    d->file_open = 0;
}

/* Message id, verified: in the file open already (its envelope parsed
 * once for all its messages), or its file opened. */
static const struct queue_msg_fd *open_message(struct dispatch *d, const char *id, const char **why)
{
    if (d->file_open && memcmp(d->file.file.fid, id, QUEUE_FILE_ID_LEN) == 0) {
        if (queue_msg_select(&d->file, id, why) == 0)
            return &d->file;
        if (errno != ENOENT)
            return NULL; /* its content is corrupt, or unreadable */
    }
    close_file(d);
    if (queue_msg_open(d->r->q, id, &d->file, why) != 0)
        return NULL;
    d->file_open = 1;
    return &d->file;
}

static void dispatch_message(struct dispatch *d, const struct state_msg *m, int64_t now)
{
    struct inflight *f = xcalloc(1, sizeof(*f));
    const char *why = NULL;
    state_msg_id(m, f->id);
    f->m = m;
    f->arrival = (int64_t)(m->arrival_us / 1000000);
    const struct queue_msg_fd *mf = open_message(d, f->id, &why);
    if (!mf) {
        defer_unreadable(d, f, now, why);
        settle_later(d, f);
        return;
    }
    copy_addresses(f, mf);
    rmetrics_dispatch(m, &mf->file.msg[mf->index]);
    struct retry_policy p = policy(d->r);
    struct groups gs = {NULL, 0, 0};
    int loop = loops(mf);
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
    /* a send may find the local gone and end this message's jobs at once
     * (on_local_close): it is settled here, once every group is sent */
    f->dispatching = 1;
    for (size_t i = 0; i < gs.n; i++)
        send_group(d, f, mf, &gs.v[i], now);
    f->dispatching = 0;
    groups_free(&gs);
    if (f->jobs == 0)
        settle_later(d, f);
}

int dispatch_due(struct dispatch *d, int64_t now, int64_t *next_wakeup)
{
    const struct state_msg *m;
    int did = 0;
    *next_wakeup = 0;
    while (d->ch && d->nremote < d->r->conf.remote_concurrency &&
           d->nwaiting < d->r->conf.local_concurrency) {
        if (!state_next_due(d->r->s, now, &m, next_wakeup)) {
            close_file(d);
            return did;
        }
        dispatch_message(d, m, now);
        did = 1;
    }
    close_file(d);
    *next_wakeup = 0; /* full: a job's DONE makes room and pumps again */
    return did;
}

unsigned dispatch_in_flight(const struct dispatch *d)
{
    return d ? d->nremote + d->nlocal + d->nwaiting : 0;
}

/* ------------------------------------------------------------ results ---- */

static struct job *job_find(struct dispatch *d, uint64_t id, int local, struct job ***link)
{
    for (struct job **p = &d->jobs; *p; p = &(*p)->next)
        if ((*p)->id == id && (*p)->local == local) {
            if (link)
                *link = p;
            return *p;
        }
    return NULL;
}

/* D8: a result that never reached a server has no relay. */
static int reached_server(const struct rp_result *res)
{
    return res->cls == RP_OK || (res->relay[0] && strcmp(res->relay, "none") != 0);
}

/* The outcome of one target of an expanded alias (memo.h). */
static void record_target_result(struct dispatch *d, struct inflight *f, const struct unit *u,
                                 const struct rp_result *res, int64_t now)
{
    struct retry_policy p = policy(d->r);
    if (res->cls == RP_OK) {
        memo_set_target(d->memo, f->id, u->k, u->target, MEMO_DELIVERED);
        u->x->nok++;
    } else if (res->cls == RP_PERM) {
        bounce_later(f, u->k, u->x, u->target, res->reply, res->relay, 0);
    } else if (retry_expired(&p, now, f->arrival)) {
        struct buf why = BUF_INIT;
        expired_reason(d, res->reply, &why);
        bounce_later(f, u->k, u->x, u->target, why.s, NULL, 1);
        buf_free(&why);
    } else {
        target_temp(u->x, res->reply);
    }
}

/* Remote and local results alike: the same outcome path. */
static void record_result(struct dispatch *d, struct job *j, const struct unit *u,
                          const struct rp_result *res, int64_t now)
{
    struct inflight *f = j->msg;
    struct retry_policy p = policy(d->r);
    if (reached_server(res))
        j->reached++;
    else if (res->cls == RP_TEMP)
        j->conn_failed++;
    free(j->last_reply);
    j->last_reply = xstrdup(res->reply);
    if (u->x) {
        record_target_result(d, f, u, res, now);
        return;
    }
    memo_set_all_mx_temp(d->memo, f->id, u->k,
                         res->cls == RP_TEMP && (res->flags & RP_FLAG_ALL_MX_TEMP));
    if (res->cls == RP_OK)
        note(f, state_delivered(d->r->s, f->id, u->k, now, res->reply), "delivery");
    else if (res->cls == RP_PERM)
        bounce_later(f, u->k, NULL, NULL, res->reply, res->relay, 0);
    else if (retry_expired(&p, now, f->arrival))
        bounce_expired(d, f, u->k, res->reply);
    else
        record_deferred(d, f, u->k, now, res->reply);
}

static const char *on_result(struct dispatch *d, struct chan_record *rec, int local)
{
    struct rp_result res;
    const char *why;
    if (rp_get_result(rec->data, rec->len, &res, &d->text, &why) < 0)
        return why;
    struct job *j = job_find(d, res.job, local, NULL);
    if (!j)
        return "a result for no job in flight";
    if (res.index >= j->n || j->answered[res.index])
        return "a result for no recipient of its job, or a second one";
    j->answered[res.index] = 1;
    rmetrics_result(local, &res);
    record_result(d, j, &j->u[res.index], &res, (int64_t)time(NULL));
    return NULL;
}

/* A job is over: unanswered recipients deferred (never lost), its slot
 * freed, its message settled once its last job is. */
static void job_end(struct dispatch *d, struct job *j, const char *unanswered)
{
    struct inflight *f = j->msg;
    int64_t now = (int64_t)time(NULL);
    for (uint32_t i = 0; i < j->n; i++)
        if (!j->answered[i])
            defer_unit(d, f, &j->u[i], now, unanswered);
    if (j->local)
        d->nlocal--;
    else
        d->nremote--;
    job_free(j);
    if (--f->jobs == 0 && !f->dispatching)
        settle_later(d, f);
}

static const char *on_done(struct dispatch *d, struct chan_record *rec, int local)
{
    uint64_t id;
    uint32_t nresults;
    const char *why;
    struct job **link;
    if (rp_get_done(rec->data, rec->len, &id, &nresults, &why) < 0)
        return why;
    struct job *j = job_find(d, id, local, &link);
    if (!j)
        return "a job done that is not in flight";
    *link = j->next;
    if (!local)
        judge_destination(d, j);
    /* remote_proto.h forbids a recipient without a result; never lose it */
    job_end(d, j, "4.3.0 no result from the delivery agent");
    if (local)
        send_waiting_local(d);
    return NULL;
}

static const char *on_record_of(struct dispatch *d, struct chan_record *rec, int local)
{
    switch (rp_record_type(rec->data, rec->len)) {
    case RP_RESULT:
        return on_result(d, rec, local);
    case RP_DONE:
        return on_done(d, rec, local);
    default:
        return local ? "unexpected record from the local daemon"
                     : "unexpected record from the remote daemon";
    }
}

static const char *on_remote_record(void *arg, struct channel *ch, struct chan_record *rec)
{
    (void)ch;
    return on_record_of(arg, rec, 0);
}

static const char *on_local_record(void *arg, struct channel *ch, struct chan_record *rec)
{
    (void)ch;
    return on_record_of(arg, rec, 1);
}

/* Jobs in flight stay in flight: their messages are due again after the
 * restart the master does (its channel's peers), at least once. */
static void on_remote_close(void *arg, struct channel *ch, const char *reason)
{
    struct dispatch *d = arg;
    (void)ch;
    d->ch = NULL;
    log_warn("remote channel closed (%s) with %u jobs in flight", reason, d->nremote);
    router_channel_lost(d->r, "the remote's channel closed");
}

/* The local's jobs in flight or waiting are deferred at once (their
 * deliveries may have happened: at least once); local recipients are
 * deferred until the channel is back (the master restarts both). */
static void on_local_close(void *arg, struct channel *ch, const char *reason)
{
    struct dispatch *d = arg;
    (void)ch;
    d->lch = NULL;
    log_warn("local channel closed (%s) with %u jobs in flight, %u waiting", reason, d->nlocal,
             d->nwaiting);
    for (struct job **p = &d->jobs; *p;) {
        struct job *j = *p;
        if (!j->local) {
            p = &j->next;
            continue;
        }
        *p = j->next;
        job_end(d, j, LOCAL_GONE);
    }
    while (d->waiting) {
        struct job *j = d->waiting;
        d->waiting = j->next;
        d->nwaiting--;
        d->nlocal++; /* job_end counts it out */
        job_end(d, j, LOCAL_GONE);
    }
    d->waiting_tail = &d->waiting;
}

/* The local's channel, when the master made one (its LOCAL row). */
static void open_local(struct dispatch *d)
{
    static const struct channel_ops ops = {on_local_record, NULL, on_local_close};
    struct channel_opts opts = {"local", LP_RECORD_MAX, 0, 1024 * 1024, 0, 0};
    if (!getenv(LP_CHANNEL_ENV)) {
        log_warn("%s is not set: local recipients are deferred (%s)", LP_CHANNEL_ENV, LOCAL_GONE);
        return;
    }
    d->lch = router_channel(d->r, LP_CHANNEL_ENV, &opts, &ops, d);
}

struct dispatch *dispatch_open(struct router *r)
{
    static const struct channel_ops ops = {on_remote_record, NULL, on_remote_close};
    struct channel_opts opts = {"remote", RP_RECORD_MAX, 0, 1024 * 1024, 0, 0};
    struct dispatch *d = xcalloc(1, sizeof(*d));
    d->r = r;
    d->waiting_tail = &d->waiting;
    d->memo = memo_new();
    d->dests = dest_new();
    d->ch = router_channel(r, RP_CHANNEL_ENV, &opts, &ops, d);
    open_local(d);
    return d;
}

static void drop_job(struct job *j)
{
    if (--j->msg->jobs == 0)
        inflight_free(j->msg);
    job_free(j);
}

void dispatch_forget_dead(struct dispatch *d)
{
    size_t n = dest_dead_count(d->dests);
    dest_free(d->dests);
    d->dests = dest_new();
    if (n > 0)
        log_info("flush: %zu dead destination%s tried again now (D8)", n, n == 1 ? "" : "s");
}

struct destinations *dispatch_destinations(struct dispatch *d)
{
    return d->dests;
}

void dispatch_close(struct dispatch *d)
{
    if (!d)
        return;
    channel_close(d->ch);
    channel_close(d->lch);
    while (d->jobs) {
        struct job *j = d->jobs;
        d->jobs = j->next;
        drop_job(j);
    }
    while (d->waiting) {
        struct job *j = d->waiting;
        d->waiting = j->next;
        drop_job(j);
    }
    struct inflight *f = d->settling;
    while (f) {
        struct inflight *next = f->next;
        inflight_free(f);
        f = next;
    }
    memo_free(d->memo);
    dest_free(d->dests);
    buf_free(&d->text);
    close_file(d);
    free(d);
}
