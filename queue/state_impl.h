/*
 * state_impl — what the state side's own files (state.c, state_open.c)
 * share and nobody else may use: the open state and its internal steps.
 * The contract is state.h.
 */
#ifndef ONEHOP_STATE_IMPL_H
#define ONEHOP_STATE_IMPL_H

#include "state.h"
#include "state_index.h"
#include "state_record.h"

/* Where a file's records lie in a checkpoint. */
struct cp_place {
    uint64_t off; /* 0: none */
    uint32_t len, nrec;
};

/* A state_file and what only the state side sees: one per file the state
 * knows, frozen or not, so it is kept small (about 120 bytes). */
struct file_slot {
    struct state_file f;
    unsigned heap_refs; /* due-index entries pointing at it or its messages */
    unsigned seen;      /* the last learning pass that listed it */
    unsigned gen;       /* freezes so far: tells stale due entries */
    unsigned creq_refs; /* cleaner requests pending for it or its messages */
    uint8_t forgotten;  /* no longer known; freed when heap_refs is 0 */
    /* The active window (state_cold.c): a frozen file has f.msg NULL; its
     * state is its records (T, then K) in the current checkpoint. */
    uint8_t cold;
    uint8_t lent;    /* thawed by a look-up (state_file_find): a reader's */
    uint8_t dirty;   /* changed since the checkpoint: its records there are old */
    uint32_t rcpts;  /* its recipients (frozen or not) */
    uint64_t cp_off; /* its records in the current checkpoint; 0: none */
    uint32_t cp_len, cp_nrec;
    int64_t cold_due;               /* frozen: its earliest due time, -1 none */
    struct file_counts cold_counts; /* frozen: its messages as counted */
    /* The on-disk index (state_index.h): a file found there is brought into
     * memory as a slot that SUPERSEDES its index record (indexed: its
     * record's due time and counts, which the totals then leave out). */
    uint8_t indexed;
    uint8_t will_freeze; /* chosen to go into the next index */
    int64_t idx_due;
    struct file_counts idx_counts;
};

/* A file of the index forgotten since (removed): its record is superseded
 * until the next checkpoint writes an index without it. */
struct gone_file {
    char fid[QUEUE_FILE_ID_LEN + 1];
    uint32_t nmsg;
    struct file_counts counts;
};

struct due {
    int64_t when;
    struct file_slot *fs;
    struct state_msg *m; /* NULL: the whole (frozen) file */
    unsigned gen;        /* fs->gen when pushed: a freeze since makes it stale */
    uint64_t order;      /* pushes in order: equal due times come out first in, first out */
};

struct creq {
    struct state_clean_req r;
    uint64_t seq; /* journal sequence of its 'N' record (0: replayed, durable) */
    int handed;   /* handed out, answer awaited */
    int failed;   /* answered with an error: waits for state_clean_retry */
    int done;     /* answered: dropped at the next squeeze */
};

struct state {
    struct queue *q;
    struct sj *j; /* NULL: no state/ yet (read-only), or detached */
    int readonly, replaying;
    struct file_slot **files; /* sorted by file id */
    size_t nfiles, filecap;
    struct due *heap;
    size_t nheap, heapcap;
    uint64_t pushes; /* the next struct due's order */
    /* Files outcomes were recorded for since the last flush (ids,
     * QUEUE_FILE_ID_LEN + 1 bytes each): their cleaner needs are settled
     * by the flush, once for the whole group (state.c). */
    struct buf clean_check;
    struct creq *creq;
    size_t ncreq, creqcap, ncreq_done;
    unsigned pass;
    uint64_t checkpoint_bytes;          /* size of the last checkpoint's records */
    unsigned long active_limit;         /* recipients kept in memory (the window) */
    const struct sj_report *replay_at;  /* during the replay: where its record is */
    int open_done;                      /* state_open returned (freeze pushes heap entries) */
    struct file_slot *last_cp_file;     /* during the replay: the file being read */
    int applying_checkpoint;            /* a file's own records: it stays clean */
    unsigned long hot_rcpts;            /* recipients of the files in memory */
    unsigned long hot_after_checkpoint; /* hot_rcpts after the last checkpoint's freeze */
    struct sx *index;                   /* the frozen files of the checkpoint; NULL: none */
    int index_tried;                    /* the replay looked for it */
    struct sx_iter replay_it;           /* the replay: skips the index's files' records */
    int replay_skipping;                /* the replay is inside such a file's records */
    struct gone_file *gone;             /* sorted by file id */
    size_t ngone, gonecap;
};

