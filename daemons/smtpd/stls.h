/*
 * stls — the server side of STARTTLS (RFC 3207) for a session: OpenSSL on
 * memory BIOs, so the libuv loop does all socket I/O (ciphertext in with
 * stls_feed, out with stls_take_output; plaintext through stls_read and
 * stls_write). The certificate and key are smtpd_tls_cert and
 * smtpd_tls_key, loaded once at start (and at reload); TLS 1.2 or later.
 *
 * Must never: block, or hand out plaintext before the handshake completed.
 */
#ifndef ONEHOP_SMTPD_STLS_H
#define ONEHOP_SMTPD_STLS_H

#include <stddef.h>

#include "buf.h"

struct stls_ctx;
struct stls;

/* NULL with the reason in *why (unreadable file, key not matching). */
struct stls_ctx *stls_ctx_new(const char *cert, const char *key, struct buf *why);
void stls_ctx_free(struct stls_ctx *c);

struct stls *stls_new(struct stls_ctx *c);
void stls_free(struct stls *t);
void stls_feed(struct stls *t, const void *p, size_t n);
/* 1 done, 0 more bytes needed, -1 failed (*why). */
int stls_handshake(struct stls *t, const char **why);
int stls_write(struct stls *t, const void *p, size_t n, const char **why);
/* Decrypted bytes appended to plain: 0, or -1 (closed or broken, *why). */
int stls_read(struct stls *t, struct buf *plain, const char **why);
void stls_take_output(struct stls *t, struct buf *out);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
void stls_describe(const struct stls *t, struct buf *out);

#endif
