/*
 * server — the listener, connections, requests and answers. See server.h.
 *
 * Each client is a channel (channel.h): the channel frames, bounds and
 * reports; this file turns records into lookups and answers. Answers are
 * built in the connection's `out` buffer and handed to the channel in one
 * piece per read (the channel is corked while it dispatches one read) or
 * once per loop turn for answers completed later (the flusher). A client
 * is read from only while it has fewer than SERVER_INFLIGHT_MAX requests
 * unanswered and its answers are below the channel's high-water mark.
 *
 * A connection closed inside one of its own callbacks (a bad request, an
 * answer the client does not read) stays allocated until the flusher has
 * run, so no stack above the close holds a freed pointer.
 */
#include "dnscache/server.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "dnsproto.h"
#include "log.h"
#include "mem.h"

#define SERVER_HIGH_WATER (1u << 20)

struct request {
    struct conn *conn; /* NULL once the client is gone */
    struct request *prev, *next;
    uint32_t id;
};

struct conn {
    struct channel *ch; /* NULL once closed */
    struct server *s;
    struct conn *prev, *next;
    struct conn *dirty_next, *dead_next;
    struct buf out; /* answers not yet handed to the channel */
    struct request *reqs;
    size_t inflight;
    int closing, dirty, paused_inflight, paused_output;
};

struct server {
    uv_loop_t *loop;
    struct channel_listener *listener;
    uv_check_t flusher;
    char *path;
    struct lookup *l;
    struct dns_cache *cache;
    struct conn *conns, *dirty, *dead;
    size_t nconns;
    uint64_t accepted, protocol_errors;
    struct server_info info;
};

static void conn_close(struct conn *c);

/* ------------------------------------------------------------ writing ---- */

static void mark_dirty(struct conn *c)
{
    if (c->dirty || c->closing)
        return;
    c->dirty = 1;
    c->dirty_next = c->s->dirty;
    c->s->dirty = c;
}

/* Read from the client unless it has too much in flight or unread. */
static void update_reading(struct conn *c)
{
    if (c->closing)
        return;
    if (c->paused_inflight || c->paused_output)
        channel_pause_reading(c->ch);
    else
        channel_resume_reading(c->ch);
}

/* Hand the answers built so far to the channel. */
static void conn_flush(struct conn *c)
{
    if (c->closing || c->out.len == 0)
        return;
    int rc = channel_send_buf(c->ch, &c->out);
    buf_clear(&c->out);
    if (rc == 0 && !c->paused_output) { /* the client reads slowly: wait for on_drain */
        c->paused_output = 1;
        update_reading(c);
    }
}

static void free_dead(struct server *s)
{
    while (s->dead) {
        struct conn *c = s->dead;
        s->dead = c->dead_next;
        buf_free(&c->out);
        free(c);
    }
}

/* Once per loop turn: every answer produced in the turn leaves together. */
static void on_flush_check(uv_check_t *h)
{
    struct server *s = h->data;
    while (s->dirty) {
        struct conn *c = s->dirty;
        s->dirty = c->dirty_next;
        c->dirty = 0;
        conn_flush(c);
    }
    free_dead(s);
}

/* ------------------------------------------------------------ answers ---- */

static void put_mx_view(struct buf *out, uint16_t record, const struct dnsp_answer *head,
                        const struct lookup_view *v)
{
    struct ipc_writer w;
    size_t off = 0, n;
    uint16_t pref;
    const char *host;
    struct buf name = BUF_INIT;
    dnsp_answer_begin(&w, out, record, head);
    while (dns_mx_next(v->data, v->data_len, &off, &pref, &host, &n)) {
        buf_set(&name, host, n);
        struct dnsp_host h = {pref, name.s, DNS_STATUS_OK, "", v->ttl, NULL, 0, NULL, 0};
        dnsp_answer_add_host(&w, &h);
    }
    buf_free(&name);
    ipc_finish(&w);
}

/* A and AAAA: one host, the name itself, through the one-reservation
 * encoder (the hit path); MX: a host per record. */
