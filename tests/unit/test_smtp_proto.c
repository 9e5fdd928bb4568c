/*
 * test_smtp_proto — the SMTP server engine (daemons/smtpd/smtp_proto.h),
 * one row per dialogue: the client's bytes (given whole, and again one
 * byte at a time: the engine must not depend on how input is cut), the
 * reply codes expected in order, the messages accepted and their content.
 * The host's hooks accept every recipient except deny@..., and answer each
 * message at once with 250.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rowtest.h"
#include "smtpd/smtp_proto.h"

struct host {
    struct smtp_proto p;
    struct buf content;  /* of the last message */
    struct buf messages; /* every accepted message, joined by "|" */
    struct buf rcpts;    /* envelope of the last message: "sender>rcpt,rcpt" */
    int ends, aborts, tls;
};

static int h_rcpt(void *arg, struct smtp_proto *p, const char *addr, struct buf *reply)
{
    (void)arg;
    (void)p;
    if (strncmp(addr, "deny@", 5) != 0)
        return 0;
    buf_printf(reply, "554 5.7.1 <%s>: Relay access denied", addr);
    return -1;
}

static int h_begin(void *arg, struct smtp_proto *p, struct buf *reply)
{
    struct host *h = arg;
    (void)reply;
    buf_clear(&h->content);
    buf_clear(&h->rcpts);
    buf_printf(&h->rcpts, "%s>", buf_cstr(&p->txn.sender));
    for (size_t i = 0; i < p->txn.nrcpt; i++)
        buf_printf(&h->rcpts, "%s%s", i ? "," : "", p->txn.rcpt[i]);
    return 0;
}

static void h_data(void *arg, const char *s, size_t n)
{
    struct host *h = arg;
    buf_add(&h->content, s, n);
}

static void h_end(void *arg)
{
    struct host *h = arg;
    h->ends++;
    if (h->messages.len)
        buf_addc(&h->messages, '|');
    buf_add(&h->messages, h->content.s, h->content.len);
    smtp_proto_data_result(&h->p, "250 2.0.0 Ok: queued as X");
}

static void h_abort(void *arg)
{
    struct host *h = arg;
    h->aborts++;
}

static void h_tls(void *arg)
{
    struct host *h = arg;
    h->tls++;
}

static const struct smtp_hooks hooks = {NULL, h_rcpt, h_begin, h_data, h_end, h_abort, h_tls, NULL};

/* The reply codes of out: "220 250 354 ..." (continuation lines skipped). */
static void codes(const struct buf *out, struct buf *c)
{
    size_t at = 0;
    while (at + 4 <= out->len) {
        const char *line = out->s + at;
        const char *lf = memchr(line, '\n', out->len - at);
        if (!lf)
            break;
        if (line[3] == ' ') {
            if (c->len)
                buf_addc(c, ' ');
            buf_add(c, line, 3);
        }
        at = (size_t)(lf - out->s) + 1;
    }
}

struct row {
    const char *name;
    const char *in;
    size_t in_len; /* 0: strlen(in) */
    const char *codes;
    const char *messages; /* NULL: none accepted */
    int reject_bare;      /* smtpd_bare_newline = reject */
};

#define HELLO "EHLO c.test\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n"
#define HELLO_CODES "220 250 250 250 354"
#define HELLO_B "EHLO c.test\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\n"
#define HELLO_B_CODES "220 250 250 250"

