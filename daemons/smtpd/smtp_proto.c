/*
 * smtp_proto — the ESMTP server dialogue as a pure state machine. See
 * smtp_proto.h for the contract and the input rules.
 *
 * The input buffer is scanned from its start for the next LF; whole lines
 * are taken and the rest waits. A command line that grows past
 * SMTP_CMD_MAX without an LF is dropped as it arrives (only the fact is
 * kept) and answered with 500 once its LF comes; a content line past
 * SMTP_TEXT_MAX the same way, refusing its message. So no line is ever
 * held whole, whatever the client sends.
 */
#include "smtpd/smtp_proto.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "mem.h"

static const char *const cmd_names[CMD_COUNT] = {
    "helo", "ehlo", "starttls", "mail", "rcpt", "data",    "bdat",
    "rset", "noop", "vrfy",     "help", "quit", "unknown",
};

/* Forget the unread input (QUIT, 421, STARTTLS); the input loop stops. */
static void drop_input(struct smtp_proto *p)
{
    buf_clear(&p->in);
    p->in_dropped = 1;
}

/* -------------------------------------------------------------- replies ---- */
static void reply(struct smtp_proto *p, const char *line)
{
    buf_adds(&p->out, line);
    buf_adds(&p->out, "\r\n");
}

static void reply_ok(struct smtp_proto *p, enum smtp_cmd_id cmd, const char *line)
{
    p->cmd_ok[cmd]++;
    reply(p, line);
}

/* A refused command: counted as an error; at the limit the session ends. */
static void reply_error(struct smtp_proto *p, enum smtp_cmd_id cmd, const char *line)
{
    reply(p, line);
    if (p->hooks->reject)
        p->hooks->reject(p->arg, p, cmd_names[cmd], line);
    unsigned limit = p->cfg.error_limit ? p->cfg.error_limit : SMTP_ERROR_LIMIT;
    if (++p->errors >= limit && p->state != SMTP_CLOSED)
        smtp_proto_close(p, "421 4.7.0", "Error: too many errors");
}

void smtp_proto_close(struct smtp_proto *p, const char *code, const char *text)
{
    if (p->state == SMTP_CLOSED)
        return;
    if ((p->state == SMTP_DATA || p->bdat_open) && p->hooks->data_abort)
        p->hooks->data_abort(p->arg);
    p->bdat_open = 0;
    buf_printf(&p->out, "%s %s %s\r\n", code, p->cfg.hostname, text);
    p->state = SMTP_CLOSED;
    p->closing = 1;
    drop_input(p);
}

/* ---------------------------------------------------------- transaction ---- */
static void txn_reset(struct smtp_proto *p)
{
    struct smtp_txn *t = &p->txn;
    if (p->bdat_open && p->hooks->data_abort) /* RSET, EHLO, STARTTLS inside BDAT */
        p->hooks->data_abort(p->arg);
    p->bdat_open = 0;
    p->bdat_txn = 0;
    p->bdat_total = 0;
    buf_clear(&p->bdat_part);
    for (size_t i = 0; i < t->nrcpt; i++) {
        free(t->rcpt[i]);
        free(t->orcpt[i]);
        free(t->notify[i]);
    }
    free(t->rcpt);
    free(t->orcpt);
    free(t->notify);
    free(t->ret);
    free(t->envid);
    buf_free(&t->sender);
    memset(t, 0, sizeof(*t));
    p->in_mail = 0;
}

static void txn_add_rcpt(struct smtp_txn *t, const char *addr, const char *orcpt,
                         const char *notify)
{
    size_t cap = t->rcpt_cap;
    t->rcpt = xgrow(t->rcpt, &cap, t->nrcpt + 1, sizeof(*t->rcpt));
    cap = t->rcpt_cap;
    t->orcpt = xgrow(t->orcpt, &cap, t->nrcpt + 1, sizeof(*t->orcpt));
    cap = t->rcpt_cap;
    t->notify = xgrow(t->notify, &cap, t->nrcpt + 1, sizeof(*t->notify));
    t->rcpt_cap = cap;
    t->rcpt[t->nrcpt] = xstrdup(addr);
    t->orcpt[t->nrcpt] = xstrdup(orcpt ? orcpt : "");
    t->notify[t->nrcpt] = xstrdup(notify ? notify : "");
    t->nrcpt++;
}

void smtp_proto_init(struct smtp_proto *p, const struct smtp_proto_cfg *cfg,
                     const struct smtp_hooks *hooks, void *arg)
{
    memset(p, 0, sizeof(*p));
    p->cfg = *cfg;
    p->hooks = hooks;
    p->arg = arg;
    p->state = SMTP_CMD;
}

