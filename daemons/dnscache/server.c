/*
 * server — Unix socket, connections, requests and answers. See server.h.
 */
#include "dnscache/server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dnsproto.h"
#include "log.h"
#include "mem.h"

#define READ_CHUNK 65536

struct request {
    struct conn *conn; /* NULL once the client is gone */
    struct request *prev, *next;
    uint32_t id;
};

struct conn {
    uv_pipe_t pipe;
    struct server *s;
    struct conn *prev, *next;
    struct conn *dirty_next;
    struct buf in, out;
    struct request *reqs;
    size_t inflight;
    int closing, paused, dirty, processing;
};

struct write_req {
    uv_write_t req;
    struct buf data;
};

struct server {
    uv_loop_t *loop;
    uv_pipe_t listener;
    uv_check_t flusher;
    char *path;
    struct lookup *l;
    struct dns_cache *cache;
    struct conn *conns, *dirty;
    size_t nconns;
    uint64_t accepted, protocol_errors;
    struct server_info info;
    unsigned open_handles;
};

static void process_input(struct conn *c);
static void unlink_dirty(struct conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);

/* ------------------------------------------------------------ writing ---- */

static void mark_dirty(struct conn *c)
{
    if (c->dirty || c->closing)
        return;
    c->dirty = 1;
    c->dirty_next = c->s->dirty;
    c->s->dirty = c;
}

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    buf_free(&w->data);
    free(w);
}

static void conn_close(struct conn *c);

