/*
 * sites — the site topology file (SPEC section 5), parsed into sites and
 * links. Path computation is the router's work; this is the plain data.
 *
 *     site hub     hub.example.com                  # site NAME DOMAIN...
 *     site site1   site1.example.com  corp1.example
 *     local site1                                   # the site this server is in
 *     link site1 hub  10 smtp  [gw.hub.example.com] # link A B COST TYPE [GATEWAY]
 *     link site2 hub  10 smtp
 *
 * A `#` that starts the line or follows white space starts a comment. Site
 * names are words of letters, digits, `.`, `_` and `-`, compared exactly.
 * A site owns its domains and their subdomains. Links are undirected; COST
 * is an integer from 1 to SITES_MAX_COST; TYPE is `smtp` or any other word
 * (lower-cased); GATEWAY is one next hop (nexthop.h), never `local` or
 * `error:`. Links and `local` may name sites defined later in the file.
 *
 * Contract: every mistake is reported to the diag as FILE:LINE: message (in
 * line order), and parsing goes on; a line with a mistake adds nothing (a
 * site defined twice keeps its first definition, a domain already taken is
 * left out of the second site, a link naming an unknown site is dropped).
 */
#ifndef ONEHOP_SITES_H
#define ONEHOP_SITES_H

#include <stddef.h>

#include "diag.h"
#include "mapfile.h"
#include "nexthop.h"

#define SITES_MAX_COST 1000000u
#define SITES_NO_LOCAL ((size_t)-1)

struct site {
    char *name;
    char **domains; /* lower-case, no trailing dot; at least one when the file had no mistake */
    size_t ndomains;
    unsigned line;
};

struct site_link {
    size_t a, b;   /* indices into sites.v; a != b */
    unsigned cost; /* 1..SITES_MAX_COST */
    char *type;    /* lower-case word */
    int is_smtp;   /* type is "smtp" */
    int has_gateway;
    struct nexthop gateway; /* when has_gateway: NEXTHOP_MX or NEXTHOP_HOST */
    unsigned line;
};

struct sites {
    struct site *v;
    size_t n, cap;
    struct site_link *links;
    size_t nlinks, links_cap;
    size_t local;              /* index into v, or SITES_NO_LOCAL */
    unsigned local_line;       /* line of the `local` statement, 0 if none */
    struct strindex by_name;   /* site name -> index in v */
    struct strindex by_domain; /* domain -> index in v */
};

/* An empty topology: no sites, no links, no local site. */
void sites_init(struct sites *s);
/* Parse text as the sites file fname (for messages) into s (from
 * sites_init). Returns 0 when there was no mistake, -1 otherwise. */
int sites_parse(struct sites *s, const char *fname, const char *text, size_t len, struct diag *d);
/* Load the file at path: a missing file is an empty topology; one that cannot
 * be read is an error (reported as "path: message"). Returns as sites_parse. */
int sites_load(struct sites *s, const char *path, struct diag *d);
void sites_free(struct sites *s);

/* The site named name, or NULL. */
const struct site *sites_find(const struct sites *s, const char *name);
/* The site owning domain (any case, one trailing dot ignored): the site with
 * that domain or the longest domain of which it is a subdomain; or NULL. */
const struct site *sites_find_by_domain(const struct sites *s, const char *domain);
/* The local site, or NULL when there is no `local` statement. */
const struct site *sites_local(const struct sites *s);

#endif
