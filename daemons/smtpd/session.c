/*
 * session — one SMTP client of onehop-smtpd: the TCP connection (libuv),
 * its timer, optional TLS, and the protocol engine (smtp_proto.h) fed with
 * what the client sends. Each accepted message goes to the queue server
 * (qclient.h) as it arrives; "250 ... queued as ID" is written only when
 * INJ_OK came back, i.e. after the group commit (ARCHITECTURE "The queue").
 *
 * Limits (SPEC 3): smtpd_connection_limit sessions at once and
 * smtpd_client_connection_limit from one address (421 4.7.0 and closed);
 * smtpd_timeout for every command and every piece of content (421 4.4.2);
 * the engine's own line, size and error limits. While its message waits
 * for the commit a client is read for one more chunk at most (what it
 * sends waits in the engine), and not while the queue channel is
 * congested, so no client makes smtpd buffer without bound. Replies go
 * out in one write per batch, at once where the socket takes them.
 *
 * Log lines (SPEC 8, Postfix's wording): "connect from NAME[ADDR]",
 * "ID: client=NAME[ADDR]" (written under smtpd's name by the queue server
 * at the commit, from the client attribute, so that it precedes the
 * queue's from= line as pflogsumm wants), "NOQUEUE: reject: CMD from NAME[ADDR]: REPLY;
 * from=<S> proto=P helo=<H>", "disconnect from NAME[ADDR] COUNTS". NAME
 * is the client's forward-confirmed PTR name (clientname.h, through the
 * dnscache), else "unknown"; the greeting waits for it at most
 * dns_lookup_timeout, other sessions not at all (the look-up is a request
 * on the loop). The same name goes into the Received: header.
 *
 * Must never: answer 250 to DATA before INJ_OK, write to a closed handle,
 * or leave a transaction open in the queue server after its session ended.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mem.h"
#include "smtpd/clientname.h"
#include "smtpd/received.h"
#include "smtpd/smtp_proto.h"
#include "smtpd/smetrics.h"
#include "smtpd/smtpd.h"
#include "tls_mem.h"

struct session {
    struct session *next, *prev;
    struct smtpd *d;
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct smtp_proto p;
    char *hostname;
    char *name;                /* the client's confirmed name, or "unknown" */
    struct clientname *naming; /* the look-up before the greeting */
    struct sockaddr_storage peer;
    char addr[64]; /* "127.0.0.1", "IPv6:::1" for Received: */
    char ip[64];   /* as logged */
    struct qtxn *qt;
    struct tls_mem *tls; /* after STARTTLS */
    int tls_handshake;   /* after STARTTLS, until the handshake completed */
    struct buf tls_plain;
    int reading, paused_by_queue;
    int closed;  /* uv_close called */
    int handles; /* handles still open */
    unsigned writes;
    int stop_after_commit;
};

struct write_req {
    uv_write_t req;
    struct session *s;
    char *data;
};

static void session_close(struct session *s);

/* ---------------------------------------------------------------- output ---- */
static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct session *s = w->s;
    free(w->data);
    free(w);
    s->writes--;
    if (status < 0 && !s->closed)
        return session_close(s);
    if (s->p.closing && s->writes == 0 && !s->closed)
        session_close(s);
}

/* Write b (emptied): at once when nothing is queued before it and the socket
 * takes it (uv_try_write: no request, no copy, no change to the poll set),
 * else what is left is copied into a write request. */
static void write_raw(struct session *s, struct buf *b)
{
    if (!b->len || s->closed)
        return;
    size_t done = 0;
    if (s->writes == 0) {
        uv_buf_t all = uv_buf_init(b->s, (unsigned)b->len);
        int n = uv_try_write((uv_stream_t *)&s->tcp, &all, 1);
        if (n < 0 && n != UV_EAGAIN) {
            buf_clear(b);
            return session_close(s);
        }
        done = n > 0 ? (size_t)n : 0;
    }
    if (done < b->len) {
        struct write_req *w = xmalloc(sizeof(*w));
        w->s = s;
        w->data = xmalloc(b->len - done);
        memcpy(w->data, b->s + done, b->len - done);
        uv_buf_t ub = uv_buf_init(w->data, (unsigned)(b->len - done));
        s->writes++;
        if (uv_write(&w->req, (uv_stream_t *)&s->tcp, &ub, 1, on_written) < 0) {
            s->writes--;
            free(w->data);
            free(w);
            buf_clear(b);
            return session_close(s);
        }
    }
    buf_clear(b);
}

