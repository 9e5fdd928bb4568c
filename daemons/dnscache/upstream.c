/*
 * upstream — c-ares inside a libuv loop. See upstream.h for the contract.
 *
 * c-ares tells us through its socket-state callback which sockets it wants
 * watched for reading or writing; each gets a uv_poll handle. After every
 * event, and after every new query, the timer is set to c-ares's own next
 * timeout (ares_timeout), so retries and timeouts happen on time without a
 * periodic tick.
 *
 * c-ares 1.18 refuses to change the servers while any query is in flight
 * (ARES_ENOTIMP), and a lookup that ran out of time leaves its query behind
 * (lookup.c): a reload that changes dns_servers then applies them when the
 * channel is next idle; one that leaves them as they are changes nothing.
 */
#include "dnscache/upstream.h"

#include <ares.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

struct watch {
    uv_poll_t poll;
    ares_socket_t fd;
    struct upstream *u;
    struct watch *next;
};

struct upstream {
    uv_loop_t *loop;
    ares_channel channel;
    uv_timer_t timer;
    struct watch *watches;
    struct buf servers;  /* dns_servers as set, comma-separated ("": resolv.conf's) */
    struct buf deferred; /* dns_servers to set once no query is in flight ("": none) */
    int closing;
};

static void apply_deferred_servers(struct upstream *u);

static void schedule_timeout(struct upstream *u);

/* ------------------------------------------------------------ sockets ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct watch *w = h->data;
    struct upstream *u = w->u;
    /* An error on the socket: let c-ares read and write it to notice. */
    int rd = status < 0 || (events & UV_READABLE);
    int wr = status < 0 || (events & UV_WRITABLE);
    ares_process_fd(u->channel, rd ? w->fd : ARES_SOCKET_BAD, wr ? w->fd : ARES_SOCKET_BAD);
    schedule_timeout(u);
}

static void free_watch(uv_handle_t *h)
{
    free(h->data);
}

static struct watch **find_watch(struct upstream *u, ares_socket_t fd)
{
    struct watch **pp = &u->watches;
    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    return pp;
}

static void stop_watch(struct watch **pp)
{
    struct watch *w = *pp;
    *pp = w->next;
    uv_poll_stop(&w->poll);
    uv_close((uv_handle_t *)&w->poll, free_watch);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct upstream *u = data;
    struct watch **pp = find_watch(u, fd);
    if (!readable && !writable) {
        if (*pp)
            stop_watch(pp);
        return;
    }
    if (!*pp) {
        struct watch *w = xcalloc(1, sizeof(*w));
        w->fd = fd;
        w->u = u;
        if (uv_poll_init_socket(u->loop, &w->poll, fd) != 0)
            log_fatal("uv_poll_init_socket(%d) failed", (int)fd);
        w->poll.data = w;
        w->next = u->watches;
        u->watches = w;
        pp = &u->watches;
    }
    int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
    uv_poll_start(&(*pp)->poll, events, on_poll);
}

/* ------------------------------------------------------------- timers ---- */

