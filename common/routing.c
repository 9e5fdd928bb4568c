/*
 * routing — the routing decision for one recipient. See routing.h for the
 * order and the contract. Reading order: loading, the domain steps (a table,
 * tried in order), the site rules (a table), D5, then alias expansion, which
 * resolves each address through the domain steps.
 */
#include "routing.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "mem.h"
#include "netaddr.h"
#include "safeio.h"
#include "strparse.h"

/* ------------------------------------------------------------- loading ---- */

static void load_map_path(struct buf *path, const struct conf *c, const char *name)
{
    path_join(path, c->config_dir, name);
}

int routing_load(struct routing *rt, const struct conf *c, struct diag *d)
{
    struct buf path = BUF_INIT;
    size_t before = d->n;
    *rt = (struct routing){.conf = c, .routes = ROUTES_INIT, .aliases = ALIASES_INIT};
    sites_init(&rt->sites);
    load_map_path(&path, c, "routes");
    routes_load(&rt->routes, buf_cstr(&path), d);
    load_map_path(&path, c, "sites");
    sites_load(&rt->sites, buf_cstr(&path), d);
    load_map_path(&path, c, "aliases");
    aliases_load(&rt->aliases, buf_cstr(&path), d);
    buf_free(&path);
    sitegraph_build(&rt->graph, &rt->sites); /* SPEC 5 rule 2, once per load */
    const char *why = NULL;
    if (c->relayhost && *c->relayhost) {
        if (nexthop_parse(c->relayhost, NEXTHOP_NO_LOCAL | NEXTHOP_NO_ERROR, &rt->relayhost,
                          &why) == 0)
            rt->has_relayhost = 1;
        else
            diag_add(d, c->config_file, 0, "relayhost \"%s\": %s", c->relayhost, why);
    }
    return d->n > before ? -1 : 0;
}

void routing_free(struct routing *rt)
{
    sitegraph_free(&rt->graph);
    routes_free(&rt->routes);
    sites_free(&rt->sites);
    aliases_free(&rt->aliases);
    if (rt->has_relayhost)
        nexthop_free(&rt->relayhost);
    rt->has_relayhost = 0;
}

/* ------------------------------------------------------------- results ---- */

void route_result_free(struct route_result *r)
{
    free(r->recipient);
    free(r->via);
    nexthop_list_free(r->hops, r->nhops);
    free(r->path);
    free(r->status);
    free(r->reason);
    *r = (struct route_result){0};
}

void route_results_free(struct route_results *v)
{
    for (size_t i = 0; i < v->n; i++)
        route_result_free(&v->v[i]);
    free(v->v);
    *v = (struct route_results)ROUTE_RESULTS_INIT;
}

static void copy_nexthop(struct nexthop *to, const struct nexthop *from)
{
    *to = *from;
    to->host = from->host ? xstrdup(from->host) : NULL;
    to->text = from->text ? xstrdup(from->text) : NULL;
}

static void set_hops(struct route_result *r, const struct nexthop *hops, size_t n)
{
    nexthop_list_free(r->hops, r->nhops);
    r->hops = xmalloc((n ? n : 1) * sizeof(*r->hops));
    for (size_t i = 0; i < n; i++)
        copy_nexthop(&r->hops[i], &hops[i]);
    r->nhops = n;
}

/* One next hop by kind and host (an MX of a domain, a literal address). */
static void set_one_hop(struct route_result *r, enum nexthop_kind kind, const char *host, int is_ip)
{
    struct nexthop nh = {.kind = kind, .host = (char *)host, .is_ip = is_ip};
    set_hops(r, &nh, 1);
}

static void set_failure(struct route_result *r, enum route_action action, const char *status,
                        const char *reason)
{
    r->action = action;
    free(r->status);
    free(r->reason);
    r->status = xstrdup(status);
    r->reason = xstrdup(reason);
}

static void set_local(struct route_result *r, enum route_rule rule)
{
    r->rule = rule;
    r->action = ROUTE_LOCAL;
    r->hop_count = 0;
    set_one_hop(r, NEXTHOP_LOCAL, NULL, 0);
}

