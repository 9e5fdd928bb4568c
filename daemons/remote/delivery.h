/*
 * delivery — one job of the router (remote_proto.h) from start to results:
 * each next hop in order, resolved through the DNS cache afresh (SPEC D2:
 * the cache applies the TTLs; nothing is kept here between deliveries),
 * its addresses in the order of D1 with the loop rule of D5 (mxorder.h),
 * at most smtp_max_addresses addresses for the whole attempt, one SMTP
 * session (session.h) per address until every recipient is settled. A
 * recipient that no address settles ends with its last outcome: temporary
 * unless that outcome is permanent (a DNS NXDOMAIN or null MX, a SIZE
 * refusal): D4. Each recipient gets one result and one SPEC 8 log line.
 *
 * RP_FLAG_ALL_MX_TEMP (SPEC 5 rule 5) goes on the temporary result of a
 * recipient that was still open when the addresses of an `mx DOMAIN` next
 * hop ran out: every MX host the attempt could try failed for it
 * temporarily. "Could try" includes the cut of smtp_max_addresses: every
 * attempt of the direct path is cut the same way, so hosts past the cut
 * are reached only by another path (the site's gateway), which is what
 * the flag lets the router take. A DNS failure, a loop (D5) or a hop
 * with no address tried sets nothing: no MX host failed.
 *
 * Must never: give a recipient two results, report a failure before the
 * server accepted the session as permanent, or touch the queue's files
 * (the content comes as the job's descriptor).
 */
#ifndef ONEHOP_REMOTE_DELIVERY_H
#define ONEHOP_REMOTE_DELIVERY_H

#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "conf.h"
#include "dnsclient.h"
#include "remote_proto.h"
#include "remote/mxorder.h"

struct delivery;

/* What every delivery shares: the daemon's loop and settings. */
struct remote_env {
    uv_loop_t *loop;
    const struct conf *conf;
    struct dnsclient *dns;
    struct mx_self self;
    struct mx_rng rng;
    struct session *idle; /* connections kept for the next message (D7), newest first */
};

struct rcpt_state {
    int settled;       /* its result is decided */
    enum rp_class cls; /* settled: the result; open: the last resort so far */
    struct buf reply;  /* the reply (or our reason) of its last outcome */
    struct buf relay;  /* host[ip]:port of that outcome, "" = none */
    int in_txn;        /* RCPT accepted in the transaction under way */
    unsigned conn_use; /* sent: the transactions its connection had carried (D7) */
    struct buf tls;    /* sent: the TLS state of its connection ("" = none) */
    int utf8;          /* its address needs SMTPUTF8 (RFC 6531) */
    int all_mx_temp;   /* still open when the addresses of an `mx DOMAIN` hop ran out */
};

/* Called once per delivery when every recipient has its result; the
 * delivery is freed after it returns. */
typedef void delivery_done_cb(void *arg, struct delivery *d);

/* A content this small is read once and kept for the session. */
#define DELIVERY_HOLD_MAX (16 * 1024)

struct delivery {
    struct remote_env *env;
    struct rp_job job;
    int fd;             /* the message, O_RDONLY; closed at the end */
    uint64_t wire_size; /* the content's size with CRLF line ends */
    struct buf held;    /* the whole content, when held_ok (read once, by the scan) */
    int held_ok;        /* the content is at most DELIVERY_HOLD_MAX bytes: in held */
    int utf8_sender;    /* the sender's address needs SMTPUTF8 (RFC 6531) */
    int utf8_header;    /* the header has 8-bit bytes: UTF-8 fields (RFC 6532) */
    struct rcpt_state *rcpt;
    size_t open;               /* recipients not settled */
    size_t hop;                /* next hops done */
    struct mx_target *targets; /* of the current hop */
    size_t ntargets, next_target;
    size_t tried;    /* addresses tried in this attempt */
    uint16_t port;   /* of the current hop */
    int hop_is_mx;   /* the current hop is `mx DOMAIN` (an MX lookup) */
    int aborted;     /* the daemon stops: no result */
    int congested;   /* met a refused connection, a connect timeout or a 421 */
    int retry_clear; /* smtp_tls = may: the handshake failed, try that address in clear */
    int clear_text;  /* the session under way is that retry */
    int delivered;   /* a recipient was sent */
    uint64_t started_us;
    struct dnsclient_req *dreq;
    struct session *session;
    delivery_done_cb *done;
    void *arg;
    /* for the daemon's scheduling lists */
    struct delivery *prev, *next;
    char *dest; /* the destination key: the first next hop */
};

/* A delivery of job j (taken over: zeroed) with content fd (taken over).
 * -1 with *why when the content cannot be read (fd closed, j kept). */
struct delivery *delivery_new(struct remote_env *env, struct rp_job *j, int fd,
                              delivery_done_cb *done, void *arg, const char **why);
void delivery_start(struct delivery *d);
/* The daemon stops: end what is under way; done() runs (from the loop when
 * a session must close first) with no result decided. */
void delivery_abort(struct delivery *d);
/* Results for each recipient, in order (then the caller sends RP_DONE). */
void delivery_results(struct delivery *d, struct buf *records);
void delivery_free(struct delivery *d);

/* For the session: outcomes of recipient i. */
void delivery_settle(struct delivery *d, size_t i, enum rp_class cls, const char *reply,
                     const char *relay);
void delivery_note(struct delivery *d, size_t i, enum rp_class last_resort, const char *reply,
                   const char *relay);
/* The session on the current address ended (the session frees itself). */
void delivery_session_ended(struct delivery *d);

#endif
