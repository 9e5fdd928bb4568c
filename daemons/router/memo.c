/*
 * memo — the router's memory of alias targets done and of direct attempts
 * that failed at every MX: memo.h. A chained hash table on (id, rcpt),
 * doubled when it holds twice as many entries as buckets.
 */
#include "router/memo.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "queue.h"
#include "siphash.h"

struct memo_target {
    char *target;
    uint8_t outcome;
};

struct memo_entry {
    char id[QUEUE_ID_LEN + 1];
    uint32_t rcpt;
    int all_mx_temp;
    struct memo_target *t;
    size_t nt, tcap;
    struct memo_entry *next;
};

struct memo {
    uint8_t key[SIPHASH_KEY_SIZE];
    struct memo_entry **bucket;
    size_t nbuckets, count;
};

#define MEMO_FIRST_BUCKETS 256

struct memo *memo_new(void)
{
    struct memo *mm = xcalloc(1, sizeof(*mm));
    siphash_random_key(mm->key);
    mm->nbuckets = MEMO_FIRST_BUCKETS;
    mm->bucket = xcalloc(mm->nbuckets, sizeof(*mm->bucket));
    return mm;
}

static void entry_free(struct memo_entry *e)
{
    for (size_t i = 0; i < e->nt; i++)
        free(e->t[i].target);
    free(e->t);
    free(e);
}

void memo_free(struct memo *mm)
{
    if (!mm)
        return;
    for (size_t b = 0; b < mm->nbuckets; b++)
        while (mm->bucket[b]) {
            struct memo_entry *e = mm->bucket[b];
            mm->bucket[b] = e->next;
            entry_free(e);
        }
    free(mm->bucket);
    free(mm);
}

static size_t slot(const struct memo *mm, const char *id, uint32_t rcpt, size_t nbuckets)
{
    char k[QUEUE_ID_LEN + 1 + sizeof(rcpt)];
    size_t n = strnlen(id, QUEUE_ID_LEN);
    memset(k, 0, sizeof(k));
    memcpy(k, id, n);
    memcpy(k + QUEUE_ID_LEN + 1, &rcpt, sizeof(rcpt));
    return (size_t)(siphash24(mm->key, k, sizeof(k)) % nbuckets);
}

static struct memo_entry **find_link(const struct memo *mm, const char *id, uint32_t rcpt)
{
    struct memo_entry **p = &mm->bucket[slot(mm, id, rcpt, mm->nbuckets)];
    for (; *p; p = &(*p)->next)
        if ((*p)->rcpt == rcpt && strcmp((*p)->id, id) == 0)
            return p;
    return p;
}

static void grow(struct memo *mm)
{
    size_t n = mm->nbuckets * 2;
    struct memo_entry **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < mm->nbuckets; i++)
        while (mm->bucket[i]) {
            struct memo_entry *e = mm->bucket[i];
            mm->bucket[i] = e->next;
            size_t s = slot(mm, e->id, e->rcpt, n);
            e->next = b[s];
            b[s] = e;
        }
    free(mm->bucket);
    mm->bucket = b;
    mm->nbuckets = n;
}

static struct memo_entry *entry_get(struct memo *mm, const char *id, uint32_t rcpt)
{
    struct memo_entry **p = find_link(mm, id, rcpt);
    if (*p)
        return *p;
    if (mm->count + 1 > 2 * mm->nbuckets) {
        grow(mm);
        p = find_link(mm, id, rcpt);
    }
    struct memo_entry *e = xcalloc(1, sizeof(*e));
    memcpy(e->id, id, strnlen(id, QUEUE_ID_LEN));
    e->rcpt = rcpt;
    *p = e;
    mm->count++;
    return e;
}

enum memo_outcome memo_target(const struct memo *mm, const char *id, uint32_t rcpt,
                              const char *target)
{
    const struct memo_entry *e = *find_link(mm, id, rcpt);
    for (size_t i = 0; e && i < e->nt; i++)
        if (strcmp(e->t[i].target, target) == 0)
            return (enum memo_outcome)e->t[i].outcome;
    return MEMO_NONE;
}

void memo_set_target(struct memo *mm, const char *id, uint32_t rcpt, const char *target,
                     enum memo_outcome o)
{
    struct memo_entry *e = entry_get(mm, id, rcpt);
    for (size_t i = 0; i < e->nt; i++)
        if (strcmp(e->t[i].target, target) == 0) {
            e->t[i].outcome = (uint8_t)o;
            return;
        }
    e->t = xgrow(e->t, &e->tcap, e->nt + 1, sizeof(*e->t));
    e->t[e->nt].target = xstrdup(target);
    e->t[e->nt++].outcome = (uint8_t)o;
}

int memo_all_mx_temp(const struct memo *mm, const char *id, uint32_t rcpt)
{
    const struct memo_entry *e = *find_link(mm, id, rcpt);
    return e && e->all_mx_temp;
}

void memo_set_all_mx_temp(struct memo *mm, const char *id, uint32_t rcpt, int on)
{
    struct memo_entry **p = find_link(mm, id, rcpt);
    if (on) {
        entry_get(mm, id, rcpt)->all_mx_temp = 1;
    } else if (*p && (*p)->nt == 0) { /* nothing else kept: the entry goes */
        struct memo_entry *e = *p;
        *p = e->next;
        entry_free(e);
        mm->count--;
    } else if (*p) {
        (*p)->all_mx_temp = 0;
    }
}

void memo_forget(struct memo *mm, const char *id, uint32_t rcpt)
{
    struct memo_entry **p = find_link(mm, id, rcpt);
    struct memo_entry *e = *p;
    if (!e)
        return;
    *p = e->next;
    entry_free(e);
    mm->count--;
}

size_t memo_count(const struct memo *mm)
{
    return mm->count;
}
