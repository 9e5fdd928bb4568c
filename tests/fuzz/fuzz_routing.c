/*
 * fuzz_routing — libFuzzer target for the routing decision (common/routing.c
 * with routes.c, sites.c, sitegraph.c and aliases.c), as the router makes it
 * for every recipient of every message and `onehop route` prints it.
 *
 * Input: sections separated by NUL bytes. Without a NUL the whole input is
 * the aliases file and every alias name is resolved (the first corpus). With
 * them: aliases NUL routes NUL sites NUL flags addresses, where the flags
 * byte sets relayhost (bit 0) and site_direct_smtp (bit 1), and each line of
 * the addresses (up to 32, as they come from RCPT TO) is resolved, as are
 * every alias name, a user at every route's domain and at every site's
 * domains (so that every routes line and site path is reached).
 *
 * Besides crashes, sanitizer reports, leaks and libFuzzer's timeout (an
 * expansion that does not end), it traps when a result breaks the contract
 * of routing.h: no result, more than ROUTING_MAX_RESULTS + 1, a delivery
 * without next hops or with a status, a bounce or deferral without its
 * 5.x.x / 4.x.x status and reason, a remote delivery to this host (D5), a
 * site path out of range; or when the site graph gives a path that does not
 * start at the local site, end at its site, or step along the file's links.
 * Maps with a mistake are not resolved (every daemon refuses them: routing_load's -1).
 * Inputs naming :include: are skipped: a fuzzer must not read the files of
 * the machine it runs on (the unit tests cover include files).
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routing.h"
#include "fuzz_maps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_result(const struct routing *rt, const struct route_result *r)
{
    int delivered = r->action == ROUTE_REMOTE || r->action == ROUTE_LOCAL;
    if (!r->recipient)
        __builtin_trap();
    if (delivered && (r->nhops == 0 || r->status || r->reason))
        __builtin_trap();
    if (!delivered && (!r->status || !r->reason))
        __builtin_trap();
    if (r->action == ROUTE_BOUNCE && r->status[0] != '5')
        __builtin_trap();
    if (r->action == ROUTE_DEFER && r->status[0] != '4')
        __builtin_trap();
    for (size_t i = 0; r->action == ROUTE_REMOTE && i < r->nhops; i++)
        if (routing_nexthop_is_self(rt, &r->hops[i]))
            __builtin_trap(); /* D5: never a next hop that is this host */
    for (size_t i = 0; i < r->npath; i++)
        if (r->path[i] >= rt->sites.n)
            __builtin_trap();
    struct buf text = BUF_INIT;
    route_result_describe(rt, r, &text);
    buf_free(&text);
    if (r->rule == RULE_SITE_DIRECT) {
        struct route_result fb;
        if (routing_site_fallback(rt, r, &fb) == 0)
            route_result_free(&fb);
    }
}

static void resolve_and_check(const struct routing *rt, const char *address)
{
    struct route_results res = ROUTE_RESULTS_INIT;
    routing_resolve(rt, address, &res);
    if (res.n == 0 || res.n > ROUTING_MAX_RESULTS + 1)
        __builtin_trap();
    for (size_t i = 0; i < res.n; i++)
        check_result(rt, &res.v[i]);
    route_results_free(&res);
}

static int linked(const struct sites *s, size_t a, size_t b)
{
    for (size_t i = 0; i < s->nlinks; i++)
        if ((s->links[i].a == a && s->links[i].b == b) ||
            (s->links[i].a == b && s->links[i].b == a))
            return 1;
    return 0;
}

/* Every reached site's path: local site to it along links, nlinks + 1 long. */
static void check_graph(const struct routing *rt)
{
    for (size_t i = 0; i < rt->sites.n; i++) {
        size_t *path = NULL;
        size_t n = sitegraph_path(&rt->graph, &rt->sites, i, &path);
        const struct sitegraph_node *node = sitegraph_node(&rt->graph, i);
        if (!node || (n > 0) != (sitegraph_reached(&rt->graph, i) != 0))
            __builtin_trap();
        if (n > 0 && (path[0] != rt->sites.local || path[n - 1] != i || n != node->nlinks + 1))
            __builtin_trap();
        for (size_t k = 0; k + 1 < n; k++)
            if (!linked(&rt->sites, path[k], path[k + 1]))
                __builtin_trap();
        free(path);
    }
}

