/*
 * lookup — cache policy, coalescing and the ROUTE view. See lookup.h.
 *
 * Queries in flight are kept in a table keyed like the cache (SipHash with a
 * secret key), each with the list of requests waiting for it. A finished
 * query leaves the table before its waiters are called, so a waiter that
 * asks again starts afresh.
 *
 * Each lookup has a deadline, dns_lookup_timeout after it began, whatever
 * c-ares does meanwhile (its tries, servers and doubling timeouts, and our
 * CNAME follow-ups): the lookups are kept in deadline order and one timer
 * waits for the first. c-ares cannot cancel one query, so a lookup that
 * gives up leaves its query behind; the answer, when it comes, finds no one
 * (struct ask) and is dropped.
 */
#include "dnscache/lookup.h"

#include <arpa/inet.h>
#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

struct waiter {
    struct waiter *next;
    lookup_cb cb;
    void *arg;
    int coalesced;
};

struct pending;

/* One upstream query of a lookup; p is NULL once the lookup gave up. */
struct ask {
    struct pending *p;
};

struct pending {
    struct pending *hash_next;
    struct pending *due_prev, *due_next; /* in deadline order */
    struct lookup *l;
    struct ask *ask;     /* the upstream query in flight */
    int64_t deadline_ms; /* the lookup ends as a timeout then */
    uint64_t timeout_s;  /* dns_lookup_timeout when it began */
    uint32_t hash;
    uint16_t qtype;
    unsigned cnames;    /* CNAME links followed in earlier answers */
    uint32_t chain_ttl; /* smallest TTL along them */
    char *current;      /* the name asked now */
    struct waiter *first, **last;
    char name[];
};

struct lookup {
    uv_loop_t *loop;
    struct upstream *up;
    struct dns_cache *cache;
    struct lookup_limits lim;
    struct dnscache_stats stats;
    struct pending **buckets;
    size_t nbuckets, npending;
    struct pending *due_first, *due_last; /* by deadline */
    uv_timer_t deadline;                  /* at due_first's deadline */
    uv_idle_t wake;                       /* see wake_loop() */
    int wake_armed;
    uint8_t key[SIPHASH_KEY_SIZE];
    int shutting_down;
};

/* ---------------------------------------------------- pending queries ---- */

static uint32_t pending_hash(const struct lookup *l, uint16_t qtype, const char *name)
{
    uint8_t k[2 + DNSP_NAME_MAX];
    size_t n = strlen(name);
    if (n > DNSP_NAME_MAX)
        n = DNSP_NAME_MAX;
    k[0] = (uint8_t)(qtype >> 8);
    k[1] = (uint8_t)qtype;
    memcpy(k + 2, name, n);
    return (uint32_t)siphash24(l->key, k, n + 2);
}

static struct pending **pending_slot(struct lookup *l, uint16_t qtype, const char *name, uint32_t h)
{
    struct pending **pp = &l->buckets[h & (l->nbuckets - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->qtype == qtype && strcmp((*pp)->name, name) == 0))
        pp = &(*pp)->hash_next;
    return pp;
}

static void pending_grow(struct lookup *l)
{
    size_t n = l->nbuckets * 2;
    struct pending **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < l->nbuckets; i++) {
        struct pending *p = l->buckets[i], *next;
        for (; p; p = next) {
            next = p->hash_next;
            p->hash_next = b[p->hash & (n - 1)];
            b[p->hash & (n - 1)] = p;
        }
    }
    free(l->buckets);
    l->buckets = b;
    l->nbuckets = n;
}

static void due_insert(struct lookup *l, struct pending *p);

static struct pending *pending_new(struct lookup *l, uint16_t qtype, const char *name, uint32_t h)
{
    size_t n = strlen(name);
    struct pending *p = xcalloc(1, sizeof(*p) + n + 1);
    memcpy(p->name, name, n + 1);
    p->l = l;
    p->hash = h;
    p->qtype = qtype;
    p->chain_ttl = UINT32_MAX;
    p->current = xstrdup(name);
    p->last = &p->first;
    if (l->npending >= l->nbuckets)
        pending_grow(l);
    struct pending **head = &l->buckets[h & (l->nbuckets - 1)];
    p->hash_next = *head;
    *head = p;
    l->npending++;
    due_insert(l, p);
    return p;
}

