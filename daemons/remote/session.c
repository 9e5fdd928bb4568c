/*
 * session — one SMTP client session. See session.h.
 *
 * The dialogue is driven by replies: every command we send is queued in
 * `pend` with the stage it belongs to, and each reply is matched with the
 * oldest command still waiting (RFC 2920 3.1: replies come in the order
 * of the commands). Without PIPELINING only one command waits at a time.
 */
#include "remote/session.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "remote/classify.h"
#include "remote/smtp_wire.h"
#include "remote/tls.h"
#include "remote/xmetrics.h"

#define CONTENT_CHUNK (64 * 1024)
#define QUIT_WAIT_MS 2000

struct pending {
    enum smtp_stage stage;
    size_t rcpt; /* RCPT: the recipient's index in the delivery */
};

struct session {
    struct delivery *d; /* NULL while idle (D7) */
    struct remote_env *env;
    struct session *idle_prev, *idle_next;
    int idle;         /* in env->idle: detached from any delivery (D7) */
    int rset_pending; /* RSET sent: its reply decides whether to keep it */
    int rset_sent;    /* RSET pipelined after the final dot (RFC 2920 3.1) */
    unsigned uses;    /* transactions on this connection */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_shutdown_t shutdown;
    int connected; /* TCP up: outcomes name the relay */
    int ended;     /* the outcome is reported; only QUIT and the close remain */
    int closing;
    int handles; /* open libuv handles */
    struct buf relay;
    struct smtp_reader rd;
    struct smtp_reply rep;
    struct smtp_ext ext;
    enum smtp_stage stage; /* what we wait for (timeouts, lost connections) */
    struct pending pend[RP_RCPT_MAX + 2];
    size_t phead, ptail;
    size_t txn[RP_RCPT_MAX]; /* the transaction's recipients */
    size_t ntxn, next_rcpt, accepted;
    int utf8_txn;  /* this transaction says SMTPUTF8 (RFC 6531 3.4) */
    uint64_t sent; /* content bytes read and written */
    struct smtp_dot dot;
    int dot_sent;
    struct tls_conn *tls; /* after STARTTLS (RFC 3207) */
    int tls_handshaking;  /* the handshake is under way */
    int starttls_sent;    /* waiting for the 220 to STARTTLS */
    struct buf tls_state; /* "TLSv1.3 CIPHER" once established */
    char rbuf[16384];
};

struct write_req {
    uv_write_t req;
    struct buf data;
    struct session *s;
    int content; /* a content chunk: write the next one when this is done */
};

static void session_fail(struct session *s, enum smtp_stage stage, enum smtp_event event,
                         const char *reason);
static void send_content_chunk(struct session *s);

static uint64_t timeout_ms(const struct session *s, enum smtp_stage stage)
{
    const struct conf *c = s->env->conf;
    switch (stage) {
    case STAGE_CONNECT:
        return c->smtp_connect_timeout * 1000;
    case STAGE_GREETING:
        return c->smtp_greeting_timeout * 1000;
    case STAGE_CONTENT:
        return c->smtp_data_timeout * 1000;
    default:
        return c->smtp_command_timeout * 1000;
    }
}

static void on_timeout(uv_timer_t *t)
{
    struct session *s = t->data;
    struct buf why = BUF_INIT;
    if (s->stage == STAGE_CONNECT)
        buf_printf(&why, "connect to %s: Connection timed out", s->relay.s);
    else
        buf_printf(&why, "conversation with %s timed out while waiting for the reply to %s",
                   s->relay.s, smtp_stage_name(s->stage));
    session_fail(s, s->stage, EVENT_TIMEOUT, why.s);
    buf_free(&why);
}

/* Wait for stage's reply (or connection) under its timeout. */
static void wait_for(struct session *s, enum smtp_stage stage)
{
    s->stage = stage;
    uv_timer_start(&s->timer, on_timeout, timeout_ms(s, stage), 0);
}

/* ------------------------------------------------------------ closing ---- */

static void on_handle_closed(uv_handle_t *h)
{
    struct session *s = h->data;
    if (--s->handles > 0)
        return;
    struct delivery *d = s->d;
    smtp_reader_free(&s->rd);
    smtp_reply_free(&s->rep);
    buf_free(&s->relay);
    buf_free(&s->tls_state);
    tls_free(s->tls);
    free(s);
    if (d)
        delivery_session_ended(d);
}

