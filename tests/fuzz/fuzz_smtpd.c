/*
 * fuzz_smtpd — libFuzzer target for what onehop-smtpd reads from a client:
 * the SMTP server engine (daemons/smtpd/smtp_proto.c) fed with any bytes,
 * in pieces whose sizes the first byte chooses, with STARTTLS offered and
 * the second byte picking smtpd_bare_newline. Invariants checked:
 *   - the engine never holds more than a command or text line of input,
 *     BDAT chunks included (a line split across chunks is joined, bounded);
 *   - content reaches the host only in whole lines ending in CRLF, with no
 *     bare CR or LF anywhere (what is relayed on cannot be smuggled);
 *   - a message is accepted only after DATA was answered 354 or a BDAT
 *     transaction opened it (data_begin), never twice.
 * Crashes, sanitizer reports and leaks are the failures.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtpd/smtp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct host {
    struct smtp_proto p;
    int in_message;
    unsigned tick;
};

static int h_rcpt(void *arg, struct smtp_proto *p, const char *addr, struct buf *reply)
{
    (void)arg;
    (void)p;
    if (addr[0] != 'x')
        return 0;
    buf_adds(reply, "554 5.7.1 Relay access denied");
    return -1;
}

static int h_begin(void *arg, struct smtp_proto *p, struct buf *reply)
{
    struct host *h = arg;
    (void)p;
    if (++h->tick % 7 == 0) {
        buf_adds(reply, "451 4.3.0 queue unavailable");
        return -1;
    }
    h->in_message = 1;
    return 0;
}

static void h_data(void *arg, const char *s, size_t n)
{
    struct host *h = arg;
    if (!h->in_message || n < 2 || s[n - 2] != '\r' || s[n - 1] != '\n')
        __builtin_trap();
    for (size_t i = 0; i < n; i++) /* every CR before an LF, every LF after a CR */
        if ((s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n')) ||
            (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')))
            __builtin_trap();
}

static void h_end(void *arg)
{
    struct host *h = arg;
    if (!h->in_message)
        __builtin_trap();
    h->in_message = 0;
    smtp_proto_data_result(&h->p, h->tick % 3 ? "250 2.0.0 Ok" : "451 4.3.0 try again");
}

static void h_abort(void *arg)
{
    struct host *h = arg;
    h->in_message = 0;
}

static void h_tls(void *arg)
{
    struct host *h = arg;
    smtp_proto_tls_started(&h->p);
}

static const struct smtp_hooks hooks = {NULL, h_rcpt, h_begin, h_data, h_end, h_abort, h_tls, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t piece = (size_t)data[0] % 64 + 1;
    struct smtp_proto_cfg cfg = {"mx.test", 4096, 5, data[1] & 1, 1, 0};
    struct host h;
    memset(&h, 0, sizeof(h));
    smtp_proto_init(&h.p, &cfg, &hooks, &h);
    smtp_proto_greeting(&h.p);
    for (size_t at = 2; at < size; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        smtp_proto_input(&h.p, data + at, n);
        if (h.p.in.len > SMTP_TEXT_MAX + 1 + piece || h.p.bdat_part.len > SMTP_TEXT_MAX + 1)
            __builtin_trap();
        buf_clear(&h.p.out);
    }
    struct buf counts = BUF_INIT;
    smtp_proto_counts(&h.p, &counts);
    buf_free(&counts);
    smtp_proto_free(&h.p);
    return 0;
}
