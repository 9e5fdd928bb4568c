/*
 * dns_cache — keyed hash table plus LRU list. See dns_cache.h.
 *
 * One allocation per entry (header, name, canonical name, records), one
 * bucket pointer per entry at most (the table doubles when it is full), so
 * the overhead per cached name is the header and the allocator's share.
 */
#include "dnscache/dns_cache.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

#define MIN_BUCKETS 64

struct dns_cache {
    struct dns_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count, max;
    struct dns_entry *lru_head, *lru_tail; /* head: most recently used */
    uint64_t evictions;
    size_t entry_bytes;
    uint8_t key[SIPHASH_KEY_SIZE];
};

static uint32_t key_hash(const struct dns_cache *c, uint16_t qtype, const char *name, size_t n)
{
    uint8_t k[2 + DNSP_NAME_MAX];
    k[0] = (uint8_t)(qtype >> 8);
    k[1] = (uint8_t)qtype;
    memcpy(k + 2, name, n);
    return (uint32_t)siphash24(c->key, k, n + 2);
}

static size_t entry_size(const struct dns_entry *e)
{
    return sizeof(*e) + e->name_len + 1u + (e->canon_len ? e->canon_len + 1u : 0u) + e->data_len;
}

const char *dns_entry_name(const struct dns_entry *e)
{
    return e->bytes;
}

const char *dns_entry_canon(const struct dns_entry *e)
{
    return e->canon_len ? e->bytes + e->name_len + 1 : e->bytes;
}

const void *dns_entry_data(const struct dns_entry *e)
{
    return e->bytes + e->name_len + 1 + (e->canon_len ? e->canon_len + 1 : 0);
}

uint32_t dns_entry_remaining(const struct dns_entry *e, int64_t now_ms)
{
    return e->expires_ms > now_ms ? (uint32_t)((e->expires_ms - now_ms) / 1000) : 0;
}

struct dns_cache *dns_cache_new(size_t max_entries, const uint8_t key[SIPHASH_KEY_SIZE])
{
    struct dns_cache *c = xcalloc(1, sizeof(*c));
    c->nbuckets = MIN_BUCKETS;
    c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
    c->max = max_entries;
    memcpy(c->key, key, SIPHASH_KEY_SIZE);
    return c;
}

/* ---------------------------------------------------------------- LRU ---- */

static void lru_unlink(struct dns_cache *c, struct dns_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct dns_cache *c, struct dns_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = c->lru_head;
    if (c->lru_head)
        c->lru_head->lru_prev = e;
    else
        c->lru_tail = e;
    c->lru_head = e;
}

/* ------------------------------------------------------------- table ---- */

