/*
 * inject_txn — one injection transaction inside onehop-queue: decoding the
 * inject_proto.h request records, validating the envelope (common/addr.h),
 * checking and normalising the content (msgcheck.h), and building the
 * replies. Used by both the one-shot and the server mode.
 *
 * A transaction keeps the stored form of its content in memory, or, once
 * inj_txn_spill() gave it a queue writer of its own, streams it there. The
 * first failure is remembered (status, RFC 3463 code, text) and everything
 * after it is ignored, so that INJ_END can be answered once.
 * Must never: accept an address addr_parse() refuses, let content that
 * failed a check reach a queue file, or trust a length from a record.
 */
#ifndef ONEHOP_INJECT_TXN_H
#define ONEHOP_INJECT_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ipc.h"
#include "msgcheck.h"
#include "queue.h"

/* A decoded request; strings point into the ipc_reader and are valid until
 * ipc_close(). */
struct inj_request {
    uint16_t type;
    uint32_t txn;
    const char *s1, *s2, *s3; /* sender | name,value | address,orcpt,notify */
    const void *data;
    size_t n;
};

/* 0, or -1 with *why for a malformed or unknown record (protocol error).
 * The caller ipc_close()s r afterwards either way. */
int inj_request_decode(struct ipc_reader *r, const void *rec, size_t len, struct inj_request *out,
                       const char **why);

struct inj_txn {
    uint32_t txn;
    int status;           /* INJ_EX_OK until the first failure */
    const char *enhanced; /* of the first failure */
    struct buf why;       /* of the first failure */
    char *sender;         /* NULL until INJ_BEGIN */
    char **rcpt, **orcpt, **notify;
    size_t nrcpt, rcpt_cap;
    size_t nrcpt_asked; /* RCPT requests received, kept or not (the reject line's count) */
    struct queue_attr *attr;
    size_t nattr, attr_cap;
    struct msgcheck check;
    struct buf data;        /* stored content not yet in a writer */
    struct queue_writer *w; /* own writer (one-shot, or spilled), or NULL */
};

void inj_txn_init(struct inj_txn *t, uint32_t txn, uint64_t size_limit);
/* Frees everything; an own writer is aborted (its tmp file removed). */
void inj_txn_free(struct inj_txn *t);
void inj_txn_fail(struct inj_txn *t, int status, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int inj_txn_failed(const struct inj_txn *t);

/* Each applies one request; failures are recorded in t (never returned). */
void inj_txn_sender(struct inj_txn *t, const char *sender);
void inj_txn_attr(struct inj_txn *t, const char *name, const char *value, int allow_uid);
void inj_txn_rcpt(struct inj_txn *t, const char *addr, const char *orcpt, const char *notify);
void inj_txn_data(struct inj_txn *t, const void *p, size_t n);
/* INJ_END: ends the content and checks that there is a recipient. */
void inj_txn_end(struct inj_txn *t);

/* Give t a writer of its own and move its buffered content there; later data
 * streams to it. A failure (disk full...) is recorded as temporary. */
void inj_txn_spill(struct inj_txn *t, struct queue *q);
/* Close the message of t's own writer (one-shot, or spilled) with t's
 * envelope and commit it (queue_writer_commit, which logs its from= line):
 * 0 with its message id in id[QUEUE_ID_LEN + 1], or -1 with errno (nothing
 * queued; the caller records the failure). The writer is gone either way. */
int inj_txn_commit(struct inj_txn *t, char *id);
/* Fill env from t (pointers into t). */
void inj_txn_envelope(const struct inj_txn *t, struct queue_envelope *env);
/* Stored content size. */
uint64_t inj_txn_size(const struct inj_txn *t);

/* Record a failed commit (errno e) as a temporary failure. */
void inj_txn_commit_failed(struct inj_txn *t, int e);

/* Replies (appended to out). */
void inj_reply_ok(struct buf *out, uint32_t txn, const char *id);
void inj_reply_fail(struct buf *out, const struct inj_txn *t);
/* Log the refusal of t: "reject: from=<sender>, nrcpt=N: CODE text", N the
 * recipients asked for. (The "ID: from=" line of a committed message is the
 * queue writer's: queue_writer_commit() logs it at the commit point.) */
void inj_log_reject(const struct inj_txn *t);

#endif
