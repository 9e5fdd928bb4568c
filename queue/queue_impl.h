/*
 * queue_impl — what the queue library's own files share and nobody else may
 * use: the open-queue structure, the on-disk encoding helpers, and the file
 * locking steps of queue.h's LOCKING RULE. The contract is queue.h.
 */
#ifndef ONEHOP_QUEUE_IMPL_H
#define ONEHOP_QUEUE_IMPL_H

#include <stdint.h>

#include "buf.h"
#include "queue.h"

#define QF_VERSION 3           /* written (queue.h "file format") */
#define QF_MAGIC "OHQUEUE3"    /* written: the file id at offset 40, per-message CRCs */
#define QF_MAGIC_V2 "OHQUEUE2" /* still read: body CRC, state log after the commit */
#define QF_MAGIC_V1 "OHQUEUE1" /* still read: offset 36 is zero, no body CRC */
#define QF_HEADER_SIZE 64
#define QF_LOG_RECORD_MAX (16u * 1024)       /* one state log record */
#define QF_LOG_APPEND_MAX (64u * 1024)       /* one append (+ fdatasync) of records */
#define QF_ENVELOPE_MAX (256u * 1024 * 1024) /* the whole envelope section */
#define QF_STR_MAX (64u * 1024)              /* any string field */

/* Directory slots of struct queue (tmp and lock are not places). */
enum {
    QDIR_INCOMING = QUEUE_INCOMING,
    QDIR_ACTIVE = QUEUE_ACTIVE,
    QDIR_CORRUPT = QUEUE_CORRUPT,
    QDIR_TMP,
    QDIR_LOCK,
    QDIR_COUNT
};

struct queue {
    char *path;
    int root_fd;
    int dir_fd[QDIR_COUNT];
    int owner_fd;      /* lock/owner while held, else -1 */
    int slots_fd;      /* slots/, opened (and made) on first use, else -1 */
    unsigned flags;    /* QUEUE_OPEN_* */
    int write_version; /* QF_VERSION; 2 only where tests build old files */
};

extern const char *const queue_dir_names[QDIR_COUNT];

/* ---- ids (queue_id.c) ---- */
/* A new file id (thread-safe, strictly increasing time part per process). */
void queue_file_id_new(char *fid, uint64_t *usec);
/* The file id for commit time usec and this process's pid. */
void queue_file_id_at(char *fid, uint64_t usec);

/* ---- encoding (queue_format.c) ---- */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);
/* The same without the CPU's crc32 instruction (what crc32c uses where the
 * CPU has none; tests compare the two). */
uint32_t crc32c_portable(uint32_t crc, const void *p, size_t n);
/* stored == computed (always true in a fuzz build, see queue_format.c). */
int qf_crc_ok(uint32_t stored, uint32_t computed);
void qf_put_u32(struct buf *b, uint32_t v);
void qf_put_u64(struct buf *b, uint64_t v);
void qf_put_str(struct buf *b, const char *s, size_t n);
uint32_t qf_get_u32_at(const unsigned char *p);
uint64_t qf_get_u64_at(const unsigned char *p);

struct qf_header {
    uint64_t env_off, committed_len, created_us; /* version 3: created_us from fid */
    uint32_t env_len, env_crc, nmsg;
    uint32_t body_crc;               /* of bytes 64..committed_len (versions 2 and 3) */
    char fid[QUEUE_FILE_ID_LEN + 1]; /* version 3: the file's own id; "" before */
    int version;                     /* 1 (no body CRC), 2, or 3 */
};
/* Encode (h->version 3, or 2 for tests of old files) into out[QF_HEADER_SIZE]
 * / check and decode (0, or -1 with *why). */
void qf_header_encode(const struct qf_header *h, unsigned char *out);
int qf_header_decode(const unsigned char *p, size_t len, struct qf_header *h, const char **why);
/* Version 3: 0 if the header names fid, else -1 with *why (a file renamed,
 * or overwritten with another file's image). Older versions: always 0. */
