/*
 * retry — the back-off arithmetic of retry.h.
 */
#include "router/retry.h"

uint64_t retry_interval(const struct retry_policy *p, uint32_t attempts)
{
    uint64_t lo = p->retry_min > 0 ? p->retry_min : 1;
    uint64_t hi = p->retry_max > lo ? p->retry_max : lo;
    uint64_t v = lo;
    for (uint32_t i = 1; i < attempts && v < hi; i++)
        v *= 2;
    return v < hi ? v : hi;
}

int64_t retry_next_try(const struct retry_policy *p, uint32_t attempts, int64_t now,
                       int64_t arrival)
{
    int64_t next = now + (int64_t)retry_interval(p, attempts);
    int64_t expiry = arrival + (int64_t)p->queue_lifetime;
    if (arrival > 0 && expiry < next)
        next = expiry; /* tried once more at expiry, then bounced */
    return next > now ? next : now + 1;
}

int retry_expired(const struct retry_policy *p, int64_t now, int64_t arrival)
{
    return arrival > 0 && now >= arrival + (int64_t)p->queue_lifetime;
}
