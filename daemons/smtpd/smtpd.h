/*
 * smtpd — the state onehop-smtpd's parts share: the daemon (configuration,
 * routing, relay policy, the queue client, the TLS context, the sessions)
 * and one session per SMTP client (session.c).
 */
#ifndef ONEHOP_SMTPD_SMTPD_H
#define ONEHOP_SMTPD_SMTPD_H

#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "conf.h"
#include "daemon_link_uv.h"
#include "dnsclient.h"
#include "routing.h"
#include "smtpd/qclient.h"
#include "smtpd/relay.h"

struct session;

struct smtpd {
    uv_loop_t *loop;
    const char *confdir;
    struct conf conf;
    struct routing routing;
    struct relay_policy relay;
    struct qclient *queue;
    struct dnsclient *dns; /* client names (RDNS view of onehop-dnscache) */
    SSL_CTX *tls;          /* STARTTLS (common/tls_mem.h), NULL when not offered */
    uv_tcp_t *listeners;
    size_t nlisteners;
    int listeners_nodelay;    /* every listener has TCP_NODELAY: accepted ones inherit it */
    struct session *sessions; /* every open session */
    size_t nsessions;
    struct daemon_link_uv *link;
    struct daemon_signals signals; /* SIGHUP, SIGTERM, SIGINT */
    int stopping;
};

/* A new client on listener l (session.c). */
void session_accept(struct smtpd *d, uv_stream_t *l);
/* Shutdown: 421 to every session (one waiting for its commit first gets
 * the commit's answer). */
void session_shutdown_all(struct smtpd *d);
/* The queue channel drained: sessions paused by it read again. */
void session_resume_all(struct smtpd *d);
/* Called when the last session is gone during a stop (main.c). */
void smtpd_sessions_gone(struct smtpd *d);

#endif
