/*
 * cmd_route — `onehop route` (SPEC 1 and 5): explain the routing decision
 * without sending anything and without a running daemon.
 *
 *     onehop route [--json] ADDRESS...   for each recipient: the rule applied,
 *                                        the site path, the next hop(s), the
 *                                        MTA hop count (routing.h decides)
 *     onehop route --graph               the sites as Graphviz DOT, the
 *                                        chosen paths from the local site marked
 *
 * An alias is shown with each recipient it expands to. A site-direct result
 * also shows rule 5's fallback (the path's next hop, used once every MX
 * failed temporarily). Exit status: 0, 1 when the configuration has mistakes
 * (printed as onehop check prints them, on standard error: the router would
 * refuse it), 2 on a usage error. It reads the configuration directory's
 * files and the password database only; it never changes anything.
 */
#include <stdio.h>
#include <string.h>

#include "admin/commands.h"
#include "conf.h"
#include "json.h"
#include "mem.h"
#include "routing.h"

#define USAGE_NAME "route"

/* ---------------------------------------------------------- next hops ---- */

/* "MX host[:port]" for an MX lookup, the canonical form for the others. */
static void add_hop_text(struct buf *out, const struct nexthop *nh)
{
    if (nh->kind == NEXTHOP_MX)
        buf_adds(out, "MX ");
    nexthop_format(nh, out);
}

static void add_hops_text(struct buf *out, const struct route_result *r)
{
    for (size_t i = 0; i < r->nhops; i++) {
        if (i)
            buf_adds(out, ", ");
        add_hop_text(out, &r->hops[i]);
    }
}

/* ------------------------------------------------------------ text form ---- */

static void add_hop_count(struct buf *out, unsigned n)
{
    buf_printf(out, ", %u hop%s", n, n == 1 ? "" : "s");
}

static void text_result(struct buf *out, const struct routing *rt, const struct route_result *r)
{
    route_result_describe(rt, r, out);
    if (r->action == ROUTE_BOUNCE || r->action == ROUTE_DEFER) {
        buf_printf(out, ": %s %s %s", r->action == ROUTE_BOUNCE ? "bounced" : "deferred", r->status,
                   r->reason);
        return;
    }
    buf_adds(out, ", next hop ");
    add_hops_text(out, r);
    add_hop_count(out, r->hop_count);
    struct route_result fb;
    if (routing_site_fallback(rt, r, &fb) == 0) {
        buf_adds(out, "; fallback (rule 5, every MX failed temporarily): ");
        if (fb.action == ROUTE_REMOTE) {
            add_hops_text(out, &fb);
            add_hop_count(out, fb.hop_count);
        } else {
            buf_printf(out, "deferred %s %s", fb.status, fb.reason);
        }
        route_result_free(&fb);
    }
}

/* The first name of an alias chain ("team" of "team -> staff"). */
static char *chain_head(const char *via)
{
    const char *end = strstr(via, " -> ");
    return end ? xstrndup(via, (size_t)(end - via)) : xstrdup(via);
}

static void text_address(struct buf *out, const struct routing *rt, const char *address,
                         const struct route_results *res)
{
    const struct route_result *first = &res->v[0];
    if (res->n == 1 && !first->via) {
        buf_printf(out, "%s: ", address);
        text_result(out, rt, first);
        buf_addc(out, '\n');
        return;
    }
    char *name = chain_head(first->via ? first->via : address);
    const struct alias *al = aliases_lookup(&rt->aliases, name);
    buf_printf(out, "%s: alias %s", address, name);
    if (al)
        buf_printf(out, " (aliases line %u)", al->line);
    buf_printf(out, ", %zu recipient%s\n", res->n, res->n == 1 ? "" : "s");
    free(name);
    for (size_t i = 0; i < res->n; i++) {
        buf_printf(out, "  %s: ", res->v[i].recipient);
        text_result(out, rt, &res->v[i]);
        if (res->v[i].via && strstr(res->v[i].via, " -> "))
            buf_printf(out, " (via %s)", res->v[i].via);
        buf_addc(out, '\n');
    }
}

/* ------------------------------------------------------------ JSON form ---- */

/* Each hop as {kind, KEY, host, port}: KEY is "nexthop" for the decision
 * itself and "gateway" in rule 5's fallback (SPEC 5 rule 4: the gateway of
 * the path's first link), so that nothing reads a fallback as this
 * attempt's next hop. */
