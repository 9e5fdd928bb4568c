/*
 * state — the router's state side: the delivery state of every queued
 * message, kept under queue_dir/state/ (router account, 0700) in the
 * journal of state_journal.h, and the one contract the router, the
 * listings and the admin commands share (queue.h stays the contract of the
 * message files; docs/INTERNALS.md "The state side" has the design and the
 * crash table).
 *
 * What the state knows, per message file: its place (incoming: not yet
 * taken; active), its messages (recipient count, arrival, size); per
 * message: hold, deleted, flags; per recipient: pending / deferred /
 * delivered / bounced, attempts, last try, next try, last reason, flags,
 * route. Addresses and content stay in the message file (read with queue.h).
 *
 * The OWNER (state_open without STATE_OPEN_READONLY: the router, or an
 * admin command when no router runs) holds state/lock for its life. It
 *   - learns new files (state_learn_files: incoming/ and active/, sorted
 *     file ids = arrival; only files it does not know are read, header and
 *     envelope through queue_load), asks the cleaner to TAKE each new
 *     incoming file, and imports the state log of a format 1/2 file once
 *     (a message-state record per message; the file is immutable after);
 *   - records outcomes and admin actions (each call queues one journal
 *     record and changes the memory at once; state_flush() is the group
 *     commit; the caller acts on a change only when state_durable() >= the
 *     sequence number the call returned);
 *   - asks what is due (state_next_due: a heap on next-try time, rebuilt
 *     at start; never reads a message file); a message handed out is in
 *     flight until state_dispatch_done() (a restart forgets in-flight: the
 *     message is due again, at-least-once);
 *   - hands the cleaner its work: TAKE (new file), RECLAIM (finished
 *     message in a file with others left), REMOVE (finished file),
 *     QUARANTINE (unreadable file). Each need is a journal record; it is
 *     handed out (state_clean_next) only once that record is durable, and
 *     is done when state_clean_done() recorded the cleaner's answer, so a
 *     crash of either side re-sends it (every request is idempotent).
 * A READ-ONLY open (listings, qstat) replays without the lock beside a
 * running owner and changes nothing.
 *
 * The ACTIVE WINDOW: at each checkpoint the files beyond the first
 * queue_active_limit recipients (by earliest due time) that are in active/
 * and idle are FROZEN: they leave memory altogether. Their state is their
 * records in the checkpoint, and what finds, counts and schedules them is
 * the checkpoint's index on disk (state_index.h: sorted fixed-size records
 * read through windows, a due cursor merged with the heap of the files in
 * memory); a touch reads a file back (state_cold.c), and a file read back
 * by a listing and unchanged leaves memory again. A checkpoint without its
 * index (a crash between the two, an older onehop) is read whole once, its
 * files frozen in memory as they are read, and the open writes a new one. The views this header
 * hands out (state_find, state_each, state_next_due) are always of files in memory; files thawed
 * since the last checkpoint freeze again at the next one, which state_maybe_checkpoint writes once
 * the files in memory pass twice the window (so the window bounds memory between checkpoints too);
 * a struct state_msg pointer stays valid while its message is in flight (its file is never frozen
 * then), any other only until the next state_maybe_checkpoint().
 *
 * All int functions return 0 or -1 with errno; *why (when given) a reason.
 * Must never: report a change durable before its fdatasync, hand out a
 * cleaner request before its need is durable, read a message file to
 * answer "what is due", or crash on a damaged journal.
 */
#ifndef ONEHOP_STATE_H
#define ONEHOP_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "queue.h"
#include "state_journal.h"

enum state_rcpt_state { SRCPT_PENDING, SRCPT_DEFERRED, SRCPT_DELIVERED, SRCPT_BOUNCED };
enum state_msg_state { SMSG_INCOMING, SMSG_ACTIVE, SMSG_DEFERRED, SMSG_HOLD, SMSG_FINISHED };

struct state_rcpt {
    uint8_t state; /* enum state_rcpt_state */
    uint32_t attempts, flags;
    int64_t last_try, next_try; /* unix seconds; 0 = never / as soon as possible */
    char *reason, *route;       /* NULL: none */
};

