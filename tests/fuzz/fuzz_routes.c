/*
 * fuzz_routes — libFuzzer target for the routes file parser (common/routes.c,
 * SPEC 4): any bytes as the file's text. Besides crashes, sanitizer reports
 * and leaks, it traps when a parsed table breaks the contract of routes.h:
 * a route without next hops, routes out of file order, a diag line past the
 * end of the text, or an exact route that routes_match() does not give for
 * its own domain.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned count_lines(const char *text, size_t len)
{
    unsigned n = 1;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    return n;
}

static void check_table(const struct routes *r, unsigned lines)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct route *rt = &r->v[i];
        if (rt->nhops == 0 || !rt->hops || rt->line == 0 || rt->line > lines)
            __builtin_trap();
        if (i > 0 && rt->line <= r->v[i - 1].line)
            __builtin_trap();
        /* most specific first: an exact pattern is its own domain's route,
         * and with a "*" no domain is left without one */
        if (rt->kind == ROUTE_EXACT && routes_match(r, rt->domain) != rt)
            __builtin_trap();
        if (rt->kind == ROUTE_ANY && !routes_match(r, "x.y"))
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct routes r = ROUTES_INIT;
    struct diag d = DIAG_INIT;
    unsigned lines = count_lines(text, size);
    int rc = routes_parse(&r, "routes", text, size, &d);
    if ((rc == 0) != (d.n == 0))
        __builtin_trap();
    for (size_t i = 0; i < d.n; i++)
        if (d.v[i].line == 0 || d.v[i].line > lines || strcmp(d.v[i].file, "routes") != 0)
            __builtin_trap();
    check_table(&r, lines);
    routes_match(&r, "example.com");
    routes_match(&r, "a.b.example.com.");
    routes_free(&r);
    diag_free(&d);
    return 0;
}
