/*
 * fuzz_mxorder — libFuzzer target for what onehop-remote makes of a DNS
 * cache answer (daemons/remote/mxorder.c, SPEC D1 and D5): byte 0 gives the
 * address limit (1..16) and picks the port (bit 4: 2525, else 25), the rest
 * is one record as the cache sends it, decoded by dnsp_get_answer
 * (common/dnsproto.c) and, when it decodes, ordered by mx_order for a host
 * named mx2.example.org listening on 127.0.0.1:25 and [::1]:2525.
 *
 * Besides crashes, sanitizer reports and leaks, it traps when the order
 * breaks SPEC D1/D5: more targets than the limit, a target that is not an
 * address of its host in the answer, a target at or after our own
 * preference (D5) or one that is this host, MX_LOOP while a host better than
 * ours exists, or (when the answer's hosts come sorted, as the cache sends
 * them) preferences out of order.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "diag.h"
#include "dnsproto.h"
#include "remote/mxorder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char conf_text[] = "myhostname = mx2.example.org\n"
                                "smtp_listen = 127.0.0.1:25, [::1]:2525\n";

static int host_has(const struct dnsp_host *h, const struct mx_target *t)
{
    const unsigned char *v = t->family == AF_INET ? h->v4 : h->v6;
    size_t n = t->family == AF_INET ? h->nv4 : h->nv6, len = t->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < n; i++)
        if (memcmp(v + i * len, t->addr, len) == 0)
            return 1;
    return 0;
}

/* The preference D5 stops at: the best of the hosts that are this MTA. */
static uint32_t own_pref(const struct dnsp_answer *a, const struct mx_self *self, uint16_t port)
{
    uint32_t own = UINT32_MAX;
    for (size_t i = 0; i < a->nhosts; i++) {
        const struct dnsp_host *h = &a->hosts[i];
        int me = h->name && strcasecmp(h->name, "mx2.example.org") == 0;
        for (size_t k = 0; !me && k < h->nv4; k++)
            me = mx_self_listens(self, AF_INET, h->v4 + 4 * k, port);
        for (size_t k = 0; !me && k < h->nv6; k++)
            me = mx_self_listens(self, AF_INET6, h->v6 + 16 * k, port);
        if (me && h->pref < own)
            own = h->pref;
    }
    return own;
}

static void check_order(const struct dnsp_answer *a, const struct mx_self *self, uint16_t port,
                        size_t max, int rc, const struct mx_target *t, size_t n)
{
    uint32_t own = own_pref(a, self, port);
    int sorted = 1, better = 0;
    for (size_t i = 0; i < a->nhosts; i++) {
        sorted &= i == 0 || a->hosts[i - 1].pref <= a->hosts[i].pref;
        better |= a->hosts[i].pref < own;
    }
    if (rc == MX_LOOP) {
        if (n != 0 || own == UINT32_MAX || (sorted && better))
            __builtin_trap();
        return;
    }
    if (rc < 0 || (size_t)rc != n || n > max)
        __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        if (t[i].pref >= own || t[i].port != port || !t[i].host ||
            (t[i].family != AF_INET && t[i].family != AF_INET6) ||
            mx_self_listens(self, t[i].family, t[i].addr, port))
            __builtin_trap();
        if (sorted && i > 0 && t[i - 1].pref > t[i].pref)
            __builtin_trap();
        int found = 0;
        for (size_t k = 0; !found && k < a->nhosts; k++)
            found = a->hosts[k].pref == t[i].pref && a->hosts[k].name &&
                    strcmp(a->hosts[k].name, t[i].host) == 0 && host_has(&a->hosts[k], &t[i]);
        if (!found)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct conf c;
    static struct mx_self self;
    static int loaded;
    if (!loaded) {
        struct diag d = DIAG_INIT;
        if (conf_parse(&c, "/nonexistent-onehop-fuzz", "onehop.conf", conf_text,
                       sizeof(conf_text) - 1, &d) < 0)
            __builtin_trap();
        mx_self_from_conf(&self, &c);
        diag_free(&d);
        loaded = 1;
    }
    if (size == 0)
        return 0;
    size_t max = (size_t)(data[0] & 15) + 1;
    uint16_t port = (data[0] & 16) ? 2525 : 25;
    struct dnsp_answer a;
    const char *why;
    if (dnsp_get_answer(data + 1, size - 1, &a, &why) < 0)
        return 0;
    struct mx_rng rng;
    struct mx_target *t = NULL;
    size_t n = 0;
    mx_rng_init(&rng, 1 + size);
    int rc = mx_order(&a, port, &self, max, &rng, &t, &n);
    check_order(&a, &self, port, max, rc, t, n);
    mx_targets_free(t, n);
    dnsp_answer_free(&a);
    return 0;
}
