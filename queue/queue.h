/*
 * queue — the on-disk mail queue: the source of truth of onehop
 * (ARCHITECTURE "The queue"; the state machine and every crash point are in
 * docs/INTERNALS.md).
 *
 * ---------------------------------------------------------------- ids ----
 * A queue FILE holds one or more messages that were committed together (one
 * by the one-shot injector, a group by the server mode's group commit). Its
 * name is its file id, 16 characters of the base-32 alphabet
 * "0123456789ABCDEFGHJKMNPQRSTVWXYZ" (ascending ASCII, no I L O U):
 *
 *     TTTTTTTTTTT PPPPP        11 chars: commit time in microseconds since
 *                              the epoch (strictly increasing per process),
 *                              5 chars: the writer's pid
 *
 * A MESSAGE id is its file id plus 2 characters, the message's index in the
 * file (0..QUEUE_FILE_MSGS_MAX-1), e.g. "0PKX3B2Q7ZM012KG00". Ids are
 * therefore unique (time x pid; a collision left by a clock stepped back is
 * caught at commit by a no-replace rename), sort by arrival as plain strings,
 * and are safe in file names and logs. The message id appears in every log
 * line (SPEC 8).
 *
 * -------------------------------------------------------------- layout ----
 *     queue_dir/tmp/FILEID              being written (not committed)
 *     queue_dir/slots/NAME              commit slots of the one-shot writer
 *                                       (below; NAME is a file id, unrelated
 *                                       to the id of what is committed in it)
 *     queue_dir/incoming/HH/FILEID      committed, not yet taken by the router
 *     queue_dir/active/HH/FILEID        taken by the router
 *     queue_dir/corrupt/FILEID          quarantined (could not be parsed)
 *     queue_dir/lock/owner              flock'd by a recovery (below)
 * HH is two lower-case hex digits, a hash of FILEID (queue_bucket()): 256
 * buckets, so a million messages are ~4000 files per directory. All of it
 * belongs to the queue account, in the router account's group (queue_dir
 * is set-gid): queue_dir 2755, incoming/, active/, their buckets and
 * corrupt/ 2750, message files 0640, tmp/, slots/ and lock/ 0700
 * (queue_modes.h). queue_dir/state/ is the router's; this library never
 * makes or touches it.
 *
 * --------------------------------------------------------- file format ----
 * All integers big-endian. A file (format 3, the only one written) is
 *     [64-byte header][content of msg 0][content of msg 1]...[envelope]
 * and never changes after its commit: no state log, so its committed length
 * is its length (delivery state is the router's journal, queue/state_*.h).
 * header: "OHQUEUE3", u64 envelope offset, u32 envelope length, u32 envelope
 *     CRC-32C, u64 committed length (= the file's length), u32 message
 *     count, u32 body CRC-32C (of bytes 64..committed length), the file id
 *     (16 ASCII characters; the commit time is the id's), u32 CRC-32C of
 *     bytes 0..55, zero padding to 64.
 * content: the message exactly as stored: lines end in LF (onehop-queue turns
 *     CRLF into LF; a last line without LF gets one), no NUL bytes, headers
 *     then an empty line then the body. Senders of SMTP add CR and dot-stuff.
 * envelope: records TYPE(u8) LEN(u32) PAYLOAD. For each message in order:
 *     'M' u32 index, u64 content offset, u64 content length, u32 CRC-32C of
 *         the content, u64 arrival (us), u32 nrcpt, u32 nattr, str sender
 *         ("" = null sender <>)
 *     'A' str name, str value            (nattr of them: client, helo, ...)
 *     'R' str address, str orcpt, str notify   (nrcpt of them, in order)
 *     'E' (empty)                         end of this message
 *   (str = u32 length + bytes, no NUL.)
 * What each reader checks: every reader, the header CRC, the file id in the
 *     header against the name it opened (a file renamed, or overwritten with
 *     another valid file's image, is corrupt), the length, the envelope CRC
 *     and the envelope; whoever hands content out (queue_msg_open(), `queue
 *     show` through queue_content_read()) that message's own CRC, so a
 *     message is verified on its own even after the cleaner punched holes
 *     over finished messages' ranges (which breaks the body CRC). The body
 *     CRC serves slot recovery only (a slot never has holes): it tells a
 *     complete image from one whose blocks reached the disk out of order.
 * Formats 1 and 2 (older onehop-queue) are still read, with their state log:
 *     format 2 ("OHQUEUE2") has the u64 commit time (us) at 40 where format 3
 *     has the id, the header CRC at 48 (of bytes 0..47), no content CRC in
 *     'M', and may be longer than its committed length by its state log; its
 *     content is verified by the body CRC. Format 1 ("OHQUEUE1") is format 2
 *     with the body CRC field zero (not checked). Their state log:
 * state log (formats 1 and 2): appended after commit, never rewritten in
 *     place; each record is
 *     TYPE(u8) LEN(u32) PAYLOAD CRC-32C(u32 over type, len and payload):
 *     'd' delivered / 'b' bounced:  u32 msg, u32 rcpt, u64 time, str text
 *     'f' deferred:  u32 msg, u32 rcpt, u64 time, u64 next try, str text
 *     'h' hold / 'r' release:  u32 msg, u64 time
 *     'x' deleted:   u32 msg, u64 time, str who
 *     'g' flags set: u32 msg, u32 rcpt (QUEUE_NO_RCPT: the message), u32 bits,
 *                    u64 time
 *   The state of a recipient is the replay of these records. Records are
 *   appended at most 64 KiB at a time, each append followed by fdatasync. A
 *   record cut short or failing its CRC within the last 64 KiB of the log is
 *   a torn append (its writer died before fdatasync returned, so nobody was
 *   told it happened): readers ignore it and what follows, writers truncate
 *   it before appending. A bad record earlier in the log is damage: it, and
 *   anything else that does not parse (bad magic, CRCs, offsets, counts, a
 *   record naming a message or recipient that does not exist), makes the
 *   file corrupt. Nothing appends to a log any more: onehop writes format 3
 *   (no log); a format 1 or 2 file's log is read, imported once by the
 *   state side, and never extended.
 *
 * --------------------------------------------------------- commit slots ----
 * A one-shot commit (QUEUE_OPEN_SLOTS) writes into a slot: an empty file of
 * slots/ whose directory entry was made durable beforehand (slots are made
 * QUEUE_SLOT_BATCH at a time with one fsync of slots/, and made ready, mode
 * 0640, only after it). The writer locks a free slot LOCK_EX|LOCK_NB (busy:
 * the next one), writes the image, chooses the file id at commit time,
 * writes the header and fdatasyncs: the COMMIT POINT. It then renames the
 * slot to incoming/HH/FILEID without fsyncing the directory: the data is
 * durable and a rename atomic, so after a crash the file is under one of the
 * two names. A committed slot not yet renamed (its writer died in that
 * window, before reporting success) is seen by no listing: recovery, and the
 * next one-shot writer that meets it, rename it into incoming/ under the id
 * its header names (and fsync the bucket); if that id is taken, under a
 * fresh one, the header rewritten and fdatasynced first. A non-empty slot that
 * fails the body CRC (blocks are flushed in any order before fdatasync
 * returns) was never committed: it is emptied. A locked slot belongs to a
 * live writer and is never touched. Server mode commits through tmp/.
 *
 * -------------------------------------------------------------- states ----
 * A message is in exactly one state (what `onehop qstat` counts):
 *     INCOMING   its file is in incoming/ (the router has not taken it yet)
 *     ACTIVE     its file is in active/, and some pending recipient has not
 *                been tried yet or is being tried
 *     DEFERRED   its file is in active/ and every pending recipient was tried
 *                at least once and deferred (waits for its next-try time)
 *     HOLD       held by the administrator (wherever its file is)
 *     CORRUPT    its file is in corrupt/ (counted per file)
 * A message whose recipients are all delivered or bounced, or that was
 * deleted, is FINISHED: no longer listed. These states are the router's
 * (queue/state.h: its journal; a format 1 or 2 file's state log is
 * imported once); the functions below that compute them from a file's own
 * state log serve old files. A finished message's content is reclaimed and
 * a file whose messages are all finished removed by the cleaner, at the
 * router's request (recovery still unlinks a finished format 1 or 2 file).
 *
 * ------------------------------------------------------------- locking ----
 * LOCKING RULE (every program that touches the queue obeys it):
 *  1. Per file, flock(2): LOCK_EX while changing a committed file (append to
 *     its state log, truncate a torn tail, rename it between directories,
 *     unlink it, move it to corrupt/); LOCK_SH while reading it. Locks are
 *     held for one operation (an append + fdatasync), never across a
 *     delivery. After locking a file opened by path the holder checks that
 *     the path still names that inode (it may have been moved meanwhile) and
 *     retries the lookup if not. This library does all of it.
 *  2. A writer holds LOCK_EX on its tmp/ file (or slot) from creation to
 *     commit, and after locking checks the file is still linked (else it
 *     starts over; a slot must also be still named in slots/ and empty).
 *     Recovery removes a tmp/ file only while holding its lock (its writer
 *     is dead): the lock, not an age, tells a dead writer from a slow one,
 *     so recovery may run at any time, even beside onehop-queue.
 *  3. The router's state side owns delivery state and holds state/lock
 *     for its whole life (queue/state.h); a management command acts on the
 *     state itself only when it gets that lock without waiting.
 *     `onehop-queue --recover` holds lock/owner (queue_lock_owner(): one
 *     recovery at a time) and state/lock shared (queue_hold_off_router():
 *     no router runs or starts meanwhile); without that, only the writer
 *     side is recovered, which is safe beside a router (rule 2). Reading and
 *     listing need neither lock, and onehop-queue adding new files never
 *     takes one.
 *
 * All functions return 0 on success and -1 with errno on failure unless said
 * otherwise; *why (when given) receives a short English reason.
 * Must never: show an uncommitted message, lose a committed one, trust a
 * byte read from a queue file, or crash on one.
 */
