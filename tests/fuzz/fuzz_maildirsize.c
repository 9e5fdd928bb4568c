/*
 * fuzz_maildirsize — libFuzzer target for a Maildir++ `maildirsize` file
 * (daemons/local/mailbox.c maildirsize_parse): the user's mail reader
 * writes it, onehop-local reads it before each Maildir delivery.
 *
 * Any bytes (cut at a NUL, as the file is read as a string) are parsed
 * twice: as they are, and with a usage line "5 1" appended. The second
 * parse must give the same limits and the first one's sums plus 5 bytes
 * and 1 message (saturated at the int64_t range): a usage line counts once
 * wherever it is, and nothing the file holds makes the sums wrap.
 * Crashes, sanitizer reports (signed overflow included) and leaks are the
 * failures.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mem.h"
#include "local/mailbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t plus(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return a < 0 ? INT64_MIN : INT64_MAX;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char more[] = "\n5 1\n";
    size_t n = strnlen((const char *)data, size);
    char *text = xmalloc(n + sizeof more);
    memcpy(text, data, n);
    text[n] = '\0';
    struct maildir_quota q1, q2;
    maildirsize_parse(text, &q1);
    memcpy(text, data, n);
    memcpy(text + n, more, sizeof more);
    maildirsize_parse(text, &q2);
    free(text);
    if (q2.max_bytes != q1.max_bytes || q2.max_count != q1.max_count ||
        q2.bytes != plus(q1.bytes, 5) || q2.count != plus(q1.count, 1))
        __builtin_trap();
    return 0;
}
