/*
 * retry — when a deferred recipient is tried again (SPEC 3 retry_min,
 * retry_max, queue_lifetime; D8): exponential back-off, the first interval
 * retry_min, doubled with each attempt, never above retry_max, and never
 * past the moment the message expires (so expiry is noticed on time).
 * Pure arithmetic on the configuration's numbers; must never return a time
 * before now + 1 s.
 */
#ifndef ONEHOP_ROUTER_RETRY_H
#define ONEHOP_ROUTER_RETRY_H

#include <stdint.h>

struct retry_policy {
    uint64_t retry_min, retry_max, queue_lifetime; /* seconds */
};

/* The back-off interval after `attempts` failed attempts (1 = the first). */
uint64_t retry_interval(const struct retry_policy *p, uint32_t attempts);
/* The next try of a recipient that failed its attempts-th attempt at now,
 * of a message that arrived at arrival (unix seconds). */
int64_t retry_next_try(const struct retry_policy *p, uint32_t attempts, int64_t now,
                       int64_t arrival);
/* 1 when a message that arrived at arrival has outlived queue_lifetime. */
int retry_expired(const struct retry_policy *p, int64_t now, int64_t arrival);

#endif
