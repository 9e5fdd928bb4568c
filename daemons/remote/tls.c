/*
 * tls — STARTTLS for the remote client: the session of common/tls_mem.h
 * with the opportunistic client context (no verification) and SNI. See
 * tls.h.
 */
#include "remote/tls.h"

#include <stdlib.h>

#include "mem.h"
#include "tls_mem.h"

struct tls_conn {
    struct tls_mem *m;
};

static SSL_CTX *client_ctx(void)
{
    static SSL_CTX *ctx; /* one for the process, made on first use */
    if (!ctx)
        ctx = tls_mem_client_ctx();
    return ctx;
}

struct tls_conn *tls_client_new(const char *server_name, const char **why)
{
    struct tls_mem *m = tls_mem_new(client_ctx(), 0, server_name, why);
    if (!m)
        return NULL;
    struct tls_conn *t = xmalloc(sizeof(*t));
    t->m = m;
    return t;
}

void tls_free(struct tls_conn *t)
{
    if (!t)
        return;
    tls_mem_free(t->m);
    free(t);
}

void tls_feed(struct tls_conn *t, const void *p, size_t n)
{
    tls_mem_feed(t->m, p, n);
}

int tls_handshake(struct tls_conn *t, const char **why)
{
    return tls_mem_handshake(t->m, why);
}

int tls_write(struct tls_conn *t, const void *p, size_t n, const char **why)
{
    return tls_mem_write(t->m, p, n, why);
}

int tls_read(struct tls_conn *t, struct buf *plain, const char **why)
{
    return tls_mem_read(t->m, plain, "the server closed the TLS session", why);
}

void tls_take_output(struct tls_conn *t, struct buf *out)
{
    tls_mem_take_output(t->m, out);
}

void tls_describe(const struct tls_conn *t, struct buf *out)
{
    tls_mem_describe(t->m, out);
}