static void idle_unlink(struct session *s)
{
    if (!s->idle)
        return;
    if (s->idle_prev)
        s->idle_prev->idle_next = s->idle_next;
    else
        s->env->idle = s->idle_next;
    if (s->idle_next)
        s->idle_next->idle_prev = s->idle_prev;
    s->idle_prev = s->idle_next = NULL;
    s->idle = 0;
}

static void session_close(struct session *s)
{
    if (s->closing)
        return;
    idle_unlink(s);
    s->closing = 1;
    s->ended = 1;
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    session_close(req->data);
}

static void on_quit_timeout(uv_timer_t *t)
{
    session_close(t->data);
}

static int send_text(struct session *s, struct buf *text, int content);

/* The outcome is reported: say QUIT (RFC 5321 4.1.1.10) and close once it
 * is written; a peer that does not take it within QUIT_WAIT_MS is closed. */
static void session_quit(struct session *s)
{
    if (s->closing)
        return;
    s->ended = 1;
    if (!s->connected) {
        session_close(s);
        return;
    }
    struct buf quit = BUF_INIT;
    buf_adds(&quit, "QUIT\r\n");
    send_text(s, &quit, 0);
    uv_timer_start(&s->timer, on_quit_timeout, QUIT_WAIT_MS, 0);
    s->shutdown.data = s;
    if (uv_shutdown(&s->shutdown, (uv_stream_t *)&s->tcp, on_shutdown) < 0)
        session_close(s);
}

/* ---------------------------------------------------- reuse (SPEC D7) ---- */

static void on_idle_timeout(uv_timer_t *t)
{
    struct session *s = t->data;
    idle_unlink(s);
    session_quit(s); /* smtp_connection_idle is over, or RSET got no answer in time */
}

/* The transaction is over and the connection sound: RSET (RFC 5321
 * 4.1.1.5), and keep it when the server agrees (on_rset_reply), else QUIT.
 * The delivery hears that this address is done with once the connection
 * is kept or closed, so that its next message can find it. */
static int will_keep(const struct session *s)
{
    const struct conf *c = s->env->conf;
    return s->uses < c->smtp_connection_reuse_limit && c->smtp_connection_idle != 0;
}

static void session_done(struct session *s)
{
    const struct conf *c = s->env->conf;
    int sent = s->rset_sent;
    s->rset_sent = 0;
    if (!will_keep(s)) {
        session_quit(s);
        return;
    }
    s->rset_pending = 1;
    s->stage = STAGE_CONTENT; /* a failure now concerns no recipient: none is in_txn */
    if (!sent) {
        struct buf out = BUF_INIT;
        buf_adds(&out, "RSET\r\n");
        send_text(s, &out, 0);
    }
    uv_timer_start(&s->timer, on_idle_timeout, c->smtp_command_timeout * 1000, 0);
}

static void on_rset_reply(struct session *s)
{
    s->rset_pending = 0;
    if (s->rep.code / 100 != 2) {
        session_quit(s);
        return;
    }
    struct delivery *d = s->d;
    s->d = NULL;
    s->ended = 1;
    s->idle = 1;
    s->idle_prev = NULL;
    s->idle_next = s->env->idle;
    if (s->env->idle)
        s->env->idle->idle_prev = s;
    s->env->idle = s;
    uv_timer_start(&s->timer, on_idle_timeout, s->env->conf->smtp_connection_idle * 1000, 0);
    delivery_session_ended(d);
}

/* Bytes or an end of file on an idle connection: the server closed it, or
 * talks out of turn. */
static void on_idle_read(struct session *s)
{
    session_close(s);
}

/* An idle connection to exactly this relay (host[ip]:port), taken out of
 * the cache, or NULL. */
static struct session *take_idle(struct remote_env *env, const char *relay)
{
    for (struct session *s = env->idle; s; s = s->idle_next)
        if (strcmp(s->relay.s, relay) == 0) {
            idle_unlink(s);
            return s;
        }
    return NULL;
}

static void begin_transaction(struct session *s);

/* ------------------------------------------------------------ outcomes ---- */

/* Stages from DATA on concern the recipients RCPT accepted; before, every
 * open recipient of the transaction (all open ones). */
static int concerned(const struct session *s, size_t i, enum smtp_stage stage)
{
    const struct rcpt_state *r = &s->d->rcpt[i];
    if (r->settled)
        return 0;
    return stage < STAGE_DATA || r->in_txn;
}