/* 1 if word (up to white space) is an enhanced status code 5.X.Y (RFC 3463). */
static size_t permanent_code_length(const char *text)
{
    size_t n = strcspn(text, " \t");
    int dots = 0;
    if (n < 5 || n > 11 || text[0] != '5' || text[1] != '.')
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (text[i] == '.')
            dots++;
        else if (text[i] < '0' || text[i] > '9')
            return 0;
    }
    return dots == 2 && text[n - 1] != '.' && text[2] != '.' ? n : 0;
}

/* An `error:TEXT` next hop: bounced; TEXT may start with its status code. */
static void set_error_hop(struct route_result *r, const char *text)
{
    size_t n = permanent_code_length(text);
    char *code = xstrndup(n ? text : "5.0.0", n ? n : 5);
    set_failure(r, ROUTE_BOUNCE, code, n ? mapfile_skip_space((char *)text + n) : text);
    free(code);
}

/* ---------------------------------------------------- the domain steps ---- */

/* A step decides for a domain (lower-case, not a literal) and returns 1, or
 * returns 0 to let the next step decide. */
typedef int (*route_step_fn)(const struct routing *rt, const char *domain, struct route_result *r);

static int step_local_domains(const struct routing *rt, const char *domain, struct route_result *r)
{
    if (!conf_list_has(&rt->conf->local_domains, domain))
        return 0;
    set_local(r, RULE_LOCAL);
    return 1;
}

static int step_routes(const struct routing *rt, const char *domain, struct route_result *r)
{
    const struct route *route = routes_match(&rt->routes, domain);
    if (!route)
        return 0;
    r->rule = RULE_ROUTE;
    r->line = route->line;
    if (route->hops[0].kind == NEXTHOP_LOCAL) {
        set_local(r, RULE_ROUTE);
    } else if (route->hops[0].kind == NEXTHOP_ERROR) {
        set_error_hop(r, route->hops[0].text);
    } else {
        r->action = ROUTE_REMOTE;
        set_hops(r, route->hops, route->nhops);
        /* a `*` route is a smart host that relays on: two hops, as relayhost */
        r->hop_count = route->kind == ROUTE_ANY ? 2 : 1;
    }
    return 1;
}

/* SPEC 5 rules 1, 3, 4 and 6 as data: the first matching row wins; -1 matches anything. */
static const struct site_rule_row {
    signed char is_local, reached, direct_smtp, all_smtp;
    enum route_rule rule;
} site_rules[] = {
    {1, -1, -1, -1, RULE_SITE_LOCAL},  /* rule 1: T is the local site */
    {0, 0, -1, -1, RULE_NONE},         /* rule 6: no path, an Internet domain */
    {0, 1, 1, 1, RULE_SITE_DIRECT},    /* rule 3: direct by MX, one hop */
    {0, 1, -1, -1, RULE_SITE_GATEWAY}, /* rule 4: the first link's gateway */
};

static int fact_matches(signed char want, int fact)
{
    return want < 0 || want == (fact != 0);
}

enum route_rule routing_site_rule(int is_local, int reached, int direct_smtp, int all_smtp)
{
    for (size_t i = 0; i < sizeof(site_rules) / sizeof(site_rules[0]); i++) {
        const struct site_rule_row *row = &site_rules[i];
        if (fact_matches(row->is_local, is_local) && fact_matches(row->reached, reached) &&
            fact_matches(row->direct_smtp, direct_smtp) && fact_matches(row->all_smtp, all_smtp))
            return row->rule;
    }
    return RULE_NONE;
}

static void set_site_path(const struct routing *rt, size_t site, struct route_result *r)
{
    free(r->path);
    r->npath = sitegraph_path(&rt->graph, &rt->sites, site, &r->path);
}

/* Rule 4: the gateway of the path's first link, by default the far site's MX. */
static void set_site_gateway(const struct routing *rt, size_t site, struct route_result *r)
{
    const struct sitegraph_node *node = sitegraph_node(&rt->graph, site);
    const struct site_link *first = &rt->sites.links[node->first_link];
    r->rule = RULE_SITE_GATEWAY;
    r->action = ROUTE_REMOTE;
    r->hop_count = (unsigned)node->nlinks;
    if (first->has_gateway) {
        set_hops(r, &first->gateway, 1);
    } else {
        size_t far = sitegraph_far_end(first, rt->sites.local);
        set_one_hop(r, NEXTHOP_MX, rt->sites.v[far].domains[0], 0);
    }
    set_site_path(rt, site, r);
}

