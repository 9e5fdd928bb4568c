/*
 * fuzz_bounce — libFuzzer target for the DSN the router writes
 * (daemons/router/bounce.c) from bytes others chose: the remote server's
 * reply (the diagnostic), the envelope addresses and the original header
 * block. Nothing in onehop parses a DSN back; what is checked is that such
 * bytes cannot change the DSN's shape, and that the queue takes it.
 *
 * Input: byte 0 sets the notice (bit 0: a delay notice; bit 1: ORCPT given;
 * bit 2: a Remote-MTA), the rest is split at NUL bytes into the sender, the
 * original header block and up to 8 pairs of recipient and diagnostic. An
 * address is used only when addr_parse takes it as smtpd does (a path, UTF-8
 * allowed; the null sender is never bounced); a diagnostic has its LFs made
 * spaces, as the SMTP reply reader joins lines.
 *
 * Besides crashes, sanitizer reports and leaks, it traps when a status code
 * (bounce_status, bounce_delay_status) is not class.subject.detail of the
 * notice's class, when the DSN's header section is not exactly its eight
 * fields, when its delivery-status part has a line that is not one of its
 * fields, or not one Final-Recipient, Action, Status and Diagnostic-Code
 * line per recipient, or when
 * onehop-queue's content check (queue/msgcheck.h) would refuse it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "buf.h"
#include "header.h"
#include "msgcheck.h"
#include "router/bounce.h"

#define RCPT_MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const dsn_fields[] = {"From",         "To",          "Subject",
                                         "Date",         "Message-ID",  "Auto-Submitted",
                                         "MIME-Version", "Content-Type"};

/* The next NUL-separated piece of data[*off..size) as a C string in out. */
static int next_piece(const uint8_t *data, size_t size, size_t *off, struct buf *out)
{
    if (*off >= size)
        return 0;
    const uint8_t *nul = memchr(data + *off, 0, size - *off);
    size_t len = nul ? (size_t)(nul - data) - *off : size - *off;
    buf_clear(out);
    buf_add(out, data + *off, len);
    buf_cstr(out);
    *off += len + 1;
    return 1;
}

/* The address in piece as smtpd would queue it ("<local@domain>" taken). */
static int queued_address(const struct buf *piece, struct buf *out)
{
    struct mailaddr a;
    const char *why;
    if (addr_parse(piece->s ? piece->s : "", piece->len, ADDR_PATH | ADDR_ALLOW_UTF8, &a, &why) < 0)
        return 0;
    buf_clear(out);
    addr_format(&a, out);
    buf_cstr(out);
    addr_free(&a);
    return 1;
}

static void check_status(const char *s, char cls)
{
    size_t i = 0;
    if (s[i++] != cls)
        __builtin_trap();
    for (int part = 0; part < 2; part++) {
        if (s[i++] != '.')
            __builtin_trap();
        size_t digits = 0;
        while (s[i] >= '0' && s[i] <= '9')
            i++, digits++;
        if (digits < 1 || digits > 3)
            __builtin_trap();
    }
    if (s[i] != '\0' || i >= 16)
        __builtin_trap();
}

static size_t count_lines(const char *p, const char *end, const char *prefix)
{
    size_t n = 0, k = strlen(prefix);
    for (const char *line = p; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if ((size_t)(end - line) >= k && memcmp(line, prefix, k) == 0)
            n++;
        line = nl ? nl + 1 : end;
    }
    return n;
}

/* RFC 3464 2.2 and 2.3 as bounce.c writes them: every line of the
 * delivery-status part is empty, a boundary, or one of these fields. */
static int status_line_known(const char *line, size_t len)
{
    static const char *const names[] = {
        "Content-Type: ",    "Reporting-MTA: ",   "X-Onehop-Queue-ID: ",
        "Arrival-Date: ",    "Final-Recipient: ", "Original-Recipient: ",
        "Action: ",          "Status: ",          "Remote-MTA: ",
        "Diagnostic-Code: ", "Will-Retry-Until: "};
    if (len == 0 || (len >= 2 && line[0] == '-' && line[1] == '-'))
        return 1;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (len >= strlen(names[i]) && memcmp(line, names[i], strlen(names[i])) == 0)
            return 1;
    return 0;
}

