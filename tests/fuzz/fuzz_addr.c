/*
 * fuzz_addr — libFuzzer target for the RFC 5321 mailbox parser
 * (common/addr.c). The first byte chooses the flags (its low four bits: every
 * combination of ADDR_PATH, ADDR_ALLOW_NULL, ADDR_ALLOW_BARE,
 * ADDR_ALLOW_UTF8); the rest is the address, given without a terminator so
 * that a read past len is an AddressSanitizer error.
 *
 * Besides crashes, sanitizer reports and leaks, it traps when a result
 * breaks the contract of addr.h: a failure without a reason, a local part
 * over 64 octets, an upper-case domain name, a domain that addr_domain_valid
 * refuses, or a formatted address that does not parse back to the same thing.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int has_upper_or_8bit(const char *s, int *eight_bit)
{
    int upper = 0;
    for (; *s; s++) {
        upper |= *s >= 'A' && *s <= 'Z';
        *eight_bit |= (unsigned char)*s >= 0x80;
    }
    return upper;
}

static void check_result(const struct mailaddr *a, unsigned flags)
{
    int eight_bit = 0;
    if (!a->local || strlen(a->local) > ADDR_LOCAL_MAX)
        __builtin_trap();
    if (a->is_null && (a->domain || a->local[0] || !(flags & ADDR_ALLOW_NULL)))
        __builtin_trap();
    if (!a->is_null && !a->domain && !(flags & ADDR_ALLOW_BARE))
        __builtin_trap();
    if (!a->domain)
        return;
    if (strlen(a->domain) > ADDR_DOMAIN_MAX || a->is_literal != (a->domain[0] == '['))
        __builtin_trap();
    int upper = has_upper_or_8bit(a->domain, &eight_bit);
    /* a general literal ([tag:content]) keeps its case; the rest is lower-cased */
    int general = a->is_literal && strchr(a->domain, ':') && strncmp(a->domain, "[IPv6:", 6) != 0;
    if (upper && !a->is_literal)
        __builtin_trap();
    if (!eight_bit && !general && !addr_domain_valid(a->domain, strlen(a->domain)))
        __builtin_trap();
}

/* format(parse(x)) parses again, without ADDR_PATH, to the same address. */
static void check_reparse(const struct mailaddr *a, unsigned flags)
{
    struct buf text = BUF_INIT, unq = BUF_INIT;
    struct mailaddr b;
    addr_format(a, &text);
    addr_local_unquoted(a, &unq);
    if (unq.len > strlen(a->local))
        __builtin_trap();
    if (addr_parse(text.s, text.len, flags & ~(unsigned)ADDR_PATH, &b, NULL) != 0)
        __builtin_trap();
    if (strcmp(a->local, b.local) != 0 || a->is_null != b.is_null ||
        a->is_literal != b.is_literal || !a->domain != !b.domain ||
        (a->domain && strcmp(a->domain, b.domain) != 0))
        __builtin_trap();
    addr_free(&b);
    buf_free(&text);
    buf_free(&unq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned flags = data[0] & 15u;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    struct mailaddr a;
    const char *why = NULL;

    (void)addr_domain_valid(s, n);
    if (addr_parse(s, n, flags, &a, &why) != 0) {
        if (!why || !why[0])
            __builtin_trap();
        return 0;
    }
    check_result(&a, flags);
    check_reparse(&a, flags);
    addr_free(&a);
    return 0;
}
