/*
 * dnsclient — blocking and libuv clients of the DNS cache. See dnsclient.h.
 *
 * The asynchronous client keeps its requests in a table indexed by id (ids
 * are handed out in sequence, so id & mask spreads them evenly) and in a
 * list in the order they were sent, so the oldest is found at once for the
 * timeout check, which runs once a second while anything is pending.
 */
#include "dnsclient.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc.h"
#include "mem.h"
#include "safeio.h"

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

static void set_timeouts(int fd, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
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
    set_timeouts(fd, timeout_ms);
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
    int rc = ipc_send(c->fd, out);
    if (rc < 0)
        buf_printf(err, "cannot send to dnscache: %s", strerror(errno));
    buf_free(out);
    return rc;
}

/* The next record; a DNSP_ERROR record becomes the error text. */
static int recv_record(struct dnsc *c, struct buf *err)
{
    const char *why = NULL;
    int rc = ipc_recv(c->fd, DNSP_ANSWER_MAX, &c->rec, &why);
    if (rc == 0) {
        buf_adds(err, "dnscache closed the connection");
        return -1;
    }
    if (rc < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
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

enum conn_state { DISCONNECTED, CONNECTING, CONNECTED };

struct dnsclient_req {
    struct dnsclient *c;
    struct dnsclient_req *id_next;     /* in the id table */
    struct dnsclient_req *prev, *next; /* in sending order */
    uint32_t id, qtype;
    uint64_t deadline;
    int sent;
    dnsclient_cb cb;
    void *arg;
    char name[];
};

struct dnsclient {
    uv_loop_t *loop;
    char *path;
    uint64_t timeout_ms;
    enum conn_state state;
    uv_pipe_t *pipe; /* allocated per connection */
    uv_connect_t *connecting;
    uv_timer_t timer;
    struct buf in;
    struct dnsclient_req **table;
    size_t table_size, count;
    struct dnsclient_req *oldest, *newest;
    uint32_t next_id;
};

struct client_write {
    uv_write_t req;
    struct buf data;
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

static void req_fail(struct dnsclient *c, struct dnsclient_req *r, const char *reason)
{
    struct dnsp_answer a = {r->id,          r->qtype, r->name, r->name, DNS_STATUS_TEMPFAIL,
                            (char *)reason, 0,        0,       NULL,    0};
    req_remove(c, r);
    r->cb(r->arg, &a);
    free(r);
}

/* Fail every request sent or waiting (connection lost or never made). */
static void fail_all(struct dnsclient *c, const char *reason)
{
    /* Only those queued now: callbacks may queue new ones (higher ids, at
     * the end of the list) or cancel others. */
    uint32_t last = c->newest ? c->newest->id : 0;
    while (c->oldest && c->oldest->id <= last)
        req_fail(c, c->oldest, reason);
}

static void on_pipe_closed(uv_handle_t *h)
{
    free(h);
}

static void drop_connection(struct dnsclient *c, const char *reason)
{
    if (c->pipe) {
        uv_close((uv_handle_t *)c->pipe, on_pipe_closed);
        c->pipe = NULL;
    }
    c->state = DISCONNECTED;
    buf_clear(&c->in);
    fail_all(c, reason);
}

static void on_client_written(uv_write_t *req, int status)
{
    struct client_write *w = (struct client_write *)req;
    buf_free(&w->data);
    free(w);
}

static void send_request(struct dnsclient *c, struct dnsclient_req *r)
{
    struct client_write *w = xcalloc(1, sizeof(*w));
    dnsp_put_lookup(&w->data, r->id, r->qtype, r->name);
    uv_buf_t b = uv_buf_init(w->data.s, (unsigned)w->data.len);
    r->sent = 1;
    if (uv_write(&w->req, (uv_stream_t *)c->pipe, &b, 1, on_client_written) != 0) {
        buf_free(&w->data);
        free(w);
    }
}

static void handle_answer(struct dnsclient *c, const char *rec, size_t len)
{
    struct dnsp_answer a;
    const char *why;
    if (dnsp_get_answer(rec, len, &a, &why) < 0) {
        drop_connection(c, "bad answer from dnscache");
        return;
    }
    struct dnsclient_req *r = table_find(c, a.id);
    if (r) { /* else: timed out or cancelled meanwhile */
        req_remove(c, r);
        r->cb(r->arg, &a);
        free(r);
    }
    dnsp_answer_free(&a);
}

static void on_client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct dnsclient *c = h->data;
    buf_reserve(&c->in, 65536);
    *b = uv_buf_init(c->in.s + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void on_client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct dnsclient *c = st->data;
    size_t off = 0, reclen;
    const char *why;
    if (n < 0) {
        drop_connection(c, "connection to dnscache lost");
        return;
    }
    c->in.len += (size_t)n;
    while (c->state == CONNECTED) {
        int rc = ipc_frame(c->in.s + off, c->in.len - off, DNSP_ANSWER_MAX, &reclen, &why);
        if (rc == 0)
            break;
        if (rc < 0) {
            drop_connection(c, "bad record from dnscache");
            return;
        }
        handle_answer(c, c->in.s + off, reclen);
        off += reclen;
    }
    if (c->state == CONNECTED)
        buf_consume(&c->in, off);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct dnsclient *c = req->data;
    free(req);
    if (!c) /* the client was freed meanwhile */
        return;
    c->connecting = NULL;
    if (status < 0) {
        struct buf reason = BUF_INIT;
        buf_printf(&reason, "dnscache is not running (%s: %s)", c->path, uv_strerror(status));
        drop_connection(c, buf_cstr(&reason));
        buf_free(&reason);
        return;
    }
    c->state = CONNECTED;
    uv_read_start((uv_stream_t *)c->pipe, on_client_alloc, on_client_read);
    for (struct dnsclient_req *r = c->oldest; r; r = r->next)
        if (!r->sent)
            send_request(c, r);
}

static void start_connect(struct dnsclient *c)
{
    uv_connect_t *req = xcalloc(1, sizeof(*req));
    c->pipe = xcalloc(1, sizeof(*c->pipe));
    uv_pipe_init(c->loop, c->pipe, 0);
    c->pipe->data = c;
    req->data = c;
    c->connecting = req;
    c->state = CONNECTING;
    uv_pipe_connect(req, c->pipe, c->path, on_connected);
}

static void on_client_timer(uv_timer_t *t)
{
    struct dnsclient *c = t->data;
    uint64_t now = uv_now(c->loop);
    while (c->oldest && c->oldest->deadline <= now)
        req_fail(c, c->oldest, "dnscache did not answer in time");
}

struct dnsclient *dnsclient_new(uv_loop_t *loop, const char *socket_path, uint64_t timeout_ms)
{
    struct dnsclient *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->path = xstrdup(socket_path);
    c->timeout_ms = timeout_ms ? timeout_ms : 60000;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    return c;
}

struct dnsclient_req *dnsclient_lookup(struct dnsclient *c, uint32_t qtype, const char *name,
                                       dnsclient_cb cb, void *arg)
{
    size_t n = strlen(name);
    struct dnsclient_req *r = xcalloc(1, sizeof(*r) + n + 1);
    memcpy(r->name, name, n + 1);
    r->c = c;
    r->id = ++c->next_id;
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
    if (c->state == CONNECTED)
        send_request(c, r);
    else if (c->state == DISCONNECTED)
        start_connect(c);
    return r;
}

void dnsclient_cancel(struct dnsclient_req *r)
{
    req_remove(r->c, r);
    free(r);
}

static void on_client_timer_closed(uv_handle_t *h)
{
    struct dnsclient *c = h->data;
    free(c->path);
    free(c);
}

void dnsclient_free(struct dnsclient *c)
{
    if (!c)
        return;
    for (struct dnsclient_req *r = c->oldest, *next; r; r = next) {
        next = r->next;
        dnsclient_cancel(r);
    }
    if (c->connecting)
        c->connecting->data = NULL;
    if (c->pipe) {
        uv_close((uv_handle_t *)c->pipe, on_pipe_closed);
        c->pipe = NULL;
    }
    c->state = DISCONNECTED;
    free(c->table);
    buf_free(&c->in);
    uv_close((uv_handle_t *)&c->timer, on_client_timer_closed);
}
