/*
 * memo — what the router remembers in memory only, per queued recipient
 * (message id and recipient index), between two attempts of it:
 *   - the alias targets of that envelope recipient already done (delivered,
 *     or bounced with their DSN queued), so that a retry after a temporary
 *     failure of one target does not deliver the others again;
 *   - that its last direct delivery failed temporarily at every MX host
 *     (RP_FLAG_ALL_MX_TEMP), so that the next attempt may take the site
 *     path (SPEC 5 rule 5).
 *
 * Contract: nothing here is durable. After a router restart the memo is
 * empty: the targets of an expanded alias may be delivered again (at least
 * once, never lost) and a direct delivery is tried first again. Entries are
 * forgotten when the envelope recipient is final (memo_forget). Keys are
 * hashed with SipHash and a random key (targets come from the aliases file
 * and addresses from outside). Must never: be the reason a recipient is
 * considered final (the state journal is).
 */
#ifndef ONEHOP_ROUTER_MEMO_H
#define ONEHOP_ROUTER_MEMO_H

#include <stddef.h>
#include <stdint.h>

enum memo_outcome { MEMO_NONE = 0, MEMO_DELIVERED = 1, MEMO_BOUNCED = 2 };

struct memo;

struct memo *memo_new(void);
void memo_free(struct memo *mm);
/* The outcome remembered for target of (id, rcpt), MEMO_NONE if none. */
enum memo_outcome memo_target(const struct memo *mm, const char *id, uint32_t rcpt,
                              const char *target);
void memo_set_target(struct memo *mm, const char *id, uint32_t rcpt, const char *target,
                     enum memo_outcome o);
/* SPEC 5 rule 5: the last direct attempt of (id, rcpt) failed at every MX. */
int memo_all_mx_temp(const struct memo *mm, const char *id, uint32_t rcpt);
void memo_set_all_mx_temp(struct memo *mm, const char *id, uint32_t rcpt, int on);
/* (id, rcpt) is final: everything remembered of it goes. */
void memo_forget(struct memo *mm, const char *id, uint32_t rcpt);
/* Recipients with an entry (tests, logs). */
size_t memo_count(const struct memo *mm);

#endif
