/*
 * state_journal — the router's append-only journal under queue_dir/state/
 * (docs/INTERNALS.md "The state side"): typed records made durable by GROUP
 * COMMIT (many records, one write, one fdatasync), checkpoints that bound
 * its size, and the replay at start. It knows records only as (type,
 * payload); what they mean is state_record.h's business.
 *
 * ------------------------------------------------------------ files ----
 *   state/lock                   flock'd LOCK_EX by the one owner for its life
 *   state/journal.SSSSSSSSSSSSSSSS   segment number S (16 hex digits): header
 *                                "OHSTJRN1" u64 S u32 CRC-32C of those 16
 *                                bytes, then records
 *   state/checkpoint.SSSSSSSSSSSSSSSS  the whole state as of the start of
 *                                segment S: header "OHSTCKP1" u64 S u32 CRC,
 *                                records, then the end record (type
 *                                SJ_TYPE_END, payload u64 record count)
 *   state/checkpoint.S.tmp       a checkpoint being written (removed at start)
 *   state/damaged.NAME.T         a file found damaged, set aside (kept for a human)
 * A record is TYPE(u8) LEN(u32) PAYLOAD CRC-32C(u32 over type, length and
 * payload), integers big-endian (the queue file's state-log framing).
 *
 * ------------------------------------------------------ group commit ----
 * sj_add() only queues a record in memory and returns its sequence number
 * (1, 2, 3... in this process). sj_flush() writes everything queued with one
 * write(2) (at most SJ_FLUSH_MAX bytes: a larger backlog is several
 * write+fdatasync rounds) and one fdatasync(2), and only after fdatasync
 * returned moves sj_durable() forward. A caller acts on a record (logs it,
 * answers, delivers) once sj_durable() >= its sequence number. The router
 * flushes once per loop iteration. A failed write is cut back off the file
 * (ftruncate) and stays queued for the next flush; a failed fdatasync or a
 * failed cut breaks the journal (every later call fails: fail-stop, the
 * restart replays what is on disk).
 *
 * ------------------------------------------------------------ replay ----
 * sj_open() takes the lock (not with SJ_OPEN_READONLY), then replays the
 * newest valid checkpoint and every segment numbered from it on, in order,
 * calling fn for each record. Rules:
 *   - a record cut short or failing its CRC within the last SJ_FLUSH_MAX
 *     bytes of the last segment is a TORN TAIL (its writer died before
 *     fdatasync returned, so nobody was told): it and what follows are
 *     ignored and (owner only) cut off;
 *   - any other bad record, bad header, or a checkpoint without its end
 *     record is DAMAGE: the records before it are kept, the file is renamed
 *     to damaged.NAME.T (owner only) and logged, replay goes on with the next
 *     file (a damaged checkpoint: the next older one); never a crash loop;
 *   - segments older than the checkpoint, old checkpoints and *.tmp are
 *     leftovers of a checkpoint cut short: removed (owner only).
 * No file is read whole: each is read record by record through a window of
 * 256 KiB (pread), a checkpoint twice (checked whole first, so a damaged
 * one applies nothing, then applied).
 * A read-only open changes nothing and may run beside the owner; when a
 * checkpoint removed a file under it, it fails with errno EAGAIN and the
 * caller starts over with a fresh state.
 *
 * -------------------------------------------------------- checkpoint ----
 * sj_checkpoint(): flush; start segment S+1 (header, fdatasync, fsync of
 * state/); write checkpoint.S+1.tmp from the caller's snapshot (the state as
 * of the end of segment S, i.e. now), record by record through a buffer of
 * 256 KiB (never the whole image in memory); fdatasync; rename to checkpoint.S+1;
 * fsync state/; remove the segments before S+1 and older checkpoints. A
 * crash at any step leaves a state that replays to the same result.
 *
 * Ownership: every file made in state/ belongs to state/'s owner (a root
 * process, an admin command while no router runs, gives it away).
 *
 * Must never: report a record durable before its fdatasync returned, let a
 * damaged file stop the start-up, or trust a byte read from state/.
 */
#ifndef ONEHOP_STATE_JOURNAL_H
#define ONEHOP_STATE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SJ_RECORD_MAX (64u * 1024)      /* one record's payload */
#define SJ_FLUSH_MAX (4u * 1024 * 1024) /* bytes per write + fdatasync */
#define SJ_HEADER_SIZE 20               /* magic, u64 number, u32 CRC */
#define SJ_RECORD_OVERHEAD 9            /* type, length, CRC */
#define SJ_TYPE_END 0xff                /* a checkpoint's last record */

struct sj;

enum sj_origin { SJ_FROM_CHECKPOINT, SJ_FROM_JOURNAL };
/* Called for each valid record in order; a non-zero return stops the open
 * (it fails with errno EBADMSG and *why "a record was refused"). */
typedef int sj_replay_fn(void *arg, enum sj_origin origin, unsigned type, const unsigned char *p,
                         size_t len);

enum {
    SJ_OPEN_CREATE = 1,  /* make state/ (0700) if missing */
    SJ_OPEN_READONLY = 2 /* no lock, no repair, no appends (listings) */
};

