/*
 * dns_answer — classify one upstream answer. See dns_answer.h for the rules.
 */
#include "dnscache/dns_answer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

static const char *const fail_names[DNS_FAIL_KINDS] = {
    [DNS_FAIL_NONE] = "none",           [DNS_FAIL_SERVFAIL] = "servfail",
    [DNS_FAIL_TIMEOUT] = "timeout",     [DNS_FAIL_REFUSED] = "refused",
    [DNS_FAIL_MALFORMED] = "malformed", [DNS_FAIL_CNAME] = "cname",
    [DNS_FAIL_OTHER] = "other",
};

const char *dns_fail_name(enum dns_fail kind)
{
    return (unsigned)kind < DNS_FAIL_KINDS ? fail_names[kind] : "other";
}

const char *dns_status_reason(enum dns_status s)
{
    switch (s) {
    case DNS_STATUS_NODATA:
        return "no record of that type (NODATA)";
    case DNS_STATUS_NXDOMAIN:
        return "no such domain (NXDOMAIN)";
    case DNS_STATUS_NULLMX:
        return "null MX (RFC 7505): the domain accepts no mail";
    default:
        return "";
    }
}

void dns_result_init(struct dns_result *r)
{
    memset(r, 0, sizeof(*r));
    r->status = DNS_STATUS_TEMPFAIL;
    r->fail = DNS_FAIL_OTHER;
}

void dns_result_free(struct dns_result *r)
{
    buf_free(&r->reason);
    buf_free(&r->data);
}

