/*
 * dmetrics — the DNS cache's counters as Prometheus families. See
 * dmetrics.h.
 */
#include "dnscache/dmetrics.h"

#include "metrics.h"

static struct lookup *lookup;
static struct dns_cache *cache;
static struct metric *requests, *hits, *misses, *coalesced, *upstream, *answers, *failures, *stale,
    *entries, *bytes, *evictions, *pending;

static const char *const failure_names[DNS_FAIL_KINDS] = {
    [DNS_FAIL_SERVFAIL] = "servfail", [DNS_FAIL_TIMEOUT] = "timeout",
    [DNS_FAIL_REFUSED] = "refused",   [DNS_FAIL_MALFORMED] = "malformed",
    [DNS_FAIL_CNAME] = "cname",       [DNS_FAIL_OTHER] = "other",
};

static void collect(void *arg)
{
    const struct dnscache_stats *st = lookup_stats(lookup);
    metric_set(requests, "a", (double)st->requests_a);
    metric_set(requests, "aaaa", (double)st->requests_aaaa);
    metric_set(requests, "mx", (double)st->requests_mx);
    metric_set(requests, "route", (double)st->requests_route);
    metric_set(requests, "addr", (double)st->requests_addr);
    metric_set(requests, "rdns", (double)st->requests_rdns);
    metric_set(requests, "invalid", (double)st->requests_invalid);
    metric_set(hits, NULL, (double)st->hits);
    metric_set(misses, NULL, (double)st->misses);
    metric_set(coalesced, NULL, (double)st->coalesced);
    metric_set(upstream, NULL, (double)st->upstream_queries);
    metric_set(answers, "ok", (double)st->answers_ok);
    metric_set(answers, "nodata", (double)st->answers_nodata);
    metric_set(answers, "nxdomain", (double)st->answers_nxdomain);
    metric_set(answers, "nullmx", (double)st->answers_nullmx);
    for (int k = DNS_FAIL_NONE + 1; k < DNS_FAIL_KINDS; k++)
        metric_set(failures, failure_names[k], (double)st->failures[k]);
    metric_set(stale, NULL, (double)st->stale_served);
    metric_set(entries, NULL, (double)dns_cache_count(cache));
    metric_set(bytes, NULL, (double)dns_cache_bytes(cache));
    metric_set(evictions, NULL, (double)dns_cache_evictions(cache));
    metric_set(pending, NULL, (double)lookup_pending(lookup));
}

void dmetrics_start(struct lookup *l, struct dns_cache *c)
{
    lookup = l;
    cache = c;
    requests =
        metric_counter("onehop_dns_requests_total", "Requests to the DNS cache by type.", "type");
    hits = metric_counter("onehop_dns_cache_hits_total", "Requests answered from the cache.", NULL);
    misses = metric_counter("onehop_dns_cache_misses_total",
                            "Requests the cache could not answer by itself.", NULL);
    coalesced = metric_counter("onehop_dns_coalesced_total",
                               "Misses that joined a lookup already in flight.", NULL);
    upstream = metric_counter("onehop_dns_upstream_queries_total",
                              "Queries sent to the upstream resolvers.", NULL);
    answers = metric_counter("onehop_dns_answers_total", "Lookups completed, by result.", "result");
    failures = metric_counter("onehop_dns_failures_total",
                              "Lookups that failed temporarily, by kind.", "kind");
    stale = metric_counter("onehop_dns_stale_served_total",
                           "Expired answers served because the resolvers failed.", NULL);
    entries = metric_gauge("onehop_dns_cache_entries", "Entries in the cache.", NULL);
    bytes = metric_gauge("onehop_dns_cache_bytes", "Bytes the cache's entries use.", NULL);
    evictions = metric_counter("onehop_dns_cache_evictions_total",
                               "Entries evicted to stay within dns_cache_size.", NULL);
    pending = metric_gauge("onehop_dns_pending_lookups", "Lookups in flight.", NULL);
    metrics_on_collect(collect, NULL);
}
