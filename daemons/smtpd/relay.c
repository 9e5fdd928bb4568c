/*
 * relay — the RCPT decision. See relay.h for the rules, in order.
 */
#include "smtpd/relay.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

void relay_init(struct relay_policy *rp, const struct conf *c, const struct routing *rt)
{
    memset(rp, 0, sizeof(*rp));
    rp->conf = c;
    rp->routing = rt;
    rp->nets = xcalloc(c->mynetworks.n ? c->mynetworks.n : 1, sizeof(*rp->nets));
    for (size_t i = 0; i < c->mynetworks.n; i++) {
        const char *why = NULL;
        if (cidr_parse(c->mynetworks.v[i], &rp->nets[rp->nnets], &why) == 0)
            rp->nnets++;
    }
}

void relay_free(struct relay_policy *rp)
{
    free(rp->nets);
    rp->nets = NULL;
    rp->nnets = 0;
}

int relay_client_trusted(const struct relay_policy *rp, const struct sockaddr *client)
{
    if (!client)
        return 1;
    for (size_t i = 0; i < rp->nnets; i++)
        if (cidr_match(&rp->nets[i], client))
            return 1;
    return 0;
}

/* relay_domains: the domain itself (conf.c takes domain names only, so
 * there is no ".parent" form to match subdomains by). */
static int relay_domain(const struct conf *c, const char *domain)
{
    return conf_list_has(&c->relay_domains, domain);
}

/* '%', '!' or an '@' before the last '@': a route inside the local part. */
static int routed_local_part(const char *addr, const char *at)
{
    const char *special = strpbrk(addr, "%!@");
    return special && special < at;
}

static void deny(struct buf *reply, const char *addr)
{
    buf_printf(reply, "554 5.7.1 <%s>: Relay access denied", addr);
}

int relay_check(const struct relay_policy *rp, const struct sockaddr *client, const char *addr,
                struct buf *reply)
{
    const char *at = strrchr(addr, '@');
    const char *domain = at ? at + 1 : "";
    struct route_results res = ROUTE_RESULTS_INIT;
    routing_resolve(rp->routing, addr, &res);
    int local = conf_list_has(&rp->conf->local_domains, domain);
    size_t bounced = 0;
    const struct route_result *bounce = NULL;
    for (size_t i = 0; i < res.n; i++) {
        if (res.v[i].action == ROUTE_LOCAL)
            local = 1;
        if (res.v[i].action == ROUTE_BOUNCE) {
            bounced++;
            bounce = &res.v[i];
        }
    }
    int rc = 0;
    if (local && at && routed_local_part(addr, at)) {
        deny(reply, addr); /* rule 1 */
        rc = -1;
    } else if (local && res.n && bounced == res.n) {
        buf_printf(reply, "550 5.1.1 <%s>: Recipient address rejected: %s", addr,
                   bounce->reason ? bounce->reason : "User unknown in local recipient table");
        rc = -1;
    } else if (!local && !relay_domain(rp->conf, domain) && !relay_client_trusted(rp, client)) {
        deny(reply, addr);
        rc = -1;
    }
    route_results_free(&res);
    return rc;
}
