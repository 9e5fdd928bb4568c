/*
 * remote_proto — the records the router and onehop-remote exchange on their
 * channel (channel.h; ipc.h records). One channel, both directions:
 *
 *   router -> remote
 *     RP_JOB     u64 job, str queue id, u64 offset, u64 length, u64 arrival (us since the
 *                epoch, 0: unknown), str sender ("" = the null sender), u32 nrcpt, then
 *                nrcpt times: str address, str orcpt ("" = none), u32 notify (RP_NOTIFY_*);
 *                u32 nhops, then nhops times: str next hop (nexthop.h text: `host` or
 *                `host:port` = MX lookup, `[host]`/`[host]:port` = A/AAAA only,
 *                `[ip]:port` = no DNS). Exactly one descriptor travels with the
 *                record: the message file, O_RDONLY; the content is its bytes
 *                [offset, offset + length), stored with LF line ends (queue.h): CRLF
 *                and dot-stuffing are the remote's, on the wire.
 *   remote -> router
 *     RP_RESULT  u64 job, u32 recipient index, u32 class (RP_OK, RP_TEMP, RP_PERM),
 *                str reply (the server's reply, or our own text for what never
 *                reached a server), str relay (`host[ip]:port`, or "none"), u64 delay
 *                (ms since arrival), str tls ("none", or "TLSv1.3 CIPHER"), u32 flags
 *                (RP_FLAG_*: facts about the attempt the router's scheduling needs)
 *     RP_DONE    u64 job, u32 results sent for it; after it the job id is free again
 *
 * Every recipient of a job gets exactly one RP_RESULT before its RP_DONE.
 * Limits: at most RP_RCPT_MAX recipients (SPEC D7) and RP_HOPS_MAX next hops
 * a job; strings as below. A record that breaks any of this is refused by
 * the decoder (ipc.h: the channel closes), never guessed at.
 *
 * Must never: accept a job without its descriptor, or a decoded job that
 * names no recipient or no next hop.
 */
#ifndef ONEHOP_REMOTE_PROTO_H
#define ONEHOP_REMOTE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define RP_CHANNEL_ENV "ONEHOP_CHANNEL_REMOTE" /* the master's name for the remote's end */
#define RP_RCPT_MAX 50
#define RP_HOPS_MAX 16
#define RP_ADDR_MAX 1024 /* an address or ORCPT */
#define RP_TEXT_MAX 4096 /* a reply, a relay, a TLS state, a next hop, a queue id */
#define RP_RECORD_MAX (256u * 1024)

enum rp_record { RP_JOB = 1, RP_RESULT = 2, RP_DONE = 3 };

enum rp_class { RP_OK = 0, RP_TEMP = 1, RP_PERM = 2 };

/* RP_RESULT flags. ALL_MX_TEMP: a temporary result after every MX host of
 * an `mx DOMAIN` next hop was tried and failed temporarily (SPEC 5 rule 5:
 * the router may take the site path next). */
enum { RP_FLAG_ALL_MX_TEMP = 1 };
#define RP_FLAGS_KNOWN RP_FLAG_ALL_MX_TEMP

/* RFC 3461 NOTIFY; 0 = not given */
enum { RP_NOTIFY_NEVER = 1, RP_NOTIFY_SUCCESS = 2, RP_NOTIFY_FAILURE = 4, RP_NOTIFY_DELAY = 8 };

struct rp_rcpt {
    char *address;
    char *orcpt;
    uint32_t notify;
};

struct rp_job {
    uint64_t job;
    char *queue_id;
    uint64_t offset, length, arrival_us;
    char *sender;
    struct rp_rcpt *rcpt;
    size_t nrcpt;
    char **hops;
    size_t nhops;
};

struct rp_result {
    uint64_t job;
    uint32_t index;
    enum rp_class cls;
    const char *reply, *relay, *tls;
    uint64_t delay_ms;
    uint32_t flags; /* RP_FLAG_* */
};

const char *rp_class_name(enum rp_class c); /* "ok", "temporary", "permanent" */

/* Append one record to out. */
void rp_put_job(struct buf *out, const struct rp_job *j);
void rp_put_result(struct buf *out, const struct rp_result *r);
void rp_put_done(struct buf *out, uint64_t job, uint32_t nresults);

/* The record type of rec[0..len), or 0 when its header is unreadable. */
uint16_t rp_record_type(const void *rec, size_t len);
/* Decode one whole record. 0, or -1 with *why. A job is allocated (free it
 * with rp_job_free); a result's strings point into text (the caller's,
 * replaced). */
int rp_get_job(const void *rec, size_t len, struct rp_job *j, const char **why);
void rp_job_free(struct rp_job *j);
int rp_get_result(const void *rec, size_t len, struct rp_result *r, struct buf *text,
                  const char **why);
int rp_get_done(const void *rec, size_t len, uint64_t *job, uint32_t *nresults, const char **why);

#endif
