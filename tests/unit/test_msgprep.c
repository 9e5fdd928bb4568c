/*
 * test_msgprep — golden input/output pairs for the sendmail front end's
 * message preparation (queue/msgprep.h): each row is a command line's worth
 * of options, the bytes on standard input, and the exact envelope and
 * message text expected in the queue's stored form, LF lines (or the
 * sysexits code and error). Every row runs
 * twice: input fed in one piece and fed one byte at a time, which must give
 * the same result.
 */
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "msgprep.h"
#include "rowtest.h"

#define NOW 1700000000 /* Tue, 14 Nov 2023 22:13:20 +0000 (TZ=UTC) */
#define ADDED_ID "Message-ID: <20231114221320.U1@host.test>\n"
#define ADDED_DATE "Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
#define HDRS "From: a@a.test\nDate: d\nMessage-ID: <m@x>\n"
#define HDRS_CRLF "From: a@a.test\r\nDate: d\r\nMessage-ID: <m@x>\r\n"

struct row {
    const char *name;
    unsigned flags;
    const char *sender;
    const char *full_name;
    const char *args[4]; /* NULL-terminated */
    const char *in;
    size_t in_len;  /* 0: strlen(in) */
    uint64_t limit; /* 0: none */
    int rc;
    const char *want_sender;
    const char *want_rcpt; /* " | "-joined */
    const char *want;      /* content, or the error text when rc != EX_OK */
};