static void put_view(struct buf *out, uint16_t record, uint32_t id, const struct lookup_view *v)
{
    int ok = v->status == DNS_STATUS_OK;
    int names = v->qtype == DNS_TYPE_MX || v->qtype == DNS_TYPE_PTR; /* a dump's PTR entry */
    size_t nhosts = !ok ? 0 : names ? v->count : 1;
    struct dnsp_answer head = {
        id,       v->qtype, (char *)v->name, (char *)v->canon, v->status, (char *)v->reason, v->ttl,
        v->flags, NULL,     nhosts};
    if (ok && names) {
        put_mx_view(out, record, &head, v);
        return;
    }
    struct dnsp_host h;
    if (ok) {
        int v4 = v->qtype == DNS_TYPE_A;
        h = (struct dnsp_host){0,
                               (char *)v->name,
                               DNS_STATUS_OK,
                               "",
                               v->ttl,
                               v4 ? (unsigned char *)v->data : NULL,
                               v4 ? v->count : 0,
                               v4 ? NULL : (unsigned char *)v->data,
                               v4 ? 0 : v->count};
        head.hosts = &h;
    }
    dnsp_put_answer(out, record, &head);
}

static void request_done(struct request *r)
{
    struct conn *c = r->conn;
    if (c) {
        if (r->prev)
            r->prev->next = r->next;
        else
            c->reqs = r->next;
        if (r->next)
            r->next->prev = r->prev;
        c->inflight--;
        mark_dirty(c);
        if (c->paused_inflight && c->inflight <= SERVER_INFLIGHT_MAX / 2) {
            c->paused_inflight = 0;
            update_reading(c);
        }
    }
    free(r);
}

static void on_lookup_answer(void *arg, const struct lookup_view *v)
{
    struct request *r = arg;
    if (r->conn)
        put_view(&r->conn->out, DNSP_ANSWER, r->id, v);
    request_done(r);
}

static void on_route_answer(void *arg, const struct dnsp_answer *a)
{
    struct request *r = arg;
    if (r->conn) {
        struct dnsp_answer copy = *a;
        copy.id = r->id;
        dnsp_put_answer(&r->conn->out, DNSP_ANSWER, &copy);
    }
    request_done(r);
}

static struct request *request_new(struct conn *c, uint32_t id)
{
    struct request *r = xcalloc(1, sizeof(*r));
    r->conn = c;
    r->id = id;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    c->inflight++;
    return r;
}

/* ----------------------------------------------------------- requests ---- */

static void answer_invalid(struct conn *c, uint32_t id, uint32_t qtype, const char *name,
                           const char *why)
{
    struct dnsp_answer a = {
        id, qtype, (char *)name, (char *)name, DNS_STATUS_INVALID, (char *)why, 0, 0, NULL, 0};
    lookup_stats(c->s->l)->requests_invalid++;
    dnsp_put_answer(&c->out, DNSP_ANSWER, &a);
    mark_dirty(c);
}

static void count_request(struct dnscache_stats *st, uint32_t qtype)
{
    st->requests++;
    switch (qtype) {
    case DNSP_QTYPE_A:
        st->requests_a++;
        break;
    case DNSP_QTYPE_AAAA:
        st->requests_aaaa++;
        break;
    case DNSP_QTYPE_MX:
        st->requests_mx++;
        break;
    case DNSP_QTYPE_ADDR:
        st->requests_addr++;
        break;
    case DNSP_QTYPE_RDNS:
        st->requests_rdns++;
        break;
    default:
        st->requests_route++;
        break;
    }
}

static int known_qtype(uint32_t qtype)
{
    return qtype == DNSP_QTYPE_A || qtype == DNSP_QTYPE_AAAA || qtype == DNSP_QTYPE_MX ||
           qtype == DNSP_QTYPE_ROUTE || qtype == DNSP_QTYPE_ADDR || qtype == DNSP_QTYPE_RDNS;
}