#ifndef ONEHOP_QUEUE_H
#define ONEHOP_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define QUEUE_FILE_ID_LEN 16
#define QUEUE_ID_LEN 18
#define QUEUE_FILE_MSGS_MAX 1024 /* messages in one file (2 base-32 chars) */
#define QUEUE_BUCKETS 256
#define QUEUE_RCPT_MAX 10000    /* recipients in one message */
#define QUEUE_ATTR_MAX 64       /* attributes of one message */
#define QUEUE_ATTR_LEN_MAX 1024 /* name or value */
#define QUEUE_TEXT_MAX 1000     /* a state record's text (longer is cut) */
#define QUEUE_NO_RCPT 0xffffffffu

/* Message flags ('g' records; the router defines their meaning beyond these). */
enum {
    QUEUE_FLAG_DELAY_WARNED = 1, /* recipient: delay notice sent */
    QUEUE_FLAG_BOUNCE_SENT = 2   /* recipient: its DSN was queued */
};

enum queue_place { QUEUE_INCOMING = 0, QUEUE_ACTIVE = 1, QUEUE_CORRUPT = 2 };
enum queue_state {
    QSTATE_INCOMING,
    QSTATE_ACTIVE,
    QSTATE_DEFERRED,
    QSTATE_HOLD,
    QSTATE_CORRUPT,
    QSTATE_FINISHED
};
enum queue_rcpt_state { QRCPT_PENDING, QRCPT_DELIVERED, QRCPT_BOUNCED };