static const struct row rows[] = {
    /* ---- line endings (SPEC 2: bare LF and CR LF both accepted) ---- */
    {"bare LF lines become CR LF",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "Subject: hi\n\nline 1\nline 2\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "Subject: hi\n\nline 1\nline 2\n"},
    {"CR LF lines are kept",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS_CRLF "Subject: hi\r\n\r\nline 1\r\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "Subject: hi\n\nline 1\n"},
    {"CR CR LF never survives",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "\r\nx\r\r\ny\r\r\r\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\nx\ny\n"},
    {"a CR inside a line is left alone",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "\na\rb\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\na\rb\n"},
    {"last line without line end",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "\nno newline",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\nno newline\n"},
    /* ---- the lone dot ---- */
    {"lone dot ends the message",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "\nline 1\n.\nnot read\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\nline 1\n"},
    {"lone dot with CR LF ends the message",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS_CRLF "\r\nline 1\r\n.\r\nnot read\r\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\nline 1\n"},
    {"-i keeps the lone dot",
     MSGPREP_IGNORE_DOTS,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "\nline 1\n.\nline 3\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\nline 1\n.\nline 3\n"},
    {"no dot unstuffing on standard input",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "\n..\n.x\n. \n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\n..\n.x\n. \n"},
    {"lone dot as the first line: empty message",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     ".\nx\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     ADDED_ID ADDED_DATE "From: alice@origin.test\n\n"},
    /* ---- added fields (SPEC 2) ---- */
    {"missing Date, Message-ID, From added",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     "Subject: s\n\nbody\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     "Subject: s\n" ADDED_ID ADDED_DATE "From: alice@origin.test\n\nbody\n"},
    {"existing fields are not doubled, any case",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     "FROM: x@y.test\nmessage-id: <1@y>\ndate: d\n\nb\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     "FROM: x@y.test\nmessage-id: <1@y>\ndate: d\n\nb\n"},
    {"-F full name in From",
     0,
     "alice@a.test",
     "Alice Smith",
     {"bob@b.test"},
     "\nb\n",
     0,
     0,
     EX_OK,
     "alice@a.test",
     "bob@b.test",
     ADDED_ID ADDED_DATE "From: Alice Smith <alice@a.test>\n\nb\n"},
    {"-F with specials is quoted",
     0,
     "alice@a.test",
     "Smith, Al \"x\" \\",
     {"bob@b.test"},
     "\nb\n",
     0,
     0,
     EX_OK,
     "alice@a.test",
     "bob@b.test",
     ADDED_ID ADDED_DATE "From: \"Smith, Al \\\"x\\\" \\\\\" <alice@a.test>\n\nb\n"},
    {"-F cannot inject a header line",
     0,
     "alice@a.test",
     "Eve\r\nBcc: x@y",
     {"bob@b.test"},
     "\nb\n",
     0,
     0,
     EX_OK,
     "alice@a.test",
     "bob@b.test",
     ADDED_ID ADDED_DATE "From: \"EveBcc: x@y\" <alice@a.test>\n\nb\n"},
    {"-F of only white space is ignored",
     0,
     "alice@a.test",
     " \t",
     {"bob@b.test"},
     "\nb\n",
     0,
     0,
     EX_OK,
     "alice@a.test",
     "bob@b.test",
     ADDED_ID ADDED_DATE "From: alice@a.test\n\nb\n"},
    {"null sender <> gets MAILER-DAEMON in From",
     0,
     "<>",
     NULL,
     {"bob@b.test"},
     "\nb\n",
     0,
     0,
     EX_OK,
     "",
     "bob@b.test",
     ADDED_ID ADDED_DATE "From: MAILER-DAEMON@host.test\n\nb\n"},
    {"null sender as empty -f",
     0,
     "",
     NULL,
     {"bob@b.test"},
     HDRS "\nb\n",
     0,
     0,
     EX_OK,
     "",
     "bob@b.test",
     HDRS "\nb\n"},
    {"sender in angle brackets",
     0,
     "<Alice@A.TEST>",
     NULL,
     {"bob@b.test"},
     HDRS "\nb\n",
     0,
     0,
     EX_OK,
     "Alice@a.test",
     "bob@b.test",
     HDRS "\nb\n"},
    /* ---- header/body structure ---- */
    {"mbox From_ line dropped",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     "From alice Tue Nov 14 22:13:20 2023\n" HDRS "\nb\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\nb\n"},
    {"From_ only on the first line",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "\nFrom here on\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\nFrom here on\n"},
    {"missing separator is added",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "this is body\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\nthis is body\n"},
    {"folded header kept as written",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "Subject: a\n\tlong one\n\nb\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "Subject: a\n\tlong one\n\nb\n"},
    {"Bcc removed without -t",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "Bcc: secret@s.test,\n  other@s.test\nTo: bob@b.test\n\nb\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "To: bob@b.test\n\nb\n"},
    /* ---- recipients ---- */
    {"bare recipient gets @myorigin",
     0,
     "alice",
     NULL,
     {"bob"},
     HDRS "\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@origin.test",
     HDRS "\n"},
    {"argument is an address list",
     0,
     "alice",
     NULL,
     {"a@b.test, Carol <c@D.Test>", "e"},
     HDRS "\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "a@b.test | c@d.test | e@origin.test",
     HDRS "\n"},
    {"duplicates dropped",
     0,
     "alice",
     NULL,
     {"a@b.test", "a@B.test", "x, x"},
     HDRS "\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "a@b.test | x@origin.test",
     HDRS "\n"},
    {"-t: To, Cc, Bcc with folding, group, comments; Bcc removed",
     MSGPREP_EXTRACT,
     "alice",
     NULL,
     {NULL},
     HDRS "To: Bob Smith <bob@b.test>, (comment) carol@c.test,\n"
          "   team: dan@d.test, \"Eve E.\" <eve@e.test>;\n"
          "Cc: frank@f.test (Frank)\nBcc: gina@g.test\nSubject: s\n\nbody\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test | carol@c.test | dan@d.test | eve@e.test | frank@f.test | gina@g.test",
     HDRS "To: Bob Smith <bob@b.test>, (comment) carol@c.test,\n"
          "   team: dan@d.test, \"Eve E.\" <eve@e.test>;\n"
          "Cc: frank@f.test (Frank)\nSubject: s\n\nbody\n"},
    {"-t: command-line recipients are added",
     MSGPREP_EXTRACT,
     "alice",
     NULL,
     {"extra@x.test"},
     HDRS "To: bob@b.test\n\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "extra@x.test | bob@b.test",
     HDRS "To: bob@b.test\n\n"},
    {"-t: Resent- fields take over",
     MSGPREP_EXTRACT,
     "alice",
     NULL,
     {NULL},
     HDRS "To: old@o.test\nResent-From: r@r.test\nResent-To: new@n.test\n"
          "Resent-Bcc: hidden@h.test\n\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "new@n.test | hidden@h.test",
     HDRS "To: old@o.test\nResent-From: r@r.test\nResent-To: new@n.test\n\n"},
    {"-t: undisclosed-recipients group and bare names",
     MSGPREP_EXTRACT,
     "alice",
     NULL,
     {NULL},
     HDRS "To: undisclosed-recipients:;\nCc: bob\n\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@origin.test",
     HDRS "To: undisclosed-recipients:;\nCc: bob\n\n"},
    {"-t: fields in the body are not read",
     MSGPREP_EXTRACT,
     "alice",
     NULL,
     {NULL},
     HDRS "To: bob@b.test\n\nTo: not@n.test\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "To: bob@b.test\n\nTo: not@n.test\n"},
    /* ---- errors (sysexits) ---- */
    {"no recipients without -t: EX_USAGE",
     0,
     "alice",
     NULL,
     {NULL},
     HDRS "\n",
     0,
     0,
     EX_USAGE,
     NULL,
     NULL,
     "recipient addresses must be specified on the command line or via the -t option"},
    {"empty group only: EX_USAGE",
     0,
     "alice",
     NULL,
     {"nobody:;"},
     HDRS "\n",
     0,
     0,
     EX_USAGE,
     NULL,
     NULL,
     "recipient addresses must be specified on the command line or via the -t option"},
    {"-t with no recipient field: EX_USAGE",
     MSGPREP_EXTRACT,
     "alice",
     NULL,
     {NULL},
     HDRS "Subject: s\n\n",
     0,
     0,
     EX_USAGE,
     NULL,
     NULL,
     "no recipient addresses found in message header"},
    {"bad argument syntax: EX_DATAERR",
     0,
     "alice",
     NULL,
     {"Bob Smith"},
     HDRS "\n",
     0,
     0,
     EX_DATAERR,
     NULL,
     NULL,
     "bad address syntax in command line: malformed local part: Bob Smith"},
    {"bad domain in argument: EX_DATAERR",
     0,
     "alice",
     NULL,
     {"bob@-bad-.test"},
     HDRS "\n",
     0,
     0,
     EX_DATAERR,
     NULL,
     NULL,
     NULL},
    {"bad To: syntax with -t: EX_DATAERR",
     MSGPREP_EXTRACT,
     "alice",
     NULL,
     {NULL},
     HDRS "To: <bob@b.test\n\n",
     0,
     0,
     EX_DATAERR,
     NULL,
     NULL,
     "bad address syntax in To: header: missing \">\":  <bob@b.test"},
    {"bad sender: EX_DATAERR",
     0,
     "a b",
     NULL,
     {"bob@b.test"},
     HDRS "\n",
     0,
     0,
     EX_DATAERR,
     NULL,
     NULL,
     NULL},
    {"NUL byte: EX_DATAERR",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "\nab\0c\n",
     sizeof(HDRS "\nab\0c\n") - 1,
     0,
     EX_DATAERR,
     NULL,
     NULL,
     "message contains a NUL byte"},
    {"NUL after the lone dot is never read",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "\n.\n\0\n",
     sizeof(HDRS "\n.\n\0\n") - 1,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\n"},
    {"over the size limit: EX_DATAERR",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "\n0123456789\n0123456789\n",
     0,
     60,
     EX_DATAERR,
     NULL,
     NULL,
     "message is larger than message_size_limit (60 bytes)"},
    {"one long line over the limit: EX_DATAERR",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     "0123456789012345678901234567890123456789",
     0,
     30,
     EX_DATAERR,
     NULL,
     NULL,
     "message is larger than message_size_limit (30 bytes)"},
    {"added fields count toward the limit",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     "\nbody\n",
     0,
     100,
     EX_DATAERR,
     NULL,
     NULL,
     "message is larger than message_size_limit (100 bytes)"},
    {"exactly at the limit passes",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     HDRS "\n",
     0,
     sizeof(HDRS "\n") - 1,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\n"},
    {"mixed CR LF and LF lines",
     0,
     "alice",
     NULL,
     {"bob@b.test"},
     "From: a@a.test\r\nDate: d\nMessage-ID: <m@x>\r\n\r\nx\ny\r\n",
     0,
     0,
     EX_OK,
     "alice@origin.test",
     "bob@b.test",
     HDRS "\nx\ny\n"},
};

static const struct msgprep_config base_cfg = {"host.test", "origin.test", 0};

static size_t count_args(const struct row *r)
{
    size_t n = 0;
    while (n < 4 && r->args[n])
        n++;
    return n;
}

/* Run one row with the input fed in pieces of `step` bytes (0: at once). */
static int run_row(const struct row *r, size_t step, struct prepared_message *m, struct buf *err)
{
    struct msgprep_config cfg = base_cfg;
    cfg.size_limit = r->limit;
    struct msgprep_request req = {r->flags,      r->sender, r->full_name, (char *const *)r->args,
                                  count_args(r), NOW,       "U1"};
    size_t len = r->in_len ? r->in_len : strlen(r->in);
    int rc = msgprep_begin(&cfg, &req, m, err);
    if (rc != EX_OK)
        return rc;
    struct buf text = BUF_INIT;
    struct msgprep_input in;
    msgprep_input_init(&in, r->flags, r->limit, &text);
    size_t chunk = step ? step : len;
    for (size_t off = 0; rc == EX_OK && off < len; off += chunk)
        rc = msgprep_input_feed(&in, r->in + off, len - off < chunk ? len - off : chunk, err);
    if (rc == EX_OK)
        rc = msgprep_input_finish(&in, err);
    msgprep_input_free(&in);
    if (rc == EX_OK)
        rc = msgprep_finish(&cfg, &req, text.s ? text.s : "", text.len, m, err);
    buf_free(&text);
    return rc;
}

static void check_result(const struct row *r, int rc, struct prepared_message *m, struct buf *err)
{
    assert_int_equal(rc, r->rc);
    if (rc != EX_OK) {
        assert_true(err->len > 0);
        if (r->want)
            assert_string_equal(buf_cstr(err), r->want);
        return;
    }
    assert_int_equal(err->len, 0);
    assert_string_equal(m->sender, r->want_sender);
    struct buf rcpt = BUF_INIT;
    for (size_t k = 0; k < m->rcpt.n; k++) {
        if (k > 0)
            buf_adds(&rcpt, " | ");
        buf_adds(&rcpt, m->rcpt.v[k]);
    }
    assert_string_equal(buf_cstr(&rcpt), r->want_rcpt);
    assert_string_equal(buf_cstr(&m->content), r->want);
    buf_free(&rcpt);
}

static void check_row(void **state)
{
    const struct row *r = *state;
    size_t steps[] = {0, 1, 7};
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        struct prepared_message m = {0};
        struct buf err = BUF_INIT;
        int rc = run_row(r, steps[k], &m, &err);
        check_result(r, rc, &m, &err);
        prepared_message_free(&m);
        buf_free(&err);
    }
}

static void check_date_format(void **state)
{
    struct buf out = BUF_INIT;
    msgprep_format_date(0, &out);
    assert_string_equal(buf_cstr(&out), "Thu, 1 Jan 1970 00:00:00 +0000");
    buf_clear(&out);
    setenv("TZ", "EST5", 1);
    tzset();
    msgprep_format_date(NOW, &out);
    assert_string_equal(buf_cstr(&out), "Tue, 14 Nov 2023 17:13:20 -0500");
    buf_clear(&out);
    setenv("TZ", "IST-5:30", 1);
    tzset();
    msgprep_format_date(NOW, &out);
    assert_string_equal(buf_cstr(&out), "Wed, 15 Nov 2023 03:43:20 +0530");
    setenv("TZ", "UTC", 1);
    tzset();
    buf_free(&out);
}

/* msgprep_read_fd on a pipe: the same canonical text, and it stops at the dot. */
static void check_read_fd(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    const char *in = "A: 1\nb\r\n.\nrest\n";
    assert_int_equal(write(fds[1], in, strlen(in)), (ssize_t)strlen(in));
    close(fds[1]);
    struct buf text = BUF_INIT, err = BUF_INIT;
    assert_int_equal(msgprep_read_fd(fds[0], 0, 0, &text, &err), EX_OK);
    assert_string_equal(buf_cstr(&text), "A: 1\nb\n");
    close(fds[0]);
    buf_free(&text);
    buf_free(&err);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(rows); i++)
        rowtest_add(&t, check_row, &rows[i], "msgprep: %s", rows[i].name);
    rowtest_add(&t, check_date_format, NULL, "RFC 5322 date-time in local time");
    rowtest_add(&t, check_read_fd, NULL, "reading a file descriptor");
    return rowtest_run(&t, "msgprep");
}
