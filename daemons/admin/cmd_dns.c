/*
 * cmd_dns — `onehop dns` (SPEC 1): ask the running DNS cache.
 *
 *     onehop dns [--json] TYPE NAME     TYPE: MX, A, AAAA, ROUTE or ADDR
 *     onehop dns --dump [--json]        counters and every cached answer
 *     onehop dns --flush [NAME]         empty the cache, or one name's answers
 *
 * Shows the records, the remaining TTL and whether the answer came from the
 * cache. Exit status: 0 when the cache gave a definite answer (ok, nodata,
 * nxdomain, null MX), 1 on a temporary failure or when dnscache is not
 * running ("dnscache is not running"), 2 on a usage error. Never changes
 * anything but the cache, and only with --flush.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/commands.h"
#include "conf.h"
#include "dnsclient.h"
#include "json.h"
#include "mem.h"

#define USAGE_NAME "dns"

struct dns_opts {
    int json, dump, flush;
    const char *type, *name;
};

/* ------------------------------------------------------------- output ---- */

static void add_addresses(struct buf *out, const struct dnsp_host *h, int json)
{
    char text[INET6_ADDRSTRLEN];
    int first = 1;
    for (size_t i = 0; i < h->nv4 + h->nv6; i++) {
        int v4 = i < h->nv4;
        const unsigned char *p = v4 ? h->v4 + 4 * i : h->v6 + 16 * (i - h->nv4);
        inet_ntop(v4 ? AF_INET : AF_INET6, p, text, sizeof(text));
        if (!first)
            buf_adds(out, json ? "," : " ");
        first = 0;
        if (json)
            json_add_cstr(out, text);
        else
            buf_adds(out, text);
    }
}

static void json_host(struct buf *out, const struct dnsp_host *h)
{
    buf_addc(out, '{');
    json_field_uint(out, "preference", h->pref);
    json_field_cstr(out, "host", h->name);
    json_field_cstr(out, "status", dns_status_name(h->status));
    json_field_cstr(out, "reason", h->reason);
    json_field_uint(out, "ttl", h->ttl);
    json_add_key(out, "addresses");
    buf_addc(out, '[');
    add_addresses(out, h, 1);
    buf_addc(out, ']');
    buf_addc(out, '}');
}

static void json_records(struct buf *out, const struct dnsp_answer *a)
{
    if (a->qtype == DNSP_QTYPE_A || a->qtype == DNSP_QTYPE_AAAA) {
        json_add_key(out, "addresses");
        buf_addc(out, '[');
        for (size_t i = 0; i < a->nhosts; i++)
            add_addresses(out, &a->hosts[i], 1);
        buf_addc(out, ']');
        return;
    }
    json_add_key(out, a->qtype == DNSP_QTYPE_MX ? "mx" : "hosts");
    buf_addc(out, '[');
    for (size_t i = 0; i < a->nhosts; i++) {
        if (i)
            buf_addc(out, ',');
        if (a->qtype == DNSP_QTYPE_MX) {
            buf_addc(out, '{');
            json_field_uint(out, "preference", a->hosts[i].pref);
            json_field_cstr(out, "host", a->hosts[i].name);
            buf_addc(out, '}');
        } else {
            json_host(out, &a->hosts[i]);
        }
    }
    buf_addc(out, ']');
}

static void json_answer(struct buf *out, const struct dnsp_answer *a)
{
    buf_addc(out, '{');
    json_field_cstr(out, "name", a->name);
    json_field_cstr(out, "type", dnsp_qtype_name(a->qtype));
    json_field_cstr(out, "canonical_name", a->canon);
    json_field_cstr(out, "status", dns_status_name(a->status));
    json_field_cstr(out, "reason", a->reason);
    json_field_uint(out, "ttl", a->ttl);
    json_field_bool(out, "from_cache", a->flags & DNSP_F_FROM_CACHE);
    json_field_bool(out, "stale", a->flags & DNSP_F_STALE);
    json_field_bool(out, "coalesced", a->flags & DNSP_F_COALESCED);
    json_field_bool(out, "implicit_mx", a->flags & DNSP_F_IMPLICIT_MX);
    json_field_bool(out, "hosts_capped", a->flags & DNSP_F_HOSTS_CAPPED);
    json_records(out, a);
    buf_addc(out, '}');
}

