/*
 * dnsclient — blocking and libuv clients of the DNS cache. See dnsclient.h.
 *
 * Both speak over the channel module: the blocking client with its blocking
 * helpers (one record per read, a bounded wait), the asynchronous one with
 * a channel on its connection.
 *
 * The asynchronous client keeps its requests in a table indexed by id (ids
 * are handed out in sequence, so id & mask spreads them evenly) and in a
 * list in the order they were made, so the oldest is found at once for the
 * timeout check, which runs once a second while anything is pending. New
 * requests, a lost connection and the failures it causes are all handled
 * in a zero-delay "kick" timer, never inside the caller's own call: a
 * request is sent there (corked with every other request of the turn),
 * and after a loss each request sent and unanswered is sent again once.
 * Failures first take every affected request out of the table and list,
 * then call back: a callback may cancel another request (marked, not
 * freed, if it is among them) or start new ones (never among them).
 *
 * Must never: call back inside dnsclient_lookup(), call back twice, or
 * wait for the timeout after the connection is known to be gone.
 */
#include "dnsclient.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "channel.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "safeio.h"

#define CONNECT_RETRY_MS 20 /* the dnscache's listen backlog was full */

/* ---------------------------------------------------------- blocking ---- */

void dnsc_socket_path(const char *run_dir, struct buf *out)
{
    buf_clear(out);
    path_join(out, run_dir, DNSP_SOCKET_NAME);
}

static int fill_sockaddr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return -1;
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

int dnsc_open(struct dnsc *c, const char *path, int timeout_ms, struct buf *err)
{
    struct sockaddr_un sa;
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->timeout_ms = timeout_ms;
    if (fill_sockaddr(&sa, path) < 0) {
        buf_printf(err, "socket path %s is too long", path);
        return DNSC_ERROR;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        buf_printf(err, "socket: %s", strerror(errno));
        return DNSC_ERROR;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        buf_printf(err, "%s: %s", path, strerror(e));
        return e == ENOENT || e == ECONNREFUSED ? DNSC_NOT_RUNNING : DNSC_ERROR;
    }
    c->fd = fd;
    return DNSC_OK;
}

void dnsc_close(struct dnsc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    buf_free(&c->rec);
}

static int send_records(struct dnsc *c, struct buf *out, struct buf *err)
{
    int rc = chan_send_record(c->fd, out->s, out->len, NULL, 0, c->timeout_ms);
    if (rc < 0)
        buf_printf(err, "cannot send to dnscache: %s", strerror(errno));
    buf_free(out);
    return rc;
}

/* The next record; a DNSP_ERROR record becomes the error text. */
static int recv_record(struct dnsc *c, struct buf *err)
{
    const char *why = NULL;
    int fds[CHAN_FDS_MAX];
    unsigned nfds;
    int rc = chan_recv_record(c->fd, DNSP_ANSWER_MAX, 0, c->timeout_ms, &c->rec, fds, &nfds, &why);
    if (rc == 0) {
        buf_adds(err, "dnscache closed the connection");
        return -1;
    }
    if (rc < 0) {
        if (errno == ETIMEDOUT)
            buf_printf(err, "dnscache did not answer within %d ms", c->timeout_ms);
        else
            buf_printf(err, "reading from dnscache: %s", why);
        return -1;
    }
    if (dnsp_record_type(c->rec.s, c->rec.len) == DNSP_ERROR) {
        struct buf text = BUF_INIT;
        if (dnsp_get_error(c->rec.s, c->rec.len, &text, &why) == 0)
            buf_printf(err, "dnscache refused the request: %s", buf_cstr(&text));
        else
            buf_printf(err, "dnscache sent a bad error record: %s", why);
        buf_free(&text);
        return -1;
    }
    return 0;
}

int dnsc_lookup(struct dnsc *c, uint32_t qtype, const char *name, struct dnsp_answer *a,
                struct buf *err)
{
    struct buf out = BUF_INIT;
    const char *why;
    uint32_t id = ++c->next_id;
    dnsp_put_lookup(&out, id, qtype, name);
    if (send_records(c, &out, err) < 0 || recv_record(c, err) < 0)
        return -1;
    if (dnsp_get_answer(c->rec.s, c->rec.len, a, &why) < 0) {
        buf_printf(err, "bad answer from dnscache: %s", why);
        return -1;
    }
    if (a->id != id) {
        dnsp_answer_free(a);
        buf_adds(err, "answer from dnscache for another request");
        return -1;
    }
    return 0;
}

