/*
 * dns_answer — what one upstream DNS answer means for one question: its
 * class (ok, nodata, nxdomain, null MX, temporary failure), its TTL, and its
 * records packed for the cache.
 *
 * Rules applied, each where it is coded:
 *   - the answer must be a response (QR) to our question (same name, type,
 *     class IN), not truncated: otherwise a temporary failure (D3);
 *   - SERVFAIL, REFUSED and every other error rcode: temporary failure;
 *   - CNAME chains inside the answer are followed, at most `cname_budget`
 *     links, a name met twice is a "CNAME loop" (temporary failure); a chain
 *     that ends on a name without data and without a SOA (the server did not
 *     chase it) asks the caller to query that name (r->follow);
 *   - positive TTL = the smallest TTL of the records used (chain included);
 *   - RFC 2308 5: negative TTL = min(SOA TTL, SOA MINIMUM) of the SOA in the
 *     authority section; without a SOA a negative answer is not cacheable;
 *   - RFC 7505: MX records whose exchange is the root only: null MX; a root
 *     exchange among real ones is ignored;
 *   - every length was already checked by dns_msg_parse(): a malformed
 *     answer is a temporary failure, never a crash.
 *
 * Packed records (r->data, r->count of them): A: 4 bytes each; AAAA: 16
 * bytes each; MX: u16 preference, u16 name length, the name (presentation
 * form), sorted by preference, equal preferences in answer order; PTR:
 * packed as MX with preference 0, in answer order (dns_mx_next walks both).
 *
 * Must never read outside the answer or keep a pointer into it.
 */
#ifndef ONEHOP_DNS_ANSWER_H
#define ONEHOP_DNS_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "dnsproto.h"
#include "dnscache/dns_msg.h"

#define DNS_CNAME_CHAIN_MAX 8

/* Kinds of temporary failure, for the counters. */
enum dns_fail {
    DNS_FAIL_NONE = 0,
    DNS_FAIL_SERVFAIL,
    DNS_FAIL_TIMEOUT,
    DNS_FAIL_REFUSED,
    DNS_FAIL_MALFORMED,
    DNS_FAIL_CNAME,
    DNS_FAIL_OTHER,
    DNS_FAIL_KINDS
};

struct dns_result {
    enum dns_status status;
    enum dns_fail fail;
    struct buf reason;                 /* "" when ok */
    uint32_t ttl;                      /* see above; 0 for temporary failures */
    int cacheable;                     /* 0: negative answer without SOA, or a failure */
    char canon[DNS_NAME_TEXT_MAX + 1]; /* where the CNAME chain ended */
    unsigned cnames;                   /* CNAME links followed */
    int follow;                        /* ask canon again: the chain ended without data */
    struct buf data;                   /* packed records, see above */
    uint32_t count;
};

void dns_result_init(struct dns_result *r);
void dns_result_free(struct dns_result *r);
/* Set a temporary failure with a reason (printf-style). */
void dns_result_fail(struct dns_result *r, enum dns_fail kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Interpret the answer p[0..len) to the question (qname, qtype) in r (which
 * must be freshly initialised). */
void dns_result_from_answer(struct dns_result *r, const void *p, size_t len, const char *qname,
                            uint16_t qtype, unsigned cname_budget);
const char *dns_fail_name(enum dns_fail kind);
/* The reason text of a definite answer ("" for ok and failures). */
const char *dns_status_reason(enum dns_status s);

/* Walk packed MX records: returns 1 and the next record, or 0 at the end. */
int dns_mx_next(const void *data, size_t len, size_t *off, uint16_t *pref, const char **name,
                size_t *name_len);

#endif