/* Queue one record and apply it to memory (the replay's path): its
 * sequence number, or 0 with errno. */
uint64_t state_record_add(struct state *s, unsigned type, const struct buf *payload);
/* Record the need of a cleaner request unless one is already queued. */
void state_need_clean(struct state *s, int kind, const char *id, const char *why);
/* After a change to a file: ask for finished messages' space or its removal. */
void state_ensure_clean_needs(struct state *s, struct state_file *f);
struct state_file *state_file_find(const struct state *s, const char *fid);
/* Drop the due index's stale entries (after freezing). */
void state_heap_compact(struct state *s);
/* Push every message of every file into the due index (after the replay). */
void state_index_all(struct state *s);
/* The replay callback of sj_open. */
int state_replay_record(void *arg, enum sj_origin o, unsigned type, const unsigned char *p,
                        size_t len);
void state_free_all(struct state *s);

/* state.c's pieces the active window (state_cold.c) builds on. */
struct file_slot *state_slot_find(const struct state *s, const char *fid); /* never thaws */
/* As state_slot_find, but a file of the index (not superseded) is brought
 * into memory first, frozen (a slot with its index record's place). */
struct file_slot *state_slot_get(struct state *s, const char *fid);
/* Whether fid's index record is superseded (a slot, or forgotten since). */
int state_index_superseded(const struct state *s, const char *fid);
void state_drop_slot(struct state *s, struct file_slot *fs);
int64_t state_msg_due(const struct state_msg *m); /* -1: not to be delivered */
void state_count_msgs(const struct state_file *f, struct state_counts *c);
void state_free_msgs(struct state_file *f);
void state_init_msgs(struct state_file *f, const struct srec *r); /* from a 'T' record */
void state_push_due(struct state *s, int64_t when, struct file_slot *fs, struct state_msg *m);
void state_index_file(struct state *s, struct state_file *f);
int state_apply_payload(struct state *s, unsigned type, const unsigned char *p, size_t len,
                        uint64_t seq);
/* state_cold.c: freeze a file to its checkpoint records, thaw it back. */
int state_can_freeze(const struct state *s, const struct file_slot *fs);
void state_freeze(struct state *s, struct file_slot *fs);
void state_thaw(struct state *s, struct file_slot *fs);
/* Before a checkpoint: mark the files beyond the window (will_freeze). */
void state_choose_frozen(struct state *s);
/* After a checkpoint that wrote index: it is the index now; the files
 * that went into it leave memory. */
void state_index_installed(struct state *s, struct sx *index);
/* The files in memory have grown past the window: a checkpoint is due. */
int state_window_exceeded(const struct state *s);
/* The replay's bookkeeping of where each file's records are. */
void state_replay_note(struct state *s, enum sj_origin o, unsigned type, const char *id, size_t len,
                       int after);
void state_replay_end(struct state *s);
/* The replay of a checkpoint with its index: 1 if the record belongs to a
 * file of the index (skipped: the file stays on disk), else 0. */
int state_replay_skip(struct state *s, enum sj_origin o, unsigned type, const char *id);
/* The index record of a file going into the next index, its records at
 * `at` in the new checkpoint. */
void state_slot_entry(const struct file_slot *fs, const struct cp_place *at, struct sx_entry *e);
/* Its earliest due time, -1 if nothing is due (its messages in memory). */
int64_t state_file_due(const struct file_slot *fs);
/* The index file name of checkpoint number n ("index.S", or with .tmp). */
void state_index_name(struct buf *out, uint64_t n, int tmp);

#endif