/* Write the engine's replies (encrypted once TLS runs); close after QUIT/421. */
static void flush(struct session *s)
{
    if (s->closed)
        return;
    if (s->tls && !s->tls_handshake && s->p.out.len) {
        const char *why = NULL;
        struct buf cipher = BUF_INIT;
        if (tls_mem_write(s->tls, s->p.out.s, s->p.out.len, &why) != 0)
            log_warn("TLS write to %s: %s", s->ip, why);
        buf_clear(&s->p.out);
        tls_mem_take_output(s->tls, &cipher);
        write_raw(s, &cipher);
        buf_free(&cipher);
    } else {
        write_raw(s, &s->p.out);
    }
    if (s->p.closing && s->writes == 0)
        session_close(s);
}

/* ---------------------------------------------------------------- reading ---- */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    static char chunk[65536]; /* one loop, one read at a time */
    *b = uv_buf_init(chunk, sizeof(chunk));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);

static void reading(struct session *s, int on)
{
    if (s->closed || s->reading == on)
        return;
    s->reading = on;
    if (on)
        uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    else
        uv_read_stop((uv_stream_t *)&s->tcp);
}

static void arm_timer(struct session *s);

/* After the engine ran: write, and decide whether to read on. */
static void after_input(struct session *s)
{
    flush(s);
    if (s->closed)
        return;
    /* While the message waits for its commit the socket stays read (no
     * poll-set change per message) until the client sends something: that
     * waits in the engine, and reading stops until the commit. */
    int held = s->p.state == SMTP_WAIT && s->p.in.len > 0;
    s->paused_by_queue = qclient_congested(s->d->queue);
    reading(s, !held && !s->paused_by_queue && !s->p.closing);
    arm_timer(s);
}

static void tls_input(struct session *s, const char *data, size_t n)
{
    const char *why = NULL;
    struct buf cipher = BUF_INIT;
    tls_mem_feed(s->tls, data, n);
    if (s->tls_handshake) {
        int rc = tls_mem_handshake(s->tls, &why);
        tls_mem_take_output(s->tls, &cipher);
        write_raw(s, &cipher);
        if (rc < 0) {
            log_info("TLS handshake failed with %s: %s", s->ip, why);
            buf_free(&cipher);
            return session_close(s);
        }
        if (rc == 0) {
            buf_free(&cipher);
            return;
        }
        s->tls_handshake = 0;
        struct buf desc = BUF_INIT;
        tls_mem_describe(s->tls, &desc);
        log_info("TLS connection established from %s[%s]: %s", s->name, s->ip, buf_cstr(&desc));
        buf_free(&desc);
        smtp_proto_tls_started(&s->p);
    }
    buf_clear(&s->tls_plain);
    int rc = tls_mem_read(s->tls, &s->tls_plain, "the client closed the TLS session", &why);
    if (s->tls_plain.len)
        smtp_proto_input(&s->p, s->tls_plain.s, s->tls_plain.len);
    tls_mem_take_output(s->tls, &cipher);
    write_raw(s, &cipher);
    buf_free(&cipher);
    if (rc < 0 && !s->closed)
        session_close(s);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct session *s = st->data;
    if (n < 0 && s->p.state == SMTP_WAIT)
        return reading(s, 0); /* seen again once the commit is answered */
    if (n < 0)
        return session_close(s);
    if (n == 0)
        return;
    if (s->tls)
        tls_input(s, b->base, (size_t)n);
    else
        smtp_proto_input(&s->p, b->base, (size_t)n);
    after_input(s);
}

