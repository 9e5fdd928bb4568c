/*
 * fuzz_headers — libFuzzer target for what `sendmail -t` parses from an
 * untrusted message: the standard-input reader (line ends, lone dot, NUL,
 * size limit), the header splitter and the RFC 5322 address lists of To:,
 * Cc:, Bcc: and Resent-*. The first input byte picks the -i flag and the
 * feeding chunk size; the rest is the message. Also parses the whole input
 * as one address list. Must not crash, read out of bounds or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sysexits.h>

#include "addrlist.h"
#include "msgprep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_address_list(const char *s, size_t n)
{
    struct addrlist l = ADDRLIST_INIT;
    const char *why = NULL;
    if (addrlist_parse(s, n, &l, &why) == 0 && why != NULL)
        __builtin_trap(); /* success must not report a reason */
    addrlist_free(&l);
}

static void fuzz_message(unsigned flags, size_t step, const char *s, size_t n)
{
    static const struct msgprep_config cfg = {"host.test", "origin.test", 1u << 20};
    char *const args[] = {(char *)"extra@x.test"};
    struct msgprep_request req = {flags, "alice", "Alice", args, 1, 1700000000, "F1"};
    struct prepared_message m = {0};
    struct buf text = BUF_INIT, err = BUF_INIT;
    struct msgprep_input in;
    int rc = msgprep_begin(&cfg, &req, &m, &err);
    msgprep_input_init(&in, flags, cfg.size_limit, &text);
    for (size_t off = 0; rc == EX_OK && off < n; off += step)
        rc = msgprep_input_feed(&in, s + off, n - off < step ? n - off : step, &err);
    if (rc == EX_OK)
        rc = msgprep_input_finish(&in, &err);
    if (rc == EX_OK)
        rc = msgprep_finish(&cfg, &req, text.s ? text.s : "", text.len, &m, &err);
    if (rc == EX_OK && (m.rcpt.n == 0 || memchr(m.content.s, '\0', m.content.len)))
        __builtin_trap(); /* a prepared message has a recipient and no NUL */
    msgprep_input_free(&in);
    prepared_message_free(&m);
    buf_free(&text);
    buf_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned flags = MSGPREP_EXTRACT | ((data[0] & 1) ? MSGPREP_IGNORE_DOTS : 0);
    size_t step = (size_t)(data[0] >> 1) + 1;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    fuzz_message(flags, step, s, n);
    fuzz_address_list(s, n);
    return 0;
}