static int dump_record(struct dnsc *c, void (*on_counter)(void *, const char *, uint64_t),
                       void (*on_entry)(void *, const struct dnsp_answer *), void *arg,
                       struct buf *err)
{
    const char *why = NULL;
    struct buf name = BUF_INIT;
    uint64_t value;
    uint32_t count;
    struct dnsp_answer e;
    int rc = -1;
    switch (dnsp_record_type(c->rec.s, c->rec.len)) {
    case DNSP_COUNTER:
        if ((rc = dnsp_get_counter(c->rec.s, c->rec.len, &name, &value, &why)) == 0 && on_counter)
            on_counter(arg, buf_cstr(&name), value);
        break;
    case DNSP_ENTRY:
        if ((rc = dnsp_get_answer(c->rec.s, c->rec.len, &e, &why)) == 0) {
            if (on_entry)
                on_entry(arg, &e);
            dnsp_answer_free(&e);
        }
        break;
    case DNSP_END:
        rc = dnsp_get_end(c->rec.s, c->rec.len, &count, &why) == 0 ? 1 : -1;
        break;
    default:
        why = "unexpected record in the dump";
    }
    if (rc < 0)
        buf_printf(err, "bad dump from dnscache: %s", why ? why : "?");
    buf_free(&name);
    return rc;
}

int dnsc_dump(struct dnsc *c, uint32_t what,
              void (*on_counter)(void *arg, const char *name, uint64_t value),
              void (*on_entry)(void *arg, const struct dnsp_answer *e), void *arg, struct buf *err)
{
    struct buf out = BUF_INIT;
    dnsp_put_dump(&out, what);
    if (send_records(c, &out, err) < 0)
        return -1;
    for (;;) {
        if (recv_record(c, err) < 0)
            return -1;
        int rc = dump_record(c, on_counter, on_entry, arg, err);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
    }
}