static void json_hops(struct buf *out, const struct route_result *r, const char *key)
{
    buf_addc(out, '[');
    for (size_t i = 0; i < r->nhops; i++) {
        struct buf hop = BUF_INIT;
        if (i)
            buf_addc(out, ',');
        buf_addc(out, '{');
        json_field_cstr(out, "kind",
                        r->hops[i].kind == NEXTHOP_MX     ? "mx"
                        : r->hops[i].kind == NEXTHOP_HOST ? "host"
                                                          : "local");
        nexthop_format(&r->hops[i], &hop);
        json_field_cstr(out, key, buf_cstr(&hop));
        json_field_cstr(out, "host", r->hops[i].host);
        json_field_uint(out, "port", r->hops[i].port);
        buf_addc(out, '}');
        buf_free(&hop);
    }
    buf_addc(out, ']');
}

static void json_path(struct buf *out, const struct routing *rt, const struct route_result *r)
{
    json_add_key(out, "path");
    if (!r->npath) {
        buf_adds(out, "null");
        return;
    }
    buf_addc(out, '[');
    for (size_t i = 0; i < r->npath; i++) {
        if (i)
            buf_addc(out, ',');
        json_add_cstr(out, rt->sites.v[r->path[i]].name);
    }
    buf_addc(out, ']');
}

/* The members every result has (the fallback is one, nested; its hops
 * keyed hop_key). */
static void json_decision(struct buf *out, const struct routing *rt, const struct route_result *r,
                          const char *hop_key)
{
    struct buf text = BUF_INIT;
    route_result_describe(rt, r, &text);
    json_field_cstr(out, "rule", route_rule_name(r->rule));
    json_field_cstr(out, "description", buf_cstr(&text));
    json_field_cstr(out, "action", route_action_name(r->action));
    json_add_key(out, "line");
    if (r->line)
        json_add_uint(out, r->line);
    else
        buf_adds(out, "null");
    json_path(out, rt, r);
    json_add_key(out, "next_hops");
    json_hops(out, r, hop_key);
    json_field_uint(out, "hop_count", r->hop_count);
    json_field_cstr(out, "status", r->status);
    json_field_cstr(out, "reason", r->reason);
    buf_free(&text);
}

static void json_result(struct buf *out, const struct routing *rt, const struct route_result *r)
{
    buf_addc(out, '{');
    json_field_cstr(out, "recipient", r->recipient);
    json_field_cstr(out, "via", r->via);
    json_decision(out, rt, r, "nexthop");
    json_add_key(out, "fallback");
    struct route_result fb;
    if (routing_site_fallback(rt, r, &fb) == 0) {
        buf_addc(out, '{');
        json_decision(out, rt, &fb, "gateway");
        buf_addc(out, '}');
        route_result_free(&fb);
    } else {
        buf_adds(out, "null");
    }
    buf_addc(out, '}');
}

static void json_address(struct buf *out, const struct routing *rt, const char *address,
                         const struct route_results *res)
{
    buf_addc(out, '{');
    json_field_cstr(out, "address", address);
    json_add_key(out, "recipients");
    buf_addc(out, '[');
    for (size_t i = 0; i < res->n; i++) {
        if (i)
            buf_addc(out, ',');
        json_result(out, rt, &res->v[i]);
    }
    buf_adds(out, "]}");
}

/* ------------------------------------------------------------ DOT form ---- */

/* A DOT quoted string: `"` and `\` escaped, a line end written as
 * Graphviz's "\n" (a centred line break in a label). */
static void dot_string(struct buf *out, const char *s)
{
    buf_addc(out, '"');
    for (; *s; s++) {
        if (*s == '\n') {
            buf_adds(out, "\\n");
            continue;
        }
        if (*s == '"' || *s == '\\')
            buf_addc(out, '\\');
        buf_addc(out, *s);
    }
    buf_addc(out, '"');
}

static void dot_site(struct buf *out, const struct routing *rt, size_t i)
{
    const struct site *site = &rt->sites.v[i];
    struct buf label = BUF_INIT;
    buf_adds(&label, site->name);
    for (size_t j = 0; j < site->ndomains; j++)
        buf_printf(&label, "%s%s", j ? " " : "\n", site->domains[j]);
    buf_adds(out, "    ");
    dot_string(out, site->name);
    buf_adds(out, " [label=");
    dot_string(out, buf_cstr(&label));
    if (i == rt->sites.local)
        buf_adds(out, ", shape=doublecircle, style=filled, fillcolor=lightblue");
    else if (!sitegraph_reached(&rt->graph, i))
        buf_adds(out, ", style=dashed, color=gray");
    buf_adds(out, "];\n");
    buf_free(&label);
}

