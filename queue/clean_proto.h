/*
 * clean_proto — how the router (the state side) asks the cleaner to change
 * the message tree (ARCHITECTURE "Who owns what"; docs/INTERNALS.md
 * "Ownership and the cleaner"). The cleaner is `onehop-queue --clean`,
 * running as the queue account, the only account that may rename, punch or
 * unlink message files (qmail-clean's role).
 *
 * common/ipc.h records, each at most CLEAN_RECORD_MAX bytes: requests on the
 * cleaner's fd 0; replies on fd 0 too when it is a socket (the master's
 * socketpair), else on fd 1 (two pipes). Exactly ONE reply per request, IN
 * REQUEST ORDER, written only after the change is done (or known to be
 * already done).
 *
 * -------------------------------------------------------------- requests ----
 *   CLEAN_RECOVER                   writer-side recovery of the message tree
 *                                   (tmp/ files and slots of dead writers,
 *                                   strays, missing buckets:
 *                                   queue_recover_writer); the cleaner also
 *                                   runs it at its start, before READY
 *   CLEAN_TAKE        str fid       rename incoming/HH/FID to active/HH/FID
 *                                   (no fsync: a rename lost in a crash is
 *                                   simply taken again)
 *   CLEAN_RECLAIM     str msgid     punch a hole over that message's content
 *                                   (fallocate PUNCH_HOLE|KEEP_SIZE), the
 *                                   range read from the file's own envelope;
 *                                   an edge block shared with neighbours
 *                                   already reclaimed is freed whole (cleaner.c)
 *   CLEAN_REMOVE      str fid       unlink the file from active/ or incoming/
 *   CLEAN_QUARANTINE  str fid, str why
 *                                   move the file (from incoming/ or active/)
 *                                   to corrupt/, logged with why
 * fid is a file id, msgid a message id (queue.h "ids"): the cleaner checks
 * the alphabet and length before anything else, so no '/' or '.' ever
 * reaches a path; it opens with O_NOFOLLOW|O_NONBLOCK and acts on regular
 * files only, and changes nothing a request did not name.
 *
 * ---------------------------------------------------------------- replies ----
 *   CLEAN_OK   u32 changed, u64 bytes, str text
 *              changed: 1 if this request changed the tree, 0 if it was
 *              already so (a request repeated after a crash: the file is
 *              already taken / gone / quarantined, the range already
 *              punched); bytes: RECLAIM, the bytes of the punched range
 *              (0 otherwise); text: what was done, for the router's log
 *              (RECOVER: the counts, "tmp_removed=N ... slots_freed=N")
 *   CLEAN_ERR  u32 errno, str text
 *              nothing was changed by this request; errno as errno.h on
 *              Linux (EINVAL: not an id, ENOENT: RECLAIM of a message its
 *              file does not have, EBADMSG: not a regular file or not a
 *              queue file, ELOOP: a symbolic link,
 *              EOPNOTSUPP: the file system cannot punch holes, or an I/O
 *              errno), text one line
 * Every request is idempotent: the router records the need of a request in
 * its journal before sending it and sends it again after a crash of either
 * side; the repeated request answers CLEAN_OK with changed 0.
 *
 *   TAKE         already in active/: OK 0 ("already taken"); in neither
 *                place: OK 0 ("already gone": a TAKE replayed after the
 *                file's REMOVE or QUARANTINE went through)
 *   RECLAIM      file gone: OK 0 ("already gone"); content already all
 *                zero (punched): OK 0; the file is never shortened, and no
 *                byte of the header, the envelope or a message not
 *                reclaimed changes. A format 2 group file answers ERR
 *                EOPNOTSUPP (its body CRC covers every message: its space
 *                comes back when it is removed). A punched message reads as
 *                zeros, which content never holds (no NUL bytes): readers
 *                of a message the router still hands out never meet one
 *   REMOVE       in neither place: OK 0 ("already gone")
 *   QUARANTINE   in neither place: OK 0 (already moved, or gone)
 *
 * -------------------------------------------------------------- the process ----
 *   onehop-queue [-C DIR] --clean
 * Runs as the queue account (started by the master; never set-uid: a
 * set-uid run refuses with exit 64). A malformed record (framing, unknown
 * type, wrong fields, a descriptor sent along: the channel carries none)
 * is a protocol violation: logged, exit 70. End of
 * input: exit 0. Queue unavailable: exit 75. Each change is logged at info
 * level as the cleaner's own line ("FID: taken", "ID: content reclaimed, N
 * bytes", "FID: unlinked", "FID: quarantined: WHY"); the router logs
 * "ID: removed" (SPEC 8) itself.
 */
#ifndef ONEHOP_CLEAN_PROTO_H
#define ONEHOP_CLEAN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ipc.h"

enum clean_type {
    CLEAN_RECOVER = 32,
    CLEAN_TAKE = 33,
    CLEAN_RECLAIM = 34,
    CLEAN_REMOVE = 35,
    CLEAN_QUARANTINE = 36,
    CLEAN_OK = 48,
    CLEAN_ERR = 49
};

#define CLEAN_RECORD_MAX 4096u /* any request or reply */
#define CLEAN_WHY_MAX 1000u    /* QUARANTINE's why, a reply's text */

/* ----------------------------------------------- codec (clean_proto.c) ---- */
/* One request: id is a fid or msgid ("" for RECOVER), why "" unless
 * QUARANTINE; both point into the reader (valid until ipc_close). */
struct clean_request {
    enum clean_type type;
    const char *id;
    const char *why;
};
struct clean_reply {
    int ok;           /* CLEAN_OK: 1, CLEAN_ERR: 0 */
    uint32_t changed; /* OK */
    uint64_t bytes;   /* OK */
    uint32_t err;     /* ERR: the errno */
    const char *text; /* points into the reader */
};

/* Append one request record to out (id: NULL for RECOVER; why: QUARANTINE
 * only, cut to CLEAN_WHY_MAX bytes). */
void clean_request_encode(struct buf *out, enum clean_type type, const char *id, const char *why);
/* Decode one whole record (as framed by ipc_frame / chan_recv_record). Checks the
 * type and the fields only, not the id's form (the cleaner answers a bad
 * id with CLEAN_ERR EINVAL). 0, or -1 with *why: a protocol violation. The
 * caller ipc_close()s r either way. */
int clean_request_decode(struct ipc_reader *r, const void *rec, size_t len,
                         struct clean_request *rq, const char **why);
/* Append a reply record to out (text cut to CLEAN_WHY_MAX bytes). */
void clean_reply_ok(struct buf *out, int changed, uint64_t bytes, const char *text);
void clean_reply_err(struct buf *out, int err, const char *text);
/* Decode a reply record; as clean_request_decode. */
int clean_reply_decode(struct ipc_reader *r, const void *rec, size_t len, struct clean_reply *rp,
                       const char **why);

#endif
