/*
 * netaddr — host names, IP literals, HOST:PORT and CIDR networks as they
 * appear in onehop.conf (smtp_listen, dns_servers, mynetworks) and in next
 * hops. Parsing only; nothing here resolves a name.
 *
 * Accepted host-and-port forms (SPEC 3):
 *     host    host:port    [host]    [host]:port
 *     1.2.3.4    1.2.3.4:25    [1.2.3.4]:25
 *     [2001:db8::1]    [2001:db8::1]:25    2001:db8::1 (a bare IPv6 address, no port)
 * Ports are 1..65535. Host names follow RFC 1123 (labels of letters, digits
 * and hyphens, at most 63 bytes each, 253 in all; a trailing dot is allowed
 * and removed). Host names are lower-cased.
 */
#ifndef ONEHOP_NETADDR_H
#define ONEHOP_NETADDR_H

#include <stdint.h>
#include <sys/socket.h>

struct hostport {
    char *host;     /* name or IP literal, without brackets */
    uint16_t port;  /* 0: none given */
    int bracketed;  /* written as [host]: no MX lookup (SPEC 4) */
    int family;     /* AF_INET or AF_INET6 when host is an IP literal, else 0 */
};

enum {
    HP_REQUIRE_IP = 1,   /* host must be an IP literal */
    HP_REQUIRE_PORT = 2, /* a port must be given */
    HP_ALLOW_WILDCARD = 4 /* "*" stands for any address (listen addresses) */
};

int hostport_parse(const char *s, unsigned flags, struct hostport *out, const char **why);
void hostport_free(struct hostport *hp);

/* 1 if s is a valid RFC 1123 host name (see above), else 0. */
int hostname_valid(const char *s);
/* AF_INET / AF_INET6 if s is an IP literal (no brackets), else 0; fills *addr
 * (a struct in_addr or in6_addr, 16 bytes suffice) when not NULL. */
int ip_literal(const char *s, void *addr);

struct cidr {
    int family;           /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;      /* 0..32 or 0..128 */
};

/* "127.0.0.0/8", "::1/128", or a bare address (a /32 or /128). Host bits
 * set beyond the prefix are an error, as Postfix warns. */
int cidr_parse(const char *s, struct cidr *out, const char **why);
/* 1 if the address (a sockaddr_in or sockaddr_in6; IPv4-mapped IPv6
 * addresses match IPv4 networks) lies in the network. */
int cidr_match(const struct cidr *net, const struct sockaddr *sa);

#endif