static int handle_lookup(struct conn *c, const char *rec, size_t len, const char **why)
{
    char n[DNSP_NAME_MAX + 2];
    uint32_t id, qtype;
    if (dnsp_get_lookup_name(rec, len, &id, &qtype, n, why) < 0)
        return -1;
    const char *bad = NULL;
    if (!known_qtype(qtype))
        bad = "unknown query type (A, AAAA, MX, ROUTE, ADDR or RDNS)";
    else if (dnsp_name_normalize(n, &bad) == 0)
        bad = NULL;
    int family;
    unsigned char addr[16];
    if (!bad && qtype == DNSP_QTYPE_RDNS && dnsp_reverse_parse(n, &family, addr) < 0)
        bad = "not the reverse name of an address (in-addr.arpa or ip6.arpa)";
    if (bad) {
        answer_invalid(c, id, qtype, n, bad);
        return 0;
    }
    count_request(lookup_stats(c->s->l), qtype);
    struct lookup_view v;
    if (qtype == DNSP_QTYPE_ROUTE) {
        lookup_route(c->s->l, n, on_route_answer, request_new(c, id));
    } else if (qtype == DNSP_QTYPE_ADDR) {
        lookup_addr(c->s->l, n, on_route_answer, request_new(c, id));
    } else if (qtype == DNSP_QTYPE_RDNS) {
        lookup_rdns(c->s->l, n, on_route_answer, request_new(c, id));
    } else if (lookup_cached(c->s->l, (uint16_t)qtype, n, &v)) {
        /* A hit: answered in place, nothing to allocate or remember. */
        put_view(&c->out, DNSP_ANSWER, id, &v);
        mark_dirty(c);
    } else {
        lookup_start(c->s->l, (uint16_t)qtype, n, on_lookup_answer, request_new(c, id));
    }
    return 0;
}

struct dump {
    struct buf *out;
    int64_t now;
    uint32_t n;
};

static void dump_entry(void *arg, const struct dns_entry *e)
{
    struct dump *d = arg;
    struct lookup_view v = {e->qtype,
                            dns_entry_name(e),
                            dns_entry_canon(e),
                            (enum dns_status)e->status,
                            dns_status_reason((enum dns_status)e->status),
                            dns_entry_remaining(e, d->now),
                            DNSP_F_FROM_CACHE | (d->now >= e->expires_ms ? DNSP_F_STALE : 0),
                            dns_entry_data(e),
                            e->data_len,
                            e->count};
    put_view(d->out, DNSP_ENTRY, 0, &v);
    d->n++;
}

