/*
 * tls — STARTTLS on memory BIOs. See tls.h.
 */
#include "remote/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mem.h"

struct tls_conn {
    SSL *ssl;
    BIO *in, *out; /* ciphertext: from the socket, to the socket */
};

static SSL_CTX *client_ctx(void)
{
    static SSL_CTX *ctx;
    if (!ctx) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (ctx) {
            SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* may / encrypt: no verification */
        }
    }
    return ctx;
}

static const char *ssl_error(void)
{
    static char text[256];
    unsigned long e = ERR_get_error();
    if (!e)
        return "TLS handshake failed";
    ERR_error_string_n(e, text, sizeof(text));
    ERR_clear_error();
    return text;
}

struct tls_conn *tls_client_new(const char *server_name, const char **why)
{
    SSL_CTX *ctx = client_ctx();
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    if (!ssl) {
        *why = ssl_error();
        return NULL;
    }
    struct tls_conn *t = xcalloc(1, sizeof(*t));
    t->ssl = ssl;
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, t->in, t->out); /* the SSL owns both from now on */
    SSL_set_connect_state(ssl);
    if (server_name && server_name[0])
        SSL_set_tlsext_host_name(ssl, server_name);
    return t;
}

void tls_free(struct tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

void tls_feed(struct tls_conn *t, const void *p, size_t n)
{
    BIO_write(t->in, p, (int)n);
}

int tls_handshake(struct tls_conn *t, const char **why)
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

int tls_write(struct tls_conn *t, const void *p, size_t n, const char **why)
{
    if (n == 0)
        return 0;
    if (SSL_write(t->ssl, p, (int)n) <= 0) {
        *why = ssl_error();
        return -1;
    }
    return 0;
}

int tls_read(struct tls_conn *t, struct buf *plain, const char **why)
{
    for (;;) {
        buf_reserve(plain, 16384);
        int got = SSL_read(t->ssl, plain->s + plain->len, 16384);
        if (got > 0) {
            plain->len += (size_t)got;
            plain->s[plain->len] = '\0';
            continue;
        }
        int err = SSL_get_error(t->ssl, got);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            return 0;
        *why = err == SSL_ERROR_ZERO_RETURN ? "the server closed the TLS session" : ssl_error();
        return -1;
    }
}

void tls_take_output(struct tls_conn *t, struct buf *out)
{
    char chunk[16384];
    int got;
    while ((got = BIO_read(t->out, chunk, sizeof(chunk))) > 0)
        buf_add(out, chunk, (size_t)got);
}

void tls_describe(const struct tls_conn *t, struct buf *out)
{
    buf_printf(out, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
}
