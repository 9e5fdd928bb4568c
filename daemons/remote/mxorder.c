/*
 * mxorder — D1 order and the D5 loop rule. See mxorder.h.
 */
#include "remote/mxorder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "mem.h"
#include "netaddr.h"

void mx_self_from_conf(struct mx_self *self, const struct conf *c)
{
    memset(self, 0, sizeof(*self));
    self->myhostname = xstrdup(c->myhostname ? c->myhostname : "");
    self->listen = xcalloc(c->smtp_listen.n + 1, sizeof(*self->listen));
    for (size_t i = 0; i < c->smtp_listen.n; i++) {
        struct hostport hp;
        const char *why;
        if (hostport_parse(c->smtp_listen.v[i], HP_REQUIRE_IP, &hp, &why) < 0)
            continue; /* conf validated it; nothing to compare with otherwise */
        struct mx_listen *l = &self->listen[self->nlisten];
        l->family = ip_literal(hp.host, l->addr);
        l->port = hp.port;
        static const unsigned char zero[16];
        l->wildcard = memcmp(l->addr, zero, l->family == AF_INET ? 4 : 16) == 0;
        if (l->family)
            self->nlisten++;
        hostport_free(&hp);
    }
}

void mx_self_free(struct mx_self *self)
{
    free(self->myhostname);
    free(self->listen);
    memset(self, 0, sizeof(*self));
}

static int is_loopback(int family, const unsigned char *addr)
{
    static const unsigned char v6_loopback[16] = {[15] = 1};
    return family == AF_INET ? addr[0] == 127 : memcmp(addr, v6_loopback, 16) == 0;
}

int mx_self_listens(const struct mx_self *self, int family, const unsigned char *addr,
                    uint16_t port)
{
    size_t alen = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < self->nlisten; i++) {
        const struct mx_listen *l = &self->listen[i];
        if (l->family != family || l->port != port)
            continue;
        if (l->wildcard ? is_loopback(family, addr) : memcmp(l->addr, addr, alen) == 0)
            return 1;
    }
    return 0;
}

void mx_rng_init(struct mx_rng *r, uint64_t seed)
{
    if (!seed && getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r;
    r->s = seed ? seed : 0x9e3779b97f4a7c15u;
}

uint64_t mx_rng_below(struct mx_rng *r, uint64_t n)
{
    /* xorshift64* (Vigna): plenty for shuffling; the bias of % is
     * negligible for the small n here */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return n ? (r->s * 2685821657736338717u) % n : 0;
}

static int host_is_self(const struct dnsp_host *h, uint16_t port, const struct mx_self *self)
{
    if (self->myhostname[0] && strcasecmp(h->name, self->myhostname) == 0)
        return 1;
    for (size_t i = 0; i < h->nv4; i++)
        if (mx_self_listens(self, AF_INET, h->v4 + 4 * i, port))
            return 1;
    for (size_t i = 0; i < h->nv6; i++)
        if (mx_self_listens(self, AF_INET6, h->v6 + 16 * i, port))
            return 1;
    return 0;
}

/* Fisher-Yates over v[0..n) of elements of size bytes. */
static void shuffle(void *v, size_t n, size_t size, struct mx_rng *rng)
{
    unsigned char tmp[sizeof(struct mx_target)], *p = v;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)mx_rng_below(rng, i);
        memcpy(tmp, p + (i - 1) * size, size);
        memcpy(p + (i - 1) * size, p + j * size, size);
        memcpy(p + j * size, tmp, size);
    }
}

/* The addresses of host h appended to v, shuffled among themselves. */
static void add_host(const struct dnsp_host *h, uint16_t port, struct mx_target **v, size_t *n,
                     size_t *cap, struct mx_rng *rng)
{
    size_t first = *n, count = h->nv4 + h->nv6;
    *v = xgrow(*v, cap, *n + count, sizeof(**v));
    for (size_t i = 0; i < count; i++) {
        struct mx_target *t = &(*v)[(*n)++];
        memset(t, 0, sizeof(*t));
        t->family = i < h->nv4 ? AF_INET : AF_INET6;
        memcpy(t->addr, i < h->nv4 ? h->v4 + 4 * i : h->v6 + 16 * (i - h->nv4),
               t->family == AF_INET ? 4 : 16);
        t->port = port;
        t->pref = h->pref;
    }
    shuffle(*v + first, count, sizeof(**v), rng);
    for (size_t i = first; i < *n; i++)
        (*v)[i].host = xstrdup(h->name);
}

int mx_order(const struct dnsp_answer *a, uint16_t port, const struct mx_self *self, size_t max,
             struct mx_rng *rng, struct mx_target **out, size_t *n)
{
    /* D5: our own preference, if we are one of the hosts */
    uint32_t own = UINT32_MAX;
    for (size_t i = 0; i < a->nhosts; i++)
        if (host_is_self(&a->hosts[i], port, self) && a->hosts[i].pref < own)
            own = a->hosts[i].pref;
    size_t keep = 0;
    while (keep < a->nhosts && a->hosts[keep].pref < own)
        keep++;
    *out = NULL;
    *n = 0;
    if (keep == 0 && own != UINT32_MAX)
        return MX_LOOP;
    /* D1: equal preferences in a random order (a permutation of indices) */
    size_t *order = xcalloc(keep + 1, sizeof(*order));
    for (size_t i = 0; i < keep; i++)
        order[i] = i;
    for (size_t start = 0; start < keep;) {
        size_t end = start + 1;
        while (end < keep && a->hosts[end].pref == a->hosts[start].pref)
            end++;
        shuffle(order + start, end - start, sizeof(*order), rng);
        start = end;
    }
    size_t cap = 0;
    for (size_t i = 0; i < keep; i++)
        add_host(&a->hosts[order[i]], port, out, n, &cap, rng);
    free(order);
    while (*n > max)
        free((*out)[--*n].host);
    return (int)*n;
}

void mx_targets_free(struct mx_target *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i].host);
    free(t);
}

void mx_target_format(const struct mx_target *t, struct buf *out)
{
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(t->family, t->addr, ip, sizeof(ip));
    buf_printf(out, "%s[%s]:%u", t->host, ip, (unsigned)t->port);
}