static void resolve_user_at(const struct routing *rt, const char *domain)
{
    struct buf a = BUF_INIT;
    buf_printf(&a, "user@%s", domain);
    resolve_and_check(rt, buf_cstr(&a));
    buf_free(&a);
}

static void resolve_lines(const struct routing *rt, const char *p, size_t n)
{
    struct buf line = BUF_INIT;
    for (unsigned count = 0; n > 0 && count < 32; count++) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n;
        buf_clear(&line);
        buf_add(&line, p, len);
        resolve_and_check(rt, buf_cstr(&line));
        p += len + (nl != NULL);
        n -= len + (nl != NULL);
    }
    buf_free(&line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_names_include(data, size))
        return 0;
    size_t off = 0, alen, rlen = 0, slen = 0, qlen = 0;
    const char *atext = fuzz_section(data, size, &off, &alen);
    int sections = size > 0 && memchr(data, 0, size) != NULL;
    const char *rtext = sections ? fuzz_section(data, size, &off, &rlen) : "";
    const char *stext = sections ? fuzz_section(data, size, &off, &slen) : "";
    const char *qtext = sections ? fuzz_section(data, size, &off, &qlen) : "";
    unsigned flags = qlen > 0 ? (unsigned char)qtext[0] : 0;
    struct buf conf_text = BUF_INIT;
    buf_adds(&conf_text, "myhostname = h.test\nlocal_domains = h.test, localhost\n"
                         "local_users = any\nsmtp_listen = 127.0.0.1:25\n");
    if (flags & 1)
        buf_adds(&conf_text, "relayhost = [relay.test]:2525\n");
    if (flags & 2)
        buf_adds(&conf_text, "site_direct_smtp = yes\n");
    struct conf c;
    struct diag d = DIAG_INIT;
    struct routing rt = {.routes = ROUTES_INIT, .aliases = ALIASES_INIT};
    conf_parse(&c, "/nonexistent-onehop-fuzz", "onehop.conf", conf_text.s, conf_text.len, &d);
    rt.conf = &c;
    sites_init(&rt.sites);
    aliases_parse(&rt.aliases, "aliases", atext, alen, &d);
    routes_parse(&rt.routes, "routes", rtext, rlen, &d);
    sites_parse(&rt.sites, "sites", stext, slen, &d);
    sitegraph_build(&rt.graph, &rt.sites);
    if (c.relayhost && nexthop_parse(c.relayhost, NEXTHOP_NO_LOCAL | NEXTHOP_NO_ERROR,
                                     &rt.relayhost, &(const char *){NULL}) == 0)
        rt.has_relayhost = 1;
    check_graph(&rt);
    if (d.n > 0)
        goto out; /* routing_load's -1: no daemon resolves with maps that have mistakes */
    for (size_t i = 0; i < rt.aliases.n; i++)
        resolve_and_check(&rt, rt.aliases.v[i].name);
    resolve_and_check(&rt, "postmaster");
    for (size_t i = 0; sections && i < rt.routes.n; i++)
        resolve_user_at(&rt, rt.routes.v[i].domain[0] ? rt.routes.v[i].domain : "any.test");
    for (size_t i = 0; sections && i < rt.sites.n; i++)
        for (size_t k = 0; k < rt.sites.v[i].ndomains; k++)
            resolve_user_at(&rt, rt.sites.v[i].domains[k]);
    if (qlen > 1)
        resolve_lines(&rt, qtext + 1, qlen - 1);
out:
    routing_free(&rt);
    conf_free(&c);
    diag_free(&d);
    buf_free(&conf_text);
    return 0;
}