/* ---------------------------------------------------------------- timeout ---- */
static void on_timeout(uv_timer_t *t)
{
    struct session *s = t->data;
    if (s->p.state == SMTP_WAIT)
        return arm_timer(s); /* the commit is ours to wait for, not the client's */
    log_info("timeout after %s from %s[%s]",
             s->p.state == SMTP_DATA   ? "END-OF-MESSAGE"
             : s->p.state == SMTP_BDAT ? "BDAT"
                                       : "command",
             s->name, s->ip);
    smtp_proto_close(&s->p, "421 4.4.2", "Error: timeout exceeded");
    flush(s);
}

static void arm_timer(struct session *s)
{
    if (!s->closed)
        uv_timer_start(&s->timer, on_timeout, s->d->conf.smtpd_timeout * 1000, 0);
}

/* ------------------------------------------------------------------ hooks ---- */
static const char *hook_mail(void *arg, struct smtp_proto *p)
{
    struct session *s = arg;
    (void)p;
    if (!qclient_up(s->d->queue))
        return "451 4.3.0 Error: queue unavailable, try again later";
    if (s->d->stopping)
        return "421 4.3.2 Error: service shutting down";
    return NULL;
}

static int hook_rcpt(void *arg, struct smtp_proto *p, const char *addr, struct buf *reply)
{
    struct session *s = arg;
    (void)p;
    return relay_check(&s->d->relay, (struct sockaddr *)&s->peer, addr, reply);
}

static void on_queued(void *arg, const char *id, const char *reply)
{
    struct session *s = arg;
    struct buf line = BUF_INIT;
    s->qt = NULL;
    if (id) { /* its "ID: client=" line: the queue's, before its from= (queue_place.c) */
        smetrics_event(SM_QUEUED);
        buf_printf(&line, "250 2.0.0 Ok: queued as %s", id);
    } else {
        log_warn("NOQUEUE: reject: %s from %s[%s]: %s", s->p.bdat_txn ? "BDAT" : "DATA", s->name,
                 s->ip, reply);
        smetrics_event(SM_REJECT);
        buf_sets(&line, reply);
    }
    smtp_proto_data_result(&s->p, buf_cstr(&line));
    buf_free(&line);
    if (s->stop_after_commit)
        smtp_proto_close(&s->p, "421 4.3.2", "Service shutting down");
    if (!s->p.running)
        after_input(s);
}

static void send_envelope(struct session *s, struct qtxn *qt)
{
    const struct smtp_txn *t = &s->p.txn;
    struct qclient *q = s->d->queue;
    struct buf v = BUF_INIT;
    buf_printf(&v, "%s[%s]", s->name, s->ip);
    qclient_attr(q, qt, "client", buf_cstr(&v));
    qclient_attr(q, qt, "client_address", s->ip);
    qclient_attr(q, qt, "helo", buf_cstr(&s->p.helo));
    qclient_attr(q, qt, "protocol", smtp_proto_protocol(&s->p));
    if (t->envid)
        qclient_attr(q, qt, "envid", t->envid);
    if (t->ret)
        qclient_attr(q, qt, "ret", t->ret);
    for (size_t i = 0; i < t->nrcpt; i++)
        qclient_rcpt(q, qt, t->rcpt[i], t->orcpt[i], t->notify[i]);
    buf_free(&v);
}

static void add_received(struct session *s)
{
    struct buf h = BUF_INIT, tls = BUF_INIT;
    if (s->tls)
        tls_mem_describe(s->tls, &tls);
    struct received_info ri = {
        buf_cstr(&s->p.helo),
        s->name,
        s->addr,
        s->hostname,
        smtp_proto_protocol(&s->p),
        s->tls ? buf_cstr(&tls) : NULL,
        s->p.txn.nrcpt == 1 ? s->p.txn.rcpt[0] : NULL,
        time(NULL),
    };
    received_header(&h, &ri);
    qclient_data(s->d->queue, s->qt, h.s, h.len);
    buf_free(&h);
    buf_free(&tls);
}