static size_t site_index_of(const struct routing *rt, const char *domain)
{
    const struct site *t = sites_find_by_domain(&rt->sites, domain);
    return t ? (size_t)(t - rt->sites.v) : SITEGRAPH_NONE;
}

static int step_sites(const struct routing *rt, const char *domain, struct route_result *r)
{
    size_t site = site_index_of(rt, domain);
    if (site == SITEGRAPH_NONE)
        return 0;
    const struct sitegraph_node *node = sitegraph_node(&rt->graph, site);
    enum route_rule rule = routing_site_rule(site == rt->sites.local, node->reached,
                                             rt->conf->site_direct_smtp, node->all_smtp);
    switch (rule) {
    case RULE_SITE_LOCAL:
        set_local(r, RULE_SITE_LOCAL);
        set_site_path(rt, site, r);
        return 1;
    case RULE_SITE_DIRECT:
        r->rule = RULE_SITE_DIRECT;
        r->action = ROUTE_REMOTE;
        r->hop_count = 1;
        set_one_hop(r, NEXTHOP_MX, domain, 0);
        set_site_path(rt, site, r);
        return 1;
    case RULE_SITE_GATEWAY:
        set_site_gateway(rt, site, r);
        return 1;
    default:
        return 0; /* rule 6 */
    }
}

static int step_relayhost(const struct routing *rt, const char *domain, struct route_result *r)
{
    if (!rt->has_relayhost)
        return 0;
    r->rule = RULE_RELAYHOST;
    r->action = ROUTE_REMOTE;
    r->hop_count = 2; /* the relay host, then the domain's own server */
    set_hops(r, &rt->relayhost, 1);
    return 1;
}

static int step_mx(const struct routing *rt, const char *domain, struct route_result *r)
{
    r->rule = RULE_MX;
    r->action = ROUTE_REMOTE;
    r->hop_count = 1;
    set_one_hop(r, NEXTHOP_MX, domain, 0);
    return 1;
}

/* The order of routing.h, as data (aliases come before, in expansion). */
static const struct route_step {
    const char *name;
    route_step_fn decide;
} route_steps[] = {
    {"local_domains", step_local_domains}, {"routes", step_routes}, {"sites", step_sites},
    {"relayhost", step_relayhost},         {"mx", step_mx},
};

/* User@[address]: RFC 5321 4.1.3, that address, no DNS (IPv6 after "IPv6:"). */
static int decide_literal(const struct routing *rt, const char *domain, struct route_result *r)
{
    size_t len = strlen(domain);
    const char *ip = domain + 1;
    if (strncasecmp(ip, "ipv6:", 5) == 0)
        ip += 5;
    char *host = xstrndup(ip, (size_t)(domain + len - 1 - ip));
    r->rule = RULE_LITERAL;
    if (ip_literal(host, NULL)) {
        r->action = ROUTE_REMOTE;
        r->hop_count = 1;
        set_one_hop(r, NEXTHOP_HOST, host, 1);
        /* an address this host listens on is this host: local mail, as
         * Postfix takes user@[its own address] */
        if (routing_nexthop_is_self(rt, &r->hops[0]))
            set_local(r, RULE_LITERAL);
    } else {
        set_failure(r, ROUTE_BOUNCE, "5.1.2", "unsupported address literal");
    }
    free(host);
    return 1;
}

/* ----------------------------------------------------------------- D5 ---- */

/* 1 if an IP literal host:port is one smtp_listen binds (a wildcard
 * listener binds every address; the loopback ones are surely this host's). */
