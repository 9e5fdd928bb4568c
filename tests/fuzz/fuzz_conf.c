/*
 * fuzz_conf — libFuzzer target for the onehop.conf parser (common/conf.c):
 * conf_parse() on arbitrary bytes (NUL bytes, missing final newline, endless
 * continuation lines, $ loops and blow-ups), then conf_free(): LeakSanitizer
 * checks that every path frees everything.
 *
 * Besides crashes, sanitizer reports and leaks, it traps when a result breaks
 * the contract of conf.h: a NULL field (other than relayhost), a relative
 * path, a list item its own validator refuses, an upper-case domain, a
 * return code that disagrees with the diag, or a diag line past the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conf.h"
#include "netaddr.h"
#include "nexthop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_absolute(const char *path)
{
    if (!path || path[0] != '/')
        __builtin_trap();
}

static void check_domains(const struct conf_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!hostname_valid(l->v[i]))
            __builtin_trap();
        for (const char *s = l->v[i]; *s; s++) {
            if ((*s >= 'A' && *s <= 'Z') || *s == '\0')
                __builtin_trap();
        }
        size_t len = strlen(l->v[i]);
        if (l->v[i][len - 1] == '.')
            __builtin_trap();
    }
}

static void check_addresses(const struct conf_list *l, unsigned flags)
{
    for (size_t i = 0; i < l->n; i++) {
        struct hostport hp;
        const char *why;
        if (hostport_parse(l->v[i], flags, &hp, &why) < 0)
            __builtin_trap();
        hostport_free(&hp);
    }
}

static void check_networks(const struct conf_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct cidr net;
        const char *why;
        if (cidr_parse(l->v[i], &net, &why) < 0)
            __builtin_trap();
    }
}

static void check_conf(const struct conf *c)
{
    if (!c->myhostname || !hostname_valid(c->myhostname) || !c->myorigin || !c->user ||
        !c->mailbox || !c->mailbox[0] || !c->log || !c->smtpd_tls_cert || !c->smtpd_tls_key)
        __builtin_trap();
    check_absolute(c->config_dir);
    check_absolute(c->config_file);
    check_absolute(c->queue_dir);
    check_absolute(c->run_dir);
    check_absolute(c->daemon_dir);
    if (strcmp(c->log, "syslog") != 0 && strcmp(c->log, "stderr") != 0)
        check_absolute(c->log);
    check_domains(&c->local_domains);
    check_domains(&c->relay_domains);
    check_networks(&c->mynetworks);
    check_addresses(&c->smtp_listen, HP_REQUIRE_IP | HP_REQUIRE_PORT | HP_ALLOW_WILDCARD);
    check_addresses(&c->dns_servers, HP_REQUIRE_IP);
    if (c->relayhost) {
        struct nexthop nh;
        const char *why;
        if (nexthop_parse(c->relayhost, NEXTHOP_NO_LOCAL | NEXTHOP_NO_ERROR, &nh, &why) < 0)
            __builtin_trap();
        nexthop_free(&nh);
    }
    if (c->remote_port < 1 || c->remote_port > 65535 || c->retry_min < 1)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    struct conf c;
    struct diag d = DIAG_INIT;
    int rc = conf_parse(&c, "/fuzz/conf", "onehop.conf", (const char *)data, size, &d);
    if ((rc == 0) != (d.n == 0))
        __builtin_trap();
    for (size_t i = 0; i < d.n; i++) {
        if (d.v[i].line > lines || !d.v[i].text[0])
            __builtin_trap();
    }
    check_conf(&c);
    conf_free(&c);
    diag_free(&d);
    return 0;
}
