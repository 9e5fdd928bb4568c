/*
 * mailbox — the two mailbox formats onehop-local writes, always with the
 * rights of the process that calls (the delivery child has become the
 * recipient before it gets here: agent.h).
 *
 * Maildir (mailbox ends in '/'; D. J. Bernstein's maildir(5)): dir/tmp,
 * dir/new and dir/cur made (0700) when missing; the message written to
 * tmp/UNIQUE (O_EXCL), fsync'd, renamed to new/UNIQUE and new/ fsync'd
 * before success is reported. UNIQUE = SECONDS.MmicrosecondsPpidQcounter.
 * HOST,S=SIZE (host with '/' and ':' escaped as \057 and \072). A
 * `maildirsize` file (Maildir++ quota: first line "BYTESS,COUNTC") that the
 * message would take over its limit makes the delivery temporary (4.2.2)
 * and leaves nothing behind; a delivered message is added to it.
 *
 * mbox (any other mailbox, and /file targets): a dot-lock (PATH.lock,
 * made with O_EXCL, removed after; one older than 5 minutes is stale; a
 * directory that does not let us make one leaves the fcntl lock alone, as
 * Postfix does) plus an fcntl write lock on the whole file, both waited for
 * up to MBOX_LOCK_WAIT seconds (then temporary); the `From SENDER DATE`
 * line, ">From " quoting, an empty line after the message, fsync. A
 * failure anywhere after the first byte truncates the file back to its old
 * size: no half message is left behind.
 *
 * Must never: follow a symbolic link to the mailbox, append to anything
 * but a regular file with one link (/dev/null is taken as delivered), or
 * report success before the data is on disk.
 */
#ifndef ONEHOP_LOCAL_MAILBOX_H
#define ONEHOP_LOCAL_MAILBOX_H

#include <stdint.h>

#include "buf.h"
#include "local/msgcopy.h"
#include "local/outcome.h"

#define MBOX_LOCK_WAIT 30   /* seconds */
#define MBOX_LOCK_STALE 300 /* seconds: an older dot-lock is removed */

/* prefix: Return-Path: and Delivered-To: lines. */
void maildir_deliver(const char *dir, const struct msgsrc *src, const struct buf *prefix,
                     const char *hostname, struct outcome *o);
/* sender "" is written as MAILER-DAEMON on the From line; relay names the
 * target kind in the outcome ("local:mbox", "local:file"). */
void mbox_deliver(const char *path, const struct msgsrc *src, const struct buf *prefix,
                  const char *sender, const char *relay, struct outcome *o);

/* Maildir++ `maildirsize` (kept by the user's mail reader: untrusted): the
 * limits of its first line ("BYTESS,COUNTC", either may be missing; 0 = no
 * limit) and the sums of the "BYTES COUNT" lines after it (negative for
 * removals). text is NUL-terminated; its line ends are overwritten. */
struct maildir_quota {
    uint64_t max_bytes, max_count;
    int64_t bytes, count;
};
void maildirsize_parse(char *text, struct maildir_quota *q);

#endif
