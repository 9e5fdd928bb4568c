/*
 * tls_mem — one TLS session on OpenSSL memory BIOs, so that a libuv loop
 * does all socket I/O itself: ciphertext received is fed in
 * (tls_mem_feed), ciphertext to send is taken out (tls_mem_take_output),
 * plaintext goes through tls_mem_write and tls_mem_read. The STARTTLS
 * (RFC 3207) sessions of onehop-smtpd (server side, daemons/smtpd/session.c)
 * and onehop-remote (client side, daemons/remote/tls.h) are both this; each
 * keeps its own policy (which context, certificate, verification, SNI).
 *
 * Contexts: tls_mem_server_ctx() (TLS 1.2 or later, a certificate chain
 * and its key, checked to match) and tls_mem_client_ctx() (TLS 1.2 or
 * later, the peer not verified: opportunistic, as Postfix's `may` and
 * `encrypt`).
 *
 * Must never: block, hand out plaintext before the handshake completed, or
 * leave an OpenSSL error queued for the next caller to misread.
 */
#ifndef ONEHOP_TLS_MEM_H
#define ONEHOP_TLS_MEM_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "buf.h"

struct tls_mem;

/* NULL with the reason in *why: "CERTNAME FILE: ..." for an unreadable
 * chain, "KEYNAME FILE: ..." for an unreadable key, or the mismatch. The
 * names are the settings' (smtpd_tls_cert, smtpd_tls_key) for messages. */
SSL_CTX *tls_mem_server_ctx(const char *cert_name, const char *cert, const char *key_name,
                            const char *key, struct buf *why);
/* NULL when OpenSSL cannot make one (out of memory). */
SSL_CTX *tls_mem_client_ctx(void);

/* A session of ctx: server (accept) or client (connect, SNI server_name
 * when not NULL or empty). NULL with *why when OpenSSL refuses. */
struct tls_mem *tls_mem_new(SSL_CTX *ctx, int server, const char *server_name, const char **why);
void tls_mem_free(struct tls_mem *t);
/* Ciphertext from the socket. */
void tls_mem_feed(struct tls_mem *t, const void *p, size_t n);
/* Drive the handshake: 1 done, 0 more bytes needed, -1 failed (*why). */
int tls_mem_handshake(struct tls_mem *t, const char **why);
/* Encrypt p[0..n); 0, or -1 with *why. */
int tls_mem_write(struct tls_mem *t, const void *p, size_t n, const char **why);
/* Decrypted bytes appended to plain (NUL-terminated after them): 0 (maybe
 * none), or -1 with *why: closed_text when the peer closed the TLS
 * session, else OpenSSL's reason. */
int tls_mem_read(struct tls_mem *t, struct buf *plain, const char *closed_text, const char **why);
/* Ciphertext waiting to be written, moved to out (appended). */
void tls_mem_take_output(struct tls_mem *t, struct buf *out);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
void tls_mem_describe(const struct tls_mem *t, struct buf *out);

#endif