static int hook_data_begin(void *arg, struct smtp_proto *p, struct buf *reply)
{
    struct session *s = arg;
    s->qt = qclient_begin(s->d->queue, buf_cstr(&p->txn.sender), on_queued, s);
    if (!s->qt) {
        buf_sets(reply, qclient_up(s->d->queue)
                            ? "451 4.3.2 Error: queue server busy, try again later"
                            : "451 4.3.0 Error: queue unavailable, try again later");
        return -1;
    }
    send_envelope(s, s->qt);
    add_received(s);
    return 0;
}

static void hook_data(void *arg, const char *p, size_t n)
{
    struct session *s = arg;
    if (s->qt)
        qclient_data(s->d->queue, s->qt, p, n);
}

static void hook_data_end(void *arg)
{
    struct session *s = arg;
    qclient_end(s->d->queue, s->qt); /* on_queued follows, perhaps at once */
}

static void hook_data_abort(void *arg)
{
    struct session *s = arg;
    if (s->qt)
        qclient_abort(s->d->queue, s->qt);
    s->qt = NULL;
}

static void hook_starttls(void *arg)
{
    struct session *s = arg;
    flush(s); /* the 220 in the clear; every later byte is TLS */
    const char *why = "STARTTLS turned off by a reload";
    s->tls = s->d->tls ? tls_mem_new(s->d->tls, 1, NULL, &why) : NULL;
    if (!s->tls) {
        log_warn("cannot start TLS for %s: %s", s->ip, why);
        return session_close(s);
    }
    s->tls_handshake = 1;
}

static void hook_reject(void *arg, struct smtp_proto *p, const char *cmd, const char *line)
{
    struct session *s = arg;
    struct buf up = BUF_INIT;
    for (const char *c = cmd; *c; c++)
        buf_addc(&up, (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c));
    smetrics_event(SM_REJECT);
    log_info("NOQUEUE: reject: %s from %s[%s]: %s; from=<%s> proto=%s helo=<%s>", buf_cstr(&up),
             s->name, s->ip, line, buf_cstr(&p->txn.sender), smtp_proto_protocol(p),
             buf_cstr(&p->helo));
    buf_free(&up);
}

static const struct smtp_hooks hooks = {
    hook_mail,     hook_rcpt,       hook_data_begin, hook_data,
    hook_data_end, hook_data_abort, hook_starttls,   hook_reject,
};

/* --------------------------------------------------------------- lifetime ---- */
static void on_handle_closed(uv_handle_t *h)
{
    struct session *s = h->data;
    if (--s->handles > 0)
        return;
    struct smtpd *d = s->d;
    smtp_proto_free(&s->p);
    tls_mem_free(s->tls);
    buf_free(&s->tls_plain);
    free(s->hostname);
    free(s->name);
    free(s);
    if (d->stopping && d->nsessions == 0)
        smtpd_sessions_gone(d);
}

static void session_close(struct session *s)
{
    if (s->closed)
        return;
    struct buf counts = BUF_INIT;
    smtp_proto_counts(&s->p, &counts);
    log_info("disconnect from %s[%s] %s", s->name, s->ip, buf_cstr(&counts));
    smetrics_event(SM_DISCONNECT);
    buf_free(&counts);
    if (s->qt)
        qclient_forget(s->d->queue, s->qt); /* an open one is aborted */
    s->qt = NULL;
    clientname_cancel(s->naming);
    s->naming = NULL;
    s->closed = 1;
    if (s->prev)
        s->prev->next = s->next;
    else
        s->d->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->d->nsessions--;
    uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

static void peer_text(struct session *s)
{
    char ip[INET6_ADDRSTRLEN] = "unknown";
    if (s->peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&s->peer;
        uv_ip6_name(a6, ip, sizeof(ip));
        snprintf(s->addr, sizeof(s->addr), "IPv6:%s", ip);
    } else if (s->peer.ss_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)&s->peer, ip, sizeof(ip));
        snprintf(s->addr, sizeof(s->addr), "%s", ip);
    }
    snprintf(s->ip, sizeof(s->ip), "%s", ip);
}

static int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    return 0;
}