static struct dns_entry **slot_of(struct dns_cache *c, uint16_t qtype, const char *name, size_t n,
                                  uint32_t h)
{
    struct dns_entry **pp = &c->buckets[h & (c->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->hash_next) {
        const struct dns_entry *e = *pp;
        if (e->hash == h && e->qtype == qtype && e->name_len == n && memcmp(e->bytes, name, n) == 0)
            return pp;
    }
    return pp;
}

static void remove_entry(struct dns_cache *c, struct dns_entry **pp)
{
    struct dns_entry *e = *pp;
    *pp = e->hash_next;
    lru_unlink(c, e);
    c->count--;
    c->entry_bytes -= entry_size(e);
    free(e);
}

/* Remove e, found again through its own bucket. */
static void remove_known(struct dns_cache *c, struct dns_entry *e)
{
    struct dns_entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hash_next;
    remove_entry(c, pp);
}

static void grow_table(struct dns_cache *c)
{
    size_t n = c->nbuckets * 2;
    struct dns_entry **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct dns_entry *e = c->buckets[i], *next;
        for (; e; e = next) {
            next = e->hash_next;
            e->hash_next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

const struct dns_entry *dns_cache_find(struct dns_cache *c, uint16_t qtype, const char *name,
                                       int64_t now_ms, int64_t stale_ms, int *stale)
{
    size_t n = strlen(name);
    if (n > DNSP_NAME_MAX)
        return NULL;
    struct dns_entry **pp = slot_of(c, qtype, name, n, key_hash(c, qtype, name, n));
    struct dns_entry *e = *pp;
    if (!e)
        return NULL;
    *stale = now_ms >= e->expires_ms;
    if (*stale && now_ms >= e->expires_ms + stale_ms) {
        remove_entry(c, pp);
        return NULL;
    }
    lru_unlink(c, e);
    lru_push_front(c, e);
    return e;
}

static struct dns_entry *new_entry(const struct dns_cache_put *p, size_t name_len, uint32_t h,
                                   int64_t now_ms)
{
    size_t canon_len = p->canon && strcmp(p->canon, p->name) != 0 ? strlen(p->canon) : 0;
    if (canon_len > UINT16_MAX)
        canon_len = 0;
    struct dns_entry *e =
        xmalloc(sizeof(*e) + name_len + 1 + (canon_len ? canon_len + 1 : 0) + p->data_len);
    memset(e, 0, sizeof(*e));
    e->expires_ms = now_ms + (int64_t)p->ttl * 1000;
    e->ttl = p->ttl;
    e->hash = h;
    e->count = p->count;
    e->data_len = (uint32_t)p->data_len;
    e->qtype = p->qtype;
    e->status = (uint8_t)p->status;
    e->name_len = (uint8_t)name_len;
    e->canon_len = (uint16_t)canon_len;
    memcpy(e->bytes, p->name, name_len + 1);
    if (canon_len)
        memcpy(e->bytes + name_len + 1, p->canon, canon_len + 1);
    if (p->data_len)
        memcpy((char *)dns_entry_data(e), p->data, p->data_len);
    return e;
}

static void evict_to(struct dns_cache *c, size_t room)
{
    while (c->count > room && c->lru_tail) {
        remove_known(c, c->lru_tail);
        c->evictions++;
    }
}

int dns_cache_store(struct dns_cache *c, const struct dns_cache_put *p, int64_t now_ms)
{
    size_t n = strlen(p->name);
    if (c->max == 0 || n > DNSP_NAME_MAX || p->data_len > UINT32_MAX)
        return -1;
    uint32_t h = key_hash(c, p->qtype, p->name, n);
    struct dns_entry **pp = slot_of(c, p->qtype, p->name, n, h);
    if (*pp)
        remove_entry(c, pp);
    evict_to(c, c->max - 1);
    if (c->count >= c->nbuckets)
        grow_table(c);
    struct dns_entry *e = new_entry(p, n, h, now_ms);
    pp = &c->buckets[h & (c->nbuckets - 1)];
    e->hash_next = *pp;
    *pp = e;
    lru_push_front(c, e);
    c->count++;
    c->entry_bytes += entry_size(e);
    return 0;
}

void dns_cache_set_max(struct dns_cache *c, size_t max_entries)
{
    c->max = max_entries;
    evict_to(c, max_entries);
}

size_t dns_cache_flush(struct dns_cache *c, const char *name)
{
    size_t removed = 0;
    struct dns_entry *e = c->lru_head, *next;
    for (; e; e = next) {
        next = e->lru_next;
        if (!name || strcmp(e->bytes, name) == 0) {
            remove_known(c, e);
            removed++;
        }
    }
    return removed;
}

void dns_cache_free(struct dns_cache *c)
{
    if (!c)
        return;
    dns_cache_flush(c, NULL);
    free(c->buckets);
    free(c);
}

size_t dns_cache_count(const struct dns_cache *c)
{
    return c->count;
}

uint64_t dns_cache_evictions(const struct dns_cache *c)
{
    return c->evictions;
}

size_t dns_cache_bytes(const struct dns_cache *c)
{
    return c->entry_bytes + c->nbuckets * sizeof(*c->buckets);
}

void dns_cache_walk(const struct dns_cache *c, void (*fn)(void *arg, const struct dns_entry *e),
                    void *arg)
{
    for (const struct dns_entry *e = c->lru_head; e; e = e->lru_next)
        fn(arg, e);
}
