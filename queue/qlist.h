/*
 * qlist — what the queue inspection commands print (SPEC section 1):
 * `onehop queue`, `mailq` and `sendmail -bp` (one listing, the same bytes),
 * `onehop queue show ID` and `onehop qstat`, each as text or as JSON.
 *
 * The text listing is Postfix's mailq layout, widened for onehop's 18-byte
 * ids (queue.h):
 *
 *   -Queue ID-          --Size-- ----Arrival Time---- -Sender/Recipient-------
 *   0PKX3B2Q7ZM012KG00*      412 Sun Nov 22 09:57:16  alice@a.test
 *                                                     bob@b.test
 *                     (connect to mx.c.test[127.0.0.3]:2526: Connection refused)
 *                                                     carol@c.test
 *
 *   -- 1 Kbytes in 1 Request.
 *
 * The id carries `*` when the message is active and `!` when it is held.
 * As in Postfix, only recipients still pending are listed, each after a
 * `(reason)` line whenever its last reason differs from the one above, the
 * null sender shows as MAILER-DAEMON, and an empty queue prints
 * "Mail queue is empty". Arrival times are local time.
 *
 * JSON (one object, no trailing newline missing):
 *   queue: {"messages": [{"id", "state", "size", "arrival", "sender",
 *           "recipients": [{"address", "state", "reason"}]}]}
 *   show:  the same message object plus "attributes", "headers" ([{"name",
 *          "value"}]), "attempts", "next_attempt", "route", and per
 *          recipient "attempts", "last_attempt", "next_attempt", "orcpt",
 *          "notify", "route"
 *   qstat: {"total", "incoming", "active", "deferred", "hold", "corrupt",
 *           "oldest_age"}
 * Times are unix seconds (null when there is none); sizes are bytes of the
 * stored message; a recipient's state is "pending" (not tried yet),
 * "deferred" (tried, waiting), "delivered", "bounced", or "queued" (state
 * unreadable, above); a message's "incoming", "active", "deferred", "hold"
 * or "queued".
 *
 * Recipient states, reasons, attempts, next tries and routes come from the
 * router's state side (queue/state.h, read-only, no lock: safe beside a
 * running router); a file no router has learned yet is listed as its file
 * says (incoming or active, recipients pending). When state/ cannot be read
 * (the set-uid onehop-queue --list runs as the queue account, which may not
 * enter state/), every message and recipient is listed as "queued", with
 * no reason lines, and qstat counts messages by the place of their file. Text output replaces
 * control characters from the queue (remote servers' replies) with "?", so nothing read from a
 * queue file can drive the terminal.
 */
#ifndef ONEHOP_QLIST_H
#define ONEHOP_QLIST_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "buf.h"
#include "queue.h"

enum { QLIST_JSON = 1 };

/* Open queue_dir for reading. A queue directory that does not exist yet is
 * an empty queue: returns 0 with *q NULL. -1 with *why on any other error. */
int qlist_open(const char *queue_dir, struct queue **q, const char **why);

/* The listing of every unfinished message. q may be NULL (empty queue).
 * Returns 0, or -1 with errno (a write or scan error). */
int qlist_print_queue(struct queue *q, unsigned flags, FILE *out);
/* The same, only the messages the filter selects (SPEC 1 `onehop queue`):
 * domain: a pending recipient's domain (case-insensitive); sender: the
 * envelope sender (case-insensitive, "" the null sender); older_than:
 * arrived at least that many seconds before now. NULL members select all. */
struct qlist_filter {
    const char *domain, *sender;
    uint64_t older_than;
    time_t now;
};
int qlist_print_selected(struct queue *q, unsigned flags, const struct qlist_filter *filter,
                         FILE *out);
/* One message by id: 0, or -1 with errno (ENOENT: no such message). */
int qlist_print_message(struct queue *q, const char *id, unsigned flags, FILE *out);
/* The counts of `onehop qstat`, the oldest message's age against now. */
int qlist_print_counts(struct queue *q, unsigned flags, time_t now, FILE *out);

/* The state word of a recipient as listed ("pending", "deferred", ...). */
const char *qlist_rcpt_state(const struct queue_rcpt *r);
/* Append s with every control character replaced by "?" (text output). */
void qlist_add_printable(struct buf *out, const char *s);

#endif
