/*
 * netaddr — host names, IP literals, HOST:PORT and CIDR networks as written
 * in onehop.conf and in next hops. See netaddr.h for the accepted forms.
 *
 * Contract: parsing only, all or nothing: on failure *out holds nothing
 * allocated and *why a static reason. Host names are checked against
 * RFC 1123 2.1 (letters, digits, hyphens; labels 1..63 bytes; 253 bytes in
 * all), lower-cased, and a trailing dot is removed; IPv6 literals are
 * lower-cased too (2001:DB8::1 becomes 2001:db8::1).
 * Never: resolve a name, or accept an address form that is ambiguous (an
 * IPv6 address followed by a port must be bracketed).
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "mem.h"
#include "strparse.h"

#define HOSTNAME_MAX 253
#define LABEL_MAX 63

static int label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* One label of n bytes: RFC 1123 2.1, letters, digits and inner hyphens. */
static int label_valid(const char *s, size_t n)
{
    if (n == 0 || n > LABEL_MAX || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!label_char(s[i]))
            return 0;
    }
    return 1;
}

/* A name of only digits and dots is a (bad) address, never a host name. */
static int all_numeric(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '.' && (s[i] < '0' || s[i] > '9'))
            return 0;
    }
    return 1;
}

int hostname_valid(const char *s)
{
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > HOSTNAME_MAX || all_numeric(s, len))
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (!label_valid(s + start, i - start))
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

int ip_literal(const char *s, void *addr)
{
    unsigned char bytes[16];
    int family = 0;
    if (inet_pton(AF_INET, s, bytes) == 1)
        family = AF_INET;
    else if (inet_pton(AF_INET6, s, bytes) == 1)
        family = AF_INET6;
    if (family && addr)
        memcpy(addr, bytes, family == AF_INET ? 4 : 16);
    return family;
}

/* The pieces of a host-and-port string, before validation. */
struct hostport_text {
    const char *host;
    size_t host_len;
    const char *port; /* NULL: no port */
    int bracketed;
};

static int split_bracketed(const char *s, struct hostport_text *t, const char **why)
{
    const char *close = strchr(s, ']');
    if (!close) {
        *why = "missing ']'";
        return -1;
    }
    t->host = s + 1;
    t->host_len = (size_t)(close - t->host);
    t->bracketed = 1;
    if (close[1] == ':')
        t->port = close + 2;
    else if (close[1] != '\0') {
        *why = "unexpected text after ']'";
        return -1;
    }
    return 0;
}

static int split_hostport(const char *s, struct hostport_text *t, const char **why)
{
    memset(t, 0, sizeof(*t));
    if (s[0] == '[')
        return split_bracketed(s, t, why);
    t->host = s;
    if (ip_literal(s, NULL) == AF_INET6) {
        t->host_len = strlen(s); /* a bare IPv6 address carries no port */
        return 0;
    }
    const char *colon = strchr(s, ':');
    if (colon && strchr(colon + 1, ':')) {
        *why = "an IPv6 address with a port must be written [address]:port";
        return -1;
    }
    t->host_len = colon ? (size_t)(colon - s) : strlen(s);
    t->port = colon ? colon + 1 : NULL;
    return 0;
}

/* Validate the host part; returns its family (0 for a name) or -1. */
static int check_host(char *host, const struct hostport_text *t, unsigned flags, const char **why)
{
    if (host[0] == '\0') {
        *why = "empty host";
        return -1;
    }
    if ((flags & HP_ALLOW_WILDCARD) && !t->bracketed && strcmp(host, "*") == 0)
        return 0;
    int family = ip_literal(host, NULL);
    if (family) {
        str_lower(host); /* IPv6 hex digits, as names: lower-case */
        return family;
    }
    if (flags & HP_REQUIRE_IP) {
        *why = "not an IP address";
        return -1;
    }
    if (!hostname_valid(host)) {
        *why = "not a valid host name (RFC 1123)";
        return -1;
    }
    size_t len = strlen(host);
    if (host[len - 1] == '.')
        host[len - 1] = '\0';
    str_lower(host);
    return 0;
}