static void text_flags(struct buf *out, const struct dnsp_answer *a)
{
    buf_adds(out, a->flags & DNSP_F_FROM_CACHE ? ", from cache" : ", from upstream");
    if (a->flags & DNSP_F_STALE)
        buf_adds(out, ", stale (RFC 8767)");
    if (a->flags & DNSP_F_COALESCED)
        buf_adds(out, ", shared a query in flight");
    if (a->flags & DNSP_F_IMPLICIT_MX)
        buf_adds(out, ", no MX: the domain itself (RFC 5321 5.1)");
    if (a->flags & DNSP_F_HOSTS_CAPPED)
        buf_printf(out, ", only the first %d MX hosts", DNSP_ROUTE_MAX_HOSTS);
}

static void text_answer(struct buf *out, const struct dnsp_answer *a)
{
    buf_printf(out, "%s %s: %s, ttl %u", a->name, dnsp_qtype_name(a->qtype),
               dns_status_name(a->status), a->ttl);
    text_flags(out, a);
    if (a->reason[0])
        buf_printf(out, " (%s)", a->reason);
    buf_addc(out, '\n');
    if (a->canon[0] && strcmp(a->canon, a->name) != 0)
        buf_printf(out, "  canonical name %s\n", a->canon);
    for (size_t i = 0; i < a->nhosts; i++) {
        const struct dnsp_host *h = &a->hosts[i];
        buf_adds(out, "  ");
        if (a->qtype == DNSP_QTYPE_MX) {
            buf_printf(out, "%u %s", h->pref, h->name);
        } else if (a->qtype == DNSP_QTYPE_ROUTE || a->qtype == DNSP_QTYPE_ADDR ||
                   a->qtype == DNSP_QTYPE_RDNS) {
            buf_printf(out, "%u %s %s, ttl %u", h->pref, h->name, dns_status_name(h->status),
                       h->ttl);
            if (h->reason[0])
                buf_printf(out, " (%s)", h->reason);
            if (h->nv4 + h->nv6)
                buf_adds(out, ": ");
            add_addresses(out, h, 0);
        } else {
            add_addresses(out, h, 0);
        }
        buf_addc(out, '\n');
    }
}

static void print_buf(struct buf *b)
{
    fwrite(b->s ? b->s : "", 1, b->len, stdout);
    buf_free(b);
}

/* ---------------------------------------------------------- commands ---- */

static int open_cache(const char *confdir, struct dnsc *c)
{
    struct conf conf;
    struct diag d = DIAG_INIT;
    struct buf path = BUF_INIT, err = BUF_INIT;
    conf_load(&conf, confdir, &d); /* errors: `onehop check` reports them */
    diag_free(&d);
    dnsc_socket_path(conf.run_dir, &path);
    /* the longest answer, ROUTE: two lookups in turn (the MX set, then the
     * hosts' addresses together), each within dns_lookup_timeout */
    int timeout_ms = (int)(conf.dns_lookup_timeout * 2 + 10) * 1000;
    conf_free(&conf);
    int rc = dnsc_open(c, buf_cstr(&path), timeout_ms, &err);
    if (rc == DNSC_NOT_RUNNING)
        admin_fail("dnscache is not running (%s)", buf_cstr(&err));
    else if (rc != DNSC_OK)
        admin_fail("cannot reach dnscache: %s", buf_cstr(&err));
    buf_free(&path);
    buf_free(&err);
    return rc == DNSC_OK ? 0 : -1;
}

static int run_lookup(struct dnsc *c, const struct dns_opts *o)
{
    struct dnsp_answer a;
    struct buf out = BUF_INIT, err = BUF_INIT;
    if (dnsc_lookup(c, dnsp_qtype_parse(o->type), o->name, &a, &err) < 0) {
        admin_fail("%s", buf_cstr(&err));
        buf_free(&err);
        return 1;
    }
    if (o->json) {
        json_answer(&out, &a);
        buf_addc(&out, '\n');
    } else {
        text_answer(&out, &a);
    }
    print_buf(&out);
    int rc = 0;
    if (a.status == DNS_STATUS_TEMPFAIL || a.status == DNS_STATUS_INVALID)
        rc = admin_fail("%s %s: %s", a.name, dnsp_qtype_name(a.qtype),
                        a.status == DNS_STATUS_TEMPFAIL ? "temporary failure" : "invalid request");
    dnsp_answer_free(&a);
    return rc;
}

struct dump_out {
    struct buf out;
    int json;
    size_t counters, entries;
};

static void on_counter(void *arg, const char *name, uint64_t value)
{
    struct dump_out *d = arg;
    if (d->json) {
        json_field_uint(&d->out, name, value);
    } else {
        if (d->counters == 0)
            buf_adds(&d->out, "counters:\n");
        buf_printf(&d->out, "  %-20s %llu\n", name, (unsigned long long)value);
    }
    d->counters++;
}