/* 1 if link l is on a chosen path: the last link of some site's path. */
static int link_is_chosen(const struct routing *rt, size_t l)
{
    for (size_t i = 0; i < rt->sites.n; i++) {
        const struct sitegraph_node *n = sitegraph_node(&rt->graph, i);
        if (n->reached && n->via_link == l)
            return 1;
    }
    return 0;
}

static void dot_link(struct buf *out, const struct routing *rt, size_t l)
{
    const struct site_link *link = &rt->sites.links[l];
    struct buf label = BUF_INIT;
    buf_printf(&label, "%u %s", link->cost, link->type);
    if (link->has_gateway) {
        buf_addc(&label, ' ');
        nexthop_format(&link->gateway, &label);
    }
    buf_adds(out, "    ");
    dot_string(out, rt->sites.v[link->a].name);
    buf_adds(out, " -- ");
    dot_string(out, rt->sites.v[link->b].name);
    buf_adds(out, " [label=");
    dot_string(out, buf_cstr(&label));
    if (!link->is_smtp)
        buf_adds(out, ", style=dashed");
    if (link_is_chosen(rt, l))
        buf_adds(out, ", color=blue, penwidth=2.5, fontcolor=blue");
    buf_adds(out, "];\n");
    buf_free(&label);
}

static void dot_graph(struct buf *out, const struct routing *rt)
{
    const struct site *local = sites_local(&rt->sites);
    buf_adds(out, "graph sites {\n");
    buf_adds(out, "    // onehop route --graph: the sites file; blue links are the least-cost\n");
    buf_adds(out, "    // paths from the local site (SPEC 5 rule 2), dashed ones not smtp\n");
    struct buf title = BUF_INIT;
    if (local)
        buf_printf(&title, "local site: %s", local->name);
    else
        buf_adds(&title, "no local site: no paths (SPEC 5 rule 6)");
    buf_adds(out, "    label=");
    dot_string(out, buf_cstr(&title));
    buf_adds(out, ";\n    node [shape=ellipse];\n");
    buf_free(&title);
    for (size_t i = 0; i < rt->sites.n; i++)
        dot_site(out, rt, i);
    for (size_t l = 0; l < rt->sites.nlinks; l++)
        dot_link(out, rt, l);
    buf_adds(out, "}\n");
}

/* ----------------------------------------------------------------- main ---- */

struct route_opts {
    int json, graph;
    int first_address; /* index in argv */
};

static int parse_opts(int argc, char **argv, struct route_opts *o)
{
    int i = 1;
    *o = (struct route_opts){0};
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (strcmp(argv[i], "--json") == 0)
            o->json = 1;
        else if (strcmp(argv[i], "--graph") == 0)
            o->graph = 1;
        else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else
            return admin_usage_error(USAGE_NAME, "unknown option %s", argv[i]);
    }
    o->first_address = i;
    if (o->graph && (o->json || i < argc))
        return admin_usage_error(USAGE_NAME, "--graph takes no address and no --json");
    if (!o->graph && i >= argc)
        return admin_usage_error(USAGE_NAME, "no address given");
    return 0;
}

static void explain(struct buf *out, const struct routing *rt, const struct route_opts *o, int argc,
                    char **argv)
{
    if (o->json)
        buf_addc(out, '[');
    for (int i = o->first_address; i < argc; i++) {
        struct route_results res = ROUTE_RESULTS_INIT;
        routing_resolve(rt, argv[i], &res);
        if (o->json) {
            if (i > o->first_address)
                buf_addc(out, ',');
            json_address(out, rt, argv[i], &res);
        } else {
            text_address(out, rt, argv[i], &res);
        }
        route_results_free(&res);
    }
    if (o->json)
        buf_adds(out, "]\n");
}

int cmd_route(const char *confdir, int argc, char **argv)
{
    struct route_opts o;
    int status = parse_opts(argc, argv, &o);
    if (status)
        return status;
    struct diag d = DIAG_INIT;
    struct conf c;
    struct routing rt;
    conf_load(&c, confdir, &d);
    routing_load(&rt, &c, &d);
    if (d.n) {
        diag_print(&d, stderr);
        status = admin_fail("%zu mistake%s in %s (see onehop check): the router would not run it",
                            d.n, d.n == 1 ? "" : "s", confdir);
    } else {
        struct buf out = BUF_INIT;
        if (o.graph)
            dot_graph(&out, &rt);
        else
            explain(&out, &rt, &o, argc, argv);
        fwrite(out.s, 1, out.len, stdout);
        status = fflush(stdout) == 0 ? 0 : admin_fail("cannot write the output");
        buf_free(&out);
    }
    routing_free(&rt);
    conf_free(&c);
    diag_free(&d);
    return status;
}
