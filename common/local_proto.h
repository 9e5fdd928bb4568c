/*
 * local_proto — the records the router and onehop-local exchange on their
 * channel (channel.h; ipc.h records). One channel, both directions; the
 * master names the ends ONEHOP_CHANNEL_LOCAL in both daemons.
 *
 *   router -> local
 *     LP_JOB     u64 job, str queue id, u64 offset, u64 length, u64 arrival (us since the
 *                epoch, 0: unknown), str sender ("" = the null sender), u32 nrcpt, then
 *                nrcpt times:
 *                  str recipient  the final recipient as routing.h decided it: an address
 *                                 of a local domain ("alice+ext@host.test"), a command
 *                                 ("|/usr/bin/procmail -a x") or a file ("/var/log/mail")
 *                  str original   the envelope recipient it came from, as queued (the
 *                                 address an alias expanded; equal to recipient when no
 *                                 alias was involved)
 *                  str orcpt      RFC 3461 ORCPT, "" = none
 *                  u32 notify     RP_NOTIFY_* of remote_proto.h
 *                  u32 origin     LP_FROM_*: where a command or file target came from,
 *                                 which decides whose rights it runs with
 *                Exactly one descriptor travels with the record: the message file,
 *                O_RDONLY; the content is its bytes [offset, offset + length), stored
 *                with LF line ends (queue.h).
 *   local -> router
 *     RP_RESULT and RP_DONE exactly as remote_proto.h defines them (same type
 *     numbers, same codec: rp_put_result/rp_get_result, rp_put_done/rp_get_done).
 *     relay is "local" (or "local:maildir", "local:mbox", "local:command",
 *     "local:file" when known); tls is "none"; delay as for remote.
 *
 * Every recipient of a job gets exactly one RP_RESULT before its RP_DONE. A
 * recipient forwarded by a ~/.forward to addresses is re-injected by
 * onehop-local as a new message (through onehop-queue, with the original
 * sender) and reported RP_OK with reply "2.0.0 forwarded as ID".
 * Limits: at most LP_RCPT_MAX recipients a job; strings at most RP_ADDR_MAX
 * (recipient, original, orcpt, sender) or RP_TEXT_MAX (queue id). A record
 * that breaks any of this is refused by the decoder, never guessed at.
 *
 * Must never: accept a job without its descriptor, a job that names no
 * recipient, or a recipient that is neither an address nor starts with '|'
 * or '/'.
 */
#ifndef ONEHOP_LOCAL_PROTO_H
#define ONEHOP_LOCAL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "remote_proto.h"

#define LP_CHANNEL_ENV "ONEHOP_CHANNEL_LOCAL"
#define LP_RCPT_MAX RP_RCPT_MAX
#define LP_RECORD_MAX RP_RECORD_MAX

enum lp_record { LP_JOB = 4 }; /* results: RP_RESULT (2), RP_DONE (3) */

enum lp_origin {
    LP_FROM_ADDRESS = 0, /* a plain local address: delivered as that user */
    LP_FROM_ALIASES = 1, /* a |command or /file target of the aliases file (or an :include:) */
};

struct lp_rcpt {
    char *recipient;
    char *original;
    char *orcpt;
    uint32_t notify;
    uint32_t origin;
};

struct lp_job {
    uint64_t job;
    char *queue_id;
    uint64_t offset, length, arrival_us;
    char *sender;
    struct lp_rcpt *rcpt;
    size_t nrcpt;
};

void lp_put_job(struct buf *out, const struct lp_job *j);
/* Decode one whole LP_JOB record. 0, or -1 with *why. The job is allocated
 * (free it with lp_job_free, also after a failure). */
int lp_get_job(const void *rec, size_t len, struct lp_job *j, const char **why);
void lp_job_free(struct lp_job *j);

#endif