static void on_entry(void *arg, const struct dnsp_answer *e)
{
    struct dump_out *d = arg;
    if (d->json) {
        if (d->entries == 0)
            buf_adds(&d->out, "},\"entries\":[");
        else
            buf_addc(&d->out, ',');
        json_answer(&d->out, e);
    } else {
        if (d->entries == 0)
            buf_adds(&d->out, "entries (most recently used first):\n");
        text_answer(&d->out, e);
    }
    d->entries++;
}

static int run_dump(struct dnsc *c, const struct dns_opts *o)
{
    struct dump_out d = {BUF_INIT, o->json, 0, 0};
    struct buf err = BUF_INIT;
    if (o->json)
        buf_adds(&d.out, "{\"counters\":{");
    if (dnsc_dump(c, DNSP_DUMP_COUNTERS | DNSP_DUMP_ENTRIES, on_counter, on_entry, &d, &err) < 0) {
        buf_free(&d.out);
        admin_fail("%s", buf_cstr(&err));
        buf_free(&err);
        return 1;
    }
    if (o->json)
        buf_adds(&d.out, d.entries ? "]}\n" : "},\"entries\":[]}\n");
    else if (d.entries == 0)
        buf_adds(&d.out, "entries: none\n");
    print_buf(&d.out);
    return 0;
}

static int run_flush(struct dnsc *c, const struct dns_opts *o)
{
    struct buf err = BUF_INIT;
    uint64_t removed;
    if (dnsc_flush(c, o->name ? o->name : "", &removed, &err) < 0) {
        admin_fail("%s", buf_cstr(&err));
        buf_free(&err);
        return 1;
    }
    printf("flushed %llu entr%s%s%s\n", (unsigned long long)removed, removed == 1 ? "y" : "ies",
           o->name ? " of " : "", o->name ? o->name : "");
    return 0;
}

static int parse_args(int argc, char **argv, struct dns_opts *o)
{
    const char *words[2];
    int nwords = 0;
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            o->json = 1;
        else if (strcmp(argv[i], "--dump") == 0)
            o->dump = 1;
        else if (strcmp(argv[i], "--flush") == 0)
            o->flush = 1;
        else if (argv[i][0] == '-' && argv[i][1])
            return admin_usage_error(USAGE_NAME, "unknown option \"%s\"", argv[i]);
        else if (nwords < 2)
            words[nwords++] = argv[i];
        else
            return admin_usage_error(USAGE_NAME, "too many arguments");
    }
    if (o->dump + o->flush > 1 || (o->dump && nwords) || (o->flush && (nwords > 1 || o->json)))
        return admin_usage_error(USAGE_NAME, "conflicting arguments");
    if (o->flush) {
        o->name = nwords ? words[0] : NULL;
        return 0;
    }
    if (o->dump)
        return 0;
    if (nwords != 2)
        return admin_usage_error(USAGE_NAME, "TYPE and NAME are needed");
    o->type = words[0];
    o->name = words[1];
    if (!dnsp_qtype_parse(o->type))
        return admin_usage_error(USAGE_NAME, "unknown type \"%s\" (MX, A, AAAA, ROUTE or ADDR)",
                                 o->type);
    return 0;
}

/* A copy of name, normalized, or a usage error. */
static int check_name(struct dns_opts *o, char **copy)
{
    const char *why = NULL;
    *copy = NULL;
    if (!o->name)
        return 0;
    *copy = xstrdup(o->name);
    if (dnsp_name_normalize(*copy, &why) < 0) {
        free(*copy);
        *copy = NULL;
        return admin_usage_error(USAGE_NAME, "bad name \"%s\": %s", o->name, why);
    }
    o->name = *copy;
    return 0;
}

int cmd_dns(const char *confdir, int argc, char **argv)
{
    struct dns_opts o;
    struct dnsc c;
    char *name = NULL;
    int rc = parse_args(argc, argv, &o);
    if (rc == 0)
        rc = check_name(&o, &name);
    if (rc != 0)
        return rc;
    if (open_cache(confdir, &c) < 0) {
        free(name);
        return 1;
    }
    if (o.dump)
        rc = run_dump(&c, &o);
    else if (o.flush)
        rc = run_flush(&c, &o);
    else
        rc = run_lookup(&c, &o);
    dnsc_close(&c);
    free(name);
    return rc;
}