void dns_result_fail(struct dns_result *r, enum dns_fail kind, const char *fmt, ...)
{
    va_list ap;
    r->status = DNS_STATUS_TEMPFAIL;
    r->fail = kind;
    r->ttl = 0;
    r->cacheable = 0;
    r->follow = 0;
    r->count = 0;
    buf_clear(&r->data);
    buf_clear(&r->reason);
    va_start(ap, fmt);
    buf_vprintf(&r->reason, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ records ---- */

/* One record of the asked type owned by the end of the chain. */
struct found {
    uint16_t pref; /* MX */
    size_t order;  /* position in the answer: equal preferences keep it */
    size_t rdata_off;
};

struct scan {
    const struct dns_msg *m;
    uint16_t qtype;
    struct found *v;
    size_t n, cap;
    uint32_t min_ttl;
};

static int owner_is(const struct dns_msg *m, const struct dns_rr *rr, const char *name)
{
    char owner[DNS_NAME_TEXT_MAX + 1];
    const char *why;
    return dns_name_at(m, rr->name_off, owner, NULL, &why) == 0 && strcmp(owner, name) == 0;
}

/* Collect the answer-section records of qtype owned by name. */
static void collect(struct scan *s, const char *name)
{
    struct dns_rr_iter it;
    struct dns_rr rr;
    dns_rr_iter_init(s->m, &it);
    while (dns_rr_next(s->m, &it, &rr)) {
        if (rr.section != DNS_SECTION_ANSWER || rr.type != s->qtype || rr.rclass != DNS_CLASS_IN ||
            !owner_is(s->m, &rr, name))
            continue;
        s->v = xgrow(s->v, &s->cap, s->n + 1, sizeof(*s->v));
        struct found *f = &s->v[s->n];
        f->order = s->n++;
        f->rdata_off = rr.rdata_off;
        f->pref = rr.type == DNS_TYPE_MX ? dns_get16(s->m, rr.rdata_off) : 0;
        if (rr.ttl < s->min_ttl)
            s->min_ttl = rr.ttl;
    }
}

/* The CNAME owned by name in the answer section: 1 with its target and TTL. */
static int find_cname(const struct dns_msg *m, const char *name, char *target, uint32_t *ttl)
{
    struct dns_rr_iter it;
    struct dns_rr rr;
    const char *why;
    dns_rr_iter_init(m, &it);
    while (dns_rr_next(m, &it, &rr)) {
        if (rr.section == DNS_SECTION_ANSWER && rr.type == DNS_TYPE_CNAME &&
            rr.rclass == DNS_CLASS_IN && owner_is(m, &rr, name)) {
            *ttl = rr.ttl;
            return dns_name_at(m, rr.rdata_off, target, NULL, &why) == 0;
        }
    }
    return 0;
}

/* RFC 2308 5: the negative TTL is min(SOA TTL, SOA MINIMUM). 1 if a SOA is
 * in the authority section. */
static int negative_ttl(const struct dns_msg *m, uint32_t *ttl)
{
    struct dns_rr_iter it;
    struct dns_rr rr;
    dns_rr_iter_init(m, &it);
    while (dns_rr_next(m, &it, &rr)) {
        if (rr.section != DNS_SECTION_AUTHORITY || rr.type != DNS_TYPE_SOA ||
            rr.rclass != DNS_CLASS_IN)
            continue;
        uint32_t minimum = dns_get32(m, rr.rdata_off + rr.rdlength - 4);
        if (minimum > 0x7fffffffu)
            minimum = 0;
        *ttl = rr.ttl < minimum ? rr.ttl : minimum;
        return 1;
    }
    return 0;
}

static int by_preference(const void *a, const void *b)
{
    const struct found *x = a, *y = b;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void put16(struct buf *b, uint16_t v)
{
    unsigned char p[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    buf_add(b, p, 2);
}

/* MX: RFC 7505 3: a null MX is a single record whose exchange is the root.
 * Root exchanges next to real ones are ignored. PTR: the same packing,
 * every preference 0 (so the answer order stays); no name but the root is
 * no data. */
static void pack_names(struct dns_result *r, const struct scan *s)
{
    qsort(s->v, s->n, sizeof(*s->v), by_preference);
    for (size_t i = 0; i < s->n; i++) {
        char host[DNS_NAME_TEXT_MAX + 1];
        const char *why;
        size_t at = s->v[i].rdata_off + (s->qtype == DNS_TYPE_MX ? 2 : 0); /* MX: preference */
        if (dns_name_at(s->m, at, host, NULL, &why) < 0 || strcmp(host, ".") == 0)
            continue;
        size_t n = strlen(host);
        put16(&r->data, s->v[i].pref);
        put16(&r->data, (uint16_t)n);
        buf_add(&r->data, host, n);
        r->count++;
    }
    if (r->count == 0) {
        r->status = s->qtype == DNS_TYPE_MX ? DNS_STATUS_NULLMX : DNS_STATUS_NODATA;
        buf_sets(&r->reason, dns_status_reason(r->status));
    }
}

static void pack_records(struct dns_result *r, const struct scan *s)
{
    r->status = DNS_STATUS_OK;
    r->fail = DNS_FAIL_NONE;
    if (s->qtype == DNS_TYPE_MX || s->qtype == DNS_TYPE_PTR) {
        pack_names(r, s);
        return;
    }
    size_t size = s->qtype == DNS_TYPE_A ? 4 : 16;
    for (size_t i = 0; i < s->n; i++)
        buf_add(&r->data, s->m->p + s->v[i].rdata_off, size);
    r->count = (uint32_t)s->n;
}

/* -------------------------------------------------------------- chain ---- */

/* Follow CNAMEs from qname while there is no data. Returns 0, or -1 after
 * setting a failure (loop, too long). names holds every name met, NUL-separated. */
static int follow_chain(struct dns_result *r, struct scan *s, const char *qname, unsigned budget)
{
    struct buf names = BUF_INIT;
    char target[DNS_NAME_TEXT_MAX + 1];
    uint32_t ttl;
    int rc = 0;
    buf_add(&names, qname, strlen(qname) + 1);
    snprintf(r->canon, sizeof(r->canon), "%s", qname);
    for (;;) {
        collect(s, r->canon);
        if (s->n > 0 || !find_cname(s->m, r->canon, target, &ttl))
            break;
        if (r->cnames >= budget) {
            dns_result_fail(r, DNS_FAIL_CNAME, "CNAME chain longer than %d links",
                            DNS_CNAME_CHAIN_MAX);
            rc = -1;
            break;
        }
        for (size_t off = 0; off < names.len; off += strlen(names.s + off) + 1) {
            if (strcmp(names.s + off, target) == 0) {
                dns_result_fail(r, DNS_FAIL_CNAME, "CNAME loop at %s", target);
                rc = -1;
                break;
            }
        }
        if (rc < 0)
            break;
        buf_add(&names, target, strlen(target) + 1);
        r->cnames++;
        if (ttl < s->min_ttl)
            s->min_ttl = ttl;
        memcpy(r->canon, target, strlen(target) + 1);
    }
    buf_free(&names);
    return rc;
}

/* --------------------------------------------------------- the answer ---- */

static int check_response(struct dns_result *r, const struct dns_msg *m, const char *qname,
                          uint16_t qtype)
{
    if (!(m->flags & DNS_FLAG_QR) || DNS_OPCODE(m->flags) != 0) {
        dns_result_fail(r, DNS_FAIL_MALFORMED, "malformed answer: not a query response");
        return -1;
    }
    if (m->qdcount != 1 || strcmp(m->qname, qname) != 0 || m->qtype != qtype ||
        m->qclass != DNS_CLASS_IN) {
        dns_result_fail(r, DNS_FAIL_MALFORMED, "malformed answer: not for our question");
        return -1;
    }
    if (m->flags & DNS_FLAG_TC) {
        dns_result_fail(r, DNS_FAIL_MALFORMED, "answer truncated even over TCP");
        return -1;
    }
    return 0;
}

static int check_rcode(struct dns_result *r, const struct dns_msg *m)
{
    switch (DNS_RCODE(m->flags)) {
    case DNS_RCODE_NOERROR:
    case DNS_RCODE_NXDOMAIN:
        return 0;
    case DNS_RCODE_SERVFAIL:
        dns_result_fail(r, DNS_FAIL_SERVFAIL, "SERVFAIL from the upstream resolver");
        return -1;
    case DNS_RCODE_REFUSED:
        dns_result_fail(r, DNS_FAIL_REFUSED, "REFUSED by the upstream resolver");
        return -1;
    case DNS_RCODE_FORMERR:
        dns_result_fail(r, DNS_FAIL_OTHER, "FORMERR from the upstream resolver");
        return -1;
    default:
        dns_result_fail(r, DNS_FAIL_OTHER, "rcode %u from the upstream resolver",
                        DNS_RCODE(m->flags));
        return -1;
    }
}

/* No data at the end of the chain: NXDOMAIN, NODATA, or "ask canon". */
static void classify_negative(struct dns_result *r, const struct dns_msg *m, uint32_t chain_ttl)
{
    uint32_t neg = 0;
    int has_soa = negative_ttl(m, &neg);
    if (DNS_RCODE(m->flags) == DNS_RCODE_NOERROR && r->cnames > 0 && !has_soa) {
        r->follow = 1; /* the server gave the chain but did not chase it */
        r->ttl = chain_ttl;
        return;
    }
    r->fail = DNS_FAIL_NONE;
    if (DNS_RCODE(m->flags) == DNS_RCODE_NXDOMAIN) {
        r->status = DNS_STATUS_NXDOMAIN;
    } else {
        r->status = DNS_STATUS_NODATA;
    }
    buf_sets(&r->reason, dns_status_reason(r->status));
    r->cacheable = has_soa;
    r->ttl = neg < chain_ttl ? neg : chain_ttl;
}

void dns_result_from_answer(struct dns_result *r, const void *p, size_t len, const char *qname,
                            uint16_t qtype, unsigned cname_budget)
{
    struct dns_msg m;
    const char *why;
    if (dns_msg_parse(&m, p, len, &why) < 0) {
        dns_result_fail(r, DNS_FAIL_MALFORMED, "malformed answer: %s", why);
        return;
    }
    if (check_response(r, &m, qname, qtype) < 0 || check_rcode(r, &m) < 0)
        return;
    struct scan s = {&m, qtype, NULL, 0, 0, UINT32_MAX};
    if (follow_chain(r, &s, qname, cname_budget) == 0) {
        if (s.n > 0 && DNS_RCODE(m.flags) == DNS_RCODE_NOERROR) {
            pack_records(r, &s);
            r->ttl = s.min_ttl;
            r->cacheable = 1;
        } else {
            classify_negative(r, &m, s.min_ttl);
        }
    }
    free(s.v);
}

int dns_mx_next(const void *data, size_t len, size_t *off, uint16_t *pref, const char **name,
                size_t *name_len)
{
    const unsigned char *p = data;
    if (*off + 4 > len)
        return 0;
    size_t n = (size_t)(p[*off + 2] << 8 | p[*off + 3]);
    if (n > len - *off - 4)
        return 0;
    *pref = (uint16_t)(p[*off] << 8 | p[*off + 1]);
    *name = (const char *)p + *off + 4;
    *name_len = n;
    *off += 4 + n;
    return 1;
}
