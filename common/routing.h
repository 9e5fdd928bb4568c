/*
 * routing — the routing decision (SPEC 3-5; issue 11 items 2-4): for one
 * recipient, what happens to it and through which next hops. The router
 * applies it to every recipient; `onehop route` prints it. It lives in
 * common/ because both link it (the build boundaries let no daemon folder
 * see another's): it is pure, reading only the configuration directory's
 * maps at load and, for `local_users = passwd`, the password database.
 *
 * The order, first decision wins (each step is a row of route_steps in
 * routing.c):
 *   1. aliases: an address for this host (a domain of local_domains, or
 *      one that steps 3-4 deliver locally; a bare name is name@myorigin) whose
 *      local part is an alias is replaced by its targets, each resolved
 *      again from the top (user, user@domain, |command, /file,
 *      :include:/path). A name met again on its own chain is a loop
 *      (bounced, 5.4.6), except a target naming the alias itself
 *      ("root: root, admin"), which is that user's own mailbox.
 *   2. local_domains: local delivery; with local_users = passwd the local
 *      part must be a system user (else bounced, 5.1.1).
 *   3. routes (routes_match): exact domain, then `.parent` patterns from the
 *      nearest parent up, then `*`; next hops as written, `local`, or
 *      `error:` (bounced).
 *   4. sites (SPEC 5 rules 1-6): the domain's site T; T local: local
 *      delivery (rule 1); no path: on to step 5 (rule 6); with
 *      site_direct_smtp = yes and only smtp links on the path, the domain's
 *      own MX, one hop (rule 3), with rule 5's fallback to the path
 *      (routing_site_fallback); otherwise the gateway of the path's first
 *      link, by default the far site's MX (rule 4).
 *   5. relayhost.  6. the domain's MX (an address literal: that address,
 *      or local delivery when smtp_listen binds it).
 * D5: a next hop that is this host (myhostname, a local domain, an address
 * smtp_listen binds) is never used: the recipient is deferred (4.4.6, "mail
 * for D loops back to myself").
 *
 * Contract: routing_resolve() never fails on input: every address yields at
 * least one result, and every result is deliverable (remote or local),
 * bounced or deferred, with its reason. Alias expansion is bounded
 * (ROUTING_MAX_DEPTH nested aliases or includes, ROUTING_MAX_RESULTS
 * recipients per address) and the same final recipient appears once.
 * Site paths come from sitegraph.h (computed at load, never per address).
 * Never sends, resolves a name in the DNS or writes a file.
 */
#ifndef ONEHOP_ROUTING_H
#define ONEHOP_ROUTING_H

#include <stddef.h>

#include "aliases.h"
#include "buf.h"
#include "conf.h"
#include "diag.h"
#include "nexthop.h"
#include "routes.h"
#include "sitegraph.h"
#include "sites.h"

#define ROUTING_MAX_DEPTH 20     /* nested aliases and :include: files on one chain */
#define ROUTING_MAX_RESULTS 1000 /* final recipients of one address */

enum route_rule {
    RULE_NONE,          /* no rule reached: a bad address */
    RULE_ALIAS,         /* decided while expanding an alias (loop, :include: unreadable...) */
    RULE_ALIAS_COMMAND, /* an alias target |command */
    RULE_ALIAS_FILE,    /* an alias target /file */
    RULE_LOCAL,         /* a domain of local_domains */
    RULE_ROUTE,         /* routes file, line `line` */
    RULE_SITE_LOCAL,    /* SPEC 5 rule 1 */
    RULE_SITE_DIRECT,   /* SPEC 5 rule 3 */
    RULE_SITE_GATEWAY,  /* SPEC 5 rule 4 */
    RULE_RELAYHOST,
    RULE_MX,
    RULE_LITERAL /* user@[address]: that address */
};

enum route_action {
    ROUTE_REMOTE, /* deliver to hops (remote delivery) */
    ROUTE_LOCAL,  /* local delivery: a mailbox, a |command or a /file */
    ROUTE_BOUNCE, /* permanent: status 5.x.x and reason */
    ROUTE_DEFER   /* temporary: status 4.x.x and reason */
};

struct route_result {
    char *recipient; /* the final recipient: an address, "|command" or "/file" */
    char *via;       /* the alias chain that led here ("team -> alice"), or NULL */
    enum route_rule rule;
    enum route_action action;
    unsigned line;        /* RULE_ROUTE: the routes line; alias rules: the aliases line */
    struct nexthop *hops; /* REMOTE: tried in order within one attempt; LOCAL: one "local" */
    size_t nhops;
    unsigned hop_count; /* MTA hops to the destination: 0 local, 1 direct, links of a path */
    size_t *path;       /* site rules: site indices from the local site to T */
    size_t npath;
    char *status; /* BOUNCE / DEFER: the enhanced status code (RFC 3463) */
    char *reason; /* BOUNCE / DEFER: the text */
};

struct route_results {
    struct route_result *v;
    size_t n, cap;
};

#define ROUTE_RESULTS_INIT                                                                         \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* A loaded routing may be moved as a whole (assigned: a reload swaps in a
 * new one); it points at nothing inside itself. Only conf is borrowed. */
struct routing {
    const struct conf *conf; /* borrowed: must outlive the routing (set it again after a move
                                of the configuration) */
    struct routes routes;
    struct sites sites;
    struct aliases aliases;
    struct sitegraph graph;
    int has_relayhost;
    struct nexthop relayhost;
};

/* Load routes, sites and aliases from c's configuration directory and build
 * the site graph. Mistakes go to d as FILE:LINE: message (what parsed is
 * kept); returns 0 when there was none, -1 otherwise. Free it either way. */
int routing_load(struct routing *rt, const struct conf *c, struct diag *d);
void routing_free(struct routing *rt);

/* Append the results for one recipient address to out (see the contract). */
void routing_resolve(const struct routing *rt, const char *address, struct route_results *out);
/* SPEC 5 rule 5: for a RULE_SITE_DIRECT result whose direct attempt failed
 * temporarily for every MX, the decision by the path (rule 4) into *out
 * (free with route_result_free); 0, or -1 (out untouched) for any other. */
int routing_site_fallback(const struct routing *rt, const struct route_result *direct,
                          struct route_result *out);
/* D5: 1 if the next hop is this host (see the top). */
int routing_nexthop_is_self(const struct routing *rt, const struct nexthop *nh);
/* The site rule (RULE_SITE_LOCAL, _DIRECT, _GATEWAY, or RULE_NONE for rule
 * 6) from the facts of SPEC 5, as the table in routing.c says. */
enum route_rule routing_site_rule(int is_local, int reached, int direct_smtp, int all_smtp);

/* The rule as one phrase: "local", "routes line 3", "site path
 * site1->hub->site2 direct", "relayhost", "MX"... (logs, listings). */
void route_result_describe(const struct routing *rt, const struct route_result *r, struct buf *out);
/* The rule's short name: "alias", "local", "route", "site", "relayhost", "mx"... */
const char *route_rule_name(enum route_rule rule);
const char *route_action_name(enum route_action action);

void route_result_free(struct route_result *r);
void route_results_free(struct route_results *v);

#endif