static int address_is_listened(const struct conf *c, const char *host, uint16_t port)
{
    unsigned char want[16], got[16];
    int family = ip_literal(host, want);
    uint16_t p = port ? port : (uint16_t)c->remote_port;
    for (size_t i = 0; i < c->smtp_listen.n; i++) {
        struct hostport hp;
        const char *why;
        if (hostport_parse(c->smtp_listen.v[i], HP_ALLOW_WILDCARD, &hp, &why) < 0)
            continue;
        int lf = ip_literal(hp.host, got);
        size_t alen = lf == AF_INET ? 4 : 16;
        int wildcard = strcmp(hp.host, "*") == 0 || (lf && !memcmp(got,
                                                                   "\0\0\0\0\0\0\0\0"
                                                                   "\0\0\0\0\0\0\0\0",
                                                                   alen));
        int loopback =
            (family == AF_INET && want[0] == 127) ||
            (family == AF_INET6 && !memcmp(want, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16));
        int same = lf == family && !memcmp(got, want, alen);
        int port_ok = hp.port == p;
        hostport_free(&hp);
        if (port_ok && (same || (wildcard && loopback)))
            return 1;
    }
    return 0;
}

int routing_nexthop_is_self(const struct routing *rt, const struct nexthop *nh)
{
    const struct conf *c = rt->conf;
    if (nh->kind != NEXTHOP_MX && nh->kind != NEXTHOP_HOST)
        return 0;
    if (nh->is_ip)
        return address_is_listened(c, nh->host, nh->port);
    if (c->myhostname && mapfile_domain_equal(nh->host, c->myhostname))
        return 1;
    /* a local domain's MX is this host, or mail to it would be delivered here */
    return conf_list_has(&c->local_domains, nh->host);
}

/* D5: a remote decision whose next hop is this host is deferred, never sent. */
static void catch_loop(const struct routing *rt, const char *domain, struct route_result *r)
{
    if (r->action != ROUTE_REMOTE)
        return;
    for (size_t i = 0; i < r->nhops; i++) {
        if (!routing_nexthop_is_self(rt, &r->hops[i]))
            continue;
        struct buf why = BUF_INIT, hop = BUF_INIT;
        nexthop_format(&r->hops[i], &hop);
        buf_printf(&why, "mail for %s loops back to myself (next hop %s)", domain, buf_cstr(&hop));
        set_failure(r, ROUTE_DEFER, "4.4.6", buf_cstr(&why));
        buf_free(&why);
        buf_free(&hop);
        return;
    }
}

/* The decision for a domain (lower-case) by the steps of routing.h. */
static void decide_domain(const struct routing *rt, const char *domain, struct route_result *r)
{
    if (domain[0] == '[') {
        decide_literal(rt, domain, r);
    } else {
        for (size_t i = 0; i < sizeof(route_steps) / sizeof(route_steps[0]); i++)
            if (route_steps[i].decide(rt, domain, r))
                break;
    }
    catch_loop(rt, domain, r);
}

int routing_site_fallback(const struct routing *rt, const struct route_result *direct,
                          struct route_result *out)
{
    if (direct->rule != RULE_SITE_DIRECT || direct->npath < 2)
        return -1;
    size_t site = direct->path[direct->npath - 1];
    const char *at = strrchr(direct->recipient, '@');
    *out = (struct route_result){.recipient = xstrdup(direct->recipient),
                                 .via = direct->via ? xstrdup(direct->via) : NULL};
    set_site_gateway(rt, site, out);
    catch_loop(rt, at ? at + 1 : direct->recipient, out);
    return 0;
}

/* ---------------------------------------------------- alias expansion ---- */

struct expansion {
    const struct routing *rt;
    struct route_results *out;
    size_t first;                         /* out's first result of this address */
    const char *chain[ROUTING_MAX_DEPTH]; /* alias names and ":include:PATH" on the way here */
    size_t depth;
    unsigned line;  /* the aliases line of the innermost alias */
    int in_include; /* inside an :include: file (no |command or /file there) */
    int overflowed;
    /* every alias and include expanded for this address, expanded once: a
     * name reached again off its own chain adds nothing new (its recipients
     * are listed), so a fan-out ("a: b, b" / "b: c, c"...) costs its size,
     * not 2^depth walks (Postfix's local(8) keeps the same "been here") */
    struct strindex expanded;
    char **expanded_names; /* the index's keys, owned */
    size_t nexpanded, expanded_cap;
};

