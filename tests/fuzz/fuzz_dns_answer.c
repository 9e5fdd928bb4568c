/*
 * fuzz_dns_answer — libFuzzer target for the DNS answer reader of the cache
 * (daemons/dnscache/dns_msg.c and dns_answer.c): any bytes, as if they came
 * back from an upstream resolver. The message is parsed, every record's
 * names are decoded, and it is interpreted for its own question (or for an
 * MX question when it has none), then the packed MX or PTR records are
 * walked.
 * Crashes, sanitizer reports and leaks are the failures looked for (SPEC D3),
 * and a name (of a record, or an MX or PTR host) that is not in presentation
 * form: lower-case letters, digits, '-', '_', '.' and \DDD escapes only.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dnscache/dns_answer.h"
#include "dnscache/dns_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A name in presentation form as dns_msg.c writes it: lower-case letters,
 * digits, '-', '_', dots and \DDD escapes; never a byte that could end a
 * log line or a header (Received:, the client name) it is put into. */
static void check_presentation(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\') {
            for (size_t k = 1; k <= 3; k++)
                if (i + k >= n || s[i + k] < '0' || s[i + k] > '9')
                    __builtin_trap();
            i += 3;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                     c == '.')) {
            __builtin_trap();
        }
    }
}

static void decode_every_name(const struct dns_msg *m)
{
    char name[DNS_NAME_TEXT_MAX + 1];
    struct dns_rr_iter it;
    struct dns_rr rr;
    const char *why;
    dns_rr_iter_init(m, &it);
    while (dns_rr_next(m, &it, &rr))
        if (dns_name_at(m, rr.name_off, name, NULL, &why) == 0) {
            if (strlen(name) > DNS_NAME_TEXT_MAX)
                __builtin_trap();
            check_presentation(name, strlen(name));
        }
}

static void interpret(const uint8_t *data, size_t size, const char *qname, uint16_t qtype)
{
    struct dns_result r;
    dns_result_init(&r);
    dns_result_from_answer(&r, data, size, qname, qtype, DNS_CNAME_CHAIN_MAX);
    if (r.status == DNS_STATUS_OK && (qtype == DNS_TYPE_MX || qtype == DNS_TYPE_PTR)) {
        size_t off = 0, n;
        uint16_t pref;
        const char *host;
        while (dns_mx_next(r.data.s, r.data.len, &off, &pref, &host, &n)) {
            if (n == 0)
                __builtin_trap();
            check_presentation(host, n);
        }
    }
    if (r.status == DNS_STATUS_OK && qtype == DNS_TYPE_A && r.data.len != 4 * (size_t)r.count)
        __builtin_trap();
    dns_result_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_msg m;
    const char *why;
    if (dns_msg_parse(&m, data, size, &why) == 0) {
        decode_every_name(&m);
        uint16_t qtype = m.qtype;
        if (qtype != DNS_TYPE_A && qtype != DNS_TYPE_AAAA && qtype != DNS_TYPE_MX &&
            qtype != DNS_TYPE_PTR)
            qtype = DNS_TYPE_MX;
        interpret(data, size, m.qdcount ? m.qname : "x.test", qtype);
    } else {
        interpret(data, size, "x.test", DNS_TYPE_MX);
    }
    return 0;
}