static const struct row rows[] = {
    {"plain message", HELLO "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", 0, HELLO_CODES " 250 221",
     "Subject: x\r\n\r\nbody\r\n", 0},
    {"dot-stuffing removed", HELLO "..a\r\n.\r\n", 0, HELLO_CODES " 250", ".a\r\n", 0},
    {"pipelined two RCPT and DATA",
     "EHLO c\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nRCPT TO:<c@b.test>\r\nDATA\r\nx\r\n."
     "\r\n",
     0, "220 250 250 250 250 354 250", "x\r\n", 0},
    {"smuggling \\n.\\r\\n stays content",
     HELLO "a\n.\r\nMAIL FROM:<e@e.test>\r\nRCPT TO:<v@b.test>\r\nDATA\r\nevil\r\n.\r\n", 0,
     HELLO_CODES " 250", "a\r\n\r\nMAIL FROM:<e@e.test>\r\nRCPT TO:<v@b.test>\r\nDATA\r\nevil\r\n",
     0},
    {"smuggling \\r\\n.\\n stays content", HELLO "a\r\n.\nMAIL FROM:<e@e.test>\r\nDATA\r\n.\r\n", 0,
     HELLO_CODES " 250", "a\r\n\r\nMAIL FROM:<e@e.test>\r\nDATA\r\n", 0},
    {"smuggling \\r.\\r\\n stays content", HELLO "a\r.\r\nMAIL FROM:<e@e.test>\r\n.\r\n", 0,
     HELLO_CODES " 250", "a\r\n.\r\nMAIL FROM:<e@e.test>\r\n", 0},
    {"smuggling \\n.\\n stays content", HELLO "a\n.\nQUIT\r\n.\r\n", 0, HELLO_CODES " 250",
     "a\r\n\r\nQUIT\r\n", 0},
    {"bare LF refused in reject mode", HELLO "a\nb\r\n.\r\nNOOP\r\n", 0, HELLO_CODES " 550 250",
     NULL, 1},
    {"bare CR refused in reject mode", HELLO "a\rb\r\n.\r\nNOOP\r\n", 0, HELLO_CODES " 550 250",
     NULL, 1},
    {"bare LF command refused in reject mode", "NOOP\nNOOP\r\n", 0, "220 500 250", NULL, 1},
    {"bare LF command accepted by default", "NOOP\nQUIT\n", 0, "220 250 221", NULL, 0},
    {"RSET mid-transaction",
     "EHLO c\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nRSET\r\n"
     "DATA\r\n",
     0, "220 250 250 250 250 503", NULL, 0},
    {"VRFY 252 HELP 214 NOOP 250", "VRFY bob\r\nHELP\r\nNOOP\r\nVRFY\r\n", 0, "220 252 214 250 501",
     NULL, 0},
    {"MAIL before EHLO", "MAIL FROM:<a@a.test>\r\n", 0, "220 503", NULL, 0},
    {"nested MAIL", "HELO c\r\nMAIL FROM:<a@a.test>\r\nMAIL FROM:<a@a.test>\r\n", 0,
     "220 250 250 503", NULL, 0},
    {"RCPT without MAIL", "HELO c\r\nRCPT TO:<b@b.test>\r\n", 0, "220 250 503", NULL, 0},
    {"DATA without RCPT", "HELO c\r\nMAIL FROM:<a@a.test>\r\nDATA\r\n", 0, "220 250 250 554", NULL,
     0},
    {"refused recipient, the others go",
     "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<deny@x.test>\r\n"
     "RCPT TO:<b@b.test>\r\nDATA\r\nx\r\n.\r\n",
     0, "220 250 250 554 250 354 250", "x\r\n", 0},
    {"bad sender syntax", "HELO c\r\nMAIL FROM:<a@>\r\nMAIL FROM:a@a.test\r\n", 0,
     "220 250 501 501", NULL, 0},
    {"trailing dot in a domain", "HELO c\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test.>\r\n", 0,
     "220 250 250 501", NULL, 0},
    {"SIZE over the limit", "EHLO c\r\nMAIL FROM:<a@a.test> SIZE=2000\r\n", 0, "220 250 552", NULL,
     0},
    {"DSN parameters taken",
     "EHLO c\r\nMAIL FROM:<a@a.test> RET=HDRS ENVID=x+2By BODY=8BITMIME "
     "SMTPUTF8\r\nRCPT TO:<b@b.test> NOTIFY=SUCCESS,FAILURE "
     "ORCPT=rfc822;b@b.test\r\n",
     0, "220 250 250 250", NULL, 0},
    {"unknown parameter", "EHLO c\r\nMAIL FROM:<a@a.test> FOO=1\r\nRCPT TO:<b@b.test> X\r\n", 0,
     "220 250 555 503", NULL, 0},
    {"bad NOTIFY", "EHLO c\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test> NOTIFY=SOMETIMES\r\n", 0,
     "220 250 250 501", NULL, 0},
    {"postmaster without a domain", "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\n", 0,
     "220 250 250 250", NULL, 0},
    {"STARTTLS not offered", "EHLO c\r\nSTARTTLS\r\n", 0, "220 250 502", NULL, 0},
    {"unknown command", "FOO\r\nNOOP\r\n", 0, "220 502 250", NULL, 0},
    {"NUL in a command", "NO\0OP\r\nNOOP\r\n", 13, "220 500 250", NULL, 0},
    {"message over the size limit", HELLO "0123456789\r\n0123456789\r\n.\r\nNOOP\r\n", 0,
     HELLO_CODES " 552 250", NULL, 0},
    {"QUIT ends, later input ignored", "QUIT\r\nNOOP\r\n", 0, "220 221", NULL, 0},
    /* BDAT (RFC 3030) */
    {"BDAT chunks by count, not dot-stuffed",
     HELLO_B "BDAT 8\r\nSub: x\r\nBDAT 14 LAST\r\n..a\r\n.\r\nQUIT\r\nNOOP\r\n", 0,
     HELLO_B_CODES " 250 250 250", "Sub: x\r\n..a\r\n.\r\nQUIT\r\n", 0},
    {"BDAT line split across chunks", HELLO_B "BDAT 3\r\nab\rBDAT 3 LAST\r\n\ncd", 0,
     HELLO_B_CODES " 250 250", "ab\r\ncd\r\n", 0},
    {"BDAT line without CR split across chunks",
     HELLO_B "BDAT 5\r\nx\r\nabBDAT 4\r\ncd\r\nBDAT 0 LAST\r\n", 0, HELLO_B_CODES " 250 250 250",
     "x\r\nabcd\r\n", 0},
    {"BDAT three pipelined chunks",
     HELLO_B "BDAT 44\r\nSubject: chunks\r\n\r\n.\r\n..two dots\r\nsplit lineBDAT 19\r\n goes "
             "on\r\nbare\nlf\r\nBDAT 50 LAST\r\nQUIT\r\nMAIL FROM:<evil@evil.test>\r\nno final "
             "newlineNOOP\r\n",
     0, HELLO_B_CODES " 250 250 250 250",
     "Subject: chunks\r\n\r\n.\r\n..two dots\r\nsplit line goes on\r\nbare\r\nlf\r\nQUIT\r\nMAIL "
     "FROM:<evil@evil.test>\r\nno final newline\r\n",
     0},
    {"BDAT 0 LAST ends the message", HELLO_B "BDAT 3\r\nx\r\nBDAT 0 LAST\r\nNOOP\r\n", 0,
     HELLO_B_CODES " 250 250 250", "x\r\n", 0},
    {"BDAT bare LF and CR normalized", HELLO_B "BDAT 5 LAST\r\na\nb\rc", 0, HELLO_B_CODES " 250",
     "a\r\nb\r\nc\r\n", 0},
    {"BDAT bare LF refused in reject mode", HELLO_B "BDAT 4 LAST\r\na\nb\nNOOP\r\n", 0,
     HELLO_B_CODES " 550 250", NULL, 1},
    {"BDAT bare CR at its end refused in reject mode", HELLO_B "BDAT 3 LAST\r\nab\rNOOP\r\n", 0,
     HELLO_B_CODES " 550 250", NULL, 1},
    {"BDAT CRLF split across chunks in reject mode", HELLO_B "BDAT 2\r\na\rBDAT 1 LAST\r\n\n", 0,
     HELLO_B_CODES " 250 250", "a\r\n", 1},
    {"DATA and RCPT after BDAT refused",
     HELLO_B "BDAT 3\r\nx\r\nDATA\r\nRCPT TO:<c@b.test>\r\nBDAT 0 LAST\r\n", 0,
     HELLO_B_CODES " 250 503 503 250", "x\r\n", 0},
    {"BDAT without MAIL: its chunk is skipped", "EHLO c\r\nBDAT 6\r\nQUIT\r\nNOOP\r\n", 0,
     "220 250 503 250", NULL, 0},
    {"BDAT without RCPT", "EHLO c\r\nMAIL FROM:<a@a.test>\r\nBDAT 6 LAST\r\nQUIT\r\nNOOP\r\n", 0,
     "220 250 250 554 250", NULL, 0},
    {"BDAT over the size limit: 552, later chunks 503",
     HELLO_B "BDAT 15\r\n0123456789abc\r\nBDAT 10\r\n0123456789BDAT 3 LAST\r\nabcNOOP\r\n", 0,
     HELLO_B_CODES " 250 552 503 250", NULL, 0},
    {"RSET mid-BDAT", HELLO_B "BDAT 3\r\nx\r\nRSET\r\nBDAT 3 LAST\r\ny\r\n", 0,
     HELLO_B_CODES " 250 250 503", NULL, 0},
    {"BDAT syntax error closes", "EHLO c\r\nBDAT x\r\nNOOP\r\n", 0, "220 250 501 421", NULL, 0},
    {"BDAT SP LAST without a size", "EHLO c\r\nBDAT LAST\r\n", 0, "220 250 501 421", NULL, 0},
    {"DATA then BDAT messages",
     HELLO_B "DATA\r\nx\r\n.\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nBDAT 3 "
             "LAST\r\ny\r\n",
     0, HELLO_B_CODES " 354 250 250 250 250", "x\r\n|y\r\n", 0},
};