static void expand_address(struct expansion *x, const struct mailaddr *a);

/* The chain as "team -> alice" (NULL when empty). */
static char *chain_text(const struct expansion *x)
{
    if (!x->depth)
        return NULL;
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < x->depth; i++)
        buf_printf(&b, "%s%s", i ? " -> " : "", x->chain[i]);
    return buf_steal(&b);
}

static int already_listed(const struct expansion *x, const char *recipient)
{
    for (size_t i = x->first; i < x->out->n; i++)
        if (x->out->v[i].action != ROUTE_BOUNCE && x->out->v[i].action != ROUTE_DEFER &&
            strcmp(x->out->v[i].recipient, recipient) == 0)
            return 1;
    return 0;
}

/* Append r for recipient (taking r's contents), unless it is a duplicate. */
static void add_result(struct expansion *x, const char *recipient, struct route_result *r)
{
    int ok = r->action == ROUTE_REMOTE || r->action == ROUTE_LOCAL;
    if ((ok && already_listed(x, recipient)) || x->overflowed) {
        route_result_free(r);
        return;
    }
    if (x->out->n - x->first >= ROUTING_MAX_RESULTS) {
        x->overflowed = 1;
        route_result_free(r);
        r->rule = RULE_ALIAS;
        set_failure(r, ROUTE_BOUNCE, "5.5.3", "alias expansion gives too many recipients");
    }
    r->recipient = xstrdup(recipient);
    r->via = chain_text(x);
    x->out->v = xgrow(x->out->v, &x->out->cap, x->out->n + 1, sizeof(*x->out->v));
    x->out->v[x->out->n++] = *r;
    *r = (struct route_result){0};
}

static void add_failure(struct expansion *x, const char *recipient, enum route_rule rule,
                        enum route_action action, const char *status, const char *reason)
{
    struct route_result r = {.rule = rule, .line = x->line};
    set_failure(&r, action, status, reason);
    add_result(x, recipient, &r);
}

/* 1 if name is on the chain already (an alias loop). */
static int on_chain(const struct expansion *x, const char *name)
{
    for (size_t i = 0; i < x->depth; i++)
        if (strcmp(x->chain[i], name) == 0)
            return 1;
    return 0;
}

/* Push name on the chain: 0; -1 after adding the failure (loop, depth); 1
 * when name was expanded before for this address, off the chain (nothing
 * to do: its recipients are listed already). */
static int enter(struct expansion *x, const char *shown, const char *name)
{
    struct buf why = BUF_INIT;
    size_t seen;
    if (on_chain(x, name) || x->depth >= ROUTING_MAX_DEPTH) {
        char *chain = chain_text(x);
        if (x->depth >= ROUTING_MAX_DEPTH)
            buf_printf(&why, "alias expansion nested deeper than %d: %s", ROUTING_MAX_DEPTH, chain);
        else
            buf_printf(&why, "alias loop: %s -> %s", chain, name);
        free(chain);
        add_failure(x, shown, RULE_ALIAS, ROUTE_BOUNCE, "5.4.6", buf_cstr(&why));
        buf_free(&why);
        return -1;
    }
    if (strindex_get(&x->expanded, name, &seen))
        return 1;
    x->expanded_names =
        xgrow(x->expanded_names, &x->expanded_cap, x->nexpanded + 1, sizeof(char *));
    x->expanded_names[x->nexpanded] = xstrdup(name);
    strindex_put(&x->expanded, x->expanded_names[x->nexpanded], x->nexpanded);
    x->nexpanded++;
    x->chain[x->depth++] = name;
    return 0;
}

static void expansion_free(struct expansion *x)
{
    for (size_t i = 0; i < x->nexpanded; i++)
        free(x->expanded_names[i]);
    free(x->expanded_names);
    strindex_free(&x->expanded);
}

static void expand_targets(struct expansion *x, const struct alias *al);

/* A temporary failure of an :include: file, with the first mistake found in
 * it as `FILE:LINE: message` (or `FILE: message`), or `missing` when none. */