static int check_port(const char *port, unsigned flags, uint16_t *out, const char **why)
{
    uint64_t v;
    if (!port) {
        if (flags & HP_REQUIRE_PORT) {
            *why = "port missing";
            return -1;
        }
        *out = 0;
        return 0;
    }
    if (parse_uint(port, 1, 65535, &v, why) < 0) {
        *why = "bad port (must be 1-65535)";
        return -1;
    }
    *out = (uint16_t)v;
    return 0;
}

int hostport_parse(const char *s, unsigned flags, struct hostport *out, const char **why)
{
    struct hostport_text t;
    memset(out, 0, sizeof(*out));
    if (s[0] == '\0') {
        *why = "empty address";
        return -1;
    }
    if (split_hostport(s, &t, why) < 0)
        return -1;
    char *host = xstrndup(t.host, t.host_len);
    int family = check_host(host, &t, flags, why);
    uint16_t port = 0;
    if (family < 0 || check_port(t.port, flags, &port, why) < 0) {
        free(host);
        return -1;
    }
    out->host = host;
    out->port = port;
    out->bracketed = t.bracketed;
    out->family = family;
    return 0;
}

void hostport_free(struct hostport *hp)
{
    free(hp->host);
    memset(hp, 0, sizeof(*hp));
}

/* 1 if the first `prefix` bits of a and b are equal. */
static int prefix_equal(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* 1 if any bit after the first `prefix` of the len-byte address is set. */
static int host_bits_set(const unsigned char *addr, size_t len, unsigned prefix)
{
    for (size_t bit = prefix; bit < len * 8; bit++) {
        if (addr[bit / 8] & (0x80 >> (bit % 8)))
            return 1;
    }
    return 0;
}

/* Copy the address part of s (before any '/', without Postfix-style
 * brackets) into *addr; returns its family or -1. */
static int cidr_address(const char *s, size_t len, struct cidr *out, const char **why)
{
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    char *text = xstrndup(s, len);
    int family = ip_literal(text, out->addr);
    free(text);
    if (!family) {
        *why = "not an IP address";
        return -1;
    }
    return family;
}

int cidr_parse(const char *s, struct cidr *out, const char **why)
{
    struct cidr net;
    memset(&net, 0, sizeof(net));
    const char *slash = strchr(s, '/');
    size_t addr_len = slash ? (size_t)(slash - s) : strlen(s);
    int family = cidr_address(s, addr_len, &net, why);
    if (family < 0)
        return -1;
    unsigned max = family == AF_INET ? 32 : 128;
    uint64_t prefix = max;
    if (slash && parse_uint(slash + 1, 0, max, &prefix, why) < 0) {
        *why = family == AF_INET ? "bad prefix length (must be 0-32)"
                                 : "bad prefix length (must be 0-128)";
        return -1;
    }
    if (host_bits_set(net.addr, max / 8, (unsigned)prefix)) {
        *why = "host bits set beyond the prefix length";
        return -1;
    }
    net.family = family;
    net.prefix = (unsigned)prefix;
    *out = net;
    return 0;
}

static const unsigned char v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int cidr_match(const struct cidr *net, const struct sockaddr *sa)
{
    unsigned char addr[16];
    int family;
    if (sa->sa_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        family = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        memcpy(addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        family = AF_INET6;
    } else {
        return 0;
    }
    /* An IPv4 client seen on an IPv6 socket is ::ffff:a.b.c.d (RFC 4291
     * 2.5.5.2); it matches the IPv4 networks, and a plain IPv4 address
     * matches IPv6 networks written in that mapped form. */
    if (family == AF_INET6 && net->family == AF_INET && memcmp(addr, v4mapped_prefix, 12) == 0) {
        memmove(addr, addr + 12, 4);
        family = AF_INET;
    } else if (family == AF_INET && net->family == AF_INET6) {
        memmove(addr + 12, addr, 4);
        memcpy(addr, v4mapped_prefix, 12);
        family = AF_INET6;
    }
    if (family != net->family)
        return 0;
    return prefix_equal(addr, net->addr, net->prefix);
}
