/*
 * inject_proto — how a front end (sendmail, smtpd) hands messages to
 * onehop-queue, the only writer of new queue files (queue.h).
 *
 * Both modes speak common/ipc.h records (each at most INJ_RECORD_MAX bytes):
 * the front end writes requests on onehop-queue's fd 0 and reads replies on
 * its fd 1 (two pipes, or one socketpair given as both fds).
 *
 * -------------------------------------------------------------- requests ----
 *   INJ_BEGIN  u32 txn, str sender          open transaction txn; sender is
 *                                           the address without <>, "" = null
 *   INJ_ATTR   u32 txn, str name, str value an envelope attribute stored with
 *                                           the message, at most QUEUE_ATTR_MAX;
 *                                           names: client, client_address,
 *                                           helo, protocol, auth, envid, ret,
 *                                           full_name (anything else: 5.5.4)
 *   INJ_RCPT   u32 txn, str address, str orcpt, str notify
 *                                           one recipient (orcpt: RFC 3461
 *                                           ORCPT or ""; notify: "" or e.g.
 *                                           "SUCCESS,FAILURE")
 *   INJ_DATA   u32 txn, bytes chunk         the next 1..INJ_DATA_MAX bytes of
 *                                           the message, raw: lines end in
 *                                           CRLF or bare LF (both accepted,
 *                                           stored as LF), no dot-stuffing
 *   INJ_END    u32 txn                      the message is complete: commit it
 *   INJ_ABORT  u32 txn                      forget it (no reply)
 * ATTR, RCPT and DATA may come in any order between BEGIN and END. Addresses
 * must be fully qualified (local@domain; the front end adds myorigin to bare
 * names) and valid by common/addr.h (UTF-8 allowed).
 *
 * ---------------------------------------------------------------- replies ----
 *   INJ_OK     u32 txn, str id              committed: durable on disk
 *   INJ_FAIL   u32 txn, u32 status, str enhanced, str text
 *                                           nothing was queued; status is an
 *                                           INJ_EX_* code, enhanced an RFC 3463
 *                                           code ("5.3.4", "4.3.1"), text one
 *                                           line for the user / SMTP reply
 * Exactly one reply per INJ_END, never before it: a transaction that broke a
 * limit is remembered as failed, its further records are read and dropped,
 * and INJ_END is answered with INJ_FAIL. An INJ_OK is written only after the
 * message's commit (fsync, rename, directory fsync) returned.
 *
 * Permanent (INJ_EX_DATAERR, 5.x.x), each with its reason in the text:
 *   invalid sender (5.1.7) or recipient (5.1.3) address; no recipient (5.5.1);
 *   more than QUEUE_RCPT_MAX recipients (5.5.3); content larger than
 *   message_size_limit (5.3.4); a NUL byte (5.6.0); a line longer than
 *   INJ_LINE_MAX bytes (5.6.0); more than INJ_HEADERS_MAX header fields
 *   (5.6.0); a bad attribute (5.5.4).
 * Temporary (INJ_EX_TEMPFAIL, 4.x.x): disk full or quota (4.3.1), any other
 *   failure to write or commit (4.3.0). Nothing is left half-written.
 *
 * --------------------------------------------------------- one-shot mode ----
 *   onehop-queue [-C DIR]
 * Exec'd by sendmail once per message. Exactly one transaction (any txn
 * number): BEGIN ... END. After END it commits, writes the reply record on
 * fd 1 (fd 1 must be a pipe or /dev/null, never a terminal), on failure also
 * prints "onehop-queue: TEXT" on stderr, and exits with:
 *   0  INJ_EX_OK        queued (logged: "ID: from=<...>, size=N, nrcpt=N")
 *   64 INJ_EX_USAGE     bad command line
 *   65 INJ_EX_DATAERR   permanent, as listed above: do not retry
 *   70 INJ_EX_SOFTWARE  a protocol violation on fd 0 (a bug in the caller)
 *   75 INJ_EX_TEMPFAIL  temporary: queue unavailable, disk full, config
 *                       unreadable, fd 0 ended before INJ_END: retry later
 * A one-shot run that gets no END within INJ_ONESHOT_TIMEOUT seconds exits 75.
 *
 * ----------------------------------------------------------- server mode ----
 *   onehop-queue [-C DIR] --server
 * A persistent process (one per smtpd): any number of concurrent
 * transactions (at most INJ_TXN_MAX open at once), interleaved freely; txn
 * numbers are chosen by the client and may be reused once answered or
 * aborted. Replies come in commit order, not request order. GROUP COMMIT:
 * every message whose END arrived while a commit was running is committed
 * together in the next one (one file, one fsync, one rename, one directory
 * fsync); large messages are spooled to a file of their own. Clean EOF on
 * fd 0: finish the commit in flight, answer it, exit 0. A protocol violation
 * (malformed record, unknown type, unknown or duplicate txn): logged, the
 * commit in flight is finished and answered, open transactions are dropped
 * (the client sees EOF: each is a temporary failure), exit 70.
 *
 * --------------------------------------------------------------- privilege ----
 * onehop-queue may be installed set-uid to the queue account. It then clears
 * its environment, sets umask 027, ignores its cwd, uses only fds 0, 1, 2
 * (closing the rest; a closed 0/1/2 is replaced by /dev/null) and, when -C or
 * $ONEHOP_CONFIG names anything but the compiled-in configuration directory,
 * drops the set-uid privilege before reading it. In one-shot mode the real
 * uid is stored with the message as attribute "uid" (a client-sent "uid"
 * attribute is refused: 5.5.4).
 */
#ifndef ONEHOP_INJECT_PROTO_H
#define ONEHOP_INJECT_PROTO_H

enum inj_type {
    INJ_BEGIN = 1,
    INJ_ATTR = 2,
    INJ_RCPT = 3,
    INJ_DATA = 4,
    INJ_END = 5,
    INJ_ABORT = 6,
    INJ_OK = 16,
    INJ_FAIL = 17
};

#define INJ_DATA_MAX (64u * 1024) /* bytes in one INJ_DATA chunk */
#define INJ_RECORD_MAX (INJ_DATA_MAX + 4096)
#define INJ_TXN_MAX 1024            /* open transactions (server mode) */
#define INJ_LINE_MAX (1024u * 1024) /* bytes in one content line */
#define INJ_HEADERS_MAX 1000        /* header fields in one message */
#define INJ_ONESHOT_TIMEOUT 3600    /* seconds */

/* Exit status of onehop-queue and the status field of INJ_FAIL (sysexits.h). */
#define INJ_EX_OK 0
#define INJ_EX_USAGE 64
#define INJ_EX_DATAERR 65
#define INJ_EX_SOFTWARE 70
#define INJ_EX_TEMPFAIL 75
#define INJ_EX_NOPERM 77 /* --list: the queue is not readable */

#endif