struct state_file;
struct state_msg {
    struct state_file *file;
    uint16_t index; /* in its file */
    uint8_t held, deleted, in_flight, reclaim_asked;
    uint32_t flags, nrcpt;
    uint32_t nfinal; /* recipients delivered or bounced */
    uint64_t arrival_us, size;
    struct state_rcpt *rcpt;
};

struct state_file {
    char fid[QUEUE_FILE_ID_LEN + 1];
    uint8_t place;      /* QUEUE_INCOMING or QUEUE_ACTIVE */
    uint8_t removing;   /* REMOVE or QUARANTINE asked */
    uint8_t take_asked; /* TAKE asked */
    uint32_t nmsg;
    uint32_t nfinished; /* messages finished (all recipients final, or deleted) */
    struct state_msg *msg;
};

struct state;

enum { STATE_OPEN_READONLY = 1 };
struct state_open_report {
    struct sj_report journal;
    unsigned long files, messages; /* known after the replay */
};
/* Open the state of queue q (its queue_dir/state/; created by the owner).
 * -1 with errno EWOULDBLOCK when another owner holds the lock (a running
 * router), EAGAIN (read-only) when a checkpoint ran under the reader. */
int state_open(struct state **out, struct queue *q, unsigned flags, struct state_open_report *rep,
               const char **why);
void state_close(struct state *s);
/* As root, before an owner's open: if queue_dir/state/ is missing and the
 * account (the router's, SPEC 7) exists, make state/ (0700) owned by it, so
 * that an admin command run before the router's first start leaves a state
 * the router can own (every file made in it then goes to that account).
 * 1 made, 0 nothing to do (not root, state/ there, no such account: an
 * instance without accounts keeps state/ as its opener makes it), -1 and
 * *why on an error (nothing made). */
int state_dir_give(struct queue *q, const char *account, const char **why);
struct sj *state_journal(struct state *s); /* tests, benchmarks */
/* The active window (SPEC 3 queue_active_limit; default below). */
#define STATE_ACTIVE_LIMIT_DEFAULT 20000
void state_set_active_limit(struct state *s, unsigned long recipients);
/* Recipients of the files in memory (tests, benchmarks; kept as a count). */
unsigned long state_hot_recipients(const struct state *s);
/* Files with a slot in memory, frozen or not (tests, benchmarks): a file
 * frozen by a checkpoint has none, it is only in the index on disk. */
unsigned long state_files_in_memory(const struct state *s);

/* Owner: learn the files of incoming/ and active/ not known yet. Returns
 * the number of new messages, or -1. */
long state_learn_files(struct state *s);
/* Owner: learn the n files named in fids (QUEUE_FILE_ID_LEN + 1 bytes
 * each, NUL-terminated: e.g. what the router's watch of incoming/ saw
 * committed), those not known yet; a name that is not a file id, or a file
 * gone meanwhile, is passed over. Lists no directory (the gone check is
 * state_learn_files'). The number of new messages, or -1. */
long state_learn_named(struct state *s, const char *fids, size_t n);

/* Lookup: NULL (errno ENOENT) if not known or finished. */
const struct state_msg *state_find(const struct state *s, const char *msgid);
void state_msg_id(const struct state_msg *m, char *out); /* out[QUEUE_ID_LEN + 1] */
/* A file the state knows (finished or not), or NULL; a frozen one is
 * thawed (read back from the checkpoint) for the caller. */
const struct state_file *state_find_file(const struct state *s, const char *fid);
/* The caller (a listing) is done with fid: a file that state_find_file
 * thawed and that is still unchanged since the checkpoint is frozen again
 * (its pointers are invalid then), so a full listing of a large queue
 * holds one frozen file at a time beside the window, never the queue. */
void state_file_done(struct state *s, const char *fid);
/* Whether the state knows fid (finished or not); never thaws. */
int state_knows_file(const struct state *s, const char *fid);
enum state_msg_state state_msg_state(const struct state_msg *m);
const char *state_msg_state_name(enum state_msg_state st);   /* "incoming", "active", ... */
const char *state_rcpt_state_name(enum state_rcpt_state st); /* "pending", ... */

/* Every unfinished message, files in id order (= arrival). fn returns
 * non-zero to stop; that value is returned. A frozen file is read back for
 * its messages and frozen again after them (state_file_done), so m is
 * valid only during its call. */
typedef int state_each_fn(const struct state_msg *m, void *arg);
int state_each(struct state *s, state_each_fn *fn, void *arg);