static void feed(struct host *h, const struct row *r, int bytewise)
{
    struct smtp_proto_cfg cfg = {"mx.test", 1000, 100, r->reject_bare, 0, 0};
    if (strstr(r->name, "over the size limit"))
        cfg.size_limit = 20;
    memset(h, 0, sizeof(*h));
    smtp_proto_init(&h->p, &cfg, &hooks, h);
    smtp_proto_greeting(&h->p);
    size_t n = r->in_len ? r->in_len : strlen(r->in);
    if (!bytewise)
        smtp_proto_input(&h->p, r->in, n);
    for (size_t i = 0; bytewise && i < n; i++)
        smtp_proto_input(&h->p, r->in + i, 1);
}

static void host_free(struct host *h)
{
    smtp_proto_free(&h->p);
    buf_free(&h->content);
    buf_free(&h->messages);
    buf_free(&h->rcpts);
}

static void check_row(void **state, int bytewise)
{
    const struct row *r = *state;
    struct host h;
    struct buf c = BUF_INIT;
    feed(&h, r, bytewise);
    codes(&h.p.out, &c);
    assert_string_equal(buf_cstr(&c), r->codes);
    if (r->messages)
        assert_string_equal(buf_cstr(&h.messages), r->messages);
    else
        assert_int_equal(h.ends, 0);
    host_free(&h);
    buf_free(&c);
}

