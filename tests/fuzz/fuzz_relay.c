/*
 * fuzz_relay — libFuzzer target for onehop-smtpd's RCPT decision
 * (daemons/smtpd/relay.c over common/routing.c): who may send mail where.
 *
 * Input: sections separated by NUL bytes: the aliases file, the routes
 * file, then a flags byte and RCPT paths, one a line (up to 32). Each path
 * is parsed as smtpd parses it (addr_parse with ADDR_PATH, UTF-8 allowed
 * when bit 0 of the flags is set; addr_format) and decided for a client
 * outside mynetworks (192.0.2.1) and one inside (10.1.2.3). The
 * configuration: myhostname h.test, local_domains h.test and localhost,
 * relay_domains relay.test and other.relay.test (conf.c takes no ".domain"
 * entry, though relay.h speaks of one), mynetworks 10.0.0.0/8.
 *
 * Besides crashes, sanitizer reports and leaks, it traps when relay.h's
 * "must never" breaks: a recipient accepted from outside mynetworks whose
 * domain is neither this host's (local_domains, or delivered locally by the
 * routing) nor in relay_domains; such a recipient that the routing then
 * sends to another host except through an alias; a refusal without a 5xx
 * reply; or a client in mynetworks refused for a domain that is not this
 * host's. Maps with a mistake are skipped (smtpd refuses them), as are
 * inputs naming :include: (a fuzzer must not read the machine's files).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "addr.h"
#include "conf.h"
#include "diag.h"
#include "routing.h"
#include "fuzz_maps.h"
#include "smtpd/relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char conf_text[] = "myhostname = h.test\n"
                                "local_domains = h.test, localhost\n"
                                "local_users = any\n"
                                "relay_domains = relay.test, other.relay.test\n"
                                "mynetworks = 10.0.0.0/8\n";

/* relay_domains, written out for this configuration: the domains themselves. */
static int is_relay_domain(const char *d)
{
    return strcmp(d, "relay.test") == 0 || strcmp(d, "other.relay.test") == 0;
}

static void client_at(struct sockaddr_in *sin, const char *ip)
{
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &sin->sin_addr);
}

static void decide(const struct relay_policy *rp, const struct routing *rt, const char *addr,
                   const char *domain)
{
    struct sockaddr_in outside, inside;
    struct buf reply = BUF_INIT;
    client_at(&outside, "192.0.2.1");
    client_at(&inside, "10.1.2.3");
    struct route_results res = ROUTE_RESULTS_INIT;
    routing_resolve(rt, addr, &res);
    int local = conf_list_has(&rt->conf->local_domains, domain);
    for (size_t i = 0; i < res.n; i++)
        local |= res.v[i].action == ROUTE_LOCAL;
    int rc = relay_check(rp, (struct sockaddr *)&outside, addr, &reply);
    if (rc != 0 && (rc != -1 || reply.len < 4 || reply.s[0] != '5'))
        __builtin_trap();
    if (rc == 0 && !local && !is_relay_domain(domain))
        __builtin_trap(); /* an open relay */
    for (size_t i = 0; rc == 0 && !is_relay_domain(domain) && i < res.n; i++)
        if (res.v[i].action == ROUTE_REMOTE && !res.v[i].via)
            __builtin_trap(); /* accepted as this host's, sent away without an alias */
    buf_clear(&reply);
    rc = relay_check(rp, (struct sockaddr *)&inside, addr, &reply);
    if (rc != 0 && !local)
        __builtin_trap();
    route_results_free(&res);
    buf_free(&reply);
}

static void each_path(const struct relay_policy *rp, const struct routing *rt, const char *p,
                      size_t n, unsigned flags)
{
    struct buf addr = BUF_INIT;
    for (unsigned count = 0; n > 0 && count < 32; count++) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n;
        struct mailaddr a;
        const char *why;
        if (addr_parse(p, len, ADDR_PATH | ((flags & 1) ? ADDR_ALLOW_UTF8 : 0), &a, &why) == 0) {
            buf_clear(&addr);
            addr_format(&a, &addr);
            decide(rp, rt, buf_cstr(&addr), a.domain ? a.domain : "");
            addr_free(&a);
        }
        p += len + (nl != NULL);
        n -= len + (nl != NULL);
    }
    buf_free(&addr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_names_include(data, size))
        return 0;
    size_t off = 0, alen, rlen, qlen;
    const char *atext = fuzz_section(data, size, &off, &alen);
    const char *rtext = fuzz_section(data, size, &off, &rlen);
    const char *qtext = fuzz_section(data, size, &off, &qlen);
    struct conf c;
    struct diag d = DIAG_INIT;
    struct routing rt = {.routes = ROUTES_INIT, .aliases = ALIASES_INIT};
    if (conf_parse(&c, "/nonexistent-onehop-fuzz", "onehop.conf", conf_text, sizeof(conf_text) - 1,
                   &d) < 0)
        __builtin_trap();
    rt.conf = &c;
    sites_init(&rt.sites);
    aliases_parse(&rt.aliases, "aliases", atext, alen, &d);
    routes_parse(&rt.routes, "routes", rtext, rlen, &d);
    sitegraph_build(&rt.graph, &rt.sites);
    if (d.n == 0 && qlen > 0) {
        struct relay_policy rp;
        relay_init(&rp, &c, &rt);
        each_path(&rp, &rt, qtext + 1, qlen - 1, (unsigned char)qtext[0]);
        relay_free(&rp);
    }
    routing_free(&rt);
    conf_free(&c);
    diag_free(&d);
    return 0;
}