static void dump_counters(struct conn *c)
{
    struct server *s = c->s;
    const struct dnscache_stats *st = lookup_stats(s->l);
    struct {
        const char *name;
        uint64_t value;
    } rows[] = {
        {"requests", st->requests},
        {"requests_a", st->requests_a},
        {"requests_aaaa", st->requests_aaaa},
        {"requests_mx", st->requests_mx},
        {"requests_route", st->requests_route},
        {"requests_addr", st->requests_addr},
        {"requests_rdns", st->requests_rdns},
        {"requests_invalid", st->requests_invalid},
        {"hits", st->hits},
        {"misses", st->misses},
        {"coalesced", st->coalesced},
        {"upstream_queries", st->upstream_queries},
        {"cname_followups", st->cname_followups},
        {"answers_ok", st->answers_ok},
        {"answers_nodata", st->answers_nodata},
        {"answers_nxdomain", st->answers_nxdomain},
        {"answers_nullmx", st->answers_nullmx},
        {"failures_servfail", st->failures[DNS_FAIL_SERVFAIL]},
        {"failures_timeout", st->failures[DNS_FAIL_TIMEOUT]},
        {"failures_refused", st->failures[DNS_FAIL_REFUSED]},
        {"failures_malformed", st->failures[DNS_FAIL_MALFORMED]},
        {"failures_cname", st->failures[DNS_FAIL_CNAME]},
        {"failures_other", st->failures[DNS_FAIL_OTHER]},
        {"stale_served", st->stale_served},
        {"not_cached_ttl0", st->not_cached_ttl0},
        {"cache_entries", dns_cache_count(s->cache)},
        {"cache_max", s->info.cache_max},
        {"cache_bytes", dns_cache_bytes(s->cache)},
        {"evictions", dns_cache_evictions(s->cache)},
        {"pending_queries", lookup_pending(s->l)},
        {"clients", s->nconns},
        {"protocol_errors", s->protocol_errors},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        dnsp_put_counter(&c->out, rows[i].name, rows[i].value);
}

static int handle_dump(struct conn *c, const char *rec, size_t len, const char **why)
{
    uint32_t what;
    if (dnsp_get_dump(rec, len, &what, why) < 0)
        return -1;
    struct dump d = {&c->out, (int64_t)uv_now(c->s->loop), 0};
    if (what & DNSP_DUMP_COUNTERS)
        dump_counters(c);
    if (what & DNSP_DUMP_ENTRIES)
        dns_cache_walk(c->s->cache, dump_entry, &d);
    dnsp_put_end(&c->out, d.n);
    mark_dirty(c);
    return 0;
}

static int handle_flush(struct conn *c, const char *rec, size_t len, const char **why)
{
    struct buf name = BUF_INIT;
    if (dnsp_get_flush(rec, len, &name, why) < 0) {
        buf_free(&name);
        return -1;
    }
    char *n = (char *)buf_cstr(&name);
    size_t removed = 0;
    const char *bad;
    if (n[0] == '\0')
        removed = dns_cache_flush(c->s->cache, NULL);
    else if (dnsp_name_normalize(n, &bad) == 0)
        removed = dns_cache_flush(c->s->cache, n);
    if (removed)
        log_info("dnscache: flushed %zu entries%s%s", removed, n[0] ? " of " : "", n);
    dnsp_put_flushed(&c->out, removed);
    mark_dirty(c);
    buf_free(&name);
    return 0;
}

static int handle_record(struct conn *c, const char *rec, size_t len, const char **why)
{
    switch (dnsp_record_type(rec, len)) {
    case DNSP_LOOKUP:
        return handle_lookup(c, rec, len, why);
    case DNSP_DUMP:
        return handle_dump(c, rec, len, why);
    case DNSP_FLUSH:
        return handle_flush(c, rec, len, why);
    default:
        *why = "unknown request type";
        return -1;
    }
}

/* -------------------------------------------------------- connections ---- */

static const char *on_request(void *arg, struct channel *ch, struct chan_record *rec)
{
    struct conn *c = arg;
    const char *why = NULL;
    if (handle_record(c, rec->data, rec->len, &why) < 0)
        return why ? why : "bad record";
    conn_flush(c); /* corked: one write for all this read brought */
    if (c->inflight >= SERVER_INFLIGHT_MAX && !c->paused_inflight) {
        c->paused_inflight = 1;
        update_reading(c);
    }
    return NULL;
}

/* A bad request: the client hears why, then the channel closes. */
static void on_bad_request(void *arg, struct channel *ch, const char *why)
{
    struct conn *c = arg;
    c->s->protocol_errors++;
    buf_clear(&c->out);
    dnsp_put_error(&c->out, why);
    channel_send_buf(ch, &c->out);
    buf_clear(&c->out);
}

static void on_drained(void *arg, struct channel *ch)
{
    struct conn *c = arg;
    c->paused_output = 0;
    update_reading(c);
}

static void on_conn_channel_closed(void *arg, struct channel *ch, const char *reason)
{
    conn_close(arg);
}

static const struct channel_ops conn_ops = {on_request, on_drained, on_conn_channel_closed};

static void unlink_dirty(struct conn *c)
{
    struct conn **pp = &c->s->dirty;
    while (*pp && *pp != c)
        pp = &(*pp)->dirty_next;
    if (*pp)
        *pp = c->dirty_next;
    c->dirty = 0;
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    for (struct request *r = c->reqs; r; r = r->next)
        r->conn = NULL; /* answered into nothing when they complete */
    c->reqs = NULL;
    unlink_dirty(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->s->nconns--;
    channel_close(c->ch); /* nothing when the channel closed itself */
    c->ch = NULL;
    c->dead_next = c->s->dead;
    c->s->dead = c;
}

static void on_connection(void *arg, int fd, const struct chan_cred *peer)
{
    struct server *s = arg;
    struct conn *c = xcalloc(1, sizeof(*c));
    struct buf name = BUF_INIT, err = BUF_INIT;
    buf_printf(&name, "dnscache client uid %u pid %ld", (unsigned)peer->uid, (long)peer->pid);
    struct channel_opts o = {buf_cstr(&name),  DNSP_REQUEST_MAX, 0, SERVER_HIGH_WATER, 0,
                             SERVER_OUTPUT_MAX};
    c->s = s;
    c->ch = channel_open(s->loop, fd, &o, &conn_ops, c, &err);
    if (!c->ch) {
        log_warn("%s", buf_cstr(&err));
        free(c);
    } else {
        channel_set_error_reply(c->ch, on_bad_request);
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        s->accepted++;
    }
    buf_free(&name);
    buf_free(&err);
}

/* ------------------------------------------------------------- socket ---- */

static void allow_account(uid_t *uids, size_t *n, uid_t uid)
{
    if (*n < SERVER_UIDS_MAX && !chan_uid_allowed(uid, uids, *n))
        uids[(*n)++] = uid;
}

/* "USER-SUFFIX"'s uid, if that account exists. */
static int account_uid(const char *user, const char *suffix, uid_t *uid)
{
    struct buf name = BUF_INIT;
    buf_printf(&name, "%s-%s", user, suffix);
    struct passwd *pw = getpwnam(buf_cstr(&name));
    buf_free(&name);
    if (!pw)
        return -1;
    *uid = pw->pw_uid;
    return 0;
}

/* Started as root (running as root, or as the dns account the master
 * gave it; SPEC 7), the instance's router and remote accounts. */
static int privilege_separated(const char *user)
{
    uid_t dns;
    return geteuid() == 0 || (account_uid(user, "dns", &dns) == 0 && dns == geteuid());
}

size_t server_allowed_uids(const char *user, uid_t *uids)
{
    static const char *const clients[] = {"router", "remote", "smtpd"};
    size_t n = 0;
    allow_account(uids, &n, 0);
    allow_account(uids, &n, geteuid());
    if (!user || !privilege_separated(user))
        return n;
    for (size_t i = 0; i < sizeof(clients) / sizeof(clients[0]); i++) {
        uid_t uid;
        if (account_uid(user, clients[i], &uid) == 0)
            allow_account(uids, &n, uid);
    }
    return n;
}

static void on_server_handle_closed(uv_handle_t *h)
{
    struct server *s = h->data;
    free_dead(s);
    free(s->path);
    free(s);
}

struct server *server_start(uv_loop_t *loop, const char *path, const char *user, struct lookup *l,
                            struct dns_cache *cache, struct buf *err)
{
    uid_t uids[SERVER_UIDS_MAX];
    size_t nuids = server_allowed_uids(user, uids);
    struct server *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->l = l;
    s->cache = cache;
    s->path = xstrdup(path);
    s->listener = channel_listen_named(loop, path, "onehop-dnscache", SERVER_SOCKET_MODE, uids,
                                       nuids, on_connection, s, err);
    if (!s->listener) {
        free(s->path);
        free(s);
        return NULL;
    }
    uv_check_init(loop, &s->flusher);
    s->flusher.data = s;
    uv_check_start(&s->flusher, on_flush_check);
    uv_unref((uv_handle_t *)&s->flusher);
    return s;
}

void server_set_info(struct server *s, const struct server_info *info)
{
    s->info = *info;
}

void server_stop(struct server *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_close(s->conns);
    channel_listener_close(s->listener);
    unlink(s->path);
    uv_check_stop(&s->flusher);
    uv_close((uv_handle_t *)&s->flusher, on_server_handle_closed);
}