static void test_row_whole(void **state)
{
    check_row(state, 0);
}

static void test_row_bytewise(void **state)
{
    check_row(state, 1);
}

/* 600-byte command: 500, the session goes on; a flood without LF: 421. */
static void test_long_command_line(void **state)
{
    (void)state;
    struct host h;
    struct buf in = BUF_INIT, c = BUF_INIT;
    for (int i = 0; i < 600; i++)
        buf_addc(&in, 'A');
    buf_adds(&in, "\r\nNOOP\r\n");
    struct row r = {"long", buf_cstr(&in), in.len, "", NULL, 0};
    feed(&h, &r, 0);
    codes(&h.p.out, &c);
    assert_string_equal(buf_cstr(&c), "220 500 250");
    buf_clear(&c);
    for (int i = 0; i < 100 * 1024; i++)
        smtp_proto_input(&h.p, "x", 1);
    assert_true(h.p.in.len <= SMTP_CMD_MAX); /* nothing held beyond a line */
    codes(&h.p.out, &c);
    assert_string_equal(buf_cstr(&c), "220 500 250 421");
    assert_true(h.p.closing);
    smtp_proto_free(&h.p);
    buf_free(&in);
    buf_free(&c);
}

/* A 2 MB header line: the message is refused at its end, never held. */
static void test_long_text_line(void **state)
{
    (void)state;
    struct host h;
    struct buf c = BUF_INIT;
    struct row r = {"text", HELLO "Subject: ", 0, "", NULL, 0};
    feed(&h, &r, 0);
    h.p.cfg.size_limit = 0;
    for (int i = 0; i < 2048; i++) {
        char chunk[1024];
        memset(chunk, 'h', sizeof(chunk));
        smtp_proto_input(&h.p, chunk, sizeof(chunk));
        assert_true(h.p.in.len <= SMTP_TEXT_MAX + 1);
    }
    smtp_proto_input(&h.p, "\r\n\r\nbody\r\n.\r\nNOOP\r\n", 19);
    codes(&h.p.out, &c);
    assert_string_equal(buf_cstr(&c), HELLO_CODES " 500 250");
    assert_int_equal(h.ends, 0);
    assert_int_equal(h.aborts, 1);
    host_free(&h);
    buf_free(&c);
}

