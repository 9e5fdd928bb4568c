/*
 * delivery — one job from its first next hop to its results. See
 * delivery.h.
 */
#include "remote/delivery.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "netaddr.h"
#include "nexthop.h"
#include "remote/session.h"
#include "remote/smtp_wire.h"
#include "remote/xmetrics.h"

#define SCAN_CHUNK (64 * 1024)

static uint64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* The content's size on the wire (SIZE, RFC 1870) and whether it has
 * 8-bit bytes: one pass over it. A content of at most DELIVERY_HOLD_MAX
 * bytes is read into d->held and kept, so that the session sends it
 * without reading it again. 0, or -1 with errno. */
static int scan_content(struct delivery *d)
{
    if (d->job.length <= DELIVERY_HOLD_MAX) {
        buf_reserve(&d->held, (size_t)d->job.length + 1);
        d->held_ok = 1;
    }
    char *chunk = d->held_ok ? d->held.s : xmalloc(SCAN_CHUNK);
    uint64_t done = 0;
    struct smtp_scan sc;
    smtp_scan_init(&sc);
    d->wire_size = 0;
    while (done < d->job.length) {
        size_t want = d->job.length - done > SCAN_CHUNK ? SCAN_CHUNK : d->job.length - done;
        ssize_t got =
            pread(d->fd, chunk + (d->held_ok ? done : 0), want, (off_t)(d->job.offset + done));
        if (got <= 0) {
            if (got == 0)
                errno = EIO;
            if (!d->held_ok)
                free(chunk);
            return -1;
        }
        d->wire_size += smtp_wire_size(chunk + (d->held_ok ? done : 0), (size_t)got, &sc);
        done += (uint64_t)got;
    }
    if (d->held_ok)
        d->held.len = (size_t)done;
    else
        free(chunk);
    d->utf8_header = sc.header_8bit;
    return 0;
}

struct delivery *delivery_new(struct remote_env *env, struct rp_job *j, int fd,
                              delivery_done_cb *done, void *arg, const char **why)
{
    struct delivery *d = xcalloc(1, sizeof(*d));
    d->env = env;
    d->fd = fd;
    d->job = *j;
    d->started_us = now_us();
    if (scan_content(d) < 0) {
        *why = strerror(errno);
        close(fd);
        buf_free(&d->held);
        free(d);
        return NULL;
    }
    memset(j, 0, sizeof(*j));
    d->rcpt = xcalloc(d->job.nrcpt, sizeof(*d->rcpt));
    for (size_t i = 0; i < d->job.nrcpt; i++) {
        d->rcpt[i].cls = RP_TEMP;
        d->rcpt[i].utf8 = smtp_text_is_utf8(d->job.rcpt[i].address);
    }
    d->utf8_sender = smtp_text_is_utf8(d->job.sender);
    d->open = d->job.nrcpt;
    d->done = done;
    d->arg = arg;
    d->dest = xstrdup(d->job.hops[0]);
    return d;
}

void delivery_settle(struct delivery *d, size_t i, enum rp_class cls, const char *reply,
                     const char *relay)
{
    struct rcpt_state *r = &d->rcpt[i];
    if (r->settled)
        return;
    r->settled = 1;
    r->cls = cls;
    if (cls == RP_OK)
        d->delivered = 1;
    buf_sets(&r->reply, reply);
    buf_sets(&r->relay, relay);
    d->open--;
}

void delivery_note(struct delivery *d, size_t i, enum rp_class last_resort, const char *reply,
                   const char *relay)
{
    struct rcpt_state *r = &d->rcpt[i];
    if (r->settled)
        return;
    r->cls = last_resort;
    buf_sets(&r->reply, reply);
    buf_sets(&r->relay, relay);
}

static void note_open(struct delivery *d, enum rp_class cls, const char *reason)
{
    for (size_t i = 0; i < d->job.nrcpt; i++)
        delivery_note(d, i, cls, reason, "");
}

static const char *status_word(enum rp_class c)
{
    return c == RP_OK ? "sent" : c == RP_PERM ? "bounced" : "deferred";
}

static uint64_t delay_us(const struct delivery *d)
{
    uint64_t from = d->job.arrival_us ? d->job.arrival_us : d->started_us, now = now_us();
    return now > from ? now - from : 0;
}

/* Every recipient has its result: the last outcome of an open one stands
 * (D4: temporary unless that outcome was permanent). SPEC 8 log lines. */