static void pending_unlink(struct lookup *l, struct pending *p)
{
    struct pending **pp = &l->buckets[p->hash & (l->nbuckets - 1)];
    while (*pp != p)
        pp = &(*pp)->hash_next;
    *pp = p->hash_next;
    l->npending--;
}

static void add_waiter(struct pending *p, lookup_cb cb, void *arg, int coalesced)
{
    struct waiter *w = xcalloc(1, sizeof(*w));
    w->cb = cb;
    w->arg = arg;
    w->coalesced = coalesced;
    *p->last = w;
    p->last = &w->next;
}

/* ---------------------------------------------------------- deadlines ---- */

static int64_t now_ms(const struct lookup *l)
{
    return (int64_t)uv_now(l->loop);
}

static void on_deadline(uv_timer_t *t);

static void arm_deadline(struct lookup *l)
{
    if (l->shutting_down)
        return; /* the timer is closed */
    if (!l->due_first) {
        uv_timer_stop(&l->deadline);
        return;
    }
    int64_t wait = l->due_first->deadline_ms - now_ms(l);
    uv_timer_start(&l->deadline, on_deadline, wait > 0 ? (uint64_t)wait : 0, 0);
}

/* Behind every lookup due no later: at the end of the list, unless a reload
 * shortened dns_lookup_timeout. */
static void due_insert(struct lookup *l, struct pending *p)
{
    p->timeout_s = l->lim.lookup_timeout;
    p->deadline_ms = now_ms(l) + (int64_t)p->timeout_s * 1000;
    struct pending *before = l->due_last;
    while (before && before->deadline_ms > p->deadline_ms)
        before = before->due_prev;
    p->due_prev = before;
    p->due_next = before ? before->due_next : l->due_first;
    if (p->due_next)
        p->due_next->due_prev = p;
    else
        l->due_last = p;
    if (before)
        before->due_next = p;
    else
        l->due_first = p;
    if (l->due_first == p)
        arm_deadline(l);
}

static void due_remove(struct lookup *l, struct pending *p)
{
    int was_first = l->due_first == p;
    if (p->due_prev)
        p->due_prev->due_next = p->due_next;
    else
        l->due_first = p->due_next;
    if (p->due_next)
        p->due_next->due_prev = p->due_prev;
    else
        l->due_last = p->due_prev;
    if (was_first)
        arm_deadline(l);
}

/* --------------------------------------------------------- TTL policy ---- */