static void apply_to_open(struct session *s, enum smtp_stage stage, const struct d4_row *row,
                          const char *reason)
{
    const char *relay = s->connected ? s->relay.s : "";
    for (size_t i = 0; i < s->d->job.nrcpt; i++) {
        if (!concerned(s, i, stage))
            continue;
        if (row && row->action == ACT_TXN_BOUNCE)
            delivery_settle(s->d, i, RP_PERM, reason, relay);
        else
            delivery_note(s->d, i, row ? row->last_resort : RP_TEMP, reason, relay);
    }
}

/* A failure at stage: the D4 row decides; the session ends. */
static void session_fail(struct session *s, enum smtp_stage stage, enum smtp_event event,
                         const char *reason)
{
    if (s->ended)
        return;
    const struct d4_row *row = d4_classify(stage, event);
    if (event == EVENT_REFUSED || event == EVENT_421 ||
        (stage == STAGE_CONNECT && event == EVENT_TIMEOUT))
        s->d->congested = 1; /* the receiver turns us away: per-destination feedback */
    struct buf text = BUF_INIT;
    buf_adds(&text, reason);
    if (row && row->maybe_delivered)
        buf_adds(&text, " (the message may have been delivered: it may arrive twice)");
    apply_to_open(s, stage, row, text.s);
    buf_free(&text);
    for (size_t k = 0; k < s->ntxn; k++)
        s->d->rcpt[s->txn[k]].in_txn = 0;
    if (event == EVENT_LOST || event == EVENT_TIMEOUT || event == EVENT_421 ||
        stage == STAGE_CONNECT)
        session_close(s); /* nothing more to say on this connection */
    else
        session_quit(s);
}

/* "host RELAY said: REPLY (in reply to STAGE command)" */
static void reply_reason(struct session *s, enum smtp_stage stage, struct buf *out)
{
    if (stage == STAGE_GREETING)
        buf_printf(out, "host %s refused to talk to me: %s", s->relay.s, s->rep.text.s);
    else
        buf_printf(out, "host %s said: %s (in reply to %s command)", s->relay.s, s->rep.text.s,
                   smtp_stage_name(stage));
}

static void fail_reply(struct session *s, enum smtp_stage stage)
{
    struct buf why = BUF_INIT;
    reply_reason(s, stage, &why);
    session_fail(s, stage, d4_event_of_code(s->rep.code), why.s);
    buf_free(&why);
}

static void lost(struct session *s, const char *what)
{
    struct buf why = BUF_INIT;
    buf_printf(&why, "lost connection with %s while waiting for the reply to %s (%s)", s->relay.s,
               smtp_stage_name(s->stage), what);
    session_fail(s, s->stage, EVENT_LOST, why.s);
    buf_free(&why);
}

/* ------------------------------------------------------------- writing ---- */

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct session *s = w->s;
    int content = w->content;
    buf_free(&w->data);
    free(w);
    if (s->closing || s->ended)
        return;
    if (status < 0) {
        lost(s, uv_strerror(status));
        return;
    }
    if (content) {
        wait_for(s, STAGE_CONTENT); /* smtp_data_timeout is per write */
        send_content_chunk(s);
    }
}

static int write_raw(struct session *s, struct buf *text, int content);

/* Write text (taken over: emptied), encrypted once TLS is up: 1 when the
 * socket took it all at once, 0 when a write request holds the rest
 * (on_written follows), -1 when the connection is lost (reported). */
static int send_text(struct session *s, struct buf *text, int content)
{
    if (s->tls && !s->tls_handshaking) {
        const char *why;
        struct buf cipher = BUF_INIT;
        int rc = tls_write(s->tls, text->s, text->len, &why);
        buf_free(text);
        if (rc < 0) {
            buf_free(&cipher);
            lost(s, why);
            return -1;
        }
        tls_take_output(s->tls, &cipher);
        return write_raw(s, &cipher, content);
    }
    return write_raw(s, text, content);
}

/* uv_try_write first (no request, no copy, no change to the poll set: it
 * refuses while older writes are queued, so the order holds), then a write
 * request for what the socket did not take. */