struct queue; /* an open queue: its paths and lock descriptors */

/* ------------------------------------------------------------- open ---- */
enum {
    QUEUE_OPEN_CREATE = 1, /* make missing directories (modes: "layout") */
    QUEUE_OPEN_SLOTS = 2,  /* queue_writer_begin() commits through a slot */
    QUEUE_OPEN_READER = 4  /* the router account: tmp/ and lock/ (the queue account's, 0700)
                              are not opened; no writer, owner lock or writer-side recovery */
};
int queue_open(struct queue **out, const char *queue_dir, unsigned flags, const char **why);
void queue_close(struct queue *q);
const char *queue_path(const struct queue *q); /* queue_dir as given */

/* lock/owner (rule 3). wait=0: -1 with errno EWOULDBLOCK if another
 * process holds it. Released by queue_unlock_owner() or queue_close(). */
int queue_lock_owner(struct queue *q, int wait);
void queue_unlock_owner(struct queue *q);
/* The router (its state side, queue/state.h) holds queue_dir/state/lock
 * LOCK_EX for its whole life. This takes it LOCK_SH without waiting, so no
 * router starts while the caller works: 0 when no router runs (*fd is the
 * lock, -1 when there is no state/ yet; close it to let go), or -1 with
 * errno EWOULDBLOCK (a router runs) or another errno (cannot tell: EACCES
 * when state/ is the router account's). */
