/*
 * listen — binding smtp_listen. See listen.h.
 */
#include "master/listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netaddr.h"

#define LISTEN_BACKLOG 1024

static int bind_one(const struct addrinfo *ai, const char *text, struct buf *err)
{
    int one = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        buf_printf(err, "cannot listen on %s: %s", text, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        buf_printf(err, "cannot listen on %s: %s", text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int listen_address(struct master *m, const char *text, struct buf *err)
{
    struct hostport hp;
    const char *why = NULL;
    char port[8];
    if (hostport_parse(text, HP_REQUIRE_PORT | HP_ALLOW_WILDCARD, &hp, &why) < 0) {
        buf_printf(err, "smtp_listen %s: %s", text, why);
        return -1;
    }
    snprintf(port, sizeof(port), "%u", hp.port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    const char *host = strcmp(hp.host, "*") == 0 ? NULL : hp.host;
    int rc = getaddrinfo(host, port, &hints, &res);
    hostport_free(&hp);
    if (rc != 0) {
        buf_printf(err, "cannot listen on %s: %s", text, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next) {
        if (m->nlisten >= MASTER_LISTEN_MAX) {
            buf_printf(err, "smtp_listen: more than %d sockets", MASTER_LISTEN_MAX);
            rc = -1;
        } else if ((m->listen_fds[m->nlisten] = bind_one(ai, text, err)) < 0) {
            rc = -1;
        } else {
            m->nlisten++;
        }
    }
    freeaddrinfo(res);
    return rc;
}

int listen_smtp(struct master *m, struct buf *err)
{
    for (size_t i = 0; i < m->conf.smtp_listen.n; i++)
        if (listen_address(m, m->conf.smtp_listen.v[i], err) < 0)
            return -1;
    return 0;
}
