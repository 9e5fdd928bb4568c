/*
 * lookup — the policy of the DNS cache between its clients and upstream:
 *
 *   - a fresh cached answer is given at once (a hit);
 *   - otherwise one upstream query per (type, name): concurrent identical
 *     requests wait on the query already in flight (coalescing);
 *   - the answer is classified (dns_answer.h); a CNAME chain the upstream
 *     left unfinished is chased here, DNS_CNAME_CHAIN_MAX links in all;
 *   - positive answers are kept for their TTL clamped to
 *     [dns_min_ttl, dns_max_ttl] (SPEC D2), but a TTL of 0 is never cached
 *     (RFC 1035 3.2.1: for this transaction only) whatever dns_min_ttl says;
 *   - negative answers (NODATA, NXDOMAIN) for min(RFC 2308 TTL,
 *     dns_negative_max_ttl); 0 or no SOA: not cached;
 *   - a lookup (all its upstream tries and CNAME links) ends within
 *     dns_lookup_timeout: then it is a temporary failure (a timeout);
 *   - temporary failures are never cached; with dns_serve_stale (RFC 8767)
 *     a positive answer expired less than dns_serve_stale_max ago is served
 *     instead, flagged stale, with a TTL of LOOKUP_STALE_TTL seconds; a
 *     negative one never is (it would bounce mail an outage must defer);
 *   - ROUTE (dnsproto.h) is composed from the cached MX, A and AAAA answers
 *     of its parts at every request, so it expires with the first of them;
 *     ADDR likewise from the A and AAAA answers of one host, and RDNS
 *     from the PTR answer of an address and the addresses of its names.
 *
 * Callbacks may run before lookup_start()/lookup_route() returns (a hit),
 * and in any phase of a loop turn (a timer's too); after one ran, that turn
 * does not block in its poll, so a consumer that sends after the poll (a
 * uv_check handle) sends the answer in the same turn.
 * A view is valid only during its callback and only until the callback
 * starts another lookup (which may evict the entry it points into).
 */
#ifndef ONEHOP_DNSCACHE_LOOKUP_H
#define ONEHOP_DNSCACHE_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "dnsproto.h"
#include "dnscache/dns_answer.h"
#include "dnscache/dns_cache.h"
#include "dnscache/upstream.h"

#define LOOKUP_STALE_TTL 30 /* RFC 8767 4: the TTL of a stale answer */

struct lookup_limits {
    uint64_t min_ttl, max_ttl, negative_max_ttl; /* seconds */
    int serve_stale;
    uint64_t serve_stale_max; /* seconds */
    uint64_t lookup_timeout;  /* seconds one lookup may take in all, > 0 */
};

struct dnscache_stats {
    uint64_t requests, requests_a, requests_aaaa, requests_mx, requests_route, requests_addr,
        requests_rdns;
    uint64_t requests_invalid;
    uint64_t hits, misses, coalesced, upstream_queries, cname_followups, stale_served;
    uint64_t answers_ok, answers_nodata, answers_nxdomain, answers_nullmx;
    uint64_t failures[DNS_FAIL_KINDS]; /* by kind; [DNS_FAIL_NONE] unused */
    uint64_t not_cached_ttl0;
};

struct lookup_view {
    uint16_t qtype;
    const char *name, *canon;
    enum dns_status status;
    const char *reason;
    uint32_t ttl;     /* seconds this answer may still be used */
    uint32_t flags;   /* DNSP_F_FROM_CACHE, DNSP_F_STALE, DNSP_F_COALESCED */
    const void *data; /* packed records (dns_answer.h) */
    size_t data_len;
    uint32_t count;
};

typedef void (*lookup_cb)(void *arg, const struct lookup_view *v);
/* a: the composed ROUTE or ADDR answer (id 0), valid during the call. */
typedef void (*route_cb)(void *arg, const struct dnsp_answer *a);

struct lookup;

struct lookup *lookup_new(uv_loop_t *loop, struct upstream *up, struct dns_cache *cache,
                          const struct lookup_limits *limits);
void lookup_set_limits(struct lookup *l, const struct lookup_limits *limits);
/* qtype: DNS_TYPE_A, _AAAA or _MX; name normalized (dnsp_name_normalize). */
/* A fresh cached answer of (qtype, name), counted as a hit: 1 and *v (valid
 * until the next lookup), or 0 (nothing counted: call lookup_start()). */
int lookup_cached(struct lookup *l, uint16_t qtype, const char *name, struct lookup_view *v);
void lookup_start(struct lookup *l, uint16_t qtype, const char *name, lookup_cb cb, void *arg);
void lookup_route(struct lookup *l, const char *domain, route_cb cb, void *arg);
/* The ADDR view of a host (dnsproto.h): its A and AAAA answers together. */
void lookup_addr(struct lookup *l, const char *name, route_cb cb, void *arg);
/* The RDNS view of an address (dnsproto.h), from its reverse name (which
 * dnsp_reverse_parse() must accept): the PTR answer, then the A or AAAA
 * answers of its names, each cached on its own. */
void lookup_rdns(struct lookup *l, const char *reverse_name, route_cb cb, void *arg);
struct dnscache_stats *lookup_stats(struct lookup *l);
size_t lookup_pending(const struct lookup *l);
/* From now on every lookup that needs upstream fails at once (shutdown);
 * closes the deadline timer (lookup_free() after the loop has run). */
void lookup_shutdown(struct lookup *l);
void lookup_free(struct lookup *l);

#endif