static void finish(struct delivery *d)
{
    uint64_t delay = delay_us(d);
    for (size_t i = 0; i < d->job.nrcpt; i++) {
        struct rcpt_state *r = &d->rcpt[i];
        if (!r->settled) {
            if (r->reply.len == 0)
                buf_sets(&r->reply, "no address was tried");
            r->settled = 1;
        }
        struct buf reuse = BUF_INIT;
        if (r->conn_use > 1) /* as Postfix logs a reused connection */
            buf_printf(&reuse, ", conn_use=%u", r->conn_use);
        log_info("%s: to=<%s>, relay=%s%s, delay=%.2f, status=%s (%s)", d->job.queue_id,
                 d->job.rcpt[i].address, r->relay.len ? r->relay.s : "none", buf_cstr(&reuse),
                 (double)delay / 1e6, status_word(r->cls), r->reply.s);
        buf_free(&reuse);
    }
    d->open = 0;
    xmetrics_attempt_done(d->dest, (double)(now_us() - d->started_us) / 1e6);
    d->done(d->arg, d);
}

static void next_hop(struct delivery *d);

/* The addresses of the current hop ran out (or smtp_max_addresses cut
 * them): an `mx DOMAIN` hop that had addresses failed for every recipient
 * still open, at each MX host it could try (RP_FLAG_ALL_MX_TEMP, see
 * delivery.h). */
static void hop_exhausted(struct delivery *d)
{
    if (!d->hop_is_mx || d->next_target == 0)
        return;
    for (size_t i = 0; i < d->job.nrcpt; i++)
        if (!d->rcpt[i].settled)
            d->rcpt[i].all_mx_temp = 1;
}

static void next_target(struct delivery *d)
{
    if (d->aborted) {
        d->done(d->arg, d);
        return;
    }
    if (d->open == 0) {
        finish(d);
        return;
    }
    if (d->retry_clear) { /* the same address once more, not counted again */
        d->retry_clear = 0;
        d->clear_text = 1;
        d->session = session_start(d, &d->targets[d->next_target - 1]);
        return;
    }
    d->clear_text = 0;
    if (d->next_target < d->ntargets && d->tried < d->env->conf->smtp_max_addresses) {
        d->tried++;
        d->session = session_start(d, &d->targets[d->next_target++]);
        return;
    }
    hop_exhausted(d);
    next_hop(d);
}

void delivery_session_ended(struct delivery *d)
{
    d->session = NULL;
    next_target(d);
}

static void use_targets(struct delivery *d, struct mx_target *t, size_t n)
{
    mx_targets_free(d->targets, d->ntargets);
    d->targets = t;
    d->ntargets = n;
    d->next_target = 0;
    next_target(d);
}

static void loops_back(struct delivery *d, const char *host)
{
    struct buf why = BUF_INIT;
    buf_printf(&why, "mail for %s loops back to myself", host);
    note_open(d, RP_TEMP, why.s); /* D5: deferred, never delivered to itself */
    buf_free(&why);
}

/* A DNS answer that gives no address: the D4 class of the failure. */
static void dns_failed(struct delivery *d, const struct dnsp_answer *a, const char *type)
{
    struct buf why = BUF_INIT;
    enum rp_class cls = RP_TEMP;
    switch (a->status) {
    case DNS_STATUS_NXDOMAIN: /* D4 (b): the domain, or every MX host, does not exist */
        buf_printf(&why,
                   "Host or domain name not found. Name service error for name=%s "
                   "type=%s: Host not found",
                   a->name, type);
        cls = RP_PERM;
        break;
    case DNS_STATUS_NULLMX: /* RFC 7505 3: a null MX accepts no mail */
        buf_printf(&why, "5.1.10 domain %s does not accept mail (null MX)", a->name);
        cls = RP_PERM;
        break;
    case DNS_STATUS_NODATA:
        buf_printf(&why, "no MX host or address for %s", a->name);
        break;
    default: /* SERVFAIL, timeouts, a cache not running: retry later */
        buf_printf(&why,
                   "Host or domain name not found. Name service error for name=%s "
                   "type=%s: Host not found, try again (%s)",
                   a->name, type, a->reason && a->reason[0] ? a->reason : "temporary failure");
        break;
    }
    note_open(d, cls, why.s);
    buf_free(&why);
}