static void conn_flush(struct conn *c)
{
    uv_stream_t *st = (uv_stream_t *)&c->pipe;
    if (c->closing || c->out.len == 0)
        return;
    uv_buf_t b = uv_buf_init(c->out.s, (unsigned)c->out.len);
    int n = uv_try_write(st, &b, 1);
    if (n == (int)c->out.len) {
        buf_clear(&c->out);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    if (n > 0)
        buf_consume(&c->out, (size_t)n);
    struct write_req *w = xcalloc(1, sizeof(*w));
    w->data = c->out;
    memset(&c->out, 0, sizeof(c->out));
    b = uv_buf_init(w->data.s, (unsigned)w->data.len);
    if (uv_write(&w->req, st, &b, 1, on_written) != 0) {
        buf_free(&w->data);
        free(w);
        conn_close(c);
        return;
    }
    if (uv_stream_get_write_queue_size(st) > SERVER_OUTPUT_MAX) {
        log_warn("dnscache: client does not read its answers; disconnected");
        conn_close(c);
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
    size_t nhosts = !ok ? 0 : v->qtype == DNS_TYPE_MX ? v->count : 1;
    struct dnsp_answer head = {
        id,       v->qtype, (char *)v->name, (char *)v->canon, v->status, (char *)v->reason, v->ttl,
        v->flags, NULL,     nhosts};
    if (ok && v->qtype == DNS_TYPE_MX) {
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
        if (c->paused && !c->processing && c->inflight <= SERVER_INFLIGHT_MAX / 2)
            process_input(c);
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
    default:
        st->requests_route++;
        break;
    }
}

static int known_qtype(uint32_t qtype)
{
    return qtype == DNSP_QTYPE_A || qtype == DNSP_QTYPE_AAAA || qtype == DNSP_QTYPE_MX ||
           qtype == DNSP_QTYPE_ROUTE;
}

static int handle_lookup(struct conn *c, const char *rec, size_t len, const char **why)
{
    char n[DNSP_NAME_MAX + 2];
    uint32_t id, qtype;
    if (dnsp_get_lookup_name(rec, len, &id, &qtype, n, why) < 0)
        return -1;
    const char *bad = NULL;
    if (!known_qtype(qtype))
        bad = "unknown query type (A, AAAA, MX or ROUTE)";
    else if (dnsp_name_normalize(n, &bad) == 0)
        bad = NULL;
    if (bad) {
        answer_invalid(c, id, qtype, n, bad);
        return 0;
    }
    count_request(lookup_stats(c->s->l), qtype);
    struct lookup_view v;
    if (qtype == DNSP_QTYPE_ROUTE) {
        lookup_route(c->s->l, n, on_route_answer, request_new(c, id));
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

static void protocol_error(struct conn *c, const char *why)
{
    c->s->protocol_errors++;
    log_warn("dnscache: bad request from a client: %s; disconnected", why);
    dnsp_put_error(&c->out, why);
    conn_flush(c);
    conn_close(c);
}

/* Handle every whole record buffered, unless too many are in flight. */
static void process_input(struct conn *c)
{
    size_t off = 0, reclen;
    const char *why = NULL;
    c->processing = 1;
    while (!c->closing && c->inflight < SERVER_INFLIGHT_MAX) {
        int rc = ipc_frame(c->in.s + off, c->in.len - off, DNSP_REQUEST_MAX, &reclen, &why);
        if (rc == 0)
            break;
        if (rc < 0 || handle_record(c, c->in.s + off, reclen, &why) < 0) {
            protocol_error(c, why ? why : "bad record");
            break;
        }
        off += reclen;
    }
    c->processing = 0;
    if (c->closing)
        return;
    buf_consume(&c->in, off);
    int want_pause = c->inflight >= SERVER_INFLIGHT_MAX;
    if (want_pause && !c->paused)
        uv_read_stop((uv_stream_t *)&c->pipe);
    else if (!want_pause && c->paused)
        uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
    c->paused = want_pause;
}

/* -------------------------------------------------------- connections ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct conn *c = h->data;
    buf_reserve(&c->in, READ_CHUNK);
    *b = uv_buf_init(c->in.s + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = st->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->in.len += (size_t)n;
    c->in.s[c->in.len] = '\0';
    process_input(c);
    /* Answers from the cache leave now, one write for all this read gave:
     * the client wakes while we serve the next connection. */
    if (c->dirty) {
        unlink_dirty(c);
        conn_flush(c);
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct server *s = c->s;
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
    if (--s->open_handles == 0) {
        free(s->path);
        free(s);
    }
}

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
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct server *s = listener->data;
    if (status < 0)
        return;
    struct conn *c = xcalloc(1, sizeof(*c));
    c->s = s;
    uv_pipe_init(s->loop, &c->pipe, 0);
    c->pipe.data = c;
    s->open_handles++;
    if (uv_accept(listener, (uv_stream_t *)&c->pipe) != 0) {
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->accepted++;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* ------------------------------------------------------------- socket ---- */

/* Refuse to take over from a live dnscache; remove a stale socket file. */
static int claim_path(const char *path, struct buf *err)
{
    struct sockaddr_un sa;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        buf_printf(err, "socket path %s is longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(fd);
        buf_printf(err, "another onehop-dnscache is serving %s", path);
        return -1;
    }
    if (fd >= 0)
        close(fd);
    if (unlink(path) < 0 && errno != ENOENT) {
        buf_printf(err, "cannot remove stale socket %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int listen_on(struct server *s, struct buf *err)
{
    uv_pipe_init(s->loop, &s->listener, 0);
    s->listener.data = s;
    s->open_handles++;
    mode_t old = umask(0117); /* the socket is born 0660 */
    int rc = uv_pipe_bind(&s->listener, s->path);
    umask(old);
    if (rc == 0 && chmod(s->path, 0660) < 0)
        rc = uv_translate_sys_error(errno);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 256, on_connection);
    if (rc != 0) {
        buf_printf(err, "listen on %s: %s", s->path, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static void on_server_handle_closed(uv_handle_t *h)
{
    struct server *s = h->data;
    if (--s->open_handles == 0) {
        free(s->path);
        free(s);
    }
}

struct server *server_start(uv_loop_t *loop, const char *path, struct lookup *l,
                            struct dns_cache *cache, struct buf *err)
{
    if (claim_path(path, err) < 0)
        return NULL;
    struct server *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->l = l;
    s->cache = cache;
    s->path = xstrdup(path);
    if (listen_on(s, err) < 0) {
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
        unlink(path);
        return NULL;
    }
    uv_check_init(loop, &s->flusher);
    s->flusher.data = s;
    s->open_handles++;
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
    unlink(s->path);
    uv_check_stop(&s->flusher);
    uv_close((uv_handle_t *)&s->flusher, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
}
