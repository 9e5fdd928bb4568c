/*
 * sitegraph — the site topology (sites.h) as a weighted graph, with the
 * least-cost path from the local site to every other site (SPEC 5 rule 2),
 * computed once when the topology is loaded (Dijkstra), so that routing a
 * recipient costs a table lookup, never a search.
 *
 * Contract:
 * - Links are undirected and weighted by their COST. A site's path is the
 *   least total cost; of equal costs the one with fewer links; of those the
 *   one found first in the order of the sites file (a site is settled in the
 *   order of its index, links are relaxed in file order), so the result
 *   never depends on hash order or chance.
 * - Per site it keeps the total cost, the number of links, the link it is
 *   reached by, the first link of the path (whose gateway is rule 4's next
 *   hop) and whether every link of the path is `smtp` (rule 3).
 * - Without a `local` statement, or for a site that no link reaches, there is
 *   no path (rule 6). The local site's own path is empty.
 * - It keeps no pointer to the struct sites it was built from (a graph may
 *   be moved with its sites, e.g. inside a struct routing); the functions
 *   that need the links take that struct sites, unchanged since the build.
 * Never allocates per lookup except sitegraph_path()'s list.
 */
#ifndef ONEHOP_SITEGRAPH_H
#define ONEHOP_SITEGRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "sites.h"

#define SITEGRAPH_NONE ((size_t)-1)

struct sitegraph_node {
    uint64_t cost;   /* total cost from the local site (0 for it) */
    size_t nlinks;   /* links on the path */
    size_t via_link; /* index into sites.links of the path's last link; NONE for local/unreached */
    size_t first_link; /* index into sites.links of the path's first link; NONE as above */
    int reached;       /* there is a path (the local site itself: 1) */
    int all_smtp;      /* every link on the path is smtp (1 for the local site) */
};

struct sitegraph {
    size_t n;                    /* sites */
    struct sitegraph_node *node; /* one per site */
};

/* Compute every site's path from s's local site (Dijkstra). */
void sitegraph_build(struct sitegraph *g, const struct sites *s);
void sitegraph_free(struct sitegraph *g);

/* The node of site index i, or NULL when i is not a site. */
const struct sitegraph_node *sitegraph_node(const struct sitegraph *g, size_t site);
/* 1 if site has a path from the local site (rule 6 when 0). */
int sitegraph_reached(const struct sitegraph *g, size_t site);
/* The sites of the path from the local site to site, both included, into a
 * new array *out (free()); returns their number, 0 when there is no path.
 * s is the topology g was built from. */
size_t sitegraph_path(const struct sitegraph *g, const struct sites *s, size_t site, size_t **out);
/* The site at the far end of link seen from site `from`. */
size_t sitegraph_far_end(const struct site_link *link, size_t from);

#endif