void smtp_proto_free(struct smtp_proto *p)
{
    p->bdat_open = 0; /* the host forgets its own message */
    txn_reset(p);
    buf_free(&p->in);
    buf_free(&p->out);
    buf_free(&p->helo);
    buf_free(&p->bdat_part);
    buf_free(&p->bdat_why);
}

void smtp_proto_greeting(struct smtp_proto *p)
{
    buf_printf(&p->out, "220 %s ESMTP onehop\r\n", p->cfg.hostname);
}

/* ------------------------------------------------------------ arguments ---- */
/* "FROM:" / "TO:" after the verb, case-insensitive, spaces allowed after
 * the colon (as Postfix and most clients tolerate). NULL when missing. */
static const char *after_keyword(const char *arg, const char *kw)
{
    size_t n = strlen(kw);
    if (strncasecmp(arg, kw, n) != 0)
        return NULL;
    arg += n;
    while (*arg == ' ')
        arg++;
    return arg;
}

/* Length of the path at s: "<...>" with quoted strings skipped, 0 if none. */
static size_t path_length(const char *s)
{
    if (*s != '<')
        return 0;
    int quoted = 0;
    for (size_t i = 1; s[i]; i++) {
        if (quoted && s[i] == '\\' && s[i + 1])
            i++;
        else if (s[i] == '"')
            quoted = !quoted;
        else if (!quoted && s[i] == '>')
            return i + 1;
    }
    return 0;
}

/* RFC 3461 4: xtext is printable ASCII without '+' and '=' except "+HH". */
static int xtext_valid(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
                return 0;
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return 0;
        }
    }
    return 1;
}

static int notify_valid(const char *v)
{
    if (strcasecmp(v, "NEVER") == 0)
        return 1;
    char *copy = xstrdup(v), *save = NULL;
    int ok = 1, any = 0;
    for (char *w = strtok_r(copy, ",", &save); w && ok; w = strtok_r(NULL, ",", &save)) {
        ok = strcasecmp(w, "SUCCESS") == 0 || strcasecmp(w, "FAILURE") == 0 ||
             strcasecmp(w, "DELAY") == 0;
        any = 1;
    }
    free(copy);
    return ok && any && v[strlen(v) - 1] != ',';
}

/* ORCPT=addr-type;xtext (RFC 3461 4.2) */
static int orcpt_valid(const char *v)
{
    const char *semi = strchr(v, ';');
    if (!semi || semi == v || semi - v > 20)
        return 0;
    return xtext_valid(semi + 1, 500);
}

