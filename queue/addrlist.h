/*
 * addrlist — RFC 5322 section 3.4 address lists, as found in the To:, Cc:
 * and Bcc: header fields that `sendmail -t` reads and in sendmail's
 * command-line recipients (each argument is an address list, as sendmail and
 * Postfix treat it).
 *
 *     address-list = (address *("," address)) / obs-addr-list
 *     address      = mailbox / group
 *     mailbox      = name-addr / addr-spec
 *     name-addr    = [display-name] angle-addr
 *     angle-addr   = [CFWS] "<" [obs-route] addr-spec ">" [CFWS]
 *     group        = display-name ":" [group-list] ";" [CFWS]
 *     addr-spec    = local-part "@" domain
 *
 * Comments `(...)` (nested, with quoted-pairs) and folding white space are
 * skipped anywhere between tokens; display names and group names are
 * dropped; obs-route source routes (`<@a,@b:user@dom>`) are dropped; empty
 * list elements (`a@b,,c@d`, RFC 5322 4.4) are skipped; a group may be empty
 * (`undisclosed-recipients:;`). As sendmail does, a mailbox may be a bare
 * local part with no `@domain` (the caller qualifies it).
 *
 * Each mailbox found is appended as its addr-spec text: the local part as
 * written (quoted strings keep their quotes, white space and comments
 * between its words removed) and "@domain" when present. Nothing here
 * validates an address against RFC 5321 limits: the caller passes each one
 * to addr_parse(). Parsing never reads past len; a NUL byte or any control
 * character other than white space is a syntax error.
 */
#ifndef ONEHOP_ADDRLIST_H
#define ONEHOP_ADDRLIST_H

#include <stddef.h>

struct addrlist {
    char **v;
    size_t n, cap;
};

#define ADDRLIST_INIT                                                                              \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Append every mailbox of the address list s[0..len) to out. Returns 0, or
 * -1 with *why a static reason; on failure out keeps what it had before. */
int addrlist_parse(const char *s, size_t len, struct addrlist *out, const char **why);
/* Append a copy of addr to the list. */
void addrlist_add(struct addrlist *l, const char *addr);
void addrlist_free(struct addrlist *l);

#endif
