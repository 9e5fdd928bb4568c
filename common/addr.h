/*
 * addr — RFC 5321 mailbox addresses (section 4.1.2 "Mailbox", 4.1.3 address
 * literals, 4.5.3.1 size limits).
 *
 *     Mailbox     = Local-part "@" ( Domain / address-literal )
 *     Local-part  = Dot-string / Quoted-string
 *     address-literal = "[" ( IPv4 / "IPv6:" IPv6 / tag ":" content ) "]"
 *
 * Limits: local part 64 octets, domain 255 octets, a path (with <>) 256.
 * The null reverse-path `<>` is accepted only when ADDR_ALLOW_NULL is given.
 * A path form `<@a,@b:user@dom>` has its source route dropped (RFC 5321 C).
 *
 * Parsing never reads past `len` and never trusts a NUL inside the input (a
 * NUL byte is a syntax error). Nothing here looks anything up.
 */
#ifndef ONEHOP_ADDR_H
#define ONEHOP_ADDR_H

#include <stddef.h>

#include "buf.h"

#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_PATH_MAX 256

enum {
    ADDR_PATH = 1,        /* input is a path: "<...>" required (SMTP MAIL/RCPT) */
    ADDR_ALLOW_NULL = 2,  /* "<>" (or "" without ADDR_PATH) is the null sender */
    ADDR_ALLOW_BARE = 4,  /* a local part with no "@domain" (sendmail recipients) */
    ADDR_ALLOW_UTF8 = 8   /* RFC 6531: UTF-8 in local part and domain */
};

struct mailaddr {
    char *local;  /* as written (a quoted local part keeps its quotes); "" for null */
    char *domain; /* lower-cased; NULL for the null sender or a bare local part */
    int is_null;
    int is_literal; /* domain is an address literal "[...]" */
};

/* Returns 0 and fills *out, or -1 with *why a static reason ("local part
 * longer than 64 octets", ...). out is untouched on failure. */
int addr_parse(const char *s, size_t len, unsigned flags, struct mailaddr *out, const char **why);
void addr_free(struct mailaddr *a);
/* Append "local@domain" ("" for the null sender) to out. */
void addr_format(const struct mailaddr *a, struct buf *out);
/* 1 if s[0..len) is a valid domain (RFC 1123 host name or address literal). */
int addr_domain_valid(const char *s, size_t len);
/* Local part without quotes and quoted-pair escapes (for mailbox lookups). */
void addr_local_unquoted(const struct mailaddr *a, struct buf *out);

#endif