/* The connection limits: NULL, or why this client is refused. */
static const char *over_limit(struct smtpd *d, const struct session *s)
{
    if (d->nsessions > d->conf.smtpd_connection_limit)
        return "Error: too many connections";
    uint64_t same = 0;
    for (const struct session *o = d->sessions; o; o = o->next)
        if (same_address(&o->peer, &s->peer))
            same++;
    if (same > d->conf.smtpd_client_connection_limit)
        return "Error: too many connections from your address";
    return NULL;
}

/* The name is known (or given up on): the session begins. */
static void session_start(struct session *s)
{
    struct smtpd *d = s->d;
    log_info("connect from %s[%s]", s->name, s->ip);
    smetrics_event(SM_CONNECT);
    const char *refused = over_limit(d, s);
    if (refused) {
        log_warn("refused %s[%s]: %s", s->name, s->ip, refused);
        smetrics_event(SM_REFUSED);
        smtp_proto_close(&s->p, "421 4.7.0", refused);
        flush(s);
        return;
    }
    smtp_proto_greeting(&s->p);
    after_input(s);
}

static void on_client_name(void *arg, const char *name)
{
    struct session *s = arg;
    s->naming = NULL;
    uv_timer_stop(&s->timer);
    if (name) {
        free(s->name);
        s->name = xstrdup(name);
    }
    session_start(s);
}

/* dns_lookup_timeout passed: the greeting waits no longer ("unknown"). */
static void on_naming_timeout(uv_timer_t *t)
{
    struct session *s = t->data;
    clientname_cancel(s->naming);
    s->naming = NULL;
    session_start(s);
}

static void name_the_client(struct session *s)
{
    struct smtpd *d = s->d;
    struct smtp_proto_cfg cfg = {
        s->hostname,
        d->conf.message_size_limit,
        (unsigned)d->conf.smtpd_max_recipients,
        d->conf.smtpd_bare_newline == BARE_NEWLINE_REJECT,
        d->tls != NULL,
        0,
    };
    smtp_proto_init(&s->p, &cfg, &hooks, s); /* a stop meanwhile answers 421 */
    s->naming = clientname_lookup(d->dns, (struct sockaddr *)&s->peer, on_client_name, s);
    if (!s->naming)
        return session_start(s);
    uv_timer_start(&s->timer, on_naming_timeout, d->conf.dns_lookup_timeout * 1000, 0);
}

void session_accept(struct smtpd *d, uv_stream_t *l)
{
    struct session *s = xcalloc(1, sizeof(*s));
    s->d = d;
    s->hostname = xstrdup(d->conf.myhostname);
    s->name = xstrdup("unknown");
    uv_tcp_init(d->loop, &s->tcp);
    uv_timer_init(d->loop, &s->timer);
    s->tcp.data = s->timer.data = s;
    s->handles = 2;
    s->next = d->sessions;
    if (d->sessions)
        d->sessions->prev = s;
    d->sessions = s;
    d->nsessions++;
    int len = sizeof(s->peer);
    if (uv_accept(l, (uv_stream_t *)&s->tcp) != 0 ||
        uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&s->peer, &len) != 0) {
        smtp_proto_init(&s->p, &(struct smtp_proto_cfg){s->hostname, 0, 0, 0, 0, 0}, &hooks, s);
        return session_close(s);
    }
    if (!d->listeners_nodelay)
        uv_tcp_nodelay(&s->tcp, 1); /* else inherited from the listener */
    peer_text(s);
    name_the_client(s);
}

void session_shutdown_all(struct smtpd *d)
{
    struct session *s = d->sessions, *next;
    for (; s; s = next) {
        next = s->next;
        if (s->p.state == SMTP_WAIT) {
            s->stop_after_commit = 1;
            continue;
        }
        smtp_proto_close(&s->p, "421 4.3.2", "Service shutting down");
        flush(s);
        if (!s->closed && s->writes == 0)
            session_close(s);
    }
}

void session_resume_all(struct smtpd *d)
{
    for (struct session *s = d->sessions; s; s = s->next)
        if (s->paused_by_queue && !s->closed)
            after_input(s);
}
