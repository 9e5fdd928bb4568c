/*
 * fuzz_remote — libFuzzer target for what onehop-remote reads from others:
 * the first byte chooses
 *   0: the router's records (common/remote_proto.c): any bytes as a JOB, a
 *      RESULT and a DONE record; a decoded job must encode again to the same
 *      bytes (the decoder loses or invents nothing);
 *   1: a server's replies (daemons/remote/smtp_wire.c): the bytes fed in
 *      pieces of the sizes the second byte gives, every whole reply taken
 *      and parsed as an EHLO reply; the reply text never grows past its
 *      bound;
 *   2: stored content on its way to the wire: the encoded form has no bare
 *      LF and no line starting with a single '.' before the end; the scan
 *      (wire size, 8-bit bytes, 8-bit header) learns the same in two pieces
 *      as in one.
 * Crashes, sanitizer reports and leaks are the failures.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "remote_proto.h"
#include "remote/smtp_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void records(const uint8_t *p, size_t n)
{
    struct rp_job j;
    struct rp_result r;
    struct buf text = BUF_INIT, again = BUF_INIT;
    const char *why;
    uint64_t job;
    uint32_t count;
    if (rp_get_job(p, n, &j, &why) == 0) {
        rp_put_job(&again, &j);
        if (again.len != n || memcmp(again.s, p, n) != 0)
            __builtin_trap();
        rp_job_free(&j);
    }
    if (rp_get_result(p, n, &r, &text, &why) == 0 && r.cls > RP_PERM)
        __builtin_trap();
    (void)rp_get_done(p, n, &job, &count, &why);
    buf_free(&text);
    buf_free(&again);
}

static void replies(const uint8_t *p, size_t n)
{
    struct smtp_reader rd;
    struct smtp_reply rep = {0};
    struct smtp_ext ext;
    size_t piece = n ? (size_t)p[0] % 64 + 1 : 1;
    smtp_reader_init(&rd);
    for (size_t at = n ? 1 : 0; at < n; at += piece) {
        smtp_reader_feed(&rd, p + at, n - at < piece ? n - at : piece);
        const char *why;
        int rc;
        while ((rc = smtp_reader_next(&rd, &rep, &why)) == 1) {
            if (rep.code < 200 || rep.code > 599 || rep.text.len > SMTP_REPLY_MAX + 8)
                __builtin_trap();
            smtp_ext_parse(&rep, &ext);
        }
        if (rc < 0)
            break;
    }
    smtp_reply_free(&rep);
    smtp_reader_free(&rd);
}

static void content(const uint8_t *p, size_t n)
{
    struct smtp_dot d;
    struct buf out = BUF_INIT;
    size_t cut = n ? p[0] % (n + 1) : 0;
    smtp_dot_init(&d);
    smtp_dot_encode(&d, (const char *)p, cut, &out);
    smtp_dot_encode(&d, (const char *)p + cut, n - cut, &out);
    smtp_dot_finish(&d, &out);
    struct smtp_scan one, two;
    smtp_scan_init(&one);
    smtp_scan_init(&two);
    uint64_t size1 = smtp_wire_size((const char *)p, n, &one);
    uint64_t size2 = smtp_wire_size((const char *)p, cut, &two);
    size2 += smtp_wire_size((const char *)p + cut, n - cut, &two);
    if (size1 != size2 || one.eightbit != two.eightbit || one.header_8bit != two.header_8bit ||
        size1 > out.len)
        __builtin_trap();
    /* every LF follows a CR that was not in the content before it... */
    for (size_t i = 0; i < out.len; i++)
        if (out.s[i] == '\n' && (i == 0 || out.s[i - 1] != '\r'))
            __builtin_trap();
    /* ...and a line that is a single dot is only the end */
    for (size_t i = 0; i + 3 <= out.len - 3; i++)
        if ((i == 0 || out.s[i - 1] == '\n') && memcmp(out.s + i, ".\r\n", 3) == 0)
            __builtin_trap();
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0:
        records(data + 1, size - 1);
        break;
    case 1:
        replies(data + 1, size - 1);
        break;
    default:
        content(data + 1, size - 1);
        break;
    }
    return 0;
}