static uint32_t clamp_positive(const struct lookup *l, uint32_t ttl)
{
    uint64_t t = ttl;
    if (t < l->lim.min_ttl)
        t = l->lim.min_ttl;
    if (t > l->lim.max_ttl)
        t = l->lim.max_ttl;
    return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

/* The TTL the answer is kept for; 0: not cached. */
static uint32_t cache_ttl(struct lookup *l, const struct dns_result *r)
{
    switch (r->status) {
    case DNS_STATUS_OK:
    case DNS_STATUS_NULLMX:
        if (r->ttl == 0) { /* RFC 1035 3.2.1: this transaction only */
            l->stats.not_cached_ttl0++;
            return 0;
        }
        return clamp_positive(l, r->ttl);
    case DNS_STATUS_NODATA:
    case DNS_STATUS_NXDOMAIN: /* RFC 2308 5, capped by dns_negative_max_ttl */
        if (!r->cacheable)
            return 0;
        return r->ttl < l->lim.negative_max_ttl ? r->ttl : (uint32_t)l->lim.negative_max_ttl;
    default:
        return 0;
    }
}

static void count_outcome(struct lookup *l, const struct dns_result *r)
{
    switch (r->status) {
    case DNS_STATUS_OK:
        l->stats.answers_ok++;
        break;
    case DNS_STATUS_NODATA:
        l->stats.answers_nodata++;
        break;
    case DNS_STATUS_NXDOMAIN:
        l->stats.answers_nxdomain++;
        break;
    case DNS_STATUS_NULLMX:
        l->stats.answers_nullmx++;
        break;
    default:
        l->stats.failures[(unsigned)r->fail < DNS_FAIL_KINDS ? r->fail : DNS_FAIL_OTHER]++;
        break;
    }
}

/* ------------------------------------------------------------ answers ---- */

static int64_t stale_window_ms(const struct lookup *l)
{
    return l->lim.serve_stale ? (int64_t)l->lim.serve_stale_max * 1000 : 0;
}

static void view_from_entry(struct lookup_view *v, const struct dns_entry *e, int64_t now)
{
    v->qtype = e->qtype;
    v->name = dns_entry_name(e);
    v->canon = dns_entry_canon(e);
    v->status = (enum dns_status)e->status;
    v->reason = dns_status_reason(v->status);
    v->ttl = dns_entry_remaining(e, now);
    v->flags = DNSP_F_FROM_CACHE;
    v->data = dns_entry_data(e);
    v->data_len = e->data_len;
    v->count = e->count;
}

/* RFC 8767: after a failure, an expired answer still in the window. Only
 * a positive one: serve-stale exists to keep mail moving through an outage,
 * and a stale NXDOMAIN, NODATA or null MX would bounce it instead (SPEC D4:
 * an outage defers); those expire at their TTL (dns_negative_max_ttl at
 * most) whatever the window. The entry is copied into r, so later stores
 * cannot pull it from under us. */
static int take_stale(struct lookup *l, const struct pending *p, struct dns_result *r)
{
    int stale;
    if (!l->lim.serve_stale)
        return 0;
    const struct dns_entry *e =
        dns_cache_find(l->cache, p->qtype, p->name, now_ms(l), stale_window_ms(l), &stale);
    if (!e || e->status != DNS_STATUS_OK)
        return 0;
    r->status = (enum dns_status)e->status;
    r->count = e->count;
    buf_set(&r->data, dns_entry_data(e), e->data_len);
    buf_sets(&r->reason, dns_status_reason(r->status));
    snprintf(r->canon, sizeof(r->canon), "%s", dns_entry_canon(e));
    l->stats.stale_served++;
    return 1;
}

static void store(struct lookup *l, const struct pending *p, const struct dns_result *r,
                  uint32_t ttl)
{
    struct dns_cache_put put = {p->qtype, p->name,   r->canon,    r->status,
                                ttl,      r->data.s, r->data.len, r->count};
    dns_cache_store(l->cache, &put, now_ms(l));
}

/* Runs before the poll of each turn while active: it stays active through
 * the turn it was armed in (so that poll does not block) and stops at the
 * next. */
static void on_wake(uv_idle_t *h)
{
    struct lookup *l = h->data;
    if (l->wake_armed)
        l->wake_armed = 0;
    else
        uv_idle_stop(h);
}

/* A lookup may end inside a timer callback (its deadline, a c-ares
 * timeout), and the poll after the timers would block until the next event:
 * an active idle handle makes that poll return at once, so whoever sends
 * answers after the poll (the server's check handle) sends this one now. */
static void wake_loop(struct lookup *l)
{
    if (l->shutting_down)
        return;
    l->wake_armed = 1;
    uv_idle_start(&l->wake, on_wake);
}

static void call_waiters(struct pending *p, struct lookup_view *v)
{
    struct waiter *w = p->first, *next;
    uint32_t flags = v->flags;
    for (; w; w = next) {
        next = w->next;
        v->flags = flags | (w->coalesced ? DNSP_F_COALESCED : 0);
        w->cb(w->arg, v);
        free(w);
    }
}

static void complete(struct lookup *l, struct pending *p, struct dns_result *r)
{
    struct lookup_view v = {p->qtype, p->name, r->canon, r->status, NULL, 0, 0, NULL, 0, 0};
    count_outcome(l, r);
    if (r->status == DNS_STATUS_TEMPFAIL && take_stale(l, p, r)) {
        v.status = r->status;
        v.flags = DNSP_F_STALE;
        v.ttl = LOOKUP_STALE_TTL;
    } else {
        v.ttl = cache_ttl(l, r);
        if (v.ttl > 0)
            store(l, p, r, v.ttl);
    }
    v.reason = buf_cstr(&r->reason);
    v.data = r->data.s;
    v.data_len = r->data.len;
    v.count = r->count;
    pending_unlink(l, p);
    due_remove(l, p);
    wake_loop(l);
    call_waiters(p, &v);
    free(p->current);
    free(p);
}

/* c-ares status without an answer: the kind of temporary failure. */
static void fail_from_status(struct dns_result *r, int status)
{
    switch (status) {
    case ARES_ETIMEOUT:
        dns_result_fail(r, DNS_FAIL_TIMEOUT, "timeout: no answer from the upstream resolver");
        break;
    case ARES_ESERVFAIL:
        dns_result_fail(r, DNS_FAIL_SERVFAIL, "SERVFAIL from the upstream resolver");
        break;
    case ARES_EREFUSED:
        dns_result_fail(r, DNS_FAIL_REFUSED, "REFUSED by the upstream resolver");
        break;
    case ARES_EBADRESP:
        dns_result_fail(r, DNS_FAIL_MALFORMED, "malformed answer from the upstream resolver");
        break;
    case ARES_ECONNREFUSED: /* no resolver on that address and port: an outage, not rcode 5 */
        dns_result_fail(r, DNS_FAIL_OTHER, "upstream resolver unreachable: connection refused");
        break;
    default:
        dns_result_fail(r, DNS_FAIL_OTHER, "upstream: %s", ares_strerror(status));
        break;
    }
}

static void on_upstream(void *arg, int status, const unsigned char *abuf, int alen);

static void ask_upstream(struct lookup *l, struct pending *p)
{
    struct ask *a = xmalloc(sizeof(*a));
    a->p = p;
    p->ask = a;
    l->stats.upstream_queries++;
    upstream_query(l->up, p->current, p->qtype, on_upstream, a); /* may call back at once */
}

/* The chain ended on a name without data: ask that name, within the bound.
 * After DNS_CNAME_CHAIN_MAX links the last target is still asked (it may
 * hold the data), with no link left: a CNAME there is one too many. */
static int chase_cname(struct lookup *l, struct pending *p, struct dns_result *r)
{
    p->cnames += r->cnames;
    if (r->ttl < p->chain_ttl)
        p->chain_ttl = r->ttl;
    if (p->cnames > DNS_CNAME_CHAIN_MAX) { /* dns_answer spent no more than it was given */
        dns_result_fail(r, DNS_FAIL_CNAME, "CNAME chain longer than %d links", DNS_CNAME_CHAIN_MAX);
        return -1;
    }
    free(p->current);
    p->current = xstrdup(r->canon);
    l->stats.cname_followups++;
    ask_upstream(l, p);
    return 0;
}

static void on_upstream(void *arg, int status, const unsigned char *abuf, int alen)
{
    struct ask *a = arg;
    struct pending *p = a->p;
    free(a);
    if (!p)
        return; /* the lookup gave up at its deadline */
    p->ask = NULL;
    struct lookup *l = p->l;
    struct dns_result r;
    dns_result_init(&r);
    if (abuf && status != ARES_EDESTRUCTION)
        dns_result_from_answer(&r, abuf, (size_t)alen, p->current, p->qtype,
                               DNS_CNAME_CHAIN_MAX - p->cnames);
    else
        fail_from_status(&r, status);
    if (r.follow && !l->shutting_down && chase_cname(l, p, &r) == 0) {
        dns_result_free(&r);
        return;
    }
    if (r.ttl > p->chain_ttl)
        r.ttl = p->chain_ttl;
    complete(l, p, &r);
    dns_result_free(&r);
}

/* dns_lookup_timeout: the lookup ends as a temporary failure (or a stale
 * answer) now; its query's answer will find no one. */
static void give_up(struct lookup *l, struct pending *p)
{
    struct dns_result r;
    dns_result_init(&r);
    dns_result_fail(&r, DNS_FAIL_TIMEOUT, "timeout: no answer within dns_lookup_timeout (%llus)",
                    (unsigned long long)p->timeout_s);
    if (p->ask)
        p->ask->p = NULL;
    complete(l, p, &r);
    dns_result_free(&r);
}

static void on_deadline(uv_timer_t *t)
{
    struct lookup *l = t->data;
    int64_t now = now_ms(l);
    while (l->due_first && l->due_first->deadline_ms <= now)
        give_up(l, l->due_first);
    arm_deadline(l);
}

int lookup_cached(struct lookup *l, uint16_t qtype, const char *name, struct lookup_view *v)
{
    int stale = 0;
    int64_t now = now_ms(l);
    const struct dns_entry *e =
        dns_cache_find(l->cache, qtype, name, now, stale_window_ms(l), &stale);
    if (!e || stale)
        return 0;
    l->stats.hits++;
    view_from_entry(v, e, now);
    return 1;
}

void lookup_start(struct lookup *l, uint16_t qtype, const char *name, lookup_cb cb, void *arg)
{
    int stale = 0;
    int64_t now = now_ms(l);
    const struct dns_entry *e =
        dns_cache_find(l->cache, qtype, name, now, stale_window_ms(l), &stale);
    if (e && !stale) {
        struct lookup_view v;
        l->stats.hits++;
        view_from_entry(&v, e, now);
        cb(arg, &v);
        return;
    }
    l->stats.misses++;
    uint32_t h = pending_hash(l, qtype, name);
    struct pending **pp = pending_slot(l, qtype, name, h);
    if (*pp) {
        l->stats.coalesced++;
        add_waiter(*pp, cb, arg, 1);
        return;
    }
    struct pending *p = pending_new(l, qtype, name, h);
    add_waiter(p, cb, arg, 0);
    ask_upstream(l, p);
}

/* -------------------------------------------------------------- ROUTE ---- */

struct route_host {
    uint32_t pref;
    char *name;
    struct buf v4, v6;
    enum dns_status st4, st6;
    struct buf reason;
    uint32_t ttl;
};

enum { JOB_A = 1, JOB_AAAA = 2 };

struct route_part {
    struct route_job *job;
    size_t host;
    uint16_t qtype;
};

/* A ROUTE (the MX set, then each host's addresses), an ADDR (one host's
 * addresses) or an RDNS (the PTR names, then each one's addresses of the
 * client's family) being composed. */
struct route_job {
    struct lookup *l;
    uint32_t qtype;   /* DNSP_QTYPE_ROUTE, _ADDR or _RDNS */
    unsigned lookups; /* JOB_A | JOB_AAAA: the address lookups of each host */
    int family;       /* RDNS: 4 or 6, and the address asked about */
    unsigned char addr[16];
    route_cb cb;
    void *arg;
    char *domain, *canon;
    int canon_from_a; /* ADDR: canon is the A answer's */
    unsigned refs;    /* parts in flight, plus one while parts are being started */
    enum dns_status mx_status;
    char *mx_reason;
    uint32_t ttl, flags;
    struct route_host *hosts;
    struct route_part *parts;
    size_t nhosts;
};

static void job_add_ttl(struct route_job *job, uint32_t ttl, uint32_t flags)
{
    if (ttl < job->ttl)
        job->ttl = ttl;
    if (!(flags & DNSP_F_FROM_CACHE))
        job->flags &= ~(uint32_t)DNSP_F_FROM_CACHE;
    job->flags |= flags & DNSP_F_STALE;
}

/* A host is usable if it has an address; otherwise its worst failure. */
static enum dns_status host_status(const struct route_host *h)
{
    if (h->v4.len || h->v6.len)
        return DNS_STATUS_OK;
    if (h->st4 == DNS_STATUS_TEMPFAIL || h->st6 == DNS_STATUS_TEMPFAIL)
        return DNS_STATUS_TEMPFAIL;
    if (h->st4 == DNS_STATUS_NXDOMAIN || h->st6 == DNS_STATUS_NXDOMAIN)
        return DNS_STATUS_NXDOMAIN;
    return DNS_STATUS_NODATA;
}

/* SPEC D4 needs the detail per host; the overall class is a summary. */
static enum dns_status route_status(const struct dnsp_host *hosts, size_t n, const char **why)
{
    size_t nx = 0, temp = 0;
    for (size_t i = 0; i < n; i++) {
        if (hosts[i].status == DNS_STATUS_OK) {
            *why = "";
            return DNS_STATUS_OK;
        }
        nx += hosts[i].status == DNS_STATUS_NXDOMAIN;
        temp += hosts[i].status == DNS_STATUS_TEMPFAIL;
    }
    if (temp) {
        *why = "no address for any MX host; some lookups failed temporarily";
        return DNS_STATUS_TEMPFAIL;
    }
    if (n && nx == n) {
        *why = "every MX host: no such domain (NXDOMAIN)";
        return DNS_STATUS_NXDOMAIN;
    }
    *why = "no A or AAAA record for any MX host";
    return DNS_STATUS_NODATA;
}

/* RDNS: does host h have the job's address? */
static int host_has_address(const struct route_job *job, const struct dnsp_host *h)
{
    size_t size = job->family == 4 ? 4 : 16, n = job->family == 4 ? h->nv4 : h->nv6;
    const unsigned char *v = job->family == 4 ? h->v4 : h->v6;
    for (size_t i = 0; i < n; i++)
        if (memcmp(v + i * size, job->addr, size) == 0)
            return 1;
    return 0;
}

/* RDNS (dnsproto.h): forward-confirmed, as Postfix's reverse_client_name. */
static void rdns_verdict(struct route_job *job, const struct dnsp_host *hosts,
                         struct dnsp_answer *a, struct buf *why)
{
    if (job->mx_status != DNS_STATUS_OK) { /* the PTR answer's own */
        a->status = job->mx_status;
        buf_sets(why, job->mx_reason);
        return;
    }
    int temp = 0;
    for (size_t i = 0; i < job->nhosts; i++) {
        if (host_has_address(job, &hosts[i])) {
            a->status = DNS_STATUS_OK;
            a->canon = hosts[i].name;
            return;
        }
        temp += hosts[i].status == DNS_STATUS_TEMPFAIL;
    }
    char text[64];
    int af = job->family == 4 ? AF_INET : AF_INET6;
    if (!inet_ntop(af, job->addr, text, sizeof(text)))
        snprintf(text, sizeof(text), "?");
    a->status = temp ? DNS_STATUS_TEMPFAIL : DNS_STATUS_NODATA;
    if (job->nhosts == 0)
        buf_printf(why, "no usable PTR name for address %s", text);
    else if (temp)
        buf_printf(why, "forward lookup of %s failed: %s", hosts[0].name, hosts[0].reason);
    else
        buf_printf(why, "hostname %s does not resolve to address %s", hosts[0].name, text);
}

static void job_free(struct route_job *job)
{
    for (size_t i = 0; i < job->nhosts; i++) {
        free(job->hosts[i].name);
        buf_free(&job->hosts[i].v4);
        buf_free(&job->hosts[i].v6);
        buf_free(&job->hosts[i].reason);
    }
    free(job->hosts);
    free(job->parts);
    free(job->domain);
    free(job->canon);
    free(job->mx_reason);
    free(job);
}

static void job_finish(struct route_job *job)
{
    struct dnsp_host *hosts = xcalloc(job->nhosts ? job->nhosts : 1, sizeof(*hosts));
    struct dnsp_answer a = {
        0,        job->qtype, job->domain, job->canon, job->mx_status, job->mx_reason,
        job->ttl, job->flags, hosts,       job->nhosts};
    for (size_t i = 0; i < job->nhosts; i++) {
        struct route_host *h = &job->hosts[i];
        hosts[i] = (struct dnsp_host){h->pref,        h->name,
                                      host_status(h), (char *)buf_cstr(&h->reason),
                                      h->ttl,         (unsigned char *)h->v4.s,
                                      h->v4.len / 4,  (unsigned char *)h->v6.s,
                                      h->v6.len / 16};
        if (hosts[i].status == DNS_STATUS_OK)
            hosts[i].reason = "";
    }
    const char *why = job->mx_reason;
    struct buf text = BUF_INIT;
    if (job->qtype == DNSP_QTYPE_ADDR) { /* dnsproto.h: the host's class is the answer's */
        a.status = hosts[0].status;
        why = hosts[0].reason;
    } else if (job->qtype == DNSP_QTYPE_RDNS) {
        rdns_verdict(job, hosts, &a, &text);
        why = buf_cstr(&text);
    } else if (job->mx_status == DNS_STATUS_OK) {
        a.status = route_status(hosts, job->nhosts, &why);
    }
    a.reason = (char *)why;
    job->cb(job->arg, &a);
    free(hosts);
    buf_free(&text);
    job_free(job);
}

static void job_release(struct route_job *job)
{
    if (--job->refs == 0)
        job_finish(job);
}

static void on_route_address(void *arg, const struct lookup_view *v)
{
    struct route_part *part = arg;
    struct route_job *job = part->job;
    struct route_host *h = &job->hosts[part->host];
    int v4 = part->qtype == DNS_TYPE_A;
    if (v4)
        h->st4 = v->status;
    else
        h->st6 = v->status;
    if (v->status == DNS_STATUS_OK)
        buf_add(v4 ? &h->v4 : &h->v6, v->data, v->data_len);
    else if (v->reason && v->reason[0])
        buf_printf(&h->reason, "%s%s: %s", h->reason.len ? "; " : "", v4 ? "A" : "AAAA", v->reason);
    if (v->ttl < h->ttl)
        h->ttl = v->ttl;
    if (job->qtype == DNSP_QTYPE_ADDR && v->status == DNS_STATUS_OK && !job->canon_from_a) {
        free(job->canon); /* dnsproto.h: the A answer's, else the AAAA answer's */
        job->canon = xstrdup(v->canon);
        job->canon_from_a = v4;
    }
    job_add_ttl(job, v->ttl, v->flags);
    job_release(job);
}

static void add_route_host(struct route_job *job, uint32_t pref, const char *name, size_t n)
{
    struct route_host *h = &job->hosts[job->nhosts++];
    h->pref = pref;
    h->name = xstrndup(name, n);
    h->ttl = UINT32_MAX;
    h->st4 = h->st6 = DNS_STATUS_OK;
}

/* The MX set, or the implicit MX of RFC 5321 5.1 (no MX: the domain). */
static void collect_route_hosts(struct route_job *job, const struct lookup_view *v)
{
    size_t off = 0, n, room = v->count < DNSP_ROUTE_MAX_HOSTS ? v->count : DNSP_ROUTE_MAX_HOSTS;
    uint16_t pref;
    const char *name;
    if (v->status == DNS_STATUS_NODATA) {
        job->hosts = xcalloc(1, sizeof(*job->hosts));
        add_route_host(job, 0, job->domain, strlen(job->domain));
        job->flags |= DNSP_F_IMPLICIT_MX;
        return;
    }
    job->hosts = xcalloc(room ? room : 1, sizeof(*job->hosts));
    while (job->nhosts < room && dns_mx_next(v->data, v->data_len, &off, &pref, &name, &n))
        add_route_host(job, pref, name, n);
    if (v->count > DNSP_ROUTE_MAX_HOSTS)
        job->flags |= DNSP_F_HOSTS_CAPPED;
}

static void start_route_parts(struct route_job *job)
{
    job->parts = xcalloc(2 * job->nhosts + 1, sizeof(*job->parts));
    for (size_t i = 0; i < job->nhosts; i++) {
        struct route_host *h = &job->hosts[i];
        const char *why;
        if (dnsp_name_normalize(h->name, &why) < 0) {
            h->st4 = h->st6 = DNS_STATUS_TEMPFAIL; /* asked of no one: use it this time only */
            buf_printf(&h->reason, "unusable MX host name: %s", why);
            h->ttl = 0;
            job_add_ttl(job, 0, DNSP_F_FROM_CACHE);
            continue;
        }
        for (int f = 0; f < 2; f++) {
            if (!(job->lookups & (f == 0 ? JOB_A : JOB_AAAA)))
                continue;
            struct route_part *part = &job->parts[2 * i + (size_t)f];
            part->job = job;
            part->host = i;
            part->qtype = f == 0 ? DNS_TYPE_A : DNS_TYPE_AAAA;
            job->refs++;
            lookup_start(job->l, part->qtype, h->name, on_route_address, part);
        }
    }
}

static void on_route_mx(void *arg, const struct lookup_view *v)
{
    struct route_job *job = arg;
    job->mx_status = v->status;
    job->mx_reason = xstrdup(v->reason ? v->reason : "");
    job->canon = xstrdup(v->canon);
    job->ttl = v->ttl;
    job->flags = v->flags & (DNSP_F_FROM_CACHE | DNSP_F_STALE);
    if (v->status == DNS_STATUS_OK || v->status == DNS_STATUS_NODATA) {
        job->mx_status = DNS_STATUS_OK;
        collect_route_hosts(job, v); /* copies: the view may go away below */
        start_route_parts(job);
    }
    job_release(job);
}

static struct route_job *job_new(struct lookup *l, uint32_t qtype, const char *name, route_cb cb,
                                 void *arg)
{
    struct route_job *job = xcalloc(1, sizeof(*job));
    job->l = l;
    job->qtype = qtype;
    job->cb = cb;
    job->arg = arg;
    job->domain = xstrdup(name);
    job->refs = 1;
    job->lookups = JOB_A | JOB_AAAA;
    return job;
}

void lookup_route(struct lookup *l, const char *domain, route_cb cb, void *arg)
{
    struct route_job *job = job_new(l, DNSP_QTYPE_ROUTE, domain, cb, arg);
    lookup_start(l, DNS_TYPE_MX, domain, on_route_mx, job);
}

void lookup_addr(struct lookup *l, const char *name, route_cb cb, void *arg)
{
    struct route_job *job = job_new(l, DNSP_QTYPE_ADDR, name, cb, arg);
    job->mx_status = DNS_STATUS_OK;
    job->mx_reason = xstrdup("");
    job->canon = xstrdup(name);
    job->ttl = UINT32_MAX; /* lowered by each part */
    job->flags = DNSP_F_FROM_CACHE;
    job->hosts = xcalloc(1, sizeof(*job->hosts));
    add_route_host(job, 0, name, strlen(name));
    start_route_parts(job);
    job_release(job);
}

/* The PTR names, at most DNSP_RDNS_MAX_NAMES, each to be looked up. */
static void on_rdns_ptr(void *arg, const struct lookup_view *v)
{
    struct route_job *job = arg;
    job->mx_status = v->status;
    job->mx_reason = xstrdup(v->reason ? v->reason : "");
    job->ttl = v->ttl;
    job->flags = v->flags & (DNSP_F_FROM_CACHE | DNSP_F_STALE);
    if (v->status == DNS_STATUS_OK) {
        size_t off = 0, n;
        uint16_t pref;
        const char *name;
        job->hosts = xcalloc(DNSP_RDNS_MAX_NAMES, sizeof(*job->hosts));
        while (job->nhosts < DNSP_RDNS_MAX_NAMES &&
               dns_mx_next(v->data, v->data_len, &off, &pref, &name, &n))
            add_route_host(job, 0, name, n);
        start_route_parts(job);
    }
    job_release(job);
}

void lookup_rdns(struct lookup *l, const char *reverse_name, route_cb cb, void *arg)
{
    struct route_job *job = job_new(l, DNSP_QTYPE_RDNS, reverse_name, cb, arg);
    job->canon = xstrdup(reverse_name);
    if (dnsp_reverse_parse(reverse_name, &job->family, job->addr) < 0)
        log_die(1, "lookup_rdns: %s is not a reverse name", reverse_name); /* the caller checks */
    job->lookups = job->family == 4 ? JOB_A : JOB_AAAA;
    lookup_start(l, DNS_TYPE_PTR, reverse_name, on_rdns_ptr, job);
}

/* ---------------------------------------------------------- lifecycle ---- */

struct lookup *lookup_new(uv_loop_t *loop, struct upstream *up, struct dns_cache *cache,
                          const struct lookup_limits *limits)
{
    struct lookup *l = xcalloc(1, sizeof(*l));
    l->loop = loop;
    l->up = up;
    l->cache = cache;
    l->lim = *limits;
    l->nbuckets = 64;
    l->buckets = xcalloc(l->nbuckets, sizeof(*l->buckets));
    siphash_random_key(l->key);
    uv_timer_init(loop, &l->deadline);
    l->deadline.data = l;
    uv_idle_init(loop, &l->wake);
    l->wake.data = l;
    return l;
}

void lookup_set_limits(struct lookup *l, const struct lookup_limits *limits)
{
    l->lim = *limits;
}

struct dnscache_stats *lookup_stats(struct lookup *l)
{
    return &l->stats;
}

size_t lookup_pending(const struct lookup *l)
{
    return l->npending;
}

void lookup_shutdown(struct lookup *l)
{
    l->shutting_down = 1;
    uv_close((uv_handle_t *)&l->deadline, NULL); /* freed with l, after the loop */
    uv_close((uv_handle_t *)&l->wake, NULL);
}

void lookup_free(struct lookup *l)
{
    if (!l)
        return;
    if (l->npending)
        log_error("dnscache: %zu queries still pending at exit", l->npending);
    free(l->buckets);
    free(l);
}