int qf_header_names(const struct qf_header *h, const char *fid, const char **why);
/* Append one envelope record (type, payload). */
void qf_env_record(struct buf *env, char type, const struct buf *payload);
/* One record of a format 1 or 2 file's state log (queue.h "file format"),
 * as the replay decodes it. Nothing writes these any more. */
enum qf_log_kind {
    QUPD_DELIVERED,
    QUPD_BOUNCED,
    QUPD_DEFERRED,
    QUPD_HOLD,
    QUPD_RELEASE,
    QUPD_DELETE,
    QUPD_FLAGS
};
struct qf_log_record {
    enum qf_log_kind kind;
    unsigned msg;     /* index in the file */
    uint32_t rcpt;    /* recipient index (QUEUE_NO_RCPT for message updates) */
    int64_t time;     /* unix seconds */
    int64_t next_try; /* QUPD_DEFERRED */
    uint32_t flags;   /* QUPD_FLAGS */
    const char *text; /* reason / relay reply / who deleted; may be NULL */
};
/* Parse the envelope section into f->msg (f->nmsg == h->nmsg). */
int qf_envelope_parse(const unsigned char *p, size_t len, const struct qf_header *h,
                      struct queue_file *f, const char **why);
/* Replay the state log p[0..len) onto f: sets f->log_len (the valid part) and
 * f->torn_bytes. -1 with *why when a whole record is invalid (corrupt). */
int qf_log_replay(const unsigned char *p, size_t len, struct queue_file *f, const char **why);
/* Apply one update to the in-memory file (as the replay does). */
void qf_apply(struct queue_file *f, const struct qf_log_record *u, int64_t now);
/* 1 if the update names an existing message/recipient. */
int qf_update_valid(const struct queue_file *f, const struct qf_log_record *u);
int qf_msg_finished(const struct queue_msg *m);
int qf_file_finished(const struct queue_file *f);

/* ---- directories, locks, names, renames (queue_fs.c: the bottom) ---- */
/* "HH/FID" for a place, into out. */
void queue_rel_path(const char *fid, struct buf *out);
/* Open FID in `place` (O_NOFOLLOW|O_NONBLOCK, a regular file, else -1 with
 * errno EBADMSG) and lock it (LOCK_SH or LOCK_EX), checking the path still
 * names the locked inode. Returns the fd, or -1 (ENOENT: not there). */
int queue_open_locked(struct queue *q, enum queue_place place, const char *fid, int lock,
                      int flags);
/* Find FID in incoming/ then active/, open and lock it; *place receives where. */
int queue_locate_locked(struct queue *q, const char *fid, int lock, int flags,
                        enum queue_place *place);
/* 1 if dir_fd/rel still names the (linked) inode open on fd. */
int queue_still_named(int dir_fd, const char *rel, int fd);
/* fsync a subdirectory of queue_dir ("incoming/3f"). */
int queue_fsync_subdir(struct queue *q, int dir, const char *sub);
/* Create the bucket directory of fid under dir if missing (fsyncing dir). */
int queue_make_bucket(struct queue *q, int dir, const char *bucket);
/* A directory at/name, O_NOFOLLOW; the fd or -1. */
int queue_dir_open_at(int at, const char *name);
/* Names of a directory, appended to out (free with queue_names_free). */
struct queue_names {
    char **v;
    size_t n, cap;
};
/* dir_fd/sub (dir_fd itself when sub is NULL): every name but "." and "..",
 * or file ids only; 0, or -1 with errno (ENOENT: no such sub). */
int queue_names_read(int dir_fd, const char *sub, int ids_only, struct queue_names *out);
void queue_names_free(struct queue_names *n);
/* rename(2) that never replaces an existing file. */
int queue_rename_noreplace(int from_dir, const char *from, int to_dir, const char *to);
/* Move dir_fd/rel to corrupt/base (base.1, base.2... if taken); logs why. */
int queue_move_corrupt(struct queue *q, int dir_fd, const char *rel, const char *base,
                       const char *why);
/* Quarantine with the file already locked LOCK_EX (fd stays open). */
int queue_quarantine_locked(struct queue *q, const char *fid, enum queue_place from,
                            const char *why);

