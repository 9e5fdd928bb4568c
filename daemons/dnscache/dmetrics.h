/*
 * dmetrics — the DNS cache's metrics (common/metrics.h; listed in
 * docs/metrics.md), read at each scrape from the counters the cache keeps
 * anyway (lookup.h struct dnscache_stats, dns_cache.h): requests by type,
 * cache hits and misses, upstream queries, answers by result, failures by
 * kind (SERVFAIL, timeout, ...), stale answers served, the cache's size.
 * The same numbers `onehop dns --stats` would show; nothing is counted
 * twice and the lookup path is not touched.
 *
 * Must never: change the cache or a lookup; it only reads.
 */
#ifndef ONEHOP_DNSCACHE_DMETRICS_H
#define ONEHOP_DNSCACHE_DMETRICS_H

#include "dnscache/dns_cache.h"
#include "dnscache/lookup.h"

/* Register the families and their collector (l and c outlive the loop). */
void dmetrics_start(struct lookup *l, struct dns_cache *c);

#endif