static void check_status_part(const char *p, const char *end)
{
    for (const char *line = p; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (!status_line_known(line, len))
            __builtin_trap();
        line += len + 1;
    }
}

static void check_dsn(const struct buf *dsn, size_t nrcpt, int delayed)
{
    struct header_block hb = HEADER_BLOCK_INIT;
    header_block_parse(dsn->s, dsn->len, &hb);
    if (hb.n != sizeof(dsn_fields) / sizeof(dsn_fields[0]) || !hb.has_separator)
        __builtin_trap();
    for (size_t i = 0; i < hb.n; i++)
        if (hb.v[i].name_len != strlen(dsn_fields[i]) ||
            memcmp(hb.v[i].name, dsn_fields[i], hb.v[i].name_len) != 0)
            __builtin_trap();
    free(hb.v);
    const char *part = strstr(dsn->s, "\nContent-Type: message/delivery-status\n\n");
    const char *next = part ? strstr(part + 1, "\nContent-Type: text/rfc822-headers\n\n") : NULL;
    if (!part || !next)
        __builtin_trap();
    if (count_lines(part, next, "Final-Recipient: rfc822; ") != nrcpt ||
        count_lines(part, next, delayed ? "Action: delayed\n" : "Action: failed\n") != nrcpt ||
        count_lines(part, next, "Status: ") != nrcpt ||
        count_lines(part, next, "Diagnostic-Code: smtp; ") != nrcpt)
        __builtin_trap();
    check_status_part(part + 1, next);
    struct msgcheck mc;
    struct buf stored = BUF_INIT;
    msgcheck_init(&mc, 0);
    if (msgcheck_feed(&mc, dsn->s, dsn->len, &stored) != 0 || msgcheck_finish(&mc, &stored) != 0)
        __builtin_trap();
    buf_free(&stored);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned flags = data[0];
    size_t off = 1, n = 0;
    struct buf piece = BUF_INIT, sender = BUF_INIT, headers = BUF_INIT;
    struct buf addr[RCPT_MAX], orcpt[RCPT_MAX], diag[RCPT_MAX];
    struct bounce_rcpt rcpt[RCPT_MAX];
    if (!next_piece(data, size, &off, &piece) || !queued_address(&piece, &sender))
        buf_sets(&sender, "sender@example.org");
    next_piece(data, size, &off, &headers);
    while (n < RCPT_MAX && next_piece(data, size, &off, &piece)) {
        addr[n] = (struct buf)BUF_INIT;
        orcpt[n] = (struct buf)BUF_INIT;
        diag[n] = (struct buf)BUF_INIT;
        int ok = queued_address(&piece, &addr[n]);
        next_piece(data, size, &off, &diag[n]);
        for (size_t i = 0; i < diag[n].len; i++)
            if (diag[n].s[i] == '\n')
                diag[n].s[i] = ' ';
        char status[16];
        bounce_status(buf_cstr(&diag[n]), status);
        check_status(status, '5');
        bounce_delay_status(diag[n].s, status);
        check_status(status, '4');
        if (!ok) {
            buf_free(&addr[n]);
            buf_free(&diag[n]);
            continue;
        }
        buf_printf(&orcpt[n], "rfc822;%s", addr[n].s);
        rcpt[n] = (struct bounce_rcpt){addr[n].s, (flags & 2) ? orcpt[n].s : "", diag[n].s,
                                       (flags & 4) ? "mx.example.net[192.0.2.25]" : NULL};
        n++;
    }
    struct bounce b = {"host.example.org",
                       "4X1b2C3d4E5f6G7h",
                       sender.s,
                       1700000000,
                       1700003600,
                       rcpt,
                       n,
                       headers.s ? headers.s : "",
                       headers.len,
                       (int)(flags & 1),
                       (flags & 1) ? 1700432000 : 0};
    struct buf dsn = BUF_INIT;
    bounce_compose(&b, &dsn);
    check_dsn(&dsn, n, (int)(flags & 1));
    buf_free(&dsn);
    for (size_t i = 0; i < n; i++) {
        buf_free(&addr[i]);
        buf_free(&orcpt[i]);
        buf_free(&diag[i]);
    }
    buf_free(&piece);
    buf_free(&sender);
    buf_free(&headers);
    return 0;
}
