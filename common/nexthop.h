/*
 * nexthop — one next hop of a static route, a site link gateway or
 * `relayhost` (SPEC 3, 4 and 5):
 *
 *     host            look up host's MX, as if mail were for that domain
 *     host:port       the same, connecting to port
 *     [host]          host's own A/AAAA addresses, no MX lookup
 *     [host]:port     the same, on port
 *     [1.2.3.4]:25    this address, no DNS at all
 *     local           deliver locally (routes only)
 *     error:TEXT      bounce with TEXT, e.g. "error:5.1.2 no such domain here"
 *
 * A list of next hops is separated by commas; they are tried in order within
 * one delivery attempt.
 */
#ifndef ONEHOP_NEXTHOP_H
#define ONEHOP_NEXTHOP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum nexthop_kind {
    NEXTHOP_MX,    /* bare host: MX lookup */
    NEXTHOP_HOST,  /* [host] or [ip]: address lookup only / none */
    NEXTHOP_LOCAL, /* "local" */
    NEXTHOP_ERROR  /* "error:TEXT" */
};

struct nexthop {
    enum nexthop_kind kind;
    char *host;    /* MX / HOST: lower-case name or IP literal, no brackets */
    uint16_t port; /* 0: use remote_port */
    int is_ip;     /* HOST whose host is an IP literal: no DNS */
    char *text;    /* ERROR: the text after "error:" (never empty) */
};

/* Parse one next hop (surrounding white space ignored). flags: NEXTHOP_NO_LOCAL
 * and NEXTHOP_NO_ERROR refuse those forms (relayhost, site gateways). */
enum { NEXTHOP_NO_LOCAL = 1, NEXTHOP_NO_ERROR = 2 };
int nexthop_parse(const char *s, unsigned flags, struct nexthop *out, const char **why);
/* Parse a comma-separated list; on error returns -1, *why set, nothing allocated. */
int nexthop_parse_list(const char *s, unsigned flags, struct nexthop **out, size_t *n,
                       const char **why);
void nexthop_free(struct nexthop *nh);
void nexthop_list_free(struct nexthop *v, size_t n);
/* Append the canonical text form (as accepted by nexthop_parse) to out. */
void nexthop_format(const struct nexthop *nh, struct buf *out);

#endif
