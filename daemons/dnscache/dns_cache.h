/*
 * dns_cache — the answers of the DNS cache, by (type, name), with their
 * expiry, in a hash table keyed with SipHash (a secret random key: names
 * chosen by outsiders cannot be made to collide, so no chain grows long) and
 * a least-recently-used list bounded by `dns_cache_size`.
 *
 * Contract:
 *   - an entry is fresh while now < expires (stored at + TTL); the caller
 *     decides the TTL (clamps, RFC 2308) and never stores a TTL of 0;
 *   - dns_cache_find() returns a fresh entry and marks it recently used; an
 *     expired one is returned as stale only within the caller's stale
 *     window (RFC 8767), otherwise it is removed and not found;
 *   - at most max entries: storing one more evicts the least recently used;
 *     max 0 stores nothing;
 *   - storing (type, name) again replaces the old entry.
 * Entry pointers stay valid until the next store, flush or free.
 * Time is passed in by the caller (milliseconds, monotonic), so tests need
 * no clock. It must never trust a name length it did not measure.
 */
#ifndef ONEHOP_DNS_CACHE_H
#define ONEHOP_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dnsproto.h"
#include "siphash.h"

struct dns_entry {
    struct dns_entry *hash_next;
    struct dns_entry *lru_prev, *lru_next; /* prev: more recently used */
    int64_t expires_ms;
    uint32_t ttl;   /* as stored, seconds */
    uint32_t hash;  /* low bits of the keyed hash */
    uint32_t count; /* packed records (dns_answer.h) */
    uint32_t data_len;
    uint16_t qtype;
    uint8_t status;     /* enum dns_status */
    uint8_t name_len;   /* names are at most DNSP_NAME_MAX */
    uint16_t canon_len; /* 0: the canonical name is the name */
    char bytes[];       /* name NUL [canon NUL] data */
};

struct dns_cache;

struct dns_cache *dns_cache_new(size_t max_entries, const uint8_t key[SIPHASH_KEY_SIZE]);
void dns_cache_free(struct dns_cache *c);
void dns_cache_set_max(struct dns_cache *c, size_t max_entries);

/* The entry for (qtype, name): fresh (*stale = 0), or expired for less than
 * stale_ms (*stale = 1), or NULL. */
const struct dns_entry *dns_cache_find(struct dns_cache *c, uint16_t qtype, const char *name,
                                       int64_t now_ms, int64_t stale_ms, int *stale);

struct dns_cache_put {
    uint16_t qtype;
    const char *name;  /* at most DNSP_NAME_MAX bytes */
    const char *canon; /* NULL or equal to name: none */
    enum dns_status status;
    uint32_t ttl; /* seconds, > 0 */
    const void *data;
    size_t data_len;
    uint32_t count;
};

/* Store (replacing); returns 0, or -1 when the cache holds nothing (max 0)
 * or the name is too long. */
int dns_cache_store(struct dns_cache *c, const struct dns_cache_put *p, int64_t now_ms);

/* Remove every entry of name (any type), or every entry when name is NULL;
 * returns how many. */
size_t dns_cache_flush(struct dns_cache *c, const char *name);

size_t dns_cache_count(const struct dns_cache *c);
uint64_t dns_cache_evictions(const struct dns_cache *c);
/* Bytes held: entries as allocated plus the bucket array. */
size_t dns_cache_bytes(const struct dns_cache *c);

/* Visit every entry, most recently used first. */
void dns_cache_walk(const struct dns_cache *c, void (*fn)(void *arg, const struct dns_entry *e),
                    void *arg);

const char *dns_entry_name(const struct dns_entry *e);
const char *dns_entry_canon(const struct dns_entry *e);
const void *dns_entry_data(const struct dns_entry *e);
/* Whole seconds left before expiry (0 when expired). */
uint32_t dns_entry_remaining(const struct dns_entry *e, int64_t now_ms);

#endif