static void on_answer(void *arg, const struct dnsp_answer *a)
{
    struct delivery *d = arg;
    d->dreq = NULL;
    if (d->aborted) {
        d->done(d->arg, d);
        return;
    }
    const char *type = a->qtype == DNSP_QTYPE_ROUTE ? "MX" : "A";
    if (a->status != DNS_STATUS_OK) {
        dns_failed(d, a, type);
        next_hop(d);
        return;
    }
    struct mx_target *t;
    size_t n;
    size_t left = d->env->conf->smtp_max_addresses - d->tried;
    int rc = mx_order(a, d->port, &d->env->self, left, &d->env->rng, &t, &n);
    if (rc == MX_LOOP) {
        loops_back(d, a->name);
        next_hop(d);
        return;
    }
    if (n == 0) {
        struct buf why = BUF_INIT;
        buf_printf(&why, "no address for %s", a->name);
        note_open(d, RP_TEMP, why.s);
        buf_free(&why);
    }
    use_targets(d, t, n);
}

/* [ip]:port: the address itself, no DNS (D5 still applies). */
static void literal_target(struct delivery *d, const struct nexthop *nh)
{
    struct mx_target *t = xcalloc(1, sizeof(*t));
    t->family = ip_literal(nh->host, t->addr);
    t->port = d->port;
    t->host = xstrdup(nh->host);
    if (mx_self_listens(&d->env->self, t->family, t->addr, t->port)) {
        mx_targets_free(t, 1);
        loops_back(d, nh->host);
        next_hop(d);
        return;
    }
    use_targets(d, t, 1);
}

static void next_hop(struct delivery *d)
{
    if (d->open == 0 || d->hop == d->job.nhops || d->tried >= d->env->conf->smtp_max_addresses) {
        finish(d);
        return;
    }
    struct nexthop nh;
    const char *why;
    if (nexthop_parse(d->job.hops[d->hop++], NEXTHOP_NO_LOCAL | NEXTHOP_NO_ERROR, &nh, &why) < 0) {
        note_open(d, RP_TEMP, why); /* the router checked it: cannot happen */
        next_hop(d);
        return;
    }
    d->port = nh.port ? nh.port : (uint16_t)d->env->conf->remote_port;
    d->hop_is_mx = nh.kind == NEXTHOP_MX;
    mx_targets_free(d->targets, d->ntargets); /* the last hop's, already used */
    d->targets = NULL;
    d->ntargets = d->next_target = 0;
    if (nh.kind == NEXTHOP_HOST && nh.is_ip)
        literal_target(d, &nh);
    else /* D2: asked afresh for every delivery; the cache applies the TTLs */
        d->dreq = dnsclient_lookup(d->env->dns,
                                   nh.kind == NEXTHOP_MX ? DNSP_QTYPE_ROUTE : DNSP_QTYPE_ADDR,
                                   nh.host, on_answer, d);
    nexthop_free(&nh);
}

void delivery_start(struct delivery *d)
{
    next_hop(d);
}

void delivery_abort(struct delivery *d)
{
    d->aborted = 1;
    if (d->session)
        session_abort(d->session); /* ends through delivery_session_ended */
    else if (d->dreq) {
        dnsclient_cancel(d->dreq);
        d->dreq = NULL;
        d->done(d->arg, d);
    } else
        d->done(d->arg, d);
}

void delivery_results(struct delivery *d, struct buf *records)
{
    uint64_t delay_ms = delay_us(d) / 1000;
    for (size_t i = 0; i < d->job.nrcpt; i++) {
        const struct rcpt_state *r = &d->rcpt[i];
        struct rp_result res = {d->job.job,
                                (uint32_t)i,
                                r->cls,
                                r->reply.s ? r->reply.s : "",
                                r->relay.len ? r->relay.s : "none",
                                r->tls.len ? r->tls.s : "none",
                                delay_ms,
                                r->cls == RP_TEMP && r->all_mx_temp ? RP_FLAG_ALL_MX_TEMP : 0};
        rp_put_result(records, &res);
    }
    rp_put_done(records, d->job.job, (uint32_t)d->job.nrcpt);
}

void delivery_free(struct delivery *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->job.nrcpt; i++) {
        buf_free(&d->rcpt[i].reply);
        buf_free(&d->rcpt[i].relay);
        buf_free(&d->rcpt[i].tls);
    }
    free(d->rcpt);
    mx_targets_free(d->targets, d->ntargets);
    if (d->fd >= 0)
        close(d->fd);
    free(d->dest);
    buf_free(&d->held);
    rp_job_free(&d->job);
    free(d);
}
