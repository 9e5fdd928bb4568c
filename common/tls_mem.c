/*
 * tls_mem — a TLS session on memory BIOs, and the two contexts onehop
 * uses. See tls_mem.h.
 */
#include "tls_mem.h"

#include <stdlib.h>

#include <openssl/err.h>

#include "mem.h"

struct tls_mem {
    SSL *ssl;
    BIO *in, *out; /* ciphertext: from the socket, to the socket */
};

/* OpenSSL's oldest queued reason, the queue then emptied. */
static const char *ssl_error(const char *fallback)
{
    static char text[256];
    unsigned long e = ERR_get_error();
    if (!e)
        return fallback;
    ERR_error_string_n(e, text, sizeof(text));
    ERR_clear_error();
    return text;
}

SSL_CTX *tls_mem_server_ctx(const char *cert_name, const char *cert, const char *key_name,
                            const char *key, struct buf *why)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        buf_printf(why, "cannot make a TLS context: %s", ssl_error("TLS failure"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        buf_printf(why, "%s %s: %s", cert_name, cert, ssl_error("TLS failure"));
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        buf_printf(why, "%s %s: %s", key_name, key, ssl_error("TLS failure"));
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        buf_printf(why, "%s %s does not match %s %s", key_name, key, cert_name, cert);
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tls_mem_client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx) {
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* may / encrypt: no verification */
    }
    return ctx;
}

struct tls_mem *tls_mem_new(SSL_CTX *ctx, int server, const char *server_name, const char **why)
{
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    if (!ssl) {
        *why = ssl_error("cannot make a TLS session");
        return NULL;
    }
    struct tls_mem *t = xcalloc(1, sizeof(*t));
    t->ssl = ssl;
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, t->in, t->out); /* the SSL owns both from now on */
    if (server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
        if (server_name && server_name[0])
            SSL_set_tlsext_host_name(ssl, server_name);
    }
    return t;
}

void tls_mem_free(struct tls_mem *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

void tls_mem_feed(struct tls_mem *t, const void *p, size_t n)
{
    BIO_write(t->in, p, (int)n);
}

int tls_mem_handshake(struct tls_mem *t, const char **why)
{
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1)
        return 1;
    int err = SSL_get_error(t->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return 0;
    *why = ssl_error("TLS handshake failed");
    return -1;
}

int tls_mem_write(struct tls_mem *t, const void *p, size_t n, const char **why)
{
    if (n && SSL_write(t->ssl, p, (int)n) <= 0) {
        *why = ssl_error("TLS write failed");
        return -1;
    }
    return 0;
}

int tls_mem_read(struct tls_mem *t, struct buf *plain, const char *closed_text, const char **why)
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
        *why = err == SSL_ERROR_ZERO_RETURN ? closed_text : ssl_error("TLS read failed");
        return -1;
    }
}

void tls_mem_take_output(struct tls_mem *t, struct buf *out)
{
    char chunk[16384];
    int got;
    while ((got = BIO_read(t->out, chunk, sizeof(chunk))) > 0)
        buf_add(out, chunk, (size_t)got);
}

void tls_mem_describe(const struct tls_mem *t, struct buf *out)
{
    buf_printf(out, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
}
