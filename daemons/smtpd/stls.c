/*
 * stls — STARTTLS for the server on memory BIOs. See stls.h.
 */
#include "smtpd/stls.h"

#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mem.h"

struct stls_ctx {
    SSL_CTX *ctx;
};

struct stls {
    SSL *ssl;
    BIO *in, *out; /* ciphertext: from the socket, to the socket */
};

static const char *ssl_error(void)
{
    static char text[256];
    unsigned long e = ERR_get_error();
    if (!e)
        return "TLS failure";
    ERR_error_string_n(e, text, sizeof(text));
    return text;
}

struct stls_ctx *stls_ctx_new(const char *cert, const char *key, struct buf *why)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        buf_printf(why, "cannot make a TLS context: %s", ssl_error());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        buf_printf(why, "smtpd_tls_cert %s: %s", cert, ssl_error());
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        buf_printf(why, "smtpd_tls_key %s: %s", key, ssl_error());
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        buf_printf(why, "smtpd_tls_key %s does not match smtpd_tls_cert %s", key, cert);
    } else {
        struct stls_ctx *c = xmalloc(sizeof(*c));
        c->ctx = ctx;
        return c;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

void stls_ctx_free(struct stls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx);
    free(c);
}

struct stls *stls_new(struct stls_ctx *c)
{
    SSL *ssl = SSL_new(c->ctx);
    if (!ssl)
        return NULL;
    struct stls *t = xmalloc(sizeof(*t));
    t->ssl = ssl;
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, t->in, t->out); /* the SSL owns both */
    SSL_set_accept_state(ssl);
    return t;
}

void stls_free(struct stls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

void stls_feed(struct stls *t, const void *p, size_t n)
{
    BIO_write(t->in, p, (int)n);
}

int stls_handshake(struct stls *t, const char **why)
{
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1)
        return 1;
    int err = SSL_get_error(t->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return 0;
    *why = ssl_error();
    return -1;
}

int stls_write(struct stls *t, const void *p, size_t n, const char **why)
{
    if (n && SSL_write(t->ssl, p, (int)n) <= 0) {
        *why = ssl_error();
        return -1;
    }
    return 0;
}

int stls_read(struct stls *t, struct buf *plain, const char **why)
{
    for (;;) {
        buf_reserve(plain, 16384);
        int got = SSL_read(t->ssl, plain->s + plain->len, 16384);
        if (got > 0) {
            plain->len += (size_t)got;
            continue;
        }
        int err = SSL_get_error(t->ssl, got);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            return 0;
        *why = err == SSL_ERROR_ZERO_RETURN ? "the client closed the TLS session" : ssl_error();
        return -1;
    }
}

void stls_take_output(struct stls *t, struct buf *out)
{
    char chunk[16384];
    int got;
    while ((got = BIO_read(t->out, chunk, sizeof(chunk))) > 0)
        buf_add(out, chunk, (size_t)got);
}

void stls_describe(const struct stls *t, struct buf *out)
{
    buf_printf(out, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
}
