/*
 * fuzz_sites — libFuzzer target for the sites file parser (common/sites.c,
 * SPEC 5): any bytes as the file's text. Besides crashes, sanitizer reports
 * and leaks, it traps when the result breaks the contract of sites.h: a
 * link with an index out of range or from a site to itself, a cost out of
 * range, a local site out of range, diags out of line order, or a site's own
 * domain not found by sites_find_by_domain().
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sites.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_links(const struct sites *s)
{
    for (size_t i = 0; i < s->nlinks; i++) {
        const struct site_link *l = &s->links[i];
        if (l->a >= s->n || l->b >= s->n || l->a == l->b)
            __builtin_trap();
        if (l->cost < 1 || l->cost > SITES_MAX_COST || !l->type)
            __builtin_trap();
        if (l->has_gateway && l->gateway.kind != NEXTHOP_MX && l->gateway.kind != NEXTHOP_HOST)
            __builtin_trap();
    }
}

static void check_sites(const struct sites *s)
{
    if (s->local != SITES_NO_LOCAL && s->local >= s->n)
        __builtin_trap();
    for (size_t i = 0; i < s->n; i++) {
        if (sites_find(s, s->v[i].name) != &s->v[i])
            __builtin_trap();
        for (size_t j = 0; j < s->v[i].ndomains; j++)
            if (sites_find_by_domain(s, s->v[i].domains[j]) != &s->v[i])
                __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sites s;
    struct diag d = DIAG_INIT;
    sites_init(&s);
    int rc = sites_parse(&s, "sites", (const char *)data, size, &d);
    if ((rc == 0) != (d.n == 0))
        __builtin_trap();
    for (size_t i = 1; i < d.n; i++)
        if (d.v[i].line < d.v[i - 1].line)
            __builtin_trap();
    check_links(&s);
    check_sites(&s);
    sites_find_by_domain(&s, "a.example.com.");
    sites_free(&s);
    diag_free(&d);
    return 0;
}
