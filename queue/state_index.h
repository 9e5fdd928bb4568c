/*
 * state_index — the on-disk index of the FROZEN files of the state side
 * (state.h "the active window"; docs/INTERNALS.md "The state side"): what a
 * file beyond the window needs to be found, counted and scheduled, written
 * beside each checkpoint, so that a frozen file costs no memory at all.
 *
 * ------------------------------------------------------------ file ----
 *   state/index.SSSSSSSSSSSSSSSS   belongs to checkpoint.S (same number)
 *   state/index.S.tmp              being written (removed at start)
 * Integers big-endian. A 128-byte header:
 *   "OHSTIDX1", u64 S, u64 CP_END (where checkpoint.S's end record starts),
 *   u64 NFILES, u64 NDUE, u32 CRC-32C of the body, u32 zero, u64 totals of
 *   the files' counts (total, incoming, active, deferred, hold), u64
 *   recipients, u64 messages, zeros, u32 CRC-32C of bytes 0..124 at 124;
 * then NFILES file records of SX_FILE_SIZE bytes sorted by file id:
 *   fid[16], u64 cp_off, u32 cp_len, u32 cp_nrec (the file's records in
 *   checkpoint.S), u32 recipients, u32 messages, u64 due (its earliest due
 *   time; all ones: nothing due), u32 total, incoming, active, deferred,
 *   hold (its unfinished messages by state), u32 zero, u64 oldest arrival;
 * then NDUE due records of SX_DUE_SIZE bytes sorted by (due, fid): u64 due,
 *   fid[16], one for each file with a due time.
 * The index is derived data: the checkpoint holds every file's records. An
 * index that is missing, does not match its checkpoint (number, end, size)
 * or fails a CRC is not used (the replay then reads the checkpoint whole,
 * as before the index, and the next checkpoint writes a new one).
 *
 * ------------------------------------------------------------ memory ---
 * Open, it keeps a fence (the file id of every SX_FENCE-th record: 0.25
 * byte a file) and two read windows (a due cursor, and one per iterator);
 * a look-up by file id reads one block of SX_FENCE records. Nothing in it
 * is ever held whole.
 *
 * Must never: be trusted beyond its CRCs and its checkpoint's match, or
 * be used with another checkpoint than its own.
 */
#ifndef ONEHOP_STATE_INDEX_H
#define ONEHOP_STATE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "queue.h"

#define SX_HEADER_SIZE 128
#define SX_FILE_SIZE 80
#define SX_DUE_SIZE 24
#define SX_FENCE 64
#define SX_PREFIX "index."

/* A file's counts (state_counts in 32 bits: a file holds at most
 * QUEUE_FILE_MSGS_MAX messages). */
struct file_counts {
    uint32_t total, incoming, active, deferred, hold;
    uint64_t oldest_arrival_us;
};

struct sx_entry {
    char fid[QUEUE_FILE_ID_LEN + 1];
    uint64_t cp_off;
    uint32_t cp_len, cp_nrec, rcpts, nmsg;
    int64_t due; /* -1: nothing due */
    struct file_counts counts;
};

struct sx_totals {
    uint64_t total, incoming, active, deferred, hold, rcpts, nmsg;
};

struct sx;

/* Open index fd (taken: closed by sx_close, or on failure) for checkpoint
 * number, whose file is cp_size bytes: 0, or -1 and *why. */
int sx_open(struct sx **out, int fd, uint64_t number, uint64_t cp_size, const char **why);
void sx_close(struct sx *x);
uint64_t sx_files(const struct sx *x);
uint64_t sx_number(const struct sx *x);
const struct sx_totals *sx_totals(const struct sx *x);
/* Record pos (< sx_files): 0, or -1 (a read error). */
int sx_get(const struct sx *x, uint64_t pos, struct sx_entry *e);
/* 1 and *e (and *pos, if given: its record's number) if fid is there, 0
 * if not, -1 on a read error. */
int sx_find(const struct sx *x, const char *fid, struct sx_entry *e, uint64_t *pos);

/* The file records in order, from the first. */
struct sx_iter {
    const struct sx *x;
    uint64_t pos;       /* of the current record */
    uint64_t win_first; /* records win_first.. are in win */
    struct buf win;
};
void sx_iter_start(struct sx_iter *it, const struct sx *x);
/* 1 and *e: the current record; 0 at the end; -1 a read error. */
int sx_iter_peek(struct sx_iter *it, struct sx_entry *e);
void sx_iter_next(struct sx_iter *it);
/* To the first record whose file id is fid or after it. */
void sx_iter_seek(struct sx_iter *it, const char *fid);
void sx_iter_free(struct sx_iter *it);

/* The due cursor (one per open index): the due records in order. 1 and
 * (*due, fid), 0 at the end, -1 a read error; sx_due_next moves on. */
int sx_due_peek(struct sx *x, int64_t *due, char fid[QUEUE_FILE_ID_LEN + 1]);
void sx_due_next(struct sx *x);
/* The cursor back to the first due record (a checkpoint reads them all). */
void sx_due_rewind(struct sx *x);
/* 1 if the due record (due, fid) lies behind the cursor (handed out or
 * passed over already). */
int sx_due_passed(const struct sx *x, int64_t due, const char *fid);

/* Writing index.S.tmp: file records in file id order, then due records in
 * (due, fid) order, then sx_writer_finish (header, fdatasync). */
struct sx_writer {
    int fd;
    struct buf out;
    uint64_t written, nfiles, ndue;
    uint32_t crc;
    int error;
    struct sx_totals tot;
};
void sx_writer_begin(struct sx_writer *w, int fd);
void sx_writer_add(struct sx_writer *w, const struct sx_entry *e);
void sx_writer_add_due(struct sx_writer *w, int64_t due, const char *fid);
/* 0, or -1 with errno; fd stays open (the caller's). */
int sx_writer_finish(struct sx_writer *w, uint64_t number, uint64_t cp_end);
void sx_writer_free(struct sx_writer *w);
/* The size checkpoint number's file has when its end record starts at
 * cp_end (what sx_open compares). */
uint64_t sx_checkpoint_size(uint64_t cp_end);

#endif