static void on_timeout(uv_timer_t *t)
{
    struct upstream *u = t->data;
    ares_process_fd(u->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    schedule_timeout(u);
}

static void schedule_timeout(struct upstream *u)
{
    struct timeval tv, *next;
    if (u->closing)
        return;
    next = ares_timeout(u->channel, NULL, &tv);
    if (!next) {
        uv_timer_stop(&u->timer);
        apply_deferred_servers(u); /* idle now */
        return;
    }
    uint64_t ms = (uint64_t)next->tv_sec * 1000 + (uint64_t)(next->tv_usec + 999) / 1000;
    uv_timer_start(&u->timer, on_timeout, ms ? ms : 1, 0);
}

/* ------------------------------------------------------------ servers ---- */

static void servers_csv(const struct conf *c, struct buf *csv)
{
    buf_clear(csv);
    for (size_t i = 0; i < c->dns_servers.n; i++) {
        if (i)
            buf_addc(csv, ',');
        buf_adds(csv, c->dns_servers.v[i]);
    }
}

/* Set the servers of csv; ARES_ENOTIMP while queries are in flight. */
static int apply_servers(struct upstream *u, struct buf *csv)
{
    int rc = ares_set_servers_ports_csv(u->channel, buf_cstr(csv));
    if (rc == ARES_SUCCESS)
        buf_set(&u->servers, csv->s, csv->len);
    return rc;
}

static void apply_deferred_servers(struct upstream *u)
{
    if (u->deferred.len == 0)
        return;
    int rc = apply_servers(u, &u->deferred);
    if (rc == ARES_SUCCESS)
        log_info("servers %s in use", buf_cstr(&u->deferred));
    else
        log_warn("dns_servers \"%s\": %s; keeping %s", buf_cstr(&u->deferred), ares_strerror(rc),
                 buf_cstr(&u->servers));
    buf_clear(&u->deferred);
}

static int set_servers(struct upstream *u, const struct conf *c, struct buf *err)
{
    struct buf csv = BUF_INIT;
    int rc = ARES_SUCCESS;
    servers_csv(c, &csv);
    buf_clear(&u->deferred); /* this configuration replaces any waiting one */
    if (csv.len == 0 || strcmp(buf_cstr(&csv), buf_cstr(&u->servers)) == 0) {
        /* none (c-ares read /etc/resolv.conf at init), or no change */
    } else if ((rc = apply_servers(u, &csv)) == ARES_ENOTIMP) {
        log_info("dns_servers %s: used once the queries in flight are done", buf_cstr(&csv));
        buf_set(&u->deferred, csv.s, csv.len);
        rc = ARES_SUCCESS;
    } else if (rc != ARES_SUCCESS) {
        buf_printf(err, "dns_servers \"%s\": %s", buf_cstr(&csv), ares_strerror(rc));
    }
    buf_free(&csv);
    return rc == ARES_SUCCESS ? 0 : -1;
}

static int init_channel(struct upstream *u, const struct conf *c, struct buf *err)
{
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    /* NOCHECKRESP: c-ares 1.18 would turn SERVFAIL and REFUSED answers into
     * "could not contact DNS servers"; we want the answer and its rcode. */
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS | ARES_FLAG_NOCHECKRESP;
    o.timeout = (int)(c->dns_timeout ? c->dns_timeout * 1000 : 5000);
    o.tries = UPSTREAM_TRIES;
    o.ndomains = 0; /* no search list, whatever resolv.conf says */
    o.domains = NULL;
    o.ednspsz = UPSTREAM_EDNS_SIZE;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = u;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_DOMAINS |
               ARES_OPT_EDNSPSZ | ARES_OPT_SOCK_STATE_CB;
    int rc = ares_init_options(&u->channel, &o, mask);
    if (rc != ARES_SUCCESS) {
        buf_printf(err, "c-ares: %s", ares_strerror(rc));
        return -1;
    }
    return set_servers(u, c, err);
}

struct upstream *upstream_new(uv_loop_t *loop, const struct conf *c, struct buf *err)
{
    static int library_ready;
    if (!library_ready) {
        int rc = ares_library_init(ARES_LIB_INIT_ALL);
        if (rc != ARES_SUCCESS) {
            buf_printf(err, "c-ares: %s", ares_strerror(rc));
            return NULL;
        }
        library_ready = 1;
    }
    struct upstream *u = xcalloc(1, sizeof(*u));
    u->loop = loop;
    if (init_channel(u, c, err) < 0) {
        if (u->channel)
            ares_destroy(u->channel);
        buf_free(&u->servers);
        free(u);
        return NULL;
    }
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    return u;
}

/* Reload: a new channel would drop queries in flight; only the servers can
 * change on the live one (the timeout applies from the next start), at once
 * or when it is next idle (see the top of the file). */
int upstream_configure(struct upstream *u, const struct conf *c, struct buf *err)
{
    return set_servers(u, c, err);
}

struct query {
    upstream_cb cb;
    void *arg;
};

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct query q = *(struct query *)arg;
    free(arg);
    q.cb(q.arg, status, abuf && alen > 0 ? abuf : NULL, abuf ? alen : 0);
}

void upstream_query(struct upstream *u, const char *name, uint16_t qtype, upstream_cb cb, void *arg)
{
    if (u->closing) {
        cb(arg, ARES_EDESTRUCTION, NULL, 0);
        return;
    }
    struct query *q = xmalloc(sizeof(*q));
    q->cb = cb;
    q->arg = arg;
    ares_query(u->channel, name, 1 /* class IN */, qtype, on_answer, q);
    schedule_timeout(u);
}

void upstream_describe(struct upstream *u, struct buf *out)
{
    struct ares_addr_port_node *servers = NULL;
    if (ares_get_servers_ports(u->channel, &servers) != ARES_SUCCESS)
        return;
    for (struct ares_addr_port_node *s = servers; s; s = s->next) {
        char ip[64];
        if (uv_inet_ntop(s->family, &s->addr, ip, sizeof(ip)) != 0)
            continue;
        if (out->len)
            buf_adds(out, ", ");
        if (s->family == AF_INET6)
            buf_printf(out, "[%s]:%d", ip, s->udp_port ? s->udp_port : 53);
        else
            buf_printf(out, "%s:%d", ip, s->udp_port ? s->udp_port : 53);
    }
    ares_free_data(servers);
}

static void free_upstream(uv_handle_t *h)
{
    struct upstream *u = h->data;
    buf_free(&u->servers);
    buf_free(&u->deferred);
    free(u);
}

void upstream_free(struct upstream *u)
{
    if (!u)
        return;
    u->closing = 1;
    ares_destroy(u->channel); /* callbacks: ARES_EDESTRUCTION; sockets: state 0 */
    while (u->watches)
        stop_watch(&u->watches);
    uv_timer_stop(&u->timer);
    uv_close((uv_handle_t *)&u->timer, free_upstream);
}