static int write_raw(struct session *s, struct buf *text, int content)
{
    uv_buf_t all = uv_buf_init(text->s, (unsigned)text->len);
    int n = text->len ? uv_try_write((uv_stream_t *)&s->tcp, &all, 1) : 0;
    if (n < 0 && n != UV_EAGAIN) {
        buf_free(text);
        if (!s->ended)
            lost(s, uv_strerror(n));
        return -1;
    }
    if (n >= 0 && (size_t)n == text->len) {
        buf_free(text);
        return 1;
    }
    struct write_req *w = xcalloc(1, sizeof(*w));
    if (n > 0)
        buf_consume(text, (size_t)n);
    w->data = *text;
    *text = (struct buf)BUF_INIT;
    w->s = s;
    w->content = content;
    uv_buf_t b = uv_buf_init(w->data.s, (unsigned)w->data.len);
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_written);
    if (rc < 0) {
        buf_free(&w->data);
        free(w);
        if (!s->ended)
            lost(s, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static void push(struct session *s, enum smtp_stage stage, size_t rcpt)
{
    s->pend[s->ptail].stage = stage;
    s->pend[s->ptail].rcpt = rcpt;
    s->ptail++;
}

static void add_mail(struct session *s, struct buf *out)
{
    const struct delivery *d = s->d;
    buf_printf(out, "MAIL FROM:<%s>", d->job.sender);
    if (s->ext.has_size)
        buf_printf(out, " SIZE=%llu", (unsigned long long)d->wire_size); /* RFC 1870 */
    if (s->ext.eightbitmime)
        buf_adds(out, " BODY=8BITMIME"); /* RFC 6152 */
    if (s->utf8_txn)
        buf_adds(out, " SMTPUTF8"); /* RFC 6531 3.4 */
    buf_adds(out, "\r\n");
    push(s, STAGE_MAIL, 0);
}

static void add_rcpt(struct session *s, size_t i, struct buf *out)
{
    const struct rp_rcpt *r = &s->d->job.rcpt[i];
    buf_printf(out, "RCPT TO:<%s>", r->address);
    if (s->ext.dsn && r->notify) { /* RFC 3461 4.1 */
        if (r->notify & RP_NOTIFY_NEVER)
            buf_adds(out, " NOTIFY=NEVER");
        else
            buf_printf(out, " NOTIFY=%s%s%s%s%s", r->notify & RP_NOTIFY_SUCCESS ? "SUCCESS" : "",
                       (r->notify & RP_NOTIFY_SUCCESS) && (r->notify & 12) ? "," : "",
                       r->notify & RP_NOTIFY_FAILURE ? "FAILURE" : "",
                       (r->notify & RP_NOTIFY_FAILURE) && (r->notify & RP_NOTIFY_DELAY) ? "," : "",
                       r->notify & RP_NOTIFY_DELAY ? "DELAY" : "");
    }
    /* an ORCPT with UTF-8 (RFC 6533) only where SMTPUTF8 is spoken */
    if (s->ext.dsn && r->orcpt[0] && (s->utf8_txn || !smtp_text_is_utf8(r->orcpt)))
        buf_printf(out, " ORCPT=%s", r->orcpt);
    buf_adds(out, "\r\n");
    push(s, STAGE_RCPT, i);
}

static void add_data(struct session *s, struct buf *out)
{
    buf_adds(out, "DATA\r\n");
    push(s, STAGE_DATA, 0);
}

/* Send what waits next: the whole envelope with PIPELINING, else one
 * command. */
static void send_commands(struct session *s, struct buf *out)
{
    send_text(s, out, 0);
    if (s->phead < s->ptail)
        wait_for(s, s->pend[s->phead].stage);
}

/* RFC 6531 3.4: an address with UTF-8 cannot go to a server that does not
 * offer SMTPUTF8 (5.6.7). For that host only (the D4 row), as SIZE: the
 * next address may take it. A sender with UTF-8 ends the session for every
 * recipient; a recipient with UTF-8 is left out of the transaction, the
 * others go on. 1 when the session is over. */
static int without_smtputf8(struct session *s)
{
    struct delivery *d = s->d;
    struct buf why = BUF_INIT;
    buf_printf(&why, "5.6.7 SMTPUTF8 is required, but was not offered by host %s", s->relay.s);
    if (d->utf8_sender) {
        session_fail(s, STAGE_MAIL, EVENT_NO_UTF8, why.s);
        buf_free(&why);
        return 1;
    }
    const struct d4_row *row = d4_classify(STAGE_MAIL, EVENT_NO_UTF8);
    size_t kept = 0;
    for (size_t k = 0; k < s->ntxn; k++) {
        size_t i = s->txn[k];
        if (d->rcpt[i].utf8)
            delivery_note(d, i, row->last_resort, why.s, s->relay.s);
        else
            s->txn[kept++] = i;
    }
    s->ntxn = kept;
    buf_free(&why);
    return 0;
}

static void begin_transaction(struct session *s)
{
    struct delivery *d = s->d;
    s->ntxn = s->accepted = s->next_rcpt = 0;
    s->phead = s->ptail = 0;
    int utf8_envelope = d->utf8_sender;
    for (size_t i = 0; i < d->job.nrcpt; i++)
        if (!d->rcpt[i].settled) {
            s->txn[s->ntxn++] = i;
            utf8_envelope |= d->rcpt[i].utf8;
        }
    /* SMTPUTF8 when offered and the envelope or the header has UTF-8 (RFC
     * 6531 3.4, 6532); a header alone without it goes as 8-bit text, as
     * Postfix does: the queue keeps no record of a client's SMTPUTF8. */
    s->utf8_txn = s->ext.smtputf8 && (utf8_envelope || d->utf8_header);
    if (utf8_envelope && !s->ext.smtputf8 && s->ntxn && without_smtputf8(s))
        return;
    if (s->ntxn == 0) {
        session_done(s);
        return;
    }
    if (s->ext.has_size && s->ext.size && d->wire_size > s->ext.size) {
        struct buf why = BUF_INIT;
        buf_printf(&why, "message size %llu exceeds size limit %llu of server %s",
                   (unsigned long long)d->wire_size, (unsigned long long)s->ext.size, s->relay.s);
        session_fail(s, STAGE_MAIL, EVENT_TOO_BIG, why.s);
        buf_free(&why);
        return;
    }
    struct buf out = BUF_INIT;
    add_mail(s, &out);
    if (s->ext.pipelining) { /* RFC 2920 3.1: DATA ends the group */
        for (size_t k = 0; k < s->ntxn; k++)
            add_rcpt(s, s->txn[k], &out);
        add_data(s, &out);
        s->next_rcpt = s->ntxn;
    }
    send_commands(s, &out);
}

/* Without PIPELINING: the command after a MAIL or RCPT reply. */
static void next_command(struct session *s)
{
    struct buf out = BUF_INIT;
    if (s->next_rcpt < s->ntxn)
        add_rcpt(s, s->txn[s->next_rcpt++], &out);
    else if (s->accepted)
        add_data(s, &out);
    else {
        session_done(s); /* every recipient refused: nothing to send */
        return;
    }
    send_commands(s, &out);
}

/* ------------------------------------------------------------- content ---- */

/* One chunk: what send_text returned (1 written at once). */
static int send_one_chunk(struct session *s)
{
    struct delivery *d = s->d;
    struct buf out = BUF_INIT;
    if (s->sent < d->job.length) {
        size_t want = d->job.length - s->sent > CONTENT_CHUNK ? CONTENT_CHUNK
                                                              : (size_t)(d->job.length - s->sent);
        char *chunk = d->held_ok ? NULL : xmalloc(want);
        ssize_t got = d->held_ok ? (ssize_t)want
                                 : pread(d->fd, chunk, want, (off_t)(d->job.offset + s->sent));
        if (got <= 0) {
            free(chunk);
            buf_free(&out);
            struct buf why = BUF_INIT;
            buf_printf(&why, "cannot read the message: %s",
                       got < 0 ? strerror(errno) : "shorter than its length");
            session_fail(s, STAGE_CONTENT, EVENT_LOST, why.s);
            buf_free(&why);
            return -1;
        }
        smtp_dot_encode(&s->dot, d->held_ok ? d->held.s + s->sent : chunk, (size_t)got, &out);
        free(chunk);
        s->sent += (uint64_t)got;
    }
    if (s->sent == d->job.length) {
        smtp_dot_finish(&s->dot, &out);
        s->dot_sent = 1;
        /* RFC 2920 3.1: the content may open a group; the RSET that keeps
         * the connection for the next message goes with the final dot, one
         * write and one read fewer. Its reply follows the dot's. */
        if (s->ext.pipelining && will_keep(s)) {
            buf_adds(&out, "RSET\r\n");
            s->rset_sent = 1;
        }
    }
    return send_text(s, &out, 1);
}

/* The next chunk of content (with the final dot after the last), and the
 * ones after it for as long as the socket takes each at once; a chunk left
 * in a write request goes on from on_written. smtp_data_timeout runs per
 * write. */
static void send_content_chunk(struct session *s)
{
    while (!s->dot_sent && send_one_chunk(s) == 1)
        wait_for(s, STAGE_CONTENT);
}

static void start_content(struct session *s)
{
    smtp_dot_init(&s->dot);
    s->sent = 0;
    s->dot_sent = 0;
    wait_for(s, STAGE_CONTENT);
    send_content_chunk(s);
}

/* -------------------------------------------------------------- replies ---- */

static void on_greeting(struct session *s)
{
    if (s->rep.code / 100 != 2) {
        fail_reply(s, STAGE_GREETING);
        return;
    }
    struct buf out = BUF_INIT;
    buf_printf(&out, "EHLO %s\r\n", s->env->conf->myhostname);
    send_text(s, &out, 0);
    wait_for(s, STAGE_EHLO);
}

/* ------------------------------------------------------------ STARTTLS ---- */

/* smtp_tls: `none` never; `may` when offered (and not the clear-text retry
 * after a failed handshake); `encrypt` requires it: a host that does not
 * offer it, refuses it or fails the handshake is a temporary failure for
 * this address (next address), never clear text. */
static void maybe_starttls(struct session *s)
{
    enum smtp_tls_policy policy = s->env->conf->smtp_tls;
    if (s->tls || policy == SMTP_TLS_NONE || (policy == SMTP_TLS_MAY && s->d->clear_text)) {
        begin_transaction(s);
        return;
    }
    if (!s->ext.starttls) {
        if (policy == SMTP_TLS_MAY) {
            begin_transaction(s);
            return;
        }
        struct buf why = BUF_INIT;
        buf_printf(&why,
                   "4.7.4 TLS is required (smtp_tls = encrypt), but host %s did not offer "
                   "STARTTLS",
                   s->relay.s);
        session_fail(s, STAGE_EHLO, EVENT_4XX, why.s);
        buf_free(&why);
        return;
    }
    struct buf out = BUF_INIT;
    buf_adds(&out, "STARTTLS\r\n");
    send_text(s, &out, 0);
    s->starttls_sent = 1;
    wait_for(s, STAGE_EHLO);
}

static void tls_failed(struct session *s, const char *what)
{
    struct buf why = BUF_INIT;
    buf_printf(&why, "TLS with %s failed: %s", s->relay.s, what);
    if (s->env->conf->smtp_tls == SMTP_TLS_MAY) {
        buf_adds(&why, "; trying it again without TLS");
        s->d->retry_clear = 1; /* the same address once more, in clear text */
    }
    session_fail(s, STAGE_EHLO, EVENT_LOST, why.s);
    buf_free(&why);
}

static void flush_tls(struct session *s)
{
    struct buf cipher = BUF_INIT;
    tls_take_output(s->tls, &cipher);
    if (cipher.len)
        write_raw(s, &cipher, 0);
    else
        buf_free(&cipher);
}

static void drive_handshake(struct session *s)
{
    const char *why;
    int rc = tls_handshake(s->tls, &why);
    flush_tls(s);
    if (rc == 0)
        return;
    if (rc < 0) {
        tls_failed(s, why);
        return;
    }
    s->tls_handshaking = 0;
    tls_describe(s->tls, &s->tls_state);
    log_info("TLS connection established to %s: %s", s->relay.s, s->tls_state.s);
    struct buf out = BUF_INIT; /* RFC 3207 4.2: forget what was learned, EHLO again */
    buf_printf(&out, "EHLO %s\r\n", s->env->conf->myhostname);
    send_text(s, &out, 0);
    wait_for(s, STAGE_EHLO);
}

static void on_starttls_reply(struct session *s)
{
    s->starttls_sent = 0;
    if (s->rep.code != 220) {
        if (s->env->conf->smtp_tls == SMTP_TLS_MAY) {
            begin_transaction(s); /* refused: clear text, as `may` allows */
            return;
        }
        struct buf why = BUF_INIT;
        buf_printf(&why,
                   "4.7.4 TLS is required (smtp_tls = encrypt), but host %s said: %s "
                   "(in reply to STARTTLS command)",
                   s->relay.s, s->rep.text.s);
        session_fail(s, STAGE_EHLO, EVENT_4XX, why.s);
        buf_free(&why);
        return;
    }
    const char *why;
    s->tls = tls_client_new(s->relay.s, &why);
    if (!s->tls) {
        tls_failed(s, why);
        return;
    }
    s->tls_handshaking = 1;
    drive_handshake(s);
}

/* Ciphertext arrived: the handshake, or plaintext for the reply reader. */
static int tls_input(struct session *s, const char *p, size_t n)
{
    const char *why;
    tls_feed(s->tls, p, n);
    if (s->tls_handshaking) {
        drive_handshake(s);
        return s->ended ? -1 : 0;
    }
    struct buf plain = BUF_INIT;
    int rc = tls_read(s->tls, &plain, &why);
    flush_tls(s);
    if (plain.len)
        smtp_reader_feed(&s->rd, plain.s, plain.len);
    buf_free(&plain);
    if (rc < 0) {
        lost(s, why);
        return -1;
    }
    return 0;
}

static void on_hello(struct session *s, enum smtp_stage stage)
{
    if (s->rep.code / 100 == 2) {
        if (stage == STAGE_EHLO)
            smtp_ext_parse(&s->rep, &s->ext);
        else
            memset(&s->ext, 0, sizeof(s->ext));
        maybe_starttls(s);
        return;
    }
    const struct d4_row *row = d4_classify(stage, d4_event_of_code(s->rep.code));
    if (row && row->action == ACT_TRY_HELO) { /* RFC 5321 3.2 */
        struct buf out = BUF_INIT;
        buf_printf(&out, "HELO %s\r\n", s->env->conf->myhostname);
        send_text(s, &out, 0);
        wait_for(s, STAGE_HELO);
        return;
    }
    fail_reply(s, stage);
}

static void on_rcpt_reply(struct session *s, size_t i)
{
    if (s->rep.code / 100 == 2) {
        s->d->rcpt[i].in_txn = 1;
        s->accepted++;
        return;
    }
    const struct d4_row *row = d4_classify(STAGE_RCPT, d4_event_of_code(s->rep.code));
    struct buf why = BUF_INIT;
    reply_reason(s, STAGE_RCPT, &why);
    if (row && row->action == ACT_RCPT_BOUNCE)
        delivery_settle(s->d, i, RP_PERM, why.s, s->relay.s);
    else if (row && row->action == ACT_RCPT_NEXT)
        delivery_note(s->d, i, row->last_resort, why.s, s->relay.s);
    else
        session_fail(s, STAGE_RCPT, d4_event_of_code(s->rep.code), why.s);
    buf_free(&why);
}

static void on_data_reply(struct session *s)
{
    if (s->accepted == 0) {
        /* RFC 2920 3.1: every RCPT failed; a 354 gets an empty message */
        if (s->rep.code == 354) {
            struct buf out = BUF_INIT;
            buf_adds(&out, ".\r\n");
            send_text(s, &out, 0);
        }
        session_quit(s);
        return;
    }
    if (s->rep.code == 354)
        start_content(s);
    else
        fail_reply(s, STAGE_DATA);
}

static void on_final_reply(struct session *s)
{
    if (s->rep.code / 100 != 2) {
        fail_reply(s, STAGE_CONTENT);
        return;
    }
    for (size_t k = 0; k < s->ntxn; k++) {
        struct rcpt_state *r = &s->d->rcpt[s->txn[k]];
        if (r->in_txn && !r->settled) {
            delivery_settle(s->d, s->txn[k], RP_OK, s->rep.text.s, s->relay.s);
            r->conn_use = s->uses;
            buf_sets(&r->tls, s->tls_state.len ? s->tls_state.s : "none");
        }
        r->in_txn = 0;
    }
    session_done(s);
}

static void on_envelope_reply(struct session *s)
{
    struct pending p = s->pend[s->phead++];
    switch (p.stage) {
    case STAGE_MAIL:
        if (s->rep.code / 100 != 2)
            fail_reply(s, STAGE_MAIL);
        else if (!s->ext.pipelining)
            next_command(s);
        break;
    case STAGE_RCPT:
        on_rcpt_reply(s, p.rcpt);
        if (!s->ended && !s->ext.pipelining)
            next_command(s);
        break;
    default:
        on_data_reply(s);
        return;
    }
    if (!s->ended && s->phead < s->ptail)
        wait_for(s, s->pend[s->phead].stage);
}

static void on_reply(struct session *s)
{
    if (s->rset_pending) {
        on_rset_reply(s);
        return;
    }
    if (s->starttls_sent) {
        on_starttls_reply(s);
        return;
    }
    if (s->phead < s->ptail) {
        on_envelope_reply(s);
        return;
    }
    switch (s->stage) {
    case STAGE_GREETING:
        on_greeting(s);
        break;
    case STAGE_EHLO:
    case STAGE_HELO:
        on_hello(s, s->stage);
        break;
    case STAGE_CONTENT:
        on_final_reply(s);
        break;
    default:
        lost(s, "a reply nothing asked for");
        break;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct session *s = h->data;
    *b = uv_buf_init(s->rbuf, sizeof(s->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    struct session *s = stream->data;
    if (s->closing)
        return;
    if (s->idle) {
        on_idle_read(s);
        return;
    }
    if (s->ended) {
        if (nread < 0)
            session_close(s);
        return;
    }
    if (nread < 0 && s->tls_handshaking) { /* a handshake the server broke off */
        tls_failed(s, nread == UV_EOF ? "the server closed the connection during the handshake"
                                      : uv_strerror((int)nread));
        return;
    }
    if (nread < 0) {
        lost(s, nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread));
        return;
    }
    if (s->tls) {
        if (tls_input(s, b->base, (size_t)nread) < 0)
            return;
    } else {
        smtp_reader_feed(&s->rd, b->base, (size_t)nread);
    }
    while (!s->ended && !s->tls_handshaking) {
        const char *why;
        int rc = smtp_reader_next(&s->rd, &s->rep, &why);
        if (rc == 0)
            break;
        if (rc < 0) {
            lost(s, why);
            break;
        }
        on_reply(s);
    }
}

/* ------------------------------------------------------------- connect ---- */

static void on_connect(uv_connect_t *req, int status)
{
    struct session *s = req->data;
    if (s->closing)
        return;
    if (status < 0) {
        struct buf why = BUF_INIT;
        buf_printf(&why, "connect to %s: %s", s->relay.s,
                   status == UV_ECONNREFUSED ? "Connection refused" : uv_strerror(status));
        session_fail(s, STAGE_CONNECT, status == UV_ECONNREFUSED ? EVENT_REFUSED : EVENT_LOST,
                     why.s);
        buf_free(&why);
        return;
    }
    s->connected = 1;
    xmetrics_connection(s->d->dest, XM_CONNECTED);
    uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    wait_for(s, STAGE_GREETING);
}

static void target_sockaddr(const struct mx_target *t, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (t->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(t->port);
        memcpy(&in->sin_addr, t->addr, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(t->port);
        memcpy(&in6->sin6_addr, t->addr, 16);
    }
}

/* A kept connection for d: a new transaction at once. */
static struct session *reuse(struct session *s, struct delivery *d)
{
    s->d = d;
    s->ended = 0;
    s->uses++;
    xmetrics_connection(d->dest, XM_REUSED);
    begin_transaction(s);
    return s;
}

struct session *session_start(struct delivery *d, const struct mx_target *t)
{
    struct buf relay = BUF_INIT;
    mx_target_format(t, &relay);
    struct session *kept = take_idle(d->env, relay.s);
    if (kept) {
        buf_free(&relay);
        return reuse(kept, d);
    }
    struct session *s = xcalloc(1, sizeof(*s));
    s->d = d;
    s->env = d->env;
    s->uses = 1;
    s->relay = relay;
    smtp_reader_init(&s->rd);
    uv_tcp_init(d->env->loop, &s->tcp);
    uv_timer_init(d->env->loop, &s->timer);
    s->tcp.data = s->timer.data = s->connect.data = s;
    s->handles = 2;
    s->stage = STAGE_CONNECT;
    struct sockaddr_storage ss;
    target_sockaddr(t, &ss);
    xmetrics_connection(d->dest, XM_CONNECT_ATTEMPT);
    int rc = uv_tcp_connect(&s->connect, &s->tcp, (const struct sockaddr *)&ss, on_connect);
    if (rc < 0) {
        struct buf why = BUF_INIT;
        buf_printf(&why, "connect to %s: %s", s->relay.s, uv_strerror(rc));
        session_fail(s, STAGE_CONNECT, EVENT_LOST, why.s);
        buf_free(&why);
        return s;
    }
    wait_for(s, STAGE_CONNECT);
    return s;
}

void session_abort(struct session *s)
{
    s->ended = 1;
    session_close(s);
}

void session_close_idle(struct remote_env *env)
{
    while (env->idle)
        session_close(env->idle); /* unlinks it */
}
