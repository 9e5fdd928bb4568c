/*
 * tls — the client side of STARTTLS (RFC 3207) for a session, with OpenSSL
 * on memory BIOs so that the libuv loop does all socket I/O: ciphertext
 * received is fed in, ciphertext to send is taken out, plaintext goes
 * through tls_write / tls_read.
 *
 * Policy (SPEC smtp_tls): opportunistic encryption as Postfix's `may` and
 * `encrypt` levels do it: the peer's certificate is not verified (a
 * self-signed certificate is fine), the connection is encrypted. SNI names
 * the MX host.
 *
 * Must never: block, or hand out plaintext before the handshake completed.
 */
#ifndef ONEHOP_REMOTE_TLS_H
#define ONEHOP_REMOTE_TLS_H

#include <stddef.h>

#include "buf.h"

struct tls_conn;

/* NULL with *why when OpenSSL refuses (out of memory). */
struct tls_conn *tls_client_new(const char *server_name, const char **why);
void tls_free(struct tls_conn *t);
/* Ciphertext from the socket. */
void tls_feed(struct tls_conn *t, const void *p, size_t n);
/* Drive the handshake: 1 done, 0 more bytes needed, -1 failed (*why). */
int tls_handshake(struct tls_conn *t, const char **why);
/* Encrypt p[0..n); 0, or -1 with *why. */
int tls_write(struct tls_conn *t, const void *p, size_t n, const char **why);
/* Decrypted bytes appended to plain; 0 (maybe none), -1 with *why (the
 * peer closed the TLS session or broke it). */
int tls_read(struct tls_conn *t, struct buf *plain, const char **why);
/* Ciphertext waiting to be written, moved to out (appended). */
void tls_take_output(struct tls_conn *t, struct buf *out);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
void tls_describe(const struct tls_conn *t, struct buf *out);

#endif