int queue_hold_off_router(struct queue *q, int *fd);

/* -------------------------------------------------------------- ids ---- */
/* 1 if id is a well-formed message id (QUEUE_ID_LEN chars) / file id. */
int queue_id_valid(const char *id);
int queue_file_id_valid(const char *fid);
/* The bucket ("00".."ff") of a file id or message id, into out[3]. */
void queue_bucket(const char *id, char out[3]);
/* Arrival time encoded in an id (microseconds since the epoch). */
int queue_id_time(const char *id, uint64_t *usec);
/* Message id of message `index` of file `fid`: out[QUEUE_ID_LEN + 1]. */
void queue_msg_id(const char *fid, unsigned index, char *out);

/* ----------------------------------------------------------- writing ---- */
/* Only onehop-queue writes new files. A writer builds one file in tmp/:
 * messages one after another, each as content (streamed) then its envelope.
 * Nothing is visible before queue_writer_commit() returns 0. */
struct queue_attr {
    char *name, *value;
};
struct queue_envelope {
    const char *sender;             /* "" = null sender; qualified addresses */
    const char *const *rcpt;        /* nrcpt qualified addresses */
    const char *const *rcpt_orcpt;  /* NULL or nrcpt entries ("" = none) */
    const char *const *rcpt_notify; /* NULL or nrcpt entries ("" = default) */
    size_t nrcpt;
    const struct queue_attr *attr;
    size_t nattr;
};
struct queue_writer;

int queue_writer_begin(struct queue *q, struct queue_writer **out);
/* Content of the current message (already in stored form, see above). */
int queue_writer_data(struct queue_writer *w, const void *p, size_t n);
/* Close the current message with its envelope; the next data starts the
 * next message. Returns the message's index in *index. */
int queue_writer_end_msg(struct queue_writer *w, const struct queue_envelope *env, unsigned *index);
/* Write the header, fsync the file, rename it into incoming/HH/ (the commit
 * point), fsync that directory; through a slot (QUEUE_OPEN_SLOTS): write the
 * header, fdatasync (the commit point), rename, no directory fsync (see
 * "commit slots"). On success fid[QUEUE_FILE_ID_LEN + 1] is the
 * file id, the message ids follow from queue_msg_id(), and the writer is
 * freed. On failure (errno ENOSPC, EDQUOT, EIO...) nothing is committed, the
 * tmp file is removed and the writer freed. */
int queue_writer_commit(struct queue_writer *w, char *fid);
/* Drop everything written; the writer is freed. */
void queue_writer_abort(struct queue_writer *w);
/* Messages closed so far. */
unsigned queue_writer_count(const struct queue_writer *w);
/* Content bytes written so far for the current (open) message. */
uint64_t queue_writer_msg_size(const struct queue_writer *w);

