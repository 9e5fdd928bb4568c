/*
 * destination — dead destinations and their waiting messages (D8):
 * destination.h. A list: only destinations that failed are in it, and
 * they are few next to the queue.
 */
#include "router/destination.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

struct dest {
    char *key;
    char *reason;
    uint32_t fails; /* connection-level failures in a row */
    int64_t dead_until;
    int64_t interval; /* of the last back-off */
    int probing;      /* the probe job is out */
    char **waiters;
    size_t nwait, wcap;
    struct dest *next;
};

struct destinations {
    struct dest *list;
    size_t n;
};

struct destinations *dest_new(void)
{
    return xcalloc(1, sizeof(struct destinations));
}

static void one_free(struct dest *d)
{
    for (size_t i = 0; i < d->nwait; i++)
        free(d->waiters[i]);
    free(d->waiters);
    free(d->reason);
    free(d->key);
    free(d);
}

void dest_free(struct destinations *ds)
{
    if (!ds)
        return;
    while (ds->list) {
        struct dest *d = ds->list;
        ds->list = d->next;
        one_free(d);
    }
    free(ds);
}

static struct dest **find_link(struct destinations *ds, const char *key)
{
    struct dest **p = &ds->list;
    while (*p && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

enum dest_admit dest_admit(struct destinations *ds, const char *key, int64_t now, int64_t *wake,
                           const char **why)
{
    struct dest *d = *find_link(ds, key);
    if (!d)
        return DEST_SEND;
    *why = d->reason;
    if (!d->probing && now >= d->dead_until) {
        d->probing = 1;
        return DEST_PROBE;
    }
    /* while the probe is out: wait as long as it was dead the last time */
    *wake = d->probing ? now + d->interval : d->dead_until;
    return DEST_WAIT;
}

void dest_wait(struct destinations *ds, const char *key, const char *id)
{
    struct dest *d = *find_link(ds, key);
    if (!d || d->nwait >= DEST_WAITERS_MAX)
        return;
    if (d->nwait > 0 && strcmp(d->waiters[d->nwait - 1], id) == 0)
        return; /* the same message, another of its recipients */
    d->waiters = xgrow(d->waiters, &d->wcap, d->nwait + 1, sizeof(*d->waiters));
    d->waiters[d->nwait++] = xstrdup(id);
}

int dest_failed(struct destinations *ds, const char *key, const char *reason, int64_t now,
                const struct retry_policy *p)
{
    struct dest **link = find_link(ds, key);
    struct dest *d = *link;
    if (d && !d->probing && now < d->dead_until)
        return 0; /* a job sent before it was marked: already dead */
    if (!d) {
        d = xcalloc(1, sizeof(*d));
        d->key = xstrdup(key);
        *link = d;
        ds->n++;
    }
    d->fails++;
    d->probing = 0;
    d->interval = (int64_t)retry_interval(p, d->fails);
    d->dead_until = now + d->interval;
    free(d->reason);
    d->reason = xstrdup(reason ? reason : "");
    return 1;
}

size_t dest_reached(struct destinations *ds, const char *key, char ***ids)
{
    struct dest **link = find_link(ds, key);
    struct dest *d = *link;
    *ids = NULL;
    if (!d)
        return 0;
    size_t n = d->nwait;
    *ids = d->waiters;
    d->waiters = NULL;
    d->nwait = 0;
    *link = d->next;
    ds->n--;
    one_free(d);
    return n;
}

static int dest_forget(struct destinations *ds, const char *key, size_t len)
{
    for (struct dest **link = &ds->list; *link; link = &(*link)->next) {
        struct dest *d = *link;
        if (strlen(d->key) == len && memcmp(d->key, key, len) == 0) {
            *link = d->next;
            ds->n--;
            one_free(d);
            return 1;
        }
    }
    return 0;
}

size_t dest_forget_route(struct destinations *ds, const char *route)
{
    static const char arrow[] = " -> ";
    size_t n = 0;
    for (const char *p = route ? strstr(route, arrow) : NULL; p; p = strstr(p, arrow)) {
        p += sizeof(arrow) - 1;
        n += (size_t)dest_forget(ds, p, strcspn(p, " );"));
    }
    return n;
}

size_t dest_dead_count(const struct destinations *ds)
{
    return ds->n;
}