/* STARTTLS: the 220, then whatever was pipelined behind it is gone. */
static void test_starttls_discards_pipelined(void **state)
{
    (void)state;
    struct host h;
    struct buf c = BUF_INIT;
    struct smtp_proto_cfg cfg = {"mx.test", 1000, 100, 0, 1, 0};
    memset(&h, 0, sizeof(h));
    smtp_proto_init(&h.p, &cfg, &hooks, &h);
    const char *in = "EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@e.test>\r\n";
    smtp_proto_input(&h.p, in, strlen(in));
    assert_int_equal(h.tls, 1);
    assert_int_equal(h.p.state, SMTP_TLS);
    smtp_proto_tls_started(&h.p);
    smtp_proto_input(&h.p, "MAIL FROM:<a@a.test>\r\nEHLO c\r\n", 30);
    codes(&h.p.out, &c);
    assert_string_equal(buf_cstr(&c), "250 220 503 250"); /* RFC 3207 4.2: EHLO again first */
    const char *second = strstr(strstr(buf_cstr(&h.p.out), "250-mx.test") + 1, "250-mx.test");
    assert_non_null(second);
    assert_null(strstr(second, "STARTTLS")); /* not offered again inside TLS */
    smtp_proto_free(&h.p);
    buf_free(&c);
}

/* The error counter: the 20th refused command ends the session. */
static void test_error_limit(void **state)
{
    (void)state;
    struct host h;
    struct buf in = BUF_INIT, c = BUF_INIT;
    for (int i = 0; i < 25; i++)
        buf_adds(&in, "BOGUS\r\n");
    struct row r = {"errors", buf_cstr(&in), in.len, "", NULL, 0};
    feed(&h, &r, 0);
    codes(&h.p.out, &c);
    assert_non_null(strstr(buf_cstr(&c), "502 502 421"));
    assert_true(h.p.closing);
    assert_int_equal(h.p.cmd_total[CMD_UNKNOWN], 20);
    smtp_proto_free(&h.p);
    buf_free(&in);
    buf_free(&c);
}

static void test_counts(void **state)
{
    (void)state;
    struct host h;
    struct buf c = BUF_INIT;
    struct row r = {
        "counts",
        "EHLO c\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<deny@x.test>\r\nRCPT TO:<b@b.test>\r\n"
        "DATA\r\nx\r\n.\r\nQUIT\r\n",
        0,
        "",
        NULL,
        0};
    feed(&h, &r, 0);
    smtp_proto_counts(&h.p, &c);
    assert_string_equal(buf_cstr(&c), "ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 commands=5/6");
    host_free(&h);
    buf_free(&c);
    r.in = "EHLO c\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nBDAT 1\r\nxDATA\r\n"
           "BDAT 2 LAST\r\ny\nQUIT\r\n";
    feed(&h, &r, 0);
    smtp_proto_counts(&h.p, &c);
    assert_string_equal(buf_cstr(&c), "ehlo=1 mail=1 rcpt=1 data=0/1 bdat=2 quit=1 commands=6/7");
    host_free(&h);
    buf_free(&c);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(rows); i++) {
        rowtest_add(&t, test_row_whole, &rows[i], "%s", rows[i].name);
        rowtest_add(&t, test_row_bytewise, &rows[i], "%s (byte by byte)", rows[i].name);
    }
    rowtest_add(&t, test_long_command_line, NULL, "600-byte command line and a flood");
    rowtest_add(&t, test_long_text_line, NULL, "2 MB header line");
    rowtest_add(&t, test_starttls_discards_pipelined, NULL, "STARTTLS discards pipelined input");
    rowtest_add(&t, test_error_limit, NULL, "error limit");
    rowtest_add(&t, test_counts, NULL, "disconnect counts");
    return rowtest_run(&t, "smtp_proto");
}