/* ---------------------------------------------------------- reading ---- */
struct queue_rcpt {
    char *addr, *orcpt, *notify;
    enum queue_rcpt_state state;
    uint32_t attempts; /* 'f' records seen, plus the final one if any */
    uint32_t flags;    /* QUEUE_FLAG_* */
    int64_t last_try;  /* unix seconds; 0 = never tried */
    int64_t next_try;  /* unix seconds; 0 = as soon as possible */
    char *last_reason; /* NULL if none */
};
struct queue_msg {
    char id[QUEUE_ID_LEN + 1];
    unsigned index; /* in its file */
    uint64_t arrival_us;
    uint64_t content_offset; /* in the file */
    uint64_t size;           /* content bytes */
    uint32_t content_crc;    /* CRC-32C of the content (format 3; 0 before) */
    char *sender;            /* "" = null sender */
    struct queue_attr *attr;
    size_t nattr;
    struct queue_rcpt *rcpt;
    size_t nrcpt;
    int held, deleted;
    uint32_t flags;
};
struct queue_file {
    char fid[QUEUE_FILE_ID_LEN + 1];
    enum queue_place place;
    int version; /* file format: 3, or 1 and 2 (old files, still read) */
    struct queue_msg *msg;
    size_t nmsg;
    uint64_t committed_len, log_len; /* log_len: valid state log bytes */
    uint64_t torn_bytes;             /* ignored bytes after the valid log */
};

/* The state of a message (computed from its file's place and its records). */
enum queue_state queue_msg_state(const struct queue_msg *m, enum queue_place place);
const char *queue_state_name(enum queue_state s);           /* "incoming", "active", ... */
const char *queue_rcpt_state_name(enum queue_rcpt_state s); /* "pending", ... */

/* Parse a whole file image (header, envelope, log) from memory. Never trusts
 * a byte; returns 0, or -1 with *why (the file is corrupt). Used by
 * queue_load() and by the fuzz target. */
int queue_parse(const void *data, size_t len, const char *fid, struct queue_file *out,
                const char **why);
/* Read file FID (a file id) from incoming/ or active/ under LOCK_SH. -1 with
 * errno ENOENT if it is gone (finished meanwhile), EBADMSG if it is corrupt
 * or not a regular file (logged, and left where it is: readers only read;
 * recovery or the router's cleaner moves it to corrupt/). */
int queue_load(struct queue *q, const char *fid, struct queue_file *out);
/* Find a message by message id: loads its file, *index is the message. */
int queue_find(struct queue *q, const char *id, struct queue_file *out, size_t *index);
void queue_file_free(struct queue_file *f);
/* The value of attribute `name` among attr[0..nattr), or NULL. */
const char *queue_attr_value(const struct queue_attr *attr, size_t nattr, const char *name);
/* Open the file holding message m of f for reading its content at
 * m->content_offset, m->size bytes (O_RDONLY|O_NOFOLLOW|O_NONBLOCK, a
 * regular file). The content is NOT verified: hand it out through
 * queue_msg_open() or queue_content_read(). The fd stays valid if the file
 * is later unlinked. Returns the fd or -1. */
int queue_content_open(struct queue *q, const struct queue_file *f);
/* Read message index of f's content into out (appending), verified against
 * its checksum (below); -1 with errno EBADMSG on a mismatch (nothing is
 * appended; logged; the caller has the file quarantined). */
int queue_content_read(struct queue *q, const struct queue_file *f, size_t index, struct buf *out);

/* One message opened for handing out (delivery, `queue show`): its file
 * open O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC, checked to be a regular
 * file, its envelope parsed (and the file id in a format 3 header checked
 * against the name), and its content verified: format 3 against the CRC-32C
 * of its own 'M' record (so a hole punched over another message's range
 * changes nothing), format 2 against the body CRC, format 1 not at all. */
struct queue_msg_fd {
    int fd;                  /* the caller closes it (queue_msg_fd_close) */
    uint64_t offset, length; /* the content: fd's bytes [offset, offset + length) */
    struct queue_file file;  /* the envelope of the message's file */
    size_t index;            /* the message in file.msg */
    enum queue_place place;  /* where the file was found */
};
/* 0, or -1 with errno: ENOENT (no such unfinished message: gone meanwhile),
 * EBADMSG (the file or this message's content is corrupt, *why says how:
 * the caller has it quarantined, through the cleaner), EINVAL (not an id),
 * or an I/O error. Never blocks on a FIFO, never follows a symlink. */
