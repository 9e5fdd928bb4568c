/*
 * fuzz_nexthop — libFuzzer target for the next-hop and address parsers
 * (common/nexthop.c, common/netaddr.c). The input, as a NUL-terminated copy,
 * goes to nexthop_parse_list() (with the flags of the first byte's low two
 * bits), hostport_parse() (every flag combination) and cidr_parse().
 *
 * Besides crashes, sanitizer reports and leaks, it traps when a result breaks
 * the contracts: a failure without a reason or with something allocated, a
 * port 0 given, a host that is not lower-case, a canonical form
 * (nexthop_format) that does not parse back to the same next hop, or a
 * network that does not contain its own address.
 */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "netaddr.h"
#include "nexthop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_nexthop(const struct nexthop *a, const struct nexthop *b)
{
    if (a->kind != b->kind || a->port != b->port || a->is_ip != b->is_ip)
        return 0;
    if ((a->host == NULL) != (b->host == NULL) || (a->text == NULL) != (b->text == NULL))
        return 0;
    if (a->host && strcmp(a->host, b->host) != 0)
        return 0;
    return !a->text || strcmp(a->text, b->text) == 0;
}

static void check_nexthop(const struct nexthop *nh, unsigned flags)
{
    if (nh->kind == NEXTHOP_MX || nh->kind == NEXTHOP_HOST) {
        if (!nh->host || nh->text)
            __builtin_trap();
        for (const char *s = nh->host; *s; s++) {
            if (*s >= 'A' && *s <= 'Z')
                __builtin_trap();
        }
    }
    if (nh->kind == NEXTHOP_ERROR && (!nh->text || !nh->text[0] || (flags & NEXTHOP_NO_ERROR)))
        __builtin_trap();
    if (nh->kind == NEXTHOP_LOCAL && (flags & NEXTHOP_NO_LOCAL))
        __builtin_trap();
    struct buf text = BUF_INIT;
    nexthop_format(nh, &text);
    struct nexthop again;
    const char *why = NULL;
    if (nexthop_parse(buf_cstr(&text), flags, &again, &why) < 0 || !same_nexthop(nh, &again))
        __builtin_trap();
    nexthop_free(&again);
    buf_free(&text);
}

static void fuzz_list(const char *s, unsigned flags)
{
    struct nexthop *v = NULL;
    size_t n = 0;
    const char *why = NULL;
    if (nexthop_parse_list(s, flags, &v, &n, &why) < 0) {
        if (!why || v || n)
            __builtin_trap();
        return;
    }
    if (n == 0)
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        check_nexthop(&v[i], flags);
    nexthop_list_free(v, n);
}

static void fuzz_hostport(const char *s)
{
    for (unsigned flags = 0; flags < 8; flags++) {
        struct hostport hp;
        const char *why = NULL;
        if (hostport_parse(s, flags, &hp, &why) < 0) {
            if (!why || hp.host)
                __builtin_trap();
            continue;
        }
        if (!hp.host || ((flags & HP_REQUIRE_PORT) && hp.port == 0))
            __builtin_trap();
        if ((flags & HP_REQUIRE_IP) && !hp.family && strcmp(hp.host, "*") != 0)
            __builtin_trap();
        hostport_free(&hp);
    }
}

static void fuzz_cidr(const char *s)
{
    struct cidr net;
    const char *why = NULL;
    if (cidr_parse(s, &net, &why) < 0) {
        if (!why)
            __builtin_trap();
        return;
    }
    struct sockaddr_in6 sin6;
    struct sockaddr_in sin;
    memset(&sin6, 0, sizeof(sin6));
    memset(&sin, 0, sizeof(sin));
    const struct sockaddr *sa;
    if (net.family == AF_INET) {
        sin.sin_family = AF_INET;
        memcpy(&sin.sin_addr, net.addr, 4);
        sa = (const struct sockaddr *)&sin;
    } else {
        sin6.sin6_family = AF_INET6;
        memcpy(&sin6.sin6_addr, net.addr, 16);
        sa = (const struct sockaddr *)&sin6;
    }
    if (!cidr_match(&net, sa))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned flags = data[0] & 3u;
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    fuzz_list(s, flags);
    fuzz_hostport(s);
    fuzz_cidr(s);
    hostname_valid(s);
    free(s);
    return 0;
}