static void add_include_failure(struct expansion *x, const char *shown, const struct diag *d,
                                const char *missing)
{
    struct buf why = BUF_INIT;
    if (!d->n)
        buf_adds(&why, missing);
    else if (d->v[0].line)
        buf_printf(&why, "%s:%u: %s", d->v[0].file, d->v[0].line, d->v[0].text);
    else
        buf_printf(&why, "%s: %s", d->v[0].file, d->v[0].text);
    add_failure(x, shown, RULE_ALIAS, ROUTE_DEFER, "4.3.0", buf_cstr(&why));
    buf_free(&why);
}

/* :include:PATH (a relative path is relative to the configuration directory). */
static void expand_include(struct expansion *x, const struct alias_target *t)
{
    struct buf path = BUF_INIT, text = BUF_INIT, key = BUF_INIT, shown = BUF_INIT;
    struct diag d = DIAG_INIT;
    path_join(&path, x->rt->conf->config_dir, t->value);
    buf_printf(&key, ":include:%s", buf_cstr(&path));
    buf_printf(&shown, ":include:%s", t->value);
    int got = mapfile_read(buf_cstr(&path), &text, &d);
    if (got <= 0) {
        /* temporary: the administrator can put the file back */
        add_include_failure(x, buf_cstr(&shown), &d, "the :include: file does not exist");
    } else if (enter(x, buf_cstr(&shown), buf_cstr(&key)) == 0) {
        struct alias inc;
        int saved = x->in_include;
        /* a mistake defers the whole file: half a list is not delivered */
        if (aliases_parse_include(&inc, buf_cstr(&path), text.s, text.len, &d) < 0) {
            add_include_failure(x, buf_cstr(&shown), &d, "");
        } else {
            x->in_include = 1;
            expand_targets(x, &inc);
            x->in_include = saved;
        }
        alias_entry_free(&inc);
        x->depth--;
    }
    diag_free(&d);
    buf_free(&path);
    buf_free(&text);
    buf_free(&key);
    buf_free(&shown);
}

/* |command or /file: local delivery. Postfix's default allows neither from
 * an :include: file (allow_mail_to_commands = alias, forward), nor do we: a
 * file that is not root's could run commands as the delivery user. */
static void expand_special(struct expansion *x, const struct alias_target *t)
{
    int is_command = t->kind == ALIAS_COMMAND;
    struct buf shown = BUF_INIT;
    buf_printf(&shown, "%s%s", is_command ? "|" : "", t->value);
    enum route_rule rule = is_command ? RULE_ALIAS_COMMAND : RULE_ALIAS_FILE;
    if (x->in_include) {
        add_failure(x, buf_cstr(&shown), rule, ROUTE_BOUNCE, "5.7.1",
                    is_command ? "mail to a command is not allowed from an :include: file"
                               : "mail to a file is not allowed from an :include: file");
    } else {
        struct route_result r = {.line = t->line};
        set_local(&r, rule);
        add_result(x, buf_cstr(&shown), &r);
    }
    buf_free(&shown);
}

static void expand_targets(struct expansion *x, const struct alias *al)
{
    for (size_t i = 0; i < al->ntargets && !x->overflowed; i++) {
        const struct alias_target *t = &al->targets[i];
        unsigned saved = x->line;
        if (!x->in_include)
            x->line = t->line;
        if (t->kind == ALIAS_ADDRESS)
            expand_address(x, &t->addr);
        else if (t->kind == ALIAS_INCLUDE)
            expand_include(x, t);
        else
            expand_special(x, t);
        x->line = saved;
    }
}

/* local_users (SPEC 3): passwd: the local part must be a system user. */
static int local_user_exists(const struct routing *rt, const char *user)
{
    return rt->conf->local_users == LOCAL_USERS_ANY || getpwnam(user) != NULL;
}