int queue_msg_open(struct queue *q, const char *id, struct queue_msg_fd *out, const char **why);
void queue_msg_fd_close(struct queue_msg_fd *m);
/* The router's dispatch of a file's messages one after another: m, open
 * by queue_msg_open on a message of the same file, is pointed at message
 * id instead (the same descriptor and envelope; the file is immutable but
 * for the holes of finished messages), its content verified as
 * queue_msg_open does. -1 with errno: ENOENT (not an unfinished message
 * of that file), EBADMSG (*why: its content is corrupt), an I/O error; m
 * still names its former message then. */
int queue_msg_select(struct queue_msg_fd *m, const char *id, const char **why);

/* File ids in one place, sorted (= arrival order). Caller frees with
 * queue_ids_free(). Names that are not file ids are skipped (recovery moves
 * them to corrupt/). */
int queue_list_files(struct queue *q, enum queue_place place, char ***fids, size_t *n);
void queue_ids_free(char **fids, size_t n);
/* The same for one bucket (0 .. QUEUE_BUCKETS-1) of incoming/ or active/:
 * a large queue listed a bucket at a time. */
int queue_list_bucket(struct queue *q, enum queue_place place, unsigned bucket, char ***fids,
                      size_t *n);

/* Router: move a file from incoming/ to active/ (no fsync needed: if the
 * rename is lost in a crash the file is simply taken again). */
int queue_take(struct queue *q, const char *fid);
/* Move a file to corrupt/ and log why (any holder of rule 1's LOCK_EX). */
int queue_quarantine(struct queue *q, const char *fid, enum queue_place from, const char *why);

/* ----------------------------------------------------------- recovery ---- */
struct queue_recovery {
    unsigned long tmp_removed;      /* uncommitted files of dead writers */
    unsigned long tails_repaired;   /* torn state log appends truncated */
    unsigned long quarantined;      /* moved to corrupt/ */
    unsigned long finished_removed; /* finished files left by a crash */
    unsigned long strays;           /* foreign names moved to corrupt/ */
    unsigned long slots_committed;  /* committed slots renamed into incoming/ */
    unsigned long slots_freed;      /* partial slots of dead writers emptied */
};
/* Recovery after any crash (docs/INTERNALS.md "Recovery, all cases"), in
 * two parts. Both are safe while onehop-queue runs (rule 2) and take no
 * lock of rule 3 themselves.
 * The writer side, what the queue account's cleaner runs on RECOVER: remove
 * tmp/ files whose writer is gone, settle the slots of dead writers
 * (committed: renamed into incoming/ and logged "ID: from=..."; partial:
 * emptied), move strays (foreign names, and FIFOs, symlinks or directories
 * named like queue files) to corrupt/, put files in the wrong bucket into
 * theirs, recreate missing buckets. No committed file is parsed. */
int queue_recover_writer(struct queue *q, struct queue_recovery *r);
/* The committed files, each read: quarantine what does not parse (a format
 * 3 header naming another file id included); formats 1 and 2 only: cut
 * torn state log tails, unlink files whose messages are all finished. For
 * `onehop-queue --recover` while no router runs (the router's state side
 * reads the files at start itself and has bad ones quarantined). */
int queue_recover_files(struct queue *q, struct queue_recovery *r);
/* Both, writer side first; the caller holds the owner lock (rule 3). */
int queue_recover(struct queue *q, struct queue_recovery *r);

/* ------------------------------------------------------------ trigger ---- */
#define QUEUE_TRIGGER_NAME "queue.trigger" /* the FIFO in run_dir */
/* Wake the router: open run_dir/queue.trigger O_WRONLY|O_NONBLOCK, write one
 * byte. No FIFO, no reader, a full FIFO: silently nothing (the router scans
 * incoming/ when it starts anyway). */
void queue_trigger_pull(const char *run_dir);
/* Router: create the FIFO (0620) if needed and open it for reading,
 * non-blocking, with a writer of its own kept open so it never sees EOF.
 * Returns the read fd or -1; *keep_fd receives the extra writer. */
int queue_trigger_listen(const char *run_dir, int *keep_fd);

#endif