int dnsc_flush(struct dnsc *c, const char *name, uint64_t *removed, struct buf *err)
{
    struct buf out = BUF_INIT;
    const char *why;
    dnsp_put_flush(&out, name);
    if (send_records(c, &out, err) < 0 || recv_record(c, err) < 0)
        return -1;
    if (dnsp_get_flushed(c->rec.s, c->rec.len, removed, &why) < 0) {
        buf_printf(err, "bad answer from dnscache: %s", why);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------ asynchronous ---- */

/* Copy n elements of size bytes (NULL for none). */
static void *copy_array(const void *p, size_t n, size_t size)
{
    if (!p || n == 0)
        return NULL;
    void *q = xcalloc(n, size);
    memcpy(q, p, n * size);
    return q;
}

static char *copy_str(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void dnsclient_answer_copy(struct dnsp_answer *dst, const struct dnsp_answer *src)
{
    *dst = *src;
    dst->name = copy_str(src->name);
    dst->canon = copy_str(src->canon);
    dst->reason = copy_str(src->reason);
    dst->hosts = copy_array(src->hosts, src->nhosts, sizeof(*src->hosts));
    for (size_t i = 0; i < dst->nhosts; i++) {
        struct dnsp_host *h = &dst->hosts[i];
        h->name = copy_str(h->name);
        h->reason = copy_str(h->reason);
        h->v4 = copy_array(h->v4, h->nv4, 4);
        h->v6 = copy_array(h->v6, h->nv6, 16);
    }
}

struct dnsclient_req {
    struct dnsclient *c;
    struct dnsclient_req *id_next;     /* in the id table; then in a failing batch */
    struct dnsclient_req *prev, *next; /* in the order made */
    uint32_t id, qtype;
    uint64_t deadline;
    int sent, resent, doomed, detached;
    dnsclient_cb cb; /* NULL: cancelled while its failure was being called back */
    void *arg;
    char name[];
};

struct dnsclient {
    uv_loop_t *loop;
    char *path;
    uint64_t timeout_ms;
    struct channel *ch; /* NULL while not connected */
    int lost;           /* the channel closed: resend or fail at the next kick */
    uv_timer_t timer;   /* timeouts, once a second */
    uv_timer_t kick;    /* zero delay: connect, send, handle a loss */
    unsigned open_handles;
    struct dnsclient_req **table;
    size_t table_size, count;
    struct dnsclient_req *oldest, *newest;
    uint32_t next_id;
};

static void table_insert(struct dnsclient *c, struct dnsclient_req *r)
{
    if (c->count >= c->table_size) {
        size_t n = c->table_size ? c->table_size * 2 : 64;
        struct dnsclient_req **t = xcalloc(n, sizeof(*t));
        for (size_t i = 0; i < c->table_size; i++) {
            struct dnsclient_req *e = c->table[i], *next;
            for (; e; e = next) {
                next = e->id_next;
                e->id_next = t[e->id & (n - 1)];
                t[e->id & (n - 1)] = e;
            }
        }
        free(c->table);
        c->table = t;
        c->table_size = n;
    }
    struct dnsclient_req **head = &c->table[r->id & (c->table_size - 1)];
    r->id_next = *head;
    *head = r;
    c->count++;
}

static struct dnsclient_req *table_find(struct dnsclient *c, uint32_t id)
{
    if (!c->table_size)
        return NULL;
    struct dnsclient_req *r = c->table[id & (c->table_size - 1)];
    while (r && r->id != id)
        r = r->id_next;
    return r;
}

/* The next id after the last, wrapping, never 0 nor one in flight. */
static uint32_t next_free_id(struct dnsclient *c)
{
    do
        c->next_id++;
    while (c->next_id == 0 || table_find(c, c->next_id));
    return c->next_id;
}

/* Forget r (table and list); does not free it. */
static void req_remove(struct dnsclient *c, struct dnsclient_req *r)
{
    struct dnsclient_req **pp = &c->table[r->id & (c->table_size - 1)];
    while (*pp != r)
        pp = &(*pp)->id_next;
    *pp = r->id_next;
    c->count--;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->oldest = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        c->newest = r->prev;
    if (c->count == 0)
        uv_timer_stop(&c->timer);
}

/* Call back every request marked doomed with a temporary failure. They
 * leave the table and list first, so callbacks see a consistent client. */
static void fail_doomed(struct dnsclient *c, const char *reason)
{
    struct dnsclient_req *batch = NULL, **tail = &batch;
    for (struct dnsclient_req *r = c->oldest, *next; r; r = next) {
        next = r->next;
        if (!r->doomed)
            continue;
        req_remove(c, r);
        r->detached = 1;
        r->id_next = NULL;
        *tail = r;
        tail = &r->id_next;
    }
    for (struct dnsclient_req *r = batch, *next; r; r = next) {
        next = r->id_next;
        struct dnsp_answer a = {r->id,          r->qtype, r->name, r->name, DNS_STATUS_TEMPFAIL,
                                (char *)reason, 0,        0,       NULL,    0};
        if (r->cb)
            r->cb(r->arg, &a);
        free(r);
    }
}

static void fail_all(struct dnsclient *c, const char *reason)
{
    for (struct dnsclient_req *r = c->oldest; r; r = r->next)
        r->doomed = 1;
    fail_doomed(c, reason);
}

static void on_kick(uv_timer_t *t);

static void kick(struct dnsclient *c)
{
    uv_timer_start(&c->kick, on_kick, 0, 0);
}

/* After a loss: what was sent goes once more; what went twice fails. */
static void handle_loss(struct dnsclient *c)
{
    c->lost = 0;
    for (struct dnsclient_req *r = c->oldest; r; r = r->next) {
        if (!r->sent)
            continue;
        if (r->resent)
            r->doomed = 1;
        r->sent = 0;
        r->resent = 1;
    }
    fail_doomed(c, "connection to dnscache lost");
}

/* ------------------------------------------------------------ channel ---- */

static const char *on_answer_record(void *arg, struct channel *ch, struct chan_record *rec)
{
    struct dnsclient *c = arg;
    struct dnsp_answer a;
    const char *why;
    if (dnsp_record_type(rec->data, rec->len) != DNSP_ANSWER)
        return "unexpected record from dnscache";
    if (dnsp_get_answer(rec->data, rec->len, &a, &why) < 0)
        return "bad answer from dnscache";
    struct dnsclient_req *r = table_find(c, a.id);
    if (r && r->sent) { /* else: timed out or cancelled meanwhile */
        req_remove(c, r);
        r->cb(r->arg, &a);
        free(r);
    }
    dnsp_answer_free(&a);
    return NULL;
}

static void on_channel_close(void *arg, struct channel *ch, const char *reason)
{
    struct dnsclient *c = arg;
    c->ch = NULL;
    c->lost = 1;
    kick(c);
}

static const struct channel_ops client_ops = {on_answer_record, NULL, on_channel_close};

/* Connect at once (a Unix socket connects or fails without waiting): 0,
 * 1 when the daemon's backlog is full (EAGAIN: try again shortly, the
 * requests' own deadlines bound the wait), -1 with reason. */
static int connect_now(struct dnsclient *c, struct buf *reason)
{
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    if (strlen(c->path) >= sizeof(sa.sun_path)) {
        buf_printf(reason, "dnscache socket path %s is too long", c->path);
        return -1;
    }
    memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (e == EAGAIN)
            return 1;
        buf_printf(reason, "dnscache is not running (%s: %s)", c->path, strerror(e));
        return -1;
    }
    struct channel_opts o = {"dnscache", DNSP_ANSWER_MAX, 0, 0, 0, 0};
    c->ch = channel_open(c->loop, fd, &o, &client_ops, c, reason);
    return c->ch ? 0 : -1;
}

/* Every request not sent yet, in one corked batch. */
static void send_unsent(struct dnsclient *c)
{
    struct buf out = BUF_INIT;
    channel_cork(c->ch);
    for (struct dnsclient_req *r = c->oldest; r && c->ch; r = r->next) {
        if (r->sent)
            continue;
        buf_clear(&out);
        dnsp_put_lookup(&out, r->id, r->qtype, r->name);
        r->sent = 1;
        channel_send_buf(c->ch, &out); /* a failure closes: handled at the next kick */
    }
    if (c->ch)
        channel_uncork(c->ch);
    buf_free(&out);
}

static void on_kick(uv_timer_t *t)
{
    struct dnsclient *c = t->data;
    if (c->lost)
        handle_loss(c);
    if (!c->oldest)
        return;
    if (!c->ch) {
        struct buf reason = BUF_INIT;
        int rc = connect_now(c, &reason);
        if (rc < 0)
            fail_all(c, buf_cstr(&reason));
        else if (rc > 0)
            uv_timer_start(&c->kick, on_kick, CONNECT_RETRY_MS, 0);
        buf_free(&reason);
    }
    if (c->ch)
        send_unsent(c);
}

static void on_client_timer(uv_timer_t *t)
{
    struct dnsclient *c = t->data;
    uint64_t now = uv_now(c->loop);
    for (struct dnsclient_req *r = c->oldest; r && r->deadline <= now; r = r->next)
        r->doomed = 1;
    fail_doomed(c, "dnscache did not answer in time");
}

/* -------------------------------------------------------------- public ---- */

struct dnsclient *dnsclient_new(uv_loop_t *loop, const char *socket_path, uint64_t timeout_ms)
{
    struct dnsclient *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->path = xstrdup(socket_path);
    c->timeout_ms = timeout_ms ? timeout_ms : 60000;
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->kick);
    c->timer.data = c->kick.data = c;
    c->open_handles = 2;
    return c;
}

struct dnsclient_req *dnsclient_lookup(struct dnsclient *c, uint32_t qtype, const char *name,
                                       dnsclient_cb cb, void *arg)
{
    size_t n = strlen(name);
    struct dnsclient_req *r = xcalloc(1, sizeof(*r) + n + 1);
    memcpy(r->name, name, n + 1);
    r->c = c;
    r->id = next_free_id(c);
    r->qtype = qtype;
    r->cb = cb;
    r->arg = arg;
    r->deadline = uv_now(c->loop) + c->timeout_ms;
    table_insert(c, r);
    r->prev = c->newest;
    if (c->newest)
        c->newest->next = r;
    else
        c->oldest = r;
    c->newest = r;
    if (!uv_is_active((uv_handle_t *)&c->timer))
        uv_timer_start(&c->timer, on_client_timer, 1000, 1000);
    kick(c);
    return r;
}

void dnsclient_cancel(struct dnsclient_req *r)
{
    if (r->detached) { /* its failure is being called back: skip it there */
        r->cb = NULL;
        return;
    }
    req_remove(r->c, r);
    free(r);
}

void dnsclient_set_last_id(struct dnsclient *c, uint32_t id)
{
    c->next_id = id;
}

static void on_client_handle_closed(uv_handle_t *h)
{
    struct dnsclient *c = h->data;
    if (--c->open_handles == 0) {
        free(c->path);
        free(c);
    }
}

void dnsclient_free(struct dnsclient *c)
{
    if (!c)
        return;
    for (struct dnsclient_req *r = c->oldest, *next; r; r = next) {
        next = r->next;
        dnsclient_cancel(r);
    }
    channel_close(c->ch);
    c->ch = NULL;
    free(c->table);
    c->table = NULL;
    uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->kick, on_client_handle_closed);
}