/* An address delivered here, decided by rule (in *r): its alias, or its user. */
static void expand_local(struct expansion *x, const struct mailaddr *a, const char *shown,
                         struct route_result *r)
{
    struct buf user = BUF_INIT;
    addr_local_unquoted(a, &user);
    str_lower(user.s ? user.s : (char *)"");
    const char *name = buf_cstr(&user);
    /* "root: root, admin": a target naming its own alias is that user's mailbox */
    int self = x->depth && strcmp(x->chain[x->depth - 1], name) == 0;
    const struct alias *al = self ? NULL : aliases_lookup(&x->rt->aliases, name);
    if (al) {
        route_result_free(r);
        unsigned saved = x->line; /* a loop is reported at the line that closes it */
        if (enter(x, shown, al->name) == 0) {
            x->line = al->line;
            expand_targets(x, al);
            x->line = saved;
            x->depth--;
        }
    } else if (!local_user_exists(x->rt, name)) {
        set_failure(r, ROUTE_BOUNCE, "5.1.1", "no such user here (local_users = passwd)");
        add_result(x, shown, r);
    } else {
        add_result(x, shown, r);
    }
    buf_free(&user);
}

static void expand_address(struct expansion *x, const struct mailaddr *given)
{
    struct buf shown = BUF_INIT;
    struct route_result r = {0};
    /* a bare name is name@myorigin, as Postfix's append_at_myorigin */
    struct mailaddr a = *given;
    if (!a.domain)
        a.domain = x->rt->conf->myorigin;
    addr_format(&a, &shown);
    decide_domain(x->rt, a.domain, &r);
    if (r.action == ROUTE_LOCAL)
        expand_local(x, &a, buf_cstr(&shown), &r);
    else
        add_result(x, buf_cstr(&shown), &r);
    buf_free(&shown);
}

void routing_resolve(const struct routing *rt, const char *address, struct route_results *out)
{
    struct expansion x = {.rt = rt, .out = out, .first = out->n};
    struct mailaddr a;
    const char *why = NULL;
    if (addr_parse(address, strlen(address), ADDR_ALLOW_BARE, &a, &why) < 0) {
        add_failure(&x, address, RULE_NONE, ROUTE_BOUNCE, "5.1.3", why ? why : "bad address");
        return;
    }
    expand_address(&x, &a);
    addr_free(&a);
    expansion_free(&x);
}

/* --------------------------------------------------------------- text ---- */

static const char *const rule_names[] = {
    [RULE_NONE] = "none",
    [RULE_ALIAS] = "alias",
    [RULE_ALIAS_COMMAND] = "alias-command",
    [RULE_ALIAS_FILE] = "alias-file",
    [RULE_LOCAL] = "local",
    [RULE_ROUTE] = "route",
    [RULE_SITE_LOCAL] = "site-local",
    [RULE_SITE_DIRECT] = "site-direct",
    [RULE_SITE_GATEWAY] = "site-gateway",
    [RULE_RELAYHOST] = "relayhost",
    [RULE_MX] = "mx",
    [RULE_LITERAL] = "literal",
};

const char *route_rule_name(enum route_rule rule)
{
    return rule_names[rule];
}

const char *route_action_name(enum route_action action)
{
    static const char *const names[] = {"remote", "local", "bounce", "defer"};
    return names[action];
}

static void describe_path(const struct routing *rt, const struct route_result *r, struct buf *out)
{
    buf_adds(out, "site path ");
    for (size_t i = 0; i < r->npath; i++)
        buf_printf(out, "%s%s", i ? "->" : "", rt->sites.v[r->path[i]].name);
}

void route_result_describe(const struct routing *rt, const struct route_result *r, struct buf *out)
{
    switch (r->rule) {
    case RULE_ROUTE:
        buf_printf(out, "routes line %u", r->line);
        break;
    case RULE_SITE_LOCAL:
        describe_path(rt, r, out);
        buf_adds(out, " local (rule 1)");
        break;
    case RULE_SITE_DIRECT:
        describe_path(rt, r, out);
        buf_adds(out, " direct (rule 3)");
        break;
    case RULE_SITE_GATEWAY:
        describe_path(rt, r, out);
        buf_adds(out, " gateway (rule 4)");
        break;
    case RULE_ALIAS:
    case RULE_ALIAS_COMMAND:
    case RULE_ALIAS_FILE:
        buf_printf(out, "%s (aliases line %u)", route_rule_name(r->rule), r->line);
        break;
    default:
        buf_adds(out, route_rule_name(r->rule));
    }
}
