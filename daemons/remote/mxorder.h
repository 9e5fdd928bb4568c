/*
 * mxorder — the addresses one delivery attempt tries, in the order of SPEC
 * D1, with the loop rule of D5, from a ROUTE answer (an MX next hop) or an
 * ADDR answer (a `[host]` next hop) of the DNS cache (dnsproto.h):
 *   - hosts by preference (the cache sorts them); hosts of equal
 *     preference in a random order, fresh for every call (the cache keeps
 *     a stable order so one cached answer serves everyone; dnsproto.h "Who
 *     randomizes");
 *   - each host's A and AAAA addresses together, in a random order;
 *   - D5: when one of the hosts is this MTA (its name is myhostname, or one
 *     of its addresses with the port is an address onehop's smtpd listens
 *     on; a wildcard listen address 0.0.0.0 / [::] matches the loopback
 *     addresses at that port), only hosts of a better (lower) preference
 *     than ours are kept; none left is MX_LOOP;
 *   - at most max addresses (smtp_max_addresses).
 * Must never: reorder preferences, or keep a host at or after our own.
 */
#ifndef ONEHOP_REMOTE_MXORDER_H
#define ONEHOP_REMOTE_MXORDER_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "dnsproto.h"

struct mx_target {
    char *host; /* the MX host's name, or the address literal */
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    uint16_t port;
    uint32_t pref;
};

struct mx_listen {
    int family;
    unsigned char addr[16];
    uint16_t port;
    int wildcard;
};

struct mx_self {
    char *myhostname;
    struct mx_listen *listen;
    size_t nlisten;
};

struct mx_rng {
    uint64_t s;
};

enum { MX_LOOP = -2 };

/* myhostname and the smtp_listen addresses of c. */
void mx_self_from_conf(struct mx_self *self, const struct conf *c);
void mx_self_free(struct mx_self *self);
/* 1 if family/addr at port is one of the listen addresses. */
int mx_self_listens(const struct mx_self *self, int family, const unsigned char *addr,
                    uint16_t port);
/* A generator seeded from the kernel (or from seed when not 0: tests). */
void mx_rng_init(struct mx_rng *r, uint64_t seed);
uint64_t mx_rng_below(struct mx_rng *r, uint64_t n); /* 0..n-1 */

/* Targets of answer a for port: the count (*out allocated, maybe 0), or
 * MX_LOOP when D5 left no host. */
int mx_order(const struct dnsp_answer *a, uint16_t port, const struct mx_self *self, size_t max,
             struct mx_rng *rng, struct mx_target **out, size_t *n);
void mx_targets_free(struct mx_target *t, size_t n);
/* "host[ip]:port" */
void mx_target_format(const struct mx_target *t, struct buf *out);

#endif