struct sj_report {
    uint64_t checkpoint;    /* number of the checkpoint replayed, 0: none */
    unsigned long records;  /* records replayed (checkpoint and journal) */
    unsigned long segments; /* segments replayed */
    uint64_t torn_bytes;    /* torn tail ignored (and cut, owner only) */
    unsigned long damaged;  /* files set aside as damaged */
    unsigned long removed;  /* leftovers of an interrupted checkpoint */
    uint64_t at;            /* during the replay: where the record handed to fn
                               starts in its file (sj_checkpoint_read) */
};

/* Open the journal in state_dir. -1 with errno and *why; EWOULDBLOCK: the
 * lock is held by another owner (a running router). *out is set before the
 * replay starts (fn may call sj_checkpoint_read), and NULL on failure. */
int sj_open(struct sj **out, const char *state_dir, unsigned flags, sj_replay_fn *fn, void *arg,
            struct sj_report *report, const char **why);
void sj_close(struct sj *j);

/* Queue one record (len <= SJ_RECORD_MAX); returns its sequence number. */
uint64_t sj_add(struct sj *j, unsigned type, const void *payload, size_t len);
/* Make every queued record durable (group commit). 0, or -1 with errno. */
int sj_flush(struct sj *j);
uint64_t sj_durable(const struct sj *j); /* highest durable sequence number */
uint64_t sj_last(const struct sj *j);    /* highest sequence number given out */
size_t sj_pending_bytes(const struct sj *j);
/* Bytes of journal segments written since the last checkpoint. */
uint64_t sj_journal_bytes(const struct sj *j);
/* fdatasync calls made by this journal (benchmarks, tests). */
unsigned long sj_syncs(const struct sj *j);

/* A checkpoint: fn writes the whole current state with sj_snapshot_add(). */
struct sj_snapshot;
typedef int sj_snapshot_fn(void *arg, struct sj_snapshot *s);
void sj_snapshot_add(struct sj_snapshot *s, unsigned type, const void *payload, size_t len);
/* Where the next record will start in the checkpoint being written. */
uint64_t sj_snapshot_offset(const struct sj_snapshot *s);
/* Copy `records` whole framed records (read with sj_checkpoint_read). */
void sj_snapshot_add_raw(struct sj_snapshot *s, const void *p, size_t len, unsigned long records);

/* The checkpoint replayed (or last written) stays open: read len bytes of
 * it at off into out (replacing its contents). 0, or -1 with errno. */
int sj_checkpoint_read(const struct sj *j, uint64_t off, size_t len, struct buf *out);
/* fn for each framed record of p[0..len) (as read back by
 * sj_checkpoint_read): 0, or -1 if one is bad or fn refused it. */
int sj_records_each(const unsigned char *p, size_t len, sj_replay_fn *fn, void *arg);
int sj_checkpoint(struct sj *j, sj_snapshot_fn *fn, void *arg);
/* The number of the checkpoint being written (its file checkpoint.S). */
uint64_t sj_snapshot_number(const struct sj_snapshot *s);
/* The number and size of the checkpoint replayed or last written (0: none). */
uint64_t sj_checkpoint_number(const struct sj *j);
uint64_t sj_checkpoint_size(const struct sj *j);

/* Files of the caller's own beside the journal in state/ (the state side's
 * index, state_index.h), made as the journal makes its own (0600, given to
 * state/'s owner): make (O_RDWR, truncated) or open read-only a name (an
 * fd, or -1 with errno), rename, remove, list the names starting with
 * prefix (freed by the caller, each and the array). The journal's own
 * names (journal.*, checkpoint.*) are never the caller's. */
int sj_file_make(const struct sj *j, const char *name);
int sj_file_open(const struct sj *j, const char *name);
int sj_file_rename(const struct sj *j, const char *from, const char *to);
void sj_file_remove(const struct sj *j, const char *name);
int sj_file_list(const struct sj *j, const char *prefix, char ***names, size_t *n);
/* Reach the named crash point (the test hook below) from the caller's own
 * steps ("index-synced", "index-renamed"). */
void sj_step(struct sj *j, const char *name);

/* Test hook: called at each named crash point ("append", "commit",
 * "segment-new", "checkpoint-write", "checkpoint-synced",
 * "checkpoint-renamed", "segment-remove", and the state side's own through
 * sj_step); a crash test kills itself there. */
typedef void sj_step_hook(const char *step, void *arg);
void sj_set_step_hook(struct sj *j, sj_step_hook *hook, void *arg);

/* Parse a segment (checkpoint=0) or checkpoint (1) image: calls fn for each
 * valid record. Returns the bytes of valid records after the header in
 * *valid; 0 if the whole image is valid, 1 if it ends in a torn tail (or a
 * checkpoint lacks its end), -1 on damage (bad header, bad record followed
 * by more than SJ_FLUSH_MAX bytes, wrong end count), -2 if fn refused a
 * record. *why says
 * what. Used by the replay and by the fuzz target. */
int sj_parse_image(const unsigned char *p, size_t len, int checkpoint, uint64_t *number,
                   sj_replay_fn *fn, void *arg, size_t *valid, const char **why);

#endif
