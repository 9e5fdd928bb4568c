/*
 * routes — the static routes file (SPEC section 4), parsed into a list.
 *
 *     # pattern          next hop
 *     example.com        [192.0.2.10]:25        # this address, no MX lookup
 *     .example.com       relay.example.net      # subdomains only
 *     bad.test           error:5.1.2 no such domain here
 *     *                  [smarthost.isp.test]:587, [backup.isp.test]:587
 *
 * One route a line: PATTERN, white space, then one or more next hops
 * separated by commas (nexthop.h). Patterns: `domain` (that domain only),
 * `.domain` (its subdomains only, at any depth), `*` (every domain). A `#`
 * that starts the line or follows white space starts a comment. `error:TEXT`
 * takes the rest of the line (up to a comment) as its text; `error:` and
 * `local` stand alone, never in a list with other next hops.
 *
 * Contract: the file order is kept; a domain is matched most specific
 * first, whatever the order of the lines (SPEC 4 "first match wins, most
 * specific domain first"; issue 11 "exact, then .subdomain, then *"): its
 * exact pattern, then `.parent` patterns from the nearest parent up, then
 * `*`. For a file written most specific first, as SPEC 4 shows it, that is
 * the first matching line. Every mistake is reported to
 * the diag as FILE:LINE: message, and parsing goes on with the next line; a
 * line with a mistake adds no route. A pattern given twice is reported at its
 * second line (naming the first), and the first is kept. Nothing here
 * resolves a name or decides a path: that is the router's work.
 */
#ifndef ONEHOP_ROUTES_H
#define ONEHOP_ROUTES_H

#include <stddef.h>

#include "diag.h"
#include "mapfile.h"
#include "nexthop.h"

enum route_pattern {
    ROUTE_EXACT,      /* "example.com": that domain */
    ROUTE_SUBDOMAINS, /* ".example.com": a.example.com, b.a.example.com; not example.com */
    ROUTE_ANY         /* "*" */
};

struct route {
    enum route_pattern kind;
    char *pattern;        /* as it matches: lower-case, no trailing dot ("*", ".d" or "d") */
    char *domain;         /* the pattern's domain without the leading dot; "" for "*" */
    struct nexthop *hops; /* at least one */
    size_t nhops;
    unsigned line; /* line number in the file */
};

struct routes {
    struct route *v;
    size_t n, cap;
    struct strindex by_pattern; /* pattern -> index in v */
};

#define ROUTES_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0, STRINDEX_INIT                                                                  \
    }

/* Parse text as the routes file fname (for messages). Fills r (which must be
 * ROUTES_INIT or freed) with the good routes; returns 0 when there was no
 * mistake, -1 otherwise. */
int routes_parse(struct routes *r, const char *fname, const char *text, size_t len, struct diag *d);
/* Load the file at path: a missing file is an empty table; one that cannot
 * be read is an error (reported as "path: message"). Returns as routes_parse. */
int routes_load(struct routes *r, const char *path, struct diag *d);
void routes_free(struct routes *r);

/* The route for domain (any case, one trailing dot ignored) in the order of
 * the contract, or NULL. One index lookup per label of the domain. */
const struct route *routes_match(const struct routes *r, const char *domain);

#endif
