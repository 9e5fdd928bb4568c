/*
 * test_sitegraph — least-cost paths from the local site (SPEC 5 rule 2),
 * one row per topology and destination: the path, its cost, its number of
 * links, its first link and whether every link on it is smtp; ties broken
 * as sitegraph.h says; no path without `local` or without a link.
 */
#include "rowtest.h"

#include <string.h>

#include "sitegraph.h"
#include "spec5_sites.h"

/* The SPEC 5 example, a site with no link, and a costlier direct link. */
static const char hub_sites[] = SPEC5_SITES "site lone  lone.example.com\n"
                                            "link site1 site2 25 smtp\n";

/* Two equal-cost routes to d: via b (2 links) and directly (1 link), and
 * via c with the same cost and links as via b (b is first in the file). */
static const char tie_sites[] = "site a a.test\nsite b b.test\nsite c c.test\nsite d d.test\n"
                                "local a\n"
                                "link a b 5 smtp\nlink b d 5 smtp\n"
                                "link a c 5 uucp\nlink c d 5 smtp\n"
                                "link a d 10 smtp\n"
                                "site e e.test\n"
                                "link b e 1 smtp\nlink c e 1 smtp\n";

static const char no_local_sites[] = "site a a.test\nsite b b.test\nlink a b 1 smtp\n";

struct path_row {
    const char *topology;
    const char *to;
    const char *path; /* sites joined by "->"; "" for no path */
    unsigned cost;
    size_t first_link; /* index in the file's link order; SITEGRAPH_NONE */
    int all_smtp;
};

static const struct path_row path_rows[] = {
    {hub_sites, "site1", "site1", 0, SITEGRAPH_NONE, 1},
    {hub_sites, "hub", "site1->hub", 10, 0, 1},
    {hub_sites, "site2", "site1->hub->site2", 20, 0, 1}, /* 20 < the direct link's 25 */
    {hub_sites, "site3", "site1->hub->site3", 30, 0, 0}, /* an rpc link on the way */
    {hub_sites, "lone", "", 0, SITEGRAPH_NONE, 0},       /* no link: rule 6 */
    {tie_sites, "d", "a->d", 10, 4, 1},                  /* equal cost: fewer links */
    {tie_sites, "e", "a->b->e", 6, 0, 1},                /* equal cost and links: file order */
    {tie_sites, "c", "a->c", 5, 2, 0},
    {no_local_sites, "b", "", 0, SITEGRAPH_NONE, 0}, /* no `local`: no path at all */
};

static void load(struct sites *s, const char *text)
{
    struct diag d = DIAG_INIT;
    sites_init(s);
    assert_int_equal(sites_parse(s, "sites", text, strlen(text), &d), 0);
    diag_free(&d);
}

static void path_text(const struct sitegraph *g, const struct sites *s, size_t site,
                      struct buf *out)
{
    size_t *path;
    size_t n = sitegraph_path(g, s, site, &path);
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "%s%s", i ? "->" : "", s->v[path[i]].name);
    free(path);
}

/* The links of a path written "a->b->c": its arrows. */
static size_t arrows(const char *path)
{
    size_t n = 0;
    for (const char *p = strstr(path, "->"); p; p = strstr(p + 2, "->"))
        n++;
    return n;
}

static void test_path(void **state)
{
    const struct path_row *row = *state;
    struct sites s;
    struct sitegraph g;
    struct buf text = BUF_INIT;
    load(&s, row->topology);
    sitegraph_build(&g, &s);
    size_t to = (size_t)(sites_find(&s, row->to) - s.v);
    const struct sitegraph_node *n = sitegraph_node(&g, to);
    path_text(&g, &s, to, &text);
    assert_string_equal(buf_cstr(&text), row->path);
    assert_int_equal(n->reached, row->path[0] != '\0');
    assert_int_equal(sitegraph_reached(&g, to), row->path[0] != '\0');
    if (n->reached) {
        assert_int_equal(n->cost, row->cost);
        assert_int_equal(n->first_link, row->first_link);
        assert_int_equal(n->all_smtp, row->all_smtp);
        assert_int_equal(n->nlinks, arrows(row->path));
    }
    buf_free(&text);
    sitegraph_free(&g);
    sites_free(&s);
}

/* An empty topology builds and answers "no path" for any index. */
static void test_empty(void **state)
{
    struct sites s;
    struct sitegraph g;
    sites_init(&s);
    sitegraph_build(&g, &s);
    assert_null(sitegraph_node(&g, 0));
    assert_int_equal(sitegraph_reached(&g, 0), 0);
    size_t *path;
    assert_int_equal(sitegraph_path(&g, &s, 0, &path), 0);
    assert_null(path);
    sitegraph_free(&g);
    sites_free(&s);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(path_rows); i++)
        rowtest_add(&t, test_path, &path_rows[i], "path to %s (row %zu)", path_rows[i].to, i);
    rowtest_add(&t, test_empty, NULL, "empty topology");
    return rowtest_run(&t, "sitegraph");
}
