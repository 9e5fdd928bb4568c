/*
 * fuzz_routing — libFuzzer target for alias expansion in the routing
 * decision (common/routing.c): any bytes as the aliases file, then every
 * alias name resolved. Besides crashes, sanitizer reports, leaks and
 * libFuzzer's timeout (an expansion that does not end), it traps when a
 * result breaks the contract of routing.h: no result, more than
 * ROUTING_MAX_RESULTS + 1, a delivery without next hops or with a status, a
 * bounce or deferral without its 5.x.x / 4.x.x status and reason.
 * Inputs naming :include: are skipped: a fuzzer must not read the files of
 * the machine it runs on (the unit tests cover include files).
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "routing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int names_include(const uint8_t *data, size_t size)
{
    static const char word[] = ":include:";
    for (size_t i = 0; i + sizeof(word) - 1 <= size; i++) {
        size_t j = 0;
        while (j < sizeof(word) - 1 && tolower(data[i + j]) == word[j])
            j++;
        if (j == sizeof(word) - 1)
            return 1;
    }
    return 0;
}

static void check_result(const struct route_result *r)
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
}

static void resolve_and_check(const struct routing *rt, const char *address)
{
    struct route_results res = ROUTE_RESULTS_INIT;
    routing_resolve(rt, address, &res);
    if (res.n == 0 || res.n > ROUTING_MAX_RESULTS + 1)
        __builtin_trap();
    for (size_t i = 0; i < res.n; i++)
        check_result(&res.v[i]);
    route_results_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char conf_text[] = "myhostname = h.test\nlocal_users = any\n";
    if (names_include(data, size))
        return 0;
    struct conf c;
    struct diag d = DIAG_INIT;
    struct routing rt = {.routes = ROUTES_INIT, .aliases = ALIASES_INIT};
    conf_parse(&c, "/nonexistent-onehop-fuzz", "onehop.conf", conf_text, sizeof(conf_text) - 1, &d);
    rt.conf = &c;
    sites_init(&rt.sites);
    sitegraph_build(&rt.graph, &rt.sites);
    aliases_parse(&rt.aliases, "aliases", (const char *)data, size, &d);
    for (size_t i = 0; i < rt.aliases.n; i++)
        resolve_and_check(&rt, rt.aliases.v[i].name);
    resolve_and_check(&rt, "postmaster");
    routing_free(&rt);
    conf_free(&c);
    diag_free(&d);
    return 0;
}