/* ---- reading (queue_read.c: calls queue_fs.c, queue_format.c) ---- */
/* Read header, envelope and log of an open file and parse them (content is
 * not read). 0, or -1 with errno EBADMSG and *why when corrupt, or another
 * errno on an I/O error. */
int queue_read_meta(int fd, const char *fid, enum queue_place place, struct queue_file *f,
                    const char **why);
/* Check the body CRC of an open file (versions 2 and 3; a version 1 file
 * passes unless require_crc): 0, or -1 with errno EBADMSG and *why, or an
 * I/O errno. */
int queue_check_body(int fd, int require_crc, struct qf_header *h, const char **why);

/* ---- putting a committed image into incoming/ (queue_place.c) ---- */
/* What a message's from= line says (SPEC 8), and the line that says where
 * it came from, logged right before it as Postfix's smtpd and pickup lines
 * come before qmgr's from= (pflogsumm counts a message received, its size
 * and sender, in that order only): "ID: client=NAME[ADDR]" under smtpd's
 * name for a message with a client attribute, "ID: uid=UID from=<SENDER>"
 * under pickup's for one onehop-queue took from a local user (uid). */
struct queue_log_msg {
    char *sender;
    uint64_t size;
    size_t nrcpt;
    const char *origin_service; /* "smtpd", "pickup", or NULL: no origin line */
    char *origin;               /* its text after "ID: " (owned), or NULL */
};
/* Set m's origin from a message's attributes; queue_log_msg_free_origin()
 * frees it. */
void queue_log_msg_origin(struct queue_log_msg *m, const struct queue_attr *attr, size_t nattr);
void queue_log_msg_free_origin(struct queue_log_msg *m);
/* pwrite h, naming fid (version 3), at offset 0 of fd and fdatasync it; h->fid
 * (and its time) are set from fid. */
int queue_write_header(int fd, struct qf_header *h, const char *fid);
/* The durable image open on fd, named from_dir/from (tmp/ or slots/), into
 * incoming/HH/fid: each message's "ID: from=" line logged (msgs[0..n)) right
 * before the rename, the bucket made if missing; an id already taken (a
 * clock stepped back) is replaced by a fresh one, the header (h, format 3)
 * rewritten and fdatasynced first. 0 with fid and bucket[3] final; -1 with
 * errno (then "not queued after all" is logged). No directory fsync. */
int queue_place_incoming(struct queue *q, int from_dir, const char *from, int fd,
                         struct qf_header *h, const struct queue_log_msg *msgs, size_t n, char *fid,
                         char *bucket);
/* "ID: not queued after all: ERROR" for the n messages of file fid, whose
 * from= lines went out before a later step failed. */
void queue_log_not_queued(size_t n, const char *fid, int e);

/* ---- commit slots (queue_slots.c) ---- */
#define QUEUE_SLOT_BATCH 32 /* created per refill (one fsync of slots/) */
/* The slots/ descriptor, creating the directory if missing; -1 on failure. */
int queue_slots_dir(struct queue *q);
/* Take a free slot: an empty, linked, ready (0600) file of slots/, locked
 * LOCK_EX. Stale leftovers met on the way are settled. Returns the fd and
 * its name in name[QUEUE_FILE_ID_LEN + 1]; *refill is set when the writer
 * should call queue_slots_refill() after its commit. -1 if none. */
int queue_slot_take(struct queue *q, char *name, int *refill);
/* Create QUEUE_SLOT_BATCH new empty slots, fsync slots/ once, make them
 * ready. Returns the number made. */
int queue_slots_refill(struct queue *q);
/* Recovery of one slot whose lock the caller holds (its writer is dead):
 * empty -> made ready; complete and CRC-valid -> renamed into incoming/ and
 * that directory fsynced; anything else -> truncated to 0 and fsynced. */
enum slot_outcome { SLOT_FREE, SLOT_COMMITTED, SLOT_DROPPED, SLOT_QUARANTINED, SLOT_ERROR };
enum slot_outcome queue_slot_settle(struct queue *q, int fd, const char *name);

#endif