static int size_value(const char *v, uint64_t *out)
{
    uint64_t n = 0;
    if (!*v)
        return -1;
    for (; *v; v++) {
        if (!isdigit((unsigned char)*v) || n > UINT64_MAX / 10 - 1)
            return -1;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    *out = n;
    return 0;
}

/* One MAIL parameter; NULL when taken, else the reply. */
static const char *mail_param(struct smtp_proto *p, char *name, char *value)
{
    struct smtp_txn *t = &p->txn;
    if (strcasecmp(name, "SIZE") == 0) {
        if (!value || size_value(value, &t->declared_size) != 0)
            return "501 5.5.4 Bad SIZE parameter";
        return NULL;
    }
    if (strcasecmp(name, "BODY") == 0) {
        if (value && strcasecmp(value, "8BITMIME") == 0)
            t->body_8bit = 1;
        else if (!value || strcasecmp(value, "7BIT") != 0)
            return "501 5.5.4 Bad BODY parameter";
        return NULL;
    }
    if (strcasecmp(name, "SMTPUTF8") == 0) {
        if (value)
            return "501 5.5.4 SMTPUTF8 takes no value";
        t->smtputf8 = 1;
        return NULL;
    }
    if (strcasecmp(name, "RET") == 0) {
        if (!value || (strcasecmp(value, "FULL") != 0 && strcasecmp(value, "HDRS") != 0))
            return "501 5.5.4 Bad RET parameter";
        free(t->ret);
        t->ret = xstrdup(value);
        for (char *c = t->ret; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        return NULL;
    }
    if (strcasecmp(name, "ENVID") == 0) {
        if (!value || !xtext_valid(value, 100))
            return "501 5.5.4 Bad ENVID parameter";
        free(t->envid);
        t->envid = xstrdup(value);
        return NULL;
    }
    if (strcasecmp(name, "AUTH") == 0) /* RFC 4954 5: accepted, not trusted */
        return NULL;
    return "555 5.5.4 Unsupported option";
}

/* Split "NAME[=VALUE] NAME..." and hand each to take; NULL or the reply. */
static const char *each_param(struct smtp_proto *p, char *s, char **orcpt, char **notify)
{
    char *save = NULL;
    for (char *w = strtok_r(s, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(w, '=');
        char *value = NULL;
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        const char *r;
        if (!orcpt) {
            r = mail_param(p, w, value);
        } else if (strcasecmp(w, "NOTIFY") == 0) {
            r = value && notify_valid(value) ? NULL : "501 5.5.4 Bad NOTIFY parameter";
            if (!r)
                *notify = value;
        } else if (strcasecmp(w, "ORCPT") == 0) {
            r = value && orcpt_valid(value) ? NULL : "501 5.5.4 Bad ORCPT parameter";
            if (!r)
                *orcpt = value;
        } else {
            r = "555 5.5.4 Unsupported option";
        }
        if (r)
            return r;
    }
    return NULL;
}

/* The path and the parameters after it: 0 with *path_end, -1 when there
 * is no "<...>" path. */
static int split_path(char *arg, size_t *plen, char **params)
{
    *plen = path_length(arg);
    if (*plen == 0)
        return -1;
    char *rest = arg + *plen;
    if (*rest && *rest != ' ')
        return -1;
    while (*rest == ' ')
        *rest++ = '\0';
    *params = rest;
    return 0;
}

/* ------------------------------------------------------------- commands ---- */
static void cmd_helo(struct smtp_proto *p, char *arg, int esmtp)
{
    enum smtp_cmd_id id = esmtp ? CMD_EHLO : CMD_HELO;
    if (!*arg)
        return reply_error(
            p, id, esmtp ? "501 5.5.4 Syntax: EHLO hostname" : "501 5.5.4 Syntax: HELO hostname");
    txn_reset(p); /* RFC 5321 4.1.4: EHLO/HELO reset the transaction */
    buf_sets(&p->helo, arg);
    p->esmtp = esmtp;
    p->cmd_ok[id]++;
    if (!esmtp) {
        buf_printf(&p->out, "250 %s\r\n", p->cfg.hostname);
        return;
    }
    buf_printf(&p->out, "250-%s\r\n250-PIPELINING\r\n", p->cfg.hostname);
    if (p->cfg.size_limit)
        buf_printf(&p->out, "250-SIZE %llu\r\n", (unsigned long long)p->cfg.size_limit);
    else
        buf_adds(&p->out, "250-SIZE\r\n");
    if (p->cfg.tls_offered && !p->tls_active)
        buf_adds(&p->out, "250-STARTTLS\r\n");
    buf_adds(&p->out, "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
                      "250 CHUNKING\r\n");
}

static int parse_address(const char *s, size_t n, unsigned flags, struct buf *out)
{
    struct mailaddr a;
    const char *why = NULL;
    if (addr_parse(s, n, flags, &a, &why) != 0)
        return -1;
    buf_clear(out);
    addr_format(&a, out);
    addr_free(&a);
    return 0;
}

static void cmd_mail(struct smtp_proto *p, char *arg)
{
    size_t plen;
    char *params;
    const char *from = after_keyword(arg, "FROM:");
    if (!p->helo.len)
        return reply_error(p, CMD_MAIL, "503 5.5.1 Error: send HELO/EHLO first");
    if (p->in_mail)
        return reply_error(p, CMD_MAIL, "503 5.5.1 Error: nested MAIL command");
    if (!from || split_path((char *)from, &plen, &params) != 0)
        return reply_error(p, CMD_MAIL, "501 5.5.4 Syntax: MAIL FROM:<address>");
    const char *bad = p->esmtp ? each_param(p, params, NULL, NULL)
                               : (*params ? "555 5.5.4 Unsupported option" : NULL);
    unsigned flags = ADDR_PATH | ADDR_ALLOW_NULL | (p->txn.smtputf8 ? ADDR_ALLOW_UTF8 : 0);
    if (!bad && parse_address(from, plen, flags, &p->txn.sender) != 0)
        bad = "501 5.1.7 Bad sender address syntax";
    if (!bad && p->cfg.size_limit && p->txn.declared_size > p->cfg.size_limit)
        bad = "552 5.3.4 Message size exceeds fixed limit";
    if (!bad && p->hooks->mail)
        bad = p->hooks->mail(p->arg, p);
    if (bad) {
        txn_reset(p);
        return reply_error(p, CMD_MAIL, bad);
    }
    p->in_mail = 1;
    reply_ok(p, CMD_MAIL, "250 2.1.0 Ok");
}

static void cmd_rcpt(struct smtp_proto *p, char *arg)
{
    size_t plen;
    char *params, *orcpt = NULL, *notify = NULL;
    struct buf addr = BUF_INIT, why = BUF_INIT;
    const char *to = after_keyword(arg, "TO:");
    if (!p->in_mail)
        return reply_error(p, CMD_RCPT, "503 5.5.1 Error: need MAIL command");
    if (p->bdat_txn) /* the envelope went to the host with the first chunk */
        return reply_error(p, CMD_RCPT, "503 5.5.1 Error: RCPT after BDAT");
    if (!to || split_path((char *)to, &plen, &params) != 0)
        return reply_error(p, CMD_RCPT, "501 5.5.4 Syntax: RCPT TO:<address>");
    const char *bad = p->esmtp ? each_param(p, params, &orcpt, &notify)
                               : (*params ? "555 5.5.4 Unsupported option" : NULL);
    unsigned flags = ADDR_PATH | (p->txn.smtputf8 ? ADDR_ALLOW_UTF8 : 0);
    if (!bad && plen == 12 && strncasecmp(to, "<postmaster>", 12) == 0) /* RFC 5321 4.5.1 */
        buf_printf(&addr, "postmaster@%s", p->cfg.hostname);
    else if (!bad && parse_address(to, plen, flags, &addr) != 0)
        bad = "501 5.1.3 Bad recipient address syntax";
    if (!bad && p->txn.nrcpt >= p->cfg.max_rcpt)
        bad = "452 4.5.3 Error: too many recipients"; /* RFC 5321 4.5.3.1.10 */
    if (!bad && p->hooks->rcpt && p->hooks->rcpt(p->arg, p, buf_cstr(&addr), &why) != 0)
        bad = buf_cstr(&why);
    if (bad)
        reply_error(p, CMD_RCPT, bad);
    else {
        txn_add_rcpt(&p->txn, buf_cstr(&addr), orcpt, notify);
        reply_ok(p, CMD_RCPT, "250 2.1.5 Ok");
    }
    buf_free(&addr);
    buf_free(&why);
}

static void cmd_data(struct smtp_proto *p, const char *arg)
{
    struct buf why = BUF_INIT;
    if (*arg)
        return reply_error(p, CMD_DATA, "501 5.5.4 Syntax: DATA");
    if (!p->in_mail)
        return reply_error(p, CMD_DATA, "503 5.5.1 Error: need MAIL command");
    if (p->bdat_txn) /* RFC 3030 2: DATA and BDAT never in one transaction */
        return reply_error(p, CMD_DATA, "503 5.5.1 Error: DATA after BDAT");
    if (p->txn.nrcpt == 0)
        return reply_error(p, CMD_DATA, "554 5.5.1 Error: no valid recipients");
    if (p->hooks->data_begin && p->hooks->data_begin(p->arg, p, &why) != 0) {
        reply_error(p, CMD_DATA, buf_cstr(&why));
        buf_free(&why);
        return;
    }
    buf_free(&why);
    reply(p, "354 End data with <CR><LF>.<CR><LF>");
    p->state = SMTP_DATA;
    p->data_size = 0;
    p->line_dropped = 0;
    p->prev_crlf = 1; /* the DATA line itself */
    p->data_refusal = NULL;
}

static void cmd_starttls(struct smtp_proto *p, const char *arg)
{
    if (*arg)
        return reply_error(p, CMD_STARTTLS, "501 5.5.4 Syntax: STARTTLS");
    if (!p->cfg.tls_offered || p->tls_active)
        return reply_error(p, CMD_STARTTLS, "502 5.5.1 STARTTLS is not available in this session");
    reply_ok(p, CMD_STARTTLS, "220 2.0.0 Ready to start TLS");
    txn_reset(p);
    p->state = SMTP_TLS;
    drop_input(p); /* RFC 3207 4.2 / CVE-2011-0411: nothing pipelined survives */
    if (p->hooks->starttls)
        p->hooks->starttls(p->arg);
}

static void cmd_simple(struct smtp_proto *p, enum smtp_cmd_id id, const char *arg)
{
    switch (id) {
    case CMD_RSET:
        txn_reset(p);
        return reply_ok(p, id, "250 2.0.0 Ok");
    case CMD_NOOP:
        return reply_ok(p, id, "250 2.0.0 Ok");
    case CMD_VRFY: /* RFC 5321 3.5.3: 252, never a directory service */
        if (!*arg)
            return reply_error(p, id, "501 5.5.4 Syntax: VRFY address");
        return reply_ok(p, id,
                        "252 2.0.0 Cannot VRFY user, but will accept message and "
                        "attempt delivery");
    case CMD_HELP:
        return reply_ok(p, id,
                        "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP "
                        "VRFY HELP QUIT (RFC 5321, 3030)");
    default: /* QUIT */
        p->cmd_ok[id]++;
        buf_printf(&p->out, "221 2.0.0 %s Bye\r\n", p->cfg.hostname);
        p->state = SMTP_CLOSED;
        p->closing = 1;
        return;
    }
}

static void cmd_bdat(struct smtp_proto *p, const char *arg);

static enum smtp_cmd_id command_id(const char *verb)
{
    static const char *const verbs[CMD_COUNT] = {
        "HELO", "EHLO", "STARTTLS", "MAIL", "RCPT", "DATA", "BDAT",
        "RSET", "NOOP", "VRFY",     "HELP", "QUIT", NULL,
    };
    for (int i = 0; i < CMD_UNKNOWN; i++)
        if (strcasecmp(verb, verbs[i]) == 0)
            return (enum smtp_cmd_id)i;
    return CMD_UNKNOWN;
}

/* One command line, its CRLF or LF removed and NUL-terminated. */
static void command(struct smtp_proto *p, char *line)
{
    char *arg = line;
    while (*arg && *arg != ' ')
        arg++;
    if (*arg)
        *arg++ = '\0';
    while (*arg == ' ')
        arg++;
    size_t n = strlen(arg);
    while (n && arg[n - 1] == ' ') /* trailing spaces are common and harmless */
        arg[--n] = '\0';
    enum smtp_cmd_id id = command_id(line);
    p->cmd_total[id]++;
    switch (id) {
    case CMD_HELO:
    case CMD_EHLO:
        return cmd_helo(p, arg, id == CMD_EHLO);
    case CMD_MAIL:
        return cmd_mail(p, arg);
    case CMD_RCPT:
        return cmd_rcpt(p, arg);
    case CMD_DATA:
        return cmd_data(p, arg);
    case CMD_BDAT:
        return cmd_bdat(p, arg);
    case CMD_STARTTLS:
        return cmd_starttls(p, arg);
    case CMD_UNKNOWN:
        return reply_error(p, id, "502 5.5.2 Error: command not recognized");
    default:
        return cmd_simple(p, id, arg);
    }
}

/* ---------------------------------------------------------------- input ---- */
/* A whole command line in[0..len) (len includes the LF). */
static void command_line(struct smtp_proto *p, char *s, size_t len)
{
    int crlf = len >= 2 ? s[len - 2] == '\r' : p->junk_cr;
    size_t total = len + p->junk;
    int dropped = p->junk > 0;
    p->junk = 0;
    p->junk_cr = 0;
    if (dropped || total > SMTP_CMD_MAX) {
        p->cmd_total[CMD_UNKNOWN]++;
        return reply_error(p, CMD_UNKNOWN,
                           "500 5.5.0 Error: line too long (RFC 5321 "
                           "4.5.3.1.4: 512 bytes)");
    }
    if (!crlf && p->cfg.bare_newline_reject) {
        p->cmd_total[CMD_UNKNOWN]++;
        return reply_error(p, CMD_UNKNOWN, "500 5.5.2 Error: bare <LF> received");
    }
    size_t n = len - 1 - (size_t)crlf;
    if (memchr(s, '\0', n)) {
        p->cmd_total[CMD_UNKNOWN]++;
        return reply_error(p, CMD_UNKNOWN, "500 5.5.2 Error: NUL byte in command");
    }
    s[n] = '\0';
    command(p, s);
}

static const char text_too_long[] = "500 5.5.0 Error: message refused: text line longer than "
                                    "1000 bytes (RFC 5321 4.5.3.1.6)";

/* Refuse the message being read: data_abort now, the reply at its end. */
static void refuse_message(struct smtp_proto *p, const char *why)
{
    if (p->data_refusal)
        return;
    p->data_refusal = why;
    if (p->hooks->data_abort)
        p->hooks->data_abort(p->arg);
    p->bdat_open = 0;
}

/* Pass content on, a bare CR in it made a line break (normalize). */
static void pass_content(struct smtp_proto *p, const char *s, size_t n, struct buf *tmp)
{
    const char *cr = memchr(s, '\r', n);
    if (cr && p->cfg.bare_newline_reject)
        return refuse_message(p, "550 5.5.2 Error: message refused: bare <CR> received");
    buf_clear(tmp);
    while (cr) {
        buf_add(tmp, s, (size_t)(cr - s));
        buf_adds(tmp, "\r\n");
        n -= (size_t)(cr - s) + 1;
        s = cr + 1;
        cr = memchr(s, '\r', n);
    }
    buf_add(tmp, s, n);
    buf_adds(tmp, "\r\n");
    p->data_size += tmp->len;
    if (p->cfg.size_limit && p->data_size > p->cfg.size_limit)
        return refuse_message(p, "552 5.3.4 Error: message size exceeds fixed limit");
    p->hooks->data(p->arg, tmp->s, tmp->len);
}

/* CRLF.CRLF seen: the refusal, or wait for the host's commit. */
static void data_complete(struct smtp_proto *p)
{
    if (p->data_refusal) {
        p->state = SMTP_CMD;
        const char *r = p->data_refusal;
        p->data_refusal = NULL;
        txn_reset(p);
        return reply_error(p, CMD_DATA, r);
    }
    p->state = SMTP_WAIT;
    p->hooks->data_end(p->arg);
}

/* A whole content line s[0..len) with its LF; returns 1 at the end of data.
 * A BDAT line (bdat) is neither an end nor dot-stuffed (RFC 3030 2). */
static int data_line(struct smtp_proto *p, const char *s, size_t len, struct buf *tmp, int bdat)
{
    int crlf = len >= 2 ? s[len - 2] == '\r' : p->junk_cr;
    int was_long = p->line_dropped > 0;
    size_t body = len - 1 - (size_t)(len >= 2 && crlf);
    int prev_crlf = p->prev_crlf;
    p->prev_crlf = crlf;
    p->line_dropped = 0;
    p->junk_cr = 0;
    if (was_long)
        return 0; /* its message is refused already */
    /* RFC 5321 4.1.1.4: only CRLF "." CRLF ends the data */
    if (!bdat && crlf && prev_crlf && body == 1 && s[0] == '.') {
        data_complete(p);
        return 1;
    }
    if (!crlf && p->cfg.bare_newline_reject)
        refuse_message(p, "550 5.5.2 Error: message refused: bare <LF> received");
    if (!bdat && body && s[0] == '.') { /* RFC 5321 4.5.2 transparency */
        s++;
        body--;
    }
    if (body + 2 > SMTP_TEXT_MAX)
        refuse_message(p, text_too_long);
    if (!p->data_refusal)
        pass_content(p, s, body, tmp);
    return 0;
}

/* No LF in the n bytes waiting: drop them once the line is over its limit. */
static size_t drop_long_line(struct smtp_proto *p, size_t n)
{
    if (p->state == SMTP_CMD) {
        if (n + p->junk <= SMTP_CMD_MAX)
            return 0;
        p->junk += n;
        p->junk_cr = p->in.s[n - 1] == '\r';
        if (p->junk > SMTP_JUNK_MAX)
            smtp_proto_close(p, "421 4.7.0", "Error: command line flood");
        return n;
    }
    if (n + p->line_dropped <= SMTP_TEXT_MAX + 1)
        return 0;
    if (!p->line_dropped)
        refuse_message(p, text_too_long);
    p->line_dropped += n;
    p->junk_cr = p->in.s[n - 1] == '\r';
    return n;
}

/* ----------------------------------------------------------------- BDAT ---- */
/* RFC 3030 2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ],
 * chunk-size = 1*DIGIT, end-marker = "LAST". */
static int bdat_args(const char *arg, uint64_t *size, int *last)
{
    uint64_t n = 0;
    if (!isdigit((unsigned char)*arg))
        return -1;
    for (; isdigit((unsigned char)*arg); arg++) {
        if (n > (UINT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*arg - '0');
    }
    *last = 0;
    if (*arg == ' ') {
        while (*arg == ' ')
            arg++;
        if (strcasecmp(arg, "LAST") != 0)
            return -1;
        *last = 1;
    } else if (*arg) {
        return -1;
    }
    *size = n;
    return 0;
}

/* The first chunk opens the message with the host: NULL, or the refusal. */
static const char *bdat_open_message(struct smtp_proto *p)
{
    if (!p->in_mail)
        return "503 5.5.1 Error: need MAIL command";
    if (p->txn.nrcpt == 0)
        return "554 5.5.1 Error: no valid recipients";
    if (p->bdat_txn)
        return p->bdat_open ? NULL : "503 5.5.1 Error: BDAT after a failed BDAT";
    buf_clear(&p->bdat_why);
    if (p->hooks->data_begin && p->hooks->data_begin(p->arg, p, &p->bdat_why) != 0)
        return buf_cstr(&p->bdat_why);
    p->bdat_txn = 1;
    p->bdat_open = 1;
    p->bdat_total = 0;
    p->data_size = 0;
    p->line_dropped = 0;
    p->junk_cr = 0;
    buf_clear(&p->bdat_part);
    return NULL;
}

/* The last line of a LAST chunk, not ended: a bare CR at its end is its
 * line break (normalize); a line with no break at all gets CRLF. */
static void bdat_final_line(struct smtp_proto *p, struct buf *tmp)
{
    struct buf *part = &p->bdat_part;
    size_t n = part->len;
    if (p->line_dropped || !n)
        return;
    if (part->s[n - 1] == '\r') {
        if (p->cfg.bare_newline_reject)
            return refuse_message(p, "550 5.5.2 Error: message refused: bare <CR> received");
        n--;
    }
    if (n + 2 > SMTP_TEXT_MAX)
        return refuse_message(p, text_too_long);
    pass_content(p, part->s, n, tmp);
}

/* The chunk is read: its reply (250 or the refusal), or the commit. */
static void bdat_chunk_end(struct smtp_proto *p)
{
    struct buf tmp = BUF_INIT;
    p->state = SMTP_CMD;
    if (p->bdat_last && !p->data_refusal)
        bdat_final_line(p, &tmp);
    buf_free(&tmp);
    if (p->bdat_last || p->data_refusal) { /* else a line may go on in the next chunk */
        p->line_dropped = 0;
        p->junk_cr = 0;
        buf_clear(&p->bdat_part);
    }
    if (p->data_refusal) { /* RFC 3030 2: the transaction has failed */
        const char *r = p->data_refusal;
        p->data_refusal = NULL;
        reply_error(p, CMD_BDAT, r); /* r may be bdat_why: the reset comes after */
        txn_reset(p);
        return;
    }
    if (!p->bdat_last) {
        p->cmd_ok[CMD_BDAT]++;
        buf_printf(&p->out, "250 2.0.0 Ok: %llu bytes\r\n", (unsigned long long)p->bdat_chunk);
        return;
    }
    p->bdat_open = 0; /* the host has it now */
    p->state = SMTP_WAIT;
    p->hooks->data_end(p->arg);
}

static void cmd_bdat(struct smtp_proto *p, const char *arg)
{
    uint64_t size;
    int last;
    if (bdat_args(arg, &size, &last) != 0) { /* how many bytes follow is unknown */
        reply_error(p, CMD_BDAT, "501 5.5.4 Syntax: BDAT count [LAST]");
        return smtp_proto_close(p, "421 4.5.0", "Error: out of step after a bad BDAT");
    }
    p->state = SMTP_BDAT;
    p->bdat_chunk = p->bdat_left = size;
    p->bdat_last = last;
    p->data_refusal = bdat_open_message(p);
    if (!p->data_refusal && p->cfg.size_limit &&
        (size > p->cfg.size_limit || p->bdat_total + size > p->cfg.size_limit))
        refuse_message(p, "552 5.3.4 Error: message size exceeds fixed limit");
    p->bdat_total = size > UINT64_MAX - p->bdat_total ? UINT64_MAX : p->bdat_total + size;
    if (size == 0)
        bdat_chunk_end(p);
}

/* n bytes of a chunk without an LF: kept until the line ends, or dropped
 * once the line is over SMTP_TEXT_MAX. */
static void bdat_keep(struct smtp_proto *p, const char *s, size_t n)
{
    if (!p->line_dropped && p->bdat_part.len + n > SMTP_TEXT_MAX + 1) {
        refuse_message(p, text_too_long);
        p->line_dropped = p->bdat_part.len;
        buf_clear(&p->bdat_part);
    }
    if (p->line_dropped) {
        p->line_dropped += n;
        p->junk_cr = s[n - 1] == '\r';
        return;
    }
    buf_add(&p->bdat_part, s, n);
}

/* n bytes of the chunk being read: its lines, joined across chunks. */
static void bdat_content(struct smtp_proto *p, const char *s, size_t n, struct buf *tmp)
{
    while (n && !p->data_refusal) {
        const char *lf = memchr(s, '\n', n);
        if (!lf)
            return bdat_keep(p, s, n);
        size_t k = (size_t)(lf - s) + 1;
        struct buf *part = &p->bdat_part;
        if (p->line_dropped || !part->len) {
            data_line(p, s, k, tmp, 1);
        } else if (part->len + k > SMTP_TEXT_MAX + 1) {
            refuse_message(p, text_too_long);
        } else {
            buf_add(part, s, k);
            data_line(p, part->s, part->len, tmp, 1);
        }
        buf_clear(part);
        s += k;
        n -= k;
    }
}

/* Take the chunk's bytes at s (avail of them): how many were taken. */
static size_t bdat_take(struct smtp_proto *p, const char *s, size_t avail, struct buf *tmp)
{
    size_t take = p->bdat_left < avail ? (size_t)p->bdat_left : avail;
    bdat_content(p, s, take, tmp);
    p->bdat_left -= take;
    if (p->bdat_left == 0)
        bdat_chunk_end(p);
    return take;
}

/* ---------------------------------------------------------------- loop ---- */
/* Take every whole line while the state reads lines, and BDAT chunks. */
static void run(struct smtp_proto *p)
{
    struct buf tmp = BUF_INIT;
    size_t at = 0;
    p->running = 1;
    p->in_dropped = 0;
    while (at < p->in.len &&
           (p->state == SMTP_CMD || p->state == SMTP_DATA || p->state == SMTP_BDAT)) {
        char *s = p->in.s + at;
        size_t avail = p->in.len - at;
        if (p->state == SMTP_BDAT) {
            at += bdat_take(p, s, avail, &tmp);
            if (p->in_dropped)
                break;
            continue;
        }
        char *lf = memchr(s, '\n', avail);
        if (!lf) {
            buf_consume(&p->in, at);
            at = 0;
            at = drop_long_line(p, p->in.len);
            break;
        }
        size_t len = (size_t)(lf - s) + 1;
        at += len;
        if (p->state == SMTP_CMD) {
            if (p->junk)
                p->junk += len - 1; /* the line's end arrived: counted with the rest */
            command_line(p, s, len);
        } else {
            data_line(p, s, len, &tmp, 0);
        }
        if (p->in_dropped)
            break;
    }
    if (p->in_dropped || p->state == SMTP_CLOSED || p->state == SMTP_TLS)
        at = p->in.len;
    p->in_dropped = 0;
    buf_consume(&p->in, at);
    buf_free(&tmp);
    p->running = 0;
}

void smtp_proto_input(struct smtp_proto *p, const void *data, size_t n)
{
    if (p->state == SMTP_CLOSED || p->state == SMTP_TLS)
        return;
    buf_add(&p->in, data, n);
    run(p);
}

void smtp_proto_data_result(struct smtp_proto *p, const char *line)
{
    if (p->state != SMTP_WAIT)
        return;
    p->state = SMTP_CMD;
    enum smtp_cmd_id id = p->bdat_txn ? CMD_BDAT : CMD_DATA;
    if (line[0] == '2') {
        p->cmd_ok[id]++;
        p->messages++;
        reply(p, line);
    } else {
        reply_error(p, id, line);
    }
    txn_reset(p);
    if (p->state == SMTP_CMD && !p->running) /* else the running loop goes on */
        run(p);
}

void smtp_proto_tls_started(struct smtp_proto *p)
{
    if (p->state != SMTP_TLS)
        return;
    txn_reset(p);
    buf_clear(&p->helo);
    drop_input(p);
    p->esmtp = 0;
    p->tls_active = 1;
    p->state = SMTP_CMD;
}

void smtp_proto_counts(const struct smtp_proto *p, struct buf *out)
{
    unsigned ok = 0, total = 0;
    for (int i = 0; i < CMD_COUNT; i++) {
        if (!p->cmd_total[i])
            continue;
        ok += p->cmd_ok[i];
        total += p->cmd_total[i];
        if (p->cmd_ok[i] == p->cmd_total[i])
            buf_printf(out, "%s=%u ", cmd_names[i], p->cmd_total[i]);
        else
            buf_printf(out, "%s=%u/%u ", cmd_names[i], p->cmd_ok[i], p->cmd_total[i]);
    }
    if (ok == total)
        buf_printf(out, "commands=%u", total);
    else
        buf_printf(out, "commands=%u/%u", ok, total);
}

const char *smtp_proto_protocol(const struct smtp_proto *p)
{
    static const char *const names[2][2][2] = {
        {{"SMTP", "SMTPS"}, {"ESMTP", "ESMTPS"}},
        {{"UTF8SMTP", "UTF8SMTPS"}, {"UTF8SMTP", "UTF8SMTPS"}},
    };
    return names[p->txn.smtputf8 != 0][p->esmtp != 0][p->tls_active != 0];
}