struct state_counts {
    unsigned long total, incoming, active, deferred, hold;
    uint64_t oldest_arrival_us; /* 0: empty */
};
void state_count(const struct state *s, struct state_counts *c);

/* ------------------------------------------------------ changes (owner) ---- */
/* Each returns the journal sequence number of its record, or 0 with errno
 * (ENOENT: no such unfinished message; EINVAL: no such recipient, or the
 * recipient is already delivered or bounced; EROFS: read-only). */
uint64_t state_delivered(struct state *s, const char *msgid, uint32_t rcpt, int64_t now,
                         const char *reply);
uint64_t state_bounced(struct state *s, const char *msgid, uint32_t rcpt, int64_t now,
                       const char *reason);
uint64_t state_deferred(struct state *s, const char *msgid, uint32_t rcpt, int64_t now,
                        int64_t next_try, const char *reason);
/* The same without counting an attempt (D8: its destination is deferred as
 * a whole, no connection was tried): attempts and last try stay. */
uint64_t state_suspended(struct state *s, const char *msgid, uint32_t rcpt, int64_t now,
                         int64_t next_try, const char *reason);
/* A deferred recipient due now (a flush, its destination back up: D8),
 * without counting an attempt: its attempts, last try and reason stay, only
 * its next try becomes now. who says why ("flush"). EINVAL also when the
 * recipient is not deferred. */
uint64_t state_retry_now(struct state *s, const char *msgid, uint32_t rcpt, int64_t now,
                         const char *who);
uint64_t state_hold(struct state *s, const char *msgid, int64_t now);
uint64_t state_release(struct state *s, const char *msgid, int64_t now);
uint64_t state_delete(struct state *s, const char *msgid, int64_t now, const char *who);
uint64_t state_set_flags(struct state *s, const char *msgid, uint32_t rcpt, uint32_t bits);
uint64_t state_set_route(struct state *s, const char *msgid, uint32_t rcpt, const char *route);

/* Group commit of everything recorded so far (one write, one fdatasync). */
int state_flush(struct state *s);
uint64_t state_durable(const struct state *s);
/* Checkpoint when the journal has grown past max(64 MiB, 2 x the last
 * checkpoint), or when the recipients in memory have passed twice the
 * active window and a window more than the last checkpoint left (files
 * thawed since, by due times, outcomes or admin actions, freeze again);
 * force: now. The owner calls it once per loop iteration, after
 * state_flush(). 1 if one was written, 0 if not needed, -1. */
int state_maybe_checkpoint(struct state *s, int force);

/* ---------------------------------------------------------- what is due ---- */
/* The next message due at or before now (not held, not in flight, with a
 * pending recipient whose next try has come): 1 and *m (marked in flight),
 * 0 if none. *next_wakeup (may be NULL) receives the earliest future due
 * time, 0 if nothing waits. */
int state_next_due(struct state *s, int64_t now, const struct state_msg **m, int64_t *next_wakeup);
/* The router is done with a dispatch of msgid (its outcomes recorded). */
void state_dispatch_done(struct state *s, const char *msgid);

/* --------------------------------------------------------- the cleaner ---- */
struct state_clean_req {
    int kind; /* CLEAN_TAKE, CLEAN_RECLAIM, CLEAN_REMOVE, CLEAN_QUARANTINE */
    char id[QUEUE_ID_LEN + 1];
    char why[128];
};
/* The next request whose need is durable and that was not handed out yet:
 * 1 and *r, or 0. */
int state_clean_next(struct state *s, struct state_clean_req *r);
/* The cleaner answered r (err 0: done, or already so; else its errno).
 * Done: recorded ('Y'), and a finished file forgotten. An error: handed
 * out again by the next state_clean_retry(). Returns the sequence number. */
uint64_t state_clean_done(struct state *s, const struct state_clean_req *r, uint32_t err);
/* Hand out again every request that failed (the router's retry timer). */
void state_clean_retry(struct state *s);
/* Requests not yet done (handed out or not). */
size_t state_clean_pending(const struct state *s);

/* Replay one record into s (fuzz target, tests): 0, or -1 if refused. */
int state_apply_record(struct state *s, unsigned type, const unsigned char *p, size_t len);
/* An empty in-memory state with no journal (fuzz target). */
struct state *state_new_detached(void);

#endif
