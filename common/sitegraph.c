/*
 * sitegraph — least-cost paths from the local site (SPEC 5 rule 2). See
 * sitegraph.h for the contract.
 *
 * Dijkstra's algorithm in its plain O(V^2 + E) form: a topology has tens of
 * sites, not thousands, and it runs once per load or reload. Each settled
 * site relaxes the links that touch it, in file order; a path replaces a
 * site's current one only when it is strictly better (lower cost, or the
 * same cost with fewer links), which gives the tie-break of the contract.
 */
#include "sitegraph.h"

#include <stdlib.h>

#include "mem.h"

size_t sitegraph_far_end(const struct site_link *link, size_t from)
{
    return link->a == from ? link->b : link->a;
}

/* 1 if (cost, nlinks) is better than what node holds. */
static int path_is_better(const struct sitegraph_node *node, uint64_t cost, size_t nlinks)
{
    if (!node->reached)
        return 1;
    return cost < node->cost || (cost == node->cost && nlinks < node->nlinks);
}

/* The unsettled reached site with the best path (lowest index on a tie), or NONE. */
static size_t next_to_settle(const struct sitegraph *g, const unsigned char *settled)
{
    size_t best = SITEGRAPH_NONE;
    for (size_t i = 0; i < g->n; i++) {
        const struct sitegraph_node *n = &g->node[i];
        if (settled[i] || !n->reached)
            continue;
        if (best == SITEGRAPH_NONE || path_is_better(&g->node[best], n->cost, n->nlinks))
            best = i;
    }
    return best;
}

/* Relax every link of the settled site `from`. */
static void relax_links(struct sitegraph *g, const struct sites *s, size_t from)
{
    const struct sitegraph_node *at = &g->node[from];
    for (size_t l = 0; l < s->nlinks; l++) {
        const struct site_link *link = &s->links[l];
        if (link->a != from && link->b != from)
            continue;
        size_t to = sitegraph_far_end(link, from);
        struct sitegraph_node *n = &g->node[to];
        uint64_t cost = at->cost + link->cost;
        if (to == s->local || !path_is_better(n, cost, at->nlinks + 1))
            continue;
        n->reached = 1;
        n->cost = cost;
        n->nlinks = at->nlinks + 1;
        n->via_link = l;
        n->first_link = at->nlinks == 0 ? l : at->first_link;
        n->all_smtp = at->all_smtp && link->is_smtp;
    }
}

void sitegraph_build(struct sitegraph *g, const struct sites *s)
{
    g->n = s->n;
    g->node = xcalloc(s->n ? s->n : 1, sizeof(*g->node));
    for (size_t i = 0; i < s->n; i++)
        g->node[i] =
            (struct sitegraph_node){.via_link = SITEGRAPH_NONE, .first_link = SITEGRAPH_NONE};
    if (s->local == SITES_NO_LOCAL)
        return;
    g->node[s->local].reached = 1;
    g->node[s->local].all_smtp = 1;
    unsigned char *settled = xcalloc(s->n, 1);
    size_t next;
    while ((next = next_to_settle(g, settled)) != SITEGRAPH_NONE) {
        settled[next] = 1;
        relax_links(g, s, next);
    }
    free(settled);
}

void sitegraph_free(struct sitegraph *g)
{
    free(g->node);
    g->node = NULL;
    g->n = 0;
}

const struct sitegraph_node *sitegraph_node(const struct sitegraph *g, size_t site)
{
    return g->node && site < g->n ? &g->node[site] : NULL;
}

int sitegraph_reached(const struct sitegraph *g, size_t site)
{
    const struct sitegraph_node *n = sitegraph_node(g, site);
    return n && n->reached;
}

size_t sitegraph_path(const struct sitegraph *g, const struct sites *s, size_t site, size_t **out)
{
    *out = NULL;
    if (!sitegraph_reached(g, site))
        return 0;
    size_t count = g->node[site].nlinks + 1;
    size_t *path = xmalloc(count * sizeof(*path));
    size_t at = site;
    for (size_t i = count; i-- > 0;) {
        path[i] = at;
        if (i > 0)
            at = sitegraph_far_end(&s->links[g->node[at].via_link], at);
    }
    *out = path;
    return count;
}
